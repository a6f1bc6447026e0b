//! SQS's CloudWatch metrics (namespace `AWS/SQS`, dimension `QueueName`).
//! Operations count into a queue's atomics; a reporter hands the totals to
//! the metrics aggregator every [`REPORT_INTERVAL`], with the queue's
//! backlog gauges, so no message costs a lock or a database write.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use strato_observe::metrics::{Bucket, ServiceMetric, SQS_NAMESPACE};
use strato_observe::Metrics;
use strato_queue::QueueEngine;

use crate::queue::QueueRecord;
use crate::SqsService;

/// How often counters and gauges are reported (into per-minute buckets).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// One queue's counters since the last report.
#[derive(Debug)]
pub struct QueueStats {
    sent: AtomicU64,
    received: AtomicU64,
    deleted: AtomicU64,
    empty_receives: AtomicU64,
    size_sum: AtomicU64,
    size_min: AtomicU64,
    size_max: AtomicU64,
}

impl Default for QueueStats {
    fn default() -> Self {
        QueueStats {
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            deleted: AtomicU64::new(0),
            empty_receives: AtomicU64::new(0),
            size_sum: AtomicU64::new(0),
            size_min: AtomicU64::new(u64::MAX),
            size_max: AtomicU64::new(0),
        }
    }
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl QueueStats {
    pub fn sent(&self, size: usize) {
        let size = as_u64(size);
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.size_sum.fetch_add(size, Ordering::Relaxed);
        self.size_min.fetch_min(size, Ordering::Relaxed);
        self.size_max.fetch_max(size, Ordering::Relaxed);
    }

    /// A receive that got `count` messages (0: an empty receive).
    pub fn received(&self, count: usize) {
        if count == 0 {
            self.empty_receives.fetch_add(1, Ordering::Relaxed);
        } else {
            self.received.fetch_add(as_u64(count), Ordering::Relaxed);
        }
    }

    pub fn deleted(&self, count: usize) {
        self.deleted.fetch_add(as_u64(count), Ordering::Relaxed);
    }
}

// Counts and byte sizes stay far below 2^53, where f64 is exact.
#[allow(clippy::cast_precision_loss)]
fn float(n: u64) -> f64 {
    n as f64
}

/// The series of one queue over the last interval.
fn queue_metrics(
    engine: &dyn QueueEngine,
    record: &QueueRecord,
    at_ms: i64,
) -> Vec<(&'static str, Bucket)> {
    let stats = &record.stats;
    let mut out = Vec::with_capacity(9);
    let sent = stats.sent.swap(0, Ordering::Relaxed);
    for (name, value) in [
        ("NumberOfMessagesSent", sent),
        (
            "NumberOfMessagesReceived",
            stats.received.swap(0, Ordering::Relaxed),
        ),
        (
            "NumberOfMessagesDeleted",
            stats.deleted.swap(0, Ordering::Relaxed),
        ),
        (
            "NumberOfEmptyReceives",
            stats.empty_receives.swap(0, Ordering::Relaxed),
        ),
    ] {
        let value = float(value);
        out.push((name, Bucket::summary(1, value, value, value)));
    }
    let sizes = float(stats.size_sum.swap(0, Ordering::Relaxed));
    let min = stats.size_min.swap(u64::MAX, Ordering::Relaxed);
    let max = stats.size_max.swap(0, Ordering::Relaxed);
    if sent > 0 && min != u64::MAX {
        out.push((
            "SentMessageSize",
            Bucket::summary(sent, sizes, float(min), float(max)),
        ));
    }
    if let Ok(counts) = engine.counts(&record.engine_name()) {
        for (name, value) in [
            ("ApproximateNumberOfMessagesVisible", counts.visible),
            ("ApproximateNumberOfMessagesNotVisible", counts.in_flight),
            ("ApproximateNumberOfMessagesDelayed", counts.delayed),
        ] {
            let value = float(value);
            out.push((name, Bucket::summary(1, value, value, value)));
        }
        let age_s = counts
            .oldest_sent_at_ms
            .map_or(0, |sent| (at_ms - sent).max(0) / 1000);
        let age = float(u64::try_from(age_s).unwrap_or(0));
        out.push((
            "ApproximateAgeOfOldestMessage",
            Bucket::summary(1, age, age, age),
        ));
    }
    out
}

impl SqsService {
    /// Reports every queue's metrics to `metrics` until the service is
    /// dropped.
    pub fn start_metrics(self: &Arc<Self>, metrics: Arc<Metrics>) -> tokio::task::JoinHandle<()> {
        let service = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REPORT_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(service) = service.upgrade() else {
                    return;
                };
                service.report(&metrics);
            }
        })
    }

    fn report(&self, metrics: &Metrics) {
        let at_ms = chrono::Utc::now().timestamp_millis();
        let records: Vec<Arc<QueueRecord>> =
            self.queues.iter().map(|q| q.value().clone()).collect();
        for record in records {
            for (metric, values) in queue_metrics(self.engine.as_ref(), &record, at_ms) {
                metrics.record_service_metric(ServiceMetric {
                    account: record.account.clone(),
                    region: record.region.clone(),
                    namespace: SQS_NAMESPACE,
                    metric,
                    dimensions: vec![("QueueName".to_string(), record.name.clone())],
                    at_ms,
                    values,
                });
            }
        }
    }
}
