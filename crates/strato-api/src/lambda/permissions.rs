//! AddPermission, RemovePermission, GetPolicy: the function's resource-based
//! policy, stored and returned as AWS does (enforced where invocations are
//! authorized).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::json;
use strato_model::limits::MAX_POLICY_BYTES;
use strato_model::policy::{principal_value, statement, StatementInput};
use strato_model::{validate, AwsError, ErrorCode, Qualifier};

use super::{function_ref, load, not_found, require_latest, unqualified_arn};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::wire::{json as json_response, AwsJson};
use crate::ApiState;

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

fn refuse_latest_qualifier(q: &Option<Qualifier>) -> ApiResult<()> {
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
    Extension(caller): Extension<Caller>,
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
    load(&state, &caller, &r).await?;
    require_latest(&caller, &r)?;

    let resource = unqualified_arn(&caller, &r.name);
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
    let revision = req.revision_id.clone();
    let added = stmt.clone();
    state
        .catalog
        .update(
            &caller.account_id,
            &caller.region,
            &r.name,
            Box::new(move |record| {
                if revision.as_deref().is_some_and(|rev| rev != record.latest.revision_id) {
                    return Err(AwsError::stale_revision("GetPolicy"));
                }
                if record.policy.contains(&sid) {
                    return Err(AwsError::conflict(format!(
                        "The statement id ({sid}) provided already exists. Please provide a new statement id, or remove the existing statement."
                    )));
                }
                record.policy.statements.push(added);
                let size = record.policy.document().len();
                if size > MAX_POLICY_BYTES {
                    return Err(AwsError::new(
                        ErrorCode::PolicyLengthExceededException,
                        format!("The final policy size ({size}) is bigger than the limit ({MAX_POLICY_BYTES})."),
                    ));
                }
                record.latest.revision_id = uuid::Uuid::new_v4().to_string();
                Ok(())
            }),
        )
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({ "Statement": stmt_text }),
    ))
}

pub async fn get(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Query<PolicyQuery>,
) -> ApiResult<Response> {
    let r = function_ref(&caller, &name, q.qualifier.as_deref(), "GetPolicy")?;
    let record = load(&state, &caller, &r).await?;
    require_latest(&caller, &r)?;
    if record.policy.is_empty() {
        return Err(AwsError::not_found("The resource you requested does not exist.").into());
    }
    Ok(json_response(
        StatusCode::OK,
        json!({ "Policy": record.policy.document(), "RevisionId": record.latest.revision_id }),
    ))
}

pub async fn remove(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path((name, sid)): Path<(String, String)>,
    Query(q): Query<PolicyQuery>,
) -> ApiResult<Response> {
    let r = function_ref(&caller, &name, q.qualifier.as_deref(), "RemovePermission")?;
    load(&state, &caller, &r).await?;
    if r.qualifier.is_some() && r.qualifier != Some(Qualifier::Latest) {
        return Err(not_found(&caller, &r).into());
    }
    let revision = q.revision_id.clone();
    state
        .catalog
        .update(
            &caller.account_id,
            &caller.region,
            &r.name,
            Box::new(move |record| {
                if revision
                    .as_deref()
                    .is_some_and(|rev| rev != record.latest.revision_id)
                {
                    return Err(AwsError::stale_revision("GetPolicy"));
                }
                if record.policy.is_empty() {
                    return Err(AwsError::not_found(
                        "No policy is associated with the given resource.",
                    ));
                }
                if !record.policy.remove(&sid) {
                    return Err(AwsError::not_found(format!(
                        "Statement {sid} is not found in resource policy."
                    )));
                }
                record.latest.revision_id = uuid::Uuid::new_v4().to_string();
                Ok(())
            }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
