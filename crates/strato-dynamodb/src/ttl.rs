//! Items past their TTL attribute's time are deleted by a background sweep
//! (AWS deletes them within days; Strato within one sweep interval), and
//! the engine writes their REMOVE stream records as the service's own.
//! The same sweep trims stream records past DynamoDB Streams' 24-hour
//! retention, which the engine itself keeps forever.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::DynamoDbService;

/// Sweeps every open database each `every`, until the runtime ends. The
/// handle lets the server stop it.
pub fn spawn_ttl_sweeper(
    service: Arc<DynamoDbService>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            for open in service.open_databases() {
                let (db, path) = (open.db.clone(), open.path.clone());
                let swept = tokio::task::spawn_blocking(move || {
                    if let Err(e) = trim_stream_records(&path, SystemTime::now()) {
                        tracing::warn!(error = %e, path = %path.display(), "dynamodb stream retention");
                    }
                    db.sweep_ttl()
                })
                .await;
                match swept {
                    Ok(Ok(0)) => {}
                    Ok(Ok(deleted)) => {
                        // Each deleted item wrote a REMOVE stream record.
                        open.wrote();
                        tracing::debug!(deleted, "dynamodb ttl sweep");
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "dynamodb ttl sweep"),
                    Err(e) => tracing::warn!(error = %e, "dynamodb ttl sweep task"),
                }
            }
        }
    })
}

/// DynamoDB Streams keeps a record 24 hours.
const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// Deletes the stream records of the database at `path` written more than
/// [`RETENTION`] before `now`. The engine's record table keeps each
/// record's creation time in epoch seconds; this is the one place Strato
/// writes the engine's file itself, through its own connection (SQLite's
/// locking orders it with the engine's writes).
fn trim_stream_records(path: &Path, now: SystemTime) -> rusqlite::Result<usize> {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let cutoff = since_epoch.saturating_sub(RETENTION).as_secs();
    let cutoff = i64::try_from(cutoff).unwrap_or(i64::MAX);
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_stream_records')",
        [],
        |row| row.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    conn.execute(
        "DELETE FROM _stream_records WHERE created_at < ?1",
        [cutoff],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DynamoDbService, STREAMS_TARGET_PREFIX, TARGET_PREFIX};
    use strato_model::account::Caller;
    use strato_model::durability::Durability;

    fn caller() -> Caller {
        Caller {
            account_id: "123456789012".to_string(),
            region: "eu-west-1".to_string(),
            access_key_id: "test".to_string(),
        }
    }

    async fn call(
        service: &Arc<DynamoDbService>,
        prefix: &str,
        op: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let reply = service
            .operation(&caller(), prefix, op, body.to_string().as_bytes())
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        serde_json::from_str(&reply.body).unwrap()
    }

    async fn record_count(service: &Arc<DynamoDbService>, stream: &str) -> usize {
        let described = call(
            service,
            STREAMS_TARGET_PREFIX,
            "DescribeStream",
            serde_json::json!({"StreamArn": stream}),
        )
        .await;
        let shard = described["StreamDescription"]["Shards"][0]["ShardId"].clone();
        let iterator = call(
            service,
            STREAMS_TARGET_PREFIX,
            "GetShardIterator",
            serde_json::json!({"StreamArn": stream, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await;
        let records = call(
            service,
            STREAMS_TARGET_PREFIX,
            "GetRecords",
            serde_json::json!({"ShardIterator": iterator["ShardIterator"]}),
        )
        .await;
        records["Records"].as_array().unwrap().len()
    }

    #[tokio::test]
    async fn records_older_than_a_day_are_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let service = DynamoDbService::new(dir.path().to_path_buf(), Durability::Fsync);
        let created = call(
            &service,
            TARGET_PREFIX,
            "CreateTable",
            serde_json::json!({
                "TableName": "tbl",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
                "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "KEYS_ONLY"}
            }),
        )
        .await;
        let stream = created["TableDescription"]["LatestStreamArn"]
            .as_str()
            .unwrap()
            .to_string();
        call(
            &service,
            TARGET_PREFIX,
            "PutItem",
            serde_json::json!({"TableName": "tbl", "Item": {"pk": {"S": "a"}}}),
        )
        .await;
        assert_eq!(record_count(&service, &stream).await, 1);
        let path = service.open_databases().pop().unwrap().path.clone();

        // Within the day: kept.
        assert_eq!(trim_stream_records(&path, SystemTime::now()).unwrap(), 0);
        assert_eq!(record_count(&service, &stream).await, 1);
        // A day and a minute later: gone.
        let later = SystemTime::now() + RETENTION + Duration::from_secs(60);
        assert_eq!(trim_stream_records(&path, later).unwrap(), 1);
        assert_eq!(record_count(&service, &stream).await, 0);
    }
}
