//! The system calls the sandbox logic needs, behind a trait.
//!
//! Building a root file system and driving cgroups are sequences of small privileged operations. Putting
//! them behind [`Host`] lets the sequences be unit-tested without root against a recording fake, while
//! [`RealHost`] performs them for real.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{chdir, pivot_root, Pid};

/// What exists at a path on the host, without following a final symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// Nothing at that path.
    Missing,
    /// A directory.
    Directory,
    /// A regular file, device node, socket or anything else that is not a directory or a symlink.
    File,
    /// A symbolic link with this target (as written in the link, not resolved).
    Symlink(PathBuf),
}

/// The privileged file system, mount and signal operations used to build a sandbox.
pub trait Host: Send + Sync + std::fmt::Debug {
    /// Creates a directory and its missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty directory (cgroup directories are removed this way).
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Writes a whole file, creating it when missing.
    fn write_file(&self, path: &Path, contents: &[u8]) -> io::Result<()>;
    /// Reads a whole text file.
    fn read_to_string(&self, path: &Path) -> io::Result<String>;
    /// Tells what is at a path without following a final symlink.
    fn entry_kind(&self, path: &Path) -> EntryKind;
    /// Names of the subdirectories of a directory (none when it is missing).
    fn subdirectories(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Creates a symlink at `link` pointing to `target`.
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()>;
    /// mount(2).
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()>;
    /// Makes `new_root` the root of the calling mount namespace and detaches the old root entirely.
    fn pivot_root(&self, new_root: &Path) -> io::Result<()>;
    /// Sends a signal to one process.
    fn kill(&self, pid: i32, signal: Signal) -> io::Result<()>;
}

/// [`Host`] implemented with the real system calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealHost;

impl Host for RealHost {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn write_file(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        std::fs::write(path, contents)
    }

    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn subdirectories(&self, path: &Path) -> io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    fn entry_kind(&self, path: &Path) -> EntryKind {
        match std::fs::symlink_metadata(path) {
            Err(_) => EntryKind::Missing,
            Ok(meta) if meta.file_type().is_symlink() => match std::fs::read_link(path) {
                Ok(target) => EntryKind::Symlink(target),
                Err(_) => EntryKind::Missing,
            },
            Ok(meta) if meta.is_dir() => EntryKind::Directory,
            Ok(_) => EntryKind::File,
        }
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target, link)
    }

    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        mount(source, target, fstype, flags, data).map_err(io::Error::from)
    }

    fn pivot_root(&self, new_root: &Path) -> io::Result<()> {
        // pivot_root(".", ".") stacks the old root under the new one at the same place; detaching it
        // right away avoids needing a put_old directory inside the new root.
        chdir(new_root)?;
        pivot_root(".", ".")?;
        umount2(".", MntFlags::MNT_DETACH)?;
        chdir("/")?;
        Ok(())
    }

    fn kill(&self, pid: i32, signal: Signal) -> io::Result<()> {
        kill(Pid::from_raw(pid), signal).map_err(io::Error::from)
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A [`Host`] that performs nothing and records every call, for unit tests.

    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// One recorded call, in the order made.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) enum HostCall {
        CreateDir(PathBuf),
        RemoveDir(PathBuf),
        Write(PathBuf, String),
        Symlink {
            target: PathBuf,
            link: PathBuf,
        },
        Mount {
            source: Option<PathBuf>,
            target: PathBuf,
            fstype: Option<String>,
            flags: MsFlags,
            data: Option<String>,
        },
        PivotRoot(PathBuf),
        Kill(i32, Signal),
    }

    /// Records calls; answers reads and `entry_kind` from what the test put in.
    #[derive(Debug, Default)]
    pub(crate) struct FakeHost {
        pub(crate) entries: Mutex<BTreeMap<PathBuf, EntryKind>>,
        pub(crate) files: Mutex<BTreeMap<PathBuf, String>>,
        pub(crate) calls: Mutex<Vec<HostCall>>,
    }

    impl FakeHost {
        pub(crate) fn with_entry(self, path: &str, kind: EntryKind) -> Self {
            self.lock_entries().insert(PathBuf::from(path), kind);
            self
        }

        pub(crate) fn with_file(self, path: &str, contents: &str) -> Self {
            self.lock_entries()
                .insert(PathBuf::from(path), EntryKind::File);
            self.lock_files()
                .insert(PathBuf::from(path), contents.to_string());
            self
        }

        pub(crate) fn calls(&self) -> Vec<HostCall> {
            self.calls.lock().map(|c| c.clone()).unwrap_or_default()
        }

        fn lock_entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, EntryKind>> {
            self.entries.lock().unwrap_or_else(|e| e.into_inner())
        }

        fn lock_files(&self) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, String>> {
            self.files.lock().unwrap_or_else(|e| e.into_inner())
        }

        fn record(&self, call: HostCall) {
            self.calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(call);
        }
    }

    impl Host for FakeHost {
        fn create_dir_all(&self, path: &Path) -> io::Result<()> {
            self.record(HostCall::CreateDir(path.to_path_buf()));
            self.lock_entries()
                .insert(path.to_path_buf(), EntryKind::Directory);
            Ok(())
        }

        fn remove_dir(&self, path: &Path) -> io::Result<()> {
            self.record(HostCall::RemoveDir(path.to_path_buf()));
            self.lock_entries().remove(path);
            Ok(())
        }

        fn write_file(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
            let text = String::from_utf8_lossy(contents).into_owned();
            self.record(HostCall::Write(path.to_path_buf(), text.clone()));
            self.lock_files().insert(path.to_path_buf(), text);
            Ok(())
        }

        fn read_to_string(&self, path: &Path) -> io::Result<String> {
            self.lock_files()
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }

        fn subdirectories(&self, path: &Path) -> io::Result<Vec<String>> {
            Ok(self
                .lock_entries()
                .iter()
                .filter(|(p, kind)| **kind == EntryKind::Directory && p.parent() == Some(path))
                .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect())
        }

        fn entry_kind(&self, path: &Path) -> EntryKind {
            self.lock_entries()
                .get(path)
                .cloned()
                .unwrap_or(EntryKind::Missing)
        }

        fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
            self.record(HostCall::Symlink {
                target: target.to_path_buf(),
                link: link.to_path_buf(),
            });
            Ok(())
        }

        fn mount(
            &self,
            source: Option<&Path>,
            target: &Path,
            fstype: Option<&str>,
            flags: MsFlags,
            data: Option<&str>,
        ) -> io::Result<()> {
            self.record(HostCall::Mount {
                source: source.map(Path::to_path_buf),
                target: target.to_path_buf(),
                fstype: fstype.map(str::to_string),
                flags,
                data: data.map(str::to_string),
            });
            Ok(())
        }

        fn pivot_root(&self, new_root: &Path) -> io::Result<()> {
            self.record(HostCall::PivotRoot(new_root.to_path_buf()));
            Ok(())
        }

        fn kill(&self, pid: i32, signal: Signal) -> io::Result<()> {
            self.record(HostCall::Kill(pid, signal));
            Ok(())
        }
    }
}
