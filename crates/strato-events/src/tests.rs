//! The service end to end on a real store and queue engine, with recording
//! stand-ins for Lambda and SQS.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use strato_engine::async_invoke::{
    DeadLetterAttributes, DeliveryError, EventSink, EventSinks, ServiceEvent, ServiceEventError,
    ServiceEvents,
};
use strato_model::wire::Doc;
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
}

#[derive(Default)]
struct Queues(Mutex<Vec<(String, String)>>);

#[async_trait::async_trait]
impl EventSink for Queues {
    async fn deliver_record(
        &self,
        _account: &str,
        _region: &str,
        destination: &str,
        record: Bytes,
    ) -> Result<(), DeliveryError> {
        let body = String::from_utf8(record.to_vec()).unwrap();
        self.0.lock().unwrap().push((destination.to_string(), body));
        Ok(())
    }

    async fn deliver_dead_letter(
        &self,
        _account: &str,
        _region: &str,
        target: &str,
        payload: Bytes,
        attributes: DeadLetterAttributes,
    ) -> Result<(), DeliveryError> {
        let body = String::from_utf8(payload.to_vec()).unwrap();
        self.0
            .lock()
            .unwrap()
            .push((format!("dlq {target} {}", attributes.error_code), body));
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
    eventually("the dead letter", || {
        !harness.queues.0.lock().unwrap().is_empty()
    })
    .await;
    let got = harness.queues.0.lock().unwrap().clone();
    assert_eq!(got[0].0, format!("dlq {QUEUE} AccessDeniedException"));
    let event: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(event["source"], "shop");
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
    eventually("the forwarded event", || {
        !harness.queues.0.lock().unwrap().is_empty()
    })
    .await;
    let got = harness.queues.0.lock().unwrap().clone();
    assert_eq!(got, vec![(QUEUE.to_string(), "{\"n\":1}".to_string())]);
    assert!(service.bus_exists("000000000000", "us-east-1", &bus_arn));
    tasks.iter().for_each(tokio::task::JoinHandle::abort);
}
