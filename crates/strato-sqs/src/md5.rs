//! The MD5 digests SQS returns, computed exactly as AWS computes them: the
//! Java and JavaScript SDKs recompute them and reject a mismatch.

use md5::{Digest, Md5};

use crate::message::{AttributeValue, MessageAttribute};

/// `MD5OfMessageBody`: the hex MD5 of the body's UTF-8 bytes.
pub fn of_body(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// `MD5OfMessageAttributes` / `MD5OfMessageSystemAttributes`: AWS's binary
/// encoding of the attributes, sorted by name. Per attribute: the name and
/// the data type, each as a 4-byte big-endian length and its bytes, one
/// transport byte (1 for string values, 2 for binary ones), then the value
/// as length and bytes.
pub fn of_attributes(attributes: &[MessageAttribute]) -> String {
    let mut sorted: Vec<&MessageAttribute> = attributes.iter().collect();
    sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let mut md5 = Md5::new();
    for attribute in sorted {
        update_with_length(&mut md5, attribute.name.as_bytes());
        update_with_length(&mut md5, attribute.data_type.as_bytes());
        match &attribute.value {
            AttributeValue::String(text) => {
                md5.update([1u8]);
                update_with_length(&mut md5, text.as_bytes());
            }
            AttributeValue::Binary(bytes) => {
                md5.update([2u8]);
                update_with_length(&mut md5, bytes);
            }
        }
    }
    hex::encode(md5.finalize())
}

fn update_with_length(md5: &mut Md5, bytes: &[u8]) {
    // Attribute parts are bounded by the message size (1 MiB), far below 4 GiB.
    let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    md5.update(length.to_be_bytes());
    md5.update(bytes);
}
