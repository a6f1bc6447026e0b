//! S3 on the one endpoint (DESIGN §5: S3 is what remains). A request goes
//! to S3 when its host is virtual-hosted style (`{bucket}.s3.localhost`) or
//! it is signed for the `s3` service (header or presigned query). It is
//! handed over before Strato's own SigV4 check, which buffers bodies: S3
//! verifies the signature itself (with the same accounts) while the body
//! streams, chunk signatures and trailers included.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::ApiState;

/// Whether a request is for S3.
pub fn is_s3_request(request: &Request) -> bool {
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    if host.and_then(strato_s3::virtual_bucket).is_some() {
        return true;
    }
    if signed_with_sigv2(request) {
        return true;
    }
    let parts = strato_sigv4::RequestParts {
        method: request.method(),
        uri: request.uri(),
        headers: request.headers(),
    };
    strato_sigv4::credential_scope(&parts).is_some_and(|s| s.service == strato_s3::SIGNING_NAME)
}

/// S3 alone still takes AWS's older signature (botocore presigns S3 URLs
/// with it by default): `Authorization: AWS key:signature`, or the
/// `AWSAccessKeyId` and `Signature` query parameters.
fn signed_with_sigv2(request: &Request) -> bool {
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.starts_with("AWS "));
    let query = request.uri().query().is_some_and(|q| {
        q.split('&').any(|p| p.starts_with("AWSAccessKeyId="))
            && q.split('&').any(|p| p.starts_with("Signature="))
    });
    header || query
}

/// Middleware: S3 requests go to S3 (and the unsigned CORS preflights a
/// browser sends for an existing bucket), the rest on through the router.
pub async fn divert(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    if !is_s3_request(&request) && !state.s3.is_preflight(&request) {
        return next.run(request).await;
    }
    // A key `strato accounts` created in another process is loaded as
    // for the rest of Strato; IAM's conditions get the connection.
    if let Some(key) = access_key(&request) {
        state.accounts.ensure_known(&key).await;
    }
    let connection =
        crate::authorize::connection(request.uri(), request.headers(), request.extensions());
    let mut request = request.map(s3s::Body::http_body_unsync);
    request.extensions_mut().insert(connection);
    state.s3.call(request).await.map(axum::body::Body::new)
}

/// The access key a request is signed with (SigV4, or SigV2's
/// `Authorization: AWS key:signature` or `AWSAccessKeyId` query).
fn access_key(request: &Request) -> Option<String> {
    let parts = strato_sigv4::RequestParts {
        method: request.method(),
        uri: request.uri(),
        headers: request.headers(),
    };
    if let Some(scope) = strato_sigv4::credential_scope(&parts) {
        return Some(scope.access_key_id);
    }
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("AWS "))
        .and_then(|h| h.split_once(':'))
        .map(|(key, _)| key.to_string());
    header.or_else(|| {
        request.uri().query()?.split('&').find_map(|pair| {
            let key = pair.strip_prefix("AWSAccessKeyId=")?;
            Some(
                percent_encoding::percent_decode_str(key)
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        })
    })
}
