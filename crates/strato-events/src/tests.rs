//! The service end to end on a real store and queue engine, with recording
//! stand-ins for Lambda and SQS.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use strato_engine::async_invoke::{
    Content, DeadLetterAttributes, Delivery, DeliveryError, EventSink, EventSinks, ServiceEvent,
    ServiceEventError, ServiceEvents,
};
use strato_model::wire::{Doc, OpResult};
use strato_model::Caller;
use strato_queue::{Durability, QueueEngine, SqliteQueueEngine};
use strato_store::{SqliteStore, Store};

use crate::{EventsService, DELIVERY_QUEUE};

#[derive(Default)]
struct Lambda {
    deny: bool,
    invoked: Mutex<Vec<ServiceEvent>>,
}

#[async_trait::async_trait]
impl ServiceEvents for Lambda {
    async fn invoke_event(&self, event: ServiceEvent) -> Result<String, ServiceEventError> {
        self.authorize(&event).await?;
        self.invoked.lock().unwrap().push(event);
        Ok("request".into())
    }

    async fn authorize(&self, _event: &ServiceEvent) -> Result<(), ServiceEventError> {
        if self.deny {
            return Err(ServiceEventError::AccessDenied("no policy".into()));
        }
        Ok(())
    }

    fn role_allows(&self, _: &strato_engine::RoleUse<'_>) -> bool {
        true
    }
}

/// Records what reaches SQS: `(destination, body)`, dead letters as
/// `("dlq {target}", body)` with their attributes, grouped messages as
/// `("{destination} {group} {dedup}", body)`. Queues named `broken` fail.
#[derive(Default)]
struct Queues {
    got: Mutex<Vec<(String, String)>>,
    dead: Mutex<Vec<DeadLetterAttributes>>,
}

impl Queues {
    fn got(&self) -> Vec<(String, String)> {
        self.got.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl EventSink for Queues {
    async fn deliver(&self, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        let Delivery { to, content } = delivery;
        let (label, body) = match content {
            Content::DeadLetter {
                payload,
                attributes,
            } => {
                self.dead.lock().unwrap().push(attributes);
                (format!("dlq {}", to.arn), payload)
            }
            Content::Grouped { record, group } => {
                let label = format!("{} {} {}", to.arn, group.group_id, group.dedup_id);
                (label, record)
            }
            _ if to.arn.ends_with(":broken") => {
                return Err(DeliveryError::Failed {
                    destination: to.arn.into(),
                    reason: "throttled".into(),
                });
            }
            other => (to.arn.to_string(), other.into_body()),
        };
        let body = String::from_utf8(body.to_vec()).unwrap();
        self.got.lock().unwrap().push((label, body));
        Ok(())
    }
}

struct Harness {
    store: Arc<dyn Store>,
    engine: Arc<SqliteQueueEngine>,
    lambda: Arc<Lambda>,
    queues: Arc<Queues>,
}

impl Harness {
    fn new(dir: &Path, deny: bool) -> Harness {
        Harness {
            store: Arc::new(SqliteStore::open(&dir.join("state.db")).unwrap()),
            engine: SqliteQueueEngine::open(&dir.join("queues.db"), Durability::ProcessCrash)
                .unwrap(),
            lambda: Arc::new(Lambda {
                deny,
                ..Lambda::default()
            }),
            queues: Arc::new(Queues::default()),
        }
    }

    async fn open(&self) -> Arc<EventsService> {
        if self
            .store
            .get_account("000000000000")
            .await
            .unwrap()
            .is_none()
        {
            self.store
                .create_account(&strato_model::Account {
                    id: "000000000000".into(),
                    name: "default".into(),
                    concurrency_limit: 1000,
                    created_at: chrono::Utc::now(),
                })
                .await
                .unwrap();
        }
        let sinks = Arc::new(EventSinks::new());
        sinks.register("sqs", self.queues.clone());
        let service = EventsService::open(
            self.store.clone(),
            self.engine.clone(),
            sinks.clone(),
            self.lambda.clone(),
            60,
        )
        .await
        .unwrap();
        sinks.register("events", service.clone());
        service
    }

    fn queued(&self) -> u64 {
        let counts = self.engine.counts(DELIVERY_QUEUE).unwrap();
        counts.visible + counts.in_flight + counts.delayed
    }
}

fn caller() -> Caller {
    Caller {
        account_id: "000000000000".into(),
        region: "us-east-1".into(),
        access_key_id: "test".into(),
    }
}

const FUNCTION: &str = "arn:aws:lambda:us-east-1:000000000000:function:f";
const QUEUE: &str = "arn:aws:sqs:us-east-1:000000000000:q";

async fn call(service: &EventsService, op: &str, input: serde_json::Value) -> serde_json::Value {
    service
        .operation(&caller(), op, Doc::from_json(&input))
        .await
        .unwrap()
        .to_json()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

fn order_event() -> serde_json::Value {
    json!({"Entries": [{"Source": "shop", "DetailType": "order", "Detail": "{\"n\": 1}"}]})
}

#[tokio::test]
async fn accepted_events_are_queued_before_put_events_answers_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::new(dir.path(), false);
    let service = harness.open().await;
    call(
        &service,
        "PutRule",
        json!({"Name": "r", "EventPattern": "{\"source\": [\"shop\"]}"}),
    )
    .await;
    call(
        &service,
        "PutTargets",
        json!({"Rule": "r", "Targets": [{"Id": "f", "Arn": FUNCTION}]}),
    )
    .await;
    let answer = call(&service, "PutEvents", order_event()).await;
    assert_eq!(answer["FailedEntryCount"], 0);
    assert_eq!(harness.queued(), 1);
    drop(service);
    // A new service on the same state (a restart) delivers it.
    let service = harness.open().await;
    let tasks = service.start().await;
    eventually("the invocation", || {
        !harness.lambda.invoked.lock().unwrap().is_empty()
    })
    .await;
    let invoked = harness.lambda.invoked.lock().unwrap().clone();
    assert_eq!(invoked.len(), 1);
    assert_eq!(invoked[0].principal, "events.amazonaws.com");
    assert_eq!(
        invoked[0].source_arn.as_deref(),
        Some("arn:aws:events:us-east-1:000000000000:rule/r")
    );
    let event: serde_json::Value = serde_json::from_slice(&invoked[0].payload).unwrap();
    assert_eq!(event["detail"], json!({"n": 1}));
    eventually("the delivery's deletion", || harness.queued() == 0).await;
    tasks.iter().for_each(tokio::task::JoinHandle::abort);
}

#[tokio::test]
async fn a_schedule_missed_while_down_fires_once_not_once_per_tick() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::new(dir.path(), false);
    let service = harness.open().await;
    call(
        &service,
        "PutRule",
        json!({"Name": "tick", "ScheduleExpression": "rate(1 minute)"}),
    )
    .await;
    call(
        &service,
        "PutTargets",
        json!({"Rule": "tick", "Targets": [{"Id": "f", "Arn": FUNCTION}]}),
    )
    .await;
    // Pretend the last firing was an hour ago: 60 ticks were missed.
    let mut record = service
        .state
        .read()
        .rules
        .values()
        .next()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .record
        .clone();
    record.last_fired_ms -= 3_600_000;
    service
        .put_doc(
            &record.account,
            &record.region,
            crate::records::RULE_KIND,
            &record.id(),
            &record,
        )
        .await
        .unwrap();
    drop(service);
    let service = harness.open().await;
    service.fire_due_rules().await;
    service.fire_due_rules().await;
    assert_eq!(harness.queued(), 1);
}

#[tokio::test]
async fn a_refused_invocation_goes_to_the_dead_letter_queue() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::new(dir.path(), true);
    let service = harness.open().await;
    call(
        &service,
        "PutRule",
        json!({"Name": "r", "EventPattern": "{\"source\": [\"shop\"]}"}),
    )
    .await;
    call(
        &service,
        "PutTargets",
        json!({"Rule": "r", "Targets": [
            {"Id": "f", "Arn": FUNCTION, "DeadLetterConfig": {"Arn": QUEUE}}
        ]}),
    )
    .await;
    let tasks = service.start().await;
    call(&service, "PutEvents", order_event()).await;
    eventually("the dead letter", || !harness.queues.got().is_empty()).await;
    let got = harness.queues.got();
    assert_eq!(got[0].0, format!("dlq {QUEUE}"));
    let event: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(event["source"], "shop");
    // EventBridge's attributes; a refusal is not retried, so no retry
    // condition ran out.
    let dead = harness.queues.dead.lock().unwrap().clone();
    let names: Vec<&str> = dead[0].attributes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "RULE_ARN",
            "TARGET_ARN",
            "ERROR_CODE",
            "ERROR_MESSAGE",
            "RETRY_ATTEMPTS"
        ]
    );
    assert_eq!(
        dead[0].get("RULE_ARN"),
        Some("arn:aws:events:us-east-1:000000000000:rule/r")
    );
    assert_eq!(dead[0].get("TARGET_ARN"), Some(FUNCTION));
    assert_eq!(dead[0].get("ERROR_CODE"), Some("NO_PERMISSIONS"));
    assert_eq!(dead[0].get("RETRY_ATTEMPTS"), Some("0"));
    tasks.iter().for_each(tokio::task::JoinHandle::abort);
}

#[tokio::test]
async fn a_bus_target_routes_the_event_to_that_bus_rules() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::new(dir.path(), false);
    let service = harness.open().await;
    let bus = call(&service, "CreateEventBus", json!({"Name": "other"})).await;
    let bus_arn = bus["EventBusArn"].as_str().unwrap().to_string();
    call(
        &service,
        "PutRule",
        json!({"Name": "fwd", "EventPattern": "{\"source\": [\"shop\"]}"}),
    )
    .await;
    call(
        &service,
        "PutTargets",
        json!({"Rule": "fwd", "Targets": [{"Id": "b", "Arn": bus_arn}]}),
    )
    .await;
    call(
        &service,
        "PutRule",
        json!({"Name": "sink", "EventBusName": "other",
        "EventPattern": "{\"source\": [\"shop\"]}"}),
    )
    .await;
    call(
        &service,
        "PutTargets",
        json!({"Rule": "sink", "EventBusName": "other", "Targets": [
            {"Id": "q", "Arn": QUEUE, "InputPath": "$.detail"}
        ]}),
    )
    .await;
    let tasks = service.start().await;
    call(&service, "PutEvents", order_event()).await;
    eventually("the forwarded event", || !harness.queues.got().is_empty()).await;
    let got = harness.queues.got();
    assert_eq!(got, vec![(QUEUE.to_string(), "{\"n\":1}".to_string())]);
    assert!(service.bus_exists("000000000000", "us-east-1", &bus_arn));
    tasks.iter().for_each(tokio::task::JoinHandle::abort);
}

#[tokio::test]
async fn a_failing_target_is_retried_per_its_policy_then_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::new(dir.path(), false);
    let service = harness.open().await;
    call(
        &service,
        "PutRule",
        json!({"Name": "r", "EventPattern": "{\"source\": [\"shop\"]}"}),
    )
    .await;
    let broken = "arn:aws:sqs:us-east-1:000000000000:broken";
    call(
        &service,
        "PutTargets",
        json!({"Rule": "r", "Targets": [{"Id": "q", "Arn": broken,
            "RetryPolicy": {"MaximumRetryAttempts": 2},
            "DeadLetterConfig": {"Arn": QUEUE}}]}),
    )
    .await;
    let tasks = service.start().await;
    call(&service, "PutEvents", order_event()).await;
    eventually("the dead letter", || !harness.queues.got().is_empty()).await;
    let dead = harness.queues.dead.lock().unwrap().clone();
    assert_eq!(dead[0].get("ERROR_CODE"), Some("SDK_CLIENT_ERROR"));
    assert_eq!(
        dead[0].get("EXHAUSTED_RETRY_CONDITION"),
        Some("MaximumRetryAttempts")
    );
    assert_eq!(dead[0].get("RETRY_ATTEMPTS"), Some("2"));
    tasks.iter().for_each(tokio::task::JoinHandle::abort);
}

#[tokio::test]
async fn a_fifo_queue_target_needs_and_gets_its_message_group() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::new(dir.path(), false);
    let service = harness.open().await;
    call(
        &service,
        "PutRule",
        json!({"Name": "r", "EventPattern": "{\"source\": [\"shop\"]}"}),
    )
    .await;
    let fifo = "arn:aws:sqs:us-east-1:000000000000:orders.fifo";
    let refused = service
        .operation(
            &caller(),
            "PutTargets",
            Doc::from_json(&json!({"Rule": "r", "Targets": [{"Id": "q", "Arn": fifo}]})),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code, "ValidationException");
    assert_eq!(
        refused.message,
        "Parameter(s) SqsParameters must be specified for target: q."
    );
    call(
        &service,
        "PutTargets",
        json!({"Rule": "r", "Targets": [{"Id": "q", "Arn": fifo,
            "SqsParameters": {"MessageGroupId": "orders"}}]}),
    )
    .await;
    let listed = call(&service, "ListTargetsByRule", json!({"Rule": "r"})).await;
    assert_eq!(
        listed["Targets"][0]["SqsParameters"],
        json!({"MessageGroupId": "orders"})
    );
    let tasks = service.start().await;
    call(&service, "PutEvents", order_event()).await;
    eventually("the message", || !harness.queues.got().is_empty()).await;
    let (label, body) = harness.queues.got()[0].clone();
    let event: serde_json::Value = serde_json::from_str(&body).unwrap();
    // Deduplicated by the event's id, so a retried delivery is not queued twice.
    assert_eq!(
        label,
        format!("{fifo} orders {}", event["id"].as_str().unwrap())
    );
    tasks.iter().for_each(tokio::task::JoinHandle::abort);
}

async fn scheduler(service: &EventsService, op: &str, input: serde_json::Value) -> OpResult {
    service
        .scheduler_operation(&caller(), op, Doc::from_json(&input))
        .await
}

fn schedule_input(token: &str, window: serde_json::Value) -> serde_json::Value {
    json!({"Name": "s", "ScheduleExpression": "rate(5 minutes)", "ClientToken": token,
        "FlexibleTimeWindow": window,
        "Target": {"Arn": QUEUE, "RoleArn": "arn:aws:iam::000000000000:role/r"}})
}

#[tokio::test]
async fn a_retried_create_schedule_answers_as_the_first_and_a_window_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::new(dir.path(), false);
    let service = harness.open().await;
    let off = json!({"Mode": "OFF"});
    let first = scheduler(
        &service,
        "CreateSchedule",
        schedule_input("t1", off.clone()),
    )
    .await
    .unwrap();
    let again = scheduler(
        &service,
        "CreateSchedule",
        schedule_input("t1", off.clone()),
    )
    .await
    .unwrap();
    assert_eq!(first.to_json(), again.to_json());
    let other = scheduler(&service, "CreateSchedule", schedule_input("t2", off))
        .await
        .unwrap_err();
    assert_eq!(other.code, "ConflictException");
    let wide = json!({"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 1441});
    let refused = scheduler(&service, "UpdateSchedule", schedule_input("t3", wide))
        .await
        .unwrap_err();
    assert_eq!(refused.code, "ValidationException");
    let listed = scheduler(&service, "ListSchedules", json!({"MaxResults": 1}))
        .await
        .unwrap()
        .to_json();
    assert_eq!(listed["Schedules"].as_array().unwrap().len(), 1);
    let too_many = scheduler(&service, "ListSchedules", json!({"MaxResults": 101}))
        .await
        .unwrap_err();
    assert_eq!(too_many.code, "ValidationException");
}

#[tokio::test]
async fn a_flexible_window_fires_at_a_moment_fixed_per_tick() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::new(dir.path(), false);
    let service = harness.open().await;
    let window = json!({"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 10});
    scheduler(&service, "CreateSchedule", schedule_input("t", window))
        .await
        .unwrap();
    let record = service
        .state
        .read()
        .schedules
        .values()
        .next()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .record
        .clone();
    // Ten minutes under the harness's time scale of 60: ten seconds.
    let ticks: Vec<i64> = (0..50).map(|i| 1_800_000_000_000 + i * 5_000).collect();
    let offsets: Vec<i64> = ticks
        .iter()
        .map(|t| service.flexible_offset_ms(&record, *t))
        .collect();
    assert!(offsets.iter().all(|o| (0..10_000).contains(o)));
    // Spread over the window, and the same for the same tick after a restart.
    assert!(
        offsets
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 40
    );
    drop(service);
    let service = harness.open().await;
    let again: Vec<i64> = ticks
        .iter()
        .map(|t| service.flexible_offset_ms(&record, *t))
        .collect();
    assert_eq!(offsets, again);
    let mut off = record.clone();
    off.flexible_time_window = json!({"Mode": "OFF"});
    assert_eq!(service.flexible_offset_ms(&off, ticks[0]), 0);
}
