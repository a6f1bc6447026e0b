//! TagResource, UntagResource, ListTags on function and event source
//! mapping ARNs.

use std::collections::BTreeMap;

use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use strato_model::error::ValidationErrors;
use strato_model::{validate, AwsError, ErrorCode, FunctionRef};

use super::event_source_mappings::mapping_uuid;
use super::{load, update_function, ResourceRequest};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::wire::{json as json_response, AwsJson};
use crate::ApiState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct TagRequest {
    tags: Option<BTreeMap<String, String>>,
}

/// The function a taggable ARN names. Tags belong to the function as a
/// whole, so qualified ARNs are refused as AWS refuses them.
fn tagged_function(caller: &Caller, arn: &str, operation: &str) -> ApiResult<FunctionRef> {
    let valid_arn = arn.starts_with("arn:aws") && arn.split(':').nth(5) == Some("function");
    if !valid_arn {
        let mut v = ValidationErrors::new();
        v.push(
            arn,
            "resource",
            r"Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|capacity-provider:[a-zA-Z0-9-_]+)",
        );
        v.into_result(ErrorCode::ValidationException)?;
    }
    let r = FunctionRef::parse(arn, 256)?;
    r.check_scope(&caller.account_id, &caller.region, operation)?;
    if r.qualifier.is_some() {
        return Err(AwsError::invalid_parameter(
            "Tags on function aliases and versions are not supported. Please specify a function ARN.",
        )
        .into());
    }
    Ok(r)
}

/// What a taggable ARN names.
enum Tagged<'a> {
    Function(FunctionRef),
    /// An event source mapping, by UUID.
    Mapping(&'a str),
}

fn tagged_resource<'a>(caller: &Caller, arn: &'a str, operation: &str) -> ApiResult<Tagged<'a>> {
    match mapping_uuid(arn) {
        Some(uuid) => Ok(Tagged::Mapping(uuid)),
        None => tagged_function(caller, arn, operation).map(Tagged::Function),
    }
}

/// Applies `change` to the tags of what a taggable ARN names: a mapping's
/// through the mappings' own writer, a function's inside the store's
/// transaction.
async fn change_tags(
    state: &ApiState,
    caller: &Caller,
    resource: Tagged<'_>,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), AwsError> + Send + 'static,
) -> ApiResult<()> {
    match resource {
        Tagged::Mapping(uuid) => {
            state
                .event_source_mappings
                .change_tags(caller, uuid, change)
                .await
        }
        Tagged::Function(r) => {
            update_function(
                state,
                caller,
                &r,
                Box::new(move |record| change(&mut record.tags)),
            )
            .await?;
            Ok(())
        }
    }
}

pub async fn list(on: ResourceRequest) -> ApiResult<Response> {
    let r = match tagged_resource(&on.caller, &on.name, "ListTags")? {
        Tagged::Function(r) => r,
        Tagged::Mapping(uuid) => {
            let tags = on.state.event_source_mappings.tags(&on.caller, uuid)?;
            return Ok(json_response(StatusCode::OK, json!({ "Tags": tags })));
        }
    };
    let record = load(&on.state, &on.caller, &r).await?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "Tags": record.tags }),
    ))
}

pub async fn tag(on: ResourceRequest, AwsJson(req): AwsJson<TagRequest>) -> ApiResult<Response> {
    let resource = tagged_resource(&on.caller, &on.name, "TagResource")?;
    let Some(tags) = req.tags else {
        return Err(AwsError::validation(
            "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null",
        )
        .into());
    };
    for (key, value) in &tags {
        if key.is_empty()
            || key.chars().count() > 128
            || key.starts_with("aws:")
            || value.chars().count() > 256
        {
            return Err(AwsError::invalid_parameter(format!("Tag '{key}' is not valid.")).into());
        }
    }
    change_tags(&on.state, &on.caller, resource, move |current| {
        let mut merged = current.clone();
        merged.extend(tags);
        validate::tag_count(merged.len())?;
        *current = merged;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `tagKeys` repeats in the query string (`?tagKeys=a&tagKeys=b`).
fn tag_keys(query: Option<&str>) -> Vec<String> {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == "tagKeys")
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

pub async fn untag(on: ResourceRequest, RawQuery(query): RawQuery) -> ApiResult<Response> {
    let resource = tagged_resource(&on.caller, &on.name, "UntagResource")?;
    let keys = tag_keys(query.as_deref());
    if keys.is_empty() {
        return Err(AwsError::validation(
            "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null",
        )
        .into());
    }
    change_tags(&on.state, &on.caller, resource, move |current| {
        for key in &keys {
            current.remove(key);
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_tag_keys_are_all_read() {
        assert_eq!(
            tag_keys(Some("tagKeys=a&tagKeys=b%20c&other=x")),
            vec!["a", "b c"]
        );
        assert!(tag_keys(None).is_empty());
    }
}
