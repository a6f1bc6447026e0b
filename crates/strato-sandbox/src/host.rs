//! The system calls the sandbox logic needs, behind a trait.
//!
//! Building a root file system, driving cgroups and attaching mounts to a running sandbox are
//! sequences of small privileged operations. Putting them behind [`Host`] lets the sequences be
//! unit-tested without root against a recording fake, while [`RealHost`] performs them for real.
//!
//! Calls made between `fork` and `exec` of a multi-threaded parent (the `pre_exec` hook of
//! `process.rs`) do not go through [`Host`]: only async-signal-safe code may run there, and nothing
//! about a `&dyn Host` promises that (the test fake locks mutexes and allocates).

use std::ffi::CString;
use std::io;
use std::ops::BitOr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{chdir, pivot_root, Pid};

/// Flags of `open_tree(2)`. [`RealHost`] always adds `OPEN_TREE_CLOEXEC`: a mount tree descriptor
/// must never reach a program the sandbox executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenTreeFlags(u32);

impl OpenTreeFlags {
    /// A detached copy of the mount, attached nowhere until moved (`OPEN_TREE_CLONE`).
    pub const CLONE: Self = Self(0x1);
    /// The mounts below the path too, not only the one at it (`AT_RECURSIVE`).
    pub const RECURSIVE: Self = Self(libc::AT_RECURSIVE as u32);

    /// The flags as the kernel reads them.
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl BitOr for OpenTreeFlags {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// Attributes `mount_setattr(2)` sets on a mount (`MOUNT_ATTR_*` of `<linux/mount.h>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountAttributes(u64);

impl MountAttributes {
    /// Nothing can be written through the mount.
    pub const READ_ONLY: Self = Self(0x1);
    /// Set-user-id and set-group-id bits of its files are ignored.
    pub const NOSUID: Self = Self(0x2);
    /// Device nodes on it cannot be opened.
    pub const NODEV: Self = Self(0x4);

    /// The attributes as the kernel reads them.
    pub fn bits(self) -> u64 {
        self.0
    }
}

impl BitOr for MountAttributes {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// `OPEN_TREE_CLOEXEC`, which is `O_CLOEXEC`.
const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
/// `MOVE_MOUNT_F_EMPTY_PATH`: the source is the descriptor itself, not a path relative to it.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path {} contains a NUL byte", path.display()),
        )
    })
}

/// The result of a raw system call: what it returned, or the `errno` it set when it returned -1.
fn syscall_result(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

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

/// The privileged file system, mount, namespace and signal operations used to build a sandbox and
/// attach mounts to a running one.
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
    /// umount2(2).
    fn unmount(&self, target: &Path, flags: MntFlags) -> io::Result<()>;
    /// open_tree(2): a descriptor of the mount tree at `path` (with [`OpenTreeFlags::CLONE`], of a
    /// detached copy of it that no mount namespace sees until it is moved somewhere).
    fn open_tree(&self, path: &Path, flags: OpenTreeFlags) -> io::Result<OwnedFd>;
    /// mount_setattr(2) on every mount of the tree `tree` (from [`Host::open_tree`]): sets
    /// `attributes`, clears none.
    fn set_tree_attributes(
        &self,
        tree: BorrowedFd<'_>,
        attributes: MountAttributes,
    ) -> io::Result<()>;
    /// move_mount(2): attaches the tree `tree` at `target` in the calling thread's mount namespace.
    fn move_mount(&self, tree: BorrowedFd<'_>, target: &Path) -> io::Result<()>;
    /// Opens a namespace file such as `/proc/<pid>/ns/mnt`, to enter it with [`Host::setns`].
    fn open_namespace(&self, path: &Path) -> io::Result<OwnedFd>;
    /// unshare(2) for the calling thread.
    fn unshare(&self, flags: CloneFlags) -> io::Result<()>;
    /// setns(2): moves the calling thread into `namespace`, which must be of the kind `kind`.
    fn setns(&self, namespace: BorrowedFd<'_>, kind: CloneFlags) -> io::Result<()>;
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

    fn unmount(&self, target: &Path, flags: MntFlags) -> io::Result<()> {
        umount2(target, flags).map_err(io::Error::from)
    }

    fn open_tree(&self, path: &Path, flags: OpenTreeFlags) -> io::Result<OwnedFd> {
        let path = c_path(path)?;
        // SAFETY: `path` is a NUL-terminated string that outlives the call; open_tree reads no other
        // memory and returns a new descriptor (or -1) that nothing else owns.
        let fd = syscall_result(unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                path.as_ptr(),
                flags.bits() | OPEN_TREE_CLOEXEC,
            )
        })?;
        let fd =
            libc::c_int::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        // SAFETY: the call succeeded, so `fd` is an open descriptor owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn set_tree_attributes(
        &self,
        tree: BorrowedFd<'_>,
        attributes: MountAttributes,
    ) -> io::Result<()> {
        let mut attr = MountAttr {
            attr_set: attributes.bits(),
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        // SAFETY: `tree` is an open descriptor, the empty path a static C string, and `attr` a live
        // `struct mount_attr` whose size is passed alongside it; the kernel keeps no pointer.
        syscall_result(unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                tree.as_raw_fd(),
                c"".as_ptr(),
                (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
                &mut attr as *mut MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        })
        .map(drop)
    }

    fn move_mount(&self, tree: BorrowedFd<'_>, target: &Path) -> io::Result<()> {
        let target = c_path(target)?;
        // SAFETY: `tree` is an open descriptor; the empty path and `target` are NUL-terminated
        // strings that outlive the call.
        syscall_result(unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                tree.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            )
        })
        .map(drop)
    }

    fn open_namespace(&self, path: &Path) -> io::Result<OwnedFd> {
        std::fs::File::open(path).map(OwnedFd::from)
    }

    fn unshare(&self, flags: CloneFlags) -> io::Result<()> {
        unshare(flags).map_err(io::Error::from)
    }

    fn setns(&self, namespace: BorrowedFd<'_>, kind: CloneFlags) -> io::Result<()> {
        setns(namespace, kind).map_err(io::Error::from)
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A [`Host`] that performs nothing and records every call, for unit tests.
    //!
    //! Descriptors it hands out (mount trees, namespaces) are real sockets whose peer the fake keeps,
    //! so a test can tell which of them the code under test has closed, and calls taking a
    //! descriptor are recorded with the path it was opened for.

    use super::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::io::Read;
    use std::os::fd::RawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::{Mutex, MutexGuard};
    use std::thread::ThreadId;

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
        Unmount(PathBuf, MntFlags),
        OpenTree {
            path: PathBuf,
            flags: OpenTreeFlags,
        },
        /// `tree` is the path the tree was opened from.
        SetTreeAttributes {
            tree: PathBuf,
            attributes: MountAttributes,
        },
        /// `tree` is the path the tree was opened from.
        MoveMount {
            tree: PathBuf,
            target: PathBuf,
        },
        OpenNamespace(PathBuf),
        Unshare(CloneFlags),
        /// `namespace` is the path the namespace was opened from.
        Setns {
            namespace: PathBuf,
            kind: CloneFlags,
        },
    }

    /// A descriptor the fake handed out: the path it stands for and the peer that sees it closed.
    #[derive(Debug)]
    struct Handle {
        path: PathBuf,
        fd: RawFd,
        peer: UnixStream,
    }

    impl Handle {
        fn is_open(&self) -> bool {
            let mut byte = [0u8; 1];
            // The peer reads end-of-file once the handed-out end is closed, and would block before.
            matches!((&self.peer).read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        }
    }

    /// Records calls with the thread that made them; answers reads and `entry_kind` from what the
    /// test put in; fails the one call the test chose with the errno it chose.
    #[derive(Debug, Default)]
    pub(crate) struct FakeHost {
        entries: Mutex<BTreeMap<PathBuf, EntryKind>>,
        files: Mutex<BTreeMap<PathBuf, String>>,
        calls: Mutex<Vec<(ThreadId, HostCall)>>,
        failure: Option<(HostCall, i32)>,
        handles: Mutex<Vec<Handle>>,
        /// Targets a tree was moved onto and not unmounted since.
        attached: Mutex<BTreeSet<PathBuf>>,
    }

    fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(|e| e.into_inner())
    }

    impl FakeHost {
        pub(crate) fn with_entry(self, path: &str, kind: EntryKind) -> Self {
            lock(&self.entries).insert(PathBuf::from(path), kind);
            self
        }

        pub(crate) fn with_file(self, path: &str, contents: &str) -> Self {
            lock(&self.entries).insert(PathBuf::from(path), EntryKind::File);
            lock(&self.files).insert(PathBuf::from(path), contents.to_string());
            self
        }

        /// Makes `call` fail with `errno` (after recording it, as the kernel would have seen it).
        pub(crate) fn with_failure(self, call: HostCall, errno: i32) -> Self {
            FakeHost {
                failure: Some((call, errno)),
                ..self
            }
        }

        pub(crate) fn calls(&self) -> Vec<HostCall> {
            lock(&self.calls)
                .iter()
                .map(|(_, call)| call.clone())
                .collect()
        }

        /// The calls with the thread each was made on.
        pub(crate) fn calls_by_thread(&self) -> Vec<(ThreadId, HostCall)> {
            lock(&self.calls).clone()
        }

        /// Paths of the descriptors handed out and not closed yet.
        pub(crate) fn open_handles(&self) -> Vec<PathBuf> {
            lock(&self.handles)
                .iter()
                .filter(|handle| handle.is_open())
                .map(|handle| handle.path.clone())
                .collect()
        }

        /// Targets that have a tree moved onto them now.
        pub(crate) fn attached_mounts(&self) -> BTreeSet<PathBuf> {
            lock(&self.attached).clone()
        }

        fn record(&self, call: HostCall) -> io::Result<()> {
            lock(&self.calls).push((std::thread::current().id(), call.clone()));
            match &self.failure {
                Some((failing, errno)) if *failing == call => {
                    Err(io::Error::from_raw_os_error(*errno))
                }
                _ => Ok(()),
            }
        }

        /// A new descriptor standing for `path`.
        fn hand_out(&self, path: &Path) -> io::Result<OwnedFd> {
            let (ours, peer) = UnixStream::pair()?;
            peer.set_nonblocking(true)?;
            let fd = OwnedFd::from(ours);
            lock(&self.handles).push(Handle {
                path: path.to_path_buf(),
                fd: fd.as_raw_fd(),
                peer,
            });
            Ok(fd)
        }

        /// The path an open descriptor handed out by this fake stands for.
        fn path_of(&self, fd: BorrowedFd<'_>) -> PathBuf {
            lock(&self.handles)
                .iter()
                .rev()
                .find(|handle| handle.fd == fd.as_raw_fd() && handle.is_open())
                .map(|handle| handle.path.clone())
                .unwrap_or_else(|| {
                    PathBuf::from(format!("<fd {} not from this host>", fd.as_raw_fd()))
                })
        }
    }

    impl Host for FakeHost {
        fn create_dir_all(&self, path: &Path) -> io::Result<()> {
            self.record(HostCall::CreateDir(path.to_path_buf()))?;
            lock(&self.entries).insert(path.to_path_buf(), EntryKind::Directory);
            Ok(())
        }

        fn remove_dir(&self, path: &Path) -> io::Result<()> {
            self.record(HostCall::RemoveDir(path.to_path_buf()))?;
            lock(&self.entries).remove(path);
            Ok(())
        }

        fn write_file(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
            let text = String::from_utf8_lossy(contents).into_owned();
            self.record(HostCall::Write(path.to_path_buf(), text.clone()))?;
            lock(&self.files).insert(path.to_path_buf(), text);
            Ok(())
        }

        fn read_to_string(&self, path: &Path) -> io::Result<String> {
            lock(&self.files)
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }

        fn subdirectories(&self, path: &Path) -> io::Result<Vec<String>> {
            Ok(lock(&self.entries)
                .iter()
                .filter(|(p, kind)| **kind == EntryKind::Directory && p.parent() == Some(path))
                .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect())
        }

        fn entry_kind(&self, path: &Path) -> EntryKind {
            lock(&self.entries)
                .get(path)
                .cloned()
                .unwrap_or(EntryKind::Missing)
        }

        fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
            self.record(HostCall::Symlink {
                target: target.to_path_buf(),
                link: link.to_path_buf(),
            })
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
            })
        }

        fn pivot_root(&self, new_root: &Path) -> io::Result<()> {
            self.record(HostCall::PivotRoot(new_root.to_path_buf()))
        }

        fn kill(&self, pid: i32, signal: Signal) -> io::Result<()> {
            self.record(HostCall::Kill(pid, signal))
        }

        fn unmount(&self, target: &Path, flags: MntFlags) -> io::Result<()> {
            self.record(HostCall::Unmount(target.to_path_buf(), flags))?;
            lock(&self.attached).remove(target);
            Ok(())
        }

        fn open_tree(&self, path: &Path, flags: OpenTreeFlags) -> io::Result<OwnedFd> {
            self.record(HostCall::OpenTree {
                path: path.to_path_buf(),
                flags,
            })?;
            self.hand_out(path)
        }

        fn set_tree_attributes(
            &self,
            tree: BorrowedFd<'_>,
            attributes: MountAttributes,
        ) -> io::Result<()> {
            self.record(HostCall::SetTreeAttributes {
                tree: self.path_of(tree),
                attributes,
            })
        }

        fn move_mount(&self, tree: BorrowedFd<'_>, target: &Path) -> io::Result<()> {
            self.record(HostCall::MoveMount {
                tree: self.path_of(tree),
                target: target.to_path_buf(),
            })?;
            lock(&self.attached).insert(target.to_path_buf());
            Ok(())
        }

        fn open_namespace(&self, path: &Path) -> io::Result<OwnedFd> {
            self.record(HostCall::OpenNamespace(path.to_path_buf()))?;
            self.hand_out(path)
        }

        fn unshare(&self, flags: CloneFlags) -> io::Result<()> {
            self.record(HostCall::Unshare(flags))
        }

        fn setns(&self, namespace: BorrowedFd<'_>, kind: CloneFlags) -> io::Result<()> {
            self.record(HostCall::Setns {
                namespace: self.path_of(namespace),
                kind,
            })
        }
    }
}
