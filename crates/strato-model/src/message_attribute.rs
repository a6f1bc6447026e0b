//! A message attribute (`MessageAttributes`), one type for SQS and SNS: SNS
//! hands its attributes to SQS subscriptions as they are. Each service
//! validates its input itself (AWS words the two services' errors
//! differently); what they share is the value and its wire forms.

use base64::Engine as _;

use crate::wire::Doc;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AttributeValue {
    /// `String`, `String.Array` and `Number` types (and their custom
    /// `.label`s).
    String(String),
    Binary(Vec<u8>),
}

/// A message attribute or message system attribute.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageAttribute {
    pub name: String,
    /// `String`, `Number`, `Binary`, optionally with `.label`.
    pub data_type: String,
    pub value: AttributeValue,
}

impl MessageAttribute {
    pub fn string(name: &str, value: &str) -> MessageAttribute {
        MessageAttribute {
            name: name.to_string(),
            data_type: "String".to_string(),
            value: AttributeValue::String(value.to_string()),
        }
    }

    /// What counts towards the message size: name, type and value.
    pub fn size(&self) -> usize {
        self.name.len()
            + self.data_type.len()
            + match &self.value {
                AttributeValue::String(s) => s.len(),
                AttributeValue::Binary(b) => b.len(),
            }
    }

    /// The value as text: a binary value base64-encoded.
    fn text(&self) -> String {
        match &self.value {
            AttributeValue::String(s) => s.clone(),
            AttributeValue::Binary(b) => base64::engine::general_purpose::STANDARD.encode(b),
        }
    }

    /// `{"Type": ..., "Value": ...}` as SNS envelopes and Lambda's SNS event
    /// carry it (binary values base64-encoded).
    pub fn envelope_json(&self) -> serde_json::Value {
        serde_json::json!({"Type": self.data_type, "Value": self.text()})
    }

    /// SQS's `MessageAttributeValue` structure.
    pub fn value_doc(&self) -> Doc {
        let doc = Doc::map();
        let doc = match &self.value {
            AttributeValue::String(s) => doc.with("StringValue", s.as_str()),
            AttributeValue::Binary(b) => doc.with("BinaryValue", Doc::Blob(b.clone())),
        };
        doc.with("DataType", self.data_type.as_str())
    }

    /// As Lambda's SQS event carries it (camelCase members).
    pub fn event_json(&self) -> serde_json::Value {
        let (string, binary) = match &self.value {
            AttributeValue::String(s) => (serde_json::Value::from(s.as_str()), None),
            AttributeValue::Binary(_) => (serde_json::Value::Null, Some(self.text())),
        };
        serde_json::json!({
            "stringValue": string,
            "binaryValue": binary,
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": self.data_type,
        })
    }
}
