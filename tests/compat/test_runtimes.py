"""Runtimes as AWS ships them, seen through boto3: what each runtime's
site-packages and environment hold, AWS's blank-python sample dependency
(`aws-xray-sdk`, which imports `pkg_resources`) running unchanged on
python3.11, the runtimes AWS added (nodejs24.x without callback handlers,
java25, python3.14), one request id per invocation in every runtime family,
and AWS's SerializedRequestEntityTooLargeException.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import REGION, ROLE, RUNTIMES_DIR, make_zip, wait_until


@pytest.fixture
def sdks(strato):
    """The server installs boto3 for Python functions in the background on
    first start (once for the shared runtimes dir): wait for it."""
    wait_until(lambda: (RUNTIMES_DIR / "bootstrap" / "boto3").is_dir(),
               "boto3 installed in the runtime directory", 600, interval=1)
    return strato


def deploy(client, name: str, runtime: str, handler: str, files: dict, **extra) -> None:
    client.create_function(
        FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
        Code={"ZipFile": make_zip(files)}, MemorySize=256, Timeout=extra.pop("Timeout", 30),
        **extra,
    )
    client.get_waiter("function_active_v2").wait(FunctionName=name)


def invoke(client, name: str, event: dict | None = None, **extra) -> tuple:
    """(payload, the answer's x-amzn-RequestId, the decoded log tail, the answer)."""
    answer = client.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(),
                           LogType="Tail", **extra)
    payload = json.loads(answer["Payload"].read())
    log = base64.b64decode(answer.get("LogResult", "")).decode(errors="replace")
    return payload, answer["ResponseMetadata"]["RequestId"], log, answer


def started_id(log: str) -> str:
    """The request id of the START line of a log tail."""
    for line in log.splitlines():
        if line.startswith("START RequestId: "):
            return line[len("START RequestId: "):].split(" ", 1)[0]
    raise AssertionError(f"no START line in {log!r}")


def assert_one_request_id(request_id: str, log: str) -> None:
    assert started_id(log) == request_id, log
    assert f"END RequestId: {request_id}" in log, log
    assert f"REPORT RequestId: {request_id}" in log, log


# ---------------------------------------------------------------------------
# Python site-packages: pip and (through 3.11) setuptools, as AWS's images
# ---------------------------------------------------------------------------

SITE = """
import importlib.util, os, sysconfig

def handler(event, context):
    def where(name):
        spec = importlib.util.find_spec(name)
        return spec.origin if spec else None
    found = {n: where(n) for n in ["pip", "setuptools", "pkg_resources", "aws_xray_sdk", "boto3"]}
    purelib = sysconfig.get_paths()["purelib"]
    return {"found": found, "purelib": purelib, "listing": sorted(os.listdir(purelib))}
"""


@pytest.mark.parametrize("runtime,setuptools", [("python3.11", True), ("python3.12", False)])
def test_python_site_packages_hold_what_aws_images_hold(sdks, runtime, setuptools):
    client = sdks.lambda_client()
    name = "site-" + runtime.replace(".", "")
    deploy(client, name, runtime, "index.handler", {"index.py": SITE})
    result, _, _, _ = invoke(client, name)
    minor = runtime.split(".")[1]
    purelib = f"/var/lang/lib/python3.{minor}/site-packages"
    assert result["purelib"] == purelib, result
    found = result["found"]
    assert found["pip"] == f"{purelib}/pip/__init__.py", result
    if setuptools:
        assert found["setuptools"] == f"{purelib}/setuptools/__init__.py", result
        assert found["pkg_resources"] == f"{purelib}/pkg_resources/__init__.py", result
        assert any(n.startswith("setuptools-") and n.endswith(".dist-info")
                   for n in result["listing"]), result
    else:
        assert found["setuptools"] is None and found["pkg_resources"] is None, result
    # What the host pip-installed stays out; the SDK is the runtime's.
    assert found["aws_xray_sdk"] is None, result
    assert found["boto3"] == "/var/runtime/boto3/__init__.py", result
    assert all(n.startswith(("pip", "setuptools", "pkg_resources", "_distutils_hack",
                             "distutils-precedence.pth")) for n in result["listing"]), result


# AWS's blank-python sample: its function module, with the dependencies its
# 2-build-layer.sh vendors (`pip install --target ... -r requirements.txt`).
BLANK_PYTHON = """
import os
import logging
import jsonpickle
import boto3
from aws_xray_sdk.core import patch_all

logger = logging.getLogger()
logger.setLevel(logging.INFO)
patch_all()

client = boto3.client('lambda')
client.get_account_settings()

def lambda_handler(event, context):
    logger.info('## ENVIRONMENT VARIABLES\\r' + jsonpickle.encode(dict(**os.environ)))
    logger.info('## EVENT\\r' + jsonpickle.encode(event))
    logger.info('## CONTEXT\\r' + jsonpickle.encode(context))
    response = client.get_account_settings()
    return response['AccountUsage']
"""

# aws-xray-sdk releases up to 2.8 import pkg_resources (its local sampler
# reads its rules with resource_filename); 2.4.3 is the one the sample used.
BLANK_PYTHON_REQUIREMENTS = ["aws-xray-sdk==2.4.3", "jsonpickle==1.3", "wrapt", "future"]


def vendored_zip(files: dict[str, str], requirements: list[str]) -> bytes:
    """The function's files plus `pip install --target` of its requirements
    (botocore and boto3 come from the runtime, as on AWS)."""
    with tempfile.TemporaryDirectory(prefix="strato-vendor-") as tmp:
        target = Path(tmp) / "package"
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--target", str(target), *requirements],
            capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"pip install failed: {proc.stdout}\n{proc.stderr}"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(target.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    zf.write(path, path.relative_to(target).as_posix())
            for name, text in files.items():
                zf.writestr(name, text)
        return buf.getvalue()


def test_blank_python_sample_with_aws_xray_sdk_runs_on_python311(sdks):
    client = sdks.lambda_client()
    zip_bytes = vendored_zip({"lambda_function.py": BLANK_PYTHON}, BLANK_PYTHON_REQUIREMENTS)
    client.create_function(
        FunctionName="blank-python", Runtime="python3.11", Role=ROLE,
        Handler="lambda_function.lambda_handler", Code={"ZipFile": zip_bytes},
        MemorySize=256, Timeout=30, TracingConfig={"Mode": "Active"})
    client.get_waiter("function_active_v2").wait(FunctionName="blank-python")
    result, request_id, log, answer = invoke(client, "blank-python", {"key": "value"})
    assert "FunctionError" not in answer, (result, log)
    assert result["FunctionCount"] == 1, result
    assert result["TotalCodeSize"] > 0, result
    assert "## EVENT" in log and request_id in log, log


# ---------------------------------------------------------------------------
# Environment: AWS's defined runtime variables, per runtime family
# ---------------------------------------------------------------------------

PYTHON_ENV = """
import os
def handler(event, context):
    return {"env": dict(os.environ), "requestId": context.aws_request_id}
"""

NODE_ENV = """
exports.handler = async (event, context) => ({ env: { ...process.env }, requestId: context.awsRequestId });
"""

# An OS-only runtime's bootstrap: the Runtime API by hand, answering with
# its environment and the request id header.
PROVIDED_BOOTSTRAP = """#!/usr/bin/python3
import json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        trace = r.headers.get("Lambda-Runtime-Trace-Id")
        r.read()
    print("HANDLING " + request_id, flush=True)
    body = json.dumps({"env": dict(os.environ), "requestId": request_id, "trace": trace}).encode()
    urllib.request.urlopen(urllib.request.Request(api + request_id + "/response", data=body, method="POST")).read()
"""

# Every runtime sets these (the reserved variables and the unreserved
# defaults); `AWS_LAMBDA_RUNTIME_API` is where the runtime polls.
COMMON = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
                       "/var/task:/var/task/lib:/opt/lib",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
    "_AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129",
    "_AWS_XRAY_DAEMON_PORT": "2000",
}
PRESENT = ["AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
           "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API",
           "_HANDLER"]


@pytest.mark.parametrize("runtime,handler,files,family", [
    ("python3.11", "index.handler", {"index.py": PYTHON_ENV}, {
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11", "PYTHONPATH": "/var/runtime"}),
    ("python3.13", "index.handler", {"index.py": PYTHON_ENV}, {
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13", "PYTHONPATH": "/var/runtime"}),
    ("nodejs20.x", "index.handler", {"index.js": NODE_ENV}, {
        "AWS_EXECUTION_ENV": "AWS_Lambda_nodejs20.x",
        "NODE_PATH": "/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:"
                     "/var/runtime/node_modules:/var/runtime:/var/task"}),
    ("provided.al2023", "anything", {"bootstrap": PROVIDED_BOOTSTRAP}, {
        "AWS_EXECUTION_ENV": None, "NODE_PATH": None, "PYTHONPATH": None}),
])
def test_environment_is_the_documented_set(strato, runtime, handler, files, family):
    client = strato.lambda_client()
    name = "env-" + runtime.replace(".", "")
    if runtime.startswith("provided"):
        zip_bytes = _executable_zip(files)
        client.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                               Code={"ZipFile": zip_bytes}, MemorySize=256)
        client.get_waiter("function_active_v2").wait(FunctionName=name)
    else:
        deploy(client, name, runtime, handler, files)
    result, request_id, log, _ = invoke(client, name)
    env = result["env"]
    for key, value in {**COMMON, **family}.items():
        assert env.get(key) == value, (key, env.get(key), env)
    for key in PRESENT:
        assert env.get(key), (key, env)
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert env["_HANDLER"] == handler
    assert "/[$LATEST]" in env["AWS_LAMBDA_LOG_STREAM_NAME"]
    if not runtime.startswith("provided"):
        # The managed runtimes set the invocation's trace header.
        assert env.get("_X_AMZN_TRACE_ID", "").startswith("Root=1-"), env
    assert result["requestId"] == request_id
    assert_one_request_id(request_id, log)


def _executable_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text)
    return buf.getvalue()


# ---------------------------------------------------------------------------
# One request id per invocation: header, START/END/REPORT, log lines,
# context, a timeout's errorMessage, and an Event's 202
# ---------------------------------------------------------------------------

PYTHON_IDS = """
import logging, time
logger = logging.getLogger()
logger.setLevel(logging.INFO)
def handler(event, context):
    logger.info("LOGGED %s", context.aws_request_id)
    print("EVENT " + context.aws_request_id)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return context.aws_request_id
"""

NODE_IDS = """
exports.handler = async (event, context) => {
  console.log("EVENT " + context.awsRequestId);
  if (event.sleep) { await new Promise((r) => setTimeout(r, event.sleep * 1000)); }
  return context.awsRequestId;
};
"""


@pytest.mark.parametrize("runtime,files", [
    ("python3.11", {"index.py": PYTHON_IDS}),
    ("nodejs20.x", {"index.js": NODE_IDS}),
])
def test_the_answer_carries_the_invocations_own_request_id(strato, runtime, files):
    client = strato.lambda_client()
    name = "ids-" + runtime.replace(".", "")
    deploy(client, name, runtime, "index.handler", files, Timeout=1)
    for _ in range(2):  # cold, then warm
        result, request_id, log, _ = invoke(client, name)
        assert result == request_id
        assert_one_request_id(request_id, log)
        event_lines = [line for line in log.splitlines() if "EVENT " in line]
        assert event_lines and all(line.endswith("EVENT " + request_id) for line in event_lines)
        if runtime.startswith("nodejs"):
            # Node's console lines carry the id in their own column.
            assert f"\t{request_id}\tINFO\tEVENT {request_id}" in log, log
        else:
            assert f"\t{request_id}\tLOGGED {request_id}" in log, log
    # A timeout names the same id.
    result, request_id, log, answer = invoke(client, name, {"sleep": 5})
    assert answer.get("FunctionError") == "Unhandled"
    assert result["errorMessage"] == f"RequestId: {request_id} Error: Task timed out after 1.00 seconds"
    assert_one_request_id(request_id, log)
    # An Event's 202 answers with the id the invocation runs under.
    event_answer = client.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    assert event_answer["StatusCode"] == 202
    event_id = event_answer["ResponseMetadata"]["RequestId"]
    logs = logs_client(strato)

    def logged():
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}",
                                            filterPattern=f'"{event_id}"')["events"]
        except logs.exceptions.ResourceNotFoundException:
            return False
        text = "\n".join(e["message"] for e in events)
        return (f"START RequestId: {event_id}" in text and f"EVENT {event_id}" in text
                and f"REPORT RequestId: {event_id}" in text)

    wait_until(logged, "the event's START, EVENT and REPORT lines under its 202's id", 60)


def test_provided_runtime_sees_the_answers_request_id(strato):
    client = strato.lambda_client()
    client.create_function(FunctionName="ids-provided", Runtime="provided.al2023", Role=ROLE,
                           Handler="x", Code={"ZipFile": _executable_zip(
                               {"bootstrap": PROVIDED_BOOTSTRAP})}, MemorySize=256)
    client.get_waiter("function_active_v2").wait(FunctionName="ids-provided")
    result, request_id, log, _ = invoke(client, "ids-provided")
    assert result["requestId"] == request_id
    assert f"HANDLING {request_id}" in log
    assert_one_request_id(request_id, log)


def logs_client(strato):
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION,
    ).client("logs", endpoint_url=strato.endpoint, config=Config(retries={"max_attempts": 0}))


# ---------------------------------------------------------------------------
# The runtimes AWS added
# ---------------------------------------------------------------------------

def test_nodejs24_runs_async_handlers_and_refuses_callback_handlers(strato):
    client = strato.lambda_client()
    deploy(client, "node24-async", "nodejs24.x", "index.handler", {"index.js": """
exports.handler = async () => ({ node: process.versions.node, env: process.env.AWS_EXECUTION_ENV });
"""}, Timeout=30)
    result, _, _, _ = invoke(client, "node24-async")
    assert result["node"].split(".")[0] == "24", result
    assert result["env"] == "AWS_Lambda_nodejs24.x"

    deploy(client, "node24-callback", "nodejs24.x", "index.handler", {"index.js": """
exports.handler = (event, context, callback) => { callback(null, "old style"); };
"""})
    result, request_id, log, answer = invoke(client, "node24-callback")
    assert answer.get("FunctionError") == "Unhandled", (result, log)
    assert result["errorType"] == "Runtime.CallbackHandlerDeprecated", result
    assert result["errorMessage"] == (
        "ERROR: AWS Lambda has removed support for callback-based function handlers starting "
        "with Node.js 24. You need to modify this function to use a supported handler signature "
        "to use Node.js 24 or later. For more information see "
        "https://docs.aws.amazon.com/lambda/latest/dg/nodejs-handler.html.")
    # The same handler still runs on nodejs22.x and earlier.
    deploy(client, "node20-callback", "nodejs20.x", "index.handler", {"index.js": """
exports.handler = (event, context, callback) => { callback(null, "old style"); };
"""})
    assert invoke(client, "node20-callback")[0] == "old style"


def python_available(minor: int) -> bool:
    """Whether this host has the interpreter (as `strato runtimes` finds them)."""
    candidates = [Path(f"/usr/bin/python3.{minor}"), Path(f"/usr/local/bin/python3.{minor}")]
    pyenv = Path("/root/.pyenv/versions")
    if pyenv.is_dir():
        candidates += [d / "bin" / f"python3.{minor}" for d in pyenv.iterdir()
                       if d.name.startswith(f"3.{minor}.")]
    return any(p.is_file() for p in candidates)


def test_python314_is_refused_at_create_function_when_the_host_lacks_it(strato):
    client = strato.lambda_client()
    if python_available(14):
        deploy(client, "py314", "python3.14", "index.handler", {"index.py": PYTHON_ENV})
        result, _, _, _ = invoke(client, "py314")
        assert result["env"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.14"
        return
    with pytest.raises(ClientError) as err:
        client.create_function(FunctionName="py314", Runtime="python3.14", Role=ROLE,
                               Handler="index.handler",
                               Code={"ZipFile": make_zip({"index.py": PYTHON_ENV})})
    error = err.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "InvalidParameterValueException"
    assert error["Error"]["Message"].startswith(
        "The runtime parameter of python3.14 is not available on this Strato host: "
        "no Python 3.14 is installed on this host."), error
    with pytest.raises(ClientError) as missing:
        client.get_function(FunctionName="py314")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


# ---------------------------------------------------------------------------
# SerializedRequestEntityTooLargeException
# ---------------------------------------------------------------------------

def test_event_whose_serialized_request_is_over_the_limit(strato):
    client = strato.lambda_client()
    deploy(client, "serialized", "python3.11", "index.handler", {"index.py": PYTHON_IDS})
    limit = 1_048_576
    context = base64.b64encode(json.dumps({"custom": {"k": "v" * 200}}).encode()).decode()
    # A payload just under the limit is accepted on its own...
    payload = json.dumps({"pad": "x" * (limit - 100 - 11)}).encode()
    assert len(payload) <= limit
    ok = client.invoke(FunctionName="serialized", InvocationType="Event", Payload=payload)
    assert ok["StatusCode"] == 202
    # ...but not with a client context that takes it over.
    with pytest.raises(ClientError) as err:
        client.invoke(FunctionName="serialized", InvocationType="Event", Payload=payload,
                      ClientContext=context)
    error = err.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Code"] == "SerializedRequestEntityTooLargeException"
    assert error["Type"] == "User"
    assert "Event invocation type (limit 1048576 bytes)" in error["message"], error
    assert isinstance(err.value, client.exceptions.SerializedRequestEntityTooLargeException)
    # A synchronous invocation has the larger limit.
    answer = client.invoke(FunctionName="serialized", Payload=payload, ClientContext=context)
    assert answer["StatusCode"] == 200
