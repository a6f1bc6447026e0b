"""IAM and STS with boto3 and the AWS CLI: the calls deployment tools make
first, roles, users and policies, temporary credentials, and policies
enforced on Lambda, SQS and CloudWatch Logs under `--iam enforce`."""

from __future__ import annotations

import json
import time

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from conftest import DEFAULT_ACCOUNT, REGION, make_zip, wait_until

LAMBDA_TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
})
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
ENFORCE = pytest.mark.strato_args("--iam", "enforce")


def client(strato, service: str, key: str = "test", secret: str = "test", token: str | None = None):
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                    aws_session_token=token, region_name=REGION)
    path_style = {"s3": {"addressing_style": "path"}} if service == "s3" else {}
    return session.client(service, endpoint_url=strato.endpoint,
                          config=Config(retries={"max_attempts": 0}, **path_style))


def error_of(call, *args, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(*args, **kwargs)
    return raised.value.response


def create_role(iam, name: str, trust: str = LAMBDA_TRUST) -> str:
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]


def deploy(lam, name: str, role: str, code: str = 'exports.handler = async () => "ok";\n'):
    lam.create_function(FunctionName=name, Runtime="nodejs20.x", Role=role, Handler="index.handler",
                        Code={"ZipFile": make_zip({"index.js": code})}, Timeout=10)
    lam.get_waiter("function_active_v2").wait(FunctionName=name)


def user_keys(iam, name: str, policy: dict) -> tuple[str, str]:
    """A new IAM user with `policy` inline: its access key id and secret."""
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="only", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def allow(action: str, resource: str) -> dict:
    """A policy allowing one action on one resource pattern."""
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}


def user_client(strato, iam, name: str, policy: dict, service: str):
    return client(strato, service, *user_keys(iam, name, policy))


def test_get_caller_identity_names_the_root_with_boto3_and_the_cli(strato):
    identity = client(strato, "sts").get_caller_identity()
    assert identity["Account"] == DEFAULT_ACCOUNT
    assert identity["Arn"] == f"arn:aws:iam::{DEFAULT_ACCOUNT}:root"
    assert identity["UserId"] == DEFAULT_ACCOUNT
    cli = strato.aws("sts", "get-caller-identity").check().json()
    assert cli["Arn"] == identity["Arn"]


@ENFORCE
def test_deployment_tool_sequence(strato):
    """What Terraform, SAM, CDK and the Serverless Framework do before and
    while they deploy a function, in their order."""
    sts, iam, lam = client(strato, "sts"), client(strato, "iam"), client(strato, "lambda")
    account = sts.get_caller_identity()["Account"]
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName="app-role")
    role = iam.create_role(RoleName="app-role", AssumeRolePolicyDocument=LAMBDA_TRUST,
                           Description="app", Tags=[{"Key": "app", "Value": "demo"}])["Role"]
    assert role["Arn"] == f"arn:aws:iam::{account}:role/app-role"
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"] == "lambda.amazonaws.com"
    iam.attach_role_policy(RoleName="app-role", PolicyArn=BASIC)
    got = iam.get_role(RoleName="app-role")["Role"]
    assert got["RoleId"] == role["RoleId"] and got["MaxSessionDuration"] == 3600
    assert iam.list_attached_role_policies(RoleName="app-role")["AttachedPolicies"] == [
        {"PolicyName": "AWSLambdaBasicExecutionRole", "PolicyArn": BASIC}]
    assert iam.list_role_policies(RoleName="app-role")["PolicyNames"] == []
    deploy(lam, "app", role["Arn"])
    assert lam.get_function(FunctionName="app")["Configuration"]["Role"] == role["Arn"]
    assert lam.invoke(FunctionName="app")["Payload"].read() == b'"ok"'


@ENFORCE
def test_create_function_needs_a_role_lambda_may_assume(strato):
    iam, lam = client(strato, "iam"), client(strato, "lambda")
    ec2_trust = LAMBDA_TRUST.replace("lambda.amazonaws.com", "ec2.amazonaws.com")
    for role in (create_role(iam, "ec2-role", ec2_trust), f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/missing"):
        response = error_of(lam.create_function, FunctionName="f", Runtime="nodejs20.x", Role=role,
                            Handler="index.handler", Code={"ZipFile": make_zip()})
        assert response["Error"]["Code"] == "InvalidParameterValueException"
        assert response["Error"]["Message"] == "The role defined for the function cannot be assumed by Lambda."


def test_open_mode_takes_any_role(strato):
    deploy(client(strato, "lambda"), "f", f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/anything")


@ENFORCE
def test_a_user_limited_to_one_function_invokes_it_and_not_another(strato):
    iam, lam = client(strato, "iam"), client(strato, "lambda")
    role = create_role(iam, "fn")
    deploy(lam, "mine", role)
    deploy(lam, "theirs", role)
    mine = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:mine"
    theirs = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:theirs"
    bob = user_client(strato, iam, "bob", {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": mine}]}, "lambda")
    assert bob.invoke(FunctionName="mine")["StatusCode"] == 200
    response = error_of(bob.invoke, FunctionName="theirs")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert response["Error"]["Message"] == (
        f"User: arn:aws:iam::{DEFAULT_ACCOUNT}:user/bob is not authorized to perform: "
        f"lambda:InvokeFunction on resource: {theirs} because no identity-based policy allows "
        "the lambda:InvokeFunction action")
    assert error_of(bob.list_functions)["Error"]["Code"] == "AccessDeniedException"
    # The root key of the account is still all-powerful.
    assert lam.invoke(FunctionName="theirs")["StatusCode"] == 200


@ENFORCE
def test_a_second_account_invokes_a_function_only_after_add_permission(strato):
    """Cross-account access only through the function's resource policy: the
    second account's caller names the function by its full ARN; Strato
    answers AWS's AccessDenied until AddPermission names that account, then
    runs the owner's function (and an IAM user of the second account also
    needs its own identity policy to allow it)."""
    iam, lam = client(strato, "iam"), client(strato, "lambda")
    deploy(lam, "shared", create_role(iam, "shared-role"),
           'exports.handler = async (e) => ({echo: e.n});\n')
    arn = lam.get_function(FunctionName="shared")["Configuration"]["FunctionArn"]
    other = strato.create_account()
    theirs = client(strato, "lambda", other["access_key_id"], other["secret_access_key"])
    response = error_of(theirs.invoke, FunctionName=arn, Payload=b'{"n": 1}')
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert response["Error"]["Message"] == (
        f"User: arn:aws:iam::{other['account_id']}:root is not authorized to perform: "
        f"lambda:InvokeFunction on resource: {arn} because no resource-based policy allows "
        "the lambda:InvokeFunction action")
    lam.add_permission(FunctionName="shared", StatementId="other", Action="lambda:InvokeFunction",
                       Principal=other["account_id"])
    answer = theirs.invoke(FunctionName=arn, Payload=b'{"n": 2}')
    assert json.loads(answer["Payload"].read()) == {"echo": 2}
    # Only the ARN reaches across: by name, the caller's own account is meant.
    assert error_of(theirs.invoke, FunctionName="shared")["Error"]["Code"] == "ResourceNotFoundException"
    # An IAM user of the second account needs its own allow as well.
    their_iam = client(strato, "iam", other["access_key_id"], other["secret_access_key"])
    nothing = user_client(strato, their_iam, "eve", {"Statement": [
        {"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}, "lambda")
    assert error_of(nothing.invoke, FunctionName=arn)["Error"]["Code"] == "AccessDeniedException"
    invoker = user_client(strato, their_iam, "frank", {"Statement": [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arn}]}, "lambda")
    assert json.loads(invoker.invoke(FunctionName=arn, Payload=b'{"n": 3}')["Payload"].read()) == {"echo": 3}


@ENFORCE
def test_a_mapping_polls_as_the_function_role(strato):
    """CreateEventSourceMapping checks the function's execution role for what
    polling calls, with AWS's sentence, and accepts once the role allows it:
    an SQS queue, then a DynamoDB stream (AWSLambdaDynamoDBExecutionRole)."""
    iam, lam, sqs = client(strato, "iam"), client(strato, "lambda"), client(strato, "sqs")
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=sqs.create_queue(QueueName="work")["QueueUrl"],
        AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    role = create_role(iam, "poller")
    iam.attach_role_policy(RoleName="poller", PolicyArn=BASIC)
    deploy(lam, "worker", role)
    response = error_of(lam.create_event_source_mapping, FunctionName="worker", EventSourceArn=queue_arn)
    assert response["Error"]["Code"] == "InvalidParameterValueException"
    assert response["Error"]["Message"] == \
        "The provided execution role does not have permissions to call ReceiveMessage on SQS"
    iam.put_role_policy(RoleName="poller", PolicyName="receive", PolicyDocument=json.dumps({
        "Statement": [{"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": queue_arn}]}))
    response = error_of(lam.create_event_source_mapping, FunctionName="worker", EventSourceArn=queue_arn)
    assert response["Error"]["Message"] == \
        "The provided execution role does not have permissions to call DeleteMessage on SQS"
    iam.attach_role_policy(RoleName="poller",
                           PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole")
    mapping = lam.create_event_source_mapping(FunctionName="worker", EventSourceArn=queue_arn)
    assert mapping["EventSourceArn"] == queue_arn

    # A DynamoDB stream needs all four stream reads; one alone is not enough.
    stream_arn = client(strato, "dynamodb").create_table(
        TableName="orders", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]["LatestStreamArn"]
    refused = (f"Cannot access stream {stream_arn}. Please ensure the role can perform the "
               "GetRecords, GetShardIterator, DescribeStream, and ListStreams Actions on your "
               "stream in IAM.")
    for allowed in (None, "dynamodb:GetRecords"):
        if allowed:
            iam.put_role_policy(RoleName="poller", PolicyName="stream", PolicyDocument=json.dumps({
                "Statement": [{"Effect": "Allow", "Action": allowed, "Resource": stream_arn}]}))
        response = error_of(lam.create_event_source_mapping, FunctionName="worker",
                            EventSourceArn=stream_arn, StartingPosition="LATEST")
        assert response["Error"]["Code"] == "InvalidParameterValueException"
        assert response["Error"]["Message"] == refused
    iam.attach_role_policy(RoleName="poller",
                           PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole")
    mapping = lam.create_event_source_mapping(FunctionName="worker", EventSourceArn=stream_arn,
                                              StartingPosition="LATEST")
    assert mapping["EventSourceArn"] == stream_arn
    assert mapping["StartingPosition"] == "LATEST"


@pytest.mark.strato_args("--iam", "enforce", "--time-scale", "60")
def test_a_running_mapping_stops_polling_when_its_role_loses_the_queue(strato):
    """The pollers ask at every poll round whether the execution role may
    poll: with the role's queue policy deleted they receive nothing (the
    message stays in the queue) and LastProcessingResult says why; with it
    back the message is delivered. `--time-scale 60` shortens the 20 s long
    poll, so a round begun before the policy went ends quickly."""
    iam, lam, sqs = client(strato, "iam"), client(strato, "lambda"), client(strato, "sqs")
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    create_role(iam, "consumer")
    iam.attach_role_policy(RoleName="consumer", PolicyArn=BASIC)
    poll = json.dumps({"Statement": [{"Effect": "Allow", "Resource": queue_arn, "Action": [
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]}]})
    iam.put_role_policy(RoleName="consumer", PolicyName="poll", PolicyDocument=poll)
    deploy(lam, "consume", f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/consumer")
    uuid = lam.create_event_source_mapping(FunctionName="consume", EventSourceArn=queue_arn,
                                           BatchSize=1)["UUID"]

    def counts():
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return (int(attributes["ApproximateNumberOfMessages"]),
                int(attributes["ApproximateNumberOfMessagesNotVisible"]))

    sqs.send_message(QueueUrl=url, MessageBody="first")
    wait_until(lambda: counts() == (0, 0), "the first message delivered and deleted")
    assert "LastProcessingResult" not in lam.get_event_source_mapping(UUID=uuid)

    iam.delete_role_policy(RoleName="consumer", PolicyName="poll")
    refused = "PROBLEM: The provided execution role does not have permissions to call ReceiveMessage on SQS"
    wait_until(lambda: lam.get_event_source_mapping(UUID=uuid).get("LastProcessingResult") == refused,
               "the mapping reporting its role's refusal")
    # Let receives begun before the policy went end (several scaled long
    # polls), then send: no round receives it.
    time.sleep(2)
    sqs.send_message(QueueUrl=url, MessageBody="second")
    time.sleep(1)
    assert counts() == (1, 0)
    mapping = lam.get_event_source_mapping(UUID=uuid)
    assert mapping["LastProcessingResult"] == refused
    assert mapping["State"] == "Enabled"

    iam.put_role_policy(RoleName="consumer", PolicyName="poll", PolicyDocument=poll)
    wait_until(lambda: counts() == (0, 0), "the second message delivered once the role may poll")
    assert "LastProcessingResult" not in lam.get_event_source_mapping(UUID=uuid)


@ENFORCE
def test_sqs_and_logs_answer_their_own_access_denied(strato):
    iam = client(strato, "iam")
    client(strato, "sqs").create_queue(QueueName="q")
    sqs = user_client(strato, iam, "carol", {
        "Statement": [{"Effect": "Allow", "Action": "sqs:GetQueueUrl", "Resource": "*"}]}, "sqs")
    url = sqs.get_queue_url(QueueName="q")["QueueUrl"]
    response = error_of(sqs.send_message, QueueUrl=url, MessageBody="x")
    assert response["Error"]["Code"] == "AccessDenied"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "is not authorized to perform: sqs:sendmessage on resource: " \
        f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:q" in response["Error"]["Message"]
    iam.put_user_policy(UserName="carol", PolicyName="logs", PolicyDocument=json.dumps({
        "Statement": [{"Effect": "Deny", "Action": "logs:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="carol")["AccessKey"]
    logs = client(strato, "logs", key["AccessKeyId"], key["SecretAccessKey"])
    response = error_of(logs.describe_log_groups)
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert response["Error"]["Message"].endswith("with an explicit deny in an identity-based policy")


CREDS_CODE = ("exports.handler = async () => ({id: process.env.AWS_ACCESS_KEY_ID,"
              " secret: process.env.AWS_SECRET_ACCESS_KEY, token: process.env.AWS_SESSION_TOKEN});\n")


def function_client(strato, creds, service: str):
    return client(strato, service, creds["id"], creds["secret"], creds["token"])


@ENFORCE
def test_function_credentials_carry_only_the_execution_role(strato):
    """A function's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN
    act as its role: with only logs:* lambda:ListFunctions is refused; with
    AWSLambdaBasicExecutionRole and an inline ListFunctions allow it works."""
    iam, lam = client(strato, "iam"), client(strato, "lambda")
    logs_only = create_role(iam, "logs-only")
    iam.put_role_policy(RoleName="logs-only", PolicyName="logs", PolicyDocument=json.dumps({
        "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}))
    lister = create_role(iam, "lister")
    iam.attach_role_policy(RoleName="lister", PolicyArn=BASIC)
    iam.put_role_policy(RoleName="lister", PolicyName="list", PolicyDocument=json.dumps({
        "Statement": [{"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"}]}))
    deploy(lam, "narrow", logs_only, CREDS_CODE)
    deploy(lam, "wide", lister, CREDS_CODE)

    def creds(name):
        return json.loads(lam.invoke(FunctionName=name)["Payload"].read())

    narrow = creds("narrow")
    assert narrow["id"].startswith("ASIA") and len(narrow["id"]) == 20 and narrow["token"]
    response = error_of(function_client(strato, narrow, "lambda").list_functions)
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert response["Error"]["Message"].startswith(
        f"User: arn:aws:sts::{DEFAULT_ACCOUNT}:assumed-role/logs-only/narrow is not authorized "
        "to perform: lambda:ListFunctions")
    function_client(strato, narrow, "logs").describe_log_groups()
    # Session credentials: the key without its token is no credential.
    response = error_of(client(strato, "logs", narrow["id"], narrow["secret"]).describe_log_groups)
    assert response["Error"]["Code"] == "UnrecognizedClientException"
    wide = creds("wide")
    names = [f["FunctionName"] for f in function_client(strato, wide, "lambda").list_functions()["Functions"]]
    assert sorted(names) == ["narrow", "wide"]
    who = function_client(strato, wide, "sts").get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{DEFAULT_ACCOUNT}:assumed-role/lister/wide"


@pytest.mark.strato_args("--time-scale", "3600")
def test_function_credentials_expire_and_their_instance_is_retired_first(strato):
    """Instances get short-lived credentials (12 h, a scaled 12 s here) with a
    session token, in open mode too; the instance takes no invocation once
    they are about to expire: the next invocation runs on a new instance
    with new credentials, while the old ones are refused as expired."""
    lam = client(strato, "lambda")
    deploy(lam, "short-lived", f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/placeholder", CREDS_CODE)

    def creds():
        return json.loads(lam.invoke(FunctionName="short-lived")["Payload"].read())

    first = creds()
    assert first["id"].startswith("ASIA") and first["token"]
    assert function_client(strato, first, "sts").get_caller_identity()["Arn"] == \
        f"arn:aws:sts::{DEFAULT_ACCOUNT}:assumed-role/placeholder/short-lived"
    assert creds() == first  # the warm instance keeps its credentials

    def expired():
        try:
            function_client(strato, first, "sts").get_caller_identity()
            return False
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]

    error = wait_until(expired, "the function's credentials to expire", deadline_seconds=60, interval=0.5)
    assert error["Code"] == "ExpiredToken"  # STS speaks the query protocol
    assert error["Message"] == "The security token included in the request is expired"
    second = creds()
    assert second["id"] != first["id"]
    function_client(strato, second, "sts").get_caller_identity()


@ENFORCE
def test_assume_role_follows_the_trust_policy(strato):
    iam = client(strato, "iam")
    iam.create_user(UserName="dave")
    iam.put_user_policy(UserName="dave", PolicyName="assume", PolicyDocument=json.dumps({
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="dave")["AccessKey"]
    dave = client(strato, "sts", key["AccessKeyId"], key["SecretAccessKey"])
    lambda_only = create_role(iam, "lambda-only")
    response = error_of(dave.assume_role, RoleArn=lambda_only, RoleSessionName="s1")
    assert response["Error"]["Code"] == "AccessDenied"
    assert response["Error"]["Message"] == (
        f"User: arn:aws:iam::{DEFAULT_ACCOUNT}:user/dave is not authorized to perform: "
        f"sts:AssumeRole on resource: {lambda_only}")
    ops = create_role(iam, "ops", json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{DEFAULT_ACCOUNT}:user/dave"},
        "Action": "sts:AssumeRole"}]}))
    iam.attach_role_policy(RoleName="ops", PolicyArn="arn:aws:iam::aws:policy/AmazonSQSFullAccess")
    assumed = dave.assume_role(RoleArn=ops, RoleSessionName="night-shift", DurationSeconds=900)
    creds = assumed["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert assumed["AssumedRoleUser"]["Arn"] == \
        f"arn:aws:sts::{DEFAULT_ACCOUNT}:assumed-role/ops/night-shift"
    session = dict(key=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["SessionToken"])
    who = client(strato, "sts", **session).get_caller_identity()
    assert who["Arn"] == assumed["AssumedRoleUser"]["Arn"]
    assert who["UserId"] == assumed["AssumedRoleUser"]["AssumedRoleId"]
    client(strato, "sqs", **session).create_queue(QueueName="from-session")
    assert error_of(client(strato, "lambda", **session).list_functions)["Error"]["Code"] == \
        "AccessDeniedException"
    # The session's key without its token is no credential.
    response = error_of(client(strato, "lambda", creds["AccessKeyId"], creds["SecretAccessKey"]).list_functions)
    assert response["Error"]["Code"] == "UnrecognizedClientException"
    # DurationSeconds beyond the role's MaxSessionDuration.
    response = error_of(dave.assume_role, RoleArn=ops, RoleSessionName="s1", DurationSeconds=7200)
    assert response["Error"]["Message"] == \
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."


def test_session_policies_narrow_an_assumed_role_and_tokens_work_in_the_cli(strato):
    iam = client(strato, "iam")
    role = create_role(iam, "admin", json.dumps({"Statement": [{
        "Effect": "Allow", "Principal": {"AWS": DEFAULT_ACCOUNT}, "Action": "sts:AssumeRole"}]}))
    iam.attach_role_policy(RoleName="admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    out = strato.aws("sts", "assume-role", "--role-arn", role, "--role-session-name", "cli").check().json()
    creds = out["Credentials"]
    env = {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
           "AWS_SESSION_TOKEN": creds["SessionToken"]}
    who = strato.aws("sts", "get-caller-identity", env=env).check().json()
    assert who["Arn"] == f"arn:aws:sts::{DEFAULT_ACCOUNT}:assumed-role/admin/cli"
    token = client(strato, "sts").get_session_token(DurationSeconds=900)["Credentials"]
    assert token["AccessKeyId"].startswith("ASIA")
    assert client(strato, "sts", token["AccessKeyId"], token["SecretAccessKey"],
                  token["SessionToken"]).get_caller_identity()["Arn"] == f"arn:aws:iam::{DEFAULT_ACCOUNT}:root"


def test_users_groups_policies_and_versions(strato):
    iam = client(strato, "iam")
    iam.create_user(UserName="erin", Path="/team/")
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["erin"]
    assert iam.get_user(UserName="erin")["User"]["Arn"] == f"arn:aws:iam::{DEFAULT_ACCOUNT}:user/team/erin"
    iam.create_group(GroupName="devs")
    iam.add_user_to_group(GroupName="devs", UserName="erin")
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="erin")["Groups"]] == ["devs"]
    assert [u["UserName"] for u in iam.get_group(GroupName="devs")["Users"]] == ["erin"]
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    arn = iam.create_policy(PolicyName="read", PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
    iam.attach_group_policy(GroupName="devs", PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    doc2 = dict(doc, Statement=[dict(doc["Statement"][0], Action="s3:*")])
    v2 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(doc2), SetAsDefault=True)
    assert v2["PolicyVersion"]["VersionId"] == "v2" and v2["PolicyVersion"]["IsDefaultVersion"]
    got = iam.get_policy_version(PolicyArn=arn, VersionId="v2")["PolicyVersion"]
    assert got["Document"] == doc2
    assert [v["VersionId"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]] == ["v2", "v1"]
    response = error_of(iam.delete_policy_version, PolicyArn=arn, VersionId="v2")
    assert response["Error"]["Code"] == "DeleteConflict"
    iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    response = error_of(iam.delete_policy, PolicyArn=arn)
    assert response["Error"]["Code"] == "DeleteConflict"
    assert iam.get_policy(PolicyArn=BASIC)["Policy"]["PolicyName"] == "AWSLambdaBasicExecutionRole"
    aws_names = {p["PolicyName"] for p in iam.list_policies(Scope="AWS", MaxItems=1000)["Policies"]}
    assert {"AdministratorAccess", "AmazonS3ReadOnlyAccess", "AWSLambdaSQSQueueExecutionRole",
            "AWSLambdaDynamoDBExecutionRole", "AWSLambdaRole", "ReadOnlyAccess"} <= aws_names
    basic = iam.get_policy_version(PolicyArn=BASIC, VersionId="v1")["PolicyVersion"]["Document"]
    assert basic["Statement"][0]["Action"] == ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
    cli = strato.aws("iam", "list-attached-group-policies", "--group-name", "devs").check().json()
    assert cli["AttachedPolicies"] == [{"PolicyName": "read", "PolicyArn": arn}]


def test_bad_input_answers_aws_errors(strato):
    iam = client(strato, "iam")
    response = error_of(iam.get_user, UserName="non-existent-user")
    assert response["Error"] == {"Type": "Sender", "Code": "NoSuchEntity",
                                 "Message": "The user with name non-existent-user cannot be found."}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    iam.create_user(UserName="frank")
    for document, message in [
        ("{not json", "This policy contains invalid Json"),
        (json.dumps({"Statement": [{"Effect": "Allow", "Resource": "*"}]}), "Policy statement must contain actions."),
        (json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}), "Policy statement must contain resources."),
        (json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"}]}),
         "Policy document should not specify a principal."),
    ]:
        response = error_of(iam.put_user_policy, UserName="frank", PolicyName="p", PolicyDocument=document)
        assert response["Error"]["Code"] == "MalformedPolicyDocument"
        assert response["Error"]["Message"] == message
    big = json.dumps({"Statement": [{"Effect": "Allow", "Action": f"s3:Get{i}", "Resource": "*"} for i in range(200)]})
    assert error_of(iam.create_policy, PolicyName="big", PolicyDocument=big)["Error"]["Code"] == "LimitExceeded"
    response = error_of(iam.create_user, UserName="frank")
    assert response["Error"]["Code"] == "EntityAlreadyExists"
    response = error_of(client(strato, "sts").assume_role, RoleArn="nothing-valid-in-here", RoleSessionName="s1")
    assert response["Error"] == {"Type": "Sender", "Code": "ValidationError",
                                 "Message": "nothing-valid-in-here is invalid"}


@ENFORCE
def test_queue_and_topic_policies_decide_across_accounts(strato):
    """Resource policies under enforcement: another account sends to a queue
    and publishes to (and subscribes to) a topic only once its policy names
    that account, and an IAM user there needs its own allow too; in the owner
    account an explicit Deny in the queue policy beats the user's allow."""
    iam, sqs, sns = client(strato, "iam"), client(strato, "sqs"), client(strato, "sns")
    url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:inbox"
    topic = sns.create_topic(Name="news")["TopicArn"]
    other = strato.create_account()
    keys = (other["access_key_id"], other["secret_access_key"])
    their_sqs, their_sns = client(strato, "sqs", *keys), client(strato, "sns", *keys)
    theirs = f"arn:aws:iam::{other['account_id']}:root"

    response = error_of(their_sqs.send_message, QueueUrl=url, MessageBody="hi")
    assert response["Error"]["Code"] == "AccessDenied"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert response["Error"]["Message"] == (
        f"User: {theirs} is not authorized to perform: sqs:sendmessage on resource: {queue_arn} "
        "because no resource-based policy allows the sqs:sendmessage action")
    response = error_of(their_sns.publish, TopicArn=topic, Message="hi")
    assert response["Error"]["Code"] == "AuthorizationError"
    assert response["Error"]["Message"] == (
        f"User: {theirs} is not authorized to perform: SNS:Publish on resource: {topic} "
        "because no resource-based policy allows the SNS:Publish action")

    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": other["account_id"]},
             "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"], "Resource": queue_arn},
            {"Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": queue_arn,
             "Condition": {"StringLike": {"aws:PrincipalArn": "*:user/mallory"}}}]})})
    sns.add_permission(TopicArn=topic, Label="partner", AWSAccountId=[other["account_id"]],
                       ActionName=["Publish", "Subscribe"])
    their_sqs.send_message(QueueUrl=url, MessageBody="from the partner")
    assert their_sqs.get_queue_url(QueueName="inbox", QueueOwnerAWSAccountId=DEFAULT_ACCOUNT)[
        "QueueUrl"] == url
    assert error_of(their_sqs.receive_message, QueueUrl=url)["Error"]["Code"] == "AccessDenied"
    their_sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    their_sns.publish(TopicArn=topic, Message="published by the partner")
    bodies = set()
    wait_until(lambda: bodies.update(m["Body"] for m in sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []))
        or len(bodies) >= 2, "both messages")
    assert "from the partner" in bodies
    assert any("published by the partner" in b for b in bodies)

    # An IAM user of the other account needs its own allow as well.
    their_iam = client(strato, "iam", *keys)
    nothing = user_client(strato, their_iam, "eve", {"Statement": [
        {"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}, "sqs")
    response = error_of(nothing.send_message, QueueUrl=url, MessageBody="x")
    assert response["Error"]["Message"].endswith(
        "because no identity-based policy allows the sqs:sendmessage action")
    sender = user_client(strato, their_iam, "grace", {"Statement": [
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn}]}, "sqs")
    sender.send_message(QueueUrl=url, MessageBody="from grace")

    # In the owner account the queue policy's explicit Deny wins over the
    # user's own allow.
    mallory = user_client(strato, iam, "mallory", {"Statement": [
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}, "sqs")
    response = error_of(mallory.send_message, QueueUrl=url, MessageBody="x")
    assert response["Error"]["Message"] == (
        f"User: arn:aws:iam::{DEFAULT_ACCOUNT}:user/mallory is not authorized to perform: "
        f"sqs:sendmessage on resource: {queue_arn} with an explicit deny in a resource-based policy")
    trent = user_client(strato, iam, "trent", {"Statement": [
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}, "sqs")
    trent.send_message(QueueUrl=url, MessageBody="from trent")


@ENFORCE
def test_s3_takes_user_and_session_keys_and_decides_with_the_bucket_policy(strato):
    """S3 under enforcement: an IAM user's keys and an assumed role's session
    credentials sign S3 requests; each operation is its S3 action on S3's ARNs
    (s3:ListBucket on the bucket, s3:GetObject on bucket/key, ...); a bucket
    policy Deny on a prefix wins; another account reads and writes only what
    the bucket policy grants it, and copies from the bucket as far as it may
    read it; DeleteObjects is decided per key; ListBucket's condition keys
    (s3:prefix, s3:delimiter, s3:max-keys) and aws:SourceIp are given."""
    iam, s3, sts = client(strato, "iam"), client(strato, "s3"), client(strato, "sts")
    s3.create_bucket(Bucket="shared")
    s3.put_object(Bucket="shared", Key="public/a.txt", Body=b"a")
    s3.put_object(Bucket="shared", Key="secret/b.txt", Body=b"b")

    reader = user_client(strato, iam, "reader", {"Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shared/*"}]}, "s3")
    assert reader.get_object(Bucket="shared", Key="public/a.txt")["Body"].read() == b"a"
    response = error_of(reader.list_objects_v2, Bucket="shared")
    assert response["Error"]["Code"] == "AccessDenied"
    assert response["Error"]["Message"] == (
        f"User: arn:aws:iam::{DEFAULT_ACCOUNT}:user/reader is not authorized to perform: "
        's3:ListBucket on resource: "arn:aws:s3:::shared" because no identity-based policy '
        "allows the s3:ListBucket action")
    assert error_of(reader.put_object, Bucket="shared", Key="x", Body=b"x")["Error"]["Message"].startswith(
        f"User: arn:aws:iam::{DEFAULT_ACCOUNT}:user/reader is not authorized to perform: s3:PutObject")

    # A bucket-policy Deny on a prefix beats the user's allow.
    other = strato.create_account()
    s3.put_bucket_policy(Bucket="shared", Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::shared/secret/*",
             "Condition": {"StringNotEquals": {"aws:PrincipalArn": f"arn:aws:iam::{DEFAULT_ACCOUNT}:root"}}},
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{other['account_id']}:root"},
             "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::shared/*"}]}))
    response = error_of(reader.get_object, Bucket="shared", Key="secret/b.txt")
    assert response["Error"]["Message"].endswith("with an explicit deny in a resource-based policy")
    assert s3.get_object(Bucket="shared", Key="secret/b.txt")["Body"].read() == b"b"

    # Session credentials of an assumed role, with their token.
    create_role(iam, "s3-reader", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{DEFAULT_ACCOUNT}:root"},
         "Action": "sts:AssumeRole"}]}))
    iam.attach_role_policy(RoleName="s3-reader", PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/s3-reader",
                            RoleSessionName="job")["Credentials"]
    session = client(strato, "s3", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert [o["Key"] for o in session.list_objects_v2(Bucket="shared")["Contents"]] == \
        ["public/a.txt", "secret/b.txt"]
    assert error_of(session.delete_object, Bucket="shared", Key="public/a.txt")["Error"]["Code"] == "AccessDenied"
    forged = client(strato, "s3", creds["AccessKeyId"], creds["SecretAccessKey"], "not-the-token")
    assert error_of(forged.list_objects_v2, Bucket="shared")["Error"]["Code"] == "InvalidToken"

    # Another account (its keys made by `strato accounts` in another process,
    # S3's first request finds them): what the bucket policy grants, nothing else.
    theirs = client(strato, "s3", other["access_key_id"], other["secret_access_key"])
    assert theirs.get_object(Bucket="shared", Key="public/a.txt")["Body"].read() == b"a"
    theirs.put_object(Bucket="shared", Key="public/from-partner.txt", Body=b"p")
    assert s3.get_object(Bucket="shared", Key="public/from-partner.txt")["Body"].read() == b"p"
    for call, kwargs in ((theirs.get_object, {"Key": "secret/b.txt"}), (theirs.list_objects_v2, {}),
                         (theirs.delete_object, {"Key": "public/a.txt"})):
        response = error_of(call, Bucket="shared", **kwargs)
        assert (response["Error"]["Code"], response["Error"]["Message"]) == ("AccessDenied", "Access Denied")

    # A copy reads its source: from another account's bucket only as far as
    # that bucket's policy lets the caller read (and never the other way round).
    theirs.create_bucket(Bucket="partner")
    theirs.copy_object(Bucket="partner", Key="copied", CopySource="shared/public/a.txt")
    assert theirs.get_object(Bucket="partner", Key="copied")["Body"].read() == b"a"
    assert error_of(theirs.copy_object, Bucket="partner", Key="no",
                    CopySource="shared/secret/b.txt")["Error"]["Code"] == "AccessDenied"
    upload = theirs.create_multipart_upload(Bucket="partner", Key="parts")["UploadId"]
    theirs.upload_part_copy(Bucket="partner", Key="parts", UploadId=upload, PartNumber=1,
                            CopySource="shared/public/a.txt")
    assert error_of(s3.copy_object, Bucket="shared", Key="stolen",
                    CopySource="partner/copied")["Error"]["Message"] == "Access Denied"
    # The owner's cached policy follows DeleteBucketPolicy.
    s3.delete_bucket_policy(Bucket="shared")
    assert error_of(theirs.get_object, Bucket="shared", Key="public/a.txt")["Error"]["Code"] == "AccessDenied"

    # DeleteObjects is decided per key: the refused ones come back as errors.
    s3.put_object(Bucket="shared", Key="tmp/x", Body=b"x")
    cleaner = user_client(strato, iam, "cleaner", {"Statement": [
        {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::shared/tmp/*"}]}, "s3")
    answer = cleaner.delete_objects(Bucket="shared", Delete={"Objects": [
        {"Key": "tmp/x"}, {"Key": "public/a.txt"}]})
    assert [d["Key"] for d in answer["Deleted"]] == ["tmp/x"]
    assert answer["Errors"] == [{"Key": "public/a.txt", "Code": "AccessDenied", "Message": "Access Denied"}]
    assert s3.get_object(Bucket="shared", Key="public/a.txt")["Body"].read() == b"a"

    # ListBucket's condition keys and the client's address.
    lister = user_client(strato, iam, "lister", {"Statement": [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::shared",
         "Condition": {"StringEquals": {"s3:prefix": "public/", "s3:delimiter": "/"},
                       "NumericLessThanEquals": {"s3:max-keys": "10"}}},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shared/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::shared/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}, "s3")
    listed = lister.list_objects_v2(Bucket="shared", Prefix="public/", Delimiter="/", MaxKeys=5)
    assert [o["Key"] for o in listed["Contents"]] == ["public/a.txt", "public/from-partner.txt"]
    for kwargs in ({"Prefix": "secret/", "Delimiter": "/", "MaxKeys": 5},
                   {"Prefix": "public/", "Delimiter": "/"},
                   {"Prefix": "public/", "Delimiter": "/", "MaxKeys": 50}):
        assert error_of(lister.list_objects_v2, Bucket="shared", **kwargs)["Error"]["Code"] == "AccessDenied"
    assert lister.get_object(Bucket="shared", Key="public/a.txt")["Body"].read() == b"a"
    assert error_of(lister.put_object, Bucket="shared", Key="public/n", Body=b"n")["Error"]["Code"] == \
        "AccessDenied"


@ENFORCE
def test_layer_version_policies_decide_who_uses_a_layer(strato):
    """AddLayerVersionPermission under enforcement: another account reads the
    version and builds a function on it once granted; an IAM user there also
    needs lambda:GetLayerVersion in its own policies."""
    lam = client(strato, "lambda")
    layer = lam.publish_layer_version(LayerName="lib", Content={"ZipFile": make_zip(
        {"nodejs/node_modules/lib/index.js": "exports.v = 7;\n"})})["LayerVersionArn"]
    other = strato.create_account()
    keys = (other["access_key_id"], other["secret_access_key"])
    their_lam, their_iam = client(strato, "lambda", *keys), client(strato, "iam", *keys)
    theirs = f"arn:aws:iam::{other['account_id']}:root"
    response = error_of(their_lam.get_layer_version_by_arn, Arn=layer)
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert response["Error"]["Message"] == (
        f"User: {theirs} is not authorized to perform: lambda:GetLayerVersion on resource: {layer} "
        "because no resource-based policy allows the lambda:GetLayerVersion action")
    lam.add_layer_version_permission(LayerName="lib", VersionNumber=1, StatementId="partner",
                                     Action="lambda:GetLayerVersion", Principal=other["account_id"])
    assert their_lam.get_layer_version_by_arn(Arn=layer)["Version"] == 1

    role = create_role(their_iam, "fn-role")
    builder = user_client(strato, their_iam, "builder", {"Statement": [
        {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:GetFunction*"], "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": role}]}, "lambda")
    create = {"FunctionName": "uses-lib", "Runtime": "nodejs20.x", "Role": role,
              "Handler": "index.handler", "Layers": [layer],
              "Code": {"ZipFile": make_zip({"index.js": "exports.handler = async () => require('lib').v;\n"})}}
    response = error_of(builder.create_function, **create)
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert response["Error"]["Message"] == (
        f"User: arn:aws:iam::{other['account_id']}:user/builder is not authorized to perform: "
        f"lambda:GetLayerVersion on resource: {layer} because no identity-based policy allows "
        "the lambda:GetLayerVersion action")
    their_iam.put_user_policy(UserName="builder", PolicyName="layers", PolicyDocument=json.dumps({
        "Statement": [{"Effect": "Allow", "Action": "lambda:GetLayerVersion", "Resource": layer}]}))
    assert builder.create_function(**create)["Layers"][0]["Arn"] == layer
    their_lam.get_waiter("function_active_v2").wait(FunctionName="uses-lib")
    assert json.loads(their_lam.invoke(FunctionName="uses-lib")["Payload"].read()) == 7


@ENFORCE
def test_destinations_are_sent_with_the_function_role(strato):
    """Under enforcement Lambda sends an asynchronous invocation's record to
    its destination with the function's execution role: without
    sqs:SendMessage on the queue the record is not delivered and
    DestinationDeliveryFailures counts it; once the role allows it, it is."""
    import datetime

    iam, lam, sqs = client(strato, "iam"), client(strato, "lambda"), client(strato, "sqs")
    cloudwatch = client(strato, "cloudwatch")
    url = sqs.create_queue(QueueName="results")["QueueUrl"]
    queue_arn = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:results"
    role = create_role(iam, "async-role")
    iam.attach_role_policy(RoleName="async-role", PolicyArn=BASIC)
    deploy(lam, "async", role, 'exports.handler = async (e) => ({done: e.n});\n')
    lam.put_function_event_invoke_config(
        FunctionName="async", DestinationConfig={"OnSuccess": {"Destination": queue_arn}})
    now = datetime.datetime.now(datetime.timezone.utc)

    def failures():
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName="DestinationDeliveryFailures",
            Dimensions=[{"Name": "FunctionName", "Value": "async"}],
            StartTime=now - datetime.timedelta(minutes=10), EndTime=now + datetime.timedelta(minutes=2),
            Period=60, Statistics=["Sum"])["Datapoints"]
        return sum(p["Sum"] for p in points)

    lam.invoke(FunctionName="async", InvocationType="Event", Payload=b'{"n": 1}')
    wait_until(lambda: failures() == 1, "DestinationDeliveryFailures in CloudWatch")
    assert "Messages" not in sqs.receive_message(QueueUrl=url)

    iam.put_role_policy(RoleName="async-role", PolicyName="send", PolicyDocument=json.dumps({
        "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn}]}))
    lam.invoke(FunctionName="async", InvocationType="Event", Payload=b'{"n": 2}')
    message = wait_until(lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages"),
                         "the record in the destination queue")
    record = json.loads(message[0]["Body"])
    assert record["responsePayload"] == {"done": 2}
    assert failures() == 1


@ENFORCE
def test_a_schedule_invokes_its_target_with_its_role(strato):
    """Scheduler's RoleArn under enforcement: a role without sqs:SendMessage
    on the target fails the invocation into the schedule's dead-letter queue
    with its error attributes, which Scheduler sends with the same role (a
    role scheduler.amazonaws.com may not assume sends nothing anywhere); a
    role it may assume that allows the action delivers."""
    import datetime

    iam, sqs, scheduler = client(strato, "iam"), client(strato, "sqs"), client(strato, "scheduler")
    target_url = sqs.create_queue(QueueName="ticks")["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName="ticks-dlq")["QueueUrl"]
    target = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:ticks"
    dlq = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:ticks-dlq"
    send = json.dumps({"Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]})
    lambda_only = create_role(iam, "lambda-trusting")
    iam.put_role_policy(RoleName="lambda-trusting", PolicyName="send", PolicyDocument=send)
    scheduler_role = create_role(iam, "scheduler-role", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName="scheduler-role", PolicyName="send", PolicyDocument=send)
    dlq_only = create_role(iam, "dlq-only", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName="dlq-only", PolicyName="send", PolicyDocument=json.dumps(
        {"Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": dlq}]}))

    def schedule(name, role):
        when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
        scheduler.create_schedule(
            Name=name, ScheduleExpression=f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": target, "RoleArn": role, "Input": json.dumps({"from": name}),
                    "DeadLetterConfig": {"Arn": dlq}, "RetryPolicy": {"MaximumRetryAttempts": 0}})

    def received(url):
        return lambda: sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"],
                                           WaitTimeSeconds=1).get("Messages")

    schedule("untrusted", lambda_only)
    schedule("dlq-only", dlq_only)
    dead = wait_until(received(dlq_url), "the dead letter")[0]
    assert json.loads(dead["Body"]) == {"from": "dlq-only"}
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "NO_PERMISSIONS"
    assert dlq_only in attributes["ERROR_MESSAGE"]
    sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=dead["ReceiptHandle"])

    schedule("trusted", scheduler_role)
    delivered = wait_until(received(target_url), "the scheduled message")[0]
    assert json.loads(delivered["Body"]) == {"from": "trusted"}
    # The untrusted schedule, due before the trusted one, reached neither queue.
    assert "Messages" not in sqs.receive_message(QueueUrl=dlq_url)
    assert "Messages" not in sqs.receive_message(QueueUrl=target_url)


def _signed_call(strato, api_id: str, method: str, path: str, key: str, secret: str):
    """A REST API data-plane request signed for `execute-api`, host-style (the signature
    covers the host and path the gateway sees); (status, body text)."""
    import http.client
    import urllib.parse

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    port = urllib.parse.urlparse(strato.endpoint).port
    request = AWSRequest(method=method, url=f"http://{api_id}.execute-api.localhost:{port}{path}",
                         data=b"")
    SigV4Auth(Credentials(key, secret), "execute-api", REGION).add_auth(request)
    headers = dict(request.headers.items())
    headers["Host"] = f"{api_id}.execute-api.localhost:{port}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=b"", headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@ENFORCE
def test_rest_api_iam_methods_are_invoked_as_the_signers_policies_allow(strato):
    apigw = client(strato, "apigateway")
    api_id = apigw.create_rest_api(name="iam-methods")["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    items = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="items")["id"]
    for method in ("GET", "POST"):
        apigw.put_method(restApiId=api_id, resourceId=items, httpMethod=method,
                         authorizationType="AWS_IAM")
        apigw.put_integration(restApiId=api_id, resourceId=items, httpMethod=method, type="MOCK",
                              requestTemplates={"application/json": '{"statusCode": 200}'})
        apigw.put_method_response(restApiId=api_id, resourceId=items, httpMethod=method,
                                  statusCode="200")
        apigw.put_integration_response(restApiId=api_id, resourceId=items, httpMethod=method,
                                       statusCode="200",
                                       responseTemplates={"application/json": '{"served": true}'})
    apigw.create_deployment(restApiId=api_id, stageName="prod")
    get_arn = f"arn:aws:execute-api:{REGION}:{DEFAULT_ACCOUNT}:{api_id}/prod/GET/items"

    iam = client(strato, "iam")
    reader = user_keys(iam, "reader", allow("execute-api:Invoke", get_arn))

    status, body = _signed_call(strato, api_id, "GET", "/prod/items", *reader)
    assert (status, json.loads(body)) == (200, {"served": True})
    status, body = _signed_call(strato, api_id, "POST", "/prod/items", *reader)
    assert status == 403, body
    assert (f"User: arn:aws:iam::{DEFAULT_ACCOUNT}:user/reader is not authorized to perform: "
            f"execute-api:Invoke on resource: arn:aws:execute-api:{REGION}:{DEFAULT_ACCOUNT}:"
            f"{api_id}/prod/POST/items") in body
    # The account's root may call every method of its own API.
    assert _signed_call(strato, api_id, "POST", "/prod/items", "test", "test")[0] == 200


@ENFORCE
def test_http_api_iam_routes_are_invoked_as_the_signers_policies_allow(strato):
    v2 = client(strato, "apigatewayv2")
    api_id = v2.create_api(Name="iam-routes", ProtocolType="HTTP")["ApiId"]
    backend = v2.create_integration(ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="GET",
                                    IntegrationUri=f"{strato.endpoint}/strato/health",
                                    PayloadFormatVersion="1.0")["IntegrationId"]
    for key in ("GET /open", "GET /closed"):
        v2.create_route(ApiId=api_id, RouteKey=key, AuthorizationType="AWS_IAM",
                        Target=f"integrations/{backend}")
    v2.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    iam = client(strato, "iam")
    router = user_keys(iam, "router", allow(
        "execute-api:Invoke", f"arn:aws:execute-api:{REGION}:{DEFAULT_ACCOUNT}:{api_id}/*/GET/open"))
    wait_until(lambda: _signed_call(strato, api_id, "GET", "/open", "test", "test")[0] == 200,
               "the auto-deployed stage to serve", deadline_seconds=30)
    assert _signed_call(strato, api_id, "GET", "/open", *router)[0] == 200
    status, body = _signed_call(strato, api_id, "GET", "/closed", *router)
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    assert _signed_call(strato, api_id, "GET", "/closed", "test", "test")[0] == 200


@ENFORCE
def test_websocket_connections_are_managed_as_the_signers_policies_allow(strato):
    import asyncio
    import urllib.parse

    import websockets

    v2 = client(strato, "apigatewayv2")
    api_id = v2.create_api(Name="iam-ws", ProtocolType="WEBSOCKET",
                           RouteSelectionExpression="$request.body.action")["ApiId"]
    v2.create_stage(ApiId=api_id, StageName="prod", AutoDeploy=True)
    iam = client(strato, "iam")
    watcher_keys = user_keys(iam, "watcher", allow(
        "execute-api:ManageConnections",
        f"arn:aws:execute-api:{REGION}:{DEFAULT_ACCOUNT}:{api_id}/prod/GET/@connections/*"))
    port = urllib.parse.urlparse(strato.endpoint).port

    def management(access_key: str, secret: str):
        session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret,
                                        region_name=REGION)
        return session.client("apigatewaymanagementapi",
                              endpoint_url=f"{strato.endpoint}/_strato/execute-api/{api_id}/prod",
                              config=Config(retries={"max_attempts": 0}))

    async def scenario():
        async with websockets.connect(f"ws://127.0.0.1:{port}/_strato/execute-api/{api_id}/prod") as ws:
            root = management("test", "test")
            # No route serves the message: the gateway's error frame names the connection.
            await ws.send(json.dumps({"action": "whoami"}))
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            connection_id = frame["connectionId"]
            watcher = management(*watcher_keys)
            assert "ConnectedAt" in watcher.get_connection(ConnectionId=connection_id)
            refused = error_of(watcher.post_to_connection, ConnectionId=connection_id, Data=b"hi")
            assert refused["Error"]["Code"] == "ForbiddenException"
            assert "is not authorized to perform: execute-api:ManageConnections" in \
                refused["Error"]["Message"]
            root.post_to_connection(ConnectionId=connection_id, Data=b"from the root")
            assert await asyncio.wait_for(ws.recv(), 30) == "from the root"

    asyncio.run(scenario())
