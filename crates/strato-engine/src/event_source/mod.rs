//! Poll-based event sources: what an event source mapping's pollers read.
//!
//! Event source mappings (Lambda's `CreateEventSourceMapping`) poll a
//! source in batches and invoke a function synchronously with each batch
//! (DESIGN §2). The pollers run in the engine, next to sync and async
//! invoke; the sources themselves are services above the engine. So the
//! engine states here what it needs from a source, and the service
//! implements it (SQS: `strato-sqs`), the same way destinations work through
//! [`crate::async_invoke::EventSink`].

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

mod batch;
mod engine_target;
mod poller;

pub use batch::MAX_BATCH_PAYLOAD;
pub use engine_target::EngineBatchTarget;
pub use poller::{
    BatchInvokeError, BatchResponse, BatchTarget, PollerSettings, PollerSpec, RecordFilter,
    SqsPollers,
};
