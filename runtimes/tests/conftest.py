"""Test harness: a fake Lambda Runtime API server and bootstrap launchers.

The fake server implements the Runtime API (2018-06-01) plus Strato's
stem-cell assignment endpoint. Tests queue invocations and wait for what the
bootstrap POSTs back. Waits use generous timeouts only to avoid hanging the
suite; nothing asserts on timing.
"""

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NODE_BOOTSTRAP = ROOT / "nodejs" / "bootstrap.mjs"
PYTHON_BOOTSTRAP = ROOT / "python" / "bootstrap.py"
# Interpreter / node binary used to run the bootstraps (the suite itself runs on any python3).
PYTHON = os.environ.get("STRATO_TEST_PYTHON") or sys.executable
NODE = os.environ.get("STRATO_TEST_NODE") or shutil.which("node") or "node"
WAIT = 30.0  # seconds; a hang guard, not a performance assertion
PREFIX = "/2018-06-01/runtime"
STRATO_INVOCATION = PREFIX + "/strato/invocation/"
THEN_NEXT = "/response-then-next"


class Posted(object):
    def __init__(self, kind, request_id, headers, body, chunks=None, trailers=None):
        self.kind = kind  # "response" | "error" | "init_error"
        self.request_id = request_id
        self.headers = headers
        self.body = body
        self.chunks = chunks  # a chunked (streamed) body's chunks, in order
        self.trailers = trailers or {}

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Posted(%s, %s, %r)" % (self.kind, self.request_id, self.body[:300])


class FakeRuntimeApi(object):
    def __init__(self):
        self.invocations = queue.Queue()
        self.assignments = queue.Queue()
        self.posted = queue.Queue()
        self.chunk_arrivals = queue.Queue()  # each streamed chunk as it arrives
        self.requests = []  # (method, path)
        self.client_ports = set()
        self.next_status = None  # force a status for /invocation/next
        self.drop_after_post = False  # silently close the connection after each POST
        self.refuse_response = None  # a status answering response-then-next (413...), with no event
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers+body writes stall ~40ms (Nagle + delayed ACK)

            def log_message(self, *args):
                pass

            def _send(self, status, body=b"", headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:  # client gone (teardown)
                    pass

            def do_GET(self):
                with api.lock:
                    api.requests.append(("GET", self.path))
                    api.client_ports.add(self.client_address[1])
                if self.path == PREFIX + "/invocation/next":
                    self._send_next()
                elif self.path == PREFIX + "/strato/assignment":
                    env = api.assignments.get()
                    self._send(200, json.dumps({"env": env}).encode(), {"Content-Type": "application/json"})
                else:
                    self._send(404, b"not found")

            def _send_next(self):
                """Answers with the next enqueued invocation (as /invocation/next)."""
                if api.next_status is not None:
                    self._send(api.next_status, b"boom")
                    return
                inv = api.invocations.get()
                if inv is None:  # shutdown
                    self._send(500, b"shutdown")
                    return
                self._send(200, inv["body"], inv["headers"])

            def _read_chunked(self):
                chunks, trailers = [], {}
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                    api.chunk_arrivals.put(chunks[-1])
                while True:
                    line = self.rfile.readline().strip()
                    if not line:
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    trailers[name.strip().lower()] = value.strip()
                return chunks, trailers

            def do_POST(self):
                with api.lock:
                    api.requests.append(("POST", self.path))
                    api.client_ports.add(self.client_address[1])
                headers = {k.lower(): v for k, v in self.headers.items()}
                chunks, trailers = None, {}
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    chunks, trailers = self._read_chunked()
                    body = b"".join(chunks).decode("utf-8")
                else:
                    n = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(n).decode("utf-8")
                p = self.path
                if p == PREFIX + "/init/error":
                    api.posted.put(Posted("init_error", None, headers, body))
                elif p.startswith(PREFIX + "/invocation/") and p.endswith("/response"):
                    rid = p[len(PREFIX + "/invocation/"):-len("/response")]
                    api.posted.put(Posted("response", rid, headers, body, chunks, trailers))
                elif p.startswith(STRATO_INVOCATION) and p.endswith(THEN_NEXT):
                    # Strato's response-then-next: the response, then the next event.
                    rid = p[len(STRATO_INVOCATION):-len(THEN_NEXT)]
                    refuse = api.refuse_response  # read before the test can see the response
                    api.posted.put(Posted("response", rid, headers, body, chunks, trailers))
                    if refuse is not None:
                        self._send(refuse, b'{"errorType":"RequestEntityTooLarge"}')
                        return
                    self._send_next()
                    if api.drop_after_post:
                        self.close_connection = True
                    return
                elif p.startswith(PREFIX + "/invocation/") and p.endswith("/error"):
                    rid = p[len(PREFIX + "/invocation/"):-len("/error")]
                    api.posted.put(Posted("error", rid, headers, body))
                else:
                    self._send(404, b"not found")
                    return
                self._send(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
                if api.drop_after_post:
                    self.close_connection = True  # no "Connection: close" header

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], OSError):  # resets at teardown are expected
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.server.server_address[1]

    def enqueue(self, event, request_id=None, deadline_ms=None, trace_id=None,
                client_context=None, identity=None, arn=None, raw_body=None):
        rid = request_id or str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": rid,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms or int(time.time() * 1000) + 60000),
            "Lambda-Runtime-Invoked-Function-Arn": arn or "arn:aws:lambda:us-east-1:123456789012:function:fn",
        }
        if trace_id:
            headers["Lambda-Runtime-Trace-Id"] = trace_id
        if client_context is not None:
            headers["Lambda-Runtime-Client-Context"] = json.dumps(client_context)
        if identity is not None:
            headers["Lambda-Runtime-Cognito-Identity"] = json.dumps(identity)
        body = raw_body if raw_body is not None else json.dumps(event).encode()
        self.invocations.put({"headers": headers, "body": body})
        return rid

    def wait_posted(self, timeout=WAIT):
        try:
            return self.posted.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("bootstrap posted nothing within %ss" % timeout)

    def invoke(self, event=None, **kw):
        rid = self.enqueue(event, **kw)
        posted = self.wait_posted()
        assert posted.request_id == rid, posted
        return posted

    def close(self):
        for _ in range(4):
            self.invocations.put(None)
            self.assignments.put({})
        self.server.shutdown()
        self.server.server_close()


class Bootstrap(object):
    """A running bootstrap subprocess; stdout/stderr captured by reader threads."""

    def __init__(self, argv, env, cwd):
        self.proc = subprocess.Popen(
            argv, env=env, cwd=str(cwd),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self._out = []
        self._err = []
        self._t1 = threading.Thread(target=self._pump, args=(self.proc.stdout, self._out), daemon=True)
        self._t2 = threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True)
        self._t1.start()
        self._t2.start()

    @staticmethod
    def _pump(stream, sink):
        for chunk in iter(lambda: stream.read1(65536), b""):
            sink.append(chunk)

    @property
    def stdout(self):
        return b"".join(self._out).decode("utf-8", "replace")

    @property
    def stderr(self):
        return b"".join(self._err).decode("utf-8", "replace")

    def stdout_lines(self):
        return self.stdout.split("\n")

    def wait_stdout(self, needle, timeout=WAIT):
        end = time.time() + timeout
        while time.time() < end:
            if needle in self.stdout:
                return self.stdout
            time.sleep(0.02)
        raise AssertionError("%r not in stdout:\n%s\nstderr:\n%s" % (needle, self.stdout, self.stderr))

    def wait_exit(self, timeout=WAIT):
        rc = self.proc.wait(timeout=timeout)
        self._t1.join(5)
        self._t2.join(5)
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._t1.join(5)
        self._t2.join(5)


def check_refused_response_then_next(api, b):
    """With `api.refuse_response = 413` set before `b` (a counting handler)
    started: Strato answers response-then-next with /response's refusal and
    no event; the runtime must log it, ask for the next event itself, and keep
    serving."""
    assert api.invoke({}).json == 1
    api.refuse_response = None
    assert api.invoke({}).json == 2
    assert ("GET", PREFIX + "/invocation/next") in api.requests
    end = time.time() + WAIT  # the pipe reader may not have read the line yet
    while "returned 413" not in b.stderr and time.time() < end:
        time.sleep(0.05)
    assert "returned 413" in b.stderr
    assert b.proc.poll() is None


def _base_env(api, task_root, handler, extra):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]abcdef",
        "AWS_REGION": "us-east-1",
    }
    env.update(extra or {})
    return {k: v for k, v in env.items() if v is not None}


@pytest.fixture
def api():
    a = FakeRuntimeApi()
    yield a
    a.close()


@pytest.fixture
def launch(api, tmp_path):
    """launch(lang, files: {relpath: text}, handler, env=None, stem=False) -> Bootstrap"""
    started = []

    def _launch(lang, files, handler, env=None, stem=False, task_root=None):
        root = Path(task_root) if task_root else tmp_path / "task"
        root.mkdir(parents=True, exist_ok=True)
        for rel, text in (files or {}).items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        if lang == "node":
            argv = [NODE, str(NODE_BOOTSTRAP)]
        else:
            argv = [PYTHON, "-u", str(PYTHON_BOOTSTRAP)]
        if stem:
            e = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": os.environ.get("HOME", "/tmp"),
                "LANG": "C.UTF-8",
                "AWS_LAMBDA_RUNTIME_API": api.address,
                "STRATO_STEM_CELL": "1",
            }
            e.update(env or {})
            cwd = tmp_path
        else:
            e = _base_env(api, root, handler, env)
            cwd = root
        b = Bootstrap(argv, e, cwd)
        started.append(b)
        return b

    yield _launch
    for b in started:
        b.stop()
