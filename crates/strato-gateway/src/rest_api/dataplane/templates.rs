//! Non-proxy REST integrations: `MOCK`, `HTTP` and `AWS` (Lambda
//! functions), whose requests and answers go through mapping templates.
//!
//! 1. The request's `Content-Type` (`application/json` when absent) picks
//!    a request template, rendered by [`crate::mapping_template`]; with none,
//!    the passthrough behavior decides: `WHEN_NO_MATCH` (the default) sends
//!    the body as it is, `WHEN_NO_TEMPLATES` only when the integration has no
//!    templates at all, `NEVER` never; otherwise 415 `Unsupported Media Type`.
//! 2. The integration runs: a mock reads its status from the rendered
//!    `{"statusCode": 200}`; an HTTP backend gets the rendered body, its
//!    URL's path placeholders and the mapped `integration.request.*`
//!    parameters; a Lambda function is invoked with the rendered body as
//!    its event.
//! 3. An integration response is selected: the one whose `selectionPattern`
//!    (a regular expression matching the whole text) matches the backend's
//!    status code (`HTTP`, `MOCK`) or the function's `errorMessage` (`AWS`),
//!    else the one without a pattern; none is a 500.
//! 4. Its response template (by the request's `Accept`, else
//!    `application/json`, else its only one) renders the answer, its
//!    `method.response.header.*` parameters become headers, and
//!    `$context.responseOverride` may change the status and headers.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method as HttpMethod, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use super::integrations::{invocation, path_placeholder, v1_event};
use super::{
    gateway_answer, header_text, GatewayAnswer, IntegrationCall, BAD_GATEWAY, INTERNAL_ERROR,
    THROTTLED, TIMED_OUT,
};
use crate::http_backend::{
    fill_template, substitute_stage_variables, BackendError, BackendRequest,
};
use crate::invoker::{function_arn_of_integration_uri, InvokeFailure};
use crate::mapping_template::{render_full, url_encode, Rendered, TemplateInput};
use crate::proxy::{media_type_essence, query_pairs};
use crate::rest_api::model::{Integration, IntegrationResponse, IntegrationType};
use crate::rest_api::RestApiService;

const UNSUPPORTED_MEDIA_TYPE: GatewayAnswer = GatewayAnswer {
    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
    message: "Unsupported Media Type",
    error_type: Some("UnsupportedMediaTypeException"),
};

/// `selectionPattern` (a Java regular expression) against the whole of
/// `text`: a status code, or a Lambda function's error message. A
/// pattern that does not compile matches nothing.
pub(crate) fn selection_matches(pattern: &str, text: &str) -> bool {
    regex_lite::Regex::new(&format!("^(?s:{pattern})$")).is_ok_and(|re| re.is_match(text))
}

/// What the request's templates read.
struct Sources {
    context: Value,
    path: Vec<(String, String)>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
}

impl Sources {
    fn of(call: &IntegrationCall<'_>) -> Sources {
        let event = v1_event(call);
        Sources {
            context: event.get("requestContext").cloned().unwrap_or(Value::Null),
            path: call
                .route
                .path_parameters
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
            query: query_pairs(call.raw_query),
            headers: call
                .headers
                .iter()
                .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect(),
        }
    }

    fn render(
        &self,
        template: &str,
        body: &str,
        stage_variables: &BTreeMap<String, String>,
    ) -> Result<Rendered, crate::mapping_template::TemplateError> {
        render_full(
            template,
            &TemplateInput {
                body,
                path: &self.path,
                query: &self.query,
                headers: &self.headers,
                context: &self.context,
                stage_variables,
            },
        )
    }
}

/// What the backend answered, for selecting an integration response.
struct Outcome {
    /// What `selectionPattern`s are matched against; `None` selects the
    /// default response (a Lambda function that did not fail).
    selector: Option<String>,
    body: String,
    headers: HeaderMap,
}

/// The rendered integration request: its body and the template's media type.
enum RequestBody {
    Rendered(Rendered, String),
    Passthrough,
}

fn request_body(
    integration: &Integration,
    call: &IntegrationCall<'_>,
    sources: &Sources,
    body: &str,
) -> Result<RequestBody, &'static GatewayAnswer> {
    let content_type = media_type_essence(header_text(call.headers, &http::header::CONTENT_TYPE))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "application/json".into());
    let templates = &integration.request_templates;
    let template = templates
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(&content_type));
    match (template, integration.passthrough_behavior.as_deref()) {
        (Some((media_type, template)), _) => sources
            .render(template, body, &call.stage.variables)
            .map(|r| RequestBody::Rendered(r, media_type.clone()))
            .map_err(|e| {
                tracing::info!(api_id = %call.api.id, error = %e, "request template failed");
                &INTERNAL_ERROR
            }),
        (None, None | Some("WHEN_NO_MATCH")) => Ok(RequestBody::Passthrough),
        (None, Some("WHEN_NO_TEMPLATES")) if templates.is_empty() => Ok(RequestBody::Passthrough),
        (None, _) => Err(&UNSUPPORTED_MEDIA_TYPE),
    }
}

/// Serves a `MOCK`, `HTTP` or `AWS` integration.
pub(super) async fn non_proxy(
    service: &RestApiService,
    integration: &Integration,
    call: &IntegrationCall<'_>,
) -> Response {
    let sources = Sources::of(call);
    let body = String::from_utf8_lossy(&call.body);
    let request = match request_body(integration, call, &sources, &body) {
        Ok(request) => request,
        Err(answer) => return gateway_answer(answer, call.ids),
    };
    let outcome = match integration.integration_type {
        IntegrationType::Mock => Ok(mock(&request)),
        IntegrationType::Http => http(service, integration, call, &sources, &request).await,
        IntegrationType::Aws => lambda(service, integration, call, &request).await,
        IntegrationType::AwsProxy | IntegrationType::HttpProxy => Err(&INTERNAL_ERROR),
    };
    match outcome {
        Ok(outcome) => respond(integration, call, &sources, outcome),
        Err(answer) => gateway_answer(answer, call.ids),
    }
}

/// A mock's status is its rendered request's `statusCode` (200 without one).
fn mock(request: &RequestBody) -> Outcome {
    let status = match request {
        RequestBody::Rendered(rendered, _) => serde_json::from_str::<Value>(&rendered.text)
            .ok()
            .and_then(|v| match v.get("statusCode")? {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }),
        RequestBody::Passthrough => None,
    };
    Outcome {
        selector: Some(status.unwrap_or(200).to_string()),
        body: String::new(),
        headers: HeaderMap::new(),
    }
}

/// A mapped request parameter's value: `method.request.{path,querystring,
/// header}.x`, `'literal'`, `context.x`, `stageVariables.x`.
fn request_parameter(
    source: &str,
    call: &IntegrationCall<'_>,
    sources: &Sources,
) -> Option<String> {
    if let Some(literal) = source.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Some(literal.to_string());
    }
    let find = |pairs: &[(String, String)], name: &str, any_case: bool| {
        pairs
            .iter()
            .find(|(n, _)| n == name || (any_case && n.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v.clone())
    };
    if let Some(name) = source.strip_prefix("method.request.path.") {
        return find(&sources.path, name, false);
    }
    if let Some(name) = source.strip_prefix("method.request.querystring.") {
        return find(&sources.query, name, false);
    }
    if let Some(name) = source.strip_prefix("method.request.header.") {
        return find(&sources.headers, name, true);
    }
    if let Some(name) = source.strip_prefix("stageVariables.") {
        return call.stage.variables.get(name).cloned();
    }
    let path = source.strip_prefix("context.")?;
    let value = path
        .split('.')
        .try_fold(&sources.context, |at, member| at.get(member))?;
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

async fn http(
    service: &RestApiService,
    integration: &Integration,
    call: &IntegrationCall<'_>,
    sources: &Sources,
    request: &RequestBody,
) -> Result<Outcome, &'static GatewayAnswer> {
    let template = substitute_stage_variables(
        integration.uri.as_deref().unwrap_or_default(),
        &call.stage.variables,
    );
    let mut url = fill_template(&template, &|name| {
        path_placeholder(integration, &call.route.path_parameters, name)
    });
    let mut headers = HeaderMap::new();
    let (body, content_type) = match request {
        RequestBody::Rendered(rendered, media_type) => {
            (Bytes::from(rendered.text.clone()), Some(media_type.clone()))
        }
        RequestBody::Passthrough => (
            call.body.clone(),
            header_text(call.headers, &http::header::CONTENT_TYPE).map(str::to_string),
        ),
    };
    if let Some(value) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(http::header::CONTENT_TYPE, value);
    }
    let mut query = Vec::new();
    for (target, source) in &integration.request_parameters {
        let Some(value) = request_parameter(source, call, sources) else {
            continue;
        };
        if let Some(name) = target.strip_prefix("integration.request.header.") {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.insert(name, value);
            }
        } else if let Some(name) = target.strip_prefix("integration.request.querystring.") {
            query.push((name.to_string(), value));
        }
    }
    if !query.is_empty() {
        let encoded: Vec<String> = query
            .iter()
            .map(|(n, v)| format!("{}={}", url_encode(n), url_encode(v)))
            .collect();
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&encoded.join("&"));
    }
    let method = integration
        .http_method
        .as_deref()
        .filter(|m| *m != "ANY")
        .and_then(|m| HttpMethod::from_bytes(m.as_bytes()).ok())
        .unwrap_or_else(|| call.method.clone());
    let answer = service
        .http
        .forward(BackendRequest {
            method,
            url,
            headers,
            body,
            timeout: std::time::Duration::from_millis(integration.timeout_in_millis),
        })
        .await
        .map_err(|e| match e {
            BackendError::Timeout(_) => &TIMED_OUT,
            other => {
                tracing::info!(api_id = %call.api.id, error = %other, "HTTP integration failed");
                &INTERNAL_ERROR
            }
        })?;
    let mut headers = HeaderMap::new();
    for (name, value) in answer.headers {
        headers.append(name, value);
    }
    Ok(Outcome {
        selector: Some(answer.status.as_u16().to_string()),
        body: String::from_utf8_lossy(&answer.body).into_owned(),
        headers,
    })
}

/// An `AWS` integration with Lambda
/// (`arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations`):
/// the rendered body is the function's event; its answer is the backend
/// body, its `errorMessage` (when it failed) the selector.
async fn lambda(
    service: &RestApiService,
    integration: &Integration,
    call: &IntegrationCall<'_>,
    request: &RequestBody,
) -> Result<Outcome, &'static GatewayAnswer> {
    let uri = substitute_stage_variables(
        integration.uri.as_deref().unwrap_or_default(),
        &call.stage.variables,
    );
    let Some(function_arn) = function_arn_of_integration_uri(&uri) else {
        tracing::warn!(api_id = %call.api.id, uri, "AWS integration not served (only Lambda functions)");
        return Err(&INTERNAL_ERROR);
    };
    let payload = match request {
        RequestBody::Rendered(rendered, _) => Bytes::from(rendered.text.clone()),
        RequestBody::Passthrough => call.body.clone(),
    };
    let invocation = invocation(call, function_arn, payload);
    let timeout = std::time::Duration::from_millis(integration.timeout_in_millis);
    let outcome = tokio::time::timeout(timeout, service.invoker.invoke(invocation))
        .await
        .map_err(|_| &TIMED_OUT)?
        .map_err(|failure| match failure {
            InvokeFailure::Throttled(_) => &THROTTLED,
            InvokeFailure::NotReady(_) | InvokeFailure::Service(_) => &BAD_GATEWAY,
            other => {
                tracing::info!(api_id = %call.api.id, error = %other, "Lambda integration refused");
                &INTERNAL_ERROR
            }
        })?;
    let body = String::from_utf8_lossy(&outcome.payload).into_owned();
    let selector = outcome.function_error.is_some().then(|| {
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("errorMessage")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default()
    });
    Ok(Outcome {
        selector,
        body,
        headers: HeaderMap::new(),
    })
}

/// The integration response for `selector`: the first whose pattern
/// matches it, else the default one (no pattern).
fn select_response<'a>(
    responses: &'a BTreeMap<String, IntegrationResponse>,
    selector: Option<&str>,
) -> Option<&'a IntegrationResponse> {
    let is_default =
        |r: &&IntegrationResponse| r.selection_pattern.as_deref().is_none_or(str::is_empty);
    selector
        .and_then(|s| {
            responses.values().find(|r| {
                r.selection_pattern
                    .as_deref()
                    .is_some_and(|p| !p.is_empty() && selection_matches(p, s))
            })
        })
        .or_else(|| responses.values().find(is_default))
}

/// A `method.response.header.*` mapping's value: `'literal'`,
/// `integration.response.header.x`, `integration.response.body` (or a
/// JSONPath into it), `context.x`, `stageVariables.x`.
fn response_parameter(
    source: &str,
    outcome: &Outcome,
    call: &IntegrationCall<'_>,
    sources: &Sources,
) -> Option<String> {
    if let Some(name) = source.strip_prefix("integration.response.header.") {
        return outcome
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
    }
    if source == "integration.response.body" {
        return Some(outcome.body.clone());
    }
    if let Some(path) = source.strip_prefix("integration.response.body.") {
        let json: Value = serde_json::from_str(&outcome.body).ok()?;
        return strato_pattern::json_path::select(&json, &format!("$.{path}")).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    request_parameter(source, call, sources)
}

fn respond(
    integration: &Integration,
    call: &IntegrationCall<'_>,
    sources: &Sources,
    outcome: Outcome,
) -> Response {
    let Some(selected) = select_response(
        &integration.integration_responses,
        outcome.selector.as_deref(),
    ) else {
        tracing::info!(api_id = %call.api.id, "no integration response matches and none is the default");
        return gateway_answer(&INTERNAL_ERROR, call.ids);
    };
    let Some(mut status) = selected
        .status_code
        .parse::<u16>()
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
    else {
        return gateway_answer(&INTERNAL_ERROR, call.ids);
    };
    let templates = &selected.response_templates;
    let accept = media_type_essence(header_text(call.headers, &http::header::ACCEPT));
    let template = accept
        .and_then(|a| templates.get_key_value(&a))
        .or_else(|| templates.get_key_value("application/json"))
        .or_else(|| templates.iter().next());
    let mut overrides = Vec::new();
    let (content_type, body) = match template {
        Some((media_type, template)) => {
            match sources.render(template, &outcome.body, &call.stage.variables) {
                Ok(rendered) => {
                    if let Some(s) = rendered
                        .status_override()
                        .and_then(|s| StatusCode::from_u16(s).ok())
                    {
                        status = s;
                    }
                    overrides = rendered.header_overrides();
                    (media_type.clone(), rendered.text)
                }
                Err(e) => {
                    tracing::info!(api_id = %call.api.id, error = %e, "response template failed");
                    return gateway_answer(&INTERNAL_ERROR, call.ids);
                }
            }
        }
        None => (
            outcome
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_string(),
            outcome.body.clone(),
        ),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(http::header::CONTENT_TYPE, value);
    }
    let mapped = selected
        .response_parameters
        .iter()
        .filter_map(|(target, source)| {
            let name = target.strip_prefix("method.response.header.")?;
            Some((
                name.to_string(),
                response_parameter(source, &outcome, call, sources)?,
            ))
        });
    for (name, value) in mapped.collect::<Vec<_>>().into_iter().chain(overrides) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::selection_matches;

    #[test]
    fn selection_patterns_match_the_whole_text() {
        assert!(selection_matches("200", "200"));
        assert!(!selection_matches("200", "201"));
        assert!(!selection_matches("20", "200"));
        assert!(selection_matches(r"2\d{2}", "204"));
        assert!(!selection_matches(r"2\d{2}", "404"));
        assert!(selection_matches("4..", "404"));
        assert!(selection_matches("5.*", "503"));
        assert!(!selection_matches("5.*", "403"));
        assert!(selection_matches(".*Not Found.*", "Item Not Found: 7"));
        assert!(selection_matches(
            "Bad Request:.*",
            "Bad Request: line\ntwo"
        ));
        assert!(!selection_matches("(unclosed", "(unclosed"));
    }
}
