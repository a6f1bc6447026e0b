//! The integrations: AWS_PROXY (the Lambda event, payload 2.0 or 1.0, and
//! its answer) and HTTP_PROXY.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::Value;

use super::mapping::{apply_parameter_mappings, encode_query};
use super::{internal_error, message, Exchange};
use crate::http_api::live::CompiledRoute;
use crate::http_api::model::Integration;
use crate::http_api::HttpApiService;
use crate::http_backend::{
    fill_template, substitute_stage_variables, BackendError, BackendRequest,
};
use crate::invoker::{
    function_arn_of_integration_uri, GatewayInvocation, InvokeAction, InvokeFailure,
    InvokePrincipal, APIGATEWAY_PRINCIPAL,
};
use crate::proxy::{self, EventBody, ProxyResponse};

/// The request headers as the integration sees them: API Gateway adds
/// `x-forwarded-for`, `x-forwarded-port`, `x-forwarded-proto` and
/// `x-amzn-trace-id`.
fn forwarded_headers(exchange: &Exchange<'_>) -> HeaderMap {
    let mut headers = exchange.headers.clone();
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(existing) => format!("{existing}, {}", exchange.source_ip),
        None => exchange.source_ip.clone(),
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded_for) {
        headers.insert("x-forwarded-for", v);
    }
    let port = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.rsplit_once(':'))
        .map(|(_, p)| p.to_string())
        .unwrap_or_else(|| "80".into());
    if let Ok(v) = HeaderValue::from_str(&port) {
        headers.insert("x-forwarded-port", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if !headers.contains_key("x-amzn-trace-id") {
        let trace = format!(
            "Root=1-{:08x}-{}",
            exchange.received_at.timestamp(),
            &uuid::Uuid::new_v4().simple().to_string()[..24]
        );
        if let Ok(v) = HeaderValue::from_str(&trace) {
            headers.insert("x-amzn-trace-id", v);
        }
    }
    headers
}

/// What either payload format says of the exchange (`headers` being the
/// ones forwarded to the function).
fn event_request<'a>(
    exchange: &'a Exchange<'_>,
    headers: &'a HeaderMap,
    path_parameters: &'a BTreeMap<String, String>,
    body: &'a EventBody,
    authorizer: Option<&'a Value>,
) -> proxy::EventRequest<'a> {
    proxy::EventRequest {
        method: exchange.method.as_str(),
        headers,
        raw_query: &exchange.raw_query,
        path_parameters,
        stage_variables: &exchange.stage.variables,
        body,
        account_id: &exchange.api.account,
        api_id: &exchange.api.api_id,
        stage: &exchange.stage.name,
        request_id: &exchange.request_id,
        domain_name: &exchange.domain_name,
        source_ip: &exchange.source_ip,
        received_at: exchange.received_at,
        authorizer,
    }
}

/// The function's event in the payload format an integration or
/// authorizer names: `1.0`, or 2.0 for anything else.
pub(super) fn proxy_event(
    exchange: &Exchange<'_>,
    route: &CompiledRoute,
    path_parameters: &BTreeMap<String, String>,
    body: &EventBody,
    authorizer: Option<&Value>,
    payload_format_version: Option<&str>,
) -> Value {
    let headers = forwarded_headers(exchange);
    let request = event_request(exchange, &headers, path_parameters, body, authorizer);
    if payload_format_version != Some("1.0") {
        return proxy::v2::event(&proxy::v2::V2EventInput {
            request,
            route_key: &route.route.route_key,
            raw_path: &exchange.raw_path,
        });
    }
    let resource = match route.route.route_key.split_once(' ') {
        Some((_, path)) => path,
        None => route.route.route_key.as_str(),
    };
    proxy::v1::event(&proxy::v1::V1EventInput {
        request,
        version: Some("1.0"),
        resource,
        path: &exchange.raw_path,
        context_path: &exchange.raw_path,
        header_case: None,
        resource_id: &route.route.route_id,
        extended_request_id: &exchange.request_id,
        api_key: None,
        api_key_id: None,
    })
}

pub(super) async fn lambda_integration(
    svc: &HttpApiService,
    exchange: &mut Exchange<'_>,
    route: &CompiledRoute,
    integration: &Integration,
    path_parameters: &BTreeMap<String, String>,
    authorizer_context: Value,
) -> ProxyResponse {
    let uri = substitute_stage_variables(
        integration.integration_uri.as_deref().unwrap_or(""),
        &exchange.stage.variables,
    );
    let Some(function_arn) = function_arn_of_integration_uri(&uri) else {
        exchange.log.set(
            "integrationErrorMessage",
            format!("invalid function URI {uri}"),
        );
        return internal_error();
    };
    let body = exchange.event_body();
    let authorizer = (!authorizer_context.is_null()).then_some(&authorizer_context);
    let format = integration.payload_format_version.as_deref();
    let event = proxy_event(exchange, route, path_parameters, &body, authorizer, format);
    let invocation = GatewayInvocation {
        function_arn,
        principal: InvokePrincipal::Service(APIGATEWAY_PRINCIPAL.into()),
        action: InvokeAction::InvokeFunction,
        source_arn: Some(exchange.route_arn(route)),
        source_account: Some(exchange.api.account.clone()),
        payload: Bytes::from(event.to_string()),
    };
    let timeout = Duration::from_millis(
        integration
            .timeout_in_millis
            .clamp(50, 30_000)
            .unsigned_abs(),
    );
    let outcome = match tokio::time::timeout(timeout, svc.invoker.invoke(invocation)).await {
        Err(_) => {
            exchange
                .log
                .set("integrationErrorMessage", "The integration timed out");
            return message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
        }
        Ok(Err(InvokeFailure::Throttled(reason))) => {
            exchange.log.set("integrationErrorMessage", reason);
            exchange.log.set("integration.status", "429");
            return message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
        }
        Ok(Err(e)) => {
            exchange.log.set("integrationErrorMessage", e.to_string());
            return internal_error();
        }
        Ok(Ok(outcome)) => outcome,
    };
    exchange.log.set("integration.status", "200");
    exchange
        .log
        .set("integration.requestId", outcome.request_id.clone());
    if outcome.function_error.is_some() {
        exchange.log.set(
            "integrationErrorMessage",
            "The Lambda function returned an error",
        );
        exchange.log.set("integration.error", "Unhandled");
        return internal_error();
    }
    let mapped = if format == Some("1.0") {
        proxy::v1::response(&outcome.payload)
    } else {
        proxy::v2::response(&outcome.payload)
    };
    match mapped {
        Ok(answer) => answer,
        Err(e) => {
            exchange.log.set("integrationErrorMessage", e.to_string());
            internal_error()
        }
    }
}

pub(super) async fn http_integration(
    svc: &HttpApiService,
    exchange: &mut Exchange<'_>,
    integration: &Integration,
    path_parameters: &BTreeMap<String, String>,
) -> ProxyResponse {
    let template = substitute_stage_variables(
        integration.integration_uri.as_deref().unwrap_or(""),
        &exchange.stage.variables,
    );
    let filled = fill_template(&template, &|name| {
        path_parameters
            .get(name)
            .or_else(|| path_parameters.get(name.trim_end_matches('+')))
            .cloned()
    });
    let mut headers = exchange.headers.clone();
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let forwarded = format!(
        "by={};for={};host={};proto=http",
        "127.0.0.1", exchange.source_ip, host
    );
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        headers.append(HeaderName::from_static("forwarded"), v);
    }
    let mut query = proxy::query_pairs(&exchange.raw_query);
    let mut path_override = None;
    apply_parameter_mappings(
        exchange,
        integration,
        path_parameters,
        &mut headers,
        &mut query,
        &mut path_override,
    );
    let mut url = filled;
    if let Some(path) = path_override {
        // Replace the URL's path with the mapped one.
        if let Some(scheme_end) = url.find("://") {
            let after = scheme_end + 3;
            let path_start = url[after..]
                .find('/')
                .map(|p| p + after)
                .unwrap_or(url.len());
            url.truncate(path_start);
            if !path.starts_with('/') {
                url.push('/');
            }
            url.push_str(&path);
        }
    }
    if !query.is_empty() {
        let joined = if integration
            .request_parameters
            .keys()
            .any(|k| k.contains("querystring"))
        {
            encode_query(&query)
        } else {
            exchange.raw_query.clone()
        };
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&joined);
    }
    let method = match integration.integration_method.as_deref() {
        None | Some("ANY") => exchange.method.clone(),
        Some(m) => Method::from_bytes(m.as_bytes()).unwrap_or(exchange.method.clone()),
    };
    let request = BackendRequest {
        method,
        url,
        headers,
        body: exchange.body.clone(),
        timeout: Duration::from_millis(
            integration
                .timeout_in_millis
                .clamp(50, 30_000)
                .unsigned_abs(),
        ),
    };
    match svc.http.forward(request).await {
        Ok(answer) => {
            exchange
                .log
                .set("integration.status", answer.status.as_u16().to_string());
            answer
        }
        Err(BackendError::Timeout(_)) => {
            exchange
                .log
                .set("integrationErrorMessage", "The integration timed out");
            message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
        Err(e) => {
            exchange.log.set("integrationErrorMessage", e.to_string());
            internal_error()
        }
    }
}
