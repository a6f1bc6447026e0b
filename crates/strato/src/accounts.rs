//! Account administration: what `strato accounts ...` does, and the account
//! a fresh data directory starts with.

use rand::Rng;
use strato_model::account::is_account_id;
use strato_model::limits::DEFAULT_ACCOUNT_CONCURRENCY;
use strato_model::{AccessKey, Account};
use strato_store::{Store, StoreError};

/// The account and key a loopback-only server creates on a fresh data
/// directory, so `aws configure` with test/test just works.
pub const LOCAL_ACCOUNT_ID: &str = "000000000000";
pub const LOCAL_ACCESS_KEY: &str = "test";
pub const LOCAL_SECRET_KEY: &str = "test";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("account id must be 12 digits, got {0:?}")]
    InvalidId(String),
    #[error("account {0} already exists")]
    Exists(String),
    #[error("no account {0}")]
    Missing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn random_chars(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// A key pair shaped like AWS's: `AKIA` + 16 upper-case characters, and a
/// 40-character secret.
pub fn generate_key(account_id: &str) -> AccessKey {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    AccessKey {
        access_key_id: format!("AKIA{}", random_chars(UPPER, 16)),
        secret_access_key: random_chars(SECRET, 40),
        account_id: account_id.to_string(),
    }
}

fn random_account_id() -> String {
    random_chars(b"0123456789", 12)
}

/// Creates an account (with a random id when none is given) and a key pair.
pub async fn create(
    store: &dyn Store,
    id: Option<&str>,
    name: &str,
) -> Result<(Account, AccessKey), AccountError> {
    let id = match id {
        Some(id) if !is_account_id(id) => return Err(AccountError::InvalidId(id.to_string())),
        Some(id) => id.to_string(),
        None => random_account_id(),
    };
    let account = Account {
        id: id.clone(),
        name: name.to_string(),
        concurrency_limit: DEFAULT_ACCOUNT_CONCURRENCY,
        created_at: chrono::Utc::now(),
    };
    match store.create_account(&account).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists) => return Err(AccountError::Exists(id)),
        Err(e) => return Err(e.into()),
    }
    let key = generate_key(&id);
    store.put_access_key(&key).await?;
    Ok((account, key))
}

/// What a fresh data directory gets: on loopback the well-known local
/// account (test/test); anywhere else a random key pair, returned so the
/// caller prints it once.
pub async fn ensure_initial_account(
    store: &dyn Store,
    loopback_only: bool,
) -> Result<Option<AccessKey>, AccountError> {
    if !store.list_accounts().await?.is_empty() {
        return Ok(None);
    }
    if loopback_only {
        let account = Account {
            id: LOCAL_ACCOUNT_ID.into(),
            name: "local".into(),
            concurrency_limit: DEFAULT_ACCOUNT_CONCURRENCY,
            created_at: chrono::Utc::now(),
        };
        store.create_account(&account).await?;
        let key = AccessKey {
            access_key_id: LOCAL_ACCESS_KEY.into(),
            secret_access_key: LOCAL_SECRET_KEY.into(),
            account_id: LOCAL_ACCOUNT_ID.into(),
        };
        store.put_access_key(&key).await?;
        Ok(Some(key))
    } else {
        let (_, key) = create(store, None, "admin").await?;
        Ok(Some(key))
    }
}

pub async fn delete(store: &dyn Store, id: &str) -> Result<(), AccountError> {
    if store.delete_account(id).await? {
        Ok(())
    } else {
        Err(AccountError::Missing(id.to_string()))
    }
}
