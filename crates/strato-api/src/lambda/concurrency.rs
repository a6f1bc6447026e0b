//! Reserved concurrency: PutFunctionConcurrency, GetFunctionConcurrency,
//! DeleteFunctionConcurrency; and how a refused invocation is answered.
//!
//! The record (`FunctionRecord::reserved_concurrency`) is the durable
//! truth; the engine's limiter holds the same numbers in memory for
//! admission, and is told of every change made here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use strato_engine::EngineError;
use strato_model::error::ValidationErrors;
use strato_model::{AwsError, ErrorCode};

use super::{load, whole_function_ref, ResourceRequest};
use crate::error::ApiResult;
use crate::wire::{json as json_response, AwsJson};

/// Reservations are checked against the account's total and written one at
/// a time, so two concurrent reservations cannot both take the last
/// executions above the unreserved minimum. Control plane only: invocations
/// never take it.
static RESERVING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutConcurrencyRequest {
    #[serde(rename = "ReservedConcurrentExecutions")]
    reserved: Option<i64>,
}

/// The answer to an invocation the engine could not run: AWS's
/// TooManyRequestsException (`Rate Exceeded.` with its `Reason`) when the
/// function's or the account's concurrency is used up, or when the host's
/// memory budget is full of busy instances (Strato's counterpart of the
/// region running out of capacity: the same retryable 429, so SDKs back off
/// and retry); a ServiceException otherwise.
pub(crate) fn invoke_error(function: &str, err: EngineError) -> AwsError {
    match err.as_throttle() {
        Some(throttle) => {
            if !matches!(err, EngineError::Throttled(_)) {
                tracing::warn!(function, error = %err, "invocation refused");
            }
            AwsError::new(ErrorCode::TooManyRequestsException, "Rate Exceeded.")
                .with("Reason", throttle.reason())
        }
        None => {
            tracing::error!(function, error = %err, "invocation failed");
            AwsError::service(err.to_string())
        }
    }
}

pub async fn put(
    on: ResourceRequest,
    AwsJson(req): AwsJson<PutConcurrencyRequest>,
) -> ApiResult<Response> {
    let r = whole_function_ref(&on.caller, &on.name, "PutFunctionConcurrency")?;
    let mut errors = ValidationErrors::new();
    match req.reserved {
        None => errors.push_raw(
            "null",
            "reservedConcurrentExecutions",
            "Member must not be null",
        ),
        Some(n) if n < 0 => errors.push(
            &n.to_string(),
            "reservedConcurrentExecutions",
            "Member must have value greater than or equal to 0",
        ),
        Some(_) => {}
    }
    errors.into_result(ErrorCode::ValidationException)?;
    let requested = req.reserved.unwrap_or(0);
    let record = load(&on.state, &on.caller, &r).await?;
    let limiter = on.state.engine.concurrency();
    let _one_at_a_time = RESERVING.lock().await;
    let reserved = u32::try_from(requested)
        .map_err(|_| below_minimum(strato_engine::concurrency::MIN_UNRESERVED))?;
    let provisioned: u32 = record
        .provisioned_concurrency
        .values()
        .fold(0u32, |total, c| total.saturating_add(c.requested));
    if reserved < provisioned {
        // Sic: AWS's message has two spaces after the member name.
        return Err(AwsError::invalid_parameter(format!(
            "ReservedConcurrentExecutions  {reserved} should not be lower than function's total provisioned concurrency [{provisioned}]."
        ))
        .into());
    }
    limiter
        .check_reservation(&on.caller.account_id, &on.caller.region, &r.name, reserved)
        .map_err(below_minimum)?;
    super::update_function(
        &on.state,
        &on.caller,
        &r,
        Box::new(move |record| {
            record.reserved_concurrency = Some(reserved);
            Ok(())
        }),
    )
    .await?;
    limiter.set_reserved(
        &on.caller.account_id,
        &on.caller.region,
        &r.name,
        Some(reserved),
    );
    Ok(json_response(
        StatusCode::OK,
        json!({ "ReservedConcurrentExecutions": reserved }),
    ))
}

/// AWS's refusal of a reservation that leaves too little unreserved.
fn below_minimum(minimum: u32) -> AwsError {
    AwsError::invalid_parameter(format!(
        "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{minimum}]."
    ))
}

pub async fn get(on: ResourceRequest) -> ApiResult<Response> {
    let r = whole_function_ref(&on.caller, &on.name, "GetFunctionConcurrency")?;
    let record = load(&on.state, &on.caller, &r).await?;
    let body = match record.reserved_concurrency {
        Some(n) => json!({ "ReservedConcurrentExecutions": n }),
        None => json!({}),
    };
    Ok(json_response(StatusCode::OK, body))
}

pub async fn delete(on: ResourceRequest) -> ApiResult<Response> {
    let r = whole_function_ref(&on.caller, &on.name, "DeleteFunctionConcurrency")?;
    let _one_at_a_time = RESERVING.lock().await;
    super::update_function(
        &on.state,
        &on.caller,
        &r,
        Box::new(|record| {
            record.reserved_concurrency = None;
            Ok(())
        }),
    )
    .await?;
    on.state.engine.concurrency().set_reserved(
        &on.caller.account_id,
        &on.caller.region,
        &r.name,
        None,
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}
