//! A metric alarm as stored (one document per alarm) and as
//! PutMetricAlarm describes it, with AWS's validation.

use serde::{Deserialize, Serialize};
use strato_model::wire::{Doc, ServiceError};

use crate::error::{combination, invalid_value, not_in_enum, required, required_as, validation};
use crate::evaluate::iso_time;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateValue {
    Ok,
    Alarm,
    InsufficientData,
}

pub const STATE_VALUES: [&str; 3] = ["INSUFFICIENT_DATA", "ALARM", "OK"];

impl StateValue {
    pub fn as_str(self) -> &'static str {
        match self {
            StateValue::Ok => "OK",
            StateValue::Alarm => "ALARM",
            StateValue::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    pub fn parse(s: &str) -> Option<StateValue> {
        match s {
            "OK" => Some(StateValue::Ok),
            "ALARM" => Some(StateValue::Alarm),
            "INSUFFICIENT_DATA" => Some(StateValue::InsufficientData),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    GreaterThanOrEqualToThreshold,
    GreaterThanThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

const COMPARISONS: [&str; 7] = [
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
];

impl Comparison {
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            Comparison::GreaterThanThreshold => "GreaterThanThreshold",
            Comparison::LessThanThreshold => "LessThanThreshold",
            Comparison::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }

    fn parse(s: &str) -> Result<Comparison, ServiceError> {
        match s {
            "GreaterThanOrEqualToThreshold" => Ok(Comparison::GreaterThanOrEqualToThreshold),
            "GreaterThanThreshold" => Ok(Comparison::GreaterThanThreshold),
            "LessThanThreshold" => Ok(Comparison::LessThanThreshold),
            "LessThanOrEqualToThreshold" => Ok(Comparison::LessThanOrEqualToThreshold),
            "LessThanLowerOrGreaterThanUpperThreshold"
            | "LessThanLowerThreshold"
            | "GreaterThanUpperThreshold" => Err(invalid_value(format!(
                "The comparison operator {s} compares against an anomaly detection band, which Strato does not support."
            ))),
            _ => Err(not_in_enum(s, "comparisonOperator", &COMPARISONS)),
        }
    }
}

const STATISTICS: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];
const TREATMENTS: [&str; 4] = ["breaching", "notBreaching", "ignore", "missing"];

/// The alarm's current state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmState {
    pub value: StateValue,
    pub reason: String,
    /// JSON text.
    pub reason_data: Option<String>,
    pub updated_ms: i64,
    pub transitioned_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    pub account: String,
    pub region: String,
    pub name: String,
    pub description: Option<String>,
    pub actions_enabled: bool,
    pub ok_actions: Vec<String>,
    pub alarm_actions: Vec<String>,
    pub insufficient_data_actions: Vec<String>,
    pub namespace: String,
    pub metric_name: String,
    /// In the order given.
    pub dimensions: Vec<(String, String)>,
    pub statistic: Option<String>,
    pub extended_statistic: Option<String>,
    pub period: i64,
    pub unit: Option<String>,
    pub evaluation_periods: i64,
    pub datapoints_to_alarm: Option<i64>,
    pub threshold: f64,
    pub comparison: Comparison,
    pub treat_missing_data: Option<String>,
    pub evaluate_low_sample_count_percentile: Option<String>,
    pub configuration_updated_ms: i64,
    pub state: AlarmState,
    pub tags: Vec<(String, String)>,
}

pub fn alarm_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:cloudwatch:{region}:{account}:alarm:{name}")
}

/// `[{Name, Value}]` in the order given.
pub fn dimensions_of(
    doc: Option<&Doc>,
    member: &str,
) -> Result<Vec<(String, String)>, ServiceError> {
    pairs_of(doc, member, "Name", "Value")
}

/// A list of `{key, value}` structures as pairs, in the order given; each
/// structure must have both (`MissingParameter` names `member.member.key`).
fn pairs_of(
    doc: Option<&Doc>,
    member: &str,
    key: &str,
    value: &str,
) -> Result<Vec<(String, String)>, ServiceError> {
    let text = |item: &Doc, name: &str| {
        required_as(item, name, Doc::as_str, &format!("{member}.member.{name}")).map(str::to_string)
    };
    doc.and_then(Doc::as_list)
        .unwrap_or_default()
        .iter()
        .map(|item| Ok((text(item, key)?, text(item, value)?)))
        .collect()
}

pub fn dimensions_doc(dims: &[(String, String)]) -> Doc {
    Doc::List(
        dims.iter()
            .map(|(n, v)| {
                Doc::map()
                    .with("Name", n.as_str())
                    .with("Value", v.as_str())
            })
            .collect(),
    )
}

fn actions(input: &Doc, member: &str) -> Result<Vec<String>, ServiceError> {
    let list = Doc::strings(input.get(member));
    if list.len() > 5 {
        return Err(validation(format!(
            "1 validation error detected: Value '[{}]' at '{}' failed to satisfy constraint: Member must have length less than or equal to 5",
            list.join(", "),
            lower_first(member)
        )));
    }
    for arn in &list {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() < 6 || parts[0] != "arn" {
            return Err(validation(format!("Invalid arn syntax: {arn}")));
        }
        if parts[2] != "sns" {
            return Err(validation(format!(
                "Invalid action {arn}: Strato's alarms notify SNS topics only."
            )));
        }
    }
    Ok(list)
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Tags `[{Key, Value}]`.
pub fn tags_of(doc: Option<&Doc>) -> Result<Vec<(String, String)>, ServiceError> {
    pairs_of(doc, "Tags", "Key", "Value")
}

impl Alarm {
    /// An alarm from a PutMetricAlarm request, in state INSUFFICIENT_DATA.
    pub fn from_request(
        account: &str,
        region: &str,
        input: &Doc,
        now_ms: i64,
    ) -> Result<Alarm, ServiceError> {
        let name = required(input, "AlarmName", Doc::as_str)?;
        if name.is_empty() || name.chars().count() > 255 {
            return Err(validation(format!(
                "1 validation error detected: Value '{name}' at 'alarmName' failed to satisfy constraint: Member must have length less than or equal to 255"
            )));
        }
        let description = input.get("AlarmDescription").and_then(Doc::as_str);
        if description.is_some_and(|d| d.chars().count() > 1024) {
            return Err(validation(
                "1 validation error detected: Value at 'alarmDescription' failed to satisfy constraint: Member must have length less than or equal to 1024",
            ));
        }
        let evaluation_periods = required(input, "EvaluationPeriods", Doc::as_i64)?;
        let comparison = Comparison::parse(required(input, "ComparisonOperator", Doc::as_str)?)?;
        if input.get("Metrics").is_some() {
            return Err(invalid_value(
                "Strato does not evaluate metric math alarms (Metrics); give MetricName, Namespace, Statistic and Period instead.",
            ));
        }
        if input.get("ThresholdMetricId").is_some() {
            return Err(invalid_value(
                "Strato does not support anomaly detection alarms (ThresholdMetricId).",
            ));
        }
        let metric_name = required(input, "MetricName", Doc::as_str)?;
        let namespace = required(input, "Namespace", Doc::as_str)?;
        let statistic = input.get("Statistic").and_then(Doc::as_str);
        let extended = input.get("ExtendedStatistic").and_then(Doc::as_str);
        match (statistic, extended) {
            (Some(_), Some(_)) => {
                return Err(combination(
                    "The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified both.",
                ))
            }
            (None, None) => {
                return Err(combination(
                    "One of the parameters Statistic and ExtendedStatistic must be specified.",
                ))
            }
            (Some(s), None) if !STATISTICS.contains(&s) => {
                return Err(not_in_enum(s, "statistic", &STATISTICS));
            }
            (None, Some(p)) if strato_observe::metrics::parse_percentile(p).is_none() => {
                return Err(invalid_value(format!(
                    "The value {p} for parameter ExtendedStatistic is not supported."
                )));
            }
            _ => {}
        }
        let period = required(input, "Period", Doc::as_i64)?;
        if period < 60 || period % 60 != 0 {
            return Err(invalid_value(format!(
                "The parameter Period must be a multiple of 60 (Strato keeps metrics at one-minute resolution), not {period}."
            )));
        }
        if evaluation_periods < 1 {
            return Err(validation(format!(
                "1 validation error detected: Value '{evaluation_periods}' at 'evaluationPeriods' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )));
        }
        if evaluation_periods.saturating_mul(period) > 86_400 {
            return Err(validation(
                "Metrics cannot be checked across more than a day (EvaluationPeriods * Period must be <= 86400).",
            ));
        }
        let datapoints_to_alarm = input.get("DatapointsToAlarm").and_then(Doc::as_i64);
        if let Some(m) = datapoints_to_alarm {
            if m < 1 {
                return Err(validation(format!(
                    "1 validation error detected: Value '{m}' at 'datapointsToAlarm' failed to satisfy constraint: Member must have value greater than or equal to 1"
                )));
            }
            if m > evaluation_periods {
                return Err(validation(
                    "DatapointsToAlarm must be less than or equal to EvaluationPeriods",
                ));
            }
        }
        let threshold = required(input, "Threshold", Doc::as_f64)?;
        let treat_missing_data = input.get("TreatMissingData").and_then(Doc::as_str);
        if let Some(t) = treat_missing_data {
            if !TREATMENTS.contains(&t) {
                return Err(validation(format!(
                    "Option {t} is not supported. Supported options for parameter TreatMissingData are: missing, ignore, breaching, notBreaching."
                )));
            }
        }
        let evaluate_low = input
            .get("EvaluateLowSampleCountPercentile")
            .and_then(Doc::as_str);
        if let Some(e) = evaluate_low {
            if e != "evaluate" && e != "ignore" {
                return Err(validation(format!(
                    "Option {e} is not supported. Supported options for parameter EvaluateLowSampleCountPercentile are: evaluate, ignore."
                )));
            }
        }
        let dimensions = dimensions_of(input.get("Dimensions"), "Dimensions")?;
        if dimensions.len() > 30 {
            return Err(invalid_value(
                "The collection Dimensions must not have a size greater than 30.",
            ));
        }
        Ok(Alarm {
            account: account.to_string(),
            region: region.to_string(),
            name: name.to_string(),
            description: description.map(str::to_string),
            actions_enabled: input
                .get("ActionsEnabled")
                .and_then(Doc::as_bool)
                .unwrap_or(true),
            ok_actions: actions(input, "OKActions")?,
            alarm_actions: actions(input, "AlarmActions")?,
            insufficient_data_actions: actions(input, "InsufficientDataActions")?,
            namespace: namespace.to_string(),
            metric_name: metric_name.to_string(),
            dimensions,
            statistic: statistic.map(str::to_string),
            extended_statistic: extended.map(str::to_string),
            period,
            unit: input.get("Unit").and_then(Doc::as_str).map(str::to_string),
            evaluation_periods,
            datapoints_to_alarm,
            threshold,
            comparison,
            treat_missing_data: treat_missing_data.map(str::to_string),
            evaluate_low_sample_count_percentile: evaluate_low.map(str::to_string),
            configuration_updated_ms: now_ms,
            state: AlarmState {
                value: StateValue::InsufficientData,
                reason: "Unchecked: Initial alarm creation".into(),
                reason_data: None,
                updated_ms: now_ms,
                transitioned_ms: now_ms,
            },
            tags: tags_of(input.get("Tags"))?,
        })
    }

    pub fn arn(&self) -> String {
        alarm_arn(&self.region, &self.account, &self.name)
    }

    /// `DatapointsToAlarm`, which defaults to `EvaluationPeriods`.
    pub fn datapoints_needed(&self) -> usize {
        usize::try_from(self.datapoints_to_alarm.unwrap_or(self.evaluation_periods)).unwrap_or(1)
    }

    /// The statistic evaluated: `Sum`, ..., or a percentile.
    pub fn statistic_name(&self) -> &str {
        self.statistic
            .as_deref()
            .or(self.extended_statistic.as_deref())
            .unwrap_or("Average")
    }

    /// The actions of a state.
    pub fn actions_for(&self, state: StateValue) -> &[String] {
        match state {
            StateValue::Ok => &self.ok_actions,
            StateValue::Alarm => &self.alarm_actions,
            StateValue::InsufficientData => &self.insufficient_data_actions,
        }
    }

    /// The members DescribeAlarms answers for a metric alarm, in AWS's order.
    pub fn to_doc(&self) -> Doc {
        let strings = |v: &[String]| Doc::List(v.iter().map(|s| Doc::from(s.as_str())).collect());
        Doc::map()
            .with("ActionsEnabled", self.actions_enabled)
            .with("AlarmActions", strings(&self.alarm_actions))
            .with("AlarmArn", self.arn())
            .with(
                "AlarmConfigurationUpdatedTimestamp",
                Doc::Timestamp(self.configuration_updated_ms as f64 / 1000.0),
            )
            .with_opt("AlarmDescription", self.description.as_deref())
            .with("AlarmName", self.name.as_str())
            .with("ComparisonOperator", self.comparison.as_str())
            .with_opt("DatapointsToAlarm", self.datapoints_to_alarm)
            .with("Dimensions", dimensions_doc(&self.dimensions))
            .with_opt(
                "EvaluateLowSampleCountPercentile",
                self.evaluate_low_sample_count_percentile.as_deref(),
            )
            .with("EvaluationPeriods", self.evaluation_periods)
            .with_opt("ExtendedStatistic", self.extended_statistic.as_deref())
            .with(
                "InsufficientDataActions",
                strings(&self.insufficient_data_actions),
            )
            .with("MetricName", self.metric_name.as_str())
            .with("Namespace", self.namespace.as_str())
            .with("OKActions", strings(&self.ok_actions))
            .with("Period", self.period)
            .with("StateReason", self.state.reason.as_str())
            .with_opt("StateReasonData", self.state.reason_data.as_deref())
            .with(
                "StateTransitionedTimestamp",
                Doc::Timestamp(self.state.transitioned_ms as f64 / 1000.0),
            )
            .with(
                "StateUpdatedTimestamp",
                Doc::Timestamp(self.state.updated_ms as f64 / 1000.0),
            )
            .with("StateValue", self.state.value.as_str())
            .with_opt("Statistic", self.statistic.as_deref())
            .with("Threshold", self.threshold)
            .with_opt("TreatMissingData", self.treat_missing_data.as_deref())
            .with_opt("Unit", self.unit.as_deref())
    }

    /// The alarm as AWS's history and notifications describe its
    /// configuration (camelCase JSON).
    pub fn configuration_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "alarmName": self.name,
            "alarmArn": self.arn(),
            "alarmConfigurationUpdatedTimestamp": iso_time(self.configuration_updated_ms),
            "actionsEnabled": self.actions_enabled,
            "okactions": self.ok_actions,
            "alarmActions": self.alarm_actions,
            "insufficientDataActions": self.insufficient_data_actions,
            "metricName": self.metric_name,
            "namespace": self.namespace,
            "period": self.period,
            "dimensions": self.dimensions.iter().map(|(n, v)| serde_json::json!({"name": n, "value": v})).collect::<Vec<_>>(),
            "evaluationPeriods": self.evaluation_periods,
            "threshold": self.threshold,
            "comparisonOperator": self.comparison.as_str(),
        });
        if let Some(obj) = v.as_object_mut() {
            if let Some(d) = &self.description {
                obj.insert("alarmDescription".into(), d.clone().into());
            }
            if let Some(s) = &self.statistic {
                obj.insert("statistic".into(), s.to_uppercase().into());
            }
            if let Some(s) = &self.extended_statistic {
                obj.insert("extendedStatistic".into(), s.clone().into());
            }
            if let Some(m) = self.datapoints_to_alarm {
                obj.insert("datapointsToAlarm".into(), m.into());
            }
            if let Some(t) = &self.treat_missing_data {
                obj.insert("treatMissingData".into(), t.clone().into());
            }
            if let Some(u) = &self.unit {
                obj.insert("unit".into(), u.clone().into());
            }
        }
        v
    }
}
