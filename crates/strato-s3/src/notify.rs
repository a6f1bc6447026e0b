//! Bucket notifications: validating a configuration as S3 does (event
//! names, filter rules, ARNs, then each destination: a Lambda function's
//! policy must admit `s3.amazonaws.com` for the bucket, an SQS queue or SNS
//! topic must take the `s3:TestEvent`), and delivering event records
//! (version 2.1) for object changes. Deliveries are durable when they
//! return (the async invoke queue, SQS), and they are made before the
//! request that caused them is answered, so an acknowledged change is
//! never without its notification.

use std::sync::Arc;

use bytes::Bytes;
use s3s::dto::{NotificationConfiguration, NotificationConfigurationFilter};
use s3s::{S3Error, S3ErrorCode};
use serde_json::json;
use strato_engine::async_invoke::{
    arn_service, AwsServiceEvent, DeliveryError, EventSink, EventSinks, ServiceEvent,
    ServiceEventError, ServiceEvents, ServiceOrigin,
};

use crate::names::form_encode;
use crate::with_members;

/// The service principal S3 invokes functions as.
pub const PRINCIPAL: &str = "s3.amazonaws.com";

const EVENT_NAMES: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:ReducedRedundancyLostObject",
    "s3:Replication:*",
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:Replication:OperationNotTracked",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
    "s3:ObjectAcl:Put",
];

/// An object change to notify about.
#[derive(Debug, Clone)]
pub struct ObjectEvent {
    pub account: String,
    pub region: String,
    pub bucket: String,
    pub key: String,
    /// `ObjectCreated:Put`, `ObjectRemoved:Delete`, ...
    pub name: String,
    pub size: Option<i64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub sequencer: String,
    pub request_id: String,
    pub event_time: String,
}

/// One destination of a configuration, flattened.
struct Destination<'a> {
    /// The configuration's ARN member: `CloudFunction`, `Queue`, `Topic`.
    kind: &'static str,
    id: Option<&'a str>,
    arn: &'a str,
    events: Vec<&'a str>,
    filter: Option<&'a NotificationConfigurationFilter>,
}

fn destinations(config: &NotificationConfiguration) -> Vec<Destination<'_>> {
    let mut out = Vec::new();
    for c in config.lambda_function_configurations.iter().flatten() {
        out.push(Destination {
            kind: "CloudFunction",
            id: c.id.as_deref(),
            arn: &c.lambda_function_arn,
            events: c.events.iter().map(AsRef::as_ref).collect(),
            filter: c.filter.as_ref(),
        });
    }
    for c in config.queue_configurations.iter().flatten() {
        out.push(Destination {
            kind: "Queue",
            id: c.id.as_deref(),
            arn: &c.queue_arn,
            events: c.events.iter().map(AsRef::as_ref).collect(),
            filter: c.filter.as_ref(),
        });
    }
    for c in config.topic_configurations.iter().flatten() {
        out.push(Destination {
            kind: "Topic",
            id: c.id.as_deref(),
            arn: &c.topic_arn,
            events: c.events.iter().map(AsRef::as_ref).collect(),
            filter: c.filter.as_ref(),
        });
    }
    out
}

fn filter_rules(filter: Option<&NotificationConfigurationFilter>) -> Vec<(String, String)> {
    filter
        .and_then(|f| f.key.as_ref())
        .and_then(|k| k.filter_rules.as_ref())
        .map(|rules| {
            rules
                .iter()
                .map(|r| {
                    (
                        r.name
                            .as_ref()
                            .map(|n| n.as_str().to_string())
                            .unwrap_or_default(),
                        r.value.clone().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a configured event name (`s3:ObjectCreated:*`) covers an
/// event (`ObjectCreated:Put`).
pub fn event_matches(configured: &str, name: &str) -> bool {
    let full = format!("s3:{name}");
    match configured.strip_suffix('*') {
        Some(prefix) => full.starts_with(prefix),
        None => configured == full,
    }
}

fn key_matches(rules: &[(String, String)], key: &str) -> bool {
    rules.iter().all(|(name, value)| {
        if name.eq_ignore_ascii_case("prefix") {
            key.starts_with(value.as_str())
        } else {
            key.ends_with(value.as_str())
        }
    })
}

/// Whether two configured event names (`s3:ObjectCreated:*`,
/// `s3:ObjectCreated:Put`) cover a common event.
fn events_overlap(a: &str, b: &str) -> bool {
    let covers = |wide: &str, narrow: &str| match wide.strip_suffix('*') {
        Some(prefix) => narrow.starts_with(prefix),
        None => wide == narrow,
    };
    covers(a, b) || covers(b, a)
}

/// Whether some key passes both filters: each prefix starts the other,
/// each suffix ends the other (a missing rule is the empty string).
fn filters_overlap(a: &[(String, String)], b: &[(String, String)]) -> bool {
    let rule = |rules: &[(String, String)], name: &str| {
        rules
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (pa, pb) = (rule(a, "prefix"), rule(b, "prefix"));
    let (sa, sb) = (rule(a, "suffix"), rule(b, "suffix"));
    (pa.starts_with(&pb) || pb.starts_with(&pa)) && (sa.ends_with(&sb) || sb.ends_with(&sa))
}

/// AWS refuses two configurations that would both take one event for one
/// key: "Configurations overlap" when neither has a filter, "ambiguously
/// defined" when their filters overlap.
fn check_overlaps(all: &[Destination<'_>]) -> Result<(), S3Error> {
    for (i, a) in all.iter().enumerate() {
        for b in all.iter().skip(i + 1) {
            let shared = a
                .events
                .iter()
                .any(|ea| b.events.iter().any(|eb| events_overlap(ea, eb)));
            if !shared {
                continue;
            }
            let (ra, rb) = (filter_rules(a.filter), filter_rules(b.filter));
            if ra.is_empty() && rb.is_empty() {
                return Err(invalid_argument(
                    "Configurations overlap. Configurations on the same bucket cannot share a common event type.",
                ));
            }
            if filters_overlap(&ra, &rb) {
                return Err(invalid_argument(
                    "Configuration is ambiguously defined. Cannot have overlapping suffixes in two rules if the prefixes are overlapping for the same event type.",
                ));
            }
        }
    }
    Ok(())
}

fn invalid_argument(message: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, message.to_string())
}

/// Delivers notifications for buckets.
pub struct Notifier {
    sinks: Arc<EventSinks>,
    events: Arc<dyn ServiceEvents>,
}

impl Notifier {
    pub fn new(sinks: Arc<EventSinks>, events: Arc<dyn ServiceEvents>) -> Notifier {
        Notifier { sinks, events }
    }

    /// Checks a configuration and its destinations as AWS does, sending
    /// each queue and topic the `s3:TestEvent`.
    pub async fn validate(
        &self,
        account: &str,
        region: &str,
        bucket: &str,
        config: &NotificationConfiguration,
        skip_destinations: bool,
    ) -> Result<(), S3Error> {
        let all = destinations(config);
        for d in &all {
            if d.events.is_empty() {
                return Err(S3Error::with_message(
                    S3ErrorCode::MalformedXML,
                    "The XML you provided was not well-formed or did not validate against our published schema",
                ));
            }
            if let Some(bad) = d.events.iter().find(|e| !EVENT_NAMES.contains(e)) {
                tracing::debug!(event = bad, "unsupported notification event");
                return Err(invalid_argument(
                    "The event is not supported for notifications",
                ));
            }
            for (name, _) in filter_rules(d.filter) {
                if !name.eq_ignore_ascii_case("prefix") && !name.eq_ignore_ascii_case("suffix") {
                    return Err(with_members(
                        invalid_argument("filter rule name must be either prefix or suffix"),
                        &[
                            ("ArgumentName", "FilterRule.Name"),
                            ("ArgumentValue", &name),
                        ],
                    ));
                }
            }
            if !matches!(arn_service(d.arn), Some("lambda" | "sqs" | "sns"))
                || d.arn.split(':').count() < 6
            {
                return Err(with_members(
                    invalid_argument("The ARN could not be parsed"),
                    &[("ArgumentName", d.kind), ("ArgumentValue", d.arn)],
                ));
            }
        }
        check_overlaps(&all)?;
        if skip_destinations {
            return Ok(());
        }
        let mut failures = Vec::new();
        for d in &all {
            let outcome = match arn_service(d.arn) {
                Some("lambda") => self
                    .events
                    .authorize(&self.service_event(account, bucket, d.arn, Bytes::new()))
                    .await
                    .map_err(|e| match e {
                        ServiceEventError::FunctionNotFound(_)
                        | ServiceEventError::InvalidArn(_) => {
                            format!("The destination function does not exist [{}]", d.arn)
                        }
                        _ => format!("Not authorized to invoke function [{}]", d.arn),
                    }),
                Some(service) => {
                    let test = test_event(bucket);
                    let source = format!("arn:aws:s3:::{bucket}");
                    self.sinks
                        .deliver_as(account, region, d.arn, test, origin(account, &source))
                        .await
                        .map_err(|e| match e {
                            DeliveryError::Denied(_) => format!(
                                "Permissions on the destination {} do not allow S3 to publish notifications from this bucket",
                                if service == "sqs" { "queue" } else { "topic" }
                            ),
                            _ if service == "sqs" => {
                                "The destination queue does not exist".to_string()
                            }
                            _ => "The destination topic does not exist".to_string(),
                        })
                }
                None => Err("The ARN could not be parsed".to_string()),
            };
            if let Err(reason) = outcome {
                tracing::info!(
                    destination = d.arn,
                    reason,
                    "notification destination refused"
                );
                let name = if arn_service(d.arn) == Some("lambda") {
                    format!("{}, null", d.arn)
                } else {
                    d.arn.to_string()
                };
                failures.push((name, reason));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            let members: Vec<(String, &str)> = failures
                .iter()
                .enumerate()
                .flat_map(|(i, (name, reason))| {
                    [
                        (format!("ArgumentName{}", i + 1), name.as_str()),
                        (format!("ArgumentValue{}", i + 1), reason.as_str()),
                    ]
                })
                .collect();
            let members: Vec<(&str, &str)> =
                members.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            Err(with_members(
                invalid_argument("Unable to validate the following destination configurations"),
                &members,
            ))
        }
    }

    fn service_event(
        &self,
        account: &str,
        bucket: &str,
        arn: &str,
        payload: Bytes,
    ) -> ServiceEvent {
        ServiceEvent {
            function_arn: arn.to_string(),
            principal: PRINCIPAL.to_string(),
            source_arn: Some(format!("arn:aws:s3:::{bucket}")),
            source_account: Some(account.to_string()),
            payload,
            trace_header: None,
        }
    }

    /// Sends `event` to every destination of `config` it matches, and to
    /// the account's default event bus when the bucket has EventBridge
    /// enabled. Answers after each delivery is durable; failures are
    /// logged (as AWS drops a notification whose destination went away).
    pub async fn notify(&self, config: &NotificationConfiguration, event: &ObjectEvent) {
        if config.event_bridge_configuration.is_some() {
            if let Some(bridge) = bridge_event(event) {
                if let Err(error) = self.sinks.emit(bridge).await {
                    tracing::warn!(%error, bucket = event.bucket, "S3 event not put on the bus");
                }
            }
        }
        for d in destinations(config) {
            if !d.events.iter().any(|e| event_matches(e, &event.name)) {
                continue;
            }
            if !key_matches(&filter_rules(d.filter), &event.key) {
                continue;
            }
            let record = Bytes::from(record(event, d.id.unwrap_or_default()).to_string());
            let delivered = match arn_service(d.arn) {
                Some("lambda") => self
                    .events
                    .invoke_event(self.service_event(&event.account, &event.bucket, d.arn, record))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                _ => {
                    let source = format!("arn:aws:s3:::{}", event.bucket);
                    self.sinks
                        .deliver_as(
                            &event.account,
                            &event.region,
                            d.arn,
                            record,
                            origin(&event.account, &source),
                        )
                        .await
                        .map_err(|e| e.to_string())
                }
            };
            if let Err(error) = delivered {
                tracing::warn!(destination = d.arn, error, "S3 notification not delivered");
            }
        }
    }
}

/// The event record S3 sends (version 2.1).
pub fn record(event: &ObjectEvent, configuration_id: &str) -> serde_json::Value {
    let mut object = json!({
        "key": form_encode(&event.key),
        "sequencer": event.sequencer,
    });
    if let Some(size) = event.size {
        object["size"] = json!(size);
    }
    if let Some(etag) = &event.etag {
        object["eTag"] = json!(etag);
    }
    if let Some(version) = event.version_id.as_ref().filter(|v| *v != "null") {
        object["versionId"] = json!(version);
    }
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": event.region,
        "eventTime": event.event_time,
        "eventName": event.name,
        "userIdentity": {"principalId": format!("AWS:{}", event.account)},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": event.request_id,
            "x-amz-id-2": event.request_id,
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": event.bucket,
                "ownerIdentity": {"principalId": event.account},
                "arn": format!("arn:aws:s3:::{}", event.bucket),
            },
            "object": object,
        }
    }]})
}

/// The event S3 puts on the default bus for a bucket with EventBridge
/// enabled (`source: aws.s3`); none for kinds EventBridge does not get.
pub fn bridge_event(event: &ObjectEvent) -> Option<AwsServiceEvent> {
    let (detail_type, reason, deletion) = match event.name.as_str() {
        "ObjectCreated:Put" => ("Object Created", "PutObject", None),
        "ObjectCreated:Post" => ("Object Created", "POST Object", None),
        "ObjectCreated:Copy" => ("Object Created", "CopyObject", None),
        "ObjectCreated:CompleteMultipartUpload" => {
            ("Object Created", "CompleteMultipartUpload", None)
        }
        "ObjectRemoved:Delete" => (
            "Object Deleted",
            "DeleteObject",
            Some("Permanently Deleted"),
        ),
        "ObjectRemoved:DeleteMarkerCreated" => (
            "Object Deleted",
            "DeleteObject",
            Some("Delete Marker Created"),
        ),
        _ => return None,
    };
    let mut object = json!({"key": event.key, "sequencer": event.sequencer});
    if let Some(size) = event.size {
        object["size"] = json!(size);
    }
    if let Some(etag) = &event.etag {
        object["etag"] = json!(etag);
    }
    if let Some(version) = event.version_id.as_ref().filter(|v| *v != "null") {
        object["version-id"] = json!(version);
    }
    let mut detail = json!({
        "version": "0",
        "bucket": {"name": event.bucket},
        "object": object,
        "request-id": event.request_id,
        "requester": event.account,
        "source-ip-address": "127.0.0.1",
        "reason": reason,
    });
    if let Some(deletion) = deletion {
        detail["deletion-type"] = json!(deletion);
    }
    Some(AwsServiceEvent {
        account: event.account.clone(),
        region: event.region.clone(),
        source: "aws.s3".to_string(),
        detail_type: detail_type.to_string(),
        resources: vec![format!("arn:aws:s3:::{}", event.bucket)],
        detail,
    })
}

fn test_event(bucket: &str) -> Bytes {
    let request_id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    Bytes::from(
        json!({
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "Bucket": bucket,
            "RequestId": request_id,
            "HostId": request_id,
        })
        .to_string(),
    )
}

/// S3 as the publisher an SNS topic's policy must admit.
fn origin<'a>(account: &'a str, bucket_arn: &'a str) -> ServiceOrigin<'a> {
    ServiceOrigin {
        principal: PRINCIPAL,
        source_arn: bucket_arn,
        source_account: account,
        source_owner: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_their_kinds() {
        assert!(event_matches("s3:ObjectCreated:*", "ObjectCreated:Put"));
        assert!(event_matches("s3:ObjectCreated:Put", "ObjectCreated:Put"));
        assert!(!event_matches("s3:ObjectCreated:Copy", "ObjectCreated:Put"));
        assert!(!event_matches("s3:ObjectRemoved:*", "ObjectCreated:Put"));
    }

    #[test]
    fn prefix_and_suffix_must_both_hold() {
        let rules = vec![
            ("Prefix".to_string(), "uploads/".to_string()),
            ("Suffix".to_string(), ".jpg".to_string()),
        ];
        assert!(key_matches(&rules, "uploads/a.jpg"));
        assert!(!key_matches(&rules, "uploads/a.txt"));
        assert!(!key_matches(&rules, "other/a.jpg"));
    }

    #[test]
    fn overlapping_configurations_are_refused() {
        let rules = |p: &str, s: &str| {
            let mut out = Vec::new();
            if !p.is_empty() {
                out.push(("Prefix".to_string(), p.to_string()));
            }
            if !s.is_empty() {
                out.push(("Suffix".to_string(), s.to_string()));
            }
            out
        };
        assert!(events_overlap("s3:ObjectCreated:*", "s3:ObjectCreated:Put"));
        assert!(events_overlap("s3:ObjectCreated:Put", "s3:ObjectCreated:*"));
        assert!(!events_overlap(
            "s3:ObjectCreated:Put",
            "s3:ObjectCreated:Copy"
        ));
        assert!(!events_overlap("s3:ObjectCreated:*", "s3:ObjectRemoved:*"));
        assert!(filters_overlap(&rules("a/", ""), &rules("a/b", "")));
        assert!(filters_overlap(&rules("", ".jpg"), &rules("a/", "")));
        assert!(!filters_overlap(&rules("a/", ""), &rules("b/", "")));
        assert!(!filters_overlap(&rules("", ".jpg"), &rules("", ".png")));
        assert!(filters_overlap(&rules("", ".jpg"), &rules("", "b.jpg")));
    }

    fn event(name: &str) -> ObjectEvent {
        ObjectEvent {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            bucket: "b".into(),
            key: "uploads/my photo.jpg".into(),
            name: name.into(),
            size: Some(3),
            etag: Some("abc".into()),
            version_id: Some("null".into()),
            sequencer: "0000000000000001".into(),
            request_id: "R".into(),
            event_time: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn eventbridge_events_name_their_reason_and_keep_keys_unencoded() {
        let created = bridge_event(&event("ObjectCreated:CompleteMultipartUpload")).unwrap();
        assert_eq!(created.source, "aws.s3");
        assert_eq!(created.detail_type, "Object Created");
        assert_eq!(created.resources, vec!["arn:aws:s3:::b".to_string()]);
        assert_eq!(created.detail["reason"], "CompleteMultipartUpload");
        assert_eq!(created.detail["object"]["key"], "uploads/my photo.jpg");
        assert_eq!(created.detail["object"]["etag"], "abc");
        assert!(created.detail["object"].get("version-id").is_none());
        let mut marker = event("ObjectRemoved:DeleteMarkerCreated");
        marker.version_id = Some("v2".into());
        let deleted = bridge_event(&marker).unwrap();
        assert_eq!(deleted.detail_type, "Object Deleted");
        assert_eq!(deleted.detail["deletion-type"], "Delete Marker Created");
        assert_eq!(deleted.detail["object"]["version-id"], "v2");
        assert!(bridge_event(&event("ObjectTagging:Put")).is_none());
    }

    #[test]
    fn records_are_version_2_1_with_encoded_keys() {
        let event = ObjectEvent {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            bucket: "b".into(),
            key: "uploads/my photo.jpg".into(),
            name: "ObjectCreated:Put".into(),
            size: Some(3),
            etag: Some("abc".into()),
            version_id: Some("null".into()),
            sequencer: "0000000000000001".into(),
            request_id: "R".into(),
            event_time: "2026-01-01T00:00:00.000Z".into(),
        };
        let r = record(&event, "cfg");
        let rec = &r["Records"][0];
        assert_eq!(rec["eventVersion"], "2.1");
        assert_eq!(rec["s3"]["object"]["key"], "uploads/my+photo.jpg");
        assert_eq!(rec["s3"]["object"]["size"], 3);
        assert_eq!(rec["s3"]["object"]["eTag"], "abc");
        assert!(rec["s3"]["object"].get("versionId").is_none());
        assert_eq!(rec["s3"]["bucket"]["arn"], "arn:aws:s3:::b");
        assert_eq!(rec["s3"]["configurationId"], "cfg");
    }
}
