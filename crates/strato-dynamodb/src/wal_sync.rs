//! Group fsync of one DynamoDB database under `--durability fsync`.
//!
//! The engine commits with SQLite's `synchronous=NORMAL`: a commit is
//! appended to the write-ahead log and handed to the OS, and SQLite itself
//! still syncs the log before each checkpoint and the database file after
//! it, so a power loss can lose only the last commits, never corrupt the
//! file. A write is then answered only once an `fdatasync` of the log that
//! began after its commit has finished ([`WalSync::durable`]), which makes
//! every answered write survive a power loss, as `synchronous=FULL` does.
//!
//! The difference is who waits for the disk. Under `FULL` each commit
//! fsyncs inside the engine's lock, so concurrent writers queue for one
//! fsync each. Here one thread per database (`ddb-wal-sync`) runs the
//! syncs: each covers every commit made before it began, so writers that
//! commit while the disk works share the next one, and none holds the
//! engine's lock meanwhile.
//!
//! The price: reads are not held back until a write is on the disk. A read
//! (or a stream mapping's poll) can see a write whose sync is still running,
//! before its writer is answered; under `FULL` the lock kept it unseen
//! until its fsync had returned. Only a power loss in that window tells the
//! two apart: the write is then lost although a reader saw it (never one
//! that was answered). `kill -9` of the server loses nothing either way,
//! since the commit is in the OS. Streams do not share the price: a
//! `GetRecords` is answered once a sync that began after it has finished,
//! so a stream's consumer never acts on a change a power loss could take
//! back. (A ticket taken after a read covers whatever the read saw: every
//! commit it saw had been written to the OS before the ticket was taken.)
//!
//! A failed sync fails every write it covered, and every later one: after
//! an fsync error Linux may already have dropped the unwritten pages, so a
//! later sync that succeeds proves nothing about them (PostgreSQL stops for
//! the same reason). Writes of that account and region then answer
//! `InternalServerError` until the server restarts; reads go on.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

/// A write's place in its database's commit order: durable once a sync
/// covering it has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// A write could not be made durable: a sync of the log failed (now or
/// earlier).
#[derive(Debug, thiserror::Error)]
#[error("a sync of the DynamoDB write-ahead log failed; writes fail until the server restarts")]
pub struct SyncFailed;

/// How far the syncs have come.
#[derive(Debug, Clone, Copy, Default)]
struct Synced {
    /// Every ticket up to this one is on the disk.
    durable: u64,
    /// A sync failed: no ticket after `durable` will ever be.
    failed: bool,
}

/// The group syncer of one database (see the module's documentation).
/// Dropping it stops its thread.
pub struct WalSync {
    shared: Arc<Shared>,
}

struct Shared {
    /// `<database>-wal`, the file SQLite appends commits to.
    wal: PathBuf,
    /// Tickets handed out: commits made so far.
    committed: AtomicU64,
    /// Whether the thread has work (a ticket past its last sync) or must
    /// stop.
    wake: Mutex<Wake>,
    wakes: Condvar,
    synced: watch::Sender<Synced>,
}

#[derive(Default)]
struct Wake {
    pending: bool,
    stop: bool,
}

impl WalSync {
    /// Starts the syncer of the database file at `database`.
    pub fn start(database: &Path) -> std::io::Result<WalSync> {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        let shared = Arc::new(Shared {
            wal: PathBuf::from(wal),
            committed: AtomicU64::new(0),
            wake: Mutex::new(Wake::default()),
            wakes: Condvar::new(),
            synced: watch::channel(Synced::default()).0,
        });
        let directory = database
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let thread = shared.clone();
        std::thread::Builder::new()
            .name("ddb-wal-sync".into())
            .spawn(move || thread.run(&directory))?;
        Ok(WalSync { shared })
    }

    /// The ticket of a write whose commit has just returned: any sync that
    /// begins from now on covers it.
    pub fn committed(&self) -> Ticket {
        Ticket(self.shared.committed.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// Waits until the write with `ticket` is on the disk.
    pub async fn durable(&self, ticket: Ticket) -> Result<(), SyncFailed> {
        let mut synced = self.shared.synced.subscribe();
        {
            let mut wake = self.shared.wake.lock();
            wake.pending = true;
        }
        self.shared.wakes.notify_one();
        // The sender lives as long as `self`.
        let reached = synced
            .wait_for(|s| s.durable >= ticket.0 || s.failed)
            .await
            .map_err(|_| SyncFailed)?;
        if reached.durable >= ticket.0 {
            Ok(())
        } else {
            Err(SyncFailed)
        }
    }
}

impl Drop for WalSync {
    fn drop(&mut self) {
        self.shared.wake.lock().stop = true;
        self.shared.wakes.notify_one();
    }
}

impl Shared {
    /// The sync thread: one sync per round, covering every commit made
    /// before it began.
    fn run(&self, directory: &Path) {
        // However the thread ends, no write waits for it any more.
        struct FailWaiters<'a>(&'a watch::Sender<Synced>);
        impl Drop for FailWaiters<'_> {
            fn drop(&mut self) {
                self.0.send_modify(|s| s.failed = true);
            }
        }
        let _fail_waiters = FailWaiters(&self.synced);
        // The log's and the database's directory entries are synced once,
        // with the first sync: a file created since the server started
        // (a new account's database) must survive a power loss too.
        let mut directory = Some(directory);
        loop {
            {
                let mut wake = self.wake.lock();
                while !wake.pending && !wake.stop {
                    self.wakes.wait(&mut wake);
                }
                if wake.stop {
                    return;
                }
                wake.pending = false;
            }
            let target = self.committed.load(Ordering::SeqCst);
            if target <= self.synced.borrow().durable {
                continue;
            }
            let result = sync_data(&self.wal).and_then(|()| match directory.take() {
                Some(dir) => File::open(dir).and_then(|d| d.sync_all()),
                None => Ok(()),
            });
            match result {
                Ok(()) => self.synced.send_modify(|s| s.durable = target),
                Err(e) => {
                    tracing::error!(wal = %self.wal.display(), error = %e, "fsync of a DynamoDB write-ahead log failed; this database's writes fail until the server restarts");
                    return;
                }
            }
        }
    }
}

/// `fdatasync` of the file at `path`, through a descriptor of its own: the
/// OS flushes the file's pages whichever descriptor wrote them. No log is
/// nothing to sync: SQLite removes it only after a checkpoint has moved
/// its commits into the database file and synced that.
fn sync_data(path: &Path) -> std::io::Result<()> {
    match File::open(path) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_is_durable_once_a_sync_after_its_commit_has_run() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("a.db");
        std::fs::write(dir.path().join("a.db-wal"), b"frames").unwrap();
        let sync = WalSync::start(&database).unwrap();
        let first = sync.committed();
        let second = sync.committed();
        assert!(second > first);
        sync.durable(second).await.unwrap();
        // An earlier ticket is covered by the later sync.
        sync.durable(first).await.unwrap();
        // Concurrent writers each get their answer.
        let sync = Arc::new(sync);
        let waits: Vec<_> = (0..16)
            .map(|_| {
                let sync = sync.clone();
                tokio::spawn(async move {
                    let ticket = sync.committed();
                    sync.durable(ticket).await
                })
            })
            .collect();
        for wait in waits {
            wait.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn no_log_is_nothing_to_sync() {
        let dir = tempfile::tempdir().unwrap();
        let sync = WalSync::start(&dir.path().join("checkpointed.db")).unwrap();
        let ticket = sync.committed();
        sync.durable(ticket).await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_sync_fails_its_writes_and_every_later_one() {
        let dir = tempfile::tempdir().unwrap();
        // The log's directory is a file: opening the log fails.
        let file = dir.path().join("not-a-directory");
        std::fs::write(&file, b"").unwrap();
        let sync = WalSync::start(&file.join("a.db")).unwrap();
        let ticket = sync.committed();
        assert!(sync.durable(ticket).await.is_err());
        // The log can be synced now, but what the failed sync covered may
        // be lost: later writes fail too.
        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        std::fs::write(file.join("a.db-wal"), b"frames").unwrap();
        let later = sync.committed();
        assert!(sync.durable(later).await.is_err());
    }
}
