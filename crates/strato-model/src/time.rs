//! Timestamps in the formats AWS puts on the wire.

use chrono::{DateTime, Utc};

/// `LastModified` as Lambda writes it: `2024-01-31T12:34:56.789+0000`.
pub fn lambda_timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_with_millis_and_numeric_offset() {
        let t = Utc.with_ymd_and_hms(2024, 1, 31, 12, 34, 56).unwrap()
            + chrono::Duration::milliseconds(7);
        assert_eq!(lambda_timestamp(t), "2024-01-31T12:34:56.007+0000");
    }
}
