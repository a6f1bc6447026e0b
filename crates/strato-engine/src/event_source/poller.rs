//! The pollers of SQS event source mappings.
//!
//! Why over 800 lines: about 630 of them are the unit tests of the poller's
//! rules against a fake queue and function; the poller itself is under 610.
//!
//! Each enabled mapping runs a supervisor task and a set of batch workers.
//! A worker long-polls the queue (up to 10 messages a receive), gathers a
//! batch of up to `BatchSize` within `MaximumBatchingWindowInSeconds` and
//! the 6 MB payload limit, drops (deletes) the messages no filter accepts,
//! invokes the function synchronously with the rest, and deletes what the
//! answer lets go: everything on success, nothing on a function error (the
//! messages reappear after the queue's visibility timeout, so its redrive
//! policy moves poison messages to the dead-letter queue), all but the
//! reported failures with `ReportBatchItemFailures`.
//!
//! Scaling follows AWS: a mapping starts with five concurrent batches;
//! while receives come back full the supervisor adds one worker per
//! [`PollerSettings::scale_step`] (300 a minute), never beyond
//! `ScalingConfig.MaximumConcurrency` nor the function's reserved
//! concurrency; a worker whose receive comes back empty retires while more
//! than the initial five run. An idle mapping costs its workers' long
//! polls, nothing more.
//!
//! Lambda polls with the function's execution role: every poll round
//! starts by asking whether the role may (still) call what polling calls
//! ([`BatchTarget::role_refusal`], an in-memory decision). While it may
//! not, the round receives nothing, so the messages stay in the queue, and
//! the mapping's `LastProcessingResult` carries AWS's refusal; the worker
//! backs off as after an empty receive. A throttled batch is held and retried with back-off
//! until its messages' lease is about to run out.
//!
//! FIFO order per message group comes from the queue, which leases a group
//! to one receiver at a time; a batch keeps each group's records in order,
//! and [`super::batch::deletable`] keeps a group's messages after its first
//! failure.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::batch::{self, BatchVerdict};
use super::running::Supervisors;
use super::{SqsQueues, SqsRecord, SqsSourceError};

/// A receive returns at most this many messages.
const MAX_RECEIVE: usize = 10;

/// What a mapping's pollers run, taken from the mapping record.
#[derive(Clone)]
pub struct PollerSpec {
    pub uuid: String,
    pub account: String,
    pub region: String,
    /// The queue (or stream) the mapping reads.
    pub source_arn: String,
    pub function: String,
    /// The version or alias the mapping invokes.
    pub qualifier: Option<String>,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub report_batch_item_failures: bool,
    pub maximum_concurrency: Option<u32>,
    /// `None` when the mapping has no `FilterCriteria`.
    pub filter: Option<Arc<dyn RecordFilter>>,
}

impl std::fmt::Debug for PollerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollerSpec")
            .field("uuid", &self.uuid)
            .field("source_arn", &self.source_arn)
            .field("function", &self.function)
            .field("qualifier", &self.qualifier)
            .field("batch_size", &self.batch_size)
            .field("batching_window", &self.batching_window)
            .field("filtered", &self.filter.is_some())
            .finish()
    }
}

/// A mapping's `FilterCriteria`: implemented above the engine with the
/// pattern engine, so the engine needs no pattern language.
pub trait RecordFilter: Send + Sync + 'static {
    /// Whether any filter accepts the record (Lambda's SQS record, its
    /// `body` already decoded when it is JSON).
    fn accepts(&self, record: &serde_json::Value) -> bool;
}

/// What a batch's invocation answered.
#[derive(Debug, Clone)]
pub struct BatchResponse {
    pub payload: Bytes,
    /// The function failed (an error, a timeout, a crash).
    pub function_error: bool,
    /// The version that ran (`$LATEST`, or the number an alias chose).
    pub executed_version: String,
}

/// Why a batch did not run.
#[derive(Debug, thiserror::Error)]
pub enum BatchInvokeError {
    /// No concurrency left for the function (429): held and retried.
    #[error("the function is throttled")]
    Throttled,
    /// The function cannot run now (deleted, not active, the server is
    /// stopping): the messages are left to reappear.
    #[error("{0}")]
    Unavailable(String),
}

/// Runs a mapping's batches: implemented by the engine (resolving the
/// function as asynchronous invocation does), and by fakes in tests.
#[async_trait::async_trait]
pub trait BatchTarget: Send + Sync + 'static {
    /// Invokes the mapping's function synchronously with `event`.
    async fn invoke(
        &self,
        spec: &PollerSpec,
        event: Bytes,
    ) -> Result<BatchResponse, BatchInvokeError>;
    /// The function's reserved concurrency, when it has one: no more
    /// batches than that run at once.
    fn reserved_concurrency(&self, spec: &PollerSpec) -> Option<u32>;
    /// AWS's sentence when the function's execution role may not poll the
    /// mapping's source (a stream when `is_stream`) now
    /// ([`super::role_refusal`]), or `None` when it may (always, when IAM
    /// is not enforced). Asked once per poll round, before anything is
    /// read.
    async fn role_refusal(&self, spec: &PollerSpec, is_stream: bool) -> Option<String>;
}

/// How the pollers are tuned; [`PollerSettings::default`] is AWS's.
#[derive(Debug, Clone, Copy)]
pub struct PollerSettings {
    /// A receive waits this long for a first message.
    pub long_poll: Duration,
    /// Concurrent batches a mapping starts with, and keeps while idle.
    pub initial_concurrency: usize,
    /// One more concurrent batch per step while messages wait.
    pub scale_step: Duration,
    /// Back-off after a throttle, doubling up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for PollerSettings {
    fn default() -> Self {
        PollerSettings {
            long_poll: Duration::from_secs(20),
            initial_concurrency: 5,
            // 300 a minute.
            scale_step: Duration::from_millis(200),
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// The running mappings.
pub struct SqsPollers {
    queues: Arc<dyn SqsQueues>,
    target: Arc<dyn BatchTarget>,
    settings: PollerSettings,
    running: Supervisors<PollerSpec>,
    /// Why each mapping whose role may not poll its queue reads nothing.
    problems: Problems,
}

/// `LastProcessingResult` of the mappings whose role may not poll, by UUID.
type Problems = Arc<parking_lot::Mutex<HashMap<String, String>>>;

impl SqsPollers {
    pub fn new(
        queues: Arc<dyn SqsQueues>,
        target: Arc<dyn BatchTarget>,
        settings: PollerSettings,
    ) -> Arc<SqsPollers> {
        Arc::new(SqsPollers {
            queues,
            target,
            settings,
            running: Supervisors::new(),
            problems: Problems::default(),
        })
    }

    /// The queues mappings poll (the control plane checks them too).
    pub fn queues(&self) -> &Arc<dyn SqsQueues> {
        &self.queues
    }

    /// Starts polling for a mapping, or hands a running one its new
    /// settings (its workers take them at their next batch).
    pub fn run(&self, spec: PollerSpec) {
        let uuid = spec.uuid.clone();
        self.running.run(&uuid, spec, |spec, stop| {
            let mapping = Mapping {
                queues: self.queues.clone(),
                target: self.target.clone(),
                settings: self.settings,
                spec,
                stop,
                workers: Arc::new(WorkerCount::default()),
                backlog: Arc::new(Notify::new()),
                problems: self.problems.clone(),
                refused: Arc::new(AtomicBool::new(false)),
            };
            tokio::spawn(mapping.supervise())
        });
    }

    /// Stops a mapping's pollers: no receive starts after this is called,
    /// waiting receives end, and batches being invoked finish (and delete
    /// what they processed) before it returns.
    pub async fn stop(&self, uuid: &str) {
        self.running.stop(uuid).await;
        self.problems.lock().remove(uuid);
    }

    /// A running mapping's `LastProcessingResult` while its function's
    /// role may not poll its queue (AWS's refusal, after `PROBLEM: `).
    pub fn problem(&self, uuid: &str) -> Option<String> {
        self.problems.lock().get(uuid).cloned()
    }

    /// Whether a mapping's pollers run.
    pub fn is_running(&self, uuid: &str) -> bool {
        self.running.is_running(uuid)
    }

    /// Stops every mapping (server shutdown): all are told at once, then
    /// their batches in flight are waited for.
    pub async fn stop_all(&self) {
        self.running.stop_all().await;
    }
}

/// How many workers a mapping runs.
#[derive(Default)]
struct WorkerCount(AtomicUsize);

impl WorkerCount {
    fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    fn add(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    /// Takes one worker off the count if more than `floor` run.
    fn retire_above(&self, floor: usize) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n > floor).then(|| n - 1)
            })
            .is_ok()
    }

    fn remove(&self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One mapping's shared state, cloned into its supervisor and workers.
#[derive(Clone)]
struct Mapping {
    queues: Arc<dyn SqsQueues>,
    target: Arc<dyn BatchTarget>,
    settings: PollerSettings,
    spec: watch::Receiver<Arc<PollerSpec>>,
    stop: watch::Receiver<bool>,
    workers: Arc<WorkerCount>,
    /// A worker saw more messages waiting than it took.
    backlog: Arc<Notify>,
    problems: Problems,
    /// The last poll round found the role refused (the problem is set).
    refused: Arc<AtomicBool>,
}

/// What woke a mapping's supervisor.
enum SupervisorEvent {
    Backlog,
    WorkerEnded(Result<(), tokio::task::JoinError>),
}

/// A gathered batch.
struct Gathered {
    records: Vec<SqsRecord>,
    /// A receive came back with all it asked for: more are waiting.
    backlog: bool,
}

impl Mapping {
    /// The most batches that may run at once now.
    fn cap(&self) -> usize {
        let spec = self.spec.borrow().clone();
        let maximum = spec.maximum_concurrency.map_or(usize::MAX, |n| n as usize);
        let reserved = self
            .target
            .reserved_concurrency(&spec)
            .map_or(usize::MAX, |n| n as usize);
        maximum.min(reserved).max(1)
    }

    /// Workers kept while the queue is idle.
    fn floor(&self) -> usize {
        self.settings.initial_concurrency.min(self.cap()).max(1)
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    async fn supervise(self) {
        let mut workers = JoinSet::new();
        for _ in 0..self.floor() {
            self.spawn_worker(&mut workers);
        }
        let mut stop = self.stop.clone();
        let backlog = self.backlog.clone();
        let mut next_growth = tokio::time::Instant::now() + self.settings.scale_step;
        loop {
            let event = tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => break,
                _ = backlog.notified() => SupervisorEvent::Backlog,
                Some(ended) = workers.join_next() => SupervisorEvent::WorkerEnded(ended),
            };
            match event {
                SupervisorEvent::Backlog => {
                    if self.workers.get() >= self.cap() {
                        continue;
                    }
                    let wait = next_growth.saturating_duration_since(tokio::time::Instant::now());
                    if pause(&self.stop, wait).await {
                        break;
                    }
                    if self.workers.get() < self.cap() {
                        self.spawn_worker(&mut workers);
                        next_growth = tokio::time::Instant::now() + self.settings.scale_step;
                    }
                }
                SupervisorEvent::WorkerEnded(ended) => {
                    if let Err(e) = ended {
                        tracing::warn!(error = %e, "a mapping's batch worker ended abnormally");
                    }
                    if workers.is_empty() && !self.stopped() {
                        self.spawn_worker(&mut workers);
                    }
                }
            }
        }
        while workers.join_next().await.is_some() {}
    }

    fn spawn_worker(&self, workers: &mut JoinSet<()>) {
        self.workers.add();
        workers.spawn(self.clone().work());
    }

    async fn work(self) {
        let mut carried = Vec::new();
        let mut failures = self.settings.first_backoff;
        loop {
            if self.stopped() {
                break;
            }
            let spec = self.spec.borrow().clone();
            if !self.may_poll(&spec).await {
                // Nothing is received: the messages stay in the queue for
                // when the role may poll again. Backs off as an empty
                // receive would.
                if self.workers.retire_above(self.floor()) {
                    return;
                }
                if self.pause(self.settings.first_backoff).await {
                    break;
                }
                continue;
            }
            let mut stop = self.stop.clone();
            let gathered = tokio::select! {
                gathered = self.gather(&spec, &mut carried) => gathered,
                _ = stop.wait_for(|stopped| *stopped) => break,
            };
            let gathered = match gathered {
                Ok(gathered) => gathered,
                Err(e) => {
                    tracing::warn!(mapping = %spec.uuid, queue = %spec.source_arn, error = %e, "cannot receive from the mapping's queue");
                    if self.pause(failures).await {
                        break;
                    }
                    failures = (failures * 2).min(self.settings.max_backoff);
                    continue;
                }
            };
            failures = self.settings.first_backoff;
            if gathered.records.is_empty() {
                if self.workers.retire_above(self.floor()) {
                    return;
                }
                continue;
            }
            if gathered.backlog || !carried.is_empty() {
                self.backlog.notify_one();
            }
            if let BatchEnd::Unavailable = self.process(&spec, gathered.records).await {
                // The function cannot run: wait before taking more
                // messages, so they are not churned into the DLQ.
                if self.pause(self.settings.max_backoff).await {
                    break;
                }
            }
            // A worker above the cap (the cap shrank) retires.
            if self.workers.get() > self.cap() && self.workers.retire_above(self.cap()) {
                return;
            }
        }
        self.workers.remove();
    }

    /// Whether the function's execution role may poll the queue now, as
    /// AWS's pollers act with it; while it may not, the mapping's
    /// `LastProcessingResult` says why.
    async fn may_poll(&self, spec: &PollerSpec) -> bool {
        match self.target.role_refusal(spec, false).await {
            None => {
                if self.refused.swap(false, Ordering::AcqRel) {
                    self.problems.lock().remove(&spec.uuid);
                }
                true
            }
            Some(refusal) => {
                tracing::warn!(mapping = %spec.uuid, queue = %spec.source_arn, reason = %refusal, "the function's role may not poll the mapping's queue");
                self.refused.store(true, Ordering::Release);
                self.problems
                    .lock()
                    .insert(spec.uuid.clone(), format!("PROBLEM: {refusal}"));
                false
            }
        }
    }

    /// Sleeps for `pause`; true when the mapping stopped meanwhile.
    async fn pause(&self, duration: Duration) -> bool {
        pause(&self.stop, duration).await
    }

    /// Receives until the batch is full, its window closed, or the next
    /// record would pass the payload limit (that one and any after it are
    /// carried into the next batch).
    async fn gather(
        &self,
        spec: &PollerSpec,
        carried: &mut Vec<SqsRecord>,
    ) -> Result<Gathered, SqsSourceError> {
        let mut records: Vec<SqsRecord> = Vec::new();
        let mut bytes = 0;
        let mut backlog = false;
        let mut window_ends = None;
        let mut pending: Vec<SqsRecord> = std::mem::take(carried);
        loop {
            for record in pending.drain(..) {
                let size = batch::record_size(&record.record);
                let over_size = batch::event_size(bytes + size) > batch::MAX_BATCH_PAYLOAD;
                if records.len() >= spec.batch_size || (over_size && !records.is_empty()) {
                    carried.push(record);
                    continue;
                }
                bytes += size;
                records.push(record);
            }
            if !carried.is_empty() || records.len() >= spec.batch_size {
                break;
            }
            let wait = match window_ends {
                None if records.is_empty() => self.settings.long_poll,
                None => {
                    let ends = tokio::time::Instant::now() + spec.batching_window;
                    window_ends = Some(ends);
                    spec.batching_window
                }
                Some(ends) => ends.saturating_duration_since(tokio::time::Instant::now()),
            };
            if !records.is_empty() && wait.is_zero() {
                break;
            }
            let want = MAX_RECEIVE.min(spec.batch_size - records.len());
            let received = self.queues.receive(&spec.source_arn, want, wait).await?;
            if received.len() >= want {
                backlog = true;
            }
            if received.is_empty() && records.is_empty() {
                break;
            }
            pending = received;
        }
        Ok(Gathered { records, backlog })
    }

    /// Filters, invokes and settles one batch.
    async fn process(&self, spec: &PollerSpec, records: Vec<SqsRecord>) -> BatchEnd {
        let leased_at = tokio::time::Instant::now();
        let records = match &spec.filter {
            None => records,
            Some(filter) => {
                let (accepted, dropped): (Vec<SqsRecord>, Vec<SqsRecord>) = records
                    .into_iter()
                    .partition(|r| filter.accepts(&filterable(&r.record)));
                let handles: Vec<String> = dropped.into_iter().map(|r| r.receipt_handle).collect();
                self.delete(spec, &handles).await;
                if accepted.is_empty() {
                    return BatchEnd::Settled;
                }
                accepted
            }
        };
        let Some(facts) = self.queues.queue(&spec.source_arn) else {
            return BatchEnd::Unavailable;
        };
        let lease_ends = leased_at + facts.visibility_timeout;
        let event = batch::sqs_event(&records);
        let mut backoff = self.settings.first_backoff;
        let response = loop {
            match self.target.invoke(spec, event.clone()).await {
                Ok(response) => break response,
                Err(BatchInvokeError::Throttled) => {
                    if tokio::time::Instant::now() + backoff >= lease_ends {
                        tracing::info!(mapping = %spec.uuid, "a throttled batch's lease ran out; its messages return to the queue");
                        return BatchEnd::Settled;
                    }
                    // Held through the back-off even when the mapping is
                    // disabled meanwhile: its messages stay leased and
                    // reappear if it ends here.
                    if self.pause(backoff).await {
                        return BatchEnd::Settled;
                    }
                    backoff = (backoff * 2).min(self.settings.max_backoff);
                }
                Err(BatchInvokeError::Unavailable(why)) => {
                    tracing::warn!(mapping = %spec.uuid, function = %spec.function, reason = %why, "a batch could not run; its messages return to the queue");
                    return BatchEnd::Unavailable;
                }
            }
        };
        if response.function_error {
            return BatchEnd::Settled;
        }
        let failed = if spec.report_batch_item_failures {
            match batch::read_batch_item_failures(
                &response.payload,
                records.iter().map(|r| r.message_id.as_str()),
            ) {
                BatchVerdict::AllSucceeded => Default::default(),
                BatchVerdict::AllFailed => return BatchEnd::Settled,
                BatchVerdict::Failed(ids) => ids,
            }
        } else {
            Default::default()
        };
        let handles = batch::deletable(&records, &failed, facts.fifo);
        self.delete(spec, &handles).await;
        BatchEnd::Settled
    }

    async fn delete(&self, spec: &PollerSpec, handles: &[String]) {
        if handles.is_empty() {
            return;
        }
        if let Err(e) = self.queues.delete(&spec.source_arn, handles).await {
            tracing::warn!(mapping = %spec.uuid, error = %e, "processed messages could not be deleted; they will be delivered again");
        }
    }
}

/// Sleeps for `duration`; true when `stop` was raised meanwhile.
pub(super) async fn pause(stop: &watch::Receiver<bool>, duration: Duration) -> bool {
    let mut watched = stop.clone();
    let slept = tokio::select! {
        _ = tokio::time::sleep(duration) => true,
        _ = watched.wait_for(|stopped| *stopped) => false,
    };
    !slept || *stop.borrow()
}

/// How a batch ended.
enum BatchEnd {
    /// Deleted what could be; the rest reappears after its lease.
    Settled,
    /// The function (or queue) could not be reached.
    Unavailable,
}

/// The record as filters see it: a JSON `body` is matched as JSON, any
/// other body as the string it is.
fn filterable(record: &serde_json::Value) -> serde_json::Value {
    let mut out = record.clone();
    if let Some(body) = record.get("body").and_then(serde_json::Value::as_str) {
        if let Ok(parsed) = serde_json::from_str::<serde_json::Value>(body) {
            if parsed.is_object() || parsed.is_array() {
                out["body"] = parsed;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};
    use std::sync::atomic::AtomicUsize;

    use serde_json::{json, Value};
    use tokio::time::Instant;

    use super::*;
    use crate::event_source::SqsQueueFacts;

    const QUEUE: &str = "arn:aws:sqs:us-east-1:111111111111:jobs";

    /// An in-memory queue with leases, per-group FIFO leasing and long polls.
    struct FakeQueue {
        fifo: bool,
        visibility: Duration,
        state: parking_lot::Mutex<FakeState>,
        arrived: Notify,
        receives: AtomicUsize,
    }

    #[derive(Default)]
    struct FakeState {
        next: u64,
        messages: BTreeMap<u64, FakeMessage>,
        deleted: Vec<String>,
    }

    struct FakeMessage {
        id: String,
        group: Option<String>,
        body: String,
        visible_at: Instant,
        receives: u32,
    }

    impl FakeQueue {
        fn new(fifo: bool, visibility: Duration) -> Arc<FakeQueue> {
            Arc::new(FakeQueue {
                fifo,
                visibility,
                state: parking_lot::Mutex::new(FakeState::default()),
                arrived: Notify::new(),
                receives: AtomicUsize::new(0),
            })
        }

        fn send(&self, id: &str, group: Option<&str>, body: &str) {
            let mut state = self.state.lock();
            let seq = state.next;
            state.next += 1;
            state.messages.insert(
                seq,
                FakeMessage {
                    id: id.into(),
                    group: group.map(str::to_string),
                    body: body.into(),
                    visible_at: Instant::now(),
                    receives: 0,
                },
            );
            drop(state);
            self.arrived.notify_waiters();
        }

        fn remaining(&self) -> usize {
            self.state.lock().messages.len()
        }

        fn deleted(&self) -> Vec<String> {
            self.state.lock().deleted.clone()
        }

        fn take(&self, max: usize) -> Vec<SqsRecord> {
            let now = Instant::now();
            let mut state = self.state.lock();
            let busy_groups: HashSet<String> = state
                .messages
                .values()
                .filter(|m| m.visible_at > now)
                .filter_map(|m| m.group.clone())
                .collect();
            let mut out = Vec::new();
            for m in state.messages.values_mut() {
                if out.len() >= max {
                    break;
                }
                if m.visible_at > now {
                    continue;
                }
                // FIFO: a group with a leased message is not handed out.
                if self.fifo && busy_groups.contains(&m.group.clone().unwrap_or_default()) {
                    continue;
                }
                m.receives += 1;
                m.visible_at = now + self.visibility;
                out.push(SqsRecord {
                    message_id: m.id.clone(),
                    receipt_handle: format!("{}#{}", m.id, m.receives),
                    group_id: m.group.clone(),
                    record: json!({ "messageId": m.id, "body": m.body }),
                });
            }
            out
        }
    }

    #[async_trait::async_trait]
    impl SqsQueues for FakeQueue {
        fn queue(&self, arn: &str) -> Option<SqsQueueFacts> {
            (arn == QUEUE).then_some(SqsQueueFacts {
                visibility_timeout: self.visibility,
                fifo: self.fifo,
            })
        }

        async fn receive(
            &self,
            _arn: &str,
            max: usize,
            wait: Duration,
        ) -> Result<Vec<SqsRecord>, SqsSourceError> {
            self.receives.fetch_add(1, Ordering::SeqCst);
            let deadline = Instant::now() + wait;
            loop {
                let arrived = self.arrived.notified();
                let taken = self.take(max);
                if !taken.is_empty() {
                    return Ok(taken);
                }
                // Leases end without a notification: look again soon.
                let until = deadline.min(Instant::now() + Duration::from_millis(20));
                if tokio::time::timeout_at(until, arrived).await.is_err()
                    && Instant::now() >= deadline
                {
                    return Ok(Vec::new());
                }
            }
        }

        async fn delete(&self, _arn: &str, handles: &[String]) -> Result<(), SqsSourceError> {
            let mut state = self.state.lock();
            for handle in handles {
                let Some((id, receives)) = handle.split_once('#') else {
                    continue;
                };
                let found = state.messages.iter().find_map(|(seq, m)| {
                    (m.id == id && m.receives.to_string() == receives).then_some(*seq)
                });
                if let Some(seq) = found {
                    state.messages.remove(&seq);
                    state.deleted.push(id.to_string());
                }
            }
            Ok(())
        }
    }

    type Answer =
        Box<dyn Fn(&[String], usize) -> Result<BatchResponse, BatchInvokeError> + Send + Sync>;

    /// A function that records its batches and answers as told.
    struct FakeFunction {
        answer: Answer,
        batches: parking_lot::Mutex<Vec<Vec<String>>>,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
        /// While set, invocations wait here.
        gate: Option<tokio::sync::Semaphore>,
        invoked: Notify,
        reserved: Option<u32>,
        /// While set, the role may not poll, with this sentence.
        refusal: parking_lot::Mutex<Option<String>>,
        /// How often the pollers asked whether the role may poll.
        role_asked: AtomicUsize,
    }

    impl FakeFunction {
        fn answering(
            answer: impl Fn(&[String], usize) -> Result<BatchResponse, BatchInvokeError>
                + Send
                + Sync
                + 'static,
        ) -> FakeFunction {
            FakeFunction {
                answer: Box::new(answer),
                batches: parking_lot::Mutex::new(Vec::new()),
                in_flight: AtomicUsize::new(0),
                most_in_flight: AtomicUsize::new(0),
                gate: None,
                invoked: Notify::new(),
                reserved: None,
                refusal: parking_lot::Mutex::new(None),
                role_asked: AtomicUsize::new(0),
            }
        }

        fn succeeding() -> FakeFunction {
            FakeFunction::answering(|_, _| Ok(ok("null")))
        }

        fn invocations_of(&self, id: &str) -> usize {
            self.batches
                .lock()
                .iter()
                .flatten()
                .filter(|seen| *seen == id)
                .count()
        }
    }

    fn ok(payload: &str) -> BatchResponse {
        BatchResponse {
            payload: Bytes::from(payload.to_string()),
            function_error: false,
            executed_version: "$LATEST".into(),
        }
    }

    #[async_trait::async_trait]
    impl BatchTarget for FakeFunction {
        async fn invoke(
            &self,
            _spec: &PollerSpec,
            event: Bytes,
        ) -> Result<BatchResponse, BatchInvokeError> {
            let event: Value = serde_json::from_slice(&event).unwrap();
            let ids: Vec<String> = event["Records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["messageId"].as_str().unwrap().to_string())
                .collect();
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            let call = {
                let mut batches = self.batches.lock();
                batches.push(ids.clone());
                batches.len()
            };
            self.invoked.notify_waiters();
            if let Some(gate) = &self.gate {
                let _held = gate.acquire().await.unwrap();
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let answer = (self.answer)(&ids, call);
            self.invoked.notify_waiters();
            answer
        }

        fn reserved_concurrency(&self, _spec: &PollerSpec) -> Option<u32> {
            self.reserved
        }

        async fn role_refusal(&self, _spec: &PollerSpec, _is_stream: bool) -> Option<String> {
            self.role_asked.fetch_add(1, Ordering::SeqCst);
            self.invoked.notify_waiters();
            self.refusal.lock().clone()
        }
    }

    fn spec() -> PollerSpec {
        PollerSpec {
            uuid: "m-1".into(),
            account: "111111111111".into(),
            region: "us-east-1".into(),
            source_arn: QUEUE.into(),
            function: "worker".into(),
            qualifier: None,
            batch_size: 10,
            batching_window: Duration::ZERO,
            report_batch_item_failures: false,
            maximum_concurrency: None,
            filter: None,
        }
    }

    fn settings() -> PollerSettings {
        PollerSettings {
            long_poll: Duration::from_millis(100),
            initial_concurrency: 5,
            scale_step: Duration::from_millis(1),
            first_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        }
    }

    /// Waits (bounded, so a broken poller fails instead of hanging) until
    /// `done` holds.
    async fn until(function: &FakeFunction, done: impl Fn() -> bool) {
        let bound = Instant::now() + Duration::from_secs(30);
        while !done() {
            let woke = function.invoked.notified();
            let _ = tokio::time::timeout(Duration::from_millis(10), woke).await;
            assert!(Instant::now() < bound, "the condition never held");
        }
    }

    fn start(
        queue: &Arc<FakeQueue>,
        function: &Arc<FakeFunction>,
        spec: PollerSpec,
        settings: PollerSettings,
    ) -> Arc<SqsPollers> {
        let pollers = SqsPollers::new(queue.clone(), function.clone(), settings);
        pollers.run(spec);
        pollers
    }

    #[tokio::test]
    async fn every_message_is_invoked_once_and_deleted_on_success() {
        let queue = FakeQueue::new(false, Duration::from_secs(60));
        for i in 0..200 {
            queue.send(&format!("m{i}"), None, "{}");
        }
        let function = Arc::new(FakeFunction::succeeding());
        let pollers = start(&queue, &function, spec(), settings());
        until(&function, || queue.remaining() == 0).await;
        pollers.stop("m-1").await;
        for i in 0..200 {
            assert_eq!(function.invocations_of(&format!("m{i}")), 1, "m{i}");
        }
        assert!(function.batches.lock().iter().all(|b| b.len() <= 10));
    }

    #[tokio::test]
    async fn a_function_error_leaves_the_batch_to_reappear() {
        let queue = FakeQueue::new(false, Duration::from_millis(50));
        queue.send("poison", None, "x");
        let function = Arc::new(FakeFunction::answering(|_, _| {
            Ok(BatchResponse {
                payload: Bytes::from_static(b"{\"errorMessage\":\"boom\"}"),
                function_error: true,
                executed_version: "$LATEST".into(),
            })
        }));
        let pollers = start(&queue, &function, spec(), settings());
        until(&function, || function.invocations_of("poison") >= 3).await;
        pollers.stop("m-1").await;
        assert!(queue.deleted().is_empty());
        assert_eq!(queue.remaining(), 1);
    }

    #[tokio::test]
    async fn reported_failures_are_redelivered_and_the_rest_deleted() {
        let queue = FakeQueue::new(false, Duration::from_millis(50));
        for id in ["a", "b", "c"] {
            queue.send(id, None, "{}");
        }
        let function = Arc::new(FakeFunction::answering(|ids, _| {
            if ids.contains(&"b".to_string()) && ids.len() > 1 {
                Ok(ok(r#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#))
            } else {
                Ok(ok(r#"{"batchItemFailures":[]}"#))
            }
        }));
        let mut spec = spec();
        spec.report_batch_item_failures = true;
        spec.maximum_concurrency = Some(1);
        let pollers = start(&queue, &function, spec, settings());
        until(&function, || queue.remaining() == 0).await;
        pollers.stop("m-1").await;
        assert_eq!(function.invocations_of("a"), 1);
        assert_eq!(function.invocations_of("c"), 1);
        assert_eq!(function.invocations_of("b"), 2);
    }

    #[tokio::test]
    async fn an_unknown_item_identifier_fails_the_whole_batch() {
        let queue = FakeQueue::new(false, Duration::from_secs(60));
        queue.send("a", None, "{}");
        queue.send("b", None, "{}");
        let function = Arc::new(FakeFunction::answering(|_, _| {
            Ok(ok(r#"{"batchItemFailures":[{"itemIdentifier":"nope"}]}"#))
        }));
        let mut spec = spec();
        spec.report_batch_item_failures = true;
        spec.maximum_concurrency = Some(1);
        let pollers = start(&queue, &function, spec, settings());
        until(&function, || !function.batches.lock().is_empty()).await;
        pollers.stop("m-1").await;
        assert!(queue.deleted().is_empty());
    }

    #[tokio::test]
    async fn throttled_batches_are_retried_without_losing_messages() {
        let queue = FakeQueue::new(false, Duration::from_secs(60));
        for i in 0..5 {
            queue.send(&format!("m{i}"), None, "{}");
        }
        let function = Arc::new(FakeFunction::answering(|_, call| {
            if call <= 3 {
                Err(BatchInvokeError::Throttled)
            } else {
                Ok(ok("null"))
            }
        }));
        let mut spec = spec();
        spec.maximum_concurrency = Some(1);
        let pollers = start(&queue, &function, spec, settings());
        until(&function, || queue.remaining() == 0).await;
        pollers.stop("m-1").await;
        let batches = function.batches.lock().clone();
        // The same batch was offered until it ran; no message was received twice.
        assert_eq!(batches.len(), 4);
        assert!(batches.windows(2).all(|w| w[0] == w[1]));
        let mut deleted = queue.deleted();
        deleted.sort();
        assert_eq!(deleted, ["m0", "m1", "m2", "m3", "m4"]);
    }

    #[tokio::test]
    async fn filtered_out_messages_are_deleted_without_an_invocation() {
        struct KindIsKeep;
        impl RecordFilter for KindIsKeep {
            fn accepts(&self, record: &Value) -> bool {
                record["body"]["kind"] == "keep"
            }
        }
        let queue = FakeQueue::new(false, Duration::from_secs(60));
        queue.send("kept", None, r#"{"kind":"keep"}"#);
        queue.send("dropped", None, r#"{"kind":"drop"}"#);
        queue.send("plain", None, "keep");
        let function = Arc::new(FakeFunction::succeeding());
        let mut spec = spec();
        spec.filter = Some(Arc::new(KindIsKeep));
        let pollers = start(&queue, &function, spec, settings());
        until(&function, || queue.remaining() == 0).await;
        pollers.stop("m-1").await;
        assert_eq!(function.invocations_of("kept"), 1);
        assert_eq!(function.invocations_of("dropped"), 0);
        assert_eq!(function.invocations_of("plain"), 0);
    }

    #[tokio::test]
    async fn a_batching_window_gathers_up_to_the_batch_size() {
        let queue = FakeQueue::new(false, Duration::from_secs(60));
        for i in 0..25 {
            queue.send(&format!("m{i}"), None, "{}");
        }
        let function = Arc::new(FakeFunction::succeeding());
        let mut spec = spec();
        spec.batch_size = 25;
        spec.batching_window = Duration::from_secs(300);
        spec.maximum_concurrency = Some(1);
        let pollers = start(&queue, &function, spec, settings());
        until(&function, || queue.remaining() == 0).await;
        pollers.stop("m-1").await;
        let batches = function.batches.lock().clone();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].len(), 25);
    }

    #[tokio::test]
    async fn a_batch_stops_short_of_six_megabytes_and_carries_the_rest() {
        let queue = FakeQueue::new(false, Duration::from_secs(60));
        let body = "x".repeat(1024 * 1024);
        for i in 0..10 {
            queue.send(&format!("m{i}"), None, &body);
        }
        let function = Arc::new(FakeFunction::succeeding());
        let mut spec = spec();
        spec.batch_size = 10;
        // The second batch waits out its window for more messages.
        spec.batching_window = Duration::from_secs(1);
        spec.maximum_concurrency = Some(1);
        let pollers = start(&queue, &function, spec, settings());
        until(&function, || queue.remaining() == 0).await;
        pollers.stop("m-1").await;
        let batches = function.batches.lock().clone();
        // Five 1 MiB records fit under 6 MB, a sixth would not.
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [5, 5]);
        for i in 0..10 {
            assert_eq!(function.invocations_of(&format!("m{i}")), 1);
        }
    }

    #[tokio::test]
    async fn a_mapping_starts_with_five_concurrent_batches() {
        let queue = FakeQueue::new(false, Duration::from_secs(60));
        for i in 0..100 {
            queue.send(&format!("m{i}"), None, "{}");
        }
        let mut function = FakeFunction::succeeding();
        function.gate = Some(tokio::sync::Semaphore::new(0));
        let function = Arc::new(function);
        let mut settings = settings();
        settings.scale_step = Duration::from_secs(3600);
        let pollers = start(&queue, &function, spec(), settings);
        until(&function, || function.in_flight.load(Ordering::SeqCst) == 5).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(function.most_in_flight.load(Ordering::SeqCst), 5);
        if let Some(gate) = &function.gate {
            gate.add_permits(1000);
        }
        pollers.stop("m-1").await;
    }

    #[tokio::test]
    async fn scaling_stops_at_maximum_concurrency() {
        let queue = FakeQueue::new(false, Duration::from_secs(60));
        for i in 0..200 {
            queue.send(&format!("m{i}"), None, "{}");
        }
        let mut function = FakeFunction::succeeding();
        function.gate = Some(tokio::sync::Semaphore::new(0));
        let function = Arc::new(function);
        let mut spec = spec();
        spec.maximum_concurrency = Some(8);
        let pollers = start(&queue, &function, spec, settings());
        until(&function, || function.in_flight.load(Ordering::SeqCst) == 8).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(function.most_in_flight.load(Ordering::SeqCst), 8);
        if let Some(gate) = &function.gate {
            gate.add_permits(1000);
        }
        pollers.stop("m-1").await;
    }

    #[tokio::test]
    async fn scaling_stays_within_reserved_concurrency() {
        let queue = FakeQueue::new(false, Duration::from_secs(60));
        for i in 0..100 {
            queue.send(&format!("m{i}"), None, "{}");
        }
        let mut function = FakeFunction::succeeding();
        function.gate = Some(tokio::sync::Semaphore::new(0));
        function.reserved = Some(3);
        let function = Arc::new(function);
        let pollers = start(&queue, &function, spec(), settings());
        until(&function, || function.in_flight.load(Ordering::SeqCst) == 3).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(function.most_in_flight.load(Ordering::SeqCst), 3);
        if let Some(gate) = &function.gate {
            gate.add_permits(1000);
        }
        pollers.stop("m-1").await;
    }

    #[tokio::test]
    async fn a_stopped_mapping_receives_nothing_more() {
        let queue = FakeQueue::new(false, Duration::from_secs(60));
        let function = Arc::new(FakeFunction::succeeding());
        let pollers = start(&queue, &function, spec(), settings());
        pollers.stop("m-1").await;
        assert!(!pollers.is_running("m-1"));
        let receives = queue.receives.load(Ordering::SeqCst);
        queue.send("late", None, "{}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(queue.receives.load(Ordering::SeqCst), receives);
        assert_eq!(queue.remaining(), 1);
        assert!(function.batches.lock().is_empty());
    }

    #[tokio::test]
    async fn a_role_that_may_not_poll_leaves_the_queue_alone_until_it_may() {
        let queue = FakeQueue::new(false, Duration::from_secs(60));
        queue.send("waiting", None, "{}");
        let function = Arc::new(FakeFunction::succeeding());
        let refusal =
            "The provided execution role does not have permissions to call ReceiveMessage on SQS";
        *function.refusal.lock() = Some(refusal.into());
        let pollers = start(&queue, &function, spec(), settings());
        // Many poll rounds, none of which received anything.
        until(&function, || {
            function.role_asked.load(Ordering::SeqCst) >= 20
        })
        .await;
        assert_eq!(queue.receives.load(Ordering::SeqCst), 0);
        assert_eq!(queue.remaining(), 1);
        assert_eq!(pollers.problem("m-1"), Some(format!("PROBLEM: {refusal}")));
        *function.refusal.lock() = None;
        until(&function, || queue.remaining() == 0).await;
        assert_eq!(function.invocations_of("waiting"), 1);
        assert_eq!(pollers.problem("m-1"), None);
        pollers.stop("m-1").await;
    }

    #[tokio::test]
    async fn fifo_groups_are_processed_in_order_under_concurrency() {
        let queue = FakeQueue::new(true, Duration::from_secs(60));
        for i in 0..30 {
            for group in ["g1", "g2", "g3"] {
                queue.send(&format!("{group}-{i:02}"), Some(group), "{}");
            }
        }
        let function = Arc::new(FakeFunction::succeeding());
        let mut spec = spec();
        spec.batch_size = 4;
        spec.maximum_concurrency = Some(5);
        let pollers = start(&queue, &function, spec, settings());
        until(&function, || queue.remaining() == 0).await;
        pollers.stop("m-1").await;
        let seen: Vec<String> = function.batches.lock().iter().flatten().cloned().collect();
        for group in ["g1", "g2", "g3"] {
            let order: Vec<&String> = seen.iter().filter(|id| id.starts_with(group)).collect();
            let expected: Vec<String> = (0..30).map(|i| format!("{group}-{i:02}")).collect();
            assert_eq!(order, expected.iter().collect::<Vec<_>>(), "{group}");
        }
    }

    #[tokio::test]
    async fn a_fifo_failure_keeps_the_rest_of_its_group_in_order() {
        let queue = FakeQueue::new(true, Duration::from_millis(50));
        for i in 0..3 {
            queue.send(&format!("g-{i}"), Some("g"), "{}");
        }
        let failed_once = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = failed_once.clone();
        let function = Arc::new(FakeFunction::answering(move |ids, _| {
            if ids.first().is_some_and(|id| id == "g-0") && !flag.swap(true, Ordering::SeqCst) {
                Ok(ok(r#"{"batchItemFailures":[{"itemIdentifier":"g-1"}]}"#))
            } else {
                Ok(ok("{}"))
            }
        }));
        let mut spec = spec();
        spec.report_batch_item_failures = true;
        let pollers = start(&queue, &function, spec, settings());
        until(&function, || queue.remaining() == 0).await;
        pollers.stop("m-1").await;
        let batches = function.batches.lock().clone();
        assert_eq!(batches[0], ["g-0", "g-1", "g-2"]);
        // g-2 came after the failed g-1, so it was kept and came back with it.
        assert_eq!(batches[1], ["g-1", "g-2"]);
        assert!(failed_once.load(Ordering::SeqCst));
    }
}
