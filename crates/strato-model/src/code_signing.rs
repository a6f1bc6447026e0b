//! Code signing configurations (`CreateCodeSigningConfig`): which signing
//! profiles a function's code must be signed by, and what happens to code
//! that is not (`UntrustedArtifactOnDeployment`).
//!
//! Strato has no AWS Signer, so no deployment package carries a signature
//! Strato could verify: every artifact is untrusted. `Enforce` therefore
//! refuses every code deployment of a function that uses the configuration,
//! and `Warn` accepts it with a warning. The configuration itself is kept
//! exactly as AWS keeps it, so templates and pipelines that create one work.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::time::lambda_timestamp;

/// What Lambda does with code that fails signature validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UntrustedArtifactPolicy {
    /// Deploy it and warn.
    Warn,
    /// Refuse the deployment.
    Enforce,
}

impl UntrustedArtifactPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warn => "Warn",
            Self::Enforce => "Enforce",
        }
    }

    /// The member's value as a request spells it; AWS's enum is exact.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "Warn" => Some(Self::Warn),
            "Enforce" => Some(Self::Enforce),
            _ => None,
        }
    }
}

/// One code signing configuration as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeSigningConfig {
    /// `csc-` and 17 lowercase hex digits.
    pub id: String,
    pub description: String,
    pub signing_profile_version_arns: Vec<String>,
    pub untrusted_artifact_on_deployment: UntrustedArtifactPolicy,
    pub last_modified: DateTime<Utc>,
}

impl CodeSigningConfig {
    /// A fresh `csc-` id: 17 hex digits, as AWS mints them.
    pub fn new_id() -> String {
        let hex = uuid::Uuid::new_v4().simple().to_string();
        format!("csc-{}", &hex[..17])
    }

    pub fn arn(&self, region: &str, account: &str) -> String {
        code_signing_config_arn(region, account, &self.id)
    }

    /// The `CodeSigningConfig` shape.
    pub fn to_wire(&self, region: &str, account: &str) -> Value {
        json!({
            "AllowedPublishers": {
                "SigningProfileVersionArns": self.signing_profile_version_arns,
            },
            "CodeSigningConfigArn": self.arn(region, account),
            "CodeSigningConfigId": self.id,
            "CodeSigningPolicies": {
                "UntrustedArtifactOnDeployment": self.untrusted_artifact_on_deployment.as_str(),
            },
            "Description": self.description,
            "LastModified": lambda_timestamp(self.last_modified),
        })
    }
}

/// `arn:aws:lambda:{region}:{account}:code-signing-config:{id}`.
pub fn code_signing_config_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:code-signing-config:{id}")
}

/// The id an ARN of a code signing configuration in `region` and `account`
/// names, when it names one there.
pub fn code_signing_config_id<'a>(arn: &'a str, region: &str, account: &str) -> Option<&'a str> {
    let id = arn.strip_prefix(&format!(
        "arn:aws:lambda:{region}:{account}:code-signing-config:"
    ))?;
    is_config_id(id).then_some(id)
}

/// `csc-[a-z0-9]{17}`, AWS's pattern for the id part.
pub fn is_config_id(id: &str) -> bool {
    id.strip_prefix("csc-").is_some_and(|hex| {
        hex.len() == 17
            && hex
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_match_aws_pattern() {
        let id = CodeSigningConfig::new_id();
        assert!(is_config_id(&id), "{id}");
    }

    #[test]
    fn ids_are_read_back_only_from_this_region_and_account() {
        let arn = code_signing_config_arn("us-east-1", "111111111111", "csc-0123456789abcdef0");
        assert_eq!(
            code_signing_config_id(&arn, "us-east-1", "111111111111"),
            Some("csc-0123456789abcdef0")
        );
        assert_eq!(
            code_signing_config_id(&arn, "eu-west-1", "111111111111"),
            None
        );
        assert_eq!(
            code_signing_config_id(
                "arn:aws:lambda:us-east-1:111111111111:code-signing-config:csc-1",
                "us-east-1",
                "111111111111"
            ),
            None
        );
    }
}
