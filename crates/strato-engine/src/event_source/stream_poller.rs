//! The pollers of stream event source mappings (DynamoDB Streams).
//!
//! Why over 800 lines: about 375 of them are the unit tests against a fake
//! stream, function, sink and checkpoint store; the pollers themselves are
//! under 770.
//!
//! Each enabled mapping runs one task per shard. A shard task reads the
//! shard in order from its checkpoint, gathers up to `BatchSize` records
//! per concurrent batch (`ParallelizationFactor` of them, at most) within
//! `MaximumBatchingWindowInSeconds` and the 6 MB payload limit, drops the
//! records no filter accepts, and splits the rest into lanes by partition
//! key: a key always falls in the same lane, and a lane's batches run one
//! after another, so the records of one key reach the function in order
//! while up to `ParallelizationFactor` lanes run at once. When every lane
//! has finished its records, the checkpoint moves past the last record
//! read and is saved ([`Checkpoints`]); a restart resumes there, so no
//! committed change is skipped (a round interrupted midway is delivered
//! again: at least once).
//!
//! An idle shard is read again four times a second, as AWS polls, and at
//! once when the source signals a write to the stream's table
//! ([`StreamSource::writes`]), so a change reaches the function without
//! waiting for the next poll.
//!
//! A failed batch (a function error, or the items a
//! `ReportBatchItemFailures` answer names, from the first of them on) is
//! split in two when `BisectBatchOnFunctionError` is on (splitting does not
//! count as a retry), otherwise retried after a back-off, until
//! `MaximumRetryAttempts` retries have failed or its records are older than
//! `MaximumRecordAgeInSeconds`; then an invocation record describing it is
//! sent to `DestinationConfig.OnFailure` and the lane goes on with the
//! next records. A throttled or unreachable function is retried without
//! counting, as Lambda does, until the records are too old.
//!
//! Each read of a shard is first allowed by the function's execution role
//! ([`BatchTarget::role_refusal`]): while the role may not read the stream,
//! nothing is read (the checkpoint stays) and `LastProcessingResult` is
//! AWS's refusal, after `PROBLEM: `.
//!
//! The batch rules shared with SQS mappings (the event's frame and size,
//! reading a `ReportBatchItemFailures` answer) are [`super::batch`]'s; the
//! function is invoked through the same [`BatchTarget`].

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::batch::{self, BatchVerdict};
use super::poller::pause;
use super::running::Supervisors;
use super::{
    BatchInvokeError, BatchResponse, BatchTarget, Checkpoints, PollerSpec, ShardPosition,
    StreamRecord, StreamSource,
};
use crate::async_invoke::EventSink;

/// `LastProcessingResult` before any batch ran.
pub const LAST_RESULT_NONE: &str = "No records processed";
/// `LastProcessingResult` after a batch succeeded.
pub const LAST_RESULT_OK: &str = "OK";
/// `LastProcessingResult` after a batch failed.
pub const LAST_RESULT_PROBLEM: &str = "PROBLEM: Function call failed";

/// A read returns at most this many records (DynamoDB Streams' GetRecords
/// limit).
const MAX_READ: usize = 1000;

/// What a stream mapping's pollers run, taken from the mapping record.
#[derive(Clone, Debug)]
pub struct StreamPollerSpec {
    /// The members stream and SQS mappings share (`source_arn` is the
    /// stream's ARN; `maximum_concurrency` does not apply).
    pub base: PollerSpec,
    /// The function's ARN as the mapping names it (invocation records
    /// carry it).
    pub function_arn: String,
    /// `TrimHorizon` or `Latest`: where a shard without a checkpoint starts.
    pub starting_position: ShardPosition,
    pub bisect_on_error: bool,
    /// `None`: retried until the records are too old (AWS's -1).
    pub maximum_retry_attempts: Option<u32>,
    /// `None`: no age limit (AWS's -1).
    pub maximum_record_age: Option<Duration>,
    /// Concurrent batches per shard, 1–10.
    pub parallelization: usize,
    /// `DestinationConfig.OnFailure.Destination`, an SQS queue or SNS topic.
    pub on_failure: Option<String>,
}

/// How the stream pollers are tuned; [`StreamPollerSettings::default`] is
/// AWS's.
#[derive(Debug, Clone, Copy)]
pub struct StreamPollerSettings {
    /// An idle shard is read this often (AWS: four times a second), and
    /// at once after a write the source signals ([`StreamSource::writes`]).
    pub poll_interval: Duration,
    /// Back-off before retrying a failed batch, doubling up to
    /// `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for StreamPollerSettings {
    fn default() -> Self {
        StreamPollerSettings {
            poll_interval: Duration::from_millis(250),
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// The running stream mappings.
pub struct StreamPollers {
    shared: Shared,
    running: Supervisors<StreamPollerSpec>,
}

/// What every mapping's tasks use.
#[derive(Clone)]
struct Shared {
    source: Arc<dyn StreamSource>,
    target: Arc<dyn BatchTarget>,
    sinks: Arc<dyn EventSink>,
    checkpoints: Arc<dyn Checkpoints>,
    settings: StreamPollerSettings,
    results: Arc<parking_lot::Mutex<HashMap<String, String>>>,
}

impl StreamPollers {
    pub fn new(
        source: Arc<dyn StreamSource>,
        target: Arc<dyn BatchTarget>,
        sinks: Arc<dyn EventSink>,
        checkpoints: Arc<dyn Checkpoints>,
        settings: StreamPollerSettings,
    ) -> Arc<StreamPollers> {
        Arc::new(StreamPollers {
            shared: Shared {
                source,
                target,
                sinks,
                checkpoints,
                settings,
                results: Arc::new(parking_lot::Mutex::new(HashMap::new())),
            },
            running: Supervisors::new(),
        })
    }

    /// The streams mappings read (the control plane checks them too).
    pub fn source(&self) -> &Arc<dyn StreamSource> {
        &self.shared.source
    }

    /// Starts reading for a mapping, or hands a running one its new
    /// settings (taken at its next batch).
    pub fn run(&self, spec: StreamPollerSpec) {
        let uuid = spec.base.uuid.clone();
        self.running.run(&uuid, spec, |spec, stop| {
            let mapping = Mapping {
                shared: self.shared.clone(),
                spec,
                stop,
                positions: Arc::new(tokio::sync::Mutex::new(HashMap::new())),
            };
            tokio::spawn(mapping.supervise())
        });
    }

    /// Stops a mapping's pollers; batches being invoked finish first.
    pub async fn stop(&self, uuid: &str) {
        self.running.stop(uuid).await;
    }

    /// Stops a deleted mapping and forgets its last result (its
    /// checkpoints are the control plane's to delete with it).
    pub async fn remove(&self, uuid: &str) {
        self.stop(uuid).await;
        self.shared.results.lock().remove(uuid);
    }

    /// `LastProcessingResult` of a mapping.
    pub fn last_result(&self, uuid: &str) -> String {
        self.shared
            .results
            .lock()
            .get(uuid)
            .map_or_else(|| LAST_RESULT_NONE.to_string(), String::clone)
    }

    /// Stops every mapping (server shutdown).
    pub async fn stop_all(&self) {
        self.running.stop_all().await;
    }
}

/// One mapping's state, cloned into its shard tasks.
#[derive(Clone)]
struct Mapping {
    shared: Shared,
    spec: watch::Receiver<Arc<StreamPollerSpec>>,
    stop: watch::Receiver<bool>,
    /// Every shard's checkpoint, saved together.
    positions: Arc<tokio::sync::Mutex<HashMap<String, ShardPosition>>>,
}

/// How a batch, a lane or a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Processed (or sent to the on-failure destination).
    Done,
    /// The mapping stopped first; the records are read again later.
    Stopped,
}

/// Why a batch's records were given up on (an invocation record's
/// `condition`).
#[derive(Debug, Clone, Copy)]
enum Discarded {
    RetryAttemptsExhausted,
    RecordAgeExceeded,
}

impl Discarded {
    fn as_str(self) -> &'static str {
        match self {
            Discarded::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Discarded::RecordAgeExceeded => "RecordAgeExceeded",
        }
    }
}

impl Mapping {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn uuid(&self) -> String {
        self.spec.borrow().base.uuid.clone()
    }

    async fn pause(&self, duration: Duration) -> bool {
        pause(&self.stop, duration).await
    }

    /// Finds the shards (waiting while the stream cannot be read), then
    /// runs one task per shard until the mapping stops.
    async fn supervise(self) {
        let mut backoff = self.shared.settings.first_backoff;
        let (shards, saved) = loop {
            if self.stopped() {
                return;
            }
            let spec = self.spec.borrow().clone();
            let (arn, uuid) = (&spec.base.source_arn, &spec.base.uuid);
            let found = self.shared.source.shards(arn).await;
            let saved = self.shared.checkpoints.load(&spec.base).await;
            match (found, saved) {
                (Ok(shards), Ok(saved)) => break (shards, saved),
                (Err(e), _) => {
                    tracing::warn!(mapping = %uuid, stream = %arn, error = %e, "cannot list the mapping's stream shards")
                }
                (_, Err(e)) => {
                    tracing::warn!(mapping = %uuid, error = %e, "cannot load the mapping's checkpoints")
                }
            }
            if self.pause(backoff).await {
                return;
            }
            backoff = (backoff * 2).min(self.shared.settings.max_backoff);
        };
        *self.positions.lock().await = saved.clone();
        let mut tasks = JoinSet::new();
        for shard in shards {
            let start = saved.get(&shard).cloned();
            tasks.spawn(self.clone().read_shard(shard, start));
        }
        while let Some(ended) = tasks.join_next().await {
            if let Err(e) = ended {
                tracing::warn!(error = %e, "a stream mapping's shard task ended abnormally");
            }
        }
    }

    /// Pins where a shard starts and records it, so a restart before the
    /// first record starts at the same place.
    async fn starting_point(&self, shard: &str) -> Option<ShardPosition> {
        let mut backoff = self.shared.settings.first_backoff;
        loop {
            let spec = self.spec.borrow().clone();
            match self
                .shared
                .source
                .pin(&spec.base.source_arn, shard, spec.starting_position.clone())
                .await
            {
                Ok(position) => {
                    self.checkpoint(shard, position.clone()).await;
                    return Some(position);
                }
                Err(e) => {
                    tracing::warn!(mapping = %spec.base.uuid, shard, error = %e, "cannot find the mapping's starting position")
                }
            }
            if self.pause(backoff).await {
                return None;
            }
            backoff = (backoff * 2).min(self.shared.settings.max_backoff);
        }
    }

    /// Waits while a shard has nothing new: until a write to the stream's
    /// table (when the source signals them), the poll interval, or the
    /// mapping's stop, whichever comes first. True when the mapping stopped.
    async fn idle(&self, writes: &mut Option<watch::Receiver<()>>) -> bool {
        let interval = self.shared.settings.poll_interval;
        let Some(signal) = writes else {
            return self.pause(interval).await;
        };
        tokio::select! {
            stopped = self.pause(interval) => stopped,
            written = signal.changed() => {
                if written.is_err() {
                    // The source dropped its signal: poll from now on.
                    *writes = None;
                }
                self.stopped()
            }
        }
    }

    async fn checkpoint(&self, shard: &str, position: ShardPosition) {
        let mut positions = self.positions.lock().await;
        positions.insert(shard.to_string(), position);
        let spec = self.spec.borrow().clone();
        if let Err(e) = self.shared.checkpoints.save(&spec.base, &positions).await {
            tracing::warn!(mapping = %self.uuid(), shard, error = %e, "a checkpoint could not be saved; its records will be delivered again");
        }
    }

    async fn read_shard(self, shard: String, start: Option<ShardPosition>) {
        let mut position = match start {
            Some(position) => position,
            None => match self.starting_point(&shard).await {
                Some(position) => position,
                None => return,
            },
        };
        let mut backoff = self.shared.settings.first_backoff;
        let source_arn = self.spec.borrow().base.source_arn.clone();
        let mut writes = self.shared.source.writes(&source_arn);
        loop {
            if self.stopped() {
                return;
            }
            let spec = self.spec.borrow().clone();
            if let Some(writes) = &mut writes {
                // Writes from here on wake the idle wait below.
                writes.borrow_and_update();
            }
            if let Some(refusal) = self.shared.target.role_refusal(&spec.base, true).await {
                // Nothing is read: the records wait in the shard for when
                // the role may read again.
                tracing::warn!(mapping = %spec.base.uuid, shard = %shard, reason = %refusal, "the function's role may not read the mapping's stream");
                self.record_result(&spec, &format!("PROBLEM: {refusal}"));
                if self.pause(self.shared.settings.poll_interval).await {
                    return;
                }
                continue;
            }
            let records = match self.gather(&spec, &shard, &position).await {
                Ok(records) => records,
                Err(e) => {
                    tracing::warn!(mapping = %spec.base.uuid, shard = %shard, error = %e, "cannot read the mapping's stream");
                    if self.pause(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(self.shared.settings.max_backoff);
                    continue;
                }
            };
            backoff = self.shared.settings.first_backoff;
            let Some(last) = records.last().map(|r| r.sequence_number.clone()) else {
                if self.idle(&mut writes).await {
                    return;
                }
                continue;
            };
            if self.round(&spec, &shard, records).await == Outcome::Stopped {
                return;
            }
            position = ShardPosition::After(last);
            self.checkpoint(&shard, position.clone()).await;
        }
    }

    /// Reads up to `BatchSize × ParallelizationFactor` records, waiting up
    /// to the batching window (counted from the first record) for more.
    async fn gather(
        &self,
        spec: &StreamPollerSpec,
        shard: &str,
        position: &ShardPosition,
    ) -> Result<Vec<StreamRecord>, super::StreamSourceError> {
        let want = spec.base.batch_size * spec.parallelization.max(1);
        let mut records: Vec<StreamRecord> = Vec::new();
        let mut window_ends = None;
        loop {
            let from = match records.last() {
                Some(last) => ShardPosition::After(last.sequence_number.clone()),
                None => position.clone(),
            };
            let max = (want - records.len()).min(MAX_READ);
            let read = self
                .shared
                .source
                .read(&spec.base.source_arn, shard, &from, max)
                .await?;
            let got = read.len();
            records.extend(read);
            if records.is_empty() || records.len() >= want {
                return Ok(records);
            }
            if got == max {
                continue;
            }
            let ends = *window_ends
                .get_or_insert_with(|| tokio::time::Instant::now() + spec.base.batching_window);
            let left = ends.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(records);
            }
            let nap = left.min(self.shared.settings.poll_interval);
            if self.pause(nap).await {
                return Ok(records);
            }
        }
    }

    /// Filters a read's records, runs them in lanes by partition key, and
    /// says whether every lane finished.
    async fn round(
        &self,
        spec: &Arc<StreamPollerSpec>,
        shard: &str,
        records: Vec<StreamRecord>,
    ) -> Outcome {
        let records: Vec<StreamRecord> = match &spec.base.filter {
            None => records,
            Some(filter) => records
                .into_iter()
                .filter(|r| filter.accepts(&r.record))
                .collect(),
        };
        if records.is_empty() {
            return Outcome::Done;
        }
        let mut lanes = lanes(records, spec.parallelization);
        if lanes.len() == 1 {
            let lane = lanes.remove(0);
            return self
                .clone()
                .lane(spec.clone(), shard.to_string(), lane)
                .await;
        }
        let mut running = JoinSet::new();
        for lane in lanes {
            running.spawn(self.clone().lane(spec.clone(), shard.to_string(), lane));
        }
        let mut outcome = Outcome::Done;
        while let Some(ended) = running.join_next().await {
            match ended {
                Ok(Outcome::Done) => {}
                Ok(Outcome::Stopped) => outcome = Outcome::Stopped,
                Err(e) => {
                    tracing::warn!(error = %e, "a stream batch lane ended abnormally");
                    outcome = Outcome::Stopped;
                }
            }
        }
        outcome
    }

    /// One lane's records, in batches of `BatchSize` within 6 MB, one after
    /// another.
    async fn lane(
        self,
        spec: Arc<StreamPollerSpec>,
        shard: String,
        records: Vec<StreamRecord>,
    ) -> Outcome {
        for batch in batches(records, spec.base.batch_size) {
            if self.batch(&spec, &shard, batch).await == Outcome::Stopped {
                return Outcome::Stopped;
            }
        }
        Outcome::Done
    }

    /// Invokes the function with a batch until it succeeds, bisecting and
    /// retrying as the mapping says, or gives the failed records up to the
    /// on-failure destination.
    async fn batch(
        &self,
        spec: &StreamPollerSpec,
        shard: &str,
        records: Vec<StreamRecord>,
    ) -> Outcome {
        let mut pending: VecDeque<Vec<StreamRecord>> = VecDeque::from([records]);
        while let Some(mut batch) = pending.pop_front() {
            let mut retries: u32 = 0;
            let mut invokes: u32 = 0;
            let mut backoff = self.shared.settings.first_backoff;
            let mut last_response: Option<BatchResponse> = None;
            loop {
                if self.stopped() {
                    return Outcome::Stopped;
                }
                let expired = expired_prefix(&batch, spec.maximum_record_age);
                if expired > 0 {
                    let rest = batch.split_off(expired);
                    self.discard(
                        spec,
                        shard,
                        &batch,
                        Discarded::RecordAgeExceeded,
                        invokes,
                        last_response.as_ref(),
                    )
                    .await;
                    batch = rest;
                    if batch.is_empty() {
                        break;
                    }
                }
                let event = batch::records_event(batch.iter().map(|r| &r.record));
                let failed_from = match self.shared.target.invoke(&spec.base, event).await {
                    Ok(response) => {
                        invokes += 1;
                        let failed_from = failed_from(spec, &batch, &response);
                        last_response = Some(response);
                        failed_from
                    }
                    Err(e) => {
                        if let BatchInvokeError::Unavailable(why) = &e {
                            tracing::warn!(mapping = %spec.base.uuid, function = %spec.base.function, reason = %why, "a stream batch could not run; it is retried");
                        }
                        // Not a retry: held until the records are too old.
                        if self.pause(backoff).await {
                            return Outcome::Stopped;
                        }
                        backoff = (backoff * 2).min(self.shared.settings.max_backoff);
                        continue;
                    }
                };
                let Some(first_failed) = failed_from else {
                    self.record_result(spec, LAST_RESULT_OK);
                    break;
                };
                self.record_result(spec, LAST_RESULT_PROBLEM);
                // Records before the first failure succeeded.
                batch.drain(..first_failed);
                if spec.bisect_on_error && batch.len() > 1 {
                    let second = batch.split_off(batch.len() / 2);
                    pending.push_front(second);
                    pending.push_front(batch);
                    break;
                }
                retries += 1;
                if spec.maximum_retry_attempts.is_some_and(|max| retries > max) {
                    self.discard(
                        spec,
                        shard,
                        &batch,
                        Discarded::RetryAttemptsExhausted,
                        invokes,
                        last_response.as_ref(),
                    )
                    .await;
                    break;
                }
                if self.pause(backoff).await {
                    return Outcome::Stopped;
                }
                backoff = (backoff * 2).min(self.shared.settings.max_backoff);
            }
        }
        Outcome::Done
    }

    fn record_result(&self, spec: &StreamPollerSpec, result: &str) {
        self.shared
            .results
            .lock()
            .insert(spec.base.uuid.clone(), result.to_string());
    }

    /// Sends a discarded batch's invocation record to the on-failure
    /// destination, when the mapping has one.
    async fn discard(
        &self,
        spec: &StreamPollerSpec,
        shard: &str,
        records: &[StreamRecord],
        why: Discarded,
        invokes: u32,
        response: Option<&BatchResponse>,
    ) {
        tracing::info!(mapping = %spec.base.uuid, records = records.len(), condition = why.as_str(), "stream records discarded");
        let Some(destination) = &spec.on_failure else {
            return;
        };
        let record = invocation_record(spec, shard, records, why, invokes, response);
        if let Err(e) = self
            .shared
            .sinks
            .deliver_record(
                &spec.base.account,
                &spec.base.region,
                destination,
                Bytes::from(record.to_string()),
            )
            .await
        {
            tracing::warn!(mapping = %spec.base.uuid, destination = %destination, error = %e, "a discarded batch's record could not be delivered");
        }
    }
}

/// The index of the first record that failed, or `None` when the batch
/// succeeded: every record on a function error, the lowest reported
/// sequence number with `ReportBatchItemFailures`.
fn failed_from(
    spec: &StreamPollerSpec,
    records: &[StreamRecord],
    response: &BatchResponse,
) -> Option<usize> {
    if response.function_error {
        return Some(0);
    }
    if !spec.base.report_batch_item_failures {
        return None;
    }
    let ids = records.iter().map(|r| r.sequence_number.as_str());
    match batch::read_batch_item_failures(&response.payload, ids) {
        BatchVerdict::AllSucceeded => None,
        BatchVerdict::AllFailed => Some(0),
        BatchVerdict::Failed(failed) => records
            .iter()
            .position(|r| failed.contains(&r.sequence_number)),
    }
}

/// How many records at the start of a batch are older than the mapping's
/// maximum age (records are in order, so the old ones come first).
fn expired_prefix(records: &[StreamRecord], maximum_age: Option<Duration>) -> usize {
    let Some(age) = maximum_age else {
        return 0;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let oldest_allowed = now - age.as_secs_f64();
    records
        .iter()
        .take_while(|r| r.created < oldest_allowed)
        .count()
}

/// Splits records into at most `factor` lanes by partition key, each in
/// stream order.
fn lanes(records: Vec<StreamRecord>, factor: usize) -> Vec<Vec<StreamRecord>> {
    let factor = factor.max(1);
    if factor == 1 {
        return vec![records];
    }
    let mut lanes: Vec<Vec<StreamRecord>> = vec![Vec::new(); factor];
    for record in records {
        let mut hasher = DefaultHasher::new();
        record.partition_key.hash(&mut hasher);
        let lane = usize::try_from(hasher.finish() % factor as u64).unwrap_or(0);
        lanes[lane].push(record);
    }
    lanes.retain(|lane| !lane.is_empty());
    lanes
}

/// Consecutive batches of at most `size` records within the payload limit.
fn batches(records: Vec<StreamRecord>, size: usize) -> Vec<Vec<StreamRecord>> {
    let mut out: Vec<Vec<StreamRecord>> = Vec::new();
    let mut current: Vec<StreamRecord> = Vec::new();
    let mut bytes = 0;
    for record in records {
        let record_bytes = batch::record_size(&record.record);
        let too_big = batch::event_size(bytes + record_bytes) > batch::MAX_BATCH_PAYLOAD;
        if !current.is_empty() && (current.len() >= size.max(1) || too_big) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += record_bytes;
        current.push(record);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `2019-11-14T00:13:19Z` for epoch seconds.
fn arrival(epoch_seconds: f64) -> String {
    let since_epoch = Duration::try_from_secs_f64(epoch_seconds).unwrap_or_default();
    chrono::DateTime::<chrono::Utc>::from(UNIX_EPOCH + since_epoch)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// AWS's invocation record for a discarded stream batch.
fn invocation_record(
    spec: &StreamPollerSpec,
    shard: &str,
    records: &[StreamRecord],
    why: Discarded,
    invokes: u32,
    response: Option<&BatchResponse>,
) -> serde_json::Value {
    let first = records.first();
    let last = records.last();
    let mut out = serde_json::json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": spec.function_arn,
            "condition": why.as_str(),
            "approximateInvokeCount": invokes,
        },
        "version": "1.0",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": first.map(|r| r.sequence_number.as_str()),
            "endSequenceNumber": last.map(|r| r.sequence_number.as_str()),
            "approximateArrivalOfFirstRecord": first.map(|r| arrival(r.created)),
            "approximateArrivalOfLastRecord": last.map(|r| arrival(r.created)),
            "batchSize": records.len(),
            "streamArn": spec.base.source_arn,
        },
    });
    if let Some(response) = response {
        let mut context = serde_json::json!({
            "statusCode": 200,
            "executedVersion": response.executed_version,
        });
        if response.function_error {
            context["functionError"] = "Unhandled".into();
        }
        out["responseContext"] = context;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::json;

    use super::*;
    use crate::async_invoke::{Content, Delivery, DeliveryError};
    use crate::event_source::{CheckpointError, StreamSourceError};

    const STREAM: &str = "arn:aws:dynamodb:us-east-1:111111111111:table/t/stream/l";

    /// One shard of records, sequence numbers 1, 2, ... (zero-padded);
    /// with `writes`, each write is signalled as DynamoDB's are.
    #[derive(Default)]
    struct FakeStream {
        records: parking_lot::Mutex<Vec<StreamRecord>>,
        writes: Option<watch::Sender<()>>,
        reads: std::sync::atomic::AtomicUsize,
    }

    impl FakeStream {
        fn signalling() -> FakeStream {
            FakeStream {
                writes: Some(watch::channel(()).0),
                ..FakeStream::default()
            }
        }

        fn write(&self, key: &str, n: usize) {
            {
                let mut records = self.records.lock();
                let seq = format!("{:021}", records.len() + 1);
                records.push(StreamRecord {
                    sequence_number: seq.clone(),
                    partition_key: key.into(),
                    created: SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap()
                        .as_secs_f64(),
                    record: json!({"key": key, "n": n, "seq": seq}),
                });
            }
            if let Some(writes) = &self.writes {
                writes.send_modify(|()| ());
            }
        }
    }

    #[async_trait::async_trait]
    impl StreamSource for FakeStream {
        async fn shards(&self, _arn: &str) -> Result<Vec<String>, StreamSourceError> {
            Ok(vec!["shard-1".into()])
        }
        async fn pin(
            &self,
            _arn: &str,
            _shard: &str,
            position: ShardPosition,
        ) -> Result<ShardPosition, StreamSourceError> {
            Ok(match position {
                ShardPosition::Latest => match self.records.lock().last() {
                    Some(last) => ShardPosition::After(last.sequence_number.clone()),
                    None => ShardPosition::TrimHorizon,
                },
                other => other,
            })
        }
        async fn read(
            &self,
            _arn: &str,
            _shard: &str,
            position: &ShardPosition,
            max: usize,
        ) -> Result<Vec<StreamRecord>, StreamSourceError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let records = self.records.lock();
            let after = match position {
                ShardPosition::After(seq) => seq.clone(),
                _ => String::new(),
            };
            Ok(records
                .iter()
                .filter(|r| r.sequence_number > after)
                .take(max)
                .cloned()
                .collect())
        }
        fn writes(&self, _arn: &str) -> Option<watch::Receiver<()>> {
            self.writes.as_ref().map(watch::Sender::subscribe)
        }
    }

    /// Records every batch (as (key, n) pairs); fails batches holding a
    /// poisoned n.
    struct FakeFunction {
        poison: Option<u64>,
        batches: parking_lot::Mutex<Vec<Vec<(String, u64)>>>,
        /// While set, the role may not read, with this sentence.
        refusal: parking_lot::Mutex<Option<String>>,
        /// How often the pollers asked whether the role may read.
        role_asked: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl BatchTarget for FakeFunction {
        async fn invoke(
            &self,
            _spec: &PollerSpec,
            event: Bytes,
        ) -> Result<BatchResponse, BatchInvokeError> {
            let event: serde_json::Value = serde_json::from_slice(&event).unwrap();
            let batch: Vec<(String, u64)> = event["Records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["key"].as_str().unwrap().to_string(),
                        r["n"].as_u64().unwrap(),
                    )
                })
                .collect();
            let failed = batch.iter().any(|(_, n)| Some(*n) == self.poison);
            self.batches.lock().push(batch);
            Ok(BatchResponse {
                payload: Bytes::from_static(b"{}"),
                function_error: failed,
                executed_version: "$LATEST".into(),
            })
        }
        fn reserved_concurrency(&self, _spec: &PollerSpec) -> Option<u32> {
            None
        }

        async fn role_refusal(&self, _spec: &PollerSpec, is_stream: bool) -> Option<String> {
            assert!(is_stream);
            self.role_asked
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.refusal.lock().clone()
        }
    }

    #[derive(Default)]
    struct FakeSink(parking_lot::Mutex<Vec<(String, serde_json::Value)>>);

    #[async_trait::async_trait]
    impl EventSink for FakeSink {
        async fn deliver(&self, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
            let Delivery { to, content } = delivery;
            if !matches!(content, Content::DeadLetter { .. }) {
                let record = serde_json::from_slice(&content.into_body()).unwrap();
                self.0.lock().push((to.arn.into(), record));
            }
            Ok(())
        }
    }

    #[derive(Default)]
    struct MemoryCheckpoints(parking_lot::Mutex<HashMap<String, ShardPosition>>);

    #[async_trait::async_trait]
    impl Checkpoints for MemoryCheckpoints {
        async fn load(
            &self,
            _spec: &PollerSpec,
        ) -> Result<HashMap<String, ShardPosition>, CheckpointError> {
            Ok(self.0.lock().clone())
        }
        async fn save(
            &self,
            _spec: &PollerSpec,
            shards: &HashMap<String, ShardPosition>,
        ) -> Result<(), CheckpointError> {
            *self.0.lock() = shards.clone();
            Ok(())
        }
    }

    struct Rig {
        stream: Arc<FakeStream>,
        function: Arc<FakeFunction>,
        sink: Arc<FakeSink>,
        checkpoints: Arc<MemoryCheckpoints>,
    }

    impl Rig {
        fn new(poison: Option<u64>) -> Rig {
            Rig {
                stream: Arc::new(FakeStream::default()),
                function: Arc::new(FakeFunction {
                    poison,
                    batches: parking_lot::Mutex::new(Vec::new()),
                    refusal: parking_lot::Mutex::new(None),
                    role_asked: std::sync::atomic::AtomicUsize::new(0),
                }),
                sink: Arc::new(FakeSink::default()),
                checkpoints: Arc::new(MemoryCheckpoints::default()),
            }
        }

        fn start(&self, spec: StreamPollerSpec) -> Arc<StreamPollers> {
            self.start_polling_every(spec, Duration::from_millis(5))
        }

        fn start_polling_every(
            &self,
            spec: StreamPollerSpec,
            poll_interval: Duration,
        ) -> Arc<StreamPollers> {
            let pollers = StreamPollers::new(
                self.stream.clone(),
                self.function.clone(),
                self.sink.clone(),
                self.checkpoints.clone(),
                StreamPollerSettings {
                    poll_interval,
                    first_backoff: Duration::from_millis(1),
                    max_backoff: Duration::from_millis(5),
                },
            );
            pollers.run(spec);
            pollers
        }

        fn seen(&self) -> Vec<(String, u64)> {
            self.function
                .batches
                .lock()
                .iter()
                .flatten()
                .cloned()
                .collect()
        }

        /// Waits (bounded) until `done` holds.
        async fn until(&self, done: impl Fn(&Rig) -> bool) {
            let bound = tokio::time::Instant::now() + Duration::from_secs(30);
            while !done(self) {
                assert!(
                    tokio::time::Instant::now() < bound,
                    "the condition never held"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    fn spec() -> StreamPollerSpec {
        StreamPollerSpec {
            base: PollerSpec {
                uuid: "m-1".into(),
                account: "111111111111".into(),
                region: "us-east-1".into(),
                source_arn: STREAM.into(),
                function: "worker".into(),
                qualifier: None,
                batch_size: 10,
                batching_window: Duration::ZERO,
                report_batch_item_failures: false,
                maximum_concurrency: None,
                filter: None,
            },
            function_arn: "arn:aws:lambda:us-east-1:111111111111:function:worker".into(),
            starting_position: ShardPosition::TrimHorizon,
            bisect_on_error: false,
            maximum_retry_attempts: None,
            maximum_record_age: None,
            parallelization: 1,
            on_failure: None,
        }
    }

    #[tokio::test]
    async fn a_signalled_write_is_read_at_once_not_at_the_next_poll() {
        let mut rig = Rig::new(None);
        rig.stream = Arc::new(FakeStream::signalling());
        // A poll an hour away: only the signal can bring the records in
        // within `until`'s bound.
        let pollers = rig.start_polling_every(spec(), Duration::from_secs(3600));
        let reads = |r: &Rig| r.stream.reads.load(std::sync::atomic::Ordering::SeqCst);
        rig.until(|r| reads(r) >= 1).await;
        rig.stream.write("k", 0);
        rig.until(|r| r.seen().len() == 1).await;
        rig.stream.write("k", 1);
        rig.stream.write("j", 2);
        rig.until(|r| r.seen().len() == 3).await;
        pollers.stop("m-1").await;
        assert_eq!(
            rig.seen(),
            vec![("k".into(), 0), ("k".into(), 1), ("j".into(), 2)]
        );
    }

    #[tokio::test]
    async fn a_role_that_may_not_read_leaves_the_shard_alone_until_it_may() {
        let rig = Rig::new(None);
        for n in 0..5 {
            rig.stream.write("k", n);
        }
        let refusal = "Cannot access stream s. Please ensure the role can perform the GetRecords, GetShardIterator, DescribeStream, and ListStreams Actions on your stream in IAM.";
        *rig.function.refusal.lock() = Some(refusal.into());
        let pollers = rig.start(spec());
        rig.until(|r| {
            r.function
                .role_asked
                .load(std::sync::atomic::Ordering::SeqCst)
                >= 20
        })
        .await;
        assert!(rig.seen().is_empty());
        assert_eq!(pollers.last_result("m-1"), format!("PROBLEM: {refusal}"));
        *rig.function.refusal.lock() = None;
        rig.until(|r| r.seen().len() >= 5).await;
        pollers.stop("m-1").await;
        assert_eq!(
            rig.seen(),
            (0..5).map(|n| ("k".to_string(), n)).collect::<Vec<_>>()
        );
        assert_eq!(pollers.last_result("m-1"), LAST_RESULT_OK);
    }

    #[tokio::test]
    async fn records_of_a_key_stay_in_order_across_parallel_lanes() {
        let rig = Rig::new(None);
        for n in 0..300 {
            rig.stream.write(&format!("k{}", n % 7), n);
        }
        let mut spec = spec();
        spec.parallelization = 4;
        let pollers = rig.start(spec);
        rig.until(|r| r.seen().len() >= 300).await;
        pollers.stop("m-1").await;
        let seen = rig.seen();
        assert_eq!(seen.len(), 300);
        for k in 0..7 {
            let ns: Vec<u64> = seen
                .iter()
                .filter(|(key, _)| *key == format!("k{k}"))
                .map(|(_, n)| *n)
                .collect();
            let expected: Vec<u64> = (0..300).filter(|n| n % 7 == k).collect();
            assert_eq!(ns, expected, "k{k}");
        }
        assert!(rig.function.batches.lock().iter().all(|b| b.len() <= 10));
    }

    #[tokio::test]
    async fn a_failing_record_is_bisected_out_and_sent_on_failure() {
        let rig = Rig::new(Some(5));
        for n in 0..8 {
            rig.stream.write(&format!("k{n}"), n);
        }
        let mut spec = spec();
        spec.bisect_on_error = true;
        spec.maximum_retry_attempts = Some(2);
        spec.on_failure = Some("arn:aws:sqs:us-east-1:111111111111:dlq".into());
        let pollers = rig.start(spec);
        rig.until(|r| !r.sink.0.lock().is_empty()).await;
        rig.stream.write("after", 100);
        rig.until(|r| r.seen().iter().any(|(k, _)| k == "after"))
            .await;
        pollers.stop("m-1").await;
        let delivered = rig.sink.0.lock().clone();
        assert_eq!(delivered.len(), 1);
        let (destination, record) = &delivered[0];
        assert_eq!(destination, "arn:aws:sqs:us-east-1:111111111111:dlq");
        assert_eq!(
            record["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
        // The lone record's first invocation and its two retries.
        assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(record["responseContext"]["functionError"], "Unhandled");
        let info = &record["DDBStreamBatchInfo"];
        assert_eq!(info["batchSize"], 1);
        assert_eq!(info["startSequenceNumber"], format!("{:021}", 6));
        assert_eq!(info["streamArn"], STREAM);
        // Every other record succeeded exactly once.
        let succeeded: HashSet<u64> = rig
            .function
            .batches
            .lock()
            .iter()
            .filter(|b| !b.iter().any(|(_, n)| *n == 5))
            .flatten()
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(succeeded, [0, 1, 2, 3, 4, 6, 7, 100].into());
    }

    #[tokio::test]
    async fn a_restart_resumes_after_the_last_processed_record() {
        let rig = Rig::new(None);
        rig.stream.write("a", 1);
        let pollers = rig.start(spec());
        rig.until(|r| r.seen().len() == 1).await;
        // The checkpoint is saved once the round is processed.
        rig.until(|r| {
            r.checkpoints.0.lock().get("shard-1")
                == Some(&ShardPosition::After(format!("{:021}", 1)))
        })
        .await;
        pollers.stop("m-1").await;
        rig.stream.write("a", 2);
        let restarted = rig.start(spec());
        rig.until(|r| r.seen().len() >= 2).await;
        restarted.stop("m-1").await;
        assert_eq!(rig.seen(), [("a".to_string(), 1), ("a".to_string(), 2)]);
    }
}
