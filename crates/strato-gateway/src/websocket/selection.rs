//! Route selection for WebSocket APIs: the API's route selection
//! expression (`$request.body.action`, or `${request.body.action}`) read
//! from a message's JSON body names the route key; a message that is not
//! JSON, or lacks the value, goes to `$default`.

use serde_json::Value;

/// A parsed `$request.body.{path}` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionExpression {
    /// The JSON members to descend, in order.
    path: Vec<String>,
}

impl SelectionExpression {
    /// `None` if `expression` does not select from the request body.
    pub fn parse(expression: &str) -> Option<SelectionExpression> {
        let inner = match expression.strip_prefix("${") {
            Some(rest) => rest.strip_suffix('}')?,
            None => expression.strip_prefix('$')?,
        };
        let rest = inner.strip_prefix("request.body.")?;
        let path: Vec<String> = rest.split('.').map(str::to_string).collect();
        if path.iter().any(|p| {
            p.is_empty()
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }) {
            return None;
        }
        Some(SelectionExpression { path })
    }

    /// The route key a message selects, if it selects one: a string member
    /// as it is, a number or boolean as written; objects, arrays and null
    /// select nothing.
    pub fn select(&self, message: &[u8]) -> Option<String> {
        let body: Value = serde_json::from_slice(message).ok()?;
        let mut at = &body;
        for member in &self.path {
            at = at.as_object()?.get(member)?;
        }
        match at {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// The kind of a WebSocket authorizer's identity source, `None` for one AWS
/// does not accept.
pub fn identity_source_kind(source: &str) -> Option<&'static str> {
    let named = |prefix: &str| {
        source
            .strip_prefix(prefix)
            .is_some_and(|name| !name.is_empty())
    };
    if named("route.request.header.") {
        Some("header")
    } else if named("route.request.querystring.") {
        Some("querystring")
    } else if named("stageVariables.") {
        Some("stageVariables")
    } else if named("context.") {
        Some("context")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expression_reads_the_json_body() {
        let e = SelectionExpression::parse("$request.body.action").unwrap();
        assert_eq!(e.select(br#"{"action":"echo"}"#).as_deref(), Some("echo"));
        assert_eq!(e.select(br#"{"action":7}"#).as_deref(), Some("7"));
        assert_eq!(e.select(br#"{"other":"x"}"#), None);
        assert_eq!(e.select(br#"{"action":{"a":1}}"#), None);
        assert_eq!(e.select(b"not json"), None);
        assert_eq!(e.select(br#"["action"]"#), None);
        let nested = SelectionExpression::parse("${request.body.meta.kind}").unwrap();
        assert_eq!(
            nested.select(br#"{"meta":{"kind":"join"}}"#).as_deref(),
            Some("join")
        );
    }

    #[test]
    fn expressions_not_on_the_body_are_refused() {
        for bad in [
            "$request.header.x",
            "action",
            "$request.body.",
            "${request.body.a",
            "$request.body.a..b",
            "$request.body.a b",
        ] {
            assert!(SelectionExpression::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn identity_sources_name_headers_query_strings_and_variables() {
        assert_eq!(
            identity_source_kind("route.request.header.Auth"),
            Some("header")
        );
        assert_eq!(
            identity_source_kind("route.request.querystring.token"),
            Some("querystring")
        );
        assert_eq!(identity_source_kind("$request.header.Auth"), None);
        assert_eq!(identity_source_kind("route.request.header."), None);
    }
}
