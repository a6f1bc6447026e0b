//! The engine's errors. Callers map them to AWS errors once, at the edge
//! (the Invoke handler and API Gateway's invoker in `strato-api`), so the
//! variants say what failed and carry the failure itself as their source;
//! their text is what a `ServiceException` shows.

use std::io;

use strato_model::Runtime;
use strato_sandbox::SandboxError;
use strato_store::CodeStoreError;

use crate::concurrency::Throttle;
use crate::runtimes::RuntimeUnavailable;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start the sandbox: {0}")]
    Sandbox(#[source] SandboxError),
    /// The platform could not start an instance (the function's code never
    /// ran).
    #[error("cannot start an instance: {0}")]
    Instance(#[from] PlatformError),
    /// The task running the invocation panicked or was cancelled.
    #[error("cannot start an instance: invocation task failed: {0}")]
    InvocationTask(#[source] tokio::task::JoinError),
    #[error("the server is shutting down")]
    ShuttingDown,
    /// No concurrency left for the function (TooManyRequestsException).
    #[error("concurrency limit reached: {}", .0.reason())]
    Throttled(Throttle),
    /// A cold start would exceed the host's memory budget and no idle
    /// instance of another function could be ended to make room.
    #[error("the host's memory budget is full: {needed_mb} MB more would exceed {budget_mb} MB ({used_mb} MB held by busy instances)")]
    MemoryBudgetFull {
        needed_mb: u64,
        used_mb: u64,
        budget_mb: u64,
    },
    #[error("runtime catalog: {0}")]
    Catalog(#[source] io::Error),
    /// Asynchronous invocation has not been started on this engine.
    #[error("asynchronous invocation is not available")]
    AsyncUnavailable,
    /// The durable queue refused an event (full disk, storage failure).
    #[error("the asynchronous invocation queue failed: {0}")]
    AsyncQueue(#[source] strato_queue::QueueError),
    #[error("cannot encode a queued event: {0}")]
    AsyncEncoding(#[source] serde_json::Error),
}

impl EngineError {
    /// The throttle this error is answered as (HTTP 429, with this
    /// `Reason`), if it is one: no concurrency left, or a host whose memory
    /// budget is full, which a caller sees as the account's concurrency
    /// running out (retryable; SDKs back off). Every edge (Invoke, the
    /// gateway, function URLs) classifies engine errors through this one
    /// place and only renders the answer.
    pub fn as_throttle(&self) -> Option<Throttle> {
        match self {
            EngineError::Throttled(throttle) => Some(*throttle),
            EngineError::MemoryBudgetFull { .. } => Some(Throttle::Account),
            _ => None,
        }
    }
}

/// Why the platform could not start an instance or a stem cell: a failure
/// of Strato or the host, not of the function.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("runtime {runtime} is not available: {source}")]
    RuntimeUnavailable {
        runtime: Runtime,
        source: RuntimeUnavailable,
    },
    /// A stem cell's runtime cannot be launched.
    #[error("runtime {runtime}: {source}")]
    StemRuntime {
        runtime: Runtime,
        source: RuntimeUnavailable,
    },
    /// Planning a Java stem cell (which may build its launcher) stopped.
    #[error("runtime {runtime}: {source}")]
    StemPlanTask {
        runtime: Runtime,
        source: tokio::task::JoinError,
    },
    #[error("code preparation: {0}")]
    Code(#[source] CodeStoreError),
    #[error("code preparation: {0}")]
    CodeTask(#[source] tokio::task::JoinError),
    #[error("layer preparation: {0}")]
    Layers(#[source] CodeStoreError),
    #[error("layer preparation: {0}")]
    LayersTask(#[source] tokio::task::JoinError),
    #[error("network: {0}")]
    Network(#[source] SandboxError),
    #[error("address: {0}")]
    Address(#[from] std::net::AddrParseError),
    /// Opening a listener (the Runtime API's, or Strato's API inside the
    /// instance) in the instance's network namespace.
    #[error("{listener}: {source}")]
    Bind {
        listener: &'static str,
        source: SandboxError,
    },
    #[error("{listener}: {source}")]
    Listener {
        listener: &'static str,
        source: io::Error,
    },
    #[error("sandbox: {0}")]
    Spawn(#[source] SandboxError),
    #[error("stem cell: the instance has ended")]
    StemCellEnded,
    /// Mounting the function's code or setting its limits failed.
    #[error("stem cell: {0}")]
    StemCellAttach(#[source] SandboxError),
    #[error("stem cell: the runtime stopped waiting")]
    StemCellNotWaiting,
}
