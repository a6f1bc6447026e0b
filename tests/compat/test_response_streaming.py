"""InvokeWithResponseStream read by boto3, and function URLs in RESPONSE_STREAM mode.

boto3 decodes AWS's event-stream framing itself (botocore's eventstream
parser checks every length and both CRCs), so a wrongly framed answer fails
here. Whether chunks arrive while the function still runs is shown by order,
never by a duration: the function stamps (with the host's clock, which its
sandbox shares) when it writes its second chunk, the client stamps when the
first one arrived, and the first must come before the second was written.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
import urllib3
from botocore.exceptions import ClientError

from conftest import ROLE, make_zip

NODE_STREAMING = """
export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  if (event.mode === 'early-throw') throw new Error('before any byte');
  responseStream.setContentType('text/plain');
  responseStream.write('first;');
  await new Promise((r) => setTimeout(r, event.pause_ms || 0));
  if (event.mode === 'late-throw') {
    console.log('about to fail');
    throw new TypeError('broke mid-stream');
  }
  responseStream.write(`second@${Date.now()};`);
  responseStream.end(context.awsRequestId);
});
"""

NODE_URL = """
export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201,
    headers: { 'content-type': 'text/plain', 'x-custom': 'yes' },
    cookies: ['a=1'],
  });
  responseStream.write('first;');
  await new Promise((r) => setTimeout(r, 1000));
  responseStream.write(`second@${Date.now()};`);
  responseStream.end();
});
"""

PYTHON_STREAMING = """
import time

def handler(event, context):
    yield 'first;'
    time.sleep(event.get('pause_ms', 0) / 1000)
    yield 'second@%d;' % int(time.time() * 1000)
    if event.get('fail'):
        raise ValueError('python broke mid-stream')
"""


def create(client, name, runtime, handler, files):
    client.create_function(
        FunctionName=name, Runtime=runtime, Handler=handler, Role=ROLE,
        Code={"ZipFile": make_zip(files)}, Timeout=30,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def read_stream(response):
    """The stream's events, each with the client's arrival time in ms."""
    events = []
    for event in response["EventStream"]:
        events.append((time.time() * 1000, event))
    return events


def chunks_of(events):
    return [e["PayloadChunk"]["Payload"] for _, e in events if "PayloadChunk" in e]


def complete_of(events):
    completes = [e["InvokeComplete"] for _, e in events if "InvokeComplete" in e]
    assert len(completes) == 1 and "InvokeComplete" in events[-1][1], events
    return completes[0]


def written_at(chunk: bytes) -> float:
    return float(chunk.decode().split("@")[1].rstrip(";"))


def test_chunks_arrive_before_the_function_returns(strato):
    client = strato.lambda_client()
    create(client, "streamer", "nodejs20.x", "index.handler", {"index.mjs": NODE_STREAMING})
    response = client.invoke_with_response_stream(
        FunctionName="streamer", Payload=json.dumps({"pause_ms": 1000}))
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["content-type"] == "application/vnd.amazon.eventstream"
    request_id = headers["x-amzn-requestid"]
    events = read_stream(response)
    chunks = chunks_of(events)
    assert b"".join(chunks).startswith(b"first;second@")
    assert b"".join(chunks).endswith(request_id.encode())
    first_arrival = next(t for t, e in events if "PayloadChunk" in e)
    second = next(c for c in chunks if c.startswith(b"second@"))
    assert first_arrival < written_at(second), (first_arrival, chunks)
    assert complete_of(events) == {}


def test_an_error_mid_stream_ends_with_invoke_complete_and_the_log_tail(strato):
    client = strato.lambda_client()
    create(client, "failing-streamer", "nodejs20.x", "index.handler", {"index.mjs": NODE_STREAMING})
    response = client.invoke_with_response_stream(
        FunctionName="failing-streamer", LogType="Tail", Payload=json.dumps({"mode": "late-throw"}))
    events = read_stream(response)
    assert chunks_of(events) == [b"first;"]
    complete = complete_of(events)
    assert complete["ErrorCode"] == "TypeError"
    assert complete["ErrorDetails"] == "broke mid-stream"
    log = base64.b64decode(complete["LogResult"]).decode()
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert "about to fail" in log and f"REPORT RequestId: {request_id}" in log

    # Before the first byte the error is the same InvokeComplete, with no chunk.
    events = read_stream(client.invoke_with_response_stream(
        FunctionName="failing-streamer", Payload=json.dumps({"mode": "early-throw"})))
    assert chunks_of(events) == []
    complete = complete_of(events)
    assert complete["ErrorCode"] == "Error" and complete["ErrorDetails"] == "before any byte"
    assert "LogResult" not in complete

    # The same function through plain Invoke answers its stream whole.
    plain = client.invoke(FunctionName="failing-streamer", Payload=json.dumps({}))
    body = plain["Payload"].read()
    assert body.startswith(b"first;second@") and "FunctionError" not in plain


def test_a_function_that_does_not_stream_answers_in_one_chunk(strato):
    client = strato.lambda_client()
    create(client, "whole", "nodejs20.x", "index.handler",
           {"index.js": "exports.handler = async (event) => ({ echo: event });\n"})
    events = read_stream(client.invoke_with_response_stream(
        FunctionName="whole", Payload=json.dumps({"a": 1}), Qualifier="$LATEST"))
    assert chunks_of(events) == [b'{"echo":{"a":1}}']
    assert complete_of(events) == {}
    # DryRun checks and answers 204 without running anything.
    dry = client.invoke_with_response_stream(FunctionName="whole", InvocationType="DryRun")
    assert dry["StatusCode"] == 204


def test_python_generator_handlers_stream(strato):
    client = strato.lambda_client()
    create(client, "py-streamer", "python3.12", "app.handler", {"app.py": PYTHON_STREAMING})
    events = read_stream(client.invoke_with_response_stream(
        FunctionName="py-streamer", Payload=json.dumps({"pause_ms": 1000})))
    chunks = chunks_of(events)
    assert chunks[0] == b"first;" and chunks[1].startswith(b"second@")
    first_arrival = next(t for t, e in events if "PayloadChunk" in e)
    assert first_arrival < written_at(chunks[1])
    assert complete_of(events) == {}

    events = read_stream(client.invoke_with_response_stream(
        FunctionName="py-streamer", Payload=json.dumps({"fail": True})))
    assert len(chunks_of(events)) == 2
    complete = complete_of(events)
    assert complete["ErrorCode"] == "ValueError"
    assert complete["ErrorDetails"] == "python broke mid-stream"


def test_errors_before_the_stream_are_ordinary_aws_errors(strato):
    client = strato.lambda_client()
    with pytest.raises(ClientError) as e:
        client.invoke_with_response_stream(FunctionName="missing")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    create(client, "validated", "nodejs20.x", "index.handler", {"index.mjs": NODE_STREAMING})
    with pytest.raises(ClientError) as e:
        client.invoke_with_response_stream(FunctionName="validated", Payload=b"{not json")
    assert e.value.response["Error"]["Code"] == "InvalidRequestContentException"


def test_a_function_url_in_response_stream_mode_streams(strato):
    client = strato.lambda_client()
    create(client, "url-streamer", "nodejs20.x", "index.handler", {"index.mjs": NODE_URL})
    url = client.create_function_url_config(
        FunctionName="url-streamer", AuthType="NONE", InvokeMode="RESPONSE_STREAM")["FunctionUrl"]
    client.add_permission(FunctionName="url-streamer", StatementId="url",
                          Action="lambda:InvokeFunctionUrl", Principal="*",
                          FunctionUrlAuthType="NONE")
    client.add_permission(FunctionName="url-streamer", StatementId="invoke",
                          Action="lambda:InvokeFunction", Principal="*")
    # Read with urllib3 (what `requests` streams with; `requests` itself is
    # not among the suite's pinned clients), at the URL exactly as returned.
    http = urllib3.PoolManager()
    r = http.request("GET", url, preload_content=False, timeout=60)
    assert r.status == 201
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["x-custom"] == "yes"
    assert r.headers["set-cookie"] == "a=1"
    assert r.headers.get("transfer-encoding") == "chunked"
    arrivals = [(time.time() * 1000, piece) for piece in r.read_chunked()]
    r.release_conn()
    body = b"".join(p for _, p in arrivals)
    assert body.startswith(b"first;second@")
    second_written = written_at(body[len(b"first;"):])
    assert arrivals[0][1].startswith(b"first;") and arrivals[0][0] < second_written


def test_the_function_timeout_covers_the_stream(strato):
    client = strato.lambda_client()
    client.create_function(
        FunctionName="stuck-streamer", Runtime="nodejs20.x", Handler="index.handler", Role=ROLE,
        Timeout=1, Code={"ZipFile": make_zip({"index.mjs": (
            "export const handler = awslambda.streamifyResponse(async (event, responseStream) => {\n"
            "  responseStream.write('first;');\n"
            "  await new Promise(() => {});\n"
            "});\n"
        )})},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName="stuck-streamer", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    events = read_stream(client.invoke_with_response_stream(FunctionName="stuck-streamer"))
    assert chunks_of(events) == [b"first;"]
    complete = complete_of(events)
    assert complete["ErrorCode"] == "Sandbox.Timedout"
    assert complete["ErrorDetails"].endswith("Task timed out after 1.00 seconds")
