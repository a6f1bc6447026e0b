//! Bucket and object metadata in a SQLite file of its own (`s3/meta.db`
//! under the data directory): object writes must not contend with the
//! control plane's store, and a listing of 100 000 keys is one indexed
//! range scan here.
//!
//! Small content (see [`crate::blob`]) lives in the same file, in
//! `inline_blobs`, and is written and deleted in the transaction of the
//! row that names it: a PUT of a small object is one commit (one fsync
//! under [`Durability::Fsync`]), and no small content can outlive its row
//! or be missing from it.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use bytes::Bytes;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use strato_model::durability::Durability;

/// What can go wrong with the metadata database.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("metadata encoding: {0}")]
    Json(#[from] serde_json::Error),
    #[error("metadata files: {0}")]
    Io(#[from] std::io::Error),
    #[error("the S3 version writer has stopped")]
    WriterGone,
    #[error("metadata group commit: {0}")]
    GroupCommit(String),
}

/// A bucket as stored.
#[derive(Debug, Clone)]
pub struct BucketRow {
    pub name: String,
    pub account: String,
    pub region: String,
    pub created_ms: i64,
    /// `Enabled`, `Suspended`, or `None` when never set.
    pub versioning: Option<String>,
}

/// The headers and attributes an object keeps beside its bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ObjectMeta {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// User metadata (`x-amz-meta-*`), by lower-case name.
    pub user: BTreeMap<String, String>,
    /// (algorithm, base64 value) of the checksum the client asked for.
    pub checksum: Option<(String, String)>,
    /// `FULL_OBJECT` or `COMPOSITE`.
    pub checksum_type: Option<String>,
    pub tags: Vec<(String, String)>,
    /// Parts of a multipart object.
    pub parts_count: Option<i32>,
}

/// One version of an object (or a delete marker).
#[derive(Debug, Clone)]
pub struct ObjectRow {
    pub bucket: String,
    pub key: String,
    /// `null` for objects written while versioning was never enabled.
    pub version_id: String,
    pub seq: i64,
    pub latest: bool,
    pub delete_marker: bool,
    pub size: i64,
    /// Without quotes.
    pub etag: String,
    pub modified_ms: i64,
    /// The content's id, none for delete markers.
    pub blob: Option<String>,
    pub meta: ObjectMeta,
    /// Small content kept with the row: on a new version, written in its
    /// transaction; on a version read, there when the read asked for it
    /// ([`Fetch::WithContent`]).
    pub content: Option<Bytes>,
}

/// Whether a read of a version (or of parts) also fetches small content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    Metadata,
    WithContent,
}

/// A multipart upload in progress.
#[derive(Debug, Clone)]
pub struct UploadRow {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub initiated_ms: i64,
    pub meta: ObjectMeta,
}

/// One uploaded part.
#[derive(Debug, Clone)]
pub struct PartRow {
    pub part_number: i32,
    pub size: i64,
    pub etag: String,
    pub modified_ms: i64,
    pub blob: String,
    pub checksum: Option<(String, String)>,
    /// Small content to write with the row (reads leave it out; see
    /// [`Meta::small_content`]).
    pub content: Option<Bytes>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS buckets(
  name TEXT PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL,
  created_ms INTEGER NOT NULL, versioning TEXT, notification TEXT,
  policy TEXT, cors TEXT, tags TEXT);
CREATE TABLE IF NOT EXISTS objects(
  bucket TEXT NOT NULL, key TEXT NOT NULL, version_id TEXT NOT NULL,
  seq INTEGER NOT NULL, latest INTEGER NOT NULL, delete_marker INTEGER NOT NULL,
  size INTEGER NOT NULL, etag TEXT NOT NULL, modified_ms INTEGER NOT NULL,
  blob TEXT, meta TEXT NOT NULL, PRIMARY KEY(bucket, key, version_id));
CREATE INDEX IF NOT EXISTS objects_latest ON objects(bucket, latest, key);
CREATE TABLE IF NOT EXISTS uploads(
  upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL,
  initiated_ms INTEGER NOT NULL, meta TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS parts(
  upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, size INTEGER NOT NULL,
  etag TEXT NOT NULL, modified_ms INTEGER NOT NULL, blob TEXT NOT NULL,
  checksum TEXT, PRIMARY KEY(upload_id, part_number));
CREATE TABLE IF NOT EXISTS inline_blobs(id TEXT PRIMARY KEY, content BLOB NOT NULL);
";

/// Small content no object or part names: none unless an earlier
/// version's separate content database left some.
const DELETE_UNREFERENCED_CONTENT: &str = "DELETE FROM inline_blobs WHERE id NOT IN
  (SELECT blob FROM objects WHERE blob IS NOT NULL UNION ALL SELECT blob FROM parts)";

/// Where the previous version kept small content, in a database of its own.
const SEPARATE_CONTENT_DATABASE: &str = "blobs.db";

/// A bucket row of `SELECT name, account, region, created_ms, versioning`.
fn bucket_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BucketRow> {
    Ok(BucketRow {
        name: r.get(0)?,
        account: r.get(1)?,
        region: r.get(2)?,
        created_ms: r.get(3)?,
        versioning: r.get(4)?,
    })
}

/// The metadata database.
pub struct Meta {
    conn: Arc<Mutex<Connection>>,
    /// Who commits new versions in groups ([`Meta::commit_version`]).
    versions: GroupCommit,
}

/// How new versions are committed in groups.
enum GroupCommit {
    /// Under [`Durability::Fsync`]: a thread of its own, so that no tokio
    /// worker waits for an fsync.
    Writer(VersionWriter),
    /// Under [`Durability::ProcessCrash`]: in place, by whichever waiting
    /// request runs first after the others had their turn.
    InPlace(InPlaceGroup),
}

/// The versions waiting for an in-place group commit, and how many
/// commits in a row were of one version alone.
#[derive(Default)]
struct InPlaceGroup {
    queue: Mutex<Vec<PendingVersion>>,
    lone_commits: AtomicU32,
}

/// While commits are of one version alone, one in this many yields to see
/// whether concurrent writes would join it.
const LONE_COMMITS_PER_PROBE: u32 = 16;

/// A new version waiting for the version writer, and who waits for it.
struct PendingVersion {
    row: ObjectRow,
    done: tokio::sync::oneshot::Sender<Result<Option<String>, MetaError>>,
}

impl PendingVersion {
    /// A copy of `row` to queue, and where its answer will come.
    fn new(
        row: &ObjectRow,
    ) -> (
        PendingVersion,
        tokio::sync::oneshot::Receiver<Result<Option<String>, MetaError>>,
    ) {
        let (done, answer) = tokio::sync::oneshot::channel();
        let pending = PendingVersion {
            row: row.clone(),
            done,
        };
        (pending, answer)
    }
}

/// The version writer: a thread that takes every new version queued
/// meanwhile and commits them in one transaction, so concurrent PUTs share
/// one fsync instead of waiting for one each, and no tokio worker waits
/// for an fsync.
struct VersionWriter {
    queue: Option<mpsc::Sender<PendingVersion>>,
    thread: Option<JoinHandle<()>>,
}

/// At most this many versions go into one group commit.
const VERSIONS_PER_COMMIT: usize = 256;

/// A bucket document column (`notification`, `policy`, `cors`, `tags`).
#[derive(Debug, Clone, Copy)]
pub enum BucketDoc {
    Notification,
    Policy,
    Cors,
    Tags,
}

impl BucketDoc {
    fn column(self) -> &'static str {
        match self {
            BucketDoc::Notification => "notification",
            BucketDoc::Policy => "policy",
            BucketDoc::Cors => "cors",
            BucketDoc::Tags => "tags",
        }
    }
}

/// The columns an object row is stored in; `object_row` reads them, then
/// the content column (`NULL`, or the small content).
macro_rules! object_columns {
    () => {
        "bucket, key, version_id, seq, latest, delete_marker, size, etag, modified_ms, blob, meta"
    };
}

/// `SELECT` of a version by key (`?1`, `?2`) and `condition`, fetching its
/// small content or not.
macro_rules! select_version {
    ($fetch:expr, $condition:literal) => {
        match $fetch {
            Fetch::Metadata => concat!(
                "SELECT ",
                object_columns!(),
                ", NULL FROM objects WHERE bucket = ?1 AND key = ?2 AND ",
                $condition
            ),
            Fetch::WithContent => concat!(
                "SELECT ",
                object_columns!(),
                ", (SELECT content FROM inline_blobs WHERE id = objects.blob)",
                " FROM objects WHERE bucket = ?1 AND key = ?2 AND ",
                $condition
            ),
        }
    };
}

fn object_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(ObjectRow, String)> {
    Ok((
        ObjectRow {
            bucket: row.get(0)?,
            key: row.get(1)?,
            version_id: row.get(2)?,
            seq: row.get(3)?,
            latest: row.get::<_, i64>(4)? != 0,
            delete_marker: row.get::<_, i64>(5)? != 0,
            size: row.get(6)?,
            etag: row.get(7)?,
            modified_ms: row.get(8)?,
            blob: row.get(9)?,
            meta: ObjectMeta::default(),
            content: row.get::<_, Option<Vec<u8>>>(11)?.map(Bytes::from),
        },
        row.get(10)?,
    ))
}

fn decode(rows: Vec<(ObjectRow, String)>) -> Result<Vec<ObjectRow>, MetaError> {
    rows.into_iter()
        .map(|(mut row, meta)| {
            row.meta = serde_json::from_str(&meta)?;
            Ok(row)
        })
        .collect()
}

impl Meta {
    /// Opens (creating) the metadata database; `durability` says whether a
    /// commit is fsynced (an object answered survives power loss) or only
    /// written to the OS (it survives `kill -9`).
    ///
    /// The file is in WAL mode and commits as `durability` asks: fsynced
    /// (`FULL`) or written to the OS (`NORMAL`). Only this server opens it,
    /// so the connection holds its lock for its life (`EXCLUSIVE`): no lock
    /// and unlock system calls per transaction, and the WAL index in memory
    /// rather than a shared-memory file.
    ///
    /// Small content an earlier version kept in `blobs.db` beside it is
    /// moved in, and that file removed.
    pub fn open(path: &Path, durability: Durability) -> Result<Meta, MetaError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", durability.sqlite_synchronous())?;
        // As the queue engine does: checkpoint every ~40 MiB of WAL instead
        // of every 4 MiB. Nearly every commit rewrites the same hot pages
        // (the file header, index pages, the free list), so a rarer
        // checkpoint copies about as few distinct pages, ten times less
        // often.
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        conn.execute_batch(SCHEMA)?;
        let separate = path.with_file_name(SEPARATE_CONTENT_DATABASE);
        if separate.exists() {
            move_content_in(&mut conn, &separate)?;
        }
        let removed = conn.execute(DELETE_UNREFERENCED_CONTENT, [])?;
        if removed > 0 {
            tracing::info!(removed, "removed small S3 content no object refers to");
        }
        // Every statement stays prepared (rusqlite keeps 16 by default).
        conn.set_prepared_statement_cache_capacity(64);
        let conn = Arc::new(Mutex::new(conn));
        let versions = match durability {
            Durability::Fsync => GroupCommit::Writer(VersionWriter::start(conn.clone())?),
            Durability::ProcessCrash => GroupCommit::InPlace(InPlaceGroup::default()),
        };
        Ok(Meta { conn, versions })
    }

    /// The largest sequence number handed out so far.
    pub fn max_seq(&self) -> Result<i64, MetaError> {
        let conn = self.conn.lock();
        let max = conn
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM objects")?
            .query_row([], |r| r.get(0))?;
        Ok(max)
    }

    /// Every content file some object or part refers to.
    pub fn referenced_blobs(&self) -> Result<HashSet<String>, MetaError> {
        let conn = self.conn.lock();
        let mut out = HashSet::new();
        for sql in [
            "SELECT blob FROM objects WHERE blob IS NOT NULL",
            "SELECT blob FROM parts",
        ] {
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            for row in rows {
                out.insert(row?);
            }
        }
        Ok(out)
    }

    pub fn create_bucket(&self, bucket: &BucketRow) -> Result<bool, MetaError> {
        let conn = self.conn.lock();
        let n = conn.prepare_cached("INSERT OR IGNORE INTO buckets(name, account, region, created_ms) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![bucket.name, bucket.account, bucket.region, bucket.created_ms],
        )?;
        Ok(n == 1)
    }

    pub fn bucket(&self, name: &str) -> Result<Option<BucketRow>, MetaError> {
        let conn = self.conn.lock();
        let row = conn
            .prepare_cached(
                "SELECT name, account, region, created_ms, versioning FROM buckets WHERE name = ?1",
            )?
            .query_row([name], bucket_row)
            .optional()?;
        Ok(row)
    }

    /// Every bucket's name, owner and policy (what access decisions need,
    /// loaded once at start).
    /// Every bucket, with its policy.
    pub fn buckets_with_policies(&self) -> Result<Vec<(BucketRow, Option<String>)>, MetaError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT name, account, region, created_ms, versioning, policy FROM buckets",
        )?;
        let rows = stmt.query_map([], |r| Ok((bucket_row(r)?, r.get(5)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Buckets of an account after `after`, by name.
    pub fn buckets(&self, account: &str, after: &str) -> Result<Vec<BucketRow>, MetaError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT name, account, region, created_ms, versioning FROM buckets
             WHERE account = ?1 AND name > ?2 ORDER BY name",
        )?;
        let rows = stmt.query_map(params![account, after], bucket_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes a bucket that holds no object version and no upload.
    pub fn delete_bucket(&self, name: &str) -> Result<bool, MetaError> {
        let conn = self.conn.lock();
        let objects: i64 = conn
            .prepare_cached(
                "SELECT COUNT(*) FROM (SELECT 1 FROM objects WHERE bucket = ?1 LIMIT 1)",
            )?
            .query_row([name], |r| r.get(0))?;
        if objects > 0 {
            return Ok(false);
        }
        conn.prepare_cached("DELETE FROM buckets WHERE name = ?1")?
            .execute([name])?;
        Ok(true)
    }

    pub fn set_versioning(&self, name: &str, status: &str) -> Result<(), MetaError> {
        let conn = self.conn.lock();
        conn.prepare_cached("UPDATE buckets SET versioning = ?2 WHERE name = ?1")?
            .execute(params![name, status])?;
        Ok(())
    }

    pub fn bucket_doc(&self, name: &str, doc: BucketDoc) -> Result<Option<String>, MetaError> {
        let conn = self.conn.lock();
        let sql = format!("SELECT {} FROM buckets WHERE name = ?1", doc.column());
        let doc = conn
            .prepare_cached(&sql)?
            .query_row([name], |r| r.get::<_, Option<String>>(0))
            .optional()?;
        Ok(doc.flatten())
    }

    pub fn set_bucket_doc(
        &self,
        name: &str,
        doc: BucketDoc,
        value: Option<&str>,
    ) -> Result<(), MetaError> {
        let conn = self.conn.lock();
        let sql = format!("UPDATE buckets SET {} = ?2 WHERE name = ?1", doc.column());
        conn.prepare_cached(&sql)?.execute(params![name, value])?;
        Ok(())
    }

    /// The current version of a key (possibly a delete marker).
    pub fn latest(
        &self,
        bucket: &str,
        key: &str,
        fetch: Fetch,
    ) -> Result<Option<ObjectRow>, MetaError> {
        let conn = self.conn.lock();
        let row = conn
            .prepare_cached(select_version!(fetch, "latest = 1"))?
            .query_row(params![bucket, key], object_row)
            .optional()?;
        Ok(decode(row.into_iter().collect())?.pop())
    }

    pub fn version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        fetch: Fetch,
    ) -> Result<Option<ObjectRow>, MetaError> {
        let conn = self.conn.lock();
        let row = conn
            .prepare_cached(select_version!(fetch, "version_id = ?3"))?
            .query_row(params![bucket, key, version_id], object_row)
            .optional()?;
        Ok(decode(row.into_iter().collect())?.pop())
    }

    /// Makes `row` the latest version of its key (see [`put_version_in`]),
    /// with its small content if it has some, in a group commit with the
    /// versions of concurrent writes. Answers the content id of a version
    /// it replaced, for the caller to remove that content's file.
    ///
    /// Under [`Durability::Fsync`] the version goes to the writer thread:
    /// no tokio worker waits for an fsync, and the versions that queue
    /// during one fsync share the next.
    ///
    /// Under [`Durability::ProcessCrash`] a commit is only written to the
    /// OS, and a hop to a thread would cost more than it: the version is
    /// queued, the request yields once to the tasks that are ready (other
    /// connections' writes among them, which queue theirs), and the first
    /// to run again commits the queue in one transaction. 32 concurrent
    /// PUTs then share commits and about double their rate, since each
    /// commit writes its pages to the WAL once for the whole group. While
    /// commits hold one version each (a lone writer), the yield, which
    /// costs a poll of the I/O driver, is skipped but for one commit in
    /// [`LONE_COMMITS_PER_PROBE`], which finds out when writes overlap:
    /// such a write commits at once, with no copy of its row.
    pub async fn commit_version(&self, row: &ObjectRow) -> Result<Option<String>, MetaError> {
        let group = match &self.versions {
            GroupCommit::Writer(writer) => {
                let queue = writer.queue.as_ref().ok_or(MetaError::WriterGone)?;
                let (pending, answer) = PendingVersion::new(row);
                queue.send(pending).map_err(|_| MetaError::WriterGone)?;
                return answer.await.map_err(|_| MetaError::WriterGone)?;
            }
            GroupCommit::InPlace(group) => group,
        };
        let probe = group.lone_commits.load(Ordering::Relaxed) % LONE_COMMITS_PER_PROBE == 0;
        if !probe && group.queue.lock().is_empty() {
            group.lone_commits.fetch_add(1, Ordering::Relaxed);
            return self.put_version(row);
        }
        let (pending, answer) = PendingVersion::new(row);
        group.queue.lock().push(pending);
        let commit = CommitQueued {
            conn: &self.conn,
            group,
        };
        tokio::task::yield_now().await;
        drop(commit);
        answer.await.map_err(|_| MetaError::WriterGone)?
    }

    /// Makes `row` the latest version of its key, with its small content
    /// if it has some. A row with the same version id (the `null` version)
    /// is replaced, and its small content deleted; its content id is
    /// answered so the caller can remove a content file. Requests go
    /// through [`Meta::commit_version`], which calls this for a lone write.
    pub fn put_version(&self, row: &ObjectRow) -> Result<Option<String>, MetaError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let replaced = put_version_in(&tx, row)?;
        tx.commit()?;
        Ok(replaced)
    }

    /// Removes one version, with its small content; the next newest
    /// becomes latest. Answers the removed row.
    pub fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<ObjectRow>, MetaError> {
        let found = self.version(bucket, key, version_id, Fetch::Metadata)?;
        let Some(found_row) = &found else {
            return Ok(None);
        };
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        tx.prepare_cached(
            "DELETE FROM objects WHERE bucket = ?1 AND key = ?2 AND version_id = ?3",
        )?
        .execute(params![bucket, key, version_id])?;
        tx.prepare_cached(
            "UPDATE objects SET latest = 1 WHERE bucket = ?1 AND key = ?2 AND seq =
               (SELECT MAX(seq) FROM objects WHERE bucket = ?1 AND key = ?2)
             AND NOT EXISTS (SELECT 1 FROM objects WHERE bucket = ?1 AND key = ?2 AND latest = 1)",
        )?
        .execute(params![bucket, key])?;
        delete_content(&tx, found_row.blob.as_deref())?;
        tx.commit()?;
        Ok(found)
    }

    pub fn set_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        tags: Vec<(String, String)>,
    ) -> Result<bool, MetaError> {
        let Some(mut row) = self.version(bucket, key, version_id, Fetch::Metadata)? else {
            return Ok(false);
        };
        row.meta.tags = tags;
        let meta = serde_json::to_string(&row.meta)?;
        let conn = self.conn.lock();
        conn.prepare_cached(
            "UPDATE objects SET meta = ?4 WHERE bucket = ?1 AND key = ?2 AND version_id = ?3",
        )?
        .execute(params![bucket, key, version_id, meta])?;
        Ok(true)
    }

    /// Current, non-deleted objects after `after` whose key starts with
    /// `prefix`, by key, at most `limit`.
    pub fn list_latest(
        &self,
        bucket: &str,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<ObjectRow>, MetaError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(concat!(
            "SELECT ",
            object_columns!(),
            ", NULL FROM objects WHERE bucket = ?1 AND latest = 1 AND delete_marker = 0
             AND key > ?2 AND substr(key, 1, length(?3)) = ?3 ORDER BY key LIMIT ?4"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![bucket, after, prefix, limit], object_row)?;
        decode(rows.collect::<Result<_, _>>()?)
    }

    /// Every version of keys after (`after_key`, newest first) with `prefix`.
    pub fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        after_key: &str,
        limit: usize,
    ) -> Result<Vec<ObjectRow>, MetaError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(concat!(
            "SELECT ",
            object_columns!(),
            ", NULL FROM objects WHERE bucket = ?1 AND key > ?2
             AND substr(key, 1, length(?3)) = ?3 ORDER BY key, seq DESC LIMIT ?4"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![bucket, after_key, prefix, limit], object_row)?;
        decode(rows.collect::<Result<_, _>>()?)
    }

    pub fn create_upload(&self, upload: &UploadRow) -> Result<(), MetaError> {
        let meta = serde_json::to_string(&upload.meta)?;
        let conn = self.conn.lock();
        conn.prepare_cached("INSERT INTO uploads(upload_id, bucket, key, initiated_ms, meta) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![upload.upload_id, upload.bucket, upload.key, upload.initiated_ms, meta],
        )?;
        Ok(())
    }

    pub fn upload(&self, upload_id: &str) -> Result<Option<UploadRow>, MetaError> {
        let conn = self.conn.lock();
        let row = conn
            .prepare_cached("SELECT upload_id, bucket, key, initiated_ms, meta FROM uploads WHERE upload_id = ?1")?
            .query_row([upload_id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(upload_id, bucket, key, initiated_ms, meta)| {
            Ok(UploadRow {
                upload_id,
                bucket,
                key,
                initiated_ms,
                meta: serde_json::from_str(&meta)?,
            })
        })
        .transpose()
    }

    pub fn uploads(&self, bucket: &str) -> Result<Vec<UploadRow>, MetaError> {
        let ids: Vec<String> = {
            let conn = self.conn.lock();
            let mut stmt = conn.prepare_cached(
                "SELECT upload_id FROM uploads WHERE bucket = ?1 ORDER BY key, initiated_ms",
            )?;
            let rows = stmt.query_map([bucket], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::new();
        for id in ids {
            if let Some(upload) = self.upload(&id)? {
                out.push(upload);
            }
        }
        Ok(out)
    }

    /// Records a part, with its small content if it has some; the small
    /// content of the part it replaced is deleted, and its content id
    /// answered so the caller can remove a content file.
    pub fn put_part(&self, upload_id: &str, part: &PartRow) -> Result<Option<String>, MetaError> {
        let checksum = part
            .checksum
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let replaced: Option<String> = tx
            .prepare_cached("SELECT blob FROM parts WHERE upload_id = ?1 AND part_number = ?2")?
            .query_row(params![upload_id, part.part_number], |r| r.get(0))
            .optional()?;
        tx.prepare_cached("INSERT OR REPLACE INTO parts(upload_id, part_number, size, etag, modified_ms, blob, checksum)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
            .execute(params![upload_id, part.part_number, part.size, part.etag, part.modified_ms, part.blob, checksum],
        )?;
        put_content(&tx, Some(&part.blob), part.content.as_deref())?;
        delete_content(&tx, replaced.as_deref())?;
        tx.commit()?;
        Ok(replaced)
    }

    /// The small content `id` names, if it is (still) stored.
    pub fn small_content(&self, id: &str) -> Result<Option<Bytes>, MetaError> {
        let conn = self.conn.lock();
        let content: Option<Vec<u8>> = conn
            .prepare_cached("SELECT content FROM inline_blobs WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        Ok(content.map(Bytes::from))
    }

    /// An upload's parts, without their small content.
    pub fn parts(&self, upload_id: &str) -> Result<Vec<PartRow>, MetaError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT part_number, size, etag, modified_ms, blob, checksum FROM parts
             WHERE upload_id = ?1 ORDER BY part_number",
        )?;
        let rows = stmt.query_map([upload_id], |r| {
            Ok((
                PartRow {
                    part_number: r.get(0)?,
                    size: r.get(1)?,
                    etag: r.get(2)?,
                    modified_ms: r.get(3)?,
                    blob: r.get(4)?,
                    checksum: None,
                    content: None,
                },
                r.get::<_, Option<String>>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut part, checksum) = row?;
            part.checksum = checksum.map(|c| serde_json::from_str(&c)).transpose()?;
            out.push(part);
        }
        Ok(out)
    }

    /// Forgets an upload and its parts, with their small content; answers
    /// their content ids so the caller can remove content files.
    pub fn drop_upload(&self, upload_id: &str) -> Result<Vec<String>, MetaError> {
        let blobs = self.parts(upload_id)?.into_iter().map(|p| p.blob).collect();
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        tx.prepare_cached(
            "DELETE FROM inline_blobs WHERE id IN (SELECT blob FROM parts WHERE upload_id = ?1)",
        )?
        .execute([upload_id])?;
        tx.prepare_cached("DELETE FROM parts WHERE upload_id = ?1")?
            .execute([upload_id])?;
        tx.prepare_cached("DELETE FROM uploads WHERE upload_id = ?1")?
            .execute([upload_id])?;
        tx.commit()?;
        Ok(blobs)
    }
}

/// `put_version`'s statements, inside the caller's transaction.
///
/// Writes of one key that ran at the same time can commit in another order
/// than the one their sequence numbers give them (they are numbered when
/// they arrive, then committed in place or by the version writer). The
/// higher sequence number is the later write, whatever the commit order:
/// it stays the latest version, and a write that finds its own version id
/// (the `null` version) already rewritten by a later one is overwritten by
/// it at once, its content answered for removal.
fn put_version_in(tx: &Connection, row: &ObjectRow) -> Result<Option<String>, MetaError> {
    let meta = serde_json::to_string(&row.meta)?;
    let same: Option<(i64, Option<String>)> = tx
        .prepare_cached(
            "SELECT seq, blob FROM objects WHERE bucket = ?1 AND key = ?2 AND version_id = ?3",
        )?
        .query_row(params![row.bucket, row.key, row.version_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    if let Some((seq, blob)) = &same {
        if *seq > row.seq {
            return Ok(row.blob.clone().filter(|id| Some(id) != blob.as_ref()));
        }
    }
    tx.prepare_cached("DELETE FROM objects WHERE bucket = ?1 AND key = ?2 AND version_id = ?3")?
        .execute(params![row.bucket, row.key, row.version_id])?;
    let newest: Option<i64> = tx
        .prepare_cached("SELECT seq FROM objects WHERE bucket = ?1 AND key = ?2 AND latest = 1")?
        .query_row(params![row.bucket, row.key], |r| r.get(0))
        .optional()?;
    let latest = newest.is_none_or(|seq| seq < row.seq);
    if latest {
        tx.prepare_cached(
            "UPDATE objects SET latest = 0 WHERE bucket = ?1 AND key = ?2 AND latest = 1",
        )?
        .execute(params![row.bucket, row.key])?;
    }
    tx.prepare_cached(concat!(
        "INSERT INTO objects(",
        object_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))?
    .execute(params![
        row.bucket,
        row.key,
        row.version_id,
        row.seq,
        i64::from(latest),
        i64::from(row.delete_marker),
        row.size,
        row.etag,
        row.modified_ms,
        row.blob,
        meta
    ])?;
    // A replaced version's content goes, unless the new one keeps it.
    let replaced = same
        .and_then(|(_, blob)| blob)
        .filter(|id| Some(id) != row.blob.as_ref());
    put_content(tx, row.blob.as_deref(), row.content.as_deref())?;
    delete_content(tx, replaced.as_deref())?;
    Ok(replaced)
}

impl VersionWriter {
    fn start(conn: Arc<Mutex<Connection>>) -> std::io::Result<VersionWriter> {
        let (queue, pending) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("s3-versions".to_string())
            .spawn(move || write_versions(&conn, &pending))?;
        Ok(VersionWriter {
            queue: Some(queue),
            thread: Some(thread),
        })
    }
}

impl Drop for VersionWriter {
    /// Lets the thread commit what is queued and end, so the connection
    /// (and the database's lock) is released when the store is dropped.
    fn drop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The version writer's loop: every version queued since the last commit
/// (up to [`VERSIONS_PER_COMMIT`]) in one transaction, each in a savepoint
/// of its own so that one failing leaves the others; the answers go out
/// once the commit is durable.
fn write_versions(conn: &Mutex<Connection>, pending: &mpsc::Receiver<PendingVersion>) {
    while let Ok(first) = pending.recv() {
        let mut batch = vec![first];
        while batch.len() < VERSIONS_PER_COMMIT {
            match pending.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        commit_and_answer(conn, batch);
    }
}

/// Commits what is queued for an in-place group commit when dropped: after
/// the request's yield, or when the request is dropped while it yields (a
/// client that hung up), so no queued version waits for another write.
struct CommitQueued<'a> {
    conn: &'a Mutex<Connection>,
    group: &'a InPlaceGroup,
}

impl Drop for CommitQueued<'_> {
    fn drop(&mut self) {
        let batch = std::mem::take(&mut *self.group.queue.lock());
        let lone = &self.group.lone_commits;
        match batch.len() {
            0 => return,
            1 => lone.fetch_add(1, Ordering::Relaxed),
            _ => lone.swap(0, Ordering::Relaxed),
        };
        commit_and_answer(self.conn, batch);
    }
}

/// Commits `batch` in one transaction and sends each version's answer.
fn commit_and_answer(conn: &Mutex<Connection>, batch: Vec<PendingVersion>) {
    let results = {
        let mut conn = conn.lock();
        commit_versions(&mut conn, &batch)
    };
    match results {
        Ok(results) => {
            for (version, result) in batch.into_iter().zip(results) {
                let _ = version.done.send(result);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, versions = batch.len(), "S3 could not commit new versions");
            let message = e.to_string();
            for version in batch {
                let _ = version
                    .done
                    .send(Err(MetaError::GroupCommit(message.clone())));
            }
        }
    }
}

/// One transaction of new versions: each one's own answer, or the
/// transaction's error.
fn commit_versions(
    conn: &mut Connection,
    batch: &[PendingVersion],
) -> Result<Vec<Result<Option<String>, MetaError>>, MetaError> {
    let tx = conn.transaction()?;
    if let [version] = batch {
        // Alone, the version's failure is the transaction's: rolled back
        // when `tx` drops.
        let result = put_version_in(&tx, &version.row);
        if result.is_ok() {
            tx.commit()?;
        }
        return Ok(vec![result]);
    }
    let mut results = Vec::with_capacity(batch.len());
    for version in batch {
        // Prepared once for the connection's life, unlike rusqlite's
        // `savepoint()`, which parses its SQL each time.
        tx.prepare_cached("SAVEPOINT version")?.execute([])?;
        let result = put_version_in(&tx, &version.row);
        if result.is_err() {
            tx.prepare_cached("ROLLBACK TO version")?.execute([])?;
        }
        tx.prepare_cached("RELEASE version")?.execute([])?;
        results.push(result);
    }
    tx.commit()?;
    Ok(results)
}

/// Stores `content` as the small content `id`, when there is some.
fn put_content(tx: &Connection, id: Option<&str>, content: Option<&[u8]>) -> rusqlite::Result<()> {
    if let (Some(id), Some(content)) = (id, content) {
        tx.prepare_cached("INSERT INTO inline_blobs(id, content) VALUES (?1, ?2)")?
            .execute(params![id, content])?;
    }
    Ok(())
}

/// Deletes the small content `id` names, if it names small content.
fn delete_content(tx: &Connection, id: Option<&str>) -> rusqlite::Result<()> {
    if let Some(id) = id.filter(|id| crate::blob::is_inline(id)) {
        tx.prepare_cached("DELETE FROM inline_blobs WHERE id = ?1")?
            .execute([id])?;
    }
    Ok(())
}

/// Moves the small content of an earlier version's separate content
/// database (`separate`) into `inline_blobs`, then removes that file.
fn move_content_in(conn: &mut Connection, separate: &Path) -> Result<(), MetaError> {
    conn.execute(
        "ATTACH DATABASE ?1 AS separate",
        [separate.to_string_lossy()],
    )?;
    let moved = {
        let tx = conn.transaction()?;
        let has_table: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM separate.sqlite_master WHERE name = 'inline_blobs')",
            [],
            |r| r.get(0),
        )?;
        let moved = if has_table {
            tx.execute(
                "INSERT OR IGNORE INTO main.inline_blobs(id, content)
                 SELECT id, content FROM separate.inline_blobs",
                [],
            )?
        } else {
            0
        };
        tx.commit()?;
        moved
    };
    conn.execute("DETACH DATABASE separate", [])?;
    tracing::info!(moved, "moved small S3 content into the metadata database");
    for suffix in ["", "-wal", "-shm"] {
        let mut name = separate.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(MetaError::Io(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(
        key: &str,
        version_id: &str,
        seq: i64,
        blob: &str,
        content: Option<&str>,
    ) -> ObjectRow {
        ObjectRow {
            bucket: "b".to_string(),
            key: key.to_string(),
            version_id: version_id.to_string(),
            seq,
            latest: true,
            delete_marker: false,
            size: 0,
            etag: String::new(),
            modified_ms: 0,
            blob: Some(blob.to_string()),
            meta: ObjectMeta::default(),
            content: content.map(|c| Bytes::from(c.to_string())),
        }
    }

    fn part(number: i32, blob: &str, content: &str) -> PartRow {
        PartRow {
            part_number: number,
            size: 0,
            etag: String::new(),
            modified_ms: 0,
            blob: blob.to_string(),
            checksum: None,
            content: Some(Bytes::from(content.to_string())),
        }
    }

    /// A new process-crash `meta.db` in a directory that lives as long as
    /// the returned guard.
    fn fresh_meta() -> (tempfile::TempDir, Meta) {
        let dir = tempfile::tempdir().unwrap();
        let meta = Meta::open(&dir.path().join("meta.db"), Durability::ProcessCrash).unwrap();
        (dir, meta)
    }

    fn stored(meta: &Meta, id: &str) -> Option<String> {
        meta.small_content(id)
            .unwrap()
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
    }

    #[test]
    fn small_content_is_written_and_deleted_with_the_row_that_names_it() {
        let (_dir, meta) = fresh_meta();
        meta.put_version(&version("k", "null", 1, "inline-a", Some("first")))
            .unwrap();
        let read = meta.latest("b", "k", Fetch::WithContent).unwrap().unwrap();
        assert_eq!(read.content.as_deref(), Some(&b"first"[..]));
        let read = meta.latest("b", "k", Fetch::Metadata).unwrap().unwrap();
        assert!(read.content.is_none());
        // Overwriting the null version deletes its content in the same
        // transaction and answers its id.
        let replaced = meta
            .put_version(&version("k", "null", 2, "inline-b", Some("second")))
            .unwrap();
        assert_eq!(replaced.as_deref(), Some("inline-a"));
        assert_eq!(stored(&meta, "inline-a"), None);
        let read = meta
            .version("b", "k", "null", Fetch::WithContent)
            .unwrap()
            .unwrap();
        assert_eq!(read.content.as_deref(), Some(&b"second"[..]));
        // A new version keeps the older one's content; deleting a version
        // deletes its content.
        meta.put_version(&version("k", "v3", 3, "inline-c", Some("third")))
            .unwrap();
        assert_eq!(stored(&meta, "inline-b").as_deref(), Some("second"));
        meta.delete_version("b", "k", "null").unwrap().unwrap();
        assert_eq!(stored(&meta, "inline-b"), None);
        assert_eq!(stored(&meta, "inline-c").as_deref(), Some("third"));
        // A content file's id touches no small content.
        meta.put_version(&version("k", "v3", 4, "0123abcd", None))
            .unwrap();
        assert_eq!(stored(&meta, "inline-c"), None);
    }

    #[tokio::test]
    async fn group_commits_answer_each_version_and_keep_a_failing_one_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        let meta = Meta::open(&path, Durability::Fsync).unwrap();
        meta.put_version(&version("k0", "null", 1, "inline-old", Some("old")))
            .unwrap();
        let rows: Vec<ObjectRow> = (0..20)
            .map(|i| {
                version(
                    &format!("k{i}"),
                    "null",
                    10 + i,
                    &format!("inline-{i}"),
                    Some("new"),
                )
            })
            .collect();
        // A version whose content id is taken fails, alone.
        let clash = version("clash", "null", 100, "inline-3", Some("x"));
        let mut all: Vec<&ObjectRow> = rows.iter().collect();
        all.push(&clash);
        let answers =
            futures::future::join_all(all.iter().map(|row| meta.commit_version(row))).await;
        assert_eq!(answers[0].as_ref().unwrap().as_deref(), Some("inline-old"));
        assert!(answers[1..20].iter().all(|a| matches!(a, Ok(None))));
        assert!(answers[20].is_err());
        drop(meta);
        // Durable, and the lock is free again once the store is dropped.
        let meta = Meta::open(&path, Durability::Fsync).unwrap();
        for i in 0..20 {
            let read = meta
                .latest("b", &format!("k{i}"), Fetch::WithContent)
                .unwrap()
                .unwrap();
            assert_eq!(read.content.as_deref(), Some(&b"new"[..]));
        }
        assert!(meta
            .latest("b", "clash", Fetch::Metadata)
            .unwrap()
            .is_none());
        assert_eq!(stored(&meta, "inline-old"), None);
    }

    #[test]
    fn the_higher_sequence_number_stays_latest_whatever_the_commit_order() {
        let (_dir, meta) = fresh_meta();
        // Versioned: the later write (seq 5) committed first stays latest.
        meta.put_version(&version("v", "v5", 5, "inline-v5", Some("five")))
            .unwrap();
        meta.put_version(&version("v", "v3", 3, "inline-v3", Some("three")))
            .unwrap();
        let read = meta.latest("b", "v", Fetch::WithContent).unwrap().unwrap();
        assert_eq!(read.version_id, "v5");
        let older = meta
            .version("b", "v", "v3", Fetch::Metadata)
            .unwrap()
            .unwrap();
        assert!(!older.latest);
        // Deleting the latest promotes the other, as before.
        meta.delete_version("b", "v", "v5").unwrap().unwrap();
        let read = meta.latest("b", "v", Fetch::WithContent).unwrap().unwrap();
        assert_eq!(read.content.as_deref(), Some(&b"three"[..]));
        // The null version: the earlier write arriving last is overwritten
        // at once, and its content answered for removal.
        meta.put_version(&version("n", "null", 9, "0123later", None))
            .unwrap();
        let replaced = meta
            .put_version(&version("n", "null", 8, "4567earlier", None))
            .unwrap();
        assert_eq!(replaced.as_deref(), Some("4567earlier"));
        let read = meta.latest("b", "n", Fetch::Metadata).unwrap().unwrap();
        assert_eq!(read.blob.as_deref(), Some("0123later"));
        let replaced = meta
            .put_version(&version("n", "null", 7, "inline-early", Some("x")))
            .unwrap();
        assert_eq!(replaced.as_deref(), Some("inline-early"));
        assert_eq!(stored(&meta, "inline-early"), None);
    }

    #[tokio::test]
    async fn without_fsync_concurrent_versions_share_a_commit_and_a_dropped_one_still_lands() {
        let (_dir, meta) = fresh_meta();
        let GroupCommit::InPlace(group) = &meta.versions else {
            panic!("process-crash commits in place");
        };
        let queue = &group.queue;
        // The first write probes: queued, then committed by itself after
        // one yield.
        let alone = version("a", "null", 1, "inline-a", Some("ay"));
        let mut first = Box::pin(meta.commit_version(&alone));
        assert!(futures::poll!(&mut first).is_pending());
        assert_eq!(queue.lock().len(), 1);
        assert_eq!(first.await.unwrap(), None);
        assert!(queue.lock().is_empty());
        // Commits of one version each: the next lone writes commit at once,
        // but for a probe every LONE_COMMITS_PER_PROBE.
        let mut yielded = 0;
        for i in 0..LONE_COMMITS_PER_PROBE {
            let row = version(
                &format!("lone{i}"),
                "null",
                100 + i64::from(i),
                "f00d",
                None,
            );
            let mut write = Box::pin(meta.commit_version(&row));
            if futures::poll!(&mut write).is_pending() {
                yielded += 1;
                write.await.unwrap();
            }
        }
        assert_eq!(yielded, 1);
        // Two at once after a probe: both queue before either commits; the
        // first to run again commits both, and the next writes yield too.
        group.lone_commits.store(0, Ordering::Relaxed);
        let (b, c) = (
            version("b", "null", 2, "inline-b", Some("bee")),
            version("c", "null", 3, "inline-c", Some("sea")),
        );
        let (mut one, mut two) = (
            Box::pin(meta.commit_version(&b)),
            Box::pin(meta.commit_version(&c)),
        );
        assert!(futures::poll!(&mut one).is_pending());
        assert!(futures::poll!(&mut two).is_pending());
        assert_eq!(queue.lock().len(), 2);
        assert!(futures::poll!(&mut one).is_ready());
        assert!(queue.lock().is_empty());
        assert!(futures::poll!(&mut two).is_ready());
        assert_eq!(group.lone_commits.load(Ordering::Relaxed), 0);
        // A request dropped while it yields still commits what it queued.
        let dropped = version("d", "null", 4, "inline-d", Some("dee"));
        let mut gone = Box::pin(meta.commit_version(&dropped));
        assert!(futures::poll!(&mut gone).is_pending());
        drop(gone);
        for (key, content) in [("a", "ay"), ("b", "bee"), ("c", "sea"), ("d", "dee")] {
            let read = meta.latest("b", key, Fetch::WithContent).unwrap().unwrap();
            assert_eq!(read.content.as_deref(), Some(content.as_bytes()));
        }
    }

    #[test]
    fn small_parts_go_with_their_part_and_their_upload() {
        let (_dir, meta) = fresh_meta();
        meta.create_upload(&UploadRow {
            upload_id: "u".to_string(),
            bucket: "b".to_string(),
            key: "k".to_string(),
            initiated_ms: 0,
            meta: ObjectMeta::default(),
        })
        .unwrap();
        assert_eq!(
            meta.put_part("u", &part(1, "inline-1", "one")).unwrap(),
            None
        );
        meta.put_part("u", &part(2, "inline-2", "two")).unwrap();
        let replaced = meta.put_part("u", &part(1, "inline-1b", "uno")).unwrap();
        assert_eq!(replaced.as_deref(), Some("inline-1"));
        assert_eq!(stored(&meta, "inline-1"), None);
        assert_eq!(stored(&meta, "inline-1b").as_deref(), Some("uno"));
        assert!(meta.parts("u").unwrap().iter().all(|p| p.content.is_none()));
        let dropped = meta.drop_upload("u").unwrap();
        assert_eq!(
            dropped,
            vec!["inline-1b".to_string(), "inline-2".to_string()]
        );
        assert_eq!(stored(&meta, "inline-1b"), None);
        assert_eq!(stored(&meta, "inline-2"), None);
    }

    #[test]
    fn an_earlier_versions_separate_content_database_is_moved_in() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        // The object row was committed, its content in blobs.db.
        let meta = Meta::open(&path, Durability::Fsync).unwrap();
        meta.put_version(&version("k", "null", 1, "inline-kept", None))
            .unwrap();
        drop(meta);
        let separate = Connection::open(dir.path().join("blobs.db")).unwrap();
        separate
            .execute_batch(
                "CREATE TABLE inline_blobs(id TEXT PRIMARY KEY, content BLOB NOT NULL);
                 INSERT INTO inline_blobs VALUES ('inline-kept', x'6b657074');
                 INSERT INTO inline_blobs VALUES ('inline-orphan', x'6f');",
            )
            .unwrap();
        drop(separate);
        let meta = Meta::open(&path, Durability::Fsync).unwrap();
        assert!(!dir.path().join("blobs.db").exists());
        let read = meta.latest("b", "k", Fetch::WithContent).unwrap().unwrap();
        assert_eq!(read.content.as_deref(), Some(&b"kept"[..]));
        // What no row names was removed.
        assert_eq!(stored(&meta, "inline-orphan"), None);
    }
}
