//! The Lambda events of WebSocket APIs, in AWS's shapes: `$connect`
//! (headers and query string), messages (`body`, `isBase64Encoded`) and
//! `$disconnect` (with the close status and reason), all carrying the same
//! `requestContext`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::{json, Map, Value};

use crate::header_case::HeaderCase;
use crate::proxy::{self, EventBody};

/// `CONNECT`, `MESSAGE` or `DISCONNECT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Connect,
    Message,
    Disconnect,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Connect => "CONNECT",
            EventType::Message => "MESSAGE",
            EventType::Disconnect => "DISCONNECT",
        }
    }
}

/// What every event's `requestContext` says.
pub struct EventContext<'a> {
    pub route_key: &'a str,
    pub event_type: EventType,
    pub connection_id: &'a str,
    /// Epoch milliseconds.
    pub connected_at: i64,
    /// Messages only.
    pub message_id: Option<&'a str>,
    pub domain_name: &'a str,
    pub stage: &'a str,
    pub api_id: &'a str,
    pub request_id: &'a str,
    pub received_at: DateTime<Utc>,
    pub source_ip: &'a str,
    pub user_agent: Option<&'a str>,
    /// What the `$connect` authorizer returned (principalId and context).
    pub authorizer: Option<&'a Value>,
    /// `$disconnect` only: the close status code and reason.
    pub disconnect: Option<(u16, &'a str)>,
    /// The API key `$connect` admitted (`ApiKeyRequired`): its value and id.
    pub api_key: Option<(&'a str, &'a str)>,
}

/// `requestContext`.
pub fn request_context(c: &EventContext<'_>) -> Value {
    let mut context = json!({
        "routeKey": c.route_key,
        "eventType": c.event_type.as_str(),
        "extendedRequestId": c.request_id,
        "requestTime": proxy::request_time(c.received_at),
        "messageDirection": "IN",
        "stage": c.stage,
        "connectedAt": c.connected_at,
        "requestTimeEpoch": c.received_at.timestamp_millis(),
        "identity": {
            "userAgent": c.user_agent,
            "sourceIp": c.source_ip,
        },
        "requestId": c.request_id,
        "domainName": c.domain_name,
        "connectionId": c.connection_id,
        "apiId": c.api_id,
    });
    if let Value::Object(map) = &mut context {
        if let Some(id) = c.message_id {
            map.insert("messageId".into(), id.into());
        }
        if let Some(authorizer) = c.authorizer {
            map.insert("authorizer".into(), authorizer.clone());
        }
        if let Some((code, reason)) = c.disconnect {
            map.insert("disconnectStatusCode".into(), code.into());
            map.insert("disconnectReason".into(), reason.into());
        }
        if let (Some((key, key_id)), Some(Value::Object(identity))) =
            (c.api_key, map.get_mut("identity"))
        {
            identity.insert("apiKey".into(), key.into());
            identity.insert("apiKeyId".into(), key_id.into());
        }
    }
    context
}

fn stage_variables(variables: &BTreeMap<String, String>) -> Value {
    if variables.is_empty() {
        Value::Null
    } else {
        json!(variables)
    }
}

/// `headers` and `multiValueHeaders` of a request, with the names spelled
/// as the client sent them when `case` knows it.
fn header_maps(
    headers: &HeaderMap,
    case: Option<&HeaderCase>,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, value) in proxy::header_pairs(headers) {
        let name = case
            .and_then(|c| c.original(&name))
            .map(str::to_string)
            .unwrap_or(name);
        single.insert(name.clone(), value.clone().into());
        match multi.get_mut(&name) {
            Some(Value::Array(list)) => list.push(value.into()),
            _ => {
                multi.insert(name, json!([value]));
            }
        }
    }
    (single, multi)
}

/// `queryStringParameters` (last value wins) and
/// `multiValueQueryStringParameters`, both absent without a query.
fn query_maps(raw_query: &str) -> Option<(Map<String, Value>, Map<String, Value>)> {
    let pairs = proxy::query_pairs(raw_query);
    if pairs.is_empty() {
        return None;
    }
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, value) in pairs {
        single.insert(name.clone(), value.clone().into());
        match multi.get_mut(&name) {
            Some(Value::Array(list)) => list.push(value.into()),
            _ => {
                multi.insert(name, json!([value]));
            }
        }
    }
    Some((single, multi))
}

/// The `$connect` event (and, with `type` and `methodArn` added, the
/// REQUEST authorizer's).
pub fn connect_event(
    context: &EventContext<'_>,
    headers: &HeaderMap,
    case: Option<&HeaderCase>,
    raw_query: &str,
    variables: &BTreeMap<String, String>,
) -> Value {
    let (single, multi) = header_maps(headers, case);
    let mut event = json!({
        "headers": single,
        "multiValueHeaders": multi,
        "requestContext": request_context(context),
        "isBase64Encoded": false,
    });
    if let Value::Object(map) = &mut event {
        if let Some((single, multi)) = query_maps(raw_query) {
            map.insert("queryStringParameters".into(), Value::Object(single));
            map.insert(
                "multiValueQueryStringParameters".into(),
                Value::Object(multi),
            );
        }
        let variables = stage_variables(variables);
        if !variables.is_null() {
            map.insert("stageVariables".into(), variables);
        }
    }
    event
}

/// A message's event: the frame's payload as `body`, base64 for a binary
/// frame.
pub fn message_event(
    context: &EventContext<'_>,
    payload: &[u8],
    binary: bool,
    variables: &BTreeMap<String, String>,
) -> Value {
    let body = EventBody::new(payload, binary);
    let mut event = json!({
        "requestContext": request_context(context),
        "body": body.body.unwrap_or_default(),
        "isBase64Encoded": body.is_base64_encoded,
    });
    let variables = stage_variables(variables);
    if let (Value::Object(map), false) = (&mut event, variables.is_null()) {
        map.insert("stageVariables".into(), variables);
    }
    event
}

/// The `$disconnect` event: the `Host` and forwarding headers of the
/// connection, and why it closed in the context.
pub fn disconnect_event(
    context: &EventContext<'_>,
    host: &str,
    variables: &BTreeMap<String, String>,
) -> Value {
    let key = context.api_key.map_or("", |(key, _)| key);
    let mut event = json!({
        "headers": {
            "Host": host,
            "x-api-key": key,
            "X-Forwarded-For": "",
            "x-restapi": "",
        },
        "multiValueHeaders": {
            "Host": [host],
            "x-api-key": [key],
            "X-Forwarded-For": [""],
            "x-restapi": [""],
        },
        "requestContext": request_context(context),
        "isBase64Encoded": false,
    });
    let variables = stage_variables(variables);
    if let (Value::Object(map), false) = (&mut event, variables.is_null()) {
        map.insert("stageVariables".into(), variables);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context<'a>(event_type: EventType, route_key: &'a str) -> EventContext<'a> {
        EventContext {
            route_key,
            event_type,
            connection_id: "L0SM9cOFvHcCIhw=",
            connected_at: 1_700_000_000_000,
            message_id: (event_type == EventType::Message).then_some("L0SNkdU5vHcCIhw="),
            domain_name: "abc123.execute-api.localhost",
            stage: "prod",
            api_id: "abc123",
            request_id: "L0SNkEmOvHcFdqg=",
            received_at: DateTime::from_timestamp_millis(1_700_000_001_234).unwrap(),
            source_ip: "127.0.0.1",
            user_agent: Some("websockets/13"),
            authorizer: None,
            disconnect: (event_type == EventType::Disconnect).then_some((1000, "Client closed")),
            api_key: None,
        }
    }

    #[test]
    fn connect_events_carry_headers_query_and_the_context() {
        let mut headers = HeaderMap::new();
        headers.insert("sec-websocket-key", "k".parse().unwrap());
        headers.append("x-multi", "a".parse().unwrap());
        headers.append("x-multi", "b".parse().unwrap());
        let event = connect_event(
            &context(EventType::Connect, "$connect"),
            &headers,
            None,
            "token=t&x=1&x=2",
            &BTreeMap::new(),
        );
        assert_eq!(event["headers"]["sec-websocket-key"], "k");
        assert_eq!(event["multiValueHeaders"]["x-multi"], json!(["a", "b"]));
        assert_eq!(event["queryStringParameters"]["token"], "t");
        assert_eq!(
            event["multiValueQueryStringParameters"]["x"],
            json!(["1", "2"])
        );
        let rc = &event["requestContext"];
        assert_eq!(rc["eventType"], "CONNECT");
        assert_eq!(rc["routeKey"], "$connect");
        assert_eq!(rc["messageDirection"], "IN");
        assert_eq!(rc["connectedAt"], 1_700_000_000_000_i64);
        assert_eq!(rc["requestTimeEpoch"], 1_700_000_001_234_i64);
        assert_eq!(rc["identity"]["sourceIp"], "127.0.0.1");
        assert!(rc.get("messageId").is_none());
        assert!(event.get("stageVariables").is_none());
    }

    #[test]
    fn binary_messages_are_base64_and_text_is_verbatim() {
        let text = message_event(
            &context(EventType::Message, "echo"),
            br#"{"action":"echo"}"#,
            false,
            &BTreeMap::new(),
        );
        assert_eq!(text["body"], r#"{"action":"echo"}"#);
        assert_eq!(text["isBase64Encoded"], false);
        assert_eq!(text["requestContext"]["messageId"], "L0SNkdU5vHcCIhw=");
        let vars = BTreeMap::from([("v".to_string(), "1".to_string())]);
        let binary = message_event(
            &context(EventType::Message, "$default"),
            &[0, 1, 2],
            true,
            &vars,
        );
        assert_eq!(binary["body"], "AAEC");
        assert_eq!(binary["isBase64Encoded"], true);
        assert_eq!(binary["stageVariables"]["v"], "1");
    }

    #[test]
    fn an_admitted_api_key_is_in_the_identity() {
        let mut c = context(EventType::Disconnect, "$disconnect");
        c.api_key = Some(("k3y-value", "a1b2c3"));
        let event = disconnect_event(&c, "abc123.execute-api.localhost", &BTreeMap::new());
        let identity = &event["requestContext"]["identity"];
        assert_eq!(identity["apiKey"], "k3y-value");
        assert_eq!(identity["apiKeyId"], "a1b2c3");
        assert_eq!(event["headers"]["x-api-key"], "k3y-value");
        let plain = request_context(&context(EventType::Message, "echo"));
        assert!(plain["identity"].get("apiKey").is_none());
    }

    #[test]
    fn disconnect_events_say_why() {
        let event = disconnect_event(
            &context(EventType::Disconnect, "$disconnect"),
            "abc123.execute-api.localhost",
            &BTreeMap::new(),
        );
        let rc = &event["requestContext"];
        assert_eq!(rc["eventType"], "DISCONNECT");
        assert_eq!(rc["disconnectStatusCode"], 1000);
        assert_eq!(rc["disconnectReason"], "Client closed");
        assert_eq!(event["headers"]["Host"], "abc123.execute-api.localhost");
    }
}
