//! Warm instances of one function version, reused most-recently-used first
//! and ended after a keep-alive. Instances of a provisioned concurrency
//! configuration are handed out before any other and never expire (but
//! every instance is ended once its credentials are about to).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::instance::Instance;

pub struct InstancePool {
    idle: Mutex<Vec<(Instance, Instant)>>,
    /// Invocations waiting for an instance of this pool to come free (see
    /// [`crate::Engine`]'s scale-out wait); a release wakes them.
    waiting: AtomicUsize,
    released: tokio::sync::Notify,
    /// Instances of this pool starting now (their init under way).
    starting: AtomicUsize,
    /// When the pool last made progress towards a free instance (an
    /// instance released to a waiter, or a start ended), in milliseconds
    /// after `born`.
    progress_ms: AtomicU64,
    born: Instant,
}

impl Default for InstancePool {
    fn default() -> Self {
        InstancePool {
            idle: Mutex::default(),
            waiting: AtomicUsize::new(0),
            released: tokio::sync::Notify::new(),
            starting: AtomicUsize::new(0),
            progress_ms: AtomicU64::new(0),
            born: Instant::now(),
        }
    }
}

/// Counts one start among a pool's starting instances while it lives; its
/// end is progress.
pub(crate) struct Starting<'a>(&'a InstancePool);

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        self.0.starting.fetch_sub(1, Ordering::AcqRel);
        self.0.note_progress();
    }
}

/// Counts one invocation among a pool's waiters while it lives.
pub(crate) struct Waiting<'a>(&'a InstancePool);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InstancePool {
    /// A provisioned idle instance if there is one, else the most recently
    /// used idle instance; only live ones.
    pub fn acquire(&self) -> Option<Instance> {
        let mut dead = Vec::new();
        let found = {
            let mut idle = self.idle.lock();
            let mut i = 0;
            while i < idle.len() {
                if idle[i].0.is_usable() {
                    i += 1;
                } else {
                    dead.push(idle.remove(i).0);
                }
            }
            let provisioned = idle.iter().rposition(|(i, _)| i.is_provisioned());
            match provisioned {
                Some(i) => Some(idle.remove(i).0),
                None => idle.pop().map(|(instance, _)| instance),
            }
        };
        // Dropping kills the instances, outside the lock.
        drop(dead);
        found
    }

    pub fn release(&self, instance: Instance) {
        if instance.is_usable() {
            let wake = {
                let mut idle = self.idle.lock();
                idle.push((instance, Instant::now()));
                // Read under the lock: a waiter counted itself before it
                // looked at the idle list, so it either sees this instance
                // or is counted here.
                self.waiting.load(Ordering::Acquire) > 0
            };
            if wake {
                // Progress matters only to waiters: one that comes later
                // counts its wait from its own arrival.
                self.note_progress();
                self.released.notify_waiters();
            }
        }
    }

    /// Counts an instance start of this pool until the guard drops (its
    /// init ended, however).
    pub(crate) fn start(&self) -> Starting<'_> {
        self.starting.fetch_add(1, Ordering::AcqRel);
        Starting(self)
    }

    /// Whether an instance of this pool is starting now.
    pub(crate) fn is_starting(&self) -> bool {
        self.starting.load(Ordering::Acquire) > 0
    }

    fn note_progress(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.progress_ms.fetch_max(ms, Ordering::AcqRel);
    }

    /// When an instance was last released to a waiter or a start last ended (the
    /// pool's creation if neither happened yet).
    pub(crate) fn last_progress(&self) -> Instant {
        self.born + Duration::from_millis(self.progress_ms.load(Ordering::Acquire))
    }

    /// Registers the caller as waiting for a release, until the guard drops.
    pub(crate) fn wait(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        Waiting(self)
    }

    /// Completes at the next release after it was made (made before
    /// looking at the idle list, so no release is missed in between).
    pub(crate) fn released(&self) -> tokio::sync::futures::Notified<'_> {
        self.released.notified()
    }

    /// Ends instances idle for longer than `keep_alive` (provisioned ones
    /// stay); returns how many are left.
    pub fn reap(&self, keep_alive: Duration) -> usize {
        let (expired, left) = {
            let mut idle = self.idle.lock();
            let now = Instant::now();
            let (expired, kept): (Vec<_>, Vec<_>) = idle.drain(..).partition(|(i, since)| {
                !i.is_usable() || (!i.is_provisioned() && now.duration_since(*since) >= keep_alive)
            });
            *idle = kept;
            (expired, idle.len())
        };
        // Dropping kills the instances, outside the lock.
        drop(expired);
        left
    }

    /// Ends every idle instance.
    pub fn clear(&self) {
        let all: Vec<_> = self.idle.lock().drain(..).collect();
        drop(all);
    }

    /// Ends the idle instances of provisioned configurations that were
    /// replaced or deleted.
    pub fn end_retired_provisioned(&self) {
        let retired: Vec<_> = {
            let mut idle = self.idle.lock();
            let (retired, kept): (Vec<_>, Vec<_>) = idle
                .drain(..)
                .partition(|(i, _)| i.provisioned.is_some() && !i.is_provisioned());
            *idle = kept;
            retired
        };
        drop(retired);
    }

    /// When the least recently used idle instance that may be evicted (not
    /// provisioned) was last used.
    pub fn oldest_idle(&self) -> Option<Instant> {
        self.idle
            .lock()
            .iter()
            .find(|(i, _)| !i.is_provisioned())
            .map(|(_, since)| *since)
    }

    /// Takes the least recently used idle instance that may be evicted out
    /// of the pool.
    pub fn take_oldest(&self) -> Option<Instance> {
        let mut idle = self.idle.lock();
        let i = idle.iter().position(|(i, _)| !i.is_provisioned())?;
        Some(idle.remove(i).0)
    }

    pub fn idle_count(&self) -> usize {
        self.idle.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_counts_while_it_runs_and_its_end_is_progress() {
        let pool = InstancePool::default();
        let born = pool.last_progress();
        assert!(!pool.is_starting());
        let first = pool.start();
        let second = pool.start();
        assert!(pool.is_starting());
        std::thread::sleep(Duration::from_millis(5));
        drop(first);
        assert!(pool.is_starting(), "one start is still under way");
        assert!(pool.last_progress() > born, "a start's end is progress");
        drop(second);
        assert!(!pool.is_starting());
    }
}
