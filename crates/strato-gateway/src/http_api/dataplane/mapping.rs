//! Request parameter mapping for HTTP_PROXY integrations: targets,
//! values with `$request`, `$context` and `$stageVariables` expressions,
//! and the outgoing query.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::Exchange;
use crate::http_api::model::Integration;

/// A request parameter mapping's target: (`append` | `overwrite` |
/// `remove`, `header` | `querystring` | `path`, name).
pub fn parse_parameter_target(key: &str) -> Option<(&str, &str, &str)> {
    let (action, rest) = key.split_once(':')?;
    if !matches!(action, "append" | "overwrite" | "remove") {
        return None;
    }
    if rest == "path" {
        return (action == "overwrite").then_some((action, "path", ""));
    }
    let (location, name) = rest.split_once('.')?;
    if !matches!(location, "header" | "querystring") || name.is_empty() {
        return None;
    }
    Some((action, location, name))
}

/// Fills a mapping value: static text with `$request...`, `$context...`
/// and `$stageVariables...` expressions (optionally `${...}`).
fn mapping_value(
    exchange: &Exchange<'_>,
    value: &str,
    path_parameters: &BTreeMap<String, String>,
) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let (expression, consumed) = if let Some(inner) = after.strip_prefix("${") {
            match inner.find('}') {
                Some(end) => (format!("${}", &inner[..end]), end + 3),
                None => (String::new(), 0),
            }
        } else {
            let end = after[1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
                .map(|e| e + 1)
                .unwrap_or(after.len());
            (after[..end].to_string(), end)
        };
        if consumed == 0 {
            out.push('$');
            rest = &after[1..];
            continue;
        }
        match exchange.lookup(&expression, path_parameters) {
            Some(v) => out.push_str(&v),
            None if expression.starts_with("$request.")
                || expression.starts_with("$context.")
                || expression.starts_with("$stageVariables.") => {}
            None => out.push_str(&expression),
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

/// Applies a route's integration request parameter mappings to the
/// outgoing headers, query and path.
pub(super) fn apply_parameter_mappings(
    exchange: &Exchange<'_>,
    integration: &Integration,
    path_parameters: &BTreeMap<String, String>,
    headers: &mut HeaderMap,
    query: &mut Vec<(String, String)>,
    path: &mut Option<String>,
) {
    for (key, value) in &integration.request_parameters {
        let Some((action, location, name)) = parse_parameter_target(key) else {
            continue;
        };
        let value = mapping_value(exchange, value, path_parameters);
        match (action, location) {
            ("overwrite", "path") => *path = Some(value),
            (_, "header") => {
                let Ok(header_name) = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                else {
                    continue;
                };
                match action {
                    "remove" => {
                        headers.remove(&header_name);
                    }
                    "overwrite" => {
                        if let Ok(v) = HeaderValue::from_str(&value) {
                            headers.insert(header_name, v);
                        }
                    }
                    _ => {
                        let joined = match headers.get(&header_name).and_then(|v| v.to_str().ok()) {
                            Some(existing) => format!("{existing},{value}"),
                            None => value,
                        };
                        if let Ok(v) = HeaderValue::from_str(&joined) {
                            headers.insert(header_name, v);
                        }
                    }
                }
            }
            (_, "querystring") => match action {
                "remove" => query.retain(|(n, _)| n != name),
                "overwrite" => {
                    query.retain(|(n, _)| n != name);
                    query.push((name.to_string(), value));
                }
                _ => query.push((name.to_string(), value)),
            },
            _ => {}
        }
    }
}

pub(super) fn encode_query(pairs: &[(String, String)]) -> String {
    fn enc(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
    pairs
        .iter()
        .map(|(n, v)| format!("{}={}", enc(n), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}
