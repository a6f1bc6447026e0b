//! The ways a request can fail authentication, each mapped to the code, HTTP
//! status and text AWS answers with, so the server can reply byte-for-byte as
//! AWS would and SDK error handling (which dispatches on the code) behaves the
//! same against Strato as against AWS.

use http::StatusCode;

/// Why a request was not authenticated.
///
/// The `Display` text is AWS's message for the failure, identical to
/// [`SigV4Error::message`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor presigned-URL query parameters.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,

    /// The authentication data is malformed or incomplete (missing
    /// `Credential=`, an unparsable date, a malformed credential scope...).
    /// The message is AWS's, naming what is wrong.
    #[error("{message}")]
    IncompleteSignature {
        /// AWS's explanation.
        message: String,
    },

    /// The signature the client sent is not the one computed from the request
    /// and the secret key.
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")]
    SignatureDoesNotMatch,

    /// The request was signed more than the allowed clock skew before `now`.
    #[error("Signature expired: {signed_at} is now earlier than {earliest} ({now} - 5 min.)")]
    SignatureExpired {
        /// The request's timestamp, `yyyyMMdd'T'HHmmss'Z'`.
        signed_at: String,
        /// The oldest timestamp still accepted, same format.
        earliest: String,
        /// The server's clock, same format.
        now: String,
    },

    /// The request was signed more than the allowed clock skew after `now`.
    #[error(
        "Signature not yet current: {signed_at} is still later than {latest} ({now} + 5 min.)"
    )]
    SignatureNotYetCurrent {
        /// The request's timestamp, `yyyyMMdd'T'HHmmss'Z'`.
        signed_at: String,
        /// The newest timestamp still accepted, same format.
        latest: String,
        /// The server's clock, same format.
        now: String,
    },

    /// The signature is well formed but scoped wrongly (terminator, date,
    /// region or service of the credential scope, or `host` left unsigned).
    /// AWS reports these as `InvalidSignatureException` with a specific text.
    #[error("{message}")]
    InvalidScope {
        /// AWS's explanation.
        message: String,
    },

    /// The access key id is not known to the credential store.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient {
        /// The unknown access key id, for the server's logs.
        access_key_id: String,
    },

    /// A presigned URL used after `X-Amz-Date + X-Amz-Expires`.
    #[error("Request has expired")]
    RequestExpired,
}

impl SigV4Error {
    /// The AWS error code, as sent in `x-amzn-ErrorType` / `__type` by JSON
    /// and REST-JSON services such as Lambda.
    pub fn aws_error_code(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::IncompleteSignature { .. } => "IncompleteSignatureException",
            Self::SignatureDoesNotMatch
            | Self::SignatureExpired { .. }
            | Self::SignatureNotYetCurrent { .. }
            | Self::InvalidScope { .. } => "InvalidSignatureException",
            Self::UnrecognizedClient { .. } => "UnrecognizedClientException",
            Self::RequestExpired => "AccessDeniedException",
        }
    }

    /// The HTTP status AWS answers with: 400 for a malformed signature
    /// (AWS's common-errors table lists `IncompleteSignature` as 400), 403 for
    /// everything that is a refusal of a well-formed request.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::IncompleteSignature { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::FORBIDDEN,
        }
    }

    /// AWS's message text for this failure.
    pub fn message(&self) -> String {
        self.to_string()
    }

    pub(crate) fn incomplete(message: impl Into<String>) -> Self {
        Self::IncompleteSignature {
            message: message.into(),
        }
    }

    pub(crate) fn scope(message: impl Into<String>) -> Self {
        Self::InvalidScope {
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_text_is_aws_text() {
        assert_eq!(
            SigV4Error::SignatureDoesNotMatch.message(),
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
        );
    }

    #[test]
    fn codes_and_statuses() {
        let cases = [
            (
                SigV4Error::MissingAuthenticationToken,
                "MissingAuthenticationTokenException",
                403,
            ),
            (
                SigV4Error::incomplete("x"),
                "IncompleteSignatureException",
                400,
            ),
            (
                SigV4Error::SignatureDoesNotMatch,
                "InvalidSignatureException",
                403,
            ),
            (SigV4Error::scope("x"), "InvalidSignatureException", 403),
            (
                SigV4Error::UnrecognizedClient {
                    access_key_id: "AKID".into(),
                },
                "UnrecognizedClientException",
                403,
            ),
            (SigV4Error::RequestExpired, "AccessDeniedException", 403),
        ];
        for (err, code, status) in cases {
            assert_eq!(err.aws_error_code(), code);
            assert_eq!(err.http_status().as_u16(), status);
        }
        assert_eq!(
            SigV4Error::UnrecognizedClient {
                access_key_id: "AKID".into()
            }
            .message(),
            "The security token included in the request is invalid."
        );
        assert_eq!(
            SigV4Error::MissingAuthenticationToken.message(),
            "Missing Authentication Token"
        );
    }
}
