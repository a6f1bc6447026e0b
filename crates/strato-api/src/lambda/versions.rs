//! PublishVersion, ListVersionsByFunction and DeleteFunction of one version.
//!
//! Published versions live inside the function's record (so the catalog
//! resolves `name:qualifier` from memory on the hot path); each is an
//! immutable snapshot of `$LATEST`'s code and configuration.

use std::sync::Arc;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use strato_model::limits::{DEFAULT_LIST_PAGE, MAX_LIST_PAGE};
use strato_model::{validate, AwsError, FunctionRecord, FunctionRef, FunctionState, Qualifier};

use super::{load, not_found, unqualified_arn, unsupported, whole_function_ref, ResourceRequest};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::wire::{json as json_response, AwsJson};
use crate::ApiState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct PublishVersionRequest {
    code_sha256: Option<String>,
    description: Option<String>,
    revision_id: Option<String>,
    publish_to: Option<Value>,
}

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(rename = "Marker")]
    pub marker: Option<String>,
    #[serde(rename = "MaxItems")]
    pub max_items: Option<String>,
}

/// Publishes `$LATEST` as the next version, or returns the number of the
/// last published version when `$LATEST` has not been updated since it was
/// published. Numbers are never reused.
pub(crate) fn publish_latest(
    record: &mut FunctionRecord,
    description: Option<String>,
    now: DateTime<Utc>,
) -> u64 {
    if let Some((number, last)) = record.versions.last_key_value() {
        if record.published_latest_modified == Some(record.latest.last_modified)
            && last.same_snapshot(&record.latest)
        {
            return *number;
        }
    }
    let number = record.last_version + 1;
    record.last_version = number;
    record.published_latest_modified = Some(record.latest.last_modified);
    let version = record.latest.publish_as(number, description, now);
    record.versions.insert(number, version);
    number
}

/// The page size a `MaxItems` asks for: AWS returns at most 50 items a page
/// whatever is asked, and validates the member against [1, 10000].
pub(crate) fn page_size(raw: Option<&str>) -> ApiResult<usize> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIST_PAGE);
    };
    match raw.parse::<i64>().map(|n| (n, usize::try_from(n))) {
        Ok((_, Ok(size))) if (1..=MAX_LIST_PAGE).contains(&size) => Ok(size.min(DEFAULT_LIST_PAGE)),
        Ok((n, _)) if n < 1 => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{n}' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))
        .into()),
        Ok((n, _)) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{n}' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to {MAX_LIST_PAGE}"
        ))
        .into()),
        Err(_) => Err(AwsError::serialization(format!("Could not parse MaxItems '{raw}'")).into()),
    }
}

pub(crate) fn encode_marker(value: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value)
}

pub(crate) fn decode_marker(marker: &str) -> ApiResult<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(marker)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| AwsError::invalid_parameter("Invalid marker").into())
}

/// One page of `items` (already in order), resuming after the item whose key
/// is the marker's.
pub(crate) fn paginate(
    items: Vec<(String, Value)>,
    marker: Option<&str>,
    max_items: Option<&str>,
) -> ApiResult<(Vec<Value>, Option<String>)> {
    page_of(items, marker, page_size(max_items)?)
}

/// One page of at most `limit` of `items`, for operations whose `MaxItems`
/// has its own bounds.
pub(crate) fn page_of(
    items: Vec<(String, Value)>,
    marker: Option<&str>,
    limit: usize,
) -> ApiResult<(Vec<Value>, Option<String>)> {
    let start = match marker.map(decode_marker).transpose()? {
        None => 0,
        Some(after) => items
            .iter()
            .position(|(key, _)| *key == after)
            .map_or(items.len(), |i| i + 1),
    };
    let rest: Vec<(String, Value)> = items.into_iter().skip(start).collect();
    let more = rest.len() > limit;
    let page: Vec<(String, Value)> = rest.into_iter().take(limit).collect();
    let next = if more {
        page.last().map(|(key, _)| encode_marker(key))
    } else {
        None
    };
    Ok((page.into_iter().map(|(_, v)| v).collect(), next))
}

pub async fn publish(
    on: ResourceRequest,
    AwsJson(req): AwsJson<PublishVersionRequest>,
) -> ApiResult<Response> {
    let r = whole_function_ref(&on.caller, &on.name, "PublishVersion")?;
    if let Some(description) = &req.description {
        validate::description(description)?;
    }
    if req.publish_to.is_some() {
        return Err(unsupported("PublishTo").into());
    }
    load(&on.state, &on.caller, &r).await?;
    let arn = unqualified_arn(&on.caller, &r.name);
    let (code_sha, revision, description) = (req.code_sha256, req.revision_id, req.description);
    let published = Arc::new(parking_lot::Mutex::new(0u64));
    let out = published.clone();
    let record = super::update_function(&on.state, &on.caller, &r, Box::new(move |record| {
                let latest = &record.latest;
                if latest.state == FunctionState::Pending {
                    return Err(AwsError::conflict(
                        "The operation cannot be performed at this time. The function is currently in the following state: Pending",
                    ));
                }
                if latest.is_settling() {
                    return Err(AwsError::update_in_progress(&arn));
                }
                if revision.as_deref().is_some_and(|rev| rev != latest.revision_id) {
                    return Err(AwsError::stale_revision("GetFunction/GetAlias"));
                }
                if let Some(sha) = code_sha.as_deref() {
                    if sha != latest.code.sha256_base64 {
                        return Err(AwsError::invalid_parameter(format!(
                            "CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST ({}). Please try again with the CodeSHA256 in $LATEST.",
                            latest.code.sha256_base64
                        )));
                    }
                }
                *out.lock() = publish_latest(record, description, Utc::now());
                Ok(())
            }))
        .await?;
    let number = *published.lock();
    let version = record
        .versions
        .get(&number)
        .ok_or_else(|| AwsError::service("the published version vanished"))?;
    Ok(json_response(
        StatusCode::CREATED,
        version.to_wire(&record.region, &record.account, true),
    ))
}

pub async fn list(on: ResourceRequest, Query(q): Query<PageQuery>) -> ApiResult<Response> {
    let r = whole_function_ref(&on.caller, &on.name, "ListVersionsByFunction")?;
    page_size(q.max_items.as_deref())?;
    let record = load(&on.state, &on.caller, &r).await?;
    let mut latest = record
        .latest
        .to_wire(&record.region, &record.account, false);
    latest["FunctionArn"] = json!(format!("{}:$LATEST", record.arn()));
    let mut items = vec![("$LATEST".to_string(), latest)];
    items.extend(record.versions.iter().map(|(n, v)| {
        (
            n.to_string(),
            v.to_wire(&record.region, &record.account, false),
        )
    }));
    let (page, next) = paginate(items, q.marker.as_deref(), q.max_items.as_deref())?;
    let mut body = json!({ "Versions": page });
    if let Some(next) = next {
        body["NextMarker"] = json!(next);
    }
    Ok(json_response(StatusCode::OK, body))
}

/// Every version of a function as ListVersionsByFunction and ListFunctions
/// (`FunctionVersion=ALL`) show them: `$LATEST` by its qualified ARN first,
/// then the published versions by number.
fn version_items(record: &FunctionRecord) -> Vec<Value> {
    let mut latest = record
        .latest
        .to_wire(&record.region, &record.account, false);
    latest["FunctionArn"] = json!(format!("{}:$LATEST", record.arn()));
    let mut items = vec![latest];
    items.extend(
        record
            .versions
            .values()
            .map(|v| v.to_wire(&record.region, &record.account, false)),
    );
    items
}

/// ListFunctions with `FunctionVersion=ALL`: pages of at most `limit`
/// versions across functions. The marker names the function and the index
/// of the next version within it, so a page may end inside a function.
pub(crate) async fn list_all_versions(
    state: &ApiState,
    caller: &Caller,
    marker: Option<&str>,
    limit: usize,
) -> ApiResult<Response> {
    let (resume, skip) = match marker.map(decode_marker).transpose()? {
        None => (None, 0),
        Some(text) => match text.split_once('\n') {
            Some((name, index)) => (
                Some(name.to_string()),
                index
                    .parse::<usize>()
                    .map_err(|_| AwsError::invalid_parameter("Invalid marker"))?,
            ),
            None => (Some(text), usize::MAX),
        },
    };
    let store = state.catalog.store();
    let mut functions: Vec<FunctionRecord> = Vec::new();
    if let Some(name) = resume.as_deref().filter(|_| skip != usize::MAX) {
        if let Some(record) = store
            .get_function(&caller.account_id, &caller.region, name)
            .await?
        {
            functions.push(record);
        }
    }
    // Every function contributes at least one item, so `limit + 1` more
    // functions always fill the page and tell whether there is more.
    functions.extend(
        store
            .list_functions(
                &caller.account_id,
                &caller.region,
                resume.as_deref(),
                limit + 1,
            )
            .await?,
    );
    let mut page = Vec::new();
    let mut next = None;
    'outer: for (i, record) in functions.iter().enumerate() {
        let start = if i == 0 && resume.as_deref() == Some(record.name()) {
            skip
        } else {
            0
        };
        for (index, item) in version_items(record).into_iter().enumerate().skip(start) {
            if page.len() == limit {
                next = Some(encode_marker(&format!("{}\n{index}", record.name())));
                break 'outer;
            }
            page.push(item);
        }
    }
    let mut body = json!({ "Functions": page });
    if let Some(next) = next {
        body["NextMarker"] = json!(next);
    }
    Ok(json_response(StatusCode::OK, body))
}

/// DeleteFunction with a version qualifier: deletes that version only,
/// unless an alias points at it.
pub(crate) async fn delete_version(
    state: &Arc<ApiState>,
    caller: &Caller,
    r: &FunctionRef,
) -> ApiResult<Response> {
    let Some(Qualifier::Version(number)) = r.qualifier.clone() else {
        // DeleteFunction never deletes an alias (DeleteAlias does).
        return Err(
            AwsError::invalid_parameter("Deletion of aliases is not currently supported.").into(),
        );
    };
    load(state, caller, r).await?;
    let gone = not_found(caller, r);
    let record = super::update_function(
        state,
        caller,
        r,
        Box::new(move |record| {
            if !record.versions.contains_key(&number) {
                return Err(gone);
            }
            let version = number.to_string();
            let users: Vec<&str> = record
                .aliases
                .values()
                .filter(|a| a.references(&version))
                .map(|a| a.name.as_str())
                .collect();
            if !users.is_empty() {
                return Err(AwsError::conflict(format!(
                    "Unable to delete version because the following aliases reference it: [{}]",
                    users.join(", ")
                )));
            }
            record.versions.remove(&number);
            record.qualified_policies.remove(&version);
            super::provisioned::drop_config(record, &version);
            record.event_invoke_configs.remove(&version);
            Ok(())
        }),
    )
    .await?;
    super::provisioned::forget(state, caller, &record, &number.to_string());
    state.engine.retire_version(
        &caller.account_id,
        &caller.region,
        &r.name,
        &number.to_string(),
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}
