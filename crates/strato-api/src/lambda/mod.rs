//! The Lambda control plane (REST-JSON, API version 2015-03-31 and its
//! siblings). Routes are written with their full date-prefixed paths, as AWS
//! serves them.

mod account;
mod aliases;
mod async_targets;
mod code_signing;
mod concurrency;
mod event_invoke;
mod event_source_mappings;
mod event_stream;
mod function_urls;
mod functions;
mod gateway_invoker;
mod invoke;
mod invoke_stream;
mod layers;
mod lifecycle;
mod permissions;
mod provisioned;
mod recursion;
mod resource_policy;
mod runtime_management;
mod tags;
mod versions;

pub use async_targets::CatalogAsyncTargets;
pub use event_source_mappings::{EventSourceMappings, StoreCheckpoints, MAPPING_KIND};
pub use gateway_invoker::EngineInvoker;
pub use lifecycle::resume_settling;
pub use provisioned::restore as restore_provisioned_concurrency;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use strato_gateway::extract::caller_and_path;
use strato_model::arn::{function_arn, qualified_function_arn};
use strato_model::{AwsError, FunctionConfig, FunctionRecord, FunctionRef, Qualifier};

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
            "/2021-11-15/functions/{name}/response-streaming-invocations",
            post(invoke_stream::invoke_with_response_stream),
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
            "/2015-03-31/functions/{name}/versions",
            post(versions::publish).get(versions::list),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases",
            post(aliases::create).get(aliases::list),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases/{alias}",
            get(aliases::get)
                .put(aliases::update)
                .delete(aliases::delete),
        )
        .route(
            "/2017-03-31/tags/{arn}",
            get(tags::list).post(tags::tag).delete(tags::untag),
        )
        .route(
            "/2017-10-31/functions/{name}/concurrency",
            put(concurrency::put).delete(concurrency::delete),
        )
        .route(
            "/2019-09-30/functions/{name}/provisioned-concurrency",
            get(provisioned::get_or_list)
                .put(provisioned::put)
                .delete(provisioned::delete),
        )
        .route(
            "/2019-09-30/functions/{name}/concurrency",
            get(concurrency::get),
        )
        .route(
            "/2019-09-25/functions/{name}/event-invoke-config",
            get(event_invoke::get)
                .put(event_invoke::put)
                .post(event_invoke::update)
                .delete(event_invoke::delete),
        )
        .route(
            "/2019-09-25/functions/{name}/event-invoke-config/list",
            get(event_invoke::list),
        )
        .route("/2018-10-31/layers", get(layers::list_layers))
        .route("/2018-10-31/layers/", get(layers::list_layers))
        .route(
            "/2018-10-31/layers/{name}/versions",
            post(layers::publish).get(layers::list_versions),
        )
        .route(
            "/2018-10-31/layers/{name}/versions/{version}",
            get(layers::get_version).delete(layers::delete_version),
        )
        .route(
            "/2018-10-31/layers/{name}/versions/{version}/policy",
            post(layers::add_permission).get(layers::get_policy),
        )
        .route(
            "/2018-10-31/layers/{name}/versions/{version}/policy/{sid}",
            axum::routing::delete(layers::remove_permission),
        )
        .route(
            "/2021-10-31/functions/{name}/url",
            post(function_urls::create)
                .get(function_urls::get)
                .put(function_urls::update)
                .delete(function_urls::delete),
        )
        .route(
            "/2021-10-31/functions/{name}/urls",
            get(function_urls::list),
        )
        .route(
            "/2015-03-31/event-source-mappings",
            post(event_source_mappings::create).get(event_source_mappings::list),
        )
        .route(
            "/2015-03-31/event-source-mappings/",
            post(event_source_mappings::create).get(event_source_mappings::list),
        )
        .route(
            "/2015-03-31/event-source-mappings/{uuid}",
            get(event_source_mappings::get)
                .put(event_source_mappings::update)
                .delete(event_source_mappings::delete),
        )
        .route(
            "/2014-11-13/functions/{name}/invoke-async",
            post(invoke::invoke_async),
        )
        .route(
            "/2020-04-22/code-signing-configs",
            post(code_signing::create).get(code_signing::list),
        )
        .route(
            "/2020-04-22/code-signing-configs/{arn}",
            get(code_signing::get)
                .put(code_signing::update)
                .delete(code_signing::delete),
        )
        .route(
            "/2020-04-22/code-signing-configs/{arn}/functions",
            get(code_signing::list_functions),
        )
        .route(
            "/2020-06-30/functions/{name}/code-signing-config",
            get(code_signing::get_function)
                .put(code_signing::put_function)
                .delete(code_signing::delete_function),
        )
        .route(
            "/2021-07-20/functions/{name}/runtime-management-config",
            get(runtime_management::get).put(runtime_management::put),
        )
        .route(
            "/2024-08-31/functions/{name}/recursion-config",
            get(recursion::get).put(recursion::put),
        )
        .route(
            "/2026-07-09/resource-policy/{arn}",
            get(resource_policy::get)
                .put(resource_policy::put)
                .delete(resource_policy::delete),
        )
        .route("/2016-08-19/account-settings", get(account::settings))
        .route("/2016-08-19/account-settings/", get(account::settings))
}

/// What a handler of one resource the path names works from: the API's
/// state, the signed-in caller and the resource's name as the path gives it
/// (a function's name, partial or full ARN under `/functions/{name}/...`; a
/// code signing config's ARN, a mapping's UUID, a layer's name, a tagged
/// resource's ARN). Rejected as its parts are:
/// [`Authenticated`](strato_gateway::extract::Authenticated), then the path.
pub(crate) struct ResourceRequest {
    pub state: Arc<ApiState>,
    pub caller: Caller,
    pub name: String,
}

impl FromRequestParts<Arc<ApiState>> for ResourceRequest {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Response> {
        let (caller, name) = caller_and_path(parts, state).await?;
        let state = Arc::clone(state);
        Ok(ResourceRequest {
            state,
            caller,
            name,
        })
    }
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
        | "ListFunctionUrlConfigs"
        | "PutFunctionCodeSigningConfig"
        | "GetFunctionCodeSigningConfig"
        | "DeleteFunctionCodeSigningConfig"
        | "PutFunctionRecursionConfig"
        | "GetFunctionRecursionConfig"
        | "PutRuntimeManagementConfig" => 140,
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

/// Applies a change to the function `r` names, inside the store's
/// transaction; a function deleted meanwhile is AWS's not-found.
pub(crate) async fn update_function(
    state: &ApiState,
    caller: &Caller,
    r: &FunctionRef,
    mutation: strato_store::FunctionMutation,
) -> ApiResult<Arc<FunctionRecord>> {
    update_function_or(state, caller, &r.name, mutation, not_found(caller, r)).await
}

/// [`update_function`] for operations whose answer to a vanished function
/// is worded differently (AWS words it per operation family).
pub(crate) async fn update_function_or(
    state: &ApiState,
    caller: &Caller,
    name: &str,
    mutation: strato_store::FunctionMutation,
    missing: AwsError,
) -> ApiResult<Arc<FunctionRecord>> {
    state
        .catalog
        .update(&caller.account_id, &caller.region, name, mutation)
        .await
        .map_err(|e| match e {
            strato_store::StoreError::NotFound => missing.into(),
            other => other.into(),
        })
}

pub(crate) fn not_found(caller: &Caller, r: &FunctionRef) -> AwsError {
    AwsError::function_not_found(&qualified_function_arn(
        &caller.region,
        &caller.account_id,
        &r.name,
        r.qualifier.as_ref(),
    ))
}

/// The configuration a reference's qualifier denotes (`$LATEST`, a published
/// version, or an alias's primary version), or AWS's not-found error.
pub(crate) fn resolve_config<'a>(
    caller: &Caller,
    r: &FunctionRef,
    record: &'a FunctionRecord,
) -> ApiResult<&'a FunctionConfig> {
    record
        .config_for(r.qualifier.as_ref())
        .ok_or_else(|| not_found(caller, r).into())
}

/// The `FunctionConfiguration` of `config` as read through `r`: a published
/// version answers with its qualified ARN, an alias with the alias ARN (and
/// its version's configuration), `$LATEST` with the unqualified ARN.
pub(crate) fn config_wire(
    caller: &Caller,
    r: &FunctionRef,
    config: &FunctionConfig,
    detailed: bool,
) -> serde_json::Value {
    let mut out = config.to_wire(&caller.region, &caller.account_id, detailed);
    if matches!(r.qualifier, Some(Qualifier::Alias(_))) {
        out["FunctionArn"] = qualified_function_arn(
            &caller.region,
            &caller.account_id,
            &config.name,
            r.qualifier.as_ref(),
        )
        .into();
    }
    out
}

/// Refuses a qualifier on operations that act on the function as a whole.
pub(crate) fn refuse_qualifier(r: &FunctionRef) -> ApiResult<()> {
    if r.qualifier.is_some() {
        return Err(AwsError::invalid_parameter(
            "This operation is permitted on Lambda functions only. Aliases and versions do not support this operation. Please specify either a function name or an unqualified function ARN.",
        )
        .into());
    }
    Ok(())
}

/// [`function_ref`] for operations on the function as a whole: a
/// qualifier, in the name or ARN, is refused ([`refuse_qualifier`]).
pub(crate) fn whole_function_ref(
    caller: &Caller,
    raw: &str,
    operation: &str,
) -> ApiResult<FunctionRef> {
    let r = function_ref(caller, raw, None, operation)?;
    refuse_qualifier(&r)?;
    Ok(r)
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
