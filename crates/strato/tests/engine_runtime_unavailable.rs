//! End-to-end: a function whose runtime cannot be provided is refused at
//! CreateFunction, not at its first invocation.
//!
//! Strato installs a missing Node.js from the npm registry on first use, so
//! this test makes that registry unreachable (for its own process only: it is
//! the one test in this binary).

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::Runtime;
use harness::*;
use serde_json::json;

/// The major version of the host's `node`, which serves nodejs*.x.
fn host_node_major() -> u32 {
    let out = std::process::Command::new("/usr/bin/node")
        .arg("--version")
        .output()
        .expect("node --version");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("node major version")
}

#[tokio::test]
async fn runtime_that_cannot_be_provided_fails_at_create_function() {
    // Before any thread of the server exists; nothing else in this binary.
    std::env::set_var("npm_config_registry", "http://127.0.0.1:9/");
    std::env::set_var("npm_config_fetch_retries", "0");
    std::env::set_var("npm_config_fetch_timeout", "5000");
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("fail-node22");
    let created = engine
        .client
        .create_function()
        .function_name(&name)
        .runtime(Runtime::Nodejs22x)
        .role(ROLE)
        .handler("index.handler")
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(Blob::new(zip_of(&[(
                    "index.js",
                    b"exports.handler = async () => 1;",
                )])))
                .build(),
        )
        .send()
        .await;
    if host_node_major() >= 22 {
        // This host has it: then it is created and runs.
        created.expect("nodejs22.x is available here");
        wait_active(&engine.client, &name).await;
        let inv = invoke(&engine.client, &name, json!({})).await;
        assert_eq!(inv.ok(), json!(1));
    } else {
        let err = created.expect_err("no Node.js 22 on this host");
        let raw = err.raw_response().expect("a response");
        assert_eq!(raw.status().as_u16(), 400, "{err:?}");
        assert_eq!(
            err.code(),
            Some("InvalidParameterValueException"),
            "{err:?}"
        );
        assert!(
            err.message().unwrap_or_default().contains("nodejs22.x"),
            "the message names the runtime: {err:?}"
        );
        // Nothing was created.
        let missing = engine
            .client
            .get_function()
            .function_name(&name)
            .send()
            .await
            .expect_err("not created");
        assert_eq!(missing.code(), Some("ResourceNotFoundException"));
    }
    engine.stop().await;
}
