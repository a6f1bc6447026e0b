//! The data-plane entry: requests addressed to an API or a function URL are
//! diverted here before the AWS router (and its SigV4 check) sees them.
//!
//! Two addressing forms each (the control planes hand out the path-style
//! one unless `--url-style host`, see `public_url`; curl resolves
//! `*.localhost` to 127.0.0.1 by itself, other clients do not). Events see
//! the same `domainName` either way: a path-style request gets the name
//! its host-style address would have.
//!
//! - APIs: `http://{api-id}.execute-api.localhost:{port}/{stage}/{path}`, or
//!   path-style `http://127.0.0.1:{port}/_strato/execute-api/{api-id}/{stage}/{path}`.
//! - Function URLs: `http://{url-id}.lambda-url.{region}.localhost:{port}/{path}`,
//!   or `http://127.0.0.1:{port}/_strato/lambda-url/{url-id}/{path}`.
//!
//! An API id is looked up among HTTP APIs first, then REST APIs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};

use crate::function_url::FunctionUrlService;
use crate::http_api::HttpApiService;
use crate::rest_api::RestApiService;

/// Path prefix of path-style API addresses.
pub const EXECUTE_API_PREFIX: &str = "/_strato/execute-api/";
/// Path prefix of path-style function URL addresses.
pub const LAMBDA_URL_PREFIX: &str = "/_strato/lambda-url/";

/// Where a data-plane request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An API: its id and the path from the stage on (`/prod/items/7`).
    ExecuteApi { api_id: String, path: String },
    /// A function URL: its id and the path the function sees.
    LambdaUrl { url_id: String, path: String },
}

fn host_name(host: &str) -> &str {
    // `[::1]:9000` and `name:9000` lose their port.
    if host.starts_with('[') {
        return host;
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Splits `/{id}/{rest}` into (id, `/{rest}`).
fn split_id(rest: &str) -> Option<(String, String)> {
    let (id, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    is_id(id).then(|| (id.to_string(), path.to_string()))
}

/// The data-plane target of a request, if it is one.
pub fn target_of(host: Option<&str>, path: &str) -> Option<Target> {
    if let Some(host) = host.map(host_name) {
        let mut labels = host.split('.');
        if let (Some(id), Some(kind)) = (labels.next(), labels.next()) {
            if kind == "execute-api" && is_id(id) {
                return Some(Target::ExecuteApi {
                    api_id: id.to_string(),
                    path: path.to_string(),
                });
            }
            if kind == "lambda-url" && is_id(id) {
                return Some(Target::LambdaUrl {
                    url_id: id.to_string(),
                    path: path.to_string(),
                });
            }
        }
    }
    if let Some(rest) = path.strip_prefix(EXECUTE_API_PREFIX) {
        let (api_id, path) = split_id(rest)?;
        return Some(Target::ExecuteApi { api_id, path });
    }
    if let Some(rest) = path.strip_prefix(LAMBDA_URL_PREFIX) {
        let (url_id, path) = split_id(rest)?;
        return Some(Target::LambdaUrl { url_id, path });
    }
    None
}

/// The gateway's data planes.
pub struct DataPlane {
    pub http_apis: Arc<HttpApiService>,
    pub rest_apis: Arc<RestApiService>,
    pub function_urls: Arc<FunctionUrlService>,
}

impl DataPlane {
    /// Serves a request addressed to an API or a function URL.
    pub async fn serve(&self, target: Target, request: Request) -> Response {
        let source_ip = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "127.0.0.1".into());
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| host_name(h).to_string());
        match target {
            Target::ExecuteApi { api_id, path } => {
                let domain = host
                    .filter(|h| h.starts_with(&format!("{api_id}.execute-api.")))
                    .unwrap_or_else(|| format!("{api_id}.execute-api.localhost"));
                if let Some(api) = self.http_apis.live.get(&api_id) {
                    if api.protocol == crate::http_api::model::ProtocolType::WebSocket {
                        return crate::websocket::handle(
                            &self.http_apis,
                            &self.rest_apis,
                            api,
                            &path,
                            request,
                            source_ip,
                            domain,
                        )
                        .await;
                    }
                    return crate::http_api::dataplane::handle(
                        &self.http_apis,
                        api,
                        &path,
                        request,
                        source_ip,
                        domain,
                    )
                    .await;
                }
                crate::rest_api::dataplane::handle(
                    &self.rest_apis,
                    &api_id,
                    &path,
                    request,
                    crate::rest_api::dataplane::ClientInfo {
                        source_ip,
                        domain_name: domain,
                    },
                )
                .await
            }
            Target::LambdaUrl { url_id, path } => {
                let domain = host.filter(|h| h.starts_with(&format!("{url_id}.lambda-url.")));
                self.function_urls
                    .handle(&url_id, &path, request, source_ip, domain)
                    .await
            }
        }
    }
}

/// Middleware for the outermost router: diverts data-plane requests.
pub async fn divert(State(plane): State<Arc<DataPlane>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let target = target_of(host, request.uri().path());
    match target {
        Some(target) => plane.serve(target, request).await,
        None => next.run(request).await,
    }
}

/// A bare 404 for data-plane addresses that name nothing.
pub fn nothing_here() -> Response {
    let mut response = (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_style_and_path_style_addresses_are_recognized() {
        assert_eq!(
            target_of(Some("abc123.execute-api.localhost:9000"), "/prod/x"),
            Some(Target::ExecuteApi {
                api_id: "abc123".into(),
                path: "/prod/x".into()
            })
        );
        assert_eq!(
            target_of(Some("127.0.0.1:9000"), "/_strato/execute-api/abc123/prod/x"),
            Some(Target::ExecuteApi {
                api_id: "abc123".into(),
                path: "/prod/x".into()
            })
        );
        assert_eq!(
            target_of(Some("u1.lambda-url.us-east-1.localhost:9000"), "/a"),
            Some(Target::LambdaUrl {
                url_id: "u1".into(),
                path: "/a".into()
            })
        );
        assert_eq!(
            target_of(Some("127.0.0.1"), "/_strato/lambda-url/u1"),
            Some(Target::LambdaUrl {
                url_id: "u1".into(),
                path: "/".into()
            })
        );
        assert_eq!(
            target_of(Some("127.0.0.1:9000"), "/2015-03-31/functions"),
            None
        );
        assert_eq!(target_of(Some("localhost"), "/"), None);
    }
}
