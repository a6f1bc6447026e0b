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

            #[tokio::test]
            async fn says_hello_with_lambda_log_framing() {
                let engine = TestServer::start_own_runtimes().await;
                let name = unique_name(concat!(stringify!($module), "-hello"));
                deploy_native(&engine, &name).await;
                let cold = invoke(&engine.client, &name, json!({"action": "hello"})).await;
                assert_eq!(cold.ok(), json!($hello));
                assert_eq!(cold.executed_version.as_deref(), Some("$LATEST"));
                assert_log_framing(&cold, true);
                let warm = invoke(&engine.client, &name, json!({"action": "hello"})).await;
                assert_eq!(warm.ok(), json!($hello));
                assert_log_framing(&warm, false);
                engine.stop().await;
            }

            #[tokio::test]
            async fn event_in_computed_result_out_and_context() {
                let engine = TestServer::start_own_runtimes().await;
                let name = unique_name(concat!(stringify!($module), "-add"));
                deploy_native(&engine, &name).await;
                let inv =
                    invoke(&engine.client, &name, json!({"action": "add", "a": 20, "b": 22})).await;
                assert_eq!(inv.ok(), json!({"sum": 42, "product": 440}));
                let ctx = invoke(&engine.client, &name, json!({"action": "context"})).await;
                assert_context(&ctx.ok(), &name, &ctx.log, 256);
                engine.stop().await;
            }

            #[tokio::test]
            async fn environment_has_lambda_and_user_variables() {
                let engine = TestServer::start_own_runtimes().await;
                let name = unique_name(concat!(stringify!($module), "-env"));
                deploy_native(&engine, &name).await;
                let inv =
                    invoke(&engine.client, &name, json!({"action": "env", "names": ENV_NAMES}))
                        .await;
                assert_lambda_environment(&inv.ok(), &name, "bootstrap");
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
            async fn warm_instance_keeps_its_globals() {
                let engine = TestServer::start_own_runtimes().await;
                let name = unique_name(concat!(stringify!($module), "-warm"));
                deploy_native(&engine, &name).await;
                assert_warm_reuse(&engine.client, &name).await;
                engine.stop().await;
            }

            #[tokio::test]
            async fn concurrent_invocations_run_on_distinct_instances() {
                let engine = TestServer::start_own_runtimes().await;
                let name = unique_name(concat!(stringify!($module), "-conc"));
                deploy_native(&engine, &name).await;
                assert_concurrent_invocations_use_distinct_instances(&engine.client, &name, 3)
                    .await;
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
