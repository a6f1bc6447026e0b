//! Payload format 1.0: the event REST APIs send (and HTTP APIs whose
//! integration asks for `PayloadFormatVersion` 1.0), and how the function's
//! answer maps back (`statusCode`, `headers`, `multiValueHeaders`, `body`,
//! `isBase64Encoded`).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::header_case::HeaderCase;

use super::{
    header_pairs, query_pairs, request_time, response_body, response_header, scalar_text,
    status_of, EventRequest, MalformedResponse, ProxyResponse,
};

/// Everything a 1.0 event says about one request.
#[derive(Debug, Clone)]
pub struct V1EventInput<'a> {
    pub request: EventRequest<'a>,
    /// `Some("1.0")` for HTTP APIs (their 1.0 events carry `version`); REST
    /// APIs send none.
    pub version: Option<&'a str>,
    /// The matched resource or route path, e.g. `/items/{id}` or `/{proxy+}`
    /// (`$default` for an HTTP API's default route).
    pub resource: &'a str,
    /// The request path as the event's `path` gives it: REST APIs without the
    /// stage, HTTP APIs as the client sent it.
    pub path: &'a str,
    /// `requestContext.path`: the path as the client sent it (stage included).
    pub context_path: &'a str,
    /// The names as the client spelled them: REST APIs keep the client's
    /// case; `None` (HTTP APIs) sends them lower-cased, as AWS does.
    pub header_case: Option<&'a HeaderCase>,
    /// REST APIs: the resource id; HTTP APIs: the route id.
    pub resource_id: &'a str,
    pub extended_request_id: &'a str,
    /// `requestContext.identity.apiKey` / `apiKeyId` (REST APIs with keys).
    pub api_key: Option<&'a str>,
    pub api_key_id: Option<&'a str>,
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    if map.is_empty() {
        return Value::Null;
    }
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// (single-value map with the last value of each name, multi-value map),
/// names as given; `null`s when there are none.
fn single_and_multi(pairs: Vec<(String, String)>) -> (Value, Value) {
    if pairs.is_empty() {
        return (Value::Null, Value::Null);
    }
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, value) in pairs {
        single.insert(name.clone(), Value::String(value.clone()));
        match multi.get_mut(&name) {
            Some(Value::Array(values)) => values.push(Value::String(value)),
            _ => {
                multi.insert(name, Value::Array(vec![Value::String(value)]));
            }
        }
    }
    (Value::Object(single), Value::Object(multi))
}

/// The 1.0 event as JSON.
pub fn event(input: &V1EventInput<'_>) -> Value {
    let request = &input.request;
    let mut pairs = header_pairs(request.headers);
    if let Some(case) = input.header_case {
        for (name, _) in &mut pairs {
            if let Some(original) = case.original(name) {
                *name = original.to_string();
            }
        }
    }
    let (headers, multi_headers) = single_and_multi(pairs);
    let (query, multi_query) = single_and_multi(query_pairs(request.raw_query));
    let context = request.context(json!({
        "extendedRequestId": input.extended_request_id,
        "httpMethod": request.method,
        "identity": {
            "accessKey": null,
            "accountId": null,
            "apiKey": input.api_key,
            "apiKeyId": input.api_key_id,
            "caller": null,
            "cognitoAuthenticationProvider": null,
            "cognitoAuthenticationType": null,
            "cognitoIdentityId": null,
            "cognitoIdentityPoolId": null,
            "principalOrgId": null,
            "sourceIp": request.source_ip,
            "user": null,
            "userAgent": request.user_agent(),
            "userArn": null,
        },
        "path": input.context_path,
        "protocol": "HTTP/1.1",
        "requestTime": request_time(request.received_at),
        "requestTimeEpoch": request.received_at.timestamp_millis(),
        "resourceId": input.resource_id,
        "resourcePath": input.resource,
    }));
    let mut event = Map::new();
    if let Some(version) = input.version {
        event.insert("version".into(), version.into());
    }
    event.insert("resource".into(), input.resource.into());
    event.insert("path".into(), input.path.into());
    event.insert("httpMethod".into(), request.method.into());
    event.insert("headers".into(), headers);
    event.insert("multiValueHeaders".into(), multi_headers);
    event.insert("queryStringParameters".into(), query);
    event.insert("multiValueQueryStringParameters".into(), multi_query);
    event.insert("requestContext".into(), context);
    event.insert("pathParameters".into(), string_map(request.path_parameters));
    event.insert("stageVariables".into(), string_map(request.stage_variables));
    event.insert(
        "body".into(),
        request.body.body.clone().map_or(Value::Null, Value::String),
    );
    event.insert(
        "isBase64Encoded".into(),
        Value::Bool(request.body.is_base64_encoded),
    );
    Value::Object(event)
}

/// The event as the bytes sent to the function.
pub fn event_bytes(input: &V1EventInput<'_>) -> Bytes {
    Bytes::from(event(input).to_string())
}

/// The members a REST API's Lambda proxy answer may have.
const REST_ANSWER_KEYS: [&str; 5] = [
    "statusCode",
    "headers",
    "multiValueHeaders",
    "body",
    "isBase64Encoded",
];

/// Maps a REST API function's answer: REST APIs also refuse an answer with
/// any member beyond the five of the proxy contract (AWS logs "Malformed
/// Lambda proxy response" and answers 502).
pub fn rest_response(payload: &[u8]) -> Result<ProxyResponse, MalformedResponse> {
    if let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(payload) {
        if let Some(key) = answer
            .keys()
            .find(|key| !REST_ANSWER_KEYS.contains(&key.as_str()))
        {
            return Err(MalformedResponse(format!("unexpected member {key:?}")));
        }
    }
    response(payload)
}

/// Maps a function's 1.0 answer to the HTTP response. The answer must be a
/// JSON object with an integer `statusCode`; `headers` values are scalars,
/// `multiValueHeaders` values lists of scalars, `body` a string.
pub fn response(payload: &[u8]) -> Result<ProxyResponse, MalformedResponse> {
    let answer: Value = serde_json::from_slice(payload)
        .map_err(|e| MalformedResponse(format!("answer is not JSON: {e}")))?;
    let Value::Object(answer) = answer else {
        return Err(MalformedResponse("answer is not a JSON object".into()));
    };
    let status = status_of(
        answer
            .get("statusCode")
            .ok_or_else(|| MalformedResponse("statusCode is missing".into()))?,
    )?;
    let is_base64 = match answer.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(_) => return Err(MalformedResponse("isBase64Encoded is not a boolean".into())),
    };
    let mut headers = Vec::new();
    // Single-value headers a multi-value header of the same name replaces.
    let multi = match answer.get("multiValueHeaders") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(MalformedResponse(
                "multiValueHeaders is not an object".into(),
            ))
        }
    };
    match answer.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                if multi.keys().any(|m| m.eq_ignore_ascii_case(name)) {
                    continue;
                }
                let text = scalar_text(value)
                    .ok_or_else(|| MalformedResponse(format!("header {name} is not a string")))?;
                headers.push(response_header(name, &text)?);
            }
        }
        Some(_) => return Err(MalformedResponse("headers is not an object".into())),
    }
    for (name, values) in &multi {
        let Value::Array(values) = values else {
            return Err(MalformedResponse(format!(
                "multiValueHeaders {name} is not a list"
            )));
        };
        for value in values {
            let text = scalar_text(value)
                .ok_or_else(|| MalformedResponse(format!("header {name} is not a string")))?;
            headers.push(response_header(name, &text)?);
        }
    }
    let body = match answer.get("body") {
        None | Some(Value::Null) | Some(Value::String(_)) => {
            response_body(answer.get("body"), is_base64)?
        }
        Some(_) => return Err(MalformedResponse("body is not a string".into())),
    };
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
    use http::HeaderMap;

    fn input<'a>(
        headers: &'a HeaderMap,
        params: &'a BTreeMap<String, String>,
        body: &'a EventBody,
    ) -> V1EventInput<'a> {
        V1EventInput {
            request: EventRequest {
                method: "GET",
                headers,
                raw_query: "a=1&a=2&b=x",
                path_parameters: params,
                stage_variables: params,
                body,
                account_id: "000000000000",
                api_id: "abcdefghij",
                stage: "prod",
                request_id: "req",
                domain_name: "abcdefghij.execute-api.localhost",
                source_ip: "127.0.0.1",
                received_at: Utc::now(),
                authorizer: None,
            },
            version: None,
            resource: "/items/{id}",
            path: "/items/7",
            context_path: "/prod/items/7",
            header_case: None,
            resource_id: "res1",
            extended_request_id: "ext",
            api_key: None,
            api_key_id: None,
        }
    }

    #[test]
    fn event_carries_single_and_multi_value_fields() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", "1".parse().unwrap());
        headers.append("x-a", "2".parse().unwrap());
        let params = BTreeMap::from([("id".to_string(), "7".to_string())]);
        let body = EventBody::new(b"", false);
        let e = event(&input(&headers, &params, &body));
        assert_eq!(e["headers"]["x-a"], "2");
        assert_eq!(e["multiValueHeaders"]["x-a"], json!(["1", "2"]));
        assert_eq!(e["queryStringParameters"]["a"], "2");
        assert_eq!(e["multiValueQueryStringParameters"]["a"], json!(["1", "2"]));
        assert_eq!(e["pathParameters"]["id"], "7");
        assert_eq!(e["requestContext"]["stage"], "prod");
        assert_eq!(e["requestContext"]["path"], "/prod/items/7");
        assert_eq!(e["body"], Value::Null);
        assert_eq!(e["isBase64Encoded"], false);
        assert!(e.get("version").is_none());
    }

    #[test]
    fn header_names_keep_the_recorded_case() {
        let mut headers = HeaderMap::new();
        headers.append("x-my-header", "1".parse().unwrap());
        headers.append("x-my-header", "2".parse().unwrap());
        headers.append("accept", "*/*".parse().unwrap());
        let case: HeaderCase = ["X-My-Header", "accept"]
            .into_iter()
            .map(String::from)
            .collect();
        let params = BTreeMap::new();
        let body = EventBody::new(b"", false);
        let mut with_case = input(&headers, &params, &body);
        with_case.header_case = Some(&case);
        let e = event(&with_case);
        assert_eq!(e["headers"]["X-My-Header"], "2");
        assert_eq!(e["multiValueHeaders"]["X-My-Header"], json!(["1", "2"]));
        assert_eq!(e["headers"]["accept"], "*/*");
        assert!(e["headers"].get("x-my-header").is_none());
        let lower = event(&input(&headers, &params, &body));
        assert_eq!(lower["headers"]["x-my-header"], "2");
    }

    #[test]
    fn rest_answers_with_other_members_are_malformed() {
        assert!(rest_response(br#"{"statusCode":200,"body":"x"}"#).is_ok());
        assert!(rest_response(br#"{"statusCode":200,"cookies":["a=1"]}"#).is_err());
        assert!(rest_response(br#"{"statusCode":"abc"}"#).is_err());
        assert!(response(br#"{"statusCode":200,"extra":1}"#).is_ok());
    }

    #[test]
    fn response_maps_headers_and_base64_body() {
        let r = response(
            br#"{"statusCode":201,"headers":{"a":"1","b":2},"multiValueHeaders":{"set-cookie":["x=1","y=2"]},"body":"aGk=","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(r.status.as_u16(), 201);
        assert_eq!(&r.body[..], b"hi");
        let cookies: Vec<_> = r
            .headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .collect();
        assert_eq!(cookies.len(), 2);
    }

    #[test]
    fn answers_without_status_are_malformed() {
        assert!(response(br#"{"body":"x"}"#).is_err());
        assert!(response(br#""text""#).is_err());
        assert!(response(b"not json").is_err());
        assert!(response(br#"{"statusCode":200,"body":{"a":1}}"#).is_err());
    }
}
