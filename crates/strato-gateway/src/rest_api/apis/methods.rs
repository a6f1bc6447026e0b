//! Methods on resources and their method responses.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use strato_model::Caller;

use super::{
    json_answer, load_api, method_not_found, mutate_api, resource_not_found, response_not_found,
    Svc,
};
use crate::extract::{Authenticated, RestJson};
use crate::rest_api::error::{RestError, RestResult};
use crate::rest_api::model::{AuthorizationType, Method, MethodResponse, RestApiRecord};
use crate::rest_api::patch::{as_strs, PatchOp, PatchRequest};
use crate::rest_api::RestApiService;

const HTTP_METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "ANY",
];

pub(super) fn check_http_method(method: &str) -> RestResult<String> {
    let upper = method.to_ascii_uppercase();
    if HTTP_METHODS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(RestError::bad_request(format!(
            "Invalid HttpMethod specified. Valid options are {}",
            HTTP_METHODS.join(",")
        )))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutMethodRequest {
    authorization_type: Option<String>,
    authorizer_id: Option<String>,
    #[serde(default)]
    api_key_required: bool,
    operation_name: Option<String>,
    #[serde(default)]
    request_parameters: BTreeMap<String, bool>,
    #[serde(default)]
    request_models: BTreeMap<String, String>,
    request_validator_id: Option<String>,
    #[serde(default)]
    authorization_scopes: Vec<String>,
}

fn method_of<'a>(
    record: &'a mut RestApiRecord,
    resource_id: &str,
    http_method: &str,
) -> RestResult<&'a mut Method> {
    record
        .resources
        .get_mut(resource_id)
        .ok_or_else(resource_not_found)?
        .resource_methods
        .get_mut(http_method)
        .ok_or_else(method_not_found)
}

/// Applies `change` to one method of the stored API atomically and
/// returns what it returned.
pub(super) async fn mutate_method<R, F>(
    service: &RestApiService,
    caller: &Caller,
    api_id: &str,
    resource_id: String,
    http_method: String,
    change: F,
) -> RestResult<R>
where
    R: Send + 'static,
    F: FnOnce(&mut Method) -> RestResult<R> + Send + 'static,
{
    mutate_api(service, caller, api_id, move |record| {
        change(method_of(record, &resource_id, &http_method)?)
    })
    .await
}

pub(super) fn read_method<'a>(
    record: &'a RestApiRecord,
    resource_id: &str,
    http_method: &str,
) -> RestResult<&'a Method> {
    record
        .resources
        .get(resource_id)
        .ok_or_else(resource_not_found)?
        .resource_methods
        .get(http_method)
        .ok_or_else(method_not_found)
}

pub async fn put_method(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path((api_id, resource_id, http_method)): Path<(String, String, String)>,
    RestJson(request): RestJson<PutMethodRequest>,
) -> RestResult<Response> {
    let http_method = check_http_method(&http_method)?;
    let authorization_type = request
        .authorization_type
        .ok_or_else(|| RestError::bad_request("Invalid authorization type specified"))?;
    let authorization_type = AuthorizationType::from_wire(&authorization_type)?;
    let method = Method {
        http_method: http_method.clone(),
        authorization_type,
        authorizer_id: request.authorizer_id,
        api_key_required: request.api_key_required,
        request_validator_id: request.request_validator_id,
        operation_name: request.operation_name,
        request_parameters: request.request_parameters,
        request_models: request.request_models,
        method_responses: BTreeMap::new(),
        method_integration: None,
        authorization_scopes: request.authorization_scopes,
    };
    let answer = method.clone();
    mutate_api(&service, &caller, &api_id, move |record| {
        let resource = record
            .resources
            .get_mut(&resource_id)
            .ok_or_else(resource_not_found)?;
        if resource.resource_methods.contains_key(&http_method) {
            return Err(RestError::conflict(
                "Method already exists for this resource",
            ));
        }
        resource.resource_methods.insert(http_method, method);
        Ok(())
    })
    .await?;
    json_answer(StatusCode::CREATED, &answer)
}

pub async fn get_method(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path((api_id, resource_id, http_method)): Path<(String, String, String)>,
) -> RestResult<Response> {
    let record = load_api(&service, &caller, &api_id).await?;
    let method = read_method(&record, &resource_id, &http_method.to_ascii_uppercase())?;
    json_answer(StatusCode::OK, method)
}

pub async fn update_method(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path((api_id, resource_id, http_method)): Path<(String, String, String)>,
    RestJson(request): RestJson<PatchRequest>,
) -> RestResult<Response> {
    let http_method = http_method.to_ascii_uppercase();
    let method = mutate_method(
        &service,
        &caller,
        &api_id,
        resource_id,
        http_method,
        move |method| {
            for op in &request.patch_operations {
                let segments = op.segments();
                match (op.kind()?, as_strs(&segments).as_slice()) {
                    (PatchOp::Replace, ["apiKeyRequired"]) => {
                        method.api_key_required = op.bool_value()?
                    }
                    (PatchOp::Replace, ["authorizationType"]) => {
                        method.authorization_type = AuthorizationType::from_wire(op.value()?)?;
                    }
                    (PatchOp::Replace, ["authorizerId"]) => method.authorizer_id = op.value.clone(),
                    (PatchOp::Replace, ["operationName"]) => {
                        method.operation_name = op.value.clone()
                    }
                    (PatchOp::Replace, ["requestValidatorId"]) => {
                        method.request_validator_id = op.value.clone()
                    }
                    (PatchOp::Add | PatchOp::Replace, ["requestParameters", name]) => {
                        let required = match op.value.as_deref() {
                            None | Some("") => false,
                            Some(_) => op.bool_value()?,
                        };
                        method.request_parameters.insert(name.to_string(), required);
                    }
                    (PatchOp::Remove, ["requestParameters", name]) => {
                        method.request_parameters.remove(*name);
                    }
                    (PatchOp::Add | PatchOp::Replace, ["requestModels", content_type]) => {
                        method
                            .request_models
                            .insert(content_type.to_string(), op.value()?.to_string());
                    }
                    (PatchOp::Remove, ["requestModels", content_type]) => {
                        method.request_models.remove(*content_type);
                    }
                    _ => return Err(op.unsupported()),
                }
            }
            Ok(method.clone())
        },
    )
    .await?;
    json_answer(StatusCode::OK, &method)
}

pub async fn delete_method(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path((api_id, resource_id, http_method)): Path<(String, String, String)>,
) -> RestResult<Response> {
    let http_method = http_method.to_ascii_uppercase();
    mutate_api(&service, &caller, &api_id, move |record| {
        let resource = record
            .resources
            .get_mut(&resource_id)
            .ok_or_else(resource_not_found)?;
        resource
            .resource_methods
            .remove(&http_method)
            .ok_or_else(method_not_found)?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Method responses ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutMethodResponseRequest {
    #[serde(default)]
    response_parameters: BTreeMap<String, bool>,
    #[serde(default)]
    response_models: BTreeMap<String, String>,
}

pub(super) fn check_status_code(code: &str) -> RestResult<()> {
    let valid = code.len() == 3
        && code.bytes().all(|b| b.is_ascii_digit())
        && (b'1'..=b'5').contains(&code.as_bytes()[0]);
    if valid {
        Ok(())
    } else {
        Err(RestError::bad_request(format!(
            "Invalid status code specified: {code}"
        )))
    }
}

pub async fn put_method_response(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path((api_id, resource_id, http_method, status_code)): Path<(String, String, String, String)>,
    RestJson(request): RestJson<PutMethodResponseRequest>,
) -> RestResult<Response> {
    check_status_code(&status_code)?;
    let http_method = http_method.to_ascii_uppercase();
    let response = MethodResponse {
        status_code: status_code.clone(),
        response_parameters: request.response_parameters,
        response_models: request.response_models,
    };
    let answer = response.clone();
    mutate_method(
        &service,
        &caller,
        &api_id,
        resource_id,
        http_method,
        move |method| {
            method.method_responses.insert(status_code, response);
            Ok(())
        },
    )
    .await?;
    json_answer(StatusCode::CREATED, &answer)
}

pub async fn get_method_response(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path((api_id, resource_id, http_method, status_code)): Path<(String, String, String, String)>,
) -> RestResult<Response> {
    let record = load_api(&service, &caller, &api_id).await?;
    let method = read_method(&record, &resource_id, &http_method.to_ascii_uppercase())?;
    let response = method
        .method_responses
        .get(&status_code)
        .ok_or_else(response_not_found)?;
    json_answer(StatusCode::OK, response)
}

pub async fn delete_method_response(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path((api_id, resource_id, http_method, status_code)): Path<(String, String, String, String)>,
) -> RestResult<Response> {
    let http_method = http_method.to_ascii_uppercase();
    mutate_method(
        &service,
        &caller,
        &api_id,
        resource_id,
        http_method,
        move |method| {
            method
                .method_responses
                .remove(&status_code)
                .ok_or_else(response_not_found)?;
            Ok(())
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
