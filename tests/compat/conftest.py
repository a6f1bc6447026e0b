"""Fixtures for the compatibility suite: a private `strato serve` per test and
helpers that drive it with the real AWS CLI (v1) and boto3.

Run through `tests/compat/run`, which installs the clients and builds strato.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VENV_BIN = Path(sys.executable).parent
AWS_CLI = VENV_BIN / "aws"

REGION = "us-east-1"
DEFAULT_ACCOUNT = "000000000000"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"

# Readiness waits only; no test asserts on elapsed time.
READY_DEADLINE_SECONDS = 30.0


def strato_bin() -> Path:
    env = os.environ.get("STRATO_BIN")
    if env:
        return Path(env)
    return ROOT / "target" / "debug" / "strato"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _health_ok(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/strato/health", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


def make_zip(files: dict[str, bytes | str] | None = None, *, stored: bool = False) -> bytes:
    """A deployment package in memory."""
    if files is None:
        files = {"index.js": 'exports.handler = async () => "Hello from Strato";\n'}
    buf = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def slow_to_unpack_zip() -> bytes:
    """A package that is small to send but slow to unpack (~230 MB of zeros,
    under the 250 MB unzipped limit, plus thousands of empty files), so an
    update stays `InProgress` for a while. A nonce keeps every package distinct
    (packages are content-addressed, and a known one settles at once)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("index.js", 'exports.handler = async () => "big";\n')
        zf.writestr("index.py", "def handler(event, context):\n    return 'big'\n")
        zf.writestr("nonce.txt", os.urandom(16).hex())
        zero = bytes(10 * 1024 * 1024)
        for i in range(23):
            zf.writestr(f"data/zero{i}.bin", zero)
        for i in range(5000):
            zf.writestr(f"many/d{i % 50}/f{i}.txt", b"")
    return buf.getvalue()


@dataclass
class CliResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)

    def check(self) -> "CliResult":
        assert self.returncode == 0, (
            f"aws {' '.join(self.args)} exited {self.returncode}\n"
            f"stdout: {self.stdout}\nstderr: {self.stderr}"
        )
        return self


@dataclass
class Strato:
    """One running `strato serve` with its own data directory."""

    binary: Path
    data_dir: Path
    home: Path
    endpoint: str
    proc: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    # ---- AWS CLI -------------------------------------------------------
    def aws(self, *args: str, endpoint: bool = True, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> CliResult:
        """Run the venv's `aws` CLI (with `--endpoint-url` unless told not to)."""
        argv = list(args)
        if endpoint:
            argv += ["--endpoint-url", self.endpoint]
        run_env = dict(self.env)
        if env:
            run_env.update(env)
        proc = subprocess.run(
            [str(AWS_CLI), *argv],
            env=run_env,
            cwd=str(cwd or self.home),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        return CliResult(argv, proc.returncode, proc.stdout, proc.stderr)

    # ---- boto3 -----------------------------------------------------------
    def lambda_client(self, access_key: str = "test", secret_key: str = "test"):
        session = boto3.session.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=REGION,
        )
        return session.client(
            "lambda",
            endpoint_url=self.endpoint,
            config=Config(retries={"max_attempts": 0}),
        )

    # ---- administration --------------------------------------------------
    def create_account(self, *extra: str) -> dict[str, str]:
        """`strato accounts create` against this server's data dir (while it runs)."""
        proc = subprocess.run(
            [str(self.binary), "accounts", "create", "--data-dir", str(self.data_dir), *extra],
            capture_output=True,
            text=True,
            check=False,
            env=self.env,
        )
        assert proc.returncode == 0, f"accounts create failed: {proc.stdout}\n{proc.stderr}"
        fields = {}
        for line in proc.stdout.splitlines():
            if "\t" in line:
                key, value = line.split("\t", 1)
                fields[key.strip()] = value.strip()
        for key in ("account_id", "access_key_id", "secret_access_key"):
            assert key in fields, f"accounts create printed no {key}: {proc.stdout!r}"
        return fields

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "HOME": str(home),
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "STRATO_LOG": "info",
            "NO_COLOR": "1",
        }
    )
    env.pop("STRATO_DATA_DIR", None)
    env.pop("STRATO_LISTEN", None)
    env.pop("STRATO_REGION", None)
    return env


# Runtime components (the AWS SDKs `strato serve` installs for functions,
# Node.js releases) shared by every server the suite starts, as servers may
# share a runtimes dir: installed once, not once per test.
RUNTIMES_DIR = HERE / ".runtimes"


def _start(binary: Path, root: Path, extra_args: tuple[str, ...] = ()) -> Strato:
    """Starts `strato serve` on `root/data`; a second start on the same root
    finds the first one's state (a restart)."""
    data_dir = root / "data"
    home = root / "home"
    (home / ".aws").mkdir(parents=True, exist_ok=True)
    env = _clean_env(home)
    log_path = root / "strato.log"
    last_log = ""
    for _attempt in range(5):
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        log = open(log_path, "ab")
        proc = subprocess.Popen(
            [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir),
             "--runtimes-dir", str(RUNTIMES_DIR), *extra_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + READY_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break  # exited (e.g. the port was taken meanwhile): try another port
            if _health_ok(endpoint):
                return Strato(binary, data_dir, home, endpoint, proc, log_path, env)
            time.sleep(0.05)
        last_log = log_path.read_text(errors="replace")
        _stop(proc)
    raise RuntimeError(f"strato serve did not become healthy; last log:\n{last_log}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session", autouse=True)
def _private_aws_env():
    """boto3 runs in-process: keep it away from the user's ~/.aws too."""
    tmp = Path(tempfile.mkdtemp(prefix="strato-compat-aws-"))
    mp = pytest.MonkeyPatch()
    for key in list(os.environ):
        if key.startswith("AWS_"):
            mp.delenv(key)
    mp.setenv("AWS_CONFIG_FILE", str(tmp / "config"))
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "credentials"))
    mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
    try:
        yield
    finally:
        mp.undo()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def strato_binary() -> Path:
    binary = strato_bin()
    if not binary.is_file():
        pytest.fail(f"no strato binary at {binary}: run tests/compat/run (or set STRATO_BIN)")
    return binary


@pytest.fixture
def strato(strato_binary, request) -> Strato:
    """A fresh `strato serve` on a free loopback port with an empty data dir.
    A test marked `@pytest.mark.strato_args("--flag", "value")` starts it
    with those flags."""
    root = Path(tempfile.mkdtemp(prefix="strato-compat-"))
    marker = request.node.get_closest_marker("strato_args")
    server = _start(strato_binary, root, tuple(marker.args) if marker else ())
    try:
        yield server
    finally:
        _stop(server.proc)
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            sys.stderr.write(f"\n--- strato log ({request.node.name}) ---\n{server.log()[-8000:]}\n")
        shutil.rmtree(root, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def wait_until(predicate, what: str, deadline_seconds: float = READY_DEADLINE_SECONDS, interval=0.1):
    """Poll `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + deadline_seconds
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
