//! Isolation of one process tree: namespaces, cgroups, seccomp, a private root file system and a
//! private network.
//!
//! This crate knows nothing about what it runs. A [`Sandbox`] is created once per host process with
//! [`Sandbox::detect`], which picks [`SandboxMode::Strong`] (root, namespaces, cgroups) or, where the
//! host cannot provide those, [`SandboxMode::Fallback`] (plain child processes with rlimits) together
//! with a warning to show loudly. Each sandboxed process tree is then started with [`Sandbox::spawn`].
//!
//! # The init program
//!
//! In strong mode the sandbox re-executes an init program (the embedding binary itself, e.g. with a
//! hidden `__sandbox-init` subcommand) that must call [`sandbox_init_main`] before doing anything
//! else. It builds the sandbox from the inside, becomes the parent of the target program in the new
//! pid namespace, and exits like the target did. Point [`SandboxConfig::init_program`] and
//! [`SandboxConfig::init_args`] at it.
//!
//! # Usage
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use strato_sandbox::{BindMount, Sandbox, SandboxConfig, SandboxMode, SandboxSpec};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // In main(), before anything else:
//! // if std::env::args().nth(1).as_deref() == Some("__sandbox-init") {
//! //     strato_sandbox::sandbox_init_main()
//! // }
//! let config = SandboxConfig::new(std::env::current_exe()?, vec!["__sandbox-init".into()]);
//! let sandbox = Sandbox::detect(config)?;
//! for warning in sandbox.warnings() {
//!     eprintln!("WARNING: {warning}");
//! }
//!
//! // A network first, so the API the program talks to listens inside it before the program starts.
//! let network = sandbox.take_network()?;
//! let listener = network.bind_tcp("127.0.0.1:9001".parse::<SocketAddr>()?)?;
//! let api_address = match sandbox.mode() {
//!     SandboxMode::Strong => "127.0.0.1:9001".to_string(),
//!     SandboxMode::Fallback => listener.local_addr()?.to_string(),
//! };
//! listener.set_nonblocking(true)?;
//! let _listener = tokio::net::TcpListener::from_std(listener)?; // serve it from tokio
//!
//! let spec = SandboxSpec {
//!     args: vec!["/var/task/main.py".into()],
//!     env: vec![("API".into(), api_address), ("PATH".into(), "/usr/bin:/bin".into())],
//!     cwd: "/var/task".into(),
//!     mounts: vec![BindMount::read_only("/srv/code/abc", "/var/task")],
//!     ..SandboxSpec::new("instance-1", "python3")
//! };
//! let mut process = sandbox.spawn(spec, network).await?;
//! let _stdout = process.take_stdout(); // tokio AsyncRead: the program's log lines
//! let exit = process.wait().await?;
//! println!("{exit:?}, peak {} bytes, oom killed {}", process.memory_peak()?, process.oom_killed()?);
//! process.destroy().await?; // or just drop it (which blocks briefly)
//! # Ok(()) }
//! ```

mod attach;
mod cgroup;
mod error;
mod host;
mod init;
mod netns;
mod process;
mod rootfs;
mod seccomp;
mod spec;

use std::path::PathBuf;
use std::sync::Arc;

pub use attach::AttachStep;
pub use cgroup::{
    detect_cgroup_driver, CgroupDriver, CgroupLimits, CgroupV1, CgroupV2, CgroupVersion,
};
pub use error::{Result, SandboxError};
pub use host::{EntryKind, Host, MountAttributes, OpenTreeFlags, RealHost};
pub use init::sandbox_init_main;
pub use netns::{NetNamespace, NetNamespacePool, NetworkConfig};
pub use process::{MemoryPeakGauge, SandboxExit, SandboxedProcess};
pub use spec::{BindMount, ResourceLimits, SandboxSpec, SandboxUser};

/// How strongly sandboxed processes are isolated on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxMode {
    /// Namespaces, cgroups, private root, unprivileged user, no capabilities, seccomp. A listener
    /// bound with [`NetNamespace::bind_tcp`] is at the address asked for, inside the sandbox.
    Strong,
    /// Plain child processes with rlimits, sharing the host's file system and network. Listeners get
    /// an ephemeral host port.
    Fallback,
}

/// Which mode [`Sandbox::detect`] may choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModePreference {
    /// Strong where possible, fallback with a warning otherwise.
    #[default]
    Auto,
    /// Strong or an error: for deployments and tests that must not silently lose isolation.
    RequireStrong,
    /// Fallback even where strong isolation is possible.
    ForceFallback,
}

/// Host-wide sandbox settings.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The executable that calls [`sandbox_init_main`].
    pub init_program: PathBuf,
    /// Arguments that make `init_program` call [`sandbox_init_main`].
    pub init_args: Vec<String>,
    /// Name of the Strato-owned parent cgroup; sandboxes get `<parent>/<id>`.
    pub cgroup_parent: String,
    /// Host directory the private root is assembled on, inside each sandbox's own mount namespace
    /// (the host never sees what is mounted there).
    pub rootfs_mount_point: PathBuf,
    pub network: NetworkConfig,
    pub mode: ModePreference,
}

impl SandboxConfig {
    /// Defaults for everything but the init program.
    pub fn new(init_program: impl Into<PathBuf>, init_args: Vec<String>) -> Self {
        SandboxConfig {
            init_program: init_program.into(),
            init_args,
            cgroup_parent: "strato".to_string(),
            rootfs_mount_point: PathBuf::from("/run/strato/sandbox-root"),
            network: NetworkConfig::default(),
            mode: ModePreference::Auto,
        }
    }
}

/// Starts sandboxed processes; one per host process.
#[derive(Debug)]
pub struct Sandbox {
    config: SandboxConfig,
    mode: SandboxMode,
    warnings: Vec<String>,
    strong: Option<StrongHost>,
}

#[derive(Debug)]
struct StrongHost {
    cgroups: Arc<dyn CgroupDriver>,
    networks: NetNamespacePool,
}

impl Sandbox {
    /// Decides the mode from what the host offers (and the configured preference). In strong mode
    /// this starts the network namespace pool, so it creates one namespace before returning.
    pub fn detect(config: SandboxConfig) -> Result<Sandbox> {
        let strong = match config.mode {
            ModePreference::ForceFallback => Err("fallback forced by configuration".to_string()),
            ModePreference::Auto | ModePreference::RequireStrong => strong_host(&config),
        };
        match strong {
            Ok(host) => {
                let warnings = host.networks.nat_warning().map(str::to_string).into_iter().collect();
                Ok(Sandbox {
                    config,
                    mode: SandboxMode::Strong,
                    warnings,
                    strong: Some(host),
                })
            }
            Err(reason) if config.mode == ModePreference::RequireStrong => {
                Err(SandboxError::StrongModeUnavailable(reason))
            }
            Err(reason) => Ok(Sandbox {
                config,
                mode: SandboxMode::Fallback,
                warnings: vec![format!(
                    "sandboxing falls back to plain child processes with rlimits ({reason}): sandboxed code is NOT isolated from the host, and listeners use ephemeral host ports"
                )],
                strong: None,
            }),
        }
    }

    pub fn mode(&self) -> SandboxMode {
        self.mode
    }

    /// Things the operator should hear about at start: the fallback, or missing egress.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The cgroup hierarchy in use (strong mode only).
    pub fn cgroup_version(&self) -> Option<CgroupVersion> {
        self.strong.as_ref().map(|host| host.cgroups.version())
    }

    /// Removes sandboxes a previous process left behind (it crashed before
    /// cleaning up): every sandbox cgroup whose id `is_orphan` accepts has its
    /// processes killed and is removed. Returns the ids removed.
    pub fn remove_orphans(&self, is_orphan: impl Fn(&str) -> bool) -> Result<Vec<String>> {
        let Some(host) = &self.strong else {
            return Ok(Vec::new());
        };
        let mut removed = Vec::new();
        for id in host.cgroups.list()?.into_iter().filter(|id| is_orphan(id)) {
            host.cgroups.kill_all(&id)?;
            // Killed processes take a moment to leave the cgroup.
            let mut gone = false;
            for _ in 0..100 {
                if host.cgroups.remove(&id).is_ok() {
                    gone = true;
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if gone {
                removed.push(id);
            }
        }
        Ok(removed)
    }

    /// A network for the next sandbox: a pooled namespace (strong), or the host's (fallback).
    /// Cheap while the pool has namespaces ready; creates one on the spot (about a millisecond) if not.
    pub fn take_network(&self) -> Result<NetNamespace> {
        match &self.strong {
            Some(host) => host.networks.take(),
            None => Ok(NetNamespace::host()),
        }
    }

    /// Starts `spec` in `network` (from [`Sandbox::take_network`]). Returns once the program has been
    /// executed, or with the setup error the init reported.
    pub async fn spawn(
        &self,
        spec: SandboxSpec,
        network: NetNamespace,
    ) -> Result<SandboxedProcess> {
        match &self.strong {
            Some(host) => process::spawn_strong(&self.config, &host.cgroups, spec, network).await,
            None => process::spawn_fallback(spec, network).await,
        }
    }
}

/// Checks everything strong mode needs, returning why not otherwise.
fn strong_host(config: &SandboxConfig) -> std::result::Result<StrongHost, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not running as root".to_string());
    }
    for namespace in ["mnt", "pid", "ipc", "uts", "net"] {
        if !std::path::Path::new("/proc/self/ns")
            .join(namespace)
            .exists()
        {
            return Err(format!("the kernel has no {namespace} namespaces"));
        }
    }
    if !config.init_program.is_file() {
        return Err(format!(
            "init program {} not found",
            config.init_program.display()
        ));
    }
    let cgroups = detect_cgroup_driver(&config.cgroup_parent)
        .ok_or_else(|| "no cgroup hierarchy can limit memory, cpu and pids".to_string())?;
    let networks = NetNamespacePool::start(config.network.clone())
        .map_err(|e| format!("network namespaces unavailable: {e}"))?;
    Ok(StrongHost { cgroups, networks })
}
