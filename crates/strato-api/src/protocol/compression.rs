//! Request bodies clients compress before signing them.

use axum::body::Bytes;
use axum::http::HeaderMap;

use super::ServiceError;

/// A body the client compressed (botocore gzips CloudWatch PutMetricData
/// bodies past 10 KiB and says `Content-Encoding: gzip`), inflated up to
/// the request size limit; any other body as it came.
pub(super) fn inflate(headers: &HeaderMap, body: Bytes) -> Result<Bytes, ServiceError> {
    use std::io::Read as _;
    let gzip = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|e| e.split(',').any(|p| p.trim().eq_ignore_ascii_case("gzip")));
    if !gzip {
        return Ok(body);
    }
    let limit = crate::auth::MAX_REQUEST_BODY;
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut inflated)
        .map_err(|e| {
            ServiceError::new(
                "SerializationException",
                format!("Could not decompress the gzip request body: {e}"),
            )
        })?;
    if inflated.len() > limit {
        let mut e = ServiceError::new(
            "RequestEntityTooLargeException",
            format!("Request must be smaller than {limit} bytes once decompressed."),
        );
        e.status = 413;
        return Err(e);
    }
    Ok(Bytes::from(inflated))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn gzip_bodies_are_inflated_and_others_pass_through() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(b"{\"Namespace\":\"Mine\"}").unwrap();
        let gzipped = Bytes::from(encoder.finish().unwrap());
        let mut headers = HeaderMap::new();
        headers.insert("content-encoding", "gzip".parse().unwrap());
        assert_eq!(
            inflate(&headers, gzipped.clone()).unwrap(),
            Bytes::from_static(b"{\"Namespace\":\"Mine\"}")
        );
        assert_eq!(
            inflate(&HeaderMap::new(), gzipped.clone()).unwrap(),
            gzipped
        );
        let broken = inflate(&headers, Bytes::from_static(b"not gzip")).unwrap_err();
        assert_eq!(broken.code, "SerializationException");
    }
}
