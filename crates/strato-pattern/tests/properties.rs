//! Properties of the engine over generated patterns and events: parsing and matching never panic,
//! `$or` means or, and a pattern made of an event's own values matches that event.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use strato_pattern::{Dialect, Pattern, SnsScope};

const DIALECTS: [Dialect; 4] = [
    Dialect::EventBridge,
    Dialect::SnsFilterPolicy(SnsScope::MessageAttributes),
    Dialect::SnsFilterPolicy(SnsScope::MessageBody),
    Dialect::LambdaFilterCriteria,
];

/// Keys that exercise the parser's special cases as well as plain fields.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("$or".to_owned()),
        Just("prefix".to_owned()),
        Just("suffix".to_owned()),
        Just("anything-but".to_owned()),
        Just("numeric".to_owned()),
        Just("exists".to_owned()),
        Just("cidr".to_owned()),
        Just("wildcard".to_owned()),
        Just("equals-ignore-case".to_owned()),
        "[a-z*\\\\]{0,6}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        prop_oneof![
            Just("=".to_owned()),
            Just("<".to_owned()),
            Just(">=".to_owned()),
            Just("10.0.0.0/8".to_owned()),
            Just("::1/128".to_owned()),
            "[a-z0-9*./:\\\\ ]{0,8}",
        ]
        .prop_map(Value::String),
    ]
}

/// Any JSON value, biased toward the shapes patterns are made of.
fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Match values every dialect accepts, or EventBridge at least.
fn match_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("x")),
        Just(json!("y")),
        Just(json!(1)),
        Just(json!(2.5)),
        Just(json!(null)),
        Just(json!(true)),
        Just(json!({"prefix": "x"})),
        Just(json!({"suffix": "y"})),
        Just(json!({"prefix": {"equals-ignore-case": "X"}})),
        Just(json!({"anything-but": "x"})),
        Just(json!({"anything-but": [1, 2]})),
        Just(json!({"anything-but": {"prefix": "x"}})),
        Just(json!({"numeric": [">", 1]})),
        Just(json!({"numeric": [">=", 0, "<", 2]})),
        Just(json!({"exists": true})),
        Just(json!({"exists": false})),
        Just(json!({"equals-ignore-case": "X"})),
        Just(json!({"wildcard": "x*"})),
        Just(json!({"cidr": "10.0.0.0/8"})),
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("c".to_owned())
    ]
}

/// A valid EventBridge pattern over fields a, b, c, nested at most once.
fn valid_pattern() -> impl Strategy<Value = Value> {
    let leaf = || prop::collection::vec(match_value(), 1..4).prop_map(Value::Array);
    let nested = prop::collection::btree_map(field_name(), leaf(), 1..3)
        .prop_map(|fields| Value::Object(fields.into_iter().collect()));
    prop::collection::btree_map(field_name(), prop_oneof![3 => leaf(), 1 => nested], 1..4)
        .prop_map(|fields| Value::Object(fields.into_iter().collect()))
}

fn event_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("x")),
        Just(json!("y")),
        Just(json!("xy")),
        Just(json!("X")),
        Just(json!("10.1.2.3")),
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(2)),
        Just(json!(2.5)),
        Just(json!(null)),
        Just(json!(true)),
    ]
}

/// Events over fields a, b, c with values the generated patterns care about.
fn event() -> impl Strategy<Value = Value> {
    let value = event_scalar().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..3)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    });
    prop::collection::btree_map(field_name(), value, 0..4)
        .prop_map(|fields| Value::Object(fields.into_iter().collect()))
}

/// The pattern that asks for exactly the values an event holds: each leaf as the one value of
/// its field, each array by its first usable element, empty objects and arrays left out (and
/// fields named `$or`, which EventBridge reserves for the operator).
fn pattern_of(value: &Value) -> Option<Value> {
    match value {
        Value::Array(items) => items.iter().find_map(pattern_of),
        Value::Object(fields) => {
            let pattern: Map<String, Value> = fields
                .iter()
                .filter(|(name, _)| name.as_str() != "$or")
                .filter_map(|(name, value)| pattern_of(value).map(|p| (name.clone(), p)))
                .collect();
            (!pattern.is_empty()).then_some(Value::Object(pattern))
        }
        leaf => Some(json!([leaf])),
    }
}

proptest! {
    #[test]
    fn parsing_any_text_never_panics(text in "\\PC{0,64}") {
        for dialect in DIALECTS {
            let _ = Pattern::parse(&text, dialect);
        }
    }

    #[test]
    fn parsing_and_matching_any_json_never_panics(pattern in json_value(), event in json_value()) {
        let text = pattern.to_string();
        for dialect in DIALECTS {
            if let Ok(parsed) = Pattern::parse(&text, dialect) {
                let _ = parsed.matches(&event);
            }
        }
    }

    #[test]
    fn or_of_two_patterns_matches_when_either_does(
        first in valid_pattern(),
        second in valid_pattern(),
        event in event(),
    ) {
        let either = Pattern::parse(&json!({"$or": [first, second]}).to_string(), Dialect::EventBridge).unwrap();
        let first = Pattern::parse(&first.to_string(), Dialect::EventBridge).unwrap();
        let second = Pattern::parse(&second.to_string(), Dialect::EventBridge).unwrap();
        prop_assert_eq!(either.matches(&event), first.matches(&event) || second.matches(&event));
    }

    #[test]
    fn a_pattern_of_an_events_own_values_matches_it(event in json_value()) {
        let Value::Object(_) = &event else { return Ok(()) };
        let Some(pattern) = pattern_of(&event) else { return Ok(()) };
        let parsed = Pattern::parse(&pattern.to_string(), Dialect::EventBridge);
        prop_assert!(parsed.is_ok(), "{} refused: {:?}", pattern, parsed.err());
        if let Ok(parsed) = parsed {
            prop_assert!(parsed.matches(&event), "{} should match {}", pattern, event);
        }
    }
}
