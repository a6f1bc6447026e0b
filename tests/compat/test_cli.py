"""The Lambda control plane driven by the real AWS CLI (v1)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, make_zip, slow_to_unpack_zip

ARN_PREFIX = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:"
STALE_REVISION = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def write_zip(path, data: bytes) -> str:
    path.write_bytes(data)
    return f"fileb://{path}"


def create(strato, tmp_path, name, *extra, runtime="nodejs20.x", role=ROLE, package=None):
    package = make_zip() if package is None else package
    return strato.aws(
        "lambda", "create-function",
        "--function-name", name,
        "--runtime", runtime,
        "--handler", "index.handler",
        "--role", role,
        "--zip-file", write_zip(tmp_path / f"{name}.zip", package),
        *extra,
    )


def assert_cli_error(result, code: str, operation: str, message: str):
    assert result.returncode != 0, f"expected {code}, got success: {result.stdout}"
    expected = f"An error occurred ({code}) when calling the {operation} operation: {message}"
    assert expected in result.stderr, f"expected {expected!r}\nstderr: {result.stderr!r}"


# ---------------------------------------------------------------------------
# Lifecycle


def test_create_get_update_delete(strato, tmp_path):
    package = make_zip()
    created = create(strato, tmp_path, "life", "--description", "first",
                     "--timeout", "5", "--memory-size", "256",
                     "--environment", "Variables={GREETING=hi}",
                     "--tags", "team=core", package=package).check().json()
    assert created["FunctionName"] == "life"
    assert created["FunctionArn"] == ARN_PREFIX + "life"
    assert created["CodeSha256"] == sha256_b64(package)
    assert created["CodeSize"] == len(package)
    assert created["Description"] == "first"
    assert created["Timeout"] == 5
    assert created["MemorySize"] == 256
    assert created["Environment"] == {"Variables": {"GREETING": "hi"}}
    assert created["Version"] == "$LATEST"
    assert created["State"] == "Pending"

    strato.aws("lambda", "wait", "function-active-v2", "--function-name", "life").check()
    got = strato.aws("lambda", "get-function", "--function-name", "life").check().json()
    assert got["Configuration"]["State"] == "Active"
    assert got["Configuration"]["LastUpdateStatus"] == "Successful"
    assert got["Tags"] == {"team": "core"}

    # The same function by partial and full ARN.
    for ref in (f"{DEFAULT_ACCOUNT}:function:life", ARN_PREFIX + "life"):
        cfg = strato.aws("lambda", "get-function-configuration", "--function-name", ref).check().json()
        assert cfg["FunctionArn"] == ARN_PREFIX + "life"

    new_package = make_zip({"index.js": 'exports.handler = async () => "v2";\n'})
    updated = strato.aws("lambda", "update-function-code", "--function-name", "life",
                         "--zip-file", write_zip(tmp_path / "v2.zip", new_package)).check().json()
    assert updated["CodeSha256"] == sha256_b64(new_package)
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["RevisionId"] != got["Configuration"]["RevisionId"]
    strato.aws("lambda", "wait", "function-updated-v2", "--function-name", "life").check()

    configured = strato.aws(
        "lambda", "update-function-configuration", "--function-name", "life",
        "--timeout", "30", "--memory-size", "512", "--handler", "main.run",
        "--runtime", "provided.al2023", "--description", "second",
        "--environment", "Variables={STAGE=prod,LEVEL=2}", "--ephemeral-storage", "Size=1024",
    ).check().json()
    assert configured["Timeout"] == 30
    assert configured["MemorySize"] == 512
    assert configured["Handler"] == "main.run"
    assert configured["Runtime"] == "provided.al2023"
    assert configured["Description"] == "second"
    assert configured["Environment"] == {"Variables": {"STAGE": "prod", "LEVEL": "2"}}
    assert configured["EphemeralStorage"] == {"Size": 1024}
    assert configured["CodeSha256"] == sha256_b64(new_package)
    strato.aws("lambda", "wait", "function-updated-v2", "--function-name", "life").check()
    cfg = strato.aws("lambda", "get-function-configuration", "--function-name", "life").check().json()
    assert cfg["LastUpdateStatus"] == "Successful"
    assert cfg["Timeout"] == 30

    strato.aws("lambda", "delete-function", "--function-name", "life").check()
    assert_cli_error(
        strato.aws("lambda", "get-function", "--function-name", "life"),
        "ResourceNotFoundException", "GetFunction", f"Function not found: {ARN_PREFIX}life",
    )
    listed = strato.aws("lambda", "list-functions").check().json()
    assert listed["Functions"] == []


def test_list_paging(strato, tmp_path):
    names = [f"page-{i:02d}" for i in range(7)]
    for name in reversed(names):
        create(strato, tmp_path, name).check()

    # Whole list, paginated by the CLI itself.
    full = strato.aws("lambda", "list-functions").check().json()
    order = [f["FunctionName"] for f in full["Functions"]]
    assert sorted(order) == sorted(names)
    assert "NextToken" not in full and "NextMarker" not in full

    # CLI pagination tokens: --max-items / --starting-token.
    seen = []
    token = None
    pages = 0
    while True:
        args = ["lambda", "list-functions", "--max-items", "3"]
        if token:
            args += ["--starting-token", token]
        page = strato.aws(*args).check().json()
        pages += 1
        assert len(page["Functions"]) <= 3
        seen += [f["FunctionName"] for f in page["Functions"]]
        token = page.get("NextToken")
        if not token:
            break
        assert pages < 10
    assert pages == 3
    assert seen == order

    # Raw service paging: --no-paginate with MaxItems and Marker.
    seen = []
    marker = None
    pages = 0
    while True:
        args = ["lambda", "list-functions", "--no-paginate", "--max-items", "3"]
        if marker:
            args += ["--marker", marker]
        page = strato.aws(*args).check().json()
        pages += 1
        assert "NextToken" not in page
        assert len(page["Functions"]) <= 3
        seen += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
        if not marker:
            break
        assert pages < 10
    assert pages == 3
    assert seen == order


def test_tags(strato, tmp_path):
    arn = create(strato, tmp_path, "tagged").check().json()["FunctionArn"]
    strato.aws("lambda", "tag-resource", "--resource", arn, "--tags", "team=core,env=dev").check()
    assert strato.aws("lambda", "list-tags", "--resource", arn).check().json() == {
        "Tags": {"team": "core", "env": "dev"}
    }
    strato.aws("lambda", "untag-resource", "--resource", arn, "--tag-keys", "env").check()
    assert strato.aws("lambda", "list-tags", "--resource", arn).check().json() == {
        "Tags": {"team": "core"}
    }
    assert_cli_error(
        strato.aws("lambda", "list-tags", "--resource", ARN_PREFIX + "nope"),
        "ResourceNotFoundException", "ListTags", f"Function not found: {ARN_PREFIX}nope",
    )


def test_permissions(strato, tmp_path):
    create(strato, tmp_path, "guarded").check()
    added = strato.aws(
        "lambda", "add-permission", "--function-name", "guarded", "--statement-id", "s3-invoke",
        "--action", "lambda:InvokeFunction", "--principal", "s3.amazonaws.com",
        "--source-arn", "arn:aws:s3:::my-bucket",
    ).check().json()
    statement = json.loads(added["Statement"])
    assert statement["Sid"] == "s3-invoke"
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Resource"] == ARN_PREFIX + "guarded"
    assert statement["Condition"] == {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"}}

    got = strato.aws("lambda", "get-policy", "--function-name", "guarded").check().json()
    policy = json.loads(got["Policy"])
    assert policy["Version"] == "2012-10-17"
    assert [s["Sid"] for s in policy["Statement"]] == ["s3-invoke"]
    assert got["RevisionId"]

    assert_cli_error(
        strato.aws("lambda", "add-permission", "--function-name", "guarded",
                   "--statement-id", "s3-invoke", "--action", "lambda:InvokeFunction",
                   "--principal", "s3.amazonaws.com"),
        "ResourceConflictException", "AddPermission",
        "The statement id (s3-invoke) provided already exists. "
        "Please provide a new statement id, or remove the existing statement.",
    )
    assert_cli_error(
        strato.aws("lambda", "remove-permission", "--function-name", "guarded",
                   "--statement-id", "other"),
        "ResourceNotFoundException", "RemovePermission",
        "Statement other is not found in resource policy.",
    )
    strato.aws("lambda", "remove-permission", "--function-name", "guarded",
               "--statement-id", "s3-invoke").check()
    assert_cli_error(
        strato.aws("lambda", "get-policy", "--function-name", "guarded"),
        "ResourceNotFoundException", "GetPolicy", "The resource you requested does not exist.",
    )


def test_account_settings(strato, tmp_path):
    before = strato.aws("lambda", "get-account-settings").check().json()
    assert before["AccountUsage"]["FunctionCount"] == 0
    limit = before["AccountLimit"]
    assert limit["CodeSizeZipped"] == 52428800
    assert limit["CodeSizeUnzipped"] == 262144000
    assert limit["ConcurrentExecutions"] >= limit["UnreservedConcurrentExecutions"] > 0
    package = make_zip()
    create(strato, tmp_path, "counted", package=package).check()
    after = strato.aws("lambda", "get-account-settings").check().json()
    assert after["AccountUsage"]["FunctionCount"] == 1
    assert after["AccountUsage"]["TotalCodeSize"] == before["AccountUsage"]["TotalCodeSize"] + len(package)


# ---------------------------------------------------------------------------
# Errors, as the CLI prints them


def test_error_missing_function(strato):
    for args, op in (
        (["get-function", "--function-name", "missing"], "GetFunction"),
        (["get-function-configuration", "--function-name", "missing"], "GetFunctionConfiguration"),
        (["delete-function", "--function-name", "missing"], "DeleteFunction"),
        (["update-function-configuration", "--function-name", "missing", "--timeout", "5"],
         "UpdateFunctionConfiguration"),
    ):
        result = strato.aws("lambda", *args)
        assert_cli_error(result, "ResourceNotFoundException", op,
                         f"Function not found: {ARN_PREFIX}missing")
        assert "(ResourceNotFoundException)" in result.stderr


def test_error_duplicate(strato, tmp_path):
    create(strato, tmp_path, "twice").check()
    assert_cli_error(create(strato, tmp_path, "twice"), "ResourceConflictException",
                     "CreateFunction", "Function already exist: twice")


def test_error_bad_runtime(strato, tmp_path):
    result = create(strato, tmp_path, "badrt", runtime="nodejs1.x")
    assert_cli_error(
        result, "InvalidParameterValueException", "CreateFunction",
        "Value nodejs1.x at 'runtime' failed to satisfy constraint: "
        "Member must satisfy enum value set: [",
    )
    assert "nodejs20.x" in result.stderr and "] or be a valid ARN" in result.stderr
    assert strato.aws("lambda", "list-functions").check().json()["Functions"] == []


def test_error_bad_role(strato, tmp_path):
    assert_cli_error(
        create(strato, tmp_path, "badrole", role="r1"),
        "ValidationException", "CreateFunction",
        "1 validation error detected: Value 'r1' at 'role' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: "
        r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+",
    )


def test_error_stale_revision(strato, tmp_path):
    first = create(strato, tmp_path, "rev").check().json()
    strato.aws("lambda", "wait", "function-active-v2", "--function-name", "rev").check()
    current = strato.aws("lambda", "get-function-configuration", "--function-name", "rev").check().json()
    assert current["RevisionId"] != first["RevisionId"]  # settling changed it
    assert_cli_error(
        strato.aws("lambda", "update-function-configuration", "--function-name", "rev",
                   "--timeout", "9", "--revision-id", first["RevisionId"]),
        "PreconditionFailedException", "UpdateFunctionConfiguration", STALE_REVISION,
    )
    assert_cli_error(
        strato.aws("lambda", "update-function-code", "--function-name", "rev",
                   "--zip-file", write_zip(tmp_path / "rev2.zip", make_zip({"a.js": "1"})),
                   "--revision-id", first["RevisionId"]),
        "PreconditionFailedException", "UpdateFunctionCode", STALE_REVISION,
    )
    ok = strato.aws("lambda", "update-function-configuration", "--function-name", "rev",
                    "--timeout", "9", "--revision-id", current["RevisionId"]).check().json()
    assert ok["Timeout"] == 9


def test_error_update_in_progress(strato, tmp_path):
    create(strato, tmp_path, "busy").check()
    strato.aws("lambda", "wait", "function-active-v2", "--function-name", "busy").check()
    message = ("The operation cannot be performed at this time. "
               f"An update is in progress for resource: {ARN_PREFIX}busy")
    attempts = []
    for attempt in range(8):
        code = strato.aws("lambda", "update-function-code", "--function-name", "busy",
                          "--zip-file", write_zip(tmp_path / f"big{attempt}.zip", slow_to_unpack_zip())
                          ).check().json()
        assert code["LastUpdateStatus"] == "InProgress"
        second = strato.aws("lambda", "update-function-configuration", "--function-name", "busy",
                            "--timeout", "7")
        attempts.append(second.returncode)
        if second.returncode != 0:
            assert_cli_error(second, "ResourceConflictException", "UpdateFunctionConfiguration", message)
            break
        # The first update settled before the second call arrived; try again.
        strato.aws("lambda", "wait", "function-updated-v2", "--function-name", "busy").check()
    else:
        pytest.fail(f"never saw the update in progress in {len(attempts)} attempts")
    strato.aws("lambda", "wait", "function-updated-v2", "--function-name", "busy").check()
    cfg = strato.aws("lambda", "get-function-configuration", "--function-name", "busy").check().json()
    assert cfg["LastUpdateStatus"] == "Successful"


def test_error_bad_zip(strato, tmp_path):
    # The CLI itself refuses files that are not zips, so send one whose
    # directory parses but whose data is corrupt, and one escaping its root.
    good = bytearray(make_zip({"index.js": "x" * 5000 + "hello" * 200}))
    header_end = 30 + len("index.js")
    for i in range(header_end + 2, header_end + 20):
        good[i] ^= 0xFF
    message = "Could not unzip uploaded file. Please check your file, then try to upload again."
    assert_cli_error(create(strato, tmp_path, "corrupt", package=bytes(good)),
                     "InvalidParameterValueException", "CreateFunction", message)
    assert_cli_error(create(strato, tmp_path, "escape", package=make_zip({"../evil.js": "x"})),
                     "InvalidParameterValueException", "CreateFunction", message)
    create(strato, tmp_path, "fine").check()
    assert_cli_error(
        strato.aws("lambda", "update-function-code", "--function-name", "fine",
                   "--zip-file", write_zip(tmp_path / "c.zip", bytes(good))),
        "InvalidParameterValueException", "UpdateFunctionCode", message,
    )
    names = [f["FunctionName"] for f in strato.aws("lambda", "list-functions").check().json()["Functions"]]
    assert names == ["fine"]
