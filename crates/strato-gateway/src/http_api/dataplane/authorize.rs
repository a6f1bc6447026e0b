//! Authorization: `AWS_IAM` (SigV4), JWT and Lambda (REQUEST) authorizers,
//! with the identity sources they read and their cached decisions.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use super::integrations::proxy_event;
use super::Exchange;
use crate::authorizer::{
    invoke_authorizer, jwt, may_invoke, read_lambda_answer, AuthorizerRef, Decision,
};
use crate::http_api::live::CompiledRoute;
use crate::http_api::model::{Authorizer, AuthorizerType, RouteAuthorization};
use crate::http_api::HttpApiService;
use crate::invoker::function_arn_of_integration_uri;
use crate::proxy::EventBody;

/// The kinds of identity source an authorizer may name.
pub fn identity_value_kind(source: &str) -> Option<&'static str> {
    if source.starts_with("$request.header.") {
        Some("header")
    } else if source.starts_with("$request.querystring.") {
        Some("querystring")
    } else if source.starts_with("$context.") {
        Some("context")
    } else if source.starts_with("$stageVariables.") {
        Some("stageVariables")
    } else {
        None
    }
}

/// The identity values an authorizer names, in order; `None` if any is
/// missing (AWS answers 401 without calling the authorizer).
fn identity_values(
    exchange: &Exchange<'_>,
    authorizer: &Authorizer,
    path_parameters: &BTreeMap<String, String>,
) -> Option<Vec<String>> {
    let sources: Vec<String> = if authorizer.identity_source.is_empty() {
        if authorizer.authorizer_type == AuthorizerType::Jwt {
            vec!["$request.header.Authorization".into()]
        } else {
            Vec::new()
        }
    } else {
        authorizer.identity_source.clone()
    };
    sources
        .iter()
        .map(|s| {
            exchange
                .lookup(s, path_parameters)
                .filter(|v| !v.is_empty())
        })
        .collect()
}

pub(super) async fn authorize(
    svc: &HttpApiService,
    exchange: &mut Exchange<'_>,
    route: &CompiledRoute,
    path_parameters: &BTreeMap<String, String>,
) -> Decision {
    let kind = route.route.authorization_type;
    match kind {
        RouteAuthorization::AwsIam => {
            let arn = exchange.route_arn(route);
            return iam_authorize(svc, exchange, &arn);
        }
        RouteAuthorization::None => {
            return Decision::Allow {
                context: Value::Null,
            }
        }
        RouteAuthorization::Custom | RouteAuthorization::Jwt => {}
    }
    let Some(authorizer) = route
        .route
        .authorizer_id
        .as_ref()
        .and_then(|id| exchange.stage.authorizers.get(id))
    else {
        return Decision::Failed;
    };
    let Some(identity) = identity_values(exchange, authorizer, path_parameters) else {
        return Decision::Unauthorized;
    };
    if kind == RouteAuthorization::Jwt {
        return jwt_authorize(svc, exchange, route, authorizer, &identity).await;
    }
    let cache_key = identity.join("\u{1f}");
    let ttl = Duration::from_secs(
        // A negative TTL caches nothing, as 0 does.
        u64::try_from(authorizer.authorizer_result_ttl_in_seconds.unwrap_or(0)).unwrap_or(0),
    );
    if !ttl.is_zero() && !identity.is_empty() {
        if let Some(decision) =
            svc.decisions
                .get(&exchange.api.api_id, &authorizer.authorizer_id, &cache_key)
        {
            return decision;
        }
    }
    let decision =
        lambda_authorize(svc, exchange, route, authorizer, &identity, path_parameters).await;
    if !ttl.is_zero() && !identity.is_empty() && decision != Decision::Failed {
        svc.decisions.put(
            &exchange.api.api_id,
            &authorizer.authorizer_id,
            &cache_key,
            ttl,
            decision.clone(),
        );
    }
    decision
}

/// `AWS_IAM` routes: the request must be SigV4-signed for `execute-api` in
/// the API's region by a key of the API's account (Strato's keys act as
/// their account's administrator); the caller's identity reaches the
/// integration as `requestContext.authorizer.iam`.
/// SigV4 for `execute-api` in the API's account and region, then the
/// signer's permission to invoke `route_arn`.
fn iam_authorize(svc: &HttpApiService, exchange: &mut Exchange<'_>, route_arn: &str) -> Decision {
    let uri: http::Uri = match exchange.original_uri.parse() {
        Ok(uri) => uri,
        Err(_) => return Decision::Forbidden,
    };
    let parts = strato_sigv4::RequestParts {
        method: &exchange.method,
        uri: &uri,
        headers: &exchange.headers,
    };
    if strato_sigv4::credential_scope(&parts).is_none() {
        exchange
            .log
            .set("error.message", "Missing Authentication Token");
        return Decision::Forbidden;
    }
    match strato_sigv4::verify(&parts, &exchange.body, Utc::now(), &*svc.credentials) {
        Ok(v)
            if v.service == "execute-api"
                && v.region == exchange.api.region
                && v.account_id == exchange.api.account =>
        {
            exchange.log.set("identity.accountId", v.account_id.clone());
            if let Err(denied) = may_invoke(&svc.iam, &v.access_key_id, route_arn) {
                exchange.log.set("error.message", denied.message);
                return Decision::Forbidden;
            }
            Decision::Allow {
                context: json!({ "iam": {
                    "accessKey": v.access_key_id,
                    "accountId": v.account_id,
                    "callerId": v.account_id,
                    "cognitoIdentity": null,
                    "principalOrgId": null,
                    "userArn": format!("arn:aws:iam::{}:root", v.account_id),
                    "userId": v.account_id,
                }}),
            }
        }
        Ok(_) => Decision::Forbidden,
        Err(e) => {
            exchange.log.set("error.message", e.message());
            Decision::Forbidden
        }
    }
}

async fn jwt_authorize(
    svc: &HttpApiService,
    exchange: &mut Exchange<'_>,
    route: &CompiledRoute,
    authorizer: &Authorizer,
    identity: &[String],
) -> Decision {
    let Some(config) = &authorizer.jwt_configuration else {
        return Decision::Failed;
    };
    let Some(issuer) = &config.issuer else {
        return Decision::Failed;
    };
    let raw = identity.first().map(String::as_str).unwrap_or("");
    let token = raw
        .strip_prefix("Bearer ")
        .or_else(|| raw.strip_prefix("bearer "))
        .unwrap_or(raw)
        .trim();
    match jwt::verify(&svc.jwks, token, issuer, &config.audience).await {
        Ok(verified) => {
            let required = &route.route.authorization_scopes;
            if !required.is_empty() && !required.iter().any(|s| verified.scopes.contains(s)) {
                exchange
                    .log
                    .set("authorizer.error", "the token lacks a required scope");
                return Decision::Forbidden;
            }
            if let Some(sub) = verified.claims.get("sub").and_then(Value::as_str) {
                exchange.log.set("authorizer.principalId", sub.to_string());
            }
            let scopes = if verified.scopes.is_empty() {
                Value::Null
            } else {
                json!(verified.scopes)
            };
            Decision::Allow {
                context: json!({
                    "claims": verified.claims_as_strings(),
                    "scopes": scopes,
                }),
            }
        }
        Err(e) => {
            exchange.log.set("authorizer.error", e.to_string());
            Decision::Unauthorized
        }
    }
}

async fn lambda_authorize(
    svc: &HttpApiService,
    exchange: &mut Exchange<'_>,
    route: &CompiledRoute,
    authorizer: &Authorizer,
    identity: &[String],
    path_parameters: &BTreeMap<String, String>,
) -> Decision {
    let Some(function_arn) = authorizer
        .authorizer_uri
        .as_deref()
        .and_then(function_arn_of_integration_uri)
    else {
        return Decision::Failed;
    };
    let route_arn = exchange.route_arn(route);
    let no_body = EventBody::new(b"", false);
    let format = authorizer.authorizer_payload_format_version.as_deref();
    let mut event = proxy_event(exchange, route, path_parameters, &no_body, None, format);
    if let Value::Object(map) = &mut event {
        map.insert("type".into(), "REQUEST".into());
        if format == Some("1.0") {
            map.insert("methodArn".into(), route_arn.clone().into());
            map.insert("identitySource".into(), identity.join(",").into());
        } else {
            map.insert("routeArn".into(), route_arn.clone().into());
            map.insert("identitySource".into(), json!(identity));
        }
        map.remove("body");
        map.remove("isBase64Encoded");
    }
    let source = AuthorizerRef {
        region: &exchange.api.region,
        account: &exchange.api.account,
        api_id: &exchange.api.api_id,
        authorizer_id: &authorizer.authorizer_id,
    };
    let payload = match invoke_authorizer(&*svc.invoker, source, function_arn, &event).await {
        Ok(payload) => payload,
        Err(e) => {
            exchange.log.set("authorizer.error", e);
            return Decision::Failed;
        }
    };
    let simple = authorizer.enable_simple_responses == Some(true);
    let Some(verdict) = read_lambda_answer(&payload, simple, &route_arn) else {
        exchange
            .log
            .set("authorizer.error", "the authorizer's answer is malformed");
        return Decision::Failed;
    };
    if !verdict.allowed {
        return Decision::Forbidden;
    }
    if let Some(p) = &verdict.principal_id {
        exchange.log.set("authorizer.principalId", p.clone());
    }
    let context = if authorizer.authorizer_payload_format_version.as_deref() == Some("1.0") {
        // v1 events carry the context flat, with the principal.
        let mut flat = verdict.context.clone();
        if let Some(p) = verdict.principal_id {
            flat.insert("principalId".into(), p.into());
        }
        Value::Object(flat)
    } else {
        json!({ "lambda": verdict.context })
    };
    Decision::Allow { context }
}
