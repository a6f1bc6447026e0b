//! The in-memory view of functions that the hot path reads.
//!
//! Reads are served from a sharded map (no global lock, no database round
//! trip once warm); every write goes through the catalog to the store and
//! then replaces or evicts the cached record, so readers never see a record
//! older than the last committed write made through this node.

use std::sync::Arc;

use dashmap::DashMap;
use strato_model::FunctionRecord;

use crate::{FunctionMutation, Store, StoreError};

/// (account, region, function name)
pub type FunctionKey = (String, String, String);

pub struct FunctionCatalog {
    store: Arc<dyn Store>,
    cache: DashMap<FunctionKey, Arc<FunctionRecord>>,
    /// Held across a write to the store and the matching cache change, and
    /// across a cache fill on a miss, so a slower writer or reader can never
    /// put back a record that a later write replaced or deleted. Cache hits
    /// do not take it.
    writes: tokio::sync::Mutex<()>,
}

fn key(account: &str, region: &str, name: &str) -> FunctionKey {
    (account.to_string(), region.to_string(), name.to_string())
}

impl FunctionCatalog {
    pub fn new(store: Arc<dyn Store>) -> FunctionCatalog {
        FunctionCatalog {
            store,
            cache: DashMap::new(),
            writes: tokio::sync::Mutex::new(()),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current record, from memory when cached.
    pub async fn get(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<Arc<FunctionRecord>>, StoreError> {
        let k = key(account, region, name);
        if let Some(hit) = self.cache.get(&k) {
            return Ok(Some(hit.clone()));
        }
        let _write = self.writes.lock().await;
        if let Some(hit) = self.cache.get(&k) {
            return Ok(Some(hit.clone()));
        }
        let Some(record) = self.store.get_function(account, region, name).await? else {
            return Ok(None);
        };
        let record = Arc::new(record);
        self.cache.insert(k, record.clone());
        Ok(Some(record))
    }

    pub async fn insert(&self, record: FunctionRecord) -> Result<Arc<FunctionRecord>, StoreError> {
        let _write = self.writes.lock().await;
        self.store.insert_function(&record).await?;
        let record = Arc::new(record);
        self.cache.insert(
            key(&record.account, &record.region, record.name()),
            record.clone(),
        );
        Ok(record)
    }

    pub async fn update(
        &self,
        account: &str,
        region: &str,
        name: &str,
        mutation: FunctionMutation,
    ) -> Result<Arc<FunctionRecord>, StoreError> {
        let k = key(account, region, name);
        let _write = self.writes.lock().await;
        match self
            .store
            .update_function(account, region, name, mutation)
            .await
        {
            Ok(record) => {
                let record = Arc::new(record);
                self.cache.insert(k, record.clone());
                Ok(record)
            }
            Err(err) => {
                // The store may know better than the cache (another node).
                self.cache.remove(&k);
                Err(err)
            }
        }
    }

    pub async fn delete(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError> {
        let _write = self.writes.lock().await;
        let deleted = self.store.delete_function(account, region, name).await;
        self.cache.remove(&key(account, region, name));
        deleted
    }

    /// Drops every cached function of an account (after the account is deleted).
    pub fn forget_account(&self, account: &str) {
        self.cache.retain(|k, _| k.0 != account);
    }
}
