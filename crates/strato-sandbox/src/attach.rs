//! Attaching host directories to a sandbox that is already running.
//!
//! A stem cell is a sandbox whose runtime started before anybody knew which function it would run;
//! its `/var/task` and `/opt` are empty placeholders. When it is assigned, the function's code is
//! mounted over them with the kernel's mount API: `open_tree(OPEN_TREE_CLONE)` takes a detached
//! copy of the host directory, which `mount_setattr` makes read-only, nosuid and nodev while no
//! mount namespace can see it yet; then a short-lived thread joins the sandbox's mount namespace and
//! `move_mount`s the copies onto their targets. The thread first unshares its file-system attributes
//! (`CLONE_FS`): only a thread that shares them with no other may enter another mount namespace,
//! and it ends right after, so no other thread of Strato ever sees the sandbox's mounts.
//!
//! Every system call goes through [`Host`], so the sequence is specified by unit tests against the
//! recording fake.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::error::{Result, SandboxError};
use crate::host::{Host, MountAttributes, OpenTreeFlags};
use crate::spec::BindMount;

/// The step at which attaching mounts to a running sandbox failed (see [`SandboxError::Attach`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachStep {
    /// Taking a detached copy of a host directory (`open_tree`).
    CopyTree,
    /// Making that copy read-only, nosuid and nodev (`mount_setattr`).
    RestrictTree,
    /// Opening the sandbox's mount namespace (`/proc/<pid>/ns/mnt`).
    OpenNamespace,
    /// Giving the attaching thread file-system attributes of its own (`unshare(CLONE_FS)`).
    UnshareFs,
    /// Entering the sandbox's mount namespace (`setns`).
    EnterNamespace,
    /// Mounting a copy onto its target inside the sandbox (`move_mount`).
    MoveMount,
    /// Resizing the sandbox's `/tmp` (a remount).
    RemountTmp,
}

impl fmt::Display for AttachStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttachStep::CopyTree => "open_tree",
            AttachStep::RestrictTree => "mount_setattr",
            AttachStep::OpenNamespace => "open mount namespace",
            AttachStep::UnshareFs => "unshare(CLONE_FS) before entering",
            AttachStep::EnterNamespace => "setns into",
            AttachStep::MoveMount => "move_mount onto",
            AttachStep::RemountTmp => "remount",
        })
    }
}

fn failed(step: AttachStep, path: &Path) -> impl FnOnce(io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Attach {
        step,
        path: path.to_path_buf(),
        source,
    }
}

/// Mounts each of `mounts` into the mount namespace of process `pid` and remounts its `/tmp` with
/// `tmp_bytes` as its size.
///
/// On failure nothing of the attachment stays mounted: copies not moved yet are closed (which
/// discards them), and those already moved are detached again. Should that detaching fail too (it
/// is logged), the sandbox is in an unknown state and must not be used.
pub(crate) fn attach_mounts(
    host: &dyn Host,
    pid: u32,
    mounts: &[BindMount],
    tmp_bytes: Option<u64>,
) -> Result<()> {
    let trees = mounts
        .iter()
        .map(|mount| Ok((detached_tree(host, mount)?, mount.target.as_path())))
        .collect::<Result<Vec<_>>>()?;
    let namespace_path = PathBuf::from(format!("/proc/{pid}/ns/mnt"));
    let namespace = host
        .open_namespace(&namespace_path)
        .map_err(failed(AttachStep::OpenNamespace, &namespace_path))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<()> {
                host.unshare(CloneFlags::CLONE_FS)
                    .map_err(failed(AttachStep::UnshareFs, &namespace_path))?;
                host.setns(namespace.as_fd(), CloneFlags::CLONE_NEWNS)
                    .map_err(failed(AttachStep::EnterNamespace, &namespace_path))?;
                mount_inside(host, &trees, tmp_bytes)
            })
            .join()
            .unwrap_or_else(|_| {
                Err(SandboxError::SetupFailed(
                    "the thread attaching mounts panicked".into(),
                ))
            })
    })
}

/// A detached copy of the host directory of `mount`, restricted before anything can see it.
fn detached_tree(host: &dyn Host, mount: &BindMount) -> Result<OwnedFd> {
    let tree = host
        .open_tree(
            &mount.source,
            OpenTreeFlags::CLONE | OpenTreeFlags::RECURSIVE,
        )
        .map_err(failed(AttachStep::CopyTree, &mount.source))?;
    let mut attributes = MountAttributes::NOSUID | MountAttributes::NODEV;
    if !mount.writable {
        attributes = attributes | MountAttributes::READ_ONLY;
    }
    host.set_tree_attributes(tree.as_fd(), attributes)
        .map_err(failed(AttachStep::RestrictTree, &mount.source))?;
    Ok(tree)
}

/// Runs on the thread inside the sandbox's mount namespace: moves every copy onto its target and
/// resizes `/tmp`, detaching the moved copies again if any of it fails.
fn mount_inside(host: &dyn Host, trees: &[(OwnedFd, &Path)], tmp_bytes: Option<u64>) -> Result<()> {
    let mut attached = Vec::new();
    let result = move_and_resize(host, trees, tmp_bytes, &mut attached);
    if result.is_err() {
        for target in attached.iter().rev() {
            if let Err(e) = host.unmount(target, MntFlags::MNT_DETACH) {
                tracing::warn!(target = %target.display(), error = %e, "undoing a partial attach failed");
            }
        }
    }
    result
}

fn move_and_resize<'a>(
    host: &dyn Host,
    trees: &[(OwnedFd, &'a Path)],
    tmp_bytes: Option<u64>,
    attached: &mut Vec<&'a Path>,
) -> Result<()> {
    for (tree, target) in trees {
        host.move_mount(tree.as_fd(), target)
            .map_err(failed(AttachStep::MoveMount, target))?;
        attached.push(target);
    }
    if let Some(bytes) = tmp_bytes {
        let tmp = Path::new("/tmp");
        let options = format!("mode=1777,size={bytes}");
        host.mount(
            None,
            tmp,
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options.as_str()),
        )
        .map_err(failed(AttachStep::RemountTmp, tmp))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::{FakeHost, HostCall};

    const PID: u32 = 42;
    const NAMESPACE: &str = "/proc/42/ns/mnt";
    const TMP_BYTES: u64 = 1024 * 1024;

    fn code_and_layer() -> Vec<BindMount> {
        vec![
            BindMount::read_only("/srv/code", "/var/task"),
            BindMount::read_only("/srv/layer", "/opt"),
        ]
    }

    fn open_tree(path: &str) -> HostCall {
        HostCall::OpenTree {
            path: PathBuf::from(path),
            flags: OpenTreeFlags::CLONE | OpenTreeFlags::RECURSIVE,
        }
    }

    fn restrict(path: &str, attributes: MountAttributes) -> HostCall {
        HostCall::SetTreeAttributes {
            tree: PathBuf::from(path),
            attributes,
        }
    }

    fn read_only() -> MountAttributes {
        MountAttributes::READ_ONLY | MountAttributes::NOSUID | MountAttributes::NODEV
    }

    fn move_mount(tree: &str, target: &str) -> HostCall {
        HostCall::MoveMount {
            tree: PathBuf::from(tree),
            target: PathBuf::from(target),
        }
    }

    fn unshare_fs() -> HostCall {
        HostCall::Unshare(CloneFlags::CLONE_FS)
    }

    fn enter_namespace() -> HostCall {
        HostCall::Setns {
            namespace: PathBuf::from(NAMESPACE),
            kind: CloneFlags::CLONE_NEWNS,
        }
    }

    fn remount_tmp() -> HostCall {
        HostCall::Mount {
            source: None,
            target: PathBuf::from("/tmp"),
            fstype: None,
            flags: MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            data: Some(format!("mode=1777,size={TMP_BYTES}")),
        }
    }

    fn detach(target: &str) -> HostCall {
        HostCall::Unmount(PathBuf::from(target), MntFlags::MNT_DETACH)
    }

    /// The whole sequence of a successful adoption of code and a layer.
    fn full_sequence() -> Vec<HostCall> {
        vec![
            open_tree("/srv/code"),
            restrict("/srv/code", read_only()),
            open_tree("/srv/layer"),
            restrict("/srv/layer", read_only()),
            HostCall::OpenNamespace(PathBuf::from(NAMESPACE)),
            unshare_fs(),
            enter_namespace(),
            move_mount("/srv/code", "/var/task"),
            move_mount("/srv/layer", "/opt"),
            remount_tmp(),
        ]
    }

    #[test]
    fn copies_are_made_read_only_before_they_are_moved_into_the_sandbox() {
        let host = FakeHost::default();
        attach_mounts(&host, PID, &code_and_layer(), Some(TMP_BYTES)).expect("attach");
        assert_eq!(host.calls(), full_sequence());
        assert_eq!(
            host.attached_mounts(),
            [PathBuf::from("/var/task"), PathBuf::from("/opt")].into()
        );
    }

    #[test]
    fn only_a_thread_of_its_own_enters_the_sandbox_namespace() {
        let host = FakeHost::default();
        attach_mounts(&host, PID, &code_and_layer(), Some(TMP_BYTES)).expect("attach");
        let calls = host.calls_by_thread();
        let caller = std::thread::current().id();
        let unshare = calls
            .iter()
            .position(|(_, call)| *call == unshare_fs())
            .expect("unshare(CLONE_FS)");
        let attaching_thread = calls[unshare].0;
        assert_ne!(attaching_thread, caller);
        // The copies are taken from the caller's own namespace; everything from the unshare on runs
        // on the attaching thread, and nothing else does.
        for (index, (thread, call)) in calls.iter().enumerate() {
            assert_eq!(
                *thread == attaching_thread,
                index >= unshare,
                "{call:?} on the wrong thread"
            );
        }
    }

    #[test]
    fn every_descriptor_is_closed_once_attached() {
        let host = FakeHost::default();
        attach_mounts(&host, PID, &code_and_layer(), Some(TMP_BYTES)).expect("attach");
        assert_eq!(host.open_handles(), Vec::<PathBuf>::new());
    }

    #[test]
    fn a_writable_mount_is_copied_without_read_only() {
        let host = FakeHost::default();
        let mounts = [BindMount::writable("/srv/state", "/mnt/state")];
        attach_mounts(&host, PID, &mounts, None).expect("attach");
        assert_eq!(
            host.calls()[1],
            restrict(
                "/srv/state",
                MountAttributes::NOSUID | MountAttributes::NODEV
            )
        );
    }

    #[test]
    fn tmp_is_left_alone_without_a_size() {
        let host = FakeHost::default();
        attach_mounts(&host, PID, &code_and_layer(), None).expect("attach");
        let mut expected = full_sequence();
        expected.pop();
        assert_eq!(host.calls(), expected);
    }

    /// Fails `failing` and checks the error, the calls made up to and including it (then any
    /// undoing), that no descriptor stays open and that nothing stays attached.
    fn assert_failure(
        failing: HostCall,
        step: AttachStep,
        path: &str,
        calls_after_failure: &[HostCall],
    ) {
        let host = FakeHost::default().with_failure(failing.clone(), libc::EACCES);
        let error = attach_mounts(&host, PID, &code_and_layer(), Some(TMP_BYTES))
            .expect_err("the injected failure");
        match &error {
            SandboxError::Attach {
                step: failed_step,
                path: failed_path,
                source,
            } => {
                assert_eq!(*failed_step, step);
                assert_eq!(failed_path, Path::new(path));
                assert_eq!(source.raw_os_error(), Some(libc::EACCES));
            }
            other => panic!("not an attach error: {other}"),
        }
        let sequence = full_sequence();
        let failed_at = sequence
            .iter()
            .position(|call| *call == failing)
            .expect("failing call is part of the sequence");
        let mut expected = sequence[..=failed_at].to_vec();
        expected.extend_from_slice(calls_after_failure);
        assert_eq!(host.calls(), expected, "after {step} failed");
        assert_eq!(
            host.open_handles(),
            Vec::<PathBuf>::new(),
            "after {step} failed"
        );
        assert!(host.attached_mounts().is_empty(), "after {step} failed");
    }

    #[test]
    fn copy_failure_closes_the_copies_already_taken() {
        assert_failure(
            open_tree("/srv/layer"),
            AttachStep::CopyTree,
            "/srv/layer",
            &[],
        );
    }

    #[test]
    fn restrict_failure_moves_nothing() {
        assert_failure(
            restrict("/srv/code", read_only()),
            AttachStep::RestrictTree,
            "/srv/code",
            &[],
        );
    }

    #[test]
    fn missing_sandbox_namespace_moves_nothing() {
        assert_failure(
            HostCall::OpenNamespace(PathBuf::from(NAMESPACE)),
            AttachStep::OpenNamespace,
            NAMESPACE,
            &[],
        );
    }

    #[test]
    fn unshare_failure_keeps_the_thread_out_of_the_sandbox() {
        assert_failure(unshare_fs(), AttachStep::UnshareFs, NAMESPACE, &[]);
    }

    #[test]
    fn setns_failure_moves_nothing() {
        assert_failure(
            enter_namespace(),
            AttachStep::EnterNamespace,
            NAMESPACE,
            &[],
        );
    }

    #[test]
    fn first_move_failure_has_nothing_to_undo() {
        assert_failure(
            move_mount("/srv/code", "/var/task"),
            AttachStep::MoveMount,
            "/var/task",
            &[],
        );
    }

    #[test]
    fn later_move_failure_detaches_the_earlier_moves() {
        assert_failure(
            move_mount("/srv/layer", "/opt"),
            AttachStep::MoveMount,
            "/opt",
            &[detach("/var/task")],
        );
    }

    #[test]
    fn tmp_resize_failure_detaches_every_move_in_reverse_order() {
        assert_failure(
            remount_tmp(),
            AttachStep::RemountTmp,
            "/tmp",
            &[detach("/opt"), detach("/var/task")],
        );
    }

    #[test]
    fn error_message_names_the_step_and_the_path() {
        let host = FakeHost::default().with_failure(move_mount("/srv/layer", "/opt"), libc::ENOENT);
        let error = attach_mounts(&host, PID, &code_and_layer(), None).expect_err("failure");
        let message = error.to_string();
        assert!(message.contains("move_mount onto /opt"), "{message}");
    }
}
