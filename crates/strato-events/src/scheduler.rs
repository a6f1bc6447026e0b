//! EventBridge Scheduler (`aws scheduler`, REST-JSON): schedules and
//! schedule groups, fired by the same loop as scheduled rules.
//!
//! The front end maps each REST route onto an operation name and merges
//! the path's and query's members into the input under their model names
//! (`Name`, `GroupName`, `NamePrefix`, `State`, `MaxResults`, `NextToken`).

use std::sync::Arc;

use strato_model::wire::{Doc, OpResult, ServiceError};
use strato_model::Caller;

use crate::error::scheduler::{conflict, invalid_expression, not_found, validation};
use crate::error::unknown_operation;
use crate::operations::{key, text};
use crate::records::{self, GroupRecord, ScheduleRecord, Target};
use crate::schedule::{Flavor, Schedule};
use crate::{Delivery, EventsService, LiveSchedule};

const DEFAULT_GROUP: &str = "default";

pub(crate) async fn dispatch(
    events: &EventsService,
    caller: &Caller,
    operation: &str,
    input: Doc,
) -> OpResult {
    match operation {
        "CreateSchedule" => put_schedule(events, caller, &input, false).await,
        "UpdateSchedule" => put_schedule(events, caller, &input, true).await,
        "GetSchedule" => get_schedule(events, caller, &input),
        "DeleteSchedule" => delete_schedule(events, caller, &input).await,
        "ListSchedules" => list_schedules(events, caller, &input),
        "CreateScheduleGroup" => create_group(events, caller, &input).await,
        "GetScheduleGroup" => get_group(events, caller, &input),
        "DeleteScheduleGroup" => delete_group(events, caller, &input).await,
        "ListScheduleGroups" => list_groups(events, caller, &input),
        "TagResource" => tag_group(events, caller, &input).await,
        "UntagResource" => untag_group(events, caller, &input).await,
        "ListTagsForResource" => list_group_tags(events, caller, &input),
        _ => Err(unknown_operation(operation)),
    }
}

fn check_name(name: &str, member: &str) -> Result<(), ServiceError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(validation(format!(
            "1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9a-zA-Z-_.]+$"
        )))
    }
}

fn group_known(events: &EventsService, caller: &Caller, group: &str) -> bool {
    group == DEFAULT_GROUP
        || events
            .state
            .read()
            .groups
            .get(&key(caller))
            .is_some_and(|g| g.contains_key(group))
}

fn group_missing(group: &str) -> ServiceError {
    not_found(format!("Schedule group {group} does not exist."))
}

fn schedule_missing(name: &str) -> ServiceError {
    not_found(format!("Schedule {name} does not exist."))
}

fn existing(
    events: &EventsService,
    caller: &Caller,
    group: &str,
    name: &str,
) -> Option<Arc<LiveSchedule>> {
    events
        .state
        .read()
        .schedules
        .get(&key(caller))
        .and_then(|s| s.get(&(group.to_string(), name.to_string())))
        .cloned()
}

// Epoch seconds fit an f64 exactly for any date Scheduler will see.
#[allow(clippy::cast_precision_loss)]
fn timestamp(secs: i64) -> Doc {
    Doc::Timestamp(secs as f64)
}

/// Epoch milliseconds as a timestamp member.
#[allow(clippy::cast_precision_loss)]
fn ms_timestamp(ms: i64) -> Doc {
    Doc::Timestamp(ms as f64 / 1000.0)
}

async fn put_schedule(
    events: &EventsService,
    caller: &Caller,
    input: &Doc,
    update: bool,
) -> OpResult {
    let name = text(input, "Name").unwrap_or_default();
    check_name(name, "name")?;
    let group = text(input, "GroupName")
        .unwrap_or(DEFAULT_GROUP)
        .to_string();
    let expression = text(input, "ScheduleExpression")
        .ok_or_else(|| validation("ScheduleExpression is a required parameter."))?;
    let timezone = text(input, "ScheduleExpressionTimezone").map(str::to_string);
    let zone: chrono_tz::Tz = match &timezone {
        Some(tz) => tz
            .parse()
            .map_err(|_| validation(format!("Invalid ScheduleExpressionTimezone {tz}.")))?,
        None => chrono_tz::UTC,
    };
    if Schedule::parse(expression, Flavor::Scheduler, zone).is_none() {
        return Err(invalid_expression(expression));
    }
    let window = input
        .get("FlexibleTimeWindow")
        .ok_or_else(|| validation("FlexibleTimeWindow is a required parameter."))?
        .to_json();
    check_window(&window)?;
    let target_doc = input
        .get("Target")
        .ok_or_else(|| validation("Target is a required parameter."))?;
    let target: Target = serde_json::from_value(target_doc.to_json())
        .map_err(|e| validation(format!("Invalid Target: {e}")))?;
    if target.role_arn.is_none() {
        return Err(validation("Target.RoleArn is a required parameter."));
    }
    // Every message a FIFO queue takes goes in a message group.
    let message_group = target
        .sqs_parameters
        .as_ref()
        .and_then(|p| p.message_group_id.as_deref());
    let fifo_queue = target.arn.starts_with("arn:aws:sqs:") && target.arn.ends_with(".fifo");
    if fifo_queue && message_group.is_none() {
        return Err(validation(
            "Target.SqsParameters.MessageGroupId is required for a FIFO queue target.",
        ));
    }
    let state = match text(input, "State") {
        None => "ENABLED",
        Some(s @ ("ENABLED" | "DISABLED")) => s,
        Some(other) => return Err(validation(format!("Invalid State {other}."))),
    };
    let after = match text(input, "ActionAfterCompletion") {
        None => "NONE",
        Some(a @ ("NONE" | "DELETE")) => a,
        Some(other) => {
            return Err(validation(format!(
                "Invalid ActionAfterCompletion {other}."
            )))
        }
    };
    let _control = events.control.lock().await;
    if !group_known(events, caller, &group) {
        return Err(group_missing(&group));
    }
    let previous = existing(events, caller, &group, name);
    let client_token = text(input, "ClientToken").map(str::to_string);
    match (&previous, update) {
        // A retried CreateSchedule (same ClientToken) answers as the first.
        (Some(p), false) if client_token.is_some() && p.record.client_token == client_token => {
            return Ok(Doc::map().with("ScheduleArn", p.record.arn()));
        }
        (Some(_), false) => return Err(conflict(format!("Schedule {name} already exists."))),
        (None, true) => return Err(schedule_missing(name)),
        _ => {}
    }
    let now = chrono::Utc::now();
    let record = ScheduleRecord {
        account: caller.account_id.clone(),
        region: caller.region.clone(),
        group,
        name: name.to_string(),
        expression: expression.to_string(),
        timezone,
        state: state.to_string(),
        description: text(input, "Description").map(str::to_string),
        action_after_completion: after.to_string(),
        flexible_time_window: window,
        start_date_ms: input.get("StartDate").and_then(Doc::as_timestamp_ms),
        end_date_ms: input.get("EndDate").and_then(Doc::as_timestamp_ms),
        target,
        created: previous
            .as_ref()
            .map_or(now.timestamp(), |p| p.record.created),
        modified: now.timestamp(),
        last_fired_ms: now.timestamp_millis(),
        client_token,
    };
    let arn = record.arn();
    events.save(record).await?;
    Ok(Doc::map().with("ScheduleArn", arn))
}

/// `Mode` is `OFF` or `FLEXIBLE`; a flexible window is 1 to 1440 minutes.
fn check_window(window: &serde_json::Value) -> Result<(), ServiceError> {
    let minutes = window
        .get("MaximumWindowInMinutes")
        .and_then(serde_json::Value::as_i64);
    match window.get("Mode").and_then(serde_json::Value::as_str) {
        Some("OFF") => Ok(()),
        Some("FLEXIBLE") => match minutes {
            Some(1..=1440) => Ok(()),
            Some(n) => Err(validation(format!(
                "1 validation error detected: Value '{n}' at 'flexibleTimeWindow.maximumWindowInMinutes' failed to satisfy constraint: Member must have value between 1 and 1440"
            ))),
            None => Err(validation(
                "MaximumWindowInMinutes is required when Mode is FLEXIBLE.",
            )),
        },
        Some(other) => Err(validation(format!(
            "1 validation error detected: Value '{other}' at 'flexibleTimeWindow.mode' failed to satisfy constraint: Member must satisfy enum value set: [OFF, FLEXIBLE]"
        ))),
        None => Err(validation("FlexibleTimeWindow.Mode is a required parameter.")),
    }
}

fn target_doc(target: &Target) -> Doc {
    serde_json::to_value(target)
        .map(|v| Doc::from_json(&v))
        .unwrap_or_else(|_| Doc::map())
}

fn get_schedule(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let name = text(input, "Name").unwrap_or_default();
    let group = text(input, "GroupName").unwrap_or(DEFAULT_GROUP);
    let schedule = existing(events, caller, group, name).ok_or_else(|| schedule_missing(name))?;
    let r = &schedule.record;
    Ok(Doc::map()
        .with("ActionAfterCompletion", r.action_after_completion.as_str())
        .with("Arn", r.arn())
        .with("CreationDate", timestamp(r.created))
        .with_opt("Description", r.description.clone())
        .with_opt("EndDate", r.end_date_ms.map(ms_timestamp))
        .with(
            "FlexibleTimeWindow",
            Doc::from_json(&r.flexible_time_window),
        )
        .with("GroupName", r.group.as_str())
        .with("LastModificationDate", timestamp(r.modified))
        .with("Name", r.name.as_str())
        .with("ScheduleExpression", r.expression.as_str())
        .with_opt("ScheduleExpressionTimezone", r.timezone.clone())
        .with_opt("StartDate", r.start_date_ms.map(ms_timestamp))
        .with("State", r.state.as_str())
        .with("Target", target_doc(&r.target)))
}

async fn delete_schedule(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let name = text(input, "Name").unwrap_or_default();
    let group = text(input, "GroupName")
        .unwrap_or(DEFAULT_GROUP)
        .to_string();
    let _control = events.control.lock().await;
    let schedule = existing(events, caller, &group, name).ok_or_else(|| schedule_missing(name))?;
    events.remove(&schedule.record).await?;
    Ok(Doc::map())
}

/// One page of a listing: `MaxResults` (1 to 100, 100 when absent) items
/// from where `NextToken` (an offset) says.
fn paged(items: Vec<Doc>, input: &Doc) -> Result<(Vec<Doc>, Option<String>), ServiceError> {
    let start = match text(input, "NextToken") {
        None => 0,
        Some(token) => token
            .parse::<usize>()
            .map_err(|_| validation("The provided NextToken is not valid."))?,
    };
    let limit = match input.get("MaxResults").and_then(Doc::as_i64) {
        None => 100,
        Some(n @ 1..=100) => usize::try_from(n).unwrap_or(100),
        Some(n) => {
            return Err(validation(format!(
                "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value {}",
                if n < 1 { "greater than or equal to 1" } else { "less than or equal to 100" }
            )))
        }
    };
    let total = items.len();
    let taken: Vec<Doc> = items.into_iter().skip(start).take(limit).collect();
    let next = (start + taken.len() < total).then(|| (start + taken.len()).to_string());
    Ok((taken, next))
}

fn list_schedules(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let prefix = text(input, "NamePrefix").unwrap_or_default();
    let group = text(input, "GroupName");
    let state = text(input, "State");
    let items: Vec<Doc> = events
        .state
        .read()
        .schedules
        .get(&key(caller))
        .map(|s| {
            s.values()
                .map(|l| &l.record)
                .filter(|r| r.name.starts_with(prefix))
                .filter(|r| group.is_none_or(|g| r.group == g))
                .filter(|r| state.is_none_or(|s| r.state == s))
                .map(|r| {
                    Doc::map()
                        .with("Arn", r.arn())
                        .with("CreationDate", timestamp(r.created))
                        .with("GroupName", r.group.as_str())
                        .with("LastModificationDate", timestamp(r.modified))
                        .with("Name", r.name.as_str())
                        .with("State", r.state.as_str())
                        .with("Target", Doc::map().with("Arn", r.target.arn.as_str()))
                })
                .collect()
        })
        .unwrap_or_default();
    let (items, next) = paged(items, input)?;
    Ok(Doc::map()
        .with_opt("NextToken", next)
        .with("Schedules", Doc::List(items)))
}

async fn create_group(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let name = text(input, "Name").unwrap_or_default();
    check_name(name, "name")?;
    let _control = events.control.lock().await;
    if group_known(events, caller, name) {
        return Err(conflict(format!("Schedule group {name} already exists.")));
    }
    let tags = input
        .get("Tags")
        .and_then(Doc::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(|t| Some((text(t, "Key")?.to_string(), text(t, "Value")?.to_string())))
        .collect();
    let group = GroupRecord {
        account: caller.account_id.clone(),
        region: caller.region.clone(),
        name: name.to_string(),
        created: chrono::Utc::now().timestamp(),
        tags,
    };
    let arn = group.arn();
    events.save(group).await?;
    Ok(Doc::map().with("ScheduleGroupArn", arn))
}

fn group_doc(caller: &Caller, name: &str, created: i64) -> Doc {
    Doc::map()
        .with(
            "Arn",
            records::group_arn(&caller.region, &caller.account_id, name),
        )
        .with("CreationDate", timestamp(created))
        .with("LastModificationDate", timestamp(created))
        .with("Name", name)
        .with("State", "ACTIVE")
}

fn groups_of(events: &EventsService, caller: &Caller) -> Vec<(String, i64)> {
    let mut out = vec![(DEFAULT_GROUP.to_string(), events.started)];
    if let Some(groups) = events.state.read().groups.get(&key(caller)) {
        // A record of `default` holds only its tags.
        out.extend(
            groups
                .values()
                .filter(|g| g.name != DEFAULT_GROUP)
                .map(|g| (g.name.clone(), g.created)),
        );
    }
    out
}

fn get_group(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let name = text(input, "Name").unwrap_or_default();
    groups_of(events, caller)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(n, created)| group_doc(caller, &n, created))
        .ok_or_else(|| group_missing(name))
}

fn list_groups(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let prefix = text(input, "NamePrefix").unwrap_or_default();
    let items = groups_of(events, caller)
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(n, created)| group_doc(caller, &n, created))
        .collect();
    let (items, next) = paged(items, input)?;
    Ok(Doc::map()
        .with_opt("NextToken", next)
        .with("ScheduleGroups", Doc::List(items)))
}

async fn delete_group(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let name = text(input, "Name").unwrap_or_default();
    if name == DEFAULT_GROUP {
        return Err(validation("You cannot delete the default group."));
    }
    let _control = events.control.lock().await;
    if !group_known(events, caller, name) {
        return Err(group_missing(name));
    }
    let doomed: Vec<ScheduleRecord> = events
        .state
        .read()
        .schedules
        .get(&key(caller))
        .map(|s| {
            s.values()
                .filter(|l| l.record.group == name)
                .map(|l| l.record.clone())
                .collect()
        })
        .unwrap_or_default();
    for record in &doomed {
        events.remove(record).await?;
    }
    events
        .delete_doc(
            &caller.account_id,
            &caller.region,
            records::GROUP_KIND,
            name,
        )
        .await?;
    if let Some(groups) = events.state.write().groups.get_mut(&key(caller)) {
        groups.remove(name);
    }
    Ok(Doc::map())
}

/// The pattern a tagged resource's ARN must match: only schedule groups
/// take tags, schedules do not.
const TAGGABLE_ARN: &str =
    r"arn:aws(-[a-z]+)?:scheduler:[a-z0-9\-]+:\d{12}:schedule-group\/[0-9a-zA-Z-_.]+";

/// The caller's schedule group a tag operation's `ResourceArn` names (the
/// front end puts the path's ARN there), as a record to edit.
fn tagged_group(
    events: &EventsService,
    caller: &Caller,
    input: &Doc,
) -> Result<GroupRecord, ServiceError> {
    let arn = text(input, "ResourceArn").unwrap_or_default();
    let prefix = format!(
        "arn:aws:scheduler:{}:{}:schedule-group/",
        caller.region, caller.account_id
    );
    let name = arn
        .strip_prefix(&prefix)
        .filter(|name| records::valid_group_name(name));
    let shaped = records::arn_matches_group_pattern(arn);
    let Some(name) = name.filter(|_| shaped) else {
        if shaped {
            // Another account's or region's group: not one of the caller's.
            return Err(not_found(format!("Schedule group {arn} does not exist.")));
        }
        return Err(validation(format!(
            "1 validation error detected: Value '{arn}' at 'resourceArn' failed to satisfy constraint: Member must satisfy regular expression pattern: {TAGGABLE_ARN}"
        )));
    };
    if !group_known(events, caller, name) {
        return Err(group_missing(name));
    }
    let stored = events
        .state
        .read()
        .groups
        .get(&key(caller))
        .and_then(|g| g.get(name))
        .cloned();
    Ok(stored.unwrap_or_else(|| GroupRecord {
        account: caller.account_id.clone(),
        region: caller.region.clone(),
        name: name.to_string(),
        created: events.started,
        tags: std::collections::BTreeMap::new(),
    }))
}

/// TagResource (`POST /tags/{ResourceArn}`): adds or replaces tags.
async fn tag_group(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let tags = input
        .get("Tags")
        .and_then(Doc::as_list)
        .ok_or_else(|| validation("Tags is a required parameter."))?;
    let _control = events.control.lock().await;
    let mut group = tagged_group(events, caller, input)?;
    for tag in tags {
        let (Some(k), Some(v)) = (text(tag, "Key"), text(tag, "Value")) else {
            return Err(validation("Tag Key and Value are required parameters."));
        };
        group.tags.insert(k.to_string(), v.to_string());
    }
    if group.tags.len() > 200 {
        return Err(validation(
            "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 200",
        ));
    }
    events.save(group).await?;
    Ok(Doc::map())
}

/// UntagResource (`DELETE /tags/{ResourceArn}?TagKeys=...`).
async fn untag_group(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let keys: Vec<String> = match input.get("TagKeys") {
        Some(Doc::List(items)) => items
            .iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect(),
        Some(one) => one.as_str().map(str::to_string).into_iter().collect(),
        None => return Err(validation("TagKeys is a required parameter.")),
    };
    let _control = events.control.lock().await;
    let mut group = tagged_group(events, caller, input)?;
    for k in &keys {
        group.tags.remove(k);
    }
    events.save(group).await?;
    Ok(Doc::map())
}

/// ListTagsForResource (`GET /tags/{ResourceArn}`).
fn list_group_tags(events: &EventsService, caller: &Caller, input: &Doc) -> OpResult {
    let group = tagged_group(events, caller, input)?;
    Ok(Doc::map().with("Tags", Doc::tag_list(&group.tags)))
}

impl EventsService {
    /// Fires every enabled schedule that is due, once.
    pub(crate) async fn fire_due_schedules(&self) {
        let now = chrono::Utc::now();
        let now_ms = now.timestamp_millis();
        let in_window = |r: &ScheduleRecord| {
            r.start_date_ms.is_none_or(|s| s <= now_ms) && r.end_date_ms.is_none_or(|e| e >= now_ms)
        };
        let due: Vec<(Arc<LiveSchedule>, i64)> = {
            let state = self.state.read();
            state
                .schedules
                .values()
                .flat_map(|s| s.values())
                .filter(|l| l.record.state == "ENABLED" && in_window(&l.record))
                .filter_map(|l| {
                    let tick = l
                        .schedule
                        .as_ref()?
                        .next_after(l.record.last_fired_ms, self.time_scale)?;
                    (tick + self.flexible_offset_ms(&l.record, tick) <= now_ms)
                        .then(|| (l.clone(), tick))
                })
                .collect()
        };
        for (live, tick) in due {
            let r = &live.record;
            let scheduled = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(tick)
                .unwrap_or(now)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            let delivery = Delivery {
                account: r.account.clone(),
                region: r.region.clone(),
                source_arn: r.arn(),
                target: r.target.clone(),
                // Scheduler passes Input as it is.
                payload: r.target.input.clone().unwrap_or_else(|| "{}".into()),
                // What the dead-letter attributes name: this execution and
                // the tick it was for.
                event: serde_json::json!({
                    "id": uuid::Uuid::new_v4().to_string(),
                    "time": scheduled,
                }),
                principal: r.target.role_arn.clone().unwrap_or_default(),
                accepted_ms: now_ms,
            };
            if let Err(e) = self.enqueue(&[delivery]).await {
                tracing::warn!(error = %e.message, schedule = %r.name, "cannot fire a schedule");
                continue;
            }
            let _control = self.control.lock().await;
            let Some(current) = existing_by_key(self, r).filter(|c| Arc::ptr_eq(c, &live)) else {
                continue;
            };
            let one_time = current.schedule.as_ref().is_some_and(Schedule::is_one_time);
            let result = if one_time && current.record.action_after_completion == "DELETE" {
                self.remove(&current.record).await
            } else {
                let mut updated = current.record.clone();
                updated.last_fired_ms = now_ms;
                self.save(updated).await
            };
            if let Err(e) = result {
                tracing::warn!(error = %e.message, "cannot record a schedule's firing");
            }
        }
    }
}

impl EventsService {
    /// How long after `tick` a schedule with a `FLEXIBLE` time window fires:
    /// a moment inside `MaximumWindowInMinutes` (shortened by the time
    /// scale) drawn from the schedule's ARN and the tick, so it is random
    /// across schedules and ticks but the same after a restart, which
    /// therefore cannot fire a tick twice. `OFF`: at the tick.
    pub(crate) fn flexible_offset_ms(&self, record: &ScheduleRecord, tick: i64) -> i64 {
        let window = &record.flexible_time_window;
        if window.get("Mode").and_then(serde_json::Value::as_str) != Some("FLEXIBLE") {
            return 0;
        }
        let minutes = window
            .get("MaximumWindowInMinutes")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        let span = minutes * 60_000 / i64::from(self.time_scale);
        if span <= 0 {
            return 0;
        }
        let draw = fnv1a(format!("{}@{tick}", record.arn()).as_bytes());
        i64::try_from(draw % span.unsigned_abs()).unwrap_or(0)
    }
}

/// FNV-1a, 64 bits: a stable hash (std's `DefaultHasher` may change
/// between Rust releases, and a restart must draw the same moment).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn existing_by_key(events: &EventsService, r: &ScheduleRecord) -> Option<Arc<LiveSchedule>> {
    events
        .state
        .read()
        .schedules
        .get(&(r.account.clone(), r.region.clone()))
        .and_then(|s| s.get(&(r.group.clone(), r.name.clone())))
        .cloned()
}
