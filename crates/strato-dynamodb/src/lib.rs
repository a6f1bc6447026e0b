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
mod wal_sync;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use dynoxide::Database;
use strato_model::account::Caller;
use strato_model::durability::Durability;
use tokio::sync::watch;

pub use ops::Reply;
pub use source::StreamReader;

/// `X-Amz-Target` prefix of the DynamoDB API (JSON 1.0).
pub const TARGET_PREFIX: &str = "DynamoDB_20120810";
/// `X-Amz-Target` prefix of the DynamoDB Streams API (JSON 1.0).
pub const STREAMS_TARGET_PREFIX: &str = "DynamoDBStreams_20120810";

/// Operations on one item, run in place (see [`DynamoDbService::operation`]).
const SINGLE_ITEM_OPERATIONS: [&str; 4] = ["GetItem", "PutItem", "UpdateItem", "DeleteItem"];

/// The DynamoDB operations that never write: under `--durability fsync`
/// every other successful one is answered only once its commit is on the
/// disk (see [`needs_durability`]).
const READ_OPERATIONS: [&str; 11] = [
    "GetItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "TransactGetItems",
    "DescribeTable",
    "ListTables",
    "DescribeTimeToLive",
    "ListTagsOfResource",
    "DescribeLimits",
    "DescribeEndpoints",
];

/// The DynamoDB operations that can write items, and so stream records:
/// after one succeeds, the database's stream mappings read at once (see
/// [`OpenDatabase::writes`]).
const WRITE_OPERATIONS: [&str; 8] = [
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "ExecuteStatement",
    "ExecuteTransaction",
    "BatchExecuteStatement",
];

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
    #[error("cannot start the write-ahead log's sync thread of {path}: {source}")]
    SyncThread {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One account and region's database.
struct OpenDatabase {
    db: Database,
    path: PathBuf,
    /// Changes after every operation that may have written stream records
    /// (a successful [`WRITE_OPERATIONS`] call, a TTL sweep that deleted
    /// items); stream mappings' pollers wait on it when idle.
    writes: watch::Sender<()>,
    /// Under [`Durability::Fsync`], what makes commits durable before
    /// writes are answered.
    sync: Option<wal_sync::WalSync>,
}

impl OpenDatabase {
    /// Wakes whoever waits for a write (nothing to do when no mapping
    /// reads this database's streams).
    fn wrote(&self) {
        if self.writes.receiver_count() > 0 {
            self.writes.send_modify(|()| ());
        }
    }
}

/// DynamoDB and DynamoDB Streams, for every account and region.
pub struct DynamoDbService {
    dir: PathBuf,
    /// Open databases by (account, region). Requests read their shard of the
    /// map; only the first request of an account and region writes it.
    databases: DashMap<(String, String), Arc<OpenDatabase>>,
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
    /// it runs on tokio's blocking pool, except a single-item operation:
    /// bounded work (one item of at most 400 KB) whose commit is not
    /// fsynced in the engine, which takes less time than the hop to a
    /// blocking thread and back. Under [`Durability::Fsync`] a successful
    /// write is then answered once a sync of the log covers its commit
    /// ([`wal_sync`]), which concurrent writes share.
    pub async fn operation(
        self: &Arc<Self>,
        caller: &Caller,
        prefix: &str,
        operation: &str,
        body: &[u8],
    ) -> Reply {
        let open = match self.database(&caller.account_id, &caller.region) {
            Ok(open) => open,
            Err(e) => {
                tracing::error!(error = %e, "dynamodb database");
                return Reply::internal_error();
            }
        };
        let scope = arns::Scope::new(&caller.account_id, &caller.region);
        let reply = if prefix == TARGET_PREFIX && SINGLE_ITEM_OPERATIONS.contains(&operation) {
            ops::run(
                &open.db,
                &scope,
                prefix,
                operation,
                &String::from_utf8_lossy(body),
            )
        } else {
            let database = open.db.clone();
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
                    return Reply::internal_error();
                }
            }
        };
        if reply.status != 200 || !needs_durability(prefix, operation) {
            return reply;
        }
        if let Some(sync) = &open.sync {
            let ticket = sync.committed();
            if let Err(e) = sync.durable(ticket).await {
                tracing::error!(error = %e, operation, "dynamodb write not made durable");
                return Reply::internal_error();
            }
        }
        if WRITE_OPERATIONS.contains(&operation) {
            open.wrote();
        }
        reply
    }

    /// A signal that changes after each write to the tables of one account
    /// and region (see [`OpenDatabase::writes`]).
    pub fn writes(
        &self,
        account: &str,
        region: &str,
    ) -> Result<watch::Receiver<()>, DynamoDbError> {
        Ok(self.database(account, region)?.writes.subscribe())
    }

    /// The database of one account and region, opened on first use.
    fn database(&self, account: &str, region: &str) -> Result<Arc<OpenDatabase>, DynamoDbError> {
        let key = (account.to_string(), region.to_string());
        if let Some(open) = self.databases.get(&key) {
            return Ok(open.clone());
        }
        // The entry holds its shard's lock while the file opens, so two first
        // requests of one account and region never open it twice.
        match self.databases.entry(key) {
            Entry::Occupied(open) => Ok(open.get().clone()),
            Entry::Vacant(slot) => {
                let dir = self.dir.join(safe_segment(account));
                std::fs::create_dir_all(&dir).map_err(|source| DynamoDbError::Dir {
                    path: dir.clone(),
                    source,
                })?;
                let path = dir.join(format!("{}.db", safe_segment(region)));
                let sync = match self.durability {
                    Durability::Fsync => {
                        Some(wal_sync::WalSync::start(&path).map_err(|source| {
                            DynamoDbError::SyncThread {
                                path: path.clone(),
                                source,
                            }
                        })?)
                    }
                    Durability::ProcessCrash => None,
                };
                let open = Arc::new(OpenDatabase {
                    db: open_database(&path)?,
                    path,
                    writes: watch::channel(()).0,
                    sync,
                });
                slot.insert(open.clone());
                Ok(open)
            }
        }
    }

    /// Every database opened so far, with its file (the TTL sweeper walks
    /// them).
    fn open_databases(&self) -> Vec<Arc<OpenDatabase>> {
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

/// Opens one database file. Its commits are written to the OS but not
/// fsynced by the engine (SQLite WAL with `synchronous=NORMAL`: they
/// survive `kill -9`; SQLite still syncs around checkpoints, so a power
/// loss cannot corrupt the file). That is [`Durability::ProcessCrash`];
/// under [`Durability::Fsync`] writes are answered once a group sync of
/// the log covers them ([`wal_sync`]) rather than by the engine's default
/// (`synchronous=FULL`, an fsync per commit inside its lock).
fn open_database(path: &Path) -> Result<Database, DynamoDbError> {
    let opened = Database::new(&exclusive_uri(path)).and_then(|db| {
        // The engine's only switch for its PRAGMAs: this one sets
        // synchronous=NORMAL and leaves the others at SQLite's defaults.
        db.disable_bulk_loading()?;
        Ok(db)
    });
    opened.map_err(|source| DynamoDbError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether a successful call is answered only once what it wrote, or for
/// `GetRecords` what it read, is on the disk (under
/// [`Durability::Fsync`]). A stream record is read before the write that
/// made it is synced, so `GetRecords` waits for a sync that began after it:
/// a consumer (a stream mapping's function among them) never acts on a
/// change a power loss could still take back.
fn needs_durability(prefix: &str, operation: &str) -> bool {
    match prefix {
        TARGET_PREFIX => !READ_OPERATIONS.contains(&operation),
        STREAMS_TARGET_PREFIX => operation == "GetRecords",
        _ => false,
    }
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

    #[tokio::test]
    async fn successful_writes_signal_the_streams_readers_and_reads_do_not() {
        let root = tempfile::tempdir().unwrap();
        let service = DynamoDbService::new(root.path().to_path_buf(), Durability::Fsync);
        let caller = Caller {
            account_id: "123456789012".to_string(),
            region: "eu-west-1".to_string(),
            access_key_id: "test".to_string(),
        };
        let call = |operation: &'static str, body: serde_json::Value| {
            let (service, caller) = (service.clone(), caller.clone());
            async move {
                service
                    .operation(
                        &caller,
                        TARGET_PREFIX,
                        operation,
                        body.to_string().as_bytes(),
                    )
                    .await
                    .status
            }
        };
        let mut writes = service.writes("123456789012", "eu-west-1").unwrap();
        let table = serde_json::json!({
            "TableName": "tbl",
            "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
            "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_IMAGE"},
        });
        assert_eq!(call("CreateTable", table).await, 200);
        assert!(!writes.has_changed().unwrap());
        let item = serde_json::json!({"TableName": "tbl", "Item": {"k": {"S": "a"}}});
        assert_eq!(call("PutItem", item).await, 200);
        assert!(writes.has_changed().unwrap());
        writes.borrow_and_update();
        let key = serde_json::json!({"TableName": "tbl", "Key": {"k": {"S": "a"}}});
        assert_eq!(call("GetItem", key.clone()).await, 200);
        let refused = serde_json::json!({
            "TableName": "tbl",
            "Item": {"k": {"S": "a"}},
            "ConditionExpression": "attribute_not_exists(k)",
        });
        assert_eq!(call("PutItem", refused).await, 400);
        assert!(!writes.has_changed().unwrap());
        assert_eq!(call("DeleteItem", key).await, 200);
        assert!(writes.has_changed().unwrap());
    }
}
