//! How many rule-event pairs the engine decides per second, for a rule set shaped like a busy
//! event bus: 100 EventBridge rules (sources, detail types, prefixes, numeric ranges,
//! anything-but, exists, wildcards, `$or`) against a handful of typical events.
//!
//! Run with `cargo run --release -p strato-pattern --example match_throughput`.

use std::hint::black_box;
use std::time::Instant;

use serde_json::{json, Value};
use strato_pattern::{Dialect, Pattern, PatternError};

fn rule_set() -> Result<Vec<Pattern>, PatternError> {
    (0..100)
        .map(|i| {
            let text = match i % 10 {
                0 => format!(r#"{{"source": ["app.orders{i}"], "detail-type": ["Order Placed"]}}"#),
                1 => format!(
                    r#"{{"source": ["aws.ec2"], "detail": {{"state": ["terminated", "stopped"], "instance-id": [{{"prefix": "i-{i:02}"}}]}}}}"#
                ),
                2 => format!(
                    r#"{{"detail": {{"amount": [{{"numeric": [">", {i}, "<=", 1000]}}], "currency": ["EUR", "USD"]}}}}"#
                ),
                3 => r#"{"detail": {"state": [{"anything-but": ["pending", "initializing"]}], "region": [{"prefix": "eu-"}]}}"#.to_owned(),
                4 => format!(r#"{{"detail": {{"customer": {{"tier": ["gold"], "id": [{{"exists": true}}]}}, "n": [{i}]}}}}"#),
                5 => r#"{"resources": [{"wildcard": "arn:aws:s3:::bucket-*/logs/*.json"}]}"#.to_owned(),
                6 => r#"{"source": ["app.orders"], "$or": [{"detail": {"amount": [{"numeric": [">", 500]}]}}, {"detail": {"priority": ["high"]}}]}"#.to_owned(),
                7 => r#"{"detail": {"ip": [{"cidr": "10.0.0.0/8"}]}}"#.to_owned(),
                8 => r#"{"detail-type": [{"equals-ignore-case": "order placed"}], "detail": {"sku": [{"suffix": "-XL"}]}}"#.to_owned(),
                _ => format!(r#"{{"account": ["1234567890{i:02}"], "detail": {{"missing": [{{"exists": false}}]}}}}"#),
            };
            Pattern::parse(&text, Dialect::EventBridge)
        })
        .collect()
}

fn events() -> Vec<Value> {
    let base = |source: &str, detail_type: &str, detail: Value| {
        json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": detail_type, "source": source, "account": "123456789012",
            "time": "2026-12-06T18:43:48Z", "region": "eu-west-1",
            "resources": ["arn:aws:s3:::bucket-a/logs/2026/12/06.json"],
            "detail": detail
        })
    };
    vec![
        base(
            "app.orders",
            "Order Placed",
            json!({"amount": 742.5, "currency": "EUR", "priority": "low",
            "customer": {"tier": "gold", "id": "c-17"}, "sku": "SHIRT-XL", "region": "eu-west-1", "state": "placed"}),
        ),
        base(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": "i-0123456789abcdef0", "state": "terminated", "ip": "10.1.2.3"}),
        ),
        base(
            "app.billing",
            "Invoice Paid",
            json!({"amount": 12, "currency": "USD", "n": 4, "items": [1, 2, 3]}),
        ),
    ]
}

fn main() -> Result<(), PatternError> {
    let rules = rule_set()?;
    let events = events();
    let rounds = 20_000;
    let started = Instant::now();
    let mut matched = 0usize;
    for _ in 0..rounds {
        for event in &events {
            for rule in &rules {
                if rule.matches(black_box(event)) {
                    matched += 1;
                }
            }
        }
    }
    let elapsed = started.elapsed();
    let pairs = rounds * events.len() * rules.len();
    let per_second = pairs as f64 / elapsed.as_secs_f64();
    println!(
        "{pairs} rule-event pairs in {:.2?} ({} matched): {:.1} million pairs/s, {:.0} events/s against {} rules",
        elapsed,
        matched,
        per_second / 1e6,
        per_second / rules.len() as f64,
        rules.len()
    );
    Ok(())
}
