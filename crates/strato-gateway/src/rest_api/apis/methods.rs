//! Methods on resources and their method responses.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use strato_model::Caller;

use super::{
    json_answer, load_api, method_not_found, mutate_api, resource_not_found, response_not_found,
};
use crate::extract::{caller_and_path, RestJson};
use crate::rest_api::error::{RestError, RestResult};
use crate::rest_api::model::{AuthorizationType, Method, MethodResponse};
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

#[derive(Deserialize)]
struct MethodPath {
    restapi_id: String,
    resource_id: String,
    http_method: String,
}

/// The method a request's path names
/// (`/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/...`),
/// for the authenticated caller: what every method, method-response,
/// integration and integration-response handler reads or changes.
pub struct MethodAt {
    service: Arc<RestApiService>,
    caller: Caller,
    api_id: String,
    pub(super) resource_id: String,
    /// Upper-cased, as the resource keys its methods.
    pub(super) http_method: String,
}

impl FromRequestParts<Arc<RestApiService>> for MethodAt {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &Arc<RestApiService>,
    ) -> Result<Self, Self::Rejection> {
        let (caller, path) = caller_and_path::<MethodPath, _>(parts, service).await?;
        Ok(MethodAt {
            service: Arc::clone(service),
            caller,
            api_id: path.restapi_id,
            resource_id: path.resource_id,
            http_method: path.http_method.to_ascii_uppercase(),
        })
    }
}

impl MethodAt {
    /// What `read` makes of the stored method.
    pub(super) async fn read<R>(
        &self,
        read: impl FnOnce(&Method) -> RestResult<R>,
    ) -> RestResult<R> {
        let record = load_api(&self.service, &self.caller, &self.api_id).await?;
        let method = record
            .resources
            .get(&self.resource_id)
            .ok_or_else(resource_not_found)?
            .resource_methods
            .get(&self.http_method)
            .ok_or_else(method_not_found)?;
        read(method)
    }

    /// Applies `change` to the resource's methods (keyed by method) and the
    /// method's key, atomically, and returns what it returned.
    async fn mutate_methods<R, F>(self, change: F) -> RestResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut BTreeMap<String, Method>, String) -> RestResult<R> + Send + 'static,
    {
        let MethodAt {
            service,
            caller,
            api_id,
            resource_id,
            http_method,
        } = self;
        mutate_api(&service, &caller, &api_id, move |record| {
            let resource = record
                .resources
                .get_mut(&resource_id)
                .ok_or_else(resource_not_found)?;
            change(&mut resource.resource_methods, http_method)
        })
        .await
    }

    /// Applies `change` to the stored method atomically and returns what it
    /// returned.
    pub(super) async fn mutate<R, F>(self, change: F) -> RestResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Method) -> RestResult<R> + Send + 'static,
    {
        self.mutate_methods(move |methods, http_method| {
            change(methods.get_mut(&http_method).ok_or_else(method_not_found)?)
        })
        .await
    }
}

pub async fn put_method(
    at: MethodAt,
    RestJson(request): RestJson<PutMethodRequest>,
) -> RestResult<Response> {
    let http_method = check_http_method(&at.http_method)?;
    let authorization_type = request
        .authorization_type
        .ok_or_else(|| RestError::bad_request("Invalid authorization type specified"))?;
    let authorization_type = AuthorizationType::from_wire(&authorization_type)?;
    let method = Method {
        http_method,
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
    at.mutate_methods(move |methods, http_method| {
        if methods.contains_key(&http_method) {
            return Err(RestError::conflict(
                "Method already exists for this resource",
            ));
        }
        methods.insert(http_method, method);
        Ok(())
    })
    .await?;
    json_answer(StatusCode::CREATED, &answer)
}

pub async fn get_method(at: MethodAt) -> RestResult<Response> {
    at.read(|method| json_answer(StatusCode::OK, method)).await
}

pub async fn update_method(
    at: MethodAt,
    RestJson(request): RestJson<PatchRequest>,
) -> RestResult<Response> {
    let method = at
        .mutate(move |method| {
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
        })
        .await?;
    json_answer(StatusCode::OK, &method)
}

pub async fn delete_method(at: MethodAt) -> RestResult<Response> {
    at.mutate_methods(move |methods, http_method| {
        methods.remove(&http_method).ok_or_else(method_not_found)?;
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

fn check_status_code(code: &str) -> RestResult<()> {
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
    at: ResponseAt,
    RestJson(request): RestJson<PutMethodResponseRequest>,
) -> RestResult<Response> {
    let response = MethodResponse {
        status_code: at.status_code.clone(),
        response_parameters: request.response_parameters,
        response_models: request.response_models,
    };
    at.put(response).await
}

pub async fn get_method_response(at: ResponseAt) -> RestResult<Response> {
    at.get::<MethodResponse>().await
}

pub async fn delete_method_response(at: ResponseAt) -> RestResult<Response> {
    at.delete::<MethodResponse>().await
}

// ---- What method responses and integration responses share ----

/// A method's responses or its integration's: kept by status code.
pub trait StatusResponse: Clone + Serialize + Send + 'static {
    fn responses(method: &Method) -> RestResult<&BTreeMap<String, Self>>;
    fn responses_mut(method: &mut Method) -> RestResult<&mut BTreeMap<String, Self>>;
}

impl StatusResponse for MethodResponse {
    fn responses(method: &Method) -> RestResult<&BTreeMap<String, Self>> {
        Ok(&method.method_responses)
    }

    fn responses_mut(method: &mut Method) -> RestResult<&mut BTreeMap<String, Self>> {
        Ok(&mut method.method_responses)
    }
}

#[derive(Deserialize)]
struct StatusPath {
    status_code: String,
}

/// The method response or integration response a request's path names
/// (`.../methods/{http_method}[/integration]/responses/{status_code}`).
pub struct ResponseAt {
    method: MethodAt,
    pub(super) status_code: String,
}

impl FromRequestParts<Arc<RestApiService>> for ResponseAt {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &Arc<RestApiService>,
    ) -> Result<Self, Self::Rejection> {
        let method = MethodAt::from_request_parts(parts, service).await?;
        let Path(path) = Path::<StatusPath>::from_request_parts(parts, service)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(ResponseAt {
            method,
            status_code: path.status_code,
        })
    }
}

impl ResponseAt {
    /// Stores `response` under the path's status code (which must be a valid
    /// one) and answers it.
    pub(super) async fn put<T: StatusResponse>(self, response: T) -> RestResult<Response> {
        check_status_code(&self.status_code)?;
        let answer = response.clone();
        let status_code = self.status_code;
        self.method
            .mutate(move |method| {
                T::responses_mut(method)?.insert(status_code, response);
                Ok(())
            })
            .await?;
        json_answer(StatusCode::CREATED, &answer)
    }

    pub(super) async fn get<T: StatusResponse>(self) -> RestResult<Response> {
        self.method
            .read(|method| {
                let response = T::responses(method)?
                    .get(&self.status_code)
                    .ok_or_else(response_not_found)?;
                json_answer(StatusCode::OK, response)
            })
            .await
    }

    pub(super) async fn delete<T: StatusResponse>(self) -> RestResult<Response> {
        let status_code = self.status_code;
        self.method
            .mutate(move |method| {
                T::responses_mut(method)?
                    .remove(&status_code)
                    .ok_or_else(response_not_found)?;
                Ok(())
            })
            .await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}
