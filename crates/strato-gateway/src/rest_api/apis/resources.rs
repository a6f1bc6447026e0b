//! Resources: the API's path tree (GetResources with `embed=methods`,
//! create under a parent, delete with everything below).

use std::collections::BTreeMap;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::{json_answer, load_api, mutate_api, resource_not_found};
use crate::extract::{ApiRequest, ChildRequest, RestJson};
use crate::rest_api::error::{RestError, RestResult};
use crate::rest_api::model::Resource;
use crate::rest_api::RestApiService;
use crate::rest_api::{listing, new_id, page, PageQuery};

#[derive(Deserialize)]
pub struct EmbedQuery {
    position: Option<String>,
    limit: Option<String>,
    embed: Option<String>,
}

/// A resource as GetResources shows it: methods are listed by name only
/// unless `embed=methods` asks for them whole.
fn resource_view(resource: &Resource, embed_methods: bool) -> RestResult<Value> {
    let mut value = serde_json::to_value(resource)?;
    if !embed_methods {
        if let Some(Value::Object(methods)) = value.get_mut("resourceMethods") {
            for method in methods.values_mut() {
                *method = Value::Object(Default::default());
            }
        }
    }
    Ok(value)
}

pub async fn get_resources(
    on: ApiRequest<RestApiService>,
    Query(query): Query<EmbedQuery>,
) -> RestResult<Response> {
    let record = load_api(&on.service, &on.caller, &on.api_id).await?;
    let embed_methods = query
        .embed
        .as_deref()
        .is_some_and(|e| e.split(',').any(|part| part.trim() == "methods"));
    let items: Vec<(String, Resource)> = record.resources.into_iter().collect();
    let page_query = PageQuery {
        position: query.position,
        limit: query.limit,
    };
    let (items, position) = page(&items, &page_query)?;
    let items = items
        .iter()
        .map(|r| resource_view(r, embed_methods))
        .collect::<RestResult<Vec<Value>>>()?;
    Ok(Json(listing(items, position)).into_response())
}

pub async fn get_resource(on: ChildRequest<RestApiService>) -> RestResult<Response> {
    let record = load_api(&on.service, &on.caller, &on.api_id).await?;
    let resource = record
        .resources
        .get(&on.id)
        .ok_or_else(resource_not_found)?;
    json_answer(StatusCode::OK, resource)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateResourceRequest {
    path_part: Option<String>,
}

/// `items`, `{id}` or `{proxy+}`.
fn valid_path_part(part: &str) -> bool {
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
    };
    match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
        Some(inner) => plain(inner.strip_suffix('+').unwrap_or(inner)),
        None => plain(part),
    }
}

fn is_variable(part: &str) -> bool {
    part.starts_with('{')
}

pub async fn create_resource(
    on: ChildRequest<RestApiService>,
    RestJson(request): RestJson<CreateResourceRequest>,
) -> RestResult<Response> {
    let path_part = request.path_part.unwrap_or_default();
    if !valid_path_part(&path_part) {
        return Err(RestError::bad_request(
            "Resource's path part only allow a-zA-Z0-9._- and curly braces at the beginning and the end and an optional plus sign before the closing brace.",
        ));
    }
    // The path names the parent: the new resource's id is made here.
    let resource = mutate_api(&on.service, &on.caller, &on.api_id, move |record| {
        let parent = record
            .resources
            .get(&on.id)
            .ok_or_else(resource_not_found)?
            .clone();
        if parent
            .path_part
            .as_deref()
            .is_some_and(|p| p.ends_with("+}"))
        {
            return Err(RestError::bad_request(
                "Cannot create a child of a resource with a greedy path variable",
            ));
        }
        for sibling in record
            .resources
            .values()
            .filter(|r| r.parent_id.as_deref() == Some(on.id.as_str()))
        {
            let sibling_part = sibling.path_part.as_deref().unwrap_or_default();
            if sibling_part == path_part {
                return Err(RestError::conflict(format!(
                    "Another resource with the same parent already has this name: {path_part}"
                )));
            }
            if is_variable(sibling_part) && is_variable(&path_part) {
                return Err(RestError::bad_request(format!(
                    "A sibling ({sibling_part}) of this resource already has a variable path part -- only one is allowed"
                )));
            }
        }
        let path = if parent.path == "/" {
            format!("/{path_part}")
        } else {
            format!("{}/{path_part}", parent.path)
        };
        let resource = Resource {
            id: new_id(10),
            parent_id: Some(on.id.clone()),
            path_part: Some(path_part.clone()),
            path,
            resource_methods: BTreeMap::new(),
        };
        record.resources.insert(resource.id.clone(), resource.clone());
        Ok(resource)
    })
    .await?;
    json_answer(StatusCode::CREATED, &resource)
}

pub async fn delete_resource(on: ChildRequest<RestApiService>) -> RestResult<Response> {
    mutate_api(&on.service, &on.caller, &on.api_id, move |record| {
        if !record.resources.contains_key(&on.id) {
            return Err(resource_not_found());
        }
        if record.api.root_resource_id == on.id {
            return Err(RestError::bad_request("Cannot delete root resource"));
        }
        // The resource and everything under it.
        let mut doomed = vec![on.id.clone()];
        let mut i = 0;
        while i < doomed.len() {
            let parent = doomed[i].clone();
            doomed.extend(
                record
                    .resources
                    .values()
                    .filter(|r| r.parent_id.as_deref() == Some(parent.as_str()))
                    .map(|r| r.id.clone()),
            );
            i += 1;
        }
        for id in doomed {
            record.resources.remove(&id);
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
