//! A queue's settings: the attributes a client sets, their defaults and
//! AWS's validation, and what the rest of the service reads from them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strato_model::wire::ServiceError;

use crate::error;

/// The store document kind of a queue (id: the queue's name).
pub const DOCUMENT_KIND: &str = "sqs-queue";

/// What persists of a queue (messages live in the queue engine).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueRecord {
    pub account: String,
    pub region: String,
    pub name: String,
    /// Every settable attribute, defaults included, as AWS reports them.
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Epoch seconds.
    pub created: i64,
    pub last_modified: i64,
    /// The queue's CloudWatch counters: shared by every version of the
    /// record (a clone shares them), never stored.
    #[serde(skip)]
    pub stats: std::sync::Arc<crate::metrics::QueueStats>,
}

impl QueueRecord {
    pub fn arn(&self) -> String {
        queue_arn(&self.region, &self.account, &self.name)
    }

    pub fn fifo(&self) -> bool {
        self.name.ends_with(".fifo")
    }

    /// The queue's name in the queue engine: per account and region, apart
    /// from the engine's other users (`lambda-async/...`).
    pub fn engine_name(&self) -> String {
        engine_queue_name(&self.account, &self.region, &self.name)
    }

    fn number(&self, name: &str, default: u64) -> u64 {
        self.attributes
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    pub fn visibility_timeout(&self) -> Duration {
        Duration::from_secs(self.number("VisibilityTimeout", 30))
    }

    pub fn delay(&self) -> Duration {
        Duration::from_secs(self.number("DelaySeconds", 0))
    }

    pub fn receive_wait(&self) -> Duration {
        Duration::from_secs(self.number("ReceiveMessageWaitTimeSeconds", 0))
    }

    pub fn maximum_message_size(&self) -> usize {
        usize::try_from(self.number("MaximumMessageSize", MAX_MESSAGE_SIZE as u64))
            .unwrap_or(MAX_MESSAGE_SIZE)
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.number("MessageRetentionPeriod", 345_600))
    }

    pub fn content_based_dedup(&self) -> bool {
        self.attributes
            .get("ContentBasedDeduplication")
            .is_some_and(|v| v == "true")
    }

    pub fn redrive_policy(&self) -> Option<RedrivePolicy> {
        self.attributes
            .get("RedrivePolicy")
            .and_then(|p| RedrivePolicy::parse(p).ok())
    }
}

/// SQS's largest message (and batch): 1 MiB.
pub const MAX_MESSAGE_SIZE: usize = 1_048_576;

pub fn queue_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:sqs:{region}:{account}:{name}")
}

pub fn engine_queue_name(account: &str, region: &str, name: &str) -> String {
    format!("sqs/{account}/{region}/{name}")
}

/// (region, account, name) of an SQS queue ARN.
pub fn parse_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:aws:sqs:")?;
    let mut parts = rest.splitn(3, ':');
    let region = parts.next()?;
    let account = parts.next()?;
    let name = parts.next()?;
    (!region.is_empty() && !account.is_empty() && !name.is_empty())
        .then_some((region, account, name))
}

/// A queue's `RedrivePolicy` attribute (a JSON string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedrivePolicy {
    pub dead_letter_target_arn: String,
    pub max_receive_count: u32,
}

impl RedrivePolicy {
    pub fn parse(text: &str) -> Result<RedrivePolicy, ServiceError> {
        let invalid = |reason: &str| error::invalid_value("RedrivePolicy", text, reason);
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|_| invalid("Redrive policy is not a valid JSON map."))?;
        let arn = value
            .get("deadLetterTargetArn")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                invalid("Redrive policy does not contain mandatory attribute: deadLetterTargetArn.")
            })?;
        let count = value.get("maxReceiveCount").ok_or_else(|| {
            invalid("Redrive policy does not contain mandatory attribute: maxReceiveCount.")
        })?;
        let count_text = match count {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let max_receive_count = count_text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                invalid(&format!(
                    "Invalid value for maxReceiveCount: {count_text}, valid values are from 1 to 1000 both inclusive."
                ))
            })?;
        Ok(RedrivePolicy {
            dead_letter_target_arn: arn.to_string(),
            max_receive_count,
        })
    }
}

/// A queue's `RedriveAllowPolicy`: which source queues may use it as their
/// dead-letter queue.
pub fn redrive_allowed(policy: Option<&String>, source_arn: &str) -> bool {
    let Some(policy) = policy else { return true };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(policy) else {
        return true;
    };
    match value.get("redrivePermission").and_then(|v| v.as_str()) {
        Some("denyAll") => false,
        Some("byQueue") => value
            .get("sourceQueueArns")
            .and_then(|v| v.as_array())
            .is_some_and(|arns| arns.iter().any(|a| a.as_str() == Some(source_arn))),
        _ => true,
    }
}

fn validate_redrive_allow_policy(text: &str) -> Result<(), ServiceError> {
    let invalid = |reason: &str| error::invalid_value("RedriveAllowPolicy", text, reason);
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| invalid("Redrive allow policy is not a valid JSON map."))?;
    match value.get("redrivePermission").and_then(|v| v.as_str()) {
        Some("allowAll") | Some("denyAll") => Ok(()),
        Some("byQueue") => {
            let count = value
                .get("sourceQueueArns")
                .and_then(|v| v.as_array())
                .map_or(0, Vec::len);
            if (1..=10).contains(&count) {
                Ok(())
            } else {
                Err(invalid("sourceQueueArns must contain between 1 and 10 queue ARNs when redrivePermission is byQueue."))
            }
        }
        _ => Err(invalid(
            "Redrive permission must be one of allowAll, denyAll, byQueue.",
        )),
    }
}

/// The attributes of a new queue: AWS's defaults.
pub fn default_attributes(fifo: bool) -> BTreeMap<String, String> {
    let mut attributes: BTreeMap<String, String> = [
        ("DelaySeconds", "0"),
        ("MaximumMessageSize", "1048576"),
        ("MessageRetentionPeriod", "345600"),
        ("ReceiveMessageWaitTimeSeconds", "0"),
        ("VisibilityTimeout", "30"),
        ("SqsManagedSseEnabled", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if fifo {
        for (k, v) in [
            ("FifoQueue", "true"),
            ("ContentBasedDeduplication", "false"),
            ("DeduplicationScope", "queue"),
            ("FifoThroughputLimit", "perQueue"),
        ] {
            attributes.insert(k.to_string(), v.to_string());
        }
    }
    attributes
}

/// Attributes only reported, never set.
pub const READ_ONLY_ATTRIBUTES: [&str; 6] = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
];

/// Every attribute `GetQueueAttributes` knows.
pub fn is_known_attribute(name: &str) -> bool {
    READ_ONLY_ATTRIBUTES.contains(&name)
        || matches!(
            name,
            "All"
                | "DelaySeconds"
                | "MaximumMessageSize"
                | "MessageRetentionPeriod"
                | "Policy"
                | "ReceiveMessageWaitTimeSeconds"
                | "VisibilityTimeout"
                | "RedrivePolicy"
                | "RedriveAllowPolicy"
                | "FifoQueue"
                | "ContentBasedDeduplication"
                | "DeduplicationScope"
                | "FifoThroughputLimit"
                | "KmsMasterKeyId"
                | "KmsDataKeyReusePeriodSeconds"
                | "SqsManagedSseEnabled"
        )
}

/// Checks attributes a client sets (`CreateQueue`, `SetQueueAttributes`)
/// and returns them as stored. `creating`: `FifoQueue` may be given.
pub fn validate_attributes(
    given: &BTreeMap<String, String>,
    fifo: bool,
    creating: bool,
) -> Result<BTreeMap<String, String>, ServiceError> {
    let mut out = BTreeMap::new();
    for (name, value) in given {
        let range = |low: u64, high: u64| -> Result<(), ServiceError> {
            match value.trim().parse::<u64>() {
                Ok(n) if (low..=high).contains(&n) => Ok(()),
                _ => Err(error::invalid_attribute_value(format!(
                    "Invalid value for the parameter {name}."
                ))),
            }
        };
        let boolean = || -> Result<(), ServiceError> {
            if matches!(value.as_str(), "true" | "false") {
                Ok(())
            } else {
                Err(error::invalid_attribute_value(format!(
                    "Invalid value for the parameter {name}."
                )))
            }
        };
        let value = value.clone();
        match name.as_str() {
            "DelaySeconds" => range(0, 900)?,
            "MaximumMessageSize" => range(1024, MAX_MESSAGE_SIZE as u64)?,
            "MessageRetentionPeriod" => range(60, 1_209_600)?,
            "ReceiveMessageWaitTimeSeconds" => range(0, 20)?,
            "VisibilityTimeout" => range(0, 43_200)?,
            "KmsDataKeyReusePeriodSeconds" => range(60, 86_400)?,
            "SqsManagedSseEnabled" => boolean()?,
            "Policy" => {
                if !value.is_empty() && serde_json::from_str::<serde_json::Value>(&value).is_err() {
                    return Err(error::invalid_attribute_value(
                        "Invalid value for the parameter Policy.",
                    ));
                }
            }
            "KmsMasterKeyId" => {}
            "RedrivePolicy" => {
                if !value.is_empty() {
                    RedrivePolicy::parse(&value)?;
                }
            }
            "RedriveAllowPolicy" => {
                if !value.is_empty() {
                    validate_redrive_allow_policy(&value)?;
                }
            }
            "FifoQueue" => {
                if !fifo {
                    return Err(error::unknown_attribute(name));
                }
                if !creating {
                    return Err(error::invalid_attribute_value(
                        "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported.",
                    ));
                }
                if value != "true" {
                    return Err(error::invalid_attribute_value(
                        "Invalid value for the parameter FifoQueue.",
                    ));
                }
            }
            "ContentBasedDeduplication" => {
                if !fifo {
                    return Err(error::unknown_attribute(name));
                }
                boolean()?;
            }
            "DeduplicationScope" => {
                if !fifo {
                    return Err(error::invalid_attribute_name(
                        "You can specify the DeduplicationScope only when FifoQueue is set to true.",
                    ));
                }
                if !matches!(value.as_str(), "queue" | "messageGroup") {
                    return Err(error::invalid_attribute_value(
                        "Invalid value for the parameter DeduplicationScope.",
                    ));
                }
            }
            "FifoThroughputLimit" => {
                if !fifo {
                    return Err(error::invalid_attribute_name(
                        "You can specify the FifoThroughputLimit only when FifoQueue is set to true.",
                    ));
                }
                if !matches!(value.as_str(), "perQueue" | "perMessageGroupId") {
                    return Err(error::invalid_attribute_value(
                        "Invalid value for the parameter FifoThroughputLimit.",
                    ));
                }
            }
            _ => return Err(error::unknown_attribute(name)),
        }
        out.insert(name.clone(), value);
    }
    if fifo
        && out.get("FifoThroughputLimit").map(String::as_str) == Some("perMessageGroupId")
        && out.get("DeduplicationScope").map(String::as_str) == Some("queue")
    {
        return Err(error::invalid_attribute_value(
            "Invalid value for the parameter FifoThroughputLimit. Reason: To enable high throughput for FIFO queues, do the following: Set DeduplicationScope to messageGroup. Set FifoThroughputLimit to perMessageGroupId.",
        ));
    }
    Ok(out)
}

/// A queue name: 1–80 alphanumerics, hyphens and underscores, plus
/// `.fifo` for a FIFO queue.
pub fn validate_name(name: &str, fifo: bool) -> Result<(), ServiceError> {
    let stem = name.strip_suffix(".fifo").unwrap_or(name);
    let valid_stem = !stem.is_empty()
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fifo {
        if name.len() <= 80 && name.ends_with(".fifo") && valid_stem {
            return Ok(());
        }
        return Err(error::invalid_parameter_value(
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.",
        ));
    }
    if name.len() <= 80 && !name.ends_with(".fifo") && valid_stem {
        return Ok(());
    }
    Err(error::invalid_parameter_value(
        "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn attribute_ranges_are_aws_ranges() {
        assert!(
            validate_attributes(&attrs(&[("VisibilityTimeout", "43200")]), false, true).is_ok()
        );
        let err = validate_attributes(&attrs(&[("VisibilityTimeout", "43201")]), false, true)
            .unwrap_err();
        assert_eq!(err.code, "InvalidAttributeValue");
        assert_eq!(
            err.message,
            "Invalid value for the parameter VisibilityTimeout."
        );
        assert!(
            validate_attributes(&attrs(&[("MaximumMessageSize", "1023")]), false, true).is_err()
        );
        assert!(validate_attributes(&attrs(&[("DelaySeconds", "900")]), false, true).is_ok());
        assert!(validate_attributes(&attrs(&[("DelaySeconds", "901")]), false, true).is_err());
    }

    #[test]
    fn fifo_attributes_on_standard_queues_are_refused_as_aws_does() {
        let err = validate_attributes(&attrs(&[("FifoQueue", "true")]), false, true).unwrap_err();
        assert_eq!(err.message, "Unknown Attribute FifoQueue.");
        let err = validate_attributes(&attrs(&[("DeduplicationScope", "queue")]), false, true)
            .unwrap_err();
        assert_eq!(
            err.message,
            "You can specify the DeduplicationScope only when FifoQueue is set to true."
        );
        let err = validate_attributes(&attrs(&[("FifoQueue", "true")]), true, false).unwrap_err();
        assert_eq!(
            err.message,
            "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported."
        );
        let err = validate_attributes(&attrs(&[("Bogus", "1")]), false, true).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            ("InvalidAttributeName", "Unknown Attribute Bogus.")
        );
    }

    #[test]
    fn redrive_policies_parse_counts_as_text_or_number() {
        let p = RedrivePolicy::parse(r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:d","maxReceiveCount":"3"}"#).unwrap();
        assert_eq!(p.max_receive_count, 3);
        let p = RedrivePolicy::parse(r#"{"deadLetterTargetArn":"a","maxReceiveCount":5}"#).unwrap();
        assert_eq!(p.max_receive_count, 5);
        assert!(
            RedrivePolicy::parse(r#"{"deadLetterTargetArn":"a","maxReceiveCount":0}"#).is_err()
        );
    }

    #[test]
    fn names_follow_queue_type() {
        assert!(validate_name("a-b_c", false).is_ok());
        assert!(validate_name("a.fifo", false).is_err());
        assert!(validate_name("a.fifo", true).is_ok());
        assert!(validate_name("a", true).is_err());
        assert!(validate_name(&"a".repeat(81), false).is_err());
        assert_eq!(
            parse_arn("arn:aws:sqs:us-east-1:123456789012:q"),
            Some(("us-east-1", "123456789012", "q"))
        );
    }
}
