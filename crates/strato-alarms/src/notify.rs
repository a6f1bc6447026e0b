//! What a state change says to the world: AWS's alarm notification (the
//! message published to each SNS action), the EventBridge event
//! "CloudWatch Alarm State Change", and the history items recording both.

use serde_json::{json, Value};

use crate::alarm::{Alarm, AlarmState};
use crate::evaluate::iso_time;

/// The region's name as alarm notifications spell it.
pub fn region_name(region: &str) -> String {
    let name = match region {
        "us-east-1" => "US East (N. Virginia)",
        "us-east-2" => "US East (Ohio)",
        "us-west-1" => "US West (N. California)",
        "us-west-2" => "US West (Oregon)",
        "af-south-1" => "Africa (Cape Town)",
        "ap-east-1" => "Asia Pacific (Hong Kong)",
        "ap-south-1" => "Asia Pacific (Mumbai)",
        "ap-northeast-1" => "Asia Pacific (Tokyo)",
        "ap-northeast-2" => "Asia Pacific (Seoul)",
        "ap-northeast-3" => "Asia Pacific (Osaka)",
        "ap-southeast-1" => "Asia Pacific (Singapore)",
        "ap-southeast-2" => "Asia Pacific (Sydney)",
        "ca-central-1" => "Canada (Central)",
        "eu-central-1" => "EU (Frankfurt)",
        "eu-west-1" => "EU (Ireland)",
        "eu-west-2" => "EU (London)",
        "eu-west-3" => "EU (Paris)",
        "eu-north-1" => "EU (Stockholm)",
        "eu-south-1" => "EU (Milan)",
        "me-south-1" => "Middle East (Bahrain)",
        "sa-east-1" => "South America (Sao Paulo)",
        other => other,
    };
    name.to_string()
}

/// The JSON message an SNS alarm action publishes.
pub fn notification(alarm: &Alarm, old: &AlarmState) -> Value {
    let mut trigger = json!({
        "MetricName": alarm.metric_name,
        "Namespace": alarm.namespace,
        "StatisticType": if alarm.statistic.is_some() { "Statistic" } else { "ExtendedStatistic" },
        "Statistic": alarm.statistic_name().to_uppercase(),
        "Unit": alarm.unit,
        "Dimensions": alarm.dimensions.iter().map(|(n, v)| json!({"value": v, "name": n})).collect::<Vec<_>>(),
        "Period": alarm.period,
        "EvaluationPeriods": alarm.evaluation_periods,
        "ComparisonOperator": alarm.comparison.as_str(),
        "Threshold": alarm.threshold,
        "TreatMissingData": alarm.treat_missing_data.as_deref().unwrap_or("missing"),
        "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile.as_deref().unwrap_or(""),
    });
    if let (Some(obj), Some(m)) = (trigger.as_object_mut(), alarm.datapoints_to_alarm) {
        obj.insert("DatapointsToAlarm".into(), m.into());
    }
    if let (Some(obj), Some(p)) = (trigger.as_object_mut(), &alarm.extended_statistic) {
        obj.insert("ExtendedStatistic".into(), p.clone().into());
        obj.insert("Statistic".into(), Value::Null);
    }
    json!({
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": alarm.account,
        "AlarmConfigurationUpdatedTimestamp": iso_time(alarm.configuration_updated_ms),
        "NewStateValue": alarm.state.value.as_str(),
        "NewStateReason": alarm.state.reason,
        "StateChangeTime": iso_time(alarm.state.updated_ms),
        "Region": region_name(&alarm.region),
        "AlarmArn": alarm.arn(),
        "OldStateValue": old.value.as_str(),
        "OKActions": alarm.ok_actions,
        "AlarmActions": alarm.alarm_actions,
        "InsufficientDataActions": alarm.insufficient_data_actions,
        "Trigger": trigger,
    })
}

/// The Subject an SNS alarm notification carries on AWS
/// (`ALARM: "name" in US East (N. Virginia)`).
pub fn subject(alarm: &Alarm) -> String {
    format!(
        "{}: \"{}\" in {}",
        alarm.state.value.as_str(),
        alarm.name,
        region_name(&alarm.region)
    )
}

fn state_json(state: &AlarmState) -> Value {
    let mut v = json!({
        "value": state.value.as_str(),
        "reason": state.reason,
        "timestamp": iso_time(state.updated_ms),
    });
    if let (Some(obj), Some(data)) = (v.as_object_mut(), &state.reason_data) {
        obj.insert("reasonData".into(), data.clone().into());
    }
    v
}

/// The `detail` of "CloudWatch Alarm State Change".
pub fn event_detail(alarm: &Alarm, old: &AlarmState) -> Value {
    let dimensions: serde_json::Map<String, Value> = alarm
        .dimensions
        .iter()
        .map(|(n, v)| (n.clone(), Value::String(v.clone())))
        .collect();
    let mut configuration = json!({
        "metrics": [{
            "id": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, alarm.arn().as_bytes()).to_string(),
            "metricStat": {
                "metric": {
                    "namespace": alarm.namespace,
                    "name": alarm.metric_name,
                    "dimensions": dimensions,
                },
                "period": alarm.period,
                "stat": alarm.statistic_name(),
            },
            "returnData": true,
        }],
    });
    if let (Some(obj), Some(d)) = (configuration.as_object_mut(), &alarm.description) {
        obj.insert("description".into(), d.clone().into());
    }
    json!({
        "alarmName": alarm.name,
        "state": state_json(&alarm.state),
        "previousState": state_json(old),
        "configuration": configuration,
    })
}

/// HistoryData of a StateUpdate item.
pub fn state_update_data(old: &AlarmState, new: &AlarmState) -> Value {
    let mut new_state = json!({
        "stateValue": new.value.as_str(),
        "stateReason": new.reason,
    });
    if let Some(data) = new
        .reason_data
        .as_deref()
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
    {
        if let Some(obj) = new_state.as_object_mut() {
            obj.insert("stateReasonData".into(), data);
        }
    }
    json!({
        "version": "1.0",
        "oldState": {"stateValue": old.value.as_str(), "stateReason": old.reason},
        "newState": new_state,
    })
}
