//! Provisioned concurrency: PutProvisionedConcurrencyConfig,
//! GetProvisionedConcurrencyConfig, ListProvisionedConcurrencyConfigs,
//! DeleteProvisionedConcurrencyConfig.
//!
//! What the user asked for lives in the function record
//! (`FunctionRecord::provisioned_concurrency`, by qualifier); the engine
//! keeps the instances and reports their status; the limiter holds each
//! function's total, which comes out of its reservation or, without one, out
//! of the account's unreserved pool.

use std::sync::Arc;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use strato_engine::concurrency::ProvisionRefusal;
use strato_engine::provisioned::{ProvisionedKey, ProvisionedReport, ProvisionedStatus};
use strato_engine::InvokeTarget;
use strato_model::arn::qualified_function_arn;
use strato_model::time::lambda_timestamp;
use strato_model::{
    AwsError, ErrorCode, FunctionConfig, FunctionRecord, FunctionRef, ProvisionedConcurrency,
    Qualifier, Resolved,
};

use super::{function_ref, load, not_found, ResourceRequest};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::wire::{json as json_response, AwsJson};
use crate::ApiState;

/// Allocations are checked against the account's totals and written one at
/// a time (control plane only; invocations never take it).
static PROVISIONING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutRequest {
    #[serde(rename = "ProvisionedConcurrentExecutions")]
    requested: Option<i64>,
}

#[derive(Deserialize)]
pub struct ConfigQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
    #[serde(rename = "List")]
    list: Option<String>,
    #[serde(rename = "Marker")]
    marker: Option<String>,
    #[serde(rename = "MaxItems")]
    max_items: Option<String>,
}

fn not_configured() -> AwsError {
    AwsError::new(
        ErrorCode::ProvisionedConcurrencyConfigNotFoundException,
        "No Provisioned Concurrency Config found for this function",
    )
}

/// The function reference with its (required) qualifier, which must name a
/// published version or an alias.
fn qualified_ref(caller: &Caller, name: &str, q: &ConfigQuery, op: &str) -> ApiResult<FunctionRef> {
    let r = function_ref(caller, name, q.qualifier.as_deref(), op)?;
    match &r.qualifier {
        None => Err(AwsError::validation(
            "1 validation error detected: Value null at 'qualifier' failed to satisfy constraint: Member must not be null",
        )
        .into()),
        Some(Qualifier::Latest) => Err(AwsError::invalid_parameter(
            "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
        )
        .into()),
        Some(_) => Ok(r),
    }
}

/// The version a qualifier's provisioned instances run: the version itself,
/// or the alias's primary version.
/// The key `r`'s qualifier keeps its configuration under.
fn provisioned_key(r: &FunctionRef) -> String {
    r.qualifier
        .as_ref()
        .map(Qualifier::as_string)
        .unwrap_or_default()
}

fn target_version<'a>(
    caller: &Caller,
    record: &'a FunctionRecord,
    r: &FunctionRef,
) -> ApiResult<&'a FunctionConfig> {
    let config = match record.resolve(r.qualifier.as_ref()) {
        Some(Resolved::Version(config)) => Some(config),
        Some(Resolved::Alias(alias)) => record.version(&alias.function_version),
        None => None,
    };
    config.ok_or_else(|| not_found(caller, r).into())
}

/// The engine's key of a configuration.
fn key(caller: &Caller, function: &str, qualifier: &str) -> ProvisionedKey {
    (
        caller.account_id.clone(),
        caller.region.clone(),
        function.to_string(),
        qualifier.to_string(),
    )
}

fn invoke_target(
    account: &str,
    region: &str,
    config: &FunctionConfig,
    qualifier: &str,
) -> InvokeTarget {
    InvokeTarget {
        account: account.to_string(),
        region: region.to_string(),
        config: Arc::new(config.clone()),
        invoked_arn: qualified_function_arn(
            region,
            account,
            &config.name,
            Qualifier::parse(qualifier).ok().as_ref(),
        ),
    }
}

/// The `ProvisionedConcurrencyConfig` shape (with `FunctionArn` in lists).
fn wire(config: &ProvisionedConcurrency, report: Option<ProvisionedReport>) -> Value {
    let report = report.unwrap_or(ProvisionedReport {
        requested: config.requested,
        available: 0,
        allocated: 0,
        status: ProvisionedStatus::InProgress,
        reason: None,
    });
    let mut body = json!({
        "RequestedProvisionedConcurrentExecutions": config.requested,
        "AvailableProvisionedConcurrentExecutions": report.available,
        "AllocatedProvisionedConcurrentExecutions": report.allocated,
        "Status": report.status.as_str(),
        "LastModified": lambda_timestamp(config.last_modified),
    });
    if let Some(reason) = report.reason {
        body["StatusReason"] = json!(reason);
    }
    body
}

fn refusal(refused: ProvisionRefusal) -> AwsError {
    AwsError::invalid_parameter(match refused {
        ProvisionRefusal::AboveReserved => "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function".to_string(),
        ProvisionRefusal::AboveUnreserved(unreserved) => format!(
            "Specified ConcurrentExecutions for function is greater than account's unreserved concurrency [{unreserved}]."
        ),
        ProvisionRefusal::BelowMinimum(minimum) => format!(
            "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{minimum}]."
        ),
    })
}

/// An alias and the version it points to cannot both be provisioned.
fn check_overlap(record: &FunctionRecord, qualifier: &str) -> Result<(), AwsError> {
    let provisioned = &record.provisioned_concurrency;
    if let Some(alias) = record.aliases.get(qualifier) {
        if provisioned.contains_key(&alias.function_version) {
            return Err(AwsError::conflict(
                "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version",
            ));
        }
    } else if record
        .aliases
        .values()
        .any(|a| a.function_version == qualifier && provisioned.contains_key(&a.name))
    {
        return Err(AwsError::conflict(
            "Version is pointed by a Provisioned Concurrency alias",
        ));
    }
    Ok(())
}

fn total_provisioned(record: &FunctionRecord) -> u32 {
    record
        .provisioned_concurrency
        .values()
        .fold(0u32, |total, c| total.saturating_add(c.requested))
}

pub async fn put(
    on: ResourceRequest,
    Query(q): Query<ConfigQuery>,
    AwsJson(req): AwsJson<PutRequest>,
) -> ApiResult<Response> {
    let r = qualified_ref(&on.caller, &on.name, &q, "PutProvisionedConcurrencyConfig")?;
    let requested = match req.requested {
        None => {
            return Err(AwsError::validation(
                "1 validation error detected: Value null at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must not be null",
            )
            .into())
        }
        Some(n) if n < 1 => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{n}' at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 1"
            ))
            .into())
        }
        Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
    };
    let qualifier = provisioned_key(&r);
    let _one_at_a_time = PROVISIONING.lock().await;
    let record = load(&on.state, &on.caller, &r).await?;
    target_version(&on.caller, &record, &r)?;
    check_overlap(&record, &qualifier)?;
    let current = record
        .provisioned_concurrency
        .get(&qualifier)
        .map_or(0, |c| c.requested);
    let total = total_provisioned(&record)
        .saturating_sub(current)
        .saturating_add(requested);
    let limiter = on.state.engine.concurrency();
    limiter
        .check_provisioned(&on.caller.account_id, &on.caller.region, &r.name, total)
        .map_err(refusal)?;
    let config = ProvisionedConcurrency {
        requested,
        last_modified: chrono::Utc::now(),
    };
    let stored = config.clone();
    let q_for_update = qualifier.clone();
    let record = super::update_function(
        &on.state,
        &on.caller,
        &r,
        Box::new(move |record| {
            check_overlap(record, &q_for_update)?;
            record.provisioned_concurrency.insert(q_for_update, stored);
            Ok(())
        }),
    )
    .await?;
    limiter.set_provisioned(
        &on.caller.account_id,
        &on.caller.region,
        &r.name,
        total_provisioned(&record),
    );
    let version = target_version(&on.caller, &record, &r)?;
    let target = invoke_target(
        &on.caller.account_id,
        &on.caller.region,
        version,
        &qualifier,
    );
    let key = key(&on.caller, &r.name, &qualifier);
    on.state.engine.provision(key.clone(), target, requested);
    Ok(json_response(
        StatusCode::ACCEPTED,
        wire(&config, on.state.engine.provisioned_report(&key)),
    ))
}

pub async fn get_or_list(on: ResourceRequest, Query(q): Query<ConfigQuery>) -> ApiResult<Response> {
    if q.list.is_some() {
        return list(&on.state, &on.caller, &on.name, &q).await;
    }
    let r = qualified_ref(&on.caller, &on.name, &q, "GetProvisionedConcurrencyConfig")?;
    let record = load(&on.state, &on.caller, &r).await?;
    target_version(&on.caller, &record, &r)?;
    let qualifier = provisioned_key(&r);
    let config = record
        .provisioned_concurrency
        .get(&qualifier)
        .ok_or_else(not_configured)?;
    let report = on
        .state
        .engine
        .provisioned_report(&key(&on.caller, &r.name, &qualifier));
    Ok(json_response(StatusCode::OK, wire(config, report)))
}

async fn list(
    state: &ApiState,
    caller: &Caller,
    name: &str,
    q: &ConfigQuery,
) -> ApiResult<Response> {
    if q.list.as_deref() != Some("ALL") {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{}' at 'list' failed to satisfy constraint: Member must satisfy enum value set: [ALL]",
            q.list.as_deref().unwrap_or_default()
        ))
        .into());
    }
    let r = function_ref(caller, name, None, "ListProvisionedConcurrencyConfigs")?;
    let record = load(state, caller, &r).await?;
    let items = record
        .provisioned_concurrency
        .iter()
        .map(|(qualifier, config)| {
            let report = state
                .engine
                .provisioned_report(&key(caller, &r.name, qualifier));
            let mut item = wire(config, report);
            item["FunctionArn"] = json!(qualified_function_arn(
                &caller.region,
                &caller.account_id,
                &r.name,
                Qualifier::parse(qualifier).ok().as_ref(),
            ));
            (qualifier.clone(), item)
        })
        .collect();
    let (page, next) =
        super::versions::paginate(items, q.marker.as_deref(), q.max_items.as_deref())?;
    let mut body = json!({ "ProvisionedConcurrencyConfigs": page });
    if let Some(next) = next {
        body["NextMarker"] = json!(next);
    }
    Ok(json_response(StatusCode::OK, body))
}

pub async fn delete(on: ResourceRequest, Query(q): Query<ConfigQuery>) -> ApiResult<Response> {
    let r = qualified_ref(
        &on.caller,
        &on.name,
        &q,
        "DeleteProvisionedConcurrencyConfig",
    )?;
    let qualifier = provisioned_key(&r);
    let _one_at_a_time = PROVISIONING.lock().await;
    let record = load(&on.state, &on.caller, &r).await?;
    target_version(&on.caller, &record, &r)?;
    let q_for_update = qualifier.clone();
    let record = super::update_function(
        &on.state,
        &on.caller,
        &r,
        Box::new(move |record| {
            record.provisioned_concurrency.remove(&q_for_update);
            Ok(())
        }),
    )
    .await?;
    forget(&on.state, &on.caller, &record, &qualifier);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Ends the instances of a configuration that is gone from `record` and
/// gives its concurrency back.
pub(crate) fn forget(state: &ApiState, caller: &Caller, record: &FunctionRecord, qualifier: &str) {
    state
        .engine
        .deprovision(&key(caller, record.name(), qualifier));
    state.engine.concurrency().set_provisioned(
        &caller.account_id,
        &caller.region,
        record.name(),
        total_provisioned(record),
    );
}

/// Removes the configuration of a qualifier that is being deleted (a
/// version or an alias), inside the deleting mutation.
pub(crate) fn drop_config(record: &mut FunctionRecord, qualifier: &str) {
    record.provisioned_concurrency.remove(qualifier);
}

/// After an alias moved to another version: its provisioned instances move
/// with it.
pub(crate) fn alias_moved(state: &ApiState, caller: &Caller, record: &FunctionRecord, alias: &str) {
    let Some(config) = record.provisioned_concurrency.get(alias) else {
        return;
    };
    let version = record
        .aliases
        .get(alias)
        .and_then(|a| record.version(&a.function_version));
    if let Some(version) = version {
        let target = invoke_target(&caller.account_id, &caller.region, version, alias);
        state
            .engine
            .provision(key(caller, record.name(), alias), target, config.requested);
    }
}

/// At start: the limiter learns every function's provisioned total and the
/// engine starts every configuration's instances.
pub async fn restore(state: &ApiState, records: &[FunctionRecord]) {
    for record in records {
        if record.provisioned_concurrency.is_empty() {
            continue;
        }
        state.engine.concurrency().set_provisioned(
            &record.account,
            &record.region,
            record.name(),
            total_provisioned(record),
        );
        for (qualifier, config) in &record.provisioned_concurrency {
            let version = match Qualifier::parse(qualifier) {
                Ok(Qualifier::Version(n)) => record.versions.get(&n),
                Ok(Qualifier::Alias(alias)) => record
                    .aliases
                    .get(&alias)
                    .and_then(|a| record.version(&a.function_version)),
                _ => None,
            };
            let Some(version) = version else { continue };
            let target = invoke_target(&record.account, &record.region, version, qualifier);
            let key = (
                record.account.clone(),
                record.region.clone(),
                record.name().to_string(),
                qualifier.clone(),
            );
            state.engine.provision(key, target, config.requested);
        }
    }
}
