//! CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases.
//!
//! Aliases live inside the function's record next to its versions, so Invoke
//! resolves `name:alias` (and picks a version by the routing weights) from
//! memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use strato_model::error::ValidationErrors;
use strato_model::{Alias, AwsError, ErrorCode, FunctionRecord, LATEST};

use super::versions::paginate;
use super::{load, whole_function_ref, ResourceRequest};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::wire::{json as json_response, AwsJson};
use crate::ApiState;
use strato_gateway::extract::Authenticated;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct RoutingConfigInput {
    additional_version_weights: Option<BTreeMap<String, f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CreateAliasRequest {
    name: Option<String>,
    function_version: Option<String>,
    description: Option<String>,
    routing_config: Option<RoutingConfigInput>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct UpdateAliasRequest {
    function_version: Option<String>,
    description: Option<String>,
    routing_config: Option<RoutingConfigInput>,
    revision_id: Option<String>,
}

#[derive(Deserialize)]
pub struct ListAliasesQuery {
    #[serde(rename = "FunctionVersion")]
    function_version: Option<String>,
    #[serde(rename = "Marker")]
    marker: Option<String>,
    #[serde(rename = "MaxItems")]
    max_items: Option<String>,
}

const ALIAS_PATTERN: &str = "(?!^[0-9]+$)([a-zA-Z0-9-_]+)";
const VERSION_PATTERN: &str = r"(\$LATEST|[0-9]+)";

/// AWS's checks on an alias `Name` member.
fn check_alias_name(name: &str, errors: &mut ValidationErrors) {
    errors.check_max_length(name, 128, "name");
    if name.is_empty() {
        errors.push(
            name,
            "name",
            "Member must have length greater than or equal to 1",
        );
    }
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let numeric = !name.is_empty() && name.chars().all(|c| c.is_ascii_digit());
    if !name.is_empty() && (!chars_ok || numeric) {
        errors.push_pattern(name, "name", ALIAS_PATTERN);
    }
}

fn is_version_text(v: &str) -> bool {
    v == LATEST || (!v.is_empty() && v.len() <= 1024 && v.chars().all(|c| c.is_ascii_digit()))
}

fn check_version_text(v: &str, errors: &mut ValidationErrors) {
    if !is_version_text(v) {
        errors.push_pattern(v, "functionVersion", VERSION_PATTERN);
    }
}

/// A weight as Java prints a double (`0.5`, `2.0`, `-1.0`), as AWS quotes it.
fn java_double(w: f64) -> String {
    if w.is_finite() && w.fract() == 0.0 {
        format!("{w:.1}")
    } else {
        format!("{w}")
    }
}

fn weights_text(weights: &BTreeMap<String, f64>) -> String {
    let inner: Vec<String> = weights
        .iter()
        .map(|(k, v)| format!("{k}={}", java_double(*v)))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

/// The syntactic checks on `RoutingConfig.AdditionalVersionWeights`
/// (ValidationException), in AWS's order.
fn check_weights_syntax(weights: &BTreeMap<String, f64>, errors: &mut ValidationErrors) {
    let text = weights_text(weights);
    if weights
        .keys()
        .any(|k| k.is_empty() || k.len() > 1024 || !k.chars().all(|c| c.is_ascii_digit()))
    {
        errors.push_raw(
            &format!("'{text}'"),
            "routingConfig.additionalVersionWeights",
            "Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]",
        );
    }
    if weights.values().any(|w| !(0.0..=1.0).contains(w)) {
        errors.push_raw(
            &format!("'{text}'"),
            "routingConfig.additionalVersionWeights",
            "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]",
        );
    }
}

/// The rules that need the function: at most one extra version, never the
/// primary itself, never with `$LATEST` as the primary, and every version
/// must exist.
fn check_routing(
    record: &FunctionRecord,
    caller: &Caller,
    primary: &str,
    weights: &BTreeMap<String, f64>,
) -> Result<(), AwsError> {
    if weights.len() > 1 {
        return Err(AwsError::invalid_parameter(
            "Number of items in AdditionalVersionWeights cannot be greater than 1",
        ));
    }
    for version in weights.keys() {
        if version == primary {
            return Err(AwsError::invalid_parameter(format!(
                "Invalid function version {primary}. Function version {primary} is already included in routing configuration."
            )));
        }
        if primary == LATEST {
            return Err(AwsError::invalid_parameter(
                "$LATEST is not supported for an alias pointing to more than 1 version",
            ));
        }
        if record.version(version).is_none() {
            return Err(version_not_found(caller, record.name(), version));
        }
    }
    Ok(())
}

fn version_not_found(caller: &Caller, function: &str, version: &str) -> AwsError {
    AwsError::function_not_found(&format!(
        "{}:{version}",
        super::unqualified_arn(caller, function)
    ))
}

fn alias_arn(caller: &Caller, function: &str, alias: &str) -> String {
    format!("{}:{alias}", super::unqualified_arn(caller, function))
}

pub async fn create(
    on: ResourceRequest,
    AwsJson(req): AwsJson<CreateAliasRequest>,
) -> ApiResult<Response> {
    let r = whole_function_ref(&on.caller, &on.name, "CreateAlias")?;
    let mut errors = ValidationErrors::new();
    match &req.name {
        None => errors.push_raw("null", "name", "Member must not be null"),
        Some(alias) => check_alias_name(alias, &mut errors),
    }
    match &req.function_version {
        None => errors.push_raw("null", "functionVersion", "Member must not be null"),
        Some(v) => check_version_text(v, &mut errors),
    }
    if let Some(description) = &req.description {
        errors.check_max_length(description, 256, "description");
    }
    let weights = req
        .routing_config
        .and_then(|r| r.additional_version_weights)
        .unwrap_or_default();
    check_weights_syntax(&weights, &mut errors);
    errors.into_result(ErrorCode::ValidationException)?;
    let (Some(alias_name), Some(version)) = (req.name, req.function_version) else {
        return Err(AwsError::validation("Name and FunctionVersion are required").into());
    };
    load(&on.state, &on.caller, &r).await?;
    let out_caller = on.caller.clone();
    let description = req.description.unwrap_or_default();
    let created = alias_name.clone();
    let record = super::update_function(
        &on.state,
        &on.caller,
        &r,
        Box::new(move |record| {
            if record.version(&version).is_none() {
                return Err(version_not_found(&out_caller, record.name(), &version));
            }
            if record.aliases.contains_key(&alias_name) {
                return Err(AwsError::conflict(format!(
                    "Alias already exists: {}",
                    alias_arn(&out_caller, record.name(), &alias_name)
                )));
            }
            check_routing(record, &out_caller, &version, &weights)?;
            record.aliases.insert(
                alias_name.clone(),
                Alias {
                    name: alias_name,
                    function_version: version,
                    description,
                    additional_version_weights: weights,
                    revision_id: uuid::Uuid::new_v4().to_string(),
                },
            );
            Ok(())
        }),
    )
    .await?;
    let alias = record
        .aliases
        .get(&created)
        .ok_or_else(|| AwsError::service("the created alias vanished"))?;
    Ok(json_response(
        StatusCode::CREATED,
        alias.to_wire(&record.region, &record.account, record.name()),
    ))
}

fn checked_alias_path(alias: &str) -> ApiResult<()> {
    let mut errors = ValidationErrors::new();
    check_alias_name(alias, &mut errors);
    errors.into_result(ErrorCode::ValidationException)?;
    Ok(())
}

pub async fn get(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path((name, alias)): Path<(String, String)>,
) -> ApiResult<Response> {
    let r = whole_function_ref(&caller, &name, "GetAlias")?;
    checked_alias_path(&alias)?;
    let record = load(&state, &caller, &r).await?;
    let found = record.aliases.get(&alias).ok_or_else(|| {
        AwsError::not_found(format!(
            "Cannot find alias arn: {}",
            alias_arn(&caller, &r.name, &alias)
        ))
    })?;
    Ok(json_response(
        StatusCode::OK,
        found.to_wire(&record.region, &record.account, record.name()),
    ))
}

pub async fn update(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path((name, alias)): Path<(String, String)>,
    AwsJson(req): AwsJson<UpdateAliasRequest>,
) -> ApiResult<Response> {
    let r = whole_function_ref(&caller, &name, "UpdateAlias")?;
    let mut errors = ValidationErrors::new();
    check_alias_name(&alias, &mut errors);
    if let Some(v) = &req.function_version {
        check_version_text(v, &mut errors);
    }
    if let Some(description) = &req.description {
        errors.check_max_length(description, 256, "description");
    }
    // An empty RoutingConfig (or empty weights) removes the routing.
    let weights = req
        .routing_config
        .map(|r| r.additional_version_weights.unwrap_or_default());
    if let Some(weights) = &weights {
        check_weights_syntax(weights, &mut errors);
    }
    errors.into_result(ErrorCode::ValidationException)?;
    let before = load(&state, &caller, &r).await?;
    let out_caller = caller.clone();
    let target = alias.clone();
    let record = super::update_function(
        &state,
        &caller,
        &r,
        Box::new(move |record| {
            let arn = alias_arn(&out_caller, record.name(), &target);
            let Some(current) = record.aliases.get(&target).cloned() else {
                return Err(AwsError::not_found(format!("Alias not found: {arn}")));
            };
            if req
                .revision_id
                .as_deref()
                .is_some_and(|rev| rev != current.revision_id)
            {
                return Err(AwsError::stale_revision("GetFunction/GetAlias"));
            }
            let mut next = current;
            if let Some(version) = req.function_version {
                if record.version(&version).is_none() {
                    return Err(version_not_found(&out_caller, record.name(), &version));
                }
                next.function_version = version;
            }
            if let Some(description) = req.description {
                next.description = description;
            }
            if let Some(weights) = weights {
                next.additional_version_weights = weights;
            }
            check_routing(
                record,
                &out_caller,
                &next.function_version,
                &next.additional_version_weights,
            )?;
            next.revision_id = uuid::Uuid::new_v4().to_string();
            record.aliases.insert(target, next);
            Ok(())
        }),
    )
    .await?;
    let updated = record
        .aliases
        .get(&alias)
        .ok_or_else(|| AwsError::service("the updated alias vanished"))?;
    let moved = before
        .aliases
        .get(&alias)
        .is_none_or(|old| old.function_version != updated.function_version);
    if moved {
        super::provisioned::alias_moved(&state, &caller, &record, &alias);
    }
    Ok(json_response(
        StatusCode::OK,
        updated.to_wire(&record.region, &record.account, record.name()),
    ))
}

pub async fn delete(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path((name, alias)): Path<(String, String)>,
) -> ApiResult<Response> {
    let r = whole_function_ref(&caller, &name, "DeleteAlias")?;
    checked_alias_path(&alias)?;
    load(&state, &caller, &r).await?;
    let out_caller = caller.clone();
    let deleted = alias.clone();
    let record = super::update_function(
        &state,
        &caller,
        &r,
        Box::new(move |record| {
            if record.aliases.remove(&deleted).is_none() {
                return Err(AwsError::not_found(format!(
                    "Alias not found: {}",
                    alias_arn(&out_caller, record.name(), &deleted)
                )));
            }
            record.qualified_policies.remove(&deleted);
            super::provisioned::drop_config(record, &deleted);
            record.event_invoke_configs.remove(&deleted);
            Ok(())
        }),
    )
    .await?;
    super::provisioned::forget(&state, &caller, &record, &alias);
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list(on: ResourceRequest, Query(q): Query<ListAliasesQuery>) -> ApiResult<Response> {
    let r = whole_function_ref(&on.caller, &on.name, "ListAliases")?;
    let mut errors = ValidationErrors::new();
    if let Some(v) = &q.function_version {
        check_version_text(v, &mut errors);
    }
    errors.into_result(ErrorCode::ValidationException)?;
    let record = load(&on.state, &on.caller, &r).await?;
    let items = record
        .aliases
        .values()
        .filter(|a| {
            q.function_version
                .as_deref()
                .is_none_or(|v| a.function_version == v)
        })
        .map(|a| {
            (
                a.name.clone(),
                a.to_wire(&record.region, &record.account, record.name()),
            )
        })
        .collect();
    let (page, next) = paginate(items, q.marker.as_deref(), q.max_items.as_deref())?;
    let mut body = json!({ "Aliases": page });
    if let Some(next) = next {
        body["NextMarker"] = json!(next);
    }
    Ok(json_response(StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_print_as_aws_quotes_them() {
        let w: BTreeMap<String, f64> = [("2".to_string(), 2.0)].into();
        assert_eq!(weights_text(&w), "{2=2.0}");
        let w: BTreeMap<String, f64> = [("$LATEST".to_string(), 0.5)].into();
        assert_eq!(weights_text(&w), "{$LATEST=0.5}");
        let w: BTreeMap<String, f64> = [("2".to_string(), -1.0)].into();
        assert_eq!(weights_text(&w), "{2=-1.0}");
    }
}
