//! Admission: the account's concurrency limit per region, reserved
//! concurrency per function, and the permits invocations hold.
//!
//! Why over 800 lines: about 290 of them are unit tests; the admission
//! rules read one state under one lock, so they stay together.
//!
//! Each (account, region) has a limit (the account record's, default 1000).
//! A function with reserved concurrency `r` may run at most `r` invocations
//! at once and those never count against anyone else; every other function
//! of the account shares the unreserved pool, `limit − Σ set aside`, where a
//! function sets aside its reserved concurrency or, without one, its
//! provisioned concurrency (as on AWS, provisioned concurrency of a function
//! without a reservation comes out of the account's unreserved pool).
//! Invocations of a version that has provisioned concurrency ([`Demand`])
//! take its provisioned slots first; every other invocation runs on demand.
//! With a reservation, the provisioned share is held within it: on-demand
//! invocations get `r − provisioned` (reserved 1 with 1 provisioned on
//! version 1 throttles `$LATEST`, as AWS does); without one, they share the
//! unreserved pool.
//!
//! Admission is lock-free: the per-account and per-function counters are
//! atomics changed with compare-and-swap, found through sharded maps
//! ([`DashMap`]), and nothing on the invoke path touches the store. The
//! limit and the reservations are pushed into the limiter by the control
//! plane (at start, when they change, and by a periodic account refresh).
//!
//! A [`Permit`] returns its slot when dropped, so every way out of an
//! invocation (answer, error, timeout, crash, a caller that went away)
//! gives it back.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::Notify;

/// An account's concurrency limit per region unless set otherwise.
pub const DEFAULT_ACCOUNT_LIMIT: u32 = strato_model::limits::DEFAULT_ACCOUNT_CONCURRENCY;

/// What AWS keeps for functions without reserved concurrency: a
/// reservation may never leave fewer unreserved executions than this.
pub const MIN_UNRESERVED: u32 = 100;

/// No reservation (the function shares the unreserved pool).
const UNRESERVED: u32 = u32::MAX;

/// Why an invocation was not admitted; the `Reason` member of AWS's
/// TooManyRequestsException.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// The function's reserved concurrency is in use (or is 0).
    Reserved,
    /// The account's unreserved concurrency is in use.
    Account,
}

impl Throttle {
    pub fn reason(self) -> &'static str {
        match self {
            Throttle::Reserved => "ReservedFunctionConcurrentInvocationLimitExceeded",
            Throttle::Account => "ConcurrentInvocationLimitExceeded",
        }
    }
}

/// One (account, region).
struct AccountSlot {
    limit: AtomicU32,
    /// Σ concurrency the account's functions in this region set aside
    /// (reserved, or provisioned without a reservation).
    reserved: AtomicU64,
    /// Invocations running in the unreserved pool.
    busy: AtomicU32,
    /// Invocations running on reservations (for reporting only).
    reserved_busy: AtomicU32,
    /// Event invocations waiting for a slot; releases only notify when
    /// someone waits.
    waiters: AtomicUsize,
    freed: Notify,
}

impl AccountSlot {
    fn new(limit: u32) -> AccountSlot {
        AccountSlot {
            limit: AtomicU32::new(limit),
            reserved: AtomicU64::new(0),
            busy: AtomicU32::new(0),
            reserved_busy: AtomicU32::new(0),
            waiters: AtomicUsize::new(0),
            freed: Notify::new(),
        }
    }

    fn unreserved(&self) -> u32 {
        let limit = u64::from(self.limit.load(Ordering::Acquire));
        // At most `limit`, which came from a `u32`.
        u32::try_from(limit.saturating_sub(self.reserved.load(Ordering::Acquire)))
            .unwrap_or(u32::MAX)
    }

    fn wake(&self) {
        if self.waiters.load(Ordering::Acquire) > 0 {
            self.freed.notify_waiters();
        }
    }
}

/// One function (all its versions, as reserved concurrency applies to the
/// function as a whole).
struct FunctionSlot {
    reserved: AtomicU32,
    busy: AtomicU32,
    /// Σ provisioned concurrency of the function's versions and aliases.
    provisioned: AtomicU32,
    /// Invocations running on provisioned slots (functions without a
    /// reservation).
    provisioned_busy: AtomicU32,
    /// Serializes control-plane changes of `reserved` and `provisioned`
    /// (never taken on the invoke path).
    update: parking_lot::Mutex<()>,
}

impl FunctionSlot {
    fn new() -> FunctionSlot {
        FunctionSlot {
            reserved: AtomicU32::new(UNRESERVED),
            busy: AtomicU32::new(0),
            provisioned: AtomicU32::new(0),
            provisioned_busy: AtomicU32::new(0),
            update: parking_lot::Mutex::new(()),
        }
    }

    /// What the function takes out of the account's unreserved pool.
    fn set_aside(&self) -> u64 {
        match self.reserved.load(Ordering::Acquire) {
            UNRESERVED => u64::from(self.provisioned.load(Ordering::Acquire)),
            reserved => u64::from(reserved),
        }
    }
}

/// Why provisioned concurrency cannot be allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionRefusal {
    /// More than the function's reserved concurrency.
    AboveReserved,
    /// More than the account's unreserved concurrency (carried).
    AboveUnreserved(u32),
    /// It would leave fewer than the minimum (carried) unreserved.
    BelowMinimum(u32),
}

/// Increments `counter` if it stays at most `max`.
/// What an invocation may run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demand {
    /// Its version or alias has provisioned concurrency: a provisioned slot
    /// first, then what the function may use on demand.
    Provisioned,
    /// On-demand concurrency only (`$LATEST`, versions without
    /// provisioned concurrency).
    OnDemand,
}

fn take(counter: &AtomicU32, max: u32) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

type AccountKey = (String, String);
type FunctionKey = (String, String, String);

#[derive(Default)]
pub struct ConcurrencyLimiter {
    /// Account id → its limit (applies in every region).
    limits: DashMap<String, u32>,
    accounts: DashMap<AccountKey, Arc<AccountSlot>>,
    functions: DashMap<FunctionKey, Arc<FunctionSlot>>,
}

enum Held {
    Unreserved,
    Reserved(Arc<FunctionSlot>),
    Provisioned(Arc<FunctionSlot>),
}

/// One admitted invocation. Dropping it frees the slot.
pub struct Permit {
    account: Arc<AccountSlot>,
    held: Held,
}

impl Drop for Permit {
    fn drop(&mut self) {
        match &self.held {
            Held::Unreserved => {
                self.account.busy.fetch_sub(1, Ordering::AcqRel);
            }
            Held::Reserved(function) => {
                function.busy.fetch_sub(1, Ordering::AcqRel);
                self.account.reserved_busy.fetch_sub(1, Ordering::AcqRel);
            }
            Held::Provisioned(function) => {
                function.provisioned_busy.fetch_sub(1, Ordering::AcqRel);
                self.account.reserved_busy.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.account.wake();
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.held {
            Held::Unreserved => "Permit(unreserved)",
            Held::Reserved(_) => "Permit(reserved)",
            Held::Provisioned(_) => "Permit(provisioned)",
        })
    }
}

/// Decrements the waiter count however the wait ends.
struct Waiting<'a>(&'a AccountSlot);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConcurrencyLimiter {
    pub fn new() -> ConcurrencyLimiter {
        ConcurrencyLimiter::default()
    }

    fn account(&self, account: &str, region: &str) -> Arc<AccountSlot> {
        let key = (account.to_string(), region.to_string());
        if let Some(slot) = self.accounts.get(&key) {
            return slot.clone();
        }
        let limit = self
            .limits
            .get(account)
            .map_or(DEFAULT_ACCOUNT_LIMIT, |l| *l);
        self.accounts
            .entry(key)
            .or_insert_with(|| Arc::new(AccountSlot::new(limit)))
            .clone()
    }

    /// Sets an account's limit (in every region). Takes effect for the next
    /// admission; running invocations are not affected.
    pub fn set_account_limit(&self, account: &str, limit: u32) {
        if self.limits.insert(account.to_string(), limit) == Some(limit) {
            return;
        }
        for slot in self.accounts.iter().filter(|s| s.key().0 == account) {
            slot.limit.store(limit, Ordering::Release);
            slot.freed.notify_waiters();
        }
    }

    /// Forgets an account (it was deleted).
    pub fn forget_account(&self, account: &str) {
        self.limits.remove(account);
        self.accounts.retain(|k, _| k.0 != account);
        self.functions.retain(|k, _| k.0 != account);
    }

    /// The account's limit.
    pub fn account_limit(&self, account: &str) -> u32 {
        self.limits
            .get(account)
            .map_or(DEFAULT_ACCOUNT_LIMIT, |l| *l)
    }

    /// Sets (or, with `None`, removes) a function's reserved concurrency.
    /// The caller checks the unreserved minimum first (see [`Self::check_reservation`]).
    pub fn set_reserved(&self, account: &str, region: &str, function: &str, reserved: Option<u32>) {
        let acc = self.account(account, region);
        let new = reserved.unwrap_or(UNRESERVED);
        let key = (
            account.to_string(),
            region.to_string(),
            function.to_string(),
        );
        let slot = self.function(key);
        let _update = slot.update.lock();
        let before = slot.set_aside();
        slot.reserved.store(new, Ordering::Release);
        Self::move_set_aside(&acc, before, slot.set_aside());
    }

    /// Sets the total provisioned concurrency of a function (all its
    /// versions and aliases). The caller checks it first (see
    /// [`Self::check_provisioned`]).
    pub fn set_provisioned(&self, account: &str, region: &str, function: &str, total: u32) {
        let acc = self.account(account, region);
        let key = (
            account.to_string(),
            region.to_string(),
            function.to_string(),
        );
        let slot = self.function(key);
        let _update = slot.update.lock();
        let before = slot.set_aside();
        slot.provisioned.store(total, Ordering::Release);
        Self::move_set_aside(&acc, before, slot.set_aside());
    }

    /// A function's total provisioned concurrency.
    pub fn provisioned(&self, account: &str, region: &str, function: &str) -> u32 {
        let key = (
            account.to_string(),
            region.to_string(),
            function.to_string(),
        );
        self.functions
            .get(&key)
            .map_or(0, |slot| slot.provisioned.load(Ordering::Acquire))
    }

    /// Whether `function` may have `total` provisioned concurrency: within
    /// its reservation if it has one, else out of the unreserved pool
    /// without leaving less than [`MIN_UNRESERVED`].
    pub fn check_provisioned(
        &self,
        account: &str,
        region: &str,
        function: &str,
        total: u32,
    ) -> Result<(), ProvisionRefusal> {
        if let Some(reserved) = self.reserved(account, region, function) {
            return if total > reserved {
                Err(ProvisionRefusal::AboveReserved)
            } else {
                Ok(())
            };
        }
        let current = self.provisioned(account, region, function);
        let unreserved = self.unreserved(account, region);
        let added = total.saturating_sub(current);
        if added > unreserved {
            return Err(ProvisionRefusal::AboveUnreserved(unreserved));
        }
        if added > 0 && unreserved - added < MIN_UNRESERVED {
            return Err(ProvisionRefusal::BelowMinimum(MIN_UNRESERVED));
        }
        Ok(())
    }

    fn function(&self, key: FunctionKey) -> Arc<FunctionSlot> {
        self.functions
            .entry(key)
            .or_insert_with(|| Arc::new(FunctionSlot::new()))
            .clone()
    }

    fn move_set_aside(acc: &AccountSlot, before: u64, after: u64) {
        // Add before subtracting, so the total never wraps below zero.
        acc.reserved.fetch_add(after, Ordering::AcqRel);
        acc.reserved.fetch_sub(before, Ordering::AcqRel);
        acc.freed.notify_waiters();
    }

    /// Forgets a deleted function's reservation.
    pub fn forget_function(&self, account: &str, region: &str, function: &str) {
        self.set_reserved(account, region, function, None);
        self.set_provisioned(account, region, function, 0);
        let key = (
            account.to_string(),
            region.to_string(),
            function.to_string(),
        );
        self.functions
            .remove_if(&key, |_, slot| slot.busy.load(Ordering::Acquire) == 0);
    }

    /// A function's reserved concurrency, as the limiter knows it.
    pub fn reserved(&self, account: &str, region: &str, function: &str) -> Option<u32> {
        let key = (
            account.to_string(),
            region.to_string(),
            function.to_string(),
        );
        let value = self.functions.get(&key)?.reserved.load(Ordering::Acquire);
        (value != UNRESERVED).then_some(value)
    }

    /// `limit − Σ reserved`: what functions without a reservation share.
    pub fn unreserved(&self, account: &str, region: &str) -> u32 {
        self.account(account, region).unreserved()
    }

    /// Whether reserving `reserved` for `function` keeps at least
    /// [`MIN_UNRESERVED`] unreserved; `Err` carries that minimum.
    pub fn check_reservation(
        &self,
        account: &str,
        region: &str,
        function: &str,
        reserved: u32,
    ) -> Result<(), u32> {
        let acc = self.account(account, region);
        let key = (
            account.to_string(),
            region.to_string(),
            function.to_string(),
        );
        let current = self.functions.get(&key).map_or(0, |slot| slot.set_aside());
        let others = acc.reserved.load(Ordering::Acquire).saturating_sub(current);
        let limit = u64::from(acc.limit.load(Ordering::Acquire));
        if limit < others + u64::from(reserved) + u64::from(MIN_UNRESERVED) {
            return Err(MIN_UNRESERVED);
        }
        Ok(())
    }

    /// Invocations of the account running now (reserved and unreserved).
    pub fn in_use(&self, account: &str, region: &str) -> u32 {
        let acc = self.account(account, region);
        acc.busy.load(Ordering::Acquire) + acc.reserved_busy.load(Ordering::Acquire)
    }

    /// Admits an invocation now, or says why not.
    pub fn try_acquire(
        &self,
        account: &str,
        region: &str,
        function: &str,
        demand: Demand,
    ) -> Result<Permit, Throttle> {
        let acc = self.account(account, region);
        self.admit(acc, account, region, function, demand)
    }

    fn admit(
        &self,
        acc: Arc<AccountSlot>,
        account: &str,
        region: &str,
        function: &str,
        demand: Demand,
    ) -> Result<Permit, Throttle> {
        let key = (
            account.to_string(),
            region.to_string(),
            function.to_string(),
        );
        let reserved = self.functions.get(&key).map(|slot| slot.clone());
        if let Some(slot) = reserved {
            let max = slot.reserved.load(Ordering::Acquire);
            let provisioned = slot.provisioned.load(Ordering::Acquire);
            if demand == Demand::Provisioned
                && provisioned > 0
                && take(&slot.provisioned_busy, provisioned)
            {
                acc.reserved_busy.fetch_add(1, Ordering::AcqRel);
                return Ok(Permit {
                    account: acc,
                    held: Held::Provisioned(slot),
                });
            }
            if max != UNRESERVED {
                // Provisioned instances hold their share of the
                // reservation: other versions (and a provisioned one's
                // spill-over) get the rest.
                if !take(&slot.busy, max.saturating_sub(provisioned)) {
                    return Err(Throttle::Reserved);
                }
                acc.reserved_busy.fetch_add(1, Ordering::AcqRel);
                return Ok(Permit {
                    account: acc,
                    held: Held::Reserved(slot),
                });
            }
        }
        if !take(&acc.busy, acc.unreserved()) {
            return Err(Throttle::Account);
        }
        Ok(Permit {
            account: acc,
            held: Held::Unreserved,
        })
    }

    /// Admits an invocation as soon as a slot frees, waiting at most until
    /// `deadline`; then says why it was never admitted.
    pub async fn acquire_by(
        &self,
        account: &str,
        region: &str,
        function: &str,
        demand: Demand,
        deadline: tokio::time::Instant,
    ) -> Result<Permit, Throttle> {
        let acc = self.account(account, region);
        acc.waiters.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&acc);
        loop {
            // Registered before trying, so a release in between is not missed.
            let freed = acc.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            match self.admit(acc.clone(), account, region, function, demand) {
                Ok(permit) => return Ok(permit),
                Err(throttle) => {
                    tokio::select! {
                        _ = &mut freed => {}
                        _ = tokio::time::sleep_until(deadline) => return Err(throttle),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: &str = "111111111111";
    const R: &str = "us-east-1";

    #[test]
    fn reserved_zero_throttles_with_the_reserved_reason() {
        let l = ConcurrencyLimiter::new();
        l.set_reserved(A, R, "f", Some(0));
        assert_eq!(
            l.try_acquire(A, R, "f", Demand::OnDemand).unwrap_err(),
            Throttle::Reserved
        );
        assert!(l.try_acquire(A, R, "g", Demand::OnDemand).is_ok());
    }

    #[test]
    fn reserved_functions_are_capped_and_others_share_the_rest() {
        let l = ConcurrencyLimiter::new();
        l.set_account_limit(A, 110);
        l.set_reserved(A, R, "big", Some(10));
        assert_eq!(l.unreserved(A, R), 100);
        let held: Vec<_> = (0..10)
            .map(|_| l.try_acquire(A, R, "big", Demand::OnDemand).unwrap())
            .collect();
        assert_eq!(
            l.try_acquire(A, R, "big", Demand::OnDemand).unwrap_err(),
            Throttle::Reserved
        );
        let others: Vec<_> = (0..100)
            .map(|i| {
                l.try_acquire(A, R, &format!("f{}", i % 3), Demand::OnDemand)
                    .unwrap()
            })
            .collect();
        assert_eq!(
            l.try_acquire(A, R, "f0", Demand::OnDemand).unwrap_err(),
            Throttle::Account
        );
        assert_eq!(l.in_use(A, R), 110);
        drop(held);
        drop(others);
        assert_eq!(l.in_use(A, R), 0);
    }

    #[test]
    fn provisioned_concurrency_comes_out_of_the_unreserved_pool_and_is_used_first() {
        let l = ConcurrencyLimiter::new();
        l.set_account_limit(A, 110);
        assert_eq!(
            l.check_provisioned(A, R, "p", 11),
            Err(ProvisionRefusal::BelowMinimum(100))
        );
        assert_eq!(
            l.check_provisioned(A, R, "p", 111),
            Err(ProvisionRefusal::AboveUnreserved(110))
        );
        assert_eq!(l.check_provisioned(A, R, "p", 10), Ok(()));
        l.set_provisioned(A, R, "p", 10);
        assert_eq!(l.unreserved(A, R), 100);
        // The other functions get the 100 unreserved; p's provisioned
        // version gets its 10 and then competes for the unreserved ones.
        let others: Vec<_> = (0..99)
            .map(|_| l.try_acquire(A, R, "f", Demand::OnDemand).unwrap())
            .collect();
        let p: Vec<_> = (0..11)
            .map(|_| l.try_acquire(A, R, "p", Demand::Provisioned).unwrap())
            .collect();
        assert_eq!(
            l.try_acquire(A, R, "p", Demand::Provisioned).unwrap_err(),
            Throttle::Account
        );
        assert_eq!(
            l.try_acquire(A, R, "f", Demand::OnDemand).unwrap_err(),
            Throttle::Account
        );
        assert_eq!(l.in_use(A, R), 110);
        drop(others);
        drop(p);
        assert_eq!(l.in_use(A, R), 0);
        // A reservation replaces the provisioned set-aside, and bounds it.
        l.set_reserved(A, R, "p", Some(5));
        assert_eq!(l.unreserved(A, R), 105);
        assert_eq!(
            l.check_provisioned(A, R, "p", 6),
            Err(ProvisionRefusal::AboveReserved)
        );
        l.forget_function(A, R, "p");
        assert_eq!(l.unreserved(A, R), 110);
    }

    #[test]
    fn reservations_keep_the_unreserved_minimum() {
        let l = ConcurrencyLimiter::new();
        l.set_account_limit(A, 200);
        assert_eq!(l.check_reservation(A, R, "f", 100), Ok(()));
        assert_eq!(l.check_reservation(A, R, "f", 101), Err(100));
        l.set_reserved(A, R, "f", Some(100));
        // Changing f's own reservation does not count it twice.
        assert_eq!(l.check_reservation(A, R, "f", 100), Ok(()));
        assert_eq!(l.check_reservation(A, R, "g", 1), Err(100));
        l.set_reserved(A, R, "f", None);
        assert_eq!(l.unreserved(A, R), 200);
    }

    #[test]
    fn a_lower_limit_applies_to_existing_slots() {
        let l = ConcurrencyLimiter::new();
        let first = l.try_acquire(A, R, "f", Demand::OnDemand).unwrap();
        l.set_account_limit(A, 1);
        assert_eq!(
            l.try_acquire(A, R, "f", Demand::OnDemand).unwrap_err(),
            Throttle::Account
        );
        drop(first);
        assert!(l.try_acquire(A, R, "f", Demand::OnDemand).is_ok());
    }

    #[test]
    fn concurrent_admissions_never_exceed_a_reservation_and_all_return() {
        let l = Arc::new(ConcurrencyLimiter::new());
        l.set_reserved(A, R, "f", Some(3));
        let running = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (l, running) = (l.clone(), running.clone());
                std::thread::spawn(move || {
                    for _ in 0..5_000 {
                        if let Ok(permit) = l.try_acquire(A, R, "f", Demand::OnDemand) {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            assert!(now <= 3, "{now} running with 3 reserved");
                            running.fetch_sub(1, Ordering::SeqCst);
                            drop(permit);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(l.in_use(A, R), 0);
    }

    #[tokio::test]
    async fn a_waiting_invocation_runs_when_a_slot_frees() {
        let l = Arc::new(ConcurrencyLimiter::new());
        l.set_reserved(A, R, "f", Some(1));
        let held = l.try_acquire(A, R, "f", Demand::OnDemand).unwrap();
        let waiter = {
            let l = l.clone();
            tokio::spawn(async move {
                let far = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
                l.acquire_by(A, R, "f", Demand::OnDemand, far)
                    .await
                    .map(|_| ())
            })
        };
        tokio::task::yield_now().await;
        drop(held);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(l.in_use(A, R), 0);
    }

    #[tokio::test]
    async fn a_wait_ends_at_its_deadline() {
        let l = ConcurrencyLimiter::new();
        l.set_reserved(A, R, "f", Some(0));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(10);
        assert_eq!(
            l.acquire_by(A, R, "f", Demand::OnDemand, deadline)
                .await
                .unwrap_err(),
            Throttle::Reserved
        );
    }

    #[test]
    fn provisioned_instances_hold_their_share_of_the_reservation() {
        let l = ConcurrencyLimiter::new();
        l.set_reserved(A, R, "f", Some(1));
        l.set_provisioned(A, R, "f", 1);
        // $LATEST (or any version without provisioned concurrency) finds
        // the whole reservation held by the provisioned instance.
        assert_eq!(
            l.try_acquire(A, R, "f", Demand::OnDemand).unwrap_err(),
            Throttle::Reserved
        );
        let provisioned = l.try_acquire(A, R, "f", Demand::Provisioned).unwrap();
        assert!(matches!(provisioned.held, Held::Provisioned(_)));
        assert_eq!(
            l.try_acquire(A, R, "f", Demand::Provisioned).unwrap_err(),
            Throttle::Reserved
        );
        drop(provisioned);
        // A reservation larger than the provisioned share leaves the rest
        // on demand, for every version; the provisioned one spills over.
        l.set_reserved(A, R, "f", Some(2));
        let on_demand = l.try_acquire(A, R, "f", Demand::OnDemand).unwrap();
        assert!(matches!(on_demand.held, Held::Reserved(_)));
        let provisioned = l.try_acquire(A, R, "f", Demand::Provisioned).unwrap();
        assert!(matches!(provisioned.held, Held::Provisioned(_)));
        assert!(l.try_acquire(A, R, "f", Demand::Provisioned).is_err());
        drop((on_demand, provisioned));
        assert_eq!(l.in_use(A, R), 0);
    }

    #[test]
    fn without_a_reservation_only_provisioned_versions_use_provisioned_slots() {
        let l = ConcurrencyLimiter::new();
        l.set_account_limit(A, 110);
        l.set_provisioned(A, R, "f", 1);
        let latest = l.try_acquire(A, R, "f", Demand::OnDemand).unwrap();
        assert!(matches!(latest.held, Held::Unreserved));
        let version = l.try_acquire(A, R, "f", Demand::Provisioned).unwrap();
        assert!(matches!(version.held, Held::Provisioned(_)));
    }

    #[derive(Debug, Clone)]
    enum Step {
        Acquire(u8),
        Release(usize),
        Reserve(u8, Option<u8>),
        Limit(u16),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0u8..4).prop_map(Step::Acquire),
            3 => any::<usize>().prop_map(Step::Release),
            1 => (0u8..4, proptest::option::of(0u8..6)).prop_map(|(f, r)| Step::Reserve(f, r)),
            1 => (100u16..130).prop_map(Step::Limit),
        ]
    }

    proptest! {
        /// Whatever the order of admissions, releases (an invocation's
        /// end, however it ended) and configuration changes, no pool is
        /// ever over its size at admission and every counter returns to
        /// zero once the permits are gone.
        #[test]
        fn permits_never_drift(steps in proptest::collection::vec(step(), 1..200)) {
            let l = ConcurrencyLimiter::new();
            l.set_account_limit(A, 110);
            let mut held: Vec<(u8, Permit)> = Vec::new();
            for s in steps {
                match s {
                    Step::Acquire(f) => {
                        let name = format!("f{f}");
                        let before_fn = held.iter().filter(|(g, p)| *g == f && matches!(p.held, Held::Reserved(_))).count();
                        let before_fn = u32::try_from(before_fn).unwrap();
                        match l.try_acquire(A, R, &name, Demand::OnDemand) {
                            Ok(p) => held.push((f, p)),
                            Err(Throttle::Reserved) => {
                                let r = l.reserved(A, R, &name);
                                prop_assert!(r.is_some_and(|r| before_fn >= r));
                            }
                            Err(Throttle::Account) => {
                                prop_assert!(l.reserved(A, R, &name).is_none());
                                let acc = l.account(A, R);
                                prop_assert!(acc.busy.load(Ordering::Acquire) >= acc.unreserved());
                            }
                        }
                    }
                    Step::Release(i) => {
                        if !held.is_empty() {
                            let i = i % held.len();
                            held.swap_remove(i);
                        }
                    }
                    Step::Reserve(f, r) => {
                        l.set_reserved(A, R, &format!("f{f}"), r.map(u32::from));
                    }
                    Step::Limit(n) => l.set_account_limit(A, u32::from(n)),
                }
                prop_assert_eq!(l.in_use(A, R) as usize, held.len());
            }
            drop(held);
            prop_assert_eq!(l.in_use(A, R), 0);
            let acc = l.account(A, R);
            prop_assert_eq!(acc.busy.load(Ordering::Acquire), 0);
            for f in 0..4u8 {
                let key = (A.to_string(), R.to_string(), format!("f{f}"));
                if let Some(slot) = l.functions.get(&key) {
                    prop_assert_eq!(slot.busy.load(Ordering::Acquire), 0);
                }
            }
        }
    }
}
