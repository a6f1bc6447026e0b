//! An event source mapping (`CreateEventSourceMapping`): a queue or stream
//! a function is fed from in batches. Strato supports SQS queues and
//! DynamoDB streams.
//!
//! The record is what the control plane stores and answers with, and what
//! the pollers run from; its wire shape is the `EventSourceMappingConfiguration`
//! AWS answers for the source's kind, whose members appear only when they
//! apply (`FilterCriteria` and `ScalingConfig` only when set; the stream
//! members only for streams).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::arn::function_arn;
use crate::time::epoch_seconds;

/// AWS's default `BatchSize` for SQS sources.
pub const DEFAULT_SQS_BATCH_SIZE: u32 = 10;
/// AWS's default `BatchSize` for stream sources.
pub const DEFAULT_STREAM_BATCH_SIZE: u32 = 100;
/// `ParallelizationFactor` is 1–10.
pub const MAX_PARALLELIZATION_FACTOR: u32 = 10;
/// `MaximumRetryAttempts` is -1 (infinite) to 10 000.
pub const MAX_RETRY_ATTEMPTS: u32 = 10_000;
/// `MaximumRecordAgeInSeconds` is -1 (infinite) or 60 to 604 800.
pub const MIN_RECORD_AGE_SECONDS: u32 = 60;
pub const MAX_RECORD_AGE_SECONDS: u32 = 604_800;
/// Why a stream mapping's state last changed, for every change a user
/// asks for (SQS mappings say [`USER_INITIATED`]).
pub const USER_ACTION: &str = "User action";
/// The largest `BatchSize` of a standard queue.
pub const MAX_SQS_BATCH_SIZE: u32 = 10_000;
/// The largest `BatchSize` of a FIFO queue, and of a standard queue without
/// a batching window.
pub const MAX_UNWINDOWED_BATCH_SIZE: u32 = 10;
/// The longest `MaximumBatchingWindowInSeconds`.
pub const MAX_BATCHING_WINDOW_SECONDS: u32 = 300;
/// `ScalingConfig.MaximumConcurrency` is 2–1000.
pub const MIN_MAXIMUM_CONCURRENCY: u32 = 2;
pub const MAX_MAXIMUM_CONCURRENCY: u32 = 1000;
/// The one `FunctionResponseTypes` value SQS sources accept.
pub const REPORT_BATCH_ITEM_FAILURES: &str = "ReportBatchItemFailures";
/// AWS's quota of filters per mapping.
pub const MAX_FILTERS: usize = 5;
/// Why the state last changed, for every change a user asks for.
pub const USER_INITIATED: &str = "USER_INITIATED";

/// Where a mapping is in its life, in AWS's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MappingState {
    Creating,
    Enabling,
    Enabled,
    Disabling,
    Disabled,
    Updating,
    Deleting,
}

impl MappingState {
    pub fn as_str(self) -> &'static str {
        match self {
            MappingState::Creating => "Creating",
            MappingState::Enabling => "Enabling",
            MappingState::Enabled => "Enabled",
            MappingState::Disabling => "Disabling",
            MappingState::Disabled => "Disabled",
            MappingState::Updating => "Updating",
            MappingState::Deleting => "Deleting",
        }
    }

    /// A state the mapping only passes through; the control plane settles
    /// it (and a restart settles what a previous run left).
    pub fn is_transitional(self) -> bool {
        !matches!(self, MappingState::Enabled | MappingState::Disabled)
    }
}

/// One event source mapping as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSourceMapping {
    pub uuid: String,
    pub account: String,
    pub region: String,
    /// `arn:aws:sqs:{region}:{account}:{queue}`.
    pub event_source_arn: String,
    pub function_name: String,
    /// The version or alias the caller named; `None` for the unqualified
    /// function.
    pub qualifier: Option<String>,
    pub batch_size: u32,
    pub maximum_batching_window_seconds: u32,
    /// `ReportBatchItemFailures` when the function reports partial failures.
    pub function_response_types: Vec<String>,
    /// `ScalingConfig.MaximumConcurrency`, when set.
    pub maximum_concurrency: Option<u32>,
    /// `FilterCriteria.Filters[].Pattern`, as the caller wrote them; `None`
    /// when the mapping has no `FilterCriteria`.
    pub filter_patterns: Option<Vec<String>>,
    /// Whether the user wants it polling (`Enabled`).
    pub enabled: bool,
    pub state: MappingState,
    pub state_transition_reason: String,
    pub last_modified: DateTime<Utc>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The stream members; `None` for an SQS mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamSettings>,
}

/// The members only stream mappings have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSettings {
    /// `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    pub bisect_batch_on_function_error: bool,
    /// -1: until the record expires.
    pub maximum_retry_attempts: i64,
    /// -1: no limit.
    pub maximum_record_age_seconds: i64,
    pub parallelization_factor: u32,
    /// `DestinationConfig.OnFailure.Destination`.
    pub on_failure: Option<String>,
}

impl EventSourceMapping {
    /// `arn:aws:lambda:{region}:{account}:event-source-mapping:{uuid}`.
    pub fn arn(&self) -> String {
        mapping_arn(&self.region, &self.account, &self.uuid)
    }

    /// The function's ARN, qualified when the caller named a version or alias.
    pub fn function_arn(&self) -> String {
        let arn = function_arn(&self.region, &self.account, &self.function_name);
        match &self.qualifier {
            Some(qualifier) => format!("{arn}:{qualifier}"),
            None => arn,
        }
    }

    pub fn reports_batch_item_failures(&self) -> bool {
        self.function_response_types
            .iter()
            .any(|t| t == REPORT_BATCH_ITEM_FAILURES)
    }

    /// The `EventSourceMappingConfiguration` AWS answers for the source
    /// (a stream's `LastProcessingResult` is the pollers' to add).
    pub fn to_wire(&self) -> Value {
        let mut out = json!({
            "UUID": self.uuid,
            "BatchSize": self.batch_size,
            "MaximumBatchingWindowInSeconds": self.maximum_batching_window_seconds,
            "EventSourceArn": self.event_source_arn,
            "EventSourceMappingArn": self.arn(),
            "FunctionArn": self.function_arn(),
            "FunctionResponseTypes": self.function_response_types,
            "LastModified": epoch_seconds(self.last_modified),
            "State": self.state.as_str(),
            "StateTransitionReason": self.state_transition_reason,
        });
        if let Some(patterns) = &self.filter_patterns {
            let filters: Vec<Value> = patterns
                .iter()
                .map(|pattern| json!({ "Pattern": pattern }))
                .collect();
            out["FilterCriteria"] = json!({ "Filters": filters });
        }
        if let Some(maximum) = self.maximum_concurrency {
            out["ScalingConfig"] = json!({ "MaximumConcurrency": maximum });
        }
        if let Some(stream) = &self.stream {
            let on_failure = match &stream.on_failure {
                Some(destination) => json!({ "Destination": destination }),
                None => json!({}),
            };
            out["StartingPosition"] = stream.starting_position.clone().into();
            out["ParallelizationFactor"] = stream.parallelization_factor.into();
            out["BisectBatchOnFunctionError"] = stream.bisect_batch_on_function_error.into();
            out["MaximumRetryAttempts"] = stream.maximum_retry_attempts.into();
            out["MaximumRecordAgeInSeconds"] = stream.maximum_record_age_seconds.into();
            out["TumblingWindowInSeconds"] = 0.into();
            out["DestinationConfig"] = json!({ "OnFailure": on_failure });
        }
        out
    }
}

/// `arn:aws:lambda:{region}:{account}:event-source-mapping:{uuid}`.
pub fn mapping_arn(region: &str, account: &str, uuid: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:event-source-mapping:{uuid}")
}

/// The parts of a DynamoDB stream ARN
/// (`arn:aws:dynamodb:{region}:{account}:table/{table}/stream/{label}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoDbStreamArn<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub table: &'a str,
    pub label: &'a str,
}

impl<'a> DynamoDbStreamArn<'a> {
    /// `None` when `arn` is not a DynamoDB stream ARN.
    pub fn parse(arn: &'a str) -> Option<DynamoDbStreamArn<'a>> {
        let mut parts = arn.splitn(6, ':');
        let (
            Some("arn"),
            Some(partition),
            Some("dynamodb"),
            Some(region),
            Some(account),
            Some(rest),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return None;
        };
        let (table, label) = rest.strip_prefix("table/")?.split_once("/stream/")?;
        let valid = partition.starts_with("aws")
            && !region.is_empty()
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && !table.is_empty()
            && !table.contains('/')
            && !label.is_empty();
        valid.then_some(DynamoDbStreamArn {
            region,
            account,
            table,
            label,
        })
    }
}

/// The parts of an SQS queue ARN (`arn:aws:sqs:{region}:{account}:{name}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsQueueArn<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub name: &'a str,
}

impl<'a> SqsQueueArn<'a> {
    /// `None` when `arn` is not an SQS queue ARN.
    pub fn parse(arn: &'a str) -> Option<SqsQueueArn<'a>> {
        let [_, _, "sqs", region, account, name] = crate::arn::general_arn_parts(arn)? else {
            return None;
        };
        let valid = !region.is_empty()
            && !account.is_empty()
            && !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        valid.then_some(SqsQueueArn {
            region,
            account,
            name,
        })
    }

    pub fn is_fifo(&self) -> bool {
        self.name.ends_with(".fifo")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn mapping() -> EventSourceMapping {
        EventSourceMapping {
            uuid: "0b5d7a8e-1111-2222-3333-444455556666".into(),
            account: "111111111111".into(),
            region: "us-east-1".into(),
            event_source_arn: "arn:aws:sqs:us-east-1:111111111111:jobs".into(),
            function_name: "worker".into(),
            qualifier: None,
            batch_size: 10,
            maximum_batching_window_seconds: 0,
            function_response_types: vec![],
            maximum_concurrency: None,
            filter_patterns: None,
            enabled: true,
            state: MappingState::Enabled,
            state_transition_reason: USER_INITIATED.into(),
            last_modified: Utc.with_ymd_and_hms(2024, 1, 31, 12, 0, 0).unwrap(),
            tags: BTreeMap::new(),
            stream: None,
        }
    }

    #[test]
    fn wire_shape_has_aws_members_and_omits_unset_ones() {
        let wire = mapping().to_wire();
        let mut keys: Vec<&str> = wire
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "BatchSize",
                "EventSourceArn",
                "EventSourceMappingArn",
                "FunctionArn",
                "FunctionResponseTypes",
                "LastModified",
                "MaximumBatchingWindowInSeconds",
                "State",
                "StateTransitionReason",
                "UUID"
            ]
        );
        assert_eq!(
            wire["EventSourceMappingArn"],
            "arn:aws:lambda:us-east-1:111111111111:event-source-mapping:0b5d7a8e-1111-2222-3333-444455556666"
        );
        assert_eq!(wire["LastModified"], 1706702400.0);
        assert_eq!(wire["BatchSize"], 10);
    }

    #[test]
    fn wire_shape_carries_filters_scaling_and_qualified_function() {
        let mut m = mapping();
        m.qualifier = Some("live".into());
        m.filter_patterns = Some(vec![r#"{"body":{"a":[1]}}"#.into()]);
        m.maximum_concurrency = Some(2);
        let wire = m.to_wire();
        assert_eq!(
            wire["FunctionArn"],
            "arn:aws:lambda:us-east-1:111111111111:function:worker:live"
        );
        assert_eq!(
            wire["FilterCriteria"]["Filters"][0]["Pattern"],
            r#"{"body":{"a":[1]}}"#
        );
        assert_eq!(wire["ScalingConfig"]["MaximumConcurrency"], 2);
    }

    #[test]
    fn stream_mappings_carry_the_stream_members() {
        let mut m = mapping();
        m.event_source_arn =
            "arn:aws:dynamodb:us-east-1:111111111111:table/t/stream/2024-01-01T00:00:00.000".into();
        m.stream = Some(StreamSettings {
            starting_position: "TRIM_HORIZON".into(),
            bisect_batch_on_function_error: false,
            maximum_retry_attempts: -1,
            maximum_record_age_seconds: -1,
            parallelization_factor: 1,
            on_failure: None,
        });
        let wire = m.to_wire();
        assert_eq!(wire["StartingPosition"], "TRIM_HORIZON");
        assert_eq!(wire["MaximumRetryAttempts"], -1);
        assert_eq!(wire["TumblingWindowInSeconds"], 0);
        assert_eq!(wire["DestinationConfig"], json!({"OnFailure": {}}));
        let arn = DynamoDbStreamArn::parse(&m.event_source_arn).unwrap();
        assert_eq!((arn.table, arn.label), ("t", "2024-01-01T00:00:00.000"));
        assert!(
            DynamoDbStreamArn::parse("arn:aws:dynamodb:us-east-1:111111111111:table/t").is_none()
        );
    }

    #[test]
    fn sqs_arns_parse_and_others_do_not() {
        let arn = SqsQueueArn::parse("arn:aws:sqs:us-east-1:111111111111:jobs.fifo").unwrap();
        assert_eq!(arn.name, "jobs.fifo");
        assert!(arn.is_fifo());
        assert!(SqsQueueArn::parse("arn:aws:sns:us-east-1:111111111111:jobs").is_none());
        assert!(SqsQueueArn::parse("arn:aws:sqs:us-east-1:1111:jobs").is_none());
        assert!(SqsQueueArn::parse("jobs").is_none());
    }
}
