//! Durable state behind one trait, so callers never know which database
//! holds it.
//!
//! - [`Store`]: accounts, keys and functions. [`SqliteStore`] is the embedded
//!   default (one WAL database under the data directory); a PostgreSQL
//!   backend implements the same trait for clusters.
//! - [`CodeStore`]: deployment packages, content-addressed on disk, and their
//!   extracted trees.
//! - [`FunctionCatalog`]: the in-memory view the hot path reads; every write
//!   goes through it so the cache is invalidated as it happens.

mod catalog;
mod code_store;
mod sqlite;

use std::any::Any;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use strato_model::{AccessKey, Account, AwsError, FunctionRecord};

pub use catalog::{FunctionCatalog, FunctionKey};
pub use code_store::{CodeStore, CodeStoreError};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    AlreadyExists,
    #[error("not found")]
    NotFound,
    /// A mutation refused the change (a stale revision, an update in progress).
    #[error("{0}")]
    Rejected(AwsError),
    #[error("database error: {0}")]
    Backend(String),
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
    /// A mutation's answer came back as another type than its caller
    /// expects: a store implementation mixed up answers.
    #[error("a document mutation's answer has an unexpected type")]
    AnswerType,
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Backend(err.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}

/// A change applied to a function record inside the store's transaction:
/// the closure sees the current record and may refuse the change.
pub type FunctionMutation = Box<dyn FnOnce(&mut FunctionRecord) -> Result<(), AwsError> + Send>;

/// Where a [`Store`] document lives: the resources that are not functions
/// (layers, API Gateway APIs, function URL configs, provisioned concurrency
/// configs, ...) are JSON documents of a `kind`, keyed by `id` within an
/// account and region, and deleted with their account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentKey {
    pub account: String,
    pub region: String,
    /// What the document is, e.g. `"layer-version"`; one namespace per kind.
    pub kind: String,
    pub id: String,
}

impl DocumentKey {
    pub fn new(
        account: impl Into<String>,
        region: impl Into<String>,
        kind: impl Into<String>,
        id: impl Into<String>,
    ) -> DocumentKey {
        DocumentKey {
            account: account.into(),
            region: region.into(),
            kind: kind.into(),
            id: id.into(),
        }
    }
}

/// A stored document with its key, as listings return it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub key: DocumentKey,
    pub doc: serde_json::Value,
}

/// What a document mutation hands back to its caller through the store. The
/// store runs mutations on its own thread and cannot name the caller's types,
/// so answers travel type-erased; [`StoreExt::update_typed`] restores them.
pub type MutationAnswer = Box<dyn Any + Send>;

/// An atomic change to one document: sees the current document (or `None`)
/// and returns the new one (`None` deletes it) with an answer for the
/// caller, or refuses with an answer, and then nothing is written.
pub type DocumentMutation = Box<
    dyn FnOnce(
            Option<serde_json::Value>,
        ) -> Result<(Option<serde_json::Value>, MutationAnswer), MutationAnswer>
        + Send,
>;

/// How a [`DocumentMutation`] ended, with the answer it gave.
pub enum MutationOutcome {
    /// The change was committed.
    Applied(MutationAnswer),
    /// The mutation refused; the document is as it was.
    Refused(MutationAnswer),
}

/// Durable state. Implementations must make `update_function` atomic: the
/// mutation runs against the latest committed record and its result is
/// committed only if nothing else changed the record in between.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn create_account(&self, account: &Account) -> Result<(), StoreError>;
    async fn get_account(&self, id: &str) -> Result<Option<Account>, StoreError>;
    async fn list_accounts(&self) -> Result<Vec<Account>, StoreError>;
    /// Deletes the account with its keys and functions.
    async fn delete_account(&self, id: &str) -> Result<bool, StoreError>;
    async fn set_account_concurrency_limit(&self, id: &str, limit: u32)
        -> Result<bool, StoreError>;

    async fn put_access_key(&self, key: &AccessKey) -> Result<(), StoreError>;
    async fn list_access_keys(&self) -> Result<Vec<AccessKey>, StoreError>;

    async fn insert_function(&self, record: &FunctionRecord) -> Result<(), StoreError>;
    async fn get_function(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError>;
    /// Functions ordered by name, strictly after `after`.
    async fn list_functions(
        &self,
        account: &str,
        region: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FunctionRecord>, StoreError>;
    async fn update_function(
        &self,
        account: &str,
        region: &str,
        name: &str,
        mutation: FunctionMutation,
    ) -> Result<FunctionRecord, StoreError>;
    async fn delete_function(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError>;
    /// Every function of every account and region, for the startup pass that
    /// finishes creates and updates a previous process left half-settled.
    async fn list_all_functions(&self) -> Result<Vec<FunctionRecord>, StoreError>;
    /// (number of functions, total zipped code bytes) of an account in a region.
    async fn function_usage(&self, account: &str, region: &str) -> Result<(u64, u64), StoreError>;

    /// Creates a document; `AlreadyExists` if the key is taken.
    async fn insert_document(
        &self,
        key: &DocumentKey,
        doc: &serde_json::Value,
    ) -> Result<(), StoreError>;
    /// Creates or replaces a document.
    async fn put_document(
        &self,
        key: &DocumentKey,
        doc: &serde_json::Value,
    ) -> Result<(), StoreError>;
    async fn get_document(
        &self,
        key: &DocumentKey,
    ) -> Result<Option<serde_json::Value>, StoreError>;
    /// Documents of a kind in an account and region whose id starts with
    /// `id_prefix`, ordered by id, strictly after `after`, at most `limit`.
    async fn list_documents(
        &self,
        account: &str,
        region: &str,
        kind: &str,
        id_prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Document>, StoreError>;
    /// Every document of a kind across accounts and regions (startup loads).
    async fn list_all_documents(&self, kind: &str) -> Result<Vec<Document>, StoreError>;
    /// Applies `mutation` atomically and says whether it committed, with the
    /// mutation's answer. Callers use [`StoreExt::update_typed`].
    async fn update_document(
        &self,
        key: &DocumentKey,
        mutation: DocumentMutation,
    ) -> Result<MutationOutcome, StoreError>;
    /// Deletes a document; false if there was none.
    async fn delete_document(&self, key: &DocumentKey) -> Result<bool, StoreError>;

    /// Small server-wide settings (e.g. the key that signs code URLs).
    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;
}

/// Typed read-modify-write on [`Store`] documents, for every store.
#[async_trait]
pub trait StoreExt: Store {
    /// Applies `change` to the document at `key` atomically: it sees the
    /// current document as a `T` (or `None`) and returns the new one (`None`
    /// deletes it) with its answer `R`, or refuses with the caller's own
    /// error `E`, which comes back as it was given. A stored document that
    /// is not a `T` is [`StoreError::Corrupt`].
    async fn update_typed<T, R, E, F>(&self, key: &DocumentKey, change: F) -> Result<R, E>
    where
        T: DeserializeOwned + Serialize + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(Option<T>) -> Result<(Option<T>, R), E> + Send + 'static,
    {
        fn refuse<E: Send + 'static>(err: E) -> MutationAnswer {
            Box::new(err)
        }
        let mutation: DocumentMutation = Box::new(move |current| {
            let current = current
                .map(serde_json::from_value::<T>)
                .transpose()
                .map_err(|e| refuse(E::from(StoreError::from(e))))?;
            let (next, answer) = change(current).map_err(refuse)?;
            let next = next
                .map(|doc| serde_json::to_value(&doc))
                .transpose()
                .map_err(|e| refuse(E::from(StoreError::from(e))))?;
            Ok((next, Box::new(answer) as MutationAnswer))
        });
        match self.update_document(key, mutation).await? {
            MutationOutcome::Applied(answer) => answer
                .downcast::<R>()
                .map(|answer| *answer)
                .map_err(|_| E::from(StoreError::AnswerType)),
            MutationOutcome::Refused(answer) => Err(answer
                .downcast::<E>()
                .map(|err| *err)
                .unwrap_or_else(|_| E::from(StoreError::AnswerType))),
        }
    }

    /// Every document of a kind in an account and region whose id starts
    /// with `prefix`, as (id, `T`) in id order, read a page at a time. A
    /// document that is not a `T` is [`StoreError::Corrupt`].
    async fn list_typed<T: DeserializeOwned + Send>(
        &self,
        account: &str,
        region: &str,
        kind: &str,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        const PAGE: usize = 500;
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let batch = self
                .list_documents(account, region, kind, prefix, after.as_deref(), PAGE)
                .await?;
            let done = batch.len() < PAGE;
            for document in batch {
                after = Some(document.key.id.clone());
                out.push((document.key.id, serde_json::from_value(document.doc)?));
            }
            if done {
                return Ok(out);
            }
        }
    }
}

impl<S: Store + ?Sized> StoreExt for S {}
