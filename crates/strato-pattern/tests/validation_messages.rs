//! Refused patterns and the exact messages AWS answered for them, from the recorded answers in
//! `shared/reference/events-errors.txt` and `sns-errors.txt` (the location suffix Jackson appends,
//! ` at [Source: ...]`, left out) and Lambda's `InvalidParameterValueException`.

use strato_pattern::{Dialect, Pattern, PatternError, SnsScope};

fn refusal(pattern: &str, dialect: Dialect) -> PatternError {
    match Pattern::parse(pattern, dialect) {
        Ok(parsed) => panic!("{pattern} should be refused, parsed as {parsed:?}"),
        Err(error) => error,
    }
}

fn assert_eventbridge_reason(pattern: &str, reason: &str) {
    let error = refusal(pattern, Dialect::EventBridge);
    assert_eq!(
        error.to_string(),
        format!("Event pattern is not valid. Reason: {reason}"),
        "pattern {pattern}"
    );
}

const ATTRIBUTES: Dialect = Dialect::SnsFilterPolicy(SnsScope::MessageAttributes);
const BODY: Dialect = Dialect::SnsFilterPolicy(SnsScope::MessageBody);

fn assert_sns_reason(pattern: &str, reason: &str) {
    let error = refusal(pattern, ATTRIBUTES);
    assert_eq!(error.reason(), reason, "pattern {pattern}");
    assert_eq!(
        error.to_string(),
        format!("Invalid parameter: FilterPolicy: {reason}"),
        "pattern {pattern}"
    );
}

#[test]
fn eventbridge_numeric_errors() {
    let cases = [
        (
            r#"{"detail": {"c-count": [{"numeric": [">", 0, ">", 0]}]}}"#,
            "Bad numeric range operator: >",
        ),
        (
            r#"{"detail": {"c-count": [{"numeric": [">", 0, "<"]}]}}"#,
            "Value of < must be numeric",
        ),
        (
            r#"{"detail": {"c-count": [{"numeric": 10}]}}"#,
            "Value of numeric must be an array.",
        ),
        (
            r#"{"detail": {"equal": [{"NUMERIC": ["=", 5]}]}}"#,
            "Unrecognized match type NUMERIC",
        ),
    ];
    for (pattern, reason) in cases {
        assert_eventbridge_reason(pattern, reason);
    }
}

#[test]
fn eventbridge_structure_errors() {
    let cases = [
        (r#"{"resources": []}"#, "Empty arrays are not allowed"),
        (r#"{"int": 42}"#, "\"int\" must be an object or an array"),
        (
            r#"{"string": "my-value"}"#,
            "\"string\" must be an object or an array",
        ),
        (
            r#"{"my_key": [{"EXISTS": true}]}"#,
            "Unrecognized match type EXISTS",
        ),
    ];
    for (pattern, reason) in cases {
        assert_eventbridge_reason(pattern, reason);
    }
}

/// AWS's recorded messages in full: for errors in the JSON itself AWS keeps the parser's location
/// in the message.
#[test]
fn eventbridge_json_errors_carry_jacksons_words_and_location() {
    let cases = [
        (
            r#"["not", "a", "dict", "but valid json"]"#,
            "Filter is not an object\n at [Source: (String)\"[\"not\", \"a\", \"dict\", \"but valid json\"]\"; line: 1, column: 2]",
        ),
        (
            r#"{'bad': 'quotation'}"#,
            "Unexpected character (''' (code 39)): was expecting double-quote to start field name\n at [Source: (String)\"{'bad': 'quotation'}\"; line: 1, column: 2]",
        ),
        (
            r#"{"not": closed mark""#,
            "Unrecognized token 'closed': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')\n at [Source: (String)\"{\"not\": closed mark\"\"; line: 1, column: 15]",
        ),
        (
            "this is valid json but not a dict",
            "Unrecognized token 'this': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')\n at [Source: (String)\"this is valid json but not a dict\"; line: 1, column: 5]",
        ),
    ];
    for (pattern, reason) in cases {
        assert_eventbridge_reason(pattern, reason);
    }
}

#[test]
fn eventbridge_anything_but_errors() {
    let cases = [
        (
            r#"{"detail": {"state": [{"anything-but": ["stopped", null]}]}}"#,
            "Inside anything but list, start|null|boolean is not supported.",
        ),
        (
            r#"{"detail": {"state": [{"anything-but": {"equals-ignore-case": 123}}]}}"#,
            "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.",
        ),
        (
            r#"{"detail": {"state": [{"anything-but": {"equals-ignore-case": [123, 456]}}]}}"#,
            "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.",
        ),
        (
            r#"{"detail": {"FileName": [{"anything-but": {"prefix": ""}}]}}"#,
            "Null prefix/suffix not allowed",
        ),
        (
            r#"{"detail": {"FileName": [{"anything-but": {"suffix": ""}}]}}"#,
            "Null prefix/suffix not allowed",
        ),
        (
            r#"{"detail": {"FileName": [{"anything-but": {"prefix": {"equals-ignore-case": "file"}}}]}}"#,
            "Value of anything-but must be an array or single string/number value.",
        ),
        (
            r#"{"detail": {"FileName": [{"anything-but": {"suffix": {"equals-ignore-case": ".png"}}}]}}"#,
            "Value of anything-but must be an array or single string/number value.",
        ),
        (
            r#"{"detail": {"state": [{"anything-but": null}]}}"#,
            "Value of anything-but must be an array or single string/number value.",
        ),
        (
            r#"{"detail": {"FileName": [{"anything-but": {"suffix": 123}}]}}"#,
            "prefix/suffix match pattern must be a string",
        ),
        (
            r#"{"detail": {"FileName": [{"anything-but": {"suffix": [123, ".txt"]}}]}}"#,
            "prefix/suffix match pattern must be a string",
        ),
        (
            r#"{"detail": {"FileName": [{"anything-but": {"suffix": [null, ".txt"]}}]}}"#,
            "prefix/suffix match pattern must be a string",
        ),
        (
            r#"{"detail": {"state": [{"anything-but": {"prefix": 123}}]}}"#,
            "prefix/suffix match pattern must be a string",
        ),
        (
            r#"{"detail": {"state": [{"anything-but": {"prefix": [123, "test"]}}]}}"#,
            "prefix/suffix match pattern must be a string",
        ),
        (
            r#"{"detail": {"FilePath": [{"anything-but": {"wildcard": 123}}]}}"#,
            "wildcard match pattern must be a string",
        ),
        (
            r#"{"detail": {"state": [{"anything-but": {"wildcard": [123, "*/dir/*"]}}]}}"#,
            "wildcard match pattern must be a string",
        ),
    ];
    for (pattern, reason) in cases {
        assert_eventbridge_reason(pattern, reason);
    }
}

#[test]
fn eventbridge_string_operator_errors() {
    let cases = [
        (
            r#"{"detail-type": [{"equals-ignore-case": ["ec2 instance state-change notification"]}]}"#,
            "equals-ignore-case match pattern must be a string",
        ),
        (
            r#"{"detail-type": [{"equals-ignore-case": {"prefix": "ec2"}}]}"#,
            "equals-ignore-case match pattern must be a string",
        ),
        (
            r#"{"time": [{"prefix": 123}]}"#,
            "prefix match pattern must be a string",
        ),
        (
            r#"{"time": [{"prefix": ["2022-07-13"]}]}"#,
            "prefix match pattern must be a string",
        ),
        (
            r#"{"FileName": [{"suffix": 123}]}"#,
            "suffix match pattern must be a string",
        ),
        (
            r#"{"FileName": [{"suffix": [".png"]}]}"#,
            "suffix match pattern must be a string",
        ),
        (
            r#"{"EventBusArn": [{"wildcard": 123}]}"#,
            "wildcard match pattern must be a string",
        ),
        (
            r#"{"EventBusArn": [{"wildcard": ["arn:aws:events:us-east-1:**:event-bus/*"]}]}"#,
            "wildcard match pattern must be a string",
        ),
        (
            r#"{"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:**:event-bus/*"}]}"#,
            "Consecutive wildcard characters at pos 26",
        ),
    ];
    for (pattern, reason) in cases {
        assert_eventbridge_reason(pattern, reason);
    }
}

#[test]
fn eventbridge_cidr_errors() {
    let cases = [
        (
            r#"{"detail": {"sourceIPAddress": [{"cidr": ["bad-type"]}]}}"#,
            "prefix match pattern must be a string",
        ),
        (
            r#"{"ip": [{"cidr": "10.0.0.0/abc"}]}"#,
            "Malformed CIDR, mask bits must be an integer",
        ),
        (
            r#"{"ip": [{"cidr": "10.0.0.0/24/8"}]}"#,
            "Malformed CIDR, one '/' required",
        ),
        (
            r#"{"ip": [{"cidr": "xx.11.xx"}]}"#,
            "Nonstandard IP address: xx.11.xx",
        ),
        (
            r#"{"ip": [{"cidr": "xxxx:db8:1234:1a00::"}]}"#,
            "Nonstandard IP address: xxxx:db8:1234:1a00::",
        ),
    ];
    for (pattern, reason) in cases {
        assert_eventbridge_reason(pattern, reason);
    }
}

#[test]
fn eventbridge_or_errors() {
    let cases = [
        (r#"{"$or": "x"}"#, "It must be an Array followed with $or."),
        (
            r#"{"$or": [{"a": ["x"]}]}"#,
            "There must have at least 2 Objects in $or relationship.",
        ),
        (
            r#"{"$or": [{"a": ["x"]}, "b"]}"#,
            "Only JSON object is allowed in array of $or relationship.",
        ),
        (
            r#"{"$or": [{"prefix": ["x"]}, {"a": ["y"]}]}"#,
            "prefix is Ruler reserved fieldName which cannot be used inside $or.",
        ),
    ];
    for (pattern, reason) in cases {
        assert_eventbridge_reason(pattern, reason);
    }
}

#[test]
fn sns_reads_a_malformed_or_as_a_field_name() {
    let policy = Pattern::parse(r#"{"$or": ["x"]}"#, BODY).unwrap();
    assert!(policy.matches(&serde_json::json!({"$or": "x"})));
    // SNS's own example is not an `$or` (its objects name operators): `$or` becomes a field whose
    // values are those objects, read as match expressions, and `{"numeric": 123}` is not one.
    let error = refusal(r#"{"$or": [{"numeric": 123}, {"prefix": "abc"}]}"#, BODY);
    assert_eq!(error.reason(), "Value of numeric must be an array.");
}

#[test]
fn eventbridge_rules_of_the_open_source_engine() {
    let cases = [
        (r#"{"p": [{"wildcard": "a\\b"}]}"#, "Invalid escape character at pos 2"),
        (r#"{"ip": [{"cidr": "999.1.1.1/8"}]}"#, "Invalid IP address: 999.1.1.1"),
        (r#"{"ip": [{"cidr": "10.0.0.0/-1"}]}"#, "Malformed CIDR, mask bits must not be negative"),
        (r#"{"ip": [{"cidr": "10.0.0.0/33"}]}"#, "IPv4 mask bits must be < 32"),
        (
            r#"{"s": [{"anything-but": ["a", 1]}]}"#,
            "Inside anything but list, either all values are number or string, mixed type is not supported",
        ),
        (
            r#"{"s": [{"anything-but": []}]}"#,
            "Inside anything but list, either all values are number or string, mixed type is not supported",
        ),
        (r#"{"s": [{"prefix": {"wildcard": "a"}}]}"#, "Unsupported prefix pattern: wildcard"),
        (r#"{"s": [{"suffix": {}}]}"#, "Suffix expression name not found"),
        (
            r#"{"s": [{"prefix": {"equals-ignore-case": 1}}]}"#,
            "equals-ignore-case match pattern must be a string",
        ),
        (
            r#"{"s": [{"anything-but": {"prefix": true}}]}"#,
            "Value of anything-but must be an array or single string/number value.",
        ),
        (r#"{"s": [{"exists": true, "prefix": "a"}]}"#, "Only one key allowed in match expression"),
        (r#"{"s": {}}"#, "Empty objects are not allowed"),
    ];
    for (pattern, reason) in cases {
        assert_eventbridge_reason(pattern, reason);
    }
}

#[test]
fn eventbridge_refuses_wildcards_that_are_too_complex() {
    let repetitive = "*a".repeat(60);
    let pattern = format!(r#"{{"p": [{{"wildcard": "{repetitive}"}}]}}"#);
    assert_eventbridge_reason(
        &pattern,
        "Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a wildcard character",
    );
    let ordinary = r#"{"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}], "p": [{"wildcard": "dir/*/*.png"}]}"#;
    assert!(Pattern::parse(ordinary, Dialect::EventBridge).is_ok());
}

#[test]
fn sns_numeric_errors() {
    let cases = [
        (
            r#"{"key":[{"numeric":[">=",1,">",2]}]}"#,
            "Bad numeric range operator: >",
        ),
        (
            r#"{"key":[{"numeric":[">",20,"test"]}]}"#,
            "Bad numeric range operator: test",
        ),
        (
            r#"{"key":[{"numeric":[">",20,30]}]}"#,
            "Bad value in numeric range: 30",
        ),
        (
            r#"{"key":[{"numeric":[">",3,"<",1]}]}"#,
            "Bottom must be less than top",
        ),
        (
            r#"{"key":[{"numeric":[1,"<="]}]}"#,
            "Invalid member in numeric match: 1",
        ),
        (
            r#"{"key":[{"numeric":[]}]}"#,
            "Invalid member in numeric match: ]",
        ),
        (
            r#"{"key":[{"numeric":["<",100,">",10]}]}"#,
            "Too many elements in numeric expression",
        ),
        (
            r#"{"key":[{"numeric":[">",20,"<",30,"<",50]}]}"#,
            "Too many terms in numeric range expression",
        ),
        (
            r#"{"key":[{"numeric":["operator"]}]}"#,
            "Unrecognized numeric range operator: operator",
        ),
        (
            r#"{"key":[{"numeric":[">",20,"<","30"]}]}"#,
            "Value of < must be numeric",
        ),
        (
            r#"{"key":[{"numeric":[">",20,"<="]}]}"#,
            "Value of <= must be numeric",
        ),
        (
            r#"{"key":[{"numeric":[">","20","<","30"]}]}"#,
            "Value of > must be numeric",
        ),
        (
            r#"{"key":[{"numeric":[">="]}]}"#,
            "Value of >= must be numeric",
        ),
        (
            r#"{"key":[{"numeric":["=","000"]}]}"#,
            "Value of equals must be numeric",
        ),
    ];
    for (pattern, reason) in cases {
        assert_sns_reason(pattern, reason);
    }
}

#[test]
fn sns_operator_errors() {
    let cases = [
        (r#"{"key":[]}"#, "Empty arrays are not allowed"),
        (
            r#"{"key":[{"cidr":"10.0.0.0/abc"}]}"#,
            "Malformed CIDR, mask bits must be an integer",
        ),
        (
            r#"{"key":[{"cidr":"bad-filter"}]}"#,
            "Nonstandard IP address: bad-filter",
        ),
        (
            r#"{"key":[{"cidr":["bad-filter"]}]}"#,
            "prefix match pattern must be a string",
        ),
        (
            r#"{"key":[["value"]]}"#,
            "Match value must be String, number, true, false, or null",
        ),
        (
            r#"{"key":[{"suffix":"value","prefix":"value2"}]}"#,
            "Only one key allowed in match expression",
        ),
        (
            r#"{"key":[{"wrong-operator":true}]}"#,
            "Unrecognized match type wrong-operator",
        ),
        (
            r#"{"key":[{"anything-but":{"exists":false}}]}"#,
            "Unsupported anything-but pattern: exists",
        ),
        (
            r#"{"key":[{"anything-but":{"suffix":"test"}}]}"#,
            "Unsupported anything-but pattern: suffix",
        ),
        (
            r#"{"key":[{"anything-but":{"wrong-operator":null}}]}"#,
            "Unsupported anything-but pattern: wrong-operator",
        ),
        (
            r#"{"key":[{"anything-but":{"prefix":false}}]}"#,
            "prefix match pattern must be a string",
        ),
        (
            r#"{"key":[{"suffix":100}]}"#,
            "suffix match pattern must be a string",
        ),
        (
            r#"{"key":[{"suffix":["test","test2"]}]}"#,
            "suffix match pattern must be a string",
        ),
        (
            r#"{"key":[{"suffix":[]}]}"#,
            "suffix match pattern must be a string",
        ),
        (
            r#"{"key":[{"suffix":null}]}"#,
            "suffix match pattern must be a string",
        ),
        (
            r#"{"key":[{"exists":"no"}]}"#,
            "exists match pattern must be either true or false.",
        ),
        (
            r#"{"key":[{"exists":null}]}"#,
            "exists match pattern must be either true or false.",
        ),
        (
            r#"{"key_a":"value_one"}"#,
            "\"key_a\" must be an object or an array",
        ),
        (
            r#"{"key":[{"wildcard":"a*"}]}"#,
            "Unrecognized match type wildcard",
        ),
    ];
    for (pattern, reason) in cases {
        assert_sns_reason(pattern, reason);
    }
}

#[test]
fn sns_attribute_scope_refuses_nesting_after_validating_it() {
    // A malformed nested policy gets the malformed reason, in either scope, as AWS answers.
    for scope in [ATTRIBUTES, BODY] {
        let error = refusal(r#"{"key":{"suffix":"value"}}"#, scope);
        assert_eq!(error.reason(), "\"suffix\" must be an object or an array");
        let error = refusal(r#"{"key":{"not-an-operator":"value"}}"#, scope);
        assert_eq!(
            error.reason(),
            "\"not-an-operator\" must be an object or an array"
        );
    }
    let nested = r#"{"key":{"inner":["value"]}}"#;
    assert_eq!(
        refusal(nested, ATTRIBUTES).to_string(),
        "Invalid parameter: Filter policy scope MessageAttributes does not support nested filter policy"
    );
    assert!(Pattern::parse(nested, BODY).is_ok());
}

#[test]
fn sns_limits_five_keys_and_150_combinations() {
    let six_keys = r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"],"f":["1"]}"#;
    assert_sns_reason(six_keys, "Filter policy can not have more than 5 keys");
    let five_keys = r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"]}"#;
    assert!(Pattern::parse(five_keys, ATTRIBUTES).is_ok());

    // 6 * 5 * 5 = 150 is the most allowed; one more value is too complex.
    let at_limit =
        r#"{"a":["1","2","3","4","5","6"],"b":["1","2","3","4","5"],"c":["1","2","3","4","5"]}"#;
    assert!(Pattern::parse(at_limit, ATTRIBUTES).is_ok());
    let over = r#"{"a":["1","2","3","4","5","6","7"],"b":["1","2","3","4","5"],"c":["1","2","3","4","5"]}"#;
    assert_sns_reason(over, "Filter policy is too complex");
}

#[test]
fn sns_or_branches_add_their_combinations() {
    // (a: 10 values) AND (b: 10 values OR c: 6 values) = 10 * 16 = 160 combinations.
    let ten = r#"["1","2","3","4","5","6","7","8","9","10"]"#;
    let six = r#"["1","2","3","4","5","6"]"#;
    let policy = format!(r#"{{"a":{ten},"$or":[{{"b":{ten}}},{{"c":{six}}}]}}"#);
    assert_sns_reason(&policy, "Filter policy is too complex");
}

#[test]
fn sns_json_errors_say_failed_to_parse_with_the_source_redacted() {
    let error = refusal("invalid", ATTRIBUTES);
    assert_eq!(
        error.to_string(),
        "Invalid parameter: FilterPolicy: failed to parse JSON. Unrecognized token 'invalid': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')\n at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: 1, column: 8]"
    );
    let error = refusal("{invalid: 1}", ATTRIBUTES);
    let redacted = "\n at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: 1, column: 2]";
    assert_eq!(
        error.to_string(),
        format!("Invalid parameter: FilterPolicy: failed to parse JSON. Unexpected character ('i' (code 105)): was expecting double-quote to start field name{redacted}")
    );
    // SetSubscriptionAttributes frames the same reason its own way.
    assert_eq!(
        format!("Invalid parameter: Attributes Reason: FilterPolicy: {}", error.reason()),
        format!("Invalid parameter: Attributes Reason: FilterPolicy: failed to parse JSON. Unexpected character ('i' (code 105)): was expecting double-quote to start field name{redacted}")
    );
}

#[test]
fn lambda_refuses_everything_with_one_message() {
    for pattern in [
        "not json",
        r#"{"body": "x"}"#,
        r#"{"body": {"n": [{"numeric": [">", 0, ">", 0]}]}}"#,
        r#"{"body": {"ip": [{"cidr": "10.0.0.0/24"}]}}"#,
        r#"{"body": {"path": [{"wildcard": "*.png"}]}}"#,
        r#"{"body": {"state": [{"anything-but": {"prefix": "init"}}]}}"#,
    ] {
        assert_eq!(
            refusal(pattern, Dialect::LambdaFilterCriteria).to_string(),
            "Invalid filter pattern definition.",
            "pattern {pattern}"
        );
    }
}
