//! Requests signed by `aws-sigv4`, the signer inside the AWS SDK for Rust,
//! configured as the SDK configures it for Lambda (double encoding, path
//! normalisation) and for S3 (single encoding, no normalisation,
//! `x-amz-content-sha256`), must verify; the same requests with one byte
//! changed anywhere that is signed, or checked against another secret, must not.

use std::collections::HashMap;
use std::time::Duration;

use aws_sigv4::http_request::SignableBody;
use chrono::{DateTime, TimeDelta, Utc};
use http::{HeaderName, HeaderValue, Uri};
use strato_sigv4::{
    credential_scope, verify, verify_payload, AuthLocation, Credential, PayloadHash, SigV4Error,
};

use crate::common::{at, store, ServerRequest, Signing, ACCOUNT, AKID, NOW, SECRET};

fn now() -> DateTime<Utc> {
    at(NOW)
}

fn rejected(request: &ServerRequest) -> SigV4Error {
    request.verify_at(now()).unwrap_err()
}

/// Replace the first `from` in the request target with `to`.
fn with_target(request: &ServerRequest, from: &str, to: &str) -> ServerRequest {
    let target = request.uri.to_string();
    assert!(target.contains(from), "{target} lacks {from}");
    let mut changed = request.clone();
    changed.uri = target.replacen(from, to, 1).parse::<Uri>().unwrap();
    changed
}

fn with_header(request: &ServerRequest, name: &str, value: &str) -> ServerRequest {
    let mut changed = request.clone();
    changed.headers.insert(
        HeaderName::from_bytes(name.as_bytes()).unwrap(),
        HeaderValue::from_str(value).unwrap(),
    );
    changed
}

fn with_body(request: &ServerRequest, body: &[u8]) -> ServerRequest {
    let mut changed = request.clone();
    changed.body = body.to_vec();
    changed
}

fn assert_wrong_secret_fails(request: &ServerRequest) {
    let other = HashMap::from([(
        AKID.to_string(),
        Credential {
            secret_access_key: SECRET.replacen('w', "x", 1),
            account_id: ACCOUNT.to_string(),
        },
    )]);
    assert_eq!(
        verify(&request.parts(), &request.body, now(), &other).unwrap_err(),
        SigV4Error::SignatureDoesNotMatch
    );
}

const INVOKE_URL: &str = "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-function/invocations?Qualifier=%24LATEST";

#[test]
fn lambda_invoke_with_encoded_arn_and_body() {
    let body = br#"{"key":"value"}"#;
    let headers = [
        ("content-type", "application/json"),
        ("x-amz-invocation-type", "RequestResponse"),
        ("x-amz-log-type", "Tail"),
        (
            "x-amz-client-context",
            "  eyJjdXN0b20iOnt9fQ==   with   spaces ",
        ),
    ];
    let request = Signing::lambda(body).sign("POST", INVOKE_URL, &headers, body);

    let verified = request.verify_at(now()).unwrap();
    assert_eq!(verified.access_key_id, AKID);
    assert_eq!(verified.account_id, ACCOUNT);
    assert_eq!(verified.service, "lambda");
    assert_eq!(verified.region, "us-east-1");
    assert_eq!(verified.signed_at, now());
    assert_eq!(verified.location, AuthLocation::Header);
    assert_eq!(verified.session_token, None);
    let scope = credential_scope(&request.parts()).unwrap();
    assert_eq!(
        (scope.access_key_id.as_str(), scope.date.as_str()),
        (AKID, "20240315")
    );
    assert_eq!(
        (scope.region.as_str(), scope.service.as_str()),
        ("us-east-1", "lambda")
    );

    let mismatch = SigV4Error::SignatureDoesNotMatch;
    assert_eq!(
        rejected(&with_body(&request, br#"{"key":"valuf"}"#)),
        mismatch
    );
    assert_eq!(
        rejected(&with_target(&request, "my-function", "my-functioN")),
        mismatch
    );
    assert_eq!(
        rejected(&with_target(&request, "%3Amy-function", ":my-function")),
        mismatch
    );
    assert_eq!(
        rejected(&with_target(&request, "%24LATEST", "%24LATESU")),
        mismatch
    );
    assert_eq!(
        rejected(&with_header(&request, "x-amz-log-type", "None")),
        mismatch
    );
    assert_eq!(
        rejected(&with_header(&request, "content-type", "application/jsoN")),
        mismatch
    );
    assert_eq!(
        rejected(&with_header(
            &request,
            "host",
            "lambda.us-east-2.amazonaws.com"
        )),
        mismatch
    );
    assert_wrong_secret_fails(&request);

    // An unsigned header may be added or changed freely.
    with_header(&request, "x-unsigned", "anything")
        .verify_at(now())
        .unwrap();
}

#[test]
fn lambda_precomputed_body_hash() {
    let body = b"streamed payload";
    let request = Signing::lambda(body).sign("POST", INVOKE_URL, &[], body);
    let real = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(body))
    };
    verify_payload(
        &request.parts(),
        PayloadHash::Precomputed(&real),
        now(),
        &store(),
    )
    .unwrap();
    let other = real.replacen(&real[..1], if real.starts_with('0') { "1" } else { "0" }, 1);
    assert_eq!(
        verify_payload(
            &request.parts(),
            PayloadHash::Precomputed(&other),
            now(),
            &store()
        ),
        Err(SigV4Error::SignatureDoesNotMatch)
    );
}

#[test]
fn lambda_qualified_name_and_dollar_latest_in_path() {
    let url = "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/my-function%3A%24LATEST/configuration";
    let request = Signing::lambda(b"").sign("GET", url, &[], b"");
    request.verify_at(now()).unwrap();
    assert_eq!(
        rejected(&with_target(&request, "%24LATEST", "%24LATESt")),
        SigV4Error::SignatureDoesNotMatch
    );
    // `:` sent raw is a different canonical path from `%3A`, for the signer too.
    assert_eq!(
        rejected(&with_target(&request, "%3A", ":")),
        SigV4Error::SignatureDoesNotMatch
    );
}

#[test]
fn lambda_unnormalized_path_is_normalized_by_both_sides() {
    let url = "https://lambda.us-east-1.amazonaws.com/2015-03-31//functions/./f/../g/policy";
    let request = Signing::lambda(b"").sign("GET", url, &[], b"");
    request.verify_at(now()).unwrap();
    // Normalisation makes these equivalent to the signed path.
    with_target(&request, "//functions/./f/../g", "/functions/g")
        .verify_at(now())
        .unwrap();
    assert_eq!(
        rejected(&with_target(&request, "/g/", "/h/")),
        SigV4Error::SignatureDoesNotMatch
    );
}

#[test]
fn query_with_repeated_empty_and_spaced_keys() {
    let url = "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/?MaxItems=10&Marker=&a=2&a=1&a=&flag&FunctionVersion=ALL&q=a+b&r=c%20d&s=%2B&t=%E2%82%AC";
    let request = Signing::lambda(b"").sign("GET", url, &[], b"");
    request.verify_at(now()).unwrap();

    let mismatch = SigV4Error::SignatureDoesNotMatch;
    assert_eq!(
        rejected(&with_target(&request, "MaxItems=10", "MaxItems=11")),
        mismatch
    );
    assert_eq!(rejected(&with_target(&request, "a=2", "a=3")), mismatch);
    assert_eq!(rejected(&with_target(&request, "&flag", "&flah")), mismatch);
    assert_eq!(rejected(&with_target(&request, "&flag", "")), mismatch);
    assert_eq!(rejected(&with_target(&request, "s=%2B", "s=+")), mismatch);
    // Reordering the query is not a change: the canonical form is sorted.
    let target = request.uri.to_string();
    let (path, query) = target.split_once('?').unwrap();
    let mut pieces: Vec<&str> = query.split('&').collect();
    pieces.reverse();
    let reordered = with_target(&request, &target, &format!("{path}?{}", pieces.join("&")));
    reordered.verify_at(now()).unwrap();
}

#[test]
fn session_token_header_is_signed_and_reported() {
    let mut signing = Signing::lambda(b"");
    signing.token = Some("IQoJb3JpZ2luX2VjEXAMPLETOKEN/+==");
    let request = signing.sign(
        "GET",
        "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/",
        &[],
        b"",
    );
    let verified = request.verify_at(now()).unwrap();
    assert_eq!(
        verified.session_token.as_deref(),
        Some("IQoJb3JpZ2luX2VjEXAMPLETOKEN/+==")
    );
    assert_eq!(
        rejected(&with_header(
            &request,
            "x-amz-security-token",
            "IQoJb3JpZ2luX2VjEXAMPLETOKEN/+=-"
        )),
        SigV4Error::SignatureDoesNotMatch
    );
}

#[test]
fn lambda_presigned_url() {
    let mut signing = Signing::lambda(b"");
    signing.presign = Some(Duration::from_secs(900));
    signing.token = Some("session-token");
    let request = signing.sign(
        "GET",
        "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/my-function?Qualifier=%24LATEST",
        &[],
        b"",
    );
    assert!(request.headers.get("authorization").is_none());
    let verified = request.verify_at(now() + TimeDelta::minutes(10)).unwrap();
    assert_eq!(verified.location, AuthLocation::Query);
    assert_eq!(verified.session_token.as_deref(), Some("session-token"));
    assert_eq!(
        credential_scope(&request.parts()).unwrap().service,
        "lambda"
    );

    // Valid up to X-Amz-Date + X-Amz-Expires, not a second after.
    request.verify_at(now() + TimeDelta::seconds(900)).unwrap();
    assert_eq!(
        request
            .verify_at(now() + TimeDelta::seconds(901))
            .unwrap_err(),
        SigV4Error::RequestExpired
    );
    assert_eq!(
        rejected(&with_target(&request, "my-function", "my-functioN")),
        SigV4Error::SignatureDoesNotMatch
    );
    assert_eq!(
        rejected(&with_target(
            &request,
            "X-Amz-Expires=900",
            "X-Amz-Expires=901"
        )),
        SigV4Error::SignatureDoesNotMatch
    );
}

#[test]
fn s3_put_with_unnormalized_key_and_content_sha256() {
    let body = b"object bytes";
    let url = "https://s3.us-east-1.amazonaws.com/bucket/a//b/./c/../d%3Ae%20f.txt";
    let request = Signing::s3(SignableBody::Bytes(body)).sign(
        "PUT",
        url,
        &[("content-type", "text/plain")],
        body,
    );
    let verified = request.verify_at(now()).unwrap();
    assert_eq!(verified.service, "s3");
    assert_eq!(
        verified.payload_hash,
        request.headers["x-amz-content-sha256"].to_str().unwrap()
    );

    let mismatch = SigV4Error::SignatureDoesNotMatch;
    // S3 keys are not normalised: the collapsed path is another object.
    assert_eq!(
        rejected(&with_target(&request, "a//b/./c/../d", "a/b/d")),
        mismatch
    );
    assert_eq!(rejected(&with_body(&request, b"object byteS")), mismatch);
    assert_eq!(
        rejected(&with_header(&request, "content-type", "text/html")),
        mismatch
    );
    assert_wrong_secret_fails(&request);
    // S3 decodes the key: `:` sent raw is the same object as `%3A`.
    with_target(&request, "%3A", ":").verify_at(now()).unwrap();
}

#[test]
fn s3_unsigned_and_streaming_payloads_use_the_declared_string() {
    let url = "https://s3.us-east-1.amazonaws.com/bucket/key";
    let unsigned = Signing::s3(SignableBody::UnsignedPayload).sign("PUT", url, &[], b"anything");
    let verified = unsigned.verify_at(now()).unwrap();
    assert_eq!(verified.payload_hash, "UNSIGNED-PAYLOAD");
    // The body is not covered by the signature.
    with_body(&unsigned, b"something else")
        .verify_at(now())
        .unwrap();

    let streaming = Signing::s3(SignableBody::Precomputed(
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_string(),
    ))
    .sign(
        "PUT",
        url,
        &[
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "5"),
        ],
        b"5;chunk-signature=...",
    );
    let verified = streaming.verify_at(now()).unwrap();
    assert_eq!(verified.payload_hash, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    assert_eq!(
        rejected(&with_header(
            &streaming,
            "x-amz-decoded-content-length",
            "6"
        )),
        SigV4Error::SignatureDoesNotMatch
    );
}

#[test]
fn s3_presigned_get() {
    let mut signing = Signing::s3(SignableBody::UnsignedPayload);
    signing.presign = Some(Duration::from_secs(3600));
    let request = signing.sign(
        "GET",
        "https://s3.us-east-1.amazonaws.com/bucket/dir//file%20name.txt?versionId=abc&response-content-type=text%2Fplain",
        &[],
        b"",
    );
    let verified = request.verify_at(now() + TimeDelta::minutes(59)).unwrap();
    assert_eq!(verified.payload_hash, "UNSIGNED-PAYLOAD");
    assert_eq!(verified.location, AuthLocation::Query);
    assert_eq!(
        request
            .verify_at(now() + TimeDelta::minutes(61))
            .unwrap_err(),
        SigV4Error::RequestExpired
    );
    assert_eq!(
        rejected(&with_target(&request, "versionId=abc", "versionId=abd")),
        SigV4Error::SignatureDoesNotMatch
    );
    assert_eq!(
        rejected(&with_target(&request, "dir//file", "dir/file")),
        SigV4Error::SignatureDoesNotMatch
    );
}

#[test]
fn signed_host_may_come_from_the_uri_authority() {
    // HTTP/2 carries the host in `:authority`, which servers expose as the
    // request URI's authority rather than a Host header.
    let request = Signing::lambda(b"").sign(
        "GET",
        "https://lambda.us-east-1.amazonaws.com:8443/2015-03-31/functions/",
        &[],
        b"",
    );
    let mut h2 = request.clone();
    h2.headers.remove("host");
    h2.uri = format!("https://lambda.us-east-1.amazonaws.com:8443{}", request.uri)
        .parse()
        .unwrap();
    h2.verify_at(now()).unwrap();
}
