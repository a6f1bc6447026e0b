//! Issue 4 (versions and aliases), shown with the AWS SDK for Rust: publishing,
//! listing and deleting versions, aliases with weighted routing, qualified
//! reads, invocations and policies, each rule with AWS's error, and
//! persistence across a restart.

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    AliasRoutingConfiguration, FunctionCode, FunctionVersion, LastUpdateStatus, Runtime, State,
};
use harness::*;
use serde_json::Value;

// ---------------------------------------------------------------- helpers

fn weights(version: &str, weight: f64) -> AliasRoutingConfiguration {
    AliasRoutingConfiguration::builder()
        .additional_version_weights(version, weight)
        .build()
}

async fn update_code(client: &aws_sdk_lambda::Client, name: &str, zip: Vec<u8>) {
    harness::update_code(client, name)
        .zip_file(Blob::new(zip))
        .send()
        .await
        .expect("update code");
    assert_eq!(
        wait_update_settled(client, name).await,
        LastUpdateStatus::Successful
    );
}

async fn publish(client: &aws_sdk_lambda::Client, name: &str) -> String {
    publish_version(client, name)
        .await
        .version()
        .expect("version")
        .to_string()
}

/// A function with versions 1 and 2 (different code) and `$LATEST`.
async fn function_with_two_versions(client: &aws_sdk_lambda::Client, prefix: &str) -> String {
    let name = unique_name(prefix);
    create_active(client, &name).await;
    assert_eq!(publish(client, &name).await, "1");
    update_code(client, &name, handler_zip(&format!("{name}-v2"))).await;
    assert_eq!(publish(client, &name).await, "2");
    name
}

/// Node.js handler that reports its tag and the version it ran as.
fn node_zip(tag: &str) -> Vec<u8> {
    let source = format!(
        "let count = 0;\nexports.handler = async (event, context) => ({{ tag: {tag:?}, version: context.functionVersion, arn: context.invokedFunctionArn, count: ++count }});\n"
    );
    zip_of(&[("index.js", source.as_bytes())])
}

async fn invoke_json(
    client: &aws_sdk_lambda::Client,
    name: &str,
    qualifier: Option<&str>,
) -> (String, Value) {
    let out = client
        .invoke()
        .function_name(name)
        .set_qualifier(qualifier.map(str::to_string))
        .payload(Blob::new("{}"))
        .send()
        .await
        .expect("invoke");
    assert_eq!(out.status_code(), 200);
    assert_eq!(out.function_error(), None, "{out:?}");
    let payload: Value =
        serde_json::from_slice(out.payload().expect("payload").as_ref()).expect("json payload");
    (
        out.executed_version()
            .expect("executed version")
            .to_string(),
        payload,
    )
}

/// The exact two-sided binomial interval holding `1 - alpha` of the mass of
/// Binomial(n, p): the smallest k with P(X <= k) >= alpha/2 and the smallest
/// k with P(X <= k) >= 1 - alpha/2.
fn binomial_interval(n: u64, p: f64, alpha: f64) -> (u64, u64) {
    let ratio = p / (1.0 - p);
    let mut pmf = (1.0 - p).powi(i32::try_from(n).unwrap());
    let mut cdf = 0.0;
    let (mut low, mut high) = (None, None);
    for k in 0..=n {
        cdf += pmf;
        if low.is_none() && cdf >= alpha / 2.0 {
            low = Some(k);
        }
        if high.is_none() && cdf >= 1.0 - alpha / 2.0 {
            high = Some(k);
        }
        pmf *= (n - k) as f64 / (k + 1) as f64 * ratio;
    }
    (low.unwrap_or(0), high.unwrap_or(n))
}

// ---------------------------------------------------------------- versions

#[tokio::test]
async fn publish_list_get_and_delete_versions() {
    let h = TestServer::start().await;
    let c = &h.client;
    let name = unique_name("ver");
    let first_zip = handler_zip(&name);
    create_function(c, &name, first_zip.clone()).await;
    wait_active(c, &name).await;
    let arn = function_arn(ACCOUNT, &name);

    let v1 = c
        .publish_version()
        .function_name(&name)
        .description("first")
        .send()
        .await
        .unwrap();
    assert_eq!(v1.version(), Some("1"));
    assert_eq!(v1.function_arn(), Some(format!("{arn}:1").as_str()));
    assert_eq!(v1.description(), Some("first"));
    assert_eq!(v1.state(), Some(&State::Active));
    assert_eq!(v1.code_sha256(), Some(sha256_base64(&first_zip).as_str()));

    // Nothing changed: the existing version comes back.
    let again = publish_version(c, &name).await;
    assert_eq!(again.version(), Some("1"));
    assert_eq!(again.revision_id(), v1.revision_id());

    let second_zip = handler_zip(&format!("{name}-2"));
    update_code(c, &name, second_zip.clone()).await;
    assert_eq!(publish(c, &name).await, "2");

    // Each version keeps its own code.
    let got1 = c
        .get_function_configuration()
        .function_name(&name)
        .qualifier("1")
        .send()
        .await
        .unwrap();
    assert_eq!(got1.version(), Some("1"));
    assert_eq!(got1.function_arn(), Some(format!("{arn}:1").as_str()));
    assert_eq!(got1.code_sha256(), Some(sha256_base64(&first_zip).as_str()));
    let got2 = get_function(c, format!("{arn}:2")).await;
    let conf2 = got2.configuration().unwrap();
    assert_eq!(conf2.version(), Some("2"));
    assert_eq!(
        conf2.code_sha256(),
        Some(sha256_base64(&second_zip).as_str())
    );
    let latest = c
        .get_function_configuration()
        .function_name(&name)
        .qualifier("$LATEST")
        .send()
        .await
        .unwrap();
    assert_eq!(latest.version(), Some("$LATEST"));
    assert_eq!(latest.function_arn(), Some(arn.as_str()));

    // ListVersionsByFunction: $LATEST first, then by number, paged.
    let all = c
        .list_versions_by_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    let versions: Vec<&str> = all.versions().iter().filter_map(|v| v.version()).collect();
    assert_eq!(versions, ["$LATEST", "1", "2"]);
    assert_eq!(
        all.versions()[0].function_arn(),
        Some(format!("{arn}:$LATEST").as_str())
    );
    assert_eq!(all.next_marker(), None);
    let page1 = c
        .list_versions_by_function()
        .function_name(&name)
        .max_items(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page1.versions().len(), 2);
    let marker = page1.next_marker().expect("more versions").to_string();
    let page2 = c
        .list_versions_by_function()
        .function_name(&name)
        .max_items(2)
        .marker(marker)
        .send()
        .await
        .unwrap();
    let rest: Vec<&str> = page2
        .versions()
        .iter()
        .filter_map(|v| v.version())
        .collect();
    assert_eq!(rest, ["2"]);
    assert_eq!(page2.next_marker(), None);

    // ListFunctions with FunctionVersion=ALL lists the versions too.
    let listed = c
        .list_functions()
        .function_version(FunctionVersion::All)
        .send()
        .await
        .unwrap();
    let arns: Vec<&str> = listed
        .functions()
        .iter()
        .filter_map(|f| f.function_arn())
        .collect();
    for expected in [
        format!("{arn}:$LATEST"),
        format!("{arn}:1"),
        format!("{arn}:2"),
    ] {
        assert!(arns.contains(&expected.as_str()), "{expected} in {arns:?}");
    }
    let plain = c.list_functions().send().await.unwrap();
    assert_eq!(plain.functions().len(), 1);

    // Deleting a version deletes only it; numbers are never reused.
    c.delete_function()
        .function_name(&name)
        .qualifier("2")
        .send()
        .await
        .unwrap();
    failure(
        c.get_function()
            .function_name(&name)
            .qualifier("2")
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        &format!("Function not found: {arn}:2"),
    );
    failure(
        c.delete_function()
            .function_name(&name)
            .qualifier("7")
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        &format!("Function not found: {arn}:7"),
    );
    update_configuration(c, &name)
        .timeout(9)
        .send()
        .await
        .unwrap();
    wait_update_settled(c, &name).await;
    assert_eq!(publish(c, &name).await, "3");
    c.get_function()
        .function_name(&name)
        .qualifier("1")
        .send()
        .await
        .unwrap();

    // Deleting the function deletes its versions.
    c.delete_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    create_active(c, &name).await;
    failure(
        c.get_function()
            .function_name(&name)
            .qualifier("1")
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        &format!("Function not found: {arn}:1"),
    );
    assert_eq!(publish(c, &name).await, "1");
}

#[tokio::test]
async fn publish_preconditions_use_aws_messages() {
    let h = TestServer::start().await;
    let c = &h.client;
    let name = unique_name("ver-pre");
    let zip = handler_zip(&name);
    create_function(c, &name, zip.clone()).await;
    wait_active(c, &name).await;
    let sha = sha256_base64(&zip);

    failure(
        c.publish_version()
            .function_name(&name)
            .code_sha256("somenonexistentsha256")
            .send()
            .await,
    )
    .assert(
        400,
        "InvalidParameterValueException",
        &format!("CodeSHA256 (somenonexistentsha256) is different from current CodeSHA256 in $LATEST ({sha}). Please try again with the CodeSHA256 in $LATEST."),
    );
    failure(
        c.publish_version()
            .function_name(&name)
            .revision_id("not-the-revision")
            .send()
            .await,
    )
    .assert(
        412,
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
    );
    let revision = get_configuration(c, &name)
        .await
        .revision_id()
        .unwrap()
        .to_string();
    let v = c
        .publish_version()
        .function_name(&name)
        .code_sha256(&sha)
        .revision_id(revision)
        .send()
        .await
        .unwrap();
    assert_eq!(v.version(), Some("1"));

    failure(c.publish_version().function_name("never-was").send().await).assert(
        404,
        "ResourceNotFoundException",
        &format!("Function not found: {}", function_arn(ACCOUNT, "never-was")),
    );
    failure(
        c.publish_version()
            .function_name(format!("{name}:1"))
            .send()
            .await,
    )
    .assert(
        400,
        "InvalidParameterValueException",
        "This operation is permitted on Lambda functions only. Aliases and versions do not support this operation. Please specify either a function name or an unqualified function ARN.",
    );
}

#[tokio::test]
async fn publish_true_on_create_and_update_code() {
    let h = TestServer::start().await;
    let c = &h.client;
    let name = unique_name("ver-pub");
    let arn = function_arn(ACCOUNT, &name);
    let created = create_builder(c, &name, handler_zip(&name))
        .publish(true)
        .send()
        .await
        .unwrap();
    assert_eq!(created.version(), Some("1"));
    // AWS answers CreateFunction with Publish under the unqualified ARN.
    assert_eq!(created.function_arn(), Some(arn.as_str()));
    wait_active(c, &name).await;
    let v1 = c
        .get_function_configuration()
        .function_name(&name)
        .qualifier("1")
        .send()
        .await
        .unwrap();
    assert_eq!(v1.state(), Some(&State::Active));

    let zip2 = handler_zip(&format!("{name}-2"));
    let updated = harness::update_code(c, &name)
        .zip_file(Blob::new(zip2.clone()))
        .publish(true)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.version(), Some("2"));
    assert_eq!(updated.code_sha256(), Some(sha256_base64(&zip2).as_str()));
    assert_eq!(
        wait_update_settled(c, &name).await,
        LastUpdateStatus::Successful
    );
    let v2 = c
        .get_function_configuration()
        .function_name(&name)
        .qualifier("2")
        .send()
        .await
        .unwrap();
    assert_eq!(v2.last_update_status(), Some(&LastUpdateStatus::Successful));
    assert_eq!(v2.code_sha256(), Some(sha256_base64(&zip2).as_str()));
}

// ---------------------------------------------------------------- aliases

#[tokio::test]
async fn alias_lifecycle() {
    let h = TestServer::start().await;
    let c = &h.client;
    let name = function_with_two_versions(c, "alias").await;
    let arn = function_arn(ACCOUNT, &name);

    let live = c
        .create_alias()
        .function_name(&name)
        .name("live")
        .function_version("1")
        .description("production")
        .send()
        .await
        .unwrap();
    assert_eq!(live.alias_arn(), Some(format!("{arn}:live").as_str()));
    assert_eq!(live.function_version(), Some("1"));
    assert_eq!(live.description(), Some("production"));
    assert!(live.routing_config().is_none());
    let revision = live.revision_id().unwrap().to_string();
    c.create_alias()
        .function_name(&name)
        .name("beta")
        .function_version("2")
        .send()
        .await
        .unwrap();
    c.create_alias()
        .function_name(&name)
        .name("dev")
        .function_version("$LATEST")
        .send()
        .await
        .unwrap();

    failure(
        c.create_alias()
            .function_name(&name)
            .name("live")
            .function_version("2")
            .send()
            .await,
    )
    .assert(
        409,
        "ResourceConflictException",
        &format!("Alias already exists: {arn}:live"),
    );
    failure(
        c.create_alias()
            .function_name(&name)
            .name("later")
            .function_version("9")
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        &format!("Function not found: {arn}:9"),
    );
    failure(
        c.create_alias()
            .function_name(&name)
            .name("2024")
            .function_version("1")
            .send()
            .await,
    )
    .assert(
        400,
        "ValidationException",
        "1 validation error detected: Value '2024' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)",
    );

    let got = c
        .get_alias()
        .function_name(&name)
        .name("live")
        .send()
        .await
        .unwrap();
    assert_eq!(got.revision_id(), Some(revision.as_str()));

    // Reads and invocations through the alias name its primary version.
    let conf = c
        .get_function_configuration()
        .function_name(&name)
        .qualifier("live")
        .send()
        .await
        .unwrap();
    assert_eq!(conf.version(), Some("1"));
    assert_eq!(conf.function_arn(), Some(format!("{arn}:live").as_str()));
    failure(
        c.get_function()
            .function_name(format!("{arn}:nosuchalias"))
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        &format!("Function not found: {arn}:nosuchalias"),
    );

    // Listing, filtering and paging.
    let all = c.list_aliases().function_name(&name).send().await.unwrap();
    let names: Vec<&str> = all.aliases().iter().filter_map(|a| a.name()).collect();
    assert_eq!(names, ["beta", "dev", "live"]);
    let only1 = c
        .list_aliases()
        .function_name(&name)
        .function_version("1")
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = only1.aliases().iter().filter_map(|a| a.name()).collect();
    assert_eq!(names, ["live"]);
    let page1 = c
        .list_aliases()
        .function_name(&name)
        .max_items(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page1.aliases().len(), 2);
    let page2 = c
        .list_aliases()
        .function_name(&name)
        .max_items(2)
        .marker(page1.next_marker().expect("more aliases"))
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = page2.aliases().iter().filter_map(|a| a.name()).collect();
    assert_eq!(names, ["live"]);
    assert_eq!(page2.next_marker(), None);

    // UpdateAlias with RevisionId preconditions.
    failure(
        c.update_alias()
            .function_name(&name)
            .name("live")
            .function_version("2")
            .revision_id("stale")
            .send()
            .await,
    )
    .assert(
        412,
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
    );
    let moved = c
        .update_alias()
        .function_name(&name)
        .name("live")
        .function_version("2")
        .revision_id(&revision)
        .send()
        .await
        .unwrap();
    assert_eq!(moved.function_version(), Some("2"));
    assert_eq!(moved.description(), Some("production"));
    assert_ne!(moved.revision_id(), Some(revision.as_str()));
    failure(
        c.update_alias()
            .function_name(&name)
            .name("nosuch")
            .function_version("2")
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        &format!("Alias not found: {arn}:nosuch"),
    );

    // A version an alias points to cannot be deleted.
    failure(
        c.delete_function()
            .function_name(&name)
            .qualifier("2")
            .send()
            .await,
    )
    .assert(
        409,
        "ResourceConflictException",
        "Unable to delete version because the following aliases reference it: [beta, live]",
    );
    failure(
        c.delete_function()
            .function_name(&name)
            .qualifier("live")
            .send()
            .await,
    )
    .assert(
        400,
        "InvalidParameterValueException",
        "Deletion of aliases is not currently supported.",
    );
    // Version 1 is no longer referenced.
    c.delete_function()
        .function_name(&name)
        .qualifier("1")
        .send()
        .await
        .unwrap();

    c.delete_alias()
        .function_name(&name)
        .name("live")
        .send()
        .await
        .unwrap();
    failure(c.get_alias().function_name(&name).name("live").send().await).assert(
        404,
        "ResourceNotFoundException",
        &format!("Cannot find alias arn: {arn}:live"),
    );
}

#[tokio::test]
async fn routing_config_rules_use_aws_messages() {
    let h = TestServer::start().await;
    let c = &h.client;
    let name = function_with_two_versions(c, "routing").await;
    let arn = function_arn(ACCOUNT, &name);
    let create = |version: &str, routing: AliasRoutingConfiguration| {
        c.create_alias()
            .function_name(&name)
            .name("weighted")
            .function_version(version)
            .routing_config(routing)
            .send()
    };

    let two = AliasRoutingConfiguration::builder()
        .additional_version_weights("1", 0.1)
        .additional_version_weights("2", 0.1)
        .build();
    failure(create("1", two).await).assert(
        400,
        "InvalidParameterValueException",
        "Number of items in AdditionalVersionWeights cannot be greater than 1",
    );
    for (version, routing, status, code, message) in [
        ("1", weights("2", 2.0), 400, "ValidationException", "1 validation error detected: Value '{2=2.0}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]"),
        ("1", weights("2", -1.0), 400, "ValidationException", "1 validation error detected: Value '{2=-1.0}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]"),
        ("1", weights("$LATEST", 0.5), 400, "ValidationException", "1 validation error detected: Value '{$LATEST=0.5}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]"),
        ("1", weights("1", 0.5), 400, "InvalidParameterValueException", "Invalid function version 1. Function version 1 is already included in routing configuration."),
        ("$LATEST", weights("1", 0.5), 400, "InvalidParameterValueException", "$LATEST is not supported for an alias pointing to more than 1 version"),
    ] {
        failure(create(version, routing).await).assert(status, code, message);
    }
    failure(create("1", weights("9", 0.5)).await).assert(
        404,
        "ResourceNotFoundException",
        &format!("Function not found: {arn}:9"),
    );

    // The same rules on update; an empty routing config removes the split.
    let ok = create("1", weights("2", 0.25)).await.unwrap();
    let rc = ok.routing_config().expect("routing config");
    assert_eq!(
        rc.additional_version_weights().and_then(|w| w.get("2")),
        Some(&0.25)
    );
    failure(
        c.update_alias()
            .function_name(&name)
            .name("weighted")
            .function_version("2")
            .send()
            .await,
    )
    .assert(
        400,
        "InvalidParameterValueException",
        "Invalid function version 2. Function version 2 is already included in routing configuration.",
    );
    let cleared = c
        .update_alias()
        .function_name(&name)
        .name("weighted")
        .routing_config(AliasRoutingConfiguration::builder().build())
        .send()
        .await
        .unwrap();
    assert!(cleared
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .is_none_or(|w| w.is_empty()));
}

// ---------------------------------------------------------------- policies

#[tokio::test]
async fn policies_are_kept_per_qualifier() {
    let h = TestServer::start().await;
    let c = &h.client;
    let name = function_with_two_versions(c, "pol").await;
    let arn = function_arn(ACCOUNT, &name);
    c.create_alias()
        .function_name(&name)
        .name("live")
        .function_version("1")
        .send()
        .await
        .unwrap();
    let added = c
        .add_permission()
        .function_name(&name)
        .qualifier("live")
        .statement_id("s3")
        .action("lambda:InvokeFunction")
        .principal("s3.amazonaws.com")
        .send()
        .await
        .unwrap();
    let stmt: Value = serde_json::from_str(added.statement().unwrap()).unwrap();
    assert_eq!(stmt["Resource"], format!("{arn}:live"));
    let policy = c
        .get_policy()
        .function_name(&name)
        .qualifier("live")
        .send()
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert_eq!(doc["Statement"][0]["Sid"], "s3");
    // The alias's RevisionId is the policy's.
    let alias = c
        .get_alias()
        .function_name(&name)
        .name("live")
        .send()
        .await
        .unwrap();
    assert_eq!(policy.revision_id(), alias.revision_id());

    // Other qualifiers have their own (here: no) policy.
    for q in [None, Some("1")] {
        failure(
            c.get_policy()
                .function_name(&name)
                .set_qualifier(q.map(str::to_string))
                .send()
                .await,
        )
        .assert(
            404,
            "ResourceNotFoundException",
            "The resource you requested does not exist.",
        );
    }
    failure(
        c.add_permission()
            .function_name(&name)
            .qualifier("5")
            .statement_id("x")
            .action("lambda:InvokeFunction")
            .principal("s3.amazonaws.com")
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        &format!("Function not found: {arn}:5"),
    );
    c.remove_permission()
        .function_name(&name)
        .qualifier("live")
        .statement_id("s3")
        .send()
        .await
        .unwrap();
    failure(
        c.get_policy()
            .function_name(&name)
            .qualifier("live")
            .send()
            .await,
    )
    .assert_code(404, "ResourceNotFoundException");
}

// ---------------------------------------------------------------- restart

#[tokio::test]
async fn versions_aliases_and_policies_survive_a_restart() {
    let mut h = TestServer::start().await;
    let name = function_with_two_versions(&h.client, "persist").await;
    let arn = function_arn(ACCOUNT, &name);
    h.client
        .create_alias()
        .function_name(&name)
        .name("live")
        .function_version("1")
        .routing_config(weights("2", 0.4))
        .send()
        .await
        .unwrap();
    h.client
        .add_permission()
        .function_name(&name)
        .qualifier("1")
        .statement_id("sns")
        .action("lambda:InvokeFunction")
        .principal("sns.amazonaws.com")
        .send()
        .await
        .unwrap();
    update_code(&h.client, &name, handler_zip(&format!("{name}-v3"))).await;
    assert_eq!(publish(&h.client, &name).await, "3");
    h.client
        .delete_function()
        .function_name(&name)
        .qualifier("3")
        .send()
        .await
        .unwrap();

    h.restart().await;
    let c = &h.client;
    let versions = c
        .list_versions_by_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    let numbers: Vec<&str> = versions
        .versions()
        .iter()
        .filter_map(|v| v.version())
        .collect();
    assert_eq!(numbers, ["$LATEST", "1", "2"]);
    let alias = c
        .get_alias()
        .function_name(&name)
        .name("live")
        .send()
        .await
        .unwrap();
    assert_eq!(alias.function_version(), Some("1"));
    assert_eq!(
        alias
            .routing_config()
            .and_then(|r| r.additional_version_weights())
            .and_then(|w| w.get("2")),
        Some(&0.4)
    );
    let policy = c
        .get_policy()
        .function_name(&name)
        .qualifier("1")
        .send()
        .await
        .unwrap();
    assert!(policy.policy().unwrap().contains(&format!("{arn}:1")));
    // Deleted numbers stay used.
    update_code(c, &name, handler_zip(&format!("{name}-v4"))).await;
    assert_eq!(publish(c, &name).await, "4");
}

// ---------------------------------------------------------------- running versions

#[tokio::test]
async fn versions_run_their_own_code_and_weighted_aliases_split() {
    let h = TestServer::start().await;
    let c = &h.client;
    let name = unique_name("ver-run");
    let arn = function_arn(ACCOUNT, &name);
    c.create_function()
        .function_name(&name)
        .runtime(Runtime::Nodejs20x)
        .role(ROLE)
        .handler("index.handler")
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(node_zip("one")))
                .build(),
        )
        .publish(true)
        .send()
        .await
        .unwrap();
    wait_active(c, &name).await;
    let (_, warm) = invoke_json(c, &name, Some("1")).await;
    update_code(c, &name, node_zip("two")).await;
    assert_eq!(publish(c, &name).await, "2");
    update_code(c, &name, node_zip("three")).await;
    // Updating $LATEST leaves the published version's instance warm.
    let (_, again) = invoke_json(c, &name, Some("1")).await;
    assert_eq!(
        again["count"],
        warm["count"].as_u64().unwrap_or_default() + 1
    );

    // Each version runs the code it was published with, $LATEST the newest.
    for (qualifier, tag, version) in [
        (Some("1"), "one", "1"),
        (Some("2"), "two", "2"),
        (None, "three", "$LATEST"),
        (Some("$LATEST"), "three", "$LATEST"),
    ] {
        let (executed, payload) = invoke_json(c, &name, qualifier).await;
        assert_eq!(executed, version);
        assert_eq!(payload["tag"], tag);
        assert_eq!(payload["version"], version);
        let invoked = match qualifier {
            Some(q) => format!("{arn}:{q}"),
            None => arn.clone(),
        };
        assert_eq!(payload["arn"], invoked);
    }

    c.create_alias()
        .function_name(&name)
        .name("canary")
        .function_version("1")
        .routing_config(weights("2", 0.3))
        .send()
        .await
        .unwrap();
    let n = 1000u64;
    let mut on_two = 0u64;
    for _ in 0..n {
        let (executed, payload) = invoke_json(c, &name, Some("canary")).await;
        // The version reported is the version that ran.
        match executed.as_str() {
            "1" => assert_eq!(payload["tag"], "one"),
            "2" => {
                assert_eq!(payload["tag"], "two");
                on_two += 1;
            }
            other => panic!("alias ran version {other}"),
        }
        assert_eq!(payload["arn"], format!("{arn}:canary"));
    }
    let (low, high) = binomial_interval(n, 0.3, 0.001);
    assert!(
        (low..=high).contains(&on_two),
        "{on_two} of {n} on version 2; the 99.9 % interval of Binomial({n}, 0.3) is [{low}, {high}]"
    );

    // Invalid qualifiers are not found.
    failure(
        c.invoke()
            .function_name(&name)
            .qualifier("nosuch")
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        &format!("Function not found: {arn}:nosuch"),
    );
}

#[test]
fn binomial_interval_is_exact() {
    // Binomial(1000, 0.3): mean 300, sd 14.5; the 99.9 % interval is about
    // mean +- 3.29 sd.
    let (low, high) = binomial_interval(1000, 0.3, 0.001);
    assert!((250..=256).contains(&low), "{low}");
    assert!((344..=350).contains(&high), "{high}");
}

#[tokio::test]
async fn list_functions_all_versions_pages_by_version() {
    let h = TestServer::start().await;
    let c = &h.client;
    let a = function_with_two_versions(c, "all-a").await;
    let b = unique_name("all-b");
    create_active(c, &b).await;
    assert_eq!(publish(c, &b).await, "1");
    let mut expected = Vec::new();
    for (name, versions) in [
        (&a, &["$LATEST", "1", "2"][..]),
        (&b, &["$LATEST", "1"][..]),
    ] {
        for v in versions {
            expected.push(format!("{}:{v}", function_arn(ACCOUNT, name)));
        }
    }
    expected.sort_by_key(|arn| {
        // Functions by name, then each function's versions in order.
        let (function, version) = arn.rsplit_once(':').unwrap_or_default();
        let rank = if version == "$LATEST" {
            0
        } else {
            version.parse::<u32>().unwrap_or(u32::MAX)
        };
        (function.to_string(), rank)
    });
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = c
            .list_functions()
            .function_version(FunctionVersion::All)
            .max_items(2)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        assert!(page.functions().len() <= 2);
        seen.extend(
            page.functions()
                .iter()
                .filter_map(|f| f.function_arn().map(str::to_string)),
        );
        match page.next_marker() {
            Some(next) => marker = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn any_update_since_the_last_version_publishes_a_new_one() {
    let h = TestServer::start().await;
    let c = &h.client;
    let name = unique_name("ver-desc");
    create_active(c, &name).await;
    assert_eq!(publish(c, &name).await, "1");
    assert_eq!(publish(c, &name).await, "1");
    update_configuration(c, &name)
        .description("changed")
        .send()
        .await
        .unwrap();
    wait_update_settled(c, &name).await;
    let v2 = publish_version(c, &name).await;
    assert_eq!(v2.version(), Some("2"));
    // Without a Description of its own, the version keeps $LATEST's.
    assert_eq!(v2.description(), Some("changed"));
    assert_eq!(publish(c, &name).await, "2");
}
