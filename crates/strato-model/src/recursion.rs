//! Recursive loop detection: the lineage AWS carries in the X-Ray trace
//! header (`X-Amzn-Trace-Id`, `_X_AMZN_TRACE_ID` inside a function,
//! `AWSTraceHeader` on an SQS message) and the count that stops a loop.
//!
//! Every invocation runs with a trace header whose `Lineage` member counts,
//! per function, how often that function has run in the chain of requests
//! that led to it: `Lineage=<hash>:<count>|<hash>:<count>`. The AWS SDKs in a
//! function send the header on their calls back, so the next invocation
//! continues the chain; an event source that carries the header (an SQS
//! message's `AWSTraceHeader`) continues it the same way by calling
//! [`next_hop`] with it.

use sha2::{Digest, Sha256};

/// How many times one function may run in one chain of requests: the next
/// invocation is a recursive loop (AWS stops "after approximately 16").
pub const MAX_RECURSIVE_INVOCATIONS: u32 = 16;

/// The trace header one invocation runs with, and how many times its
/// function has run in the chain, this invocation included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub trace_header: String,
    pub count: u32,
}

impl Hop {
    /// True when this invocation is beyond [`MAX_RECURSIVE_INVOCATIONS`].
    pub fn is_recursive_loop(&self) -> bool {
        self.count > MAX_RECURSIVE_INVOCATIONS
    }
}

/// The lineage key of a function: 8 hex digits of the SHA-256 of its
/// unqualified ARN, so every version and alias counts as the function.
fn lineage_key(function_arn: &str) -> String {
    hex::encode(&Sha256::digest(function_arn.as_bytes())[..4])
}

fn random_hex(digits: usize) -> String {
    let mut hex = uuid::Uuid::new_v4().simple().to_string();
    hex.truncate(digits);
    hex
}

/// `%XX` escapes decoded: botocore percent-encodes the header it forwards
/// (the lineage's `|` arrives as `%7C`). Anything that is not a valid
/// escape is kept as it is.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The hop an invocation of `function_arn` (unqualified) makes from the
/// trace header it was requested with (`None` starts a new chain): the
/// header keeps its `Root` and `Sampled`, gets a new `Parent`, and its
/// lineage counts this invocation. A header that does not parse starts a
/// new chain, as a missing one does.
pub fn next_hop(incoming: Option<&str>, function_arn: &str) -> Hop {
    let mut root = None;
    let mut sampled = None;
    let mut lineage: Vec<(String, u32)> = Vec::new();
    let incoming = percent_decoded(incoming.unwrap_or_default());
    for member in incoming.split(';') {
        let Some((key, value)) = member.trim().split_once('=') else {
            continue;
        };
        match key {
            "Root" if !value.is_empty() => root = Some(value.to_string()),
            "Sampled" => sampled = Some(value.to_string()),
            "Lineage" => {
                lineage = value
                    .split('|')
                    .filter_map(|entry| {
                        let (hash, count) = entry.rsplit_once(':')?;
                        Some((hash.to_string(), count.parse().ok()?))
                    })
                    .collect();
            }
            _ => {}
        }
    }
    let key = lineage_key(function_arn);
    let count = match lineage.iter_mut().find(|(hash, _)| *hash == key) {
        Some((_, count)) => {
            *count = count.saturating_add(1);
            *count
        }
        None => {
            lineage.push((key, 1));
            1
        }
    };
    let root = root.unwrap_or_else(|| {
        format!(
            "1-{:08x}-{}",
            chrono::Utc::now().timestamp(),
            random_hex(24)
        )
    });
    let lineage: Vec<String> = lineage
        .iter()
        .map(|(hash, count)| format!("{hash}:{count}"))
        .collect();
    Hop {
        trace_header: format!(
            "Root={root};Parent={};Sampled={};Lineage={}",
            random_hex(16),
            sampled.as_deref().unwrap_or("0"),
            lineage.join("|")
        ),
        count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: &str = "arn:aws:lambda:us-east-1:111111111111:function:f";
    const G: &str = "arn:aws:lambda:us-east-1:111111111111:function:g";

    #[test]
    fn a_new_chain_counts_one_and_keeps_nothing_else() {
        let hop = next_hop(None, F);
        assert_eq!(hop.count, 1);
        assert!(hop.trace_header.starts_with("Root=1-"));
        assert!(hop
            .trace_header
            .ends_with(&format!("Lineage={}:1", lineage_key(F))));
    }

    #[test]
    fn the_chain_keeps_its_root_and_counts_per_function() {
        let first = next_hop(Some("Root=1-abc-def;Parent=1;Sampled=1"), F);
        let second = next_hop(Some(&first.trace_header), G);
        let third = next_hop(Some(&second.trace_header), F);
        assert_eq!((first.count, second.count, third.count), (1, 1, 2));
        assert!(third.trace_header.starts_with("Root=1-abc-def;"));
        assert!(third.trace_header.contains(";Sampled=1;"));
    }

    #[test]
    fn the_seventeenth_invocation_is_a_loop() {
        let mut header = None;
        let mut hops = Vec::new();
        for _ in 0..17 {
            let hop = next_hop(header.as_deref(), F);
            header = Some(hop.trace_header.clone());
            hops.push(hop.is_recursive_loop());
        }
        assert_eq!(hops.iter().filter(|stopped| **stopped).count(), 1);
        assert_eq!(hops.last(), Some(&true));
    }

    #[test]
    fn a_percent_encoded_header_continues_the_chain() {
        let first = next_hop(None, F);
        let second = next_hop(Some(&first.trace_header), G);
        let encoded = second.trace_header.replace('|', "%7C");
        assert_eq!(next_hop(Some(&encoded), G).count, 2);
    }

    #[test]
    fn a_garbled_header_starts_a_new_chain() {
        let hop = next_hop(Some("nonsense;Lineage=zz:x"), F);
        assert_eq!(hop.count, 1);
    }
}
