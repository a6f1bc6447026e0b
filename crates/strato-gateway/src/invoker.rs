//! How the gateway runs a function: it does not know the function catalog or
//! the engine's admission rules; it asks a [`LambdaInvoker`] to invoke a
//! function ARN synchronously on behalf of a principal (API Gateway's service
//! principal, or a function URL's caller) and a source ARN. strato-api
//! implements it with the same resolution as Lambda's Invoke and checks the
//! function's resource policy, as AWS does.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

/// The service principal API Gateway invokes functions as.
pub const APIGATEWAY_PRINCIPAL: &str = "apigateway.amazonaws.com";

/// Who asks for the invocation, as the resource policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokePrincipal {
    /// An AWS service (`apigateway.amazonaws.com`).
    Service(String),
    /// A SigV4-authenticated caller (function URLs with `AWS_IAM`): its
    /// access key and the account it signs for. It is decided as any
    /// request on the function is: by its identity policies and the
    /// function's policy (another account needs a statement naming it).
    Caller {
        account: String,
        access_key_id: String,
    },
    /// An unauthenticated caller (function URLs with `NONE`): only a
    /// statement with principal `*` admits it.
    Anonymous,
}

/// The permission being exercised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokeAction {
    /// `lambda:InvokeFunction` (API Gateway integrations).
    InvokeFunction,
    /// `lambda:InvokeFunctionUrl` with the URL's auth type (`NONE` or
    /// `AWS_IAM`), which policy conditions may test.
    InvokeFunctionUrl { auth_type: FunctionUrlAuthType },
}

/// A function URL's `AuthType`, stored and answered with AWS's wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FunctionUrlAuthType {
    #[serde(rename = "NONE")]
    None,
    #[serde(rename = "AWS_IAM")]
    AwsIam,
}

impl FunctionUrlAuthType {
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionUrlAuthType::None => "NONE",
            FunctionUrlAuthType::AwsIam => "AWS_IAM",
        }
    }

    pub fn parse(value: &str) -> Option<FunctionUrlAuthType> {
        match value {
            "NONE" => Some(FunctionUrlAuthType::None),
            "AWS_IAM" => Some(FunctionUrlAuthType::AwsIam),
            _ => None,
        }
    }
}

/// One synchronous invocation the gateway asks for.
#[derive(Debug, Clone)]
pub struct GatewayInvocation {
    /// `arn:aws:lambda:{region}:{account}:function:{name}[:{qualifier}]`
    /// (an integration URI's function, or a function URL's target).
    pub function_arn: String,
    pub principal: InvokePrincipal,
    pub action: InvokeAction,
    /// The ARN of what calls (`arn:aws:execute-api:{region}:{account}:{api-id}/{stage}/{method}/{path}`),
    /// tested against `AWS:SourceArn` conditions.
    pub source_arn: Option<String>,
    /// The account that owns the caller (`AWS:SourceAccount`).
    pub source_account: Option<String>,
    /// The event (JSON).
    pub payload: Bytes,
}

/// What the function answered.
#[derive(Debug, Clone)]
pub struct InvocationOutcome {
    pub payload: Bytes,
    /// `Some("Unhandled")` when the function failed.
    pub function_error: Option<String>,
    pub executed_version: String,
    pub request_id: String,
}

/// Why an invocation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeFailure {
    #[error("function not found: {0}")]
    FunctionNotFound(String),
    /// The function's resource policy does not allow the principal.
    #[error("{0}")]
    AccessDenied(String),
    /// No concurrency left (Lambda's TooManyRequestsException).
    #[error("rate exceeded: {0}")]
    Throttled(String),
    /// Pending, Inactive or Failed.
    #[error("function not ready: {0}")]
    NotReady(String),
    #[error("invalid function ARN: {0}")]
    InvalidArn(String),
    #[error("invocation failed: {0}")]
    Service(String),
}

/// Runs functions for the gateway.
#[async_trait]
pub trait LambdaInvoker: Send + Sync + 'static {
    async fn invoke(&self, request: GatewayInvocation) -> Result<InvocationOutcome, InvokeFailure>;

    /// [`LambdaInvoker::invoke`] for a function URL in `RESPONSE_STREAM`
    /// mode: what the function streams goes to `stream` while it runs (the
    /// outcome's payload is then empty); a function that answers whole
    /// answers in the outcome.
    async fn invoke_streaming(
        &self,
        request: GatewayInvocation,
        stream: tokio::sync::mpsc::Sender<strato_model::response_stream::StreamedPart>,
    ) -> Result<InvocationOutcome, InvokeFailure>;
}

/// API Gateway's default (and largest) integration timeout for Lambda and
/// HTTP integrations.
pub const DEFAULT_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);

/// The function ARN in an integration URI: either the ARN itself or the
/// `arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations`
/// form REST APIs (and HTTP APIs, optionally) use.
pub fn function_arn_of_integration_uri(uri: &str) -> Option<String> {
    if uri.starts_with("arn:aws:lambda:") {
        return Some(uri.to_string());
    }
    let rest = uri.strip_prefix("arn:aws:apigateway:")?;
    let (_, path) = rest.split_once(":lambda:path/")?;
    let inner = path
        .strip_prefix("2015-03-31/functions/")?
        .strip_suffix("/invocations")?;
    inner
        .starts_with("arn:aws:lambda:")
        .then(|| inner.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_uri_forms_name_the_function_arn() {
        let arn = "arn:aws:lambda:us-east-1:000000000000:function:f";
        assert_eq!(function_arn_of_integration_uri(arn).as_deref(), Some(arn));
        let wrapped = format!(
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations"
        );
        assert_eq!(
            function_arn_of_integration_uri(&wrapped).as_deref(),
            Some(arn)
        );
        assert_eq!(function_arn_of_integration_uri("http://example.com"), None);
    }
}
