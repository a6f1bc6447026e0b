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

/// Evaluates a template or integration-response selection expression, as
/// AWS's selection expressions read: `${name}` and `$name` are replaced by
/// what `lookup` says (nothing when it has nothing), `\$` is a literal
/// dollar (`\$default` is the key `$default`, and so is a bare
/// `$default`), other text stays.
pub fn evaluate(expression: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(expression.len());
    let mut rest = expression;
    while let Some(i) = rest.find(['\\', '$']) {
        out.push_str(&rest[..i]);
        let at = &rest[i..];
        if let Some(after) = at.strip_prefix("\\$") {
            out.push('$');
            rest = after;
            continue;
        }
        let Some(after) = at.strip_prefix('$') else {
            out.push('\\');
            rest = &at[1..];
            continue;
        };
        let (name, tail) = match after.strip_prefix('{') {
            Some(inner) => match inner.split_once('}') {
                Some((name, tail)) => (name, tail),
                None => (inner, ""),
            },
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
                    .unwrap_or(after.len());
                after.split_at(end)
            }
        };
        if name == "default" {
            out.push_str("$default");
        } else if let Some(value) = lookup(name) {
            out.push_str(&value);
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// The text of a JSON value in a selection expression: a string as it is,
/// anything else as JSON.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `request.body.a.b` of a JSON message, for [`evaluate`].
pub fn request_body_value(body: Option<&Value>, name: &str) -> Option<String> {
    let path = name.strip_prefix("request.body")?;
    strato_pattern::json_path::select(body?, &format!("${path}")).map(value_text)
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
    fn selection_expressions_evaluate_to_keys() {
        let body = serde_json::json!({"action": "echo", "v": {"n": 2}});
        let lookup = |name: &str| request_body_value(Some(&body), name);
        assert_eq!(evaluate(r"\$default", &lookup), "$default");
        assert_eq!(evaluate("$default", &lookup), "$default");
        assert_eq!(evaluate("$request.body.action", &lookup), "echo");
        assert_eq!(evaluate("${request.body.v.n}-beta", &lookup), "2-beta");
        assert_eq!(evaluate("$request.body.missing", &lookup), "");
        assert_eq!(evaluate("plain", &lookup), "plain");
    }

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
