"""REST APIs (`aws apigateway ...`) driven by the real AWS CLI (v1) and boto3,
called over plain HTTP: resources and methods, deployments and stages, the
AWS_PROXY (payload 1.0), HTTP_PROXY integrations, MOCK, HTTP and AWS (Lambda)
integrations through VTL mapping templates, stage variables,
method-settings throttling, API keys with usage plans, binary bodies and the
502 cases.

The data plane is reached path-style
(`http://127.0.0.1:{port}/_strato/execute-api/{api-id}/{stage}/...`) or
host-style with a `Host: {api-id}.execute-api.localhost` header (Python's
resolver does not resolve `*.localhost` by itself).
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import threading
import urllib.parse

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, make_zip, wait_until

ECHO_FUNCTION = """
import base64, json

def handler(event, context):
    action = (event.get('queryStringParameters') or {}).get('action')
    if action == 'malformed':
        return {'body': 'no status code'}
    if action == 'raise':
        raise RuntimeError('boom')
    if action == 'extra-member':
        return {'statusCode': 200, 'body': 'x', 'cookies': ['a=1']}
    if action == 'word-status':
        return {'statusCode': 'OK', 'body': 'x'}
    if action == 'string-status':
        return {'statusCode': '202', 'body': 'accepted'}
    if action == 'binary':
        raw = base64.b64decode(event['body']) if event.get('isBase64Encoded') else (event.get('body') or '').encode()
        return {'statusCode': 200, 'headers': {'Content-Type': 'application/octet-stream'},
                'body': base64.b64encode(raw[::-1]).decode(), 'isBase64Encoded': True}
    return {
        'statusCode': 201,
        'headers': {'Content-Type': 'application/json', 'X-Echo': 'yes'},
        'multiValueHeaders': {'Set-Cookie': ['a=1', 'b=2']},
        'body': json.dumps({'event': event}),
    }
"""


def apigw(strato):
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    return session.client("apigateway", endpoint_url=strato.endpoint,
                          config=Config(retries={"max_attempts": 0}))


def port_of(strato) -> int:
    return urllib.parse.urlparse(strato.endpoint).port


def call(strato, api_id: str, stage: str, path: str, method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None, host_style: bool = False):
    """One data-plane request; (status, headers, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port_of(strato), timeout=60)
    headers = dict(headers or {})
    if host_style:
        headers["Host"] = f"{api_id}.execute-api.localhost:{port_of(strato)}"
        target = f"/{stage}{path}"
    else:
        target = f"/_strato/execute-api/{api_id}/{stage}{path}"
    conn.request(method, target, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    result = (resp.status, resp.headers, data)
    conn.close()
    return result


def create_echo_function(strato, name: str, allow_gateway: bool = True, source_arn: str | None = None):
    client = strato.lambda_client()
    client.create_function(
        FunctionName=name, Runtime="python3.12", Handler="lambda_function.handler", Role=ROLE,
        Code={"ZipFile": make_zip({"lambda_function.py": ECHO_FUNCTION})},
    )
    wait_until(lambda: client.get_function_configuration(FunctionName=name)["State"] == "Active",
               f"{name} to become Active", deadline_seconds=120)
    if allow_gateway:
        extra = {"SourceArn": source_arn} if source_arn else {}
        client.add_permission(FunctionName=name, StatementId="apigw", Action="lambda:InvokeFunction",
                              Principal="apigateway.amazonaws.com", **extra)
    return f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:{name}"


def lambda_uri(function_arn: str) -> str:
    return f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{function_arn}/invocations"


def resource_id(client, api_id: str, path: str) -> str:
    items = client.get_resources(restApiId=api_id)["items"]
    return next(r["id"] for r in items if r["path"] == path)


def mock_api(client, name="mock", api_key_required=False):
    """An API with GET /ping answered by a MOCK integration, deployed to `prod`."""
    api = client.create_rest_api(name=name)
    root = api["rootResourceId"]
    ping = client.create_resource(restApiId=api["id"], parentId=root, pathPart="ping")
    client.put_method(restApiId=api["id"], resourceId=ping["id"], httpMethod="GET",
                      authorizationType="NONE", apiKeyRequired=api_key_required)
    client.put_integration(restApiId=api["id"], resourceId=ping["id"], httpMethod="GET", type="MOCK",
                           requestTemplates={"application/json": '{"statusCode": 200}'})
    client.put_method_response(restApiId=api["id"], resourceId=ping["id"], httpMethod="GET",
                               statusCode="200")
    client.put_integration_response(
        restApiId=api["id"], resourceId=ping["id"], httpMethod="GET", statusCode="200",
        responseTemplates={"application/json": '{"pong": true}'},
        responseParameters={"method.response.header.X-Mock": "'yes'"})
    client.create_deployment(restApiId=api["id"], stageName="prod")
    return api["id"], ping["id"]


# ---- control plane -------------------------------------------------------------------------


def test_cli_builds_a_rest_api_and_reads_it_back(strato):
    created = strato.aws("apigateway", "create-rest-api", "--name", "shop",
                         "--description", "the shop").check().json()
    api_id = created["id"]
    assert len(api_id) == 10 and api_id.isalnum() and api_id.lower() == api_id
    assert created["name"] == "shop"
    assert created["description"] == "the shop"
    assert created["apiKeySource"] == "HEADER"
    assert created["endpointConfiguration"] == {"types": ["EDGE"]}
    assert isinstance(created["createdDate"], (int, float))
    root = created["rootResourceId"]

    resources = strato.aws("apigateway", "get-resources", "--rest-api-id", api_id).check().json()
    assert resources["items"] == [{"id": root, "path": "/"}]

    items = strato.aws("apigateway", "create-resource", "--rest-api-id", api_id, "--parent-id", root,
                       "--path-part", "items").check().json()
    assert items["path"] == "/items" and items["parentId"] == root and items["pathPart"] == "items"
    item = strato.aws("apigateway", "create-resource", "--rest-api-id", api_id, "--parent-id",
                      items["id"], "--path-part", "{id}").check().json()
    assert item["path"] == "/items/{id}"

    method = strato.aws("apigateway", "put-method", "--rest-api-id", api_id, "--resource-id", item["id"],
                        "--http-method", "GET", "--authorization-type", "NONE").check().json()
    assert method == {"httpMethod": "GET", "authorizationType": "NONE", "apiKeyRequired": False}
    integration = strato.aws(
        "apigateway", "put-integration", "--rest-api-id", api_id, "--resource-id", item["id"],
        "--http-method", "GET", "--type", "HTTP_PROXY", "--integration-http-method", "GET",
        "--uri", "http://127.0.0.1:1/items/{id}").check().json()
    assert integration["type"] == "HTTP_PROXY"
    assert integration["timeoutInMillis"] == 29000
    assert integration["passthroughBehavior"] == "WHEN_NO_MATCH"
    assert integration["cacheNamespace"] == item["id"]

    got = strato.aws("apigateway", "get-method", "--rest-api-id", api_id, "--resource-id", item["id"],
                     "--http-method", "GET").check().json()
    assert got["methodIntegration"]["uri"] == "http://127.0.0.1:1/items/{id}"

    deployment = strato.aws("apigateway", "create-deployment", "--rest-api-id", api_id,
                            "--stage-name", "beta", "--variables", "color=blue").check().json()
    stage = strato.aws("apigateway", "get-stage", "--rest-api-id", api_id,
                       "--stage-name", "beta").check().json()
    assert stage["deploymentId"] == deployment["id"]
    assert stage["variables"] == {"color": "blue"}
    listed = strato.aws("apigateway", "get-rest-apis").check().json()
    assert [a["id"] for a in listed["items"]] == [api_id]

    missing = strato.aws("apigateway", "get-rest-api", "--rest-api-id", "nosuchapi0")
    assert missing.returncode != 0
    assert ("An error occurred (NotFoundException) when calling the GetRestApi operation: "
            f"Invalid API identifier specified {DEFAULT_ACCOUNT}:nosuchapi0") in missing.stderr


def test_boto3_errors_are_apigateway_exceptions(strato):
    client = apigw(strato)
    api = client.create_rest_api(name="errors")
    root = api["rootResourceId"]
    client.create_resource(restApiId=api["id"], parentId=root, pathPart="a")
    with pytest.raises(ClientError) as err:
        client.create_resource(restApiId=api["id"], parentId=root, pathPart="a")
    assert err.value.response["Error"]["Code"] == "ConflictException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    client.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="NONE")
    with pytest.raises(ClientError) as err:
        client.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET",
                          authorizationType="NONE")
    assert err.value.response["Error"]["Code"] == "ConflictException"
    assert err.value.response["Error"]["Message"] == "Method already exists for this resource"
    with pytest.raises(ClientError) as err:
        client.get_integration(restApiId=api["id"], resourceId=root, httpMethod="GET")
    assert err.value.response["Error"]["Code"] == "NotFoundException"
    with pytest.raises(ClientError) as err:
        client.create_deployment(restApiId=api["id"], stageName="prod")
    assert err.value.response["Error"]["Code"] == "BadRequestException"
    assert err.value.response["Error"]["Message"] == "No integration defined for method"
    with pytest.raises(ClientError) as err:
        client.get_stage(restApiId=api["id"], stageName="nope")
    assert err.value.response["Error"]["Code"] == "NotFoundException"
    client.delete_rest_api(restApiId=api["id"])
    with pytest.raises(ClientError) as err:
        client.get_resources(restApiId=api["id"])
    assert err.value.response["Error"]["Code"] == "NotFoundException"


def test_stage_patches_set_variables_and_method_settings(strato):
    client = apigw(strato)
    api_id, _ = mock_api(client)
    stage = client.update_stage(restApiId=api_id, stageName="prod", patchOperations=[
        {"op": "replace", "path": "/variables/backend", "value": "127.0.0.1:8080"},
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "100"},
        {"op": "replace", "path": "/~1ping/GET/throttling/burstLimit", "value": "7"},
    ])
    assert stage["variables"] == {"backend": "127.0.0.1:8080"}
    assert stage["methodSettings"]["*/*"]["throttlingRateLimit"] == 100.0
    assert stage["methodSettings"]["~1ping/GET"]["throttlingBurstLimit"] == 7
    stage = client.update_stage(restApiId=api_id, stageName="prod", patchOperations=[
        {"op": "remove", "path": "/variables/backend"}])
    assert "variables" not in stage or stage["variables"] == {}


# ---- data plane ----------------------------------------------------------------------------


def test_mock_integration_answers_from_its_template(strato):
    client = apigw(strato)
    api_id, _ = mock_api(client)
    status, headers, body = call(strato, api_id, "prod", "/ping")
    assert status == 200
    assert json.loads(body) == {"pong": True}
    assert headers["X-Mock"] == "yes"
    assert headers["x-amzn-RequestId"]
    status, _, body = call(strato, api_id, "prod", "/ping", host_style=True)
    assert status == 200 and json.loads(body) == {"pong": True}
    status, headers, body = call(strato, api_id, "prod", "/nothing-here")
    assert status == 403
    assert json.loads(body) == {"message": "Missing Authentication Token"}
    status, _, body = call(strato, api_id, "nostage", "/ping")
    assert status == 403


def test_lambda_proxy_sends_a_v1_event_and_maps_the_answer(strato):
    client = apigw(strato)
    function_arn = create_echo_function(strato, "echo")
    api = client.create_rest_api(name="proxy")
    root = api["rootResourceId"]
    items = client.create_resource(restApiId=api["id"], parentId=root, pathPart="items")
    item = client.create_resource(restApiId=api["id"], parentId=items["id"], pathPart="{id}")
    client.put_method(restApiId=api["id"], resourceId=item["id"], httpMethod="ANY",
                      authorizationType="NONE")
    client.put_integration(restApiId=api["id"], resourceId=item["id"], httpMethod="ANY",
                           type="AWS_PROXY", integrationHttpMethod="POST", uri=lambda_uri(function_arn))
    client.create_deployment(restApiId=api["id"], stageName="prod", variables={"tier": "gold"})

    status, headers, body = call(strato, api["id"], "prod", "/items/42?q=1&q=2&x=y", method="POST",
                                 body=b'{"hello": "world"}',
                                 headers={"Content-Type": "application/json", "X-Multi": "v"})
    assert status == 201, body
    assert headers["X-Echo"] == "yes"
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    event = json.loads(body)["event"]
    assert event["resource"] == "/items/{id}"
    assert event["path"] == "/items/42"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"q": "2", "x": "y"}
    assert event["multiValueQueryStringParameters"] == {"q": ["1", "2"], "x": ["y"]}
    assert event["headers"]["X-Multi"] == "v"
    assert event["headers"]["Content-Type"] == "application/json"
    assert event["stageVariables"] == {"tier": "gold"}
    assert event["body"] == '{"hello": "world"}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "prod"
    assert context["resourcePath"] == "/items/{id}"
    assert context["httpMethod"] == "POST"
    assert context["apiId"] == api["id"]
    assert context["accountId"] == DEFAULT_ACCOUNT
    assert context["path"] == "/prod/items/42"
    assert context["requestId"] == headers["x-amzn-RequestId"]
    assert "version" not in event


def test_lambda_proxy_502_for_malformed_answers_and_function_errors(strato):
    client = apigw(strato)
    function_arn = create_echo_function(strato, "echo502")
    api = client.create_rest_api(name="errors")
    root = api["rootResourceId"]
    client.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="NONE")
    client.put_integration(restApiId=api["id"], resourceId=root, httpMethod="GET", type="AWS_PROXY",
                           integrationHttpMethod="POST", uri=lambda_uri(function_arn))
    client.create_deployment(restApiId=api["id"], stageName="prod")
    for action in ("malformed", "raise", "extra-member", "word-status"):
        status, headers, body = call(strato, api["id"], "prod", f"/?action={action}")
        assert status == 502, (action, body)
        assert json.loads(body) == {"message": "Internal server error"}
        assert headers["x-amzn-ErrorType"] == "InternalServerErrorException"
        assert headers["Content-Type"] == "application/json"
    # A numeric string is a status (AWS's own blueprints answer '200').
    status, _, body = call(strato, api["id"], "prod", "/?action=string-status")
    assert (status, body) == (202, b"accepted")


def test_rest_events_keep_the_header_case_the_client_sent(strato):
    """REST APIs (payload 1.0) keep header names as sent, in `headers` and
    `multiValueHeaders`; each request on a kept-alive connection has its own."""
    client = apigw(strato)
    function_arn = create_echo_function(strato, "echocase")
    api = client.create_rest_api(name="case")
    root = api["rootResourceId"]
    client.put_method(restApiId=api["id"], resourceId=root, httpMethod="ANY", authorizationType="NONE")
    client.put_integration(restApiId=api["id"], resourceId=root, httpMethod="ANY", type="AWS_PROXY",
                           integrationHttpMethod="POST", uri=lambda_uri(function_arn))
    client.create_deployment(restApiId=api["id"], stageName="prod")
    conn = http.client.HTTPConnection("127.0.0.1", port_of(strato), timeout=60)
    target = f"/_strato/execute-api/{api['id']}/prod/"
    try:
        conn.putrequest("POST", target, skip_accept_encoding=True)
        conn.putheader("X-My-Header", "one")
        conn.putheader("X-My-Header", "two")
        conn.putheader("x-lower-case", "kept")
        conn.putheader("Content-Length", "5")
        conn.endheaders(b"hello")
        first = conn.getresponse()
        first_event = json.loads(first.read())["event"]
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.putheader("X-SECOND", "2")
        conn.endheaders()
        second_event = json.loads(conn.getresponse().read())["event"]
    finally:
        conn.close()
    assert first_event["headers"]["X-My-Header"] == "two"
    assert first_event["multiValueHeaders"]["X-My-Header"] == ["one", "two"]
    assert first_event["headers"]["x-lower-case"] == "kept"
    assert first_event["headers"]["Host"].startswith("127.0.0.1")
    assert first_event["headers"]["Content-Length"] == "5"
    assert "x-my-header" not in first_event["headers"]
    assert second_event["headers"]["X-SECOND"] == "2"
    assert "X-My-Header" not in second_event["headers"]


def test_lambda_proxy_without_permission_fails_as_on_aws(strato):
    client = apigw(strato)
    function_arn = create_echo_function(strato, "private", allow_gateway=False)
    api = client.create_rest_api(name="noperm")
    root = api["rootResourceId"]
    client.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="NONE")
    client.put_integration(restApiId=api["id"], resourceId=root, httpMethod="GET", type="AWS_PROXY",
                           integrationHttpMethod="POST", uri=lambda_uri(function_arn))
    client.create_deployment(restApiId=api["id"], stageName="prod")
    status, _, body = call(strato, api["id"], "prod", "/")
    assert status == 500
    assert json.loads(body) == {"message": "Internal server error"}
    strato.lambda_client().add_permission(
        FunctionName="private", StatementId="apigw", Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{REGION}:{DEFAULT_ACCOUNT}:{api['id']}/*/GET/")
    status, _, body = call(strato, api["id"], "prod", "/")
    assert status == 201, body


def test_binary_bodies_travel_base64(strato):
    client = apigw(strato)
    function_arn = create_echo_function(strato, "binary")
    api = client.create_rest_api(name="binary", binaryMediaTypes=["application/octet-stream"])
    root = api["rootResourceId"]
    client.put_method(restApiId=api["id"], resourceId=root, httpMethod="POST", authorizationType="NONE")
    client.put_integration(restApiId=api["id"], resourceId=root, httpMethod="POST", type="AWS_PROXY",
                           integrationHttpMethod="POST", uri=lambda_uri(function_arn))
    client.create_deployment(restApiId=api["id"], stageName="prod")
    payload = bytes(range(256))
    status, headers, body = call(strato, api["id"], "prod", "/?action=binary", method="POST",
                                 body=payload,
                                 headers={"Content-Type": "application/octet-stream",
                                          "Accept": "application/octet-stream"})
    assert status == 200
    assert body == payload[::-1]


class _Backend(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        answer = json.dumps({"path": self.path, "via": self.headers.get("X-Via")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Backend", "tiny")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_POST(self):  # noqa: N802
        got = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = json.dumps({"path": self.path, "via": self.headers.get("X-Via"),
                             "type": self.headers.get("Content-Type"),
                             "got": json.loads(got) if got else None}).encode()
        self.send_response(500 if b"fail" in got else 201)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Backend", "tiny")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def backend():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def test_http_proxy_with_stage_variables_in_the_uri(strato, backend):
    client = apigw(strato)
    api = client.create_rest_api(name="http")
    root = api["rootResourceId"]
    proxy = client.create_resource(restApiId=api["id"], parentId=root, pathPart="{proxy+}")
    client.put_method(restApiId=api["id"], resourceId=proxy["id"], httpMethod="ANY",
                      authorizationType="NONE", requestParameters={"method.request.path.proxy": True})
    client.put_integration(
        restApiId=api["id"], resourceId=proxy["id"], httpMethod="ANY", type="HTTP_PROXY",
        integrationHttpMethod="ANY", uri="http://${stageVariables.backend}/api/{proxy}",
        requestParameters={"integration.request.path.proxy": "method.request.path.proxy"})
    client.create_deployment(restApiId=api["id"], stageName="beta",
                             variables={"backend": f"127.0.0.1:{backend}"})
    status, headers, body = call(strato, api["id"], "beta", "/a/b?c=d", headers={"X-Via": "gw"})
    assert status == 200, body
    assert json.loads(body) == {"path": "/api/a/b?c=d", "via": "gw"}
    assert headers["X-Backend"] == "tiny"


def test_method_settings_throttle_beyond_the_burst(strato):
    client = apigw(strato)
    api_id, _ = mock_api(client)
    # A rate far below one request a second: only the burst passes.
    client.update_stage(restApiId=api_id, stageName="prod", patchOperations=[
        {"op": "replace", "path": "/~1ping/GET/throttling/rateLimit", "value": "0.001"},
        {"op": "replace", "path": "/~1ping/GET/throttling/burstLimit", "value": "3"},
    ])
    statuses = [call(strato, api_id, "prod", "/ping") for _ in range(8)]
    assert [s for s, _, _ in statuses[:3]] == [200, 200, 200]
    throttled = [(s, json.loads(b)) for s, _, b in statuses[3:]]
    assert throttled == [(429, {"message": "Too Many Requests"})] * 5


def test_api_keys_and_usage_plan_quota(strato):
    client = apigw(strato)
    api_id, _ = mock_api(client, api_key_required=True)
    status, _, body = call(strato, api_id, "prod", "/ping")
    assert status == 403 and json.loads(body) == {"message": "Forbidden"}

    key = client.create_api_key(name="customer", enabled=True)
    assert len(key["value"]) >= 20
    # A key in no plan for this stage is refused.
    status, _, _ = call(strato, api_id, "prod", "/ping", headers={"x-api-key": key["value"]})
    assert status == 403

    plan = client.create_usage_plan(name="basic", apiStages=[{"apiId": api_id, "stage": "prod"}],
                                    quota={"limit": 3, "period": "DAY"},
                                    throttle={"rateLimit": 100, "burstLimit": 50})
    assert plan["quota"] == {"limit": 3, "offset": 0, "period": "DAY"}
    plan_key = client.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    assert plan_key["id"] == key["id"] and plan_key["type"] == "API_KEY"
    assert [k["id"] for k in client.get_usage_plan_keys(usagePlanId=plan["id"])["items"]] == [key["id"]]

    answers = [call(strato, api_id, "prod", "/ping", headers={"x-api-key": key["value"]})
               for _ in range(4)]
    assert [s for s, _, _ in answers] == [200, 200, 200, 429]
    assert json.loads(answers[3][2]) == {"message": "Limit Exceeded"}

    client.update_api_key(apiKey=key["id"], patchOperations=[
        {"op": "replace", "path": "/enabled", "value": "false"}])
    status, _, _ = call(strato, api_id, "prod", "/ping", headers={"x-api-key": key["value"]})
    assert status == 403
    assert client.get_api_key(apiKey=key["id"]).get("value") is None
    assert client.get_api_key(apiKey=key["id"], includeValue=True)["value"] == key["value"]


def test_usage_plan_throttle_limits_a_key(strato):
    client = apigw(strato)
    api_id, _ = mock_api(client, api_key_required=True)
    key = client.create_api_key(name="bursty", enabled=True)
    plan = client.create_usage_plan(name="tight", apiStages=[{"apiId": api_id, "stage": "prod"}],
                                    throttle={"rateLimit": 0.001, "burstLimit": 2})
    client.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    statuses = [call(strato, api_id, "prod", "/ping", headers={"x-api-key": key["value"]})[0]
                for _ in range(5)]
    assert statuses == [200, 200, 429, 429, 429]


def test_rest_apis_list_in_pages(strato):
    client = apigw(strato)
    ids = sorted(client.create_rest_api(name=f"api{i}")["id"] for i in range(3))
    first = client.get_rest_apis(limit=2)
    assert [a["id"] for a in first["items"]] == ids[:2]
    rest = client.get_rest_apis(limit=2, position=first["position"])
    assert [a["id"] for a in rest["items"]] == ids[2:]
    assert "position" not in rest
    paginated = [a["id"] for page in client.get_paginator("get_rest_apis").paginate(
        PaginationConfig={"PageSize": 1}) for a in page["items"]]
    assert paginated == ids


def test_stage_access_logs_reach_the_logs_api(strato):
    client = apigw(strato)
    api_id, _ = mock_api(client)
    logs = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION,
    ).client("logs", endpoint_url=strato.endpoint, config=Config(retries={"max_attempts": 0}))
    logs.create_log_group(logGroupName="rest-access")
    client.update_stage(restApiId=api_id, stageName="prod", patchOperations=[
        {"op": "replace", "path": "/accessLogSettings/destinationArn",
         "value": f"arn:aws:logs:{REGION}:{DEFAULT_ACCOUNT}:log-group:rest-access"},
        {"op": "replace", "path": "/accessLogSettings/format",
         "value": "$context.requestId $context.httpMethod $context.resourcePath $context.status"},
    ])
    _, headers, _ = call(strato, api_id, "prod", "/ping")
    request_id = headers["x-amzn-RequestId"]
    _, missing_headers, _ = call(strato, api_id, "prod", "/missing")

    def lines():
        events = logs.filter_log_events(logGroupName="rest-access")["events"]
        return [e["message"] for e in events] if len(events) >= 2 else None

    found = wait_until(lines, "two access log lines")
    assert f"{request_id} GET /ping 200" in found
    assert f"{missing_headers['x-amzn-RequestId']} GET - 403" in found


def test_cli_tags_rest_apis_and_stages(strato):
    client = apigw(strato)
    api_id, _ = mock_api(client)
    api_arn = f"arn:aws:apigateway:{REGION}::/restapis/{api_id}"
    stage_arn = f"{api_arn}/stages/prod"
    strato.aws("apigateway", "tag-resource", "--resource-arn", api_arn,
               "--tags", "team=payments,env=dev").check()
    strato.aws("apigateway", "tag-resource", "--resource-arn", stage_arn, "--tags", "tier=gold").check()
    assert strato.aws("apigateway", "get-tags", "--resource-arn", api_arn).check().json() == {
        "tags": {"team": "payments", "env": "dev"}}
    assert client.get_rest_api(restApiId=api_id)["tags"] == {"team": "payments", "env": "dev"}
    assert client.get_stage(restApiId=api_id, stageName="prod")["tags"] == {"tier": "gold"}
    strato.aws("apigateway", "untag-resource", "--resource-arn", api_arn, "--tag-keys", "env").check()
    assert client.get_tags(resourceArn=api_arn)["tags"] == {"team": "payments"}
    missing = strato.aws("apigateway", "get-tags", "--resource-arn",
                         f"arn:aws:apigateway:{REGION}::/restapis/nosuchapi0")
    assert missing.returncode != 0
    assert "NotFoundException" in missing.stderr


PET_LIST = """#set($id = $input.params('id'))
#set($ids = [1..3])
[
#foreach($i in $ids)
  {"n": $velocityCount, "pet": "${id}-$i"}#if($foreach.hasNext),#end

#end
]"""

ORDER_TEMPLATE = """## the backend wants names and a count
#set($items = $input.path('$.items'))
{"names": [#foreach($i in $items)"$util.escapeJavaScript($i.name)"#if($foreach.hasNext), #end#end],
 #if($items.size() > 2 && !$input.path('$.rush'))"big": true,#elseif($input.path('$.rush'))"rush": true,#end
 "count": $items.size(), "stage": "$context.stage", "env": "$stageVariables.env"}"""


def test_non_proxy_integrations_render_mapping_templates(strato, backend):
    client = apigw(strato)
    api = client.create_rest_api(name="templates")
    api_id, root = api["id"], api["rootResourceId"]

    def method(path_part, parent, http_method, **integration):
        resource = client.create_resource(restApiId=api_id, parentId=parent, pathPart=path_part)
        client.put_method(restApiId=api_id, resourceId=resource["id"], httpMethod=http_method,
                          authorizationType="NONE",
                          requestParameters={"method.request.header.X-Client": False})
        client.put_integration(restApiId=api_id, resourceId=resource["id"], httpMethod=http_method,
                               **integration)
        return resource["id"]

    def respond(resource, http_method, status, pattern=None, **extra):
        client.put_method_response(restApiId=api_id, resourceId=resource, httpMethod=http_method,
                                   statusCode=status)
        client.put_integration_response(restApiId=api_id, resourceId=resource, httpMethod=http_method,
                                        statusCode=status, **({"selectionPattern": pattern} if pattern else {}),
                                        **extra)

    # MOCK: the request template chooses the status, the response template loops.
    pets = client.create_resource(restApiId=api_id, parentId=root, pathPart="pets")
    pet = method("{id}", pets["id"], "GET", type="MOCK", requestTemplates={
        "application/json": '#if($input.params("id") == "0"){"statusCode": 404}#else{"statusCode": 200}#end'})
    respond(pet, "GET", "200", responseTemplates={"application/json": PET_LIST})
    respond(pet, "GET", "404", "404", responseTemplates={
        "application/json": '{"message": "no pet $input.params(\'id\')"}'})
    # NEVER passes nothing through: a content type without a template is 415.
    strict = method("strict", root, "POST", type="MOCK", passthroughBehavior="NEVER",
                    requestTemplates={"application/json": '{"statusCode": 200}'})
    respond(strict, "POST", "200", responseTemplates={"application/json": '{"ok": true}'})
    broken = method("broken", root, "GET", type="MOCK",
                    requestTemplates={"application/json": '#if($input.params("x") {"statusCode": 200}'})
    respond(broken, "GET", "200")
    # HTTP: the rendered body goes to the backend; its status picks the response.
    orders = method("orders", root, "POST", type="HTTP", integrationHttpMethod="POST",
                    uri=f"http://127.0.0.1:{backend}/orders",
                    requestTemplates={"application/json": ORDER_TEMPLATE},
                    requestParameters={"integration.request.header.X-Via": "method.request.header.X-Client",
                                       "integration.request.querystring.src": "'gw'"})
    respond(orders, "POST", "200", responseTemplates={"application/json": (
        '#set($r = $input.path(\'$\'))#set($context.responseOverride.header.X-Count = "$r.got.count")'
        '{"saw": $input.json(\'$.got.names\'), "path": "$r.path", "via": "$r.via", "big": $r.got.big}')},
        responseParameters={"method.response.header.X-Backend": "integration.response.header.X-Backend"})
    respond(orders, "POST", "502", r"5\d{2}", responseTemplates={
        "application/json": '{"backend": "down", "said": "$input.path(\'$.got.names[0]\')"}'})
    client.create_deployment(restApiId=api_id, stageName="prod", variables={"env": "test"})

    status, headers, body = call(strato, api_id, "prod", "/pets/7")
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == [{"n": 1, "pet": "7-1"}, {"n": 2, "pet": "7-2"}, {"n": 3, "pet": "7-3"}]
    status, _, body = call(strato, api_id, "prod", "/pets/0")
    assert (status, json.loads(body)) == (404, {"message": "no pet 0"})

    status, headers, body = call(strato, api_id, "prod", "/strict", "POST", b"hi",
                                 headers={"Content-Type": "text/plain"})
    assert (status, json.loads(body)) == (415, {"message": "Unsupported Media Type"})
    status, _, body = call(strato, api_id, "prod", "/strict", "POST", b"{}",
                           headers={"Content-Type": "application/json"})
    assert (status, json.loads(body)) == (200, {"ok": True})
    status, _, body = call(strato, api_id, "prod", "/broken")
    assert (status, json.loads(body)) == (500, {"message": "Internal server error"})

    order = {"items": [{"name": 'a "quoted" one'}, {"name": "b"}, {"name": "c"}]}
    status, headers, body = call(strato, api_id, "prod", "/orders", "POST", json.dumps(order).encode(),
                                 headers={"Content-Type": "application/json", "X-Client": "cli"})
    assert status == 200, body
    assert json.loads(body) == {"saw": ['a "quoted" one', "b", "c"], "path": "/orders?src=gw",
                                "via": "cli", "big": True}
    assert headers["X-Count"] == "3" and headers["X-Backend"] == "tiny"
    fail = {"items": [{"name": "fail"}], "rush": True}
    status, _, body = call(strato, api_id, "prod", "/orders", "POST", json.dumps(fail).encode(),
                           headers={"Content-Type": "application/json"})
    assert (status, json.loads(body)) == (502, {"backend": "down", "said": "fail"})


def test_lambda_custom_integration_maps_event_answer_and_errors(strato):
    client = apigw(strato)
    function_arn = create_echo_function(strato, "custom")
    api = client.create_rest_api(name="custom")
    api_id = api["id"]
    hello = client.create_resource(restApiId=api_id, parentId=api["rootResourceId"], pathPart="hello")
    client.put_method(restApiId=api_id, resourceId=hello["id"], httpMethod="GET", authorizationType="NONE")
    client.put_integration(
        restApiId=api_id, resourceId=hello["id"], httpMethod="GET", type="AWS", integrationHttpMethod="POST",
        uri=lambda_uri(function_arn), requestTemplates={"application/json": (
            '{"queryStringParameters": {"action": "$util.escapeJavaScript($input.params(\'action\'))"},'
            ' "who": "$input.params(\'name\')", "ip": "$context.identity.sourceIp"}')})
    for status, pattern, template in [
            ("200", None, '#set($answer = $util.parseJson($input.path(\'$.body\')))'
                          '{"hello": "$answer.event.who", "from": "$answer.event.ip",'
                          ' "proxied": $input.json(\'$.statusCode\')}'),
            ("400", "boom.*", '{"error": "$input.path(\'$.errorMessage\')"}')]:
        client.put_method_response(restApiId=api_id, resourceId=hello["id"], httpMethod="GET",
                                   statusCode=status)
        client.put_integration_response(
            restApiId=api_id, resourceId=hello["id"], httpMethod="GET", statusCode=status,
            responseTemplates={"application/json": template}, **({"selectionPattern": pattern} if pattern else {}))
    client.create_deployment(restApiId=api_id, stageName="prod")

    status, _, body = call(strato, api_id, "prod", "/hello?name=ann")
    assert status == 200, body
    assert json.loads(body) == {"hello": "ann", "from": "127.0.0.1", "proxied": 201}
    status, _, body = call(strato, api_id, "prod", "/hello?action=raise")
    assert (status, json.loads(body)) == (400, {"error": "boom"})
