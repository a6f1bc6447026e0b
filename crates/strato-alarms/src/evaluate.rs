//! One evaluation of a metric alarm: its last `EvaluationPeriods`
//! datapoints, `DatapointsToAlarm` of them breaching for ALARM, missing
//! data per `TreatMissingData`, and the state reason CloudWatch writes.
//! Pure: the caller brings the datapoints and the clock.

use serde_json::{json, Value};

use crate::alarm::{Alarm, Comparison, StateValue};

/// A period's statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Start of the period, milliseconds since the epoch.
    pub start_ms: i64,
    pub value: f64,
    pub sample_count: f64,
}

/// What an evaluation concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub state: StateValue,
    pub reason: String,
    /// `StateReasonData` (JSON).
    pub reason_data: Value,
}

/// CloudWatch's number format in reasons (`1.0`, `21.5`).
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// `07/12/26 10:00:00` (day/month/year, UTC), as in state reasons.
fn reason_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%d/%m/%y %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// `2026-12-07T10:00:00.000+0000`, as in reason data and notifications.
pub fn iso_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string())
        .unwrap_or_default()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn listing(points: &[&Point]) -> String {
    points
        .iter()
        .map(|p| format!("{} ({})", number(p.value), reason_time(p.start_ms)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Evaluates `alarm` over `points` (its last `EvaluationPeriods` periods,
/// oldest first, the first starting at `start_ms`; `None` where the metric
/// had no data), at `now_ms`. `None`: nothing to conclude (all data missing
/// and treated as `ignore`).
pub fn evaluate(
    alarm: &Alarm,
    points: &[Option<Point>],
    start_ms: i64,
    now_ms: i64,
) -> Option<Outcome> {
    let n = points.len();
    let m = alarm.datapoints_needed();
    let present: Vec<&Point> = points.iter().flatten().collect();
    let missing = n - present.len();
    let treat = alarm.treat_missing_data.as_deref().unwrap_or("missing");
    let op = alarm.comparison;
    let threshold = alarm.threshold;
    let reason_data = reason_data(alarm, &present, start_ms, now_ms);
    let old = alarm.state.value;
    if present.is_empty() {
        let periods = plural(n, "period", "periods");
        let treated = plural(n, "missing datapoint was", "missing datapoints were");
        return match treat {
            "breaching" => Some(Outcome {
                state: StateValue::Alarm,
                reason: format!("Threshold Crossed: no datapoints were received for {periods} and {treated} treated as [Breaching]."),
                reason_data,
            }),
            "notBreaching" => Some(Outcome {
                state: StateValue::Ok,
                reason: format!("Threshold Crossed: no datapoints were received for {periods} and {treated} treated as [NonBreaching]."),
                reason_data,
            }),
            "ignore" => None,
            _ => Some(Outcome {
                state: StateValue::InsufficientData,
                reason: format!(
                    "Insufficient Data: {} unknown.",
                    plural(n, "datapoint was", "datapoints were")
                ),
                reason_data,
            }),
        };
    }
    let breaching: Vec<&Point> = present
        .iter()
        .copied()
        .filter(|p| op.breaches(p.value, threshold))
        .collect();
    let fine: Vec<&Point> = present
        .iter()
        .copied()
        .filter(|p| !op.breaches(p.value, threshold))
        .collect();
    let missing_bad = if treat == "breaching" { missing } else { 0 };
    let bad = breaching.len() + missing_bad;
    let (state, shown, count, negation, minimum) = if bad >= m {
        (StateValue::Alarm, breaching, bad, "", m)
    } else {
        let count = fine.len() + if treat == "notBreaching" { missing } else { 0 };
        (StateValue::Ok, fine, count, "not ", n + 1 - m)
    };
    // Newest first, as CloudWatch lists them.
    let shown: Vec<&Point> = shown.into_iter().rev().collect();
    let verb = if count == 1 { "was" } else { "were" };
    let words = op.words();
    let reason = if alarm.datapoints_to_alarm.is_some() {
        format!(
            "Threshold Crossed: {count} out of the last {n} datapoints [{}] {verb} {negation}{words} the threshold ({}) (minimum {} for {} -> {} transition).",
            listing(&shown),
            number(threshold),
            plural(minimum, "datapoint", "datapoints"),
            old.as_str(),
            state.as_str(),
        )
    } else {
        format!(
            "Threshold Crossed: {} [{}] {verb} {negation}{words} the threshold ({}).",
            plural(count, "datapoint", "datapoints"),
            listing(&shown),
            number(threshold),
        )
    };
    Some(Outcome {
        state,
        reason,
        reason_data,
    })
}

fn reason_data(alarm: &Alarm, present: &[&Point], start_ms: i64, now_ms: i64) -> Value {
    let mut data = json!({
        "version": "1.0",
        "queryDate": iso_time(now_ms),
        "startDate": iso_time(start_ms),
    });
    if let Some(obj) = data.as_object_mut() {
        if let Some(unit) = &alarm.unit {
            obj.insert("unit".into(), json!(unit));
        }
        obj.insert("statistic".into(), json!(alarm.statistic_name()));
        obj.insert("period".into(), json!(alarm.period));
        obj.insert(
            "recentDatapoints".into(),
            json!(present.iter().map(|p| p.value).collect::<Vec<_>>()),
        );
        obj.insert("threshold".into(), json!(alarm.threshold));
        obj.insert(
            "evaluatedDatapoints".into(),
            Value::Array(
                present
                    .iter()
                    .rev()
                    .map(|p| {
                        json!({
                            "timestamp": iso_time(p.start_ms),
                            "sampleCount": p.sample_count,
                            "value": p.value,
                        })
                    })
                    .collect(),
            ),
        );
    }
    data
}

impl Comparison {
    /// Whether `value` is on the alarming side of `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => value >= threshold,
            Comparison::GreaterThanThreshold => value > threshold,
            Comparison::LessThanThreshold => value < threshold,
            Comparison::LessThanOrEqualToThreshold => value <= threshold,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => "greater than or equal to",
            Comparison::GreaterThanThreshold => "greater than",
            Comparison::LessThanThreshold => "less than",
            Comparison::LessThanOrEqualToThreshold => "less than or equal to",
        }
    }
}
