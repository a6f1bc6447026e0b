//! The durable log store: CloudWatch Logs groups, streams and events in
//! their own SQLite file, written by one background thread in batches.
//!
//! Function output reaches [`LogStore`] through the engine's `LogSink`; an
//! append only puts the events on a bounded channel (never blocking: when
//! the channel is full the events are dropped and counted), and the writer
//! thread commits whatever has queued up in one transaction. Every other
//! write (creating and deleting groups, retention, the size bound) runs on
//! that same thread, so the file has one writer. Readers use their own
//! connection; a read first waits for the writer to commit what was queued
//! before it, so a client reads what it just caused.
//!
//! Why over 800 lines: about 180 of them are unit tests; the rest is one
//! writer thread and the queries it serves, which share its schema.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};
use strato_model::telemetry::{LogEvent, LogOwner, LogSink};
use tokio::sync::{mpsc, oneshot};

use crate::filter::FilterPattern;

/// How long the writer lets appends gather after a commit. A read waits
/// for what was queued before it, so this bounds how much later (not
/// whether) a client sees its lines; under load it turns one transaction
/// per invocation into one per this interval.
const COMMIT_LINGER: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error("log database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the log writer has stopped")]
    WriterGone,
    #[error("cannot start the log writer: {0}")]
    Thread(std::io::Error),
    #[error("the log reader failed: {0}")]
    Reader(String),
}

/// What a request about logs can fail with, as CloudWatch Logs words it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogsRejection {
    #[error("The specified log group does not exist.")]
    GroupNotFound,
    #[error("The specified log stream does not exist.")]
    StreamNotFound,
    #[error("The specified log group already exists")]
    GroupExists,
    #[error("The specified log stream already exists")]
    StreamExists,
}

#[derive(Debug, Clone)]
pub struct LogStoreConfig {
    /// Appends queued for the writer before new ones are dropped.
    pub queue_capacity: usize,
    /// Bytes of messages kept in total; the oldest events go beyond it.
    pub max_total_bytes: u64,
    /// How often the retention sweeper runs (it also runs at once after a
    /// PutRetentionPolicy).
    pub sweep_interval: Duration,
}

impl Default for LogStoreConfig {
    fn default() -> Self {
        LogStoreConfig {
            queue_capacity: 65_536,
            max_total_bytes: 1 << 30,
            sweep_interval: Duration::from_secs(60),
        }
    }
}

/// The retention periods CloudWatch Logs accepts, in days.
pub const RETENTION_DAYS: [i64; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

type Command = Box<dyn FnOnce(&mut Writer) + Send>;

enum Write {
    Append {
        owner: LogOwner,
        group: String,
        stream: String,
        events: Vec<LogEvent>,
        ingestion_ms: i64,
    },
    Run(Command),
}

pub struct LogStore {
    queue: mpsc::Sender<Write>,
    reader: Arc<Mutex<Connection>>,
    dropped: AtomicU64,
    unowned: AtomicU64,
    sweep_now: Arc<tokio::sync::Notify>,
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    total_bytes: u64,
    max_total_bytes: u64,
}

const SCHEMA: &str = "
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS log_groups(
    account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
    created_ms INTEGER NOT NULL, retention_days INTEGER,
    PRIMARY KEY(account, region, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_streams(
    account TEXT NOT NULL, region TEXT NOT NULL, grp TEXT NOT NULL, name TEXT NOT NULL,
    created_ms INTEGER NOT NULL, first_ts INTEGER, last_ts INTEGER, last_ingest INTEGER,
    PRIMARY KEY(account, region, grp, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_events(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL, region TEXT NOT NULL, grp TEXT NOT NULL, stream TEXT NOT NULL,
    ts INTEGER NOT NULL, ingest INTEGER NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS log_events_by_stream ON log_events(account, region, grp, stream, id);
CREATE INDEX IF NOT EXISTS log_events_by_group_time ON log_events(account, region, grp, ts, id);
";

fn open_connection(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

impl LogStore {
    /// Opens (or creates) the store at `path` and starts its writer thread
    /// and retention sweeper (on the current tokio runtime).
    pub fn open(path: &Path, config: LogStoreConfig) -> Result<Arc<LogStore>, LogStoreError> {
        let conn = open_connection(path)?;
        let total_bytes: i64 = conn.query_row(
            "SELECT COALESCE(SUM(LENGTH(CAST(message AS BLOB))), 0) FROM log_events",
            [],
            |r| r.get(0),
        )?;
        let reader = open_connection(path)?;
        let (tx, mut rx) = mpsc::channel::<Write>(config.queue_capacity.max(1));
        let mut writer = Writer {
            conn,
            total_bytes: u64::try_from(total_bytes).unwrap_or(0),
            max_total_bytes: config.max_total_bytes,
        };
        std::thread::Builder::new()
            .name("strato-log-writer".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < 4096 {
                        match rx.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    writer.apply(batch);
                    // Group commit: what arrives meanwhile waits for the next
                    // transaction instead of waking this thread (a context
                    // switch and a commit) once per invocation's lines.
                    std::thread::sleep(COMMIT_LINGER);
                }
            })
            .map_err(LogStoreError::Thread)?;
        let store = Arc::new(LogStore {
            queue: tx,
            reader: Arc::new(Mutex::new(reader)),
            dropped: AtomicU64::new(0),
            unowned: AtomicU64::new(0),
            sweep_now: Arc::new(tokio::sync::Notify::new()),
        });
        let weak = Arc::downgrade(&store);
        let sweep_now = store.sweep_now.clone();
        let interval = config.sweep_interval;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = sweep_now.notified() => {}
                }
                let Some(store) = weak.upgrade() else { return };
                if let Err(e) = store.sweep_retention().await {
                    tracing::warn!(error = %e, "log retention sweep failed");
                }
            }
        });
        Ok(store)
    }

    /// Events dropped because the writer's queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Runs `f` on the writer thread, after everything queued before it.
    async fn on_writer<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, LogStoreError> {
        let (tx, rx) = oneshot::channel();
        let command: Command = Box::new(move |writer| {
            let _ = tx.send(f(writer));
        });
        self.queue
            .send(Write::Run(command))
            .await
            .map_err(|_| LogStoreError::WriterGone)?;
        rx.await
            .map_err(|_| LogStoreError::WriterGone)?
            .map_err(LogStoreError::from)
    }

    /// Waits until everything appended so far is committed.
    pub async fn flush(&self) -> Result<(), LogStoreError> {
        self.on_writer(|_| Ok(())).await
    }

    /// Runs a read on the reader connection, after a flush.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, LogStoreError> {
        self.flush().await?;
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || f(&reader.lock()))
            .await
            .map_err(|e| LogStoreError::Reader(e.to_string()))?
            .map_err(LogStoreError::from)
    }

    pub async fn create_group(
        &self,
        owner: LogOwner,
        name: String,
    ) -> Result<Result<(), LogsRejection>, LogStoreError> {
        self.on_writer(move |w| {
            let now = chrono::Utc::now().timestamp_millis();
            let inserted = w.conn.execute(
                "INSERT OR IGNORE INTO log_groups(account, region, name, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![owner.account, owner.region, name, now],
            )?;
            Ok(if inserted == 1 { Ok(()) } else { Err(LogsRejection::GroupExists) })
        })
        .await
    }

    pub async fn delete_group(
        &self,
        owner: LogOwner,
        name: String,
    ) -> Result<Result<(), LogsRejection>, LogStoreError> {
        self.on_writer(move |w| w.delete_group(&owner, &name)).await
    }

    pub async fn create_stream(
        &self,
        owner: LogOwner,
        group: String,
        stream: String,
    ) -> Result<Result<(), LogsRejection>, LogStoreError> {
        self.on_writer(move |w| {
            if !w.group_exists(&owner, &group)? {
                return Ok(Err(LogsRejection::GroupNotFound));
            }
            let now = chrono::Utc::now().timestamp_millis();
            let inserted = w.conn.execute(
                "INSERT OR IGNORE INTO log_streams(account, region, grp, name, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![owner.account, owner.region, group, stream, now],
            )?;
            Ok(if inserted == 1 { Ok(()) } else { Err(LogsRejection::StreamExists) })
        })
        .await
    }

    /// PutLogEvents: appends to an existing stream, waiting for the commit.
    pub async fn put_events(
        &self,
        owner: LogOwner,
        group: String,
        stream: String,
        events: Vec<LogEvent>,
    ) -> Result<Result<(), LogsRejection>, LogStoreError> {
        self.on_writer(move |w| {
            if !w.group_exists(&owner, &group)? {
                return Ok(Err(LogsRejection::GroupNotFound));
            }
            let exists: Option<i64> = w
                .conn
                .query_row(
                    "SELECT 1 FROM log_streams WHERE account=?1 AND region=?2 AND grp=?3 AND name=?4",
                    params![owner.account, owner.region, group, stream],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_none() {
                return Ok(Err(LogsRejection::StreamNotFound));
            }
            let now = chrono::Utc::now().timestamp_millis();
            let tx = w.conn.transaction()?;
            let added = insert_events(&tx, &owner, &group, &stream, &events, now)?;
            tx.commit()?;
            w.total_bytes += added;
            w.enforce_size_bound()?;
            Ok(Ok(()))
        })
        .await
    }

    /// PutRetentionPolicy / DeleteRetentionPolicy (`None`).
    pub async fn set_retention(
        &self,
        owner: LogOwner,
        group: String,
        days: Option<i64>,
    ) -> Result<Result<(), LogsRejection>, LogStoreError> {
        let result = self
            .on_writer(move |w| {
                let changed = w.conn.execute(
                    "UPDATE log_groups SET retention_days=?4 WHERE account=?1 AND region=?2 AND name=?3",
                    params![owner.account, owner.region, group, days],
                )?;
                Ok(if changed == 1 { Ok(()) } else { Err(LogsRejection::GroupNotFound) })
            })
            .await?;
        if result.is_ok() {
            self.sweep_now.notify_one();
        }
        Ok(result)
    }

    /// Deletes events older than their group's retention.
    pub async fn sweep_retention(&self) -> Result<u64, LogStoreError> {
        self.on_writer(|w| w.sweep_retention()).await
    }

    pub async fn describe_groups(
        &self,
        owner: LogOwner,
        query: GroupQuery,
    ) -> Result<(Vec<GroupInfo>, Option<String>), LogStoreError> {
        self.read(move |conn| describe_groups(conn, &owner, &query))
            .await
    }

    pub async fn describe_streams(
        &self,
        owner: LogOwner,
        group: String,
        query: StreamQuery,
    ) -> Result<Result<StreamPage, LogsRejection>, LogStoreError> {
        self.read(move |conn| describe_streams(conn, &owner, &group, &query))
            .await
    }

    pub async fn get_events(
        &self,
        owner: LogOwner,
        group: String,
        stream: String,
        query: EventsQuery,
    ) -> Result<Result<EventsPage, LogsRejection>, LogStoreError> {
        self.read(move |conn| get_events(conn, &owner, &group, &stream, &query))
            .await
    }

    pub async fn filter_events(
        &self,
        owner: LogOwner,
        group: String,
        query: FilterQuery,
    ) -> Result<Result<FilterPage, LogsRejection>, LogStoreError> {
        self.read(move |conn| filter_events(conn, &owner, &group, &query))
            .await
    }
}

impl LogSink for LogStore {
    fn append(&self, group: &str, stream: &str, events: Vec<LogEvent>) {
        // Every engine write names its account (`logs::owned_by`); a write
        // without one cannot be placed in any account's log group.
        let n = self
            .unowned
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        if n == 0 {
            tracing::warn!(
                group,
                stream,
                "log events without an owning account are dropped"
            );
        }
    }

    fn append_owned(&self, owner: &LogOwner, group: &str, stream: &str, events: Vec<LogEvent>) {
        let count = events.len() as u64;
        let write = Write::Append {
            owner: owner.clone(),
            group: group.to_string(),
            stream: stream.to_string(),
            events,
            ingestion_ms: chrono::Utc::now().timestamp_millis(),
        };
        if self.queue.try_send(write).is_err() {
            self.dropped.fetch_add(count, Ordering::Relaxed);
        }
    }
}

fn insert_events(
    tx: &rusqlite::Transaction<'_>,
    owner: &LogOwner,
    group: &str,
    stream: &str,
    events: &[LogEvent],
    ingestion_ms: i64,
) -> Result<u64, rusqlite::Error> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO log_events(account, region, grp, stream, ts, ingest, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut bytes = 0u64;
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for event in events {
        insert.execute(params![
            owner.account,
            owner.region,
            group,
            stream,
            event.timestamp_ms,
            ingestion_ms,
            event.message
        ])?;
        bytes += event.message.len() as u64;
        first = first.min(event.timestamp_ms);
        last = last.max(event.timestamp_ms);
    }
    if !events.is_empty() {
        tx.prepare_cached(
            "UPDATE log_streams SET first_ts = MIN(COALESCE(first_ts, ?5), ?5), last_ts = MAX(COALESCE(last_ts, ?6), ?6), last_ingest = ?7
             WHERE account=?1 AND region=?2 AND grp=?3 AND name=?4",
        )?
        .execute(params![owner.account, owner.region, group, stream, first, last, ingestion_ms])?;
    }
    Ok(bytes)
}

impl Writer {
    fn apply(&mut self, batch: Vec<Write>) {
        let mut appends = Vec::new();
        for write in batch {
            match write {
                Write::Append { .. } => appends.push(write),
                Write::Run(command) => {
                    // Appends queued before a command are committed first.
                    self.commit_appends(std::mem::take(&mut appends));
                    command(self);
                }
            }
        }
        self.commit_appends(appends);
    }

    fn commit_appends(&mut self, appends: Vec<Write>) {
        if appends.is_empty() {
            return;
        }
        let result = (|| -> Result<u64, rusqlite::Error> {
            let tx = self.conn.transaction()?;
            let mut added = 0;
            for write in &appends {
                if let Write::Append {
                    owner,
                    group,
                    stream,
                    events,
                    ingestion_ms,
                } = write
                {
                    // The group and stream exist from their first event on,
                    // as Lambda creates them.
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO log_groups(account, region, name, created_ms) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![owner.account, owner.region, group, ingestion_ms])?;
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO log_streams(account, region, grp, name, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![owner.account, owner.region, group, stream, ingestion_ms])?;
                    added += insert_events(&tx, owner, group, stream, events, *ingestion_ms)?;
                }
            }
            tx.commit()?;
            Ok(added)
        })();
        match result {
            Ok(added) => {
                self.total_bytes += added;
                if let Err(e) = self.enforce_size_bound() {
                    tracing::warn!(error = %e, "cannot bound the log store's size");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = appends.len(), "cannot write log events")
            }
        }
    }

    fn group_exists(&self, owner: &LogOwner, group: &str) -> Result<bool, rusqlite::Error> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM log_groups WHERE account=?1 AND region=?2 AND name=?3",
                params![owner.account, owner.region, group],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .is_some())
    }

    fn delete_group(
        &mut self,
        owner: &LogOwner,
        name: &str,
    ) -> Result<Result<(), LogsRejection>, rusqlite::Error> {
        let tx = self.conn.transaction()?;
        let removed = tx.execute(
            "DELETE FROM log_groups WHERE account=?1 AND region=?2 AND name=?3",
            params![owner.account, owner.region, name],
        )?;
        if removed == 0 {
            return Ok(Err(LogsRejection::GroupNotFound));
        }
        let bytes: i64 = tx.query_row(
            "SELECT COALESCE(SUM(LENGTH(CAST(message AS BLOB))), 0) FROM log_events WHERE account=?1 AND region=?2 AND grp=?3",
            params![owner.account, owner.region, name],
            |r| r.get(0),
        )?;
        tx.execute(
            "DELETE FROM log_events WHERE account=?1 AND region=?2 AND grp=?3",
            params![owner.account, owner.region, name],
        )?;
        tx.execute(
            "DELETE FROM log_streams WHERE account=?1 AND region=?2 AND grp=?3",
            params![owner.account, owner.region, name],
        )?;
        tx.commit()?;
        self.total_bytes = self
            .total_bytes
            .saturating_sub(u64::try_from(bytes).unwrap_or(0));
        Ok(Ok(()))
    }

    fn sweep_retention(&mut self) -> Result<u64, rusqlite::Error> {
        let now = chrono::Utc::now().timestamp_millis();
        let groups: Vec<(String, String, String, i64)> = {
            let mut stmt = self.conn.prepare(
                "SELECT account, region, name, retention_days FROM log_groups WHERE retention_days IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut removed = 0u64;
        for (account, region, group, days) in groups {
            let cutoff = now - days * 86_400_000;
            let bytes: i64 = self.conn.query_row(
                "SELECT COALESCE(SUM(LENGTH(CAST(message AS BLOB))), 0) FROM log_events WHERE account=?1 AND region=?2 AND grp=?3 AND ts < ?4",
                params![account, region, group, cutoff],
                |r| r.get(0),
            )?;
            removed += self.conn.execute(
                "DELETE FROM log_events WHERE account=?1 AND region=?2 AND grp=?3 AND ts < ?4",
                params![account, region, group, cutoff],
            )? as u64;
            self.total_bytes = self
                .total_bytes
                .saturating_sub(u64::try_from(bytes).unwrap_or(0));
        }
        Ok(removed)
    }

    /// Deletes the oldest events until the store is within 90 % of its bound.
    fn enforce_size_bound(&mut self) -> Result<(), rusqlite::Error> {
        if self.total_bytes <= self.max_total_bytes {
            return Ok(());
        }
        let target = self.max_total_bytes / 10 * 9;
        while self.total_bytes > target {
            let oldest: Vec<(i64, i64)> = {
                let mut stmt = self.conn.prepare_cached(
                    "SELECT id, LENGTH(CAST(message AS BLOB)) FROM log_events ORDER BY id LIMIT 1000",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            if oldest.is_empty() {
                self.total_bytes = 0;
                break;
            }
            let mut freed = 0u64;
            let mut last_id = 0;
            for (id, bytes) in oldest {
                freed += u64::try_from(bytes).unwrap_or(0);
                last_id = id;
                if self.total_bytes.saturating_sub(freed) <= target {
                    break;
                }
            }
            self.conn
                .execute("DELETE FROM log_events WHERE id <= ?1", params![last_id])?;
            self.total_bytes = self.total_bytes.saturating_sub(freed);
        }
        Ok(())
    }
}

/// A read-only view of a log database, for `strato logs` beside a server.
pub struct LogReader {
    conn: Connection,
}

impl LogReader {
    pub fn open(path: &Path) -> Result<LogReader, LogStoreError> {
        Ok(LogReader {
            conn: open_connection(path)?,
        })
    }

    pub fn filter_events(
        &self,
        owner: &LogOwner,
        group: &str,
        query: &FilterQuery,
    ) -> Result<Result<FilterPage, LogsRejection>, LogStoreError> {
        Ok(filter_events(&self.conn, owner, group, query)?)
    }
}

/// Where the log database of a data directory lives.
pub fn log_db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("logs.db")
}

// ---- reads ---------------------------------------------------------------

#[derive(Debug, Clone, Default)]
pub struct GroupQuery {
    pub prefix: Option<String>,
    pub pattern: Option<String>,
    pub next_token: Option<String>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupInfo {
    pub name: String,
    pub created_ms: i64,
    pub retention_days: Option<i64>,
    pub stored_bytes: i64,
}

fn describe_groups(
    conn: &Connection,
    owner: &LogOwner,
    query: &GroupQuery,
) -> Result<(Vec<GroupInfo>, Option<String>), rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.name, g.created_ms, g.retention_days,
                (SELECT COALESCE(SUM(LENGTH(CAST(e.message AS BLOB))), 0) FROM log_events e
                  WHERE e.account=g.account AND e.region=g.region AND e.grp=g.name)
         FROM log_groups g WHERE g.account=?1 AND g.region=?2 AND g.name > ?3 ORDER BY g.name",
    )?;
    let after = query.next_token.clone().unwrap_or_default();
    let rows = stmt.query_map(params![owner.account, owner.region, after], |r| {
        Ok(GroupInfo {
            name: r.get(0)?,
            created_ms: r.get(1)?,
            retention_days: r.get(2)?,
            stored_bytes: r.get(3)?,
        })
    })?;
    let mut groups = Vec::new();
    for row in rows {
        let group = row?;
        if let Some(prefix) = &query.prefix {
            if !group.name.starts_with(prefix.as_str()) {
                continue;
            }
        }
        // A case-sensitive substring, as CloudWatch Logs matches it.
        if let Some(pattern) = &query.pattern {
            if !group.name.contains(pattern.as_str()) {
                continue;
            }
        }
        if groups.len() == query.limit {
            let token = groups.last().map(|g: &GroupInfo| g.name.clone());
            return Ok((groups, token));
        }
        groups.push(group);
    }
    Ok((groups, None))
}

#[derive(Debug, Clone, Default)]
pub struct StreamQuery {
    pub prefix: Option<String>,
    pub order_by_last_event: bool,
    pub descending: bool,
    pub next_token: Option<String>,
    pub limit: usize,
}

/// A page of streams and the token of the next one.
pub type StreamPage = (Vec<StreamInfo>, Option<String>);

#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    pub name: String,
    pub created_ms: i64,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    pub last_ingestion_ms: Option<i64>,
}

fn group_exists(conn: &Connection, owner: &LogOwner, group: &str) -> Result<bool, rusqlite::Error> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM log_groups WHERE account=?1 AND region=?2 AND name=?3",
            params![owner.account, owner.region, group],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .is_some())
}

fn describe_streams(
    conn: &Connection,
    owner: &LogOwner,
    group: &str,
    query: &StreamQuery,
) -> Result<Result<StreamPage, LogsRejection>, rusqlite::Error> {
    if !group_exists(conn, owner, group)? {
        return Ok(Err(LogsRejection::GroupNotFound));
    }
    let mut stmt = conn.prepare_cached(
        "SELECT name, created_ms, first_ts, last_ts, last_ingest FROM log_streams
         WHERE account=?1 AND region=?2 AND grp=?3",
    )?;
    let rows = stmt.query_map(params![owner.account, owner.region, group], |r| {
        Ok(StreamInfo {
            name: r.get(0)?,
            created_ms: r.get(1)?,
            first_event_ms: r.get(2)?,
            last_event_ms: r.get(3)?,
            last_ingestion_ms: r.get(4)?,
        })
    })?;
    let mut streams: Vec<StreamInfo> = rows
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|s| {
            query
                .prefix
                .as_deref()
                .is_none_or(|p| s.name.starts_with(p))
        })
        .collect();
    if query.order_by_last_event {
        streams.sort_by(|a, b| {
            (a.last_event_ms.unwrap_or(a.created_ms), &a.name)
                .cmp(&(b.last_event_ms.unwrap_or(b.created_ms), &b.name))
        });
    } else {
        streams.sort_by(|a, b| a.name.cmp(&b.name));
    }
    if query.descending {
        streams.reverse();
    }
    // The token is the position of the next stream in this order.
    let start: usize = query
        .next_token
        .as_deref()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let page: Vec<StreamInfo> = streams
        .iter()
        .skip(start)
        .take(query.limit)
        .cloned()
        .collect();
    let next = (start + page.len() < streams.len()).then(|| (start + page.len()).to_string());
    Ok(Ok((page, next)))
}

#[derive(Debug, Clone, Default)]
pub struct EventsQuery {
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub next_token: Option<String>,
    pub limit: usize,
    pub start_from_head: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: i64,
    pub stream: String,
    pub timestamp_ms: i64,
    pub ingestion_ms: i64,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventsPage {
    pub events: Vec<StoredEvent>,
    pub next_forward_token: String,
    pub next_backward_token: String,
}

fn forward_token(id: i64) -> String {
    format!("f/{id:020}")
}

fn backward_token(id: i64) -> String {
    format!("b/{id:020}")
}

/// A `log_events` row selected as `id, stream, ts, ingest, message`.
fn stored_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        id: r.get(0)?,
        stream: r.get(1)?,
        timestamp_ms: r.get(2)?,
        ingestion_ms: r.get(3)?,
        message: r.get(4)?,
    })
}

fn get_events(
    conn: &Connection,
    owner: &LogOwner,
    group: &str,
    stream: &str,
    query: &EventsQuery,
) -> Result<Result<EventsPage, LogsRejection>, rusqlite::Error> {
    if !group_exists(conn, owner, group)? {
        return Ok(Err(LogsRejection::GroupNotFound));
    }
    let stream_exists = conn
        .query_row(
            "SELECT 1 FROM log_streams WHERE account=?1 AND region=?2 AND grp=?3 AND name=?4",
            params![owner.account, owner.region, group, stream],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .is_some();
    if !stream_exists {
        return Ok(Err(LogsRejection::StreamNotFound));
    }
    enum Direction {
        After(i64),
        Before(i64),
    }
    let token = query.next_token.as_deref().and_then(|t| {
        let (kind, id) = t.split_once('/')?;
        let id: i64 = id.parse().ok()?;
        match kind {
            "f" => Some(Direction::After(id)),
            "b" => Some(Direction::Before(id)),
            _ => None,
        }
    });
    let direction = match token {
        Some(d) => d,
        None if query.start_from_head => Direction::After(0),
        None => Direction::Before(i64::MAX),
    };
    let start = query.start_ms.unwrap_or(i64::MIN);
    let end = query.end_ms.unwrap_or(i64::MAX);
    // A limit beyond SQLite's integers is no limit at all.
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let base = "SELECT id, stream, ts, ingest, message FROM log_events
                WHERE account=?1 AND region=?2 AND grp=?3 AND stream=?4 AND ts >= ?5 AND ts < ?6";
    let (sql, bound) = match direction {
        Direction::After(id) => (format!("{base} AND id > ?7 ORDER BY id ASC LIMIT ?8"), id),
        Direction::Before(id) => (format!("{base} AND id < ?7 ORDER BY id DESC LIMIT ?8"), id),
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            owner.account,
            owner.region,
            group,
            stream,
            start,
            end,
            bound,
            limit
        ],
        stored_event,
    )?;
    let mut events: Vec<StoredEvent> = rows.collect::<Result<_, _>>()?;
    let backwards = matches!(direction, Direction::Before(_));
    if backwards {
        events.reverse();
    }
    let (forward, backward) = match (events.first(), events.last()) {
        (Some(first), Some(last)) => (forward_token(last.id), backward_token(first.id)),
        // Nothing more in that direction: the token stays where it was, the
        // signal clients page until.
        _ => match direction {
            Direction::After(id) => (forward_token(id), backward_token(id.saturating_add(1))),
            Direction::Before(id) => {
                let id = if id == i64::MAX { 0 } else { id };
                (forward_token(id.saturating_sub(1)), backward_token(id))
            }
        },
    };
    Ok(Ok(EventsPage {
        events,
        next_forward_token: forward,
        next_backward_token: backward,
    }))
}

#[derive(Debug, Clone, Default)]
pub struct FilterQuery {
    pub stream_names: Option<Vec<String>>,
    pub stream_prefix: Option<String>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub pattern: Option<FilterPattern>,
    pub next_token: Option<String>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FilterPage {
    pub events: Vec<StoredEvent>,
    pub next_token: Option<String>,
}

/// Rows one FilterLogEvents call examines at most; a page may come back
/// short (even empty) with a token to go on, as CloudWatch Logs does.
/// (A `u16`, so that it converts losslessly to both `usize` and `i64`.)
const FILTER_SCAN_LIMIT: u16 = 10_000;

fn filter_events(
    conn: &Connection,
    owner: &LogOwner,
    group: &str,
    query: &FilterQuery,
) -> Result<Result<FilterPage, LogsRejection>, rusqlite::Error> {
    if !group_exists(conn, owner, group)? {
        return Ok(Err(LogsRejection::GroupNotFound));
    }
    // The token is the (timestamp, id) of the last event examined.
    let (after_ts, after_id) = query
        .next_token
        .as_deref()
        .and_then(|t| {
            let (ts, id) = t.split_once('-')?;
            Some((ts.parse::<i64>().ok()?, id.parse::<i64>().ok()?))
        })
        .unwrap_or((i64::MIN, i64::MIN));
    let start = query.start_ms.unwrap_or(i64::MIN);
    let end = query.end_ms.unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT id, stream, ts, ingest, message FROM log_events
         WHERE account=?1 AND region=?2 AND grp=?3 AND ts >= ?4 AND ts <= ?5
           AND (ts > ?6 OR (ts = ?6 AND id > ?7))
         ORDER BY ts, id LIMIT ?8",
    )?;
    // One row past the limit shows that there is more.
    let scan = i64::from(FILTER_SCAN_LIMIT) + 1;
    let rows = stmt.query_map(
        params![
            owner.account,
            owner.region,
            group,
            start,
            end,
            after_ts,
            after_id,
            scan
        ],
        stored_event,
    )?;
    let mut events = Vec::new();
    let mut last_examined: Option<(i64, i64)> = None;
    let mut more = false;
    for (examined, row) in rows.enumerate() {
        let event = row?;
        if examined == usize::from(FILTER_SCAN_LIMIT) || events.len() == query.limit {
            more = true;
            break;
        }
        last_examined = Some((event.timestamp_ms, event.id));
        let stream_wanted = query
            .stream_names
            .as_ref()
            .is_none_or(|names| names.contains(&event.stream))
            && query
                .stream_prefix
                .as_deref()
                .is_none_or(|p| event.stream.starts_with(p));
        if !stream_wanted {
            continue;
        }
        if query
            .pattern
            .as_ref()
            .is_none_or(|p| p.matches(&event.message))
        {
            events.push(event);
        }
    }
    let next_token = if more {
        last_examined.map(|(ts, id)| format!("{ts}-{id}"))
    } else {
        None
    };
    Ok(Ok(FilterPage { events, next_token }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> LogOwner {
        LogOwner {
            account: "000000000000".into(),
            region: "us-east-1".into(),
        }
    }

    /// Up to 100 events of the group, filtered by nothing.
    async fn filter_all(store: &LogStore, group: &str) -> FilterPage {
        let query = FilterQuery {
            limit: 100,
            ..Default::default()
        };
        let page = store.filter_events(owner(), group.into(), query).await;
        page.unwrap().unwrap()
    }

    fn event(ts: i64, message: &str) -> LogEvent {
        LogEvent {
            timestamp_ms: ts,
            message: message.into(),
        }
    }

    #[tokio::test]
    async fn appended_events_create_their_group_and_stream() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(&dir.path().join("logs.db"), LogStoreConfig::default()).unwrap();
        store.append_owned(
            &owner(),
            "/aws/lambda/f",
            "s1",
            vec![event(1, "a"), event(2, "b")],
        );
        let (groups, _) = store
            .describe_groups(
                owner(),
                GroupQuery {
                    limit: 50,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].stored_bytes, 2);
        let page = store
            .get_events(
                owner(),
                "/aws/lambda/f".into(),
                "s1".into(),
                EventsQuery {
                    limit: 10,
                    start_from_head: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .unwrap();
        let messages: Vec<&str> = page.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, vec!["a", "b"]);
    }

    #[tokio::test]
    async fn forward_tokens_page_and_stop_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(&dir.path().join("logs.db"), LogStoreConfig::default()).unwrap();
        let events = (0..5).map(|i| event(i, &i.to_string())).collect();
        store.append_owned(&owner(), "g", "s", events);
        let mut query = EventsQuery {
            limit: 2,
            start_from_head: true,
            ..Default::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = store
                .get_events(owner(), "g".into(), "s".into(), query.clone())
                .await
                .unwrap()
                .unwrap();
            seen.extend(page.events.iter().map(|e| e.message.clone()));
            if query.next_token.as_deref() == Some(page.next_forward_token.as_str()) {
                break;
            }
            query.next_token = Some(page.next_forward_token);
        }
        assert_eq!(seen, vec!["0", "1", "2", "3", "4"]);
    }

    #[tokio::test]
    async fn the_size_bound_drops_the_oldest_events() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogStoreConfig {
            max_total_bytes: 100,
            ..Default::default()
        };
        let store = LogStore::open(&dir.path().join("logs.db"), config).unwrap();
        for i in 0..30 {
            store.append_owned(&owner(), "g", "s", vec![event(i, "0123456789")]);
        }
        let page = store
            .get_events(
                owner(),
                "g".into(),
                "s".into(),
                EventsQuery {
                    limit: 100,
                    start_from_head: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .unwrap();
        assert!(page.events.len() <= 10, "{}", page.events.len());
        assert_eq!(page.events.last().map(|e| e.timestamp_ms), Some(29));
    }

    #[tokio::test]
    async fn appends_beyond_a_full_queue_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogStoreConfig {
            queue_capacity: 1,
            ..Default::default()
        };
        let store = LogStore::open(&dir.path().join("logs.db"), config).unwrap();
        // Hold the writer inside a command until the appends are made.
        let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let command: Command = Box::new(move |_| {
            let _ = entered_tx.send(());
            let _ = release_rx.recv();
        });
        store.queue.try_send(Write::Run(command)).unwrap();
        entered_rx.recv().unwrap();
        for i in 0..3 {
            store.append_owned(&owner(), "g", "s", vec![event(i, "x")]);
        }
        assert_eq!(store.dropped_events(), 2);
        release_tx.send(()).unwrap();
        let page = filter_all(&store, "g").await;
        assert_eq!(page.events.len(), 1);
    }

    #[tokio::test]
    async fn retention_deletes_events_older_than_the_policy() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(&dir.path().join("logs.db"), LogStoreConfig::default()).unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        store.append_owned(
            &owner(),
            "g",
            "s",
            vec![event(now - 3 * 86_400_000, "old"), event(now, "new")],
        );
        store
            .set_retention(owner(), "g".into(), Some(1))
            .await
            .unwrap()
            .unwrap();
        store.sweep_retention().await.unwrap();
        let page = filter_all(&store, "g").await;
        let messages: Vec<&str> = page.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, vec!["new"]);
    }
}
