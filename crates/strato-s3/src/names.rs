//! Bucket name rules, key limits, and the two encodings S3 applies to keys:
//! `encoding-type=url` in listings, and the form encoding of keys in event
//! records.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The longest key S3 takes, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// S3's general purpose bucket naming rules: 3–63 characters of lower-case
/// letters, digits, dots and hyphens, starting and ending with a letter or
/// digit, no two adjacent dots, not an IP address.
pub fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if !(3..=63).contains(&bytes.len()) {
        return false;
    }
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !edge_ok(first) || !edge_ok(last) {
        return false;
    }
    if !bytes.iter().all(|&b| edge_ok(b) || b == b'.' || b == b'-') {
        return false;
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return false;
    }
    name.parse::<std::net::Ipv4Addr>().is_err()
}

/// Characters kept as they are by `encoding-type=url` (and in event keys).
const KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Characters kept in event keys: as above, but `+` stands for a space.
const FORM: &AsciiSet = &KEEP.add(b'+');

/// A key (or prefix) as listings answer it with `encoding-type=url`.
pub fn url_encode(key: &str) -> String {
    utf8_percent_encode(key, KEEP).to_string()
}

/// A key as event records carry it: form encoding, a space becomes `+`.
pub fn form_encode(key: &str) -> String {
    key.split(' ')
        .map(|part| utf8_percent_encode(part, FORM).to_string())
        .collect::<Vec<_>>()
        .join("+")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_the_rules() {
        for good in ["abc", "my-bucket.data", "a1b2", "x".repeat(63).as_str()] {
            assert!(valid_bucket_name(good), "{good}");
        }
        for bad in [
            "ab",
            "Upper",
            "-start",
            "end-",
            "a..b",
            "under_score",
            "192.168.1.1",
            "x".repeat(64).as_str(),
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn listing_keys_are_percent_encoded_but_slashes_stay() {
        assert_eq!(url_encode("a b/c+d&é"), "a%20b/c%2Bd%26%C3%A9");
    }

    #[test]
    fn event_keys_are_form_encoded() {
        assert_eq!(form_encode("uploads/a b+c.jpg"), "uploads/a+b%2Bc.jpg");
        assert_eq!(form_encode("x=1&y"), "x%3D1%26y");
    }
}
