//! The engine's behaviour, one test per rule, against a real database file.

mod durability;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tempfile::TempDir;
use tokio::task::JoinHandle;

use crate::{
    Durability, NewMessage, QueueCounts, QueueEngine, QueueError, QueueOptions, Received, Redrive,
    Sent, SqliteQueueEngine,
};

const MINUTE: Duration = Duration::from_secs(60);
/// Long enough that a long poll only ends because something woke it.
const LONG_WAIT: Duration = Duration::from_secs(60);

struct Fixture {
    dir: TempDir,
    engine: Arc<SqliteQueueEngine>,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        engine
            .create_queue("q", QueueOptions::default())
            .await
            .unwrap();
        Fixture { dir, engine }
    }

    // The engine's operations as a test uses them: a failure fails the test.

    async fn create_queue(&self, name: &str, options: QueueOptions) {
        self.engine.create_queue(name, options).await.unwrap();
    }

    async fn delete_queue(&self, name: &str) -> bool {
        self.engine.delete_queue(name).await.unwrap()
    }

    async fn send(&self, queue: &str, messages: Vec<NewMessage>) -> Vec<Sent> {
        self.engine.send(queue, messages).await.unwrap()
    }

    /// What is visible now, each message leased for `lease` (no long poll).
    async fn receive_leased(&self, queue: &str, max: usize, lease: Duration) -> Vec<Received> {
        let received = self.engine.receive(queue, max, lease, Duration::ZERO);
        received.await.unwrap()
    }

    /// What is visible now, leased for a minute (no long poll).
    async fn receive_now(&self, queue: &str, max: usize) -> Vec<Received> {
        self.receive_leased(queue, max, MINUTE).await
    }

    /// A long poll (up to [`LONG_WAIT`]), leased for a minute.
    async fn long_poll(&self, queue: &str, max: usize) -> Vec<Received> {
        let received = self.engine.receive(queue, max, MINUTE, LONG_WAIT);
        received.await.unwrap()
    }

    /// A long poll of queue `q` in a task, once it is parked on the empty
    /// queue (or already finished).
    async fn parked_long_poll(&self) -> JoinHandle<Result<Vec<Received>, QueueError>> {
        let engine = self.engine.clone();
        let poll = tokio::spawn(async move { engine.receive("q", 10, MINUTE, LONG_WAIT).await });
        while self.engine.waiting_receivers("q") == 0 && !poll.is_finished() {
            tokio::task::yield_now().await;
        }
        poll
    }

    async fn delete(&self, queue: &str, receipts: &[String]) -> Vec<Result<(), QueueError>> {
        self.engine.delete(queue, receipts).await.unwrap()
    }

    async fn release_leases(&self, queue: &str) -> u64 {
        self.engine.release_leases(queue).await.unwrap()
    }

    async fn purge(&self, queue: &str) -> u64 {
        self.engine.purge(queue).await.unwrap()
    }

    /// A fixture that also has the FIFO queue `f.fifo`.
    async fn with_fifo(content_based_dedup: bool) -> Fixture {
        let f = Fixture::new().await;
        f.create_queue("f.fifo", fifo(content_based_dedup)).await;
        f
    }

    async fn reopen(self) -> Fixture {
        let Fixture { dir, engine } = self;
        drop(engine);
        Fixture {
            engine: open(dir.path()),
            dir,
        }
    }
}

fn open(dir: &Path) -> Arc<SqliteQueueEngine> {
    SqliteQueueEngine::open(&dir.join("queues.db"), Durability::ProcessCrash).unwrap()
}

fn message(body: &str) -> NewMessage {
    NewMessage {
        body: Bytes::from(body.to_owned()),
        ..NewMessage::default()
    }
}

fn in_group(body: &str, group: &str) -> NewMessage {
    NewMessage {
        group_id: Some(group.to_owned()),
        ..message(body)
    }
}

/// Receives from queue `q`, `batch` at a time, until it answers nothing;
/// returns the ids received, in order.
async fn drain(engine: &SqliteQueueEngine, batch: usize) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let received = engine.receive("q", batch, MINUTE, Duration::ZERO);
        let received = received.await.unwrap();
        if received.is_empty() {
            return ids;
        }
        ids.extend(received.into_iter().map(|m| m.message_id));
    }
}

fn bodies(received: &[Received]) -> Vec<&[u8]> {
    received.iter().map(|m| &m.body[..]).collect()
}

fn fifo(content_based_dedup: bool) -> QueueOptions {
    QueueOptions {
        fifo: true,
        content_based_dedup,
        ..QueueOptions::default()
    }
}

#[tokio::test]
async fn a_sent_message_is_received_once_and_deleted() {
    let f = Fixture::new().await;
    let sent = f
        .send(
            "q",
            vec![NewMessage {
                metadata: Bytes::from_static(b"{\"attempt\":0}"),
                ..message("hello")
            }],
        )
        .await;
    let received = f.receive_now("q", 10).await;
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.message_id, sent[0].message_id);
    assert_eq!(&got.body[..], b"hello");
    assert_eq!(&got.metadata[..], b"{\"attempt\":0}");
    assert_eq!(got.receive_count, 1);
    assert!(got.first_received_at_ms >= got.sent_at_ms);
    assert!(f.receive_now("q", 10).await.is_empty());
    let deleted = f
        .delete("q", std::slice::from_ref(&got.receipt_handle))
        .await;
    assert!(matches!(deleted[..], [Ok(())]));
    assert_eq!(f.engine.counts("q").unwrap(), QueueCounts::default());
}

#[tokio::test]
async fn a_large_body_is_stored_apart_and_deleted_with_its_message() {
    let f = Fixture::new().await;
    let body = Bytes::from(vec![42u8; crate::store::INLINE_BODY_MAX * 4]);
    f.send(
        "q",
        vec![NewMessage {
            body: body.clone(),
            ..NewMessage::default()
        }],
    )
    .await;
    let received = f.receive_now("q", 1).await;
    assert_eq!(received[0].body, body);
    f.delete("q", std::slice::from_ref(&received[0].receipt_handle))
        .await;
    f.engine
        .exec(|conn| {
            let left: i64 = conn.query_row("SELECT count(*) FROM bodies", [], |row| row.get(0))?;
            assert_eq!(left, 0);
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn an_expired_lease_returns_the_message_with_receive_count_2() {
    let f = Fixture::new().await;
    f.send("q", vec![message("m")]).await;
    let first = f.receive_leased("q", 1, Duration::from_millis(50)).await;
    let again = f.long_poll("q", 1).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id, first[0].message_id);
    assert_eq!(again[0].receive_count, 2);
    assert_eq!(again[0].first_received_at_ms, first[0].first_received_at_ms);
    assert_ne!(again[0].receipt_handle, first[0].receipt_handle);
}

#[tokio::test]
async fn a_long_poll_wakes_when_a_message_is_sent() {
    let f = Fixture::new().await;
    let poll = f.parked_long_poll().await;
    // The poll is parked on an empty queue; only the send can end it.
    assert!(!poll.is_finished());
    let sent = f.send("q", vec![message("wake")]).await;
    let received = poll.await.unwrap().unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message_id, sent[0].message_id);
    assert_eq!(f.engine.waiting_receivers("q"), 0);
}

#[tokio::test]
async fn a_long_poll_ends_when_its_queue_is_deleted() {
    let f = Fixture::new().await;
    let poll = f.parked_long_poll().await;
    assert!(!poll.is_finished());
    f.delete_queue("q").await;
    let ended = poll.await.unwrap();
    assert!(
        matches!(ended, Err(QueueError::NoSuchQueue(_))),
        "{ended:?}"
    );
}

#[tokio::test]
async fn a_delayed_message_stays_invisible_until_its_delay_ends() {
    let f = Fixture::new().await;
    f.send(
        "q",
        vec![NewMessage {
            delay: Duration::from_millis(200),
            ..message("later")
        }],
    )
    .await;
    let counts = f.engine.counts("q").unwrap();
    assert_eq!((counts.visible, counts.delayed), (0, 1));
    assert!(f.receive_now("q", 10).await.is_empty());
    let received = f.long_poll("q", 10).await;
    assert_eq!(bodies(&received), vec![b"later"]);
}

#[tokio::test]
async fn fifo_delivers_each_group_in_order_and_holds_a_group_while_in_flight() {
    let f = Fixture::with_fifo(true).await;
    let sent = f
        .send(
            "f.fifo",
            vec![
                in_group("a1", "a"),
                in_group("b1", "b"),
                in_group("a2", "a"),
            ],
        )
        .await;
    assert!(sent[0].sequence_number < sent[1].sequence_number);
    let first = f.receive_now("f.fifo", 1).await;
    assert_eq!(bodies(&first), vec![b"a1"]);
    assert_eq!(first[0].group_id.as_deref(), Some("a"));
    // Group a has a1 in flight: a2 waits, b goes ahead.
    let next = f.receive_now("f.fifo", 10).await;
    assert_eq!(bodies(&next), vec![b"b1"]);
    f.delete("f.fifo", std::slice::from_ref(&first[0].receipt_handle))
        .await;
    let last = f.receive_now("f.fifo", 10).await;
    assert_eq!(bodies(&last), vec![b"a2"]);
}

#[tokio::test]
async fn fifo_returns_a_group_run_in_sequence_order() {
    let f = Fixture::with_fifo(true).await;
    let messages = (0..5).map(|i| in_group(&format!("m{i}"), "g")).collect();
    f.send("f.fifo", messages).await;
    let received = f.receive_now("f.fifo", 10).await;
    assert_eq!(bodies(&received), vec![b"m0", b"m1", b"m2", b"m3", b"m4"]);
    let sequence: Vec<_> = received.iter().map(|m| m.sequence_number).collect();
    let mut sorted = sequence.clone();
    sorted.sort();
    assert_eq!(sequence, sorted);
}

#[tokio::test]
async fn a_fifo_send_needs_a_group_and_a_dedup_id() {
    let f = Fixture::with_fifo(false).await;
    let no_group = f.engine.send("f.fifo", vec![message("x")]).await;
    assert!(matches!(no_group, Err(QueueError::InvalidMessage(_))));
    let no_dedup = f.engine.send("f.fifo", vec![in_group("x", "g")]).await;
    assert!(matches!(no_dedup, Err(QueueError::InvalidMessage(_))));
    assert_eq!(f.engine.counts("f.fifo").unwrap(), QueueCounts::default());
}

#[tokio::test]
async fn a_duplicate_inside_the_window_returns_the_first_id_and_stores_nothing() {
    let f = Fixture::with_fifo(false).await;
    let with_id = |body: &str| NewMessage {
        dedup_id: Some("d-1".into()),
        ..in_group(body, "g")
    };
    let first = f.send("f.fifo", vec![with_id("one")]).await;
    let second = f.send("f.fifo", vec![with_id("two")]).await;
    assert!(!first[0].duplicate);
    assert!(second[0].duplicate);
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_eq!(second[0].sequence_number, first[0].sequence_number);
    assert_eq!(f.engine.counts("f.fifo").unwrap().visible, 1);
    let received = f.receive_now("f.fifo", 10).await;
    assert_eq!(bodies(&received), vec![b"one"]);
    assert_eq!(received[0].dedup_id.as_deref(), Some("d-1"));
}

#[tokio::test]
async fn content_based_dedup_treats_the_same_body_as_a_duplicate() {
    let f = Fixture::with_fifo(true).await;
    let sent = f
        .send("f.fifo", vec![in_group("same", "g"), in_group("same", "h")])
        .await;
    assert!(sent[1].duplicate);
    assert_eq!(sent[1].message_id, sent[0].message_id);
    let other = f.send("f.fifo", vec![in_group("other", "g")]).await;
    assert!(!other[0].duplicate);
    assert_eq!(f.engine.counts("f.fifo").unwrap().visible, 2);
}

#[tokio::test]
async fn a_message_received_max_receive_count_times_moves_to_the_dead_letter_queue() {
    let f = Fixture::new().await;
    f.create_queue("dlq", QueueOptions::default()).await;
    let redrive = Redrive {
        dead_letter_queue: "dlq".into(),
        max_receive_count: 2,
    };
    f.create_queue(
        "src",
        QueueOptions {
            redrive: Some(redrive),
            ..QueueOptions::default()
        },
    )
    .await;
    let sent = f
        .send(
            "src",
            vec![NewMessage {
                metadata: Bytes::from_static(b"meta"),
                ..message("poison")
            }],
        )
        .await;
    // A zero visibility timeout makes the message visible again at once.
    for count in 1..=2 {
        let received = f.receive_leased("src", 1, Duration::ZERO).await;
        assert_eq!(received[0].receive_count, count);
    }
    let third = f.receive_leased("src", 1, Duration::ZERO).await;
    assert!(third.is_empty());
    assert_eq!(f.engine.counts("src").unwrap(), QueueCounts::default());
    let dead = f.receive_now("dlq", 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id, sent[0].message_id);
    assert_eq!(&dead[0].body[..], b"poison");
    assert_eq!(&dead[0].metadata[..], b"meta");
    assert_eq!(dead[0].receive_count, 1);
}

#[tokio::test]
async fn change_visibility_moves_the_lease_and_replaces_metadata() {
    let f = Fixture::new().await;
    f.send("q", vec![message("m")]).await;
    let first = f.receive_now("q", 1).await;
    f.engine
        .change_visibility(
            "q",
            &first[0].receipt_handle,
            Duration::ZERO,
            Some(Bytes::from_static(b"attempt=2")),
        )
        .await
        .unwrap();
    let second = f.receive_now("q", 1).await;
    assert_eq!(&second[0].metadata[..], b"attempt=2");
    assert_eq!(second[0].receive_count, 2);
    // Extending the lease keeps the message in flight.
    f.engine
        .change_visibility("q", &second[0].receipt_handle, MINUTE, None)
        .await
        .unwrap();
    assert_eq!(f.engine.counts("q").unwrap().in_flight, 1);
    let stale = f
        .engine
        .change_visibility("q", &first[0].receipt_handle, Duration::ZERO, None)
        .await;
    assert!(matches!(stale, Err(QueueError::StaleReceipt)));
}

#[tokio::test]
async fn release_leases_makes_every_in_flight_message_visible() {
    let f = Fixture::new().await;
    f.send("q", vec![message("a"), message("b")]).await;
    let received = f.receive_now("q", 10).await;
    assert_eq!(received.len(), 2);
    assert_eq!(f.release_leases("q").await, 2);
    let again = f.receive_now("q", 10).await;
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|m| m.receive_count == 2));
}

#[tokio::test]
async fn purge_deletes_every_message() {
    let f = Fixture::new().await;
    let messages = (0..3).map(|i| message(&i.to_string())).collect();
    f.send("q", messages).await;
    f.receive_now("q", 1).await;
    assert_eq!(f.purge("q").await, 3);
    assert_eq!(f.engine.counts("q").unwrap(), QueueCounts::default());
    assert!(f.receive_now("q", 10).await.is_empty());
}

#[tokio::test]
async fn counts_split_visible_in_flight_and_delayed() {
    let f = Fixture::new().await;
    let sent_first = f.send("q", vec![message("a")]).await;
    f.send("q", vec![message("b"), message("c")]).await;
    f.send(
        "q",
        vec![NewMessage {
            delay: MINUTE,
            ..message("d")
        }],
    )
    .await;
    let received = f.receive_now("q", 1).await;
    assert_eq!(received[0].message_id, sent_first[0].message_id);
    let counts = f.engine.counts("q").unwrap();
    assert_eq!(
        (counts.visible, counts.in_flight, counts.delayed),
        (2, 1, 1)
    );
    assert_eq!(counts.oldest_sent_at_ms, Some(received[0].sent_at_ms));
    assert!(matches!(
        f.engine.counts("nope"),
        Err(QueueError::NoSuchQueue(_))
    ));
}

#[tokio::test]
async fn a_receipt_from_an_earlier_receive_is_stale_and_garbage_is_invalid() {
    let f = Fixture::new().await;
    f.create_queue("other", QueueOptions::default()).await;
    f.send("q", vec![message("m")]).await;
    let first = f.receive_leased("q", 1, Duration::ZERO).await;
    let second = f.receive_now("q", 1).await;
    let results = f
        .delete(
            "q",
            &[
                first[0].receipt_handle.clone(),
                "garbage".into(),
                second[0].receipt_handle.clone(),
                second[0].receipt_handle.clone(),
            ],
        )
        .await;
    assert!(matches!(results[0], Err(QueueError::StaleReceipt)));
    assert!(matches!(results[1], Err(QueueError::InvalidReceipt)));
    assert!(matches!(results[2], Ok(())));
    // Already gone is not an error.
    assert!(matches!(results[3], Ok(())));
    let elsewhere = f
        .delete("other", std::slice::from_ref(&second[0].receipt_handle))
        .await;
    assert!(matches!(elsewhere[0], Err(QueueError::InvalidReceipt)));
}

#[tokio::test]
async fn messages_past_retention_are_never_delivered() {
    let f = Fixture::new().await;
    f.create_queue(
        "short",
        QueueOptions {
            retention: Duration::from_millis(1),
            ..QueueOptions::default()
        },
    )
    .await;
    f.send("short", vec![message("old")]).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(f.receive_now("short", 10).await.is_empty());
    assert_eq!(f.engine.counts("short").unwrap(), QueueCounts::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_consumers_never_get_the_same_message() {
    let f = Fixture::new().await;
    let total = 500;
    for chunk in 0..total / 10 {
        let messages = (0..10)
            .map(|i| message(&format!("{}", chunk * 10 + i)))
            .collect();
        f.send("q", messages).await;
    }
    let consumers: Vec<_> = (0..8)
        .map(|_| {
            let engine = f.engine.clone();
            tokio::spawn(async move { drain(engine.as_ref(), 10).await })
        })
        .collect();
    let mut seen = HashSet::new();
    for consumer in consumers {
        for id in consumer.await.unwrap() {
            assert!(seen.insert(id), "a message was delivered twice");
        }
    }
    assert_eq!(seen.len(), total);
}

#[tokio::test]
async fn deleting_a_queue_removes_it_and_its_messages() {
    let f = Fixture::new().await;
    f.create_queue("qq", QueueOptions::default()).await;
    f.send("q", vec![message("m")]).await;
    assert_eq!(
        f.engine.queue_names("q"),
        vec!["q".to_owned(), "qq".to_owned()]
    );
    assert!(f.delete_queue("q").await);
    assert!(!f.delete_queue("q").await);
    assert_eq!(f.engine.queue_names(""), vec!["qq".to_owned()]);
    assert!(matches!(
        f.engine.send("q", vec![message("m")]).await,
        Err(QueueError::NoSuchQueue(_))
    ));
    f.create_queue("q", QueueOptions::default()).await;
    assert_eq!(f.engine.counts("q").unwrap(), QueueCounts::default());
}

#[tokio::test]
async fn create_queue_replaces_options_and_keeps_messages() {
    let f = Fixture::new().await;
    f.send("q", vec![message("m")]).await;
    let options = QueueOptions {
        retention: Duration::from_secs(3600),
        ..QueueOptions::default()
    };
    f.create_queue("q", options.clone()).await;
    assert_eq!(f.engine.queue_options("q"), Some(options.clone()));
    assert_eq!(f.engine.counts("q").unwrap().visible, 1);
    let f = f.reopen().await;
    assert_eq!(f.engine.queue_options("q"), Some(options));
}
