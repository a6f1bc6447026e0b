use std::sync::Mutex as StdMutex;

use strato_engine::async_invoke::{Content, Delivery, DeliveryError, ServiceEventBus};
use strato_observe::metrics::Bucket;
use strato_observe::MetricsConfig;
use strato_store::SqliteStore;

use super::*;
use crate::alarm::Comparison;

const ACCOUNT: &str = "000000000000";
const REGION: &str = "us-east-1";
const TOPIC: &str = "arn:aws:sns:us-east-1:000000000000:alerts";

#[derive(Default)]
struct Recording {
    records: StdMutex<Vec<(String, serde_json::Value)>>,
    events: StdMutex<Vec<AwsServiceEvent>>,
}

#[async_trait::async_trait]
impl EventSink for Recording {
    async fn deliver(&self, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        let Delivery { to, content } = delivery;
        assert!(
            !matches!(content, Content::DeadLetter { .. }),
            "alarms never dead-letter"
        );
        let json = serde_json::from_slice(&content.into_body()).unwrap();
        self.records
            .lock()
            .unwrap()
            .push((to.arn.to_string(), json));
        Ok(())
    }
}

#[async_trait::async_trait]
impl ServiceEventBus for Recording {
    async fn emit(&self, event: AwsServiceEvent) -> Result<(), DeliveryError> {
        self.events.lock().unwrap().push(event);
        Ok(())
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    sinks: Arc<EventSinks>,
    recording: Arc<Recording>,
    service: Arc<AlarmService>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("strato.db")).unwrap());
    store
        .create_account(&strato_model::Account {
            id: ACCOUNT.into(),
            name: "default".into(),
            concurrency_limit: 1000,
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let metrics = Metrics::open(&dir.path().join("metrics.db"), MetricsConfig::default()).unwrap();
    let sinks = Arc::new(EventSinks::new());
    let recording = Arc::new(Recording::default());
    sinks.register("sns", recording.clone());
    sinks.register_bus(recording.clone());
    let service = AlarmService::open(store.clone(), metrics.clone(), sinks.clone(), 1)
        .await
        .unwrap();
    Fixture {
        _dir: dir,
        store,
        metrics,
        sinks,
        recording,
        service,
    }
}

fn errors_alarm(name: &str) -> Doc {
    Doc::map()
        .with("AlarmName", name)
        .with("AlarmDescription", "errors happen")
        .with("Namespace", "AWS/Lambda")
        .with("MetricName", "Errors")
        .with(
            "Dimensions",
            Doc::List(vec![Doc::map()
                .with("Name", "FunctionName")
                .with("Value", "fn")]),
        )
        .with("Statistic", "Sum")
        .with("Period", 60i64)
        .with("EvaluationPeriods", 1i64)
        .with("DatapointsToAlarm", 1i64)
        .with("Threshold", 0.0)
        .with("ComparisonOperator", "GreaterThanThreshold")
        .with("AlarmActions", Doc::List(vec![Doc::from(TOPIC)]))
        .with("OKActions", Doc::List(vec![Doc::from(TOPIC)]))
}

async fn op(f: &Fixture, name: &str, input: Doc) -> OpResult {
    f.service
        .operation(ACCOUNT, REGION, name, input)
        .await
        .unwrap()
}

async fn publish_errors(f: &Fixture, value: f64) {
    let key = SeriesKey {
        account: ACCOUNT.into(),
        region: REGION.into(),
        namespace: "AWS/Lambda".into(),
        metric: "Errors".into(),
        dimensions: vec![("FunctionName".into(), "fn".into())],
    };
    f.metrics
        .publish(key, now_ms(), Bucket::of_values(&[(value, 1)]))
        .await
        .unwrap();
}

fn state_of(doc: &Doc) -> String {
    let alarms = doc.get("MetricAlarms").unwrap().as_list().unwrap();
    alarms[0]
        .get("StateValue")
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

async fn describe(f: &Fixture, name: &str) -> Doc {
    op(
        f,
        "DescribeAlarms",
        Doc::map().with("AlarmNames", Doc::List(vec![Doc::from(name)])),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_breaching_datapoint_alarms_and_notifies_the_topic_and_the_bus() {
    let f = fixture().await;
    op(&f, "PutMetricAlarm", errors_alarm("errs"))
        .await
        .unwrap();
    publish_errors(&f, 1.0).await;
    f.service.evaluate_due().await;
    let described = describe(&f, "errs").await;
    assert_eq!(state_of(&described), "ALARM");
    let alarm = &described.get("MetricAlarms").unwrap().as_list().unwrap()[0];
    let reason = alarm.get("StateReason").unwrap().as_str().unwrap();
    assert!(
        reason.starts_with("Threshold Crossed: 1 out of the last 1 datapoints [1.0 ("),
        "{reason}"
    );
    assert!(
        reason.ends_with(
            ")] was greater than the threshold (0.0) (minimum 1 datapoint for INSUFFICIENT_DATA -> ALARM transition)."
        ),
        "{reason}"
    );
    let records = f.recording.records.lock().unwrap().clone();
    assert_eq!(records.len(), 1);
    let (topic, message) = &records[0];
    assert_eq!(topic, TOPIC);
    assert_eq!(message["AlarmName"], "errs");
    assert_eq!(message["AlarmDescription"], "errors happen");
    assert_eq!(message["AWSAccountId"], ACCOUNT);
    assert_eq!(message["NewStateValue"], "ALARM");
    assert_eq!(message["OldStateValue"], "INSUFFICIENT_DATA");
    assert_eq!(message["NewStateReason"], reason);
    assert_eq!(message["Region"], "US East (N. Virginia)");
    assert_eq!(
        message["AlarmArn"],
        "arn:aws:cloudwatch:us-east-1:000000000000:alarm:errs"
    );
    assert_eq!(message["Trigger"]["MetricName"], "Errors");
    assert_eq!(message["Trigger"]["Statistic"], "SUM");
    assert_eq!(
        message["Trigger"]["Dimensions"][0],
        serde_json::json!({"value": "fn", "name": "FunctionName"})
    );
    let events = f.recording.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].source, "aws.cloudwatch");
    assert_eq!(events[0].detail_type, "CloudWatch Alarm State Change");
    assert_eq!(
        events[0].resources,
        vec!["arn:aws:cloudwatch:us-east-1:000000000000:alarm:errs".to_string()]
    );
    assert_eq!(events[0].detail["state"]["value"], "ALARM");
    assert_eq!(
        events[0].detail["previousState"]["value"],
        "INSUFFICIENT_DATA"
    );
    assert_eq!(
        events[0].detail["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]
            ["FunctionName"],
        "fn"
    );

    // History: created, then the state update, then the action.
    let history = op(
        &f,
        "DescribeAlarmHistory",
        Doc::map().with("AlarmName", "errs"),
    )
    .await
    .unwrap();
    let types: Vec<&str> = history
        .get("AlarmHistoryItems")
        .unwrap()
        .as_list()
        .unwrap()
        .iter()
        .map(|i| i.get("HistoryItemType").unwrap().as_str().unwrap())
        .collect();
    assert_eq!(types, ["Action", "StateUpdate", "ConfigurationUpdate"]);

    // Disabled actions: a state change notifies nobody.
    op(
        &f,
        "DisableAlarmActions",
        Doc::map().with("AlarmNames", Doc::List(vec![Doc::from("errs")])),
    )
    .await
    .unwrap();
    op(
        &f,
        "SetAlarmState",
        Doc::map()
            .with("AlarmName", "errs")
            .with("StateValue", "OK")
            .with("StateReason", "testing"),
    )
    .await
    .unwrap();
    assert_eq!(f.recording.records.lock().unwrap().len(), 1);
    assert_eq!(f.recording.events.lock().unwrap().len(), 2);
    drop(f.sinks.clone());
}

#[tokio::test]
async fn alarms_survive_a_restart() {
    let f = fixture().await;
    op(&f, "PutMetricAlarm", errors_alarm("kept"))
        .await
        .unwrap();
    let reopened = AlarmService::open(f.store.clone(), f.metrics.clone(), f.sinks.clone(), 1)
        .await
        .unwrap();
    let doc = reopened
        .operation(ACCOUNT, REGION, "DescribeAlarms", Doc::map())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state_of(&doc), "INSUFFICIENT_DATA");
}

#[tokio::test]
async fn set_alarm_state_on_a_missing_alarm_is_not_found() {
    let f = fixture().await;
    let err = op(
        &f,
        "SetAlarmState",
        Doc::map()
            .with("AlarmName", "nope")
            .with("StateValue", "OK")
            .with("StateReason", "x"),
    )
    .await
    .unwrap_err();
    assert_eq!((err.code, err.status), ("ResourceNotFound", 404));
    let err = op(
        &f,
        "SetAlarmState",
        Doc::map()
            .with("AlarmName", "nope")
            .with("StateValue", "INVALID")
            .with("StateReason", "x"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.query_code, Some("ValidationError"));
    assert_eq!(err.message, "1 validation error detected: Value 'INVALID' at 'stateValue' failed to satisfy constraint: Member must satisfy enum value set: [INSUFFICIENT_DATA, ALARM, OK]");
}

fn alarm_with(n: i64, m: Option<i64>, treat: Option<&str>) -> Alarm {
    let Doc::Map(mut members) = errors_alarm("a") else {
        panic!("a map")
    };
    members.retain(|(k, _)| k != "DatapointsToAlarm" && k != "EvaluationPeriods");
    let mut input = Doc::Map(members).with("EvaluationPeriods", n);
    if let Some(m) = m {
        input = input.with("DatapointsToAlarm", m);
    }
    if let Some(t) = treat {
        input = input.with("TreatMissingData", t);
    }
    Alarm::from_request(ACCOUNT, REGION, &input, 0).unwrap()
}

fn point(minute: i64, value: f64) -> Option<Point> {
    Some(Point {
        start_ms: minute * 60_000,
        value,
        sample_count: 1.0,
    })
}

#[test]
fn m_out_of_n_needs_m_breaching_datapoints() {
    let alarm = alarm_with(3, Some(2), None);
    let one = [point(0, 1.0), point(1, 0.0), point(2, 0.0)];
    assert_eq!(
        evaluate(&alarm, &one, 0, 180_000).unwrap().state,
        StateValue::Ok
    );
    let two = [point(0, 1.0), point(1, 0.0), point(2, 3.0)];
    let outcome = evaluate(&alarm, &two, 0, 180_000).unwrap();
    assert_eq!(outcome.state, StateValue::Alarm);
    assert_eq!(
        outcome.reason,
        "Threshold Crossed: 2 out of the last 3 datapoints [3.0 (01/01/70 00:02:00), 1.0 (01/01/70 00:00:00)] were greater than the threshold (0.0) (minimum 2 datapoints for INSUFFICIENT_DATA -> ALARM transition)."
    );
    assert_eq!(
        outcome.reason_data["recentDatapoints"],
        serde_json::json!([1.0, 0.0, 3.0])
    );
}

#[test]
fn missing_data_follows_treat_missing_data() {
    let none = [None, None];
    let cases = [
        (None, Some(StateValue::InsufficientData)),
        (Some("missing"), Some(StateValue::InsufficientData)),
        (Some("breaching"), Some(StateValue::Alarm)),
        (Some("notBreaching"), Some(StateValue::Ok)),
        (Some("ignore"), None),
    ];
    for (treat, want) in cases {
        let alarm = alarm_with(2, None, treat);
        assert_eq!(
            evaluate(&alarm, &none, 0, 120_000).map(|o| o.state),
            want,
            "{treat:?}"
        );
    }
    let alarm = alarm_with(2, None, Some("breaching"));
    assert_eq!(
        evaluate(&alarm, &none, 0, 120_000).unwrap().reason,
        "Threshold Crossed: no datapoints were received for 2 periods and 2 missing datapoints were treated as [Breaching]."
    );
    // One breaching datapoint and one missing one treated as breaching: 2 of 2.
    let half = [None, point(1, 5.0)];
    assert_eq!(
        evaluate(&alarm, &half, 0, 120_000).unwrap().state,
        StateValue::Alarm
    );
    let alarm = alarm_with(2, None, Some("notBreaching"));
    assert_eq!(
        evaluate(&alarm, &half, 0, 120_000).unwrap().state,
        StateValue::Ok
    );
}

#[test]
fn the_legacy_reason_without_datapoints_to_alarm() {
    let alarm = alarm_with(1, None, None);
    let outcome = evaluate(&alarm, &[point(0, 21.5)], 0, 60_000).unwrap();
    assert_eq!(
        outcome.reason,
        "Threshold Crossed: 1 datapoint [21.5 (01/01/70 00:00:00)] was greater than the threshold (0.0)."
    );
    let outcome = evaluate(&alarm, &[point(0, 0.0)], 0, 60_000).unwrap();
    assert_eq!(outcome.state, StateValue::Ok);
    assert_eq!(
        outcome.reason,
        "Threshold Crossed: 1 datapoint [0.0 (01/01/70 00:00:00)] was not greater than the threshold (0.0)."
    );
}

#[test]
fn comparison_operators_compare() {
    assert!(Comparison::GreaterThanOrEqualToThreshold.breaches(1.0, 1.0));
    assert!(!Comparison::GreaterThanThreshold.breaches(1.0, 1.0));
    assert!(Comparison::LessThanThreshold.breaches(0.5, 1.0));
    assert!(Comparison::LessThanOrEqualToThreshold.breaches(1.0, 1.0));
}

#[test]
fn put_metric_alarm_refuses_what_aws_refuses() {
    let bad = [
        errors_alarm("x").with("ComparisonOperator", "Bigger"),
        errors_alarm("x").with("Period", 61i64),
        errors_alarm("x").with("ExtendedStatistic", "p99"),
        errors_alarm("x").with("TreatMissingData", "sometimes"),
        errors_alarm("x").with("DatapointsToAlarm", 2i64),
    ];
    for input in bad {
        // `with` appends; the first value wins in `get`, so rebuild.
        let Doc::Map(members) = input else { panic!() };
        let mut seen = std::collections::HashSet::new();
        let deduped: Vec<(String, Doc)> = members
            .into_iter()
            .rev()
            .filter(|(k, _)| seen.insert(k.clone()))
            .collect();
        let input = Doc::Map(deduped);
        assert!(
            Alarm::from_request(ACCOUNT, REGION, &input, 0).is_err(),
            "{input:?}"
        );
    }
    let Doc::Map(mut members) = errors_alarm("x") else {
        panic!()
    };
    members.retain(|(k, _)| k != "Threshold");
    let err = Alarm::from_request(ACCOUNT, REGION, &Doc::Map(members), 0).unwrap_err();
    assert_eq!(err.query_code, Some("MissingParameter"));
}

#[tokio::test]
async fn an_action_nobody_delivers_is_recorded_as_failed() {
    let f = fixture().await;
    // A server without SNS: the action cannot be delivered.
    let service = AlarmService::open(
        f.store.clone(),
        f.metrics.clone(),
        Arc::new(EventSinks::new()),
        1,
    )
    .await
    .unwrap();
    let input = errors_alarm("unheard").with("TreatMissingData", "breaching");
    service
        .operation(ACCOUNT, REGION, "PutMetricAlarm", input)
        .await
        .unwrap()
        .unwrap();
    service.evaluate_due().await;
    let history = service
        .operation(
            ACCOUNT,
            REGION,
            "DescribeAlarmHistory",
            Doc::map()
                .with("AlarmName", "unheard")
                .with("HistoryItemType", "Action"),
        )
        .await
        .unwrap()
        .unwrap();
    let items = history.get("AlarmHistoryItems").unwrap().as_list().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].get("HistorySummary").unwrap().as_str().unwrap(),
        format!("Failed to execute action {TOPIC}")
    );
    let data: serde_json::Value =
        serde_json::from_str(items[0].get("HistoryData").unwrap().as_str().unwrap()).unwrap();
    assert_eq!(data["actionState"], "Failed");
}
