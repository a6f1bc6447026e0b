//! CloudWatch `PutMetricData`: users publish their own metrics (any
//! namespace but `AWS/`), which GetMetricData, GetMetricStatistics,
//! ListMetrics and alarms then read like Strato's own.

use strato_alarms::error::{combination, invalid_value, required, required_as};
use strato_observe::metrics::{Bucket, SeriesKey};

use crate::auth::Caller;
use crate::protocol::{Doc, OpResult, ServiceError};
use crate::ApiState;

const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// How far from now a datum's Timestamp may be (two weeks back, two hours ahead).
const OLDEST_MS: i64 = 14 * 86_400_000;
const NEWEST_MS: i64 = 2 * 3_600_000;

fn finite(value: f64, member: &str) -> Result<f64, ServiceError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(invalid_value(format!(
            "The value {value} for parameter {member} is invalid."
        )))
    }
}

/// One datum, checked, as the series and bucket it adds to.
fn datum(
    caller: &Caller,
    namespace: &str,
    d: &Doc,
    i: usize,
    now_ms: i64,
) -> Result<(SeriesKey, i64, Bucket), ServiceError> {
    let member = format!("MetricData.member.{i}");
    let metric = required_as(
        d,
        "MetricName",
        Doc::as_str,
        &format!("{member}.MetricName"),
    )?;
    if metric.is_empty() || metric.chars().count() > 255 {
        return Err(invalid_value(format!(
            "The parameter {member}.MetricName must be between 1 and 255 characters long."
        )));
    }
    let dims_doc = d
        .get("Dimensions")
        .and_then(Doc::as_list)
        .unwrap_or_default();
    if dims_doc.len() > 30 {
        return Err(invalid_value(format!(
            "The collection {member}.Dimensions must not have a size greater than 30."
        )));
    }
    let mut dimensions = Vec::new();
    for (j, dim) in dims_doc.iter().enumerate() {
        let at = format!("{member}.Dimensions.member.{}", j + 1);
        let name = required_as(dim, "Name", Doc::as_str, &format!("{at}.Name"))?;
        let value = required_as(dim, "Value", Doc::as_str, &format!("{at}.Value"))?;
        if name.trim().is_empty() || value.trim().is_empty() {
            return Err(invalid_value(format!(
                "The parameters {at}.Name and {at}.Value must contain at least one non-whitespace character."
            )));
        }
        dimensions.push((name.to_string(), value.to_string()));
    }
    dimensions.sort();
    if let Some(unit) = d.get("Unit").and_then(Doc::as_str) {
        if !UNITS.contains(&unit) {
            return Err(ServiceError::new(
                "ValidationException",
                format!(
                    "1 validation error detected: Value '{unit}' at 'metricData.{i}.member.unit' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    UNITS.join(", ")
                ),
            )
            .query_compatible("ValidationError"));
        }
    }
    if let Some(r) = d.get("StorageResolution").and_then(Doc::as_i64) {
        if r != 1 && r != 60 {
            return Err(invalid_value(format!(
                "The value {r} for parameter {member}.StorageResolution is invalid: it must be 1 or 60."
            )));
        }
    }
    let at_ms = match d.get("Timestamp") {
        None => now_ms,
        Some(t) => t.as_timestamp_ms().ok_or_else(|| {
            invalid_value(format!("The parameter {member}.Timestamp is invalid."))
        })?,
    };
    if at_ms < now_ms - OLDEST_MS {
        return Err(invalid_value(format!(
            "The parameter {member}.Timestamp must specify a time within the past two weeks."
        )));
    }
    if at_ms > now_ms + NEWEST_MS {
        return Err(invalid_value(format!(
            "The parameter {member}.Timestamp must specify a time no more than two hours in the future."
        )));
    }
    let value = d.get("Value");
    let values = d.get("Values");
    let stats = d.get("StatisticValues");
    let both = |a: &str, b: &str| {
        combination(format!(
            "The parameters {member}.{a} and {member}.{b} are mutually exclusive and you have specified both."
        ))
    };
    let bucket = match (value, values, stats) {
        (Some(_), _, Some(_)) => return Err(both("Value", "StatisticValues")),
        (Some(_), Some(_), None) => return Err(both("Value", "Values")),
        (None, Some(_), Some(_)) => return Err(both("Values", "StatisticValues")),
        (None, None, None) => {
            return Err(combination(format!(
                "At least one of the parameters {member}.Value and {member}.StatisticValues must be specified."
            )))
        }
        (Some(v), None, None) => {
            let v = v.as_f64().ok_or_else(|| invalid_value(format!("The parameter {member}.Value is invalid.")))?;
            Bucket::of_values(&[(finite(v, &format!("{member}.Value"))?, 1)])
        }
        (None, Some(list), None) => {
            let list = list.as_list().unwrap_or_default();
            if list.len() > 150 {
                return Err(invalid_value(format!(
                    "The collection {member}.Values must not have a size greater than 150."
                )));
            }
            let counts = d.get("Counts").and_then(Doc::as_list);
            if counts.is_some_and(|c| c.len() != list.len()) {
                return Err(invalid_value(format!(
                    "The parameters {member}.Values and {member}.Counts must be of the same size."
                )));
            }
            let mut pairs = Vec::with_capacity(list.len());
            for (j, v) in list.iter().enumerate() {
                let at = format!("{member}.Values.member.{}", j + 1);
                let v = v.as_f64().ok_or_else(|| invalid_value(format!("The parameter {at} is invalid.")))?;
                let count = match counts.and_then(|c| c.get(j)) {
                    None => 1.0,
                    Some(c) => c.as_f64().ok_or_else(|| {
                        invalid_value(format!("The parameter {member}.Counts.member.{} is invalid.", j + 1))
                    })?,
                };
                if count < 0.0 || !count.is_finite() {
                    return Err(invalid_value(format!(
                        "The value {count} for parameter {member}.Counts.member.{} is invalid.",
                        j + 1
                    )));
                }
                // Counts are whole in Strato's buckets; fractions round.
                let count = whole(count);
                pairs.push((finite(v, &at)?, count));
            }
            Bucket::of_values(&pairs)
        }
        (None, None, Some(s)) => {
            let get = |name: &str| -> Result<f64, ServiceError> {
                let at = format!("{member}.StatisticValues.{name}");
                let v = required_as(s, name, Doc::as_f64, &at)?;
                finite(v, &at)
            };
            let (count, sum, min, max) = (get("SampleCount")?, get("Sum")?, get("Minimum")?, get("Maximum")?);
            if count <= 0.0 || min > max {
                return Err(invalid_value(format!(
                    "The parameter {member}.StatisticValues is invalid: SampleCount must be positive and Minimum at most Maximum."
                )));
            }
            Bucket::summary(whole(count).max(1), sum, min, max)
        }
    };
    Ok((
        SeriesKey {
            account: caller.account_id.clone(),
            region: caller.region.clone(),
            namespace: namespace.to_string(),
            metric: metric.to_string(),
            dimensions,
        },
        at_ms,
        bucket,
    ))
}

/// A count rounded to the nearest whole number.
// `as` from f64 saturates; callers check the value is finite and not negative.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn whole(v: f64) -> u64 {
    v.round() as u64
}

pub async fn put_metric_data(state: &ApiState, caller: &Caller, input: &Doc) -> OpResult {
    let namespace = required(input, "Namespace", Doc::as_str)?;
    if namespace.starts_with("AWS/") {
        return Err(invalid_value(format!(
            "The value {namespace} for parameter Namespace is invalid."
        )));
    }
    if namespace.is_empty() || namespace.chars().count() > 255 {
        return Err(invalid_value(
            "The parameter Namespace must be between 1 and 255 characters long.",
        ));
    }
    let data = required(input, "MetricData", Doc::as_list)?;
    if data.len() > 1000 {
        return Err(invalid_value(
            "The collection MetricData must not have a size greater than 1000.",
        ));
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut checked = Vec::with_capacity(data.len());
    for (i, d) in data.iter().enumerate() {
        checked.push(datum(caller, namespace, d, i + 1, now_ms)?);
    }
    let metrics = state.observe.metrics();
    for (key, at_ms, bucket) in checked {
        metrics.publish(key, at_ms, bucket).await.map_err(|e| {
            tracing::error!(error = %e, "metrics aggregator failure");
            ServiceError::new("InternalServiceFault", "Internal service error.")
                .query_compatible("InternalServiceError")
        })?;
    }
    Ok(Doc::map())
}
