//! End-to-end: every way a function can fail, answered as AWS answers it,
//! and the server (and other functions) serving on afterwards.

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::Runtime;
use harness::*;
use serde_json::{json, Value};

/// AWS's response limit: "6 MB" is 6,291,556 bytes.
const MAX_RESPONSE_BYTES: usize = 6_291_556;

const NODE_FAILING: &str = r#"
const { spawn } = require('child_process');
exports.handler = async (event) => {
  switch (event.action) {
    case 'ok': return 'still serving';
    case 'throw': throw new TypeError('the handler failed on purpose');
    case 'spin': for (;;) {}
    case 'exit': process.exit(1);
    case 'oom': {
      // Off the V8 heap, so the cgroup's limit is what stops it.
      const hold = [];
      for (;;) hold.push(Buffer.alloc(8 << 20, 1));
    }
    case 'forkbomb':
      spawn('/bin/sh', ['-c', 'b() { b | b & }; b'], { stdio: 'ignore' });
      for (;;) { try { spawn('/bin/sleep', ['600'], { stdio: 'ignore' }).on('error', () => {}); } catch (_) {} }
    case 'circular': { const a = { name: 'loop' }; a.self = a; return a; }
    case 'sized': return 'x'.repeat(event.bytes - 2);
  }
  throw new Error('unknown action');
};
"#;

const PYTHON_FAILING: &str = r#"
import os

def handler(event, context):
    action = event["action"]
    if action == "ok":
        return "still serving"
    if action == "raise":
        raise ValueError("the handler failed on purpose")
    if action == "exit":
        os._exit(1)
    if action == "marshal":
        return {1, 2, 3}
    if action == "oom":
        hold = []
        while True:
            hold.append(bytearray(b"x" * (8 << 20)))
    raise Exception("unknown action")
"#;

async fn deploy_node(engine: &TestServer, name: &str, memory: i32, timeout: i32) {
    deploy(
        &engine.client,
        name,
        FunctionSpec::node(NODE_FAILING)
            .memory(memory)
            .timeout(timeout),
    )
    .await;
}

async fn deploy_python(engine: &TestServer, name: &str, memory: i32) {
    let zip = zip_of(&[("lambda_function.py", PYTHON_FAILING.as_bytes())]);
    deploy(
        &engine.client,
        name,
        FunctionSpec::new(Runtime::Python312, "lambda_function.handler", zip).memory(memory),
    )
    .await;
}

/// Both the failed function (on a new instance) and a bystander answer.
async fn assert_still_serving(engine: &TestServer, failed: &str, bystander: &str) {
    let again = invoke(&engine.client, failed, json!({"action": "ok"})).await;
    assert_eq!(again.ok(), json!("still serving"), "{again}");
    let other = invoke(&engine.client, bystander, json!({"action": "ok"})).await;
    assert_eq!(other.ok(), json!("still serving"), "{other}");
}

/// A Node.js function `prefix-N` that fails as told, with `timeout`, and a
/// bystander beside it (10 s); both 256 MB. Their names.
async fn node_with_bystander(engine: &TestServer, prefix: &str, timeout: i32) -> (String, String) {
    let name = unique_name(prefix);
    let bystander = unique_name("fail-bystander");
    deploy_node(engine, &name, 256, timeout).await;
    deploy_node(engine, &bystander, 256, 10).await;
    (name, bystander)
}

/// Asserts an unhandled `error_type` whose message is
/// `RequestId: <id> Error: <detail>`, for the id the log names; returns it.
fn assert_request_error(inv: &Invocation, error_type: &str, detail: &str) -> String {
    let id = request_id_of(inv);
    let message = format!("RequestId: {id} Error: {detail}");
    let expected = json!({"errorType": error_type, "errorMessage": message});
    assert_eq!(inv.unhandled(), expected);
    id
}

fn request_id_of(inv: &Invocation) -> String {
    assert_log_framing_any(inv)
}

/// The request id of the START line (memory size may differ from 256).
fn assert_log_framing_any(inv: &Invocation) -> String {
    let start = inv
        .log_lines()
        .into_iter()
        .find(|l| l.starts_with("START RequestId: "))
        .unwrap_or_else(|| panic!("no START line: {inv}"))
        .to_string();
    let id = start["START RequestId: ".len()..]
        .split(' ')
        .next()
        .expect("id")
        .to_string();
    assert!(inv.log.contains(&format!("END RequestId: {id}")), "{inv}");
    assert!(
        inv.log.contains(&format!("REPORT RequestId: {id}")),
        "{inv}"
    );
    id
}

#[tokio::test]
async fn node_unhandled_error_is_reported_with_type_message_and_trace() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("fail-node-throw");
    deploy_node(&engine, &name, 256, 10).await;
    let inv = invoke(&engine.client, &name, json!({"action": "throw"})).await;
    let body = inv.unhandled();
    assert_eq!(body["errorType"], "TypeError", "{inv}");
    assert_eq!(body["errorMessage"], "the handler failed on purpose");
    let trace = body["trace"].as_array().expect("trace is a list of lines");
    assert_eq!(trace[0], "TypeError: the handler failed on purpose");
    assert!(trace
        .iter()
        .any(|l| l.as_str().unwrap_or("").contains("/var/task/index.js")));
    // The error is logged as Lambda logs it: `{ts}\t{id}\tERROR\tInvoke Error \t{json}`.
    let id = request_id_of(&inv);
    assert!(
        inv.log_lines()
            .iter()
            .any(|l| l.contains(&format!("\t{id}\tERROR\tInvoke Error \t"))),
        "{inv}"
    );
    // An error is not a crash: the same instance serves the next invocation.
    let next = invoke(&engine.client, &name, json!({"action": "ok"})).await;
    next.ok();
    assert!(!next.report().contains_key("Init Duration"), "{next}");
    engine.stop().await;
}

#[tokio::test]
async fn python_unhandled_error_is_reported_with_type_message_and_stack_trace() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("fail-py-raise");
    deploy_python(&engine, &name, 256).await;
    let inv = invoke(&engine.client, &name, json!({"action": "raise"})).await;
    let body = inv.unhandled();
    assert_eq!(body["errorType"], "ValueError", "{inv}");
    assert_eq!(body["errorMessage"], "the handler failed on purpose");
    let id = request_id_of(&inv);
    assert_eq!(body["requestId"], id.as_str());
    let stack = body["stackTrace"].as_array().expect("stackTrace");
    assert!(
        stack.iter().any(|l| l
            .as_str()
            .unwrap_or("")
            .contains("/var/task/lambda_function.py")),
        "{inv}"
    );
    // `[ERROR] ValueError: ...` with the traceback, as the Python runtime logs it.
    assert!(
        inv.log
            .contains("[ERROR] ValueError: the handler failed on purpose"),
        "{inv}"
    );
    engine.stop().await;
}

#[tokio::test]
async fn timeout_is_sandbox_timedout_and_the_server_serves_on() {
    let engine = TestServer::start_own_runtimes().await;
    let (name, bystander) = node_with_bystander(&engine, "fail-timeout", 1).await;
    let inv = invoke(&engine.client, &name, json!({"action": "spin"})).await;
    let body = inv.unhandled();
    let id = request_id_of(&inv);
    assert_eq!(
        body,
        json!({
            "errorType": "Sandbox.Timedout",
            "errorMessage": format!("RequestId: {id} Error: Task timed out after 1.00 seconds"),
        })
    );
    assert!(
        inv.log_lines()
            .iter()
            .any(|l| l.ends_with(&format!(" {id} Task timed out after 1.00 seconds"))),
        "{inv}"
    );
    assert_still_serving(&engine, &name, &bystander).await;
    engine.stop().await;
}

#[tokio::test]
async fn process_exit_is_runtime_exit_error_and_the_server_serves_on() {
    let engine = TestServer::start_own_runtimes().await;
    let (name, bystander) = node_with_bystander(&engine, "fail-exit", 10).await;
    let inv = invoke(&engine.client, &name, json!({"action": "exit"})).await;
    assert_request_error(
        &inv,
        "Runtime.ExitError",
        "Runtime exited with error: exit status 1",
    );
    assert_still_serving(&engine, &name, &bystander).await;
    engine.stop().await;
}

#[tokio::test]
async fn python_process_exit_is_runtime_exit_error() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("fail-py-exit");
    deploy_python(&engine, &name, 256).await;
    let inv = invoke(&engine.client, &name, json!({"action": "exit"})).await;
    assert_request_error(
        &inv,
        "Runtime.ExitError",
        "Runtime exited with error: exit status 1",
    );
    engine.stop().await;
}

fn assert_out_of_memory(inv: &Invocation, memory_mb: u64) {
    let id = request_id_of(inv);
    assert_eq!(
        inv.unhandled(),
        json!({
            "errorType": "Runtime.OutOfMemory",
            "errorMessage": format!("RequestId: {id} Error: Runtime exited with error: signal: killed"),
        }),
        "{inv}"
    );
    let used: u64 = inv.report()["Max Memory Used"]
        .trim_end_matches(" MB")
        .parse()
        .expect("Max Memory Used");
    assert!(
        used <= memory_mb,
        "the limit held: {used} MB used of {memory_mb} MB"
    );
    assert!(
        used >= memory_mb / 2,
        "the function did fill its memory: {used} MB"
    );
}

#[tokio::test]
async fn memory_exhaustion_is_runtime_out_of_memory_and_the_server_serves_on() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("fail-oom");
    let bystander = unique_name("fail-bystander");
    deploy_node(&engine, &name, 128, 30).await;
    deploy_node(&engine, &bystander, 256, 10).await;
    let inv = invoke(&engine.client, &name, json!({"action": "oom"})).await;
    assert_out_of_memory(&inv, 128);
    assert_still_serving(&engine, &name, &bystander).await;
    engine.stop().await;
}

#[tokio::test]
async fn python_memory_exhaustion_is_runtime_out_of_memory() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("fail-py-oom");
    deploy_python(&engine, &name, 128).await;
    let inv = invoke(&engine.client, &name, json!({"action": "oom"})).await;
    assert_out_of_memory(&inv, 128);
    engine.stop().await;
}

#[tokio::test]
async fn fork_bomb_is_contained_and_the_server_serves_on() {
    let engine = TestServer::start_own_runtimes().await;
    let (name, bystander) = node_with_bystander(&engine, "fail-forkbomb", 3).await;
    let inv = invoke(&engine.client, &name, json!({"action": "forkbomb"})).await;
    let body = inv.unhandled();
    let id = request_id_of(&inv);
    assert_eq!(
        body["errorMessage"],
        format!("RequestId: {id} Error: Task timed out after 3.00 seconds"),
        "{inv}"
    );
    assert_still_serving(&engine, &name, &bystander).await;
    engine.stop().await;
}

#[tokio::test]
async fn node_unserializable_result_is_an_error() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("fail-circular");
    deploy_node(&engine, &name, 256, 10).await;
    let inv = invoke(&engine.client, &name, json!({"action": "circular"})).await;
    let body = inv.unhandled();
    assert_eq!(body["errorType"], "Error", "{inv}");
    assert_eq!(body["errorMessage"], "Unable to stringify response body");
    engine.stop().await;
}

#[tokio::test]
async fn python_unserializable_result_is_runtime_marshal_error() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("fail-marshal");
    deploy_python(&engine, &name, 256).await;
    let inv = invoke(&engine.client, &name, json!({"action": "marshal"})).await;
    let id = request_id_of(&inv);
    assert_eq!(
        inv.unhandled(),
        json!({
            "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
            "errorType": "Runtime.MarshalError",
            "requestId": id,
            "stackTrace": [],
        })
    );
    engine.stop().await;
}

#[tokio::test]
async fn response_at_the_limit_passes_and_one_byte_over_is_function_response_size_too_large() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("fail-big");
    deploy_node(&engine, &name, 512, 30).await;
    let at_limit = invoke(
        &engine.client,
        &name,
        json!({"action": "sized", "bytes": MAX_RESPONSE_BYTES}),
    )
    .await;
    assert_eq!(at_limit.status, 200);
    assert_eq!(
        at_limit.function_error, None,
        "a response of exactly the limit is allowed"
    );
    assert_eq!(at_limit.raw.len(), MAX_RESPONSE_BYTES);

    let over = invoke(
        &engine.client,
        &name,
        json!({"action": "sized", "bytes": MAX_RESPONSE_BYTES + 1}),
    )
    .await;
    assert_eq!(
        over.unhandled(),
        json!({
            "errorType": "Function.ResponseSizeTooLarge",
            "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
        })
    );
    // The function itself was fine: its instance serves on.
    let next = invoke(&engine.client, &name, json!({"action": "ok"})).await;
    next.ok();
    assert!(!next.report().contains_key("Init Duration"), "{next}");
    engine.stop().await;
}

#[tokio::test]
async fn request_over_6_mb_is_request_too_large_413() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("fail-request");
    deploy_node(&engine, &name, 256, 10).await;
    // A JSON string of 6 MiB + 1 bytes.
    let payload = format!("\"{}\"", "x".repeat(6 * 1024 * 1024 - 1));
    let err = engine
        .client
        .invoke()
        .function_name(&name)
        .payload(Blob::new(payload))
        .send()
        .await
        .expect_err("too large");
    let raw = err.raw_response().expect("a response");
    assert_eq!(raw.status().as_u16(), 413);
    assert_eq!(err.code(), Some("RequestTooLargeException"), "{err:?}");
    assert_eq!(
        err.message(),
        Some("Request must be smaller than 6291456 bytes for the InvokeFunction operation")
    );
    // Exactly 6 MiB is accepted.
    let payload = format!("\"{}\"", "x".repeat(6 * 1024 * 1024 - 2));
    let ok = engine
        .client
        .invoke()
        .function_name(&name)
        .payload(Blob::new(payload))
        .send()
        .await
        .expect("6 MiB is within the limit");
    assert_eq!(ok.status_code(), 200);
    engine.stop().await;
}

#[tokio::test]
async fn event_over_1_mb_is_request_entity_too_large_413() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("fail-event-size");
    deploy_node(&engine, &name, 256, 10).await;
    let payload = format!("\"{}\"", "x".repeat(1024 * 1024 - 1));
    let err = engine
        .client
        .invoke()
        .function_name(&name)
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(Blob::new(payload))
        .send()
        .await
        .expect_err("too large");
    assert_eq!(
        err.raw_response().expect("a response").status().as_u16(),
        413
    );
    // AWS's code for an oversize event (a sync request over 6 MB is
    // RequestTooLargeException).
    assert_eq!(
        err.code(),
        Some("RequestEntityTooLargeException"),
        "{err:?}"
    );
    assert_eq!(
        err.message(),
        Some(
            "1048577 byte payload is too large for the Event invocation type (limit 1048576 bytes)"
        )
    );
    engine.stop().await;
}

async fn init_failure(runtime: Runtime, handler: &str, files: &[(&str, &[u8])]) -> Value {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("fail-init");
    deploy(
        &engine.client,
        &name,
        FunctionSpec::new(runtime, handler, zip_of(files)),
    )
    .await;
    let inv = invoke(&engine.client, &name, json!({})).await;
    let body = inv.unhandled();
    // The log tail shows the failed init as AWS reports it.
    let error_type = body["errorType"].as_str().unwrap_or_default();
    let init_report = inv
        .log_lines()
        .into_iter()
        .find(|l| l.starts_with("INIT_REPORT Init Duration: "))
        .unwrap_or_else(|| panic!("no INIT_REPORT in the log tail: {}", inv.log))
        .to_string();
    assert!(
        init_report.ends_with(&format!(
            "Phase: init\tStatus: error\tError Type: {error_type}"
        )),
        "{init_report}"
    );
    // Every invocation retries the init, and fails the same way (the stack
    // trace may differ by a frame: a retry can run in a stem cell, whose
    // runtime loaded the handler after awaiting its assignment).
    let again = invoke(&engine.client, &name, json!({})).await;
    let retried = again.unhandled();
    assert_eq!(retried["errorType"], body["errorType"], "{again}");
    assert_eq!(retried["errorMessage"], body["errorMessage"], "{again}");
    engine.stop().await;
    body
}

#[tokio::test]
async fn node_missing_module_is_runtime_import_module_error() {
    let body = init_failure(
        Runtime::Nodejs20x,
        "index.handler",
        &[("other.js", b"exports.handler = async () => 1;")],
    )
    .await;
    assert_eq!(body["errorType"], "Runtime.ImportModuleError", "{body}");
    let message = body["errorMessage"].as_str().expect("message");
    assert!(
        message.starts_with("Error: Cannot find module 'index'"),
        "{message}"
    );
    assert!(body["trace"].is_array(), "{body}");
}

#[tokio::test]
async fn node_missing_handler_is_runtime_handler_not_found() {
    let body = init_failure(
        Runtime::Nodejs20x,
        "index.handler",
        &[("index.js", b"exports.other = async () => 1;")],
    )
    .await;
    assert_eq!(body["errorType"], "Runtime.HandlerNotFound", "{body}");
    assert_eq!(
        body["errorMessage"],
        "index.handler is undefined or not exported"
    );
}

#[tokio::test]
async fn python_missing_module_is_runtime_import_module_error() {
    let body = init_failure(
        Runtime::Python312,
        "lambda_function.handler",
        &[("other.py", b"def handler(e, c):\n    return 1\n")],
    )
    .await;
    assert_eq!(
        body,
        json!({
            "errorMessage": "Unable to import module 'lambda_function': No module named 'lambda_function'",
            "errorType": "Runtime.ImportModuleError",
            "requestId": "",
            "stackTrace": [],
        })
    );
}

#[tokio::test]
async fn python_missing_handler_is_runtime_handler_not_found() {
    let body = init_failure(
        Runtime::Python312,
        "lambda_function.handler",
        &[("lambda_function.py", b"def other(e, c):\n    return 1\n")],
    )
    .await;
    assert_eq!(
        body,
        json!({
            "errorMessage": "Handler 'handler' missing on module 'lambda_function'",
            "errorType": "Runtime.HandlerNotFound",
            "requestId": "",
            "stackTrace": [],
        })
    );
}
