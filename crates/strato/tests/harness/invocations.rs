//! Invocations as a client sees them, and what every runtime must report:
//! the log framing, Lambda's reserved environment, the context object;
//! concurrent invocations held at a rendezvous.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{InvocationType, LogType};
use aws_sdk_lambda::Client;
use base64::Engine as _;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::{ACCOUNT, REGION};

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

// The test functions' conformance checks, one per runtime-independent
// behaviour: each invokes the function's action and asserts the answer.

/// `hello` answers `hello` cold (with an Init Duration) and warm, with
/// Lambda's log framing both times.
pub async fn assert_says_hello(client: &Client, name: &str, hello: &str) {
    let cold = invoke(client, name, serde_json::json!({"action": "hello"})).await;
    assert_eq!(cold.ok(), Value::from(hello));
    assert_eq!(cold.executed_version.as_deref(), Some("$LATEST"));
    assert_log_framing(&cold, true);
    let warm = invoke(client, name, serde_json::json!({"action": "hello"})).await;
    assert_eq!(warm.ok(), Value::from(hello));
    assert_log_framing(&warm, false);
}

/// `add` computes its result from the event.
pub async fn assert_adds(client: &Client, name: &str) {
    let event = serde_json::json!({"action": "add", "a": 20, "b": 22});
    let inv = invoke(client, name, event).await;
    assert_eq!(inv.ok(), serde_json::json!({"sum": 42, "product": 440}));
}

/// `env` reports Lambda's reserved environment and `USER_VAR`.
pub async fn assert_environment(client: &Client, name: &str, handler: &str) {
    let event = serde_json::json!({"action": "env", "names": ENV_NAMES});
    let inv = invoke(client, name, event).await;
    assert_lambda_environment(&inv.ok(), name, handler);
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

/// The context fields every runtime reports, in the same JSON shape, for a
/// function of `memory_mb` with a 30 s timeout.
pub fn assert_context(ctx: &Value, name: &str, log: &str, memory_mb: i32) {
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
    assert_eq!(memory, memory_mb.to_string(), "{ctx}");
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

/// JavaScript for a Node.js test function to join a [`Barrier`]:
/// `await barrier(port)` connects to the port on the instance's gateway,
/// sends the log stream name and resolves with the barrier's reply.
pub const NODE_BARRIER_JS: &str = r#"
const fs = require('fs');
const net = require('net');

function gateway() {
  const line = fs.readFileSync('/proc/net/route', 'utf8').split('\n')
    .map((l) => l.trim().split(/\s+/)).find((f) => f[1] === '00000000');
  const hex = line[2];
  return [6, 4, 2, 0].map((i) => parseInt(hex.substr(i, 2), 16)).join('.');
}

function barrier(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, gateway(), () =>
      socket.write(process.env.AWS_LAMBDA_LOG_STREAM_NAME + '\n'));
    let reply = '';
    socket.on('data', (d) => { reply += d; if (reply.includes('\n')) { socket.end(); resolve(reply.trim()); } });
    socket.on('error', reject);
  });
}
"#;

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
