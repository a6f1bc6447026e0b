//! The `apigateway` control plane's errors as AWS sends them: a status, an
//! `x-amzn-ErrorType` header naming the exception, and `{"message": ...}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use strato_store::StoreError;

/// The exceptions of the `apigateway` service (botocore's `errors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestErrorCode {
    BadRequestException,
    NotFoundException,
    ConflictException,
    TooManyRequestsException,
    LimitExceededException,
    UnauthorizedException,
    ServiceUnavailableException,
}

impl RestErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequestException => "BadRequestException",
            Self::NotFoundException => "NotFoundException",
            Self::ConflictException => "ConflictException",
            Self::TooManyRequestsException => "TooManyRequestsException",
            Self::LimitExceededException => "LimitExceededException",
            Self::UnauthorizedException => "UnauthorizedException",
            Self::ServiceUnavailableException => "ServiceUnavailableException",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequestException => StatusCode::BAD_REQUEST,
            Self::NotFoundException => StatusCode::NOT_FOUND,
            Self::ConflictException => StatusCode::CONFLICT,
            Self::TooManyRequestsException | Self::LimitExceededException => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::UnauthorizedException => StatusCode::UNAUTHORIZED,
            Self::ServiceUnavailableException => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An error on its way out of a REST API control-plane handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct RestError {
    pub code: RestErrorCode,
    pub message: String,
}

pub type RestResult<T> = Result<T, RestError>;

impl RestError {
    pub fn new(code: RestErrorCode, message: impl Into<String>) -> RestError {
        RestError {
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> RestError {
        RestError::new(RestErrorCode::BadRequestException, message)
    }

    pub fn not_found(message: impl Into<String>) -> RestError {
        RestError::new(RestErrorCode::NotFoundException, message)
    }

    pub fn conflict(message: impl Into<String>) -> RestError {
        RestError::new(RestErrorCode::ConflictException, message)
    }
}

impl From<StoreError> for RestError {
    fn from(err: StoreError) -> RestError {
        // Handlers refuse changes with their own `RestError` through
        // `StoreExt::update_typed`, so every store error here is a failure.
        tracing::error!(error = %err, "store failure");
        RestError::new(
            RestErrorCode::ServiceUnavailableException,
            "An internal error occurred while accessing Strato's state.",
        )
    }
}

impl From<serde_json::Error> for RestError {
    fn from(err: serde_json::Error) -> RestError {
        tracing::error!(error = %err, "corrupt API Gateway document");
        RestError::new(
            RestErrorCode::ServiceUnavailableException,
            "An internal error occurred while reading Strato's state.",
        )
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let mut response = (
            self.code.status(),
            axum::Json(serde_json::json!({ "message": self.message })),
        )
            .into_response();
        response.headers_mut().insert(
            "x-amzn-ErrorType",
            HeaderValue::from_static(self.code.as_str()),
        );
        response
    }
}
