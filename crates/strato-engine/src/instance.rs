//! One execution environment: a sandboxed runtime process, its Runtime API
//! and its logs, from cold start to its end.
//!
//! Why over 800 lines: an instance's start is one sequence (sandbox spec,
//! the namespace's sockets — Runtime API, Strato's API over HTTP and HTTPS,
//! DNS — credentials, launch, readiness) whose steps share the spec being
//! built; splitting it would pass that half-built state between files.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strato_sandbox::{
    BindMount, MemoryPeakGauge, ResourceLimits, Sandbox, SandboxExit, SandboxMode, SandboxSpec,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::PlatformError;
use crate::live::{LiveInstances, LiveToken, StemMark};
use crate::logs::{LogCapture, LogPipe, LogSink};
use crate::runtime_api::{self, Assignment, Dispatch, InitSignal, InstanceChannel, Outcome};
use crate::runtimes::{LaunchPlan, OPT_DIR, RUNTIME_DIR, TASK_ROOT};

/// The address every instance's runtime sees its Runtime API at.
pub const RUNTIME_API_ADDR: &str = "127.0.0.1:9001";
/// CPU available to a runtime's init phase, in CPUs.
const INIT_CPU_SHARE: f64 = 1.0;

/// The CPU share of a function, as on AWS: one vCPU per 1769 MB.
fn cpu_share(memory_mb: i64) -> f64 {
    (memory_mb as f64 / strato_model::limits::MEMORY_MB_PER_VCPU as f64).clamp(0.05, 6.0)
}

/// Bytes of a `MemorySize` or `EphemeralStorage` size in MB, at least one
/// MB; sizes beyond `u64` bytes saturate.
fn mb_to_bytes(mb: i64) -> u64 {
    mb.max(1).unsigned_abs().saturating_mul(1024 * 1024)
}

/// Where Strato's own API answers inside an isolated instance.
pub const INSTANCE_API_ADDR: &str = "127.0.0.1:9000";
/// ... and over HTTPS, for clients that address it by AWS's host names.
pub const INSTANCE_HTTPS_ADDR: &str = "127.0.0.1:443";

/// How an instance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Death {
    pub exit: SandboxExit,
    /// The kernel killed it for exceeding its memory limit.
    pub oom: bool,
}

impl Death {
    /// As AWS words it after "Runtime exited with error: ".
    pub fn describe(&self) -> String {
        match self.exit {
            SandboxExit::Code(code) => format!("exit status {code}"),
            SandboxExit::Signal(sig) => match nix::sys::signal::Signal::try_from(sig) {
                Ok(nix::sys::signal::Signal::SIGKILL) => "signal: killed".into(),
                Ok(s) => format!("signal: {}", signal_name(s)),
                Err(_) => format!("signal: {sig}"),
            },
        }
    }
}

fn signal_name(sig: nix::sys::signal::Signal) -> String {
    use nix::sys::signal::Signal::*;
    match sig {
        SIGSEGV => "segmentation fault".into(),
        SIGABRT => "aborted".into(),
        SIGTERM => "terminated".into(),
        SIGBUS => "bus error".into(),
        other => other.as_str().trim_start_matches("SIG").to_lowercase(),
    }
}

enum Control {
    Kill,
    /// Changes the CPU share (a fraction of one CPU).
    SetCpu(f64),
    /// A stem cell's adoption: mount the function's directories, resize
    /// `/tmp`, set the memory limit.
    Adopt {
        mounts: Vec<BindMount>,
        tmp_bytes: u64,
        memory_bytes: u64,
        reply: oneshot::Sender<strato_sandbox::Result<()>>,
    },
}

/// Everything a sandbox is launched with.
struct Launch {
    id: String,
    program: PathBuf,
    args: Vec<String>,
    mounts: Vec<BindMount>,
    memory_mb: i64,
    cpu_fraction: f64,
    tmp_bytes: u64,
    env: BTreeMap<String, String>,
    /// Where a stem cell's assignment will come from.
    assignment: Option<oneshot::Receiver<Assignment>>,
}

/// An instance whose runtime process runs but whose init has not been
/// awaited.
struct Launched {
    instance: Instance,
    init_rx: oneshot::Receiver<InitSignal>,
}

/// What the engine knows of the function when it starts an instance.
pub struct InstanceSpec {
    pub id: String,
    pub code_dir: PathBuf,
    /// The function's layers merged into one read-only tree, bound at
    /// `/opt`; `None` when the function has no layers.
    pub opt_dir: Option<PathBuf>,
    pub plan: LaunchPlan,
    pub memory_mb: i64,
    pub ephemeral_mb: i64,
    /// The complete environment, except `AWS_LAMBDA_RUNTIME_API`, which depends on
    /// where the Runtime API ends up listening.
    pub env: BTreeMap<String, String>,
    pub log_group: String,
    pub log_stream: String,
    pub init_timeout: Duration,
}

#[derive(Debug)]
pub enum StartError {
    /// The platform could not start the instance.
    Platform(PlatformError),
    /// The runtime reported an init error.
    InitFailed {
        error_type: Option<String>,
        body: Bytes,
        init: Duration,
        /// What the runtime logged during init (for `LogType: Tail`).
        log: String,
    },
    /// The runtime ended before it was ready.
    Exited {
        death: Death,
        init: Duration,
        log: String,
    },
    /// Init took longer than allowed.
    TimedOut { init: Duration, log: String },
}

/// Ends the init phase's log with AWS's `INIT_REPORT` line and returns its text.
fn init_log(logs: &LogCapture, init: Duration, error_type: &str) -> String {
    logs.line(format!(
        "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: error\tError Type: {error_type}",
        init.as_secs_f64() * 1000.0
    ));
    logs.end_invocation()
}

/// How one invocation on an instance ended.
#[derive(Debug)]
pub enum InvocationEnd {
    Completed(Outcome),
    Died(Death),
    /// The instance ended before its runtime took the event.
    Undelivered(Death),
    TimedOut,
}

pub struct Instance {
    pub id: String,
    pub logs: Arc<LogCapture>,
    /// How long the runtime's init took (reported on the first invocation).
    pub init_duration: Option<Duration>,
    channel: Arc<InstanceChannel>,
    dispatch_tx: mpsc::Sender<Dispatch>,
    control_tx: mpsc::UnboundedSender<Control>,
    alive: Arc<AtomicBool>,
    /// Peak memory, recorded by the watcher before the sandbox is removed.
    final_peak: Arc<AtomicU64>,
    /// Reads the live peak without a round trip to the watcher task.
    peak_gauge: Option<MemoryPeakGauge>,
    death: watch::Receiver<Option<Death>>,
    pipes: Vec<Arc<LogPipe>>,
    server: JoinHandle<()>,
    /// Strato's API (HTTP, and HTTPS with the resolver for AWS's names)
    /// inside the instance's network.
    api_servers: Vec<JoinHandle<()>>,
    /// The share of the host's memory budget this instance holds; returned
    /// when the instance is dropped (ended).
    pub(crate) memory: Option<crate::memory::MemoryCharge>,
    /// Set on instances of a provisioned concurrency configuration.
    pub(crate) provisioned: Option<crate::provisioned::ProvisionedMark>,
    /// The stem-cell refill a cold start owes, paid after its first
    /// invocation.
    pub(crate) stem_refill: Option<crate::stem::StemRefill>,
    /// When the instance stops taking invocations: shortly before the
    /// credentials in its environment expire.
    pub(crate) retire_at: Option<Instant>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.control_tx.send(Control::Kill);
        self.server.abort();
        for api in &self.api_servers {
            api.abort();
        }
    }
}

fn owned_fd<T: Into<OwnedFd>>(io: T) -> OwnedFd {
    io.into()
}

/// Resolves when the instance has ended, with how it ended.
async fn died(mut death: watch::Receiver<Option<Death>>) -> Death {
    let unknown = Death {
        exit: SandboxExit::Signal(9),
        oom: false,
    };
    let seen = match death.wait_for(Option::is_some).await {
        Ok(d) => *d,
        Err(_) => None,
    };
    seen.unwrap_or(unknown)
}

impl Instance {
    /// Cold start: sandbox, Runtime API, process, and the runtime's init.
    pub async fn start(
        sandbox: &Sandbox,
        sink: Arc<dyn LogSink>,
        spec: InstanceSpec,
        serve_api: Option<crate::ApiEndpoint>,
        live: LiveToken,
    ) -> Result<Instance, StartError> {
        let started = Instant::now();
        let mut mounts = spec.plan.mounts.clone();
        mounts.push(BindMount::read_only(spec.code_dir.clone(), TASK_ROOT));
        if let Some(opt_dir) = &spec.opt_dir {
            mounts.push(BindMount::read_only(opt_dir.clone(), OPT_DIR));
        }
        let logs = Arc::new(LogCapture::new(
            sink,
            spec.log_group.clone(),
            spec.log_stream.clone(),
        ));
        let launch = Launch {
            id: spec.id.clone(),
            program: spec.plan.program.clone(),
            args: spec.plan.args.clone(),
            mounts,
            memory_mb: spec.memory_mb,
            cpu_fraction: cpu_share(spec.memory_mb).max(INIT_CPU_SHARE),
            tmp_bytes: mb_to_bytes(spec.ephemeral_mb),
            env: spec.env.clone(),
            assignment: None,
        };
        let launched = Instance::launch(sandbox, launch, logs, serve_api, live).await?;
        launched.instance.start_log_readers();
        launched
            .await_init(started, spec.init_timeout, cpu_share(spec.memory_mb))
            .await
    }

    /// Starts the sandbox, its Runtime API and the runtime process; does not
    /// wait for the runtime's init.
    async fn launch(
        sandbox: &Sandbox,
        launch: Launch,
        logs: Arc<LogCapture>,
        serve_api: Option<crate::ApiEndpoint>,
        live: LiveToken,
    ) -> Result<Launched, StartError> {
        let started = Instant::now();
        let bind = |listener: &'static str| {
            move |source| StartError::Platform(PlatformError::Bind { listener, source })
        };
        let listen = |listener: &'static str| {
            move |source| StartError::Platform(PlatformError::Listener { listener, source })
        };
        let network = sandbox
            .take_network()
            .map_err(|e| StartError::Platform(PlatformError::Network(e)))?;
        let address = |a: &str| {
            a.parse::<std::net::SocketAddr>()
                .map_err(|e| StartError::Platform(PlatformError::Address(e)))
        };
        // Every listener of the instance in one pass through its namespace:
        // the Runtime API, then Strato's API, its HTTPS side and the resolver.
        let hostnames = serve_api.as_ref().and_then(|a| a.aws_hostnames.clone());
        let mut tcp = vec![address(RUNTIME_API_ADDR)?];
        let mut udp = Vec::new();
        if serve_api.is_some() {
            tcp.push(address(INSTANCE_API_ADDR)?);
        }
        if hostnames.is_some() {
            tcp.push(address(INSTANCE_HTTPS_ADDR)?);
            tcp.push(address(crate::dns::INSTANCE_DNS_ADDR)?);
            udp.push(address(crate::dns::INSTANCE_DNS_ADDR)?);
        }
        let (listeners, sockets) = network
            .bind_many(&tcp, &udp)
            .map_err(bind("instance listeners"))?;
        let mut listeners = listeners.into_iter();
        let to_tokio = |listener: std::net::TcpListener, name: &'static str| {
            listener.set_nonblocking(true).map_err(listen(name))?;
            tokio::net::TcpListener::from_std(listener).map_err(listen(name))
        };
        let listener = listeners.next().ok_or_else(|| {
            StartError::Platform(PlatformError::Listener {
                listener: "runtime API listener",
                source: std::io::Error::other("not opened"),
            })
        })?;
        let api_address = match sandbox.mode() {
            SandboxMode::Strong => RUNTIME_API_ADDR.to_string(),
            SandboxMode::Fallback => listener
                .local_addr()
                .map_err(listen("listener"))?
                .to_string(),
        };
        let listener = to_tokio(listener, "listener")?;

        let mut api_servers = Vec::new();
        if let (Some(endpoint), Some(api_listener)) = (&serve_api, listeners.next()) {
            api_servers.push((endpoint.serve)(to_tokio(api_listener, "API listener")?));
        }
        if let (Some(names), Some(https), Some(dns_tcp), Some(dns_udp)) = (
            &hostnames,
            listeners.next(),
            listeners.next(),
            sockets.into_iter().next(),
        ) {
            api_servers.push((names.serve_tls)(to_tokio(https, "HTTPS listener")?));
            match names.upstreams.serve(dns_udp, dns_tcp) {
                Ok(task) => api_servers.push(task),
                Err(source) => {
                    for api in &api_servers {
                        api.abort();
                    }
                    return Err(StartError::Platform(PlatformError::Listener {
                        listener: "DNS sockets",
                        source,
                    }));
                }
            }
        }
        let ends = InstanceChannel::open(launch.assignment);
        let channel = ends.channel.clone();
        let app = runtime_api::router(channel.clone());
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let mut sandbox_spec = SandboxSpec::new(launch.id.clone(), launch.program.clone());
        sandbox_spec.args = launch.args.clone();
        sandbox_spec.cwd = PathBuf::from(TASK_ROOT);
        sandbox_spec.mounts = launch.mounts.clone();
        sandbox_spec.hostname =
            format!("169.254.{}.{}", rand::random::<u8>(), rand::random::<u8>());
        if hostnames.is_some() {
            sandbox_spec.resolv_conf = Some(crate::dns::INSTANCE_RESOLV_CONF.to_string());
        }
        sandbox_spec.limits = ResourceLimits {
            memory_bytes: mb_to_bytes(launch.memory_mb),
            // Init runs with at least a whole CPU, so a small function's cold
            // start is not stretched by its invocation-time share; the share
            // applies from the first invocation on.
            cpu_fraction: launch.cpu_fraction,
            max_pids: 1024,
            tmp_bytes: launch.tmp_bytes,
            max_open_files: 1024,
        };
        let mut env = launch.env.clone();
        env.insert("AWS_LAMBDA_RUNTIME_API".into(), api_address);
        if sandbox.mode() == SandboxMode::Fallback {
            // No private mount namespace: point the runtime at the host paths.
            for key in ["LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"] {
                if let Some(value) = env.get(key).cloned() {
                    env.insert(
                        key.into(),
                        sandbox_spec
                            .host_path(std::path::Path::new(&value))
                            .display()
                            .to_string(),
                    );
                }
            }
            // Search paths into the layers (`/opt/nodejs/node_modules`,
            // `/opt/bin`, `/opt/lib`) name the merged layer tree on the host.
            for key in ["NODE_PATH", "PATH", "LD_LIBRARY_PATH"] {
                if let Some(value) = env.get(key).cloned() {
                    let translated: Vec<String> = value
                        .split(':')
                        .map(|entry| {
                            if entry.starts_with(OPT_DIR) {
                                let host = sandbox_spec.host_path(std::path::Path::new(entry));
                                host.display().to_string()
                            } else {
                                entry.to_string()
                            }
                        })
                        .collect();
                    env.insert(key.into(), translated.join(":"));
                }
            }
            sandbox_spec.program = sandbox_spec.host_path(&sandbox_spec.program);
            sandbox_spec.args = sandbox_spec
                .args
                .iter()
                .map(|a| {
                    let inside = |p: &str| {
                        p.starts_with(RUNTIME_DIR)
                            || p.starts_with(TASK_ROOT)
                            || p.starts_with(OPT_DIR)
                    };
                    let host = |p: &str| {
                        sandbox_spec
                            .host_path(std::path::Path::new(p))
                            .display()
                            .to_string()
                    };
                    // A JVM system property (`-Dname=/var/runtime/...`) names a path too.
                    match a.strip_prefix("-D").and_then(|p| p.split_once('=')) {
                        Some((key, value)) if inside(value) => format!("-D{key}={}", host(value)),
                        _ if inside(a) => host(a),
                        _ => a.clone(),
                    }
                })
                .collect();
            sandbox_spec.cwd = sandbox_spec.host_path(&sandbox_spec.cwd);
        }
        sandbox_spec.env = env.into_iter().collect();

        let mut process = match sandbox.spawn(sandbox_spec, network).await {
            Ok(p) => p,
            Err(e) => {
                server.abort();
                for api in &api_servers {
                    api.abort();
                }
                return Err(StartError::Platform(PlatformError::Spawn(e)));
            }
        };
        tracing::debug!(instance = %launch.id, spawned_ms = started.elapsed().as_secs_f64() * 1000.0, "instance process started");
        let mut pipes = Vec::new();
        let outputs: Vec<OwnedFd> = [
            process.take_stdout().and_then(|s| s.into_owned_fd().ok()),
            process.take_stderr().and_then(|s| s.into_owned_fd().ok()),
        ]
        .into_iter()
        .flatten()
        .map(owned_fd)
        .collect();
        for fd in outputs {
            match LogPipe::new(fd) {
                Ok(pipe) => pipes.push(pipe),
                Err(e) => tracing::warn!(error = %e, "cannot read instance output"),
            }
        }

        // Kept open for the instance's life: REPORT reads it after every invocation.
        let peak_gauge = match process.memory_peak_gauge() {
            Ok(gauge) => Some(gauge),
            Err(e) => {
                tracing::warn!(error = %e, "cannot open the instance's memory peak");
                None
            }
        };
        let alive = Arc::new(AtomicBool::new(true));
        let (death_tx, death_rx) = watch::channel(None);
        let (control_tx, mut control_rx) = mpsc::unbounded_channel();
        let watcher_alive = alive.clone();
        let final_peak = Arc::new(AtomicU64::new(0));
        let watcher_peak = final_peak.clone();
        tokio::spawn(async move {
            enum Event {
                Exit(strato_sandbox::Result<SandboxExit>),
                Command(Option<Control>),
            }
            let exit = loop {
                let event = tokio::select! {
                    exit = process.wait() => Event::Exit(exit),
                    command = control_rx.recv() => Event::Command(command),
                };
                match event {
                    Event::Exit(exit) => break exit,
                    Event::Command(Some(Control::SetCpu(fraction))) => {
                        if let Err(e) = process.set_cpu_fraction(fraction) {
                            tracing::warn!(error = %e, "cannot change an instance's CPU share");
                        }
                    }
                    Event::Command(Some(Control::Adopt {
                        mounts,
                        tmp_bytes,
                        memory_bytes,
                        reply,
                    })) => {
                        let adopted = process
                            .attach(&mounts, Some(tmp_bytes))
                            .and_then(|()| process.set_memory_limit(memory_bytes));
                        let _ = reply.send(adopted);
                    }
                    Event::Command(Some(Control::Kill)) | Event::Command(None) => {
                        let _ = process.kill();
                        break process.wait().await;
                    }
                }
            };
            // Read before the cgroup goes, so an instance that died (out of
            // memory, timed out) still reports what it used.
            watcher_peak.store(process.memory_peak().unwrap_or(0), Ordering::SeqCst);
            watcher_alive.store(false, Ordering::SeqCst);
            let oom = process.oom_killed().unwrap_or(false);
            let exit = exit.unwrap_or(SandboxExit::Signal(9));
            let _ = death_tx.send(Some(Death { exit, oom }));
            if let Err(e) = process.destroy().await {
                tracing::warn!(error = %e, "instance cleanup failed");
            }
            drop(live);
        });

        Ok(Launched {
            instance: Instance {
                id: launch.id,
                logs,
                init_duration: None,
                channel,
                dispatch_tx: ends.dispatch_tx,
                control_tx,
                alive,
                final_peak,
                peak_gauge,
                death: death_rx,
                pipes,
                server,
                api_servers,
                memory: None,
                provisioned: None,
                stem_refill: None,
                retire_at: None,
            },
            init_rx: ends.init_rx,
        })
    }

    /// Starts copying the runtime's output into the instance's log stream.
    fn start_log_readers(&self) {
        for pipe in &self.pipes {
            tokio::spawn(pipe.clone().run(self.logs.clone()));
        }
    }
}

impl Launched {
    /// Waits for the runtime's init (measured from `started`) to end.
    async fn await_init(
        self,
        started: Instant,
        init_timeout: Duration,
        cpu_share: f64,
    ) -> Result<Instance, StartError> {
        let Launched {
            mut instance,
            init_rx,
        } = self;
        // Collect what init logs, for the caller's log tail if init fails.
        instance.logs.begin_invocation();
        let init = tokio::select! {
            signal = init_rx => signal.ok(),
            _ = died(instance.death.clone()) => None,
            _ = tokio::time::sleep(init_timeout) => {
                instance.flush_logs();
                let init = started.elapsed();
                let log = init_log(&instance.logs, init, "Sandbox.Timedout");
                return Err(StartError::TimedOut { init, log });
            }
        };
        let init_duration = started.elapsed();
        tracing::debug!(instance = %instance.id, init_ms = init_duration.as_secs_f64() * 1000.0, "instance init ended");
        match init {
            Some(InitSignal::Ready) => {
                instance.logs.end_invocation();
                instance.init_duration = Some(init_duration);
                if cpu_share < INIT_CPU_SHARE {
                    let _ = instance.control_tx.send(Control::SetCpu(cpu_share));
                }
                Ok(instance)
            }
            Some(InitSignal::Failed { error_type, body }) => {
                // The runtime exits after reporting; its last lines come with it.
                let _ = tokio::time::timeout(Duration::from_millis(500), instance.wait_for_death())
                    .await;
                instance.flush_logs();
                let log = init_log(
                    &instance.logs,
                    init_duration,
                    error_type.as_deref().unwrap_or("Runtime.Unknown"),
                );
                Err(StartError::InitFailed {
                    error_type,
                    body,
                    init: init_duration,
                    log,
                })
            }
            None => {
                let death = instance.wait_for_death().await;
                instance.flush_logs();
                let error_type = if death.oom {
                    "Runtime.OutOfMemory"
                } else {
                    "Runtime.ExitError"
                };
                let log = init_log(&instance.logs, init_duration, error_type);
                Err(StartError::Exited {
                    death,
                    init: init_duration,
                    log,
                })
            }
        }
    }
}

/// What a stem cell's runtime runs before it knows its function.
pub struct StemLaunch {
    pub id: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The runtime's own binds plus the placeholders at `/var/task` and `/opt`.
    pub mounts: Vec<BindMount>,
    /// The runtime's generic environment (search paths, `STRATO_STEM_CELL`).
    pub env: BTreeMap<String, String>,
}

/// What a stem cell receives when a cold start adopts it.
pub struct Adoption {
    /// Host directories mounted over the placeholders (code, layers).
    pub mounts: Vec<BindMount>,
    pub memory_mb: i64,
    pub ephemeral_mb: i64,
    pub assignment: Assignment,
    /// Where the function's log stream goes.
    pub sink: Arc<dyn LogSink>,
    pub log_group: String,
    pub log_stream: String,
    pub init_timeout: Duration,
}

/// A sandbox whose runtime has started (bootstrap loaded, no function yet),
/// waiting in `GET /runtime/strato/assignment` for a cold start to adopt it.
pub struct StemCell {
    launched: Launched,
    assignment_tx: oneshot::Sender<Assignment>,
    mark: StemMark,
}

/// The memory limit of a stem cell until it is adopted.
const STEM_MEMORY_MB: i64 = 1024;

impl StemCell {
    pub async fn launch(
        sandbox: &Sandbox,
        sink: Arc<dyn LogSink>,
        stem: StemLaunch,
        serve_api: Option<crate::ApiEndpoint>,
        live: &Arc<LiveInstances>,
    ) -> Result<StemCell, StartError> {
        let (live, mark) = live.enter_stem();
        let (assignment_tx, assignment_rx) = oneshot::channel();
        let launch = Launch {
            id: stem.id,
            program: stem.program,
            args: stem.args,
            mounts: stem.mounts,
            memory_mb: STEM_MEMORY_MB,
            cpu_fraction: INIT_CPU_SHARE,
            tmp_bytes: strato_model::limits::DEFAULT_EPHEMERAL_MB as u64 * 1024 * 1024,
            env: stem.env,
            assignment: Some(assignment_rx),
        };
        // Nothing is logged before adoption; the stream is named then.
        let logs = Arc::new(LogCapture::new(sink, String::new(), String::new()));
        let launched = Instance::launch(sandbox, launch, logs, serve_api, live).await?;
        Ok(StemCell {
            launched,
            assignment_tx,
            mark,
        })
    }

    /// The runtime has started and waits for its function.
    pub fn is_ready(&self) -> bool {
        self.launched.instance.channel.awaiting_assignment()
    }

    pub fn is_alive(&self) -> bool {
        self.launched.instance.is_alive()
    }

    pub fn id(&self) -> &str {
        &self.launched.instance.id
    }

    /// Gives the cell its function: code and limits, then the environment;
    /// returns once the function's init has ended. `Init Duration` counts
    /// from here: the function's own init.
    pub async fn adopt(self, adoption: Adoption) -> Result<Instance, StartError> {
        let StemCell {
            mut launched,
            assignment_tx,
            mark,
        } = self;
        mark.adopted();
        let started = Instant::now();
        let (reply_tx, reply_rx) = oneshot::channel();
        let memory_bytes = mb_to_bytes(adoption.memory_mb);
        let adopt = Control::Adopt {
            mounts: adoption.mounts,
            tmp_bytes: mb_to_bytes(adoption.ephemeral_mb),
            memory_bytes,
            reply: reply_tx,
        };
        if launched.instance.control_tx.send(adopt).is_err() {
            return Err(StartError::Platform(PlatformError::StemCellEnded));
        }
        match reply_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(StartError::Platform(PlatformError::StemCellAttach(e))),
            Err(_) => return Err(StartError::Platform(PlatformError::StemCellEnded)),
        }
        tracing::debug!(
            instance = %launched.instance.id,
            attach_ms = started.elapsed().as_secs_f64() * 1000.0,
            "stem cell has the function's code and limits"
        );
        launched.instance.logs = Arc::new(LogCapture::new(
            adoption.sink,
            adoption.log_group,
            adoption.log_stream,
        ));
        launched.instance.start_log_readers();
        if assignment_tx.send(adoption.assignment).is_err() {
            return Err(StartError::Platform(PlatformError::StemCellNotWaiting));
        }
        launched
            .await_init(
                started,
                adoption.init_timeout,
                cpu_share(adoption.memory_mb),
            )
            .await
    }
}

impl Instance {
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Whether the instance may take another invocation: alive, and not
    /// past its retirement (its credentials about to expire).
    pub fn is_usable(&self) -> bool {
        self.is_alive() && self.retire_at.is_none_or(|at| Instant::now() < at)
    }

    /// Whether the instance belongs to a live provisioned concurrency
    /// configuration (kept whatever the keep-alive, used first).
    pub fn is_provisioned(&self) -> bool {
        self.provisioned
            .as_ref()
            .is_some_and(crate::provisioned::ProvisionedMark::is_current)
    }

    async fn wait_for_death(&mut self) -> Death {
        died(self.death.clone()).await
    }

    /// Records every line the runtime has written so far.
    pub fn flush_logs(&self) {
        for pipe in &self.pipes {
            pipe.drain(&self.logs);
            pipe.flush_partial(&self.logs);
        }
    }

    /// Hands one event to the runtime and waits for its answer, the
    /// instance's end, or the deadline (which also bounds a response still
    /// streaming to `stream`).
    pub async fn invoke(
        &mut self,
        dispatch: Dispatch,
        timeout: Duration,
        stream: Option<crate::runtime_api::StreamSink>,
    ) -> InvocationEnd {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.channel.expect(&dispatch.request_id, reply_tx, stream);
        if self.dispatch_tx.send(dispatch).await.is_err() {
            self.channel.abandon();
            return InvocationEnd::Undelivered(self.wait_for_death().await);
        }
        let end = tokio::select! {
            outcome = reply_rx => match outcome {
                Ok(outcome) => InvocationEnd::Completed(outcome),
                Err(_) => InvocationEnd::Died(self.wait_for_death().await),
            },
            death = died(self.death.clone()) => InvocationEnd::Died(death),
            _ = tokio::time::sleep(timeout) => InvocationEnd::TimedOut,
        };
        if !matches!(end, InvocationEnd::Completed(_)) {
            self.channel.abandon();
        }
        match end {
            // The event still sits in the channel: the runtime never took it.
            InvocationEnd::Died(death) if self.dispatch_tx.capacity() == 0 => {
                InvocationEnd::Undelivered(death)
            }
            other => other,
        }
    }

    /// Ends the instance now.
    pub async fn kill(&mut self) -> Death {
        let _ = self.control_tx.send(Control::Kill);
        let death = self.wait_for_death().await;
        self.flush_logs();
        death
    }

    /// Peak memory of the instance so far, in bytes.
    pub fn memory_peak(&self) -> u64 {
        if !self.is_alive() {
            return self.final_peak.load(Ordering::SeqCst);
        }
        match self.peak_gauge.as_ref().map(MemoryPeakGauge::read) {
            Some(Ok(peak)) => peak,
            // The cgroup went between the liveness check and the read.
            _ => self.final_peak.load(Ordering::SeqCst),
        }
    }
}
