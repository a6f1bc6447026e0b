//! Resource-based policies as Lambda stores them: the statements
//! AddPermission adds (or the whole document PutResourcePolicy sets) and the
//! document GetPolicy answers. They are decided by `strato_iam`'s one
//! evaluator (`Iam::authorize_access`), which reads [`Policy::text`].

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// A function's (version's, alias's, layer version's) resource policy. Its
/// revision is the function's (version's, alias's) `RevisionId`, which every
/// change of the policy changes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Policy {
    statements: Vec<Value>,
    /// The document's `Version` and `Id` as PutResourcePolicy gave them;
    /// `None` for AWS's (`2012-10-17`, `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<Value>,
    /// The document's text, rendered once (the invoke path reads it).
    #[serde(skip)]
    text: OnceLock<String>,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Policy) -> bool {
        self.statements == other.statements && self.version == other.version && self.id == other.id
    }
}

/// Why a document cannot be a function's policy as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("the policy is not a JSON object with a Statement list")]
    Shape,
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

    /// Adds a statement (AddPermission).
    pub fn push(&mut self, statement: Value) {
        self.statements.push(statement);
        self.text = OnceLock::new();
    }

    /// Removes the statement, returning whether it was there.
    pub fn remove(&mut self, sid: &str) -> bool {
        let before = self.statements.len();
        self.statements
            .retain(|s| s.get("Sid").and_then(Value::as_str) != Some(sid));
        self.text = OnceLock::new();
        before != self.statements.len()
    }

    /// The policy a whole document makes (PutResourcePolicy): its
    /// `Version`, `Id` and statements (one statement object counts as a
    /// list of one). The document's grammar is checked by the evaluator's
    /// parser before it is stored.
    pub fn from_document(document: &Value) -> Result<Policy, DocumentError> {
        let Value::Object(top) = document else {
            return Err(DocumentError::Shape);
        };
        let statements = match top.get("Statement") {
            Some(Value::Array(items)) => items.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => return Err(DocumentError::Shape),
        };
        Ok(Policy {
            statements,
            version: top
                .get("Version")
                .and_then(Value::as_str)
                .map(str::to_string),
            id: top.get("Id").cloned(),
            text: OnceLock::new(),
        })
    }

    /// The policy document as GetPolicy returns it (a JSON string on the
    /// wire), rendered once per change.
    pub fn text(&self) -> &str {
        self.text.get_or_init(|| {
            json!({
                "Version": self.version.as_deref().unwrap_or("2012-10-17"),
                "Id": self.id.clone().unwrap_or_else(|| Value::String("default".into())),
                "Statement": self.statements,
            })
            .to_string()
        })
    }

    /// AWS's answer to a policy over Lambda's limit (20 KB).
    pub fn check_size(&self) -> Result<(), crate::AwsError> {
        let size = self.text().len();
        let limit = crate::limits::MAX_POLICY_BYTES;
        if size > limit {
            return Err(crate::AwsError::new(
                crate::ErrorCode::PolicyLengthExceededException,
                format!("The final policy size ({size}) is bigger than the limit ({limit})."),
            ));
        }
        Ok(())
    }

    /// [`Policy::text`], owned.
    pub fn document(&self) -> String {
        self.text().to_string()
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

/// `*` and `?` wildcards as IAM matches them (actions, resources,
/// `StringLike`, `ArnLike`); actions compare case-insensitively.
pub fn wildcard(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let eq = |a: u8, b: u8| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || (p[pi] != b'*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_document_keeps_its_version_and_id_and_statements_grow_from_it() {
        let document = json!({
            "Version": "2008-10-17",
            "Id": "mine",
            "Statement": {"Sid": "a", "Effect": "Allow", "Principal": "*",
                          "Action": "lambda:InvokeFunction", "Resource": "*"}
        });
        let mut policy = Policy::from_document(&document).unwrap();
        let text: Value = serde_json::from_str(policy.text()).unwrap();
        assert_eq!(text["Version"], "2008-10-17");
        assert_eq!(text["Id"], "mine");
        assert_eq!(text["Statement"][0]["Sid"], "a");
        policy.push(json!({"Sid": "b"}));
        let text: Value = serde_json::from_str(policy.text()).unwrap();
        assert_eq!(text["Statement"][1]["Sid"], "b");
        assert!(policy.remove("a"));
        assert!(!policy.text().contains("\"Sid\":\"a\""));
        assert_eq!(
            Policy::from_document(&json!({"Statement": 1})),
            Err(DocumentError::Shape)
        );
        let empty: Value = serde_json::from_str(Policy::default().text()).unwrap();
        assert_eq!(empty["Id"], "default");
        assert_eq!(empty["Version"], "2012-10-17");
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard("a*c", "abbbc", false));
        assert!(wildcard("a?c", "abc", false));
        assert!(!wildcard("a?c", "abbc", false));
        assert!(wildcard("*", "", false));
        assert!(!wildcard("abc", "abcd", false));
        assert!(wildcard("LAMBDA:invoke*", "lambda:InvokeFunction", true));
        assert!(!wildcard("A", "a", false));
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
