//! Poll-based event sources: what an event source mapping's pollers read.
//!
//! Event source mappings (Lambda's `CreateEventSourceMapping`) poll a
//! source in batches and invoke a function synchronously with each batch
//! (DESIGN §2). The pollers run in the engine, next to sync and async
//! invoke; the sources themselves are services above the engine. So the
//! engine states here what it needs from a source, and the service
//! implements it (SQS: `strato-sqs`), the same way destinations work through
//! [`crate::async_invoke::EventSink`].

use std::collections::HashMap;
use std::time::Duration;

/// The SQS queues mappings poll, implemented by `strato-sqs`.
#[async_trait::async_trait]
pub trait SqsQueues: Send + Sync + 'static {
    /// The queue an ARN (`arn:aws:sqs:{region}:{account}:{name}`) names,
    /// when it exists.
    fn queue(&self, arn: &str) -> Option<SqsQueueFacts>;

    /// Up to `max` messages, each leased for the queue's own visibility
    /// timeout, waiting up to `wait` for the first (long polling). Each
    /// receive counts towards the queue's redrive policy, as AWS's pollers'
    /// receives do.
    async fn receive(
        &self,
        arn: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<SqsRecord>, SqsSourceError>;

    /// Deletes messages a batch processed (or filtered out). A receipt that
    /// is no longer valid (the message was received again) is not an error:
    /// the message simply stays.
    async fn delete(&self, arn: &str, receipt_handles: &[String]) -> Result<(), SqsSourceError>;
}

/// What a mapping needs to know about its queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsQueueFacts {
    /// AWS refuses a mapping whose function timeout exceeds this.
    pub visibility_timeout: Duration,
    /// FIFO queues are delivered in order per message group.
    pub fifo: bool,
}

/// One received message, ready to go into a Lambda SQS event.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsRecord {
    pub message_id: String,
    pub receipt_handle: String,
    /// FIFO only.
    pub group_id: Option<String>,
    /// The record exactly as Lambda's SQS event carries it: `messageId`,
    /// `receiptHandle`, `body`, `attributes` (`ApproximateReceiveCount`,
    /// `SentTimestamp`, `SenderId`, `ApproximateFirstReceiveTimestamp`, and
    /// on FIFO queues `SequenceNumber`, `MessageGroupId`,
    /// `MessageDeduplicationId`), `messageAttributes`, `md5OfBody`,
    /// `md5OfMessageAttributes` (when there are attributes), `eventSource`
    /// (`aws:sqs`), `eventSourceARN`, `awsRegion`.
    pub record: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum SqsSourceError {
    #[error("the queue {0} does not exist")]
    NoSuchQueue(String),
    #[error("the queue could not be read: {0}")]
    Unavailable(String),
}

/// The streams mappings read (DynamoDB Streams), implemented by
/// `strato-dynamodb`. A stream is a set of shards; each shard's records are
/// in commit order, identified by growing sequence numbers.
#[async_trait::async_trait]
pub trait StreamSource: Send + Sync + 'static {
    /// The shard ids of the stream an ARN
    /// (`arn:aws:dynamodb:{region}:{account}:table/{name}/stream/{label}`)
    /// names; `NoSuchStream` when it does not exist (or streams are off).
    async fn shards(&self, arn: &str) -> Result<Vec<String>, StreamSourceError>;

    /// Where `position` is now, as a position that stays put: `Latest`
    /// becomes the place after the shard's current last record, so records
    /// written later are read from there even after a restart.
    async fn pin(
        &self,
        arn: &str,
        shard: &str,
        position: ShardPosition,
    ) -> Result<ShardPosition, StreamSourceError>;

    /// Up to `max` records of a shard after `position`, in order.
    async fn read(
        &self,
        arn: &str,
        shard: &str,
        position: &ShardPosition,
        max: usize,
    ) -> Result<Vec<StreamRecord>, StreamSourceError>;

    /// A signal that changes after each write that may have added records
    /// to the stream `arn` names, so an idle shard is read again at once
    /// rather than at its next poll. `None` when the source has none: then
    /// new records are found by polling alone.
    fn writes(&self, _arn: &str) -> Option<tokio::sync::watch::Receiver<()>> {
        None
    }
}

/// A place in a shard a mapping reads from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ShardPosition {
    /// The oldest record kept.
    TrimHorizon,
    /// After the newest record (resolved by [`StreamSource::pin`]).
    Latest,
    /// After the record with this sequence number.
    After(String),
    /// A place the source encoded itself (a pinned `Latest` in an empty
    /// shard).
    Marker(String),
}

/// One stream record, ready to go into a Lambda stream event.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    pub sequence_number: String,
    /// The item's key, as text: records of one key keep their order.
    pub partition_key: String,
    /// `ApproximateCreationDateTime`, epoch seconds.
    pub created: f64,
    /// The record as Lambda's DynamoDB event carries it: `eventID`,
    /// `eventName`, `eventVersion`, `eventSource`, `awsRegion`,
    /// `dynamodb{...}`, `eventSourceARN`.
    pub record: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamSourceError {
    #[error("the stream {0} does not exist")]
    NoSuchStream(String),
    #[error("the stream could not be read: {0}")]
    Unavailable(String),
}

/// What an SQS mapping's pollers call with the function's execution role,
/// in the order AWS names a missing one.
pub const SQS_POLL_ACTIONS: [&str; 3] = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
];

/// What a stream mapping's pollers call with the function's execution role.
pub const STREAM_POLL_ACTIONS: [&str; 4] = [
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:DescribeStream",
    "dynamodb:ListStreams",
];

/// AWS's sentence when the execution role, as `allows` answers for each
/// action, cannot poll `source` (a stream when `is_stream`), or `None` when
/// it can. `CreateEventSourceMapping` refuses a mapping with it; a running
/// mapping's pollers read nothing while it stands.
pub fn role_refusal(
    source: &str,
    is_stream: bool,
    allows: impl Fn(&str) -> bool,
) -> Option<String> {
    if is_stream {
        return (!STREAM_POLL_ACTIONS.iter().all(|action| allows(action))).then(|| {
            format!(
                "Cannot access stream {source}. Please ensure the role can perform the GetRecords, GetShardIterator, DescribeStream, and ListStreams Actions on your stream in IAM."
            )
        });
    }
    SQS_POLL_ACTIONS
        .iter()
        .find(|action| !allows(action))
        .map(|action| {
            let name = action.trim_start_matches("sqs:");
            format!("The provided execution role does not have permissions to call {name} on SQS")
        })
}

/// Where each shard of a mapping was processed up to, kept durably so a
/// restart resumes after the last fully processed record.
#[async_trait::async_trait]
pub trait Checkpoints: Send + Sync + 'static {
    /// Every shard's position of the mapping `spec` runs (empty when it
    /// never saved one).
    async fn load(
        &self,
        spec: &PollerSpec,
    ) -> Result<HashMap<String, ShardPosition>, CheckpointError>;
    async fn save(
        &self,
        spec: &PollerSpec,
        shards: &HashMap<String, ShardPosition>,
    ) -> Result<(), CheckpointError>;
}

#[derive(Debug, thiserror::Error)]
#[error("checkpoint store: {0}")]
pub struct CheckpointError(pub String);

mod batch;
mod engine_target;
mod poller;
mod running;
mod stream_poller;

pub use batch::MAX_BATCH_PAYLOAD;
pub use engine_target::EngineBatchTarget;
pub use poller::{
    BatchInvokeError, BatchResponse, BatchTarget, PollerSettings, PollerSpec, RecordFilter,
    SqsPollers,
};
pub use stream_poller::{
    StreamPollerSettings, StreamPollerSpec, StreamPollers, LAST_RESULT_NONE, LAST_RESULT_OK,
    LAST_RESULT_PROBLEM,
};
