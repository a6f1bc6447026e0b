//! Strato's observability: function logs in a durable CloudWatch Logs
//! store ([`logstore`]), CloudWatch metrics and Prometheus text
//! ([`metrics`]), and metering with a cost report ([`metering`]).
//!
//! [`Observe`] is the engine's `LogSink` (through its [`LogStore`]) and its
//! `InvocationObserver`: nothing it does on an invocation's path blocks or
//! touches a database — records go onto bounded channels and background
//! tasks write them (`<data-dir>/logs.db`, `<data-dir>/metrics.db`, files of
//! their own so telemetry never contends with the control plane's
//! `strato.db`).

pub mod filter;
pub mod logstore;
pub mod metering;
pub mod metrics;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strato_model::telemetry::{
    AsyncMetric, AsyncSubject, FinishedInvocation, InvocationObserver, InvocationSubject,
};

pub use filter::FilterPattern;
pub use logstore::{LogStore, LogStoreConfig};
pub use metering::{CostReport, PriceTable};
pub use metrics::{ApiRequestSample, Metrics, MetricsConfig, ServiceMetric};

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("cannot open the log store: {0}")]
    Logs(#[from] logstore::LogStoreError),
    #[error("cannot open the metrics store: {0}")]
    Metrics(#[from] metrics::MetricsError),
    #[error("{0}")]
    Prices(#[from] metering::PriceTableError),
    #[error("metering database: {0}")]
    Sql(#[from] rusqlite::Error),
}

#[derive(Debug, Clone, Default)]
pub struct ObserveConfig {
    pub logs: LogStoreConfig,
    pub metrics: MetricsConfig,
    /// The price table; `None`: `<data-dir>/prices.json`, else AWS's.
    pub prices: Option<PriceTable>,
}

/// Logs, metrics and metering of one server.
pub struct Observe {
    logs: Arc<LogStore>,
    metrics: Arc<Metrics>,
    prices: PriceTable,
}

/// Where the metrics and metering database of a data directory lives.
pub fn metrics_db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("metrics.db")
}

impl Observe {
    /// Opens the stores under `data_dir` and starts their background tasks
    /// on the current tokio runtime.
    pub fn open(data_dir: &Path, config: ObserveConfig) -> Result<Arc<Observe>, ObserveError> {
        let prices = match config.prices {
            Some(prices) => prices,
            None => PriceTable::for_data_dir(data_dir)?,
        };
        let logs = LogStore::open(&logstore::log_db_path(data_dir), config.logs)?;
        let metrics = Metrics::open(&metrics_db_path(data_dir), config.metrics)?;
        Ok(Arc::new(Observe {
            logs,
            metrics,
            prices,
        }))
    }

    pub fn logs(&self) -> &Arc<LogStore> {
        &self.logs
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }

    /// For the gateway: one API request (never blocks).
    pub fn record_api_request(&self, sample: ApiRequestSample) {
        self.metrics.record_api_request(sample);
    }

    /// The cost report of `account` for `month` (`YYYY-MM`), including every
    /// invocation that finished before the call.
    pub async fn cost_report(
        &self,
        account: &str,
        month: &str,
        function: Option<&str>,
    ) -> Result<CostReport, ObserveError> {
        self.metrics.settle().await?;
        self.metrics.flush().await?;
        let db = self.metrics.usage_db();
        let (account, month, function) = (
            account.to_string(),
            month.to_string(),
            function.map(str::to_string),
        );
        let prices = self.prices.clone();
        tokio::task::spawn_blocking(move || {
            let usage = metering::read_usage(&db.lock(), &account, &month, function.as_deref())?;
            Ok(CostReport::compute(&account, &month, &usage, &prices))
        })
        .await
        .map_err(|e| ObserveError::Metrics(metrics::MetricsError::Task(e.to_string())))?
    }

    /// The Prometheus text for `/metrics`.
    pub fn prometheus_text(&self) -> String {
        self.metrics.prometheus_text(&[(
            "strato_logs_dropped_events_total",
            "Log events dropped because the log writer's queue was full.",
            self.logs.dropped_events(),
        )])
    }

    /// Writes what is pending (at shutdown).
    pub async fn flush(&self) {
        if let Err(e) = self.metrics.settle().await {
            tracing::warn!(error = %e, "metrics did not settle");
        }
        if let Err(e) = self.metrics.flush().await {
            tracing::warn!(error = %e, "cannot persist metrics");
        }
        if let Err(e) = self.logs.flush().await {
            tracing::warn!(error = %e, "cannot persist logs");
        }
    }
}

impl InvocationObserver for Observe {
    fn started(&self, subject: &InvocationSubject) {
        self.metrics.started(subject);
    }

    fn finished(&self, subject: InvocationSubject, record: Option<FinishedInvocation>) {
        self.metrics.finished(subject, record);
    }

    fn throttled(&self, subject: InvocationSubject, at_ms: i64) {
        self.metrics.throttled(subject, at_ms);
    }

    fn async_event(&self, subject: AsyncSubject, metric: AsyncMetric, at_ms: i64) {
        self.metrics.async_event(subject, metric, at_ms);
    }
}

/// Reads a data directory's cost report without a running server (what
/// the server has not flushed yet — at most a second's worth — is missing).
pub fn cost_report_from_data_dir(
    data_dir: &Path,
    account: &str,
    month: &str,
    function: Option<&str>,
) -> Result<CostReport, ObserveError> {
    let prices = PriceTable::for_data_dir(data_dir)?;
    let conn = metrics::open_metrics_db(&metrics_db_path(data_dir))?;
    let usage = metering::read_usage(&conn, account, month, function)?;
    Ok(CostReport::compute(account, month, &usage, &prices))
}
