//! A route's integration run for one WebSocket event.
//!
//! - `AWS_PROXY`: the event goes to the function; its answer's `statusCode`,
//!   `body` and `headers` come back.
//! - `HTTP_PROXY`: the message is POSTed as it is; the backend's body comes
//!   back.
//! - `HTTP` and `MOCK` (non-proxy): the integration's request template,
//!   chosen by its `TemplateSelectionExpression` (`$default` as the
//!   catch-all, `PassthroughBehavior` when none matches), is rendered
//!   ([`crate::mapping_template`]) and POSTed to the backend, or for a
//!   mock read for its `statusCode`. The status then picks an integration
//!   response (a `/pattern/` key matching it, else `$default`), whose
//!   response template (chosen by its own selection expression) renders
//!   what goes back to the client.
//! - `HTTP` and `HTTP_PROXY` requests carry the integration's
//!   `RequestParameters` (`integration.request.header.X` from
//!   `route.request.*`, `context.*`, `stageVariables.*` or `'static'`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde_json::Value;

use super::selection::{evaluate, request_body_value, value_text};
use super::session::{Session, Turn};
use crate::http_api::live::{CompiledRoute, LiveStage};
use crate::http_api::model::{Integration, IntegrationResponse, IntegrationType};
use crate::http_api::HttpApiService;
use crate::http_backend::{fill_template, substitute_stage_variables, BackendRequest};
use crate::invoker::{
    function_arn_of_integration_uri, GatewayInvocation, InvokeAction, InvokePrincipal,
    APIGATEWAY_PRINCIPAL,
};
use crate::mapping_template::{render, TemplateInput};
use crate::rest_api::dataplane::templates::selection_matches;

/// What an integration answered: a status, the body to send back on a
/// two-way route, and (Lambda proxy answers) the headers.
#[derive(Debug, PartialEq)]
pub(super) struct Answer {
    pub status: u16,
    pub body: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    fn status(status: u16, body: Option<String>) -> Answer {
        Answer {
            status,
            body,
            headers: Vec::new(),
        }
    }

    /// A header of the answer, by name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `headers` (strings) and `multiValueHeaders` (lists) of a proxy answer.
fn answer_headers(map: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    if let Some(Value::Object(single)) = map.get("headers") {
        for (name, value) in single {
            headers.push((name.clone(), value_text(value)));
        }
    }
    if let Some(Value::Object(multi)) = map.get("multiValueHeaders") {
        for (name, values) in multi {
            if let Value::Array(values) = values {
                headers.extend(values.iter().map(|v| (name.clone(), value_text(v))));
            }
        }
    }
    headers
}

/// Reads a Lambda proxy answer: `{"statusCode", "body", "headers"}`, or any
/// other JSON value as a 200 whose body is that value (a string as it is).
pub(super) fn read_proxy_answer(payload: &[u8]) -> Answer {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(map)) if map.contains_key("statusCode") => Answer {
            status: map
                .get("statusCode")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(502),
            body: match map.get("body") {
                None | Some(Value::Null) => None,
                Some(other) => Some(value_text(other)),
            },
            headers: answer_headers(&map),
        },
        Ok(Value::Null) => Answer::status(200, None),
        Ok(other) => Answer::status(200, Some(value_text(&other))),
        Err(_) => Answer::status(200, Some(String::from_utf8_lossy(payload).into_owned())),
    }
}

/// The (name, value) pairs of an event's `headers` or
/// `queryStringParameters` object, for `$input.params`.
fn pairs(event: &Value, member: &str) -> Vec<(String, String)> {
    match event.get(member) {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(n, v)| (n.clone(), value_text(v)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Renders `template` for `event`, with `body` as `$input.body`.
fn render_for(
    template: &str,
    event: &Value,
    body: &str,
    stage: &LiveStage,
) -> Result<String, String> {
    let headers = pairs(event, "headers");
    let query = pairs(event, "queryStringParameters");
    render(
        template,
        &TemplateInput {
            body,
            path: &[],
            query: &query,
            headers: &headers,
            context: event.get("requestContext").unwrap_or(&Value::Null),
            stage_variables: &stage.variables,
        },
    )
    .map_err(|e| e.to_string())
}

/// Whether `key` is an integration request parameter WebSocket APIs map:
/// `integration.request.{header,querystring,path}.{name}`.
pub fn is_request_parameter_target(key: &str) -> bool {
    request_parameter_target(key).is_some()
}

fn request_parameter_target(key: &str) -> Option<(&str, &str)> {
    let (location, name) = key.strip_prefix("integration.request.")?.split_once('.')?;
    let valid = matches!(location, "header" | "querystring" | "path")
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._$-".contains(c));
    valid.then_some((location, name))
}

/// A mapping expression's value for `event`: `route.request.header.x`,
/// `route.request.querystring.x` (and their `multivalue` forms; only
/// `$connect` has them), `route.request.body.{JSONPath}`,
/// `context.x`, `stageVariables.x` or a `'static value'`.
fn parameter_value(
    source: &str,
    event: &Value,
    message: &str,
    variables: &BTreeMap<String, String>,
) -> Option<String> {
    if let Some(literal) = source.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Some(literal.to_string());
    }
    let lookup = |member: &str, name: &str, any_case: bool| {
        let map = event.get(member)?.as_object()?;
        let value = map.get(name).or_else(|| {
            any_case
                .then(|| map.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)))
                .flatten()
                .map(|(_, v)| v)
        })?;
        Some(match value {
            Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(","),
            other => value_text(other),
        })
    };
    if let Some(name) = source.strip_prefix("route.request.header.") {
        return lookup("headers", name, true);
    }
    if let Some(name) = source.strip_prefix("route.request.multivalueheader.") {
        return lookup("multiValueHeaders", name, true);
    }
    if let Some(name) = source.strip_prefix("route.request.querystring.") {
        return lookup("queryStringParameters", name, false);
    }
    if let Some(name) = source.strip_prefix("route.request.multivaluequerystring.") {
        return lookup("multiValueQueryStringParameters", name, false);
    }
    if let Some(path) = source.strip_prefix("route.request.body.") {
        let json: Value = serde_json::from_str(message).ok()?;
        let path = if path.starts_with('$') {
            path.to_string()
        } else {
            format!("$.{path}")
        };
        return strato_pattern::json_path::select(&json, &path).map(value_text);
    }
    if let Some(name) = source.strip_prefix("stageVariables.") {
        return variables.get(name).cloned();
    }
    let path = source.strip_prefix("context.")?;
    let context = event.get("requestContext")?;
    path.split('.')
        .try_fold(context, |at, member| at.get(member))
        .filter(|v| !v.is_null())
        .map(value_text)
}

/// The route's `RequestParameters` marked `Required` that the request
/// lacks (`$connect` reads headers and query strings).
pub(super) fn missing_required_parameters(route: &CompiledRoute, event: &Value) -> Vec<String> {
    route
        .route
        .request_parameters
        .iter()
        .filter(|(_, constraint)| {
            // `ParameterConstraints` is `{"required": true}` on the wire.
            constraint
                .get("required")
                .or_else(|| constraint.get("Required"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
        .filter(|(key, _)| parameter_value(key, event, "", &BTreeMap::new()).is_none())
        .map(|(key, _)| {
            key.rsplit_once('.')
                .map_or(key.as_str(), |(_, name)| name)
                .to_string()
        })
        .collect()
}

/// The integration's request parameters applied to an HTTP request:
/// `{name}` placeholders of the URI, headers and query values.
fn apply_request_parameters(
    integration: &Integration,
    event: &Value,
    message: &str,
    stage: &LiveStage,
    uri: &str,
    headers: &mut HeaderMap,
) -> String {
    let mut path = Vec::new();
    let mut query = Vec::new();
    for (target, source) in &integration.request_parameters {
        let (Some((location, name)), Some(value)) = (
            request_parameter_target(target),
            parameter_value(source, event, message, &stage.variables),
        ) else {
            continue;
        };
        match location {
            "header" => {
                if let (Ok(name), Ok(value)) = (
                    http::HeaderName::from_bytes(name.as_bytes()),
                    http::HeaderValue::from_str(&value),
                ) {
                    headers.insert(name, value);
                }
            }
            "querystring" => query.push(format!(
                "{}={}",
                crate::mapping_template::url_encode(name),
                crate::mapping_template::url_encode(&value)
            )),
            _ => path.push((name.to_string(), value)),
        }
    }
    let mut url = fill_template(uri, &|name| {
        path.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| crate::mapping_template::url_encode(v))
    });
    if !query.is_empty() {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&query.join("&"));
    }
    url
}

/// The integration request's body: the template the integration's
/// selection expression picks (or `$default`), else the message itself
/// when the passthrough behavior lets it through.
fn request_body(
    integration: &Integration,
    event: &Value,
    message: &str,
    stage: &LiveStage,
) -> Result<String, String> {
    let json = serde_json::from_str::<Value>(message).ok();
    let key = integration
        .template_selection_expression
        .as_deref()
        .map_or_else(
            || "$default".to_string(),
            |e| evaluate(e, &|name| request_body_value(json.as_ref(), name)),
        );
    let templates = &integration.request_templates;
    if let Some(template) = templates.get(&key).or_else(|| templates.get("$default")) {
        return render_for(template, event, message, stage);
    }
    match integration.passthrough_behavior.as_deref() {
        None | Some("WHEN_NO_MATCH") => Ok(message.to_string()),
        Some("WHEN_NO_TEMPLATES") if templates.is_empty() => Ok(message.to_string()),
        Some(behavior) => Err(format!(
            "no request template for {key} and the passthrough behavior is {behavior}"
        )),
    }
}

/// The integration response for `status`: a `/pattern/` key that matches
/// it, else `$default`.
fn select_response(responses: &[IntegrationResponse], status: u16) -> Option<&IntegrationResponse> {
    let status = status.to_string();
    responses
        .iter()
        .find(|r| {
            r.integration_response_key
                .strip_prefix('/')
                .and_then(|k| k.strip_suffix('/'))
                .is_some_and(|pattern| selection_matches(pattern, &status))
        })
        .or_else(|| {
            responses
                .iter()
                .find(|r| r.integration_response_key == "$default")
        })
}

/// What an integration response sends back: its template (chosen by its
/// selection expression, `$default`, or the only one) rendered with the
/// backend's body as `$input.body`; without a template, that body.
fn response_body(
    response: &IntegrationResponse,
    status: u16,
    backend: &str,
    event: &Value,
    stage: &LiveStage,
) -> Result<Option<String>, String> {
    let json = serde_json::from_str::<Value>(backend).ok();
    let key = response
        .template_selection_expression
        .as_deref()
        .map_or_else(
            || "$default".to_string(),
            |e| {
                evaluate(e, &|name| match name {
                    "integration.response.statuscode" => Some(status.to_string()),
                    other => other
                        .strip_prefix("integration.response.body")
                        .and_then(|path| {
                            strato_pattern::json_path::select(json.as_ref()?, &format!("${path}"))
                        })
                        .map(value_text),
                })
            },
        );
    let templates = &response.response_templates;
    let template = templates
        .get(&key)
        .or_else(|| templates.get("$default"))
        .or_else(|| {
            (templates.len() == 1)
                .then(|| templates.values().next())
                .flatten()
        });
    match template {
        Some(template) => render_for(template, event, backend, stage).map(Some),
        None => Ok((!backend.is_empty()).then(|| backend.to_string())),
    }
}

/// Runs a route's integration with `event` (Lambda) or `payload` (HTTP,
/// MOCK); `Err` when there is none or it failed.
pub(super) async fn integrate(
    svc: &HttpApiService,
    session: &Session,
    stage: &LiveStage,
    route: &CompiledRoute,
    event: &Value,
    payload: Bytes,
    turn: &mut Turn,
) -> Result<Answer, String> {
    let integration = route
        .route
        .target
        .as_deref()
        .and_then(|t| t.strip_prefix("integrations/"))
        .and_then(|id| stage.integrations.get(id))
        .ok_or_else(|| "the route has no integration".to_string())?;
    let timeout = Duration::from_millis(u64::try_from(integration.timeout_in_millis).unwrap_or(0))
        .min(crate::invoker::DEFAULT_INTEGRATION_TIMEOUT);
    let uri = substitute_stage_variables(
        integration.integration_uri.as_deref().unwrap_or(""),
        &stage.variables,
    );
    let started = Instant::now();
    let message = String::from_utf8_lossy(&payload).into_owned();
    let (status, backend) = match integration.integration_type {
        IntegrationType::AwsProxy => {
            let function_arn = function_arn_of_integration_uri(&uri)
                .ok_or_else(|| format!("invalid function URI {uri}"))?;
            let invocation = GatewayInvocation {
                function_arn,
                principal: InvokePrincipal::Service(APIGATEWAY_PRINCIPAL.into()),
                action: InvokeAction::InvokeFunction,
                source_arn: Some(session.route_arn(&route.route.route_key)),
                source_account: Some(session.api.account.clone()),
                payload: Bytes::from(event.to_string()),
            };
            let outcome = tokio::time::timeout(timeout, svc.invoker.invoke(invocation))
                .await
                .map_err(|_| "the integration timed out".to_string())?
                .map_err(|e| e.to_string())?;
            if outcome.function_error.is_some() {
                return Err("the function failed".into());
            }
            let answer = read_proxy_answer(&outcome.payload);
            turn.record_integration(started, answer.status);
            return Ok(answer);
        }
        IntegrationType::HttpProxy | IntegrationType::Http => {
            let body = if integration.integration_type == IntegrationType::Http {
                Bytes::from(request_body(integration, event, &message, stage)?)
            } else {
                payload
            };
            let mut headers = HeaderMap::new();
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            let method = integration
                .integration_method
                .as_deref()
                .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
                .unwrap_or(Method::POST);
            let url =
                apply_request_parameters(integration, event, &message, stage, &uri, &mut headers);
            let answer = svc
                .http
                .forward(BackendRequest {
                    method,
                    url,
                    headers,
                    body,
                    timeout,
                })
                .await
                .map_err(|e| e.to_string())?;
            let body = String::from_utf8_lossy(&answer.body).into_owned();
            if integration.integration_type == IntegrationType::HttpProxy {
                let answer =
                    Answer::status(answer.status.as_u16(), (!body.is_empty()).then_some(body));
                turn.record_integration(started, answer.status);
                return Ok(answer);
            }
            (answer.status.as_u16(), body)
        }
        // A mock's status is its rendered request's `statusCode`.
        IntegrationType::Mock => {
            let request = request_body(integration, event, &message, stage)?;
            let status = serde_json::from_str::<Value>(&request)
                .ok()
                .and_then(|v| match v.get("statusCode")? {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                })
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(200);
            (status, String::new())
        }
    };
    turn.record_integration(started, status);
    let responses = stage
        .integration_responses
        .get(&integration.integration_id)
        .map_or(&[][..], Vec::as_slice);
    let body = match select_response(responses, status) {
        Some(response) => response_body(response, status, &backend, event, stage)?,
        None => (!backend.is_empty()).then_some(backend),
    };
    Ok(Answer::status(status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(key: &str, templates: &[(&str, &str)]) -> IntegrationResponse {
        IntegrationResponse {
            integration_response_id: "r1".into(),
            integration_response_key: key.into(),
            content_handling_strategy: None,
            response_parameters: Default::default(),
            response_templates: templates
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            template_selection_expression: None,
        }
    }

    #[test]
    fn proxy_answers_give_status_body_and_headers() {
        assert_eq!(
            read_proxy_answer(br#"{"statusCode":200,"body":"hi"}"#),
            Answer::status(200, Some("hi".into()))
        );
        assert_eq!(
            read_proxy_answer(br#"{"statusCode":403}"#),
            Answer::status(403, None)
        );
        assert_eq!(read_proxy_answer(b"null"), Answer::status(200, None));
        assert_eq!(
            read_proxy_answer(br#"{"a":1}"#),
            Answer::status(200, Some(r#"{"a":1}"#.into()))
        );
        assert_eq!(read_proxy_answer(br#"{"statusCode":"x"}"#).status, 502);
        let answer = read_proxy_answer(
            br#"{"statusCode":200,"headers":{"Sec-WebSocket-Protocol":"b"},"multiValueHeaders":{"x":["1","2"]}}"#,
        );
        assert_eq!(answer.header("sec-websocket-protocol"), Some("b"));
        assert_eq!(answer.headers.len(), 3);
    }

    #[test]
    fn request_parameters_map_route_request_context_and_stage_values() {
        let event = serde_json::json!({
            "headers": {"X-Room": "blue"},
            "queryStringParameters": {"user": "ann"},
            "multiValueQueryStringParameters": {"tag": ["a", "b"]},
            "requestContext": {"connectionId": "c1=", "identity": {"sourceIp": "1.2.3.4"}},
        });
        let variables = BTreeMap::from([("env".to_string(), "test".to_string())]);
        let message = r#"{"action":"say","user":{"name":"bo"}}"#;
        let value = |source| parameter_value(source, &event, message, &variables);
        assert_eq!(
            value("route.request.header.x-room").as_deref(),
            Some("blue")
        );
        assert_eq!(
            value("route.request.querystring.user").as_deref(),
            Some("ann")
        );
        assert_eq!(
            value("route.request.multivaluequerystring.tag").as_deref(),
            Some("a,b")
        );
        assert_eq!(value("route.request.body.user.name").as_deref(), Some("bo"));
        assert_eq!(value("route.request.body.$.action").as_deref(), Some("say"));
        assert_eq!(
            value("context.identity.sourceIp").as_deref(),
            Some("1.2.3.4")
        );
        assert_eq!(value("stageVariables.env").as_deref(), Some("test"));
        assert_eq!(value("'fixed'").as_deref(), Some("fixed"));
        assert_eq!(value("route.request.querystring.nobody"), None);
        assert!(is_request_parameter_target(
            "integration.request.header.X-Conn"
        ));
        assert!(is_request_parameter_target(
            "integration.request.querystring.who"
        ));
        assert!(!is_request_parameter_target("integration.request.body.x"));
        assert!(!is_request_parameter_target("append:header.x"));
    }

    #[test]
    fn integration_responses_are_chosen_by_status_pattern_then_default() {
        let responses = vec![response("$default", &[]), response(r"/4\d\d/", &[])];
        let key = |status| {
            select_response(&responses, status).map(|r| r.integration_response_key.clone())
        };
        assert_eq!(key(404).as_deref(), Some(r"/4\d\d/"));
        assert_eq!(key(200).as_deref(), Some("$default"));
        assert_eq!(select_response(&responses[1..], 200), None);
    }
}
