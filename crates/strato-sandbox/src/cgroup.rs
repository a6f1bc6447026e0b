//! Resource limits and accounting through cgroups, v1 and v2 behind one trait.
//!
//! Every sandbox gets a cgroup named by its id under a Strato-owned parent (`strato` by default), so
//! that cleanup only ever touches directories Strato created. On v1 the sandbox joins one cgroup per
//! controller (`memory`, `cpu`, `pids`); on v2 a single cgroup carries all three.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::sys::signal::Signal;

use crate::error::{Result, SandboxError};
use crate::host::{EntryKind, Host, RealHost};

/// The CFS period used for CPU quotas: 100 ms, the kernel default.
const CPU_PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel accepts.
const MIN_CPU_QUOTA_US: u64 = 1_000;
/// How often `kill_all` re-reads the member list; processes forking while being killed need a few rounds.
const KILL_ROUNDS: usize = 64;

/// Which cgroup hierarchy a driver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// The limits written into a sandbox's cgroup.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupLimits {
    pub memory_bytes: u64,
    pub cpu_fraction: f64,
    pub max_pids: u64,
}

impl CgroupLimits {
    fn cpu_quota_us(&self) -> u64 {
        cpu_quota_us(self.cpu_fraction)
    }
}

/// The CFS quota for `fraction` of one CPU: whole microseconds per period, never below the
/// kernel's floor; a NaN fraction gets the floor, one too large for `u64` saturates.
// `as` from f64 saturates (NaN to 0) and the floor applies after: out-of-range fractions are
// handled, not wrapped.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn cpu_quota_us(fraction: f64) -> u64 {
    ((fraction * CPU_PERIOD_US as f64).round() as u64).max(MIN_CPU_QUOTA_US)
}

/// One cgroup hierarchy layout. Ids are validated sandbox ids (no `/`, no `..`).
pub trait CgroupDriver: Send + Sync + std::fmt::Debug {
    fn version(&self) -> CgroupVersion;
    /// Creates the sandbox's cgroup(s) and writes the limits.
    fn create(&self, id: &str, limits: &CgroupLimits) -> Result<()>;
    /// The `cgroup.procs` files a process writes itself into to join the sandbox's cgroup(s).
    fn membership_files(&self, id: &str) -> Vec<PathBuf>;
    /// Changes the CPU share (a fraction of one CPU) of a running sandbox.
    fn set_cpu_fraction(&self, id: &str, fraction: f64) -> Result<()>;
    /// Changes the memory limit of a running sandbox.
    fn set_memory_limit(&self, id: &str, bytes: u64) -> Result<()>;
    /// Bytes of memory charged to the sandbox now.
    fn memory_usage(&self, id: &str) -> Result<u64>;
    /// Highest memory charge since creation.
    fn memory_peak(&self, id: &str) -> Result<u64>;
    /// The file [`CgroupDriver::memory_peak`] reads, for readers that keep it open.
    fn memory_peak_file(&self, id: &str) -> PathBuf;
    /// How many processes the kernel's OOM killer killed in the sandbox.
    fn oom_kill_count(&self, id: &str) -> Result<u64>;
    /// Process ids currently in the sandbox's cgroup.
    fn member_pids(&self, id: &str) -> Result<Vec<i32>>;
    /// SIGKILLs every process in the cgroup.
    fn kill_all(&self, id: &str) -> Result<()>;
    /// Removes the cgroup(s); fails with EBUSY while processes remain. Missing directories are fine.
    fn remove(&self, id: &str) -> Result<()>;
    /// Ids of the sandbox cgroups under the parent.
    fn list(&self) -> Result<Vec<String>>;
}

/// Finds a cgroup hierarchy that can set memory, CPU and pids limits on this host.
pub fn detect_cgroup_driver(parent: &str) -> Option<Arc<dyn CgroupDriver>> {
    detect_with(Arc::new(RealHost), Path::new("/sys/fs/cgroup"), parent)
}

fn detect_with(host: Arc<dyn Host>, root: &Path, parent: &str) -> Option<Arc<dyn CgroupDriver>> {
    // v2 first: where its controllers are enabled it is the only hierarchy that can limit anything.
    for mount in [root.to_path_buf(), root.join("unified")] {
        let controllers = host
            .read_to_string(&mount.join("cgroup.controllers"))
            .unwrap_or_default();
        let names: Vec<&str> = controllers.split_whitespace().collect();
        if ["memory", "cpu", "pids"].iter().all(|c| names.contains(c)) {
            return Some(Arc::new(CgroupV2 {
                host,
                base: mount.join(parent),
            }));
        }
    }
    let v1_files = [
        "memory/memory.limit_in_bytes",
        "cpu/cpu.cfs_quota_us",
        "pids/cgroup.procs", // the root cgroup has no pids.max
    ];
    if v1_files
        .iter()
        .all(|file| host.entry_kind(&root.join(file)) != EntryKind::Missing)
    {
        return Some(Arc::new(CgroupV1 {
            host,
            root: root.to_path_buf(),
            parent: parent.to_string(),
        }));
    }
    None
}

/// cgroup v1: one directory per controller, e.g. `/sys/fs/cgroup/memory/strato/<id>`.
#[derive(Debug)]
pub struct CgroupV1 {
    host: Arc<dyn Host>,
    root: PathBuf,
    parent: String,
}

const V1_CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

impl CgroupV1 {
    fn dir(&self, controller: &str, id: &str) -> PathBuf {
        self.root.join(controller).join(&self.parent).join(id)
    }
}

impl CgroupDriver for CgroupV1 {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn create(&self, id: &str, limits: &CgroupLimits) -> Result<()> {
        for controller in V1_CONTROLLERS {
            create_dir(&*self.host, &self.dir(controller, id))?;
        }
        let memory = self.dir("memory", id);
        let bytes = limits.memory_bytes.to_string();
        write(&*self.host, &memory.join("memory.limit_in_bytes"), &bytes)?;
        // memsw exists only with swap accounting; it must be set after the plain limit (memsw >= limit).
        let memsw = memory.join("memory.memsw.limit_in_bytes");
        if self.host.entry_kind(&memsw) != EntryKind::Missing {
            write(&*self.host, &memsw, &bytes)?;
        }
        let cpu = self.dir("cpu", id);
        write(
            &*self.host,
            &cpu.join("cpu.cfs_period_us"),
            &CPU_PERIOD_US.to_string(),
        )?;
        write(
            &*self.host,
            &cpu.join("cpu.cfs_quota_us"),
            &limits.cpu_quota_us().to_string(),
        )?;
        write(
            &*self.host,
            &self.dir("pids", id).join("pids.max"),
            &limits.max_pids.to_string(),
        )
    }

    fn set_cpu_fraction(&self, id: &str, fraction: f64) -> Result<()> {
        write(
            &*self.host,
            &self.dir("cpu", id).join("cpu.cfs_quota_us"),
            &cpu_quota_us(fraction).to_string(),
        )
    }

    fn set_memory_limit(&self, id: &str, bytes: u64) -> Result<()> {
        let memory = self.dir("memory", id);
        let limit = memory.join("memory.limit_in_bytes");
        let memsw = memory.join("memory.memsw.limit_in_bytes");
        let value = bytes.to_string();
        if self.host.entry_kind(&memsw) == EntryKind::Missing {
            return write(&*self.host, &limit, &value);
        }
        // memsw >= limit at every moment: raise memsw first, lower it last.
        let current = read_number(&*self.host, &limit)?;
        if bytes >= current {
            write(&*self.host, &memsw, &value)?;
            write(&*self.host, &limit, &value)
        } else {
            write(&*self.host, &limit, &value)?;
            write(&*self.host, &memsw, &value)
        }
    }

    fn membership_files(&self, id: &str) -> Vec<PathBuf> {
        V1_CONTROLLERS
            .iter()
            .map(|controller| self.dir(controller, id).join("cgroup.procs"))
            .collect()
    }

    fn memory_usage(&self, id: &str) -> Result<u64> {
        read_number(
            &*self.host,
            &self.dir("memory", id).join("memory.usage_in_bytes"),
        )
    }

    fn memory_peak(&self, id: &str) -> Result<u64> {
        read_number(&*self.host, &self.memory_peak_file(id))
    }

    fn memory_peak_file(&self, id: &str) -> PathBuf {
        self.dir("memory", id).join("memory.max_usage_in_bytes")
    }

    fn oom_kill_count(&self, id: &str) -> Result<u64> {
        read_keyed(
            &*self.host,
            &self.dir("memory", id).join("memory.oom_control"),
            "oom_kill",
        )
    }

    fn member_pids(&self, id: &str) -> Result<Vec<i32>> {
        read_pids(&*self.host, &self.dir("pids", id).join("cgroup.procs"))
    }

    fn kill_all(&self, id: &str) -> Result<()> {
        kill_members(&*self.host, || self.member_pids(id))
    }

    fn remove(&self, id: &str) -> Result<()> {
        for controller in V1_CONTROLLERS {
            remove_dir(&*self.host, &self.dir(controller, id))?;
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>> {
        let mut ids = std::collections::BTreeSet::new();
        for controller in V1_CONTROLLERS {
            let parent = self.root.join(controller).join(&self.parent);
            let names = self
                .host
                .subdirectories(&parent)
                .map_err(|e| SandboxError::io("list", &parent, e))?;
            ids.extend(names);
        }
        Ok(ids.into_iter().collect())
    }
}

/// cgroup v2: one directory, e.g. `/sys/fs/cgroup/strato/<id>`.
#[derive(Debug)]
pub struct CgroupV2 {
    host: Arc<dyn Host>,
    base: PathBuf,
}

impl CgroupV2 {
    fn dir(&self, id: &str) -> PathBuf {
        self.base.join(id)
    }
}

impl CgroupDriver for CgroupV2 {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn create(&self, id: &str, limits: &CgroupLimits) -> Result<()> {
        create_dir(&*self.host, &self.base)?;
        // Controllers must be enabled in every ancestor's subtree_control to appear in the child.
        if let Some(mount) = self.base.parent() {
            write(
                &*self.host,
                &mount.join("cgroup.subtree_control"),
                "+memory +cpu +pids",
            )?;
        }
        write(
            &*self.host,
            &self.base.join("cgroup.subtree_control"),
            "+memory +cpu +pids",
        )?;
        let dir = self.dir(id);
        create_dir(&*self.host, &dir)?;
        write(
            &*self.host,
            &dir.join("memory.max"),
            &limits.memory_bytes.to_string(),
        )?;
        let swap = dir.join("memory.swap.max");
        if self.host.entry_kind(&swap) != EntryKind::Missing {
            write(&*self.host, &swap, "0")?;
        }
        write(
            &*self.host,
            &dir.join("cpu.max"),
            &format!("{} {}", limits.cpu_quota_us(), CPU_PERIOD_US),
        )?;
        write(
            &*self.host,
            &dir.join("pids.max"),
            &limits.max_pids.to_string(),
        )
    }

    fn membership_files(&self, id: &str) -> Vec<PathBuf> {
        vec![self.dir(id).join("cgroup.procs")]
    }

    fn set_cpu_fraction(&self, id: &str, fraction: f64) -> Result<()> {
        write(
            &*self.host,
            &self.dir(id).join("cpu.max"),
            &format!("{} {}", cpu_quota_us(fraction), CPU_PERIOD_US),
        )
    }

    fn set_memory_limit(&self, id: &str, bytes: u64) -> Result<()> {
        write(
            &*self.host,
            &self.dir(id).join("memory.max"),
            &bytes.to_string(),
        )
    }

    fn memory_usage(&self, id: &str) -> Result<u64> {
        read_number(&*self.host, &self.dir(id).join("memory.current"))
    }

    fn memory_peak(&self, id: &str) -> Result<u64> {
        read_number(&*self.host, &self.memory_peak_file(id))
    }

    fn memory_peak_file(&self, id: &str) -> PathBuf {
        self.dir(id).join("memory.peak")
    }

    fn oom_kill_count(&self, id: &str) -> Result<u64> {
        read_keyed(&*self.host, &self.dir(id).join("memory.events"), "oom_kill")
    }

    fn member_pids(&self, id: &str) -> Result<Vec<i32>> {
        read_pids(&*self.host, &self.dir(id).join("cgroup.procs"))
    }

    fn kill_all(&self, id: &str) -> Result<()> {
        let kill_file = self.dir(id).join("cgroup.kill");
        if self.host.entry_kind(&kill_file) != EntryKind::Missing {
            return write(&*self.host, &kill_file, "1");
        }
        kill_members(&*self.host, || self.member_pids(id))
    }

    fn remove(&self, id: &str) -> Result<()> {
        remove_dir(&*self.host, &self.dir(id))
    }

    fn list(&self) -> Result<Vec<String>> {
        self.host
            .subdirectories(&self.base)
            .map_err(|e| SandboxError::io("list", &self.base, e))
    }
}

/// Without an atomic cgroup kill, processes are killed one by one until the member list is empty.
fn kill_members(host: &dyn Host, members: impl Fn() -> Result<Vec<i32>>) -> Result<()> {
    for _ in 0..KILL_ROUNDS {
        let pids = match members() {
            Ok(pids) => pids,
            // The cgroup is already gone: nothing left to kill.
            Err(SandboxError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        if pids.is_empty() {
            return Ok(());
        }
        for pid in pids {
            // The process may have exited since the list was read.
            let _ = host.kill(pid, Signal::SIGKILL);
        }
    }
    Ok(())
}

fn create_dir(host: &dyn Host, path: &Path) -> Result<()> {
    host.create_dir_all(path)
        .map_err(|e| SandboxError::io("create cgroup", path, e))
}

fn remove_dir(host: &dyn Host, path: &Path) -> Result<()> {
    match host.remove_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(SandboxError::io("remove cgroup", path, e))
        }
        _ => Ok(()),
    }
}

fn write(host: &dyn Host, path: &Path, value: &str) -> Result<()> {
    host.write_file(path, value.as_bytes())
        .map_err(|e| SandboxError::io("write", path, e))
}

fn read(host: &dyn Host, path: &Path) -> Result<String> {
    host.read_to_string(path)
        .map_err(|e| SandboxError::io("read", path, e))
}

fn read_number(host: &dyn Host, path: &Path) -> Result<u64> {
    let text = read(host, path)?;
    text.trim()
        .parse()
        .map_err(|_| SandboxError::io("parse", path, io::Error::from(io::ErrorKind::InvalidData)))
}

/// Reads `key N` from a flat keyed file such as `memory.events`; a missing key counts as 0.
fn read_keyed(host: &dyn Host, path: &Path, key: &str) -> Result<u64> {
    let text = read(host, path)?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(name, _)| *name == key)
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0))
}

fn read_pids(host: &dyn Host, path: &Path) -> Result<Vec<i32>> {
    let text = read(host, path)?;
    Ok(text
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::{FakeHost, HostCall};

    fn limits() -> CgroupLimits {
        CgroupLimits {
            memory_bytes: 64 << 20,
            cpu_fraction: 0.25,
            max_pids: 32,
        }
    }

    fn v1_host() -> Arc<FakeHost> {
        Arc::new(
            FakeHost::default()
                .with_entry("/cg/memory/memory.limit_in_bytes", EntryKind::File)
                .with_entry("/cg/cpu/cpu.cfs_quota_us", EntryKind::File)
                .with_entry("/cg/pids/cgroup.procs", EntryKind::File)
                .with_entry(
                    "/cg/memory/strato/a/memory.memsw.limit_in_bytes",
                    EntryKind::File,
                )
                .with_file("/cg/unified/cgroup.controllers", ""),
        )
    }

    fn writes(calls: &[HostCall]) -> Vec<(String, String)> {
        calls
            .iter()
            .filter_map(|call| match call {
                HostCall::Write(path, value) => Some((path.display().to_string(), value.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn v1_cpu_share_changes_only_the_quota() {
        let host = v1_host();
        let driver = detect_with(host.clone(), Path::new("/cg"), "strato").expect("driver");
        driver.set_cpu_fraction("a", 0.5).expect("set");
        assert_eq!(
            writes(&host.calls()),
            vec![("/cg/cpu/strato/a/cpu.cfs_quota_us".into(), "50000".into())]
        );
    }

    #[test]
    fn v1_is_chosen_when_v2_has_no_controllers() {
        let driver = detect_with(v1_host(), Path::new("/cg"), "strato").expect("driver");
        assert_eq!(driver.version(), CgroupVersion::V1);
    }

    #[test]
    fn v2_is_chosen_when_its_controllers_are_enabled() {
        let host = Arc::new(
            FakeHost::default().with_file("/cg/cgroup.controllers", "cpuset cpu io memory pids"),
        );
        let driver = detect_with(host, Path::new("/cg"), "strato").expect("driver");
        assert_eq!(driver.version(), CgroupVersion::V2);
    }

    #[test]
    fn no_driver_without_any_usable_hierarchy() {
        assert!(detect_with(Arc::new(FakeHost::default()), Path::new("/cg"), "strato").is_none());
    }

    #[test]
    fn v1_limits_are_written_memory_then_memsw_then_cpu_then_pids() {
        let host = v1_host();
        let driver = detect_with(host.clone(), Path::new("/cg"), "strato").expect("driver");
        driver.create("a", &limits()).expect("create");
        assert_eq!(
            writes(&host.calls()),
            vec![
                (
                    "/cg/memory/strato/a/memory.limit_in_bytes".into(),
                    "67108864".into()
                ),
                (
                    "/cg/memory/strato/a/memory.memsw.limit_in_bytes".into(),
                    "67108864".into()
                ),
                ("/cg/cpu/strato/a/cpu.cfs_period_us".into(), "100000".into()),
                ("/cg/cpu/strato/a/cpu.cfs_quota_us".into(), "25000".into()),
                ("/cg/pids/strato/a/pids.max".into(), "32".into()),
            ]
        );
    }

    #[test]
    fn v2_limits_use_cpu_max_and_forbid_swap() {
        let host = Arc::new(
            FakeHost::default()
                .with_file("/cg/cgroup.controllers", "memory cpu pids")
                .with_entry("/cg/strato/a/memory.swap.max", EntryKind::File),
        );
        let driver = detect_with(host.clone(), Path::new("/cg"), "strato").expect("driver");
        driver.create("a", &limits()).expect("create");
        let written = writes(&host.calls());
        assert!(written.contains(&("/cg/strato/a/cpu.max".into(), "25000 100000".into())));
        assert!(written.contains(&("/cg/strato/a/memory.swap.max".into(), "0".into())));
        assert!(written.contains(&(
            "/cg/strato/cgroup.subtree_control".into(),
            "+memory +cpu +pids".into()
        )));
    }

    #[test]
    fn v1_oom_kill_count_reads_oom_control() {
        let host = Arc::new(
            FakeHost::default()
                .with_entry("/cg/memory/memory.limit_in_bytes", EntryKind::File)
                .with_entry("/cg/cpu/cpu.cfs_quota_us", EntryKind::File)
                .with_entry("/cg/pids/cgroup.procs", EntryKind::File)
                .with_file(
                    "/cg/memory/strato/a/memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
                ),
        );
        let driver = detect_with(host, Path::new("/cg"), "strato").expect("driver");
        assert_eq!(driver.oom_kill_count("a").expect("count"), 2);
    }

    #[test]
    fn v1_kill_all_signals_every_member() {
        let host = Arc::new(
            FakeHost::default()
                .with_entry("/cg/memory/memory.limit_in_bytes", EntryKind::File)
                .with_entry("/cg/cpu/cpu.cfs_quota_us", EntryKind::File)
                .with_entry("/cg/pids/cgroup.procs", EntryKind::File)
                .with_file("/cg/pids/strato/a/cgroup.procs", "10\n11\n"),
        );
        let driver = detect_with(host.clone(), Path::new("/cg"), "strato").expect("driver");
        driver.kill_all("a").expect("kill");
        let calls = host.calls();
        assert!(calls.contains(&HostCall::Kill(10, Signal::SIGKILL)));
        assert!(calls.contains(&HostCall::Kill(11, Signal::SIGKILL)));
    }

    #[test]
    fn v1_remove_touches_only_the_sandbox_directories() {
        let host = v1_host();
        let driver = detect_with(host.clone(), Path::new("/cg"), "strato").expect("driver");
        driver.remove("a").expect("remove");
        let removed: Vec<_> = host
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                HostCall::RemoveDir(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(
            removed,
            vec![
                PathBuf::from("/cg/memory/strato/a"),
                PathBuf::from("/cg/cpu/strato/a"),
                PathBuf::from("/cg/pids/strato/a"),
            ]
        );
    }

    #[test]
    fn tiny_cpu_fraction_gets_the_minimum_quota() {
        let limits = CgroupLimits {
            cpu_fraction: 0.001,
            ..limits()
        };
        assert_eq!(limits.cpu_quota_us(), MIN_CPU_QUOTA_US);
    }
}
