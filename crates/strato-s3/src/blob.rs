//! Object content on disk: one file per object version or part under
//! `s3/blobs/`, named by an id only the object's metadata row will carry, so
//! content is invisible until that row is committed; files no row refers to
//! (a crash mid-upload, spares) are removed when the server starts.
//!
//! Under [`Durability::Fsync`] an answered PUT must survive power loss: its
//! bytes (`fdatasync`), its directory entry and its metadata row must all be
//! on the disk. A new file's directory entry costs an fsync of the directory,
//! so files are created ahead, in batches, as *spares* whose entries one
//! directory fsync makes durable together; a PUT writes into a spare and
//! syncs only its data. Three fsyncs per PUT become two, plus one per batch.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::Digest as _;
use strato_model::durability::Durability;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::checksum::{Algorithm, Hasher};

/// How many spare content files one directory fsync makes durable.
const SPARES_PER_BATCH: usize = 32;

/// The content directory.
pub struct BlobStore {
    root: PathBuf,
    /// Whether a committed file and its directory entry are forced to the
    /// disk before the object is answered.
    durability: Durability,
    /// Ids of empty files in `blobs/` whose directory entries are durable,
    /// waiting for content.
    spares: Mutex<Vec<String>>,
}

/// A content file being written.
pub struct PendingBlob {
    file: tokio::fs::File,
    path: PathBuf,
    id: String,
    size: u64,
    md5: md5::Md5,
    hasher: Hasher,
    done: bool,
}

/// A complete content file.
#[derive(Debug, Clone)]
pub struct WrittenBlob {
    pub id: String,
    pub size: u64,
    pub md5: [u8; 16],
    /// The checksum computed, when one was asked for.
    pub checksum: Option<(Algorithm, String)>,
}

impl BlobStore {
    /// Opens (creating) the directory. `tmp/`, where earlier versions
    /// wrote uploads before renaming them, is removed with whatever a crash
    /// left there.
    pub fn open(root: &Path, durability: Durability) -> io::Result<BlobStore> {
        std::fs::create_dir_all(root.join("blobs"))?;
        let tmp = root.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        Ok(BlobStore {
            root: root.to_path_buf(),
            durability,
            spares: Mutex::new(Vec::new()),
        })
    }

    /// Removes content files nothing refers to (an upload a crash cut short,
    /// spares never used, a crash between the metadata delete and the file
    /// delete). Call it before the first upload. Answers how many.
    pub fn remove_orphans(&self, referenced: &HashSet<String>) -> io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(self.root.join("blobs"))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !referenced.contains(&name) {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn path(&self, id: &str) -> PathBuf {
        self.root.join("blobs").join(id)
    }

    /// Starts a new content file, computing `algorithm`'s checksum too.
    pub async fn begin(&self, algorithm: Option<Algorithm>) -> io::Result<PendingBlob> {
        let id = match self.durability {
            Durability::Fsync => self.spare().await?,
            // Nothing is forced to the disk: a file made now is as good.
            Durability::ProcessCrash => uuid::Uuid::new_v4().simple().to_string(),
        };
        let path = self.path(&id);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await?;
        Ok(PendingBlob {
            file,
            path,
            id,
            size: 0,
            md5: md5::Md5::new(),
            hasher: Hasher::new(algorithm),
            done: false,
        })
    }

    /// The id of a spare file, making a batch of them (and one directory
    /// fsync) when none is left.
    async fn spare(&self) -> io::Result<String> {
        if let Some(id) = self.spares.lock().pop() {
            return Ok(id);
        }
        let mut made = Vec::with_capacity(SPARES_PER_BATCH);
        for _ in 0..SPARES_PER_BATCH {
            let id = uuid::Uuid::new_v4().simple().to_string();
            tokio::fs::File::create(self.path(&id)).await?;
            made.push(id);
        }
        // Until the directory reaches the disk, a power loss can forget the
        // files the metadata rows will name.
        tokio::fs::File::open(self.root.join("blobs"))
            .await?
            .sync_all()
            .await?;
        let mine = made.pop();
        self.spares.lock().extend(made);
        mine.ok_or_else(|| io::Error::other("no spare content file was made"))
    }

    /// Finishes a pending file; the metadata row that names its id makes it
    /// visible. Under [`Durability::Fsync`] its bytes (and size) are on the
    /// disk when this returns; its directory entry already was.
    pub async fn commit(&self, mut pending: PendingBlob) -> io::Result<WrittenBlob> {
        pending.file.flush().await?;
        if self.durability == Durability::Fsync {
            pending.file.sync_data().await?;
        }
        pending.done = true;
        let md5 = std::mem::take(&mut pending.md5).finalize().into();
        let hasher = std::mem::replace(&mut pending.hasher, Hasher::new(None));
        Ok(WrittenBlob {
            id: pending.id.clone(),
            size: pending.size,
            md5,
            checksum: hasher.finish(),
        })
    }

    /// Removes a content file; a missing one is already gone.
    pub async fn remove(&self, id: &str) {
        if let Err(e) = tokio::fs::remove_file(self.path(id)).await {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(error = %e, id, "could not remove object content");
            }
        }
    }

    /// Streams `len` bytes of a content file from `start`.
    pub async fn read(
        &self,
        id: &str,
        start: u64,
        len: u64,
    ) -> io::Result<impl Stream<Item = io::Result<Bytes>> + Send + Sync + 'static> {
        let mut file = tokio::fs::File::open(self.path(id)).await?;
        file.seek(io::SeekFrom::Start(start)).await?;
        Ok(tokio_util::io::ReaderStream::with_capacity(
            file.take(len),
            256 * 1024,
        ))
    }

    /// A content file, open for reading.
    pub async fn open_file(&self, id: &str) -> io::Result<std::fs::File> {
        Ok(tokio::fs::File::open(self.path(id)).await?.into_std().await)
    }

    /// Appends `len` bytes of a content file from `start` to a pending one.
    pub async fn copy_into(
        &self,
        id: &str,
        start: u64,
        len: u64,
        into: &mut PendingBlob,
    ) -> io::Result<()> {
        let mut stream = Box::pin(self.read(id, start, len).await?);
        while let Some(chunk) = stream.next().await {
            into.write(&chunk?).await?;
        }
        Ok(())
    }
}

impl PendingBlob {
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.md5.update(chunk);
        self.hasher.update(chunk);
        self.size += u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        self.file.write_all(chunk).await
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        if !self.done {
            // An abandoned upload leaves nothing behind.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_in(dir: &Path) -> usize {
        std::fs::read_dir(dir.join("blobs")).unwrap().count()
    }

    #[tokio::test]
    async fn fsync_uploads_write_into_spares_made_a_batch_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), Durability::Fsync).unwrap();
        let mut pending = store.begin(None).await.unwrap();
        // One batch of empty files, one of them now being written.
        assert_eq!(files_in(dir.path()), SPARES_PER_BATCH);
        pending.write(b"hello").await.unwrap();
        let written = store.commit(pending).await.unwrap();
        assert_eq!(written.size, 5);
        assert_eq!(hex::encode(written.md5), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(
            std::fs::read(dir.path().join("blobs").join(&written.id)).unwrap(),
            b"hello"
        );
        // The next upload takes a spare: no new file, no directory fsync.
        let next = store.begin(None).await.unwrap();
        assert_ne!(next.id, written.id);
        assert_eq!(files_in(dir.path()), SPARES_PER_BATCH);
    }

    #[tokio::test]
    async fn process_crash_uploads_make_their_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), Durability::ProcessCrash).unwrap();
        let mut pending = store.begin(None).await.unwrap();
        pending.write(b"hello").await.unwrap();
        let written = store.commit(pending).await.unwrap();
        assert_eq!(files_in(dir.path()), 1);
        assert_eq!(
            std::fs::read(dir.path().join("blobs").join(&written.id)).unwrap(),
            b"hello"
        );
    }

    #[tokio::test]
    async fn an_abandoned_upload_leaves_no_file() {
        for (durability, left) in [
            (Durability::Fsync, SPARES_PER_BATCH - 1),
            (Durability::ProcessCrash, 0),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let store = BlobStore::open(dir.path(), durability).unwrap();
            let mut pending = store.begin(None).await.unwrap();
            pending.write(b"partial").await.unwrap();
            let id = pending.id.clone();
            drop(pending);
            assert!(!dir.path().join("blobs").join(id).exists());
            assert_eq!(files_in(dir.path()), left, "{durability:?}");
        }
    }

    #[tokio::test]
    async fn reopening_removes_what_no_object_refers_to() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), Durability::Fsync).unwrap();
        let mut kept = store.begin(None).await.unwrap();
        kept.write(b"kept").await.unwrap();
        let kept = store.commit(kept).await.unwrap();
        let mut orphan = store.begin(None).await.unwrap();
        orphan.write(b"orphan").await.unwrap();
        store.commit(orphan).await.unwrap();
        // A crash: an earlier version's temporary directory is left.
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("tmp").join("cut-short"), b"x").unwrap();
        drop(store);
        let store = BlobStore::open(dir.path(), Durability::Fsync).unwrap();
        assert!(!dir.path().join("tmp").exists());
        let referenced = HashSet::from([kept.id.clone()]);
        // The orphan and every unused spare.
        assert_eq!(
            store.remove_orphans(&referenced).unwrap(),
            SPARES_PER_BATCH - 1
        );
        assert_eq!(files_in(dir.path()), 1);
        assert!(dir.path().join("blobs").join(&kept.id).exists());
    }

    #[tokio::test]
    async fn ranges_read_the_asked_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), Durability::Fsync).unwrap();
        let mut pending = store.begin(None).await.unwrap();
        pending.write(b"0123456789").await.unwrap();
        let written = store.commit(pending).await.unwrap();
        let mut stream = Box::pin(store.read(&written.id, 2, 3).await.unwrap());
        let mut got = Vec::new();
        while let Some(chunk) = stream.next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got, b"234");
    }
}
