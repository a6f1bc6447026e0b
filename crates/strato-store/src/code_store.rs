//! Deployment packages on disk, addressed by the hex SHA-256 of the zip.
//!
//! `blobs/ab/abcd….zip` holds each zip once however many functions share it;
//! `extracted/abcd…/` holds its tree, extracted once and never modified, so
//! instances can bind it read-only.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use strato_model::code::entry_escapes_root;
use strato_model::limits::MAX_UNZIPPED_CODE_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum CodeStoreError {
    #[error("invalid code id {0:?}")]
    InvalidId(String),
    #[error("no code package {0}")]
    Missing(String),
    #[error("code package {id} cannot be extracted: {reason}")]
    Unextractable { id: String, reason: String },
    #[error("code store I/O error: {0}")]
    Io(#[from] io::Error),
}

#[derive(Debug, Clone)]
pub struct CodeStore {
    root: PathBuf,
}

fn check_id(id: &str) -> Result<(), CodeStoreError> {
    if id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err(CodeStoreError::InvalidId(id.to_string()))
    }
}

/// Makes the finished tree `tmp` (readable by instances) the immutable
/// `target`; when another writer of the same content got there first (the
/// rename fails but `target` exists), theirs is kept and `tmp` removed.
fn install_tree(tmp: &Path, target: PathBuf) -> Result<PathBuf, CodeStoreError> {
    fs::set_permissions(tmp, fs::Permissions::from_mode(0o755))?;
    match fs::rename(tmp, &target) {
        Ok(()) => Ok(target),
        Err(_) if target.is_dir() => {
            let _ = fs::remove_dir_all(tmp);
            Ok(target)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(tmp);
            Err(e.into())
        }
    }
}

fn unique_tmp(dir: &Path, stem: &str) -> PathBuf {
    dir.join(format!(
        "{stem}.{}.{}",
        std::process::id(),
        rand::random::<u64>()
    ))
}

impl CodeStore {
    pub fn open(root: impl Into<PathBuf>) -> Result<CodeStore, CodeStoreError> {
        let root = root.into();
        for sub in ["blobs", "extracted", "layers", "tmp"] {
            fs::create_dir_all(root.join(sub))?;
        }
        // The sandbox user must be able to traverse to extracted code.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755))?;
        fs::set_permissions(root.join("extracted"), fs::Permissions::from_mode(0o755))?;
        fs::set_permissions(root.join("layers"), fs::Permissions::from_mode(0o755))?;
        Ok(CodeStore { root })
    }

    pub fn blob_path(&self, id: &str) -> Result<PathBuf, CodeStoreError> {
        check_id(id)?;
        Ok(self
            .root
            .join("blobs")
            .join(&id[..2])
            .join(format!("{id}.zip")))
    }

    /// Stores a zip under its id. Idempotent; the write is atomic.
    pub fn put(&self, id: &str, bytes: &[u8]) -> Result<(), CodeStoreError> {
        self.put_from(id, &mut &bytes[..])
    }

    /// Stores the zip `reader` holds (from its current position) under its
    /// id, copied in pieces. Idempotent; the write is atomic.
    pub fn put_from(&self, id: &str, reader: &mut impl Read) -> Result<(), CodeStoreError> {
        let path = self.blob_path(id)?;
        if path.exists() {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let tmp = unique_tmp(&self.root.join("tmp"), id);
        let written = fs::File::create(&tmp).and_then(|mut f| {
            io::copy(reader, &mut f)?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, &path)) {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        Ok(())
    }

    pub fn read(&self, id: &str) -> Result<Vec<u8>, CodeStoreError> {
        let path = self.blob_path(id)?;
        fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => CodeStoreError::Missing(id.to_string()),
            _ => e.into(),
        })
    }

    /// The extracted tree of a package, extracting it on first use.
    pub fn extract(&self, id: &str) -> Result<PathBuf, CodeStoreError> {
        check_id(id)?;
        let target = self.root.join("extracted").join(id);
        if target.is_dir() {
            return Ok(target);
        }
        let bytes = self.read(id)?;
        let tmp = unique_tmp(&self.root.join("tmp"), id);
        fs::create_dir_all(&tmp)?;
        if let Err(err) = extract_zip(&bytes, &tmp) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(CodeStoreError::Unextractable {
                id: id.to_string(),
                reason: err.to_string(),
            });
        }
        install_tree(&tmp, target)
    }
}

impl CodeStore {
    /// The `/opt` tree of an ordered list of layer packages: each extracted,
    /// later ones written over earlier ones. Built once per list (named by a
    /// digest of the ids in order) and never modified, so instances bind it
    /// read-only; a single layer is its extracted tree as it is.
    pub fn merged_layers(&self, ids: &[String]) -> Result<PathBuf, CodeStoreError> {
        for id in ids {
            check_id(id)?;
        }
        match ids {
            [] => {
                let empty = self.root.join("layers").join("empty");
                fs::create_dir_all(&empty)?;
                fs::set_permissions(&empty, fs::Permissions::from_mode(0o755))?;
                return Ok(empty);
            }
            [single] => return self.extract(single),
            _ => {}
        }
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(ids.join("\n").as_bytes()));
        let target = self.root.join("layers").join(&digest);
        if target.is_dir() {
            return Ok(target);
        }
        let trees = ids
            .iter()
            .map(|id| self.extract(id))
            .collect::<Result<Vec<_>, _>>()?;
        let tmp = unique_tmp(&self.root.join("tmp"), &digest);
        fs::create_dir_all(&tmp)?;
        let merged = trees.iter().try_for_each(|tree| overlay(tree, &tmp));
        if let Err(err) = merged {
            let _ = fs::remove_dir_all(&tmp);
            return Err(err.into());
        }
        install_tree(&tmp, target)
    }
}

/// Writes the tree at `from` over `to`: files and symlinks replace what is
/// there (a file over a directory replaces the directory), directories merge.
/// Files are hard links to the immutable extracted trees, copied when the
/// file system refuses a link.
fn overlay(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let dest = to.join(entry.file_name());
        let kind = entry.file_type()?;
        let existing = fs::symlink_metadata(&dest).ok();
        if kind.is_dir() {
            match existing {
                Some(meta) if meta.is_dir() => {}
                Some(_) => {
                    fs::remove_file(&dest)?;
                    fs::create_dir(&dest)?;
                }
                None => fs::create_dir(&dest)?,
            }
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))?;
            overlay(&source, &dest)?;
            continue;
        }
        match existing {
            Some(meta) if meta.is_dir() => fs::remove_dir_all(&dest)?,
            Some(_) => fs::remove_file(&dest)?,
            None => {}
        }
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&source)?, &dest)?;
        } else if fs::hard_link(&source, &dest).is_err() {
            fs::copy(&source, &dest)?;
        }
    }
    Ok(())
}

/// Extracts with the limits enforced on the actual bytes written (declared
/// sizes in a zip can lie), file modes kept (executables stay executable) and
/// nothing allowed outside `dest`.
fn extract_zip(bytes: &[u8], dest: &Path) -> io::Result<()> {
    let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidData, msg);
    let mut archive =
        zip::ZipArchive::new(io::Cursor::new(bytes)).map_err(|e| invalid(e.to_string()))?;
    let mut budget = MAX_UNZIPPED_CODE_BYTES;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| invalid(e.to_string()))?;
        let name = entry
            .name()
            .map_err(|e| invalid(e.to_string()))?
            .to_string();
        if entry_escapes_root(&name) {
            return Err(invalid(format!("entry {name:?} escapes the package root")));
        }
        let Some(relative) = entry.enclosed_name() else {
            return Err(invalid(format!("entry {name:?} escapes the package root")));
        };
        let path = dest.join(relative);
        let mode = entry.unix_mode();
        if entry.is_dir() {
            fs::create_dir_all(&path)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        if entry.is_symlink() {
            let mut target = String::new();
            entry.read_to_string(&mut target)?;
            let joined = Path::new(&name)
                .parent()
                .unwrap_or(Path::new(""))
                .join(&target);
            if target.starts_with('/') || entry_escapes_root(&joined.to_string_lossy()) {
                return Err(invalid(format!(
                    "symlink {name:?} points outside the package"
                )));
            }
            std::os::unix::fs::symlink(&target, &path)?;
            continue;
        }
        let mut out = fs::File::create(&path)?;
        let written = io::copy(&mut (&mut entry).take(budget + 1), &mut out)?;
        if written > budget {
            return Err(invalid("unzipped size exceeds the limit".into()));
        }
        budget -= written;
        let executable = mode.is_some_and(|m| m & 0o111 != 0);
        fs::set_permissions(
            &path,
            fs::Permissions::from_mode(if executable { 0o755 } else { 0o644 }),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_with(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut buf = io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            for (name, data, mode) in files {
                let opts = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
                w.start_file(*name, opts).unwrap();
                w.write_all(data).unwrap();
            }
            w.finish().unwrap();
        }
        buf.into_inner()
    }

    const ID: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn put_then_extract_keeps_executable_bits() {
        let dir = tempfile::tempdir().unwrap();
        let store = CodeStore::open(dir.path()).unwrap();
        let zip = zip_with(&[
            ("bootstrap", b"#!/bin/sh\n", 0o755),
            ("lib/data.txt", b"hi", 0o644),
        ]);
        store.put(ID, &zip).unwrap();
        assert_eq!(store.read(ID).unwrap(), zip);
        let tree = store.extract(ID).unwrap();
        let mode = fs::metadata(tree.join("bootstrap"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        assert_eq!(fs::read(tree.join("lib/data.txt")).unwrap(), b"hi");
        // A second extraction reuses the tree.
        assert_eq!(store.extract(ID).unwrap(), tree);
    }

    const ID2: &str = "0000000000000000000000000000000000000000000000000000000000000002";

    #[test]
    fn merged_layers_put_later_layers_over_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = CodeStore::open(dir.path()).unwrap();
        store
            .put(
                ID,
                &zip_with(&[
                    ("python/shared.py", b"first", 0o644),
                    ("python/only_first.py", b"1", 0o644),
                ]),
            )
            .unwrap();
        store
            .put(ID2, &zip_with(&[("python/shared.py", b"second", 0o644)]))
            .unwrap();
        let ids = [ID.to_string(), ID2.to_string()];
        let merged = store.merged_layers(&ids).unwrap();
        assert_eq!(
            fs::read(merged.join("python/shared.py")).unwrap(),
            b"second"
        );
        assert_eq!(fs::read(merged.join("python/only_first.py")).unwrap(), b"1");
        // The layers' own trees are untouched, and the merge is built once.
        let first = store.extract(ID).unwrap();
        assert_eq!(fs::read(first.join("python/shared.py")).unwrap(), b"first");
        assert_eq!(store.merged_layers(&ids).unwrap(), merged);
        // Order matters: the other order is another tree.
        let reversed = store
            .merged_layers(&[ID2.to_string(), ID.to_string()])
            .unwrap();
        assert_ne!(reversed, merged);
        assert_eq!(
            fs::read(reversed.join("python/shared.py")).unwrap(),
            b"first"
        );
    }

    #[test]
    fn ids_that_are_not_hex_digests_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = CodeStore::open(dir.path()).unwrap();
        assert!(matches!(
            store.read("../../etc/passwd"),
            Err(CodeStoreError::InvalidId(_))
        ));
    }

    #[test]
    fn missing_package_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = CodeStore::open(dir.path()).unwrap();
        assert!(matches!(store.read(ID), Err(CodeStoreError::Missing(_))));
    }
}
