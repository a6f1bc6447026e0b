//! The `apigatewayv2` control plane for HTTP APIs: APIs (with quick create),
//! routes, integrations, authorizers, stages and deployments, at AWS's
//! `/v2/apis...` paths with its camelCase JSON.

mod apis;
mod authorizers;
pub mod children;
mod deployments;
mod integrations;
pub mod responses;
mod routes;
mod stages;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use strato_model::Caller;
use strato_store::{DocumentKey, StoreExt};

use super::model::{new_id, timestamp_now, Deployment, HttpApi, Stage, HTTP_API_KIND};
use super::HttpApiService;
use crate::paging;
use crate::rest_api::error::{RestError, RestResult};

pub use apis::{
    create_api, delete_api, delete_cors_configuration, get_api, get_apis, update_api, ApiInput,
};
pub use authorizers::{create_authorizer, update_authorizer, AuthorizerInput};
pub use deployments::{create_deployment, DeploymentInput};
pub use integrations::{create_integration, update_integration, IntegrationInput};
pub use responses::{
    create_integration_response, create_route_response, update_integration_response,
    update_route_response, IntegrationResponseInput, RouteResponseInput,
};
pub use routes::{create_route, delete_route_request_parameter, update_route, RouteInput};
pub use stages::{
    create_stage, delete_access_log_settings, delete_route_settings, update_stage, StageInput,
};

type Service = State<Arc<HttpApiService>>;

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn to_value(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn doc_key(caller: &Caller, api_id: &str) -> DocumentKey {
    DocumentKey::new(&caller.account_id, &caller.region, HTTP_API_KIND, api_id)
}

fn api_not_found(caller: &Caller, api_id: &str) -> RestError {
    RestError::not_found(format!(
        "Invalid API identifier specified {}:{api_id}",
        caller.account_id
    ))
}

fn not_found(what: &str, caller: &Caller, id: &str) -> RestError {
    RestError::not_found(format!(
        "Invalid {what} identifier specified {}:{id}",
        caller.account_id
    ))
}

async fn load(svc: &HttpApiService, caller: &Caller, api_id: &str) -> RestResult<HttpApi> {
    let doc = svc
        .store
        .get_document(&doc_key(caller, api_id))
        .await?
        .ok_or_else(|| api_not_found(caller, api_id))?;
    Ok(serde_json::from_value(doc)?)
}

/// Applies `change` to the API atomically, redeploys auto-deploy stages
/// when routes, integrations, authorizers or CORS changed, and publishes
/// the result to the data plane.
async fn mutate<R, F>(
    svc: &HttpApiService,
    caller: &Caller,
    api_id: &str,
    change: F,
) -> RestResult<(HttpApi, R)>
where
    R: Send + 'static,
    F: FnOnce(&mut HttpApi) -> RestResult<R> + Send + 'static,
{
    let missing = api_not_found(caller, api_id);
    let (api, out) = svc
        .store
        .update_typed(&doc_key(caller, api_id), move |current: Option<HttpApi>| {
            let mut api = current.ok_or(missing)?;
            let before = api.snapshot();
            let out = change(&mut api)?;
            if api.snapshot() != before {
                auto_deploy(&mut api);
            }
            Ok::<_, RestError>((Some(api.clone()), (api, out)))
        })
        .await?;
    svc.live.publish(&api);
    Ok((api, out))
}

/// A new deployment for every stage with `autoDeploy`.
fn auto_deploy(api: &mut HttpApi) {
    if !api.stages.values().any(|s| s.auto_deploy) {
        return;
    }
    let deployment = automatic_deployment(api);
    for stage in api.stages.values_mut().filter(|s| s.auto_deploy) {
        serve_deployment(stage, &deployment.deployment_id);
    }
    api.deployments
        .insert(deployment.deployment_id.clone(), deployment);
}

/// A deployment of the API as it is now, made by auto-deploy.
fn automatic_deployment(api: &HttpApi) -> Deployment {
    Deployment {
        deployment_id: new_id(6),
        auto_deployed: true,
        created_date: timestamp_now(),
        description: Some(
            "Automatic deployment triggered by changes to the Api configuration".into(),
        ),
        snapshot: api.snapshot(),
    }
}

/// Points a stage at a deployment, with the status message AWS reports.
fn serve_deployment(stage: &mut Stage, deployment_id: &str) {
    stage.deployment_id = Some(deployment_id.to_string());
    stage.last_updated_date = timestamp_now();
    stage.last_deployment_status_message = Some(format!(
        "Successfully deployed stage with deployment ID '{deployment_id}'"
    ));
}

/// PATCH semantics: a member the request names replaces the stored one.
fn patch<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    max_results: Option<String>,
    next_token: Option<String>,
}

/// A page of `items` (ordered by id) and the `nextToken` of the next one.
fn page(items: Vec<(String, Value)>, query: &PageQuery) -> RestResult<Value> {
    let size = paging::page_size(
        query.max_results.as_deref(),
        paging::MAX_PAGE_SIZE,
        "maxResults must be between 1 and 500",
    )?;
    let (taken, next) = paging::page_after(&items, query.next_token.as_deref(), size);
    let mut body = serde_json::Map::new();
    body.insert("items".into(), Value::Array(taken));
    if let Some(next) = next {
        body.insert("nextToken".into(), next.into());
    }
    Ok(Value::Object(body))
}

/// `{"message": ...}` for an unknown path under `/v2/apis`.
pub fn unknown() -> Response {
    answer(
        StatusCode::NOT_FOUND,
        json!({"message": "The requested resource was not found"}),
    )
}
