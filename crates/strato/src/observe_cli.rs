//! `strato cost`, `strato logs` and `strato metrics`: what a function did
//! and what it costs, for users without the AWS CLI.
//!
//! They read the data directory (like `strato accounts`), so they work
//! beside a running server and after it stopped: the server commits logs
//! as they come and metrics and metering every second.

use std::path::PathBuf;
use std::time::Duration;

use strato_engine::logs::LogOwner;
use strato_observe::logstore::{log_db_path, FilterQuery, LogReader};
use strato_observe::metrics::{self, SeriesKey, LAMBDA_NAMESPACE};
use strato_observe::FilterPattern;

/// Whose data a command reads.
#[derive(clap::Args, Clone, Debug)]
pub struct AccountArgs {
    /// Where Strato keeps its state.
    #[arg(long, env = "STRATO_DATA_DIR", default_value = "./.strato")]
    pub data_dir: PathBuf,
    /// The 12-digit account id; default: the account of AWS_ACCESS_KEY_ID,
    /// else the local account 000000000000.
    #[arg(long)]
    pub account: Option<String>,
    /// The region (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
}

impl AccountArgs {
    async fn resolve(&self) -> Result<(String, String), String> {
        let region = self
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_string());
        if let Some(account) = &self.account {
            return Ok((account.clone(), region));
        }
        if let Ok(key) = std::env::var("AWS_ACCESS_KEY_ID") {
            let store = crate::server::open_store(&self.data_dir).map_err(|e| e.to_string())?;
            let keys = strato_store::Store::list_access_keys(&store)
                .await
                .map_err(|e| e.to_string())?;
            return keys
                .into_iter()
                .find(|k| k.access_key_id == key)
                .map(|k| (k.account_id, region))
                .ok_or_else(|| format!("no account has the access key {key} (AWS_ACCESS_KEY_ID)"));
        }
        Ok((crate::accounts::LOCAL_ACCOUNT_ID.to_string(), region))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CostFormat {
    Table,
    Json,
    Csv,
}

/// `strato cost`: requests, GB-seconds, free tier and cost for a month.
pub async fn cost(
    args: &AccountArgs,
    month: Option<String>,
    function: Option<String>,
    format: CostFormat,
) -> Result<String, String> {
    let (account, _) = args.resolve().await?;
    let month = month.unwrap_or_else(|| chrono::Utc::now().format("%Y-%m").to_string());
    if !strato_observe::metering::is_month(&month) {
        return Err(format!("--month must be YYYY-MM, got {month:?}"));
    }
    let report = strato_observe::cost_report_from_data_dir(
        &args.data_dir,
        &account,
        &month,
        function.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    Ok(match format {
        CostFormat::Table => report.to_table(),
        CostFormat::Json => {
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())? + "\n"
        }
        CostFormat::Csv => report.to_csv(),
    })
}

/// `10m`, `2h`, `1d`, `30s`.
pub fn parse_since(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("cannot read {text:?} as a duration (e.g. 10m, 2h, 1d)"))?;
    let secs = match unit {
        "s" => n,
        "m" | "" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        "w" => n * 7 * 86_400,
        _ => return Err(format!("unknown unit in {text:?} (s, m, h, d, w)")),
    };
    Ok(Duration::from_secs(secs))
}

/// The epoch milliseconds `since` before `ms`; a span reaching past the
/// start of `i64` time saturates there (everything is included).
fn ms_before(ms: i64, since: Duration) -> i64 {
    ms.saturating_sub(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// `strato logs NAME`: the function's log lines as `aws logs tail` prints
/// them (time, stream, message), optionally following new ones.
pub async fn logs(
    args: &AccountArgs,
    function: &str,
    since: Duration,
    follow: bool,
    filter_pattern: Option<String>,
) -> Result<(), String> {
    let (account, region) = args.resolve().await?;
    let owner = LogOwner { account, region };
    let group = format!("/aws/lambda/{function}");
    let pattern = match filter_pattern {
        Some(p) => Some(FilterPattern::parse(&p).map_err(|e| e.to_string())?),
        None => None,
    };
    let path = log_db_path(&args.data_dir);
    if !path.exists() {
        return Err(format!("no logs in {} yet", args.data_dir.display()));
    }
    let reader = LogReader::open(&path).map_err(|e| e.to_string())?;
    let mut start = ms_before(chrono::Utc::now().timestamp_millis(), since);
    let mut last_id = i64::MIN;
    loop {
        let mut token: Option<String> = None;
        loop {
            let query = FilterQuery {
                start_ms: Some(start),
                pattern: pattern.clone(),
                next_token: token.clone(),
                limit: 10_000,
                ..Default::default()
            };
            let page = match reader.filter_events(&owner, &group, &query) {
                Ok(Ok(page)) => page,
                Ok(Err(rejection)) if !follow => {
                    return Err(format!("{group}: {rejection}"));
                }
                Ok(Err(_)) => break,
                Err(e) => return Err(e.to_string()),
            };
            for event in page.events {
                if event.timestamp_ms == start && event.id <= last_id {
                    continue;
                }
                println!(
                    "{} {} {}",
                    format_time(event.timestamp_ms),
                    event.stream,
                    event.message
                );
                if event.timestamp_ms > start {
                    last_id = i64::MIN;
                }
                start = start.max(event.timestamp_ms);
                last_id = last_id.max(event.id);
            }
            match page.next_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `strato metrics NAME`: a function's CloudWatch metrics, one row per period.
pub async fn metrics(
    args: &AccountArgs,
    function: &str,
    since: Duration,
    period_s: i64,
) -> Result<String, String> {
    let (account, region) = args.resolve().await?;
    let db = strato_observe::metrics_db_path(&args.data_dir);
    if !db.exists() {
        return Err(format!("no metrics in {} yet", args.data_dir.display()));
    }
    let conn = metrics::open_metrics_db(&db).map_err(|e| e.to_string())?;
    let end = chrono::Utc::now().timestamp_millis() + 60_000;
    let start = ms_before(end - 60_000, since);
    let series = |metric: &str| -> Result<Vec<metrics::Datapoint>, String> {
        let key = SeriesKey {
            account: account.clone(),
            region: region.clone(),
            namespace: LAMBDA_NAMESPACE.to_string(),
            metric: metric.to_string(),
            dimensions: vec![("FunctionName".to_string(), function.to_string())],
        };
        let minutes = metrics::read_minutes(&conn, &key, start, end).map_err(|e| e.to_string())?;
        Ok(metrics::aggregate(&minutes, start, end, period_s))
    };
    let invocations = series("Invocations")?;
    let errors = series("Errors")?;
    let throttles = series("Throttles")?;
    let duration = series("Duration")?;
    let concurrency = series("ConcurrentExecutions")?;
    let mut times: Vec<i64> = invocations
        .iter()
        .chain(&throttles)
        .chain(&concurrency)
        .map(|d| d.timestamp_ms)
        .collect();
    times.sort_unstable();
    times.dedup();
    let find = |points: &[metrics::Datapoint], t: i64, stat: &str| {
        points
            .iter()
            .find(|d| d.timestamp_ms == t)
            .and_then(|d| d.bucket.statistic(stat))
    };
    let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let count = |v: Option<f64>| v.map_or("0".to_string(), |v| format!("{v}"));
    let mut out = format!(
        "{:<24} {:>11} {:>7} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11}\n",
        "PERIOD",
        "INVOCATIONS",
        "ERRORS",
        "THROTTLES",
        "AVG MS",
        "P50 MS",
        "P90 MS",
        "P99 MS",
        "MAX MS",
        "CONCURRENT"
    );
    for t in times {
        out.push_str(&format!(
            "{:<24} {:>11} {:>7} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11}\n",
            format_time(t),
            count(find(&invocations, t, "Sum")),
            count(find(&errors, t, "Sum")),
            count(find(&throttles, t, "Sum")),
            show(find(&duration, t, "Average")),
            show(find(&duration, t, "p50")),
            show(find(&duration, t, "p90")),
            show(find(&duration, t, "p99")),
            show(find(&duration, t, "Maximum")),
            count(find(&concurrency, t, "Maximum")),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_the_units_aws_logs_tail_takes() {
        assert_eq!(parse_since("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_since("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_since("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_since("ten").is_err());
    }
}
