//! Provisioned concurrency: instances initialized ahead of invocations and
//! kept, whatever the keep-alive, for one published version or alias.
//!
//! A configuration asks for `requested` instances of one version. They are
//! started in the background (status `IN_PROGRESS`), each marked with a
//! [`ProvisionedMark`] and put into that version's pool, where invocations
//! take them before any other instance; once `requested` are initialized
//! and waiting, the status is `READY`. An instance that ends (a timeout, a
//! crash) is replaced by the engine's periodic pass. Their invocations
//! report no `Init Duration`: the init happened before anyone asked.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::concurrency::Demand;
use crate::{pool_key, Engine, InvokeTarget, PoolKey, INITIALIZATION_PROVISIONED};

/// `(account, region, function, qualifier)`.
pub type ProvisionedKey = (String, String, String, String);

/// The `StatusReason` AWS gives a configuration whose instances fail their
/// init.
pub const INIT_FAILURE_REASON: &str = "FUNCTION_ERROR_INIT_FAILURE";

/// The `Status` of a provisioned concurrency configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionedStatus {
    InProgress,
    Ready,
    Failed,
}

impl ProvisionedStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisionedStatus::InProgress => "IN_PROGRESS",
            ProvisionedStatus::Ready => "READY",
            ProvisionedStatus::Failed => "FAILED",
        }
    }
}

/// What GetProvisionedConcurrencyConfig reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedReport {
    pub requested: u32,
    /// Instances initialized and alive now.
    pub available: u32,
    /// Instances allocated: initialized (AWS reads 0 until they are).
    pub allocated: u32,
    pub status: ProvisionedStatus,
    pub reason: Option<String>,
}

/// One configuration's live state.
pub struct ProvisionedState {
    pub(crate) requested: u32,
    pub(crate) pool_key: PoolKey,
    /// Initialized instances alive now.
    available: AtomicU32,
    /// Instances being started now.
    starting: AtomicU32,
    status: Mutex<(ProvisionedStatus, Option<String>)>,
    /// Replaced or deleted: its instances are ordinary ones now.
    retired: AtomicBool,
}

impl ProvisionedState {
    pub(crate) fn new(requested: u32, pool_key: PoolKey) -> ProvisionedState {
        ProvisionedState {
            requested,
            pool_key,
            available: AtomicU32::new(0),
            starting: AtomicU32::new(0),
            status: Mutex::new((ProvisionedStatus::InProgress, None)),
            retired: AtomicBool::new(false),
        }
    }

    pub fn report(&self) -> ProvisionedReport {
        let (status, reason) = self.status.lock().clone();
        let available = self.available.load(Ordering::Acquire).min(self.requested);
        ProvisionedReport {
            requested: self.requested,
            available,
            // AWS counts an instance allocated once its init completed: both
            // read 0 while the configuration is IN_PROGRESS.
            allocated: available,
            status,
            reason,
        }
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    /// Instances to start now to reach the requested count; claims them as
    /// starting.
    pub(crate) fn claim_missing(&self) -> u32 {
        if self.is_retired() || self.status.lock().0 == ProvisionedStatus::Failed {
            return 0;
        }
        let mut claimed = 0;
        let _ = self
            .starting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |starting| {
                let have = self.available.load(Ordering::Acquire) + starting;
                claimed = self.requested.saturating_sub(have);
                Some(starting + claimed)
            });
        claimed
    }

    /// One claimed instance is initialized; returns its mark.
    pub(crate) fn started(self: &Arc<Self>) -> ProvisionedMark {
        self.available.fetch_add(1, Ordering::AcqRel);
        self.starting.fetch_sub(1, Ordering::AcqRel);
        let mut status = self.status.lock();
        if status.0 == ProvisionedStatus::InProgress
            && self.available.load(Ordering::Acquire) >= self.requested
        {
            *status = (ProvisionedStatus::Ready, None);
        }
        ProvisionedMark(self.clone())
    }

    /// One claimed instance could not be initialized: the configuration
    /// fails (as on AWS, where a function whose init fails cannot be
    /// provisioned) with AWS's short `StatusReason`; the error itself goes
    /// to the server log.
    pub(crate) fn start_failed(&self) {
        self.starting.fetch_sub(1, Ordering::AcqRel);
        let mut status = self.status.lock();
        if status.0 != ProvisionedStatus::Ready {
            *status = (
                ProvisionedStatus::Failed,
                Some(INIT_FAILURE_REASON.to_string()),
            );
        }
    }
}

/// Held by a provisioned instance; its end frees its place, so the
/// engine starts a replacement.
pub struct ProvisionedMark(Arc<ProvisionedState>);

impl ProvisionedMark {
    /// The provisioned concurrency its configuration allocates.
    pub fn allocated(&self) -> u32 {
        self.0.requested
    }

    /// Whether the instance still belongs to a live configuration.
    pub fn is_current(&self) -> bool {
        !self.0.is_retired()
    }
}

impl Drop for ProvisionedMark {
    fn drop(&mut self) {
        self.0.available.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Engine {
    /// Allocates `requested` provisioned instances of `target`'s version
    /// under `key` (a version or alias of a function), replacing what the
    /// key had. Returns at once; the instances start in the background.
    pub fn provision(self: &Arc<Self>, key: ProvisionedKey, target: InvokeTarget, requested: u32) {
        let state = Arc::new(ProvisionedState::new(requested, pool_key(&target)));
        if let Some((old, _)) = self
            .provisioned
            .insert(key, (state.clone(), target.clone()))
        {
            self.end_provisioned(&old);
        }
        self.fill_provisioned(&state, &target);
    }

    /// Ends a provisioned concurrency configuration; its idle instances end.
    pub fn deprovision(&self, key: &ProvisionedKey) {
        if let Some((_, (state, _))) = self.provisioned.remove(key) {
            self.end_provisioned(&state);
        }
    }

    /// Whether `target`'s version has provisioned concurrency (through the
    /// version or an alias of it): its invocations may take provisioned
    /// slots, which other versions may not.
    pub(crate) fn demand_of(&self, target: &InvokeTarget) -> Demand {
        let key = pool_key(target);
        let provisioned = self
            .provisioned
            .iter()
            .any(|entry| entry.value().0.pool_key == key && !entry.value().0.is_retired());
        if provisioned {
            Demand::Provisioned
        } else {
            Demand::OnDemand
        }
    }

    /// The status of a provisioned concurrency configuration.
    pub fn provisioned_report(&self, key: &ProvisionedKey) -> Option<ProvisionedReport> {
        self.provisioned.get(key).map(|entry| entry.0.report())
    }

    fn end_provisioned(&self, state: &ProvisionedState) {
        state.retire();
        if let Some(pool) = self.pools.get(&state.pool_key) {
            pool.end_retired_provisioned();
        }
    }

    /// Starts what provisioned configurations miss (instances that ended).
    pub(crate) fn maintain_provisioned(self: &Arc<Self>) {
        let configs: Vec<_> = self
            .provisioned
            .iter()
            .map(|entry| entry.value().clone())
            .collect();
        for (state, target) in configs {
            self.fill_provisioned(&state, &target);
        }
    }

    fn fill_provisioned(self: &Arc<Self>, state: &Arc<ProvisionedState>, target: &InvokeTarget) {
        if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        for _ in 0..state.claim_missing() {
            let (engine, state, target) = (self.clone(), state.clone(), target.clone());
            tokio::spawn(async move {
                let request_id = uuid::Uuid::new_v4().to_string();
                let started = engine
                    .start_instance(
                        &target,
                        &request_id,
                        Instant::now(),
                        false,
                        INITIALIZATION_PROVISIONED,
                    )
                    .await;
                match started {
                    Ok(Ok(mut instance)) => {
                        // The init happened before any invocation: none reports it.
                        instance.init_duration = None;
                        drop(instance.stem_refill.take());
                        instance.provisioned = Some(state.started());
                        let pool = engine
                            .pools
                            .entry(state.pool_key.clone())
                            .or_default()
                            .clone();
                        pool.release(instance);
                        if state.is_retired() {
                            pool.end_retired_provisioned();
                        }
                    }
                    Ok(Err(answer)) => {
                        tracing::warn!(
                            function = %target.config.name,
                            version = %target.config.version,
                            error = %String::from_utf8_lossy(&answer.payload),
                            "provisioned instance failed its init"
                        );
                        state.start_failed();
                    }
                    Err(e) => {
                        tracing::warn!(
                            function = %target.config.name,
                            version = %target.config.version,
                            error = %e,
                            "provisioned instance could not start"
                        );
                        state.start_failed();
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PoolKey {
        ("a".into(), "r".into(), "f".into(), "1".into(), 0)
    }

    #[test]
    fn ready_once_every_requested_instance_is_initialized() {
        let state = Arc::new(ProvisionedState::new(2, key()));
        assert_eq!(state.claim_missing(), 2);
        assert_eq!(state.claim_missing(), 0);
        // Starting instances are not allocated yet, as AWS reports them.
        assert_eq!((state.report().allocated, state.report().available), (0, 0));
        let first = state.started();
        assert_eq!(state.report().status, ProvisionedStatus::InProgress);
        assert_eq!(state.report().allocated, 1);
        let _second = state.started();
        let report = state.report();
        assert_eq!(report.status, ProvisionedStatus::Ready);
        assert_eq!(report.available, 2);
        // An instance that ends is missing until replaced.
        drop(first);
        assert_eq!(state.report().available, 1);
        assert_eq!(state.claim_missing(), 1);
    }

    #[test]
    fn a_failed_init_fails_the_configuration_and_stops_retries() {
        let state = Arc::new(ProvisionedState::new(1, key()));
        assert_eq!(state.claim_missing(), 1);
        state.start_failed();
        let report = state.report();
        assert_eq!(report.status, ProvisionedStatus::Failed);
        assert_eq!(
            report.reason.as_deref(),
            Some("FUNCTION_ERROR_INIT_FAILURE")
        );
        assert_eq!((report.allocated, report.available), (0, 0));
        assert_eq!(state.claim_missing(), 0);
    }
}
