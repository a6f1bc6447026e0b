//! Clients of a test server: the one way SDK clients are configured, errors
//! as the server answered them, and raw SigV4-signed requests for what the
//! SDK cannot send.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::Client;

use super::REGION;

/// A bound on one SDK operation, so that a server that never answers fails
/// the test instead of hanging it; far above what any operation takes.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(300);

/// The settings every SDK client in these tests shares, whatever its
/// service: the server at `addr`, [`REGION`], static credentials `key` /
/// `secret`, and retries off so every error surfaces as the server sent it.
pub fn sdk_config(addr: SocketAddr, key: &str, secret: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(format!("http://{addr}"))
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            key, secret, None, None, "static",
        )))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .build()
}

/// A Lambda client for the server at `addr`, signing with the given key.
pub fn client(addr: SocketAddr, key: &str, secret: &str) -> Client {
    Client::new(&sdk_config(addr, key, secret))
}

/// An error as the server answered it: HTTP status, the `x-amzn-ErrorType`
/// header, the code and message the SDK parsed, and the request id header.
#[derive(Debug)]
pub struct Failure {
    pub status: u16,
    pub error_type_header: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
}

pub fn failure<E, R>(result: Result<R, SdkError<E, HttpResponse>>) -> Failure
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let err = result.expect_err("the request should fail");
    let raw = err
        .raw_response()
        .unwrap_or_else(|| panic!("no response: {err:?}"));
    let header = |name: &str| raw.headers().get(name).map(str::to_string);
    Failure {
        status: raw.status().as_u16(),
        error_type_header: header("x-amzn-ErrorType"),
        request_id: header("x-amzn-RequestId"),
        code: err.code().map(str::to_string),
        message: err.message().map(str::to_string),
    }
}

impl Failure {
    /// Asserts status, code (in the SDK's parse and in the header) and the
    /// exact message.
    pub fn assert(&self, status: u16, code: &str, message: &str) {
        self.assert_code(status, code);
        assert_eq!(self.message.as_deref(), Some(message), "{self:?}");
    }

    pub fn assert_code(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.code.as_deref(), Some(code), "{self:?}");
        let header = self.error_type_header.as_deref().unwrap_or_default();
        assert_eq!(
            header.split(':').next(),
            Some(code),
            "x-amzn-ErrorType: {self:?}"
        );
        assert!(self.request_id.is_some(), "x-amzn-RequestId: {self:?}");
    }

    pub fn message(&self) -> &str {
        self.message.as_deref().unwrap_or_default()
    }
}

/// What a raw signed request got back.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub error_type_header: Option<String>,
    pub request_id: Option<String>,
    pub body: serde_json::Value,
}

impl RawResponse {
    /// Asserts the status and the error type AWS names in `x-amzn-ErrorType`.
    pub fn assert_error(&self, status: u16, error_type: &str) {
        assert_eq!(self.status, status, "{self:?}");
        let header = self.error_type_header.as_deref();
        assert_eq!(header, Some(error_type), "{self:?}");
    }
}

/// Sends a request signed with SigV4 (service `lambda`) by `aws-sigv4`,
/// bypassing the SDK's serializer so any body can be sent.
pub async fn signed_request(
    endpoint: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    key: &str,
    secret: &str,
) -> RawResponse {
    let signing = Signing {
        key,
        secret,
        time: SystemTime::now(),
        presigned: false,
    };
    signed_request_with(endpoint, method, path_and_query, body, &signing).await
}

/// How [`signed_request_with`] signs.
pub struct Signing<'a> {
    pub key: &'a str,
    pub secret: &'a str,
    /// The signing time (to test clock skew).
    pub time: SystemTime,
    /// Signature in the query string (a presigned URL) instead of headers.
    pub presigned: bool,
}

pub async fn signed_request_with(
    endpoint: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    signing: &Signing<'_>,
) -> RawResponse {
    use aws_sigv4::http_request::{
        sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    };
    use aws_sigv4::sign::v4;

    let (key, secret) = (signing.key, signing.secret);
    let mut settings = SigningSettings::default();
    if signing.presigned {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(300));
    }
    let url = format!("{endpoint}{path_and_query}");
    let host = endpoint.trim_start_matches("http://").to_string();
    let identity = Credentials::new(key, secret, None, None, "raw").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("lambda")
        .time(signing.time)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let headers = [
        ("host", host.as_str()),
        ("content-type", "application/json"),
    ];
    let signable = SignableRequest::new(
        method,
        url.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();

    let mut url = url;
    for (i, (name, value)) in instructions.params().iter().enumerate() {
        let sep = if i == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        };
        url.push(sep);
        url.push_str(name);
        url.push('=');
        url.push_str(&percent_encode(value));
    }
    let http = reqwest::Client::new();
    let mut request = http
        .request(method.parse().expect("method"), &url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("raw request");
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let error_type_header = header("x-amzn-ErrorType");
    let request_id = header("x-amzn-RequestId");
    let bytes = response.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "body is not JSON (status {status}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    RawResponse {
        status,
        error_type_header,
        request_id,
        body,
    }
}

/// A bodiless GET of `url` signed with SigV4 for `service` (`lambda`,
/// `execute-api`) with the given key, in headers.
pub fn sign_get(
    http: &reqwest::Client,
    url: &str,
    service: &str,
    key: &str,
    secret: &str,
) -> reqwest::RequestBuilder {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;

    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let identity = Credentials::new(key, secret, None, None, "raw").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let headers = [("host", host.as_str())];
    let signable = SignableRequest::new(
        "GET",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(b""),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut request = http.get(url);
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    request
}

/// RFC 3986 percent-encoding of a query value, as SigV4 expects it.
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
