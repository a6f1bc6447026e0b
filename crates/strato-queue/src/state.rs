//! What each operation does, to the index and to the database at once.
//!
//! The writer calls these inside the batch's transaction. They change the
//! index as they go; if the batch then fails to commit, the writer throws
//! the whole index away and reloads it from the database, so a change made
//! here is only ever seen by anyone once it is on disk.
//!
//! Each function returns `rusqlite::Result` for failures that sink the batch
//! and, inside it, the operation's own answer (which may be an error of the
//! caller's making, like an unknown queue).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use bytes::Bytes;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::index::{duration_ms, DedupEntry, Message, MessageState, QueueIndex};
use crate::receipt::Lease;
use crate::store::{self, StoredMessage};
use crate::{NewMessage, QueueError, QueueOptions, Sent};

/// The most retention-expired messages one sweep deletes per queue, so a
/// sweep never makes one batch (and its waiters) wait long.
const SWEEP_LIMIT: usize = 10_000;

/// How many message keys one write to the database reserves.
const KEY_BLOCK: u64 = 10_000;

/// A message a receive leased, before its receipt handle is sealed (that
/// happens on the caller's task).
#[derive(Debug)]
pub(crate) struct LeasedMessage {
    pub(crate) lease: Lease,
    pub(crate) row: store::LeasedRow,
    pub(crate) sent_at: i64,
    pub(crate) receive_count: u32,
    pub(crate) sequence_number: Option<u64>,
}

type Answer<T> = rusqlite::Result<Result<T, QueueError>>;

pub(crate) struct State {
    pub(crate) queues: HashMap<String, QueueIndex>,
    keys: Keys,
    next_queue_id: i64,
    /// When some queue's next delayed or leased message turns visible. An
    /// entry is pushed whenever a queue's earliest deadline moves earlier;
    /// stale entries only cause a wake-up that finds nothing to do.
    timers: BinaryHeap<Reverse<(i64, String)>>,
    /// Per queue, the earliest time it has an entry in `timers` for.
    scheduled: HashMap<String, i64>,
    /// Queues whose counts (or existence) changed: to publish.
    pub(crate) touched: HashSet<String>,
    /// Queues where messages may have become receivable: to wake.
    pub(crate) wake: HashSet<String>,
}

impl State {
    pub(crate) fn load(conn: &Connection, now: i64) -> rusqlite::Result<State> {
        let loaded = store::load(conn, now)?;
        let mut state = State {
            touched: loaded.queues.keys().cloned().collect(),
            wake: loaded.queues.keys().cloned().collect(),
            queues: loaded.queues,
            keys: Keys {
                next: loaded.next_key,
                reserved_until: loaded.next_key,
            },
            next_queue_id: loaded.next_queue_id,
            timers: BinaryHeap::new(),
            scheduled: HashMap::new(),
        };
        let names: Vec<String> = state.queues.keys().cloned().collect();
        for name in names {
            state.schedule(&name);
        }
        Ok(state)
    }

    /// The earliest time a queue's message turns visible, if any.
    pub(crate) fn next_timer(&self) -> Option<i64> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Turns visible what is due, in every queue whose timer fired.
    pub(crate) fn fire_timers(&mut self, now: i64) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, name))) = self.timers.pop() else {
                break;
            };
            if self.scheduled.get(&name) == Some(&at) {
                self.scheduled.remove(&name);
            }
            self.promote(&name, now);
            self.schedule(&name);
        }
    }

    fn promote(&mut self, name: &str, now: i64) {
        if let Some(queue) = self.queues.get_mut(name) {
            if queue.promote_due(now) {
                self.touched.insert(name.to_owned());
                self.wake.insert(name.to_owned());
            }
        }
    }

    /// Makes sure a timer fires when the queue's next message turns visible.
    fn schedule(&mut self, name: &str) {
        let Some(due) = self.queues.get(name).and_then(QueueIndex::next_due) else {
            return;
        };
        if self.scheduled.get(name).is_some_and(|&at| at <= due) {
            return;
        }
        self.scheduled.insert(name.to_owned(), due);
        self.timers.push(Reverse((due, name.to_owned())));
    }

    pub(crate) fn create_queue(
        &mut self,
        conn: &Connection,
        name: &str,
        options: QueueOptions,
    ) -> Answer<()> {
        let id = match self.queues.get(name) {
            Some(queue) => queue.id,
            None => {
                self.next_queue_id += 1;
                self.next_queue_id - 1
            }
        };
        store::upsert_queue(conn, id, name, &options)?;
        match self.queues.get_mut(name) {
            Some(queue) => queue.set_options(options),
            None => {
                self.queues
                    .insert(name.to_owned(), QueueIndex::new(id, options));
            }
        }
        self.touched.insert(name.to_owned());
        Ok(Ok(()))
    }

    pub(crate) fn delete_queue(&mut self, conn: &Connection, name: &str) -> Answer<bool> {
        let Some(queue) = self.queues.remove(name) else {
            return Ok(Ok(false));
        };
        for key in queue.keys() {
            store::delete_message(conn, key)?;
        }
        store::delete_queue(conn, queue.id)?;
        self.touched.insert(name.to_owned());
        self.wake.insert(name.to_owned());
        Ok(Ok(true))
    }

    pub(crate) fn send(
        &mut self,
        conn: &Connection,
        name: &str,
        messages: Vec<NewMessage>,
        now: i64,
    ) -> Answer<Vec<Sent>> {
        let Some(queue) = self.queues.get_mut(name) else {
            return Ok(Err(QueueError::NoSuchQueue(name.to_owned())));
        };
        let options = queue.options().clone();
        if let Err(err) = validate(&options, &messages) {
            return Ok(Err(err));
        }
        let mut sent = Vec::with_capacity(messages.len());
        let mut visible_now = false;
        for message in messages {
            let dedup_id = match (&message.dedup_id, options.fifo) {
                (Some(dedup_id), true) => Some(dedup_id.clone()),
                (None, true) => Some(content_dedup_id(&message.body)),
                (_, false) => None,
            };
            if let Some(first) = dedup_id
                .as_deref()
                .and_then(|dedup_id| queue.find_dedup(dedup_id, now))
            {
                sent.push(Sent {
                    message_id: first.message_id.clone(),
                    sequence_number: Some(first.sequence),
                    duplicate: true,
                });
                continue;
            }
            let key = self.keys.allocate(conn)?;
            // From the thread-local userspace generator: uuid's v4 would
            // make a getrandom system call per message on this hot path.
            let message_id = uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .to_string();
            let visible_at = now.saturating_add(duration_ms(message.delay));
            store::insert_message(
                conn,
                &StoredMessage {
                    key,
                    queue_id: queue.id,
                    message_id: &message_id,
                    sent_at: now,
                    visible_at,
                    group_id: message.group_id.as_deref(),
                    dedup_id: dedup_id.as_deref(),
                    metadata: &message.metadata,
                    body: &message.body,
                },
            )?;
            if let Some(dedup_id) = dedup_id {
                let entry = DedupEntry {
                    message_id: message_id.clone(),
                    sequence: key,
                    expires_at: now.saturating_add(duration_ms(options.dedup_window)),
                };
                store::insert_dedup(conn, queue.id, &dedup_id, &entry)?;
                queue.insert_dedup(dedup_id, entry);
            }
            let state = if visible_at > now {
                MessageState::Delayed
            } else {
                visible_now = true;
                MessageState::Visible
            };
            queue.insert(
                key,
                Message {
                    sent_at: now,
                    visible_at,
                    receive_count: 0,
                    generation: 0,
                    state,
                    group: message.group_id.map(Into::into),
                },
            );
            sent.push(Sent {
                message_id,
                sequence_number: options.fifo.then_some(key),
                duplicate: false,
            });
        }
        self.touched.insert(name.to_owned());
        if visible_now {
            self.wake.insert(name.to_owned());
        }
        self.schedule(name);
        Ok(Ok(sent))
    }

    pub(crate) fn receive(
        &mut self,
        conn: &Connection,
        name: &str,
        max: usize,
        visibility_ms: i64,
        now: i64,
    ) -> Answer<Vec<LeasedMessage>> {
        let Some(queue) = self.queues.get_mut(name) else {
            return Ok(Err(QueueError::NoSuchQueue(name.to_owned())));
        };
        queue.promote_due(now);
        let fifo = queue.options().fifo;
        let redrive = queue
            .options()
            .redrive
            .clone()
            .filter(|redrive| redrive.dead_letter_queue != name)
            .filter(|redrive| self.queues.contains_key(&redrive.dead_letter_queue));
        let dead_letter = redrive.as_ref().and_then(|redrive| {
            let id = self.queues.get(&redrive.dead_letter_queue)?.id;
            Some((
                redrive.dead_letter_queue.clone(),
                id,
                redrive.max_receive_count,
            ))
        });
        let Some(queue) = self.queues.get_mut(name) else {
            return Ok(Err(QueueError::NoSuchQueue(name.to_owned())));
        };
        let mut leased = Vec::new();
        let mut moved = Vec::new();
        let mut changed = false;
        // A candidate that turns out expired or bound for the dead-letter
        // queue leaves room for another: pick again until full or dry.
        loop {
            let candidates = queue.candidates(max - leased.len());
            if candidates.is_empty() {
                break;
            }
            let mut dropped = false;
            for key in candidates {
                let Some(message) = queue.get(key) else {
                    continue;
                };
                changed = true;
                if queue.is_expired(message.sent_at, now) {
                    store::delete_message(conn, key)?;
                    queue.remove(key);
                    dropped = true;
                    continue;
                }
                if let Some((_, dlq_id, max_receive_count)) = &dead_letter {
                    if message.receive_count >= *max_receive_count {
                        store::move_message(conn, key, *dlq_id, now)?;
                        if let Some(message) = queue.remove(key) {
                            moved.push((key, message));
                        }
                        dropped = true;
                        continue;
                    }
                }
                let Some(message) = queue.lease(key, now.saturating_add(visibility_ms)) else {
                    continue;
                };
                let row = store::lease_message(conn, key, message, now)?;
                leased.push(LeasedMessage {
                    lease: Lease {
                        key,
                        generation: message.generation,
                    },
                    row,
                    sent_at: message.sent_at,
                    receive_count: message.receive_count,
                    sequence_number: fifo.then_some(key),
                });
            }
            if !dropped || leased.len() == max {
                break;
            }
        }
        if changed {
            self.touched.insert(name.to_owned());
            self.schedule(name);
        }
        if let Some((dlq_name, _, _)) = dead_letter.filter(|_| !moved.is_empty()) {
            if let Some(dlq) = self.queues.get_mut(&dlq_name) {
                for (key, message) in moved {
                    dlq.insert(
                        key,
                        Message {
                            visible_at: now,
                            receive_count: 0,
                            state: MessageState::Visible,
                            ..message
                        },
                    );
                }
            }
            self.touched.insert(dlq_name.clone());
            self.wake.insert(dlq_name);
        }
        Ok(Ok(leased))
    }

    pub(crate) fn delete(
        &mut self,
        conn: &Connection,
        name: &str,
        leases: &[Lease],
    ) -> Answer<Vec<Result<(), QueueError>>> {
        let Some(queue) = self.queues.get_mut(name) else {
            return Ok(Err(QueueError::NoSuchQueue(name.to_owned())));
        };
        let mut results = Vec::with_capacity(leases.len());
        for lease in leases {
            let result = match queue.get(lease.key) {
                None => Ok(()),
                Some(message) => match check_generation(message, lease) {
                    Ok(()) => {
                        store::delete_message(conn, lease.key)?;
                        queue.remove(lease.key);
                        Ok(())
                    }
                    Err(err) => Err(err),
                },
            };
            results.push(result);
        }
        self.touched.insert(name.to_owned());
        if self.queues.get(name).is_some_and(|q| q.options().fifo) {
            // A deleted FIFO message may unblock its group.
            self.wake.insert(name.to_owned());
        }
        Ok(Ok(results))
    }

    pub(crate) fn change_visibility(
        &mut self,
        conn: &Connection,
        name: &str,
        lease: Lease,
        timeout_ms: i64,
        metadata: Option<Bytes>,
        now: i64,
    ) -> Answer<()> {
        let Some(queue) = self.queues.get_mut(name) else {
            return Ok(Err(QueueError::NoSuchQueue(name.to_owned())));
        };
        let Some(message) = queue.get(lease.key) else {
            return Ok(Err(QueueError::MessageNotFound));
        };
        if let Err(err) = check_generation(message, &lease) {
            return Ok(Err(err));
        }
        let until = now.saturating_add(timeout_ms);
        store::set_visible_at(conn, lease.key, until)?;
        if let Some(metadata) = metadata {
            store::set_metadata(conn, lease.key, &metadata)?;
        }
        queue.set_visible_at(lease.key, until, now);
        self.touched.insert(name.to_owned());
        if until <= now {
            self.wake.insert(name.to_owned());
        }
        self.schedule(name);
        Ok(Ok(()))
    }

    pub(crate) fn release_leases(
        &mut self,
        conn: &Connection,
        name: &str,
        now: i64,
    ) -> Answer<u64> {
        let Some(queue) = self.queues.get_mut(name) else {
            return Ok(Err(QueueError::NoSuchQueue(name.to_owned())));
        };
        let keys = queue.leased_keys();
        for &key in &keys {
            store::set_visible_at(conn, key, now)?;
            queue.set_visible_at(key, now, now);
        }
        if !keys.is_empty() {
            self.touched.insert(name.to_owned());
            self.wake.insert(name.to_owned());
        }
        Ok(Ok(keys.len() as u64))
    }

    pub(crate) fn purge(&mut self, conn: &Connection, name: &str) -> Answer<u64> {
        let Some(queue) = self.queues.get_mut(name) else {
            return Ok(Err(QueueError::NoSuchQueue(name.to_owned())));
        };
        let keys = queue.purge();
        for &key in &keys {
            store::delete_message(conn, key)?;
        }
        self.touched.insert(name.to_owned());
        Ok(Ok(keys.len() as u64))
    }

    /// Makes visible again the messages a receive leased for a caller that
    /// went away before taking them, so they need not wait out the lease.
    pub(crate) fn return_undelivered(
        &mut self,
        conn: &Connection,
        name: &str,
        leases: &[Lease],
        now: i64,
    ) -> rusqlite::Result<()> {
        let Some(queue) = self.queues.get_mut(name) else {
            return Ok(());
        };
        for lease in leases {
            let current = queue.get(lease.key).is_some_and(|message| {
                message.generation == lease.generation && message.state == MessageState::Leased
            });
            if current {
                store::set_visible_at(conn, lease.key, now)?;
                queue.set_visible_at(lease.key, now, now);
            }
        }
        self.touched.insert(name.to_owned());
        self.wake.insert(name.to_owned());
        Ok(())
    }

    /// Deletes messages past retention and forgets dedup ids past their window.
    pub(crate) fn sweep(&mut self, conn: &Connection, now: i64) -> rusqlite::Result<()> {
        for (name, queue) in &mut self.queues {
            let expired = queue.expired(now, SWEEP_LIMIT);
            for &key in &expired {
                store::delete_message(conn, key)?;
                queue.remove(key);
            }
            for dedup_id in queue.expire_dedup(now) {
                store::delete_dedup(conn, queue.id, &dedup_id)?;
            }
            if !expired.is_empty() {
                self.touched.insert(name.clone());
            }
        }
        Ok(())
    }
}

/// Hands out message keys: unique, increasing, never reused.
struct Keys {
    next: u64,
    /// Keys below this are reserved in the database: handing them out
    /// needs no write. Reserving a block at a time keeps that write off
    /// almost every commit; a restart skips the unused rest of the block.
    reserved_until: u64,
}

impl Keys {
    fn allocate(&mut self, conn: &Connection) -> rusqlite::Result<u64> {
        if self.next >= self.reserved_until {
            let reserved_until = self.next + KEY_BLOCK;
            store::reserve_keys(conn, reserved_until)?;
            self.reserved_until = reserved_until;
        }
        self.next += 1;
        Ok(self.next - 1)
    }
}

/// Whether a receipt's lease is the message's current one.
fn check_generation(message: &Message, lease: &Lease) -> Result<(), QueueError> {
    match lease.generation.cmp(&message.generation) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Less => Err(QueueError::StaleReceipt),
        // Sealed by us, yet for a receive that never happened.
        std::cmp::Ordering::Greater => Err(QueueError::InvalidReceipt),
    }
}

/// Refuses a send the queue cannot take before anything of it is stored.
fn validate(options: &QueueOptions, messages: &[NewMessage]) -> Result<(), QueueError> {
    if !options.fifo {
        return Ok(());
    }
    for message in messages {
        if message.group_id.as_deref().is_none_or(str::is_empty) {
            return Err(QueueError::InvalidMessage(
                "a message sent to a FIFO queue needs a group id",
            ));
        }
        if message.dedup_id.is_none() && !options.content_based_dedup {
            return Err(QueueError::InvalidMessage(
                "a FIFO queue without content-based deduplication needs a dedup id",
            ));
        }
    }
    Ok(())
}

/// Content-based dedup id: the body's SHA-256, in hex.
fn content_dedup_id(body: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for byte in Sha256::digest(body) {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}
