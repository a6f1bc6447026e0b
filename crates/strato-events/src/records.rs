//! What EventBridge and Scheduler keep: buses, rules with their targets,
//! schedules and schedule groups, as documents in the store. Targets keep
//! AWS's member names (PascalCase) so they round-trip through the wire.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const BUS_KIND: &str = "events-bus";
pub const RULE_KIND: &str = "events-rule";
pub const SCHEDULE_KIND: &str = "scheduler-schedule";
pub const GROUP_KIND: &str = "scheduler-group";
pub const DEFAULT_BUS: &str = "default";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BusRecord {
    pub account: String,
    pub region: String,
    pub name: String,
    pub description: Option<String>,
    /// Epoch seconds.
    pub created: i64,
    pub tags: BTreeMap<String, String>,
}

impl BusRecord {
    pub fn arn(&self) -> String {
        bus_arn(&self.region, &self.account, &self.name)
    }
}

pub fn bus_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{account}:event-bus/{name}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleRecord {
    pub account: String,
    pub region: String,
    pub bus: String,
    pub name: String,
    pub event_pattern: Option<String>,
    pub schedule_expression: Option<String>,
    /// `ENABLED` or `DISABLED`.
    pub state: String,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    pub targets: Vec<Target>,
    pub tags: BTreeMap<String, String>,
    /// A scheduled rule's last firing (epoch ms), so a restart fires a
    /// missed schedule once, not once per missed tick.
    pub last_fired_ms: i64,
}

impl RuleRecord {
    pub fn arn(&self) -> String {
        rule_arn(&self.region, &self.account, &self.bus, &self.name)
    }

    pub fn id(&self) -> String {
        format!("{}/{}", self.bus, self.name)
    }

    pub fn enabled(&self) -> bool {
        self.state != "DISABLED"
    }
}

/// Rules of the default bus have no bus in their ARN.
pub fn rule_arn(region: &str, account: &str, bus: &str, name: &str) -> String {
    if bus == DEFAULT_BUS {
        format!("arn:aws:events:{region}:{account}:rule/{name}")
    } else {
        format!("arn:aws:events:{region}:{account}:rule/{bus}/{name}")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Target {
    /// Rules' targets have one; a schedule's single target has none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_transformer: Option<InputTransformer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_config: Option<DeadLetterConfig>,
    /// A FIFO queue target's message group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqs_parameters: Option<SqsParameters>,
    /// Members Strato keeps but does not act on (`HttpParameters`, ...).
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Target {
    pub fn new(id: &str, arn: &str) -> Target {
        Target {
            id: id.into(),
            arn: arn.into(),
            role_arn: None,
            input: None,
            input_path: None,
            input_transformer: None,
            retry_policy: None,
            dead_letter_config: None,
            sqs_parameters: None,
            other: serde_json::Map::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InputTransformer {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub input_paths_map: BTreeMap<String, String>,
    pub input_template: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetryPolicy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_retry_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_event_age_in_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SqsParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_group_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetterConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

/// AWS's defaults: 185 retries over at most 24 hours.
pub const DEFAULT_RETRIES: u32 = 185;
pub const DEFAULT_EVENT_AGE_S: u32 = 86_400;

/// An EventBridge Scheduler schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleRecord {
    pub account: String,
    pub region: String,
    pub group: String,
    pub name: String,
    pub expression: String,
    pub timezone: Option<String>,
    pub state: String,
    pub description: Option<String>,
    /// `NONE` or `DELETE`.
    pub action_after_completion: String,
    /// As given (`Mode`, `MaximumWindowInMinutes`).
    pub flexible_time_window: serde_json::Value,
    /// Epoch ms.
    pub start_date_ms: Option<i64>,
    pub end_date_ms: Option<i64>,
    pub target: Target,
    /// Epoch seconds.
    pub created: i64,
    pub modified: i64,
    pub last_fired_ms: i64,
    /// CreateSchedule's `ClientToken`: the same request again answers as
    /// the first did instead of `ConflictException`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

impl ScheduleRecord {
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:scheduler:{}:{}:schedule/{}/{}",
            self.region, self.account, self.group, self.name
        )
    }

    pub fn id(&self) -> String {
        format!("{}/{}", self.group, self.name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupRecord {
    pub account: String,
    pub region: String,
    pub name: String,
    pub created: i64,
    pub tags: BTreeMap<String, String>,
}

impl GroupRecord {
    pub fn arn(&self) -> String {
        group_arn(&self.region, &self.account, &self.name)
    }
}

/// Whether an ARN has a schedule group's shape
/// (`arn:aws[-x]:scheduler:{region}:{12 digits}:schedule-group/{name}`).
pub fn arn_matches_group_pattern(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", partition, "scheduler", region, account, rest] = parts.as_slice() else {
        return false;
    };
    let partition_ok = *partition == "aws"
        || partition
            .strip_prefix("aws-")
            .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()));
    let region_ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let account_ok = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
    let name_ok = rest
        .strip_prefix("schedule-group/")
        .is_some_and(valid_group_name);
    partition_ok && region_ok && account_ok && name_ok
}

/// A schedule group's name: letters, digits, `-`, `_`, `.`.
pub fn valid_group_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn group_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:scheduler:{region}:{account}:schedule-group/{name}")
}
