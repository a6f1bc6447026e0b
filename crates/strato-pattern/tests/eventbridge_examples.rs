//! The examples of AWS's "Amazon EventBridge event patterns" and "Content filtering in Amazon
//! EventBridge event patterns" pages, with the results the documentation gives, one table per
//! operator.

use serde_json::{json, Value};
use strato_pattern::{Dialect, Pattern};

/// Asserts each (event, expected) pair against the pattern, naming the case that disagrees.
fn check(pattern: &str, cases: &[(Value, bool)]) {
    let compiled = Pattern::parse(pattern, Dialect::EventBridge)
        .unwrap_or_else(|error| panic!("{pattern} should parse: {error}"));
    for (event, expected) in cases {
        assert_eq!(
            compiled.matches(event),
            *expected,
            "pattern {pattern} against {event}"
        );
    }
}

#[test]
fn exact_values_nested_fields_and_and_between_fields() {
    check(
        r#"{"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"], "detail": {"state": ["terminated"]}}"#,
        &[
            (
                json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification",
                       "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated"}}),
                true,
            ),
            (
                json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification",
                       "detail": {"state": "running"}}),
                false,
            ),
            (
                json!({"source": "aws.ec2", "detail": {"state": "terminated"}}),
                false,
            ),
        ],
    );
}

#[test]
fn values_of_one_field_are_alternatives() {
    check(
        r#"{"source": ["aws.ec2", "aws.fargate"]}"#,
        &[
            (json!({"source": "aws.fargate"}), true),
            (json!({"source": "aws.ec2"}), true),
            (json!({"source": "aws.s3"}), false),
        ],
    );
}

#[test]
fn an_event_array_matches_when_any_element_does() {
    check(
        r#"{"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f", "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f"]}"#,
        &[
            (
                json!({"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
                                     "arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"]}),
                true,
            ),
            (
                json!({"resources": ["arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"]}),
                false,
            ),
        ],
    );
}

#[test]
fn arrays_of_objects_match_one_element_at_a_time() {
    check(
        r#"{"detail": {"items": {"name": ["a"], "size": [1]}}}"#,
        &[
            (
                json!({"detail": {"items": [{"name": "b", "size": 1}, {"name": "a", "size": 1}]}}),
                true,
            ),
            (
                json!({"detail": {"items": [{"name": "a", "size": 2}, {"name": "b", "size": 1}]}}),
                false,
            ),
        ],
    );
}

#[test]
fn empty_strings_and_null_match_only_themselves() {
    check(
        r#"{"detail": {"eventVersion": [""], "responseElements": [null]}}"#,
        &[
            (
                json!({"detail": {"eventVersion": "", "responseElements": null}}),
                true,
            ),
            (
                json!({"detail": {"eventVersion": "", "responseElements": "null"}}),
                false,
            ),
            (json!({"detail": {"eventVersion": "", "other": 1}}), false),
        ],
    );
}

#[test]
fn numbers_match_by_value_and_strings_are_not_numbers() {
    check(
        r#"{"detail": {"x-limit": [300]}}"#,
        &[
            (json!({"detail": {"x-limit": 300}}), true),
            (json!({"detail": {"x-limit": 3.0e2}}), true),
            (json!({"detail": {"x-limit": 300.0}}), true),
            (json!({"detail": {"x-limit": "300"}}), false),
        ],
    );
}

#[test]
fn booleans_match_only_booleans() {
    check(
        r#"{"detail": {"enabled": [true]}}"#,
        &[
            (json!({"detail": {"enabled": true}}), true),
            (json!({"detail": {"enabled": "true"}}), false),
            (json!({"detail": {"enabled": false}}), false),
        ],
    );
}

#[test]
fn prefix() {
    check(
        r#"{"time": [{"prefix": "2017-10-02"}]}"#,
        &[
            (json!({"time": "2017-10-02T18:43:48Z"}), true),
            (json!({"time": "2017-10-03T18:43:48Z"}), false),
            (json!({"time": 20171002}), false),
        ],
    );
}

#[test]
fn prefix_ignoring_case() {
    check(
        r#"{"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}}"#,
        &[
            (json!({"detail": {"service": "EventBridge"}}), true),
            (json!({"detail": {"service": "EVENTBRIDGE"}}), true),
            (json!({"detail": {"service": "eventbus"}}), true),
            (json!({"detail": {"service": "Events"}}), false),
        ],
    );
}

#[test]
fn suffix() {
    check(
        r#"{"FileName": [{"suffix": ".png"}]}"#,
        &[
            (json!({"FileName": "image.png"}), true),
            (json!({"FileName": "image.PNG"}), false),
            (json!({"FileName": "image.jpg"}), false),
        ],
    );
}

#[test]
fn suffix_ignoring_case() {
    check(
        r#"{"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}}"#,
        &[
            (json!({"detail": {"FileName": "image.png"}}), true),
            (json!({"detail": {"FileName": "image.PNG"}}), true),
            (json!({"detail": {"FileName": "image.Png"}}), true),
            (json!({"detail": {"FileName": "image.gif"}}), false),
        ],
    );
}

#[test]
fn anything_but_a_string() {
    check(
        r#"{"detail": {"state": [{"anything-but": "initializing"}]}}"#,
        &[
            (json!({"detail": {"state": "running"}}), true),
            (json!({"detail": {"state": "initializing"}}), false),
            // anything-but never matches a field that is not there.
            (json!({"detail": {"other": "running"}}), false),
        ],
    );
}

#[test]
fn anything_but_a_number() {
    check(
        r#"{"detail": {"x-limit": [{"anything-but": 123}]}}"#,
        &[
            (json!({"detail": {"x-limit": 124}}), true),
            (json!({"detail": {"x-limit": 123}}), false),
            (json!({"detail": {"x-limit": 1.23e2}}), false),
        ],
    );
}

#[test]
fn anything_but_a_list_of_strings() {
    check(
        r#"{"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}"#,
        &[
            (json!({"detail": {"state": "running"}}), true),
            (json!({"detail": {"state": "stopped"}}), false),
            (json!({"detail": {"state": "overloaded"}}), false),
        ],
    );
}

#[test]
fn anything_but_a_list_of_numbers() {
    check(
        r#"{"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}"#,
        &[
            (json!({"detail": {"x-limit": 150}}), true),
            (json!({"detail": {"x-limit": 200}}), false),
        ],
    );
}

#[test]
fn anything_but_a_prefix() {
    check(
        r#"{"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}"#,
        &[
            (json!({"detail": {"state": "running"}}), true),
            (json!({"detail": {"state": "initializing"}}), false),
        ],
    );
}

#[test]
fn anything_but_a_suffix() {
    check(
        r#"{"detail": {"FileName": [{"anything-but": {"suffix": ".txt"}}]}}"#,
        &[
            (json!({"detail": {"FileName": "notes.md"}}), true),
            (json!({"detail": {"FileName": "notes.txt"}}), false),
        ],
    );
}

#[test]
fn anything_but_ignoring_case() {
    check(
        r#"{"detail": {"state": [{"anything-but": {"equals-ignore-case": ["Stopped", "OverLoaded"]}}]}}"#,
        &[
            (json!({"detail": {"state": "running"}}), true),
            (json!({"detail": {"state": "STOPPED"}}), false),
            (json!({"detail": {"state": "overloaded"}}), false),
        ],
    );
}

#[test]
fn anything_but_a_wildcard() {
    check(
        r#"{"detail": {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}}"#,
        &[
            (json!({"detail": {"FilePath": "/usr/bin/env"}}), true),
            (json!({"detail": {"FilePath": "/usr/lib/libc.so"}}), false),
        ],
    );
    check(
        r#"{"detail": {"FilePath": [{"anything-but": {"wildcard": ["*/lib/*", "*/bin/*"]}}]}}"#,
        &[
            (json!({"detail": {"FilePath": "/etc/hosts"}}), true),
            (json!({"detail": {"FilePath": "/usr/bin/env"}}), false),
        ],
    );
}

#[test]
fn numeric_ranges() {
    check(
        r#"{"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}], "x-limit": [{"numeric": ["=", 3.018e2]}]}}"#,
        &[
            (
                json!({"detail": {"c-count": 5, "d-count": 7, "x-limit": 301.8}}),
                true,
            ),
            (
                json!({"detail": {"c-count": 0, "d-count": 7, "x-limit": 301.8}}),
                false,
            ),
            (
                json!({"detail": {"c-count": 5, "d-count": 10, "x-limit": 301.8}}),
                false,
            ),
            (
                json!({"detail": {"c-count": 5, "d-count": 7, "x-limit": 301.9}}),
                false,
            ),
            (
                json!({"detail": {"c-count": "5", "d-count": 7, "x-limit": 301.8}}),
                false,
            ),
        ],
    );
}

#[test]
fn numeric_bounds_inclusive_and_exclusive() {
    check(
        r#"{"n": [{"numeric": [">=", 1, "<", 2]}]}"#,
        &[
            (json!({"n": 1}), true),
            (json!({"n": 1.999999}), true),
            (json!({"n": 2}), false),
            (json!({"n": 0.999999}), false),
        ],
    );
}

#[test]
fn numeric_precision_is_six_decimal_places_within_five_billion() {
    check(
        r#"{"n": [{"numeric": [">", 1]}]}"#,
        &[
            (json!({"n": 1.000001}), true),
            (json!({"n": 1.0000001}), false),
            (json!({"n": 5.0e9}), true),
            (json!({"n": 5.1e9}), false),
        ],
    );
}

#[test]
fn ip_address_ranges() {
    check(
        r#"{"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}}"#,
        &[
            (json!({"detail": {"sourceIPAddress": "10.0.0.0"}}), true),
            (json!({"detail": {"sourceIPAddress": "10.0.0.255"}}), true),
            (json!({"detail": {"sourceIPAddress": "10.0.1.0"}}), false),
            (
                json!({"detail": {"sourceIPAddress": "not an address"}}),
                false,
            ),
        ],
    );
    check(
        r#"{"detail": {"sourceIPAddress": [{"cidr": "2001:db8::/64"}]}}"#,
        &[
            (
                json!({"detail": {"sourceIPAddress": "2001:db8::ffff"}}),
                true,
            ),
            (
                json!({"detail": {"sourceIPAddress": "2001:db8:0:1::"}}),
                false,
            ),
            (json!({"detail": {"sourceIPAddress": "10.0.0.1"}}), false),
        ],
    );
}

#[test]
fn exists_true_matches_a_present_leaf() {
    check(
        r#"{"detail": {"state": [{"exists": true}]}}"#,
        &[
            (json!({"detail": {"state": "running"}}), true),
            (json!({"detail": {"state": null}}), true),
            (json!({"detail": {"other": 1}}), false),
        ],
    );
}

#[test]
fn exists_false_matches_an_absent_field() {
    check(
        r#"{"detail": {"c-count": [{"exists": false}]}}"#,
        &[
            (json!({"detail": {"d-count": 1}}), true),
            (json!({"source": "x"}), true),
            (json!({"detail": {"c-count": 1}}), false),
        ],
    );
}

#[test]
fn exists_only_sees_leaf_nodes() {
    check(
        r#"{"detail": {"c-count": [{"exists": true}]}}"#,
        &[
            (json!({"detail": {"c-count": {"c1": 100}}}), false),
            (json!({"detail": {"c-count": []}}), false),
            (json!({"detail": {"c-count": [1]}}), true),
        ],
    );
    check(
        r#"{"detail": {"c-count": [{"exists": false}]}}"#,
        &[
            (json!({"detail": {"c-count": {"c1": 100}}}), true),
            (json!({"detail": {"c-count": []}}), true),
        ],
    );
}

#[test]
fn equals_ignore_case() {
    check(
        r#"{"detail-type": [{"equals-ignore-case": "ec2 instance state-change notification"}]}"#,
        &[
            (
                json!({"detail-type": "EC2 Instance State-change Notification"}),
                true,
            ),
            (
                json!({"detail-type": "EC2 INSTANCE STATE-CHANGE NOTIFICATION"}),
                true,
            ),
            (json!({"detail-type": "EC2 Instance State-change"}), false),
        ],
    );
}

#[test]
fn wildcard() {
    check(
        r#"{"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]}"#,
        &[
            (
                json!({"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/myEventBus"}),
                true,
            ),
            (
                json!({"EventBusArn": "arn:aws:events:us-west-2:123456789012:event-bus/myEventBus"}),
                false,
            ),
        ],
    );
    check(
        r#"{"detail": {"FilePath": [{"wildcard": "dir/*.png"}]}}"#,
        &[
            (
                json!({"detail": {"FilePath": "dir/dir/dir/dir/dir/doc.png"}}),
                true,
            ),
            (json!({"detail": {"FilePath": "dir/doc.jpg"}}), false),
        ],
    );
}

#[test]
fn or_across_fields() {
    check(
        r#"{"detail": {"$or": [{"c-count": [{"numeric": [">", 0, "<=", 5]}]}, {"d-count": [{"numeric": ["<", 10]}]}, {"x-limit": [{"numeric": ["=", 3.018e2]}]}]}}"#,
        &[
            (json!({"detail": {"c-count": 3}}), true),
            (json!({"detail": {"d-count": 3}}), true),
            (json!({"detail": {"x-limit": 301.8}}), true),
            (
                json!({"detail": {"c-count": 6, "d-count": 11, "x-limit": 1}}),
                false,
            ),
        ],
    );
    check(
        r#"{"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]}, {"namespace": ["AWS/EC2", "AWS/ES"]}]}"#,
        &[
            (
                json!({"source": "aws.cloudwatch", "metricName": "ReadLatency"}),
                true,
            ),
            (
                json!({"source": "aws.cloudwatch", "namespace": "AWS/ES"}),
                true,
            ),
            (json!({"source": "aws.ec2", "namespace": "AWS/ES"}), false),
            (
                json!({"source": "aws.cloudwatch", "namespace": "AWS/S3"}),
                false,
            ),
        ],
    );
}

#[test]
fn ip_address_values_compare_as_addresses() {
    check(
        r#"{"detail": {"sourceIPAddress": ["2001:db8::1"]}}"#,
        &[
            (
                json!({"detail": {"sourceIPAddress": "2001:0db8:0:0::1"}}),
                true,
            ),
            (json!({"detail": {"sourceIPAddress": "2001:db8::2"}}), false),
        ],
    );
}

#[test]
fn combined_content_filters() {
    check(
        r#"{"time": [{"prefix": "2017-10-02"}], "detail": {"state": [{"anything-but": "initializing"}], "c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}], "x-limit": [{"anything-but": [100, 200, 300]}]}}"#,
        &[
            (
                json!({"time": "2017-10-02T18:43:48Z", "detail": {"state": "running", "c-count": 5, "d-count": 3, "x-limit": 150}}),
                true,
            ),
            (
                json!({"time": "2017-10-02T18:43:48Z", "detail": {"state": "running", "c-count": 5, "d-count": 3, "x-limit": 200}}),
                false,
            ),
        ],
    );
}
