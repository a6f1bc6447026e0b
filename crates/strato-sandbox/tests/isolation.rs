//! Behaviour of strong-mode sandboxes on a real host. Needs root; skipped (with the reason printed)
//! otherwise. Every test uses its own sandbox ids and a test-only cgroup parent, interface prefix and
//! address range, and sends traffic only over loopback inside namespaces it created.

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use strato_sandbox::{
    AttachStep, BindMount, ModePreference, NetNamespacePool, NetworkConfig, ResourceLimits,
    Sandbox, SandboxConfig, SandboxError, SandboxExit, SandboxMode, SandboxSpec, SandboxedProcess,
};
use tokio::io::AsyncReadExt;

const CGROUP_PARENT: &str = "strato-sandbox-tests";
const SANDBOX_UID: u32 = 993;

fn test_network() -> NetworkConfig {
    NetworkConfig {
        subnet: "10.201.0.0".parse().expect("subnet"),
        prefix_len: 16,
        interface_prefix: "sbt".to_string(),
        pool_size: 2,
        egress_nat: false,
    }
}

fn config(mode: ModePreference) -> SandboxConfig {
    SandboxConfig {
        cgroup_parent: CGROUP_PARENT.to_string(),
        network: test_network(),
        mode,
        ..SandboxConfig::new(env!("CARGO_BIN_EXE_strato-sandbox-init"), Vec::new())
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The strong sandbox, or None (with the reason printed) when the tests do not run as root.
fn strong_sandbox(test: &str) -> Option<Sandbox> {
    if !is_root() {
        eprintln!("skipping {test}: strong isolation needs root");
        return None;
    }
    let sandbox =
        Sandbox::detect(config(ModePreference::RequireStrong)).expect("strong mode as root");
    assert_eq!(sandbox.mode(), SandboxMode::Strong);
    Some(sandbox)
}

fn unique_id(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{test}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn shell(test: &str, script: &str) -> SandboxSpec {
    SandboxSpec {
        args: vec!["-c".to_string(), script.to_string()],
        env: vec![("PATH".to_string(), "/usr/bin:/bin".to_string())],
        cwd: PathBuf::from("/tmp"),
        ..SandboxSpec::new(unique_id(test), "/bin/sh")
    }
}

/// Runs to completion and returns the exit with stdout and stderr.
async fn run(process: &mut SandboxedProcess) -> (SandboxExit, String, String) {
    let mut stdout = process.take_stdout().expect("stdout");
    let mut stderr = process.take_stderr().expect("stderr");
    let (mut out, mut err) = (String::new(), String::new());
    let (read_out, read_err) = tokio::join!(
        stdout.read_to_string(&mut out),
        stderr.read_to_string(&mut err)
    );
    read_out.expect("read stdout");
    read_err.expect("read stderr");
    (process.wait().await.expect("wait"), out, err)
}

async fn run_script(sandbox: &Sandbox, test: &str, script: &str) -> (SandboxExit, String, String) {
    run_spec(sandbox, shell(test, script)).await
}

async fn run_spec(sandbox: &Sandbox, spec: SandboxSpec) -> (SandboxExit, String, String) {
    let network = sandbox.take_network().expect("network");
    let mut process = sandbox.spawn(spec, network).await.expect("spawn");
    let result = run(&mut process).await;
    process.destroy().await.expect("destroy");
    result
}

/// A host directory for one test, removed when dropped.
struct HostDir(PathBuf);

impl HostDir {
    fn new(test: &str) -> Self {
        let path = std::env::temp_dir().join(unique_id(test));
        std::fs::create_dir_all(&path).expect("create test dir");
        HostDir(path)
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    ["memory", "cpu", "pids"]
        .iter()
        .map(|controller| {
            Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(CGROUP_PARENT)
                .join(id)
        })
        .collect()
}

#[tokio::test]
async fn runs_as_the_unprivileged_user_without_capabilities() {
    let Some(sandbox) = strong_sandbox("runs_as_the_unprivileged_user_without_capabilities") else {
        return;
    };
    let (exit, out, _) = run_script(
        &sandbox,
        "user",
        "id -u; id -g; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status",
    )
    .await;
    assert!(exit.success());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], SANDBOX_UID.to_string());
    assert_eq!(lines[1], SANDBOX_UID.to_string());
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("CapBnd:\t0000000000000000"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
}

#[tokio::test]
async fn program_is_the_child_of_pid_1_in_a_new_pid_namespace() {
    let Some(sandbox) = strong_sandbox("program_is_the_child_of_pid_1_in_a_new_pid_namespace")
    else {
        return;
    };
    let (exit, out, _) = run_script(&sandbox, "pidns", "echo $$ $PPID").await;
    assert!(exit.success());
    // The shell is pid 2, its parent PID 1 is the sandbox's init.
    assert_eq!(out, "2 1\n");
}

#[tokio::test]
async fn read_only_bind_cannot_be_written() {
    let Some(sandbox) = strong_sandbox("read_only_bind_cannot_be_written") else {
        return;
    };
    let code = HostDir::new("code");
    std::fs::write(code.0.join("handler.txt"), "code").expect("write code");
    let spec = SandboxSpec {
        mounts: vec![BindMount::read_only(&code.0, "/var/task")],
        ..shell(
            "robind",
            "cat /var/task/handler.txt; echo; touch /var/task/new && echo wrote-bind; touch /new && echo wrote-root; true",
        )
    };
    let (exit, out, _) = run_spec(&sandbox, spec).await;
    assert!(exit.success());
    assert_eq!(out, "code\n");
    assert!(!code.0.join("new").exists());
}

#[tokio::test]
async fn writable_bind_can_be_written() {
    let Some(sandbox) = strong_sandbox("writable_bind_can_be_written") else {
        return;
    };
    let state = HostDir::new("state");
    std::fs::set_permissions(
        &state.0,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let spec = SandboxSpec {
        mounts: vec![BindMount::writable(&state.0, "/mnt/state")],
        ..shell("rwbind", "echo out > /mnt/state/file")
    };
    let (exit, _, err) = run_spec(&sandbox, spec).await;
    assert!(exit.success(), "{err}");
    assert_eq!(
        std::fs::read_to_string(state.0.join("file")).expect("file"),
        "out\n"
    );
}

#[tokio::test]
async fn host_private_paths_are_invisible() {
    let Some(sandbox) = strong_sandbox("host_private_paths_are_invisible") else {
        return;
    };
    let host_tmp = HostDir::new("hosttmp");
    let script = format!(
        "for p in /root /home /work /old_root /run /var/lib {}; do test -e $p && echo visible $p; done; true",
        host_tmp.0.display()
    );
    let (exit, out, _) = run_script(&sandbox, "invisible", &script).await;
    assert!(exit.success());
    assert_eq!(out, "");
}

#[tokio::test]
async fn tmp_is_a_private_size_limited_tmpfs() {
    let Some(sandbox) = strong_sandbox("tmp_is_a_private_size_limited_tmpfs") else {
        return;
    };
    let spec = SandboxSpec {
        limits: ResourceLimits {
            tmp_bytes: 1024 * 1024,
            ..ResourceLimits::default()
        },
        ..shell(
            "tmp",
            "echo hi > /tmp/a && cat /tmp/a; ls /tmp; head -c 2097152 /dev/zero > /tmp/big || echo full",
        )
    };
    let (exit, out, _) = run_spec(&sandbox, spec).await;
    assert!(exit.success());
    assert_eq!(out, "hi\na\nfull\n");
}

#[tokio::test]
async fn environment_is_exactly_the_given_one() {
    let Some(sandbox) = strong_sandbox("environment_is_exactly_the_given_one") else {
        return;
    };
    let spec = SandboxSpec {
        env: vec![
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("GREETING".to_string(), "hello".to_string()),
        ],
        ..SandboxSpec {
            args: vec![],
            ..SandboxSpec::new(unique_id("env"), "env")
        }
    };
    let (exit, out, _) = run_spec(&sandbox, spec).await;
    assert!(exit.success());
    assert_eq!(out, "PATH=/usr/bin:/bin\nGREETING=hello\n");
}

#[tokio::test]
async fn exit_code_and_signal_are_reported() {
    let Some(sandbox) = strong_sandbox("exit_code_and_signal_are_reported") else {
        return;
    };
    let (exit, _, _) = run_script(&sandbox, "code", "exit 3").await;
    assert_eq!(exit, SandboxExit::Code(3));
    let (exit, _, _) = run_script(&sandbox, "signal", "kill -TERM $$").await;
    assert_eq!(exit, SandboxExit::Signal(libc::SIGTERM));
}

#[tokio::test]
async fn memory_hog_is_oom_killed() {
    let Some(sandbox) = strong_sandbox("memory_hog_is_oom_killed") else {
        return;
    };
    let spec = SandboxSpec {
        limits: ResourceLimits {
            memory_bytes: 64 * 1024 * 1024,
            ..ResourceLimits::default()
        },
        ..shell("oom", "head -c 500M /dev/zero | tail")
    };
    let network = sandbox.take_network().expect("network");
    let mut process = sandbox.spawn(spec, network).await.expect("spawn");
    let (exit, _, _) = run(&mut process).await;
    assert!(!exit.success());
    assert!(process.oom_killed().expect("oom state"));
    assert!(process.memory_peak().expect("peak") <= 64 * 1024 * 1024);
    process.destroy().await.expect("destroy");
}

#[tokio::test]
async fn memory_peak_gauge_follows_the_cgroup_with_its_file_kept_open() {
    let Some(sandbox) = strong_sandbox("memory_peak_gauge_follows_the_cgroup") else {
        return;
    };
    // `tail` holds its whole input (no newline) in memory: ~40 MB at once.
    let spec = shell("gauge", "head -c 40M /dev/zero | tail");
    let network = sandbox.take_network().expect("network");
    let mut process = sandbox.spawn(spec, network).await.expect("spawn");
    let gauge = process.memory_peak_gauge().expect("gauge");
    let (exit, _, _) = run(&mut process).await;
    assert!(exit.success());
    let peak = gauge.read().expect("read");
    assert!(peak >= 40 * 1024 * 1024, "peak {peak}");
    // Every reading regenerates the file from the start: the same answer twice, and the same
    // as a fresh open.
    assert_eq!(gauge.read().expect("read again"), peak);
    assert_eq!(process.memory_peak().expect("peak"), peak);
    process.destroy().await.expect("destroy");
    assert!(gauge.read().is_err(), "the cgroup is gone");
}

#[tokio::test]
async fn fork_bomb_is_stopped_by_the_pids_limit() {
    let Some(sandbox) = strong_sandbox("fork_bomb_is_stopped_by_the_pids_limit") else {
        return;
    };
    let spec = SandboxSpec {
        limits: ResourceLimits {
            max_pids: 16,
            cpu_fraction: 0.5,
            ..ResourceLimits::default()
        },
        ..shell(
            "forkbomb",
            "i=0; while [ $i -lt 64 ]; do sleep 600 & i=$((i+1)); done; echo all-started",
        )
    };
    let (exit, out, err) = run_spec(&sandbox, spec).await;
    assert!(!exit.success());
    assert_eq!(out, "");
    assert!(err.to_lowercase().contains("fork"), "{err}");
}

#[tokio::test]
async fn kill_ends_the_whole_tree() {
    let Some(sandbox) = strong_sandbox("kill_ends_the_whole_tree") else {
        return;
    };
    let network = sandbox.take_network().expect("network");
    let mut process = sandbox
        .spawn(
            shell("kill", "sleep 600 & sleep 600 & echo started; wait"),
            network,
        )
        .await
        .expect("spawn");
    let mut stdout = process.take_stdout().expect("stdout");
    let mut first = [0u8; 8];
    stdout.read_exact(&mut first).await.expect("started");
    process.kill().expect("kill");
    assert_eq!(
        process.wait().await.expect("wait"),
        SandboxExit::Signal(libc::SIGKILL)
    );
    process.destroy().await.expect("destroy");
}

#[tokio::test]
async fn mount_and_unshare_are_refused_by_seccomp() {
    let Some(sandbox) = strong_sandbox("mount_and_unshare_are_refused_by_seccomp") else {
        return;
    };
    // A user namespace needs no privilege, so only the filter can refuse the unshare.
    let script = r#"import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print(libc.unshare(0x10000000), ctypes.get_errno())
print(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None), ctypes.get_errno())
"#;
    let spec = SandboxSpec {
        args: vec!["-c".to_string(), script.to_string()],
        ..SandboxSpec::new(unique_id("seccomp"), "/usr/bin/python3")
    };
    let (exit, out, err) = run_spec(&sandbox, spec).await;
    assert!(exit.success(), "{err}");
    assert_eq!(
        out,
        format!("-1 {eperm}\n-1 {eperm}\n", eperm = libc::EPERM)
    );
}

#[tokio::test]
async fn clone3_is_unavailable_yet_fork_and_threads_work() {
    let Some(sandbox) = strong_sandbox("clone3_is_unavailable_yet_fork_and_threads_work") else {
        return;
    };
    // clone3 asks for a user namespace, which the host would grant unprivileged; the filter cannot see
    // that flag and must answer ENOSYS first. Python's os.fork() and threading (glibc tries clone3 for
    // threads, then falls back to clone) must still work, while clone and unshare with a namespace
    // flag stay refused. Should a call create a child despite all, the child leaves at once.
    let script = format!(
        r#"import ctypes, os, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
CLONE_NEWUSER, SIGCHLD = 0x10000000, 17
# struct clone_args, first version: flags, pidfd, child_tid, parent_tid, exit_signal, stack,
# stack_size, tls.
args = (ctypes.c_uint64 * 8)(CLONE_NEWUSER, 0, 0, 0, SIGCHLD, 0, 0, 0)
r = libc.syscall({clone3}, ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args)))
if r == 0:
    os._exit(0)
print("clone3", r, ctypes.get_errno())
r = libc.syscall({clone}, ctypes.c_ulong(CLONE_NEWUSER | SIGCHLD), None, None, None, None)
if r == 0:
    os._exit(0)
print("clone", r, ctypes.get_errno())
print("unshare", libc.unshare(CLONE_NEWUSER), ctypes.get_errno())
pid = os.fork()
if pid == 0:
    os._exit(7)
print("fork", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
ran = []
thread = threading.Thread(target=lambda: ran.append("ran"))
thread.start()
thread.join()
print("thread", *ran)
"#,
        clone3 = libc::SYS_clone3,
        clone = libc::SYS_clone,
    );
    let spec = SandboxSpec {
        args: vec!["-c".to_string(), script],
        ..SandboxSpec::new(unique_id("clone3"), "/usr/bin/python3")
    };
    let (exit, out, err) = run_spec(&sandbox, spec).await;
    assert!(exit.success(), "{err}");
    assert_eq!(
        out,
        format!(
            "clone3 -1 {enosys}\nclone -1 {eperm}\nunshare -1 {eperm}\nfork 7\nthread ran\n",
            enosys = libc::ENOSYS,
            eperm = libc::EPERM
        )
    );
}

/// A sandbox started like a stem cell: empty placeholders bound at `/var/task` and `/opt`, and a
/// script that waits for a line on stdin before it looks at them.
async fn stem_cell(
    sandbox: &Sandbox,
    test: &str,
    placeholder: &HostDir,
    script: &str,
) -> SandboxedProcess {
    let spec = SandboxSpec {
        mounts: vec![
            BindMount::read_only(&placeholder.0, "/var/task"),
            BindMount::read_only(&placeholder.0, "/opt"),
        ],
        ..shell(test, &format!("read go; {script}"))
    };
    let network = sandbox.take_network().expect("network");
    sandbox.spawn(spec, network).await.expect("spawn")
}

/// Lets the stem cell's script go on and returns its exit and output.
async fn release(process: &mut SandboxedProcess) -> (SandboxExit, String, String) {
    let mut stdin = process.take_stdin().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"go\n")
        .await
        .expect("write stdin");
    drop(stdin);
    run(process).await
}

#[tokio::test]
async fn attached_code_replaces_the_placeholders_read_only() {
    let Some(sandbox) = strong_sandbox("attached_code_replaces_the_placeholders_read_only") else {
        return;
    };
    let placeholder = HostDir::new("placeholder");
    let (code, layer) = (HostDir::new("code"), HostDir::new("layer"));
    std::fs::write(code.0.join("handler.txt"), "code").expect("write code");
    std::fs::write(layer.0.join("lib.txt"), "layer").expect("write layer");
    let mut process = stem_cell(
        &sandbox,
        "attach",
        &placeholder,
        "cat /var/task/handler.txt /opt/lib.txt; echo; touch /var/task/new || echo read-only; \
         grep -o ' /tmp tmpfs [^ ]*size=2048k' /proc/self/mounts",
    )
    .await;
    process
        .attach(
            &[
                BindMount::read_only(&code.0, "/var/task"),
                BindMount::read_only(&layer.0, "/opt"),
            ],
            Some(2 * 1024 * 1024),
        )
        .expect("attach");
    let (exit, out, err) = release(&mut process).await;
    process.destroy().await.expect("destroy");
    assert!(exit.success(), "{err}");
    assert!(
        out.starts_with("codelayer\nread-only\n /tmp tmpfs "),
        "{out}"
    );
    assert!(!code.0.join("new").exists());
}

#[tokio::test]
async fn failed_attach_leaves_the_placeholders_in_place() {
    let Some(sandbox) = strong_sandbox("failed_attach_leaves_the_placeholders_in_place") else {
        return;
    };
    let placeholder = HostDir::new("placeholder");
    let code = HostDir::new("code");
    std::fs::write(code.0.join("handler.txt"), "code").expect("write code");
    let mut process = stem_cell(&sandbox, "attachfail", &placeholder, "ls -A /var/task /opt").await;
    // The code is moved onto /var/task first; the second target does not exist in the sandbox.
    let error = process
        .attach(
            &[
                BindMount::read_only(&code.0, "/var/task"),
                BindMount::read_only(&code.0, "/no/such/dir"),
            ],
            None,
        )
        .expect_err("missing target");
    assert!(
        matches!(
            &error,
            SandboxError::Attach { step: AttachStep::MoveMount, path, .. }
                if path == Path::new("/no/such/dir")
        ),
        "{error}"
    );
    let (exit, out, err) = release(&mut process).await;
    process.destroy().await.expect("destroy");
    assert!(exit.success(), "{err}");
    assert_eq!(out, "/opt:\n\n/var/task:\n");
}

#[tokio::test]
async fn listener_in_one_namespace_is_reachable_there_and_not_in_another() {
    let Some(sandbox) =
        strong_sandbox("listener_in_one_namespace_is_reachable_there_and_not_in_another")
    else {
        return;
    };
    let address: SocketAddr = "127.0.0.1:9001".parse().expect("address");
    let a = sandbox.take_network().expect("network a");
    let b = sandbox.take_network().expect("network b");
    let listener = a.bind_tcp(address).expect("bind in a");
    assert_eq!(listener.local_addr().expect("local"), address);

    let from_a = a
        .run_inside(|| TcpStream::connect(address).map(drop))
        .expect("enter a");
    assert!(from_a.is_ok());
    let from_b = b
        .run_inside(|| TcpStream::connect(address))
        .expect("enter b");
    assert_eq!(
        from_b.expect_err("b must not reach a's listener").kind(),
        std::io::ErrorKind::ConnectionRefused
    );

    // And a sandboxed process in `a` reaches it at the same address.
    let accepting = std::thread::spawn(move || loop {
        // The first connection is the one made from the test thread above, already closed.
        let (mut stream, _) = listener.accept().expect("accept");
        let mut received = String::new();
        stream.read_to_string(&mut received).expect("read");
        if !received.is_empty() {
            return received;
        }
    });
    let mut process = sandbox
        .spawn(
            SandboxSpec {
                args: vec![
                    "-c".to_string(),
                    "echo ping > /dev/tcp/127.0.0.1/9001".to_string(),
                ],
                env: vec![("PATH".to_string(), "/usr/bin:/bin".to_string())],
                ..SandboxSpec::new(unique_id("listen"), "/bin/bash")
            },
            a,
        )
        .await
        .expect("spawn");
    let (exit, _, err) = run(&mut process).await;
    assert!(exit.success(), "{err}");
    assert_eq!(accepting.join().expect("accept thread"), "ping\n");
    process.destroy().await.expect("destroy");
}

#[test]
fn pool_hands_out_distinct_namespaces_and_refills() {
    if !is_root() {
        eprintln!("skipping pool_hands_out_distinct_namespaces_and_refills: needs root");
        return;
    }
    let config = NetworkConfig {
        interface_prefix: "sbp".to_string(),
        subnet: "10.202.0.0".parse().expect("subnet"),
        ..test_network()
    };
    let pool = NetNamespacePool::start(config).expect("pool");
    let taken: Vec<_> = (0..3).map(|_| pool.take().expect("take")).collect();
    let mut addresses: Vec<_> = taken
        .iter()
        .map(|n| n.address().expect("address"))
        .collect();
    addresses.dedup();
    assert_eq!(addresses.len(), 3);
    let interfaces: Vec<_> = taken
        .iter()
        .map(|n| n.host_interface().expect("veth").to_string())
        .collect();
    for interface in &interfaces {
        assert!(Path::new("/sys/class/net").join(interface).exists());
    }
    // Refilling happens in the background; wait for it without any timing assumption.
    while pool.ready_count() < 2 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(taken);
    for interface in &interfaces {
        assert!(
            !Path::new("/sys/class/net").join(interface).exists(),
            "{interface} left behind"
        );
    }
}

#[tokio::test]
async fn cleanup_leaves_no_cgroup_or_veth_behind() {
    let Some(sandbox) = strong_sandbox("cleanup_leaves_no_cgroup_or_veth_behind") else {
        return;
    };
    for destroy_explicitly in [true, false] {
        let spec = shell("cleanup", "sleep 600");
        let id = spec.id.clone();
        let network = sandbox.take_network().expect("network");
        let interface = network.host_interface().expect("veth").to_string();
        let process = sandbox.spawn(spec, network).await.expect("spawn");
        assert!(cgroup_dirs(&id).iter().all(|dir| dir.exists()));
        if destroy_explicitly {
            process.destroy().await.expect("destroy");
        } else {
            drop(process);
        }
        for dir in cgroup_dirs(&id) {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
        assert!(
            !Path::new("/sys/class/net").join(&interface).exists(),
            "{interface} left behind"
        );
    }
}

#[tokio::test]
async fn setup_failure_is_reported_and_cleaned_up() {
    let Some(sandbox) = strong_sandbox("setup_failure_is_reported_and_cleaned_up") else {
        return;
    };
    let spec = SandboxSpec::new(unique_id("missing"), "/no/such/program");
    let id = spec.id.clone();
    let network = sandbox.take_network().expect("network");
    let error = sandbox.spawn(spec, network).await.expect_err("must fail");
    assert!(
        matches!(&error, SandboxError::SetupFailed(message) if message.contains("/no/such/program")),
        "{error}"
    );
    for dir in cgroup_dirs(&id) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[tokio::test]
async fn fallback_mode_runs_plain_processes_on_host_ports() {
    let sandbox = Sandbox::detect(config(ModePreference::ForceFallback)).expect("fallback");
    assert_eq!(sandbox.mode(), SandboxMode::Fallback);
    assert!(!sandbox.warnings().is_empty());
    let network = sandbox.take_network().expect("network");
    assert!(!network.is_isolated());
    let listener = network
        .bind_tcp("127.0.0.1:9001".parse().expect("address"))
        .expect("bind");
    assert_ne!(listener.local_addr().expect("local").port(), 9001);
    let (exit, out, _) = run_spec(&sandbox, shell("fallback", "echo $GREETING; exit 4")).await;
    assert_eq!(exit, SandboxExit::Code(4));
    assert_eq!(out, "\n");
}
