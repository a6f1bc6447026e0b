//! `/metrics` (Prometheus text, unauthenticated like `/strato/health`) and
//! `GET /strato/cost` (the caller's own account's cost report, signed).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use strato_model::{AwsError, ErrorCode};

use crate::error::aws_error_response;
use crate::ApiState;
use strato_gateway::extract::Authenticated;

/// Prometheus text exposition format 0.0.4.
pub async fn prometheus(State(state): State<Arc<ApiState>>) -> Response {
    let mut response = state.observe.prometheus_text().into_response();
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `GET /strato/cost?month=YYYY-MM[&function=NAME]`: the cost report of the
/// signing account (this month by default), as JSON.
pub async fn cost(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let month = params
        .get("month")
        .cloned()
        .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m").to_string());
    if !strato_observe::metering::is_month(&month) {
        return aws_error_response(&AwsError::new(
            ErrorCode::InvalidParameterValueException,
            format!("month must be YYYY-MM, got {month:?}"),
        ));
    }
    match state
        .observe
        .cost_report(
            &caller.account_id,
            &month,
            params.get("function").map(String::as_str),
        )
        .await
    {
        Ok(report) => (StatusCode::OK, axum::Json(report)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cost report failed");
            aws_error_response(&AwsError::service("The cost report could not be computed."))
        }
    }
}
