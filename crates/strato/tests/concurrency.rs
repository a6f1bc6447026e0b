//! End-to-end: the account's concurrency limit, reserved concurrency, 429s,
//! event invocations that wait for a slot, and the host's memory budget.
//!
//! Handlers are held in flight with a TCP rendezvous ([`Barrier`]) that the
//! test itself joins last, so "how many run at once" never depends on timing.

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::time::Duration;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::ThrottleReason;
use harness::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const HANDLER: &str = r#"
exports.handler = async (event) => {
  switch (event.action) {
    case 'hold': return { reply: await barrier(event.port) };
    case 'barrier': return { stream: process.env.AWS_LAMBDA_LOG_STREAM_NAME, reply: await barrier(event.port) };
    case 'hello': return 'hello';
    case 'throw': throw new Error('boom');
    case 'exit': process.exit(3);
    case 'hang': await new Promise(() => setInterval(() => {}, 1000));
  }
  throw new Error(`unknown action ${event.action}`);
};
"#;

async fn deploy_fn(engine: &TestServer, name: &str, memory: i32, timeout: i32) {
    deploy(
        &engine.client,
        name,
        FunctionSpec::node(&format!("{NODE_BARRIER_JS}{HANDLER}"))
            .memory(memory)
            .timeout(timeout),
    )
    .await;
}

/// What a synchronous call came back with: the function's payload, or an
/// API error (status, code, message, throttle reason).
#[derive(Debug)]
enum Call {
    Ran(Value),
    Refused {
        status: u16,
        code: String,
        message: String,
        reason: Option<ThrottleReason>,
    },
}

impl Call {
    fn ran(&self) -> &Value {
        match self {
            Call::Ran(v) => v,
            other => panic!("expected the function to run: {other:?}"),
        }
    }

    fn assert_throttled(&self, reason: ThrottleReason) {
        match self {
            Call::Refused {
                status,
                code,
                message,
                reason: got,
            } => {
                assert_eq!(*status, 429, "{self:?}");
                assert_eq!(code, "TooManyRequestsException", "{self:?}");
                assert_eq!(message, "Rate Exceeded.", "{self:?}");
                assert_eq!(got.as_ref(), Some(&reason), "{self:?}");
            }
            other => panic!("expected a 429: {other:?}"),
        }
    }

    fn is_throttled(&self) -> bool {
        matches!(self, Call::Refused { status: 429, .. })
    }
}

async fn call(client: &aws_sdk_lambda::Client, name: &str, event: Value) -> Call {
    match client
        .invoke()
        .function_name(name)
        .payload(Blob::new(event.to_string()))
        .send()
        .await
    {
        Ok(out) => {
            let raw = out
                .payload()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default();
            let value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
            match out.function_error() {
                None => Call::Ran(value),
                Some(_) => Call::Ran(json!({ "functionError": value })),
            }
        }
        Err(err) => {
            let status = err
                .raw_response()
                .map(|r| r.status().as_u16())
                .unwrap_or_default();
            let code = err.code().unwrap_or_default().to_string();
            let message = err.message().unwrap_or_default().to_string();
            let reason = err.as_service_error().and_then(|e| match e {
                aws_sdk_lambda::operation::invoke::InvokeError::TooManyRequestsException(t) => {
                    t.reason().cloned()
                }
                _ => None,
            });
            Call::Refused {
                status,
                code,
                message,
                reason,
            }
        }
    }
}

fn spawn_call(engine: &TestServer, name: &str, event: Value) -> tokio::task::JoinHandle<Call> {
    let client = engine.client.clone();
    let name = name.to_string();
    tokio::spawn(async move { call(&client, &name, event).await })
}

/// Joins a barrier as one of its parties (the last one releases everyone).
async fn join(port: u16) {
    let socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to barrier");
    let mut reader = BufReader::new(socket);
    reader
        .get_mut()
        .write_all(b"test\n")
        .await
        .expect("join barrier");
    let mut line = String::new();
    reader.read_line(&mut line).await.expect("released");
}

fn in_use(engine: &TestServer) -> u32 {
    engine.server().engine.concurrency().in_use(ACCOUNT, REGION)
}

/// Waits until exactly `n` invocations of the account hold permits.
async fn until_in_use(engine: &TestServer, n: u32) {
    poll(Duration::from_secs(60), || async {
        (in_use(engine) == n).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{n} invocations in flight (saw {})", in_use(engine)));
}

async fn put_concurrency(
    engine: &TestServer,
    name: &str,
    n: i32,
) -> Result<Option<i32>, (String, String)> {
    engine
        .client
        .put_function_concurrency()
        .function_name(name)
        .reserved_concurrent_executions(n)
        .send()
        .await
        .map(|out| out.reserved_concurrent_executions())
        .map_err(|e| {
            (
                e.code().unwrap_or_default().to_string(),
                e.message().unwrap_or_default().to_string(),
            )
        })
}

/// GetFunctionConcurrency: the function's reservation, if any.
async fn reserved_concurrency(engine: &TestServer, name: &str) -> Option<i32> {
    engine
        .client
        .get_function_concurrency()
        .function_name(name)
        .send()
        .await
        .expect("get concurrency")
        .reserved_concurrent_executions()
}

async fn delete_concurrency(engine: &TestServer, name: &str) {
    engine
        .client
        .delete_function_concurrency()
        .function_name(name)
        .send()
        .await
        .expect("delete concurrency");
}

async fn account_settings(engine: &TestServer) -> (i32, i32) {
    let out = engine
        .client
        .get_account_settings()
        .send()
        .await
        .expect("account settings");
    let limit = out.account_limit().expect("AccountLimit");
    (
        limit.concurrent_executions(),
        limit
            .unreserved_concurrent_executions()
            .expect("unreserved"),
    )
}

/// `strato accounts set-limit`, as an administrator runs it beside a server.
fn set_limit(engine: &TestServer, limit: u32) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strato"))
        .args([
            "accounts",
            "set-limit",
            ACCOUNT,
            &limit.to_string(),
            "--data-dir",
        ])
        .arg(engine.dir.path())
        .output()
        .expect("run strato accounts set-limit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const MINIMUM_MESSAGE: &str = "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100].";

#[tokio::test]
async fn reserved_concurrency_zero_throttles() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("conc-zero");
    deploy_fn(&engine, &name, 128, 30).await;
    assert_eq!(put_concurrency(&engine, &name, 0).await, Ok(Some(0)));
    call(&engine.client, &name, json!({"action": "hello"}))
        .await
        .assert_throttled(ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded);
    assert_eq!(engine.server().engine.live_instances(), 0);
    // Without the reservation it runs again.
    delete_concurrency(&engine, &name).await;
    assert_eq!(
        call(&engine.client, &name, json!({"action": "hello"}))
            .await
            .ran(),
        &json!("hello")
    );
    engine.stop().await;
}

#[tokio::test]
async fn reserved_two_runs_exactly_two_of_six_and_throttles_four() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("conc-two");
    deploy_fn(&engine, &name, 128, 60).await;
    put_concurrency(&engine, &name, 2).await.expect("reserve 2");
    // Two handlers and this test: the two admitted stay in flight until the
    // four others have been answered.
    let barrier = Barrier::open(3).await;
    let port = barrier.port;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let client = engine.client.clone();
        let name = name.clone();
        calls.spawn(
            async move { call(&client, &name, json!({"action": "hold", "port": port})).await },
        );
    }
    for _ in 0..4 {
        let refused = calls.join_next().await.expect("a call").expect("call task");
        refused.assert_throttled(ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded);
    }
    assert_eq!(in_use(&engine), 2);
    join(port).await;
    while let Some(done) = calls.join_next().await {
        assert_eq!(done.expect("call task").ran()["reply"], "go");
    }
    assert_eq!(barrier.names().await.len(), 3);
    until_in_use(&engine, 0).await;
    engine.stop().await;
}

#[tokio::test]
async fn reservations_must_leave_100_unreserved() {
    let engine = TestServer::start_own_runtimes().await;
    let (a, b) = (unique_name("conc-min-a"), unique_name("conc-min-b"));
    deploy_fn(&engine, &a, 128, 30).await;
    deploy_fn(&engine, &b, 128, 30).await;
    assert_eq!(account_settings(&engine).await, (1000, 1000));

    let refused = put_concurrency(&engine, &a, 901).await.unwrap_err();
    assert_eq!(
        refused,
        (
            "InvalidParameterValueException".to_string(),
            MINIMUM_MESSAGE.to_string()
        )
    );
    assert_eq!(put_concurrency(&engine, &a, 900).await, Ok(Some(900)));
    assert_eq!(account_settings(&engine).await, (1000, 100));
    // Changing a's own reservation does not count it twice; b gets none.
    assert_eq!(put_concurrency(&engine, &a, 900).await, Ok(Some(900)));
    assert_eq!(
        put_concurrency(&engine, &b, 1).await.unwrap_err().1,
        MINIMUM_MESSAGE
    );

    assert_eq!(reserved_concurrency(&engine, &a).await, Some(900));
    let function = get_function(&engine.client, &a).await;
    assert_eq!(
        function
            .concurrency()
            .and_then(|c| c.reserved_concurrent_executions()),
        Some(900)
    );

    delete_concurrency(&engine, &a).await;
    assert_eq!(reserved_concurrency(&engine, &a).await, None);
    assert_eq!(account_settings(&engine).await, (1000, 1000));
    assert_eq!(put_concurrency(&engine, &b, 1).await, Ok(Some(1)));

    let negative = put_concurrency(&engine, &b, -1).await.unwrap_err();
    assert_eq!(
        negative,
        (
            "ValidationException".to_string(),
            "1 validation error detected: Value '-1' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0".to_string()
        )
    );
    let missing = put_concurrency(&engine, "conc-nobody", 1)
        .await
        .unwrap_err();
    assert_eq!(missing.0, "ResourceNotFoundException");
    engine.stop().await;
}

/// Account limit 200 with 100 reserved for one function leaves exactly the
/// 100 unreserved to the others. Holding 100 instances is too much for a
/// test machine, so once the reservation is made the administrator lowers
/// the limit to 103 (`strato accounts set-limit`, applied by the running
/// server): the same rule then leaves the other functions exactly 3.
#[tokio::test]
async fn unreserved_pool_is_the_limit_minus_reservations() {
    let engine = TestServer::start_own_runtimes().await;
    let big = unique_name("conc-big");
    let (f1, f2) = (unique_name("conc-f1"), unique_name("conc-f2"));
    for name in [&big, &f1, &f2] {
        deploy_fn(&engine, name, 128, 60).await;
    }
    set_limit(&engine, 200);
    assert_eq!(account_settings(&engine).await, (200, 200));
    assert_eq!(
        put_concurrency(&engine, &big, 101).await.unwrap_err().1,
        MINIMUM_MESSAGE
    );
    assert_eq!(put_concurrency(&engine, &big, 100).await, Ok(Some(100)));
    assert_eq!(account_settings(&engine).await, (200, 100));

    set_limit(&engine, 103);
    poll(Duration::from_secs(30), || async {
        (engine
            .server()
            .engine
            .concurrency()
            .unreserved(ACCOUNT, REGION)
            == 3)
            .then_some(())
    })
    .await
    .expect("the running server applies the new limit");
    assert_eq!(account_settings(&engine).await, (103, 3));

    let barrier = Barrier::open(4).await;
    let port = barrier.port;
    let held = vec![
        spawn_call(&engine, &f1, json!({"action": "hold", "port": port})),
        spawn_call(&engine, &f1, json!({"action": "hold", "port": port})),
        spawn_call(&engine, &f2, json!({"action": "hold", "port": port})),
    ];
    until_in_use(&engine, 3).await;
    call(&engine.client, &f2, json!({"action": "hello"}))
        .await
        .assert_throttled(ThrottleReason::ConcurrentInvocationLimitExceeded);
    // The reserved function is not affected by the full unreserved pool.
    assert_eq!(
        call(&engine.client, &big, json!({"action": "hello"}))
            .await
            .ran(),
        &json!("hello")
    );
    join(port).await;
    for h in held {
        assert_eq!(h.await.expect("call task").ran()["reply"], "go");
    }
    until_in_use(&engine, 0).await;
    engine.stop().await;
}

/// AWS throttles an event for a function with reserved concurrency 0 and
/// retries it until the maximum event age, then drops it (to a dead-letter
/// queue or on-failure destination when configured; Strato has neither yet).
#[tokio::test]
async fn event_for_reserved_zero_is_accepted_then_dropped_at_max_event_age() {
    let engine =
        TestServer::start_with(Runtimes::Own, |c| c.max_event_age = Duration::from_secs(1)).await;
    let name = unique_name("conc-event-zero");
    deploy_fn(&engine, &name, 128, 30).await;
    put_concurrency(&engine, &name, 0).await.expect("reserve 0");
    assert_eq!(
        invoke_event(&engine.client, &name, json!({"action": "hello"})).await,
        202
    );
    poll(Duration::from_secs(30), || async {
        (engine.server().engine.expired_events() == 1).then_some(())
    })
    .await
    .expect("the event is dropped at its maximum age");
    assert_eq!(engine.server().engine.live_instances(), 0, "it never ran");
    engine.stop().await;
}

#[tokio::test]
async fn event_invocations_wait_for_a_free_slot_and_then_run() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("conc-event-wait");
    deploy_fn(&engine, &name, 128, 60).await;
    put_concurrency(&engine, &name, 1).await.expect("reserve 1");
    let first = Barrier::open(2).await;
    let first_port = first.port;
    let running = spawn_call(
        &engine,
        &name,
        json!({"action": "hold", "port": first_port}),
    );
    until_in_use(&engine, 1).await;

    // The event meets a full pool: accepted, and waiting.
    let second = Barrier::open(1).await;
    assert_eq!(
        invoke_event(
            &engine.client,
            &name,
            json!({"action": "hold", "port": second.port})
        )
        .await,
        202
    );
    assert_eq!(in_use(&engine), 1);
    assert_eq!(engine.server().engine.live_instances(), 1);

    // The slot frees: the event runs (it reaches its own rendezvous).
    join(first_port).await;
    assert_eq!(running.await.expect("call").ran()["reply"], "go");
    assert_eq!(second.names().await.len(), 1);
    until_in_use(&engine, 0).await;
    assert_eq!(engine.server().engine.expired_events(), 0);
    engine.stop().await;
}

/// Successes, function errors, crashes, timeouts, throttles and a client
/// that goes away, all at once: every permit comes back.
#[tokio::test]
async fn permits_return_after_a_storm_of_mixed_endings() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("conc-storm");
    // A 3 s timeout keeps the disconnected caller's invocation in flight long
    // enough to be seen even on a loaded machine.
    deploy_fn(&engine, &name, 128, 3).await;
    put_concurrency(&engine, &name, 5).await.expect("reserve 5");
    let actions = [
        "hello", "throw", "exit", "hang", "hello", "throw", "exit", "hello", "hello", "hang",
    ];
    let calls: Vec<_> = actions
        .iter()
        .map(|a| spawn_call(&engine, &name, json!({ "action": a })))
        .collect();
    let mut ran = 0;
    for c in calls {
        let result = c.await.expect("call task");
        if !result.is_throttled() {
            result.ran();
            ran += 1;
        }
    }
    assert!(ran >= 1, "some calls ran");
    until_in_use(&engine, 0).await;
    // A caller that disconnects mid-invocation: the invocation runs to its
    // timeout and its permit comes back then.
    let gone = spawn_call(&engine, &name, json!({"action": "hang"}));
    until_in_use(&engine, 1).await;
    gone.abort();
    until_in_use(&engine, 0).await;
    // The pool is whole again: the full reservation is usable.
    let barrier = Barrier::open(6).await;
    let port = barrier.port;
    let held: Vec<_> = (0..5)
        .map(|_| spawn_call(&engine, &name, json!({"action": "hold", "port": port})))
        .collect();
    until_in_use(&engine, 5).await;
    call(&engine.client, &name, json!({"action": "hello"}))
        .await
        .assert_throttled(ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded);
    join(port).await;
    for h in held {
        h.await.expect("call task").ran();
    }
    until_in_use(&engine, 0).await;
    engine.stop().await;
}

#[tokio::test]
async fn a_full_memory_budget_ends_the_least_recently_used_idle_instance() {
    let engine = TestServer::start_with(Runtimes::Own, |c| c.memory_budget_mb = 512).await;
    let (a, b, c) = (
        unique_name("conc-mem-a"),
        unique_name("conc-mem-b"),
        unique_name("conc-mem-c"),
    );
    for name in [&a, &b, &c] {
        deploy_fn(&engine, name, 256, 60).await;
    }
    let hello = |name: &str| {
        let name = name.to_string();
        let client = engine.client.clone();
        async move { invoke(&client, &name, json!({"action": "hello"})).await }
    };
    let cold = |inv: &Invocation| inv.report().contains_key("Init Duration");
    assert!(cold(&hello(&a).await));
    assert!(cold(&hello(&b).await));
    // b is now the most recently used; the budget (512 MB) is full.
    assert!(!cold(&hello(&b).await));
    assert_eq!(engine.server().engine.memory_budget().used_mb(), 512);
    // c's cold start ends a's idle instance (least recently used), not b's.
    assert!(cold(&hello(&c).await));
    assert!(!cold(&hello(&b).await), "b stayed warm");
    assert!(cold(&hello(&a).await), "a was ended to make room");

    // With every instance busy, nothing can be ended: the cold start is refused.
    let barrier = Barrier::open(3).await;
    let port = barrier.port;
    let held = vec![
        spawn_call(&engine, &a, json!({"action": "hold", "port": port})),
        spawn_call(&engine, &c, json!({"action": "hold", "port": port})),
    ];
    until_in_use(&engine, 2).await;
    // b's idle instance made room for whichever of a, c needed it; now both
    // are busy and hold the whole budget.
    poll(Duration::from_secs(60), || async {
        (engine.server().engine.idle_instances() == 0).then_some(())
    })
    .await
    .expect("no idle instance is left");
    call(&engine.client, &b, json!({"action": "hello"}))
        .await
        .assert_throttled(ThrottleReason::ConcurrentInvocationLimitExceeded);
    join(port).await;
    for h in held {
        assert_eq!(h.await.expect("call task").ran()["reply"], "go");
    }
    until_in_use(&engine, 0).await;
    engine.stop().await;
}

/// Lambda's contract at 32: each of 32 invocations held in flight at once
/// runs on an instance of its own (32 distinct log streams, each reaching
/// the rendezvous), however the scheduler treats a busy host.
#[tokio::test]
async fn thirty_two_concurrent_invocations_run_on_thirty_two_instances() {
    let engine = TestServer::start().await;
    let name = unique_name("conc-32");
    deploy_fn(&engine, &name, 128, 60).await;
    assert_concurrent_invocations_use_distinct_instances(&engine.client, &name, 32).await;
    engine.stop().await;
}
