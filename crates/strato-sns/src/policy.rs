//! Topic policies: the default one AWS gives every topic, AddPermission and
//! RemovePermission, and the check that admits (or not) an AWS service
//! publishing to a topic as itself (EventBridge rules, S3 notifications,
//! CloudWatch alarms): as on AWS, the topic's policy decides.

use serde_json::{json, Value};
use strato_engine::async_invoke::ServiceOrigin;
use strato_iam::policy::{PolicyDocument, PolicyKind, Request, RequestContext, RequestPrincipal};
use strato_model::wire::{Doc, OpResult};

use crate::operations::{required, topic_of};
use crate::{error, SnsRequest, SnsService, TopicRecord};

/// The actions AddPermission may grant (`ActionName.member.N`).
const ACTIONS: &[&str] = &[
    "GetTopicAttributes",
    "SetTopicAttributes",
    "AddPermission",
    "RemovePermission",
    "DeleteTopic",
    "Subscribe",
    "ListSubscriptionsByTopic",
    "Publish",
    "Receive",
];

/// AWS's policy of a topic nobody has set one on: the owner account may do
/// everything (`AWS:SourceOwner`), nobody else anything.
pub(crate) fn default_policy(topic: &TopicRecord) -> String {
    default_document(topic).to_string()
}

fn default_document(topic: &TopicRecord) -> Value {
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": [
                "SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                "SNS:ListSubscriptionsByTopic", "SNS:Publish"
            ],
            "Resource": topic.arn(),
            "Condition": {"StringEquals": {"AWS:SourceOwner": topic.account}}
        }]
    })
}

/// The topic's policy document: the one set, else AWS's default.
fn document(topic: &TopicRecord) -> Value {
    topic
        .attributes
        .get("Policy")
        .and_then(|p| serde_json::from_str(p).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| default_document(topic))
}

fn statements(document: &Value) -> Vec<Value> {
    match document.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// Whether the topic's policy lets a service publish to it as itself,
/// decided by IAM's evaluator: only the topic's policy can admit a service,
/// and its explicit deny wins. A policy that does not parse admits nobody.
pub(crate) fn service_may_publish(topic: &TopicRecord, origin: &ServiceOrigin<'_>) -> bool {
    let Ok(policy) = PolicyDocument::from_json(&document(topic), PolicyKind::Resource) else {
        return false;
    };
    let mut context = RequestContext::new()
        .with("aws:SourceArn", origin.source_arn)
        .with("aws:SourceAccount", origin.source_account);
    if let Some(owner) = origin.source_owner {
        context.insert("aws:SourceOwner", owner);
    }
    let arn = topic.arn();
    let verdict = policy.evaluate(&Request {
        action: "SNS:Publish",
        resource: &arn,
        principal: &RequestPrincipal::Service(origin.principal.to_string()),
        context: &context,
    });
    verdict.allowed && !verdict.denied
}

fn members<'a>(input: &'a Doc, name: &str) -> Vec<&'a str> {
    input
        .get(name)
        .and_then(Doc::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Doc::as_str)
        .collect()
}

async fn save_policy(
    sns: &SnsService,
    topic: &TopicRecord,
    document: &Value,
) -> Result<(), strato_model::wire::ServiceError> {
    let mut record = topic.clone();
    record
        .attributes
        .insert("Policy".into(), document.to_string());
    sns.save_topic(record).await
}

/// AddPermission: a statement `Label` allowing the accounts the actions.
pub(crate) async fn add_permission(
    sns: &SnsService,
    request: SnsRequest<'_>,
    input: &Doc,
) -> OpResult {
    let label = required(input, "Label")?;
    let accounts = members(input, "AWSAccountId");
    let actions = members(input, "ActionName");
    if accounts.is_empty() {
        return Err(error::invalid("AWSAccountId"));
    }
    if actions.is_empty() {
        return Err(error::invalid("ActionName"));
    }
    if !actions.iter().all(|a| ACTIONS.contains(a)) {
        return Err(error::invalid(
            "Policy statement action out of service scope!",
        ));
    }
    let _guard = sns.control.lock().await;
    let topic = topic_of(sns, request, input, "TopicArn")?;
    let mut doc = document(&topic);
    let mut list = statements(&doc);
    if list
        .iter()
        .any(|s| s.get("Sid").and_then(Value::as_str) == Some(label))
    {
        return Err(error::invalid("Statement already exists"));
    }
    let principals: Vec<String> = accounts
        .iter()
        .map(|a| format!("arn:aws:iam::{a}:root"))
        .collect();
    let one = |items: Vec<String>| {
        if items.len() == 1 {
            json!(items[0])
        } else {
            json!(items)
        }
    };
    list.push(json!({
        "Sid": label,
        "Effect": "Allow",
        "Principal": {"AWS": one(principals)},
        "Action": one(actions.iter().map(|a| format!("SNS:{a}")).collect()),
        "Resource": topic.arn(),
    }));
    doc["Statement"] = Value::Array(list);
    save_policy(sns, &topic, &doc).await?;
    Ok(Doc::map())
}

/// RemovePermission: the statement `Label` goes.
pub(crate) async fn remove_permission(
    sns: &SnsService,
    request: SnsRequest<'_>,
    input: &Doc,
) -> OpResult {
    let label = required(input, "Label")?;
    let _guard = sns.control.lock().await;
    let topic = topic_of(sns, request, input, "TopicArn")?;
    let mut doc = document(&topic);
    let mut list = statements(&doc);
    list.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(label));
    doc["Statement"] = Value::Array(list);
    save_policy(sns, &topic, &doc).await?;
    Ok(Doc::map())
}
