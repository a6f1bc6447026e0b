//! Amazon SNS: topics (standard and FIFO), subscriptions and their
//! confirmation handshake, Publish/PublishBatch and the fan-out of each
//! message to its subscriptions: Lambda functions (through
//! [`ServiceEvents`], as `sns.amazonaws.com`), SQS queues (through
//! [`QueueTargets`]), and HTTP/HTTPS endpoints (signed, retried, through a
//! durable queue of the queue engine, so an accepted message survives a
//! restart).
//!
//! Like `strato-sqs`, the service knows nothing of HTTP requests:
//! [`SnsService::operation`] takes an operation and its input as a [`Doc`]
//! (the query protocol's form, decoded by the front end) and answers a
//! [`Doc`] the front end writes as SNS's XML.

pub mod delivery;
mod delivery_policy;
pub mod error;
mod http;
pub mod message;
mod operations;
mod policy;
mod publish;
pub mod signing;
mod tags;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use strato_engine::async_invoke::{
    Content, Delivery, DeliveryError, EventSink, ServiceEvents, ServiceOrigin,
};
use strato_model::wire::{Doc, OpResult};
use strato_model::Caller;
use strato_pattern::Pattern;
use strato_queue::QueueEngine;
use strato_store::{DocumentKey, Store, StoreError};

pub use message::{AttributeValue, MessageAttribute};

/// The query protocol's XML namespace.
pub const XML_NAMESPACE: &str = "http://sns.amazonaws.com/doc/2010-03-31/";
/// The SigV4 service name requests are signed for (and the ARN service).
pub const SIGNING_NAME: &str = "sns";
/// The service principal SNS invokes functions as.
pub const PRINCIPAL: &str = "sns.amazonaws.com";

const TOPIC_KIND: &str = "sns-topic";
const SUBSCRIPTION_KIND: &str = "sns-subscription";

/// A message to put in an SQS queue for a subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueDelivery {
    pub account: String,
    pub region: String,
    pub queue_arn: String,
    pub body: String,
    /// Raw message delivery carries the message's attributes over.
    pub attributes: Vec<MessageAttribute>,
    /// FIFO queues only.
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

/// What SNS needs of SQS (implemented where both services are wired).
#[async_trait::async_trait]
pub trait QueueTargets: Send + Sync + 'static {
    /// `Some(is_fifo)` when the queue exists.
    fn queue_fifo(&self, arn: &str) -> Option<bool>;
    /// Sends durably: done when it returns Ok.
    async fn send(&self, delivery: QueueDelivery) -> Result<(), DeliveryError>;
}

#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    #[error("cannot load SNS topics and subscriptions: {0}")]
    Store(#[from] StoreError),
    #[error("stored SNS {kind} {id} is unreadable: {source}")]
    Corrupt {
        kind: &'static str,
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Signing(#[from] signing::SigningError),
    #[error("cannot open the SNS delivery queue: {0}")]
    Queue(#[from] strato_queue::QueueError),
    #[error("cannot build the SNS HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// A topic as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicRecord {
    pub account: String,
    pub region: String,
    pub name: String,
    /// What the user set (`DisplayName`, `FifoTopic`, `Policy`, ...).
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Subscriptions removed so far (`SubscriptionsDeleted`).
    #[serde(default)]
    pub deleted_subscriptions: u64,
}

impl TopicRecord {
    pub fn arn(&self) -> String {
        format!("arn:aws:sns:{}:{}:{}", self.region, self.account, self.name)
    }

    pub fn fifo(&self) -> bool {
        self.attributes.get("FifoTopic").map(String::as_str) == Some("true")
    }

    pub fn content_based_dedup(&self) -> bool {
        self.attributes
            .get("ContentBasedDeduplication")
            .map(String::as_str)
            == Some("true")
    }

    pub fn signature_version(&self) -> signing::SignatureVersion {
        signing::SignatureVersion::parse(
            self.attributes.get("SignatureVersion").map(String::as_str),
        )
    }
}

/// A subscription as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubscriptionRecord {
    pub arn: String,
    pub topic_arn: String,
    pub account: String,
    pub region: String,
    pub protocol: String,
    pub endpoint: String,
    /// `FilterPolicy`, `RawMessageDelivery`, `RedrivePolicy`, ...
    pub attributes: BTreeMap<String, String>,
    pub confirmed: bool,
    /// The confirmation token (HTTP/HTTPS until confirmed).
    pub token: Option<String>,
}

impl SubscriptionRecord {
    pub fn raw(&self) -> bool {
        self.attributes
            .get("RawMessageDelivery")
            .map(String::as_str)
            == Some("true")
    }

    /// The redrive policy's dead-letter queue.
    pub fn dead_letter_queue(&self) -> Option<String> {
        let policy = self.attributes.get("RedrivePolicy")?;
        let value: serde_json::Value = serde_json::from_str(policy).ok()?;
        value
            .get("deadLetterTargetArn")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    }
}

/// A subscription with its filter policy compiled.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub record: SubscriptionRecord,
    pub filter: Option<Pattern>,
}

impl Subscription {
    fn new(record: SubscriptionRecord) -> Subscription {
        let filter = record.attributes.get("FilterPolicy").and_then(|text| {
            Pattern::parse(
                text,
                strato_pattern::Dialect::SnsFilterPolicy(scope(&record)),
            )
            .ok()
        });
        Subscription { record, filter }
    }
}

/// The subscription's `FilterPolicyScope`.
pub(crate) fn scope(record: &SubscriptionRecord) -> strato_pattern::SnsScope {
    match record
        .attributes
        .get("FilterPolicyScope")
        .map(String::as_str)
    {
        Some("MessageBody") => strato_pattern::SnsScope::MessageBody,
        _ => strato_pattern::SnsScope::MessageAttributes,
    }
}

/// Who asks, and where they reached us (URLs in messages are built from it).
#[derive(Debug, Clone, Copy)]
pub struct SnsRequest<'a> {
    pub caller: &'a Caller,
    /// `http://host:port` as the client addressed the server.
    pub endpoint: &'a str,
}

/// How the service is built.
pub struct SnsConfig {
    pub store: Arc<dyn Store>,
    pub queues: Arc<dyn QueueEngine>,
    pub targets: Arc<dyn QueueTargets>,
    pub functions: Arc<dyn ServiceEvents>,
    /// Where the signing key and certificate live.
    pub data_dir: PathBuf,
    /// Test-only: delivery retry waits are divided by this.
    pub time_scale: u32,
}

/// Amazon SNS.
pub struct SnsService {
    store: Arc<dyn Store>,
    queues: Arc<dyn QueueEngine>,
    targets: Arc<dyn QueueTargets>,
    functions: Arc<dyn ServiceEvents>,
    signer: signing::Signer,
    /// Every topic, by ARN.
    topics: DashMap<String, Arc<TopicRecord>>,
    /// Every subscription, by ARN.
    subscriptions: DashMap<String, Arc<Subscription>>,
    /// `http://host:port` for URLs in messages published without a request
    /// (destinations, alarms, rule targets).
    endpoint: parking_lot::RwLock<String>,
    /// Serializes topic and subscription changes, so cache and store agree.
    control: tokio::sync::Mutex<()>,
    http: reqwest::Client,
    /// Test-only: retry waits are divided by this.
    time_scale: u32,
    throttle: http::Throttle,
}

impl SnsService {
    /// Loads every topic and subscription and the signing key.
    pub async fn open(config: SnsConfig) -> Result<Arc<SnsService>, SnsError> {
        let signer = signing::Signer::open(&config.data_dir.join("sns"))?;
        config
            .queues
            .create_queue(http::QUEUE, strato_queue::QueueOptions::default())
            .await?;
        // FIFO topics' deduplication ids and sequence numbers, in the queue
        // engine's durable dedup table: a duplicate is recognized across a
        // restart too. Its messages carry nothing and expire with the window.
        config
            .queues
            .create_queue(
                publish::DEDUP_QUEUE,
                strato_queue::QueueOptions {
                    fifo: true,
                    dedup_window: publish::DEDUP_WINDOW,
                    retention: publish::DEDUP_WINDOW,
                    ..strato_queue::QueueOptions::default()
                },
            )
            .await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()?;
        let service = SnsService {
            store: config.store,
            queues: config.queues,
            targets: config.targets,
            functions: config.functions,
            signer,
            topics: DashMap::new(),
            subscriptions: DashMap::new(),
            endpoint: parking_lot::RwLock::new("http://localhost".to_string()),
            control: tokio::sync::Mutex::new(()),
            http,
            time_scale: config.time_scale.max(1),
            throttle: http::Throttle::default(),
        };
        for document in service.store.list_all_documents(TOPIC_KIND).await? {
            let record: TopicRecord =
                serde_json::from_value(document.doc).map_err(|source| SnsError::Corrupt {
                    kind: "topic",
                    id: document.key.id.clone(),
                    source,
                })?;
            service.topics.insert(record.arn(), Arc::new(record));
        }
        for document in service.store.list_all_documents(SUBSCRIPTION_KIND).await? {
            let record: SubscriptionRecord =
                serde_json::from_value(document.doc).map_err(|source| SnsError::Corrupt {
                    kind: "subscription",
                    id: document.key.id.clone(),
                    source,
                })?;
            service
                .subscriptions
                .insert(record.arn.clone(), Arc::new(Subscription::new(record)));
        }
        Ok(Arc::new(service))
    }

    /// Starts delivering to HTTP/HTTPS endpoints (including what a previous
    /// run accepted and had not delivered yet).
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        http::spawn_worker(self.clone())
    }

    /// Where the server is reachable, for URLs in messages that no request
    /// published.
    pub fn set_endpoint(&self, endpoint: &str) {
        *self.endpoint.write() = endpoint.to_string();
    }

    /// One SNS operation.
    pub async fn operation(
        &self,
        request: SnsRequest<'_>,
        operation: &str,
        input: Doc,
    ) -> OpResult {
        operations::dispatch(self, request, operation, input).await
    }

    /// Whether a topic ARN names an existing topic of this account and region.
    pub fn topic_exists(&self, account: &str, region: &str, arn: &str) -> bool {
        self.topics
            .get(arn)
            .is_some_and(|t| t.account == account && t.region == region)
    }

    /// The `Policy` set on the topic an ARN names, if one is (the front end
    /// decides requests on the topic with it; AWS's default policy grants
    /// nothing beyond the owner account, which needs no grant); `None` when
    /// there is no such topic.
    pub fn topic_policy(&self, arn: &str) -> Option<Option<String>> {
        Some(self.topic(arn)?.attributes.get("Policy").cloned())
    }

    /// The signing certificate, when `file` is its name.
    pub fn certificate(&self, file: &str) -> Option<String> {
        (file == self.signer.certificate_file()).then(|| self.signer.certificate_pem().to_string())
    }

    /// `GET`'s answer to a SubscribeURL: confirms the subscription.
    pub async fn confirm_by_url(&self, topic_arn: &str, token: &str) -> OpResult {
        operations::confirm(self, topic_arn, token).await
    }

    /// `GET`'s answer to an UnsubscribeURL.
    pub async fn unsubscribe_by_url(&self, subscription_arn: &str) -> OpResult {
        operations::unsubscribe_arn(self, subscription_arn).await
    }

    /// A retry's wait under `--time-scale`.
    fn scaled(&self, wait: Duration) -> Duration {
        wait / self.time_scale
    }

    fn topic(&self, arn: &str) -> Option<Arc<TopicRecord>> {
        self.topics.get(arn).map(|t| t.value().clone())
    }

    fn subscriptions_of(&self, topic_arn: &str) -> Vec<Arc<Subscription>> {
        let mut out: Vec<Arc<Subscription>> = self
            .subscriptions
            .iter()
            .filter(|s| s.record.topic_arn == topic_arn)
            .map(|s| s.value().clone())
            .collect();
        out.sort_by(|a, b| a.record.arn.cmp(&b.record.arn));
        out
    }

    /// Stores a topic and makes it the one served.
    async fn save_topic(
        &self,
        record: TopicRecord,
    ) -> Result<(), strato_model::wire::ServiceError> {
        self.persist_topic(&record).await?;
        self.topics.insert(record.arn(), Arc::new(record));
        Ok(())
    }

    async fn persist_topic(
        &self,
        record: &TopicRecord,
    ) -> Result<(), strato_model::wire::ServiceError> {
        let key = DocumentKey::new(&record.account, &record.region, TOPIC_KIND, &record.name);
        let doc = serde_json::to_value(record).map_err(|e| error::internal(e.to_string()))?;
        self.store
            .put_document(&key, &doc)
            .await
            .map_err(|e| error::internal(e.to_string()))
    }

    async fn persist_subscription(
        &self,
        record: &SubscriptionRecord,
    ) -> Result<(), strato_model::wire::ServiceError> {
        let key = DocumentKey::new(
            &record.account,
            &record.region,
            SUBSCRIPTION_KIND,
            &record.arn,
        );
        let doc = serde_json::to_value(record).map_err(|e| error::internal(e.to_string()))?;
        self.store
            .put_document(&key, &doc)
            .await
            .map_err(|e| error::internal(e.to_string()))
    }

    async fn forget_subscription(
        &self,
        record: &SubscriptionRecord,
    ) -> Result<(), strato_model::wire::ServiceError> {
        let key = DocumentKey::new(
            &record.account,
            &record.region,
            SUBSCRIPTION_KIND,
            &record.arn,
        );
        self.store
            .delete_document(&key)
            .await
            .map(|_| ())
            .map_err(|e| error::internal(e.to_string()))
    }

    async fn forget_topic(
        &self,
        record: &TopicRecord,
    ) -> Result<(), strato_model::wire::ServiceError> {
        let key = DocumentKey::new(&record.account, &record.region, TOPIC_KIND, &record.name);
        self.store
            .delete_document(&key)
            .await
            .map(|_| ())
            .map_err(|e| error::internal(e.to_string()))
    }

    /// Refuses a service publishing as itself when the topic's policy does
    /// not admit it, in AWS's words (CloudWatch alarm history shows them).
    fn admit(&self, destination: &str, origin: &ServiceOrigin<'_>) -> Result<(), DeliveryError> {
        match self.topic(destination) {
            Some(topic) if !policy::service_may_publish(&topic, origin) => {
                Err(DeliveryError::Denied(format!(
                    "Resource: {} is not authorized to perform: SNS:Publish on resource: {destination}",
                    origin.source_arn
                )))
            }
            _ => Ok(()),
        }
    }

    /// A message the platform publishes (destinations, dead letters, alarms).
    async fn publish_internal(
        &self,
        account: &str,
        region: &str,
        topic_arn: &str,
        message: String,
        subject: Option<String>,
        attributes: Vec<MessageAttribute>,
    ) -> Result<(), DeliveryError> {
        let topic = self
            .topic(topic_arn)
            .filter(|t| t.account == account && t.region == region)
            .ok_or_else(|| DeliveryError::Missing(topic_arn.to_string()))?;
        let endpoint = self.endpoint.read().clone();
        let mut publish = delivery::Publication::new(&topic, message, subject, attributes);
        if topic.fifo() {
            let id = uuid::Uuid::new_v4().to_string();
            publish.group_id = Some(id.clone());
            publish.dedup_id = Some(id);
        }
        publish::deliver(self, &topic, publish, &endpoint)
            .await
            .map(|_| ())
            .map_err(|e| DeliveryError::Failed {
                destination: topic_arn.to_string(),
                reason: e.message,
            })
    }
}

/// A topic publishes what it is delivered; a delivery made as a service
/// ([`Delivery::origin`]) only when the topic's policy admits that service.
#[async_trait::async_trait]
impl EventSink for SnsService {
    async fn deliver(&self, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        let Delivery { to, content } = delivery;
        if let Some(origin) = content.origin() {
            self.admit(to.arn, origin)?;
        }
        let (subject, attributes) = match &content {
            Content::Notification { subject, .. } => (Some(subject.to_string()), Vec::new()),
            Content::DeadLetter { attributes, .. } => (None, attributes.message_attributes()),
            Content::Record(_) | Content::As { .. } | Content::Grouped { .. } => (None, Vec::new()),
        };
        let text = String::from_utf8_lossy(&content.into_body()).into_owned();
        self.publish_internal(to.account, to.region, to.arn, text, subject, attributes)
            .await
    }
}
