//! Serving a deployed REST API stage: match the resource tree, apply the
//! stage's and the usage plan's throttles, check the API key, and run the
//! integration (AWS_PROXY with payload 1.0, HTTP_PROXY, and through
//! mapping templates MOCK, HTTP and AWS for Lambda), answering
//! with AWS's gateway responses when something fails.

pub mod api_keys;
mod iam;
mod integrations;
pub(crate) mod templates;

use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method as HttpMethod, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::live::{LiveApi, LiveStage, RouteMatch};
use super::model::{AuthorizationType, IntegrationType};
use super::RestApiService;
use crate::access_log::{render, AccessLogContext};
use crate::header_case::HeaderCase;
use crate::metrics::ApiRequestMetric;
use crate::proxy::{self, path_decode};
use api_keys::{check_api_key, KeyScope, KeyVerdict};
use iam::{authenticate_iam, IamCaller};
use integrations::{http_proxy, lambda_proxy};
use templates::non_proxy;

/// API Gateway's REST payload limit (10 MB).
pub const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

/// Where a data-plane request came from.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub source_ip: String,
    /// `requestContext.domainName`: the host of a host-style request, else
    /// the name its host-style address would have
    /// (`{api-id}.execute-api.localhost`).
    pub domain_name: String,
}

/// One answer the gateway itself gives (a "gateway response" on AWS).
struct GatewayAnswer {
    status: StatusCode,
    message: &'static str,
    error_type: Option<&'static str>,
}

const FORBIDDEN: GatewayAnswer = GatewayAnswer {
    status: StatusCode::FORBIDDEN,
    message: "Forbidden",
    error_type: Some("ForbiddenException"),
};
const MISSING_TOKEN: GatewayAnswer = GatewayAnswer {
    status: StatusCode::FORBIDDEN,
    message: "Missing Authentication Token",
    error_type: Some("MissingAuthenticationTokenException"),
};
const THROTTLED: GatewayAnswer = GatewayAnswer {
    status: StatusCode::TOO_MANY_REQUESTS,
    message: "Too Many Requests",
    error_type: Some("TooManyRequestsException"),
};
const QUOTA_EXCEEDED: GatewayAnswer = GatewayAnswer {
    status: StatusCode::TOO_MANY_REQUESTS,
    message: "Limit Exceeded",
    error_type: Some("LimitExceededException"),
};
const INTERNAL_ERROR: GatewayAnswer = GatewayAnswer {
    status: StatusCode::INTERNAL_SERVER_ERROR,
    message: "Internal server error",
    error_type: Some("InternalServerErrorException"),
};
const BAD_GATEWAY: GatewayAnswer = GatewayAnswer {
    status: StatusCode::BAD_GATEWAY,
    message: "Internal server error",
    error_type: Some("InternalServerErrorException"),
};
const TIMED_OUT: GatewayAnswer = GatewayAnswer {
    status: StatusCode::GATEWAY_TIMEOUT,
    message: "Endpoint request timed out",
    error_type: None,
};
const TOO_LARGE: GatewayAnswer = GatewayAnswer {
    status: StatusCode::PAYLOAD_TOO_LARGE,
    message: "Request Too Long",
    error_type: None,
};

/// Identifiers every answer carries.
struct RequestIds {
    request_id: String,
    extended_id: String,
}

impl RequestIds {
    fn new() -> RequestIds {
        let extended: String = super::new_id(16);
        RequestIds {
            request_id: uuid::Uuid::new_v4().to_string(),
            extended_id: format!("{}=", &extended[..15]),
        }
    }

    fn tag(&self, response: &mut Response) {
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&self.request_id) {
            headers.insert("x-amzn-RequestId", value);
        }
        if let Ok(value) = HeaderValue::from_str(&self.extended_id) {
            headers.insert("x-amz-apigw-id", value);
        }
    }
}

fn gateway_answer(answer: &GatewayAnswer, ids: &RequestIds) -> Response {
    gateway_error(answer.status, answer.message, answer.error_type, ids)
}

/// `{"message": ...}` with the status and `x-amzn-ErrorType` given.
fn gateway_error(
    status: StatusCode,
    message: &str,
    error_type: Option<&'static str>,
    ids: &RequestIds,
) -> Response {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(error_type) = error_type {
        response
            .headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(error_type));
    }
    ids.tag(&mut response);
    response
}

/// Serves one request to REST API `api_id`. `stage_path` is the request
/// path from the stage on (`/prod/items/7`), as the client sent it
/// (percent-encoded); the query comes from the request's URI.
pub async fn handle(
    service: &RestApiService,
    api_id: &str,
    stage_path: &str,
    request: Request,
    client: ClientInfo,
) -> Response {
    let started = Instant::now();
    let ids = RequestIds::new();
    let received_at = Utc::now();
    let Some(api) = service.live.apis.get(api_id).map(|a| a.value().clone()) else {
        return gateway_answer(&FORBIDDEN, &ids);
    };
    if api.disable_execute_api_endpoint {
        return gateway_answer(&FORBIDDEN, &ids);
    }
    let trimmed = stage_path.trim_start_matches('/');
    let (stage_name, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let Some(stage) = api.stages.get(stage_name).cloned() else {
        return gateway_answer(&FORBIDDEN, &ids);
    };
    let method = request.method().clone();
    let request_context = RequestContext {
        api: &api,
        stage: &stage,
        stage_path,
        rest,
        ids: &ids,
        received_at,
        client: &client,
    };
    let mut log = AccessLogContext::default();
    seed_log_context(&mut log, &request_context, &request);
    let mut served = serve_stage(service, &request_context, request, &mut log).await;
    ids.tag(&mut served.response);
    let latency = started.elapsed();
    let status = served.response.status().as_u16();
    let resource = served.resource_path.as_deref().unwrap_or("");
    if let Some(settings) = &stage.access_log {
        let group = settings
            .destination_arn
            .as_deref()
            .and_then(crate::http_api::live::log_group_of);
        if let (Some(format), Some(group)) = (settings.format.as_deref(), group) {
            log.set("status", status.to_string());
            log.set("resourcePath", resource.to_string());
            log.set("responseLatency", latency.as_millis().to_string());
            if let Some(length) = axum::body::HttpBody::size_hint(served.response.body()).exact() {
                log.set("responseLength", length.to_string());
            }
            if let Some(integration) = served.integration_latency {
                log.set("integrationLatency", integration.as_millis().to_string());
                log.set("integration.latency", integration.as_millis().to_string());
            }
            service.access_logs.write(
                &api.account,
                &api.region,
                &group,
                &format!("{}_{}", api.id, stage.name),
                render(format, &log),
            );
        }
    }
    service.metrics.record(&ApiRequestMetric {
        account: &api.account,
        region: &api.region,
        api_id: &api.id,
        api_name: &api.name,
        stage: &stage.name,
        method: method.as_str(),
        resource,
        status,
        latency,
        integration_latency: served.integration_latency,
    });
    served.response
}

/// The stage-level facts about one request.
struct RequestContext<'a> {
    api: &'a LiveApi,
    stage: &'a LiveStage,
    stage_path: &'a str,
    /// The path after the stage, without its leading `/`.
    rest: &'a str,
    ids: &'a RequestIds,
    received_at: DateTime<Utc>,
    client: &'a ClientInfo,
}

/// What serving a request produced, for the access log and metrics.
struct Served {
    response: Response,
    /// The matched resource's path, when one matched.
    resource_path: Option<String>,
    integration_latency: Option<Duration>,
}

/// The `$context` values known before the request is served.
fn seed_log_context(log: &mut AccessLogContext, context: &RequestContext<'_>, request: &Request) {
    let header = |name: &http::header::HeaderName| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let domain = context.client.domain_name.clone();
    log.set("requestId", context.ids.request_id.clone());
    log.set("extendedRequestId", context.ids.extended_id.clone());
    log.set("apiId", context.api.id.clone());
    log.set("accountId", context.api.account.clone());
    log.set("stage", context.stage.name.clone());
    log.set("httpMethod", request.method().as_str().to_string());
    log.set(
        "path",
        format!("/{}", context.stage_path.trim_start_matches('/')),
    );
    log.set("protocol", format!("{:?}", request.version()));
    log.set(
        "domainPrefix",
        domain.split('.').next().unwrap_or("").to_string(),
    );
    log.set("domainName", domain);
    log.set("requestTime", proxy::request_time(context.received_at));
    log.set(
        "requestTimeEpoch",
        context.received_at.timestamp_millis().to_string(),
    );
    log.set("identity.sourceIp", context.client.source_ip.clone());
    log.set("identity.userAgent", header(&http::header::USER_AGENT));
}

async fn serve_stage(
    service: &RestApiService,
    context: &RequestContext<'_>,
    request: Request,
    log: &mut AccessLogContext,
) -> Served {
    let (api, stage, ids) = (context.api, context.stage, context.ids);
    let refuse =
        |answer: &GatewayAnswer, resource_path: Option<String>, log: &mut AccessLogContext| {
            log.set("error.message", answer.message);
            Served {
                response: gateway_answer(answer, ids),
                resource_path,
                integration_latency: None,
            }
        };
    let resource_raw_path = format!("/{}", context.rest);
    let segments: Vec<String> = context
        .rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(path_decode)
        .collect();
    let method_name = request.method().as_str().to_ascii_uppercase();
    let Some(route) = stage.tree.find(&segments, &method_name) else {
        return refuse(&MISSING_TOKEN, None, log);
    };
    let resource_path = Some(route.resource.path.clone());
    log.set("resourceId", route.resource.id.clone());
    if !stage
        .throttles
        .admit(&route.resource.path, route.method_key)
    {
        return refuse(&THROTTLED, resource_path, log);
    }
    let mut api_key: Option<(String, String)> = None;
    if route.method.api_key_required {
        let presented = request
            .headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let scope = KeyScope {
            account: &api.account,
            region: &api.region,
            api_id: &api.id,
            stage: &stage.name,
        };
        match check_api_key(service, scope, presented.as_deref(), context.received_at) {
            KeyVerdict::Admitted { key_id } => {
                log.set("identity.apiKeyId", key_id.clone());
                api_key = presented.map(|value| (value, key_id));
            }
            KeyVerdict::Forbidden => return refuse(&FORBIDDEN, resource_path, log),
            KeyVerdict::Throttled => return refuse(&THROTTLED, resource_path, log),
            KeyVerdict::QuotaExceeded => return refuse(&QUOTA_EXCEEDED, resource_path, log),
        }
    }
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_PAYLOAD).await {
        Ok(body) => body,
        Err(_) => return refuse(&TOO_LARGE, resource_path, log),
    };
    let iam_caller = match route.method.authorization_type {
        AuthorizationType::None => None,
        AuthorizationType::AwsIam => {
            match authenticate_iam(service, context, &parts, &body, &route) {
                Ok(caller) => {
                    log.set("identity.accountId", caller.account_id.clone());
                    log.set("identity.caller", caller.account_id.clone());
                    Some(caller)
                }
                Err((status, message, error_type)) => {
                    log.set("error.message", message.clone());
                    return Served {
                        response: gateway_error(status, &message, Some(error_type), ids),
                        resource_path,
                        integration_latency: None,
                    };
                }
            }
        }
        // Lambda and Cognito authorizers on REST methods are not served:
        // refusing is the safe answer.
        AuthorizationType::Custom | AuthorizationType::CognitoUserPools => {
            let answer = if parts.headers.contains_key(http::header::AUTHORIZATION) {
                &FORBIDDEN
            } else {
                &MISSING_TOKEN
            };
            return refuse(answer, resource_path, log);
        }
    };
    let Some(integration) = route.method.method_integration.clone() else {
        return refuse(&INTERNAL_ERROR, resource_path, log);
    };
    let call = IntegrationCall {
        api,
        stage,
        route: &route,
        method: &parts.method,
        headers: &parts.headers,
        header_case: parts.extensions.get::<HeaderCase>(),
        raw_query: parts.uri.query().unwrap_or(""),
        resource_raw_path: &resource_raw_path,
        stage_path: context.stage_path,
        body,
        ids,
        received_at: context.received_at,
        client: context.client,
        api_key: api_key.as_ref().map(|(v, id)| (v.as_str(), id.as_str())),
        iam_caller: iam_caller.as_ref(),
    };
    let integration_started = Instant::now();
    let response = match integration.integration_type {
        IntegrationType::AwsProxy => lambda_proxy(service, &integration, &call).await,
        IntegrationType::HttpProxy => http_proxy(service, &integration, &call).await,
        IntegrationType::Mock | IntegrationType::Http | IntegrationType::Aws => {
            non_proxy(service, &integration, &call).await
        }
    };
    let integration_latency = integration_started.elapsed();
    if let Some(message) = response
        .headers()
        .get("x-amzn-ErrorType")
        .and_then(|_| gateway_message(response.status()))
    {
        log.set("error.message", message);
    }
    Served {
        response,
        resource_path,
        integration_latency: Some(integration_latency),
    }
}

/// The message of a gateway answer with this status (for the access log).
fn gateway_message(status: StatusCode) -> Option<&'static str> {
    match status {
        StatusCode::INTERNAL_SERVER_ERROR | StatusCode::BAD_GATEWAY => {
            Some("Internal server error")
        }
        StatusCode::TOO_MANY_REQUESTS => Some("Too Many Requests"),
        _ => None,
    }
}

/// What an integration needs to know about the request.
struct IntegrationCall<'a> {
    api: &'a LiveApi,
    stage: &'a LiveStage,
    route: &'a RouteMatch<'a>,
    method: &'a HttpMethod,
    headers: &'a HeaderMap,
    /// The header names as the client spelled them, when the server
    /// recorded them (the v1 event keeps their case).
    header_case: Option<&'a HeaderCase>,
    raw_query: &'a str,
    /// The path after the stage, as sent (`/items/7`).
    resource_raw_path: &'a str,
    /// The path from the stage on (`/prod/items/7`).
    stage_path: &'a str,
    body: Bytes,
    ids: &'a RequestIds,
    received_at: DateTime<Utc>,
    client: &'a ClientInfo,
    /// (value, id) of the API key the request presented.
    api_key: Option<(&'a str, &'a str)>,
    /// Who signed the request, for `AWS_IAM` methods.
    iam_caller: Option<&'a IamCaller>,
}

fn header_text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
