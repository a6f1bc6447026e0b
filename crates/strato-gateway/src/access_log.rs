//! Access logs: a stage's `AccessLogSettings.Format` with its `$context`
//! variables filled in per request, appended to the log group its
//! `DestinationArn` names through the platform's [`LogSink`].

use std::collections::HashMap;
use std::sync::Arc;

use strato_model::telemetry::{LogEvent, LogOwner, LogSink};

/// The `$context` values of one request (`requestId`, `status`,
/// `identity.sourceIp`, ...), by variable name without `$context.`.
#[derive(Debug, Default, Clone)]
pub struct AccessLogContext {
    values: HashMap<&'static str, String>,
}

impl AccessLogContext {
    pub fn set(&mut self, name: &'static str, value: impl Into<String>) {
        self.values.insert(name, value.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// Fills `$context.name` (and `${context.name}`) with the request's values;
/// a variable without a value prints `-`, as API Gateway prints it.
pub fn render(format: &str, context: &AccessLogContext) -> String {
    let mut out = String::with_capacity(format.len() + 64);
    let mut rest = format;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, consumed) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
                .unwrap_or(after.len());
            // A trailing dot ends a sentence, not the variable.
            let name = after[..end].trim_end_matches('.');
            (name, name.len())
        };
        match name.strip_prefix("context.") {
            Some(variable) if consumed > 0 => {
                out.push_str(
                    context
                        .get(variable)
                        .filter(|v| !v.is_empty())
                        .unwrap_or("-"),
                );
                rest = &after[consumed..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Writes rendered lines to log groups.
#[derive(Clone)]
pub struct AccessLogWriter {
    sink: Arc<dyn LogSink>,
}

impl AccessLogWriter {
    pub fn new(sink: Arc<dyn LogSink>) -> AccessLogWriter {
        AccessLogWriter { sink }
    }

    /// Appends one line to `group` of `account` in `region`, in the stream
    /// of the API's stage.
    pub fn write(&self, account: &str, region: &str, group: &str, stream: &str, line: String) {
        self.sink.append_owned(
            &LogOwner {
                account: account.to_string(),
                region: region.to_string(),
            },
            group,
            stream,
            vec![LogEvent {
                timestamp_ms: chrono::Utc::now().timestamp_millis(),
                message: line,
            }],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_variables_are_filled_and_missing_ones_dash() {
        let mut c = AccessLogContext::default();
        c.set("requestId", "r1");
        c.set("status", "200");
        c.set("identity.sourceIp", "127.0.0.1");
        let line = render(
            r#"{"id":"$context.requestId","ip":"$context.identity.sourceIp","s":$context.status,"e":"$context.error.message","b":"${context.status}"}"#,
            &c,
        );
        assert_eq!(
            line,
            r#"{"id":"r1","ip":"127.0.0.1","s":200,"e":"-","b":"200"}"#
        );
    }

    #[test]
    fn other_dollars_stay() {
        let c = AccessLogContext::default();
        assert_eq!(render("cost $5 $context.x.", &c), "cost $5 -.");
    }
}
