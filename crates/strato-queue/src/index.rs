//! The in-memory index of one queue: everything a receive needs to pick
//! messages without touching the database.
//!
//! Only the writer thread owns it. Every message is in exactly one of three
//! states, and each state has one structure that finds it fast:
//!
//! - `Visible`: in `ready` (standard queues, key order) or reachable from its
//!   group's head in `ready_groups` (FIFO queues).
//! - `Delayed` (never received, `visible_at` in the future) and `Leased`
//!   (received, lease not over): in `timed`, ordered by when they turn visible.
//!
//! Keys are handed out in send order and never reused, so key order is send
//! order: FIFO sequence, the oldest message and the retention sweep all read
//! it off the ordered maps.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use crate::{QueueCounts, QueueOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageState {
    Visible,
    Delayed,
    Leased,
}

/// What the index keeps of a message; the id, body, metadata and dedup id
/// stay in the database.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) sent_at: i64,
    /// When a delayed or leased message turns visible; for a visible one,
    /// when it last did (or was sent).
    pub(crate) visible_at: i64,
    pub(crate) receive_count: u32,
    /// Bumped on every receive: the receipt handles of earlier receives are stale.
    pub(crate) generation: u32,
    pub(crate) state: MessageState,
    pub(crate) group: Option<Arc<str>>,
}

/// A FIFO message group.
#[derive(Debug, Default)]
struct Group {
    /// Its messages, in sequence order.
    keys: BTreeSet<u64>,
    /// How many of them are in flight; the group is blocked while any is.
    leased: u32,
    /// The head under which the group sits in `ready_groups`, if it does.
    ready_head: Option<u64>,
}

/// The first message sent with a FIFO dedup id, remembered for the window.
#[derive(Debug, Clone)]
pub(crate) struct DedupEntry {
    pub(crate) message_id: String,
    pub(crate) sequence: u64,
    pub(crate) expires_at: i64,
}

pub(crate) struct QueueIndex {
    /// The queue's row id in the database.
    pub(crate) id: i64,
    options: QueueOptions,
    messages: BTreeMap<u64, Message>,
    /// Standard queues: the visible messages, in send order.
    ready: BTreeSet<u64>,
    /// Delayed and leased messages, by when they turn visible.
    timed: BTreeSet<(i64, u64)>,
    /// FIFO queues: every group that has messages.
    groups: HashMap<Arc<str>, Group>,
    /// FIFO queues: the groups that can deliver now (none in flight, head
    /// visible), by head key so older groups go first.
    ready_groups: BTreeSet<(u64, Arc<str>)>,
    leased: u64,
    delayed: u64,
    dedup: HashMap<String, DedupEntry>,
    /// Dedup ids in the order they were stored; expiry pops from the front.
    dedup_expiry: VecDeque<(i64, String)>,
}

impl QueueIndex {
    pub(crate) fn new(id: i64, options: QueueOptions) -> QueueIndex {
        QueueIndex {
            id,
            options,
            messages: BTreeMap::new(),
            ready: BTreeSet::new(),
            timed: BTreeSet::new(),
            groups: HashMap::new(),
            ready_groups: BTreeSet::new(),
            leased: 0,
            delayed: 0,
            dedup: HashMap::new(),
            dedup_expiry: VecDeque::new(),
        }
    }

    pub(crate) fn options(&self) -> &QueueOptions {
        &self.options
    }

    /// Replaces the options; switching between standard and FIFO re-files
    /// every message under the new discipline.
    pub(crate) fn set_options(&mut self, options: QueueOptions) {
        let refile = options.fifo != self.options.fifo;
        self.options = options;
        if refile {
            let messages = self.take_all();
            for (key, message) in messages {
                self.insert(key, message);
            }
        }
    }

    pub(crate) fn get(&self, key: u64) -> Option<&Message> {
        self.messages.get(&key)
    }

    /// Files a message under its state. On a FIFO queue the group name is
    /// shared with the group's other messages.
    pub(crate) fn insert(&mut self, key: u64, mut message: Message) {
        if self.options.fifo {
            // A message without a group (moved here from a standard queue)
            // gets the empty group, which no sender can name.
            let name = message.group.take().unwrap_or_else(|| Arc::from(""));
            let name = match self.groups.get_key_value(&name) {
                Some((shared, _)) => shared.clone(),
                None => name,
            };
            self.groups
                .entry(name.clone())
                .or_default()
                .keys
                .insert(key);
            message.group = Some(name);
        }
        self.attach(key, &message);
        let group = message.group.clone();
        self.messages.insert(key, message);
        self.refresh_group(group.as_ref());
    }

    pub(crate) fn remove(&mut self, key: u64) -> Option<Message> {
        let message = self.messages.remove(&key)?;
        self.detach(key, &message);
        if let Some(name) = message.group.as_ref().filter(|_| self.options.fifo) {
            if let Some(group) = self.groups.get_mut(name) {
                group.keys.remove(&key);
            }
        }
        self.refresh_group(message.group.as_ref());
        Some(message)
    }

    /// Leases a message for a receive: a new generation, one more receive.
    pub(crate) fn lease(&mut self, key: u64, until: i64) -> Option<&Message> {
        self.set_state(key, MessageState::Leased, until)?;
        let message = self.messages.get_mut(&key)?;
        message.generation += 1;
        message.receive_count += 1;
        Some(message)
    }

    /// Moves the end of a message's lease: leased until `until`, or visible
    /// if that is not in the future.
    pub(crate) fn set_visible_at(&mut self, key: u64, until: i64, now: i64) -> Option<()> {
        let state = if until > now {
            MessageState::Leased
        } else {
            MessageState::Visible
        };
        self.set_state(key, state, until)
    }

    /// Turns every delayed or leased message whose time has come visible;
    /// true when any did.
    pub(crate) fn promote_due(&mut self, now: i64) -> bool {
        let mut promoted = false;
        while let Some(&(at, key)) = self.timed.first() {
            if at > now {
                break;
            }
            self.set_state(key, MessageState::Visible, at);
            promoted = true;
        }
        promoted
    }

    /// When the next delayed or leased message turns visible.
    pub(crate) fn next_due(&self) -> Option<i64> {
        self.timed.first().map(|&(at, _)| at)
    }

    /// Up to `max` messages a receive may take now, in delivery order. FIFO:
    /// for each unblocked group, oldest first, the run of visible messages
    /// from its head.
    pub(crate) fn candidates(&self, max: usize) -> Vec<u64> {
        if !self.options.fifo {
            return self.ready.iter().take(max).copied().collect();
        }
        let mut picked = Vec::new();
        for (_, name) in &self.ready_groups {
            let Some(group) = self.groups.get(name) else {
                continue;
            };
            for &key in &group.keys {
                if picked.len() == max {
                    return picked;
                }
                match self.messages.get(&key) {
                    Some(message) if message.state == MessageState::Visible => picked.push(key),
                    _ => break,
                }
            }
        }
        picked
    }

    pub(crate) fn leased_keys(&self) -> Vec<u64> {
        self.timed
            .iter()
            .filter(|(_, key)| {
                self.messages
                    .get(key)
                    .is_some_and(|message| message.state == MessageState::Leased)
            })
            .map(|&(_, key)| key)
            .collect()
    }

    /// Empties the queue (dedup ids stay: a purge does not reopen the window)
    /// and returns the keys that were in it.
    pub(crate) fn purge(&mut self) -> Vec<u64> {
        self.take_all().into_keys().collect()
    }

    /// Empties the index, every message and every ordering of them, and
    /// returns the messages.
    fn take_all(&mut self) -> BTreeMap<u64, Message> {
        self.ready.clear();
        self.timed.clear();
        self.groups.clear();
        self.ready_groups.clear();
        self.leased = 0;
        self.delayed = 0;
        std::mem::take(&mut self.messages)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.messages.keys().copied()
    }

    /// Whether a message sent at `sent_at` is past the queue's retention.
    pub(crate) fn is_expired(&self, sent_at: i64, now: i64) -> bool {
        sent_at.saturating_add(duration_ms(self.options.retention)) <= now
    }

    /// Up to `limit` messages past retention, oldest first.
    pub(crate) fn expired(&self, now: i64, limit: usize) -> Vec<u64> {
        self.messages
            .iter()
            .take_while(|(_, message)| self.is_expired(message.sent_at, now))
            .take(limit)
            .map(|(&key, _)| key)
            .collect()
    }

    pub(crate) fn counts(&self) -> QueueCounts {
        let total = self.messages.len() as u64;
        QueueCounts {
            visible: total - self.leased - self.delayed,
            in_flight: self.leased,
            delayed: self.delayed,
            oldest_sent_at_ms: self.messages.values().next().map(|m| m.sent_at),
        }
    }

    pub(crate) fn find_dedup(&self, dedup_id: &str, now: i64) -> Option<&DedupEntry> {
        self.dedup
            .get(dedup_id)
            .filter(|entry| entry.expires_at > now)
    }

    pub(crate) fn insert_dedup(&mut self, dedup_id: String, entry: DedupEntry) {
        self.dedup_expiry
            .push_back((entry.expires_at, dedup_id.clone()));
        self.dedup.insert(dedup_id, entry);
    }

    /// Forgets the dedup ids whose window is over; returns them so the
    /// database forgets them too.
    pub(crate) fn expire_dedup(&mut self, now: i64) -> Vec<String> {
        let mut expired = Vec::new();
        while let Some((at, _)) = self.dedup_expiry.front() {
            if *at > now {
                break;
            }
            let Some((at, dedup_id)) = self.dedup_expiry.pop_front() else {
                break;
            };
            // A later send may have stored the id again with a new window.
            if self
                .dedup
                .get(&dedup_id)
                .is_some_and(|entry| entry.expires_at == at)
            {
                self.dedup.remove(&dedup_id);
                expired.push(dedup_id);
            }
        }
        expired
    }

    fn set_state(&mut self, key: u64, state: MessageState, visible_at: i64) -> Option<()> {
        let mut message = self.messages.get(&key)?.clone();
        self.detach(key, &message);
        message.state = state;
        message.visible_at = visible_at;
        self.attach(key, &message);
        let group = message.group.clone();
        self.messages.insert(key, message);
        self.refresh_group(group.as_ref());
        Some(())
    }

    /// Takes a message out of its state's structure and counters.
    fn detach(&mut self, key: u64, message: &Message) {
        match message.state {
            MessageState::Visible => {
                self.ready.remove(&key);
            }
            MessageState::Delayed => {
                self.timed.remove(&(message.visible_at, key));
                self.delayed -= 1;
            }
            MessageState::Leased => {
                self.timed.remove(&(message.visible_at, key));
                self.leased -= 1;
                if let Some(group) = self.fifo_group_mut(message) {
                    group.leased -= 1;
                }
            }
        }
    }

    /// Files a message under its state's structure and counters.
    fn attach(&mut self, key: u64, message: &Message) {
        match message.state {
            MessageState::Visible => {
                if !self.options.fifo {
                    self.ready.insert(key);
                }
            }
            MessageState::Delayed => {
                self.timed.insert((message.visible_at, key));
                self.delayed += 1;
            }
            MessageState::Leased => {
                self.timed.insert((message.visible_at, key));
                self.leased += 1;
                if let Some(group) = self.fifo_group_mut(message) {
                    group.leased += 1;
                }
            }
        }
    }

    fn fifo_group_mut(&mut self, message: &Message) -> Option<&mut Group> {
        if !self.options.fifo {
            return None;
        }
        self.groups.get_mut(message.group.as_ref()?)
    }

    /// Re-decides whether a FIFO group can deliver (nothing in flight, head
    /// visible), and drops it once it has no messages left.
    fn refresh_group(&mut self, name: Option<&Arc<str>>) {
        let Some(name) = name.filter(|_| self.options.fifo) else {
            return;
        };
        let Some(group) = self.groups.get_mut(name) else {
            return;
        };
        if let Some(head) = group.ready_head.take() {
            self.ready_groups.remove(&(head, name.clone()));
        }
        let Some(&head) = group.keys.first() else {
            self.groups.remove(name);
            return;
        };
        let head_visible = self
            .messages
            .get(&head)
            .is_some_and(|message| message.state == MessageState::Visible);
        if group.leased == 0 && head_visible {
            group.ready_head = Some(head);
            self.ready_groups.insert((head, name.clone()));
        }
    }
}

/// A duration in whole milliseconds, saturating (options come from users).
pub(crate) fn duration_ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(state: MessageState, visible_at: i64, group: Option<&str>) -> Message {
        Message {
            sent_at: 0,
            visible_at,
            receive_count: 0,
            generation: 0,
            state,
            group: group.map(Arc::from),
        }
    }

    fn fifo() -> QueueIndex {
        QueueIndex::new(
            1,
            QueueOptions {
                fifo: true,
                ..QueueOptions::default()
            },
        )
    }

    #[test]
    fn a_fifo_group_with_a_leased_message_offers_nothing() {
        let mut index = fifo();
        index.insert(1, message(MessageState::Visible, 0, Some("a")));
        index.insert(2, message(MessageState::Visible, 0, Some("a")));
        index.insert(3, message(MessageState::Visible, 0, Some("b")));
        assert_eq!(index.candidates(10), vec![1, 2, 3]);
        index.lease(1, 100);
        assert_eq!(index.candidates(10), vec![3]);
        index.remove(1);
        assert_eq!(index.candidates(10), vec![2, 3]);
    }

    #[test]
    fn a_delayed_fifo_head_blocks_its_group_until_due() {
        let mut index = fifo();
        index.insert(1, message(MessageState::Delayed, 50, Some("a")));
        index.insert(2, message(MessageState::Visible, 0, Some("a")));
        assert!(index.candidates(10).is_empty());
        assert!(index.promote_due(50));
        assert_eq!(index.candidates(10), vec![1, 2]);
    }

    #[test]
    fn counts_follow_state_changes() {
        let mut index = QueueIndex::new(1, QueueOptions::default());
        index.insert(1, message(MessageState::Visible, 0, None));
        index.insert(2, message(MessageState::Delayed, 10, None));
        index.lease(1, 20);
        let counts = index.counts();
        assert_eq!(
            (counts.visible, counts.in_flight, counts.delayed),
            (0, 1, 1)
        );
        index.promote_due(20);
        let counts = index.counts();
        assert_eq!(
            (counts.visible, counts.in_flight, counts.delayed),
            (2, 0, 0)
        );
    }

    #[test]
    fn switching_to_fifo_refiles_messages_by_group() {
        let mut index = QueueIndex::new(1, QueueOptions::default());
        index.insert(1, message(MessageState::Leased, 10, Some("a")));
        index.insert(2, message(MessageState::Visible, 0, Some("a")));
        assert_eq!(index.candidates(10), vec![2]);
        index.set_options(QueueOptions {
            fifo: true,
            ..QueueOptions::default()
        });
        assert!(index.candidates(10).is_empty());
    }
}
