//! End-to-end: Java functions (java11, java17, java21, java25) through the Invoke API,
//! run by AWS's own runtime interface client on a host JDK.
//!
//! The test function is compiled from `tests/fixtures/java-fn` with `javac`
//! against `aws-lambda-java-core` and zipped as AWS documents: classes at the
//! zip root, dependencies as `lib/*.jar`. The runtime interface client is
//! installed once, by `strato runtimes install`, into a directory under
//! `target/` that later runs reuse, and copied into each test's data
//! directory.

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_lambda::types::Runtime;
use harness::*;
use serde_json::{json, Value};

const MEMORY_MB: i32 = 1024;

fn tmp_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// A data directory holding the installed Java runtime, shared by every
/// test and kept across runs (`strato runtimes install` is a no-op once
/// it is there).
fn installed_runtime() -> PathBuf {
    static DONE: OnceLock<Mutex<bool>> = OnceLock::new();
    let dir = tmp_dir("java-runtime-cache");
    let mut done = DONE
        .get_or_init(|| Mutex::new(false))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if !*done {
        let listed = run_tool(
            Command::new(env!("CARGO_BIN_EXE_strato"))
                .args(["runtimes", "install", "java17", "java21", "--data-dir"])
                .arg(&dir),
            "strato runtimes install java17 java21",
        );
        assert!(listed.contains("java17: java 17"), "{listed}");
        *done = true;
    }
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A server whose data directory already has the Java runtime.
async fn engine_with_java() -> TestServer {
    let cache = installed_runtime();
    let engine = TestServer::start_own_runtimes().await;
    copy_tree(
        &cache.join("runtimes/java"),
        &engine.dir.path().join("runtimes/java"),
    );
    engine
}

/// The jar with the handler interfaces, from the installed runtime.
fn lambda_java_core_jar() -> PathBuf {
    let lib = installed_runtime().join("runtimes/java");
    let found = std::fs::read_dir(&lib)
        .expect("java runtime dir")
        .flatten()
        .map(|e| e.path().join("lib"))
        .flat_map(|lib| std::fs::read_dir(lib).into_iter().flatten().flatten())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("aws-lambda-java-core-") && n.ends_with(".jar"))
        });
    found.unwrap_or_else(|| panic!("no aws-lambda-java-core jar under {}", lib.display()))
}

fn java_sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read sources").flatten() {
        let path = entry.path();
        if path.is_dir() {
            java_sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "java") {
            found.push(path);
        }
    }
}

fn class_files(root: &Path, dir: &Path, found: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("read classes").flatten() {
        let path = entry.path();
        if path.is_dir() {
            class_files(root, &path, found);
        } else {
            let name = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            found.push((name, std::fs::read(&path).expect("read class")));
        }
    }
}

/// The test function's deployment package, compiled once per process.
fn java_zip() -> Vec<u8> {
    static BUILT: OnceLock<Vec<u8>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/java-fn/src");
            let out = tmp_dir("fixtures/java-fn/classes");
            let _ = std::fs::remove_dir_all(&out);
            std::fs::create_dir_all(&out).expect("classes dir");
            let mut sources = Vec::new();
            java_sources(&src, &mut sources);
            run_tool(
                Command::new("javac")
                    .args(["--release", "11", "-encoding", "UTF-8", "-cp"])
                    .arg(lambda_java_core_jar())
                    .arg("-d")
                    .arg(&out)
                    .args(&sources),
                "javac",
            );
            let mut classes = Vec::new();
            class_files(&out, &out, &mut classes);
            // The helper library goes in lib/greeter.jar, the handlers at the root.
            let (library, handlers): (Vec<_>, Vec<_>) = classes
                .into_iter()
                .partition(|(name, _)| name.starts_with("example/lib/"));
            let jar_entries: Vec<(&str, &[u8])> = library
                .iter()
                .map(|(n, b)| (n.as_str(), b.as_slice()))
                .collect();
            let jar = zip_of(&jar_entries);
            let mut files: Vec<(&str, &[u8])> = handlers
                .iter()
                .map(|(n, b)| (n.as_str(), b.as_slice()))
                .collect();
            files.push(("lib/greeter.jar", &jar));
            zip_of(&files)
        })
        .clone()
}

async fn deploy_java(engine: &TestServer, runtime: Runtime, name: &str, handler: &str) {
    deploy(
        &engine.client,
        name,
        FunctionSpec::new(runtime, handler, java_zip()).memory(MEMORY_MB),
    )
    .await;
}

async fn hello_function(runtime: Runtime) -> (TestServer, String) {
    let engine = engine_with_java().await;
    let name = unique_name("java-hello");
    deploy_java(&engine, runtime, &name, "example.Hello").await;
    (engine, name)
}

#[tokio::test]
async fn java17_map_handler_says_hello_with_a_jar_from_lib() {
    let (engine, name) = hello_function(Runtime::Java17).await;
    let inv = invoke(
        &engine.client,
        &name,
        json!({"action": "hello", "name": "Ada"}),
    )
    .await;
    let result = inv.ok();
    assert_eq!(result["message"], "Hello, Ada, from Java", "{inv}");
    assert_eq!(result["javaVersion"], "17", "{inv}");
    assert_log_framing_of(&inv);
    engine.stop().await;
}

#[tokio::test]
async fn java21_runs_on_the_nearest_newer_jdk_and_says_which() {
    let (engine, name) = hello_function(Runtime::Java21).await;
    let inv = invoke(
        &engine.client,
        &name,
        json!({"action": "hello", "name": "Grace"}),
    )
    .await;
    let result = inv.ok();
    assert_eq!(result["message"], "Hello, Grace, from Java", "{inv}");
    let major: u32 = result["javaVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("java version: {inv}"));
    assert!(major >= 21, "java21 runs on JDK 21 or newer: {inv}");
    engine.stop().await;
}

#[tokio::test]
async fn java25_runs_on_jdk_25_and_answers_with_the_invocations_own_request_id() {
    use aws_sdk_lambda::operation::RequestId;
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::types::LogType;
    use base64::Engine as _;

    let (engine, name) = hello_function(Runtime::Java25).await;
    let inv = invoke(
        &engine.client,
        &name,
        json!({"action": "hello", "name": "Ada"}),
    )
    .await;
    assert_eq!(inv.ok()["javaVersion"], "25", "{inv}");
    let out = engine
        .client
        .invoke()
        .function_name(&name)
        .log_type(LogType::Tail)
        .payload(Blob::new(json!({"action": "context"}).to_string()))
        .send()
        .await
        .unwrap();
    let request_id = out.request_id().expect("x-amzn-RequestId").to_string();
    let context: Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    assert_eq!(context["awsRequestId"], request_id.as_str(), "{context}");
    let log = base64::engine::general_purpose::STANDARD
        .decode(out.log_result().unwrap())
        .unwrap();
    let log = String::from_utf8_lossy(&log);
    for line in ["START", "END", "REPORT"] {
        assert!(
            log.contains(&format!("{line} RequestId: {request_id}")),
            "{line} under {request_id}: {log}"
        );
    }
    engine.stop().await;
}

#[test]
fn runtimes_list_names_the_jdk_and_client_of_each_java_runtime() {
    let listed = run_tool(
        Command::new(env!("CARGO_BIN_EXE_strato"))
            .args(["runtimes", "list", "--data-dir"])
            .arg(installed_runtime()),
        "strato runtimes list",
    );
    for runtime in ["java11", "java17", "java21", "java25"] {
        let line = listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(runtime))
            .unwrap_or_else(|| panic!("{runtime} is listed: {listed}"));
        assert!(line.contains(" java "), "{line}");
        assert!(
            line.contains("aws-lambda-java-runtime-interface-client 2."),
            "{line}"
        );
    }
}

#[tokio::test]
async fn java11_runs_on_the_nearest_available_jdk() {
    let (engine, name) = hello_function(Runtime::Java11).await;
    let inv = invoke(
        &engine.client,
        &name,
        json!({"action": "hello", "name": "Alan"}),
    )
    .await;
    let result = inv.ok();
    let major: u32 = result["javaVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("java version: {inv}"));
    assert!(major >= 11, "{inv}");
    engine.stop().await;
}

#[tokio::test]
async fn java17_method_handler_maps_pojos_in_and_out() {
    let engine = engine_with_java().await;
    let name = unique_name("java-pojo");
    deploy_java(&engine, Runtime::Java17, &name, "example.Pojo::add").await;
    let inv = invoke(&engine.client, &name, json!({"a": 40, "b": 2})).await;
    assert_eq!(inv.ok(), json!({"sum": 42, "label": "40+2"}), "{inv}");
    engine.stop().await;
}

#[tokio::test]
async fn java21_stream_handler_gets_the_raw_bytes() {
    let engine = engine_with_java().await;
    let name = unique_name("java-stream");
    deploy_java(&engine, Runtime::Java21, &name, "example.Upper").await;
    let inv = invoke(&engine.client, &name, json!({"shout": "quiet words"})).await;
    assert_eq!(inv.ok(), json!({"SHOUT": "QUIET WORDS"}), "{inv}");
    engine.stop().await;
}

#[tokio::test]
async fn java17_context_carries_the_invocation_facts() {
    let (engine, name) = hello_function(Runtime::Java17).await;
    let inv = invoke(&engine.client, &name, json!({"action": "context"})).await;
    let ctx = inv.ok();
    assert_context(&ctx, &name, &inv.log, MEMORY_MB);
    // Java's context gives the memory as a number.
    assert_eq!(ctx["memoryLimitInMB"], json!(MEMORY_MB));
    engine.stop().await;
}

#[tokio::test]
async fn java17_exception_is_reported_as_awss_java_runtime_does() {
    let (engine, name) = hello_function(Runtime::Java17).await;
    let inv = invoke(
        &engine.client,
        &name,
        json!({"action": "fail", "why": "testing"}),
    )
    .await;
    let error = inv.unhandled();
    assert_eq!(
        error["errorType"], "java.lang.IllegalStateException",
        "{inv}"
    );
    assert_eq!(error["errorMessage"], "failed on purpose: testing", "{inv}");
    let trace: Vec<&str> = error["stackTrace"]
        .as_array()
        .unwrap_or_else(|| panic!("stackTrace is a list: {inv}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        trace
            .first()
            .is_some_and(|f| f.starts_with("example.Hello.fail(Hello.java:")),
        "the trace starts where it was thrown: {trace:?}"
    );
    assert!(
        trace
            .iter()
            .any(|f| f.starts_with("example.Hello.handleRequest(Hello.java:")),
        "{trace:?}"
    );
    // The instance survives a handled exception.
    let after = invoke(
        &engine.client,
        &name,
        json!({"action": "hello", "name": "again"}),
    )
    .await;
    assert_eq!(after.ok()["message"], "Hello, again, from Java");
    engine.stop().await;
}

#[tokio::test]
async fn java17_warm_instance_keeps_its_static_state() {
    let (engine, name) = hello_function(Runtime::Java17).await;
    assert_warm_reuse(&engine.client, &name).await;
    engine.stop().await;
}

#[tokio::test]
async fn java17_heap_follows_the_function_memory() {
    let (engine, name) = hello_function(Runtime::Java17).await;
    let inv = invoke(&engine.client, &name, json!({"action": "heap"})).await;
    let max = inv.ok()["maxMemory"].as_u64().expect("maxMemory");
    let memory = MEMORY_MB as u64 * 1024 * 1024;
    // AWS gives the heap 85% of the memory; the JVM reports a little less
    // (a survivor space is not counted).
    assert!(
        max <= memory * 85 / 100 && max >= memory * 70 / 100,
        "max heap {max} for {memory} bytes of memory"
    );
    engine.stop().await;
}

#[tokio::test]
async fn java17_logs_reach_the_log_tail() {
    let (engine, name) = hello_function(Runtime::Java17).await;
    let inv = invoke(
        &engine.client,
        &name,
        json!({"action": "log", "marker": "m-42"}),
    )
    .await;
    inv.ok();
    assert!(inv.log.contains("stdout marker m-42"), "{inv}");
    assert!(inv.log.contains("logger marker m-42"), "{inv}");
    engine.stop().await;
}

#[tokio::test]
async fn creating_a_java_function_installs_the_runtime_on_first_use() {
    // A fresh data directory: nothing installed yet.
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("java-first-use");
    deploy_java(&engine, Runtime::Java17, &name, "example.Hello").await;
    assert!(
        engine.dir.path().join("runtimes/java").is_dir(),
        "CreateFunction installed the runtime interface client"
    );
    let inv = invoke(
        &engine.client,
        &name,
        json!({"action": "hello", "name": "first"}),
    )
    .await;
    assert_eq!(inv.ok()["message"], "Hello, first, from Java", "{inv}");
    engine.stop().await;
}

/// START, END and REPORT around the function's lines.
fn assert_log_framing_of(inv: &Invocation) {
    let lines = inv.log_lines();
    let pos = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix));
    let start = pos("START RequestId: ").unwrap_or_else(|| panic!("no START: {inv}"));
    let end = pos("END RequestId: ").unwrap_or_else(|| panic!("no END: {inv}"));
    let report = pos("REPORT RequestId: ").unwrap_or_else(|| panic!("no REPORT: {inv}"));
    assert!(start < end && end < report, "{inv}");
}

#[tokio::test]
async fn java17_cold_starts_adopt_stem_cells_with_the_functions_own_context_and_heap() {
    if !strong_mode_available() {
        eprintln!("skipped: stem cells need the strong sandbox (root)");
        return;
    }
    let engine = engine_with_java().await;
    let strato = &engine.server().engine;
    let first = unique_name("java-stem");
    deploy_java(&engine, Runtime::Java17, &first, "example.Hello").await;
    invoke(
        &engine.client,
        &first,
        json!({"action": "hello", "name": "A"}),
    )
    .await
    .ok();
    // The first cold start of Java 17 at this memory size starts its pool.
    let ready = poll(Duration::from_secs(120), || async {
        (strato.stem_cells() >= 2).then_some(())
    })
    .await;
    assert!(ready.is_some(), "Java stem cells started");

    let name = unique_name("java-stem");
    deploy_java(&engine, Runtime::Java17, &name, "example.Hello").await;
    let adoptions = strato.stem_adoptions();
    let inv = invoke(&engine.client, &name, json!({"action": "context"})).await;
    let context = inv.ok();
    assert_eq!(
        strato.stem_adoptions(),
        adoptions + 1,
        "a stem cell ran it: {inv}"
    );
    assert_eq!(context["functionName"], name.as_str(), "{inv}");
    assert_eq!(context["memoryLimitInMB"], MEMORY_MB, "{inv}");
    assert!(inv.report().contains_key("Init Duration"), "{inv}");
    let hello = invoke(
        &engine.client,
        &name,
        json!({"action": "hello", "name": "Ada"}),
    )
    .await;
    assert_eq!(hello.ok()["message"], "Hello, Ada, from Java", "{hello}");
    let heap = invoke(&engine.client, &name, json!({"action": "heap"})).await;
    let max = heap.ok()["maxMemory"].as_u64().expect("maxMemory");
    let memory = MEMORY_MB as u64 * 1024 * 1024;
    assert!(
        max <= memory * 85 / 100,
        "max heap {max} for {memory} bytes"
    );
    engine.stop().await;
}
