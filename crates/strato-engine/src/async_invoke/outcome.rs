//! What becomes of an event after a try: a retry (visibility change with
//! its attempt count), a back-off, or its end — AWS's invocation record to a
//! destination, or the event to a dead-letter queue — before the message is
//! deleted.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use strato_queue::Received;

use super::*;
use crate::{Engine, InvokeResponse};

impl Engine {
    /// Retries a throttled or platform-failed event with back-off, or drops
    /// it when the next try would be past its maximum age.
    pub(super) async fn back_off(
        self: &Arc<Self>,
        invoker: &Arc<AsyncInvoker>,
        queue: &str,
        mut event: QueuedEvent,
        message: Received,
        deadline: i64,
        target: Option<&AsyncTarget>,
    ) {
        let backoff = if event.backoff_ms == 0 {
            invoker.settings.scaled(FIRST_BACKOFF)
        } else {
            (Duration::from_millis(event.backoff_ms) * 2).min(invoker.settings.scaled(MAX_BACKOFF))
        };
        if now_ms() + duration_ms(backoff) >= deadline {
            match target {
                Some(target) => {
                    self.fail_event(
                        invoker,
                        queue,
                        event,
                        message,
                        target,
                        FailureCondition::EventAgeExceeded,
                        None,
                    )
                    .await
                }
                None => {
                    tracing::warn!(request_id = %event.request_id, function = %event.function, "event dropped: it reached its maximum age without running");
                    self.observe_async(&event, AsyncMetric::Dropped);
                    self.count_expired_event();
                    self.delete_message(invoker, queue, &message).await;
                }
            }
            return;
        }
        event.backoff_ms = duration_ms(backoff).unsigned_abs();
        self.postpone(invoker, queue, &event, &message, backoff)
            .await;
    }

    /// Puts the event back to be received again after `delay`, with its
    /// updated metadata in the same commit.
    pub(super) async fn postpone(
        &self,
        invoker: &AsyncInvoker,
        queue: &str,
        event: &QueuedEvent,
        message: &Received,
        delay: Duration,
    ) {
        let metadata = match serde_json::to_vec(event) {
            Ok(metadata) => Bytes::from(metadata),
            Err(e) => {
                tracing::error!(request_id = %event.request_id, error = %e, "cannot encode an event's metadata");
                return;
            }
        };
        if let Err(e) = invoker
            .queue
            .change_visibility(queue, &message.receipt_handle, delay, Some(metadata))
            .await
        {
            // The lease stays; the next start releases it.
            tracing::error!(request_id = %event.request_id, error = %e, "cannot schedule an event's retry");
        }
    }

    /// An event that will not run again: its record goes to the
    /// `OnFailure` destination, else the event to the dead-letter queue;
    /// then it is deleted.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fail_event(
        self: &Arc<Self>,
        invoker: &Arc<AsyncInvoker>,
        queue: &str,
        event: QueuedEvent,
        message: Received,
        target: &AsyncTarget,
        condition: FailureCondition,
        response: Option<&InvokeResponse>,
    ) {
        tracing::warn!(request_id = %event.request_id, function = %event.function, condition = condition.as_str(), invocations = event.invocations, "asynchronous invocation failed for good");
        self.observe_async(&event, AsyncMetric::Dropped);
        if condition == FailureCondition::EventAgeExceeded {
            self.count_expired_event();
        }
        if let Some(destination) = &target.settings.on_failure {
            let record = invocation_record(&event, &message, condition.as_str(), response);
            if let Err(e) = self
                .deliver_record(invoker, target, destination, record)
                .await
            {
                tracing::warn!(request_id = %event.request_id, destination, error = %e, "OnFailure destination did not take the record");
                self.observe_async(&event, AsyncMetric::DestinationDeliveryFailure);
            }
        } else if let Some(dlq) = &target.dead_letter_arn {
            let attributes = DeadLetterAttributes::lambda(
                &event.request_id,
                "200",
                &error_message(response, condition),
            );
            let delivered = match (&invoker.sink, self.act_as_role(target, dlq)) {
                (_, Err(denied)) => Err(denied),
                (Some(sink), Ok(())) => {
                    sink.deliver_dead_letter(
                        &target.target.account,
                        &target.target.region,
                        dlq,
                        message.body.clone(),
                        attributes,
                    )
                    .await
                }
                (None, Ok(())) => Err(DeliveryError::Unsupported(dlq.clone())),
            };
            if let Err(e) = delivered {
                tracing::warn!(request_id = %event.request_id, target = %dlq, error = %e, "dead-letter queue did not take the event");
                self.observe_async(&event, AsyncMetric::DeadLetterError);
            }
        }
        self.delete_message(invoker, queue, &message).await;
    }

    /// Sends a record to a destination: a Lambda function gets it as a new
    /// event in its own queue (durably, before the source is deleted); the
    /// other services through the sink.
    pub(super) async fn deliver_record(
        self: &Arc<Self>,
        invoker: &AsyncInvoker,
        source: &AsyncTarget,
        destination: &str,
        record: Bytes,
    ) -> Result<(), DeliveryError> {
        self.act_as_role(source, destination)?;
        let (account, region) = (&source.target.account, &source.target.region);
        match LambdaDestination::parse(destination) {
            Some(d) => {
                if invoker
                    .targets
                    .resolve(&d.account, &d.region, &d.function, d.qualifier.as_deref())
                    .await
                    .is_err()
                {
                    return Err(DeliveryError::Missing(destination.to_string()));
                }
                let event = QueuedEvent {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    account: d.account,
                    region: d.region,
                    function: d.function,
                    qualifier: d.qualifier,
                    client_context: None,
                    invocations: 0,
                    backoff_ms: 0,
                    trace_header: None,
                    lineage_count: 0,
                };
                Box::pin(self.enqueue_event(event, record))
                    .await
                    .map_err(|e| DeliveryError::Failed {
                        destination: destination.to_string(),
                        reason: e.to_string(),
                    })
            }
            None => match &invoker.sink {
                Some(sink) => {
                    sink.deliver_record(account, region, destination, record)
                        .await
                }
                None => Err(DeliveryError::Unsupported(destination.to_string())),
            },
        }
    }

    /// Lambda sends destinations' records and dead letters with the
    /// function's execution role, as AWS does: the role must allow the
    /// destination's action (`sqs:SendMessage`, `sns:Publish`,
    /// `lambda:InvokeFunction`, `events:PutEvents`) on it.
    fn act_as_role(&self, source: &AsyncTarget, destination: &str) -> Result<(), DeliveryError> {
        let action = match destination.split(':').nth(2) {
            Some("sqs") => "sqs:SendMessage",
            Some("sns") => "sns:Publish",
            Some("lambda") => "lambda:InvokeFunction",
            Some("events") => "events:PutEvents",
            _ => return Ok(()),
        };
        let config = &source.target.config;
        if self.role_allows(&crate::RoleUse {
            service: "lambda.amazonaws.com",
            role: &config.role,
            session: &config.name,
            action,
            resource: destination,
        }) {
            return Ok(());
        }
        let role = config.role.rsplit('/').next().unwrap_or(&config.role);
        Err(DeliveryError::Denied(format!(
            "User: arn:aws:sts::{}:assumed-role/{role}/{} is not authorized to perform: {action} on resource: {destination} because no identity-based policy allows the {action} action",
            source.target.account, config.name
        )))
    }

    pub(super) async fn delete_message(
        &self,
        invoker: &AsyncInvoker,
        queue: &str,
        message: &Received,
    ) {
        match invoker
            .queue
            .delete(queue, std::slice::from_ref(&message.receipt_handle))
            .await
        {
            Ok(results) => {
                if let Some(Err(e)) = results.into_iter().next() {
                    tracing::error!(queue, message_id = %message.message_id, error = %e, "cannot delete a finished event");
                }
            }
            Err(e) => {
                tracing::error!(queue, message_id = %message.message_id, error = %e, "cannot delete a finished event")
            }
        }
    }
}

/// AWS's asynchronous invocation record.
pub(super) fn invocation_record(
    event: &QueuedEvent,
    message: &Received,
    condition: &str,
    response: Option<&InvokeResponse>,
) -> Bytes {
    let function_arn = format!(
        "{}:{}",
        strato_model::arn::function_arn(&event.region, &event.account, &event.function),
        event.qualifier.as_deref().unwrap_or(strato_model::LATEST)
    );
    let mut record = json!({
        "version": RECORD_VERSION,
        "timestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "requestContext": {
            "requestId": event.request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": event.invocations,
        },
        "requestPayload": json_or_string(&message.body),
    });
    if let Some(response) = response {
        let mut context = json!({
            "statusCode": 200,
            "executedVersion": response.executed_version,
        });
        if let Some(error) = response.function_error {
            context["functionError"] = Value::from(error);
        }
        record["responseContext"] = context;
        record["responsePayload"] = json_or_string(&response.payload);
    }
    Bytes::from(record.to_string())
}

/// A payload as JSON when it is JSON (it always is for Invoke), else as text.
fn json_or_string(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// The `ErrorMessage` attribute of a dead-lettered event: the function's
/// `errorMessage`, at most 1 KB.
fn error_message(response: Option<&InvokeResponse>, condition: FailureCondition) -> String {
    let message = response
        .and_then(|r| serde_json::from_slice::<Value>(&r.payload).ok())
        .and_then(|v| {
            v.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| condition.as_str().to_string());
    let mut end = message.len().min(1024);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_string()
}

/// `arn:aws:lambda:{region}:{account}:function:{name}[:{qualifier}]`.
#[derive(Debug, PartialEq, Eq)]
struct LambdaDestination {
    region: String,
    account: String,
    function: String,
    qualifier: Option<String>,
}

impl LambdaDestination {
    fn parse(arn: &str) -> Option<LambdaDestination> {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", _, "lambda", region, account, "function", name, rest @ ..]
                if rest.len() <= 1 =>
            {
                Some(LambdaDestination {
                    region: region.to_string(),
                    account: account.to_string(),
                    function: name.to_string(),
                    qualifier: rest.first().map(|q| q.to_string()),
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_destinations_are_parsed_with_their_qualifier() {
        assert_eq!(
            LambdaDestination::parse("arn:aws:lambda:us-east-1:000000000000:function:f:live"),
            Some(LambdaDestination {
                region: "us-east-1".into(),
                account: "000000000000".into(),
                function: "f".into(),
                qualifier: Some("live".into()),
            })
        );
        assert_eq!(
            LambdaDestination::parse("arn:aws:lambda:us-east-1:000000000000:function:f")
                .map(|d| d.qualifier),
            Some(None)
        );
        assert_eq!(
            LambdaDestination::parse("arn:aws:sqs:us-east-1:000000000000:q"),
            None
        );
    }

    #[test]
    fn dead_letter_messages_are_cut_at_one_kilobyte_on_a_char_boundary() {
        let long = "é".repeat(1000);
        let response = InvokeResponse {
            request_id: "r".into(),
            payload: Bytes::from(json!({"errorMessage": long}).to_string()),
            function_error: Some("Unhandled"),
            executed_version: "$LATEST".into(),
            log_result: None,
            duration: Duration::ZERO,
            billed_ms: 1,
            init_duration: None,
            max_memory_mb: 1,
            provisioned_allocation: None,
        };
        let message = error_message(Some(&response), FailureCondition::RetriesExhausted);
        assert!(message.len() <= 1024);
        assert!(message.chars().all(|c| c == 'é'));
        assert_eq!(
            error_message(None, FailureCondition::EventAgeExceeded),
            "EventAgeExceeded"
        );
    }
}
