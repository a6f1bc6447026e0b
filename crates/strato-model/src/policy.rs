//! Resource-based policies: the statements AddPermission adds.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// A function's (or version's) resource policy. Its revision is the
/// function's `RevisionId`, which AddPermission/RemovePermission change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub statements: Vec<Value>,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    pub fn contains(&self, sid: &str) -> bool {
        self.statements
            .iter()
            .any(|s| s.get("Sid").and_then(Value::as_str) == Some(sid))
    }

    /// Removes the statement, returning whether it was there.
    pub fn remove(&mut self, sid: &str) -> bool {
        let before = self.statements.len();
        self.statements
            .retain(|s| s.get("Sid").and_then(Value::as_str) != Some(sid));
        before != self.statements.len()
    }

    /// The policy document as GetPolicy returns it (a JSON string on the wire).
    pub fn document(&self) -> String {
        let doc = json!({
            "Version": "2012-10-17",
            "Id": "default",
            "Statement": self.statements,
        });
        doc.to_string()
    }
}

/// The principal of an AddPermission request as AWS writes it into a
/// statement: a service (`{"Service": ...}`), an account (`{"AWS": arn:...:root}`),
/// an ARN (`{"AWS": arn}`) or `*`.
pub fn principal_value(principal: &str) -> Option<Value> {
    if principal == "*" {
        return Some(Value::String("*".into()));
    }
    if principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()) {
        return Some(json!({ "AWS": format!("arn:aws:iam::{principal}:root") }));
    }
    if principal.starts_with("arn:") {
        return Some(json!({ "AWS": principal }));
    }
    if principal.ends_with(".amazonaws.com") || principal.ends_with(".amazonaws.com.cn") {
        return Some(json!({ "Service": principal }));
    }
    None
}

/// Inputs of one AddPermission statement.
pub struct StatementInput<'a> {
    pub sid: &'a str,
    pub action: &'a str,
    pub principal: Value,
    pub resource: &'a str,
    pub source_arn: Option<&'a str>,
    pub source_account: Option<&'a str>,
    pub event_source_token: Option<&'a str>,
    pub principal_org_id: Option<&'a str>,
    pub function_url_auth_type: Option<&'a str>,
}

/// Builds the statement AWS stores for AddPermission, conditions included.
pub fn statement(input: &StatementInput<'_>) -> Value {
    let mut condition = Map::new();
    let mut string_equals = Map::new();
    if let Some(account) = input.source_account {
        string_equals.insert("AWS:SourceAccount".into(), account.into());
    }
    if let Some(token) = input.event_source_token {
        string_equals.insert("lambda:EventSourceToken".into(), token.into());
    }
    if let Some(org) = input.principal_org_id {
        string_equals.insert("aws:PrincipalOrgID".into(), org.into());
    }
    if let Some(auth) = input.function_url_auth_type {
        string_equals.insert("lambda:FunctionUrlAuthType".into(), auth.into());
    }
    if !string_equals.is_empty() {
        condition.insert("StringEquals".into(), Value::Object(string_equals));
    }
    if let Some(source) = input.source_arn {
        condition.insert("ArnLike".into(), json!({ "AWS:SourceArn": source }));
    }
    let mut stmt = json!({
        "Sid": input.sid,
        "Effect": "Allow",
        "Principal": input.principal,
        "Action": input.action,
        "Resource": input.resource,
    });
    if !condition.is_empty() {
        if let Value::Object(map) = &mut stmt {
            map.insert("Condition".into(), Value::Object(condition));
        }
    }
    stmt
}

/// Who a policy evaluation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestPrincipal<'a> {
    /// An AWS service principal (`apigateway.amazonaws.com`).
    Service(&'a str),
    /// A caller of an account (its root or any identity in it).
    Account(&'a str),
    /// An unauthenticated caller: only `*` matches.
    Anonymous,
}

/// One request a resource policy is asked about.
#[derive(Debug, Clone)]
pub struct PolicyRequest<'a> {
    pub principal: RequestPrincipal<'a>,
    /// `lambda:InvokeFunction`, `lambda:InvokeFunctionUrl`, ...
    pub action: &'a str,
    /// The ARN acted on (the function ARN, qualified as the caller named it).
    pub resource: &'a str,
    pub source_arn: Option<&'a str>,
    pub source_account: Option<&'a str>,
    /// `AWS:SourceOwner`: the account a service acts for when it publishes
    /// as that account (CloudWatch alarms), which SNS's default topic policy
    /// tests; `None` for services that act as themselves (EventBridge, S3).
    pub source_owner: Option<&'a str>,
    /// `lambda:FunctionUrlAuthType` (function URL invocations).
    pub function_url_auth_type: Option<&'a str>,
    /// `lambda:InvokedViaFunctionUrl`: the invocation comes through a
    /// function URL.
    pub invoked_via_function_url: bool,
}

/// `*` and `?` wildcards as IAM matches them (`ArnLike`, `StringLike`,
/// actions, resources); case-sensitive.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    let p = pattern.as_bytes();
    let v = value.as_bytes();
    let (mut pi, mut vi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// The strings of a policy member that is a string or a list of strings.
fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn principal_matches(principal: &Value, who: &RequestPrincipal<'_>) -> bool {
    if principal.as_str() == Some("*") {
        return true;
    }
    if let Some(aws) = principal.get("AWS") {
        for p in strings(aws) {
            if p == "*" {
                return true;
            }
            if let RequestPrincipal::Account(account) = who {
                let root = format!("arn:aws:iam::{account}:root");
                if p == *account || p == root {
                    return true;
                }
            }
        }
    }
    if let (Some(service), RequestPrincipal::Service(name)) = (principal.get("Service"), who) {
        return strings(service).contains(name);
    }
    false
}

/// Whether every condition of a statement holds for the request; an
/// operator or key Strato does not know fails closed.
fn conditions_hold(condition: &Value, request: &PolicyRequest<'_>) -> bool {
    let Value::Object(operators) = condition else {
        return condition.is_null();
    };
    operators.iter().all(|(operator, tests)| {
        let Value::Object(tests) = tests else {
            return false;
        };
        tests.iter().all(|(key, expected)| {
            let actual = match key.to_ascii_lowercase().as_str() {
                "aws:sourcearn" => request.source_arn,
                "aws:sourceaccount" => request.source_account,
                "aws:sourceowner" => request.source_owner,
                "lambda:functionurlauthtype" => request.function_url_auth_type,
                "lambda:invokedviafunctionurl" => Some(if request.invoked_via_function_url {
                    "true"
                } else {
                    "false"
                }),
                _ => None,
            };
            let Some(actual) = actual else {
                return false;
            };
            let expected = strings(expected);
            match operator.as_str() {
                "StringEquals" | "ArnEquals" | "Bool" => expected.contains(&actual),
                "StringLike" | "ArnLike" => expected.iter().any(|e| wildcard_match(e, actual)),
                _ => false,
            }
        })
    })
}

impl Policy {
    /// Whether an `Allow` statement admits the request (and no `Deny`
    /// statement refuses it).
    pub fn allows(&self, request: &PolicyRequest<'_>) -> bool {
        let applies = |s: &Value| {
            s.get("Principal")
                .is_some_and(|p| principal_matches(p, &request.principal))
                // Action names are case-insensitive (`SNS:Publish`, `sns:Publish`).
                && s.get("Action").is_some_and(|a| {
                    strings(a).iter().any(|pattern| {
                        wildcard_match(
                            &pattern.to_ascii_lowercase(),
                            &request.action.to_ascii_lowercase(),
                        )
                    })
                })
                && s.get("Resource").is_some_and(|r| {
                    strings(r).iter().any(|pattern| {
                        wildcard_match(pattern, request.resource)
                            // A function's policy covers its unqualified ARN
                            // and `$LATEST`.
                            || request
                                .resource
                                .strip_suffix(":$LATEST")
                                .is_some_and(|unqualified| wildcard_match(pattern, unqualified))
                    })
                })
                && conditions_hold(s.get("Condition").unwrap_or(&Value::Null), request)
        };
        let effect = |s: &Value, e: &str| s.get("Effect").and_then(Value::as_str) == Some(e);
        let denied = self
            .statements
            .iter()
            .any(|s| effect(s, "Deny") && applies(s));
        !denied
            && self
                .statements
                .iter()
                .any(|s| effect(s, "Allow") && applies(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoke_request<'a>(source_arn: &'a str) -> PolicyRequest<'a> {
        PolicyRequest {
            principal: RequestPrincipal::Service("apigateway.amazonaws.com"),
            action: "lambda:InvokeFunction",
            resource: "arn:aws:lambda:us-east-1:000000000000:function:f",
            source_arn: Some(source_arn),
            source_account: Some("000000000000"),
            source_owner: None,
            function_url_auth_type: None,
            invoked_via_function_url: false,
        }
    }

    #[test]
    fn service_statement_with_source_arn_pattern_allows_matching_calls_only() {
        let mut policy = Policy::default();
        policy.statements.push(statement(&StatementInput {
            sid: "apigw",
            action: "lambda:InvokeFunction",
            principal: json!({"Service": "apigateway.amazonaws.com"}),
            resource: "arn:aws:lambda:us-east-1:000000000000:function:f",
            source_arn: Some("arn:aws:execute-api:us-east-1:000000000000:abc/*"),
            source_account: None,
            event_source_token: None,
            principal_org_id: None,
            function_url_auth_type: None,
        }));
        assert!(policy.allows(&invoke_request(
            "arn:aws:execute-api:us-east-1:000000000000:abc/$default/GET/items"
        )));
        assert!(!policy.allows(&invoke_request(
            "arn:aws:execute-api:us-east-1:000000000000:other/$default/GET/items"
        )));
        assert!(!Policy::default().allows(&invoke_request("x")));
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "abbc"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("abc", "abcd"));
    }

    #[test]
    fn service_principal_is_wrapped_as_service() {
        assert_eq!(
            principal_value("apigateway.amazonaws.com"),
            Some(json!({"Service": "apigateway.amazonaws.com"}))
        );
    }

    #[test]
    fn account_principal_becomes_root_arn() {
        assert_eq!(
            principal_value("123456789012"),
            Some(json!({"AWS": "arn:aws:iam::123456789012:root"}))
        );
    }

    #[test]
    fn nonsense_principal_is_refused() {
        assert_eq!(principal_value("not a principal"), None);
    }

    #[test]
    fn source_arn_becomes_arn_like_condition() {
        let s = statement(&StatementInput {
            sid: "s1",
            action: "lambda:InvokeFunction",
            principal: json!({"Service": "s3.amazonaws.com"}),
            resource: "arn:aws:lambda:us-east-1:000000000000:function:f",
            source_arn: Some("arn:aws:s3:::bucket"),
            source_account: Some("000000000000"),
            event_source_token: None,
            principal_org_id: None,
            function_url_auth_type: None,
        });
        assert_eq!(
            s["Condition"]["ArnLike"]["AWS:SourceArn"],
            "arn:aws:s3:::bucket"
        );
        assert_eq!(
            s["Condition"]["StringEquals"]["AWS:SourceAccount"],
            "000000000000"
        );
    }
}
