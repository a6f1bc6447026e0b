//! Strato's AWS-compatible HTTP front end.
//!
//! One router serves every AWS service Strato implements on one port. API
//! Gateway and function URL traffic (host-style `*.execute-api.localhost`,
//! `*.lambda-url.*.localhost`, or path-style under `/_strato/`) is diverted
//! to the gateway's data plane first. Every other request is authenticated
//! with SigV4 ([`auth`]) and dispatched: REST-JSON services by path
//! (Lambda's date-prefixed paths in [`lambda`], API Gateway's `/restapis`,
//! `/v2/apis`, ...), JSON and query services on `POST /` and Smithy RPC v2
//! CBOR on `/service/...` through [`protocol`] (CloudWatch Logs and metrics
//! in [`observe`]). Unauthenticated paths: `/strato/health`, presigned code
//! downloads under `/strato/code/`, and Prometheus text at `/metrics`.

pub mod auth;
mod authorize;
pub mod code_url;
pub mod error;
pub mod lambda;
pub mod observe;
pub mod protocol;
pub mod request_log;
pub mod s3;
pub mod scheduler;
pub mod sns;
pub mod wire;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::Method;
use axum::middleware;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use strato_model::AwsError;
use strato_store::{CodeStore, FunctionCatalog};

pub use auth::{AccountDirectory, Caller, FunctionCredentials};
pub use code_url::CodeUrlSigner;

use crate::error::aws_error_response;

/// What every handler shares.
pub struct ApiState {
    pub catalog: Arc<FunctionCatalog>,
    pub engine: Arc<strato_engine::Engine>,
    pub code: CodeStore,
    pub accounts: Arc<AccountDirectory>,
    pub code_urls: CodeUrlSigner,
    /// Function logs, metrics and metering (CloudWatch Logs and metrics,
    /// `/metrics`, the cost report).
    pub observe: Arc<strato_observe::Observe>,
    /// REST APIs (`aws apigateway ...`): control plane and data plane.
    pub rest_apis: Arc<strato_gateway::rest_api::RestApiService>,
    /// HTTP APIs (`aws apigatewayv2 ...`): control plane and data plane.
    pub http_apis: Arc<strato_gateway::http_api::HttpApiService>,
    /// Function URL configurations and their data plane.
    pub function_urls: Arc<strato_gateway::function_url::FunctionUrlService>,
    /// Requests to APIs and function URLs (host- or path-style) go here
    /// before the AWS router sees them.
    pub dataplane: Arc<strato_gateway::dataplane::DataPlane>,
    /// Lambda event source mappings and their pollers.
    pub event_source_mappings: Arc<lambda::EventSourceMappings>,
    /// Amazon SQS (`aws sqs ...`, both protocols).
    pub sqs: Arc<strato_sqs::SqsService>,
    /// Amazon DynamoDB and DynamoDB Streams (`aws dynamodb ...`,
    /// `aws dynamodbstreams ...`).
    pub dynamodb: Arc<strato_dynamodb::DynamoDbService>,
    /// CloudWatch metric alarms (`aws cloudwatch put-metric-alarm ...`).
    pub alarms: Arc<strato_alarms::AlarmService>,
    /// Amazon SNS (`aws sns ...`, query protocol).
    pub sns: Arc<strato_sns::SnsService>,
    /// Deliveries to whatever service an ARN names (SQS queues, ...):
    /// destinations, dead-letter targets, rule and subscription targets.
    pub sinks: Arc<strato_engine::async_invoke::EventSinks>,
    /// How built-in services invoke functions asynchronously, as their AWS
    /// service principal (resource policy checked, durable queue).
    pub service_events: Arc<dyn strato_engine::async_invoke::ServiceEvents>,
    /// Amazon EventBridge (`aws events`) and EventBridge Scheduler
    /// (`aws scheduler`).
    pub events: Arc<strato_events::EventsService>,
    /// IAM and STS (`aws iam`, `aws sts`), and the authorizer every
    /// authenticated request passes (`authorize`).
    pub iam: Arc<strato_iam::Iam>,
    /// Amazon S3 (`aws s3 ...`), on `s3s`: requests signed for `s3` or sent
    /// to a `{bucket}.s3.*` host, before Strato's own SigV4 check.
    pub s3: Arc<strato_s3::S3Server>,
}

/// The whole HTTP surface.
pub fn router(state: Arc<ApiState>) -> Router {
    let public = Router::new()
        .route("/strato/health", get(|| async { "ok" }))
        .route("/strato/code/{account}/{id}", get(code_url::download))
        .route("/metrics", get(observe::report::prometheus))
        // SNS's SigningCertURL, SubscribeURL and UnsubscribeURL: HTTP
        // endpoints fetch them without credentials, as on AWS.
        .route("/strato/sns/{file}", get(sns::public));
    let aws = lambda::routes()
        .route("/", axum::routing::post(protocol::dispatch_target))
        .route(
            "/service/{service}/operation/{operation}",
            axum::routing::post(protocol::dispatch_rpc_v2),
        )
        .route("/strato/cost", get(observe::report::cost))
        // Query-protocol SQS clients post to the queue's URL; any other
        // method on a two-segment path is an unknown operation, as elsewhere.
        .route(
            "/{account}/{queue}",
            axum::routing::post(protocol::dispatch_queue_url).fallback(unknown_operation),
        )
        .merge(scheduler::routes())
        .merge(strato_gateway::rest_api::control_routes(
            state.rest_apis.clone(),
        ))
        .merge(strato_gateway::http_api::control_routes(
            state.http_apis.clone(),
        ))
        .fallback(unknown_operation)
        // Paths two REST services share go by the signing service.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            protocol::dispatch_signed_rest,
        ))
        // The auth middleware bounds and buffers every body; extractors must
        // not apply axum's smaller default on top.
        .layer(axum::extract::DefaultBodyLimit::max(auth::MAX_REQUEST_BODY))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    public
        .merge(aws)
        .layer(middleware::from_fn_with_state(state.clone(), s3::divert))
        .layer(middleware::from_fn(request_log::log_and_tag))
        // API Gateway and function URL traffic never reaches the AWS router.
        .layer(middleware::from_fn_with_state(
            state.dataplane.clone(),
            strato_gateway::dataplane::divert,
        ))
        .with_state(state)
}

async fn unknown_operation(method: Method, request: Request) -> Response {
    aws_error_response(&AwsError::new(
        strato_model::ErrorCode::UnknownOperationException,
        format!("Unknown operation {method} {}", request.uri().path()),
    ))
}
