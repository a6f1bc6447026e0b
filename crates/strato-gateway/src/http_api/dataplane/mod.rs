//! Serving an HTTP API: pick the stage and the most specific route, answer
//! CORS preflights, throttle, authorize (Lambda or JWT authorizer), and run
//! the integration — AWS_PROXY with payload 2.0 or 1.0, or HTTP_PROXY with
//! request parameter mapping — answering as HTTP APIs do when something
//! fails (`{"message":"Not Found"}`, `Too Many Requests`, `Unauthorized`,
//! `Forbidden`, `Internal Server Error`, `Service Unavailable`).

mod authorize;
mod integrations;
mod mapping;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::json;

use super::live::{CompiledRoute, LiveApi, LiveStage};
use super::model::{IntegrationType, RouteAuthorization};
use super::HttpApiService;
use crate::access_log::{render, AccessLogContext};
use crate::authorizer::Decision;
use crate::metrics::ApiRequestMetric;
use crate::proxy::{self, is_text_content_type, EventBody, ProxyResponse};
use authorize::authorize;
use integrations::{http_integration, lambda_integration};

pub use authorize::identity_value_kind;
pub use mapping::parse_parameter_target;

/// HTTP APIs' payload limit (10 MB).
pub const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

/// An answer the gateway gives itself.
fn message(status: StatusCode, text: &str) -> ProxyResponse {
    ProxyResponse {
        status,
        headers: vec![(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body: Bytes::from(json!({ "message": text }).to_string()),
    }
}

fn not_found() -> ProxyResponse {
    message(StatusCode::NOT_FOUND, "Not Found")
}

fn internal_error() -> ProxyResponse {
    message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}

/// `apigw-requestid`: 16 characters as HTTP APIs make them (`ABCdEfGhIJKLmnO=`);
/// WebSocket APIs' connection, message and request ids have the same form.
pub fn new_request_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut id: String = (0..15)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    id.push('=');
    id
}

/// Everything known about the request being served.
struct Exchange<'a> {
    api: &'a LiveApi,
    stage: &'a LiveStage,
    method: Method,
    /// The request path as sent (stage included), percent-encoded.
    raw_path: String,
    /// The path from the stage on.
    route_path: String,
    raw_query: String,
    /// Path and query exactly as the client sent them (SigV4 signs them).
    original_uri: String,
    headers: HeaderMap,
    body: Bytes,
    source_ip: String,
    domain_name: String,
    request_id: String,
    received_at: DateTime<Utc>,
    log: AccessLogContext,
    integration_latency: Option<Duration>,
}

impl Exchange<'_> {
    fn route_arn(&self, route: &CompiledRoute) -> String {
        let base = format!(
            "arn:aws:execute-api:{}:{}:{}/{}",
            self.api.region, self.api.account, self.api.api_id, self.stage.name
        );
        if route.route.route_key == "$default" {
            format!("{base}/$default")
        } else {
            let path = route
                .route
                .route_key
                .split_once(' ')
                .map(|(_, p)| p)
                .unwrap_or("");
            format!("{base}/{}{path}", self.method)
        }
    }

    fn event_body(&self) -> EventBody {
        let content_type = self
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        EventBody::new(&self.body, !is_text_content_type(content_type))
    }

    fn header_value(&self, name: &str) -> Option<String> {
        let values: Vec<String> = self
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    }

    fn query_value(&self, name: &str) -> Option<String> {
        let values: Vec<String> = proxy::query_pairs(&self.raw_query)
            .into_iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v)
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    }

    /// A `$request.*`, `$context.*` or `$stageVariables.*` expression.
    fn lookup(
        &self,
        expression: &str,
        path_parameters: &BTreeMap<String, String>,
    ) -> Option<String> {
        if let Some(name) = expression.strip_prefix("$request.header.") {
            return self.header_value(&name.to_ascii_lowercase());
        }
        if let Some(name) = expression.strip_prefix("$request.querystring.") {
            return self.query_value(name);
        }
        if let Some(name) = expression.strip_prefix("$request.path.") {
            return path_parameters.get(name).cloned();
        }
        if expression == "$request.path" {
            return Some(self.route_path.clone());
        }
        if let Some(name) = expression.strip_prefix("$stageVariables.") {
            return self.stage.variables.get(name).cloned();
        }
        if let Some(name) = expression.strip_prefix("$context.") {
            return self.log.get(name).map(str::to_string);
        }
        None
    }
}

/// Serves one request to HTTP API `api`. `stage_path` is the request path
/// after the API's address (`/beta/items/7`, or `/items/7` on `$default`).
pub async fn handle(
    svc: &HttpApiService,
    api: Arc<LiveApi>,
    stage_path: &str,
    request: Request,
    source_ip: String,
    domain_name: String,
) -> Response {
    let started = Instant::now();
    let received_at = Utc::now();
    let request_id = new_request_id();
    let (parts, body) = request.into_parts();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let trimmed = stage_path.trim_start_matches('/');
    let (first_raw, rest) = match trimmed.find('/') {
        Some(i) => (&trimmed[..i], &trimmed[i..]),
        None => (trimmed, ""),
    };
    let first_segment = proxy::path_decode(first_raw);
    let named = api
        .stages
        .get(&first_segment)
        .filter(|s| s.name != "$default");
    let (stage, route_path) = match named {
        Some(stage) => (
            stage.clone(),
            if rest.is_empty() {
                "/".to_string()
            } else {
                rest.to_string()
            },
        ),
        None => match api.stages.get("$default") {
            Some(stage) => (stage.clone(), stage_path.to_string()),
            None => {
                return finish_bare(not_found(), &request_id);
            }
        },
    };
    let body = match axum::body::to_bytes(body, MAX_PAYLOAD).await {
        Ok(b) => b,
        Err(_) => {
            return finish_bare(
                message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
                &request_id,
            )
        }
    };
    let mut exchange = Exchange {
        api: &api,
        stage: &stage,
        method: parts.method.clone(),
        raw_path: stage_path.to_string(),
        route_path,
        raw_query,
        original_uri: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into()),
        headers: parts.headers,
        body,
        source_ip,
        domain_name,
        request_id: request_id.clone(),
        received_at,
        log: AccessLogContext::default(),
        integration_latency: None,
    };
    seed_log_context(&mut exchange);
    let (mut answer, route_key) = serve(svc, &mut exchange).await;
    let preflight = crate::cors::is_preflight(&exchange.method, &exchange.headers);
    if let Some(cors) = stage.cors.as_ref().filter(|_| !preflight) {
        crate::cors::decorate_answer(cors, &exchange.headers, &mut answer.headers);
    }
    let latency = started.elapsed();
    let status = answer.status.as_u16();
    exchange.log.set("status", status.to_string());
    exchange
        .log
        .set("responseLength", answer.body.len().to_string());
    exchange
        .log
        .set("responseLatency", latency.as_millis().to_string());
    exchange.log.set("routeKey", route_key.clone());
    if let Some(log) = &stage.access_log {
        let line = render(&log.format, &exchange.log);
        svc.access_logs.write(
            &api.account,
            &api.region,
            &log.log_group,
            &format!("{}_{}", api.api_id, stage.name),
            line,
        );
    }
    svc.metrics.record(&ApiRequestMetric {
        account: &api.account,
        region: &api.region,
        api_id: &api.api_id,
        api_name: &api.name,
        stage: &stage.name,
        method: exchange.method.as_str(),
        resource: &route_key,
        status,
        latency,
        integration_latency: exchange.integration_latency,
    });
    finish_bare(answer, &request_id)
}

fn seed_log_context(exchange: &mut Exchange<'_>) {
    let user_agent = exchange.header_value("user-agent").unwrap_or_default();
    let log = &mut exchange.log;
    log.set("requestId", exchange.request_id.clone());
    log.set("extendedRequestId", exchange.request_id.clone());
    log.set("apiId", exchange.api.api_id.clone());
    log.set("accountId", exchange.api.account.clone());
    log.set("stage", exchange.stage.name.clone());
    log.set("httpMethod", exchange.method.as_str().to_string());
    log.set("path", exchange.raw_path.clone());
    log.set("protocol", "HTTP/1.1");
    log.set("domainName", exchange.domain_name.clone());
    log.set(
        "domainPrefix",
        exchange
            .domain_name
            .split('.')
            .next()
            .unwrap_or("")
            .to_string(),
    );
    log.set("requestTime", proxy::request_time(exchange.received_at));
    log.set(
        "requestTimeEpoch",
        exchange.received_at.timestamp_millis().to_string(),
    );
    log.set("identity.sourceIp", exchange.source_ip.clone());
    log.set("identity.userAgent", user_agent);
}

fn finish_bare(answer: ProxyResponse, request_id: &str) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = answer.status;
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        headers.append(name, value);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("apigw-requestid", v.clone());
        headers.insert("x-amzn-requestid", v);
    }
    response
}

/// Runs the request through route selection, throttling, authorization
/// and the integration; returns the answer and the route key served.
async fn serve(svc: &HttpApiService, exchange: &mut Exchange<'_>) -> (ProxyResponse, String) {
    let stage = exchange.stage;
    if let Some(cors) = &stage.cors {
        if crate::cors::is_preflight(&exchange.method, &exchange.headers) {
            let (status, headers) = crate::cors::preflight(cors, &exchange.headers);
            return (
                ProxyResponse {
                    status,
                    headers,
                    body: Bytes::new(),
                },
                "-".into(),
            );
        }
    }
    let Some((route, path_parameters)) =
        stage.select(exchange.method.as_str(), &exchange.route_path)
    else {
        return (not_found(), "-".into());
    };
    let route_key = route.route.route_key.clone();
    if let Some(bucket) = &route.throttle {
        if !bucket.try_take() {
            exchange.log.set("error.message", "Too Many Requests");
            return (
                message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
                route_key,
            );
        }
    }
    let authorizer_context = match authorize(svc, exchange, route, &path_parameters).await {
        Decision::Allow { context } => context,
        Decision::Unauthorized => {
            exchange.log.set("error.message", "Unauthorized");
            let mut answer = message(StatusCode::UNAUTHORIZED, "Unauthorized");
            if route.route.authorization_type == RouteAuthorization::Jwt {
                answer.headers.push((
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer"),
                ));
            }
            return (answer, route_key);
        }
        Decision::Forbidden => {
            exchange.log.set("error.message", "Forbidden");
            return (message(StatusCode::FORBIDDEN, "Forbidden"), route_key);
        }
        Decision::Failed => {
            exchange.log.set("error.message", "Internal Server Error");
            return (internal_error(), route_key);
        }
    };
    let Some(integration) = route
        .route
        .target
        .as_deref()
        .and_then(|t| t.strip_prefix("integrations/"))
        .and_then(|id| stage.integrations.get(id))
    else {
        return (not_found(), route_key);
    };
    let started = Instant::now();
    let answer = match integration.integration_type {
        IntegrationType::AwsProxy => {
            lambda_integration(
                svc,
                exchange,
                route,
                integration,
                &path_parameters,
                authorizer_context,
            )
            .await
        }
        IntegrationType::HttpProxy => {
            http_integration(svc, exchange, integration, &path_parameters).await
        }
        // WebSocket APIs' kinds: the control plane refuses them on HTTP APIs.
        IntegrationType::Http | IntegrationType::Mock => internal_error(),
    };
    let elapsed = started.elapsed();
    exchange.integration_latency = Some(elapsed);
    exchange
        .log
        .set("integrationLatency", elapsed.as_millis().to_string());
    exchange
        .log
        .set("integration.latency", elapsed.as_millis().to_string());
    (answer, route_key)
}
