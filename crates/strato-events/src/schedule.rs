//! Schedule expressions: EventBridge rules' `rate(...)` and `cron(...)`,
//! and Scheduler's `at(...)` on top, with their next firing times.
//!
//! AWS's cron has six fields (minutes, hours, day of month, month, day of
//! week, year), days of the week 1-7 from Sunday, and exactly one of the two
//! day fields must be `?`. That is Quartz's dialect without seconds, which
//! `croner` parses with seconds pinned to 0, years required and Quartz
//! weekdays; `L`, `W` and `#` mean what AWS says they mean.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// A parsed schedule expression.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// `rate(N unit)`: every this many milliseconds.
    Rate { every_ms: i64 },
    /// `cron(...)`, in a time zone (UTC for rules).
    Cron {
        cron: Box<Cron>,
        zone: chrono_tz::Tz,
    },
    /// `at(yyyy-mm-ddThh:mm:ss)`: once, in a time zone.
    At { when_ms: i64 },
}

/// Which service's expressions are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// An EventBridge rule: `rate` and `cron`, UTC.
    Rule,
    /// A Scheduler schedule: `at` too, and a time zone.
    Scheduler,
}

impl Schedule {
    /// Parses an expression; `None` when AWS would refuse it.
    pub fn parse(expression: &str, flavor: Flavor, zone: chrono_tz::Tz) -> Option<Schedule> {
        if let Some(body) = inner(expression, "rate") {
            return parse_rate(body);
        }
        if let Some(body) = inner(expression, "cron") {
            return parse_cron(body, zone);
        }
        if flavor == Flavor::Scheduler {
            if let Some(body) = inner(expression, "at") {
                let naive = NaiveDateTime::parse_from_str(body, "%Y-%m-%dT%H:%M:%S").ok()?;
                let when = zone.from_local_datetime(&naive).earliest()?;
                return Some(Schedule::At {
                    when_ms: when.timestamp_millis(),
                });
            }
        }
        None
    }

    /// When it fires next after `after_ms` (epoch ms); `time_scale` (test
    /// only) shortens rates, so `rate(1 minute)` under a scale of 60 fires
    /// every second. `None`: never again.
    pub fn next_after(&self, after_ms: i64, time_scale: u32) -> Option<i64> {
        match self {
            Schedule::Rate { every_ms } => {
                let scaled = (every_ms / i64::from(time_scale.max(1))).max(1);
                Some(after_ms.saturating_add(scaled))
            }
            Schedule::Cron { cron, zone } => {
                let start = zone.from_utc_datetime(
                    &DateTime::<Utc>::from_timestamp_millis(after_ms)?.naive_utc(),
                );
                let next = cron.find_next_occurrence(&start, false).ok()?;
                Some(next.timestamp_millis())
            }
            Schedule::At { when_ms } => (*when_ms > after_ms).then_some(*when_ms),
        }
    }

    pub fn is_one_time(&self) -> bool {
        matches!(self, Schedule::At { .. })
    }
}

/// `name(body)` → `body`, exactly (AWS refuses spaces inside the parentheses).
fn inner<'a>(expression: &'a str, name: &str) -> Option<&'a str> {
    let body = expression.strip_prefix(name)?.strip_prefix('(')?;
    let body = body.strip_suffix(')')?;
    (!body.starts_with(' ') && !body.ends_with(' ') && !body.is_empty()).then_some(body)
}

fn parse_rate(body: &str) -> Option<Schedule> {
    let (value, unit) = body.split_once(' ')?;
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = value.parse().ok()?;
    let unit_ms = match (unit, value) {
        (_, v) if v < 1 => return None,
        ("minute", 1) | ("minutes", 2..) => 60_000,
        ("hour", 1) | ("hours", 2..) => 3_600_000,
        ("day", 1) | ("days", 2..) => 86_400_000,
        _ => return None,
    };
    Some(Schedule::Rate {
        every_ms: value.checked_mul(unit_ms)?,
    })
}

fn parse_cron(body: &str, zone: chrono_tz::Tz) -> Option<Schedule> {
    let fields: Vec<&str> = body.split(' ').collect();
    if fields.len() != 6 || fields.iter().any(|f| f.is_empty()) {
        return None;
    }
    // Exactly one of day-of-month and day-of-week is `?`.
    if (fields[2] == "?") == (fields[4] == "?") {
        return None;
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Required)
        .alternative_weekdays(true)
        // AWS writes steps from a start as `0/15`.
        .sloppy_ranges(true)
        .build();
    let cron = parser.parse(&format!("0 {body}")).ok()?;
    Some(Schedule::Cron {
        cron: Box::new(cron),
        zone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(expression: &str) -> Option<Schedule> {
        Schedule::parse(expression, Flavor::Rule, chrono_tz::UTC)
    }

    #[test]
    fn rates_need_a_positive_count_and_a_matching_unit() {
        assert!(matches!(
            rule("rate(1 minute)"),
            Some(Schedule::Rate { every_ms: 60_000 })
        ));
        assert!(matches!(
            rule("rate(5 minutes)"),
            Some(Schedule::Rate { every_ms: 300_000 })
        ));
        for bad in [
            "rate(1 minutes)",
            "rate(2 minute)",
            "rate(0 minutes)",
            "rate(-10 minutes)",
            "rate(10 seconds)",
            "rate(10 years)",
            "rate(10)",
            "rate()",
            "rate( 10 minutes )",
            "rate(foo minutes)",
            "rate(10 minutess)",
        ] {
            assert!(rule(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn cron_has_six_fields_and_one_question_mark() {
        assert!(rule("cron(0 12 * * ? *)").is_some());
        assert!(rule("cron(0/15 * ? * MON-FRI *)").is_some());
        assert!(rule("cron(0 10 L * ? *)").is_some());
        assert!(rule("cron(0 10 ? * 6#3 *)").is_some());
        for bad in [
            "cron(0 1 * * * *)",
            "cron(0 dummy ? * MON-FRI *)",
            "cron(71 8 1 * ? *)",
            "cron(7 20 * * NOT *)",
            "cron(INVALID)",
            "cron()",
            "cron(0 12 * * ?)",
        ] {
            assert!(rule(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn cron_weekdays_count_from_sunday_as_one() {
        let Some(schedule) = rule("cron(0 12 ? * 2 *)") else {
            panic!("valid")
        };
        // 2026-12-06 is a Sunday; the next Monday noon is 2026-12-07T12:00Z.
        let sunday = Utc.with_ymd_and_hms(2026, 12, 6, 0, 0, 0).unwrap();
        let next = schedule.next_after(sunday.timestamp_millis(), 1).unwrap();
        assert_eq!(
            next,
            Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
    }

    #[test]
    fn at_is_only_for_the_scheduler_and_fires_once() {
        assert!(rule("at(2030-01-01T00:00:00)").is_none());
        let at =
            Schedule::parse("at(2030-01-01T00:00:00)", Flavor::Scheduler, chrono_tz::UTC).unwrap();
        let when = Utc
            .with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp_millis();
        assert_eq!(at.next_after(0, 1), Some(when));
        assert_eq!(at.next_after(when, 1), None);
        assert!(Schedule::parse("at(2021-12-31)", Flavor::Scheduler, chrono_tz::UTC).is_none());
    }

    #[test]
    fn time_scale_shortens_rates() {
        let Some(schedule) = rule("rate(1 minute)") else {
            panic!("valid")
        };
        assert_eq!(schedule.next_after(1_000, 60), Some(2_000));
    }
}
