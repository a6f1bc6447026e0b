//! Receipt handles: which message, which lease of it, sealed so that nobody
//! can make one up.
//!
//! A handle is the message's key (unique in the database, never reused), the
//! lease generation it was issued for, and an HMAC-SHA256 tag over both and
//! the queue's name, in URL-safe base64. The key makes the lookup O(1); the
//! generation tells a stale handle (the message was received again since)
//! from a current one; the tag tells garbage, a handle of another queue, or a
//! forged one from a handle this engine issued.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of the database's receipt secret: HMAC-SHA256's block size, so
/// the key is used as is.
pub(crate) const SECRET_LEN: usize = 64;

const KEY_LEN: usize = 8;
const GENERATION_LEN: usize = 4;
const TAG_LEN: usize = 12;
const HANDLE_LEN: usize = KEY_LEN + GENERATION_LEN + TAG_LEN;

/// The lease a valid receipt handle names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    pub(crate) key: u64,
    pub(crate) generation: u32,
}

/// Seals and opens receipt handles with the database's secret.
pub(crate) struct ReceiptSealer {
    /// Keyed once; cloned for every handle.
    keyed: Hmac<Sha256>,
}

impl ReceiptSealer {
    pub(crate) fn new(secret: [u8; SECRET_LEN]) -> ReceiptSealer {
        ReceiptSealer {
            keyed: <Hmac<Sha256> as KeyInit>::new(&secret.into()),
        }
    }

    pub(crate) fn seal(&self, queue: &str, lease: Lease) -> String {
        let mut raw = [0u8; HANDLE_LEN];
        raw[..KEY_LEN].copy_from_slice(&lease.key.to_be_bytes());
        raw[KEY_LEN..KEY_LEN + GENERATION_LEN].copy_from_slice(&lease.generation.to_be_bytes());
        let tag = self.tag(queue, &raw[..KEY_LEN + GENERATION_LEN]);
        raw[KEY_LEN + GENERATION_LEN..].copy_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The lease a handle names, or None when it was not issued by this
    /// engine for this queue.
    pub(crate) fn open(&self, queue: &str, handle: &str) -> Option<Lease> {
        let raw = URL_SAFE_NO_PAD.decode(handle).ok()?;
        if raw.len() != HANDLE_LEN {
            return None;
        }
        let (payload, tag) = raw.split_at(KEY_LEN + GENERATION_LEN);
        let mut mac = self.mac(queue);
        mac.update(payload);
        mac.verify_truncated_left(tag).ok()?;
        let (key, generation) = payload.split_at(KEY_LEN);
        Some(Lease {
            key: u64::from_be_bytes(key.try_into().ok()?),
            generation: u32::from_be_bytes(generation.try_into().ok()?),
        })
    }

    fn tag(&self, queue: &str, payload: &[u8]) -> [u8; 32] {
        let mut mac = self.mac(queue);
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }

    fn mac(&self, queue: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        // The queue name is length-prefixed so that no (queue, payload) pair
        // can be confused with another.
        mac.update(&(queue.len() as u64).to_be_bytes());
        mac.update(queue.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> ReceiptSealer {
        ReceiptSealer::new([7; SECRET_LEN])
    }

    #[test]
    fn a_sealed_handle_opens_to_its_lease() {
        let lease = Lease {
            key: 42,
            generation: 7,
        };
        let handle = sealer().seal("q", lease);
        assert_eq!(sealer().open("q", &handle), Some(lease));
    }

    #[test]
    fn a_handle_of_another_queue_does_not_open() {
        let handle = sealer().seal(
            "q",
            Lease {
                key: 1,
                generation: 1,
            },
        );
        assert_eq!(sealer().open("other", &handle), None);
    }

    #[test]
    fn a_tampered_handle_does_not_open() {
        let handle = sealer().seal(
            "q",
            Lease {
                key: 1,
                generation: 1,
            },
        );
        let mut raw = URL_SAFE_NO_PAD.decode(&handle).unwrap();
        raw[11] ^= 1;
        assert_eq!(sealer().open("q", &URL_SAFE_NO_PAD.encode(raw)), None);
        assert_eq!(sealer().open("q", "garbage"), None);
        assert_eq!(sealer().open("q", ""), None);
    }
}
