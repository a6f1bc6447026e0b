#!/usr/bin/env python3
"""Strato's benchmark harness: runs the scenarios of issue 8 side by side with the peers.

Invoked by `bench/run` after it has built Strato and the load generator and installed the peers
into bench/.work. Stdlib only. Every process it starts is ended by its own pid (and its own
process group) when the scenario ends, and every data dir it creates is removed. All traffic goes
to 127.0.0.1. Nothing here judges a figure: it measures and reports.
"""

import argparse
import base64
import http.client
import io
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(HERE, ".work")
sys.path.insert(0, os.path.join(HERE, "lib"))

import awsclient  # noqa: E402
import report  # noqa: E402
import wsclient  # noqa: E402

STRATO = os.environ.get("STRATO_BIN") or os.path.join(ROOT, "target", "release", "strato")
# LOADGEN_BIN names another build of bench/loadgen (e.g. a debug one, to try a scenario out).
LOADGEN = os.environ.get("LOADGEN_BIN") or os.path.join(WORK, "target", "release", "loadgen")
RIE = os.path.join(WORK, "go", "bin", "aws-lambda-rie")
NPM = os.path.join(WORK, "npm")
RIC_NODE = os.path.join(WORK, "npm-ric", "node_modules", ".bin", "aws-lambda-ric")
SLS = os.path.join(NPM, "node_modules", ".bin", "serverless")
VENV_PY = os.path.join(WORK, "venv", "bin", "python")
GO_BOOTSTRAP = os.path.join(WORK, "gofn", "bootstrap")
JAVA_CLASSES = os.path.join(WORK, "java", "classes")
FIX = os.path.join(HERE, "fixtures")
NODE = shutil.which("node") or "/usr/bin/node"

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
JAVA_HANDLER = "bench.Handler::handleRequest"
# One full vCPU: Strato, like AWS, gives an instance memory/1769 of a CPU. The peers have no CPU
# cap, so the benchmark functions get 1769 MB, which is exactly one vCPU (see the notes).
BENCH_MEMORY = 1769
PAYLOAD = '{"bench":true}'
STRATO_LABEL = "Strato"
# Enough MemorySize for every instance any scenario starts (1 000 × 128 MB,
# 32 × 1769 MB), far beyond what those instances really use.
MEMORY_BUDGET_MB = 262144

LABEL_128 = "Strato at MemorySize 128 (0.07 of a CPU after init)"

# CPU placement (see BENCHMARKS.md): the system under test on CPU 0, the load generator on CPU 1.
PIN = True
SUT_CPUS = "0"
LOADGEN_CPUS = "1"

RIE_ONE_AT_A_TIME = ("RIE serves one invocation at a time: concurrent invokes crash it (nil-pointer panic in "
                     "rapidcore.(*Server).Invoke), so it is measured at concurrency 1 only")

LIVE = []  # processes started by this harness, ended by their pids at exit


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# processes


class Proc:
    """A process this harness started, in its own process group, ended by its own pid."""

    def __init__(self, name, args, cwd=None, env=None, cpus=None, logname=None):
        self.name = name
        if cpus is not None and PIN:
            args = ["taskset", "-c", cpus] + list(args)
        os.makedirs(os.path.join(WORK, "logs"), exist_ok=True)
        self.log_path = os.path.join(WORK, "logs", (logname or name) + ".log")
        self.logf = open(self.log_path, "wb")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.t_spawn = time.perf_counter()
        self.p = subprocess.Popen(
            args, cwd=cwd, env=full_env, stdout=self.logf, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self.pid = self.p.pid
        LIVE.append(self)

    def alive(self):
        return self.p.poll() is None

    def stop(self, grace=10.0):
        if self.p.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group this process leads (its own pid is the group id).
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.logf.close()
        if self in LIVE:
            LIVE.remove(self)

    def tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""


def stop_all():
    stop_shared()
    for p in list(reversed(LIVE)):
        p.stop(grace=5)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.005)
    raise TimeoutError(f"port {port} did not open in {timeout}s" + (f":\n{proc.tail()}" if proc else ""))


def descendants(pid):
    """All descendant pids of pid (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        except (OSError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kb(pid):
    return rss_kb(pid) + sum(rss_kb(p) for p in descendants(pid))


# ---------------------------------------------------------------------------------------------
# statistics


def pct(values, q):
    """Nearest-rank percentile."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(q * len(v) + 0.5)) - 1))
    return v[k]


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p99": pct(values, 0.99),
        "min": min(values),
        "max": max(values),
    }


# ---------------------------------------------------------------------------------------------
# the load generator


def loadgen(url, concurrency=1, requests=None, duration=None, body=None, method=None, sigv4=False,
            warmup=0, n_range=None, threads=1, timeout=60, close=False, sigv4_key="test:test",
            sigv4_service="lambda", headers=()):
    args = [LOADGEN, "--url", url, "--concurrency", str(concurrency), "--threads", str(threads),
            "--timeout", str(timeout)]
    for name, value in headers:
        args += ["--header", f"{name}:{value}"]
    if requests is not None:
        args += ["--requests", str(requests)]
    if duration is not None:
        args += ["--duration", str(duration)]
    if body is not None:
        args += ["--body", body]
    if method:
        args += ["--method", method]
    if sigv4:
        args += ["--sigv4", f"{sigv4_key}:us-east-1:{sigv4_service}"]
    if warmup:
        args += ["--warmup", str(warmup)]
    if n_range:
        args += ["--n-range", str(n_range)]
    if close:
        args += ["--close"]
    if PIN:
        args = ["taskset", "-c", LOADGEN_CPUS] + args
    hard = (duration or 0) * 2 + timeout * 2 + 120
    out = subprocess.run(args, capture_output=True, text=True, timeout=hard)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def ok_rps(r):
    return r["status"]["2xx"] / r["wall_s"] if r["wall_s"] > 0 else 0.0


def errors(r):
    s = r["status"]
    return (s["4xx"] + s["5xx"] + s["other"] + r["transport_errors"] + r["timeouts"]
            + r["function_errors"])


# ---------------------------------------------------------------------------------------------
# systems under test


def zip_of(files):
    """files: {name: bytes or (bytes, mode)} → zip bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            mode = 0o644
            if isinstance(data, tuple):
                data, mode = data
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def java_zip():
    files = {}
    for dirpath, _, names in os.walk(JAVA_CLASSES):
        for n in names:
            full = os.path.join(dirpath, n)
            files[os.path.relpath(full, JAVA_CLASSES)] = read(full)
    return zip_of(files)


# runtime key → (Strato runtime id, handler, zip builder)
RUNTIMES = {
    "node": ("nodejs20.x", "index.handler", lambda: zip_of({"index.js": read(os.path.join(FIX, "node", "index.js"))})),
    "node-ws": ("nodejs20.x", "websocket.handler",
                lambda: zip_of({"websocket.js": read(os.path.join(FIX, "node", "websocket.js"))})),
    "python": ("python3.11", "handler.handler", lambda: zip_of({"handler.py": read(os.path.join(FIX, "python", "handler.py"))})),
    "go": ("provided.al2023", "bootstrap", lambda: zip_of({"bootstrap": (read(GO_BOOTSTRAP), 0o755)})),
    "java": ("java21", JAVA_HANDLER, java_zip),  # the runtime id is settled by java_available()
}


RUNTIMES_DIR = os.path.join(WORK, "runtimes")
_HAS_RUNTIMES_DIR = None


def strato_has_flag(flag):
    out = subprocess.run([STRATO, "serve", "--help"], capture_output=True, text=True)
    return flag in out.stdout


def strato_has_runtimes_dir():
    global _HAS_RUNTIMES_DIR
    if _HAS_RUNTIMES_DIR is None:
        out = subprocess.run([STRATO, "serve", "--help"], capture_output=True, text=True)
        _HAS_RUNTIMES_DIR = "--runtimes-dir" in out.stdout
    return _HAS_RUNTIMES_DIR


def java_ric_dir():
    """AWS's Java runtime interface client as Strato installed it (reused by the RIE Java peer)."""
    import glob
    for d in sorted(glob.glob(os.path.join(RUNTIMES_DIR, "java", "ric-*")), reverse=True):
        if os.path.exists(os.path.join(d, "strato-installed")):
            return d
    return None


JAVA_RIC_MAIN = "com.amazonaws.services.lambda.runtime.api.client.AWSLambda"
JAVA_JNI_PROPERTY = "com.amazonaws.services.lambda.runtime.api.client.runtimeapi.NativeClient.JNI"


class Strato:
    def __init__(self, tag, keep_alive=900, extra_env=None, stem_cells=None, data=None, extra_args=None):
        self.port = free_port()
        # A given data dir is a restart on an earlier server's state.
        self.data = data or tempfile.mkdtemp(prefix=f"strato-{tag}-", dir=WORK)
        env = {"STRATO_LOG": os.environ.get("STRATO_LOG", "warn")}
        if extra_env:
            env.update(extra_env)
        # Bench functions have 1769 MB (one vCPU), and Strato's default memory
        # budget counts MemorySize, not use: 80 % of this machine holds only
        # 10 of them. The runtime path is what is measured here, so the
        # budget is raised (instances use ~17 MiB each; see `memory`).
        args = [STRATO, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data,
                "--keep-alive", str(keep_alive), "--sandbox", "auto", "--memory-budget-mb", str(MEMORY_BUDGET_MB)]
        if strato_has_runtimes_dir():
            # One runtimes dir for every server the harness starts (Java's RIC is fetched once).
            args += ["--runtimes-dir", RUNTIMES_DIR]
        if stem_cells is not None:
            args += ["--stem-cells", str(stem_cells)]
        args += list(extra_args or [])
        self.proc = Proc(f"strato-{tag}", args, env=env, cpus=SUT_CPUS)
        try:
            wait_port(self.port, 60, self.proc)
        except Exception:
            self.proc.stop()
            shutil.rmtree(self.data, ignore_errors=True)
            raise
        self.api = awsclient.Lambda(self.port)

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/2015-03-31/functions/{name}/invocations"

    def deploy(self, name, runtime_key, memory=BENCH_MEMORY, env=None):
        runtime, handler, zipper = RUNTIMES[runtime_key]
        self.api.create_function(name, runtime, handler, zipper(), memory=memory, env=env)
        self.api.wait_ready(name)

    def sandbox_mode(self):
        text = self.proc.tail(200)
        if "fallback" in text.lower():
            return "fallback (see log)"
        return "strong" if os.geteuid() == 0 else "unknown"

    def instance_cgroups(self):
        """Memory cgroup dirs of this server's instances (found through its own descendants)."""
        found = set()
        for pid in descendants(self.proc.pid):
            try:
                with open(f"/proc/{pid}/cgroup") as f:
                    for line in f:
                        parts = line.strip().split(":", 2)
                        if len(parts) == 3 and "memory" in parts[1].split(","):
                            if "/strato/" in parts[2]:
                                found.add("/sys/fs/cgroup/memory" + parts[2])
                        elif len(parts) == 3 and parts[1] == "" and "/strato/" in parts[2]:
                            found.add("/sys/fs/cgroup" + parts[2])
            except OSError:
                continue
        return sorted(found)

    def stop(self, keep_data=False):
        self.api.close()
        self.proc.stop(grace=15)
        if not keep_data:
            shutil.rmtree(self.data, ignore_errors=True)

    def kill9(self):
        """SIGKILL of the server alone: its instances are left behind, as after a crash (the next
        server on the same data dir sweeps them); then the rest of its process group."""
        self.api.close()
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.stop(grace=0)


class Floor:
    """The bare Node.js HTTP server."""

    def __init__(self):
        self.port = free_port()
        self.proc = Proc("floor", [NODE, os.path.join(FIX, "node", "floor.js"), str(self.port)], cpus=SUT_CPUS)
        wait_port(self.port, 30, self.proc)
        self.url = f"http://127.0.0.1:{self.port}/"

    def stop(self):
        self.proc.stop()


class Rie:
    """The AWS Lambda Runtime Interface Emulator running one runtime client."""

    def __init__(self, runtime_key, wait=True, tag=""):
        self.port = free_port()
        api_port = free_port()
        env = {
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
            "AWS_LAMBDA_FUNCTION_NAME": "function",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(BENCH_MEMORY),
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_TIMEOUT": "30",
        }
        if runtime_key == "node":
            cwd = os.path.join(FIX, "node")
            env.update({"_HANDLER": "index.handler", "LAMBDA_TASK_ROOT": cwd})
            cmd = [NODE, RIC_NODE, "index.handler"]
        elif runtime_key == "python":
            cwd = os.path.join(FIX, "python")
            env.update({"_HANDLER": "handler.handler", "LAMBDA_TASK_ROOT": cwd})
            cmd = [VENV_PY, "-m", "awslambdaric", "handler.handler"]
        elif runtime_key == "go":
            cwd = os.path.dirname(GO_BOOTSTRAP)
            env.update({"_HANDLER": "bootstrap", "LAMBDA_TASK_ROOT": cwd})
            cmd = [GO_BOOTSTRAP]
        elif runtime_key == "java":
            ric = java_ric_dir()
            cwd = JAVA_CLASSES
            env.update({"_HANDLER": JAVA_HANDLER, "LAMBDA_TASK_ROOT": JAVA_CLASSES})
            # The JVM flags of AWS's managed Java runtime, as Strato uses them.
            cmd = ["java", f"-XX:MaxHeapSize={(BENCH_MEMORY * 1024 * 85 + 50) // 100}k", "-XX:+UseSerialGC",
                   "-Xshare:auto", "-XX:+TieredCompilation", "-XX:TieredStopAtLevel=1",
                   "--add-opens=java.base/java.io=ALL-UNNAMED", "-XX:+ErrorFileToStderr",
                   "-Djava.net.preferIPv4Stack=true",
                   f"-D{JAVA_JNI_PROPERTY}={ric}/lib/jni/libaws-lambda-jni.linux-x86_64.so",
                   "-classpath", f"{ric}/lib/*", JAVA_RIC_MAIN, JAVA_HANDLER]
        else:
            raise ValueError(runtime_key)
        self.proc = Proc(
            f"rie-{runtime_key}{tag}",
            [RIE, "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
             "--runtime-api-address", f"127.0.0.1:{api_port}", "--log-level", "error"] + cmd,
            cwd=cwd, env=env, cpus=SUT_CPUS,
        )
        if wait:
            wait_port(self.port, 30, self.proc)
        self.url = f"http://127.0.0.1:{self.port}/2015-03-31/functions/function/invocations"

    def stop(self):
        self.proc.stop(grace=5)


_SHARED_OFFLINE = {}


def shared_offline(in_process):
    """One serverless-offline per mode, shared by the warm scenarios (it takes seconds to start)."""
    o = _SHARED_OFFLINE.get(in_process)
    if o is None or not o.proc.alive():
        o = _SHARED_OFFLINE[in_process] = Offline(in_process=in_process)
    return o


def stop_shared():
    for o in list(_SHARED_OFFLINE.values()):
        o.stop()
    _SHARED_OFFLINE.clear()


class OfflineBase:
    """serverless-offline 13 (serverless 3) running one Node handler from fixtures/node/ in a
    directory of its own, with the events given as serverless.yml lines."""

    def start(self, label, fixture, handler, events, extra_args):
        self.http_port = free_port()
        self.lambda_port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sls-", dir=WORK)
        shutil.copy(os.path.join(FIX, "node", fixture), self.dir)
        os.symlink(os.path.join(NPM, "node_modules"), os.path.join(self.dir, "node_modules"))
        with open(os.path.join(self.dir, "serverless.yml"), "w") as f:
            f.write(
                "service: bench\n"
                "frameworkVersion: '3'\n"
                "provider:\n  name: aws\n  runtime: nodejs20.x\n  region: us-east-1\n  stage: dev\n"
                f"functions:\n  hello:\n    handler: {handler}\n"
                "    events:\n" + events +
                "plugins:\n  - serverless-offline\n"
            )
        args = [NODE, SLS, "offline", "start", "--host", "127.0.0.1", "--httpPort", str(self.http_port),
                "--lambdaPort", str(self.lambda_port)] + extra_args
        env = {"SLS_TELEMETRY_DISABLED": "1", "SLS_NOTIFICATIONS_MODE": "off", "SLS_DEPRECATION_DISABLE": "*",
               "SERVERLESS_PLATFORM_STAGE": "", "CI": "1", "HOME": self.dir,
               "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
        self.proc = Proc(label, args, cwd=self.dir, env=env, cpus=SUT_CPUS)

    def stop(self):
        self.proc.stop(grace=5)
        shutil.rmtree(self.dir, ignore_errors=True)


class Offline(OfflineBase):
    """The Node handler behind an httpApi route."""

    def __init__(self, in_process=False):
        self.start("sls-inprocess" if in_process else "sls-default", "index.js", "index.handler",
                   "      - httpApi:\n          path: /hello\n          method: get\n",
                   ["--noPrependStageInUrl"] + (["--useInProcess"] if in_process else []))
        wait_port(self.http_port, 90, self.proc)
        wait_port(self.lambda_port, 30, self.proc)
        self.invoke_url = f"http://127.0.0.1:{self.lambda_port}/2015-03-31/functions/bench-dev-hello/invocations"
        self.http_url = f"http://127.0.0.1:{self.http_port}/hello"


# ---------------------------------------------------------------------------------------------
# scenario plumbing


class Ctx:
    def __init__(self, quick):
        self.quick = quick
        self.reps = 2 if quick else 5
        self.duration = 0.3 if quick else 4.0
        self.warmup = 32 if quick else 300
        self.cold_samples = 3 if quick else 15
        self.burst_n = 16 if quick else 32
        self.burst_reps = 2 if quick else 3
        self.memory_n = 4 if quick else 16
        self.cp_sizes = [1000] if quick else [10_000, 100_000]
        self.cp_samples = 300 if quick else 3000


def available():
    return {
        "strato": os.path.exists(STRATO),
        "rie": os.path.exists(RIE),
        "ric-node": os.path.exists(RIC_NODE),
        "awslambdaric": os.path.exists(VENV_PY) and subprocess.run(
            [VENV_PY, "-c", "import awslambdaric"], capture_output=True).returncode == 0,
        "sls": os.path.exists(SLS),
        "go-fn": os.path.exists(GO_BOOTSTRAP),
        "java-fn": os.path.isdir(JAVA_CLASSES),
    }


def warm_matrix(ctx, targets, concurrencies=(1, 32)):
    """targets: list of (label, kwargs for loadgen). Interleaved: every rep visits every target."""
    runs = {c: {label: [] for label, _ in targets} for c in concurrencies}
    for rep in range(ctx.reps):
        for c in concurrencies:
            for label, kw in targets:
                kw = dict(kw)
                max_c = kw.pop("max_concurrency", None)
                why = kw.pop("why", "")
                if max_c is not None and c > max_c:
                    runs[c][label] = {"na": why}
                    continue
                try:
                    r = loadgen(concurrency=c, duration=ctx.duration, warmup=ctx.warmup if rep == 0 else 0, **kw)
                except Exception as e:  # a peer failing is a result, not a crash
                    r = {"failed": str(e)}
                runs[c][label].append(r)
        log(f"  rep {rep + 1}/{ctx.reps} done")
    return runs


def warm_table(title, runs_by_c, strato_label, unavailable=()):
    """Turns warm_matrix output into report tables (one per concurrency)."""
    tables = []
    for c, runs in runs_by_c.items():
        rows = []
        ref = None
        summaries = {}
        for label, rs in runs.items():
            if isinstance(rs, dict):
                summaries[label] = {"na": rs["na"]}
                continue
            good = [r for r in rs if "failed" not in r and r["status"]["2xx"] > 0]
            fails = [r for r in rs if "failed" in r]
            s = {
                "rps": summary([ok_rps(r) for r in good]),
                "p50": summary([r["latency"]["p50_ms"] for r in good if r["latency"]]),
                "p99": summary([r["latency"]["p99_ms"] for r in good if r["latency"]]),
                "errors": sum(errors(r) for r in rs if "failed" not in r),
                "requests": sum(r["completed"] for r in rs if "failed" not in r),
                "loadgen_cpu": summary([r["loadgen_cpu_util"] for r in good]),
                "failed": fails[0]["failed"] if fails else None,
                "first_error": next((r.get("first_error") for r in rs if "failed" not in r and r.get("first_error")), None),
            }
            summaries[label] = s
            if label == strato_label:
                ref = s
        for label, s in summaries.items():
            rows.append({"label": label, **s})
        for label, why in unavailable:
            rows.insert(0, {"label": label, "na": why})
        tables.append({"title": f"{title}, concurrency {c}", "kind": "warm", "rows": rows,
                       "ref": strato_label if ref else None})
    return tables


# ---------------------------------------------------------------------------------------------
# scenarios


def sc_loadgen_headroom(ctx):
    """The load generator against a null server and against the floor, to show its headroom."""
    port = free_port()
    null = Proc("loadgen-null-server", [LOADGEN, "--serve", f"127.0.0.1:{port}", "--body", '{"message":"hello"}',
                                        "--duration", "600"], cpus=SUT_CPUS)
    floor = Floor()
    try:
        wait_port(port, 10, null)
        targets = [("loadgen's own null server (Rust, 1 thread)", {"url": f"http://127.0.0.1:{port}/"}),
                   ("bare Node.js server (the floor)", {"url": floor.url})]
        runs = warm_matrix(ctx, targets)
    finally:
        null.stop()
        floor.stop()
    tables = warm_table("Load generator headroom", runs, None)
    for t in tables:
        t["kind"] = "headroom"
    return {"tables": tables, "notes": [
        "The load generator runs on CPU 1 with one thread; the servers run on CPU 0. The null server's "
        "throughput is the most this client can drive on one core, so the ratio of the two rows is the "
        "client's headroom over the fastest peer (the floor). `loadgen CPU` is the client's CPU time over "
        "wall time: below 1.0 means it was waiting on the server, not saturated."]}


def sc_warm_invoke(ctx):
    """Warm Invoke API, Node.js: Strato vs RIE+aws-lambda-ric vs serverless-offline vs the floor."""
    av = available()
    st = Strato("warm-node")
    procs = [st]
    try:
        st.deploy("hello", "node")
        targets = [(STRATO_LABEL, {"url": st.url("hello"), "body": PAYLOAD, "sigv4": True})]
        na = []
        if av["rie"] and av["ric-node"]:
            rie = Rie("node")
            procs.append(rie)
            targets.append(("RIE + aws-lambda-ric (Node 20)", {"url": rie.url, "body": PAYLOAD, "max_concurrency": 1,
                                                               "why": RIE_ONE_AT_A_TIME}))
        else:
            na.append(("RIE + aws-lambda-ric", "not installed"))
        if av["sls"]:
            for inproc in (False, True):
                off = shared_offline(inproc)
                label = "serverless-offline 13 Invoke API, " + ("--useInProcess" if inproc else "default (worker threads)")
                targets.append((label, {"url": off.invoke_url, "body": PAYLOAD}))
        else:
            na.append(("serverless-offline", "not installed"))
        fl = Floor()
        procs.append(fl)
        targets.append(("bare Node.js HTTP server (floor)", {"url": fl.url, "body": PAYLOAD}))
        runs = warm_matrix(ctx, targets)
    finally:
        for p in reversed(procs):
            p.stop()
    return {"tables": warm_table("Warm invoke, Invoke API, Node.js", runs, STRATO_LABEL, na), "notes": []}


def iam_call(port, action, params):
    """One IAM query-protocol call signed with the local account's root key; the XML answer."""
    import urllib.parse
    import http.client
    body = urllib.parse.urlencode({"Action": action, "Version": "2010-05-08", **params}).encode()
    headers = awsclient.sign_headers("POST", f"127.0.0.1:{port}", "/", [], body, "test", "test",
                                     "us-east-1", service="iam")
    headers["content-type"] = "application/x-www-form-urlencoded"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/", body=body, headers=headers)
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    if resp.status >= 300:
        raise RuntimeError(f"IAM {action}: {resp.status} {text}")
    return text


def xml_value(text, tag):
    start = text.index(f"<{tag}>") + len(tag) + 2
    return text[start:text.index(f"</{tag}>", start)]


def sc_iam_enforce(ctx):
    """Warm invoke with IAM policy evaluation (`--iam enforce`, an IAM user's key whose policy
    allows the invocation) vs without (`--iam off`, the root key): the cost of authorization."""
    off = Strato("iam-off")
    on = Strato("iam-enforce", extra_args=["--iam", "enforce"])
    procs = [off, on]
    try:
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        iam_call(on.port, "CreateRole", {"RoleName": ROLE.rsplit("/", 1)[1], "AssumeRolePolicyDocument": trust})
        iam_call(on.port, "CreateUser", {"UserName": "bench"})
        # A realistic identity: an AWS managed policy, a group, and an inline allow naming the function.
        iam_call(on.port, "AttachUserPolicy", {"UserName": "bench",
                 "PolicyArn": "arn:aws:iam::aws:policy/CloudWatchLogsFullAccess"})
        iam_call(on.port, "PutUserPolicy", {"UserName": "bench", "PolicyName": "invoke", "PolicyDocument": json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Deny", "Action": "lambda:DeleteFunction", "Resource": "*"},
                {"Effect": "Allow", "Action": ["lambda:InvokeFunction", "lambda:GetFunction"],
                 "Resource": "arn:aws:lambda:us-east-1:000000000000:function:hello*",
                 "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}}]})})
        created = iam_call(on.port, "CreateAccessKey", {"UserName": "bench"})
        key = f"{xml_value(created, 'AccessKeyId')}:{xml_value(created, 'SecretAccessKey')}"
        off.deploy("hello", "node")
        on.deploy("hello", "node")
        targets = [
            ("Strato --iam off (root key)", {"url": off.url("hello"), "body": PAYLOAD, "sigv4": True}),
            ("Strato --iam enforce (IAM user, policies evaluated)",
             {"url": on.url("hello"), "body": PAYLOAD, "sigv4": True, "sigv4_key": key}),
        ]
        runs = warm_matrix(ctx, targets)
    finally:
        for p in reversed(procs):
            p.stop()
    return {"tables": warm_table("Warm invoke, Node.js, IAM enforcement off vs on", runs,
                                 "Strato --iam off (root key)"),
            "notes": ["Both servers run side by side in one run; the enforce row signs with an IAM "
                      "user's key, so every request is decided by its policies (cached per key, no DB)."]}


def sc_warm_http(ctx):
    """Warm invoke through an HTTP API route and a function URL: Strato vs serverless-offline's
    httpApi (both modes) and the floor."""
    av = available()
    st = Strato("warm-http")
    procs = [st]
    na = []
    try:
        st.deploy("hello", "node")
        api = st.api.quick_http_api("bench", "hello")
        url = st.api.public_function_url("hello")
        targets = [(STRATO_LABEL + ", HTTP API route", {"url": api + "/hello"}),
                   (STRATO_LABEL + ", function URL", {"url": url + "hello"})]
        if av["sls"]:
            for inproc in (False, True):
                off = shared_offline(inproc)
                label = "serverless-offline 13 httpApi, " + ("--useInProcess" if inproc else "default (worker threads)")
                targets.append((label, {"url": off.http_url}))
        else:
            na.append(("serverless-offline", "not installed"))
        fl = Floor()
        procs.append(fl)
        targets.append(("bare Node.js HTTP server (floor)", {"url": fl.url}))
        runs = warm_matrix(ctx, targets)
    finally:
        for p in reversed(procs):
            p.stop()
    return {"tables": warm_table("Warm invoke, HTTP API (GET /hello), Node.js", runs,
                                 STRATO_LABEL + ", HTTP API route", na),
            "notes": ["Strato: an HTTP API quick-created in front of the function (`$default` route and stage, "
                      "payload format 2.0) and a function URL with AuthType NONE, both addressed path-style "
                      "(`/_strato/execute-api/{id}/hello`, `/_strato/lambda-url/{id}/hello`) on the server's "
                      "own port; neither request is signed, as at AWS."]}


def _warm_runtime(ctx, key, rie_ok, title):
    st = Strato(f"warm-{key}")
    procs = [st]
    na = []
    try:
        st.deploy("hello", key)
        targets = [(STRATO_LABEL, {"url": st.url("hello"), "body": PAYLOAD, "sigv4": True})]
        if rie_ok:
            rie = Rie(key)
            procs.append(rie)
            peer = {"python": "RIE + awslambdaric (Python 3.11)", "go": "RIE + the same bootstrap (aws-lambda-go)"}[key]
            targets.append((peer, {"url": rie.url, "body": PAYLOAD, "max_concurrency": 1, "why": RIE_ONE_AT_A_TIME}))
        else:
            na.append(("RIE", "peer not installed"))
        fl = Floor()
        procs.append(fl)
        targets.append(("bare Node.js HTTP server (floor)", {"url": fl.url, "body": PAYLOAD}))
        runs = warm_matrix(ctx, targets)
    finally:
        for p in reversed(procs):
            p.stop()
    return {"tables": warm_table(title, runs, STRATO_LABEL, na), "notes": []}


def sc_warm_python(ctx):
    """Warm Invoke API, Python 3.11: Strato vs RIE + awslambdaric, concurrency 1 and 32."""
    av = available()
    return _warm_runtime(ctx, "python", av["rie"] and av["awslambdaric"], "Warm invoke, Invoke API, Python 3.11")


def sc_warm_go(ctx):
    """Warm Invoke API, Go (aws-lambda-go bootstrap on provided.al2023) vs RIE running the same bootstrap."""
    av = available()
    if not av["go-fn"]:
        return {"unavailable": "the Go function did not build (see bench/.work/logs)"}
    return _warm_runtime(ctx, "go", av["rie"], "Warm invoke, Invoke API, Go (provided.al2023)")


def java_available(st):
    """Whether this Strato runs Java, and with which runtime id: a create it refuses means 'not yet'."""
    if not available()["java-fn"]:
        return False, "the Java handler did not compile (no javac?)"
    reasons = []
    # java17 first: the host JDK on PATH, which the RIE Java peer runs too.
    for runtime in ("java17", "java21", "java11"):
        try:
            RUNTIMES["java"] = (runtime,) + RUNTIMES["java"][1:]
            st.deploy("java-probe", "java", memory=BENCH_MEMORY)
        except Exception as e:
            reasons.append(f"{runtime}: {str(e)[:160]}")
            continue
        status, body, _, _ = st.api.invoke("java-probe", b"{}", timed=True)
        if status != 200 or b"hello" not in body:
            return False, f"a {runtime} function did not answer (HTTP {status}: {body[:200]!r})"
        return True, runtime
    return False, "Strato refused every Java runtime: " + "; ".join(reasons)


def sc_warm_java(ctx):
    """Warm Invoke API, Java (when Strato runs Java) vs RIE + AWS's Java runtime interface client."""
    st = Strato("warm-java")
    procs = [st]
    na = []
    try:
        ok, runtime = java_available(st)
        if not ok:
            return {"unavailable": f"Java is not available in this Strato build yet ({runtime})."}
        targets = [(STRATO_LABEL, {"url": st.url("java-probe"), "body": PAYLOAD, "sigv4": True})]
        if available()["rie"] and java_ric_dir():
            rie = Rie("java")
            procs.append(rie)
            targets.append(("RIE + aws-lambda-java-runtime-interface-client (same JVM and flags)",
                            {"url": rie.url, "body": PAYLOAD, "max_concurrency": 1, "why": RIE_ONE_AT_A_TIME}))
        else:
            na.append(("RIE + Java RIC", "not available (Strato's Java RIC install not found)"))
        fl = Floor()
        procs.append(fl)
        targets.append(("bare Node.js HTTP server (floor)", {"url": fl.url, "body": PAYLOAD}))
        runs = warm_matrix(ctx, targets)
    finally:
        for p in reversed(procs):
            p.stop()
    return {"tables": warm_table(f"Warm invoke, Invoke API, Java ({runtime})", runs, STRATO_LABEL, na), "notes": []}


# Pause before each cold sample, so a server with stem cells has refilled its
# pool (the refill runs in the background after every cold start); the same
# pause is taken without stem cells.
COLD_SAMPLE_PAUSE_S = 0.5


def strato_cold_samples(st, name, n):
    """Forces a cold start before each sample by changing an environment variable."""
    ttfb, total = [], []
    errs = []
    for i in range(n):
        st.api.update_env(name, {"BENCH_SAMPLE": str(i)})
        st.api.wait_ready(name)
        time.sleep(COLD_SAMPLE_PAUSE_S)
        status, body, t1, t2 = st.api.invoke(name, PAYLOAD.encode(), timed=True)
        if status != 200:
            errs.append(f"HTTP {status} {body[:120]!r}")
            continue
        ttfb.append(t1 * 1000)
        total.append(t2 * 1000)
    return ttfb, errs


def timed_first_invoke(url, deadline_s=60):
    """Sends one unsigned POST as soon as the port accepts; returns ms to first byte of the response."""
    import http.client
    import urllib.parse

    u = urllib.parse.urlparse(url)
    t_end = time.time() + deadline_s
    while True:
        try:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            t0 = time.perf_counter()
            conn.request("POST", u.path, body=PAYLOAD, headers={"content-type": "application/json"})
            resp = conn.getresponse()
            t1 = time.perf_counter()
            body = resp.read()
            conn.close()
            return resp.status, body, t0, t1
        except (ConnectionRefusedError, ConnectionResetError):
            if time.time() > t_end:
                raise
            time.sleep(0.002)


def sc_cold_start(ctx):
    """Cold start to first byte, per runtime."""
    av = available()
    st = Strato("cold")
    st_plain = Strato("cold-nostem", stem_cells=0)
    # The same two without AWS's host names inside sandboxes (issue 20: the
    # resolver, the HTTPS listener and the CA bundle each instance gets).
    st_nonames = Strato("cold-nonames", extra_args=["--aws-hostnames", "off"])
    st_nonames_plain = Strato("cold-nonames-nostem", stem_cells=0, extra_args=["--aws-hostnames", "off"])
    tables, notes = [], []
    try:
        for key in ("node", "python", "go", "java"):
            rows = []
            if key == "java":
                ok, why = java_available(st)
                if ok:
                    ok, why = java_available(st_plain)
                if not ok:
                    rows.append({"label": STRATO_LABEL, "na": f"Java not available yet ({why})"})
                    tables.append({"title": "Cold start to first byte, Java", "kind": "samples", "rows": rows, "ref": None})
                    continue
                name = "java-probe"
            else:
                if key == "go" and not av["go-fn"]:
                    continue
                name = f"cold-{key}"
                for server in (st, st_plain, st_nonames, st_nonames_plain):
                    server.deploy(name, key)
            log(f"  cold start {key}: Strato")
            s, errs = strato_cold_samples(st, name, ctx.cold_samples)
            rows.append({"label": STRATO_LABEL + ", request → first byte (stem cells)", "samples": summary(s),
                         "errors": len(errs), "first_error": errs[0] if errs else None})
            log(f"  cold start {key}: Strato without stem cells")
            s, errs = strato_cold_samples(st_plain, name, ctx.cold_samples)
            rows.append({"label": STRATO_LABEL + ", request → first byte, without stem cells (--stem-cells 0)",
                         "samples": summary(s), "errors": len(errs), "first_error": errs[0] if errs else None})
            if key != "java":
                for server, label in ((st_nonames, "request → first byte (stem cells), without AWS host names "
                                                   "(--aws-hostnames off)"),
                                      (st_nonames_plain, "request → first byte, without stem cells, without AWS "
                                                         "host names")):
                    log(f"  cold start {key}: Strato {label}")
                    s, errs = strato_cold_samples(server, name, ctx.cold_samples)
                    rows.append({"label": f"{STRATO_LABEL}, {label}", "samples": summary(s), "errors": len(errs),
                                 "first_error": errs[0] if errs else None})
            if key == "node":
                # The same at AWS's default 128 MB, i.e. 128/1769 of a CPU.
                st.deploy("cold-node-128", "node", memory=128)
                s128, errs = strato_cold_samples(st, "cold-node-128", max(3, ctx.cold_samples // 3))
                rows.append({"label": LABEL_128, "samples": summary(s128),
                             "errors": len(errs), "first_error": errs[0] if errs else None})
            # RIE: a fresh emulator process per sample.
            rie_ok = av["rie"] and (key == "go" or (key == "node" and av["ric-node"]) or (key == "python" and av["awslambdaric"])
                                    or (key == "java" and java_ric_dir() is not None))
            if rie_ok:
                log(f"  cold start {key}: RIE")
                spawn, req = [], []
                for i in range(ctx.cold_samples):
                    rie = Rie(key, wait=True, tag=f"-cold{i}")
                    try:
                        status, body, t0, t1 = timed_first_invoke(rie.url)
                        if status == 200:
                            spawn.append((t1 - rie.proc.t_spawn) * 1000)
                            req.append((t1 - t0) * 1000)
                    finally:
                        rie.stop()
                rows.append({"label": "RIE, request → first byte (fresh emulator, port already open)", "samples": summary(req)})
                rows.append({"label": "RIE, process spawn → first byte", "samples": summary(spawn)})
            if key == "node":
                log("  cold start node: floor")
                spawn = []
                for i in range(ctx.cold_samples):
                    port = free_port()
                    p = Proc(f"floor-cold{i}", [NODE, os.path.join(FIX, "node", "floor.js"), str(port)], cpus=SUT_CPUS)
                    try:
                        status, body, t0, t1 = timed_first_invoke(f"http://127.0.0.1:{port}/")
                        spawn.append((t1 - p.t_spawn) * 1000)
                    finally:
                        p.stop()
                rows.append({"label": "bare Node.js server, process spawn → first byte (floor)", "samples": summary(spawn)})
            tables.append({"title": f"Cold start to first byte, {RUNTIMES[key][0]}", "kind": "samples", "rows": rows,
                           "ref": rows[0]["label"]})
    finally:
        for server in (st, st_plain, st_nonames, st_nonames_plain):
            server.stop()
    notes.append("Strato: each sample follows an UpdateFunctionConfiguration of an environment variable, which "
                 "retires the warm instance, so the timed Invoke starts a new sandbox and runtime; the time is "
                 "from sending the signed request to the first byte of the response, measured by a Python "
                 "http.client on the same host (the server was already running). RIE: a fresh emulator process "
                 "per sample; the request row starts once its port accepts, the spawn row includes the "
                 "emulator's own start. Bench functions use 1769 MB (one full vCPU); the 128 MB row shows what "
                 "AWS's CPU share (memory/1769 of a CPU, 0.07 of a CPU at 128 MB) does to the same cold start: "
                 "Strato runs a function's init with a whole CPU and applies the share afterwards. With few "
                 "samples, p99 is the maximum. Stem cells: a cold start adopts a sandbox whose runtime already "
                 "started (for Java, a JVM with AWS's runtime interface client loaded, per memory size); each "
                 "sample waits "
                 f"{COLD_SAMPLE_PAUSE_S} s first so the pool has refilled, on both servers alike.")
    return {"tables": tables, "notes": notes}


def sc_burst(ctx):
    """N concurrent first requests against a function with no warm instance (scale-out)."""
    n = ctx.burst_n
    av = available()
    rows = {}
    variants = [(STRATO_LABEL + " (default: queue briefly for a warm instance while the CPUs are busy starting)", [])]
    if strato_has_flag("--scale-out-wait-ms"):
        variants.append((STRATO_LABEL + " --scale-out-wait-ms 0 (always start another, as AWS)",
                         ["--scale-out-wait-ms", "0"]))
    for label, extra in variants:
        st = Strato("burst", keep_alive=60, extra_args=extra)
        try:
            for rep in range(ctx.burst_reps):
                name = f"burst-{rep}"
                st.deploy(name, "node")
                before = len(st.instance_cgroups())
                r = loadgen(url=st.url(name), concurrency=n, requests=n, body=PAYLOAD, sigv4=True, timeout=120)
                instances = len(st.instance_cgroups()) - before  # the instances this burst started
                rows.setdefault(label, []).append((r, instances))
                log(f"  burst rep {rep + 1}: {label}: {instances} instances")
        finally:
            st.stop()
    if av["sls"]:
        for rep in range(ctx.burst_reps):
            off = Offline(in_process=False)
            try:
                r = loadgen(url=off.invoke_url, concurrency=n, requests=n, body=PAYLOAD, timeout=120)
                rows.setdefault("serverless-offline 13 Invoke API, default (worker threads), fresh start", []).append((r, None))
            finally:
                off.stop()
    out = []
    for label, rs in rows.items():
        out.append({
            "label": label,
            "last": summary([r["last_response_s"] * 1000 for r, _ in rs if r.get("last_response_s")]),
            "p50": summary([r["latency"]["p50_ms"] for r, _ in rs if r["latency"]]),
            "ok": sum(r["status"]["2xx"] for r, _ in rs),
            "sent": n * len(rs),
            "errors": sum(errors(r) for r, _ in rs),
            "instances": summary([i for _, i in rs if i is not None]),
            "first_error": next((r.get("first_error") for r, _ in rs if r.get("first_error")), None),
        })
    out.append({"label": "RIE + aws-lambda-ric", "na": "not run: RIE serves one invocation at a time and concurrent "
                                                       "invokes crash it (see the warm scenarios)"})
    return {"tables": [{"title": f"Burst: {n} concurrent first requests, Node.js", "kind": "burst", "rows": out,
                        "ref": variants[0][0]}],
            "notes": [f"Each repetition sends {n} requests at once to a function with no warm instance (Strato: a "
                      "newly created function; the peers: a freshly started process) and measures the time until "
                      "the last response. `instances` for Strato counts the sandboxes the burst added to its process "
                      "tree (their cgroups: new instances and the stem cells launched to refill the pool). Each "
                      "repetition deploys a new function on the same server, so from the second burst on the "
                      "runtime's stem-cell pool has grown toward the first burst's size. Strato runs twice: "
                      "by default, while as many instances are starting as it has CPUs, an invocation with no idle "
                      "instance waits for one to come free until its function's instances have made no progress "
                      "(none came free, started or was starting) for 100 ms, at most 1 s while one is starting; "
                      "`--scale-out-wait-ms 0` always starts "
                      "another at once, as AWS does (docs/architecture.md, scale-out)."]}


def cgroup_memory(cg):
    for f in ("memory.usage_in_bytes", "memory.current"):
        try:
            with open(os.path.join(cg, f)) as fh:
                return int(fh.read().strip())
        except OSError:
            continue
    return None


def cgroup_stat(cg, key):
    try:
        with open(os.path.join(cg, "memory.stat")) as fh:
            for line in fh:
                k, v = line.split()
                if k == key:
                    return int(v)
    except OSError:
        pass
    return None


def sc_memory(ctx):
    """Strato's own memory per idle instance: instance cgroups against the server's RSS growth."""
    n = ctx.memory_n
    st = Strato("memory")
    rows = []
    try:
        st.deploy("mem", "node")
        st.api.invoke("mem", PAYLOAD.encode())  # warm the server's own paths with one instance
        time.sleep(1)
        before_rss = rss_kb(st.proc.pid)
        before_n = len(st.instance_cgroups())
        # n concurrent requests that each hold an instance for 1.5 s force n instances.
        loadgen(url=st.url("mem"), concurrency=n, requests=n, body='{"sleep":1500}', sigv4=True, timeout=120)
        time.sleep(2)  # idle
        after_rss = rss_kb(st.proc.pid)
        cgs = st.instance_cgroups()
        usage = [cgroup_memory(cg) for cg in cgs]
        rss_in_cg = [cgroup_stat(cg, "total_rss") or cgroup_stat(cg, "rss") or cgroup_stat(cg, "anon") for cg in cgs]
        procs_rss = []
        for cg in cgs:
            try:
                with open(os.path.join(cg, "cgroup.procs")) as fh:
                    procs_rss.append(sum(rss_kb(int(p)) for p in fh.read().split()) * 1024)
            except OSError:
                pass
        added = max(1, len(cgs) - before_n)
        rows.append({"label": "instances warmed and idle", "value": f"{len(cgs)} (asked for {n}; {before_n} before)"})
        rows.append({"label": "instance cgroup memory.usage_in_bytes, per instance (median, min–max)",
                     "value": fmt_mib_summary(summary([u for u in usage if u]))})
        rows.append({"label": "instance cgroup rss (memory.stat), per instance (median, min–max)",
                     "value": fmt_mib_summary(summary([u for u in rss_in_cg if u]))})
        rows.append({"label": "instance processes' VmRSS summed (counts shared node binary pages), per instance",
                     "value": fmt_mib_summary(summary([u for u in procs_rss if u]))})
        rows.append({"label": "strato server RSS before → after",
                     "value": f"{before_rss / 1024:.1f} MiB → {after_rss / 1024:.1f} MiB"})
        rows.append({"label": "strato server RSS growth per added instance",
                     "value": f"{(after_rss - before_rss) / 1024 / added:.2f} MiB"})
    finally:
        st.stop()
    # What the same runtime costs outside Strato.
    fl = Floor()
    try:
        loadgen(url=fl.url, concurrency=1, requests=20)
        time.sleep(0.5)
        rows.append({"label": "bare Node.js server process RSS, idle (what the runtime alone costs)",
                     "value": f"{rss_kb(fl.proc.pid) / 1024:.1f} MiB"})
    finally:
        fl.stop()
    av = available()
    if av["rie"] and av["ric-node"]:
        rie = Rie("node", tag="-mem")
        try:
            loadgen(url=rie.url, concurrency=1, requests=20, body=PAYLOAD)
            time.sleep(0.5)
            rows.append({"label": "RIE + aws-lambda-ric, idle after 20 invokes: emulator RSS / runtime RSS",
                         "value": f"{rss_kb(rie.proc.pid) / 1024:.1f} MiB / "
                                  f"{sum(rss_kb(p) for p in descendants(rie.proc.pid)) / 1024:.1f} MiB"})
        finally:
            rie.stop()
    return {"tables": [{"title": f"Memory per idle Node.js instance ({n} instances)", "kind": "kv", "rows": rows}],
            "notes": ["An instance's cgroup (v1) is charged for the memory its processes allocate and the page "
                      "cache they bring in first; pages of the node binary already cached by another process "
                      "are not charged to it, which is why the cgroup figure is far below the processes' VmRSS. "
                      "Each instance holds the runtime plus Strato's sandbox init processes (inside the same "
                      "cgroup). Strato's own cost per instance is the growth of the server's RSS."]}


def fmt_mib_summary(s):
    if not s:
        return "n/a"
    return f"{s['median'] / 2**20:.1f} MiB ({s['min'] / 2**20:.1f}–{s['max'] / 2**20:.1f})"


def sc_control_plane(ctx):
    """GetFunction p50 and ListFunctions page latency at 10 000 and 100 000 functions."""
    st = Strato("cp")
    rows = []
    tiny = zip_of({"index.js": b"exports.handler=async()=>1"})
    b64 = base64.b64encode(tiny).decode()
    created = 0
    try:
        for size in ctx.cp_sizes:
            todo = size - created
            body = json.dumps({"FunctionName": "cp-{i}", "Runtime": "nodejs20.x", "Role": ROLE,
                               "Handler": "index.handler", "Code": {"ZipFile": b64}})
            # `{i}` is the request index; offset it past the functions that exist.
            body = body.replace("cp-{i}", "cp-" + ("{i}" if created == 0 else "x%d-{i}" % created))
            log(f"  creating {todo} functions (have {created})")
            t0 = time.time()
            r = loadgen(url=f"http://127.0.0.1:{st.port}/2015-03-31/functions", concurrency=8, requests=todo,
                        body=body, sigv4=True, threads=1, duration=1800, timeout=120)
            dt = time.time() - t0
            created += r["status"]["2xx"]
            create_rate = r["status"]["2xx"] / dt if dt else 0
            log(f"  created {r['status']['2xx']} in {dt:.0f}s ({errors(r)} errors: {r.get('first_error')})")
            get_url = f"http://127.0.0.1:{st.port}/2015-03-31/functions/cp-{{n}}"
            n_range = min(created, ctx.cp_sizes[0])
            g = [loadgen(url=get_url, concurrency=1, requests=ctx.cp_samples, sigv4=True, n_range=n_range, warmup=20)
                 for _ in range(3)]
            lst = [loadgen(url=f"http://127.0.0.1:{st.port}/2015-03-31/functions/?MaxItems=50", concurrency=1,
                           requests=max(20, ctx.cp_samples // 10), sigv4=True, warmup=3) for _ in range(3)]
            # A page deep in the listing: follow the first page's marker.
            first = st.api.request("GET", "/2015-03-31/functions/", query=[("MaxItems", "50")])
            marker = first.get("NextMarker")
            deep = None
            if marker:
                import urllib.parse
                deep = [loadgen(url=f"http://127.0.0.1:{st.port}/2015-03-31/functions/?MaxItems=50&Marker="
                                + urllib.parse.quote(marker, safe=""), concurrency=1,
                                requests=max(20, ctx.cp_samples // 10), sigv4=True, warmup=3) for _ in range(3)]
            rows.append({"label": f"{created} functions", "create_rps": create_rate,
                         "get": summary([x["latency"]["p50_ms"] for x in g]),
                         "get_p99": summary([x["latency"]["p99_ms"] for x in g]),
                         "list": summary([x["latency"]["p50_ms"] for x in lst]),
                         "list2": summary([x["latency"]["p50_ms"] for x in deep]) if deep else None,
                         "errors": sum(errors(x) for x in g + lst + (deep or [])) + errors(r),
                         "db": dir_size(st.data)})
    finally:
        st.stop()
    return {"tables": [{"title": "Control plane at scale", "kind": "cp", "rows": rows}],
            "notes": ["Functions are created through CreateFunction (8 concurrent, the smallest zip). GetFunction "
                      "picks names spread over the functions created first; ListFunctions pages hold 50 items "
                      "(first page, and the page after the first marker). Figures are the median over 3 runs of "
                      "each run's p50. None of the peers has a control plane to compare with."]}


def dir_size(path):
    total = 0
    for dirpath, _, names in os.walk(path):
        for n in names:
            try:
                total += os.path.getsize(os.path.join(dirpath, n))
            except OSError:
                pass
    return total


def sc_concurrency_limit(ctx):
    """1 000 concurrent requests against a reserved concurrency of 100: exact 429 count, zero 5xx."""
    st = Strato("limit")
    try:
        # 128 MB: a hundred instances at a whole vCPU each would only queue
        # on the one pinned CPU.
        st.deploy("limited", "node", memory=128)
        try:
            st.api.request("PUT", "/2017-10-31/functions/limited/concurrency", {"ReservedConcurrentExecutions": 100})
        except awsclient.ApiError as e:
            return {"unavailable": f"not available in Strato yet: PutFunctionConcurrency answers HTTP {e.status} "
                                   "(concurrency limits and 429s are not built). The scenario is ready to run when they land."}
        n = 1000 if not ctx.quick else 300
        # Each admitted request holds its instance for 20 s: far longer than it
        # takes the single pinned CPU to answer all n requests (100 cold
        # starts included), so no slot frees while requests still arrive.
        r = loadgen(url=st.url("limited"), concurrency=n, requests=n, body='{"sleep":20000}', sigv4=True, timeout=120)
    finally:
        st.stop()
    rows = [{"label": "reserved concurrency (so at most this many 2xx; the rest 429)", "value": "100"},
            {"label": "requests sent", "value": str(n)},
            {"label": "2xx", "value": str(r["status"]["2xx"])},
            {"label": "429", "value": str(r["status"]["429"])},
            {"label": "5xx", "value": str(r["status"]["5xx"])},
            {"label": "transport errors / timeouts", "value": f"{r['transport_errors']} / {r['timeouts']}"},
            {"label": "p50 / p99 of all responses", "value": f"{r['latency']['p50_ms']:.1f} / {r['latency']['p99_ms']:.1f} ms"}]
    return {"tables": [{"title": f"{n} concurrent requests, reserved concurrency 100", "kind": "kv", "rows": rows}],
            "notes": ["Each admitted request holds its instance for 20 s, longer than it takes to answer all of "
                      "them, so at most 100 can run and the rest must be 429. The function has 128 MB. "
                      "Strato runs with --memory-budget-mb raised for every scenario: its default budget "
                      "(80 % of the machine, counted in MemorySize) admits only 10 instances of 1769 MB here, "
                      "and refuses the rest with 429 as well."]}


# What every collecting handler starts with: how it finds the harness.
COLLECTOR_GATEWAY_JS = r"""
const fs = require('fs');
const net = require('net');
// The host end of the instance's veth pair (its default route): where the harness listens.
function gateway() {
  const line = fs.readFileSync('/proc/net/route', 'utf8').split('\n')
    .map((l) => l.trim().split(/\s+/)).find((f) => f[1] === '00000000');
  return [6, 4, 2, 0].map((i) => parseInt(line[2].substr(i, 2), 16)).join('.');
}
"""

COUNTER_JS = COLLECTOR_GATEWAY_JS + r"""
exports.handler = (event) => new Promise((resolve, reject) => {
  const socket = net.connect(Number(process.env.COLLECTOR_PORT), gateway(), () => socket.write(event.id + '\n'));
  let reply = '';
  socket.on('data', (d) => { reply += d; if (reply.includes('\n')) { socket.end(); resolve('counted'); } });
  socket.on('error', reject);
});
"""


class Collector:
    """Counts the ids functions report over TCP (one line each, acknowledged), so a run is counted
    by the handler's own output, not by Strato's logs. Listens on all addresses: sandboxes reach
    it through their veth pair's host end; only this machine's namespaces can."""

    def __init__(self):
        import collections
        import threading

        self.counts = collections.Counter()
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading

        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            conn.settimeout(30)
            data = b""
            try:
                while b"\n" not in data:
                    chunk = conn.recv(256)
                    if not chunk:
                        return
                    data += chunk
                with self.lock:
                    self.counts[data.split(b"\n")[0].decode()] += 1
                conn.sendall(b"k\n")
            except OSError:
                return

    def snapshot(self):
        with self.lock:
            return dict(self.counts)

    def close(self):
        self.closed = True
        self.sock.close()


def _send_events(port, ids, stop_flag, accepted, threads=8):
    """Event invocations of `counter` with the given ids, from a few threads at full speed;
    each id whose answer was 202 is accepted. Stops when the server is gone."""
    import threading

    lock = threading.Lock()
    chunks = [ids[i::threads] for i in range(threads)]

    def worker(chunk):
        api = awsclient.Lambda(port)
        try:
            for event_id in chunk:
                if stop_flag.is_set():
                    return
                try:
                    status, _, _, _ = api.request(
                        "POST", "/2015-03-31/functions/counter/invocations",
                        json.dumps({"id": event_id}).encode(), timed=True,
                        headers={"x-amz-invocation-type": "Event"})
                except (OSError, ConnectionError, Exception):
                    return
                if status == 202:
                    with lock:
                        accepted.add(event_id)
        finally:
            api.close()

    workers = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for w in workers:
        w.start()
    return workers


def sc_async_durability(ctx):
    """Event invocations accepted at full speed, the server killed with SIGKILL at random moments,
    restarted on the same data: every accepted event must run at least once."""
    import random
    import threading

    n = 2000 if ctx.quick else 10_000
    kills = 1 if ctx.quick else 3
    collector = Collector()
    st = Strato("async")
    data = st.data
    rows = []
    try:
        st.api.create_function("counter", "nodejs20.x", "index.handler", zip_of({"index.js": COUNTER_JS}),
                               memory=BENCH_MEMORY, env={"COLLECTOR_PORT": str(collector.port)})
        st.api.wait_ready("counter")
        # A bounded scale-out on two cores; the events queue behind it.
        st.api.request("PUT", "/2017-10-31/functions/counter/concurrency", {"ReservedConcurrentExecutions": 8})
        ids = [f"e{i}" for i in range(n)]
        accepted = set()
        stop_flag = threading.Event()
        t0 = time.perf_counter()
        workers = _send_events(st.port, ids, stop_flag, accepted)
        rng = random.Random(int(time.time()))
        # The first kill lands while events are still being accepted.
        time.sleep(rng.uniform(1.0, 3.0))
        stop_flag.set()
        st.kill9()
        for w in workers:
            w.join()
        send_s = time.perf_counter() - t0
        rows.append({"label": "events answered 202 before the first kill", "value": str(len(accepted))})
        rows.append({"label": "acceptance rate until the kill", "value": f"{len(accepted) / send_s:.0f} events/s"})
        ran_before = len(collector.snapshot())
        rows.append({"label": "of them run before the first kill", "value": str(ran_before)})
        for k in range(1, kills):
            # Later kills land while the restarted server drains the queue.
            st = Strato("async", data=data)
            time.sleep(rng.uniform(2.0, 6.0))
            st.kill9()
            rows.append({"label": f"kill {k + 1}: ids seen so far", "value": str(len(collector.snapshot()))})
        st = Strato("async", data=data)
        t1 = time.perf_counter()
        deadline = time.time() + (120 if ctx.quick else 600)
        last_progress, last_seen = time.time(), -1
        while time.time() < deadline:
            seen = collector.snapshot()
            if accepted <= set(seen):
                break
            if len(seen) != last_seen:
                last_seen, last_progress = len(seen), time.time()
            elif time.time() - last_progress > 60:
                break
            time.sleep(0.2)
        drain_s = time.perf_counter() - t1
        seen = collector.snapshot()
        lost = accepted - set(seen)
        duplicates = sum(c - 1 for c in seen.values() if c > 1)
        rows += [
            {"label": "SIGKILLs of the server", "value": str(kills)},
            {"label": "accepted events that ran at least once", "value": f"{len(accepted) - len(lost)} of {len(accepted)}"},
            {"label": "accepted events never run (lost)", "value": str(len(lost))},
            {"label": "extra runs (duplicates, at-least-once)", "value": str(duplicates)},
            {"label": "runs of events never answered 202 (in flight at a kill)", "value": str(len(set(seen) - accepted))},
            {"label": "time to drain after the last restart", "value": f"{drain_s:.1f} s"},
        ]
    finally:
        st.stop()
        collector.close()
    return {"tables": [{"title": f"up to {n} event invocations sent, the first kill while they are being accepted, "
                                 f"{kills} × kill -9 in all", "kind": "kv", "rows": rows}],
            "notes": ["The handler reports each event's id to the harness over TCP and waits for an "
                      "acknowledgement, so a run counts only once the harness has it. Events are sent by 8 "
                      "threads of Python's http.client (the acceptance rate is theirs, not a Strato limit). "
                      "The function has reserved concurrency 8. Duplicates are events whose run was reported "
                      "but whose deletion from the queue had not been committed when the server was killed: "
                      "at-least-once delivery, as AWS promises."]}


QUEUE_BENCH = os.path.join(ROOT, "target", "release", "examples", "throughput")


def sc_queue_throughput(ctx):
    """The durable queue engine alone (crates/strato-queue): send, receive+delete, and the three at
    once, batches of 10, in both durability modes."""
    if not os.path.exists(QUEUE_BENCH):
        return {"unavailable": "the queue benchmark was not built (cargo build --release -p strato-queue --example throughput)"}
    n = 20_000 if ctx.quick else 200_000
    rows = []
    for durability, concurrency in (("process-crash", 8), ("fsync", 8), ("fsync", 64)):
        with tempfile.TemporaryDirectory(dir=WORK) as d:
            args = ([] if not PIN else ["taskset", "-c", SUT_CPUS]) + [
                QUEUE_BENCH, "--messages", str(n), "--batch", "10", "--concurrency", str(concurrency),
                "--durability", durability, "--dir", d]
            out = subprocess.run(args, capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            rows.append({"label": f"{durability}, {concurrency} tasks", "value": f"failed: {out.stderr.strip()[-200:]}"})
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        c = r["combined"]
        rows.append({"label": f"{durability}, {concurrency} tasks: send / receive+delete / all three at once",
                     "value": f"{r['send']['messages_per_s']:,} / {r['receive_delete']['messages_per_s']:,} / "
                              f"{c['messages_per_s']:,} messages/s"})
        rows.append({"label": f"{durability}, {concurrency} tasks: p50 / p99 per batch (send, receive, delete, all at once)",
                     "value": " · ".join(f"{c[k]['p50_ms']:.2f} / {c[k]['p99_ms']:.2f} ms" for k in ("send", "receive", "delete"))})
    rows.append({"label": "index memory per queued message", "value": f"{r.get('index_bytes_per_message', '?')} bytes (bodies stay in SQLite)"})
    return {"tables": [{"title": f"{n:,} messages of 256 bytes, batches of 10", "kind": "kv", "rows": rows}],
            "notes": ["`process-crash` commits survive `kill -9` of the server (SQLite WAL, synchronous=NORMAL); "
                      "`fsync` commits survive power loss (synchronous=FULL) and are Strato's default "
                      "(`--durability`). One writer thread commits every batch of operations waiting at once "
                      "(group commit), so fsync's cost is shared by all concurrent callers: more tasks, more "
                      "throughput. The benchmark process is pinned to CPU 0 like every system under test."]}


SQS_DRIVER = os.path.join(HERE, "lib", "sqsdriver.py")
MOTO_SERVER = os.path.join(WORK, "venv-moto", "bin", "moto_server")
ELASTICMQ_LIB = os.path.join(WORK, "elasticmq", "lib")
ELASTICMQ_VERSION = "1.6.11"


class Moto:
    """moto's standalone server (PyPI `moto[server]`), pinned like every system under test."""

    def __init__(self):
        self.port = free_port()
        self.proc = Proc("moto", [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(self.port)], cpus=SUT_CPUS)
        wait_port(self.port, 60, self.proc)

    def stop(self):
        self.proc.stop()


def add_moto(targets, notes, label="moto server"):
    """moto's server as a peer among `targets`, or a note that it is not installed."""
    if os.path.exists(MOTO_SERVER):
        targets.append((label, Moto))
    else:
        notes.append("moto was not installed (bench/run installs `moto[server]` into bench/.work/venv-moto).")


class ElasticMq:
    """ElasticMQ's server (Maven Central `org.elasticmq:elasticmq-server_2.13`) on Java 17, its SQS
    REST endpoint on a free port of 127.0.0.1, in-memory queues (its default)."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="elasticmq-", dir=WORK)
        conf = os.path.join(self.dir, "elasticmq.conf")
        with open(conf, "w") as f:
            f.write('include classpath("application.conf")\n'
                    f'node-address {{ protocol = http, host = "127.0.0.1", port = {self.port}, context-path = "" }}\n'
                    f'rest-sqs {{ enabled = true, bind-port = {self.port}, bind-hostname = "127.0.0.1" }}\n'
                    'rest-stats { enabled = false }\n')
        java = shutil.which("java") or "java"
        self.proc = Proc("elasticmq", [java, f"-Dconfig.file={conf}", "-cp", os.path.join(ELASTICMQ_LIB, "*"),
                                       "org.elasticmq.server.Main"], cpus=SUT_CPUS)
        try:
            wait_port(self.port, 120, self.proc)
        except Exception:
            self.stop()
            raise

    def stop(self):
        self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


STRATO_FSYNC_LABEL = "Strato (fsync, the default)"
STRATO_PROCESS_CRASH_LABEL = "Strato (--durability process-crash)"


def strato_durabilities(tag):
    """Strato twice, as the targets (label, start) of a scenario that writes: with the default
    `--durability fsync` (an answered write survives power loss) and with `process-crash` (it
    survives kill -9 of the server; the OS writes it to disk later)."""
    return [(STRATO_FSYNC_LABEL, lambda: Strato(f"{tag}-fsync")),
            (STRATO_PROCESS_CRASH_LABEL,
             lambda: Strato(f"{tag}-pc", extra_args=["--durability", "process-crash"]))]


def strato_and_moto(tag):
    """The targets (label, start) of a scenario run on Strato and moto's server, and a note when
    moto is missing."""
    targets = [("Strato", lambda: Strato(tag))]
    notes = []
    add_moto(targets, notes)
    return targets, notes


def _sqs_drive(port, queue, workers, seconds):
    """One bounded run of lib/sqsdriver.py (pinned to the load generator's CPU) on a new queue."""
    args = ([] if not PIN else ["taskset", "-c", LOADGEN_CPUS]) + [
        sys.executable, SQS_DRIVER, "--port", str(port), "--create-queue", queue,
        "--workers", str(workers), "--seconds", str(seconds)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 300)
    if out.returncode != 0:
        return {"error": (out.stderr.strip() or out.stdout.strip())[-300:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def sc_sqs_throughput(ctx):
    """The same SQS client loop (SendMessageBatch 10 × 256 B, ReceiveMessage 10 with a 1 s long
    poll, DeleteMessageBatch) against Strato (both queue durabilities), moto and ElasticMQ."""
    seconds = 4 if ctx.quick else 6
    reps = 1 if ctx.quick else 2
    targets = strato_durabilities("sqs")
    notes = []
    add_moto(targets, notes, "moto server")
    if os.path.isdir(ELASTICMQ_LIB):
        targets.append((f"ElasticMQ {ELASTICMQ_VERSION}", ElasticMq))
    else:
        notes.append("ElasticMQ is not available: its jars could not be fetched from Maven Central "
                     "(bench/run puts them into bench/.work/elasticmq/lib).")
    results = {}  # (label, workers) -> [run]
    for rep in range(reps):
        for label, start in targets:
            try:
                server = start()
            except Exception as e:
                results.setdefault((label, 0), []).append({"error": f"did not start: {e}"})
                continue
            try:
                for workers in (1, 16):
                    r = _sqs_drive(server.port, f"bench-{rep}-{workers}", workers, seconds)
                    results.setdefault((label, workers), []).append(r)
                    log(f"sqs-throughput {label} × {workers}: {r.get('messages_per_s', r.get('error'))}")
            finally:
                server.stop()
    rows = []
    medians = {}
    for (label, workers), runs in results.items():
        ok = [r for r in runs if "error" not in r]
        if not ok:
            rows.append({"target": label, "workers": str(workers), "messages/s": "failed: " + runs[0]["error"][:200]})
            continue
        m = statistics.median(r["messages_per_s"] for r in ok)
        medians[(label, workers)] = m

        def lat(kind):
            p50 = statistics.median(r["calls"][kind]["p50_ms"] or 0 for r in ok)
            p99 = statistics.median(r["calls"][kind]["p99_ms"] or 0 for r in ok)
            return f"{p50:.2f} / {p99:.2f}"
        rows.append({"target": label, "workers": str(workers),
                     "messages/s": f"{m:,.0f} (min {min(r['messages_per_s'] for r in ok):,}, max {max(r['messages_per_s'] for r in ok):,})",
                     "send p50/p99 ms": lat("send"), "receive p50/p99 ms": lat("receive"),
                     "delete p50/p99 ms": lat("delete"),
                     "client CPU (of 1 core)": f"{statistics.median(r['client_cpu_of_core'] for r in ok):.2f}"})
    ratios = []
    for workers in (1, 16):
        base = medians.get((targets[0][0], workers))
        for label, _ in targets[2:]:
            other = medians.get((label, workers))
            if base and other:
                ratios.append({"label": f"{workers} worker(s): Strato (fsync) ÷ {label}", "value": f"{base / other:.1f}×"})
        pc = medians.get((targets[1][0], workers))
        if base and pc:
            ratios.append({"label": f"{workers} worker(s): process-crash ÷ fsync", "value": f"{pc / base:.2f}×"})
    notes += [
        f"{seconds} s per run, {reps} repetition(s), targets interleaved within each repetition; the table gives the "
        "median over repetitions (messages/s: min and max too). messages/s counts messages deleted, i.e. the "
        "full send → receive → delete round trip.",
        "The client is `bench/lib/sqsdriver.py`: one Python process per worker with one keep-alive connection, "
        "SigV4-signed awsJson 1.0 requests (what current SDKs send), pinned to CPU 1 while the server is pinned "
        "to CPU 0. Its own CPU use is the last column: where it nears 1.00 the client, not the server, sets "
        "the figure, which is then a lower bound for that server.",
        "moto keeps queues in memory; ElasticMQ too (its default); Strato commits every send and delete to its "
        "durable queue engine (SQLite WAL), with an fsync per group commit in the default mode.",
    ]
    cols = ["target", "workers", "messages/s", "send p50/p99 ms", "receive p50/p99 ms", "delete p50/p99 ms",
            "client CPU (of 1 core)"]
    return {"tables": [{"title": "SendMessageBatch + ReceiveMessage + DeleteMessageBatch loops", "kind": "table",
                        "columns": cols, "rows": rows},
                       {"title": "ratios of medians (same run)", "kind": "kv", "rows": ratios}],
            "notes": notes}


# ---------------------------------------------------------------------------------------------
# S3: Strato's object store beside moto's server


S3_BUCKET = "bench"
S3_CHUNK = 1024 * 1024


def _s3_call(port, method, path, query=(), body=b"", payload_hash=None, headers=None, timeout=600):
    """One SigV4-signed S3 request (path style) on a fresh connection; (status, headers, body).
    `body` may be an iterable of chunks (sent as they come) when `payload_hash` is given."""
    host = f"127.0.0.1:{port}"
    signed = awsclient.sign_headers(method, host, path, list(query), body if isinstance(body, bytes) else b"",
                                    "test", "test", "us-east-1", "s3", payload_hash=payload_hash)
    signed.update(headers or {})
    url = path + ("?" + urllib.parse.urlencode(list(query)) if query else "")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, url, body=body, headers=signed)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def _s3_stream_put(port, key, size, chunks, on_chunk=None):
    """PUT of `size` bytes from the iterable `chunks` (UNSIGNED-PAYLOAD, streamed as sent); seconds.
    `on_chunk` is called after each chunk; when it returns False the request is cut (RuntimeError)."""
    def body():
        for chunk in chunks:
            yield chunk
            if on_chunk is not None and on_chunk() is False:
                raise RuntimeError("upload cut")
    t0 = time.perf_counter()
    status, _, raw = _s3_call(port, "PUT", f"/{S3_BUCKET}/{key}", body=body(), payload_hash="UNSIGNED-PAYLOAD",
                              headers={"content-length": str(size)})
    if status != 200:
        raise RuntimeError(f"PUT {key}: HTTP {status} {raw[:200]!r}")
    return time.perf_counter() - t0


def _file_chunks(path):
    with open(path, "rb") as f:
        while True:
            chunk = f.read(S3_CHUNK)
            if not chunk:
                return
            yield chunk


def _s3_download(port, key, dest):
    """GET of `key` into the file `dest`, streamed; (seconds, bytes)."""
    host = f"127.0.0.1:{port}"
    path = f"/{S3_BUCKET}/{key}"
    headers = awsclient.sign_headers("GET", host, path, [], b"", "test", "test", "us-east-1", "s3")
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    n = 0
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"GET {key}: HTTP {resp.status}")
        with open(dest, "wb") as f:
            while True:
                chunk = resp.read(S3_CHUNK)
                if not chunk:
                    break
                f.write(chunk)
                n += len(chunk)
    finally:
        conn.close()
    return time.perf_counter() - t0, n


def _s3_list_all(port, prefix):
    """Every page of ListObjectsV2 under `prefix` (1 000 keys a page); (seconds, keys, pages)."""
    t0 = time.perf_counter()
    keys = pages = 0
    token = None
    while True:
        query = [("list-type", "2"), ("prefix", prefix)]
        if token:
            query.append(("continuation-token", token))
        status, _, raw = _s3_call(port, "GET", f"/{S3_BUCKET}", query=query)
        if status != 200:
            raise RuntimeError(f"ListObjectsV2: HTTP {status} {raw[:200]!r}")
        text = raw.decode()
        keys += text.count("<Key>")
        pages += 1
        token = xml_value(text, "NextContinuationToken") if "<NextContinuationToken>" in text else None
        if "<IsTruncated>true</IsTruncated>" not in text or not token:
            return time.perf_counter() - t0, keys, pages


def _s3_small_objects(port, quick):
    """PUT then GET of 4 KiB objects (1 000 keys) at c=1 and c=32 through the load generator."""
    base = f"http://127.0.0.1:{port}/{S3_BUCKET}/small-{{n}}"
    body = "x" * 4096
    common = {"url": base, "sigv4": True, "sigv4_service": "s3", "n_range": 1000}
    # Every key exists before the GETs (the stride visits all of 0..1000 in 1 000 requests).
    loadgen(method="PUT", body=body, concurrency=32, requests=1000, **common)
    out = {}
    for c in (1, 32):
        for op, extra in (("PUT", {"method": "PUT", "body": body}), ("GET", {})):
            r = loadgen(concurrency=c, duration=2 if quick else 8, warmup=0 if quick else 100, **common, **extra)
            out[(op, c)] = r
            log(f"s3 {op} 4 KiB × c={c} on :{port}: {ok_rps(r):,.0f}/s, errors {errors(r)}")
    return out


def _s3_rss_during(server_pid, port, size, cap_kb):
    """Streams `size` bytes into one object while sampling the server's RSS every 100 ms; the
    upload is cut when the RSS passes `cap_kb`. (baseline KiB, peak KiB, seconds, cut)."""
    import threading
    base = rss_kb(server_pid)
    peak = [base]
    cut = [False]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kb(server_pid))
            done.wait(0.1)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    block = os.urandom(S3_CHUNK)

    def keep_going():
        if peak[0] > cap_kb:
            cut[0] = True
            return False
        return True
    t0 = time.perf_counter()
    try:
        _s3_stream_put(port, "streamed", size, (block for _ in range(size // S3_CHUNK)), keep_going)
    except (RuntimeError, OSError, http.client.HTTPException):
        if not cut[0]:
            raise
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    peak[0] = max(peak[0], rss_kb(server_pid))
    return base, peak[0], seconds, cut[0]


def sc_s3(ctx):
    """S3 on Strato beside moto's server: 4 KiB PUT/GET per second at c=1 and 32, 1 GiB upload and
    download against `cp` of the same file, ListObjectsV2 over 100 000 keys, and the server's RSS
    while a 5 GiB object streams in."""
    big = (128 if ctx.quick else 1024) * S3_CHUNK
    list_keys = 2_000 if ctx.quick else 100_000
    stream_size = (512 if ctx.quick else 5 * 1024) * S3_CHUNK
    rss_cap_kb = 8 * 1024 * 1024
    targets = strato_durabilities("s3")
    notes = []
    add_moto(targets, notes)
    scratch = tempfile.mkdtemp(prefix="s3-", dir=WORK)
    source = os.path.join(scratch, "source.bin")
    with open(source, "wb") as f:
        for _ in range(big // S3_CHUNK):
            f.write(os.urandom(S3_CHUNK))
    t0 = time.perf_counter()
    subprocess.run(["cp", source, os.path.join(scratch, "copy.bin")], check=True)
    cp_s = time.perf_counter() - t0
    os.remove(os.path.join(scratch, "copy.bin"))
    # The disk's own rate for a write that must reach it, as an fsync'd PUT's must: the same copy,
    # then fsync.
    t0 = time.perf_counter()
    with open(source, "rb") as src, open(os.path.join(scratch, "copy.bin"), "wb") as dst:
        shutil.copyfileobj(src, dst, S3_CHUNK)
        dst.flush()
        os.fsync(dst.fileno())
    durable_cp_s = time.perf_counter() - t0
    os.remove(os.path.join(scratch, "copy.bin"))
    mb = big / 1e6
    small_rows, big_rows, list_rows, rss_rows = [], [], [], []
    rps = {}
    try:
        for label, start in targets:
            try:
                server = start()
            except Exception as e:
                small_rows.append({"target": label, "operation": "-", "concurrency": "-",
                                   "objects/s": f"did not start: {e}"[:200]})
                continue
            try:
                status, _, raw = _s3_call(server.port, "PUT", f"/{S3_BUCKET}")
                if status != 200:
                    raise RuntimeError(f"CreateBucket: HTTP {status} {raw[:200]!r}")
                for (op, c), r in _s3_small_objects(server.port, ctx.quick).items():
                    lat = r.get("latency") or {}
                    rps[(label, op, c)] = ok_rps(r)
                    small_rows.append({"target": label, "operation": f"{op} 4 KiB", "concurrency": str(c),
                                       "objects/s": f"{ok_rps(r):,.0f}",
                                       "p50 / p99 ms": f"{lat.get('p50_ms', 0):.2f} / {lat.get('p99_ms', 0):.2f}",
                                       "errors": str(errors(r))})
                up = _s3_stream_put(server.port, "big", big, _file_chunks(source))
                down, got = _s3_download(server.port, "big", os.path.join(scratch, "down.bin"))
                os.remove(os.path.join(scratch, "down.bin"))
                big_rows.append({"target": label, "upload MB/s": f"{mb / up:,.0f}",
                                 "download MB/s": f"{mb / down:,.0f}" + ("" if got == big else f" (got {got:,} B)"),
                                 "cp MB/s (same file, same disk)": f"{mb / cp_s:,.0f}",
                                 "copy + fsync MB/s": f"{mb / durable_cp_s:,.0f}"})
                log(f"s3 {label}: upload {mb / up:,.0f} MB/s, download {mb / down:,.0f} MB/s, cp {mb / cp_s:,.0f}, "
                    f"copy + fsync {mb / durable_cp_s:,.0f}")
                if label == STRATO_FSYNC_LABEL:
                    # Listing and memory do not depend on when a write reaches the disk; filling
                    # 100 000 keys one fsync'd PUT at a time would only lengthen the run.
                    continue
                filled = loadgen(url=f"http://127.0.0.1:{server.port}/{S3_BUCKET}/list/k{{i}}", method="PUT",
                                 body="x", concurrency=32, requests=list_keys, sigv4=True, sigv4_service="s3",
                                 timeout=120)
                seconds, keys, pages = _s3_list_all(server.port, "list/")
                list_rows.append({"target": label, "keys": f"{keys:,}" + ("" if keys == list_keys else
                                                                       f" (of {list_keys:,})"),
                                  "pages": str(pages), "all pages s": f"{seconds:.2f}",
                                  "keys/s": f"{keys / seconds:,.0f}",
                                  "PUTs to fill (objects/s)": f"{ok_rps(filled):,.0f}"})
                log(f"s3 {label}: listed {keys:,} keys in {pages} pages, {seconds:.2f} s")
                base, peak, secs, cut = _s3_rss_during(server.proc.pid, server.port, stream_size, rss_cap_kb)
                rss_rows.append({"target": label, "object": f"{stream_size / 2**30:.1f} GiB",
                                 "RSS before MiB": f"{base / 1024:,.0f}",
                                 "peak RSS while streaming MiB": f"{peak / 1024:,.0f}" + (
                                     f" (cut at the {rss_cap_kb // 2**20} GiB cap)" if cut else ""),
                                 "upload MB/s": "-" if cut else f"{stream_size / 1e6 / secs:,.0f}"})
                log(f"s3 {label}: RSS {base // 1024} → {peak // 1024} MiB while streaming")
            except Exception as e:
                small_rows.append({"target": label, "operation": "-", "concurrency": "-",
                                   "objects/s": f"failed: {e}"[:300]})
            finally:
                server.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ratios = []
    for label in (STRATO_FSYNC_LABEL, STRATO_PROCESS_CRASH_LABEL):
        for op in ("PUT", "GET"):
            for c in (1, 32):
                a, b = rps.get((label, op, c)), rps.get(("moto server", op, c))
                if a and b:
                    ratios.append({"label": f"{op} 4 KiB, c={c}: {label} ÷ moto", "value": f"{a / b:.1f}×"})
    notes += [
        "4 KiB objects: the load generator (`--sigv4 …:s3`: SigV4 with `x-amz-content-sha256`), keep-alive "
        "connections, 1 000 keys; GETs read keys the PUT pass wrote. "
        + ("2 s per run." if ctx.quick else "8 s per run after 100 warm-up requests."),
        f"Large objects: one {big // S3_CHUNK} MiB file of random bytes, PUT with UNSIGNED-PAYLOAD streamed from "
        "disk and GET streamed to a file on the same disk by one Python client; `cp` copies the same file on the "
        "same disk (no fsync: the page cache's rate); `copy + fsync` copies it again and fsyncs the copy (the disk's "
        "rate for data that must reach it, measured once before the servers start). With `--durability fsync` Strato fsyncs the object's data and its metadata commit "
        "before answering the PUT (its file's directory entry was made durable ahead, with a batch of spares); "
        "with `process-crash` it leaves them to the OS.",
        f"ListObjectsV2: {list_keys:,} keys (1-byte objects put by the load generator at c=32), every page of "
        "1 000 keys read in turn. Listing and the memory test run on the process-crash server only: neither "
        "depends on when a write reaches the disk.",
        f"RSS: the server process's VmRSS sampled every 100 ms while one {stream_size / 2**30:.1f} GiB PUT streams in "
        f"(generated bytes, UNSIGNED-PAYLOAD); the upload is cut if the RSS passes {rss_cap_kb // 2**20} GiB.",
        "moto keeps objects in its own process (its server reads each request body whole); Strato streams bodies "
        "to a file under its data dir and keeps metadata in SQLite.",
    ]
    return {"tables": [
        {"title": "PUT and GET of 4 KiB objects", "kind": "table",
         "columns": ["target", "operation", "concurrency", "objects/s", "p50 / p99 ms", "errors"], "rows": small_rows},
        {"title": "ratios (same run)", "kind": "kv", "rows": ratios},
        {"title": f"{big // S3_CHUNK} MiB upload and download", "kind": "table",
         "columns": ["target", "upload MB/s", "download MB/s", "cp MB/s (same file, same disk)",
                     "copy + fsync MB/s"], "rows": big_rows},
        {"title": "ListObjectsV2, every page", "kind": "table",
         "columns": ["target", "keys", "pages", "all pages s", "keys/s", "PUTs to fill (objects/s)"],
         "rows": list_rows},
        {"title": "Server memory while one large object streams in", "kind": "table",
         "columns": ["target", "object", "RSS before MiB", "peak RSS while streaming MiB", "upload MB/s"],
         "rows": rss_rows}],
        "notes": notes}


SNS_DRIVER = os.path.join(HERE, "lib", "snsdriver.py")


def sc_sns_fanout(ctx):
    """SNS Publish fanned out to ten SQS subscriptions (raw delivery), Strato beside moto's server."""
    seconds = 4 if ctx.quick else 6
    targets, notes = strato_and_moto("sns-fanout")
    rows = []
    for label, start in targets:
        try:
            server = start()
        except Exception as e:
            rows.append({"target": label, "workers": "-", "deliveries/s": f"did not start: {e}"[:200]})
            continue
        try:
            for workers in (1, 4):
                args = ([] if not PIN else ["taskset", "-c", LOADGEN_CPUS]) + [
                    sys.executable, SNS_DRIVER, "--port", str(server.port), "--name", f"fan{workers}",
                    "--workers", str(workers), "--seconds", str(seconds)]
                out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 300)
                if out.returncode != 0:
                    r = {"error": (out.stderr.strip() or out.stdout.strip())[-300:]}
                else:
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                log(f"sns-fanout {label} × {workers}: {r.get('deliveries_per_s', r.get('error'))}")
                if "error" in r:
                    rows.append({"target": label, "workers": str(workers), "deliveries/s": "failed: " + r["error"][:200]})
                    continue
                rows.append({"target": label, "workers": str(workers),
                             "publishes/s": f"{r['publishes_per_s']:,}", "deliveries/s": f"{r['deliveries_per_s']:,}",
                             "all delivered": "yes" if r["all_delivered"] else f"no ({r['delivered']:,})",
                             "Publish p50/p99 ms": f"{r['publish_p50_ms'] or 0:.2f} / {r['publish_p99_ms'] or 0:.2f}",
                             "client CPU (of 1 core)": f"{r['client_cpu_of_core']:.2f}"})
        finally:
            server.stop()
    notes.append(f"{seconds} s per run. The client is `bench/lib/snsdriver.py`: SigV4-signed query-protocol "
                 "Publish calls (256 B) on keep-alive connections, one process per worker, to a topic with ten "
                 "SQS subscriptions; deliveries/s = publishes × 10 over the publishing time, checked afterwards "
                 "against the queues' message counts. Strato writes each delivery durably before Publish answers.")
    cols = ["target", "workers", "publishes/s", "deliveries/s", "all delivered", "Publish p50/p99 ms",
            "client CPU (of 1 core)"]
    return {"tables": [{"title": "Publish → 10 SQS subscriptions", "kind": "table", "columns": cols, "rows": rows}],
            "notes": notes}


EVENTS_LATENCY_JS = COLLECTOR_GATEWAY_JS + r"""
exports.handler = (event) => new Promise((resolve, reject) => {
  const line = `${event.id} ${event.sent} ${Date.now()}\nend\n`;
  const socket = net.connect(Number(process.env.COLLECTOR_PORT), gateway(), () => socket.write(line));
  let reply = '';
  socket.on('data', (d) => { reply += d; if (reply.includes('\n')) { socket.end(); resolve('ok'); } });
  socket.on('error', reject);
});
"""


def _json_call(port, service, target, body, json_version="1.1"):
    """One SigV4-signed awsJson call (1.1: EventBridge's protocol; 1.0: DynamoDB's) on a fresh
    connection."""
    import http.client

    data = json.dumps(body).encode()
    headers = awsclient.sign_headers("POST", f"127.0.0.1:{port}", "/", [], data, "test", "test", "us-east-1",
                                     service=service)
    headers["content-type"] = f"application/x-amz-json-{json_version}"
    headers["x-amz-target"] = target
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/", body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{target}: HTTP {resp.status}: {raw[:300]!r}")
        return json.loads(raw) if raw else {}
    finally:
        conn.close()


def _put_events(port, n, senders, errors):
    """n PutEvents calls of one entry each (detail {id, sent}) from a few threads; returns the
    seconds it took."""
    import http.client
    import threading

    def send(offset):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            for i in range(offset, n, senders):
                detail = json.dumps({"id": f"e{i}", "sent": int(time.time() * 1000)})
                data = json.dumps({"Entries": [{"Source": "bench.app", "DetailType": "tick",
                                                "Detail": detail}]}).encode()
                headers = awsclient.sign_headers("POST", f"127.0.0.1:{port}", "/", [], data, "test", "test",
                                                 "us-east-1", service="events")
                headers["content-type"] = "application/x-amz-json-1.1"
                headers["x-amz-target"] = "AWSEvents.PutEvents"
                conn.request("POST", "/", body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                if resp.status >= 300 or json.loads(raw).get("FailedEntryCount"):
                    errors.append(f"PutEvents: HTTP {resp.status}: {raw[:200]!r}")
                    return
        except Exception as e:
            errors.append(str(e))
        finally:
            conn.close()

    t0 = time.time()
    threads = [threading.Thread(target=send, args=(k,)) for k in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.time() - t0


def _latency_rows(first, n, t0, last_at, sent_s, senders, what):
    lat = sorted(got - sent for sent, got in first.values())

    def p(q):
        return lat[min(len(lat) - 1, int(round(q / 100 * (len(lat) - 1))))] if lat else 0
    total_s = max((last_at or time.time()) - t0, 1e-9)
    return {"events sent": f"{n:,} in {sent_s:.2f} s ({senders} threads, 1 entry per PutEvents)",
            "PutEvents/s": f"{n / sent_s:,.0f}",
            f"reached the {what}": f"{len(first):,} of {n:,}",
            "events/s end to end": f"{len(first) / total_s:,.0f}",
            "latency p50 / p99 ms": f"{p(50)} / {p(99)}"}


def _events_to_queue(port, n, senders, deadline_s):
    """A rule matching every `bench.app` event with an SQS queue as its target; PutEvents, and the
    queue drained by two long-polling readers that note when each event arrived."""
    import threading

    sys.path.insert(0, os.path.join(HERE, "lib"))
    import sqsdriver

    url = sqsdriver.create_queue(port, "events-sink")
    arn = sqsdriver.Sqs(port).call("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["QueueArn"]})[
        "Attributes"]["QueueArn"]
    _json_call(port, "events", "AWSEvents.PutRule", {"Name": "to-queue", "EventPattern": '{"source":["bench.app"]}'})
    _json_call(port, "events", "AWSEvents.PutTargets", {"Rule": "to-queue", "Targets": [{"Id": "q", "Arn": arn}]})
    first, lock, stop, errors = {}, threading.Lock(), threading.Event(), []
    last = [None]

    def read():
        sqs = sqsdriver.Sqs(port)
        while not stop.is_set():
            try:
                got = sqs.call("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1})
            except Exception as e:
                errors.append(str(e))
                return
            now = int(time.time() * 1000)
            messages = got.get("Messages", [])
            with lock:
                for m in messages:
                    detail = json.loads(m["Body"])["detail"]
                    first.setdefault(detail["id"], (detail["sent"], now))
                if messages:
                    last[0] = time.time()
            if messages:
                sqs.call("DeleteMessageBatch", {"QueueUrl": url, "Entries": [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]})

    readers = [threading.Thread(target=read) for _ in range(2)]
    for r in readers:
        r.start()
    t0 = time.time()
    sent_s = _put_events(port, n, senders, errors)
    deadline = time.time() + deadline_s
    while len(first) < n and time.time() < deadline and not errors:
        time.sleep(0.05)
    stop.set()
    for r in readers:
        r.join()
    with lock:
        return _latency_rows(dict(first), n, t0, last[0], sent_s, senders, "queue"), errors


def sc_events_lambda(ctx):
    """PutEvents → a rule → a Node.js function (Strato), and PutEvents → a rule → an SQS queue
    (Strato and moto's server, which cannot run Lambda functions without Docker)."""
    n = 500 if ctx.quick else 2000
    senders = 4
    columns = ["target", "events sent", "PutEvents/s", "reached the function", "reached the queue",
               "events/s end to end", "latency p50 / p99 ms"]
    rows, notes = [], []
    collector = LatencyCollector()
    st = Strato("events-lambda")
    try:
        st.api.create_function("sink", "nodejs20.x", "index.handler", zip_of({"index.js": EVENTS_LATENCY_JS}),
                               memory=BENCH_MEMORY, env={"COLLECTOR_PORT": str(collector.port)})
        st.api.wait_ready("sink")
        rule = _json_call(st.port, "events", "AWSEvents.PutRule",
                          {"Name": "to-function", "EventPattern": '{"source":["bench.app"]}'})["RuleArn"]
        st.api.request("POST", "/2015-03-31/functions/sink/policy",
                       {"StatementId": "events", "Action": "lambda:InvokeFunction",
                        "Principal": "events.amazonaws.com", "SourceArn": rule})
        fn_arn = st.api.configuration("sink")["FunctionArn"]
        _json_call(st.port, "events", "AWSEvents.PutTargets",
                   {"Rule": "to-function", "Targets": [{"Id": "f", "Arn": fn_arn, "InputPath": "$.detail"}]})
        errors = []
        t0 = time.time()
        sent_s = _put_events(st.port, n, senders, errors)
        deadline = time.time() + (120 if ctx.quick else 300)
        while collector.seen() < n and time.time() < deadline and not errors:
            time.sleep(0.05)
        with collector.lock:
            first, last_at = dict(collector.first), collector.last_at
        row = {"target": "Strato → Lambda (Node.js 20)"}
        row.update(_latency_rows(first, n, t0, last_at, sent_s, senders, "function"))
        rows.append(row)
        if errors:
            notes.append(f"Strato → Lambda errors: {errors[0][:200]}")
        log(f"events-lambda Strato → Lambda: {row}")
    except Exception as e:
        rows.append({"target": "Strato → Lambda (Node.js 20)", "events sent": f"failed: {e}"[:200]})
    finally:
        st.stop()
        collector.close()
    targets = [("Strato → SQS", lambda: Strato("events-sqs"))]
    add_moto(targets, notes, "moto server → SQS")
    for label, start in targets:
        try:
            server = start()
        except Exception as e:
            rows.append({"target": label, "events sent": f"did not start: {e}"[:200]})
            continue
        try:
            values, errors = _events_to_queue(server.port, n, senders, 120 if ctx.quick else 300)
            row = {"target": label}
            row.update(values)
            rows.append(row)
            if errors:
                notes.append(f"{label} errors: {errors[0][:200]}")
            log(f"events-lambda {label}: {row}")
        except Exception as e:
            rows.append({"target": label, "events sent": f"failed: {e}"[:200]})
        finally:
            server.stop()
    notes += [
        "Each event's detail carries its id and the sender's clock (ms) just before PutEvents; the function "
        "(through the target's InputPath `$.detail`) reports both and its own Date.now() to the harness over TCP, "
        "the SQS readers note their clock on ReceiveMessage; the latency is the difference (one machine, one clock). "
        "events/s end to end: events received over the time from the first send to the last receipt.",
        "Strato writes every matched delivery durably before PutEvents answers and delivers from its queue; a "
        "Lambda target then goes through the function's own durable async queue. moto delivers to the queue "
        "inside the PutEvents call, in memory, and cannot invoke a Lambda function without Docker, so moto has "
        "no Lambda row.",
    ]
    return {"tables": [{"title": f"{n:,} events, one rule, one target", "kind": "table", "columns": columns,
                        "rows": rows}],
            "notes": notes}


SQS_LATENCY_JS = COLLECTOR_GATEWAY_JS + r"""
exports.handler = (event) => new Promise((resolve, reject) => {
  const now = Date.now();
  const lines = event.Records.map((r) => `${r.messageId} ${r.attributes.SentTimestamp} ${now}\n`).join('');
  const socket = net.connect(Number(process.env.COLLECTOR_PORT), gateway(), () => socket.write(lines + 'end\n'));
  let reply = '';
  socket.on('data', (d) => { reply += d; if (reply.includes('\n')) { socket.end(); resolve('ok'); } });
  socket.on('error', reject);
});
"""


class LatencyCollector(Collector):
    """Takes, per batch a function ran, the lines `messageId SentTimestamp receivedAt` its handler
    sends (closed by `end`), and keeps the first receipt of each message."""

    def __init__(self):
        self.first = {}
        self.duplicates = 0
        self.last_at = None
        super().__init__()

    def _serve(self, conn):
        with conn:
            conn.settimeout(30)
            data = b""
            try:
                while not data.endswith(b"end\n"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                with self.lock:
                    for line in data.decode().splitlines()[:-1]:
                        mid, sent, got = line.split()
                        if mid in self.first:
                            self.duplicates += 1
                        else:
                            self.first[mid] = (int(sent), int(got))
                    self.last_at = time.time()
                conn.sendall(b"k\n")
            except OSError:
                return

    def seen(self):
        with self.lock:
            return len(self.first)


def sc_sqs_mapping(ctx):
    """Messages through an event source mapping: a queue feeding a Node function, BatchSize 10."""
    import threading

    n = 1000 if ctx.quick else 5000
    collector = LatencyCollector()
    st = Strato("sqs-mapping")
    rows = []
    try:
        st.api.create_function("sink", "nodejs20.x", "index.handler", zip_of({"index.js": SQS_LATENCY_JS}),
                               memory=BENCH_MEMORY, env={"COLLECTOR_PORT": str(collector.port)})
        st.api.wait_ready("sink")
        sys.path.insert(0, os.path.join(HERE, "lib"))
        import sqsdriver

        sqsdriver.create_queue(st.port, "feed")
        arn = "arn:aws:sqs:us-east-1:000000000000:feed"
        esm = st.api.request("POST", "/2015-03-31/event-source-mappings",
                             {"EventSourceArn": arn, "FunctionName": "sink", "BatchSize": 10,
                              "ScalingConfig": {"MaximumConcurrency": 10}})
        deadline = time.time() + 60
        while st.api.request("GET", f"/2015-03-31/event-source-mappings/{esm['UUID']}")["State"] != "Enabled":
            if time.time() > deadline:
                raise TimeoutError("the mapping did not become Enabled")
            time.sleep(0.1)
        url = f"http://127.0.0.1:{st.port}/000000000000/feed"
        senders = 4
        errors = []

        def send(count):
            sqs = sqsdriver.Sqs(st.port)
            try:
                for _ in range(count // 10):
                    sqs.call("SendMessageBatch", {"QueueUrl": url, "Entries": [
                        {"Id": str(i), "MessageBody": sqsdriver.BODY} for i in range(10)]})
            except Exception as e:
                errors.append(str(e))

        t0 = time.time()
        threads = [threading.Thread(target=send, args=(n // senders,)) for _ in range(senders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sent_s = time.time() - t0
        deadline = time.time() + (120 if ctx.quick else 300)
        while collector.seen() < n and time.time() < deadline and not errors:
            time.sleep(0.05)
        with collector.lock:
            first = dict(collector.first)
            last_at = collector.last_at
        if errors:
            rows.append({"label": "send errors", "value": errors[0][:200]})
        lat = sorted(got - sent for sent, got in first.values())

        def p(q):
            return lat[min(len(lat) - 1, int(round(q / 100 * (len(lat) - 1))))] if lat else 0
        total_s = (last_at or time.time()) - t0
        rows += [
            {"label": "messages sent (SendMessageBatch of 10, 4 threads)", "value": f"{n:,} in {sent_s:.2f} s"},
            {"label": "messages that reached the function", "value": f"{len(first):,} of {n:,}"},
            {"label": "extra deliveries (duplicates)", "value": str(collector.duplicates)},
            {"label": "throughput, first send to last message received", "value": f"{len(first) / total_s:,.0f} messages/s"},
            {"label": "end-to-end latency p50 / p99 (SentTimestamp → handler start)", "value": f"{p(50)} / {p(99)} ms"},
            {"label": "end-to-end latency max", "value": f"{lat[-1] if lat else 0} ms"},
        ]
    finally:
        st.stop()
        collector.close()
    return {"tables": [{"title": f"{n:,} messages of 256 B into a standard queue, a mapping with BatchSize 10 "
                                 "to a Node.js 20 function (1769 MB), MaximumConcurrency 10", "kind": "kv", "rows": rows}],
            "notes": ["The handler reports each record's messageId, its SentTimestamp and its own Date.now() "
                      "to the harness over TCP and waits for an acknowledgement; the latency is the difference "
                      "(one machine, one clock, millisecond resolution). The messages are all sent at once, so the "
                      "latency includes the time a message waits in the queue behind earlier ones: p50 is "
                      "dominated by that backlog, not by the poll.",
                      "No peer runs SQS event source mappings on a laptop: moto and ElasticMQ are queues only, "
                      "LocalStack is not among the peers, and serverless-offline-sqs polls an external "
                      "ElasticMQ (not set up here)."]}


# ---------------------------------------------------------------------------------------------
# DynamoDB

DYNALITE = os.path.join(WORK, "npm-dynalite", "node_modules", "dynalite", "cli.js")
DDB_JSON = "application/x-amz-json-1.0"
# Keys the read runs find: 100 partition keys `k{n}`, each with the item (k{n}, s{n}) that GetItem
# reads and 9 more that Query returns with it (10 items of ~150 B per Query).
DDB_KEYS = 100
DDB_VALUE = "v" * 100
DDB_OPS = {
    "PutItem": ('{"TableName":"bench","Item":{"pk":{"S":"p{n}"},"sk":{"S":"s{i}"},'
                '"v":{"S":"' + DDB_VALUE + '"},"n":{"N":"{i}"}}}', 1000),
    "GetItem": ('{"TableName":"bench","Key":{"pk":{"S":"k{n}"},"sk":{"S":"s{n}"}}}', DDB_KEYS),
    "Query": ('{"TableName":"bench","KeyConditionExpression":"pk = :p",'
              '"ExpressionAttributeValues":{":p":{"S":"k{n}"}}}', DDB_KEYS),
}

# How often Strato's stream pollers read an idle shard (`StreamPollerSettings::poll_interval`).
DDB_POLL_S = 0.25

DDB_STREAM_JS = COLLECTOR_GATEWAY_JS + r"""
exports.handler = (event) => new Promise((resolve, reject) => {
  const now = Date.now();
  const lines = event.Records.map((r) => `${r.dynamodb.Keys.pk.S} 0 ${now}\n`).join('');
  const socket = net.connect(Number(process.env.COLLECTOR_PORT), gateway(), () => socket.write(lines + 'end\n'));
  let reply = '';
  socket.on('data', (d) => { reply += d; if (reply.includes('\n')) { socket.end(); resolve('ok'); } });
  socket.on('error', reject);
});
"""


class Dynalite:
    """dynalite (npm), in memory (its default), on Node.js, pinned like every system under test."""

    def __init__(self):
        self.port = free_port()
        self.proc = Proc("dynalite", [NODE, DYNALITE, "--host", "127.0.0.1", "--port", str(self.port),
                                      "--createTableMs", "0"], cpus=SUT_CPUS)
        wait_port(self.port, 60, self.proc)

    def stop(self):
        self.proc.stop()


def _ddb(port, op, body):
    return _json_call(port, "dynamodb", f"DynamoDB_20120810.{op}", body, json_version="1.0")


def _ddb_table(port, name, stream=False):
    """A table with a string hash and range key, ACTIVE, its items for the read runs written."""
    spec = {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                     {"AttributeName": "sk", "AttributeType": "S"}]}
    if stream:
        spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    created = _ddb(port, "CreateTable", spec)["TableDescription"]
    deadline = time.time() + 60
    while _ddb(port, "DescribeTable", {"TableName": name})["Table"]["TableStatus"] != "ACTIVE":
        if time.time() > deadline:
            raise TimeoutError(f"table {name} did not become ACTIVE")
        time.sleep(0.05)
    return created


def _ddb_fill(port):
    """The read runs' items: (k{n}, s{n}) for every n, then 9 more per key."""
    item = '{"TableName":"bench","Item":{"pk":{"S":"k{n}"},"sk":{"S":"%s"},"v":{"S":"' + DDB_VALUE + '"}}}'
    for sort_key, count in (("s{n}", DDB_KEYS), ("t{i}", DDB_KEYS * 9)):
        r = loadgen(url=f"http://127.0.0.1:{port}/", concurrency=4, requests=count, body=item % sort_key,
                    n_range=DDB_KEYS, **_ddb_loadgen_kw("PutItem"))
        if r["status"]["2xx"] != count:
            raise RuntimeError(f"filling the table: {r['status']} ({r.get('first_error')})")


def _ddb_loadgen_kw(op):
    return {"sigv4": True, "sigv4_service": "dynamodb",
            "headers": (("content-type", DDB_JSON), ("x-amz-target", f"DynamoDB_20120810.{op}"))}


def _ddb_stream_latency(ctx, rows):
    """Writes one at a time to a table whose stream feeds a Node.js function, each after the last
    reached the handler: time from PutItem's answer to the handler's start."""
    n = 40 if ctx.quick else 300
    collector = LatencyCollector()
    st = Strato("ddb-stream")
    try:
        stream_arn = _ddb_table(st.port, "feed", stream=True)["LatestStreamArn"]
        st.api.create_function("sink", "nodejs20.x", "index.handler", zip_of({"index.js": DDB_STREAM_JS}),
                               memory=BENCH_MEMORY, env={"COLLECTOR_PORT": str(collector.port)})
        st.api.wait_ready("sink")
        esm = st.api.request("POST", "/2015-03-31/event-source-mappings",
                             {"EventSourceArn": stream_arn, "FunctionName": "sink", "BatchSize": 10,
                              "StartingPosition": "LATEST"})
        deadline = time.time() + 60
        while st.api.request("GET", f"/2015-03-31/event-source-mappings/{esm['UUID']}")["State"] != "Enabled":
            if time.time() > deadline:
                raise TimeoutError("the mapping did not become Enabled")
            time.sleep(0.1)
        client = awsclient.Lambda(st.port)
        headers = {"content-type": DDB_JSON, "x-amz-target": "DynamoDB_20120810.PutItem"}

        def put(key):
            status, raw, _, _ = client.request("POST", "/", {"TableName": "feed", "Item": {
                "pk": {"S": key}, "sk": {"S": "x"}, "v": {"S": DDB_VALUE}}}, timed=True, headers=headers,
                service="dynamodb")
            if status != 200:
                raise RuntimeError(f"PutItem: HTTP {status}: {raw[:200]!r}")
            return int(time.time() * 1000)

        # The first write also starts the function's instance: it is not counted.
        put("warm")
        wait_deadline = time.time() + 120
        while collector.seen() < 1 and time.time() < wait_deadline:
            time.sleep(0.01)
        returned = {}
        lost = 0
        # Each write waits a random pause after the last one reached the handler, so writes land at
        # every moment of the pollers' cycle instead of right behind the round that just ran.
        pauses = random.Random(18)
        for i in range(n):
            time.sleep(pauses.uniform(0, 2 * DDB_POLL_S))
            key = f"w{i}"
            returned[key] = put(key)
            deadline = time.time() + 30
            while key not in collector.first and time.time() < deadline:
                time.sleep(0.001)
            lost += key not in collector.first
        client.close()
        with collector.lock:
            lat = sorted(collector.first[k][1] - returned[k] for k in returned if k in collector.first)
        rows += [
            {"label": f"writes (one at a time, each 0–{2 * DDB_POLL_S * 1000:.0f} ms after the last reached the handler)",
             "value": f"{n:,}; {len(lat):,} reached the function" + (f", {lost} not within 30 s" if lost else "")},
            {"label": "PutItem answered → handler start, p50 / p99", "value":
                f"{pct(lat, 0.50)} / {pct(lat, 0.99)} ms" if lat else "–"},
            {"label": "min / max", "value": f"{lat[0]} / {lat[-1]} ms" if lat else "–"},
        ]
    finally:
        st.stop()
        collector.close()


def sc_dynamodb(ctx):
    """PutItem, GetItem and Query against Strato, moto's server and dynalite, at concurrency 1 and
    32, with the same signed requests from the load generator; and write → function latency
    through a DynamoDB stream event source mapping (Strato only)."""
    servers = strato_durabilities("ddb")
    notes = []
    add_moto(servers, notes, "moto server")
    if os.path.exists(DYNALITE):
        servers.append((f"dynalite {npm_version('dynalite', os.path.join(WORK, 'npm-dynalite'))}", Dynalite))
    else:
        notes.append("dynalite was not installed (bench/run installs it into bench/.work/npm-dynalite).")
    running = []
    tables = []
    try:
        targets = {op: [] for op in DDB_OPS}
        for label, start in servers:
            try:
                server = start()
            except Exception as e:
                notes.append(f"{label} did not start: {e}")
                continue
            running.append(server)
            try:
                _ddb_table(server.port, "bench")
                _ddb_fill(server.port)
            except Exception as e:
                notes.append(f"{label}: the table could not be set up: {e}")
                continue
            for op, (body, n_range) in DDB_OPS.items():
                targets[op].append((label, {"url": f"http://127.0.0.1:{server.port}/", "body": body,
                                            "n_range": n_range, **_ddb_loadgen_kw(op)}))
        for op, op_targets in targets.items():
            log(f"  {op}")
            tables += warm_table(op, warm_matrix(ctx, op_targets), STRATO_FSYNC_LABEL)
    finally:
        for server in running:
            server.stop()
    rows = []
    try:
        _ddb_stream_latency(ctx, rows)
    except Exception as e:
        rows.append({"label": "failed", "value": f"{type(e).__name__}: {e}"[:300]})
    tables.append({"title": "DynamoDB stream → function (Strato): a Node.js 20 function (1769 MB) behind a "
                            "stream event source mapping (BatchSize 10, StartingPosition LATEST)",
                   "kind": "kv", "rows": rows})
    notes += [
        "Every request is SigV4-signed awsJson 1.0 from `loadgen` (Rust, one keep-alive connection per "
        "worker), the same bytes for every server: PutItem writes a new item of ~150 B per request "
        "(1 000 partition keys); GetItem reads one of 100 items; Query reads the 10 items of one of 100 "
        "partition keys. The tables are filled with those 1 000 items before the runs.",
        "Strato acknowledges a write once SQLite (WAL) has committed it: with `--durability fsync` (the "
        "default) once an fdatasync of the log that began after the commit has finished (concurrent writes "
        "share one), so it survives power loss; with `process-crash` it is written to the OS "
        "(synchronous=NORMAL) and survives kill -9 of the server. moto and dynalite (its default, LevelDB in "
        "memory) keep their tables in memory.",
        "The stream latency is the handler's Date.now() at its start minus the harness's clock when "
        "PutItem answered (one machine, one clock, millisecond resolution; the harness takes its time "
        "after reading the answer, so on a busy machine a handler can start a few ms \"before\" it). Writes "
        "are sent one at a time, each after a random pause, so none waits behind another and they land at "
        "every moment of the poll cycle. Strato's pollers read an idle shard every 250 ms (AWS documents "
        "four reads per second per shard) and at once when the table's database signals a write, so the "
        "latency is the read, the batch and the invocation, not a wait for the next poll.",
        "No peer runs DynamoDB stream event source mappings: moto and dynalite serve the DynamoDB API only.",
    ]
    return {"tables": tables, "notes": notes}


# ---------------------------------------------------------------------------------------------
# WebSocket APIs


def _v2(port, method, path, body=None):
    """One apigatewayv2 control-plane call to Strato, SigV4-signed for `apigateway`."""
    data = b"" if body is None else json.dumps(body).encode()
    headers = awsclient.sign_headers(method, f"127.0.0.1:{port}", path, [], data, "test", "test",
                                     "us-east-1", service="apigateway")
    headers["content-type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    if resp.status >= 300:
        raise RuntimeError(f"{method} {path}: {resp.status} {raw[:300]!r}")
    return json.loads(raw) if raw else None


def _strato_websocket_api(st, function_arn, with_default):
    """A WebSocket API with stage `bench`; with_default: a two-way `$default` route to the function."""
    api = _v2(st.port, "POST", "/v2/apis", {"name": "bench", "protocolType": "WEBSOCKET",
                                            "routeSelectionExpression": "$request.body.action"})
    api_id = api["apiId"]
    if with_default:
        integ = _v2(st.port, "POST", f"/v2/apis/{api_id}/integrations",
                    {"integrationType": "AWS_PROXY", "integrationUri": function_arn})
        route = _v2(st.port, "POST", f"/v2/apis/{api_id}/routes",
                    {"routeKey": "$default", "target": f"integrations/{integ['integrationId']}",
                     "routeResponseSelectionExpression": "$default"})
        _v2(st.port, "POST", f"/v2/apis/{api_id}/routes/{route['routeId']}/routeresponses",
            {"routeResponseKey": "$default"})
    _v2(st.port, "POST", f"/v2/apis/{api_id}/stages", {"stageName": "bench", "autoDeploy": True})
    return f"/_strato/execute-api/{api_id}/bench"


def _ws_round_trips(port, path, clients, messages, host_header=None):
    """Round-trip latencies (s) of `messages` sequential messages on each of `clients` connections."""
    import threading
    conns = [wsclient.WsClient("127.0.0.1", port, path, host_header=host_header, timeout=180)
             for _ in range(clients)]
    lat, errs = [], []
    lock = threading.Lock()

    def worker(c):
        mine = []
        try:
            for _ in range(messages):
                t0 = time.perf_counter()
                c.send_text('{"bench":true}')
                c.recv()
                mine.append(time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 - reported, not judged
            errs.append(str(e))
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    return lat, wall, errs


def _rt_row(label, clients, lat, wall, errs):
    s = summary(lat)
    if not s:
        return {"label": f"{label}, {clients} client(s)", "value": f"no answers ({'; '.join(errs[:2])})"}
    return {"label": f"{label}, {clients} client(s)",
            "value": f"p50 {s['median'] * 1000:.2f} ms, p99 {s['p99'] * 1000:.2f} ms, "
                     f"{len(lat) / wall:.0f} msg/s ({len(lat)} messages, {len(errs)} errors)"}


class OfflineWebsocket(OfflineBase):
    """The WebSocket handler on `$connect` and a two-way `$default` route."""

    def __init__(self):
        self.ws_port = free_port()
        self.start("sls-websocket", "websocket.js", "websocket.handler",
                   # serverless-offline refuses every handshake (502) without a `$connect` route.
                   "      - websocket:\n          route: $connect\n"
                   "      - websocket:\n          route: $default\n"
                   "          routeResponseSelectionExpression: $default\n",
                   ["--websocketPort", str(self.ws_port)])
        try:
            wait_port(self.ws_port, 180, self.proc)
        except Exception:
            self.stop()
            raise


# One client process holding idle connections: opens them, says how many, holds them until stdin
# closes. Several share the 10 000, so no process needs 10 000 descriptors or one thread to do
# every handshake.
_IDLE_HOLDER = r"""
import resource, sys
sys.path.insert(0, sys.argv[1])
import wsclient
port, path, n = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, n + 256), hard), hard))
held = [wsclient.WsClient("127.0.0.1", port, path, timeout=120) for _ in range(n)]
print(len(held), flush=True)
sys.stdin.read()
"""


def _hold_idle(port, path, n, procs):
    """n idle connections held by `procs` client processes, opening them side by side; returns
    the processes (close them with _release) and how many are open."""
    share = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    holders = [subprocess.Popen([sys.executable, "-c", _IDLE_HOLDER, os.path.join(HERE, "lib"),
                                 str(port), path, str(k)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for k in share if k]
    opened = 0
    for h in holders:
        line = h.stdout.readline().strip()
        if not line:
            _release(holders)
            raise RuntimeError("an idle-connection client failed (see its stderr)")
        opened += int(line)
    return holders, opened


def _release(holders):
    for h in holders:
        try:
            h.stdin.close()
        except OSError:
            pass
    for h in holders:
        try:
            h.wait(timeout=60)
        except subprocess.TimeoutExpired:
            h.kill()


def sc_websocket(ctx):
    """WebSocket APIs: memory per idle connection at 10 000 connections, and message → function →
    reply round trips at 1 and 100 clients, Strato and serverless-offline's `websocket` events."""
    import resource
    n_idle = 1000 if ctx.quick else 10_000
    holders_n = 2 if ctx.quick else 8
    msgs_1 = 50 if ctx.quick else 300
    msgs_100 = 5 if ctx.quick else 20
    # The server (a child of the harness) inherits this limit: one descriptor per connection.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n_idle + 1024
    if hard < want:
        return {"tables": [], "notes": [f"the open-files limit ({hard}) is below the {want} "
                                        f"descriptors {n_idle} connections need: not measured"]}
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    rows, notes = [], []
    st = Strato("websocket")
    try:
        st.deploy("wsfn", "node-ws")
        fn_arn = "arn:aws:lambda:us-east-1:000000000000:function:wsfn"
        st.api.request("POST", "/2015-03-31/functions/wsfn/policy",
                       {"StatementId": "apigw", "Action": "lambda:InvokeFunction",
                        "Principal": "apigateway.amazonaws.com"})
        idle_path = _strato_websocket_api(st, None, with_default=False)
        warm = [wsclient.WsClient("127.0.0.1", st.port, idle_path) for _ in range(100)]
        time.sleep(1)
        before = rss_kb(st.proc.pid)
        t0 = time.perf_counter()
        holders, held_n = _hold_idle(st.port, idle_path, n_idle, holders_n)
        opened = time.perf_counter() - t0
        time.sleep(2)
        after = rss_kb(st.proc.pid)
        rows.append({"label": f"Strato: {held_n} idle connections opened",
                     "value": f"in {opened:.1f} s ({held_n / opened:.0f} handshakes/s, "
                              f"{len(holders)} client processes)"})
        rows.append({"label": "Strato server RSS before → after",
                     "value": f"{before / 1024:.1f} MiB → {after / 1024:.1f} MiB"})
        rows.append({"label": "Strato server RSS per idle connection",
                     "value": f"{(after - before) * 1024 / held_n / 1024:.1f} KiB"})
        _release(holders)
        for c in warm:
            c.close()
        path = _strato_websocket_api(st, fn_arn, with_default=True)
        # Warm the instances both concurrency levels need (cold starts are not what is measured).
        _ws_round_trips(st.port, path, 1, 20)
        _ws_round_trips(st.port, path, 100, 2)
        for clients, msgs in ((1, msgs_1), (100, msgs_100)):
            rows.append(_rt_row("Strato, $default → Node.js function → reply", clients,
                                *_ws_round_trips(st.port, path, clients, msgs)))
    finally:
        st.stop()
    off = None
    if available()["sls"]:
        try:
            off = OfflineWebsocket()
        except (TimeoutError, RuntimeError) as e:
            notes.append(f"serverless-offline did not start, its `websocket` events were not measured: {e}")
    if off is not None:
        try:
            _ws_round_trips(off.ws_port, "/", 1, 20)
            _ws_round_trips(off.ws_port, "/", 100, 2)
            for clients, msgs in ((1, msgs_1), (100, msgs_100)):
                rows.append(_rt_row("serverless-offline 13 websocket, $default → Node.js function → reply", clients,
                                    *_ws_round_trips(off.ws_port, "/", clients, msgs)))
        finally:
            off.stop()
    elif not available()["sls"]:
        notes.append("serverless-offline is not installed in bench/.work: its `websocket` events were not "
                     "measured in this run (bench/run installs it).")
    notes.append("Idle connections: an API with no `$connect` route, so the figure is the gateway's own cost "
                 "per connection (socket, session task, registry record, buffers), held by several client "
                 "processes. Round trips: one two-way `$default` route to a Node.js handler that answers "
                 "with the message (bench/fixtures/node/websocket.js, the same file under both servers); "
                 "clients are stdlib threads in the harness, each sending its next message when the "
                 "previous answer arrived.")
    return {"tables": [{"title": "WebSocket APIs", "kind": "kv", "rows": rows}], "notes": notes}


SCENARIOS = [
    ("loadgen-headroom", "Load generator headroom", sc_loadgen_headroom),
    ("warm-invoke", "Warm invoke, Node.js, Invoke API", sc_warm_invoke),
    ("warm-http", "Warm invoke, Node.js, through an HTTP API", sc_warm_http),
    ("iam-enforce", "Warm invoke with IAM enforcement off vs on", sc_iam_enforce),
    ("warm-python", "Warm invoke, Python", sc_warm_python),
    ("warm-go", "Warm invoke, Go", sc_warm_go),
    ("warm-java", "Warm invoke, Java", sc_warm_java),
    ("cold-start", "Cold start to first byte", sc_cold_start),
    ("burst", "Burst of concurrent first requests (scale-out)", sc_burst),
    ("memory", "Memory per idle instance", sc_memory),
    ("control-plane", "Control plane at scale", sc_control_plane),
    ("concurrency-limit", "1 000 concurrent requests against a limit of 100", sc_concurrency_limit),
    ("async-durability", "Asynchronous invocations across kill -9", sc_async_durability),
    ("queue-throughput", "The durable queue engine alone", sc_queue_throughput),
    ("sqs-throughput", "SQS over HTTP: Strato, moto and ElasticMQ", sc_sqs_throughput),
    ("sqs-mapping", "SQS queue to function through an event source mapping", sc_sqs_mapping),
    ("dynamodb", "DynamoDB: Strato, moto and dynalite; stream → function", sc_dynamodb),
    ("sns-fanout", "SNS Publish to ten SQS subscriptions: Strato and moto", sc_sns_fanout),
    ("s3", "S3: small objects, large objects, listings and memory: Strato and moto", sc_s3),
    ("events-lambda", "EventBridge PutEvents to Lambda and SQS: Strato and moto", sc_events_lambda),
    ("websocket", "WebSocket APIs: idle connections and round trips", sc_websocket),
]


# ---------------------------------------------------------------------------------------------
# machine and versions


def sh(cmd, cwd=None):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=cwd, timeout=60).stdout.strip()
    except Exception:
        return ""


def npm_version(pkg, root=NPM):
    try:
        with open(os.path.join(root, "node_modules", pkg, "package.json")) as f:
            return json.load(f)["version"]
    except (OSError, KeyError, ValueError):
        return "not installed"


def machine_info():
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("grep MemTotal /proc/meminfo | awk '{print $2}'")
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / 2**20, 1) if mem.isdigit() else None,
        "kernel": platform.release(),
        "os": sh(". /etc/os-release && echo \"$PRETTY_NAME\""),
        "cgroup": "v1" if os.path.isdir("/sys/fs/cgroup/memory") else "v2",
    }
    return info


def versions():
    rie_ver = sh(f"go version -m {RIE} | awk '$1==\"mod\"{{print $3}}'") if os.path.exists(RIE) else "not built"
    go_lambda = sh(f"go version -m {GO_BOOTSTRAP} | awk '$2==\"github.com/aws/aws-lambda-go\"{{print $3}}'") if os.path.exists(GO_BOOTSTRAP) else "not built"
    lock = os.path.join(HERE, "loadgen", "Cargo.lock")
    hyper = sh(f"grep -A1 '^name = \"hyper\"$' {lock} | sed -n 's/version = //p' | tr -d '\"'") if os.path.exists(lock) else ""
    return {
        "strato": (sh(f"{STRATO} --version") + " @ " + sh("git rev-parse --short HEAD", cwd=ROOT)
                   + (" (+ uncommitted changes)" if sh("git status --porcelain -- crates runtimes", cwd=ROOT) else "")),
        "rustc": sh("rustc --version"),
        "node": sh(f"{NODE} --version"),
        "python (Strato's python3.11, RIE's awslambdaric)": sh("/root/.pyenv/versions/3.11*/bin/python3 --version 2>/dev/null || python3 --version"),
        "go": sh("go version"),
        "java": sh("java -version 2>&1 | head -1"),
        "serverless": npm_version("serverless"),
        "serverless-offline": npm_version("serverless-offline"),
        "aws-lambda-ric (npm)": npm_version("aws-lambda-ric", os.path.join(WORK, "npm-ric")),
        "dynalite (npm)": npm_version("dynalite", os.path.join(WORK, "npm-dynalite")),
        "moto (PyPI)": (sh(f"{os.path.join(WORK, 'venv-moto', 'bin', 'python')} -c 'import moto; print(moto.__version__)'")
                        if os.path.exists(MOTO_SERVER) else "not installed"),
        "awslambdaric (PyPI)": sh(f"{VENV_PY} -c 'import importlib.metadata as m; print(m.version(\"awslambdaric\"))'") if os.path.exists(VENV_PY) else "not installed",
        "aws-lambda-runtime-interface-emulator": rie_ver,
        "aws-lambda-go": go_lambda,
        "loadgen (hyper)": hyper,
    }


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---------------------------------------------------------------------------------------------


def main():
    global PIN
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    ap.add_argument("scenarios", nargs="*", help="scenario names (default: all): " + ", ".join(n for n, _, _ in SCENARIOS))
    ap.add_argument("--quick", action="store_true", help="fewer iterations and smaller sizes (development)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    ap.add_argument("--out", help="where to write the report (default: BENCHMARKS.md for a full run, "
                                  "bench/.work/BENCHMARKS.<mode>.md otherwise)")
    ap.add_argument("--note", help="a note printed at the top of the report (e.g. about noise)")
    ap.add_argument("--merge-with", metavar="RESULTS_JSON",
                    help="a raw results file of an earlier full run (bench/.work/results/*.json): the scenarios "
                         "not run now are taken from it, marked with its date, and the merged report is written")
    args = ap.parse_args()
    if args.no_pin or (os.cpu_count() or 1) < 2:
        PIN = False
    names = [n for n, _, _ in SCENARIOS]
    chosen = args.scenarios or names
    for c in chosen:
        if c not in names:
            ap.error(f"unknown scenario {c!r}; known: {', '.join(names)}")
    ctx = Ctx(args.quick)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: (stop_all(), sys.exit(130)))
    results = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": "quick" if args.quick else "full",
        "pinned": PIN,
        "machine": machine_info(),
        "versions": versions(),
        "load_before": loadavg(),
        "noise_note": args.note,
        "scenarios": [],
    }
    t_start = time.time()
    try:
        for name, title, fn in SCENARIOS:
            if name not in chosen:
                continue
            log(f"scenario {name}")
            t0 = time.time()
            try:
                res = fn(ctx) or {}
            except Exception as e:
                import traceback
                traceback.print_exc()
                res = {"error": f"{type(e).__name__}: {e}"}
            res.setdefault("about", " ".join((fn.__doc__ or "").split()))
            res.update({"name": name, "title": title, "seconds": round(time.time() - t0, 1), "load_after": loadavg()})
            results["scenarios"].append(res)
            # serverless-offline is shared by warm-invoke and warm-http only.
            if not (name == "warm-invoke" and "warm-http" in chosen):
                stop_shared()
            log(f"scenario {name} done in {res['seconds']}s")
    finally:
        stop_all()
    results["seconds"] = round(time.time() - t_start, 1)
    results["load_after"] = loadavg()
    if args.merge_with:
        with open(args.merge_with) as f:
            earlier = json.load(f)
        fresh = {sc["name"]: sc for sc in results["scenarios"]}
        old = {sc["name"]: dict(sc, from_run=sc.get("from_run") or earlier["started"]) for sc in earlier["scenarios"]}
        results["scenarios"] = [fresh.get(n) or old[n] for n in names if n in fresh or n in old]
        chosen = [sc["name"] for sc in results["scenarios"]]
    os.makedirs(os.path.join(WORK, "results"), exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw = os.path.join(WORK, "results", f"{stamp}-{results['mode']}.json")
    with open(raw, "w") as f:
        json.dump(results, f, indent=1)
    full = not args.quick and set(chosen) == set(names)
    out = args.out or (os.path.join(ROOT, "BENCHMARKS.md") if full else
                       os.path.join(WORK, f"BENCHMARKS.{results['mode']}{'' if set(chosen) == set(names) else '-' + '-'.join(chosen)}.md"))
    with open(out, "w") as f:
        f.write(report.render(results))
    log(f"raw results: {os.path.relpath(raw, ROOT)}; report: {os.path.relpath(out, ROOT)} "
        f"({results['seconds']}s in all)")


if __name__ == "__main__":
    main()
