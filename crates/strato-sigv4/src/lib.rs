//! Server-side verification of AWS Signature Version 4.
//!
//! Strato accepts requests from the unmodified AWS CLI, boto3 and AWS SDKs,
//! which all sign with SigV4, so the server must rebuild the canonical request
//! exactly as those signers do and reject everything else with the error AWS
//! would return (same code, status and text), because SDKs branch on those.
//!
//! The server calls [`credential_scope`] first, to learn which service a
//! request is for before reading its body, then [`verify`] (or
//! [`verify_payload`] when it hashed a streamed body itself).

mod auth;
mod canonical;
mod error;

use std::collections::HashMap;
use std::hash::BuildHasher;

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub use auth::{AuthLocation, CredentialScope};
pub use canonical::PathStyle;
pub use error::SigV4Error;

use auth::{AuthParams, AMZ_DATE_FORMAT, X_AMZ_CONTENT_SHA256, X_AMZ_SIGNATURE};

/// How far a header-signed request's timestamp may be from the server's
/// clock, either way. AWS allows five minutes; the error texts say so.
pub const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

/// Payload hash a client puts in `x-amz-content-sha256` when the body is not
/// covered by the signature.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Prefix of the `x-amz-content-sha256` values announcing an `aws-chunked`
/// body (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, `STREAMING-UNSIGNED-PAYLOAD-TRAILER`, ...).
/// The seed request is signed over that literal string instead of a body hash.
pub const STREAMING_PAYLOAD_PREFIX: &str = "STREAMING-";

/// What a request carries, borrowed from the server's request.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The request method.
    pub method: &'a http::Method,
    /// Path and raw query exactly as received: the canonical request is built
    /// from the bytes the client sent, never from a decoded form.
    pub uri: &'a http::Uri,
    /// The request headers.
    pub headers: &'a http::HeaderMap,
}

/// A secret access key and the account that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The secret the signing key is derived from.
    pub secret_access_key: String,
    /// Account the access key belongs to.
    pub account_id: String,
}

/// Where the verifier finds secrets: the server implements this over its
/// account store. It is called once per request, so it must be cheap.
pub trait CredentialLookup {
    /// The credential for an access key id, or `None` if the key is unknown.
    fn lookup(&self, access_key_id: &str) -> Option<Credential>;
}

impl<S: BuildHasher> CredentialLookup for HashMap<String, Credential, S> {
    fn lookup(&self, access_key_id: &str) -> Option<Credential> {
        self.get(access_key_id).cloned()
    }
}

/// Who signed an authenticated request, and for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    /// Access key id the request was signed with.
    pub access_key_id: String,
    /// Account owning that key.
    pub account_id: String,
    /// Region of the credential scope.
    pub region: String,
    /// Service of the credential scope.
    pub service: String,
    /// The request's timestamp (`X-Amz-Date`, or `Date`).
    pub signed_at: DateTime<Utc>,
    /// `X-Amz-Security-Token` of session credentials, when present.
    pub session_token: Option<String>,
    /// Whether the signature came in a header or a presigned URL.
    pub location: AuthLocation,
    /// The payload hash the signature covers. `UNSIGNED-PAYLOAD` or a
    /// `STREAMING-...` value tells the server the body itself was not
    /// authenticated by this signature.
    pub payload_hash: String,
}

/// The request body as the verifier needs it.
#[derive(Debug, Clone, Copy)]
pub enum PayloadHash<'a> {
    /// The whole body; the verifier hashes it unless `x-amz-content-sha256`
    /// says `UNSIGNED-PAYLOAD` or `STREAMING-...`, in which case that string
    /// is what was signed, as at AWS.
    Body(&'a [u8]),
    /// Lowercase hex SHA-256 of the body, computed by a server that streamed
    /// it instead of buffering it. Same `x-amz-content-sha256` rule.
    Precomputed(&'a str),
}

/// Peek at the credential scope (access key, date, region, service) without
/// verifying anything, so the server can dispatch on the service before it
/// has read the body. `None` if the request has no well-formed `Credential`.
pub fn credential_scope(parts: &RequestParts) -> Option<CredentialScope> {
    let query = canonical::parse_query(parts.uri.query().unwrap_or(""));
    let credential = auth::peek_credential(parts.headers, &query)?;
    CredentialScope::parse(&credential)
}

/// Verify a request whose whole body is in memory.
pub fn verify<C>(
    parts: &RequestParts,
    body: &[u8],
    now: DateTime<Utc>,
    creds: &C,
) -> Result<VerifiedRequest, SigV4Error>
where
    C: CredentialLookup + ?Sized,
{
    verify_payload(parts, PayloadHash::Body(body), now, creds)
}

/// Verify a request, checking in AWS's order: presence of authentication,
/// well-formedness, `host` signed, the clock, the credential scope, the access
/// key, and last the signature itself (compared in constant time).
pub fn verify_payload<C>(
    parts: &RequestParts,
    payload: PayloadHash,
    now: DateTime<Utc>,
    creds: &C,
) -> Result<VerifiedRequest, SigV4Error>
where
    C: CredentialLookup + ?Sized,
{
    let query = canonical::parse_query(parts.uri.query().unwrap_or(""));
    let auth = auth::extract(parts.headers, &query)?;
    let signed_at = auth::parse_date(&auth.date)?;

    if !auth
        .signed_headers
        .iter()
        .any(|name| name == "host" || name == ":authority")
    {
        return Err(SigV4Error::scope(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    check_time(&auth, signed_at, now)?;

    let scope = CredentialScope::parse(&auth.credential).ok_or_else(|| {
        SigV4Error::incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
            auth.credential
        ))
    })?;
    check_scope(&scope, signed_at)?;

    let credential =
        creds
            .lookup(&scope.access_key_id)
            .ok_or_else(|| SigV4Error::UnrecognizedClient {
                access_key_id: scope.access_key_id.clone(),
            })?;

    let style = PathStyle::for_service(&scope.service);
    let payload_hash = payload_hash(&auth, parts.headers, &query, style, payload);
    let skip = match auth.location {
        AuthLocation::Query => Some(X_AMZ_SIGNATURE.as_bytes()),
        AuthLocation::Header => None,
    };

    let mut request = Vec::with_capacity(512);
    request.extend_from_slice(parts.method.as_str().as_bytes());
    request.push(b'\n');
    request.extend_from_slice(canonical::canonical_uri(parts.uri.path(), style).as_bytes());
    request.push(b'\n');
    request.extend_from_slice(canonical::canonical_query(&query, skip).as_bytes());
    request.push(b'\n');
    request.extend_from_slice(&canonical::canonical_headers(
        &auth.signed_headers,
        parts.headers,
        parts.uri,
    ));
    request.push(b'\n');
    request.extend_from_slice(auth.signed_headers.join(";").as_bytes());
    request.push(b'\n');
    request.extend_from_slice(payload_hash.as_bytes());

    let string_to_sign = format!(
        "{}\n{}\n{}\n{}",
        auth::ALGORITHM,
        signed_at.format(AMZ_DATE_FORMAT),
        scope.string_to_sign_scope(),
        hex::encode(Sha256::digest(&request)),
    );
    let key = cached_signing_mac(&credential.secret_access_key, &scope);
    if !signature_matches_mac(key, string_to_sign.as_bytes(), &auth.signature) {
        return Err(SigV4Error::SignatureDoesNotMatch);
    }

    Ok(VerifiedRequest {
        access_key_id: scope.access_key_id,
        account_id: credential.account_id,
        region: scope.region,
        service: scope.service,
        signed_at,
        session_token: auth.security_token,
        location: auth.location,
        payload_hash,
    })
}

impl SigV4Error {
    /// AWS's refusal of a request whose credential scope names another
    /// service than the one the endpoint serves.
    pub fn wrong_service(expected: &str) -> Self {
        Self::scope(format!(
            "Credential should be scoped to correct service: '{expected}'."
        ))
    }

    /// AWS's refusal of a request whose credential scope names a region the
    /// endpoint does not serve.
    pub fn wrong_region(got: &str) -> Self {
        Self::scope(format!(
            "Credential should be scoped to a valid region, not '{got}'."
        ))
    }
}

/// Header-signed requests must be within [`MAX_CLOCK_SKEW`] of `now` both
/// ways. Presigned URLs may not be from the future either, and expire at
/// `X-Amz-Date + X-Amz-Expires` (or after the skew window when no
/// `X-Amz-Expires` is given).
fn check_time(
    auth: &AuthParams,
    signed_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), SigV4Error> {
    let fmt = |t: DateTime<Utc>| t.format(AMZ_DATE_FORMAT).to_string();
    let latest = now + MAX_CLOCK_SKEW;
    if signed_at > latest {
        return Err(SigV4Error::SignatureNotYetCurrent {
            signed_at: fmt(signed_at),
            latest: fmt(latest),
            now: fmt(now),
        });
    }
    let expires = match (auth.location, &auth.expires) {
        (AuthLocation::Query, Some(raw)) => Some(auth::parse_expires(raw)?),
        _ => None,
    };
    match expires {
        Some(lifetime) => {
            // Checked: no date from the wire may make the server panic.
            let valid_until = signed_at.checked_add_signed(lifetime);
            if valid_until.is_none_or(|end| now > end) {
                return Err(SigV4Error::RequestExpired);
            }
        }
        None => {
            let earliest = now - MAX_CLOCK_SKEW;
            if signed_at < earliest {
                return Err(SigV4Error::SignatureExpired {
                    signed_at: fmt(signed_at),
                    earliest: fmt(earliest),
                    now: fmt(now),
                });
            }
        }
    }
    Ok(())
}

/// The scope must end in `aws4_request` and carry the request's own date;
/// AWS lists every violation in one message.
fn check_scope(scope: &CredentialScope, signed_at: DateTime<Utc>) -> Result<(), SigV4Error> {
    let mut problems = Vec::new();
    if scope.terminator != "aws4_request" {
        problems.push(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            scope.terminator
        ));
    }
    let expected_date = signed_at.format("%Y%m%d").to_string();
    if scope.date != expected_date {
        problems.push(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            scope.date,
            expected_date,
            signed_at.format(AMZ_DATE_FORMAT)
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SigV4Error::scope(problems.join(" ")))
    }
}

/// The payload hash the client signed over. `x-amz-content-sha256` (or, on a
/// presigned URL, `X-Amz-Content-Sha256`) of `UNSIGNED-PAYLOAD` or
/// `STREAMING-...` is used literally; a presigned S3 URL without it is
/// `UNSIGNED-PAYLOAD` (the S3 presigners' fixed value); otherwise the body's
/// real hash is used, so a body that differs from a declared hash fails.
fn payload_hash(
    auth: &AuthParams,
    headers: &http::HeaderMap,
    query: &[canonical::QueryParam],
    style: PathStyle,
    payload: PayloadHash,
) -> String {
    let declared =
        auth::header_str(headers, "x-amz-content-sha256").or_else(|| match auth.location {
            AuthLocation::Query => auth::first_param(query, X_AMZ_CONTENT_SHA256),
            AuthLocation::Header => None,
        });
    if let Some(declared) = declared {
        if declared == UNSIGNED_PAYLOAD || declared.starts_with(STREAMING_PAYLOAD_PREFIX) {
            return declared;
        }
    } else if auth.location == AuthLocation::Query && style == PathStyle::S3 {
        return UNSIGNED_PAYLOAD.to_owned();
    }
    match payload {
        PayloadHash::Body(body) => hex::encode(Sha256::digest(body)),
        PayloadHash::Precomputed(hash) => hash.to_owned(),
    }
}

type HmacSha256 = Hmac<Sha256>;

fn hmac_sha256(key: &[u8], data: &[u8]) -> HmacSha256 {
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC hashes over-long keys and pads short ones: every length is valid.
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(data);
    mac
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
fn signing_key(secret: &str, scope: &CredentialScope) -> Vec<u8> {
    let k_secret = format!("AWS4{secret}");
    let k_date = hmac_sha256(k_secret.as_bytes(), scope.date.as_bytes()).finalize();
    let k_region = hmac_sha256(&k_date.into_bytes(), scope.region.as_bytes()).finalize();
    let k_service = hmac_sha256(&k_region.into_bytes(), scope.service.as_bytes()).finalize();
    hmac_sha256(&k_service.into_bytes(), scope.terminator.as_bytes())
        .finalize()
        .into_bytes()
        .to_vec()
}

/// How many derived signing keys each thread keeps: one per (secret, date,
/// region, service) a client signs with; a server sees a handful.
const SIGNING_KEY_CACHE: usize = 16;

/// A derived signing key, as an HMAC already keyed with it.
struct CachedKey {
    secret: String,
    date: String,
    region: String,
    service: String,
    terminator: String,
    mac: HmacSha256,
}

thread_local! {
    /// Per thread, so verifying takes no lock: the derivation (four HMACs)
    /// and the keying of the final HMAC happen once per key and day instead
    /// of on every request.
    static SIGNING_KEYS: std::cell::RefCell<(Vec<CachedKey>, usize)> =
        const { std::cell::RefCell::new((Vec::new(), 0)) };
}

/// The HMAC keyed with the signing key of `secret` for `scope`, from this
/// thread's cache (derived and cached on a miss; the oldest entry goes when
/// the cache is full).
fn cached_signing_mac(secret: &str, scope: &CredentialScope) -> HmacSha256 {
    SIGNING_KEYS.with(|cell| {
        let (keys, next) = &mut *cell.borrow_mut();
        let hit = keys.iter().find(|k| {
            k.date == scope.date
                && k.region == scope.region
                && k.service == scope.service
                && k.terminator == scope.terminator
                && k.secret == secret
        });
        if let Some(k) = hit {
            return k.mac.clone();
        }
        let mac = keyed_mac(&signing_key(secret, scope));
        let entry = CachedKey {
            secret: secret.to_string(),
            date: scope.date.clone(),
            region: scope.region.clone(),
            service: scope.service.clone(),
            terminator: scope.terminator.clone(),
            mac: mac.clone(),
        };
        if keys.len() < SIGNING_KEY_CACHE {
            keys.push(entry);
        } else if let Some(slot) = keys.get_mut(*next % SIGNING_KEY_CACHE) {
            *slot = entry;
            *next = next.wrapping_add(1);
        }
        mac
    })
}

fn keyed_mac(key: &[u8]) -> HmacSha256 {
    hmac_sha256(key, &[])
}

/// Constant-time comparison (via `Mac::verify_slice`) of the client's
/// signature with the one computed here. Signers emit lowercase hex; any other
/// spelling is not what AWS would accept either.
#[cfg(test)]
fn signature_matches(key: &[u8], string_to_sign: &[u8], provided: &str) -> bool {
    signature_matches_mac(keyed_mac(key), string_to_sign, provided)
}

/// [`signature_matches`] with an HMAC already keyed with the signing key.
fn signature_matches_mac(mut mac: HmacSha256, string_to_sign: &[u8], provided: &str) -> bool {
    let well_formed = provided.len() == 64
        && provided
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return false;
    }
    match hex::decode(provided) {
        Ok(bytes) => {
            mac.update(string_to_sign);
            mac.verify_slice(&bytes).is_ok()
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_signing_key_and_signature() {
        // AWS's documented IAM ListUsers example: its derived signing key and
        // final signature for the published string to sign.
        let scope =
            CredentialScope::parse("AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request").unwrap();
        let key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &scope);
        assert_eq!(
            hex::encode(&key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        let string_to_sign = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
        assert!(signature_matches(
            &key,
            string_to_sign.as_bytes(),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        ));
        assert!(!signature_matches(
            &key,
            string_to_sign.as_bytes(),
            "5D672D79C15B13162D9279B0855CFBA6789A8EDB4C82C400E06B5924A6F2B5D7"
        ));
        assert!(!signature_matches(&key, string_to_sign.as_bytes(), "5d67"));
    }

    #[test]
    fn cached_keys_are_per_secret_and_scope() {
        let scope =
            CredentialScope::parse("AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request").unwrap();
        let other_day =
            CredentialScope::parse("AKIDEXAMPLE/20150831/us-east-1/iam/aws4_request").unwrap();
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let string_to_sign = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
        let good = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        // Twice: derived, then from the cache; other secrets and days never
        // share an entry, even once the cache has turned over.
        for _ in 0..2 {
            let mac = cached_signing_mac(secret, &scope);
            assert!(signature_matches_mac(mac, string_to_sign.as_bytes(), good));
            let mac = cached_signing_mac("another secret", &scope);
            assert!(!signature_matches_mac(mac, string_to_sign.as_bytes(), good));
            let mac = cached_signing_mac(secret, &other_day);
            assert!(!signature_matches_mac(mac, string_to_sign.as_bytes(), good));
        }
        for i in 0..2 * SIGNING_KEY_CACHE {
            let _ = cached_signing_mac(&format!("secret {i}"), &scope);
        }
        let mac = cached_signing_mac(secret, &scope);
        assert!(signature_matches_mac(mac, string_to_sign.as_bytes(), good));
    }
}
