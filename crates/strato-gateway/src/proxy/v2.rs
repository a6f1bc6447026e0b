//! Payload format 2.0: the event HTTP APIs and function URLs send
//! (`rawPath`, `rawQueryString`, `cookies`, `requestContext.http`), and how
//! the function's answer maps back — including AWS's inference for an
//! answer without `statusCode` (200, `application/json`, the answer as body).

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Map, Value};

use super::{
    query_pairs, request_time, response_body, response_header, scalar_text, status_of,
    EventRequest, MalformedResponse, ProxyResponse,
};

/// Everything a 2.0 event says about one request.
#[derive(Debug, Clone)]
pub struct V2EventInput<'a> {
    pub request: EventRequest<'a>,
    /// `GET /items/{id}`, `$default`, ...
    pub route_key: &'a str,
    pub raw_path: &'a str,
}

/// Headers with lower-case names; repeated headers joined with commas
/// (cookies travel in `cookies` instead).
fn joined_headers(headers: &HeaderMap) -> Map<String, Value> {
    let mut out: Map<String, Value> = Map::new();
    for (name, value) in headers {
        if name == http::header::COOKIE {
            continue;
        }
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match out.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                out.insert(name.as_str().to_string(), Value::String(value));
            }
        }
    }
    out
}

fn cookies(headers: &HeaderMap) -> Vec<Value> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(';')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        })
        .map(Value::String)
        .collect()
}

/// The 2.0 event as JSON. Empty optional members are left out, as AWS does.
pub fn event(input: &V2EventInput<'_>) -> Value {
    let request = &input.request;
    let context = request.context(json!({
        "http": {
            "method": request.method,
            "path": input.raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": request.source_ip,
            "userAgent": request.user_agent().unwrap_or_default(),
        },
        "routeKey": input.route_key,
        "time": request_time(request.received_at),
        "timeEpoch": request.received_at.timestamp_millis(),
    }));
    let mut event = Map::new();
    event.insert("version".into(), "2.0".into());
    event.insert("routeKey".into(), input.route_key.into());
    event.insert("rawPath".into(), input.raw_path.into());
    event.insert("rawQueryString".into(), request.raw_query.into());
    let cookies = cookies(request.headers);
    if !cookies.is_empty() {
        event.insert("cookies".into(), Value::Array(cookies));
    }
    event.insert(
        "headers".into(),
        Value::Object(joined_headers(request.headers)),
    );
    let query = query_pairs(request.raw_query);
    if !query.is_empty() {
        let mut joined: Map<String, Value> = Map::new();
        for (name, value) in query {
            match joined.get_mut(&name) {
                Some(Value::String(existing)) => {
                    existing.push(',');
                    existing.push_str(&value);
                }
                _ => {
                    joined.insert(name, Value::String(value));
                }
            }
        }
        event.insert("queryStringParameters".into(), Value::Object(joined));
    }
    event.insert("requestContext".into(), context);
    if let Some(body) = &request.body.body {
        event.insert("body".into(), Value::String(body.clone()));
    }
    if !request.path_parameters.is_empty() {
        event.insert("pathParameters".into(), json!(request.path_parameters));
    }
    event.insert(
        "isBase64Encoded".into(),
        Value::Bool(request.body.is_base64_encoded),
    );
    if !request.stage_variables.is_empty() {
        event.insert("stageVariables".into(), json!(request.stage_variables));
    }
    Value::Object(event)
}

pub fn event_bytes(input: &V2EventInput<'_>) -> Bytes {
    Bytes::from(event(input).to_string())
}

/// Maps a function's 2.0 answer to the HTTP response. An object with
/// `statusCode` is a structured answer; any other valid JSON is the body of
/// a 200 `application/json` answer.
pub fn response(payload: &[u8]) -> Result<ProxyResponse, MalformedResponse> {
    let answer: Value = serde_json::from_slice(payload)
        .map_err(|e| MalformedResponse(format!("answer is not JSON: {e}")))?;
    let structured = matches!(&answer, Value::Object(m) if m.contains_key("statusCode"));
    if !structured {
        let body = match &answer {
            Value::String(s) => Bytes::from(s.clone()),
            other => Bytes::from(other.to_string()),
        };
        return Ok(ProxyResponse {
            status: StatusCode::OK,
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        });
    }
    let Value::Object(answer) = answer else {
        return Err(MalformedResponse("answer is not a JSON object".into()));
    };
    let status = status_of(answer.get("statusCode").unwrap_or(&Value::Null))?;
    let is_base64 = match answer.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(MalformedResponse("isBase64Encoded is not a boolean".into())),
    };
    let mut headers = Vec::new();
    match answer.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let text = scalar_text(value)
                    .ok_or_else(|| MalformedResponse(format!("header {name} is not a string")))?;
                headers.push(response_header(name, &text)?);
            }
        }
        Some(_) => return Err(MalformedResponse("headers is not an object".into())),
    }
    match answer.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for cookie in list {
                let text = scalar_text(cookie)
                    .ok_or_else(|| MalformedResponse("a cookie is not a string".into()))?;
                headers.push(response_header("set-cookie", &text)?);
            }
        }
        Some(_) => return Err(MalformedResponse("cookies is not a list".into())),
    }
    let body = response_body(answer.get("body"), is_base64)?;
    Ok(ProxyResponse {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::EventBody;
    use chrono::Utc;
    use std::collections::BTreeMap;

    #[test]
    fn event_has_raw_fields_and_joined_values() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", "1".parse().unwrap());
        headers.append("x-a", "2".parse().unwrap());
        headers.append("cookie", "c1=a; c2=b".parse().unwrap());
        let empty = BTreeMap::new();
        let body = EventBody::new(b"{}", false);
        let e = event(&V2EventInput {
            request: EventRequest {
                method: "POST",
                headers: &headers,
                raw_query: "q=1&q=2",
                path_parameters: &empty,
                stage_variables: &empty,
                body: &body,
                account_id: "000000000000",
                api_id: "abcdefghij",
                stage: "$default",
                request_id: "r",
                domain_name: "abcdefghij.execute-api.localhost",
                source_ip: "127.0.0.1",
                received_at: Utc::now(),
                authorizer: None,
            },
            route_key: "$default",
            raw_path: "/x/y",
        });
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["rawPath"], "/x/y");
        assert_eq!(e["rawQueryString"], "q=1&q=2");
        assert_eq!(e["headers"]["x-a"], "1,2");
        assert_eq!(e["cookies"], json!(["c1=a", "c2=b"]));
        assert_eq!(e["queryStringParameters"]["q"], "1,2");
        assert_eq!(e["requestContext"]["http"]["method"], "POST");
        assert!(e.get("pathParameters").is_none());
        assert!(e.get("headers").and_then(|h| h.get("cookie")).is_none());
    }

    #[test]
    fn plain_object_answer_becomes_json_200() {
        let r = response(br#"{"hello":"world"}"#).unwrap();
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(&r.body[..], br#"{"hello":"world"}"#);
        let s = response(br#""text""#).unwrap();
        assert_eq!(&s.body[..], b"text");
    }

    #[test]
    fn structured_answer_maps_cookies() {
        let r = response(br#"{"statusCode":404,"cookies":["a=1","b=2"],"body":"no"}"#).unwrap();
        assert_eq!(r.status.as_u16(), 404);
        assert_eq!(r.headers.len(), 2);
        assert!(response(br#"{"statusCode":"abc"}"#).is_err());
        assert!(response(b"{").is_err());
    }
}
