//! API keys and usage plans: the keys clients send in `x-api-key`, and the
//! plans that admit them to API stages with a throttle and a quota.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use strato_model::Caller;
use strato_store::{DocumentKey, StoreExt};

use super::error::{RestError, RestResult};
use super::model::{
    ApiKey, ApiStage, QuotaSettings, Stage, ThrottleSettings, UsagePlan, UsagePlanKey,
    UsagePlanRecord, KIND_API_KEY, KIND_QUOTA_USAGE, KIND_STAGE, KIND_USAGE_PLAN,
};
use super::patch::{as_strs, PatchOp, PatchOperation, PatchRequest};
use super::{
    list_owned, listing, new_id, new_key_value, now_epoch, page, PageQuery, RestApiService,
};
use crate::extract::{Authenticated, RestJson};

type Svc = State<Arc<RestApiService>>;

pub fn api_key_key(caller: &Caller, key_id: &str) -> DocumentKey {
    DocumentKey::new(&caller.account_id, &caller.region, KIND_API_KEY, key_id)
}

pub fn usage_plan_key(caller: &Caller, plan_id: &str) -> DocumentKey {
    DocumentKey::new(&caller.account_id, &caller.region, KIND_USAGE_PLAN, plan_id)
}

fn api_key_not_found() -> RestError {
    RestError::not_found("Invalid API Key identifier specified")
}

fn usage_plan_not_found(plan_id: &str) -> RestError {
    RestError::not_found(format!("Invalid Usage Plan ID specified: {plan_id}"))
}

fn json_answer(status: StatusCode, value: &impl serde::Serialize) -> RestResult<Response> {
    Ok((status, Json(serde_json::to_value(value)?)).into_response())
}

fn truthy(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

async fn load_key(service: &RestApiService, caller: &Caller, key_id: &str) -> RestResult<ApiKey> {
    match service
        .store
        .get_document(&api_key_key(caller, key_id))
        .await?
    {
        Some(doc) => Ok(serde_json::from_value(doc)?),
        None => Err(api_key_not_found()),
    }
}

async fn load_plan(
    service: &RestApiService,
    caller: &Caller,
    plan_id: &str,
) -> RestResult<UsagePlanRecord> {
    match service
        .store
        .get_document(&usage_plan_key(caller, plan_id))
        .await?
    {
        Some(doc) => Ok(serde_json::from_value(doc)?),
        None => Err(usage_plan_not_found(plan_id)),
    }
}

/// Applies `change` to a stored document atomically.
async fn mutate<T, R, F>(
    service: &RestApiService,
    key: DocumentKey,
    missing: RestError,
    change: F,
) -> RestResult<R>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
    R: Send + 'static,
    F: FnOnce(&mut T) -> RestResult<R> + Send + 'static,
{
    service
        .store
        .update_typed(&key, move |current: Option<T>| {
            let mut value = current.ok_or(missing)?;
            let answer = change(&mut value)?;
            Ok((Some(value), answer))
        })
        .await
}

// ---- API keys ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateApiKeyRequest {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    #[allow(dead_code)]
    generate_distinct_id: bool,
    value: Option<String>,
    #[serde(default)]
    stage_keys: Vec<StageKeyInput>,
    customer_id: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StageKeyInput {
    rest_api_id: Option<String>,
    stage_name: Option<String>,
}

pub async fn create_api_key(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    RestJson(request): RestJson<CreateApiKeyRequest>,
) -> RestResult<Response> {
    let value = match request.value {
        Some(value) => {
            if value.len() < 20 {
                return Err(RestError::bad_request(
                    "API Key value should be at least 20 characters",
                ));
            }
            value
        }
        None => new_key_value(),
    };
    let existing: Vec<(String, ApiKey)> = list_owned(&service, &caller, KIND_API_KEY, "").await?;
    if existing
        .iter()
        .any(|(_, k)| k.value.as_deref() == Some(value.as_str()))
    {
        return Err(RestError::conflict("API Key already exists"));
    }
    let id = new_id(10);
    let now = now_epoch();
    let key = ApiKey {
        name: request.name.unwrap_or_else(|| id.clone()),
        id,
        value: Some(value),
        customer_id: request.customer_id,
        description: request.description,
        enabled: request.enabled,
        created_date: now,
        last_updated_date: now,
        stage_keys: request
            .stage_keys
            .into_iter()
            .filter_map(|s| Some(format!("{}/{}", s.rest_api_id?, s.stage_name?)))
            .collect(),
        tags: request.tags,
    };
    service
        .store
        .insert_document(&api_key_key(&caller, &key.id), &serde_json::to_value(&key)?)
        .await?;
    service
        .refresh_keys(&caller.account_id, &caller.region)
        .await;
    json_answer(StatusCode::CREATED, &key)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetApiKeyQuery {
    include_value: Option<String>,
}

pub async fn get_api_key(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path(key_id): Path<String>,
    Query(query): Query<GetApiKeyQuery>,
) -> RestResult<Response> {
    let mut key = load_key(&service, &caller, &key_id).await?;
    if !truthy(query.include_value.as_deref()) {
        key.value = None;
    }
    json_answer(StatusCode::OK, &key)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetApiKeysQuery {
    position: Option<String>,
    limit: Option<String>,
    name: Option<String>,
    customer_id: Option<String>,
    include_values: Option<String>,
}

pub async fn get_api_keys(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Query(query): Query<GetApiKeysQuery>,
) -> RestResult<Response> {
    let all: Vec<(String, ApiKey)> = list_owned(&service, &caller, KIND_API_KEY, "").await?;
    let include_values = truthy(query.include_values.as_deref());
    let filtered: Vec<(String, ApiKey)> = all
        .into_iter()
        .filter(|(_, k)| query.name.as_deref().is_none_or(|n| k.name.starts_with(n)))
        .filter(|(_, k)| {
            query
                .customer_id
                .as_deref()
                .is_none_or(|c| k.customer_id.as_deref() == Some(c))
        })
        .map(|(id, mut k)| {
            if !include_values {
                k.value = None;
            }
            (id, k)
        })
        .collect();
    let page_query = PageQuery {
        position: query.position,
        limit: query.limit,
    };
    let (items, position) = page(&filtered, &page_query)?;
    let items = items
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<Value>, _>>()?;
    Ok(Json(listing(items, position)).into_response())
}

fn apply_key_patch(key: &mut ApiKey, op: &PatchOperation) -> RestResult<()> {
    let segments = op.segments();
    let simple = as_strs(&segments);
    match (op.kind()?, simple.as_slice()) {
        (PatchOp::Replace, ["name"]) => key.name = op.value()?.to_string(),
        (PatchOp::Replace, ["description"]) => key.description = op.value.clone(),
        (PatchOp::Replace, ["enabled"]) => key.enabled = op.bool_value()?,
        (PatchOp::Replace, ["customerId"]) => key.customer_id = op.value.clone(),
        _ => return Err(op.unsupported()),
    }
    Ok(())
}

pub async fn update_api_key(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path(key_id): Path<String>,
    RestJson(request): RestJson<PatchRequest>,
) -> RestResult<Response> {
    let now = now_epoch();
    let mut key = mutate(
        &service,
        api_key_key(&caller, &key_id),
        api_key_not_found(),
        move |key: &mut ApiKey| {
            for op in &request.patch_operations {
                apply_key_patch(key, op)?;
            }
            key.last_updated_date = now;
            Ok(key.clone())
        },
    )
    .await?;
    service
        .refresh_keys(&caller.account_id, &caller.region)
        .await;
    key.value = None;
    json_answer(StatusCode::OK, &key)
}

pub async fn delete_api_key(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path(key_id): Path<String>,
) -> RestResult<Response> {
    if !service
        .store
        .delete_document(&api_key_key(&caller, &key_id))
        .await?
    {
        return Err(api_key_not_found());
    }
    // The key leaves every plan it was in.
    let plans: Vec<(String, UsagePlanRecord)> =
        list_owned(&service, &caller, KIND_USAGE_PLAN, "").await?;
    for (plan_id, plan) in plans {
        if plan.key_ids.contains(&key_id) {
            let removed = key_id.clone();
            mutate(
                &service,
                usage_plan_key(&caller, &plan_id),
                usage_plan_not_found(&plan_id),
                move |plan: &mut UsagePlanRecord| {
                    plan.key_ids.retain(|k| *k != removed);
                    Ok(())
                },
            )
            .await?;
        }
    }
    forget_quota_use(&service, &caller, |_, key| key == key_id).await?;
    service
        .refresh_keys(&caller.account_id, &caller.region)
        .await;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Drops the quota counts of (plan, key) pairs that no longer exist.
async fn forget_quota_use(
    service: &RestApiService,
    caller: &Caller,
    gone: impl Fn(&str, &str) -> bool,
) -> RestResult<()> {
    let doomed: Vec<(String, String)> = service
        .live
        .quota_used
        .iter()
        .filter(|entry| {
            entry.value().account == caller.account_id
                && entry.value().region == caller.region
                && gone(&entry.key().0, &entry.key().1)
        })
        .map(|entry| entry.key().clone())
        .collect();
    for (plan_id, key_id) in doomed {
        service
            .live
            .quota_used
            .remove(&(plan_id.clone(), key_id.clone()));
        service
            .store
            .delete_document(&DocumentKey::new(
                &caller.account_id,
                &caller.region,
                KIND_QUOTA_USAGE,
                format!("{plan_id}/{key_id}"),
            ))
            .await?;
    }
    Ok(())
}

// ---- Usage plans ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateUsagePlanRequest {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    api_stages: Vec<ApiStage>,
    throttle: Option<ThrottleSettings>,
    quota: Option<QuotaSettings>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn check_quota(quota: &QuotaSettings) -> RestResult<()> {
    if let Some(period) = quota.period.as_deref() {
        if !matches!(period, "DAY" | "WEEK" | "MONTH") {
            return Err(RestError::bad_request(format!(
                "Invalid quota period specified: {period}. Valid values are DAY, WEEK and MONTH"
            )));
        }
    }
    if quota.limit.is_some_and(|l| l < 0) {
        return Err(RestError::bad_request("Quota limit must be non-negative"));
    }
    Ok(())
}

fn check_throttle(throttle: &ThrottleSettings) -> RestResult<()> {
    if throttle.burst_limit.is_some_and(|b| b < 0)
        || throttle
            .rate_limit
            .is_some_and(|r| !(r >= 0.0 && r.is_finite()))
    {
        return Err(RestError::bad_request(
            "Throttling limits must be non-negative",
        ));
    }
    Ok(())
}

/// Every `apiStages` entry must name an existing stage of the account: of a
/// REST API, or of a WebSocket API (`apigatewayv2`; HTTP APIs have no keys).
async fn check_api_stages(
    service: &RestApiService,
    caller: &Caller,
    api_stages: &[ApiStage],
) -> RestResult<()> {
    for api_stage in api_stages {
        let api_id = api_stage.api_id.as_deref().unwrap_or_default();
        let stage = api_stage.stage.as_deref().unwrap_or_default();
        let exists = service
            .store
            .get_document(&DocumentKey::new(
                &caller.account_id,
                &caller.region,
                KIND_STAGE,
                format!("{api_id}/{stage}"),
            ))
            .await?
            .and_then(|doc| serde_json::from_value::<Stage>(doc).ok())
            .is_some()
            || websocket_stage_exists(service, caller, api_id, stage).await?;
        if !exists {
            return Err(RestError::bad_request(format!(
                "Invalid API Stage {{api: {api_id}, stage: {stage}}} specified for usageplan"
            )));
        }
    }
    Ok(())
}

async fn websocket_stage_exists(
    service: &RestApiService,
    caller: &Caller,
    api_id: &str,
    stage: &str,
) -> RestResult<bool> {
    use crate::http_api::model::{HttpApi, ProtocolType, HTTP_API_KIND};
    let api = service
        .store
        .get_document(&DocumentKey::new(
            &caller.account_id,
            &caller.region,
            HTTP_API_KIND,
            api_id,
        ))
        .await?
        .and_then(|doc| serde_json::from_value::<HttpApi>(doc).ok());
    Ok(api.is_some_and(|api| {
        api.protocol_type == ProtocolType::WebSocket && api.stages.contains_key(stage)
    }))
}

pub async fn create_usage_plan(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    RestJson(request): RestJson<CreateUsagePlanRequest>,
) -> RestResult<Response> {
    let name = request
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| RestError::bad_request("Invalid usage plan name specified"))?;
    let mut quota = request.quota;
    if let Some(quota) = &mut quota {
        check_quota(quota)?;
        quota.offset.get_or_insert(0);
    }
    if let Some(throttle) = &request.throttle {
        check_throttle(throttle)?;
    }
    check_api_stages(&service, &caller, &request.api_stages).await?;
    let plan = UsagePlan {
        id: new_id(6),
        name,
        description: request.description,
        api_stages: request.api_stages,
        throttle: request.throttle,
        quota,
        tags: request.tags,
    };
    let record = UsagePlanRecord {
        plan: plan.clone(),
        key_ids: Vec::new(),
    };
    service
        .store
        .insert_document(
            &usage_plan_key(&caller, &plan.id),
            &serde_json::to_value(&record)?,
        )
        .await?;
    service
        .refresh_keys(&caller.account_id, &caller.region)
        .await;
    json_answer(StatusCode::CREATED, &plan)
}

pub async fn get_usage_plan(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path(plan_id): Path<String>,
) -> RestResult<Response> {
    let record = load_plan(&service, &caller, &plan_id).await?;
    json_answer(StatusCode::OK, &record.plan)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetUsagePlansQuery {
    position: Option<String>,
    limit: Option<String>,
    key_id: Option<String>,
}

pub async fn get_usage_plans(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Query(query): Query<GetUsagePlansQuery>,
) -> RestResult<Response> {
    let all: Vec<(String, UsagePlanRecord)> =
        list_owned(&service, &caller, KIND_USAGE_PLAN, "").await?;
    let plans: Vec<(String, UsagePlan)> = all
        .into_iter()
        .filter(|(_, r)| query.key_id.as_ref().is_none_or(|k| r.key_ids.contains(k)))
        .map(|(id, r)| (id, r.plan))
        .collect();
    let page_query = PageQuery {
        position: query.position,
        limit: query.limit,
    };
    let (items, position) = page(&plans, &page_query)?;
    let items = items
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<Value>, _>>()?;
    Ok(Json(listing(items, position)).into_response())
}

/// `apiId:stage` as patch operations name an API stage.
fn parse_api_stage(op: &PatchOperation) -> RestResult<(String, String)> {
    let value = op.value()?;
    value
        .split_once(':')
        .map(|(api, stage)| (api.to_string(), stage.to_string()))
        .ok_or_else(|| {
            RestError::bad_request(format!(
                "Invalid API Stage specified: {value}. Expected apiId:stageName"
            ))
        })
}

fn apply_plan_patch(plan: &mut UsagePlan, op: &PatchOperation) -> RestResult<()> {
    let segments = op.segments();
    let simple = as_strs(&segments);
    let empty_throttle = || ThrottleSettings {
        burst_limit: None,
        rate_limit: None,
    };
    let empty_quota = || QuotaSettings {
        limit: None,
        offset: None,
        period: None,
    };
    match (op.kind()?, simple.as_slice()) {
        (PatchOp::Replace, ["name"]) => plan.name = op.value()?.to_string(),
        (PatchOp::Replace, ["description"]) => plan.description = op.value.clone(),
        (PatchOp::Replace | PatchOp::Add, ["throttle", "rateLimit"]) => {
            plan.throttle.get_or_insert_with(empty_throttle).rate_limit = Some(op.double_value()?)
        }
        (PatchOp::Replace | PatchOp::Add, ["throttle", "burstLimit"]) => {
            plan.throttle.get_or_insert_with(empty_throttle).burst_limit = Some(op.int_value()?)
        }
        (PatchOp::Remove, ["throttle"]) => plan.throttle = None,
        (PatchOp::Replace | PatchOp::Add, ["quota", "limit"]) => {
            plan.quota.get_or_insert_with(empty_quota).limit = Some(op.int_value()?)
        }
        (PatchOp::Replace | PatchOp::Add, ["quota", "offset"]) => {
            plan.quota.get_or_insert_with(empty_quota).offset = Some(op.int_value()?)
        }
        (PatchOp::Replace | PatchOp::Add, ["quota", "period"]) => {
            plan.quota.get_or_insert_with(empty_quota).period = Some(op.value()?.to_string())
        }
        (PatchOp::Remove, ["quota"]) => plan.quota = None,
        (PatchOp::Add, ["apiStages"]) => {
            let (api_id, stage) = parse_api_stage(op)?;
            let present = plan.api_stages.iter().any(|s| {
                s.api_id.as_deref() == Some(api_id.as_str())
                    && s.stage.as_deref() == Some(stage.as_str())
            });
            if !present {
                plan.api_stages.push(ApiStage {
                    api_id: Some(api_id),
                    stage: Some(stage),
                    throttle: BTreeMap::new(),
                });
            }
        }
        (PatchOp::Remove, ["apiStages"]) => {
            let (api_id, stage) = parse_api_stage(op)?;
            plan.api_stages.retain(|s| {
                !(s.api_id.as_deref() == Some(api_id.as_str())
                    && s.stage.as_deref() == Some(stage.as_str()))
            });
        }
        _ => return Err(op.unsupported()),
    }
    if let Some(quota) = &plan.quota {
        check_quota(quota)?;
    }
    if let Some(throttle) = &plan.throttle {
        check_throttle(throttle)?;
    }
    Ok(())
}

pub async fn update_usage_plan(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path(plan_id): Path<String>,
    RestJson(request): RestJson<PatchRequest>,
) -> RestResult<Response> {
    // Stages added must exist.
    let mut added = Vec::new();
    for op in &request.patch_operations {
        if op.op == "add" && op.path == "/apiStages" {
            let (api_id, stage) = parse_api_stage(op)?;
            added.push(ApiStage {
                api_id: Some(api_id),
                stage: Some(stage),
                throttle: BTreeMap::new(),
            });
        }
    }
    check_api_stages(&service, &caller, &added).await?;
    let plan = mutate(
        &service,
        usage_plan_key(&caller, &plan_id),
        usage_plan_not_found(&plan_id),
        move |record: &mut UsagePlanRecord| {
            for op in &request.patch_operations {
                apply_plan_patch(&mut record.plan, op)?;
            }
            Ok(record.plan.clone())
        },
    )
    .await?;
    service
        .refresh_keys(&caller.account_id, &caller.region)
        .await;
    json_answer(StatusCode::OK, &plan)
}

pub async fn delete_usage_plan(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path(plan_id): Path<String>,
) -> RestResult<Response> {
    if !service
        .store
        .delete_document(&usage_plan_key(&caller, &plan_id))
        .await?
    {
        return Err(usage_plan_not_found(&plan_id));
    }
    forget_quota_use(&service, &caller, |plan, _| plan == plan_id).await?;
    service
        .refresh_keys(&caller.account_id, &caller.region)
        .await;
    Ok(StatusCode::ACCEPTED.into_response())
}

// ---- Usage plan keys ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateUsagePlanKeyRequest {
    key_id: Option<String>,
    key_type: Option<String>,
}

fn plan_key_view(key: &ApiKey) -> UsagePlanKey {
    UsagePlanKey {
        id: key.id.clone(),
        key_type: "API_KEY".into(),
        value: key.value.clone(),
        name: key.name.clone(),
    }
}

pub async fn create_usage_plan_key(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path(plan_id): Path<String>,
    RestJson(request): RestJson<CreateUsagePlanKeyRequest>,
) -> RestResult<Response> {
    if request.key_type.as_deref() != Some("API_KEY") {
        return Err(RestError::bad_request(
            "Invalid key type specified. Valid value is API_KEY",
        ));
    }
    let key_id = request.key_id.unwrap_or_default();
    let key = load_key(&service, &caller, &key_id).await?;
    let added = key_id.clone();
    let plan_for_message = plan_id.clone();
    mutate(
        &service,
        usage_plan_key(&caller, &plan_id),
        usage_plan_not_found(&plan_id),
        move |record: &mut UsagePlanRecord| {
            if record.key_ids.contains(&added) {
                return Err(RestError::conflict(format!(
                    "Usage Plan {plan_for_message} cannot be added because API Key {added} cannot reference it more than once"
                )));
            }
            record.key_ids.push(added);
            Ok(())
        },
    )
    .await?;
    service
        .refresh_keys(&caller.account_id, &caller.region)
        .await;
    json_answer(StatusCode::CREATED, &plan_key_view(&key))
}

pub async fn get_usage_plan_keys(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path(plan_id): Path<String>,
    Query(query): Query<GetApiKeysQuery>,
) -> RestResult<Response> {
    let record = load_plan(&service, &caller, &plan_id).await?;
    let mut keys = Vec::new();
    for key_id in &record.key_ids {
        if let Ok(key) = load_key(&service, &caller, key_id).await {
            if query
                .name
                .as_deref()
                .is_none_or(|n| key.name.starts_with(n))
            {
                keys.push((key.id.clone(), plan_key_view(&key)));
            }
        }
    }
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    let page_query = PageQuery {
        position: query.position,
        limit: query.limit,
    };
    let (items, position) = page(&keys, &page_query)?;
    let items = items
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<Value>, _>>()?;
    Ok(Json(listing(items, position)).into_response())
}

pub async fn get_usage_plan_key(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path((plan_id, key_id)): Path<(String, String)>,
) -> RestResult<Response> {
    let record = load_plan(&service, &caller, &plan_id).await?;
    if !record.key_ids.contains(&key_id) {
        return Err(RestError::not_found(
            "Invalid Usage Plan Key identifier specified",
        ));
    }
    let key = load_key(&service, &caller, &key_id).await?;
    json_answer(StatusCode::OK, &plan_key_view(&key))
}

pub async fn delete_usage_plan_key(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path((plan_id, key_id)): Path<(String, String)>,
) -> RestResult<Response> {
    mutate(
        &service,
        usage_plan_key(&caller, &plan_id),
        usage_plan_not_found(&plan_id),
        move |record: &mut UsagePlanRecord| {
            if !record.key_ids.contains(&key_id) {
                return Err(RestError::not_found(
                    "Invalid Usage Plan Key identifier specified",
                ));
            }
            record.key_ids.retain(|k| *k != key_id);
            Ok(())
        },
    )
    .await?;
    service
        .refresh_keys(&caller.account_id, &caller.region)
        .await;
    Ok(StatusCode::ACCEPTED.into_response())
}
