//! The one error type of the crate.

use std::io;
use std::path::PathBuf;

use crate::attach::AttachStep;

/// Everything that can go wrong while preparing, starting, observing or cleaning up a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A file system operation on the host failed (cgroup files, mount points, `/proc`).
    #[error("{operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A system call that is not about one path failed.
    #[error("{call}: {source}")]
    Sys {
        call: &'static str,
        source: io::Error,
    },
    /// Attaching mounts to a running sandbox failed at `step`, on `path` (the host directory, the
    /// target inside the sandbox or the namespace, depending on the step). Nothing of the
    /// attachment was left mounted, unless undoing it failed as well (logged).
    #[error("attaching mounts: {step} {path}: {source}")]
    Attach {
        step: AttachStep,
        path: PathBuf,
        source: io::Error,
    },
    /// A netlink request was refused by the kernel or could not be exchanged.
    #[error("netlink {operation}: {message}")]
    Netlink {
        operation: &'static str,
        message: String,
    },
    /// The caller's spec cannot be honoured as given.
    #[error("invalid sandbox spec: {0}")]
    InvalidSpec(String),
    /// The init program could not be started at all.
    #[error("starting init program {path}: {source}")]
    SpawnInit { path: PathBuf, source: io::Error },
    /// The init program started but reported that setting up the sandbox failed.
    #[error("sandbox setup failed: {0}")]
    SetupFailed(String),
    /// The seccomp filter could not be compiled for this architecture.
    #[error("seccomp filter: {0}")]
    Seccomp(String),
    /// Every address block of the configured private range is in use.
    #[error("no free address block left in {0}")]
    AddressesExhausted(String),
    /// Strong isolation was required but the host cannot provide it.
    #[error("strong isolation unavailable: {0}")]
    StrongModeUnavailable(String),
    /// The init spec could not be encoded or decoded.
    #[error("init spec encoding: {0}")]
    SpecEncoding(#[from] serde_json::Error),
}

impl SandboxError {
    pub(crate) fn io(operation: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        SandboxError::Io {
            operation,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(call: &'static str, source: impl Into<io::Error>) -> Self {
        SandboxError::Sys {
            call,
            source: source.into(),
        }
    }
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, SandboxError>;
