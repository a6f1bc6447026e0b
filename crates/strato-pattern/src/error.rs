//! Why a pattern was refused, worded as AWS words it for each dialect.
//!
//! AWS's three services run the same Java engine, so the *reason* is shared (for example
//! `Bad numeric range operator: >`) and each service wraps it in its own sentence. The reason
//! is kept apart so a service that frames it differently (SNS's SetSubscriptionAttributes says
//! `Invalid parameter: Attributes Reason: FilterPolicy: ...`) can re-frame it.

use crate::Dialect;

/// A pattern AWS would refuse. `Display` is the message AWS sends for the dialect the pattern was
/// parsed in:
///
/// - EventBridge: `Event pattern is not valid. Reason: <reason>` (an `InvalidEventPatternException`),
/// - SNS: `Invalid parameter: FilterPolicy: <reason>` (an `InvalidParameter`, as Subscribe words it),
/// - Lambda: `Invalid filter pattern definition.` (an `InvalidParameterValueException`; Lambda
///   gives no reason).
///
/// AWS's Java parser appends ` at [Source: ...; line: 1, column: N]` to some reasons; Strato does
/// not reproduce that location.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PatternError {
    message: String,
    reason: String,
    #[source]
    source: Option<serde_json::Error>,
}

impl PatternError {
    /// The reason alone, without the dialect's frame (`Bad numeric range operator: >`).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    pub(crate) fn new(dialect: Dialect, reason: Reason) -> Self {
        let (reason, source) = match reason {
            Reason::Invalid(text) => (text, None),
            Reason::Json { text, error } => (text, Some(error)),
            Reason::NestedAttributesPolicy => {
                let text =
                    "Filter policy scope MessageAttributes does not support nested filter policy";
                return PatternError {
                    message: format!("Invalid parameter: {text}"),
                    reason: text.to_owned(),
                    source: None,
                };
            }
        };
        let message = match dialect {
            Dialect::EventBridge => format!("Event pattern is not valid. Reason: {reason}"),
            Dialect::SnsFilterPolicy(_) if source.is_some() => {
                format!("Invalid parameter: FilterPolicy: failed to parse JSON. {reason}")
            }
            Dialect::SnsFilterPolicy(_) => format!("Invalid parameter: FilterPolicy: {reason}"),
            Dialect::LambdaFilterCriteria => "Invalid filter pattern definition.".to_owned(),
        };
        PatternError {
            message,
            reason,
            source,
        }
    }
}

/// What went wrong, before the dialect frames it.
#[derive(Debug)]
pub(crate) enum Reason {
    /// A rule of the language was broken; the text is AWS's reason.
    Invalid(String),
    /// The text is not JSON at all; `text` is Jackson's (AWS's parser's) wording of the error.
    Json {
        text: String,
        error: serde_json::Error,
    },
    /// SNS refuses nested objects in a MessageAttributes-scope policy, with a message of its own.
    NestedAttributesPolicy,
}

pub(crate) fn invalid(text: impl Into<String>) -> Reason {
    Reason::Invalid(text.into())
}

/// A syntax error, worded as Jackson (AWS's parser) words the cases users meet: a bare word
/// (`Unrecognized token 'this': ...`) and a character where a field name belongs
/// (`Unexpected character (''' (code 39)): ...`). serde_json does not name the offending token,
/// so it is read from the source text at the error's position.
pub(crate) fn json_reason(source_text: &str, error: serde_json::Error) -> Reason {
    let text = jackson_wording(source_text, &error).unwrap_or_else(|| {
        let message = error.to_string();
        let cut = message.find(" at line ").unwrap_or(message.len());
        message[..cut].to_owned()
    });
    Reason::Json { text, error }
}

fn jackson_wording(source_text: &str, error: &serde_json::Error) -> Option<String> {
    let line: Vec<char> = source_text
        .lines()
        .nth(error.line().checked_sub(1)?)?
        .chars()
        .collect();
    let column = error.column().checked_sub(1)?;
    let message = error.to_string();
    if message.starts_with("key must be a string") {
        let first = *line.get(column)?;
        let code = u32::from(first);
        return Some(format!(
            "Unexpected character ('{first}' (code {code})): was expecting double-quote to start field name"
        ));
    }
    if message.starts_with("expected value") || message.starts_with("expected ident") {
        // serde_json points into the word it gave up on; Jackson names the whole word.
        let mut start = column.min(line.len().saturating_sub(1));
        while start > 0 && line.get(start - 1).is_some_and(|c| c.is_alphanumeric()) {
            start -= 1;
        }
        let word: String = line
            .iter()
            .skip(start)
            .take_while(|c| c.is_alphanumeric())
            .collect();
        if word.is_empty() {
            return None;
        }
        return Some(format!(
            "Unrecognized token '{word}': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
        ));
    }
    None
}
