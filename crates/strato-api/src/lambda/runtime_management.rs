//! GetRuntimeManagementConfig and PutRuntimeManagementConfig: when a
//! version moves to a newer build of its runtime.
//!
//! A build is what this host has installed for a runtime, named by a hash
//! (`strato runtimes list` shows it; see
//! `RuntimeCatalog::build_hash`). `Auto` and `FunctionUpdate` record the
//! installed build whenever the version's code or configuration is deployed;
//! `Manual` pins the version to one build. Strato can only run what is
//! installed, so a pin to a build this host does not have is refused.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use strato_model::error::ValidationErrors;
use strato_model::function::{runtime_version_arn, runtime_version_hash};
use strato_model::{AwsError, ErrorCode, FunctionConfig, FunctionRef, Qualifier, RuntimeUpdate};

use super::functions::QualifierQuery;
use super::{function_ref, load, not_found, update_function, ResourceRequest};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::wire::{json as json_response, AwsJson};

/// AWS's bounds and pattern for `RuntimeVersionArn`.
const MIN_RUNTIME_VERSION_ARN: usize = 26;
const MAX_RUNTIME_VERSION_ARN: usize = 2048;
const RUNTIME_VERSION_ARN_PATTERN: &str =
    r"^arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso(b?)))?-[a-z]+-\d{1}::runtime:.+$";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct PutRequest {
    update_runtime_on: Option<String>,
    runtime_version_arn: Option<String>,
}

/// The mode a Put asks for, before the build is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requested {
    Auto,
    FunctionUpdate,
    Manual(String),
}

/// True when `arn` has the shape of AWS's runtime version ARNs.
fn matches_runtime_version_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, rest] = parts.as_slice() else {
        return false;
    };
    *prefix == "arn"
        && partition
            .strip_prefix("aws")
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-'))
        && *service == "lambda"
        && region.split('-').count() >= 3
        && account.is_empty()
        && rest
            .strip_prefix("runtime:")
            .is_some_and(|id| !id.is_empty())
}

/// AWS's validation of a Put body.
fn requested(req: &PutRequest) -> Result<Requested, AwsError> {
    let mut errors = ValidationErrors::new();
    if let Some(arn) = &req.runtime_version_arn {
        let len = arn.chars().count();
        if len < MIN_RUNTIME_VERSION_ARN {
            errors.push(
                arn,
                "runtimeVersionArn",
                &format!(
                    "Member must have length greater than or equal to {MIN_RUNTIME_VERSION_ARN}"
                ),
            );
        } else if len > MAX_RUNTIME_VERSION_ARN {
            errors.push(
                arn,
                "runtimeVersionArn",
                &format!("Member must have length less than or equal to {MAX_RUNTIME_VERSION_ARN}"),
            );
        } else if !matches_runtime_version_arn(arn) {
            errors.push_pattern(arn, "runtimeVersionArn", RUNTIME_VERSION_ARN_PATTERN);
        }
    }
    let mode = match req.update_runtime_on.as_deref() {
        None => {
            errors.push_raw("null", "updateRuntimeOn", "Member must not be null");
            None
        }
        Some(mode @ ("Auto" | "FunctionUpdate" | "Manual")) => Some(mode),
        Some(other) => {
            errors.push(
                other,
                "updateRuntimeOn",
                "Member must satisfy enum value set: [Auto, Manual, FunctionUpdate]",
            );
            None
        }
    };
    errors.into_result(ErrorCode::ValidationException)?;
    match (mode, req.runtime_version_arn.clone()) {
        (Some("Manual"), Some(arn)) => Ok(Requested::Manual(arn)),
        (Some("Manual"), None) => Err(AwsError::invalid_parameter(
            "RuntimeVersionArn is required when UpdateRuntimeOn is Manual.",
        )),
        (Some(_), Some(_)) => Err(AwsError::invalid_parameter(
            "RuntimeVersionArn can only be specified when UpdateRuntimeOn is Manual.",
        )),
        (Some("FunctionUpdate"), None) => Ok(Requested::FunctionUpdate),
        _ => Ok(Requested::Auto),
    }
}

/// `$LATEST` or a published version: the qualifiers this API takes.
fn version_ref(caller: &Caller, r: &FunctionRef) -> ApiResult<()> {
    match r.qualifier {
        None | Some(Qualifier::Latest) | Some(Qualifier::Version(_)) => Ok(()),
        Some(Qualifier::Alias(_)) => Err(not_found(caller, r).into()),
    }
}

/// The answer of Get and Put: `RuntimeVersionArn` only for a pinned version.
fn answer(caller: &Caller, config: &FunctionConfig) -> Value {
    let mut body = json!({
        "UpdateRuntimeOn": config.runtime_update.mode(),
        "FunctionArn": config.arn(&caller.region, &caller.account_id),
    });
    if let RuntimeUpdate::Manual(hash) = &config.runtime_update {
        body["RuntimeVersionArn"] = json!(runtime_version_arn(&caller.region, hash));
    }
    body
}

pub async fn get(on: ResourceRequest, Query(q): Query<QualifierQuery>) -> ApiResult<Response> {
    let r = function_ref(
        &on.caller,
        &on.name,
        q.qualifier(),
        "GetRuntimeManagementConfig",
    )?;
    version_ref(&on.caller, &r)?;
    let record = load(&on.state, &on.caller, &r).await?;
    let config = record
        .config_for(r.qualifier.as_ref())
        .ok_or_else(|| not_found(&on.caller, &r))?;
    Ok(json_response(StatusCode::OK, answer(&on.caller, config)))
}

pub async fn put(
    on: ResourceRequest,
    Query(q): Query<QualifierQuery>,
    AwsJson(req): AwsJson<PutRequest>,
) -> ApiResult<Response> {
    let wanted = requested(&req)?;
    let r = function_ref(
        &on.caller,
        &on.name,
        q.qualifier(),
        "PutRuntimeManagementConfig",
    )?;
    version_ref(&on.caller, &r)?;
    let record = load(&on.state, &on.caller, &r).await?;
    let config = record
        .config_for(r.qualifier.as_ref())
        .ok_or_else(|| not_found(&on.caller, &r))?;
    let installed = on.state.engine.runtime_build(config.runtime).ok();
    let update = match wanted {
        Requested::Auto => RuntimeUpdate::Auto,
        Requested::FunctionUpdate => RuntimeUpdate::FunctionUpdate,
        Requested::Manual(arn) => {
            // Strato runs only what is installed: a pin is to the build this
            // host has for the function's runtime.
            let hash = runtime_version_hash(&arn, &on.caller.region)
                .filter(|hash| installed.as_deref() == Some(*hash))
                .ok_or_else(|| {
                    AwsError::invalid_parameter(format!(
                        "The runtime version {arn} is not installed for runtime {} on this Strato host. Run `strato runtimes list` to see the installed builds.",
                        config.runtime
                    ))
                })?;
            RuntimeUpdate::Manual(hash.to_string())
        }
    };
    let target = r.qualifier.clone();
    let record = update_function(
        &on.state,
        &on.caller,
        &r,
        Box::new(move |record| {
            let config = match &target {
                None | Some(Qualifier::Latest) => &mut record.latest,
                Some(Qualifier::Version(n)) => record
                    .versions
                    .get_mut(n)
                    .ok_or_else(|| AwsError::not_found("The function version no longer exists."))?,
                Some(Qualifier::Alias(_)) => {
                    return Err(AwsError::not_found(
                        "Aliases have no runtime management configuration.",
                    ))
                }
            };
            if let RuntimeUpdate::Manual(hash) = &update {
                config.runtime_version = Some(hash.clone());
            } else if installed.is_some() {
                config.runtime_version = installed;
            }
            config.runtime_update = update;
            Ok(())
        }),
    )
    .await?;
    let config = record
        .config_for(r.qualifier.as_ref())
        .ok_or_else(|| not_found(&on.caller, &r))?;
    Ok(json_response(StatusCode::OK, answer(&on.caller, config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(mode: Option<&str>, arn: Option<&str>) -> Result<Requested, String> {
        requested(&PutRequest {
            update_runtime_on: mode.map(str::to_string),
            runtime_version_arn: arn.map(str::to_string),
        })
        .map_err(|e| format!("{}: {}", e.code, e.message))
    }

    #[test]
    fn modes_and_pins_validate_as_aws() {
        let arn = format!("arn:aws:lambda:us-east-1::runtime:{}", "a".repeat(64));
        assert_eq!(put(Some("Auto"), None), Ok(Requested::Auto));
        assert_eq!(
            put(Some("Manual"), Some(&arn)),
            Ok(Requested::Manual(arn.clone()))
        );
        assert_eq!(
            put(None, None),
            Err("ValidationException: 1 validation error detected: Value null at 'updateRuntimeOn' failed to satisfy constraint: Member must not be null".into())
        );
        assert_eq!(
            put(Some("Sometimes"), None),
            Err("ValidationException: 1 validation error detected: Value 'Sometimes' at 'updateRuntimeOn' failed to satisfy constraint: Member must satisfy enum value set: [Auto, Manual, FunctionUpdate]".into())
        );
        assert!(put(Some("Manual"), None)
            .is_err_and(|e| e.starts_with("InvalidParameterValueException")));
        assert!(put(
            Some("Manual"),
            Some("arn:aws:lambda:us-east-1:111111111111:function:f")
        )
        .is_err_and(|e| e.contains("regular expression pattern")));
    }
}
