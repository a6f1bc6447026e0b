//! The `@connections` management API (`apigatewaymanagementapi`):
//! PostToConnection, GetConnection and DeleteConnection at
//! `/{stage}/@connections/{connection-id}` on the API's address, SigV4-signed
//! for `execute-api` by a key of the API's account. A connection that is
//! closed or never existed is `GoneException` (410).

use std::sync::Arc;

use axum::extract::ws::Message;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::{HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc::error::TrySendError;

use super::{Connection, Outbound, MAX_MESSAGE};
use crate::http_api::live::LiveApi;
use crate::http_api::HttpApiService;

/// An error as the management API answers it: the type in
/// `x-amzn-ErrorType`, the message (if any) in the body.
fn error(status: StatusCode, kind: &'static str, message: Option<&str>) -> Response {
    let body = match message {
        Some(m) => json!({ "message": m }),
        None => json!({}),
    };
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-amzn-errortype", HeaderValue::from_static(kind));
    response
}

fn gone() -> Response {
    error(StatusCode::GONE, "GoneException", None)
}

/// ISO 8601 with milliseconds, as the management API writes timestamps.
fn iso(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// GetConnection's answer.
pub fn connection_wire(connection: &Connection) -> Value {
    json!({
        "connectedAt": iso(connection.connected_at),
        "identity": {
            "sourceIp": connection.source_ip,
            "userAgent": connection.user_agent,
        },
        "lastActiveAt": iso(connection.last_active()),
    })
}

/// The IAM action of the `@connections` API.
const MANAGE_CONNECTIONS: &str = "execute-api:ManageConnections";

/// Checks the request's SigV4 signature (`execute-api`, the API's region
/// and account) and the signer's permission to `ManageConnections` on
/// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/@connections/{id}`
/// (an IAM user's or a function's role's policies, when IAM is enforced):
/// the refusal, if it is refused.
fn check_signature(
    svc: &HttpApiService,
    api: &LiveApi,
    stage: &str,
    id: &str,
    parts: &http::request::Parts,
    body: &[u8],
) -> Option<Response> {
    let request = strato_sigv4::RequestParts {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
    };
    if strato_sigv4::credential_scope(&request).is_none() {
        return Some(error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            Some("Missing Authentication Token"),
        ));
    }
    match strato_sigv4::verify(&request, body, Utc::now(), &*svc.credentials) {
        Ok(v) if v.service == "execute-api" && v.region == api.region && v.account_id == api.account => {
            let arn = format!(
                "arn:aws:execute-api:{}:{}:{}/{stage}/{}/@connections/{id}",
                api.region,
                api.account,
                api.api_id,
                parts.method.as_str()
            );
            let context = strato_iam::policy::RequestContext::new();
            svc.iam
                .authorize(&v.access_key_id, MANAGE_CONNECTIONS, &arn, context)
                .err()
                .map(|denied| {
                    error(
                        StatusCode::FORBIDDEN,
                        "ForbiddenException",
                        Some(&denied.message),
                    )
                })
        }
        Ok(v) => Some(error(
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            Some(&format!(
                "User: arn:aws:iam::{}:root is not authorized to perform: {MANAGE_CONNECTIONS} on resource: {}",
                v.account_id, api.api_id
            )),
        )),
        Err(e) => Some(error(
            StatusCode::FORBIDDEN,
            "InvalidSignatureException",
            Some(&e.message()),
        )),
    }
}

/// Serves one management request for connection `id` of `api`.
pub(super) async fn serve(
    svc: &Arc<HttpApiService>,
    api: &LiveApi,
    stage: &str,
    id: &str,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_MESSAGE + 1).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLargeException",
                Some("Message too long"),
            )
        }
    };
    if let Some(refused) = check_signature(svc, api, stage, id, &parts, &body) {
        return refused;
    }
    let Some(connection) = svc
        .websocket
        .connections
        .get(id)
        .map(|c| c.value().clone())
        .filter(|c| c.api_id == api.api_id)
    else {
        return gone();
    };
    match parts.method {
        Method::POST => {
            if body.len() > MAX_MESSAGE {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PayloadTooLargeException",
                    Some("Message too long"),
                );
            }
            let frame = match std::str::from_utf8(&body) {
                Ok(text) => Message::Text(text.into()),
                Err(_) => Message::Binary(body),
            };
            match connection.outbox.try_send(Outbound::Frame(frame)) {
                Ok(()) => StatusCode::OK.into_response(),
                Err(TrySendError::Full(_)) => error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "LimitExceededException",
                    Some("The connection is not reading its messages fast enough"),
                ),
                Err(TrySendError::Closed(_)) => gone(),
            }
        }
        Method::GET => {
            let mut response =
                (StatusCode::OK, connection_wire(&connection).to_string()).into_response();
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Method::DELETE => {
            svc.websocket.connections.remove(id);
            // The session task closes the socket (status 1000) and runs
            // `$disconnect`; a full outbox closes it when it drains.
            let _ = connection.outbox.send(Outbound::Close).await;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            Some("Forbidden"),
        ),
    }
}
