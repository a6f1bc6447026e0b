//! Publish and PublishBatch: validation in AWS's order and words, FIFO
//! deduplication, and the hand-over to the fan-out.

use sha2::Digest as _;
use strato_model::wire::{Doc, OpResult, ServiceError};

use crate::delivery::{self, Publication};
use crate::message::{self, MessageAttribute};
use crate::operations::topic_of;
use crate::{error, SnsRequest, SnsService, TopicRecord};

/// AWS's limit on a message with its attributes.
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// How long a FIFO deduplication id suppresses duplicates.
pub(crate) const DEDUP_WINDOW: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// The queue-engine queue whose dedup table remembers FIFO publishes.
pub(crate) const DEDUP_QUEUE: &str = "strato-sns-dedup";

/// One message to publish, as Publish or a PublishBatch entry gives it.
struct PublishInput<'a> {
    message: Option<&'a str>,
    subject: Option<&'a str>,
    structure: Option<&'a str>,
    attributes: Vec<MessageAttribute>,
    group_id: Option<&'a str>,
    dedup_id: Option<&'a str>,
}

impl<'a> PublishInput<'a> {
    fn read(input: &'a Doc, entry: Option<usize>) -> Result<PublishInput<'a>, ServiceError> {
        let text = |name: &str| input.get(name).and_then(Doc::as_str);
        Ok(PublishInput {
            message: text("Message"),
            subject: text("Subject"),
            structure: text("MessageStructure"),
            attributes: message::parse_attributes(input.get("MessageAttributes"), entry)?,
            group_id: text("MessageGroupId"),
            dedup_id: text("MessageDeduplicationId"),
        })
    }
}

/// Validates a message and makes its publication (not yet delivered).
fn prepare(topic: &TopicRecord, input: &PublishInput<'_>) -> Result<Publication, ServiceError> {
    let message = input.message.unwrap_or_default();
    if message.is_empty() {
        return Err(error::invalid("Empty message"));
    }
    let size = message.len()
        + input
            .attributes
            .iter()
            .map(MessageAttribute::size)
            .sum::<usize>();
    if size > MAX_MESSAGE_BYTES {
        return Err(error::invalid("Message too long"));
    }
    if let Some(subject) = input.subject {
        let printable = subject
            .chars()
            .all(|c| c.is_ascii() && !c.is_ascii_control());
        if subject.is_empty() || subject.len() > 100 || !printable {
            return Err(error::invalid("Subject"));
        }
    }
    let mut publication = Publication::new(
        topic,
        message.to_string(),
        input.subject.map(str::to_string),
        input.attributes.clone(),
    );
    match input.structure {
        None => {}
        Some("json") => {
            let parsed: serde_json::Value = serde_json::from_str(message).map_err(|_| {
                error::invalid("Message Structure - JSON message body failed to parse")
            })?;
            let serde_json::Value::Object(members) = parsed else {
                return Err(error::invalid(
                    "Message Structure - JSON message body failed to parse",
                ));
            };
            let Some(default) = members.get("default").and_then(serde_json::Value::as_str) else {
                return Err(error::invalid(
                    "Message Structure - No default entry in JSON message body",
                ));
            };
            publication.message = default.to_string();
            publication.per_protocol = Some(members);
        }
        Some(_) => return Err(error::invalid("MessageStructure")),
    }
    if topic.fifo() {
        let group = input.group_id.ok_or_else(|| {
            error::invalid("The MessageGroupId parameter is required for FIFO topics")
        })?;
        let dedup = match input.dedup_id {
            Some(id) => id.to_string(),
            None if topic.content_based_dedup() => {
                hex::encode(sha2::Sha256::digest(publication.message.as_bytes()))
            }
            None => {
                return Err(error::invalid(
                    "The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ))
            }
        };
        publication.group_id = Some(group.to_string());
        publication.dedup_id = Some(dedup);
    } else if input.dedup_id.is_some() {
        return Err(error::invalid(
            "MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that is not valid for this topic type",
        ));
    }
    Ok(publication)
}

/// Delivers a prepared publication (FIFO: once per deduplication id in
/// five minutes) and answers its message id and sequence number.
///
/// A FIFO publication is first recorded in the queue engine's durable
/// dedup table (topic and deduplication id), which gives its message id and
/// sequence number or, for a duplicate, the first publication's, across
/// restarts too. Recorded before the fan-out: a crash in between loses that
/// publication's deliveries rather than making them twice.
pub(crate) async fn deliver(
    sns: &SnsService,
    topic: &TopicRecord,
    mut publication: Publication,
    endpoint: &str,
) -> Result<(String, Option<String>), ServiceError> {
    if let Some(dedup) = publication.dedup_id.clone() {
        let message = strato_queue::NewMessage {
            group_id: Some(publication.topic_arn.clone()),
            dedup_id: Some(format!("{}\n{dedup}", publication.topic_arn)),
            ..strato_queue::NewMessage::default()
        };
        let sent = sns
            .queues
            .send(DEDUP_QUEUE, vec![message])
            .await
            .map_err(|e| error::internal(e.to_string()))?
            .into_iter()
            .next()
            .ok_or_else(|| error::internal("the deduplication record was not written"))?;
        let sequence = format!("{:020}", sent.sequence_number.unwrap_or_default());
        if sent.duplicate {
            return Ok((sent.message_id, Some(sequence)));
        }
        publication.message_id = sent.message_id;
        publication.sequence = Some(sequence);
    }
    delivery::fan_out(sns, topic, &publication, endpoint).await?;
    Ok((publication.message_id, publication.sequence))
}

pub(crate) async fn publish(sns: &SnsService, request: SnsRequest<'_>, input: &Doc) -> OpResult {
    if input.get("PhoneNumber").is_some() {
        return Err(error::invalid(
            "PhoneNumber Reason: input incorrectly formatted",
        ));
    }
    let parameter = if input.get("TopicArn").is_some() {
        "TopicArn"
    } else if input.get("TargetArn").is_some() {
        "TargetArn"
    } else {
        return Err(error::invalid(
            "TopicArn or TargetArn Reason: no value for required parameter",
        ));
    };
    let topic = topic_of(sns, request, input, parameter)?;
    let publish_input = PublishInput::read(input, None)?;
    let publication = prepare(&topic, &publish_input)?;
    let (message_id, sequence) = deliver(sns, &topic, publication, request.endpoint).await?;
    Ok(Doc::map()
        .with("MessageId", message_id)
        .with_opt("SequenceNumber", sequence))
}

fn valid_batch_id(id: &str) -> Result<(), ServiceError> {
    let code = "InvalidBatchEntryId";
    if id.len() > 80 {
        return Err(ServiceError::new(
            code,
            format!("The Id of a batch entry in the batch request is too long: {id}"),
        ));
    }
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ServiceError::new(
            code,
            format!("The Id of a batch entry in the batch request contains an impermissible character: {id}"),
        ));
    }
    Ok(())
}

pub(crate) async fn publish_batch(
    sns: &SnsService,
    request: SnsRequest<'_>,
    input: &Doc,
) -> OpResult {
    let topic = topic_of(sns, request, input, "TopicArn")?;
    let entries = input
        .get("PublishBatchRequestEntries")
        .and_then(Doc::as_list)
        .unwrap_or_default();
    if entries.is_empty() {
        return Err(ServiceError::new(
            "EmptyBatchRequest",
            "The batch request doesn't contain any entries.",
        ));
    }
    if entries.len() > 10 {
        return Err(ServiceError::new(
            "TooManyEntriesInBatchRequest",
            "The batch request contains more entries than permissible.",
        ));
    }
    let mut ids = std::collections::HashSet::new();
    let mut total = 0;
    for entry in entries {
        let id = entry.get("Id").and_then(Doc::as_str).unwrap_or_default();
        valid_batch_id(id)?;
        if !ids.insert(id) {
            return Err(ServiceError::new(
                "BatchEntryIdsNotDistinct",
                "Two or more batch entries in the request have the same Id.",
            ));
        }
        total += entry
            .get("Message")
            .and_then(Doc::as_str)
            .map_or(0, str::len);
    }
    if total > MAX_MESSAGE_BYTES {
        return Err(ServiceError::new(
            "BatchRequestTooLong",
            "The length of all the messages put together is more than the limit.",
        ));
    }
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let id = entry.get("Id").and_then(Doc::as_str).unwrap_or_default();
        let prepared =
            PublishInput::read(entry, Some(index + 1)).and_then(|input| prepare(&topic, &input));
        let result = match prepared {
            Ok(publication) => deliver(sns, &topic, publication, request.endpoint).await,
            Err(e) => Err(e),
        };
        match result {
            Ok((message_id, sequence)) => successful.push(
                Doc::map()
                    .with("Id", id)
                    .with("MessageId", message_id)
                    .with_opt("SequenceNumber", sequence),
            ),
            Err(e) => failed.push(
                Doc::map()
                    .with("Id", id)
                    .with("Code", e.code)
                    .with("SenderFault", !e.is_server_error())
                    .with("Message", e.message),
            ),
        }
    }
    Ok(Doc::map()
        .with("Successful", Doc::List(successful))
        .with("Failed", Doc::List(failed)))
}
