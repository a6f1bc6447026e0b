//! Stages: their settings (route settings, stage variables, access logs)
//! and auto-deploy.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::children::{self, Child};
use super::{
    answer, automatic_deployment, mutate, not_found, patch, serve_deployment, to_value, Service,
};
use crate::extract::{ApiRequest, Authenticated, ChildRequest, RestJson};
use crate::http_api::model::{timestamp_now, AccessLogSettings, HttpApi, RouteSettings, Stage};
use crate::http_api::HttpApiService;
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

impl Child for Stage {
    /// AWS words a missing stage in lower case.
    const KIND: &'static str = "stage";

    fn collection(api: &HttpApi) -> &BTreeMap<String, Self> {
        &api.stages
    }

    fn collection_mut(api: &mut HttpApi) -> &mut BTreeMap<String, Self> {
        &mut api.stages
    }

    fn to_wire(&self) -> Value {
        let mut out = to_value(self);
        if let Value::Object(map) = &mut out {
            if self.access_log_settings.is_none() {
                map.remove("accessLogSettings");
            }
        }
        out
    }
}

pub async fn create_stage(
    on: ApiRequest<HttpApiService>,
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
    let (_, stage) = mutate(&on.service, &on.caller, &on.api_id, move |api| {
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
        let mut stage = stage;
        if stage.auto_deploy {
            deploy_now(api, &mut stage);
        }
        api.stages.insert(stage.stage_name.clone(), stage.clone());
        Ok(stage)
    })
    .await?;
    Ok(answer(StatusCode::CREATED, stage.to_wire()))
}

/// Deploys the current configuration to one stage (a new auto-deploy stage
/// serves what the API has at once).
fn deploy_now(api: &mut HttpApi, stage: &mut Stage) {
    let deployment = automatic_deployment(api);
    serve_deployment(stage, &deployment.deployment_id);
    api.deployments
        .insert(deployment.deployment_id.clone(), deployment);
}

pub async fn update_stage(
    on: ChildRequest<HttpApiService>,
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
    children::update(on, move |api, mut stage: Stage| {
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
        patch(&mut stage.description, input.description.map(Some));
        patch(
            &mut stage.default_route_settings,
            input.default_route_settings,
        );
        patch(&mut stage.route_settings, input.route_settings);
        patch(&mut stage.stage_variables, input.stage_variables);
        patch(
            &mut stage.access_log_settings,
            input.access_log_settings.map(Some),
        );
        stage.last_updated_date = timestamp_now();
        if redeploy {
            deploy_now(api, &mut stage);
        }
        Ok(stage)
    })
    .await
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

pub async fn delete_access_log_settings(on: ChildRequest<HttpApiService>) -> RestResult<Response> {
    let missing = not_found("stage", &on.caller, &on.id);
    let stage_name = on.id;
    mutate(&on.service, &on.caller, &on.api_id, move |api| {
        let stage = api.stages.get_mut(&stage_name).ok_or(missing)?;
        stage.access_log_settings = None;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
