//! AWS services with the AWS SDK for Rust: logs and metrics read back
//! (CloudWatch Logs over awsJson 1.1, CloudWatch over Smithy RPC v2 CBOR)
//! before and after a restart, and DynamoDB (awsJson 1.0 with the
//! `x-amz-crc32` the SDK verifies).

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
