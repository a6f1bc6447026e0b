//! The [`Store`] contract (`store_contract`) run against the embedded
//! backend, each check on a fresh database file in WAL mode, as the server
//! opens it.

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod store_contract;

use std::sync::Arc;

use strato_store::{SqliteStore, Store};
use tempfile::TempDir;

/// An empty store on a new database file; the directory lives as long as
/// the returned guard.
async fn fresh_sqlite_store() -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("strato.db")).expect("open the database");
    (Arc::new(store), dir)
}

store_contract_tests!(fresh_sqlite_store());
