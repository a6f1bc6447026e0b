//! EventBridge's operations (`AWSEvents.*`), input validated as AWS
//! validates it.
//!
//! Why over 800 lines: buses, rules, targets, PutEvents, TestEventPattern
//! and tags each validate their input with AWS's own messages; PutEvents
//! and the target checks are the split to make when it grows further.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use strato_model::wire::{Doc, OpResult, ServiceError};
use strato_model::Caller;
use strato_pattern::{Dialect, Pattern};

use crate::error::{self, MAX_64, NAME_PATTERN};
use crate::records::{self, BusRecord, RuleRecord, Target, DEFAULT_BUS};
use crate::schedule::{Flavor, Schedule};
use crate::transform;
use crate::{envelope, EventsService, LiveRule};

/// AWS's limits.
const MAX_ENTRIES: usize = 10;
const MAX_REQUEST_BYTES: usize = 256 * 1024;
const MAX_TARGETS: usize = 5;

pub(crate) async fn dispatch(
    events: &EventsService,
    caller: &Caller,
    operation: &str,
    input: Doc,
) -> OpResult {
    match operation {
        "CreateEventBus" => create_event_bus(events, caller, &input).await,
        "DescribeEventBus" => describe_event_bus(events, caller, &input),
        "ListEventBuses" => list_event_buses(events, caller, &input),
        "DeleteEventBus" => delete_event_bus(events, caller, &input).await,
        "PutRule" => put_rule(events, caller, &input).await,
        "DescribeRule" => describe_rule(events, caller, &input),
        "ListRules" => list_rules(events, caller, &input),
        "DeleteRule" => delete_rule(events, caller, &input).await,
        "EnableRule" => set_rule_state(events, caller, &input, "ENABLED").await,
        "DisableRule" => set_rule_state(events, caller, &input, "DISABLED").await,
        "ListRuleNamesByTarget" => list_rule_names_by_target(events, caller, &input),
        "PutTargets" => put_targets(events, caller, &input).await,
        "RemoveTargets" => remove_targets(events, caller, &input).await,
        "ListTargetsByRule" => list_targets_by_rule(events, caller, &input),
        "PutEvents" => put_events(events, caller, &input).await,
        "TestEventPattern" => test_event_pattern(&input),
        "TagResource" => tag_resource(events, caller, &input).await,
        "UntagResource" => untag_resource(events, caller, &input).await,
        "ListTagsForResource" => list_tags_for_resource(events, caller, &input),
        _ => Err(error::unknown_operation(operation)),
    }
}

pub(crate) fn text<'a>(input: &'a Doc, member: &str) -> Option<&'a str> {
    input.get(member).and_then(Doc::as_str)
}

/// A required member, as AWS's validation words its absence.
fn required<'a>(input: &'a Doc, member: &str, at: &str) -> Result<&'a str, ServiceError> {
    text(input, member).ok_or_else(|| {
        error::validation(format!(
            "1 validation error detected: Value null at '{at}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// A resource name: `[\.\-_A-Za-z0-9]+`, at most 64.
fn check_name(name: &str, at: &str) -> Result<(), ServiceError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(error::constraint(name, at, NAME_PATTERN));
    }
    if name.len() > 64 {
        return Err(error::constraint(name, at, MAX_64));
    }
    Ok(())
}

/// A bus given by name or ARN; `default` when absent.
fn bus_name(input: &Doc, member: &str) -> String {
    match text(input, member) {
        Some(given) => given
            .rsplit_once(":event-bus/")
            .map_or(given, |(_, name)| name)
            .to_string(),
        None => DEFAULT_BUS.to_string(),
    }
}

/// The (account, region) the caller's records are kept under.
pub(crate) fn key(caller: &Caller) -> (String, String) {
    (caller.account_id.clone(), caller.region.clone())
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn tags_of(input: &Doc, member: &str) -> BTreeMap<String, String> {
    input
        .get(member)
        .and_then(Doc::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(|tag| {
            Some((
                text(tag, "Key")?.to_string(),
                text(tag, "Value")?.to_string(),
            ))
        })
        .collect()
}

// ---- buses ----

fn existing_bus(
    events: &EventsService,
    caller: &Caller,
    name: &str,
) -> Result<Option<BusRecord>, ServiceError> {
    if name == DEFAULT_BUS {
        return Ok(None);
    }
    events
        .state
        .read()
        .buses
        .get(&key(caller))
        .and_then(|b| b.get(name))
        .cloned()
        .map(Some)
        .ok_or_else(|| error::bus_not_found(name))
}

fn bus_doc(events: &EventsService, caller: &Caller, bus: Option<&BusRecord>) -> Doc {
    match bus {
        Some(bus) => Doc::map()
            .with("Name", bus.name.as_str())
            .with("Arn", bus.arn())
            .with_opt("Description", bus.description.clone())
            .with("CreationTime", Doc::Timestamp(timestamp(bus.created)))
            .with("LastModifiedTime", Doc::Timestamp(timestamp(bus.created))),
        None => Doc::map()
            .with("Name", DEFAULT_BUS)
            .with(
                "Arn",
                records::bus_arn(&caller.region, &caller.account_id, DEFAULT_BUS),
            )
            .with("CreationTime", Doc::Timestamp(timestamp(events.started)))
            .with(
                "LastModifiedTime",
                Doc::Timestamp(timestamp(events.started)),
            ),
    }
}

// Epoch seconds fit an f64 exactly for any date EventBridge will see.
#[allow(clippy::cast_precision_loss)]
fn timestamp(secs: i64) -> f64 {
    secs as f64
}

async fn create_event_bus(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let name = required(input, "Name", "name")?;
    check_name(name, "name")?;
    if name == DEFAULT_BUS || name.starts_with("aws.") {
        return Err(error::bus_exists(name));
    }
    let _control = events.control.lock().await;
    if events.bus_known(&caller.account_id, &caller.region, name) {
        return Err(error::bus_exists(name));
    }
    let bus = BusRecord {
        account: caller.account_id.clone(),
        region: caller.region.clone(),
        name: name.to_string(),
        description: text(input, "Description").map(str::to_string),
        created: now_secs(),
        tags: tags_of(input, "Tags"),
    };
    let out = Doc::map()
        .with("EventBusArn", bus.arn())
        .with_opt("Description", bus.description.clone());
    events.save(bus).await?;
    Ok(out)
}

fn describe_event_bus(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let name = bus_name(input, "Name");
    let bus = existing_bus(events, caller, &name)?;
    Ok(bus_doc(events, caller, bus.as_ref()))
}

fn list_event_buses(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let prefix = text(input, "NamePrefix").unwrap_or_default();
    let mut buses = vec![bus_doc(events, caller, None)];
    if let Some(custom) = events.state.read().buses.get(&key(caller)) {
        buses.extend(custom.values().map(|b| bus_doc(events, caller, Some(b))));
    }
    buses.retain(|b| text(b, "Name").is_some_and(|n| n.starts_with(prefix)));
    Ok(Doc::map().with("EventBuses", Doc::List(buses)))
}

async fn delete_event_bus(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let name = required(input, "Name", "name")?;
    if name == DEFAULT_BUS {
        return Err(error::validation("Cannot delete event bus default."));
    }
    let _control = events.control.lock().await;
    let removed = events
        .state
        .write()
        .buses
        .get_mut(&key(caller))
        .and_then(|b| b.remove(name));
    if removed.is_some() {
        events
            .delete_doc(&caller.account_id, &caller.region, records::BUS_KIND, name)
            .await?;
    }
    Ok(Doc::map())
}

// ---- rules ----

fn existing_rule(
    events: &EventsService,
    caller: &Caller,
    bus: &str,
    name: &str,
) -> Result<Arc<LiveRule>, ServiceError> {
    events
        .state
        .read()
        .rules
        .get(&key(caller))
        .and_then(|r| r.get(&(bus.to_string(), name.to_string())))
        .cloned()
        .ok_or_else(|| error::rule_not_found(name, bus))
}

async fn put_rule(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let name = required(input, "Name", "name")?;
    check_name(name, "name")?;
    let bus = bus_name(input, "EventBusName");
    let pattern = text(input, "EventPattern");
    let schedule = text(input, "ScheduleExpression");
    if pattern.is_none() && schedule.is_none() {
        return Err(error::validation(
            "Parameter(s) EventPattern or ScheduleExpression must be specified.",
        ));
    }
    if let Some(pattern) = pattern {
        Pattern::parse(pattern, Dialect::EventBridge)
            .map_err(|e| error::invalid_pattern(e.to_string()))?;
    }
    if let Some(expression) = schedule {
        if bus != DEFAULT_BUS {
            return Err(error::validation(
                "ScheduleExpression is supported only on the default event bus.",
            ));
        }
        if Schedule::parse(expression, Flavor::Rule, chrono_tz::UTC).is_none() {
            return Err(error::validation(
                "Parameter ScheduleExpression is not valid.",
            ));
        }
    }
    let state = match text(input, "State") {
        None => "ENABLED",
        Some(s @ ("ENABLED" | "DISABLED" | "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS")) => s,
        Some(other) => {
            return Err(error::constraint(
                other,
                "state",
                "Member must satisfy enum value set: [ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS, DISABLED, ENABLED]",
            ))
        }
    };
    let _control = events.control.lock().await;
    if !events.bus_known(&caller.account_id, &caller.region, &bus) {
        return Err(error::bus_not_found(&bus));
    }
    let existing = existing_rule(events, caller, &bus, name).ok();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let rule = RuleRecord {
        account: caller.account_id.clone(),
        region: caller.region.clone(),
        bus: bus.clone(),
        name: name.to_string(),
        event_pattern: pattern.map(str::to_string),
        schedule_expression: schedule.map(str::to_string),
        state: state.to_string(),
        description: text(input, "Description").map(str::to_string),
        role_arn: text(input, "RoleArn").map(str::to_string),
        targets: existing
            .as_ref()
            .map(|r| r.record.targets.clone())
            .unwrap_or_default(),
        tags: existing
            .as_ref()
            .map_or_else(|| tags_of(input, "Tags"), |r| r.record.tags.clone()),
        // A new or changed schedule counts from now.
        last_fired_ms: existing
            .as_ref()
            .filter(|r| r.record.schedule_expression.as_deref() == schedule)
            .map_or(now_ms, |r| r.record.last_fired_ms),
    };
    let arn = rule.arn();
    events.save(rule).await?;
    Ok(Doc::map().with("RuleArn", arn))
}

fn rule_doc(rule: &RuleRecord, full: bool) -> Doc {
    let mut doc = Doc::map()
        .with("Name", rule.name.as_str())
        .with("Arn", rule.arn())
        .with_opt("EventPattern", rule.event_pattern.clone())
        .with_opt("ScheduleExpression", rule.schedule_expression.clone())
        .with("State", rule.state.as_str())
        .with_opt("Description", rule.description.clone())
        .with_opt("RoleArn", rule.role_arn.clone())
        .with("EventBusName", rule.bus.as_str());
    if full {
        doc = doc.with("CreatedBy", rule.account.as_str());
    }
    doc
}

fn describe_rule(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let name = required(input, "Name", "name")?;
    let bus = bus_name(input, "EventBusName");
    let rule = existing_rule(events, caller, &bus, name)?;
    Ok(rule_doc(&rule.record, true))
}

/// `Limit`/`NextToken` paging over a sorted list (the token is an index).
fn page<T>(items: Vec<T>, input: &Doc) -> Result<(Vec<T>, Option<String>), ServiceError> {
    let start = match text(input, "NextToken") {
        Some(token) => token
            .parse::<usize>()
            .map_err(|_| error::validation("The NextToken provided is invalid."))?,
        None => 0,
    };
    let limit = input
        .get("Limit")
        .and_then(Doc::as_i64)
        .and_then(|l| usize::try_from(l).ok())
        .filter(|l| *l > 0)
        .unwrap_or(100);
    let total = items.len();
    let taken: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let next = (start + taken.len() < total).then(|| (start + taken.len()).to_string());
    Ok((taken, next))
}

fn list_rules(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let bus = bus_name(input, "EventBusName");
    if !events.bus_known(&caller.account_id, &caller.region, &bus) {
        return Err(error::bus_not_found(&bus));
    }
    let prefix = text(input, "NamePrefix").unwrap_or_default();
    let rules: Vec<Doc> = events
        .state
        .read()
        .rules
        .get(&key(caller))
        .map(|rules| {
            rules
                .iter()
                .filter(|((b, n), _)| *b == bus && n.starts_with(prefix))
                .map(|(_, r)| rule_doc(&r.record, false))
                .collect()
        })
        .unwrap_or_default();
    let (rules, next) = page(rules, input)?;
    Ok(Doc::map()
        .with("Rules", Doc::List(rules))
        .with_opt("NextToken", next))
}

async fn delete_rule(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let name = required(input, "Name", "name")?;
    let bus = bus_name(input, "EventBusName");
    let _control = events.control.lock().await;
    let Ok(rule) = existing_rule(events, caller, &bus, name) else {
        return Ok(Doc::map());
    };
    if !rule.record.targets.is_empty() {
        return Err(error::validation(
            "Rule can't be deleted since it has targets.",
        ));
    }
    events.remove(&rule.record).await?;
    Ok(Doc::map())
}

async fn set_rule_state(
    events: &EventsService,
    caller: &Caller,
    input: &Doc,
    state: &str,
) -> OpResult {
    let name = required(input, "Name", "name")?;
    let bus = bus_name(input, "EventBusName");
    let _control = events.control.lock().await;
    let rule = existing_rule(events, caller, &bus, name)?;
    let mut record = rule.record.clone();
    if !record.enabled() && state == "ENABLED" {
        // A re-enabled schedule counts from now, not from before.
        record.last_fired_ms = chrono::Utc::now().timestamp_millis();
    }
    record.state = state.to_string();
    events.save(record).await?;
    Ok(Doc::map())
}

fn list_rule_names_by_target(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let target = required(input, "TargetArn", "targetArn")?;
    let bus = bus_name(input, "EventBusName");
    let names: Vec<Doc> = events
        .state
        .read()
        .rules
        .get(&key(caller))
        .map(|rules| {
            rules
                .iter()
                .filter(|((b, _), r)| *b == bus && r.record.targets.iter().any(|t| t.arn == target))
                .map(|((_, n), _)| Doc::from(n.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let (names, next) = page(names, input)?;
    Ok(Doc::map()
        .with("RuleNames", Doc::List(names))
        .with_opt("NextToken", next))
}

// ---- targets ----

/// A target as given, checked as AWS checks it.
fn parse_target(doc: &Doc, index: usize) -> Result<Target, ServiceError> {
    let at = |member: &str| format!("targets.{index}.member.{member}");
    let target: Target = serde_json::from_value(doc.to_json())
        .map_err(|e| error::validation(format!("Parameter Targets is not valid. Reason: {e}")))?;
    if target.id.is_empty()
        || !target
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(error::constraint(&target.id, &at("id"), NAME_PATTERN));
    }
    if target.id.len() > 64 {
        return Err(error::constraint(&target.id, &at("id"), MAX_64));
    }
    let given = [
        target.input.is_some(),
        target.input_path.is_some(),
        target.input_transformer.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(error::validation(format!(
            "Only one of Input, InputPath, or InputTransformer must be provided for target {}.",
            target.id
        )));
    }
    if let Some(input) = &target.input {
        if serde_json::from_str::<Value>(input).is_err() {
            return Err(error::validation(format!(
                "Input for target {} must be valid JSON text.",
                target.id
            )));
        }
    }
    if let Some(transformer) = &target.input_transformer {
        if let Some(name) = transform::undefined_placeholder(
            &transformer.input_template,
            &transformer.input_paths_map,
        ) {
            return Err(error::validation(format!(
                "InputTemplate for target {} contains invalid placeholder {name}.",
                target.id
            )));
        }
    }
    // A FIFO queue needs a message group for what EventBridge sends it.
    if target.arn.starts_with("arn:aws:sqs:")
        && target.arn.ends_with(".fifo")
        && target.sqs_parameters.is_none()
    {
        return Err(error::validation(format!(
            "Parameter(s) SqsParameters must be specified for target: {}.",
            target.id
        )));
    }
    if let Some(policy) = &target.retry_policy {
        if policy.maximum_retry_attempts.is_some_and(|n| n > 185) {
            return Err(error::validation(
                "1 validation error detected: Value at 'targets.member.retryPolicy.maximumRetryAttempts' failed to satisfy constraint: Member must have value less than or equal to 185",
            ));
        }
        if policy
            .maximum_event_age_in_seconds
            .is_some_and(|n| !(60..=86_400).contains(&n))
        {
            return Err(error::validation(
                "1 validation error detected: Value at 'targets.member.retryPolicy.maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value between 60 and 86400",
            ));
        }
    }
    Ok(target)
}

async fn put_targets(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let name = required(input, "Rule", "rule")?;
    let bus = bus_name(input, "EventBusName");
    let given = input
        .get("Targets")
        .and_then(Doc::as_list)
        .unwrap_or_default();
    let targets = given
        .iter()
        .enumerate()
        .map(|(i, t)| parse_target(t, i + 1))
        .collect::<Result<Vec<_>, _>>()?;
    let _control = events.control.lock().await;
    let rule = existing_rule(events, caller, &bus, name)?;
    let mut record = rule.record.clone();
    for target in targets {
        match record.targets.iter_mut().find(|t| t.id == target.id) {
            Some(existing) => *existing = target,
            None => record.targets.push(target),
        }
    }
    if record.targets.len() > MAX_TARGETS {
        return Err(error::limit_exceeded());
    }
    events.save(record).await?;
    Ok(Doc::map()
        .with("FailedEntryCount", 0i64)
        .with("FailedEntries", Doc::List(Vec::new())))
}

async fn remove_targets(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let name = required(input, "Rule", "rule")?;
    let bus = bus_name(input, "EventBusName");
    let ids: Vec<&str> = input
        .get("Ids")
        .and_then(Doc::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Doc::as_str)
        .collect();
    let _control = events.control.lock().await;
    let rule = existing_rule(events, caller, &bus, name)?;
    let mut record = rule.record.clone();
    record.targets.retain(|t| !ids.contains(&t.id.as_str()));
    events.save(record).await?;
    Ok(Doc::map()
        .with("FailedEntryCount", 0i64)
        .with("FailedEntries", Doc::List(Vec::new())))
}

fn list_targets_by_rule(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let name = required(input, "Rule", "rule")?;
    let bus = bus_name(input, "EventBusName");
    let rule = existing_rule(events, caller, &bus, name)?;
    let targets = rule
        .record
        .targets
        .iter()
        .map(|t| serde_json::to_value(t).map(|v| Doc::from_json(&v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error::internal(e.to_string()))?;
    let (targets, next) = page(targets, input)?;
    Ok(Doc::map()
        .with("Targets", Doc::List(targets))
        .with_opt("NextToken", next))
}

// ---- events ----

/// An entry's failure, as PutEvents reports it in place.
fn entry_error(code: &str, message: impl Into<String>) -> Doc {
    Doc::map()
        .with("ErrorCode", code)
        .with("ErrorMessage", message.into())
}

/// AWS's size of an entry: Time (14 bytes), Source, DetailType, Detail and
/// Resources, in UTF-8 bytes.
fn entry_size(entry: &Doc) -> usize {
    let time = if entry.get("Time").is_some() { 14 } else { 0 };
    let texts: usize = ["Source", "DetailType", "Detail"]
        .iter()
        .filter_map(|m| text(entry, m))
        .map(str::len)
        .sum();
    let resources: usize = entry
        .get("Resources")
        .and_then(Doc::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Doc::as_str)
        .map(str::len)
        .sum();
    time + texts + resources
}

/// The entries as AWS's Java service prints them when refusing the list.
fn java_entries(entries: &[Doc]) -> String {
    let show = |entry: &Doc, member: &str| text(entry, member).unwrap_or("null").to_string();
    let items: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "PutEventsRequestEntry(time=null, source={}, resources=null, detailType={}, detail={}, eventBusName={}, traceHeader=null, kmsKeyIdentifier=null, internalMetadata=null)",
                show(e, "Source"),
                show(e, "DetailType"),
                show(e, "Detail"),
                show(e, "EventBusName"),
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}

async fn put_events(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let entries = input
        .get("Entries")
        .and_then(Doc::as_list)
        .unwrap_or_default();
    if entries.is_empty() {
        return Err(error::validation(
            "1 validation error detected: Value '[]' at 'entries' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    if entries.len() > MAX_ENTRIES {
        return Err(error::constraint(
            &java_entries(entries),
            "entries",
            "Member must have length less than or equal to 10",
        ));
    }
    if entries.iter().map(entry_size).sum::<usize>() > MAX_REQUEST_BYTES {
        return Err(error::validation(
            "Total size of the entries in the request is over the limit.",
        ));
    }
    let now = chrono::Utc::now();
    let mut results = Vec::with_capacity(entries.len());
    let mut deliveries = Vec::new();
    let mut failed = 0i64;
    for entry in entries {
        match accept_entry(events, caller, entry, now) {
            Ok((id, mut routed)) => {
                results.push(Doc::map().with("EventId", id));
                deliveries.append(&mut routed);
            }
            Err(doc) => {
                failed += 1;
                results.push(doc);
            }
        }
    }
    // Durable before the answer: what PutEvents accepted is never lost.
    events.enqueue(&deliveries).await?;
    Ok(Doc::map()
        .with("FailedEntryCount", failed)
        .with("Entries", Doc::List(results)))
}

/// One PutEvents entry: its id and deliveries, or its error entry.
fn accept_entry(
    events: &EventsService,
    caller: &Caller,
    entry: &Doc,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(String, Vec<crate::Delivery>), Doc> {
    let invalid = |member: &str, reason: &str| {
        entry_error(
            "InvalidArgument",
            format!("Parameter {member} is not valid. Reason: {reason}"),
        )
    };
    let source = text(entry, "Source")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("Source", "Source is a required argument."))?;
    let detail_type = text(entry, "DetailType")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("DetailType", "DetailType is a required argument."))?;
    let detail_text = text(entry, "Detail")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("Detail", "Detail is a required argument."))?;
    let detail = serde_json::from_str::<Value>(detail_text)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| entry_error("MalformedDetail", "Detail is malformed."))?;
    let bus = bus_name(entry, "EventBusName");
    if !events.bus_known(&caller.account_id, &caller.region, &bus) {
        return Err(entry_error(
            "ResourceNotFoundException",
            format!("Event bus {bus} does not exist."),
        ));
    }
    let time = entry
        .get("Time")
        .and_then(Doc::as_timestamp_ms)
        .and_then(chrono::DateTime::from_timestamp_millis)
        .unwrap_or(now);
    let resources = Doc::strings(entry.get("Resources"));
    let event = envelope(
        &caller.account_id,
        &caller.region,
        source,
        detail_type,
        resources,
        detail,
        time,
    );
    let id = event
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let routed = events.route(
        &caller.account_id,
        &caller.region,
        &bus,
        &event,
        now.timestamp_millis(),
    );
    Ok((id, routed))
}

fn test_event_pattern(input: &Doc) -> OpResult {
    let pattern = required(input, "EventPattern", "eventPattern")?;
    let event = required(input, "Event", "event")?;
    let pattern = Pattern::parse(pattern, Dialect::EventBridge)
        .map_err(|e| error::invalid_pattern(e.to_string()))?;
    let event: Value = serde_json::from_str(event)
        .ok()
        .filter(|e: &Value| {
            e.is_object()
                && ["id", "account", "source", "time", "region", "detail-type"]
                    .iter()
                    .all(|m| e.get(m).is_some())
        })
        .ok_or_else(|| error::validation("Parameter Event is not valid."))?;
    Ok(Doc::map().with("Result", pattern.matches(&event)))
}

// ---- tags ----

/// Which resource an ARN names: a bus (`None` rule) or a rule.
enum Tagged {
    Bus(String),
    Rule(String, String),
}

fn tagged(caller: &Caller, arn: &str) -> Result<Tagged, ServiceError> {
    let prefix = format!("arn:aws:events:{}:{}:", caller.region, caller.account_id);
    let rest = arn.strip_prefix(&prefix).ok_or_else(|| {
        error::validation(format!("Parameter ResourceARN is not valid. Reason: {arn}"))
    })?;
    if let Some(bus) = rest.strip_prefix("event-bus/") {
        return Ok(Tagged::Bus(bus.to_string()));
    }
    if let Some(rule) = rest.strip_prefix("rule/") {
        return Ok(match rule.split_once('/') {
            Some((bus, name)) => Tagged::Rule(bus.to_string(), name.to_string()),
            None => Tagged::Rule(DEFAULT_BUS.to_string(), rule.to_string()),
        });
    }
    Err(error::validation(format!(
        "Parameter ResourceARN is not valid. Reason: {arn}"
    )))
}

async fn change_tags(
    events: &EventsService,
    caller: &Caller,
    arn: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>),
) -> Result<(), ServiceError> {
    let _control = events.control.lock().await;
    match tagged(caller, arn)? {
        Tagged::Rule(bus, name) => {
            let rule = existing_rule(events, caller, &bus, &name)?;
            let mut record = rule.record.clone();
            change(&mut record.tags);
            events.save(record).await
        }
        Tagged::Bus(name) => {
            let Some(mut bus) = existing_bus(events, caller, &name)? else {
                // The default bus carries no tags in Strato.
                return Ok(());
            };
            change(&mut bus.tags);
            events.save(bus).await
        }
    }
}

async fn tag_resource(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let arn = required(input, "ResourceARN", "resourceARN")?;
    let tags = tags_of(input, "Tags");
    change_tags(events, caller, arn, |t| t.extend(tags)).await?;
    Ok(Doc::map())
}

async fn untag_resource(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let arn = required(input, "ResourceARN", "resourceARN")?;
    let keys = Doc::strings(input.get("TagKeys"));
    change_tags(events, caller, arn, |t| t.retain(|k, _| !keys.contains(k))).await?;
    Ok(Doc::map())
}

fn list_tags_for_resource(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let arn = required(input, "ResourceARN", "resourceARN")?;
    let tags = match tagged(caller, arn)? {
        Tagged::Rule(bus, name) => existing_rule(events, caller, &bus, &name)?
            .record
            .tags
            .clone(),
        Tagged::Bus(name) => existing_bus(events, caller, &name)?
            .map(|b| b.tags)
            .unwrap_or_default(),
    };
    Ok(Doc::map().with("Tags", Doc::tag_list(&tags)))
}
