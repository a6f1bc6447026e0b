//! The pollers: one per queue with messages, each taking one event at a
//! time, resolving what it runs, waiting for a concurrency permit, and
//! running it on a task of its own.

use std::sync::Arc;
use std::time::Duration;

use strato_model::EventInvokeConfig;
use strato_queue::{QueueError, Received};

use super::outcome::invocation_record;
use super::*;
use crate::{Engine, EngineError, InvokeRequest};

impl Engine {
    pub(super) async fn poll(self: Arc<Self>, invoker: Arc<AsyncInvoker>, queue: String) {
        let mut failures = FIRST_BACKOFF;
        loop {
            let closed = self.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let received = tokio::select! {
                received = invoker.queue.receive(&queue, 1, EVENT_LEASE, POLL_WAIT) => received,
                _ = &mut closed => break,
            };
            let messages = match received {
                Ok(messages) => messages,
                Err(QueueError::NoSuchQueue(_)) | Err(QueueError::Closed) => break,
                Err(e) => {
                    tracing::warn!(queue = %queue, error = %e, "cannot receive queued events");
                    tokio::select! {
                        _ = tokio::time::sleep(failures) => {}
                        _ = &mut closed => break,
                    }
                    failures = (failures * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            failures = FIRST_BACKOFF;
            if messages.is_empty() {
                if self.retire_poller_if_idle(&invoker, &queue) {
                    return;
                }
                continue;
            }
            for message in messages {
                let admitted = tokio::select! {
                    admitted = self.admit_event(&invoker, &queue, message) => admitted,
                    _ = &mut closed => break,
                };
                if let Some((event, message, target, permit)) = admitted {
                    let (engine, invoker, queue) = (self.clone(), invoker.clone(), queue.clone());
                    tokio::spawn(async move {
                        engine
                            .run_event(&invoker, &queue, event, message, target, permit)
                            .await;
                    });
                }
            }
        }
        invoker.pollers.remove(&queue);
    }

    /// Everything before an event runs: decode it, resolve what it runs,
    /// drop it when it is too old, wait for a concurrency slot. `None` when
    /// the event was dealt with here (dropped, postponed).
    async fn admit_event(
        self: &Arc<Self>,
        invoker: &Arc<AsyncInvoker>,
        queue: &str,
        message: Received,
    ) -> Option<(
        QueuedEvent,
        Received,
        AsyncTarget,
        crate::concurrency::Permit,
    )> {
        let event = match serde_json::from_slice::<QueuedEvent>(&message.metadata) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(queue, message_id = %message.message_id, error = %e, "a queued event has unreadable metadata; it is discarded");
                self.delete_message(invoker, queue, &message).await;
                return None;
            }
        };
        let resolved = invoker
            .targets
            .resolve(
                &event.account,
                &event.region,
                &event.function,
                event.qualifier.as_deref(),
            )
            .await;
        let target = match resolved {
            Ok(target) => target,
            Err(AsyncTargetError::Gone(what)) => {
                tracing::warn!(request_id = %event.request_id, function = %event.function, "event discarded: {what} no longer exists");
                self.observe_async(&event, AsyncMetric::Dropped);
                self.delete_message(invoker, queue, &message).await;
                return None;
            }
            Err(AsyncTargetError::NotReady(why)) => {
                tracing::info!(request_id = %event.request_id, function = %event.function, reason = %why, "event postponed");
                let deadline =
                    event_deadline(&invoker.settings, &message, &EventInvokeConfig::default());
                self.back_off(invoker, queue, event, message, deadline, None)
                    .await;
                return None;
            }
        };
        if target.recursive_loop == strato_model::RecursiveLoop::Terminate
            && event.lineage_count > strato_model::recursion::MAX_RECURSIVE_INVOCATIONS
        {
            // As AWS stops a loop: the event does not run, goes to the
            // on-failure destination or dead-letter queue, and is counted.
            tracing::warn!(request_id = %event.request_id, function = %event.function, count = event.lineage_count, "recursive loop detected: the event is dropped");
            self.observe_async(&event, AsyncMetric::RecursiveInvocationDropped);
            self.fail_event(
                invoker,
                queue,
                event,
                message,
                &target,
                FailureCondition::RecursiveInvocation,
                None,
            )
            .await;
            return None;
        }
        // A slot before the event's maximum age, or `EventAgeExceeded`.
        let deadline = event_deadline(&invoker.settings, &message, &target.settings);
        let permit = match u64::try_from(deadline - now_ms()) {
            Ok(left) if left > 0 => {
                let wait_until = tokio::time::Instant::now() + Duration::from_millis(left);
                let c = &target.target;
                self.concurrency
                    .acquire_by(
                        &c.account,
                        &c.region,
                        &c.config.name,
                        self.demand_of(c),
                        wait_until,
                    )
                    .await
                    .map_err(|throttle| {
                        tracing::warn!(request_id = %event.request_id, function = %event.function, reason = throttle.reason(), "event throttled until it reached its maximum age");
                    })
                    .ok()
            }
            _ => None,
        };
        match permit {
            Some(permit) => Some((event, message, target, permit)),
            None => {
                self.fail_event(
                    invoker,
                    queue,
                    event,
                    message,
                    &target,
                    FailureCondition::EventAgeExceeded,
                    None,
                )
                .await;
                None
            }
        }
    }

    async fn run_event(
        self: &Arc<Self>,
        invoker: &Arc<AsyncInvoker>,
        queue: &str,
        mut event: QueuedEvent,
        message: Received,
        target: AsyncTarget,
        permit: crate::concurrency::Permit,
    ) {
        let age = Duration::from_millis(u64::try_from(now_ms() - message.sent_at_ms).unwrap_or(0));
        self.observe_async(&event, AsyncMetric::Age(age));
        let request = InvokeRequest {
            payload: message.body.clone(),
            client_context: event.client_context.clone(),
            cognito_identity: None,
            tail_log: false,
            request_id: Some(event.request_id.clone()),
            trace_header: event.trace_header.clone(),
        };
        let deadline = event_deadline(&invoker.settings, &message, &target.settings);
        match self
            .invoke_admitted(target.target.clone(), request, permit)
            .await
        {
            Ok(response) if response.function_error.is_none() => {
                event.invocations += 1;
                if let Some(destination) = &target.settings.on_success {
                    let record = invocation_record(&event, &message, "Success", Some(&response));
                    if let Err(e) = self
                        .deliver_record(invoker, &target, destination, record)
                        .await
                    {
                        tracing::warn!(request_id = %event.request_id, destination, error = %e, "OnSuccess destination did not take the record");
                        self.observe_async(&event, AsyncMetric::DestinationDeliveryFailure);
                    }
                }
                self.delete_message(invoker, queue, &message).await;
            }
            Ok(_) if self.closing.load(std::sync::atomic::Ordering::SeqCst) => {
                // The server is stopping and ended the instance under the
                // event: not the function's failure. Left leased, it runs
                // again after the restart.
            }
            Ok(response) => {
                event.invocations += 1;
                let retries_done = event.invocations - 1;
                if retries_done >= target.settings.retries() {
                    self.fail_event(
                        invoker,
                        queue,
                        event,
                        message,
                        &target,
                        FailureCondition::RetriesExhausted,
                        Some(&response),
                    )
                    .await;
                    return;
                }
                let delay = invoker.settings.scaled(RETRY_STEP * event.invocations);
                if now_ms() + duration_ms(delay) >= deadline {
                    self.fail_event(
                        invoker,
                        queue,
                        event,
                        message,
                        &target,
                        FailureCondition::EventAgeExceeded,
                        Some(&response),
                    )
                    .await;
                    return;
                }
                tracing::info!(request_id = %event.request_id, function = %event.function, attempt = event.invocations, retry_in_ms = duration_ms(delay), "function error; the event will be retried");
                self.postpone(invoker, queue, &event, &message, delay).await;
            }
            Err(EngineError::ShuttingDown) => {
                // Left leased: the next start releases it and it runs again.
            }
            Err(e) => {
                tracing::warn!(request_id = %event.request_id, function = %event.function, error = %e, "event could not run; retrying with back-off");
                self.back_off(invoker, queue, event, message, deadline, Some(&target))
                    .await;
            }
        }
    }
}
