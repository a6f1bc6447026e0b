//! HTTP/HTTPS deliveries: every confirmation and notification for an
//! endpoint is first written to one durable queue of the queue engine (so
//! a Publish that answered is delivered even across a restart), then
//! POSTed by a worker with SNS's headers, retried on failure per AWS's
//! default HTTP delivery policy (3 retries, 20 s apart) and finally
//! dead-lettered or dropped.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strato_model::wire::ServiceError;
use strato_queue::NewMessage;

use crate::delivery::{self, json_string, ordered_object, Publication};
use crate::signing::SignedFields;
use crate::{error, SnsService, Subscription, SubscriptionRecord};

/// The queue engine queue of pending HTTP deliveries.
pub(crate) const QUEUE: &str = "strato-sns-http";
/// AWS's default delay between HTTP retries.
pub(crate) const RETRY_DELAY: Duration = Duration::from_secs(20);
/// The first attempt and AWS's default three retries.
const MAX_ATTEMPTS: u32 = 4;
/// How long one attempt may hold its message.
const LEASE: Duration = Duration::from_secs(60);

/// One queued POST.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HttpDelivery {
    subscription_arn: String,
    url: String,
    /// `Notification`, `SubscriptionConfirmation`, `UnsubscribeConfirmation`.
    kind: String,
    message_id: String,
    topic_arn: String,
    raw: bool,
    body: String,
    group_id: Option<String>,
}

async fn enqueue(service: &SnsService, delivery: &HttpDelivery) -> Result<(), ServiceError> {
    let body = serde_json::to_vec(delivery).map_err(|e| error::internal(e.to_string()))?;
    service
        .queues
        .send(
            QUEUE,
            vec![NewMessage {
                body: Bytes::from(body),
                ..NewMessage::default()
            }],
        )
        .await
        .map(|_| ())
        .map_err(|e| error::internal(e.to_string()))
}

/// Queues a notification for an HTTP/HTTPS subscription.
pub(crate) async fn enqueue_notification(
    service: &SnsService,
    subscription: &Subscription,
    publication: &Publication,
    endpoint: &str,
) -> Result<(), ServiceError> {
    let record = &subscription.record;
    let body = if record.raw() {
        publication.message_for(&record.protocol).to_string()
    } else {
        delivery::envelope(
            service,
            publication,
            &record.arn,
            &record.protocol,
            endpoint,
        )
    };
    enqueue(
        service,
        &HttpDelivery {
            subscription_arn: record.arn.clone(),
            url: record.endpoint.clone(),
            kind: "Notification".into(),
            message_id: publication.message_id.clone(),
            topic_arn: publication.topic_arn.clone(),
            raw: record.raw(),
            body,
            group_id: publication.group_id.clone(),
        },
    )
    .await
}

/// Which handshake message an endpoint gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// A new subscription: confirm it through `SubscribeURL`.
    Subscribe,
    /// After Unsubscribe: the subscription is gone.
    Unsubscribe,
}

/// Queues the `SubscriptionConfirmation` of a new HTTP/HTTPS subscription,
/// or the `UnsubscribeConfirmation` of a removed one.
pub(crate) async fn enqueue_confirmation(
    service: &SnsService,
    record: &SubscriptionRecord,
    token: &str,
    version: crate::signing::SignatureVersion,
    endpoint: &str,
    handshake: Handshake,
) -> Result<(), ServiceError> {
    let message_id = uuid::Uuid::new_v4().to_string();
    let timestamp = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let (kind, message) = match handshake {
        Handshake::Subscribe => (
            "SubscriptionConfirmation",
            format!(
                "You have chosen to subscribe to the topic {}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
                record.topic_arn
            ),
        ),
        Handshake::Unsubscribe => (
            "UnsubscribeConfirmation",
            format!(
                "You have chosen to deactivate subscription {}.\nTo cancel this operation and restore the subscription, visit the SubscribeURL included in this message.",
                record.arn
            ),
        ),
    };
    let subscribe_url = delivery::subscribe_url(endpoint, &record.topic_arn, token);
    let signature = service.signer.sign(
        version,
        &SignedFields {
            message: &message,
            message_id: &message_id,
            subject: None,
            subscribe_url: Some(&subscribe_url),
            timestamp: &timestamp,
            token: Some(token),
            topic_arn: &record.topic_arn,
            kind,
        },
    );
    let body = ordered_object(&[
        ("Type", json_string(kind)),
        ("MessageId", json_string(&message_id)),
        ("Token", json_string(token)),
        ("TopicArn", json_string(&record.topic_arn)),
        ("Message", json_string(&message)),
        ("SubscribeURL", json_string(&subscribe_url)),
        ("Timestamp", json_string(&timestamp)),
        ("SignatureVersion", json_string(version.as_str())),
        ("Signature", json_string(&signature)),
        (
            "SigningCertURL",
            json_string(&delivery::certificate_url(service, endpoint)),
        ),
    ]);
    enqueue(
        service,
        &HttpDelivery {
            subscription_arn: record.arn.clone(),
            url: record.endpoint.clone(),
            kind: kind.into(),
            message_id,
            topic_arn: record.topic_arn.clone(),
            raw: false,
            body,
            group_id: None,
        },
    )
    .await
}

/// Delivers queued POSTs until the server stops.
pub(crate) fn spawn_worker(service: Arc<SnsService>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Leases of a previous run's attempts end now: nothing waits a minute.
        if let Err(e) = service.queues.release_leases(QUEUE).await {
            tracing::warn!(error = %e, "cannot release SNS HTTP delivery leases");
        }
        loop {
            let received = match service
                .queues
                .receive(QUEUE, 10, LEASE, Duration::from_secs(20))
                .await
            {
                Ok(received) => received,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the SNS HTTP delivery queue");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            for message in received {
                let service = service.clone();
                tokio::spawn(async move { attempt(&service, message).await });
            }
        }
    })
}

/// One attempt at one queued POST.
async fn attempt(service: &SnsService, message: strato_queue::Received) {
    let receipt = [message.receipt_handle.clone()];
    let Ok(delivery) = serde_json::from_slice::<HttpDelivery>(&message.body) else {
        let _ = service.queues.delete(QUEUE, &receipt).await;
        return;
    };
    let subscription = service
        .subscriptions
        .get(&delivery.subscription_arn)
        .map(|s| s.value().clone());
    // Unsubscribed since: nothing more goes out but the confirmation of that.
    if subscription.is_none() && delivery.kind != "UnsubscribeConfirmation" {
        let _ = service.queues.delete(QUEUE, &receipt).await;
        return;
    }
    if post(service, &delivery).await {
        let _ = service.queues.delete(QUEUE, &receipt).await;
        return;
    }
    if message.receive_count >= MAX_ATTEMPTS {
        tracing::warn!(subscription = %delivery.subscription_arn, url = %delivery.url,
            "SNS gave up delivering to an HTTP endpoint");
        if let Some(subscription) = subscription.filter(|_| delivery.kind == "Notification") {
            delivery::dead_letter_body(
                service,
                &subscription.record,
                delivery.body.clone(),
                delivery.group_id.clone(),
                delivery.message_id.clone(),
            )
            .await;
        }
        let _ = service.queues.delete(QUEUE, &receipt).await;
        return;
    }
    if let Err(e) = service
        .queues
        .change_visibility(QUEUE, &message.receipt_handle, service.retry_delay, None)
        .await
    {
        tracing::warn!(error = %e, "cannot schedule an SNS HTTP retry");
    }
}

/// POSTs as SNS does; true on a 2xx answer.
async fn post(service: &SnsService, delivery: &HttpDelivery) -> bool {
    let mut request = service
        .http
        .post(&delivery.url)
        .header("content-type", "text/plain; charset=UTF-8")
        .header("user-agent", "Amazon Simple Notification Service Agent")
        .header("x-amz-sns-message-type", &delivery.kind)
        .header("x-amz-sns-message-id", &delivery.message_id)
        .header("x-amz-sns-topic-arn", &delivery.topic_arn);
    if delivery.kind == "Notification" {
        request = request.header("x-amz-sns-subscription-arn", &delivery.subscription_arn);
    }
    if delivery.raw {
        request = request.header("x-amz-sns-rawdelivery", "true");
    }
    match request.body(delivery.body.clone()).send().await {
        Ok(response) => response.status().is_success(),
        Err(e) => {
            tracing::debug!(url = %delivery.url, error = %e, "SNS HTTP delivery failed");
            false
        }
    }
}
