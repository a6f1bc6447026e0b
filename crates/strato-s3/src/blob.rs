//! Object content: small content (up to [`INLINE_MAX_BYTES`]) as rows of
//! the metadata database, written and deleted in the transaction of the
//! object or part row that names it (see [`crate::meta`]); larger content
//! in one file per object version or part under `s3/blobs/`. A file is
//! named by an id only the object's metadata row will carry, so content is
//! invisible until that row is committed; files no row refers to (a crash
//! mid-upload, spares) are removed when the server starts.
//!
//! Small objects are most objects, and a file per object costs a file
//! system inode made and freed per PUT (on this machine's journal-less
//! ext4, a new inode is searched for past every one freed in the last
//! 30 s), plus an open, a seek and a read per GET. A row costs one SQLite
//! statement each way, inside the commit the metadata makes anyway.
//!
//! Under [`Durability::Fsync`] an answered PUT must survive power loss: its
//! bytes, its directory entry (or database row) and its metadata row must
//! all be on the disk. A new file's directory entry costs an fsync of the
//! directory, so files are created ahead, in batches, as *spares* whose
//! entries one directory fsync makes durable together; a PUT writes into a
//! spare and syncs only its data.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use strato_model::durability::Durability;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::checksum::{Algorithm, Hasher};

/// How many spare content files one directory fsync makes durable.
const SPARES_PER_BATCH: usize = 32;

/// Content up to this size is kept in the metadata database, not in a file.
pub const INLINE_MAX_BYTES: usize = 64 * 1024;

/// The id prefix of small content (file ids are bare UUIDs).
const INLINE_PREFIX: &str = "inline-";

/// The content directory.
pub struct BlobStore {
    files: Arc<ContentFiles>,
}

/// The directory of content files, shared with the uploads writing into it.
struct ContentFiles {
    dir: PathBuf,
    /// Whether a committed file and its directory entry are forced to the
    /// disk before the object is answered.
    durability: Durability,
    /// Ids of empty files in `blobs/` whose directory entries are durable,
    /// waiting for content.
    spares: Mutex<Vec<String>>,
}

/// Content being received: in memory while it fits [`INLINE_MAX_BYTES`],
/// then in a file of its own.
pub struct PendingBlob {
    files: Arc<ContentFiles>,
    sink: Sink,
    size: u64,
    md5: crate::md5::Md5,
    hasher: Hasher,
}

enum Sink {
    Memory(Vec<u8>),
    File(PendingFile),
}

/// A content file being written; removed if dropped before it is committed.
struct PendingFile {
    file: tokio::fs::File,
    path: PathBuf,
    id: String,
    done: bool,
}

/// Complete content.
#[derive(Debug, Clone)]
pub struct WrittenBlob {
    pub id: String,
    pub size: u64,
    pub md5: [u8; 16],
    /// The checksum computed, when one was asked for.
    pub checksum: Option<(Algorithm, String)>,
    /// Small content, which the row naming `id` stores
    /// ([`crate::meta::ObjectRow::content`]); none for a content file.
    pub inline: Option<Bytes>,
}

/// An object's content, open for reading in place.
pub enum OpenContent {
    /// A content file: it stays readable while open even if the object is
    /// overwritten or deleted meanwhile.
    File(std::fs::File),
    /// Small content, read whole.
    Bytes(Bytes),
}

/// Whether `id` names small content (kept with its row), not a file.
pub(crate) fn is_inline(id: &str) -> bool {
    id.starts_with(INLINE_PREFIX)
}

impl BlobStore {
    /// Opens (creating) the directory. `tmp/`, where earlier versions wrote
    /// uploads before renaming them, is removed with whatever a crash left
    /// there.
    pub fn open(root: &Path, durability: Durability) -> io::Result<BlobStore> {
        std::fs::create_dir_all(root.join("blobs"))?;
        let tmp = root.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        Ok(BlobStore {
            files: Arc::new(ContentFiles {
                dir: root.join("blobs"),
                durability,
                spares: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Removes content files nothing refers to (an upload a crash cut
    /// short, spares never used, a crash between the metadata delete and
    /// the file delete). Call it before the first upload. Answers how many.
    pub fn remove_orphans(&self, referenced: &HashSet<String>) -> io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.files.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !referenced.contains(&name) {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Starts new content, computing `algorithm`'s checksum too. Nothing
    /// touches the disk until the content is committed or outgrows
    /// [`INLINE_MAX_BYTES`].
    pub fn begin(&self, algorithm: Option<Algorithm>) -> PendingBlob {
        PendingBlob {
            files: self.files.clone(),
            sink: Sink::Memory(Vec::new()),
            size: 0,
            md5: crate::md5::Md5::new(),
            hasher: Hasher::new(algorithm),
        }
    }

    /// Finishes pending content; the metadata row that names its id makes
    /// it visible. Small content is stored by that row's transaction
    /// ([`WrittenBlob::inline`]). A file's bytes (and size) are on the disk
    /// when this returns under [`Durability::Fsync`]; its directory entry
    /// already was.
    pub async fn commit(&self, mut pending: PendingBlob) -> io::Result<WrittenBlob> {
        let (id, inline) = match &mut pending.sink {
            Sink::Memory(content) => (
                format!("{INLINE_PREFIX}{}", uuid::Uuid::new_v4().simple()),
                Some(Bytes::from(std::mem::take(content))),
            ),
            Sink::File(file) => {
                file.file.flush().await?;
                if self.files.durability == Durability::Fsync {
                    file.file.sync_data().await?;
                }
                file.done = true;
                (file.id.clone(), None)
            }
        };
        let md5 = std::mem::take(&mut pending.md5).finalize();
        let hasher = std::mem::replace(&mut pending.hasher, Hasher::new(None));
        Ok(WrittenBlob {
            id,
            size: pending.size,
            md5,
            checksum: hasher.finish(),
            inline,
        })
    }

    /// Removes a content file; missing content is already gone. Small
    /// content goes with its row, so there is nothing to do for it.
    pub async fn remove(&self, id: &str) {
        if is_inline(id) {
            return;
        }
        if let Err(e) = tokio::fs::remove_file(self.files.path(id)).await {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(error = %e, id, "could not remove object content");
            }
        }
    }

    /// Streams `len` bytes from `start` of the content `id` names, whose
    /// small content (`inline`) was read with its row.
    pub async fn read(
        &self,
        id: &str,
        inline: Option<&Bytes>,
        start: u64,
        len: u64,
    ) -> io::Result<impl Stream<Item = io::Result<Bytes>> + Send + Sync + 'static> {
        if is_inline(id) {
            let content = small_content(id, inline)?;
            let from = usize::try_from(start)
                .unwrap_or(usize::MAX)
                .min(content.len());
            let to = usize::try_from(start.saturating_add(len))
                .unwrap_or(usize::MAX)
                .min(content.len());
            let part = content.slice(from..to);
            return Ok(futures::future::Either::Left(futures::stream::iter(
                (!part.is_empty()).then_some(Ok(part)),
            )));
        }
        let mut file = tokio::fs::File::open(self.files.path(id)).await?;
        file.seek(io::SeekFrom::Start(start)).await?;
        Ok(futures::future::Either::Right(
            tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024),
        ))
    }

    /// Content, open for reading in place.
    pub async fn open_content(&self, id: &str, inline: Option<&Bytes>) -> io::Result<OpenContent> {
        if is_inline(id) {
            return small_content(id, inline).map(OpenContent::Bytes);
        }
        let file = tokio::fs::File::open(self.files.path(id)).await?;
        Ok(OpenContent::File(file.into_std().await))
    }

    /// Appends `len` bytes of content from `start` to pending content.
    pub async fn copy_into(
        &self,
        id: &str,
        inline: Option<&Bytes>,
        start: u64,
        len: u64,
        into: &mut PendingBlob,
    ) -> io::Result<()> {
        let mut stream = Box::pin(self.read(id, inline, start, len).await?);
        while let Some(chunk) = stream.next().await {
            into.write(&chunk?).await?;
        }
        Ok(())
    }
}

/// The small content `id` names, which its row's read must have fetched.
fn small_content(id: &str, inline: Option<&Bytes>) -> io::Result<Bytes> {
    inline.cloned().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("small content {id} was not read with its row"),
        )
    })
}

impl ContentFiles {
    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// A new content file, open for writing: a spare under
    /// [`Durability::Fsync`], else one made now.
    async fn create(&self) -> io::Result<PendingFile> {
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
        Ok(PendingFile {
            file,
            path,
            id,
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
        tokio::fs::File::open(&self.dir).await?.sync_all().await?;
        let mine = made.pop();
        self.spares.lock().extend(made);
        mine.ok_or_else(|| io::Error::other("no spare content file was made"))
    }
}

impl PendingBlob {
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.md5.update(chunk);
        self.hasher.update(chunk);
        self.size += u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        match &mut self.sink {
            Sink::Memory(content) if content.len() + chunk.len() <= INLINE_MAX_BYTES => {
                content.extend_from_slice(chunk);
                Ok(())
            }
            Sink::Memory(content) => {
                // Too large to keep inline: to a file, with what came before.
                let mut file = self.files.create().await?;
                file.file.write_all(content).await?;
                file.file.write_all(chunk).await?;
                self.sink = Sink::File(file);
                Ok(())
            }
            Sink::File(file) => file.file.write_all(chunk).await,
        }
    }
}

impl Drop for PendingFile {
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

    /// Content one byte too large to be kept inline.
    fn large() -> Vec<u8> {
        (0..=INLINE_MAX_BYTES)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect()
    }

    async fn read_all(store: &BlobStore, written: &WrittenBlob, start: u64, len: u64) -> Vec<u8> {
        let mut stream = Box::pin(
            store
                .read(&written.id, written.inline.as_ref(), start, len)
                .await
                .unwrap(),
        );
        let mut got = Vec::new();
        while let Some(chunk) = stream.next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        got
    }

    #[tokio::test]
    async fn small_content_is_handed_to_its_row_without_a_file() {
        for durability in [Durability::Fsync, Durability::ProcessCrash] {
            let dir = tempfile::tempdir().unwrap();
            let store = BlobStore::open(dir.path(), durability).unwrap();
            let mut pending = store.begin(None);
            pending.write(b"hel").await.unwrap();
            pending.write(b"lo").await.unwrap();
            let written = store.commit(pending).await.unwrap();
            assert_eq!(written.size, 5);
            assert_eq!(hex::encode(written.md5), "5d41402abc4b2a76b9719d911017c592");
            assert!(is_inline(&written.id));
            assert_eq!(written.inline.as_deref(), Some(&b"hello"[..]));
            assert_eq!(files_in(dir.path()), 0, "{durability:?}");
            assert_eq!(read_all(&store, &written, 0, 5).await, b"hello");
            assert_eq!(read_all(&store, &written, 1, 3).await, b"ell");
            assert!(matches!(
                store.open_content(&written.id, written.inline.as_ref()).await.unwrap(),
                OpenContent::Bytes(b) if b == "hello"
            ));
            // Small content its row's read did not fetch is an error, not
            // an empty object.
            assert!(store.read(&written.id, None, 0, 5).await.is_err());
        }
    }

    #[tokio::test]
    async fn fsync_uploads_write_into_spares_made_a_batch_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), Durability::Fsync).unwrap();
        let mut pending = store.begin(None);
        pending.write(&large()).await.unwrap();
        // One batch of empty files, one of them now being written.
        assert_eq!(files_in(dir.path()), SPARES_PER_BATCH);
        let written = store.commit(pending).await.unwrap();
        assert_eq!(written.size, large().len() as u64);
        assert_eq!(
            std::fs::read(dir.path().join("blobs").join(&written.id)).unwrap(),
            large()
        );
        // The next upload takes a spare: no new file, no directory fsync.
        let mut next = store.begin(None);
        next.write(&large()).await.unwrap();
        let next = store.commit(next).await.unwrap();
        assert_ne!(next.id, written.id);
        assert_eq!(files_in(dir.path()), SPARES_PER_BATCH);
    }

    #[tokio::test]
    async fn content_that_outgrows_the_inline_limit_moves_to_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), Durability::ProcessCrash).unwrap();
        let mut pending = store.begin(None);
        let content = large();
        let (first, rest) = content.split_at(INLINE_MAX_BYTES - 10);
        pending.write(first).await.unwrap();
        assert_eq!(files_in(dir.path()), 0);
        pending.write(rest).await.unwrap();
        let written = store.commit(pending).await.unwrap();
        assert_eq!(files_in(dir.path()), 1);
        assert_eq!(
            std::fs::read(dir.path().join("blobs").join(&written.id)).unwrap(),
            content
        );
        assert_eq!(
            hex::encode(written.md5),
            hex::encode({
                let mut md5 = crate::md5::Md5::new();
                md5.update(&content);
                md5.finalize()
            })
        );
        assert!(written.inline.is_none());
        assert_eq!(read_all(&store, &written, 5, 10).await, &content[5..15]);
        assert!(matches!(
            store.open_content(&written.id, None).await.unwrap(),
            OpenContent::File(_)
        ));
    }

    #[tokio::test]
    async fn an_abandoned_upload_leaves_no_file() {
        for (durability, left) in [
            (Durability::Fsync, SPARES_PER_BATCH - 1),
            (Durability::ProcessCrash, 0),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let store = BlobStore::open(dir.path(), durability).unwrap();
            let mut pending = store.begin(None);
            pending.write(&large()).await.unwrap();
            drop(pending);
            assert_eq!(files_in(dir.path()), left, "{durability:?}");
        }
    }

    #[tokio::test]
    async fn reopening_removes_what_no_object_refers_to() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), Durability::Fsync).unwrap();
        let mut written = Vec::new();
        for content in [large(), large()] {
            let mut pending = store.begin(None);
            pending.write(&content).await.unwrap();
            written.push(store.commit(pending).await.unwrap().id);
        }
        // A crash: an earlier version's temporary directory is left.
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("tmp").join("cut-short"), b"x").unwrap();
        drop(store);
        let store = BlobStore::open(dir.path(), Durability::Fsync).unwrap();
        assert!(!dir.path().join("tmp").exists());
        // The first file is referred to (and a small content id, which
        // names no file).
        let referenced = HashSet::from([written[0].clone(), "inline-x".to_string()]);
        // Every file of the batch but the referred one: the orphan file and
        // the unused spares.
        assert_eq!(
            store.remove_orphans(&referenced).unwrap(),
            SPARES_PER_BATCH - 1
        );
        assert_eq!(files_in(dir.path()), 1);
        assert!(dir.path().join("blobs").join(&written[0]).exists());
    }
}
