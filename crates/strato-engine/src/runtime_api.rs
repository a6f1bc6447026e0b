//! The Lambda Runtime API (2018-06-01) that one instance's runtime talks to.
//!
//! Each instance gets its own listener (inside its own network namespace, at
//! the same `127.0.0.1:9001` everywhere) and this router bound to that
//! instance's [`InstanceChannel`], so requests need no routing by instance and
//! one instance can never answer another's invocations.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use parking_lot::Mutex;
use serde_json::json;
use strato_model::limits::MAX_SYNC_PAYLOAD_BYTES;
use tokio::sync::{mpsc, oneshot};

/// The largest response Lambda returns: its "6 MB" is 6,291,556 bytes, as
/// `Function.ResponseSizeTooLarge` messages state (a response of exactly this
/// size is accepted).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;

/// One event handed to the runtime by `/invocation/next`.
#[derive(Debug, Clone)]
pub struct Dispatch {
    pub request_id: String,
    pub payload: Bytes,
    pub deadline_ms: i64,
    pub invoked_function_arn: String,
    pub trace_id: String,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
}

/// How the runtime ended an invocation.
#[derive(Debug)]
pub enum Outcome {
    Response(Bytes),
    /// `/error`, with the `Lambda-Runtime-Function-Error-Type` header.
    Error {
        error_type: Option<String>,
        body: Bytes,
    },
    /// The response was larger than Lambda allows.
    ResponseTooLarge {
        size: usize,
    },
}

/// How the runtime ended its init phase.
#[derive(Debug)]
pub enum InitSignal {
    /// The first `/invocation/next`: init is complete.
    Ready,
    /// `/init/error`.
    Failed {
        error_type: Option<String>,
        body: Bytes,
    },
}

/// Strato-specific assignment of a stem cell: the environment a pre-started
/// runtime adopts before it loads the function.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Assignment {
    pub env: std::collections::BTreeMap<String, String>,
    /// For runtimes whose process is the function's own executable: what
    /// the stem cell's waiter executes (absent for interpreters, whose
    /// bootstrap loads the function itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Vec<String>>,
}

/// The state one instance's Runtime API shares with the engine.
pub struct InstanceChannel {
    dispatch_rx: tokio::sync::Mutex<mpsc::Receiver<Dispatch>>,
    inflight: Mutex<Option<(String, oneshot::Sender<Outcome>)>>,
    init: Mutex<Option<oneshot::Sender<InitSignal>>>,
    assignment: Mutex<Option<oneshot::Receiver<Assignment>>>,
    /// A stem cell's runtime asked for its assignment: it is fully started.
    awaiting_assignment: std::sync::atomic::AtomicBool,
}

pub struct ChannelEnds {
    pub channel: Arc<InstanceChannel>,
    pub dispatch_tx: mpsc::Sender<Dispatch>,
    pub init_rx: oneshot::Receiver<InitSignal>,
}

impl InstanceChannel {
    pub fn open(assignment: Option<oneshot::Receiver<Assignment>>) -> ChannelEnds {
        let (dispatch_tx, dispatch_rx) = mpsc::channel(1);
        let (init_tx, init_rx) = oneshot::channel();
        let channel = Arc::new(InstanceChannel {
            dispatch_rx: tokio::sync::Mutex::new(dispatch_rx),
            inflight: Mutex::new(None),
            init: Mutex::new(Some(init_tx)),
            assignment: Mutex::new(assignment),
            awaiting_assignment: std::sync::atomic::AtomicBool::new(false),
        });
        ChannelEnds {
            channel,
            dispatch_tx,
            init_rx,
        }
    }

    /// Registers where the outcome of `request_id` goes; called just before
    /// the event is dispatched.
    pub fn expect(&self, request_id: &str, reply: oneshot::Sender<Outcome>) {
        *self.inflight.lock() = Some((request_id.to_string(), reply));
    }

    /// Forgets the invocation in flight (it timed out or the instance died).
    pub fn abandon(&self) {
        self.inflight.lock().take();
    }

    fn complete(&self, request_id: &str, outcome: Outcome) -> bool {
        let mut inflight = self.inflight.lock();
        match inflight.as_ref() {
            Some((id, _)) if id == request_id => {}
            _ => return false,
        }
        if let Some((_, reply)) = inflight.take() {
            let _ = reply.send(outcome);
        }
        true
    }

    /// True once a stem cell's runtime waits for its assignment.
    pub fn awaiting_assignment(&self) -> bool {
        self.awaiting_assignment
            .load(std::sync::atomic::Ordering::Acquire)
    }

    fn signal_init(&self, signal: InitSignal) {
        if let Some(tx) = self.init.lock().take() {
            let _ = tx.send(signal);
        }
    }
}

pub fn router(channel: Arc<InstanceChannel>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .route("/2018-06-01/runtime/strato/assignment", get(assignment))
        // Responses are measured against the limit by hand, so a few bytes
        // over it can still be reported as Function.ResponseSizeTooLarge.
        .layer(DefaultBodyLimit::max(MAX_SYNC_PAYLOAD_BYTES + 1024 * 1024))
        .with_state(channel)
}

fn header(name: &'static str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    HeaderValue::from_str(value)
        .ok()
        .map(|v| (HeaderName::from_static(name), v))
}

async fn next(State(channel): State<Arc<InstanceChannel>>) -> Response {
    channel.signal_init(InitSignal::Ready);
    let dispatch = channel.dispatch_rx.lock().await.recv().await;
    let Some(d) = dispatch else {
        // The instance is being shut down.
        return (
            StatusCode::GONE,
            axum::Json(
                json!({"errorMessage": "instance shutting down", "errorType": "Runtime.Shutdown"}),
            ),
        )
            .into_response();
    };
    let mut headers = HeaderMap::new();
    let deadline = d.deadline_ms.to_string();
    let pairs = [
        header("lambda-runtime-aws-request-id", &d.request_id),
        header("lambda-runtime-deadline-ms", &deadline),
        header(
            "lambda-runtime-invoked-function-arn",
            &d.invoked_function_arn,
        ),
        header("lambda-runtime-trace-id", &d.trace_id),
        d.client_context
            .as_deref()
            .and_then(|c| header("lambda-runtime-client-context", c)),
        d.cognito_identity
            .as_deref()
            .and_then(|c| header("lambda-runtime-cognito-identity", c)),
        header("content-type", "application/json"),
    ];
    for (name, value) in pairs.into_iter().flatten() {
        headers.insert(name, value);
    }
    (StatusCode::OK, headers, d.payload).into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

fn unknown_request(id: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"errorMessage": format!("Invalid request ID: {id}"), "errorType": "InvalidRequestID"})),
    )
        .into_response()
}

async fn response(
    State(channel): State<Arc<InstanceChannel>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if body.len() > MAX_RESPONSE_BYTES {
        let size = body.len();
        if channel.complete(&id, Outcome::ResponseTooLarge { size }) {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                axum::Json(json!({
                    "errorMessage": format!("Response payload size ({size} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."),
                    "errorType": "RequestEntityTooLarge"
                })),
            )
                .into_response();
        }
        return unknown_request(&id);
    }
    if channel.complete(&id, Outcome::Response(body)) {
        accepted()
    } else {
        unknown_request(&id)
    }
}

fn error_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn error(
    State(channel): State<Arc<InstanceChannel>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if channel.complete(
        &id,
        Outcome::Error {
            error_type: error_type(&headers),
            body,
        },
    ) {
        accepted()
    } else {
        unknown_request(&id)
    }
}

async fn init_error(
    State(channel): State<Arc<InstanceChannel>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    channel.signal_init(InitSignal::Failed {
        error_type: error_type(&headers),
        body,
    });
    accepted()
}

async fn assignment(State(channel): State<Arc<InstanceChannel>>) -> Response {
    let pending = channel.assignment.lock().take();
    match pending {
        Some(rx) => {
            channel
                .awaiting_assignment
                .store(true, std::sync::atomic::Ordering::Release);
            match rx.await {
                Ok(assignment) => (StatusCode::OK, axum::Json(assignment)).into_response(),
                Err(_) => StatusCode::GONE.into_response(),
            }
        }
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"errorMessage": "this instance is not a stem cell", "errorType": "InvalidRequest"})),
        )
            .into_response(),
    }
}
