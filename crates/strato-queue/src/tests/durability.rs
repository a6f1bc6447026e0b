//! What survives: restarts, a full disk, closing, and kill -9.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use bytes::Bytes;

use super::{bodies, drain, in_group, message, open, Fixture};
use crate::{Durability, NewMessage, QueueEngine, QueueError, QueueOptions, SqliteQueueEngine};

#[tokio::test]
async fn dedup_ids_survive_a_restart() {
    let f = Fixture::with_fifo(true).await;
    let first = f.send("f.fifo", vec![in_group("x", "g")]).await;
    let f = f.reopen().await;
    let again = f.send("f.fifo", vec![in_group("x", "g")]).await;
    assert!(again[0].duplicate);
    assert_eq!(again[0].message_id, first[0].message_id);
}

#[tokio::test]
async fn reopening_restores_messages_leases_and_receipts() {
    let f = Fixture::new().await;
    f.send("q", vec![message("a"), message("b")]).await;
    let leased = f.receive_now("q", 1).await;
    let f = f.reopen().await;
    let counts = f.engine.counts("q").unwrap();
    assert_eq!((counts.visible, counts.in_flight), (1, 1));
    let other = f.receive_now("q", 10).await;
    assert_eq!(other.len(), 1);
    assert_ne!(other[0].message_id, leased[0].message_id);
    let deleted = f
        .delete("q", std::slice::from_ref(&leased[0].receipt_handle))
        .await;
    assert!(matches!(deleted[..], [Ok(())]));
    assert_eq!(f.engine.counts("q").unwrap().in_flight, 1);
    // New messages get new keys: a key is never handed out twice.
    let sent = f.send("q", vec![message("c")]).await;
    assert_ne!(sent[0].message_id, leased[0].message_id);
}

#[tokio::test]
async fn a_full_disk_fails_the_send_and_changes_nothing() {
    let f = Fixture::new().await;
    f.send("q", vec![message("kept")]).await;
    let before = f.engine.counts("q").unwrap();
    // Cap the database at its current size: the next page it needs fails
    // with SQLITE_FULL, as on a full disk.
    f.engine
        .exec(|conn| {
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |row| row.get(0))?;
            conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
        })
        .await
        .unwrap();
    let big = NewMessage {
        body: Bytes::from(vec![7u8; 1 << 20]),
        ..NewMessage::default()
    };
    let full = f.engine.send("q", vec![message("small"), big]).await;
    assert!(matches!(full, Err(QueueError::StorageFull)), "{full:?}");
    assert_eq!(f.engine.counts("q").unwrap(), before);
    let received = f.receive_now("q", 10).await;
    assert_eq!(bodies(&received), vec![b"kept"]);
    f.engine
        .exec(|conn| conn.query_row("PRAGMA max_page_count = 1000000000", [], |_| Ok(())))
        .await
        .unwrap();
    f.send("q", vec![message("after")]).await;
    let f = f.reopen().await;
    let counts = f.engine.counts("q").unwrap();
    assert_eq!((counts.visible, counts.in_flight), (1, 1));
}

#[tokio::test]
async fn a_closed_engine_refuses_work() {
    let f = Fixture::new().await;
    f.send("q", vec![message("m")]).await;
    f.engine.close().await;
    assert!(matches!(
        f.engine.send("q", vec![message("m")]).await,
        Err(QueueError::Closed)
    ));
    let f = f.reopen().await;
    assert_eq!(f.engine.counts("q").unwrap().visible, 1);
}

/// Set in the child process of the kill -9 test: the database to write.
const KILL_CHILD_DB: &str = "STRATO_QUEUE_KILL_CHILD_DB";
/// How many acknowledged sends the parent waits for before it kills the child.
const ACKS_BEFORE_KILL: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_sends_survive_kill_9() {
    if let Some(db) = std::env::var_os(KILL_CHILD_DB) {
        send_until_killed(Path::new(&db)).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queues.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::durability::acknowledged_sends_survive_kill_9",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL_CHILD_DB, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acknowledged = Vec::new();
    let mut line = Vec::new();
    let mut killed = false;
    loop {
        line.clear();
        if stdout.read_until(b'\n', &mut line).unwrap() == 0 {
            break;
        }
        // Only whole lines count: the kill may cut the last one short.
        if let Some(id) = line
            .strip_prefix(b"ACK ")
            .and_then(|l| l.strip_suffix(b"\n"))
        {
            acknowledged.push(String::from_utf8(id.to_vec()).unwrap());
        }
        if !killed && acknowledged.len() >= ACKS_BEFORE_KILL {
            child.kill().unwrap();
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(killed, "the child stopped before it was killed: {status}");
    assert!(acknowledged.len() >= ACKS_BEFORE_KILL);

    let engine = open(dir.path());
    let stored: HashSet<String> = drain(&engine, 100).await.into_iter().collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}

/// The child: sends batches from several tasks and prints every
/// acknowledged id, until the parent kills it.
async fn send_until_killed(db: &Path) {
    let engine = SqliteQueueEngine::open(db, Durability::ProcessCrash).unwrap();
    engine
        .create_queue("q", QueueOptions::default())
        .await
        .unwrap();
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move {
                // Bounded, so an orphaned child ends by itself.
                for _ in 0..10_000 {
                    let batch = (0..10).map(|_| message("durable")).collect();
                    let sent = engine.send("q", batch).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    for s in sent {
                        out.write_all(format!("ACK {}\n", s.message_id).as_bytes())
                            .unwrap();
                    }
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
}
