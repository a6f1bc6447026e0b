//! Object content on disk: one file per object version or part under
//! `s3/blobs/`, written to `s3/tmp/` first and renamed into place only once
//! complete, so a crash mid-upload leaves nothing visible; files no object
//! refers to are removed when the server starts.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::Digest as _;
use strato_model::durability::Durability;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::checksum::{Algorithm, Hasher};

/// The content directory.
pub struct BlobStore {
    root: PathBuf,
    /// Whether a committed file and its directory entry are forced to the
    /// disk before the object is answered.
    durability: Durability,
}

/// A content file being written.
pub struct PendingBlob {
    file: tokio::fs::File,
    tmp: PathBuf,
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
    /// Opens (creating) the directory, empties `tmp/` (uploads a crash cut
    /// short).
    pub fn open(root: &Path, durability: Durability) -> io::Result<BlobStore> {
        std::fs::create_dir_all(root.join("blobs"))?;
        let tmp = root.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        Ok(BlobStore {
            root: root.to_path_buf(),
            durability,
        })
    }

    /// Removes content files nothing refers to (a crash between the rename
    /// and the metadata write, or between the metadata delete and the file
    /// delete). Answers how many.
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
        let id = uuid::Uuid::new_v4().simple().to_string();
        let tmp = self.root.join("tmp").join(&id);
        let file = tokio::fs::File::create(&tmp).await?;
        Ok(PendingBlob {
            file,
            tmp,
            id,
            size: 0,
            md5: md5::Md5::new(),
            hasher: Hasher::new(algorithm),
            done: false,
        })
    }

    /// Makes a pending file visible under its id.
    pub async fn commit(&self, mut pending: PendingBlob) -> io::Result<WrittenBlob> {
        pending.file.flush().await?;
        let fsync = self.durability == Durability::Fsync;
        if fsync {
            pending.file.sync_data().await?;
        }
        tokio::fs::rename(&pending.tmp, self.path(&pending.id)).await?;
        if fsync {
            // The rename is an entry in the directory: until the directory
            // reaches the disk, a power loss can forget the file the
            // metadata row will name.
            tokio::fs::File::open(self.root.join("blobs"))
                .await?
                .sync_all()
                .await?;
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
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn content_is_invisible_until_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), Durability::Fsync).unwrap();
        let mut pending = store.begin(None).await.unwrap();
        pending.write(b"hello").await.unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
            0
        );
        let written = store.commit(pending).await.unwrap();
        assert_eq!(written.size, 5);
        assert_eq!(hex::encode(written.md5), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(
            std::fs::read(dir.path().join("blobs").join(&written.id)).unwrap(),
            b"hello"
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[tokio::test]
    async fn an_abandoned_upload_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), Durability::Fsync).unwrap();
        let mut pending = store.begin(None).await.unwrap();
        pending.write(b"partial").await.unwrap();
        drop(pending);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
            0
        );
    }

    #[tokio::test]
    async fn reopening_removes_temporary_and_orphaned_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), Durability::Fsync).unwrap();
        let mut kept = store.begin(None).await.unwrap();
        kept.write(b"kept").await.unwrap();
        let kept = store.commit(kept).await.unwrap();
        let mut orphan = store.begin(None).await.unwrap();
        orphan.write(b"orphan").await.unwrap();
        store.commit(orphan).await.unwrap();
        // A crash mid-upload: a temporary file is left.
        std::fs::write(dir.path().join("tmp").join("cut-short"), b"x").unwrap();
        let store = BlobStore::open(dir.path(), Durability::Fsync).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        let referenced = HashSet::from([kept.id.clone()]);
        assert_eq!(store.remove_orphans(&referenced).unwrap(), 1);
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
