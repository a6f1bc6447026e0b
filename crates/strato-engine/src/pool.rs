//! Warm instances of one function version, reused most-recently-used first
//! and ended after a keep-alive. Instances of a provisioned concurrency
//! configuration are handed out before any other and never expire (but
//! every instance is ended once its credentials are about to).

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::instance::Instance;

#[derive(Default)]
pub struct InstancePool {
    idle: Mutex<Vec<(Instance, Instant)>>,
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
            self.idle.lock().push((instance, Instant::now()));
        }
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
