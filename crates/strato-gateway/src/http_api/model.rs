//! HTTP and WebSocket APIs as stored: one store document per API (kind
//! [`HTTP_API_KIND`]) holding the API with its routes, integrations,
//! authorizers, deployments and stages, so every control-plane change is
//! one atomic document update. A WebSocket API is the same document with
//! `protocol_type` WEBSOCKET (and route responses for two-way routes).
//! Members serialize in `apigatewayv2`'s wire shape (camelCase), so the
//! control plane answers with them directly.

use crate::public_url::UrlBase;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::rest_api::error::{RestError, RestResult};

/// The store document kind of an HTTP API.
pub const HTTP_API_KIND: &str = "apigatewayv2-api";

/// `corsConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cors {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expose_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub route_id: String,
    pub route_key: String,
    #[serde(default)]
    pub api_key_required: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_scopes: Vec<String>,
    pub authorization_type: RouteAuthorization,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_parameters: BTreeMap<String, Value>,
    /// `integrations/{integration-id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default)]
    pub api_gateway_managed: bool,
    /// WebSocket routes: `$default` makes the route two-way (the
    /// integration's answer goes back to the client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_response_selection_expression: Option<String>,
    /// WebSocket routes: how a message's model is chosen (stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_selection_expression: Option<String>,
}

impl Route {
    /// A route with no target, authorization or parameters yet.
    pub fn new(route_id: String, route_key: String) -> Route {
        Route {
            route_id,
            route_key,
            api_key_required: false,
            authorization_scopes: Vec::new(),
            authorization_type: RouteAuthorization::None,
            authorizer_id: None,
            operation_name: None,
            request_parameters: BTreeMap::new(),
            target: None,
            api_gateway_managed: false,
            route_response_selection_expression: None,
            model_selection_expression: None,
        }
    }
}

/// `protocolType`: an HTTP API or a WebSocket API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProtocolType {
    #[default]
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "WEBSOCKET")]
    WebSocket,
}

impl ProtocolType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolType::Http => "HTTP",
            ProtocolType::WebSocket => "WEBSOCKET",
        }
    }
}

/// `integrationType`: what an integration calls. HTTP APIs accept only the
/// proxy types; WebSocket APIs also `HTTP` (the message POSTed to an URL)
/// and `MOCK` (answered by the integration itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntegrationType {
    /// A Lambda function, by its ARN.
    #[serde(rename = "AWS_PROXY")]
    AwsProxy,
    /// An HTTP URL.
    #[serde(rename = "HTTP_PROXY")]
    HttpProxy,
    /// An HTTP URL, non-proxy (WebSocket APIs).
    #[serde(rename = "HTTP")]
    Http,
    /// No backend (WebSocket APIs).
    #[serde(rename = "MOCK")]
    Mock,
}

impl IntegrationType {
    /// The type a request names for an API of `protocol`, or AWS's
    /// `BadRequestException` for one that protocol does not have.
    pub fn from_wire(value: &str, protocol: ProtocolType) -> RestResult<IntegrationType> {
        match (value, protocol) {
            ("AWS_PROXY", _) => Ok(IntegrationType::AwsProxy),
            ("HTTP_PROXY", _) => Ok(IntegrationType::HttpProxy),
            ("HTTP", ProtocolType::WebSocket) => Ok(IntegrationType::Http),
            ("MOCK", ProtocolType::WebSocket) => Ok(IntegrationType::Mock),
            ("AWS", ProtocolType::WebSocket) => Err(RestError::bad_request(
                "Integration type AWS (AWS service integrations) is not supported by Strato",
            )),
            ("AWS" | "HTTP" | "MOCK", ProtocolType::Http) => Err(RestError::bad_request(format!(
                "Integration type {value} is not supported for HTTP APIs"
            ))),
            (other, _) => Err(RestError::bad_request(format!(
                "Invalid integration type {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    pub integration_id: String,
    pub integration_type: IntegrationType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_format_version: Option<String>,
    pub timeout_in_millis: i64,
    pub connection_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_arn: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_parameters: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub api_gateway_managed: bool,
    /// WebSocket integrations: templates by content type (`MOCK` answers
    /// with the `$default` one; `HTTP` sends it as the request body).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_templates: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_selection_expression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough_behavior: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_handling_strategy: Option<String>,
}

/// A WebSocket integration's `IntegrationResponse`: chosen by its key
/// (`$default`, or a `/pattern/` of the backend's status code), its
/// `responseTemplates` shape what goes back to the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationResponse {
    pub integration_response_id: String,
    pub integration_response_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_handling_strategy: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_templates: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_selection_expression: Option<String>,
}

/// A WebSocket route's `RouteResponse`: with key `$default` it makes the
/// route two-way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteResponse {
    pub route_response_id: String,
    pub route_response_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_selection_expression: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_models: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_parameters: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtConfiguration {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

/// A route's `authorizationType`: who may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouteAuthorization {
    /// Anyone.
    #[serde(rename = "NONE")]
    None,
    /// SigV4-signed callers.
    #[serde(rename = "AWS_IAM")]
    AwsIam,
    /// Whom a Lambda (`REQUEST`) authorizer admits.
    #[serde(rename = "CUSTOM")]
    Custom,
    /// Bearers of a JWT that a `JWT` authorizer accepts.
    #[serde(rename = "JWT")]
    Jwt,
}

impl RouteAuthorization {
    /// The type a request names, or AWS's `BadRequestException`.
    pub fn from_wire(value: &str) -> RestResult<RouteAuthorization> {
        match value {
            "NONE" => Ok(RouteAuthorization::None),
            "AWS_IAM" => Ok(RouteAuthorization::AwsIam),
            "CUSTOM" => Ok(RouteAuthorization::Custom),
            "JWT" => Ok(RouteAuthorization::Jwt),
            other => Err(RestError::bad_request(format!(
                "Invalid authorization type {other}; must be NONE, AWS_IAM, CUSTOM or JWT"
            ))),
        }
    }

    /// The wire value, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteAuthorization::None => "NONE",
            RouteAuthorization::AwsIam => "AWS_IAM",
            RouteAuthorization::Custom => "CUSTOM",
            RouteAuthorization::Jwt => "JWT",
        }
    }

    /// The authorizer type the route needs, if it names one.
    pub fn authorizer_type(self) -> Option<AuthorizerType> {
        match self {
            RouteAuthorization::None | RouteAuthorization::AwsIam => None,
            RouteAuthorization::Custom => Some(AuthorizerType::Request),
            RouteAuthorization::Jwt => Some(AuthorizerType::Jwt),
        }
    }
}

/// `authorizerType`: how an HTTP API authorizer decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthorizerType {
    /// A Lambda function answers.
    #[serde(rename = "REQUEST")]
    Request,
    /// A JSON Web Token from a configured issuer.
    #[serde(rename = "JWT")]
    Jwt,
}

impl AuthorizerType {
    /// The type a request names, or AWS's `BadRequestException` for one
    /// HTTP APIs do not have.
    pub fn from_wire(value: &str) -> RestResult<AuthorizerType> {
        match value {
            "REQUEST" => Ok(AuthorizerType::Request),
            "JWT" => Ok(AuthorizerType::Jwt),
            other => Err(RestError::bad_request(format!(
                "Invalid authorizer type {other}; HTTP APIs support REQUEST and JWT"
            ))),
        }
    }

    /// The wire value, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizerType::Request => "REQUEST",
            AuthorizerType::Jwt => "JWT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorizer {
    pub authorizer_id: String,
    pub name: String,
    pub authorizer_type: AuthorizerType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer_payload_format_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer_result_ttl_in_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_simple_responses: Option<bool>,
    #[serde(default)]
    pub identity_source: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_configuration: Option<JwtConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer_credentials_arn: Option<String>,
}

/// `RouteSettings`: throttling (and logging flags Strato stores).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_trace_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detailed_metrics_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttling_burst_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttling_rate_limit: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessLogSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub stage_name: String,
    #[serde(default)]
    pub auto_deploy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_date: String,
    pub last_updated_date: String,
    #[serde(default)]
    pub default_route_settings: RouteSettings,
    #[serde(default)]
    pub route_settings: BTreeMap<String, RouteSettings>,
    #[serde(default)]
    pub stage_variables: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_log_settings: Option<AccessLogSettings>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub api_gateway_managed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_deployment_status_message: Option<String>,
}

/// What a deployment froze: the routes, integrations and authorizers (and
/// the API's CORS configuration) a stage serves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub routes: BTreeMap<String, Route>,
    pub integrations: BTreeMap<String, Integration>,
    pub authorizers: BTreeMap<String, Authorizer>,
    pub cors: Option<Cors>,
    /// Route responses by route id, then by id (WebSocket APIs).
    #[serde(default)]
    pub route_responses: BTreeMap<String, BTreeMap<String, RouteResponse>>,
    /// Integration responses by integration id, then by id (WebSocket APIs).
    #[serde(default)]
    pub integration_responses: BTreeMap<String, BTreeMap<String, IntegrationResponse>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub deployment_id: String,
    pub auto_deployed: bool,
    pub created_date: String,
    pub description: Option<String>,
    pub snapshot: Snapshot,
}

impl Deployment {
    pub fn to_wire(&self) -> Value {
        let mut out = serde_json::json!({
            "autoDeployed": self.auto_deployed,
            "createdDate": self.created_date,
            "deploymentId": self.deployment_id,
            "deploymentStatus": "DEPLOYED",
        });
        if let (Some(d), Value::Object(map)) = (&self.description, &mut out) {
            map.insert("description".into(), d.clone().into());
        }
        out
    }
}

/// An HTTP API with everything in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpApi {
    pub api_id: String,
    pub account: String,
    pub region: String,
    pub name: String,
    #[serde(default)]
    pub protocol_type: ProtocolType,
    pub description: Option<String>,
    pub version: Option<String>,
    pub route_selection_expression: String,
    pub api_key_selection_expression: String,
    pub cors: Option<Cors>,
    pub disable_execute_api_endpoint: bool,
    pub disable_schema_validation: bool,
    pub ip_address_type: String,
    pub created_date: String,
    pub tags: BTreeMap<String, String>,
    pub routes: BTreeMap<String, Route>,
    pub integrations: BTreeMap<String, Integration>,
    pub authorizers: BTreeMap<String, Authorizer>,
    pub deployments: BTreeMap<String, Deployment>,
    pub stages: BTreeMap<String, Stage>,
    /// Route responses by route id, then by id (WebSocket APIs).
    #[serde(default)]
    pub route_responses: BTreeMap<String, BTreeMap<String, RouteResponse>>,
    /// Integration responses by integration id, then by id (WebSocket APIs).
    #[serde(default)]
    pub integration_responses: BTreeMap<String, BTreeMap<String, IntegrationResponse>>,
}

impl HttpApi {
    /// The `ApiEndpoint` GetApi returns, as `base` forms it.
    pub fn endpoint(&self, base: &UrlBase) -> String {
        match self.protocol_type {
            ProtocolType::Http => base.api_endpoint(&self.api_id),
            ProtocolType::WebSocket => base.websocket_endpoint(&self.api_id),
        }
    }

    /// The `Api` shape of GetApi / CreateApi / UpdateApi / GetApis.
    pub fn to_wire(&self, base: &UrlBase) -> Value {
        let mut out = serde_json::json!({
            "apiEndpoint": self.endpoint(base),
            "apiId": self.api_id,
            "apiKeySelectionExpression": self.api_key_selection_expression,
            "createdDate": self.created_date,
            "disableExecuteApiEndpoint": self.disable_execute_api_endpoint,
            "disableSchemaValidation": self.disable_schema_validation,
            "ipAddressType": self.ip_address_type,
            "name": self.name,
            "protocolType": self.protocol_type.as_str(),
            "routeSelectionExpression": self.route_selection_expression,
            "tags": self.tags,
        });
        if let Value::Object(map) = &mut out {
            if let Some(cors) = &self.cors {
                map.insert(
                    "corsConfiguration".into(),
                    serde_json::to_value(cors).unwrap_or(Value::Null),
                );
            }
            if let Some(d) = &self.description {
                map.insert("description".into(), d.clone().into());
            }
            if let Some(v) = &self.version {
                map.insert("version".into(), v.clone().into());
            }
        }
        out
    }

    /// The current routes, integrations and authorizers, for a deployment.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            routes: self.routes.clone(),
            integrations: self.integrations.clone(),
            authorizers: self.authorizers.clone(),
            cors: self.cors.clone(),
            route_responses: self.route_responses.clone(),
            integration_responses: self.integration_responses.clone(),
        }
    }
}

/// `2026-11-26T20:42:46Z`, as API Gateway writes timestamps.
pub fn timestamp_now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An identifier as API Gateway makes them: 10 lower-case alphanumerics
/// (routes, integrations and the rest use 7).
pub fn new_id(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
