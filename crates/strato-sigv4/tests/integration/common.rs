//! Helpers shared by the integration tests.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use chrono::{DateTime, NaiveDateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use strato_sigv4::{verify, Credential, RequestParts, SigV4Error, VerifiedRequest};

pub const AKID: &str = "AKIDEXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub const ACCOUNT: &str = "123456789012";

/// A request as the server sees it: origin-form URI, headers, body.
#[derive(Debug, Clone)]
pub struct ServerRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl ServerRequest {
    pub fn new(method: &str, path_and_query: &str, headers: &[(&str, &str)], body: &[u8]) -> Self {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        Self {
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            uri: path_and_query.parse().unwrap(),
            headers: map,
            body: body.to_vec(),
        }
    }

    pub fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
        }
    }

    pub fn verify_at(&self, now: DateTime<Utc>) -> Result<VerifiedRequest, SigV4Error> {
        verify(&self.parts(), &self.body, now, &store())
    }
}

pub fn store() -> HashMap<String, Credential> {
    HashMap::from([(
        AKID.to_string(),
        Credential {
            secret_access_key: SECRET.to_string(),
            account_id: ACCOUNT.to_string(),
        },
    )])
}

/// `yyyyMMdd'T'HHmmss'Z'` to a UTC instant.
pub fn at(amz_date: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .unwrap()
        .and_utc()
}

/// The instant the round-trip requests are signed at.
pub const NOW: &str = "20240315T101500Z";

/// How the client signs.
#[derive(Clone, Copy)]
pub enum Style {
    /// Every service but S3, as the SDK signs Lambda.
    Lambda,
    /// S3: single encoding, no normalisation, `x-amz-content-sha256`.
    S3,
}

pub struct Signing<'a> {
    pub service: &'a str,
    pub style: Style,
    pub body: SignableBody<'a>,
    pub presign: Option<Duration>,
    pub token: Option<&'a str>,
}

impl<'a> Signing<'a> {
    pub fn lambda(body: &'a [u8]) -> Self {
        Self {
            service: "lambda",
            style: Style::Lambda,
            body: SignableBody::Bytes(body),
            presign: None,
            token: None,
        }
    }

    pub fn s3(body: SignableBody<'a>) -> Self {
        Self {
            service: "s3",
            style: Style::S3,
            body,
            presign: None,
            token: None,
        }
    }

    /// Sign a request to `url` (absolute, already percent-encoded as an SDK
    /// sends it) and return it as the server receives it.
    pub fn sign(
        self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> ServerRequest {
        let identity: Identity =
            Credentials::new(AKID, SECRET, self.token.map(str::to_owned), None, "test").into();
        let mut settings = SigningSettings::default();
        if let Style::S3 = self.style {
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        if let Some(expires) = self.presign {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(self.service)
            .time(SystemTime::from(at(NOW)))
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let signable =
            SignableRequest::new(method, url, headers.iter().copied(), self.body).unwrap();
        let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();

        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut request);

        // What the server sees: origin-form target, and the Host header the
        // HTTP client adds from the URL.
        let (parts, ()) = request.into_parts();
        let mut headers = parts.headers;
        if !headers.contains_key("host") {
            let host = parts.uri.authority().unwrap().as_str();
            headers.insert("host", HeaderValue::from_str(host).unwrap());
        }
        let target = parts.uri.path_and_query().unwrap().as_str();
        ServerRequest {
            method: parts.method,
            uri: target.parse().unwrap(),
            headers,
            body: body.to_vec(),
        }
    }
}
