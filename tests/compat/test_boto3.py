"""The Lambda control plane driven by boto3 (botocore's real models and parsers)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.error
import urllib.request

import botocore.exceptions
import pytest

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, make_zip, slow_to_unpack_zip, wait_until

ARN_PREFIX = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:"


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def create(client, name, package=None, **extra):
    params = dict(
        FunctionName=name,
        # Runtimes that need nothing beyond this machine (Strato checks the
        # host can run a function's runtime).
        Runtime="nodejs20.x",
        Handler="index.handler",
        Role=ROLE,
        Code={"ZipFile": make_zip() if package is None else package},
    )
    params.update(extra)
    return client.create_function(**params)


def wait_active(client, name):
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def wait_updated(client, name):
    client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def error_of(excinfo):
    err = excinfo.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


# ---------------------------------------------------------------------------
# Lifecycle


def test_lifecycle(strato):
    client = strato.lambda_client()
    package = make_zip({"index.py": "def handler(event, context):\n    return 'hi'\n"})
    created = create(client, "life", package, Description="d", Timeout=10, MemorySize=256,
                     Environment={"Variables": {"GREETING": "hi"}}, Tags={"team": "core"})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["FunctionArn"] == ARN_PREFIX + "life"
    assert created["CodeSha256"] == sha256_b64(package)
    assert created["CodeSize"] == len(package)
    assert created["State"] == "Pending"
    assert created["Timeout"] == 10 and created["MemorySize"] == 256

    wait_active(client, "life")
    got = client.get_function(FunctionName="life")
    assert got["Configuration"]["State"] == "Active"
    assert got["Configuration"]["LastUpdateStatus"] == "Successful"
    assert got["Tags"] == {"team": "core"}

    for ref in ("life", f"{DEFAULT_ACCOUNT}:function:life", ARN_PREFIX + "life"):
        assert client.get_function_configuration(FunctionName=ref)["FunctionName"] == "life"

    v2 = make_zip({"index.py": "def handler(event, context):\n    return 'v2'\n"})
    updated = client.update_function_code(FunctionName="life", ZipFile=v2)
    assert updated["CodeSha256"] == sha256_b64(v2)
    assert updated["LastUpdateStatus"] == "InProgress"
    # AWS answers an update with the create's wording (lambda-responses.md).
    assert updated["LastUpdateStatusReason"] == "The function is being created."
    assert updated["LastUpdateStatusReasonCode"] == "Creating"
    wait_updated(client, "life")

    configured = client.update_function_configuration(
        FunctionName="life", Timeout=60, MemorySize=1024, Handler="app.main",
        Runtime="provided.al2023", Description="second",
        Environment={"Variables": {"STAGE": "prod"}}, EphemeralStorage={"Size": 2048},
    )
    assert (configured["Timeout"], configured["MemorySize"]) == (60, 1024)
    assert configured["Handler"] == "app.main" and configured["Runtime"] == "provided.al2023"
    assert configured["Environment"] == {"Variables": {"STAGE": "prod"}}
    assert configured["EphemeralStorage"] == {"Size": 2048}
    assert (configured["LastUpdateStatus"], configured["LastUpdateStatusReason"],
            configured["LastUpdateStatusReasonCode"]) == (
        "InProgress", "The function is being created.", "Creating")
    wait_updated(client, "life")

    arn = ARN_PREFIX + "life"
    client.tag_resource(Resource=arn, Tags={"env": "dev"})
    assert client.list_tags(Resource=arn)["Tags"] == {"team": "core", "env": "dev"}
    client.untag_resource(Resource=arn, TagKeys=["team"])
    assert client.list_tags(Resource=arn)["Tags"] == {"env": "dev"}

    statement = json.loads(client.add_permission(
        FunctionName="life", StatementId="apigw", Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com")["Statement"])
    assert statement["Sid"] == "apigw"
    policy = json.loads(client.get_policy(FunctionName="life")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["apigw"]
    client.remove_permission(FunctionName="life", StatementId="apigw")

    settings = client.get_account_settings()
    assert settings["AccountUsage"]["FunctionCount"] == 1

    deleted = client.delete_function(FunctionName="life")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName="life")
    assert client.list_functions()["Functions"] == []


def test_code_location_downloads_the_zip(strato):
    client = strato.lambda_client()
    # Several MB of incompressible data: also a request body far above 2 MB.
    package = make_zip({"index.py": "def handler(e, c):\n    return 1\n",
                        "blob.bin": os.urandom(6 * 1024 * 1024)}, stored=True)
    created = create(client, "download", package)
    assert created["CodeSize"] == len(package)
    location = client.get_function(FunctionName="download")["Code"]["Location"]
    assert location.startswith(strato.endpoint + "/")
    with urllib.request.urlopen(location, timeout=30) as resp:
        assert resp.status == 200
        assert resp.read() == package

    v2 = make_zip({"index.py": "def handler(e, c):\n    return 2\n"})
    wait_active(client, "download")
    client.update_function_code(FunctionName="download", ZipFile=v2)
    location = client.get_function(FunctionName="download")["Code"]["Location"]
    with urllib.request.urlopen(location, timeout=30) as resp:
        assert resp.read() == v2

    # A tampered URL does not download.
    tampered = location.replace("Signature=", "Signature=0")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(tampered, timeout=30)
    assert excinfo.value.code == 403


def test_paginator(strato):
    client = strato.lambda_client()
    names = [f"fn-{i:02d}" for i in range(12)]
    for name in reversed(names):
        create(client, name)

    def paginate():
        pages = list(client.get_paginator("list_functions").paginate(
            PaginationConfig={"PageSize": 5}))
        return [[f["FunctionName"] for f in page["Functions"]] for page in pages]

    pages = paginate()
    assert [len(p) for p in pages] == [5, 5, 2]
    flat = [name for page in pages for name in page]
    assert sorted(flat) == names  # every function exactly once
    assert paginate() == pages  # stable order

    # Raw Marker/MaxItems paging agrees.
    first = client.list_functions(MaxItems=5)
    assert [f["FunctionName"] for f in first["Functions"]] == pages[0]
    second = client.list_functions(MaxItems=5, Marker=first["NextMarker"])
    assert [f["FunctionName"] for f in second["Functions"]] == pages[1]
    third = client.list_functions(MaxItems=5, Marker=second["NextMarker"])
    assert [f["FunctionName"] for f in third["Functions"]] == pages[2]
    assert "NextMarker" not in third

    # PaginationConfig MaxItems truncates across pages and resumes.
    part = client.get_paginator("list_functions").paginate(
        PaginationConfig={"PageSize": 5, "MaxItems": 7}).build_full_result()
    assert [f["FunctionName"] for f in part["Functions"]] == flat[:7]
    rest = client.get_paginator("list_functions").paginate(
        PaginationConfig={"PageSize": 5, "StartingToken": part["NextToken"]}).build_full_result()
    assert [f["FunctionName"] for f in rest["Functions"]] == flat[7:]


# ---------------------------------------------------------------------------
# Errors: botocore's modeled exception classes and the response fields


def test_resource_not_found(strato):
    client = strato.lambda_client()
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.get_function(FunctionName="missing")
    assert error_of(excinfo) == ("ResourceNotFoundException",
                                 f"Function not found: {ARN_PREFIX}missing", 404)
    assert excinfo.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] \
        .startswith("ResourceNotFoundException")
    assert excinfo.value.response["ResponseMetadata"]["RequestId"]

    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_function(FunctionName="missing")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.update_function_code(FunctionName="missing", ZipFile=make_zip())


def test_resource_conflict_duplicate(strato):
    client = strato.lambda_client()
    create(client, "dup")
    with pytest.raises(client.exceptions.ResourceConflictException) as excinfo:
        create(client, "dup")
    assert error_of(excinfo) == ("ResourceConflictException", "Function already exist: dup", 409)


def test_resource_conflict_update_in_progress(strato):
    client = strato.lambda_client()
    create(client, "busy")
    wait_active(client, "busy")
    client.update_function_code(FunctionName="busy", ZipFile=slow_to_unpack_zip())
    with pytest.raises(client.exceptions.ResourceConflictException) as excinfo:
        client.update_function_configuration(FunctionName="busy", Timeout=9)
    assert error_of(excinfo) == (
        "ResourceConflictException",
        "The operation cannot be performed at this time. "
        f"An update is in progress for resource: {ARN_PREFIX}busy",
        409,
    )
    wait_updated(client, "busy")
    assert client.update_function_configuration(FunctionName="busy", Timeout=9)["Timeout"] == 9


def test_invalid_parameter_values(strato):
    client = strato.lambda_client()
    with pytest.raises(client.exceptions.InvalidParameterValueException) as excinfo:
        create(client, "rt", Runtime="python9.9")
    code, message, status = error_of(excinfo)
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message.startswith("Value python9.9 at 'runtime' failed to satisfy constraint: "
                              "Member must satisfy enum value set: [")
    assert message.endswith("] or be a valid ARN")

    with pytest.raises(client.exceptions.InvalidParameterValueException) as excinfo:
        create(client, "old", Runtime="python2.7")
    assert error_of(excinfo) == (
        "InvalidParameterValueException",
        "The runtime parameter of python2.7 is no longer supported for creating or updating "
        "AWS Lambda functions. We recommend you use a supported runtime while creating or "
        "updating functions.",
        400,
    )

    with pytest.raises(client.exceptions.InvalidParameterValueException) as excinfo:
        create(client, "notzip", package=b"this is not a zip file")
    assert error_of(excinfo) == (
        "InvalidParameterValueException",
        "Could not unzip uploaded file. Please check your file, then try to upload again.",
        400,
    )

    create(client, "env")
    with pytest.raises(client.exceptions.InvalidParameterValueException) as excinfo:
        client.update_function_configuration(
            FunctionName="env", Environment={"Variables": {"LARGE_VAR": "x" * 5000}})
    code, message, status = error_of(excinfo)
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message.startswith(
        "Lambda was unable to configure your environment variables because the environment "
        "variables you have provided exceeded the 4KB limit. String measured: {\"LARGE_VAR\":\"xxx")
    assert client.list_functions()["Functions"][0]["FunctionName"] == "env"


def test_validation_errors(strato):
    client = strato.lambda_client()
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        create(client, "role", Role="r1")
    code, message, status = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith("1 validation error detected: Value 'r1' at 'role'")

    # (botocore checks lengths and ranges itself, but not patterns)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        create(client, "bad name!")
    code, message, status = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith("1 validation error detected: Value 'bad name!' at 'functionName' "
                              "failed to satisfy constraint: Member must satisfy regular expression pattern: ")
    assert client.list_functions()["Functions"] == []


def test_precondition_failed(strato):
    client = strato.lambda_client()
    stale = create(client, "rev")["RevisionId"]
    wait_active(client, "rev")
    current = client.get_function(FunctionName="rev")["Configuration"]["RevisionId"]
    assert current != stale
    with pytest.raises(client.exceptions.PreconditionFailedException) as excinfo:
        client.update_function_configuration(FunctionName="rev", Timeout=4, RevisionId=stale)
    assert error_of(excinfo) == (
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
        412,
    )
    ok = client.update_function_configuration(FunctionName="rev", Timeout=4, RevisionId=current)
    assert ok["Timeout"] == 4 and ok["RevisionId"] != current


# ---------------------------------------------------------------------------
# Authentication and accounts


def test_wrong_secret(strato):
    client = strato.lambda_client(access_key="test", secret_key="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.list_functions()
    assert error_of(excinfo) == (
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. "
        "Consult the service documentation for details.",
        403,
    )


def test_unknown_access_key(strato):
    client = strato.lambda_client(access_key="AKIANOSUCHKEY0000000", secret_key="whatever")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.list_functions()
    assert error_of(excinfo) == (
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
        403,
    )


def test_second_account_is_isolated(strato):
    first = strato.lambda_client()
    create(first, "shared-name")
    create(first, "only-in-first")

    account = strato.create_account("--name", "second")
    assert len(account["account_id"]) == 12 and account["account_id"].isdigit()
    assert account["account_id"] != DEFAULT_ACCOUNT
    second = strato.lambda_client(account["access_key_id"], account["secret_access_key"])

    def listed():
        try:
            return second.list_functions()
        except botocore.exceptions.ClientError as err:
            if err.response["Error"]["Code"] == "UnrecognizedClientException":
                return None  # the server has not picked up the new key yet
            raise

    assert wait_until(listed, "the new access key to be accepted")["Functions"] == []
    with pytest.raises(second.exceptions.ResourceNotFoundException) as excinfo:
        second.get_function(FunctionName="only-in-first")
    assert error_of(excinfo)[1] == (
        f"Function not found: arn:aws:lambda:{REGION}:{account['account_id']}:function:only-in-first")

    # The same name is free in the second account.
    mine = create(second, "shared-name")
    assert mine["FunctionArn"] == f"arn:aws:lambda:{REGION}:{account['account_id']}:function:shared-name"
    assert [f["FunctionName"] for f in second.list_functions()["Functions"]] == ["shared-name"]
    assert second.get_account_settings()["AccountUsage"]["FunctionCount"] == 1

    # And the first account is unaffected.
    names = sorted(f["FunctionName"] for f in first.list_functions()["Functions"])
    assert names == ["only-in-first", "shared-name"]
    assert first.get_function(FunctionName="shared-name")["Configuration"]["FunctionArn"] == \
        ARN_PREFIX + "shared-name"
    second.delete_function(FunctionName="shared-name")
    assert first.get_function(FunctionName="shared-name")["Configuration"]["FunctionName"] == "shared-name"
