//! Timestamps in the formats AWS puts on the wire.

use chrono::{DateTime, Utc};

/// `LastModified` as Lambda writes it: `2024-01-31T12:34:56.789+0000`.
pub fn lambda_timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// A timestamp as the REST-JSON protocol's default format writes it: epoch
/// seconds as a JSON number, with milliseconds as the fraction
/// (e.g. `FunctionEventInvokeConfig.LastModified`).
pub fn epoch_seconds(at: DateTime<Utc>) -> f64 {
    // Integer millis divided once: the nearest double to `s.mmm`, which
    // serde_json prints back as exactly `s.mmm`.
    at.timestamp_millis() as f64 / 1000.0
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

    #[test]
    fn epoch_seconds_carry_millis_as_fraction() {
        let t = Utc.with_ymd_and_hms(2024, 1, 31, 12, 34, 56).unwrap()
            + chrono::Duration::milliseconds(7);
        assert_eq!(
            serde_json::json!(epoch_seconds(t)).to_string(),
            "1706704496.007"
        );
        let whole = Utc.with_ymd_and_hms(2024, 1, 31, 12, 34, 56).unwrap();
        assert_eq!(
            serde_json::json!(epoch_seconds(whole)).to_string(),
            "1706704496.0"
        );
    }
}
