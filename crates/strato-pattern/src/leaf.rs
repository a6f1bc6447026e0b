//! The tests a single leaf value of an event is put to, compiled from a pattern's match values.

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
            Matcher::ExactNumber(key, precision) => {
                leaf.as_f64().is_some_and(|n| precision.key(n) == *key)
            }
            Matcher::ExactBool(expected) => leaf.as_bool() == Some(*expected),
            Matcher::ExactNull => leaf.is_null(),
            Matcher::Prefix(prefix) => leaf.as_str().is_some_and(|s| s.starts_with(prefix.as_str())),
            Matcher::PrefixIgnoreCase(prefix) => {
                leaf.as_str().is_some_and(|s| starts_with_ignore_case(s, prefix))
            }
            Matcher::Suffix(suffix) => leaf.as_str().is_some_and(|s| s.ends_with(suffix.as_str())),
            Matcher::SuffixIgnoreCase(suffix) => {
                leaf.as_str().is_some_and(|s| ends_with_ignore_case(s, suffix))
            }
            Matcher::EqualsIgnoreCase(expected) => {
                leaf.as_str().is_some_and(|s| equals_ignore_case(s, expected))
            }
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
    /// AWS refuses, with its wording.
    pub(crate) fn parse(text: &str) -> Result<Wildcard, String> {
        let mut pieces = vec![String::new()];
        let mut chars = text.chars().enumerate().peekable();
        let mut previous_was_star = false;
        while let Some((position, c)) = chars.next() {
            match c {
                '*' => {
                    if previous_was_star {
                        return Err(format!("Consecutive wildcard characters at pos {position}"));
                    }
                    pieces.push(String::new());
                    previous_was_star = true;
                    continue;
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('*' | '\\'))) => push_char(&mut pieces, escaped),
                    _ => return Err(format!("Invalid escape character at pos {position}")),
                },
                other => push_char(&mut pieces, other),
            }
            previous_was_star = false;
        }
        Ok(Wildcard { pieces })
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
        let nonstandard = |address: &str| format!("Nonstandard IP address: {address}");
        let mut parts = text.split('/');
        let address_text = parts.next().unwrap_or_default();
        let bits_text = parts.next();
        if parts.next().is_some() {
            return Err("Malformed CIDR, one '/' required".to_owned());
        }
        let address: IpAddr = address_text
            .parse()
            .map_err(|_| nonstandard(address_text))?;
        let width = if address.is_ipv4() { 32 } else { 128 };
        let prefix_bits = match bits_text {
            None => width,
            Some(bits) => match bits.parse::<u32>() {
                Ok(bits) if bits <= width => bits,
                _ => return Err("Malformed CIDR, mask bits must be an integer".to_owned()),
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
