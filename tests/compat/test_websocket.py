"""WebSocket APIs (`aws apigatewayv2 create-api --protocol-type WEBSOCKET`):
set up with the real AWS CLI, driven by Python `websockets` and Node `ws`
clients, with functions that answer, authorize and broadcast through boto3's
`apigatewaymanagementapi` client. One server for the module; its time scale
(120) makes the 10-minute idle timeout 5 seconds.

Clients connect path-style (`ws://127.0.0.1:{port}/_strato/execute-api/{api}/{stage}`,
the `ApiEndpoint` the control plane hands out) or host-style with a
`Host: {api}.execute-api.localhost` header.
"""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import shutil
import subprocess
import tempfile
import threading
import urllib.parse
from pathlib import Path

import boto3
import pytest
import websockets
import websockets.exceptions
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import DEFAULT_ACCOUNT, HERE, REGION, ROLE, _start, _stop, make_zip, wait_until

TIME_SCALE = 120

# Answers `echo` (two-way), records `$connect`/`$disconnect` events as
# `WSEVENT {json}` lines in its log (every instance writes to the function's
# log group, while each has its own /tmp), broadcasts on `broadcast` through
# the management API, refuses `$connect` with ?deny=1 and picks the
# subprotocol ?proto= names.
HANDLER = r"""
import base64, json, os, boto3

def remember(event):
    print('WSEVENT ' + json.dumps(event), flush=True)

def management(event):
    ctx = event['requestContext']
    url = os.environ['AWS_ENDPOINT_URL'] + '/_strato/execute-api/' + ctx['apiId'] + '/' + ctx['stage']
    return boto3.client('apigatewaymanagementapi', endpoint_url=url)

def handler(event, context):
    ctx = event['requestContext']
    route = ctx['routeKey']
    if route == '$connect':
        remember(event)
        query = event.get('queryStringParameters') or {}
        if query.get('deny') == '1':
            return {'statusCode': 403}
        if query.get('proto'):
            return {'statusCode': 200, 'headers': {'Sec-WebSocket-Protocol': query['proto']}}
        return {'statusCode': 200}
    if route == '$disconnect':
        remember(event)
        return {'statusCode': 200}
    if route == 'echo':
        return {'statusCode': 200, 'body': json.dumps({'echo': json.loads(event['body']), 'context': ctx})}
    if route == 'broadcast':
        body = json.loads(event['body'])
        client = management(event)
        for target in body['to']:
            client.post_to_connection(ConnectionId=target, Data=body['text'].encode())
        return {'statusCode': 200}
    if route == 'crash':
        raise RuntimeError('boom')
    # $default: say what arrived.
    return {'statusCode': 200, 'body': json.dumps({'default': event['body'],
                                                    'isBase64Encoded': event['isBase64Encoded']})}
"""

AUTHORIZER = r"""
def handler(event, context):
    token = (event.get('queryStringParameters') or {}).get('token') or event['headers'].get('auth')
    effect = 'Allow' if token == 'letmein' else 'Deny'
    return {'principalId': 'tester', 'context': {'team': 'blue'},
            'policyDocument': {'Version': '2012-10-17', 'Statement': [
                {'Action': 'execute-api:Invoke', 'Effect': effect, 'Resource': event['methodArn']}]}}
"""


def cli(server, *args):
    return server.aws("apigatewayv2", *args).check().json()


def create_function(server, name: str, source: str) -> str:
    client = server.lambda_client()
    client.create_function(
        FunctionName=name, Runtime="python3.12", Handler="lambda_function.handler", Role=ROLE,
        Code={"ZipFile": make_zip({"lambda_function.py": source})})
    wait_until(lambda: client.get_function_configuration(FunctionName=name)["State"] == "Active",
               f"{name} to become Active", deadline_seconds=120)
    client.add_permission(
        FunctionName=name, StatementId="apigw", Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com", SourceArn=f"arn:aws:execute-api:{REGION}:{DEFAULT_ACCOUNT}:*/*")
    return f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:{name}"


def apigw(server):
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    return session.client("apigatewayv2", endpoint_url=server.endpoint,
                          config=Config(retries={"max_attempts": 0}))


class Api:
    def __init__(self, server, api_id: str, endpoint: str):
        self.server = server
        self.api_id = api_id
        self.endpoint = endpoint

    @property
    def port(self) -> int:
        return urllib.parse.urlparse(self.server.endpoint).port

    def url(self, stage: str = "prod", query: str = "") -> str:
        return f"{self.endpoint}/{stage}" + (f"?{query}" if query else "")

    def management(self, stage: str = "prod"):
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
        return session.client(
            "apigatewaymanagementapi",
            endpoint_url=f"{self.server.endpoint}/_strato/execute-api/{self.api_id}/{stage}",
            config=Config(retries={"max_attempts": 0}))


@pytest.fixture(scope="module")
def api(strato_binary):
    root = Path(tempfile.mkdtemp(prefix="strato-compat-ws-"))
    server = _start(strato_binary, root, ("--time-scale", str(TIME_SCALE)))
    try:
        handler = create_function(server, "ws-handler", HANDLER)
        authorizer = create_function(server, "ws-auth", AUTHORIZER)
        # The AWS CLI sets up the API and a two-way route; boto3 the rest.
        created = cli(server, "create-api", "--name", "chat", "--protocol-type", "WEBSOCKET",
                      "--route-selection-expression", "$request.body.action")
        api_id = created["ApiId"]
        v2 = apigw(server)
        integration = v2.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY",
                                            IntegrationUri=handler)
        target = f"integrations/{integration['IntegrationId']}"
        echo = cli(server, "create-route", "--api-id", api_id, "--route-key", "echo", "--target", target,
                   "--route-response-selection-expression", "$default")
        cli(server, "create-route-response", "--api-id", api_id, "--route-id", echo["RouteId"],
            "--route-response-key", "$default")
        auth = v2.create_authorizer(
            ApiId=api_id, Name="tokens", AuthorizerType="REQUEST",
            AuthorizerUri=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{authorizer}/invocations",
            IdentitySource=["route.request.querystring.token"])
        v2.create_route(ApiId=api_id, RouteKey="$connect", Target=target,
                        AuthorizationType="CUSTOM", AuthorizerId=auth["AuthorizerId"])
        v2.create_route(ApiId=api_id, RouteKey="$disconnect", Target=target)
        route = v2.create_route(ApiId=api_id, RouteKey="$default", Target=target,
                                RouteResponseSelectionExpression="$default")
        v2.create_route_response(ApiId=api_id, RouteId=route["RouteId"], RouteResponseKey="$default")
        for key in ("broadcast", "crash"):
            v2.create_route(ApiId=api_id, RouteKey=key, Target=target)
        cli(server, "create-stage", "--api-id", api_id, "--stage-name", "prod", "--auto-deploy")
        # A second API without $default: unknown routes get the error frame.
        strict = v2.create_api(Name="strict", ProtocolType="WEBSOCKET",
                               RouteSelectionExpression="$request.body.action")
        mock = v2.create_integration(ApiId=strict["ApiId"], IntegrationType="MOCK")
        v2.create_route(ApiId=strict["ApiId"], RouteKey="ping",
                        Target=f"integrations/{mock['IntegrationId']}")
        v2.create_stage(ApiId=strict["ApiId"], StageName="prod", AutoDeploy=True)
        yield {"main": Api(server, api_id, created["ApiEndpoint"]),
               "strict": Api(server, strict["ApiId"], strict["ApiEndpoint"]),
               "server": server}
    finally:
        _stop(server.proc)
        shutil.rmtree(root, ignore_errors=True)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=60))


def history(main: Api) -> list[dict]:
    """The events the handler recorded, from any of its instances: its log
    lines, read through the logs API."""
    logs = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION,
    ).client("logs", endpoint_url=main.server.endpoint)
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName="/aws/lambda/ws-handler", filterPattern="WSEVENT")
    return [json.loads(event["message"].split("WSEVENT ", 1)[1])
            for page in pages for event in page["events"] if "WSEVENT " in event["message"]]


def test_create_api_answers_with_websocket_shape(api):
    server, main = api["server"], api["main"]
    v2 = apigw(server)
    got = cli(server, "get-api", "--api-id", main.api_id)
    assert got["ProtocolType"] == "WEBSOCKET"
    assert got["RouteSelectionExpression"] == "$request.body.action"
    assert got["ApiKeySelectionExpression"] == "$request.header.x-api-key"
    assert got["ApiEndpoint"].startswith("ws://")
    routes = {r["RouteKey"]: r for r in v2.get_routes(ApiId=main.api_id)["Items"]}
    assert set(routes) == {"$connect", "$disconnect", "$default", "echo", "broadcast", "crash"}
    assert routes["echo"]["RouteResponseSelectionExpression"] == "$default"
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    responses = v2.get_route_responses(ApiId=main.api_id, RouteId=routes["echo"]["RouteId"])["Items"]
    assert [r["RouteResponseKey"] for r in responses] == ["$default"]
    integration = v2.get_integrations(ApiId=main.api_id)["Items"][0]
    assert integration["IntegrationType"] == "AWS_PROXY" and integration["PayloadFormatVersion"] == "1.0"
    stage = v2.get_stage(ApiId=main.api_id, StageName="prod")
    assert stage["AutoDeploy"] is True and stage["DeploymentId"]


def test_bad_control_plane_input_gets_bad_request(api):
    server, main = api["server"], api["main"]
    v2 = apigw(server)
    no_expression = server.aws("apigatewayv2", "create-api", "--name", "x", "--protocol-type", "WEBSOCKET")
    assert no_expression.returncode != 0 and "BadRequestException" in no_expression.stderr
    assert "RouteSelectionExpression" in no_expression.stderr

    def refused(call, **kwargs) -> str:
        with pytest.raises(ClientError) as e:
            call(ApiId=main.api_id, **kwargs)
        assert e.value.response["Error"]["Code"] == "BadRequestException", e.value.response
        return e.value.response["Error"]["Message"]

    refused(v2.create_route, RouteKey="$other")
    assert "$connect" in refused(v2.create_route, RouteKey="guarded", AuthorizationType="AWS_IAM")
    refused(v2.create_integration, IntegrationType="AWS", IntegrationUri="arn:aws:apigateway:x")
    refused(v2.create_authorizer, Name="a", AuthorizerType="REQUEST",
            AuthorizerUri="arn:aws:lambda:us-east-1:000000000000:function:f",
            IdentitySource=["$request.header.Auth"])


def test_echo_with_an_authorizer_answers_the_message(api):
    main = api["main"]

    async def go():
        async with websockets.connect(main.url(query="token=letmein")) as ws:
            await ws.send(json.dumps({"action": "echo", "text": "hi"}))
            return json.loads(await ws.recv())

    answer = run(go())
    assert answer["echo"] == {"action": "echo", "text": "hi"}
    ctx = answer["context"]
    assert ctx["routeKey"] == "echo" and ctx["eventType"] == "MESSAGE"
    assert ctx["messageDirection"] == "IN" and ctx["stage"] == "prod" and ctx["apiId"] == main.api_id
    assert ctx["connectionId"].endswith("=") and ctx["messageId"] and ctx["requestId"]
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["authorizer"] == {"principalId": "tester", "team": "blue"}
    assert isinstance(ctx["connectedAt"], int) and isinstance(ctx["requestTimeEpoch"], int)


def test_connect_event_and_refusals(api):
    main = api["main"]

    async def refused(query):
        with pytest.raises(websockets.exceptions.InvalidStatus) as e:
            async with websockets.connect(main.url(query=query)):
                pass
        return e.value.response.status_code

    assert run(refused("token=wrong")) == 403          # the authorizer denies
    assert run(refused("")) == 401                      # no identity source at all
    assert run(refused("token=letmein&deny=1")) == 403  # $connect answers 403
    connects = [e for e in history(main) if e["requestContext"]["routeKey"] == "$connect"]
    event = connects[-1]
    assert event["requestContext"]["eventType"] == "CONNECT"
    assert event["queryStringParameters"]["token"] == "letmein"
    assert "Sec-WebSocket-Key" in event["headers"] or "sec-websocket-key" in event["headers"]
    assert event["isBase64Encoded"] is False


def test_default_route_binary_frames_and_errors(api):
    main = api["main"]

    async def go():
        async with websockets.connect(main.url(query="token=letmein")) as ws:
            await ws.send("not json")
            text = json.loads(await ws.recv())
            await ws.send(b"\x00\x01\xff")
            binary = json.loads(await ws.recv())
            await ws.send(json.dumps({"action": "crash"}))
            crash = json.loads(await ws.recv())
            return text, binary, crash

    text, binary, crash = run(go())
    assert text == {"default": "not json", "isBase64Encoded": False}
    assert binary == {"default": base64.b64encode(b"\x00\x01\xff").decode(), "isBase64Encoded": True}
    assert crash["message"] == "Internal server error"
    assert crash["connectionId"] and crash["requestId"]


def test_unknown_route_without_default_gets_the_forbidden_frame(api):
    strict = api["strict"]

    async def go():
        async with websockets.connect(strict.url()) as ws:
            await ws.send(json.dumps({"action": "nope"}))
            return await ws.recv()

    frame = run(go())
    assert frame.startswith('{"message": "Forbidden", "connectionId":"')
    assert json.loads(frame)["requestId"]


def test_oversize_messages_close_with_1009(api):
    main = api["main"]

    async def go():
        async with websockets.connect(main.url(query="token=letmein"), max_size=None) as ws:
            await ws.send("x" * (129 * 1024))
            with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
                await ws.recv()
            return e.value.rcvd

    closed = run(go())
    assert closed is not None and closed.code == 1009


def test_broadcast_through_the_management_api(api):
    main = api["main"]
    management = main.management()

    async def go():
        async with websockets.connect(main.url(query="token=letmein")) as a, \
                websockets.connect(main.url(query="token=letmein")) as b:
            ids = []
            for ws in (a, b):
                await ws.send(json.dumps({"action": "echo"}))
                ids.append(json.loads(await ws.recv())["context"]["connectionId"])
            info = management.get_connection(ConnectionId=ids[0])
            await a.send(json.dumps({"action": "broadcast", "to": ids, "text": "hello all"}))
            got = [await a.recv(), await b.recv()]
            # From outside too, binary data arrives as a binary frame.
            management.post_to_connection(ConnectionId=ids[1], Data=b"\xff\x00")
            raw = await b.recv()
            management.delete_connection(ConnectionId=ids[1])
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await b.recv()
            return ids, info, got, raw

    ids, info, got, raw = run(go())
    assert got == ["hello all", "hello all"]
    assert raw == b"\xff\x00"
    assert info["Identity"]["SourceIp"] == "127.0.0.1"
    assert info["ConnectedAt"] <= info["LastActiveAt"]
    with pytest.raises(ClientError) as e:
        management.post_to_connection(ConnectionId=ids[1], Data=b"late")
    assert e.value.response["Error"]["Code"] == "GoneException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    with pytest.raises(ClientError) as e:
        management.get_connection(ConnectionId="NoSuchConnId0=")
    assert e.value.response["Error"]["Code"] == "GoneException"
    disconnects = wait_until(
        lambda: [e for e in history(main) if e["requestContext"]["routeKey"] == "$disconnect"
                 and e["requestContext"]["connectionId"] in ids],
        "$disconnect of both connections")
    assert {d["requestContext"]["eventType"] for d in disconnects} == {"DISCONNECT"}


def test_unsigned_management_calls_are_refused(api):
    main = api["main"]
    session = boto3.session.Session(region_name=REGION)
    client = session.client(
        "apigatewaymanagementapi",
        endpoint_url=f"{main.server.endpoint}/_strato/execute-api/{main.api_id}/prod",
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 0}))
    with pytest.raises(ClientError) as e:
        client.get_connection(ConnectionId="AAAAAAAAAAAAAAA=")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_idle_connections_are_closed_and_disconnected(api):
    main = api["main"]

    async def go():
        async with websockets.connect(main.url(query="token=letmein"), ping_interval=None) as ws:
            await ws.send(json.dumps({"action": "echo"}))
            conn_id = json.loads(await ws.recv())["context"]["connectionId"]
            with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
                await ws.recv()  # nothing comes until the (scaled) idle timeout closes it
            return conn_id, e.value.rcvd

    conn_id, closed = run(go())
    assert closed.code == 1001
    event = wait_until(
        lambda: [e for e in history(main) if e["requestContext"]["routeKey"] == "$disconnect"
                 and e["requestContext"]["connectionId"] == conn_id],
        "$disconnect after the idle timeout")[0]
    assert event["requestContext"]["disconnectStatusCode"] == 1001


def test_node_ws_client_connects_host_style(api):
    main = api["main"]
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed")
    script = r"""
const WebSocket = require('ws');
const [url, host] = process.argv.slice(1);
const ws = new WebSocket(url, { headers: { Host: host } });
ws.on('open', () => ws.send(JSON.stringify({ action: 'echo', from: 'node' })));
ws.on('message', (data) => { process.stdout.write(data.toString()); ws.close(); });
ws.on('unexpected-response', (_req, res) => { process.stdout.write('status ' + res.statusCode); process.exit(0); });
ws.on('error', (e) => { console.error(e.message); process.exit(1); });
"""
    host = f"{main.api_id}.execute-api.localhost:{main.port}"
    base = f"ws://127.0.0.1:{main.port}/prod"
    ok = subprocess.run([node, "-e", script, base + "?token=letmein", host], cwd=HERE / "js",
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    answer = json.loads(ok.stdout)
    assert answer["echo"] == {"action": "echo", "from": "node"}
    assert answer["context"]["domainName"] == f"{main.api_id}.execute-api.localhost"
    denied = subprocess.run([node, "-e", script, base + "?token=no", host], cwd=HERE / "js",
                            capture_output=True, text=True, timeout=60)
    assert denied.stdout == "status 403", denied.stderr


# ---------------------------------------------------------------------------------------------
# API keys, integration responses with mapping templates, subprotocols.


class Backend(http.server.BaseHTTPRequestHandler):
    """An HTTP integration's backend: records what it was sent; answers 404
    `{"reason": "no such thing"}` when the body says `"said":"missing"`, else
    200 with `{"heard": <the body>}`."""
    received: list[str] = []
    requests: list[tuple[str, object]] = []

    def do_POST(self):  # noqa: N802 - http.server's spelling
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        Backend.received.append(body)
        Backend.requests.append((self.path, self.headers))
        missing = json.loads(body).get("said") == "missing"
        answer = {"reason": "no such thing"} if missing else {"heard": json.loads(body)}
        data = json.dumps(answer).encode()
        self.send_response(404 if missing else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def extra(api):
    """On the module's server: an API whose `$connect` requires an API key
    (a usage plan names its stage), and one with MOCK and HTTP integrations
    whose integration responses render templates."""
    server, main = api["server"], api["main"]
    v2 = apigw(server)
    handler = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:ws-handler"
    keyed = v2.create_api(Name="keyed", ProtocolType="WEBSOCKET",
                          RouteSelectionExpression="$request.body.action")
    proxy = v2.create_integration(ApiId=keyed["ApiId"], IntegrationType="AWS_PROXY", IntegrationUri=handler)
    target = f"integrations/{proxy['IntegrationId']}"
    cli(server, "create-route", "--api-id", keyed["ApiId"], "--route-key", "$connect", "--target", target,
        "--api-key-required")
    echo = v2.create_route(ApiId=keyed["ApiId"], RouteKey="echo", Target=target,
                           RouteResponseSelectionExpression="$default")
    v2.create_route_response(ApiId=keyed["ApiId"], RouteId=echo["RouteId"], RouteResponseKey="$default")
    v2.create_stage(ApiId=keyed["ApiId"], StageName="prod", AutoDeploy=True)
    # API keys and usage plans are the REST API service's (`aws apigateway`), as on AWS.
    v1 = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                               region_name=REGION).client("apigateway", endpoint_url=server.endpoint)
    plan = v1.create_usage_plan(name="ws-plan", apiStages=[{"apiId": keyed["ApiId"], "stage": "prod"}])
    key = v1.create_api_key(name="ws-key", enabled=True)
    v1.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")

    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    templated = v2.create_api(Name="templated", ProtocolType="WEBSOCKET",
                              RouteSelectionExpression="$request.body.action")
    tid = templated["ApiId"]
    mock = cli(server, "create-integration", "--api-id", tid, "--integration-type", "MOCK",
               "--template-selection-expression", "\\$default",
               "--request-templates", json.dumps({"$default": '{"statusCode": 200}'}))
    cli(server, "create-integration-response", "--api-id", tid, "--integration-id", mock["IntegrationId"],
        "--integration-response-key", "$default", "--template-selection-expression", "\\$default",
        "--response-templates",
        json.dumps({"$default": '{"route": "$context.routeKey", "connection": "$context.connectionId"}'}))
    upstream = v2.create_integration(
        ApiId=tid, IntegrationType="HTTP", IntegrationMethod="POST",
        IntegrationUri=f"http://127.0.0.1:{backend.server_address[1]}/said",
        TemplateSelectionExpression="$request.body.kind",
        RequestTemplates={"$default": '{"said": "$util.escapeJavaScript($input.path(\'$.text\'))", '
                                      '"from": "$context.connectionId"}',
                          "raw": "$input.body"})
    v2.create_integration_response(
        ApiId=tid, IntegrationId=upstream["IntegrationId"], IntegrationResponseKey="$default",
        ResponseTemplates={"$default": '{"backend": $input.json(\'$.heard\'), "ok": true}'})
    v2.create_integration_response(
        ApiId=tid, IntegrationId=upstream["IntegrationId"], IntegrationResponseKey="/4\\d\\d/",
        ResponseTemplates={"$default": '{"error": "$util.escapeJavaScript($input.path(\'$.reason\'))"}'})
    for key_name, integration in (("mock", mock), ("say", upstream)):
        route = v2.create_route(ApiId=tid, RouteKey=key_name,
                                Target=f"integrations/{integration['IntegrationId']}",
                                RouteResponseSelectionExpression="$default")
        v2.create_route_response(ApiId=tid, RouteId=route["RouteId"], RouteResponseKey="$default")
    v2.create_stage(ApiId=tid, StageName="prod", AutoDeploy=True)
    try:
        yield {"keyed": Api(server, keyed["ApiId"], keyed["ApiEndpoint"]), "key": key,
               "templated": Api(server, tid, templated["ApiEndpoint"]), "main": main,
               "backend_port": backend.server_address[1]}
    finally:
        backend.shutdown()


def test_api_key_required_connect_refuses_without_a_key_of_the_plan(extra):
    keyed, key = extra["keyed"], extra["key"]

    async def status(headers):
        with pytest.raises(websockets.exceptions.InvalidStatus) as e:
            async with websockets.connect(keyed.url(), additional_headers=headers):
                pass
        return e.value.response.status_code

    async def admitted():
        async with websockets.connect(keyed.url(), additional_headers={"x-api-key": key["value"]}) as ws:
            await ws.send(json.dumps({"action": "echo"}))
            return json.loads(await ws.recv())

    assert run(status({})) == 403
    assert run(status({"x-api-key": "not-a-key-of-any-plan"})) == 403
    answer = run(admitted())
    identity = answer["context"]["identity"]
    assert identity["apiKey"] == key["value"]
    assert identity["apiKeyId"] == key["id"]


def test_mock_integration_response_renders_its_template(extra):
    templated = extra["templated"]

    async def go():
        async with websockets.connect(templated.url()) as ws:
            await ws.send(json.dumps({"action": "mock"}))
            return json.loads(await ws.recv())

    answer = run(go())
    assert answer["route"] == "mock"
    assert answer["connection"].endswith("=")


def test_http_integration_renders_request_and_response_templates(extra):
    templated = extra["templated"]
    Backend.received.clear()

    async def go():
        async with websockets.connect(templated.url()) as ws:
            got = []
            for message in ({"action": "say", "text": 'hi "there"'},
                            {"action": "say", "kind": "raw", "said": "verbatim"},
                            {"action": "say", "text": "missing"}):
                await ws.send(json.dumps(message))
                got.append(json.loads(await ws.recv()))
            return got

    templated_answer, raw_answer, missing = run(go())
    sent = json.loads(Backend.received[0])
    assert sent["said"] == 'hi "there"'
    assert sent["from"].endswith("=")
    assert templated_answer["ok"] is True and templated_answer["backend"]["from"] == sent["from"]
    # `kind: raw` selects the `raw` template: the message as it came.
    assert json.loads(Backend.received[1]) == {"action": "say", "kind": "raw", "said": "verbatim"}
    assert raw_answer["backend"]["said"] == "verbatim"
    # A 404 from the backend picks the /4\d\d/ integration response.
    assert missing == {"error": "no such thing"}


def test_control_plane_integration_responses(extra, api):
    server, templated = api["server"], extra["templated"]
    v2 = apigw(server)
    integration = next(i for i in v2.get_integrations(ApiId=templated.api_id)["Items"]
                       if i["IntegrationType"] == "HTTP")
    listed = v2.get_integration_responses(ApiId=templated.api_id,
                                          IntegrationId=integration["IntegrationId"])["Items"]
    assert sorted(r["IntegrationResponseKey"] for r in listed) == ["$default", "/4\\d\\d/"]
    one = v2.get_integration_response(ApiId=templated.api_id, IntegrationId=integration["IntegrationId"],
                                      IntegrationResponseId=listed[0]["IntegrationResponseId"])
    assert one["ResponseTemplates"] == listed[0]["ResponseTemplates"]
    with pytest.raises(ClientError) as e:
        v2.create_integration_response(ApiId=templated.api_id, IntegrationId=integration["IntegrationId"],
                                       IntegrationResponseKey="sometimes")
    assert e.value.response["Error"]["Code"] == "BadRequestException"
    with pytest.raises(ClientError) as e:
        v2.create_integration_response(ApiId=templated.api_id, IntegrationId="nope000",
                                       IntegrationResponseKey="$default")
    assert e.value.response["Error"]["Code"] == "NotFoundException"


def test_connect_answer_picks_the_subprotocol(api):
    main = api["main"]

    async def go(query):
        async with websockets.connect(main.url(query=query), subprotocols=["a", "b"]) as ws:
            return ws.subprotocol

    assert run(go("token=letmein&proto=b")) == "b"
    # The function chose none: none is sent (a browser then fails the
    # handshake, as it does against API Gateway).
    assert run(go("token=letmein")) is None


def test_data_mapping_directives_and_required_connect_parameters(extra, api):
    server = api["server"]
    v2 = apigw(server)
    mapped = v2.create_api(Name="mapped", ProtocolType="WEBSOCKET",
                           RouteSelectionExpression="$request.body.action")
    mid = mapped["ApiId"]
    mock = v2.create_integration(ApiId=mid, IntegrationType="MOCK",
                                 RequestTemplates={"$default": '{"statusCode": 200}'},
                                 TemplateSelectionExpression="\\$default")
    v2.create_route(ApiId=mid, RouteKey="$connect", Target=f"integrations/{mock['IntegrationId']}",
                    RequestParameters={"route.request.querystring.room": {"Required": True}})
    upstream = v2.create_integration(
        ApiId=mid, IntegrationType="HTTP", IntegrationMethod="POST",
        IntegrationUri=f"http://127.0.0.1:{extra['backend_port']}/said",
        RequestParameters={"integration.request.header.X-Conn": "context.connectionId",
                           "integration.request.header.X-Env": "stageVariables.env",
                           "integration.request.header.X-Static": "'fixed'",
                           "integration.request.querystring.who": "route.request.body.name"},
        RequestTemplates={"$default": (
            "## the words, as a list\n"
            "#set($words = $input.path('$.words'))\n"
            '{"said": [#foreach($w in $words)"$w.toUpperCase()"#if($foreach.hasNext),#end#end],'
            ' #if($words.size() > 1)"many": true#{else}"many": false#end}')})
    v2.create_integration_response(ApiId=mid, IntegrationId=upstream["IntegrationId"],
                                   IntegrationResponseKey="$default",
                                   ResponseTemplates={"$default": '{"backend": $input.json(\'$.heard\')}'})
    route = v2.create_route(ApiId=mid, RouteKey="say", Target=f"integrations/{upstream['IntegrationId']}",
                            RouteResponseSelectionExpression="$default")
    v2.create_route_response(ApiId=mid, RouteId=route["RouteId"], RouteResponseKey="$default")
    v2.create_stage(ApiId=mid, StageName="prod", AutoDeploy=True, StageVariables={"env": "test"})
    api_obj = Api(server, mid, mapped["ApiEndpoint"])
    with pytest.raises(ClientError) as e:
        v2.create_integration(ApiId=mid, IntegrationType="HTTP", IntegrationMethod="POST",
                              IntegrationUri="http://127.0.0.1:1/x",
                              RequestParameters={"append:header.x": "context.connectionId"})
    assert e.value.response["Error"]["Code"] == "BadRequestException"

    async def refused():
        with pytest.raises(websockets.exceptions.InvalidStatus) as e:
            async with websockets.connect(api_obj.url()):
                pass
        return e.value.response.status_code

    async def said():
        async with websockets.connect(api_obj.url(query="room=a")) as ws:
            await ws.send(json.dumps({"action": "say", "name": "ann", "words": ["hi", "there"]}))
            return json.loads(await ws.recv())

    assert run(refused()) == 400
    Backend.requests.clear()
    Backend.received.clear()
    answer = run(said())
    assert answer == {"backend": {"said": ["HI", "THERE"], "many": True}}
    path, headers = Backend.requests[0]
    assert path == "/said?who=ann"
    assert headers["X-Conn"].endswith("=") and headers["X-Static"] == "fixed" and headers["X-Env"] == "test"


def test_usage_plan_throttle_counts_each_message(extra, api):
    keyed = extra["keyed"]
    v1 = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                               region_name=REGION).client("apigateway", endpoint_url=api["server"].endpoint)
    plan = v1.create_usage_plan(name="ws-tight", apiStages=[{"apiId": keyed.api_id, "stage": "prod"}],
                                throttle={"rateLimit": 0.001, "burstLimit": 3})
    key = v1.create_api_key(name="ws-tight-key", enabled=True)
    v1.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")

    async def go():
        async with websockets.connect(keyed.url(), additional_headers={"x-api-key": key["value"]}) as ws:
            answers = []
            for _ in range(3):
                await ws.send(json.dumps({"action": "echo"}))
                answers.append(json.loads(await ws.recv()))
            return answers

    # The handshake takes one of the 3 tokens, two messages the others.
    first, second, third = run(go())
    assert first["echo"] == {"action": "echo"} and second["echo"] == {"action": "echo"}
    assert third["message"] == "Too Many Requests"
    assert third["connectionId"].endswith("=") and third["requestId"]
