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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{AttributeValue, MessageAttribute};

    fn string(name: &str, data_type: &str, value: &str) -> MessageAttribute {
        MessageAttribute {
            name: name.into(),
            data_type: data_type.into(),
            value: AttributeValue::String(value.into()),
        }
    }

    #[test]
    fn body_digest_is_hex_md5() {
        // AWS's recorded answer for the body "a".
        assert_eq!(of_body(b"a"), "0cc175b9c0f1b6a831c399e269772661");
    }

    /// The vectors published with the npm package
    /// `aws-md5-of-message-attributes` (which reproduces the SDKs'
    /// verification), including a custom type label and a binary value.
    #[test]
    fn attribute_digests_match_published_vectors() {
        let text = string("attribName1", "String", "attribValue 1");
        let number = string(
            "customNumberTypeAttrib",
            "Number.float",
            "4563442423554324324264524243.32543234",
        );
        let binary = MessageAttribute {
            name: "binaryAttribute".into(),
            data_type: "Binary".into(),
            value: AttributeValue::Binary(b"Hello binary world!".to_vec()),
        };
        assert_eq!(
            of_attributes(std::slice::from_ref(&text)),
            "19e27d4e946b072f3f58da80d94fd778"
        );
        assert_eq!(
            of_attributes(std::slice::from_ref(&number)),
            "9fe1b90bbd9965bdf77bac517c7d2495"
        );
        assert_eq!(
            of_attributes(std::slice::from_ref(&binary)),
            "31a92b15d92f8db860eda32aceb656c3"
        );
        // Order given does not matter: attributes are sorted by name.
        assert_eq!(
            of_attributes(&[number, binary, text]),
            "c932db14a896c663f83c260297d594ff"
        );
    }
}
