//! Issue 4 (layers), shown with the AWS SDK for Rust: publishing, reading,
//! listing and deleting layer versions, their permissions across accounts,
//! functions that reference them (and versions that keep them), every rule
//! with AWS's error type and message, persistence across a restart — and
//! Node.js and Python functions whose dependencies live only in layers.

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use aws_sdk_lambda::operation::add_layer_version_permission::builders::AddLayerVersionPermissionFluentBuilder;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, LayerVersionContentInput, Runtime};
use aws_sdk_lambda::Client;
use harness::*;
use serde_json::json;

// ---------------------------------------------------------------- helpers

fn layer_arn(account: &str, name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{account}:layer:{name}")
}

fn layer_version_arn(account: &str, name: &str, version: i64) -> String {
    format!("{}:{version}", layer_arn(account, name))
}

/// A small layer archive; `tag` makes its bytes (and sha) unique.
fn layer_zip(tag: &str) -> Vec<u8> {
    zip_of(&[(
        "nodejs/node_modules/tagged/index.js",
        format!("module.exports = {tag:?};\n").as_bytes(),
    )])
}

async fn publish_layer(client: &Client, name: &str, zip: Vec<u8>) -> i64 {
    client
        .publish_layer_version()
        .layer_name(name)
        .content(
            LayerVersionContentInput::builder()
                .zip_file(Blob::new(zip))
                .build(),
        )
        .send()
        .await
        .expect("publish layer version")
        .version()
}

async fn layer_versions(client: &Client, name: &str) -> Vec<i64> {
    client
        .list_layer_versions()
        .layer_name(name)
        .send()
        .await
        .expect("list layer versions")
        .layer_versions()
        .iter()
        .map(|v| v.version())
        .collect()
}

async fn function_layers(
    client: &Client,
    name: &str,
    qualifier: Option<&str>,
) -> Vec<(String, i64)> {
    client
        .get_function_configuration()
        .function_name(name)
        .set_qualifier(qualifier.map(str::to_string))
        .send()
        .await
        .expect("get configuration")
        .layers()
        .iter()
        .map(|l| (l.arn().unwrap_or_default().to_string(), l.code_size()))
        .collect()
}

/// A deflated zip of one file of `size` zero bytes, written by hand (fixed
/// Huffman codes: one literal, then back-references of 258 bytes) so that a
/// few hundred MB unzipped cost a few hundred KB and no compression time.
fn zeros_zip(name: &str, size: u64) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        len: u32,
    }
    impl Bits {
        fn put(&mut self, value: u64, bits: u32) {
            self.acc |= value << self.len;
            self.len += bits;
            while self.len >= 8 {
                self.out.push(self.acc.to_le_bytes()[0]); // the low byte
                self.acc >>= 8;
                self.len -= 8;
            }
        }
        /// A Huffman code, most significant bit first.
        fn code(&mut self, code: u64, bits: u32) {
            let reversed = (0..bits).fold(0, |r, i| r | ((code >> i) & 1) << (bits - 1 - i));
            self.put(reversed, bits);
        }
    }
    let mut bits = Bits {
        out: Vec::new(),
        acc: 0,
        len: 0,
    };
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // BTYPE = fixed Huffman
    let literal_zero = |b: &mut Bits| b.code(0x30, 8);
    literal_zero(&mut bits);
    let rest = size - 1;
    for _ in 0..rest / 258 {
        bits.code(0xC5, 8); // length 258 (symbol 285)
        bits.code(0, 5); // distance 1
    }
    for _ in 0..rest % 258 {
        literal_zero(&mut bits);
    }
    bits.code(0, 7); // end of block
    if bits.len > 0 {
        bits.out.push(bits.acc.to_le_bytes()[0]); // the low byte
    }
    let data = bits.out;
    // CRC-32 of `size` zero bytes.
    let table: Vec<u32> = (0..256u32)
        .map(|n| {
            (0..8).fold(n, |c, _| {
                if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                }
            })
        })
        .collect();
    let mut crc = 0xFFFF_FFFFu32;
    for _ in 0..size {
        crc = table[(crc & 0xFF) as usize] ^ (crc >> 8);
    }
    let crc = !crc;
    let size = u32::try_from(size).expect("below 4 GB");
    let compressed = u32::try_from(data.len()).expect("small");
    let mut zip = Vec::new();
    let header = |zip: &mut Vec<u8>, central: bool| {
        zip.extend_from_slice(if central {
            &[0x50, 0x4b, 0x01, 0x02]
        } else {
            &[0x50, 0x4b, 0x03, 0x04]
        });
        if central {
            zip.extend_from_slice(&20u16.to_le_bytes()); // made by
        }
        zip.extend_from_slice(&20u16.to_le_bytes()); // needed
        zip.extend_from_slice(&0u16.to_le_bytes()); // flags
        zip.extend_from_slice(&8u16.to_le_bytes()); // deflate
        zip.extend_from_slice(&0u32.to_le_bytes()); // time, date
        zip.extend_from_slice(&crc.to_le_bytes());
        zip.extend_from_slice(&compressed.to_le_bytes());
        zip.extend_from_slice(&size.to_le_bytes());
        zip.extend_from_slice(&u16::try_from(name.len()).expect("short name").to_le_bytes());
        zip.extend_from_slice(&0u16.to_le_bytes()); // extra
        if central {
            zip.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
            zip.extend_from_slice(&0u32.to_le_bytes()); // external attributes
            zip.extend_from_slice(&0u32.to_le_bytes()); // local header offset
        }
        zip.extend_from_slice(name.as_bytes());
    };
    header(&mut zip, false);
    zip.extend_from_slice(&data);
    let central_start = u32::try_from(zip.len()).expect("small");
    header(&mut zip, true);
    let central_size = u32::try_from(zip.len()).expect("small") - central_start;
    zip.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0]);
    zip.extend_from_slice(&central_size.to_le_bytes());
    zip.extend_from_slice(&central_start.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    zip
}

// ------------------------------------------------------------- lifecycle

/// AddLayerVersionPermission granting `principal` GetLayerVersion on one
/// version, to send (or to add conditions to).
fn grant_read(
    client: &Client,
    layer: &str,
    version: i64,
    statement_id: &str,
    principal: &str,
) -> AddLayerVersionPermissionFluentBuilder {
    client
        .add_layer_version_permission()
        .layer_name(layer)
        .version_number(version)
        .statement_id(statement_id)
        .action("lambda:GetLayerVersion")
        .principal(principal)
}

#[tokio::test]
async fn publish_get_and_download_a_layer_version() {
    let h = TestServer::start().await;
    let name = unique_name("deps");
    let zip = layer_zip("one");
    let out = h
        .client
        .publish_layer_version()
        .layer_name(&name)
        .description("shared deps")
        .license_info("MIT")
        .compatible_runtimes(Runtime::Nodejs20x)
        .compatible_runtimes(Runtime::Python312)
        .compatible_architectures(Architecture::X8664)
        .content(
            LayerVersionContentInput::builder()
                .zip_file(Blob::new(zip.clone()))
                .build(),
        )
        .send()
        .await
        .expect("publish");
    assert_eq!(out.version(), 1);
    assert_eq!(out.layer_arn(), Some(layer_arn(ACCOUNT, &name).as_str()));
    assert_eq!(
        out.layer_version_arn(),
        Some(layer_version_arn(ACCOUNT, &name, 1).as_str())
    );
    assert_eq!(out.description(), Some("shared deps"));
    assert_eq!(out.license_info(), Some("MIT"));
    assert_eq!(
        out.compatible_runtimes(),
        [Runtime::Nodejs20x, Runtime::Python312]
    );
    assert_eq!(out.compatible_architectures(), [Architecture::X8664]);
    let created = out.created_date().expect("CreatedDate");
    chrono::NaiveDateTime::parse_from_str(created, "%Y-%m-%dT%H:%M:%S%.3f+0000")
        .unwrap_or_else(|e| panic!("CreatedDate {created}: {e}"));
    let content = out.content().expect("Content");
    assert_eq!(content.code_sha256(), Some(sha256_base64(&zip).as_str()));
    assert_eq!(content.code_size(), i64::try_from(zip.len()).unwrap());

    // Content.Location is a presigned URL that serves the archive unsigned.
    let got = h
        .client
        .get_layer_version()
        .layer_name(&name)
        .version_number(1)
        .send()
        .await
        .expect("get layer version");
    assert_eq!(got.layer_version_arn(), out.layer_version_arn());
    assert_eq!(got.created_date(), out.created_date());
    let location = got.content().and_then(|c| c.location()).expect("Location");
    let downloaded = reqwest::get(location).await.expect("download");
    assert_eq!(downloaded.status().as_u16(), 200);
    assert_eq!(
        downloaded.bytes().await.expect("bytes").as_ref(),
        zip.as_slice()
    );

    // By ARN, and by the layer's ARN as its name.
    let by_arn = h
        .client
        .get_layer_version_by_arn()
        .arn(layer_version_arn(ACCOUNT, &name, 1))
        .send()
        .await
        .expect("get by arn");
    assert_eq!(by_arn.version(), 1);
    assert_eq!(by_arn.description(), Some("shared deps"));
    let by_layer_arn = h
        .client
        .get_layer_version()
        .layer_name(layer_arn(ACCOUNT, &name))
        .version_number(1)
        .send()
        .await
        .expect("get by layer arn");
    assert_eq!(by_layer_arn.version(), 1);
}

#[tokio::test]
async fn version_numbers_are_never_reused_after_deletion() {
    let h = TestServer::start().await;
    let name = unique_name("numbers");
    assert_eq!(publish_layer(&h.client, &name, layer_zip("a")).await, 1);
    assert_eq!(publish_layer(&h.client, &name, layer_zip("b")).await, 2);
    assert_eq!(layer_versions(&h.client, &name).await, vec![2, 1]);
    h.client
        .delete_layer_version()
        .layer_name(&name)
        .version_number(2)
        .send()
        .await
        .expect("delete version 2");
    failure(
        h.client
            .get_layer_version()
            .layer_name(&name)
            .version_number(2)
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        &format!(
            "Layer version {} does not exist.",
            layer_version_arn(ACCOUNT, &name, 2)
        ),
    );
    assert_eq!(layer_versions(&h.client, &name).await, vec![1]);
    assert_eq!(publish_layer(&h.client, &name, layer_zip("c")).await, 3);
    // Deleting every version leaves the numbering where it was.
    for version in [1, 3] {
        h.client
            .delete_layer_version()
            .layer_name(&name)
            .version_number(version)
            .send()
            .await
            .expect("delete");
    }
    assert!(layer_versions(&h.client, &name).await.is_empty());
    assert_eq!(publish_layer(&h.client, &name, layer_zip("d")).await, 4);
}

#[tokio::test]
async fn deleting_a_version_that_does_not_exist_succeeds() {
    let h = TestServer::start().await;
    h.client
        .delete_layer_version()
        .layer_name(unique_name("never"))
        .version_number(7)
        .send()
        .await
        .expect("delete of nothing is a success");
}

#[tokio::test]
async fn list_layers_shows_the_latest_matching_version_per_layer() {
    let h = TestServer::start().await;
    let name = unique_name("matching");
    let publish = |runtime: Runtime, arch: Architecture, tag: &'static str| {
        h.client
            .publish_layer_version()
            .layer_name(&name)
            .compatible_runtimes(runtime)
            .compatible_architectures(arch)
            .content(
                LayerVersionContentInput::builder()
                    .zip_file(Blob::new(layer_zip(tag)))
                    .build(),
            )
            .send()
    };
    publish(Runtime::Nodejs20x, Architecture::X8664, "n")
        .await
        .expect("v1");
    publish(Runtime::Python312, Architecture::Arm64, "p")
        .await
        .expect("v2");
    let latest = |layers: &[aws_sdk_lambda::types::LayersListItem]| {
        layers
            .iter()
            .find(|l| l.layer_name() == Some(name.as_str()))
            .and_then(|l| l.latest_matching_version())
            .map(|v| v.version())
    };
    let all = h.client.list_layers().send().await.expect("list layers");
    assert_eq!(latest(all.layers()), Some(2));
    let item = all
        .layers()
        .iter()
        .find(|l| l.layer_name() == Some(name.as_str()))
        .expect("listed");
    assert_eq!(item.layer_arn(), Some(layer_arn(ACCOUNT, &name).as_str()));
    let node = h
        .client
        .list_layers()
        .compatible_runtime(Runtime::Nodejs20x)
        .send()
        .await
        .expect("list by runtime");
    assert_eq!(latest(node.layers()), Some(1));
    let arm = h
        .client
        .list_layers()
        .compatible_architecture(Architecture::Arm64)
        .send()
        .await
        .expect("list by architecture");
    assert_eq!(latest(arm.layers()), Some(2));
    let none = h
        .client
        .list_layers()
        .compatible_runtime(Runtime::Java21)
        .send()
        .await
        .expect("list by another runtime");
    assert_eq!(latest(none.layers()), None);
    let versions = h
        .client
        .list_layer_versions()
        .layer_name(&name)
        .compatible_runtime(Runtime::Python312)
        .send()
        .await
        .expect("list versions by runtime");
    let numbers: Vec<i64> = versions
        .layer_versions()
        .iter()
        .map(|v| v.version())
        .collect();
    assert_eq!(numbers, vec![2]);
}

#[tokio::test]
async fn listings_page_with_marker_and_max_items() {
    let h = TestServer::start().await;
    let prefix = unique_name("paged");
    for i in 0..3 {
        publish_layer(
            &h.client,
            &format!("{prefix}-{i}"),
            layer_zip(&format!("{prefix}{i}")),
        )
        .await;
    }
    let first = h
        .client
        .list_layers()
        .max_items(2)
        .send()
        .await
        .expect("page 1");
    assert_eq!(first.layers().len(), 2);
    let marker = first.next_marker().expect("NextMarker").to_string();
    let second = h
        .client
        .list_layers()
        .max_items(2)
        .marker(marker)
        .send()
        .await
        .expect("page 2");
    assert_eq!(second.layers().len(), 1);
    assert_eq!(second.next_marker(), None);
    let names: Vec<&str> = first
        .layers()
        .iter()
        .chain(second.layers())
        .filter_map(|l| l.layer_name())
        .collect();
    assert_eq!(
        names,
        [
            format!("{prefix}-0"),
            format!("{prefix}-1"),
            format!("{prefix}-2")
        ]
    );

    let name = format!("{prefix}-0");
    for tag in ["x", "y"] {
        publish_layer(&h.client, &name, layer_zip(tag)).await;
    }
    let page = h
        .client
        .list_layer_versions()
        .layer_name(&name)
        .max_items(2)
        .send()
        .await
        .expect("versions page 1");
    let numbers: Vec<i64> = page.layer_versions().iter().map(|v| v.version()).collect();
    assert_eq!(numbers, vec![3, 2]);
    let rest = h
        .client
        .list_layer_versions()
        .layer_name(&name)
        .marker(page.next_marker().expect("NextMarker"))
        .send()
        .await
        .expect("versions page 2");
    let numbers: Vec<i64> = rest.layer_versions().iter().map(|v| v.version()).collect();
    assert_eq!(numbers, vec![1]);
    assert_eq!(rest.next_marker(), None);
}

// ------------------------------------------------------------- errors

#[tokio::test]
async fn layer_requests_are_checked_as_aws_checks_them() {
    let h = TestServer::start().await;
    let name = unique_name("errors");
    publish_layer(&h.client, &name, layer_zip("e")).await;

    failure(
        h.client
            .get_layer_version()
            .layer_name(&name)
            .version_number(9)
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        &format!(
            "Layer version {} does not exist.",
            layer_version_arn(ACCOUNT, &name, 9)
        ),
    );
    failure(
        h.client
            .get_layer_version()
            .layer_name(&name)
            .version_number(0)
            .send()
            .await,
    )
    .assert(
        400,
        "InvalidParameterValueException",
        "Layer Version Cannot be less than 1",
    );
    failure(
        h.client
            .get_layer_version_by_arn()
            .arn(layer_arn(ACCOUNT, &name))
            .send()
            .await,
    )
    .assert(
        400,
        "ValidationException",
        &format!(
            "1 validation error detected: Value '{}' at 'arn' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{{2}}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{{1}}:\\d{{12}}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)",
            layer_arn(ACCOUNT, &name)
        ),
    );
    let invalid = failure(
        h.client
            .publish_layer_version()
            .layer_name(&name)
            .compatible_runtimes(Runtime::from("invalidruntime"))
            .compatible_architectures(Architecture::from("invalidarch"))
            .content(
                LayerVersionContentInput::builder()
                    .zip_file(Blob::new(layer_zip("i")))
                    .build(),
            )
            .send()
            .await,
    );
    invalid.assert(
        400,
        "ValidationException",
        "2 validation errors detected: Value '[invalidruntime]' at 'compatibleRuntimes' failed to satisfy constraint: Member must satisfy enum value set: [nodejs20.x, python3.14, provided.al2023, python3.12, python3.13, nodejs24.x, nodejs22.x, java25, python3.10, python3.11, java21, ruby3.3, ruby3.4, ruby3.2, python3.8, python3.9, java17, nodejs16.x, dotnet10, dotnet8, java11, dotnet6, nodejs18.x, provided.al2, java8.al2]; Value '[invalidarch]' at 'compatibleArchitectures' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]",
    );
    failure(
        h.client
            .list_layers()
            .compatible_architecture(Architecture::from("archdoesnotexist"))
            .send()
            .await,
    )
    .assert(
        400,
        "ValidationException",
        "1 validation error detected: Value 'archdoesnotexist' at 'compatibleArchitecture' failed to satisfy constraint: Member must satisfy enum value set: [x86_64, arm64]",
    );
    let bad_runtime = failure(
        h.client
            .list_layers()
            .compatible_runtime(Runtime::from("runtimedoesnotexist"))
            .send()
            .await,
    );
    bad_runtime.assert_code(400, "ValidationException");
    assert!(bad_runtime.message().starts_with(
        "1 validation error detected: Value 'runtimedoesnotexist' at 'compatibleRuntime' failed to satisfy constraint: Member must satisfy enum value set: [ruby3.5, ruby2.6, dotnetcore1.0,"
    ));
    failure(h.client.list_layers().max_items(51).send().await).assert(
        400,
        "ValidationException",
        "1 validation error detected: Value '51' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 50",
    );
    failure(
        h.client
            .publish_layer_version()
            .layer_name(&name)
            .content(
                LayerVersionContentInput::builder()
                    .zip_file(Blob::new(b"not a zip".to_vec()))
                    .build(),
            )
            .send()
            .await,
    )
    .assert(
        400,
        "InvalidParameterValueException",
        "Could not unzip uploaded file. Please check your file, then try to upload again.",
    );
    // S3 sources: a bucket that does not exist.
    failure(
        h.client
            .publish_layer_version()
            .layer_name(&name)
            .content(
                LayerVersionContentInput::builder()
                    .s3_bucket("my-bucket")
                    .s3_key("layer.zip")
                    .build(),
            )
            .send()
            .await,
    )
    .assert(
        400,
        "InvalidParameterValueException",
        "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: The specified bucket does not exist",
    );
    // Content that names no source, and no Content at all.
    let path = format!("/2018-10-31/layers/{name}/versions");
    let empty = h.raw("POST", &path, br#"{"Content": {}}"#).await;
    assert_eq!(empty.status, 400);
    assert_eq!(
        empty.body,
        json!({"Type": "User", "message": "Missing Content"})
    );
    let absent = h.raw("POST", &path, b"{}").await;
    assert_eq!(absent.status, 400);
    assert_eq!(
        absent.error_type_header.as_deref(),
        Some("ValidationException")
    );
    assert_eq!(
        absent.body["message"],
        "1 validation error detected: Value null at 'content' failed to satisfy constraint: Member must not be null"
    );
    // An invalid layer name.
    let bad_name = h
        .raw("GET", "/2018-10-31/layers/bad.name/versions", b"")
        .await;
    assert_eq!(bad_name.status, 400);
    assert_eq!(
        bad_name.error_type_header.as_deref(),
        Some("ValidationException")
    );
}

#[tokio::test]
async fn layer_version_permissions_follow_aws_rules() {
    let h = TestServer::start().await;
    let name = unique_name("policy");
    publish_layer(&h.client, &name, layer_zip("p")).await;
    let arn = layer_version_arn(ACCOUNT, &name, 1);

    failure(
        h.client
            .get_layer_version_policy()
            .layer_name(&name)
            .version_number(1)
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        "No policy is associated with the given resource.",
    );
    let added = grant_read(&h.client, &name, 1, "xaccount", "123456789012")
        .send()
        .await
        .expect("add permission");
    let statement: serde_json::Value =
        serde_json::from_str(added.statement().expect("Statement")).expect("statement is JSON");
    assert_eq!(
        statement,
        json!({
            "Sid": "xaccount",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "lambda:GetLayerVersion",
            "Resource": arn,
        })
    );
    let revision = added.revision_id().expect("RevisionId").to_string();
    let org = grant_read(&h.client, &name, 1, "org", "*")
        .organization_id("o-abcdefghij")
        .revision_id(&revision)
        .send()
        .await
        .expect("add organization permission");
    let statement: serde_json::Value =
        serde_json::from_str(org.statement().expect("Statement")).expect("JSON");
    assert_eq!(statement["Principal"], "*");
    assert_eq!(
        statement["Condition"],
        json!({"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}})
    );
    let policy = h
        .client
        .get_layer_version_policy()
        .layer_name(&name)
        .version_number(1)
        .send()
        .await
        .expect("get policy");
    assert_eq!(policy.revision_id(), org.revision_id());
    let document: serde_json::Value =
        serde_json::from_str(policy.policy().expect("Policy")).expect("JSON");
    assert_eq!(document["Version"], "2012-10-17");
    assert_eq!(document["Id"], "default");
    assert_eq!(document["Statement"].as_array().map(Vec::len), Some(2));

    // Rules, each with AWS's answer.
    failure(
        grant_read(&h.client, &name, 1, "xaccount", "*")
            .send()
            .await,
    )
    .assert(
        409,
        "ResourceConflictException",
        "The statement id (xaccount) provided already exists. Please provide a new statement id, or remove the existing statement.",
    );
    failure(
        h.client
            .add_layer_version_permission()
            .layer_name(&name)
            .version_number(1)
            .statement_id("s2")
            .action("*")
            .principal("*")
            .send()
            .await,
    )
    .assert(
        400,
        "ValidationException",
        "1 validation error detected: Value '*' at 'action' failed to satisfy constraint: Member must satisfy regular expression pattern: lambda:GetLayerVersion",
    );
    failure(
        grant_read(&h.client, &name, 1, "s3", "*")
            .revision_id(&revision)
            .send()
            .await,
    )
    .assert(
        412,
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. Call the GetLayerPolicy API to retrieve the latest Revision Id",
    );
    failure(grant_read(&h.client, &name, 2, "s4", "*").send().await).assert(
        404,
        "ResourceNotFoundException",
        &format!(
            "Layer version {} does not exist.",
            layer_version_arn(ACCOUNT, &name, 2)
        ),
    );
    failure(
        h.client
            .remove_layer_version_permission()
            .layer_name(&name)
            .version_number(1)
            .statement_id("doesnotexist")
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        "Statement doesnotexist is not found in resource policy.",
    );
    failure(
        h.client
            .remove_layer_version_permission()
            .layer_name(&name)
            .version_number(1)
            .statement_id("org")
            .revision_id(&revision)
            .send()
            .await,
    )
    .assert(
        412,
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. Call the GetLayerPolicy API to retrieve the latest Revision Id",
    );
    for sid in ["org", "xaccount"] {
        h.client
            .remove_layer_version_permission()
            .layer_name(&name)
            .version_number(1)
            .statement_id(sid)
            .send()
            .await
            .expect("remove permission");
    }
    failure(
        h.client
            .get_layer_version_policy()
            .layer_name(&name)
            .version_number(1)
            .send()
            .await,
    )
    .assert(
        404,
        "ResourceNotFoundException",
        "No policy is associated with the given resource.",
    );
}

// ------------------------------------------------- functions and layers

#[tokio::test]
async fn functions_reference_layers_and_versions_keep_theirs() {
    let h = TestServer::start().await;
    let layer = unique_name("fnlayer");
    let zip1 = layer_zip("v1");
    let zip2 = layer_zip("version-two");
    publish_layer(&h.client, &layer, zip1.clone()).await;
    publish_layer(&h.client, &layer, zip2.clone()).await;
    let v1 = layer_version_arn(ACCOUNT, &layer, 1);
    let v2 = layer_version_arn(ACCOUNT, &layer, 2);

    let name = unique_name("uses-layer");
    let created = create_builder(&h.client, &name, handler_zip(&name))
        .layers(&v1)
        .send()
        .await
        .expect("create with a layer");
    let shown: Vec<(Option<&str>, i64)> = created
        .layers()
        .iter()
        .map(|l| (l.arn(), l.code_size()))
        .collect();
    assert_eq!(
        shown,
        vec![(Some(v1.as_str()), i64::try_from(zip1.len()).unwrap())]
    );
    wait_active(&h.client, &name).await;
    let published = publish_version(&h.client, &name).await;
    assert_eq!(published.version(), Some("1"));

    update_configuration(&h.client, &name)
        .layers(&v2)
        .send()
        .await
        .expect("update layers");
    wait_update_settled(&h.client, &name).await;
    assert_eq!(
        function_layers(&h.client, &name, None).await,
        vec![(v2.clone(), i64::try_from(zip2.len()).unwrap())]
    );
    assert_eq!(
        function_layers(&h.client, &name, Some("1")).await,
        vec![(v1.clone(), i64::try_from(zip1.len()).unwrap())]
    );
    let get = get_function(&h.client, &name).await;
    assert_eq!(get.configuration().map(|c| c.layers().len()), Some(1));

    // Deleting a version a function uses does not break the function.
    h.client
        .delete_layer_version()
        .layer_name(&layer)
        .version_number(2)
        .send()
        .await
        .expect("delete layer version");
    assert_eq!(
        function_layers(&h.client, &name, None).await,
        vec![(v2, i64::try_from(zip2.len()).unwrap())]
    );

    // An empty list removes every layer.
    update_configuration(&h.client, &name)
        .set_layers(Some(Vec::new()))
        .send()
        .await
        .expect("remove layers");
    wait_update_settled(&h.client, &name).await;
    assert!(function_layers(&h.client, &name, None).await.is_empty());
    let raw = h
        .raw(
            "GET",
            &format!("/2015-03-31/functions/{name}/configuration"),
            b"",
        )
        .await;
    assert!(raw.body.get("Layers").is_none(), "{}", raw.body);
}

#[tokio::test]
async fn function_layer_references_are_checked_as_aws_checks_them() {
    let h = TestServer::start().await;
    let layer = unique_name("refs");
    publish_layer(&h.client, &layer, layer_zip("r1")).await;
    publish_layer(&h.client, &layer, layer_zip("r2")).await;
    let v1 = layer_version_arn(ACCOUNT, &layer, 1);
    let v2 = layer_version_arn(ACCOUNT, &layer, 2);
    let create = |layers: Vec<String>| {
        let name = unique_name("refuser");
        create_builder(&h.client, &name, handler_zip(&name))
            .set_layers(Some(layers))
            .send()
    };

    let six: Vec<String> = (0..6)
        .map(|i| layer_version_arn(ACCOUNT, &format!("l{i}"), 1))
        .collect();
    failure(create(six).await).assert(
        400,
        "InvalidParameterValueException",
        "Cannot reference more than 5 layers.",
    );
    let missing = layer_version_arn(ACCOUNT, &layer, 9);
    failure(create(vec![missing.clone()]).await).assert(
        400,
        "InvalidParameterValueException",
        &format!("Layer version {missing} does not exist."),
    );
    let unknown = layer_version_arn(ACCOUNT, "doesnotexist", 1);
    failure(create(vec![unknown.clone()]).await).assert(
        400,
        "InvalidParameterValueException",
        &format!("Layer version {unknown} does not exist."),
    );
    failure(create(vec![v1.clone(), v2.clone()]).await).assert(
        400,
        "InvalidParameterValueException",
        &format!("Two different versions of the same layer are not allowed to be referenced in the same function. {v1} and {v2} are versions of the same layer."),
    );
    failure(create(vec![v1.clone(), v1.clone()]).await).assert(
        400,
        "InvalidParameterValueException",
        &format!("Two different versions of the same layer are not allowed to be referenced in the same function. {v1} and {v1} are versions of the same layer."),
    );
    let elsewhere = format!("arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:{layer}:1");
    failure(create(vec![elsewhere]).await).assert(
        400,
        "InvalidParameterValueException",
        &format!("Layers are not in the same region as the function. Layers are expected to be in region {REGION}."),
    );
    let unversioned = layer_arn(ACCOUNT, &layer);
    failure(create(vec![unversioned.clone()]).await).assert(
        400,
        "ValidationException",
        &format!("1 validation error detected: Value '[{unversioned}]' at 'layers' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 2048, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{{2}}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{{1}}:\\d{{12}}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+), Member must not be null]"),
    );
    // The same rules on UpdateFunctionConfiguration.
    let name = unique_name("refupdate");
    create_active(&h.client, &name).await;
    failure(
        update_configuration(&h.client, &name)
            .layers(&missing)
            .send()
            .await,
    )
    .assert(
        400,
        "InvalidParameterValueException",
        &format!("Layer version {missing} does not exist."),
    );
    assert!(function_layers(&h.client, &name, None).await.is_empty());
}

#[tokio::test]
async fn function_code_and_layers_together_stay_within_250_mb_unzipped() {
    let h = TestServer::start().await;
    let layer = unique_name("big");
    let layer_size: u64 = 200 * 1024 * 1024;
    publish_layer(&h.client, &layer, zeros_zip("python/big.bin", layer_size)).await;
    let arn = layer_version_arn(ACCOUNT, &layer, 1);
    let code = zeros_zip("index.js", 62_200_000);
    let name = unique_name("too-big");
    let refused = failure(
        create_builder(&h.client, &name, code.clone())
            .layers(&arn)
            .send()
            .await,
    );
    refused.assert(
        400,
        "InvalidParameterValueException",
        &format!(
            "Function code combined with layers exceeds the maximum allowed size of 262144000 bytes. The actual size is {} bytes.",
            layer_size + 62_200_000
        ),
    );
    // Without the layer the same code is fine; adding the layer later is not.
    create_builder(&h.client, &name, code)
        .send()
        .await
        .expect("create without layer");
    wait_active(&h.client, &name).await;
    failure(
        update_configuration(&h.client, &name)
            .layers(&arn)
            .send()
            .await,
    )
    .assert_code(400, "InvalidParameterValueException");
}

// ------------------------------------------------------- cross-account

#[tokio::test]
async fn another_account_uses_a_layer_version_only_when_granted() {
    let h = TestServer::start().await;
    let (second, other) = h.second_account().await;
    let layer = unique_name("shared");
    let zip = layer_zip("shared");
    publish_layer(&h.client, &layer, zip.clone()).await;
    let arn = layer_version_arn(ACCOUNT, &layer, 1);
    let denied = format!(
        "User: arn:aws:iam::{second}:root is not authorized to perform: lambda:GetLayerVersion on resource: {arn} because no resource-based policy allows the lambda:GetLayerVersion action"
    );
    failure(other.get_layer_version_by_arn().arn(&arn).send().await).assert(
        403,
        "AccessDeniedException",
        &denied,
    );
    failure(
        other
            .get_layer_version()
            .layer_name(layer_arn(ACCOUNT, &layer))
            .version_number(1)
            .send()
            .await,
    )
    .assert(403, "AccessDeniedException", &denied);
    let name = unique_name("borrower");
    let role = format!("arn:aws:iam::{second}:role/lambda-role");
    let create = || {
        other
            .create_function()
            .function_name(&name)
            .runtime(RUNTIME)
            .role(&role)
            .handler("index.handler")
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(Blob::new(handler_zip(&name)))
                    .build(),
            )
            .layers(&arn)
            .send()
    };
    failure(create().await).assert(403, "AccessDeniedException", &denied);
    // Layers of another account are not listed, nor changed by it.
    let listed = other.list_layers().send().await.expect("list");
    assert!(listed
        .layers()
        .iter()
        .all(|l| l.layer_name() != Some(layer.as_str())));
    failure(
        other
            .delete_layer_version()
            .layer_name(layer_arn(ACCOUNT, &layer))
            .version_number(1)
            .send()
            .await,
    )
    .assert_code(403, "AccessDeniedException");

    grant_read(&h.client, &layer, 1, "second", &second)
        .send()
        .await
        .expect("grant the second account");
    let seen = other
        .get_layer_version_by_arn()
        .arn(&arn)
        .send()
        .await
        .expect("granted read");
    assert_eq!(
        seen.content().map(|c| c.code_size()),
        Some(i64::try_from(zip.len()).unwrap())
    );
    let created = create().await.expect("create with a granted layer");
    let shown: Vec<Option<&str>> = created.layers().iter().map(|l| l.arn()).collect();
    assert_eq!(shown, vec![Some(arn.as_str())]);

    h.client
        .remove_layer_version_permission()
        .layer_name(&layer)
        .version_number(1)
        .statement_id("second")
        .send()
        .await
        .expect("revoke");
    failure(other.get_layer_version_by_arn().arn(&arn).send().await).assert(
        403,
        "AccessDeniedException",
        &denied,
    );
    // A grant to everyone works the same.
    grant_read(&h.client, &layer, 1, "public", "*")
        .send()
        .await
        .expect("grant everyone");
    other
        .get_layer_version_by_arn()
        .arn(&arn)
        .send()
        .await
        .expect("public read");
}

// ------------------------------------------------------------ restart

#[tokio::test]
async fn layers_permissions_and_function_references_survive_a_restart() {
    let mut h = TestServer::start().await;
    let layer = unique_name("durable");
    publish_layer(&h.client, &layer, layer_zip("d1")).await;
    publish_layer(&h.client, &layer, layer_zip("d2")).await;
    h.client
        .delete_layer_version()
        .layer_name(&layer)
        .version_number(2)
        .send()
        .await
        .expect("delete v2");
    let added = grant_read(&h.client, &layer, 1, "keep", "*")
        .send()
        .await
        .expect("add permission");
    let v1 = layer_version_arn(ACCOUNT, &layer, 1);
    let name = unique_name("durable-fn");
    create_builder(&h.client, &name, handler_zip(&name))
        .layers(&v1)
        .send()
        .await
        .expect("create");
    wait_active(&h.client, &name).await;
    publish_version(&h.client, &name).await;

    h.restart().await;

    assert_eq!(layer_versions(&h.client, &layer).await, vec![1]);
    let policy = h
        .client
        .get_layer_version_policy()
        .layer_name(&layer)
        .version_number(1)
        .send()
        .await
        .expect("policy after restart");
    assert_eq!(policy.revision_id(), added.revision_id());
    assert_eq!(function_layers(&h.client, &name, None).await.len(), 1);
    assert_eq!(function_layers(&h.client, &name, Some("1")).await[0].0, v1);
    assert_eq!(publish_layer(&h.client, &layer, layer_zip("d3")).await, 3);
}

// ------------------------------------------------- functions that run

const NODE_HANDLER: &str = r#"
const greeting = require('greeting');
const { origin } = require('shared-file');
exports.handler = async () => ({ greeting: greeting('layers'), origin, nodePath: process.env.NODE_PATH });
"#;

const PYTHON_HANDLER: &str = r#"
import os
import greeting
import shared_file

def handler(event, context):
    return {"greeting": greeting.greet("layers"), "origin": shared_file.ORIGIN, "path": os.environ.get("PATH")}
"#;

async fn publish_on(client: &Client, name: &str, files: &[(&str, &[u8])]) -> String {
    let zip = zip_of(files);
    let version = client
        .publish_layer_version()
        .layer_name(name)
        .content(
            LayerVersionContentInput::builder()
                .zip_file(Blob::new(zip))
                .build(),
        )
        .send()
        .await
        .expect("publish layer")
        .version();
    layer_version_arn(ACCOUNT, name, version)
}

async fn deploy_with_layers(
    client: &Client,
    name: &str,
    runtime: Runtime,
    handler: &str,
    code: Vec<u8>,
    layers: Vec<String>,
) {
    FunctionSpec::new(runtime, handler, code)
        .create_request(client, name)
        .set_layers(Some(layers))
        .send()
        .await
        .expect("create function with layers");
    wait_active(client, name).await;
}

/// Two Node.js layers: `greeting` and `shared-file` in the first
/// (`base_name`), `shared-file` again in the second (`over_prefix`), whose
/// copy wins. Their version ARNs.
async fn publish_node_layers(
    client: &Client,
    base_name: &str,
    over_prefix: &str,
) -> (String, String) {
    let base = publish_on(
        client,
        base_name,
        &[
            (
                "nodejs/node_modules/greeting/index.js",
                b"module.exports = (who) => `hello ${who} from a layer`;\n",
            ),
            (
                "nodejs/node_modules/shared-file/index.js",
                b"exports.origin = 'first layer';\n",
            ),
        ],
    )
    .await;
    let over = publish_on(
        client,
        &unique_name(over_prefix),
        &[(
            "nodejs/node_modules/shared-file/index.js",
            b"exports.origin = 'second layer';\n",
        )],
    )
    .await;
    (base, over)
}

/// A Node.js function running [`NODE_HANDLER`] with `layers`, Active.
async fn deploy_node_with_layers(client: &Client, name: &str, layers: Vec<String>) {
    let code = zip_of(&[("index.js", NODE_HANDLER.as_bytes())]);
    deploy_with_layers(
        client,
        name,
        Runtime::Nodejs20x,
        "index.handler",
        code,
        layers,
    )
    .await;
}

#[tokio::test]
async fn a_nodejs_function_runs_with_packages_only_in_layers() {
    let engine = TestServer::start_own_runtimes().await;
    let client = &engine.client;
    let base_name = unique_name("node-base");
    let (base, over) = publish_node_layers(client, &base_name, "node-over").await;
    let name = unique_name("node-layers");
    deploy_node_with_layers(client, &name, vec![base.clone(), over]).await;
    let out = invoke(client, &name, json!({})).await.ok();
    assert_eq!(out["greeting"], "hello layers from a layer");
    assert_eq!(out["origin"], "second layer", "the later layer's file wins");
    assert!(
        out["nodePath"]
            .as_str()
            .is_some_and(|p| p.contains("/opt/nodejs/node_modules")),
        "{out}"
    );

    // A function with only the first layer sees the first layer's file, and
    // keeps running after that layer version is deleted.
    let single = unique_name("node-one-layer");
    let code = zip_of(&[("index.js", NODE_HANDLER.as_bytes())]);
    deploy_with_layers(
        client,
        &single,
        Runtime::Nodejs20x,
        "index.handler",
        code,
        vec![base.clone()],
    )
    .await;
    client
        .delete_layer_version()
        .layer_name(&base_name)
        .version_number(1)
        .send()
        .await
        .expect("delete the layer version");
    let out = invoke(client, &single, json!({})).await.ok();
    assert_eq!(out["origin"], "first layer");

    // Without the layers the package is missing: the code does not carry it.
    let bare = unique_name("node-no-layers");
    let code = zip_of(&[("index.js", NODE_HANDLER.as_bytes())]);
    deploy_with_layers(
        client,
        &bare,
        Runtime::Nodejs20x,
        "index.handler",
        code,
        Vec::new(),
    )
    .await;
    let failed = invoke(client, &bare, json!({})).await.unhandled();
    assert!(failed.to_string().contains("greeting"), "{failed}");
    engine.stop().await;
}

#[tokio::test]
async fn a_python_function_runs_with_packages_only_in_layers() {
    let engine = TestServer::start_own_runtimes().await;
    let client = &engine.client;
    let base = publish_on(
        client,
        &unique_name("py-base"),
        &[
            (
                "python/greeting/__init__.py",
                b"def greet(who):\n    return 'hello %s from a layer' % who\n",
            ),
            ("python/shared_file.py", b"ORIGIN = 'first layer'\n"),
            ("bin/layer-tool", b"#!/bin/sh\necho tool\n"),
        ],
    )
    .await;
    let over = publish_on(
        client,
        &unique_name("py-over"),
        &[("python/shared_file.py", b"ORIGIN = 'second layer'\n")],
    )
    .await;
    let name = unique_name("py-layers");
    let code = zip_of(&[("lambda_function.py", PYTHON_HANDLER.as_bytes())]);
    deploy_with_layers(
        client,
        &name,
        Runtime::Python312,
        "lambda_function.handler",
        code,
        vec![base, over],
    )
    .await;
    let out = invoke(client, &name, json!({})).await.ok();
    assert_eq!(out["greeting"], "hello layers from a layer");
    assert_eq!(out["origin"], "second layer", "the later layer's file wins");
    assert!(
        out["path"]
            .as_str()
            .is_some_and(|p| p.split(':').any(|e| e == "/opt/bin")),
        "{out}"
    );
    engine.stop().await;
}

#[tokio::test]
async fn layer_search_paths_reach_the_merged_tree_in_fallback_mode() {
    // Without a mount namespace there is no `/opt`: NODE_PATH and PATH name
    // the merged layer tree on the host instead.
    let engine = TestServer::start_with(Runtimes::Own, |config| {
        config.sandbox.mode = strato_sandbox::ModePreference::ForceFallback;
    })
    .await;
    let client = &engine.client;
    let (base, over) =
        publish_node_layers(client, &unique_name("fallback-base"), "fallback-over").await;
    let name = unique_name("fallback-layers");
    deploy_node_with_layers(client, &name, vec![base, over]).await;
    let out = invoke(client, &name, json!({})).await.ok();
    assert_eq!(out["greeting"], "hello layers from a layer");
    assert_eq!(out["origin"], "second layer");
    let node_path = out["nodePath"].as_str().unwrap_or_default();
    assert!(
        !node_path.split(':').any(|p| p.starts_with("/opt/")),
        "{node_path}"
    );
    engine.stop().await;
}
