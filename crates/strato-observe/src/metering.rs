//! Metering and the cost report: requests and billed duration per
//! (account, month, region, function, memory size), priced by a price
//! table with a monthly free tier per account.

use std::path::Path;

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

/// What invocations cost. The default is AWS us-east-1 x86.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PriceTable {
    pub usd_per_million_requests: f64,
    pub usd_per_gb_second: f64,
    /// Requests free each month, per account.
    pub free_requests_per_month: u64,
    /// GB-seconds free each month, per account.
    pub free_gb_seconds_per_month: f64,
}

impl Default for PriceTable {
    fn default() -> Self {
        PriceTable {
            usd_per_million_requests: 0.20,
            usd_per_gb_second: 0.000_016_666_7,
            free_requests_per_month: 1_000_000,
            free_gb_seconds_per_month: 400_000.0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PriceTableError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid price table: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
}

impl PriceTable {
    /// `<data-dir>/prices.json` when it exists, else AWS's us-east-1 prices.
    pub fn for_data_dir(data_dir: &Path) -> Result<PriceTable, PriceTableError> {
        let path = data_dir.join("prices.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| PriceTableError::Parse {
                path: path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PriceTable::default()),
            Err(source) => Err(PriceTableError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }
}

/// The metered usage of one function at one memory size in one month.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MeterKey {
    pub account: String,
    /// `YYYY-MM` (UTC).
    pub month: String,
    pub region: String,
    pub function: String,
    pub memory_mb: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub requests: u64,
    pub billed_ms: u64,
}

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS metering(
    account TEXT NOT NULL, month TEXT NOT NULL, region TEXT NOT NULL, function TEXT NOT NULL,
    memory_mb INTEGER NOT NULL, requests INTEGER NOT NULL, billed_ms INTEGER NOT NULL,
    PRIMARY KEY(account, month, region, function, memory_mb)) WITHOUT ROWID;
";

/// Adds usage to the durable totals.
pub(crate) fn add_usage(
    conn: &mut Connection,
    deltas: &[(MeterKey, Usage)],
) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction()?;
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO metering(account, month, region, function, memory_mb, requests, billed_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(account, month, region, function, memory_mb)
             DO UPDATE SET requests = requests + excluded.requests, billed_ms = billed_ms + excluded.billed_ms",
        )?;
        for (key, usage) in deltas {
            upsert.execute(params![
                key.account,
                key.month,
                key.region,
                key.function,
                key.memory_mb,
                i64::try_from(usage.requests).unwrap_or(i64::MAX),
                i64::try_from(usage.billed_ms).unwrap_or(i64::MAX)
            ])?;
        }
    }
    tx.commit()
}

/// The durable usage of an account in a month (optionally one function).
pub fn read_usage(
    conn: &Connection,
    account: &str,
    month: &str,
    function: Option<&str>,
) -> Result<Vec<(MeterKey, Usage)>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT region, function, memory_mb, requests, billed_ms FROM metering
         WHERE account=?1 AND month=?2 AND (?3 IS NULL OR function=?3)
         ORDER BY function, region, memory_mb",
    )?;
    let rows = stmt.query_map(params![account, month, function], |r| {
        Ok((
            MeterKey {
                account: account.to_string(),
                month: month.to_string(),
                region: r.get(0)?,
                function: r.get(1)?,
                memory_mb: r.get(2)?,
            },
            Usage {
                requests: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                billed_ms: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
            },
        ))
    })?;
    rows.collect()
}

/// GB-seconds of `billed_ms` at `memory_mb` (1 GB = 1024 MB).
pub fn gb_seconds(billed_ms: u64, memory_mb: u32) -> f64 {
    (billed_ms as f64 / 1000.0) * (memory_mb as f64 / 1024.0)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionCost {
    pub function_name: String,
    pub region: String,
    pub memory_size: u32,
    pub requests: u64,
    pub billed_duration_ms: u64,
    pub gb_seconds: f64,
    /// Before the free tier (which applies to the account as a whole).
    pub request_cost_usd: f64,
    pub compute_cost_usd: f64,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CostReport {
    pub account_id: String,
    pub month: String,
    pub functions: Vec<FunctionCost>,
    pub requests: u64,
    pub gb_seconds: f64,
    pub free_tier_requests_used: u64,
    pub free_tier_gb_seconds_used: f64,
    pub billable_requests: u64,
    pub billable_gb_seconds: f64,
    pub request_cost_usd: f64,
    pub compute_cost_usd: f64,
    /// What the account owes for the month, after the free tier.
    pub total_cost_usd: f64,
    pub prices: PriceTable,
}

impl CostReport {
    /// Prices usage. Function rows are before the free tier; the account's
    /// totals apply it once (1 M requests and 400 000 GB-seconds by default).
    pub fn compute(
        account: &str,
        month: &str,
        usage: &[(MeterKey, Usage)],
        prices: &PriceTable,
    ) -> CostReport {
        let request_price = prices.usd_per_million_requests / 1_000_000.0;
        let functions: Vec<FunctionCost> = usage
            .iter()
            .map(|(key, u)| {
                let gbs = gb_seconds(u.billed_ms, key.memory_mb);
                let request_cost = u.requests as f64 * request_price;
                let compute_cost = gbs * prices.usd_per_gb_second;
                FunctionCost {
                    function_name: key.function.clone(),
                    region: key.region.clone(),
                    memory_size: key.memory_mb,
                    requests: u.requests,
                    billed_duration_ms: u.billed_ms,
                    gb_seconds: gbs,
                    request_cost_usd: request_cost,
                    compute_cost_usd: compute_cost,
                    cost_usd: request_cost + compute_cost,
                }
            })
            .collect();
        let requests: u64 = functions.iter().map(|f| f.requests).sum();
        let gb_seconds: f64 = functions.iter().map(|f| f.gb_seconds).sum();
        let free_requests = requests.min(prices.free_requests_per_month);
        let free_gbs = gb_seconds.min(prices.free_gb_seconds_per_month);
        let billable_requests = requests - free_requests;
        let billable_gbs = (gb_seconds - free_gbs).max(0.0);
        let request_cost = billable_requests as f64 * request_price;
        let compute_cost = billable_gbs * prices.usd_per_gb_second;
        CostReport {
            account_id: account.to_string(),
            month: month.to_string(),
            functions,
            requests,
            gb_seconds,
            free_tier_requests_used: free_requests,
            free_tier_gb_seconds_used: free_gbs,
            billable_requests,
            billable_gb_seconds: billable_gbs,
            request_cost_usd: request_cost,
            compute_cost_usd: compute_cost,
            total_cost_usd: request_cost + compute_cost,
            prices: prices.clone(),
        }
    }

    /// A human-readable table.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "Account {}  month {}\n{:<32} {:<12} {:>7} {:>12} {:>16} {:>14}\n",
            self.account_id,
            self.month,
            "FUNCTION",
            "REGION",
            "MEMORY",
            "REQUESTS",
            "GB-SECONDS",
            "COST (USD)"
        );
        for f in &self.functions {
            out.push_str(&format!(
                "{:<32} {:<12} {:>7} {:>12} {:>16.6} {:>14.6}\n",
                f.function_name, f.region, f.memory_size, f.requests, f.gb_seconds, f.cost_usd
            ));
        }
        out.push_str(&format!(
            "Total: {} requests, {:.6} GB-seconds\nFree tier used: {} requests, {:.6} GB-seconds\nBillable: {} requests, {:.6} GB-seconds\nCost: {:.6} USD (requests {:.6} + compute {:.6})\n",
            self.requests,
            self.gb_seconds,
            self.free_tier_requests_used,
            self.free_tier_gb_seconds_used,
            self.billable_requests,
            self.billable_gb_seconds,
            self.total_cost_usd,
            self.request_cost_usd,
            self.compute_cost_usd
        ));
        out
    }

    /// One line per function, then the account's line (function `*`).
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "account_id,month,function_name,region,memory_size,requests,billed_duration_ms,gb_seconds,free_tier_requests_used,free_tier_gb_seconds_used,cost_usd\n",
        );
        for f in &self.functions {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},,,{}\n",
                self.account_id,
                self.month,
                csv_field(&f.function_name),
                f.region,
                f.memory_size,
                f.requests,
                f.billed_duration_ms,
                f.gb_seconds,
                f.cost_usd
            ));
        }
        let billed: u64 = self.functions.iter().map(|f| f.billed_duration_ms).sum();
        out.push_str(&format!(
            "{},{},*,,,{},{},{},{},{},{}\n",
            self.account_id,
            self.month,
            self.requests,
            billed,
            self.gb_seconds,
            self.free_tier_requests_used,
            self.free_tier_gb_seconds_used,
            self.total_cost_usd
        ));
        out
    }
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// `YYYY-MM` of a time in milliseconds since the epoch (UTC).
pub fn month_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m")
        .to_string()
}

/// True for a valid `YYYY-MM`.
pub fn is_month(text: &str) -> bool {
    chrono::NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").is_ok() && text.len() == 7
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(function: &str, memory_mb: u32) -> MeterKey {
        MeterKey {
            account: "a".into(),
            month: "2026-11".into(),
            region: "us-east-1".into(),
            function: function.into(),
            memory_mb,
        }
    }

    #[test]
    fn gb_seconds_follow_memory_and_billed_duration() {
        assert_eq!(gb_seconds(1000, 1024), 1.0);
        assert_eq!(gb_seconds(500, 512), 0.25);
    }

    #[test]
    fn the_free_tier_applies_once_per_account() {
        let prices = PriceTable {
            usd_per_million_requests: 1_000_000.0,
            usd_per_gb_second: 10.0,
            free_requests_per_month: 3,
            free_gb_seconds_per_month: 1.0,
        };
        let usage = vec![
            (
                key("a", 1024),
                Usage {
                    requests: 2,
                    billed_ms: 1000,
                },
            ),
            (
                key("b", 512),
                Usage {
                    requests: 2,
                    billed_ms: 2000,
                },
            ),
        ];
        let report = CostReport::compute("a", "2026-11", &usage, &prices);
        assert_eq!(report.requests, 4);
        assert_eq!(report.gb_seconds, 2.0);
        assert_eq!(report.free_tier_requests_used, 3);
        assert_eq!(report.billable_requests, 1);
        assert_eq!(report.billable_gb_seconds, 1.0);
        assert_eq!(report.total_cost_usd, 1.0 + 10.0);
    }

    #[test]
    fn months_are_validated() {
        assert!(is_month("2026-11"));
        assert!(!is_month("2026-13"));
        assert!(!is_month("2026-1"));
    }
}
