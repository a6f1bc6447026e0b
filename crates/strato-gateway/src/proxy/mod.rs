//! The Lambda proxy contract: how an HTTP request becomes a function's event
//! and how the function's answer becomes the HTTP response, in the two
//! payload formats AWS defines — 1.0 ([`v1`], REST APIs and HTTP APIs that
//! ask for it) and 2.0 ([`v2`], HTTP APIs and function URLs).

pub mod v1;
pub mod v2;

use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What both payload formats say about a request, whichever API (or
/// function URL) it came to.
#[derive(Debug, Clone)]
pub struct EventRequest<'a> {
    pub method: &'a str,
    pub headers: &'a HeaderMap,
    pub raw_query: &'a str,
    pub path_parameters: &'a BTreeMap<String, String>,
    pub stage_variables: &'a BTreeMap<String, String>,
    pub body: &'a EventBody,
    pub account_id: &'a str,
    /// The API id (function URLs: the URL id).
    pub api_id: &'a str,
    pub stage: &'a str,
    pub request_id: &'a str,
    pub domain_name: &'a str,
    pub source_ip: &'a str,
    pub received_at: DateTime<Utc>,
    /// `requestContext.authorizer`: an authorizer's context (2.0:
    /// `{"lambda": ...}`, `{"jwt": ...}`, `{"iam": ...}`).
    pub authorizer: Option<&'a Value>,
}

impl EventRequest<'_> {
    /// `requestContext`: the members both formats give it, the format's
    /// own `members`, and the authorizer's context when there is one.
    fn context(&self, members: Value) -> Value {
        let domain_prefix = self
            .domain_name
            .split('.')
            .next()
            .unwrap_or(self.domain_name);
        let mut context = json!({
            "accountId": self.account_id,
            "apiId": self.api_id,
            "domainName": self.domain_name,
            "domainPrefix": domain_prefix,
            "requestId": self.request_id,
            "stage": self.stage,
        });
        if let (Value::Object(context), Value::Object(members)) = (&mut context, members) {
            context.extend(members);
            if let Some(authorizer) = self.authorizer {
                context.insert("authorizer".into(), authorizer.clone());
            }
        }
        context
    }

    fn user_agent(&self) -> Option<String> {
        self.headers
            .get(http::header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

/// An answer the gateway cannot use: API Gateway answers 502
/// `{"message": "Internal server error"}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Lambda proxy response: {0}")]
pub struct MalformedResponse(pub String);

/// The HTTP response a function's answer maps to.
#[derive(Debug, Clone)]
pub struct ProxyResponse {
    pub status: StatusCode,
    /// In order; a name may repeat (`set-cookie`, multi-value headers).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// A request body as an event carries it: text, or base64 with
/// `isBase64Encoded: true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBody {
    pub body: Option<String>,
    pub is_base64_encoded: bool,
}

impl EventBody {
    /// Encodes `bytes` as base64 when `binary` (or when they are not
    /// UTF-8, which a JSON string cannot carry).
    pub fn new(bytes: &[u8], binary: bool) -> EventBody {
        if bytes.is_empty() {
            return EventBody {
                body: None,
                is_base64_encoded: false,
            };
        }
        match (binary, std::str::from_utf8(bytes)) {
            (false, Ok(text)) => EventBody {
                body: Some(text.to_string()),
                is_base64_encoded: false,
            },
            _ => EventBody {
                body: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                is_base64_encoded: true,
            },
        }
    }
}

/// A content type's media type, lower-cased, without its parameters
/// (`Text/HTML; charset=utf-8` → `text/html`).
pub fn media_type_essence(content_type: Option<&str>) -> Option<String> {
    let media_type = content_type?.split(';').next().unwrap_or("");
    Some(media_type.trim().to_ascii_lowercase())
}

/// Whether a content type is text as HTTP APIs and function URLs judge it:
/// anything else reaches the function base64-encoded.
pub fn is_text_content_type(content_type: Option<&str>) -> bool {
    let Some(essence) = media_type_essence(content_type) else {
        return false;
    };
    essence.starts_with("text/")
        || essence == "application/json"
        || essence == "application/javascript"
        || essence == "application/xml"
        || essence == "application/x-www-form-urlencoded"
        || essence == "application/graphql"
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
}

/// The query string's (name, value) pairs, percent-decoded, in order.
pub fn query_pairs(raw_query: &str) -> Vec<(String, String)> {
    raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

/// Percent-decodes a query component (`+` is a space).
pub fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-decodes a path segment (`+` stays `+`).
pub fn path_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Header (name, value) pairs with lower-case names, in order; values that
/// are not UTF-8 are read lossily.
pub fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// `requestTime` as API Gateway writes it: `09/Apr/2015:12:34:56 +0000`.
pub fn request_time(at: DateTime<Utc>) -> String {
    at.format("%d/%b/%Y:%H:%M:%S %z").to_string()
}

/// A header for a response, or the answer is malformed.
pub(crate) fn response_header(
    name: &str,
    value: &str,
) -> Result<(HeaderName, HeaderValue), MalformedResponse> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| MalformedResponse(format!("invalid header name {name:?}")))?;
    let value = HeaderValue::from_str(value)
        .map_err(|_| MalformedResponse(format!("invalid value of header {name}")))?;
    Ok((name, value))
}

/// A JSON header value as a string: strings as they are, numbers and
/// booleans printed.
pub(crate) fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The body of a proxy answer: base64-decoded when flagged so.
pub(crate) fn response_body(
    body: Option<&serde_json::Value>,
    is_base64: bool,
) -> Result<Bytes, MalformedResponse> {
    let text = match body {
        None | Some(serde_json::Value::Null) => return Ok(Bytes::new()),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if is_base64 {
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Bytes::from)
            .map_err(|_| MalformedResponse("body is not valid base64".into()))
    } else {
        Ok(Bytes::from(text))
    }
}

/// `statusCode` as a status, or the answer is malformed.
pub(crate) fn status_of(value: &serde_json::Value) -> Result<StatusCode, MalformedResponse> {
    let code = match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    }
    .ok_or_else(|| MalformedResponse("statusCode is not an integer".into()))?;
    u16::try_from(code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| MalformedResponse(format!("statusCode {code} is not an HTTP status")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_decode_and_keep_order() {
        assert_eq!(
            query_pairs("a=1&b=x%20y&a=2&c&d=a+b"),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "x y".to_string()),
                ("a".to_string(), "2".to_string()),
                ("c".to_string(), String::new()),
                ("d".to_string(), "a b".to_string()),
            ]
        );
    }

    #[test]
    fn path_decode_keeps_plus_and_bad_escapes() {
        assert_eq!(path_decode("a%2Fb+c%zz%4"), "a/b+c%zz%4");
    }

    #[test]
    fn binary_bodies_are_base64() {
        let b = EventBody::new(&[0xff, 0x00], false);
        assert!(b.is_base64_encoded);
        assert_eq!(b.body.as_deref(), Some("/wA="));
        let t = EventBody::new(b"hi", false);
        assert!(!t.is_base64_encoded);
        assert!(EventBody::new(b"", true).body.is_none());
    }
}
