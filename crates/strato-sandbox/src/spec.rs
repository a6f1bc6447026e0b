//! What the caller asks for: the program, its environment, its limits and what it may see.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, SandboxError};

/// A host path made visible inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// The path on the host.
    pub source: PathBuf,
    /// Where the sandboxed process sees it (absolute).
    pub target: PathBuf,
    /// Whether the sandboxed process may write to it.
    pub writable: bool,
}

impl BindMount {
    /// A bind the sandbox can only read, the usual case for code and runtimes.
    pub fn read_only(source: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        BindMount {
            source: source.into(),
            target: target.into(),
            writable: false,
        }
    }

    /// A bind the sandbox may write to.
    pub fn writable(source: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        BindMount {
            source: source.into(),
            target: target.into(),
            writable: true,
        }
    }
}

/// The unprivileged identity the sandboxed process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxUser {
    pub uid: u32,
    pub gid: u32,
    /// The name written to the sandbox's generated `/etc/passwd` and `/etc/group`.
    pub name: String,
}

impl Default for SandboxUser {
    fn default() -> Self {
        SandboxUser {
            uid: 993,
            gid: 993,
            name: "sandbox".to_string(),
        }
    }
}

/// Resource limits of one sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceLimits {
    /// Memory (and, where the host accounts swap, memory plus swap) in bytes; exceeding it OOM-kills.
    pub memory_bytes: u64,
    /// Share of one CPU, e.g. `0.5` for half a core or `2.0` for two cores.
    pub cpu_fraction: f64,
    /// Maximum number of processes and threads.
    pub max_pids: u64,
    /// Size of the sandbox's private `/tmp` (and `/dev/shm`) tmpfs in bytes.
    pub tmp_bytes: u64,
    /// RLIMIT_NOFILE of the sandboxed process.
    pub max_open_files: u64,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        ResourceLimits {
            memory_bytes: 128 * 1024 * 1024,
            cpu_fraction: 1.0,
            max_pids: 1024,
            tmp_bytes: 512 * 1024 * 1024,
            max_open_files: 1024,
        }
    }
}

/// One process tree to start in a sandbox.
///
/// Paths (`program`, `cwd`, bind targets) are as the sandboxed process sees them. In
/// [`SandboxMode::Fallback`](crate::SandboxMode::Fallback) there is no private root, so the sandbox
/// translates `program` and `cwd` that fall under a bind target to the bind's host path; see
/// [`SandboxSpec::host_path`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// Unique among live sandboxes; names the cgroup. ASCII letters, digits, `-` and `_`, at most 64.
    pub id: String,
    /// The program to execute; without a `/` it is searched in the `PATH` of `env`.
    pub program: PathBuf,
    /// Arguments after the program name (argv[0] is the program).
    pub args: Vec<String>,
    /// The complete environment; nothing is inherited from the host.
    pub env: Vec<(String, String)>,
    /// Working directory of the program.
    pub cwd: PathBuf,
    pub user: SandboxUser,
    pub hostname: String,
    pub limits: ResourceLimits,
    /// Caller-given binds, e.g. code at `/var/task` read-only.
    pub mounts: Vec<BindMount>,
    /// Extra host paths made visible read-only at the same place (e.g. `/etc/pki`).
    pub readonly_host_paths: Vec<PathBuf>,
    /// The sandbox's `/etc/resolv.conf`; `None` copies the host's.
    pub resolv_conf: Option<String>,
}

impl SandboxSpec {
    /// A spec with default limits and identity; fill in the rest with struct update syntax.
    pub fn new(id: impl Into<String>, program: impl Into<PathBuf>) -> Self {
        SandboxSpec {
            id: id.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: PathBuf::from("/"),
            user: SandboxUser::default(),
            hostname: "sandbox".to_string(),
            limits: ResourceLimits::default(),
            mounts: Vec::new(),
            readonly_host_paths: Vec::new(),
            resolv_conf: None,
        }
    }

    /// Maps a path as seen inside the sandbox to the host path behind it, through the caller's
    /// binds; paths under no bind are returned unchanged. Fallback mode runs programs with host paths.
    pub fn host_path(&self, sandbox_path: &Path) -> PathBuf {
        self.mounts
            .iter()
            .filter_map(|bind| {
                sandbox_path
                    .strip_prefix(&bind.target)
                    .ok()
                    .map(|rest| (bind.target.components().count(), bind.source.join(rest)))
            })
            .max_by_key(|(depth, _)| *depth)
            .map(|(_, host)| host)
            .unwrap_or_else(|| sandbox_path.to_path_buf())
    }

    /// Refuses specs that could escape the private root or collide with another sandbox's cgroup.
    pub fn validate(&self) -> Result<()> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok {
            return Err(SandboxError::InvalidSpec(format!(
                "id {:?} must be 1-64 ASCII letters, digits, '-' or '_'",
                self.id
            )));
        }
        let sandbox_paths = self
            .mounts
            .iter()
            .map(|bind| &bind.target)
            .chain(self.readonly_host_paths.iter())
            .chain(std::iter::once(&self.cwd));
        for path in sandbox_paths {
            check_absolute_and_plain(path)?;
        }
        if self.limits.memory_bytes == 0 || self.limits.max_pids == 0 || self.limits.tmp_bytes == 0
        {
            return Err(SandboxError::InvalidSpec(
                "memory, pids and tmp limits must be positive".to_string(),
            ));
        }
        if !(self.limits.cpu_fraction.is_finite() && self.limits.cpu_fraction > 0.0) {
            return Err(SandboxError::InvalidSpec(format!(
                "cpu fraction {} must be a positive number",
                self.limits.cpu_fraction
            )));
        }
        if self.user.uid == 0 || self.user.gid == 0 {
            return Err(SandboxError::InvalidSpec(
                "the sandboxed process must not run as root".to_string(),
            ));
        }
        Ok(())
    }
}

/// Sandbox paths must be absolute and free of `..`, so that joining them under the new root stays inside it.
fn check_absolute_and_plain(path: &Path) -> Result<()> {
    let plain = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err(SandboxError::InvalidSpec(format!(
            "path {} must be absolute without '.' or '..'",
            path.display()
        )))
    }
}

/// What the init program needs to build the sandbox, handed over as JSON in its environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InitSpec {
    pub(crate) rootfs: RootfsSpec,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: PathBuf,
    pub(crate) user: SandboxUser,
    pub(crate) hostname: String,
    pub(crate) max_open_files: u64,
}

/// The inputs of the private root file system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RootfsSpec {
    /// Host directory the new root's tmpfs is mounted on before `pivot_root` (private to the mount ns).
    pub(crate) mount_point: PathBuf,
    pub(crate) user: SandboxUser,
    pub(crate) hostname: String,
    pub(crate) mounts: Vec<BindMount>,
    pub(crate) readonly_host_paths: Vec<PathBuf>,
    pub(crate) tmp_bytes: u64,
    /// `/etc/resolv.conf`; the host's when `None`.
    pub(crate) resolv_conf: Option<String>,
}

impl InitSpec {
    pub(crate) fn from_spec(spec: &SandboxSpec, rootfs_mount_point: &Path) -> Self {
        InitSpec {
            rootfs: RootfsSpec {
                mount_point: rootfs_mount_point.to_path_buf(),
                user: spec.user.clone(),
                hostname: spec.hostname.clone(),
                mounts: spec.mounts.clone(),
                readonly_host_paths: spec.readonly_host_paths.clone(),
                tmp_bytes: spec.limits.tmp_bytes,
                resolv_conf: spec.resolv_conf.clone(),
            },
            program: spec.program.clone(),
            args: spec.args.clone(),
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
            user: spec.user.clone(),
            hostname: spec.hostname.clone(),
            max_open_files: spec.limits.max_open_files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_path_follows_the_deepest_bind() {
        let spec = SandboxSpec {
            mounts: vec![
                BindMount::read_only("/data/code", "/var/task"),
                BindMount::read_only("/data/layer", "/var/task/lib"),
            ],
            ..SandboxSpec::new("a", "/bin/true")
        };
        assert_eq!(
            spec.host_path(Path::new("/var/task/lib/x.so")),
            PathBuf::from("/data/layer/x.so")
        );
        assert_eq!(
            spec.host_path(Path::new("/var/task/index.js")),
            PathBuf::from("/data/code/index.js")
        );
        assert_eq!(
            spec.host_path(Path::new("/usr/bin/env")),
            PathBuf::from("/usr/bin/env")
        );
    }

    #[test]
    fn bind_target_with_dotdot_is_refused() {
        let spec = SandboxSpec {
            mounts: vec![BindMount::read_only("/x", "/var/../etc")],
            ..SandboxSpec::new("a", "/bin/true")
        };
        assert!(matches!(spec.validate(), Err(SandboxError::InvalidSpec(_))));
    }

    #[test]
    fn id_with_slash_is_refused() {
        let spec = SandboxSpec::new("../memory", "/bin/true");
        assert!(matches!(spec.validate(), Err(SandboxError::InvalidSpec(_))));
    }

    #[test]
    fn root_user_is_refused() {
        let spec = SandboxSpec {
            user: SandboxUser {
                uid: 0,
                gid: 0,
                name: "root".to_string(),
            },
            ..SandboxSpec::new("a", "/bin/true")
        };
        assert!(matches!(spec.validate(), Err(SandboxError::InvalidSpec(_))));
    }
}
