//! The one event-pattern language of Strato.
//!
//! EventBridge rules, SNS subscription filter policies and Lambda's event-source-mapping
//! `FilterCriteria` all filter JSON with the same pattern language (on AWS, one Java engine behind
//! three services). Strato implements it once, here, so the three services can never disagree:
//! they parse a pattern with [`Pattern::parse`] in their [`Dialect`] and ask [`Pattern::matches`].
//! The crate is pure (no I/O) and depends on no other Strato crate.
//!
//! ```
//! use serde_json::json;
//! use strato_pattern::{sns_attributes_document, Dialect, Pattern, SnsScope};
//!
//! let rule = Pattern::parse(
//!     r#"{"source": ["aws.ec2"], "detail": {"state": [{"anything-but": "running"}]}}"#,
//!     Dialect::EventBridge,
//! )?;
//! assert!(rule.matches(&json!({"source": "aws.ec2", "detail": {"state": "stopped"}})));
//!
//! let policy = Pattern::parse(
//!     r#"{"price_usd": [{"numeric": [">=", 100]}]}"#,
//!     Dialect::SnsFilterPolicy(SnsScope::MessageAttributes),
//! )?;
//! let attributes = json!({"price_usd": {"Type": "Number", "Value": "210.75"}});
//! assert!(policy.matches(&sns_attributes_document(&attributes)));
//!
//! let refused = Pattern::parse(r#"{"detail": {"n": [{"numeric": 10}]}}"#, Dialect::EventBridge);
//! assert_eq!(
//!     refused.map(|_| ()).map_err(|error| error.to_string()),
//!     Err("Event pattern is not valid. Reason: Value of numeric must be an array.".to_owned())
//! );
//! # Ok::<(), strato_pattern::PatternError>(())
//! ```
//!
//! # The language
//!
//! A pattern is a JSON object shaped like the events it matches. Every field it names must match
//! (AND); the values listed for one field are alternatives (OR). A field's value is either a nested
//! object (matched against the event's object at that field) or an array of *match values*:
//!
//! | match value | matches a leaf that |
//! |---|---|
//! | `"text"`, `5`, `true`, `null` | equals it (numbers compare as numbers: `300` matches `3.0e2`) |
//! | `{"prefix": "us-"}`, `{"prefix": {"equals-ignore-case": "us-"}}` | is a string starting so |
//! | `{"suffix": ".png"}`, `{"suffix": {"equals-ignore-case": ".png"}}` | is a string ending so |
//! | `{"equals-ignore-case": "Aws"}` | is a string equal ignoring case |
//! | `{"wildcard": "dir/*.png"}` | is a string matching, `*` any run (`\*` a literal star) |
//! | `{"anything-but": ...}` (value, list, `prefix`, `suffix`, `wildcard`, `equals-ignore-case`) | exists and is none of those |
//! | `{"numeric": [">", 0, "<=", 5]}` (`=`, `<`, `<=`, `>`, `>=`) | is a number in the range |
//! | `{"cidr": "10.0.0.0/24"}` (IPv4 and IPv6) | is an IP address in the block |
//! | `{"exists": true}` / `{"exists": false}` | is present / absent |
//!
//! `"$or": [{...}, {...}]` (two objects or more) at any level matches when one of its objects does.
//!
//! **Arrays.** When the event holds an array where the pattern expects a value, the field matches
//! if any element does. When it holds an array of objects where the pattern has a nested object,
//! one element must satisfy the whole nested object (AWS's "array consistency": fields are never
//! combined across elements).
//!
//! **Leaves and `exists`.** Only leaves (strings, numbers, booleans, `null`) count as present: a
//! field holding an object or an empty array does not *exist* for `exists`, as on AWS ("exists
//! matching only works on leaf nodes"). An absent field matches nothing but `{"exists": false}`;
//! in particular `anything-but` does not match an absent field.
//!
//! **Numbers.** AWS compares numbers at fixed precision: EventBridge and Lambda between -5.0e9
//! and +5.0e9 with six digits after the decimal point, SNS between -1e9 and +1e9 with five.
//! Numbers are compared after rounding to that precision; an event number outside the range never
//! matches a `numeric` range.
//!
//! **Where the documentation is silent** the crate follows AWS's own engine (the open-source
//! `aws/event-ruler`, read for its rules, not copied): a pattern is read in source order and the
//! first mistake met is the one reported; `$or` is always the operator in EventBridge
//! and Lambda, with its own errors and reserved field names; `anything-but` lists are all strings
//! or all numbers; a string that is an IP address compares as an address; wildcards whose worst
//! input keeps more than 100 positions live at once are refused as too complex (AWS does not
//! publish its bound).
//!
//! # Dialects
//!
//! | | EventBridge | SNS filter policy | Lambda FilterCriteria |
//! |---|---|---|---|
//! | error message | `Event pattern is not valid. Reason: ...` | `Invalid parameter: FilterPolicy: ...` | `Invalid filter pattern definition.` |
//! | `wildcard`; `anything-but` `wildcard`, `suffix`, `equals-ignore-case` | yes | no | no |
//! | `anything-but` `prefix` | yes | yes | no |
//! | `cidr` | yes | yes | no |
//! | nested objects | yes | `MessageBody` scope only | yes |
//! | a malformed `$or` | refused | an ordinary field name (as SNS documents) | refused |
//! | limits | wildcard complexity | 5 keys, 150 combinations | wildcard complexity |
//!
//! SNS's MessageAttributes scope matches a document built from the message's attributes by
//! [`sns_attributes_document`]: `String` values as strings, `Number` values as numbers,
//! `String.Array` values as arrays (matched element-wise), `Binary` attributes left out (they
//! never match, as on AWS).
//!
//! # Speed
//!
//! A pattern is compiled once into a tree keyed by field name; matching walks the event in place
//! (no copy, no allocation) and stops at the first field that fails. `examples/match_throughput.rs`
//! measures 100 typical EventBridge rules against typical events: an unoptimised (debug) build on
//! the shared 2-core development machine decides 0.6 million rule-event pairs per second (6 000
//! events per second against all 100 rules). The house rules kept an optimised build from being
//! measured here; `cargo run --release -p strato-pattern --example match_throughput` gives its
//! figure.

mod compile;
mod error;
mod json;
pub mod json_path;
mod leaf;
mod sns;

use serde_json::Value;

pub use error::PatternError;
pub use sns::sns_attributes_document;

/// Which service's rules a pattern follows: operators, limits and error wording differ a little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// An EventBridge rule's `EventPattern` (also TestEventPattern and EventBridge Pipes).
    EventBridge,
    /// An SNS subscription's `FilterPolicy`, in the subscription's `FilterPolicyScope`.
    SnsFilterPolicy(SnsScope),
    /// One `Filters[].Pattern` of a Lambda event source mapping's `FilterCriteria`.
    LambdaFilterCriteria,
}

/// What an SNS filter policy is matched against (the subscription's `FilterPolicyScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnsScope {
    /// The message attributes, as [`sns_attributes_document`] renders them; no nesting allowed.
    MessageAttributes,
    /// The message body, parsed as JSON; nesting allowed.
    MessageBody,
}

/// A parsed, validated pattern, ready to match events. Cheap to share between threads.
#[derive(Debug, Clone)]
pub struct Pattern {
    root: compile::ObjectNode,
}

impl Pattern {
    /// Parses and validates a pattern as the dialect's service would, refusing it with AWS's
    /// message for that service.
    pub fn parse(text: &str, dialect: Dialect) -> Result<Pattern, PatternError> {
        compile::compile(text, dialect)
            .map(|root| Pattern { root })
            .map_err(|reason| PatternError::new(dialect, reason, text))
    }

    /// Whether the event (or, for SNS, the attributes document or the parsed body) matches.
    pub fn matches(&self, event: &Value) -> bool {
        self.root.matches(Some(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_can_be_shared_between_threads() {
        fn shareable<T: Clone + std::fmt::Debug + Send + Sync + 'static>() {}
        shareable::<Pattern>();
        fn error_is_an_error<T: std::error::Error + Send + Sync + 'static>() {}
        error_is_an_error::<PatternError>();
    }

    #[test]
    fn a_json_syntax_error_keeps_serde_json_as_its_source() {
        let error = Pattern::parse("{", Dialect::EventBridge).unwrap_err();
        assert!(std::error::Error::source(&error).is_some());
        let error = Pattern::parse(r#"{"a": 1}"#, Dialect::EventBridge).unwrap_err();
        assert!(std::error::Error::source(&error).is_none());
    }
}
