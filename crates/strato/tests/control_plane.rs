//! Issue 2, shown with the AWS SDK for Rust: the Lambda control plane of an
//! in-process Strato server, operation by operation, error by error.

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::collections::HashMap;

use aws_sdk_lambda::operation::create_function::builders::CreateFunctionFluentBuilder;
use aws_sdk_lambda::operation::create_function::CreateFunctionError;
use aws_sdk_lambda::operation::get_function::GetFunctionError;
use aws_sdk_lambda::operation::update_function_configuration::builders::UpdateFunctionConfigurationFluentBuilder;
use aws_sdk_lambda::operation::update_function_configuration::UpdateFunctionConfigurationError;
use aws_sdk_lambda::operation::RequestId;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Environment, EphemeralStorage, FunctionCode, LastUpdateStatus, Runtime, State,
};
use base64::Engine;
use harness::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

/// `YYYY-MM-DDTHH:MM:SS.mmm+0000`, as Lambda writes `LastModified`.
fn is_lambda_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b[i].is_ascii_digit());
    b.len() == 28
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && &s[23..] == "+0000"
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn create_body(name: &str, zip: &[u8]) -> Value {
    json!({
        "FunctionName": name,
        "Runtime": RUNTIME.as_str(),
        "Role": ROLE,
        "Handler": "index.handler",
        "Code": {"ZipFile": b64(zip)},
    })
}

async fn revision(h: &TestServer, name: &str) -> String {
    get_configuration(&h.client, name)
        .await
        .revision_id()
        .unwrap()
        .to_string()
}

/// A CreateFunction of a new function, changed by `change`, is refused
/// with 400, `code` and `message`.
async fn create_is_refused(
    h: &TestServer,
    change: impl FnOnce(CreateFunctionFluentBuilder) -> CreateFunctionFluentBuilder,
    code: &str,
    message: &str,
) {
    let request = create_builder(&h.client, &unique_name("refused"), handler_zip("x"));
    failure(change(request).send().await).assert(400, code, message);
}

/// An UpdateFunctionConfiguration of `name`, changed by `change`, is
/// refused with 400, `code` and `message`.
async fn update_is_refused(
    h: &TestServer,
    name: &str,
    change: impl FnOnce(
        UpdateFunctionConfigurationFluentBuilder,
    ) -> UpdateFunctionConfigurationFluentBuilder,
    code: &str,
    message: &str,
) {
    let request = update_configuration(&h.client, name);
    failure(change(request).send().await).assert(400, code, message);
}

// ---------------------------------------------------------------- CreateFunction

#[tokio::test]
async fn create_function_answers_201_pending_then_becomes_active() {
    let h = TestServer::start().await;
    let name = unique_name("create-201");
    let zip = handler_zip(&name);
    let body = create_body(&name, &zip).to_string();
    let raw = h
        .raw("POST", "/2015-03-31/functions", body.as_bytes())
        .await;
    assert_eq!(raw.status, 201, "{raw:?}");
    assert_eq!(raw.body["State"], "Pending");
    assert_eq!(raw.body["StateReasonCode"], "Creating");
    assert!(raw.body.get("LastUpdateStatus").is_none(), "{raw:?}");

    wait_active(&h.client, &name).await;
    let config = get_configuration(&h.client, &name).await;
    assert_eq!(config.state(), Some(&State::Active));
    assert_eq!(
        config.last_update_status(),
        Some(&LastUpdateStatus::Successful)
    );
}

#[tokio::test]
async fn create_function_reports_code_sha256_and_code_size() {
    let h = TestServer::start().await;
    let name = unique_name("sha");
    let zip = handler_zip(&name);
    let out = create_builder(&h.client, &name, zip.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(out.code_sha256(), Some(sha256_base64(&zip).as_str()));
    assert_eq!(out.code_size(), i64::try_from(zip.len()).unwrap());
}

#[tokio::test]
async fn create_function_reports_arn_timestamp_and_aws_defaults() {
    let h = TestServer::start().await;
    let name = unique_name("defaults");
    let out = create_builder(&h.client, &name, handler_zip(&name))
        .send()
        .await
        .unwrap();
    assert_eq!(out.function_name(), Some(name.as_str()));
    assert_eq!(
        out.function_arn(),
        Some(function_arn(ACCOUNT, &name).as_str())
    );
    let modified = out.last_modified().unwrap();
    assert!(is_lambda_timestamp(modified), "LastModified {modified}");
    assert_eq!(out.version(), Some("$LATEST"));
    assert_eq!(out.runtime(), Some(&RUNTIME));
    assert_eq!(out.handler(), Some("index.handler"));
    assert_eq!(out.role(), Some(ROLE));
    assert_eq!(out.memory_size(), Some(128));
    assert_eq!(out.timeout(), Some(3));
    assert_eq!(out.ephemeral_storage().map(|e| e.size()), Some(512));
    assert_eq!(out.description(), Some(""));
    assert!(!out.revision_id().unwrap_or_default().is_empty());
}

#[tokio::test]
async fn create_function_with_existing_name_is_a_conflict() {
    let h = TestServer::start().await;
    let name = unique_name("dup");
    create_function(&h.client, &name, handler_zip(&name)).await;
    let result = create_builder(&h.client, &name, handler_zip("other"))
        .send()
        .await;
    let err = result.as_ref().unwrap_err().as_service_error().unwrap();
    assert!(matches!(
        err,
        CreateFunctionError::ResourceConflictException(_)
    ));
    failure(result).assert(
        409,
        "ResourceConflictException",
        &format!("Function already exist: {name}"),
    );
}

// ---------------------------------------------------------------- GetFunction

#[tokio::test]
async fn get_function_code_location_downloads_the_exact_zip() {
    let h = TestServer::start().await;
    let name = unique_name("download");
    let zip = handler_zip(&name);
    create_function(&h.client, &name, zip.clone()).await;
    let out = get_function(&h.client, &name).await;
    let code = out.code().unwrap();
    assert_eq!(code.repository_type(), Some("S3"));
    let location = code.location().unwrap();
    let response = reqwest::get(location).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let downloaded = response.bytes().await.unwrap();
    assert_eq!(downloaded.as_ref(), zip.as_slice());
    assert_eq!(
        Some(sha256_base64(&downloaded).as_str()),
        out.configuration().unwrap().code_sha256()
    );
}

#[tokio::test]
async fn get_function_code_location_with_forged_signature_is_refused() {
    let h = TestServer::start().await;
    let name = unique_name("forged");
    create_function(&h.client, &name, handler_zip(&name)).await;
    let out = get_function(&h.client, &name).await;
    let location = out.code().unwrap().location().unwrap();
    let (base, signature) = location.split_once("Signature=").unwrap();
    let forged = format!("{base}Signature={}", "0".repeat(signature.len()));
    let response = reqwest::get(&forged).await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
}

#[tokio::test]
async fn get_function_returns_configuration_and_tags() {
    let h = TestServer::start().await;
    let name = unique_name("get-tags");
    create_builder(&h.client, &name, handler_zip(&name))
        .tags("team", "core")
        .send()
        .await
        .unwrap();
    let out = get_function(&h.client, &name).await;
    assert_eq!(
        out.configuration().unwrap().function_name(),
        Some(name.as_str())
    );
    assert_eq!(
        out.tags().unwrap().get("team").map(String::as_str),
        Some("core")
    );
}

#[tokio::test]
async fn get_function_of_missing_function_is_not_found() {
    let h = TestServer::start().await;
    let result = h
        .client
        .get_function()
        .function_name("does-not-exist")
        .send()
        .await;
    let err = result.as_ref().unwrap_err().as_service_error().unwrap();
    assert!(matches!(
        err,
        GetFunctionError::ResourceNotFoundException(_)
    ));
    failure(result).assert(
        404,
        "ResourceNotFoundException",
        &format!(
            "Function not found: {}",
            function_arn(ACCOUNT, "does-not-exist")
        ),
    );
}

#[tokio::test]
async fn get_function_configuration_matches_get_function() {
    let h = TestServer::start().await;
    let name = unique_name("config");
    create_active(&h.client, &name).await;
    let full = get_function(&h.client, &name).await;
    let config = get_configuration(&h.client, &name).await;
    let from_full = full.configuration().unwrap();
    assert_eq!(config.function_arn(), from_full.function_arn());
    assert_eq!(config.revision_id(), from_full.revision_id());
    assert_eq!(config.code_sha256(), from_full.code_sha256());
    assert_eq!(config.last_modified(), from_full.last_modified());
    assert_eq!(config.state(), Some(&State::Active));
}

#[tokio::test]
async fn function_is_found_by_name_partial_arn_and_full_arn() {
    let h = TestServer::start().await;
    let name = unique_name("refs");
    create_function(&h.client, &name, handler_zip(&name)).await;
    let arn = function_arn(ACCOUNT, &name);
    for reference in [
        name.clone(),
        format!("{ACCOUNT}:function:{name}"),
        arn.clone(),
        format!("{arn}:$LATEST"),
    ] {
        let out = h
            .client
            .get_function_configuration()
            .function_name(&reference)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{reference}: {e:?}"));
        assert_eq!(out.function_arn(), Some(arn.as_str()), "{reference}");
    }
    // Updates and deletes take ARNs too.
    h.client
        .tag_resource()
        .resource(&arn)
        .tags("k", "v")
        .send()
        .await
        .unwrap();
    wait_active(&h.client, &name).await;
    update_configuration(&h.client, format!("{ACCOUNT}:function:{name}"))
        .description("by partial arn")
        .send()
        .await
        .unwrap();
    wait_update_settled(&h.client, &name).await;
    h.client
        .delete_function()
        .function_name(&arn)
        .send()
        .await
        .unwrap();
    failure(h.client.get_function().function_name(&name).send().await)
        .assert_code(404, "ResourceNotFoundException");
}

#[tokio::test]
async fn function_arn_from_another_region_is_not_reachable() {
    let h = TestServer::start().await;
    let name = unique_name("region");
    create_function(&h.client, &name, handler_zip(&name)).await;
    failure(
        h.client
            .get_function()
            .function_name(format!(
                "arn:aws:lambda:ap-southeast-1:{ACCOUNT}:function:{name}"
            ))
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        "Functions from 'ap-southeast-1' are not reachable in this region ('us-east-1')",
    );
}

// ---------------------------------------------------------------- ListFunctions

#[tokio::test]
async fn list_functions_pages_with_marker_in_stable_order_without_gaps_or_duplicates() {
    let h = TestServer::start().await;
    let mut names: Vec<String> = (0..7).map(|i| unique_name(&format!("page{i}"))).collect();
    for name in &names {
        create_function(&h.client, name, handler_zip(name)).await;
    }
    let mut pages = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = h
            .client
            .list_functions()
            .max_items(3)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        let page: Vec<String> = out
            .functions()
            .iter()
            .map(|f| f.function_name().unwrap().to_string())
            .collect();
        assert!(page.len() <= 3, "{page:?}");
        pages.push(page);
        match out.next_marker() {
            Some(next) => marker = Some(next.to_string()),
            None => break,
        }
        assert!(pages.len() < 10, "paging does not end");
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );
    let listed: Vec<String> = pages.concat();

    // The same order on every listing, and one page of all agrees.
    let all = h.client.list_functions().send().await.unwrap();
    let unpaged: Vec<String> = all
        .functions()
        .iter()
        .map(|f| f.function_name().unwrap().to_string())
        .collect();
    assert_eq!(listed, unpaged);
    assert!(all.next_marker().is_none());

    let mut sorted = listed.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), listed.len(), "duplicates in {listed:?}");
    sorted.sort();
    names.sort();
    assert_eq!(sorted, names);
}

#[tokio::test]
async fn list_functions_returns_configurations_with_arns() {
    let h = TestServer::start().await;
    let name = unique_name("listed");
    let zip = handler_zip(&name);
    create_function(&h.client, &name, zip.clone()).await;
    let out = h.client.list_functions().send().await.unwrap();
    let f = out
        .functions()
        .iter()
        .find(|f| f.function_name() == Some(name.as_str()))
        .unwrap();
    assert_eq!(
        f.function_arn(),
        Some(function_arn(ACCOUNT, &name).as_str())
    );
    assert_eq!(f.code_sha256(), Some(sha256_base64(&zip).as_str()));
    assert!(is_lambda_timestamp(f.last_modified().unwrap()));
}

#[tokio::test]
async fn list_functions_leaves_out_state_fields_as_aws_does() {
    let h = TestServer::start().await;
    let name = unique_name("no-state");
    create_active(&h.client, &name).await;
    let raw = h.raw("GET", "/2015-03-31/functions", b"").await;
    assert_eq!(raw.status, 200, "{raw:?}");
    let listed = &raw.body["Functions"][0];
    assert_eq!(listed["FunctionName"], name.as_str());
    for field in [
        "State",
        "StateReason",
        "StateReasonCode",
        "LastUpdateStatus",
    ] {
        assert!(listed.get(field).is_none(), "{field} in {listed}");
    }
}

#[tokio::test]
async fn list_functions_returns_at_most_50_a_page_whatever_max_items_asks() {
    let h = TestServer::start().await;
    for _ in 0..51 {
        let name = unique_name("fifty");
        create_function(&h.client, &name, handler_zip(&name)).await;
    }
    let first = h
        .client
        .list_functions()
        .max_items(100)
        .send()
        .await
        .unwrap();
    assert_eq!(first.functions().len(), 50);
    let second = h
        .client
        .list_functions()
        .max_items(100)
        .marker(first.next_marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(second.functions().len(), 1);
    assert!(second.next_marker().is_none());
}

#[tokio::test]
async fn list_functions_with_max_items_zero_is_a_validation_error() {
    let h = TestServer::start().await;
    let result = h.client.list_functions().max_items(0).send().await;
    failure(result).assert(
        400,
        "ValidationException",
        "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
}

// ---------------------------------------------------------------- UpdateFunctionCode

#[tokio::test]
async fn update_function_code_reports_in_progress_then_successful_with_the_new_sha() {
    let h = TestServer::start().await;
    let name = unique_name("code");
    create_active(&h.client, &name).await;
    let new_zip = handler_zip("version two");
    let out = update_code(&h.client, &name)
        .zip_file(Blob::new(new_zip.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.last_update_status(),
        Some(&LastUpdateStatus::InProgress)
    );
    assert_eq!(out.code_sha256(), Some(sha256_base64(&new_zip).as_str()));
    assert_eq!(out.code_size(), i64::try_from(new_zip.len()).unwrap());
    assert_eq!(
        wait_update_settled(&h.client, &name).await,
        LastUpdateStatus::Successful
    );

    let got = get_function(&h.client, &name).await;
    let downloaded = reqwest::get(got.code().unwrap().location().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(downloaded.as_ref(), new_zip.as_slice());
}

#[tokio::test]
async fn update_during_an_update_in_progress_is_a_conflict() {
    let h = TestServer::start().await;
    let name = unique_name("race");
    create_active(&h.client, &name).await;
    // ~24 MB of incompressible data in many stored entries: accepted quickly
    // relative to the time its extraction (the settle step) takes.
    let big = large_random_zip(24 << 20, 1536);
    let first = update_code(&h.client, &name)
        .zip_file(Blob::new(big))
        .send()
        .await
        .unwrap();
    assert_eq!(
        first.last_update_status(),
        Some(&LastUpdateStatus::InProgress)
    );
    let result = update_configuration(&h.client, &name)
        .memory_size(256)
        .send()
        .await;
    let err = result.as_ref().unwrap_err().as_service_error().unwrap();
    assert!(matches!(
        err,
        UpdateFunctionConfigurationError::ResourceConflictException(_)
    ));
    failure(result).assert(
        409,
        "ResourceConflictException",
        &format!(
            "The operation cannot be performed at this time. An update is in progress for resource: {}",
            function_arn(ACCOUNT, &name)
        ),
    );
    assert_eq!(
        wait_update_settled(&h.client, &name).await,
        LastUpdateStatus::Successful
    );
    // Once settled, the next update goes through.
    update_configuration(&h.client, &name)
        .memory_size(256)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn update_function_code_of_missing_function_is_not_found() {
    let h = TestServer::start().await;
    failure(
        update_code(&h.client, "nope")
            .zip_file(Blob::new(handler_zip("x")))
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        &format!("Function not found: {}", function_arn(ACCOUNT, "nope")),
    );
}

// ---------------------------------------------------------------- UpdateFunctionConfiguration

#[tokio::test]
async fn update_function_configuration_changes_every_setting() {
    let h = TestServer::start().await;
    let name = unique_name("reconf");
    create_active(&h.client, &name).await;
    let role = "arn:aws:iam::000000000000:role/other-role";
    let out = update_configuration(&h.client, &name)
        .memory_size(1024)
        .timeout(60)
        .environment(
            Environment::builder()
                .variables("GREETING", "hello")
                .variables("LEVEL", "debug")
                .build(),
        )
        .handler("main.handle")
        .runtime(Runtime::Providedal2)
        .description("reconfigured")
        .ephemeral_storage(EphemeralStorage::builder().size(2048).build().unwrap())
        .role(role)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.last_update_status(),
        Some(&LastUpdateStatus::InProgress)
    );
    assert_eq!(
        wait_update_settled(&h.client, &name).await,
        LastUpdateStatus::Successful
    );

    let config = get_configuration(&h.client, &name).await;
    assert_eq!(config.memory_size(), Some(1024));
    assert_eq!(config.timeout(), Some(60));
    let vars = config.environment().unwrap().variables().unwrap();
    let expected: HashMap<String, String> = [("GREETING", "hello"), ("LEVEL", "debug")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(vars, &expected);
    assert_eq!(config.handler(), Some("main.handle"));
    assert_eq!(config.runtime(), Some(&Runtime::Providedal2));
    assert_eq!(config.description(), Some("reconfigured"));
    assert_eq!(config.ephemeral_storage().map(|e| e.size()), Some(2048));
    assert_eq!(config.role(), Some(role));
}

#[tokio::test]
async fn update_function_configuration_moves_last_modified_forward() {
    let h = TestServer::start().await;
    let name = unique_name("after-active");
    create_active(&h.client, &name).await;
    let before = get_configuration(&h.client, &name).await;
    let out = update_configuration(&h.client, &name)
        .timeout(10)
        .send()
        .await
        .unwrap();
    assert!(is_lambda_timestamp(out.last_modified().unwrap()));
    assert!(out.last_modified().unwrap() >= before.last_modified().unwrap());
}

// ---------------------------------------------------------------- RevisionId

#[tokio::test]
async fn revision_id_changes_on_every_mutation() {
    let h = TestServer::start().await;
    let name = unique_name("revs");
    let created = create_builder(&h.client, &name, handler_zip(&name))
        .send()
        .await
        .unwrap();
    let mut seen = vec![created.revision_id().unwrap().to_string()];
    wait_active(&h.client, &name).await;
    seen.push(revision(&h, &name).await);

    let out = update_configuration(&h.client, &name)
        .description("one")
        .send()
        .await
        .unwrap();
    seen.push(out.revision_id().unwrap().to_string());
    wait_update_settled(&h.client, &name).await;
    seen.push(revision(&h, &name).await);

    let out = update_code(&h.client, &name)
        .zip_file(Blob::new(handler_zip("two")))
        .send()
        .await
        .unwrap();
    seen.push(out.revision_id().unwrap().to_string());
    wait_update_settled(&h.client, &name).await;
    seen.push(revision(&h, &name).await);

    h.client
        .add_permission()
        .function_name(&name)
        .statement_id("s1")
        .action("lambda:InvokeFunction")
        .principal("s3.amazonaws.com")
        .send()
        .await
        .unwrap();
    seen.push(revision(&h, &name).await);
    h.client
        .remove_permission()
        .function_name(&name)
        .statement_id("s1")
        .send()
        .await
        .unwrap();
    seen.push(revision(&h, &name).await);

    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a revision repeated: {seen:?}");
}

#[tokio::test]
async fn stale_revision_id_is_a_precondition_failure() {
    let h = TestServer::start().await;
    let name = unique_name("stale");
    let created = create_builder(&h.client, &name, handler_zip(&name))
        .send()
        .await
        .unwrap();
    let stale = created.revision_id().unwrap().to_string();
    wait_active(&h.client, &name).await;
    assert_ne!(revision(&h, &name).await, stale);

    let expected = "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id";
    failure(
        update_configuration(&h.client, &name)
            .description("x")
            .revision_id(&stale)
            .send()
            .await,
    )
    .assert(412, "PreconditionFailedException", expected);
    failure(
        update_code(&h.client, &name)
            .zip_file(Blob::new(handler_zip("new")))
            .revision_id(&stale)
            .send()
            .await,
    )
    .assert(412, "PreconditionFailedException", expected);
    failure(
        h.client
            .add_permission()
            .function_name(&name)
            .statement_id("s1")
            .action("lambda:InvokeFunction")
            .principal("s3.amazonaws.com")
            .revision_id(&stale)
            .send()
            .await,
    )
    .assert(
        412,
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the latest Revision Id",
    );

    // The current revision is accepted.
    let current = revision(&h, &name).await;
    update_configuration(&h.client, &name)
        .description("x")
        .revision_id(current)
        .send()
        .await
        .unwrap();
}

// ---------------------------------------------------------------- DeleteFunction

#[tokio::test]
async fn delete_function_removes_it_from_get_and_list() {
    let h = TestServer::start().await;
    let name = unique_name("del");
    create_function(&h.client, &name, handler_zip(&name)).await;
    h.client
        .delete_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    failure(h.client.get_function().function_name(&name).send().await)
        .assert_code(404, "ResourceNotFoundException");
    let listed = h.client.list_functions().send().await.unwrap();
    assert!(listed
        .functions()
        .iter()
        .all(|f| f.function_name() != Some(name.as_str())));
    // The name is free again.
    create_function(&h.client, &name, handler_zip("again")).await;
}

#[tokio::test]
async fn delete_of_missing_function_is_not_found() {
    let h = TestServer::start().await;
    failure(
        h.client
            .delete_function()
            .function_name("never-was")
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        &format!("Function not found: {}", function_arn(ACCOUNT, "never-was")),
    );
}

#[tokio::test]
async fn deleting_latest_alone_is_refused() {
    let h = TestServer::start().await;
    let name = unique_name("del-latest");
    create_function(&h.client, &name, handler_zip(&name)).await;
    failure(
        h.client
            .delete_function()
            .function_name(&name)
            .qualifier("$LATEST")
            .send()
            .await,
    )
    .assert(
        400,
        "InvalidParameterValueException",
        "$LATEST version cannot be deleted without deleting the function.",
    );
}

#[tokio::test]
async fn unknown_version_qualifier_is_not_found() {
    let h = TestServer::start().await;
    let name = unique_name("qual");
    create_function(&h.client, &name, handler_zip(&name)).await;
    failure(
        h.client
            .get_function()
            .function_name(&name)
            .qualifier("42")
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        &format!("Function not found: {}:42", function_arn(ACCOUNT, &name)),
    );
}

// ---------------------------------------------------------------- Tags

#[tokio::test]
async fn tag_untag_and_list_tags_round_trip() {
    let h = TestServer::start().await;
    let name = unique_name("tags");
    create_function(&h.client, &name, handler_zip(&name)).await;
    let arn = function_arn(ACCOUNT, &name);
    h.client
        .tag_resource()
        .resource(&arn)
        .tags("a", "1")
        .tags("b", "2")
        .tags("c", "3")
        .send()
        .await
        .unwrap();
    h.client
        .untag_resource()
        .resource(&arn)
        .tag_keys("a")
        .tag_keys("c")
        .send()
        .await
        .unwrap();
    let tags = h.client.list_tags().resource(&arn).send().await.unwrap();
    let expected: HashMap<String, String> = [("b".to_string(), "2".to_string())].into();
    assert_eq!(tags.tags(), Some(&expected));
}

#[tokio::test]
async fn tags_on_a_missing_function_are_not_found() {
    let h = TestServer::start().await;
    let arn = function_arn(ACCOUNT, "no-such-fn");
    failure(h.client.list_tags().resource(&arn).send().await).assert(
        404,
        "ResourceNotFoundException",
        &format!("Function not found: {arn}"),
    );
}

#[tokio::test]
async fn tags_on_a_qualified_arn_are_refused() {
    let h = TestServer::start().await;
    let name = unique_name("tag-qual");
    create_function(&h.client, &name, handler_zip(&name)).await;
    failure(
        h.client
            .list_tags()
            .resource(format!("{}:1", function_arn(ACCOUNT, &name)))
            .send()
            .await,
    )
    .assert(
        400,
        "InvalidParameterValueException",
        "Tags on function aliases and versions are not supported. Please specify a function ARN.",
    );
}

#[tokio::test]
async fn more_than_fifty_tags_are_refused() {
    let h = TestServer::start().await;
    let name = unique_name("many-tags");
    create_function(&h.client, &name, handler_zip(&name)).await;
    let mut request = h
        .client
        .tag_resource()
        .resource(function_arn(ACCOUNT, &name));
    for i in 0..51 {
        request = request.tags(format!("k{i}"), "v");
    }
    failure(request.send().await).assert(
        400,
        "InvalidParameterValueException",
        "Number of tags exceeds resource tag limit.",
    );
}

// ---------------------------------------------------------------- GetAccountSettings

#[tokio::test]
async fn get_account_settings_reports_limits_and_usage() {
    let h = TestServer::start().await;
    let a = handler_zip("a");
    let b = handler_zip("bb");
    create_function(&h.client, &unique_name("usage"), a.clone()).await;
    create_function(&h.client, &unique_name("usage"), b.clone()).await;
    let out = h.client.get_account_settings().send().await.unwrap();
    let limit = out.account_limit().unwrap();
    assert_eq!(limit.code_size_zipped(), 52_428_800);
    assert_eq!(limit.code_size_unzipped(), 262_144_000);
    assert_eq!(limit.concurrent_executions(), 1000);
    let usage = out.account_usage().unwrap();
    assert_eq!(usage.function_count(), 2);
    assert_eq!(
        usage.total_code_size(),
        i64::try_from(a.len() + b.len()).unwrap()
    );
}

// ---------------------------------------------------------------- Permissions

#[tokio::test]
async fn add_permission_get_policy_and_remove_permission_round_trip() {
    let h = TestServer::start().await;
    let name = unique_name("perm");
    // Settled first, so the revision compared below stays put.
    create_active(&h.client, &name).await;
    let arn = function_arn(ACCOUNT, &name);
    let added = h
        .client
        .add_permission()
        .function_name(&name)
        .statement_id("allow-s3")
        .action("lambda:InvokeFunction")
        .principal("s3.amazonaws.com")
        .source_arn("arn:aws:s3:::my-bucket")
        .source_account("123456789012")
        .send()
        .await
        .unwrap();
    let statement: Value = serde_json::from_str(added.statement().unwrap()).unwrap();
    assert_eq!(
        statement,
        json!({
            "Sid": "allow-s3",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": arn,
            "Condition": {
                "StringEquals": {"AWS:SourceAccount": "123456789012"},
                "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"},
            },
        })
    );

    let policy = h
        .client
        .get_policy()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    let document: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert_eq!(document["Version"], "2012-10-17");
    assert_eq!(document["Statement"], json!([statement]));
    assert_eq!(
        policy.revision_id(),
        Some(revision(&h, &name).await.as_str())
    );

    h.client
        .remove_permission()
        .function_name(&name)
        .statement_id("allow-s3")
        .send()
        .await
        .unwrap();
    failure(h.client.get_policy().function_name(&name).send().await).assert(
        404,
        "ResourceNotFoundException",
        "The resource you requested does not exist.",
    );
}

#[tokio::test]
async fn add_permission_with_existing_statement_id_is_a_conflict() {
    let h = TestServer::start().await;
    let name = unique_name("perm-dup");
    create_function(&h.client, &name, handler_zip(&name)).await;
    let add = || {
        h.client
            .add_permission()
            .function_name(&name)
            .statement_id("s1")
            .action("lambda:InvokeFunction")
            .principal("123456789012")
            .send()
    };
    add().await.unwrap();
    failure(add().await).assert(
        409,
        "ResourceConflictException",
        "The statement id (s1) provided already exists. Please provide a new statement id, or remove the existing statement.",
    );
}

#[tokio::test]
async fn remove_permission_of_unknown_statement_is_not_found() {
    let h = TestServer::start().await;
    let name = unique_name("perm-missing");
    create_function(&h.client, &name, handler_zip(&name)).await;
    h.client
        .add_permission()
        .function_name(&name)
        .statement_id("present")
        .action("lambda:InvokeFunction")
        .principal("*")
        .send()
        .await
        .unwrap();
    failure(
        h.client
            .remove_permission()
            .function_name(&name)
            .statement_id("doesnotexist")
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        "Statement doesnotexist is not found in resource policy.",
    );
}

// ---------------------------------------------------------------- Validation

const FUNCTION_NAME_PATTERN: &str = r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?";

#[tokio::test]
async fn function_name_outside_the_pattern_is_a_validation_error() {
    let h = TestServer::start().await;
    failure(
        create_builder(&h.client, "bad name!", handler_zip("x"))
            .send()
            .await,
    )
    .assert(
        400,
        "ValidationException",
        &format!("1 validation error detected: Value 'bad name!' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: {FUNCTION_NAME_PATTERN}"),
    );
    failure(
        h.client
            .get_function()
            .function_name("invalid:function:name")
            .send()
            .await,
    )
    .assert(
        400,
        "ValidationException",
        &format!("1 validation error detected: Value 'invalid:function:name' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: {FUNCTION_NAME_PATTERN}"),
    );
}

#[tokio::test]
async fn function_name_longer_than_64_is_refused_at_create() {
    let h = TestServer::start().await;
    let name = "a".repeat(65);
    failure(
        create_builder(&h.client, &name, handler_zip("x"))
            .send()
            .await,
    )
    .assert(
        400,
        "InvalidParameterValueException",
        &format!("1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 64"),
    );
}

#[tokio::test]
async fn function_name_longer_than_140_is_a_validation_error() {
    let h = TestServer::start().await;
    let name = "a".repeat(141);
    failure(
        create_builder(&h.client, &name, handler_zip("x"))
            .send()
            .await,
    )
    .assert(
        400,
        "ValidationException",
        &format!("1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 140"),
    );
    update_is_refused(&h, &name, |u| u.description("x"), "ValidationException", &format!("1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 140")).await;
}

#[tokio::test]
async fn unknown_runtime_is_refused_with_the_supported_list() {
    let h = TestServer::start().await;
    let result = create_builder(&h.client, &unique_name("rt"), handler_zip("x"))
        .runtime(Runtime::from("cobol42"))
        .send()
        .await;
    let f = failure(result);
    f.assert_code(400, "InvalidParameterValueException");
    let message = f.message();
    assert!(
        message.starts_with(
            "Value cobol42 at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: ["
        ),
        "{message}"
    );
    assert!(message.ends_with("] or be a valid ARN"), "{message}");
    let listed: Vec<&str> = message
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list.split(", ").collect())
        .unwrap_or_default();
    for runtime in SUPPORTED_RUNTIMES {
        assert!(listed.contains(&runtime), "{runtime} missing: {message}");
    }
}

#[tokio::test]
async fn retired_runtime_is_refused() {
    let h = TestServer::start().await;
    create_is_refused(&h, |c| c.runtime(Runtime::Nodejs14x), "InvalidParameterValueException", "The runtime parameter of nodejs14.x is no longer supported for creating or updating AWS Lambda functions. We recommend you use a supported runtime while creating or updating functions.").await;
}

/// The runtimes issue 2 names.
const SUPPORTED_RUNTIMES: [&str; 15] = [
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "python3.9",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
    "java11",
    "java17",
    "java21",
    "provided",
    "provided.al2",
    "provided.al2023",
    "go1.x",
];

/// Every runtime of issue 2 but Java (whose creation makes the engine install
/// the Java runtime client; the list test above covers its names) passes
/// validation. Creation succeeds where the host has the language installed;
/// elsewhere the only refusal allowed is Strato's "not available on this
/// host", never AWS's unknown or retired runtime.
#[tokio::test]
async fn every_supported_runtime_passes_validation() {
    let h = TestServer::start().await;
    let mut created = 0;
    for runtime in SUPPORTED_RUNTIMES
        .into_iter()
        .filter(|r| !r.starts_with("java"))
    {
        let name = unique_name(&format!("rt-{}", runtime.replace('.', "-")));
        let result = create_builder(&h.client, &name, handler_zip(&name))
            .runtime(Runtime::from(runtime))
            .send()
            .await;
        match result {
            Ok(out) => {
                assert_eq!(out.runtime().map(|r| r.as_str()), Some(runtime));
                created += 1;
            }
            Err(err) => {
                let f = failure::<_, ()>(Err(err));
                f.assert_code(400, "InvalidParameterValueException");
                assert!(
                    f.message().starts_with(&format!(
                        "The runtime parameter of {runtime} is not available on this Strato host"
                    )),
                    "{runtime}: {f:?}"
                );
            }
        }
    }
    // The OS-only runtimes need nothing installed.
    assert!(created >= 4, "only {created} runtimes were created");
}

#[tokio::test]
async fn handler_with_whitespace_or_over_128_characters_is_refused() {
    let h = TestServer::start().await;
    create_is_refused(&h, |c| c.handler("index handler"), "ValidationException", r"1 validation error detected: Value 'index handler' at 'handler' failed to satisfy constraint: Member must satisfy regular expression pattern: [^\s]+").await;
    let long = "h".repeat(129);
    create_is_refused(&h, |c| c.handler(&long), "ValidationException", &format!("1 validation error detected: Value '{long}' at 'handler' failed to satisfy constraint: Member must have length less than or equal to 128")).await;
}

#[tokio::test]
async fn role_that_is_not_an_iam_role_arn_is_refused() {
    let h = TestServer::start().await;
    create_is_refused(&h, |c| c.role("r1"), "ValidationException", r"1 validation error detected: Value 'r1' at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+").await;
    let name = unique_name("role-update");
    create_active(&h.client, &name).await;
    failure(
        update_configuration(&h.client, &name)
            .role("arn:aws:iam::123:user/bob")
            .send()
            .await,
    )
    .assert_code(400, "ValidationException");
}

#[tokio::test]
async fn memory_size_outside_128_to_10240_is_refused() {
    let h = TestServer::start().await;
    create_is_refused(&h, |c| c.memory_size(64), "ValidationException", "1 validation error detected: Value '64' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128").await;
    let name = unique_name("mem");
    create_active(&h.client, &name).await;
    update_is_refused(&h, &name, |u| u.memory_size(10_241), "InvalidParameterValueException", "'MemorySize' value failed to satisfy constraint: Member must have value less than or equal to 10240").await;
}

#[tokio::test]
async fn timeout_outside_1_to_900_is_refused() {
    let h = TestServer::start().await;
    create_is_refused(&h, |c| c.timeout(0), "ValidationException", "1 validation error detected: Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1").await;
    let name = unique_name("to");
    create_active(&h.client, &name).await;
    update_is_refused(&h, &name, |u| u.timeout(901), "InvalidParameterValueException", "'Timeout' value failed to satisfy constraint: Member must have value less than or equal to 900").await;
}

#[tokio::test]
async fn ephemeral_storage_outside_512_to_10240_is_refused() {
    let h = TestServer::start().await;
    create_is_refused(&h, |c| c.ephemeral_storage(EphemeralStorage::builder().size(511).build().unwrap()), "ValidationException", "1 validation error detected: Value '511' at 'ephemeralStorage.size' failed to satisfy constraint: Member must have value greater than or equal to 512").await;
    let name = unique_name("eph");
    create_active(&h.client, &name).await;
    update_is_refused(&h, &name, |u| u.ephemeral_storage(EphemeralStorage::builder().size(10_241).build().unwrap()), "ValidationException", "1 validation error detected: Value '10241' at 'ephemeralStorage.size' failed to satisfy constraint: Member must have value less than or equal to 10240").await;
}

#[tokio::test]
async fn environment_over_4kb_is_refused() {
    let h = TestServer::start().await;
    let big = "x".repeat(5000);
    let f = failure(
        create_builder(&h.client, &unique_name("env"), handler_zip("x"))
            .environment(
                Environment::builder()
                    .variables("LARGE_VAR", big.clone())
                    .build(),
            )
            .send()
            .await,
    );
    f.assert(
        400,
        "InvalidParameterValueException",
        &format!("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {{\"LARGE_VAR\":\"{big}\"}}"),
    );
    // Just under the limit is fine.
    let name = unique_name("env-ok");
    create_builder(&h.client, &name, handler_zip("x"))
        .environment(
            Environment::builder()
                .variables("VV", "y".repeat(4096 - r#"{"VV":""}"#.len()))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn reserved_environment_key_is_refused() {
    let h = TestServer::start().await;
    let name = unique_name("env-reserved");
    create_active(&h.client, &name).await;
    update_is_refused(&h, &name, |u| u.environment(Environment::builder().variables("AWS_REGION", "x").build()), "InvalidParameterValueException", "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: AWS_REGION").await;
}

#[tokio::test]
async fn zip_over_50_mb_is_request_entity_too_large() {
    let h = TestServer::start().await;
    let zip = stored_zip_of_size(52_428_800);
    assert!(zip.len() > 52_428_800);
    let result = create_builder(&h.client, &unique_name("huge"), zip)
        .send()
        .await;
    failure(result).assert(
        413,
        "RequestEntityTooLargeException",
        "Zipped size must be smaller than 52428800 bytes",
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_zip_is_refused() {
    let h = TestServer::start().await;
    failure(
        create_builder(
            &h.client,
            &unique_name("notzip"),
            b"definitely not a zip".to_vec(),
        )
        .send()
        .await,
    )
    .assert(
        400,
        "InvalidParameterValueException",
        "Could not unzip uploaded file. Please check your file, then try to upload again.",
    );
    let name = unique_name("notzip-update");
    create_active(&h.client, &name).await;
    failure(
        update_code(&h.client, &name)
            .zip_file(Blob::new(b"PK\x03\x04 truncated".to_vec()))
            .send()
            .await,
    )
    .assert(
        400,
        "InvalidParameterValueException",
        "Could not unzip uploaded file. Please check your file, then try to upload again.",
    );
}

#[tokio::test]
async fn a_zip_that_escapes_its_root_is_refused() {
    let h = TestServer::start().await;
    let zip = zip_of(&[("index.js", b"ok"), ("../evil.js", b"x")]);
    let f = failure(
        create_builder(&h.client, &unique_name("escape"), zip)
            .send()
            .await,
    );
    f.assert_code(400, "InvalidParameterValueException");
    assert!(
        f.message().starts_with(
            "Could not unzip uploaded file. Please check your file, then try to upload again."
        ),
        "{f:?}"
    );
}

#[tokio::test]
async fn code_from_s3_is_an_invalid_parameter() {
    let h = TestServer::start().await;
    let result = h
        .client
        .create_function()
        .function_name(unique_name("s3"))
        .runtime(RUNTIME)
        .role(ROLE)
        .handler("index.handler")
        .code(
            FunctionCode::builder()
                .s3_bucket("my-bucket")
                .s3_key("code.zip")
                .build(),
        )
        .send()
        .await;
    let err = result.as_ref().unwrap_err().as_service_error().unwrap();
    assert!(matches!(
        err,
        CreateFunctionError::InvalidParameterValueException(_)
    ));
    failure(result).assert(
        400,
        "InvalidParameterValueException",
        "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: The specified bucket does not exist",
    );
}

// ---------------------------------------------------------------- Wire format

#[tokio::test]
async fn malformed_json_is_a_serialization_exception() {
    let h = TestServer::start().await;
    let raw = h
        .raw(
            "POST",
            "/2015-03-31/functions",
            br#"{"FunctionName": "x", "#,
        )
        .await;
    raw.assert_error(400, "SerializationException");
    assert!(raw.body["message"].is_string(), "{raw:?}");
    assert!(raw.request_id.is_some());
}

#[tokio::test]
async fn missing_required_members_are_named_in_one_validation_error() {
    let h = TestServer::start().await;
    let raw = h.raw("POST",
        "/2015-03-31/functions",
        json!({"FunctionName": unique_name("no-role"), "Runtime": RUNTIME.as_str(), "Handler": "index.handler"})
            .to_string()
            .as_bytes())
    .await;
    raw.assert_error(400, "ValidationException");
    assert_eq!(
        raw.body["message"],
        "2 validation errors detected: Value null at 'role' failed to satisfy constraint: Member must not be null; Value null at 'code' failed to satisfy constraint: Member must not be null"
    );
}

#[tokio::test]
async fn member_of_the_wrong_type_is_a_serialization_exception() {
    let h = TestServer::start().await;
    let name = unique_name("wrongtype");
    create_function(&h.client, &name, handler_zip(&name)).await;
    let raw = h
        .raw(
            "PUT",
            &format!("/2015-03-31/functions/{name}/configuration"),
            br#"{"MemorySize": "lots"}"#,
        )
        .await;
    raw.assert_error(400, "SerializationException");
}

#[tokio::test]
async fn unknown_member_is_a_validation_exception() {
    let h = TestServer::start().await;
    let name = unique_name("unknown-field");
    let mut body = create_body(&name, &handler_zip(&name));
    body["NotAMember"] = json!(1);
    let raw = h
        .raw("POST", "/2015-03-31/functions", body.to_string().as_bytes())
        .await;
    raw.assert_error(400, "ValidationException");
    let message = raw.body["message"].as_str().unwrap();
    assert!(message.contains("NotAMember"), "{message}");
    // Nothing was created.
    failure(h.client.get_function().function_name(&name).send().await)
        .assert_code(404, "ResourceNotFoundException");
}

#[tokio::test]
async fn unknown_operation_is_answered_without_a_server_error() {
    let h = TestServer::start().await;
    let raw = h.raw("GET", "/2015-03-31/no-such-thing", b"").await;
    assert!((400..500).contains(&raw.status), "{raw:?}");
    assert!(raw.error_type_header.is_some());
    assert!(raw.request_id.is_some());
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let h = TestServer::start().await;
    let name = unique_name("reqid");
    let created = create_builder(&h.client, &name, handler_zip(&name))
        .send()
        .await
        .unwrap();
    assert!(created.request_id().is_some());
    let listed = h.client.list_functions().send().await.unwrap();
    assert!(listed.request_id().is_some());
    let settings = h.client.get_account_settings().send().await.unwrap();
    assert!(settings.request_id().is_some());
    let deleted = h
        .client
        .delete_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert!(deleted.request_id().is_some());
    let ids = [
        created.request_id().unwrap(),
        listed.request_id().unwrap(),
        settings.request_id().unwrap(),
        deleted.request_id().unwrap(),
    ];
    let mut unique = ids.to_vec();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "request ids repeat: {ids:?}");
    // Errors too (checked inside `assert_code`).
    failure(h.client.get_function().function_name(&name).send().await)
        .assert_code(404, "ResourceNotFoundException");
}

// ---------------------------------------------------------------- Authentication

#[tokio::test]
async fn wrong_secret_is_an_invalid_signature() {
    let h = TestServer::start().await;
    let bad = client(h.addr(), "test", "not-the-secret");
    failure(bad.list_functions().send().await).assert(
        403,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    );
}

#[tokio::test]
async fn unknown_access_key_is_an_unrecognized_client() {
    let h = TestServer::start().await;
    let stranger = client(h.addr(), "AKIANOBODYKNOWSTHIS", "whatever");
    failure(stranger.list_functions().send().await).assert(
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
}

#[tokio::test]
async fn unsigned_request_is_refused() {
    let h = TestServer::start().await;
    let response = reqwest::get(format!("{}/2015-03-31/functions", h.endpoint()))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(
        response
            .headers()
            .get("x-amzn-ErrorType")
            .and_then(|v| v.to_str().ok()),
        Some("MissingAuthenticationTokenException")
    );
}

#[tokio::test]
async fn presigned_query_string_signature_is_accepted() {
    let h = TestServer::start().await;
    let name = unique_name("presigned");
    create_function(&h.client, &name, handler_zip(&name)).await;
    let signing = Signing {
        key: "test",
        secret: "test",
        time: std::time::SystemTime::now(),
        presigned: true,
    };
    let raw = signed_request_with(
        &h.endpoint(),
        "GET",
        &format!("/2015-03-31/functions/{name}/configuration"),
        b"",
        &signing,
    )
    .await;
    assert_eq!(raw.status, 200, "{raw:?}");
    assert_eq!(raw.body["FunctionName"], name.as_str());
}

#[tokio::test]
async fn signature_from_outside_the_clock_skew_window_is_refused() {
    let h = TestServer::start().await;
    let signing = Signing {
        key: "test",
        secret: "test",
        time: std::time::SystemTime::now() - std::time::Duration::from_secs(20 * 60),
        presigned: false,
    };
    let raw =
        signed_request_with(&h.endpoint(), "GET", "/2015-03-31/functions", b"", &signing).await;
    raw.assert_error(403, "InvalidSignatureException");
    let message = raw.body["message"].as_str().unwrap();
    assert!(message.starts_with("Signature expired: "), "{message}");
}

// ---------------------------------------------------------------- Accounts

#[tokio::test]
async fn second_account_cannot_see_or_touch_the_first_accounts_functions() {
    let h = TestServer::start().await;
    let name = unique_name("mine");
    create_active(&h.client, &name).await;
    let (other_id, other) = h.second_account().await;
    assert_ne!(other_id, ACCOUNT);

    let listed = other.list_functions().send().await.unwrap();
    assert!(listed.functions().is_empty(), "{listed:?}");

    let other_arn = |n: &str| function_arn(&other_id, n);
    failure(other.get_function().function_name(&name).send().await).assert(
        404,
        "ResourceNotFoundException",
        &format!("Function not found: {}", other_arn(&name)),
    );
    let first_arn = function_arn(ACCOUNT, &name);
    let f = failure(other.get_function().function_name(&first_arn).send().await);
    f.assert_code(403, "AccessDeniedException");
    assert!(f.message().contains(&first_arn), "{f:?}");
    failure(
        update_configuration(&other, &name)
            .memory_size(512)
            .send()
            .await,
    )
    .assert_code(404, "ResourceNotFoundException");
    failure(
        update_code(&other, &name)
            .zip_file(Blob::new(handler_zip("evil")))
            .send()
            .await,
    )
    .assert_code(404, "ResourceNotFoundException");
    failure(other.delete_function().function_name(&name).send().await)
        .assert_code(404, "ResourceNotFoundException");
    failure(
        other
            .delete_function()
            .function_name(&first_arn)
            .send()
            .await,
    )
    .assert_code(403, "AccessDeniedException");
    failure(
        other
            .tag_resource()
            .resource(&first_arn)
            .tags("x", "y")
            .send()
            .await,
    )
    .assert_code(403, "AccessDeniedException");

    // The second account's own function of the same name is its own.
    create_function(&other, &name, handler_zip("theirs")).await;
    let theirs = get_configuration(&other, &name).await;
    assert_eq!(theirs.function_arn(), Some(other_arn(&name).as_str()));

    // And the first account's function is untouched.
    let mine = get_configuration(&h.client, &name).await;
    assert_eq!(mine.memory_size(), Some(128));
    assert_eq!(
        mine.code_sha256(),
        Some(sha256_base64(&handler_zip(&name)).as_str())
    );
    let settings = other.get_account_settings().send().await.unwrap();
    assert_eq!(settings.account_usage().unwrap().function_count(), 1);
}

// ---------------------------------------------------------------- Persistence

#[tokio::test]
async fn everything_survives_a_restart() {
    let mut h = TestServer::start().await;
    let name = unique_name("persist");
    let zip = handler_zip(&name);
    create_builder(&h.client, &name, zip.clone())
        .tags("team", "core")
        .send()
        .await
        .unwrap();
    wait_active(&h.client, &name).await;
    update_configuration(&h.client, &name)
        .environment(Environment::builder().variables("KEY", "value").build())
        .memory_size(512)
        .send()
        .await
        .unwrap();
    wait_update_settled(&h.client, &name).await;
    h.client
        .add_permission()
        .function_name(&name)
        .statement_id("keep-me")
        .action("lambda:InvokeFunction")
        .principal("events.amazonaws.com")
        .send()
        .await
        .unwrap();
    let before = get_function(&h.client, &name).await;
    let policy_before = h
        .client
        .get_policy()
        .function_name(&name)
        .send()
        .await
        .unwrap();

    h.restart().await;

    let after = get_function(&h.client, &name).await;
    let (b, a) = (
        before.configuration().unwrap(),
        after.configuration().unwrap(),
    );
    assert_eq!(a.revision_id(), b.revision_id());
    assert_eq!(a.last_modified(), b.last_modified());
    assert_eq!(a.code_sha256(), Some(sha256_base64(&zip).as_str()));
    assert_eq!(a.memory_size(), Some(512));
    assert_eq!(
        a.environment()
            .and_then(|e| e.variables())
            .and_then(|v| v.get("KEY"))
            .map(String::as_str),
        Some("value")
    );
    assert_eq!(a.state(), Some(&State::Active));
    assert_eq!(
        after.tags().unwrap().get("team").map(String::as_str),
        Some("core")
    );
    let downloaded = reqwest::get(after.code().unwrap().location().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(downloaded.as_ref(), zip.as_slice());
    let policy_after = h
        .client
        .get_policy()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(policy_after.policy(), policy_before.policy());
    let listed = h.client.list_functions().send().await.unwrap();
    assert_eq!(listed.functions().len(), 1);
}

#[tokio::test]
async fn changes_left_unsettled_by_a_stopped_server_settle_after_restart() {
    let mut h = TestServer::start().await;
    let creating = unique_name("was-pending");
    let updating = unique_name("was-in-progress");
    create_active(&h.client, &creating).await;
    create_active(&h.client, &updating).await;

    // As if the process had stopped between answering and settling.
    h.restart_after_editing(&creating, |record| {
        record.latest.state = strato_model::FunctionState::Pending;
        record.latest.last_update_status = None;
    })
    .await;
    h.restart_after_editing(&updating, |record| {
        record.latest.last_update_status = Some(strato_model::LastUpdateStatus::InProgress);
    })
    .await;

    wait_active(&h.client, &creating).await;
    assert_eq!(
        wait_update_settled(&h.client, &updating).await,
        LastUpdateStatus::Successful
    );
    update_configuration(&h.client, &updating)
        .description("updatable again")
        .send()
        .await
        .unwrap();
}

/// Issue 22 with the AWS SDK for Rust: STS answers who signs (the root, a
/// session the SDK signs with its token), an AssumeRole the trust policy
/// does not allow is AccessDenied under `--iam enforce`, and a session key
/// without its token is refused in the query protocol's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_answers_the_rust_sdk_and_refuses_in_its_words() {
    use aws_sdk_sts::error::ProvideErrorMetadata;
    let server = harness::TestServer::start_with(harness::Runtimes::Shared, |config| {
        config.iam_enforced = true;
    })
    .await;
    let sts = aws_sdk_sts::Client::new(&server.sdk_config());
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some(harness::ACCOUNT));
    assert_eq!(
        me.arn(),
        Some(format!("arn:aws:iam::{}:root", harness::ACCOUNT).as_str())
    );

    let role = format!("arn:aws:iam::{}:role/nobody-trusts-you", harness::ACCOUNT);
    let denied = sts
        .assume_role()
        .role_arn(&role)
        .role_session_name("s1")
        .send()
        .await
        .expect_err("no trust policy lets the caller in");
    assert_eq!(denied.code(), Some("AccessDenied"), "{denied:?}");
    assert_eq!(
        denied.message(),
        Some(
            format!(
                "User: arn:aws:iam::{}:root is not authorized to perform: sts:AssumeRole on resource: {role}",
                harness::ACCOUNT
            )
            .as_str()
        )
    );

    let session = sts
        .get_session_token()
        .duration_seconds(900)
        .send()
        .await
        .unwrap();
    let creds = session.credentials().unwrap();
    assert!(creds.access_key_id().starts_with("ASIA"));
    let signed = |token: Option<String>| {
        let mut config = aws_sdk_sts::config::Builder::from(&server.sdk_config());
        config.set_credentials_provider(Some(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    creds.access_key_id(),
                    creds.secret_access_key(),
                    token,
                    None,
                    "session",
                ),
            ),
        ));
        aws_sdk_sts::Client::from_conf(config.build())
    };
    let with_token = signed(Some(creds.session_token().to_string()))
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.arn(), me.arn());
    let without = signed(None)
        .get_caller_identity()
        .send()
        .await
        .expect_err("a session key needs its token");
    assert_eq!(without.code(), Some("InvalidClientTokenId"), "{without:?}");
    assert_eq!(
        without.message(),
        Some("The security token included in the request is invalid.")
    );
}
