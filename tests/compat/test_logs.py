"""CloudWatch Logs: function logs read and filtered with the AWS CLI and boto3.

`aws logs tail` is an AWS CLI v2 command (the pinned CLI v1 has no `tail`):
its tests run Debian's AWS CLI v2 (`/usr/bin/aws`, installed by
scripts/setup); `strato logs` does the same for users without any CLI.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from conftest import REGION, ROLE, make_zip, wait_until

HANDLER = """
exports.handler = async (event) => {
  process.stdout.write(JSON.stringify({level: event.level || "INFO", n: event.n || 0}) + "\\n");
  process.stdout.write((event.level === "ERROR" ? "plain line ERROR disk full" : "plain line ok") + "\\n");
  if (event.fail) { throw new Error("boom"); }
  return {ok: true};
};
"""


def logs_client(strato, key="test", secret="test"):
    return boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION
    ).client("logs", endpoint_url=strato.endpoint, config=Config(retries={"max_attempts": 0}))


def deploy(strato, name):
    client = strato.lambda_client()
    client.create_function(
        FunctionName=name, Runtime="nodejs20.x", Handler="index.handler", Role=ROLE,
        Code={"ZipFile": make_zip({"index.js": HANDLER})},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return client


def invoke(client, name, event):
    """Invokes and returns the request id (from the REPORT line of the tail)."""
    answer = client.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
    tail = base64.b64decode(answer["LogResult"]).decode()
    return re.search(r"REPORT RequestId: (\S+)", tail).group(1)


def messages(result):
    return [e["message"] for e in result["events"]]


def cli_filter(strato, group, pattern):
    args = ["logs", "filter-log-events", "--log-group-name", group]
    if pattern is not None:
        args += ["--filter-pattern", pattern]
    return messages(strato.aws(*args).check().json())


def test_function_logs_appear_in_their_group_and_stream(strato):
    client = deploy(strato, "logged")
    ids = [invoke(client, "logged", {"n": i}) for i in range(3)]

    groups = strato.aws("logs", "describe-log-groups").check().json()["logGroups"]
    group = next(g for g in groups if g["logGroupName"] == "/aws/lambda/logged")
    assert group["logGroupArn"] == "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/logged"
    assert group["arn"] == group["logGroupArn"] + ":*"
    assert group["storedBytes"] > 0

    streams = strato.aws("logs", "describe-log-streams", "--log-group-name",
                         "/aws/lambda/logged").check().json()["logStreams"]
    assert len(streams) == 1, streams
    stream = streams[0]["logStreamName"]
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", stream), stream

    events = messages(strato.aws("logs", "get-log-events", "--log-group-name", "/aws/lambda/logged",
                                 "--log-stream-name", stream, "--start-from-head").check().json())
    assert events[0].startswith("INIT_START Runtime Version: ")
    for i, request_id in enumerate(ids):
        start = events.index(f"START RequestId: {request_id} Version: $LATEST")
        assert events[start + 1] == json.dumps({"level": "INFO", "n": i}, separators=(",", ":"))
        assert events[start + 2] == "plain line ok"
        assert events[start + 3] == f"END RequestId: {request_id}"
        assert events[start + 4].startswith(f"REPORT RequestId: {request_id}\tDuration: ")


def test_get_log_events_pages_forward_and_backward(strato):
    client = deploy(strato, "paged")
    for i in range(4):
        invoke(client, "paged", {"n": i})
    logs = logs_client(strato)
    group = "/aws/lambda/paged"
    stream = logs.describe_log_streams(logGroupName=group)["logStreams"][0]["logStreamName"]
    everything = messages(logs.get_log_events(logGroupName=group, logStreamName=stream,
                                              startFromHead=True))
    assert len(everything) == 1 + 4 * 5

    forward, token = [], None
    while True:
        args = dict(logGroupName=group, logStreamName=stream, limit=3, startFromHead=True)
        if token:
            args["nextToken"] = token
        page = logs.get_log_events(**args)
        forward += messages(page)
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert forward == everything

    # Without a token the newest events come first; backward tokens go further back.
    page = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=3)
    backward = messages(page)
    assert backward == everything[-3:]
    token = page["nextBackwardToken"]
    while True:
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=3,
                                   nextToken=token)
        if not page["events"]:
            break
        backward = messages(page) + backward
        token = page["nextBackwardToken"]
    assert backward == everything


def test_filter_patterns(strato):
    client = deploy(strato, "filtered")
    invoke(client, "filtered", {"n": 1})
    invoke(client, "filtered", {"n": 2, "level": "ERROR"})
    invoke(client, "filtered", {"n": 3, "level": "ERROR", "fail": True})
    group = "/aws/lambda/filtered"

    assert cli_filter(strato, group, "plain ERROR") == ["plain line ERROR disk full"] * 2
    assert cli_filter(strato, group, '"disk full"') == ["plain line ERROR disk full"] * 2
    assert cli_filter(strato, group, "plain -ERROR") == ["plain line ok"]
    json_lines = cli_filter(strato, group, '{ $.level = "ERROR" && $.n > 2 }')
    assert json_lines == ['{"level":"ERROR","n":3}']
    assert cli_filter(strato, group, "{ $.n = 1 || $.n = 2 }") == [
        '{"level":"INFO","n":1}', '{"level":"ERROR","n":2}']
    alternatives = cli_filter(strato, group, "?boom ?disk")
    assert alternatives[:2] == ["plain line ERROR disk full"] * 2
    assert any("boom" in line for line in alternatives[2:]), alternatives
    everything = cli_filter(strato, group, None)
    assert len([m for m in everything if m.startswith("REPORT RequestId: ")]) == 3

    # What `aws logs tail --since 10m --filter-pattern` asks for.
    since = int((time.time() - 600) * 1000)
    tail = strato.aws("logs", "filter-log-events", "--log-group-name", group,
                      "--start-time", str(since), "--filter-pattern", "REPORT").check().json()
    assert len(tail["events"]) == 3
    assert all(e["logStreamName"].startswith(time.strftime("%Y/%m/%d/", time.gmtime(e["timestamp"] / 1000)))
               for e in tail["events"])

    # `strato logs` for users without the CLI.
    proc = subprocess.run(
        [str(strato.binary), "logs", "filtered", "--since", "10m", "--filter-pattern", "disk full",
         "--data-dir", str(strato.data_dir)],
        capture_output=True, text=True, env=strato.env, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and all(l.endswith(" plain line ERROR disk full") for l in lines), lines


def test_invalid_filter_pattern_is_rejected(strato):
    strato.aws("logs", "create-log-group", "--log-group-name", "/app/x").check()
    result = strato.aws("logs", "filter-log-events", "--log-group-name", "/app/x",
                        "--filter-pattern", "{ $.a = ")
    assert result.returncode != 0
    assert "InvalidParameterException" in result.stderr


def test_retention_deletes_old_events(strato):
    logs = logs_client(strato)
    logs.create_log_group(logGroupName="/app/retained")
    logs.create_log_stream(logGroupName="/app/retained", logStreamName="s")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName="/app/retained", logStreamName="s", logEvents=[
        {"timestamp": now - 3 * 86_400_000, "message": "three days old"},
        {"timestamp": now, "message": "fresh"},
    ])
    read = lambda: messages(logs.get_log_events(logGroupName="/app/retained", logStreamName="s",
                                                startFromHead=True))
    assert read() == ["three days old", "fresh"]

    strato.aws("logs", "put-retention-policy", "--log-group-name", "/app/retained",
               "--retention-in-days", "1").check()
    group = logs.describe_log_groups(logGroupNamePrefix="/app/retained")["logGroups"][0]
    assert group["retentionInDays"] == 1
    wait_until(lambda: read() == ["fresh"], "the sweeper to delete the old event")

    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        logs.put_retention_policy(logGroupName="/app/retained", retentionInDays=2)
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterException"

    logs.delete_retention_policy(logGroupName="/app/retained")
    assert "retentionInDays" not in logs.describe_log_groups(
        logGroupNamePrefix="/app/retained")["logGroups"][0]


def test_log_group_errors_and_deletion(strato):
    logs = logs_client(strato)
    logs.create_log_group(logGroupName="/app/one")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        logs.create_log_group(logGroupName="/app/one")
    err = excinfo.value.response
    assert err["Error"]["Code"] == "ResourceAlreadyExistsException"
    assert err["Error"]["Message"] == "The specified log group already exists"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400

    logs.delete_log_group(logGroupName="/app/one")
    for call in (lambda: logs.delete_log_group(logGroupName="/app/one"),
                 lambda: logs.describe_log_streams(logGroupName="/app/one"),
                 lambda: logs.get_log_events(logGroupName="/app/one", logStreamName="x")):
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            call()
        assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert excinfo.value.response["Error"]["Message"] == "The specified log group does not exist."


def test_log_groups_belong_to_their_account(strato):
    client = deploy(strato, "private")
    invoke(client, "private", {})
    other = strato.create_account()
    theirs = logs_client(strato, other["access_key_id"], other["secret_access_key"])
    assert theirs.describe_log_groups()["logGroups"] == []
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        theirs.filter_log_events(logGroupName="/aws/lambda/private")
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"


# ---------------------------------------------------------------------------
# `aws logs tail` (AWS CLI v2)

AWS_CLI_V2 = "/usr/bin/aws"


def aws_v2(strato, *args, timeout=60):
    return subprocess.run([AWS_CLI_V2, *args, "--endpoint-url", strato.endpoint],
                          env=strato.env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def cli_v2_available():
    try:
        out = subprocess.run([AWS_CLI_V2, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.startswith("aws-cli/2.")


requires_cli_v2 = pytest.mark.skipif(
    not cli_v2_available(), reason="AWS CLI v2 (/usr/bin/aws) is installed by scripts/setup")


@requires_cli_v2
def test_aws_logs_tail_prints_the_functions_lines_and_filters(strato):
    client = deploy(strato, "tailed")
    request_id = invoke(client, "tailed", {"level": "ERROR", "n": 7})
    group = "/aws/lambda/tailed"

    def tailed():
        out = aws_v2(strato, "logs", "tail", group, "--since", "10m")
        assert out.returncode == 0, out.stderr
        return out.stdout if f"REPORT RequestId: {request_id}" in out.stdout else None

    text = wait_until(tailed, "aws logs tail shows the invocation")
    assert "plain line ERROR disk full" in text
    assert f"START RequestId: {request_id}" in text
    assert "[$LATEST]" in text  # the stream name precedes each line

    filtered = aws_v2(strato, "logs", "tail", group, "--since", "10m",
                      "--filter-pattern", '"disk full"', "--format", "short")
    assert filtered.returncode == 0, filtered.stderr
    lines = [line for line in filtered.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].endswith("plain line ERROR disk full"), filtered.stdout


@requires_cli_v2
def test_aws_logs_tail_follow_prints_new_lines_as_they_come(strato):
    client = deploy(strato, "followed")
    invoke(client, "followed", {"n": 1})
    follower = subprocess.Popen(
        [AWS_CLI_V2, "logs", "tail", "/aws/lambda/followed", "--follow", "--since", "10m",
         "--endpoint-url", strato.endpoint],
        env=strato.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL)
    try:
        # A line written after the follower started reaches it.
        later = invoke(client, "followed", {"level": "WARN", "n": 2})
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = follower.stdout.readline()
            if not line:
                break
            seen.append(line)
            if f"REPORT RequestId: {later}" in line:
                break
        assert any(f"REPORT RequestId: {later}" in line for line in seen), "".join(seen)
    finally:
        follower.kill()
        follower.wait(timeout=10)

