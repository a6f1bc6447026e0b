//! Queued deliveries: every confirmation and notification for an HTTP/HTTPS
//! endpoint, and every retry of a Lambda or SQS delivery that failed on the
//! endpoint's side, is first written to one durable queue of the queue
//! engine (so a Publish that answered is delivered even across a restart),
//! then attempted by a worker: POSTed with SNS's headers, invoked, or sent.
//! A failed attempt is retried after the wait its delivery policy gives
//! (`delivery_policy`: the subscription's or topic's for HTTP/HTTPS, AWS's
//! fixed one for Lambda and SQS), the count of attempts kept in the
//! message's metadata; a refusal that cannot heal (no such function or
//! queue, a policy that does not admit SNS) and an exhausted policy send the
//! message to the subscription's dead-letter queue, or drop it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strato_model::wire::ServiceError;
use strato_queue::NewMessage;

use strato_engine::async_invoke::{DeliveryError, ServiceEvent, ServiceEventError};

use crate::delivery::{self, json_string, ordered_object, Publication};
use crate::delivery_policy;
use crate::signing::SignedFields;
use crate::{error, QueueDelivery, SnsService, Subscription, SubscriptionRecord};

/// The queue engine queue of pending deliveries (named when it held HTTP
/// deliveries only; kept so what an older server queued is delivered).
pub(crate) const QUEUE: &str = "strato-sns-http";
/// How long one attempt may hold its message.
const LEASE: Duration = Duration::from_secs(60);

/// One queued delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HttpDelivery {
    subscription_arn: String,
    /// The HTTP/HTTPS endpoint, function or queue ARN.
    url: String,
    /// `Notification`, `SubscriptionConfirmation`, `UnsubscribeConfirmation`.
    kind: String,
    message_id: String,
    topic_arn: String,
    raw: bool,
    /// What is posted, the Lambda event, or the queue message.
    body: String,
    group_id: Option<String>,
    /// How it is delivered (HTTP for what older servers queued).
    #[serde(default)]
    route: Route,
    /// What the dead-letter queue gets, when not `body` (Lambda: the
    /// envelope, not the event).
    #[serde(default)]
    dead_letter: Option<String>,
}

/// The endpoint kinds a queued delivery goes to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "lowercase")]
pub(crate) enum Route {
    #[default]
    Http,
    /// An async invocation as `sns.amazonaws.com`.
    Lambda { source_account: String },
    /// A message for the subscription's queue.
    Sqs(QueueDelivery),
}

/// The durable record of failed attempts, in the message's metadata.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Attempts {
    failed: u64,
}

async fn enqueue(
    service: &SnsService,
    delivery: &HttpDelivery,
    failed: u64,
    delay: Duration,
) -> Result<(), ServiceError> {
    let body = serde_json::to_vec(delivery).map_err(|e| error::internal(e.to_string()))?;
    let metadata =
        serde_json::to_vec(&Attempts { failed }).map_err(|e| error::internal(e.to_string()))?;
    service
        .queues
        .send(
            QUEUE,
            vec![NewMessage {
                body: Bytes::from(body),
                metadata: Bytes::from(metadata),
                delay,
                ..NewMessage::default()
            }],
        )
        .await
        .map(|_| ())
        .map_err(|e| error::internal(e.to_string()))
}

/// Queues the retries of a Lambda or SQS delivery whose first attempt
/// failed on the endpoint's side (AWS-managed endpoints' policy).
pub(crate) async fn enqueue_retry(
    service: &SnsService,
    subscription: &Subscription,
    publication: &Publication,
    route: Route,
    body: String,
    dead_letter: Option<String>,
) -> Result<(), ServiceError> {
    let record = &subscription.record;
    let topic = service.topic(&record.topic_arn);
    let policy = delivery_policy::effective(topic.as_deref(), record);
    let delivery = notification(record, publication, route, body, dead_letter);
    enqueue(service, &delivery, 1, service.scaled(policy.retry.delay(1))).await
}

/// A notification of `publication` for the subscription's endpoint.
fn notification(
    record: &SubscriptionRecord,
    publication: &Publication,
    route: Route,
    body: String,
    dead_letter: Option<String>,
) -> HttpDelivery {
    HttpDelivery {
        subscription_arn: record.arn.clone(),
        url: record.endpoint.clone(),
        kind: "Notification".into(),
        message_id: publication.message_id.clone(),
        topic_arn: publication.topic_arn.clone(),
        raw: record.raw(),
        body,
        group_id: publication.group_id.clone(),
        route,
        dead_letter,
    }
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
    let delivery = notification(record, publication, Route::Http, body, None);
    enqueue(service, &delivery, 0, Duration::ZERO).await
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
            route: Route::Http,
            dead_letter: None,
        },
        0,
        Duration::ZERO,
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

/// How one attempt went.
enum Outcome {
    Delivered,
    /// Worth another attempt (the endpoint failed or was unavailable).
    Failed(String),
    /// Will not heal (no such function or queue, a policy refusing SNS):
    /// straight to the dead-letter queue, as AWS treats client-side errors.
    Refused(String),
}

/// One attempt at one queued delivery.
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
    let policy = subscription.as_ref().map_or_else(
        || delivery_policy::effective(None, &unsubscribed(&delivery)),
        |s| {
            let topic = service.topic(&s.record.topic_arn);
            delivery_policy::effective(topic.as_deref(), &s.record)
        },
    );
    if let Some(limit) = policy.throttle {
        if let Some(wait) = service.throttle.wait(&delivery.subscription_arn, limit) {
            if let Err(e) = service
                .queues
                .change_visibility(QUEUE, &message.receipt_handle, wait, None)
                .await
            {
                tracing::warn!(error = %e, "cannot defer a throttled SNS delivery");
            }
            return;
        }
    }
    let outcome = match &delivery.route {
        Route::Http => post(service, &delivery, policy.content_type()).await,
        Route::Lambda { source_account } => {
            invoke(service, &delivery, source_account.clone()).await
        }
        Route::Sqs(queued) => match service.targets.send(queued.clone()).await {
            Ok(()) => Outcome::Delivered,
            Err(e @ DeliveryError::Failed { .. }) => Outcome::Failed(e.to_string()),
            Err(e) => Outcome::Refused(e.to_string()),
        },
    };
    let failed = match outcome {
        Outcome::Delivered => {
            let _ = service.queues.delete(QUEUE, &receipt).await;
            return;
        }
        Outcome::Refused(reason) => {
            tracing::warn!(subscription = %delivery.subscription_arn, %reason,
                "SNS delivery refused: dead-lettered");
            None
        }
        Outcome::Failed(reason) => {
            tracing::debug!(subscription = %delivery.subscription_arn, %reason, "SNS delivery failed");
            let failed = failed_before(&message) + 1;
            (failed <= policy.retry.retries).then_some(failed)
        }
    };
    if let Some(failed) = failed {
        let metadata = serde_json::to_vec(&Attempts { failed })
            .ok()
            .map(Bytes::from);
        let wait = service.scaled(policy.retry.delay(failed));
        if let Err(e) = service
            .queues
            .change_visibility(QUEUE, &message.receipt_handle, wait, metadata)
            .await
        {
            tracing::warn!(error = %e, "cannot schedule an SNS delivery retry");
        }
        return;
    }
    tracing::warn!(subscription = %delivery.subscription_arn, url = %delivery.url,
        "SNS gave up a delivery");
    if let Some(subscription) = subscription.filter(|_| delivery.kind == "Notification") {
        delivery::dead_letter_body(
            service,
            &subscription.record,
            delivery
                .dead_letter
                .clone()
                .unwrap_or(delivery.body.clone()),
            delivery.group_id.clone(),
            delivery.message_id.clone(),
        )
        .await;
    }
    let _ = service.queues.delete(QUEUE, &receipt).await;
}

/// Failed attempts so far: the metadata's count (a message an older server
/// queued has none: its receives before this one).
fn failed_before(message: &strato_queue::Received) -> u64 {
    serde_json::from_slice::<Attempts>(&message.metadata).map_or_else(
        |_| u64::from(message.receive_count.saturating_sub(1)),
        |a| a.failed,
    )
}

/// The subscription an `UnsubscribeConfirmation` went to, as far as its
/// delivery policy goes (gone: AWS's default HTTP policy).
fn unsubscribed(delivery: &HttpDelivery) -> SubscriptionRecord {
    SubscriptionRecord {
        arn: delivery.subscription_arn.clone(),
        topic_arn: delivery.topic_arn.clone(),
        account: String::new(),
        region: String::new(),
        protocol: "http".into(),
        endpoint: delivery.url.clone(),
        attributes: std::collections::BTreeMap::new(),
        confirmed: false,
        token: None,
    }
}

/// A queued Lambda delivery: the event again, as `sns.amazonaws.com`.
async fn invoke(service: &SnsService, delivery: &HttpDelivery, source_account: String) -> Outcome {
    let event = ServiceEvent {
        function_arn: delivery.url.clone(),
        principal: crate::PRINCIPAL.to_string(),
        source_arn: Some(delivery.topic_arn.clone()),
        source_account: Some(source_account),
        payload: Bytes::from(delivery.body.clone()),
        trace_header: None,
    };
    match service.functions.invoke_event(event).await {
        Ok(_) => Outcome::Delivered,
        Err(e @ ServiceEventError::Unavailable(_)) => Outcome::Failed(e.to_string()),
        Err(e) => Outcome::Refused(e.to_string()),
    }
}

/// POSTs as SNS does.
async fn post(service: &SnsService, delivery: &HttpDelivery, content_type: &str) -> Outcome {
    let mut request = service
        .http
        .post(&delivery.url)
        .header("content-type", content_type)
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
        Ok(response) if response.status().is_success() => Outcome::Delivered,
        Ok(response) => Outcome::Failed(format!("the endpoint answered {}", response.status())),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Per subscription, the deliveries made in the current second, for a
/// policy's `maxReceivesPerSecond`.
#[derive(Default)]
pub(crate) struct Throttle(dashmap::DashMap<String, (i64, u64)>);

impl Throttle {
    /// `None` when a delivery may go now (it is counted), else how long
    /// until the next second opens.
    pub(crate) fn wait(&self, subscription: &str, limit: u64) -> Option<Duration> {
        let now = chrono::Utc::now().timestamp_millis();
        let second = now.div_euclid(1000);
        let mut window = self
            .0
            .entry(subscription.to_string())
            .or_insert((second, 0));
        if window.0 != second {
            *window = (second, 0);
        }
        if window.1 < limit {
            window.1 += 1;
            return None;
        }
        let left = 1000 - now.rem_euclid(1000);
        Some(Duration::from_millis(u64::try_from(left).unwrap_or(1000)))
    }
}
