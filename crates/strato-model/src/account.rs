//! Accounts and their access keys.

use serde::{Deserialize, Serialize};

/// A 12-digit AWS-style account id.
pub type AccountId = String;

/// An account: its own functions, its own concurrency limit per region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub concurrency_limit: u32,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A SigV4 key pair owned by an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account_id: AccountId,
}

/// Who is calling: the account owning the SigV4 key and the region the
/// request was signed for. Handlers of every service take it as a request
/// extension set by the authentication middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account_id: String,
    pub region: String,
    pub access_key_id: String,
}

/// True for a 12-digit account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}
