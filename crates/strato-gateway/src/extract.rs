//! Extractors the control-plane handlers share, so each handler states what
//! it needs (the signed-in caller, a typed body) instead of unpacking it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::ExtensionRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::de::DeserializeOwned;
use strato_model::Caller;

use crate::rest_api::error::{RestError, RestResult};

/// The caller the SigV4 middleware authenticated. [`Caller`] lives in
/// `strato-model`, which has no axum, so the extractor is this wrapper.
/// Without the middleware's extension the answer is axum's own
/// missing-extension rejection, as with `Extension<Caller>`.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ExtensionRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Extension(caller) = Extension::<Caller>::from_request_parts(parts, state).await?;
        Ok(Authenticated(caller))
    }
}

/// What a control-plane handler of one API (`.../{apiId}/...`) works from:
/// the API Gateway service the router serves, the signed-in caller and the
/// API's id. Rejected as its parts are: [`Authenticated`], then the path.
#[derive(Debug)]
pub struct ApiRequest<S> {
    pub service: Arc<S>,
    pub caller: Caller,
    pub api_id: String,
}

/// [`ApiRequest`] for one child of an API (`.../{apiId}/{children}/{id}`:
/// a route, a stage, a resource, ...), with the child's id.
#[derive(Debug)]
pub struct ChildRequest<S> {
    pub service: Arc<S>,
    pub caller: Caller,
    pub api_id: String,
    pub id: String,
}

/// The caller and the path parameters `P`, rejected as their extractors are.
pub async fn caller_and_path<P, S>(
    parts: &mut Parts,
    state: &Arc<S>,
) -> Result<(Caller, P), Response>
where
    P: DeserializeOwned + Send + 'static,
    S: Send + Sync + 'static,
{
    let Authenticated(caller) = Authenticated::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    let Path(params) = Path::<P>::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((caller, params))
}

impl<S: Send + Sync + 'static> FromRequestParts<Arc<S>> for ApiRequest<S> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<S>) -> Result<Self, Response> {
        let (caller, api_id) = caller_and_path(parts, state).await?;
        let service = Arc::clone(state);
        Ok(ApiRequest {
            service,
            caller,
            api_id,
        })
    }
}

impl<S: Send + Sync + 'static> FromRequestParts<Arc<S>> for ChildRequest<S> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<S>) -> Result<Self, Response> {
        let (caller, (api_id, id)) = caller_and_path(parts, state).await?;
        let service = Arc::clone(state);
        Ok(ChildRequest {
            service,
            caller,
            api_id,
            id,
        })
    }
}

/// A JSON request body of the API Gateway control planes: an empty body is
/// `{}`, and one that does not parse as a `T` is a `BadRequestException`
/// saying `Invalid request body: ...`.
#[derive(Debug)]
pub struct RestJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for RestJson<T> {
    /// A body that cannot be read answers as axum's `Bytes` extractor does.
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        parse_body(&bytes)
            .map(RestJson)
            .map_err(IntoResponse::into_response)
    }
}

/// A JSON request body; an empty one is `{}`.
fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> RestResult<T> {
    let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(body)
        .map_err(|e| RestError::bad_request(format!("Invalid request body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Named {
        name: Option<String>,
    }

    async fn extract(body: &'static str) -> Result<RestJson<Named>, Response> {
        let request = Request::builder().body(Body::from(body)).unwrap();
        RestJson::<Named>::from_request(request, &()).await
    }

    #[tokio::test]
    async fn blank_body_is_an_empty_object() {
        let RestJson(named) = extract("  \n").await.unwrap();
        assert_eq!(named, Named { name: None });
    }

    #[tokio::test]
    async fn malformed_body_is_a_bad_request_naming_the_parse_error() {
        let response = extract("{\"name\": 5}").await.unwrap_err();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()["x-amzn-ErrorType"],
            "BadRequestException"
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(body["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid request body: invalid type: integer `5`"));
    }

    #[tokio::test]
    async fn missing_caller_answers_as_the_extension_extractor_does() {
        let (mut parts, ()) = Request::builder().body(()).unwrap().into_parts();
        let ours = Authenticated::from_request_parts(&mut parts, &())
            .await
            .unwrap_err()
            .into_response();
        let axums = Extension::<Caller>::from_request_parts(&mut parts, &())
            .await
            .unwrap_err()
            .into_response();
        assert_eq!(ours.status(), axums.status());
        let ours = axum::body::to_bytes(ours.into_body(), 1 << 16)
            .await
            .unwrap();
        let axums = axum::body::to_bytes(axums.into_body(), 1 << 16)
            .await
            .unwrap();
        assert_eq!(ours, axums);
    }
}
