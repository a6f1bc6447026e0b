//! Asynchronous invocation on the durable queue engine (`strato-queue`).
//!
//! An `Event` invocation is a message in its function's queue
//! (`lambda-async/{account}/{region}/{function}`), committed to disk before
//! the caller gets its 202. One poller task per queue that has messages
//! drains it: it receives one event at a time, waits for a concurrency slot
//! of the function (so events wait while the function is throttled, as on
//! AWS, and sync calls are never refused to make room for them), and runs
//! the invocation on its own task, so a function with reserved concurrency N
//! runs N events at once.
//!
//! AWS's retry policy: a function error (also a timeout or a crash) is
//! retried `MaximumRetryAttempts` times (default 2), one minute after the
//! first failure and two after the second; throttles and platform failures
//! are retried with back-off (1 s doubling to 5 min) until the event reaches
//! its maximum age (default 6 h), when it is dropped with `EventAgeExceeded`.
//! A retry is a change of the message's visibility, with the attempt count
//! written into its metadata in the same commit, so a restart resumes the
//! policy where it was. Outcomes go to the `OnSuccess` / `OnFailure`
//! destination, or to the dead-letter queue, as AWS's invocation record
//! before the message is deleted: delivery happens at least once.
//!
//! Messages a poller holds are leased for longer than any event may live;
//! this server is their only consumer, so at start every lease left by a
//! previous (crashed) run is released and its events run again.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strato_model::message_attribute::MessageAttribute;
use strato_model::EventInvokeConfig;
use strato_queue::{NewMessage, QueueEngine, QueueOptions, Received};

use crate::observer::{AsyncMetric, AsyncSubject};

mod dispatch;
mod outcome;
mod services;
use crate::{Engine, EngineError, InvokeTarget};
pub use services::{
    arn_service, AwsServiceEvent, EventSinks, ServiceEvent, ServiceEventBus, ServiceEventError,
    ServiceEvents,
};

/// The queues of asynchronous invocations start with this.
pub const ASYNC_QUEUE_PREFIX: &str = "lambda-async/";

/// How long a poller holds an event it took: longer than the largest
/// maximum event age, so only a restart (which releases every lease) or
/// the poller itself ever puts it back.
const EVENT_LEASE: Duration = Duration::from_secs(7 * 60 * 60);
/// How long a receive waits for an event before the poller checks whether
/// its queue is empty and it can end.
const POLL_WAIT: Duration = Duration::from_secs(20);
/// Back-off after a throttle or a platform failure: from this, doubling…
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// … up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// AWS retries after a function error one minute later, then two.
const RETRY_STEP: Duration = Duration::from_secs(60);
/// AWS's async invocation record format.
const RECORD_VERSION: &str = "1.0";

/// The queue of a function's asynchronous invocations.
pub fn queue_name(account: &str, region: &str, function: &str) -> String {
    format!("{ASYNC_QUEUE_PREFIX}{account}/{region}/{function}")
}

/// What a queued event carries besides its payload (the message body):
/// the message's metadata, JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct QueuedEvent {
    /// The invocation's request id: the 202's `x-amzn-RequestId`, every
    /// attempt's `START`/`END`/`REPORT`, and the record's `requestId`.
    pub request_id: String,
    pub account: String,
    pub region: String,
    pub function: String,
    /// The version or alias invoked; `None` for the unqualified function.
    #[serde(default)]
    pub qualifier: Option<String>,
    #[serde(default)]
    pub client_context: Option<String>,
    /// How many times the function ran for this event.
    #[serde(default)]
    pub invocations: u32,
    /// The current back-off after throttles or platform failures.
    #[serde(default)]
    pub backoff_ms: u64,
    /// The trace header the event runs with, its lineage counting this
    /// invocation ([`strato_model::recursion::next_hop`]).
    #[serde(default)]
    pub trace_header: Option<String>,
    /// How many times the function has run in the event's chain of
    /// requests, this event included: beyond
    /// [`strato_model::recursion::MAX_RECURSIVE_INVOCATIONS`] the event is
    /// a recursive loop.
    #[serde(default)]
    pub lineage_count: u32,
}

/// The version a queued event runs now, and the settings that govern it.
#[derive(Debug, Clone)]
pub struct AsyncTarget {
    pub target: InvokeTarget,
    /// The qualifier's `EventInvokeConfig`, or AWS's defaults.
    pub settings: EventInvokeConfig,
    /// The function's `DeadLetterConfig.TargetArn`.
    pub dead_letter_arn: Option<String>,
    /// Whether a recursive loop stops the function's events.
    pub recursive_loop: strato_model::RecursiveLoop,
}

/// Why a queued event cannot run now.
#[derive(Debug, thiserror::Error)]
pub enum AsyncTargetError {
    /// The function, version or alias no longer exists: its events are
    /// discarded, as AWS discards them.
    #[error("{0} no longer exists")]
    Gone(String),
    /// It exists but cannot run yet (`Pending`, an update in progress):
    /// retried with back-off.
    #[error("{0}")]
    NotReady(String),
}

/// Resolves queued events to what they run: implemented above the engine,
/// where the function catalog and the functions' credentials live.
#[async_trait::async_trait]
pub trait AsyncTargets: Send + Sync + 'static {
    async fn resolve(
        &self,
        account: &str,
        region: &str,
        function: &str,
        qualifier: Option<&str>,
    ) -> Result<AsyncTarget, AsyncTargetError>;
}

/// Why a destination did not take a record.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// No service of this server delivers to this kind of ARN.
    #[error("no Strato service delivers to {0}")]
    Unsupported(String),
    #[error("the destination {0} does not exist")]
    Missing(String),
    #[error("delivery to {destination} failed: {reason}")]
    Failed { destination: String, reason: String },
    /// The destination's own policy does not admit the delivering service
    /// (an SNS topic policy without `events.amazonaws.com`).
    #[error("{0}")]
    Denied(String),
}

/// The AWS service a delivery is made for, when the destination's own
/// resource policy decides whether to take it (an SNS topic's policy must
/// allow `events.amazonaws.com` to publish, with the rule as `SourceArn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceOrigin<'a> {
    /// `events.amazonaws.com`, `s3.amazonaws.com`, ...
    pub principal: &'a str,
    /// The rule, bucket or alarm the delivery comes from (`aws:SourceArn`).
    pub source_arn: &'a str,
    /// The account that owns it (`aws:SourceAccount`).
    pub source_account: &'a str,
    /// `AWS:SourceOwner`, for services that act as the account (CloudWatch
    /// alarms); `None` for those that act as themselves.
    pub source_owner: Option<&'a str>,
}

/// Where a delivery goes: a destination's ARN, for a resource of `account`
/// in `region` (a destination in another account or region is missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub arn: &'a str,
}

impl<'a> Destination<'a> {
    pub fn new(account: &'a str, region: &'a str, arn: &'a str) -> Destination<'a> {
        Destination {
            account,
            region,
            arn,
        }
    }

    /// A delivery of `content` here.
    pub fn with(self, content: Content<'a>) -> Delivery<'a> {
        Delivery { to: self, content }
    }
}

/// One delivery: where it goes and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<'a> {
    pub to: Destination<'a>,
    pub content: Content<'a>,
}

/// What a destination is asked to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content<'a> {
    /// An async invocation record for an `OnSuccess`/`OnFailure` destination.
    Record(Bytes),
    /// A service's notification with a subject (a CloudWatch alarm's
    /// `ALARM: "name" in US East (N. Virginia)`), delivered as that service
    /// ([`ServiceOrigin`]): a topic publishes it with that `Subject` when
    /// its policy admits the service; other destinations take the message
    /// as a record.
    Notification {
        subject: &'a str,
        message: Bytes,
        origin: ServiceOrigin<'a>,
    },
    /// A record a service delivers as itself ([`ServiceOrigin`]): a
    /// destination with a resource policy (an SNS topic) takes it only when
    /// that policy admits the service; others take it as a record.
    As {
        record: Bytes,
        origin: ServiceOrigin<'a>,
    },
    /// A message for a FIFO queue in a message group (an EventBridge
    /// target's `SqsParameters.MessageGroupId`), deduplicated by
    /// `dedup_id`. Destinations without message groups take it as a record.
    Grouped { record: Bytes, group: MessageGroup },
    /// A failed event for a dead-letter queue or topic, with the string
    /// message attributes the failing service puts on it.
    DeadLetter {
        payload: Bytes,
        attributes: DeadLetterAttributes,
    },
}

impl Content<'_> {
    /// The service whose admission a destination with a resource policy
    /// checks before it takes the delivery, if it comes from one.
    pub fn origin(&self) -> Option<&ServiceOrigin<'_>> {
        match self {
            Content::Notification { origin, .. } | Content::As { origin, .. } => Some(origin),
            Content::Record(_) | Content::Grouped { .. } | Content::DeadLetter { .. } => None,
        }
    }

    /// The bytes delivered, for a destination that takes every kind of
    /// delivery as a record.
    pub fn into_body(self) -> Bytes {
        match self {
            Content::Record(body)
            | Content::Notification { message: body, .. }
            | Content::As { record: body, .. }
            | Content::Grouped { record: body, .. }
            | Content::DeadLetter { payload: body, .. } => body,
        }
    }
}

/// Delivers invocation records and dead-lettered events to destinations
/// other than Lambda functions (SQS queues, SNS topics, EventBridge buses):
/// implemented where those services live, above the engine. Lambda
/// destinations the engine delivers itself, into their own queues.
///
/// A service implements [`EventSink::deliver`], one match over the kinds of
/// [`Content`]; callers name the kind with the methods after it.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Takes one delivery, or says why not.
    async fn deliver(&self, delivery: Delivery<'_>) -> Result<(), DeliveryError>;

    /// [`Content::Record`].
    async fn deliver_record(
        &self,
        account: &str,
        region: &str,
        destination: &str,
        record: Bytes,
    ) -> Result<(), DeliveryError> {
        let to = Destination::new(account, region, destination);
        self.deliver(to.with(Content::Record(record))).await
    }

    /// [`Content::Notification`].
    async fn deliver_notification(
        &self,
        account: &str,
        region: &str,
        destination: &str,
        subject: &str,
        message: Bytes,
        origin: ServiceOrigin<'_>,
    ) -> Result<(), DeliveryError> {
        let to = Destination::new(account, region, destination);
        let content = Content::Notification {
            subject,
            message,
            origin,
        };
        self.deliver(to.with(content)).await
    }

    /// [`Content::As`].
    async fn deliver_as(
        &self,
        account: &str,
        region: &str,
        destination: &str,
        record: Bytes,
        origin: ServiceOrigin<'_>,
    ) -> Result<(), DeliveryError> {
        let to = Destination::new(account, region, destination);
        self.deliver(to.with(Content::As { record, origin })).await
    }

    /// [`Content::Grouped`].
    async fn deliver_grouped(
        &self,
        account: &str,
        region: &str,
        destination: &str,
        record: Bytes,
        group: MessageGroup,
    ) -> Result<(), DeliveryError> {
        let to = Destination::new(account, region, destination);
        self.deliver(to.with(Content::Grouped { record, group }))
            .await
    }

    /// [`Content::DeadLetter`].
    async fn deliver_dead_letter(
        &self,
        account: &str,
        region: &str,
        target: &str,
        payload: Bytes,
        attributes: DeadLetterAttributes,
    ) -> Result<(), DeliveryError> {
        let to = Destination::new(account, region, target);
        let content = Content::DeadLetter {
            payload,
            attributes,
        };
        self.deliver(to.with(content)).await
    }
}

/// The message group and deduplication id of a message for a FIFO queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageGroup {
    pub group_id: String,
    pub dedup_id: String,
}

/// The string message attributes AWS puts on a dead-lettered event, in
/// order: Lambda's `RequestID`, `ErrorCode`, `ErrorMessage`
/// ([`DeadLetterAttributes::lambda`]); EventBridge's `RULE_ARN`,
/// `TARGET_ARN`, `ERROR_CODE`, ... (built with [`DeadLetterAttributes::with`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeadLetterAttributes {
    pub attributes: Vec<(String, String)>,
}

impl DeadLetterAttributes {
    /// Lambda's: the request id, the response's HTTP status code as text
    /// (`200`) and the first 1 KB of the error message.
    pub fn lambda(request_id: &str, error_code: &str, error_message: &str) -> DeadLetterAttributes {
        DeadLetterAttributes::default()
            .with("RequestID", request_id)
            .with("ErrorCode", error_code)
            .with("ErrorMessage", error_message)
    }

    /// These attributes and one more.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> DeadLetterAttributes {
        self.attributes.push((name.to_string(), value.into()));
        self
    }

    /// As the string message attributes of the SQS message or SNS
    /// publication that carries the failed event.
    pub fn message_attributes(&self) -> Vec<MessageAttribute> {
        self.attributes
            .iter()
            .map(|(name, value)| MessageAttribute::string(name, value))
            .collect()
    }

    /// The value of one attribute.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the async machinery is tuned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AsyncSettings {
    /// No event lives longer than this, whatever its configuration says.
    max_event_age: Duration,
    /// Test-only: every async timing (retry delays, back-off, event ages)
    /// is divided by this, so "two minutes" can pass in two seconds.
    time_scale: u32,
}

impl AsyncSettings {
    fn scaled(&self, d: Duration) -> Duration {
        d / self.time_scale.max(1)
    }
}

/// The engine's async side: the queue, the resolver, the sink, the pollers.
pub(crate) struct AsyncInvoker {
    queue: Arc<dyn QueueEngine>,
    targets: Arc<dyn AsyncTargets>,
    sink: Option<Arc<dyn EventSink>>,
    settings: AsyncSettings,
    /// Queues known to exist (created by this run or found at start).
    created: dashmap::DashSet<String>,
    /// Queues with a running poller.
    pollers: dashmap::DashMap<String, ()>,
}

/// Why an event ended without success, in AWS's record words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureCondition {
    RetriesExhausted,
    EventAgeExceeded,
    /// Stopped as part of a recursive loop.
    RecursiveInvocation,
}

impl FailureCondition {
    fn as_str(self) -> &'static str {
        match self {
            FailureCondition::RetriesExhausted => "RetriesExhausted",
            FailureCondition::EventAgeExceeded => "EventAgeExceeded",
            FailureCondition::RecursiveInvocation => "RecursiveInvocationException",
        }
    }
}

impl AsyncInvoker {
    pub(crate) fn new(
        queue: Arc<dyn QueueEngine>,
        targets: Arc<dyn AsyncTargets>,
        sink: Option<Arc<dyn EventSink>>,
        settings: AsyncSettings,
    ) -> AsyncInvoker {
        AsyncInvoker {
            queue,
            targets,
            sink,
            settings,
            created: dashmap::DashSet::new(),
            pollers: dashmap::DashMap::new(),
        }
    }
}

impl Engine {
    /// Turns asynchronous invocation on: from now `enqueue_event` accepts
    /// events, and every event a previous run left queued (or in flight)
    /// runs again. `time_scale` (1 in production) divides every async
    /// timing, for tests.
    pub async fn start_async(
        self: &Arc<Self>,
        queue: Arc<dyn QueueEngine>,
        targets: Arc<dyn AsyncTargets>,
        sink: Option<Arc<dyn EventSink>>,
        time_scale: u32,
    ) -> Result<(), EngineError> {
        let settings = AsyncSettings {
            max_event_age: self.config.max_event_age,
            time_scale,
        };
        let invoker = Arc::new(AsyncInvoker::new(queue.clone(), targets, sink, settings));
        if self.async_invoker.set(invoker.clone()).is_err() {
            return Ok(());
        }
        for name in queue.queue_names(ASYNC_QUEUE_PREFIX) {
            let released = queue
                .release_leases(&name)
                .await
                .map_err(EngineError::AsyncQueue)?;
            if released > 0 {
                tracing::info!(queue = %name, released, "events in flight when the previous run stopped will run again");
            }
            invoker.created.insert(name.clone());
            self.ensure_poller(&invoker, &name);
        }
        Ok(())
    }

    /// Accepts an event invocation: it is durable when this returns `Ok`
    /// (the caller may answer 202 then), and runs as soon as the function's
    /// concurrency allows.
    pub async fn enqueue_event(
        self: &Arc<Self>,
        event: QueuedEvent,
        payload: Bytes,
    ) -> Result<(), EngineError> {
        let invoker = self
            .async_invoker
            .get()
            .ok_or(EngineError::AsyncUnavailable)?
            .clone();
        let name = queue_name(&event.account, &event.region, &event.function);
        if !invoker.created.contains(&name) {
            invoker
                .queue
                .create_queue(&name, async_queue_options(&invoker.settings))
                .await
                .map_err(EngineError::AsyncQueue)?;
            invoker.created.insert(name.clone());
        }
        let metadata = serde_json::to_vec(&event).map_err(EngineError::AsyncEncoding)?;
        invoker
            .queue
            .send(
                &name,
                vec![NewMessage {
                    body: payload,
                    metadata: Bytes::from(metadata),
                    ..NewMessage::default()
                }],
            )
            .await
            .map_err(EngineError::AsyncQueue)?;
        self.observe_async(&event, AsyncMetric::Received);
        self.ensure_poller(&invoker, &name);
        Ok(())
    }

    fn count_expired_event(&self) {
        self.expired_events
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn observe_async(&self, event: &QueuedEvent, metric: AsyncMetric) {
        if let Some(observer) = self.observer.get() {
            observer.async_event(
                AsyncSubject {
                    account: event.account.clone(),
                    region: event.region.clone(),
                    function: event.function.clone(),
                },
                metric,
                chrono::Utc::now().timestamp_millis(),
            );
        }
    }

    /// Starts the queue's poller unless one runs.
    fn ensure_poller(self: &Arc<Self>, invoker: &Arc<AsyncInvoker>, queue: &str) {
        if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let dashmap::mapref::entry::Entry::Vacant(slot) = invoker.pollers.entry(queue.to_string())
        else {
            return;
        };
        slot.insert(());
        let (engine, invoker, queue) = (self.clone(), invoker.clone(), queue.to_string());
        tokio::spawn(async move { engine.poll(invoker, queue).await });
    }

    /// Ends a poller whose queue is empty. Decided under the pollers map's
    /// entry lock, and `enqueue_event` asks for a poller only after its
    /// message is committed, so an event is never left without one.
    fn retire_poller_if_idle(&self, invoker: &AsyncInvoker, queue: &str) -> bool {
        let dashmap::mapref::entry::Entry::Occupied(slot) =
            invoker.pollers.entry(queue.to_string())
        else {
            return true;
        };
        let empty = invoker
            .queue
            .counts(queue)
            .map(|c| c.visible + c.delayed + c.in_flight == 0)
            .unwrap_or(true);
        if empty {
            slot.remove();
        }
        empty
    }
}

fn async_queue_options(settings: &AsyncSettings) -> QueueOptions {
    QueueOptions {
        // Kept a little longer than any event may live; dispatch drops
        // older ones with their outcome recorded.
        retention: settings.max_event_age + Duration::from_secs(3600),
        ..QueueOptions::default()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// When the event reaches its maximum age (unix ms).
fn event_deadline(settings: &AsyncSettings, message: &Received, config: &EventInvokeConfig) -> i64 {
    let configured = Duration::from_secs(u64::from(config.max_event_age_seconds()));
    let age = settings.scaled(configured.min(settings.max_event_age));
    message.sent_at_ms.saturating_add(duration_ms(age))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_events_round_trip_and_old_metadata_gets_defaults() {
        let event = QueuedEvent {
            request_id: "r".into(),
            account: "a".into(),
            region: "us-east-1".into(),
            function: "f".into(),
            qualifier: Some("1".into()),
            client_context: None,
            invocations: 2,
            backoff_ms: 4000,
            trace_header: Some("Root=1-a-b;Lineage=0a1b2c3d:2".into()),
            lineage_count: 2,
        };
        let bytes = serde_json::to_vec(&event).unwrap();
        assert_eq!(
            serde_json::from_slice::<QueuedEvent>(&bytes).unwrap(),
            event
        );
        let minimal: QueuedEvent = serde_json::from_str(
            r#"{"request_id":"r","account":"a","region":"us-east-1","function":"f"}"#,
        )
        .unwrap();
        assert_eq!(minimal.invocations, 0);
        assert_eq!(minimal.qualifier, None);
    }

    #[test]
    fn time_scale_divides_delays_and_ages() {
        let settings = AsyncSettings {
            max_event_age: crate::DEFAULT_MAX_EVENT_AGE,
            time_scale: 60,
        };
        assert_eq!(settings.scaled(RETRY_STEP * 2), Duration::from_secs(2));
        let message = Received {
            message_id: "m".into(),
            receipt_handle: "h".into(),
            body: Bytes::new(),
            metadata: Bytes::new(),
            sent_at_ms: 1_000,
            first_received_at_ms: 1_000,
            receive_count: 1,
            group_id: None,
            dedup_id: None,
            sequence_number: None,
        };
        let config = EventInvokeConfig {
            maximum_event_age_seconds: Some(60),
            ..EventInvokeConfig::default()
        };
        assert_eq!(event_deadline(&settings, &message, &config), 2_000);
        // The server's cap wins over a longer configured age.
        let capped = AsyncSettings {
            max_event_age: Duration::from_secs(30),
            time_scale: 1,
        };
        assert_eq!(
            event_deadline(&capped, &message, &EventInvokeConfig::default()),
            31_000
        );
    }
}
