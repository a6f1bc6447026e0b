"""The Lambda operations beyond functions and invocations, with boto3: code signing
configurations, recursion and runtime management configurations, and InvokeAsync.

Answers are compared whole with the shapes AWS recorded (`lambda-responses.md` in the
shared reference), after `masked` replaces what differs between runs and accounts: ARNs'
partition, region and account, generated ids, dates and runtime build hashes. Every
validation path answers AWS's validation error, never a 500.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, RUNTIMES_DIR, make_zip

SIGNING_PROFILE = f"arn:aws:signer:{REGION}:{DEFAULT_ACCOUNT}:/signing-profiles/test"
HANDLER = 'exports.handler = async (event) => ({ got: event });\n'


def masked(value, names: dict[str, str] | None = None):
    """`value` with the volatile parts written as the reference writes them: the ARN
    partition and region, the account (111111111111), `csc-` ids (`<resource:1>`), runtime
    build hashes (`<resource:2>`), Lambda timestamps (`date`) and the function names in
    `names` (`<function-name:1>`, ...)."""
    names = names or {}
    if isinstance(value, dict):
        return {k: masked(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, names) for v in value]
    if not isinstance(value, str):
        return value
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", value):
        return "date"
    value = value.replace("arn:aws:", "arn:<partition>:").replace(REGION, "<region>")
    value = value.replace(DEFAULT_ACCOUNT, "111111111111")
    value = re.sub(r"csc-[a-z0-9]{17}", "<resource:1>", value)
    value = re.sub(r"::runtime:[0-9a-f]{64}", "::runtime:<resource:2>", value)
    for name, placeholder in names.items():
        value = re.sub(rf"\b{re.escape(name)}\b", placeholder, value)
    return value


def answer(response: dict) -> dict:
    """A boto3 answer without its ResponseMetadata."""
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def status(response: dict) -> int:
    return response["ResponseMetadata"]["HTTPStatusCode"]


def raw(strato, method: str, path: str, body=None) -> tuple[int, dict]:
    """A signed request with any body (boto3 would refuse the malformed ones first)."""
    data = None if body is None else (body if isinstance(body, str) else json.dumps(body))
    request = AWSRequest(method=method, url=strato.endpoint + path, data=data,
                         headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("test", "test"), "lambda", REGION).add_auth(request)
    prepared = urllib.request.Request(request.url, data=data.encode() if data else None,
                                      headers=dict(request.headers.items()), method=method)
    try:
        with urllib.request.urlopen(prepared, timeout=30) as resp:
            text = resp.read()
            return resp.status, json.loads(text) if text else {}
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, {"__type": e.headers.get("x-amzn-ErrorType"), **(json.loads(text) if text else {})}


def deploy(client, name: str, **extra):
    out = client.create_function(
        FunctionName=name, Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
        Code={"ZipFile": make_zip({"index.js": HANDLER})}, **extra)
    client.get_waiter("function_active_v2").wait(FunctionName=name)
    return out


def create_csc(client, policy: str = "Enforce") -> dict:
    return client.create_code_signing_config(
        Description="Testing CodeSigning Config",
        AllowedPublishers={"SigningProfileVersionArns": [SIGNING_PROFILE]},
        CodeSigningPolicies={"UntrustedArtifactOnDeployment": policy},
    )


RECORDED_CSC = {
    "CodeSigningConfig": {
        "AllowedPublishers": {
            "SigningProfileVersionArns": [
                "arn:<partition>:signer:<region>:111111111111:/signing-profiles/test"
            ]
        },
        "CodeSigningConfigArn": "arn:<partition>:lambda:<region>:111111111111:code-signing-config:<resource:1>",
        "CodeSigningConfigId": "<resource:1>",
        "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Enforce"},
        "Description": "Testing CodeSigning Config",
        "LastModified": "date",
    }
}


def test_code_signing_config_answers_are_aws_shapes(strato):
    client = strato.lambda_client()
    created = create_csc(client)
    assert status(created) == 201
    assert masked(answer(created)) == RECORDED_CSC
    arn = created["CodeSigningConfig"]["CodeSigningConfigArn"]

    got = client.get_code_signing_config(CodeSigningConfigArn=arn)
    assert status(got) == 200
    assert masked(answer(got)) == RECORDED_CSC
    listed = client.list_code_signing_configs()
    assert masked(answer(listed)) == {"CodeSigningConfigs": [RECORDED_CSC["CodeSigningConfig"]]}

    updated = client.update_code_signing_config(
        CodeSigningConfigArn=arn, CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Warn"})
    assert updated["CodeSigningConfig"]["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Warn"}
    assert updated["CodeSigningConfig"]["Description"] == "Testing CodeSigning Config"

    deploy(client, "csc-fn")
    put = client.put_function_code_signing_config(CodeSigningConfigArn=arn, FunctionName="csc-fn")
    assert status(put) == 200
    recorded_binding = {
        "CodeSigningConfigArn": "arn:<partition>:lambda:<region>:111111111111:code-signing-config:<resource:1>",
        "FunctionName": "<function-name:1>",
    }
    assert masked(answer(put), {"csc-fn": "<function-name:1>"}) == recorded_binding
    got = client.get_function_code_signing_config(FunctionName="csc-fn")
    assert masked(answer(got), {"csc-fn": "<function-name:1>"}) == recorded_binding
    users = client.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)
    assert masked(answer(users), {"csc-fn": "<function-name:1>"}) == {
        "FunctionArns": ["arn:<partition>:lambda:<region>:111111111111:function:<function-name:1>"]
    }

    with pytest.raises(ClientError) as in_use:
        client.delete_code_signing_config(CodeSigningConfigArn=arn)
    assert in_use.value.response["Error"]["Code"] == "ResourceConflictException"

    deleted = client.delete_function_code_signing_config(FunctionName="csc-fn")
    assert status(deleted) == 204
    assert client.get_function_code_signing_config(FunctionName="csc-fn")["CodeSigningConfigArn"] == ""
    assert status(client.delete_code_signing_config(CodeSigningConfigArn=arn)) == 204

    with pytest.raises(ClientError) as gone:
        client.get_code_signing_config(CodeSigningConfigArn=arn)
    error = gone.value.response
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert error["Message"] == f"The Lambda code signing configuration {arn} can not be found."
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404

    with pytest.raises(ClientError) as missing:
        client.put_function_code_signing_config(CodeSigningConfigArn=arn, FunctionName="csc-fn")
    error = missing.value.response
    assert error["Error"]["Code"] == "CodeSigningConfigNotFoundException"
    assert error["Message"] == (
        "The code signing configuration cannot be found. Check that the provided configuration "
        f"is not deleted: {arn}.")


def test_enforce_refuses_unsigned_code_and_warn_accepts_it(strato):
    client = strato.lambda_client()
    arn = create_csc(client, "Enforce")["CodeSigningConfig"]["CodeSigningConfigArn"]
    with pytest.raises(ClientError) as refused:
        deploy(client, "enforced", CodeSigningConfigArn=arn)
    error = refused.value.response
    assert error["Error"]["Code"] == "CodeVerificationFailedException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Message"] == (
        "Lambda cannot deploy the function. The function or layer might be signed using a "
        "signature that the client is not configured to accept. Check the provided signature "
        "for enforced.")

    client.update_code_signing_config(
        CodeSigningConfigArn=arn, CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Warn"})
    deploy(client, "warned", CodeSigningConfigArn=arn)
    assert client.get_function_code_signing_config(FunctionName="warned")["CodeSigningConfigArn"] == arn
    assert "unsigned code deployed under a code signing configuration set to Warn" in strato.log()

    client.update_code_signing_config(
        CodeSigningConfigArn=arn, CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Enforce"})
    with pytest.raises(ClientError) as update:
        client.update_function_code(FunctionName="warned", ZipFile=make_zip({"index.js": HANDLER + "//2\n"}))
    assert update.value.response["Error"]["Code"] == "CodeVerificationFailedException"


def test_recursion_config_answers_are_aws_shapes(strato):
    client = strato.lambda_client()
    deploy(client, "recursive")
    assert answer(client.get_function_recursion_config(FunctionName="recursive")) == {
        "RecursiveLoop": "Terminate"}
    put = client.put_function_recursion_config(FunctionName="recursive", RecursiveLoop="Allow")
    assert status(put) == 200
    assert answer(put) == {"RecursiveLoop": "Allow"}
    assert answer(client.get_function_recursion_config(FunctionName="recursive")) == {
        "RecursiveLoop": "Allow"}
    with pytest.raises(ClientError) as missing:
        client.get_function_recursion_config(FunctionName="nope")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_runtime_versions_and_runtime_management(strato):
    client = strato.lambda_client()
    created = deploy(client, "managed")
    runtime_arn = created["RuntimeVersionConfig"]["RuntimeVersionArn"]
    assert re.fullmatch(rf"arn:aws:lambda:{REGION}::runtime:[0-9a-f]{{64}}", runtime_arn)
    config = client.get_function_configuration(FunctionName="managed")
    assert config["RuntimeVersionConfig"] == {"RuntimeVersionArn": runtime_arn}
    # The build is the one `strato runtimes list` shows for the runtime.
    listing = subprocess.run(
        [str(strato.binary), "runtimes", "list", "--runtimes-dir", str(RUNTIMES_DIR)],
        capture_output=True, text=True, check=True, env=strato.env).stdout
    assert f"build {runtime_arn.rsplit(':', 1)[1]}" in listing

    function_arn = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:managed"
    assert answer(client.get_runtime_management_config(FunctionName="managed")) == {
        "UpdateRuntimeOn": "Auto", "FunctionArn": function_arn}
    pinned = client.put_runtime_management_config(
        FunctionName="managed", UpdateRuntimeOn="Manual", RuntimeVersionArn=runtime_arn)
    assert answer(pinned) == {
        "UpdateRuntimeOn": "Manual", "FunctionArn": function_arn, "RuntimeVersionArn": runtime_arn}
    assert answer(client.get_runtime_management_config(FunctionName="managed")) == answer(pinned)
    back = client.put_runtime_management_config(FunctionName="managed", UpdateRuntimeOn="FunctionUpdate")
    assert answer(back) == {"UpdateRuntimeOn": "FunctionUpdate", "FunctionArn": function_arn}

    unknown = f"arn:aws:lambda:{REGION}::runtime:{'0' * 64}"
    with pytest.raises(ClientError) as refused:
        client.put_runtime_management_config(
            FunctionName="managed", UpdateRuntimeOn="Manual", RuntimeVersionArn=unknown)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_invoke_async_queues_an_event(strato):
    client = strato.lambda_client()
    deploy(client, "old-style")
    out = client.invoke_async(FunctionName="old-style", InvokeArgs=b'{"a": 1}')
    assert status(out) == 202
    assert answer(out) == {"Status": 202}
    with pytest.raises(ClientError) as bad:
        client.invoke_async(FunctionName="old-style", InvokeArgs=b"not json")
    assert bad.value.response["Error"]["Code"] == "InvalidRequestContentException"
    with pytest.raises(ClientError) as missing:
        client.invoke_async(FunctionName="nope", InvokeArgs=b"{}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


CSC_PATH = "/2020-04-22/code-signing-configs"
ONE_PROFILE = {"SigningProfileVersionArns": [SIGNING_PROFILE]}


def v(message: str) -> tuple[int, str, str]:
    return 400, "ValidationException", "1 validation error detected: " + message


BAD_INPUT = [
    # (method, path, body, status, code, message or None for "any")
    ("POST", CSC_PATH, {}, *v(
        "Value null at 'allowedPublishers' failed to satisfy constraint: Member must not be null")),
    ("POST", CSC_PATH, {"AllowedPublishers": {}}, *v(
        "Value null at 'allowedPublishers.signingProfileVersionArns' failed to satisfy constraint: "
        "Member must not be null")),
    ("POST", CSC_PATH, {"AllowedPublishers": {"SigningProfileVersionArns": []}}, *v(
        "Value '[]' at 'allowedPublishers.signingProfileVersionArns' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1")),
    ("POST", CSC_PATH, {"AllowedPublishers": {"SigningProfileVersionArns": [SIGNING_PROFILE] * 21}},
     400, "ValidationException", None),
    ("POST", CSC_PATH, {"AllowedPublishers": ONE_PROFILE, "Description": "d" * 257},
     400, "ValidationException", None),
    ("POST", CSC_PATH, {"AllowedPublishers": ONE_PROFILE,
                        "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Block"}}, *v(
        "Value 'Block' at 'codeSigningPolicies.untrustedArtifactOnDeployment' failed to satisfy "
        "constraint: Member must satisfy enum value set: [Warn, Enforce]")),
    ("POST", CSC_PATH, {"AllowedPublishers": "everyone"}, 400, "SerializationException", None),
    ("POST", CSC_PATH, {"AllowedPublishers": ONE_PROFILE, "Description": 7},
     400, "SerializationException", None),
    ("GET", CSC_PATH + "/csc-nope", None, 400, "ValidationException", None),
    ("PUT", CSC_PATH + "/" + "a" * 201, {}, 400, "ValidationException", None),
    ("PUT", "/2024-08-31/functions/fn/recursion-config", {}, *v(
        "Value null at 'recursiveLoop' failed to satisfy constraint: Member must not be null")),
    ("PUT", "/2024-08-31/functions/fn/recursion-config", {"RecursiveLoop": "InvalidValue"}, *v(
        "Value 'InvalidValue' at 'recursiveLoop' failed to satisfy constraint: Member must "
        "satisfy enum value set: [Terminate, Allow]")),
    ("PUT", "/2024-08-31/functions/fn/recursion-config", {"RecursiveLoop": 5},
     400, "SerializationException", None),
    ("PUT", "/2024-08-31/functions/" + "f" * 141 + "/recursion-config", {"RecursiveLoop": "Allow"},
     400, "ValidationException", None),
    ("PUT", "/2021-07-20/functions/fn/runtime-management-config", {}, *v(
        "Value null at 'updateRuntimeOn' failed to satisfy constraint: Member must not be null")),
    ("PUT", "/2021-07-20/functions/fn/runtime-management-config", {"UpdateRuntimeOn": "Never"}, *v(
        "Value 'Never' at 'updateRuntimeOn' failed to satisfy constraint: Member must satisfy "
        "enum value set: [Auto, Manual, FunctionUpdate]")),
    ("PUT", "/2021-07-20/functions/fn/runtime-management-config",
     {"UpdateRuntimeOn": "Manual", "RuntimeVersionArn": "r" * 2049}, 400, "ValidationException", None),
    ("PUT", "/2021-07-20/functions/fn/runtime-management-config", {"UpdateRuntimeOn": ["Auto"]},
     400, "SerializationException", None),
    ("PUT", "/2020-06-30/functions/fn/code-signing-config", {}, *v(
        "Value null at 'codeSigningConfigArn' failed to satisfy constraint: Member must not be null")),
    ("PUT", "/2020-06-30/functions/fn/code-signing-config", {"CodeSigningConfigArn": "csc-1"},
     400, "ValidationException", None),
    ("PUT", "/2020-06-30/functions/fn/code-signing-config", {"CodeSigningConfigArn": 1},
     400, "SerializationException", None),
    ("POST", "/2014-11-13/functions/fn/invoke-async", "{not json", 400, "InvalidRequestContentException", None),
]


@pytest.mark.parametrize("method,path,body,code_status,code,message", BAD_INPUT)
def test_bad_input_answers_aws_validation_errors(strato, method, path, body, code_status, code, message):
    got_status, got = raw(strato, method, path, body)
    assert got_status == code_status, got
    assert got["__type"].split(":")[0] == code, got
    text = got.get("message", got.get("Message"))
    assert text, got
    if message is not None:
        assert text == message, got
