//! The host's memory budget: the total `MemorySize` of live instances
//! stays within it, so the machine is never promised more than it has.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The budget's default share of the machine's memory, in per cent.
const DEFAULT_SHARE_PERCENT: u64 = 80;
/// Used when the machine's memory cannot be read.
const FALLBACK_BUDGET_MB: u64 = 4096;

/// 80 % of `MemTotal` (from `/proc/meminfo`), in MB.
pub fn default_budget_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(FALLBACK_BUDGET_MB, |kb| {
            (kb / 1024).saturating_mul(DEFAULT_SHARE_PERCENT) / 100
        })
}

/// Memory promised to live instances, against a fixed budget. Charging is
/// a compare-and-swap; no lock.
#[derive(Debug)]
pub struct MemoryBudget {
    budget_mb: u64,
    used_mb: AtomicU64,
}

/// One instance's share of the budget, returned when dropped.
#[derive(Debug)]
pub struct MemoryCharge {
    budget: Arc<MemoryBudget>,
    mb: u64,
}

impl Drop for MemoryCharge {
    fn drop(&mut self) {
        self.budget.used_mb.fetch_sub(self.mb, Ordering::AcqRel);
    }
}

impl MemoryBudget {
    pub fn new(budget_mb: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            budget_mb,
            used_mb: AtomicU64::new(0),
        })
    }

    pub fn budget_mb(&self) -> u64 {
        self.budget_mb
    }

    pub fn used_mb(&self) -> u64 {
        self.used_mb.load(Ordering::Acquire)
    }

    /// Charges `mb` if it fits.
    pub fn try_charge(self: &Arc<Self>, mb: u64) -> Option<MemoryCharge> {
        self.used_mb
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + mb <= self.budget_mb).then_some(used + mb)
            })
            .ok()
            .map(|_| MemoryCharge {
                budget: self.clone(),
                mb,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_fit_within_the_budget_and_return_when_dropped() {
        let budget = MemoryBudget::new(512);
        let a = budget.try_charge(256).expect("fits");
        let b = budget.try_charge(256).expect("fits");
        assert!(budget.try_charge(128).is_none());
        drop(a);
        assert_eq!(budget.used_mb(), 256);
        let c = budget.try_charge(128).expect("fits again");
        drop((b, c));
        assert_eq!(budget.used_mb(), 0);
    }

    #[test]
    fn the_default_is_most_of_the_machine() {
        assert!(default_budget_mb() > 0);
    }
}
