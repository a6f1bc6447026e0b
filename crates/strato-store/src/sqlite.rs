//! The embedded backend: one SQLite database in WAL mode.
//!
//! Records are stored as JSON documents keyed by their identity, so adding a
//! field to the model needs no migration; indexed columns exist only for what
//! queries filter or order by.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, Params, TransactionBehavior};
use serde::de::DeserializeOwned;
use strato_model::{AccessKey, Account, FunctionRecord};

use crate::{
    Document, DocumentKey, DocumentMutation, FunctionMutation, MutationOutcome, Store, StoreError,
};

/// Ordered schema migrations; the database records how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: accounts, keys, functions, settings
    "CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        doc TEXT NOT NULL
    );
    CREATE TABLE access_keys (
        access_key_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        doc TEXT NOT NULL
    );
    CREATE TABLE functions (
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        code_size INTEGER NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (account_id, region, name)
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );",
    // 2: documents (every resource that is not a function)
    "CREATE TABLE documents (
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        region TEXT NOT NULL,
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (account_id, region, kind, id)
    );
    CREATE INDEX documents_by_kind ON documents (kind);",
];

/// SQLite-backed [`Store`]. Calls run on tokio's blocking pool; one
/// connection serializes writers, which SQLite does anyway.
///
/// Read-modify-write transactions begin `IMMEDIATE`: a deferred one that
/// read first and then found another connection (another process on the same
/// file) had written since would fail at once with "database is locked"
/// instead of waiting for the busy timeout.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up
    /// to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// A private in-memory database, for tests.
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<SqliteStore, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
        let applied: i64 = conn
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let applied = usize::try_from(applied).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if applied > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!(
                "database schema version {applied} is newer than this Strato ({})",
                MIGRATIONS.len()
            )));
        }
        // Versions count from 1 as `i64`, SQLite's integer, so none is cast.
        for (version, sql) in (1_i64..).zip(MIGRATIONS).skip(applied) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.execute("DELETE FROM schema_version", [])?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [version],
            )?;
            tx.commit()?;
        }
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock()))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }
}

fn parse<T: serde::de::DeserializeOwned>(doc: String) -> Result<T, StoreError> {
    Ok(serde_json::from_str(&doc)?)
}

/// One function's document by account, region and name.
const SELECT_FUNCTION: &str =
    "SELECT doc FROM functions WHERE account_id = ?1 AND region = ?2 AND name = ?3";
/// One document by account, region, kind and id.
const SELECT_DOCUMENT: &str =
    "SELECT doc FROM documents WHERE account_id = ?1 AND region = ?2 AND kind = ?3 AND id = ?4";

/// The document the query's single row holds in its first column, if any.
fn stored_doc<T: DeserializeOwned>(
    c: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Option<T>, StoreError> {
    let doc: Option<String> = c.query_row(sql, params, |r| r.get(0)).optional()?;
    doc.map(parse).transpose()
}

/// The documents the query's rows hold in their first column, in order.
fn stored_docs<T: DeserializeOwned>(
    c: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = c.prepare_cached(sql)?;
    let docs = stmt
        .query_map(params, |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    docs.into_iter().map(parse).collect()
}

/// Runs an INSERT of a new row: `AlreadyExists` when it fails because
/// `taken` recognises the row's key as taken.
fn insert_new(
    c: &Connection,
    sql: &str,
    params: impl Params,
    taken: fn(&rusqlite::ffi::Error) -> bool,
) -> Result<(), StoreError> {
    match c.execute(sql, params) {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _)) if taken(&e) => Err(StoreError::AlreadyExists),
        Err(e) => Err(e.into()),
    }
}

/// Any constraint failed (the key is the table's only constraint).
fn any_constraint(e: &rusqlite::ffi::Error) -> bool {
    e.code == rusqlite::ErrorCode::ConstraintViolation
}

/// The primary key is taken (other constraints fail as themselves).
fn primary_key_taken(e: &rusqlite::ffi::Error) -> bool {
    e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
}

/// The `code_size` column, in SQLite's `i64`: a byte count beyond `i64::MAX`
/// cannot exist, and saturating keeps such a size over every quota.
fn code_size_column(record: &FunctionRecord) -> i64 {
    i64::try_from(record.code_size()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_account(&self, account: &Account) -> Result<(), StoreError> {
        let doc = serde_json::to_string(account)?;
        let id = account.id.clone();
        self.with(move |c| {
            insert_new(
                c,
                "INSERT INTO accounts (id, doc) VALUES (?1, ?2)",
                params![id, doc],
                any_constraint,
            )
        })
        .await
    }

    async fn get_account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let id = id.to_string();
        self.with(move |c| stored_doc(c, "SELECT doc FROM accounts WHERE id = ?1", [id]))
            .await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.with(|c| stored_docs(c, "SELECT doc FROM accounts ORDER BY id", []))
            .await
    }

    async fn delete_account(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with(move |c| Ok(c.execute("DELETE FROM accounts WHERE id = ?1", [id])? > 0))
            .await
    }

    async fn set_account_concurrency_limit(
        &self,
        id: &str,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let stored = stored_doc(&tx, "SELECT doc FROM accounts WHERE id = ?1", [&id])?;
            let Some(mut account): Option<Account> = stored else {
                return Ok(false);
            };
            account.concurrency_limit = limit;
            tx.execute(
                "UPDATE accounts SET doc = ?2 WHERE id = ?1",
                params![id, serde_json::to_string(&account)?],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn put_access_key(&self, key: &AccessKey) -> Result<(), StoreError> {
        let doc = serde_json::to_string(key)?;
        let (id, account) = (key.access_key_id.clone(), key.account_id.clone());
        self.with(move |c| {
            c.execute(
                "INSERT INTO access_keys (access_key_id, account_id, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT(access_key_id) DO UPDATE SET account_id = excluded.account_id, doc = excluded.doc",
                params![id, account, doc],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_access_keys(&self) -> Result<Vec<AccessKey>, StoreError> {
        self.with(|c| stored_docs(c, "SELECT doc FROM access_keys ORDER BY access_key_id", []))
            .await
    }

    async fn insert_function(&self, record: &FunctionRecord) -> Result<(), StoreError> {
        let doc = serde_json::to_string(record)?;
        let (account, region, name) = (
            record.account.clone(),
            record.region.clone(),
            record.name().to_string(),
        );
        let size = code_size_column(record);
        self.with(move |c| insert_new(c, "INSERT INTO functions (account_id, region, name, code_size, doc) VALUES (?1, ?2, ?3, ?4, ?5)", params![account, region, name, size, doc], primary_key_taken))
        .await
    }

    async fn get_function(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError> {
        let (account, region, name) = (account.to_string(), region.to_string(), name.to_string());
        self.with(move |c| stored_doc(c, SELECT_FUNCTION, params![account, region, name]))
            .await
    }

    async fn list_functions(
        &self,
        account: &str,
        region: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FunctionRecord>, StoreError> {
        let (account, region) = (account.to_string(), region.to_string());
        let after = after.unwrap_or("").to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |c| {
            stored_docs(
                c,
                "SELECT doc FROM functions WHERE account_id = ?1 AND region = ?2 AND name > ?3
                 ORDER BY name LIMIT ?4",
                params![account, region, after, limit],
            )
        })
        .await
    }

    async fn list_all_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        self.with(move |c| {
            stored_docs(
                c,
                "SELECT doc FROM functions ORDER BY account_id, region, name",
                [],
            )
        })
        .await
    }

    async fn update_function(
        &self,
        account: &str,
        region: &str,
        name: &str,
        mutation: FunctionMutation,
    ) -> Result<FunctionRecord, StoreError> {
        let (account, region, name) = (account.to_string(), region.to_string(), name.to_string());
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let stored = stored_doc(&tx, SELECT_FUNCTION, params![account, region, name])?;
            let mut record: FunctionRecord = stored.ok_or(StoreError::NotFound)?;
            mutation(&mut record).map_err(StoreError::Rejected)?;
            tx.execute(
                "UPDATE functions SET doc = ?4, code_size = ?5 WHERE account_id = ?1 AND region = ?2 AND name = ?3",
                params![account, region, name, serde_json::to_string(&record)?, code_size_column(&record)],
            )?;
            tx.commit()?;
            Ok(record)
        })
        .await
    }

    async fn delete_function(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError> {
        let (account, region, name) = (account.to_string(), region.to_string(), name.to_string());
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let doc: Option<String> = tx
                .query_row(SELECT_FUNCTION, params![account, region, name], |r| {
                    r.get(0)
                })
                .optional()?;
            let Some(doc) = doc else { return Ok(None) };
            tx.execute(
                "DELETE FROM functions WHERE account_id = ?1 AND region = ?2 AND name = ?3",
                params![account, region, name],
            )?;
            tx.commit()?;
            Ok(Some(parse(doc)?))
        })
        .await
    }

    async fn function_usage(&self, account: &str, region: &str) -> Result<(u64, u64), StoreError> {
        let (account, region) = (account.to_string(), region.to_string());
        self.with(move |c| {
            let (count, size): (i64, i64) = c.query_row(
                "SELECT COUNT(*), COALESCE(SUM(code_size), 0) FROM functions WHERE account_id = ?1 AND region = ?2",
                params![account, region],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok((
                u64::try_from(count).unwrap_or(0),
                u64::try_from(size).unwrap_or(0),
            ))
        })
        .await
    }

    async fn insert_document(
        &self,
        key: &DocumentKey,
        doc: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let (key, doc) = (key.clone(), serde_json::to_string(doc)?);
        self.with(move |c| insert_new(c, "INSERT INTO documents (account_id, region, kind, id, doc) VALUES (?1, ?2, ?3, ?4, ?5)", params![key.account, key.region, key.kind, key.id, doc], any_constraint))
        .await
    }

    async fn put_document(
        &self,
        key: &DocumentKey,
        doc: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let (key, doc) = (key.clone(), serde_json::to_string(doc)?);
        self.with(move |c| {
            c.execute(
                "INSERT INTO documents (account_id, region, kind, id, doc) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(account_id, region, kind, id) DO UPDATE SET doc = excluded.doc",
                params![key.account, key.region, key.kind, key.id, doc],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_document(
        &self,
        key: &DocumentKey,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let key = key.clone();
        self.with(move |c| {
            stored_doc(
                c,
                SELECT_DOCUMENT,
                params![key.account, key.region, key.kind, key.id],
            )
        })
        .await
    }

    async fn list_documents(
        &self,
        account: &str,
        region: &str,
        kind: &str,
        id_prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Document>, StoreError> {
        let (account, region, kind) = (account.to_string(), region.to_string(), kind.to_string());
        let (prefix, after) = (id_prefix.to_string(), after.unwrap_or("").to_string());
        self.with(move |c| {
            // `substr` rather than LIKE: ids may contain `%` or `_`.
            let mut stmt = c.prepare(
                "SELECT id, doc FROM documents
                 WHERE account_id = ?1 AND region = ?2 AND kind = ?3
                   AND substr(id, 1, length(?4)) = ?4 AND id > ?5
                 ORDER BY id LIMIT ?6",
            )?;
            // A limit beyond SQLite's integers is no limit at all.
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = stmt
                .query_map(params![account, region, kind, prefix, after, limit], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, doc) = row?;
                out.push(Document {
                    key: DocumentKey::new(account.clone(), region.clone(), kind.clone(), id),
                    doc: parse(doc)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn list_all_documents(&self, kind: &str) -> Result<Vec<Document>, StoreError> {
        let kind = kind.to_string();
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT account_id, region, id, doc FROM documents WHERE kind = ?1
                 ORDER BY account_id, region, id",
            )?;
            let rows = stmt.query_map(params![kind], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (account, region, id, doc) = row?;
                out.push(Document {
                    key: DocumentKey::new(account, region, kind.clone(), id),
                    doc: parse(doc)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn update_document(
        &self,
        key: &DocumentKey,
        mutation: DocumentMutation,
    ) -> Result<MutationOutcome, StoreError> {
        let key = key.clone();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let key_params = params![key.account, key.region, key.kind, key.id];
            let current = stored_doc(&tx, SELECT_DOCUMENT, key_params)?;
            let (next, answer) = match mutation(current) {
                Ok(change) => change,
                // Dropping the transaction rolls it back.
                Err(refusal) => return Ok(MutationOutcome::Refused(refusal)),
            };
            match &next {
                Some(doc) => tx.execute(
                    "INSERT INTO documents (account_id, region, kind, id, doc) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(account_id, region, kind, id) DO UPDATE SET doc = excluded.doc",
                    params![key.account, key.region, key.kind, key.id, serde_json::to_string(doc)?],
                )?,
                None => tx.execute(
                    "DELETE FROM documents WHERE account_id = ?1 AND region = ?2 AND kind = ?3 AND id = ?4",
                    params![key.account, key.region, key.kind, key.id],
                )?,
            };
            tx.commit()?;
            Ok(MutationOutcome::Applied(answer))
        })
        .await
    }

    async fn delete_document(&self, key: &DocumentKey) -> Result<bool, StoreError> {
        let key = key.clone();
        self.with(move |c| {
            let n = c.execute(
                "DELETE FROM documents WHERE account_id = ?1 AND region = ?2 AND kind = ?3 AND id = ?4",
                params![key.account, key.region, key.kind, key.id],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.with(move |c| {
            Ok(
                c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        })
        .await
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.with(move |c| {
            c.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreExt;
    use strato_model::Account;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Counter {
        n: u64,
    }

    /// A caller's own error type, to see it come back through the store.
    #[derive(Debug, PartialEq)]
    enum CounterError {
        TooHigh(u64),
        Store(String),
    }

    impl From<StoreError> for CounterError {
        fn from(err: StoreError) -> Self {
            CounterError::Store(err.to_string())
        }
    }

    fn temp_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("strato.db")).unwrap();
        (dir, store)
    }

    fn counter_key() -> DocumentKey {
        DocumentKey::new("000000000001", "us-east-1", "counter", "c")
    }

    #[tokio::test]
    async fn update_typed_refusal_returns_the_callers_error_and_writes_nothing() {
        let (_dir, store) = temp_store();
        store
            .create_account(&account("000000000001"))
            .await
            .unwrap();
        store
            .put_document(&counter_key(), &serde_json::json!({ "n": 7 }))
            .await
            .unwrap();
        let refused: Result<(), CounterError> = store
            .update_typed(&counter_key(), |current: Option<Counter>| {
                let n = current.map_or(0, |c| c.n);
                Err(CounterError::TooHigh(n))
            })
            .await;
        assert_eq!(refused, Err(CounterError::TooHigh(7)));
        assert_eq!(
            store.get_document(&counter_key()).await.unwrap(),
            Some(serde_json::json!({ "n": 7 }))
        );
    }

    #[tokio::test]
    async fn update_typed_none_deletes_the_document() {
        let (_dir, store) = temp_store();
        store
            .create_account(&account("000000000001"))
            .await
            .unwrap();
        store
            .put_document(&counter_key(), &serde_json::json!({ "n": 1 }))
            .await
            .unwrap();
        let last: Result<u64, CounterError> = store
            .update_typed(&counter_key(), |current: Option<Counter>| {
                Ok((None, current.map_or(0, |c| c.n)))
            })
            .await;
        assert_eq!(last, Ok(1));
        assert_eq!(store.get_document(&counter_key()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn update_typed_on_a_document_of_another_shape_is_corrupt() {
        let (_dir, store) = temp_store();
        store
            .create_account(&account("000000000001"))
            .await
            .unwrap();
        store
            .put_document(&counter_key(), &serde_json::json!({ "n": "seven" }))
            .await
            .unwrap();
        let answer: Result<(), StoreError> = store
            .update_typed(&counter_key(), |_: Option<Counter>| Ok((None, ())))
            .await;
        assert!(matches!(answer, Err(StoreError::Corrupt(_))));
        assert!(store.get_document(&counter_key()).await.unwrap().is_some());
    }

    fn account(id: &str) -> Account {
        Account {
            id: id.into(),
            name: String::new(),
            concurrency_limit: 1000,
            created_at: chrono::Utc::now(),
        }
    }

    /// Two connections to one file (two processes) writing the same rows
    /// interleaved: every read-modify-write waits its turn instead of failing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_on_one_file_both_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strato.db");
        let a = SqliteStore::open(&path).unwrap();
        let b = SqliteStore::open(&path).unwrap();
        a.create_account(&account("000000000001")).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..50u32 {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                store
                    .set_account_concurrency_limit("000000000001", 100 + i)
                    .await
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap().unwrap());
        }
    }

    #[tokio::test]
    async fn documents_list_by_prefix_in_order_and_die_with_their_account() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("strato.db")).unwrap();
        store
            .create_account(&account("000000000001"))
            .await
            .unwrap();
        let key = |id: &str| DocumentKey::new("000000000001", "us-east-1", "layer-version", id);
        for id in ["b#2", "a#1", "b#1", "b_#1"] {
            store
                .insert_document(&key(id), &serde_json::json!({ "id": id }))
                .await
                .unwrap();
        }
        assert!(matches!(
            store
                .insert_document(&key("a#1"), &serde_json::json!({}))
                .await,
            Err(StoreError::AlreadyExists)
        ));
        let ids = |docs: Vec<Document>| docs.into_iter().map(|d| d.key.id).collect::<Vec<_>>();
        let listed = store
            .list_documents("000000000001", "us-east-1", "layer-version", "b#", None, 10)
            .await
            .unwrap();
        assert_eq!(ids(listed), ["b#1", "b#2"]);
        let page = store
            .list_documents(
                "000000000001",
                "us-east-1",
                "layer-version",
                "",
                Some("a#1"),
                2,
            )
            .await
            .unwrap();
        assert_eq!(ids(page), ["b#1", "b#2"]);

        let counted: Result<u64, StoreError> = store
            .update_typed(&key("counter"), |current: Option<Counter>| {
                let n = current.map_or(0, |c| c.n) + 1;
                Ok((Some(Counter { n }), n))
            })
            .await;
        assert_eq!(counted.unwrap(), 1);
        assert!(store.delete_document(&key("counter")).await.unwrap());
        assert!(!store.delete_document(&key("counter")).await.unwrap());

        store.delete_account("000000000001").await.unwrap();
        assert!(store
            .list_all_documents("layer-version")
            .await
            .unwrap()
            .is_empty());
    }
}
