//! The REST API resources as stored and as sent: the structs serialize to
//! `apigateway`'s wire shapes (lowerCamelCase, epoch-second dates), and the
//! stored documents carry what the wire does not show next to them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{RestError, RestResult};

/// Document kinds in the store (one namespace each).
pub const KIND_REST_API: &str = "rest-api";
/// Id `{api-id}/{deployment-id}`.
pub const KIND_DEPLOYMENT: &str = "rest-api-deployment";
/// Id `{api-id}/{stage-name}`.
pub const KIND_STAGE: &str = "rest-api-stage";
pub const KIND_API_KEY: &str = "api-key";
pub const KIND_USAGE_PLAN: &str = "usage-plan";
/// Id `{usage-plan-id}/{api-key-id}`: requests counted against the quota.
pub const KIND_QUOTA_USAGE: &str = "usage-plan-quota";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EndpointConfiguration {
    pub types: Vec<String>,
}

/// `RestApi` on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestApi {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_date: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binary_media_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_compression_size: Option<i64>,
    pub api_key_source: String,
    pub endpoint_configuration: EndpointConfiguration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub disable_execute_api_endpoint: bool,
    pub root_resource_id: String,
}

/// A REST API as stored: its settings and its resource tree (methods and
/// integrations inside), changed atomically as one document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestApiRecord {
    pub api: RestApi,
    /// By resource id.
    pub resources: BTreeMap<String, Resource>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_part: Option<String>,
    pub path: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_methods: BTreeMap<String, Method>,
}

/// A method's `authorizationType`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum AuthorizationType {
    #[serde(rename = "NONE")]
    None,
    /// SigV4-signed callers only.
    #[serde(rename = "AWS_IAM")]
    AwsIam,
    /// A Lambda authorizer.
    #[serde(rename = "CUSTOM")]
    Custom,
    #[serde(rename = "COGNITO_USER_POOLS")]
    CognitoUserPools,
}

impl AuthorizationType {
    /// The type a request names, or AWS's `BadRequestException`.
    pub fn from_wire(value: &str) -> RestResult<AuthorizationType> {
        match value {
            "NONE" => Ok(AuthorizationType::None),
            "AWS_IAM" => Ok(AuthorizationType::AwsIam),
            "CUSTOM" => Ok(AuthorizationType::Custom),
            "COGNITO_USER_POOLS" => Ok(AuthorizationType::CognitoUserPools),
            other => Err(RestError::bad_request(format!(
                "Invalid authorization type specified: {other}. Valid values are NONE, AWS_IAM, CUSTOM and COGNITO_USER_POOLS"
            ))),
        }
    }
}

/// An integration's `type`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum IntegrationType {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTP_PROXY")]
    HttpProxy,
    #[serde(rename = "AWS")]
    Aws,
    #[serde(rename = "AWS_PROXY")]
    AwsProxy,
    #[serde(rename = "MOCK")]
    Mock,
}

impl IntegrationType {
    /// The type a request names, or AWS's `BadRequestException`.
    pub fn from_wire(value: &str) -> RestResult<IntegrationType> {
        match value {
            "HTTP" => Ok(IntegrationType::Http),
            "HTTP_PROXY" => Ok(IntegrationType::HttpProxy),
            "AWS" => Ok(IntegrationType::Aws),
            "AWS_PROXY" => Ok(IntegrationType::AwsProxy),
            "MOCK" => Ok(IntegrationType::Mock),
            other => Err(RestError::bad_request(format!(
                "Invalid integration type specified: {other}. Valid values are HTTP, HTTP_PROXY, AWS, AWS_PROXY and MOCK"
            ))),
        }
    }

    /// The wire value, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationType::Http => "HTTP",
            IntegrationType::HttpProxy => "HTTP_PROXY",
            IntegrationType::Aws => "AWS",
            IntegrationType::AwsProxy => "AWS_PROXY",
            IntegrationType::Mock => "MOCK",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Method {
    pub http_method: String,
    pub authorization_type: AuthorizationType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer_id: Option<String>,
    #[serde(default)]
    pub api_key_required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_validator_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_parameters: BTreeMap<String, bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_models: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub method_responses: BTreeMap<String, MethodResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method_integration: Option<Integration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_scopes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MethodResponse {
    pub status_code: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_parameters: BTreeMap<String, bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_models: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    #[serde(rename = "type")]
    pub integration_type: IntegrationType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_templates: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough_behavior: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_handling: Option<String>,
    pub timeout_in_millis: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_namespace: Option<String>,
    #[serde(default)]
    pub cache_key_parameters: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub integration_responses: BTreeMap<String, IntegrationResponse>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationResponse {
    pub status_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection_pattern: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_templates: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_handling: Option<String>,
}

/// `Deployment` on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_date: i64,
}

/// A deployment as stored: the API's resource tree as it was when deployed,
/// which is what stages pointing at it serve.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRecord {
    pub deployment: Deployment,
    pub resources: BTreeMap<String, Resource>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MethodSetting {
    pub metrics_enabled: bool,
    pub logging_level: String,
    pub data_trace_enabled: bool,
    pub throttling_burst_limit: i64,
    pub throttling_rate_limit: f64,
    pub caching_enabled: bool,
    pub cache_ttl_in_seconds: i64,
    pub cache_data_encrypted: bool,
    pub require_authorization_for_cache_control: bool,
    pub unauthorized_cache_control_header_strategy: String,
}

impl Default for MethodSetting {
    /// What AWS fills in for a method setting first touched by a patch: the
    /// account's default throttle (10 000 requests a second, burst 5 000).
    fn default() -> MethodSetting {
        MethodSetting {
            metrics_enabled: false,
            logging_level: "OFF".into(),
            data_trace_enabled: false,
            throttling_burst_limit: 5000,
            throttling_rate_limit: 10000.0,
            caching_enabled: false,
            cache_ttl_in_seconds: 300,
            cache_data_encrypted: false,
            require_authorization_for_cache_control: true,
            unauthorized_cache_control_header_strategy: "SUCCEED_WITH_RESPONSE_HEADER".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccessLogSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_arn: Option<String>,
}

/// `Stage` on the wire and in the store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub deployment_id: String,
    pub stage_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub cache_cluster_enabled: bool,
    pub cache_cluster_status: String,
    /// Keyed `*/*` or `{escaped resource path}/{METHOD}` (e.g. `~1items/GET`).
    #[serde(default)]
    pub method_settings: BTreeMap<String, MethodSetting>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log_settings: Option<AccessLogSettings>,
    #[serde(default)]
    pub tracing_enabled: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    pub created_date: i64,
    pub last_updated_date: i64,
}

/// `ApiKey` on the wire and in the store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub enabled: bool,
    pub created_date: i64,
    pub last_updated_date: i64,
    #[serde(default)]
    pub stage_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QuotaSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiStage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub throttle: BTreeMap<String, ThrottleSettings>,
}

/// `UsagePlan` on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UsagePlan {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub api_stages: Vec<ApiStage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottleSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaSettings>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// A usage plan as stored, with the ids of the API keys it admits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UsagePlanRecord {
    pub plan: UsagePlan,
    #[serde(default)]
    pub key_ids: Vec<String>,
}

/// `UsagePlanKey` on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UsagePlanKey {
    pub id: String,
    #[serde(rename = "type")]
    pub key_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub name: String,
}
