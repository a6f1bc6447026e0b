//! Starting a sandboxed process and the handle the caller keeps for it.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt as _;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{pipe2, Pid};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use crate::cgroup::{CgroupDriver, CgroupLimits};
use crate::error::{Result, SandboxError};
use crate::host::RealHost;
use crate::init::{REPORT_FD, SPEC_ENV};
use crate::netns::NetNamespace;
use crate::spec::{InitSpec, SandboxSpec};
use crate::{SandboxConfig, SandboxMode};

/// Attempts at removing a cgroup whose last processes are still exiting.
const REMOVE_ATTEMPTS: usize = 400;
/// Pause between those attempts.
const REMOVE_PAUSE: Duration = Duration::from_millis(5);

/// How a sandboxed process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxExit {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal (9 for an OOM kill or [`SandboxedProcess::kill`]).
    Signal(i32),
}

impl SandboxExit {
    /// Exit code 0.
    pub fn success(self) -> bool {
        self == SandboxExit::Code(0)
    }

    fn from_status(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => SandboxExit::Code(code),
            (None, Some(signal)) => SandboxExit::Signal(signal),
            (None, None) => SandboxExit::Code(-1),
        }
    }
}

/// A sandbox's cgroup, removed (after killing what is left in it) when dropped.
#[derive(Debug)]
struct CgroupLease {
    driver: Arc<dyn CgroupDriver>,
    id: String,
    removed: bool,
}

impl CgroupLease {
    /// Kills what is left and removes the cgroup; false while exiting processes still hold it.
    fn try_remove(&self) -> Result<bool> {
        self.driver.kill_all(&self.id)?;
        match self.driver.remove(&self.id) {
            Ok(()) => Ok(true),
            Err(SandboxError::Io { source, .. }) if source.raw_os_error() == Some(libc::EBUSY) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn remove_blocking(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        for _ in 0..REMOVE_ATTEMPTS {
            if self.try_remove()? {
                self.removed = true;
                return Ok(());
            }
            std::thread::sleep(REMOVE_PAUSE);
        }
        Err(self.still_busy())
    }

    fn still_busy(&self) -> SandboxError {
        SandboxError::sys(
            "remove cgroup",
            io::Error::other(format!("cgroup {} still has processes", self.id)),
        )
    }
}

impl Drop for CgroupLease {
    fn drop(&mut self) {
        if let Err(e) = self.remove_blocking() {
            tracing::warn!(id = %self.id, error = %e, "removing sandbox cgroup failed");
        }
    }
}

/// A running sandboxed process tree.
///
/// Dropping it kills the tree and removes its cgroup and network namespace (blocking briefly while
/// the killed processes exit); [`SandboxedProcess::destroy`] does the same without blocking a thread.
#[derive(Debug)]
pub struct SandboxedProcess {
    id: String,
    mode: SandboxMode,
    pid: u32,
    child: Child,
    exit: Option<SandboxExit>,
    // Field order is drop order: the cgroup goes (killing everything) before the network.
    cgroup: Option<CgroupLease>,
    network: NetNamespace,
}

impl SandboxedProcess {
    /// The sandbox id given in the spec.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Host pid of the process the caller waits on (the init in strong mode, the program in fallback).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How this process is isolated.
    pub fn mode(&self) -> SandboxMode {
        self.mode
    }

    /// The network the process lives in; bind its listeners with [`NetNamespace::bind_tcp`].
    pub fn network(&self) -> &NetNamespace {
        &self.network
    }

    /// The write end of the program's stdin (once).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// The read end of the program's stdout (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// The read end of the program's stderr (once).
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// Waits until the program ends; in strong mode its whole pid namespace ends with it.
    pub async fn wait(&mut self) -> Result<SandboxExit> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        let status = self
            .child
            .wait()
            .await
            .map_err(|e| SandboxError::sys("wait", e))?;
        let exit = SandboxExit::from_status(status);
        self.exit = Some(exit);
        Ok(exit)
    }

    /// The exit, if the program has ended.
    pub fn try_wait(&mut self) -> Result<Option<SandboxExit>> {
        if self.exit.is_none() {
            let status = self
                .child
                .try_wait()
                .map_err(|e| SandboxError::sys("wait", e))?;
            self.exit = status.map(SandboxExit::from_status);
        }
        Ok(self.exit)
    }

    /// SIGKILLs the whole tree: every process of the cgroup in strong mode, the process group in
    /// fallback. Returns once the signals are sent; `wait` observes the end.
    pub fn kill(&mut self) -> Result<()> {
        match &self.cgroup {
            Some(lease) => lease.driver.kill_all(&lease.id),
            // Lossless: the kernel's pids are below 2^22 (PID_MAX_LIMIT), well inside `i32`.
            None => match killpg(Pid::from_raw(self.pid.cast_signed()), Signal::SIGKILL) {
                Err(nix::errno::Errno::ESRCH) | Ok(()) => Ok(()),
                Err(e) => Err(SandboxError::sys("killpg", e)),
            },
        }
    }

    /// Changes the CPU share of the running sandbox (strong mode; fallback has no CPU limit).
    pub fn set_cpu_fraction(&self, fraction: f64) -> Result<()> {
        match &self.cgroup {
            Some(lease) => lease.driver.set_cpu_fraction(&lease.id, fraction),
            None => Ok(()),
        }
    }

    /// Changes the memory limit of the running sandbox (strong mode; fallback's rlimit is fixed at
    /// start).
    pub fn set_memory_limit(&self, bytes: u64) -> Result<()> {
        match &self.cgroup {
            Some(lease) => lease.driver.set_memory_limit(&lease.id, bytes),
            None => Ok(()),
        }
    }

    /// Mounts host directories into the running sandbox's file system (strong mode only), each
    /// read-only over the mount point already at its target, and resizes its `/tmp`. This is how a
    /// pre-started sandbox (a stem cell) receives a function's code after its runtime started.
    ///
    /// On failure ([`SandboxError::Attach`] names the step) nothing of it stays mounted.
    pub fn attach(&self, mounts: &[crate::spec::BindMount], tmp_bytes: Option<u64>) -> Result<()> {
        if self.mode != SandboxMode::Strong {
            return Err(SandboxError::InvalidSpec(
                "mounts can be attached only to namespace sandboxes".into(),
            ));
        }
        crate::attach::attach_mounts(&RealHost, self.pid, mounts, tmp_bytes)
    }

    /// Bytes of memory the sandbox uses now (fallback: resident set of the program alone).
    pub fn memory_usage(&self) -> Result<u64> {
        match &self.cgroup {
            Some(lease) => lease.driver.memory_usage(&lease.id),
            None => read_proc_status_kib(self.pid, "VmRSS:"),
        }
    }

    /// Highest memory use so far (fallback: peak resident set of the program alone).
    pub fn memory_peak(&self) -> Result<u64> {
        match &self.cgroup {
            Some(lease) => lease.driver.memory_peak(&lease.id),
            None => read_proc_status_kib(self.pid, "VmHWM:"),
        }
    }

    /// A reader of [`SandboxedProcess::memory_peak`] that keeps its file open, for callers that
    /// ask after every invocation: one `pread` per reading instead of open, stat, read and close
    /// of a cgroup file (five system calls and a path walk through cgroupfs).
    pub fn memory_peak_gauge(&self) -> Result<MemoryPeakGauge> {
        let source = match &self.cgroup {
            Some(lease) => {
                let path = lease.driver.memory_peak_file(&lease.id);
                let file =
                    std::fs::File::open(&path).map_err(|e| SandboxError::io("open", &path, e))?;
                PeakSource::Cgroup { file, path }
            }
            None => PeakSource::Process(self.pid),
        };
        Ok(MemoryPeakGauge { source })
    }

    /// Whether the kernel OOM-killed a process of the sandbox. Always false in fallback mode, where
    /// exceeding the memory rlimit makes allocations fail instead.
    pub fn oom_killed(&self) -> Result<bool> {
        match &self.cgroup {
            Some(lease) => Ok(lease.driver.oom_kill_count(&lease.id)? > 0),
            None => Ok(false),
        }
    }

    /// Kills the tree, waits for it, and removes the cgroup and the network namespace.
    ///
    /// The removal runs on tokio's blocking pool: deleting a veth waits for the kernel's RCU grace
    /// periods (milliseconds), which must not stall an async worker.
    pub async fn destroy(mut self) -> Result<SandboxExit> {
        self.kill()?;
        let exit = self.wait().await?;
        let lease = self.cgroup.take();
        let network = std::mem::replace(&mut self.network, NetNamespace::host());
        tokio::task::spawn_blocking(move || {
            let removed = lease
                .map(|mut lease| lease.remove_blocking())
                .unwrap_or(Ok(()));
            drop(network);
            removed
        })
        .await
        .map_err(|e| SandboxError::sys("cleanup task", io::Error::other(e.to_string())))??;
        Ok(exit)
    }
}

impl Drop for SandboxedProcess {
    fn drop(&mut self) {
        if self.exit.is_none() {
            if let Err(e) = self.kill() {
                tracing::warn!(id = %self.id, error = %e, "killing sandbox on drop failed");
            }
        }
    }
}

/// Reads a sandbox's peak memory on demand; see [`SandboxedProcess::memory_peak_gauge`]. Once
/// the sandbox's cgroup is gone its readings fail.
#[derive(Debug)]
pub struct MemoryPeakGauge {
    source: PeakSource,
}

#[derive(Debug)]
enum PeakSource {
    Cgroup {
        file: std::fs::File,
        path: PathBuf,
    },
    /// Fallback mode: the program's own peak resident set.
    Process(u32),
}

impl MemoryPeakGauge {
    /// Highest memory use so far, in bytes.
    pub fn read(&self) -> Result<u64> {
        match &self.source {
            PeakSource::Cgroup { file, path } => {
                // A cgroup file is regenerated for every read from offset 0.
                let mut buf = [0u8; 32];
                let n = file
                    .read_at(&mut buf, 0)
                    .map_err(|e| SandboxError::io("read", path, e))?;
                std::str::from_utf8(&buf[..n])
                    .ok()
                    .and_then(|text| text.trim().parse().ok())
                    .ok_or_else(|| {
                        SandboxError::io("parse", path, io::Error::from(io::ErrorKind::InvalidData))
                    })
            }
            PeakSource::Process(pid) => read_proc_status_kib(*pid, "VmHWM:"),
        }
    }
}

fn read_proc_status_kib(pid: u32, key: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| SandboxError::io("read", &path, e))?;
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .ok_or_else(|| {
            SandboxError::io("parse", &path, io::Error::from(io::ErrorKind::InvalidData))
        })
}

/// Strong mode: cgroups, namespaces, private root, dropped privileges and seccomp via the init program.
pub(crate) async fn spawn_strong(
    config: &SandboxConfig,
    driver: &Arc<dyn CgroupDriver>,
    spec: SandboxSpec,
    network: NetNamespace,
) -> Result<SandboxedProcess> {
    spec.validate()?;
    let net_fd = network
        .namespace_fd()
        .map(AsRawFd::as_raw_fd)
        .ok_or_else(|| {
            SandboxError::InvalidSpec("strong mode needs an isolated network namespace".to_string())
        })?;
    let limits = CgroupLimits {
        memory_bytes: spec.limits.memory_bytes,
        cpu_fraction: spec.limits.cpu_fraction,
        max_pids: spec.limits.max_pids,
    };
    let lease = CgroupLease {
        driver: Arc::clone(driver),
        id: spec.id.clone(),
        removed: false,
    };
    driver.create(&spec.id, &limits)?;
    let membership: Vec<OwnedFd> = driver
        .membership_files(&spec.id)
        .into_iter()
        .map(|path| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map(OwnedFd::from)
                .map_err(|e| SandboxError::io("open", &path, e))
        })
        .collect::<Result<_>>()?;
    let (report_read, report_write) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| SandboxError::sys("pipe2", e))?;
    let init_spec = serde_json::to_string(&InitSpec::from_spec(&spec, &config.rootfs_mount_point))?;

    let mut command = Command::new(&config.init_program);
    command
        .args(&config.init_args)
        .env_clear()
        .env(SPEC_ENV, init_spec)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let membership_fds: Vec<RawFd> = membership.iter().map(AsRawFd::as_raw_fd).collect();
    let report_fd = report_write.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // system calls (write, setns, dup2, fcntl) on fds that stay open in the parent until spawn returns.
    unsafe {
        command.pre_exec(move || enter_sandbox(&membership_fds, net_fd, report_fd));
    }
    let mut child = command.spawn().map_err(|source| SandboxError::SpawnInit {
        path: config.init_program.clone(),
        source,
    })?;
    drop(report_write);
    drop(membership);

    let mut report = String::new();
    let mut receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(report_read)
        .map_err(|e| SandboxError::sys("report pipe", e))?;
    receiver
        .read_to_string(&mut report)
        .await
        .map_err(|e| SandboxError::sys("read setup report", e))?;
    if !report.is_empty() {
        let _ = lease.driver.kill_all(&lease.id);
        let _ = child.wait().await;
        return Err(SandboxError::SetupFailed(report));
    }
    Ok(SandboxedProcess {
        id: spec.id,
        mode: SandboxMode::Strong,
        pid: child.id().unwrap_or_default(),
        child,
        exit: None,
        cgroup: Some(lease),
        network,
    })
}

/// Runs in the forked child before it executes the init: join the cgroups first (so everything is
/// accounted), then the network namespace, then put the report pipe at its well-known fd.
///
/// These calls stay raw `libc` instead of going through [`Host`](crate::host::Host): between `fork`
/// and `exec` of a multi-threaded parent only async-signal-safe code may run, and a `&dyn Host`
/// promises no such thing (the test fake locks mutexes and allocates, which could deadlock on a lock
/// another thread held at the fork). The init's setup report covers them end to end.
fn enter_sandbox(membership_fds: &[RawFd], net_fd: RawFd, report_fd: RawFd) -> io::Result<()> {
    for &fd in membership_fds {
        // Writing "0" to cgroup.procs moves the writing process.
        // SAFETY: `fd` is an open cgroup.procs file; the buffer is a valid 1-byte slice.
        if unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: `net_fd` is an open network namespace fd owned by the parent's NetNamespace.
    if unsafe { libc::setns(net_fd, libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if report_fd == REPORT_FD {
        // Already in place; it only needs to survive exec.
        // SAFETY: plain fcntl on an fd this process owns.
        if unsafe { libc::fcntl(REPORT_FD, libc::F_SETFD, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
    // SAFETY: dup2 onto the well-known fd; the duplicate does not carry close-on-exec.
    } else if unsafe { libc::dup2(report_fd, REPORT_FD) } != REPORT_FD {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Fallback mode: a plain child process in its own process group, limited by rlimits only.
pub(crate) async fn spawn_fallback(
    spec: SandboxSpec,
    network: NetNamespace,
) -> Result<SandboxedProcess> {
    spec.validate()?;
    let program = spec.host_path(&spec.program);
    let cwd = spec.host_path(&spec.cwd);
    let limits = spec.limits.clone();
    let mut command = Command::new(&program);
    command
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // system calls (setsid, prctl, setrlimit).
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid()?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            setrlimit(
                Resource::RLIMIT_DATA,
                limits.memory_bytes,
                limits.memory_bytes,
            )?;
            setrlimit(Resource::RLIMIT_NPROC, limits.max_pids, limits.max_pids)?;
            setrlimit(
                Resource::RLIMIT_NOFILE,
                limits.max_open_files,
                limits.max_open_files,
            )?;
            Ok(())
        });
    }
    let child = command.spawn().map_err(|source| SandboxError::SpawnInit {
        path: program.clone(),
        source,
    })?;
    Ok(SandboxedProcess {
        id: spec.id,
        mode: SandboxMode::Fallback,
        pid: child.id().unwrap_or_default(),
        child,
        exit: None,
        cgroup: None,
        network,
    })
}
