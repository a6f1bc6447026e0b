//! One log line per request, and the request id every answer carries.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// Tags the response with `x-amzn-RequestId` and logs method, path, status
/// and latency.
pub async fn log_and_tag(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .entry("x-amzn-RequestId")
            .or_insert(value);
    }
    tracing::info!(
        target: "strato::request",
        %method,
        path,
        status = response.status().as_u16(),
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        request_id,
    );
    response
}
