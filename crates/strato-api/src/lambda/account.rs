//! GetAccountSettings: the account's limits and usage in the caller's region.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use strato_model::limits::{
    DEFAULT_ACCOUNT_CONCURRENCY, MAX_UNZIPPED_CODE_BYTES, MAX_ZIPPED_CODE_BYTES,
};

use crate::error::ApiResult;
use crate::wire::json as json_response;
use crate::ApiState;
use strato_gateway::extract::Authenticated;

/// Storage for all packages of an account (AWS default: 75 GB).
const TOTAL_CODE_STORAGE_BYTES: u64 = 80_530_636_800;

pub async fn settings(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Response> {
    let store = state.catalog.store();
    let limit = store
        .get_account(&caller.account_id)
        .await?
        .map_or(DEFAULT_ACCOUNT_CONCURRENCY, |a| a.concurrency_limit);
    // The limiter holds every reservation of the account in this region;
    // what is left of the limit is what unreserved functions share.
    let limiter = state.engine.concurrency();
    limiter.set_account_limit(&caller.account_id, limit);
    let unreserved = limiter.unreserved(&caller.account_id, &caller.region);
    let (count, code_size) = store
        .function_usage(&caller.account_id, &caller.region)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        json!({
            "AccountLimit": {
                "TotalCodeSize": TOTAL_CODE_STORAGE_BYTES,
                "CodeSizeUnzipped": MAX_UNZIPPED_CODE_BYTES,
                "CodeSizeZipped": MAX_ZIPPED_CODE_BYTES,
                "ConcurrentExecutions": limit,
                "UnreservedConcurrentExecutions": unreserved,
            },
            "AccountUsage": {
                "TotalCodeSize": code_size,
                "FunctionCount": count,
            },
        }),
    ))
}
