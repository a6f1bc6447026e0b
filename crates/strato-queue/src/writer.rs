//! Group commit: the one thread that owns the write connection and the index.
//!
//! Callers send [`Op`]s over a channel. The writer blocks for the first one,
//! takes whatever else has queued up meanwhile (up to [`MAX_BATCH`]), applies
//! them all in one transaction, commits, and only then answers each caller
//! and publishes counts and wake-ups. The busier the engine, the more
//! operations share one commit: that is where the throughput comes from.
//!
//! Between batches the writer sleeps until the next message turns visible
//! (a delay ends, a lease expires) or the next retention sweep, so long
//! polls wake the moment something becomes receivable.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use rusqlite::Connection;
use tokio::sync::{oneshot, Notify};

use crate::receipt::{Lease, SECRET_LEN};
use crate::state::{LeasedMessage, State};
use crate::{Durability, NewMessage, QueueCounts, QueueError, QueueOptions, Sent};

/// The most operations one transaction carries; bounds how long the first
/// caller of a batch waits behind the others.
const MAX_BATCH: usize = 1024;

/// How often messages past retention and dedup ids past their window are swept.
const SWEEP_INTERVAL_MS: i64 = 1000;

pub(crate) type Reply<T> = oneshot::Sender<Result<T, QueueError>>;

/// SQL a test runs on the write connection.
#[cfg(test)]
pub(crate) type SqlHook = Box<dyn FnOnce(&Connection) -> rusqlite::Result<()> + Send>;

/// What travels over the writer's channel.
pub(crate) enum Command {
    Apply(Op),
    /// Finish what was sent before, then stop; answered once the writer is done.
    Close(oneshot::Sender<()>),
}

/// One request to the writer; each carries where its answer goes.
pub(crate) enum Op {
    CreateQueue {
        name: String,
        options: QueueOptions,
        reply: Reply<()>,
    },
    DeleteQueue {
        name: String,
        reply: Reply<bool>,
    },
    Send {
        queue: String,
        messages: Vec<NewMessage>,
        reply: Reply<Vec<Sent>>,
    },
    Receive {
        queue: String,
        max: usize,
        visibility_ms: i64,
        reply: Reply<Vec<LeasedMessage>>,
    },
    Delete {
        queue: String,
        leases: Vec<Lease>,
        reply: Reply<Vec<Result<(), QueueError>>>,
    },
    ChangeVisibility {
        queue: String,
        lease: Lease,
        timeout_ms: i64,
        metadata: Option<Bytes>,
        reply: Reply<()>,
    },
    ReleaseLeases {
        queue: String,
        reply: Reply<u64>,
    },
    Purge {
        queue: String,
        reply: Reply<u64>,
    },
    /// Runs SQL on the write connection inside the batch (tests simulate a
    /// full disk with it).
    #[cfg(test)]
    Exec {
        run: SqlHook,
        reply: Reply<()>,
    },
}

/// What the engine's callers see of a queue without asking the writer.
pub(crate) struct QueueView {
    pub(crate) options: Mutex<QueueOptions>,
    pub(crate) counts: Mutex<QueueCounts>,
    /// Woken when messages may have become receivable (or the queue went away).
    pub(crate) notify: Notify,
    /// How many long polls are waiting on `notify` right now.
    pub(crate) waiting: AtomicUsize,
}

pub(crate) type Views = RwLock<HashMap<String, Arc<QueueView>>>;

/// Why a batch failed; every operation in it gets the matching error.
enum Failure {
    Full,
    Storage(Arc<rusqlite::Error>),
}

impl Failure {
    fn new(err: rusqlite::Error) -> Failure {
        match QueueError::from(err) {
            QueueError::Storage(err) => Failure::Storage(err),
            _ => Failure::Full,
        }
    }

    fn to_error(&self) -> QueueError {
        match self {
            Failure::Full => QueueError::StorageFull,
            Failure::Storage(err) => QueueError::Storage(err.clone()),
        }
    }
}

/// Leases a receive took for a caller that was gone when the answer came.
struct Undelivered {
    queue: String,
    leases: Vec<Lease>,
}

/// An answer held until the batch's commit decides it.
type Completion = Box<dyn FnOnce(Option<&Failure>) -> Option<Undelivered> + Send>;

fn completion<T: Send + 'static>(reply: Reply<T>, answer: Result<T, QueueError>) -> Completion {
    Box::new(move |failure| {
        let _ = reply.send(match failure {
            Some(failure) => Err(failure.to_error()),
            None => answer,
        });
        None
    })
}

fn receive_completion(
    queue: String,
    reply: Reply<Vec<LeasedMessage>>,
    answer: Result<Vec<LeasedMessage>, QueueError>,
) -> Completion {
    Box::new(move |failure| {
        let answer = match failure {
            Some(failure) => Err(failure.to_error()),
            None => answer,
        };
        match reply.send(answer) {
            Ok(()) => None,
            Err(Ok(leased)) if !leased.is_empty() => Some(Undelivered {
                queue,
                leases: leased.iter().map(|message| message.lease).collect(),
            }),
            Err(_) => None,
        }
    })
}

pub(crate) struct Writer {
    conn: Connection,
    /// None after a failed commit whose reload failed too: every batch
    /// retries the load first.
    state: Option<State>,
    views: Arc<Views>,
    undelivered: Vec<Undelivered>,
    next_sweep: i64,
}

impl Writer {
    /// Opens the database and loads the index; returns the receipt secret.
    pub(crate) fn open(
        path: &Path,
        durability: Durability,
        views: Arc<Views>,
    ) -> Result<(Writer, [u8; SECRET_LEN]), QueueError> {
        let conn = crate::store::open(path, durability)?;
        let secret = crate::store::receipt_secret(&conn)?;
        let now = now_ms();
        let state = State::load(&conn, now)?;
        let mut writer = Writer {
            conn,
            state: Some(state),
            views,
            undelivered: Vec::new(),
            next_sweep: now,
        };
        writer.publish();
        Ok((writer, secret))
    }

    pub(crate) fn run(mut self, commands: Receiver<Command>) {
        loop {
            let now = now_ms();
            let wake_at = self
                .state
                .as_ref()
                .and_then(State::next_timer)
                .map_or(self.next_sweep, |at| at.min(self.next_sweep));
            let first = if !self.undelivered.is_empty() {
                commands.try_recv().ok()
            } else {
                let wait = Duration::from_millis(u64::try_from(wake_at - now).unwrap_or(0));
                match commands.recv_timeout(wait) {
                    Ok(command) => Some(command),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            };
            let mut batch = Vec::new();
            let mut close = None;
            let mut next = first;
            while let Some(command) = next.take() {
                match command {
                    Command::Apply(op) => batch.push(op),
                    // Whatever is sent after the close is never applied: the
                    // channel goes with the writer and those callers see Closed.
                    Command::Close(reply) => {
                        close = Some(reply);
                        break;
                    }
                }
                if batch.len() < MAX_BATCH {
                    next = commands.try_recv().ok();
                }
            }
            let now = now_ms();
            if let Some(state) = &mut self.state {
                state.fire_timers(now);
            }
            let sweep = now >= self.next_sweep;
            if sweep {
                self.next_sweep = now + SWEEP_INTERVAL_MS;
            }
            if !batch.is_empty() || sweep || !self.undelivered.is_empty() {
                self.run_batch(batch, sweep, now);
            }
            self.publish();
            if let Some(reply) = close {
                let _ = reply.send(());
                return;
            }
        }
    }

    fn run_batch(&mut self, batch: Vec<Op>, sweep: bool, now: i64) {
        if self.state.is_none() {
            match State::load(&self.conn, now) {
                Ok(state) => self.state = Some(state),
                Err(err) => {
                    let failure = Failure::new(err);
                    for op in batch {
                        fail(op, &failure);
                    }
                    return;
                }
            }
        }
        let undelivered = std::mem::take(&mut self.undelivered);
        let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
        let outcome = match &mut self.state {
            Some(state) => apply_batch(
                &mut self.conn,
                state,
                batch,
                &undelivered,
                sweep,
                now,
                &mut completions,
            ),
            None => Ok(()),
        };
        match outcome {
            Ok(()) => {
                // Counts first: a caller that got its answer sees them.
                self.publish();
                for complete in completions {
                    if let Some(undelivered) = complete(None) {
                        self.undelivered.push(undelivered);
                    }
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "queue batch failed; reloading the queue index from disk");
                let failure = Failure::new(err);
                for complete in completions {
                    complete(Some(&failure));
                }
                // The index may hold changes the database rolled back:
                // rebuild it from what is on disk.
                self.state = match State::load(&self.conn, now) {
                    Ok(state) => Some(state),
                    Err(err) => {
                        tracing::error!(error = %err, "reloading the queue index failed");
                        None
                    }
                };
            }
        }
    }

    /// Publishes counts of changed queues and wakes their long polls.
    fn publish(&mut self) {
        let Some(state) = &mut self.state else {
            return;
        };
        if state.touched.is_empty() && state.wake.is_empty() {
            return;
        }
        let mut views = self.views.write();
        for name in state.touched.drain() {
            match state.queues.get(&name) {
                Some(queue) => {
                    let view = views.entry(name).or_insert_with(|| {
                        Arc::new(QueueView {
                            options: Mutex::new(queue.options().clone()),
                            counts: Mutex::new(QueueCounts::default()),
                            notify: Notify::new(),
                            waiting: AtomicUsize::new(0),
                        })
                    });
                    *view.options.lock() = queue.options().clone();
                    *view.counts.lock() = queue.counts();
                }
                None => {
                    if let Some(view) = views.remove(&name) {
                        view.notify.notify_waiters();
                    }
                }
            }
        }
        for name in state.wake.drain() {
            if let Some(view) = views.get(&name) {
                view.notify.notify_waiters();
            }
        }
    }
}

/// Applies every operation of a batch in one transaction and commits it.
/// On error nothing is committed; the completions gathered so far (and one
/// per operation not applied) are in `completions` either way.
fn apply_batch(
    conn: &mut Connection,
    state: &mut State,
    batch: Vec<Op>,
    undelivered: &[Undelivered],
    sweep: bool,
    now: i64,
    completions: &mut Vec<Completion>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let mut failed = None;
    for op in batch {
        if failed.is_some() {
            completions.push(unanswered(op));
            continue;
        }
        if let Err(err) = apply(&tx, state, op, now, completions) {
            failed = Some(err);
        }
    }
    if let Some(err) = failed {
        return Err(err);
    }
    for returned in undelivered {
        state.return_undelivered(&tx, &returned.queue, &returned.leases, now)?;
    }
    if sweep {
        state.sweep(&tx, now)?;
    }
    tx.commit()
}

/// Applies one operation; its completion is pushed whether or not it failed.
fn apply(
    conn: &Connection,
    state: &mut State,
    op: Op,
    now: i64,
    completions: &mut Vec<Completion>,
) -> rusqlite::Result<()> {
    fn settle<T: Send + 'static>(
        completions: &mut Vec<Completion>,
        reply: Reply<T>,
        answer: rusqlite::Result<Result<T, QueueError>>,
    ) -> rusqlite::Result<()> {
        match answer {
            Ok(answer) => {
                completions.push(completion(reply, answer));
                Ok(())
            }
            Err(err) => {
                // The batch fails: this answer is replaced by the failure.
                completions.push(completion(reply, Err(QueueError::Closed)));
                Err(err)
            }
        }
    }
    match op {
        Op::CreateQueue {
            name,
            options,
            reply,
        } => settle(completions, reply, state.create_queue(conn, &name, options)),
        Op::DeleteQueue { name, reply } => {
            settle(completions, reply, state.delete_queue(conn, &name))
        }
        Op::Send {
            queue,
            messages,
            reply,
        } => settle(completions, reply, state.send(conn, &queue, messages, now)),
        Op::Receive {
            queue,
            max,
            visibility_ms,
            reply,
        } => {
            // The caller gave up waiting: do not lease messages for nobody.
            if reply.is_closed() {
                return Ok(());
            }
            let answer = state.receive(conn, &queue, max, visibility_ms, now);
            match answer {
                Ok(answer) => {
                    completions.push(receive_completion(queue, reply, answer));
                    Ok(())
                }
                Err(err) => {
                    completions.push(completion(reply, Err(QueueError::Closed)));
                    Err(err)
                }
            }
        }
        Op::Delete {
            queue,
            leases,
            reply,
        } => settle(completions, reply, state.delete(conn, &queue, &leases)),
        Op::ChangeVisibility {
            queue,
            lease,
            timeout_ms,
            metadata,
            reply,
        } => settle(
            completions,
            reply,
            state.change_visibility(conn, &queue, lease, timeout_ms, metadata, now),
        ),
        Op::ReleaseLeases { queue, reply } => {
            settle(completions, reply, state.release_leases(conn, &queue, now))
        }
        Op::Purge { queue, reply } => settle(completions, reply, state.purge(conn, &queue)),
        #[cfg(test)]
        Op::Exec { run, reply } => settle(completions, reply, run(conn).map(Ok)),
    }
}

/// The completion of an operation the failed batch never got to.
fn unanswered(op: Op) -> Completion {
    match op {
        Op::CreateQueue { reply, .. } => completion(reply, Err(QueueError::Closed)),
        Op::DeleteQueue { reply, .. } => completion(reply, Err(QueueError::Closed)),
        Op::Send { reply, .. } => completion(reply, Err(QueueError::Closed)),
        Op::Receive { reply, .. } => completion(reply, Err(QueueError::Closed)),
        Op::Delete { reply, .. } => completion(reply, Err(QueueError::Closed)),
        Op::ChangeVisibility { reply, .. } => completion(reply, Err(QueueError::Closed)),
        Op::ReleaseLeases { reply, .. } => completion(reply, Err(QueueError::Closed)),
        Op::Purge { reply, .. } => completion(reply, Err(QueueError::Closed)),
        #[cfg(test)]
        Op::Exec { reply, .. } => completion(reply, Err(QueueError::Closed)),
    }
}

/// Fails an operation outright (the index could not even be loaded).
fn fail(op: Op, failure: &Failure) {
    unanswered(op)(Some(failure));
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}
