//! AWS services with the AWS SDK for Rust: logs and metrics read back
//! (CloudWatch Logs over awsJson 1.1, CloudWatch over Smithy RPC v2 CBOR)
//! before and after a restart, and DynamoDB (awsJson 1.0 with the
//! `x-amz-crc32` the SDK verifies), and S3 (objects with the SDK's default
//! checksums, multipart, a presigned GET).

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_smithy_types::DateTime;
use harness::{deploy, invoke, unique_name, FunctionSpec, TestServer};
use serde_json::json;

const HANDLER: &str = r#"
exports.handler = async (event) => {
  process.stdout.write(JSON.stringify({level: event.level || "INFO", n: event.n || 0}) + "\n");
  if (event.fail) { throw new Error("boom"); }
  return {ok: true};
};
"#;

fn logs_client(server: &TestServer) -> aws_sdk_cloudwatchlogs::Client {
    aws_sdk_cloudwatchlogs::Client::new(&server.sdk_config())
}

fn metrics_client(server: &TestServer) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::new(&server.sdk_config())
}

fn query(id: &str, function: &str, metric: &str, stat: &str) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/Lambda")
                        .metric_name(metric)
                        .dimensions(
                            Dimension::builder()
                                .name("FunctionName")
                                .value(function)
                                .build(),
                        )
                        .build(),
                )
                .period(3600)
                .stat(stat)
                .build(),
        )
        .build()
}

/// Sum over the periods of each query's values, by id.
async fn metric_totals(
    client: &aws_sdk_cloudwatch::Client,
    queries: Vec<MetricDataQuery>,
) -> std::collections::HashMap<String, f64> {
    let now = SystemTime::now();
    let answer = client
        .get_metric_data()
        .start_time(DateTime::from(now - Duration::from_secs(1800)))
        .end_time(DateTime::from(now + Duration::from_secs(300)))
        .scan_by(ScanBy::TimestampAscending)
        .set_metric_data_queries(Some(queries))
        .send()
        .await
        .expect("GetMetricData");
    answer
        .metric_data_results()
        .iter()
        .map(|r| {
            assert_eq!(r.timestamps().len(), r.values().len());
            (
                r.id().unwrap_or_default().to_string(),
                r.values().iter().sum(),
            )
        })
        .collect()
}

/// `Duration: 1.23 ms` → 1.23.
fn reported_ms(value: &str) -> f64 {
    value
        .trim_end_matches(" ms")
        .parse()
        .expect("a duration in ms")
}

async fn filtered(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    pattern: &str,
) -> Vec<String> {
    client
        .filter_log_events()
        .log_group_name(group)
        .filter_pattern(pattern)
        .send()
        .await
        .expect("FilterLogEvents")
        .events()
        .iter()
        .map(|e| e.message().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_and_metrics_reach_the_sdks_and_survive_a_restart() {
    let mut server = TestServer::start_own_runtimes().await;
    let lambda = server.client.clone();
    let name = unique_name("observed");
    deploy(&lambda, &name, FunctionSpec::node(HANDLER)).await;
    let mut durations = Vec::new();
    for event in [
        json!({"n": 1}),
        json!({"n": 2, "level": "ERROR"}),
        json!({"n": 3, "level": "ERROR", "fail": true}),
    ] {
        let invocation = invoke(&lambda, &name, event).await;
        durations.push(reported_ms(&invocation.report()["Duration"]));
    }
    let group = format!("/aws/lambda/{name}");

    let logs = logs_client(&server);
    assert_eq!(
        filtered(&logs, &group, r#"{ $.level = "ERROR" }"#).await,
        vec![
            r#"{"level":"ERROR","n":2}"#.to_string(),
            r#"{"level":"ERROR","n":3}"#.to_string()
        ]
    );
    let streams = logs
        .describe_log_streams()
        .log_group_name(&group)
        .send()
        .await
        .expect("DescribeLogStreams");
    let stream = streams.log_streams()[0]
        .log_stream_name()
        .expect("stream name")
        .to_string();
    assert!(stream.contains("/[$LATEST]"), "{stream}");

    let metrics = metrics_client(&server);
    let queries = || {
        vec![
            query("invocations", &name, "Invocations", "Sum"),
            query("errors", &name, "Errors", "Sum"),
            query("longest", &name, "Duration", "Maximum"),
        ]
    };
    let totals = metric_totals(&metrics, queries()).await;
    assert_eq!(totals["invocations"], 3.0);
    assert_eq!(totals["errors"], 1.0);
    let longest = durations.iter().cloned().fold(f64::MIN, f64::max);
    assert!(
        (totals["longest"] - longest).abs() <= 0.005 + 1e-9,
        "{totals:?} {durations:?}"
    );

    // Everything is on disk after a clean stop, and read back on start.
    server.restart().await;
    let after = metric_totals(&metrics_client(&server), queries()).await;
    assert_eq!(after, totals);
    let events = logs_client(&server)
        .get_log_events()
        .log_group_name(&group)
        .log_stream_name(&stream)
        .start_from_head(true)
        .send()
        .await
        .expect("GetLogEvents");
    let reports = events
        .events()
        .iter()
        .filter(|e| e.message().unwrap_or_default().starts_with("REPORT "))
        .count();
    assert_eq!(reports, 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cloudwatch_errors_reach_the_sdk_as_their_types() {
    let server = TestServer::start_own_runtimes().await;
    let now = SystemTime::now();
    let err = metrics_client(&server)
        .get_metric_statistics()
        .namespace("AWS/Lambda")
        .metric_name("Duration")
        .start_time(DateTime::from(now - Duration::from_secs(600)))
        .end_time(DateTime::from(now))
        .period(90)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Average)
        .send()
        .await
        .expect_err("a period that is not a multiple of 60 is refused");
    let service = err.into_service_error();
    assert!(
        service.is_invalid_parameter_value_exception(),
        "{service:?}"
    );

    let err = logs_client(&server)
        .get_log_events()
        .log_group_name("/aws/lambda/none")
        .log_stream_name("s")
        .send()
        .await
        .expect_err("no such group");
    let service = err.into_service_error();
    assert!(service.is_resource_not_found_exception(), "{service:?}");
    assert_eq!(
        aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata::message(&service),
        Some("The specified log group does not exist.")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_tables_items_queries_and_conditions_through_the_sdk() {
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
        ScalarAttributeType,
    };

    let server = TestServer::start().await;
    let ddb = aws_sdk_dynamodb::Client::new(&server.sdk_config());
    let table = unique_name("orders");
    let created = ddb
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let arn = created.table_description().unwrap().table_arn().unwrap();
    assert_eq!(
        arn,
        format!(
            "arn:aws:dynamodb:{}:{}:table/{table}",
            harness::REGION,
            harness::ACCOUNT
        )
    );
    for (pk, sk) in [("a", 1), ("a", 2), ("a", 3), ("b", 1)] {
        ddb.put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(pk.into()))
            .item("sk", AttributeValue::N(sk.to_string()))
            .send()
            .await
            .unwrap();
    }
    let queried = ddb
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk AND sk >= :from")
        .expression_attribute_values(":pk", AttributeValue::S("a".into()))
        .expression_attribute_values(":from", AttributeValue::N("2".into()))
        .scan_index_forward(false)
        .send()
        .await
        .unwrap();
    let sks: Vec<&str> = queried
        .items()
        .iter()
        .map(|item| item["sk"].as_n().unwrap().as_str())
        .collect();
    assert_eq!(sks, ["3", "2"]);
    let refused = ddb
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("a".into()))
        .item("sk", AttributeValue::N("1".into()))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        refused.is_conditional_check_failed_exception(),
        "{refused:?}"
    );
    assert_eq!(refused.message(), Some("The conditional request failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_objects_multipart_and_presigned_get_through_the_sdk() {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    use aws_sdk_s3::presigning::PresigningConfig;
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::{
        ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart,
    };

    let server = TestServer::start().await;
    // Path style: `{bucket}.127.0.0.1` does not resolve.
    let config = aws_sdk_s3::config::Builder::from(&server.sdk_config())
        .force_path_style(true)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(config);
    let bucket = unique_name("sdk-bucket");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();

    // PutObject with the SDK's default integrity protection: a CRC32 of
    // the body in an aws-chunked trailer, which the server checks.
    let body = b"hello from the AWS SDK for Rust".repeat(100);
    let put = s3
        .put_object()
        .bucket(&bucket)
        .key("dir/a.txt")
        .content_type("text/plain")
        .metadata("colour", "blue")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    assert!(put.checksum_crc32().is_some(), "{put:?}");

    // GetObject validates the returned checksum against the body it reads.
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("dir/a.txt")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.checksum_crc32(), put.checksum_crc32());
    assert_eq!(got.e_tag(), put.e_tag());
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("colour"))
            .map(String::as_str),
        Some("blue")
    );
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), &body[..]);

    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("dir/a.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.content_length(),
        Some(i64::try_from(body.len()).unwrap())
    );

    // Multipart with a CRC32 per part; the SDK sends each part's checksum
    // in a trailer and the completed object carries the composite one.
    let key = "big.bin";
    let upload = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key(key)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let first = vec![b'a'; 5 * 1024 * 1024];
    let second = b"the last part may be small".to_vec();
    let mut parts = Vec::new();
    for (number, data) in [(1, &first), (2, &second)] {
        let part = s3
            .upload_part()
            .bucket(&bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(part.e_tag().unwrap())
                .checksum_crc32(part.checksum_crc32().unwrap())
                .build(),
        );
    }
    let listed_parts = s3
        .list_parts()
        .bucket(&bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed_parts.parts().len(), 2);
    let done = s3
        .complete_multipart_upload()
        .bucket(&bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(done.e_tag().unwrap().ends_with("-2\""), "{done:?}");
    assert!(done.checksum_crc32().unwrap().ends_with("-2"), "{done:?}");
    let whole = s3
        .get_object()
        .bucket(&bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.parts_count(), Some(2));
    let bytes = whole.body.collect().await.unwrap().into_bytes();
    assert_eq!(bytes.len(), first.len() + second.len());
    assert_eq!(&bytes[first.len()..], &second[..]);

    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .max_keys(1)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.is_truncated(), Some(true));
    assert_eq!(listed.contents()[0].key(), Some("big.bin"));
    let rest = s3
        .list_objects_v2()
        .bucket(&bucket)
        .continuation_token(listed.next_continuation_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.contents()[0].key(), Some("dir/a.txt"));
    assert_eq!(rest.is_truncated(), Some(false));

    // A presigned GET works from a client that holds no credentials.
    let presigned = s3
        .get_object()
        .bucket(&bucket)
        .key("dir/a.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let fetched = reqwest::get(presigned.uri()).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap(), &body[..]);

    s3.delete_object()
        .bucket(&bucket)
        .key("dir/a.txt")
        .send()
        .await
        .unwrap();
    let err = s3
        .get_object()
        .bucket(&bucket)
        .key("dir/a.txt")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_no_such_key(), "{err:?}");
    assert_eq!(err.code(), Some("NoSuchKey"));
}
