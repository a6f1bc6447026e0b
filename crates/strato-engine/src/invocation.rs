//! One invocation on an instance: the event's delivery through the Runtime
//! API, the platform's `START`/`END`/`REPORT` lines, and the answer AWS
//! gives when the function fails, times out, runs out of memory or exits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use serde_json::json;

use crate::instance::{Death, Instance, InvocationEnd, StartError};
use crate::pool::InstancePool;
use crate::runtime_api::{self, Dispatch, Outcome, StreamSink};
use crate::SCALE_OUT_WAIT_CAP;
use crate::{
    pool_key, provisioned, Engine, EngineError, InvokeRequest, InvokeResponse, InvokeTarget,
    INITIALIZATION_ON_DEMAND,
};

/// `Root=1-{time}-{random};Parent=...;Sampled=0`, an X-Ray trace header.
fn trace_id() -> String {
    let now = chrono::Utc::now().timestamp();
    let root: [u8; 12] = rand::random();
    let parent: [u8; 8] = rand::random();
    format!(
        "Root=1-{now:08x}-{};Parent={};Sampled=0",
        hex::encode(root),
        hex::encode(parent)
    )
}

/// AWS's billed duration: the duration rounded up to the next whole
/// millisecond, at least 1 ms; one beyond `u64` milliseconds saturates.
fn billed_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// How an invocation with no idle instance gets one.
enum ScaleOut {
    /// An instance of its pool came free while it waited.
    Idle(Box<Instance>),
    /// Start another, holding an init slot through its init when one was
    /// free.
    Start(Option<tokio::sync::OwnedSemaphorePermit>),
}

fn error_payload(error_type: &str, message: String) -> Bytes {
    Bytes::from(json!({ "errorType": error_type, "errorMessage": message }).to_string())
}

impl Engine {
    /// Runs one admitted invocation: on a warm instance of its version if
    /// one is idle, on a cold-started one otherwise. A response the runtime
    /// streams goes to `stream` as it arrives.
    pub(crate) async fn run(
        self: Arc<Self>,
        target: InvokeTarget,
        request: InvokeRequest,
        stream: Option<StreamSink>,
    ) -> Result<InvokeResponse, EngineError> {
        if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        let c = target.config.clone();
        let request_id = request
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let key = pool_key(&target);
        let pool = self.pools.entry(key).or_default().clone();
        let started = Instant::now();
        // Positive after `max(1)`, so `unsigned_abs` is the value itself.
        let timeout = Duration::from_secs(c.timeout.max(1).unsigned_abs());

        let mut warm = pool.acquire();
        // Made when the first instance is ready, so the deadline does not
        // count the cold start; a redelivery keeps it.
        let mut dispatch: Option<Dispatch> = None;
        let mut redelivered = false;
        let (mut instance, logs, init_duration, invoke_started, end) = loop {
            // A warm instance can end between its last invocation and this
            // one (its runtime exited after answering): an ended one is
            // replaced by a fresh instance before the event is handed over.
            let mut instance = match warm.take() {
                Some(instance) if instance.is_usable() => instance,
                ended => {
                    drop(ended);
                    match self.idle_or_init_slot(&pool).await {
                        ScaleOut::Idle(instance) => *instance,
                        ScaleOut::Start(slot) => {
                            let starting = pool.start();
                            let start = self
                                .start_instance(
                                    &target,
                                    &request_id,
                                    started,
                                    request.tail_log,
                                    INITIALIZATION_ON_DEMAND,
                                )
                                .await;
                            // The init is over (done or failed): the slot
                            // goes to the next start.
                            drop(slot);
                            drop(starting);
                            match start? {
                                Ok(instance) => instance,
                                Err(answer) => return Ok(answer),
                            }
                        }
                    }
                }
            };
            let init_duration = instance.init_duration.take();
            let logs = instance.logs.clone();
            if request.tail_log {
                logs.begin_invocation();
            }
            logs.line(format!(
                "START RequestId: {request_id} Version: {}",
                c.version
            ));
            let dispatch = dispatch
                .get_or_insert_with(|| Dispatch {
                    request_id: request_id.clone(),
                    payload: request.payload.clone(),
                    deadline_ms: chrono::Utc::now()
                        .timestamp_millis()
                        .saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)),
                    invoked_function_arn: target.invoked_arn.clone(),
                    trace_id: request.trace_header.clone().unwrap_or_else(trace_id),
                    client_context: request.client_context.clone(),
                    cognito_identity: request.cognito_identity.clone(),
                })
                .clone();
            let invoke_started = Instant::now();
            match instance.invoke(dispatch, timeout, stream.clone()).await {
                // The instance ended before it took the event: the event
                // goes to a fresh instance (once) instead of failing for
                // nothing.
                InvocationEnd::Undelivered(_) if !redelivered => redelivered = true,
                end => break (instance, logs, init_duration, invoke_started, end),
            }
        };
        let duration = invoke_started.elapsed();

        let (payload, function_error, keep) = match end {
            InvocationEnd::Completed(Outcome::Response(body)) => (body, None, true),
            InvocationEnd::Completed(Outcome::Error { body, .. }) => {
                (body, Some("Unhandled"), true)
            }
            InvocationEnd::Completed(Outcome::ResponseTooLarge { .. }) => {
                // As AWS words it (the size itself is not in the message).
                let message = format!(
                    "Response payload size exceeded maximum allowed payload size ({} bytes).",
                    runtime_api::MAX_RESPONSE_BYTES
                );
                logs.line(format!(
                    "{} {request_id} ERROR {message}",
                    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ")
                ));
                (
                    error_payload("Function.ResponseSizeTooLarge", message),
                    Some("Unhandled"),
                    true,
                )
            }
            InvocationEnd::Died(death) | InvocationEnd::Undelivered(death) => (
                self.died_payload(&request_id, death),
                Some("Unhandled"),
                false,
            ),
            InvocationEnd::TimedOut => {
                let secs = timeout.as_secs_f64();
                logs.line(format!(
                    "{} {request_id} Task timed out after {secs:.2} seconds",
                    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ")
                ));
                instance.kill().await;
                (
                    error_payload(
                        "Sandbox.Timedout",
                        format!(
                            "RequestId: {request_id} Error: Task timed out after {secs:.2} seconds"
                        ),
                    ),
                    Some("Unhandled"),
                    false,
                )
            }
        };
        instance.flush_logs();
        let max_memory_mb = instance.memory_peak().div_ceil(1024 * 1024);
        let billed_ms = billed_ms(duration);
        logs.line(format!("END RequestId: {request_id}"));
        let mut report = format!(
            "REPORT RequestId: {request_id}\tDuration: {:.2} ms\tBilled Duration: {billed_ms} ms\tMemory Size: {} MB\tMax Memory Used: {max_memory_mb} MB",
            duration.as_secs_f64() * 1000.0,
            c.memory_size
        );
        if let Some(init) = init_duration {
            report.push_str(&format!(
                "\tInit Duration: {:.2} ms",
                init.as_secs_f64() * 1000.0
            ));
        }
        report.push('\t');
        logs.line(report);
        let log_result = request
            .tail_log
            .then(|| base64::engine::general_purpose::STANDARD.encode(logs.end_invocation()));
        let provisioned_allocation = instance
            .provisioned
            .as_ref()
            .filter(|mark| mark.is_current())
            .map(provisioned::ProvisionedMark::allocated);
        let stem_refill = instance.stem_refill.take();
        if keep && instance.is_usable() {
            pool.release(instance);
        }
        drop(stem_refill);
        Ok(InvokeResponse {
            request_id,
            payload,
            function_error,
            executed_version: c.version.clone(),
            log_result,
            duration,
            billed_ms,
            init_duration,
            max_memory_mb,
            provisioned_allocation,
        })
    }

    /// What an invocation that found no idle instance does: start another
    /// at once while an init slot is free (fewer instances are starting
    /// than the host has CPUs); else wait for whichever comes first: an
    /// instance of its pool coming free (taken), an init slot, or the end
    /// of the wait (then it starts another anyway, without a slot). The
    /// wait ends once its pool has made no progress for the scale-out
    /// wait: no instance came free, none was starting, and none finished
    /// starting. While its pool's instances keep coming free or starting,
    /// an instance of its own would only take the CPU from them, and be
    /// ready no sooner; but it waits at most [`SCALE_OUT_WAIT_CAP`] in all
    /// while a start is under way (an init that waits on something other
    /// than the CPU). Each invocation still runs alone on its instance;
    /// only which instance, and when it starts, change.
    async fn idle_or_init_slot(&self, pool: &InstancePool) -> ScaleOut {
        if let Ok(slot) = self.init_slots.clone().try_acquire_owned() {
            return ScaleOut::Start(Some(slot));
        }
        let wait = self.config.scale_out_wait;
        if wait.is_zero() {
            return ScaleOut::Start(None);
        }
        let _waiting = pool.wait();
        let arrived = Instant::now();
        let cap = arrived + SCALE_OUT_WAIT_CAP.max(wait);
        loop {
            let released = pool.released();
            if let Some(instance) = pool.acquire() {
                return ScaleOut::Idle(Box::new(instance));
            }
            let now = Instant::now();
            let deadline = if pool.is_starting() {
                (now + wait).min(cap)
            } else {
                pool.last_progress().max(arrived) + wait
            };
            if now >= deadline {
                return ScaleOut::Start(None);
            }
            tokio::select! {
                slot = self.init_slots.clone().acquire_owned() => {
                    return ScaleOut::Start(slot.ok());
                }
                () = released => {}
                () = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    fn died_payload(&self, request_id: &str, death: Death) -> Bytes {
        let error_type = if death.oom {
            "Runtime.OutOfMemory"
        } else {
            "Runtime.ExitError"
        };
        error_payload(
            error_type,
            format!(
                "RequestId: {request_id} Error: Runtime exited with error: {}",
                death.describe()
            ),
        )
    }

    /// The answer when an instance never became ready.
    pub(crate) fn init_failure(
        &self,
        target: &InvokeTarget,
        request_id: &str,
        failure: StartError,
        started: Instant,
        tail_log: bool,
    ) -> InvokeResponse {
        let (payload, log) = match failure {
            StartError::InitFailed { body, log, .. } => (body, log),
            StartError::Exited { death, log, .. } => (self.died_payload(request_id, death), log),
            StartError::TimedOut { log, .. } => (
                error_payload(
                    "Sandbox.Timedout",
                    format!(
                        "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                        target.config.timeout as f64
                    ),
                ),
                log,
            ),
            StartError::Platform(reason) => (
                error_payload("Runtime.Unknown", reason.to_string()),
                String::new(),
            ),
        };
        let duration = started.elapsed();
        InvokeResponse {
            request_id: request_id.to_string(),
            payload,
            function_error: Some("Unhandled"),
            executed_version: target.config.version.clone(),
            log_result: tail_log.then(|| base64::engine::general_purpose::STANDARD.encode(log)),
            duration,
            billed_ms: billed_ms(duration),
            init_duration: None,
            max_memory_mb: 0,
            provisioned_allocation: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billed_duration_rounds_up_to_the_next_millisecond_and_is_at_least_one() {
        assert_eq!(billed_ms(Duration::ZERO), 1);
        assert_eq!(billed_ms(Duration::from_nanos(1)), 1);
        assert_eq!(billed_ms(Duration::from_millis(5)), 5);
        assert_eq!(billed_ms(Duration::from_micros(5_001)), 6);
        assert_eq!(billed_ms(Duration::MAX), u64::MAX);
    }
}
