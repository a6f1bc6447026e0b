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

#[cfg(test)]
mod tests {
    use super::*;

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
