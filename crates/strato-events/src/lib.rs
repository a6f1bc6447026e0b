//! Amazon EventBridge (buses, rules, targets, PutEvents) and EventBridge
//! Scheduler (schedules, schedule groups) on Strato.
//!
//! Buses, rules and schedules are documents in the [`Store`], held in
//! memory so matching never touches the database. Rules match with the one
//! pattern engine (`strato-pattern`).
//!
//! Delivery is durable: PutEvents matches each event against the bus's
//! rules and writes one delivery per (rule, target) into the queue engine
//! (`events-delivery`) before it answers, so an event accepted is never
//! lost. A delivery worker takes them from there: a Lambda target goes
//! through [`ServiceEvents`] (the function's resource policy must allow
//! `events.amazonaws.com`; the function's own async queue takes it from
//! there), an SQS queue or SNS topic through [`EventSinks`], another bus is
//! routed again. A failed delivery is retried with back-off per the
//! target's `RetryPolicy`, then sent to its `DeadLetterConfig` queue.
//!
//! One scheduler loop fires scheduled rules and Scheduler schedules; the
//! last firing is persisted, so a schedule missed while Strato was down
//! fires once when it starts again, not once per missed tick.

mod delivery;
pub mod error;
mod kept;
mod operations;
pub mod records;
pub mod schedule;
mod scheduler;
pub mod transform;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;
use serde_json::Value;
use strato_engine::async_invoke::{
    AwsServiceEvent, Content, Delivery as SinkDelivery, DeliveryError, Destination, EventSink,
    EventSinks, ServiceEventBus, ServiceEvents,
};
use strato_model::wire::{Doc, OpResult, ServiceError};
use strato_model::Caller;
use strato_pattern::{Dialect, Pattern};
use strato_queue::{NewMessage, QueueEngine, QueueOptions};
use strato_store::{DocumentKey, Store, StoreError};

use records::{BusRecord, GroupRecord, RuleRecord, ScheduleRecord, DEFAULT_BUS};
use schedule::{Flavor, Schedule};

/// The JSON protocol's `X-Amz-Target` prefix.
pub const TARGET_PREFIX: &str = "AWSEvents";
/// The SigV4 service names.
pub const SIGNING_NAME: &str = "events";
pub const SCHEDULER_SIGNING_NAME: &str = "scheduler";
/// The queue-engine queue deliveries wait in.
const DELIVERY_QUEUE: &str = "events-delivery";

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("cannot load EventBridge's state: {0}")]
    Store(#[from] StoreError),
    #[error("stored EventBridge document {id} is unreadable: {source}")]
    Corrupt {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot open EventBridge's delivery queue: {0}")]
    Queue(#[from] strato_queue::QueueError),
}

type AccountKey = (String, String);

/// A rule with its compiled pattern and schedule.
#[derive(Debug)]
pub(crate) struct LiveRule {
    pub record: RuleRecord,
    pub pattern: Option<Pattern>,
    pub schedule: Option<Schedule>,
}

impl LiveRule {
    pub fn new(record: RuleRecord) -> LiveRule {
        let pattern = record
            .event_pattern
            .as_deref()
            .and_then(|p| Pattern::parse(p, Dialect::EventBridge).ok());
        let schedule = record
            .schedule_expression
            .as_deref()
            .and_then(|e| Schedule::parse(e, Flavor::Rule, chrono_tz::UTC));
        LiveRule {
            record,
            pattern,
            schedule,
        }
    }
}

/// A schedule with its parsed expression.
#[derive(Debug)]
pub(crate) struct LiveSchedule {
    pub record: ScheduleRecord,
    pub schedule: Option<Schedule>,
}

impl LiveSchedule {
    pub fn new(record: ScheduleRecord) -> LiveSchedule {
        let zone = record
            .timezone
            .as_deref()
            .and_then(|z| z.parse().ok())
            .unwrap_or(chrono_tz::UTC);
        let schedule = Schedule::parse(&record.expression, Flavor::Scheduler, zone);
        LiveSchedule { record, schedule }
    }
}

#[derive(Default)]
pub(crate) struct State {
    /// Custom buses by (account, region) then name; `default` is implicit.
    pub buses: BTreeMap<AccountKey, BTreeMap<String, BusRecord>>,
    /// Rules by (account, region) then (bus, name).
    pub rules: BTreeMap<AccountKey, BTreeMap<(String, String), Arc<LiveRule>>>,
    /// Schedules by (account, region) then (group, name).
    pub schedules: BTreeMap<AccountKey, BTreeMap<(String, String), Arc<LiveSchedule>>>,
    /// Schedule groups other than `default`.
    pub groups: BTreeMap<AccountKey, BTreeMap<String, GroupRecord>>,
}

/// Amazon EventBridge and EventBridge Scheduler.
pub struct EventsService {
    store: Arc<dyn Store>,
    queues: Arc<dyn QueueEngine>,
    sinks: Arc<EventSinks>,
    invoker: Arc<dyn ServiceEvents>,
    time_scale: u32,
    pub(crate) state: RwLock<State>,
    /// Serializes control-plane changes so memory and store agree.
    pub(crate) control: tokio::sync::Mutex<()>,
    /// When this server started (epoch seconds): the default bus's age.
    started: i64,
}

/// One matched (event, target) on its way, as the delivery queue holds it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Delivery {
    pub account: String,
    pub region: String,
    /// The rule's or schedule's ARN (the Lambda `SourceArn`).
    pub source_arn: String,
    pub target: records::Target,
    /// What the target gets.
    pub payload: String,
    /// The event itself (a bus target routes it again).
    pub event: Value,
    /// Who invokes a function: `events.amazonaws.com`, or a schedule's role.
    pub principal: String,
    /// When the event was accepted (epoch ms): its age bounds retries.
    pub accepted_ms: i64,
}

impl Delivery {
    /// The deduplication id of what a FIFO queue target gets: the event's
    /// id (a schedule's: its execution id), so a retried delivery is not
    /// queued twice.
    pub fn dedup_id(&self) -> String {
        self.event
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }
}

impl EventsService {
    /// Loads buses, rules and schedules, and opens the delivery queue.
    pub async fn open(
        store: Arc<dyn Store>,
        queues: Arc<dyn QueueEngine>,
        sinks: Arc<EventSinks>,
        invoker: Arc<dyn ServiceEvents>,
        time_scale: u32,
    ) -> Result<Arc<EventsService>, EventsError> {
        let mut state = State::default();
        state.load::<BusRecord>(&*store).await?;
        state.load::<RuleRecord>(&*store).await?;
        state.load::<ScheduleRecord>(&*store).await?;
        state.load::<GroupRecord>(&*store).await?;
        queues
            .create_queue(DELIVERY_QUEUE, QueueOptions::default())
            .await?;
        Ok(Arc::new(EventsService {
            store,
            queues,
            sinks,
            invoker,
            time_scale: time_scale.max(1),
            state: RwLock::new(state),
            control: tokio::sync::Mutex::new(()),
            started: chrono::Utc::now().timestamp(),
        }))
    }

    /// Starts the delivery worker and the scheduler loop; deliveries a
    /// previous run left in flight are taken up again.
    pub async fn start(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        if let Err(e) = self.queues.release_leases(DELIVERY_QUEUE).await {
            tracing::warn!(error = %e, "cannot release EventBridge's delivery leases");
        }
        vec![
            tokio::spawn(delivery::run_worker(self.clone())),
            tokio::spawn(delivery::run_scheduler(self.clone())),
        ]
    }

    /// One EventBridge operation (`AWSEvents.*`), in the JSON shapes.
    pub async fn operation(&self, caller: &Caller, operation: &str, input: Doc) -> OpResult {
        operations::dispatch(self, caller, operation, input).await
    }

    /// One Scheduler operation (REST-JSON), the path's members merged into
    /// `input`.
    pub async fn scheduler_operation(
        &self,
        caller: &Caller,
        operation: &str,
        input: Doc,
    ) -> OpResult {
        scheduler::dispatch(self, caller, operation, input).await
    }

    /// Whether an event bus ARN names an existing bus (a destination check).
    pub fn bus_exists(&self, account: &str, region: &str, arn: &str) -> bool {
        let prefix = format!("arn:aws:events:{region}:{account}:event-bus/");
        let Some(name) = arn.strip_prefix(&prefix) else {
            return false;
        };
        name == DEFAULT_BUS
            || self
                .state
                .read()
                .buses
                .get(&(account.to_string(), region.to_string()))
                .is_some_and(|b| b.contains_key(name))
    }

    pub(crate) fn bus_known(&self, account: &str, region: &str, name: &str) -> bool {
        name == DEFAULT_BUS
            || self
                .state
                .read()
                .buses
                .get(&(account.to_string(), region.to_string()))
                .is_some_and(|b| b.contains_key(name))
    }

    pub(crate) async fn put_doc(
        &self,
        account: &str,
        region: &str,
        kind: &str,
        id: &str,
        value: &impl serde::Serialize,
    ) -> Result<(), ServiceError> {
        let doc = serde_json::to_value(value).map_err(|e| error::internal(e.to_string()))?;
        self.store
            .put_document(&DocumentKey::new(account, region, kind, id), &doc)
            .await
            .map_err(|e| error::internal(e.to_string()))
    }

    pub(crate) async fn delete_doc(
        &self,
        account: &str,
        region: &str,
        kind: &str,
        id: &str,
    ) -> Result<(), ServiceError> {
        self.store
            .delete_document(&DocumentKey::new(account, region, kind, id))
            .await
            .map(|_| ())
            .map_err(|e| error::internal(e.to_string()))
    }

    /// The deliveries an event on a bus makes: one per target of every
    /// enabled rule whose pattern matches.
    pub(crate) fn route(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        event: &Value,
        accepted_ms: i64,
    ) -> Vec<Delivery> {
        let state = self.state.read();
        let Some(rules) = state.rules.get(&(account.to_string(), region.to_string())) else {
            return Vec::new();
        };
        rules
            .iter()
            .filter(|((rule_bus, _), _)| rule_bus == bus)
            .map(|(_, rule)| rule)
            .filter(|rule| rule.record.enabled())
            .filter(|rule| rule.pattern.as_ref().is_some_and(|p| p.matches(event)))
            .flat_map(|rule| rule_deliveries(&rule.record, event, accepted_ms))
            .collect()
    }

    /// Durably queues deliveries: once this returns Ok nothing is lost.
    pub(crate) async fn enqueue(&self, deliveries: &[Delivery]) -> Result<(), ServiceError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let messages = deliveries
            .iter()
            .map(|d| {
                serde_json::to_vec(d).map(|body| NewMessage {
                    body: Bytes::from(body),
                    ..NewMessage::default()
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| error::internal(e.to_string()))?;
        self.queues
            .send(DELIVERY_QUEUE, messages)
            .await
            .map(|_| ())
            .map_err(|e| error::internal(e.to_string()))
    }

    /// Puts an event on a bus: matched and queued.
    pub(crate) async fn put_on_bus(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        event: &Value,
    ) -> Result<(), ServiceError> {
        let now = chrono::Utc::now().timestamp_millis();
        let deliveries = self.route(account, region, bus, event, now);
        self.enqueue(&deliveries).await
    }
}

/// The deliveries of one rule for one event.
pub(crate) fn rule_deliveries(rule: &RuleRecord, event: &Value, accepted_ms: i64) -> Vec<Delivery> {
    let arn = rule.arn();
    let origin = transform::Origin {
        rule_arn: &arn,
        rule_name: &rule.name,
    };
    rule.targets
        .iter()
        .map(|target| Delivery {
            account: rule.account.clone(),
            region: rule.region.clone(),
            source_arn: arn.clone(),
            target: target.clone(),
            payload: transform::render(target, event, &origin),
            event: event.clone(),
            principal: "events.amazonaws.com".into(),
            accepted_ms,
        })
        .collect()
}

/// An event in EventBridge's envelope.
pub(crate) fn envelope(
    account: &str,
    region: &str,
    source: &str,
    detail_type: &str,
    resources: Vec<String>,
    detail: Value,
    time: chrono::DateTime<chrono::Utc>,
) -> Value {
    serde_json::json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": region,
        "resources": resources,
        "detail": detail,
    })
}

fn parse<T: serde::de::DeserializeOwned>(id: &str, doc: Value) -> Result<T, EventsError> {
    serde_json::from_value(doc).map_err(|source| EventsError::Corrupt {
        id: id.to_string(),
        source,
    })
}

fn delivery_error(destination: &str, e: &ServiceError) -> DeliveryError {
    DeliveryError::Failed {
        destination: destination.to_string(),
        reason: e.message.clone(),
    }
}

/// Async invocation records for a bus destination become AWS's
/// "Lambda Function Invocation Result" events on that bus.
#[async_trait::async_trait]
impl EventSink for EventsService {
    async fn deliver(&self, delivery: SinkDelivery<'_>) -> Result<(), DeliveryError> {
        let Destination {
            account,
            region,
            arn: destination,
        } = delivery.to;
        if let Content::DeadLetter { .. } = delivery.content {
            // Lambda's dead-letter targets are queues and topics, never buses.
            return Err(DeliveryError::Unsupported(destination.to_string()));
        }
        let record = delivery.content.into_body();
        let prefix = format!("arn:aws:events:{region}:{account}:event-bus/");
        let bus = destination
            .strip_prefix(&prefix)
            .filter(|bus| self.bus_known(account, region, bus))
            .ok_or_else(|| DeliveryError::Missing(destination.to_string()))?;
        let detail: Value = serde_json::from_slice(&record).map_err(|e| DeliveryError::Failed {
            destination: destination.to_string(),
            reason: e.to_string(),
        })?;
        let condition = detail
            .pointer("/requestContext/condition")
            .and_then(Value::as_str)
            .unwrap_or("Success");
        let detail_type = if condition == "Success" {
            "Lambda Function Invocation Result - Success"
        } else {
            "Lambda Function Invocation Result - Failure"
        };
        let resources = detail
            .pointer("/requestContext/functionArn")
            .and_then(Value::as_str)
            .map(|arn| vec![arn.to_string()])
            .unwrap_or_default();
        let event = envelope(
            account,
            region,
            "lambda",
            detail_type,
            resources,
            detail,
            chrono::Utc::now(),
        );
        self.put_on_bus(account, region, bus, &event)
            .await
            .map_err(|e| delivery_error(destination, &e))
    }
}

/// Services' own events go on the account's default bus.
#[async_trait::async_trait]
impl ServiceEventBus for EventsService {
    async fn emit(&self, event: AwsServiceEvent) -> Result<(), DeliveryError> {
        let envelope = envelope(
            &event.account,
            &event.region,
            &event.source,
            &event.detail_type,
            event.resources,
            event.detail,
            chrono::Utc::now(),
        );
        let bus = records::bus_arn(&event.region, &event.account, DEFAULT_BUS);
        self.put_on_bus(&event.account, &event.region, DEFAULT_BUS, &envelope)
            .await
            .map_err(|e| delivery_error(&bus, &e))
    }
}

#[cfg(test)]
mod tests;
