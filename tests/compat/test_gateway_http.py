"""HTTP APIs (`aws apigatewayv2 ...`) and function URLs driven by the real AWS
CLI (v1) and boto3, called over plain HTTP: quick create, routes and their
precedence, payload formats 2.0 and 1.0, HTTP_PROXY with stage variables,
CORS preflight, throttling, Lambda and JWT authorizers, binary bodies, the
error answers, access logs, and function URLs with NONE and AWS_IAM.

The data plane is reached host-style with a `Host: {api-id}.execute-api.localhost`
header on a connection to 127.0.0.1 (Python's resolver does not resolve
`*.localhost`), path-style (`/_strato/execute-api/{api-id}/...`), or with
curl, which resolves `*.localhost` by itself.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import http.server
import json
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import boto3
import pytest
import rsa
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, make_zip, wait_until

ROOT = Path(__file__).resolve().parent.parent.parent
JWT_KEY = ROOT / "crates" / "strato" / "tests" / "fixtures" / "gateway_jwt_rsa.der"

ECHO_FUNCTION = """
import base64, json

def handler(event, context):
    path = event.get('rawPath') or event.get('path') or ''
    if path.endswith('/plain'):
        return {'hello': 'world'}
    if path.endswith('/malformed'):
        return {'statusCode': 'abc'}
    if path.endswith('/crash'):
        raise RuntimeError('boom')
    if path.endswith('/reverse'):
        raw = base64.b64decode(event['body']) if event.get('isBase64Encoded') else (event.get('body') or '').encode()
        return {'statusCode': 200, 'headers': {'content-type': 'application/octet-stream'},
                'body': base64.b64encode(raw[::-1]).decode(), 'isBase64Encoded': True}
    return {'statusCode': 200, 'headers': {'content-type': 'application/json'},
            'body': json.dumps(event)}
"""

AUTHORIZER_FUNCTION = """
def handler(event, context):
    return {'isAuthorized': (event.get('headers') or {}).get('authorization') == 'letmein',
            'context': {'who': 'tester'}}
"""


def apigw(strato):
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    return session.client("apigatewayv2", endpoint_url=strato.endpoint,
                          config=Config(retries={"max_attempts": 0}))


def port_of(strato) -> int:
    return urllib.parse.urlparse(strato.endpoint).port


def call(strato, api_id: str, path: str, method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None, host_style: bool = True):
    """One data-plane request; (status, headers, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port_of(strato), timeout=60)
    headers = dict(headers or {})
    if host_style:
        headers["Host"] = f"{api_id}.execute-api.localhost:{port_of(strato)}"
        target = path
    else:
        target = f"/_strato/execute-api/{api_id}{path}"
    conn.request(method, target, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, resp.headers, data


def create_function(strato, name: str, source: str = ECHO_FUNCTION) -> str:
    client = strato.lambda_client()
    client.create_function(
        FunctionName=name, Runtime="python3.12", Handler="lambda_function.handler", Role=ROLE,
        Code={"ZipFile": make_zip({"lambda_function.py": source})},
    )
    wait_until(lambda: client.get_function_configuration(FunctionName=name)["State"] == "Active",
               f"{name} to become Active", deadline_seconds=120)
    return f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:{name}"


def allow(strato, name: str, api_id: str):
    strato.lambda_client().add_permission(
        FunctionName=name, StatementId=f"apigw-{api_id}", Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{REGION}:{DEFAULT_ACCOUNT}:{api_id}/*")


class Backend:
    """A tiny HTTP backend on 127.0.0.1 that answers with what it received."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                out = json.dumps({"method": self.command, "path": self.path,
                                  "headers": {k.lower(): v for k, v in self.headers.items()},
                                  "body": body.decode("latin-1")}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def backend():
    b = Backend()
    yield b
    b.close()


# ---- control plane ------------------------------------------------------------------------


def test_cli_quick_create_then_curl_after_add_permission(strato):
    """The README's five commands and a curl."""
    arn = create_function(strato, "hello-http")
    api = strato.aws("apigatewayv2", "create-api", "--name", "hello-api", "--protocol-type", "HTTP",
                     "--target", arn).check().json()
    api_id = api["ApiId"]
    assert len(api_id) == 10 and api_id.isalnum() and api_id.lower() == api_id
    assert api["ApiEndpoint"] == f"{strato.endpoint}/_strato/execute-api/{api_id}"
    assert api["ProtocolType"] == "HTTP"
    assert api["RouteSelectionExpression"] == "$request.method $request.path"

    stages = strato.aws("apigatewayv2", "get-stages", "--api-id", api_id).check().json()
    assert [(s["StageName"], s["AutoDeploy"]) for s in stages["Items"]] == [("$default", True)]
    routes = strato.aws("apigatewayv2", "get-routes", "--api-id", api_id).check().json()
    assert [r["RouteKey"] for r in routes["Items"]] == ["$default"]

    # Without the permission the gateway may not invoke the function.
    curl = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", f"{api['ApiEndpoint']}/hello?name=x"]
    out = subprocess.run(curl, capture_output=True, text=True, check=True).stdout
    assert out.rsplit("\n", 1) == ['{"message":"Internal Server Error"}', "500"]

    strato.aws("lambda", "add-permission", "--function-name", "hello-http", "--statement-id", "apigw",
               "--action", "lambda:InvokeFunction", "--principal", "apigateway.amazonaws.com",
               "--source-arn", f"arn:aws:execute-api:{REGION}:{DEFAULT_ACCOUNT}:{api_id}/*").check()
    out = subprocess.run(curl, capture_output=True, text=True, check=True).stdout
    body, status = out.rsplit("\n", 1)
    assert status == "200"
    event = json.loads(body)
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/hello"
    assert event["queryStringParameters"] == {"name": "x"}
    assert event["requestContext"]["apiId"] == api_id

    got = strato.aws("apigatewayv2", "get-api", "--api-id", api_id).check().json()
    assert got["ApiEndpoint"] == api["ApiEndpoint"]
    listed = strato.aws("apigatewayv2", "get-apis").check().json()
    assert [a["ApiId"] for a in listed["Items"]] == [api_id]
    strato.aws("apigatewayv2", "delete-api", "--api-id", api_id).check()
    missing = strato.aws("apigatewayv2", "get-api", "--api-id", api_id)
    assert missing.returncode != 0
    assert "(NotFoundException)" in missing.stderr


def test_boto3_errors_are_apigatewayv2_exceptions(strato):
    client = apigw(strato)
    with pytest.raises(ClientError) as err:
        client.get_api(ApiId="nosuchapi0")
    assert err.value.response["Error"]["Code"] == "NotFoundException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    api = client.create_api(Name="e", ProtocolType="HTTP")
    client.create_route(ApiId=api["ApiId"], RouteKey="GET /a")
    with pytest.raises(ClientError) as err:
        client.create_route(ApiId=api["ApiId"], RouteKey="GET /a")
    assert err.value.response["Error"]["Code"] == "ConflictException"
    with pytest.raises(ClientError) as err:
        client.create_route(ApiId=api["ApiId"], RouteKey="GET /a/{proxy+}/b")
    assert err.value.response["Error"]["Code"] == "BadRequestException"


# ---- data plane ---------------------------------------------------------------------------


def explicit_api(strato, arn: str, payload: str, route_keys: list[str]) -> str:
    client = apigw(strato)
    api_id = client.create_api(Name="explicit", ProtocolType="HTTP")["ApiId"]
    integration = client.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY",
                                            IntegrationUri=arn, PayloadFormatVersion=payload)
    for key in route_keys:
        client.create_route(ApiId=api_id, RouteKey=key,
                            Target=f"integrations/{integration['IntegrationId']}")
    client.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    return api_id


def test_route_precedence_and_payload_2(strato):
    arn = create_function(strato, "routes")
    api_id = explicit_api(strato, arn, "2.0",
                          ["GET /pets/dog/1", "GET /pets/dog/{id}", "GET /pets/{proxy+}",
                           "ANY /{proxy+}", "$default"])
    allow(strato, "routes", api_id)
    for method, path, expected in [("GET", "/pets/dog/1", "GET /pets/dog/1"),
                                   ("GET", "/pets/dog/2", "GET /pets/dog/{id}"),
                                   ("GET", "/pets/cat/1", "GET /pets/{proxy+}"),
                                   ("POST", "/pets/dog/1", "ANY /{proxy+}"),
                                   ("GET", "/", "$default")]:
        status, headers, body = call(strato, api_id, path, method=method)
        assert status == 200, (method, path, body)
        assert json.loads(body)["routeKey"] == expected
        assert headers["apigw-requestid"] and headers["x-amzn-RequestId"]
    status, _, body = call(strato, api_id, "/pets/dog/7", host_style=False)
    assert json.loads(body)["pathParameters"] == {"id": "7"}


def test_payload_1_binary_bodies_and_error_answers(strato):
    arn = create_function(strato, "v1")
    api_id = explicit_api(strato, arn, "1.0", ["ANY /{proxy+}"])
    allow(strato, "v1", api_id)
    status, _, body = call(strato, api_id, "/items?q=1&q=2", headers={"x-h": "v"})
    event = json.loads(body)
    assert event["version"] == "1.0"
    assert event["resource"] == "/{proxy+}"
    assert event["httpMethod"] == "GET"
    assert event["multiValueQueryStringParameters"] == {"q": ["1", "2"]}
    assert event["pathParameters"] == {"proxy": "items"}
    status, headers, body = call(strato, api_id, "/reverse", method="POST", body=bytes([1, 2, 3, 250]),
                                 headers={"content-type": "application/octet-stream"})
    assert status == 200
    assert body == bytes([250, 3, 2, 1])
    for path in ["/crash", "/malformed"]:
        status, _, body = call(strato, api_id, path)
        assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})


def test_http_proxy_with_stage_variables_and_named_stage(strato, backend):
    client = apigw(strato)
    api_id = client.create_api(Name="proxy", ProtocolType="HTTP")["ApiId"]
    integration = client.create_integration(
        ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
        IntegrationUri="http://${stageVariables.host}/v1/{proxy}", PayloadFormatVersion="1.0",
        RequestParameters={"overwrite:header.x-stage": "$context.stage"})
    client.create_route(ApiId=api_id, RouteKey="ANY /{proxy+}",
                        Target=f"integrations/{integration['IntegrationId']}")
    client.create_stage(ApiId=api_id, StageName="beta",
                        StageVariables={"host": f"127.0.0.1:{backend.port}"})
    deployment = client.create_deployment(ApiId=api_id, StageName="beta")
    assert client.get_stage(ApiId=api_id, StageName="beta")["DeploymentId"] == deployment["DeploymentId"]
    status, _, body = call(strato, api_id, "/beta/things/1?x=y", method="POST", body=b"hi")
    assert status == 200, body
    seen = json.loads(body)
    assert seen["method"] == "POST"
    assert seen["path"] == "/v1/things/1?x=y"
    assert seen["body"] == "hi"
    assert seen["headers"]["x-stage"] == "beta"


def test_cors_preflight_and_throttling(strato, backend):
    client = apigw(strato)
    api = client.create_api(Name="cors", ProtocolType="HTTP", Target=f"http://127.0.0.1:{backend.port}/",
                            CorsConfiguration={"AllowOrigins": ["https://app.example"],
                                               "AllowMethods": ["GET", "PUT"], "MaxAge": 60})
    api_id = api["ApiId"]
    status, headers, _ = call(strato, api_id, "/x", method="OPTIONS",
                              headers={"origin": "https://app.example",
                                       "access-control-request-method": "PUT"})
    assert status == 204
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-allow-methods"] == "GET,PUT"
    assert headers["access-control-max-age"] == "60"
    client.delete_cors_configuration(ApiId=api_id)
    assert "CorsConfiguration" not in client.get_api(ApiId=api_id)
    status, headers, _ = call(strato, api_id, "/x", method="OPTIONS",
                              headers={"origin": "https://app.example",
                                       "access-control-request-method": "PUT"})
    assert "access-control-allow-origin" not in headers

    # Rate 0.001/s, burst 2: exactly two requests pass, whatever the timing.
    client.update_stage(ApiId=api_id, StageName="$default",
                        DefaultRouteSettings={"ThrottlingRateLimit": 0.001, "ThrottlingBurstLimit": 2})
    statuses = [call(strato, api_id, "/y")[0] for _ in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
    status, _, body = call(strato, api_id, "/y")
    assert (status, json.loads(body)) == (429, {"message": "Too Many Requests"})


def test_lambda_authorizer_with_simple_responses(strato, backend):
    client = apigw(strato)
    authorizer_arn = create_function(strato, "authz", AUTHORIZER_FUNCTION)
    api = client.create_api(Name="authz", ProtocolType="HTTP",
                            Target=f"http://127.0.0.1:{backend.port}/")
    api_id = api["ApiId"]
    allow(strato, "authz", api_id)
    authorizer = client.create_authorizer(
        ApiId=api_id, Name="simple", AuthorizerType="REQUEST",
        AuthorizerUri=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{authorizer_arn}/invocations",
        AuthorizerPayloadFormatVersion="2.0", EnableSimpleResponses=True,
        IdentitySource=["$request.header.Authorization"])
    route = client.get_routes(ApiId=api_id)["Items"][0]
    client.update_route(ApiId=api_id, RouteId=route["RouteId"], AuthorizationType="CUSTOM",
                        AuthorizerId=authorizer["AuthorizerId"])
    assert call(strato, api_id, "/a")[0] == 401
    assert call(strato, api_id, "/a", headers={"authorization": "wrong"})[0] == 403
    status, _, body = call(strato, api_id, "/a", headers={"authorization": "letmein"})
    assert status == 200, body


def jwt_for(key: rsa.PrivateKey, claims: dict) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    header = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = rsa.sign(f"{header}.{payload}".encode(), key, "SHA-256")
    return f"{header}.{payload}.{b64(signature)}"


def test_jwt_authorizer_with_jwks_from_the_issuer(strato, backend):
    key = rsa.PrivateKey.load_pkcs1(JWT_KEY.read_bytes(), format="DER")

    def b64int(n: int) -> str:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    class Issuer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            docs = {"/.well-known/openid-configuration": {"issuer": base, "jwks_uri": f"{base}/keys"},
                    "/keys": {"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
                                        "n": b64int(key.n), "e": b64int(key.e)}]}}
            out = json.dumps(docs.get(self.path, {})).encode()
            self.send_response(200 if self.path in docs else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    issuer_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Issuer)
    threading.Thread(target=issuer_server.serve_forever, daemon=True).start()
    issuer = f"http://127.0.0.1:{issuer_server.server_address[1]}"
    try:
        client = apigw(strato)
        api_id = client.create_api(Name="jwt", ProtocolType="HTTP",
                                   Target=f"http://127.0.0.1:{backend.port}/")["ApiId"]
        authorizer = client.create_authorizer(
            ApiId=api_id, Name="jwt", AuthorizerType="JWT",
            IdentitySource=["$request.header.Authorization"],
            JwtConfiguration={"Issuer": issuer, "Audience": ["app"]})
        route = client.get_routes(ApiId=api_id)["Items"][0]
        client.update_route(ApiId=api_id, RouteId=route["RouteId"], AuthorizationType="JWT",
                            AuthorizerId=authorizer["AuthorizerId"])
        now = int(time.time())
        good = jwt_for(key, {"iss": issuer, "aud": "app", "sub": "u", "exp": now + 300})
        wrong_aud = jwt_for(key, {"iss": issuer, "aud": "other", "sub": "u", "exp": now + 300})
        assert call(strato, api_id, "/x")[0] == 401
        assert call(strato, api_id, "/x", headers={"authorization": f"Bearer {wrong_aud}"})[0] == 401
        status, _, body = call(strato, api_id, "/x", headers={"authorization": f"Bearer {good}"})
        assert status == 200, body
    finally:
        issuer_server.shutdown()


def test_stage_access_logs_reach_the_logs_api(strato, backend):
    client = apigw(strato)
    api_id = client.create_api(Name="logs", ProtocolType="HTTP",
                               Target=f"http://127.0.0.1:{backend.port}/")["ApiId"]
    client.update_stage(ApiId=api_id, StageName="$default", AccessLogSettings={
        "DestinationArn": f"arn:aws:logs:{REGION}:{DEFAULT_ACCOUNT}:log-group:api-access",
        "Format": "$context.requestId $context.httpMethod $context.routeKey $context.status"})
    status, headers, _ = call(strato, api_id, "/logged")
    assert status == 200
    request_id = headers["apigw-requestid"]

    def logged():
        out = strato.aws("logs", "filter-log-events", "--log-group-name", "api-access")
        return out.returncode == 0 and out.json()["events"]

    events = wait_until(logged, "the access log line")
    assert [e["message"] for e in events] == [f"{request_id} GET $default 200"]


# ---- function URLs ------------------------------------------------------------------------


def url_call(strato, url: str, path: str = "/", headers: dict[str, str] | None = None):
    """GET `path` under a function URL, as handed out."""
    parsed = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    all_headers = {"Host": parsed.netloc, **(headers or {})}
    conn.request("GET", parsed.path.rstrip("/") + path, headers=all_headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def test_function_url_auth_none_follows_the_resource_policy(strato):
    create_function(strato, "public-fn")
    created = strato.aws("lambda", "create-function-url-config", "--function-name", "public-fn",
                         "--auth-type", "NONE").check().json()
    url = created["FunctionUrl"]
    assert url.startswith(f"{strato.endpoint}/_strato/lambda-url/") and url.endswith("/")
    assert created["AuthType"] == "NONE"
    assert call_status(strato, url) == 403
    strato.aws("lambda", "add-permission", "--function-name", "public-fn", "--statement-id", "url",
               "--action", "lambda:InvokeFunctionUrl", "--principal", "*",
               "--function-url-auth-type", "NONE").check()
    strato.aws("lambda", "add-permission", "--function-name", "public-fn", "--statement-id", "invoke",
               "--action", "lambda:InvokeFunction", "--principal", "*").check()
    status, body = url_call(strato, url, "/some/path?a=b")
    assert status == 200, body
    event = json.loads(body)
    assert event["rawPath"] == "/some/path"
    assert event["rawQueryString"] == "a=b"
    # curl reaches the URL as it was handed out.
    out = subprocess.run(["curl", "-s", f"{url}plain"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {"hello": "world"}
    listed = strato.aws("lambda", "list-function-url-configs", "--function-name", "public-fn").check().json()
    assert [c["FunctionUrl"] for c in listed["FunctionUrlConfigs"]] == [url]
    updated = strato.aws("lambda", "update-function-url-config", "--function-name", "public-fn",
                         "--auth-type", "AWS_IAM").check().json()
    assert updated["AuthType"] == "AWS_IAM"
    assert call_status(strato, url) == 403
    strato.aws("lambda", "delete-function-url-config", "--function-name", "public-fn").check()
    missing = strato.aws("lambda", "get-function-url-config", "--function-name", "public-fn")
    assert missing.returncode != 0 and "(ResourceNotFoundException)" in missing.stderr


def call_status(strato, url: str) -> int:
    return url_call(strato, url)[0]


def test_function_url_aws_iam_takes_sigv4_signed_requests(strato):
    create_function(strato, "iam-fn")
    url = strato.lambda_client().create_function_url_config(
        FunctionName="iam-fn", AuthType="AWS_IAM")["FunctionUrl"]
    assert call_status(strato, url) == 403
    target = f"{url}signed"
    request = AWSRequest(method="GET", url=target, headers={})
    SigV4Auth(Credentials("test", "test"), "lambda", REGION).add_auth(request)
    status, body = url_call(strato, url, "/signed", headers=dict(request.headers.items()))
    assert status == 200, body
    event = json.loads(body)
    assert event["requestContext"]["authorizer"]["iam"]["accountId"] == DEFAULT_ACCOUNT


def test_readme_http_api_section_runs_verbatim(strato, tmp_path):
    """The README's HTTP API and function URL commands, run as written (only
    the port is substituted)."""
    import re
    text = (ROOT / "README.md").read_text()
    section = text.split("## HTTP APIs and function URLs", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    script = "set -euo pipefail\n" + "\n".join(blocks)
    script = script.replace(":9000", f":{port_of(strato)}")
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=strato.env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert '{"message":"Hello from /hello"}' in proc.stdout
    assert '{"message":"Hello from /from-a-url"}' in proc.stdout
    assert f"/_strato/execute-api/" in proc.stdout
