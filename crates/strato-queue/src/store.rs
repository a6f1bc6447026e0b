//! The SQLite side: schema, the statements the writer runs inside its
//! transaction, and loading the index back at start (or after a failed
//! commit).
//!
//! Message rows are mutable (lease state, metadata). A small body lives in
//! its message's row, so sending, receiving and deleting it is one statement
//! each; a body over [`INLINE_BODY_MAX`] goes to a table of its own, written
//! once, so that a lease update never rewrites (and re-logs) a large body.
//! Every statement is cached.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};

use crate::index::{duration_ms, DedupEntry, Message, MessageState, QueueIndex};
use crate::receipt::SECRET_LEN;
use crate::{Durability, QueueOptions, Redrive};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queues (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    fifo INTEGER NOT NULL,
    content_based_dedup INTEGER NOT NULL,
    dedup_window_ms INTEGER NOT NULL,
    retention_ms INTEGER NOT NULL,
    dead_letter_queue TEXT,
    max_receive_count INTEGER
);
CREATE TABLE IF NOT EXISTS messages (
    key INTEGER PRIMARY KEY,
    queue_id INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL,
    first_received_at INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    group_id TEXT,
    dedup_id TEXT,
    metadata BLOB NOT NULL,
    -- NULL when the body is in `bodies`.
    body BLOB
);
CREATE TABLE IF NOT EXISTS bodies (
    key INTEGER PRIMARY KEY,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dedup (
    queue_id INTEGER NOT NULL,
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (queue_id, dedup_id)
) WITHOUT ROWID;
";

/// Message keys below this value may have been handed out; persisted so
/// keys (and FIFO sequence numbers) are never reused, even after the newest
/// message was deleted.
/// The largest body stored in its message's row: about what fits a 4 KiB
/// page's cell without spilling to overflow pages.
pub(crate) const INLINE_BODY_MAX: usize = 1024;

const KEYS_RESERVED_UNTIL: &str = "keys_reserved_until";
const RECEIPT_SECRET: &str = "receipt_secret";

pub(crate) fn open(path: &Path, durability: Durability) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // Another process holding the file (a second server on the same data
    // directory, or one still shutting down) makes us wait rather than fail.
    conn.busy_timeout(Duration::from_secs(5))?;
    // One writer owns the file: holding its lock for good saves two fcntl
    // calls per transaction and, set before WAL mode, keeps the WAL index in
    // heap memory instead of a shared-memory file.
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", durability.sqlite_synchronous())?;
    // Checkpoint every ~40 MiB of WAL instead of every 4 MiB: the same hot
    // pages are rewritten by nearly every commit, so a rarer checkpoint
    // copies about as few distinct pages and fsyncs ten times less often.
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // 16 MiB of page cache: the pages of recent messages and bodies stay hot.
    conn.pragma_update(None, "cache_size", -16 * 1024)?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// The secret that seals receipt handles, created with the database so
/// handles stay valid across restarts.
pub(crate) fn receipt_secret(conn: &Connection) -> rusqlite::Result<[u8; SECRET_LEN]> {
    let stored: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE name = ?1",
            [RECEIPT_SECRET],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(secret) = stored.and_then(|value| <[u8; SECRET_LEN]>::try_from(value).ok()) {
        return Ok(secret);
    }
    let secret: [u8; SECRET_LEN] = rand::random();
    conn.execute(
        "INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)",
        params![RECEIPT_SECRET, &secret[..]],
    )?;
    Ok(secret)
}

/// Everything the writer keeps in memory, as found in the database.
pub(crate) struct Loaded {
    pub(crate) queues: HashMap<String, QueueIndex>,
    pub(crate) next_key: u64,
    pub(crate) next_queue_id: i64,
}

pub(crate) fn load(conn: &Connection, now: i64) -> rusqlite::Result<Loaded> {
    let mut queues = HashMap::new();
    let mut names = HashMap::new();
    let mut next_queue_id = 1;
    {
        let mut statement = conn.prepare(
            "SELECT id, name, fifo, content_based_dedup, dedup_window_ms, retention_ms,
                    dead_letter_queue, max_receive_count FROM queues",
        )?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let name: String = row.get(1)?;
            let dead_letter_queue: Option<String> = row.get(6)?;
            let max_receive_count: Option<u32> = row.get(7)?;
            let options = QueueOptions {
                fifo: row.get(2)?,
                content_based_dedup: row.get(3)?,
                dedup_window: millis(row.get(4)?),
                retention: millis(row.get(5)?),
                redrive: dead_letter_queue.zip(max_receive_count).map(
                    |(dead_letter_queue, max_receive_count)| Redrive {
                        dead_letter_queue,
                        max_receive_count,
                    },
                ),
            };
            next_queue_id = next_queue_id.max(id + 1);
            names.insert(id, name.clone());
            queues.insert(name, QueueIndex::new(id, options));
        }
    }
    let mut max_key = 0u64;
    {
        let mut statement = conn.prepare(
            "SELECT key, queue_id, sent_at, visible_at, receive_count, generation, group_id
             FROM messages ORDER BY key",
        )?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let key = key_from_sql(row, 0)?;
            max_key = max_key.max(key);
            let queue_id: i64 = row.get(1)?;
            let Some(queue) = names.get(&queue_id).and_then(|name| queues.get_mut(name)) else {
                continue;
            };
            let visible_at: i64 = row.get(3)?;
            let receive_count: u32 = row.get(4)?;
            // The database does not say "leased": a message is in flight
            // when it was received and is not visible yet; a message never
            // received and not visible yet is delayed.
            let state = match (visible_at > now, receive_count > 0) {
                (false, _) => MessageState::Visible,
                (true, true) => MessageState::Leased,
                (true, false) => MessageState::Delayed,
            };
            let group: Option<String> = row.get(6)?;
            queue.insert(
                key,
                Message {
                    sent_at: row.get(2)?,
                    visible_at,
                    receive_count,
                    generation: row.get(5)?,
                    state,
                    group: group.map(Into::into),
                },
            );
        }
    }
    {
        let mut statement = conn.prepare(
            "SELECT queue_id, dedup_id, message_id, sequence, expires_at FROM dedup
             WHERE expires_at > ?1 ORDER BY expires_at",
        )?;
        let mut rows = statement.query([now])?;
        while let Some(row) = rows.next()? {
            let queue_id: i64 = row.get(0)?;
            let Some(queue) = names.get(&queue_id).and_then(|name| queues.get_mut(name)) else {
                continue;
            };
            queue.insert_dedup(
                row.get(1)?,
                DedupEntry {
                    message_id: row.get(2)?,
                    sequence: key_from_sql(row, 3)?,
                    expires_at: row.get(4)?,
                },
            );
        }
    }
    let stored_next_key = conn
        .query_row(
            "SELECT value FROM meta WHERE name = ?1",
            [KEYS_RESERVED_UNTIL],
            |row| key_from_sql(row, 0),
        )
        .optional()?;
    Ok(Loaded {
        queues,
        next_key: stored_next_key.unwrap_or(1).max(max_key + 1),
        next_queue_id,
    })
}

/// Keys are counted up from 1, so they always fit SQLite's signed integers.
fn sql_key(key: u64) -> i64 {
    i64::try_from(key).unwrap_or(i64::MAX)
}

fn key_from_sql(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(column)?;
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(column, value))
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

pub(crate) fn reserve_keys(conn: &Connection, until: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)")?
        .execute(params![KEYS_RESERVED_UNTIL, sql_key(until)])?;
    Ok(())
}

pub(crate) fn upsert_queue(
    conn: &Connection,
    id: i64,
    name: &str,
    options: &QueueOptions,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO queues (id, name, fifo, content_based_dedup, dedup_window_ms, retention_ms,
                             dead_letter_queue, max_receive_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET fifo = ?3, content_based_dedup = ?4,
             dedup_window_ms = ?5, retention_ms = ?6, dead_letter_queue = ?7,
             max_receive_count = ?8",
    )?
    .execute(params![
        id,
        name,
        options.fifo,
        options.content_based_dedup,
        duration_ms(options.dedup_window),
        duration_ms(options.retention),
        options
            .redrive
            .as_ref()
            .map(|r| r.dead_letter_queue.as_str()),
        options.redrive.as_ref().map(|r| r.max_receive_count),
    ])?;
    Ok(())
}

/// Deletes the queue's row and its dedup ids; its messages go one by one
/// through [`delete_message`] (by key, so no index on `queue_id` is needed).
pub(crate) fn delete_queue(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM dedup WHERE queue_id = ?1")?
        .execute([id])?;
    conn.prepare_cached("DELETE FROM queues WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// A message as first stored.
pub(crate) struct StoredMessage<'a> {
    pub(crate) key: u64,
    pub(crate) queue_id: i64,
    pub(crate) message_id: &'a str,
    pub(crate) sent_at: i64,
    pub(crate) visible_at: i64,
    pub(crate) group_id: Option<&'a str>,
    pub(crate) dedup_id: Option<&'a str>,
    pub(crate) metadata: &'a [u8],
    pub(crate) body: &'a [u8],
}

pub(crate) fn insert_message(
    conn: &Connection,
    message: &StoredMessage<'_>,
) -> rusqlite::Result<()> {
    let inline = message.body.len() <= INLINE_BODY_MAX;
    conn.prepare_cached(
        "INSERT INTO messages (key, queue_id, message_id, sent_at, visible_at, receive_count,
                               first_received_at, generation, group_id, dedup_id, metadata,
                               body)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, 0, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        sql_key(message.key),
        message.queue_id,
        message.message_id,
        message.sent_at,
        message.visible_at,
        message.group_id,
        message.dedup_id,
        message.metadata,
        inline.then_some(message.body),
    ])?;
    if !inline {
        conn.prepare_cached("INSERT INTO bodies (key, body) VALUES (?1, ?2)")?
            .execute(params![sql_key(message.key), message.body])?;
    }
    Ok(())
}

/// What a receive reads back of a message it leased.
#[derive(Debug)]
pub(crate) struct LeasedRow {
    pub(crate) message_id: String,
    pub(crate) first_received_at: i64,
    pub(crate) metadata: Bytes,
    pub(crate) group_id: Option<String>,
    pub(crate) dedup_id: Option<String>,
    pub(crate) body: Bytes,
}

/// Records a receive's lease and reads the message back. (Not with
/// `RETURNING`: SQLite builds an ephemeral table for it, which costs more
/// than the second lookup of a row whose page is already in cache.)
pub(crate) fn lease_message(
    conn: &Connection,
    key: u64,
    message: &Message,
    now: i64,
) -> rusqlite::Result<LeasedRow> {
    conn.prepare_cached(
        "UPDATE messages SET visible_at = ?2, receive_count = ?3, generation = ?4,
             first_received_at = CASE WHEN first_received_at = 0 THEN ?5
                                      ELSE first_received_at END
         WHERE key = ?1",
    )?
    .execute(params![
        sql_key(key),
        message.visible_at,
        message.receive_count,
        message.generation,
        now
    ])?;
    let (message_id, first_received_at, metadata, group_id, dedup_id, inline_body) = conn
        .prepare_cached(
            "SELECT message_id, first_received_at, metadata, group_id, dedup_id, body
             FROM messages WHERE key = ?1",
        )?
        .query_row([sql_key(key)], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Vec<u8>>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, Option<Vec<u8>>>(5)?,
            ))
        })?;
    let body = match inline_body {
        Some(body) => body,
        None => conn
            .prepare_cached("SELECT body FROM bodies WHERE key = ?1")?
            .query_row([sql_key(key)], |row| row.get(0))?,
    };
    Ok(LeasedRow {
        message_id,
        first_received_at,
        metadata: metadata.into(),
        group_id,
        dedup_id,
        body: body.into(),
    })
}

pub(crate) fn delete_message(conn: &Connection, key: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM messages WHERE key = ?1")?
        .execute([sql_key(key)])?;
    // Whether the body was large is not kept in memory; a miss in `bodies`
    // is one cached B-tree probe.
    conn.prepare_cached("DELETE FROM bodies WHERE key = ?1")?
        .execute([sql_key(key)])?;
    Ok(())
}

pub(crate) fn set_visible_at(conn: &Connection, key: u64, visible_at: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE messages SET visible_at = ?2 WHERE key = ?1")?
        .execute(params![sql_key(key), visible_at])?;
    Ok(())
}

pub(crate) fn set_metadata(conn: &Connection, key: u64, metadata: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE messages SET metadata = ?2 WHERE key = ?1")?
        .execute(params![sql_key(key), metadata])?;
    Ok(())
}

/// Moves a message to another queue (redrive), visible at `visible_at`
/// and never received there.
pub(crate) fn move_message(
    conn: &Connection,
    key: u64,
    queue_id: i64,
    visible_at: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE messages SET queue_id = ?2, visible_at = ?3, receive_count = 0,
             first_received_at = 0 WHERE key = ?1",
    )?
    .execute(params![sql_key(key), queue_id, visible_at])?;
    Ok(())
}

pub(crate) fn insert_dedup(
    conn: &Connection,
    queue_id: i64,
    dedup_id: &str,
    entry: &DedupEntry,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO dedup (queue_id, dedup_id, message_id, sequence, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        queue_id,
        dedup_id,
        entry.message_id,
        sql_key(entry.sequence),
        entry.expires_at
    ])?;
    Ok(())
}

pub(crate) fn delete_dedup(
    conn: &Connection,
    queue_id: i64,
    dedup_id: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM dedup WHERE queue_id = ?1 AND dedup_id = ?2")?
        .execute(params![queue_id, dedup_id])?;
    Ok(())
}
