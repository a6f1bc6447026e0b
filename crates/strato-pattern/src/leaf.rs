//! The tests a single leaf value of an event is put to, compiled from a pattern's match values.

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::Value;

/// The fixed-point precision AWS compares numbers at: values are rounded to `scale` (10^digits
/// after the point) and ranges only hold inside `±limit`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Precision {
    scale: f64,
    limit: f64,
}

impl Precision {
    /// EventBridge and Lambda: -5.0e9 to +5.0e9, six digits after the decimal point.
    pub(crate) const EVENTBRIDGE: Precision = Precision {
        scale: 1e6,
        limit: 5e9,
    };
    /// SNS: -1e9 to +1e9, five digits after the decimal point.
    pub(crate) const SNS: Precision = Precision {
        scale: 1e5,
        limit: 1e9,
    };

    /// The number as AWS compares it: rounded to the precision.
    pub(crate) fn key(self, number: f64) -> f64 {
        (number * self.scale).round()
    }

    fn in_range(self, number: f64) -> bool {
        (-self.limit..=self.limit).contains(&number)
    }
}

/// One match value of a field's array: the field matches when any of them does.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    ExactString(String),
    /// A string that is an IP address: equal text, or the same address written otherwise.
    ExactAddress(String, IpAddr),
    /// A number, as its precision key.
    ExactNumber(f64, Precision),
    ExactBool(bool),
    ExactNull,
    Prefix(String),
    /// The prefix, lowercased.
    PrefixIgnoreCase(String),
    Suffix(String),
    /// The suffix, lowercased.
    SuffixIgnoreCase(String),
    /// The value, lowercased.
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    AnythingBut(AnythingBut),
    Numeric(NumericRange),
    Exists(bool),
    Cidr(CidrBlock),
}

impl Matcher {
    /// Whether the field, present in the event as `value`, satisfies this match value.
    pub(crate) fn matches_present(&self, value: &Value) -> bool {
        match self {
            Matcher::Exists(wanted) => has_leaf(value) == *wanted,
            other => any_leaf(value, &|leaf| other.matches_leaf(leaf)),
        }
    }

    fn matches_leaf(&self, leaf: &Value) -> bool {
        match self {
            Matcher::ExactString(expected) => leaf.as_str() == Some(expected.as_str()),
            Matcher::ExactAddress(text, address) => leaf.as_str().is_some_and(|s| {
                s == text || s.parse::<IpAddr>().is_ok_and(|parsed| parsed == *address)
            }),
            Matcher::ExactNumber(key, precision) => {
                leaf.as_f64().is_some_and(|n| precision.key(n) == *key)
            }
            Matcher::ExactBool(expected) => leaf.as_bool() == Some(*expected),
            Matcher::ExactNull => leaf.is_null(),
            Matcher::Prefix(prefix) => leaf
                .as_str()
                .is_some_and(|s| s.starts_with(prefix.as_str())),
            Matcher::PrefixIgnoreCase(prefix) => leaf
                .as_str()
                .is_some_and(|s| starts_with_ignore_case(s, prefix)),
            Matcher::Suffix(suffix) => leaf.as_str().is_some_and(|s| s.ends_with(suffix.as_str())),
            Matcher::SuffixIgnoreCase(suffix) => leaf
                .as_str()
                .is_some_and(|s| ends_with_ignore_case(s, suffix)),
            Matcher::EqualsIgnoreCase(expected) => leaf
                .as_str()
                .is_some_and(|s| equals_ignore_case(s, expected)),
            Matcher::Wildcard(wildcard) => leaf.as_str().is_some_and(|s| wildcard.matches(s)),
            Matcher::AnythingBut(excluded) => excluded.admits(leaf),
            Matcher::Numeric(range) => leaf.as_f64().is_some_and(|n| range.contains(n)),
            Matcher::Cidr(block) => leaf.as_str().is_some_and(|s| block.contains(s)),
            // Handled on the whole field by `matches_present`.
            Matcher::Exists(_) => false,
        }
    }
}

/// Whether a field's value holds at least one leaf (a scalar, or one inside arrays). Objects are
/// not leaves: AWS's `exists` only sees leaf nodes.
fn has_leaf(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().any(has_leaf),
        Value::Object(_) => false,
        _ => true,
    }
}

/// Whether any leaf of the value (the value itself, or the scalars of arrays, at any depth)
/// satisfies the test.
fn any_leaf(value: &Value, test: &dyn Fn(&Value) -> bool) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|item| any_leaf(item, test)),
        Value::Object(_) => false,
        leaf => test(leaf),
    }
}

/// Lowercases as the comparison does, so patterns are stored in the form events are compared in.
pub(crate) fn lowercase(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

fn equals_ignore_case(value: &str, lowercased: &str) -> bool {
    value
        .chars()
        .flat_map(char::to_lowercase)
        .eq(lowercased.chars())
}

fn starts_with_ignore_case(value: &str, lowercased_prefix: &str) -> bool {
    let mut value_chars = value.chars().flat_map(char::to_lowercase);
    lowercased_prefix
        .chars()
        .all(|expected| value_chars.next() == Some(expected))
}

fn ends_with_ignore_case(value: &str, lowercased_suffix: &str) -> bool {
    let mut value_chars = value.chars().rev().flat_map(char::to_lowercase);
    lowercased_suffix
        .chars()
        .rev()
        .all(|expected| value_chars.next() == Some(expected))
}

/// A `wildcard` value: literal pieces between unescaped `*`s.
#[derive(Debug, Clone)]
pub(crate) struct Wildcard {
    /// `pieces.len() - 1` stars sit between the pieces; the first and last may be empty.
    pieces: Vec<String>,
}

impl Wildcard {
    /// Splits on unescaped `*` (`\*` is a literal star, `\\` a literal backslash), refusing what
    /// AWS refuses, with its wording. AWS counts positions in UTF-8 bytes of the value with its
    /// opening quote, hence the `+ 1`.
    pub(crate) fn parse(text: &str) -> Result<Wildcard, String> {
        let mut pieces = vec![String::new()];
        let mut chars = text.char_indices().peekable();
        while let Some((offset, c)) = chars.next() {
            match c {
                '*' => {
                    if chars.peek().is_some_and(|(_, next)| *next == '*') {
                        return Err(format!(
                            "Consecutive wildcard characters at pos {}",
                            offset + 1
                        ));
                    }
                    pieces.push(String::new());
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('*' | '\\'))) => push_char(&mut pieces, escaped),
                    _ => return Err(format!("Invalid escape character at pos {}", offset + 1)),
                },
                other => push_char(&mut pieces, other),
            }
        }
        Ok(Wildcard { pieces })
    }

    /// How many matching positions the pattern can be in at once on its worst input: AWS's
    /// measure of a wildcard's cost ("fewer wildcard characters or fewer repeating character
    /// sequences after a wildcard character"). Found by exploring the sets of positions an input
    /// can reach, over the pattern's own characters plus one that is not in it; the exploration is
    /// capped, which only matters for patterns far past the limit.
    pub(crate) fn complexity(&self) -> usize {
        const EXPLORED_SETS_CAP: usize = 4096;
        let tokens: Vec<Option<char>> = self
            .pieces
            .iter()
            .enumerate()
            .flat_map(|(index, piece)| {
                let star = (index > 0).then_some(None);
                star.into_iter().chain(piece.chars().map(Some))
            })
            .collect();
        let mut alphabet: Vec<char> = tokens.iter().flatten().copied().collect();
        alphabet.sort_unstable();
        alphabet.dedup();
        alphabet.push(
            (0x1F600..)
                .filter_map(char::from_u32)
                .find(|c| !alphabet.contains(c))
                .unwrap_or('\u{0}'),
        );
        let close = |mut set: Vec<usize>| {
            let mut index = 0;
            while index < set.len() {
                let position = set[index];
                if tokens.get(position) == Some(&None) && !set.contains(&(position + 1)) {
                    set.push(position + 1);
                }
                index += 1;
            }
            set.sort_unstable();
            set
        };
        let start = close(vec![0]);
        let mut seen = HashSet::from([start.clone()]);
        let mut queue = vec![start];
        let mut widest = 0;
        while let Some(set) = queue.pop() {
            widest = widest.max(set.len());
            if seen.len() >= EXPLORED_SETS_CAP {
                continue;
            }
            for &c in &alphabet {
                let next: Vec<usize> = set
                    .iter()
                    .filter_map(|&position| match tokens.get(position) {
                        Some(None) => Some(position),
                        Some(Some(literal)) if *literal == c => Some(position + 1),
                        _ => None,
                    })
                    .collect();
                let mut next = close(next);
                next.dedup();
                if !next.is_empty() && seen.insert(next.clone()) {
                    queue.push(next);
                }
            }
        }
        widest
    }

    /// Glob matching without backtracking: with only `*`, taking each middle piece at its
    /// leftmost place is always right.
    pub(crate) fn matches(&self, value: &str) -> bool {
        let Some((first, rest)) = self.pieces.split_first() else {
            return value.is_empty();
        };
        let Some((last, middle)) = rest.split_last() else {
            return value == first;
        };
        if value.len() < first.len() + last.len()
            || !value.starts_with(first.as_str())
            || !value.ends_with(last.as_str())
        {
            return false;
        }
        let mut window = &value[first.len()..value.len() - last.len()];
        for piece in middle {
            match window.find(piece.as_str()) {
                Some(at) => window = &window[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

fn push_char(pieces: &mut [String], c: char) {
    if let Some(current) = pieces.last_mut() {
        current.push(c);
    }
}

/// What `anything-but` excludes; it admits every present leaf not excluded.
#[derive(Debug, Clone)]
pub(crate) enum AnythingBut {
    /// Exact strings and numbers (as precision keys).
    Values {
        strings: Vec<String>,
        numbers: Vec<f64>,
        precision: Precision,
    },
    Prefixes(Vec<String>),
    Suffixes(Vec<String>),
    /// Lowercased values.
    IgnoreCase(Vec<String>),
    Wildcards(Vec<Wildcard>),
}

impl AnythingBut {
    fn admits(&self, leaf: &Value) -> bool {
        match (self, leaf) {
            (AnythingBut::Values { strings, .. }, Value::String(s)) => {
                !strings.iter().any(|excluded| excluded == s)
            }
            (
                AnythingBut::Values {
                    numbers, precision, ..
                },
                Value::Number(n),
            ) => n
                .as_f64()
                .is_none_or(|n| !numbers.contains(&precision.key(n))),
            (AnythingBut::Prefixes(prefixes), Value::String(s)) => {
                !prefixes.iter().any(|p| s.starts_with(p.as_str()))
            }
            (AnythingBut::Suffixes(suffixes), Value::String(s)) => {
                !suffixes.iter().any(|p| s.ends_with(p.as_str()))
            }
            (AnythingBut::IgnoreCase(values), Value::String(s)) => {
                !values.iter().any(|v| equals_ignore_case(s, v))
            }
            (AnythingBut::Wildcards(wildcards), Value::String(s)) => {
                !wildcards.iter().any(|w| w.matches(s))
            }
            // A leaf of another type is none of the excluded strings or numbers.
            _ => true,
        }
    }
}

/// A `numeric` range; an absent bound is open.
#[derive(Debug, Clone)]
pub(crate) struct NumericRange {
    pub(crate) lower: Option<Bound>,
    pub(crate) upper: Option<Bound>,
    pub(crate) precision: Precision,
}

/// One end of a range, as a precision key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound {
    pub(crate) key: f64,
    pub(crate) inclusive: bool,
}

impl NumericRange {
    fn contains(&self, number: f64) -> bool {
        if !self.precision.in_range(number) {
            return false;
        }
        let key = self.precision.key(number);
        let above = self.lower.is_none_or(|bound| {
            if bound.inclusive {
                key >= bound.key
            } else {
                key > bound.key
            }
        });
        let below = self.upper.is_none_or(|bound| {
            if bound.inclusive {
                key <= bound.key
            } else {
                key < bound.key
            }
        });
        above && below
    }
}

/// A `cidr` block (or a single address, which AWS also accepts).
#[derive(Debug, Clone)]
pub(crate) enum CidrBlock {
    V4 { network: u32, prefix_bits: u32 },
    V6 { network: u128, prefix_bits: u32 },
}

impl CidrBlock {
    /// Parses `address/bits` or a bare address, refusing what AWS refuses, with its wording.
    pub(crate) fn parse(text: &str) -> Result<CidrBlock, String> {
        let mut parts = text.split('/');
        let address_text = parts.next().unwrap_or_default();
        let bits_text = parts.next();
        if parts.next().is_some() {
            return Err("Malformed CIDR, one '/' required".to_owned());
        }
        let bits = match bits_text {
            None => None,
            Some(bits) => match bits.parse::<i64>() {
                Ok(bits) if bits < 0 => {
                    return Err("Malformed CIDR, mask bits must not be negative".to_owned())
                }
                Ok(bits) => Some(bits),
                Err(_) => return Err("Malformed CIDR, mask bits must be an integer".to_owned()),
            },
        };
        let address = parse_address(address_text)?;
        let width: u32 = if address.is_ipv4() { 32 } else { 128 };
        let prefix_bits = match bits {
            None => width,
            Some(bits) => match u32::try_from(bits) {
                Ok(bits) if bits <= width => bits,
                _ if width == 32 => return Err("IPv4 mask bits must be < 32".to_owned()),
                _ => return Err("IPv6 mask bits must be < 128".to_owned()),
            },
        };
        Ok(match address {
            IpAddr::V4(v4) => CidrBlock::V4 {
                network: u32::from(v4) & mask_u32(prefix_bits),
                prefix_bits,
            },
            IpAddr::V6(v6) => CidrBlock::V6 {
                network: u128::from(v6) & mask_u128(prefix_bits),
                prefix_bits,
            },
        })
    }

    fn contains(&self, value: &str) -> bool {
        match (self, value.parse::<IpAddr>()) {
            (
                CidrBlock::V4 {
                    network,
                    prefix_bits,
                },
                Ok(IpAddr::V4(address)),
            ) => u32::from(address) & mask_u32(*prefix_bits) == *network,
            (
                CidrBlock::V6 {
                    network,
                    prefix_bits,
                },
                Ok(IpAddr::V6(address)),
            ) => u128::from(address) & mask_u128(*prefix_bits) == *network,
            _ => false,
        }
    }
}

/// An address as AWS reads one: text shaped like an address (four dotted numbers, or hex digits
/// and colons) that does not parse is "invalid"; anything else is "nonstandard".
fn parse_address(text: &str) -> Result<IpAddr, String> {
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    let dotted_quad = text.split('.').count() == 4
        && text
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    let hex_and_colons =
        text.contains(':') && text.bytes().all(|b| b == b':' || b.is_ascii_hexdigit());
    if dotted_quad || hex_and_colons {
        Err(format!("Invalid IP address: {text}"))
    } else {
        Err(format!("Nonstandard IP address: {text}"))
    }
}

fn mask_u32(prefix_bits: u32) -> u32 {
    u32::MAX.checked_shl(32 - prefix_bits).unwrap_or(0)
}

fn mask_u128(prefix_bits: u32) -> u128 {
    u128::MAX.checked_shl(128 - prefix_bits).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_pieces_match_in_order() {
        let w = Wildcard::parse("a*b*c").unwrap();
        assert!(w.matches("abc"));
        assert!(w.matches("a-b-b-c"));
        assert!(!w.matches("acb"));
        assert!(!w.matches("ab"));
    }

    #[test]
    fn wildcard_overlapping_first_and_last_pieces_do_not_match() {
        let w = Wildcard::parse("ab*ba").unwrap();
        assert!(!w.matches("aba"));
        assert!(w.matches("abba"));
    }

    #[test]
    fn wildcard_escapes_are_literal() {
        let w = Wildcard::parse(r"a\*b").unwrap();
        assert!(w.matches("a*b"));
        assert!(!w.matches("axb"));
        let w = Wildcard::parse(r"a\\*").unwrap();
        assert!(w.matches(r"a\anything"));
    }

    #[test]
    fn wildcard_refuses_consecutive_stars_at_their_position() {
        let err = Wildcard::parse("arn:aws:events:us-east-1:**:event-bus/*").unwrap_err();
        assert_eq!(err, "Consecutive wildcard characters at pos 26");
    }

    #[test]
    fn wildcard_complexity_grows_with_repeats_after_a_star() {
        assert_eq!(Wildcard::parse("abc").unwrap().complexity(), 1);
        let simple = Wildcard::parse("arn:aws:s3:::bucket/*")
            .unwrap()
            .complexity();
        let repetitive = Wildcard::parse("*a*a*a*a*a*a*a*a*a*a")
            .unwrap()
            .complexity();
        assert!(simple <= 2, "{simple}");
        assert!(repetitive > 10, "{repetitive}");
    }

    #[test]
    fn cidr_masks_host_bits() {
        let block = CidrBlock::parse("10.0.0.77/24").unwrap();
        assert!(block.contains("10.0.0.255"));
        assert!(!block.contains("10.0.1.0"));
        assert!(!block.contains("::1"));
        let v6 = CidrBlock::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1"));
        assert!(!v6.contains("2001:db9::1"));
        let all = CidrBlock::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("255.255.255.255"));
    }

    #[test]
    fn ignore_case_comparisons_fold_both_sides() {
        assert!(equals_ignore_case("EventBridge", "eventbridge"));
        assert!(starts_with_ignore_case("EVENTBRIDGE", "eventb"));
        assert!(!starts_with_ignore_case("EVE", "eventb"));
        assert!(ends_with_ignore_case("photo.PNG", ".png"));
        assert!(!ends_with_ignore_case("png", ".png"));
    }

    #[test]
    fn numbers_compare_at_the_dialect_precision() {
        let p = Precision::EVENTBRIDGE;
        assert_eq!(p.key(301.5), p.key(3.015e2));
        assert_eq!(p.key(1.0000001), p.key(1.0));
        assert_ne!(p.key(1.000001), p.key(1.0));
        let s = Precision::SNS;
        assert_eq!(s.key(1.000001), s.key(1.0));
    }
}
