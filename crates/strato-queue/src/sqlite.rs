//! [`SqliteQueueEngine`]: the [`QueueEngine`] on one SQLite file, in front
//! of the writer thread.
//!
//! The engine's async methods only build an operation, hand it to the
//! writer and await the answer; the parts that need no shared state (sealing
//! and checking receipt handles, the long-poll wait) run on the caller's task.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::index::duration_ms;
use crate::receipt::ReceiptSealer;
use crate::state::LeasedMessage;
use crate::writer::{Command, Op, QueueView, Reply, Views, Writer};
use crate::{
    Durability, NewMessage, QueueCounts, QueueEngine, QueueError, QueueOptions, Received, Sent,
};

pub struct SqliteQueueEngine {
    commands: mpsc::Sender<Command>,
    views: Arc<Views>,
    sealer: ReceiptSealer,
}

impl SqliteQueueEngine {
    /// Opens (creating) the database file (its own file, e.g. `<data-dir>/queues.db`), WAL mode.
    /// Loads existing queues and messages; blocks the calling thread while it does (the work
    /// runs on the writer thread, which keeps the connection), so call it at start-up.
    pub fn open(path: &Path, durability: Durability) -> Result<Arc<Self>, QueueError> {
        let (commands, receiver) = mpsc::channel();
        let (opened, on_open) = mpsc::channel();
        let views = Arc::new(Views::default());
        let writer_views = views.clone();
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("strato-queue-writer".into())
            .spawn(
                move || match Writer::open(&path, durability, writer_views) {
                    Ok((writer, secret)) => {
                        if opened.send(Ok(secret)).is_ok() {
                            writer.run(receiver);
                        }
                    }
                    Err(err) => {
                        let _ = opened.send(Err(err));
                    }
                },
            )
            .map_err(QueueError::WriterThread)?;
        let secret = on_open.recv().map_err(|_| QueueError::Closed)??;
        Ok(Arc::new(SqliteQueueEngine {
            commands,
            views,
            sealer: ReceiptSealer::new(secret),
        }))
    }

    /// Finishes pending writes and stops the writer. Later calls fail with
    /// [`QueueError::Closed`].
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Close(reply)).is_ok() {
            let _ = done.await;
        }
    }

    async fn call<T>(&self, op: impl FnOnce(Reply<T>) -> Op) -> Result<T, QueueError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Apply(op(reply)))
            .map_err(|_| QueueError::Closed)?;
        answer.await.map_err(|_| QueueError::Closed)?
    }

    fn view(&self, queue: &str) -> Result<Arc<QueueView>, QueueError> {
        self.views
            .read()
            .get(queue)
            .cloned()
            .ok_or_else(|| QueueError::NoSuchQueue(queue.to_owned()))
    }

    fn received(&self, queue: &str, message: LeasedMessage) -> Received {
        Received {
            receipt_handle: self.sealer.seal(queue, message.lease),
            message_id: message.row.message_id,
            body: message.row.body,
            metadata: message.row.metadata,
            sent_at_ms: message.sent_at,
            first_received_at_ms: message.row.first_received_at,
            receive_count: message.receive_count,
            group_id: message.row.group_id,
            dedup_id: message.row.dedup_id,
            sequence_number: message.sequence_number,
        }
    }

    /// How many `receive` calls are long-polling the queue right now
    /// (waiting consumers, for metrics).
    pub fn waiting_receivers(&self, queue: &str) -> usize {
        self.views
            .read()
            .get(queue)
            .map_or(0, |view| view.waiting.load(Ordering::Relaxed))
    }

    /// Runs SQL on the write connection inside a batch.
    #[cfg(test)]
    pub(crate) async fn exec(
        &self,
        run: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()> + Send + 'static,
    ) -> Result<(), QueueError> {
        self.call(|reply| Op::Exec {
            run: Box::new(run),
            reply,
        })
        .await
    }
}

#[async_trait::async_trait]
impl QueueEngine for SqliteQueueEngine {
    async fn create_queue(&self, name: &str, options: QueueOptions) -> Result<(), QueueError> {
        self.call(|reply| Op::CreateQueue {
            name: name.to_owned(),
            options,
            reply,
        })
        .await
    }

    async fn delete_queue(&self, name: &str) -> Result<bool, QueueError> {
        self.call(|reply| Op::DeleteQueue {
            name: name.to_owned(),
            reply,
        })
        .await
    }

    fn queue_names(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .views
            .read()
            .keys()
            .filter(|name| name.starts_with(prefix))
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn queue_options(&self, name: &str) -> Option<QueueOptions> {
        let view = self.views.read().get(name).cloned()?;
        let options = view.options.lock().clone();
        Some(options)
    }

    async fn send(&self, queue: &str, messages: Vec<NewMessage>) -> Result<Vec<Sent>, QueueError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        self.call(|reply| Op::Send {
            queue: queue.to_owned(),
            messages,
            reply,
        })
        .await
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let view = self.view(queue)?;
            // Registered before asking, so a message that turns visible
            // between the answer and the wait still wakes us.
            let notified = view.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let leased = self
                .call(|reply| Op::Receive {
                    queue: queue.to_owned(),
                    max,
                    visibility_ms: duration_ms(visibility),
                    reply,
                })
                .await?;
            if !leased.is_empty() || max == 0 {
                return Ok(leased
                    .into_iter()
                    .map(|message| self.received(queue, message))
                    .collect());
            }
            let _waiting = WaitingGuard::new(&view);
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
            }
        }
    }

    async fn delete(
        &self,
        queue: &str,
        receipts: &[String],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let opened: Vec<_> = receipts
            .iter()
            .map(|receipt| self.sealer.open(queue, receipt))
            .collect();
        let leases: Vec<_> = opened.iter().flatten().copied().collect();
        let mut results = self
            .call(|reply| Op::Delete {
                queue: queue.to_owned(),
                leases,
                reply,
            })
            .await?
            .into_iter();
        Ok(opened
            .into_iter()
            .map(|lease| match lease {
                Some(_) => results.next().unwrap_or(Err(QueueError::Closed)),
                None => Err(QueueError::InvalidReceipt),
            })
            .collect())
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt: &str,
        timeout: Duration,
        metadata: Option<Bytes>,
    ) -> Result<(), QueueError> {
        let lease = self
            .sealer
            .open(queue, receipt)
            .ok_or(QueueError::InvalidReceipt)?;
        self.call(|reply| Op::ChangeVisibility {
            queue: queue.to_owned(),
            lease,
            timeout_ms: duration_ms(timeout),
            metadata,
            reply,
        })
        .await
    }

    async fn release_leases(&self, queue: &str) -> Result<u64, QueueError> {
        self.call(|reply| Op::ReleaseLeases {
            queue: queue.to_owned(),
            reply,
        })
        .await
    }

    async fn purge(&self, queue: &str) -> Result<u64, QueueError> {
        self.call(|reply| Op::Purge {
            queue: queue.to_owned(),
            reply,
        })
        .await
    }

    fn counts(&self, queue: &str) -> Result<QueueCounts, QueueError> {
        let counts = *self.view(queue)?.counts.lock();
        Ok(counts)
    }
}

/// Counts a long poll as waiting for as long as it is (a cancelled receive
/// drops the guard too).
struct WaitingGuard<'a> {
    view: &'a QueueView,
}

impl<'a> WaitingGuard<'a> {
    fn new(view: &'a QueueView) -> WaitingGuard<'a> {
        view.waiting.fetch_add(1, Ordering::Relaxed);
        WaitingGuard { view }
    }
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.view.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}
