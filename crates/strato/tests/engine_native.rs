//! End-to-end: native functions on provided.al2023 — a Go function built
//! with github.com/aws/aws-lambda-go and a Rust function built with the
//! `lambda_runtime` crate, both compiled from source by the tests and run
//! unchanged.

mod harness;

use aws_sdk_lambda::types::Runtime;
use harness::*;
use serde_json::json;

macro_rules! native_tests {
    ($module:ident, $build:path, $hello:literal) => {
        mod $module {
            use super::*;

            async fn deploy_native(engine: &TestServer, name: &str) {
                let zip = tokio::task::spawn_blocking($build)
                    .await
                    .expect("build the test function");
                deploy(
                    &engine.client,
                    name,
                    FunctionSpec::new(Runtime::Providedal2023, "bootstrap", zip)
                        .env("USER_VAR", "user value"),
                )
                .await;
            }

            crate::runtime_conformance_tests!($module, deploy_native, $hello, "bootstrap");

            #[tokio::test]
            async fn event_in_computed_result_out_and_context() {
                let engine = TestServer::start_own_runtimes().await;
                let name = unique_name(concat!(stringify!($module), "-add"));
                deploy_native(&engine, &name).await;
                assert_adds(&engine.client, &name).await;
                let ctx = invoke(&engine.client, &name, json!({"action": "context"})).await;
                assert_context(&ctx.ok(), &name, &ctx.log, 256);
                engine.stop().await;
            }

            #[tokio::test]
            async fn stdout_lines_appear_in_the_log_tail() {
                let engine = TestServer::start_own_runtimes().await;
                let name = unique_name(concat!(stringify!($module), "-log"));
                deploy_native(&engine, &name).await;
                let inv = invoke(
                    &engine.client,
                    &name,
                    json!({"action": "log", "marker": "n4tive-l1ne"}),
                )
                .await;
                inv.ok();
                assert_log_framing(&inv, true);
                let lines = inv.log_lines();
                let at = lines
                    .iter()
                    .position(|l| *l == "marker n4tive-l1ne")
                    .unwrap_or_else(|| panic!("the function's line is in the tail: {inv}"));
                let start = lines.iter().position(|l| l.starts_with("START")).expect("start");
                let end = lines.iter().position(|l| l.starts_with("END")).expect("end");
                assert!(start < at && at < end, "{inv}");
                engine.stop().await;
            }

            #[tokio::test]
            async fn returned_error_is_unhandled_and_the_instance_serves_on() {
                let engine = TestServer::start_own_runtimes().await;
                let name = unique_name(concat!(stringify!($module), "-err"));
                deploy_native(&engine, &name).await;
                let inv =
                    invoke(&engine.client, &name, json!({"action": "error", "marker": "b00m"}))
                        .await;
                let body = inv.unhandled();
                assert_eq!(body["errorMessage"], "something went wrong: b00m", "{inv}");
                assert!(body["errorType"].is_string(), "{inv}");
                let next = invoke(&engine.client, &name, json!({"action": "hello"})).await;
                assert_eq!(next.ok(), json!($hello));
                assert!(!next.report().contains_key("Init Duration"), "{next}");
                engine.stop().await;
            }

            #[tokio::test]
            async fn process_exit_is_runtime_exit_error() {
                let engine = TestServer::start_own_runtimes().await;
                let name = unique_name(concat!(stringify!($module), "-exit"));
                deploy_native(&engine, &name).await;
                let inv = invoke(&engine.client, &name, json!({"action": "exit"})).await;
                let id = assert_log_framing(&inv, true);
                assert_eq!(
                    inv.unhandled(),
                    json!({
                        "errorType": "Runtime.ExitError",
                        "errorMessage": format!("RequestId: {id} Error: Runtime exited with error: exit status 1"),
                    })
                );
                let next = invoke(&engine.client, &name, json!({"action": "hello"})).await;
                assert_eq!(next.ok(), json!($hello));
                engine.stop().await;
            }
        }
    };
}

native_tests!(go, go_function_zip, "Hello from Go");
native_tests!(rust, rust_function_zip, "Hello from Rust");

#[tokio::test]
async fn go_error_type_is_the_go_type_name() {
    // aws-lambda-go names the error by its Go type, as on AWS.
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("go-errtype");
    let zip = tokio::task::spawn_blocking(go_function_zip)
        .await
        .expect("build");
    deploy(
        &engine.client,
        &name,
        FunctionSpec::new(Runtime::Providedal2023, "bootstrap", zip),
    )
    .await;
    let inv = invoke(
        &engine.client,
        &name,
        json!({"action": "error", "marker": "x"}),
    )
    .await;
    assert_eq!(
        inv.unhandled(),
        json!({"errorMessage": "something went wrong: x", "errorType": "errorString"})
    );
    engine.stop().await;
}
