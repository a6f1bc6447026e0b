//! Turning [`AwsError`] into the HTTP answer AWS gives.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use strato_model::AwsError;
use strato_store::{CodeStoreError, StoreError};

/// An [`AwsError`] on its way out of a handler.
#[derive(Debug)]
pub struct ApiError(pub AwsError);

impl From<AwsError> for ApiError {
    fn from(err: AwsError) -> Self {
        ApiError(err)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Rejected(aws) => ApiError(aws),
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError(AwsError::service(
                    "An internal error occurred while accessing Strato's state.",
                ))
            }
        }
    }
}

impl From<CodeStoreError> for ApiError {
    fn from(err: CodeStoreError) -> Self {
        tracing::error!(error = %err, "code store failure");
        ApiError(AwsError::service(
            "An internal error occurred while accessing function code.",
        ))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        aws_error_response(&self.0)
    }
}

/// The status, `x-amzn-ErrorType` header and JSON body of an AWS error.
pub fn aws_error_response(err: &AwsError) -> Response {
    let status =
        StatusCode::from_u16(err.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(err.body())).into_response();
    response.headers_mut().insert(
        "x-amzn-ErrorType",
        HeaderValue::from_static(err.code.as_str()),
    );
    response
}
