//! The REST-JSON wire: request bodies in, JSON documents out.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;
use strato_model::AwsError;

use crate::error::ApiError;

/// A JSON request body parsed as AWS parses it: malformed JSON or a member
/// of the wrong type is a SerializationException, a member the operation
/// does not have is a ValidationException. An empty body is `{}`.
pub struct AwsJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AwsJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        // The auth middleware has already buffered the body within
        // MAX_REQUEST_BODY; axum's own 2 MB default limit must not apply here
        // (a CreateFunction/UpdateFunctionCode body carries a base64 zip of up to 50 MB).
        let bytes = axum::body::to_bytes(req.into_body(), crate::auth::MAX_REQUEST_BODY)
            .await
            .map_err(|e| AwsError::serialization(format!("Could not read request body: {e}")))?;
        parse_json(&bytes).map(AwsJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        if let Some(rest) = text.strip_prefix("unknown field `") {
            let field = rest.split('`').next().unwrap_or_default();
            ApiError(AwsError::validation(format!(
                "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member is not part of this operation's input"
            )))
        } else if e.is_data() {
            ApiError(AwsError::serialization(format!("Could not deserialize the request body: {text}")))
        } else {
            ApiError(AwsError::serialization(format!("Could not parse request body into json: {text}")))
        }
    })
}

/// A JSON answer with the given status.
pub fn json(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}
