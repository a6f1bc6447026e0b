//! Bucket and object metadata in a SQLite file of its own (`s3/meta.db`
//! under the data directory): object writes must not contend with the
//! control plane's store, and a listing of 100 000 keys is one indexed
//! range scan here.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

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
    /// The content file, none for delete markers.
    pub blob: Option<String>,
    pub meta: ObjectMeta,
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
";

/// One of S3's SQLite files (`meta.db`, `blobs.db`), in WAL mode, committing
/// as `durability` asks: fsynced (`FULL`) or written to the OS (`NORMAL`).
/// Only this server opens the file, so the connection holds its lock for its
/// life (`EXCLUSIVE`): no lock and unlock system calls per transaction, and
/// the WAL index in memory rather than a shared-memory file.
pub(crate) fn open_database(
    path: &Path,
    durability: Durability,
) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", durability.sqlite_synchronous())?;
    Ok(conn)
}

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
    conn: Mutex<Connection>,
}

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

const OBJECT_COLUMNS: &str =
    "bucket, key, version_id, seq, latest, delete_marker, size, etag, modified_ms, blob, meta";

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
    pub fn open(path: &Path, durability: Durability) -> Result<Meta, MetaError> {
        let conn = open_database(path, durability)?;
        conn.execute_batch(SCHEMA)?;
        // Every statement stays prepared (rusqlite keeps 16 by default).
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Meta {
            conn: Mutex::new(conn),
        })
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
    pub fn bucket_owners(&self) -> Result<Vec<(String, String, Option<String>)>, MetaError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached("SELECT name, account, policy FROM buckets")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
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
    pub fn latest(&self, bucket: &str, key: &str) -> Result<Option<ObjectRow>, MetaError> {
        let conn = self.conn.lock();
        let sql = format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1 AND key = ?2 AND latest = 1"
        );
        let row = conn
            .prepare_cached(&sql)?
            .query_row(params![bucket, key], object_row)
            .optional()?;
        Ok(decode(row.into_iter().collect())?.pop())
    }

    pub fn version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<ObjectRow>, MetaError> {
        let conn = self.conn.lock();
        let sql = format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1 AND key = ?2 AND version_id = ?3"
        );
        let row = conn
            .prepare_cached(&sql)?
            .query_row(params![bucket, key, version_id], object_row)
            .optional()?;
        Ok(decode(row.into_iter().collect())?.pop())
    }

    /// Makes `row` the latest version of its key. A row with the same
    /// version id (the `null` version) is replaced; its content file name
    /// is answered so the caller can remove it.
    pub fn put_version(&self, row: &ObjectRow) -> Result<Option<String>, MetaError> {
        let meta = serde_json::to_string(&row.meta)?;
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let replaced: Option<Option<String>> = tx
            .prepare_cached(
                "SELECT blob FROM objects WHERE bucket = ?1 AND key = ?2 AND version_id = ?3",
            )?
            .query_row(params![row.bucket, row.key, row.version_id], |r| r.get(0))
            .optional()?;
        tx.prepare_cached(
            "DELETE FROM objects WHERE bucket = ?1 AND key = ?2 AND version_id = ?3",
        )?
        .execute(params![row.bucket, row.key, row.version_id])?;
        tx.prepare_cached(
            "UPDATE objects SET latest = 0 WHERE bucket = ?1 AND key = ?2 AND latest = 1",
        )?
        .execute(params![row.bucket, row.key])?;
        tx.prepare_cached(&format!("INSERT INTO objects({OBJECT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9, ?10)"))?
            .execute(params![
                row.bucket,
                row.key,
                row.version_id,
                row.seq,
                i64::from(row.delete_marker),
                row.size,
                row.etag,
                row.modified_ms,
                row.blob,
                meta
            ],
        )?;
        tx.commit()?;
        Ok(replaced.flatten())
    }

    /// Removes one version; the next newest becomes latest. Answers the
    /// removed row.
    pub fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<ObjectRow>, MetaError> {
        let found = self.version(bucket, key, version_id)?;
        if found.is_none() {
            return Ok(None);
        }
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
        let Some(mut row) = self.version(bucket, key, version_id)? else {
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
        let sql = format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1 AND latest = 1 AND delete_marker = 0
             AND key > ?2 AND substr(key, 1, length(?3)) = ?3 ORDER BY key LIMIT ?4"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
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
        let sql = format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1 AND key > ?2
             AND substr(key, 1, length(?3)) = ?3 ORDER BY key, seq DESC LIMIT ?4"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
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

    /// Records a part; answers the content file of the part it replaced.
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
        tx.commit()?;
        Ok(replaced)
    }

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

    /// Forgets an upload and its parts; answers their content files.
    pub fn drop_upload(&self, upload_id: &str) -> Result<Vec<String>, MetaError> {
        let blobs = self.parts(upload_id)?.into_iter().map(|p| p.blob).collect();
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        tx.prepare_cached("DELETE FROM parts WHERE upload_id = ?1")?
            .execute([upload_id])?;
        tx.prepare_cached("DELETE FROM uploads WHERE upload_id = ?1")?
            .execute([upload_id])?;
        tx.commit()?;
        Ok(blobs)
    }
}
