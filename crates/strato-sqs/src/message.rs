//! Message attributes and what a message carries besides its body, in the
//! engine's opaque `metadata` (a compact binary encoding of our own).

use base64::Engine as _;
use strato_model::wire::{Doc, ServiceError};

use crate::error;

/// At most this many message attributes per message.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;

pub use strato_model::message_attribute::{AttributeValue, MessageAttribute};

/// The message attributes of a send (`MessageAttributes`), validated as
/// AWS validates them.
pub fn parse_message_attributes(
    input: Option<&Doc>,
) -> Result<Vec<MessageAttribute>, ServiceError> {
    let Some(Doc::Map(members) | Doc::Dict(members)) = input else {
        return Ok(Vec::new());
    };
    if members.len() > MAX_MESSAGE_ATTRIBUTES {
        return Err(error::invalid_parameter_value(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{MAX_MESSAGE_ATTRIBUTES}].",
            members.len()
        )));
    }
    let mut out = Vec::with_capacity(members.len());
    for (name, value) in members {
        validate_attribute_name(name)?;
        out.push(parse_attribute_value(name, value, "user")?);
    }
    Ok(out)
}

/// `MessageSystemAttributes`: only `AWSTraceHeader` exists.
pub fn parse_system_attributes(input: Option<&Doc>) -> Result<Vec<MessageAttribute>, ServiceError> {
    let Some(Doc::Map(members) | Doc::Dict(members)) = input else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(members.len());
    for (name, value) in members {
        if name != "AWSTraceHeader" {
            return Err(error::invalid_parameter_value(format!(
                "Message system attribute name '{name}' is invalid."
            )));
        }
        let attribute = parse_attribute_value(name, value, "system")?;
        if !attribute.data_type.starts_with("String") {
            return Err(error::invalid_parameter_value(format!(
                "Message system attribute '{name}' must be of type String."
            )));
        }
        out.push(attribute);
    }
    Ok(out)
}

fn validate_attribute_name(name: &str) -> Result<(), ServiceError> {
    let lower = name.to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.");
    if valid {
        Ok(())
    } else {
        Err(error::invalid_parameter_value(format!(
            "Message (user) attribute name '{name}' is invalid. The attribute name can contain A-Z, a-z, 0-9, underscore (_), hyphen (-), and period (.) characters."
        )))
    }
}

fn parse_attribute_value(
    name: &str,
    value: &Doc,
    kind: &str,
) -> Result<MessageAttribute, ServiceError> {
    let data_type = value
        .get("DataType")
        .and_then(Doc::as_str)
        .unwrap_or_default()
        .to_string();
    if data_type.is_empty() {
        return Err(error::invalid_parameter_value(format!(
            "Message ({kind}) attribute '{name}' must contain a non-empty attribute type."
        )));
    }
    let base = data_type.split('.').next().unwrap_or_default();
    let empty = || {
        error::invalid_parameter_value(format!(
            "Message ({kind}) attribute '{name}' must contain a non-empty value of type '{base}'."
        ))
    };
    let value = match base {
        "String" | "Number" => {
            let text = value
                .get("StringValue")
                .and_then(Doc::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(empty)?;
            if !valid_characters(text) {
                return Err(error::invalid_message_contents());
            }
            if base == "Number" && !is_number(text) {
                return Err(error::invalid_parameter_value(format!(
                    "Could not cast message attribute '{name}' value to number."
                )));
            }
            AttributeValue::String(text.to_string())
        }
        "Binary" => {
            let bytes = match value.get("BinaryValue") {
                Some(Doc::Blob(b)) => b.clone(),
                Some(other) => other
                    .as_str()
                    .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                    .ok_or_else(empty)?,
                None => Vec::new(),
            };
            if bytes.is_empty() {
                return Err(empty());
            }
            AttributeValue::Binary(bytes)
        }
        _ => {
            return Err(error::invalid_parameter_value(format!(
                "The type of message ({kind}) attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
            )))
        }
    };
    Ok(MessageAttribute {
        name: name.to_string(),
        data_type,
        value,
    })
}

fn is_number(text: &str) -> bool {
    text.trim().parse::<f64>().is_ok_and(f64::is_finite)
}

/// AWS's allowed characters: #x9 | #xA | #xD | #x20–#xD7FF | #xE000–#xFFFD
/// | #x10000–#x10FFFF (a Rust `str` never holds surrogates).
pub fn valid_characters(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
    })
}

/// Which attributes a receive asked for (`All`, `.*`, `prefix.*`, names).
pub fn attribute_selected(requested: &[String], name: &str) -> bool {
    requested.iter().any(|r| {
        r == "All"
            || r == ".*"
            || r == name
            || r.strip_suffix(".*").is_some_and(|prefix| {
                name.starts_with(prefix) && name[prefix.len()..].starts_with('.')
            })
    })
}

/// What a message carries besides its body, stored in the engine's
/// `metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageMeta {
    pub sender_id: String,
    /// The name of the queue the message was sent to: where a message
    /// move task returns it from a dead-letter queue.
    pub origin: String,
    pub attributes: Vec<MessageAttribute>,
    pub system_attributes: Vec<MessageAttribute>,
}

/// Version of the metadata encoding, its first byte.
const META_VERSION: u8 = 1;

impl MessageMeta {
    /// Version byte; sender id; origin queue; attribute count (u16) and attributes; system
    /// attribute count and attributes. Strings and values are a u32
    /// big-endian length and their bytes; a value has a kind byte (1 string,
    /// 2 binary) before it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(META_VERSION);
        put_bytes(&mut out, self.sender_id.as_bytes());
        put_bytes(&mut out, self.origin.as_bytes());
        for list in [&self.attributes, &self.system_attributes] {
            let count = u16::try_from(list.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&count.to_be_bytes());
            for attribute in list.iter().take(usize::from(count)) {
                put_bytes(&mut out, attribute.name.as_bytes());
                put_bytes(&mut out, attribute.data_type.as_bytes());
                match &attribute.value {
                    AttributeValue::String(s) => {
                        out.push(1);
                        put_bytes(&mut out, s.as_bytes());
                    }
                    AttributeValue::Binary(b) => {
                        out.push(2);
                        put_bytes(&mut out, b);
                    }
                }
            }
        }
        out
    }

    /// `None` for metadata this encoding did not write.
    pub fn decode(bytes: &[u8]) -> Option<MessageMeta> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.byte()? != META_VERSION {
            return None;
        }
        let sender_id = reader.string()?;
        let origin = reader.string()?;
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            let count = u16::from_be_bytes([reader.byte()?, reader.byte()?]);
            for _ in 0..count {
                let name = reader.string()?;
                let data_type = reader.string()?;
                let value = match reader.byte()? {
                    1 => AttributeValue::String(reader.string()?),
                    2 => AttributeValue::Binary(reader.bytes()?.to_vec()),
                    _ => return None,
                };
                list.push(MessageAttribute {
                    name,
                    data_type,
                    value,
                });
            }
        }
        let [attributes, system_attributes] = lists;
        Some(MessageMeta {
            sender_id,
            origin,
            attributes,
            system_attributes,
        })
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let length = u32::from_be_bytes(self.bytes.get(self.at..self.at + 4)?.try_into().ok()?);
        self.at += 4;
        let length = usize::try_from(length).ok()?;
        let slice = self.bytes.get(self.at..self.at.checked_add(length)?)?;
        self.at += length;
        Some(slice)
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips() {
        let meta = MessageMeta {
            sender_id: "AIDAEXAMPLE".into(),
            origin: "q".into(),
            attributes: vec![
                MessageAttribute::string("a", "x"),
                MessageAttribute {
                    name: "b".into(),
                    data_type: "Binary.png".into(),
                    value: AttributeValue::Binary(vec![0, 1, 2]),
                },
            ],
            system_attributes: vec![MessageAttribute::string("AWSTraceHeader", "Root=1")],
        };
        assert_eq!(MessageMeta::decode(&meta.encode()), Some(meta));
        assert_eq!(MessageMeta::decode(&[9, 0]), None);
        assert_eq!(MessageMeta::decode(&[1, 0, 0, 0, 9]), None);
    }

    #[test]
    fn allowed_characters_are_aws_ranges() {
        assert!(valid_characters("tab\there\n\r ok é 😀 \u{FFFD}"));
        assert!(!valid_characters("nul\u{0}"));
        assert!(!valid_characters("\u{1F}"));
        assert!(!valid_characters("\u{FFFE}"));
    }

    #[test]
    fn attribute_names_select_by_prefix() {
        let requested = vec!["foo.*".to_string(), "bar".to_string()];
        assert!(attribute_selected(&requested, "foo.x"));
        assert!(!attribute_selected(&requested, "foox"));
        assert!(attribute_selected(&requested, "bar"));
        assert!(!attribute_selected(&requested, "baz"));
        assert!(attribute_selected(&["All".to_string()], "baz"));
    }

    #[test]
    fn attribute_validation_words_errors_as_aws() {
        let doc = Doc::from_json(
            &serde_json::json!({"ErrorDetails": {"DataType": "String", "StringValue": ""}}),
        );
        let err = parse_message_attributes(Some(&doc)).unwrap_err();
        assert_eq!(
            err.message,
            "Message (user) attribute 'ErrorDetails' must contain a non-empty value of type 'String'."
        );
        let doc =
            Doc::from_json(&serde_json::json!({"n": {"DataType": "Number", "StringValue": "abc"}}));
        assert!(parse_message_attributes(Some(&doc)).is_err());
        let doc = Doc::from_json(
            &serde_json::json!({"AWS.x": {"DataType": "String", "StringValue": "v"}}),
        );
        assert!(parse_message_attributes(Some(&doc)).is_err());
        let doc = Doc::from_json(
            &serde_json::json!({"b": {"DataType": "Binary", "BinaryValue": "AAEC"}}),
        );
        let parsed = parse_message_attributes(Some(&doc)).unwrap();
        assert_eq!(parsed[0].value, AttributeValue::Binary(vec![0, 1, 2]));
    }
}
