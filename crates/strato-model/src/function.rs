//! A function as Strato stores it, and its `FunctionConfiguration` wire form.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::arn::{function_arn, Qualifier};
use crate::layer::FunctionLayer;
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
    /// The layer versions the version runs with, in order (later ones over
    /// earlier ones under `/opt`). A published version keeps its own.
    #[serde(default)]
    pub layers: Vec<FunctionLayer>,
    /// The runtime build this version runs, as the hash its
    /// `RuntimeVersionArn` carries: recorded when the version's code or
    /// configuration was last deployed, or the build it is pinned to.
    #[serde(default)]
    pub runtime_version: Option<String>,
    /// When the version moves to a newer runtime build
    /// (`PutRuntimeManagementConfig`).
    #[serde(default)]
    pub runtime_update: RuntimeUpdate,
}

impl FunctionConfig {
    /// The version's ARN: unqualified for `$LATEST`, qualified by its
    /// number for a published version.
    pub fn arn(&self, region: &str, account: &str) -> String {
        if self.is_latest() {
            function_arn(region, account, &self.name)
        } else {
            format!(
                "{}:{}",
                function_arn(region, account, &self.name),
                self.version
            )
        }
    }

    pub fn is_latest(&self) -> bool {
        self.version == LATEST
    }

    /// True when `other` would run exactly what this version runs: the same
    /// code and configuration, whatever its identity, state and description.
    /// PublishVersion returns the last version instead of a new one when
    /// `$LATEST` is the same as it.
    pub fn same_snapshot(&self, other: &FunctionConfig) -> bool {
        let normalise = |c: &FunctionConfig| {
            let mut c = c.clone();
            c.version = String::new();
            c.description = String::new();
            c.revision_id = String::new();
            c.last_modified = DateTime::<Utc>::MIN_UTC;
            c.state = FunctionState::Active;
            c.state_reason = None;
            c.state_reason_code = None;
            c.last_update_status = None;
            c.last_update_status_reason = None;
            c.last_update_status_reason_code = None;
            c
        };
        normalise(self) == normalise(other)
    }

    /// A published version made from this (`$LATEST`) configuration.
    pub fn publish_as(&self, number: u64, description: Option<String>, now: DateTime<Utc>) -> Self {
        let mut version = self.clone();
        version.version = number.to_string();
        if let Some(description) = description {
            version.description = description;
        }
        version.touch(now);
        version
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
        if !self.layers.is_empty() {
            let layers: Vec<Value> = self.layers.iter().map(FunctionLayer::to_wire).collect();
            map.insert("Layers".into(), Value::Array(layers));
        }
        if detailed {
            // Listings leave it out, as AWS's do.
            if let Some(hash) = &self.runtime_version {
                map.insert(
                    "RuntimeVersionConfig".into(),
                    json!({ "RuntimeVersionArn": runtime_version_arn(region, hash) }),
                );
            }
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

/// The `$LATEST` version's name.
pub const LATEST: &str = "$LATEST";

/// `arn:aws:lambda:{region}::runtime:{hash}`: a runtime build, named by the
/// hash of what is installed for it (no account: builds are the platform's).
pub fn runtime_version_arn(region: &str, hash: &str) -> String {
    format!("arn:aws:lambda:{region}::runtime:{hash}")
}

/// The build hash a runtime version ARN of `region` names, when it is one
/// (64 lowercase hex digits, as AWS's are).
pub fn runtime_version_hash<'a>(arn: &'a str, region: &str) -> Option<&'a str> {
    let hash = arn.strip_prefix(&format!("arn:aws:lambda:{region}::runtime:"))?;
    (hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hash)
}

/// `UpdateRuntimeOn` of a version's runtime management configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RuntimeUpdate {
    /// The newest installed build, picked up at the next cold start.
    #[default]
    Auto,
    /// The newest installed build, recorded at each code or configuration update.
    FunctionUpdate,
    /// The build with this hash, and no other.
    Manual(String),
}

impl RuntimeUpdate {
    /// The `UpdateRuntimeOn` value.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Auto => "Auto",
            Self::FunctionUpdate => "FunctionUpdate",
            Self::Manual(_) => "Manual",
        }
    }
}

/// `RecursiveLoop` of a function (`PutFunctionRecursionConfig`): whether an
/// invocation found to be part of a recursive loop is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RecursiveLoop {
    Allow,
    /// AWS's default.
    #[default]
    Terminate,
}

impl RecursiveLoop {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "Allow",
            Self::Terminate => "Terminate",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "Allow" => Some(Self::Allow),
            "Terminate" => Some(Self::Terminate),
            _ => None,
        }
    }
}

/// A named pointer to a published version (or `$LATEST`), optionally
/// splitting invocations with a second version by weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alias {
    pub name: String,
    pub function_version: String,
    pub description: String,
    /// `RoutingConfig.AdditionalVersionWeights`: at most one entry.
    #[serde(default)]
    pub additional_version_weights: BTreeMap<String, f64>,
    pub revision_id: String,
}

impl Alias {
    /// The `AliasConfiguration` shape.
    pub fn to_wire(&self, region: &str, account: &str, function: &str) -> Value {
        let mut out = json!({
            "AliasArn": format!("{}:{}", function_arn(region, account, function), self.name),
            "Name": self.name,
            "FunctionVersion": self.function_version,
            "Description": self.description,
            "RevisionId": self.revision_id,
        });
        if !self.additional_version_weights.is_empty() {
            out["RoutingConfig"] =
                json!({ "AdditionalVersionWeights": self.additional_version_weights });
        }
        out
    }

    /// Every version the alias can run.
    pub fn references(&self, version: &str) -> bool {
        self.function_version == version || self.additional_version_weights.contains_key(version)
    }

    /// The version one invocation runs, given a uniform sample in [0, 1).
    pub fn pick(&self, sample: f64) -> &str {
        for (version, weight) in &self.additional_version_weights {
            if sample < *weight {
                return version;
            }
        }
        &self.function_version
    }
}

/// What a qualifier names in a function.
#[derive(Debug, Clone, Copy)]
pub enum Resolved<'a> {
    Version(&'a FunctionConfig),
    Alias(&'a Alias),
}

/// A function with everything attached to it as a whole: `$LATEST`, its
/// published versions and aliases, tags, resource policies and reserved
/// concurrency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionRecord {
    pub account: String,
    pub region: String,
    pub latest: FunctionConfig,
    pub tags: BTreeMap<String, String>,
    /// The resource policy of the unqualified function (and `$LATEST`).
    pub policy: Policy,
    pub reserved_concurrency: Option<u32>,
    pub created_at: DateTime<Utc>,
    /// Published versions by number; immutable snapshots of `$LATEST`.
    #[serde(default)]
    pub versions: BTreeMap<u64, FunctionConfig>,
    /// The highest version number ever published: numbers are never reused,
    /// even after the version is deleted.
    #[serde(default)]
    pub last_version: u64,
    /// `$LATEST`'s `LastModified` when the last version was published: a
    /// publish with no update since returns that version.
    #[serde(default)]
    pub published_latest_modified: Option<DateTime<Utc>>,
    #[serde(default)]
    pub aliases: BTreeMap<String, Alias>,
    /// Resource policies of versions and aliases, by qualifier (AWS keeps a
    /// separate policy per qualifier).
    #[serde(default)]
    pub qualified_policies: BTreeMap<String, Policy>,
    /// Provisioned concurrency configurations, by qualifier (a published
    /// version or an alias).
    #[serde(default)]
    pub provisioned_concurrency: BTreeMap<String, ProvisionedConcurrency>,
    /// Asynchronous invocation settings, by qualifier (`$LATEST`, a
    /// published version or an alias), as AWS keeps one per qualifier.
    #[serde(default)]
    pub event_invoke_configs: BTreeMap<String, crate::EventInvokeConfig>,
    /// The code signing configuration code deployments are checked against
    /// (`PutFunctionCodeSigningConfig`), by ARN.
    #[serde(default)]
    pub code_signing_config_arn: Option<String>,
    /// What a detected recursive loop does to the function.
    #[serde(default)]
    pub recursive_loop: RecursiveLoop,
}

/// One provisioned concurrency configuration as the user set it; its live
/// status is the engine's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionedConcurrency {
    pub requested: u32,
    pub last_modified: DateTime<Utc>,
}

impl FunctionRecord {
    pub fn name(&self) -> &str {
        &self.latest.name
    }

    pub fn arn(&self) -> String {
        self.latest.arn(&self.region, &self.account)
    }

    /// The configuration of `$LATEST` or of a published version.
    pub fn version(&self, version: &str) -> Option<&FunctionConfig> {
        if version == LATEST {
            return Some(&self.latest);
        }
        self.versions.get(&version.parse::<u64>().ok()?)
    }

    /// What a qualifier names, if it exists. `None` is `$LATEST`.
    pub fn resolve(&self, qualifier: Option<&Qualifier>) -> Option<Resolved<'_>> {
        match qualifier {
            None | Some(Qualifier::Latest) => Some(Resolved::Version(&self.latest)),
            Some(Qualifier::Version(n)) => self.versions.get(n).map(Resolved::Version),
            Some(Qualifier::Alias(name)) => self.aliases.get(name).map(Resolved::Alias),
        }
    }

    /// The resource policy that governs requests on the function as
    /// `qualifier` names it: a version's or alias's own policy when it has
    /// one, the function's for the unqualified ARN and `$LATEST`.
    pub fn policy_for(&self, qualifier: Option<&Qualifier>) -> Option<&Policy> {
        match qualifier {
            None | Some(Qualifier::Latest) => Some(&self.policy),
            Some(q) => self.qualified_policies.get(&q.as_string()),
        }
    }

    /// The configuration a qualifier denotes for reads: an alias denotes its
    /// primary version.
    pub fn config_for(&self, qualifier: Option<&Qualifier>) -> Option<&FunctionConfig> {
        match self.resolve(qualifier)? {
            Resolved::Version(config) => Some(config),
            Resolved::Alias(alias) => self.version(&alias.function_version),
        }
    }

    /// Zipped bytes the function holds: `$LATEST` and every published version.
    pub fn code_size(&self) -> u64 {
        self.latest.code.size + self.versions.values().map(|v| v.code.size).sum::<u64>()
    }

    /// True while `$LATEST` or any published version is still settling.
    pub fn is_settling(&self) -> bool {
        self.latest.is_settling() || self.versions.values().any(FunctionConfig::is_settling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> FunctionConfig {
        FunctionConfig {
            name: "f".into(),
            version: LATEST.into(),
            runtime: Runtime::ProvidedAl2023,
            role: "arn:aws:iam::000000000000:role/r".into(),
            handler: Some("index.handler".into()),
            description: String::new(),
            timeout: 3,
            memory_size: 128,
            ephemeral_storage: 512,
            environment: None,
            architectures: vec!["x86_64".into()],
            code: CodeRef {
                sha256_base64: "b64".into(),
                sha256_hex: "hex".into(),
                size: 10,
                unzipped_size: 20,
            },
            revision_id: "r1".into(),
            last_modified: Utc::now(),
            state: FunctionState::Active,
            state_reason: None,
            state_reason_code: None,
            last_update_status: Some(LastUpdateStatus::Successful),
            last_update_status_reason: None,
            last_update_status_reason_code: None,
            tracing_mode: "PassThrough".into(),
            dead_letter_target_arn: None,
            kms_key_arn: None,
            log_format: "Text".into(),
            log_group: "/aws/lambda/f".into(),
            layers: Vec::new(),
            runtime_version: None,
            runtime_update: Default::default(),
        }
    }

    #[test]
    fn runtime_version_is_detailed_only_and_named_by_region() {
        let mut c = config();
        c.runtime_version = Some("ab".repeat(32));
        let arn = format!("arn:aws:lambda:eu-west-1::runtime:{}", "ab".repeat(32));
        assert_eq!(
            c.to_wire("eu-west-1", "111111111111", true)["RuntimeVersionConfig"],
            json!({ "RuntimeVersionArn": arn })
        );
        assert!(c
            .to_wire("eu-west-1", "111111111111", false)
            .get("RuntimeVersionConfig")
            .is_none());
        assert_eq!(
            runtime_version_hash(&arn, "eu-west-1"),
            Some("ab".repeat(32).as_str())
        );
        assert_eq!(runtime_version_hash(&arn, "us-east-1"), None);
    }

    #[test]
    fn a_published_version_is_the_same_snapshot_until_latest_changes() {
        let latest = config();
        let v1 = latest.publish_as(1, Some("first".into()), Utc::now());
        assert_eq!(v1.version, "1");
        assert_eq!(v1.description, "first");
        assert_ne!(v1.revision_id, latest.revision_id);
        assert!(v1.same_snapshot(&latest));
        assert_eq!(
            v1.arn("us-east-1", "000000000000"),
            "arn:aws:lambda:us-east-1:000000000000:function:f:1"
        );
        let mut changed = latest.clone();
        changed.timeout = 4;
        assert!(!v1.same_snapshot(&changed));
    }

    #[test]
    fn an_alias_picks_the_additional_version_below_its_weight() {
        let alias = Alias {
            name: "live".into(),
            function_version: "1".into(),
            description: String::new(),
            additional_version_weights: [("2".to_string(), 0.3)].into(),
            revision_id: "r".into(),
        };
        assert_eq!(alias.pick(0.0), "2");
        assert_eq!(alias.pick(0.2999), "2");
        assert_eq!(alias.pick(0.3), "1");
        assert_eq!(alias.pick(0.99), "1");
        assert!(alias.references("1") && alias.references("2") && !alias.references("3"));
    }
}
