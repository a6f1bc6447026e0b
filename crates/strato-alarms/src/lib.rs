//! CloudWatch metric alarms (`PutMetricAlarm`, `DescribeAlarms`,
//! `DescribeAlarmsForMetric`, `DescribeAlarmHistory`, `DeleteAlarms`,
//! `SetAlarmState`, `Enable/DisableAlarmActions`, tags).
//!
//! Alarms are documents in the [`Store`] (they survive a restart) and live
//! in memory; one background task evaluates each on its period against
//! the metric store's in-memory buckets ([`Metrics::statistics`]), so
//! nothing on an invocation's path waits for alarms. A state change is
//! published to the alarm's SNS actions through [`EventSinks`] and emitted
//! as "CloudWatch Alarm State Change" onto the default event bus.
//! Like `strato-sqs`, no HTTP here: `operation(account, region, name, Doc)`.

pub mod alarm;
pub mod error;
pub mod evaluate;
mod history;
pub mod notify;
mod operations;

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use strato_engine::async_invoke::{AwsServiceEvent, EventSink, EventSinks, ServiceOrigin};
use strato_model::wire::{Doc, OpResult};
use strato_observe::metrics::SeriesKey;
use strato_observe::Metrics;
use strato_store::{DocumentKey, Store, StoreError};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::alarm::{Alarm, AlarmState, StateValue};
use crate::evaluate::{evaluate, Point};
use crate::history::HistoryItem;

/// The Store kind of alarms (id: the alarm name).
const ALARM_KIND: &str = "cloudwatch-alarm";

#[derive(Debug, thiserror::Error)]
pub enum AlarmsError {
    #[error("cannot load the alarms: {0}")]
    Store(#[from] StoreError),
    #[error("a stored alarm is unreadable: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// (account, region, alarm name): ordered, so listings come by name.
type AlarmKey = (String, String, String);

struct Entry {
    alarm: Alarm,
    /// When the evaluator looks at it next.
    next_due: Instant,
}

pub struct AlarmService {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    sinks: Arc<EventSinks>,
    /// Divides every period (tests run minutes in seconds).
    time_scale: u32,
    alarms: Mutex<BTreeMap<AlarmKey, Entry>>,
    /// One writer at a time: a change and its store write stay in order.
    writes: tokio::sync::Mutex<()>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl AlarmService {
    /// Loads every stored alarm. `time_scale` (1 in production) divides
    /// how often alarms are evaluated.
    pub async fn open(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        sinks: Arc<EventSinks>,
        time_scale: u32,
    ) -> Result<Arc<AlarmService>, AlarmsError> {
        let mut alarms = BTreeMap::new();
        let now = Instant::now();
        for doc in store.list_all_documents(ALARM_KIND).await? {
            let alarm: Alarm = serde_json::from_value(doc.doc)?;
            alarms.insert(
                (
                    alarm.account.clone(),
                    alarm.region.clone(),
                    alarm.name.clone(),
                ),
                Entry {
                    alarm,
                    next_due: now,
                },
            );
        }
        Ok(Arc::new(AlarmService {
            store,
            metrics,
            sinks,
            time_scale: time_scale.max(1),
            alarms: Mutex::new(alarms),
            writes: tokio::sync::Mutex::new(()),
        }))
    }

    /// Starts the evaluator; it ends when the service is dropped.
    pub fn start(self: &Arc<Self>) -> JoinHandle<()> {
        let weak: Weak<AlarmService> = Arc::downgrade(self);
        let tick = Duration::from_millis((1000 / u64::from(self.time_scale)).max(50));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                let Some(service) = weak.upgrade() else {
                    return;
                };
                service.evaluate_due().await;
            }
        })
    }

    /// An alarm's period on this server's clock.
    fn period(&self, period_s: i64) -> Duration {
        let ms = u64::try_from(period_s.saturating_mul(1000)).unwrap_or(60_000);
        Duration::from_millis(ms / u64::from(self.time_scale))
    }

    /// Evaluates every alarm whose period came round.
    pub async fn evaluate_due(&self) {
        let now = Instant::now();
        let due: Vec<Alarm> = {
            let mut alarms = self.alarms.lock();
            alarms
                .values_mut()
                .filter(|e| e.next_due <= now)
                .map(|e| {
                    e.next_due = now + self.period(e.alarm.period);
                    e.alarm.clone()
                })
                .collect()
        };
        if due.is_empty() {
            return;
        }
        // What invocations reported so far counts.
        if let Err(e) = self.metrics.settle().await {
            tracing::warn!(error = %e, "alarms: metrics did not settle");
        }
        for alarm in due {
            self.evaluate_alarm(&alarm).await;
        }
    }

    /// The alarm's last `EvaluationPeriods` periods, the newest being the
    /// one under way, as (first period's start, points).
    fn datapoints(&self, alarm: &Alarm, now_ms: i64) -> (i64, Vec<Option<Point>>) {
        let period_ms = alarm.period.saturating_mul(1000).max(60_000);
        let current = now_ms.div_euclid(period_ms) * period_ms;
        let start = current - (alarm.evaluation_periods - 1) * period_ms;
        let mut dimensions = alarm.dimensions.clone();
        dimensions.sort();
        let key = SeriesKey {
            account: alarm.account.clone(),
            region: alarm.region.clone(),
            namespace: alarm.namespace.clone(),
            metric: alarm.metric_name.clone(),
            dimensions,
        };
        let stat = alarm.statistic_name();
        let found = self
            .metrics
            .statistics(&key, start, current + period_ms, alarm.period);
        let points = (0..alarm.evaluation_periods)
            .map(|i| {
                let at = start + i * period_ms;
                found
                    .iter()
                    .find(|dp| dp.timestamp_ms == at)
                    .and_then(|dp| {
                        Some(Point {
                            start_ms: at,
                            value: dp.bucket.statistic(stat)?,
                            sample_count: dp.bucket.count as f64,
                        })
                    })
            })
            .collect();
        (start, points)
    }

    async fn evaluate_alarm(&self, alarm: &Alarm) {
        let now = now_ms();
        let (start, points) = self.datapoints(alarm, now);
        let Some(outcome) = evaluate(alarm, &points, start, now) else {
            return;
        };
        if outcome.state == alarm.state.value {
            return;
        }
        let change = StateChange {
            value: outcome.state,
            reason: outcome.reason,
            reason_data: Some(outcome.reason_data.to_string()),
        };
        if let Err(e) = self
            .change_state(alarm, change, Some(alarm.configuration_updated_ms))
            .await
        {
            tracing::warn!(alarm = %alarm.name, error = %e.message, "alarm state not saved");
        }
    }

    fn key(account: &str, region: &str, name: &str) -> AlarmKey {
        (account.to_string(), region.to_string(), name.to_string())
    }

    fn document_key(alarm: &Alarm) -> DocumentKey {
        DocumentKey::new(&alarm.account, &alarm.region, ALARM_KIND, &alarm.name)
    }

    async fn save(&self, alarm: &Alarm) -> Result<(), strato_model::wire::ServiceError> {
        let doc = serde_json::to_value(alarm).map_err(|e| {
            tracing::error!(error = %e, "cannot encode an alarm");
            error::internal()
        })?;
        self.store
            .put_document(&Self::document_key(alarm), &doc)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot store an alarm");
                error::internal()
            })
    }

    /// Sets an alarm's state (the evaluator's conclusion, or
    /// SetAlarmState's). With `if_configuration`, only while the alarm's
    /// configuration is still the one evaluated. On a change of value the
    /// actions run and the event is emitted.
    async fn change_state(
        &self,
        alarm: &Alarm,
        change: StateChange,
        if_configuration: Option<i64>,
    ) -> Result<(), strato_model::wire::ServiceError> {
        let guard = self.writes.lock().await;
        let now = now_ms();
        let (old, updated) = {
            let mut alarms = self.alarms.lock();
            let Some(entry) =
                alarms.get_mut(&Self::key(&alarm.account, &alarm.region, &alarm.name))
            else {
                return Err(error::not_found());
            };
            if if_configuration.is_some_and(|c| c != entry.alarm.configuration_updated_ms) {
                return Ok(());
            }
            let old = entry.alarm.state.clone();
            entry.alarm.state = AlarmState {
                value: change.value,
                reason: change.reason,
                reason_data: change.reason_data,
                updated_ms: now,
                transitioned_ms: if change.value == old.value {
                    old.transitioned_ms
                } else {
                    now
                },
            };
            (old, entry.alarm.clone())
        };
        self.save(&updated).await?;
        let transitioned = old.value != updated.state.value;
        if transitioned {
            self.record(&updated, HistoryItem::state_update(&updated, &old, now))
                .await;
        }
        drop(guard);
        if transitioned {
            self.announce(&updated, &old).await;
        }
        Ok(())
    }

    /// Runs the new state's actions and emits the state-change event.
    async fn announce(&self, alarm: &Alarm, old: &AlarmState) {
        if alarm.actions_enabled {
            let message = notify::notification(alarm, old).to_string();
            let subject = notify::subject(alarm);
            let alarm_arn = alarm.arn();
            // Alarms publish as the account's CloudWatch: the topic's
            // policy must admit `cloudwatch.amazonaws.com` or the owner.
            let origin = ServiceOrigin {
                principal: "cloudwatch.amazonaws.com",
                source_arn: &alarm_arn,
                source_account: &alarm.account,
                source_owner: Some(&alarm.account),
            };
            for arn in alarm.actions_for(alarm.state.value) {
                let result = self
                    .sinks
                    .deliver_notification(
                        &alarm.account,
                        &alarm.region,
                        arn,
                        &subject,
                        Bytes::from(message.clone()),
                        origin,
                    )
                    .await;
                if let Err(e) = &result {
                    tracing::warn!(alarm = %alarm.name, action = %arn, error = %e, "alarm action failed");
                }
                let item = HistoryItem::action(alarm, arn, &message, result.err(), now_ms());
                self.record(alarm, item).await;
            }
        }
        let event = AwsServiceEvent {
            account: alarm.account.clone(),
            region: alarm.region.clone(),
            source: "aws.cloudwatch".into(),
            detail_type: "CloudWatch Alarm State Change".into(),
            resources: vec![alarm.arn()],
            detail: notify::event_detail(alarm, old),
        };
        if let Err(e) = self.sinks.emit(event).await {
            tracing::warn!(alarm = %alarm.name, error = %e, "alarm state change event not emitted");
        }
    }

    /// Keeps a history item (a failure to is logged: history is advisory).
    async fn record(&self, alarm: &Alarm, item: HistoryItem) {
        if let Err(e) = history::append(self.store.as_ref(), alarm, &item).await {
            tracing::warn!(alarm = %alarm.name, error = %e, "alarm history item not stored");
        }
    }

    /// Whether `op` is one of the alarm operations [`Self::operation`] answers.
    pub fn handles(op: &str) -> bool {
        operations::OPERATIONS.contains(&op)
    }

    /// One CloudWatch operation on alarms; `None` for an operation that is
    /// not about alarms.
    pub async fn operation(
        &self,
        account: &str,
        region: &str,
        op: &str,
        input: Doc,
    ) -> Option<OpResult> {
        operations::dispatch(self, account, region, op, input).await
    }
}

/// A state to set.
struct StateChange {
    value: StateValue,
    reason: String,
    reason_data: Option<String>,
}

#[cfg(test)]
mod tests;
