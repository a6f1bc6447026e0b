//! GetResourcePolicy, PutResourcePolicy, DeleteResourcePolicy (API version
//! 2026-07-09): the resource-based policy of a function, version or alias,
//! named by its ARN, as one document.
//!
//! It is the very policy AddPermission/RemovePermission change and GetPolicy
//! answers (one stored policy, one RevisionId): an unqualified ARN (or
//! `:$LATEST`) names the function's own, a qualified one the version's or
//! alias's. A document PutResourcePolicy sets is checked by IAM's parser
//! and decided by IAM's evaluator exactly as AddPermission's statements are.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use strato_iam::policy::{PolicyDocument, PolicyKind};
use strato_model::error::ValidationErrors;
use strato_model::policy::Policy;
#[cfg(test)]
use strato_model::Qualifier;
use strato_model::{AwsError, ErrorCode, FunctionRef};

use super::load;
use super::permissions::{
    change_policy, policy_key, policy_mut, policy_of, refuse_latest_qualifier, revision_of,
};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::wire::{json as json_response, AwsJson};
use crate::ApiState;
use strato_gateway::extract::Authenticated;

/// AWS's model of `ResourceArn` (`PolicyResourceArn`).
const MAX_RESOURCE_ARN: usize = 512;
const RESOURCE_ARN_PATTERN: &str = r"arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:(function:[a-zA-Z0-9-_]+(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_])+)?|runtime/[a-zA-Z0-9-_./]+)";
/// `ResourcePolicy`: 1 to 20480 characters.
const MAX_POLICY: usize = 20_480;
/// `RevisionId`: a lowercase UUID.
const REVISION_ID_LENGTH: usize = 36;
const REVISION_ID_PATTERN: &str = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

/// The message AWS answers for a resource without a policy.
const NO_POLICY: &str = "No policy is associated with the given resource.";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct PutRequest {
    policy: Option<String>,
    revision_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    #[serde(rename = "RevisionId")]
    revision_id: Option<String>,
}

/// What a `ResourceArn` names.
enum Target {
    Function(FunctionRef),
    /// `arn:...:runtime/...`: within AWS's pattern, but Strato has no such
    /// resources.
    Runtime,
}

/// Records AWS's failures for `ResourceArn` and returns what it names when
/// it is valid.
fn resource_arn(raw: &str, errors: &mut ValidationErrors) -> Option<Target> {
    if errors.check_max_length(raw, MAX_RESOURCE_ARN, "resourceArn") {
        return None;
    }
    let parts: Vec<&str> = raw.splitn(6, ':').collect();
    let head_valid = parts.len() == 6
        && parts[0] == "arn"
        && (parts[1].is_empty()
            || parts[1]
                .strip_prefix("aws")
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-')))
        && parts[2] == "lambda"
        && strato_model::account::is_account_id(parts[4]);
    if head_valid {
        if let Some(runtime) = parts[5].strip_prefix("runtime/") {
            let valid = !runtime.is_empty()
                && runtime
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
            if valid && FunctionRef::parse(&function_form(&parts), 256).is_ok() {
                return Some(Target::Runtime);
            }
        } else if parts[5].starts_with("function:") {
            if let Ok(r) = FunctionRef::parse(raw, MAX_RESOURCE_ARN) {
                return Some(Target::Function(r));
            }
        }
    }
    errors.push_pattern(raw, "resourceArn", RESOURCE_ARN_PATTERN);
    None
}

/// A function ARN in the region and account of a runtime ARN's head, to
/// check them with the function ARN's rules.
fn function_form(parts: &[&str]) -> String {
    format!("arn:aws:lambda:{}:{}:function:f", parts[3], parts[4])
}

fn check_revision_id(value: &str, errors: &mut ValidationErrors) {
    let len = value.chars().count();
    if len != REVISION_ID_LENGTH {
        let constraint = if len < REVISION_ID_LENGTH {
            format!("Member must have length greater than or equal to {REVISION_ID_LENGTH}")
        } else {
            format!("Member must have length less than or equal to {REVISION_ID_LENGTH}")
        };
        errors.push(value, "revisionId", &constraint);
        return;
    }
    let groups: Vec<&str> = value.split('-').collect();
    let shaped = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    if !shaped {
        errors.push_pattern(value, "revisionId", REVISION_ID_PATTERN);
    }
}

/// The function reference a valid `ResourceArn` names, checked against the
/// caller (the auth edge has already let a caller of another account act
/// in the owner's account when the function's policy allows it).
fn target(
    caller: &Caller,
    errors: ValidationErrors,
    found: Option<Target>,
    operation: &str,
) -> ApiResult<FunctionRef> {
    errors.into_result(ErrorCode::ValidationException)?;
    match found {
        Some(Target::Function(r)) => {
            r.check_scope(&caller.account_id, &caller.region, operation)?;
            Ok(r)
        }
        Some(Target::Runtime) | None => {
            Err(AwsError::not_found("The resource you requested does not exist.").into())
        }
    }
}

pub async fn get(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path(arn): Path<String>,
) -> ApiResult<Response> {
    let mut errors = ValidationErrors::new();
    let found = resource_arn(&arn, &mut errors);
    let r = target(&caller, errors, found, "GetResourcePolicy")?;
    let record = load(&state, &caller, &r).await?;
    let key = policy_key(&record, &caller, &r)?;
    let policy = policy_of(&record, key.as_deref()).filter(|p| !p.is_empty());
    let (Some(policy), Some(revision)) = (policy, revision_of(&record, key.as_deref())) else {
        return Err(AwsError::not_found(NO_POLICY).into());
    };
    Ok(json_response(
        StatusCode::OK,
        json!({ "Policy": policy.text(), "RevisionId": revision }),
    ))
}

pub async fn put(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path(arn): Path<String>,
    AwsJson(req): AwsJson<PutRequest>,
) -> ApiResult<Response> {
    let mut errors = ValidationErrors::new();
    let found = resource_arn(&arn, &mut errors);
    match &req.policy {
        None => errors.push_raw("null", "policy", "Member must not be null"),
        Some(p) if p.is_empty() => errors.push(
            p,
            "policy",
            "Member must have length greater than or equal to 1",
        ),
        Some(p) => {
            errors.check_max_length(p, MAX_POLICY, "policy");
        }
    }
    if let Some(revision) = &req.revision_id {
        check_revision_id(revision, &mut errors);
    }
    let r = target(&caller, errors, found, "PutResourcePolicy")?;
    let Some(text) = req.policy else {
        return Err(AwsError::validation("Policy is required").into());
    };
    refuse_latest_qualifier(&r.qualifier)?;
    let policy = parse_document(&text)?;
    policy.check_size()?;
    let current = load(&state, &caller, &r).await?;
    let key = policy_key(&current, &caller, &r)?;
    let revision = (req.revision_id, "GetResourcePolicy");
    let record = change_policy(
        &state,
        &caller,
        &r,
        key.clone(),
        revision,
        move |record, k| {
            *policy_mut(record, k) = policy;
            Ok(())
        },
    )
    .await?;
    let policy = policy_of(&record, key.as_deref()).map(Policy::text);
    Ok(json_response(
        StatusCode::OK,
        json!({ "Policy": policy, "RevisionId": revision_of(&record, key.as_deref()) }),
    ))
}

pub async fn delete(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path(arn): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<Response> {
    let mut errors = ValidationErrors::new();
    let found = resource_arn(&arn, &mut errors);
    if let Some(revision) = &q.revision_id {
        check_revision_id(revision, &mut errors);
    }
    let r = target(&caller, errors, found, "DeleteResourcePolicy")?;
    let current = load(&state, &caller, &r).await?;
    let key = policy_key(&current, &caller, &r)?;
    let revision = (q.revision_id, "GetResourcePolicy");
    change_policy(&state, &caller, &r, key, revision, move |record, k| {
        if policy_of(record, k).is_none_or(Policy::is_empty) {
            return Err(AwsError::not_found(NO_POLICY));
        }
        match k {
            None => record.policy = Policy::default(),
            Some(k) => {
                record.qualified_policies.remove(k);
            }
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A document as a function's policy: IAM's grammar for resource policies
/// (AWS's `MalformedPolicyDocument` reasons, answered as Lambda's
/// InvalidParameterValueException), then Lambda's form of it.
fn parse_document(text: &str) -> Result<Policy, AwsError> {
    let invalid = |reason: &str| {
        AwsError::invalid_parameter(format!("The policy document is malformed: {reason}"))
    };
    PolicyDocument::parse(text, PolicyKind::Resource).map_err(|e| invalid(&e.0))?;
    let value: Value = serde_json::from_str(text).map_err(|_| invalid("invalid JSON"))?;
    Policy::from_document(&value).map_err(|e| invalid(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str) -> (Option<Target>, Result<(), AwsError>) {
        let mut errors = ValidationErrors::new();
        let found = resource_arn(raw, &mut errors);
        (found, errors.into_result(ErrorCode::ValidationException))
    }

    #[test]
    fn resource_arns_follow_aws_pattern() {
        let (found, ok) = check("arn:aws:lambda:us-east-1:123456789012:function:f");
        assert!(ok.is_ok());
        assert!(matches!(found, Some(Target::Function(ref r)) if r.qualifier.is_none()));
        let (found, ok) = check("arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST");
        assert!(ok.is_ok());
        assert!(
            matches!(found, Some(Target::Function(ref r)) if r.qualifier == Some(Qualifier::Latest))
        );
        let (found, ok) = check("arn:aws:lambda:us-east-1:123456789012:function:f:live");
        assert!(ok.is_ok());
        assert!(
            matches!(found, Some(Target::Function(ref r)) if r.qualifier == Some(Qualifier::Alias("live".into())))
        );
        let (found, ok) = check("arn:aws:lambda:us-east-1:123456789012:runtime/abc");
        assert!(ok.is_ok() && matches!(found, Some(Target::Runtime)));
        for bad in [
            "f",
            "arn:aws:lambda:us-east-1:123456789012:function:*",
            "arn:aws:s3:us-east-1:123456789012:function:f",
            "arn:aws:lambda:us-east-1:1234:function:f",
            "arn:aws:lambda:nowhere:123456789012:function:f",
            "arn:aws:lambda:us-east-1:123456789012:layer:l",
        ] {
            let (found, err) = check(bad);
            assert!(found.is_none(), "{bad}");
            let message = err.unwrap_err().message.to_string();
            assert_eq!(
                message,
                format!("1 validation error detected: Value '{bad}' at 'resourceArn' failed to satisfy constraint: Member must satisfy regular expression pattern: {RESOURCE_ARN_PATTERN}")
            );
        }
    }

    #[test]
    fn revision_ids_are_lowercase_uuids() {
        let mut errors = ValidationErrors::new();
        check_revision_id("0f8fad5b-d9cb-469f-a165-70867728950e", &mut errors);
        assert!(errors.is_empty());
        check_revision_id("0F8FAD5B-D9CB-469F-A165-70867728950E", &mut errors);
        check_revision_id("short", &mut errors);
        let message = errors
            .into_result(ErrorCode::ValidationException)
            .unwrap_err()
            .message
            .to_string();
        assert!(
            message.starts_with("2 validation errors detected"),
            "{message}"
        );
        assert!(message.contains("Member must satisfy regular expression pattern"));
        assert!(message.contains("Member must have length greater than or equal to 36"));
    }

    #[test]
    fn documents_are_checked_by_iam_grammar() {
        let err = parse_document("{").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidParameterValueException);
        assert_eq!(
            err.message,
            "The policy document is malformed: This policy contains invalid Json"
        );
        let err = parse_document(
            r#"{"Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"*"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "The policy document is malformed: Missing required field Principal"
        );
        let ok = parse_document(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"lambda:InvokeFunction","Resource":"*"}}"#,
        )
        .unwrap();
        assert!(ok.text().contains("\"Effect\":\"Deny\""));
    }
}
