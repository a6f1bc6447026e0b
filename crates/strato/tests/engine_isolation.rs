//! End-to-end isolation (strong mode): what a function can and cannot
//! reach from inside its instance.

mod harness;

use aws_sdk_lambda::types::Runtime;
use harness::*;
use serde_json::{json, Value};

/// Probes run inside an instance; each answers what it could do.
const PROBE_FUNCTION: &str = r#"
import ctypes
import errno
import http.client
import os
import signal
import socket
import subprocess


def attempt(fn):
    try:
        return {"ok": True, "value": fn()}
    except OSError as e:
        return {"ok": False, "errno": errno.errorcode.get(e.errno, str(e.errno))}


def gateway():
    with open("/proc/net/route") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == "00000000":
                return ".".join(str(b) for b in reversed(bytes.fromhex(fields[2])))


def write(path):
    with open(path, "w") as f:
        f.write("x")
    return path


def read(path):
    with open(path) as f:
        return f.read()


def runtime_api(method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", 9001, timeout=5)
    conn.request(method, "/2018-06-01/runtime" + path, body=body)
    r = conn.getresponse()
    return {"status": r.status, "body": r.read().decode()}


def handler(event, context):
    action = event["action"]
    if action == "files":
        status = read("/proc/self/status")
        cap_eff = [l.split()[1] for l in status.splitlines() if l.startswith("CapEff:")][0]
        return {
            "task": sorted(os.listdir("/var/task")),
            "write_task": attempt(lambda: write("/var/task/intruder")),
            "write_tmp": attempt(lambda: write("/tmp/mine")),
            "root": attempt(lambda: os.listdir("/root")),
            "work_exists": os.path.exists("/work"),
            "host_paths": {p: os.path.exists(p) for p in event["host_paths"]},
            "uid": os.getuid(),
            "cap_eff": cap_eff,
            "mount": ctypes.get_errno() if ctypes.CDLL(None, use_errno=True).mount(
                b"none", b"/tmp", b"tmpfs", 0, None) != 0 else 0,
        }
    if action == "tmp-put":
        write("/tmp/" + event["file"])
        return sorted(os.listdir("/tmp"))
    if action == "stream":
        return os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
    if action == "tmp-list":
        return sorted(os.listdir("/tmp"))
    if action == "hold":
        # Tell the test this invocation's request id, then wait for its go-ahead.
        with socket.create_connection((gateway(), event["port"]), timeout=30) as s:
            s.sendall((context.aws_request_id + "\n").encode())
            reply = s.makefile().readline().strip()
        return {"held": context.aws_request_id, "reply": reply}
    if action == "hijack":
        victim = event["request_id"]
        return {
            "respond": runtime_api("POST", "/invocation/%s/response" % victim, b'"hijacked"'),
            "error": runtime_api("POST", "/invocation/%s/error" % victim, b'{}'),
        }
    if action == "pids":
        children = []
        failure = None
        try:
            while len(children) < 5000:
                children.append(subprocess.Popen(["/bin/sleep", "600"]))
        except OSError as e:
            failure = errno.errorcode.get(e.errno, str(e.errno))
        for child in children:
            child.kill()
        for child in children:
            child.wait()
        return {"started": len(children), "failure": failure}
    raise ValueError(action)
"#;

async fn deploy_probe(engine: &TestServer, name: &str, memory: i32) {
    let zip = zip_of(&[
        ("lambda_function.py", PROBE_FUNCTION.as_bytes()),
        (&format!("{name}.txt"), name.as_bytes()),
    ]);
    deploy(
        &engine.client,
        name,
        FunctionSpec::new(Runtime::Python312, "lambda_function.handler", zip)
            .memory(memory)
            .timeout(60),
    )
    .await;
}

fn assert_strong_mode() {
    assert!(
        strong_mode_available(),
        "isolation tests need the strong sandbox (root with cgroup v1 memory controller)"
    );
}

#[tokio::test]
async fn instance_cannot_write_its_code_nor_see_the_host_or_other_functions() {
    assert_strong_mode();
    let engine = TestServer::start_own_runtimes().await;
    let a = unique_name("iso-a");
    let b = unique_name("iso-b");
    deploy_probe(&engine, &a, 256).await;
    deploy_probe(&engine, &b, 256).await;
    let data_dir = engine.dir.path().display().to_string();
    let code_dir = engine.dir.path().join("code").display().to_string();
    let inv = invoke(
        &engine.client,
        &b,
        json!({"action": "files", "host_paths": [data_dir, code_dir, "/root/.pyenv", "/work/main"]}),
    )
    .await;
    let probe = inv.ok();
    // Only its own code, read-only.
    assert_eq!(
        probe["task"],
        json!([format!("{b}.txt"), "lambda_function.py"]),
        "{probe}"
    );
    assert_eq!(probe["write_task"]["ok"], false, "{probe}");
    assert_eq!(probe["write_task"]["errno"], "EROFS", "{probe}");
    assert_eq!(probe["write_tmp"]["ok"], true, "/tmp is writable: {probe}");
    // No host directories.
    let root_hidden = probe["root"]["ok"] == false || probe["root"]["value"] == json!([]);
    assert!(root_hidden, "the host's /root is not visible: {probe}");
    assert_eq!(probe["work_exists"], false, "{probe}");
    for (path, exists) in probe["host_paths"].as_object().expect("paths") {
        assert_eq!(exists, &json!(false), "{path} is visible inside: {probe}");
    }
    // Unprivileged, no capabilities, and mount is refused.
    assert_ne!(probe["uid"], 0, "{probe}");
    assert_eq!(probe["cap_eff"], "0000000000000000", "{probe}");
    assert_eq!(probe["mount"], 1, "mount is refused with EPERM: {probe}");
    engine.stop().await;
}

#[tokio::test]
async fn instance_tmp_is_private_to_the_instance() {
    assert_strong_mode();
    let engine = TestServer::start_own_runtimes().await;
    let a = unique_name("iso-tmp-a");
    let b = unique_name("iso-tmp-b");
    deploy_probe(&engine, &a, 256).await;
    deploy_probe(&engine, &b, 256).await;
    let put = invoke(
        &engine.client,
        &a,
        json!({"action": "tmp-put", "file": "secret-of-a"}),
    )
    .await;
    assert_eq!(put.ok(), json!(["secret-of-a"]));
    // A's warm instance still has it; B's instance never sees it.
    let again = invoke(&engine.client, &a, json!({"action": "tmp-list"})).await;
    assert_eq!(again.ok(), json!(["secret-of-a"]));
    let other = invoke(&engine.client, &b, json!({"action": "tmp-list"})).await;
    assert_eq!(other.ok(), json!([]), "{other}");
    engine.stop().await;
}

#[tokio::test]
async fn instance_reaches_only_its_own_runtime_api() {
    assert_strong_mode();
    let engine = TestServer::start_own_runtimes().await;
    let victim = unique_name("iso-victim");
    let attacker = unique_name("iso-attacker");
    deploy_probe(&engine, &victim, 256).await;
    deploy_probe(&engine, &attacker, 256).await;

    // The victim's invocation is in flight, held at a gate of the test's.
    let gate = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind gate");
    let port = gate.local_addr().expect("addr").port();
    let held = {
        let client = engine.client.clone();
        let victim = victim.clone();
        tokio::spawn(async move {
            invoke(&client, &victim, json!({"action": "hold", "port": port})).await
        })
    };
    let (socket, _) = tokio::time::timeout(std::time::Duration::from_secs(60), gate.accept())
        .await
        .expect("the victim reached the gate")
        .expect("accept");
    let mut reader = tokio::io::BufReader::new(socket);
    let mut victim_id = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut victim_id)
        .await
        .expect("read the victim's request id");
    let victim_id = victim_id.trim().to_string();

    let attack = invoke(
        &engine.client,
        &attacker,
        json!({"action": "hijack", "request_id": victim_id}),
    )
    .await;
    let result: Value = attack.ok();
    // 127.0.0.1:9001 inside the attacker is the attacker's own Runtime API:
    // it does not know the victim's request.
    assert_eq!(result["respond"]["status"], 400, "{result}");
    assert!(
        result["respond"]["body"]
            .as_str()
            .unwrap_or("")
            .contains("InvalidRequestID"),
        "{result}"
    );
    assert_eq!(result["error"]["status"], 400, "{result}");

    tokio::io::AsyncWriteExt::write_all(reader.get_mut(), b"go\n")
        .await
        .expect("release the victim");
    let victim_result = held.await.expect("victim task").ok();
    assert_eq!(victim_result["held"], victim_id.as_str());
    assert_eq!(
        victim_result["reply"], "go",
        "the victim answered itself, unhijacked"
    );
    engine.stop().await;
}

#[tokio::test]
async fn instance_cannot_exceed_its_pids_limit() {
    assert_strong_mode();
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("iso-pids");
    deploy_probe(&engine, &name, 1024).await;
    let inv = invoke(&engine.client, &name, json!({"action": "pids"})).await;
    let result = inv.ok();
    assert_eq!(
        result["failure"], "EAGAIN",
        "process creation was refused: {result}"
    );
    let started = result["started"].as_u64().expect("started");
    assert!(started < 1024, "the pids limit (1024) held: {result}");
    assert!(
        started > 100,
        "the function could start processes: {result}"
    );
    // The instance is intact afterwards.
    let again = invoke(&engine.client, &name, json!({"action": "tmp-list"})).await;
    again.ok();
    engine.stop().await;
}

#[tokio::test]
async fn server_shutdown_ends_its_instances_and_removes_their_cgroups() {
    assert_strong_mode();
    let engine = TestServer::start_own_runtimes().await;
    let name = unique_name("iso-shutdown");
    deploy_probe(&engine, &name, 256).await;
    let inv = invoke(&engine.client, &name, json!({"action": "stream"})).await;
    // The log stream ends with the instance id; its sandbox's name ends
    // with a prefix of it (`…-{hex}`).
    let stream = inv.ok().as_str().expect("stream name").to_string();
    let instance = stream.rsplit(']').next().expect("instance id").to_string();
    let cgroup = strato_cgroups()
        .into_iter()
        .find(|c| {
            c.rsplit('-')
                .next()
                .is_some_and(|tail| tail.len() >= 8 && instance.starts_with(tail))
        })
        .unwrap_or_else(|| panic!("the warm instance {instance} has a cgroup"));
    engine.stop().await;
    let gone = poll(std::time::Duration::from_secs(10), || {
        let cgroup = cgroup.clone();
        async move { (!strato_cgroups().contains(&cgroup)).then_some(()) }
    })
    .await;
    assert!(
        gone.is_some(),
        "shutdown removed the instance's cgroup {cgroup}"
    );
}
