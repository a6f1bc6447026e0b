//! Shared harness for the execution-engine tests: an in-process server in
//! strong sandbox mode, functions deployed and invoked through the AWS SDK
//! for Rust, and the Go and Rust test functions built from source.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_sdk_lambda::config::{BehaviorVersion, Region};
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, InvocationType, LogType, Runtime, State};
use aws_sdk_lambda::Client;
use base64::Engine as _;
use serde_json::Value;
use strato::server::{self, RunningServer, ServerConfig};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";
pub const ROLE: &str = "arn:aws:iam::000000000000:role/lambda-role";

/// A Strato server on a fresh data directory and an SDK client for it.
pub struct Engine {
    pub dir: TempDir,
    server: Option<RunningServer>,
    pub client: Client,
}

impl Engine {
    pub async fn start() -> Engine {
        Engine::start_with(|_| {}).await
    }

    /// A server whose configuration `configure` adjusts first.
    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> Engine {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = ServerConfig::new(
            "127.0.0.1:0".parse().expect("addr"),
            dir.path().to_path_buf(),
            env!("CARGO_BIN_EXE_strato").into(),
        );
        configure(&mut config);
        let server = server::start(config).await.expect("server starts");
        let client = client(server.local_addr);
        Engine {
            dir,
            server: Some(server),
            client,
        }
    }

    /// The running server (its engine's counters).
    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("server is running")
    }

    /// Stops the server (which ends its instances).
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }
}

/// The sandbox runs as root only; the strong-mode assertions need it.
pub fn strong_mode_available() -> bool {
    nix_is_root() && Path::new("/sys/fs/cgroup/memory").is_dir()
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|rest| rest.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

pub fn client(addr: std::net::SocketAddr) -> Client {
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(format!("http://{addr}"))
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(120))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// A function name no other test in this process uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A deflated zip of the given files; `mode` applies to every entry.
pub fn zip_with_mode(files: &[(&str, &[u8])], mode: u32) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default().unix_permissions(mode);
        for (name, data) in files {
            w.start_file(*name, options).expect("start file");
            w.write_all(data).expect("write entry");
        }
        w.finish().expect("finish zip");
    }
    buf.into_inner()
}

pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    zip_with_mode(files, 0o644)
}

/// What a function is created with.
pub struct FunctionSpec {
    pub runtime: Runtime,
    pub handler: String,
    pub zip: Vec<u8>,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub env: Vec<(String, String)>,
}

impl FunctionSpec {
    pub fn new(runtime: Runtime, handler: &str, zip: Vec<u8>) -> FunctionSpec {
        FunctionSpec {
            runtime,
            handler: handler.into(),
            zip,
            memory_mb: 256,
            timeout_s: 30,
            env: Vec::new(),
        }
    }

    pub fn memory(mut self, mb: i32) -> Self {
        self.memory_mb = mb;
        self
    }

    pub fn timeout(mut self, seconds: i32) -> Self {
        self.timeout_s = seconds;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// CreateFunction, then waits until the function is Active.
pub async fn deploy(client: &Client, name: &str, spec: FunctionSpec) {
    let mut create = client
        .create_function()
        .function_name(name)
        .runtime(spec.runtime)
        .role(ROLE)
        .handler(spec.handler)
        .memory_size(spec.memory_mb)
        .timeout(spec.timeout_s)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(spec.zip))
                .build(),
        );
    if !spec.env.is_empty() {
        let vars: HashMap<String, String> = spec.env.into_iter().collect();
        create = create.environment(Environment::builder().set_variables(Some(vars)).build());
    }
    create.send().await.expect("create function");
    wait_active(client, name).await;
}

/// Polls GetFunctionConfiguration until `State` is Active.
pub async fn wait_active(client: &Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let config = client
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .expect("get configuration");
        match config.state() {
            Some(State::Active) => return,
            Some(State::Pending) => tokio::time::sleep(Duration::from_millis(20)).await,
            other => panic!("{name} settled in state {other:?}: {config:?}"),
        }
    }
    panic!("{name} never became Active");
}

/// One synchronous invocation, as the client saw it.
#[derive(Debug)]
pub struct Invocation {
    pub status: i32,
    pub function_error: Option<String>,
    pub executed_version: Option<String>,
    /// The decoded `X-Amz-Log-Result`.
    pub log: String,
    pub raw: Vec<u8>,
}

impl Invocation {
    /// The payload as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.raw).unwrap_or_else(|e| {
            panic!(
                "payload is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.raw)
            )
        })
    }

    /// Asserts the function succeeded and returns its result.
    pub fn ok(&self) -> Value {
        assert_eq!(self.status, 200, "{self}");
        assert_eq!(self.function_error, None, "{self}");
        self.json()
    }

    /// Asserts AWS's unhandled-error shape and returns the payload.
    pub fn unhandled(&self) -> Value {
        assert_eq!(self.status, 200, "{self}");
        assert_eq!(self.function_error.as_deref(), Some("Unhandled"), "{self}");
        self.json()
    }

    /// The log lines of this invocation.
    pub fn log_lines(&self) -> Vec<&str> {
        self.log.lines().collect()
    }

    /// The `REPORT` line's fields, e.g. `Duration` → `12.34 ms`.
    pub fn report(&self) -> HashMap<String, String> {
        let line = self
            .log
            .lines()
            .find(|l| l.starts_with("REPORT RequestId: "))
            .unwrap_or_else(|| panic!("no REPORT line in {self}"));
        line.split('\t')
            .filter_map(|field| field.split_once(": "))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }
}

impl std::fmt::Display for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {} error {:?} version {:?}\npayload: {}\nlog:\n{}",
            self.status,
            self.function_error,
            self.executed_version,
            String::from_utf8_lossy(&self.raw[..self.raw.len().min(2000)]),
            self.log
        )
    }
}

/// Invokes synchronously with the log tail.
pub async fn invoke(client: &Client, name: &str, event: Value) -> Invocation {
    invoke_raw(client, name, event.to_string().into_bytes()).await
}

pub async fn invoke_raw(client: &Client, name: &str, payload: Vec<u8>) -> Invocation {
    let out = client
        .invoke()
        .function_name(name)
        .log_type(LogType::Tail)
        .payload(Blob::new(payload))
        .send()
        .await
        .unwrap_or_else(|e| panic!("invoke {name}: {:?} {:?}", e.code(), e.message()));
    let log = out
        .log_result()
        .map(|b64| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("log result is base64");
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .unwrap_or_default();
    Invocation {
        status: out.status_code(),
        function_error: out.function_error().map(str::to_string),
        executed_version: out.executed_version().map(str::to_string),
        log,
        raw: out
            .payload()
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default(),
    }
}

/// Invokes with `InvocationType` Event; returns the status code.
pub async fn invoke_event(client: &Client, name: &str, event: Value) -> i32 {
    client
        .invoke()
        .function_name(name)
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(event.to_string()))
        .send()
        .await
        .expect("event invoke")
        .status_code()
}

/// Asserts the canonical START / END / REPORT framing of one invocation's
/// log and returns the request id.
pub fn assert_log_framing(inv: &Invocation, cold: bool) -> String {
    let lines = inv.log_lines();
    let start = lines
        .iter()
        .find(|l| l.starts_with("START RequestId: "))
        .unwrap_or_else(|| panic!("no START line: {inv}"));
    let rest = &start["START RequestId: ".len()..];
    let (request_id, version) = rest
        .split_once(" Version: ")
        .unwrap_or_else(|| panic!("START without Version: {start}"));
    assert_eq!(version.trim(), "$LATEST", "{start}");
    assert!(
        lines.contains(&format!("END RequestId: {request_id}").as_str()),
        "no END line: {inv}"
    );
    let report = inv.report();
    assert_eq!(
        report.get("REPORT RequestId").map(String::as_str),
        Some(request_id)
    );
    for key in [
        "Duration",
        "Billed Duration",
        "Memory Size",
        "Max Memory Used",
    ] {
        assert!(report.contains_key(key), "REPORT lacks {key}: {inv}");
    }
    let ms = |key: &str| -> f64 {
        report[key]
            .strip_suffix(" ms")
            .unwrap_or_else(|| panic!("{key} not in ms: {inv}"))
            .parse()
            .unwrap_or_else(|_| panic!("{key} not a number: {inv}"))
    };
    assert!(ms("Billed Duration") >= ms("Duration").floor(), "{inv}");
    assert_eq!(
        report.get("Memory Size").map(String::as_str),
        Some("256 MB"),
        "{inv}"
    );
    let used: u64 = report["Max Memory Used"]
        .strip_suffix(" MB")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Max Memory Used: {inv}"));
    assert!(used > 0 && used <= 256, "Max Memory Used {used}: {inv}");
    assert_eq!(
        report.contains_key("Init Duration"),
        cold,
        "Init Duration on cold start only: {inv}"
    );
    if cold {
        ms("Init Duration");
    }
    // START, then the function's lines, then END, then REPORT.
    let pos = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix));
    assert!(pos("START").expect("start") < pos("END").expect("end"));
    assert!(pos("END").expect("end") < pos("REPORT").expect("report"));
    request_id.to_string()
}

/// Lambda's reserved environment, as every runtime must see it.
pub fn assert_lambda_environment(env: &Value, name: &str, handler: &str) {
    let get = |k: &str| env[k].as_str().map(str::to_string);
    assert_eq!(
        get("AWS_LAMBDA_FUNCTION_NAME").as_deref(),
        Some(name),
        "{env}"
    );
    assert_eq!(
        get("AWS_LAMBDA_FUNCTION_VERSION").as_deref(),
        Some("$LATEST"),
        "{env}"
    );
    assert_eq!(
        get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").as_deref(),
        Some("256"),
        "{env}"
    );
    assert_eq!(
        get("AWS_LAMBDA_LOG_GROUP_NAME").as_deref(),
        Some(format!("/aws/lambda/{name}").as_str()),
        "{env}"
    );
    let stream = get("AWS_LAMBDA_LOG_STREAM_NAME").expect("log stream");
    assert!(stream.contains("/[$LATEST]"), "{stream}");
    assert_eq!(get("AWS_REGION").as_deref(), Some(REGION));
    assert_eq!(get("AWS_DEFAULT_REGION").as_deref(), Some(REGION));
    assert_eq!(get("_HANDLER").as_deref(), Some(handler));
    assert_eq!(get("LAMBDA_TASK_ROOT").as_deref(), Some("/var/task"));
    assert_eq!(get("LAMBDA_RUNTIME_DIR").as_deref(), Some("/var/runtime"));
    assert_eq!(
        get("AWS_LAMBDA_RUNTIME_API").as_deref(),
        Some("127.0.0.1:9001")
    );
    assert_eq!(get("TZ").as_deref(), Some(":UTC"));
    assert!(get("AWS_ENDPOINT_URL").is_some(), "{env}");
    assert_eq!(get("USER_VAR").as_deref(), Some("user value"), "{env}");
}

/// The names [`assert_lambda_environment`] reads.
pub const ENV_NAMES: &[&str] = &[
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "_HANDLER",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "AWS_LAMBDA_RUNTIME_API",
    "TZ",
    "AWS_ENDPOINT_URL",
    "USER_VAR",
];

/// The context fields every runtime reports, in the same JSON shape.
pub fn assert_context(ctx: &Value, name: &str, log: &str) {
    let request_id = ctx["awsRequestId"].as_str().expect("awsRequestId");
    assert!(
        log.contains(&format!("START RequestId: {request_id} ")),
        "request id {request_id} matches the log: {log}"
    );
    assert_eq!(ctx["functionName"], name);
    assert_eq!(ctx["functionVersion"], "$LATEST");
    assert_eq!(
        ctx["invokedFunctionArn"],
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
    );
    // Node and Python give a string, Go and Rust a number.
    let memory = ctx["memoryLimitInMB"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| ctx["memoryLimitInMB"].to_string());
    assert_eq!(memory, "256", "{ctx}");
    assert_eq!(ctx["logGroupName"], format!("/aws/lambda/{name}"));
    assert!(ctx["logStreamName"]
        .as_str()
        .is_some_and(|s| s.contains("[$LATEST]")));
    let remaining = ctx["remainingMs"].as_i64().expect("remainingMs");
    assert!(
        remaining > 0 && remaining <= 30_000,
        "remaining time within the 30 s timeout: {remaining}"
    );
}

/// A rendezvous for concurrent invocations: each handler connects (through
/// its instance's gateway) and sends its log stream name; when `parties`
/// have arrived, every one is released. Returns the set of names seen.
pub struct Barrier {
    pub port: u16,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Barrier {
    pub async fn open(parties: usize) -> Barrier {
        let listener = tokio::net::TcpListener::bind("0.0.0.0:0")
            .await
            .expect("bind barrier");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let mut waiting = Vec::new();
            let mut names = Vec::new();
            while waiting.len() < parties {
                let (socket, _) = listener.accept().await.expect("accept");
                let mut reader = BufReader::new(socket);
                let mut line = String::new();
                reader.read_line(&mut line).await.expect("read name");
                names.push(line.trim().to_string());
                waiting.push(reader.into_inner());
            }
            for mut socket in waiting {
                socket.write_all(b"go\n").await.expect("release");
            }
            names
        });
        Barrier { port, task }
    }

    /// The names of the parties, once all arrived (bounded).
    pub async fn names(self) -> Vec<String> {
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("every party reached the barrier")
            .expect("barrier task")
    }
}

/// Runs `parties` concurrent barrier invocations and asserts they ran on
/// as many distinct instances, each reporting its own log stream.
pub async fn assert_concurrent_invocations_use_distinct_instances(
    client: &Client,
    name: &str,
    parties: usize,
) {
    let barrier = Barrier::open(parties).await;
    let port = barrier.port;
    let calls: Vec<_> = (0..parties)
        .map(|_| {
            let client = client.clone();
            let name = name.to_string();
            tokio::spawn(async move {
                invoke(
                    &client,
                    &name,
                    serde_json::json!({"action": "barrier", "port": port}),
                )
                .await
            })
        })
        .collect();
    let arrived = barrier.names().await;
    let mut streams = Vec::new();
    for call in calls {
        let result = call.await.expect("invocation task").ok();
        assert_eq!(result["reply"], "go", "{result}");
        streams.push(result["stream"].as_str().expect("stream").to_string());
    }
    let mut distinct = streams.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        parties,
        "one instance per concurrent invocation: {streams:?}"
    );
    let mut arrived_sorted = arrived;
    arrived_sorted.sort();
    assert_eq!(arrived_sorted, distinct);
}

/// Asserts a warm instance serves the next invocations: a global counter
/// grows in one log stream.
pub async fn assert_warm_reuse(client: &Client, name: &str) {
    let first = invoke(client, name, serde_json::json!({"action": "count"})).await;
    let first_result = first.ok();
    let stream = first_result["stream"].clone();
    let start = first_result["count"].as_i64().expect("count");
    for i in 1..=2 {
        let next = invoke(client, name, serde_json::json!({"action": "count"})).await;
        let result = next.ok();
        assert_eq!(result["stream"], stream, "same instance: {next}");
        assert_eq!(result["count"].as_i64(), Some(start + i), "{next}");
        assert!(
            !next.report().contains_key("Init Duration"),
            "a warm invocation has no Init Duration: {next}"
        );
    }
}

/// Polls `check` until it returns Some, for at most `limit`.
pub async fn poll<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(value) = check().await {
            return Some(value);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

// ---------------------------------------------------------------------------
// Native test functions, built from source once per test process.
// ---------------------------------------------------------------------------

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `target/fixtures/<name>`: kept between runs, so rebuilds are incremental.
fn build_dir(name: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("fixtures").join(name)
}

fn run(mut command: Command, what: &str) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Go test function (aws-lambda-go), built with `go build`:
/// `CGO_ENABLED=0 GOOS=linux`, binary named `bootstrap`.
/// Returns the function's zip (built and zipped once per test process).
pub fn go_function_zip() -> Vec<u8> {
    static BUILT: OnceLock<Mutex<Option<Vec<u8>>>> = OnceLock::new();
    let cell = BUILT.get_or_init(|| Mutex::new(None));
    let mut built = cell.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(bytes) = built.as_ref() {
        return bytes.clone();
    }
    let out = build_dir("go-fn").join("bootstrap");
    let mut go = Command::new("go");
    go.current_dir(fixtures_dir().join("go-fn"))
        .env("CGO_ENABLED", "0")
        .env("GOOS", "linux")
        .env("GOFLAGS", "-mod=mod")
        .args(["build", "-trimpath", "-ldflags=-s -w", "-o"])
        .arg(&out)
        .arg(".");
    run(go, "go build");
    let zip = bootstrap_zip(&std::fs::read(&out).expect("read Go bootstrap"));
    *built = Some(zip.clone());
    zip
}

/// The Rust test function (lambda_runtime), built by cargo in its own
/// target directory (it is not a member of this workspace).
/// Returns the function's zip (built and zipped once per test process).
pub fn rust_function_zip() -> Vec<u8> {
    static BUILT: OnceLock<Mutex<Option<Vec<u8>>>> = OnceLock::new();
    let cell = BUILT.get_or_init(|| Mutex::new(None));
    let mut built = cell.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(bytes) = built.as_ref() {
        return bytes.clone();
    }
    let target = build_dir("rust-fn");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--manifest-path"])
        .arg(fixtures_dir().join("rust-fn/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR");
    run(build, "cargo build of the Rust test function");
    let zip = bootstrap_zip(
        &std::fs::read(target.join("release/bootstrap")).expect("read Rust bootstrap"),
    );
    *built = Some(zip.clone());
    zip
}

/// A zip holding an executable `bootstrap`, stored rather than deflated
/// (deflating megabytes in a debug build is slow, and so is inflating them).
pub fn bootstrap_zip(binary: &[u8]) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .unix_permissions(0o755);
        w.start_file("bootstrap", options).expect("start file");
        w.write_all(binary).expect("write entry");
        w.finish().expect("finish zip");
    }
    buf.into_inner()
}

// ---------------------------------------------------------------------------
// Leftovers
// ---------------------------------------------------------------------------

/// The ids of live sandbox cgroups (v1 memory controller).
pub fn strato_cgroups() -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup/memory/strato") {
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                found.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    found
}
