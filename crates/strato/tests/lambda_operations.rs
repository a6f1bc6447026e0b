//! The Lambda operations beyond functions, versions and invocations, with
//! the AWS SDK for Rust: code signing configurations (and their enforcement
//! on code deployments) and recursive loop detection through the trace
//! header the SDK inside a function forwards.

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::collections::HashMap;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    AllowedPublishers, CodeSigningPolicies, CodeSigningPolicy, DestinationConfig, OnFailure,
    RecursiveLoop, Runtime,
};
use aws_sdk_lambda::Client;
use harness::*;
use serde_json::json;

const SIGNING_PROFILE: &str = "arn:aws:signer:us-east-1:000000000000:/signing-profiles/strato";

fn policies(policy: CodeSigningPolicy) -> CodeSigningPolicies {
    CodeSigningPolicies::builder()
        .untrusted_artifact_on_deployment(policy)
        .build()
}

async fn create_csc(client: &Client, policy: CodeSigningPolicy) -> String {
    let out = client
        .create_code_signing_config()
        .description("signed releases only")
        .allowed_publishers(
            AllowedPublishers::builder()
                .signing_profile_version_arns(SIGNING_PROFILE)
                .build()
                .unwrap(),
        )
        .code_signing_policies(policies(policy))
        .send()
        .await
        .expect("create code signing config");
    let config = out.code_signing_config().expect("CodeSigningConfig");
    config.code_signing_config_arn().to_string()
}

async fn set_policy(client: &Client, arn: &str, policy: CodeSigningPolicy) {
    client
        .update_code_signing_config()
        .code_signing_config_arn(arn)
        .code_signing_policies(policies(policy))
        .send()
        .await
        .expect("update code signing config");
}

fn verification_failed(function: &str) -> String {
    format!(
        "Lambda cannot deploy the function. The function or layer might be signed using a signature that the client is not configured to accept. Check the provided signature for {function}."
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_signing_configs_are_kept_and_enforced_on_deployments() {
    let server = TestServer::start().await;
    let client = &server.client;

    let arn = create_csc(client, CodeSigningPolicy::Enforce).await;
    let id = arn.rsplit(':').next().unwrap().to_string();
    assert_eq!(
        arn,
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:{id}")
    );
    assert!(id.len() == 21 && id.starts_with("csc-"), "{id}");
    let got = client
        .get_code_signing_config()
        .code_signing_config_arn(&arn)
        .send()
        .await
        .expect("get");
    let config = got.code_signing_config().unwrap();
    assert_eq!(config.code_signing_config_id(), id);
    assert_eq!(config.description(), Some("signed releases only"));
    assert_eq!(
        config
            .allowed_publishers()
            .unwrap()
            .signing_profile_version_arns(),
        [SIGNING_PROFILE]
    );
    assert_eq!(
        config
            .code_signing_policies()
            .and_then(|p| p.untrusted_artifact_on_deployment()),
        Some(&CodeSigningPolicy::Enforce)
    );
    let listed = client.list_code_signing_configs().send().await.unwrap();
    assert_eq!(listed.code_signing_configs().len(), 1);

    // Enforce: Strato verifies no signature, so unsigned code is refused.
    let name = unique_name("signed");
    let refused = create_builder(client, &name, handler_zip("v1"))
        .code_signing_config_arn(&arn)
        .send()
        .await;
    failure(refused).assert(
        400,
        "CodeVerificationFailedException",
        &verification_failed(&name),
    );

    // Warn: accepted, and the function is bound to the configuration.
    set_policy(client, &arn, CodeSigningPolicy::Warn).await;
    create_builder(client, &name, handler_zip("v1"))
        .code_signing_config_arn(&arn)
        .send()
        .await
        .expect("Warn deploys unsigned code");
    wait_active(client, &name).await;
    let bound = client
        .get_function_code_signing_config()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(bound.code_signing_config_arn(), arn);
    assert_eq!(bound.function_name(), name);
    let users = client
        .list_functions_by_code_signing_config()
        .code_signing_config_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(users.function_arns(), [function_arn(ACCOUNT, &name)]);

    // In use: it cannot be deleted.
    let in_use = client
        .delete_code_signing_config()
        .code_signing_config_arn(&arn)
        .send()
        .await;
    failure(in_use).assert_code(409, "ResourceConflictException");

    // Enforce again: the next code update is refused, until the function
    // leaves the configuration.
    set_policy(client, &arn, CodeSigningPolicy::Enforce).await;
    let update = update_code(client, &name)
        .zip_file(Blob::new(handler_zip("v2")))
        .send()
        .await;
    failure(update).assert(
        400,
        "CodeVerificationFailedException",
        &verification_failed(&name),
    );
    client
        .delete_function_code_signing_config()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    update_code(client, &name)
        .zip_file(Blob::new(handler_zip("v2")))
        .send()
        .await
        .expect("no configuration, no check");

    client
        .delete_code_signing_config()
        .code_signing_config_arn(&arn)
        .send()
        .await
        .expect("delete");
    let gone = client
        .get_code_signing_config()
        .code_signing_config_arn(&arn)
        .send()
        .await;
    failure(gone).assert(
        404,
        "ResourceNotFoundException",
        &format!("The Lambda code signing configuration {arn} can not be found."),
    );
    let missing = client
        .put_function_code_signing_config()
        .function_name(&name)
        .code_signing_config_arn(&arn)
        .send()
        .await;
    failure(missing).assert(
        404,
        "CodeSigningConfigNotFoundException",
        &format!("The code signing configuration cannot be found. Check that the provided configuration is not deleted: {arn}."),
    );
    server.stop().await;
}

/// A function that records its hop in a tag on itself and invokes itself
/// asynchronously (with the bundled boto3, which forwards the trace header)
/// until hop `HOPS`.
const SELF_INVOKER: &[u8] = b"import json, os\nimport boto3\n\ndef handler(event, context):\n    hop = event.get('hop', 1)\n    client = boto3.client('lambda')\n    client.tag_resource(Resource=context.invoked_function_arn, Tags={'hop': str(hop)})\n    if hop < int(os.environ['HOPS']):\n        client.invoke(FunctionName=context.function_name, InvocationType='Event', Payload=json.dumps({'hop': hop + 1}))\n    return hop\n";

/// An on-failure destination that records the hop and condition of the
/// event it was sent in tags on itself.
const DROP_SINK: &[u8] = b"import boto3\n\ndef handler(event, context):\n    boto3.client('lambda').tag_resource(Resource=context.invoked_function_arn, Tags={'dropped': str(event['requestPayload']['hop']), 'condition': event['requestContext']['condition']})\n";

async fn deploy_python(client: &Client, name: &str, code: &[u8], hops: Option<u32>) {
    let mut request = create_request(
        client,
        name,
        Runtime::Python311,
        "app.handler",
        zip_of(&[("app.py", code)]),
    )
    .timeout(30);
    if let Some(hops) = hops {
        request = request.environment(
            aws_sdk_lambda::types::Environment::builder()
                .variables("HOPS", hops.to_string())
                .build(),
        );
    }
    request.send().await.expect("create python function");
    wait_active(client, name).await;
}

async fn tags(client: &Client, name: &str) -> HashMap<String, String> {
    client
        .list_tags()
        .resource(function_arn(ACCOUNT, name))
        .send()
        .await
        .expect("list tags")
        .tags()
        .cloned()
        .unwrap_or_default()
}

async fn server_with_sdks() -> TestServer {
    strato_engine::provide_sdks(shared_runtimes_dir())
        .await
        .expect("AWS SDKs install");
    TestServer::start().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_invoking_itself_is_stopped_after_sixteen_invocations() {
    let server = server_with_sdks().await;
    let client = &server.client;
    let looping = unique_name("loop");
    let sink = unique_name("dropped");
    deploy_python(client, &looping, SELF_INVOKER, Some(30)).await;
    deploy_python(client, &sink, DROP_SINK, None).await;
    let default = client
        .get_function_recursion_config()
        .function_name(&looping)
        .send()
        .await
        .unwrap();
    assert_eq!(default.recursive_loop(), Some(&RecursiveLoop::Terminate));
    client
        .put_function_event_invoke_config()
        .function_name(&looping)
        .maximum_retry_attempts(0)
        .destination_config(
            DestinationConfig::builder()
                .on_failure(
                    OnFailure::builder()
                        .destination(function_arn(ACCOUNT, &sink))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    assert_eq!(invoke_event(client, &looping, json!({"hop": 1})).await, 202);
    let dropped = poll(SETTLE_DEADLINE, || async {
        tags(client, &sink).await.get("dropped").cloned()
    })
    .await
    .expect("the loop's 17th event reaches the on-failure destination");
    assert_eq!(dropped, "17");
    assert_eq!(
        tags(client, &sink)
            .await
            .get("condition")
            .map(String::as_str),
        Some("RecursiveInvocationException")
    );
    assert_eq!(
        tags(client, &looping).await.get("hop").map(String::as_str),
        Some("16")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_lets_a_function_invoke_itself_beyond_sixteen_times() {
    let server = server_with_sdks().await;
    let client = &server.client;
    let looping = unique_name("allowed-loop");
    deploy_python(client, &looping, SELF_INVOKER, Some(20)).await;
    let put = client
        .put_function_recursion_config()
        .function_name(&looping)
        .recursive_loop(RecursiveLoop::Allow)
        .send()
        .await
        .unwrap();
    assert_eq!(put.recursive_loop(), Some(&RecursiveLoop::Allow));

    assert_eq!(invoke_event(client, &looping, json!({"hop": 1})).await, 202);
    let reached = poll(SETTLE_DEADLINE, || async {
        tags(client, &looping)
            .await
            .get("hop")
            .filter(|hop| *hop == "20")
            .cloned()
    })
    .await;
    assert_eq!(reached.as_deref(), Some("20"));
    server.stop().await;
}

/// The same chain refused synchronously: a request whose trace header
/// already counts the function 16 times is AWS's
/// RecursiveInvocationException under Terminate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronous_invoke_deep_in_a_loop_is_refused() {
    let server = TestServer::start().await;
    let client = &server.client;
    let name = unique_name("deep");
    create_function(client, &name, handler_zip("deep")).await;
    wait_active(client, &name).await;
    let mut header = None;
    for _ in 0..16 {
        let hop =
            strato_model::recursion::next_hop(header.as_deref(), &function_arn(ACCOUNT, &name));
        header = Some(hop.trace_header);
    }
    let header = header.unwrap();
    let refused = client
        .invoke()
        .function_name(&name)
        .payload(Blob::new("{}"))
        .customize()
        .mutate_request(move |req| {
            req.headers_mut().insert("X-Amzn-Trace-Id", header.clone());
        })
        .send()
        .await;
    failure(refused).assert_code(400, "RecursiveInvocationException");
    server.stop().await;
}
