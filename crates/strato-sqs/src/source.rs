//! What the engine reads of SQS: event source mappings poll queues through
//! [`SqsQueues`], and async invocations deliver records and dead letters to
//! queues through [`EventSink`].

use std::time::Duration;

use bytes::Bytes;
use strato_engine::async_invoke::{Content, Delivery, DeliveryError, EventSink};
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
        record.stats.received(received.len());
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
        let results = self
            .engine
            .delete(&record.engine_name(), receipt_handles)
            .await
            .map_err(|e| source_error(arn, e))?;
        record
            .stats
            .deleted(results.iter().filter(|r| r.is_ok()).count());
        Ok(())
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

    /// Sends one message for another service (an SNS subscription): with
    /// its message attributes and, to a FIFO queue, the (group, dedup) ids
    /// it gives (fresh ones when it gives none). Durable when it returns Ok.
    pub async fn deliver_message(
        &self,
        account: &str,
        region: &str,
        arn: &str,
        body: Bytes,
        attributes: Vec<MessageAttribute>,
        fifo_ids: Option<(String, String)>,
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
        let (group_id, dedup_id) = match (record.fifo(), fifo_ids) {
            (true, Some((group, dedup))) => (Some(group), Some(dedup)),
            (true, None) => {
                let id = uuid::Uuid::new_v4().to_string();
                (Some(id.clone()), Some(id))
            }
            (false, _) => (None, None),
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
            .map_err(|e| failed(e.to_string()))?;
        record.stats.sent(text.len());
        Ok(())
    }
}

/// A queue takes every delivery as a message: a dead letter with the
/// failing service's attributes, a grouped one in its message group.
#[async_trait::async_trait]
impl EventSink for SqsService {
    async fn deliver(&self, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        let Delivery { to, content } = delivery;
        let (body, attributes, fifo_ids) = match content {
            Content::DeadLetter {
                payload,
                attributes,
            } => (payload, attributes.message_attributes(), None),
            Content::Grouped { record, group } => {
                (record, Vec::new(), Some((group.group_id, group.dedup_id)))
            }
            other => (other.into_body(), Vec::new(), None),
        };
        self.deliver_message(to.account, to.region, to.arn, body, attributes, fifo_ids)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use strato_engine::async_invoke::DeadLetterAttributes;

    use strato_model::wire::Doc;
    use strato_model::Caller;
    use strato_queue::{Durability, QueueEngine, SqliteQueueEngine};
    use strato_store::{SqliteStore, Store};

    use super::*;
    use crate::SqsRequest;

    const ARN: &str = "arn:aws:sqs:us-east-1:000000000000:work";

    async fn service(dir: &std::path::Path) -> (Arc<SqsService>, Arc<SqliteQueueEngine>) {
        let store = Arc::new(SqliteStore::open(&dir.join("strato.db")).unwrap());
        store
            .create_account(&strato_model::Account {
                id: "000000000000".into(),
                name: "default".into(),
                concurrency_limit: 1000,
                created_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
        let engine =
            SqliteQueueEngine::open(&dir.join("queues.db"), Durability::ProcessCrash).unwrap();
        (
            SqsService::open(store, engine.clone()).await.unwrap(),
            engine,
        )
    }

    /// A service holding the queue `work` ([`ARN`]) with `attributes`.
    async fn with_work_queue(
        dir: &std::path::Path,
        attributes: serde_json::Value,
    ) -> (Arc<SqsService>, Arc<SqliteQueueEngine>) {
        let (sqs, engine) = service(dir).await;
        call(
            &sqs,
            "CreateQueue",
            serde_json::json!({"QueueName": "work", "Attributes": attributes}),
        )
        .await;
        (sqs, engine)
    }

    fn caller() -> Caller {
        Caller {
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
            access_key_id: "test".into(),
        }
    }

    async fn call(sqs: &SqsService, operation: &str, input: serde_json::Value) -> Doc {
        let caller = caller();
        let request = SqsRequest {
            caller: &caller,
            endpoint: "http://localhost:9000",
        };
        sqs.operation(request, operation, Doc::from_json(&input))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn mappings_receive_lambda_sqs_records_and_delete_them() {
        let dir = tempfile::tempdir().unwrap();
        let (sqs, engine) =
            with_work_queue(dir.path(), serde_json::json!({"VisibilityTimeout": "60"})).await;
        let url = "http://localhost:9000/000000000000/work";
        call(
            &sqs,
            "SendMessage",
            serde_json::json!({
            "QueueUrl": url, "MessageBody": "payload",
            "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}}),
        )
        .await;
        let facts = SqsQueues::queue(sqs.as_ref(), ARN).unwrap();
        assert_eq!(facts.visibility_timeout, Duration::from_secs(60));
        assert!(!facts.fifo);
        assert!(
            SqsQueues::queue(sqs.as_ref(), "arn:aws:sqs:us-east-1:000000000000:none").is_none()
        );

        let records = SqsQueues::receive(sqs.as_ref(), ARN, 10, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(records.len(), 1);
        let record = &records[0].record;
        assert_eq!(record["body"], "payload");
        assert_eq!(record["eventSource"], "aws:sqs");
        assert_eq!(record["eventSourceARN"], ARN);
        assert_eq!(record["awsRegion"], "us-east-1");
        assert_eq!(record["md5OfBody"], md5::of_body(b"payload"));
        assert_eq!(record["attributes"]["ApproximateReceiveCount"], "1");
        assert_eq!(record["attributes"]["SenderId"], "000000000000");
        assert_eq!(record["messageAttributes"]["k"]["stringValue"], "v");
        assert_eq!(record["messageAttributes"]["k"]["dataType"], "String");
        assert_eq!(
            record["md5OfMessageAttributes"],
            md5::of_attributes(&[MessageAttribute::string("k", "v")])
        );
        assert_eq!(record["receiptHandle"], records[0].receipt_handle.as_str());
        // Leased for the queue's own visibility timeout.
        let counts = engine.counts("sqs/000000000000/us-east-1/work").unwrap();
        assert_eq!((counts.visible, counts.in_flight), (0, 1));

        SqsQueues::delete(
            sqs.as_ref(),
            ARN,
            &[records[0].receipt_handle.clone(), "stale".into()],
        )
        .await
        .unwrap();
        let counts = engine.counts("sqs/000000000000/us-east-1/work").unwrap();
        assert_eq!((counts.visible, counts.in_flight), (0, 0));
        assert!(matches!(
            SqsQueues::receive(
                sqs.as_ref(),
                "arn:aws:sqs:us-east-1:000000000000:none",
                1,
                Duration::ZERO
            )
            .await,
            Err(SqsSourceError::NoSuchQueue(_))
        ));
        engine.close().await;
    }

    #[tokio::test]
    async fn dead_letters_carry_aws_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let (sqs, engine) = with_work_queue(dir.path(), serde_json::json!({})).await;
        assert!(sqs.queue_exists("000000000000", "us-east-1", ARN));
        assert!(!sqs.queue_exists("111111111111", "us-east-1", ARN));
        let attributes = DeadLetterAttributes::lambda("req-1", "200", "boom");
        sqs.deliver_dead_letter(
            "000000000000",
            "us-east-1",
            ARN,
            Bytes::from_static(b"{\"n\":1}"),
            attributes,
        )
        .await
        .unwrap();
        sqs.deliver_record(
            "000000000000",
            "us-east-1",
            ARN,
            Bytes::from_static(b"{\"record\":1}"),
        )
        .await
        .unwrap();
        let empty_record_to =
            |arn| sqs.deliver_record("000000000000", "us-east-1", arn, Bytes::new());
        assert!(matches!(
            empty_record_to("arn:aws:sns:us-east-1:000000000000:t").await,
            Err(DeliveryError::Unsupported(_))
        ));
        assert!(matches!(
            empty_record_to("arn:aws:sqs:us-east-1:000000000000:gone").await,
            Err(DeliveryError::Missing(_))
        ));
        let received = call(
            &sqs,
            "ReceiveMessage",
            serde_json::json!({
            "QueueUrl": "http://localhost:9000/000000000000/work",
            "MaxNumberOfMessages": 10, "MessageAttributeNames": ["All"]}),
        )
        .await;
        let messages = received.get("Messages").and_then(Doc::as_list).unwrap();
        assert_eq!(messages.len(), 2);
        let dead = messages
            .iter()
            .find(|m| m.get("Body").and_then(Doc::as_str) == Some("{\"n\":1}"))
            .unwrap();
        let attrs = dead.get("MessageAttributes").unwrap();
        for (name, value) in [
            ("RequestID", "req-1"),
            ("ErrorCode", "200"),
            ("ErrorMessage", "boom"),
        ] {
            assert_eq!(
                attrs
                    .get(name)
                    .and_then(|a| a.get("StringValue"))
                    .and_then(Doc::as_str),
                Some(value)
            );
        }
        engine.close().await;
    }
}
