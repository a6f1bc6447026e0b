//! Integrations: AWS_PROXY (Lambda) and HTTP_PROXY.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{answer, load, mutate, not_found, page, to_value, PageQuery, Service};
use crate::extract::{Authenticated, RestJson};
use crate::http_api::model::{new_id, Integration, IntegrationType};
use crate::invoker::function_arn_of_integration_uri;
use crate::rest_api::error::{RestError, RestResult};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationInput {
    integration_type: Option<String>,
    integration_uri: Option<String>,
    integration_method: Option<String>,
    payload_format_version: Option<String>,
    timeout_in_millis: Option<i64>,
    connection_type: Option<String>,
    description: Option<String>,
    credentials_arn: Option<String>,
    request_parameters: Option<BTreeMap<String, String>>,
    response_parameters: Option<BTreeMap<String, BTreeMap<String, String>>>,
    integration_subtype: Option<String>,
}

fn check_integration(i: &Integration) -> RestResult<()> {
    match i.integration_type {
        IntegrationType::AwsProxy => {
            let uri = i.integration_uri.as_deref().unwrap_or("");
            let resolved_later = uri.contains("${stageVariables.");
            if function_arn_of_integration_uri(uri).is_none() && !resolved_later {
                return Err(RestError::bad_request(format!(
                    "Invalid integration URI specified: {uri}. The URI must be a Lambda function ARN."
                )));
            }
            match i.payload_format_version.as_deref() {
                Some("1.0") | Some("2.0") => {}
                _ => {
                    return Err(RestError::bad_request(
                        "PayloadFormatVersion must be 1.0 or 2.0 for AWS_PROXY integrations",
                    ))
                }
            }
        }
        IntegrationType::HttpProxy => {
            let uri = i.integration_uri.as_deref().unwrap_or("");
            if !(uri.starts_with("http://")
                || uri.starts_with("https://")
                || uri.starts_with("${stageVariables."))
            {
                return Err(RestError::bad_request(format!(
                    "Invalid integration URI specified: {uri}. The URI must be an HTTP URL."
                )));
            }
            if i.payload_format_version.as_deref() != Some("1.0") {
                return Err(RestError::bad_request(
                    "PayloadFormatVersion must be 1.0 for HTTP_PROXY integrations",
                ));
            }
        }
    }
    if !(50..=30_000).contains(&i.timeout_in_millis) {
        return Err(RestError::bad_request(
            "TimeoutInMillis must be between 50 and 30000",
        ));
    }
    for key in i.request_parameters.keys() {
        if crate::http_api::dataplane::parse_parameter_target(key).is_none() {
            return Err(RestError::bad_request(format!(
                "Invalid mapping expression specified: {key}"
            )));
        }
    }
    Ok(())
}

pub async fn create_integration(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path(api_id): Path<String>,
    RestJson(input): RestJson<IntegrationInput>,
) -> RestResult<Response> {
    if input.integration_subtype.is_some() {
        return Err(RestError::bad_request(
            "AWS service integrations (IntegrationSubtype) are not supported by Strato",
        ));
    }
    let integration_type = input
        .integration_type
        .ok_or_else(|| RestError::bad_request("IntegrationType is required"))
        .and_then(|value| IntegrationType::from_wire(&value))?;
    let payload_format_version = input
        .payload_format_version
        .or_else(|| (integration_type == IntegrationType::HttpProxy).then(|| "1.0".to_string()));
    let integration = Integration {
        integration_id: new_id(7),
        integration_method: input.integration_method.or_else(|| {
            (integration_type == IntegrationType::AwsProxy).then(|| "POST".to_string())
        }),
        integration_type,
        integration_uri: input.integration_uri,
        payload_format_version,
        timeout_in_millis: input.timeout_in_millis.unwrap_or(30_000),
        connection_type: input.connection_type.unwrap_or_else(|| "INTERNET".into()),
        description: input.description,
        credentials_arn: input.credentials_arn,
        request_parameters: input.request_parameters.unwrap_or_default(),
        response_parameters: input.response_parameters.unwrap_or_default(),
        api_gateway_managed: false,
    };
    check_integration(&integration)?;
    let (_, integration) = mutate(&svc, &caller, &api_id, move |api| {
        api.integrations
            .insert(integration.integration_id.clone(), integration.clone());
        Ok(integration)
    })
    .await?;
    Ok(answer(StatusCode::CREATED, to_value(&integration)))
}

pub async fn get_integrations(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path(api_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> RestResult<Response> {
    let api = load(&svc, &caller, &api_id).await?;
    let items = api
        .integrations
        .iter()
        .map(|(id, i)| (id.clone(), to_value(i)))
        .collect();
    Ok(answer(StatusCode::OK, page(items, &query)?))
}

pub async fn get_integration(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, integration_id)): Path<(String, String)>,
) -> RestResult<Response> {
    let api = load(&svc, &caller, &api_id).await?;
    let integration = api
        .integrations
        .get(&integration_id)
        .ok_or_else(|| not_found("Integration", &caller, &integration_id))?;
    Ok(answer(StatusCode::OK, to_value(integration)))
}

pub async fn update_integration(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, integration_id)): Path<(String, String)>,
    RestJson(input): RestJson<IntegrationInput>,
) -> RestResult<Response> {
    let missing = not_found("Integration", &caller, &integration_id);
    let (_, integration) = mutate(&svc, &caller, &api_id, move |api| {
        let mut i = api
            .integrations
            .get(&integration_id)
            .cloned()
            .ok_or(missing)?;
        if let Some(v) = input.integration_type {
            i.integration_type = IntegrationType::from_wire(&v)?;
        }
        if let Some(v) = input.integration_uri {
            i.integration_uri = Some(v);
        }
        if let Some(v) = input.integration_method {
            i.integration_method = Some(v);
        }
        if let Some(v) = input.payload_format_version {
            i.payload_format_version = Some(v);
        }
        if let Some(v) = input.timeout_in_millis {
            i.timeout_in_millis = v;
        }
        if let Some(v) = input.connection_type {
            i.connection_type = v;
        }
        if let Some(v) = input.description {
            i.description = Some(v);
        }
        if let Some(v) = input.credentials_arn {
            i.credentials_arn = Some(v);
        }
        if let Some(v) = input.request_parameters {
            i.request_parameters = v;
        }
        if let Some(v) = input.response_parameters {
            i.response_parameters = v;
        }
        check_integration(&i)?;
        api.integrations.insert(integration_id, i.clone());
        Ok(i)
    })
    .await?;
    Ok(answer(StatusCode::OK, to_value(&integration)))
}

pub async fn delete_integration(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, integration_id)): Path<(String, String)>,
) -> RestResult<Response> {
    let missing = not_found("Integration", &caller, &integration_id);
    mutate(&svc, &caller, &api_id, move |api| {
        let target = format!("integrations/{integration_id}");
        if api
            .routes
            .values()
            .any(|r| r.target.as_deref() == Some(target.as_str()))
        {
            return Err(RestError::conflict(format!(
                "Integration {integration_id} is in use by a route and cannot be deleted"
            )));
        }
        api.integrations
            .remove(&integration_id)
            .map(|_| ())
            .ok_or(missing)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
