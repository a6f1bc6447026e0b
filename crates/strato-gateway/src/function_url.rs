//! Function URLs: a dedicated HTTP endpoint for a function (or an alias),
//! with AuthType `NONE` (public; the function's resource policy must allow
//! `*` to `lambda:InvokeFunctionUrl` and `lambda:InvokeFunction`) or
//! `AWS_IAM` (SigV4-signed for service `lambda`; callers of another account
//! need the policy to allow them), CORS, and payload format 2.0.
//!
//! The configurations are store documents (kind [`FUNCTION_URL_KIND`], id
//! `{function}:{qualifier}`); the data plane reads an in-memory index by URL
//! id. The Lambda control plane (`/2021-10-31/functions/{name}/url`) lives in
//! strato-api and calls [`FunctionUrlService`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use chrono::Utc;
use dashmap::DashMap;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use strato_sigv4::{CredentialLookup, RequestParts};
use strato_store::{DocumentKey, Store, StoreError, StoreExt};

use crate::http_api::model::Cors;
use crate::invoker::{
    FunctionUrlAuthType, GatewayInvocation, InvokeAction, InvokeFailure, InvokePrincipal,
    LambdaInvoker,
};
use crate::proxy::{self, is_text_content_type, EventBody, ProxyResponse};
use crate::public_url::{PublicUrls, UrlBase};

mod stream;

/// The store document kind of a function URL configuration.
pub const FUNCTION_URL_KIND: &str = "lambda-function-url";

/// Function URLs' request payload limit (6 MB, the synchronous invoke limit).
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// Lambda's `Cors` shape (PascalCase on the wire).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UrlCors {
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

impl UrlCors {
    fn as_cors(&self) -> Cors {
        Cors {
            allow_credentials: self.allow_credentials,
            allow_headers: self.allow_headers.clone(),
            allow_methods: self.allow_methods.clone(),
            allow_origins: self.allow_origins.clone(),
            expose_headers: self.expose_headers.clone(),
            max_age: self.max_age,
        }
    }
}

/// One function URL configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionUrlConfig {
    pub url_id: String,
    pub account: String,
    pub region: String,
    pub function_name: String,
    /// The alias (or `$LATEST`) the URL invokes; `None` for the
    /// unqualified function.
    pub qualifier: Option<String>,
    pub auth_type: FunctionUrlAuthType,
    pub cors: Option<UrlCors>,
    pub invoke_mode: String,
    pub creation_time: String,
    pub last_modified_time: String,
}

impl FunctionUrlConfig {
    /// `arn:aws:lambda:{region}:{account}:function:{name}[:{qualifier}]`
    pub fn function_arn(&self) -> String {
        let base = format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account, self.function_name
        );
        match &self.qualifier {
            Some(q) => format!("{base}:{q}"),
            None => base,
        }
    }

    /// The URL clients call, as `base` forms it.
    pub fn url(&self, base: &UrlBase) -> String {
        base.function_url(&self.url_id, &self.region)
    }

    /// The `FunctionUrlConfig` shape (Get/List; Create and Update answer a
    /// subset of it).
    pub fn to_wire(&self, base: &UrlBase) -> Value {
        let mut out = json!({
            "FunctionUrl": self.url(base),
            "FunctionArn": self.function_arn(),
            "AuthType": self.auth_type,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
            "InvokeMode": self.invoke_mode,
        });
        if let (Some(cors), Value::Object(map)) = (&self.cors, &mut out) {
            map.insert(
                "Cors".into(),
                serde_json::to_value(cors).unwrap_or(Value::Null),
            );
        }
        out
    }

    pub fn document_id(function_name: &str, qualifier: Option<&str>) -> String {
        format!("{function_name}:{}", qualifier.unwrap_or(""))
    }
}

/// `2026-11-26T20:42:46.123Z`: Lambda's timestamp form for function URLs.
pub fn url_timestamp_now() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A new URL id: 32 lower-case alphanumerics, as Lambda makes them.
pub fn new_url_id() -> String {
    crate::http_api::model::new_id(32)
}

/// Function URL configurations and their data plane.
pub struct FunctionUrlService {
    pub store: Arc<dyn Store>,
    pub invoker: Arc<dyn LambdaInvoker>,
    pub credentials: Arc<dyn CredentialLookup + Send + Sync>,
    /// How the `FunctionUrl`s handed out are formed.
    pub public_urls: PublicUrls,
    live: DashMap<String, Arc<FunctionUrlConfig>>,
}

impl FunctionUrlService {
    /// Loads every function URL into the in-memory index.
    pub async fn start(
        store: Arc<dyn Store>,
        invoker: Arc<dyn LambdaInvoker>,
        credentials: Arc<dyn CredentialLookup + Send + Sync>,
        public_urls: PublicUrls,
    ) -> Result<Arc<FunctionUrlService>, StoreError> {
        let service = Arc::new(FunctionUrlService {
            store,
            invoker,
            credentials,
            public_urls,
            live: DashMap::new(),
        });
        for document in service.store.list_all_documents(FUNCTION_URL_KIND).await? {
            match serde_json::from_value::<FunctionUrlConfig>(document.doc) {
                Ok(config) => {
                    service.live.insert(config.url_id.clone(), Arc::new(config));
                }
                Err(e) => {
                    tracing::warn!(id = %document.key.id, error = %e, "unreadable function URL document")
                }
            }
        }
        Ok(service)
    }

    fn key(
        account: &str,
        region: &str,
        function_name: &str,
        qualifier: Option<&str>,
    ) -> DocumentKey {
        DocumentKey::new(
            account,
            region,
            FUNCTION_URL_KIND,
            FunctionUrlConfig::document_id(function_name, qualifier),
        )
    }

    /// Stores a new configuration; `Ok(false)` if the function (qualifier)
    /// already has one.
    pub async fn create(&self, config: FunctionUrlConfig) -> Result<bool, StoreError> {
        let key = Self::key(
            &config.account,
            &config.region,
            &config.function_name,
            config.qualifier.as_deref(),
        );
        let doc = serde_json::to_value(&config)?;
        match self.store.insert_document(&key, &doc).await {
            Ok(()) => {
                self.live.insert(config.url_id.clone(), Arc::new(config));
                Ok(true)
            }
            Err(StoreError::AlreadyExists) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn get(
        &self,
        account: &str,
        region: &str,
        function_name: &str,
        qualifier: Option<&str>,
    ) -> Result<Option<FunctionUrlConfig>, StoreError> {
        let key = Self::key(account, region, function_name, qualifier);
        match self.store.get_document(&key).await? {
            Some(doc) => Ok(Some(serde_json::from_value(doc)?)),
            None => Ok(None),
        }
    }

    /// Replaces a configuration (same key); refreshes the index.
    pub async fn put(&self, config: FunctionUrlConfig) -> Result<(), StoreError> {
        let key = Self::key(
            &config.account,
            &config.region,
            &config.function_name,
            config.qualifier.as_deref(),
        );
        self.store
            .put_document(&key, &serde_json::to_value(&config)?)
            .await?;
        self.live.insert(config.url_id.clone(), Arc::new(config));
        Ok(())
    }

    /// Deletes a configuration; `Ok(false)` if there was none.
    pub async fn delete(
        &self,
        account: &str,
        region: &str,
        function_name: &str,
        qualifier: Option<&str>,
    ) -> Result<bool, StoreError> {
        let Some(existing) = self.get(account, region, function_name, qualifier).await? else {
            return Ok(false);
        };
        let deleted = self
            .store
            .delete_document(&Self::key(account, region, function_name, qualifier))
            .await?;
        self.live.remove(&existing.url_id);
        Ok(deleted)
    }

    /// Every URL configuration of a function (its own and its aliases').
    pub async fn list(
        &self,
        account: &str,
        region: &str,
        function_name: &str,
    ) -> Result<Vec<FunctionUrlConfig>, StoreError> {
        let prefix = format!("{function_name}:");
        let configs = self
            .store
            .list_typed(account, region, FUNCTION_URL_KIND, &prefix)
            .await?;
        Ok(configs.into_iter().map(|(_, config)| config).collect())
    }

    /// Removes the URLs of a deleted function (or alias) from the store and
    /// the index.
    pub async fn forget_function(
        &self,
        account: &str,
        region: &str,
        function_name: &str,
    ) -> Result<(), StoreError> {
        for config in self.list(account, region, function_name).await? {
            self.delete(account, region, function_name, config.qualifier.as_deref())
                .await?;
        }
        Ok(())
    }

    /// Serves one request to function URL `url_id`; `path` is the request
    /// path as the function sees it (`rawPath`). `domain_name` is the host
    /// of a host-style request; a path-style one gets the name its
    /// host-style URL would have (`{url-id}.lambda-url.{region}.localhost`).
    pub async fn handle(
        &self,
        url_id: &str,
        path: &str,
        request: Request,
        source_ip: String,
        domain_name: Option<String>,
    ) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        let answer = match self.live.get(url_id).map(|c| c.clone()) {
            Some(config) => {
                let domain_name = domain_name
                    .unwrap_or_else(|| format!("{url_id}.lambda-url.{}.localhost", config.region));
                self.serve(&config, path, request, source_ip, domain_name, &request_id)
                    .await
            }
            None => UrlAnswer::Whole(url_error(StatusCode::FORBIDDEN, "Forbidden")),
        };
        let mut response = match answer {
            UrlAnswer::Whole(answer) => {
                let mut response = Response::new(Body::from(answer.body));
                *response.status_mut() = answer.status;
                for (name, value) in answer.headers {
                    response.headers_mut().append(name, value);
                }
                response
            }
            UrlAnswer::Streamed(response) => response,
        };
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-amzn-requestid", v);
        }
        response
    }

    async fn serve(
        &self,
        config: &FunctionUrlConfig,
        path: &str,
        request: Request,
        source_ip: String,
        domain_name: String,
        request_id: &str,
    ) -> UrlAnswer {
        let received_at = Utc::now();
        let (parts, body) = request.into_parts();
        let cors = config.cors.as_ref().map(UrlCors::as_cors);
        if let Some(cors) = &cors {
            if crate::cors::is_preflight(&parts.method, &parts.headers) {
                let (status, headers) = crate::cors::preflight(cors, &parts.headers);
                return UrlAnswer::Whole(ProxyResponse {
                    status: if headers.is_empty() {
                        status
                    } else {
                        StatusCode::OK
                    },
                    headers,
                    body: Bytes::new(),
                });
            }
        }
        let Ok(body) = axum::body::to_bytes(body, MAX_PAYLOAD).await else {
            return UrlAnswer::Whole(url_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
            ));
        };
        let auth_type = config.auth_type;
        let (principal, iam) = match auth_type {
            FunctionUrlAuthType::None => (InvokePrincipal::Anonymous, None),
            FunctionUrlAuthType::AwsIam => {
                let request_parts = RequestParts {
                    method: &parts.method,
                    uri: &parts.uri,
                    headers: &parts.headers,
                };
                match strato_sigv4::verify(&request_parts, &body, Utc::now(), &*self.credentials) {
                    Ok(verified)
                        if verified.service == "lambda" && verified.region == config.region =>
                    {
                        let iam = json!({
                            "accessKey": verified.access_key_id,
                            "accountId": verified.account_id,
                            "callerId": verified.account_id,
                            "cognitoIdentity": null,
                            "principalOrgId": null,
                            "userArn": format!("arn:aws:iam::{}:root", verified.account_id),
                            "userId": verified.account_id,
                        });
                        let principal = InvokePrincipal::Caller {
                            account: verified.account_id,
                            access_key_id: verified.access_key_id,
                        };
                        (principal, Some(iam))
                    }
                    Ok(_) | Err(_) => {
                        return UrlAnswer::Whole(url_error(StatusCode::FORBIDDEN, "Forbidden"))
                    }
                }
            }
        };
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let event_body = EventBody::new(&body, !is_text_content_type(content_type));
        let authorizer = iam.map(|iam| json!({ "iam": iam }));
        let no_params = BTreeMap::new();
        let raw_query = parts.uri.query().unwrap_or("").to_string();
        let event = proxy::v2::event(&proxy::v2::V2EventInput {
            request: proxy::EventRequest {
                method: parts.method.as_str(),
                headers: &parts.headers,
                raw_query: &raw_query,
                path_parameters: &no_params,
                stage_variables: &no_params,
                body: &event_body,
                account_id: "anonymous",
                api_id: &config.url_id,
                stage: "$default",
                request_id,
                domain_name: &domain_name,
                source_ip: &source_ip,
                received_at,
                authorizer: authorizer.as_ref(),
            },
            route_key: "$default",
            raw_path: path,
        });
        let mut event = event;
        if let Value::Object(map) = &mut event {
            // Function URL events name the caller's account only with IAM.
            if let Some(Value::Object(context)) = map.get_mut("requestContext") {
                let account = authorizer
                    .as_ref()
                    .and_then(|a| a["iam"]["accountId"].as_str())
                    .unwrap_or("anonymous")
                    .to_string();
                context.insert("accountId".into(), account.into());
            }
        }
        let invocation = GatewayInvocation {
            function_arn: config.function_arn(),
            principal,
            action: InvokeAction::InvokeFunctionUrl { auth_type },
            source_arn: None,
            source_account: None,
            payload: Bytes::from(event.to_string()),
        };
        if config.invoke_mode == INVOKE_MODE_RESPONSE_STREAM {
            return stream::serve(self.invoker.clone(), invocation, cors, &parts.headers).await;
        }
        let Ok(outcome) =
            tokio::time::timeout(Duration::from_secs(900), self.invoker.invoke(invocation)).await
        else {
            return UrlAnswer::Whole(url_error(
                StatusCode::GATEWAY_TIMEOUT,
                "Endpoint request timed out",
            ));
        };
        UrlAnswer::Whole(answer_whole(
            &config.url_id,
            outcome,
            cors.as_ref(),
            &parts.headers,
        ))
    }
}

/// What a function URL answers: whole, or (`RESPONSE_STREAM`) a body sent
/// as the function writes it.
enum UrlAnswer {
    Whole(ProxyResponse),
    Streamed(Response),
}

/// A function URL's `InvokeMode` that streams.
const INVOKE_MODE_RESPONSE_STREAM: &str = "RESPONSE_STREAM";

/// The answer to an invocation that ended before (or without) streaming.
fn answer_whole(
    url_id: &str,
    outcome: Result<crate::invoker::InvocationOutcome, InvokeFailure>,
    cors: Option<&Cors>,
    request_headers: &HeaderMap,
) -> ProxyResponse {
    let outcome = match outcome {
        Err(InvokeFailure::AccessDenied(_)) => {
            return url_error(StatusCode::FORBIDDEN, "Forbidden")
        }
        Err(InvokeFailure::Throttled(_)) => {
            return url_error(StatusCode::TOO_MANY_REQUESTS, "Rate Exceeded.")
        }
        Err(InvokeFailure::FunctionNotFound(_)) => {
            return url_error(StatusCode::FORBIDDEN, "Forbidden")
        }
        Err(e) => {
            tracing::warn!(url = %url_id, error = %e, "function URL invocation failed");
            return url_error(StatusCode::BAD_GATEWAY, "Internal Server Error");
        }
        Ok(outcome) => outcome,
    };
    if outcome.function_error.is_some() {
        return url_error(StatusCode::BAD_GATEWAY, "Internal Server Error");
    }
    let mut answer = match proxy::v2::response(&outcome.payload) {
        Ok(answer) => answer,
        Err(_) => return url_error(StatusCode::BAD_GATEWAY, "Internal Server Error"),
    };
    if let Some(cors) = cors {
        crate::cors::decorate_answer(cors, request_headers, &mut answer.headers);
    }
    answer
}

/// An error function URLs answer themselves: `{"Message": ...}`.
fn url_error(status: StatusCode, text: &str) -> ProxyResponse {
    let mut headers = vec![(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    let error_type = match status {
        StatusCode::FORBIDDEN => Some("AccessDeniedException"),
        StatusCode::TOO_MANY_REQUESTS => Some("TooManyRequestsException"),
        _ => None,
    };
    if let Some(t) = error_type {
        headers.push((
            http::header::HeaderName::from_static("x-amzn-errortype"),
            HeaderValue::from_static(t),
        ));
    }
    ProxyResponse {
        status,
        headers,
        body: Bytes::from(json!({ "Message": text }).to_string()),
    }
}
