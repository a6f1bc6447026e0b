//! Asynchronous invocation settings of one function, version or alias
//! (`PutFunctionEventInvokeConfig`): how often a failed event is retried,
//! how old it may grow, and where its outcome is sent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// AWS's default number of retries after a function error (0–2).
pub const DEFAULT_MAXIMUM_RETRY_ATTEMPTS: u32 = 2;
/// AWS's default and largest maximum event age, in seconds (60–21600).
pub const DEFAULT_MAXIMUM_EVENT_AGE_SECONDS: u32 = 21_600;
/// The smallest maximum event age AWS accepts, in seconds.
pub const MINIMUM_EVENT_AGE_SECONDS: u32 = 60;

/// One `EventInvokeConfig` as the user set it. `None` members were not
/// given; AWS then applies its defaults and omits them from the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EventInvokeConfig {
    pub maximum_retry_attempts: Option<u32>,
    pub maximum_event_age_seconds: Option<u32>,
    /// `DestinationConfig.OnSuccess.Destination`.
    pub on_success: Option<String>,
    /// `DestinationConfig.OnFailure.Destination`.
    pub on_failure: Option<String>,
    pub last_modified: DateTime<Utc>,
}

impl EventInvokeConfig {
    /// Retries after a function error or timeout, with AWS's default.
    pub fn retries(&self) -> u32 {
        self.maximum_retry_attempts
            .unwrap_or(DEFAULT_MAXIMUM_RETRY_ATTEMPTS)
    }

    /// How old an event may grow before it is dropped, with AWS's default.
    pub fn max_event_age_seconds(&self) -> u32 {
        self.maximum_event_age_seconds
            .unwrap_or(DEFAULT_MAXIMUM_EVENT_AGE_SECONDS)
    }
}
