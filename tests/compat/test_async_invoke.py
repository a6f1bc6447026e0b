"""Asynchronous invocation with boto3: the durable queue, AWS's retry policy,
event age, destinations, metrics, and nothing lost across `kill -9`.

The servers here run with `--time-scale 60`, so AWS's one- and two-minute
retry delays pass in one and two seconds, and a 60 s maximum event age in
one. Only readiness is waited for (with deadlines); nothing asserts on time.
"""

from __future__ import annotations

import json
import signal
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, _start, _stop, make_zip, wait_until

FLAKY = """
exports.handler = async (event, context) => {
  console.log(`ATTEMPT ${event.id} ${context.awsRequestId}`);
  if (event.fail) { throw new Error(`boom ${event.id}`); }
  return { done: event.id };
};
"""

SINK = """
exports.handler = async (event) => {
  console.log(`RECORD ${JSON.stringify(event)}`);
  return "recorded";
};
"""

SCALED = pytest.mark.strato_args("--time-scale", "60")


def arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:{name}"


def deploy(client, name: str, code: str) -> None:
    client.create_function(
        FunctionName=name, Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
        Code={"ZipFile": make_zip({"index.js": code})}, MemorySize=128, Timeout=10,
    )
    client.get_waiter("function_active_v2").wait(FunctionName=name)


def logs_client(strato):
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION,
    ).client("logs", endpoint_url=strato.endpoint, config=Config(retries={"max_attempts": 0}))


def lines(strato, function: str, prefix: str) -> list[str]:
    """The log lines of `function` that contain `prefix`, oldest first."""
    logs = logs_client(strato)
    try:
        events = logs.filter_log_events(
            logGroupName=f"/aws/lambda/{function}", filterPattern=f'"{prefix}"')["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    out = []
    for e in events:
        message = e["message"]
        at = message.find(prefix)
        if at >= 0:
            out.append(message[at:].strip())
    return out


def records(strato, sink: str) -> list[dict]:
    return [json.loads(line[len("RECORD "):]) for line in lines(strato, sink, "RECORD ")]


def invoke_event(client, name: str, payload: dict, **kwargs) -> str:
    answer = client.invoke(FunctionName=name, InvocationType="Event",
                           Payload=json.dumps(payload).encode(), **kwargs)
    assert answer["StatusCode"] == 202
    return answer["ResponseMetadata"]["RequestId"]


@SCALED
def test_function_errors_are_retried_twice_then_the_record_goes_to_on_failure(strato):
    client = strato.lambda_client()
    deploy(client, "flaky", FLAKY)
    deploy(client, "sink", SINK)
    client.put_function_event_invoke_config(
        FunctionName="flaky", MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": arn("sink")}})

    request_id = invoke_event(client, "flaky", {"id": "e1", "fail": True})

    record = wait_until(lambda: records(strato, "sink"), "the OnFailure record", 90)[0]
    attempts = lines(strato, "flaky", "ATTEMPT e1")
    # Three tries, all under the request id the 202 answered with.
    assert attempts == [f"ATTEMPT e1 {request_id}"] * 3, attempts
    assert record["version"] == "1.0"
    assert record["timestamp"].endswith("Z")
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"{arn('flaky')}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"id": "e1", "fail": True}
    assert record["responseContext"] == {
        "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorType"] == "Error"
    assert record["responsePayload"]["errorMessage"] == "boom e1"


@SCALED
def test_zero_retries_means_one_try(strato):
    client = strato.lambda_client()
    deploy(client, "once", FLAKY)
    deploy(client, "sink0", SINK)
    client.put_function_event_invoke_config(
        FunctionName="once", MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn("sink0")}})
    request_id = invoke_event(client, "once", {"id": "z", "fail": True})
    record = wait_until(lambda: records(strato, "sink0"), "the OnFailure record", 60)[0]
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestContext"]["requestId"] == request_id
    assert lines(strato, "once", "ATTEMPT z") == [f"ATTEMPT z {request_id}"]


@SCALED
def test_success_record_goes_to_on_success_of_an_alias(strato):
    client = strato.lambda_client()
    deploy(client, "good", FLAKY)
    deploy(client, "sinkok", SINK)
    version = client.publish_version(FunctionName="good")["Version"]
    client.create_alias(FunctionName="good", Name="live", FunctionVersion=version)
    client.put_function_event_invoke_config(
        FunctionName="good", Qualifier="live",
        DestinationConfig={"OnSuccess": {"Destination": arn("sinkok")}})
    request_id = invoke_event(client, "good", {"id": "ok"}, Qualifier="live")
    record = wait_until(lambda: records(strato, "sinkok"), "the OnSuccess record", 60)[0]
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"{arn('good')}:live",
        "condition": "Success",
        "approximateInvokeCount": 1,
    }
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": version}
    assert record["responsePayload"] == {"done": "ok"}


@SCALED
def test_an_event_throttled_past_its_maximum_age_is_dropped_with_event_age_exceeded(strato):
    client = strato.lambda_client()
    deploy(client, "blocked", FLAKY)
    deploy(client, "sinkage", SINK)
    client.put_function_concurrency(FunctionName="blocked", ReservedConcurrentExecutions=0)
    client.put_function_event_invoke_config(
        FunctionName="blocked", MaximumEventAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": arn("sinkage")}})
    request_id = invoke_event(client, "blocked", {"id": "old"})
    record = wait_until(lambda: records(strato, "sinkage"), "the EventAgeExceeded record", 60)[0]
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"{arn('blocked')}:$LATEST",
        "condition": "EventAgeExceeded",
        "approximateInvokeCount": 0,
    }
    assert "responseContext" not in record
    assert lines(strato, "blocked", "ATTEMPT") == []

    def metrics():
        with urllib.request.urlopen(f"{strato.endpoint}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def counted():
        text = metrics()
        return ('strato_lambda_async_events_dropped_total{account="000000000000",'
                'region="us-east-1",function="blocked"} 1' in text) and text
    text = wait_until(counted, "AsyncEventsDropped in /metrics")
    assert ('strato_lambda_async_events_received_total{account="000000000000",'
            'region="us-east-1",function="blocked"} 1') in text

    # The same counts through CloudWatch's API, under AWS's metric names.
    import datetime

    import boto3
    from botocore.config import Config

    cloudwatch = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION,
    ).client("cloudwatch", endpoint_url=strato.endpoint, config=Config(retries={"max_attempts": 0}))
    now = datetime.datetime.now(datetime.timezone.utc)

    def total(metric):
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName=metric,
            Dimensions=[{"Name": "FunctionName", "Value": "blocked"}],
            StartTime=now - datetime.timedelta(minutes=10), EndTime=now + datetime.timedelta(minutes=2),
            Period=60, Statistics=["Sum"])["Datapoints"]
        return sum(p["Sum"] for p in points)

    wait_until(lambda: total("AsyncEventsDropped") == 1, "AsyncEventsDropped in CloudWatch")
    assert total("AsyncEventsReceived") == 1


def test_an_event_payload_over_one_megabyte_is_refused(strato):
    client = strato.lambda_client()
    deploy(client, "big", FLAKY)
    payload = json.dumps({"pad": "x" * (1024 * 1024)}).encode()
    with pytest.raises(ClientError) as raised:
        client.invoke(FunctionName="big", InvocationType="Event", Payload=payload)
    err = raised.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert err["Error"]["Code"] == "RequestEntityTooLargeException"
    assert err["Error"]["Message"] == (
        f"{len(payload)} byte payload is too large for the Event invocation type "
        f"(limit 1048576 bytes)")


def test_accepted_events_survive_kill_9_of_the_server(strato, strato_binary):
    """Events accepted while the function may not run are all run after the
    server is killed with SIGKILL and started again on the same data."""
    client = strato.lambda_client()
    deploy(client, "durable", FLAKY)
    client.put_function_concurrency(FunctionName="durable", ReservedConcurrentExecutions=0)
    ids = [invoke_event(client, "durable", {"id": f"d{i}"}) for i in range(20)]
    root = strato.data_dir.parent
    strato.proc.send_signal(signal.SIGKILL)
    strato.proc.wait()

    restarted = _start(strato_binary, root)
    try:
        client = restarted.lambda_client()
        client.delete_function_concurrency(FunctionName="durable")
        done = wait_until(
            lambda: len(set(lines(restarted, "durable", "ATTEMPT"))) >= 20 and
            lines(restarted, "durable", "ATTEMPT"),
            "every accepted event to run after the restart", 120)
        ran = {line.split()[2] for line in done}
        assert ran == set(ids)
    finally:
        _stop(restarted.proc)
