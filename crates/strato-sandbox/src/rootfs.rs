//! The private root file system of a sandbox, built inside its fresh mount namespace.
//!
//! The new root is a small tmpfs holding mount points, a generated `/etc` and symlinks; everything else
//! is a bind of a host path. After `pivot_root` the old root is detached, so host paths that were not
//! bound (`/root`, `/home`, the host's `/tmp`, ...) do not exist for the sandbox, and the root itself is
//! remounted read-only.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::error::{Result, SandboxError};
use crate::host::{EntryKind, Host};
use crate::spec::RootfsSpec;

/// Host directories every dynamically linked program needs; on merged-/usr systems some are symlinks.
const SYSTEM_PATHS: [&str; 5] = ["/usr", "/lib", "/lib64", "/bin", "/sbin"];

/// Host configuration that TLS, the dynamic linker and `alternatives` need, bound read-only when present.
const ETC_PATHS: [&str; 5] = [
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/localtime",
];

/// Device nodes bound from the host's `/dev`.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Size of the tmpfs holding the new root's own entries (generated `/etc` and mount points).
const ROOT_TMPFS_OPTIONS: &str = "mode=0755,size=4m";

/// Builds the root under `spec.mount_point`, pivots into it and makes it read-only.
///
/// Must run as root in a new mount namespace and, for `/proc` to show the right processes, as a member
/// of the sandbox's pid namespace.
pub(crate) fn build_rootfs(host: &dyn Host, spec: &RootfsSpec) -> Result<()> {
    let root = spec.mount_point.as_path();
    // Mount events must not propagate back to the host's namespace.
    mount(
        host,
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    create_dir(host, root)?;
    mount(
        host,
        Some(Path::new("tmpfs")),
        root,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(ROOT_TMPFS_OPTIONS),
    )?;

    for path in SYSTEM_PATHS
        .iter()
        .map(Path::new)
        .chain(spec.readonly_host_paths.iter().map(PathBuf::as_path))
    {
        mirror_read_only(host, root, path)?;
    }

    write_etc(host, root, spec)?;
    for path in ETC_PATHS {
        mirror_read_only(host, root, Path::new(path))?;
    }

    let proc_dir = inside(root, Path::new("/proc"));
    create_dir(host, &proc_dir)?;
    mount(
        host,
        Some(Path::new("proc")),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )?;

    build_dev(host, root, spec.tmp_bytes)?;

    let mut binds: Vec<_> = spec.mounts.iter().collect();
    // Parents first, so that a bind at /opt does not hide one at /opt/extensions.
    binds.sort_by_key(|bind| bind.target.components().count());
    for bind in binds {
        let target = inside(root, &bind.target);
        prepare_mount_point(host, &bind.source, &target)?;
        bind_mount(host, &bind.source, &target, !bind.writable)?;
    }

    let tmp = inside(root, Path::new("/tmp"));
    create_dir(host, &tmp)?;
    let tmp_options = format!("mode=1777,size={}", spec.tmp_bytes);
    mount(
        host,
        Some(Path::new("tmpfs")),
        &tmp,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&tmp_options),
    )?;

    host.pivot_root(root)
        .map_err(|e| SandboxError::io("pivot_root into", root, e))?;
    mount(
        host,
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None,
    )
}

/// Makes a host path visible read-only at the same place: symlinks are recreated as symlinks (so
/// `/bin -> usr/bin` keeps working), directories and files are bound; missing paths are skipped.
fn mirror_read_only(host: &dyn Host, root: &Path, path: &Path) -> Result<()> {
    let target = inside(root, path);
    match host.entry_kind(path) {
        EntryKind::Missing => Ok(()),
        EntryKind::Symlink(link_target) => {
            if let Some(parent) = target.parent() {
                create_dir(host, parent)?;
            }
            host.symlink(&link_target, &target)
                .map_err(|e| SandboxError::io("symlink", &target, e))
        }
        EntryKind::Directory | EntryKind::File => {
            prepare_mount_point(host, path, &target)?;
            bind_mount(host, path, &target, true)
        }
    }
}

/// Writes the identity and name-resolution files a process expects to find in `/etc`.
fn write_etc(host: &dyn Host, root: &Path, spec: &RootfsSpec) -> Result<()> {
    let etc = inside(root, Path::new("/etc"));
    create_dir(host, &etc)?;
    let user = &spec.user;
    let passwd = format!(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n{name}:x:{uid}:{gid}::/tmp:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        name = user.name,
        uid = user.uid,
        gid = user.gid
    );
    let group = format!(
        "root:x:0:\n{name}:x:{gid}:\nnogroup:x:65534:\n",
        name = user.name,
        gid = user.gid
    );
    let hosts = format!("127.0.0.1\tlocalhost {}\n::1\tlocalhost\n", spec.hostname);
    // A host without resolv.conf simply gives the sandbox none either.
    let resolv = match &spec.resolv_conf {
        Some(resolv) => resolv.clone(),
        None => host
            .read_to_string(Path::new("/etc/resolv.conf"))
            .unwrap_or_default(),
    };
    let files = [
        ("passwd", passwd),
        ("group", group),
        ("hosts", hosts),
        ("hostname", format!("{}\n", spec.hostname)),
        ("resolv.conf", resolv),
    ];
    for (name, contents) in files {
        let path = etc.join(name);
        host.write_file(&path, contents.as_bytes())
            .map_err(|e| SandboxError::io("write", &path, e))?;
    }
    Ok(())
}

/// A minimal `/dev`: the harmless character devices, a private `/dev/shm` and the `/proc` fd links.
fn build_dev(host: &dyn Host, root: &Path, shm_bytes: u64) -> Result<()> {
    let dev = inside(root, Path::new("/dev"));
    create_dir(host, &dev)?;
    for name in DEVICES {
        let source = Path::new("/dev").join(name);
        if host.entry_kind(&source) == EntryKind::Missing {
            continue;
        }
        let target = dev.join(name);
        host.write_file(&target, b"")
            .map_err(|e| SandboxError::io("create device mount point", &target, e))?;
        // Device binds keep their device semantics: no MS_NODEV here, and they stay writable.
        mount(host, Some(&source), &target, None, MsFlags::MS_BIND, None)?;
    }
    let shm = dev.join("shm");
    create_dir(host, &shm)?;
    let shm_options = format!("mode=1777,size={shm_bytes}");
    mount(
        host,
        Some(Path::new("tmpfs")),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(&shm_options),
    )?;
    let links = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    for (name, target) in links {
        let link = dev.join(name);
        host.symlink(Path::new(target), &link)
            .map_err(|e| SandboxError::io("symlink", &link, e))?;
    }
    Ok(())
}

/// Creates what a bind of `source` needs at `target`: a directory for a directory, an empty file for a file.
fn prepare_mount_point(host: &dyn Host, source: &Path, target: &Path) -> Result<()> {
    match host.entry_kind(source) {
        EntryKind::Missing => Err(SandboxError::InvalidSpec(format!(
            "bind source {} does not exist",
            source.display()
        ))),
        EntryKind::Directory | EntryKind::Symlink(_) => create_dir(host, target),
        // A file already there (the system CA bundle inside the bound `/etc/ssl`) is bound over as
        // it is: its read-only parent could not take a new one.
        EntryKind::File if host.entry_kind(target) == EntryKind::File => Ok(()),
        EntryKind::File => {
            if let Some(parent) = target.parent() {
                create_dir(host, parent)?;
            }
            host.write_file(target, b"")
                .map_err(|e| SandboxError::io("create mount point", target, e))
        }
    }
}

/// Binds `source` at `target`; a read-only bind needs a second, remounting call to take the flag.
fn bind_mount(host: &dyn Host, source: &Path, target: &Path, read_only: bool) -> Result<()> {
    mount(
        host,
        Some(source),
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    mount(host, None, target, None, flags, None)
}

fn mount(
    host: &dyn Host,
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    host.mount(source, target, fstype, flags, data)
        .map_err(|e| SandboxError::io("mount", target, e))
}

fn create_dir(host: &dyn Host, path: &Path) -> Result<()> {
    host.create_dir_all(path)
        .map_err(|e| SandboxError::io("create directory", path, e))
}

/// The place of sandbox path `path` under the not-yet-pivoted root. Spec validation guarantees
/// `path` is absolute and has no `..`, so the result stays under `root`.
fn inside(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::{FakeHost, HostCall};
    use crate::spec::{BindMount, SandboxUser};

    fn spec() -> RootfsSpec {
        RootfsSpec {
            mount_point: PathBuf::from("/run/strato/root"),
            user: SandboxUser::default(),
            hostname: "box".to_string(),
            mounts: vec![
                BindMount::read_only("/srv/code", "/var/task"),
                BindMount::writable("/srv/state", "/mnt/state"),
            ],
            readonly_host_paths: vec![],
            tmp_bytes: 1024,
            resolv_conf: None,
        }
    }

    fn merged_usr_host() -> FakeHost {
        FakeHost::default()
            .with_entry("/usr", EntryKind::Directory)
            .with_entry("/bin", EntryKind::Symlink(PathBuf::from("usr/bin")))
            .with_entry("/lib", EntryKind::Symlink(PathBuf::from("usr/lib")))
            .with_entry("/srv/code", EntryKind::Directory)
            .with_entry("/srv/state", EntryKind::Directory)
            .with_entry("/dev/null", EntryKind::File)
            .with_file("/etc/resolv.conf", "nameserver 10.0.0.2\n")
    }

    fn mounts(calls: &[HostCall]) -> Vec<(Option<PathBuf>, PathBuf, MsFlags)> {
        calls
            .iter()
            .filter_map(|call| match call {
                HostCall::Mount {
                    source,
                    target,
                    flags,
                    ..
                } => Some((source.clone(), target.clone(), *flags)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn merged_usr_symlinks_are_recreated_not_bound() {
        let host = merged_usr_host();
        build_rootfs(&host, &spec()).expect("plan");
        let calls = host.calls();
        assert!(calls.contains(&HostCall::Symlink {
            target: PathBuf::from("usr/bin"),
            link: PathBuf::from("/run/strato/root/bin"),
        }));
        assert!(!mounts(&calls)
            .iter()
            .any(|(source, _, _)| source.as_deref() == Some(Path::new("/bin"))));
    }

    #[test]
    fn usr_is_bound_then_remounted_read_only() {
        let host = merged_usr_host();
        build_rootfs(&host, &spec()).expect("plan");
        let usr: Vec<_> = mounts(&host.calls())
            .into_iter()
            .filter(|(_, target, _)| target == Path::new("/run/strato/root/usr"))
            .collect();
        assert_eq!(usr.len(), 2);
        assert_eq!(usr[0].0.as_deref(), Some(Path::new("/usr")));
        assert!(usr[0].2.contains(MsFlags::MS_BIND));
        assert!(usr[1].2.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY));
    }

    #[test]
    fn missing_system_paths_are_skipped() {
        let host = merged_usr_host();
        build_rootfs(&host, &spec()).expect("plan");
        assert!(!host.calls().iter().any(|call| matches!(
            call,
            HostCall::Mount { target, .. } | HostCall::Symlink { link: target, .. }
                if target == Path::new("/run/strato/root/lib64")
        )));
    }

    #[test]
    fn writable_bind_is_not_remounted_read_only() {
        let host = merged_usr_host();
        build_rootfs(&host, &spec()).expect("plan");
        let state: Vec<_> = mounts(&host.calls())
            .into_iter()
            .filter(|(_, target, _)| target == Path::new("/run/strato/root/mnt/state"))
            .collect();
        assert_eq!(state.len(), 2);
        assert!(!state[1].2.contains(MsFlags::MS_RDONLY));
        let code: Vec<_> = mounts(&host.calls())
            .into_iter()
            .filter(|(_, target, _)| target == Path::new("/run/strato/root/var/task"))
            .collect();
        assert!(code[1].2.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn etc_is_generated_with_the_sandbox_user_and_host_resolver() {
        let host = merged_usr_host();
        build_rootfs(&host, &spec()).expect("plan");
        let calls = host.calls();
        let written = |name: &str| {
            calls.iter().find_map(|call| match call {
                HostCall::Write(path, text) if path == Path::new(name) => Some(text.clone()),
                _ => None,
            })
        };
        let passwd = written("/run/strato/root/etc/passwd").expect("passwd");
        assert!(passwd.contains("sandbox:x:993:993:"));
        assert_eq!(
            written("/run/strato/root/etc/resolv.conf").as_deref(),
            Some("nameserver 10.0.0.2\n")
        );
        assert!(written("/run/strato/root/etc/hosts")
            .expect("hosts")
            .starts_with("127.0.0.1\tlocalhost"));
    }

    #[test]
    fn a_given_resolv_conf_replaces_the_hosts_and_a_file_bind_covers_a_file_already_there() {
        // The host's CA bundle appears inside the bound /etc/ssl; a bundle bound over it must not
        // try to create it again in that read-only tree.
        let bundle = "/run/strato/root/etc/ssl/certs/ca-certificates.crt";
        let host = merged_usr_host()
            .with_file("/srv/bundle.pem", "CA")
            .with_entry(bundle, EntryKind::File);
        let mut spec = spec();
        spec.resolv_conf = Some("nameserver 127.0.0.1\n".to_string());
        spec.mounts.push(BindMount::read_only(
            "/srv/bundle.pem",
            "/etc/ssl/certs/ca-certificates.crt",
        ));
        build_rootfs(&host, &spec).expect("plan");
        let calls = host.calls();
        let written: Vec<&PathBuf> = calls
            .iter()
            .filter_map(|call| match call {
                HostCall::Write(path, _) => Some(path),
                _ => None,
            })
            .collect();
        assert!(!written.contains(&&PathBuf::from(bundle)), "{written:?}");
        assert!(calls.iter().any(|call| matches!(call,
            HostCall::Write(path, text) if path == Path::new("/run/strato/root/etc/resolv.conf")
                && text == "nameserver 127.0.0.1\n")));
        assert!(mounts(&calls)
            .iter()
            .any(
                |(source, target, _)| source.as_deref() == Some(Path::new("/srv/bundle.pem"))
                    && target == Path::new(bundle)
            ));
    }

    #[test]
    fn tmp_is_a_size_limited_tmpfs_and_root_ends_read_only_after_pivot() {
        let host = merged_usr_host();
        build_rootfs(&host, &spec()).expect("plan");
        let calls = host.calls();
        let tmp = calls.iter().find_map(|call| match call {
            HostCall::Mount { target, data, .. } if target == Path::new("/run/strato/root/tmp") => {
                data.clone()
            }
            _ => None,
        });
        assert_eq!(tmp.as_deref(), Some("mode=1777,size=1024"));
        let pivot = calls
            .iter()
            .position(|c| *c == HostCall::PivotRoot(PathBuf::from("/run/strato/root")))
            .expect("pivot");
        let last = calls.last().expect("calls");
        assert_eq!(pivot, calls.len() - 2);
        assert!(matches!(last, HostCall::Mount { target, flags, .. }
            if target == Path::new("/") && flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY)));
    }

    #[test]
    fn propagation_is_made_private_before_anything_is_mounted() {
        let host = merged_usr_host();
        build_rootfs(&host, &spec()).expect("plan");
        let first = mounts(&host.calls())[0].clone();
        assert_eq!(first.1, PathBuf::from("/"));
        assert!(first.2.contains(MsFlags::MS_PRIVATE | MsFlags::MS_REC));
    }

    #[test]
    fn missing_bind_source_is_an_invalid_spec() {
        let host = merged_usr_host();
        let mut spec = spec();
        spec.mounts.push(BindMount::read_only("/nope", "/opt"));
        assert!(matches!(
            build_rootfs(&host, &spec),
            Err(SandboxError::InvalidSpec(_))
        ));
    }
}
