"""The client workload of the `sns-fanout` scenario (stdlib only; untested by CI).

Creates a topic with ten SQS queues subscribed to it (raw message delivery), then runs workers
that each loop Publish (256 B) over one keep-alive connection for a bounded time, SigV4-signed
query-protocol requests as every SDK sends SNS. Afterwards it waits (bounded) until the queues
hold every delivery and prints one JSON object: publishes/s and deliveries/s (publishes × 10
subscriptions over the publishing time), and whether every delivery arrived.

    python3 snsdriver.py --port P --workers 4 --seconds 10
"""

import argparse
import http.client
import json
import multiprocessing
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import awsclient  # noqa: E402
import sqsdriver  # noqa: E402

BODY = "x" * 256
SUBSCRIPTIONS = 10
MAX_LOOPS = 1_000_000


class Sns:
    """One signed query-protocol connection to an SNS endpoint on 127.0.0.1."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, action, params):
        data = urllib.parse.urlencode({"Action": action, "Version": "2010-03-31", **params}).encode()
        headers = awsclient.sign_headers("POST", f"127.0.0.1:{self.port}", "/", [], data,
                                         "test", "test", "us-east-1", service="sns")
        headers["content-type"] = "application/x-www-form-urlencoded; charset=utf-8"
        self.conn.request("POST", "/", body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read().decode()
        if resp.status >= 300:
            raise RuntimeError(f"{action}: HTTP {resp.status}: {raw[:300]!r}")
        return raw


def setup(port, name):
    """The topic ARN and the ten queue URLs."""
    sns = Sns(port)
    topic = re.search(r"<TopicArn>([^<]+)</TopicArn>", sns.call("CreateTopic", {"Name": name})).group(1)
    urls = []
    for i in range(SUBSCRIPTIONS):
        url = sqsdriver.create_queue(port, f"{name}-q{i}")
        arn = queue_arn(port, url)
        sns.call("Subscribe", {"TopicArn": topic, "Protocol": "sqs", "Endpoint": arn,
                               "Attributes.entry.1.key": "RawMessageDelivery",
                               "Attributes.entry.1.value": "true"})
        urls.append(url)
    return topic, urls


def queue_arn(port, url):
    """The queue's ARN as the server names it (moto's account is not Strato's)."""
    attrs = sqsdriver.Sqs(port).call("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["QueueArn"]})
    return attrs["Attributes"]["QueueArn"]


def worker(port, topic, seconds, index, out):
    sns = Sns(port)
    lat = []
    deadline = time.perf_counter() + seconds
    loops = 0
    try:
        while time.perf_counter() < deadline and loops < MAX_LOOPS:
            loops += 1
            t0 = time.perf_counter()
            sns.call("Publish", {"TopicArn": topic, "Message": BODY})
            lat.append(time.perf_counter() - t0)
        t = os.times()
        out.put({"ok": True, "published": loops, "lat": lat, "cpu_s": t.user + t.system})
    except Exception as e:  # reported, not hidden: the run is marked failed
        out.put({"ok": False, "error": f"worker {index}: {e}"})


def queued(port, urls):
    sqs = sqsdriver.Sqs(port)
    total = 0
    for url in urls:
        attrs = sqs.call("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages"]})
        total += int(attrs["Attributes"]["ApproximateNumberOfMessages"])
    return total


def run(port, name, workers, seconds):
    topic, urls = setup(port, name)
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=(port, topic, seconds, i, out)) for i in range(workers)]
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
    published = sum(r["published"] for r in results)
    expected = published * SUBSCRIPTIONS
    deadline = time.perf_counter() + 60
    delivered = queued(port, urls)
    while delivered < expected and time.perf_counter() < deadline:
        time.sleep(0.5)
        delivered = queued(port, urls)
    lat = [v for r in results for v in r["lat"]]
    return {
        "workers": workers, "seconds": round(elapsed, 2), "published": published,
        "delivered": delivered, "all_delivered": delivered >= expected,
        "publishes_per_s": round(published / elapsed), "deliveries_per_s": round(expected / elapsed),
        "client_cpu_of_core": round(sum(r["cpu_s"] for r in results) / elapsed, 2),
        "publish_p50_ms": sqsdriver.pct(lat, 50), "publish_p99_ms": sqsdriver.pct(lat, 99),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", default="fanout")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    print(json.dumps(run(a.port, a.name, a.workers, a.seconds)))


if __name__ == "__main__":
    main()
