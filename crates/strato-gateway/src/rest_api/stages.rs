//! Deployments (snapshots of a REST API's resource tree) and stages (a name
//! clients call, pointing at a deployment, with variables and method
//! settings).

use std::collections::BTreeMap;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use strato_model::Caller;
use strato_store::{DocumentKey, StoreError, StoreExt};

use super::apis::load_api;
use super::error::{RestError, RestResult};
use super::model::{
    AccessLogSettings, Deployment, DeploymentRecord, Stage, KIND_DEPLOYMENT, KIND_STAGE,
};
use super::patch::{as_strs, PatchOp, PatchOperation, PatchRequest};
use super::{list_owned, listing, new_id, now_epoch, page, PageQuery, RestApiService};
use crate::extract::{ApiRequest, ChildRequest, RestJson};

pub fn deployment_key(caller: &Caller, api_id: &str, deployment_id: &str) -> DocumentKey {
    DocumentKey::new(
        &caller.account_id,
        &caller.region,
        KIND_DEPLOYMENT,
        format!("{api_id}/{deployment_id}"),
    )
}

pub fn stage_key(caller: &Caller, api_id: &str, stage_name: &str) -> DocumentKey {
    DocumentKey::new(
        &caller.account_id,
        &caller.region,
        KIND_STAGE,
        format!("{api_id}/{stage_name}"),
    )
}

fn deployment_not_found() -> RestError {
    RestError::not_found("Invalid Deployment identifier specified")
}

fn stage_not_found() -> RestError {
    RestError::not_found("Invalid Stage identifier specified")
}

fn check_stage_name(name: &str) -> RestResult<()> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(RestError::bad_request(
            "Stage name only allows a-zA-Z0-9_ and -",
        ))
    }
}

fn check_variables(variables: &BTreeMap<String, String>) -> RestResult<()> {
    for (name, value) in variables {
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !name_ok {
            return Err(RestError::bad_request(format!(
                "Stage variable name {name} must only contain alphanumeric characters and underscores"
            )));
        }
        if value.len() > 512 {
            return Err(RestError::bad_request(format!(
                "Stage variable value for {name} must be 512 characters or less"
            )));
        }
    }
    Ok(())
}

fn json_answer(status: StatusCode, value: &impl serde::Serialize) -> RestResult<Response> {
    Ok((status, Json(serde_json::to_value(value)?)).into_response())
}

async fn load_stage(
    service: &RestApiService,
    caller: &Caller,
    api_id: &str,
    stage_name: &str,
) -> RestResult<Stage> {
    match service
        .store
        .get_document(&stage_key(caller, api_id, stage_name))
        .await?
    {
        Some(doc) => Ok(serde_json::from_value(doc)?),
        None => Err(stage_not_found()),
    }
}

async fn deployment_exists(
    service: &RestApiService,
    caller: &Caller,
    api_id: &str,
    deployment_id: &str,
) -> RestResult<bool> {
    Ok(service
        .store
        .get_document(&deployment_key(caller, api_id, deployment_id))
        .await?
        .is_some())
}

// ---- Deployments ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDeploymentRequest {
    stage_name: Option<String>,
    stage_description: Option<String>,
    description: Option<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    tracing_enabled: Option<bool>,
    #[serde(default)]
    cache_cluster_enabled: Option<bool>,
}

pub async fn create_deployment(
    on: ApiRequest<RestApiService>,
    RestJson(request): RestJson<CreateDeploymentRequest>,
) -> RestResult<Response> {
    let record = load_api(&on.service, &on.caller, &on.api_id).await?;
    if record
        .resources
        .values()
        .all(|r| r.resource_methods.is_empty())
    {
        return Err(RestError::bad_request(
            "The REST API doesn't contain any methods",
        ));
    }
    if record.resources.values().any(|r| {
        r.resource_methods
            .values()
            .any(|m| m.method_integration.is_none())
    }) {
        return Err(RestError::bad_request("No integration defined for method"));
    }
    if let Some(stage_name) = &request.stage_name {
        check_stage_name(stage_name)?;
    }
    check_variables(&request.variables)?;
    let deployment = Deployment {
        id: new_id(6),
        description: request.description,
        created_date: now_epoch(),
    };
    let stored = DeploymentRecord {
        deployment: deployment.clone(),
        resources: record.resources,
    };
    on.service
        .store
        .insert_document(
            &deployment_key(&on.caller, &on.api_id, &deployment.id),
            &serde_json::to_value(&stored)?,
        )
        .await?;
    if let Some(stage_name) = request.stage_name {
        // Deploying to a stage creates it, or moves it to this deployment
        // (its variables updated by the ones given).
        let now = now_epoch();
        let deployment_id = deployment.id.clone();
        let variables = request.variables;
        let description = request.stage_description;
        let tracing = request.tracing_enabled;
        let cache = request.cache_cluster_enabled;
        let name = stage_name.clone();
        on.service
            .store
            .update_typed(
                &stage_key(&on.caller, &on.api_id, &stage_name),
                move |current: Option<Stage>| {
                    let mut stage =
                        current.unwrap_or_else(|| new_stage(name, deployment_id.clone(), now));
                    stage.deployment_id = deployment_id;
                    stage.variables.extend(variables);
                    if description.is_some() {
                        stage.description = description;
                    }
                    if let Some(tracing) = tracing {
                        stage.tracing_enabled = tracing;
                    }
                    if let Some(cache) = cache {
                        stage.cache_cluster_enabled = cache;
                    }
                    stage.last_updated_date = now;
                    Ok::<_, RestError>((Some(stage), ()))
                },
            )
            .await?;
        on.service
            .refresh_api(&on.caller.account_id, &on.caller.region, &on.api_id)
            .await;
    }
    json_answer(StatusCode::CREATED, &deployment)
}

fn new_stage(stage_name: String, deployment_id: String, now: i64) -> Stage {
    Stage {
        deployment_id,
        stage_name,
        description: None,
        cache_cluster_enabled: false,
        cache_cluster_status: "NOT_AVAILABLE".into(),
        method_settings: BTreeMap::new(),
        variables: BTreeMap::new(),
        access_log_settings: None,
        tracing_enabled: false,
        tags: BTreeMap::new(),
        created_date: now,
        last_updated_date: now,
    }
}

pub async fn get_deployment(on: ChildRequest<RestApiService>) -> RestResult<Response> {
    load_api(&on.service, &on.caller, &on.api_id).await?;
    let doc = on
        .service
        .store
        .get_document(&deployment_key(&on.caller, &on.api_id, &on.id))
        .await?
        .ok_or_else(deployment_not_found)?;
    let record: DeploymentRecord = serde_json::from_value(doc)?;
    json_answer(StatusCode::OK, &record.deployment)
}

pub async fn get_deployments(
    on: ApiRequest<RestApiService>,
    Query(query): Query<PageQuery>,
) -> RestResult<Response> {
    load_api(&on.service, &on.caller, &on.api_id).await?;
    let all: Vec<(String, DeploymentRecord)> = list_owned(
        &on.service,
        &on.caller,
        KIND_DEPLOYMENT,
        &format!("{}/", on.api_id),
    )
    .await?;
    let items: Vec<(String, Deployment)> = all
        .into_iter()
        .map(|(_, r)| (r.deployment.id.clone(), r.deployment))
        .collect();
    let (items, position) = page(&items, &query)?;
    let items = items
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<Value>, _>>()?;
    Ok(Json(listing(items, position)).into_response())
}

pub async fn delete_deployment(on: ChildRequest<RestApiService>) -> RestResult<Response> {
    load_api(&on.service, &on.caller, &on.api_id).await?;
    if !deployment_exists(&on.service, &on.caller, &on.api_id, &on.id).await? {
        return Err(deployment_not_found());
    }
    let stages: Vec<(String, Stage)> = list_owned(
        &on.service,
        &on.caller,
        KIND_STAGE,
        &format!("{}/", on.api_id),
    )
    .await?;
    if stages.iter().any(|(_, s)| s.deployment_id == on.id) {
        return Err(RestError::bad_request(
            "Active stages pointing to this deployment must be moved or deleted",
        ));
    }
    on.service
        .store
        .delete_document(&deployment_key(&on.caller, &on.api_id, &on.id))
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

// ---- Stages ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateStageRequest {
    stage_name: Option<String>,
    deployment_id: Option<String>,
    description: Option<String>,
    #[serde(default)]
    cache_cluster_enabled: bool,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    tracing_enabled: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

pub async fn create_stage(
    on: ApiRequest<RestApiService>,
    RestJson(request): RestJson<CreateStageRequest>,
) -> RestResult<Response> {
    let stage_name = request.stage_name.unwrap_or_default();
    check_stage_name(&stage_name)?;
    check_variables(&request.variables)?;
    load_api(&on.service, &on.caller, &on.api_id).await?;
    let deployment_id = request.deployment_id.unwrap_or_default();
    if !deployment_exists(&on.service, &on.caller, &on.api_id, &deployment_id).await? {
        return Err(deployment_not_found());
    }
    let mut stage = new_stage(stage_name.clone(), deployment_id, now_epoch());
    stage.description = request.description;
    stage.cache_cluster_enabled = request.cache_cluster_enabled;
    stage.variables = request.variables;
    stage.tracing_enabled = request.tracing_enabled;
    stage.tags = request.tags;
    match on
        .service
        .store
        .insert_document(
            &stage_key(&on.caller, &on.api_id, &stage_name),
            &serde_json::to_value(&stage)?,
        )
        .await
    {
        Ok(()) => {}
        Err(StoreError::AlreadyExists) => {
            return Err(RestError::conflict("Stage already exists"));
        }
        Err(other) => return Err(other.into()),
    }
    on.service
        .refresh_api(&on.caller.account_id, &on.caller.region, &on.api_id)
        .await;
    json_answer(StatusCode::CREATED, &stage)
}

pub async fn get_stage(on: ChildRequest<RestApiService>) -> RestResult<Response> {
    load_api(&on.service, &on.caller, &on.api_id).await?;
    let stage = load_stage(&on.service, &on.caller, &on.api_id, &on.id).await?;
    json_answer(StatusCode::OK, &stage)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetStagesQuery {
    #[serde(rename = "deploymentId")]
    deployment_id: Option<String>,
}

pub async fn get_stages(
    on: ApiRequest<RestApiService>,
    Query(query): Query<GetStagesQuery>,
) -> RestResult<Response> {
    load_api(&on.service, &on.caller, &on.api_id).await?;
    let stages: Vec<(String, Stage)> = list_owned(
        &on.service,
        &on.caller,
        KIND_STAGE,
        &format!("{}/", on.api_id),
    )
    .await?;
    let items = stages
        .iter()
        .filter(|(_, s)| {
            query
                .deployment_id
                .as_deref()
                .is_none_or(|d| s.deployment_id == d)
        })
        .map(|(_, s)| serde_json::to_value(s))
        .collect::<Result<Vec<Value>, _>>()?;
    Ok(Json(serde_json::json!({ "item": items })).into_response())
}

/// One patch operation on a stage. Method settings are addressed as
/// `/{resource path with ~1 for /}/{METHOD}/{group}/{setting}` or
/// `/*/*/...` for every method, and keyed in `methodSettings` by their first
/// two segments as written (`~1items/GET`, `*/*`).
fn apply_stage_patch(stage: &mut Stage, op: &PatchOperation) -> RestResult<()> {
    let kind = op.kind()?;
    let segments = op.segments();
    let simple = as_strs(&segments);
    match (kind, simple.as_slice()) {
        (PatchOp::Replace, ["description"]) => stage.description = op.value.clone(),
        (PatchOp::Replace, ["deploymentId"]) => stage.deployment_id = op.value()?.to_string(),
        (PatchOp::Replace, ["tracingEnabled"]) => stage.tracing_enabled = op.bool_value()?,
        (PatchOp::Replace, ["cacheClusterEnabled"]) => {
            stage.cache_cluster_enabled = op.bool_value()?
        }
        (PatchOp::Replace, ["cacheClusterSize"]) => {}
        (PatchOp::Add | PatchOp::Replace, ["variables", name]) => {
            let mut one = BTreeMap::new();
            one.insert(name.to_string(), op.value.clone().unwrap_or_default());
            check_variables(&one)?;
            stage.variables.extend(one);
        }
        (PatchOp::Remove, ["variables", name]) => {
            stage.variables.remove(*name);
        }
        (PatchOp::Replace, ["accessLogSettings", "format"]) => {
            stage
                .access_log_settings
                .get_or_insert(AccessLogSettings {
                    format: None,
                    destination_arn: None,
                })
                .format = op.value.clone();
        }
        (PatchOp::Replace, ["accessLogSettings", "destinationArn"]) => {
            stage
                .access_log_settings
                .get_or_insert(AccessLogSettings {
                    format: None,
                    destination_arn: None,
                })
                .destination_arn = op.value.clone();
        }
        (PatchOp::Remove, ["accessLogSettings"]) => stage.access_log_settings = None,
        _ => return apply_method_setting_patch(stage, op, kind),
    }
    Ok(())
}

fn apply_method_setting_patch(
    stage: &mut Stage,
    op: &PatchOperation,
    kind: PatchOp,
) -> RestResult<()> {
    let raw: Vec<&str> = op.path.trim_start_matches('/').split('/').collect();
    if raw.len() < 2 {
        return Err(op.unsupported());
    }
    let (resource, method) = (raw[0], raw[1]);
    let addresses_methods = (resource == "*" && method == "*")
        || (resource.starts_with("~1")
            && (method == "*"
                || [
                    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "ANY",
                ]
                .contains(&method)));
    if !addresses_methods {
        return Err(op.unsupported());
    }
    let key = format!("{resource}/{method}");
    if kind == PatchOp::Remove && raw.len() == 2 {
        stage.method_settings.remove(&key);
        return Ok(());
    }
    if kind != PatchOp::Replace || raw.len() != 4 {
        return Err(op.unsupported());
    }
    let setting = stage.method_settings.entry(key).or_default();
    match (raw[2], raw[3]) {
        ("throttling", "rateLimit") => setting.throttling_rate_limit = op.double_value()?,
        ("throttling", "burstLimit") => setting.throttling_burst_limit = op.int_value()?,
        ("metrics", "enabled") => setting.metrics_enabled = op.bool_value()?,
        ("logging", "loglevel") => {
            let level = op.value()?;
            if !matches!(level, "OFF" | "ERROR" | "INFO") {
                return Err(RestError::bad_request(format!(
                    "Invalid logging level specified: {level}. Valid values are OFF, ERROR and INFO"
                )));
            }
            setting.logging_level = level.to_string();
        }
        ("logging", "dataTrace") => setting.data_trace_enabled = op.bool_value()?,
        ("caching", "enabled") => setting.caching_enabled = op.bool_value()?,
        ("caching", "ttlInSeconds") => setting.cache_ttl_in_seconds = op.int_value()?,
        ("caching", "dataEncrypted") => setting.cache_data_encrypted = op.bool_value()?,
        ("caching", "requireAuthorizationForCacheControl") => {
            setting.require_authorization_for_cache_control = op.bool_value()?
        }
        ("caching", "unauthorizedCacheControlHeaderStrategy") => {
            setting.unauthorized_cache_control_header_strategy = op.value()?.to_string()
        }
        _ => return Err(op.unsupported()),
    }
    if setting.throttling_rate_limit < 0.0 || setting.throttling_burst_limit < 0 {
        return Err(RestError::bad_request(
            "Throttling limits must be non-negative",
        ));
    }
    Ok(())
}

pub async fn update_stage(
    on: ChildRequest<RestApiService>,
    RestJson(request): RestJson<PatchRequest>,
) -> RestResult<Response> {
    load_api(&on.service, &on.caller, &on.api_id).await?;
    // A new deploymentId must name a deployment of this API.
    for op in &request.patch_operations {
        if op.path == "/deploymentId" {
            let id = op.value()?;
            if !deployment_exists(&on.service, &on.caller, &on.api_id, id).await? {
                return Err(deployment_not_found());
            }
        }
    }
    let now = now_epoch();
    let stored = on
        .service
        .store
        .update_typed(
            &stage_key(&on.caller, &on.api_id, &on.id),
            move |current: Option<Stage>| {
                let mut stage = current.ok_or_else(stage_not_found)?;
                for op in &request.patch_operations {
                    apply_stage_patch(&mut stage, op)?;
                }
                stage.last_updated_date = now;
                Ok::<_, RestError>((Some(stage.clone()), stage))
            },
        )
        .await?;
    on.service
        .refresh_api(&on.caller.account_id, &on.caller.region, &on.api_id)
        .await;
    Ok(Json(stored).into_response())
}

pub async fn delete_stage(on: ChildRequest<RestApiService>) -> RestResult<Response> {
    load_api(&on.service, &on.caller, &on.api_id).await?;
    if !on
        .service
        .store
        .delete_document(&stage_key(&on.caller, &on.api_id, &on.id))
        .await?
    {
        return Err(stage_not_found());
    }
    on.service
        .refresh_api(&on.caller.account_id, &on.caller.region, &on.api_id)
        .await;
    Ok(StatusCode::ACCEPTED.into_response())
}
