//! API Gateway's mapping templates (Velocity, VTL), the one renderer for
//! REST APIs' and WebSocket APIs' templates. A template is text with
//! references and directives in it:
//!
//! - `$input.body` (the payload as text), `$input.json('$.a')` (the value
//!   a JSONPath selects, as JSON text), `$input.path('$.a')` (the value
//!   itself: a map, list, string or number that reads on, iterates and has
//!   `.size()`), `$input.params()` / `$input.params('name')` (the request's
//!   path, query string and header values);
//! - `$context.x.y` (the request's `$context` variables), `$stageVariables.x`;
//! - `$util.escapeJavaScript(x)`, `$util.base64Encode(x)`,
//!   `$util.base64Decode(x)`, `$util.urlEncode(x)`, `$util.urlDecode(x)`,
//!   `$util.parseJson(x)`;
//! - `#set($a = expr)`, `#if(cond) #elseif(cond) #else #end` (with `==`,
//!   `!=`, `<`, `<=`, `>`, `>=`, `&&`, `||`, `!` and their word forms),
//!   `#foreach($x in $list) #end` (with `$foreach.hasNext`,
//!   `$foreach.index`, `$velocityCount`), `#break`, `#stop`, comments `##`
//!   and `#* *#`; expressions add, subtract, multiply, divide and build
//!   lists `[1, 2]`, ranges `[1..3]` and maps `{"a": 1}`.
//!
//! References are written `$a.b`, `${a.b}` or quiet `$!a.b`; `\$` is a
//! literal dollar. A reference to a missing value renders as nothing, as
//! API Gateway renders it; a `$name` no variable has stays as written.
//! A template that does not parse is an error, which API Gateway answers
//! with its 500 `Internal server error` (the execution log's "Unable to
//! transform request").

mod eval;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub(crate) use eval::url_encode;

/// What a template reads.
pub struct TemplateInput<'a> {
    /// `$input.body`.
    pub body: &'a str,
    /// `$input.params('name')`: the request's path parameters...
    pub path: &'a [(String, String)],
    /// ...query string values...
    pub query: &'a [(String, String)],
    /// ...and headers (any case).
    pub headers: &'a [(String, String)],
    /// `$context`: the request's context variables as one object.
    pub context: &'a Value,
    pub stage_variables: &'a BTreeMap<String, String>,
}

impl TemplateInput<'_> {
    /// A path, query string or header value, looked for in that order.
    fn param(&self, name: &str) -> Option<&str> {
        self.path
            .iter()
            .find(|(n, _)| n == name)
            .or_else(|| self.query.iter().find(|(n, _)| n == name))
            .or_else(|| {
                self.headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| v.as_str())
    }

    fn params(&self) -> Value {
        let map = |pairs: &[(String, String)]| {
            Value::Object(
                pairs
                    .iter()
                    .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                    .collect::<Map<String, Value>>(),
            )
        };
        serde_json::json!({
            "path": map(self.path),
            "querystring": map(self.query),
            "header": map(self.headers),
        })
    }
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template syntax error at line {line}, column {column}: {message}")]
    Syntax {
        message: String,
        line: usize,
        column: usize,
    },
    #[error("template evaluation failed: {0}")]
    Runtime(String),
}

/// A rendered template: its text and `$context` as the template left it
/// (`#set($context.responseOverride.status = 400)` overrides a REST
/// method's answer).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    pub context: Value,
}

impl Rendered {
    /// `$context.responseOverride.status`, when the template set one.
    pub fn status_override(&self) -> Option<u16> {
        let status = self.context.get("responseOverride")?.get("status")?;
        match status {
            Value::Number(n) => n.as_u64().and_then(|s| u16::try_from(s).ok()),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// `$context.responseOverride.header.X` values the template set.
    pub fn header_overrides(&self) -> Vec<(String, String)> {
        self.context
            .get("responseOverride")
            .and_then(|o| o.get("header"))
            .and_then(Value::as_object)
            .map(|headers| {
                headers
                    .iter()
                    .map(|(n, v)| (n.clone(), eval::java_text(v)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Renders `template` with `input`.
pub fn render(template: &str, input: &TemplateInput<'_>) -> Result<String, TemplateError> {
    render_full(template, input).map(|r| r.text)
}

/// Renders `template` with `input`, keeping what it set in `$context`.
pub fn render_full(template: &str, input: &TemplateInput<'_>) -> Result<Rendered, TemplateError> {
    let nodes = parse::parse(template)?;
    let (text, context) = eval::Eval::new(input).run(&nodes)?;
    Ok(Rendered { text, context })
}
