//! AWS's event-stream framing (`application/vnd.amazon.eventstream`), the
//! encoding of InvokeWithResponseStream's answer.
//!
//! A message is a 12-byte prelude (total length, headers length, both
//! big-endian `u32`, then the CRC32 of those 8 bytes), the headers, the
//! payload, and the CRC32 of everything before it. A header is its name's
//! length (`u8`), the name, a value type (7: string), the value's length
//! (big-endian `u16`) and the value. The SDKs' decoders (botocore's
//! `eventstream.py` among them) check both CRCs and every length, so a
//! frame that is off by one byte ends the client's stream.

use bytes::{BufMut, Bytes, BytesMut};

/// The prelude: total length, headers length, prelude CRC.
const PRELUDE_BYTES: usize = 12;
/// The message CRC after the payload.
const MESSAGE_CRC_BYTES: usize = 4;
/// A header value of type string.
const HEADER_TYPE_STRING: u8 = 7;

/// A length beyond what the format can say.
#[derive(Debug, thiserror::Error)]
pub enum EventStreamError {
    #[error("event-stream header name {0:?} is longer than 255 bytes")]
    HeaderName(String),
    #[error("event-stream header {0:?} has a value longer than 65535 bytes")]
    HeaderValue(String),
    #[error("event-stream message of {0} bytes does not fit a u32 length")]
    Message(usize),
}

/// One event-stream message with string headers.
pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Result<Bytes, EventStreamError> {
    let mut encoded_headers = BytesMut::new();
    for (name, value) in headers {
        let name_len = u8::try_from(name.len())
            .map_err(|_| EventStreamError::HeaderName((*name).to_string()))?;
        let value_len = u16::try_from(value.len())
            .map_err(|_| EventStreamError::HeaderValue((*name).to_string()))?;
        encoded_headers.put_u8(name_len);
        encoded_headers.put_slice(name.as_bytes());
        encoded_headers.put_u8(HEADER_TYPE_STRING);
        encoded_headers.put_u16(value_len);
        encoded_headers.put_slice(value.as_bytes());
    }
    let total = PRELUDE_BYTES + encoded_headers.len() + payload.len() + MESSAGE_CRC_BYTES;
    let total_len = u32::try_from(total).map_err(|_| EventStreamError::Message(total))?;
    let headers_len =
        u32::try_from(encoded_headers.len()).map_err(|_| EventStreamError::Message(total))?;
    let mut out = BytesMut::with_capacity(total);
    out.put_u32(total_len);
    out.put_u32(headers_len);
    let prelude_crc = crc32fast::hash(&out);
    out.put_u32(prelude_crc);
    out.put_slice(&encoded_headers);
    out.put_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.put_u32(message_crc);
    Ok(out.freeze())
}

/// A `PayloadChunk` event: bytes of the function's response.
pub fn payload_chunk(chunk: &[u8]) -> Result<Bytes, EventStreamError> {
    message(
        &[
            (":event-type", "PayloadChunk"),
            (":content-type", "application/octet-stream"),
            (":message-type", "event"),
        ],
        chunk,
    )
}

/// The `InvokeComplete` event that ends the stream, with the error the
/// function ended with and the log tail when they exist.
pub fn invoke_complete(
    error: Option<(&str, &str)>,
    log_result: Option<&str>,
) -> Result<Bytes, EventStreamError> {
    let mut body = serde_json::Map::new();
    if let Some((code, details)) = error {
        body.insert("ErrorCode".into(), code.into());
        body.insert("ErrorDetails".into(), details.into());
    }
    if let Some(log) = log_result {
        body.insert("LogResult".into(), log.into());
    }
    message(
        &[
            (":event-type", "InvokeComplete"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        serde_json::Value::Object(body).to_string().as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder written from the format's description, checking what the
    /// SDKs check: both CRCs and every length.
    fn decode(frame: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
        let u32_at = |at: usize| u32::from_be_bytes(frame[at..at + 4].try_into().unwrap());
        let total = u32_at(0) as usize;
        let headers_len = u32_at(4) as usize;
        assert_eq!(total, frame.len());
        assert_eq!(u32_at(8), crc32fast::hash(&frame[..8]), "prelude CRC");
        assert_eq!(
            u32_at(total - 4),
            crc32fast::hash(&frame[..total - 4]),
            "message CRC"
        );
        let mut headers = Vec::new();
        let mut at = PRELUDE_BYTES;
        while at < PRELUDE_BYTES + headers_len {
            let name_len = frame[at] as usize;
            let name = String::from_utf8(frame[at + 1..at + 1 + name_len].to_vec()).unwrap();
            at += 1 + name_len;
            assert_eq!(frame[at], HEADER_TYPE_STRING);
            let value_len = u16::from_be_bytes([frame[at + 1], frame[at + 2]]) as usize;
            let value = String::from_utf8(frame[at + 3..at + 3 + value_len].to_vec()).unwrap();
            at += 3 + value_len;
            headers.push((name, value));
        }
        assert_eq!(at, PRELUDE_BYTES + headers_len);
        (headers, frame[at..total - 4].to_vec())
    }

    #[test]
    fn crc32_is_the_ieee_polynomial_the_sdks_check() {
        // The standard check value of CRC-32/ISO-HDLC (zlib's crc32).
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn an_empty_message_matches_the_published_vector() {
        // aws-c-event-stream's and botocore's "empty message" vector.
        let frame = message(&[], b"").unwrap();
        assert_eq!(
            frame.as_ref(),
            &[
                0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98,
                0xc8, 0xff
            ]
        );
    }

    #[test]
    fn a_payload_chunk_matches_a_vector_botocore_decodes() {
        // Built with Python's zlib.crc32 and struct, and decoded (both CRCs
        // checked) by botocore's EventStreamBuffer.
        let frame = payload_chunk(b"hi").unwrap();
        assert_eq!(
            hex::encode(&frame),
            concat!(
                "0000006c0000005ab25efdcf0b3a6576656e742d7479706507000c5061796c6f61644368756e6b",
                "0d3a636f6e74656e742d747970650700186170706c69636174696f6e2f6f637465742d73747265",
                "616d0d3a6d6573736167652d747970650700056576656e7468691162e469"
            )
        );
    }

    #[test]
    fn a_payload_chunk_carries_aws_headers_and_the_bytes() {
        let (headers, payload) = decode(&payload_chunk(b"hello \x00 world").unwrap());
        assert_eq!(
            headers,
            vec![
                (":event-type".to_string(), "PayloadChunk".to_string()),
                (
                    ":content-type".to_string(),
                    "application/octet-stream".to_string()
                ),
                (":message-type".to_string(), "event".to_string()),
            ]
        );
        assert_eq!(payload, b"hello \x00 world");
    }

    #[test]
    fn invoke_complete_carries_only_the_members_that_exist() {
        let (headers, payload) = decode(&invoke_complete(None, None).unwrap());
        assert_eq!(headers[0].1, "InvokeComplete");
        assert_eq!(headers[1].1, "application/json");
        assert_eq!(payload, b"{}");
        let (_, payload) =
            decode(&invoke_complete(Some(("Error", "boom")), Some("bG9ncw==")).unwrap());
        let body: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"ErrorCode": "Error", "ErrorDetails": "boom", "LogResult": "bG9ncw=="})
        );
    }

    #[test]
    fn lengths_that_do_not_fit_are_errors() {
        let long_name = "n".repeat(256);
        assert!(matches!(
            message(&[(&long_name, "v")], b""),
            Err(EventStreamError::HeaderName(_))
        ));
        let long_value = "v".repeat(65_536);
        assert!(matches!(
            message(&[("n", &long_value)], b""),
            Err(EventStreamError::HeaderValue(_))
        ));
    }
}
