//! Deployments: snapshots of the API's configuration that stages serve.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{answer, load, mutate, not_found, page, PageQuery, Service};
use crate::extract::{Authenticated, RestJson};
use crate::http_api::model::{new_id, timestamp_now, Deployment};
use crate::rest_api::error::{RestError, RestResult};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentInput {
    description: Option<String>,
    stage_name: Option<String>,
}

pub async fn create_deployment(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path(api_id): Path<String>,
    RestJson(input): RestJson<DeploymentInput>,
) -> RestResult<Response> {
    let (_, deployment) = mutate(&svc, &caller, &api_id, move |api| {
        if let Some(stage_name) = &input.stage_name {
            let stage = api.stages.get(stage_name).ok_or_else(|| {
                RestError::bad_request(format!("Stage {stage_name} does not exist for this API"))
            })?;
            if stage.auto_deploy {
                return Err(RestError::bad_request(format!(
                    "Stage {stage_name} has autoDeploy enabled; deployments are made automatically"
                )));
            }
        }
        let deployment = Deployment {
            deployment_id: new_id(6),
            auto_deployed: false,
            created_date: timestamp_now(),
            description: input.description,
            snapshot: api.snapshot(),
        };
        if let Some(stage) = input
            .stage_name
            .as_ref()
            .and_then(|name| api.stages.get_mut(name))
        {
            stage.deployment_id = Some(deployment.deployment_id.clone());
            stage.last_updated_date = timestamp_now();
            stage.last_deployment_status_message = Some(format!(
                "Successfully deployed stage with deployment ID '{}'",
                deployment.deployment_id
            ));
        }
        api.deployments
            .insert(deployment.deployment_id.clone(), deployment.clone());
        Ok(deployment)
    })
    .await?;
    Ok(answer(StatusCode::CREATED, deployment.to_wire()))
}

pub async fn get_deployments(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path(api_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> RestResult<Response> {
    let api = load(&svc, &caller, &api_id).await?;
    let items = api
        .deployments
        .iter()
        .map(|(id, d)| (id.clone(), d.to_wire()))
        .collect();
    Ok(answer(StatusCode::OK, page(items, &query)?))
}

pub async fn get_deployment(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, deployment_id)): Path<(String, String)>,
) -> RestResult<Response> {
    let api = load(&svc, &caller, &api_id).await?;
    let d = api
        .deployments
        .get(&deployment_id)
        .ok_or_else(|| not_found("Deployment", &caller, &deployment_id))?;
    Ok(answer(StatusCode::OK, d.to_wire()))
}

pub async fn delete_deployment(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, deployment_id)): Path<(String, String)>,
) -> RestResult<Response> {
    let missing = not_found("Deployment", &caller, &deployment_id);
    mutate(&svc, &caller, &api_id, move |api| {
        if api
            .stages
            .values()
            .any(|s| s.deployment_id.as_deref() == Some(deployment_id.as_str()))
        {
            return Err(RestError::bad_request(format!(
                "Deployment {deployment_id} is in use by a stage and cannot be deleted"
            )));
        }
        api.deployments
            .remove(&deployment_id)
            .map(|_| ())
            .ok_or(missing)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
