//! Tags of topics: TagResource, UntagResource, ListTagsForResource.

use std::collections::BTreeMap;
use std::sync::Arc;

use strato_model::wire::{Doc, OpResult, ServiceError};

use crate::operations::{check_arn, required};
use crate::{error, SnsRequest, SnsService, TopicRecord};

/// At most this many tags per topic.
const MAX_TAGS: usize = 50;

pub(crate) fn list_tags(sns: &SnsService, request: SnsRequest<'_>, input: &Doc) -> OpResult {
    let topic = tagged_topic(sns, request, input)?;
    Ok(Doc::map().with("Tags", Doc::tag_list(&topic.tags)))
}

pub(crate) fn tags_of(input: &Doc) -> BTreeMap<String, String> {
    input.tag_pairs("Tags").into_iter().collect()
}

fn tagged_topic(
    sns: &SnsService,
    request: SnsRequest<'_>,
    input: &Doc,
) -> Result<Arc<TopicRecord>, ServiceError> {
    let arn = required(input, "ResourceArn")?;
    check_arn("ResourceArn", arn)?;
    sns.topic(arn)
        .filter(|t| t.account == request.caller.account_id && t.region == request.caller.region)
        .ok_or_else(error::resource_not_found)
}

pub(crate) async fn tag_resource(
    sns: &SnsService,
    request: SnsRequest<'_>,
    input: &Doc,
) -> OpResult {
    let topic = tagged_topic(sns, request, input)?;
    let tags = tags_of(input);
    let _guard = sns.control.lock().await;
    let mut record = (*topic).clone();
    record.tags.extend(tags);
    if record.tags.len() > MAX_TAGS {
        return Err(ServiceError::new(
            "TagLimitExceeded",
            "Could not complete request: tag quota of per resource exceeded",
        ));
    }
    sns.save_topic(record).await?;
    Ok(Doc::map())
}

pub(crate) async fn untag_resource(
    sns: &SnsService,
    request: SnsRequest<'_>,
    input: &Doc,
) -> OpResult {
    let topic = tagged_topic(sns, request, input)?;
    let keys: Vec<String> = input
        .get("TagKeys")
        .and_then(Doc::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    let _guard = sns.control.lock().await;
    let mut record = (*topic).clone();
    for key in keys {
        record.tags.remove(&key);
    }
    sns.save_topic(record).await?;
    Ok(Doc::map())
}
