//! What IAM and STS remember: per account its users, groups, roles,
//! customer managed policies and access keys, and the live STS sessions.
//!
//! IAM changes are rare and small, so the whole state is one JSON document
//! written atomically (temporary file, fsync, rename) after every change;
//! reads never touch the disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IamData {
    pub accounts: BTreeMap<String, AccountIam>,
    /// Temporary credentials by access key id.
    pub sessions: BTreeMap<String, Session>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountIam {
    pub users: BTreeMap<String, Entity>,
    pub groups: BTreeMap<String, Entity>,
    pub roles: BTreeMap<String, Entity>,
    /// Customer managed policies by ARN.
    pub policies: BTreeMap<String, ManagedPolicy>,
    pub access_keys: BTreeMap<String, UserKey>,
}

/// A user, group or role: the three hold policies the same way.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Entity {
    pub name: String,
    pub id: String,
    pub path: String,
    pub arn: String,
    pub created: i64,
    /// Inline policies by name (document text as given).
    pub inline: BTreeMap<String, String>,
    /// Attached managed policy ARNs, in attachment order.
    pub attached: Vec<String>,
    /// A user's groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// A role's trust policy.
    #[serde(default)]
    pub trust: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub max_session_duration: Option<i64>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManagedPolicy {
    pub name: String,
    pub id: String,
    pub path: String,
    pub arn: String,
    pub created: i64,
    pub updated: i64,
    pub description: Option<String>,
    pub default_version: String,
    pub versions: Vec<PolicyVersion>,
    pub next_version: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub id: String,
    pub document: String,
    pub created: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserKey {
    pub id: String,
    pub secret: String,
    pub user: String,
    pub active: bool,
    pub created: i64,
}

/// Temporary credentials from `AssumeRole` or `GetSessionToken`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub secret: String,
    pub token: String,
    pub account: String,
    /// Epoch seconds.
    pub expires: i64,
    pub kind: SessionKind,
    /// `AssumeRole`'s `Policy`, narrowing the role's.
    pub policy: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SessionKind {
    AssumedRole {
        role_name: String,
        role_id: String,
        session_name: String,
    },
    /// `GetSessionToken` of an IAM user (`None`: of the account's root).
    User { user: Option<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not IAM state: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The state file.
#[derive(Debug, Clone)]
pub struct DataFile {
    path: PathBuf,
}

impl DataFile {
    pub fn new(path: &Path) -> DataFile {
        DataFile {
            path: path.to_path_buf(),
        }
    }

    pub fn load(&self) -> Result<IamData, DataError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| DataError::Parse {
                path: self.path.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(IamData::default()),
            Err(source) => Err(DataError::Read {
                path: self.path.clone(),
                source,
            }),
        }
    }

    pub fn save(&self, data: &IamData) -> Result<(), DataError> {
        use std::io::Write as _;
        let write_err = |source| DataError::Write {
            path: self.path.clone(),
            source,
        };
        let bytes = serde_json::to_vec(data).map_err(|e| write_err(std::io::Error::other(e)))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(write_err)?;
        file.write_all(&bytes).map_err(write_err)?;
        file.sync_all().map_err(write_err)?;
        std::fs::rename(&tmp, &self.path).map_err(write_err)
    }
}
