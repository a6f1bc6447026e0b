//! A pattern's JSON as it was written: objects keep their fields in source order.
//!
//! AWS's parser reads a pattern as a stream and reports the first mistake it meets, and checks
//! that an operator object has one key only after reading the first one. serde_json's `Value`
//! sorts object keys, so patterns are read into this tree instead (events, which only need
//! lookups, stay `serde_json::Value`).

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// An object's fields in source order; a repeated name keeps its last value, as AWS's does.
pub(crate) type Fields = Vec<(String, Json)>;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Fields),
}

impl Json {
    pub(crate) fn as_object(&self) -> Option<&Fields> {
        match self {
            Json::Object(fields) => Some(fields),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E: Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E: Error>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }

    fn visit_i64<E: Error>(self, value: i64) -> Result<Json, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_u64<E: Error>(self, value: u64) -> Result<Json, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_f64<E: Error>(self, value: f64) -> Result<Json, E> {
        Number::from_f64(value)
            .map(Json::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E: Error>(self, value: &str) -> Result<Json, E> {
        Ok(Json::String(value.to_owned()))
    }

    fn visit_string<E: Error>(self, value: String) -> Result<Json, E> {
        Ok(Json::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields: Fields = Vec::new();
        while let Some((name, value)) = map.next_entry::<String, Json>()? {
            fields.retain(|(existing, _)| *existing != name);
            fields.push((name, value));
        }
        Ok(Json::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_source_order_and_the_last_of_a_repeated_name() {
        let parsed: Json =
            serde_json::from_str(r#"{"z": 1, "a": [true, null], "z": "x"}"#).unwrap();
        assert_eq!(
            parsed,
            Json::Object(vec![
                (
                    "a".to_owned(),
                    Json::Array(vec![Json::Bool(true), Json::Null])
                ),
                ("z".to_owned(), Json::String("x".to_owned())),
            ])
        );
    }
}
