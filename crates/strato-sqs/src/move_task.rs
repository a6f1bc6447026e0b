//! Message move tasks: `StartMessageMoveTask` moves messages from a
//! dead-letter queue back to the queues they were sent to (or to a given
//! destination), at an optional rate. Tasks live in memory: a restart ends
//! a running task (its moved messages stay moved).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use parking_lot::Mutex;
use strato_model::wire::{Doc, OpResult};
use strato_queue::{NewMessage, QueueEngine};

use crate::message::MessageMeta;
use crate::operations::{required, text};
use crate::queue::{self, QueueRecord};
use crate::{error, SqsRequest, SqsService};

/// How long a task holds the messages it is moving.
const MOVE_LEASE: Duration = Duration::from_secs(60);
/// Messages moved per engine round trip.
const MOVE_BATCH: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    Completed,
    Cancelled,
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Completed => "COMPLETED",
            Status::Cancelled => "CANCELLED",
            Status::Failed => "FAILED",
        }
    }
}

struct MoveTask {
    handle: String,
    source_arn: String,
    destination_arn: Option<String>,
    rate: Option<i64>,
    started_ms: i64,
    to_move: u64,
    moved: AtomicU64,
    cancel: AtomicBool,
    status: Mutex<(Status, Option<String>)>,
}

/// Every move task this server ran, newest last.
#[derive(Default)]
pub struct MoveTasks {
    tasks: Mutex<Vec<Arc<MoveTask>>>,
}

pub(crate) async fn start(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let source_arn = required(input, "SourceArn")?;
    let not_found = |parameter: &str| {
        error::resource_not_found(format!(
            "The resource that you specified for the {parameter} parameter doesn't exist."
        ))
    };
    let source = sqs
        .queue_by_arn(source_arn)
        .filter(|q| q.account == request.caller.account_id)
        .ok_or_else(|| not_found("SourceArn"))?;
    let destination_arn = text(input, "DestinationArn").map(str::to_string);
    if let Some(arn) = &destination_arn {
        sqs.queue_by_arn(arn)
            .filter(|q| q.account == request.caller.account_id)
            .ok_or_else(|| not_found("DestinationArn"))?;
    }
    let is_dead_letter_queue = sqs
        .queues_of(&source.account, &source.region)
        .iter()
        .any(|q| {
            q.redrive_policy()
                .is_some_and(|p| p.dead_letter_target_arn == source.arn())
        });
    if !is_dead_letter_queue {
        return Err(error::invalid_parameter_value(
            "Source queue must be configured as a Dead Letter Queue.",
        ));
    }
    let rate = match input.get("MaxNumberOfMessagesPerSecond") {
        Some(value) => Some(
            value
                .as_i64()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| {
                    error::invalid_parameter_value(
                        "Value for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: Must be between 1 and 500.",
                    )
                })?,
        ),
        None => None,
    };
    let counts = sqs
        .engine
        .counts(&source.engine_name())
        .map_err(|e| error::internal(e.to_string()))?;
    let task = {
        let mut tasks = sqs.moves.tasks.lock();
        if tasks
            .iter()
            .any(|t| t.source_arn == source_arn && t.status.lock().0 == Status::Running)
        {
            return Err(error::invalid_parameter_value(
                "There is already a task running. Only one active task is allowed for a source queue arn at a given time.",
            ));
        }
        let handle = base64::engine::general_purpose::STANDARD.encode(
            serde_json::json!({"taskId": uuid::Uuid::new_v4().to_string(), "sourceArn": source_arn})
                .to_string(),
        );
        let task = Arc::new(MoveTask {
            handle,
            source_arn: source_arn.to_string(),
            destination_arn,
            rate,
            started_ms: chrono::Utc::now().timestamp_millis(),
            to_move: counts.visible + counts.in_flight + counts.delayed,
            moved: AtomicU64::new(0),
            cancel: AtomicBool::new(false),
            status: Mutex::new((Status::Running, None)),
        });
        tasks.push(task.clone());
        task
    };
    let destinations: Vec<Arc<QueueRecord>> = sqs.queues_of(&source.account, &source.region);
    tokio::spawn(run(sqs.engine.clone(), source, destinations, task.clone()));
    Ok(Doc::map().with("TaskHandle", task.handle.as_str()))
}

async fn run(
    engine: Arc<dyn QueueEngine>,
    source: Arc<QueueRecord>,
    queues: Vec<Arc<QueueRecord>>,
    task: Arc<MoveTask>,
) {
    let outcome = move_all(engine.as_ref(), &source, &queues, &task).await;
    let mut status = task.status.lock();
    *status = match outcome {
        Ok(()) if task.cancel.load(Ordering::Relaxed) => (Status::Cancelled, None),
        Ok(()) => (Status::Completed, None),
        Err(reason) => (Status::Failed, Some(reason)),
    };
}

async fn move_all(
    engine: &dyn QueueEngine,
    source: &QueueRecord,
    queues: &[Arc<QueueRecord>],
    task: &MoveTask,
) -> Result<(), String> {
    let source_name = source.engine_name();
    let batch = task
        .rate
        .and_then(|r| usize::try_from(r).ok())
        .map_or(MOVE_BATCH, |r| r.min(MOVE_BATCH));
    while !task.cancel.load(Ordering::Relaxed) {
        let started = tokio::time::Instant::now();
        let received = engine
            .receive(&source_name, batch, MOVE_LEASE, Duration::ZERO)
            .await
            .map_err(|e| e.to_string())?;
        if received.is_empty() {
            return Ok(());
        }
        for message in received {
            let meta = MessageMeta::decode(&message.metadata).unwrap_or_default();
            let destination = match &task.destination_arn {
                Some(arn) => queues.iter().find(|q| q.arn() == *arn),
                None => queues.iter().find(|q| q.name == meta.origin),
            }
            .ok_or_else(|| {
                format!(
                    "The destination queue of message {} does not exist.",
                    message.message_id
                )
            })?;
            engine
                .send(
                    &destination.engine_name(),
                    vec![NewMessage {
                        body: message.body.clone(),
                        metadata: message.metadata.clone(),
                        delay: Duration::ZERO,
                        group_id: message.group_id.clone(),
                        dedup_id: message.dedup_id.clone(),
                    }],
                )
                .await
                .map_err(|e| e.to_string())?;
            engine
                .delete(&source_name, std::slice::from_ref(&message.receipt_handle))
                .await
                .map_err(|e| e.to_string())?;
            task.moved.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(rate) = task.rate.and_then(|r| u32::try_from(r).ok()) {
            // `batch` messages per second at most.
            let per_batch =
                Duration::from_secs(1) * u32::try_from(batch).unwrap_or(1) / rate.max(1);
            tokio::time::sleep_until(started + per_batch).await;
        }
    }
    Ok(())
}

pub(crate) fn list(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let source_arn = required(input, "SourceArn")?;
    let owned = queue::parse_arn(source_arn)
        .is_some_and(|(_, account, _)| account == request.caller.account_id);
    if !owned || sqs.queue_by_arn(source_arn).is_none() {
        return Err(error::resource_not_found(
            "The resource that you specified for the SourceArn parameter doesn't exist.",
        ));
    }
    let max = match input.get("MaxResults") {
        Some(v) => v.as_i64().filter(|n| (1..=10).contains(n)).ok_or_else(|| {
            error::invalid_parameter_value(
                "Value for parameter MaxResults is invalid. Reason: Must be between 1 and 10.",
            )
        })?,
        None => 1,
    };
    let tasks = sqs.moves.tasks.lock();
    let results: Vec<Doc> = tasks
        .iter()
        .rev()
        .filter(|t| t.source_arn == source_arn)
        .take(usize::try_from(max).unwrap_or(1))
        .map(|t| {
            let (status, reason) = t.status.lock().clone();
            Doc::map()
                .with_opt(
                    "TaskHandle",
                    (status == Status::Running).then(|| t.handle.clone()),
                )
                .with("Status", status.as_str())
                .with("SourceArn", t.source_arn.as_str())
                .with_opt("DestinationArn", t.destination_arn.clone())
                .with_opt("MaxNumberOfMessagesPerSecond", t.rate)
                .with(
                    "ApproximateNumberOfMessagesMoved",
                    t.moved.load(Ordering::Relaxed),
                )
                .with("ApproximateNumberOfMessagesToMove", t.to_move)
                .with_opt("FailureReason", reason)
                .with("StartedTimestamp", t.started_ms)
        })
        .collect();
    Ok(Doc::map().with("Results", results))
}

pub(crate) fn cancel(sqs: &SqsService, request: SqsRequest<'_>, input: &Doc) -> OpResult {
    let handle = required(input, "TaskHandle")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(handle)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .ok_or_else(|| {
            error::invalid_parameter_value("Value for parameter TaskHandle is invalid.")
        })?;
    let source = decoded
        .get("sourceArn")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let owned = queue::parse_arn(source)
        .is_some_and(|(_, account, _)| account == request.caller.account_id);
    let tasks = sqs.moves.tasks.lock();
    let task = tasks
        .iter()
        .find(|t| t.handle == handle && owned)
        .ok_or_else(|| error::resource_not_found("Task does not exist."))?;
    if task.status.lock().0 != Status::Running {
        return Err(error::resource_not_found("Task does not exist."));
    }
    task.cancel.store(true, Ordering::Relaxed);
    Ok(Doc::map().with(
        "ApproximateNumberOfMessagesMoved",
        task.moved.load(Ordering::Relaxed),
    ))
}
