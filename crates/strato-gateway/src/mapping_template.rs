//! API Gateway's mapping templates (Velocity, VTL): the part Strato
//! evaluates. A template is text with references in it:
//!
//! - `$input.body` (the payload as text), `$input.json('$.a')` (the value
//!   a JSONPath selects, as JSON text), `$input.path('$.a')` (the value
//!   itself, so `$input.path('$.a').b` reads on), `$input.params('name')`
//!   (a header or query value of the request);
//! - `$context.x.y` (the request's `$context` variables), `$stageVariables.x`;
//! - `$util.escapeJavaScript(x)`, `$util.base64Encode(x)`,
//!   `$util.base64Decode(x)`, `$util.urlEncode(x)`, `$util.urlDecode(x)`,
//!   `$util.parseJson(x)`;
//!
//! written `$a.b`, `${a.b}` or quiet `$!a.b`; arguments are quoted strings,
//! numbers or references; `\$` is a literal dollar. A reference to a
//! missing value renders as nothing, as API Gateway renders it; a `$name`
//! that is none of the roots above stays as written. Directives (`#set`,
//! `#if`, `#foreach`) are not evaluated: they stay in the text.
//!
//! REST APIs' and WebSocket APIs' templates read the same variables; this
//! module is the one renderer for both.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value};
use strato_pattern::json_path;

/// What a template reads.
pub struct TemplateInput<'a> {
    /// `$input.body`.
    pub body: &'a str,
    /// `$input.params('name')`: the request's headers (any case)...
    pub headers: &'a [(String, String)],
    /// ...and query string values.
    pub query: &'a [(String, String)],
    /// `$context`: the request's context variables as one object.
    pub context: &'a Value,
    pub stage_variables: &'a BTreeMap<String, String>,
}

impl TemplateInput<'_> {
    fn body_json(&self) -> Value {
        serde_json::from_str(self.body).unwrap_or(Value::Null)
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .or_else(|| self.query.iter().find(|(n, _)| n == name))
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
            "header": map(self.headers),
            "querystring": map(self.query),
            "path": {},
        })
    }
}

/// What a reference evaluates to.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    /// `$input`, before a member or method of it.
    Input,
    /// `$util`, before a method of it.
    Util,
    Json(Value),
    /// Nothing there: renders as nothing.
    Missing,
}

impl Val {
    fn text(&self) -> Option<String> {
        match self {
            Val::Json(Value::String(s)) => Some(s.clone()),
            Val::Json(Value::Null) | Val::Missing | Val::Input | Val::Util => None,
            Val::Json(other) => Some(other.to_string()),
        }
    }
}

/// Renders `template` with `input`.
pub fn render(template: &str, input: &TemplateInput<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut parser = Parser {
        text: template,
        at: 0,
        input,
    };
    while parser.at < template.len() {
        let rest = &template[parser.at..];
        if let Some(after) = rest.strip_prefix('\\') {
            if after.starts_with('$') {
                out.push('$');
                parser.at += 2;
                continue;
            }
        }
        if rest.starts_with('$') {
            let start = parser.at;
            match parser.reference() {
                Some(Some(text)) => out.push_str(&text),
                Some(None) => {}
                None => {
                    parser.at = start + 1;
                    out.push('$');
                }
            }
            continue;
        }
        let first = rest.chars().next().map_or(1, char::len_utf8);
        let next = rest[first..]
            .find(['$', '\\'])
            .map_or(template.len(), |i| parser.at + first + i);
        out.push_str(&template[parser.at..next]);
        parser.at = next;
    }
    out
}

struct Parser<'t, 'i> {
    text: &'t str,
    at: usize,
    input: &'i TemplateInput<'i>,
}

impl Parser<'_, '_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn eat(&mut self, prefix: char) -> bool {
        if self.rest().starts_with(prefix) {
            self.at += prefix.len_utf8();
            true
        } else {
            false
        }
    }

    fn identifier(&mut self) -> Option<String> {
        let rest = self.rest();
        let mut chars = rest.char_indices();
        match chars.next() {
            Some((_, c)) if c.is_ascii_alphabetic() || c == '_' => {}
            _ => return None,
        }
        let end = chars
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            .map_or(rest.len(), |(i, _)| i);
        let name = rest[..end].to_string();
        self.at += end;
        Some(name)
    }

    /// At a `$`: the reference's text (`Some(None)` renders nothing), or
    /// `None` when this is not a reference (the `$` stays as written).
    fn reference(&mut self) -> Option<Option<String>> {
        let start = self.at;
        self.eat('$');
        // Quiet (`$!x`) and loud references render a missing value the
        // same way here: as nothing.
        self.eat('!');
        let braced = self.eat('{');
        let root = self.identifier()?;
        let mut value = match root.as_str() {
            "input" => Val::Input,
            "util" => Val::Util,
            "context" => Val::Json(self.input.context.clone()),
            "stageVariables" => Val::Json(serde_json::json!(self.input.stage_variables)),
            _ => {
                // Not ours: the reference stays as written.
                self.at = start;
                return None;
            }
        };
        loop {
            let before = self.at;
            if !self.eat('.') {
                break;
            }
            let Some(name) = self.identifier() else {
                self.at = before;
                break;
            };
            if self.eat('(') {
                let args = self.arguments()?;
                value = self.call(value, &name, &args);
            } else {
                value = member(value, &name, self.input);
            }
        }
        if braced && !self.eat('}') {
            self.at = start;
            return None;
        }
        Some(value.text())
    }

    /// The arguments after `(`, through the `)`.
    fn arguments(&mut self) -> Option<Vec<Val>> {
        let mut args = Vec::new();
        loop {
            self.skip_spaces();
            if self.eat(')') {
                return Some(args);
            }
            let rest = self.rest();
            let arg = if let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
                let body = &rest[1..];
                let end = body.find(quote)?;
                let literal = body[..end].to_string();
                self.at += end + 2;
                Val::Json(Value::String(literal))
            } else if rest.starts_with('$') {
                let text = self.reference()?;
                text.map_or(Val::Missing, |t| Val::Json(Value::String(t)))
            } else {
                let end = rest.find([',', ')', ' '])?;
                let number: Value = serde_json::from_str(&rest[..end]).ok()?;
                self.at += end;
                Val::Json(number)
            };
            args.push(arg);
            self.skip_spaces();
            self.eat(',');
        }
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start();
        self.at = self.text.len() - trimmed.len();
    }

    fn call(&self, on: Val, method: &str, args: &[Val]) -> Val {
        let first = args.first().and_then(Val::text);
        match (on, method) {
            (Val::Input, "json") => {
                let path = first.unwrap_or_else(|| "$".into());
                json_path::select(&self.input.body_json(), &path)
                    .map_or(Val::Missing, |v| Val::Json(Value::String(v.to_string())))
            }
            (Val::Input, "path") => {
                let path = first.unwrap_or_else(|| "$".into());
                json_path::select(&self.input.body_json(), &path)
                    .map_or(Val::Missing, |v| Val::Json(v.clone()))
            }
            (Val::Input, "params") => match first {
                Some(name) => self
                    .input
                    .param(&name)
                    .map_or(Val::Missing, |v| Val::Json(Value::String(v.into()))),
                None => Val::Json(self.input.params()),
            },
            (Val::Util, util) => {
                let Some(text) = first else {
                    return Val::Missing;
                };
                utility(util, &text)
            }
            (Val::Json(Value::String(s)), "length") => Val::Json(s.chars().count().into()),
            (Val::Json(Value::Array(a)), "size") => Val::Json(a.len().into()),
            (Val::Json(Value::Object(o)), "size") => Val::Json(o.len().into()),
            (Val::Json(v), "toString") => {
                Val::Json(Value::String(Val::Json(v).text().unwrap_or_default()))
            }
            _ => Val::Missing,
        }
    }
}

fn member(on: Val, name: &str, input: &TemplateInput<'_>) -> Val {
    match on {
        Val::Input if name == "body" => Val::Json(Value::String(input.body.to_string())),
        Val::Json(Value::Object(mut map)) => map.remove(name).map_or(Val::Missing, Val::Json),
        _ => Val::Missing,
    }
}

fn utility(name: &str, text: &str) -> Val {
    let string = |s: String| Val::Json(Value::String(s));
    match name {
        "escapeJavaScript" => string(escape_javascript(text)),
        "base64Encode" => string(base64::engine::general_purpose::STANDARD.encode(text)),
        "base64Decode" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_or(Val::Missing, |b| {
                string(String::from_utf8_lossy(&b).into_owned())
            }),
        "urlEncode" => string(url_encode(text)),
        "urlDecode" => string(crate::proxy::form_decode(text)),
        "parseJson" => serde_json::from_str(text).map_or(Val::Missing, Val::Json),
        _ => Val::Missing,
    }
}

/// Java's `StringEscapeUtils.escapeJavaScript`, which API Gateway uses:
/// quotes, backslash, slash and control characters escaped, non-ASCII as
/// `\uXXXX`.
fn escape_javascript(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Java's `URLEncoder.encode(text, "UTF-8")`: unreserved `A-Za-z0-9.-*_`
/// kept, space as `+`, the rest percent-encoded.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with(body: &str, template: &str) -> String {
        let context = json!({"connectionId": "L0SM9cOFvHcCIhw=", "identity": {"sourceIp": "1.2.3.4"},
                             "authorizer": {"principalId": "me"}});
        let variables = BTreeMap::from([("env".to_string(), "test".to_string())]);
        let headers = vec![("X-Token".to_string(), "abc".to_string())];
        let query = vec![("q".to_string(), "1".to_string())];
        render(
            template,
            &TemplateInput {
                body,
                headers: &headers,
                query: &query,
                context: &context,
                stage_variables: &variables,
            },
        )
    }

    #[test]
    fn input_references_read_the_body() {
        let body = r#"{"action":"echo","data":{"n":1,"s":"x"}}"#;
        assert_eq!(with(body, "$input.body"), body);
        assert_eq!(with(body, "$input.json('$.data')"), r#"{"n":1,"s":"x"}"#);
        assert_eq!(with(body, r#"$input.json("$.data.s")"#), r#""x""#);
        assert_eq!(with(body, "$input.path('$.data.s')"), "x");
        assert_eq!(with(body, "$input.path('$.data').n"), "1");
        assert_eq!(with(body, "[$input.path('$.missing')]"), "[]");
        assert_eq!(with(body, "${input.path('$.action')}-beta"), "echo-beta");
    }

    #[test]
    fn context_stage_variables_and_params() {
        assert_eq!(
            with(
                "",
                r#"{"id":"$context.connectionId","ip":"$context.identity.sourceIp"}"#
            ),
            r#"{"id":"L0SM9cOFvHcCIhw=","ip":"1.2.3.4"}"#
        );
        assert_eq!(with("", "$context.authorizer.principalId"), "me");
        assert_eq!(with("", "[$context.nothing]"), "[]");
        assert_eq!(with("", "$stageVariables.env"), "test");
        assert_eq!(
            with("", "$input.params('x-token')/$input.params('q')"),
            "abc/1"
        );
    }

    #[test]
    fn utilities_escape_and_encode() {
        let body = r#"{"s":"a \"q\"/b"}"#;
        assert_eq!(
            with(body, "$util.escapeJavaScript($input.path('$.s'))"),
            r#"a \"q\"\/b"#
        );
        assert_eq!(with("", "$util.base64Encode('hi')"), "aGk=");
        assert_eq!(with("", "$util.base64Decode('aGk=')"), "hi");
        assert_eq!(with("", "$util.urlEncode('a b&c')"), "a+b%26c");
        assert_eq!(with("", "$util.urlDecode('a+b%26c')"), "a b&c");
        assert_eq!(with("", "$util.parseJson('{\"a\":[1,2]}').a"), "[1,2]");
    }

    #[test]
    fn other_text_stays_as_written() {
        assert_eq!(with("", r#"{"statusCode": 200}"#), r#"{"statusCode": 200}"#);
        assert_eq!(
            with("", r"\$context.connectionId costs $5"),
            "$context.connectionId costs $5"
        );
        assert_eq!(
            with("", "$other.thing and $!{input.path('$.x')}!"),
            "$other.thing and !"
        );
        assert_eq!(with("", "#set($a = 1)"), "#set($a = 1)");
    }
}
