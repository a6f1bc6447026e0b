//! The two loops behind EventBridge: the delivery worker (takes matched
//! events from the durable queue to their targets, retrying per
//! `RetryPolicy`, then dead-lettering) and the scheduler (fires scheduled
//! rules and Scheduler schedules).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strato_engine::async_invoke::{
    arn_service, DeadLetterAttributes, DeliveryError, EventSink, MessageGroup, ServiceEvent,
    ServiceEventError, ServiceOrigin,
};
use strato_queue::Received;

use crate::records::{self, DEFAULT_EVENT_AGE_S, DEFAULT_RETRIES};
use crate::{envelope, rule_deliveries, Delivery, EventsService, DELIVERY_QUEUE};

/// How long a delivery stays leased while its target is tried.
const LEASE: Duration = Duration::from_secs(60);
/// The longest back-off between two tries (before the time scale).
const MAX_BACKOFF_S: u64 = 60;

/// Why one try failed, and whether trying again could help.
struct Failure {
    code: String,
    message: String,
    retryable: bool,
}

pub(crate) async fn run_worker(service: Arc<EventsService>) {
    loop {
        let received = match service
            .queues
            .receive(DELIVERY_QUEUE, 10, LEASE, Duration::from_secs(1))
            .await
        {
            Ok(received) => received,
            Err(strato_queue::QueueError::Closed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "EventBridge cannot read its delivery queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut tries = tokio::task::JoinSet::new();
        for message in received {
            let service = service.clone();
            tries.spawn(async move { service.settle(message).await });
        }
        while tries.join_next().await.is_some() {}
    }
}

impl EventsService {
    /// Tries one delivery and settles it: deleted when delivered or given
    /// up on (after its dead-letter queue has it), else leased again for
    /// its back-off.
    async fn settle(&self, message: Received) {
        let done = match serde_json::from_slice::<Delivery>(&message.body) {
            Err(e) => {
                tracing::warn!(error = %e, "dropping an unreadable EventBridge delivery");
                true
            }
            Ok(delivery) => match self.deliver(&delivery).await {
                Ok(()) => true,
                Err(failure) => self.failed(&delivery, &message, failure).await,
            },
        };
        let result = if done {
            self.queues
                .delete(DELIVERY_QUEUE, &[message.receipt_handle])
                .await
                .map(|_| ())
        } else {
            let tries = u64::from(message.receive_count);
            let backoff =
                (1u64 << tries.min(6)).min(MAX_BACKOFF_S) * 1000 / u64::from(self.time_scale);
            self.queues
                .change_visibility(
                    DELIVERY_QUEUE,
                    &message.receipt_handle,
                    Duration::from_millis(backoff),
                    None,
                )
                .await
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot settle an EventBridge delivery");
        }
    }

    /// Whether the delivery is finished with (dead-lettered or dropped).
    async fn failed(&self, delivery: &Delivery, message: &Received, failure: Failure) -> bool {
        let policy = delivery
            .target
            .retry_policy
            .unwrap_or(records::RetryPolicy {
                maximum_retry_attempts: None,
                maximum_event_age_in_seconds: None,
            });
        let retries = policy.maximum_retry_attempts.unwrap_or(DEFAULT_RETRIES);
        let max_age_ms = i64::from(
            policy
                .maximum_event_age_in_seconds
                .unwrap_or(DEFAULT_EVENT_AGE_S),
        ) * 1000
            / i64::from(self.time_scale);
        let age = chrono::Utc::now().timestamp_millis() - delivery.accepted_ms;
        // Which limit ended the retries; none when the error cannot heal.
        let exhausted = if !failure.retryable {
            None
        } else if message.receive_count > retries {
            Some("MaximumRetryAttempts")
        } else if age >= max_age_ms {
            Some("MaximumEventAgeInSeconds")
        } else {
            return false;
        };
        tracing::info!(
            target_arn = %delivery.target.arn,
            rule = %delivery.source_arn,
            code = %failure.code,
            message = %failure.message,
            "EventBridge gives up on a delivery"
        );
        let Some(dlq) = delivery
            .target
            .dead_letter_config
            .as_ref()
            .and_then(|c| c.arn.clone())
        else {
            return true;
        };
        // Scheduler sends a schedule's dead letters with the schedule's
        // role too: without `sqs:SendMessage` on the queue the letter is
        // not sent (and not retried: the role will not change by waiting).
        if let Err(refused) = self.schedule_role_may(delivery, "sqs:SendMessage", &dlq) {
            tracing::warn!(dlq, reason = %refused.message, "cannot dead-letter a schedule's invocation");
            return true;
        }
        let (body, attributes) = dead_letter(delivery, &failure, exhausted, message.receive_count);
        match self
            .sinks
            .deliver_dead_letter(&delivery.account, &delivery.region, &dlq, body, attributes)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, dlq, "cannot dead-letter an EventBridge delivery");
                // Kept and tried again rather than lost.
                false
            }
        }
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<(), Failure> {
        let arn = &delivery.target.arn;
        self.act_as_schedule_role(delivery)?;
        match arn_service(arn) {
            Some("lambda") => self
                .invoker
                .invoke_event(ServiceEvent {
                    function_arn: arn.clone(),
                    principal: delivery.principal.clone(),
                    source_arn: Some(delivery.source_arn.clone()),
                    source_account: Some(delivery.account.clone()),
                    payload: Bytes::from(delivery.payload.clone()),
                    trace_header: None,
                })
                .await
                .map(|_| ())
                .map_err(|e| {
                    let retryable = matches!(e, ServiceEventError::Unavailable(_));
                    let code = match e {
                        ServiceEventError::AccessDenied(_) => "NO_PERMISSIONS",
                        ServiceEventError::FunctionNotFound(_) => "NO_RESOURCE",
                        ServiceEventError::InvalidArn(_) => "INVALID_PARAMETER",
                        ServiceEventError::Unavailable(_) => "INTERNAL_ERROR",
                    };
                    Failure {
                        code: code.into(),
                        message: e.to_string(),
                        retryable,
                    }
                }),
            Some("events") => {
                let prefix = format!(
                    "arn:aws:events:{}:{}:event-bus/",
                    delivery.region, delivery.account
                );
                let bus = arn
                    .strip_prefix(&prefix)
                    .filter(|bus| self.bus_known(&delivery.account, &delivery.region, bus))
                    .ok_or_else(|| Failure {
                        code: "NO_RESOURCE".into(),
                        message: format!("Event bus {arn} does not exist."),
                        retryable: false,
                    })?;
                self.put_on_bus(&delivery.account, &delivery.region, bus, &delivery.event)
                    .await
                    .map_err(|e| Failure {
                        code: "INTERNAL_ERROR".into(),
                        message: e.message,
                        retryable: true,
                    })
            }
            _ => {
                let payload = Bytes::from(delivery.payload.clone());
                let group = delivery
                    .target
                    .sqs_parameters
                    .as_ref()
                    .and_then(|p| p.message_group_id.clone())
                    .filter(|_| arn.ends_with(".fifo"));
                let sent = match group {
                    Some(group_id) => {
                        let group = MessageGroup {
                            group_id,
                            dedup_id: delivery.dedup_id(),
                        };
                        self.sinks
                            .deliver_grouped(
                                &delivery.account,
                                &delivery.region,
                                arn,
                                payload,
                                group,
                            )
                            .await
                    }
                    // A schedule acts through its role; a rule as EventBridge,
                    // which an SNS topic's policy must admit.
                    None if delivery.source_arn.starts_with("arn:aws:scheduler:") => {
                        self.sinks
                            .deliver_record(&delivery.account, &delivery.region, arn, payload)
                            .await
                    }
                    None => {
                        let origin = ServiceOrigin {
                            principal: &delivery.principal,
                            source_arn: &delivery.source_arn,
                            source_account: &delivery.account,
                            source_owner: None,
                        };
                        self.sinks
                            .deliver_as(&delivery.account, &delivery.region, arn, payload, origin)
                            .await
                    }
                };
                sent.map_err(|e| {
                    let retryable = matches!(e, DeliveryError::Failed { .. });
                    Failure {
                        code: match e {
                            DeliveryError::Failed { .. } => "SDK_CLIENT_ERROR",
                            DeliveryError::Denied(_) => "NO_PERMISSIONS",
                            _ => "NO_RESOURCE",
                        }
                        .into(),
                        message: e.to_string(),
                        retryable,
                    }
                })
            }
        }
    }
}

impl EventsService {
    /// Scheduler invokes a target with the schedule's `RoleArn`: the role
    /// must let `scheduler.amazonaws.com` assume it and allow the target's
    /// action (`lambda:InvokeFunction`, `sqs:SendMessage`, `sns:Publish`,
    /// `events:PutEvents`) on the target; otherwise the invocation fails
    /// for good and goes to the schedule's dead-letter queue.
    fn act_as_schedule_role(&self, delivery: &Delivery) -> Result<(), Failure> {
        let arn = &delivery.target.arn;
        let action = match arn_service(arn) {
            Some("lambda") => "lambda:InvokeFunction",
            Some("sqs") => "sqs:SendMessage",
            Some("sns") => "sns:Publish",
            Some("events") => "events:PutEvents",
            _ => return Ok(()),
        };
        self.schedule_role_may(delivery, action, arn)
    }

    /// For a schedule's delivery: whether its role lets Scheduler perform
    /// `action` on `arn` (deliveries of rules pass).
    fn schedule_role_may(
        &self,
        delivery: &Delivery,
        action: &str,
        arn: &str,
    ) -> Result<(), Failure> {
        let Some(schedule) = delivery.source_arn.strip_prefix("arn:aws:scheduler:") else {
            return Ok(());
        };
        let session = schedule.rsplit('/').next().unwrap_or(schedule);
        let role = &delivery.principal;
        if self.invoker.role_allows(&strato_engine::RoleUse {
            service: "scheduler.amazonaws.com",
            role,
            session,
            action,
            resource: arn,
        }) {
            return Ok(());
        }
        Err(Failure {
            code: "NO_PERMISSIONS".into(),
            message: format!(
                "EventBridge Scheduler cannot assume the role {role} or the role is not authorized to perform: {action} on resource: {arn}"
            ),
            retryable: false,
        })
    }
}

/// What a dead-letter queue gets for a delivery given up on, with the
/// attributes AWS puts on it. A rule's target: the event, with `RULE_ARN`,
/// `TARGET_ARN`, `ERROR_CODE`, `ERROR_MESSAGE`, `EXHAUSTED_RETRY_CONDITION`
/// (only when a retry limit ended it) and `RETRY_ATTEMPTS`. A schedule's
/// target (Scheduler): the target's input, with `ERROR_CODE`,
/// `ERROR_MESSAGE`, `EXECUTION_ID`, `EXHAUSTED_RETRY_CONDITION`,
/// `IS_PAYLOAD_TRUNCATED`, `RETRY_ATTEMPTS`, `SCHEDULED_TIME`,
/// `SCHEDULE_ARN` and `TARGET_ARN`.
fn dead_letter(
    delivery: &Delivery,
    failure: &Failure,
    exhausted: Option<&str>,
    receive_count: u32,
) -> (Bytes, DeadLetterAttributes) {
    let retries = receive_count.saturating_sub(1).to_string();
    let message: String = failure.message.chars().take(1024).collect();
    let event_member = |name: &str| {
        delivery
            .event
            .get(name)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    if delivery.source_arn.starts_with("arn:aws:scheduler:") {
        let mut attributes = DeadLetterAttributes::default()
            .with("ERROR_CODE", failure.code.as_str())
            .with("ERROR_MESSAGE", message)
            .with("EXECUTION_ID", event_member("id"));
        if let Some(condition) = exhausted {
            attributes = attributes.with("EXHAUSTED_RETRY_CONDITION", condition);
        }
        let attributes = attributes
            .with("IS_PAYLOAD_TRUNCATED", "false")
            .with("RETRY_ATTEMPTS", retries)
            .with("SCHEDULED_TIME", event_member("time"))
            .with("SCHEDULE_ARN", delivery.source_arn.as_str())
            .with("TARGET_ARN", delivery.target.arn.as_str());
        return (Bytes::from(delivery.payload.clone()), attributes);
    }
    let mut attributes = DeadLetterAttributes::default()
        .with("RULE_ARN", delivery.source_arn.as_str())
        .with("TARGET_ARN", delivery.target.arn.as_str())
        .with("ERROR_CODE", failure.code.as_str())
        .with("ERROR_MESSAGE", message);
    if let Some(condition) = exhausted {
        attributes = attributes.with("EXHAUSTED_RETRY_CONDITION", condition);
    }
    let attributes = attributes.with("RETRY_ATTEMPTS", retries);
    (Bytes::from(delivery.event.to_string()), attributes)
}

/// Fires whatever is due, every tick (a second, shortened by the time scale).
pub(crate) async fn run_scheduler(service: Arc<EventsService>) {
    let tick = Duration::from_millis((1000 / u64::from(service.time_scale)).max(20));
    loop {
        tokio::time::sleep(tick).await;
        service.fire_due_rules().await;
        service.fire_due_schedules().await;
    }
}

impl EventsService {
    pub(crate) async fn fire_due_rules(&self) {
        let now = chrono::Utc::now();
        let now_ms = now.timestamp_millis();
        let due: Vec<_> = {
            let state = self.state.read();
            state
                .rules
                .values()
                .flat_map(|rules| rules.values())
                .filter(|rule| rule.record.enabled())
                .filter(|rule| {
                    rule.schedule.as_ref().is_some_and(|s| {
                        s.next_after(rule.record.last_fired_ms, self.time_scale)
                            .is_some_and(|next| next <= now_ms)
                    })
                })
                .cloned()
                .collect()
        };
        for rule in due {
            let record = &rule.record;
            let event = envelope(
                &record.account,
                &record.region,
                "aws.events",
                "Scheduled Event",
                vec![record.arn()],
                serde_json::json!({}),
                now,
            );
            // Queued first, then remembered: a crash in between fires twice
            // rather than never (at least once, as AWS promises).
            if let Err(e) = self.enqueue(&rule_deliveries(record, &event, now_ms)).await {
                tracing::warn!(error = %e.message, rule = %record.name, "cannot fire a scheduled rule");
                continue;
            }
            let _control = self.control.lock().await;
            let key = (record.account.clone(), record.region.clone());
            let current = self
                .state
                .read()
                .rules
                .get(&key)
                .and_then(|r| r.get(&(record.bus.clone(), record.name.clone())))
                .cloned();
            // Changed or deleted meanwhile: its new version decides.
            let Some(current) = current.filter(|c| Arc::ptr_eq(c, &rule)) else {
                continue;
            };
            let mut updated = current.record.clone();
            updated.last_fired_ms = now_ms;
            if let Err(e) = self
                .put_doc(
                    &updated.account,
                    &updated.region,
                    records::RULE_KIND,
                    &updated.id(),
                    &updated,
                )
                .await
            {
                tracing::warn!(error = %e.message, "cannot record a rule's firing");
            }
            let live = Arc::new(crate::LiveRule::new(updated));
            if let Some(rules) = self.state.write().rules.get_mut(&key) {
                rules.insert((record.bus.clone(), record.name.clone()), live);
            }
        }
    }
}
