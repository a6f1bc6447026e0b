//! Strato's AWS-compatible HTTP front end.
//!
//! One router serves every AWS service Strato implements on one port. Each
//! request is authenticated with SigV4 ([`auth`]) and dispatched by its path:
//! Lambda's date-prefixed REST paths go to [`lambda`]. Unauthenticated paths
//! live under `/strato/` (presigned code downloads, health).

pub mod auth;
pub mod code_url;
pub mod error;
pub mod lambda;
pub mod request_log;
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

pub use auth::{AccountDirectory, Caller, FunctionKeys};
pub use code_url::CodeUrlSigner;

use crate::error::aws_error_response;

/// What every handler shares.
pub struct ApiState {
    pub catalog: Arc<FunctionCatalog>,
    pub engine: Arc<strato_engine::Engine>,
    pub code: CodeStore,
    pub accounts: Arc<AccountDirectory>,
    pub code_urls: CodeUrlSigner,
}

/// The whole HTTP surface.
pub fn router(state: Arc<ApiState>) -> Router {
    let public = Router::new()
        .route("/strato/health", get(|| async { "ok" }))
        .route("/strato/code/{account}/{id}", get(code_url::download));
    let aws = lambda::routes()
        .fallback(unknown_operation)
        // The auth middleware bounds and buffers every body; extractors must
        // not apply axum's smaller default on top.
        .layer(axum::extract::DefaultBodyLimit::max(auth::MAX_REQUEST_BODY))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    public
        .merge(aws)
        .layer(middleware::from_fn(request_log::log_and_tag))
        .with_state(state)
}

async fn unknown_operation(method: Method, request: Request) -> Response {
    aws_error_response(&AwsError::new(
        strato_model::ErrorCode::UnknownOperationException,
        format!("Unknown operation {method} {}", request.uri().path()),
    ))
}
