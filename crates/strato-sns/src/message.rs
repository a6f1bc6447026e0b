//! Message attributes (`MessageAttributes` of Publish), their validation as
//! AWS words it, and the query protocol's map encoding.

use base64::Engine as _;
use strato_model::wire::{Doc, ServiceError};

use crate::error;

pub use strato_model::message_attribute::{AttributeValue, MessageAttribute};

/// The attributes as one JSON object (`{"name": {"Type", "Value"}}`).
pub fn attributes_json(attributes: &[MessageAttribute]) -> serde_json::Value {
    serde_json::Value::Object(
        attributes
            .iter()
            .map(|a| (a.name.clone(), a.envelope_json()))
            .collect(),
    )
}

/// The members of a map-typed input: JSON's object, or the query
/// protocol's `Name.entry.N.<key>` / `Name.entry.N.<value>`.
pub fn map_entries(doc: Option<&Doc>, key: &str, value: &str) -> Vec<(String, Doc)> {
    let Some(Doc::Map(members) | Doc::Dict(members)) = doc else {
        return Vec::new();
    };
    if let [(name, Doc::Map(indexed))] = members.as_slice() {
        if name == "entry" && indexed.iter().all(|(i, _)| i.parse::<usize>().is_ok()) {
            let mut items: Vec<(usize, &Doc)> = indexed
                .iter()
                .filter_map(|(i, v)| i.parse::<usize>().ok().map(|i| (i, v)))
                .collect();
            items.sort_by_key(|(i, _)| *i);
            return items
                .into_iter()
                .filter_map(|(_, entry)| {
                    let name = entry.get(key)?.as_str()?.to_string();
                    let v = entry
                        .get(value)
                        .cloned()
                        .unwrap_or(Doc::Form(String::new()));
                    Some((name, v))
                })
                .collect();
        }
    }
    members.clone()
}

/// A string-to-string map input (`Attributes`).
pub fn string_map(doc: Option<&Doc>) -> Vec<(String, String)> {
    map_entries(doc, "key", "value")
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// `MessageAttributes` of a Publish (or of batch entry `entry`, 1-based),
/// validated in AWS's order and words.
pub fn parse_attributes(
    doc: Option<&Doc>,
    entry: Option<usize>,
) -> Result<Vec<MessageAttribute>, ServiceError> {
    let mut out = Vec::new();
    for (name, value) in map_entries(doc, "Name", "Value") {
        validate_name(&name)?;
        let Some(data_type) = value.get("DataType").and_then(Doc::as_str) else {
            let path = match entry {
                Some(n) => format!("publishBatchRequestEntries.{n}.member.messageAttributes"),
                None => "messageAttributes".to_string(),
            };
            return Err(error::validation(format!(
                "1 validation error detected: Value null at '{path}.{name}.member.dataType' failed to satisfy constraint: Member must not be null"
            )));
        };
        let string = value.get("StringValue").and_then(Doc::as_str);
        let binary = match value.get("BinaryValue") {
            Some(Doc::Blob(b)) => Some(b.clone()),
            Some(Doc::Text(s) | Doc::Form(s)) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|_| {
                        error::parameter_value_invalid(format!(
                            "The message attribute '{name}' with type 'Binary' must use field 'Binary'."
                        ))
                    })?,
            ),
            _ => None,
        };
        let base = data_type.split('.').next().unwrap_or_default();
        let value = match base {
            "String" | "Number" => match (string, &binary) {
                (Some(s), _) if !s.is_empty() => AttributeValue::String(s.to_string()),
                (None, Some(_)) => {
                    let shown = if base == "Number" { "Number" } else { data_type };
                    return Err(error::parameter_value_invalid(format!(
                        "The message attribute '{name}' with type '{shown}' must use field 'String'."
                    )));
                }
                _ => {
                    return Err(error::parameter_value_invalid(format!(
                        "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{data_type}'."
                    )))
                }
            },
            "Binary" => match (binary, string) {
                (Some(b), _) if !b.is_empty() => AttributeValue::Binary(b),
                (None, Some(_)) => {
                    return Err(error::parameter_value_invalid(format!(
                        "The message attribute '{name}' with type 'Binary' must use field 'Binary'."
                    )))
                }
                _ => {
                    return Err(error::parameter_value_invalid(format!(
                        "The message attribute '{name}' must contain non-empty message attribute value for message attribute type 'Binary'."
                    )))
                }
            },
            _ => {
                return Err(error::parameter_value_invalid(format!(
                    "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
                )))
            }
        };
        out.push(MessageAttribute {
            name,
            data_type: data_type.to_string(),
            value,
        });
    }
    Ok(out)
}

fn validate_name(name: &str) -> Result<(), ServiceError> {
    if name.len() >= 256 {
        return Err(error::parameter_value_invalid(
            "Length of message attribute name must be less than 256 bytes.",
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(error::parameter_value_invalid(format!(
            "Invalid non-alphanumeric character '#x{:X}' was found in the message attribute name. Can only include alphanumeric characters, hyphens, underscores, or dots.",
            u32::from(bad)
        )));
    }
    if name.starts_with('.') {
        return Err(error::parameter_value_invalid(
            "Invalid message attribute name starting with character '.' was found.",
        ));
    }
    if name.ends_with('.') {
        return Err(error::parameter_value_invalid(
            "Invalid message attribute name ending with character '.' was found.",
        ));
    }
    if name.contains("..") {
        return Err(error::parameter_value_invalid(
            "Message attribute name can not have successive '.' character.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_entries_and_json_objects_read_alike() {
        let query = Doc::map().with(
            "entry",
            Doc::map()
                .with("2", Doc::map().with("key", "B").with("value", "2"))
                .with("1", Doc::map().with("key", "A").with("value", "1")),
        );
        assert_eq!(
            string_map(Some(&query)),
            [
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), "2".to_string())
            ]
        );
        let json = Doc::map().with("A", "1");
        assert_eq!(
            string_map(Some(&json)),
            [("A".to_string(), "1".to_string())]
        );
    }

    #[test]
    fn attributes_are_validated_with_aws_words() {
        let doc = Doc::map().with(
            "entry",
            Doc::map().with(
                "1",
                Doc::map().with("Name", "attr1").with(
                    "Value",
                    Doc::map()
                        .with("DataType", "Binary")
                        .with("StringValue", "x"),
                ),
            ),
        );
        let err = parse_attributes(Some(&doc), None).unwrap_err();
        assert_eq!(
            err.message,
            "The message attribute 'attr1' with type 'Binary' must use field 'Binary'."
        );
        let doc = Doc::map().with(
            "a^b",
            Doc::map()
                .with("DataType", "String")
                .with("StringValue", "x"),
        );
        let err = parse_attributes(Some(&doc), None).unwrap_err();
        assert!(err.message.contains("'#x5E'"), "{}", err.message);
        let doc = Doc::map().with("attr1", Doc::map().with("StringValue", "x"));
        let err = parse_attributes(Some(&doc), Some(1)).unwrap_err();
        assert_eq!(err.code, "ValidationError");
        assert!(err
            .message
            .contains("publishBatchRequestEntries.1.member.messageAttributes.attr1"));
    }

    #[test]
    fn string_attributes_render_as_type_and_value() {
        let attribute = MessageAttribute::string("k", "v");
        assert_eq!(
            attributes_json(&[attribute]),
            serde_json::json!({"k": {"Type": "String", "Value": "v"}})
        );
    }
}
