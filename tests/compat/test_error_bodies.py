"""Lambda error bodies exactly as AWS sends them (../shared/reference/lambda-errors.txt):
`Message` for ResourceNotFoundException (what botocore and the Java and Go SDKs read as the
modeled member), `message` for the others, and the validation texts with AWS's current
patterns. Whole bodies are compared, read raw off the wire."""

from __future__ import annotations

import http.client
import json
import urllib.parse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, make_zip, wait_until


def raw(strato, method: str, path: str, body: dict | None = None):
    """A SigV4-signed Lambda request; (status, x-amzn-ErrorType, JSON body)."""
    url = f"{strato.endpoint}{path}"
    data = json.dumps(body).encode() if body is not None else b""
    request = AWSRequest(method=method, url=url, data=data,
                         headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("test", "test"), "lambda", REGION).add_auth(request)
    parsed = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    conn.request(method, target, body=data, headers=dict(request.headers.items()))
    resp = conn.getresponse()
    result = (resp.status, resp.headers.get("x-amzn-ErrorType"), json.loads(resp.read()))
    conn.close()
    return result


def test_not_found_carries_a_capitalized_message(strato):
    arn = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:nowhere"
    assert raw(strato, "GET", "/2015-03-31/functions/nowhere") == (
        404, "ResourceNotFoundException",
        {"Type": "User", "Message": f"Function not found: {arn}"})
    # botocore hands the modeled member on.
    client = strato.lambda_client()
    try:
        client.get_function(FunctionName="nowhere")
        raise AssertionError("found")
    except client.exceptions.ResourceNotFoundException as e:
        assert e.response["Error"]["Message"] == f"Function not found: {arn}"
        assert e.response["Message"] == f"Function not found: {arn}"


def test_other_errors_carry_a_lowercase_message(strato):
    client = strato.lambda_client()
    client.create_function(FunctionName="twice", Runtime="python3.12", Handler="f.handler", Role=ROLE,
                           Code={"ZipFile": make_zip({"f.py": "def handler(e, c):\n    return 1\n"})})
    wait_until(lambda: client.get_function_configuration(FunctionName="twice")["State"] == "Active",
               "twice to become Active", deadline_seconds=120)
    status, error_type, body = raw(strato, "POST", "/2015-03-31/functions", {
        "FunctionName": "twice", "Runtime": "python3.12", "Handler": "f.handler", "Role": ROLE,
        "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}})
    assert (status, error_type) == (409, "ResourceConflictException")
    assert body == {"Type": "User", "message": "Function already exist: twice"}


def test_validation_texts_quote_aws_current_patterns(strato):
    status, error_type, body = raw(
        strato, "GET", "/2015-03-31/functions/f/configuration?Qualifier=invalid-qualifier-with-%3F-char")
    assert (status, error_type) == (400, "ValidationException")
    assert body == {"message": (
        "1 validation error detected: Value 'invalid-qualifier-with-?-char' at 'qualifier' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: "
        "\\$(LATEST(\\.PUBLISHED)?)|[a-zA-Z0-9-_$]+")}
    # A function URL is never on $LATEST nor on a version number.
    for qualifier in ("$LATEST", "2"):
        status, error_type, body = raw(
            strato, "POST", f"/2021-10-31/functions/f/url?Qualifier={urllib.parse.quote(qualifier)}",
            {"AuthType": "NONE"})
        assert (status, error_type) == (400, "ValidationException")
        assert body == {"message": (
            f"1 validation error detected: Value '{qualifier}' at 'qualifier' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)")}
    arn = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:foobar:thing"
    status, error_type, body = raw(strato, "POST", f"/2017-03-31/tags/{urllib.parse.quote(arn, safe='')}",
                                   {"Tags": {"a": "b"}})
    assert (status, error_type) == (400, "ValidationException")
    assert body == {"message": (
        f"1 validation error detected: Value '{arn}' at 'resource' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}"
        "((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:(function:[a-zA-Z0-9-_]+(:(\\$LATEST|"
        "[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|code-signing-config:csc-[a-z0-9]{17}|"
        "event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
        "[0-9a-fA-F]{12}|capacity-provider:[a-zA-Z0-9-_]+)")}
