//! What is particular to stream sources (DynamoDB Streams): their members
//! and AWS's rules for them, the pollers' view of a stream mapping, and
//! where its checkpoints are kept.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use strato_engine::async_invoke::arn_service;
use strato_engine::event_source::{
    CheckpointError, Checkpoints, PollerSpec, ShardPosition, StreamPollerSpec,
};
use strato_model::error::ValidationErrors;
use strato_model::event_source_mapping::{
    EventSourceMapping, StreamSettings, MAX_PARALLELIZATION_FACTOR, MAX_RECORD_AGE_SECONDS,
    MAX_RETRY_ATTEMPTS, MIN_RECORD_AGE_SECONDS,
};
use strato_model::AwsError;
use strato_store::{DocumentKey, Store, StoreError};

use crate::lambda::unsupported;

/// The store document kind of a stream mapping's checkpoints (id: the
/// mapping's UUID).
pub const CHECKPOINT_KIND: &str = "lambda-event-source-mapping-checkpoint";
/// `TumblingWindowInSeconds` is 0–900.
const MAX_TUMBLING_WINDOW_SECONDS: u32 = 900;
const STARTING_POSITIONS: [&str; 3] = ["LATEST", "AT_TIMESTAMP", "TRIM_HORIZON"];

/// The stream members of a Create or Update request.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamMembers {
    pub(super) parallelization_factor: Option<i64>,
    pub(super) destination_config: Option<DestinationConfigRequest>,
    pub(super) maximum_record_age_in_seconds: Option<i64>,
    pub(super) bisect_batch_on_function_error: Option<bool>,
    pub(super) maximum_retry_attempts: Option<i64>,
    pub(super) tumbling_window_in_seconds: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DestinationConfigRequest {
    on_success: Option<Value>,
    on_failure: Option<OnFailureRequest>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct OnFailureRequest {
    destination: Option<String>,
}

impl StreamMembers {
    /// The members given, by their request names (an SQS mapping refuses
    /// each).
    pub(super) fn given(&self) -> Option<&'static str> {
        [
            (
                self.parallelization_factor.is_some(),
                "ParallelizationFactor",
            ),
            (self.destination_config.is_some(), "DestinationConfig"),
            (
                self.maximum_record_age_in_seconds.is_some(),
                "MaximumRecordAgeInSeconds",
            ),
            (
                self.bisect_batch_on_function_error.is_some(),
                "BisectBatchOnFunctionError",
            ),
            (
                self.maximum_retry_attempts.is_some(),
                "MaximumRetryAttempts",
            ),
            (
                self.tumbling_window_in_seconds.is_some(),
                "TumblingWindowInSeconds",
            ),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }

    /// The members' own constraints, added to the request's other range
    /// failures (one ValidationException names them all).
    pub(super) fn check_ranges(&self, errors: &mut ValidationErrors) {
        if let Some(n) = self.parallelization_factor {
            errors.check_range(n, 1, MAX_PARALLELIZATION_FACTOR, "parallelizationFactor");
        }
        if let Some(n) = self.maximum_retry_attempts {
            errors.check_range(n, -1, i64::from(MAX_RETRY_ATTEMPTS), "maximumRetryAttempts");
        }
        if let Some(n) = self.maximum_record_age_in_seconds {
            errors.check_range(
                n,
                -1,
                i64::from(MAX_RECORD_AGE_SECONDS),
                "maximumRecordAgeInSeconds",
            );
        }
        if let Some(n) = self.tumbling_window_in_seconds {
            errors.check_range(n, 0, MAX_TUMBLING_WINDOW_SECONDS, "tumblingWindowInSeconds");
        }
    }

    /// The rules that apply once the source is known to be a stream.
    pub(super) fn check_for_stream(&self, serves: impl Fn(&str) -> bool) -> Result<(), AwsError> {
        if let Some(age) = self.maximum_record_age_in_seconds {
            if (0..i64::from(MIN_RECORD_AGE_SECONDS)).contains(&age) {
                return Err(AwsError::invalid_parameter(format!(
                    "1 validation error detected: Value '{age}' at 'maximumRecordAgeInSeconds' failed to satisfy constraint: Member must have value greater than or equal to {MIN_RECORD_AGE_SECONDS}"
                )));
            }
        }
        if self.tumbling_window_in_seconds.is_some_and(|n| n > 0) {
            return Err(unsupported("TumblingWindowInSeconds"));
        }
        let Some(config) = &self.destination_config else {
            return Ok(());
        };
        if config.on_success.is_some() {
            return Err(AwsError::invalid_parameter(
                "Unsupported DestinationConfig parameter for given event source mapping type.",
            ));
        }
        if let Some(destination) = on_failure(config) {
            let kind = arn_service(destination);
            if !matches!(kind, Some("sqs" | "sns")) || !serves(destination) {
                return Err(AwsError::invalid_parameter(format!(
                    "The destination ARN {destination} is invalid."
                )));
            }
        }
        Ok(())
    }

    /// Applies the members given to `settings`.
    pub(super) fn apply(&self, settings: &mut StreamSettings) {
        if let Some(n) = self.parallelization_factor {
            settings.parallelization_factor = u32::try_from(n).unwrap_or(1);
        }
        if let Some(n) = self.maximum_record_age_in_seconds {
            settings.maximum_record_age_seconds = n;
        }
        if let Some(n) = self.maximum_retry_attempts {
            settings.maximum_retry_attempts = n;
        }
        if let Some(bisect) = self.bisect_batch_on_function_error {
            settings.bisect_batch_on_function_error = bisect;
        }
        if let Some(config) = &self.destination_config {
            settings.on_failure = on_failure(config).map(str::to_string);
        }
    }
}

/// The OnFailure destination a config names (an empty one is none).
fn on_failure(config: &DestinationConfigRequest) -> Option<&str> {
    config
        .on_failure
        .as_ref()
        .and_then(|f| f.destination.as_deref())
        .filter(|d| !d.is_empty())
}

/// `StartingPosition` of a CreateEventSourceMapping for a stream: required,
/// one of AWS's values, and not `AT_TIMESTAMP` (Kinesis only).
pub(super) fn starting_position(given: Option<&str>, arn: &str) -> Result<String, AwsError> {
    let Some(position) = given else {
        return Err(AwsError::invalid_parameter(
            "1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: Member must not be null.",
        ));
    };
    if position == "AT_TIMESTAMP" {
        return Err(AwsError::invalid_parameter(format!(
            "Unsupported starting position for arn type: {arn}"
        )));
    }
    Ok(position.to_string())
}

/// The enum constraint on `StartingPosition`, checked with the other
/// members' constraints.
pub(super) fn check_starting_position(given: Option<&str>, errors: &mut ValidationErrors) {
    if let Some(position) = given {
        if !STARTING_POSITIONS.contains(&position) {
            errors.push(
                position,
                "startingPosition",
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    STARTING_POSITIONS.join(", ")
                ),
            );
        }
    }
}

/// A new stream mapping's settings: AWS's defaults, then what was given.
pub(super) fn new_settings(starting_position: String, members: &StreamMembers) -> StreamSettings {
    let mut settings = StreamSettings {
        starting_position,
        bisect_batch_on_function_error: false,
        maximum_retry_attempts: -1,
        maximum_record_age_seconds: -1,
        parallelization_factor: 1,
        on_failure: None,
    };
    members.apply(&mut settings);
    settings
}

/// The pollers' view of a stream mapping.
pub(super) fn poller_spec(
    mapping: &EventSourceMapping,
    stream: &StreamSettings,
    base: PollerSpec,
) -> StreamPollerSpec {
    StreamPollerSpec {
        base,
        function_arn: mapping.function_arn(),
        starting_position: if stream.starting_position == "LATEST" {
            ShardPosition::Latest
        } else {
            ShardPosition::TrimHorizon
        },
        bisect_on_error: stream.bisect_batch_on_function_error,
        maximum_retry_attempts: u32::try_from(stream.maximum_retry_attempts).ok(),
        maximum_record_age: u64::try_from(stream.maximum_record_age_seconds)
            .ok()
            .map(Duration::from_secs),
        parallelization: stream.parallelization_factor.max(1) as usize,
        on_failure: stream.on_failure.clone(),
    }
}

/// Stream mappings' checkpoints as store documents, one per mapping.
pub struct StoreCheckpoints(pub Arc<dyn Store>);

impl StoreCheckpoints {
    pub(super) fn key(account: &str, region: &str, uuid: &str) -> DocumentKey {
        DocumentKey::new(account, region, CHECKPOINT_KIND, uuid)
    }
}

fn checkpoint_error(e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError(e.to_string())
}

#[async_trait::async_trait]
impl Checkpoints for StoreCheckpoints {
    async fn load(
        &self,
        spec: &PollerSpec,
    ) -> Result<HashMap<String, ShardPosition>, CheckpointError> {
        let key = Self::key(&spec.account, &spec.region, &spec.uuid);
        match self.0.get_document(&key).await.map_err(checkpoint_error)? {
            Some(doc) => serde_json::from_value(doc).map_err(checkpoint_error),
            None => Ok(HashMap::new()),
        }
    }

    async fn save(
        &self,
        spec: &PollerSpec,
        shards: &HashMap<String, ShardPosition>,
    ) -> Result<(), CheckpointError> {
        let key = Self::key(&spec.account, &spec.region, &spec.uuid);
        let doc = serde_json::to_value(shards)
            .map_err(StoreError::from)
            .map_err(checkpoint_error)?;
        self.0
            .put_document(&key, &doc)
            .await
            .map_err(checkpoint_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_model::ErrorCode;

    #[test]
    fn stream_ranges_are_one_validation_exception() {
        let members = StreamMembers {
            parallelization_factor: Some(11),
            maximum_retry_attempts: Some(-2),
            maximum_record_age_in_seconds: Some(604_801),
            ..StreamMembers::default()
        };
        let mut errors = ValidationErrors::new();
        members.check_ranges(&mut errors);
        let e = errors
            .into_result(ErrorCode::ValidationException)
            .unwrap_err();
        assert_eq!(
            e.message,
            "3 validation errors detected: Value '11' at 'parallelizationFactor' failed to satisfy constraint: Member must have value less than or equal to 10; Value '-2' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value greater than or equal to -1; Value '604801' at 'maximumRecordAgeInSeconds' failed to satisfy constraint: Member must have value less than or equal to 604800"
        );
    }

    #[test]
    fn starting_position_is_required_and_not_at_timestamp() {
        let arn = "arn:aws:dynamodb:us-east-1:111111111111:table/t/stream/x";
        let e = starting_position(None, arn).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValueException);
        assert!(e.message.contains("Value null at 'startingPosition'"));
        let e = starting_position(Some("AT_TIMESTAMP"), arn).unwrap_err();
        assert_eq!(
            e.message,
            format!("Unsupported starting position for arn type: {arn}")
        );
        let mut errors = ValidationErrors::new();
        check_starting_position(Some("invalid"), &mut errors);
        assert_eq!(
            errors.into_result(ErrorCode::ValidationException).unwrap_err().message,
            "1 validation error detected: Value 'invalid' at 'startingPosition' failed to satisfy constraint: Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]"
        );
    }

    #[test]
    fn on_failure_goes_to_a_queue_or_topic() {
        let to = |destination: &str| StreamMembers {
            destination_config: Some(DestinationConfigRequest {
                on_success: None,
                on_failure: Some(OnFailureRequest {
                    destination: Some(destination.into()),
                }),
            }),
            ..StreamMembers::default()
        };
        let ok = to("arn:aws:sqs:us-east-1:111111111111:dlq");
        assert!(ok.check_for_stream(|_| true).is_ok());
        let function = "arn:aws:lambda:us-east-1:111111111111:function:f";
        let e = to(function).check_for_stream(|_| true).unwrap_err();
        assert_eq!(
            e.message,
            format!("The destination ARN {function} is invalid.")
        );
        let young = StreamMembers {
            maximum_record_age_in_seconds: Some(59),
            ..StreamMembers::default()
        };
        assert!(young.check_for_stream(|_| true).is_err());
    }
}
