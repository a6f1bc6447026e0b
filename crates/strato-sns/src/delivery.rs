//! What a published message becomes for each protocol — the SQS/HTTP JSON
//! envelope (`SigningCertURL`), Lambda's SNS event (`SigningCertUrl`), or
//! the raw message — and the fan-out to a topic's subscriptions.

use std::sync::Arc;

use strato_engine::async_invoke::{DeliveryError, ServiceEvent, ServiceEventError};
use strato_model::wire::ServiceError;

use crate::message::{attributes_json, MessageAttribute};
use crate::signing::{SignatureVersion, SignedFields};
use crate::{http, QueueDelivery, SnsService, Subscription, TopicRecord};

/// One accepted message, as every subscription sees it.
#[derive(Debug, Clone)]
pub struct Publication {
    pub topic_arn: String,
    pub message_id: String,
    /// The message (`default` of a `MessageStructure: json` message).
    pub message: String,
    /// `MessageStructure: json`: the message per protocol.
    pub per_protocol: Option<serde_json::Map<String, serde_json::Value>>,
    pub subject: Option<String>,
    pub attributes: Vec<MessageAttribute>,
    /// `2026-12-07T01:02:03.456Z`.
    pub timestamp: String,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    /// FIFO topics only.
    pub sequence: Option<String>,
    pub signature_version: SignatureVersion,
    /// Signatures made so far, by message: a signature covers no
    /// subscription-specific field, so each distinct message is signed once.
    signatures: Arc<parking_lot::Mutex<Vec<(String, String)>>>,
}

impl Publication {
    pub fn new(
        topic: &TopicRecord,
        message: String,
        subject: Option<String>,
        attributes: Vec<MessageAttribute>,
    ) -> Publication {
        Publication {
            topic_arn: topic.arn(),
            message_id: uuid::Uuid::new_v4().to_string(),
            message,
            per_protocol: None,
            subject,
            attributes,
            timestamp: chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
            group_id: None,
            dedup_id: None,
            sequence: None,
            signature_version: topic.signature_version(),
            signatures: Arc::default(),
        }
    }

    /// The message a protocol's subscribers get.
    pub fn message_for(&self, protocol: &str) -> &str {
        self.per_protocol
            .as_ref()
            .and_then(|m| m.get(protocol))
            .and_then(serde_json::Value::as_str)
            .unwrap_or(&self.message)
    }
}

/// URLs in messages, under the server's address (ARNs unescaped in the
/// query, as AWS writes them: `:` needs no escaping there).
pub(crate) fn certificate_url(service: &SnsService, endpoint: &str) -> String {
    format!(
        "{endpoint}/strato/sns/{}",
        service.signer.certificate_file()
    )
}

pub(crate) fn unsubscribe_url(endpoint: &str, subscription_arn: &str) -> String {
    format!(
        "{endpoint}/strato/sns/unsubscribe?Action=Unsubscribe&SubscriptionArn={subscription_arn}"
    )
}

pub(crate) fn subscribe_url(endpoint: &str, topic_arn: &str, token: &str) -> String {
    format!(
        "{endpoint}/strato/sns/confirm?Action=ConfirmSubscription&TopicArn={topic_arn}&Token={token}"
    )
}

/// A JSON object with its members in the order given (AWS's order), from
/// already-encoded values.
pub(crate) fn ordered_object(members: &[(&str, String)]) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(key));
        out.push(':');
        out.push_str(value);
    }
    out.push('}');
    out
}

pub(crate) fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// The signature of a notification carrying `message`.
fn signature(service: &SnsService, publication: &Publication, message: &str) -> String {
    if let Some((_, signature)) = publication
        .signatures
        .lock()
        .iter()
        .find(|(signed, _)| signed == message)
    {
        return signature.clone();
    }
    let signature = service.signer.sign(
        publication.signature_version,
        &SignedFields {
            message,
            message_id: &publication.message_id,
            subject: publication.subject.as_deref(),
            subscribe_url: None,
            timestamp: &publication.timestamp,
            token: None,
            topic_arn: &publication.topic_arn,
            kind: "Notification",
        },
    );
    publication
        .signatures
        .lock()
        .push((message.to_string(), signature.clone()));
    signature
}

/// The JSON envelope SQS and HTTP subscribers get.
pub fn envelope(
    service: &SnsService,
    publication: &Publication,
    subscription_arn: &str,
    protocol: &str,
    endpoint: &str,
) -> String {
    let message = publication.message_for(protocol);
    let mut members = vec![
        ("Type", json_string("Notification")),
        ("MessageId", json_string(&publication.message_id)),
    ];
    if let Some(sequence) = &publication.sequence {
        members.push(("SequenceNumber", json_string(sequence)));
    }
    members.push(("TopicArn", json_string(&publication.topic_arn)));
    if let Some(subject) = &publication.subject {
        members.push(("Subject", json_string(subject)));
    }
    members.extend([
        ("Message", json_string(message)),
        ("Timestamp", json_string(&publication.timestamp)),
        (
            "SignatureVersion",
            json_string(publication.signature_version.as_str()),
        ),
        (
            "Signature",
            json_string(&signature(service, publication, message)),
        ),
        (
            "SigningCertURL",
            json_string(&certificate_url(service, endpoint)),
        ),
        (
            "UnsubscribeURL",
            json_string(&unsubscribe_url(endpoint, subscription_arn)),
        ),
    ]);
    if !publication.attributes.is_empty() {
        members.push((
            "MessageAttributes",
            attributes_json(&publication.attributes).to_string(),
        ));
    }
    ordered_object(&members)
}

/// Lambda's SNS event: one record.
pub fn lambda_event(
    service: &SnsService,
    publication: &Publication,
    subscription_arn: &str,
    endpoint: &str,
) -> String {
    let message = publication.message_for("lambda");
    let sns = ordered_object(&[
        ("Type", json_string("Notification")),
        ("MessageId", json_string(&publication.message_id)),
        ("TopicArn", json_string(&publication.topic_arn)),
        (
            "Subject",
            publication
                .subject
                .as_deref()
                .map_or_else(|| "null".to_string(), json_string),
        ),
        ("Message", json_string(message)),
        ("Timestamp", json_string(&publication.timestamp)),
        (
            "SignatureVersion",
            json_string(publication.signature_version.as_str()),
        ),
        (
            "Signature",
            json_string(&signature(service, publication, message)),
        ),
        (
            "SigningCertUrl",
            json_string(&certificate_url(service, endpoint)),
        ),
        (
            "UnsubscribeUrl",
            json_string(&unsubscribe_url(endpoint, subscription_arn)),
        ),
        (
            "MessageAttributes",
            attributes_json(&publication.attributes).to_string(),
        ),
    ]);
    let record = ordered_object(&[
        ("EventSource", json_string("aws:sns")),
        ("EventVersion", json_string("1.0")),
        ("EventSubscriptionArn", json_string(subscription_arn)),
        ("Sns", sns),
    ]);
    ordered_object(&[("Records", format!("[{record}]"))])
}

/// Whether the subscription's filter policy lets the message through.
pub fn passes_filter(subscription: &Subscription, publication: &Publication) -> bool {
    let Some(filter) = &subscription.filter else {
        return true;
    };
    match crate::scope(&subscription.record) {
        strato_pattern::SnsScope::MessageAttributes => filter.matches(
            &strato_pattern::sns_attributes_document(&attributes_json(&publication.attributes)),
        ),
        strato_pattern::SnsScope::MessageBody => {
            match serde_json::from_str::<serde_json::Value>(
                publication.message_for(&subscription.record.protocol),
            ) {
                Ok(body @ serde_json::Value::Object(_)) => filter.matches(&body),
                _ => false,
            }
        }
    }
}

/// Delivers one publication to every confirmed subscription of its topic
/// whose filter lets it through, all at once (so the queue engine commits
/// them together). Lambda and SQS deliveries are durable when they return,
/// HTTP ones and retries of the others once queued; an error means a
/// delivery could not be stored and the publish must fail.
pub async fn fan_out(
    service: &SnsService,
    topic: &TopicRecord,
    publication: &Publication,
    endpoint: &str,
) -> Result<(), ServiceError> {
    let subscriptions: Vec<Arc<Subscription>> = service
        .subscriptions_of(&publication.topic_arn)
        .into_iter()
        .filter(|s| s.record.confirmed && passes_filter(s, publication))
        .collect();
    let deliveries = subscriptions
        .iter()
        .map(|subscription| deliver_one(service, topic, subscription, publication, endpoint));
    futures_util::future::join_all(deliveries)
        .await
        .into_iter()
        .collect()
}

/// One subscription's delivery.
async fn deliver_one(
    service: &SnsService,
    topic: &TopicRecord,
    subscription: &Subscription,
    publication: &Publication,
    endpoint: &str,
) -> Result<(), ServiceError> {
    let record = &subscription.record;
    match record.protocol.as_str() {
        "lambda" => {
            let payload = lambda_event(service, publication, &record.arn, endpoint);
            let event = ServiceEvent {
                function_arn: record.endpoint.clone(),
                principal: crate::PRINCIPAL.to_string(),
                source_arn: Some(publication.topic_arn.clone()),
                source_account: Some(topic.account.clone()),
                payload: payload.clone().into(),
                trace_header: None,
            };
            let failure = match service.functions.invoke_event(event).await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            tracing::warn!(subscription = %record.arn, error = %failure, "SNS could not invoke the function");
            let envelope = envelope(service, publication, &record.arn, "lambda", endpoint);
            if matches!(failure, ServiceEventError::Unavailable(_)) {
                let route = http::Route::Lambda {
                    source_account: topic.account.clone(),
                };
                return http::enqueue_retry(
                    service,
                    subscription,
                    publication,
                    route,
                    payload,
                    Some(envelope),
                )
                .await;
            }
            dead_letter(service, subscription, envelope, publication).await;
            Ok(())
        }
        "sqs" => {
            let delivery = queue_delivery(service, subscription, publication, endpoint);
            let failure = match service.targets.send(delivery.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            tracing::warn!(subscription = %record.arn, error = %failure, "SNS could not deliver to the queue");
            if matches!(failure, DeliveryError::Failed { .. }) {
                let body = delivery.body.clone();
                let route = http::Route::Sqs(delivery);
                return http::enqueue_retry(service, subscription, publication, route, body, None)
                    .await;
            }
            dead_letter(service, subscription, delivery.body, publication).await;
            Ok(())
        }
        "http" | "https" => {
            http::enqueue_notification(service, subscription, publication, endpoint).await
        }
        _ => Ok(()),
    }
}

/// The message an SQS subscription's queue gets.
fn queue_delivery(
    service: &SnsService,
    subscription: &Subscription,
    publication: &Publication,
    endpoint: &str,
) -> QueueDelivery {
    let record = &subscription.record;
    let (body, attributes) = if record.raw() {
        (
            publication.message_for("sqs").to_string(),
            publication.attributes.clone(),
        )
    } else {
        (
            envelope(service, publication, &record.arn, "sqs", endpoint),
            Vec::new(),
        )
    };
    let fifo_queue = service.targets.queue_fifo(&record.endpoint) == Some(true);
    let (group_id, dedup_id) = if fifo_queue {
        (
            Some(
                publication
                    .group_id
                    .clone()
                    .unwrap_or_else(|| "default".into()),
            ),
            Some(
                publication
                    .dedup_id
                    .clone()
                    .unwrap_or_else(|| publication.message_id.clone()),
            ),
        )
    } else {
        (None, None)
    };
    QueueDelivery {
        account: record.account.clone(),
        region: record.region.clone(),
        queue_arn: record.endpoint.clone(),
        body,
        attributes,
        group_id,
        dedup_id,
    }
}

/// A message no attempt could deliver goes to the subscription's
/// dead-letter queue, when it has one; otherwise it is dropped, as on AWS.
pub(crate) async fn dead_letter(
    service: &SnsService,
    subscription: &Subscription,
    body: String,
    publication: &Publication,
) {
    dead_letter_body(
        service,
        &subscription.record,
        body,
        publication.group_id.clone(),
        publication.message_id.clone(),
    )
    .await;
}

/// [`dead_letter`] of an already-built body.
pub(crate) async fn dead_letter_body(
    service: &SnsService,
    record: &crate::SubscriptionRecord,
    body: String,
    group_id: Option<String>,
    message_id: String,
) {
    let Some(queue_arn) = record.dead_letter_queue() else {
        return;
    };
    let fifo = service.targets.queue_fifo(&queue_arn) == Some(true);
    let delivery = QueueDelivery {
        account: record.account.clone(),
        region: record.region.clone(),
        queue_arn: queue_arn.clone(),
        body,
        attributes: Vec::new(),
        group_id: fifo.then(|| group_id.unwrap_or_else(|| "default".into())),
        dedup_id: fifo.then_some(message_id),
    };
    if let Err(e) = service.targets.send(delivery).await {
        tracing::warn!(queue = %queue_arn, error = %e, "SNS could not dead-letter a message");
    }
}
