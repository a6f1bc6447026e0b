//! The RPC wire protocols AWS's JSON-era services speak, in one place so
//! each service states its operations once (DESIGN §5):
//!
//! - awsJson 1.0 / 1.1: `POST /` with `X-Amz-Target: <Prefix>.<Operation>`
//!   and a JSON body; errors `{"__type": ..., "message": ...}`.
//! - Smithy RPC v2 CBOR: `POST /service/<Service>/operation/<Operation>`
//!   with `smithy-protocol: rpc-v2-cbor` and CBOR bodies (timestamps as
//!   tag 1, epoch seconds).
//!
//! - awsQuery (CloudWatch's older clients): `POST /` with a form body
//!   (`Action=...&Version=...`, lists as `Name.member.N`), XML answers;
//!   the service is the SigV4 scope's.
//!
//! Operations take and give a [`Doc`], which every encoding maps onto.
//! [`dispatch_target`] is the one `POST /` route: it picks the service by
//! its `X-Amz-Target` prefix (add further JSON services there), and
//! [`dispatch_signed_rest`] sends REST paths two services share by the
//! signing service.
//!
//! Why over 800 lines: DESIGN §5 asks for the protocols and the dispatch
//! by target, scope and signing service in one layer, so no service
//! decodes a wire format or picks a service a second way; splitting the
//! codecs from the dispatch would put the two halves of one decision
//! (which service, in which encoding) in different files.

mod compression;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::auth::Caller;
use crate::ApiState;
use strato_gateway::extract::Authenticated;

use strato_model::wire::ms_from_secs_f64;
pub use strato_model::wire::{Doc, OpResult, ServiceError, XmlMember};

/// Smithy RPC v2 CBOR's encoding of a [`Doc`] (kept here, with the other
/// wire encodings, so the model stays free of codecs).
pub trait CborDoc: Sized {
    fn to_cbor(&self) -> ciborium::Value;
    fn from_cbor(value: &ciborium::Value) -> Result<Self, String>;
}

impl CborDoc for Doc {
    fn to_cbor(&self) -> ciborium::Value {
        use ciborium::Value;
        match self {
            Doc::Null => Value::Null,
            Doc::Bool(b) => Value::Bool(*b),
            Doc::Int(i) => Value::Integer((*i).into()),
            Doc::Float(f) => Value::Float(*f),
            Doc::Text(s) | Doc::Form(s) => Value::Text(s.clone()),
            Doc::Blob(b) => Value::Bytes(b.clone()),
            Doc::Timestamp(s) => Value::Tag(1, Box::new(Value::Float(*s))),
            Doc::List(items) => Value::Array(items.iter().map(Doc::to_cbor).collect()),
            Doc::Map(members) | Doc::Dict(members) => Value::Map(
                members
                    .iter()
                    .map(|(k, v)| (Value::Text(k.clone()), v.to_cbor()))
                    .collect(),
            ),
        }
    }

    fn from_cbor(value: &ciborium::Value) -> Result<Doc, String> {
        use ciborium::Value;
        Ok(match value {
            Value::Null => Doc::Null,
            Value::Bool(b) => Doc::Bool(*b),
            Value::Integer(i) => {
                Doc::Int(i64::try_from(*i).map_err(|_| "integer out of range".to_string())?)
            }
            Value::Float(f) => Doc::Float(*f),
            Value::Text(s) => Doc::Text(s.clone()),
            Value::Bytes(b) => Doc::Blob(b.clone()),
            Value::Tag(1, inner) => match inner.as_ref() {
                Value::Integer(i) => Doc::Timestamp(
                    i64::try_from(*i).map_err(|_| "timestamp out of range".to_string())? as f64,
                ),
                Value::Float(f) => Doc::Timestamp(*f),
                _ => return Err("tag 1 must hold a number".into()),
            },
            Value::Tag(tag, _) => return Err(format!("unsupported CBOR tag {tag}")),
            Value::Array(items) => {
                Doc::List(items.iter().map(Doc::from_cbor).collect::<Result<_, _>>()?)
            }
            Value::Map(members) => Doc::Map(
                members
                    .iter()
                    .map(|(k, v)| match k {
                        Value::Text(k) => Ok((k.clone(), Doc::from_cbor(v)?)),
                        _ => Err("map keys must be text".to_string()),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err("unsupported CBOR value".into()),
        })
    }
}

/// How a request arrived, and so how its answer goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// awsJson 1.0 or 1.1 (the content type names the version).
    Json(&'static str),
    RpcV2Cbor,
}

impl Wire {
    pub fn decode(self, body: &[u8]) -> Result<Doc, ServiceError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Doc::map());
        }
        match self {
            Wire::Json(_) => serde_json::from_slice::<serde_json::Value>(body)
                .map(|v| Doc::from_json(&v))
                .map_err(|e| {
                    ServiceError::new(
                        "SerializationException",
                        format!("Could not parse request body into json: {e}"),
                    )
                }),
            Wire::RpcV2Cbor => ciborium::de::from_reader::<ciborium::Value, _>(body)
                .map_err(|e| e.to_string())
                .and_then(|v| Doc::from_cbor(&v))
                .map_err(|e| {
                    ServiceError::new(
                        "SerializationException",
                        format!("Could not parse the CBOR request body: {e}"),
                    )
                }),
        }
    }

    pub fn respond(self, result: OpResult) -> Response {
        let (status, body, error) = match result {
            Ok(doc) => (StatusCode::OK, doc, None),
            Err(e) => {
                let body = Doc::map()
                    .with("__type", e.code)
                    .with("message", e.message.clone());
                (status_code(&e), body, Some(e))
            }
        };
        let mut response = match self {
            Wire::Json(content_type) => {
                let bytes = serde_json::to_vec(&body.to_json()).unwrap_or_default();
                let mut r = (status, bytes).into_response();
                r.headers_mut()
                    .insert("content-type", HeaderValue::from_static(content_type));
                r
            }
            Wire::RpcV2Cbor => {
                let mut bytes = Vec::new();
                if let Err(e) = ciborium::ser::into_writer(&body.to_cbor(), &mut bytes) {
                    tracing::error!(error = %e, "cannot encode a CBOR answer");
                }
                let mut r = (status, bytes).into_response();
                let headers = r.headers_mut();
                headers.insert("content-type", HeaderValue::from_static("application/cbor"));
                headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
                r
            }
        };
        if let Some(e) = error {
            if let Ok(v) = HeaderValue::from_str(e.code) {
                response.headers_mut().insert("x-amzn-ErrorType", v);
            }
            if let Some(q) = e.query_code {
                let fault = if e.is_server_error() {
                    "Receiver"
                } else {
                    "Sender"
                };
                if let Ok(v) = HeaderValue::from_str(&format!("{q};{fault}")) {
                    response.headers_mut().insert("x-amzn-query-error", v);
                }
            }
        }
        response
    }
}

/// The HTTP status of a service error.
fn status_code(error: &ServiceError) -> StatusCode {
    StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn unknown_operation(wire: Wire, target: &str) -> Response {
    wire.respond(Err(ServiceError::new(
        "UnknownOperationException",
        format!("Unknown operation {target}"),
    )))
}

/// `POST /` with `X-Amz-Target`: the JSON services, by target prefix.
pub async fn dispatch_target(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match compression::inflate(&headers, body) {
        Ok(body) => body,
        Err(e) => return Wire::Json("application/x-amz-json-1.0").respond(Err(e)),
    };
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target.is_empty() && content_type.starts_with("application/x-www-form-urlencoded") {
        return dispatch_query(&state, &caller, &headers, &body).await;
    }
    let json_version = match headers.get("content-type").and_then(|v| v.to_str().ok()) {
        Some(t) if t.contains("1.0") => "application/x-amz-json-1.0",
        _ => "application/x-amz-json-1.1",
    };
    let wire = Wire::Json(json_version);
    let Some((prefix, operation)) = target.split_once('.') else {
        return unknown_operation(wire, &target);
    };
    if prefix == strato_dynamodb::TARGET_PREFIX || prefix == strato_dynamodb::STREAMS_TARGET_PREFIX
    {
        // DynamoDB's bodies go to its engine as they came: attribute values
        // are typed JSON that a `Doc` round trip would loosen.
        let reply = state
            .dynamodb
            .operation(&caller, prefix, operation, &body)
            .await;
        return dynamodb_response(reply);
    }
    let input = match wire.decode(&body) {
        Ok(doc) => doc,
        Err(e) => return wire.respond(Err(e)),
    };
    let result = match prefix {
        crate::observe::logs::TARGET_PREFIX => {
            crate::observe::logs::operation(&state, &caller, operation, input).await
        }
        crate::observe::cloudwatch::SERVICE => {
            crate::observe::cloudwatch::operation(&state, &caller, operation, input).await
        }
        strato_sqs::TARGET_PREFIX => {
            let endpoint = endpoint(&headers);
            let request = strato_sqs::SqsRequest {
                caller: &caller,
                endpoint: &endpoint,
            };
            state.sqs.operation(request, operation, input).await
        }
        strato_events::TARGET_PREFIX => state.events.operation(&caller, operation, input).await,
        _ => return unknown_operation(wire, &target),
    };
    wire.respond(result)
}

/// A DynamoDB answer: JSON 1.0, with the `x-amz-crc32` of the body that the
/// AWS SDKs check (DynamoDB is the one service that sends it).
fn dynamodb_response(reply: strato_dynamodb::Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_REQUEST);
    let crc = crc32fast::hash(reply.body.as_bytes());
    let mut response = (status, reply.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    if let Ok(value) = HeaderValue::from_str(&crc.to_string()) {
        headers.insert("x-amz-crc32", value);
    }
    response
}

/// `http://host:port` as the client addressed us (queue URLs are built
/// from it, so they work through `--endpoint-url`).
fn endpoint(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// `POST /{account}/{queue}`: SQS clients of the query protocol post to
/// the queue's URL, which then names the queue (JSON clients may too).
pub async fn dispatch_queue_url(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path((account, queue)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let queue_url = format!("{}/{account}/{queue}", endpoint(&headers));
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Some(operation) = target
        .strip_prefix(strato_sqs::TARGET_PREFIX)
        .and_then(|t| t.strip_prefix('.'))
    {
        let wire = Wire::Json("application/x-amz-json-1.0");
        let input = match wire.decode(&body) {
            Ok(doc) => with_default(doc, "QueueUrl", &queue_url),
            Err(e) => return wire.respond(Err(e)),
        };
        let endpoint = endpoint(&headers);
        let request = strato_sqs::SqsRequest {
            caller: &caller,
            endpoint: &endpoint,
        };
        return wire.respond(state.sqs.operation(request, operation, input).await);
    }
    sqs_query(&state, &caller, &headers, &body, Some(&queue_url)).await
}

/// Adds a member the input lacks.
fn with_default(doc: Doc, key: &str, value: &str) -> Doc {
    if doc.get(key).is_some() {
        doc
    } else {
        doc.with(key, value)
    }
}

/// SQS over the query protocol: flattened forms in, flattened XML out.
async fn sqs_query(
    state: &ApiState,
    caller: &Caller,
    headers: &HeaderMap,
    body: &[u8],
    queue_url: Option<&str>,
) -> Response {
    let (action, input) = decode_form_flattened(body, strato_sqs::XML_MEMBERS);
    let input = match queue_url {
        Some(url) => with_default(input, "QueueUrl", url),
        None => input,
    };
    let endpoint = endpoint(headers);
    let request = strato_sqs::SqsRequest {
        caller,
        endpoint: &endpoint,
    };
    let result = state
        .sqs
        .operation(request, &action, input)
        .await
        .map_err(|mut e| {
            // The query protocol words a missing queue its own way.
            if e.code == "QueueDoesNotExist" {
                e.message = strato_sqs::error::NON_EXISTENT_QUEUE_QUERY_MESSAGE.to_string();
            }
            e
        });
    query_response_flattened(
        strato_sqs::XML_NAMESPACE,
        &action,
        strato_sqs::XML_MEMBERS,
        result,
    )
}

/// REST paths two services share, told apart by the service the request
/// was signed for (DESIGN §5: the SigV4 scope decides, not the ARN):
/// `/tags/{arn}` is Scheduler's tag API when signed for `scheduler`, API
/// Gateway's (its router's route) otherwise.
pub async fn dispatch_signed_rest(
    State(state): State<Arc<ApiState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let scheduler_tags = request.uri().path().starts_with("/tags/")
        && signed_service(request.headers()).as_deref()
            == Some(strato_events::SCHEDULER_SIGNING_NAME);
    if !scheduler_tags {
        return next.run(request).await;
    }
    let Some(caller) = request.extensions().get::<Caller>().cloned() else {
        return next.run(request).await;
    };
    let method = request.method().clone();
    let uri = request.uri().clone();
    let body = match axum::body::to_bytes(request.into_body(), crate::auth::MAX_REQUEST_BODY).await
    {
        Ok(body) => body,
        Err(e) => {
            return Wire::Json("application/json").respond(Err(ServiceError::new(
                "ValidationException",
                format!("Could not read the request body: {e}"),
            )))
        }
    };
    crate::scheduler::tags(&state, &caller, &method, &uri, &body).await
}

/// The service a request was signed for (`monitoring`, `sqs`, ...).
fn signed_service(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    scope.split('/').nth(3).map(str::to_string)
}

/// awsQuery: `Action=...` in a form body, answered in XML.
async fn dispatch_query(
    state: &ApiState,
    caller: &Caller,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let service = signed_service(headers).unwrap_or_default();
    if service == strato_sqs::SIGNING_NAME {
        return sqs_query(state, caller, headers, body, None).await;
    }
    if service == strato_sns::SIGNING_NAME {
        let (action, input) = decode_form(body);
        let endpoint = endpoint(headers);
        let request = strato_sns::SnsRequest {
            caller,
            endpoint: &endpoint,
        };
        let result = state.sns.operation(request, &action, input).await;
        return query_response(strato_sns::XML_NAMESPACE, &action, result);
    }
    let (action, input) = decode_form(body);
    if service == strato_iam::IAM_SIGNING_NAME || service == strato_iam::STS_SIGNING_NAME {
        let iam_caller = strato_iam::IamCaller {
            account: &caller.account_id,
            access_key_id: &caller.access_key_id,
        };
        return if service == strato_iam::IAM_SIGNING_NAME {
            let result = state.iam.iam_operation(&iam_caller, &action, &input);
            query_response(strato_iam::IAM_XML_NAMESPACE, &action, result)
        } else {
            let result = state.iam.sts_operation(&iam_caller, &action, &input);
            query_response(strato_iam::STS_XML_NAMESPACE, &action, result)
        };
    }
    let result = match service.as_str() {
        "monitoring" => crate::observe::cloudwatch::operation(state, caller, &action, input).await,
        _ => Err(ServiceError::new(
            "UnknownOperationException",
            format!("Unknown operation {service}.{action}"),
        )),
    };
    query_response(crate::observe::cloudwatch::XML_NAMESPACE, &action, result)
}

enum FormNode {
    Leaf(String),
    Map(std::collections::BTreeMap<String, FormNode>),
    List(std::collections::BTreeMap<usize, FormNode>),
}

impl FormNode {
    fn insert(&mut self, path: &[&str], value: String) {
        let Some((first, rest)) = path.split_first() else {
            *self = FormNode::Leaf(value);
            return;
        };
        if let (FormNode::List(items), Ok(index)) = (&mut *self, first.parse::<usize>()) {
            items
                .entry(index)
                .or_insert_with(|| FormNode::Map(Default::default()))
                .insert(rest, value);
            return;
        }
        if !matches!(self, FormNode::Map(_)) {
            *self = FormNode::Map(Default::default());
        }
        if let FormNode::Map(members) = self {
            let is_list = rest.first() == Some(&"member");
            let child = members.entry(first.to_string()).or_insert_with(|| {
                if is_list {
                    FormNode::List(Default::default())
                } else {
                    FormNode::Map(Default::default())
                }
            });
            let rest = if is_list { &rest[1..] } else { rest };
            child.insert(rest, value);
        }
    }

    fn into_doc(self) -> Doc {
        match self {
            FormNode::Leaf(text) => Doc::Form(text),
            FormNode::Map(members) => Doc::Map(
                members
                    .into_iter()
                    .map(|(k, v)| (k, v.into_doc()))
                    .collect(),
            ),
            FormNode::List(items) => {
                Doc::List(items.into_values().map(FormNode::into_doc).collect())
            }
        }
    }
}

/// A query-protocol form: its `Action` and the rest as a [`Doc`]
/// (`A.member.1.B=x` is `{"A": [{"B": "x"}]}`).
pub fn decode_form(body: &[u8]) -> (String, Doc) {
    decode_form_flattened(body, &[])
}

/// [`decode_form`] for a service with flattened members (SQS): each
/// `Attribute.N.Name`/`Attribute.N.Value` pair becomes an entry of the
/// JSON-named map (`Attributes`), each `AttributeName.N` an item of the
/// JSON-named list, so the operation sees the JSON shape.
pub fn decode_form_flattened(body: &[u8], flattened: &[XmlMember]) -> (String, Doc) {
    let (action, doc) = decode_form_tree(body);
    let doc = unflatten(doc, &action, flattened);
    (action, doc)
}

/// Rewrites flattened members (an index-keyed map, `{"1": .., "2": ..}`)
/// under their JSON names, recursively.
fn unflatten(doc: Doc, action: &str, flattened: &[XmlMember]) -> Doc {
    let Doc::Map(members) = doc else {
        return doc;
    };
    let mut out = Vec::with_capacity(members.len());
    for (key, value) in members {
        // Only an indexed member (`Name.1...`) is flattened: a plain
        // `QueueUrl` is not the output list `QueueUrl` stands for.
        let indexed = matches!(&value, Doc::Map(m)
            if !m.is_empty() && m.iter().all(|(i, _)| i.parse::<usize>().is_ok()));
        let flat = XmlMember::by_xml(flattened, action, &key).filter(|_| indexed);
        let (Some(flat), Doc::Map(indexed)) = (flat, &value) else {
            out.push((key, unflatten(value, action, flattened)));
            continue;
        };
        let mut items: Vec<(usize, Doc)> = indexed
            .iter()
            .filter_map(|(i, v)| i.parse::<usize>().ok().map(|i| (i, v.clone())))
            .collect();
        items.sort_by_key(|(i, _)| *i);
        let converted = match flat.entry {
            Some((key_name, value_name)) => Doc::Dict(
                items
                    .into_iter()
                    .filter_map(|(_, entry)| {
                        let name = entry.get(key_name)?.as_str()?.to_string();
                        let value = entry
                            .get(value_name)
                            .cloned()
                            .map(|v| unflatten(v, action, flattened))
                            .unwrap_or(Doc::Form(String::new()));
                        Some((name, value))
                    })
                    .collect(),
            ),
            None => Doc::List(
                items
                    .into_iter()
                    .map(|(_, v)| unflatten(v, action, flattened))
                    .collect(),
            ),
        };
        out.push((flat.json.to_string(), converted));
    }
    Doc::Map(out)
}

fn decode_form_tree(body: &[u8]) -> (String, Doc) {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut root = FormNode::Map(Default::default());
    let mut action = String::new();
    for pair in String::from_utf8_lossy(body).split('&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (decode(key), decode(value));
        match key.as_str() {
            "Action" => action = value,
            "Version" => {}
            _ => {
                let path: Vec<&str> = key.split('.').collect();
                root.insert(&path, value);
            }
        }
    }
    (action, root.into_doc())
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How a service's XML answers differ from the default awsQuery shape
/// (lists as `<member>`, maps as `<entry><key/><value/></entry>`).
#[derive(Clone, Copy)]
struct XmlStyle<'a> {
    action: &'a str,
    flattened: &'a [XmlMember],
}

fn write_xml(out: &mut String, doc: &Doc, style: XmlStyle<'_>) {
    match doc {
        Doc::Null => {}
        Doc::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Doc::Int(i) => out.push_str(&i.to_string()),
        Doc::Float(f) => out.push_str(&f.to_string()),
        Doc::Text(s) | Doc::Form(s) => out.push_str(&xml_escape(s)),
        Doc::Blob(b) => out.push_str(&base64::engine::general_purpose::STANDARD.encode(b)),
        Doc::Timestamp(secs) => {
            let ms = ms_from_secs_f64(*secs);
            let time = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
            out.push_str(&time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
        }
        Doc::List(items) => {
            for item in items {
                out.push_str("<member>");
                write_xml(out, item, style);
                out.push_str("</member>");
            }
        }
        Doc::Map(members) => {
            for (key, value) in members {
                if *value == Doc::Null {
                    continue;
                }
                match XmlMember::by_json(style.flattened, style.action, key) {
                    Some(flat) => write_flattened(out, flat, value, style),
                    None => {
                        out.push_str(&format!("<{key}>"));
                        write_xml(out, value, style);
                        out.push_str(&format!("</{key}>"));
                    }
                }
            }
        }
        Doc::Dict(members) => {
            for (key, value) in members {
                out.push_str("<entry><key>");
                out.push_str(&xml_escape(key));
                out.push_str("</key><value>");
                write_xml(out, value, style);
                out.push_str("</value></entry>");
            }
        }
    }
}

/// A flattened member: each list item, or each map entry, as its own
/// element.
fn write_flattened(out: &mut String, flat: &XmlMember, value: &Doc, style: XmlStyle<'_>) {
    let element = flat.xml;
    match (value, flat.entry) {
        (Doc::List(items), _) => {
            for item in items {
                out.push_str(&format!("<{element}>"));
                write_xml(out, item, style);
                out.push_str(&format!("</{element}>"));
            }
        }
        (Doc::Map(entries) | Doc::Dict(entries), Some((key_name, value_name))) => {
            for (key, item) in entries {
                out.push_str(&format!("<{element}><{key_name}>"));
                out.push_str(&xml_escape(key));
                out.push_str(&format!("</{key_name}><{value_name}>"));
                write_xml(out, item, style);
                out.push_str(&format!("</{value_name}></{element}>"));
            }
        }
        (other, _) => {
            out.push_str(&format!("<{element}>"));
            write_xml(out, other, style);
            out.push_str(&format!("</{element}>"));
        }
    }
}

/// The XML answer of a query-protocol action (or its error).
pub fn query_response(namespace: &str, action: &str, result: OpResult) -> Response {
    query_response_flattened(namespace, action, &[], result)
}

/// [`query_response`] for a service whose members are partly flattened
/// (SQS): `flattened` names them.
pub fn query_response_flattened(
    namespace: &str,
    action: &str,
    flattened: &[XmlMember],
    result: OpResult,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (status, body) = match result {
        Ok(doc) => {
            let mut body = format!("<{action}Response xmlns=\"{namespace}\"><{action}Result>");
            write_xml(&mut body, &doc, XmlStyle { action, flattened });
            body.push_str(&format!(
                "</{action}Result><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
            ));
            (StatusCode::OK, body)
        }
        Err(e) => {
            let fault = if e.is_server_error() {
                "Receiver"
            } else {
                "Sender"
            };
            let code = e.query_code.unwrap_or(e.code);
            (
                status_code(&e),
                format!(
                    "<ErrorResponse xmlns=\"{namespace}\"><Error><Type>{fault}</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
                    xml_escape(&e.message)
                ),
            )
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-RequestId", v);
    }
    response
}

/// `POST /service/{service}/operation/{operation}`: Smithy RPC v2 CBOR.
pub async fn dispatch_rpc_v2(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path((service, operation)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let wire = Wire::RpcV2Cbor;
    let body = match compression::inflate(&headers, body) {
        Ok(body) => body,
        Err(e) => return wire.respond(Err(e)),
    };
    let input = match wire.decode(&body) {
        Ok(doc) => doc,
        Err(e) => return wire.respond(Err(e)),
    };
    let result = match service.as_str() {
        crate::observe::cloudwatch::SERVICE => {
            crate::observe::cloudwatch::operation(&state, &caller, &operation, input).await
        }
        _ => return unknown_operation(wire, &format!("{service}.{operation}")),
    };
    wire.respond(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbor_timestamps_are_tag_1() {
        let doc = Doc::map().with("T", Doc::Timestamp(1.5));
        let mut bytes = Vec::new();
        ciborium::ser::into_writer(&doc.to_cbor(), &mut bytes).unwrap();
        let back: ciborium::Value = ciborium::de::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(Doc::from_cbor(&back).unwrap(), doc);
    }

    #[test]
    fn query_forms_become_nested_documents() {
        let (action, doc) = decode_form(
            b"Action=GetMetricData&Version=2010-08-01&MetricDataQueries.member.1.Id=a&MetricDataQueries.member.1.MetricStat.Period=60&MetricDataQueries.member.2.Id=b&StartTime=2026-11-26T20%3A00%3A00Z",
        );
        assert_eq!(action, "GetMetricData");
        let queries = doc.get("MetricDataQueries").and_then(Doc::as_list).unwrap();
        assert_eq!(queries.len(), 2);
        assert_eq!(queries[1].get("Id").and_then(Doc::as_str), Some("b"));
        let period = queries[0].get("MetricStat").and_then(|s| s.get("Period"));
        assert_eq!(period.and_then(Doc::as_i64), Some(60));
        assert_eq!(
            doc.get("StartTime").and_then(Doc::as_timestamp_ms),
            Some(1_795_723_200_000)
        );
    }

    #[tokio::test]
    async fn flattened_forms_take_their_json_names() {
        const MEMBERS: &[XmlMember] = &[
            XmlMember {
                action: None,
                json: "Attributes",
                xml: "Attribute",
                entry: Some(("Name", "Value")),
            },
            XmlMember {
                action: None,
                json: "QueueUrls",
                xml: "QueueUrl",
                entry: None,
            },
            XmlMember {
                action: None,
                json: "AttributeNames",
                xml: "AttributeName",
                entry: None,
            },
        ];
        let (action, doc) = decode_form_flattened(
            b"Action=CreateQueue&QueueUrl=http%3A%2F%2Fh%2F1%2Fq&Attribute.2.Name=B&Attribute.2.Value=2&Attribute.1.Name=A&Attribute.1.Value=1&AttributeName.10=J&AttributeName.2=I",
            MEMBERS,
        );
        assert_eq!(action, "CreateQueue");
        assert_eq!(
            doc.get("QueueUrl").and_then(Doc::as_str),
            Some("http://h/1/q")
        );
        assert_eq!(
            doc.get("Attributes"),
            Some(&Doc::Dict(vec![
                ("A".into(), Doc::Form("1".into())),
                ("B".into(), Doc::Form("2".into()))
            ]))
        );
        let names: Vec<&str> = doc
            .get("AttributeNames")
            .and_then(Doc::as_list)
            .unwrap()
            .iter()
            .filter_map(Doc::as_str)
            .collect();
        assert_eq!(names, ["I", "J"]);
        let response = query_response_flattened(
            "ns",
            "ListQueues",
            MEMBERS,
            Ok(Doc::map().with("QueueUrls", vec![Doc::from("a"), Doc::from("b")])),
        );
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            body.contains(
                "<ListQueuesResult><QueueUrl>a</QueueUrl><QueueUrl>b</QueueUrl></ListQueuesResult>"
            ),
            "{body}"
        );
    }

    #[test]
    fn null_members_count_as_absent() {
        let doc = Doc::from_json(&serde_json::json!({"a": null, "b": 1}));
        assert!(doc.get("a").is_none());
        assert_eq!(doc.get("b").and_then(Doc::as_i64), Some(1));
    }
}
