//! The Prometheus text exposition (`/metrics`) of the aggregator's totals:
//! per function version, per asynchronously invoked function, per API
//! stage. Each family is stated once as data (name, help, value) and
//! written by one [`Exposition`].

use std::fmt::Write as _;

use super::{ApiTotals, FunctionTotals, State, DURATION_BUCKETS_MS};

/// A counter family: its name, its help text, and how to read it from the
/// totals of one series.
type Counter<T> = (&'static str, &'static str, fn(&T) -> f64);

/// Counters of one function version.
const FUNCTION_COUNTERS: [Counter<FunctionTotals>; 4] = [
    (
        "strato_lambda_invocations_total",
        "Invocations that ran, by function version.",
        |t| t.invocations as f64,
    ),
    (
        "strato_lambda_errors_total",
        "Invocations that ended in an error (function error, timeout or crash).",
        |t| t.errors as f64,
    ),
    (
        "strato_lambda_throttles_total",
        "Invocations refused for lack of concurrency.",
        |t| t.throttles as f64,
    ),
    (
        "strato_lambda_billed_duration_milliseconds_total",
        "Billed duration (rounded up to 1 ms).",
        |t| t.billed_ms as f64,
    ),
];

/// Counters of asynchronous invocation, by the CloudWatch metric they sum.
const ASYNC_COUNTERS: [(&str, &str, &str); 5] = [
    (
        "AsyncEventsReceived",
        "strato_lambda_async_events_received_total",
        "Events queued for asynchronous invocation.",
    ),
    (
        "AsyncEventAge",
        "strato_lambda_async_event_age_milliseconds_total",
        "Sum of the ages (queued to handed to the function) of asynchronous events, per attempt.",
    ),
    (
        "AsyncEventsDropped",
        "strato_lambda_async_events_dropped_total",
        "Asynchronous events dropped without a successful run.",
    ),
    (
        "DestinationDeliveryFailures",
        "strato_lambda_destination_delivery_failures_total",
        "Invocation records a destination did not take.",
    ),
    (
        "DeadLetterErrors",
        "strato_lambda_dead_letter_errors_total",
        "Events the dead-letter queue did not take.",
    ),
];

/// Counters of one API stage.
const API_COUNTERS: [Counter<ApiTotals>; 4] = [
    (
        "strato_apigateway_requests_total",
        "API Gateway requests.",
        |t| t.requests as f64,
    ),
    (
        "strato_apigateway_4xx_errors_total",
        "API Gateway requests answered 4XX.",
        |t| t.errors_4xx as f64,
    ),
    (
        "strato_apigateway_5xx_errors_total",
        "API Gateway requests answered 5XX.",
        |t| t.errors_5xx as f64,
    ),
    (
        "strato_apigateway_latency_milliseconds_total",
        "Sum of API Gateway request latencies.",
        |t| t.latency_sum_ms,
    ),
];

/// The whole exposition; `extra` are further counters of the caller's
/// (name, help, value).
pub(super) fn encode(state: &State, dropped_records: u64, extra: &[(&str, &str, u64)]) -> String {
    let mut e = Exposition::default();
    for (name, help, value) in FUNCTION_COUNTERS {
        e.family(name, "counter", help);
        for (key, totals) in &state.totals {
            e.sample(name, &version_labels(key), value(totals));
        }
    }
    let duration = "strato_lambda_duration_milliseconds";
    e.family(duration, "histogram", "Invocation duration.");
    for (key, totals) in &state.totals {
        let labels = version_labels(key);
        let mut cumulative = 0;
        for (i, bound) in DURATION_BUCKETS_MS.iter().enumerate() {
            cumulative += totals.duration_buckets.get(i).copied().unwrap_or(0);
            e.sample(
                &format!("{duration}_bucket"),
                &format!("{labels},le=\"{bound}\""),
                cumulative as f64,
            );
        }
        let count = totals.invocations as f64;
        e.sample(
            &format!("{duration}_bucket"),
            &format!("{labels},le=\"+Inf\""),
            count,
        );
        e.sample(&format!("{duration}_sum"), &labels, totals.duration_sum_ms);
        e.sample(&format!("{duration}_count"), &labels, count);
    }
    let running = "strato_lambda_concurrent_executions";
    e.family(running, "gauge", "Invocations running now.");
    for ((account, region, function), n) in &state.running {
        let labels = labels(&[
            ("account", account),
            ("region", region),
            ("function", function),
        ]);
        e.sample(running, &labels, f64::from(*n));
    }
    for (metric, name, help) in ASYNC_COUNTERS {
        e.family(name, "counter", help);
        for ((account, region, function), totals) in &state.async_totals {
            let labels = labels(&[
                ("account", account),
                ("region", region),
                ("function", function),
            ]);
            e.sample(name, &labels, totals.get(metric).copied().unwrap_or(0.0));
        }
    }
    for (name, help, value) in API_COUNTERS {
        e.family(name, "counter", help);
        for ((account, region, api, stage), totals) in &state.api_totals {
            let labels = labels(&[
                ("account", account),
                ("region", region),
                ("api_id", api),
                ("stage", stage),
            ]);
            e.sample(name, &labels, value(totals));
        }
    }
    let dropped = "strato_telemetry_dropped_records_total";
    e.family(
        dropped,
        "counter",
        "Metric records dropped because the aggregator's queue was full.",
    );
    e.sample(dropped, "", dropped_records as f64);
    for (name, help, value) in extra {
        e.family(name, "counter", help);
        e.sample(name, "", *value as f64);
    }
    e.out
}

#[derive(Default)]
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample; `labels` is the inside of the braces (none when empty).
    fn sample(&mut self, name: &str, labels: &str, value: f64) {
        let _ = if labels.is_empty() {
            writeln!(self.out, "{name} {value}")
        } else {
            writeln!(self.out, "{name}{{{labels}}} {value}")
        };
    }
}

fn version_labels(
    (account, region, function, version): &(String, String, String, String),
) -> String {
    labels(&[
        ("account", account),
        ("region", region),
        ("function", function),
        ("version", version),
    ])
}

/// `name="value",...` with Prometheus's escaping.
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(out, "{}{name}=\"{escaped}\"", if i == 0 { "" } else { "," });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            labels(&[("a", "x\"y"), ("b", "back\\slash\nline")]),
            "a=\"x\\\"y\",b=\"back\\\\slash\\nline\""
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let mut state = State::default();
        let mut totals = FunctionTotals {
            invocations: 3,
            duration_sum_ms: 12.5,
            duration_buckets: vec![0; DURATION_BUCKETS_MS.len()],
            ..FunctionTotals::default()
        };
        totals.duration_buckets[0] = 2;
        totals.duration_buckets[2] = 1;
        let key = (
            "1".to_string(),
            "r".to_string(),
            "f".to_string(),
            "$LATEST".to_string(),
        );
        state.totals.insert(key, totals);
        let text = encode(&state, 0, &[]);
        let labels = "account=\"1\",region=\"r\",function=\"f\",version=\"$LATEST\"";
        for line in [
            format!("strato_lambda_duration_milliseconds_bucket{{{labels},le=\"1\"}} 2"),
            format!("strato_lambda_duration_milliseconds_bucket{{{labels},le=\"5\"}} 2"),
            format!("strato_lambda_duration_milliseconds_bucket{{{labels},le=\"10\"}} 3"),
            format!("strato_lambda_duration_milliseconds_bucket{{{labels},le=\"+Inf\"}} 3"),
            format!("strato_lambda_duration_milliseconds_sum{{{labels}}} 12.5"),
            format!("strato_lambda_invocations_total{{{labels}}} 3"),
            "# TYPE strato_lambda_duration_milliseconds histogram".to_string(),
            "strato_telemetry_dropped_records_total 0".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
