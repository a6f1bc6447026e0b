"""Provisioned concurrency with the real AWS CLI (v1) and boto3: the README's
commands, READY, invocations served without a cold start, AWS's errors."""

from __future__ import annotations

import base64
import json

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, make_zip, wait_until

HANDLER = (
    "exports.handler = async () => ({ init: process.env.AWS_LAMBDA_INITIALIZATION_TYPE });"
)


def create_and_publish(strato, tmp_path, name: str) -> str:
    package = tmp_path / f"{name}.zip"
    package.write_bytes(make_zip({"index.js": HANDLER}))
    strato.aws(
        "lambda", "create-function", "--function-name", name, "--runtime", "nodejs20.x",
        "--handler", "index.handler", "--role", ROLE, "--memory-size", "128",
        "--zip-file", f"fileb://{package}",
    ).check()
    strato.aws("lambda", "wait", "function-active-v2", "--function-name", name).check()
    return strato.aws("lambda", "publish-version", "--function-name", name).check().json()["Version"]


def test_cli_provisioned_concurrency_on_an_alias(strato, tmp_path):
    version = create_and_publish(strato, tmp_path, "prov")
    strato.aws("lambda", "create-alias", "--function-name", "prov", "--name", "live",
               "--function-version", version).check()
    put = strato.aws("lambda", "put-provisioned-concurrency-config", "--function-name", "prov",
                     "--qualifier", "live", "--provisioned-concurrent-executions", "1").check().json()
    assert put["RequestedProvisionedConcurrentExecutions"] == 1
    assert put["Status"] == "IN_PROGRESS"

    def ready():
        got = strato.aws("lambda", "get-provisioned-concurrency-config", "--function-name", "prov",
                         "--qualifier", "live").check().json()
        assert got["Status"] != "FAILED", got
        return got if got["Status"] == "READY" else None

    got = wait_until(ready, "provisioned concurrency READY", deadline_seconds=90)
    assert got["AvailableProvisionedConcurrentExecutions"] == 1
    assert got["AllocatedProvisionedConcurrentExecutions"] == 1

    listed = strato.aws("lambda", "list-provisioned-concurrency-configs",
                        "--function-name", "prov").check().json()
    arns = [c["FunctionArn"] for c in listed["ProvisionedConcurrencyConfigs"]]
    assert arns == [f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:prov:live"]

    out = tmp_path / "out.json"
    invoked = strato.aws("lambda", "invoke", "--function-name", "prov", "--qualifier", "live",
                         "--log-type", "Tail", str(out)).check().json()
    assert json.loads(out.read_text()) == {"init": "provisioned-concurrency"}
    tail = base64.b64decode(invoked["LogResult"]).decode()
    report = next(line for line in tail.splitlines() if line.startswith("REPORT"))
    assert "Init Duration" not in report, tail

    settings = strato.aws("lambda", "get-account-settings").check().json()
    assert settings["AccountLimit"]["UnreservedConcurrentExecutions"] == 999

    strato.aws("lambda", "delete-provisioned-concurrency-config", "--function-name", "prov",
               "--qualifier", "live").check()
    gone = strato.aws("lambda", "get-provisioned-concurrency-config", "--function-name", "prov",
                      "--qualifier", "live")
    assert gone.returncode != 0
    assert ("An error occurred (ProvisionedConcurrencyConfigNotFoundException) when calling the "
            "GetProvisionedConcurrencyConfig operation: No Provisioned Concurrency Config found "
            "for this function") in gone.stderr


def test_boto3_provisioned_concurrency_errors(strato, tmp_path):
    version = create_and_publish(strato, tmp_path, "provb")
    client = strato.lambda_client()
    errors = client.exceptions

    try:
        client.put_provisioned_concurrency_config(
            FunctionName="provb", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1)
        raise AssertionError("$LATEST accepted")
    except errors.InvalidParameterValueException as e:
        assert e.response["Error"]["Message"] == (
            "Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
    try:
        client.put_provisioned_concurrency_config(
            FunctionName="provb", Qualifier=version, ProvisionedConcurrentExecutions=901)
        raise AssertionError("unreserved minimum not enforced")
    except errors.InvalidParameterValueException as e:
        assert e.response["Error"]["Message"] == (
            "Specified ConcurrentExecutions for function decreases account's "
            "UnreservedConcurrentExecution below its minimum value of [100].")
    try:
        client.get_provisioned_concurrency_config(FunctionName="provb", Qualifier=version)
        raise AssertionError("a config that was never put")
    except errors.ProvisionedConcurrencyConfigNotFoundException as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_provisioned_instances_hold_their_share_of_the_reservation(strato, tmp_path):
    """Reserved 1 and provisioned 1 on version 1: the provisioned instance
    holds the whole reservation, so `$LATEST` is throttled as on AWS."""
    version = create_and_publish(strato, tmp_path, "provres")
    client = strato.lambda_client()
    client.put_function_concurrency(FunctionName="provres", ReservedConcurrentExecutions=1)
    put = client.put_provisioned_concurrency_config(
        FunctionName="provres", Qualifier=version, ProvisionedConcurrentExecutions=1)
    del put["ResponseMetadata"]
    put["LastModified"] = "date"
    # AWS's recorded 202: nothing allocated until the allocation completes.
    assert put == {"AllocatedProvisionedConcurrentExecutions": 0,
                   "AvailableProvisionedConcurrentExecutions": 0, "LastModified": "date",
                   "RequestedProvisionedConcurrentExecutions": 1, "Status": "IN_PROGRESS"}
    wait_until(lambda: client.get_provisioned_concurrency_config(
        FunctionName="provres", Qualifier=version)["Status"] == "READY",
        "provisioned concurrency READY", deadline_seconds=90)
    try:
        client.invoke(FunctionName="provres", Payload=b"{}")
        raise AssertionError("$LATEST ran beside the provisioned instance")
    except client.exceptions.TooManyRequestsException as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert e.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert e.response["Error"]["Message"] == "Rate Exceeded."
    answer = client.invoke(FunctionName="provres", Qualifier=version, Payload=b"{}")
    assert json.loads(answer["Payload"].read()) == {"init": "provisioned-concurrency"}


def test_a_failed_init_reports_aws_short_status_reason(strato, tmp_path):
    package = tmp_path / "bad.zip"
    package.write_bytes(make_zip({"index.js": "throw new Error('init breaks');"}))
    client = strato.lambda_client()
    client.create_function(FunctionName="provbad", Runtime="nodejs20.x", Handler="index.handler",
                           Role=ROLE, Code={"ZipFile": package.read_bytes()})
    wait_until(lambda: client.get_function_configuration(FunctionName="provbad")["State"] == "Active",
               "provbad to become Active", deadline_seconds=120)
    version = client.publish_version(FunctionName="provbad")["Version"]
    client.put_provisioned_concurrency_config(
        FunctionName="provbad", Qualifier=version, ProvisionedConcurrentExecutions=1)

    def failed():
        got = client.get_provisioned_concurrency_config(FunctionName="provbad", Qualifier=version)
        return got if got["Status"] == "FAILED" else None

    got = wait_until(failed, "provisioned concurrency FAILED", deadline_seconds=90)
    del got["ResponseMetadata"]
    got["LastModified"] = "date"
    assert got == {"AllocatedProvisionedConcurrentExecutions": 0,
                   "AvailableProvisionedConcurrentExecutions": 0, "LastModified": "date",
                   "RequestedProvisionedConcurrentExecutions": 1, "Status": "FAILED",
                   "StatusReason": "FUNCTION_ERROR_INIT_FAILURE"}
