//! End-to-end: Node.js functions (nodejs20.x) through the Invoke API.

mod harness;

use aws_sdk_lambda::types::Runtime;
use harness::*;
use serde_json::json;

/// One CommonJS handler, many behaviours chosen by `event.action`; it runs
/// after [`NODE_BARRIER_JS`].
pub const NODE_FUNCTION: &str = r#"
let count = 0;
let stored = null;

exports.handler = async (event, context) => {
  const stream = process.env.AWS_LAMBDA_LOG_STREAM_NAME;
  switch (event.action) {
    case 'hello': return 'Hello from Node.js';
    case 'add': return { sum: event.a + event.b, product: event.a * event.b };
    case 'context': return {
      awsRequestId: context.awsRequestId,
      functionName: context.functionName,
      functionVersion: context.functionVersion,
      invokedFunctionArn: context.invokedFunctionArn,
      memoryLimitInMB: context.memoryLimitInMB,
      logGroupName: context.logGroupName,
      logStreamName: context.logStreamName,
      remainingMs: context.getRemainingTimeInMillis(),
    };
    case 'env': return Object.fromEntries(event.names.map((n) => [n, process.env[n] ?? null]));
    case 'log': console.log(`marker ${event.marker}`); return 'logged';
    case 'count': count += 1; return { count, stream };
    case 'client-context': return context.clientContext ?? null;
    case 'barrier': return { stream, reply: await barrier(event.port) };
    case 'store': stored = event.value; return 'stored';
    case 'read-or-exit':
      // An instance that has not seen the event ends, so it is never reused.
      if (stored === null) process.exit(0);
      return { stored, stream };
  }
  throw new Error(`unknown action ${event.action}`);
};
"#;

async fn deploy_node(engine: &TestServer, name: &str) {
    deploy(
        &engine.client,
        name,
        FunctionSpec::node(&format!("{NODE_BARRIER_JS}{NODE_FUNCTION}"))
            .env("USER_VAR", "user value"),
    )
    .await;
}

/// What every runtime's test function passes, as `node::…`.
mod node {
    use super::*;

    crate::runtime_conformance_tests!(node, deploy_node, "Hello from Node.js", "index.handler");
}

#[tokio::test]
async fn node_event_in_computed_result_out() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("node-add");
    deploy_node(&engine, &name).await;
    assert_adds(&engine.client, &name).await;
    engine.stop().await;
}

#[tokio::test]
async fn node_context_carries_request_function_and_deadline() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("node-ctx");
    deploy_node(&engine, &name).await;
    let inv = invoke(&engine.client, &name, json!({"action": "context"})).await;
    assert_context(&inv.ok(), &name, &inv.log, 256);
    engine.stop().await;
}

#[tokio::test]
async fn node_console_lines_appear_in_the_log_tail_as_lambda_formats_them() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("node-log");
    deploy_node(&engine, &name).await;
    let inv = invoke(
        &engine.client,
        &name,
        json!({"action": "log", "marker": "n0de-l1ne"}),
    )
    .await;
    inv.ok();
    let request_id = assert_log_framing(&inv, true);
    // `{timestamp}\t{request id}\tINFO\t{message}`, between START and END.
    let lines = inv.log_lines();
    let at = lines
        .iter()
        .position(|l| l.ends_with("\tINFO\tmarker n0de-l1ne"))
        .unwrap_or_else(|| panic!("the function's line is in the tail: {inv}"));
    let fields: Vec<&str> = lines[at].split('\t').collect();
    assert_eq!(fields[1], request_id, "{}", lines[at]);
    assert!(
        fields[0].ends_with('Z') && fields[0].contains('T'),
        "{}",
        lines[at]
    );
    let start = lines
        .iter()
        .position(|l| l.starts_with("START"))
        .expect("start");
    let end = lines
        .iter()
        .position(|l| l.starts_with("END"))
        .expect("end");
    assert!(start < at && at < end, "{inv}");
    engine.stop().await;
}

#[tokio::test]
async fn node_event_invocation_is_accepted_and_runs() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("node-event");
    deploy_node(&engine, &name).await;
    let status = invoke_event(
        &engine.client,
        &name,
        json!({"action": "store", "value": "ev3nt"}),
    )
    .await;
    assert_eq!(status, 202);
    // The instance that ran the event is the only one that remembers it;
    // others exit when asked, so the poll ends on that instance.
    let seen = poll(std::time::Duration::from_secs(30), || async {
        let inv = invoke(&engine.client, &name, json!({"action": "read-or-exit"})).await;
        (inv.function_error.is_none()).then(|| inv.json())
    })
    .await
    .expect("the event ran and its instance serves the next invocation");
    assert_eq!(seen["stored"], "ev3nt");
    engine.stop().await;
}

#[tokio::test]
async fn node_dry_run_validates_without_running() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("node-dry");
    deploy_node(&engine, &name).await;
    let out = engine
        .client
        .invoke()
        .function_name(&name)
        .invocation_type(aws_sdk_lambda::types::InvocationType::DryRun)
        .send()
        .await
        .expect("dry run");
    assert_eq!(out.status_code(), 204);
    // Nothing ran: the first real invocation is still a cold start.
    let inv = invoke(&engine.client, &name, json!({"action": "hello"})).await;
    assert_log_framing(&inv, true);
    engine.stop().await;
}

#[tokio::test]
async fn node_client_context_reaches_the_handler() {
    use base64::Engine as _;
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("node-cc");
    deploy_node(&engine, &name).await;
    let context = json!({"custom": {"tenant": "t-1"}, "env": {"locale": "en"}});
    let out = engine
        .client
        .invoke()
        .function_name(&name)
        .client_context(base64::engine::general_purpose::STANDARD.encode(context.to_string()))
        .payload(aws_sdk_lambda::primitives::Blob::new(
            json!({"action": "client-context"}).to_string(),
        ))
        .send()
        .await
        .expect("invoke");
    assert_eq!(out.function_error(), None);
    let body: serde_json::Value =
        serde_json::from_slice(out.payload().expect("payload").as_ref()).expect("json");
    assert_eq!(body["custom"], context["custom"], "{body}");
    assert_eq!(body["env"], context["env"], "{body}");
    engine.stop().await;
}

#[tokio::test]
async fn node_esm_and_callback_handlers_work() {
    let engine = TestServer::start_own_runtimes().await;
    let esm = unique_name("node-esm");
    let zip = zip_of(&[(
        "app.mjs",
        b"export const handler = async (event) => ({ esm: true, got: event.n * 2 });".as_slice(),
    )]);
    deploy(
        &engine.client,
        &esm,
        FunctionSpec::new(Runtime::Nodejs20x, "app.handler", zip),
    )
    .await;
    let inv = invoke(&engine.client, &esm, json!({"n": 21})).await;
    assert_eq!(inv.ok(), json!({"esm": true, "got": 42}));

    let callback = unique_name("node-callback");
    let zip = zip_of(&[(
        "src/cb.js",
        b"exports.run = (event, context, callback) => { setTimeout(() => callback(null, { cb: event.n + 1 }), 10); };"
            .as_slice(),
    )]);
    deploy(
        &engine.client,
        &callback,
        FunctionSpec::new(Runtime::Nodejs20x, "src/cb.run", zip),
    )
    .await;
    let inv = invoke(&engine.client, &callback, json!({"n": 41})).await;
    assert_eq!(inv.ok(), json!({"cb": 42}));
    engine.stop().await;
}
