//! CloudWatch metrics (`GraniteServiceVersion20100801`): GetMetricData,
//! GetMetricStatistics and ListMetrics over the AWS/Lambda and
//! AWS/ApiGateway series Strato records and what users publish with
//! PutMetricData ([`super::put_metric_data`]); alarms are
//! `strato-alarms`'. Spoken as Smithy RPC v2 CBOR (what
//! botocore 1.44 and the current SDKs use) and awsJson 1.0.

use strato_alarms::alarm::dimensions_doc;
use strato_alarms::error::{combination, invalid_value, missing, required, required_as};
use strato_observe::metrics::{parse_percentile, SeriesKey};

use crate::auth::Caller;
use crate::protocol::{Doc, OpResult, ServiceError};
use crate::ApiState;

pub const SERVICE: &str = "GraniteServiceVersion20100801";

/// The query protocol's XML namespace.
pub const XML_NAMESPACE: &str = "http://monitoring.amazonaws.com/doc/2010-08-01/";

fn unit_of(metric: &str) -> &'static str {
    match metric {
        "Duration" | "Latency" | "IntegrationLatency" => "Milliseconds",
        "ProvisionedConcurrencyUtilization" => "None",
        _ => "Count",
    }
}

/// `[{Name, Value}]`, sorted: a series is the same whatever the order given.
fn dimensions_of(doc: Option<&Doc>) -> Result<Vec<(String, String)>, ServiceError> {
    let mut dims = strato_alarms::alarm::dimensions_of(doc, "Dimensions")?;
    dims.sort();
    Ok(dims)
}

fn period_of(value: Option<&Doc>, member: &str) -> Result<i64, ServiceError> {
    let period = value.and_then(Doc::as_i64).ok_or_else(|| missing(member))?;
    if period < 60 || period % 60 != 0 {
        return Err(invalid_value(format!(
            "The parameter {member} must be a multiple of 60 and at least 60 (Strato keeps one-minute resolution)."
        )));
    }
    Ok(period)
}

fn time_range(input: &Doc) -> Result<(i64, i64), ServiceError> {
    let start = required(input, "StartTime", Doc::as_timestamp_ms)?;
    let end = required(input, "EndTime", Doc::as_timestamp_ms)?;
    if end <= start {
        return Err(invalid_value(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    Ok((start, end))
}

fn is_statistic(stat: &str) -> bool {
    matches!(
        stat,
        "Sum" | "Average" | "Minimum" | "Maximum" | "SampleCount"
    ) || parse_percentile(stat).is_some()
}

pub async fn operation(state: &ApiState, caller: &Caller, op: &str, input: Doc) -> OpResult {
    let metrics = state.observe.metrics();
    // Everything the caller's invocations reported before this request.
    if let Err(e) = metrics.settle().await {
        tracing::error!(error = %e, "metrics aggregator failure");
        return Err(
            ServiceError::new("InternalServiceFault", "Internal service error.")
                .query_compatible("InternalServiceError"),
        );
    }
    if strato_alarms::AlarmService::handles(op) {
        if let Some(result) = state
            .alarms
            .operation(&caller.account_id, &caller.region, op, input)
            .await
        {
            return result;
        }
        return Err(ServiceError::new(
            "UnknownOperationException",
            format!("Unknown operation {SERVICE}.{op}"),
        ));
    }
    match op {
        "PutMetricData" => super::put_metric_data::put_metric_data(state, caller, &input).await,
        "GetMetricStatistics" => {
            let namespace = required(&input, "Namespace", Doc::as_str)?;
            let metric = required(&input, "MetricName", Doc::as_str)?;
            let dims = dimensions_of(input.get("Dimensions"))?;
            let (start, end) = time_range(&input)?;
            let period = period_of(input.get("Period"), "Period")?;
            let stats = Doc::strings(input.get("Statistics"));
            let extended = Doc::strings(input.get("ExtendedStatistics"));
            if stats.is_empty() && extended.is_empty() {
                return Err(combination(
                    "Must specify either Statistics or ExtendedStatistics.",
                ));
            }
            if let Some(bad) = extended.iter().find(|s| parse_percentile(s).is_none()) {
                return Err(invalid_value(format!(
                    "The value {bad} for parameter ExtendedStatistics is not supported."
                )));
            }
            let key = SeriesKey {
                account: caller.account_id.clone(),
                region: caller.region.clone(),
                namespace: namespace.to_string(),
                metric: metric.to_string(),
                dimensions: dims,
            };
            let datapoints = metrics
                .statistics(&key, start, end, period)
                .into_iter()
                .map(|dp| {
                    let mut doc = Doc::map()
                        .with("Timestamp", Doc::Timestamp(dp.timestamp_ms as f64 / 1000.0));
                    for stat in &stats {
                        if let Some(v) = dp.bucket.statistic(stat) {
                            doc = doc.with(stat, v);
                        }
                    }
                    doc = doc.with("Unit", unit_of(metric));
                    if !extended.is_empty() {
                        let mut ext = Doc::Dict(Vec::new());
                        for stat in &extended {
                            if let Some(v) = dp.bucket.statistic(stat) {
                                ext = ext.with(stat, v);
                            }
                        }
                        doc = doc.with("ExtendedStatistics", ext);
                    }
                    doc
                })
                .collect::<Vec<_>>();
            Ok(Doc::map()
                .with("Label", metric)
                .with("Datapoints", datapoints))
        }
        "GetMetricData" => {
            let (start, end) = time_range(&input)?;
            let queries = required(&input, "MetricDataQueries", Doc::as_list)?;
            let ascending = match input.get("ScanBy").and_then(Doc::as_str) {
                None | Some("TimestampDescending") => false,
                Some("TimestampAscending") => true,
                Some(other) => {
                    return Err(invalid_value(format!(
                        "The value {other} for parameter ScanBy is not valid."
                    )))
                }
            };
            let mut results = Vec::new();
            for query in queries {
                let id = required_as(query, "Id", Doc::as_str, "MetricDataQueries.member.Id")?;
                if query.get("Expression").is_some() {
                    return Err(invalid_value(format!(
                        "The MetricDataQuery {id} uses an Expression; Strato answers MetricStat queries only."
                    )));
                }
                let stat_doc = query.get("MetricStat").ok_or_else(|| {
                    combination(format!(
                        "The MetricDataQuery {id} must have either a MetricStat or an Expression."
                    ))
                })?;
                let metric_doc = required_as(stat_doc, "Metric", Some, "MetricStat.Metric")?;
                let namespace = metric_doc
                    .get("Namespace")
                    .and_then(Doc::as_str)
                    .unwrap_or_default();
                let metric = metric_doc
                    .get("MetricName")
                    .and_then(Doc::as_str)
                    .unwrap_or_default();
                let dims = dimensions_of(metric_doc.get("Dimensions"))?;
                let period = period_of(stat_doc.get("Period"), "MetricStat.Period")?;
                let stat = required_as(stat_doc, "Stat", Doc::as_str, "MetricStat.Stat")?;
                if !is_statistic(stat) {
                    return Err(invalid_value(format!(
                        "The value {stat} for parameter MetricStat.Stat is not supported."
                    )));
                }
                let key = SeriesKey {
                    account: caller.account_id.clone(),
                    region: caller.region.clone(),
                    namespace: namespace.to_string(),
                    metric: metric.to_string(),
                    dimensions: dims,
                };
                let mut points: Vec<(i64, f64)> = metrics
                    .statistics(&key, start, end, period)
                    .into_iter()
                    .filter_map(|dp| dp.bucket.statistic(stat).map(|v| (dp.timestamp_ms, v)))
                    .collect();
                if !ascending {
                    points.reverse();
                }
                let label = query.get("Label").and_then(Doc::as_str).unwrap_or(metric);
                if query.get("ReturnData").and_then(Doc::as_bool) == Some(false) {
                    continue;
                }
                results.push(
                    Doc::map()
                        .with("Id", id)
                        .with("Label", label)
                        .with(
                            "Timestamps",
                            points
                                .iter()
                                .map(|(t, _)| Doc::Timestamp(*t as f64 / 1000.0))
                                .collect::<Vec<_>>(),
                        )
                        .with(
                            "Values",
                            points
                                .iter()
                                .map(|(_, v)| Doc::Float(*v))
                                .collect::<Vec<_>>(),
                        )
                        .with("StatusCode", "Complete"),
                );
            }
            Ok(Doc::map()
                .with("MetricDataResults", results)
                .with("Messages", Vec::<Doc>::new()))
        }
        "ListMetrics" => {
            let namespace = input.get("Namespace").and_then(Doc::as_str);
            let metric = input.get("MetricName").and_then(Doc::as_str);
            let mut filters = Vec::new();
            for d in input
                .get("Dimensions")
                .and_then(Doc::as_list)
                .unwrap_or_default()
            {
                let name = required_as(d, "Name", Doc::as_str, "Dimensions.member.Name")?;
                filters.push((
                    name.to_string(),
                    d.get("Value").and_then(Doc::as_str).map(str::to_string),
                ));
            }
            let series = metrics.list_series(
                &caller.account_id,
                &caller.region,
                namespace,
                metric,
                &filters,
            );
            // Pages of 500, as CloudWatch pages them; the token is an offset.
            let start: usize = match input.get("NextToken").and_then(Doc::as_str) {
                None => 0,
                Some(t) => t.parse().map_err(|_| {
                    ServiceError::new("InvalidNextToken", "The service couldn't process your request because the NextToken is invalid.")
                        .query_compatible("InvalidNextToken")
                })?,
            };
            let page: Vec<Doc> = series
                .iter()
                .skip(start)
                .take(500)
                .map(|k| {
                    Doc::map()
                        .with("Namespace", k.namespace.as_str())
                        .with("MetricName", k.metric.as_str())
                        .with("Dimensions", dimensions_doc(&k.dimensions))
                })
                .collect();
            let next =
                (start + page.len() < series.len()).then(|| (start + page.len()).to_string());
            Ok(Doc::map().with("Metrics", page).with_opt("NextToken", next))
        }
        _ => Err(ServiceError::new(
            "UnknownOperationException",
            format!("Unknown operation {SERVICE}.{op}"),
        )),
    }
}
