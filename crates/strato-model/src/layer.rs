//! Lambda layers: immutable, numbered versions of a zip that functions
//! reference by ARN and see extracted under `/opt`, with the resource policy
//! that lets other accounts use a version.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::arn::{is_account, is_region};
use crate::error::{AwsError, ErrorCode, ValidationErrors};
use crate::function::CodeRef;
use crate::policy::Policy;
use crate::time::lambda_timestamp;

/// A function references at most this many layer versions.
pub const MAX_FUNCTION_LAYERS: usize = 5;

/// AWS's pattern for a layer version ARN, quoted verbatim in its messages.
pub const LAYER_VERSION_ARN_PATTERN: &str = r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)";

/// AWS's pattern for the `LayerName` member (a name or an unversioned layer ARN).
pub const LAYER_NAME_PATTERN: &str = r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:[a-zA-Z0-9-_]{1,140}|[a-zA-Z0-9-_]{1,140})";

/// The runtimes PublishLayerVersion accepts in `CompatibleRuntimes`, in the
/// order AWS lists them in its validation message.
pub const PUBLISHABLE_RUNTIMES: &[&str] = &[
    "nodejs20.x",
    "python3.14",
    "provided.al2023",
    "python3.12",
    "python3.13",
    "nodejs24.x",
    "nodejs22.x",
    "java25",
    "python3.10",
    "python3.11",
    "java21",
    "ruby3.3",
    "ruby3.4",
    "ruby3.2",
    "python3.8",
    "python3.9",
    "java17",
    "nodejs16.x",
    "dotnet10",
    "dotnet8",
    "java11",
    "dotnet6",
    "nodejs18.x",
    "provided.al2",
    "java8.al2",
];

/// Every runtime identifier the `CompatibleRuntime` filter of ListLayers and
/// ListLayerVersions accepts (deprecated ones included), in AWS's order.
pub const FILTER_RUNTIMES: &[&str] = &[
    "ruby3.5",
    "ruby2.6",
    "dotnetcore1.0",
    "python3.7",
    "nodejs8.10",
    "nasa",
    "ruby2.7",
    "python2.7-greengrass",
    "dotnetcore2.0",
    "python3.8",
    "java21",
    "dotnet6",
    "dotnetcore2.1",
    "python3.9",
    "java11",
    "nodejs6.10",
    "provided",
    "dotnetcore3.1",
    "dotnet8",
    "java25",
    "java17",
    "nodejs",
    "nodejs4.3",
    "java8.al2",
    "go1.x",
    "dotnet10",
    "nodejs20.x",
    "go1.9",
    "byol",
    "nodejs10.x",
    "provided.al2023",
    "nodejs22.x",
    "python3.10",
    "java8",
    "nodejs12.x",
    "python3.11",
    "nodejs24.x",
    "nodejs8.x",
    "python3.12",
    "nodejs14.x",
    "nodejs8.9",
    "nodejs26.x",
    "python3.13",
    "python3.14",
    "nodejs16.x",
    "python3.15",
    "provided.al2",
    "nodejs4.3-edge",
    "nodejs18.x",
    "ruby3.2",
    "python3.4",
    "ruby3.3",
    "ruby3.4",
    "ruby2.5",
    "python3.6",
    "python2.7",
];

const ARCHITECTURES: &[&str] = &["x86_64", "arm64"];

/// `arn:aws:lambda:{region}:{account}:layer:{name}`
pub fn layer_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:layer:{name}")
}

/// `arn:aws:lambda:{region}:{account}:layer:{name}:{version}`
pub fn layer_version_arn(region: &str, account: &str, name: &str, version: u64) -> String {
    format!("{}:{version}", layer_arn(region, account, name))
}

fn is_layer_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 140
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `arn:aws…:lambda:{region}:{account}:layer:{rest}` split into its parts.
fn split_layer_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let [_, _, "lambda", region, account, resource] = crate::arn::general_arn_parts(arn)? else {
        return None;
    };
    let rest = resource.strip_prefix("layer:")?;
    (is_region(region) && is_account(account)).then_some((region, account, rest))
}

/// A layer version named by its full ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerVersionRef {
    pub region: String,
    pub account: String,
    pub name: String,
    pub version: u64,
}

impl LayerVersionRef {
    /// Parses a layer version ARN; `None` when it does not match AWS's
    /// pattern (the caller words the error for its member).
    pub fn parse(arn: &str) -> Option<LayerVersionRef> {
        if arn.len() > 2048 {
            return None;
        }
        let (region, account, rest) = split_layer_arn(arn)?;
        let (name, version) = rest.rsplit_once(':')?;
        if !is_layer_name(name)
            || version.is_empty()
            || !version.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(LayerVersionRef {
            region: region.to_string(),
            account: account.to_string(),
            name: name.to_string(),
            // Digits too many for a u64 name no version that exists.
            version: version.parse().unwrap_or(u64::MAX),
        })
    }

    pub fn arn(&self) -> String {
        layer_version_arn(&self.region, &self.account, &self.name, self.version)
    }

    pub fn layer_arn(&self) -> String {
        layer_arn(&self.region, &self.account, &self.name)
    }
}

/// The `LayerName` path member: a name, or a layer ARN naming the account
/// and region that own it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerName {
    pub name: String,
    pub region: Option<String>,
    pub account: Option<String>,
}

impl LayerName {
    pub fn parse(raw: &str) -> Result<LayerName, AwsError> {
        let invalid = || {
            let mut v = ValidationErrors::new();
            v.push(
                raw,
                "layerName",
                &format!("Member must satisfy regular expression pattern: {LAYER_NAME_PATTERN}"),
            );
            v.into_result(ErrorCode::ValidationException)
                .err()
                .unwrap_or_else(|| AwsError::validation("invalid layer name"))
        };
        if raw.starts_with("arn:") {
            let (region, account, name) = split_layer_arn(raw).ok_or_else(invalid)?;
            if !is_layer_name(name) {
                return Err(invalid());
            }
            return Ok(LayerName {
                name: name.to_string(),
                region: Some(region.to_string()),
                account: Some(account.to_string()),
            });
        }
        if !is_layer_name(raw) {
            return Err(invalid());
        }
        Ok(LayerName {
            name: raw.to_string(),
            region: None,
            account: None,
        })
    }
}

/// A layer version as a function configuration keeps it: enough to show
/// `Layers: [{Arn, CodeSize}]` and to build `/opt` without asking the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionLayer {
    pub arn: String,
    pub code: CodeRef,
}

impl FunctionLayer {
    /// The `Layer` shape of a `FunctionConfiguration`.
    pub fn to_wire(&self) -> Value {
        json!({ "Arn": self.arn, "CodeSize": self.code.size })
    }
}

/// One published version of a layer. Immutable except for its policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerVersion {
    pub version: u64,
    pub description: String,
    pub created: DateTime<Utc>,
    pub compatible_runtimes: Vec<String>,
    pub compatible_architectures: Vec<String>,
    pub license_info: Option<String>,
    pub code: CodeRef,
    /// Who else may use the version (AddLayerVersionPermission).
    #[serde(default)]
    pub policy: Policy,
    /// Changes with every change of the policy.
    #[serde(default)]
    pub policy_revision_id: String,
}

impl LayerVersion {
    /// The `LayerVersionsListItem` shape (ListLayers, ListLayerVersions).
    pub fn list_item(&self, region: &str, account: &str, name: &str) -> Value {
        let mut out = json!({
            "LayerVersionArn": layer_version_arn(region, account, name, self.version),
            "Version": self.version,
            "Description": self.description,
            "CreatedDate": lambda_timestamp(self.created),
        });
        self.add_optional(&mut out);
        out
    }

    /// The GetLayerVersion / PublishLayerVersion shape; `location` is the
    /// presigned download URL of the archive.
    pub fn to_wire(&self, region: &str, account: &str, name: &str, location: &str) -> Value {
        let mut out = json!({
            "Content": {
                "Location": location,
                "CodeSha256": self.code.sha256_base64,
                "CodeSize": self.code.size,
            },
            "LayerArn": layer_arn(region, account, name),
            "LayerVersionArn": layer_version_arn(region, account, name, self.version),
            "Description": self.description,
            "CreatedDate": lambda_timestamp(self.created),
            "Version": self.version,
        });
        self.add_optional(&mut out);
        out
    }

    fn add_optional(&self, out: &mut Value) {
        if !self.compatible_runtimes.is_empty() {
            out["CompatibleRuntimes"] = json!(self.compatible_runtimes);
        }
        if !self.compatible_architectures.is_empty() {
            out["CompatibleArchitectures"] = json!(self.compatible_architectures);
        }
        if let Some(license) = &self.license_info {
            out["LicenseInfo"] = json!(license);
        }
    }

    /// Whether the version passes ListLayers' / ListLayerVersions' filters.
    pub fn matches(&self, runtime: Option<&str>, architecture: Option<&str>) -> bool {
        runtime.is_none_or(|r| self.compatible_runtimes.iter().any(|c| c == r))
            && architecture.is_none_or(|a| self.compatible_architectures.iter().any(|c| c == a))
    }
}

/// A layer: its live versions and the highest number ever published
/// (numbers are never reused, even after a version is deleted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub name: String,
    pub last_version: u64,
    pub versions: BTreeMap<u64, LayerVersion>,
}

/// The `CompatibleRuntimes` and `CompatibleArchitectures` of a publish, with
/// AWS's combined validation message.
pub fn validate_compatibility(
    runtimes: &[String],
    architectures: &[String],
) -> Result<(), AwsError> {
    let mut v = ValidationErrors::new();
    if runtimes
        .iter()
        .any(|r| !PUBLISHABLE_RUNTIMES.contains(&r.as_str()))
    {
        v.push(
            &format!("[{}]", runtimes.join(", ")),
            "compatibleRuntimes",
            &format!(
                "Member must satisfy enum value set: [{}]",
                PUBLISHABLE_RUNTIMES.join(", ")
            ),
        );
    } else if runtimes.len() > 15 {
        v.push(
            &format!("[{}]", runtimes.join(", ")),
            "compatibleRuntimes",
            "Member must have length less than or equal to 15",
        );
    }
    if architectures
        .iter()
        .any(|a| !ARCHITECTURES.contains(&a.as_str()))
    {
        v.push(
            &format!("[{}]", architectures.join(", ")),
            "compatibleArchitectures",
            "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]",
        );
    } else if architectures.len() > 2 {
        v.push(
            &format!("[{}]", architectures.join(", ")),
            "compatibleArchitectures",
            "Member must have length less than or equal to 2",
        );
    }
    v.into_result(ErrorCode::ValidationException)
}

/// The list filters of ListLayers and ListLayerVersions.
pub fn validate_filters(runtime: Option<&str>, architecture: Option<&str>) -> Result<(), AwsError> {
    let mut v = ValidationErrors::new();
    if let Some(r) = runtime.filter(|r| !FILTER_RUNTIMES.contains(r)) {
        v.push(
            r,
            "compatibleRuntime",
            &format!(
                "Member must satisfy enum value set: [{}]",
                FILTER_RUNTIMES.join(", ")
            ),
        );
    }
    if let Some(a) = architecture.filter(|a| !ARCHITECTURES.contains(a)) {
        v.push(
            a,
            "compatibleArchitecture",
            "Member must satisfy enum value set: [x86_64, arm64]",
        );
    }
    v.into_result(ErrorCode::ValidationException)
}

/// `Layer version {arn} does not exist.` as GetLayerVersion answers it (404).
pub fn layer_version_not_found(arn: &str) -> AwsError {
    AwsError::not_found(format!("Layer version {arn} does not exist."))
}

/// The 403 for using another account's layer version without its grant.
pub fn layer_access_denied(caller_account: &str, arn: &str) -> AwsError {
    AwsError::new(
        ErrorCode::AccessDeniedException,
        format!(
            "User: arn:aws:iam::{caller_account}:root is not authorized to perform: lambda:GetLayerVersion on resource: {arn} because no resource-based policy allows the lambda:GetLayerVersion action"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_version_arns_parse_into_their_parts() {
        let r = LayerVersionRef::parse("arn:aws:lambda:us-east-1:123456789012:layer:my-layer:7")
            .expect("valid arn");
        assert_eq!(r.account, "123456789012");
        assert_eq!(r.region, "us-east-1");
        assert_eq!(r.name, "my-layer");
        assert_eq!(r.version, 7);
        assert_eq!(
            r.arn(),
            "arn:aws:lambda:us-east-1:123456789012:layer:my-layer:7"
        );
        for bad in [
            "arn:aws:lambda:us-east-1:123456789012:layer:my-layer",
            "arn:aws:lambda:us-east-1:123456789012:function:f:1",
            "arn:aws:lambda:us-east-1:1234:layer:x:1",
            "my-layer:1",
        ] {
            assert_eq!(LayerVersionRef::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn layer_names_may_be_unversioned_arns() {
        let n = LayerName::parse("arn:aws:lambda:eu-west-1:123456789012:layer:deps").expect("arn");
        assert_eq!(n.name, "deps");
        assert_eq!(n.account.as_deref(), Some("123456789012"));
        assert_eq!(LayerName::parse("deps").expect("name").account, None);
        let err = LayerName::parse("bad name").expect_err("invalid");
        assert_eq!(err.code, ErrorCode::ValidationException);
    }

    #[test]
    fn invalid_runtimes_and_architectures_are_reported_together() {
        let err = validate_compatibility(&["invalidruntime".into()], &["invalidarch".into()])
            .expect_err("invalid");
        assert!(err.message.starts_with(
            "2 validation errors detected: Value '[invalidruntime]' at 'compatibleRuntimes' failed to satisfy constraint: Member must satisfy enum value set: [nodejs20.x, python3.14,"
        ));
        assert!(err.message.ends_with(
            "Value '[invalidarch]' at 'compatibleArchitectures' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]"
        ));
    }
}
