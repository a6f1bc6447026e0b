//! What the engine reads of SQS: event source mappings poll queues through
//! [`SqsQueues`], and async invocations deliver records and dead letters to
//! queues through [`EventSink`].

use std::time::Duration;

use bytes::Bytes;
use strato_engine::async_invoke::{DeadLetterAttributes, DeliveryError, EventSink};
use strato_engine::event_source::SqsQueues;
use strato_engine::event_source::{SqsQueueFacts, SqsRecord, SqsSourceError};
use strato_queue::{NewMessage, QueueError};

use crate::message::{self, MessageAttribute, MessageMeta};
use crate::{md5, queue, SqsService};

fn source_error(arn: &str, err: QueueError) -> SqsSourceError {
    match err {
        QueueError::NoSuchQueue(_) => SqsSourceError::NoSuchQueue(arn.to_string()),
        other => SqsSourceError::Unavailable(other.to_string()),
    }
}

/// A received message as a record of Lambda's SQS event.
fn event_record(
    record: &queue::QueueRecord,
    received: &strato_queue::Received,
) -> serde_json::Value {
    let meta = MessageMeta::decode(&received.metadata).unwrap_or_default();
    let attributes: serde_json::Map<String, serde_json::Value> =
        crate::operations::system_attributes(received, &meta)
            .into_iter()
            .map(|(name, value)| (name.to_string(), serde_json::Value::String(value)))
            .collect();
    let message_attributes: serde_json::Map<String, serde_json::Value> = meta
        .attributes
        .iter()
        .map(|a| (a.name.clone(), a.event_json()))
        .collect();
    let mut event = serde_json::json!({
        "messageId": received.message_id,
        "receiptHandle": received.receipt_handle,
        "body": String::from_utf8_lossy(&received.body),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": md5::of_body(&received.body),
        "eventSource": "aws:sqs",
        "eventSourceARN": record.arn(),
        "awsRegion": record.region,
    });
    if !meta.attributes.is_empty() {
        if let Some(object) = event.as_object_mut() {
            object.insert(
                "md5OfMessageAttributes".into(),
                serde_json::Value::String(md5::of_attributes(&meta.attributes)),
            );
        }
    }
    event
}

#[async_trait::async_trait]
impl SqsQueues for SqsService {
    fn queue(&self, arn: &str) -> Option<SqsQueueFacts> {
        let record = self.queue_by_arn(arn)?;
        Some(SqsQueueFacts {
            visibility_timeout: record.visibility_timeout(),
            fifo: record.fifo(),
        })
    }

    async fn receive(
        &self,
        arn: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<SqsRecord>, SqsSourceError> {
        let record = self
            .queue_by_arn(arn)
            .ok_or_else(|| SqsSourceError::NoSuchQueue(arn.to_string()))?;
        let received = self
            .engine
            .receive(
                &record.engine_name(),
                max,
                record.visibility_timeout(),
                wait,
            )
            .await
            .map_err(|e| source_error(arn, e))?;
        Ok(received
            .iter()
            .map(|m| SqsRecord {
                message_id: m.message_id.clone(),
                receipt_handle: m.receipt_handle.clone(),
                group_id: m.group_id.clone(),
                record: event_record(&record, m),
            })
            .collect())
    }

    async fn delete(&self, arn: &str, receipt_handles: &[String]) -> Result<(), SqsSourceError> {
        let record = self
            .queue_by_arn(arn)
            .ok_or_else(|| SqsSourceError::NoSuchQueue(arn.to_string()))?;
        // Per-receipt failures (a message received again since) leave the
        // message where it is, as the trait says.
        self.engine
            .delete(&record.engine_name(), receipt_handles)
            .await
            .map(|_| ())
            .map_err(|e| source_error(arn, e))
    }
}

impl SqsService {
    /// Whether an SQS queue ARN names an existing queue of this account and
    /// region (destinations and dead-letter targets are checked this way).
    pub fn queue_exists(&self, account: &str, region: &str, arn: &str) -> bool {
        queue::parse_arn(arn).is_some_and(|(r, a, name)| {
            a == account && r == region && self.queue(a, r, name).is_some()
        })
    }

    /// Sends one message on the platform's behalf (destinations, DLQs).
    async fn deliver(
        &self,
        account: &str,
        region: &str,
        arn: &str,
        body: Bytes,
        attributes: Vec<MessageAttribute>,
    ) -> Result<(), DeliveryError> {
        if !arn.starts_with("arn:aws:sqs:") {
            return Err(DeliveryError::Unsupported(arn.to_string()));
        }
        let record = queue::parse_arn(arn)
            .filter(|(r, a, _)| *r == region && *a == account)
            .and_then(|(r, a, name)| self.queue(a, r, name))
            .ok_or_else(|| DeliveryError::Missing(arn.to_string()))?;
        let failed = |reason: String| DeliveryError::Failed {
            destination: arn.to_string(),
            reason,
        };
        let text = String::from_utf8_lossy(&body);
        if !message::valid_characters(&text) {
            return Err(failed(
                "the payload has characters SQS does not allow".into(),
            ));
        }
        let (group_id, dedup_id) = if record.fifo() {
            let id = uuid::Uuid::new_v4().to_string();
            (Some(id.clone()), Some(id))
        } else {
            (None, None)
        };
        let meta = MessageMeta {
            sender_id: account.to_string(),
            origin: record.name.clone(),
            attributes,
            system_attributes: Vec::new(),
        };
        self.engine
            .send(
                &record.engine_name(),
                vec![NewMessage {
                    body: Bytes::copy_from_slice(text.as_bytes()),
                    metadata: Bytes::from(meta.encode()),
                    delay: record.delay(),
                    group_id,
                    dedup_id,
                }],
            )
            .await
            .map(|_| ())
            .map_err(|e| failed(e.to_string()))
    }
}

#[async_trait::async_trait]
impl EventSink for SqsService {
    async fn deliver_record(
        &self,
        account: &str,
        region: &str,
        destination: &str,
        record: Bytes,
    ) -> Result<(), DeliveryError> {
        self.deliver(account, region, destination, record, Vec::new())
            .await
    }

    async fn deliver_dead_letter(
        &self,
        account: &str,
        region: &str,
        target: &str,
        payload: Bytes,
        attributes: DeadLetterAttributes,
    ) -> Result<(), DeliveryError> {
        let attributes = vec![
            MessageAttribute::string("RequestID", &attributes.request_id),
            MessageAttribute::string("ErrorCode", &attributes.error_code),
            MessageAttribute::string("ErrorMessage", &attributes.error_message),
        ];
        self.deliver(account, region, target, payload, attributes)
            .await
    }
}
