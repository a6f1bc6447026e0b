//! Function URL configurations: CreateFunctionUrlConfig,
//! GetFunctionUrlConfig, UpdateFunctionUrlConfig, DeleteFunctionUrlConfig,
//! ListFunctionUrlConfigs (`/2021-10-31/functions/{name}/url[s]`). The
//! configurations and the data plane are strato-gateway's
//! [`FunctionUrlService`](strato_gateway::function_url::FunctionUrlService).

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use strato_gateway::function_url::{new_url_id, url_timestamp_now, FunctionUrlConfig, UrlCors};
use strato_model::{AwsError, FunctionRef, Qualifier};

use super::versions::PageQuery;
use super::{function_ref, load, not_found, ResourceRequest};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::wire::{json as json_response, AwsJson};
use crate::ApiState;
use strato_gateway::invoker::FunctionUrlAuthType;

#[derive(Deserialize)]
pub struct UrlQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct UrlConfigRequest {
    auth_type: Option<String>,
    cors: Option<UrlCors>,
    invoke_mode: Option<String>,
}

/// Where the `FunctionUrl`s of an answer to a request with `headers` point.
fn url_base(state: &ApiState, headers: &HeaderMap) -> strato_gateway::public_url::UrlBase {
    state.function_urls.public_urls.for_request(headers)
}

fn check_auth_type(value: &str) -> ApiResult<FunctionUrlAuthType> {
    FunctionUrlAuthType::parse(value).ok_or_else(|| {
        AwsError::validation(format!(
            "1 validation error detected: Value '{value}' at 'authType' failed to satisfy constraint: Member must satisfy enum value set: [AWS_IAM, NONE]"
        ))
        .into()
    })
}

fn check_invoke_mode(value: &str) -> ApiResult<()> {
    match value {
        "BUFFERED" | "RESPONSE_STREAM" => Ok(()),
        other => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{other}' at 'invokeMode' failed to satisfy constraint: Member must satisfy enum value set: [RESPONSE_STREAM, BUFFERED]"
        ))
        .into()),
    }
}

fn check_cors(cors: &UrlCors) -> ApiResult<()> {
    if let Some(age) = cors.max_age {
        if !(0..=86400).contains(&age) {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{age}' at 'cors.maxAge' failed to satisfy constraint: Member must have value less than or equal to 86400"
            ))
            .into());
        }
    }
    Ok(())
}

/// The reference's qualifier as a URL's: an alias, never a version number
/// nor `$LATEST` (AWS refuses both with this pattern; the unqualified
/// function is the URL for `$LATEST`).
fn url_qualifier(r: &FunctionRef) -> ApiResult<Option<String>> {
    let refused = |value: &str| -> ApiResult<Option<String>> {
        Err(AwsError::validation(format!(
            "1 validation error detected: Value '{value}' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)"
        ))
        .into())
    };
    match &r.qualifier {
        None => Ok(None),
        Some(Qualifier::Latest) => refused("$LATEST"),
        Some(Qualifier::Alias(a)) => Ok(Some(a.clone())),
        Some(Qualifier::Version(v)) => refused(&v.to_string()),
    }
}

fn url_not_found() -> AwsError {
    AwsError::not_found("The resource you requested does not exist.")
}

/// The referenced function (and alias) must exist.
async fn resolve(
    state: &ApiState,
    caller: &Caller,
    name: &str,
    qualifier: Option<&str>,
    operation: &str,
) -> ApiResult<(FunctionRef, Option<String>)> {
    let r = function_ref(caller, name, qualifier, operation)?;
    let q = url_qualifier(&r)?;
    let record = load(state, caller, &r).await?;
    if record.resolve(r.qualifier.as_ref()).is_none() {
        return Err(not_found(caller, &r).into());
    }
    Ok((r, q))
}

pub async fn create(
    on: ResourceRequest,
    Query(q): Query<UrlQuery>,
    headers: HeaderMap,
    AwsJson(req): AwsJson<UrlConfigRequest>,
) -> ApiResult<Response> {
    let Some(auth_type) = req.auth_type else {
        return Err(AwsError::validation(
            "1 validation error detected: Value null at 'authType' failed to satisfy constraint: Member must not be null",
        )
        .into());
    };
    let auth_type = check_auth_type(&auth_type)?;
    let invoke_mode = req.invoke_mode.unwrap_or_else(|| "BUFFERED".into());
    check_invoke_mode(&invoke_mode)?;
    if let Some(cors) = &req.cors {
        check_cors(cors)?;
    }
    let (r, qualifier) = resolve(
        &on.state,
        &on.caller,
        &on.name,
        q.qualifier.as_deref(),
        "CreateFunctionUrlConfig",
    )
    .await?;
    let now = url_timestamp_now();
    let config = FunctionUrlConfig {
        url_id: new_url_id(),
        account: on.caller.account_id.clone(),
        region: on.caller.region.clone(),
        function_name: r.name.clone(),
        qualifier,
        auth_type,
        cors: req.cors,
        invoke_mode,
        creation_time: now.clone(),
        last_modified_time: now,
    };
    if !on.state.function_urls.create(config.clone()).await? {
        return Err(AwsError::conflict(format!(
            "Failed to create function url config for [functionArn = {}]. Error message:  FunctionUrlConfig exists for this Lambda function",
            config.function_arn()
        ))
        .into());
    }
    let mut body = config.to_wire(&url_base(&on.state, &headers));
    if let Value::Object(map) = &mut body {
        map.remove("LastModifiedTime");
    }
    Ok(json_response(StatusCode::CREATED, body))
}

pub async fn get(
    on: ResourceRequest,
    Query(q): Query<UrlQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (r, qualifier) = resolve(
        &on.state,
        &on.caller,
        &on.name,
        q.qualifier.as_deref(),
        "GetFunctionUrlConfig",
    )
    .await?;
    let config = on
        .state
        .function_urls
        .get(
            &on.caller.account_id,
            &on.caller.region,
            &r.name,
            qualifier.as_deref(),
        )
        .await?
        .ok_or_else(url_not_found)?;
    Ok(json_response(
        StatusCode::OK,
        config.to_wire(&url_base(&on.state, &headers)),
    ))
}

pub async fn update(
    on: ResourceRequest,
    Query(q): Query<UrlQuery>,
    headers: HeaderMap,
    AwsJson(req): AwsJson<UrlConfigRequest>,
) -> ApiResult<Response> {
    let auth_type = req.auth_type.as_deref().map(check_auth_type).transpose()?;
    if let Some(m) = &req.invoke_mode {
        check_invoke_mode(m)?;
    }
    if let Some(cors) = &req.cors {
        check_cors(cors)?;
    }
    let (r, qualifier) = resolve(
        &on.state,
        &on.caller,
        &on.name,
        q.qualifier.as_deref(),
        "UpdateFunctionUrlConfig",
    )
    .await?;
    let mut config = on
        .state
        .function_urls
        .get(
            &on.caller.account_id,
            &on.caller.region,
            &r.name,
            qualifier.as_deref(),
        )
        .await?
        .ok_or_else(url_not_found)?;
    if let Some(a) = auth_type {
        config.auth_type = a;
    }
    if let Some(m) = req.invoke_mode {
        config.invoke_mode = m;
    }
    if let Some(c) = req.cors {
        config.cors = Some(c);
    }
    config.last_modified_time = url_timestamp_now();
    on.state.function_urls.put(config.clone()).await?;
    Ok(json_response(
        StatusCode::OK,
        config.to_wire(&url_base(&on.state, &headers)),
    ))
}

pub async fn delete(on: ResourceRequest, Query(q): Query<UrlQuery>) -> ApiResult<Response> {
    let (r, qualifier) = resolve(
        &on.state,
        &on.caller,
        &on.name,
        q.qualifier.as_deref(),
        "DeleteFunctionUrlConfig",
    )
    .await?;
    if !on
        .state
        .function_urls
        .delete(
            &on.caller.account_id,
            &on.caller.region,
            &r.name,
            qualifier.as_deref(),
        )
        .await?
    {
        return Err(url_not_found().into());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list(
    on: ResourceRequest,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let r = super::whole_function_ref(&on.caller, &on.name, "ListFunctionUrlConfigs")?;
    load(&on.state, &on.caller, &r).await?;
    let max_items = match q.max_items.as_deref() {
        None => 50,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=50).contains(&n) => n,
            _ => {
                return Err(AwsError::validation(format!(
                    "1 validation error detected: Value '{text}' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 50"
                ))
                .into())
            }
        },
    };
    let all = on
        .state
        .function_urls
        .list(&on.caller.account_id, &on.caller.region, &r.name)
        .await?;
    let start = match &q.marker {
        Some(marker) => all
            .iter()
            .position(|c| &c.url_id == marker)
            .map(|p| p + 1)
            .unwrap_or(all.len()),
        None => 0,
    };
    let rest = &all[start.min(all.len())..];
    let base = url_base(&on.state, &headers);
    let items: Vec<Value> = rest
        .iter()
        .take(max_items)
        .map(|c| c.to_wire(&base))
        .collect();
    let mut body = json!({ "FunctionUrlConfigs": items });
    if rest.len() > max_items {
        body["NextMarker"] = rest[max_items - 1].url_id.clone().into();
    }
    Ok(json_response(StatusCode::OK, body))
}
