//! TagResource, UntagResource and GetTags on REST API resources, named by
//! ARN: `arn:aws:apigateway:{region}::/restapis/{id}`,
//! `.../restapis/{id}/stages/{name}`, `.../apikeys/{id}`, `.../usageplans/{id}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use strato_model::Caller;
use strato_store::{DocumentKey, StoreExt};

use super::error::{RestError, RestResult};
use super::model::{KIND_API_KEY, KIND_REST_API, KIND_STAGE, KIND_USAGE_PLAN};
use super::RestApiService;
use crate::extract::{Authenticated, RestJson};
use crate::proxy::query_pairs;

type Svc = State<Arc<RestApiService>>;

/// Where a taggable resource's tags live: its document and the JSON
/// pointer of the `tags` map inside it.
struct Taggable {
    key: DocumentKey,
    pointer: &'static str,
    /// What a missing document is reported as.
    missing: RestError,
    /// The REST API whose live view shows the tags, if any.
    api_id: Option<String>,
}

fn taggable(caller: &Caller, arn: &str) -> RestResult<Taggable> {
    let prefix = format!("arn:aws:apigateway:{}::/", caller.region);
    let invalid = || RestError::bad_request(format!("Invalid resource ARN specified: {arn}"));
    let path = arn.strip_prefix(&prefix).ok_or_else(invalid)?;
    let parts: Vec<&str> = path.split('/').collect();
    let document =
        |kind: &str, id: String| DocumentKey::new(&caller.account_id, &caller.region, kind, id);
    match parts.as_slice() {
        ["restapis", api_id] => Ok(Taggable {
            key: document(KIND_REST_API, api_id.to_string()),
            pointer: "/api/tags",
            missing: RestError::not_found(format!(
                "Invalid API identifier specified {}:{api_id}",
                caller.account_id
            )),
            api_id: Some(api_id.to_string()),
        }),
        ["restapis", api_id, "stages", stage] => Ok(Taggable {
            key: document(KIND_STAGE, format!("{api_id}/{stage}")),
            pointer: "/tags",
            missing: RestError::not_found("Invalid Stage identifier specified"),
            api_id: Some(api_id.to_string()),
        }),
        ["apikeys", key_id] => Ok(Taggable {
            key: document(KIND_API_KEY, key_id.to_string()),
            pointer: "/tags",
            missing: RestError::not_found("Invalid API Key identifier specified"),
            api_id: None,
        }),
        ["usageplans", plan_id] => Ok(Taggable {
            key: document(KIND_USAGE_PLAN, plan_id.to_string()),
            pointer: "/plan/tags",
            missing: RestError::not_found(format!("Invalid Usage Plan ID specified: {plan_id}")),
            api_id: None,
        }),
        _ => Err(invalid()),
    }
}

fn tags_at(doc: &Value, pointer: &str) -> BTreeMap<String, String> {
    doc.pointer(pointer)
        .and_then(|tags| serde_json::from_value(tags.clone()).ok())
        .unwrap_or_default()
}

/// Rewrites the tags of a taggable document atomically.
async fn change_tags(
    service: &RestApiService,
    target: Taggable,
    change: impl FnOnce(&mut BTreeMap<String, String>) + Send + 'static,
) -> RestResult<()> {
    let pointer = target.pointer;
    let missing = target.missing;
    service
        .store
        .update_typed(&target.key, move |current: Option<Value>| {
            let mut doc = current.ok_or(missing)?;
            let mut tags = tags_at(&doc, pointer);
            change(&mut tags);
            let (parent, field) = pointer.rsplit_once('/').unwrap_or(("", pointer));
            let tags_value = serde_json::to_value(&tags)?;
            match (parent.is_empty(), doc.pointer_mut(parent)) {
                (true, _) => {
                    if let Value::Object(map) = &mut doc {
                        map.insert(field.to_string(), tags_value);
                    }
                }
                (false, Some(Value::Object(map))) => {
                    map.insert(field.to_string(), tags_value);
                }
                _ => {}
            }
            Ok::<_, RestError>((Some(doc), ()))
        })
        .await?;
    Ok(())
}

fn check_tags(tags: &BTreeMap<String, String>) -> RestResult<()> {
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 || key.starts_with("aws:") {
            return Err(RestError::bad_request(format!("Invalid tag key: {key}")));
        }
        if value.chars().count() > 256 {
            return Err(RestError::bad_request(format!(
                "Invalid tag value for key {key}: at most 256 characters"
            )));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct TagRequest {
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

pub async fn tag_resource(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path(arn): Path<String>,
    RestJson(request): RestJson<TagRequest>,
) -> RestResult<Response> {
    check_tags(&request.tags)?;
    let target = taggable(&caller, &arn)?;
    let api_id = target.api_id.clone();
    change_tags(&service, target, move |tags| tags.extend(request.tags)).await?;
    if let Some(api_id) = api_id {
        service
            .refresh_api(&caller.account_id, &caller.region, &api_id)
            .await;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn untag_resource(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path(arn): Path<String>,
    RawQuery(query): RawQuery,
) -> RestResult<Response> {
    let doomed: Vec<String> = query_pairs(query.as_deref().unwrap_or(""))
        .into_iter()
        .filter(|(name, _)| name == "tagKeys")
        .map(|(_, value)| value)
        .collect();
    let target = taggable(&caller, &arn)?;
    change_tags(&service, target, move |tags| {
        for key in &doomed {
            tags.remove(key);
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn get_tags(
    State(service): Svc,
    Authenticated(caller): Authenticated,
    Path(arn): Path<String>,
) -> RestResult<Response> {
    let target = taggable(&caller, &arn)?;
    let doc = service
        .store
        .get_document(&target.key)
        .await?
        .ok_or(target.missing)?;
    Ok(Json(serde_json::json!({ "tags": tags_at(&doc, target.pointer) })).into_response())
}
