//! CloudWatch Logs (`Logs_20140328`, awsJson 1.1): log groups, streams,
//! events, filter patterns and retention, for the AWS CLI and SDKs.

use strato_engine::logs::{LogEvent, LogOwner};
use strato_observe::logstore::{
    EventsQuery, FilterQuery, GroupQuery, LogStoreError, LogsRejection, StoredEvent, StreamQuery,
    RETENTION_DAYS,
};
use strato_observe::FilterPattern;

use crate::auth::Caller;
use crate::protocol::{Doc, OpResult, ServiceError};
use crate::ApiState;

pub const TARGET_PREFIX: &str = "Logs_20140328";

fn rejection(r: LogsRejection) -> ServiceError {
    let code = match r {
        LogsRejection::GroupNotFound | LogsRejection::StreamNotFound => "ResourceNotFoundException",
        LogsRejection::GroupExists | LogsRejection::StreamExists => {
            "ResourceAlreadyExistsException"
        }
    };
    ServiceError::new(code, r.to_string())
}

fn store_failure(e: LogStoreError) -> ServiceError {
    tracing::error!(error = %e, "log store failure");
    ServiceError::internal("The service cannot complete the request.")
}

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::new("InvalidParameterException", message)
}

fn required<'a>(input: &'a Doc, member: &str) -> Result<&'a str, ServiceError> {
    input.get(member).and_then(Doc::as_str).ok_or_else(|| {
        invalid(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// `logGroupName`, or `logGroupIdentifier` (a name or an ARN).
fn group_name(input: &Doc) -> Result<String, ServiceError> {
    if let Some(name) = input.get("logGroupName").and_then(Doc::as_str) {
        return Ok(name.to_string());
    }
    match input.get("logGroupIdentifier").and_then(Doc::as_str) {
        Some(id) if id.starts_with("arn:") => id
            .splitn(7, ':')
            .nth(6)
            .and_then(|rest| rest.strip_prefix("log-group:"))
            .map(|name| name.trim_end_matches(":*").to_string())
            .ok_or_else(|| invalid(format!("Invalid log group identifier: {id}"))),
        Some(id) => Ok(id.to_string()),
        None => Err(invalid(
            "Should provide either logGroupName or logGroupIdentifier.",
        )),
    }
}

fn limit(input: &Doc, default: usize, max: usize) -> Result<usize, ServiceError> {
    match input.get("limit").and_then(Doc::as_i64).map(|n| (n, usize::try_from(n))) {
        None => Ok(default),
        Some((_, Ok(size))) if (1..=max).contains(&size) => Ok(size),
        Some((n, _)) => Err(invalid(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value {}",
            if n < 1 { "greater than or equal to 1".to_string() } else { format!("less than or equal to {max}") }
        ))),
    }
}

fn group_arn(caller: &Caller, group: &str) -> String {
    format!(
        "arn:aws:logs:{}:{}:log-group:{group}",
        caller.region, caller.account_id
    )
}

pub async fn operation(state: &ApiState, caller: &Caller, op: &str, input: Doc) -> OpResult {
    let store = state.observe.logs();
    let owner = LogOwner {
        account: caller.account_id.clone(),
        region: caller.region.clone(),
    };
    match op {
        "CreateLogGroup" => {
            let name = required(&input, "logGroupName")?.to_string();
            validate_group_name(&name)?;
            store
                .create_group(owner, name)
                .await
                .map_err(store_failure)?
                .map_err(rejection)?;
            Ok(Doc::map())
        }
        "DeleteLogGroup" => {
            let name = required(&input, "logGroupName")?.to_string();
            store
                .delete_group(owner, name)
                .await
                .map_err(store_failure)?
                .map_err(rejection)?;
            Ok(Doc::map())
        }
        "PutRetentionPolicy" => {
            let name = required(&input, "logGroupName")?.to_string();
            let days = input
                .get("retentionInDays")
                .and_then(Doc::as_i64)
                .ok_or_else(|| invalid("1 validation error detected: Value null at 'retentionInDays' failed to satisfy constraint: Member must not be null"))?;
            if !RETENTION_DAYS.contains(&days) {
                let allowed: Vec<String> = RETENTION_DAYS.iter().map(i64::to_string).collect();
                return Err(invalid(format!(
                    "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                )));
            }
            store
                .set_retention(owner, name, Some(days))
                .await
                .map_err(store_failure)?
                .map_err(rejection)?;
            Ok(Doc::map())
        }
        "DeleteRetentionPolicy" => {
            let name = required(&input, "logGroupName")?.to_string();
            store
                .set_retention(owner, name, None)
                .await
                .map_err(store_failure)?
                .map_err(rejection)?;
            Ok(Doc::map())
        }
        "DescribeLogGroups" => {
            let query = GroupQuery {
                prefix: input
                    .get("logGroupNamePrefix")
                    .and_then(Doc::as_str)
                    .map(str::to_string),
                pattern: input
                    .get("logGroupNamePattern")
                    .and_then(Doc::as_str)
                    .map(str::to_string),
                next_token: input
                    .get("nextToken")
                    .and_then(Doc::as_str)
                    .map(str::to_string),
                limit: limit(&input, 50, 50)?,
            };
            if query.prefix.is_some() && query.pattern.is_some() {
                return Err(invalid(
                    "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
                ));
            }
            // With a name pattern AWS answers only the name, creation time and ARN.
            let brief = query.pattern.is_some();
            let (groups, next) = store
                .describe_groups(owner, query)
                .await
                .map_err(store_failure)?;
            let groups = groups
                .into_iter()
                .map(|g| {
                    let arn = group_arn(caller, &g.name);
                    let doc = Doc::map()
                        .with("logGroupName", g.name.clone())
                        .with("creationTime", g.created_ms);
                    if brief {
                        return doc.with("arn", format!("{arn}:*"));
                    }
                    doc.with_opt("retentionInDays", g.retention_days)
                        .with("metricFilterCount", 0i64)
                        .with("arn", format!("{arn}:*"))
                        .with("storedBytes", g.stored_bytes)
                        .with("logGroupClass", "STANDARD")
                        .with("logGroupArn", arn)
                })
                .collect::<Vec<_>>();
            Ok(Doc::map()
                .with("logGroups", groups)
                .with_opt("nextToken", next))
        }
        "CreateLogStream" => {
            let group = required(&input, "logGroupName")?.to_string();
            let stream = required(&input, "logStreamName")?.to_string();
            if stream.is_empty()
                || stream.len() > 512
                || stream.contains(':')
                || stream.contains('*')
            {
                return Err(invalid(format!("Invalid log stream name: {stream}")));
            }
            store
                .create_stream(owner, group, stream)
                .await
                .map_err(store_failure)?
                .map_err(rejection)?;
            Ok(Doc::map())
        }
        "DescribeLogStreams" => {
            let group = group_name(&input)?;
            let order_by_last_event = match input.get("orderBy").and_then(Doc::as_str) {
                None | Some("LogStreamName") => false,
                Some("LastEventTime") => true,
                Some(other) => {
                    return Err(invalid(format!(
                        "1 validation error detected: Value '{other}' at 'orderBy' failed to satisfy constraint: Member must satisfy enum value set: [LogStreamName, LastEventTime]"
                    )))
                }
            };
            let prefix = input
                .get("logStreamNamePrefix")
                .and_then(Doc::as_str)
                .map(str::to_string);
            if order_by_last_event && prefix.is_some() {
                return Err(invalid(
                    "Cannot order by LastEventTime with a logStreamNamePrefix.",
                ));
            }
            let query = StreamQuery {
                prefix,
                order_by_last_event,
                descending: input
                    .get("descending")
                    .and_then(Doc::as_bool)
                    .unwrap_or(false),
                next_token: input
                    .get("nextToken")
                    .and_then(Doc::as_str)
                    .map(str::to_string),
                limit: limit(&input, 50, 50)?,
            };
            let (streams, next) = store
                .describe_streams(owner, group.clone(), query)
                .await
                .map_err(store_failure)?
                .map_err(rejection)?;
            let arn = group_arn(caller, &group);
            let streams = streams
                .into_iter()
                .map(|s| {
                    Doc::map()
                        .with("logStreamName", s.name.clone())
                        .with("creationTime", s.created_ms)
                        .with_opt("firstEventTimestamp", s.first_event_ms)
                        .with_opt("lastEventTimestamp", s.last_event_ms)
                        .with_opt("lastIngestionTime", s.last_ingestion_ms)
                        .with("arn", format!("{arn}:log-stream:{}", s.name))
                        .with("storedBytes", 0i64)
                })
                .collect::<Vec<_>>();
            Ok(Doc::map()
                .with("logStreams", streams)
                .with_opt("nextToken", next))
        }
        "PutLogEvents" => {
            let group = required(&input, "logGroupName")?.to_string();
            let stream = required(&input, "logStreamName")?.to_string();
            let events = input
                .get("logEvents")
                .and_then(Doc::as_list)
                .ok_or_else(|| invalid("1 validation error detected: Value null at 'logEvents' failed to satisfy constraint: Member must not be null"))?;
            let mut parsed = Vec::with_capacity(events.len());
            for event in events {
                let timestamp_ms = event
                    .get("timestamp")
                    .and_then(Doc::as_i64)
                    .ok_or_else(|| invalid("Log event timestamp is required."))?;
                let message = event
                    .get("message")
                    .and_then(Doc::as_str)
                    .ok_or_else(|| invalid("Log event message is required."))?;
                parsed.push(LogEvent {
                    timestamp_ms,
                    message: message.to_string(),
                });
            }
            if parsed
                .windows(2)
                .any(|w| w[1].timestamp_ms < w[0].timestamp_ms)
            {
                return Err(invalid(
                    "Log events in a single PutLogEvents request must be in chronological order.",
                ));
            }
            store
                .put_events(owner, group, stream, parsed)
                .await
                .map_err(store_failure)?
                .map_err(rejection)?;
            Ok(Doc::map())
        }
        "GetLogEvents" => {
            let group = group_name(&input)?;
            let stream = required(&input, "logStreamName")?.to_string();
            let query = EventsQuery {
                start_ms: input.get("startTime").and_then(Doc::as_i64),
                end_ms: input.get("endTime").and_then(Doc::as_i64),
                next_token: input
                    .get("nextToken")
                    .and_then(Doc::as_str)
                    .map(str::to_string),
                limit: limit(&input, 10_000, 10_000)?,
                start_from_head: input
                    .get("startFromHead")
                    .and_then(Doc::as_bool)
                    .unwrap_or(false),
            };
            if let Some(token) = &query.next_token {
                if !(token.starts_with("f/") || token.starts_with("b/")) {
                    return Err(invalid("The specified nextToken is invalid."));
                }
            }
            let page = store
                .get_events(owner, group, stream, query)
                .await
                .map_err(store_failure)?
                .map_err(rejection)?;
            let events = page
                .events
                .into_iter()
                .map(|e| {
                    Doc::map()
                        .with("timestamp", e.timestamp_ms)
                        .with("message", e.message)
                        .with("ingestionTime", e.ingestion_ms)
                })
                .collect::<Vec<_>>();
            Ok(Doc::map()
                .with("events", events)
                .with("nextForwardToken", page.next_forward_token)
                .with("nextBackwardToken", page.next_backward_token))
        }
        "FilterLogEvents" => {
            let group = group_name(&input)?;
            let stream_names = input.get("logStreamNames").and_then(Doc::as_list).map(|l| {
                l.iter()
                    .filter_map(Doc::as_str)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            });
            let stream_prefix = input
                .get("logStreamNamePrefix")
                .and_then(Doc::as_str)
                .map(str::to_string);
            if stream_names.is_some() && stream_prefix.is_some() {
                return Err(invalid(
                    "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.",
                ));
            }
            let pattern = match input.get("filterPattern").and_then(Doc::as_str) {
                Some(p) => Some(FilterPattern::parse(p).map_err(|e| invalid(e.to_string()))?),
                None => None,
            };
            let query = FilterQuery {
                stream_names,
                stream_prefix,
                start_ms: input.get("startTime").and_then(Doc::as_i64),
                end_ms: input.get("endTime").and_then(Doc::as_i64),
                pattern,
                next_token: input
                    .get("nextToken")
                    .and_then(Doc::as_str)
                    .map(str::to_string),
                limit: limit(&input, 10_000, 10_000)?,
            };
            let page = store
                .filter_events(owner, group, query)
                .await
                .map_err(store_failure)?
                .map_err(rejection)?;
            let events = page
                .events
                .into_iter()
                .map(filtered_event)
                .collect::<Vec<_>>();
            Ok(Doc::map()
                .with("events", events)
                .with("searchedLogStreams", Vec::<Doc>::new())
                .with_opt("nextToken", page.next_token))
        }
        _ => Err(ServiceError::new(
            "UnknownOperationException",
            format!("Unknown operation {TARGET_PREFIX}.{op}"),
        )),
    }
}

fn filtered_event(e: StoredEvent) -> Doc {
    Doc::map()
        .with("logStreamName", e.stream)
        .with("timestamp", e.timestamp_ms)
        .with("message", e.message)
        .with("ingestionTime", e.ingestion_ms)
        .with("eventId", format!("{:056}", e.id))
}

/// Log group names: 1–512 characters of `[\.\-_/#A-Za-z0-9]`.
fn validate_group_name(name: &str) -> Result<(), ServiceError> {
    let valid = !name.is_empty()
        && name.len() <= 512
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/' | b'#'));
    if valid {
        Ok(())
    } else {
        Err(invalid(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
        )))
    }
}
