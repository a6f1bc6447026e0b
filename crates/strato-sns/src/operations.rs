//! SNS's operations: topics, subscriptions, publishing and tags.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::Digest as _;
use strato_model::wire::{Doc, OpResult, ServiceError};
use strato_pattern::{Dialect, Pattern};

use crate::{delivery_policy, message};
use crate::{error, http, SnsRequest, SnsService, Subscription, SubscriptionRecord, TopicRecord};

/// Topics and subscriptions per page of a listing.
const PAGE: usize = 100;

const TOPIC_ATTRIBUTES: &[&str] = &[
    "DeliveryPolicy",
    "DisplayName",
    "Policy",
    "SignatureVersion",
    "TracingConfig",
    "KmsMasterKeyId",
    "FifoTopic",
    "ContentBasedDeduplication",
    "ArchivePolicy",
    "FifoThroughputScope",
    "DataProtectionPolicy",
    "ApplicationSuccessFeedbackRoleArn",
    "ApplicationSuccessFeedbackSampleRate",
    "ApplicationFailureFeedbackRoleArn",
    "HTTPSuccessFeedbackRoleArn",
    "HTTPSuccessFeedbackSampleRate",
    "HTTPFailureFeedbackRoleArn",
    "LambdaSuccessFeedbackRoleArn",
    "LambdaSuccessFeedbackSampleRate",
    "LambdaFailureFeedbackRoleArn",
    "SQSSuccessFeedbackRoleArn",
    "SQSSuccessFeedbackSampleRate",
    "SQSFailureFeedbackRoleArn",
    "FirehoseSuccessFeedbackRoleArn",
    "FirehoseSuccessFeedbackSampleRate",
    "FirehoseFailureFeedbackRoleArn",
];

const PROTOCOLS: &[&str] = &[
    "http",
    "https",
    "email",
    "email-json",
    "sms",
    "sqs",
    "application",
    "lambda",
    "firehose",
];

pub(crate) async fn dispatch(
    sns: &SnsService,
    request: SnsRequest<'_>,
    operation: &str,
    input: Doc,
) -> OpResult {
    match operation {
        "CreateTopic" => create_topic(sns, request, &input).await,
        "DeleteTopic" => delete_topic(sns, request, &input).await,
        "ListTopics" => list_topics(sns, request, &input),
        "GetTopicAttributes" => get_topic_attributes(sns, request, &input),
        "SetTopicAttributes" => set_topic_attributes(sns, request, &input).await,
        "Subscribe" => subscribe(sns, request, &input).await,
        "ConfirmSubscription" => {
            let topic_arn = required(&input, "TopicArn")?;
            let token = required(&input, "Token")?;
            confirm(sns, topic_arn, token).await
        }
        "Unsubscribe" => {
            let arn = input
                .get("SubscriptionArn")
                .and_then(Doc::as_str)
                .ok_or_else(|| {
                    error::invalid("SubscriptionArn Reason: no value for required parameter")
                })?;
            unsubscribe_arn(sns, arn).await
        }
        "ListSubscriptions" => list_subscriptions(sns, request, &input, None),
        "ListSubscriptionsByTopic" => {
            let topic = topic_of(sns, request, &input, "TopicArn")?;
            list_subscriptions(sns, request, &input, Some(&topic.arn()))
        }
        "GetSubscriptionAttributes" => get_subscription_attributes(sns, &input),
        "SetSubscriptionAttributes" => set_subscription_attributes(sns, &input).await,
        "Publish" => crate::publish::publish(sns, request, &input).await,
        "PublishBatch" => crate::publish::publish_batch(sns, request, &input).await,
        "AddPermission" => crate::policy::add_permission(sns, request, &input).await,
        "RemovePermission" => crate::policy::remove_permission(sns, request, &input).await,
        "TagResource" => crate::tags::tag_resource(sns, request, &input).await,
        "UntagResource" => crate::tags::untag_resource(sns, request, &input).await,
        "ListTagsForResource" => crate::tags::list_tags(sns, request, &input),
        other => Err(error::invalid_action(other)),
    }
}

pub(crate) fn required<'a>(input: &'a Doc, name: &str) -> Result<&'a str, ServiceError> {
    input
        .get(name)
        .and_then(Doc::as_str)
        .ok_or_else(|| error::invalid(name))
}

/// Checks an ARN parameter's shape as AWS does, before looking it up.
pub(crate) fn check_arn(parameter: &str, arn: &str) -> Result<(), ServiceError> {
    let parts = arn.split(':').count();
    if parts < 6 {
        return Err(error::short_arn(parameter, parts));
    }
    if !arn.starts_with("arn:") || arn.split(':').nth(2) != Some("sns") {
        return Err(error::invalid(parameter));
    }
    Ok(())
}

/// The topic a parameter names, in the caller's region. Another
/// account's topic is reached only when its topic policy lets the caller
/// in: the front end decides that before the request gets here
/// (`strato-api`'s authorize).
pub(crate) fn topic_of(
    sns: &SnsService,
    request: SnsRequest<'_>,
    input: &Doc,
    parameter: &str,
) -> Result<Arc<TopicRecord>, ServiceError> {
    let arn = required(input, parameter)?;
    check_arn(parameter, arn)?;
    sns.topic(arn)
        .filter(|t| t.region == request.caller.region)
        .ok_or_else(error::topic_not_found)
}

fn valid_topic_name(name: &str, fifo: bool) -> bool {
    let base = if fifo {
        match name.strip_suffix(".fifo") {
            Some(base) => base,
            None => return false,
        }
    } else {
        name
    };
    !base.is_empty()
        && name.len() <= 256
        && base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn boolean_attribute(name: &str, value: &str) -> Result<(), ServiceError> {
    if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") {
        Ok(())
    } else {
        Err(error::invalid(&format!(
            "{name}: Invalid value [{value}]. Must be true or false."
        )))
    }
}

async fn create_topic(sns: &SnsService, request: SnsRequest<'_>, input: &Doc) -> OpResult {
    let name = input.get("Name").and_then(Doc::as_str).unwrap_or_default();
    let mut attributes = BTreeMap::new();
    for (key, value) in message::string_map(input.get("Attributes")) {
        if !TOPIC_ATTRIBUTES.contains(&key.as_str()) {
            return Err(error::invalid(&format!(
                "Attributes Reason: Invalid attribute name: {key}"
            )));
        }
        attributes.insert(key, value);
    }
    let fifo = attributes
        .get("FifoTopic")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if name.is_empty() {
        return Err(error::invalid(" Reason: cannot be empty"));
    }
    if !valid_topic_name(name, fifo) {
        return Err(error::invalid("Topic Name"));
    }
    if fifo {
        attributes.insert("FifoTopic".into(), "true".into());
        attributes
            .entry("ContentBasedDeduplication".into())
            .or_insert_with(|| "false".into());
    } else {
        attributes.remove("FifoTopic");
        if attributes.contains_key("ContentBasedDeduplication") {
            return Err(error::invalid(
                "ContentBasedDeduplication Reason: Content based deduplication can only be set for FIFO topics",
            ));
        }
    }
    if let Some(version) = attributes.get("SignatureVersion") {
        if version != "1" && version != "2" {
            return Err(error::invalid("SignatureVersion"));
        }
    }
    if let Some(policy) = attributes.get("DeliveryPolicy") {
        delivery_policy::check_topic(policy).map_err(|reason| {
            error::invalid(&format!("Attributes Reason: DeliveryPolicy: {reason}"))
        })?;
    }
    let tags = crate::tags::tags_of(input);
    let record = TopicRecord {
        account: request.caller.account_id.clone(),
        region: request.caller.region.clone(),
        name: name.to_string(),
        attributes,
        tags,
        deleted_subscriptions: 0,
    };
    let arn = record.arn();
    let _guard = sns.control.lock().await;
    if let Some(existing) = sns.topic(&arn) {
        let given = message::string_map(input.get("Attributes"));
        if given
            .iter()
            .any(|(k, v)| existing.attributes.get(k) != Some(v) && k != "FifoTopic")
        {
            return Err(error::invalid(
                "Attributes Reason: Topic already exists with different attributes",
            ));
        }
        if !record.tags.is_empty() && record.tags != existing.tags {
            return Err(error::invalid(
                "Tags Reason: Topic already exists with different tags",
            ));
        }
        return Ok(Doc::map().with("TopicArn", arn));
    }
    sns.persist_topic(&record).await?;
    sns.topics.insert(arn.clone(), Arc::new(record));
    Ok(Doc::map().with("TopicArn", arn))
}

async fn delete_topic(sns: &SnsService, request: SnsRequest<'_>, input: &Doc) -> OpResult {
    let arn = required(input, "TopicArn")?;
    check_arn("TopicArn", arn)?;
    let _guard = sns.control.lock().await;
    let Some(topic) = sns
        .topic(arn)
        .filter(|t| t.account == request.caller.account_id && t.region == request.caller.region)
    else {
        // Idempotent, as on AWS.
        return Ok(Doc::map());
    };
    for subscription in sns.subscriptions_of(arn) {
        sns.forget_subscription(&subscription.record).await?;
        sns.subscriptions.remove(&subscription.record.arn);
    }
    sns.forget_topic(&topic).await?;
    sns.topics.remove(arn);
    Ok(Doc::map())
}

/// A page of a sorted listing and the token of the next.
fn page<T: Clone>(items: &[T], input: &Doc) -> Result<(Vec<T>, Option<String>), ServiceError> {
    let start = match input.get("NextToken").and_then(Doc::as_str) {
        Some(token) => token
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= items.len())
            .ok_or_else(|| error::invalid("NextToken"))?,
        None => 0,
    };
    let end = (start + PAGE).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items[start..end].to_vec(), next))
}

fn list_topics(sns: &SnsService, request: SnsRequest<'_>, input: &Doc) -> OpResult {
    let mut arns: Vec<String> = sns
        .topics
        .iter()
        .filter(|t| t.account == request.caller.account_id && t.region == request.caller.region)
        .map(|t| t.key().clone())
        .collect();
    arns.sort();
    let (items, next) = page(&arns, input)?;
    Ok(Doc::map()
        .with(
            "Topics",
            Doc::List(
                items
                    .into_iter()
                    .map(|arn| Doc::map().with("TopicArn", arn))
                    .collect(),
            ),
        )
        .with_opt("NextToken", next))
}

fn get_topic_attributes(sns: &SnsService, request: SnsRequest<'_>, input: &Doc) -> OpResult {
    let topic = topic_of(sns, request, input, "TopicArn")?;
    let subscriptions = sns.subscriptions_of(&topic.arn());
    let confirmed = subscriptions.iter().filter(|s| s.record.confirmed).count();
    let pending = subscriptions.len() - confirmed;
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    out.insert("DisplayName".into(), String::new());
    out.insert("Policy".into(), crate::policy::default_policy(&topic));
    out.extend(topic.attributes.clone());
    out.insert(
        "EffectiveDeliveryPolicy".into(),
        delivery_policy::topic_effective(&topic),
    );
    out.insert("Owner".into(), topic.account.clone());
    out.insert("TopicArn".into(), topic.arn());
    out.insert("SubscriptionsConfirmed".into(), confirmed.to_string());
    out.insert("SubscriptionsPending".into(), pending.to_string());
    out.insert(
        "SubscriptionsDeleted".into(),
        topic.deleted_subscriptions.to_string(),
    );
    Ok(Doc::map().with("Attributes", string_dict(&out)))
}

fn string_dict(map: &BTreeMap<String, String>) -> Doc {
    Doc::Dict(
        map.iter()
            .map(|(k, v)| (k.clone(), Doc::Text(v.clone())))
            .collect(),
    )
}

async fn set_topic_attributes(sns: &SnsService, request: SnsRequest<'_>, input: &Doc) -> OpResult {
    let name = required(input, "AttributeName")?.to_string();
    let value = input
        .get("AttributeValue")
        .and_then(Doc::as_str)
        .unwrap_or_default()
        .to_string();
    let topic = topic_of(sns, request, input, "TopicArn")?;
    if !TOPIC_ATTRIBUTES.contains(&name.as_str()) || name == "FifoTopic" {
        return Err(error::invalid("AttributeName"));
    }
    if name == "ContentBasedDeduplication" {
        if !topic.fifo() {
            return Err(error::invalid(
                "ContentBasedDeduplication Reason: Content based deduplication can only be set for FIFO topics",
            ));
        }
        boolean_attribute(&name, &value)?;
    }
    if name == "SignatureVersion" && value != "1" && value != "2" {
        return Err(error::invalid("SignatureVersion"));
    }
    if name == "DeliveryPolicy" {
        delivery_policy::check_topic(&value)
            .map_err(|reason| error::invalid(&format!("DeliveryPolicy: {reason}")))?;
    }
    let _guard = sns.control.lock().await;
    let mut record = (*topic).clone();
    if value.is_empty() && name != "DisplayName" {
        record.attributes.remove(&name);
    } else {
        record.attributes.insert(name, value);
    }
    sns.save_topic(record).await?;
    Ok(Doc::map())
}

/// Validates one subscription attribute; answers the text to store.
fn check_subscription_attribute(
    name: &str,
    value: &str,
    attributes: &BTreeMap<String, String>,
    protocol: &str,
    topic_fifo: bool,
    framed: bool,
) -> Result<(), ServiceError> {
    let frame = |reason: String| {
        if framed {
            error::invalid(&format!("Attributes Reason: {reason}"))
        } else {
            error::invalid(&reason)
        }
    };
    match name {
        "RawMessageDelivery" => {
            if !(value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")) {
                return Err(frame(format!(
                    "RawMessageDelivery: Invalid value [{value}]. Must be true or false."
                )));
            }
            if !matches!(protocol, "sqs" | "http" | "https" | "firehose") {
                return Err(error::invalid(&format!(
                    "Attributes Reason: Delivery protocol [{protocol}] does not support raw message delivery."
                )));
            }
        }
        "FilterPolicyScope" => {
            if value != "MessageAttributes" && value != "MessageBody" {
                return Err(error::invalid(&format!(
                    "FilterPolicyScope: Invalid value [{value}]. Please use either MessageBody or MessageAttributes"
                )));
            }
            if let Some(policy) = attributes.get("FilterPolicy") {
                parse_filter(policy, value, framed)?;
            }
        }
        "FilterPolicy" => {
            if !value.is_empty() {
                let scope = attributes
                    .get("FilterPolicyScope")
                    .map_or("MessageAttributes", String::as_str);
                parse_filter(value, scope, framed)?;
            }
        }
        "RedrivePolicy" => {
            if !value.is_empty() {
                let policy: serde_json::Value = serde_json::from_str(value).map_err(|e| {
                    error::invalid(&format!("RedrivePolicy: failed to parse JSON. {e}"))
                })?;
                let arn = policy
                    .get("deadLetterTargetArn")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default();
                if arn.split(':').count() != 6 || !arn.starts_with("arn:aws:sqs:") {
                    return Err(error::invalid(
                        "RedrivePolicy: deadLetterTargetArn is an invalid arn",
                    ));
                }
                if topic_fifo && protocol == "sqs" && !arn.ends_with(".fifo") {
                    return Err(error::invalid(
                        "RedrivePolicy: must use a FIFO queue as DLQ for a FIFO Subscription to a FIFO Topic.",
                    ));
                }
            }
        }
        "DeliveryPolicy" => {
            delivery_policy::check_subscription(value)
                .map_err(|reason| frame(format!("DeliveryPolicy: {reason}")))?;
        }
        "ReplayPolicy" => {
            if !value.is_empty() && serde_json::from_str::<serde_json::Value>(value).is_err() {
                return Err(error::invalid(&format!("{name}: failed to parse JSON.")));
            }
        }
        "SubscriptionRoleArn" => {}
        _ => {
            return Err(if framed {
                error::invalid(&format!(
                    "Attributes Reason: Invalid attribute name: {name}"
                ))
            } else {
                error::invalid("AttributeName")
            })
        }
    }
    Ok(())
}

fn parse_filter(text: &str, scope: &str, framed: bool) -> Result<Pattern, ServiceError> {
    let scope = if scope == "MessageBody" {
        strato_pattern::SnsScope::MessageBody
    } else {
        strato_pattern::SnsScope::MessageAttributes
    };
    Pattern::parse(text, Dialect::SnsFilterPolicy(scope)).map_err(|e| {
        let message = e.to_string();
        // Subscribe frames the reason (and its location) as an attribute's.
        match message.strip_prefix("Invalid parameter: FilterPolicy: ") {
            Some(rest) if framed => error::invalid_parameter(format!(
                "Invalid parameter: Attributes Reason: FilterPolicy: {rest}"
            )),
            _ => error::invalid_parameter(message),
        }
    })
}

async fn subscribe(sns: &SnsService, request: SnsRequest<'_>, input: &Doc) -> OpResult {
    let topic = topic_of(sns, request, input, "TopicArn")?;
    let protocol = required(input, "Protocol")?.to_string();
    if !PROTOCOLS.contains(&protocol.as_str()) {
        return Err(error::invalid(&format!(
            "Amazon SNS does not support this protocol string: {protocol}"
        )));
    }
    let endpoint = input
        .get("Endpoint")
        .and_then(Doc::as_str)
        .unwrap_or_default()
        .to_string();
    match protocol.as_str() {
        "sqs" => {
            if endpoint.split(':').count() != 6 || !endpoint.starts_with("arn:aws:sqs:") {
                return Err(error::invalid("SQS endpoint ARN"));
            }
            if !topic.fifo() && sns.targets.queue_fifo(&endpoint) == Some(true) {
                return Err(error::invalid(
                    "Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to standard SNS topics",
                ));
            }
        }
        "lambda" if !endpoint.starts_with("arn:aws:lambda:") || endpoint.split(':').count() < 7 => {
            return Err(error::invalid("Lambda endpoint ARN"));
        }
        "http" | "https" if !endpoint.starts_with(&format!("{protocol}://")) => {
            return Err(error::invalid(&format!(
                "Endpoint Reason: {} endpoint must start with {protocol}://",
                protocol.to_uppercase()
            )));
        }
        _ => {}
    }
    let mut attributes = BTreeMap::new();
    for (key, value) in message::string_map(input.get("Attributes")) {
        check_subscription_attribute(&key, &value, &attributes, &protocol, topic.fifo(), true)?;
        attributes.insert(key, value);
    }
    if let Some(policy) = attributes.get("FilterPolicy").cloned() {
        // Validated against the scope given in the same call, whatever the order.
        let scope = attributes
            .get("FilterPolicyScope")
            .map_or("MessageAttributes", String::as_str);
        parse_filter(&policy, scope, true)?;
        attributes
            .entry("FilterPolicyScope".into())
            .or_insert_with(|| "MessageAttributes".into());
    }
    if let Some(raw) = attributes.get_mut("RawMessageDelivery") {
        *raw = raw.to_lowercase();
    }
    let return_arn = input
        .get("ReturnSubscriptionArn")
        .and_then(Doc::as_bool)
        .unwrap_or(false);
    let _guard = sns.control.lock().await;
    let topic_arn = topic.arn();
    if let Some(existing) = sns
        .subscriptions_of(&topic_arn)
        .into_iter()
        .find(|s| s.record.protocol == protocol && s.record.endpoint == endpoint)
    {
        let differs = attributes
            .iter()
            .any(|(k, v)| existing.record.attributes.get(k) != Some(v));
        if differs {
            return Err(error::invalid(
                "Attributes Reason: Subscription already exists with different attributes",
            ));
        }
        let arn = if existing.record.confirmed || return_arn {
            existing.record.arn.clone()
        } else {
            "pending confirmation".to_string()
        };
        return Ok(Doc::map().with("SubscriptionArn", arn));
    }
    let needs_confirmation = matches!(protocol.as_str(), "http" | "https");
    let token = needs_confirmation.then(new_token);
    let record = SubscriptionRecord {
        arn: format!("{topic_arn}:{}", uuid::Uuid::new_v4()),
        topic_arn: topic_arn.clone(),
        account: topic.account.clone(),
        region: topic.region.clone(),
        protocol,
        endpoint,
        attributes,
        confirmed: !needs_confirmation,
        token: token.clone(),
    };
    sns.persist_subscription(&record).await?;
    let arn = record.arn.clone();
    sns.subscriptions
        .insert(arn.clone(), Arc::new(Subscription::new(record.clone())));
    if let Some(token) = &token {
        http::enqueue_confirmation(
            sns,
            &record,
            token,
            topic.signature_version(),
            request.endpoint,
            http::Handshake::Subscribe,
        )
        .await?;
    }
    let shown = if needs_confirmation && !return_arn {
        "pending confirmation".to_string()
    } else {
        arn
    };
    Ok(Doc::map().with("SubscriptionArn", shown))
}

/// A confirmation token, long and random as AWS's.
fn new_token() -> String {
    let mut bytes = uuid::Uuid::new_v4().as_bytes().to_vec();
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    hex::encode(sha2::Sha256::digest(&bytes)) + &hex::encode(&bytes)
}

/// ConfirmSubscription, by API or by the SubscribeURL.
pub(crate) async fn confirm(sns: &SnsService, topic_arn: &str, token: &str) -> OpResult {
    check_arn("TopicArn", topic_arn)?;
    if sns.topic(topic_arn).is_none() {
        return Err(error::topic_not_found());
    }
    let _guard = sns.control.lock().await;
    let found = sns
        .subscriptions_of(topic_arn)
        .into_iter()
        .find(|s| s.record.token.as_deref() == Some(token))
        .ok_or_else(|| error::invalid("Token"))?;
    if !found.record.confirmed {
        let mut record = found.record.clone();
        record.confirmed = true;
        sns.persist_subscription(&record).await?;
        sns.subscriptions
            .insert(record.arn.clone(), Arc::new(Subscription::new(record)));
    }
    Ok(Doc::map().with("SubscriptionArn", found.record.arn.as_str()))
}

/// Unsubscribe, by API or by the UnsubscribeURL.
pub(crate) async fn unsubscribe_arn(sns: &SnsService, arn: &str) -> OpResult {
    let parts = arn.split(':').count();
    if parts < 6 {
        return Err(error::short_arn("SubscriptionArn", parts));
    }
    if parts != 7 || !arn.starts_with("arn:aws:sns:") {
        return Err(error::invalid("SubscriptionId"));
    }
    let _guard = sns.control.lock().await;
    let Some(subscription) = sns.subscriptions.get(arn).map(|s| s.value().clone()) else {
        return Err(error::subscription_not_found());
    };
    sns.forget_subscription(&subscription.record).await?;
    sns.subscriptions.remove(arn);
    if let Some(topic) = sns.topic(&subscription.record.topic_arn) {
        let mut record = (*topic).clone();
        record.deleted_subscriptions += 1;
        sns.save_topic(record).await?;
        // A confirmed HTTP/HTTPS endpoint is told, as AWS tells it.
        let removed = &subscription.record;
        if removed.confirmed && matches!(removed.protocol.as_str(), "http" | "https") {
            let token = removed.token.clone().unwrap_or_else(new_token);
            let endpoint = sns.endpoint.read().clone();
            http::enqueue_confirmation(
                sns,
                removed,
                &token,
                topic.signature_version(),
                &endpoint,
                http::Handshake::Unsubscribe,
            )
            .await?;
        }
    }
    Ok(Doc::map())
}

fn list_subscriptions(
    sns: &SnsService,
    request: SnsRequest<'_>,
    input: &Doc,
    topic_arn: Option<&str>,
) -> OpResult {
    let mut all: Vec<Arc<Subscription>> = sns
        .subscriptions
        .iter()
        .filter(|s| {
            s.record.account == request.caller.account_id
                && s.record.region == request.caller.region
                && topic_arn.is_none_or(|t| s.record.topic_arn == t)
        })
        .map(|s| s.value().clone())
        .collect();
    all.sort_by(|a, b| a.record.arn.cmp(&b.record.arn));
    let (items, next) = page(&all, input)?;
    let list = items
        .iter()
        .map(|s| {
            let r = &s.record;
            let arn = if r.confirmed {
                r.arn.as_str()
            } else {
                "PendingConfirmation"
            };
            Doc::map()
                .with("SubscriptionArn", arn)
                .with("Owner", r.account.as_str())
                .with("Protocol", r.protocol.as_str())
                .with("Endpoint", r.endpoint.as_str())
                .with("TopicArn", r.topic_arn.as_str())
        })
        .collect();
    Ok(Doc::map()
        .with("Subscriptions", Doc::List(list))
        .with_opt("NextToken", next))
}

fn subscription_of(sns: &SnsService, input: &Doc) -> Result<Arc<Subscription>, ServiceError> {
    let arn = input
        .get("SubscriptionArn")
        .and_then(Doc::as_str)
        .ok_or_else(|| error::invalid("SubscriptionArn Reason: no value for required parameter"))?;
    let parts = arn.split(':').count();
    if parts < 6 {
        return Err(error::short_arn("SubscriptionArn", parts));
    }
    sns.subscriptions
        .get(arn)
        .map(|s| s.value().clone())
        .ok_or_else(error::subscription_not_found)
}

fn get_subscription_attributes(sns: &SnsService, input: &Doc) -> OpResult {
    let subscription = subscription_of(sns, input)?;
    let r = &subscription.record;
    let mut out = BTreeMap::new();
    out.insert("Owner".to_string(), r.account.clone());
    out.insert("RawMessageDelivery".to_string(), "false".to_string());
    out.insert("TopicArn".to_string(), r.topic_arn.clone());
    out.insert("Endpoint".to_string(), r.endpoint.clone());
    out.insert("Protocol".to_string(), r.protocol.clone());
    out.insert(
        "PendingConfirmation".to_string(),
        (!r.confirmed).to_string(),
    );
    out.insert(
        "ConfirmationWasAuthenticated".to_string(),
        "true".to_string(),
    );
    out.insert("SubscriptionArn".to_string(), r.arn.clone());
    out.insert(
        "SubscriptionPrincipal".to_string(),
        format!("arn:aws:iam::{}:root", r.account),
    );
    out.extend(r.attributes.clone());
    if matches!(r.protocol.as_str(), "http" | "https") {
        let topic = sns.topic(&r.topic_arn);
        let effective = delivery_policy::effective(topic.as_deref(), r);
        out.insert("EffectiveDeliveryPolicy".to_string(), effective.to_json());
    }
    Ok(Doc::map().with("Attributes", string_dict(&out)))
}

async fn set_subscription_attributes(sns: &SnsService, input: &Doc) -> OpResult {
    let name = required(input, "AttributeName")?.to_string();
    let value = input
        .get("AttributeValue")
        .and_then(Doc::as_str)
        .unwrap_or_default()
        .to_string();
    let subscription = subscription_of(sns, input)?;
    let topic_fifo = sns
        .topic(&subscription.record.topic_arn)
        .is_some_and(|t| t.fifo());
    check_subscription_attribute(
        &name,
        &value,
        &subscription.record.attributes,
        &subscription.record.protocol,
        topic_fifo,
        false,
    )?;
    let _guard = sns.control.lock().await;
    let mut record = subscription.record.clone();
    if value.is_empty() {
        record.attributes.remove(&name);
        if name == "FilterPolicy" {
            record.attributes.remove("FilterPolicyScope");
        }
    } else {
        let value = if name == "RawMessageDelivery" {
            value.to_lowercase()
        } else {
            value
        };
        record.attributes.insert(name.clone(), value);
        if name == "FilterPolicy" {
            record
                .attributes
                .entry("FilterPolicyScope".into())
                .or_insert_with(|| "MessageAttributes".into());
        }
    }
    sns.persist_subscription(&record).await?;
    sns.subscriptions
        .insert(record.arn.clone(), Arc::new(Subscription::new(record)));
    Ok(Doc::map())
}
