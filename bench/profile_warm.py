#!/usr/bin/env python3
"""Where a warm invocation's CPU goes, measured in ways a busy machine does not distort much.

    bench/profile_warm.py [--runtime node|python|go] [--requests N] [--perf] [--strace]

Starts a release Strato (STRATO_BIN, or target/release/strato) like the harness does (pinned to
CPU 0, the load generator on CPU 1), deploys the hello handler with 1769 MB, warms it, then for
concurrency 1 and 32 sends a fixed number of signed Invoke requests and reports, per invocation:

- CPU time of Strato's process (all its threads) and of the runtime processes (every process in
  the server's tree that is not the server), from the kernel's per-thread `schedstat` run time:
  nanoseconds on a CPU, whatever else the machine is doing meanwhile;
- voluntary and involuntary context switches of each side (`/proc/*/task/*/status`);
- with `--strace`: the system calls per invocation of the server and of one runtime process
  (`strace -c -f`, a separate run: strace slows what it traces);
- with `--perf`: a `perf record -e cpu-clock --call-graph dwarf` sampling profile of the server during the run,
  folded into the stages of the warm path (what share of the server's samples each stage took,
  times the server's CPU per invocation = microseconds per stage).

Wall-clock throughput is printed too but is the noisy figure; the CPU figures are the ones to
compare between builds. Stdlib only; every process it starts is ended by its own pid.
"""

import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

# Stages of the warm path, matched against the symbols of each sample's stack, innermost first
# (the first stage whose pattern matches any frame, scanning from the leaf, takes the sample).
STAGES = [
    ("SigV4 verification", r"strato_sigv4::"),
    ("log lines (START/END/REPORT, runtime output, SQLite writer)",
     r"strato_engine::logs::|strato_observe::logstore|rusqlite|sqlite3"),
    ("metrics (observer, aggregator)", r"strato_observe::metrics|strato_engine::observer"),
    ("server log line (tracing)", r"tracing_subscriber|tracing_appender|request_log"),
    ("Runtime API server (/next, /response)", r"strato_engine::runtime_api"),
    ("instance dispatch and reply (engine)", r"strato_engine::(instance|invocation|pool|lib)|Engine::run"),
    ("admission (concurrency permits)", r"strato_engine::concurrency"),
    ("resolve (catalog, version, target)", r"strato_api::lambda::(invoke::prepare|load|invoke::invocation_target)|catalog"),
    ("Invoke handler (headers, payload, answer)", r"strato_api::lambda::invoke"),
    ("routing and auth glue (axum, tower, dispatch)", r"strato_api::|strato_gateway::|axum::|tower::"),
    ("HTTP parse and write (hyper)", r"hyper::|h1::|httparse"),
    ("async runtime (tokio: scheduling, timers, I/O driver)", r"tokio::"),
    ("allocation and copies", r"malloc|free|realloc|memcpy|memmove|__libc_|cfree|_int_"),
    ("kernel (system calls, network stack, scheduler)", r"^\[k\]|entry_SYSCALL|do_syscall|\[kernel"),
]


def schedstat_ns(pid):
    total = 0
    for f in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(f) as fh:
                total += int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def ctx_switches(pid):
    vol = invol = 0
    for f in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(f) as fh:
                for line in fh:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol += int(line.split()[1])
        except OSError:
            pass
    return vol, invol


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def runtime_pids(server_pid, runtime):
    names = {"node": ("node",), "python": ("python", "python3"), "go": ("bootstrap",)}[runtime]
    return [p for p in harness.descendants(server_pid) if comm(p).startswith(names)]


def snapshot(server_pid, runtime):
    rts = runtime_pids(server_pid, runtime)
    return {
        "server_ns": schedstat_ns(server_pid),
        "server_cs": ctx_switches(server_pid),
        "rt": {p: (schedstat_ns(p), ctx_switches(p)) for p in rts},
    }


def delta(before, after, n):
    rt_ns = sum(after["rt"][p][0] - before["rt"].get(p, (0, (0, 0)))[0] for p in after["rt"])
    rt_vol = sum(after["rt"][p][1][0] - before["rt"].get(p, (0, (0, 0)))[1][0] for p in after["rt"])
    rt_inv = sum(after["rt"][p][1][1] - before["rt"].get(p, (0, (0, 0)))[1][1] for p in after["rt"])
    return {
        "server_us": (after["server_ns"] - before["server_ns"]) / n / 1000,
        "runtime_us": rt_ns / n / 1000,
        "server_cs_voluntary": (after["server_cs"][0] - before["server_cs"][0]) / n,
        "server_cs_involuntary": (after["server_cs"][1] - before["server_cs"][1]) / n,
        "runtime_cs_voluntary": rt_vol / n,
        "runtime_cs_involuntary": rt_inv / n,
        "runtime_processes": len(after["rt"]),
    }


def strace_counts(pid, seconds_fn, n):
    """Runs seconds_fn() while strace -c -f counts pid's system calls; calls per invocation."""
    out = tempfile.NamedTemporaryFile(prefix="strace-", suffix=".txt", delete=False)
    out.close()
    tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out.name, "-p", str(pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(0.5)
    seconds_fn()
    tracer.terminate()
    tracer.wait(timeout=30)
    calls = {}
    with open(out.name) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] not in ("total",):
                try:
                    calls[parts[-1]] = int(parts[3])
                except ValueError:
                    continue
    os.unlink(out.name)
    total = sum(calls.values())
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:8]
    return {"per_invocation": total / n, "top": {k: round(v / n, 2) for k, v in top}}


def perf_stages(pid, run_fn):
    data = tempfile.NamedTemporaryFile(prefix="perf-", suffix=".data", delete=False)
    data.close()
    rec = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "997", "--call-graph", "dwarf,8192", "-p", str(pid),
                            "-o", data.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    time.sleep(0.5)
    run_fn()
    rec.send_signal(2)
    rec.wait(timeout=60)
    script = subprocess.run(["perf", "script", "-i", data.name, "-F", "sym,ip,dso"],
                            capture_output=True, text=True, timeout=600)
    os.unlink(data.name)
    counts = collections.Counter()
    samples = 0
    for block in script.stdout.split("\n\n"):
        frames = [l.strip() for l in block.strip().splitlines() if l.strip()]
        if not frames:
            continue
        samples += 1
        stage = "other"
        for frame in frames:
            for name, pattern in STAGES:
                if re.search(pattern, frame):
                    stage = name
                    break
            if stage != "other":
                break
        counts[stage] += 1
    return samples, counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", default="node", choices=["node", "python", "go"])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--concurrency", default="1,32")
    ap.add_argument("--perf", action="store_true")
    ap.add_argument("--strace", action="store_true")
    ap.add_argument("--log", default="warn", help="STRATO_LOG for the server (the harness uses warn)")
    args = ap.parse_args()
    os.environ["STRATO_LOG"] = args.log
    st = harness.Strato(f"profile-{args.runtime}")
    results = {"binary": harness.STRATO, "runtime": args.runtime, "log": args.log, "runs": {}}
    try:
        st.deploy("hello", args.runtime)
        url = st.url("hello")
        for c in [int(x) for x in args.concurrency.split(",")]:
            n = args.requests
            harness.loadgen(url=url, concurrency=c, requests=max(300, c * 20), body=harness.PAYLOAD, sigv4=True)
            before = snapshot(st.proc.pid, args.runtime)
            r = harness.loadgen(url=url, concurrency=c, requests=n, body=harness.PAYLOAD, sigv4=True)
            after = snapshot(st.proc.pid, args.runtime)
            ok = r["status"]["2xx"]
            run = delta(before, after, max(ok, 1))
            run.update({"requests": n, "ok": ok, "errors": harness.errors(r), "rps_noisy": round(harness.ok_rps(r)),
                        "p50_ms_noisy": r["latency"]["p50_ms"], "p99_ms_noisy": r["latency"]["p99_ms"]})
            if args.strace:
                m = min(n, 3000)
                call = lambda: harness.loadgen(url=url, concurrency=c, requests=m, body=harness.PAYLOAD, sigv4=True)
                run["server_syscalls"] = strace_counts(st.proc.pid, call, m)
                rts = runtime_pids(st.proc.pid, args.runtime)
                if rts and c == 1:
                    run["runtime_syscalls"] = strace_counts(rts[0], call, m)
            if args.perf:
                m = min(n, 6000)
                samples, counts = perf_stages(st.proc.pid, lambda: harness.loadgen(
                    url=url, concurrency=c, requests=m, body=harness.PAYLOAD, sigv4=True))
                run["perf_samples"] = samples
                run["stages_us"] = {k: round(v / samples * run["server_us"], 2)
                                    for k, v in counts.most_common()} if samples else {}
            results["runs"][str(c)] = run
            harness.log(f"c={c}: {json.dumps(run)}")
    finally:
        st.stop()
        harness.stop_all()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
