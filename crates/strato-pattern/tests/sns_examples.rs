//! The examples of AWS's "Amazon SNS message filtering" pages (attribute-based and payload-based
//! filtering, string, numeric and key matching, AND/OR logic), with their documented results.

use serde_json::{json, Value};
use strato_pattern::{sns_attributes_document, Dialect, Pattern, SnsScope};

const ATTRIBUTES: Dialect = Dialect::SnsFilterPolicy(SnsScope::MessageAttributes);
const BODY: Dialect = Dialect::SnsFilterPolicy(SnsScope::MessageBody);

fn policy(text: &str, dialect: Dialect) -> Pattern {
    Pattern::parse(text, dialect).unwrap_or_else(|error| panic!("{text} should parse: {error}"))
}

/// One attribute in the wire shape of the SNS Lambda event (`{"Type", "Value"}`).
fn attribute(data_type: &str, value: &str) -> Value {
    json!({"Type": data_type, "Value": value})
}

/// Whether a policy accepts a message carrying just this one attribute.
fn accepts_attribute(policy: &Pattern, name: &str, data_type: &str, value: &str) -> bool {
    let attributes = json!({ name: attribute(data_type, value) });
    policy.matches(&sns_attributes_document(&attributes))
}

/// [`accepts_attribute`] for the examples' String `customer_interests`.
fn accepts_interest(policy: &Pattern, value: &str) -> bool {
    accepts_attribute(policy, "customer_interests", "String", value)
}

fn example_message_attributes() -> Value {
    json!({
        "customer_interests": attribute("String.Array", "[\"soccer\", \"rugby\", \"hockey\"]"),
        "store": attribute("String", "example_corp"),
        "event": attribute("String", "order_placed"),
        "price_usd": attribute("Number", "210.75"),
    })
}

const EXAMPLE_POLICY: &str = r#"{
    "store": ["example_corp"],
    "event": [{"anything-but": "order_cancelled"}],
    "customer_interests": ["rugby", "football", "baseball"],
    "price_usd": [{"numeric": [">=", 100]}]
}"#;

#[test]
fn the_example_policy_accepts_the_example_attributes() {
    let policy = policy(EXAMPLE_POLICY, ATTRIBUTES);
    assert!(policy.matches(&sns_attributes_document(&example_message_attributes())));
}

#[test]
fn the_example_policy_rejects_a_cancelled_order() {
    let policy = policy(EXAMPLE_POLICY, ATTRIBUTES);
    let mut attributes = example_message_attributes();
    attributes["event"] = attribute("String", "order_cancelled");
    assert!(!policy.matches(&sns_attributes_document(&attributes)));
}

#[test]
fn the_example_policy_applies_to_the_body_in_body_scope() {
    let policy = policy(EXAMPLE_POLICY, BODY);
    let body = json!({
        "store": "example_corp",
        "event": "order_placed",
        "customer_interests": ["soccer", "rugby", "hockey"],
        "price_usd": 210.75
    });
    assert!(policy.matches(&body));
    let cheap = json!({"store": "example_corp", "event": "order_placed",
                       "customer_interests": ["rugby"], "price_usd": 99.99});
    assert!(!policy.matches(&cheap));
}

#[test]
fn body_scope_matches_nested_properties() {
    let policy = policy(r#"{"patient": {"name": {"first": ["Alice"]}}}"#, BODY);
    assert!(policy.matches(&json!({"patient": {"name": {"first": "Alice", "last": "Smith"}}})));
    assert!(!policy.matches(&json!({"patient": {"name": {"first": "Bob"}}})));
}

#[test]
fn string_exact_matching() {
    let policy = policy(r#"{"customer_interests": ["rugby", "tennis"]}"#, ATTRIBUTES);
    assert!(accepts_interest(&policy, "rugby"));
    assert!(accepts_interest(&policy, "tennis"));
    assert!(!accepts_interest(&policy, "Rugby"));
    assert!(accepts_attribute(
        &policy,
        "customer_interests",
        "String.Array",
        "[\"rugby\", \"hockey\"]"
    ));
}

#[test]
fn string_anything_but() {
    let policy = policy(
        r#"{"customer_interests": [{"anything-but": ["rugby", "tennis"]}]}"#,
        ATTRIBUTES,
    );
    assert!(accepts_interest(&policy, "baseball"));
    assert!(accepts_interest(&policy, "football"));
    assert!(!accepts_interest(&policy, "rugby"));
    // An attribute that is not there is not "anything but".
    assert!(!policy.matches(&sns_attributes_document(&json!({}))));
}

#[test]
fn string_anything_but_prefix() {
    let policy = policy(
        r#"{"event": [{"anything-but": {"prefix": "order-"}}]}"#,
        ATTRIBUTES,
    );
    assert!(accepts_attribute(&policy, "event", "String", "data-entry"));
    assert!(accepts_attribute(
        &policy,
        "event",
        "String",
        "order_number"
    ));
    assert!(!accepts_attribute(
        &policy,
        "event",
        "String",
        "order-cancelled"
    ));
}

#[test]
fn string_equals_ignore_case() {
    let policy = policy(
        r#"{"customer_interests": [{"equals-ignore-case": "tennis"}]}"#,
        ATTRIBUTES,
    );
    assert!(accepts_interest(&policy, "TENNIS"));
    assert!(accepts_interest(&policy, "Tennis"));
    assert!(!accepts_interest(&policy, "table tennis"));
}

#[test]
fn ip_address_matching() {
    let policy = policy(r#"{"source_ip": [{"cidr": "10.0.0.0/24"}]}"#, ATTRIBUTES);
    assert!(accepts_attribute(
        &policy,
        "source_ip",
        "String",
        "10.0.0.0"
    ));
    assert!(accepts_attribute(
        &policy,
        "source_ip",
        "String",
        "10.0.0.255"
    ));
    assert!(!accepts_attribute(
        &policy,
        "source_ip",
        "String",
        "10.1.1.0"
    ));
}

#[test]
fn string_prefix_and_suffix() {
    let prefix = policy(r#"{"customer_interests": [{"prefix": "bas"}]}"#, ATTRIBUTES);
    assert!(accepts_interest(&prefix, "baseball"));
    assert!(accepts_interest(&prefix, "basketball"));
    assert!(!accepts_interest(&prefix, "rugby"));
    let suffix = policy(
        r#"{"customer_interests": [{"suffix": "ball"}]}"#,
        ATTRIBUTES,
    );
    assert!(accepts_interest(&suffix, "baseball"));
    assert!(accepts_interest(&suffix, "basketball"));
    assert!(!accepts_interest(&suffix, "rugby"));
}

#[test]
fn numeric_exact_matching_compares_values() {
    let policy = policy(r#"{"price_usd": [{"numeric": ["=", 301.5]}]}"#, ATTRIBUTES);
    assert!(accepts_attribute(&policy, "price_usd", "Number", "301.5"));
    assert!(accepts_attribute(&policy, "price_usd", "Number", "3.015e2"));
    assert!(!accepts_attribute(&policy, "price_usd", "Number", "301.6"));
    let body = Pattern::parse(r#"{"price_usd": [{"numeric": ["=", 301.5]}]}"#, BODY).unwrap();
    assert!(body.matches(&json!({"price_usd": 3.015e2})));
}

#[test]
fn numeric_anything_but() {
    let policy = policy(r#"{"price": [{"anything-but": [100, 500]}]}"#, ATTRIBUTES);
    assert!(accepts_attribute(&policy, "price", "Number", "101"));
    assert!(accepts_attribute(&policy, "price", "Number", "100.1"));
    assert!(!accepts_attribute(&policy, "price", "Number", "100"));
    assert!(!accepts_attribute(&policy, "price", "Number", "500"));
}

#[test]
fn numeric_anything_but_matches_an_array_holding_another_value() {
    let policy = policy(r#"{"price": [{"anything-but": [100, 500]}]}"#, ATTRIBUTES);
    assert!(accepts_attribute(
        &policy,
        "price",
        "Number.Array",
        "[100, 50]"
    ));
    assert!(!accepts_attribute(
        &policy,
        "price",
        "Number.Array",
        "[100, 500]"
    ));
    let body = Pattern::parse(r#"{"price": [{"anything-but": [100, 500]}]}"#, BODY).unwrap();
    assert!(body.matches(&json!({"price": [100, 50]})));
    assert!(!body.matches(&json!({"price": 100})));
}

#[test]
fn numeric_value_range() {
    let negative = policy(r#"{"price": [{"numeric": ["<", 0]}]}"#, ATTRIBUTES);
    assert!(accepts_attribute(&negative, "price", "Number", "-1"));
    assert!(!accepts_attribute(&negative, "price", "Number", "0"));
    let bounded = policy(
        r#"{"price_usd": [{"numeric": [">", 0, "<=", 150]}]}"#,
        ATTRIBUTES,
    );
    assert!(accepts_attribute(&bounded, "price_usd", "Number", "150"));
    assert!(!accepts_attribute(
        &bounded,
        "price_usd",
        "Number",
        "150.00001"
    ));
    assert!(!accepts_attribute(&bounded, "price_usd", "Number", "0"));
}

#[test]
fn numbers_have_five_decimal_places_within_a_billion() {
    let policy = policy(r#"{"n": [{"numeric": [">", 1]}]}"#, ATTRIBUTES);
    assert!(accepts_attribute(&policy, "n", "Number", "1.00001"));
    assert!(!accepts_attribute(&policy, "n", "Number", "1.000001"));
    assert!(accepts_attribute(&policy, "n", "Number", "1000000000"));
    assert!(!accepts_attribute(&policy, "n", "Number", "1000000001"));
}

#[test]
fn number_policies_do_not_match_string_attributes() {
    let policy = policy(r#"{"price": [{"numeric": [">", 0]}]}"#, ATTRIBUTES);
    assert!(!accepts_attribute(&policy, "price", "String", "10"));
}

#[test]
fn key_matching_with_exists() {
    let exists = policy(r#"{"store": [{"exists": true}]}"#, ATTRIBUTES);
    assert!(accepts_attribute(
        &exists,
        "store",
        "String",
        "example_corp"
    ));
    assert!(!accepts_attribute(
        &exists,
        "event",
        "String",
        "order_placed"
    ));
    let absent = policy(r#"{"store": [{"exists": false}]}"#, ATTRIBUTES);
    assert!(!accepts_attribute(
        &absent,
        "store",
        "String",
        "example_corp"
    ));
    assert!(accepts_attribute(
        &absent,
        "event",
        "String",
        "order_placed"
    ));
}

#[test]
fn binary_attributes_never_match() {
    let exists = policy(r#"{"blob": [{"exists": true}]}"#, ATTRIBUTES);
    assert!(!accepts_attribute(&exists, "blob", "Binary", "AAEC"));
    let exact = policy(r#"{"blob": ["AAEC"]}"#, ATTRIBUTES);
    assert!(!accepts_attribute(&exact, "blob", "Binary", "AAEC"));
}

#[test]
fn and_logic_across_attributes() {
    let policy = policy(
        r#"{"customer_interests": ["rugby"], "price_usd": [{"numeric": [">", 100]}]}"#,
        ATTRIBUTES,
    );
    let both = json!({
        "customer_interests": attribute("String", "rugby"),
        "price_usd": attribute("Number", "101"),
    });
    assert!(policy.matches(&sns_attributes_document(&both)));
    assert!(!accepts_interest(&policy, "rugby"));
}

#[test]
fn or_operator_across_attributes() {
    let policy = policy(
        r#"{"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]}"#,
        ATTRIBUTES,
    );
    let by_metric = json!({
        "source": attribute("String", "aws.cloudwatch"),
        "metricName": attribute("String", "CPUUtilization"),
    });
    let by_namespace = json!({
        "source": attribute("String", "aws.cloudwatch"),
        "namespace": attribute("String", "AWS/EC2"),
    });
    let neither = json!({
        "source": attribute("String", "aws.cloudwatch"),
        "namespace": attribute("String", "AWS/S3"),
    });
    assert!(policy.matches(&sns_attributes_document(&by_metric)));
    assert!(policy.matches(&sns_attributes_document(&by_namespace)));
    assert!(!policy.matches(&sns_attributes_document(&neither)));
}
