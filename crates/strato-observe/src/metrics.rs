//! Metrics: per-minute buckets per CloudWatch series (namespace, metric
//! name, dimensions), fed from a bounded channel by one aggregator task
//! (an invocation only enqueues its record), persisted periodically to
//! `<data-dir>/metrics.db`, and answered as CloudWatch statistics and as
//! Prometheus text. The same task keeps the metering totals.
//!
//! Why over 800 lines: the aggregator and its CloudWatch statistics and
//! metering encoders read one state under one lock; the Prometheus
//! encoder is its own module ([`prometheus`]).

mod prometheus;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection};
use strato_model::telemetry::{AsyncMetric, AsyncSubject, FinishedInvocation, InvocationSubject};
use tokio::sync::{mpsc, oneshot};

use crate::metering::{self, MeterKey, Usage};

pub const LAMBDA_NAMESPACE: &str = "AWS/Lambda";
pub const API_GATEWAY_NAMESPACE: &str = "AWS/ApiGateway";
pub const SQS_NAMESPACE: &str = "AWS/SQS";

/// One CloudWatch series of an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub account: String,
    pub region: String,
    pub namespace: String,
    pub metric: String,
    /// Sorted by name.
    pub dimensions: Vec<(String, String)>,
}

/// Percentiles come from a log-scale histogram with bins 1 % wide, so a
/// bucket's memory does not grow with its traffic (a few hundred bins at
/// most for durations from microseconds to minutes) and an estimate is
/// within 1 % of the true value (and within the bucket's exact min and max).
const BIN_GROWTH: f64 = 1.01;

/// The bin of a value: `floor(log_1.01(value))`; zero and negative values
/// share the lowest bin.
// Lossless because the log_1.01 of a finite positive f64 lies within about ±75 000 (ln spans
// -745..710), far inside `i32`.
#[allow(clippy::cast_possible_truncation)]
fn bin_of(value: f64) -> i32 {
    if value <= 0.0 || !value.is_finite() {
        return i32::MIN;
    }
    (value.ln() / BIN_GROWTH.ln()).floor() as i32
}

/// The upper edge of a bin.
fn bin_upper(bin: i32) -> f64 {
    if bin == i32::MIN {
        return 0.0;
    }
    BIN_GROWTH.powi(bin.saturating_add(1))
}

/// The values of one series in one minute.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// (bin, count), sorted by bin.
    pub histogram: Vec<(i32, u64)>,
}

impl Bucket {
    /// What a service aggregated itself (`count` values summing to `sum`,
    /// between `min` and `max`): percentiles of it are approximate (the
    /// values sit in the average's bin, the ends are exact).
    pub fn summary(count: u64, sum: f64, min: f64, max: f64) -> Bucket {
        let mut bucket = Bucket {
            count,
            sum,
            min,
            max,
            histogram: Vec::new(),
        };
        if count > 0 {
            bucket.add_to_bin(bin_of(sum / count as f64), count);
        }
        bucket
    }

    /// Values each seen `count` times (PutMetricData's `Values` and
    /// `Counts`); a count of zero leaves its value out.
    pub fn of_values(values: &[(f64, u64)]) -> Bucket {
        let mut bucket = Bucket::new();
        for (value, count) in values.iter().filter(|(_, c)| *c > 0) {
            bucket.count += count;
            bucket.sum += value * *count as f64;
            bucket.min = bucket.min.min(*value);
            bucket.max = bucket.max.max(*value);
            bucket.add_to_bin(bin_of(*value), *count);
        }
        bucket
    }

    fn new() -> Bucket {
        Bucket {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            histogram: Vec::new(),
        }
    }

    fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.add_to_bin(bin_of(value), 1);
    }

    fn add_to_bin(&mut self, bin: i32, count: u64) {
        match self.histogram.binary_search_by_key(&bin, |(b, _)| *b) {
            Ok(i) => self.histogram[i].1 += count,
            Err(i) => self.histogram.insert(i, (bin, count)),
        }
    }

    pub fn merge(&mut self, other: &Bucket) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        for (bin, count) in &other.histogram {
            self.add_to_bin(*bin, *count);
        }
    }

    /// A statistic: `Sum`, `Average`, `Minimum`, `Maximum`, `SampleCount`
    /// or a percentile `pNN` / `pNN.NN` (nearest rank, within 1 %).
    pub fn statistic(&self, stat: &str) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        match stat {
            "Sum" => Some(self.sum),
            "Average" => Some(self.sum / self.count as f64),
            "Minimum" => Some(self.min),
            "Maximum" => Some(self.max),
            "SampleCount" => Some(self.count as f64),
            _ => {
                let p = parse_percentile(stat)?;
                let total: u64 = self.histogram.iter().map(|(_, c)| c).sum();
                let rank = nearest_rank(p, total);
                // The ends are known exactly.
                if rank <= 1 {
                    return Some(self.min);
                }
                if rank >= total {
                    return Some(self.max);
                }
                let mut seen = 0;
                for (bin, count) in &self.histogram {
                    seen += count;
                    if seen >= rank {
                        return Some(bin_upper(*bin).clamp(self.min, self.max));
                    }
                }
                None
            }
        }
    }
}

/// The nearest rank (1-based) of percentile `p` (0 to 100) among `total`
/// samples, within `1..=total`.
// `as` from f64 saturates, and with `p` within 0 to 100 the product is within
// 0..=total, up to f64 rounding, which the clamp brings back.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn nearest_rank(p: f64, total: u64) -> u64 {
    (((p / 100.0) * total as f64).ceil() as u64).clamp(1, total.max(1))
}

/// `p99` → 99.0; `p99.9` → 99.9.
pub fn parse_percentile(stat: &str) -> Option<f64> {
    let p: f64 = stat.strip_prefix('p')?.parse().ok()?;
    (0.0..=100.0).contains(&p).then_some(p)
}

/// One request through an API Gateway API, for the gateway to report.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequestSample {
    pub account: String,
    pub region: String,
    pub api_id: String,
    /// REST APIs are reported by name (`ApiName`), HTTP APIs by id (`ApiId`).
    pub api_name: Option<String>,
    pub stage: String,
    /// REST APIs: the method and resource path (`GET`, `/pets/{id}`).
    pub method: Option<String>,
    pub resource: Option<String>,
    /// HTTP APIs: the route key (`GET /pets/{id}`).
    pub route: Option<String>,
    pub status: u16,
    pub latency_ms: f64,
    /// Time spent in the integration (the function), when there was one.
    pub integration_latency_ms: Option<f64>,
    pub at_ms: i64,
}

/// Values of one series a service aggregated before reporting them (SQS
/// counts a queue's sends in atomics and reports them every few seconds),
/// so its hot path never talks to the aggregator.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceMetric {
    pub account: String,
    pub region: String,
    pub namespace: &'static str,
    pub metric: &'static str,
    pub dimensions: Vec<(String, String)>,
    pub at_ms: i64,
    pub values: Bucket,
}

enum Telemetry {
    Started(InvocationSubject, i64),
    Finished(InvocationSubject, Option<FinishedInvocation>),
    Throttled(InvocationSubject, i64),
    Async(AsyncSubject, AsyncMetric, i64),
    Api(ApiRequestSample),
    Service(ServiceMetric),
    /// Values a user published (PutMetricData): any namespace and name.
    Published(SeriesKey, i64, Bucket),
    Barrier(oneshot::Sender<()>),
}

/// Prometheus counters of one function version.
#[derive(Debug, Clone, Default)]
struct FunctionTotals {
    invocations: u64,
    errors: u64,
    throttles: u64,
    billed_ms: u64,
    duration_sum_ms: f64,
    /// Counts per [`DURATION_BUCKETS_MS`] (not cumulative).
    duration_buckets: Vec<u64>,
}

#[derive(Debug, Clone, Default)]
struct ApiTotals {
    requests: u64,
    errors_4xx: u64,
    errors_5xx: u64,
    latency_sum_ms: f64,
}

const DURATION_BUCKETS_MS: [f64; 14] = [
    1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0,
];

#[derive(Default)]
struct State {
    series: HashMap<SeriesKey, BTreeMap<i64, Bucket>>,
    dirty: HashSet<(SeriesKey, i64)>,
    /// Running invocations per (account, region, function).
    running: HashMap<(String, String, String), u32>,
    running_by_account: HashMap<(String, String), u32>,
    /// (account, region, function, version).
    totals: BTreeMap<(String, String, String, String), FunctionTotals>,
    /// Asynchronous-invocation counters per (account, region, function),
    /// by metric name (the age's sum is in milliseconds).
    async_totals: BTreeMap<(String, String, String), BTreeMap<&'static str, f64>>,
    /// (account, region, api, stage).
    api_totals: BTreeMap<(String, String, String, String), ApiTotals>,
    metering: HashMap<MeterKey, Usage>,
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the metrics aggregator has stopped")]
    Gone,
    #[error("metrics task failed: {0}")]
    Task(String),
}

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub queue_capacity: usize,
    /// How often buckets and metering are written to disk.
    pub flush_interval: Duration,
    /// How long minute buckets are kept (CloudWatch keeps 1-minute data 15 days).
    pub retention: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            queue_capacity: 65_536,
            flush_interval: Duration::from_secs(1),
            retention: Duration::from_secs(15 * 86_400),
        }
    }
}

pub struct Metrics {
    queue: mpsc::Sender<Telemetry>,
    state: Arc<Mutex<State>>,
    db: Arc<Mutex<Connection>>,
    dropped: AtomicU64,
    retention: Duration,
}

const SCHEMA: &str = "
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS metric_buckets(
    account TEXT NOT NULL, region TEXT NOT NULL, namespace TEXT NOT NULL, metric TEXT NOT NULL,
    dimensions TEXT NOT NULL, minute INTEGER NOT NULL,
    count INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL, histogram BLOB NOT NULL,
    PRIMARY KEY(account, region, namespace, metric, dimensions, minute)) WITHOUT ROWID;
";

/// Opens the metrics database (buckets and metering).
pub fn open_metrics_db(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(metering::SCHEMA)?;
    Ok(conn)
}

fn encode_histogram(histogram: &[(i32, u64)]) -> Vec<u8> {
    histogram
        .iter()
        .flat_map(|(bin, count)| bin.to_le_bytes().into_iter().chain(count.to_le_bytes()))
        .collect()
}

/// The bucket stored in a row's columns `first..first + 5` (count, sum,
/// min, max, histogram), as the bucket queries select them.
fn bucket_at(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Bucket> {
    Ok(Bucket {
        count: u64::try_from(r.get::<_, i64>(first)?).unwrap_or(0),
        sum: r.get(first + 1)?,
        min: r.get(first + 2)?,
        max: r.get(first + 3)?,
        histogram: decode_histogram(&r.get::<_, Vec<u8>>(first + 4)?),
    })
}

fn decode_histogram(bytes: &[u8]) -> Vec<(i32, u64)> {
    bytes
        .chunks_exact(12)
        .map(|c| {
            let mut bin = [0u8; 4];
            let mut count = [0u8; 8];
            bin.copy_from_slice(&c[..4]);
            count.copy_from_slice(&c[4..]);
            (i32::from_le_bytes(bin), u64::from_le_bytes(count))
        })
        .collect()
}

/// A retention period in milliseconds; one beyond `i64` (some 292 million
/// years) saturates, which keeps everything.
fn retention_ms(retention: Duration) -> i64 {
    i64::try_from(retention.as_millis()).unwrap_or(i64::MAX)
}

fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(60_000)
}

fn dims(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

/// The dimension sets Lambda reports an invocation under: the account as a
/// whole, the function, the qualifier it was invoked by (`Resource`), and
/// for an alias the version that ran.
fn lambda_dimension_sets(s: &InvocationSubject) -> Vec<Vec<(String, String)>> {
    let mut sets = vec![Vec::new(), dims(&[("FunctionName", &s.function)])];
    if let Some(q) = &s.qualifier {
        let resource = format!("{}:{q}", s.function);
        sets.push(dims(&[
            ("FunctionName", &s.function),
            ("Resource", &resource),
        ]));
        if s.alias.is_some() {
            sets.push(dims(&[
                ("FunctionName", &s.function),
                ("Resource", &resource),
                ("ExecutedVersion", &s.executed_version),
            ]));
        }
    }
    sets
}

impl State {
    /// The running totals of the function version `s` names.
    fn function_totals(&mut self, s: &InvocationSubject) -> &mut FunctionTotals {
        self.totals
            .entry((
                s.account.clone(),
                s.region.clone(),
                s.function.clone(),
                s.executed_version.clone(),
            ))
            .or_insert_with(|| FunctionTotals {
                duration_buckets: vec![0; DURATION_BUCKETS_MS.len()],
                ..Default::default()
            })
    }

    fn record(
        &mut self,
        (account, region): (&str, &str),
        namespace: &str,
        metric: &str,
        dimensions: Vec<(String, String)>,
        at_ms: i64,
        value: f64,
    ) {
        let key = SeriesKey {
            account: account.to_string(),
            region: region.to_string(),
            namespace: namespace.to_string(),
            metric: metric.to_string(),
            dimensions,
        };
        let minute = minute_of(at_ms);
        self.series
            .entry(key.clone())
            .or_default()
            .entry(minute)
            .or_insert_with(Bucket::new)
            .add(value);
        self.dirty.insert((key, minute));
    }

    fn apply(&mut self, message: Telemetry) {
        match message {
            Telemetry::Started(s, at_ms) => {
                let running = self
                    .running
                    .entry((s.account.clone(), s.region.clone(), s.function.clone()))
                    .or_default();
                *running += 1;
                let running = *running as f64;
                let account_running = self
                    .running_by_account
                    .entry((s.account.clone(), s.region.clone()))
                    .or_default();
                *account_running += 1;
                let account_running = *account_running as f64;
                let function_dims = dims(&[("FunctionName", &s.function)]);
                self.record(
                    (&s.account, &s.region),
                    LAMBDA_NAMESPACE,
                    "ConcurrentExecutions",
                    function_dims,
                    at_ms,
                    running,
                );
                self.record(
                    (&s.account, &s.region),
                    LAMBDA_NAMESPACE,
                    "ConcurrentExecutions",
                    Vec::new(),
                    at_ms,
                    account_running,
                );
            }
            Telemetry::Finished(s, record) => {
                // Running invocations of the function, this one included.
                let mut running_with_this = 0;
                if let Some(n) =
                    self.running
                        .get_mut(&(s.account.clone(), s.region.clone(), s.function.clone()))
                {
                    running_with_this = *n;
                    *n = n.saturating_sub(1);
                }
                if let Some(n) = self
                    .running_by_account
                    .get_mut(&(s.account.clone(), s.region.clone()))
                {
                    *n = n.saturating_sub(1);
                }
                let Some(record) = record else { return };
                let failed = record.outcome.is_error();
                let error = if failed { 1.0 } else { 0.0 };
                let duration_ms = record.duration.as_secs_f64() * 1000.0;
                let at = record.finished_at_ms;
                if let (Some(allocated), Some(qualifier)) = (
                    record.provisioned_allocation.filter(|a| *a > 0),
                    &s.qualifier,
                ) {
                    // Provisioned instances are handed out before any other,
                    // so the function's running invocations up to the
                    // allocation are on provisioned ones.
                    let executions = running_with_this.clamp(1, allocated) as f64;
                    let resource = format!("{}:{qualifier}", s.function);
                    let set = dims(&[("FunctionName", &s.function), ("Resource", &resource)]);
                    let scope = (s.account.as_str(), s.region.as_str());
                    self.record(
                        scope,
                        LAMBDA_NAMESPACE,
                        "ProvisionedConcurrencyInvocations",
                        set.clone(),
                        at,
                        1.0,
                    );
                    self.record(
                        scope,
                        LAMBDA_NAMESPACE,
                        "ProvisionedConcurrentExecutions",
                        set.clone(),
                        at,
                        executions,
                    );
                    self.record(
                        scope,
                        LAMBDA_NAMESPACE,
                        "ProvisionedConcurrencyUtilization",
                        set,
                        at,
                        executions / allocated as f64,
                    );
                }
                for set in lambda_dimension_sets(&s) {
                    self.record(
                        (&s.account, &s.region),
                        LAMBDA_NAMESPACE,
                        "Invocations",
                        set.clone(),
                        at,
                        1.0,
                    );
                    self.record(
                        (&s.account, &s.region),
                        LAMBDA_NAMESPACE,
                        "Errors",
                        set.clone(),
                        at,
                        error,
                    );
                    self.record(
                        (&s.account, &s.region),
                        LAMBDA_NAMESPACE,
                        "Duration",
                        set,
                        at,
                        duration_ms,
                    );
                }
                let totals = self.function_totals(&s);
                totals.invocations += 1;
                totals.errors += u64::from(failed);
                totals.billed_ms += record.billed_ms;
                totals.duration_sum_ms += duration_ms;
                if let Some(i) = DURATION_BUCKETS_MS.iter().position(|b| duration_ms <= *b) {
                    totals.duration_buckets[i] += 1;
                }
                let usage = self
                    .metering
                    .entry(MeterKey {
                        account: s.account.clone(),
                        month: metering::month_of(at),
                        region: s.region.clone(),
                        function: s.function.clone(),
                        memory_mb: s.memory_mb,
                    })
                    .or_default();
                usage.requests += 1;
                usage.billed_ms += record.billed_ms;
            }
            Telemetry::Throttled(s, at_ms) => {
                for set in lambda_dimension_sets(&s) {
                    self.record(
                        (&s.account, &s.region),
                        LAMBDA_NAMESPACE,
                        "Throttles",
                        set,
                        at_ms,
                        1.0,
                    );
                }
                self.function_totals(&s).throttles += 1;
            }
            Telemetry::Async(s, metric, at_ms) => {
                let function = dims(&[("FunctionName", &s.function)]);
                for set in [Vec::new(), function] {
                    self.record(
                        (&s.account, &s.region),
                        LAMBDA_NAMESPACE,
                        metric.name(),
                        set,
                        at_ms,
                        metric.value(),
                    );
                }
                *self
                    .async_totals
                    .entry((s.account, s.region, s.function))
                    .or_default()
                    .entry(metric.name())
                    .or_default() += metric.value();
            }
            Telemetry::Api(sample) => self.record_api(sample),
            Telemetry::Service(m) => {
                let key = SeriesKey {
                    account: m.account,
                    region: m.region,
                    namespace: m.namespace.to_string(),
                    metric: m.metric.to_string(),
                    dimensions: m.dimensions,
                };
                let minute = minute_of(m.at_ms);
                self.series
                    .entry(key.clone())
                    .or_default()
                    .entry(minute)
                    .or_insert_with(Bucket::new)
                    .merge(&m.values);
                self.dirty.insert((key, minute));
            }
            Telemetry::Published(key, at_ms, values) => {
                let minute = minute_of(at_ms);
                self.series
                    .entry(key.clone())
                    .or_default()
                    .entry(minute)
                    .or_insert_with(Bucket::new)
                    .merge(&values);
                self.dirty.insert((key, minute));
            }
            Telemetry::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }

    fn record_api(&mut self, a: ApiRequestSample) {
        let (api_dim, api_value) = match &a.api_name {
            Some(name) => ("ApiName", name.clone()),
            None => ("ApiId", a.api_id.clone()),
        };
        let mut sets = vec![
            dims(&[(api_dim, &api_value)]),
            dims(&[(api_dim, &api_value), ("Stage", &a.stage)]),
        ];
        if let (Some(method), Some(resource)) = (&a.method, &a.resource) {
            sets.push(dims(&[
                (api_dim, &api_value),
                ("Stage", &a.stage),
                ("Method", method),
                ("Resource", resource),
            ]));
        }
        if let Some(route) = &a.route {
            sets.push(dims(&[
                (api_dim, &api_value),
                ("Stage", &a.stage),
                ("Route", route),
            ]));
        }
        let (client_error, server_error) = ((400..500).contains(&a.status), a.status >= 500);
        let e4 = if client_error { 1.0 } else { 0.0 };
        let e5 = if server_error { 1.0 } else { 0.0 };
        for set in sets {
            self.record(
                (&a.account, &a.region),
                API_GATEWAY_NAMESPACE,
                "Count",
                set.clone(),
                a.at_ms,
                1.0,
            );
            self.record(
                (&a.account, &a.region),
                API_GATEWAY_NAMESPACE,
                "4XXError",
                set.clone(),
                a.at_ms,
                e4,
            );
            self.record(
                (&a.account, &a.region),
                API_GATEWAY_NAMESPACE,
                "5XXError",
                set.clone(),
                a.at_ms,
                e5,
            );
            self.record(
                (&a.account, &a.region),
                API_GATEWAY_NAMESPACE,
                "Latency",
                set.clone(),
                a.at_ms,
                a.latency_ms,
            );
            if let Some(integration) = a.integration_latency_ms {
                self.record(
                    (&a.account, &a.region),
                    API_GATEWAY_NAMESPACE,
                    "IntegrationLatency",
                    set,
                    a.at_ms,
                    integration,
                );
            }
        }
        let totals = self
            .api_totals
            .entry((a.account, a.region, a.api_id, a.stage))
            .or_default();
        totals.requests += 1;
        totals.errors_4xx += u64::from(client_error);
        totals.errors_5xx += u64::from(server_error);
        totals.latency_sum_ms += a.latency_ms;
    }
}

/// One statistic over one period.
#[derive(Debug, Clone, PartialEq)]
pub struct Datapoint {
    /// Start of the period, milliseconds since the epoch.
    pub timestamp_ms: i64,
    pub bucket: Bucket,
}

impl Metrics {
    /// Opens `metrics.db` (loading the buckets still within retention) and
    /// starts the aggregator and the periodic flush on the current runtime.
    pub fn open(path: &Path, config: MetricsConfig) -> Result<Arc<Metrics>, MetricsError> {
        let conn = open_metrics_db(path)?;
        let mut state = State::default();
        let oldest =
            minute_of(chrono::Utc::now().timestamp_millis() - retention_ms(config.retention));
        {
            let mut stmt = conn.prepare(
                "SELECT account, region, namespace, metric, dimensions, minute, count, sum, min, max, histogram
                 FROM metric_buckets WHERE minute >= ?1",
            )?;
            let rows = stmt.query_map(params![oldest], |r| {
                let dims_json: String = r.get(4)?;
                Ok((
                    SeriesKey {
                        account: r.get(0)?,
                        region: r.get(1)?,
                        namespace: r.get(2)?,
                        metric: r.get(3)?,
                        dimensions: serde_json::from_str(&dims_json).unwrap_or_default(),
                    },
                    r.get::<_, i64>(5)?,
                    bucket_at(r, 6)?,
                ))
            })?;
            for row in rows {
                let (key, minute, bucket) = row?;
                state.series.entry(key).or_default().insert(minute, bucket);
            }
        }
        let (tx, mut rx) = mpsc::channel::<Telemetry>(config.queue_capacity.max(1));
        let metrics = Arc::new(Metrics {
            queue: tx,
            state: Arc::new(Mutex::new(state)),
            db: Arc::new(Mutex::new(conn)),
            dropped: AtomicU64::new(0),
            retention: config.retention,
        });
        let state = metrics.state.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut state = state.lock();
                state.apply(first);
                for _ in 0..1024 {
                    match rx.try_recv() {
                        Ok(next) => state.apply(next),
                        Err(_) => break,
                    }
                }
            }
        });
        let weak = Arc::downgrade(&metrics);
        let interval = config.flush_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                let Some(metrics) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = metrics.flush().await {
                    tracing::warn!(error = %e, "cannot persist metrics");
                }
            }
        });
        Ok(metrics)
    }

    fn send(&self, message: Telemetry) {
        if self.queue.try_send(message).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn started(&self, subject: &InvocationSubject) {
        self.send(Telemetry::Started(
            subject.clone(),
            chrono::Utc::now().timestamp_millis(),
        ));
    }

    pub fn finished(&self, subject: InvocationSubject, record: Option<FinishedInvocation>) {
        self.send(Telemetry::Finished(subject, record));
    }

    pub fn throttled(&self, subject: InvocationSubject, at_ms: i64) {
        self.send(Telemetry::Throttled(subject, at_ms));
    }

    /// Records one asynchronous-invocation measurement. Never blocks.
    pub fn async_event(&self, subject: AsyncSubject, metric: AsyncMetric, at_ms: i64) {
        self.send(Telemetry::Async(subject, metric, at_ms));
    }

    /// Records one API Gateway request (Count, 4XXError, 5XXError, Latency,
    /// IntegrationLatency). Never blocks.
    pub fn record_api_request(&self, sample: ApiRequestSample) {
        self.send(Telemetry::Api(sample));
    }

    /// Records values a service aggregated itself. Never blocks.
    pub fn record_service_metric(&self, metric: ServiceMetric) {
        self.send(Telemetry::Service(metric));
    }

    /// Records values a user published (PutMetricData) under any series.
    /// Waits for room in the aggregator's queue instead of dropping them:
    /// the caller was told they were accepted.
    pub async fn publish(
        &self,
        key: SeriesKey,
        at_ms: i64,
        values: Bucket,
    ) -> Result<(), MetricsError> {
        self.queue
            .send(Telemetry::Published(key, at_ms, values))
            .await
            .map_err(|_| MetricsError::Gone)
    }

    /// Records dropped because the aggregator's queue was full.
    pub fn dropped_records(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until everything sent so far is aggregated.
    pub async fn settle(&self) -> Result<(), MetricsError> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .send(Telemetry::Barrier(tx))
            .await
            .map_err(|_| MetricsError::Gone)?;
        rx.await.map_err(|_| MetricsError::Gone)
    }

    /// Writes changed buckets and metering to disk, and forgets buckets
    /// older than the retention.
    pub async fn flush(&self) -> Result<(), MetricsError> {
        let (buckets, usage) = {
            let mut state = self.state.lock();
            let dirty: Vec<(SeriesKey, i64)> = state.dirty.drain().collect();
            let buckets: Vec<(SeriesKey, i64, Bucket)> = dirty
                .into_iter()
                .filter_map(|(key, minute)| {
                    let bucket = state.series.get(&key)?.get(&minute)?.clone();
                    Some((key, minute, bucket))
                })
                .collect();
            let usage: Vec<(MeterKey, Usage)> = state.metering.drain().collect();
            let oldest =
                minute_of(chrono::Utc::now().timestamp_millis() - retention_ms(self.retention));
            state.series.retain(|_, minutes| {
                minutes.retain(|m, _| *m >= oldest);
                !minutes.is_empty()
            });
            (buckets, usage)
        };
        if buckets.is_empty() && usage.is_empty() {
            return Ok(());
        }
        let db = self.db.clone();
        let retention_ms = retention_ms(self.retention);
        let restore = usage.clone();
        let written = tokio::task::spawn_blocking(move || -> Result<(), rusqlite::Error> {
            let mut conn = db.lock();
            metering::add_usage(&mut conn, &usage)?;
            let tx = conn.transaction()?;
            {
                let mut upsert = tx.prepare_cached(
                    "INSERT OR REPLACE INTO metric_buckets(account, region, namespace, metric, dimensions, minute, count, sum, min, max, histogram)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?;
                for (key, minute, bucket) in &buckets {
                    let dims_json = serde_json::to_string(&key.dimensions).unwrap_or_else(|_| "[]".into());
                    upsert.execute(params![
                        key.account,
                        key.region,
                        key.namespace,
                        key.metric,
                        dims_json,
                        minute,
                        i64::try_from(bucket.count).unwrap_or(i64::MAX),
                        bucket.sum,
                        bucket.min,
                        bucket.max,
                        encode_histogram(&bucket.histogram)
                    ])?;
                }
                let oldest = minute_of(chrono::Utc::now().timestamp_millis() - retention_ms);
                tx.execute("DELETE FROM metric_buckets WHERE minute < ?1", params![oldest])?;
            }
            tx.commit()
        })
        .await
        .map_err(|e| MetricsError::Task(e.to_string()))?;
        if let Err(e) = written {
            // Metering must not be lost to a failed write: keep it for the next flush.
            let mut state = self.state.lock();
            for (key, u) in restore {
                let entry = state.metering.entry(key).or_default();
                entry.requests += u.requests;
                entry.billed_ms += u.billed_ms;
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Aggregates a series over `[start, end)` in periods of `period_s`
    /// seconds (periods start at `start` rounded down to the minute).
    pub fn statistics(
        &self,
        key: &SeriesKey,
        start_ms: i64,
        end_ms: i64,
        period_s: i64,
    ) -> Vec<Datapoint> {
        let state = self.state.lock();
        match state.series.get(key) {
            Some(minutes) => aggregate(minutes, start_ms, end_ms, period_s),
            None => Vec::new(),
        }
    }

    /// The series of an account in a region, optionally narrowed.
    pub fn list_series(
        &self,
        account: &str,
        region: &str,
        namespace: Option<&str>,
        metric: Option<&str>,
        dimension_filters: &[(String, Option<String>)],
    ) -> Vec<SeriesKey> {
        let state = self.state.lock();
        let mut keys: Vec<SeriesKey> = state
            .series
            .keys()
            .filter(|k| k.account == account && k.region == region)
            .filter(|k| namespace.is_none_or(|n| k.namespace == n))
            .filter(|k| metric.is_none_or(|m| k.metric == m))
            .filter(|k| {
                dimension_filters.iter().all(|(name, value)| {
                    k.dimensions
                        .iter()
                        .any(|(n, v)| n == name && value.as_ref().is_none_or(|want| want == v))
                })
            })
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    /// The Prometheus text exposition of every account's metrics.
    pub fn prometheus_text(&self, extra: &[(&str, &str, u64)]) -> String {
        let state = self.state.lock();
        prometheus::encode(&state, self.dropped_records(), extra)
    }

    /// Metering not yet on disk (the cost report adds it to what is).
    pub fn usage_db(&self) -> Arc<Mutex<Connection>> {
        self.db.clone()
    }
}

/// Merges minute buckets into periods of `period_s` seconds over
/// `[start, end)`; periods start at `start` rounded down to the minute.
pub fn aggregate(
    minutes: &BTreeMap<i64, Bucket>,
    start_ms: i64,
    end_ms: i64,
    period_s: i64,
) -> Vec<Datapoint> {
    let period_ms = period_s.max(60) * 1000;
    let origin = minute_of(start_ms) * 60_000;
    let mut periods: BTreeMap<i64, Bucket> = BTreeMap::new();
    for (minute, bucket) in minutes.range(minute_of(start_ms)..) {
        let at = minute * 60_000;
        if at >= end_ms {
            break;
        }
        let period_start = origin + (at - origin).div_euclid(period_ms) * period_ms;
        periods
            .entry(period_start)
            .or_insert_with(Bucket::new)
            .merge(bucket);
    }
    periods
        .into_iter()
        .map(|(timestamp_ms, bucket)| Datapoint {
            timestamp_ms,
            bucket,
        })
        .collect()
}

/// The persisted minutes of one series (for `strato metrics` beside a
/// server, which writes them every second).
pub fn read_minutes(
    conn: &Connection,
    key: &SeriesKey,
    start_ms: i64,
    end_ms: i64,
) -> Result<BTreeMap<i64, Bucket>, rusqlite::Error> {
    let dims_json = serde_json::to_string(&key.dimensions).unwrap_or_else(|_| "[]".into());
    let mut stmt = conn.prepare_cached(
        "SELECT minute, count, sum, min, max, histogram FROM metric_buckets
         WHERE account=?1 AND region=?2 AND namespace=?3 AND metric=?4 AND dimensions=?5
           AND minute >= ?6 AND minute < ?7",
    )?;
    let rows = stmt.query_map(
        params![
            key.account,
            key.region,
            key.namespace,
            key.metric,
            dims_json,
            minute_of(start_ms),
            minute_of(end_ms) + 1
        ],
        |r| Ok((r.get::<_, i64>(0)?, bucket_at(r, 1)?)),
    )?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_the_nearest_rank_within_one_percent() {
        let mut b = Bucket::new();
        for v in 1..=100 {
            b.add(v as f64);
        }
        let within = |stat: &str, want: f64| {
            let got = b.statistic(stat).unwrap();
            assert!((got - want).abs() <= want * 0.01, "{stat}: {got} vs {want}");
        };
        within("p50", 50.0);
        within("p90", 90.0);
        within("p99", 99.0);
        assert_eq!(b.statistic("p100"), Some(100.0));
        assert_eq!(b.statistic("p0"), Some(1.0));
        assert_eq!(b.statistic("Average"), Some(50.5));
        assert_eq!(b.statistic("SampleCount"), Some(100.0));
        assert_eq!(b.statistic("p101"), None);
    }

    #[test]
    fn api_requests_are_counted_under_api_gateway_dimensions() {
        let mut state = State::default();
        let sample = |status: u16| ApiRequestSample {
            account: "a".into(),
            region: "r".into(),
            api_id: "abc123".into(),
            api_name: Some("pets".into()),
            stage: "prod".into(),
            method: Some("GET".into()),
            resource: Some("/pets/{id}".into()),
            route: None,
            status,
            latency_ms: 12.0,
            integration_latency_ms: Some(10.0),
            at_ms: 60_000,
        };
        state.apply(Telemetry::Api(sample(200)));
        state.apply(Telemetry::Api(sample(404)));
        state.apply(Telemetry::Api(sample(502)));
        let series = |metric: &str, dims: &[(&str, &str)]| {
            let key = SeriesKey {
                account: "a".into(),
                region: "r".into(),
                namespace: API_GATEWAY_NAMESPACE.into(),
                metric: metric.into(),
                dimensions: super::dims(dims),
            };
            state.series[&key][&1].clone()
        };
        let full = [
            ("ApiName", "pets"),
            ("Stage", "prod"),
            ("Method", "GET"),
            ("Resource", "/pets/{id}"),
        ];
        assert_eq!(series("Count", &full).sum, 3.0);
        assert_eq!(series("4XXError", &full).sum, 1.0);
        assert_eq!(series("5XXError", &[("ApiName", "pets")]).sum, 1.0);
        assert_eq!(series("IntegrationLatency", &full[..2]).max, 10.0);
    }

    #[test]
    fn published_values_with_counts_make_one_bucket() {
        let bucket = Bucket::of_values(&[(20.0, 1), (30.0, 2), (99.0, 0)]);
        assert_eq!(bucket.statistic("SampleCount"), Some(3.0));
        assert_eq!(bucket.statistic("Sum"), Some(80.0));
        assert_eq!(bucket.statistic("Minimum"), Some(20.0));
        assert_eq!(bucket.statistic("Maximum"), Some(30.0));
        assert_eq!(Bucket::of_values(&[]).statistic("Sum"), None);
    }

    #[tokio::test]
    async fn published_series_are_listed_and_aggregated() {
        let dir = tempfile::tempdir().unwrap();
        let metrics =
            Metrics::open(&dir.path().join("metrics.db"), MetricsConfig::default()).unwrap();
        let key = SeriesKey {
            account: "1".into(),
            region: "r".into(),
            namespace: "Custom/App".into(),
            metric: "Load".into(),
            dimensions: vec![("Host".into(), "a".into())],
        };
        metrics
            .publish(key.clone(), 120_000, Bucket::of_values(&[(2.0, 3)]))
            .await
            .unwrap();
        metrics.settle().await.unwrap();
        assert_eq!(
            metrics.list_series("1", "r", Some("Custom/App"), None, &[]),
            vec![key.clone()]
        );
        let points = metrics.statistics(&key, 60_000, 240_000, 60);
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].timestamp_ms, 120_000);
        assert_eq!(points[0].bucket.statistic("Sum"), Some(6.0));
    }

    #[test]
    fn histograms_round_trip_through_bytes() {
        let histogram = vec![(i32::MIN, 2), (-7, 1), (40, 1 << 40)];
        assert_eq!(decode_histogram(&encode_histogram(&histogram)), histogram);
    }
}
