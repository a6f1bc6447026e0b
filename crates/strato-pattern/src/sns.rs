//! What SNS adds to the language: its limits, and the document its attribute-scope policies see.

use serde_json::{Map, Value};

use crate::compile::ObjectNode;
use crate::error::{invalid, Reason};

/// "A filter policy can have a maximum of five keys."
const MAX_KEYS: usize = 5;
/// "The total combination of values in a filter policy must not exceed 150."
const MAX_COMBINATIONS: u64 = 150;

pub(crate) fn check_limits(root: &ObjectNode) -> Result<(), Reason> {
    let mut paths = Vec::new();
    root.leaf_paths(&mut Vec::new(), &mut paths);
    if paths.len() > MAX_KEYS {
        return Err(invalid("Filter policy can not have more than 5 keys"));
    }
    if root.combinations() > MAX_COMBINATIONS {
        return Err(invalid("Filter policy is too complex"));
    }
    Ok(())
}

/// The JSON document a MessageAttributes-scope filter policy is matched against, from a message's
/// attributes in their wire shape (`{"name": {"Type": "String", "Value": "..."}}`, as in the SNS
/// Lambda event's `MessageAttributes`; `DataType`/`StringValue` as Publish sends them are read too).
///
/// - `String` (and custom `String.x` types): the value as a JSON string;
/// - `Number` (and `Number.x`): the value as a JSON number, or as a string if it is not one;
/// - `String.Array` (and `Number.Array`, which SNS's documentation uses): the value parsed as a
///   JSON array, matched element-wise (a value that is not an array is kept as a string);
/// - `Binary` (and anything unrecognised): left out, so it never matches — as on AWS, which only
///   compares String, String.Array and Number attributes.
pub fn sns_attributes_document(attributes: &Value) -> Value {
    let mut document = Map::new();
    let Some(attributes) = attributes.as_object() else {
        return Value::Object(document);
    };
    for (name, attribute) in attributes {
        let field = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|key| attribute.get(*key).and_then(Value::as_str))
        };
        let (Some(data_type), Some(text)) =
            (field(["Type", "DataType"]), field(["Value", "StringValue"]))
        else {
            continue;
        };
        let value = if data_type.ends_with(".Array") {
            match serde_json::from_str::<Value>(text) {
                Ok(array @ Value::Array(_)) => array,
                _ => Value::String(text.to_owned()),
            }
        } else if data_type == "Number" || data_type.starts_with("Number.") {
            match serde_json::from_str::<Value>(text.trim()) {
                Ok(number @ Value::Number(_)) => number,
                _ => Value::String(text.to_owned()),
            }
        } else if data_type == "String" || data_type.starts_with("String.") {
            Value::String(text.to_owned())
        } else {
            continue;
        };
        document.insert(name.clone(), value);
    }
    Value::Object(document)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attributes_become_typed_fields_and_binary_is_left_out() {
        let document = sns_attributes_document(&json!({
            "store": {"Type": "String", "Value": "example_corp"},
            "price_usd": {"Type": "Number", "Value": "3.015e2"},
            "interests": {"Type": "String.Array", "Value": "[\"soccer\", \"rugby\"]"},
            "blob": {"Type": "Binary", "Value": "AAEC"},
        }));
        assert_eq!(
            document,
            json!({
                "store": "example_corp",
                "price_usd": 301.5,
                "interests": ["soccer", "rugby"],
            })
        );
    }

    #[test]
    fn publish_shaped_attributes_are_read_too() {
        let document = sns_attributes_document(&json!({
            "n": {"DataType": "Number", "StringValue": "7"},
        }));
        assert_eq!(document, json!({"n": 7}));
    }

    #[test]
    fn a_number_attribute_that_is_not_a_number_stays_a_string() {
        let document = sns_attributes_document(&json!({
            "n": {"Type": "Number", "Value": "seven"},
        }));
        assert_eq!(document, json!({"n": "seven"}));
    }
}
