//! Stages: their settings (route settings, stage variables, access logs)
//! and auto-deploy.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{answer, load, mutate, not_found, page, to_value, PageQuery, Service};
use crate::extract::{Authenticated, RestJson};
use crate::http_api::model::{
    new_id, timestamp_now, AccessLogSettings, Deployment, HttpApi, RouteSettings, Stage,
};
use crate::rest_api::error::{RestError, RestResult};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StageInput {
    stage_name: Option<String>,
    auto_deploy: Option<bool>,
    deployment_id: Option<String>,
    description: Option<String>,
    default_route_settings: Option<RouteSettings>,
    route_settings: Option<BTreeMap<String, RouteSettings>>,
    stage_variables: Option<BTreeMap<String, String>>,
    access_log_settings: Option<AccessLogSettings>,
    tags: Option<BTreeMap<String, String>>,
    client_certificate_id: Option<String>,
}

fn check_stage_name(name: &str) -> RestResult<()> {
    let valid = name == "$default"
        || (!name.is_empty()
            && name.len() <= 128
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    if valid {
        Ok(())
    } else {
        Err(RestError::bad_request(format!(
            "Stage name {name} is invalid: use letters, digits, '-' and '_', or $default"
        )))
    }
}

fn check_access_log(settings: &AccessLogSettings) -> RestResult<()> {
    if let Some(arn) = &settings.destination_arn {
        if crate::http_api::live::log_group_of(arn).is_none() {
            return Err(RestError::bad_request(format!(
                "Invalid ARN specified in the request. ARN must be a CloudWatch Logs log group ARN: {arn}"
            )));
        }
    }
    Ok(())
}

fn check_route_settings(settings: &RouteSettings) -> RestResult<()> {
    if settings.throttling_burst_limit.is_some_and(|b| b < 0)
        || settings
            .throttling_rate_limit
            .is_some_and(|r| !r.is_finite() || r < 0.0)
    {
        return Err(RestError::bad_request(
            "Throttling limits must not be negative",
        ));
    }
    Ok(())
}

fn stage_wire(stage: &Stage) -> Value {
    let mut out = to_value(stage);
    if let Value::Object(map) = &mut out {
        if stage.access_log_settings.is_none() {
            map.remove("accessLogSettings");
        }
    }
    out
}

pub async fn create_stage(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path(api_id): Path<String>,
    RestJson(input): RestJson<StageInput>,
) -> RestResult<Response> {
    if input.client_certificate_id.is_some() {
        return Err(RestError::bad_request(
            "Client certificates are not supported by Strato",
        ));
    }
    let stage_name = input
        .stage_name
        .ok_or_else(|| RestError::bad_request("StageName is required"))?;
    check_stage_name(&stage_name)?;
    if let Some(s) = &input.access_log_settings {
        check_access_log(s)?;
    }
    let defaults = input.default_route_settings.unwrap_or_default();
    check_route_settings(&defaults)?;
    let route_settings = input.route_settings.unwrap_or_default();
    for s in route_settings.values() {
        check_route_settings(s)?;
    }
    let now = timestamp_now();
    let stage = Stage {
        stage_name: stage_name.clone(),
        auto_deploy: input.auto_deploy.unwrap_or(false),
        deployment_id: input.deployment_id,
        description: input.description,
        created_date: now.clone(),
        last_updated_date: now,
        default_route_settings: defaults,
        route_settings,
        stage_variables: input.stage_variables.unwrap_or_default(),
        access_log_settings: input.access_log_settings,
        tags: input.tags.unwrap_or_default(),
        api_gateway_managed: false,
        last_deployment_status_message: None,
    };
    let (_, stage) = mutate(&svc, &caller, &api_id, move |api| {
        if api.stages.contains_key(&stage.stage_name) {
            return Err(RestError::conflict(format!(
                "Stage already exists: {}",
                stage.stage_name
            )));
        }
        if let Some(id) = &stage.deployment_id {
            if !api.deployments.contains_key(id) {
                return Err(RestError::bad_request(format!(
                    "Invalid deployment identifier specified: {id}"
                )));
            }
        }
        let auto = stage.auto_deploy;
        api.stages.insert(stage.stage_name.clone(), stage.clone());
        if auto {
            deploy_now(api, &stage.stage_name);
        }
        Ok(api.stages.get(&stage.stage_name).cloned().unwrap_or(stage))
    })
    .await?;
    Ok(answer(StatusCode::CREATED, stage_wire(&stage)))
}

/// Deploys the current configuration to one stage (a new auto-deploy stage
/// serves what the API has at once).
fn deploy_now(api: &mut HttpApi, stage_name: &str) {
    let deployment = Deployment {
        deployment_id: new_id(6),
        auto_deployed: true,
        created_date: timestamp_now(),
        description: Some(
            "Automatic deployment triggered by changes to the Api configuration".into(),
        ),
        snapshot: api.snapshot(),
    };
    if let Some(stage) = api.stages.get_mut(stage_name) {
        stage.deployment_id = Some(deployment.deployment_id.clone());
        stage.last_deployment_status_message = Some(format!(
            "Successfully deployed stage with deployment ID '{}'",
            deployment.deployment_id
        ));
    }
    api.deployments
        .insert(deployment.deployment_id.clone(), deployment);
}

pub async fn get_stages(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path(api_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> RestResult<Response> {
    let api = load(&svc, &caller, &api_id).await?;
    let items = api
        .stages
        .iter()
        .map(|(id, s)| (id.clone(), stage_wire(s)))
        .collect();
    Ok(answer(StatusCode::OK, page(items, &query)?))
}

pub async fn get_stage(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, stage_name)): Path<(String, String)>,
) -> RestResult<Response> {
    let api = load(&svc, &caller, &api_id).await?;
    let stage = api
        .stages
        .get(&stage_name)
        .ok_or_else(|| not_found("stage", &caller, &stage_name))?;
    Ok(answer(StatusCode::OK, stage_wire(stage)))
}

pub async fn update_stage(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, stage_name)): Path<(String, String)>,
    RestJson(input): RestJson<StageInput>,
) -> RestResult<Response> {
    if let Some(s) = &input.access_log_settings {
        check_access_log(s)?;
    }
    if let Some(s) = &input.default_route_settings {
        check_route_settings(s)?;
    }
    for s in input.route_settings.iter().flat_map(|m| m.values()) {
        check_route_settings(s)?;
    }
    let missing = not_found("stage", &caller, &stage_name);
    let (_, stage) = mutate(&svc, &caller, &api_id, move |api| {
        let mut stage = api.stages.get(&stage_name).cloned().ok_or(missing)?;
        let mut redeploy = false;
        if let Some(v) = input.auto_deploy {
            redeploy = v && !stage.auto_deploy;
            stage.auto_deploy = v;
        }
        if let Some(id) = input.deployment_id {
            if !api.deployments.contains_key(&id) {
                return Err(RestError::bad_request(format!(
                    "Invalid deployment identifier specified: {id}"
                )));
            }
            stage.deployment_id = Some(id);
        }
        if let Some(v) = input.description {
            stage.description = Some(v);
        }
        if let Some(v) = input.default_route_settings {
            stage.default_route_settings = v;
        }
        if let Some(v) = input.route_settings {
            stage.route_settings = v;
        }
        if let Some(v) = input.stage_variables {
            stage.stage_variables = v;
        }
        if let Some(v) = input.access_log_settings {
            stage.access_log_settings = Some(v);
        }
        stage.last_updated_date = timestamp_now();
        api.stages.insert(stage_name.clone(), stage);
        if redeploy {
            deploy_now(api, &stage_name);
        }
        api.stages
            .get(&stage_name)
            .cloned()
            .ok_or_else(|| RestError::bad_request("stage vanished"))
    })
    .await?;
    Ok(answer(StatusCode::OK, stage_wire(&stage)))
}

pub async fn delete_stage(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, stage_name)): Path<(String, String)>,
) -> RestResult<Response> {
    let missing = not_found("stage", &caller, &stage_name);
    mutate(&svc, &caller, &api_id, move |api| {
        api.stages.remove(&stage_name).map(|_| ()).ok_or(missing)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn delete_route_settings(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, stage_name, route_key)): Path<(String, String, String)>,
) -> RestResult<Response> {
    let missing_stage = not_found("stage", &caller, &stage_name);
    let missing_key = RestError::not_found(format!(
        "Unable to find Route by key {route_key} within the provided RouteSettings"
    ));
    mutate(&svc, &caller, &api_id, move |api| {
        let stage = api.stages.get_mut(&stage_name).ok_or(missing_stage)?;
        stage
            .route_settings
            .remove(&route_key)
            .map(|_| ())
            .ok_or(missing_key)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn delete_access_log_settings(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, stage_name)): Path<(String, String)>,
) -> RestResult<Response> {
    let missing = not_found("stage", &caller, &stage_name);
    mutate(&svc, &caller, &api_id, move |api| {
        let stage = api.stages.get_mut(&stage_name).ok_or(missing)?;
        stage.access_log_settings = None;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
