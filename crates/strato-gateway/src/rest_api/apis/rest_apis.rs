//! REST APIs themselves: CreateRestApi (optionally cloning another's
//! resources), Get, GetRestApis, Update (patch operations) and Delete.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use strato_store::DocumentKey;

use super::{api_key, api_not_found, json_answer, load_api, mutate_api, Svc};
use crate::extract::{ApiRequest, Authenticated, RestJson};
use crate::rest_api::error::{RestError, RestResult};
use crate::rest_api::model::{
    EndpointConfiguration, Resource, RestApi, RestApiRecord, KIND_DEPLOYMENT, KIND_REST_API,
    KIND_STAGE,
};
use crate::rest_api::patch::{as_strs, PatchOp, PatchRequest};
use crate::rest_api::RestApiService;
use crate::rest_api::{listing, new_id, now_epoch, page, PageQuery};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRestApiRequest {
    name: Option<String>,
    description: Option<String>,
    version: Option<String>,
    clone_from: Option<String>,
    #[serde(default)]
    binary_media_types: Vec<String>,
    minimum_compression_size: Option<i64>,
    api_key_source: Option<String>,
    endpoint_configuration: Option<EndpointConfigurationInput>,
    policy: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    disable_execute_api_endpoint: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndpointConfigurationInput {
    #[serde(default)]
    types: Vec<String>,
}

fn check_api_key_source(source: &str) -> RestResult<()> {
    match source {
        "HEADER" | "AUTHORIZER" => Ok(()),
        other => Err(RestError::bad_request(format!(
            "Invalid API Key source specified: {other}. Valid values are HEADER and AUTHORIZER"
        ))),
    }
}

pub async fn create_rest_api(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    RestJson(request): RestJson<CreateRestApiRequest>,
) -> RestResult<Response> {
    let name = request
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| RestError::bad_request("Invalid REST API name specified"))?;
    let api_key_source = request.api_key_source.unwrap_or_else(|| "HEADER".into());
    check_api_key_source(&api_key_source)?;
    let types = match request.endpoint_configuration {
        Some(config) if !config.types.is_empty() => config.types,
        _ => vec!["EDGE".to_string()],
    };
    for endpoint_type in &types {
        if !matches!(endpoint_type.as_str(), "EDGE" | "REGIONAL" | "PRIVATE") {
            return Err(RestError::bad_request(format!(
                "Invalid endpoint configuration type: {endpoint_type}"
            )));
        }
    }
    let mut resources = BTreeMap::new();
    if let Some(source_id) = request.clone_from.as_deref() {
        let source = load_api(&service, &caller, source_id).await?;
        resources = source.resources;
    }
    let root_resource_id = resources
        .values()
        .find(|r| r.parent_id.is_none())
        .map(|r| r.id.clone())
        .unwrap_or_else(|| new_id(10));
    resources
        .entry(root_resource_id.clone())
        .or_insert_with(|| Resource {
            id: root_resource_id.clone(),
            parent_id: None,
            path_part: None,
            path: "/".into(),
            resource_methods: BTreeMap::new(),
        });
    let api = RestApi {
        id: new_id(10),
        name,
        description: request.description,
        created_date: now_epoch(),
        version: request.version,
        binary_media_types: request.binary_media_types,
        minimum_compression_size: request.minimum_compression_size,
        api_key_source,
        endpoint_configuration: EndpointConfiguration { types },
        policy: request.policy,
        tags: request.tags,
        disable_execute_api_endpoint: request.disable_execute_api_endpoint,
        root_resource_id,
    };
    let record = RestApiRecord { api, resources };
    service
        .store
        .insert_document(
            &api_key(&caller, &record.api.id),
            &serde_json::to_value(&record)?,
        )
        .await?;
    service
        .refresh_api(&caller.account_id, &caller.region, &record.api.id)
        .await;
    json_answer(StatusCode::CREATED, &record.api)
}

pub async fn get_rest_api(on: ApiRequest<RestApiService>) -> RestResult<Response> {
    let record = load_api(&on.service, &on.caller, &on.api_id).await?;
    json_answer(StatusCode::OK, &record.api)
}

pub async fn get_rest_apis(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Query(query): Query<PageQuery>,
) -> RestResult<Response> {
    let all: Vec<(String, RestApiRecord)> =
        crate::rest_api::list_owned(&service, &caller, KIND_REST_API, "").await?;
    let items: Vec<(String, RestApi)> = all.into_iter().map(|(id, r)| (id, r.api)).collect();
    let (items, position) = page(&items, &query)?;
    let items = items
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<Value>, _>>()?;
    Ok(Json(listing(items, position)).into_response())
}

pub async fn update_rest_api(
    on: ApiRequest<RestApiService>,
    RestJson(request): RestJson<PatchRequest>,
) -> RestResult<Response> {
    let api = mutate_api(&on.service, &on.caller, &on.api_id, move |record| {
        for op in &request.patch_operations {
            let segments = op.segments();
            let api = &mut record.api;
            match (op.kind()?, as_strs(&segments).as_slice()) {
                (PatchOp::Replace, ["name"]) => {
                    let name = op.value()?;
                    if name.trim().is_empty() {
                        return Err(RestError::bad_request("Invalid REST API name specified"));
                    }
                    api.name = name.to_string();
                }
                (PatchOp::Replace, ["description"]) => api.description = op.value.clone(),
                (PatchOp::Replace, ["version"]) => api.version = op.value.clone(),
                (PatchOp::Replace, ["policy"]) => api.policy = op.value.clone(),
                (PatchOp::Replace, ["apiKeySource"]) => {
                    let source = op.value()?;
                    check_api_key_source(source)?;
                    api.api_key_source = source.to_string();
                }
                (PatchOp::Replace, ["disableExecuteApiEndpoint"]) => {
                    api.disable_execute_api_endpoint = op.bool_value()?;
                }
                (PatchOp::Replace, ["minimumCompressionSize"]) => {
                    api.minimum_compression_size = match op.value.as_deref() {
                        None | Some("") => None,
                        Some(_) => Some(op.int_value()?),
                    };
                }
                (PatchOp::Add, ["binaryMediaTypes", media_type]) => {
                    if !api.binary_media_types.iter().any(|t| t == media_type) {
                        api.binary_media_types.push(media_type.to_string());
                    }
                }
                (PatchOp::Remove, ["binaryMediaTypes", media_type]) => {
                    api.binary_media_types.retain(|t| t != media_type);
                }
                (PatchOp::Replace, ["binaryMediaTypes", media_type]) => {
                    let new_type = op.value()?.to_string();
                    api.binary_media_types.retain(|t| t != media_type);
                    api.binary_media_types.push(new_type);
                }
                _ => return Err(op.unsupported()),
            }
        }
        Ok(record.api.clone())
    })
    .await?;
    on.service
        .refresh_api(&on.caller.account_id, &on.caller.region, &on.api_id)
        .await;
    json_answer(StatusCode::OK, &api)
}

pub async fn delete_rest_api(on: ApiRequest<RestApiService>) -> RestResult<Response> {
    if !on
        .service
        .store
        .delete_document(&api_key(&on.caller, &on.api_id))
        .await?
    {
        return Err(api_not_found(&on.caller, &on.api_id));
    }
    let prefix = format!("{}/", on.api_id);
    for kind in [KIND_STAGE, KIND_DEPLOYMENT] {
        let documents: Vec<(String, Value)> =
            crate::rest_api::list_owned(&on.service, &on.caller, kind, &prefix).await?;
        for (id, _) in documents {
            on.service
                .store
                .delete_document(&DocumentKey::new(
                    &on.caller.account_id,
                    &on.caller.region,
                    kind,
                    id,
                ))
                .await?;
        }
    }
    on.service
        .refresh_api(&on.caller.account_id, &on.caller.region, &on.api_id)
        .await;
    Ok(StatusCode::ACCEPTED.into_response())
}
