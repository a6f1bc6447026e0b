//! JWT authorizers: the token (from the identity source, `Bearer ` removed)
//! must be an RS256-signed JWT whose signature verifies with a key of the
//! issuer's JWKS (found through `{issuer}/.well-known/openid-configuration`),
//! whose `iss` is the configured issuer, whose `aud` (or `client_id`) is one
//! of the configured audiences, and which is within `nbf`/`exp`. Scopes the
//! route requires must appear in `scope`/`scp`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use dashmap::DashMap;
use serde_json::Value;

/// How long a fetched JWKS is used before it is fetched again (AWS keeps
/// them two hours; an unknown `kid` refetches sooner).
const JWKS_TTL: Duration = Duration::from_secs(2 * 60 * 60);
/// At most one refetch for an unknown `kid` this often.
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a valid JWT: {0}")]
    Malformed(String),
    #[error("the token's signing algorithm {0} is not supported (RS256 is)")]
    Algorithm(String),
    #[error("the JWKS of issuer {issuer} could not be fetched: {reason}")]
    Jwks { issuer: String, reason: String },
    #[error("no key with kid {0} in the issuer's JWKS")]
    UnknownKey(String),
    #[error("signature verification failed")]
    Signature,
    #[error("the token's issuer {0} is not the authorizer's")]
    Issuer(String),
    #[error("the token's audience is not allowed")]
    Audience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
}

/// An RSA public key of a JWKS.
#[derive(Debug, Clone)]
struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

struct CachedJwks {
    keys: Vec<(Option<String>, RsaKey)>,
    fetched: Instant,
}

/// Fetches and caches issuers' signing keys.
pub struct JwksCache {
    client: reqwest::Client,
    by_issuer: DashMap<String, Arc<CachedJwks>>,
}

fn b64url(text: &str) -> Result<Vec<u8>, JwtError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| JwtError::Malformed(e.to_string()))
}

impl JwksCache {
    pub fn new(client: reqwest::Client) -> JwksCache {
        JwksCache {
            client,
            by_issuer: DashMap::new(),
        }
    }

    async fn fetch_json(&self, url: &str, issuer: &str) -> Result<Value, JwtError> {
        let fail = |reason: String| JwtError::Jwks {
            issuer: issuer.to_string(),
            reason,
        };
        let response = self
            .client
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("{url} answered {}", response.status())));
        }
        let bytes = response.bytes().await.map_err(|e| fail(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| fail(e.to_string()))
    }

    async fn fetch(&self, issuer: &str) -> Result<Arc<CachedJwks>, JwtError> {
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let config = self.fetch_json(&discovery, issuer).await?;
        let jwks_uri = config
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| JwtError::Jwks {
                issuer: issuer.to_string(),
                reason: "the OpenID configuration has no jwks_uri".into(),
            })?
            .to_string();
        let jwks = self.fetch_json(&jwks_uri, issuer).await?;
        let mut keys = Vec::new();
        for key in jwks
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if key.get("kty").and_then(Value::as_str) != Some("RSA") {
                continue;
            }
            let (Some(n), Some(e)) = (
                key.get("n").and_then(Value::as_str),
                key.get("e").and_then(Value::as_str),
            ) else {
                continue;
            };
            let (Ok(n), Ok(e)) = (b64url(n), b64url(e)) else {
                continue;
            };
            let kid = key.get("kid").and_then(Value::as_str).map(str::to_string);
            keys.push((kid, RsaKey { n, e }));
        }
        let cached = Arc::new(CachedJwks {
            keys,
            fetched: Instant::now(),
        });
        self.by_issuer.insert(issuer.to_string(), cached.clone());
        Ok(cached)
    }

    async fn key(&self, issuer: &str, kid: Option<&str>) -> Result<RsaKey, JwtError> {
        let find = |jwks: &CachedJwks| {
            jwks.keys
                .iter()
                .find(|(k, _)| kid.is_none() || k.as_deref() == kid)
                .map(|(_, key)| key.clone())
        };
        let cached = self.by_issuer.get(issuer).map(|c| c.clone());
        if let Some(jwks) = &cached {
            if jwks.fetched.elapsed() < JWKS_TTL {
                if let Some(key) = find(jwks) {
                    return Ok(key);
                }
                if jwks.fetched.elapsed() < REFETCH_INTERVAL {
                    return Err(JwtError::UnknownKey(kid.unwrap_or("").to_string()));
                }
            }
        }
        let fresh = self.fetch(issuer).await?;
        find(&fresh).ok_or_else(|| JwtError::UnknownKey(kid.unwrap_or("").to_string()))
    }
}

/// A verified token's claims and scopes.
#[derive(Debug, Clone)]
pub struct VerifiedJwt {
    pub claims: serde_json::Map<String, Value>,
    pub scopes: Vec<String>,
}

impl VerifiedJwt {
    /// The claims as API Gateway passes them on: every value a string.
    pub fn claims_as_strings(&self) -> serde_json::Map<String, Value> {
        self.claims
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Array(items) => format!(
                        "[{}]",
                        items
                            .iter()
                            .map(|i| i.as_str().map(str::to_string).unwrap_or(i.to_string()))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    other => other.to_string(),
                };
                (k.clone(), Value::String(text))
            })
            .collect()
    }
}

/// Verifies `token` for an authorizer with `issuer` and `audiences`.
pub async fn verify(
    cache: &JwksCache,
    token: &str,
    issuer: &str,
    audiences: &[String],
) -> Result<VerifiedJwt, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("a JWT has three parts".into()));
    };
    let header_json: Value =
        serde_json::from_slice(&b64url(header)?).map_err(|e| JwtError::Malformed(e.to_string()))?;
    let alg = header_json.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg != "RS256" {
        return Err(JwtError::Algorithm(alg.to_string()));
    }
    let claims: Value = serde_json::from_slice(&b64url(payload)?)
        .map_err(|e| JwtError::Malformed(e.to_string()))?;
    let Value::Object(claims) = claims else {
        return Err(JwtError::Malformed("the claims are not an object".into()));
    };
    let token_issuer = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    if token_issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(JwtError::Issuer(token_issuer.to_string()));
    }
    let kid = header_json.get("kid").and_then(Value::as_str);
    let key = cache.key(issuer, kid).await?;
    let signed = &token[..header.len() + 1 + payload.len()];
    let signature = b64url(signature)?;
    ring::signature::RsaPublicKeyComponents {
        n: &key.n,
        e: &key.e,
    }
    .verify(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        signed.as_bytes(),
        &signature,
    )
    .map_err(|_| JwtError::Signature)?;
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => audiences.contains(aud),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| audiences.iter().any(|x| x == a)),
        _ => claims
            .get("client_id")
            .and_then(Value::as_str)
            .is_some_and(|c| audiences.iter().any(|x| x == c)),
    };
    if !audience_ok {
        return Err(JwtError::Audience);
    }
    let now = chrono::Utc::now().timestamp();
    if claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_some_and(|exp| exp <= now)
    {
        return Err(JwtError::Expired);
    }
    if claims
        .get("nbf")
        .and_then(Value::as_i64)
        .is_some_and(|nbf| nbf > now)
    {
        return Err(JwtError::NotYetValid);
    }
    let scopes = match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        other => super::string_list(other),
    };
    Ok(VerifiedJwt { claims, scopes })
}
