//! The running mappings of one kind of poller: each has a supervisor task,
//! a stop signal and its current settings, which a running supervisor picks
//! up without restarting. SQS and stream pollers both keep theirs here.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Running mappings by UUID, with settings of type `S`.
pub(super) struct Supervisors<S> {
    running: parking_lot::Mutex<HashMap<String, Running<S>>>,
}

struct Running<S> {
    spec: watch::Sender<Arc<S>>,
    stop: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
}

impl<S: Send + Sync + 'static> Supervisors<S> {
    pub(super) fn new() -> Supervisors<S> {
        Supervisors {
            running: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// Starts a mapping's supervisor (`start` spawns it, given the
    /// settings and stop channels), or hands a running one `spec`.
    pub(super) fn run(
        &self,
        uuid: &str,
        spec: S,
        start: impl FnOnce(watch::Receiver<Arc<S>>, watch::Receiver<bool>) -> JoinHandle<()>,
    ) {
        let mut running = self.running.lock();
        if let Some(mapping) = running.get(uuid) {
            if !mapping.supervisor.is_finished() {
                mapping.spec.send_replace(Arc::new(spec));
                return;
            }
        }
        let (spec_tx, spec_rx) = watch::channel(Arc::new(spec));
        let (stop_tx, stop_rx) = watch::channel(false);
        let supervisor = start(spec_rx, stop_rx);
        running.insert(
            uuid.to_string(),
            Running {
                spec: spec_tx,
                stop: stop_tx,
                supervisor,
            },
        );
    }

    /// Signals a mapping to stop and waits for its supervisor to end.
    pub(super) async fn stop(&self, uuid: &str) {
        let mapping = self.running.lock().remove(uuid);
        if let Some(mapping) = mapping {
            mapping.stop.send_replace(true);
            if let Err(e) = mapping.supervisor.await {
                tracing::warn!(mapping = uuid, error = %e, "a mapping's poller ended abnormally");
            }
        }
    }

    pub(super) fn is_running(&self, uuid: &str) -> bool {
        self.running
            .lock()
            .get(uuid)
            .is_some_and(|m| !m.supervisor.is_finished())
    }

    /// Signals every mapping at once, then waits for them all.
    pub(super) async fn stop_all(&self) {
        let stopping: Vec<(String, Running<S>)> = self.running.lock().drain().collect();
        for (_, mapping) in &stopping {
            mapping.stop.send_replace(true);
        }
        for (uuid, mapping) in stopping {
            if let Err(e) = mapping.supervisor.await {
                tracing::warn!(mapping = %uuid, error = %e, "a mapping's poller ended abnormally");
            }
        }
    }
}
