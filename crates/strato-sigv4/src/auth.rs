//! Extraction of the signature parameters from either the `Authorization`
//! header or presigned-URL query parameters, failing with AWS's texts for
//! each malformation.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use http::HeaderMap;

use crate::canonical::QueryParam;
use crate::SigV4Error;

pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub(crate) const X_AMZ_SIGNATURE: &str = "X-Amz-Signature";
const X_AMZ_ALGORITHM: &str = "X-Amz-Algorithm";
const X_AMZ_CREDENTIAL: &str = "X-Amz-Credential";
const X_AMZ_DATE: &str = "X-Amz-Date";
const X_AMZ_SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
const X_AMZ_EXPIRES: &str = "X-Amz-Expires";
const X_AMZ_SECURITY_TOKEN: &str = "X-Amz-Security-Token";
pub(crate) const X_AMZ_CONTENT_SHA256: &str = "X-Amz-Content-Sha256";

/// Longest `X-Amz-Expires` AWS accepts: seven days, the lifetime of a
/// signing key.
const MAX_EXPIRES_SECS: u64 = 604_800;

/// The compact ISO-8601 form used by `X-Amz-Date` and the string to sign.
pub(crate) const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Where the signature travelled, which changes the canonical request and
/// how expiry is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthLocation {
    /// `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
    Header,
    /// A presigned URL carrying `X-Amz-Algorithm`, `X-Amz-Credential`,
    /// `X-Amz-Date`, `X-Amz-SignedHeaders`, `X-Amz-Signature` (and usually
    /// `X-Amz-Expires`) in its query string.
    Query,
}

/// The signature parameters of one request, before any check of their values.
#[derive(Debug)]
pub(crate) struct AuthParams {
    pub(crate) location: AuthLocation,
    pub(crate) credential: String,
    pub(crate) signed_headers: Vec<String>,
    pub(crate) signature: String,
    pub(crate) date: String,
    pub(crate) expires: Option<String>,
    pub(crate) security_token: Option<String>,
}

/// The five parts of `AKID/yyyyMMdd/region/service/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    /// Access key id the request claims to be signed with.
    pub access_key_id: String,
    /// `yyyyMMdd` date of the signing key.
    pub date: String,
    /// Region the request was signed for.
    pub region: String,
    /// Service the request was signed for (`lambda`, `s3`, ...).
    pub service: String,
    /// Fixed terminator, `aws4_request` in every valid scope.
    pub terminator: String,
}

impl CredentialScope {
    /// Split a `Credential` value; `None` unless it has exactly five parts.
    pub(crate) fn parse(credential: &str) -> Option<Self> {
        let mut parts = credential.split('/');
        let scope = Self {
            access_key_id: parts.next()?.to_owned(),
            date: parts.next()?.to_owned(),
            region: parts.next()?.to_owned(),
            service: parts.next()?.to_owned(),
            terminator: parts.next()?.to_owned(),
        };
        match parts.next() {
            Some(_) => None,
            None => Some(scope),
        }
    }

    /// The scope line of the string to sign: everything but the key id.
    pub(crate) fn string_to_sign_scope(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.date, self.region, self.service, self.terminator
        )
    }
}

/// Find the signature parameters; a request with neither an `Authorization`
/// header nor `X-Amz-Algorithm` is [`SigV4Error::MissingAuthenticationToken`].
pub(crate) fn extract(headers: &HeaderMap, query: &[QueryParam]) -> Result<AuthParams, SigV4Error> {
    let header = headers.get(http::header::AUTHORIZATION);
    let algorithm = first_param(query, X_AMZ_ALGORITHM);
    match (header, algorithm) {
        (Some(value), None) => from_header(&String::from_utf8_lossy(value.as_bytes()), headers),
        (None, Some(algorithm)) => from_query(&algorithm, query),
        // Both forms at once is ambiguous; AWS refuses it as a bad signature.
        (Some(_), Some(_)) => Err(SigV4Error::SignatureDoesNotMatch),
        (None, None) => Err(SigV4Error::MissingAuthenticationToken),
    }
}

/// The `Credential` of a request without validating anything else, for
/// [`crate::credential_scope`].
pub(crate) fn peek_credential(headers: &HeaderMap, query: &[QueryParam]) -> Option<String> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = String::from_utf8_lossy(value.as_bytes());
        let (_, rest) = split_algorithm(&value);
        return tokens(rest)
            .filter_map(|token| token.split_once('='))
            .filter(|(key, _)| *key == "Credential")
            .last()
            .map(|(_, credential)| credential.to_owned());
    }
    first_param(query, X_AMZ_CREDENTIAL)
}

fn split_algorithm(header: &str) -> (&str, &str) {
    let header = header.trim();
    match header.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((algorithm, rest)) => (algorithm, rest),
        None => (header, ""),
    }
}

/// AWS separates the header's parameters by commas and by whitespace alike:
/// `Credential=AKID /2015...` fails on the `/2015...` token.
fn tokens(rest: &str) -> impl Iterator<Item = &str> {
    rest.split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|token| !token.is_empty())
}

fn from_header(header: &str, headers: &HeaderMap) -> Result<AuthParams, SigV4Error> {
    let (algorithm, rest) = split_algorithm(header);
    if algorithm != ALGORITHM && algorithm.starts_with("AWS4-") {
        return Err(SigV4Error::incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'."
        )));
    }

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for token in tokens(rest) {
        let Some((key, value)) = token.split_once('=') else {
            return Err(SigV4Error::incomplete(format!(
                "'{token}' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'."
            )));
        };
        // A repeated parameter: the last one wins, as at AWS.
        match key {
            "Credential" => credential = Some(value.to_owned()),
            "SignedHeaders" => signed_headers = Some(value.to_owned()),
            "Signature" => signature = Some(value.to_owned()),
            _ => {}
        }
    }
    let date = header_str(headers, "x-amz-date").or_else(|| header_str(headers, "date"));

    let mut missing = Vec::new();
    if credential.is_none() {
        missing.push("Authorization header requires 'Credential' parameter.");
    }
    if signature.is_none() {
        missing.push("Authorization header requires 'Signature' parameter.");
    }
    if signed_headers.is_none() {
        missing.push("Authorization header requires 'SignedHeaders' parameter.");
    }
    if date.is_none() {
        missing.push(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        );
    }
    match (credential, signed_headers, signature, date) {
        (Some(credential), Some(signed_headers), Some(signature), Some(date)) => Ok(AuthParams {
            location: AuthLocation::Header,
            credential,
            signed_headers: split_signed_headers(&signed_headers),
            signature,
            date,
            expires: None,
            security_token: header_str(headers, "x-amz-security-token"),
        }),
        _ => Err(SigV4Error::incomplete(format!(
            "{} Authorization={header}",
            missing.join(" ")
        ))),
    }
}

fn from_query(algorithm: &str, query: &[QueryParam]) -> Result<AuthParams, SigV4Error> {
    if algorithm != ALGORITHM {
        return Err(SigV4Error::MissingAuthenticationToken);
    }
    let credential = first_param(query, X_AMZ_CREDENTIAL);
    let signature = first_param(query, X_AMZ_SIGNATURE);
    let signed_headers = first_param(query, X_AMZ_SIGNED_HEADERS);
    let date = first_param(query, X_AMZ_DATE);

    let mut missing = Vec::new();
    if credential.is_none() {
        missing.push("AWS query-string parameters must include 'X-Amz-Credential'.");
    }
    if signature.is_none() {
        missing.push("AWS query-string parameters must include 'X-Amz-Signature'.");
    }
    if signed_headers.is_none() {
        missing.push("AWS query-string parameters must include 'X-Amz-SignedHeaders'.");
    }
    if date.is_none() {
        missing.push("AWS query-string parameters must include 'X-Amz-Date'.");
    }
    match (credential, signed_headers, signature, date) {
        (Some(credential), Some(signed_headers), Some(signature), Some(date)) => Ok(AuthParams {
            location: AuthLocation::Query,
            credential,
            signed_headers: split_signed_headers(&signed_headers),
            signature,
            date,
            expires: first_param(query, X_AMZ_EXPIRES),
            security_token: first_param(query, X_AMZ_SECURITY_TOKEN),
        }),
        _ => Err(SigV4Error::incomplete(format!(
            "{} Re-examine the query-string parameters.",
            missing.join(" ")
        ))),
    }
}

fn split_signed_headers(list: &str) -> Vec<String> {
    list.split(';').map(str::to_owned).collect()
}

/// The first value of a header, as text.
pub(crate) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).trim().to_owned())
}

/// The first value of a query parameter, decoded. Presigned URLs use the
/// first occurrence, as AWS does.
pub(crate) fn first_param(query: &[QueryParam], name: &str) -> Option<String> {
    query
        .iter()
        .find(|param| param.name == name.as_bytes())
        .map(|param| String::from_utf8_lossy(&param.value).into_owned())
}

/// Parse the request's timestamp: `X-Amz-Date`'s compact ISO-8601, or, for a
/// `Date` header, RFC 1123 (`Sun, 30 Aug 2015 12:36:00 GMT`).
pub(crate) fn parse_date(raw: &str) -> Result<DateTime<Utc>, SigV4Error> {
    if let Ok(naive) = NaiveDateTime::parse_from_str(raw, AMZ_DATE_FORMAT) {
        if raw.len() == 16 {
            return Ok(naive.and_utc());
        }
    }
    if let Ok(date) = DateTime::parse_from_rfc2822(raw) {
        return Ok(date.with_timezone(&Utc));
    }
    Err(SigV4Error::incomplete(format!(
        "Date must be in ISO-8601 'basic format'. Got '{raw}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )))
}

/// Parse `X-Amz-Expires`: whole seconds, at most a week.
pub(crate) fn parse_expires(raw: &str) -> Result<TimeDelta, SigV4Error> {
    let secs: u64 = raw
        .parse()
        .map_err(|_| SigV4Error::incomplete("X-Amz-Expires should be a number"))?;
    let too_long = || {
        SigV4Error::incomplete("X-Amz-Expires must be less than a week (in seconds) that is 604800")
    };
    if secs > MAX_EXPIRES_SECS {
        return Err(too_long());
    }
    let secs = i64::try_from(secs).map_err(|_| too_long())?;
    Ok(TimeDelta::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::parse_query;
    use http::HeaderValue;

    fn header_auth(value: &str, date: Option<&str>) -> Result<AuthParams, SigV4Error> {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_str(value).unwrap());
        if let Some(date) = date {
            headers.insert("x-amz-date", HeaderValue::from_str(date).unwrap());
        }
        extract(&headers, &[])
    }

    fn incomplete(message: &str) -> SigV4Error {
        SigV4Error::incomplete(message)
    }

    #[test]
    fn parses_a_well_formed_header() {
        let auth = header_auth(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d67",
            Some("20150830T123600Z"),
        )
        .unwrap();
        assert_eq!(auth.location, AuthLocation::Header);
        assert_eq!(
            auth.credential,
            "AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request"
        );
        assert_eq!(auth.signed_headers, ["content-type", "host", "x-amz-date"]);
        assert_eq!(auth.signature, "5d67");
        assert_eq!(auth.date, "20150830T123600Z");
    }

    #[test]
    fn names_every_missing_part_in_aws_order() {
        let err = header_auth(
            "AWS4-HMAC-SHA256 Credential=ABCDEF",
            Some("20150830T123600Z"),
        )
        .unwrap_err();
        assert_eq!(
            err,
            incomplete("Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential=ABCDEF")
        );
        let err = header_auth("AWS4-HMAC-SHA256", None).unwrap_err();
        assert_eq!(
            err,
            incomplete("Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256")
        );
    }

    #[test]
    fn a_stray_space_splits_the_credential() {
        let header = "AWS4-HMAC-SHA256 Credential=AKID /20150830/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        let err = header_auth(header, Some("20150830T123600Z")).unwrap_err();
        assert_eq!(
            err,
            incomplete(&format!("'/20150830/us-east-1/lambda/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'."))
        );
    }

    #[test]
    fn other_aws4_algorithms_are_unsupported() {
        let err =
            header_auth("AWS4-HMAC-SHA512 Credential=a", Some("20150830T123600Z")).unwrap_err();
        assert_eq!(
            err,
            incomplete("Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'.")
        );
    }

    #[test]
    fn query_params_missing() {
        let query = parse_query("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20150830T123600Z");
        let err = extract(&HeaderMap::new(), &query).unwrap_err();
        assert_eq!(
            err,
            incomplete("AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. Re-examine the query-string parameters.")
        );
    }

    #[test]
    fn no_auth_and_unknown_query_algorithm_are_missing_token() {
        assert_eq!(
            extract(&HeaderMap::new(), &[]).unwrap_err(),
            SigV4Error::MissingAuthenticationToken
        );
        let query = parse_query("X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256");
        assert_eq!(
            extract(&HeaderMap::new(), &query).unwrap_err(),
            SigV4Error::MissingAuthenticationToken
        );
    }

    #[test]
    fn credential_scope_needs_five_parts() {
        assert!(CredentialScope::parse("a/b/c/d").is_none());
        assert!(CredentialScope::parse("a/b/c/d/e/f").is_none());
        let scope = CredentialScope::parse("AKID/20150830/us-east-1/lambda/aws4_request").unwrap();
        assert_eq!(
            scope.string_to_sign_scope(),
            "20150830/us-east-1/lambda/aws4_request"
        );
    }

    #[test]
    fn dates() {
        let iso = parse_date("20150830T123600Z").unwrap();
        let rfc = parse_date("Sun, 30 Aug 2015 12:36:00 GMT").unwrap();
        assert_eq!(iso, rfc);
        assert_eq!(
            parse_date("2015-08-30T12:36:00Z").unwrap_err(),
            incomplete("Date must be in ISO-8601 'basic format'. Got '2015-08-30T12:36:00Z'. See http://en.wikipedia.org/wiki/ISO_8601")
        );
    }

    #[test]
    fn expires() {
        assert_eq!(parse_expires("3600").unwrap(), TimeDelta::seconds(3600));
        assert_eq!(parse_expires("604800").unwrap(), TimeDelta::days(7));
        assert!(matches!(
            parse_expires("604801"),
            Err(SigV4Error::IncompleteSignature { .. })
        ));
        assert!(matches!(
            parse_expires("-1"),
            Err(SigV4Error::IncompleteSignature { .. })
        ));
        assert!(matches!(
            parse_expires("soon"),
            Err(SigV4Error::IncompleteSignature { .. })
        ));
    }
}
