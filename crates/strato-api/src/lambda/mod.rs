//! The Lambda control plane (REST-JSON, API version 2015-03-31 and its
//! siblings). Routes are written with their full date-prefixed paths, as AWS
//! serves them.

mod account;
mod functions;
mod invoke;
mod lifecycle;
mod permissions;
mod tags;

pub use lifecycle::resume_settling;

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::routing::{get, post, put};
use axum::Router;
use strato_model::arn::{function_arn, qualified_function_arn};
use strato_model::{AwsError, FunctionRecord, FunctionRef, Qualifier};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::ApiState;

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route(
            "/2015-03-31/functions",
            post(functions::create).get(functions::list),
        )
        .route("/2015-03-31/functions/", get(functions::list))
        .route(
            "/2015-03-31/functions/{name}",
            get(functions::get).delete(functions::delete),
        )
        .route(
            "/2015-03-31/functions/{name}/configuration",
            get(functions::get_configuration).put(functions::update_configuration),
        )
        .route(
            "/2015-03-31/functions/{name}/code",
            put(functions::update_code),
        )
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(invoke::invoke),
        )
        .route(
            "/2015-03-31/functions/{name}/policy",
            post(permissions::add).get(permissions::get),
        )
        .route(
            "/2015-03-31/functions/{name}/policy/{sid}",
            axum::routing::delete(permissions::remove),
        )
        .route(
            "/2017-03-31/tags/{arn}",
            get(tags::list).post(tags::tag).delete(tags::untag),
        )
        .route("/2016-08-19/account-settings", get(account::settings))
        .route("/2016-08-19/account-settings/", get(account::settings))
}

/// Parses and scopes a `FunctionName` path member for `operation`.
pub(crate) fn function_ref(
    caller: &Caller,
    raw: &str,
    qualifier: Option<&str>,
    operation: &str,
) -> ApiResult<FunctionRef> {
    // AWS's model gives `FunctionName` 140 characters on the operations that
    // change a function and 256 (`NamespacedFunctionName`) on the rest.
    let max_len = match operation {
        "UpdateFunctionCode"
        | "UpdateFunctionConfiguration"
        | "PublishVersion"
        | "CreateAlias"
        | "GetAlias"
        | "UpdateAlias"
        | "DeleteAlias"
        | "ListAliases"
        | "PutFunctionConcurrency"
        | "GetFunctionConcurrency"
        | "DeleteFunctionConcurrency"
        | "CreateFunctionUrlConfig"
        | "GetFunctionUrlConfig"
        | "UpdateFunctionUrlConfig"
        | "DeleteFunctionUrlConfig"
        | "ListFunctionUrlConfigs" => 140,
        _ => 256,
    };
    let parsed = FunctionRef::parse(raw, max_len)?.with_explicit_qualifier(qualifier)?;
    parsed.check_scope(&caller.account_id, &caller.region, operation)?;
    Ok(parsed)
}

/// The function a reference names, or AWS's not-found error.
pub(crate) async fn load(
    state: &ApiState,
    caller: &Caller,
    r: &FunctionRef,
) -> ApiResult<Arc<FunctionRecord>> {
    state
        .catalog
        .get(&caller.account_id, &caller.region, &r.name)
        .await?
        .ok_or_else(|| not_found(caller, r).into())
}

pub(crate) fn not_found(caller: &Caller, r: &FunctionRef) -> AwsError {
    AwsError::function_not_found(&qualified_function_arn(
        &caller.region,
        &caller.account_id,
        &r.name,
        r.qualifier.as_ref(),
    ))
}

/// Resolves the qualifier to the version it denotes. Only `$LATEST` exists
/// until versions are published; any other qualifier names nothing.
pub(crate) fn require_latest(caller: &Caller, r: &FunctionRef) -> ApiResult<()> {
    match r.qualifier {
        None | Some(Qualifier::Latest) => Ok(()),
        Some(_) => Err(not_found(caller, r).into()),
    }
}

pub(crate) fn unqualified_arn(caller: &Caller, name: &str) -> String {
    function_arn(&caller.region, &caller.account_id, name)
}

/// `http://host:port` as the client addressed us, for URLs we hand back.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:9000");
    format!("http://{host}")
}

/// `Field is not supported by Strato.` for members Strato refuses rather
/// than silently ignores.
pub(crate) fn unsupported(field: &str) -> AwsError {
    AwsError::invalid_parameter(format!("{field} is not supported by Strato."))
}
