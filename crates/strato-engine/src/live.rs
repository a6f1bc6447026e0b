//! Which sandboxes exist: instances and stem cells are counted from their
//! launch until their cleanup is complete, so shutdown can wait for the last
//! one and the engine can report how many functions' instances are live.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Counts instances until their cleanup is complete, so shutdown can wait;
/// stem cells are counted apart until they are adopted.
#[derive(Default)]
pub struct LiveInstances {
    count: AtomicUsize,
    /// Of `count`, stem cells not adopted yet.
    stems: AtomicUsize,
    none_left: tokio::sync::Notify,
}

/// Held by an instance's watcher until its sandbox is removed.
pub struct LiveToken {
    live: Arc<LiveInstances>,
    /// Set while the sandbox is an unadopted stem cell.
    stem: Option<Arc<AtomicBool>>,
}

/// Turns a stem cell's token into an instance's when it is adopted.
pub struct StemMark {
    live: Arc<LiveInstances>,
    stem: Arc<AtomicBool>,
}

impl StemMark {
    pub(crate) fn adopted(&self) {
        if self.stem.swap(false, Ordering::AcqRel) {
            self.live.stems.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl LiveInstances {
    pub fn enter(self: &Arc<Self>) -> LiveToken {
        self.count.fetch_add(1, Ordering::SeqCst);
        LiveToken {
            live: self.clone(),
            stem: None,
        }
    }

    /// A token for a stem cell, and the mark that counts it as an instance
    /// once adopted.
    pub fn enter_stem(self: &Arc<Self>) -> (LiveToken, StemMark) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.stems.fetch_add(1, Ordering::SeqCst);
        let stem = Arc::new(AtomicBool::new(true));
        (
            LiveToken {
                live: self.clone(),
                stem: Some(stem.clone()),
            },
            StemMark {
                live: self.clone(),
                stem,
            },
        )
    }

    /// Live sandboxes, stem cells included.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Live function instances (adopted stem cells included, waiting ones
    /// not).
    pub fn instances(&self) -> usize {
        self.count()
            .saturating_sub(self.stems.load(Ordering::SeqCst))
    }

    pub async fn wait_until_none(&self) {
        loop {
            let notified = self.none_left.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for LiveToken {
    fn drop(&mut self) {
        if let Some(stem) = &self.stem {
            if stem.swap(false, Ordering::AcqRel) {
                self.live.stems.fetch_sub(1, Ordering::AcqRel);
            }
        }
        if self.live.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.live.none_left.notify_waiters();
        }
    }
}
