//! REST APIs (`aws apigateway ...`): the control plane (`/restapis`,
//! resources, methods, integrations, deployments, stages, `/apikeys`,
//! `/usageplans`) and the data plane that serves deployed stages.
//!
//! Every resource is a store document ([`model`] names the kinds); the data
//! plane reads only [`live::LiveIndex`], rebuilt for an API (or an account's
//! keys and plans) after every control-plane write and loaded whole at start.

pub mod apis;
pub mod dataplane;
pub mod error;
pub mod keys;
pub mod live;
pub mod model;
pub mod patch;
pub mod stages;
pub mod tags;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use strato_model::Caller;
use strato_sigv4::CredentialLookup;
use strato_store::{Store, StoreExt};

use crate::access_log::AccessLogWriter;
use crate::http_backend::HttpBackend;
use crate::invoker::LambdaInvoker;
use crate::metrics::ApiMetricsSink;
use crate::paging;
use error::RestResult;
use live::LiveIndex;

/// What REST API handlers and the data plane share.
pub struct RestApiService {
    pub store: Arc<dyn Store>,
    pub invoker: Arc<dyn LambdaInvoker>,
    pub http: HttpBackend,
    pub live: LiveIndex,
    /// Stages' access logs (`AccessLogSettings`), into the logs service.
    pub access_logs: AccessLogWriter,
    pub metrics: Arc<dyn ApiMetricsSink>,
    /// Access keys, for methods with `AWS_IAM` authorization.
    pub credentials: Arc<dyn CredentialLookup + Send + Sync>,
    /// What an `AWS_IAM` method's signer may do (`execute-api:Invoke`),
    /// when IAM is enforced.
    pub iam: Arc<strato_iam::Iam>,
}

impl RestApiService {
    /// Loads every REST API, stage, key and plan into the live index.
    pub async fn start(
        store: Arc<dyn Store>,
        invoker: Arc<dyn LambdaInvoker>,
        http: HttpBackend,
        access_logs: AccessLogWriter,
        metrics: Arc<dyn ApiMetricsSink>,
        credentials: Arc<dyn CredentialLookup + Send + Sync>,
        iam: Arc<strato_iam::Iam>,
    ) -> RestResult<Arc<RestApiService>> {
        let service = Arc::new(RestApiService {
            store,
            invoker,
            http,
            live: LiveIndex::default(),
            access_logs,
            metrics,
            credentials,
            iam,
        });
        live::load_all(&service).await?;
        let weak = Arc::downgrade(&service);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(live::QUOTA_FLUSH_INTERVAL);
            loop {
                tick.tick().await;
                let Some(service) = weak.upgrade() else {
                    return;
                };
                service.flush_quota_usage().await;
            }
        });
        Ok(service)
    }

    /// True when `api_id` names a REST API (the data-plane dispatch asks).
    pub fn serves(&self, api_id: &str) -> bool {
        self.live.apis.contains_key(api_id)
    }
}

/// The control-plane routes; mount them inside the SigV4-authenticated
/// router (handlers take the caller with [`crate::extract::Authenticated`]).
pub fn control_routes<S: Clone + Send + Sync + 'static>(service: Arc<RestApiService>) -> Router<S> {
    Router::new()
        .route("/restapis", post(apis::create_rest_api).get(apis::get_rest_apis))
        .route(
            "/restapis/{restapi_id}",
            get(apis::get_rest_api)
                .patch(apis::update_rest_api)
                .delete(apis::delete_rest_api),
        )
        .route("/restapis/{restapi_id}/resources", get(apis::get_resources))
        .route(
            "/restapis/{restapi_id}/resources/{resource_id}",
            get(apis::get_resource)
                .post(apis::create_resource)
                .delete(apis::delete_resource),
        )
        .route(
            "/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}",
            get(apis::get_method)
                .put(apis::put_method)
                .patch(apis::update_method)
                .delete(apis::delete_method),
        )
        .route(
            "/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/responses/{status_code}",
            get(apis::get_method_response)
                .put(apis::put_method_response)
                .delete(apis::delete_method_response),
        )
        .route(
            "/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/integration",
            get(apis::get_integration)
                .put(apis::put_integration)
                .patch(apis::update_integration)
                .delete(apis::delete_integration),
        )
        .route(
            "/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/integration/responses/{status_code}",
            get(apis::get_integration_response)
                .put(apis::put_integration_response)
                .delete(apis::delete_integration_response),
        )
        .route(
            "/restapis/{restapi_id}/deployments",
            post(stages::create_deployment).get(stages::get_deployments),
        )
        .route(
            "/restapis/{restapi_id}/deployments/{deployment_id}",
            get(stages::get_deployment).delete(stages::delete_deployment),
        )
        .route(
            "/restapis/{restapi_id}/stages",
            post(stages::create_stage).get(stages::get_stages),
        )
        .route(
            "/restapis/{restapi_id}/stages/{stage_name}",
            get(stages::get_stage)
                .patch(stages::update_stage)
                .delete(stages::delete_stage),
        )
        .route("/apikeys", post(keys::create_api_key).get(keys::get_api_keys))
        .route(
            "/apikeys/{api_key}",
            get(keys::get_api_key)
                .patch(keys::update_api_key)
                .delete(keys::delete_api_key),
        )
        .route(
            "/usageplans",
            post(keys::create_usage_plan).get(keys::get_usage_plans),
        )
        .route(
            "/usageplans/{usage_plan_id}",
            get(keys::get_usage_plan)
                .patch(keys::update_usage_plan)
                .delete(keys::delete_usage_plan),
        )
        .route(
            "/usageplans/{usage_plan_id}/keys",
            post(keys::create_usage_plan_key).get(keys::get_usage_plan_keys),
        )
        .route(
            "/usageplans/{usage_plan_id}/keys/{key_id}",
            get(keys::get_usage_plan_key).delete(keys::delete_usage_plan_key),
        )
        .route(
            "/tags/{resource_arn}",
            get(tags::get_tags)
                .put(tags::tag_resource)
                .delete(tags::untag_resource),
        )
        .with_state(service)
}

const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A random id of lowercase letters and digits, as API Gateway makes them
/// (10 characters for APIs, resources and keys; 6 for deployments and plans).
pub fn new_id(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char)
        .collect()
}

/// An API key's secret value: 40 letters and digits.
pub fn new_key_value() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..40)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `position` and `limit` of the Get* listings.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub position: Option<String>,
    pub limit: Option<String>,
}

impl PageQuery {
    /// AWS's default page is 25 items; at most 500.
    pub fn limit(&self) -> RestResult<usize> {
        paging::page_size(
            self.limit.as_deref(),
            25,
            "Invalid limit: must be between 1 and 500",
        )
    }
}

/// One page of `items` (already ordered by id) after `position`.
pub fn page<T: Clone>(
    items: &[(String, T)],
    query: &PageQuery,
) -> RestResult<(Vec<T>, Option<String>)> {
    Ok(paging::page_after(
        items,
        query.position.as_deref(),
        query.limit()?,
    ))
}

/// The `{"item": [...], "position": ...}` answer of a listing.
pub fn listing(items: Vec<serde_json::Value>, position: Option<String>) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    if let Some(position) = position {
        body.insert("position".into(), position.into());
    }
    body.insert("item".into(), serde_json::Value::Array(items));
    serde_json::Value::Object(body)
}

/// Every document of a kind in the caller's account and region whose id
/// starts with `prefix`, typed.
pub async fn list_owned<T: DeserializeOwned + Send>(
    service: &RestApiService,
    caller: &Caller,
    kind: &str,
    prefix: &str,
) -> RestResult<Vec<(String, T)>> {
    let store = service.store.as_ref();
    Ok(store
        .list_typed(&caller.account_id, &caller.region, kind, prefix)
        .await?)
}
