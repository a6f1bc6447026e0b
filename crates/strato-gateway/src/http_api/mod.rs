//! HTTP and WebSocket APIs (`aws apigatewayv2 ...`): the control plane
//! ([`control`]) and the data planes ([`dataplane`], [`crate::websocket`])
//! that serve deployed stages from the in-memory [`live::LiveIndex`],
//! rebuilt for an API after every control-plane write and loaded whole at
//! start.

pub mod control;
pub mod dataplane;
pub mod live;
pub mod model;

use crate::public_url::PublicUrls;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use strato_sigv4::CredentialLookup;
use strato_store::Store;

use crate::access_log::AccessLogWriter;
use crate::authorizer::jwt::JwksCache;
use crate::authorizer::DecisionCache;
use crate::http_backend::HttpBackend;
use crate::invoker::LambdaInvoker;
use crate::metrics::ApiMetricsSink;
use crate::rest_api::error::RestResult;
use control::children;
use control::responses;
use live::LiveIndex;
use model::{
    Authorizer, Deployment, HttpApi, Integration, IntegrationResponse, Route, RouteResponse, Stage,
    HTTP_API_KIND,
};

/// What HTTP API handlers and the data plane share.
pub struct HttpApiService {
    pub store: Arc<dyn Store>,
    pub invoker: Arc<dyn LambdaInvoker>,
    pub http: HttpBackend,
    pub live: LiveIndex,
    pub access_logs: AccessLogWriter,
    pub metrics: Arc<dyn ApiMetricsSink>,
    pub jwks: JwksCache,
    pub decisions: DecisionCache,
    /// Access keys, for routes with `AWS_IAM` authorization.
    pub credentials: Arc<dyn CredentialLookup + Send + Sync>,
    /// What an `AWS_IAM` route's signer may do (`execute-api:Invoke`), when
    /// IAM is enforced.
    pub iam: Arc<strato_iam::Iam>,
    /// How the `ApiEndpoint`s handed out are formed.
    pub public_urls: PublicUrls,
    /// WebSocket APIs' open connections.
    pub websocket: crate::websocket::Hub,
}

impl HttpApiService {
    /// Loads every HTTP API into the live index.
    // Each argument is a separate seam the server wires in.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        store: Arc<dyn Store>,
        invoker: Arc<dyn LambdaInvoker>,
        http: HttpBackend,
        access_logs: AccessLogWriter,
        metrics: Arc<dyn ApiMetricsSink>,
        credentials: Arc<dyn CredentialLookup + Send + Sync>,
        public_urls: PublicUrls,
        websocket_limits: crate::websocket::Limits,
        iam: Arc<strato_iam::Iam>,
    ) -> RestResult<Arc<HttpApiService>> {
        let jwks_client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .map_err(|e| {
                crate::rest_api::error::RestError::new(
                    crate::rest_api::error::RestErrorCode::ServiceUnavailableException,
                    e.to_string(),
                )
            })?;
        let service = Arc::new(HttpApiService {
            store,
            invoker,
            http,
            live: LiveIndex::default(),
            access_logs,
            metrics,
            jwks: JwksCache::new(jwks_client),
            decisions: DecisionCache::default(),
            credentials,
            iam,
            public_urls,
            websocket: crate::websocket::Hub::new(websocket_limits),
        });
        for document in service.store.list_all_documents(HTTP_API_KIND).await? {
            match serde_json::from_value::<HttpApi>(document.doc) {
                Ok(api) => service.live.publish(&api),
                Err(e) => {
                    tracing::warn!(id = %document.key.id, error = %e, "unreadable HTTP API document")
                }
            }
        }
        Ok(service)
    }

    /// True when `api_id` names an HTTP API (the data-plane dispatch asks).
    pub fn serves(&self, api_id: &str) -> bool {
        self.live.apis.contains_key(api_id)
    }
}

/// The control-plane routes; mount them inside the SigV4-authenticated
/// router (handlers take the caller with [`crate::extract::Authenticated`]).
pub fn control_routes<S: Clone + Send + Sync + 'static>(service: Arc<HttpApiService>) -> Router<S> {
    Router::new()
        .route("/v2/apis", post(control::create_api).get(control::get_apis))
        .route(
            "/v2/apis/{api_id}",
            get(control::get_api)
                .patch(control::update_api)
                .delete(control::delete_api),
        )
        .route(
            "/v2/apis/{api_id}/cors",
            axum::routing::delete(control::delete_cors_configuration),
        )
        .route(
            "/v2/apis/{api_id}/routes/{route_id}/requestparameters/{key}",
            axum::routing::delete(control::delete_route_request_parameter),
        )
        .route(
            "/v2/apis/{api_id}/stages/{stage_name}/routesettings/{route_key}",
            axum::routing::delete(control::delete_route_settings),
        )
        .route(
            "/v2/apis/{api_id}/stages/{stage_name}/accesslogsettings",
            axum::routing::delete(control::delete_access_log_settings),
        )
        .route(
            "/v2/apis/{api_id}/routes",
            post(control::create_route).get(children::list::<Route>),
        )
        .route(
            "/v2/apis/{api_id}/routes/{route_id}",
            get(children::get::<Route>)
                .patch(control::update_route)
                .delete(children::delete::<Route>),
        )
        .route(
            "/v2/apis/{api_id}/routes/{route_id}/routeresponses",
            post(control::create_route_response).get(responses::list::<RouteResponse>),
        )
        .route(
            "/v2/apis/{api_id}/routes/{route_id}/routeresponses/{route_response_id}",
            get(responses::get::<RouteResponse>)
                .patch(control::update_route_response)
                .delete(responses::delete::<RouteResponse>),
        )
        .route(
            "/v2/apis/{api_id}/integrations/{integration_id}/integrationresponses",
            post(control::create_integration_response)
                .get(responses::list::<IntegrationResponse>),
        )
        .route(
            "/v2/apis/{api_id}/integrations/{integration_id}/integrationresponses/{integration_response_id}",
            get(responses::get::<IntegrationResponse>)
                .patch(control::update_integration_response)
                .delete(responses::delete::<IntegrationResponse>),
        )
        .route(
            "/v2/apis/{api_id}/integrations",
            post(control::create_integration).get(children::list::<Integration>),
        )
        .route(
            "/v2/apis/{api_id}/integrations/{integration_id}",
            get(children::get::<Integration>)
                .patch(control::update_integration)
                .delete(children::delete::<Integration>),
        )
        .route(
            "/v2/apis/{api_id}/authorizers",
            post(control::create_authorizer).get(children::list::<Authorizer>),
        )
        .route(
            "/v2/apis/{api_id}/authorizers/{authorizer_id}",
            get(children::get::<Authorizer>)
                .patch(control::update_authorizer)
                .delete(children::delete::<Authorizer>),
        )
        .route(
            "/v2/apis/{api_id}/stages",
            post(control::create_stage).get(children::list::<Stage>),
        )
        .route(
            "/v2/apis/{api_id}/stages/{stage_name}",
            get(children::get::<Stage>)
                .patch(control::update_stage)
                .delete(children::delete::<Stage>),
        )
        .route(
            "/v2/apis/{api_id}/deployments",
            post(control::create_deployment).get(children::list::<Deployment>),
        )
        .route(
            "/v2/apis/{api_id}/deployments/{deployment_id}",
            get(children::get::<Deployment>).delete(children::delete::<Deployment>),
        )
        .with_state(service)
}
