//! What the engine tells the rest of Strato about invocations: one call when
//! an invocation starts running, one when it finishes (with its outcome,
//! duration, billed duration and memory size), one per throttle. Metrics and
//! metering implement [`InvocationObserver`]; the calls are made on the
//! invocation path, so implementations must not block (hand the record to a
//! background task).

use std::sync::Arc;
use std::time::Duration;

use crate::{EngineError, InvokeResponse, InvokeTarget};

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

impl InvocationSubject {
    pub fn of(target: &InvokeTarget) -> InvocationSubject {
        let qualifier = invoked_qualifier(&target.invoked_arn);
        let alias = qualifier.clone().filter(|q| is_alias_name(q));
        InvocationSubject {
            account: target.account.clone(),
            region: target.region.clone(),
            function: target.config.name.clone(),
            executed_version: target.config.version.clone(),
            qualifier,
            alias,
            memory_mb: u32::try_from(target.config.memory_size).unwrap_or(0),
        }
    }
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

/// Told about every invocation the engine runs or refuses.
pub trait InvocationObserver: Send + Sync + 'static {
    /// An admitted invocation starts (the concurrency gauge goes up).
    fn started(&self, subject: &InvocationSubject);
    /// It ended (the gauge goes down). Every `started` gets exactly one
    /// `finished`, whatever happened; `outcome` is `None` when the platform
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

/// An invocation being observed: `begin` at admission, `end` with its result.
pub(crate) struct Observation {
    observer: Arc<dyn InvocationObserver>,
    subject: InvocationSubject,
}

impl Observation {
    pub(crate) fn begin(
        observer: Option<&Arc<dyn InvocationObserver>>,
        target: &InvokeTarget,
    ) -> Option<Observation> {
        let observer = observer?.clone();
        let subject = InvocationSubject::of(target);
        observer.started(&subject);
        Some(Observation { observer, subject })
    }

    pub(crate) fn end(self, result: &Result<InvokeResponse, EngineError>) {
        let now = chrono::Utc::now().timestamp_millis();
        match result {
            Ok(response) => {
                let mut subject = self.subject;
                if subject.executed_version != response.executed_version {
                    subject.executed_version = response.executed_version.clone();
                }
                let record = FinishedInvocation {
                    outcome: outcome_of(response),
                    duration: response.duration,
                    billed_ms: response.billed_ms,
                    init_duration: response.init_duration,
                    max_memory_mb: response.max_memory_mb,
                    provisioned_allocation: response.provisioned_allocation,
                    finished_at_ms: now,
                };
                self.observer.finished(subject, Some(record));
            }
            Err(EngineError::MemoryBudgetFull { .. }) => {
                // Answered with a 429, as a throttle.
                self.observer.throttled(self.subject.clone(), now);
                self.observer.finished(self.subject, None);
            }
            Err(_) => self.observer.finished(self.subject, None),
        }
    }
}

/// The outcome an answer stands for: the engine's own error payloads name
/// timeouts and crashes by their `errorType`.
pub fn outcome_of(response: &InvokeResponse) -> InvocationOutcome {
    if response.function_error.is_none() {
        return InvocationOutcome::Success;
    }
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(rename = "errorType")]
        error_type: Option<String>,
    }
    let error_type = serde_json::from_slice::<ErrorBody>(&response.payload)
        .ok()
        .and_then(|b| b.error_type);
    match error_type.as_deref() {
        Some("Sandbox.Timedout") => InvocationOutcome::Timeout,
        Some("Runtime.ExitError") | Some("Runtime.OutOfMemory") => InvocationOutcome::Crash,
        _ => InvocationOutcome::FunctionError,
    }
}

/// The qualifier of `arn:aws:lambda:region:account:function:name[:qualifier]`.
pub fn invoked_qualifier(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(8, ':');
    let qualifier = parts.nth(7)?;
    (!qualifier.is_empty()).then(|| qualifier.to_string())
}

/// A qualifier that is neither `$LATEST` nor a version number.
fn is_alias_name(qualifier: &str) -> bool {
    qualifier != "$LATEST" && !qualifier.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifier_is_the_eighth_part_of_the_arn() {
        assert_eq!(
            invoked_qualifier("arn:aws:lambda:us-east-1:000000000000:function:f:live"),
            Some("live".into())
        );
        assert_eq!(
            invoked_qualifier("arn:aws:lambda:us-east-1:000000000000:function:f"),
            None
        );
    }

    #[test]
    fn versions_and_latest_are_not_aliases() {
        assert!(!is_alias_name("$LATEST"));
        assert!(!is_alias_name("12"));
        assert!(is_alias_name("live"));
    }
}
