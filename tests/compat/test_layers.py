"""Lambda layers driven by the real AWS CLI (v1) and boto3: publishing,
listing, permissions, functions that use them, and functions whose packages
live only in layers."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, ROOT, make_zip, wait_until

LAYER_PREFIX = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:layer:"


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def node_layer() -> bytes:
    return make_zip({
        "nodejs/node_modules/greeting/index.js":
            "module.exports = (who) => `hello ${who} from a layer`;\n",
    })


def python_layer() -> bytes:
    return make_zip({
        "python/greeting/__init__.py": "def greet(who):\n    return 'hello %s from a layer' % who\n",
    })


def wait_active(client, name):
    wait_until(
        lambda: client.get_function_configuration(FunctionName=name)["State"] == "Active",
        f"{name} to become Active",
        deadline_seconds=120,
    )


def assert_cli_error(result, code: str, operation: str, message: str):
    assert result.returncode != 0, f"expected {code}, got success: {result.stdout}"
    expected = f"An error occurred ({code}) when calling the {operation} operation: {message}"
    assert expected in result.stderr, f"expected {expected!r}\nstderr: {result.stderr!r}"


def test_cli_publishes_lists_and_deletes_layer_versions(strato, tmp_path):
    package = node_layer()
    (tmp_path / "layer.zip").write_bytes(package)
    published = strato.aws(
        "lambda", "publish-layer-version",
        "--layer-name", "deps",
        "--description", "shared",
        "--license-info", "MIT",
        "--compatible-runtimes", "nodejs20.x", "python3.12",
        "--compatible-architectures", "x86_64",
        "--zip-file", f"fileb://{tmp_path / 'layer.zip'}",
    ).check().json()
    assert published["Version"] == 1
    assert published["LayerArn"] == LAYER_PREFIX + "deps"
    assert published["LayerVersionArn"] == LAYER_PREFIX + "deps:1"
    assert published["Content"]["CodeSha256"] == sha256_b64(package)
    assert published["Content"]["CodeSize"] == len(package)
    assert published["CompatibleRuntimes"] == ["nodejs20.x", "python3.12"]
    assert published["LicenseInfo"] == "MIT"
    with urllib.request.urlopen(published["Content"]["Location"]) as resp:
        assert resp.read() == package

    strato.aws("lambda", "publish-layer-version", "--layer-name", "deps",
               "--compatible-runtimes", "python3.12",
               "--zip-file", f"fileb://{tmp_path / 'layer.zip'}").check()
    layers = strato.aws("lambda", "list-layers").check().json()["Layers"]
    assert [(l["LayerName"], l["LatestMatchingVersion"]["Version"]) for l in layers] == [("deps", 2)]
    node_only = strato.aws("lambda", "list-layers", "--compatible-runtime", "nodejs20.x").check().json()
    assert node_only["Layers"][0]["LatestMatchingVersion"]["Version"] == 1
    versions = strato.aws("lambda", "list-layer-versions", "--layer-name", "deps").check().json()
    assert [v["Version"] for v in versions["LayerVersions"]] == [2, 1]
    by_arn = strato.aws("lambda", "get-layer-version-by-arn", "--arn", LAYER_PREFIX + "deps:1").check().json()
    assert by_arn["Description"] == "shared"

    strato.aws("lambda", "delete-layer-version", "--layer-name", "deps", "--version-number", "2").check()
    assert_cli_error(
        strato.aws("lambda", "get-layer-version", "--layer-name", "deps", "--version-number", "2"),
        "ResourceNotFoundException", "GetLayerVersion",
        f"Layer version {LAYER_PREFIX}deps:2 does not exist.",
    )
    republished = strato.aws("lambda", "publish-layer-version", "--layer-name", "deps",
                             "--zip-file", f"fileb://{tmp_path / 'layer.zip'}").check().json()
    assert republished["Version"] == 3


def test_cli_layer_permissions(strato, tmp_path):
    (tmp_path / "layer.zip").write_bytes(node_layer())
    strato.aws("lambda", "publish-layer-version", "--layer-name", "shared",
               "--zip-file", f"fileb://{tmp_path / 'layer.zip'}").check()
    added = strato.aws(
        "lambda", "add-layer-version-permission",
        "--layer-name", "shared", "--version-number", "1",
        "--statement-id", "xaccount", "--action", "lambda:GetLayerVersion",
        "--principal", "123456789012",
    ).check().json()
    statement = json.loads(added["Statement"])
    assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert statement["Resource"] == LAYER_PREFIX + "shared:1"
    policy = strato.aws("lambda", "get-layer-version-policy", "--layer-name", "shared",
                        "--version-number", "1").check().json()
    assert policy["RevisionId"] == added["RevisionId"]
    assert json.loads(policy["Policy"])["Statement"] == [statement]
    assert_cli_error(
        strato.aws("lambda", "add-layer-version-permission",
                   "--layer-name", "shared", "--version-number", "1",
                   "--statement-id", "xaccount", "--action", "lambda:GetLayerVersion",
                   "--principal", "*"),
        "ResourceConflictException", "AddLayerVersionPermission",
        "The statement id (xaccount) provided already exists. Please provide a new statement id, "
        "or remove the existing statement.",
    )
    strato.aws("lambda", "remove-layer-version-permission", "--layer-name", "shared",
               "--version-number", "1", "--statement-id", "xaccount").check()
    assert_cli_error(
        strato.aws("lambda", "get-layer-version-policy", "--layer-name", "shared", "--version-number", "1"),
        "ResourceNotFoundException", "GetLayerVersionPolicy",
        "No policy is associated with the given resource.",
    )


def test_cli_function_with_a_layer_package_runs(strato, tmp_path):
    (tmp_path / "layer.zip").write_bytes(node_layer())
    arn = strato.aws("lambda", "publish-layer-version", "--layer-name", "node-deps",
                     "--compatible-runtimes", "nodejs20.x",
                     "--zip-file", f"fileb://{tmp_path / 'layer.zip'}").check().json()["LayerVersionArn"]
    (tmp_path / "function.zip").write_bytes(make_zip({
        "index.js": "const greeting = require('greeting');\n"
                    "exports.handler = async () => greeting('cli');\n",
    }))
    created = strato.aws(
        "lambda", "create-function", "--function-name", "with-layer",
        "--runtime", "nodejs20.x", "--handler", "index.handler", "--role", ROLE,
        "--zip-file", f"fileb://{tmp_path / 'function.zip'}",
        "--layers", arn,
    ).check().json()
    assert created["Layers"] == [{"Arn": arn, "CodeSize": len(node_layer())}]
    strato.aws("lambda", "wait", "function-active-v2", "--function-name", "with-layer").check()
    strato.aws("lambda", "invoke", "--function-name", "with-layer", str(tmp_path / "out.json")).check()
    assert json.loads((tmp_path / "out.json").read_text()) == "hello cli from a layer"
    assert_cli_error(
        strato.aws("lambda", "update-function-configuration", "--function-name", "with-layer",
                   "--layers", *[f"{LAYER_PREFIX}l{i}:1" for i in range(6)]),
        "InvalidParameterValueException", "UpdateFunctionConfiguration",
        "Cannot reference more than 5 layers.",
    )


def test_boto3_python_function_with_a_layer_package_runs(strato):
    client = strato.lambda_client()
    layer = client.publish_layer_version(
        LayerName="py-deps",
        Content={"ZipFile": python_layer()},
        CompatibleRuntimes=["python3.12"],
        CompatibleArchitectures=["x86_64"],
    )
    assert layer["Version"] == 1
    arn = layer["LayerVersionArn"]
    client.create_function(
        FunctionName="py-layer",
        Runtime="python3.12",
        Handler="lambda_function.handler",
        Role=ROLE,
        Code={"ZipFile": make_zip({
            "lambda_function.py": "import greeting\n\ndef handler(event, context):\n"
                                  "    return greeting.greet('boto3')\n",
        })},
        Layers=[arn],
    )
    wait_active(client, "py-layer")
    result = client.invoke(FunctionName="py-layer", Payload=b"{}")
    assert "FunctionError" not in result, result["Payload"].read()
    assert json.loads(result["Payload"].read()) == "hello boto3 from a layer"

    config = client.get_function_configuration(FunctionName="py-layer")
    assert config["Layers"] == [{"Arn": arn, "CodeSize": layer["Content"]["CodeSize"]}]
    published = client.publish_version(FunctionName="py-layer")
    assert published["Layers"] == config["Layers"]


def test_boto3_layer_errors(strato):
    client = strato.lambda_client()
    client.publish_layer_version(LayerName="errs", Content={"ZipFile": python_layer()})
    with pytest.raises(ClientError) as err:
        client.get_layer_version(LayerName="errs", VersionNumber=5)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert err.value.response["Error"]["Message"] == f"Layer version {LAYER_PREFIX}errs:5 does not exist."
    with pytest.raises(ClientError) as err:
        client.publish_layer_version(LayerName="errs", Content={})
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert err.value.response["Error"]["Message"] == "Missing Content"
    with pytest.raises(ClientError) as err:
        client.create_function(
            FunctionName="bad-layer", Runtime="python3.12", Handler="x.handler", Role=ROLE,
            Code={"ZipFile": make_zip({"x.py": "def handler(e, c):\n    return 1\n"})},
            Layers=[f"{LAYER_PREFIX}errs:1", f"{LAYER_PREFIX}errs:1"],
        )
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert err.value.response["Error"]["Message"] == (
        "Two different versions of the same layer are not allowed to be referenced in the same "
        f"function. {LAYER_PREFIX}errs:1 and {LAYER_PREFIX}errs:1 are versions of the same layer."
    )
    with pytest.raises(ClientError) as err:
        client.add_layer_version_permission(
            LayerName="errs", VersionNumber=1, StatementId="s", Action="lambda:*", Principal="*")
    assert err.value.response["Error"]["Code"] == "ValidationException"


def readme_layer_commands() -> list[str]:
    """The command lines of README.md's "Layers" section, verbatim."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README.md's Layers section has no ```sh block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_layer_commands_run_verbatim(strato, tmp_path):
    for line in readme_layer_commands():
        runnable = line.replace("http://127.0.0.1:9000", strato.endpoint)
        proc = subprocess.run(["bash", "-c", runnable], cwd=tmp_path, env=strato.env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, f"{line}\nexit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert json.loads((tmp_path / "out.json").read_text()) == "Hello Strato from a layer"
    client = strato.lambda_client()
    config = client.get_function_configuration(FunctionName="layered")
    assert [l["Arn"] for l in config["Layers"]] == [LAYER_PREFIX + "greeting:1"]
    policy = json.loads(client.get_layer_version_policy(LayerName="greeting", VersionNumber=1)["Policy"])
    assert policy["Statement"][0]["Principal"] == "*"
