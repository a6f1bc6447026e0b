//! Lambda layers: PublishLayerVersion, GetLayerVersion (by name and number,
//! and by ARN), ListLayers, ListLayerVersions, DeleteLayerVersion, and the
//! layer version permissions (AddLayerVersionPermission,
//! RemoveLayerVersionPermission, GetLayerVersionPolicy); plus the checks a
//! function's `Layers` member goes through.
//!
//! A layer is one Store document (kind [`LAYER_KIND`], id = its name) holding
//! its live versions, the highest number ever published and each version's
//! policy; the archives live in the content-addressed code store like
//! function code. Functions copy what they need of a version (ARN and code
//! identity) into their configuration, so invocations never read layers and a
//! deleted version keeps working for the functions that use it.
//!
//! Why over 800 lines: nine operations and the function-side checks share
//! one `LayerRecord` read-modify-write and its permission rules; the
//! function checks are the part to move out if it grows.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use strato_model::error::ValidationErrors;
use strato_model::layer::{
    layer_access_denied, layer_arn, layer_version_not_found, validate_compatibility,
    validate_filters, FunctionLayer, LayerName, LayerRecord, LayerVersion, LayerVersionRef,
    LAYER_VERSION_ARN_PATTERN, MAX_FUNCTION_LAYERS,
};
use strato_model::limits::MAX_UNZIPPED_CODE_BYTES;
use strato_model::policy::Policy;
use strato_model::{validate, AwsError, ErrorCode};
use strato_store::{DocumentKey, StoreError, StoreExt};

use super::functions::{accept_zip, decode_zip, s3_object, ZipSource};
use super::{base_url, ResourceRequest};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::wire::{json as json_response, AwsJson};
use crate::ApiState;
use strato_gateway::extract::Authenticated;

/// The Store document kind of a layer.
pub const LAYER_KIND: &str = "layer";

/// ListLayers' and ListLayerVersions' page size: default and maximum 50.
const MAX_LAYER_PAGE: usize = 50;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct LayerContentInput {
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    s3_key: Option<String>,
    #[serde(rename = "S3ObjectVersion")]
    s3_object_version: Option<String>,
    #[serde(rename = "S3ObjectStorageMode")]
    s3_object_storage_mode: Option<String>,
    zip_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct PublishRequest {
    description: Option<String>,
    content: Option<LayerContentInput>,
    compatible_runtimes: Option<Vec<String>>,
    compatible_architectures: Option<Vec<String>>,
    license_info: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AddPermissionRequest {
    statement_id: Option<String>,
    action: Option<String>,
    principal: Option<String>,
    organization_id: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(rename = "CompatibleRuntime")]
    compatible_runtime: Option<String>,
    #[serde(rename = "CompatibleArchitecture")]
    compatible_architecture: Option<String>,
    #[serde(rename = "Marker")]
    marker: Option<String>,
    #[serde(rename = "MaxItems")]
    max_items: Option<String>,
    /// `find=LayerVersion` with `Arn` is GetLayerVersionByArn on the same path.
    find: Option<String>,
    #[serde(rename = "Arn")]
    arn: Option<String>,
}

#[derive(Deserialize)]
pub struct RevisionQuery {
    #[serde(rename = "RevisionId")]
    revision_id: Option<String>,
}

fn key(account: &str, region: &str, name: &str) -> DocumentKey {
    DocumentKey::new(account, region, LAYER_KIND, name)
}

fn decode(doc: Value) -> ApiResult<LayerRecord> {
    serde_json::from_value(doc).map_err(|e| StoreError::Corrupt(e.to_string()).into())
}

async fn load_layer(
    state: &ApiState,
    account: &str,
    region: &str,
    name: &str,
) -> ApiResult<Option<LayerRecord>> {
    match state
        .catalog
        .store()
        .get_document(&key(account, region, name))
        .await?
    {
        Some(doc) => decode(doc).map(Some),
        None => Ok(None),
    }
}

/// The layer a `LayerName` path member names, as (account, region, name).
/// Operations that change a layer (or list its versions) refuse another
/// account's with AWS's access-denied message for `operation`.
fn owned_layer(caller: &Caller, raw: &str, operation: &str) -> ApiResult<(String, String, String)> {
    let parsed = LayerName::parse(raw)?;
    let account = parsed.account.unwrap_or_else(|| caller.account_id.clone());
    let region = parsed.region.unwrap_or_else(|| caller.region.clone());
    if account != caller.account_id {
        return Err(AwsError::new(
            ErrorCode::AccessDeniedException,
            format!(
                "User: arn:aws:iam::{}:root is not authorized to perform: lambda:{operation} on resource: {} because no resource-based policy allows the lambda:{operation} action",
                caller.account_id,
                layer_arn(&region, &account, &parsed.name)
            ),
        )
        .into());
    }
    Ok((account, region, parsed.name))
}

/// The `VersionNumber` path member: a positive number.
fn version_number(raw: &str) -> ApiResult<u64> {
    match raw.parse::<i64>() {
        // Positive, so `unsigned_abs` is the value itself.
        Ok(n) if n >= 1 => Ok(n.unsigned_abs()),
        Ok(_) => Err(AwsError::invalid_parameter("Layer Version Cannot be less than 1").into()),
        Err(_) => Err(AwsError::serialization(format!(
            "Could not deserialize the request: VersionNumber '{raw}' is not a number"
        ))
        .into()),
    }
}

/// MaxItems of the layer listings: 1 to 50.
fn layer_page_size(raw: Option<&str>) -> ApiResult<usize> {
    let Some(raw) = raw else {
        return Ok(MAX_LAYER_PAGE);
    };
    let n = raw
        .parse::<i64>()
        .map_err(|_| AwsError::serialization(format!("Could not parse MaxItems '{raw}'")))?;
    let constraint = match usize::try_from(n) {
        Ok(size) if (1..=MAX_LAYER_PAGE).contains(&size) => return Ok(size),
        _ if n < 1 => "Member must have value greater than or equal to 1",
        _ => "Member must have value less than or equal to 50",
    };
    let mut v = ValidationErrors::new();
    v.push(&n.to_string(), "maxItems", constraint);
    v.into_result(ErrorCode::ValidationException)?;
    Ok(MAX_LAYER_PAGE)
}

/// A layer version `caller` may read, as IAM's one evaluator decides with
/// the version's policy (AddLayerVersionPermission's statements): another
/// account's caller needs the policy to grant it (and, under enforcement,
/// an IAM principal its own allow too); in the owner's account an IAM
/// principal needs an allow in either. Another account's version that is
/// not granted is access-denied whether or not it exists.
async fn readable_version(
    state: &ApiState,
    caller: &Caller,
    r: &LayerVersionRef,
) -> ApiResult<LayerVersion> {
    let found = load_layer(state, &r.account, &r.region, &r.name)
        .await?
        .and_then(|mut layer| layer.versions.remove(&r.version));
    let arn = r.arn();
    let Some(version) = found else {
        return Err(if r.account != caller.account_id {
            layer_access_denied(&caller.account_id, &arn).into()
        } else {
            layer_version_not_found(&arn).into()
        });
    };
    let policy = (!version.policy.is_empty()).then(|| version.policy.document());
    state
        .iam
        .authorize_access(
            &caller.access_key_id,
            &caller.account_id,
            &strato_iam::ResourceAccess {
                action: "lambda:GetLayerVersion",
                resource: &arn,
                owner: &r.account,
                policy: policy.as_deref(),
            },
            strato_iam::policy::RequestContext::new(),
        )
        .map_err(|denied| AwsError::new(ErrorCode::AccessDeniedException, denied.message))?;
    Ok(version)
}

fn version_body(
    state: &ApiState,
    headers: &HeaderMap,
    r: &LayerVersionRef,
    version: &LayerVersion,
) -> Value {
    let location = state.code_urls.url(
        &base_url(headers),
        &r.account,
        &version.code.sha256_hex,
        chrono::Utc::now().timestamp(),
    );
    version.to_wire(&r.region, &r.account, &r.name, &location)
}

pub async fn publish(
    on: ResourceRequest,
    headers: HeaderMap,
    AwsJson(req): AwsJson<PublishRequest>,
) -> ApiResult<Response> {
    let (account, region, name) = owned_layer(&on.caller, &on.name, "PublishLayerVersion")?;
    let Some(content) = req.content else {
        let mut v = ValidationErrors::new();
        v.push_raw("null", "content", "Member must not be null");
        v.into_result(ErrorCode::ValidationException)?;
        return Err(AwsError::validation("Content is required").into());
    };
    let runtimes = req.compatible_runtimes.unwrap_or_default();
    let architectures = req.compatible_architectures.unwrap_or_default();
    validate_compatibility(&runtimes, &architectures)?;
    let description = req.description.unwrap_or_default();
    validate::description(&description)?;
    if let Some(license) = req
        .license_info
        .as_deref()
        .filter(|l| l.chars().count() > 512)
    {
        let mut v = ValidationErrors::new();
        v.push(
            license,
            "licenseInfo",
            "Member must have length less than or equal to 512",
        );
        v.into_result(ErrorCode::ValidationException)?;
    }
    if let Some(mode) = content
        .s3_object_storage_mode
        .as_deref()
        .filter(|m| *m != "COPY" && *m != "REFERENCE")
    {
        let mut v = ValidationErrors::new();
        v.push(
            mode,
            "content.s3ObjectStorageMode",
            "Member must satisfy enum value set: [COPY, REFERENCE]",
        );
        v.into_result(ErrorCode::ValidationException)?;
    }
    let zip = match (&content.zip_file, &content.s3_bucket, &content.s3_key) {
        (Some(zip), _, _) => ZipSource::Inline(decode_zip(zip)?),
        (None, Some(bucket), Some(key)) => {
            s3_object(
                &on.state,
                &on.caller,
                bucket,
                key,
                content.s3_object_version.as_deref(),
            )
            .await?
        }
        (None, Some(_), None) => {
            return Err(
                AwsError::invalid_parameter("Please provide both S3Bucket and S3Key.").into(),
            )
        }
        (None, None, _) => return Err(AwsError::invalid_parameter("Missing Content").into()),
    };
    let code = accept_zip(&on.state, zip).await?;
    let version = LayerVersion {
        version: 0,
        description,
        created: chrono::Utc::now(),
        compatible_runtimes: runtimes,
        compatible_architectures: architectures,
        license_info: req.license_info,
        code,
        policy: Policy::default(),
        policy_revision_id: uuid::Uuid::new_v4().to_string(),
    };
    let layer_name = name.clone();
    let record = on
        .state
        .catalog
        .store()
        .update_typed(
            &key(&account, &region, &name),
            move |current: Option<LayerRecord>| {
                let mut record = current.unwrap_or_else(|| LayerRecord {
                    name: layer_name,
                    ..LayerRecord::default()
                });
                record.last_version += 1;
                let mut version = version;
                version.version = record.last_version;
                record.versions.insert(record.last_version, version);
                Ok::<_, ApiError>((Some(record.clone()), record))
            },
        )
        .await?;
    let Some(published) = record.versions.get(&record.last_version) else {
        return Err(AwsError::service("published layer version is missing").into());
    };
    let r = LayerVersionRef {
        region,
        account,
        name,
        version: published.version,
    };
    Ok(json_response(
        StatusCode::CREATED,
        version_body(&on.state, &headers, &r, published),
    ))
}

pub async fn get_version(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path((raw_name, raw_version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let parsed = LayerName::parse(&raw_name)?;
    let version = version_number(&raw_version)?;
    let r = LayerVersionRef {
        region: parsed.region.unwrap_or_else(|| caller.region.clone()),
        account: parsed.account.unwrap_or_else(|| caller.account_id.clone()),
        name: parsed.name,
        version,
    };
    let found = readable_version(&state, &caller, &r).await?;
    Ok(json_response(
        StatusCode::OK,
        version_body(&state, &headers, &r, &found),
    ))
}

/// `GET /2018-10-31/layers`: ListLayers, or GetLayerVersionByArn when the
/// query says `find=LayerVersion`.
pub async fn list_layers(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if q.find.as_deref() == Some("LayerVersion") {
        return get_version_by_arn(&state, &caller, q.arn.as_deref(), &headers).await;
    }
    validate_filters(
        q.compatible_runtime.as_deref(),
        q.compatible_architecture.as_deref(),
    )?;
    let limit = layer_page_size(q.max_items.as_deref())?;
    let mut after = q
        .marker
        .as_deref()
        .map(super::versions::decode_marker)
        .transpose()?;
    let runtime = q.compatible_runtime.as_deref();
    let architecture = q.compatible_architecture.as_deref();
    let store = state.catalog.store();
    let mut layers: Vec<(String, Value)> = Vec::new();
    let mut exhausted = false;
    // Layers without a matching version are skipped, so a page may take
    // several reads; one more than the page tells whether there is more.
    while layers.len() <= limit && !exhausted {
        let batch = store
            .list_documents(
                &caller.account_id,
                &caller.region,
                LAYER_KIND,
                "",
                after.as_deref(),
                limit + 1,
            )
            .await?;
        exhausted = batch.len() <= limit;
        after = batch.last().map(|d| d.key.id.clone());
        for doc in batch {
            let record = decode(doc.doc)?;
            let latest = record
                .versions
                .values()
                .rev()
                .find(|v| v.matches(runtime, architecture));
            if let Some(latest) = latest {
                let item = json!({
                    "LayerName": record.name,
                    "LayerArn": layer_arn(&caller.region, &caller.account_id, &record.name),
                    "LatestMatchingVersion": latest.list_item(&caller.region, &caller.account_id, &record.name),
                });
                layers.push((record.name.clone(), item));
            }
        }
        if after.is_none() {
            exhausted = true;
        }
    }
    let more = layers.len() > limit;
    layers.truncate(limit);
    let mut body = json!({
        "Layers": layers.iter().map(|(_, item)| item.clone()).collect::<Vec<_>>()
    });
    if more {
        if let Some((last, _)) = layers.last() {
            body["NextMarker"] = json!(super::versions::encode_marker(last));
        }
    }
    Ok(json_response(StatusCode::OK, body))
}

async fn get_version_by_arn(
    state: &ApiState,
    caller: &Caller,
    arn: Option<&str>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let Some(arn) = arn else {
        let mut v = ValidationErrors::new();
        v.push_raw("null", "arn", "Member must not be null");
        v.into_result(ErrorCode::ValidationException)?;
        return Err(AwsError::validation("Arn is required").into());
    };
    let Some(r) = LayerVersionRef::parse(arn) else {
        let mut v = ValidationErrors::new();
        v.push(
            arn,
            "arn",
            &format!("Member must satisfy regular expression pattern: {LAYER_VERSION_ARN_PATTERN}"),
        );
        v.into_result(ErrorCode::ValidationException)?;
        return Err(AwsError::validation("invalid layer version ARN").into());
    };
    if r.version < 1 {
        return Err(AwsError::invalid_parameter("Layer Version Cannot be less than 1").into());
    }
    let found = readable_version(state, caller, &r).await?;
    Ok(json_response(
        StatusCode::OK,
        version_body(state, headers, &r, &found),
    ))
}

pub async fn list_versions(on: ResourceRequest, Query(q): Query<ListQuery>) -> ApiResult<Response> {
    let (account, region, name) = owned_layer(&on.caller, &on.name, "ListLayerVersions")?;
    validate_filters(
        q.compatible_runtime.as_deref(),
        q.compatible_architecture.as_deref(),
    )?;
    let limit = layer_page_size(q.max_items.as_deref())?;
    let before = match q
        .marker
        .as_deref()
        .map(super::versions::decode_marker)
        .transpose()?
    {
        Some(marker) => Some(
            marker
                .parse::<u64>()
                .map_err(|_| ApiError(AwsError::invalid_parameter("Invalid marker")))?,
        ),
        None => None,
    };
    let record = load_layer(&on.state, &account, &region, &name).await?;
    // Newest first, as AWS lists them; a layer that does not exist has none.
    let mut matching: Vec<&LayerVersion> = record
        .as_ref()
        .map(|r| {
            r.versions
                .values()
                .rev()
                .filter(|v| before.is_none_or(|b| v.version < b))
                .filter(|v| {
                    v.matches(
                        q.compatible_runtime.as_deref(),
                        q.compatible_architecture.as_deref(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let more = matching.len() > limit;
    matching.truncate(limit);
    let items: Vec<Value> = matching
        .iter()
        .map(|v| v.list_item(&region, &account, &name))
        .collect();
    let mut body = json!({ "LayerVersions": items });
    if more {
        if let Some(last) = matching.last() {
            body["NextMarker"] = json!(super::versions::encode_marker(&last.version.to_string()));
        }
    }
    Ok(json_response(StatusCode::OK, body))
}

pub async fn delete_version(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path((raw_name, raw_version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (account, region, name) = owned_layer(&caller, &raw_name, "DeleteLayerVersion")?;
    let version = version_number(&raw_version)?;
    // The layer document stays (with its version counter) when its last
    // version goes: numbers are never reused. Deleting what does not exist
    // succeeds, as on AWS. Functions keep their copy of the version.
    state
        .catalog
        .store()
        .update_typed(
            &key(&account, &region, &name),
            move |current: Option<LayerRecord>| {
                let Some(mut record) = current else {
                    return Ok::<_, ApiError>((None, ()));
                };
                record.versions.remove(&version);
                Ok((Some(record), ()))
            },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Applies a change to one version's policy inside the store's transaction,
/// checking `RevisionId`; answers the policy's new `RevisionId`.
async fn change_policy(
    state: &ApiState,
    r: &LayerVersionRef,
    revision: Option<String>,
    change: impl FnOnce(&mut LayerVersion) -> Result<(), AwsError> + Send + 'static,
) -> ApiResult<String> {
    let missing = layer_version_not_found(&r.arn());
    let number = r.version;
    let new_revision = uuid::Uuid::new_v4().to_string();
    let stored_revision = new_revision.clone();
    state
        .catalog
        .store()
        .update_typed(
            &key(&r.account, &r.region, &r.name),
            move |current: Option<LayerRecord>| {
                let Some(mut record) = current else {
                    return Err(ApiError::from(missing));
                };
                let Some(version) = record.versions.get_mut(&number) else {
                    return Err(ApiError::from(missing));
                };
                if revision
                    .as_deref()
                    .is_some_and(|rev| rev != version.policy_revision_id)
                {
                    return Err(AwsError::stale_revision("GetLayerPolicy").into());
                }
                change(version)?;
                version.policy_revision_id = stored_revision;
                Ok((Some(record), ()))
            },
        )
        .await?;
    Ok(new_revision)
}

const PRINCIPAL_PATTERN: &str = r"\d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root";

fn principal_value(principal: &str) -> Option<Value> {
    if principal == "*" {
        return Some(json!("*"));
    }
    if strato_model::account::is_account_id(principal) {
        return Some(json!({ "AWS": format!("arn:aws:iam::{principal}:root") }));
    }
    let account = principal
        .strip_prefix("arn:")
        .and_then(|rest| rest.split_once(":iam::"))
        .filter(|(partition, _)| partition.starts_with("aws"))
        .and_then(|(_, rest)| rest.strip_suffix(":root"))?;
    strato_model::account::is_account_id(account).then(|| json!({ "AWS": principal }))
}

fn is_organization_id(id: &str) -> bool {
    id.strip_prefix("o-").is_some_and(|rest| {
        (10..=32).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

pub async fn add_permission(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path((raw_name, raw_version)): Path<(String, String)>,
    Query(q): Query<RevisionQuery>,
    AwsJson(req): AwsJson<AddPermissionRequest>,
) -> ApiResult<Response> {
    let (account, region, name) = owned_layer(&caller, &raw_name, "AddLayerVersionPermission")?;
    let mut v = ValidationErrors::new();
    for (value, field) in [
        (&req.statement_id, "statementId"),
        (&req.action, "action"),
        (&req.principal, "principal"),
    ] {
        if value.is_none() {
            v.push_raw("null", field, "Member must not be null");
        }
    }
    if let Some(action) = req
        .action
        .as_deref()
        .filter(|a| *a != "lambda:GetLayerVersion")
    {
        v.push(
            action,
            "action",
            "Member must satisfy regular expression pattern: lambda:GetLayerVersion",
        );
    }
    let principal = req.principal.as_deref().map(|p| (p, principal_value(p)));
    if let Some((raw, None)) = principal {
        v.push(
            raw,
            "principal",
            &format!("Member must satisfy regular expression pattern: {PRINCIPAL_PATTERN}"),
        );
    }
    if let Some(org) = req
        .organization_id
        .as_deref()
        .filter(|o| !is_organization_id(o))
    {
        v.push(
            org,
            "organizationId",
            "Member must satisfy regular expression pattern: o-[a-z0-9]{10,32}",
        );
    }
    v.into_result(ErrorCode::ValidationException)?;
    let (Some(sid), Some((_, Some(principal)))) = (req.statement_id, principal) else {
        return Err(AwsError::validation("StatementId, Action and Principal are required").into());
    };
    validate::statement_id(&sid)?;
    let version = version_number(&raw_version)?;
    let r = LayerVersionRef {
        region,
        account,
        name,
        version,
    };
    let mut statement = json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": "lambda:GetLayerVersion",
        "Resource": r.arn(),
    });
    if let Some(org) = &req.organization_id {
        statement["Condition"] = json!({ "StringEquals": { "aws:PrincipalOrgID": org } });
    }
    let text = statement.to_string();
    let revision = change_policy(&state, &r, q.revision_id, move |version| {
        if version.policy.contains(&sid) {
            return Err(AwsError::conflict(format!(
                "The statement id ({sid}) provided already exists. Please provide a new statement id, or remove the existing statement."
            )));
        }
        version.policy.push(statement);
        version.policy.check_size()
    })
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({ "Statement": text, "RevisionId": revision }),
    ))
}

pub async fn get_policy(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path((raw_name, raw_version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (account, region, name) = owned_layer(&caller, &raw_name, "GetLayerVersionPolicy")?;
    let version = version_number(&raw_version)?;
    let r = LayerVersionRef {
        region,
        account,
        name,
        version,
    };
    let found = load_layer(&state, &r.account, &r.region, &r.name)
        .await?
        .and_then(|mut l| l.versions.remove(&r.version))
        .ok_or_else(|| layer_version_not_found(&r.arn()))?;
    if found.policy.is_empty() {
        return Err(AwsError::not_found("No policy is associated with the given resource.").into());
    }
    Ok(json_response(
        StatusCode::OK,
        json!({ "Policy": found.policy.document(), "RevisionId": found.policy_revision_id }),
    ))
}

pub async fn remove_permission(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path((raw_name, raw_version, sid)): Path<(String, String, String)>,
    Query(q): Query<RevisionQuery>,
) -> ApiResult<Response> {
    let (account, region, name) = owned_layer(&caller, &raw_name, "RemoveLayerVersionPermission")?;
    validate::statement_id(&sid)?;
    let version = version_number(&raw_version)?;
    let r = LayerVersionRef {
        region,
        account,
        name,
        version,
    };
    change_policy(&state, &r, q.revision_id, move |version| {
        if version.policy.is_empty() {
            return Err(AwsError::not_found(
                "No policy is associated with the given resource.",
            ));
        }
        if !version.policy.remove(&sid) {
            return Err(AwsError::not_found(format!(
                "Statement {sid} is not found in resource policy."
            )));
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The validation message for a `Layers` member whose ARNs do not all match
/// AWS's pattern.
fn invalid_layers(arns: &[String]) -> AwsError {
    let mut v = ValidationErrors::new();
    v.push(
        &format!("[{}]", arns.join(", ")),
        "layers",
        &format!(
            "Member must satisfy constraint: [Member must have length less than or equal to 2048, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: {LAYER_VERSION_ARN_PATTERN}, Member must not be null]"
        ),
    );
    v.into_result(ErrorCode::ValidationException)
        .err()
        .unwrap_or_else(|| AwsError::validation("invalid layers"))
}

/// Resolves a function's `Layers` (CreateFunction, UpdateFunctionConfiguration)
/// as AWS checks them: ARN syntax, at most five, one version per layer, the
/// function's region, existence, and another account's grant.
pub(crate) async fn resolve_function_layers(
    state: &ApiState,
    caller: &Caller,
    arns: &[String],
) -> ApiResult<Vec<FunctionLayer>> {
    let refs: Vec<LayerVersionRef> = arns
        .iter()
        .map(|arn| LayerVersionRef::parse(arn))
        .collect::<Option<_>>()
        .ok_or_else(|| invalid_layers(arns))?;
    if refs.len() > MAX_FUNCTION_LAYERS {
        return Err(AwsError::invalid_parameter("Cannot reference more than 5 layers.").into());
    }
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (r, arn) in refs.iter().zip(arns) {
        if let Some(earlier) = seen.insert(r.layer_arn(), arn) {
            return Err(AwsError::invalid_parameter(format!(
                "Two different versions of the same layer are not allowed to be referenced in the same function. {earlier} and {arn} are versions of the same layer."
            ))
            .into());
        }
    }
    if refs.iter().any(|r| r.region != caller.region) {
        return Err(AwsError::invalid_parameter(format!(
            "Layers are not in the same region as the function. Layers are expected to be in region {}.",
            caller.region
        ))
        .into());
    }
    let mut resolved = Vec::with_capacity(refs.len());
    for r in &refs {
        if r.version < 1 {
            return Err(AwsError::invalid_parameter("Layer Version Cannot be less than 1").into());
        }
        let version = match readable_version(state, caller, r).await {
            Ok(version) => version,
            // Referencing a missing version is a bad parameter, not a 404.
            Err(ApiError(err)) if err.code == ErrorCode::ResourceNotFoundException => {
                return Err(AwsError::invalid_parameter(err.message).into())
            }
            Err(err) => return Err(err),
        };
        resolved.push(FunctionLayer {
            arn: r.arn(),
            code: version.code,
        });
    }
    Ok(resolved)
}

/// AWS's limit on a function's code and its layers, unzipped together.
pub(crate) fn check_total_size(code_unzipped: u64, layers: &[FunctionLayer]) -> ApiResult<()> {
    let total = code_unzipped + layers.iter().map(|l| l.code.unzipped_size).sum::<u64>();
    if total > MAX_UNZIPPED_CODE_BYTES {
        return Err(AwsError::invalid_parameter(format!(
            "Function code combined with layers exceeds the maximum allowed size of {MAX_UNZIPPED_CODE_BYTES} bytes. The actual size is {total} bytes."
        ))
        .into());
    }
    Ok(())
}
