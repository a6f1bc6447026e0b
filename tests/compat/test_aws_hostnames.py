"""Functions reach Strato by AWS's own host names, as they reach AWS.

With `AWS_ENDPOINT_URL` opted out (the function sets it to ""), each
runtime's own AWS client calls `lambda.us-east-1.amazonaws.com` over HTTPS:
the instance's resolver answers AWS's names with Strato's in-namespace
listener, whose certificates Strato's sandbox CA signs and every runtime's
trust store holds. Strong (namespace) mode only.

One server for the module; every function is small and the answers are
compared with what the test's own client gets at the endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import boto3
import pytest
import yaml  # PyYAML, a dependency of the pinned AWS CLI v1

from conftest import HERE, REGION, RUNTIMES_DIR, ROLE, _start, _stop, make_zip, wait_until

FIXTURES = HERE / "fixtures"
# Builds kept between runs (Go's and Maven's own caches make rebuilds quick).
CACHE = HERE / ".cache"

PYTHON_FN = r'''
import os, socket, ssl, struct
import boto3


def ask(name, over_tcp):
    """One A question to the instance's resolver (resolv.conf's only line), over
    TCP with RFC 1035's length prefix or over UDP: (rcode, TC bit, sorted addresses)."""
    labels = b"".join(bytes([len(l)]) + l.encode() for l in name.split("."))
    query = struct.pack(">HHHHHH", 0x5a5a, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", 1, 1)
    if over_tcp:
        with socket.create_connection(("127.0.0.1", 53), timeout=10) as s:
            s.sendall(struct.pack(">H", len(query)) + query)
            data = b""
            while len(data) < 2 or len(data) < 2 + struct.unpack(">H", data[:2])[0]:
                chunk = s.recv(4096)
                if not chunk:
                    raise OSError("closed")
                data += chunk
            reply = data[2:]
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            s.sendto(query, ("127.0.0.1", 53))
            reply = s.recv(4096)
    assert reply[:2] == query[:2]
    answers, at = struct.unpack(">H", reply[6:8])[0], len(query)
    addresses = []
    for _ in range(answers):
        while reply[at] and reply[at] < 0xc0:
            at += reply[at] + 1
        at += 2 if reply[at] >= 0xc0 else 1
        rtype, _, _, rdlen = struct.unpack(">HHIH", reply[at:at + 10])
        if rtype == 1:
            addresses.append(socket.inet_ntoa(reply[at + 10:at + 14]))
        at += 10 + rdlen
    return [reply[3] & 0x0f, bool(reply[2] & 0x02), sorted(addresses)]


def handler(event, context):
    if "dns" in event:
        return {n: {"udp": ask(n, False), "tcp": ask(n, True)} for n in event["dns"]}
    out = {"endpoint_env": os.environ.get("AWS_ENDPOINT_URL")}
    lam = boto3.client("lambda")
    out["endpoint"] = lam.meta.endpoint_url
    out["settings"] = lam.get_account_settings()["AccountLimit"]
    out["resolved"] = {n: socket.gethostbyname(n) for n in event["names"]}
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="by-hostname")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    out["queue_url"] = url
    out["message"] = sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"]
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="by-hostname")
    s3.put_object(Bucket="by-hostname", Key="k", Body=b"stored by name")
    out["object"] = s3.get_object(Bucket="by-hostname", Key="k")["Body"].read().decode()
    out["key_visible"] = [p for p in event["private"] if os.path.exists(p)]
    # A name outside AWS's gets no certificate from Strato's CA.
    try:
        raw = socket.create_connection(("127.0.0.1", 443), timeout=5)
        with ssl.create_default_context().wrap_socket(raw, server_hostname="example.com"):
            out["other_name"] = "served"
    except (ssl.SSLError, OSError) as e:
        out["other_name"] = "refused: " + type(e).__name__
    return out
'''

NODE_FN = r'''
const { LambdaClient, GetAccountSettingsCommand } = require("@aws-sdk/client-lambda");
exports.handler = async () => {
  const client = new LambdaClient({});
  const settings = await client.send(new GetAccountSettingsCommand({}));
  const endpoint = await client.config.endpoint?.();
  return {
    endpointEnv: process.env.AWS_ENDPOINT_URL ?? null,
    host: endpoint ? endpoint.hostname : null,
    settings: settings.AccountLimit,
  };
};
'''

# A provided runtime in shell: its one tool is curl, signing with the
# function's credentials (`--aws-sigv4`).
CURL_BOOTSTRAP = r'''#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation"
while true; do
  curl -sS -D /tmp/headers -o /tmp/event "$API/next"
  ID=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' /tmp/headers | tr -d '\r' | cut -d' ' -f2)
  curl -sS --fail-with-body --aws-sigv4 "aws:amz:${AWS_REGION}:lambda" \
    --user "${AWS_ACCESS_KEY_ID}:${AWS_SECRET_ACCESS_KEY}" \
    -H "x-amz-security-token: ${AWS_SESSION_TOKEN}" \
    -o /tmp/answer https://lambda.${AWS_REGION}.amazonaws.com/2016-08-19/account-settings/
  curl -sS -X POST --data-binary @/tmp/answer "$API/$ID/response" > /dev/null
done
'''


def executable_zip(files: dict[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            zf.writestr(info, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(strato_binary):
    root = Path(tempfile.mkdtemp(prefix="strato-compat-hostnames-"))
    # AWS host names need isolated instances: never a silent fallback.
    running = _start(strato_binary, root, ("--sandbox", "strong"))
    try:
        wait_until(lambda: (RUNTIMES_DIR / "bootstrap" / "boto3").is_dir()
                   and (RUNTIMES_DIR / "bootstrap" / "node_modules" / "@aws-sdk" / "client-lambda").is_dir(),
                   "the AWS SDKs installed in the runtime directory", 600, interval=1)
        yield running
    finally:
        _stop(running.proc)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def client(server):
    return server.lambda_client()


def deploy(client, name: str, runtime: str, handler: str, code: bytes, memory: int = 256) -> None:
    client.create_function(
        FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
        Code={"ZipFile": code}, MemorySize=memory, Timeout=60,
        # "" opts out of AWS_ENDPOINT_URL: the SDKs use AWS's host names.
        Environment={"Variables": {"AWS_ENDPOINT_URL": ""}},
    )
    client.get_waiter("function_active_v2").wait(FunctionName=name)


def invoke(client, name: str, event: dict | None = None) -> dict:
    answer = client.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(),
                           LogType="Tail")
    payload = json.loads(answer["Payload"].read())
    log = base64.b64decode(answer.get("LogResult", "")).decode(errors="replace")
    assert "FunctionError" not in answer, (payload, log)
    return payload


@pytest.fixture(scope="module")
def python_fn(client) -> str:
    deploy(client, "by-name-py", "python3.12", "index.handler", make_zip({"index.py": PYTHON_FN}))
    return "by-name-py"


def test_python_boto3_reaches_lambda_sqs_and_s3_by_aws_hostnames(server, client, python_fn):
    names = ["lambda.us-east-1.amazonaws.com", "my-bucket.s3.us-east-1.amazonaws.com",
             "abc123.execute-api.us-east-1.amazonaws.com", "u1.lambda-url.us-east-1.on.aws",
             "iam.amazonaws.com"]
    private = [str(server.data_dir / "sandbox-ca" / "ca-key.pem"), str(server.data_dir)]
    out = invoke(client, python_fn, {"names": names, "private": private})
    assert out["endpoint_env"] is None
    assert out["endpoint"] == "https://lambda.us-east-1.amazonaws.com"
    assert out["settings"] == client.get_account_settings()["AccountLimit"]
    assert out["resolved"] == {n: "127.0.0.1" for n in names}
    assert out["queue_url"].startswith("https://sqs.us-east-1.amazonaws.com/"), out["queue_url"]
    assert out["message"] == "hello"
    assert out["object"] == "stored by name"
    assert out["key_visible"] == []
    assert out["other_name"].startswith("refused"), out["other_name"]


def test_the_instance_resolver_answers_over_tcp_as_over_udp(client, python_fn):
    """DNS over TCP (RFC 7766): AWS's names are answered by the instance's resolver
    itself, other names relayed to the host's name servers (over TCP, or over UDP
    to servers that take no TCP), the same as over UDP (`.invalid` never exists,
    RFC 6761: NXDOMAIN from any name server, SERVFAIL with none reachable; the
    resolver itself never answers it)."""
    other = "strato-check.invalid"
    out = invoke(client, python_fn, {"dns": ["lambda.us-east-1.amazonaws.com", other]})
    aws = out["lambda.us-east-1.amazonaws.com"]
    assert aws["tcp"] == [0, False, ["127.0.0.1"]]
    assert aws["udp"] == aws["tcp"]
    assert out[other]["tcp"] == out[other]["udp"], out[other]
    assert out[other]["tcp"][1] is False


def test_node_sdk_v3_reaches_lambda_by_its_hostname(server, client):
    deploy(client, "by-name-node", "nodejs20.x", "index.handler", make_zip({"index.js": NODE_FN}))
    out = invoke(client, "by-name-node")
    assert out["endpointEnv"] is None
    assert out["settings"] == client.get_account_settings()["AccountLimit"]


def test_curl_in_a_provided_runtime_reaches_lambda_over_https(server, client):
    deploy(client, "by-name-curl", "provided.al2023", "unused",
           executable_zip({"bootstrap": CURL_BOOTSTRAP}))
    out = invoke(client, "by-name-curl")
    assert out["AccountLimit"] == client.get_account_settings()["AccountLimit"]


def go_function_zip() -> bytes:
    """fixtures/go-hostnames (aws-sdk-go v1 and v2), built as AWS documents:
    a static linux binary named bootstrap."""
    out = CACHE / "go-hostnames" / "bootstrap"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GOFLAGS": "-mod=mod"}
    subprocess.run(["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(out), "."],
                   cwd=FIXTURES / "go-hostnames", env=env, check=True)
    return executable_zip({"bootstrap": out.read_bytes()})


def rust_function_zip(strato_binary: Path) -> bytes:
    """fixtures/rust-hostnames (lambda_runtime and the AWS SDK for Rust), a
    member of the workspace: built beside the strato binary under test, with
    the SDK crates the workspace compiles anyway, by `cargo build --workspace`
    (or scripts/test's `cargo build --workspace --all-targets`). Packaged as
    AWS documents for provided.al2023: the binary, stripped, as `bootstrap`."""
    built = strato_binary.parent / "rust-hostnames"
    if not built.is_file():
        pytest.fail(f"no {built}: build the workspace (cargo build --workspace) first")
    out = CACHE / "rust-hostnames" / "bootstrap"
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["strip", "-o", str(out), str(built)], check=True)
    return executable_zip({"bootstrap": out.read_bytes()})


def java_function_zip() -> bytes:
    """fixtures/java-hostnames (AWS SDK for Java v2 and v1), built by Maven:
    classes at the zip root, dependencies as lib/*.jar."""
    build = CACHE / "java-hostnames"
    shutil.copytree(FIXTURES / "java-hostnames", build, dirs_exist_ok=True)
    subprocess.run(["mvn", "-q", "-B", "package", "-DskipTests"], cwd=build, check=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        classes = build / "target" / "classes"
        for path in sorted(classes.rglob("*.class")):
            zf.write(path, str(path.relative_to(classes)))
        for jar in sorted((build / "target" / "lib").glob("*.jar")):
            zf.write(jar, f"lib/{jar.name}")
    return buf.getvalue()


@pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain")
def test_go_sdk_v1_and_v2_reach_lambda_by_its_hostname(server, client):
    deploy(client, "by-name-go", "provided.al2023", "bootstrap", go_function_zip())
    out = invoke(client, "by-name-go")
    expected = client.get_account_settings()["AccountLimit"]
    assert out["v1"] == expected
    assert out["v2"] == expected


def test_rust_sdk_reaches_lambda_by_its_hostname(server, client):
    deploy(client, "by-name-rust", "provided.al2023", "bootstrap",
           rust_function_zip(server.binary))
    out = invoke(client, "by-name-rust")
    expected = client.get_account_settings()
    assert out["endpointEnv"] is None
    # The SDK's own endpoint resolution, over HTTPS, trusting the CA through
    # the platform roots its default client loads.
    assert out["requests"] == ["https://lambda.us-east-1.amazonaws.com/2016-08-19/account-settings"]
    assert out["AccountLimit"] == expected["AccountLimit"]
    assert out["AccountUsage"] == expected["AccountUsage"]


@pytest.mark.skipif(shutil.which("mvn") is None, reason="no Maven")
def test_java_sdk_v2_and_v1_reach_lambda_by_its_hostname(server, client):
    deploy(client, "by-name-java", "java17", "example.Handler::handleRequest", java_function_zip(),
           memory=1024)
    out = invoke(client, "by-name-java")
    expected = client.get_account_settings()["AccountLimit"]
    assert out["v2"] == expected
    assert out["v1"] == expected


def test_strato_ca_prints_the_certificate_instances_trust(server):
    pem = subprocess.run([str(server.binary), "ca", "--data-dir", str(server.data_dir)],
                         capture_output=True, text=True, check=True).stdout
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    assert pem == (server.data_dir / "sandbox-ca" / "ca.pem").read_text()
    bundle = (server.data_dir / "sandbox-ca" / "bundle.pem").read_text()
    assert bundle.endswith(pem)
    assert (server.data_dir / "sandbox-ca" / "ca-key.pem").stat().st_mode & 0o777 == 0o600


# AWS's own sample apps, vendored unchanged (fixtures/aws-samples/NOTICE).
SAMPLES = FIXTURES / "aws-samples"


def sample_build(name: str, build: list[str], env: dict[str, str] | None = None,
                 subdir: str = ".") -> Path:
    """A copy of fixtures/aws-samples/NAME built by `build` (run in SUBDIR of
    the copy), kept in .cache under a key of the sample's content and the
    build's command: built once, then reused until either changes."""
    source = SAMPLES / name
    digest = hashlib.sha256(json.dumps([build, env, subdir]).encode())
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(source)}\0{path.stat().st_mode & 0o111:o}\0".encode())
        digest.update(path.read_bytes())
    built = CACHE / "aws-samples" / f"{name}-{digest.hexdigest()[:16]}"
    if (built / ".built").is_file():
        return built
    for stale in built.parent.glob(f"{name}-*"):
        shutil.rmtree(stale)
    shutil.copytree(source, built)
    subprocess.run(build, cwd=built / subdir, env={**os.environ, **(env or {})}, check=True)
    (built / ".built").touch()
    return built


def sample_template(template: Path) -> dict:
    """The resources of a sample's SAM template (its `!Ref`s read as None)."""
    loader = type("CfnLoader", (yaml.SafeLoader,), {})
    loader.add_multi_constructor("!", lambda _loader, _suffix, _node: None)
    return yaml.load(template.read_text(), Loader=loader)["Resources"]


def create_function_with_cli(server, name: str, function: dict, package: Path,
                             *extra: str) -> None:
    """`aws lambda create-function` with the runtime, handler, memory and tracing
    the sample's template gives its function; AWS_ENDPOINT_URL opted out as
    above. Timeout 60 as for the functions above (the templates' 5 and 10
    seconds are for AWS's hardware, not a shared CI machine)."""
    args = ["lambda", "create-function", "--function-name", name,
            "--runtime", function["Runtime"], "--handler", function["Handler"], "--role", ROLE,
            "--zip-file", f"fileb://{package}", "--timeout", "60",
            "--tracing-config", f"Mode={function['Tracing']}",
            "--environment", json.dumps({"Variables": {"AWS_ENDPOINT_URL": ""}}), *extra]
    if "MemorySize" in function:
        args += ["--memory-size", str(function["MemorySize"])]
    server.aws(*args).check()
    # In process rather than `aws lambda wait` (one more CLI start, 5 s polls).
    server.lambda_client().get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def invoke_with_cli(server, name: str, event: Path) -> tuple[object, str]:
    """`aws lambda invoke --payload fileb://event.json`, as the samples' own
    invoke scripts do: (the answer, the log tail)."""
    out = server.home / f"{name}-out.json"
    meta = server.aws("lambda", "invoke", "--function-name", name, "--payload",
                      f"fileb://{event}", "--log-type", "Tail", str(out)).check().json()
    log = base64.b64decode(meta.get("LogResult", "")).decode(errors="replace")
    assert meta["StatusCode"] == 200 and "FunctionError" not in meta, (meta, out.read_text(), log)
    return json.loads(out.read_text()), log


@pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain")
def test_aws_blank_go_sample_answers_its_event(server, client):
    """blank-go (aws-lambda-go, aws-sdk-go v1), built as its 2-deploy.sh builds
    it and packaged as that script's `aws cloudformation package` packages the
    template's CodeUri (the function/ folder, `bootstrap` at its root). Its SDK
    calls Lambda's GetAccountSettings at lambda.us-east-1.amazonaws.com and it
    answers with AccountUsage, logging the event, region and environment."""
    built = sample_build("blank-go", ["go", "build", "-tags", "lambda.norpc", "-o", "bootstrap",
                                      "main.go"], env={"GOOS": "linux"}, subdir="function")
    function = sample_template(built / "template.yml")["function"]["Properties"]
    code = built / function["CodeUri"]
    package = built / "function.zip"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(code.iterdir()):
            zf.write(path, path.name)
    create_function_with_cli(server, "blank-go", function, package)
    answer, _ = invoke_with_cli(server, "blank-go", built / "event.json")
    assert json.loads(answer) == client.get_account_settings()["AccountUsage"]
    logs = boto3.client("logs", endpoint_url=server.endpoint, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")
    logged = [e["message"].rstrip("\n")
              for e in logs.filter_log_events(logGroupName="/aws/lambda/blank-go")["events"]]
    text = "\n".join(logged)
    assert '"body": "Hello from SQS!"' in text, text
    assert any(m.endswith(" REGION: us-east-1") for m in logged), text
    assert any(m.endswith(" FUNCTION NAME: blank-go") for m in logged), text
    # Its dump of the environment: the region as AWS sets it, no endpoint (opted out).
    assert any(m.endswith(" AWS_REGION=us-east-1") for m in logged), text
    assert not any(" AWS_ENDPOINT_URL=" in m for m in logged), text


@pytest.mark.skipif(shutil.which("mvn") is None, reason="no Maven")
def test_aws_blank_java_sample_answers_its_event(server, client):
    """blank-java (AWS SDK for Java v2 2.10, which predates AWS_ENDPOINT_URL),
    built by `mvn package` with its own pom.xml and deployed as its
    template-mvn.yml says: the shaded jar as the function, the assembly's zip
    (java/lib/*.jar) as its layer. The layer is needed: the shade filter drops
    META-INF/services, so the jar alone finds no HTTP client for the SDK (on
    AWS too). Its own unit test calls AWS itself, so the build skips it."""
    built = sample_build("blank-java", ["mvn", "-q", "-B", "package", "-DskipTests"])
    resources = sample_template(built / "template-mvn.yml")
    function, libs = resources["function"]["Properties"], resources["libs"]["Properties"]
    layer_arn = server.aws(
        "lambda", "publish-layer-version", "--layer-name", libs["LayerName"],
        "--zip-file", f"fileb://{built / libs['ContentUri']}",
        "--compatible-runtimes", *libs["CompatibleRuntimes"]).check().json()["LayerVersionArn"]
    create_function_with_cli(server, "blank-java", function, built / function["CodeUri"],
                             "--layers", layer_arn)
    answer, log = invoke_with_cli(server, "blank-java", built / "event.json")
    total = client.get_account_settings()["AccountLimit"]["TotalCodeSize"]
    assert answer == f"Total code size for your account is {total} bytes"
    assert "Handler invoked" in log
