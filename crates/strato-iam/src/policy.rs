//! The IAM policy language: a document parsed once (with AWS's
//! `MalformedPolicyDocument` reasons) into statements whose patterns are
//! ready to match, and evaluated without allocation on the common path.
//!
//! Evaluation follows AWS's logic: an explicit `Deny` anywhere wins, then an
//! `Allow`, and without either the request is implicitly denied. Within a
//! statement: principal, action, resource and every condition must match;
//! within a condition: every operator and key (AND), any value (OR).
//!
//! Why over 800 lines: parsing (with AWS's reasons) and evaluation of each
//! element sit side by side on purpose, so the two cannot drift apart.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::Value;

/// Where a document is used decides which elements it must and may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Attached to a user, group or role: no `Principal`.
    Identity,
    /// A role's trust policy: `Principal` required, no `Resource`.
    Trust,
    /// A resource's policy (queue, function, topic): `Principal` required.
    Resource,
}

/// Why a document was refused, in AWS's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedPolicy(pub String);

fn malformed(message: impl Into<String>) -> MalformedPolicy {
    MalformedPolicy(message.into())
}

const SYNTAX_ERRORS: &str = "Syntax errors in policy.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A parsed policy document.
#[derive(Debug, Clone)]
pub struct PolicyDocument {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone)]
struct Statement {
    effect: Effect,
    /// (negated, patterns): `NotAction` when negated.
    action: Option<(bool, Vec<String>)>,
    resource: Option<(bool, Vec<String>)>,
    principal: Option<(bool, Vec<PrincipalPattern>)>,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PrincipalPattern {
    Anyone,
    /// An IAM ARN (an account id is kept as its `:root` ARN).
    Aws(String),
    Service(String),
    Other(String),
}

/// Who makes a request, as policies see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestPrincipal {
    /// An account's root, an IAM user, or a role session. `role_arn` is
    /// the role an assumed-role session belongs to (trust and resource
    /// policies may name the role rather than the session).
    Aws {
        arn: String,
        account: String,
        role_arn: Option<String>,
    },
    /// An AWS service (`lambda.amazonaws.com`).
    Service(String),
    /// An unauthenticated caller (a function URL with `AuthType` `NONE`):
    /// only `"Principal": "*"` (or `{"AWS": "*"}`) names it.
    Anonymous,
}

impl RequestPrincipal {
    pub fn account(&self) -> Option<&str> {
        match self {
            RequestPrincipal::Aws { account, .. } => Some(account),
            RequestPrincipal::Service(_) | RequestPrincipal::Anonymous => None,
        }
    }
}

/// The request's condition keys (names compared case-insensitively, as
/// AWS does; kept lowercase). A key may hold several values.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    values: HashMap<String, Vec<String>>,
}

impl RequestContext {
    pub fn new() -> RequestContext {
        RequestContext::default()
    }

    /// Adds a value to `key`.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> RequestContext {
        self.insert(key, value);
        self
    }

    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.values
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.into());
    }

    fn get(&self, key_lowercase: &str) -> Option<&[String]> {
        self.values.get(key_lowercase).map(Vec::as_slice)
    }
}

/// What a request's connection tells, for the global condition keys every
/// service gives (`aws:SecureTransport`, `aws:SourceIp`): found once where
/// requests arrive and carried with each request to whichever service
/// decides it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Connection {
    /// Whether the request came over TLS (directly or, per
    /// `X-Forwarded-Proto`, through a proxy).
    pub secure: bool,
    /// The client's address, when the listener knows it.
    pub source_ip: Option<IpAddr>,
}

impl Connection {
    /// A request context holding the connection's keys.
    pub fn context(&self) -> RequestContext {
        let mut context = RequestContext::new().with(
            "aws:SecureTransport",
            if self.secure { "true" } else { "false" },
        );
        if let Some(ip) = self.source_ip {
            context.insert("aws:SourceIp", ip.to_string());
        }
        context
    }
}

/// One request to decide.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `service:Operation`.
    pub action: &'a str,
    pub resource: &'a str,
    pub principal: &'a RequestPrincipal,
    pub context: &'a RequestContext,
}

/// What the statements of one document say about a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub denied: bool,
}

impl PolicyDocument {
    /// `Allow` `*` on `*`: what an account's root may do in its account.
    pub fn allow_all() -> PolicyDocument {
        PolicyDocument {
            statements: vec![Statement {
                effect: Effect::Allow,
                action: Some((false, vec!["*".into()])),
                resource: Some((false, vec!["*".into()])),
                principal: None,
                conditions: Vec::new(),
            }],
        }
    }

    /// Parses and validates `text` for its use.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<PolicyDocument, MalformedPolicy> {
        let value: Value = serde_json::from_str(text)
            .map_err(|_| malformed("This policy contains invalid Json"))?;
        PolicyDocument::from_json(&value, kind)
    }

    pub fn from_json(value: &Value, kind: PolicyKind) -> Result<PolicyDocument, MalformedPolicy> {
        let Value::Object(top) = value else {
            return Err(malformed("This policy contains invalid Json"));
        };
        for key in top.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(malformed(SYNTAX_ERRORS));
            }
        }
        match top.get("Version") {
            None => {}
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
            Some(_) => return Err(malformed("The policy failed legacy parsing")),
        }
        let statements = match top.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
            Some(item @ Value::Object(_)) => vec![item],
            _ => return Err(malformed(SYNTAX_ERRORS)),
        };
        let statements = statements
            .into_iter()
            .map(|s| Statement::parse(s, kind))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PolicyDocument { statements })
    }

    /// Whether any statement is a `Deny` (a principal that is not asked
    /// for an allow need only be checked against those).
    pub fn has_deny(&self) -> bool {
        self.statements.iter().any(|s| s.effect == Effect::Deny)
    }

    /// Every statement's say on `request`.
    pub fn evaluate(&self, request: &Request<'_>) -> Verdict {
        let mut verdict = Verdict::default();
        for statement in &self.statements {
            if statement.applies(request) {
                match statement.effect {
                    Effect::Allow => verdict.allowed = true,
                    Effect::Deny => {
                        verdict.denied = true;
                        return verdict;
                    }
                }
            }
        }
        verdict
    }
}

fn strings(value: &Value) -> Result<Vec<String>, MalformedPolicy> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(malformed(SYNTAX_ERRORS)),
            })
            .collect(),
        _ => Err(malformed(SYNTAX_ERRORS)),
    }
}

impl Statement {
    fn parse(value: &Value, kind: PolicyKind) -> Result<Statement, MalformedPolicy> {
        let Value::Object(members) = value else {
            return Err(malformed(SYNTAX_ERRORS));
        };
        for key in members.keys() {
            if !matches!(
                key.as_str(),
                "Sid"
                    | "Effect"
                    | "Action"
                    | "NotAction"
                    | "Resource"
                    | "NotResource"
                    | "Principal"
                    | "NotPrincipal"
                    | "Condition"
            ) {
                return Err(malformed(SYNTAX_ERRORS));
            }
        }
        let effect = match members.get("Effect") {
            Some(Value::String(e)) if e == "Allow" => Effect::Allow,
            Some(Value::String(e)) if e == "Deny" => Effect::Deny,
            Some(Value::String(e)) => return Err(malformed(format!("Invalid effect: {e}"))),
            Some(_) => return Err(malformed(SYNTAX_ERRORS)),
            None => return Err(malformed("Missing required field Effect")),
        };
        let action = match (members.get("Action"), members.get("NotAction")) {
            (Some(_), Some(_)) => return Err(malformed(SYNTAX_ERRORS)),
            (Some(v), None) => Some((false, parse_actions(v)?)),
            (None, Some(v)) => Some((true, parse_actions(v)?)),
            (None, None) => return Err(malformed("Policy statement must contain actions.")),
        };
        let resource = match (members.get("Resource"), members.get("NotResource")) {
            (Some(_), Some(_)) => return Err(malformed(SYNTAX_ERRORS)),
            (Some(_), None) | (None, Some(_)) if kind == PolicyKind::Trust => {
                return Err(malformed("Has prohibited field Resource"))
            }
            (Some(v), None) => Some((false, parse_resources(v)?)),
            (None, Some(v)) => Some((true, parse_resources(v)?)),
            (None, None) if kind == PolicyKind::Identity => {
                return Err(malformed("Policy statement must contain resources."))
            }
            (None, None) => None,
        };
        let principal = match (members.get("Principal"), members.get("NotPrincipal")) {
            (Some(_), Some(_)) => return Err(malformed(SYNTAX_ERRORS)),
            (Some(_), None) | (None, Some(_)) if kind == PolicyKind::Identity => {
                return Err(malformed("Policy document should not specify a principal."))
            }
            (Some(v), None) => Some((false, parse_principals(v)?)),
            (None, Some(v)) => Some((true, parse_principals(v)?)),
            (None, None) if kind == PolicyKind::Identity => None,
            (None, None) => return Err(malformed("Missing required field Principal")),
        };
        let conditions = match members.get("Condition") {
            Some(v) => parse_conditions(v)?,
            None => Vec::new(),
        };
        Ok(Statement {
            effect,
            action,
            resource,
            principal,
            conditions,
        })
    }

    fn applies(&self, request: &Request<'_>) -> bool {
        if let Some((negated, patterns)) = &self.principal {
            let hit = patterns
                .iter()
                .any(|p| principal_matches(p, request.principal));
            if hit == *negated {
                return false;
            }
        }
        if let Some((negated, patterns)) = &self.action {
            let hit = patterns.iter().any(|p| wildcard(p, request.action, true));
            if hit == *negated {
                return false;
            }
        }
        if let Some((negated, patterns)) = &self.resource {
            let hit = patterns
                .iter()
                .any(|p| match substitute(p, request.context) {
                    Some(p) => wildcard(&p, request.resource, false),
                    None => false,
                });
            if hit == *negated {
                return false;
            }
        }
        self.conditions.iter().all(|c| c.holds(request.context))
    }
}

fn parse_actions(value: &Value) -> Result<Vec<String>, MalformedPolicy> {
    let actions = strings(value)?;
    for action in &actions {
        if action == "*" {
            continue;
        }
        match action.matches(':').count() {
            0 => {
                return Err(malformed(
                    "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
                ))
            }
            1 => {}
            _ => return Err(malformed("Actions/Condition can contain only one colon.")),
        }
        let (vendor, _) = action.split_once(':').unwrap_or_default();
        if vendor.is_empty()
            || !vendor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(malformed(format!("Vendor {vendor} is not valid")));
        }
    }
    Ok(actions)
}

fn parse_resources(value: &Value) -> Result<Vec<String>, MalformedPolicy> {
    let resources = strings(value)?;
    for resource in &resources {
        if resource != "*" && !(resource.starts_with("arn:") && resource.split(':').count() >= 6) {
            return Err(malformed(format!(
                "Resource {resource} must be in ARN format or \"*\"."
            )));
        }
    }
    Ok(resources)
}

fn parse_principals(value: &Value) -> Result<Vec<PrincipalPattern>, MalformedPolicy> {
    match value {
        Value::String(s) if s == "*" => Ok(vec![PrincipalPattern::Anyone]),
        Value::Object(members) => {
            let mut out = Vec::new();
            for (kind, ids) in members {
                for id in strings(ids)? {
                    out.push(match kind.as_str() {
                        "AWS" => parse_aws_principal(&id)?,
                        "Service" => PrincipalPattern::Service(id),
                        "Federated" | "CanonicalUser" => PrincipalPattern::Other(id),
                        _ => return Err(malformed(SYNTAX_ERRORS)),
                    });
                }
            }
            Ok(out)
        }
        _ => Err(malformed(SYNTAX_ERRORS)),
    }
}

fn parse_aws_principal(id: &str) -> Result<PrincipalPattern, MalformedPolicy> {
    if id == "*" {
        return Ok(PrincipalPattern::Anyone);
    }
    if strato_model::account::is_account_id(id) {
        return Ok(PrincipalPattern::Aws(format!("arn:aws:iam::{id}:root")));
    }
    let parts: Vec<&str> = id.splitn(6, ':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && parts[1] == "aws"
        && (parts[2] == "iam" || parts[2] == "sts")
        && parts[3].is_empty()
        && strato_model::account::is_account_id(parts[4])
        && !parts[5].is_empty();
    if valid {
        Ok(PrincipalPattern::Aws(id.to_string()))
    } else {
        Err(malformed(format!(
            "Invalid principal in policy: \"AWS\":\"{id}\""
        )))
    }
}

fn principal_matches(pattern: &PrincipalPattern, principal: &RequestPrincipal) -> bool {
    match (pattern, principal) {
        (PrincipalPattern::Anyone, _) => true,
        (PrincipalPattern::Service(s), RequestPrincipal::Service(p)) => s == p,
        (
            PrincipalPattern::Aws(pattern),
            RequestPrincipal::Aws {
                arn,
                account,
                role_arn,
            },
        ) => {
            pattern == arn
                || role_arn.as_deref() == Some(pattern.as_str())
                || pattern
                    .strip_prefix("arn:aws:iam::")
                    .and_then(|rest| rest.strip_suffix(":root"))
                    == Some(account.as_str())
        }
        _ => false,
    }
}

pub use strato_model::policy::wildcard;

/// Replaces policy variables (`${aws:username}`, `${*}`) with the
/// request's values; `None` when a variable has no value (the element then
/// matches nothing, as at AWS).
fn substitute<'a>(text: &'a str, context: &RequestContext) -> Option<std::borrow::Cow<'a, str>> {
    if !text.contains("${") {
        return Some(std::borrow::Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let name = &after[..end];
        match name {
            "*" | "?" | "$" => out.push_str(name),
            _ => {
                let (key, default) = match name.split_once(',') {
                    Some((k, d)) => (k.trim(), Some(d.trim().trim_matches('\''))),
                    None => (name, None),
                };
                match context
                    .get(&key.to_ascii_lowercase())
                    .and_then(|v| v.first())
                {
                    Some(value) => out.push_str(value),
                    None => out.push_str(default?),
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(std::borrow::Cow::Owned(out))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(std::cmp::Ordering, bool),
    Date(std::cmp::Ordering, bool),
    Bool,
    Ip,
    ArnLike,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOperator {
    Single,
    AnyValue,
    AllValues,
}

#[derive(Debug, Clone)]
struct Condition {
    operator: Operator,
    negated: bool,
    set: SetOperator,
    if_exists: bool,
    key: String,
    values: Vec<String>,
}

fn parse_conditions(value: &Value) -> Result<Vec<Condition>, MalformedPolicy> {
    let Value::Object(blocks) = value else {
        return Err(malformed(SYNTAX_ERRORS));
    };
    let mut out = Vec::new();
    for (name, keys) in blocks {
        let (set, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (SetOperator::AnyValue, r)
        } else if let Some(r) = name.strip_prefix("ForAllValues:") {
            (SetOperator::AllValues, r)
        } else {
            (SetOperator::Single, name.as_str())
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(base) if base != "Null" => (true, base),
            _ => (false, rest),
        };
        let (operator, negated) = parse_operator(base)
            .ok_or_else(|| malformed(format!("Invalid Condition type : {name}")))?;
        let Value::Object(keys) = keys else {
            return Err(malformed(SYNTAX_ERRORS));
        };
        for (key, values) in keys {
            let values = match values {
                Value::Bool(b) => vec![b.to_string()],
                Value::Number(n) => vec![n.to_string()],
                Value::Array(items) => items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.clone()),
                        Value::Bool(b) => Ok(b.to_string()),
                        Value::Number(n) => Ok(n.to_string()),
                        _ => Err(malformed(SYNTAX_ERRORS)),
                    })
                    .collect::<Result<_, _>>()?,
                other => strings(other)?,
            };
            if operator == Operator::Ip {
                for v in &values {
                    if parse_cidr(v).is_none() {
                        return Err(malformed(format!("Invalid IP address or CIDR: {v}")));
                    }
                }
            }
            out.push(Condition {
                operator,
                negated,
                set,
                if_exists,
                key: key.to_ascii_lowercase(),
                values,
            });
        }
    }
    Ok(out)
}

fn parse_operator(name: &str) -> Option<(Operator, bool)> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    Some(match name {
        "StringEquals" => (Operator::StringEquals, false),
        "StringNotEquals" => (Operator::StringEquals, true),
        "StringEqualsIgnoreCase" => (Operator::StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Operator::StringEqualsIgnoreCase, true),
        "StringLike" => (Operator::StringLike, false),
        "StringNotLike" => (Operator::StringLike, true),
        "NumericEquals" => (Operator::Numeric(Equal, false), false),
        "NumericNotEquals" => (Operator::Numeric(Equal, false), true),
        "NumericLessThan" => (Operator::Numeric(Less, false), false),
        "NumericLessThanEquals" => (Operator::Numeric(Less, true), false),
        "NumericGreaterThan" => (Operator::Numeric(Greater, false), false),
        "NumericGreaterThanEquals" => (Operator::Numeric(Greater, true), false),
        "DateEquals" => (Operator::Date(Equal, false), false),
        "DateNotEquals" => (Operator::Date(Equal, false), true),
        "DateLessThan" => (Operator::Date(Less, false), false),
        "DateLessThanEquals" => (Operator::Date(Less, true), false),
        "DateGreaterThan" => (Operator::Date(Greater, false), false),
        "DateGreaterThanEquals" => (Operator::Date(Greater, true), false),
        "Bool" => (Operator::Bool, false),
        "IpAddress" => (Operator::Ip, false),
        "NotIpAddress" => (Operator::Ip, true),
        "ArnEquals" | "ArnLike" => (Operator::ArnLike, false),
        "ArnNotEquals" | "ArnNotLike" => (Operator::ArnLike, true),
        "Null" => (Operator::Null, false),
        _ => return None,
    })
}

impl Condition {
    fn holds(&self, context: &RequestContext) -> bool {
        let present = context.get(&self.key).filter(|v| !v.is_empty());
        if self.operator == Operator::Null {
            let want_absent = self.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            return present.is_none() == want_absent;
        }
        let Some(actual) = present else {
            return match self.set {
                _ if self.if_exists => true,
                SetOperator::AllValues => true,
                SetOperator::AnyValue => false,
                SetOperator::Single => self.negated,
            };
        };
        let matches_any = |value: &str| {
            self.values
                .iter()
                .any(|wanted| match substitute(wanted, context) {
                    Some(wanted) => self.compare(value, &wanted),
                    None => false,
                })
        };
        match (self.set, self.negated) {
            (SetOperator::Single | SetOperator::AnyValue, false) => {
                actual.iter().any(|v| matches_any(v))
            }
            (SetOperator::Single, true) => !actual.iter().any(|v| matches_any(v)),
            (SetOperator::AnyValue, true) => actual.iter().any(|v| !matches_any(v)),
            (SetOperator::AllValues, false) => actual.iter().all(|v| matches_any(v)),
            (SetOperator::AllValues, true) => actual.iter().all(|v| !matches_any(v)),
        }
    }

    /// The positive form of the operator on one pair of values.
    fn compare(&self, actual: &str, wanted: &str) -> bool {
        match self.operator {
            Operator::StringEquals => actual == wanted,
            Operator::StringEqualsIgnoreCase => actual.eq_ignore_ascii_case(wanted),
            Operator::StringLike => wildcard(wanted, actual, false),
            Operator::ArnLike => arn_like(wanted, actual),
            Operator::Bool => actual.eq_ignore_ascii_case(wanted),
            Operator::Numeric(order, or_equal) => {
                match (actual.parse::<f64>(), wanted.parse::<f64>()) {
                    (Ok(a), Ok(w)) => ordered(a.partial_cmp(&w), order, or_equal),
                    _ => false,
                }
            }
            Operator::Date(order, or_equal) => match (parse_date(actual), parse_date(wanted)) {
                (Some(a), Some(w)) => ordered(Some(a.cmp(&w)), order, or_equal),
                _ => false,
            },
            Operator::Ip => match (actual.parse::<IpAddr>(), parse_cidr(wanted)) {
                (Ok(ip), Some((net, bits))) => in_network(ip, net, bits),
                _ => false,
            },
            Operator::Null => false,
        }
    }
}

fn ordered(actual: Option<std::cmp::Ordering>, wanted: std::cmp::Ordering, or_equal: bool) -> bool {
    match actual {
        Some(o) if o == wanted => true,
        Some(std::cmp::Ordering::Equal) => or_equal,
        _ => false,
    }
}

/// ARN matching segment by segment (the resource part may hold `:`).
fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(a.iter()).all(|(p, a)| wildcard(p, a, false))
}

/// Epoch milliseconds of an ISO 8601 date or epoch seconds.
fn parse_date(text: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis());
    }
    text.parse::<i64>().ok().map(|s| s.saturating_mul(1000))
}

fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = match text.split_once('/') {
        Some((ip, bits)) => (ip.parse::<IpAddr>().ok()?, bits.parse::<u8>().ok()?),
        None => {
            let ip = text.parse::<IpAddr>().ok()?;
            (ip, if ip.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Why a request was refused, for AWS's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    ExplicitIdentity,
    ExplicitResource,
    NoIdentityAllow,
    NoSessionAllow,
    NoResourceAllow,
}

/// The policies that bear on one request.
#[derive(Debug, Clone, Copy)]
pub struct PolicySet<'a> {
    /// The principal's identity policies (its own, its groups', its role's).
    pub identity: &'a [std::sync::Arc<PolicyDocument>],
    /// An assumed-role session's session policy, if it was given one.
    pub session: Option<&'a PolicyDocument>,
    /// The resource's own policy, if it has one.
    pub resource: Option<&'a PolicyDocument>,
    /// Whether the resource belongs to another account than the principal.
    pub cross_account: bool,
}

/// AWS's evaluation logic: explicit deny, then allow; a cross-account
/// request needs both sides to allow it.
pub fn decide(policies: &PolicySet<'_>, request: &Request<'_>) -> Result<(), Denial> {
    let mut identity = Verdict::default();
    for doc in policies.identity {
        let v = doc.evaluate(request);
        identity.allowed |= v.allowed;
        if v.denied {
            return Err(Denial::ExplicitIdentity);
        }
    }
    let resource = policies
        .resource
        .map(|doc| doc.evaluate(request))
        .unwrap_or_default();
    if resource.denied {
        return Err(Denial::ExplicitResource);
    }
    let session = policies.session.map(|doc| doc.evaluate(request));
    if session.is_some_and(|v| v.denied) {
        return Err(Denial::ExplicitIdentity);
    }
    if policies.cross_account {
        if !resource.allowed {
            return Err(Denial::NoResourceAllow);
        }
        if !identity.allowed {
            return Err(Denial::NoIdentityAllow);
        }
        return Ok(());
    }
    if resource.allowed {
        return Ok(());
    }
    if !identity.allowed {
        return Err(Denial::NoIdentityAllow);
    }
    if session.is_some_and(|v| !v.allowed) {
        return Err(Denial::NoSessionAllow);
    }
    Ok(())
}

impl Denial {
    /// AWS's sentence: "User: ARN is not authorized to perform: ACTION on
    /// resource: RESOURCE because ...".
    pub fn message(self, principal_arn: &str, action: &str, resource: &str) -> String {
        let head = format!(
            "User: {principal_arn} is not authorized to perform: {action} on resource: {resource}"
        );
        match self {
            Denial::ExplicitIdentity => {
                format!("{head} with an explicit deny in an identity-based policy")
            }
            Denial::ExplicitResource => {
                format!("{head} with an explicit deny in a resource-based policy")
            }
            Denial::NoIdentityAllow => {
                format!("{head} because no identity-based policy allows the {action} action")
            }
            Denial::NoSessionAllow => {
                format!("{head} because no session policy allows the {action} action")
            }
            Denial::NoResourceAllow => {
                format!("{head} because no resource-based policy allows the {action} action")
            }
        }
    }
}

#[cfg(test)]
mod tests;
