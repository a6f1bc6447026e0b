//! The alarm operations of `GraniteServiceVersion20100801`.

use strato_model::wire::{Doc, OpResult, ServiceError};

use crate::alarm::{tags_of, Alarm, StateValue, STATE_VALUES};
use crate::error::{
    combination, internal, invalid_token, invalid_value, missing, not_found, not_in_enum, required,
    validation,
};
use crate::history::{self, HistoryItem};
use crate::{now_ms, AlarmKey, AlarmService, Entry, StateChange};

pub const OPERATIONS: [&str; 11] = [
    "PutMetricAlarm",
    "DescribeAlarms",
    "DescribeAlarmsForMetric",
    "DescribeAlarmHistory",
    "DeleteAlarms",
    "SetAlarmState",
    "EnableAlarmActions",
    "DisableAlarmActions",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

pub async fn dispatch(
    service: &AlarmService,
    account: &str,
    region: &str,
    op: &str,
    input: Doc,
) -> Option<OpResult> {
    let scope = Scope {
        service,
        account,
        region,
    };
    Some(match op {
        "PutMetricAlarm" => scope.put_metric_alarm(&input).await,
        "DescribeAlarms" => scope.describe_alarms(&input),
        "DescribeAlarmsForMetric" => scope.describe_alarms_for_metric(&input),
        "DescribeAlarmHistory" => scope.describe_alarm_history(&input).await,
        "DeleteAlarms" => scope.delete_alarms(&input).await,
        "SetAlarmState" => scope.set_alarm_state(&input).await,
        "EnableAlarmActions" => scope.set_actions_enabled(&input, true).await,
        "DisableAlarmActions" => scope.set_actions_enabled(&input, false).await,
        "TagResource" => scope.tag_resource(&input).await,
        "UntagResource" => scope.untag_resource(&input).await,
        "ListTagsForResource" => scope.list_tags(&input),
        _ => return None,
    })
}

struct Scope<'a> {
    service: &'a AlarmService,
    account: &'a str,
    region: &'a str,
}

fn alarm_names(input: &Doc) -> Result<Vec<String>, ServiceError> {
    let names = Doc::strings(input.get("AlarmNames"));
    if names.len() > 100 {
        return Err(validation(
            "1 validation error detected: Value at 'alarmNames' failed to satisfy constraint: Member must have length less than or equal to 100",
        ));
    }
    Ok(names)
}

/// MaxRecords within `1..=limit`, `default` when absent.
fn max_records(input: &Doc, default: usize, limit: i64) -> Result<usize, ServiceError> {
    match input.get("MaxRecords").and_then(Doc::as_i64) {
        None => Ok(default),
        Some(n) if (1..=limit).contains(&n) => Ok(usize::try_from(n).unwrap_or(default)),
        Some(n) => Err(validation(format!(
            "1 validation error detected: Value '{n}' at 'maxRecords' failed to satisfy constraint: Member must have value {}",
            if n < 1 { "greater than or equal to 1".to_string() } else { format!("less than or equal to {limit}") }
        ))),
    }
}

fn offset(input: &Doc) -> Result<usize, ServiceError> {
    match input.get("NextToken").and_then(Doc::as_str) {
        None => Ok(0),
        Some(t) => t.parse().map_err(|_| invalid_token()),
    }
}

/// A page of `items` from `start`, with the token of the next page.
fn page<T: Clone>(items: &[T], start: usize, size: usize) -> (Vec<T>, Option<String>) {
    let page: Vec<T> = items.iter().skip(start).take(size).cloned().collect();
    let next = (start + page.len() < items.len()).then(|| (start + page.len()).to_string());
    (page, next)
}

impl Scope<'_> {
    fn key(&self, name: &str) -> AlarmKey {
        (
            self.account.to_string(),
            self.region.to_string(),
            name.to_string(),
        )
    }

    /// The account's alarms in this region, by name.
    fn alarms(&self) -> Vec<Alarm> {
        self.service
            .alarms
            .lock()
            .iter()
            .filter(|((a, r, _), _)| a == self.account && r == self.region)
            .map(|(_, e)| e.alarm.clone())
            .collect()
    }

    fn alarm(&self, name: &str) -> Option<Alarm> {
        self.service
            .alarms
            .lock()
            .get(&self.key(name))
            .map(|e| e.alarm.clone())
    }

    async fn put_metric_alarm(&self, input: &Doc) -> OpResult {
        let now = now_ms();
        let mut alarm = Alarm::from_request(self.account, self.region, input, now)?;
        let guard = self.service.writes.lock().await;
        let original = self.alarm(&alarm.name);
        if let Some(original) = &original {
            // An update keeps the state and the tags (Tags apply at creation only).
            alarm.state = original.state.clone();
            alarm.tags = original.tags.clone();
        }
        self.service.save(&alarm).await?;
        self.service.alarms.lock().insert(
            self.key(&alarm.name),
            Entry {
                alarm: alarm.clone(),
                next_due: tokio::time::Instant::now(),
            },
        );
        let what = if original.is_some() {
            "updated"
        } else {
            "created"
        };
        self.service
            .record(
                &alarm,
                HistoryItem::configuration(&alarm, original.as_ref(), what, now),
            )
            .await;
        drop(guard);
        Ok(Doc::map())
    }

    fn describe_alarms(&self, input: &Doc) -> OpResult {
        let names = alarm_names(input)?;
        let prefix = input.get("AlarmNamePrefix").and_then(Doc::as_str);
        if !names.is_empty() && prefix.is_some() {
            return Err(combination(
                "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive and you have specified both.",
            ));
        }
        let state = match input.get("StateValue").and_then(Doc::as_str) {
            None => None,
            Some(s) => Some(
                StateValue::parse(s).ok_or_else(|| not_in_enum(s, "stateValue", &STATE_VALUES))?,
            ),
        };
        let action_prefix = input.get("ActionPrefix").and_then(Doc::as_str);
        let types = Doc::strings(input.get("AlarmTypes"));
        for t in &types {
            if t != "MetricAlarm" && t != "CompositeAlarm" {
                return Err(not_in_enum(
                    t,
                    "alarmTypes.member",
                    &["CompositeAlarm", "MetricAlarm"],
                ));
            }
        }
        let size = max_records(input, 50, 100)?;
        let start = offset(input)?;
        let metric_alarms = types.is_empty() || types.iter().any(|t| t == "MetricAlarm");
        let matching: Vec<Alarm> = if metric_alarms {
            self.alarms()
                .into_iter()
                .filter(|a| names.is_empty() || names.contains(&a.name))
                .filter(|a| prefix.is_none_or(|p| a.name.starts_with(p)))
                .filter(|a| state.is_none_or(|s| a.state.value == s))
                .filter(|a| {
                    action_prefix.is_none_or(|p| {
                        a.ok_actions
                            .iter()
                            .chain(&a.alarm_actions)
                            .chain(&a.insufficient_data_actions)
                            .any(|arn| arn.starts_with(p))
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let (alarms, next) = page(&matching, start, size);
        Ok(Doc::map()
            .with("CompositeAlarms", Vec::<Doc>::new())
            .with(
                "MetricAlarms",
                alarms.iter().map(Alarm::to_doc).collect::<Vec<_>>(),
            )
            .with_opt("NextToken", next))
    }

    fn describe_alarms_for_metric(&self, input: &Doc) -> OpResult {
        let metric = required(input, "MetricName", Doc::as_str)?;
        let namespace = required(input, "Namespace", Doc::as_str)?;
        let statistic = input.get("Statistic").and_then(Doc::as_str);
        let extended = input.get("ExtendedStatistic").and_then(Doc::as_str);
        let period = input.get("Period").and_then(Doc::as_i64);
        let unit = input.get("Unit").and_then(Doc::as_str);
        let dimensions = input
            .get("Dimensions")
            .map(|d| crate::alarm::dimensions_of(Some(d), "Dimensions"))
            .transpose()?
            .map(|mut d| {
                d.sort();
                d
            });
        let alarms: Vec<Doc> = self
            .alarms()
            .into_iter()
            .filter(|a| a.metric_name == metric && a.namespace == namespace)
            .filter(|a| statistic.is_none_or(|s| a.statistic.as_deref() == Some(s)))
            .filter(|a| extended.is_none_or(|s| a.extended_statistic.as_deref() == Some(s)))
            .filter(|a| period.is_none_or(|p| a.period == p))
            .filter(|a| unit.is_none_or(|u| a.unit.as_deref() == Some(u)))
            .filter(|a| {
                dimensions.as_ref().is_none_or(|want| {
                    let mut have = a.dimensions.clone();
                    have.sort();
                    &have == want
                })
            })
            .map(|a| a.to_doc())
            .collect();
        Ok(Doc::map().with("MetricAlarms", alarms))
    }

    async fn describe_alarm_history(&self, input: &Doc) -> OpResult {
        let name = input.get("AlarmName").and_then(Doc::as_str);
        let item_type = input.get("HistoryItemType").and_then(Doc::as_str);
        const TYPES: [&str; 5] = [
            "ConfigurationUpdate",
            "StateUpdate",
            "Action",
            "AlarmContributorStateUpdate",
            "AlarmContributorAction",
        ];
        if let Some(t) = item_type {
            if !TYPES.contains(&t) {
                return Err(not_in_enum(t, "historyItemType", &TYPES));
            }
        }
        let types = Doc::strings(input.get("AlarmTypes"));
        let from = input.get("StartDate").and_then(Doc::as_timestamp_ms);
        let to = input.get("EndDate").and_then(Doc::as_timestamp_ms);
        let ascending = match input.get("ScanBy").and_then(Doc::as_str) {
            None | Some("TimestampDescending") => false,
            Some("TimestampAscending") => true,
            Some(other) => {
                return Err(not_in_enum(
                    other,
                    "scanBy",
                    &["TimestampDescending", "TimestampAscending"],
                ))
            }
        };
        let size = max_records(input, 100, 100)?;
        let start = offset(input)?;
        let mut items = if !types.is_empty() && !types.iter().any(|t| t == "MetricAlarm") {
            Vec::new()
        } else {
            history::list(self.service.store.as_ref(), self.account, self.region, name)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot read alarm history");
                    internal()
                })?
        };
        items.retain(|i| {
            item_type.is_none_or(|t| i.item_type == t)
                && from.is_none_or(|f| i.timestamp_ms >= f)
                && to.is_none_or(|t| i.timestamp_ms <= t)
        });
        if !ascending {
            items.reverse();
        }
        let (items, next) = page(&items, start, size);
        Ok(Doc::map()
            .with(
                "AlarmHistoryItems",
                items.iter().map(HistoryItem::to_doc).collect::<Vec<_>>(),
            )
            .with_opt("NextToken", next))
    }

    async fn delete_alarms(&self, input: &Doc) -> OpResult {
        if input.get("AlarmNames").is_none() {
            return Err(missing("AlarmNames"));
        }
        let names = alarm_names(input)?;
        let guard = self.service.writes.lock().await;
        let found: Vec<Alarm> = names.iter().filter_map(|n| self.alarm(n)).collect();
        if found.len() < names.len() {
            return Err(not_found());
        }
        let now = now_ms();
        for alarm in &found {
            self.service
                .store
                .delete_document(&AlarmService::document_key(alarm))
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot delete an alarm");
                    internal()
                })?;
            self.service.alarms.lock().remove(&self.key(&alarm.name));
            self.service
                .record(
                    alarm,
                    HistoryItem::configuration(alarm, None, "deleted", now),
                )
                .await;
        }
        drop(guard);
        Ok(Doc::map())
    }

    async fn set_alarm_state(&self, input: &Doc) -> OpResult {
        let name = required(input, "AlarmName", Doc::as_str)?;
        let value = required(input, "StateValue", Doc::as_str)?;
        let value = StateValue::parse(value)
            .ok_or_else(|| not_in_enum(value, "stateValue", &STATE_VALUES))?;
        let reason = required(input, "StateReason", Doc::as_str)?;
        let reason_data = input.get("StateReasonData").and_then(Doc::as_str);
        if let Some(data) = reason_data {
            if serde_json::from_str::<serde_json::Value>(data).is_err() {
                return Err(ServiceError::new(
                    "InvalidFormatFault",
                    "Invalid value for parameter StateReasonData: it must be JSON.",
                )
                .query_compatible("InvalidFormat"));
            }
        }
        let alarm = self.alarm(name).ok_or_else(not_found)?;
        self.service
            .change_state(
                &alarm,
                StateChange {
                    value,
                    reason: reason.to_string(),
                    reason_data: reason_data.map(str::to_string),
                },
                None,
            )
            .await?;
        Ok(Doc::map())
    }

    async fn set_actions_enabled(&self, input: &Doc, enabled: bool) -> OpResult {
        if input.get("AlarmNames").is_none() {
            return Err(missing("AlarmNames"));
        }
        let names = alarm_names(input)?;
        let _guard = self.service.writes.lock().await;
        for name in names {
            let updated = {
                let mut alarms = self.service.alarms.lock();
                alarms.get_mut(&self.key(&name)).map(|e| {
                    e.alarm.actions_enabled = enabled;
                    e.alarm.clone()
                })
            };
            if let Some(alarm) = updated {
                self.service.save(&alarm).await?;
            }
        }
        Ok(Doc::map())
    }

    /// The alarm a `ResourceARN` names, in the caller's account and region.
    fn resource(&self, input: &Doc) -> Result<Alarm, ServiceError> {
        let arn = required(input, "ResourceARN", Doc::as_str)?;
        let parts: Vec<&str> = arn.splitn(7, ':').collect();
        match parts.as_slice() {
            ["arn", _, "cloudwatch", region, account, "alarm", name]
                if *region == self.region && *account == self.account =>
            {
                self.alarm(name).ok_or_else(not_found)
            }
            ["arn", _, "cloudwatch", ..] => Err(not_found()),
            _ => Err(invalid_value(format!("Invalid ARN: {arn}"))),
        }
    }

    async fn update_tags(
        &self,
        input: &Doc,
        change: impl FnOnce(&mut Vec<(String, String)>) -> Result<(), ServiceError>,
    ) -> OpResult {
        let _guard = self.service.writes.lock().await;
        let alarm = self.resource(input)?;
        let updated = {
            let mut alarms = self.service.alarms.lock();
            let Some(entry) = alarms.get_mut(&self.key(&alarm.name)) else {
                return Err(not_found());
            };
            let mut tags = entry.alarm.tags.clone();
            change(&mut tags)?;
            entry.alarm.tags = tags;
            entry.alarm.clone()
        };
        self.service.save(&updated).await?;
        Ok(Doc::map())
    }

    async fn tag_resource(&self, input: &Doc) -> OpResult {
        if input.get("Tags").is_none() {
            return Err(missing("Tags"));
        }
        let new = tags_of(input.get("Tags"))?;
        self.update_tags(input, move |tags| {
            for (k, v) in new {
                match tags.iter_mut().find(|(key, _)| *key == k) {
                    Some(t) => t.1 = v,
                    None => tags.push((k, v)),
                }
            }
            if tags.len() > 50 {
                return Err(invalid_value("A resource can have at most 50 tags."));
            }
            Ok(())
        })
        .await
    }

    async fn untag_resource(&self, input: &Doc) -> OpResult {
        if input.get("TagKeys").is_none() {
            return Err(missing("TagKeys"));
        }
        let keys = Doc::strings(input.get("TagKeys"));
        self.update_tags(input, move |tags| {
            tags.retain(|(k, _)| !keys.contains(k));
            Ok(())
        })
        .await
    }

    fn list_tags(&self, input: &Doc) -> OpResult {
        let alarm = self.resource(input)?;
        Ok(Doc::map().with(
            "Tags",
            Doc::tag_list(alarm.tags.iter().map(|(k, v)| (k, v))),
        ))
    }
}
