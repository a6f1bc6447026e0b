"""Get/Put/DeleteResourcePolicy with boto3: the same policy document AddPermission,
RemovePermission and GetPolicy manage (one policy, one RevisionId per function, version
or alias), AWS's errors for bad input, and the policies written this way decided by IAM's
one evaluator exactly as AddPermission's statements are: across accounts, an explicit Deny
binding the owner account's root, an allow admitting an IAM user of the account. Also: an
explicit Deny in a queue's or topic's policy binds the owner account's root.

One server (with `--iam enforce`) serves the whole module; each test uses its own function.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from conftest import DEFAULT_ACCOUNT, REGION, _start, _stop, make_zip

LAMBDA_TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
})
ARN_PREFIX = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:"
ROOT = f"arn:aws:iam::{DEFAULT_ACCOUNT}:root"
STALE = "00000000-0000-4000-8000-000000000000"
ARN_PATTERN = (
    r"arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"(function:[a-zA-Z0-9-_]+(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_])+)?|runtime/[a-zA-Z0-9-_./]+)"
)


@pytest.fixture(scope="module")
def server(strato_binary):
    root = Path(tempfile.mkdtemp(prefix="strato-compat-rp-"))
    running = _start(strato_binary, root, ("--iam", "enforce"))
    try:
        iam = client(running, "iam")
        iam.create_role(RoleName="rp", AssumeRolePolicyDocument=LAMBDA_TRUST)
        yield running
    finally:
        _stop(running.proc)
        shutil.rmtree(root, ignore_errors=True)


def client(server, service: str, key: str = "test", secret: str = "test", validate: bool = True):
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                    region_name=REGION)
    return session.client(service, endpoint_url=server.endpoint,
                          config=Config(retries={"max_attempts": 0},
                                        parameter_validation=validate))


def error_of(call, **kwargs) -> dict:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(**kwargs)
    return raised.value.response


def error(response: dict) -> tuple[int, str, str]:
    return (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"],
            response["Error"]["Message"])


def deploy(lam, name: str) -> str:
    lam.create_function(FunctionName=name, Runtime="nodejs20.x",
                        Role=f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/rp", Handler="index.handler",
                        Code={"ZipFile": make_zip({"index.js": "exports.handler = async (e) => e;\n"})})
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    return ARN_PREFIX + name


def statement(sid: str, principal, effect: str = "Allow", resource: str = "*") -> dict:
    return {"Sid": sid, "Effect": effect, "Principal": principal,
            "Action": "lambda:InvokeFunction", "Resource": resource}


def document(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Id": "mine", "Statement": list(statements)})


def answer(response: dict) -> dict:
    """A 200 answer without its metadata, its policy parsed."""
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    assert set(body) == {"Policy", "RevisionId"}
    assert len(body["RevisionId"]) == 36
    return {"Policy": json.loads(body["Policy"]), "RevisionId": body["RevisionId"]}


def test_one_policy_and_revision_shared_with_add_permission_and_get_policy(server):
    lam = client(server, "lambda")
    arn = deploy(lam, "shared")
    lam.publish_version(FunctionName="shared")
    lam.create_alias(FunctionName="shared", Name="live", FunctionVersion="1")

    assert error(error_of(lam.get_resource_policy, ResourceArn=arn)) == (
        404, "ResourceNotFoundException", "No policy is associated with the given resource.")

    lam.add_permission(FunctionName="shared", StatementId="s3", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceAccount=DEFAULT_ACCOUNT)
    by_get_policy = lam.get_policy(FunctionName="shared")
    got = answer(lam.get_resource_policy(ResourceArn=arn))
    assert got["RevisionId"] == by_get_policy["RevisionId"]
    assert got["Policy"] == json.loads(by_get_policy["Policy"])
    assert [s["Sid"] for s in got["Policy"]["Statement"]] == ["s3"]

    wanted = document(statement("account", {"AWS": ROOT}, resource=arn))
    assert error(error_of(lam.put_resource_policy, ResourceArn=arn, Policy=wanted,
                          RevisionId=STALE)) == (
        412, "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetResourcePolicy API to retrieve the latest Revision Id")
    put = answer(lam.put_resource_policy(ResourceArn=arn, Policy=wanted,
                                         RevisionId=got["RevisionId"]))
    assert put["Policy"] == json.loads(wanted)
    assert put["RevisionId"] != got["RevisionId"]
    # GetPolicy reads the same document and revision; AddPermission grows it.
    by_get_policy = lam.get_policy(FunctionName="shared")
    assert json.loads(by_get_policy["Policy"]) == put["Policy"]
    assert by_get_policy["RevisionId"] == put["RevisionId"]
    lam.add_permission(FunctionName="shared", StatementId="sns", Action="lambda:InvokeFunction",
                       Principal="sns.amazonaws.com", RevisionId=put["RevisionId"])
    grown = answer(lam.get_resource_policy(ResourceArn=arn))
    assert [s["Sid"] for s in grown["Policy"]["Statement"]] == ["account", "sns"]
    assert grown["Policy"]["Id"] == "mine"

    # A qualified ARN is the alias's own policy, as AddPermission's Qualifier.
    alias_doc = document(statement("alias", {"AWS": ROOT}, resource=f"{arn}:live"))
    lam.put_resource_policy(ResourceArn=f"{arn}:live", Policy=alias_doc)
    assert json.loads(lam.get_policy(FunctionName="shared", Qualifier="live")["Policy"]) == \
        json.loads(alias_doc)
    assert answer(lam.get_resource_policy(ResourceArn=arn))["Policy"] == grown["Policy"]
    assert lam.delete_resource_policy(ResourceArn=f"{arn}:live")[
        "ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(lam.get_policy, FunctionName="shared", Qualifier="live")["Error"]["Code"] == \
        "ResourceNotFoundException"
    assert error(error_of(lam.delete_resource_policy, ResourceArn=f"{arn}:live")) == (
        404, "ResourceNotFoundException", "No policy is associated with the given resource.")

    assert error_of(lam.delete_resource_policy, ResourceArn=arn, RevisionId=STALE)[
        "Error"]["Code"] == "PreconditionFailedException"
    lam.delete_resource_policy(ResourceArn=arn, RevisionId=grown["RevisionId"])
    assert error_of(lam.get_policy, FunctionName="shared")["Error"]["Code"] == \
        "ResourceNotFoundException"


def test_bad_input_answers_aws_errors(server):
    lam = client(server, "lambda")
    arn = deploy(lam, "checked")
    raw = client(server, "lambda", validate=False)
    bad_arn = ARN_PREFIX + "*"
    assert error(error_of(raw.get_resource_policy, ResourceArn=bad_arn)) == (
        400, "ValidationException",
        f"1 validation error detected: Value '{bad_arn}' at 'resourceArn' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {ARN_PATTERN}")
    assert error(error_of(raw.put_resource_policy, ResourceArn=arn)) == (
        400, "ValidationException",
        "1 validation error detected: Value null at 'policy' failed to satisfy constraint: "
        "Member must not be null")
    huge = "x" * 20481
    assert error(error_of(raw.put_resource_policy, ResourceArn=arn, Policy=huge)) == (
        400, "ValidationException",
        f"1 validation error detected: Value '{huge}' at 'policy' failed to satisfy constraint: "
        "Member must have length less than or equal to 20480")
    status, code, _ = error(error_of(raw.put_resource_policy, ResourceArn=arn, Policy=5))
    assert (status, code) == (400, "SerializationException")
    assert error(error_of(raw.put_resource_policy, ResourceArn=arn, Policy="{}",
                          RevisionId="not-a-revision")) == (
        400, "ValidationException",
        "1 validation error detected: Value 'not-a-revision' at 'revisionId' failed to satisfy "
        "constraint: Member must have length greater than or equal to 36")
    assert error(error_of(lam.put_resource_policy, ResourceArn=arn, Policy="{")) == (
        400, "InvalidParameterValueException",
        "The policy document is malformed: This policy contains invalid Json")
    assert error(error_of(lam.put_resource_policy, ResourceArn=arn, Policy=json.dumps(
        {"Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arn}]}))) == (
        400, "InvalidParameterValueException",
        "The policy document is malformed: Missing required field Principal")
    assert error(error_of(lam.put_resource_policy, ResourceArn=f"{arn}:$LATEST",
                          Policy=document(statement("x", "*")))) == (
        400, "InvalidParameterValueException",
        "We currently do not support adding policies for $LATEST.")
    missing = ARN_PREFIX + "missing"
    assert error(error_of(lam.put_resource_policy, ResourceArn=missing,
                          Policy=document(statement("x", "*")))) == (
        404, "ResourceNotFoundException", f"Function not found: {missing}")
    assert error_of(lam.get_resource_policy, ResourceArn=f"{arn}:nope")["Error"]["Code"] == \
        "ResourceNotFoundException"
    # Multi-byte characters within 20480 characters but over 20480 bytes.
    wide = json.dumps({"Statement": [statement("w", {"AWS": ROOT}, resource=arn) | {
        "Condition": {"StringEquals": {"aws:userid": "é" * 10200}}}]}, ensure_ascii=False)
    assert len(wide) <= 20480 < len(wide.encode())
    status, code, message = error(error_of(lam.put_resource_policy, ResourceArn=arn, Policy=wide))
    assert (status, code) == (400, "PolicyLengthExceededException")
    assert message.startswith("The final policy size (") and message.endswith(
        ") is bigger than the limit (20480).")


def test_put_policies_decide_like_add_permission(server):
    lam, iam = client(server, "lambda"), client(server, "iam")
    arn = deploy(lam, "guarded")
    other = server.create_account()
    theirs = client(server, "lambda", other["access_key_id"], other["secret_access_key"])
    other_root = f"arn:aws:iam::{other['account_id']}:root"

    assert error(error_of(theirs.invoke, FunctionName=arn, Payload=b"{}")) == (
        403, "AccessDeniedException",
        f"User: {other_root} is not authorized to perform: lambda:InvokeFunction on resource: "
        f"{arn} because no resource-based policy allows the lambda:InvokeFunction action")
    lam.put_resource_policy(ResourceArn=arn, Policy=document(
        statement("partner", {"AWS": other["account_id"]}, resource=arn)))
    assert json.loads(theirs.invoke(FunctionName=arn, Payload=b'{"n": 1}')["Payload"].read()) == \
        {"n": 1}

    # An IAM user of the owner account with no identity allow is let in by
    # the policy naming it (same account: either side suffices).
    iam.create_user(UserName="carol")
    key = iam.create_access_key(UserName="carol")["AccessKey"]
    carol = client(server, "lambda", key["AccessKeyId"], key["SecretAccessKey"])
    assert error_of(carol.invoke, FunctionName=arn)["Error"]["Code"] == "AccessDeniedException"
    carol_arn = f"arn:aws:iam::{DEFAULT_ACCOUNT}:user/carol"
    lam.put_resource_policy(ResourceArn=arn, Policy=document(
        statement("partner", {"AWS": other["account_id"]}, resource=arn),
        statement("carol", {"AWS": carol_arn}, resource=arn)))
    assert carol.invoke(FunctionName=arn)["StatusCode"] == 200

    # An explicit Deny binds every principal, the owner account's root included.
    lam.put_resource_policy(ResourceArn=arn, Policy=document(
        statement("partner", {"AWS": other["account_id"]}, resource=arn),
        statement("nobody", "*", effect="Deny", resource=arn)))
    for caller, who in ((theirs, other_root), (lam, ROOT)):
        assert error(error_of(caller.invoke, FunctionName=arn)) == (
            403, "AccessDeniedException",
            f"User: {who} is not authorized to perform: lambda:InvokeFunction on resource: "
            f"{arn} with an explicit deny in a resource-based policy")
    lam.delete_resource_policy(ResourceArn=arn)
    assert lam.invoke(FunctionName=arn)["StatusCode"] == 200
    assert error_of(theirs.invoke, FunctionName=arn)["Error"]["Code"] == "AccessDeniedException"


def test_queue_and_topic_denies_bind_the_owner_root(server):
    sqs, sns = client(server, "sqs"), client(server, "sns")
    url = sqs.create_queue(QueueName="sealed")["QueueUrl"]
    queue_arn = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:sealed"
    sqs.send_message(QueueUrl=url, MessageBody="before")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage",
                       "Resource": queue_arn}]})})
    response = error_of(sqs.send_message, QueueUrl=url, MessageBody="after")
    assert error(response) == (
        403, "AccessDenied",
        f"User: {ROOT} is not authorized to perform: sqs:sendmessage on resource: {queue_arn} "
        "with an explicit deny in a resource-based policy")
    # What the Deny does not name the root still may do.
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "before"

    topic = sns.create_topic(Name="sealed")["TopicArn"]
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "SNS:Publish",
                       "Resource": topic}]}))
    response = error_of(sns.publish, TopicArn=topic, Message="hi")
    assert error(response) == (
        403, "AuthorizationError",
        f"User: {ROOT} is not authorized to perform: SNS:Publish on resource: {topic} "
        "with an explicit deny in a resource-based policy")
