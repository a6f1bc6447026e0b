//! AddPermission, RemovePermission, GetPolicy: the function's resource-based
//! policy, stored and returned as AWS does (decided by IAM's evaluator at
//! the auth edge and where the gateway and services invoke). The whole
//! document PutResourcePolicy sets is the same policy (see
//! `resource_policy.rs`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use strato_model::policy::Policy;
use strato_model::policy::{principal_value, statement, StatementInput};
use strato_model::{validate, AwsError, ErrorCode, FunctionRecord, FunctionRef, Qualifier};

use super::{function_ref, load, not_found, unqualified_arn, update_function};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::wire::{json as json_response, AwsJson};
use crate::ApiState;
use strato_gateway::extract::Authenticated;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AddPermissionRequest {
    statement_id: Option<String>,
    action: Option<String>,
    principal: Option<String>,
    source_arn: Option<String>,
    source_account: Option<String>,
    event_source_token: Option<String>,
    revision_id: Option<String>,
    #[serde(rename = "PrincipalOrgID")]
    principal_org_id: Option<String>,
    function_url_auth_type: Option<String>,
    invoked_via_function_url: Option<bool>,
}

#[derive(Deserialize)]
pub struct PolicyQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
    #[serde(rename = "RevisionId")]
    revision_id: Option<String>,
}

/// Which policy a reference names: `None` for the function's own (unqualified
/// or `$LATEST`), else the qualifier of a published version or alias, which
/// must exist. AWS keeps a separate policy per qualifier.
pub(super) fn policy_key(
    record: &FunctionRecord,
    caller: &Caller,
    r: &FunctionRef,
) -> ApiResult<Option<String>> {
    match &r.qualifier {
        None | Some(Qualifier::Latest) => Ok(None),
        Some(q) => {
            if record.resolve(Some(q)).is_none() {
                return Err(not_found(caller, r).into());
            }
            Ok(Some(q.as_string()))
        }
    }
}

/// The RevisionId a policy change is checked against and changes: the
/// function's, the version's or the alias's.
pub(super) fn revision_of(record: &FunctionRecord, key: Option<&str>) -> Option<String> {
    match key {
        None => Some(record.latest.revision_id.clone()),
        Some(k) => match record.version(k) {
            Some(config) => Some(config.revision_id.clone()),
            None => record.aliases.get(k).map(|a| a.revision_id.clone()),
        },
    }
}

fn bump_revision(record: &mut FunctionRecord, key: Option<&str>) {
    let fresh = uuid::Uuid::new_v4().to_string();
    match key {
        None => record.latest.revision_id = fresh,
        Some(k) => {
            if let Some(config) = k
                .parse::<u64>()
                .ok()
                .and_then(|n| record.versions.get_mut(&n))
            {
                config.revision_id = fresh;
            } else if let Some(alias) = record.aliases.get_mut(k) {
                alias.revision_id = fresh;
            }
        }
    }
}

/// Changes the policy `key` names inside the store's transaction: the
/// caller's RevisionId (when given) must still be the current one (else
/// AWS's PreconditionFailedException naming `read_with`, the operation that
/// reads it), and the change makes a fresh one. Answers the record as
/// changed.
pub(super) async fn change_policy(
    state: &ApiState,
    caller: &Caller,
    r: &FunctionRef,
    key: Option<String>,
    (revision, read_with): (Option<String>, &'static str),
    change: impl FnOnce(&mut FunctionRecord, Option<&str>) -> Result<(), AwsError> + Send + 'static,
) -> ApiResult<Arc<FunctionRecord>> {
    let gone = not_found(caller, r);
    update_function(
        state,
        caller,
        r,
        Box::new(move |record| {
            let k = key.as_deref();
            let current = revision_of(record, k).ok_or(gone)?;
            if revision.as_deref().is_some_and(|rev| rev != current) {
                return Err(AwsError::stale_revision(read_with));
            }
            change(record, k)?;
            bump_revision(record, k);
            Ok(())
        }),
    )
    .await
}

/// The policy `key` names (see [`policy_key`]), to change.
pub(super) fn policy_mut<'a>(record: &'a mut FunctionRecord, key: Option<&str>) -> &'a mut Policy {
    match key {
        None => &mut record.policy,
        Some(k) => record.qualified_policies.entry(k.to_string()).or_default(),
    }
}

pub(super) fn policy_of<'a>(record: &'a FunctionRecord, key: Option<&str>) -> Option<&'a Policy> {
    match key {
        None => Some(&record.policy),
        Some(k) => record.qualified_policies.get(k),
    }
}

pub(super) fn refuse_latest_qualifier(q: &Option<Qualifier>) -> ApiResult<()> {
    if q == &Some(Qualifier::Latest) {
        return Err(AwsError::invalid_parameter(
            "We currently do not support adding policies for $LATEST.",
        )
        .into());
    }
    Ok(())
}

pub async fn add(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path(name): Path<String>,
    Query(q): Query<PolicyQuery>,
    AwsJson(req): AwsJson<AddPermissionRequest>,
) -> ApiResult<Response> {
    let r = function_ref(&caller, &name, q.qualifier.as_deref(), "AddPermission")?;
    let mut missing = strato_model::error::ValidationErrors::new();
    for (value, field) in [
        (&req.statement_id, "statementId"),
        (&req.action, "action"),
        (&req.principal, "principal"),
    ] {
        if value.is_none() {
            missing.push_raw("null", field, "Member must not be null");
        }
    }
    missing.into_result(ErrorCode::ValidationException)?;
    let (Some(sid), Some(action), Some(principal)) = (req.statement_id, req.action, req.principal)
    else {
        return Err(AwsError::validation("StatementId, Action and Principal are required").into());
    };
    validate::statement_id(&sid)?;
    validate::action(&action)?;
    let principal = principal_value(&principal).ok_or_else(|| {
        AwsError::invalid_parameter(
            "The provided principal was invalid. Please check the principal and try again.",
        )
    })?;
    if let Some(auth) = &req.function_url_auth_type {
        if auth != "NONE" && auth != "AWS_IAM" {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{auth}' at 'functionUrlAuthType' failed to satisfy constraint: Member must satisfy enum value set: [AWS_IAM, NONE]"
            ))
            .into());
        }
    }
    refuse_latest_qualifier(&r.qualifier)?;
    let current = load(&state, &caller, &r).await?;
    let key = policy_key(&current, &caller, &r)?;

    let resource = match &key {
        None => unqualified_arn(&caller, &r.name),
        Some(q) => format!("{}:{q}", unqualified_arn(&caller, &r.name)),
    };
    let mut stmt = statement(&StatementInput {
        sid: &sid,
        action: &action,
        principal,
        resource: &resource,
        source_arn: req.source_arn.as_deref(),
        source_account: req.source_account.as_deref(),
        event_source_token: req.event_source_token.as_deref(),
        principal_org_id: req.principal_org_id.as_deref(),
        function_url_auth_type: req.function_url_auth_type.as_deref(),
    });
    if req.invoked_via_function_url == Some(true) {
        stmt["Condition"]["Bool"] = json!({ "lambda:InvokedViaFunctionUrl": "true" });
    }
    let stmt_text = stmt.to_string();
    let added = stmt.clone();
    let revision = (req.revision_id, "GetPolicy");
    change_policy(&state, &caller, &r, key, revision, move |record, k| {
        let policy = policy_mut(record, k);
        if policy.contains(&sid) {
            return Err(AwsError::conflict(format!(
                "The statement id ({sid}) provided already exists. Please provide a new statement id, or remove the existing statement."
            )));
        }
        policy.push(added);
        policy.check_size()
    })
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({ "Statement": stmt_text }),
    ))
}

pub async fn get(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path(name): Path<String>,
    Query(q): Query<PolicyQuery>,
) -> ApiResult<Response> {
    let r = function_ref(&caller, &name, q.qualifier.as_deref(), "GetPolicy")?;
    let record = load(&state, &caller, &r).await?;
    let key = policy_key(&record, &caller, &r)?;
    let policy = policy_of(&record, key.as_deref()).filter(|p| !p.is_empty());
    let (Some(policy), Some(revision)) = (policy, revision_of(&record, key.as_deref())) else {
        return Err(AwsError::not_found("The resource you requested does not exist.").into());
    };
    Ok(json_response(
        StatusCode::OK,
        json!({ "Policy": policy.document(), "RevisionId": revision }),
    ))
}

pub async fn remove(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path((name, sid)): Path<(String, String)>,
    Query(q): Query<PolicyQuery>,
) -> ApiResult<Response> {
    let r = function_ref(&caller, &name, q.qualifier.as_deref(), "RemovePermission")?;
    let current = load(&state, &caller, &r).await?;
    let key = policy_key(&current, &caller, &r)?;
    let revision = (q.revision_id, "GetPolicy");
    change_policy(&state, &caller, &r, key, revision, move |record, k| {
        let policy = match k {
            None => Some(&mut record.policy),
            Some(k) => record.qualified_policies.get_mut(k),
        };
        let Some(policy) = policy.filter(|p| !p.is_empty()) else {
            return Err(AwsError::not_found(
                "No policy is associated with the given resource.",
            ));
        };
        if !policy.remove(&sid) {
            return Err(AwsError::not_found(format!(
                "Statement {sid} is not found in resource policy."
            )));
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
