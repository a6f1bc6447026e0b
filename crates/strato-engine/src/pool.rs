//! Warm instances of one function version, reused most-recently-used first
//! and ended after a keep-alive.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::instance::Instance;

#[derive(Default)]
pub struct InstancePool {
    idle: Mutex<Vec<(Instance, Instant)>>,
}

impl InstancePool {
    /// The most recently used idle instance that is still alive.
    pub fn acquire(&self) -> Option<Instance> {
        let mut dead = Vec::new();
        let found = {
            let mut idle = self.idle.lock();
            loop {
                match idle.pop() {
                    Some((instance, _)) if instance.is_alive() => break Some(instance),
                    Some((instance, _)) => dead.push(instance),
                    None => break None,
                }
            }
        };
        drop(dead);
        found
    }

    pub fn release(&self, instance: Instance) {
        if instance.is_alive() {
            self.idle.lock().push((instance, Instant::now()));
        }
    }

    /// Ends instances idle for longer than `keep_alive`; returns how many are left.
    pub fn reap(&self, keep_alive: Duration) -> usize {
        let (expired, left) = {
            let mut idle = self.idle.lock();
            let now = Instant::now();
            let (expired, kept): (Vec<_>, Vec<_>) = idle
                .drain(..)
                .partition(|(i, since)| !i.is_alive() || now.duration_since(*since) >= keep_alive);
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

    /// When the least recently used idle instance was last used.
    pub fn oldest_idle(&self) -> Option<Instant> {
        self.idle.lock().first().map(|(_, since)| *since)
    }

    /// Takes the least recently used idle instance out of the pool.
    pub fn take_oldest(&self) -> Option<Instance> {
        let mut idle = self.idle.lock();
        (!idle.is_empty()).then(|| idle.remove(0).0)
    }

    pub fn idle_count(&self) -> usize {
        self.idle.lock().len()
    }
}
