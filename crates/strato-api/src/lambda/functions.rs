//! CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions,
//! UpdateFunctionCode, UpdateFunctionConfiguration, DeleteFunction.
//!
//! Why over 800 lines: the seven operations share one request model and its
//! validation (AWS checks members in a fixed order across create and both
//! updates); splitting by operation would scatter that order. Splitting the
//! request model out is the next step when the file grows.

use std::collections::BTreeMap;
use std::io::Seek;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use strato_model::error::ValidationErrors;
use strato_model::function::CodeRef;
use strato_model::limits::*;
use strato_model::{
    validate, AwsError, CodePackage, ErrorCode, FunctionConfig, FunctionRecord, FunctionRef,
    FunctionState, LastUpdateStatus, Qualifier, RecursiveLoop, Runtime, RuntimeUpdate, LATEST,
};
use strato_store::StoreError;

use super::lifecycle::{spawn_settle, PendingChange};
use super::{
    base_url, config_wire, function_ref, load, not_found, resolve_config, unqualified_arn,
    unsupported, ResourceRequest,
};
use crate::error::{ApiError, ApiResult};
use crate::wire::{json as json_response, AwsJson};
use crate::ApiState;
use strato_gateway::extract::Authenticated;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct FunctionCodeInput {
    zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    s3_key: Option<String>,
    #[serde(rename = "S3ObjectVersion")]
    s3_object_version: Option<String>,
    image_uri: Option<String>,
    #[serde(rename = "SourceKMSKeyArn")]
    source_kms_key_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct EnvironmentInput {
    variables: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct EphemeralStorageInput {
    size: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct TracingInput {
    mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DeadLetterInput {
    target_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct LoggingInput {
    log_format: Option<String>,
    application_log_level: Option<String>,
    system_log_level: Option<String>,
    log_group: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct VpcInput {
    subnet_ids: Option<Vec<String>>,
    security_group_ids: Option<Vec<String>>,
    #[serde(rename = "Ipv6AllowedForDualStack")]
    ipv6_allowed_for_dual_stack: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct SnapStartInput {
    apply_on: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CreateResourceRequest {
    function_name: Option<String>,
    runtime: Option<String>,
    role: Option<String>,
    handler: Option<String>,
    code: Option<FunctionCodeInput>,
    description: Option<String>,
    timeout: Option<i64>,
    memory_size: Option<i64>,
    publish: Option<bool>,
    vpc_config: Option<VpcInput>,
    package_type: Option<String>,
    dead_letter_config: Option<DeadLetterInput>,
    environment: Option<EnvironmentInput>,
    #[serde(rename = "KMSKeyArn")]
    kms_key_arn: Option<String>,
    tracing_config: Option<TracingInput>,
    tags: Option<BTreeMap<String, String>>,
    layers: Option<Vec<String>>,
    file_system_configs: Option<Vec<Value>>,
    image_config: Option<Value>,
    code_signing_config_arn: Option<String>,
    architectures: Option<Vec<String>>,
    ephemeral_storage: Option<EphemeralStorageInput>,
    snap_start: Option<SnapStartInput>,
    logging_config: Option<LoggingInput>,
    capacity_provider_config: Option<Value>,
    publish_to: Option<Value>,
    durable_config: Option<Value>,
    tenancy_config: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct UpdateConfigurationRequest {
    role: Option<String>,
    handler: Option<String>,
    description: Option<String>,
    timeout: Option<i64>,
    memory_size: Option<i64>,
    vpc_config: Option<VpcInput>,
    environment: Option<EnvironmentInput>,
    runtime: Option<String>,
    dead_letter_config: Option<DeadLetterInput>,
    #[serde(rename = "KMSKeyArn")]
    kms_key_arn: Option<String>,
    tracing_config: Option<TracingInput>,
    revision_id: Option<String>,
    layers: Option<Vec<String>>,
    file_system_configs: Option<Vec<Value>>,
    image_config: Option<Value>,
    ephemeral_storage: Option<EphemeralStorageInput>,
    snap_start: Option<SnapStartInput>,
    logging_config: Option<LoggingInput>,
    capacity_provider_config: Option<Value>,
    durable_config: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct UpdateCodeRequest {
    zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    s3_key: Option<String>,
    #[serde(rename = "S3ObjectVersion")]
    s3_object_version: Option<String>,
    image_uri: Option<String>,
    publish: Option<bool>,
    dry_run: Option<bool>,
    revision_id: Option<String>,
    architectures: Option<Vec<String>>,
    #[serde(rename = "SourceKMSKeyArn")]
    source_kms_key_arn: Option<String>,
    publish_to: Option<Value>,
}

#[derive(Deserialize)]
pub struct QualifierQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
}

impl QualifierQuery {
    pub fn qualifier(&self) -> Option<&str> {
        self.qualifier.as_deref()
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(rename = "Marker")]
    marker: Option<String>,
    #[serde(rename = "MaxItems")]
    max_items: Option<String>,
    #[serde(rename = "FunctionVersion")]
    function_version: Option<String>,
    #[serde(rename = "MasterRegion")]
    master_region: Option<String>,
}

/// Members Strato does not run, refused with a clear error rather than
/// accepted and ignored.
fn refuse_unsupported(fields: &[(&str, bool)]) -> ApiResult<()> {
    match fields.iter().find(|(_, present)| *present) {
        Some((name, _)) => Err(unsupported(name).into()),
        None => Ok(()),
    }
}

fn check_vpc(vpc: &Option<VpcInput>) -> ApiResult<()> {
    if let Some(vpc) = vpc {
        let used = vpc.subnet_ids.as_ref().is_some_and(|s| !s.is_empty())
            || vpc
                .security_group_ids
                .as_ref()
                .is_some_and(|s| !s.is_empty())
            || vpc.ipv6_allowed_for_dual_stack == Some(true);
        if used {
            return Err(unsupported("VpcConfig").into());
        }
    }
    Ok(())
}

fn check_snap_start(snap: &Option<SnapStartInput>) -> ApiResult<()> {
    match snap.as_ref().and_then(|s| s.apply_on.as_deref()) {
        None | Some("None") => Ok(()),
        Some("PublishedVersions") => Err(unsupported("SnapStart").into()),
        Some(other) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{other}' at 'snapStart.applyOn' failed to satisfy constraint: Member must satisfy enum value set: [PublishedVersions, None]"
        ))
        .into()),
    }
}

fn tracing_mode(input: &Option<TracingInput>) -> ApiResult<Option<String>> {
    match input.as_ref().and_then(|t| t.mode.as_deref()) {
        None => Ok(None),
        Some(mode @ ("Active" | "PassThrough")) => Ok(Some(mode.to_string())),
        Some(other) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{other}' at 'tracingConfig.mode' failed to satisfy constraint: Member must satisfy enum value set: [Active, PassThrough]"
        ))
        .into()),
    }
}

fn apply_logging(config: &mut FunctionConfig, input: &Option<LoggingInput>) -> ApiResult<()> {
    let Some(input) = input else { return Ok(()) };
    if let Some(format) = &input.log_format {
        if format != "Text" && format != "JSON" {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{format}' at 'loggingConfig.logFormat' failed to satisfy constraint: Member must satisfy enum value set: [JSON, Text]"
            ))
            .into());
        }
        config.log_format = format.clone();
    }
    if (input.application_log_level.is_some() || input.system_log_level.is_some())
        && config.log_format != "JSON"
    {
        return Err(AwsError::invalid_parameter(
            "Advanced logging controls are only available for functions with a JSON log format.",
        )
        .into());
    }
    if let Some(group) = &input.log_group {
        config.log_group = group.clone();
    }
    Ok(())
}

pub(crate) fn decode_zip(b64: &str) -> ApiResult<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| {
            AwsError::serialization(
                "Could not deserialize the request body: ZipFile is not valid base64",
            )
            .into()
        })
}

/// A deployment package as a request gave it.
pub(crate) enum ZipSource {
    /// `ZipFile`: decoded from the request (at most 50 MB zipped).
    Inline(Vec<u8>),
    /// `S3Bucket`/`S3Key`: the object's content file, read in place (an
    /// object small enough to be kept inline arrives as `Inline`).
    S3(std::fs::File),
}

/// Inspects and stores a zip off the async threads (hashing 50 MB is slow).
pub(crate) async fn accept_zip(state: &ApiState, zip: ZipSource) -> ApiResult<CodeRef> {
    let code = state.code.clone();
    tokio::task::spawn_blocking(move || -> ApiResult<CodeRef> {
        let package = match zip {
            ZipSource::Inline(bytes) => {
                let package = CodePackage::inspect(&bytes).map_err(AwsError::from)?;
                code.put(&package.sha256_hex, &bytes)?;
                package
            }
            ZipSource::S3(mut file) => {
                let package = CodePackage::inspect_file(&mut file).map_err(AwsError::from)?;
                file.seek(std::io::SeekFrom::Start(0))
                    .map_err(strato_store::CodeStoreError::from)?;
                code.put_from(&package.sha256_hex, &mut file)?;
                package
            }
        };
        Ok(CodeRef {
            sha256_base64: package.sha256_base64,
            sha256_hex: package.sha256_hex,
            size: package.size,
            unzipped_size: package.unzipped_size,
        })
    })
    .await
    .map_err(|e| ApiError(AwsError::service(format!("code upload failed: {e}"))))?
}

/// Where a package comes from: an inline zip, or an object in Strato's S3.
async fn zip_source(
    state: &ApiState,
    caller: &crate::auth::Caller,
    zip: Option<&str>,
    s3: S3Source<'_>,
    image_uri: Option<&str>,
) -> ApiResult<ZipSource> {
    if image_uri.is_some() {
        return Err(AwsError::invalid_parameter(
            "Please don't provide ImageUri when updating a function with packageType Zip.",
        )
        .into());
    }
    match (zip, s3.bucket, s3.key) {
        (Some(zip), _, _) => decode_zip(zip).map(ZipSource::Inline),
        (None, Some(bucket), Some(key)) => s3_object(state, caller, bucket, key, s3.version).await,
        (None, Some(_), None) => {
            Err(AwsError::invalid_parameter("Please provide both S3Bucket and S3Key.").into())
        }
        (None, None, _) => {
            Err(AwsError::invalid_parameter("Please provide a source for function code.").into())
        }
    }
}

/// An S3 location of a deployment package, as the request named it.
#[derive(Clone, Copy)]
pub(crate) struct S3Source<'a> {
    pub bucket: Option<&'a str>,
    pub key: Option<&'a str>,
    pub version: Option<&'a str>,
}

/// A deployment package in Strato's S3, opened with the caller's account,
/// answering S3's refusal inside Lambda's error as AWS does.
pub(crate) async fn s3_object(
    state: &ApiState,
    caller: &crate::auth::Caller,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> ApiResult<ZipSource> {
    let content = state
        .s3
        .store()
        .open_object(&caller.account_id, &caller.region, bucket, key, version)
        .await
        .map_err(|e| {
            ApiError(AwsError::invalid_parameter(format!(
                "Error occurred while GetObject. {e}"
            )))
        })?;
    Ok(match content {
        strato_s3::OpenContent::File(file) => ZipSource::S3(file),
        strato_s3::OpenContent::Bytes(bytes) => ZipSource::Inline(bytes.to_vec()),
    })
}

fn check_tags(tags: &BTreeMap<String, String>) -> ApiResult<()> {
    validate::tag_count(tags.len())?;
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 || key.starts_with("aws:") {
            return Err(
                AwsError::invalid_parameter(format!("Tag key '{key}' is not valid.")).into(),
            );
        }
        if value.chars().count() > 256 {
            return Err(AwsError::invalid_parameter(format!(
                "Tag value for key '{key}' is too long."
            ))
            .into());
        }
    }
    Ok(())
}

/// With IAM enforced, the caller must be allowed `iam:PassRole` on a
/// function's role, and the role must exist and trust Lambda (its
/// instances run with its credentials). Open mode takes any role ARN.
fn check_execution_role(
    state: &ApiState,
    caller: &crate::auth::Caller,
    role: &str,
) -> Result<(), AwsError> {
    if !state.iam.enforcing() {
        return Ok(());
    }
    let context = strato_iam::policy::RequestContext::new()
        .with("iam:PassedToService", "lambda.amazonaws.com");
    if let Err(denied) = state
        .iam
        .authorize(&caller.access_key_id, "iam:PassRole", role, context)
    {
        return Err(AwsError::new(
            ErrorCode::AccessDeniedException,
            denied.message,
        ));
    }
    if !state.iam.lambda_can_assume(role) {
        return Err(AwsError::invalid_parameter(
            "The role defined for the function cannot be assumed by Lambda.",
        ));
    }
    Ok(())
}

pub async fn create(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    AwsJson(req): AwsJson<CreateResourceRequest>,
) -> ApiResult<Response> {
    let mut missing = ValidationErrors::new();
    if req.function_name.is_none() {
        missing.push_raw("null", "functionName", "Member must not be null");
    }
    if req.role.is_none() {
        missing.push_raw("null", "role", "Member must not be null");
    }
    if req.code.is_none() {
        missing.push_raw("null", "code", "Member must not be null");
    }
    missing.into_result(ErrorCode::ValidationException)?;
    let (Some(raw_name), Some(role), Some(code)) = (
        req.function_name.as_deref(),
        req.role.as_deref(),
        req.code.as_ref(),
    ) else {
        return Err(AwsError::validation("FunctionName, Role and Code are required").into());
    };

    let r = FunctionRef::parse(raw_name, 140)?;
    r.check_scope(&caller.account_id, &caller.region, "CreateFunction")?;
    if r.qualifier.is_some() {
        return Err(
            AwsError::invalid_parameter("Qualifiers are not allowed on CreateFunction.").into(),
        );
    }
    validate::function_name_for_create(&r.name)?;
    validate::role(role)?;
    check_execution_role(&state, &caller, role)?;
    if req.package_type.as_deref().is_some_and(|p| p != "Zip") {
        return Err(unsupported("PackageType Image").into());
    }
    refuse_unsupported(&[
        ("ImageConfig", req.image_config.is_some()),
        (
            "FileSystemConfigs",
            req.file_system_configs
                .as_ref()
                .is_some_and(|f| !f.is_empty()),
        ),
        (
            "CapacityProviderConfig",
            req.capacity_provider_config.is_some(),
        ),
        ("PublishTo", req.publish_to.is_some()),
        ("DurableConfig", req.durable_config.is_some()),
        ("TenancyConfig", req.tenancy_config.is_some()),
        (
            "Code.S3ObjectVersion",
            code.s3_object_version.is_some() && code.s3_bucket.is_none(),
        ),
        ("Code.SourceKMSKeyArn", code.source_kms_key_arn.is_some()),
    ])?;
    if let Some(arn) = &req.code_signing_config_arn {
        super::code_signing::check_deployment(&state, &caller, &r.name, arn).await?;
    }
    let (Some(runtime), Some(handler)) = (req.runtime.as_deref(), req.handler.as_deref()) else {
        return Err(AwsError::invalid_parameter(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages.",
        )
        .into());
    };
    let runtime = Runtime::parse_request(runtime)?;
    check_runtime_available(&state, runtime).await?;
    validate::handler(handler)?;
    let description = req.description.clone().unwrap_or_default();
    validate::description(&description)?;
    let timeout = req.timeout.unwrap_or(DEFAULT_TIMEOUT_S);
    validate::timeout(timeout)?;
    let memory_size = req.memory_size.unwrap_or(DEFAULT_MEMORY_MB);
    validate::memory_size(memory_size)?;
    let ephemeral = req
        .ephemeral_storage
        .as_ref()
        .map_or(DEFAULT_EPHEMERAL_MB, |e| e.size);
    validate::ephemeral_storage(ephemeral)?;
    let environment = req
        .environment
        .as_ref()
        .map(|e| e.variables.clone().unwrap_or_default());
    if let Some(vars) = &environment {
        validate::environment(vars)?;
    }
    let architectures = req
        .architectures
        .clone()
        .unwrap_or_else(|| vec!["x86_64".into()]);
    validate::architectures(&architectures)?;
    let tags = req.tags.clone().unwrap_or_default();
    check_tags(&tags)?;
    let layers = match &req.layers {
        Some(arns) => super::layers::resolve_function_layers(&state, &caller, arns).await?,
        None => Vec::new(),
    };
    check_vpc(&req.vpc_config)?;
    check_snap_start(&req.snap_start)?;
    let tracing = tracing_mode(&req.tracing_config)?;
    let zip = zip_source(
        &state,
        &caller,
        code.zip_file.as_deref(),
        S3Source {
            bucket: code.s3_bucket.as_deref(),
            key: code.s3_key.as_deref(),
            version: code.s3_object_version.as_deref(),
        },
        code.image_uri.as_deref(),
    )
    .await?;

    // Answer a duplicate before paying for the upload.
    if state
        .catalog
        .get(&caller.account_id, &caller.region, &r.name)
        .await?
        .is_some()
    {
        return Err(function_exists(&r.name).into());
    }
    let code_ref = accept_zip(&state, zip).await?;
    super::layers::check_total_size(code_ref.unzipped_size, &layers)?;

    let now = chrono::Utc::now();
    let mut config = FunctionConfig {
        name: r.name.clone(),
        version: "$LATEST".into(),
        runtime,
        role: role.to_string(),
        handler: Some(handler.to_string()),
        description,
        timeout,
        memory_size,
        ephemeral_storage: ephemeral,
        environment,
        architectures,
        code: code_ref,
        revision_id: String::new(),
        last_modified: now,
        state: FunctionState::Pending,
        state_reason: Some("The function is being created.".into()),
        state_reason_code: Some("Creating".into()),
        last_update_status: None,
        last_update_status_reason: None,
        last_update_status_reason_code: None,
        tracing_mode: tracing.unwrap_or_else(|| "PassThrough".into()),
        dead_letter_target_arn: req
            .dead_letter_config
            .as_ref()
            .and_then(|d| d.target_arn.clone()),
        kms_key_arn: req.kms_key_arn.clone(),
        log_format: "Text".into(),
        log_group: format!("/aws/lambda/{}", r.name),
        layers,
        runtime_version: None,
        runtime_update: RuntimeUpdate::Auto,
    };
    record_runtime_build(&mut config, &state.engine);
    apply_logging(&mut config, &req.logging_config)?;
    config.touch(now);
    // `Publish: true` makes version 1 in the same call; it settles with
    // `$LATEST` (same code).
    let mut versions = BTreeMap::new();
    if req.publish == Some(true) {
        versions.insert(1, config.publish_as(1, None, now));
    }
    let published = !versions.is_empty();
    let published_latest_modified = published.then_some(config.last_modified);
    let record = FunctionRecord {
        account: caller.account_id.clone(),
        region: caller.region.clone(),
        latest: config,
        tags,
        policy: Default::default(),
        reserved_concurrency: None,
        created_at: now,
        last_version: versions.len() as u64,
        published_latest_modified,
        versions,
        aliases: BTreeMap::new(),
        qualified_policies: BTreeMap::new(),
        provisioned_concurrency: BTreeMap::new(),
        event_invoke_configs: BTreeMap::new(),
        code_signing_config_arn: req.code_signing_config_arn.clone(),
        recursive_loop: RecursiveLoop::default(),
    };
    let record = match state.catalog.insert(record).await {
        Ok(record) => record,
        Err(StoreError::AlreadyExists) => return Err(function_exists(&r.name).into()),
        Err(err) => return Err(err.into()),
    };
    spawn_settle(state.clone(), PendingChange::of(&record));
    // With `Publish`, AWS answers with version 1's configuration under the
    // unqualified ARN.
    let answered = match record.versions.get(&1) {
        Some(version) if published => version,
        _ => &record.latest,
    };
    let mut body = answered.to_wire(&record.region, &record.account, true);
    body["FunctionArn"] = json!(record.arn());
    Ok(json_response(StatusCode::CREATED, body))
}

/// A function whose runtime this host cannot provide is refused now, not at
/// its first invocation. What the platform installs on first use (the Java
/// runtime interface client) is installed now, so the function can run.
async fn check_runtime_available(state: &ApiState, runtime: Runtime) -> ApiResult<()> {
    state.engine.provide_runtime(runtime).await.map(|_| ()).map_err(|reason| {
        AwsError::invalid_parameter(format!(
            "The runtime parameter of {runtime} is not available on this Strato host: {reason}. Run `strato runtimes list` to see what is."
        ))
        .into()
    })
}

fn function_exists(name: &str) -> AwsError {
    AwsError::conflict(format!("Function already exist: {name}"))
}

pub async fn get(
    on: ResourceRequest,
    Query(q): Query<QualifierQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let r = function_ref(&on.caller, &on.name, q.qualifier.as_deref(), "GetFunction")?;
    let record = load(&on.state, &on.caller, &r).await?;
    let config = resolve_config(&on.caller, &r, &record)?;
    let location = on.state.code_urls.url(
        &base_url(&headers),
        &on.caller.account_id,
        &config.code.sha256_hex,
        chrono::Utc::now().timestamp(),
    );
    let mut body = json!({
        "Configuration": config_wire(&on.caller, &r, config, true),
        "Code": {"RepositoryType": "S3", "Location": location},
    });
    if !record.tags.is_empty() {
        body["Tags"] = json!(record.tags);
    }
    if let Some(reserved) = record.reserved_concurrency {
        body["Concurrency"] = json!({ "ReservedConcurrentExecutions": reserved });
    }
    Ok(json_response(StatusCode::OK, body))
}

pub async fn get_configuration(
    on: ResourceRequest,
    Query(q): Query<QualifierQuery>,
) -> ApiResult<Response> {
    let r = function_ref(
        &on.caller,
        &on.name,
        q.qualifier.as_deref(),
        "GetFunctionConfiguration",
    )?;
    let record = load(&on.state, &on.caller, &r).await?;
    let config = resolve_config(&on.caller, &r, &record)?;
    Ok(json_response(
        StatusCode::OK,
        config_wire(&on.caller, &r, config, true),
    ))
}

pub async fn list(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let limit = super::versions::page_size(q.max_items.as_deref())?;
    if let Some(v) = q.function_version.as_deref() {
        if v != "ALL" {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{v}' at 'functionVersion' failed to satisfy constraint: Member must satisfy enum value set: [ALL]"
            ))
            .into());
        }
    }
    // Lambda@Edge replicas live in other regions' masters; Strato has none.
    if q.master_region.is_some() {
        return Ok(json_response(StatusCode::OK, json!({ "Functions": [] })));
    }
    if q.function_version.is_some() {
        return super::versions::list_all_versions(&state, &caller, q.marker.as_deref(), limit)
            .await;
    }
    let after = q
        .marker
        .as_deref()
        .map(super::versions::decode_marker)
        .transpose()?;
    let mut page = state
        .catalog
        .store()
        .list_functions(
            &caller.account_id,
            &caller.region,
            after.as_deref(),
            limit + 1,
        )
        .await?;
    let more = page.len() > limit;
    page.truncate(limit);
    let functions: Vec<Value> = page
        .iter()
        .map(|f| f.latest.to_wire(&f.region, &f.account, false))
        .collect();
    let mut body = json!({ "Functions": functions });
    if more {
        if let Some(last) = page.last() {
            body["NextMarker"] = json!(super::versions::encode_marker(last.name()));
        }
    }
    Ok(json_response(StatusCode::OK, body))
}

/// Refuses a change while the previous one settles, and a stale RevisionId.
fn check_can_update(
    config: &FunctionConfig,
    arn: &str,
    revision: Option<&str>,
) -> Result<(), AwsError> {
    if config.state == FunctionState::Pending {
        return Err(AwsError::conflict(
            "The operation cannot be performed at this time. The function is currently in the following state: Pending",
        ));
    }
    if config.last_update_status == Some(LastUpdateStatus::InProgress) {
        return Err(AwsError::update_in_progress(arn));
    }
    if revision.is_some_and(|r| r != config.revision_id) {
        return Err(AwsError::stale_revision("GetFunction/GetAlias"));
    }
    Ok(())
}

/// Marks an update in progress with the wording AWS answers an update with:
/// the create's (`The function is being created.`, code `Creating`), as
/// lambda-responses.md records it.
fn begin_update(config: &mut FunctionConfig, engine: &strato_engine::Engine) {
    config.last_update_status = Some(LastUpdateStatus::InProgress);
    config.last_update_status_reason = Some("The function is being created.".into());
    config.last_update_status_reason_code = Some("Creating".into());
    record_runtime_build(config, engine);
    config.touch(chrono::Utc::now());
}

/// Records the runtime build a version deployed now runs (its
/// `RuntimeVersionArn`): the one installed for its runtime, unless the
/// version is pinned to a build (`UpdateRuntimeOn: Manual`).
pub(crate) fn record_runtime_build(config: &mut FunctionConfig, engine: &strato_engine::Engine) {
    if !matches!(config.runtime_update, RuntimeUpdate::Manual(_)) {
        config.runtime_version = engine.runtime_build(config.runtime).ok();
    }
}

pub async fn update_configuration(
    on: ResourceRequest,
    AwsJson(req): AwsJson<UpdateConfigurationRequest>,
) -> ApiResult<Response> {
    let r = function_ref(&on.caller, &on.name, None, "UpdateFunctionConfiguration")?;
    if r.qualifier.is_some() {
        return Err(AwsError::invalid_parameter(
            "This operation is permitted on Lambda functions only. Aliases and versions do not support this operation. Please specify either a function name or an unqualified function ARN.",
        )
        .into());
    }
    if let Some(role) = &req.role {
        validate::role(role)?;
        check_execution_role(&on.state, &on.caller, role)?;
    }
    if let Some(handler) = &req.handler {
        validate::handler(handler)?;
    }
    if let Some(description) = &req.description {
        validate::description(description)?;
    }
    if let Some(timeout) = req.timeout {
        validate::timeout(timeout)?;
    }
    if let Some(memory) = req.memory_size {
        validate::memory_size(memory)?;
    }
    if let Some(e) = &req.ephemeral_storage {
        validate::ephemeral_storage(e.size)?;
    }
    let environment = req
        .environment
        .as_ref()
        .map(|e| e.variables.clone().unwrap_or_default());
    if let Some(vars) = &environment {
        validate::environment(vars)?;
    }
    let runtime = req
        .runtime
        .as_deref()
        .map(Runtime::parse_request)
        .transpose()?;
    if let Some(runtime) = runtime {
        check_runtime_available(&on.state, runtime).await?;
    }
    refuse_unsupported(&[
        ("ImageConfig", req.image_config.is_some()),
        (
            "FileSystemConfigs",
            req.file_system_configs
                .as_ref()
                .is_some_and(|f| !f.is_empty()),
        ),
        (
            "CapacityProviderConfig",
            req.capacity_provider_config.is_some(),
        ),
        ("DurableConfig", req.durable_config.is_some()),
    ])?;
    let layers = match &req.layers {
        Some(arns) => {
            Some(super::layers::resolve_function_layers(&on.state, &on.caller, arns).await?)
        }
        None => None,
    };
    check_vpc(&req.vpc_config)?;
    check_snap_start(&req.snap_start)?;
    let tracing = tracing_mode(&req.tracing_config)?;
    load(&on.state, &on.caller, &r).await?;

    let arn = unqualified_arn(&on.caller, &r.name);
    let engine = on.state.engine.clone();
    let record = super::update_function(
        &on.state,
        &on.caller,
        &r,
        Box::new(move |record| {
            let config = &mut record.latest;
            check_can_update(config, &arn, req.revision_id.as_deref())?;
            if let Some(role) = req.role {
                config.role = role;
            }
            if let Some(handler) = req.handler {
                config.handler = Some(handler);
            }
            if let Some(description) = req.description {
                config.description = description;
            }
            if let Some(timeout) = req.timeout {
                config.timeout = timeout;
            }
            if let Some(memory) = req.memory_size {
                config.memory_size = memory;
            }
            if let Some(e) = req.ephemeral_storage {
                config.ephemeral_storage = e.size;
            }
            if let Some(vars) = environment {
                config.environment = Some(vars);
            }
            if let Some(runtime) = runtime {
                config.runtime = runtime;
            }
            if let Some(dlq) = req.dead_letter_config {
                config.dead_letter_target_arn = dlq.target_arn.filter(|t| !t.is_empty());
            }
            if let Some(kms) = req.kms_key_arn {
                config.kms_key_arn = Some(kms).filter(|k| !k.is_empty());
            }
            if let Some(mode) = tracing {
                config.tracing_mode = mode;
            }
            if let Some(layers) = layers {
                super::layers::check_total_size(config.code.unzipped_size, &layers)
                    .map_err(|e| e.0)?;
                config.layers = layers;
            }
            apply_logging(config, &req.logging_config).map_err(|e| e.0)?;
            begin_update(config, &engine);
            Ok(())
        }),
    )
    .await?;
    on.state
        .engine
        .retire_version(&on.caller.account_id, &on.caller.region, &r.name, LATEST);
    spawn_settle(on.state.clone(), PendingChange::of(&record));
    Ok(json_response(
        StatusCode::OK,
        record.latest.to_wire(&record.region, &record.account, true),
    ))
}

pub async fn update_code(
    on: ResourceRequest,
    AwsJson(req): AwsJson<UpdateCodeRequest>,
) -> ApiResult<Response> {
    let r = function_ref(&on.caller, &on.name, None, "UpdateFunctionCode")?;
    if r.qualifier.is_some() {
        return Err(AwsError::invalid_parameter(
            "This operation is permitted on Lambda functions only. Aliases and versions do not support this operation. Please specify either a function name or an unqualified function ARN.",
        )
        .into());
    }
    if let Some(archs) = &req.architectures {
        validate::architectures(archs)?;
    }
    refuse_unsupported(&[
        ("PublishTo", req.publish_to.is_some()),
        ("SourceKMSKeyArn", req.source_kms_key_arn.is_some()),
        (
            "S3ObjectVersion",
            req.s3_object_version.is_some() && req.s3_bucket.is_none(),
        ),
    ])?;
    let publish = req.publish == Some(true);
    let current = load(&on.state, &on.caller, &r).await?;
    let zip = zip_source(
        &on.state,
        &on.caller,
        req.zip_file.as_deref(),
        S3Source {
            bucket: req.s3_bucket.as_deref(),
            key: req.s3_key.as_deref(),
            version: req.s3_object_version.as_deref(),
        },
        req.image_uri.as_deref(),
    )
    .await?;
    let arn = unqualified_arn(&on.caller, &r.name);
    check_can_update(&current.latest, &arn, req.revision_id.as_deref())?;
    if let Some(csc) = &current.code_signing_config_arn {
        super::code_signing::check_deployment(&on.state, &on.caller, &r.name, csc).await?;
    }
    let code_ref = accept_zip(&on.state, zip).await?;
    super::layers::check_total_size(code_ref.unzipped_size, &current.latest.layers)?;

    if req.dry_run == Some(true) {
        let mut preview = current.latest.clone();
        preview.code = code_ref;
        return Ok(json_response(
            StatusCode::OK,
            preview.to_wire(&current.region, &current.account, true),
        ));
    }
    let engine = on.state.engine.clone();
    let record = super::update_function(
        &on.state,
        &on.caller,
        &r,
        Box::new(move |record| {
            let config = &mut record.latest;
            check_can_update(config, &arn, req.revision_id.as_deref())?;
            config.code = code_ref;
            if let Some(archs) = req.architectures {
                config.architectures = archs;
            }
            begin_update(config, &engine);
            if publish {
                // The version settles together with the update.
                super::versions::publish_latest(record, None, chrono::Utc::now());
            }
            Ok(())
        }),
    )
    .await?;
    on.state
        .engine
        .retire_version(&on.caller.account_id, &on.caller.region, &r.name, LATEST);
    spawn_settle(on.state.clone(), PendingChange::of(&record));
    let answered = match record.versions.last_key_value() {
        Some((_, version)) if publish => version,
        _ => &record.latest,
    };
    Ok(json_response(
        StatusCode::OK,
        answered.to_wire(&record.region, &record.account, true),
    ))
}

pub async fn delete(on: ResourceRequest, Query(q): Query<QualifierQuery>) -> ApiResult<Response> {
    let r = function_ref(
        &on.caller,
        &on.name,
        q.qualifier.as_deref(),
        "DeleteFunction",
    )?;
    match &r.qualifier {
        Some(Qualifier::Latest) => {
            return Err(AwsError::invalid_parameter(
                "$LATEST version cannot be deleted without deleting the function.",
            )
            .into())
        }
        Some(_) => return super::versions::delete_version(&on.state, &on.caller, &r).await,
        None => {}
    }
    match on
        .state
        .catalog
        .delete(&on.caller.account_id, &on.caller.region, &r.name)
        .await?
    {
        Some(record) => {
            for qualifier in record.provisioned_concurrency.keys() {
                on.state.engine.deprovision(&(
                    on.caller.account_id.clone(),
                    on.caller.region.clone(),
                    r.name.clone(),
                    qualifier.clone(),
                ));
            }
            on.state
                .engine
                .retire(&on.caller.account_id, &on.caller.region, &r.name);
            on.state.engine.concurrency().forget_function(
                &on.caller.account_id,
                &on.caller.region,
                &r.name,
            );
            // A deleted function's URLs go with it.
            on.state
                .function_urls
                .forget_function(&on.caller.account_id, &on.caller.region, &r.name)
                .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        None => Err(not_found(&on.caller, &r).into()),
    }
}
