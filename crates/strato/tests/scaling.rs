//! End-to-end, with the AWS SDK for Rust: provisioned concurrency (its
//! API rules, READY, invocations without a cold start, restarts), stem
//! cells serving cold starts, and idle instances ending after the
//! keep-alive.

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::time::Duration;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::types::{ProvisionedConcurrencyStatusEnum, Runtime};
use harness::*;
use serde_json::json;

const NODE_HANDLER: &str = r#"
const fs = require('fs');
exports.handler = async (event) => ({
  init: process.env.AWS_LAMBDA_INITIALIZATION_TYPE,
  name: process.env.AWS_LAMBDA_FUNCTION_NAME,
  version: process.env.AWS_LAMBDA_FUNCTION_VERSION,
  memory: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
  tag: process.env.TAG ?? null,
  stem: process.env.STRATO_STEM_CELL ?? null,
  files: fs.readdirSync('/var/task').sort(),
  tmpBytes: fs.statfsSync('/tmp').blocks * fs.statfsSync('/tmp').bsize,
});
"#;

const PYTHON_HANDLER: &str = r#"
import os
def handler(event, context):
    st = os.statvfs("/tmp")
    return {
        "name": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        "tag": os.environ.get("TAG"),
        "stem": os.environ.get("STRATO_STEM_CELL"),
        "files": sorted(os.listdir("/var/task")),
        "cwd": os.getcwd(),
        "tmpBytes": st.f_blocks * st.f_frsize,
    }
"#;

fn node_zip(extra: &str) -> Vec<u8> {
    zip_of(&[("index.js", NODE_HANDLER.as_bytes()), (extra, b"marker")])
}

async fn deploy_node(engine: &TestServer, name: &str) {
    deploy(
        &engine.client,
        name,
        FunctionSpec::new(Runtime::Nodejs20x, "index.handler", node_zip("a.txt")).memory(128),
    )
    .await;
}

async fn publish(engine: &TestServer, name: &str) -> String {
    publish_version(&engine.client, name)
        .await
        .version()
        .expect("version")
        .to_string()
}

async fn put_provisioned(
    engine: &TestServer,
    name: &str,
    qualifier: &str,
    n: i32,
) -> Result<ProvisionedConcurrencyStatusEnum, (String, String)> {
    engine
        .client
        .put_provisioned_concurrency_config()
        .function_name(name)
        .qualifier(qualifier)
        .provisioned_concurrent_executions(n)
        .send()
        .await
        .map(|out| out.status().cloned().expect("Status"))
        .map_err(|e| {
            (
                e.code().unwrap_or_default().to_string(),
                e.message().unwrap_or_default().to_string(),
            )
        })
}

/// Polls GetProvisionedConcurrencyConfig until READY; returns the
/// (requested, available, allocated) counts.
async fn until_ready(engine: &TestServer, name: &str, qualifier: &str) -> (i32, i32, i32) {
    poll(Duration::from_secs(90), || async {
        let out = engine
            .client
            .get_provisioned_concurrency_config()
            .function_name(name)
            .qualifier(qualifier)
            .send()
            .await
            .expect("get provisioned config");
        assert_ne!(
            out.status(),
            Some(&ProvisionedConcurrencyStatusEnum::Failed),
            "{:?}",
            out.status_reason()
        );
        (out.status() == Some(&ProvisionedConcurrencyStatusEnum::Ready)).then(|| {
            (
                out.requested_provisioned_concurrent_executions()
                    .unwrap_or(-1),
                out.available_provisioned_concurrent_executions()
                    .unwrap_or(-1),
                out.allocated_provisioned_concurrent_executions()
                    .unwrap_or(-1),
            )
        })
    })
    .await
    .unwrap_or_else(|| panic!("{name}:{qualifier} never became READY"))
}

fn failure<T: std::fmt::Debug>(result: Result<T, (String, String)>) -> (String, String) {
    result.expect_err("the call must fail")
}

#[tokio::test]
async fn provisioned_concurrency_reaches_ready_and_serves_without_a_cold_start() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("prov");
    deploy_node(&engine, &name).await;
    let version = publish(&engine, &name).await;
    let status = put_provisioned(&engine, &name, &version, 2)
        .await
        .expect("put provisioned");
    assert_eq!(status, ProvisionedConcurrencyStatusEnum::InProgress);
    assert_eq!(until_ready(&engine, &name, &version).await, (2, 2, 2));
    assert_eq!(engine.server().engine.idle_instances(), 2);

    let qualified = format!("{name}:{version}");
    let first = invoke(&engine.client, &qualified, json!({})).await;
    let body = first.ok();
    assert_eq!(body["init"], "provisioned-concurrency", "{first}");
    assert!(
        !first.report().contains_key("Init Duration"),
        "a provisioned instance reports no init: {first}"
    );
    // Unqualified calls run $LATEST, which has no provisioned instances.
    let latest = invoke(&engine.client, &name, json!({})).await;
    assert_eq!(latest.ok()["init"], "on-demand");
    assert!(latest.report().contains_key("Init Duration"), "{latest}");

    // The account's unreserved pool shrank by the allocation.
    let settings = engine
        .client
        .get_account_settings()
        .send()
        .await
        .expect("settings");
    let limit = settings.account_limit().expect("AccountLimit");
    assert_eq!(limit.unreserved_concurrent_executions(), Some(998));

    engine
        .client
        .delete_provisioned_concurrency_config()
        .function_name(&name)
        .qualifier(&version)
        .send()
        .await
        .expect("delete provisioned");
    let gone = engine
        .client
        .get_provisioned_concurrency_config()
        .function_name(&name)
        .qualifier(&version)
        .send()
        .await
        .expect_err("config deleted");
    assert_eq!(
        gone.code(),
        Some("ProvisionedConcurrencyConfigNotFoundException")
    );
    assert_eq!(
        gone.message(),
        Some("No Provisioned Concurrency Config found for this function")
    );
    engine.stop().await;
}

#[tokio::test]
async fn provisioned_concurrency_follows_aws_rules() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("provrules");
    deploy_node(&engine, &name).await;
    let version = publish(&engine, &name).await;

    let (code, message) = failure(put_provisioned(&engine, &name, "$LATEST", 1).await);
    assert_eq!(code, "InvalidParameterValueException");
    assert_eq!(
        message,
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    );
    let (code, message) = failure(put_provisioned(&engine, &name, &version, 0).await);
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "1 validation error detected: Value '0' at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 1"
    );
    let (code, _) = failure(put_provisioned(&engine, &name, "99", 1).await);
    assert_eq!(code, "ResourceNotFoundException");
    // The account keeps 100 unreserved: at most 900 of 1000.
    let (code, message) = failure(put_provisioned(&engine, &name, &version, 901).await);
    assert_eq!(code, "InvalidParameterValueException");
    assert_eq!(
        message,
        "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100]."
    );
    let (code, message) = failure(put_provisioned(&engine, &name, &version, 1001).await);
    assert_eq!(code, "InvalidParameterValueException");
    assert_eq!(
        message,
        "Specified ConcurrentExecutions for function is greater than account's unreserved concurrency [1000]."
    );
    let (code, _) = failure(put_provisioned(&engine, &name, &version, i32::MAX).await);
    assert_eq!(code, "InvalidParameterValueException");

    // With reserved concurrency, provisioned concurrency fits inside it.
    engine
        .client
        .put_function_concurrency()
        .function_name(&name)
        .reserved_concurrent_executions(2)
        .send()
        .await
        .expect("reserve");
    let (code, message) = failure(put_provisioned(&engine, &name, &version, 3).await);
    assert_eq!(code, "InvalidParameterValueException");
    assert_eq!(
        message,
        "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function"
    );
    put_provisioned(&engine, &name, &version, 2)
        .await
        .expect("within the reservation");
    let lower = engine
        .client
        .put_function_concurrency()
        .function_name(&name)
        .reserved_concurrent_executions(1)
        .send()
        .await
        .expect_err("below the provisioned total");
    assert_eq!(lower.code(), Some("InvalidParameterValueException"));
    assert_eq!(
        lower.message(),
        Some("ReservedConcurrentExecutions  1 should not be lower than function's total provisioned concurrency [2].")
    );

    // An alias and the version it points to are not both provisioned.
    engine
        .client
        .create_alias()
        .function_name(&name)
        .name("live")
        .function_version(&version)
        .send()
        .await
        .expect("alias");
    let (code, message) = failure(put_provisioned(&engine, &name, "live", 1).await);
    assert_eq!(code, "ResourceConflictException");
    assert_eq!(
        message,
        "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version"
    );
    engine
        .client
        .delete_provisioned_concurrency_config()
        .function_name(&name)
        .qualifier(&version)
        .send()
        .await
        .expect("delete");
    put_provisioned(&engine, &name, "live", 1)
        .await
        .expect("alias config");
    let (code, message) = failure(put_provisioned(&engine, &name, &version, 1).await);
    assert_eq!(code, "ResourceConflictException");
    assert_eq!(
        message,
        "Version is pointed by a Provisioned Concurrency alias"
    );

    let listed = engine
        .client
        .list_provisioned_concurrency_configs()
        .function_name(&name)
        .send()
        .await
        .expect("list");
    let configs = listed.provisioned_concurrency_configs();
    assert_eq!(configs.len(), 1);
    assert_eq!(
        configs[0].function_arn(),
        Some(format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}:live").as_str())
    );
    assert_eq!(
        configs[0].requested_provisioned_concurrent_executions(),
        Some(1)
    );

    // Deleting the alias deletes its configuration.
    engine
        .client
        .delete_alias()
        .function_name(&name)
        .name("live")
        .send()
        .await
        .expect("delete alias");
    let listed = engine
        .client
        .list_provisioned_concurrency_configs()
        .function_name(&name)
        .send()
        .await
        .expect("list");
    assert!(listed.provisioned_concurrency_configs().is_empty());
    engine.stop().await;
}

#[tokio::test]
async fn provisioned_instances_of_an_alias_are_used_first_and_replaced_when_they_end() {
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("provalias");
    deploy_node(&engine, &name).await;
    let version = publish(&engine, &name).await;
    engine
        .client
        .create_alias()
        .function_name(&name)
        .name("prod")
        .function_version(&version)
        .send()
        .await
        .expect("alias");
    put_provisioned(&engine, &name, "prod", 1)
        .await
        .expect("provision alias");
    until_ready(&engine, &name, "prod").await;
    let alias = format!("{name}:prod");
    let inv = invoke(&engine.client, &alias, json!({})).await;
    assert_eq!(inv.ok()["init"], "provisioned-concurrency", "{inv}");
    assert_eq!(inv.executed_version.as_deref(), Some(version.as_str()));

    // Ending every instance (as a crash would) makes the engine start a
    // replacement: the configuration stays READY and has one available
    // again.
    engine
        .server()
        .engine
        .retire_version(ACCOUNT, "us-east-1", &name, &version);
    let replaced = poll(Duration::from_secs(90), || async {
        (until_ready(&engine, &name, "prod").await == (1, 1, 1)).then_some(())
    })
    .await;
    assert!(replaced.is_some(), "the ended instance was replaced");
    let again = invoke(&engine.client, &alias, json!({})).await;
    assert_eq!(again.ok()["init"], "provisioned-concurrency", "{again}");
    engine.stop().await;
}

#[tokio::test]
async fn provisioned_concurrency_survives_a_restart() {
    let mut engine = TestServer::start_own_runtimes().await;
    let name = unique_name("provrestart");
    deploy(
        &engine.client,
        &name,
        FunctionSpec::new(Runtime::Nodejs20x, "index.handler", node_zip("a.txt")).memory(128),
    )
    .await;
    let version = publish_version(&engine.client, &name)
        .await
        .version()
        .expect("version")
        .to_string();
    engine
        .client
        .put_provisioned_concurrency_config()
        .function_name(&name)
        .qualifier(&version)
        .provisioned_concurrent_executions(1)
        .send()
        .await
        .expect("provision");
    engine.restart().await;
    let client = &engine.client;
    let ready = poll(Duration::from_secs(90), || async {
        let out = client
            .get_provisioned_concurrency_config()
            .function_name(&name)
            .qualifier(&version)
            .send()
            .await
            .expect("get");
        (out.status() == Some(&ProvisionedConcurrencyStatusEnum::Ready)).then_some(())
    })
    .await;
    assert!(ready.is_some(), "READY again after the restart");
    let inv = invoke(client, &format!("{name}:{version}"), json!({})).await;
    assert_eq!(inv.ok()["init"], "provisioned-concurrency", "{inv}");
    engine.stop().await;
}

/// Waits until the engine holds `n` stem cells.
async fn until_stem_cells(engine: &TestServer, n: usize) {
    poll(Duration::from_secs(60), || async {
        (engine.server().engine.stem_cells() >= n).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{n} stem cells never became ready"));
}

#[tokio::test]
async fn stem_cells_serve_cold_starts_with_the_functions_own_code_environment_and_limits() {
    if !strong_mode_available() {
        eprintln!("skipped: stem cells need the strong sandbox (root)");
        return;
    }
    let engine = TestServer::start_own_runtimes().await;
    let strato = &engine.server().engine;
    // The first cold start of a runtime starts its pool.
    let first = unique_name("stemnode");
    deploy_node(&engine, &first).await;
    invoke(&engine.client, &first, json!({})).await.ok();
    assert_eq!(strato.stem_adoptions(), 0);
    until_stem_cells(&engine, 2).await;

    let mut seen = Vec::new();
    for (i, storage) in [(1, 512), (2, 1024)] {
        let name = unique_name("stemnode");
        let file = format!("only-in-{i}.txt");
        engine
            .client
            .create_function()
            .function_name(&name)
            .runtime(Runtime::Nodejs20x)
            .role(ROLE)
            .handler("index.handler")
            .memory_size(256)
            .ephemeral_storage(
                aws_sdk_lambda::types::EphemeralStorage::builder()
                    .size(storage)
                    .build()
                    .expect("storage"),
            )
            .environment(
                aws_sdk_lambda::types::Environment::builder()
                    .variables("TAG", format!("tag-{i}"))
                    .build(),
            )
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(aws_sdk_lambda::primitives::Blob::new(node_zip(&file)))
                    .build(),
            )
            .send()
            .await
            .expect("create");
        wait_active(&engine.client, &name).await;
        let adoptions = strato.stem_adoptions();
        let inv = invoke(&engine.client, &name, json!({})).await;
        let body = inv.ok();
        assert_eq!(strato.stem_adoptions(), adoptions + 1, "a stem cell ran it");
        assert_eq!(body["name"], name.as_str());
        assert_eq!(body["tag"], format!("tag-{i}"));
        assert_eq!(body["memory"], "256");
        assert_eq!(body["stem"], serde_json::Value::Null, "the marker is gone");
        assert_eq!(body["files"], json!(["index.js", file]));
        assert_eq!(
            body["tmpBytes"],
            json!(u64::try_from(storage).unwrap() * 1024 * 1024)
        );
        assert!(inv.report().contains_key("Init Duration"), "{inv}");
        seen.push(body);
    }

    // Python, and an OS-only runtime (Go through aws-lambda-go).
    let py_first = unique_name("stempy");
    let py_zip = zip_of(&[("app.py", PYTHON_HANDLER.as_bytes())]);
    deploy(
        &engine.client,
        &py_first,
        FunctionSpec::new(Runtime::Python312, "app.handler", py_zip.clone()).memory(128),
    )
    .await;
    invoke(&engine.client, &py_first, json!({})).await.ok();
    until_stem_cells(&engine, 4).await;
    let py = unique_name("stempy");
    deploy(
        &engine.client,
        &py,
        FunctionSpec::new(Runtime::Python312, "app.handler", py_zip)
            .memory(128)
            .env("TAG", "python"),
    )
    .await;
    let adoptions = strato.stem_adoptions();
    let body = invoke(&engine.client, &py, json!({})).await.ok();
    assert_eq!(strato.stem_adoptions(), adoptions + 1);
    assert_eq!(body["name"], py.as_str());
    assert_eq!(body["tag"], "python");
    assert_eq!(body["stem"], serde_json::Value::Null);
    assert_eq!(body["files"], json!(["app.py"]));
    assert_eq!(body["cwd"], "/var/task");

    let go_first = unique_name("stemgo");
    let go_zip = go_function_zip();
    deploy(
        &engine.client,
        &go_first,
        FunctionSpec::new(Runtime::Providedal2023, "bootstrap", go_zip.clone()).memory(128),
    )
    .await;
    invoke(&engine.client, &go_first, json!({"action": "hello"}))
        .await
        .ok();
    until_stem_cells(&engine, 6).await;
    let go = unique_name("stemgo");
    deploy(
        &engine.client,
        &go,
        FunctionSpec::new(Runtime::Providedal2023, "bootstrap", go_zip)
            .memory(128)
            .env("TAG", "go"),
    )
    .await;
    let adoptions = strato.stem_adoptions();
    let inv = invoke(
        &engine.client,
        &go,
        json!({"action": "env", "names": ["TAG", "AWS_LAMBDA_FUNCTION_NAME", "STRATO_STEM_CELL"]}),
    )
    .await;
    let body = inv.ok();
    assert_eq!(strato.stem_adoptions(), adoptions + 1, "{inv}");
    assert_eq!(
        body,
        json!({"TAG": "go", "AWS_LAMBDA_FUNCTION_NAME": go, "STRATO_STEM_CELL": null})
    );
    assert_eq!(seen.len(), 2);
    engine.stop().await;
}

#[tokio::test]
async fn a_function_that_sets_start_time_variables_gets_a_fresh_process() {
    if !strong_mode_available() {
        eprintln!("skipped: stem cells need the strong sandbox (root)");
        return;
    }
    let engine = TestServer::start_own_runtimes().await;
    let strato = &engine.server().engine;
    let first = unique_name("stemopts");
    deploy_node(&engine, &first).await;
    invoke(&engine.client, &first, json!({})).await.ok();
    until_stem_cells(&engine, 2).await;
    let name = unique_name("stemopts");
    deploy(
        &engine.client,
        &name,
        FunctionSpec::new(Runtime::Nodejs20x, "index.handler", node_zip("a.txt"))
            .memory(128)
            .env("NODE_OPTIONS", "--max-old-space-size=100"),
    )
    .await;
    let adoptions = strato.stem_adoptions();
    invoke(&engine.client, &name, json!({})).await.ok();
    assert_eq!(
        strato.stem_adoptions(),
        adoptions,
        "NODE_OPTIONS acts at process start"
    );
    engine.stop().await;
}

#[tokio::test]
async fn idle_instances_end_after_the_keep_alive() {
    let engine = TestServer::start_with(Runtimes::Own, |config| {
        config.keep_alive = Duration::from_millis(500);
        config.stem_cells = 0;
    })
    .await;
    let name = unique_name("keepalive");
    deploy_node(&engine, &name).await;
    let cold = invoke(&engine.client, &name, json!({})).await;
    assert!(cold.report().contains_key("Init Duration"), "{cold}");
    let strato = &engine.server().engine;
    assert_eq!(strato.idle_instances(), 1);
    let ended = poll(Duration::from_secs(30), || async {
        (strato.idle_instances() == 0 && strato.live_instances() == 0).then_some(())
    })
    .await;
    assert!(ended.is_some(), "the idle instance ended (scaled to zero)");
    // The next invocation starts a new instance.
    let again = invoke(&engine.client, &name, json!({})).await;
    assert!(again.report().contains_key("Init Duration"), "{again}");
    engine.stop().await;
}

/// An ES module handler whose bare import resolves only through
/// `NODE_PATH` (a package in a layer, under /opt/nodejs/node_modules): a
/// stem cell registered Node's resolution hook before it knew the function.
#[tokio::test]
async fn stem_cells_resolve_es_module_imports_from_layers() {
    if !strong_mode_available() {
        eprintln!("skipped: stem cells need the strong sandbox (root)");
        return;
    }
    let engine = TestServer::start_own_runtimes().await;
    let strato = &engine.server().engine;
    let layer = zip_of(&[
        (
            "nodejs/node_modules/greet/package.json",
            br#"{"name":"greet","main":"index.js"}"#,
        ),
        (
            "nodejs/node_modules/greet/index.js",
            b"module.exports = (who) => `hello ${who} from a layer`;",
        ),
    ]);
    let published = engine
        .client
        .publish_layer_version()
        .layer_name("greet")
        .content(
            aws_sdk_lambda::types::LayerVersionContentInput::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(layer))
                .build(),
        )
        .send()
        .await
        .expect("publish layer");
    let layer_arn = published
        .layer_version_arn()
        .expect("layer version arn")
        .to_string();
    let handler = zip_of(&[(
        "index.mjs",
        b"import greet from 'greet';\nexport const handler = async () => greet(process.env.AWS_LAMBDA_FUNCTION_NAME);",
    )]);
    let mut names = Vec::new();
    for _ in 0..2 {
        let name = unique_name("stemesm");
        engine
            .client
            .create_function()
            .function_name(&name)
            .runtime(Runtime::Nodejs20x)
            .role(ROLE)
            .handler("index.handler")
            .memory_size(128)
            .layers(&layer_arn)
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(aws_sdk_lambda::primitives::Blob::new(handler.clone()))
                    .build(),
            )
            .send()
            .await
            .expect("create");
        wait_active(&engine.client, &name).await;
        names.push(name);
    }
    let first = invoke(&engine.client, &names[0], json!({})).await;
    assert_eq!(
        first.ok(),
        json!(format!("hello {} from a layer", names[0]))
    );
    until_stem_cells(&engine, 2).await;
    let adoptions = strato.stem_adoptions();
    let second = invoke(&engine.client, &names[1], json!({})).await;
    assert_eq!(
        second.ok(),
        json!(format!("hello {} from a layer", names[1])),
        "{second}"
    );
    assert_eq!(strato.stem_adoptions(), adoptions + 1);
    engine.stop().await;
}

#[tokio::test]
async fn unused_stem_cells_end_after_the_keep_alive() {
    if !strong_mode_available() {
        eprintln!("skipped: stem cells need the strong sandbox (root)");
        return;
    }
    let engine = TestServer::start_with(Runtimes::Own, |config| {
        config.keep_alive = Duration::from_secs(2);
    })
    .await;
    let name = unique_name("stemidle");
    deploy_node(&engine, &name).await;
    invoke(&engine.client, &name, json!({})).await.ok();
    until_stem_cells(&engine, 2).await;
    let strato = &engine.server().engine;
    // Every sandbox, instance or stem cell, ends and is cleaned up.
    let gone = poll(Duration::from_secs(60), || async {
        (strato.stem_cells() == 0 && strato.sandboxes() == 0).then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "instances and stem cells scale to zero ({} stem cells, {} sandboxes)",
        strato.stem_cells(),
        strato.sandboxes()
    );
    engine.stop().await;
}
