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
/// AWS's Java parser appends `\n at [Source: ...; line: 1, column: N]` to its reasons. Strato adds
/// it where AWS's recorded messages keep it (errors in the JSON itself, and a document that is not
/// an object) and leaves it out of the rest, as the recorded messages do.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PatternError {
    message: String,
    reason: String,
    #[source]
    source: Option<serde_json::Error>,
}

impl PatternError {
    /// Everything after the dialect's frame: for EventBridge what follows `Reason: `, for SNS what
    /// follows `FilterPolicy: ` (SNS's SetSubscriptionAttributes frames it as
    /// `Invalid parameter: Attributes Reason: FilterPolicy: <reason>`).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    pub(crate) fn new(dialect: Dialect, reason: Reason, source_text: &str) -> Self {
        let (text, location, source) = match reason {
            Reason::Invalid(text) => (text, None, None),
            Reason::NotAnObject(location) => {
                ("Filter is not an object".to_owned(), Some(location), None)
            }
            Reason::Json {
                text,
                location,
                error,
            } => (text, Some(location), Some(error)),
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
        let (frame, reason) = match dialect {
            Dialect::EventBridge => {
                let suffix = location.map(|at| at.jackson_suffix(Some(source_text)));
                (
                    "Event pattern is not valid. Reason: ",
                    format!("{text}{}", suffix.unwrap_or_default()),
                )
            }
            Dialect::SnsFilterPolicy(_) => {
                let parse_failure = if source.is_some() {
                    "failed to parse JSON. "
                } else {
                    ""
                };
                let suffix = location.map(|at| at.jackson_suffix(None));
                (
                    "Invalid parameter: FilterPolicy: ",
                    format!("{parse_failure}{text}{}", suffix.unwrap_or_default()),
                )
            }
            Dialect::LambdaFilterCriteria => ("Invalid filter pattern definition.", String::new()),
        };
        PatternError {
            message: format!("{frame}{reason}"),
            reason: if reason.is_empty() { text } else { reason },
            source,
        }
    }
}

/// Where AWS's parser (Jackson) stopped, as it reports it: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    line: usize,
    column: usize,
}

impl Location {
    /// Jackson's `\n at [Source: ...; line: L, column: C]`, quoting the text when the service
    /// does (EventBridge) and saying it was redacted when it does not (SNS). Jackson quotes at
    /// most 500 characters.
    fn jackson_suffix(self, quoted_source: Option<&str>) -> String {
        const QUOTED_CHARS: usize = 500;
        let source = match quoted_source {
            Some(text) => {
                let total = text.chars().count();
                let shown: String = text.chars().take(QUOTED_CHARS).collect();
                if total > QUOTED_CHARS {
                    format!(
                        "(String)\"{shown}\"[truncated {} chars]",
                        total - QUOTED_CHARS
                    )
                } else {
                    format!("(String)\"{shown}\"")
                }
            }
            None => "REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled)".to_owned(),
        };
        format!(
            "\n at [Source: {source}; line: {}, column: {}]",
            self.line, self.column
        )
    }
}

/// What went wrong, before the dialect frames it.
#[derive(Debug)]
pub(crate) enum Reason {
    /// A rule of the language was broken; the text is AWS's reason.
    Invalid(String),
    /// The text is JSON but not an object; where its first token ends.
    NotAnObject(Location),
    /// The text is not JSON at all; `text` is Jackson's (AWS's parser's) wording of the error.
    Json {
        text: String,
        location: Location,
        error: serde_json::Error,
    },
    /// SNS refuses nested objects in a MessageAttributes-scope policy, with a message of its own.
    NestedAttributesPolicy,
}

pub(crate) fn invalid(text: impl Into<String>) -> Reason {
    Reason::Invalid(text.into())
}

/// A syntax error, worded and located as Jackson (AWS's parser) words the cases users meet: a
/// bare word (`Unrecognized token 'this': ...`, located after the word) and a character where a
/// field name belongs (`Unexpected character (''' (code 39)): ...`, located at the character).
/// serde_json does not name the offending token, so it is read from the source text.
pub(crate) fn json_reason(source_text: &str, error: serde_json::Error) -> Reason {
    let serde_location = Location {
        line: error.line(),
        column: error.column(),
    };
    let (text, location) = jackson_wording(source_text, &error).unwrap_or_else(|| {
        let message = error.to_string();
        let cut = message.find(" at line ").unwrap_or(message.len());
        (message[..cut].to_owned(), serde_location)
    });
    Reason::Json {
        text,
        location,
        error,
    }
}

fn jackson_wording(source_text: &str, error: &serde_json::Error) -> Option<(String, Location)> {
    let line_number = error.line();
    let line: Vec<char> = source_text
        .lines()
        .nth(line_number.checked_sub(1)?)?
        .chars()
        .collect();
    let column = error.column().checked_sub(1)?;
    let message = error.to_string();
    if message.starts_with("key must be a string") {
        let first = *line.get(column)?;
        let code = u32::from(first);
        return Some((
            format!(
                "Unexpected character ('{first}' (code {code})): was expecting double-quote to start field name"
            ),
            Location {
                line: line_number,
                column: column + 1,
            },
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
        let end = start + word.chars().count();
        return Some((
            format!(
                "Unrecognized token '{word}': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
            ),
            Location {
                line: line_number,
                column: end + 1,
            },
        ));
    }
    None
}

/// Where Jackson is after reading the first token of a document that is not an object: just
/// past an opening bracket, or past the end of a scalar.
pub(crate) fn after_first_token(source_text: &str) -> Location {
    let mut line = 1;
    let mut column = 1;
    let mut chars = source_text.chars().peekable();
    while let Some(c) = chars.peek().copied() {
        if c == '\n' {
            line += 1;
            column = 1;
        } else if c.is_whitespace() {
            column += 1;
        } else {
            break;
        }
        chars.next();
    }
    let token_length = match chars.next() {
        Some('[') | None => 1,
        Some('"') => {
            let mut length = 1;
            let mut escaped = false;
            for c in chars {
                length += 1;
                if c == '"' && !escaped {
                    break;
                }
                escaped = c == '\\' && !escaped;
            }
            length
        }
        Some(_) => {
            1 + chars
                .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ']' | '}'))
                .count()
        }
    };
    Location {
        line,
        column: column + token_length,
    }
}
