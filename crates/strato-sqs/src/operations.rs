//! SQS's operations, input validated as AWS validates it.
//!
//! Why over 800 lines: its 18 operations each need their own validation
//! with AWS's messages; message-level operations (send, receive, delete,
//! visibility) and queue-level ones (create, attributes, tags, listing) are
//! the split to make when it grows further.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use strato_model::wire::{Doc, OpResult, ServiceError};
use strato_queue::{NewMessage, QueueError};

use crate::message::{self, MessageAttribute, MessageMeta};
use crate::queue::{self, QueueRecord, RedrivePolicy};
use crate::{error, md5, reported_attributes, SqsRequest, SqsService};

/// The most entries a batch may have.
const MAX_BATCH_ENTRIES: usize = 10;
/// AWS refuses to recreate a deleted queue's name, and to purge twice,
/// within this.
const COOLDOWN: Duration = Duration::from_secs(60);

pub(crate) async fn dispatch(
    sqs: &SqsService,
    request: SqsRequest<'_>,
    operation: &str,
    input: Doc,
) -> OpResult {
    match operation {
        "CreateQueue" => create_queue(sqs, request, &input).await,
        "GetQueueUrl" => get_queue_url(sqs, request, &input),
        "ListQueues" => list_queues(sqs, request, &input),
        "DeleteQueue" => delete_queue(sqs, request, &input).await,
        "GetQueueAttributes" => get_queue_attributes(sqs, request, &input),
        "SetQueueAttributes" => set_queue_attributes(sqs, request, &input).await,
        "PurgeQueue" => purge_queue(sqs, request, &input).await,
        "TagQueue" => tag_queue(sqs, request, &input).await,
        "UntagQueue" => untag_queue(sqs, request, &input).await,
        "ListQueueTags" => list_queue_tags(sqs, request, &input),
        "ListDeadLetterSourceQueues" => list_dead_letter_source_queues(sqs, request, &input),
        "SendMessage" => send_message(sqs, request, &input).await,
        "SendMessageBatch" => send_message_batch(sqs, request, &input).await,
        "ReceiveMessage" => receive_message(sqs, request, &input).await,
        "DeleteMessage" => delete_message(sqs, request, &input).await,
        "DeleteMessageBatch" => delete_message_batch(sqs, request, &input).await,
        "ChangeMessageVisibility" => change_message_visibility(sqs, request, &input).await,
        "ChangeMessageVisibilityBatch" => {
            change_message_visibility_batch(sqs, request, &input).await
        }
        "StartMessageMoveTask" => crate::move_task::start(sqs, request, &input).await,
        "ListMessageMoveTasks" => crate::move_task::list(sqs, request, &input),
        "CancelMessageMoveTask" => crate::move_task::cancel(sqs, request, &input),
        _ => Err(error::invalid_action(operation)),
    }
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(crate) fn text<'a>(input: &'a Doc, member: &str) -> Option<&'a str> {
    input.get(member).and_then(Doc::as_str)
}

pub(crate) fn required<'a>(input: &'a Doc, member: &str) -> Result<&'a str, ServiceError> {
    text(input, member)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| error::missing_parameter(member))
}

/// An integer member within a range, worded as AWS words it.
fn integer(
    input: &Doc,
    member: &str,
    low: i64,
    high: i64,
    reason: &str,
) -> Result<Option<i64>, ServiceError> {
    let Some(value) = input.get(member) else {
        return Ok(None);
    };
    let shown = match value {
        Doc::Form(s) | Doc::Text(s) => s.clone(),
        other => other.to_json().to_string(),
    };
    match value.as_i64() {
        Some(n) if (low..=high).contains(&n) => Ok(Some(n)),
        _ => Err(error::invalid_value(member, &shown, reason)),
    }
}

fn seconds(n: i64) -> Duration {
    Duration::from_secs(u64::try_from(n).unwrap_or(0))
}

/// A string-to-string map member (`Attributes`, `Tags`).
fn string_map(input: &Doc, member: &str) -> BTreeMap<String, String> {
    match input.get(member) {
        Some(Doc::Map(entries) | Doc::Dict(entries)) => entries
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Doc::Text(s) | Doc::Form(s) => s.clone(),
                    Doc::Null => String::new(),
                    other => other.to_json().to_string(),
                };
                (k.clone(), value)
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn queue_url(endpoint: &str, record: &QueueRecord) -> String {
    format!("{endpoint}/{}/{}", record.account, record.name)
}

/// (account, name) of a queue URL: Strato's own
/// (`http://host:port/{account}/{name}`) or AWS's
/// (`https://sqs.{region}.amazonaws.com/{account}/{name}`,
/// `https://{region}.queue.amazonaws.com/...`).
fn parse_queue_url(url: &str) -> Option<(&str, &str)> {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut parts = path.trim_matches('/').split('/');
    let account = parts.next()?;
    let name = parts.next()?;
    (parts.next().is_none() && !account.is_empty() && !name.is_empty()).then_some((account, name))
}

/// The queue a request's `QueueUrl` names. Another account's queue is
/// reached only when its queue policy lets the caller in: the front end
/// decides that before the request gets here (`strato-api`'s authorize).
pub(crate) fn resolve(
    sqs: &SqsService,
    request: SqsRequest<'_>,
    input: &Doc,
) -> Result<Arc<QueueRecord>, ServiceError> {
    let url = required(input, "QueueUrl")?;
    let (account, name) = parse_queue_url(url).ok_or_else(error::queue_does_not_exist)?;
    sqs.queue(account, &request.caller.region, name)
        .ok_or_else(error::queue_does_not_exist)
}

fn key_of(record: &QueueRecord) -> crate::QueueKey {
    (
        record.account.clone(),
        record.region.clone(),
        record.name.clone(),
    )
}

fn engine_error(err: QueueError) -> ServiceError {
    match err {
        QueueError::NoSuchQueue(_) => error::queue_does_not_exist(),
        other => error::internal(other.to_string()),
    }
}

// ---- queues ----

async fn create_queue(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let name = required(input, "QueueName")?;
    let given = string_map(input, "Attributes");
    let fifo = name.ends_with(".fifo") || given.get("FifoQueue").is_some_and(|v| v == "true");
    queue::validate_name(name, fifo)?;
    let set = queue::validate_attributes(&given, fifo, true)?;
    let tags = string_map(input, "tags");
    let account = request.caller.account_id.clone();
    let region = request.caller.region.clone();
    let _control = sqs.control.lock().await;
    if let Some(existing) = sqs.queue(&account, &region, name) {
        // Idempotent: the same attributes give the same URL.
        for (attribute, value) in &set {
            if existing.attributes.get(attribute) != Some(value) {
                return Err(error::queue_name_exists(attribute));
            }
        }
        return Ok(Doc::map().with("QueueUrl", queue_url(request.endpoint, &existing)));
    }
    let key = (account.clone(), region.clone(), name.to_string());
    if let Some(deleted) = sqs.deleted.get(&key).map(|d| *d.value()) {
        if deleted.elapsed() < COOLDOWN {
            return Err(error::queue_deleted_recently());
        }
        sqs.deleted.remove(&key);
    }
    let mut attributes = queue::default_attributes(fifo);
    attributes.extend(set);
    let now = now_secs();
    let record = QueueRecord {
        account,
        region,
        name: name.to_string(),
        attributes,
        tags,
        created: now,
        last_modified: now,
        stats: Default::default(),
    };
    check_redrive(sqs, &record)?;
    sqs.engine
        .create_queue(&record.engine_name(), sqs.engine_options(&record))
        .await
        .map_err(engine_error)?;
    sqs.persist(&record).await?;
    let url = queue_url(request.endpoint, &record);
    sqs.queues.insert(key, Arc::new(record));
    Ok(Doc::map().with("QueueUrl", url))
}

/// A redrive policy's dead-letter queue must exist, be of the queue's type
/// and allow it as a source.
fn check_redrive(sqs: &SqsService, record: &QueueRecord) -> Result<(), ServiceError> {
    let Some(text) = record
        .attributes
        .get("RedrivePolicy")
        .filter(|t| !t.is_empty())
    else {
        return Ok(());
    };
    let policy = RedrivePolicy::parse(text)?;
    let invalid = |reason: &str| error::invalid_value("RedrivePolicy", text, reason);
    let dlq = queue::parse_arn(&policy.dead_letter_target_arn)
        .filter(|(region, account, _)| *region == record.region && *account == record.account)
        .and_then(|(region, account, name)| sqs.queue(account, region, name))
        .ok_or_else(|| invalid("Dead letter target does not exist."))?;
    if dlq.fifo() != record.fifo() {
        return Err(invalid(
            "Dead-letter queue must be same type of queue as the source.",
        ));
    }
    if !queue::redrive_allowed(dlq.attributes.get("RedriveAllowPolicy"), &record.arn()) {
        return Err(invalid(&format!(
            "Queue {} does not allow this queue to use it as a dead-letter queue.",
            dlq.arn()
        )));
    }
    Ok(())
}

fn get_queue_url(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let name = required(input, "QueueName")?;
    // Another account's queue: its policy has let the caller in (the
    // front end decides that).
    let account = text(input, "QueueOwnerAWSAccountId").unwrap_or(&request.caller.account_id);
    let record = sqs
        .queue(account, &request.caller.region, name)
        .ok_or_else(error::queue_does_not_exist)?;
    Ok(Doc::map().with("QueueUrl", queue_url(request.endpoint, &record)))
}

/// Paginates names: `NextToken` is the base64 of the last name given.
fn paginate(
    names: Vec<Arc<QueueRecord>>,
    input: &Doc,
) -> Result<(Vec<Arc<QueueRecord>>, Option<String>), ServiceError> {
    let max = integer(
        input,
        "MaxResults",
        1,
        1000,
        "MaxResults must be an integer between 1 and 1000.",
    )?;
    let after = match text(input, "NextToken") {
        Some(token) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| error::invalid_parameter_value("Invalid NextToken value."))?,
        ),
        None => None,
    };
    let mut rest: Vec<Arc<QueueRecord>> = names
        .into_iter()
        .filter(|q| after.as_deref().is_none_or(|a| q.name.as_str() > a))
        .collect();
    let limit = max.and_then(|m| usize::try_from(m).ok()).unwrap_or(1000);
    let next = if rest.len() > limit {
        rest.truncate(limit);
        // AWS gives a token only when MaxResults was asked for.
        max.and(rest.last())
            .map(|q| base64::engine::general_purpose::STANDARD.encode(q.name.as_bytes()))
    } else {
        None
    };
    Ok((rest, next))
}

fn list_queues(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let prefix = text(input, "QueueNamePrefix").unwrap_or_default();
    let queues: Vec<Arc<QueueRecord>> = sqs
        .queues_of(&request.caller.account_id, &request.caller.region)
        .into_iter()
        .filter(|q| q.name.starts_with(prefix))
        .collect();
    let (page, next) = paginate(queues, input)?;
    let mut out = Doc::map();
    if !page.is_empty() {
        out = out.with(
            "QueueUrls",
            page.iter()
                .map(|q| Doc::from(queue_url(request.endpoint, q)))
                .collect::<Vec<_>>(),
        );
    }
    Ok(out.with_opt("NextToken", next))
}

async fn delete_queue(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let record = resolve(sqs, request, input)?;
    let _control = sqs.control.lock().await;
    sqs.engine
        .delete_queue(&record.engine_name())
        .await
        .map_err(engine_error)?;
    let key = strato_store::DocumentKey::new(
        &record.account,
        &record.region,
        queue::DOCUMENT_KIND,
        &record.name,
    );
    sqs.store
        .delete_document(&key)
        .await
        .map_err(|e| error::internal(e.to_string()))?;
    sqs.queues.remove(&key_of(&record));
    sqs.purges.remove(&key_of(&record));
    sqs.deleted.retain(|_, at| at.elapsed() < COOLDOWN);
    sqs.deleted.insert(key_of(&record), Instant::now());
    Ok(Doc::map())
}

fn get_queue_attributes(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let record = resolve(sqs, request, input)?;
    let names = Doc::strings(input.get("AttributeNames"));
    if let Some(unknown) = names.iter().find(|n| !queue::is_known_attribute(n)) {
        return Err(error::unknown_attribute(unknown));
    }
    if names.is_empty() {
        return Ok(Doc::map());
    }
    let counts = sqs
        .engine
        .counts(&record.engine_name())
        .map_err(engine_error)?;
    let all = names.iter().any(|n| n == "All");
    let attributes: Vec<(String, Doc)> = reported_attributes(&record, counts)
        .into_iter()
        .filter(|(name, _)| all || names.contains(name))
        .map(|(name, value)| (name, Doc::Text(value)))
        .collect();
    if attributes.is_empty() {
        return Ok(Doc::map());
    }
    Ok(Doc::map().with("Attributes", Doc::Dict(attributes)))
}

async fn set_queue_attributes(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let record = resolve(sqs, request, input)?;
    let given = string_map(input, "Attributes");
    let set = queue::validate_attributes(&given, record.fifo(), false)?;
    let _control = sqs.control.lock().await;
    // The record may have changed while we waited.
    let current = sqs
        .queue(&record.account, &record.region, &record.name)
        .ok_or_else(error::queue_does_not_exist)?;
    let mut next = (*current).clone();
    for (name, value) in set {
        if value.is_empty()
            && matches!(
                name.as_str(),
                "RedrivePolicy" | "RedriveAllowPolicy" | "Policy"
            )
        {
            next.attributes.remove(&name);
        } else {
            next.attributes.insert(name, value);
        }
    }
    check_redrive(sqs, &next)?;
    next.last_modified = now_secs();
    sqs.engine
        .create_queue(&next.engine_name(), sqs.engine_options(&next))
        .await
        .map_err(engine_error)?;
    sqs.persist(&next).await?;
    sqs.queues.insert(key_of(&next), Arc::new(next));
    Ok(Doc::map())
}

async fn purge_queue(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let record = resolve(sqs, request, input)?;
    let key = key_of(&record);
    match sqs.purges.entry(key) {
        dashmap::mapref::entry::Entry::Occupied(mut last) => {
            if last.get().elapsed() < COOLDOWN {
                return Err(error::purge_in_progress(&record.name));
            }
            last.insert(Instant::now());
        }
        dashmap::mapref::entry::Entry::Vacant(slot) => {
            slot.insert(Instant::now());
        }
    }
    sqs.engine
        .purge(&record.engine_name())
        .await
        .map_err(engine_error)?;
    Ok(Doc::map())
}

async fn update_tags(
    sqs: &SqsService,
    record: &QueueRecord,
    change: impl FnOnce(&mut BTreeMap<String, String>),
) -> Result<(), ServiceError> {
    let _control = sqs.control.lock().await;
    let current = sqs
        .queue(&record.account, &record.region, &record.name)
        .ok_or_else(error::queue_does_not_exist)?;
    let mut next = (*current).clone();
    change(&mut next.tags);
    if next.tags.len() > 50 {
        return Err(error::invalid_parameter_value(
            "Too many tags added for queue. Maximum number of tags is 50.",
        ));
    }
    sqs.persist(&next).await?;
    sqs.queues.insert(key_of(&next), Arc::new(next));
    Ok(())
}

async fn tag_queue(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let record = resolve(sqs, request, input)?;
    let tags = string_map(input, "Tags");
    if tags.is_empty() {
        return Err(error::missing_parameter("Tags"));
    }
    update_tags(sqs, &record, |current| current.extend(tags)).await?;
    Ok(Doc::map())
}

async fn untag_queue(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let record = resolve(sqs, request, input)?;
    let keys = Doc::strings(input.get("TagKeys"));
    if keys.is_empty() {
        return Err(error::missing_parameter("TagKeys"));
    }
    update_tags(sqs, &record, |current| {
        for key in &keys {
            current.remove(key);
        }
    })
    .await?;
    Ok(Doc::map())
}

fn list_queue_tags(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let record = resolve(sqs, request, input)?;
    if record.tags.is_empty() {
        return Ok(Doc::map());
    }
    let tags = record
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), Doc::from(v.as_str())))
        .collect();
    Ok(Doc::map().with("Tags", Doc::Dict(tags)))
}

fn list_dead_letter_source_queues(
    sqs: &SqsService,
    request: SqsRequest<'_>,
    input: &Doc,
) -> OpResult {
    let record = resolve(sqs, request, input)?;
    let arn = record.arn();
    let sources: Vec<Arc<QueueRecord>> = sqs
        .queues_of(&record.account, &record.region)
        .into_iter()
        .filter(|q| {
            q.redrive_policy()
                .is_some_and(|p| p.dead_letter_target_arn == arn)
        })
        .collect();
    let (page, next) = paginate(sources, input)?;
    Ok(Doc::map()
        .with(
            "queueUrls",
            page.iter()
                .map(|q| Doc::from(queue_url(request.endpoint, q)))
                .collect::<Vec<_>>(),
        )
        .with_opt("NextToken", next))
}

// ---- messages ----

/// A message ready for the engine, with what the answer reports.
struct Outgoing {
    message: NewMessage,
    md5_body: String,
    md5_attributes: Option<String>,
    md5_system_attributes: Option<String>,
}

/// Validates one message of a send (or of a batch entry) against its queue.
fn prepare(
    record: &QueueRecord,
    request: SqsRequest<'_>,
    entry: &Doc,
) -> Result<Outgoing, ServiceError> {
    let body = text(entry, "MessageBody")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| error::missing_parameter("MessageBody"))?;
    if !message::valid_characters(body) {
        return Err(error::invalid_message_contents());
    }
    let attributes = message::parse_message_attributes(entry.get("MessageAttributes"))?;
    let system_attributes = message::parse_system_attributes(entry.get("MessageSystemAttributes"))?;
    let size = body.len() + attributes.iter().map(MessageAttribute::size).sum::<usize>();
    let max = record.maximum_message_size();
    if size > max {
        return Err(error::message_too_long(max));
    }
    let delay = integer(
        entry,
        "DelaySeconds",
        0,
        900,
        "DelaySeconds must be >= 0 and <= 900.",
    )?;
    let group = text(entry, "MessageGroupId");
    let dedup = text(entry, "MessageDeduplicationId");
    let id_rule = "can only include alphanumeric and punctuation characters. 1 to 128 in length.";
    let check_id = |parameter: &str, value: &str| {
        let valid = (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(())
        } else {
            Err(error::invalid_value(
                parameter,
                value,
                &format!("{parameter} {id_rule}"),
            ))
        }
    };
    let (group_id, dedup_id) = if record.fifo() {
        if let Some(delay) = delay {
            return Err(error::invalid_value(
                "DelaySeconds",
                &delay.to_string(),
                "The request include parameter that is not valid for this queue type.",
            ));
        }
        let group = group.ok_or_else(|| error::missing_parameter("MessageGroupId"))?;
        check_id("MessageGroupId", group)?;
        let dedup = match dedup {
            Some(d) => {
                check_id("MessageDeduplicationId", d)?;
                d.to_string()
            }
            None if record.content_based_dedup() => hex::encode(Sha256::digest(body.as_bytes())),
            None => {
                return Err(error::invalid_parameter_value(
                    "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ))
            }
        };
        (Some(group.to_string()), Some(dedup))
    } else {
        if let Some(dedup) = dedup {
            return Err(error::invalid_value(
                "MessageDeduplicationId",
                dedup,
                "The request include parameter that is not valid for this queue type.",
            ));
        }
        // Standard queues take a group id (fair queues) and keep none of it
        // for ordering.
        if let Some(group) = group {
            check_id("MessageGroupId", group)?;
        }
        (None, None)
    };
    let md5_attributes = (!attributes.is_empty()).then(|| md5::of_attributes(&attributes));
    let md5_system_attributes =
        (!system_attributes.is_empty()).then(|| md5::of_attributes(&system_attributes));
    let meta = MessageMeta {
        sender_id: request.caller.account_id.clone(),
        origin: record.name.clone(),
        attributes,
        system_attributes,
    };
    Ok(Outgoing {
        md5_body: md5::of_body(body.as_bytes()),
        md5_attributes,
        md5_system_attributes,
        message: NewMessage {
            body: Bytes::copy_from_slice(body.as_bytes()),
            metadata: Bytes::from(meta.encode()),
            delay: delay.map_or_else(|| record.delay(), seconds),
            group_id: group_id.clone(),
            dedup_id: dedup_id.map(|d| scoped_dedup_id(record, group_id.as_deref(), d)),
        },
    })
}

/// With `DeduplicationScope=messageGroup` an id deduplicates only within
/// its group: the engine's id is prefixed with the group.
fn scoped_dedup_id(record: &QueueRecord, group: Option<&str>, dedup: String) -> String {
    match (
        record
            .attributes
            .get("DeduplicationScope")
            .map(String::as_str),
        group,
    ) {
        (Some("messageGroup"), Some(group)) => format!("{group}\u{1}{dedup}"),
        _ => dedup,
    }
}

/// The dedup id a client gave (without the group scope).
pub(crate) fn client_dedup_id(engine_id: &str) -> &str {
    engine_id
        .split_once('\u{1}')
        .map_or(engine_id, |(_, dedup)| dedup)
}

fn sent_doc(outgoing: &Outgoing, sent: &strato_queue::Sent) -> Doc {
    Doc::map()
        .with("MD5OfMessageBody", outgoing.md5_body.as_str())
        .with_opt("MD5OfMessageAttributes", outgoing.md5_attributes.clone())
        .with_opt(
            "MD5OfMessageSystemAttributes",
            outgoing.md5_system_attributes.clone(),
        )
        .with("MessageId", sent.message_id.as_str())
        .with_opt(
            "SequenceNumber",
            sent.sequence_number.map(|n| format!("{n:020}")),
        )
}

async fn send_message(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let record = resolve(sqs, request, input)?;
    let outgoing = prepare(&record, request, input)?;
    let sent = sqs
        .engine
        .send(&record.engine_name(), vec![outgoing.message.clone()])
        .await
        .map_err(engine_error)?;
    let sent = sent
        .first()
        .ok_or_else(|| error::internal("the queue engine accepted no message"))?;
    record.stats.sent(outgoing.message.body.len());
    Ok(sent_doc(&outgoing, sent))
}

/// A batch's entries, checked as a whole the way AWS checks them.
fn batch_entries<'a>(input: &'a Doc, entry_name: &str) -> Result<&'a [Doc], ServiceError> {
    let entries = input.get("Entries").and_then(Doc::as_list).unwrap_or(&[]);
    if entries.is_empty() {
        return Err(error::empty_batch(entry_name));
    }
    if entries.len() > MAX_BATCH_ENTRIES {
        return Err(error::too_many_entries(entries.len()));
    }
    let mut seen = HashSet::new();
    for entry in entries {
        let id = text(entry, "Id").unwrap_or_default();
        let valid = (1..=80).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(error::invalid_batch_entry_id());
        }
        if !seen.insert(id) {
            return Err(error::batch_ids_not_distinct(id));
        }
    }
    Ok(entries)
}

/// A batch entry that failed alone.
fn failed_entry(id: &str, err: &ServiceError) -> Doc {
    let code = err.query_code.unwrap_or(err.code);
    let code = code.strip_prefix("AWS.SimpleQueueService.").unwrap_or(code);
    let message = err.message.replace(
        "One or more parameters are invalid.",
        "One or more parameters cannot be validated.",
    );
    Doc::map()
        .with("Id", id)
        .with("SenderFault", !err.is_server_error())
        .with("Code", code)
        .with("Message", message)
}

fn batch_result(successful: Vec<Doc>, failed: Vec<Doc>) -> Doc {
    Doc::map()
        .with("Successful", successful)
        .with("Failed", failed)
}

async fn send_message_batch(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let record = resolve(sqs, request, input)?;
    let entries = batch_entries(input, "SendMessageBatchRequestEntry")?;
    let total: usize = entries
        .iter()
        .map(|e| {
            text(e, "MessageBody").map_or(0, str::len)
                + message::parse_message_attributes(e.get("MessageAttributes"))
                    .map(|attrs| attrs.iter().map(MessageAttribute::size).sum())
                    .unwrap_or(0)
        })
        .sum();
    if total > queue::MAX_MESSAGE_SIZE {
        return Err(error::batch_request_too_long(total));
    }
    let mut failed = Vec::new();
    let mut ready: Vec<(&str, Outgoing)> = Vec::new();
    for entry in entries {
        let id = text(entry, "Id").unwrap_or_default();
        match prepare(&record, request, entry) {
            Ok(outgoing) => ready.push((id, outgoing)),
            Err(err) => failed.push(failed_entry(id, &err)),
        }
    }
    let mut successful = Vec::new();
    if !ready.is_empty() {
        let messages = ready.iter().map(|(_, o)| o.message.clone()).collect();
        let sent = sqs
            .engine
            .send(&record.engine_name(), messages)
            .await
            .map_err(engine_error)?;
        for ((id, outgoing), sent) in ready.iter().zip(sent.iter()) {
            record.stats.sent(outgoing.message.body.len());
            successful.push(sent_doc(outgoing, sent).with("Id", *id));
        }
    }
    Ok(batch_result(successful, failed))
}

async fn receive_message(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let record = resolve(sqs, request, input)?;
    let max = integer(
        input,
        "MaxNumberOfMessages",
        1,
        10,
        "Must be between 1 and 10, if provided.",
    )?
    .unwrap_or(1);
    let wait = integer(
        input,
        "WaitTimeSeconds",
        0,
        20,
        "Must be >= 0 and <= 20, if provided.",
    )?
    .map_or_else(|| record.receive_wait(), seconds);
    let visibility = integer(
        input,
        "VisibilityTimeout",
        0,
        43_200,
        "Must be >= 0 and <= 43200, if provided.",
    )?
    .map_or_else(|| record.visibility_timeout(), seconds);
    let mut system_names = Doc::strings(input.get("MessageSystemAttributeNames"));
    system_names.extend(Doc::strings(input.get("AttributeNames")));
    let attribute_names = Doc::strings(input.get("MessageAttributeNames"));
    let received = sqs
        .engine
        .receive(
            &record.engine_name(),
            usize::try_from(max).unwrap_or(1),
            visibility,
            wait,
        )
        .await
        .map_err(engine_error)?;
    record.stats.received(received.len());
    if received.is_empty() {
        return Ok(Doc::map());
    }
    let messages: Vec<Doc> = received
        .iter()
        .map(|m| received_doc(m, &system_names, &attribute_names))
        .collect();
    Ok(Doc::map().with("Messages", messages))
}

/// The system attributes of a received message, by AWS's names.
pub(crate) fn system_attributes(
    received: &strato_queue::Received,
    meta: &MessageMeta,
) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("SenderId", meta.sender_id.clone()),
        ("SentTimestamp", received.sent_at_ms.to_string()),
        (
            "ApproximateReceiveCount",
            received.receive_count.to_string(),
        ),
        (
            "ApproximateFirstReceiveTimestamp",
            received.first_received_at_ms.to_string(),
        ),
    ];
    if let Some(sequence) = received.sequence_number {
        out.push(("SequenceNumber", format!("{sequence:020}")));
    }
    if let Some(dedup) = &received.dedup_id {
        out.push(("MessageDeduplicationId", client_dedup_id(dedup).to_string()));
    }
    if let Some(group) = &received.group_id {
        out.push(("MessageGroupId", group.clone()));
    }
    for attribute in &meta.system_attributes {
        if attribute.name == "AWSTraceHeader" {
            if let message::AttributeValue::String(value) = &attribute.value {
                out.push(("AWSTraceHeader", value.clone()));
            }
        }
    }
    out
}

fn received_doc(
    received: &strato_queue::Received,
    system_names: &[String],
    attribute_names: &[String],
) -> Doc {
    let meta = MessageMeta::decode(&received.metadata).unwrap_or_default();
    let body = String::from_utf8_lossy(&received.body);
    let mut doc = Doc::map()
        .with("MessageId", received.message_id.as_str())
        .with("ReceiptHandle", received.receipt_handle.as_str())
        .with("MD5OfBody", md5::of_body(&received.body))
        .with("Body", body.as_ref());
    let attributes: Vec<(String, Doc)> = system_attributes(received, &meta)
        .into_iter()
        .filter(|(name, _)| message::attribute_selected(system_names, name))
        .map(|(name, value)| (name.to_string(), Doc::Text(value)))
        .collect();
    if !attributes.is_empty() {
        doc = doc.with("Attributes", Doc::Dict(attributes));
    }
    let selected: Vec<MessageAttribute> = meta
        .attributes
        .iter()
        .filter(|a| message::attribute_selected(attribute_names, &a.name))
        .cloned()
        .collect();
    if !selected.is_empty() {
        doc = doc
            .with("MD5OfMessageAttributes", md5::of_attributes(&selected))
            .with(
                "MessageAttributes",
                Doc::Dict(
                    selected
                        .iter()
                        .map(|a| (a.name.clone(), a.value_doc()))
                        .collect(),
                ),
            );
    }
    doc
}

fn receipt_error(handle: &str, err: QueueError) -> ServiceError {
    match err {
        QueueError::InvalidReceipt => error::receipt_handle_is_invalid(handle),
        QueueError::StaleReceipt => error::receipt_handle_expired(handle),
        QueueError::MessageNotFound => error::message_not_inflight(handle),
        other => engine_error(other),
    }
}

async fn delete_message(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let record = resolve(sqs, request, input)?;
    let handle = required(input, "ReceiptHandle")?;
    let results = sqs
        .engine
        .delete(&record.engine_name(), &[handle.to_string()])
        .await
        .map_err(engine_error)?;
    match results.into_iter().next() {
        // As on AWS, an older receipt of a message received again since
        // "succeeds" and the message stays.
        Some(Err(QueueError::StaleReceipt)) => Ok(Doc::map()),
        Some(Err(err)) => Err(receipt_error(handle, err)),
        _ => {
            record.stats.deleted(1);
            Ok(Doc::map())
        }
    }
}

async fn delete_message_batch(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let record = resolve(sqs, request, input)?;
    let entries = batch_entries(input, "DeleteMessageBatchRequestEntry")?;
    let mut failed = Vec::new();
    let mut ready = Vec::new();
    for entry in entries {
        let id = text(entry, "Id").unwrap_or_default();
        match required(entry, "ReceiptHandle") {
            Ok(handle) => ready.push((id, handle.to_string())),
            Err(err) => failed.push(failed_entry(id, &err)),
        }
    }
    let handles: Vec<String> = ready.iter().map(|(_, h)| h.clone()).collect();
    let results = if handles.is_empty() {
        Vec::new()
    } else {
        sqs.engine
            .delete(&record.engine_name(), &handles)
            .await
            .map_err(engine_error)?
    };
    let mut successful = Vec::new();
    let mut deleted = 0;
    for ((id, handle), result) in ready.iter().zip(results) {
        match result {
            Ok(()) => {
                deleted += 1;
                successful.push(Doc::map().with("Id", *id));
            }
            Err(QueueError::StaleReceipt) => successful.push(Doc::map().with("Id", *id)),
            Err(err) => failed.push(failed_entry(id, &receipt_error(handle, err))),
        }
    }
    record.stats.deleted(deleted);
    Ok(batch_result(successful, failed))
}

async fn change_visibility(
    sqs: &SqsService,
    record: &QueueRecord,
    entry: &Doc,
) -> Result<(), ServiceError> {
    let handle = required(entry, "ReceiptHandle")?;
    let timeout = integer(
        entry,
        "VisibilityTimeout",
        0,
        43_200,
        "Must be >= 0 and <= 43200, if provided.",
    )?
    .ok_or_else(|| error::missing_parameter("VisibilityTimeout"))?;
    sqs.engine
        .change_visibility(&record.engine_name(), handle, seconds(timeout), None)
        .await
        .map_err(|err| receipt_error(handle, err))
}

async fn change_message_visibility(
    sqs: &SqsService,
    request: SqsRequest<'_>,
    input: &Doc,
) -> OpResult {
    let record = resolve(sqs, request, input)?;
    change_visibility(sqs, &record, input).await?;
    Ok(Doc::map())
}

async fn change_message_visibility_batch(
    sqs: &SqsService,
    request: SqsRequest<'_>,
    input: &Doc,
) -> OpResult {
    let record = resolve(sqs, request, input)?;
    let entries = batch_entries(input, "ChangeMessageVisibilityBatchRequestEntry")?;
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for entry in entries {
        let id = text(entry, "Id").unwrap_or_default();
        match change_visibility(sqs, &record, entry).await {
            Ok(()) => successful.push(Doc::map().with("Id", id)),
            Err(err) => failed.push(failed_entry(id, &err)),
        }
    }
    Ok(batch_result(successful, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_of_every_form_resolve() {
        assert_eq!(
            parse_queue_url("http://localhost:4566/123456789012/q"),
            Some(("123456789012", "q"))
        );
        assert_eq!(
            parse_queue_url("https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo"),
            Some(("123456789012", "q.fifo"))
        );
        assert_eq!(
            parse_queue_url("https://us-east-1.queue.amazonaws.com/123456789012/q"),
            Some(("123456789012", "q"))
        );
        assert_eq!(
            parse_queue_url("/123456789012/q"),
            Some(("123456789012", "q"))
        );
        assert_eq!(parse_queue_url("http://localhost/q"), None);
    }

    #[test]
    fn failed_entries_use_short_codes() {
        let doc = failed_entry("a", &error::message_too_long(1024));
        assert_eq!(
            doc.get("Code").and_then(Doc::as_str),
            Some("InvalidParameterValue")
        );
        assert_eq!(
            doc.get("Message").and_then(Doc::as_str),
            Some("One or more parameters cannot be validated. Reason: Message must be shorter than 1024 bytes.")
        );
    }
}
