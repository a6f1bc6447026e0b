//! Amazon SQS on Strato's durable queue engine.
//!
//! Queues (attributes, tags, timestamps) are documents in the [`Store`],
//! cached in memory so that sending and receiving never touch the database;
//! messages live in the [`QueueEngine`] (`strato-queue`), which already has
//! SQS's semantics: visibility leases, delays, FIFO groups and
//! deduplication, retention, redrive and long polling. What a message
//! carries besides its body (message and system attributes, its sender, the
//! queue it was sent to) travels in the engine's opaque metadata.
//!
//! The service knows nothing of HTTP: [`SqsService::operation`] takes an
//! operation's name and its input as a [`Doc`] in the JSON protocol's shape
//! and gives the output the same way. The front end maps both of SQS's wire
//! protocols onto it: awsJson 1.0 (`X-Amz-Target: AmazonSQS.*`) directly,
//! the query protocol (`Action=...`, XML) through [`XML_MEMBERS`].

pub mod error;
pub mod md5;
pub mod message;
pub mod metrics;
mod move_task;
mod operations;
pub mod queue;
mod source;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use strato_model::wire::{Doc, OpResult, XmlMember};
use strato_model::Caller;
use strato_queue::{QueueEngine, QueueOptions, Redrive};
use strato_store::{Store, StoreError};

pub use move_task::MoveTasks;
pub use queue::QueueRecord;

/// The JSON protocol's `X-Amz-Target` prefix.
pub const TARGET_PREFIX: &str = "AmazonSQS";
/// The query protocol's XML namespace.
pub const XML_NAMESPACE: &str = "http://queue.amazonaws.com/doc/2012-11-05/";
/// The SigV4 service name query-protocol requests are signed for.
pub const SIGNING_NAME: &str = "sqs";

const fn flat(
    action: Option<&'static str>,
    json: &'static str,
    xml: &'static str,
    entry: Option<(&'static str, &'static str)>,
) -> XmlMember {
    XmlMember {
        action,
        json,
        xml,
        entry,
    }
}

/// SQS's flattened query-protocol members, input and output (action-specific
/// ones first, so they win over the general ones).
pub const XML_MEMBERS: &[XmlMember] = &[
    flat(Some("CreateQueue"), "tags", "Tag", Some(("Key", "Value"))),
    flat(
        Some("SendMessageBatch"),
        "Entries",
        "SendMessageBatchRequestEntry",
        None,
    ),
    flat(
        Some("SendMessageBatch"),
        "Successful",
        "SendMessageBatchResultEntry",
        None,
    ),
    flat(
        Some("DeleteMessageBatch"),
        "Entries",
        "DeleteMessageBatchRequestEntry",
        None,
    ),
    flat(
        Some("DeleteMessageBatch"),
        "Successful",
        "DeleteMessageBatchResultEntry",
        None,
    ),
    flat(
        Some("ChangeMessageVisibilityBatch"),
        "Entries",
        "ChangeMessageVisibilityBatchRequestEntry",
        None,
    ),
    flat(
        Some("ChangeMessageVisibilityBatch"),
        "Successful",
        "ChangeMessageVisibilityBatchResultEntry",
        None,
    ),
    flat(
        Some("ListDeadLetterSourceQueues"),
        "queueUrls",
        "QueueUrl",
        None,
    ),
    flat(
        Some("ListMessageMoveTasks"),
        "Results",
        "ListMessageMoveTasksResultEntry",
        None,
    ),
    flat(None, "Failed", "BatchResultErrorEntry", None),
    flat(None, "Attributes", "Attribute", Some(("Name", "Value"))),
    flat(None, "AttributeNames", "AttributeName", None),
    flat(
        None,
        "MessageSystemAttributeNames",
        "MessageSystemAttributeName",
        None,
    ),
    flat(None, "MessageAttributeNames", "MessageAttributeName", None),
    flat(
        None,
        "MessageAttributes",
        "MessageAttribute",
        Some(("Name", "Value")),
    ),
    flat(
        None,
        "MessageSystemAttributes",
        "MessageSystemAttribute",
        Some(("Name", "Value")),
    ),
    flat(None, "Messages", "Message", None),
    flat(None, "QueueUrls", "QueueUrl", None),
    flat(None, "Tags", "Tag", Some(("Key", "Value"))),
    flat(None, "TagKeys", "TagKey", None),
];

/// Who asks, and where they reached us (queue URLs are built from it).
#[derive(Debug, Clone, Copy)]
pub struct SqsRequest<'a> {
    pub caller: &'a Caller,
    /// `http://host:port` as the client addressed the server.
    pub endpoint: &'a str,
}

/// (account, region, queue name).
pub(crate) type QueueKey = (String, String, String);

#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    #[error("cannot load the SQS queues: {0}")]
    Store(#[from] StoreError),
    #[error("stored SQS queue {id} is unreadable: {source}")]
    Corrupt {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot open the SQS queue {name} in the queue engine: {source}")]
    Engine {
        name: String,
        #[source]
        source: strato_queue::QueueError,
    },
}

/// Amazon SQS.
pub struct SqsService {
    store: Arc<dyn Store>,
    engine: Arc<dyn QueueEngine>,
    /// Every queue, by (account, region, name): read on every operation.
    queues: DashMap<QueueKey, Arc<QueueRecord>>,
    /// Queues deleted in the last 60 seconds: AWS refuses to create a queue
    /// of the same name until then.
    deleted: DashMap<QueueKey, Instant>,
    /// The last purge per queue: one per 60 seconds.
    purges: DashMap<QueueKey, Instant>,
    /// Serializes queue creation, deletion and attribute changes, so the
    /// cache, the store and the engine agree.
    control: tokio::sync::Mutex<()>,
    moves: MoveTasks,
}

impl SqsService {
    /// Loads every queue from the store and makes sure the engine has it.
    pub async fn open(
        store: Arc<dyn Store>,
        engine: Arc<dyn QueueEngine>,
    ) -> Result<Arc<SqsService>, SqsError> {
        let service = SqsService {
            store,
            engine,
            queues: DashMap::new(),
            deleted: DashMap::new(),
            purges: DashMap::new(),
            control: tokio::sync::Mutex::new(()),
            moves: MoveTasks::default(),
        };
        for document in service
            .store
            .list_all_documents(queue::DOCUMENT_KIND)
            .await?
        {
            let record: QueueRecord =
                serde_json::from_value(document.doc).map_err(|source| SqsError::Corrupt {
                    id: document.key.id.clone(),
                    source,
                })?;
            service.queues.insert(
                (
                    record.account.clone(),
                    record.region.clone(),
                    record.name.clone(),
                ),
                Arc::new(record),
            );
        }
        let records: Vec<Arc<QueueRecord>> =
            service.queues.iter().map(|q| q.value().clone()).collect();
        for record in records {
            service
                .engine
                .create_queue(&record.engine_name(), service.engine_options(&record))
                .await
                .map_err(|source| SqsError::Engine {
                    name: record.name.clone(),
                    source,
                })?;
        }
        Ok(Arc::new(service))
    }

    /// One SQS operation, in the JSON protocol's shapes.
    pub async fn operation(
        &self,
        request: SqsRequest<'_>,
        operation: &str,
        input: Doc,
    ) -> OpResult {
        operations::dispatch(self, request, operation, input).await
    }

    /// What the queue engine must know of a queue.
    fn engine_options(&self, record: &QueueRecord) -> QueueOptions {
        let redrive = record.redrive_policy().and_then(|policy| {
            let (region, account, name) = queue::parse_arn(&policy.dead_letter_target_arn)?;
            Some(Redrive {
                dead_letter_queue: queue::engine_queue_name(account, region, name),
                max_receive_count: policy.max_receive_count,
            })
        });
        QueueOptions {
            fifo: record.fifo(),
            // Deduplication ids are computed here (SHA-256 of the body), so
            // the id AWS reports is known and the scope can be applied.
            content_based_dedup: false,
            retention: record.retention(),
            redrive,
            ..QueueOptions::default()
        }
    }

    fn queue(&self, account: &str, region: &str, name: &str) -> Option<Arc<QueueRecord>> {
        self.queues
            .get(&(account.to_string(), region.to_string(), name.to_string()))
            .map(|q| q.value().clone())
    }

    /// The `Policy` attribute of the queue an ARN names, if it has one
    /// (the front end decides requests on the queue with it); `None` when
    /// there is no such queue.
    pub fn queue_policy(&self, arn: &str) -> Option<Option<String>> {
        Some(self.queue_by_arn(arn)?.attributes.get("Policy").cloned())
    }

    /// The queue an ARN names.
    fn queue_by_arn(&self, arn: &str) -> Option<Arc<QueueRecord>> {
        let (region, account, name) = queue::parse_arn(arn)?;
        self.queue(account, region, name)
    }

    /// Every queue of an account and region, sorted by name.
    fn queues_of(&self, account: &str, region: &str) -> Vec<Arc<QueueRecord>> {
        let mut out: Vec<Arc<QueueRecord>> = self
            .queues
            .iter()
            .filter(|q| q.key().0 == account && q.key().1 == region)
            .map(|q| q.value().clone())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Tags and attributes as stored.
    async fn persist(&self, record: &QueueRecord) -> Result<(), strato_model::wire::ServiceError> {
        let key = strato_store::DocumentKey::new(
            &record.account,
            &record.region,
            queue::DOCUMENT_KIND,
            &record.name,
        );
        let doc = serde_json::to_value(record).map_err(|e| error::internal(e.to_string()))?;
        self.store
            .put_document(&key, &doc)
            .await
            .map_err(|e| error::internal(e.to_string()))
    }
}

/// Attributes of a queue as `GetQueueAttributes` reports them.
fn reported_attributes(
    record: &QueueRecord,
    counts: strato_queue::QueueCounts,
) -> BTreeMap<String, String> {
    let mut out = record.attributes.clone();
    out.insert(
        "ApproximateNumberOfMessages".into(),
        counts.visible.to_string(),
    );
    out.insert(
        "ApproximateNumberOfMessagesNotVisible".into(),
        counts.in_flight.to_string(),
    );
    out.insert(
        "ApproximateNumberOfMessagesDelayed".into(),
        counts.delayed.to_string(),
    );
    out.insert("CreatedTimestamp".into(), record.created.to_string());
    out.insert(
        "LastModifiedTimestamp".into(),
        record.last_modified.to_string(),
    );
    out.insert("QueueArn".into(), record.arn());
    out
}
