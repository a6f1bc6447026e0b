//! The protocol-neutral shape of an AWS JSON-era operation: what a service
//! crate takes and gives, free of HTTP. The front end (`strato-api`) maps
//! each wire encoding (awsJson, Smithy RPC v2 CBOR, awsQuery/XML) onto
//! [`Doc`], so a service states its operations once:
//! `operation(&self, caller, name, input: Doc) -> OpResult`.

use base64::Engine as _;

/// A protocol-neutral document: what a JSON or CBOR body decodes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Blob(Vec<u8>),
    /// Seconds since the epoch (CBOR tag 1; a number in JSON).
    Timestamp(f64),
    List(Vec<Doc>),
    /// A structure.
    Map(Vec<(String, Doc)>),
    /// A map-typed member (string keys chosen by the service): the same as
    /// [`Doc::Map`] in JSON and CBOR, `entry`/`key`/`value` in XML.
    Dict(Vec<(String, Doc)>),
    /// A value from a query-protocol form, typed only by how it is read.
    Form(String),
}

impl Doc {
    pub fn map() -> Doc {
        Doc::Map(Vec::new())
    }

    /// Adds a member to a map (ignored on anything else).
    pub fn with(mut self, key: &str, value: impl Into<Doc>) -> Doc {
        if let Doc::Map(members) | Doc::Dict(members) = &mut self {
            members.push((key.to_string(), value.into()));
        }
        self
    }

    /// Adds a member when there is a value.
    pub fn with_opt(self, key: &str, value: Option<impl Into<Doc>>) -> Doc {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }

    /// AWS's tag list, `[{"Key": k, "Value": v}, ...]`, in the order given.
    pub fn tag_list<K: AsRef<str>, V: AsRef<str>>(tags: impl IntoIterator<Item = (K, V)>) -> Doc {
        Doc::List(
            tags.into_iter()
                .map(|(k, v)| Doc::map().with("Key", k.as_ref()).with("Value", v.as_ref()))
                .collect(),
        )
    }

    /// The `(Key, Value)` pairs of the tag list in the member `key`: a tag
    /// without a `Key` is passed over, one without a `Value` has an empty one.
    pub fn tag_pairs(&self, key: &str) -> Vec<(String, String)> {
        self.get(key)
            .and_then(Doc::as_list)
            .unwrap_or_default()
            .iter()
            .filter_map(|t| {
                let value = t.get("Value").and_then(Doc::as_str).unwrap_or_default();
                Some((t.get("Key")?.as_str()?.to_string(), value.to_string()))
            })
            .collect()
    }

    pub fn get(&self, key: &str) -> Option<&Doc> {
        match self {
            Doc::Map(members) | Doc::Dict(members) => members
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .filter(|v| **v != Doc::Null),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Doc::Text(s) | Doc::Form(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Doc::Int(i) => Some(*i),
            Doc::Float(f) if f.fract() == 0.0 => Some(saturating_i64(*f)),
            Doc::Form(s) => s.parse().ok(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Doc::Bool(b) => Some(*b),
            Doc::Form(s) => s.parse().ok(),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Doc]> {
        match self {
            Doc::List(items) => Some(items),
            _ => None,
        }
    }

    /// A number member: a JSON or CBOR number, or a query form's text.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Doc::Int(i) => Some(*i as f64),
            Doc::Float(f) => Some(*f),
            Doc::Form(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// The text items of a list member; an absent member is an empty list.
    pub fn strings(member: Option<&Doc>) -> Vec<String> {
        member
            .and_then(Doc::as_list)
            .unwrap_or_default()
            .iter()
            .filter_map(Doc::as_str)
            .map(str::to_string)
            .collect()
    }

    /// A timestamp member in milliseconds: a CBOR timestamp, or epoch
    /// seconds as a JSON number.
    pub fn as_timestamp_ms(&self) -> Option<i64> {
        match self {
            Doc::Timestamp(s) | Doc::Float(s) => Some(ms_from_secs_f64(*s)),
            Doc::Int(s) => Some(s.saturating_mul(1000)),
            // The query protocol sends ISO 8601.
            Doc::Form(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp_millis())
                .ok()
                .or_else(|| s.parse::<f64>().ok().map(ms_from_secs_f64)),
            _ => None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Doc::Null => Value::Null,
            Doc::Bool(b) => Value::Bool(*b),
            Doc::Int(i) => Value::from(*i),
            Doc::Float(f) | Doc::Timestamp(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Doc::Text(s) | Doc::Form(s) => Value::String(s.clone()),
            Doc::Blob(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
            Doc::List(items) => Value::Array(items.iter().map(Doc::to_json).collect()),
            Doc::Map(members) | Doc::Dict(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    pub fn from_json(value: &serde_json::Value) -> Doc {
        use serde_json::Value;
        match value {
            Value::Null => Doc::Null,
            Value::Bool(b) => Doc::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Doc::Int(i),
                None => Doc::Float(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => Doc::Text(s.clone()),
            Value::Array(items) => Doc::List(items.iter().map(Doc::from_json).collect()),
            Value::Object(members) => Doc::Map(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), Doc::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// An f64 as `i64`, saturating at `i64`'s ends (NaN is 0) and rounding
/// toward zero: a number out of range is pinned, not wrapped.
// The `as` conversion from f64 is exactly that saturation.
#[allow(clippy::cast_possible_truncation)]
fn saturating_i64(value: f64) -> i64 {
    value as i64
}

/// Epoch seconds (a JSON number, a CBOR timestamp) as the nearest epoch
/// millisecond, saturating.
pub fn ms_from_secs_f64(secs: f64) -> i64 {
    saturating_i64((secs * 1000.0).round())
}

impl From<&str> for Doc {
    fn from(s: &str) -> Doc {
        Doc::Text(s.to_string())
    }
}

impl From<String> for Doc {
    fn from(s: String) -> Doc {
        Doc::Text(s)
    }
}

impl From<i64> for Doc {
    fn from(i: i64) -> Doc {
        Doc::Int(i)
    }
}

impl From<u64> for Doc {
    fn from(i: u64) -> Doc {
        Doc::Int(i64::try_from(i).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Doc {
    fn from(f: f64) -> Doc {
        Doc::Float(f)
    }
}

impl From<bool> for Doc {
    fn from(b: bool) -> Doc {
        Doc::Bool(b)
    }
}

impl From<Vec<Doc>> for Doc {
    fn from(items: Vec<Doc>) -> Doc {
        Doc::List(items)
    }
}

/// An error as a JSON-era service reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceError {
    /// The error shape's name (`ResourceNotFoundException`).
    pub code: &'static str,
    pub message: String,
    /// The HTTP status (400 unless said otherwise).
    pub status: u16,
    /// For services with the awsQueryCompatible trait (CloudWatch): the
    /// query protocol's code, sent as `x-amzn-query-error: Code;Sender`.
    pub query_code: Option<&'static str>,
}

impl ServiceError {
    pub fn new(code: &'static str, message: impl Into<String>) -> ServiceError {
        ServiceError {
            code,
            message: message.into(),
            status: 400,
            query_code: None,
        }
    }

    pub fn internal(message: impl Into<String>) -> ServiceError {
        ServiceError {
            status: 500,
            ..ServiceError::new("ServiceUnavailableException", message)
        }
    }

    pub fn query_compatible(mut self, query_code: &'static str) -> ServiceError {
        self.query_code = Some(query_code);
        self
    }

    /// A server-side fault (`Receiver` in query-protocol terms).
    pub fn is_server_error(&self) -> bool {
        self.status >= 500
    }
}

/// A member a query-protocol (awsQuery) service encodes *flattened*, under
/// another name than its JSON one: SQS's `Attributes` map is
/// `Attribute.1.Name=..&Attribute.1.Value=..` in a form and
/// `<Attribute><Name/><Value/></Attribute>` in XML, its `Messages` list is
/// repeated `<Message>` elements. A service lists these once; the front end
/// reads forms and writes XML with them, so the operations only ever see
/// the JSON shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlMember {
    /// Only within this action's input and output (`None`: every action),
    /// for names that differ per action (`Entries`).
    pub action: Option<&'static str>,
    /// The member's JSON name.
    pub json: &'static str,
    /// The element (and form prefix) each item or entry goes under.
    pub xml: &'static str,
    /// For a map: the element names of an entry's key and value.
    pub entry: Option<(&'static str, &'static str)>,
}

impl XmlMember {
    /// The flattened member named `json` (in output) within `action`.
    pub fn by_json<'a>(
        members: &'a [XmlMember],
        action: &str,
        json: &str,
    ) -> Option<&'a XmlMember> {
        members
            .iter()
            .find(|m| m.json == json && m.action.is_none_or(|a| a == action))
    }

    /// The flattened member whose form prefix is `xml` within `action`.
    pub fn by_xml<'a>(members: &'a [XmlMember], action: &str, xml: &str) -> Option<&'a XmlMember> {
        members
            .iter()
            .find(|m| m.xml == xml && m.action.is_none_or(|a| a == action))
    }
}

pub type OpResult = Result<Doc, ServiceError>;
