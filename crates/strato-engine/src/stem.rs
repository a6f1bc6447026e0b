//! Stem cells: runtimes started ahead of need.
//!
//! A stem cell is a complete sandbox (namespaces, cgroup, network, Runtime
//! API) whose runtime process has already started and loaded its bootstrap,
//! but knows no function: it waits in `GET /2018-06-01/runtime/strato/assignment`.
//! A cold start that finds one takes it, mounts the function's code over the
//! empty `/var/task`, sets its limits, and sends it the environment; the
//! runtime then runs the function's own init. Process start, sandbox and
//! network set-up are thereby off the request path.
//!
//! Interpreted runtimes (Node.js, Python) wait inside their bootstrap. For
//! OS-only runtimes (`provided*`, Go, Rust) the function's executable *is*
//! the runtime, so the cell runs a tiny waiter ([`stem_waiter_main`]: the
//! strato binary itself, bound read-only into the sandbox) that executes the
//! function's `bootstrap` once assigned. Java cells run Strato's launcher
//! (`runtimes/java/StratoStem.java`), which loads AWS's runtime interface
//! client, waits, installs the function's environment and runs the client's
//! main; as the JVM's heap limit follows the function's memory, Java cells
//! are kept per (runtime, memory size).
//!
//! Each runtime (and memory size, for Java) gets its pool on its first cold
//! start and keeps it filled to the configured size in the background; a
//! pool no cold start has used for the keep-alive ends its cells, so an idle
//! server scales its stem cells to zero too.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use strato_model::{FunctionConfig, Runtime, RuntimeFamily};
use strato_sandbox::{BindMount, SandboxMode};

use crate::cold_start::sandbox_id;
use crate::instance::{Adoption, Instance, InstanceSpec, StartError, StemCell, StemLaunch};
use crate::logs::LogSink;
use crate::runtime_api::Assignment;
use crate::runtimes::{self, RUNTIME_DIR, TASK_ROOT};
use crate::{Engine, PlatformError};

/// Where the waiter of OS-only stem cells is bound inside the sandbox.
pub const STEM_WAITER_PATH: &str = "/var/strato/stem-waiter";
/// The argument that makes the strato binary run [`stem_waiter_main`].
pub const STEM_WAITER_ARG: &str = "__stem-wait";

/// Which pool a function's cold starts take stem cells from: its runtime,
/// and for Java its memory size (the JVM's heap limit is a launch flag).
pub type StemKey = (Runtime, i64);

pub fn stem_key(runtime: Runtime, memory_mb: i64) -> StemKey {
    match runtime.family() {
        RuntimeFamily::Java => (runtime, memory_mb),
        _ => (runtime, 0),
    }
}

/// Environment variables that act when a process starts (read by the
/// dynamic linker or the interpreter itself before any bootstrap code runs);
/// a function that sets one needs a process started with it.
pub fn env_needs_fresh_process(family: RuntimeFamily, key: &str) -> bool {
    if matches!(
        key,
        "AWS_LAMBDA_EXEC_WRAPPER" | "LD_PRELOAD" | "LD_LIBRARY_PATH"
    ) {
        return true;
    }
    match family {
        RuntimeFamily::Node => key.starts_with("NODE_") && key != "NODE_PATH",
        RuntimeFamily::Python => key.starts_with("PYTHON") && key != "PYTHONPATH",
        RuntimeFamily::Java => {
            matches!(
                key,
                "JAVA_TOOL_OPTIONS" | "_JAVA_OPTIONS" | "JDK_JAVA_OPTIONS"
            )
        }
        RuntimeFamily::OsOnly => false,
    }
}

/// The most stem cells a runtime's pool grows to, whatever the demand.
pub const MAX_STEM_CELLS: usize = 32;

/// Cold starts closer together than this count as one burst (see
/// [`RuntimeStemCells::target`]).
const BURST_WINDOW: Duration = Duration::from_secs(1);

/// How many cold starts of a runtime came together lately.
struct Demand {
    /// Cold starts in the burst under way, and when it began.
    burst: usize,
    burst_started: Instant,
    /// The largest burst seen, and when it was seen.
    peak: usize,
    peak_at: Instant,
}

/// The ready cells of one runtime.
pub struct RuntimeStemCells {
    cells: Mutex<VecDeque<StemCell>>,
    /// Cells being launched now.
    launching: AtomicUsize,
    /// Whether a refill is under way (one at a time per pool).
    refilling: std::sync::atomic::AtomicBool,
    /// When a cold start last asked for a cell, and the bursts seen.
    demand: Mutex<Demand>,
}

impl Default for RuntimeStemCells {
    fn default() -> Self {
        let now = Instant::now();
        RuntimeStemCells {
            cells: Mutex::new(VecDeque::new()),
            launching: AtomicUsize::new(0),
            refilling: std::sync::atomic::AtomicBool::new(false),
            demand: Mutex::new(Demand {
                burst: 0,
                burst_started: now,
                peak: 0,
                peak_at: now,
            }),
        }
    }
}

impl RuntimeStemCells {
    /// How many cells the pool keeps: the configured number, or as many as
    /// the largest burst of cold starts seen within `memory` (so the next
    /// burst like it finds its runtimes started), at most
    /// [`MAX_STEM_CELLS`].
    pub fn target(&self, configured: usize, memory: Duration) -> usize {
        if configured == 0 {
            return 0;
        }
        let mut demand = self.demand.lock();
        if demand.peak_at.elapsed() >= memory {
            demand.peak = 0;
        }
        configured.max(demand.peak.min(MAX_STEM_CELLS))
    }

    /// A live cell, preferring one whose runtime already waits; cells that
    /// died while waiting are dropped.
    pub fn take(&self) -> Option<StemCell> {
        {
            let mut demand = self.demand.lock();
            let now = Instant::now();
            if now.duration_since(demand.burst_started) > BURST_WINDOW {
                demand.burst = 0;
                demand.burst_started = now;
            }
            demand.burst += 1;
            if demand.burst >= demand.peak {
                demand.peak = demand.burst;
                demand.peak_at = now;
            }
        }
        let mut cells = self.cells.lock();
        cells.retain(StemCell::is_alive);
        match cells.iter().position(StemCell::is_ready) {
            Some(i) => cells.remove(i),
            None => cells.pop_front(),
        }
    }

    pub fn put(&self, cell: StemCell) {
        self.cells.lock().push_back(cell);
    }

    /// Claims a launch slot if fewer than `target` cells exist or are being
    /// launched; [`RuntimeStemCells::launch_ended`] releases it.
    pub fn claim_launch(&self, target: usize) -> bool {
        let ready = self.cells.lock().len();
        self.launching
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |launching| {
                (ready + launching < target).then_some(launching + 1)
            })
            .is_ok()
    }

    pub fn launch_ended(&self) {
        self.launching.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn len(&self) -> usize {
        self.cells.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends every cell.
    pub fn clear(&self) {
        self.cells.lock().clear();
    }

    /// Whether no cold start has asked for a cell for `idle`.
    pub fn unused_for(&self, idle: Duration) -> bool {
        let demand = self.demand.lock();
        demand.burst_started.elapsed() >= idle
    }
}

/// How long after a cold start's first answer its stem-cell pool starts
/// refilling.
const STEM_REFILL_DELAY: Duration = Duration::from_millis(50);

/// Refills a stem-cell pool when dropped (after a cold start's first
/// invocation).
pub(crate) struct StemRefill {
    pub(crate) engine: Arc<Engine>,
    pub(crate) key: StemKey,
    pub(crate) cells: Arc<RuntimeStemCells>,
}

impl Drop for StemRefill {
    fn drop(&mut self) {
        self.engine.refill_stem_cells(self.key, &self.cells);
    }
}

impl Engine {
    /// The stem-cell pool a cold start of `c` takes from: none when the
    /// function sets something that must be there when its process starts.
    pub(crate) fn stem_pool_for(
        self: &Arc<Self>,
        c: &FunctionConfig,
    ) -> Option<(StemKey, Arc<RuntimeStemCells>)> {
        if self.config.stem_cells == 0 || self.sandbox.mode() != SandboxMode::Strong {
            return None;
        }
        let family = c.runtime.family();
        if c.environment
            .iter()
            .flat_map(|vars| vars.keys())
            .any(|key| env_needs_fresh_process(family, key))
        {
            return None;
        }
        let key = stem_key(c.runtime, c.memory_size);
        Some((key, self.stems.entry(key).or_default().clone()))
    }

    /// Fills the pool up to its target, one cell after the other: cells
    /// launched all at once would fight each other (and the invocations
    /// under way) for the CPU, and none would be ready sooner.
    pub(crate) fn refill_stem_cells(self: &Arc<Self>, key: StemKey, cells: &Arc<RuntimeStemCells>) {
        if cells.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let engine = self.clone();
        let cells = cells.clone();
        tokio::spawn(async move {
            // Launching a sandbox takes a CPU for tens of milliseconds:
            // let the answer that triggered the refill reach its caller.
            tokio::time::sleep(STEM_REFILL_DELAY).await;
            let closing = || engine.closing.load(Ordering::SeqCst);
            let target = || cells.target(engine.config.stem_cells, engine.config.keep_alive);
            let mut failed = false;
            loop {
                while !failed && !closing() && cells.claim_launch(target()) {
                    let launched = engine.launch_stem_cell(key).await;
                    failed = launched.is_err();
                    match launched {
                        Ok(cell) if !closing() => cells.put(cell),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(runtime = %key.0, error = ?e, "cannot start a stem cell")
                        }
                    }
                    cells.launch_ended();
                }
                cells.refilling.store(false, Ordering::Release);
                // A cell taken after the last check and before the flag
                // went down: its refill saw the flag up and left it to us.
                let short = cells.len() + cells.launching.load(Ordering::Acquire) < target();
                if failed || closing() || !short || cells.refilling.swap(true, Ordering::AcqRel) {
                    break;
                }
            }
        });
    }

    /// Gives a ready stem cell the function `spec` describes. `None` when
    /// the cell was unusable (it ended while waiting): the function's init
    /// never ran there, so a fresh instance is fair.
    pub(crate) async fn adopt_stem_cell(
        &self,
        cell: StemCell,
        c: &FunctionConfig,
        spec: &InstanceSpec,
        logs: &Arc<dyn LogSink>,
    ) -> Result<Option<Instance>, StartError> {
        let mut mounts = vec![BindMount::read_only(spec.code_dir.clone(), TASK_ROOT)];
        if let Some(opt_dir) = &spec.opt_dir {
            mounts.push(BindMount::read_only(opt_dir.clone(), runtimes::OPT_DIR));
        }
        // An OS-only runtime's process is the function's own executable.
        let exec = (c.runtime.family() == RuntimeFamily::OsOnly).then(|| {
            std::iter::once(spec.plan.program.display().to_string())
                .chain(spec.plan.args.iter().cloned())
                .collect()
        });
        let adoption = Adoption {
            mounts,
            memory_mb: spec.memory_mb,
            ephemeral_mb: spec.ephemeral_mb,
            assignment: Assignment {
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
            Ok(instance) => {
                self.stem_adoptions.fetch_add(1, Ordering::AcqRel);
                Ok(Some(instance))
            }
            Err(StartError::Platform(reason)) => {
                tracing::warn!(
                    cell = %cell_id,
                    "stem cell not adopted ({reason}); starting a fresh instance"
                );
                Ok(None)
            }
            Err(failure) => Err(failure),
        }
    }

    async fn launch_stem_cell(
        self: &Arc<Self>,
        (runtime, memory_mb): StemKey,
    ) -> Result<StemCell, StartError> {
        let plan = if runtime.family() == RuntimeFamily::Java {
            let engine = self.clone();
            tokio::task::spawn_blocking(move || engine.runtimes.java_stem_plan(runtime, memory_mb))
                .await
                .map_err(|source| {
                    StartError::Platform(PlatformError::StemPlanTask { runtime, source })
                })?
        } else {
            self.runtimes.plan(runtime)
        }
        .map_err(|source| StartError::Platform(PlatformError::StemRuntime { runtime, source }))?;
        let empty = self.runtimes.empty_dir();
        let mut mounts = plan.mounts.clone();
        mounts.push(BindMount::read_only(empty.clone(), TASK_ROOT));
        mounts.push(BindMount::read_only(empty, runtimes::OPT_DIR));
        let (program, args) = if runtime.family() == RuntimeFamily::OsOnly {
            mounts.push(BindMount::read_only(
                self.config.sandbox.init_program.clone(),
                STEM_WAITER_PATH,
            ));
            (
                PathBuf::from(STEM_WAITER_PATH),
                vec![STEM_WAITER_ARG.to_string()],
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
            self.instance_api(),
            &self.live,
        )
        .await
    }
}

/// The waiter of an OS-only stem cell, run inside the sandbox as
/// `/var/strato/stem-waiter __stem-wait`: asks the Runtime API for the
/// assignment, then executes the function's program with the assigned
/// environment. Never returns.
pub fn stem_waiter_main() -> ! {
    let code = match wait_and_exec() {
        Ok(never) => match never {},
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "strato stem cell: {message}");
            127
        }
    };
    std::process::exit(code)
}

/// Why an OS-only stem cell's waiter could not run its function.
#[derive(Debug, thiserror::Error)]
enum StemWaiterError {
    #[error("AWS_LAMBDA_RUNTIME_API is not set")]
    NoRuntimeApi,
    #[error("cannot reach the Runtime API at {authority}: {source}")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    #[error("Runtime API request: {0}")]
    Request(#[source] std::io::Error),
    #[error("Runtime API response: {0}")]
    Response(#[source] std::io::Error),
    #[error("malformed Runtime API response")]
    MalformedResponse,
    #[error("{0}")]
    MalformedChunk(&'static str),
    #[error("the Runtime API refused the assignment: {status_line}")]
    Refused { status_line: String },
    #[error("unreadable assignment: {0}")]
    Assignment(#[source] serde_json::Error),
    #[error("the assignment names no program")]
    NoProgram,
    #[error("cannot execute {program}: {source}")]
    Exec {
        program: String,
        source: std::io::Error,
    },
}

enum Never {}

fn wait_and_exec() -> Result<Never, StemWaiterError> {
    use std::os::unix::process::CommandExt;

    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(|_| StemWaiterError::NoRuntimeApi)?;
    let body = http_get(&api, "/2018-06-01/runtime/strato/assignment")?;
    let assignment: crate::runtime_api::Assignment =
        serde_json::from_slice(&body).map_err(StemWaiterError::Assignment)?;
    let Some(argv) = assignment.exec.filter(|argv| !argv.is_empty()) else {
        return Err(StemWaiterError::NoProgram);
    };
    let mut env = assignment.env;
    env.insert("AWS_LAMBDA_RUNTIME_API".into(), api);
    let task_root = env
        .get("LAMBDA_TASK_ROOT")
        .cloned()
        .unwrap_or_else(|| crate::runtimes::TASK_ROOT.to_string());
    let error = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .envs(env)
        // The code was mounted over the placeholder this process started
        // in: enter the directory anew to see it.
        .current_dir(task_root)
        .exec();
    Err(StemWaiterError::Exec {
        program: argv[0].clone(),
        source: error,
    })
}

/// A blocking HTTP/1.1 GET that reads the whole response body.
fn http_get(authority: &str, path: &str) -> Result<Vec<u8>, StemWaiterError> {
    let mut stream =
        std::net::TcpStream::connect(authority).map_err(|source| StemWaiterError::Connect {
            authority: authority.to_string(),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(StemWaiterError::Request)?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(StemWaiterError::Response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(StemWaiterError::MalformedResponse)?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status_ok = head
        .lines()
        .next()
        .is_some_and(|line| line.split_whitespace().nth(1) == Some("200"));
    if !status_ok {
        return Err(StemWaiterError::Refused {
            status_line: head.lines().next().unwrap_or_default().to_string(),
        });
    }
    let body = &response[split + 4..];
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        dechunk(body)
    } else {
        Ok(body.to_vec())
    }
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, StemWaiterError> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(StemWaiterError::MalformedChunk("malformed chunked body"))?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| StemWaiterError::MalformedChunk("malformed chunk size"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err(StemWaiterError::MalformedChunk("truncated chunked body"));
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_grows_toward_its_largest_recent_burst_and_back() {
        let cells = RuntimeStemCells::default();
        let keep = Duration::from_secs(60);
        assert_eq!(cells.target(2, keep), 2);
        // Five cold starts together (the pool is empty, so none gets a cell).
        for _ in 0..5 {
            assert!(cells.take().is_none());
        }
        assert_eq!(cells.target(2, keep), 5);
        assert_eq!(cells.target(8, keep), 8, "never below the configured size");
        assert_eq!(cells.target(0, keep), 0, "stem cells off stay off");
        for _ in 0..100 {
            cells.take();
        }
        assert_eq!(cells.target(2, keep), MAX_STEM_CELLS);
        // Once the burst is older than the keep-alive, back to the configured size.
        assert_eq!(cells.target(2, Duration::ZERO), 2);
        assert_eq!(cells.target(2, keep), 2);
    }

    #[test]
    fn chunked_bodies_are_reassembled() {
        let body = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\n0\r\n\r\n";
        assert_eq!(dechunk(body).unwrap(), b"Wikipedia ");
        assert!(dechunk(b"4\r\nWi").is_err());
    }

    #[test]
    fn start_time_variables_need_a_fresh_process() {
        assert!(env_needs_fresh_process(RuntimeFamily::Node, "NODE_OPTIONS"));
        assert!(!env_needs_fresh_process(RuntimeFamily::Node, "NODE_PATH"));
        assert!(env_needs_fresh_process(RuntimeFamily::Python, "PYTHONHOME"));
        assert!(!env_needs_fresh_process(
            RuntimeFamily::Python,
            "PYTHONPATH"
        ));
        assert!(env_needs_fresh_process(RuntimeFamily::OsOnly, "LD_PRELOAD"));
        assert!(!env_needs_fresh_process(
            RuntimeFamily::OsOnly,
            "TABLE_NAME"
        ));
        assert!(env_needs_fresh_process(
            RuntimeFamily::Java,
            "JAVA_TOOL_OPTIONS"
        ));
        assert!(!env_needs_fresh_process(RuntimeFamily::Java, "TABLE_NAME"));
    }
}
