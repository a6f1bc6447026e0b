//! The comparison operators of AWS's "Control which events Lambda sends to your function" (event
//! filtering) page, each with a matching and a non-matching record, and the operators Lambda
//! does not accept.

use serde_json::{json, Value};
use strato_pattern::{Dialect, Pattern};

fn check(pattern: &str, cases: &[(Value, bool)]) {
    let compiled = Pattern::parse(pattern, Dialect::LambdaFilterCriteria)
        .unwrap_or_else(|error| panic!("{pattern} should parse: {error}"));
    for (record, expected) in cases {
        assert_eq!(
            compiled.matches(record),
            *expected,
            "pattern {pattern} against {record}"
        );
    }
}

#[test]
fn null() {
    check(
        r#"{"body": {"UserID": [null]}}"#,
        &[
            (json!({"body": {"UserID": null}}), true),
            (json!({"body": {"UserID": "u"}}), false),
        ],
    );
}

#[test]
fn empty() {
    check(
        r#"{"body": {"LastName": [""]}}"#,
        &[
            (json!({"body": {"LastName": ""}}), true),
            (json!({"body": {"LastName": "Doe"}}), false),
        ],
    );
}

#[test]
fn equals_and_equals_ignoring_case() {
    check(
        r#"{"body": {"Name": ["Alice"]}}"#,
        &[
            (json!({"body": {"Name": "Alice"}}), true),
            (json!({"body": {"Name": "alice"}}), false),
        ],
    );
    check(
        r#"{"body": {"Name": [{"equals-ignore-case": "alice"}]}}"#,
        &[
            (json!({"body": {"Name": "ALICE"}}), true),
            (json!({"body": {"Name": "Bob"}}), false),
        ],
    );
}

#[test]
fn and() {
    check(
        r#"{"body": {"Location": ["New York"], "Day": ["Monday"]}}"#,
        &[
            (
                json!({"body": {"Location": "New York", "Day": "Monday"}}),
                true,
            ),
            (
                json!({"body": {"Location": "New York", "Day": "Tuesday"}}),
                false,
            ),
        ],
    );
}

#[test]
fn or_of_values_and_or_of_fields() {
    check(
        r#"{"body": {"PaymentType": ["Credit", "Debit"]}}"#,
        &[
            (json!({"body": {"PaymentType": "Debit"}}), true),
            (json!({"body": {"PaymentType": "Cash"}}), false),
        ],
    );
    check(
        r#"{"body": {"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]}}"#,
        &[
            (
                json!({"body": {"Location": "Boston", "Day": "Monday"}}),
                true,
            ),
            (
                json!({"body": {"Location": "Boston", "Day": "Sunday"}}),
                false,
            ),
        ],
    );
}

#[test]
fn not() {
    check(
        r#"{"body": {"Weather": [{"anything-but": ["Raining"]}]}}"#,
        &[
            (json!({"body": {"Weather": "Sunny"}}), true),
            (json!({"body": {"Weather": "Raining"}}), false),
        ],
    );
}

#[test]
fn numeric_equals_and_range() {
    check(
        r#"{"body": {"Price": [{"numeric": ["=", 100]}]}}"#,
        &[
            (json!({"body": {"Price": 100}}), true),
            (json!({"body": {"Price": 101}}), false),
        ],
    );
    check(
        r#"{"body": {"Price": [{"numeric": [">", 10, "<=", 20]}]}}"#,
        &[
            (json!({"body": {"Price": 20}}), true),
            (json!({"body": {"Price": 10}}), false),
        ],
    );
}

#[test]
fn exists_and_does_not_exist() {
    check(
        r#"{"body": {"ProductName": [{"exists": true}]}}"#,
        &[
            (json!({"body": {"ProductName": "x"}}), true),
            (json!({"body": {}}), false),
        ],
    );
    check(
        r#"{"body": {"ProductName": [{"exists": false}]}}"#,
        &[
            (json!({"body": {}}), true),
            (json!({"body": {"ProductName": "x"}}), false),
        ],
    );
}

#[test]
fn begins_with_and_ends_with() {
    check(
        r#"{"body": {"Region": [{"prefix": "us-"}]}}"#,
        &[
            (json!({"body": {"Region": "us-east-1"}}), true),
            (json!({"body": {"Region": "eu-west-1"}}), false),
        ],
    );
    check(
        r#"{"body": {"FileName": [{"suffix": ".png"}]}}"#,
        &[
            (json!({"body": {"FileName": "photo.png"}}), true),
            (json!({"body": {"FileName": "photo.jpg"}}), false),
        ],
    );
}

#[test]
fn sqs_record_metadata_filters() {
    check(
        r#"{"attributes": {"MessageGroupId": ["group-1"]}, "body": {"RequestCode": ["BBBB"]}}"#,
        &[
            (
                json!({"messageId": "m", "attributes": {"MessageGroupId": "group-1"},
                       "body": {"RequestCode": "BBBB"}}),
                true,
            ),
            (
                json!({"messageId": "m", "attributes": {"MessageGroupId": "group-2"},
                       "body": {"RequestCode": "BBBB"}}),
                false,
            ),
        ],
    );
}
