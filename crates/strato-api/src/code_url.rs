//! Presigned download URLs for deployment packages (GetFunction's
//! `Code.Location`): like an S3 presigned URL, anyone holding it may download
//! that one package until it expires, without signing the request.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::ApiState;

/// How long a code URL stays valid (AWS: 10 minutes).
pub const CODE_URL_TTL_SECONDS: i64 = 600;

#[derive(Clone)]
pub struct CodeUrlSigner {
    key: Arc<[u8]>,
}

impl CodeUrlSigner {
    pub fn new(key: &[u8]) -> CodeUrlSigner {
        CodeUrlSigner { key: key.into() }
    }

    fn signature(&self, account: &str, id: &str, expires: i64) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(format!("{account}\n{id}\n{expires}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The URL under `base` (scheme and authority the client used).
    pub fn url(&self, base: &str, account: &str, id: &str, now: i64) -> String {
        let expires = now + CODE_URL_TTL_SECONDS;
        let signature = self.signature(account, id, expires);
        format!("{base}/strato/code/{account}/{id}?Expires={expires}&Signature={signature}")
    }

    pub fn check(&self, account: &str, id: &str, expires: i64, signature: &str, now: i64) -> bool {
        let expected = self.signature(account, id, expires);
        now <= expires
            && !expected.is_empty()
            && constant_time_eq(expected.as_bytes(), signature.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize)]
pub struct DownloadQuery {
    #[serde(rename = "Expires")]
    expires: i64,
    #[serde(rename = "Signature")]
    signature: String,
}

/// Answers like S3 does for a presigned GET: the object, or 403 XML.
pub async fn download(
    State(state): State<Arc<ApiState>>,
    Path((account, id)): Path<(String, String)>,
    Query(query): Query<DownloadQuery>,
) -> Response {
    let now = chrono::Utc::now().timestamp();
    if !state
        .code_urls
        .check(&account, &id, query.expires, &query.signature, now)
    {
        return s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Request has expired or the signature is invalid",
        );
    }
    let store = state.code.clone();
    let read_id = id.clone();
    match tokio::task::spawn_blocking(move || store.read(&read_id)).await {
        Ok(Ok(bytes)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/zip".to_string()),
                (header::ETAG, format!("\"{id}\"")),
            ],
            Body::from(bytes),
        )
            .into_response(),
        _ => s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        ),
    }
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_url_verifies_until_it_expires() {
        let signer = CodeUrlSigner::new(b"k");
        let url = signer.url("http://h", "000000000000", "ab", 1000);
        let sig = url.split("Signature=").nth(1).unwrap();
        assert!(signer.check("000000000000", "ab", 1600, sig, 1600));
        assert!(!signer.check("000000000000", "ab", 1600, sig, 1601));
        assert!(!signer.check("111111111111", "ab", 1600, sig, 1000));
    }
}
