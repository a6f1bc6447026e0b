//! A function as Strato stores it, and its `FunctionConfiguration` wire form.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::arn::function_arn;
use crate::policy::Policy;
use crate::runtime::Runtime;
use crate::time::lambda_timestamp;

/// `State` of a function version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FunctionState {
    Pending,
    Active,
    Inactive,
    Failed,
}

/// `LastUpdateStatus` of a function version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LastUpdateStatus {
    InProgress,
    Successful,
    Failed,
}

/// The code a version runs: the zip's identity and where Strato keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRef {
    /// Base64 SHA-256 of the zip, as AWS reports `CodeSha256`.
    pub sha256_base64: String,
    /// Hex SHA-256: the key of the content-addressed code store.
    pub sha256_hex: String,
    pub size: u64,
    pub unzipped_size: u64,
}

/// Everything that describes one version of a function (`$LATEST` or a
/// published number). Immutable once published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionConfig {
    pub name: String,
    pub version: String,
    pub runtime: Runtime,
    pub role: String,
    pub handler: Option<String>,
    pub description: String,
    pub timeout: i64,
    pub memory_size: i64,
    pub ephemeral_storage: i64,
    pub environment: Option<BTreeMap<String, String>>,
    pub architectures: Vec<String>,
    pub code: CodeRef,
    pub revision_id: String,
    pub last_modified: DateTime<Utc>,
    pub state: FunctionState,
    pub state_reason: Option<String>,
    pub state_reason_code: Option<String>,
    /// Absent until the function's creation has settled, as on AWS.
    pub last_update_status: Option<LastUpdateStatus>,
    pub last_update_status_reason: Option<String>,
    pub last_update_status_reason_code: Option<String>,
    pub tracing_mode: String,
    pub dead_letter_target_arn: Option<String>,
    pub kms_key_arn: Option<String>,
    pub log_format: String,
    pub log_group: String,
}

impl FunctionConfig {
    pub fn arn(&self, region: &str, account: &str) -> String {
        function_arn(region, account, &self.name)
    }

    /// Marks the version changed: a new `RevisionId` and `LastModified`.
    pub fn touch(&mut self, now: DateTime<Utc>) {
        self.revision_id = uuid::Uuid::new_v4().to_string();
        self.last_modified = now;
    }

    /// True while a create or an update is still being applied.
    pub fn is_settling(&self) -> bool {
        self.state == FunctionState::Pending
            || self.last_update_status == Some(LastUpdateStatus::InProgress)
    }

    /// The `FunctionConfiguration` shape. `detailed` adds the state fields
    /// that AWS returns from GetFunction/GetFunctionConfiguration but leaves
    /// out of ListFunctions.
    pub fn to_wire(&self, region: &str, account: &str, detailed: bool) -> Value {
        let mut out = json!({
            "FunctionName": self.name,
            "FunctionArn": self.arn(region, account),
            "Runtime": self.runtime.as_str(),
            "Role": self.role,
            "CodeSize": self.code.size,
            "Description": self.description,
            "Timeout": self.timeout,
            "MemorySize": self.memory_size,
            "LastModified": lambda_timestamp(self.last_modified),
            "CodeSha256": self.code.sha256_base64,
            "Version": self.version,
            "TracingConfig": {"Mode": self.tracing_mode},
            "RevisionId": self.revision_id,
            "PackageType": "Zip",
            "Architectures": self.architectures,
            "EphemeralStorage": {"Size": self.ephemeral_storage},
            "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
            "LoggingConfig": {"LogFormat": self.log_format, "LogGroup": self.log_group},
        });
        let Value::Object(map) = &mut out else {
            return out;
        };
        if let Some(handler) = &self.handler {
            map.insert("Handler".into(), handler.clone().into());
        }
        if let Some(vars) = &self.environment {
            map.insert("Environment".into(), json!({ "Variables": vars }));
        }
        if let Some(target) = &self.dead_letter_target_arn {
            map.insert("DeadLetterConfig".into(), json!({ "TargetArn": target }));
        }
        if let Some(kms) = &self.kms_key_arn {
            map.insert("KMSKeyArn".into(), kms.clone().into());
        }
        if detailed {
            map.insert("State".into(), json!(self.state));
            if let Some(status) = self.last_update_status {
                map.insert("LastUpdateStatus".into(), json!(status));
            }
            for (key, value) in [
                ("StateReason", &self.state_reason),
                ("StateReasonCode", &self.state_reason_code),
                ("LastUpdateStatusReason", &self.last_update_status_reason),
                (
                    "LastUpdateStatusReasonCode",
                    &self.last_update_status_reason_code,
                ),
            ] {
                if let Some(value) = value {
                    map.insert(key.into(), value.clone().into());
                }
            }
        }
        out
    }
}

/// A function with everything attached to it as a whole: `$LATEST`, tags,
/// resource policy and reserved concurrency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionRecord {
    pub account: String,
    pub region: String,
    pub latest: FunctionConfig,
    pub tags: BTreeMap<String, String>,
    pub policy: Policy,
    pub reserved_concurrency: Option<u32>,
    pub created_at: DateTime<Utc>,
}

impl FunctionRecord {
    pub fn name(&self) -> &str {
        &self.latest.name
    }

    pub fn arn(&self) -> String {
        self.latest.arn(&self.region, &self.account)
    }
}
