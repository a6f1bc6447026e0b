//! What the engine tells the rest of Strato about invocations: one call when
//! an invocation starts running, one when it finishes (with its outcome,
//! duration, billed duration and memory size), one per throttle. Metrics and
//! metering implement [`InvocationObserver`]; the calls are made on the
//! invocation path, so implementations must not block (hand the record to a
//! background task).

use std::sync::Arc;

use crate::{EngineError, InvokeResponse, InvokeTarget};

/// The observer and its records live in the model, so metrics and metering
/// need not depend on the engine.
pub use strato_model::telemetry::{
    AsyncMetric, AsyncSubject, FinishedInvocation, InvocationObserver, InvocationOutcome,
    InvocationSubject,
};

/// The subject of an invocation of `target`.
pub fn subject_of(target: &InvokeTarget) -> InvocationSubject {
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
        let subject = subject_of(target);
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
