//! Deployments: snapshots of the API's configuration that stages serve.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::children::Child;
use super::{answer, mutate, serve_deployment};
use crate::extract::{ApiRequest, RestJson};
use crate::http_api::model::{new_id, timestamp_now, Deployment, HttpApi};
use crate::http_api::HttpApiService;
use crate::rest_api::error::{RestError, RestResult};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentInput {
    description: Option<String>,
    stage_name: Option<String>,
}

pub async fn create_deployment(
    on: ApiRequest<HttpApiService>,
    RestJson(input): RestJson<DeploymentInput>,
) -> RestResult<Response> {
    let (_, deployment) = mutate(&on.service, &on.caller, &on.api_id, move |api| {
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
            serve_deployment(stage, &deployment.deployment_id);
        }
        api.deployments
            .insert(deployment.deployment_id.clone(), deployment.clone());
        Ok(deployment)
    })
    .await?;
    Ok(answer(StatusCode::CREATED, deployment.to_wire()))
}

impl Child for Deployment {
    const KIND: &'static str = "Deployment";

    fn collection(api: &HttpApi) -> &BTreeMap<String, Self> {
        &api.deployments
    }

    fn collection_mut(api: &mut HttpApi) -> &mut BTreeMap<String, Self> {
        &mut api.deployments
    }

    fn to_wire(&self) -> Value {
        Deployment::to_wire(self)
    }

    fn check_unreferenced(api: &HttpApi, id: &str) -> RestResult<()> {
        if api
            .stages
            .values()
            .any(|s| s.deployment_id.as_deref() == Some(id))
        {
            return Err(RestError::bad_request(format!(
                "Deployment {id} is in use by a stage and cannot be deleted"
            )));
        }
        Ok(())
    }
}
