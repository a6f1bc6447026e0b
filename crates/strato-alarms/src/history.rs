//! Alarm history (DescribeAlarmHistory): StateUpdate, ConfigurationUpdate
//! and Action items with AWS's HistoryData JSON, kept in the Store and
//! kept after the alarm is deleted, as on AWS.

use serde::{Deserialize, Serialize};
use serde_json::json;
use strato_engine::async_invoke::DeliveryError;
use strato_model::wire::Doc;
use strato_store::{DocumentKey, Store, StoreError};

use crate::alarm::{Alarm, AlarmState};
use crate::notify;

const HISTORY_KIND: &str = "cloudwatch-alarm-history";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryItem {
    pub alarm_name: String,
    pub timestamp_ms: i64,
    /// `StateUpdate`, `ConfigurationUpdate` or `Action`.
    pub item_type: String,
    pub summary: String,
    /// HistoryData (JSON text).
    pub data: String,
}

impl HistoryItem {
    pub fn state_update(alarm: &Alarm, old: &AlarmState, now_ms: i64) -> HistoryItem {
        HistoryItem {
            alarm_name: alarm.name.clone(),
            timestamp_ms: now_ms,
            item_type: "StateUpdate".into(),
            summary: format!(
                "Alarm updated from {} to {}",
                old.value.as_str(),
                alarm.state.value.as_str()
            ),
            data: notify::state_update_data(old, &alarm.state).to_string(),
        }
    }

    /// `created`, `updated` or `deleted`.
    pub fn configuration(
        alarm: &Alarm,
        original: Option<&Alarm>,
        what: &str,
        now_ms: i64,
    ) -> HistoryItem {
        let data = match (what, original) {
            ("created", _) => {
                json!({"version": "1.0", "type": "Create", "createdAlarm": alarm.configuration_json()})
            }
            ("deleted", _) => {
                json!({"version": "1.0", "type": "Delete", "deletedAlarm": alarm.configuration_json()})
            }
            (_, Some(original)) => json!({
                "version": "1.0",
                "type": "Update",
                "updatedAlarm": alarm.configuration_json(),
                "originalAlarm": original.configuration_json(),
            }),
            (_, None) => {
                json!({"version": "1.0", "type": "Update", "updatedAlarm": alarm.configuration_json()})
            }
        };
        HistoryItem {
            alarm_name: alarm.name.clone(),
            timestamp_ms: now_ms,
            item_type: "ConfigurationUpdate".into(),
            summary: format!("Alarm \"{}\" {what}", alarm.name),
            data: data.to_string(),
        }
    }

    pub fn action(
        alarm: &Alarm,
        arn: &str,
        message: &str,
        failure: Option<DeliveryError>,
        now_ms: i64,
    ) -> HistoryItem {
        let (summary, data) = match failure {
            None => (
                format!("Successfully executed action {arn}"),
                json!({
                    "actionState": "Succeeded",
                    "stateUpdateTimestamp": alarm.state.updated_ms,
                    "notificationResource": arn,
                    "publishedMessage": message,
                }),
            ),
            // A refusal reads as AWS's: `Failed to execute action {topic}.
            // Received error: "Resource: {alarm} is not authorized ..."`.
            Some(DeliveryError::Denied(reason)) => (
                format!("Failed to execute action {arn}. Received error: \"{reason}\""),
                json!({
                    "actionState": "Failed",
                    "stateUpdateTimestamp": alarm.state.updated_ms,
                    "notificationResource": arn,
                    "error": reason,
                }),
            ),
            Some(e) => (
                format!("Failed to execute action {arn}"),
                json!({
                    "actionState": "Failed",
                    "stateUpdateTimestamp": alarm.state.updated_ms,
                    "notificationResource": arn,
                    "error": e.to_string(),
                }),
            ),
        };
        HistoryItem {
            alarm_name: alarm.name.clone(),
            timestamp_ms: now_ms,
            item_type: "Action".into(),
            summary,
            data: data.to_string(),
        }
    }

    pub fn to_doc(&self) -> Doc {
        Doc::map()
            .with("AlarmName", self.alarm_name.as_str())
            .with("AlarmType", "MetricAlarm")
            .with("HistoryData", self.data.as_str())
            .with("HistoryItemType", self.item_type.as_str())
            .with("HistorySummary", self.summary.as_str())
            .with(
                "Timestamp",
                Doc::Timestamp(self.timestamp_ms as f64 / 1000.0),
            )
    }
}

/// Ids sort by alarm, then time; the separator cannot be in an alarm name
/// CloudWatch accepts (names are printable).
fn prefix(alarm_name: &str) -> String {
    format!("{alarm_name}\u{1}")
}

/// Orders the items appended within one millisecond (a state update and the
/// action it triggers) as they were appended; the uuid keeps ids unique across
/// servers sharing a store.
static APPEND_SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub async fn append(
    store: &dyn Store,
    alarm: &Alarm,
    item: &HistoryItem,
) -> Result<(), StoreError> {
    let sequence = APPEND_SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!(
        "{}{:015}-{:020}-{}",
        prefix(&alarm.name),
        item.timestamp_ms,
        sequence,
        uuid::Uuid::new_v4()
    );
    let doc = serde_json::to_value(item)?;
    store
        .put_document(
            &DocumentKey::new(&alarm.account, &alarm.region, HISTORY_KIND, id),
            &doc,
        )
        .await
}

/// The history of an account's alarm (or all its alarms), oldest first.
pub async fn list(
    store: &dyn Store,
    account: &str,
    region: &str,
    alarm_name: Option<&str>,
) -> Result<Vec<HistoryItem>, StoreError> {
    let id_prefix = alarm_name.map(prefix).unwrap_or_default();
    let docs = store
        .list_documents(account, region, HISTORY_KIND, &id_prefix, None, 1_000_000)
        .await?;
    let mut items: Vec<HistoryItem> = docs
        .into_iter()
        .filter_map(|d| serde_json::from_value(d.doc).ok())
        .collect();
    items.sort_by_key(|i| i.timestamp_ms);
    Ok(items)
}
