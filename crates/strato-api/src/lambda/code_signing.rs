//! Code signing configurations: CreateCodeSigningConfig,
//! GetCodeSigningConfig, UpdateCodeSigningConfig, DeleteCodeSigningConfig,
//! ListCodeSigningConfigs and ListFunctionsByCodeSigningConfig; a function's
//! own: PutFunctionCodeSigningConfig, GetFunctionCodeSigningConfig and
//! DeleteFunctionCodeSigningConfig; and the check every code deployment
//! passes ([`check_deployment`]).
//!
//! Configurations are store documents of their own; a function names the
//! one it uses by ARN (`FunctionRecord::code_signing_config_arn`). Strato has
//! no AWS Signer, so no package is signed by an allowed profile: `Enforce`
//! refuses every code deployment and `Warn` lets it through with a warning
//! in the server's log (see `docs/lambda.md`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use strato_model::code_signing::{
    code_signing_config_id, CodeSigningConfig, UntrustedArtifactPolicy,
};
use strato_model::error::ValidationErrors;
use strato_model::{AwsError, ErrorCode};
use strato_store::{DocumentKey, StoreError, StoreExt};

use super::versions::{paginate, PageQuery};
use super::{unsupported, update_function, whole_function_ref, ResourceRequest};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::wire::{json as json_response, AwsJson};
use crate::ApiState;
use strato_gateway::extract::Authenticated;

/// The store's document kind for code signing configurations.
const CSC_KIND: &str = "code-signing-config";
/// AWS's limits on `AllowedPublishers.SigningProfileVersionArns`.
const MAX_SIGNING_PROFILES: usize = 20;
/// The longest `Description` AWS accepts.
const MAX_DESCRIPTION: usize = 256;
/// The longest `CodeSigningConfigArn` AWS accepts.
const MAX_CSC_ARN: usize = 200;
/// AWS's pattern for `CodeSigningConfigArn`, quoted in its validation message.
const CSC_ARN_PATTERN: &str = r"arn:(aws[a-zA-Z-]*)?:lambda:[a-z]{2}((-gov)|(-iso(b?)))?-[a-z]+-\d{1}:\d{12}:code-signing-config:csc-[a-z0-9]{17}";
/// AWS's pattern for a signing profile version ARN.
const SIGNING_PROFILE_PATTERN: &str =
    r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AllowedPublishersInput {
    signing_profile_version_arns: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct PoliciesInput {
    untrusted_artifact_on_deployment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CreateRequest {
    description: Option<String>,
    allowed_publishers: Option<AllowedPublishersInput>,
    code_signing_policies: Option<PoliciesInput>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct UpdateRequest {
    description: Option<String>,
    allowed_publishers: Option<AllowedPublishersInput>,
    code_signing_policies: Option<PoliciesInput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct FunctionConfigRequest {
    code_signing_config_arn: Option<String>,
}

fn key(caller: &Caller, id: &str) -> DocumentKey {
    DocumentKey::new(&caller.account_id, &caller.region, CSC_KIND, id)
}

/// `Get`, `Update`, `Delete` and `ListFunctionsBy...`'s answer for a
/// configuration that does not exist.
fn config_not_found(arn: &str) -> AwsError {
    AwsError::not_found(format!(
        "The Lambda code signing configuration {arn} can not be found."
    ))
}

/// Put and CreateFunction's answer for a configuration that does not exist.
fn deployment_config_not_found(arn: &str) -> AwsError {
    AwsError::new(
        ErrorCode::CodeSigningConfigNotFoundException,
        format!(
            "The code signing configuration cannot be found. Check that the provided configuration is not deleted: {arn}."
        ),
    )
}

/// True when `arn` matches AWS's `CodeSigningConfigArn` pattern.
fn matches_csc_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    let [prefix, partition, service, region, account, kind, id] = parts.as_slice() else {
        return false;
    };
    *prefix == "arn"
        && (partition.is_empty()
            || partition
                .strip_prefix("aws")
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-')))
        && *service == "lambda"
        && region.split('-').count() >= 3
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && *kind == "code-signing-config"
        && strato_model::code_signing::is_config_id(id)
}

/// Validates a `CodeSigningConfigArn` member named `field`.
fn check_csc_arn(arn: &str, field: &str) -> Result<(), AwsError> {
    let mut errors = ValidationErrors::new();
    if !errors.check_max_length(arn, MAX_CSC_ARN, field) && !matches_csc_arn(arn) {
        errors.push_pattern(arn, field, CSC_ARN_PATTERN);
    }
    errors.into_result(ErrorCode::ValidationException)
}

/// True when `arn` matches AWS's pattern for a signing profile version ARN.
fn matches_signing_profile(arn: &str) -> bool {
    strato_model::arn::general_arn_parts(arn).is_some()
}

/// The members of a Create or Update body, validated as AWS validates them
/// (every failed constraint in one ValidationException).
struct Members {
    description: Option<String>,
    profiles: Option<Vec<String>>,
    policy: Option<UntrustedArtifactPolicy>,
}

fn validate(
    description: Option<&String>,
    publishers: Option<&AllowedPublishersInput>,
    policies: Option<&PoliciesInput>,
    publishers_required: bool,
) -> Result<Members, AwsError> {
    let mut errors = ValidationErrors::new();
    if let Some(description) = description {
        errors.check_max_length(description, MAX_DESCRIPTION, "description");
    }
    let field = "allowedPublishers.signingProfileVersionArns";
    match publishers {
        None if publishers_required => {
            errors.push_raw("null", "allowedPublishers", "Member must not be null");
        }
        None => {}
        Some(AllowedPublishersInput {
            signing_profile_version_arns: None,
        }) => errors.push_raw("null", field, "Member must not be null"),
        Some(AllowedPublishersInput {
            signing_profile_version_arns: Some(arns),
        }) => {
            let shown = format!("[{}]", arns.join(", "));
            if arns.is_empty() {
                errors.push(
                    &shown,
                    field,
                    "Member must have length greater than or equal to 1",
                );
            } else if arns.len() > MAX_SIGNING_PROFILES {
                errors.push(
                    &shown,
                    field,
                    &format!(
                        "Member must have length less than or equal to {MAX_SIGNING_PROFILES}"
                    ),
                );
            } else if !arns.iter().all(|arn| matches_signing_profile(arn)) {
                errors.push(
                    &shown,
                    field,
                    &format!(
                        "Member must satisfy constraint: [Member must satisfy regular expression pattern: {SIGNING_PROFILE_PATTERN}]"
                    ),
                );
            }
        }
    }
    let policy = match policies.and_then(|p| p.untrusted_artifact_on_deployment.as_deref()) {
        None => None,
        Some(value) => {
            let parsed = UntrustedArtifactPolicy::parse(value);
            if parsed.is_none() {
                errors.push(
                    value,
                    "codeSigningPolicies.untrustedArtifactOnDeployment",
                    "Member must satisfy enum value set: [Warn, Enforce]",
                );
            }
            parsed
        }
    };
    errors.into_result(ErrorCode::ValidationException)?;
    Ok(Members {
        description: description.cloned(),
        profiles: publishers.and_then(|p| p.signing_profile_version_arns.clone()),
        policy,
    })
}

fn decode(doc: Value) -> ApiResult<CodeSigningConfig> {
    serde_json::from_value(doc).map_err(|e| ApiError::from(StoreError::from(e)))
}

/// The configuration an ARN names for the caller, or `None`.
async fn find(
    state: &ApiState,
    caller: &Caller,
    arn: &str,
) -> ApiResult<Option<CodeSigningConfig>> {
    let Some(id) = code_signing_config_id(arn, &caller.region, &caller.account_id) else {
        return Ok(None);
    };
    match state.catalog.store().get_document(&key(caller, id)).await? {
        Some(doc) => decode(doc).map(Some),
        None => Ok(None),
    }
}

/// The ARNs of the caller's functions that use the configuration `arn`.
async fn functions_using(state: &ApiState, caller: &Caller, arn: &str) -> ApiResult<Vec<String>> {
    const BATCH: usize = 500;
    let store = state.catalog.store();
    let mut after: Option<String> = None;
    let mut found = Vec::new();
    loop {
        let batch = store
            .list_functions(&caller.account_id, &caller.region, after.as_deref(), BATCH)
            .await?;
        let done = batch.len() < BATCH;
        after = batch.last().map(|f| f.name().to_string());
        found.extend(
            batch
                .iter()
                .filter(|f| f.code_signing_config_arn.as_deref() == Some(arn))
                .map(|f| f.arn()),
        );
        if done {
            return Ok(found);
        }
    }
}

/// Whether new code may be deployed to `function` under the configuration
/// `arn`. Strato verifies no signatures (there is no AWS Signer), so every
/// package is untrusted: `Enforce` refuses the deployment with AWS's
/// CodeVerificationFailedException, `Warn` accepts it and logs the warning
/// AWS would record as a `SignatureValidationErrors` metric.
pub(crate) async fn check_deployment(
    state: &ApiState,
    caller: &Caller,
    function: &str,
    arn: &str,
) -> ApiResult<()> {
    let config = find(state, caller, arn)
        .await?
        .ok_or_else(|| deployment_config_not_found(arn))?;
    match config.untrusted_artifact_on_deployment {
        UntrustedArtifactPolicy::Enforce => Err(AwsError::new(
            ErrorCode::CodeVerificationFailedException,
            format!(
                "Lambda cannot deploy the function. The function or layer might be signed using a signature that the client is not configured to accept. Check the provided signature for {function}."
            ),
        )
        .into()),
        UntrustedArtifactPolicy::Warn => {
            tracing::warn!(
                account = %caller.account_id,
                function,
                code_signing_config = arn,
                "unsigned code deployed under a code signing configuration set to Warn"
            );
            Ok(())
        }
    }
}

pub async fn create(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    AwsJson(req): AwsJson<CreateRequest>,
) -> ApiResult<Response> {
    let members = validate(
        req.description.as_ref(),
        req.allowed_publishers.as_ref(),
        req.code_signing_policies.as_ref(),
        true,
    )?;
    if req.tags.as_ref().is_some_and(|tags| !tags.is_empty()) {
        return Err(unsupported("Tags on code signing configurations").into());
    }
    let config = CodeSigningConfig {
        id: CodeSigningConfig::new_id(),
        description: members.description.unwrap_or_default(),
        signing_profile_version_arns: members.profiles.unwrap_or_default(),
        untrusted_artifact_on_deployment: members.policy.unwrap_or(UntrustedArtifactPolicy::Warn),
        last_modified: chrono::Utc::now(),
    };
    let doc = serde_json::to_value(&config).map_err(|e| ApiError::from(StoreError::from(e)))?;
    state
        .catalog
        .store()
        .insert_document(&key(&caller, &config.id), &doc)
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({ "CodeSigningConfig": config.to_wire(&caller.region, &caller.account_id) }),
    ))
}

pub async fn get(on: ResourceRequest) -> ApiResult<Response> {
    check_csc_arn(&on.name, "codeSigningConfigArn")?;
    let config = find(&on.state, &on.caller, &on.name)
        .await?
        .ok_or_else(|| config_not_found(&on.name))?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "CodeSigningConfig": config.to_wire(&on.caller.region, &on.caller.account_id) }),
    ))
}

pub async fn update(
    on: ResourceRequest,
    AwsJson(req): AwsJson<UpdateRequest>,
) -> ApiResult<Response> {
    check_csc_arn(&on.name, "codeSigningConfigArn")?;
    let members = validate(
        req.description.as_ref(),
        req.allowed_publishers.as_ref(),
        req.code_signing_policies.as_ref(),
        false,
    )?;
    let id = code_signing_config_id(&on.name, &on.caller.region, &on.caller.account_id)
        .ok_or_else(|| config_not_found(&on.name))?;
    let missing = config_not_found(&on.name);
    let config: CodeSigningConfig = on
        .state
        .catalog
        .store()
        .update_typed(
            &key(&on.caller, id),
            move |current: Option<CodeSigningConfig>| {
                let mut config = current.ok_or_else(|| ApiError::from(missing))?;
                if let Some(description) = members.description {
                    config.description = description;
                }
                if let Some(profiles) = members.profiles {
                    config.signing_profile_version_arns = profiles;
                }
                if let Some(policy) = members.policy {
                    config.untrusted_artifact_on_deployment = policy;
                }
                config.last_modified = chrono::Utc::now();
                Ok::<_, ApiError>((Some(config.clone()), config))
            },
        )
        .await?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "CodeSigningConfig": config.to_wire(&on.caller.region, &on.caller.account_id) }),
    ))
}

pub async fn delete(on: ResourceRequest) -> ApiResult<Response> {
    check_csc_arn(&on.name, "codeSigningConfigArn")?;
    let id = code_signing_config_id(&on.name, &on.caller.region, &on.caller.account_id)
        .ok_or_else(|| config_not_found(&on.name))?;
    if find(&on.state, &on.caller, &on.name).await?.is_none() {
        return Err(config_not_found(&on.name).into());
    }
    if !functions_using(&on.state, &on.caller, &on.name)
        .await?
        .is_empty()
    {
        return Err(AwsError::conflict(format!(
            "The code signing configuration {} cannot be deleted because it is used by one or more functions.",
            on.name
        ))
        .into());
    }
    if !on
        .state
        .catalog
        .store()
        .delete_document(&key(&on.caller, id))
        .await?
    {
        return Err(config_not_found(&on.name).into());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Query(q): Query<PageQuery>,
) -> ApiResult<Response> {
    let docs = state
        .catalog
        .store()
        .list_documents(
            &caller.account_id,
            &caller.region,
            CSC_KIND,
            "",
            None,
            usize::MAX,
        )
        .await?;
    let mut items = Vec::with_capacity(docs.len());
    for doc in docs {
        let config = decode(doc.doc)?;
        items.push((
            config.id.clone(),
            config.to_wire(&caller.region, &caller.account_id),
        ));
    }
    let (page, next) = paginate(items, q.marker.as_deref(), q.max_items.as_deref())?;
    let mut body = json!({ "CodeSigningConfigs": page });
    if let Some(next) = next {
        body["NextMarker"] = json!(next);
    }
    Ok(json_response(StatusCode::OK, body))
}

pub async fn list_functions(
    on: ResourceRequest,
    Query(q): Query<PageQuery>,
) -> ApiResult<Response> {
    check_csc_arn(&on.name, "codeSigningConfigArn")?;
    if find(&on.state, &on.caller, &on.name).await?.is_none() {
        return Err(config_not_found(&on.name).into());
    }
    let items = functions_using(&on.state, &on.caller, &on.name)
        .await?
        .into_iter()
        .map(|function| (function.clone(), json!(function)))
        .collect();
    let (page, next) = paginate(items, q.marker.as_deref(), q.max_items.as_deref())?;
    let mut body = json!({ "FunctionArns": page });
    if let Some(next) = next {
        body["NextMarker"] = json!(next);
    }
    Ok(json_response(StatusCode::OK, body))
}

/// `{CodeSigningConfigArn, FunctionName}`, the answer of Put and Get.
fn function_answer(arn: &str, function: &str) -> Response {
    json_response(
        StatusCode::OK,
        json!({ "CodeSigningConfigArn": arn, "FunctionName": function }),
    )
}

pub async fn put_function(
    on: ResourceRequest,
    AwsJson(req): AwsJson<FunctionConfigRequest>,
) -> ApiResult<Response> {
    let Some(arn) = req.code_signing_config_arn else {
        return Err(AwsError::validation(
            "1 validation error detected: Value null at 'codeSigningConfigArn' failed to satisfy constraint: Member must not be null",
        )
        .into());
    };
    check_csc_arn(&arn, "codeSigningConfigArn")?;
    let r = whole_function_ref(&on.caller, &on.name, "PutFunctionCodeSigningConfig")?;
    super::load(&on.state, &on.caller, &r).await?;
    if find(&on.state, &on.caller, &arn).await?.is_none() {
        return Err(deployment_config_not_found(&arn).into());
    }
    let stored = arn.clone();
    let record = update_function(
        &on.state,
        &on.caller,
        &r,
        Box::new(move |record| {
            record.code_signing_config_arn = Some(stored);
            Ok(())
        }),
    )
    .await?;
    Ok(function_answer(&arn, record.name()))
}

pub async fn get_function(on: ResourceRequest) -> ApiResult<Response> {
    let r = whole_function_ref(&on.caller, &on.name, "GetFunctionCodeSigningConfig")?;
    let record = super::load(&on.state, &on.caller, &r).await?;
    Ok(function_answer(
        record
            .code_signing_config_arn
            .as_deref()
            .unwrap_or_default(),
        record.name(),
    ))
}

pub async fn delete_function(on: ResourceRequest) -> ApiResult<Response> {
    let r = whole_function_ref(&on.caller, &on.name, "DeleteFunctionCodeSigningConfig")?;
    update_function(
        &on.state,
        &on.caller,
        &r,
        Box::new(|record| {
            record.code_signing_config_arn = None;
            Ok(())
        }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_model::code_signing::code_signing_config_arn;

    #[test]
    fn csc_arns_follow_aws_pattern() {
        let arn = code_signing_config_arn("us-east-1", "111111111111", "csc-0123456789abcdef0");
        assert!(matches_csc_arn(&arn));
        assert!(!matches_csc_arn(
            "arn:aws:lambda:us-east-1:111111111111:code-signing-config:csc-1"
        ));
        assert!(!matches_csc_arn(
            "arn:aws:lambda:us-east-1:1111:code-signing-config:csc-0123456789abcdef0"
        ));
        assert!(!matches_csc_arn("csc-0123456789abcdef0"));
    }

    #[test]
    fn create_requires_publishers_and_names_every_failure() {
        let err = validate(None, None, None, true)
            .err()
            .map(|e| e.message.to_string());
        assert_eq!(
            err.as_deref(),
            Some("1 validation error detected: Value null at 'allowedPublishers' failed to satisfy constraint: Member must not be null")
        );
        let publishers = AllowedPublishersInput {
            signing_profile_version_arns: Some(Vec::new()),
        };
        let policies = PoliciesInput {
            untrusted_artifact_on_deployment: Some("Block".into()),
        };
        let err = validate(None, Some(&publishers), Some(&policies), true)
            .err()
            .map(|e| e.message.to_string());
        assert_eq!(
            err.as_deref(),
            Some("2 validation errors detected: Value '[]' at 'allowedPublishers.signingProfileVersionArns' failed to satisfy constraint: Member must have length greater than or equal to 1; Value 'Block' at 'codeSigningPolicies.untrustedArtifactOnDeployment' failed to satisfy constraint: Member must satisfy enum value set: [Warn, Enforce]")
        );
    }

    #[test]
    fn more_than_twenty_profiles_are_refused() {
        let publishers = AllowedPublishersInput {
            signing_profile_version_arns: Some(vec![
                "arn:aws:signer:us-east-1:111111111111:/signing-profiles/p".into();
                21
            ]),
        };
        let err = validate(None, Some(&publishers), None, true).err();
        assert!(err.is_some_and(|e| e.message.contains("less than or equal to 20")));
    }
}
