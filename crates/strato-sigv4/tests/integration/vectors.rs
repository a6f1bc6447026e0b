//! Requests and signatures published by AWS: the SigV4 test suite (as shipped
//! with AWS's own signers, credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z,
//! region us-east-1, service `service`) and the documented IAM ListUsers
//! example. Each must verify unchanged; a tampered copy must not.

use strato_sigv4::{credential_scope, AuthLocation, SigV4Error};

use crate::common::{at, ServerRequest, ACCOUNT, AKID};

const SUITE_DATE: &str = "20150830T123600Z";

fn suite_auth(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed_headers}, Signature={signature}"
    )
}

/// A header-signed suite request with `host` and `x-amz-date`, plus `extra`
/// headers in the order given.
fn suite_request(
    method: &str,
    path_and_query: &str,
    extra: &[(&str, &str)],
    signed_headers: &str,
    signature: &str,
    body: &[u8],
) -> ServerRequest {
    let auth = suite_auth(signed_headers, signature);
    let mut headers = vec![("host", "example.amazonaws.com")];
    headers.extend_from_slice(extra);
    headers.push(("x-amz-date", SUITE_DATE));
    headers.push(("authorization", &auth));
    ServerRequest::new(method, path_and_query, &headers, body)
}

fn assert_verifies(name: &str, request: &ServerRequest) {
    let verified = request
        .verify_at(at(SUITE_DATE))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(verified.access_key_id, AKID, "{name}");
    assert_eq!(verified.account_id, ACCOUNT, "{name}");
}

/// One header-signed request of the suite.
struct Vector {
    name: &'static str,
    method: &'static str,
    target: &'static str,
    headers: &'static [(&'static str, &'static str)],
    signed_headers: &'static str,
    signature: &'static str,
}

const HOST_DATE: &str = "host;x-amz-date";
const WITH_HEADER1: &str = "host;my-header1;x-amz-date";

const HEADER_VECTORS: &[Vector] = &[
    Vector {
        name: "get-vanilla",
        method: "GET",
        target: "/",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-vanilla-query",
        method: "GET",
        target: "/",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-relative-normalized",
        method: "GET",
        target: "/example/..",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-relative-relative-normalized",
        method: "GET",
        target: "/example1/example2/../..",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-slash-dot-slash-normalized",
        method: "GET",
        target: "/./",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-slash-normalized",
        method: "GET",
        target: "//",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-slash-pointless-dot-normalized",
        method: "GET",
        target: "/./example",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
    },
    Vector {
        name: "get-slashes-normalized",
        method: "GET",
        target: "//example//",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
    },
    Vector {
        name: "get-unreserved",
        method: "GET",
        target: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    },
    Vector {
        name: "get-vanilla-empty-query-key",
        method: "GET",
        target: "/?Param1=value1",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
    },
    Vector {
        name: "get-vanilla-query-order-encoded",
        method: "GET",
        target: "/?Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
    },
    Vector {
        name: "get-vanilla-query-order-key-case",
        method: "GET",
        target: "/?Param2=value2&Param1=value1",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    },
    Vector {
        name: "get-vanilla-query-unreserved",
        method: "GET",
        target: "/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    },
    // The suite writes the UTF-8 name raw; on the wire it is percent-encoded.
    Vector {
        name: "get-vanilla-utf8-query",
        method: "GET",
        target: "/?%E1%88%B4=bar",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    },
    Vector {
        name: "get-header-key-duplicate",
        method: "GET",
        target: "/",
        headers: &[("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")],
        signed_headers: WITH_HEADER1,
        signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    },
    Vector {
        name: "get-header-value-order",
        method: "GET",
        target: "/",
        headers: &[("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2")],
        signed_headers: WITH_HEADER1,
        signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    },
    Vector {
        name: "get-header-value-trim",
        method: "GET",
        target: "/",
        headers: &[("My-Header1", " value1"), ("My-Header2", " \"a b c\"")],
        signed_headers: "host;my-header1;my-header2;x-amz-date",
        signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    },
    Vector {
        name: "post-vanilla",
        method: "POST",
        target: "/",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    },
    Vector {
        name: "post-vanilla-query",
        method: "POST",
        target: "/?Param1=value1",
        headers: &[],
        signed_headers: HOST_DATE,
        signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    },
    Vector {
        name: "post-header-key-sort",
        method: "POST",
        target: "/",
        headers: &[("My-Header1", "value1")],
        signed_headers: WITH_HEADER1,
        signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    },
    Vector {
        name: "post-header-value-case",
        method: "POST",
        target: "/",
        headers: &[("My-Header1", "VALUE1")],
        signed_headers: WITH_HEADER1,
        signature: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
    },
];

#[test]
fn suite_header_vectors() {
    for v in HEADER_VECTORS {
        let request = suite_request(
            v.method,
            v.target,
            v.headers,
            v.signed_headers,
            v.signature,
            b"",
        );
        assert_verifies(v.name, &request);

        // The same request with one byte of the signature changed fails.
        let mut bad = v.signature.to_string();
        bad.replace_range(0..1, if bad.starts_with('0') { "1" } else { "0" });
        let tampered = suite_request(v.method, v.target, v.headers, v.signed_headers, &bad, b"");
        assert_eq!(
            tampered.verify_at(at(SUITE_DATE)).unwrap_err(),
            SigV4Error::SignatureDoesNotMatch,
            "{}",
            v.name
        );
    }
}

#[test]
fn suite_session_token_signed_or_not() {
    let sts_token = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
    let before = suite_request(
        "POST",
        "/",
        &[("X-Amz-Security-Token", sts_token)],
        "host;x-amz-date;x-amz-security-token",
        "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        b"",
    );
    let verified = before.verify_at(at(SUITE_DATE)).unwrap();
    assert_eq!(verified.session_token.as_deref(), Some(sts_token));

    // post-sts-header-after: the token added after signing, outside SignedHeaders.
    let after = suite_request(
        "POST",
        "/",
        &[("X-Amz-Security-Token", sts_token)],
        "host;x-amz-date",
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        b"",
    );
    after.verify_at(at(SUITE_DATE)).unwrap();

    let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    let get = suite_request(
        "GET",
        "/",
        &[("X-Amz-Security-Token", token)],
        "host;x-amz-date;x-amz-security-token",
        "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
        b"",
    );
    get.verify_at(at(SUITE_DATE)).unwrap();
}

#[test]
fn suite_form_body_with_content_sha256() {
    let body = b"Param1=value1";
    let hash = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";
    let signed = "content-length;content-type;host;x-amz-content-sha256;x-amz-date";
    for (content_type, signature) in [
        (
            "application/x-www-form-urlencoded; charset=utf-8",
            "328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422",
        ),
        (
            "application/x-www-form-urlencoded",
            "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
        ),
    ] {
        let headers = [
            ("Content-Type", content_type),
            ("Content-Length", "13"),
            ("x-amz-content-sha256", hash),
        ];
        let request = suite_request("POST", "/", &headers, signed, signature, body);
        let verified = request.verify_at(at(SUITE_DATE)).unwrap();
        assert_eq!(verified.payload_hash, hash);

        // A different body of the same length no longer matches.
        let tampered = suite_request("POST", "/", &headers, signed, signature, b"Param1=value2");
        assert_eq!(
            tampered.verify_at(at(SUITE_DATE)).unwrap_err(),
            SigV4Error::SignatureDoesNotMatch
        );
    }
}

#[test]
fn suite_presigned_vectors() {
    let cases = [
        (
            "get-vanilla-query-order-key-case",
            "/?Param2=value2&Param1=value1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5",
            None,
        ),
        (
            "get-vanilla-with-session-token",
            "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Security-Token=6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267&X-Amz-Signature=7ff2b50b376cb4d151970630573d6291dc128cc5c2a12ffb237f73cc53f67b6c",
            Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
        ),
    ];
    for (name, uri, token) in cases {
        let request = ServerRequest::new("GET", uri, &[("host", "example.amazonaws.com")], b"");
        let verified = request
            .verify_at(at("20150830T130000Z"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.location, AuthLocation::Query, "{name}");
        assert_eq!(verified.session_token.as_deref(), token, "{name}");
        // Non-S3 presigned URLs sign the hash of the (empty) body.
        assert_eq!(
            verified.payload_hash,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );

        // One hour later the URL has expired.
        assert_eq!(
            request.verify_at(at("20150830T133601Z")).unwrap_err(),
            SigV4Error::RequestExpired,
            "{name}"
        );
        let scope = credential_scope(&request.parts()).unwrap();
        assert_eq!(scope.service, "service");
    }
}

#[test]
fn documented_iam_list_users_example() {
    let request = ServerRequest::new(
        "GET",
        "/?Action=ListUsers&Version=2010-05-08",
        &[
            ("host", "iam.amazonaws.com"),
            ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
            ),
        ],
        b"",
    );
    let verified = request.verify_at(at("20150830T123600Z")).unwrap();
    assert_eq!(verified.service, "iam");
    assert_eq!(verified.region, "us-east-1");
    assert_eq!(verified.signed_at, at("20150830T123600Z"));
    assert_eq!(verified.location, AuthLocation::Header);
}

#[test]
fn lambda_double_encoded_arn_vector() {
    // aws-sigv4's vector for Lambda: the ARN's `%3A` is signed as `%253A`.
    let request = ServerRequest::new(
        "POST",
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations",
        &[
            ("host", "lambda.us-east-2.amazonaws.com"),
            ("x-amz-date", "20210511T154045Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20210511/us-east-2/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=4b93abbcc68be32bd64c18e2c71150660ab4c29bbd6c32a383a7517a88fc1804",
            ),
        ],
        b"",
    );
    let verified = request.verify_at(at("20210511T154045Z")).unwrap();
    assert_eq!(verified.service, "lambda");
    assert_eq!(verified.region, "us-east-2");
}
