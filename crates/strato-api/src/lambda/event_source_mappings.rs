//! Event source mappings for SQS queues and DynamoDB streams:
//! CreateEventSourceMapping, GetEventSourceMapping,
//! UpdateEventSourceMapping, DeleteEventSourceMapping and
//! ListEventSourceMappings.
//!
//! Why over 800 lines: about 180 of them are unit tests of AWS's validation
//! rules; the rest (about 930) is five operations sharing one validation
//! and one settle path for both kinds of source. What is particular to streams (their
//! members' rules, their pollers' spec, checkpoints) is in [`stream`].
//!
//! A mapping is a store document (kind [`MAPPING_KIND`], id its UUID),
//! cached in memory. Writes answer with a transitional state (`Creating`,
//! `Updating`, `Enabling`, `Disabling`, `Deleting`), as AWS's 202s do; a
//! settle task then starts or stops the mapping's pollers
//! ([`SqsPollers`], [`StreamPollers`]) and moves it to `Enabled` or `Disabled` (or removes it
//! once its pollers stopped). At start every mapping is settled again, so
//! mappings survive a restart and resume polling.
//!
//! Deleting a function keeps its mappings, as AWS does: their batches fail
//! to resolve the function and the messages stay in the queue.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use dashmap::DashMap;
use serde::Deserialize;
use serde_json::{json, Value};
use strato_engine::event_source::{
    PollerSpec, RecordFilter, SqsPollers, SqsQueueFacts, StreamPollers, StreamSourceError,
};
use strato_model::error::ValidationErrors;
use strato_model::event_source_mapping::{
    mapping_arn, DynamoDbStreamArn, EventSourceMapping, MappingState, SqsQueueArn,
    DEFAULT_SQS_BATCH_SIZE, DEFAULT_STREAM_BATCH_SIZE, MAX_BATCHING_WINDOW_SECONDS, MAX_FILTERS,
    MAX_MAXIMUM_CONCURRENCY, MAX_SQS_BATCH_SIZE, MAX_UNWINDOWED_BATCH_SIZE,
    MIN_MAXIMUM_CONCURRENCY, REPORT_BATCH_ITEM_FAILURES, USER_ACTION, USER_INITIATED,
};
use strato_model::{AwsError, ErrorCode, FunctionRef};
use strato_pattern::{Dialect, Pattern};
use strato_store::{DocumentKey, Store, StoreError};

use super::{function_ref, resolve_config, unsupported, ResourceRequest};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::wire::{json as json_response, AwsJson};
use crate::ApiState;
use strato_gateway::extract::Authenticated;

mod stream;

pub use stream::StoreCheckpoints;
use stream::StreamMembers;

/// The store document kind of an event source mapping.
pub const MAPPING_KIND: &str = "lambda-event-source-mapping";
/// `MaxItems` of ListEventSourceMappings is 1–10000; AWS pages by 100.
const MAX_LIST_ITEMS: u32 = 10_000;
const DEFAULT_LIST_ITEMS: usize = 100;
/// Members of the request that belong to Kinesis, Kafka or MQ sources.
const OTHER_SOURCE_MEMBERS: [&str; 6] = [
    "Topics",
    "Queues",
    "SourceAccessConfigurations",
    "SelfManagedEventSource",
    "SelfManagedKafkaEventSourceConfig",
    "AmazonManagedKafkaEventSourceConfig",
];

/// The mappings of every account, their pollers, and their settling.
pub struct EventSourceMappings {
    store: Arc<dyn Store>,
    mappings: DashMap<String, Arc<EventSourceMapping>>,
    /// `None` while no SQS service is wired: every queue is then unknown.
    pollers: Option<Arc<SqsPollers>>,
    /// `None` while no DynamoDB service is wired: every stream is then
    /// unknown.
    stream_pollers: Option<Arc<StreamPollers>>,
    /// Serializes writes, so one (queue, function) pair never gets two
    /// mappings.
    writes: tokio::sync::Mutex<()>,
}

impl EventSourceMappings {
    /// Loads every stored mapping; [`EventSourceMappings::resume`] then
    /// settles them once functions can run.
    pub async fn load(
        store: Arc<dyn Store>,
        pollers: Option<Arc<SqsPollers>>,
        stream_pollers: Option<Arc<StreamPollers>>,
    ) -> Result<Arc<EventSourceMappings>, StoreError> {
        let service = Arc::new(EventSourceMappings {
            store: store.clone(),
            mappings: DashMap::new(),
            pollers,
            stream_pollers,
            writes: tokio::sync::Mutex::new(()),
        });
        for document in store.list_all_documents(MAPPING_KIND).await? {
            match serde_json::from_value::<EventSourceMapping>(document.doc) {
                Ok(mapping) => {
                    service
                        .mappings
                        .insert(mapping.uuid.clone(), Arc::new(mapping));
                }
                Err(e) => {
                    tracing::error!(id = %document.key.id, error = %e, "an event source mapping could not be read; it is ignored")
                }
            }
        }
        Ok(service)
    }

    /// Settles every loaded mapping: enabled ones poll again, and
    /// transitions a previous run left half-done (a deletion, say) finish.
    pub async fn resume(self: &Arc<Self>) {
        let uuids: Vec<String> = self.mappings.iter().map(|m| m.key().clone()).collect();
        for uuid in uuids {
            self.clone().settle(uuid).await;
        }
    }

    /// Stops every mapping's pollers (server shutdown); their states stay,
    /// so the next start resumes them.
    pub async fn shutdown(&self) {
        if let Some(pollers) = &self.pollers {
            pollers.stop_all().await;
        }
        if let Some(pollers) = &self.stream_pollers {
            pollers.stop_all().await;
        }
    }

    /// A mapping as AWS answers it; a stream mapping's
    /// `LastProcessingResult` is its pollers', and a queue mapping has one
    /// while its function's role may not poll the queue.
    fn wire(&self, mapping: &EventSourceMapping) -> Value {
        let mut wire = mapping.to_wire();
        if mapping.stream.is_some() {
            let result = self.stream_pollers.as_ref().map_or_else(
                || strato_engine::event_source::LAST_RESULT_NONE.to_string(),
                |p| p.last_result(&mapping.uuid),
            );
            wire["LastProcessingResult"] = result.into();
        } else if let Some(problem) = self.pollers.as_ref().and_then(|p| p.problem(&mapping.uuid)) {
            wire["LastProcessingResult"] = problem.into();
        }
        wire
    }

    fn key(mapping: &EventSourceMapping) -> DocumentKey {
        DocumentKey::new(
            &mapping.account,
            &mapping.region,
            MAPPING_KIND,
            &mapping.uuid,
        )
    }

    /// The caller's mapping `uuid`, or AWS's not-found answer.
    fn get(&self, caller: &Caller, uuid: &str) -> ApiResult<Arc<EventSourceMapping>> {
        self.mappings
            .get(uuid)
            .map(|m| m.value().clone())
            .filter(|m| m.account == caller.account_id && m.region == caller.region)
            .ok_or_else(|| not_found(caller, uuid).into())
    }

    /// The tags of the caller's mapping `uuid` (ListTags).
    pub(crate) fn tags(&self, caller: &Caller, uuid: &str) -> ApiResult<BTreeMap<String, String>> {
        Ok(self.get(caller, uuid)?.tags.clone())
    }

    /// Changes the tags of the caller's mapping `uuid` (TagResource,
    /// UntagResource); its state and `LastModified` stay as they are.
    pub(crate) async fn change_tags(
        &self,
        caller: &Caller,
        uuid: &str,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), AwsError>,
    ) -> ApiResult<()> {
        let _guard = self.writes.lock().await;
        let mut next = (*self.get(caller, uuid)?).clone();
        change(&mut next.tags)?;
        let doc = serde_json::to_value(&next).map_err(StoreError::from)?;
        self.store.put_document(&Self::key(&next), &doc).await?;
        self.mappings.insert(next.uuid.clone(), Arc::new(next));
        Ok(())
    }

    /// AWS's conflict when another live mapping (not `except`) feeds the
    /// same queue to the same function; `given` is the name as the caller
    /// wrote it, which AWS's message quotes.
    fn refuse_duplicate(
        &self,
        caller: &Caller,
        source: &str,
        given: &str,
        function: &str,
        qualifier: Option<&str>,
        except: Option<&str>,
    ) -> ApiResult<()> {
        let stream = DynamoDbStreamArn::parse(source).is_some();
        let existing = self.mappings.iter().find_map(|m| {
            let m = m.value();
            (m.account == caller.account_id
                && m.region == caller.region
                && m.event_source_arn == source
                && m.function_name == function
                && m.qualifier.as_deref() == qualifier
                && m.state != MappingState::Deleting
                && Some(m.uuid.as_str()) != except)
                .then(|| m.uuid.clone())
        });
        match existing {
            Some(uuid) if stream => Err(AwsError::conflict(format!(
                "The event source arn (\" {source} \") and function (\" {given} \") provided mapping already exists. Please update or delete the existing mapping with UUID {uuid}"
            ))
            .into()),
            Some(uuid) => Err(AwsError::conflict(format!(
                "An event source mapping with SQS arn (\" {source} \") and function (\" {given} \") already exists. Please update or delete the existing mapping with UUID {uuid}"
            ))
            .into()),
            None => Ok(()),
        }
    }

    fn queue(&self, arn: &str) -> Option<SqsQueueFacts> {
        self.pollers.as_ref()?.queues().queue(arn)
    }

    /// AWS's "Stream not found" unless the stream exists (with its stream
    /// turned on).
    async fn check_stream(&self, arn: &str) -> ApiResult<()> {
        let not_found = || AwsError::invalid_parameter(format!("Stream not found: {arn}"));
        let Some(pollers) = &self.stream_pollers else {
            return Err(not_found().into());
        };
        match pollers.source().shards(arn).await {
            Ok(_) => Ok(()),
            Err(StreamSourceError::NoSuchStream(_)) => Err(not_found().into()),
            Err(StreamSourceError::Unavailable(why)) => {
                Err(AwsError::service(format!("The stream could not be read: {why}")).into())
            }
        }
    }

    /// Writes a mapping and its cache entry, then settles it in the
    /// background.
    async fn write(self: &Arc<Self>, mapping: EventSourceMapping) -> ApiResult<()> {
        let key = Self::key(&mapping);
        let doc = serde_json::to_value(&mapping).map_err(StoreError::from)?;
        self.store.put_document(&key, &doc).await?;
        let uuid = mapping.uuid.clone();
        self.mappings.insert(uuid.clone(), Arc::new(mapping));
        let service = self.clone();
        tokio::spawn(async move { service.settle(uuid).await });
        Ok(())
    }

    /// Moves a mapping out of its transitional state: starts or stops its
    /// pollers, then records `Enabled` or `Disabled`, or removes it.
    async fn settle(self: Arc<Self>, uuid: String) {
        let Some(mapping) = self.mappings.get(&uuid).map(|m| m.value().clone()) else {
            return;
        };
        if mapping.state == MappingState::Deleting {
            if let Some(pollers) = &self.pollers {
                pollers.stop(&uuid).await;
            }
            if let Some(pollers) = &self.stream_pollers {
                pollers.remove(&uuid).await;
            }
            let _guard = self.writes.lock().await;
            let checkpoints = StoreCheckpoints::key(&mapping.account, &mapping.region, &uuid);
            if let Err(e) = self.store.delete_document(&checkpoints).await {
                tracing::error!(mapping = %uuid, error = %e, "a deleted mapping's checkpoints could not be removed; the next start retries");
                return;
            }
            if let Err(e) = self.store.delete_document(&Self::key(&mapping)).await {
                tracing::error!(mapping = %uuid, error = %e, "a deleted event source mapping could not be removed; the next start retries");
                return;
            }
            self.mappings.remove(&uuid);
            return;
        }
        let spec = poller_spec(&mapping);
        if let Err(e) = &spec {
            tracing::error!(mapping = %uuid, error = %e, "a stored filter no longer parses; the mapping does not poll");
        }
        match (&mapping.stream, &self.pollers, &self.stream_pollers) {
            (None, Some(pollers), _) => match spec {
                Ok(spec) if mapping.enabled => pollers.run(spec),
                _ => pollers.stop(&uuid).await,
            },
            (Some(stream), _, Some(pollers)) => match spec {
                Ok(spec) if mapping.enabled => {
                    pollers.run(stream::poller_spec(&mapping, stream, spec))
                }
                _ => pollers.stop(&uuid).await,
            },
            _ => {}
        }
        if !mapping.state.is_transitional() {
            return;
        }
        let _guard = self.writes.lock().await;
        // Settled only if nothing changed it meanwhile (that change
        // settles itself).
        let Some(current) = self.mappings.get(&uuid).map(|m| m.value().clone()) else {
            return;
        };
        if current.last_modified != mapping.last_modified || current.state != mapping.state {
            return;
        }
        let mut settled = (*current).clone();
        settled.state = if settled.enabled {
            MappingState::Enabled
        } else {
            MappingState::Disabled
        };
        let stored = serde_json::to_value(&settled)
            .map_err(StoreError::from)
            .map(|doc| (Self::key(&settled), doc));
        let result = match stored {
            Ok((key, doc)) => self.store.put_document(&key, &doc).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                self.mappings.insert(uuid, Arc::new(settled));
            }
            Err(e) => {
                tracing::error!(mapping = %uuid, error = %e, "an event source mapping's state could not be recorded")
            }
        }
    }
}

/// The pollers' view of a mapping.
fn poller_spec(mapping: &EventSourceMapping) -> Result<PollerSpec, AwsError> {
    let filter = match &mapping.filter_patterns {
        Some(patterns) => Some(Arc::new(FilterCriteria::parse(patterns)?) as Arc<dyn RecordFilter>),
        None => None,
    };
    Ok(PollerSpec {
        uuid: mapping.uuid.clone(),
        account: mapping.account.clone(),
        region: mapping.region.clone(),
        source_arn: mapping.event_source_arn.clone(),
        function: mapping.function_name.clone(),
        qualifier: mapping.qualifier.clone(),
        batch_size: mapping.batch_size as usize,
        batching_window: Duration::from_secs(u64::from(mapping.maximum_batching_window_seconds)),
        report_batch_item_failures: mapping.reports_batch_item_failures(),
        maximum_concurrency: mapping.maximum_concurrency,
        filter,
    })
}

/// The UUID an event source mapping ARN names
/// (`arn:aws:lambda:{region}:{account}:event-source-mapping:{uuid}`).
pub(crate) fn mapping_uuid(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(7, ':');
    let prefix: Vec<&str> = parts.by_ref().take(6).collect();
    match prefix.as_slice() {
        ["arn", partition, "lambda", _, _, "event-source-mapping"]
            if partition.starts_with("aws") =>
        {
            parts.next()
        }
        _ => None,
    }
}

/// A mapping's `FilterCriteria`: a record passes when any filter matches.
struct FilterCriteria(Vec<Pattern>);

impl FilterCriteria {
    fn parse(patterns: &[String]) -> Result<FilterCriteria, AwsError> {
        patterns
            .iter()
            .map(|text| {
                Pattern::parse(text, Dialect::LambdaFilterCriteria)
                    .map_err(|e| AwsError::invalid_parameter(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(FilterCriteria)
    }
}

impl RecordFilter for FilterCriteria {
    fn accepts(&self, record: &Value) -> bool {
        self.0.iter().any(|pattern| pattern.matches(record))
    }
}

fn not_found(caller: &Caller, uuid: &str) -> AwsError {
    AwsError::not_found(format!(
        "Event source mapping not found: {}",
        mapping_arn(&caller.region, &caller.account_id, uuid)
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    event_source_arn: Option<String>,
    function_name: Option<String>,
    enabled: Option<bool>,
    batch_size: Option<i64>,
    maximum_batching_window_in_seconds: Option<i64>,
    function_response_types: Option<Vec<String>>,
    scaling_config: Option<ScalingConfigRequest>,
    filter_criteria: Option<FilterCriteriaRequest>,
    tags: Option<BTreeMap<String, String>>,
    starting_position: Option<String>,
    starting_position_timestamp: Option<Value>,
    #[serde(flatten)]
    stream: StreamMembers,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateRequest {
    function_name: Option<String>,
    enabled: Option<bool>,
    batch_size: Option<i64>,
    maximum_batching_window_in_seconds: Option<i64>,
    function_response_types: Option<Vec<String>>,
    scaling_config: Option<ScalingConfigRequest>,
    filter_criteria: Option<FilterCriteriaRequest>,
    #[serde(flatten)]
    stream: StreamMembers,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ScalingConfigRequest {
    maximum_concurrency: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct FilterCriteriaRequest {
    filters: Option<Vec<FilterRequest>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct FilterRequest {
    pattern: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(rename = "EventSourceArn")]
    event_source_arn: Option<String>,
    #[serde(rename = "FunctionName")]
    function_name: Option<String>,
    #[serde(rename = "Marker")]
    marker: Option<String>,
    #[serde(rename = "MaxItems")]
    max_items: Option<String>,
}

/// The settings members Create and Update share.
struct Settings<'a> {
    batch_size: Option<i64>,
    window: Option<i64>,
    response_types: Option<&'a [String]>,
    scaling: Option<&'a ScalingConfigRequest>,
    filters: Option<&'a FilterCriteriaRequest>,
    starting_position: Option<&'a str>,
    /// `StartingPositionTimestamp` was given.
    timestamp: bool,
    stream: &'a StreamMembers,
    other: &'a BTreeMap<String, Value>,
}

/// The members' own constraints (one ValidationException naming every
/// failure), then members that belong to other kinds of source, then the
/// filters' syntax. Returns the filter patterns given.
fn validate_settings(settings: &Settings<'_>) -> ApiResult<Option<Vec<String>>> {
    let mut errors = ValidationErrors::new();
    if let Some(n) = settings.batch_size {
        errors.check_range(n, 1, MAX_SQS_BATCH_SIZE, "batchSize");
    }
    if let Some(n) = settings.window {
        errors.check_range(
            n,
            0,
            MAX_BATCHING_WINDOW_SECONDS,
            "maximumBatchingWindowInSeconds",
        );
    }
    if let Some(n) = settings.scaling.and_then(|s| s.maximum_concurrency) {
        errors.check_range(
            n,
            MIN_MAXIMUM_CONCURRENCY,
            MAX_MAXIMUM_CONCURRENCY,
            "scalingConfig.maximumConcurrency",
        );
    }
    if let Some(types) = settings.response_types {
        if types.iter().any(|t| t != REPORT_BATCH_ITEM_FAILURES) {
            errors.push(
                &format!("[{}]", types.join(", ")),
                "functionResponseTypes",
                &format!("Member must satisfy constraint: [Member must satisfy enum value set: [{REPORT_BATCH_ITEM_FAILURES}]]"),
            );
        }
    }
    settings.stream.check_ranges(&mut errors);
    stream::check_starting_position(settings.starting_position, &mut errors);
    errors.into_result(ErrorCode::ValidationException)?;
    if let Some(member) = settings
        .other
        .keys()
        .find(|k| OTHER_SOURCE_MEMBERS.contains(&k.as_str()))
    {
        return Err(unsupported(member).into());
    }
    if let Some(member) = settings.other.keys().next() {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member is not part of this operation's input"
        ))
        .into());
    }
    let Some(criteria) = settings.filters else {
        return Ok(None);
    };
    let patterns: Vec<String> = criteria
        .filters
        .iter()
        .flatten()
        .map(|f| f.pattern.clone().unwrap_or_default())
        .collect();
    if patterns.len() > MAX_FILTERS {
        return Err(AwsError::invalid_parameter(format!(
            "The number of filters ({}) exceeds the limit of {MAX_FILTERS}.",
            patterns.len()
        ))
        .into());
    }
    FilterCriteria::parse(&patterns)?;
    Ok(Some(patterns))
}

/// Members that belong to the other kind of source than the mapping's.
/// `serves` says whether an on-failure destination can be delivered to.
fn check_source_members(
    settings: &Settings<'_>,
    stream: bool,
    serves: impl Fn(&str) -> bool,
) -> Result<(), AwsError> {
    if stream {
        if settings.scaling.is_some() {
            return Err(unsupported(
                "ScalingConfig for a DynamoDB stream event source",
            ));
        }
        return settings.stream.check_for_stream(serves);
    }
    let member = settings
        .starting_position
        .map(|_| "StartingPosition")
        .or(settings.timestamp.then_some("StartingPositionTimestamp"))
        .or_else(|| settings.stream.given());
    match member {
        Some(member) => Err(unsupported(&format!("{member} for an SQS event source"))),
        None => Ok(()),
    }
}

/// The SQS rules that depend on the queue and the function.
fn check_against_queue(
    batch_size: u32,
    window: u32,
    fifo: bool,
    facts: &SqsQueueFacts,
    function_timeout: i64,
) -> Result<(), AwsError> {
    if fifo {
        if batch_size > MAX_UNWINDOWED_BATCH_SIZE {
            return Err(AwsError::invalid_parameter(
                "Maximum batch size must be between 1 and 10 inclusive",
            ));
        }
        if window > 0 {
            return Err(AwsError::invalid_parameter(
                "Batching window is not supported for FIFO queues",
            ));
        }
    } else if batch_size > MAX_UNWINDOWED_BATCH_SIZE && window == 0 {
        return Err(AwsError::invalid_parameter(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
        ));
    }
    let visibility = facts.visibility_timeout.as_secs();
    if i64::try_from(visibility).unwrap_or(i64::MAX) < function_timeout {
        return Err(AwsError::invalid_parameter(format!(
            "Queue visibility timeout: {visibility} seconds is less than Function timeout: {function_timeout} seconds"
        )));
    }
    Ok(())
}

fn queue_missing() -> AwsError {
    AwsError::invalid_parameter(
        "Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified queue does not exist.",
    )
}

fn function_missing() -> AwsError {
    AwsError::not_found("Function does not exist")
}

/// The function's timeout through the reference's qualifier, or AWS's
/// not-found answer.
/// (timeout, execution role) of the function version a mapping invokes.
async fn function_facts(
    state: &ApiState,
    caller: &Caller,
    r: &FunctionRef,
) -> ApiResult<(i64, String)> {
    let record = state
        .catalog
        .get(&caller.account_id, &caller.region, &r.name)
        .await?
        .ok_or_else(function_missing)?;
    let config = resolve_config(caller, r, &record).map_err(|_| ApiError(function_missing()))?;
    Ok((config.timeout, config.role.clone()))
}

/// Under `--iam enforce` a mapping polls its queue as the function's
/// execution role, as AWS's pollers do: the role must allow what polling
/// calls, or the mapping is refused with AWS's sentence.
fn role_can_poll(
    state: &ApiState,
    role: &str,
    function: &str,
    source: &str,
    is_stream: bool,
) -> ApiResult<()> {
    if !state.iam.enforcing() {
        return Ok(());
    }
    let allows = |action: &str| state.iam.role_allows(role, function, action, source);
    match strato_engine::event_source::role_refusal(source, is_stream, allows) {
        Some(refusal) => Err(AwsError::invalid_parameter(refusal).into()),
        None => Ok(()),
    }
}

fn in_range_u32(n: Option<i64>) -> Option<u32> {
    n.and_then(|n| u32::try_from(n).ok())
}

pub async fn create(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    AwsJson(req): AwsJson<CreateRequest>,
) -> ApiResult<Response> {
    let Some(name) = req.function_name.as_deref() else {
        return Err(AwsError::validation(
            "1 validation error detected: Value null at 'functionName' failed to satisfy constraint: Member must not be null",
        )
        .into());
    };
    let r = function_ref(&caller, name, None, "CreateEventSourceMapping")?;
    let settings = Settings {
        batch_size: req.batch_size,
        window: req.maximum_batching_window_in_seconds,
        response_types: req.function_response_types.as_deref(),
        scaling: req.scaling_config.as_ref(),
        filters: req.filter_criteria.as_ref(),
        starting_position: req.starting_position.as_deref(),
        timestamp: req.starting_position_timestamp.is_some(),
        stream: &req.stream,
        other: &req.other,
    };
    let patterns = validate_settings(&settings)?;
    let source = req.event_source_arn.clone().unwrap_or_default();
    let service = &state.event_source_mappings;
    let is_stream = DynamoDbStreamArn::parse(&source).is_some();
    if !is_stream && SqsQueueArn::parse(&source).is_none() {
        return Err(AwsError::invalid_parameter("Unrecognized event source.").into());
    }
    check_source_members(&settings, is_stream, |arn| state.sinks.serves(arn))?;
    let (timeout, role) = function_facts(&state, &caller, &r).await?;
    role_can_poll(&state, &role, &r.name, &source, is_stream)?;
    let stream = if is_stream {
        let position = stream::starting_position(req.starting_position.as_deref(), &source)?;
        service.check_stream(&source).await?;
        Some(stream::new_settings(position, &req.stream))
    } else {
        let fifo = SqsQueueArn::parse(&source).is_some_and(|arn| arn.is_fifo());
        let facts = service.queue(&source).ok_or_else(queue_missing)?;
        let batch_size = in_range_u32(req.batch_size).unwrap_or(DEFAULT_SQS_BATCH_SIZE);
        let window = in_range_u32(req.maximum_batching_window_in_seconds).unwrap_or(0);
        check_against_queue(batch_size, window, facts.fifo || fifo, &facts, timeout)?;
        None
    };
    let default_batch_size = if is_stream {
        DEFAULT_STREAM_BATCH_SIZE
    } else {
        DEFAULT_SQS_BATCH_SIZE
    };
    let qualifier = r.qualifier.as_ref().map(|q| q.as_string());
    let _guard = service.writes.lock().await;
    service.refuse_duplicate(&caller, &source, name, &r.name, qualifier.as_deref(), None)?;
    let mapping = EventSourceMapping {
        uuid: uuid::Uuid::new_v4().to_string(),
        account: caller.account_id.clone(),
        region: caller.region.clone(),
        event_source_arn: source,
        function_name: r.name.clone(),
        qualifier,
        batch_size: in_range_u32(req.batch_size).unwrap_or(default_batch_size),
        maximum_batching_window_seconds: in_range_u32(req.maximum_batching_window_in_seconds)
            .unwrap_or(0),
        function_response_types: req.function_response_types.clone().unwrap_or_default(),
        maximum_concurrency: req
            .scaling_config
            .as_ref()
            .and_then(|s| in_range_u32(s.maximum_concurrency)),
        filter_patterns: patterns,
        enabled: req.enabled.unwrap_or(true),
        state: MappingState::Creating,
        state_transition_reason: transition_reason(is_stream),
        last_modified: chrono::Utc::now(),
        tags: req.tags.clone().unwrap_or_default(),
        stream,
    };
    let wire = service.wire(&mapping);
    state.event_source_mappings.write(mapping).await?;
    Ok(json_response(StatusCode::ACCEPTED, wire))
}

/// What a user's change leaves in `StateTransitionReason`: AWS words it
/// differently for streams and queues.
fn transition_reason(stream: bool) -> String {
    if stream { USER_ACTION } else { USER_INITIATED }.to_string()
}

pub async fn get(on: ResourceRequest) -> ApiResult<Response> {
    let service = &on.state.event_source_mappings;
    let mapping = service.get(&on.caller, &on.name)?;
    Ok(json_response(StatusCode::OK, service.wire(&mapping)))
}

pub async fn update(
    on: ResourceRequest,
    AwsJson(req): AwsJson<UpdateRequest>,
) -> ApiResult<Response> {
    let service = on.state.event_source_mappings.clone();
    let current = service.get(&on.caller, &on.name)?;
    let settings = Settings {
        batch_size: req.batch_size,
        window: req.maximum_batching_window_in_seconds,
        response_types: req.function_response_types.as_deref(),
        scaling: req.scaling_config.as_ref(),
        filters: req.filter_criteria.as_ref(),
        starting_position: None,
        timestamp: false,
        stream: &req.stream,
        other: &req.other,
    };
    let patterns = validate_settings(&settings)?;
    check_source_members(&settings, current.stream.is_some(), |arn| {
        on.state.sinks.serves(arn)
    })?;
    if current.state.is_transitional() {
        return Err(AwsError::new(
            ErrorCode::ResourceInUseException,
            "Cannot update the event source mapping because it is in use.",
        )
        .into());
    }
    let mut next = (*current).clone();
    if let Some(name) = req.function_name.as_deref() {
        let r = function_ref(&on.caller, name, None, "UpdateEventSourceMapping")?;
        next.function_name = r.name.clone();
        next.qualifier = r.qualifier.as_ref().map(|q| q.as_string());
    }
    let r = FunctionRef {
        name: next.function_name.clone(),
        qualifier: next
            .qualifier
            .as_deref()
            .map(strato_model::Qualifier::parse)
            .transpose()?,
        account: None,
        region: None,
    };
    let (timeout, role) = function_facts(&on.state, &on.caller, &r).await?;
    if req.function_name.is_some() {
        // Another function polls with another role.
        let is_stream = DynamoDbStreamArn::parse(&next.event_source_arn).is_some();
        role_can_poll(&on.state, &role, &r.name, &next.event_source_arn, is_stream)?;
    }
    if let Some(n) = in_range_u32(req.batch_size) {
        next.batch_size = n;
    }
    if let Some(n) = in_range_u32(req.maximum_batching_window_in_seconds) {
        next.maximum_batching_window_seconds = n;
    }
    if let Some(types) = &req.function_response_types {
        next.function_response_types = types.clone();
    }
    if let Some(scaling) = &req.scaling_config {
        next.maximum_concurrency = in_range_u32(scaling.maximum_concurrency);
    }
    if req.filter_criteria.is_some() {
        // An empty `Filters` list removes the criteria.
        next.filter_patterns = patterns.filter(|p| !p.is_empty());
    }
    if let Some(stream) = &mut next.stream {
        req.stream.apply(stream);
    } else {
        let facts = service
            .queue(&next.event_source_arn)
            .ok_or_else(queue_missing)?;
        let fifo = facts.fifo
            || SqsQueueArn::parse(&next.event_source_arn).is_some_and(|arn| arn.is_fifo());
        check_against_queue(
            next.batch_size,
            next.maximum_batching_window_seconds,
            fifo,
            &facts,
            timeout,
        )?;
    }
    let _guard = service.writes.lock().await;
    let Some(latest) = service.mappings.get(&on.name).map(|m| m.value().clone()) else {
        return Err(not_found(&on.caller, &on.name).into());
    };
    if let Some(given) = req.function_name.as_deref() {
        service.refuse_duplicate(
            &on.caller,
            &next.event_source_arn,
            given,
            &next.function_name,
            next.qualifier.as_deref(),
            Some(&on.name),
        )?;
    }
    if latest.last_modified != current.last_modified {
        return Err(AwsError::new(
            ErrorCode::ResourceInUseException,
            "Cannot update the event source mapping because it is in use.",
        )
        .into());
    }
    let enabled = req.enabled.unwrap_or(current.enabled);
    next.state = match (current.enabled, enabled) {
        (false, true) => MappingState::Enabling,
        (true, false) => MappingState::Disabling,
        _ => MappingState::Updating,
    };
    next.enabled = enabled;
    next.state_transition_reason = transition_reason(next.stream.is_some());
    next.last_modified = chrono::Utc::now();
    let wire = service.wire(&next);
    service.write(next).await?;
    Ok(json_response(StatusCode::ACCEPTED, wire))
}

pub async fn delete(on: ResourceRequest) -> ApiResult<Response> {
    let service = on.state.event_source_mappings.clone();
    let _guard = service.writes.lock().await;
    let current = service.get(&on.caller, &on.name)?;
    let mut next = (*current).clone();
    next.state = MappingState::Deleting;
    next.state_transition_reason = transition_reason(next.stream.is_some());
    let wire = service.wire(&next);
    drop(_guard);
    service.write(next).await?;
    Ok(json_response(StatusCode::ACCEPTED, wire))
}

pub async fn list(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let limit = match q.max_items.as_deref() {
        None => DEFAULT_LIST_ITEMS,
        Some(raw) => {
            let n: i64 = raw.parse().map_err(|_| {
                AwsError::invalid_parameter(format!("Invalid value for MaxItems: {raw}"))
            })?;
            let mut errors = ValidationErrors::new();
            errors.check_range(n, 1, MAX_LIST_ITEMS, "maxItems");
            errors.into_result(ErrorCode::ValidationException)?;
            usize::try_from(n).unwrap_or(DEFAULT_LIST_ITEMS)
        }
    };
    let function = match q.function_name.as_deref() {
        Some(name) => Some(function_ref(
            &caller,
            name,
            None,
            "ListEventSourceMappings",
        )?),
        None => None,
    };
    let mut matching: Vec<Arc<EventSourceMapping>> = state
        .event_source_mappings
        .mappings
        .iter()
        .map(|m| m.value().clone())
        .filter(|m| m.account == caller.account_id && m.region == caller.region)
        .filter(|m| {
            q.event_source_arn
                .as_deref()
                .is_none_or(|arn| arn == m.event_source_arn)
        })
        .filter(|m| {
            function.as_ref().is_none_or(|r| {
                r.name == m.function_name
                    && r.qualifier.as_ref().map(|q| q.as_string()) == m.qualifier
            })
        })
        .filter(|m| {
            q.marker
                .as_deref()
                .is_none_or(|after| m.uuid.as_str() > after)
        })
        .collect();
    matching.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    let more = matching.len() > limit;
    matching.truncate(limit);
    let mut out = json!({
        "EventSourceMappings": matching
            .iter()
            .map(|m| state.event_source_mappings.wire(m))
            .collect::<Vec<_>>(),
    });
    if more {
        if let Some(last) = matching.last() {
            out["NextMarker"] = last.uuid.clone().into();
        }
    }
    Ok(json_response(StatusCode::OK, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(visibility: u64, fifo: bool) -> SqsQueueFacts {
        SqsQueueFacts {
            visibility_timeout: Duration::from_secs(visibility),
            fifo,
        }
    }

    fn settings_error(settings: Settings<'_>) -> AwsError {
        match validate_settings(&settings) {
            Err(ApiError(e)) => e,
            Ok(_) => panic!("accepted"),
        }
    }

    fn settings<'a>(other: &'a BTreeMap<String, Value>) -> Settings<'a> {
        Settings {
            batch_size: None,
            window: None,
            response_types: None,
            scaling: None,
            filters: None,
            starting_position: None,
            timestamp: false,
            stream: &NO_STREAM_MEMBERS,
            other,
        }
    }

    static NO_STREAM_MEMBERS: StreamMembers = StreamMembers {
        parallelization_factor: None,
        destination_config: None,
        maximum_record_age_in_seconds: None,
        bisect_batch_on_function_error: None,
        maximum_retry_attempts: None,
        tumbling_window_in_seconds: None,
    };

    #[test]
    fn out_of_range_members_are_one_validation_exception() {
        let other = BTreeMap::new();
        let scaling = ScalingConfigRequest {
            maximum_concurrency: Some(1),
        };
        let e = settings_error(Settings {
            batch_size: Some(10_001),
            window: Some(301),
            scaling: Some(&scaling),
            ..settings(&other)
        });
        assert_eq!(e.code, ErrorCode::ValidationException);
        assert_eq!(
            e.message,
            "3 validation errors detected: Value '10001' at 'batchSize' failed to satisfy constraint: Member must have value less than or equal to 10000; Value '301' at 'maximumBatchingWindowInSeconds' failed to satisfy constraint: Member must have value less than or equal to 300; Value '1' at 'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member must have value greater than or equal to 2"
        );
    }

    #[test]
    fn only_report_batch_item_failures_is_a_response_type() {
        let other = BTreeMap::new();
        let types = vec!["Nope".to_string()];
        let e = settings_error(Settings {
            response_types: Some(&types),
            ..settings(&other)
        });
        assert_eq!(e.code, ErrorCode::ValidationException);
        assert!(e.message.contains("functionResponseTypes"));
    }

    #[test]
    fn a_bad_filter_is_an_invalid_filter_pattern_definition() {
        let other = BTreeMap::new();
        let criteria = FilterCriteriaRequest {
            filters: Some(vec![FilterRequest {
                pattern: Some("{not json".into()),
            }]),
        };
        let e = settings_error(Settings {
            filters: Some(&criteria),
            ..settings(&other)
        });
        assert_eq!(e.code, ErrorCode::InvalidParameterValueException);
        assert_eq!(e.message, "Invalid filter pattern definition.");
    }

    #[test]
    fn more_than_five_filters_are_refused() {
        let other = BTreeMap::new();
        let criteria = FilterCriteriaRequest {
            filters: Some(
                (0..6)
                    .map(|i| FilterRequest {
                        pattern: Some(format!(r#"{{"body":{{"n":[{i}]}}}}"#)),
                    })
                    .collect(),
            ),
        };
        let e = settings_error(Settings {
            filters: Some(&criteria),
            ..settings(&other)
        });
        assert_eq!(e.code, ErrorCode::InvalidParameterValueException);
    }

    #[test]
    fn stream_members_are_refused_for_sqs_and_queue_members_for_streams() {
        let other = BTreeMap::new();
        let given = Settings {
            starting_position: Some("LATEST"),
            ..settings(&other)
        };
        let e = check_source_members(&given, false, |_| true).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValueException);
        assert!(check_source_members(&given, true, |_| true).is_ok());
        let scaling = ScalingConfigRequest {
            maximum_concurrency: Some(2),
        };
        let given = Settings {
            scaling: Some(&scaling),
            ..settings(&other)
        };
        assert!(check_source_members(&given, true, |_| true).is_err());
    }

    #[test]
    fn a_large_standard_batch_needs_a_window() {
        let e = check_against_queue(11, 0, false, &facts(30, false), 3).unwrap_err();
        assert_eq!(
            e.message,
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
        );
        assert!(check_against_queue(10_000, 1, false, &facts(30, false), 3).is_ok());
    }

    #[test]
    fn fifo_batches_are_at_most_ten_without_a_window() {
        assert!(check_against_queue(11, 1, true, &facts(30, true), 3).is_err());
        assert!(check_against_queue(10, 1, true, &facts(30, true), 3).is_err());
        assert!(check_against_queue(10, 0, true, &facts(30, true), 3).is_ok());
    }

    #[test]
    fn the_visibility_timeout_must_cover_the_function_timeout() {
        let e = check_against_queue(10, 0, false, &facts(30, false), 60).unwrap_err();
        assert_eq!(
            e.message,
            "Queue visibility timeout: 30 seconds is less than Function timeout: 60 seconds"
        );
        assert!(check_against_queue(10, 0, false, &facts(60, false), 60).is_ok());
    }

    #[test]
    fn mapping_arns_name_their_uuid() {
        assert_eq!(
            mapping_uuid("arn:aws:lambda:us-east-1:111111111111:event-source-mapping:abc"),
            Some("abc")
        );
        assert_eq!(
            mapping_uuid("arn:aws:lambda:us-east-1:111111111111:function:abc"),
            None
        );
    }

    #[test]
    fn filters_match_any_pattern() {
        let criteria = FilterCriteria::parse(&[
            r#"{"body":{"kind":["a"]}}"#.to_string(),
            r#"{"body":{"kind":["b"]}}"#.to_string(),
        ])
        .unwrap();
        assert!(criteria.accepts(&json!({"body": {"kind": "b"}})));
        assert!(!criteria.accepts(&json!({"body": {"kind": "c"}})));
    }
}
