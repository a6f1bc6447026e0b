//! What the engine reports upward about the functions it runs: their log
//! events and their invocations. The traits are implemented by the rooms
//! above the engine (the logs service, metrics and metering, API Gateway's
//! access logs), which therefore need only the model, not the engine.
//!
//! Pure data and traits: no I/O happens here.

use std::time::Duration;

/// One log event: when it was written and its text (multi-line records stay
/// one event, as in CloudWatch Logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub timestamp_ms: i64,
    pub message: String,
}

/// The account and region a log group belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogOwner {
    pub account: String,
    pub region: String,
}

/// Where function logs go. The logs service implements this over durable
/// storage; the engine's `MemoryLogs` keeps a bounded window in memory.
pub trait LogSink: Send + Sync + 'static {
    fn append(&self, group: &str, stream: &str, events: Vec<LogEvent>);

    /// Appends events of a function that `owner` owns. Sinks that keep log
    /// groups per account (as CloudWatch Logs does) override this.
    fn append_owned(&self, owner: &LogOwner, group: &str, stream: &str, events: Vec<LogEvent>) {
        let _ = owner;
        self.append(group, stream, events);
    }
}

/// How an invocation ended, as Lambda's metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationOutcome {
    Success,
    /// The function answered with an error (or its init failed).
    FunctionError,
    /// It ran past its timeout (`Sandbox.Timedout`).
    Timeout,
    /// Its runtime exited or was killed for memory (`Runtime.ExitError`,
    /// `Runtime.OutOfMemory`).
    Crash,
}

impl InvocationOutcome {
    pub fn is_error(self) -> bool {
        self != InvocationOutcome::Success
    }
}

/// Which function version an invocation concerns, and how it was named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationSubject {
    pub account: String,
    pub region: String,
    pub function: String,
    /// The version that ran (`$LATEST`, `1`, ...).
    pub executed_version: String,
    /// The qualifier of the invoked ARN when it named a version or alias.
    pub qualifier: Option<String>,
    /// The alias the caller invoked, if the qualifier is one.
    pub alias: Option<String>,
    pub memory_mb: u32,
}

/// One finished invocation (of the subject it is reported with).
#[derive(Debug, Clone)]
pub struct FinishedInvocation {
    pub outcome: InvocationOutcome,
    pub duration: Duration,
    /// Duration rounded up to the millisecond (at least 1 ms).
    pub billed_ms: u64,
    pub init_duration: Option<Duration>,
    pub max_memory_mb: u64,
    /// The provisioned concurrency allocated to the configuration whose
    /// provisioned instance ran it, if one did.
    pub provisioned_allocation: Option<u32>,
    /// When it finished, in milliseconds since the epoch.
    pub finished_at_ms: i64,
}

/// Told about every invocation the engine runs or refuses. The calls are
/// made on the invocation path, so implementations must not block (hand the
/// record to a background task).
pub trait InvocationObserver: Send + Sync + 'static {
    /// An admitted invocation starts (the concurrency gauge goes up).
    fn started(&self, subject: &InvocationSubject);
    /// It ended (the gauge goes down). Every `started` gets exactly one
    /// `finished`, whatever happened; `record` is `None` when the platform
    /// failed (no answer from the function: nothing is billed).
    fn finished(&self, subject: InvocationSubject, record: Option<FinishedInvocation>);
    /// An invocation was refused for lack of concurrency (HTTP 429).
    fn throttled(&self, subject: InvocationSubject, at_ms: i64);
    /// Something happened to an asynchronous event of `subject`'s function
    /// (AWS's `AsyncEvents*`, `DestinationDeliveryFailures` and
    /// `DeadLetterErrors` metrics).
    fn async_event(&self, subject: AsyncSubject, metric: AsyncMetric, at_ms: i64) {
        let _ = (subject, metric, at_ms);
    }
}

/// The function an asynchronous event belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncSubject {
    pub account: String,
    pub region: String,
    pub function: String,
}

/// One asynchronous-invocation measurement, named for AWS's metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsyncMetric {
    /// `AsyncEventsReceived`: an event was queued.
    Received,
    /// `AsyncEventAge`: how long the event had been queued when it was
    /// (again) handed to the function.
    Age(Duration),
    /// `AsyncEventsDropped`: an event was dropped without a successful run.
    Dropped,
    /// `DestinationDeliveryFailures`: a destination refused a record.
    DestinationDeliveryFailure,
    /// `DeadLetterErrors`: the dead-letter queue refused an event.
    DeadLetterError,
    /// `RecursiveInvocationsDropped`: an event was stopped as part of a
    /// recursive loop.
    RecursiveInvocationDropped,
}

impl AsyncMetric {
    /// The metric's name in the `AWS/Lambda` namespace.
    pub fn name(self) -> &'static str {
        match self {
            AsyncMetric::Received => "AsyncEventsReceived",
            AsyncMetric::Age(_) => "AsyncEventAge",
            AsyncMetric::Dropped => "AsyncEventsDropped",
            AsyncMetric::DestinationDeliveryFailure => "DestinationDeliveryFailures",
            AsyncMetric::DeadLetterError => "DeadLetterErrors",
            AsyncMetric::RecursiveInvocationDropped => "RecursiveInvocationsDropped",
        }
    }

    /// The datapoint's value: milliseconds for the age, 1 for counts.
    pub fn value(self) -> f64 {
        match self {
            AsyncMetric::Age(age) => age.as_secs_f64() * 1000.0,
            _ => 1.0,
        }
    }
}
