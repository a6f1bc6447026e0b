//! Strato's execution engine: runs function invocations in sandboxed
//! instances that speak the Lambda Runtime API.
//!
//! [`Engine::invoke`] takes a function version's configuration and a payload,
//! reuses a warm instance of that version or starts one (cold start),
//! dispatches the event through the instance's Runtime API, and returns what
//! the runtime answered — or the error AWS would report when the function
//! fails, times out, runs out of memory or exits. Every invocation writes
//! `START`, the function's own lines, `END` and `REPORT` to its log stream.

pub mod concurrency;
pub mod install;
pub mod instance;
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
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use dashmap::DashMap;
use serde_json::json;
use strato_model::{FunctionConfig, Runtime};
use strato_sandbox::{BindMount, Sandbox, SandboxConfig, SandboxMode};
use strato_store::CodeStore;

use crate::concurrency::{ConcurrencyLimiter, Permit, Throttle};
use crate::instance::{
    Adoption, Death, Instance, InstanceSpec, InvocationEnd, StartError, StemCell, StemLaunch,
};
use crate::logs::LogSink;
use crate::memory::{MemoryBudget, MemoryCharge};
use crate::pool::InstancePool;
use crate::provisioned::{ProvisionedKey, ProvisionedReport, ProvisionedState};
use crate::runtime_api::{Dispatch, Outcome};
use crate::runtimes::{RuntimeCatalog, RUNTIME_DIR, TASK_ROOT};

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
    /// How long an event invocation waits for a concurrency slot (or for
    /// room in the memory budget) before it is dropped; AWS's default
    /// maximum event age is 6 hours.
    pub max_event_age: Duration,
    /// Stem cells kept ready per runtime (0: none); see [`stem`].
    pub stem_cells: usize,
}

/// Stem cells kept per runtime unless configured otherwise.
pub const DEFAULT_STEM_CELLS: usize = 2;

/// `AWS_LAMBDA_INITIALIZATION_TYPE` of instances started for an invocation.
const INITIALIZATION_ON_DEMAND: &str = "on-demand";
/// ... and of instances of a provisioned concurrency configuration.
const INITIALIZATION_PROVISIONED: &str = "provisioned-concurrency";

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
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start the sandbox: {0}")]
    Sandbox(String),
    #[error("runtime {runtime} is not available: {reason}")]
    RuntimeUnavailable { runtime: Runtime, reason: String },
    #[error("function code is unavailable: {0}")]
    Code(String),
    #[error("cannot start an instance: {0}")]
    Instance(String),
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
    Catalog(std::io::Error),
}

/// The function version an invocation runs.
#[derive(Debug, Clone)]
pub struct InvokeTarget {
    pub account: String,
    pub region: String,
    pub config: Arc<FunctionConfig>,
    /// The ARN the caller used (qualified when it was).
    pub invoked_arn: String,
    /// (access key id, secret) the function's AWS SDK calls are signed with,
    /// as a role's credentials are on AWS.
    pub credentials: Option<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct InvokeRequest {
    pub payload: Bytes,
    /// The client context JSON (decoded from `X-Amz-Client-Context`).
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    /// Return the last 4 KB of the invocation's log.
    pub tail_log: bool,
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
    live: Arc<instance::LiveInstances>,
    closing: std::sync::atomic::AtomicBool,
    concurrency: Arc<ConcurrencyLimiter>,
    memory: Arc<MemoryBudget>,
    /// Event invocations dropped after waiting the maximum event age.
    expired_events: std::sync::atomic::AtomicU64,
    /// Wakes waiting event invocations at shutdown.
    closed: tokio::sync::Notify,
    /// Ready stem cells per runtime.
    stems: DashMap<stem::StemKey, Arc<stem::RuntimeStemCells>>,
    /// Cold starts that adopted a stem cell.
    stem_adoptions: std::sync::atomic::AtomicU64,
    /// Provisioned concurrency configurations, with the version each runs.
    provisioned: DashMap<provisioned::ProvisionedKey, (Arc<ProvisionedState>, InvokeTarget)>,
    /// Metrics and metering, told about every invocation (set once).
    observer: std::sync::OnceLock<Arc<dyn observer::InvocationObserver>>,
}

fn pool_key(target: &InvokeTarget) -> PoolKey {
    let c = &target.config;
    (
        target.account.clone(),
        target.region.clone(),
        c.name.clone(),
        c.version.clone(),
        c.last_modified.timestamp_nanos_opt().unwrap_or_default(),
    )
}

/// Fetches the Java runtime interface client on first use, logging progress.
/// Installs the Node.js release a runtime names (nodejs22.x → the newest
/// 22.x) from the npm registry, on first use.
async fn install_node_runtime(runtimes_dir: PathBuf, runtime: Runtime) -> Result<(), String> {
    let major = runtimes::node_major(runtime);
    tracing::info!(runtime = %runtime, "installing Node.js {major} from the npm registry");
    tokio::task::spawn_blocking(move || install::install_node(&runtimes_dir, major))
        .await
        .map_err(|e| format!("installing Node.js {major} stopped: {e}"))?
        .map(|dir| tracing::info!(dir = %dir.display(), "installed Node.js {major}"))
        .map_err(|e| {
            format!(
                "Node.js {major} could not be installed ({e}); install it ahead of time with `strato runtimes install {runtime}` (the npm registry must be reachable)"
            )
        })
}

/// Installs the AWS SDKs into the runtime directory unless they are there.
pub async fn provide_sdks(runtimes_dir: PathBuf) -> Result<bool, install::InstallError> {
    let bootstrap = runtimes_dir.join("bootstrap");
    if install::sdks_installed(&bootstrap) {
        return Ok(false);
    }
    tokio::task::spawn_blocking(move || install::install_sdks(&bootstrap, &runtimes_dir))
        .await
        .map_err(|e| install::InstallError::Io(std::io::Error::other(e.to_string())))??;
    Ok(true)
}

async fn install_java_runtime(
    runtimes_dir: &std::path::Path,
    runtime: Runtime,
) -> Result<(), String> {
    use runtimes::maven::{Fetcher, MavenSource, Progress};
    let failed = |what: String| {
        format!(
            "{what}. Install it ahead of time with `strato runtimes install {}` (Maven Central, or the mirror ~/.m2/settings.xml names, must be reachable)",
            runtime.as_str()
        )
    };
    let source = MavenSource::from_machine().map_err(|e| failed(e.to_string()))?;
    tracing::info!(
        "installing AWS's Java runtime interface client {} from {}",
        runtimes::java::RUNTIME_INTERFACE_CLIENT.version,
        source.remote
    );
    let fetcher = Fetcher::new(source).map_err(|e| failed(e.to_string()))?;
    let progress = |p: Progress| match p {
        Progress::Local { artifact } => {
            tracing::info!(
                "{} taken from the local Maven repository",
                artifact.coordinates()
            )
        }
        Progress::Downloaded { artifact, bytes } => {
            tracing::info!(
                "{} downloaded ({bytes} bytes, SHA-1 verified)",
                artifact.coordinates()
            )
        }
        Progress::Downloading { .. } => {}
    };
    runtimes::java::install(runtimes_dir, &fetcher, &progress)
        .await
        .map(|_| ())
        .map_err(|e| {
            failed(format!(
                "cannot install AWS's Java runtime interface client: {e}"
            ))
        })
}

/// `Root=1-{time}-{random};Parent=...;Sampled=0`, an X-Ray trace header.
fn trace_id() -> String {
    let now = chrono::Utc::now().timestamp();
    let root: [u8; 12] = rand::random();
    let parent: [u8; 8] = rand::random();
    format!(
        "Root=1-{now:08x}-{};Parent={};Sampled=0",
        hex::encode(root),
        hex::encode(parent)
    )
}

/// How long after a cold start's first answer its stem-cell pool starts
/// refilling.
const STEM_REFILL_DELAY: Duration = Duration::from_millis(50);

/// Refills a stem-cell pool when dropped (after a cold start's first
/// invocation).
pub(crate) struct StemRefill {
    engine: Arc<Engine>,
    key: stem::StemKey,
    cells: Arc<stem::RuntimeStemCells>,
}

impl Drop for StemRefill {
    fn drop(&mut self) {
        self.engine.refill_stem_cells(self.key, &self.cells);
    }
}

/// Sandbox ids carry the owning server's pid (`s<pid>-<random>`), so a
/// server can recognise sandboxes a crashed predecessor left behind.
fn sandbox_id(instance_id: &str) -> String {
    format!("s{}-{}", std::process::id(), &instance_id[..12])
}

/// True for a sandbox id whose owning process no longer exists.
fn is_orphan(sandbox: &str) -> bool {
    let Some(pid) = sandbox
        .strip_prefix('s')
        .and_then(|rest| rest.split('-').next())
    else {
        return false;
    };
    match pid.parse::<u32>() {
        Ok(pid) => {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        Err(_) => false,
    }
}

fn error_payload(error_type: &str, message: String) -> Bytes {
    Bytes::from(json!({ "errorType": error_type, "errorMessage": message }).to_string())
}

impl Engine {
    /// Detects the sandbox mode, finds runtimes, and starts the idle reaper.
    pub fn start(
        config: EngineConfig,
        code: CodeStore,
        logs: Arc<dyn LogSink>,
    ) -> Result<Arc<Engine>, EngineError> {
        let sandbox = Sandbox::detect(config.sandbox.clone())
            .map_err(|e| EngineError::Sandbox(e.to_string()))?;
        for warning in sandbox.warnings() {
            tracing::warn!("{warning}");
        }
        match sandbox.remove_orphans(is_orphan) {
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
            live: Arc::new(instance::LiveInstances::default()),
            closing: std::sync::atomic::AtomicBool::new(false),
            concurrency: Arc::new(ConcurrencyLimiter::new()),
            memory: MemoryBudget::new(config.memory_budget_mb),
            expired_events: std::sync::atomic::AtomicU64::new(0),
            closed: tokio::sync::Notify::new(),
            stems: DashMap::new(),
            stem_adoptions: std::sync::atomic::AtomicU64::new(0),
            provisioned: DashMap::new(),
            observer: std::sync::OnceLock::new(),
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
    pub fn check_runtime(&self, runtime: Runtime) -> Result<String, String> {
        self.runtimes.check(runtime)
    }

    pub fn runtime_report(&self) -> BTreeMap<&'static str, Result<String, String>> {
        self.runtimes.report()
    }

    /// Like [`Engine::check_runtime`], but first installs what the platform
    /// fetches on first use (the Java runtime interface client, from Maven),
    /// so that creating a Java function just works. Blocks for the download;
    /// the error says how to install ahead of time when that fails.
    pub async fn provide_runtime(&self, runtime: Runtime) -> Result<String, String> {
        if self.runtimes.needs_java_install(runtime) {
            install_java_runtime(&self.config.runtimes_dir, runtime).await?;
        }
        if self.runtimes.needs_node_install(runtime) {
            install_node_runtime(self.config.runtimes_dir.clone(), runtime).await?;
        }
        self.runtimes.check(runtime)
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

    /// Allocates `requested` provisioned instances of `target`'s version
    /// under `key` (a version or alias of a function), replacing what the
    /// key had. Returns at once; the instances start in the background.
    pub fn provision(self: &Arc<Self>, key: ProvisionedKey, target: InvokeTarget, requested: u32) {
        let state = Arc::new(ProvisionedState::new(requested, pool_key(&target)));
        if let Some((old, _)) = self
            .provisioned
            .insert(key, (state.clone(), target.clone()))
        {
            self.end_provisioned(&old);
        }
        self.fill_provisioned(&state, &target);
    }

    /// Ends a provisioned concurrency configuration; its idle instances end.
    pub fn deprovision(&self, key: &ProvisionedKey) {
        if let Some((_, (state, _))) = self.provisioned.remove(key) {
            self.end_provisioned(&state);
        }
    }

    /// The status of a provisioned concurrency configuration.
    pub fn provisioned_report(&self, key: &ProvisionedKey) -> Option<ProvisionedReport> {
        self.provisioned.get(key).map(|entry| entry.0.report())
    }

    fn end_provisioned(&self, state: &ProvisionedState) {
        state.retire();
        if let Some(pool) = self.pools.get(&state.pool_key) {
            pool.end_retired_provisioned();
        }
    }

    /// Starts what provisioned configurations miss (instances that ended).
    fn maintain_provisioned(self: &Arc<Self>) {
        let configs: Vec<_> = self
            .provisioned
            .iter()
            .map(|entry| entry.value().clone())
            .collect();
        for (state, target) in configs {
            self.fill_provisioned(&state, &target);
        }
    }

    fn fill_provisioned(self: &Arc<Self>, state: &Arc<ProvisionedState>, target: &InvokeTarget) {
        if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        for _ in 0..state.claim_missing() {
            let (engine, state, target) = (self.clone(), state.clone(), target.clone());
            tokio::spawn(async move {
                let request_id = uuid::Uuid::new_v4().to_string();
                let started = engine
                    .start_instance(
                        &target,
                        &request_id,
                        Instant::now(),
                        false,
                        INITIALIZATION_PROVISIONED,
                    )
                    .await;
                match started {
                    Ok(Ok(mut instance)) => {
                        // The init happened before any invocation: none reports it.
                        instance.init_duration = None;
                        drop(instance.stem_refill.take());
                        instance.provisioned = Some(state.started());
                        let pool = engine
                            .pools
                            .entry(state.pool_key.clone())
                            .or_default()
                            .clone();
                        pool.release(instance);
                        if state.is_retired() {
                            pool.end_retired_provisioned();
                        }
                    }
                    Ok(Err(answer)) => state.start_failed(format!(
                        "FUNCTION_ERROR_INIT_FAILURE: {}",
                        String::from_utf8_lossy(&answer.payload)
                    )),
                    Err(e) => state.start_failed(e.to_string()),
                }
            });
        }
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

    /// Event invocations dropped because they waited the maximum event age.
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
        let acquired =
            self.concurrency
                .try_acquire(&target.account, &target.region, &target.config.name);
        let permit = match acquired {
            Ok(permit) => permit,
            Err(throttle) => {
                if let Some(observer) = self.observer.get() {
                    observer.throttled(
                        observer::subject_of(&target),
                        chrono::Utc::now().timestamp_millis(),
                    );
                }
                return Err(EngineError::Throttled(throttle));
            }
        };
        self.invoke_admitted(target, request, permit).await
    }

    async fn invoke_admitted(
        self: &Arc<Self>,
        target: InvokeTarget,
        request: InvokeRequest,
        permit: Permit,
    ) -> Result<InvokeResponse, EngineError> {
        let engine = self.clone();
        let observation = observer::Observation::begin(self.observer.get(), &target);
        let task = async move {
            let result = engine.run(target, request).await;
            drop(permit);
            if let Some(observation) = observation {
                observation.end(&result);
            }
            result
        };
        match tokio::spawn(task).await {
            Ok(result) => result,
            Err(e) => Err(EngineError::Instance(format!(
                "invocation task failed: {e}"
            ))),
        }
    }

    /// Queues an event invocation: it waits for a concurrency slot (and for
    /// room in the memory budget) and runs, unless it waited the maximum
    /// event age, after which it is dropped as AWS drops it (there is no
    /// dead-letter queue or on-failure destination yet). The queue is held
    /// in memory: events waiting when the server stops are lost.
    pub fn invoke_event(self: &Arc<Self>, target: InvokeTarget, request: InvokeRequest) {
        let engine = self.clone();
        let deadline = tokio::time::Instant::now() + self.config.max_event_age;
        tokio::spawn(async move {
            let (account, region, name) = (
                target.account.clone(),
                target.region.clone(),
                target.config.name.clone(),
            );
            // AWS retries throttled events from 1 s up to 5 minutes apart.
            let mut backoff = Duration::from_secs(1);
            loop {
                let closed = engine.closed.notified();
                tokio::pin!(closed);
                closed.as_mut().enable();
                if engine.closing.load(std::sync::atomic::Ordering::SeqCst) {
                    tracing::warn!(function = %name, "event dropped: the server is shutting down");
                    return;
                }
                let admitted = tokio::select! {
                    admitted = engine.concurrency.acquire_by(&account, &region, &name, deadline) => admitted,
                    _ = &mut closed => {
                        tracing::warn!(function = %name, "event dropped: the server is shutting down");
                        return;
                    }
                };
                let permit = match admitted {
                    Ok(permit) => permit,
                    Err(throttle) => {
                        engine.expire_event(&name, throttle.reason());
                        return;
                    }
                };
                match engine
                    .invoke_admitted(target.clone(), request.clone(), permit)
                    .await
                {
                    Ok(_) => return,
                    Err(EngineError::MemoryBudgetFull { .. }) => {
                        let now = tokio::time::Instant::now();
                        let expires = now + backoff >= deadline;
                        tokio::select! {
                            _ = tokio::time::sleep_until(deadline.min(now + backoff)) => {}
                            _ = &mut closed => {
                                tracing::warn!(function = %name, "event dropped: the server is shutting down");
                                return;
                            }
                        }
                        if expires {
                            engine.expire_event(&name, "the memory budget stayed full");
                            return;
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(300));
                    }
                    Err(e) => {
                        tracing::warn!(function = %name, error = %e, "asynchronous invocation failed");
                        return;
                    }
                }
            }
        });
    }

    fn expire_event(&self, function: &str, why: &str) {
        self.expired_events
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        tracing::warn!(
            function,
            reason = why,
            max_event_age_s = self.config.max_event_age.as_secs(),
            "event dropped: it reached the maximum event age without running"
        );
    }

    /// Charges a new instance of `target` to the memory budget, ending the
    /// least recently used idle instances of other pools to make room.
    fn charge_memory(&self, target: &InvokeTarget) -> Result<MemoryCharge, EngineError> {
        let mb = u64::try_from(target.config.memory_size).unwrap_or(0);
        let own = pool_key(target);
        let full = || EngineError::MemoryBudgetFull {
            needed_mb: mb,
            used_mb: self.memory.used_mb(),
            budget_mb: self.memory.budget_mb(),
        };
        if mb > self.memory.budget_mb() {
            // Ending other instances could never make room.
            return Err(full());
        }
        loop {
            if let Some(charge) = self.memory.try_charge(mb) {
                return Ok(charge);
            }
            let victim = self
                .pools
                .iter()
                .filter(|p| *p.key() != own)
                .filter_map(|p| p.oldest_idle().map(|since| (since, p.value().clone())))
                .min_by_key(|(since, _)| *since);
            let Some((_, pool)) = victim else {
                return Err(full());
            };
            if let Some(instance) = pool.take_oldest() {
                tracing::info!(
                    instance = %instance.id,
                    "ending the least recently used idle instance: the memory budget is full"
                );
                drop(instance);
            }
        }
    }

    fn instance_env(
        &self,
        target: &InvokeTarget,
        log_stream: &str,
        initialization: &'static str,
    ) -> BTreeMap<String, String> {
        let c = &target.config;
        let plan_env = self
            .runtimes
            .plan(c.runtime)
            .map(|p| p.env)
            .unwrap_or_default();
        let mut env: BTreeMap<String, String> = plan_env.into_iter().collect();
        if let Some(vars) = &c.environment {
            env.extend(vars.clone());
        }
        let reserved = [
            ("AWS_LAMBDA_FUNCTION_NAME", c.name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", c.version.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", c.memory_size.to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", c.log_group.clone()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream.to_string()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", initialization.into()),
            ("AWS_REGION", target.region.clone()),
            ("AWS_DEFAULT_REGION", target.region.clone()),
            ("_HANDLER", c.handler.clone().unwrap_or_default()),
            ("LAMBDA_TASK_ROOT", TASK_ROOT.into()),
            ("LAMBDA_RUNTIME_DIR", RUNTIME_DIR.into()),
            ("TZ", ":UTC".into()),
        ];
        for (k, v) in reserved {
            env.insert(k.into(), v);
        }
        if let Some((key, secret)) = &target.credentials {
            env.insert("AWS_ACCESS_KEY_ID".into(), key.clone());
            env.insert("AWS_SECRET_ACCESS_KEY".into(), secret.clone());
        }
        if let Some(endpoint) = self.api_endpoint.get() {
            let url = match self.sandbox.mode() {
                SandboxMode::Strong => format!("http://{}", instance::INSTANCE_API_ADDR),
                SandboxMode::Fallback => endpoint.host_url.clone(),
            };
            env.insert("AWS_ENDPOINT_URL".into(), url);
        }
        env
    }

    /// The merged `/opt` tree of a version's layers (built once per ordered
    /// list of layer packages), or `None` without layers.
    async fn layers_dir(&self, c: &FunctionConfig) -> Result<Option<PathBuf>, StartError> {
        if c.layers.is_empty() {
            return Ok(None);
        }
        let code = self.code.clone();
        let ids: Vec<String> = c.layers.iter().map(|l| l.code.sha256_hex.clone()).collect();
        tokio::task::spawn_blocking(move || code.merged_layers(&ids))
            .await
            .map_err(|e| StartError::Platform(format!("layer preparation: {e}")))?
            .map(Some)
            .map_err(|e| StartError::Platform(format!("layer preparation: {e}")))
    }

    /// The stem-cell pool a cold start of `c` takes from: none when the
    /// function sets something that must be there when its process starts.
    fn stem_pool_for(
        self: &Arc<Self>,
        c: &FunctionConfig,
    ) -> Option<(stem::StemKey, Arc<stem::RuntimeStemCells>)> {
        if self.config.stem_cells == 0 || self.sandbox.mode() != SandboxMode::Strong {
            return None;
        }
        let family = c.runtime.family();
        if c.environment
            .iter()
            .flat_map(|vars| vars.keys())
            .any(|key| stem::env_needs_fresh_process(family, key))
        {
            return None;
        }
        let key = stem::stem_key(c.runtime, c.memory_size);
        Some((key, self.stems.entry(key).or_default().clone()))
    }

    fn refill_stem_cells(
        self: &Arc<Self>,
        key: stem::StemKey,
        cells: &Arc<stem::RuntimeStemCells>,
    ) {
        while cells.claim_launch(self.config.stem_cells) {
            let engine = self.clone();
            let cells = cells.clone();
            tokio::spawn(async move {
                // Launching a sandbox takes a CPU for tens of milliseconds:
                // let the answer that triggered the refill reach its caller.
                tokio::time::sleep(STEM_REFILL_DELAY).await;
                if !engine.closing.load(std::sync::atomic::Ordering::SeqCst) {
                    match engine.launch_stem_cell(key).await {
                        Ok(cell) if !engine.closing.load(std::sync::atomic::Ordering::SeqCst) => {
                            cells.put(cell)
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(runtime = %key.0, error = ?e, "cannot start a stem cell")
                        }
                    }
                }
                cells.launch_ended();
            });
        }
    }

    async fn launch_stem_cell(
        self: &Arc<Self>,
        (runtime, memory_mb): stem::StemKey,
    ) -> Result<StemCell, StartError> {
        let plan = if runtime.family() == strato_model::RuntimeFamily::Java {
            let engine = self.clone();
            tokio::task::spawn_blocking(move || engine.runtimes.java_stem_plan(runtime, memory_mb))
                .await
                .map_err(|e| StartError::Platform(format!("runtime {runtime}: {e}")))?
        } else {
            self.runtimes.plan(runtime)
        }
        .map_err(|reason| StartError::Platform(format!("runtime {runtime}: {reason}")))?;
        let empty = self.runtimes.empty_dir();
        let mut mounts = plan.mounts.clone();
        mounts.push(BindMount::read_only(empty.clone(), TASK_ROOT));
        mounts.push(BindMount::read_only(empty, runtimes::OPT_DIR));
        let (program, args) = if runtime.family() == strato_model::RuntimeFamily::OsOnly {
            mounts.push(BindMount::read_only(
                self.config.sandbox.init_program.clone(),
                stem::STEM_WAITER_PATH,
            ));
            (
                PathBuf::from(stem::STEM_WAITER_PATH),
                vec![stem::STEM_WAITER_ARG.to_string()],
            )
        } else {
            (plan.program.clone(), plan.args.clone())
        };
        let mut env: BTreeMap<String, String> = plan.env.into_iter().collect();
        for (key, value) in [
            ("STRATO_STEM_CELL", "1"),
            ("LAMBDA_TASK_ROOT", TASK_ROOT),
            ("LAMBDA_RUNTIME_DIR", RUNTIME_DIR),
            ("TZ", ":UTC"),
        ] {
            env.insert(key.into(), value.into());
        }
        let instance_id = uuid::Uuid::new_v4().simple().to_string();
        let serve_api = match self.sandbox.mode() {
            SandboxMode::Strong => self.api_endpoint.get().map(|e| e.serve.clone()),
            SandboxMode::Fallback => None,
        };
        StemCell::launch(
            &self.sandbox,
            self.logs.clone(),
            StemLaunch {
                id: sandbox_id(&instance_id),
                program,
                args,
                mounts,
                env,
            },
            serve_api,
            &self.live,
        )
        .await
    }

    async fn cold_start(
        self: &Arc<Self>,
        target: &InvokeTarget,
        initialization: &'static str,
    ) -> Result<Instance, StartError> {
        let c = &target.config;
        let plan = self
            .runtimes
            .plan_for(c.runtime, c.handler.as_deref(), c.memory_size)
            .map_err(|reason| {
                StartError::Platform(format!("runtime {} is not available: {reason}", c.runtime))
            })?;
        let code = self.code.clone();
        let code_id = c.code.sha256_hex.clone();
        let code_dir = tokio::task::spawn_blocking(move || code.extract(&code_id))
            .await
            .map_err(|e| StartError::Platform(format!("code preparation: {e}")))?
            .map_err(|e| StartError::Platform(format!("code preparation: {e}")))?;
        let opt_dir = self.layers_dir(c).await?;
        let instance_id = uuid::Uuid::new_v4().simple().to_string();
        let log_stream = format!(
            "{}/[{}]{}",
            chrono::Utc::now().format("%Y/%m/%d"),
            c.version,
            instance_id
        );
        let env = self.instance_env(target, &log_stream, initialization);
        let version = plan.version.clone();
        let spec = InstanceSpec {
            id: sandbox_id(&instance_id),
            code_dir,
            opt_dir,
            plan,
            memory_mb: c.memory_size,
            ephemeral_mb: c.ephemeral_storage,
            env,
            log_group: c.log_group.clone(),
            log_stream: log_stream.clone(),
            init_timeout: self.config.init_timeout + Duration::from_secs(c.timeout.max(1) as u64),
        };
        // Which runtime ran is part of the record, as AWS's INIT_START line shows it.
        let logs = logs::owned_by(&self.logs, &target.account, &target.region);
        logs.append(
            &c.log_group,
            &log_stream,
            vec![logs::LogEvent {
                timestamp_ms: chrono::Utc::now().timestamp_millis(),
                message: format!("INIT_START Runtime Version: {version}"),
            }],
        );
        let stem_pool = self.stem_pool_for(c);
        let cell = stem_pool.as_ref().and_then(|(_, cells)| cells.take());
        // The pool refills once the first invocation is answered (or the
        // start failed), so launching the replacement does not compete with
        // the function's init and first event for the CPU.
        let mut refill = stem_pool.map(|(key, cells)| StemRefill {
            engine: self.clone(),
            key,
            cells,
        });
        if let Some(cell) = cell {
            let mut mounts = vec![BindMount::read_only(spec.code_dir.clone(), TASK_ROOT)];
            if let Some(opt_dir) = &spec.opt_dir {
                mounts.push(BindMount::read_only(opt_dir.clone(), runtimes::OPT_DIR));
            }
            // An OS-only runtime's process is the function's own executable.
            let exec = (c.runtime.family() == strato_model::RuntimeFamily::OsOnly).then(|| {
                std::iter::once(spec.plan.program.display().to_string())
                    .chain(spec.plan.args.iter().cloned())
                    .collect()
            });
            let adoption = Adoption {
                mounts,
                memory_mb: spec.memory_mb,
                ephemeral_mb: spec.ephemeral_mb,
                assignment: runtime_api::Assignment {
                    env: spec.env.clone(),
                    exec,
                },
                sink: logs.clone(),
                log_group: spec.log_group.clone(),
                log_stream: spec.log_stream.clone(),
                init_timeout: spec.init_timeout,
            };
            let cell_id = cell.id().to_string();
            match cell.adopt(adoption).await {
                Ok(mut instance) => {
                    self.stem_adoptions
                        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                    instance.stem_refill = refill.take();
                    return Ok(instance);
                }
                // The cell was unusable (it ended while waiting): the
                // function's init never ran, so a fresh instance is fair.
                Err(StartError::Platform(reason)) => tracing::warn!(
                    cell = %cell_id,
                    "stem cell not adopted ({reason}); starting a fresh instance"
                ),
                Err(failure) => return Err(failure),
            }
        }
        let serve_api = match self.sandbox.mode() {
            SandboxMode::Strong => self.api_endpoint.get().map(|e| e.serve.clone()),
            SandboxMode::Fallback => None,
        };
        let mut instance =
            Instance::start(&self.sandbox, logs, spec, serve_api, self.live.enter()).await?;
        instance.stem_refill = refill.take();
        Ok(instance)
    }

    /// A fresh instance, or the answer a failed init gives the caller.
    async fn start_instance(
        self: &Arc<Self>,
        target: &InvokeTarget,
        request_id: &str,
        started: Instant,
        tail_log: bool,
        initialization: &'static str,
    ) -> Result<Result<Instance, InvokeResponse>, EngineError> {
        let charge = self.charge_memory(target)?;
        match self.cold_start(target, initialization).await {
            Ok(mut instance) => {
                instance.memory = Some(charge);
                Ok(Ok(instance))
            }
            Err(StartError::Platform(reason)) => Err(EngineError::Instance(reason)),
            Err(failure) => Ok(Err(
                self.init_failure(target, request_id, failure, started, tail_log)
            )),
        }
    }

    async fn run(
        self: Arc<Self>,
        target: InvokeTarget,
        request: InvokeRequest,
    ) -> Result<InvokeResponse, EngineError> {
        if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        let c = target.config.clone();
        let request_id = uuid::Uuid::new_v4().to_string();
        let key = pool_key(&target);
        let pool = self.pools.entry(key).or_default().clone();
        let started = Instant::now();

        let mut instance = match pool.acquire() {
            Some(instance) => instance,
            None => match self
                .start_instance(
                    &target,
                    &request_id,
                    started,
                    request.tail_log,
                    INITIALIZATION_ON_DEMAND,
                )
                .await?
            {
                Ok(instance) => instance,
                Err(answer) => return Ok(answer),
            },
        };
        // A warm instance can end between its last invocation and this one
        // (its runtime exited after answering). If it ends before taking the
        // event, the event was never delivered: start a fresh instance for it.
        if !instance.is_alive() {
            drop(instance);
            instance = match self
                .start_instance(
                    &target,
                    &request_id,
                    started,
                    request.tail_log,
                    INITIALIZATION_ON_DEMAND,
                )
                .await?
            {
                Ok(instance) => instance,
                Err(answer) => return Ok(answer),
            };
        }
        let init_duration = instance.init_duration.take();
        let mut logs = instance.logs.clone();
        if request.tail_log {
            logs.begin_invocation();
        }
        logs.line(format!(
            "START RequestId: {request_id} Version: {}",
            c.version
        ));

        let timeout = Duration::from_secs(c.timeout.max(1) as u64);
        let deadline_ms = chrono::Utc::now().timestamp_millis() + timeout.as_millis() as i64;
        let dispatch = Dispatch {
            request_id: request_id.clone(),
            payload: request.payload.clone(),
            deadline_ms,
            invoked_function_arn: target.invoked_arn.clone(),
            trace_id: trace_id(),
            client_context: request.client_context.clone(),
            cognito_identity: request.cognito_identity.clone(),
        };
        let mut invoke_started = Instant::now();
        let mut end = instance.invoke(dispatch.clone(), timeout).await;
        if let InvocationEnd::Undelivered(_) = end {
            // The warm instance ended before it took the event: the event
            // goes to a fresh instance instead of failing for nothing.
            instance = match self
                .start_instance(
                    &target,
                    &request_id,
                    started,
                    request.tail_log,
                    INITIALIZATION_ON_DEMAND,
                )
                .await?
            {
                Ok(instance) => instance,
                Err(answer) => return Ok(answer),
            };
            logs = instance.logs.clone();
            if request.tail_log {
                logs.begin_invocation();
            }
            logs.line(format!(
                "START RequestId: {request_id} Version: {}",
                c.version
            ));
            invoke_started = Instant::now();
            end = instance.invoke(dispatch, timeout).await;
        }
        let duration = invoke_started.elapsed();

        let (payload, function_error, keep) = match end {
            InvocationEnd::Completed(Outcome::Response(body)) => (body, None, true),
            InvocationEnd::Completed(Outcome::Error { body, .. }) => {
                (body, Some("Unhandled"), true)
            }
            InvocationEnd::Completed(Outcome::ResponseTooLarge { .. }) => {
                // As AWS words it (the size itself is not in the message).
                let message = format!(
                    "Response payload size exceeded maximum allowed payload size ({} bytes).",
                    runtime_api::MAX_RESPONSE_BYTES
                );
                logs.line(format!(
                    "{} {request_id} ERROR {message}",
                    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ")
                ));
                (
                    error_payload("Function.ResponseSizeTooLarge", message),
                    Some("Unhandled"),
                    true,
                )
            }
            InvocationEnd::Died(death) | InvocationEnd::Undelivered(death) => (
                self.died_payload(&request_id, death),
                Some("Unhandled"),
                false,
            ),
            InvocationEnd::TimedOut => {
                let secs = timeout.as_secs_f64();
                logs.line(format!(
                    "{} {request_id} Task timed out after {secs:.2} seconds",
                    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ")
                ));
                instance.kill().await;
                (
                    error_payload(
                        "Sandbox.Timedout",
                        format!(
                            "RequestId: {request_id} Error: Task timed out after {secs:.2} seconds"
                        ),
                    ),
                    Some("Unhandled"),
                    false,
                )
            }
        };
        instance.flush_logs();
        let max_memory_mb = instance.memory_peak().await.div_ceil(1024 * 1024);
        let billed_ms = (duration.as_secs_f64() * 1000.0).ceil().max(1.0) as u64;
        logs.line(format!("END RequestId: {request_id}"));
        let mut report = format!(
            "REPORT RequestId: {request_id}\tDuration: {:.2} ms\tBilled Duration: {billed_ms} ms\tMemory Size: {} MB\tMax Memory Used: {max_memory_mb} MB",
            duration.as_secs_f64() * 1000.0,
            c.memory_size
        );
        if let Some(init) = init_duration {
            report.push_str(&format!(
                "\tInit Duration: {:.2} ms",
                init.as_secs_f64() * 1000.0
            ));
        }
        report.push('\t');
        logs.line(report);
        let log_result = request
            .tail_log
            .then(|| base64::engine::general_purpose::STANDARD.encode(logs.end_invocation()));
        let provisioned_allocation = instance
            .provisioned
            .as_ref()
            .filter(|mark| mark.is_current())
            .map(provisioned::ProvisionedMark::allocated);
        let stem_refill = instance.stem_refill.take();
        if keep && instance.is_alive() {
            pool.release(instance);
        }
        drop(stem_refill);
        Ok(InvokeResponse {
            request_id,
            payload,
            function_error,
            executed_version: c.version.clone(),
            log_result,
            duration,
            billed_ms,
            init_duration,
            max_memory_mb,
            provisioned_allocation,
        })
    }

    fn died_payload(&self, request_id: &str, death: Death) -> Bytes {
        let error_type = if death.oom {
            "Runtime.OutOfMemory"
        } else {
            "Runtime.ExitError"
        };
        error_payload(
            error_type,
            format!(
                "RequestId: {request_id} Error: Runtime exited with error: {}",
                death.describe()
            ),
        )
    }

    /// The answer when an instance never became ready.
    fn init_failure(
        &self,
        target: &InvokeTarget,
        request_id: &str,
        failure: StartError,
        started: Instant,
        tail_log: bool,
    ) -> InvokeResponse {
        let (payload, log) = match failure {
            StartError::InitFailed { body, log, .. } => (body, log),
            StartError::Exited { death, log, .. } => (self.died_payload(request_id, death), log),
            StartError::TimedOut { log, .. } => (
                error_payload(
                    "Sandbox.Timedout",
                    format!(
                        "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                        target.config.timeout as f64
                    ),
                ),
                log,
            ),
            StartError::Platform(reason) => {
                (error_payload("Runtime.Unknown", reason), String::new())
            }
        };
        let duration = started.elapsed();
        InvokeResponse {
            request_id: request_id.to_string(),
            payload,
            function_error: Some("Unhandled"),
            executed_version: target.config.version.clone(),
            log_result: tail_log.then(|| base64::engine::general_purpose::STANDARD.encode(log)),
            duration,
            billed_ms: (duration.as_secs_f64() * 1000.0).ceil().max(1.0) as u64,
            init_duration: None,
            max_memory_mb: 0,
            provisioned_allocation: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandboxes_of_this_process_are_not_orphans() {
        let id = sandbox_id("0123456789abcdef0123456789abcdef");
        assert!(id.starts_with(&format!("s{}-", std::process::id())));
        assert!(!is_orphan(&id));
    }

    #[test]
    fn sandboxes_of_a_dead_process_are_orphans() {
        // Pids above the kernel's maximum (4194304) never exist.
        assert!(is_orphan("s4294967-0123456789ab"));
    }

    #[test]
    fn foreign_cgroup_names_are_left_alone() {
        assert!(!is_orphan("listen-27954-10"));
        assert!(!is_orphan("strato-abc"));
    }
}
