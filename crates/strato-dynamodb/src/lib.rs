//! Amazon DynamoDB and DynamoDB Streams for Strato.
//!
//! The engine is the embedded `dynoxide-rs` crate (SQLite-backed: tables,
//! expressions, indexes, transactions, TTL, streams, PartiQL). This crate is
//! the wrapper that makes it Strato's:
//!
//! - one database file per account and region, under Strato's data dir
//!   (`<data>/dynamodb/<account>/<region>.db`), so accounts never see each
//!   other's tables;
//! - ARNs carry the caller's account and region (the engine writes its own
//!   fixed ones; [`arns`] translates both ways);
//! - requests come from Strato's dispatcher as `(target prefix, operation,
//!   body)`, with no HTTP inside: the front end adds the headers
//!   (`x-amz-crc32` among them).

mod arns;
mod ops;
mod source;
mod ttl;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use dynoxide::Database;
use strato_model::account::Caller;
use strato_model::durability::Durability;

pub use ops::Reply;
pub use source::StreamReader;

/// `X-Amz-Target` prefix of the DynamoDB API (JSON 1.0).
pub const TARGET_PREFIX: &str = "DynamoDB_20120810";
/// `X-Amz-Target` prefix of the DynamoDB Streams API (JSON 1.0).
pub const STREAMS_TARGET_PREFIX: &str = "DynamoDBStreams_20120810";

/// Operations on one item, run in place when commits are not fsynced (see
/// [`DynamoDbService::operation`]).
const SINGLE_ITEM_OPERATIONS: [&str; 4] = ["GetItem", "PutItem", "UpdateItem", "DeleteItem"];

/// Why the service could not open a database.
#[derive(Debug, thiserror::Error)]
pub enum DynamoDbError {
    #[error("cannot create {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open DynamoDB database {path}: {source}")]
    Open {
        path: PathBuf,
        source: dynoxide::DynoxideError,
    },
}

/// DynamoDB and DynamoDB Streams, for every account and region.
pub struct DynamoDbService {
    dir: PathBuf,
    /// Open databases by (account, region). Requests read their shard of the
    /// map; only the first request of an account and region writes it.
    databases: DashMap<(String, String), (Database, PathBuf)>,
    /// Whether a commit is fsynced before the answer (see [`Durability`]).
    durability: Durability,
}

impl DynamoDbService {
    /// The service keeping its databases under `dir` (created on first use),
    /// committing with `durability`.
    pub fn new(dir: PathBuf, durability: Durability) -> Arc<DynamoDbService> {
        Arc::new(DynamoDbService {
            dir,
            databases: DashMap::new(),
            durability,
        })
    }

    /// Runs one operation of either API for `caller`. SQLite work blocks, so
    /// it runs on tokio's blocking pool, except a single-item operation
    /// under [`Durability::ProcessCrash`]: bounded work (one item of at most
    /// 400 KB) whose commit is not fsynced, which takes less time than the
    /// hop to a blocking thread and back.
    pub async fn operation(
        self: &Arc<Self>,
        caller: &Caller,
        prefix: &str,
        operation: &str,
        body: &[u8],
    ) -> Reply {
        let database = match self.database(&caller.account_id, &caller.region) {
            Ok(db) => db,
            Err(e) => {
                tracing::error!(error = %e, "dynamodb database");
                return Reply::internal_error();
            }
        };
        let scope = arns::Scope::new(&caller.account_id, &caller.region);
        if self.durability == Durability::ProcessCrash
            && prefix == TARGET_PREFIX
            && SINGLE_ITEM_OPERATIONS.contains(&operation)
        {
            return ops::run(
                &database,
                &scope,
                prefix,
                operation,
                &String::from_utf8_lossy(body),
            );
        }
        let prefix = prefix.to_string();
        let operation = operation.to_string();
        let body = String::from_utf8_lossy(body).into_owned();
        let task = tokio::task::spawn_blocking(move || {
            ops::run(&database, &scope, &prefix, &operation, &body)
        });
        match task.await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::error!(error = %e, "dynamodb operation task");
                Reply::internal_error()
            }
        }
    }

    /// The database of one account and region, opened on first use.
    fn database(&self, account: &str, region: &str) -> Result<Database, DynamoDbError> {
        let key = (account.to_string(), region.to_string());
        if let Some(open) = self.databases.get(&key) {
            return Ok(open.0.clone());
        }
        // The entry holds its shard's lock while the file opens, so two first
        // requests of one account and region never open it twice.
        match self.databases.entry(key) {
            Entry::Occupied(open) => Ok(open.get().0.clone()),
            Entry::Vacant(slot) => {
                let dir = self.dir.join(safe_segment(account));
                std::fs::create_dir_all(&dir).map_err(|source| DynamoDbError::Dir {
                    path: dir.clone(),
                    source,
                })?;
                let path = dir.join(format!("{}.db", safe_segment(region)));
                let db = open_database(&path, self.durability)?;
                slot.insert((db.clone(), path));
                Ok(db)
            }
        }
    }

    /// Every database opened so far, with its file (the TTL sweeper walks
    /// them).
    fn open_databases(&self) -> Vec<(Database, PathBuf)> {
        self.databases
            .iter()
            .map(|open| open.value().clone())
            .collect()
    }

    /// Opens the databases already on disk, so TTL sweeps reach tables of
    /// accounts that have not called since the server started.
    pub fn open_existing(&self) -> Result<usize, DynamoDbError> {
        let Ok(accounts) = std::fs::read_dir(&self.dir) else {
            return Ok(0);
        };
        let mut opened = 0;
        for account in accounts.flatten() {
            let account_name = account.file_name().to_string_lossy().into_owned();
            let Ok(files) = std::fs::read_dir(account.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name().to_string_lossy().into_owned();
                if let Some(region) = name.strip_suffix(".db") {
                    self.database(&account_name, region)?;
                    opened += 1;
                }
            }
        }
        Ok(opened)
    }
}

/// Opens one database file. Under [`Durability::ProcessCrash`] its commits
/// are written to the OS but not fsynced (SQLite WAL with
/// `synchronous=NORMAL`: they survive `kill -9`, not a power loss); the
/// engine's own default fsyncs every commit (`synchronous=FULL`), which is
/// [`Durability::Fsync`].
fn open_database(path: &Path, durability: Durability) -> Result<Database, DynamoDbError> {
    let opened = Database::new(&exclusive_uri(path)).and_then(|db| {
        if durability == Durability::ProcessCrash {
            // The engine's only switch for its PRAGMAs: this one sets
            // synchronous=NORMAL and leaves the others at SQLite's defaults.
            db.disable_bulk_loading()?;
        }
        Ok(db)
    });
    opened.map_err(|source| DynamoDbError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// The SQLite URI that opens `path` through the `unix-excl` VFS: only this
/// server opens a DynamoDB file, so its connection holds the file's lock
/// for its life and keeps the WAL index in its own memory, with no lock
/// and unlock system calls per transaction (`fcntl` on the shared-memory
/// file was ~4% of a GetItem's server CPU). The engine opens whatever
/// string it is given with SQLite's URI filenames enabled.
fn exclusive_uri(path: &Path) -> String {
    const PATH_RESERVED: &percent_encoding::AsciiSet =
        &percent_encoding::CONTROLS.add(b'%').add(b'?').add(b'#');
    let path = path.to_string_lossy();
    format!(
        "file:{}?vfs=unix-excl",
        percent_encoding::utf8_percent_encode(&path, PATH_RESERVED)
    )
}

/// A path segment made only of characters an account id or a region has.
fn safe_segment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub use ttl::spawn_ttl_sweeper;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_opens_through_unix_excl_wherever_its_directory_is() {
        // Characters a URI filename would otherwise take for its query,
        // fragment or escapes.
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data?x=1#frag%41 dir");
        let service = DynamoDbService::new(dir.clone(), Durability::ProcessCrash);
        service.database("123456789012", "eu-west-1").unwrap();
        let file = dir.join("123456789012").join("eu-west-1.db");
        assert!(file.exists(), "{} was not created", file.display());
        // unix-excl keeps the WAL index in the process's memory: no
        // shared-memory file beside the database.
        assert!(!dir.join("123456789012").join("eu-west-1.db-shm").exists());
        // Once the service is gone, the file opens as any SQLite file.
        drop(service);
        Database::new(&file.to_string_lossy())
            .and_then(|db| db.list_tables(Default::default()))
            .unwrap();
    }
}
