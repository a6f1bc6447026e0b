//! Strato's execution engine: runs function invocations in sandboxed
//! instances that speak the Lambda Runtime API.
//!
//! [`Engine::invoke`] takes a function version's configuration and a payload,
//! reuses a warm instance of that version or starts one (cold start),
//! dispatches the event through the instance's Runtime API, and returns what
//! the runtime answered — or the error AWS would report when the function
//! fails, times out, runs out of memory or exits. Every invocation writes
//! `START`, the function's own lines, `END` and `REPORT` to its log stream.
//!
//! This file holds the [`Engine`], its configuration, the public types and
//! the invoke entry points; each of the engine's other jobs has its module:
//! cold starts (`cold_start`), running one invocation on an instance
//! (`invocation`), stem cells ([`stem`]), provisioned concurrency
//! ([`provisioned`]), installing runtime components ([`install`]), and
//! admission ([`concurrency`], [`memory`]).

pub mod async_invoke;
pub mod aws_names;
mod cold_start;
pub mod concurrency;
pub mod dns;
mod error;
pub mod event_source;
pub mod install;
pub mod instance;
mod invocation;
pub mod live;
pub mod logs;
pub mod memory;
pub mod observer;
mod pool;
pub mod provisioned;
pub mod runtime_api;
pub mod runtimes;
pub mod stem;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use strato_model::{FunctionConfig, Runtime};
use strato_sandbox::{Sandbox, SandboxConfig, SandboxMode};
use strato_store::CodeStore;

use crate::concurrency::{ConcurrencyLimiter, Permit};
use crate::logs::LogSink;
use crate::memory::MemoryBudget;
use crate::pool::InstancePool;
use crate::provisioned::ProvisionedState;
use crate::runtimes::{RuntimeCatalog, RuntimeUnavailable};

pub use crate::error::{EngineError, PlatformError};
pub use crate::install::provide_sdks;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where runtime components live: the bootstraps, installed Node.js
    /// releases, the Java runtime interface client, the bundled AWS SDKs.
    /// Several servers (and data directories) may share one.
    pub runtimes_dir: PathBuf,
    /// How long an idle instance stays warm.
    pub keep_alive: Duration,
    /// How long a runtime's init may take beyond the function's timeout.
    pub init_timeout: Duration,
    pub sandbox: SandboxConfig,
    /// The total `MemorySize` live instances may hold, in MB
    /// ([`memory::default_budget_mb`]: 80 % of the machine's memory).
    pub memory_budget_mb: u64,
    /// No event invocation lives longer than this, whatever its
    /// `MaximumEventAgeInSeconds` (AWS's default and largest is 6 hours).
    pub max_event_age: Duration,
    /// Stem cells kept ready per runtime (0: none); see [`stem`].
    pub stem_cells: usize,
    /// When every init slot is taken (as many instances are starting as
    /// the host has CPUs, so another start would only slow them all down),
    /// how long an invocation that finds no idle instance waits without
    /// progress of its function's instances (none came free or was
    /// starting) before it starts another anyway. Zero starts another at
    /// once, as AWS does. See `docs/architecture.md` (scale-out).
    pub scale_out_wait: Duration,
    /// How long the credentials an instance gets at its cold start last
    /// ([`DEFAULT_CREDENTIALS_LIFETIME`]). An instance takes no invocation
    /// once less than [`credentials_margin`] of them is left: it is ended
    /// and replaced, as AWS retires execution environments before their
    /// credentials expire (a process's environment cannot be refreshed).
    pub credentials_lifetime: Duration,
}

/// How long an instance's execution-role credentials last.
pub const DEFAULT_CREDENTIALS_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// How long before its credentials expire an instance stops taking
/// invocations: 1/48 of their lifetime (15 minutes of 12 hours), so an
/// invocation that starts on it ends before they do.
pub fn credentials_margin(lifetime: Duration) -> Duration {
    lifetime / 48
}

/// Credentials an instance's AWS SDK signs with (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`): a session of the
/// function's execution role, as STS issues to Lambda on AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

/// Mints an instance's credentials (IAM, in strato-api). Called once per
/// cold start (and stem-cell adoption), never per invocation.
pub trait CredentialIssuer: Send + Sync {
    /// Credentials of `function` of `account` acting as `role` (its
    /// execution role ARN), valid for `lifetime`.
    fn issue(
        &self,
        account: &str,
        role: &str,
        function: &str,
        lifetime: Duration,
    ) -> InstanceCredentials;

    /// Whether an AWS service may act with a role as `role_use` says: the
    /// role trusts the service and its policies allow the action. Lambda
    /// asks before it sends asynchronous destinations' records and dead
    /// letters with a function's execution role; Scheduler before it
    /// invokes a target with a schedule's role. Always so when IAM is not
    /// enforced.
    fn role_allows(&self, role_use: &RoleUse<'_>) -> bool;
}

/// An AWS service (`lambda.amazonaws.com`, `scheduler.amazonaws.com`)
/// acting with `role` as session `session` to perform `action` on
/// `resource`.
#[derive(Debug, Clone, Copy)]
pub struct RoleUse<'a> {
    pub service: &'a str,
    pub role: &'a str,
    pub session: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
}

/// The scale-out wait unless configured otherwise, in milliseconds.
pub const DEFAULT_SCALE_OUT_WAIT_MS: u64 = 100;
/// ... as a duration.
pub const DEFAULT_SCALE_OUT_WAIT: Duration = Duration::from_millis(DEFAULT_SCALE_OUT_WAIT_MS);

/// The longest an invocation waits for an instance while its function's
/// instances are starting (see [`EngineConfig::scale_out_wait`]): long
/// enough for a runtime started from scratch on a busy core (a Node.js
/// process takes ~100 ms alone), short enough that an init waiting on the
/// network does not hold back the instances a burst needs.
pub const SCALE_OUT_WAIT_CAP: Duration = Duration::from_secs(1);

/// Stem cells kept per runtime unless configured otherwise.
pub const DEFAULT_STEM_CELLS: usize = 2;

/// `AWS_LAMBDA_INITIALIZATION_TYPE` of instances started for an invocation.
pub(crate) const INITIALIZATION_ON_DEMAND: &str = "on-demand";
/// ... and of instances of a provisioned concurrency configuration.
pub(crate) const INITIALIZATION_PROVISIONED: &str = "provisioned-concurrency";

/// AWS's default (and largest) maximum event age.
pub const DEFAULT_MAX_EVENT_AGE: Duration = Duration::from_secs(6 * 60 * 60);

/// Serves Strato's own API on a listener handed to it (one opened inside an
/// instance's network namespace).
pub type ServeApi =
    Arc<dyn Fn(tokio::net::TcpListener) -> tokio::task::JoinHandle<()> + Send + Sync>;

/// How functions reach Strato's API (`AWS_ENDPOINT_URL`), so the AWS SDKs
/// inside them talk to Strato: at `127.0.0.1:9000` inside every isolated
/// instance, served by `serve`; or at `host_url` when instances share the
/// host's network.
#[derive(Clone)]
pub struct ApiEndpoint {
    pub host_url: String,
    pub serve: ServeApi,
    /// AWS's own host names inside isolated instances; `None` leaves them
    /// to the host's resolver.
    pub aws_hostnames: Option<AwsHostnames>,
}

/// How isolated instances reach Strato by AWS's host names
/// (`lambda.us-east-1.amazonaws.com`): their resolver ([`dns`]) answers those
/// names with `127.0.0.1`, where `serve_tls` serves Strato's API over HTTPS
/// on port 443 with certificates of Strato's sandbox CA.
#[derive(Clone)]
pub struct AwsHostnames {
    /// Serves the API over TLS on a listener opened at
    /// [`instance::INSTANCE_HTTPS_ADDR`] inside an instance.
    pub serve_tls: ServeApi,
    /// The host's name servers every other name is relayed to.
    pub upstreams: Arc<dns::Upstreams>,
}

/// The function version an invocation runs.
#[derive(Debug, Clone)]
pub struct InvokeTarget {
    pub account: String,
    pub region: String,
    pub config: Arc<FunctionConfig>,
    /// The ARN the caller used (qualified when it was).
    pub invoked_arn: String,
}

#[derive(Debug, Clone, Default)]
pub struct InvokeRequest {
    pub payload: Bytes,
    /// The client context JSON (decoded from `X-Amz-Client-Context`).
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    /// Return the last 4 KB of the invocation's log.
    pub tail_log: bool,
    /// The invocation's request id when the caller chose it (an event keeps
    /// the id its 202 answered with); a new one otherwise.
    pub request_id: Option<String>,
    /// The X-Ray trace header the invocation runs with (its
    /// `_X_AMZN_TRACE_ID`, carrying the recursion lineage); a new trace
    /// when `None`.
    pub trace_header: Option<String>,
}

#[derive(Debug, Clone)]
pub struct InvokeResponse {
    pub request_id: String,
    pub payload: Bytes,
    /// `Unhandled` when the function failed.
    pub function_error: Option<&'static str>,
    pub executed_version: String,
    /// Base64 of the log tail, when asked for.
    pub log_result: Option<String>,
    pub duration: Duration,
    pub billed_ms: u64,
    pub init_duration: Option<Duration>,
    pub max_memory_mb: u64,
    /// When a provisioned instance served it: the provisioned concurrency
    /// its configuration allocates (for the utilization metric).
    pub provisioned_allocation: Option<u32>,
}

/// (account, region, function, version, configuration stamp): instances
/// are only reused for exactly the configuration they were started with.
type PoolKey = (String, String, String, String, i64);

pub struct Engine {
    sandbox: Sandbox,
    runtimes: RuntimeCatalog,
    code: CodeStore,
    logs: Arc<dyn LogSink>,
    pools: DashMap<PoolKey, Arc<InstancePool>>,
    config: EngineConfig,
    api_endpoint: std::sync::OnceLock<ApiEndpoint>,
    /// Mints instances' credentials (set once); without it instances get
    /// none.
    credential_issuer: std::sync::OnceLock<Arc<dyn CredentialIssuer>>,
    live: Arc<live::LiveInstances>,
    closing: std::sync::atomic::AtomicBool,
    concurrency: Arc<ConcurrencyLimiter>,
    memory: Arc<MemoryBudget>,
    /// Event invocations dropped because they reached their maximum age.
    expired_events: std::sync::atomic::AtomicU64,
    /// Asynchronous invocation on the durable queue, once started.
    async_invoker: std::sync::OnceLock<Arc<async_invoke::AsyncInvoker>>,
    /// Wakes the asynchronous-invocation pollers at shutdown.
    closed: tokio::sync::Notify,
    /// Ready stem cells per runtime.
    stems: DashMap<stem::StemKey, Arc<stem::RuntimeStemCells>>,
    /// Cold starts that adopted a stem cell.
    stem_adoptions: std::sync::atomic::AtomicU64,
    /// Provisioned concurrency configurations, with the version each runs.
    provisioned: DashMap<provisioned::ProvisionedKey, (Arc<ProvisionedState>, InvokeTarget)>,
    /// Metrics and metering, told about every invocation (set once).
    observer: std::sync::OnceLock<Arc<dyn observer::InvocationObserver>>,
    /// One per CPU this process may run on: an instance's start holds one
    /// through its init (see [`EngineConfig::scale_out_wait`]).
    init_slots: Arc<tokio::sync::Semaphore>,
}

pub(crate) fn pool_key(target: &InvokeTarget) -> PoolKey {
    let c = &target.config;
    (
        target.account.clone(),
        target.region.clone(),
        c.name.clone(),
        c.version.clone(),
        c.last_modified.timestamp_nanos_opt().unwrap_or_default(),
    )
}

impl Engine {
    /// Detects the sandbox mode, finds runtimes, and starts the periodic
    /// pass that ends idle instances and replaces missing provisioned ones.
    pub fn start(
        config: EngineConfig,
        code: CodeStore,
        logs: Arc<dyn LogSink>,
    ) -> Result<Arc<Engine>, EngineError> {
        let sandbox = Sandbox::detect(config.sandbox.clone()).map_err(EngineError::Sandbox)?;
        for warning in sandbox.warnings() {
            tracing::warn!("{warning}");
        }
        match sandbox.remove_orphans(cold_start::is_orphan) {
            Ok(removed) if !removed.is_empty() => {
                tracing::warn!(
                    count = removed.len(),
                    "removed sandboxes left behind by a previous run"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot look for sandboxes left behind"),
        }
        let runtimes =
            RuntimeCatalog::discover(&config.runtimes_dir).map_err(EngineError::Catalog)?;
        let engine = Arc::new(Engine {
            sandbox,
            runtimes,
            code,
            logs,
            pools: DashMap::new(),
            api_endpoint: std::sync::OnceLock::new(),
            credential_issuer: std::sync::OnceLock::new(),
            live: Arc::new(live::LiveInstances::default()),
            closing: std::sync::atomic::AtomicBool::new(false),
            concurrency: Arc::new(ConcurrencyLimiter::new()),
            memory: MemoryBudget::new(config.memory_budget_mb),
            expired_events: std::sync::atomic::AtomicU64::new(0),
            async_invoker: std::sync::OnceLock::new(),
            closed: tokio::sync::Notify::new(),
            stems: DashMap::new(),
            stem_adoptions: std::sync::atomic::AtomicU64::new(0),
            provisioned: DashMap::new(),
            observer: std::sync::OnceLock::new(),
            init_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            )),
            config,
        });
        let weak = Arc::downgrade(&engine);
        let period =
            (engine.config.keep_alive / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(engine) = weak.upgrade() else { return };
                engine.reap();
                engine.maintain_provisioned();
            }
        });
        Ok(engine)
    }

    /// Makes Strato's API reachable from functions. Set once, after the API
    /// (which holds the engine) exists.
    pub fn set_api_endpoint(&self, endpoint: ApiEndpoint) {
        let _ = self.api_endpoint.set(endpoint);
    }

    /// Puts Strato's sandbox CA in every runtime's trust store. Set once,
    /// before the first instance starts.
    pub fn set_sandbox_trust(&self, trust: runtimes::SandboxTrust) {
        self.runtimes.set_trust(trust);
    }

    /// Gives every instance started from now on credentials minted by
    /// `issuer`. Set once.
    pub fn set_credential_issuer(&self, issuer: Arc<dyn CredentialIssuer>) {
        let _ = self.credential_issuer.set(issuer);
    }

    /// [`CredentialIssuer::role_allows`], through the issuer set (anything,
    /// without one).
    pub fn role_allows(&self, role_use: &RoleUse<'_>) -> bool {
        self.credential_issuer
            .get()
            .is_none_or(|iam| iam.role_allows(role_use))
    }

    /// Reports every invocation (and throttle) to `observer`. Set once.
    pub fn set_observer(&self, observer: Arc<dyn observer::InvocationObserver>) {
        let _ = self.observer.set(observer);
    }

    pub fn sandbox_mode(&self) -> SandboxMode {
        self.sandbox.mode()
    }

    pub fn sandbox_warnings(&self) -> &[String] {
        self.sandbox.warnings()
    }

    /// What runs `runtime` here, or why nothing can.
    pub fn check_runtime(&self, runtime: Runtime) -> Result<String, RuntimeUnavailable> {
        self.runtimes.check(runtime)
    }

    /// The hash of the build of `runtime` installed here (see
    /// [`RuntimeCatalog::build_hash`]).
    pub fn runtime_build(&self, runtime: Runtime) -> Result<String, RuntimeUnavailable> {
        self.runtimes.build_hash(runtime)
    }

    pub fn runtime_report(&self) -> BTreeMap<&'static str, Result<String, RuntimeUnavailable>> {
        self.runtimes.report()
    }

    /// Idle (warm) instances across all functions.
    pub fn idle_instances(&self) -> usize {
        self.pools.iter().map(|p| p.idle_count()).sum()
    }

    fn reap(&self) {
        let keep_alive = self.config.keep_alive;
        self.pools
            .retain(|_, pool| pool.reap(keep_alive) > 0 || Arc::strong_count(pool) > 1);
        // Stem cells of runtimes no cold start used for the keep-alive end.
        self.stems.retain(|_, cells| {
            let unused = cells.unused_for(keep_alive) && Arc::strong_count(cells) == 1;
            if unused {
                cells.clear();
            }
            !unused
        });
    }

    /// Instances that exist (warm, busy or still being cleaned up); stem
    /// cells waiting for a function are not counted.
    pub fn live_instances(&self) -> usize {
        self.live.instances()
    }

    /// Ends every instance and waits (at most 10 s) until their processes,
    /// cgroups and namespaces are gone. Later invocations are refused.
    pub async fn shutdown(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.closed.notify_waiters();
        for cells in self.stems.iter() {
            cells.clear();
        }
        for config in self.provisioned.iter() {
            config.0.retire();
        }
        let pools: Vec<Arc<InstancePool>> = self.pools.iter().map(|p| p.value().clone()).collect();
        self.pools.clear();
        for pool in pools {
            pool.clear();
        }
        if tokio::time::timeout(Duration::from_secs(10), self.live.wait_until_none())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.live.count(),
                "instances still being cleaned up at shutdown"
            );
        }
    }

    /// Ends the warm instances of a function (it was updated or deleted).
    pub fn retire(&self, account: &str, region: &str, name: &str) {
        let keys: Vec<PoolKey> = self
            .pools
            .iter()
            .filter(|e| e.key().0 == account && e.key().1 == region && e.key().2 == name)
            .map(|e| e.key().clone())
            .collect();
        for key in keys {
            if let Some((_, pool)) = self.pools.remove(&key) {
                pool.clear();
            }
        }
    }

    /// Ends the warm instances of one version of a function (`$LATEST` was
    /// updated, or a published version deleted); other versions stay warm.
    pub fn retire_version(&self, account: &str, region: &str, name: &str, version: &str) {
        let keys: Vec<PoolKey> = self
            .pools
            .iter()
            .filter(|e| {
                let k = e.key();
                k.0 == account && k.1 == region && k.2 == name && k.3 == version
            })
            .map(|e| e.key().clone())
            .collect();
        for key in keys {
            if let Some((_, pool)) = self.pools.remove(&key) {
                pool.clear();
            }
        }
    }

    /// Sandboxes that exist: instances and stem cells, until their cleanup
    /// is complete.
    pub fn sandboxes(&self) -> usize {
        self.live.count()
    }

    /// Cold starts so far that adopted a stem cell.
    pub fn stem_adoptions(&self) -> u64 {
        self.stem_adoptions
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Stem cells ready (or starting) now, across runtimes.
    pub fn stem_cells(&self) -> usize {
        self.stems.iter().map(|c| c.len()).sum()
    }

    /// Admission control: the account's and functions' concurrency.
    pub fn concurrency(&self) -> &Arc<ConcurrencyLimiter> {
        &self.concurrency
    }

    /// The host's memory budget for live instances.
    pub fn memory_budget(&self) -> &Arc<MemoryBudget> {
        &self.memory
    }

    /// Event invocations dropped because they reached their maximum age.
    pub fn expired_events(&self) -> u64 {
        self.expired_events
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Runs an invocation to its end, if the function's (or the account's)
    /// concurrency admits it now; [`EngineError::Throttled`] otherwise. The
    /// work continues even if the caller goes away, so an instance is never
    /// left half-used; the concurrency permit lives as long as that work.
    pub async fn invoke(
        self: &Arc<Self>,
        target: InvokeTarget,
        request: InvokeRequest,
    ) -> Result<InvokeResponse, EngineError> {
        let permit = self.admit(&target)?;
        self.invoke_admitted_to(target, request, permit, None).await
    }

    /// [`Engine::invoke`] for a caller that streams the response
    /// (InvokeWithResponseStream, function URLs in `RESPONSE_STREAM` mode):
    /// what a runtime streams goes to `stream` while the function runs, so
    /// the returned [`InvokeResponse`] then has an empty payload (or the
    /// error the stream ended with). A runtime that answers whole answers in
    /// the payload as usual. The sink is bounded: a slow reader slows the
    /// function's writes rather than filling memory.
    pub async fn invoke_streaming(
        self: &Arc<Self>,
        target: InvokeTarget,
        request: InvokeRequest,
        stream: runtime_api::StreamSink,
    ) -> Result<InvokeResponse, EngineError> {
        let permit = self.admit(&target)?;
        self.invoke_admitted_to(target, request, permit, Some(stream))
            .await
    }

    /// A concurrency permit for an invocation of `target`, or the throttle
    /// (reported to the observer).
    fn admit(&self, target: &InvokeTarget) -> Result<Permit, EngineError> {
        self.concurrency
            .try_acquire(
                &target.account,
                &target.region,
                &target.config.name,
                self.demand_of(target),
            )
            .map_err(|throttle| {
                if let Some(observer) = self.observer.get() {
                    observer.throttled(
                        observer::subject_of(target),
                        chrono::Utc::now().timestamp_millis(),
                    );
                }
                EngineError::Throttled(throttle)
            })
    }

    async fn invoke_admitted(
        self: &Arc<Self>,
        target: InvokeTarget,
        request: InvokeRequest,
        permit: Permit,
    ) -> Result<InvokeResponse, EngineError> {
        self.invoke_admitted_to(target, request, permit, None).await
    }

    async fn invoke_admitted_to(
        self: &Arc<Self>,
        target: InvokeTarget,
        request: InvokeRequest,
        permit: Permit,
        stream: Option<runtime_api::StreamSink>,
    ) -> Result<InvokeResponse, EngineError> {
        let engine = self.clone();
        let observation = observer::Observation::begin(self.observer.get(), &target);
        let task = async move {
            let result = engine.run(target, request, stream).await;
            drop(permit);
            if let Some(observation) = observation {
                observation.end(&result);
            }
            result
        };
        match tokio::spawn(task).await {
            Ok(result) => result,
            Err(e) => Err(EngineError::InvocationTask(e)),
        }
    }
}
