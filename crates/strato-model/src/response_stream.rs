//! What a streamed response hands its caller while the function runs
//! (InvokeWithResponseStream, function URLs in `RESPONSE_STREAM` mode).
//! Here rather than in the engine so the gateway, which knows nothing of
//! the engine, can take a stream through its `LambdaInvoker`.

use bytes::Bytes;

/// In order: `Started` once, when the runtime begins a streamed response,
/// then its chunks as they arrive.
#[derive(Debug)]
pub enum StreamedPart {
    /// The runtime opened a streamed response with this `Content-Type`
    /// ([`HTTP_INTEGRATION_CONTENT_TYPE`] when the function gave HTTP
    /// metadata, as Node's `awslambda.HttpResponseStream.from` does).
    Started {
        content_type: Option<String>,
    },
    Chunk(Bytes),
}

/// The content type of a streamed response that starts with HTTP metadata
/// (JSON: `statusCode`, `headers`, `cookies`) ended by
/// [`HTTP_METADATA_DELIMITER`], then the body.
pub const HTTP_INTEGRATION_CONTENT_TYPE: &str =
    "application/vnd.awslambda.http-integration-response";

/// Ends the HTTP metadata of a streamed response: eight zero bytes.
pub const HTTP_METADATA_DELIMITER: [u8; 8] = [0; 8];
