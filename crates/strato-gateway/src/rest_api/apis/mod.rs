//! REST APIs and their resource trees: CreateRestApi, Get/Update/Delete,
//! resources, methods, method responses, integrations and integration
//! responses. A REST API is one store document; every change is one atomic
//! `update_document`.

mod integrations;
mod methods;
mod resources;
mod rest_apis;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use strato_model::Caller;
use strato_store::{DocumentKey, StoreExt};

use super::error::{RestError, RestResult};
use super::model::{RestApiRecord, KIND_REST_API};
use super::RestApiService;

pub use integrations::{
    delete_integration, delete_integration_response, get_integration, get_integration_response,
    put_integration, put_integration_response, update_integration,
};
pub use methods::{
    delete_method, delete_method_response, get_method, get_method_response, put_method,
    put_method_response, update_method,
};
pub use resources::{create_resource, delete_resource, get_resource, get_resources, EmbedQuery};
pub use rest_apis::{
    create_rest_api, delete_rest_api, get_rest_api, get_rest_apis, update_rest_api,
};

type Svc = State<Arc<RestApiService>>;

pub fn api_key(caller: &Caller, api_id: &str) -> DocumentKey {
    DocumentKey::new(&caller.account_id, &caller.region, KIND_REST_API, api_id)
}

pub fn api_not_found(caller: &Caller, api_id: &str) -> RestError {
    RestError::not_found(format!(
        "Invalid API identifier specified {}:{api_id}",
        caller.account_id
    ))
}

fn resource_not_found() -> RestError {
    RestError::not_found("Invalid Resource identifier specified")
}

fn method_not_found() -> RestError {
    RestError::not_found("Invalid Method identifier specified")
}

fn integration_not_found() -> RestError {
    RestError::not_found("Invalid Integration identifier specified")
}

fn response_not_found() -> RestError {
    RestError::not_found("Invalid Response status code specified")
}

pub async fn load_api(
    service: &RestApiService,
    caller: &Caller,
    api_id: &str,
) -> RestResult<RestApiRecord> {
    match service.store.get_document(&api_key(caller, api_id)).await? {
        Some(doc) => Ok(serde_json::from_value(doc)?),
        None => Err(api_not_found(caller, api_id)),
    }
}

/// Applies `change` to the stored API atomically and returns what it
/// returned.
pub async fn mutate_api<R, F>(
    service: &RestApiService,
    caller: &Caller,
    api_id: &str,
    change: F,
) -> RestResult<R>
where
    R: Send + 'static,
    F: FnOnce(&mut RestApiRecord) -> RestResult<R> + Send + 'static,
{
    let not_found = api_not_found(caller, api_id);
    service
        .store
        .update_typed(
            &api_key(caller, api_id),
            move |current: Option<RestApiRecord>| {
                let mut record = current.ok_or(not_found)?;
                let value = change(&mut record)?;
                Ok((Some(record), value))
            },
        )
        .await
}

fn json_answer(status: StatusCode, value: &impl serde::Serialize) -> RestResult<Response> {
    Ok((status, Json(serde_json::to_value(value)?)).into_response())
}
