//! Authorizers of HTTP APIs: a Lambda authorizer (`REQUEST`, payload 1.0 or
//! 2.0, simple or IAM-policy answers, cached by identity for its TTL) and a
//! JWT authorizer ([`jwt`]).

pub mod jwt;

use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde_json::{Map, Value};
use strato_iam::policy::{PolicyDocument, PolicyKind, Request, RequestContext, RequestPrincipal};

/// What an authorizer decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Go on; `context` is what the integration sees in
    /// `requestContext.authorizer`.
    Allow { context: Value },
    /// 401 `{"message":"Unauthorized"}` (no identity, or a bad token).
    Unauthorized,
    /// 403 `{"message":"Forbidden"}`.
    Forbidden,
    /// 500 `{"message":"Internal Server Error"}` (the authorizer failed).
    Failed,
}

/// A Lambda authorizer's answer, read.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaVerdict {
    pub allowed: bool,
    pub principal_id: Option<String>,
    pub context: Map<String, Value>,
}

/// The strings of a JSON array (others skipped); anything else is none.
pub(crate) fn string_list(value: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(list)) = value else {
        return Vec::new();
    };
    list.iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// The IAM action that calling an API's method or route (or opening a
/// WebSocket connection) is.
pub(crate) const EXECUTE_API_INVOKE: &str = "execute-api:Invoke";

/// Whether the signer of an `AWS_IAM` request may `execute-api:Invoke`
/// `arn` (the method's, route's or `$connect`'s ARN), by IAM's one
/// evaluator: an account's root may call its own APIs, an IAM user or role
/// session as its policies say (when IAM is enforced).
pub(crate) fn may_invoke(
    iam: &strato_iam::Iam,
    access_key_id: &str,
    arn: &str,
) -> Result<(), strato_iam::AccessDenied> {
    iam.authorize(
        access_key_id,
        EXECUTE_API_INVOKE,
        arn,
        RequestContext::new(),
    )
}

/// Reads a Lambda authorizer's answer: `{"isAuthorized", "context"}` with
/// simple responses, otherwise `{"principalId", "policyDocument", "context"}`
/// whose statements must allow `execute-api:Invoke` on `route_arn` (a
/// matching `Deny` wins). `None` when the answer is malformed.
pub fn read_lambda_answer(payload: &[u8], simple: bool, route_arn: &str) -> Option<LambdaVerdict> {
    let answer: Value = serde_json::from_slice(payload).ok()?;
    let answer = answer.as_object()?;
    let context = match answer.get("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return None,
    };
    if simple {
        let allowed = answer.get("isAuthorized")?.as_bool()?;
        return Some(LambdaVerdict {
            allowed,
            principal_id: None,
            context,
        });
    }
    let principal_id = answer
        .get("principalId")
        .and_then(Value::as_str)
        .map(str::to_string);
    // The policy is decided by IAM's own evaluator, as an identity policy of
    // the caller the authorizer vouched for (AWS: Action/NotAction,
    // Resource/NotResource with wildcards, Condition, a matching Deny wins).
    let policy =
        PolicyDocument::from_json(answer.get("policyDocument")?, PolicyKind::Identity).ok()?;
    let verdict = policy.evaluate(&Request {
        action: EXECUTE_API_INVOKE,
        resource: route_arn,
        principal: &RequestPrincipal::Anonymous,
        context: &RequestContext::new(),
    });
    let allowed = verdict.allowed && !verdict.denied;
    Some(LambdaVerdict {
        allowed,
        principal_id,
        context,
    })
}

/// The authorizer of an HTTP or WebSocket API being invoked: its source ARN
/// is `arn:aws:execute-api:{region}:{account}:{api}/authorizers/{id}`.
pub struct AuthorizerRef<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub api_id: &'a str,
    pub authorizer_id: &'a str,
}

/// Invokes a Lambda authorizer as API Gateway does (its service principal,
/// the authorizer as source, 10 s at most): its answer, or why there is
/// none (for `$context.authorizer.error`).
pub async fn invoke_authorizer(
    invoker: &dyn crate::invoker::LambdaInvoker,
    authorizer: AuthorizerRef<'_>,
    function_arn: String,
    event: &Value,
) -> Result<bytes::Bytes, String> {
    let invocation = crate::invoker::GatewayInvocation {
        function_arn,
        principal: crate::invoker::InvokePrincipal::Service(
            crate::invoker::APIGATEWAY_PRINCIPAL.into(),
        ),
        action: crate::invoker::InvokeAction::InvokeFunction,
        source_arn: Some(format!(
            "arn:aws:execute-api:{}:{}:{}/authorizers/{}",
            authorizer.region, authorizer.account, authorizer.api_id, authorizer.authorizer_id
        )),
        source_account: Some(authorizer.account.to_string()),
        payload: bytes::Bytes::from(event.to_string()),
    };
    match tokio::time::timeout(Duration::from_secs(10), invoker.invoke(invocation)).await {
        Ok(Ok(outcome)) if outcome.function_error.is_none() => Ok(outcome.payload),
        Ok(Ok(_)) => Err("the authorizer function failed".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the authorizer timed out".into()),
    }
}

/// Lambda authorizer answers cached by (API, authorizer, identity values)
/// for the authorizer's `authorizerResultTtlInSeconds`.
#[derive(Default)]
pub struct DecisionCache {
    entries: DashMap<(String, String, String), (Instant, Decision)>,
}

impl DecisionCache {
    pub fn get(&self, api_id: &str, authorizer_id: &str, identity: &str) -> Option<Decision> {
        let key = (
            api_id.to_string(),
            authorizer_id.to_string(),
            identity.to_string(),
        );
        let hit = self.entries.get(&key).map(|e| e.value().clone());
        match hit {
            Some((expires, decision)) if Instant::now() < expires => Some(decision),
            Some(_) => {
                self.entries.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn put(
        &self,
        api_id: &str,
        authorizer_id: &str,
        identity: &str,
        ttl: Duration,
        decision: Decision,
    ) {
        if ttl.is_zero() {
            return;
        }
        // Bound the cache: drop expired entries when it grows.
        if self.entries.len() > 10_000 {
            let now = Instant::now();
            self.entries.retain(|_, (expires, _)| *expires > now);
        }
        self.entries.insert(
            (
                api_id.to_string(),
                authorizer_id.to_string(),
                identity.to_string(),
            ),
            (Instant::now() + ttl, decision),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:abc/$default/GET/items";

    #[test]
    fn simple_answers_read_is_authorized() {
        let v =
            read_lambda_answer(br#"{"isAuthorized":true,"context":{"u":"x"}}"#, true, ARN).unwrap();
        assert!(v.allowed);
        assert_eq!(v.context["u"], "x");
        assert!(read_lambda_answer(br#"{"nope":1}"#, true, ARN).is_none());
    }

    #[test]
    fn policy_answers_allow_matching_resources_and_deny_wins() {
        let allow = br#"{"principalId":"me","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"arn:aws:execute-api:us-east-1:000000000000:abc/*"}]}}"#;
        let v = read_lambda_answer(allow, false, ARN).unwrap();
        assert!(v.allowed);
        assert_eq!(v.principal_id.as_deref(), Some("me"));
        let deny = br#"{"principalId":"me","policyDocument":{"Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"},{"Action":"execute-api:Invoke","Effect":"Deny","Resource":["arn:aws:execute-api:*:*:*"]}]}}"#;
        assert!(!read_lambda_answer(deny, false, ARN).unwrap().allowed);
    }

    #[test]
    fn policy_answers_are_decided_by_iams_evaluator() {
        // NotResource and a condition are IAM's grammar, not a subset of it.
        let not_resource = br#"{"principalId":"me","policyDocument":{"Statement":[{"Action":"execute-api:*","Effect":"Allow","NotResource":"arn:aws:execute-api:us-east-1:000000000000:other/*"}]}}"#;
        assert!(
            read_lambda_answer(not_resource, false, ARN)
                .unwrap()
                .allowed
        );
        let conditioned = br#"{"principalId":"me","policyDocument":{"Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}}"#;
        assert!(!read_lambda_answer(conditioned, false, ARN).unwrap().allowed);
        // A document IAM would refuse is a malformed answer (a 500, as AWS).
        let malformed = br#"{"principalId":"me","policyDocument":{"Statement":[{"Effect":"Allow","Resource":"*"}]}}"#;
        assert!(read_lambda_answer(malformed, false, ARN).is_none());
    }
}
