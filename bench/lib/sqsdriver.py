"""The SQS client workload of the `sqs-throughput` scenario (stdlib only).

Each worker is its own process (so the workers do not share one interpreter lock) with one
keep-alive connection, and loops: SendMessageBatch (10 × 256 B), ReceiveMessage (10, long poll
1 s), DeleteMessageBatch of what it received. Every request is a SigV4-signed awsJson 1.0 call,
the wire form current SDKs send, so every target sees the same bytes. A run is bounded by its
duration and by a cap on loops; it prints one JSON object.

    python3 sqsdriver.py --port P --queue-url URL --workers 16 --seconds 10
"""

import argparse
import http.client
import json
import multiprocessing
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import awsclient  # noqa: E402

BODY = "x" * 256
MAX_LOOPS = 1_000_000


class Sqs:
    """One signed awsJson 1.0 connection to an SQS endpoint on 127.0.0.1."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, op, body):
        data = json.dumps(body).encode()
        headers = awsclient.sign_headers("POST", f"127.0.0.1:{self.port}", "/", [], data,
                                         "test", "test", "us-east-1", service="sqs")
        headers["content-type"] = "application/x-amz-json-1.0"
        headers["x-amz-target"] = f"AmazonSQS.{op}"
        self.conn.request("POST", "/", body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{op}: HTTP {resp.status}: {raw[:300]!r}")
        return json.loads(raw) if raw else {}


def create_queue(port, name):
    return Sqs(port).call("CreateQueue", {"QueueName": name})["QueueUrl"]


def worker(port, queue_url, seconds, index, out):
    sqs = Sqs(port)
    lat = {"send": [], "receive": [], "delete": []}
    sent = received = deleted = 0
    deadline = time.perf_counter() + seconds
    loops = 0
    try:
        while time.perf_counter() < deadline and loops < MAX_LOOPS:
            loops += 1
            entries = [{"Id": str(i), "MessageBody": BODY} for i in range(10)]
            t0 = time.perf_counter()
            r = sqs.call("SendMessageBatch", {"QueueUrl": queue_url, "Entries": entries})
            t1 = time.perf_counter()
            lat["send"].append(t1 - t0)
            sent += len(r.get("Successful", []))
            r = sqs.call("ReceiveMessage", {"QueueUrl": queue_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1})
            t2 = time.perf_counter()
            lat["receive"].append(t2 - t1)
            msgs = r.get("Messages", [])
            received += len(msgs)
            if msgs:
                r = sqs.call("DeleteMessageBatch", {"QueueUrl": queue_url, "Entries": [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]})
                lat["delete"].append(time.perf_counter() - t2)
                deleted += len(r.get("Successful", []))
        t = os.times()
        out.put({"ok": True, "sent": sent, "received": received, "deleted": deleted, "lat": lat,
                 "cpu_s": t.user + t.system})
    except Exception as e:  # reported, not hidden: the run is marked failed
        out.put({"ok": False, "error": f"worker {index}: {e}"})


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


def run(port, queue_url, workers, seconds):
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=(port, queue_url, seconds, i, out)) for i in range(workers)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    errors = [r["error"] for r in results if not r["ok"]]
    if errors:
        return {"error": "; ".join(errors)[:500]}
    lat = {k: [v for r in results for v in r["lat"][k]] for k in ("send", "receive", "delete")}
    deleted = sum(r["deleted"] for r in results)
    return {
        "workers": workers, "seconds": round(elapsed, 2),
        "sent": sum(r["sent"] for r in results), "received": sum(r["received"] for r in results),
        "deleted": deleted, "messages_per_s": round(deleted / elapsed),
        # The workers' own CPU time over the run: near 1.0 on one pinned core, the client is the limit.
        "client_cpu_of_core": round(sum(r["cpu_s"] for r in results) / elapsed, 2),
        "calls": {k: {"count": len(v), "p50_ms": pct(v, 50), "p99_ms": pct(v, 99)} for k, v in lat.items()},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--queue-url")
    ap.add_argument("--create-queue", help="create this queue first and use it")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    url = a.queue_url or create_queue(a.port, a.create_queue)
    print(json.dumps(run(a.port, url, a.workers, a.seconds)))


if __name__ == "__main__":
    main()
