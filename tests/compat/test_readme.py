"""The README walk-through, run verbatim with the real AWS CLI.

The command lines live in README_COMMANDS.md (the lead copies them into
README.md); this test runs exactly those lines, substituting only the port.
"""

from __future__ import annotations

import hashlib
import base64
import json
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

from conftest import HERE, ROOT

DEFAULT_ENDPOINT = "http://127.0.0.1:9000"


def readme_commands() -> list[str]:
    text = (HERE / "README_COMMANDS.md").read_text()
    match = re.search(r"```sh\n(.*?)```", text, re.S)
    assert match, "README_COMMANDS.md has no ```sh block"
    lines = [line.strip() for line in match.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_readme_walkthrough(strato, tmp_path):
    commands = readme_commands()
    workdir = tmp_path / "walkthrough"
    workdir.mkdir()
    # Only `aws configure` may provide the credentials and region.
    env = {k: v for k, v in strato.env.items()
           if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}

    outputs: dict[str, str] = {}
    for line in commands:
        assert DEFAULT_ENDPOINT in line or not line.startswith("aws lambda"), line
        runnable = line.replace(DEFAULT_ENDPOINT, strato.endpoint)
        proc = subprocess.run(["bash", "-c", runnable], cwd=workdir, env=env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, f"{line}\nexit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        outputs[line] = proc.stdout

    # `aws configure set` wrote only the private config files.
    credentials = Path(env["AWS_SHARED_CREDENTIALS_FILE"]).read_text()
    assert "aws_access_key_id = test" in credentials
    assert "aws_secret_access_key = test" in credentials
    assert "region = us-east-1" in Path(env["AWS_CONFIG_FILE"]).read_text()

    def raw_output_of(prefix: str) -> str:
        found = [out for line, out in outputs.items() if line.startswith(prefix)]
        assert len(found) == 1, f"expected one command starting {prefix!r}"
        return found[0]

    def output_of(prefix: str):
        return json.loads(raw_output_of(prefix))

    package = (workdir / "function.zip").read_bytes()
    sha = base64.b64encode(hashlib.sha256(package).digest()).decode()

    created = output_of("aws lambda create-function")
    assert created["FunctionName"] == "hello"
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:hello"
    assert created["Runtime"] == "nodejs20.x"
    assert created["Handler"] == "index.handler"
    assert created["Role"] == "arn:aws:iam::000000000000:role/lambda-role"
    assert created["CodeSha256"] == sha
    assert created["CodeSize"] == len(package)
    assert created["State"] in ("Pending", "Active")

    got = output_of("aws lambda get-function")
    assert got["Configuration"]["FunctionName"] == "hello"
    assert got["Configuration"]["CodeSha256"] == sha
    assert got["Code"]["RepositoryType"] == "S3"
    with urllib.request.urlopen(got["Code"]["Location"], timeout=10) as resp:
        assert resp.read() == package

    listed = output_of("aws lambda list-functions")
    assert [f["FunctionName"] for f in listed["Functions"]] == ["hello"]

    invoked = output_of("aws lambda invoke")
    assert invoked["StatusCode"] == 200
    assert invoked["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in invoked
    log = base64.b64decode(invoked["LogResult"]).decode()
    assert log.startswith("START RequestId: "), log
    assert "\nEND RequestId: " in log and "\nREPORT RequestId: " in log, log
    assert "Init Duration: " in log, log
    assert raw_output_of("cat out.json") == '"Hello from Strato"'
    assert json.loads((workdir / "out.json").read_text()) == "Hello from Strato"


def test_readme_md_uses_these_commands():
    """Once README.md exists, it must carry the tested lines verbatim."""
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("README.md not written yet")
    text = readme.read_text()
    missing = [line for line in readme_commands() if line not in text]
    assert not missing, f"README.md lacks these tested command lines: {missing}"
