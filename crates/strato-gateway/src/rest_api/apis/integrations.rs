//! Methods' integrations and their integration responses.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::methods::{check_http_method, MethodAt, ResponseAt, StatusResponse};
use super::{integration_not_found, json_answer};
use crate::extract::RestJson;
use crate::rest_api::error::{RestError, RestResult};
use crate::rest_api::model::{Integration, IntegrationResponse, IntegrationType, Method};
use crate::rest_api::patch::{as_strs, PatchOp, PatchRequest};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutIntegrationRequest {
    #[serde(rename = "type")]
    integration_type: Option<String>,
    http_method: Option<String>,
    uri: Option<String>,
    connection_type: Option<String>,
    connection_id: Option<String>,
    credentials: Option<String>,
    #[serde(default)]
    request_parameters: BTreeMap<String, String>,
    #[serde(default)]
    request_templates: BTreeMap<String, String>,
    passthrough_behavior: Option<String>,
    cache_namespace: Option<String>,
    #[serde(default)]
    cache_key_parameters: Vec<String>,
    content_handling: Option<String>,
    timeout_in_millis: Option<u64>,
}

/// AWS's bounds on `timeoutInMillis`.
const MIN_TIMEOUT_MS: u64 = 50;
const MAX_TIMEOUT_MS: u64 = 29_000;

/// The method's integration, which must exist.
fn integration_of(method: &mut Method) -> RestResult<&mut Integration> {
    method
        .method_integration
        .as_mut()
        .ok_or_else(integration_not_found)
}

fn check_integration(integration: &Integration) -> RestResult<()> {
    let kind = integration.integration_type;
    if kind != IntegrationType::Mock {
        match integration.http_method.as_deref() {
            None | Some("") => {
                return Err(RestError::bad_request(
                    "Enumeration value for HttpMethod must be non-empty",
                ))
            }
            Some(method) => {
                check_http_method(method)?;
            }
        }
        let uri = integration.uri.as_deref().unwrap_or_default();
        match kind {
            IntegrationType::Http | IntegrationType::HttpProxy => {
                if !(uri.starts_with("http://") || uri.starts_with("https://")) {
                    return Err(RestError::bad_request(
                        "Invalid HTTP endpoint specified for URI",
                    ));
                }
            }
            _ => {
                if !uri.starts_with("arn:aws:apigateway:") {
                    return Err(RestError::bad_request(
                        "AWS ARN for integration must contain path or action",
                    ));
                }
            }
        }
    }
    if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&integration.timeout_in_millis) {
        return Err(RestError::bad_request(format!(
            "Timeout should be between {MIN_TIMEOUT_MS} ms and {MAX_TIMEOUT_MS} ms"
        )));
    }
    Ok(())
}

pub async fn put_integration(
    at: MethodAt,
    RestJson(request): RestJson<PutIntegrationRequest>,
) -> RestResult<Response> {
    let integration_type = request
        .integration_type
        .ok_or_else(|| RestError::bad_request("Invalid integration type specified"))
        .and_then(|value| IntegrationType::from_wire(&value))?;
    let integration = Integration {
        integration_type,
        http_method: request.http_method.map(|m| m.to_ascii_uppercase()),
        uri: request.uri,
        connection_type: Some(request.connection_type.unwrap_or_else(|| "INTERNET".into())),
        connection_id: request.connection_id,
        credentials: request.credentials,
        request_parameters: request.request_parameters,
        request_templates: request.request_templates,
        passthrough_behavior: Some(
            request
                .passthrough_behavior
                .unwrap_or_else(|| "WHEN_NO_MATCH".into()),
        ),
        content_handling: request.content_handling,
        timeout_in_millis: request.timeout_in_millis.unwrap_or(MAX_TIMEOUT_MS),
        cache_namespace: Some(
            request
                .cache_namespace
                .unwrap_or_else(|| at.resource_id.clone()),
        ),
        cache_key_parameters: request.cache_key_parameters,
        integration_responses: BTreeMap::new(),
    };
    check_integration(&integration)?;
    let answer = integration.clone();
    at.mutate(move |method| {
        method.method_integration = Some(integration);
        Ok(())
    })
    .await?;
    json_answer(StatusCode::CREATED, &answer)
}

pub async fn get_integration(at: MethodAt) -> RestResult<Response> {
    at.read(|method| {
        let integration = method
            .method_integration
            .as_ref()
            .ok_or_else(integration_not_found)?;
        json_answer(StatusCode::OK, integration)
    })
    .await
}

pub async fn update_integration(
    at: MethodAt,
    RestJson(request): RestJson<PatchRequest>,
) -> RestResult<Response> {
    let integration = at
        .mutate(move |method| {
            let integration = integration_of(method)?;
            for op in &request.patch_operations {
                let segments = op.segments();
                match (op.kind()?, as_strs(&segments).as_slice()) {
                    (PatchOp::Replace, ["uri"]) => integration.uri = Some(op.value()?.to_string()),
                    (PatchOp::Replace, ["httpMethod"]) => {
                        integration.http_method = Some(check_http_method(op.value()?)?)
                    }
                    (PatchOp::Replace, ["timeoutInMillis"]) => {
                        integration.timeout_in_millis =
                            u64::try_from(op.int_value()?).map_err(|_| op.unsupported())?;
                    }
                    (PatchOp::Replace, ["passthroughBehavior"]) => {
                        integration.passthrough_behavior = op.value.clone()
                    }
                    (PatchOp::Replace, ["contentHandling"]) => {
                        integration.content_handling = op.value.clone()
                    }
                    (PatchOp::Add | PatchOp::Replace, ["requestParameters", name]) => {
                        integration
                            .request_parameters
                            .insert(name.to_string(), op.value()?.to_string());
                    }
                    (PatchOp::Remove, ["requestParameters", name]) => {
                        integration.request_parameters.remove(*name);
                    }
                    (PatchOp::Add | PatchOp::Replace, ["requestTemplates", content_type]) => {
                        integration
                            .request_templates
                            .insert(content_type.to_string(), op.value()?.to_string());
                    }
                    (PatchOp::Remove, ["requestTemplates", content_type]) => {
                        integration.request_templates.remove(*content_type);
                    }
                    _ => return Err(op.unsupported()),
                }
            }
            check_integration(integration)?;
            Ok(integration.clone())
        })
        .await?;
    json_answer(StatusCode::OK, &integration)
}

pub async fn delete_integration(at: MethodAt) -> RestResult<Response> {
    at.mutate(move |method| {
        method
            .method_integration
            .take()
            .ok_or_else(integration_not_found)?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Integration responses ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutIntegrationResponseRequest {
    selection_pattern: Option<String>,
    #[serde(default)]
    response_parameters: BTreeMap<String, String>,
    #[serde(default)]
    response_templates: BTreeMap<String, String>,
    content_handling: Option<String>,
}

pub async fn put_integration_response(
    at: ResponseAt,
    RestJson(request): RestJson<PutIntegrationResponseRequest>,
) -> RestResult<Response> {
    let response = IntegrationResponse {
        status_code: at.status_code.clone(),
        selection_pattern: request.selection_pattern,
        response_parameters: request.response_parameters,
        response_templates: request.response_templates,
        content_handling: request.content_handling,
    };
    at.put(response).await
}

pub async fn get_integration_response(at: ResponseAt) -> RestResult<Response> {
    at.get::<IntegrationResponse>().await
}

pub async fn delete_integration_response(at: ResponseAt) -> RestResult<Response> {
    at.delete::<IntegrationResponse>().await
}

/// An integration's responses; the method must have an integration.
impl StatusResponse for IntegrationResponse {
    fn responses(method: &Method) -> RestResult<&BTreeMap<String, Self>> {
        method
            .method_integration
            .as_ref()
            .map(|integration| &integration.integration_responses)
            .ok_or_else(integration_not_found)
    }

    fn responses_mut(method: &mut Method) -> RestResult<&mut BTreeMap<String, Self>> {
        Ok(&mut integration_of(method)?.integration_responses)
    }
}
