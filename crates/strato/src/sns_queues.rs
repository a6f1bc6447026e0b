//! SNS's SQS subscriptions, delivered by Strato's SQS: the two services
//! meet here, in the binary, so neither crate depends on the other.

use std::sync::Arc;

use bytes::Bytes;
use strato_engine::async_invoke::DeliveryError;
use strato_engine::event_source::SqsQueues;

/// [`strato_sns::QueueTargets`] over [`strato_sqs::SqsService`].
pub struct SnsQueues(pub Arc<strato_sqs::SqsService>);

#[async_trait::async_trait]
impl strato_sns::QueueTargets for SnsQueues {
    fn queue_fifo(&self, arn: &str) -> Option<bool> {
        SqsQueues::queue(self.0.as_ref(), arn).map(|facts| facts.fifo)
    }

    async fn send(&self, delivery: strato_sns::QueueDelivery) -> Result<(), DeliveryError> {
        let fifo_ids = delivery.group_id.zip(delivery.dedup_id);
        self.0
            .deliver_message(
                &delivery.account,
                &delivery.region,
                &delivery.queue_arn,
                Bytes::from(delivery.body),
                delivery.attributes,
                fifo_ids,
            )
            .await
    }
}
