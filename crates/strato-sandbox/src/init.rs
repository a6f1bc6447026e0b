//! The sandbox's init: the program the sandbox re-executes to set up a sandbox from the inside.
//!
//! The spawning parent has already put the child into the sandbox's cgroups and network namespace
//! (so that nothing runs unaccounted). This code then:
//!
//! 1. unshares the mount, pid, ipc and uts namespaces;
//! 2. forks the pid namespace's PID 1, which builds the root file system (its `/proc` must belong to
//!    the new pid namespace), drops to the unprivileged user, loses every capability, sets
//!    `no_new_privs`, installs the seccomp filter, and forks + execs the target program; PID 1 then
//!    reaps orphans and forwards termination signals to the target;
//! 3. stays in the host's pid namespace as the process the caller waits on: when PID 1 reports the
//!    target's end it exits the same way (same code, or killed by the same signal).
//!
//! Setup failures are written to fd 3 (a close-on-exec pipe shared with the parent): the parent knows
//! the target is running exactly when that pipe reaches end-of-file without a message.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use caps::CapSet;
use nix::fcntl::OFlag;
use nix::sched::{unshare, CloneFlags};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{kill, raise, signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{
    chdir, execve, fork, pipe2, setgroups, sethostname, setresgid, setresuid, setsid, ForkResult,
    Gid, Pid, Uid,
};

use crate::error::{Result, SandboxError};
use crate::host::RealHost;
use crate::rootfs::build_rootfs;
use crate::seccomp::{apply_filter, build_filter};
use crate::spec::InitSpec;

/// Environment variable carrying the JSON [`InitSpec`]; the init's only environment.
pub(crate) const SPEC_ENV: &str = "STRATO_SANDBOX_INIT_SPEC";
/// The fd setup errors are reported on.
pub(crate) const REPORT_FD: RawFd = 3;
/// Exit code of the init when the sandbox could not be set up.
const SETUP_FAILED: i32 = 125;
/// Exit code when the target program could not be executed.
const EXEC_FAILED: i32 = 127;
/// Used when `PATH` is absent from the target's environment.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Signals the init forwards to the target program instead of dying from them.
const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// How the target program ended, as PID 1 tells the outer init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetEnd {
    Exited(i32),
    Signaled(Signal),
}

impl TargetEnd {
    fn encode(self) -> [u8; 8] {
        let (kind, value) = match self {
            TargetEnd::Exited(code) => (0i32, code),
            TargetEnd::Signaled(signal) => (1i32, signal as i32),
        };
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&kind.to_ne_bytes());
        bytes[4..].copy_from_slice(&value.to_ne_bytes());
        bytes
    }

    fn decode(bytes: [u8; 8]) -> Option<Self> {
        let kind = i32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let value = i32::from_ne_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        match kind {
            0 => Some(TargetEnd::Exited(value)),
            1 => Signal::try_from(value).ok().map(TargetEnd::Signaled),
            _ => None,
        }
    }
}

/// Entry point of the init program. The binary that embeds the sandbox calls this, first thing and
/// before starting any thread or async runtime, when started as the sandbox's init (e.g. with a hidden
/// `__sandbox-init` subcommand configured as [`SandboxConfig::init_args`](crate::SandboxConfig)).
pub fn sandbox_init_main() -> ! {
    match run_outer() {
        Ok(end) => exit_like(end),
        Err(e) => report_and_exit(&e.to_string(), SETUP_FAILED),
    }
}

fn run_outer() -> Result<TargetEnd> {
    let json = std::env::var(SPEC_ENV)
        .map_err(|_| SandboxError::SetupFailed(format!("{SPEC_ENV} is not set")))?;
    let spec: InitSpec = serde_json::from_str(&json)?;
    close_inherited_fds();
    unshare(
        CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS,
    )
    .map_err(|e| SandboxError::sys("unshare", e))?;
    let (status_read, status_write) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| SandboxError::sys("pipe2", e))?;
    // Blocked before fork so no forwarded signal can arrive before PID 1 is ready to forward it.
    let waited = waited_signals();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&waited), None)
        .map_err(|e| SandboxError::sys("sigprocmask", e))?;

    // SAFETY: the init is single-threaded (it is called first thing in a freshly executed program),
    // so the child may run arbitrary code after fork.
    match unsafe { fork() }.map_err(|e| SandboxError::sys("fork", e))? {
        ForkResult::Child => {
            drop(status_read);
            run_pid1(&spec, status_write)
        }
        ForkResult::Parent { child: pid1 } => {
            drop(status_write);
            // From here on only PID 1 and the target report setup errors.
            close_fd(REPORT_FD);
            detach_stdio();
            let pid1_end = supervise(pid1, false, &waited);
            let mut bytes = [0u8; 8];
            let mut status = File::from(status_read);
            let reported = status
                .read_exact(&mut bytes)
                .ok()
                .and_then(|()| TargetEnd::decode(bytes));
            Ok(reported.unwrap_or(pid1_end))
        }
    }
}

/// PID 1 of the sandbox's pid namespace: sets up, starts the target, then reaps until it ends.
fn run_pid1(spec: &InitSpec, status_write: OwnedFd) -> ! {
    let waited = waited_signals();
    let target = match start_target(spec, &waited) {
        Ok(target) => target,
        Err(e) => report_and_exit(&e.to_string(), SETUP_FAILED),
    };
    let end = supervise(target, true, &waited);
    let mut status = File::from(status_write);
    // If the outer init is gone there is nobody left to tell.
    let _ = status.write_all(&end.encode());
    std::process::exit(0)
}

fn start_target(spec: &InitSpec, waited: &SigSet) -> Result<Pid> {
    build_rootfs(&RealHost, &spec.rootfs)?;
    sethostname(&spec.hostname).map_err(|e| SandboxError::sys("sethostname", e))?;
    let program = resolve_program(spec)?;
    let program = c_string(program.as_os_str())?;
    let argv = std::iter::once(Ok(program.clone()))
        .chain(spec.args.iter().map(|arg| c_string(OsStr::new(arg))))
        .collect::<Result<Vec<_>>>()?;
    let env = spec
        .env
        .iter()
        .map(|(key, value)| c_string(OsStr::new(&format!("{key}={value}"))))
        .collect::<Result<Vec<_>>>()?;
    let cwd = spec.cwd.clone();
    setrlimit(
        Resource::RLIMIT_NOFILE,
        spec.max_open_files,
        spec.max_open_files,
    )
    .map_err(|e| SandboxError::sys("setrlimit(NOFILE)", e))?;
    drop_privileges(spec.user.uid, spec.user.gid)?;
    // Set after the uid change, which would clear it: if the outer init dies, so does the sandbox.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| SandboxError::sys("prctl(PDEATHSIG)", e))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| SandboxError::sys("prctl(NO_NEW_PRIVS)", e))?;
    let filter = build_filter()?;
    apply_filter(&filter)?;
    // The target's exec closes the report pipe, which is how the parent learns it started.
    // SAFETY: the report fd was placed by the parent; fcntl only changes its flags.
    if unsafe { libc::fcntl(REPORT_FD, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(SandboxError::sys(
            "fcntl(report fd)",
            std::io::Error::last_os_error(),
        ));
    }

    // SAFETY: PID 1 is single-threaded (forked from the single-threaded outer init).
    match unsafe { fork() }.map_err(|e| SandboxError::sys("fork", e))? {
        ForkResult::Child => {
            reset_signals(waited);
            let _ = setsid();
            if let Err(e) = chdir(&cwd) {
                report_and_exit(&format!("chdir {}: {e}", cwd.display()), EXEC_FAILED);
            }
            let error = execve(&program, &argv, &env).err();
            report_and_exit(
                &format!(
                    "exec {}: {}",
                    program.to_string_lossy(),
                    error.map(|e| e.to_string()).unwrap_or_default()
                ),
                EXEC_FAILED,
            )
        }
        ForkResult::Parent { child } => {
            close_fd(REPORT_FD);
            detach_stdio();
            Ok(child)
        }
    }
}

/// Waits for `main` while forwarding termination signals to it; with `reap_orphans` also reaps every
/// other child (PID 1 inherits the orphans of its namespace). Returns how `main` ended.
fn supervise(main: Pid, reap_orphans: bool, waited: &SigSet) -> TargetEnd {
    let wait_for = if reap_orphans {
        Pid::from_raw(-1)
    } else {
        main
    };
    loop {
        loop {
            match waitpid(wait_for, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == main => return TargetEnd::Exited(code),
                Ok(WaitStatus::Signaled(pid, signal, _)) if pid == main => {
                    return TargetEnd::Signaled(signal)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        match waited.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => continue,
            Ok(signal) => {
                let _ = kill(main, signal);
            }
        }
    }
}

fn waited_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for signal in FORWARDED {
        set.add(signal);
    }
    set
}

/// The target starts with default signal handling, whatever the init inherited or set (Rust programs
/// ignore SIGPIPE, for one).
fn reset_signals(waited: &SigSet) {
    for signal in Signal::iterator() {
        if signal != Signal::SIGKILL && signal != Signal::SIGSTOP {
            // SAFETY: installing SIG_DFL runs no Rust code in a signal handler.
            let _ = unsafe { signal_default(signal) };
        }
    }
    let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(waited), None);
}

/// # Safety
/// Only installs the default disposition.
unsafe fn signal_default(sig: Signal) -> nix::Result<SigHandler> {
    // SAFETY: SIG_DFL is not a Rust handler, so no async-signal-safety requirement applies.
    unsafe { signal(sig, SigHandler::SigDfl) }
}

/// Ends the outer init the way the target ended, so the caller's wait() sees the target's status.
fn exit_like(end: TargetEnd) -> ! {
    match end {
        TargetEnd::Exited(code) => std::process::exit(code),
        TargetEnd::Signaled(sig) => {
            // No core file of the init for a signal the target got.
            let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
            // SAFETY: installs the default disposition only.
            let _ = unsafe { signal_default(sig) };
            let mut set = SigSet::empty();
            set.add(sig);
            let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
            let _ = raise(sig);
            std::process::exit(128 + sig as i32)
        }
    }
}

fn drop_privileges(uid: u32, gid: u32) -> Result<()> {
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    setgroups(&[gid]).map_err(|e| SandboxError::sys("setgroups", e))?;
    setresgid(gid, gid, gid).map_err(|e| SandboxError::sys("setresgid", e))?;
    // The bounding set can only shrink while CAP_SETPCAP is still held, i.e. before the uid change.
    for set in [CapSet::Bounding, CapSet::Inheritable, CapSet::Ambient] {
        caps::clear(None, set).map_err(|e| {
            SandboxError::sys("drop capabilities", std::io::Error::other(e.to_string()))
        })?;
    }
    setresuid(uid, uid, uid).map_err(|e| SandboxError::sys("setresuid", e))?;
    for set in [CapSet::Effective, CapSet::Permitted] {
        caps::clear(None, set).map_err(|e| {
            SandboxError::sys("drop capabilities", std::io::Error::other(e.to_string()))
        })?;
    }
    Ok(())
}

/// Finds the program inside the new root: as given when it contains a `/`, else in the target's `PATH`.
fn resolve_program(spec: &InitSpec) -> Result<PathBuf> {
    if spec.program.as_os_str().as_bytes().contains(&b'/') {
        return Ok(spec.program.clone());
    }
    let path = spec
        .env
        .iter()
        .find(|(key, _)| key == "PATH")
        .map(|(_, value)| value.as_str())
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|dir| Path::new(dir).join(&spec.program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .ok_or_else(|| {
            SandboxError::SetupFailed(format!(
                "{} not found in PATH {path}",
                spec.program.display()
            ))
        })
}

fn c_string(value: &OsStr) -> Result<CString> {
    CString::new(value.as_bytes()).map_err(|_| {
        SandboxError::InvalidSpec(format!("{} contains a NUL byte", value.to_string_lossy()))
    })
}

/// Closes every fd above the report fd, so nothing the parent leaked reaches the sandbox.
fn close_inherited_fds() {
    // SAFETY: close_range only closes descriptors; none above REPORT_FD is owned by Rust code yet.
    unsafe {
        libc::syscall(libc::SYS_close_range, REPORT_FD + 1, libc::c_uint::MAX, 0);
    }
}

fn close_fd(fd: RawFd) {
    // SAFETY: `fd` is the report fd, which no Rust object owns in this process.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
}

/// Points stdio of the init processes at /dev/null, so that only the target holds the caller's pipes
/// and the caller sees end-of-file when the target closes them.
fn detach_stdio() {
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        for fd in 0..=2 {
            // SAFETY: replaces a stdio fd with a duplicate of /dev/null; no Rust object owns fds 0-2.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

/// Reports a setup error to the parent and exits; the report fd may already be gone in the parent.
fn report_and_exit(message: &str, code: i32) -> ! {
    // SAFETY: REPORT_FD was placed by the parent; it is borrowed here for one write and not closed.
    let mut report = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(REPORT_FD) });
    let _ = report.write_all(message.as_bytes());
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_end_round_trips() {
        for end in [TargetEnd::Exited(3), TargetEnd::Signaled(Signal::SIGKILL)] {
            assert_eq!(TargetEnd::decode(end.encode()), Some(end));
        }
    }
}
