//! Conformance: functions that bring AWS's own runtime interface client as
//! their custom runtime run unchanged (proof that Strato's Runtime API is the
//! real one), and the managed runtimes carry the AWS SDKs, with credentials
//! and an endpoint that make the SDK inside a function talk to Strato.

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_lambda::types::Runtime;
use harness::*;
use serde_json::json;

/// A server whose runtimes directory, the shared one, carries the AWS SDKs
/// (installing them is slow: once per build directory).
async fn server_with_sdks() -> TestServer {
    strato_engine::provide_sdks(shared_runtimes_dir())
        .await
        .expect("AWS SDKs install");
    TestServer::start().await
}

/// Every file under `root`, as zip entries relative to it.
fn files_under(root: &Path) -> Vec<(String, Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                let mode = entry.metadata().expect("metadata").permissions().mode();
                let name = path
                    .strip_prefix(root)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned();
                out.push((name, std::fs::read(&path).expect("read"), mode & 0o777));
            }
        }
    }
    out
}

fn zip_entries(entries: &[(String, Vec<u8>, u32)]) -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, data, mode) in entries {
            let options = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
            w.start_file(name.as_str(), options).expect("start file");
            w.write_all(data).expect("write");
        }
        w.finish().expect("finish");
    }
    buf.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awslambdaric_as_a_custom_runtime_runs_a_python_handler() {
    if !strong_mode_available() {
        eprintln!("skipped: needs root for strong isolation");
        return;
    }
    // The package a user would deploy: awslambdaric installed next to the
    // handler, and a bootstrap that starts it (the documented recipe for
    // provided runtimes).
    let package = tempfile::tempdir().expect("tempdir");
    let status = Command::new("python3.11")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(package.path())
        .arg("awslambdaric")
        .status()
        .expect("pip runs");
    assert!(status.success(), "pip install awslambdaric failed");
    let mut entries = files_under(package.path());
    entries.push((
        "app.py".into(),
        b"import os\n\ndef handler(event, context):\n    return {'ric': 'awslambdaric', 'echo': event, 'request_id': context.aws_request_id, 'function': context.function_name}\n".to_vec(),
        0o644,
    ));
    entries.push((
        "bootstrap".into(),
        b"#!/bin/sh\ncd \"$LAMBDA_TASK_ROOT\"\nexec /usr/bin/python3.11 -m awslambdaric \"$_HANDLER\"\n".to_vec(),
        0o755,
    ));
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("ric-py");
    deploy(
        &engine.client,
        &name,
        FunctionSpec::new(
            Runtime::Providedal2023,
            "app.handler",
            zip_entries(&entries),
        ),
    )
    .await;
    let first = invoke(&engine.client, &name, json!({"n": 1})).await;
    let body = first.ok();
    assert_eq!(body["ric"], "awslambdaric");
    assert_eq!(body["echo"], json!({"n": 1}));
    assert_eq!(body["function"], name.as_str());
    let report = first.report();
    assert!(
        report.contains_key("Init Duration"),
        "cold start reports init: {report:?}"
    );
    // Warm: the same instance answers again.
    let second = invoke(&engine.client, &name, json!({"n": 2})).await;
    assert_eq!(second.ok()["echo"], json!({"n": 2}));
    assert!(!second.report().contains_key("Init Duration"));
    engine.stop().await;
}

/// `aws-lambda-ric` (npm) with its native addon, built once per build
/// directory (it compiles C++ with cmake; minutes, not seconds).
fn aws_lambda_ric_package() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("aws-lambda-ric");
    let ric = dir.join("node_modules/aws-lambda-ric");
    if !ric.join("dist/index.mjs").is_file() {
        std::fs::create_dir_all(&dir).expect("package dir");
        let out = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "aws-lambda-ric@3",
            ])
            .current_dir(&dir)
            .output()
            .expect("npm runs");
        assert!(
            out.status.success(),
            "npm install aws-lambda-ric failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ric
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_lambda_ric_as_a_custom_runtime_runs_a_node_handler() {
    if !strong_mode_available() {
        eprintln!("skipped: needs root for strong isolation");
        return;
    }
    let ric = aws_lambda_ric_package();
    // Only what the client needs at run time: its package, loader and the
    // compiled addon.
    let mut entries: Vec<(String, Vec<u8>, u32)> = Vec::new();
    for sub in ["bin", "dist"] {
        for (name, data, mode) in files_under(&ric.join(sub)) {
            entries.push((
                format!("node_modules/aws-lambda-ric/{sub}/{name}"),
                data,
                mode,
            ));
        }
    }
    entries.push((
        "node_modules/aws-lambda-ric/package.json".into(),
        std::fs::read(ric.join("package.json")).expect("package.json"),
        0o644,
    ));
    entries.push((
        "index.mjs".into(),
        b"let calls = 0;\nexport const handler = async (event, context) => ({ ric: 'aws-lambda-ric', echo: event, calls: ++calls, function: context.functionName });\n".to_vec(),
        0o644,
    ));
    entries.push((
        "bootstrap".into(),
        b"#!/bin/sh\ncd \"$LAMBDA_TASK_ROOT\"\nexec node node_modules/aws-lambda-ric/bin/index.mjs \"$_HANDLER\"\n".to_vec(),
        0o755,
    ));
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("ric-node");
    deploy(
        &engine.client,
        &name,
        FunctionSpec::new(
            Runtime::Providedal2023,
            "index.handler",
            zip_entries(&entries),
        ),
    )
    .await;
    let first = invoke(&engine.client, &name, json!({"n": 1})).await;
    let body = first.ok();
    assert_eq!(body["ric"], "aws-lambda-ric");
    assert_eq!(body["echo"], json!({"n": 1}));
    assert_eq!(body["function"], name.as_str());
    assert!(first.report().contains_key("Init Duration"));
    let second = invoke(&engine.client, &name, json!({"n": 2})).await.ok();
    assert_eq!(
        second["calls"], 2,
        "warm instance keeps its globals: {second}"
    );
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_functions_import_boto3_and_call_strato_with_it() {
    if !strong_mode_available() {
        eprintln!("skipped: needs root for strong isolation");
        return;
    }
    let server = server_with_sdks().await;
    let client = &server.client;
    let name = unique_name("boto3");
    let code = b"import boto3\n\ndef handler(event, context):\n    names = [f['FunctionName'] for f in boto3.client('lambda').list_functions()['Functions']]\n    return {'boto3': boto3.__version__, 'functions': names}\n";
    deploy(
        client,
        &name,
        FunctionSpec::new(
            Runtime::Python311,
            "app.handler",
            zip_of(&[("app.py", code)]),
        ),
    )
    .await;
    let body = invoke(client, &name, json!({})).await.ok();
    assert!(
        body["boto3"].as_str().is_some_and(|v| !v.is_empty()),
        "{body}"
    );
    // The SDK inside the function reached Strato as the function's account.
    assert_eq!(body["functions"], json!([name]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_functions_import_the_aws_sdk_v3_without_bundling_it() {
    if !strong_mode_available() {
        eprintln!("skipped: needs root for strong isolation");
        return;
    }
    let server = server_with_sdks().await;
    let client = &server.client;
    let name = unique_name("sdk-js");
    let code = b"import { LambdaClient, GetFunctionCommand } from '@aws-sdk/client-lambda';\nexport const handler = async () => {\n  const out = await new LambdaClient({}).send(new GetFunctionCommand({ FunctionName: process.env.AWS_LAMBDA_FUNCTION_NAME }));\n  return { name: out.Configuration.FunctionName, runtime: out.Configuration.Runtime };\n};\n";
    deploy(
        client,
        &name,
        FunctionSpec::new(
            Runtime::Nodejs20x,
            "index.handler",
            zip_of(&[("index.mjs", code)]),
        ),
    )
    .await;
    let body = invoke(client, &name, json!({})).await.ok();
    assert_eq!(body, json!({"name": name, "runtime": "nodejs20.x"}));
    server.stop().await;
}
