"""The URLs Strato hands out (FunctionUrl, ApiEndpoint) work, exactly as
boto3 returns them, from Python requests and urllib, Node's fetch, Java's
HttpClient and Go's net/http — none of which resolve `*.localhost` — and the
function sees the event AWS would send for its host-style URL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request

import boto3
import pytest

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, make_zip, wait_until

ECHO = """
import json

def handler(event, context):
    return {'statusCode': 200, 'headers': {'Content-Type': 'application/json'},
            'body': json.dumps(event)}
"""

NODE_FETCH = """
const res = await fetch(process.argv[2]);
process.stdout.write(`${res.status}\\n${await res.text()}`);
"""

JAVA_CLIENT = """
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class Fetch {
    public static void main(String[] args) throws Exception {
        HttpResponse<String> res = HttpClient.newHttpClient().send(
            HttpRequest.newBuilder(URI.create(args[0])).build(), HttpResponse.BodyHandlers.ofString());
        System.out.print(res.statusCode() + "\\n" + res.body());
    }
}
"""

GO_CLIENT = """
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	res, err := http.Get(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	body, _ := io.ReadAll(res.Body)
	fmt.Printf("%d\\n%s", res.StatusCode, body)
}
"""


def create_echo(strato, name: str) -> str:
    client = strato.lambda_client()
    client.create_function(FunctionName=name, Runtime="python3.12", Handler="lambda_function.handler",
                           Role=ROLE, Code={"ZipFile": make_zip({"lambda_function.py": ECHO})})
    wait_until(lambda: client.get_function_configuration(FunctionName=name)["State"] == "Active",
               f"{name} to become Active", deadline_seconds=120)
    return f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:{name}"


def public_function_url(strato, name: str) -> str:
    client = strato.lambda_client()
    create_echo(strato, name)
    url = client.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    client.add_permission(FunctionName=name, StatementId="url", Action="lambda:InvokeFunctionUrl",
                          Principal="*", FunctionUrlAuthType="NONE")
    client.add_permission(FunctionName=name, StatementId="invoke", Action="lambda:InvokeFunction",
                          Principal="*", InvokedViaFunctionUrl=True)
    return url


def fetchers(tmp_path):
    """(name, argv prefix) of each client available here; the URL is the last argument."""
    found = []
    requests_dir = tmp_path / "requests"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                          "--target", str(requests_dir), "requests"], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import requests; "
              "r = requests.get(sys.argv[2], timeout=60); print(r.status_code); print(r.text, end='')")
    found.append(("python-requests", [sys.executable, "-c", script, str(requests_dir)]))
    script = ("import sys, urllib.request; r = urllib.request.urlopen(sys.argv[1], timeout=60); "
              "print(r.status); print(r.read().decode(), end='')")
    found.append(("python-urllib", [sys.executable, "-c", script]))
    if shutil.which("node"):
        (tmp_path / "fetch.mjs").write_text(NODE_FETCH)
        found.append(("node-fetch", ["node", str(tmp_path / "fetch.mjs")]))
    if shutil.which("java"):
        (tmp_path / "Fetch.java").write_text(JAVA_CLIENT)
        found.append(("java-httpclient", ["java", str(tmp_path / "Fetch.java")]))
    if shutil.which("go"):
        (tmp_path / "fetch.go").write_text(GO_CLIENT)
        build = subprocess.run(["go", "build", "-o", str(tmp_path / "gofetch"), str(tmp_path / "fetch.go")],
                               capture_output=True, text=True, cwd=tmp_path,
                               env={**os.environ, "GO111MODULE": "off"})
        assert build.returncode == 0, build.stderr
        found.append(("go-net-http", [str(tmp_path / "gofetch")]))
    return found


def fetch(argv: list[str], url: str) -> tuple[int, dict]:
    proc = subprocess.run([*argv, url], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"{argv[0]}: {proc.stderr}"
    status, body = proc.stdout.split("\n", 1)
    return int(status), json.loads(body)


def test_handed_out_urls_work_from_every_client(strato, tmp_path):
    url = public_function_url(strato, "url-everywhere")
    assert url.startswith(f"{strato.endpoint}/_strato/lambda-url/") and url.endswith("/")
    url_id = url.rstrip("/").rsplit("/", 1)[1]

    apigw = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                  region_name=REGION).client("apigatewayv2", endpoint_url=strato.endpoint)
    arn = create_echo(strato, "api-everywhere")
    api = apigw.create_api(Name="everywhere", ProtocolType="HTTP", Target=arn)
    endpoint = api["ApiEndpoint"]
    assert endpoint == f"{strato.endpoint}/_strato/execute-api/{api['ApiId']}"
    strato.lambda_client().add_permission(
        FunctionName="api-everywhere", StatementId="apigw", Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{REGION}:{DEFAULT_ACCOUNT}:{api['ApiId']}/*")

    clients = fetchers(tmp_path)
    assert [name for name, _ in clients][:2] == ["python-requests", "python-urllib"]
    for name, argv in clients:
        status, event = fetch(argv, f"{url}items/7?x=1")
        assert status == 200, (name, event)
        assert event["rawPath"] == "/items/7", name
        assert event["rawQueryString"] == "x=1", name
        assert event["requestContext"]["domainName"] == f"{url_id}.lambda-url.{REGION}.localhost", name
        assert event["requestContext"]["domainPrefix"] == url_id, name
        assert event["requestContext"]["http"]["path"] == "/items/7", name

        status, event = fetch(argv, f"{endpoint}/hello")
        assert status == 200, (name, event)
        assert event["rawPath"] == "/hello", name
        assert event["requestContext"]["stage"] == "$default", name
        assert event["requestContext"]["domainName"] == f"{api['ApiId']}.execute-api.localhost", name


@pytest.mark.strato_args("--url-style", "host")
def test_host_style_urls_keep_aws_shape(strato):
    url = public_function_url(strato, "url-host-style")
    port = strato.endpoint.rsplit(":", 1)[1]
    assert url.startswith("http://") and url.endswith(f".lambda-url.{REGION}.localhost:{port}/")
    # Python does not resolve *.localhost: reach it through its Host header.
    request = urllib.request.Request(f"{strato.endpoint}/deep/path",
                                     headers={"Host": url.split("/")[2]})
    event = json.loads(urllib.request.urlopen(request, timeout=60).read())
    assert event["rawPath"] == "/deep/path"
    assert event["requestContext"]["domainName"] == url.split("/")[2].split(":")[0]


@pytest.mark.strato_args("--public-url", "http://strato.test:8080")
def test_a_public_url_is_the_base_of_handed_out_urls(strato):
    url = public_function_url(strato, "url-public-base")
    assert url.startswith("http://strato.test:8080/_strato/lambda-url/")
