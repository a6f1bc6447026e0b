//! End-to-end: Python functions (python3.11 and python3.12) through the
//! Invoke API.

mod harness;

use aws_sdk_lambda::types::Runtime;
use harness::*;
use serde_json::json;

/// One handler, many behaviours chosen by `event["action"]`.
pub const PYTHON_FUNCTION: &str = r#"
import logging
import os
import socket
import sys

logger = logging.getLogger()
logger.setLevel(logging.INFO)
count = 0


def gateway():
    with open("/proc/net/route") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == "00000000":
                raw = bytes.fromhex(fields[2])
                return ".".join(str(b) for b in reversed(raw))
    raise RuntimeError("no default route")


def barrier(port):
    with socket.create_connection((gateway(), port), timeout=30) as s:
        s.sendall((os.environ["AWS_LAMBDA_LOG_STREAM_NAME"] + "\n").encode())
        return s.makefile().readline().strip()


def handler(event, context):
    global count
    stream = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
    action = event["action"]
    if action == "hello":
        return "Hello from Python"
    if action == "add":
        return {"sum": event["a"] + event["b"], "product": event["a"] * event["b"]}
    if action == "context":
        return {
            "awsRequestId": context.aws_request_id,
            "functionName": context.function_name,
            "functionVersion": context.function_version,
            "invokedFunctionArn": context.invoked_function_arn,
            "memoryLimitInMB": context.memory_limit_in_mb,
            "logGroupName": context.log_group_name,
            "logStreamName": context.log_stream_name,
            "remainingMs": context.get_remaining_time_in_millis(),
            "version": "%d.%d" % sys.version_info[:2],
        }
    if action == "env":
        return {n: os.environ.get(n) for n in event["names"]}
    if action == "log":
        print("printed " + event["marker"])
        logger.info("marker %s", event["marker"])
        return "logged"
    if action == "count":
        count += 1
        return {"count": count, "stream": stream}
    if action == "barrier":
        return {"stream": stream, "reply": barrier(event["port"])}
    raise ValueError("unknown action " + action)
"#;

macro_rules! python_tests {
    ($module:ident, $runtime:expr, $version:literal) => {
        mod $module {
            use super::*;

            async fn deploy_python(engine: &TestServer, name: &str) {
                let zip = zip_of(&[("lambda_function.py", PYTHON_FUNCTION.as_bytes())]);
                deploy(
                    &engine.client,
                    name,
                    FunctionSpec::new($runtime, "lambda_function.handler", zip)
                        .env("USER_VAR", "user value"),
                )
                .await;
            }

            crate::runtime_conformance_tests!(
                $module,
                deploy_python,
                "Hello from Python",
                "lambda_function.handler"
            );

            #[tokio::test]
            async fn event_in_computed_result_out_on_the_right_interpreter() {
                let engine = TestServer::start_own_runtimes().await;
                let name = unique_name(concat!(stringify!($module), "-add"));
                deploy_python(&engine, &name).await;
                assert_adds(&engine.client, &name).await;
                let ctx = invoke(&engine.client, &name, json!({"action": "context"})).await;
                let ctx_json = ctx.ok();
                assert_eq!(ctx_json["version"], $version, "{ctx}");
                assert_context(&ctx_json, &name, &ctx.log, 256);
                engine.stop().await;
            }

            #[tokio::test]
            async fn print_and_logging_lines_appear_in_the_log_tail() {
                let engine = TestServer::start_own_runtimes().await;
                let name = unique_name(concat!(stringify!($module), "-log"));
                deploy_python(&engine, &name).await;
                let inv =
                    invoke(&engine.client, &name, json!({"action": "log", "marker": "py-l1ne"}))
                        .await;
                inv.ok();
                let request_id = assert_log_framing(&inv, true);
                let lines = inv.log_lines();
                assert!(lines.contains(&"printed py-l1ne"), "print is raw: {inv}");
                // `[INFO]\t{timestamp}\t{request id}\t{message}`
                let logged = lines
                    .iter()
                    .find(|l| l.ends_with("\tmarker py-l1ne"))
                    .unwrap_or_else(|| panic!("the logging line is in the tail: {inv}"));
                let fields: Vec<&str> = logged.split('\t').collect();
                assert_eq!(fields[0], "[INFO]", "{logged}");
                assert!(fields[1].ends_with('Z') && fields[1].contains('T'), "{logged}");
                assert_eq!(fields[2], request_id, "{logged}");
                engine.stop().await;
            }

        }
    };
}

python_tests!(python311, Runtime::Python311, "3.11");
python_tests!(python312, Runtime::Python312, "3.12");
