//! The additional checksums S3 verifies and stores (CRC32, CRC32C, CRC64NVME,
//! SHA-1, SHA-256): which one a request asks for (a header, the SDK's
//! algorithm header, or a trailer named in `x-amz-trailer`), computing it
//! while the body streams to disk, and AWS's answer when it does not match.

use http::HeaderMap;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::Checksum as _;
use s3s::{S3Error, S3ErrorCode};

/// One checksum algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Crc32,
        Algorithm::Crc32c,
        Algorithm::Crc64Nvme,
        Algorithm::Sha1,
        Algorithm::Sha256,
    ];

    /// The name S3 uses (`CRC32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64Nvme => "CRC64NVME",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
        }
    }

    /// `x-amz-checksum-crc32`, ...
    pub fn header(self) -> String {
        format!("x-amz-checksum-{}", self.name().to_ascii_lowercase())
    }

    pub fn parse(name: &str) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Checksums that are a whole-object function of the bytes (CRCs) may
    /// be `FULL_OBJECT`; multipart SHA checksums are always `COMPOSITE`.
    pub fn is_crc(self) -> bool {
        matches!(
            self,
            Algorithm::Crc32 | Algorithm::Crc32c | Algorithm::Crc64Nvme
        )
    }
}

/// Computes at most one checksum.
pub struct Hasher {
    algorithm: Option<Algorithm>,
    inner: ChecksumHasher,
}

impl Hasher {
    pub fn new(algorithm: Option<Algorithm>) -> Hasher {
        let mut inner = ChecksumHasher::default();
        match algorithm {
            Some(Algorithm::Crc32) => inner.crc32 = Some(s3s::crypto::Crc32::new()),
            Some(Algorithm::Crc32c) => inner.crc32c = Some(s3s::crypto::Crc32c::new()),
            Some(Algorithm::Crc64Nvme) => inner.crc64nvme = Some(s3s::crypto::Crc64Nvme::new()),
            Some(Algorithm::Sha1) => inner.sha1 = Some(s3s::crypto::Sha1::new()),
            Some(Algorithm::Sha256) => inner.sha256 = Some(s3s::crypto::Sha256::new()),
            None => {}
        }
        Hasher { algorithm, inner }
    }

    pub fn update(&mut self, data: &[u8]) {
        if self.algorithm.is_some() {
            self.inner.update(data);
        }
    }

    /// The algorithm and its base64 value.
    pub fn finish(self) -> Option<(Algorithm, String)> {
        let algorithm = self.algorithm?;
        let sum = self.inner.finalize();
        let value = match algorithm {
            Algorithm::Crc32 => sum.checksum_crc32,
            Algorithm::Crc32c => sum.checksum_crc32c,
            Algorithm::Crc64Nvme => sum.checksum_crc64nvme,
            Algorithm::Sha1 => sum.checksum_sha1,
            Algorithm::Sha256 => sum.checksum_sha256,
        }?;
        Some((algorithm, value))
    }
}

/// What a request says about its checksum: the algorithm to compute and,
/// when sent as a header, the value to expect (a trailer's value is read
/// once the body has been).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    pub algorithm: Algorithm,
    pub expected: Option<String>,
}

/// Reads the checksum a request asks for from its headers.
pub fn requested(headers: &HeaderMap) -> Result<Option<Requested>, S3Error> {
    let sent: Vec<(Algorithm, String)> = Algorithm::ALL
        .into_iter()
        .filter_map(|a| {
            headers
                .get(a.header())
                .and_then(|v| v.to_str().ok())
                .map(|v| (a, v.to_string()))
        })
        .collect();
    if sent.len() > 1 {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        ));
    }
    if let Some((algorithm, value)) = sent.into_iter().next() {
        if !valid_encoding(algorithm, &value) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!("Value for {} header is invalid.", algorithm.header()),
            ));
        }
        return Ok(Some(Requested {
            algorithm,
            expected: Some(value),
        }));
    }
    let trailer = headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.trim().strip_prefix("x-amz-checksum-"))
        .and_then(Algorithm::parse);
    if let Some(algorithm) = trailer {
        return Ok(Some(Requested {
            algorithm,
            expected: None,
        }));
    }
    let sdk = headers
        .get("x-amz-sdk-checksum-algorithm")
        .and_then(|v| v.to_str().ok());
    match sdk {
        Some(name) => match Algorithm::parse(name) {
            Some(algorithm) => Ok(Some(Requested {
                algorithm,
                expected: None,
            })),
            None => Err(unsupported()),
        },
        None => Ok(None),
    }
}

/// AWS's answer to an algorithm it does not know.
pub fn unsupported() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidRequest,
        "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]",
    )
}

fn valid_encoding(algorithm: Algorithm, value: &str) -> bool {
    use base64::Engine as _;
    let want = match algorithm {
        Algorithm::Crc32 | Algorithm::Crc32c => 4,
        Algorithm::Crc64Nvme => 8,
        Algorithm::Sha1 => 20,
        Algorithm::Sha256 => 32,
    };
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .is_ok_and(|bytes| bytes.len() == want)
}

/// Compares a computed checksum with the one the client sent.
pub fn verify(algorithm: Algorithm, computed: &str, expected: &str) -> Result<(), S3Error> {
    if computed == expected {
        Ok(())
    } else {
        Err(S3Error::with_message(
            S3ErrorCode::BadDigest,
            format!(
                "The {} you specified did not match the calculated checksum.",
                algorithm.name()
            ),
        ))
    }
}

/// Compares the body's MD5 with `Content-MD5`.
pub fn verify_md5(md5: &[u8; 16], content_md5: Option<&str>) -> Result<(), S3Error> {
    use base64::Engine as _;
    match content_md5 {
        Some(sent) if base64::engine::general_purpose::STANDARD.encode(md5) != sent => {
            Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checksum(algorithm: Algorithm, data: &[u8]) -> String {
        let mut h = Hasher::new(Some(algorithm));
        h.update(data);
        h.finish().unwrap().1
    }

    #[test]
    fn checksums_match_known_values() {
        // Values the AWS documentation and SDKs give for "hello world".
        assert_eq!(checksum(Algorithm::Crc32, b"hello world"), "DUoRhQ==");
        assert_eq!(checksum(Algorithm::Crc32c, b"hello world"), "yZRlqg==");
        assert_eq!(
            checksum(Algorithm::Sha256, b"hello world"),
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
        );
        assert_eq!(
            checksum(Algorithm::Sha1, b"hello world"),
            "Kq5sNclPz7QV2+lfQIuc6R7oRu0="
        );
        assert_eq!(checksum(Algorithm::Crc64Nvme, b"hello world").len(), 12);
    }

    #[test]
    fn the_header_names_the_algorithm_and_value() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-checksum-crc32", "DUoRhQ==".parse().unwrap());
        assert_eq!(
            requested(&headers).unwrap(),
            Some(Requested {
                algorithm: Algorithm::Crc32,
                expected: Some("DUoRhQ==".into())
            })
        );
    }

    #[test]
    fn a_trailer_names_the_algorithm_only() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-trailer", "x-amz-checksum-crc32c".parse().unwrap());
        assert_eq!(
            requested(&headers).unwrap(),
            Some(Requested {
                algorithm: Algorithm::Crc32c,
                expected: None
            })
        );
    }

    #[test]
    fn a_malformed_value_is_invalid_request() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-checksum-sha256", "abc".parse().unwrap());
        let err = requested(&headers).unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::InvalidRequest);
    }

    #[test]
    fn a_wrong_value_is_bad_digest() {
        let err = verify(Algorithm::Crc32, "DUoRhQ==", "AAAAAA==").unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::BadDigest);
        assert_eq!(
            err.message(),
            Some("The CRC32 you specified did not match the calculated checksum.")
        );
    }
}
