//! Attaching host directories to a sandbox that is already running.
//!
//! A stem cell is a sandbox whose runtime started before anybody knew which function it would run;
//! its `/var/task` and `/opt` are empty placeholders. When it is assigned, the function's code is
//! mounted over them with the kernel's mount API: `open_tree(OPEN_TREE_CLONE)` takes a detached
//! copy of the host directory (made read-only with `mount_setattr`), then a short-lived thread
//! joins the sandbox's mount namespace and `move_mount`s the copy onto the target. The thread
//! first unshares its file-system attributes (`CLONE_FS`): only a thread that shares them with no
//! other may enter another mount namespace, and it ends right after, so no other thread of Strato
//! ever sees the sandbox's mounts.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::mount::MsFlags;
use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{Result, SandboxError};
use crate::spec::BindMount;

// From <linux/mount.h>.
const OPEN_TREE_CLONE: libc::c_uint = 0x1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| SandboxError::InvalidSpec(format!("path {} contains NUL", path.display())))
}

/// A detached copy of the mount tree at `source`, read-only unless `writable`.
fn detached_tree(source: &Path, writable: bool) -> Result<OwnedFd> {
    let path = c_path(source)?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call; open_tree takes no
    // other pointers and returns a new file descriptor (or -1) that nothing else owns.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_RECURSIVE as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(SandboxError::io(
            "open_tree",
            source,
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: the syscall succeeded, so `fd` is an open descriptor owned by nobody else.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut attr = MountAttr {
        attr_set: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    if !writable {
        attr.attr_set |= MOUNT_ATTR_RDONLY;
    }
    let empty = c"";
    // SAFETY: `tree` is a valid descriptor, `empty` a valid empty C string, and `attr` a live
    // `struct mount_attr` whose size is passed alongside it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &mut attr as *mut MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(SandboxError::io(
            "mount_setattr",
            source,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(tree)
}

/// Mounts each of `mounts` into the mount namespace of process `pid` and remounts its `/tmp`
/// with `tmp_bytes` as its size.
pub(crate) fn attach_mounts(pid: u32, mounts: &[BindMount], tmp_bytes: Option<u64>) -> Result<()> {
    let trees = mounts
        .iter()
        .map(|m| Ok((detached_tree(&m.source, m.writable)?, c_path(&m.target)?, m)))
        .collect::<Result<Vec<_>>>()?;
    let ns_path = format!("/proc/{pid}/ns/mnt");
    let namespace =
        File::open(&ns_path).map_err(|e| SandboxError::io("open", ns_path.clone(), e))?;
    std::thread::scope(|scope| {
        scope
            .spawn(move || -> Result<()> {
                unshare(CloneFlags::CLONE_FS)
                    .map_err(|e| SandboxError::sys("unshare(CLONE_FS)", e))?;
                setns(&namespace, CloneFlags::CLONE_NEWNS)
                    .map_err(|e| SandboxError::sys("setns(mount namespace)", e))?;
                for (tree, target, mount) in &trees {
                    let empty = c"";
                    // SAFETY: `tree` is a valid detached mount descriptor, `empty` and `target`
                    // valid C strings that outlive the call.
                    let rc = unsafe {
                        libc::syscall(
                            libc::SYS_move_mount,
                            tree.as_raw_fd(),
                            empty.as_ptr(),
                            libc::AT_FDCWD,
                            target.as_ptr(),
                            MOVE_MOUNT_F_EMPTY_PATH,
                        )
                    };
                    if rc < 0 {
                        return Err(SandboxError::io(
                            "move_mount onto",
                            &mount.target,
                            std::io::Error::last_os_error(),
                        ));
                    }
                }
                if let Some(bytes) = tmp_bytes {
                    let options = format!("mode=1777,size={bytes}");
                    nix::mount::mount(
                        None::<&str>,
                        "/tmp",
                        None::<&str>,
                        MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                        Some(options.as_str()),
                    )
                    .map_err(|e| SandboxError::io("remount", "/tmp", e.into()))?;
                }
                Ok(())
            })
            .join()
            .unwrap_or_else(|_| {
                Err(SandboxError::SetupFailed(
                    "the thread attaching mounts panicked".into(),
                ))
            })
    })
}
