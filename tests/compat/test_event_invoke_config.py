"""Asynchronous invocation settings (Put/Update/Get/Delete/ListFunctionEventInvokeConfig[s])
with boto3 and the AWS CLI (v1): round trips on $LATEST, a version and an alias, and AWS's
errors, codes and messages as AWS sends them.

One server serves the whole module: the tests share two functions (a version and an alias of
the first) and each test leaves the configurations it made deleted.
"""

from __future__ import annotations

import datetime
import json
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, _start, _stop, make_zip

FN = "eic"
DEST = "eic-dest"
ALIAS = "live"
ARN_PREFIX = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:"
FN_ARN = ARN_PREFIX + FN
DEST_ARN = ARN_PREFIX + DEST
NO_DESTINATIONS = {"OnSuccess": {}, "OnFailure": {}}
DESTINATION_PATTERN = (
    r"$|kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:"
    r"((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)"
)


@pytest.fixture(scope="module")
def server(strato_binary):
    root = Path(tempfile.mkdtemp(prefix="strato-compat-eic-"))
    running = _start(strato_binary, root)
    try:
        package = root / "fn.zip"
        package.write_bytes(make_zip())
        for name in (FN, DEST):
            running.aws(
                "lambda", "create-function", "--function-name", name, "--runtime", "nodejs20.x",
                "--handler", "index.handler", "--role", ROLE, "--zip-file", f"fileb://{package}",
            ).check()
            running.aws("lambda", "wait", "function-active-v2", "--function-name", name).check()
        running.aws("lambda", "publish-version", "--function-name", FN).check()
        running.aws("lambda", "create-alias", "--function-name", FN, "--name", ALIAS,
                    "--function-version", "1").check()
        yield running
    finally:
        _stop(running.proc)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def client(server):
    return server.lambda_client()


def error_of(call, **kwargs) -> dict:
    """The parsed error response of a call that must fail."""
    try:
        call(**kwargs)
    except ClientError as e:
        return e.response
    raise AssertionError(f"{call.__name__}({kwargs}) succeeded")


def unvalidated_client(server):
    """A client that sends what it is given: botocore checks ranges and types itself."""
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                    region_name=REGION)
    return session.client("lambda", endpoint_url=server.endpoint,
                          config=Config(retries={"max_attempts": 0}, parameter_validation=False))


def raw_get(server, path: str) -> tuple[int, dict]:
    """A signed GET, for the JSON exactly as the server wrote it."""
    request = AWSRequest(method="GET", url=f"{server.endpoint}{path}")
    SigV4Auth(Credentials("test", "test"), "lambda", REGION).add_auth(request)
    prepared = urllib.request.Request(request.url, headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def assert_error(response: dict, code: str, message: str, status: int) -> None:
    assert response["Error"]["Code"] == code, response
    assert response["Error"]["Message"] == message, response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status, response


def assert_not_found(response: dict, message: str) -> None:
    assert_error(response, "ResourceNotFoundException", message, 404)
    # AWS sends these in a capitalised `Message` member (and `Type`), which botocore hands on.
    assert response["Message"] == message, response
    assert response["Type"] == "User", response


def no_config(qualified: str) -> str:
    return f"The function {ARN_PREFIX}{qualified} doesn't have an EventInvokeConfig"


def test_latest_round_trip(server, client):
    put = client.put_function_event_invoke_config(FunctionName=FN, MaximumRetryAttempts=1)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert put["FunctionArn"] == f"{FN_ARN}:$LATEST"
    assert put["MaximumRetryAttempts"] == 1
    assert "MaximumEventAgeInSeconds" not in put
    assert put["DestinationConfig"] == NO_DESTINATIONS
    assert isinstance(put["LastModified"], datetime.datetime)
    # Epoch seconds (not milliseconds): the date is today's, give or take a day.
    age = datetime.datetime.now(datetime.timezone.utc) - put["LastModified"]
    assert abs(age.total_seconds()) < 24 * 3600, put["LastModified"]

    got = client.get_function_event_invoke_config(FunctionName=FN)
    assert got["FunctionArn"] == f"{FN_ARN}:$LATEST"
    assert got["MaximumRetryAttempts"] == 1
    assert got["LastModified"] == put["LastModified"]
    explicit = client.get_function_event_invoke_config(FunctionName=FN, Qualifier="$LATEST")
    assert explicit["FunctionArn"] == got["FunctionArn"]

    updated = client.update_function_event_invoke_config(FunctionName=FN,
                                                         MaximumEventAgeInSeconds=120)
    assert updated["MaximumRetryAttempts"] == 1
    assert updated["MaximumEventAgeInSeconds"] == 120
    assert updated["LastModified"] >= put["LastModified"]

    # Put replaces the whole configuration: the event age set before is gone.
    replaced = client.put_function_event_invoke_config(FunctionName=FN, MaximumRetryAttempts=0)
    assert replaced["MaximumRetryAttempts"] == 0
    assert "MaximumEventAgeInSeconds" not in replaced
    got = client.get_function_event_invoke_config(FunctionName=f"{FN}:$LATEST")
    assert got["MaximumRetryAttempts"] == 0
    assert "MaximumEventAgeInSeconds" not in got

    listed = client.list_function_event_invoke_configs(FunctionName=FN)
    assert [c["FunctionArn"] for c in listed["FunctionEventInvokeConfigs"]] == [
        f"{FN_ARN}:$LATEST"]
    assert "NextMarker" not in listed

    # On the wire LastModified is epoch seconds, a JSON number with a fraction.
    status, raw = raw_get(server, f"/2019-09-25/functions/{FN}/event-invoke-config")
    assert status == 200
    assert isinstance(raw["LastModified"], float), raw
    assert raw["LastModified"] == replaced["LastModified"].timestamp()

    deleted = client.delete_function_event_invoke_config(FunctionName=FN)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    status, raw = raw_get(server, f"/2019-09-25/functions/{FN}/event-invoke-config")
    assert (status, raw) == (404, {"Type": "User", "Message": no_config(f"{FN}:$LATEST")})
    assert_not_found(error_of(client.get_function_event_invoke_config, FunctionName=FN),
                     no_config(f"{FN}:$LATEST"))
    assert_not_found(error_of(client.delete_function_event_invoke_config, FunctionName=FN),
                     no_config(f"{FN}:$LATEST"))
    assert client.list_function_event_invoke_configs(
        FunctionName=FN)["FunctionEventInvokeConfigs"] == []


def test_version_and_alias_round_trip(client):
    version = client.put_function_event_invoke_config(FunctionName=FN, Qualifier="1",
                                                      MaximumEventAgeInSeconds=60)
    assert version["FunctionArn"] == f"{FN_ARN}:1"
    assert version["MaximumEventAgeInSeconds"] == 60
    assert "MaximumRetryAttempts" not in version

    # The alias by name and qualifier, by shorthand, and by its ARN all name one configuration.
    by_qualifier = client.put_function_event_invoke_config(FunctionName=FN, Qualifier=ALIAS,
                                                           MaximumRetryAttempts=2)
    assert by_qualifier["FunctionArn"] == f"{FN_ARN}:{ALIAS}"
    by_shorthand = client.put_function_event_invoke_config(FunctionName=f"{FN}:{ALIAS}",
                                                           MaximumRetryAttempts=1)
    assert by_shorthand["FunctionArn"] == f"{FN_ARN}:{ALIAS}"
    by_arn = client.get_function_event_invoke_config(FunctionName=f"{FN_ARN}:{ALIAS}")
    assert by_arn["MaximumRetryAttempts"] == 1
    partial = client.get_function_event_invoke_config(
        FunctionName=f"{DEFAULT_ACCOUNT}:function:{FN}", Qualifier="1")
    assert partial["FunctionArn"] == f"{FN_ARN}:1"

    client.put_function_event_invoke_config(FunctionName=FN, MaximumRetryAttempts=0)
    listed = client.list_function_event_invoke_configs(FunctionName=FN)
    arns = sorted(c["FunctionArn"] for c in listed["FunctionEventInvokeConfigs"])
    assert arns == sorted([f"{FN_ARN}:$LATEST", f"{FN_ARN}:1", f"{FN_ARN}:{ALIAS}"])
    for config in listed["FunctionEventInvokeConfigs"]:
        assert config["DestinationConfig"] == NO_DESTINATIONS
        assert isinstance(config["LastModified"], datetime.datetime)

    first = client.list_function_event_invoke_configs(FunctionName=FN, MaxItems=2)
    assert len(first["FunctionEventInvokeConfigs"]) == 2
    assert first["NextMarker"]
    second = client.list_function_event_invoke_configs(FunctionName=FN, MaxItems=2,
                                                       Marker=first["NextMarker"])
    assert len(second["FunctionEventInvokeConfigs"]) == 1
    assert "NextMarker" not in second
    paged = [c["FunctionArn"] for c in
             first["FunctionEventInvokeConfigs"] + second["FunctionEventInvokeConfigs"]]
    assert sorted(paged) == arns

    # Update changes only what it is given, on the alias as on $LATEST.
    updated = client.update_function_event_invoke_config(FunctionName=FN, Qualifier=ALIAS,
                                                         MaximumEventAgeInSeconds=3600)
    assert updated["MaximumRetryAttempts"] == 1
    assert updated["MaximumEventAgeInSeconds"] == 3600

    for qualifier in ("$LATEST", "1", ALIAS):
        client.delete_function_event_invoke_config(FunctionName=FN, Qualifier=qualifier)
    assert client.list_function_event_invoke_configs(
        FunctionName=FN)["FunctionEventInvokeConfigs"] == []
    assert_not_found(
        error_of(client.get_function_event_invoke_config, FunctionName=f"{FN_ARN}:{ALIAS}"),
        no_config(f"{FN}:{ALIAS}"))
    assert_not_found(
        error_of(client.update_function_event_invoke_config, FunctionName=f"{FN_ARN}:{ALIAS}",
                 MaximumRetryAttempts=0),
        no_config(f"{FN}:{ALIAS}"))
    assert_not_found(
        error_of(client.update_function_event_invoke_config, FunctionName=FN_ARN,
                 MaximumRetryAttempts=0),
        no_config(f"{FN}:$LATEST"))


def test_destinations(client):
    put = client.put_function_event_invoke_config(
        FunctionName=FN, DestinationConfig={"OnSuccess": {"Destination": DEST_ARN}})
    assert put["DestinationConfig"] == {"OnSuccess": {"Destination": DEST_ARN}, "OnFailure": {}}
    assert "MaximumRetryAttempts" not in put

    updated = client.update_function_event_invoke_config(
        FunctionName=FN, DestinationConfig={"OnFailure": {"Destination": f"{DEST_ARN}:$LATEST"}})
    assert updated["DestinationConfig"] == {
        "OnSuccess": {}, "OnFailure": {"Destination": f"{DEST_ARN}:$LATEST"}}
    got = client.get_function_event_invoke_config(FunctionName=FN)
    assert got["DestinationConfig"] == updated["DestinationConfig"]

    # A DestinationConfig without ARNs is a setting of its own.
    for empty in ({"OnSuccess": {}}, {"OnFailure": {}}):
        put = client.put_function_event_invoke_config(FunctionName=FN, DestinationConfig=empty)
        assert put["DestinationConfig"] == NO_DESTINATIONS

    missing = f"{ARN_PREFIX}doesnotexist"
    assert_error(
        error_of(client.put_function_event_invoke_config, FunctionName=FN,
                 DestinationConfig={"OnSuccess": {"Destination": missing}}),
        "InvalidParameterValueException", f"The destination ARN {missing} is invalid.", 400)
    assert_error(
        error_of(client.put_function_event_invoke_config, FunctionName=FN,
                 DestinationConfig={"OnSuccess": {"Destination": FN_ARN}}),
        "InvalidParameterValueException",
        "You can't specify the function as a destination for itself.", 400)
    iam = FN_ARN.replace(":lambda:", ":iam:")
    assert_error(
        error_of(client.put_function_event_invoke_config, FunctionName=FN,
                 DestinationConfig={"OnSuccess": {"Destination": iam}}),
        "InvalidParameterValueException",
        f"The provided destination config DestinationConfig(onSuccess=OnSuccess(destination={iam}),"
        " onFailure=null) is invalid.", 400)
    # No such queue, topic or bus exists, so these are refused as AWS refuses a destination
    # that does not exist.
    for arn in (f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:queue",
                f"arn:aws:sns:{REGION}:{DEFAULT_ACCOUNT}:topic",
                f"arn:aws:events:{REGION}:{DEFAULT_ACCOUNT}:event-bus/missing"):
        assert_error(
            error_of(client.put_function_event_invoke_config, FunctionName=FN,
                     DestinationConfig={"OnFailure": {"Destination": arn}}),
            "InvalidParameterValueException", f"The destination ARN {arn} is invalid.", 400)
    malformed = FN_ARN.replace(":lambda:", ":_-/!lambda:")
    assert_error(
        error_of(client.put_function_event_invoke_config, FunctionName=FN,
                 DestinationConfig={"OnFailure": {"Destination": malformed}}),
        "ValidationException",
        f"1 validation error detected: Value '{malformed}' at 'destinationConfig.onFailure."
        f"destination' failed to satisfy constraint: Member must satisfy regular expression "
        f"pattern: {DESTINATION_PATTERN}", 400)

    # The refused requests left the last accepted configuration as it was.
    assert client.get_function_event_invoke_config(
        FunctionName=FN)["DestinationConfig"] == NO_DESTINATIONS
    client.delete_function_event_invoke_config(FunctionName=FN)


@pytest.mark.parametrize(
    "members, field, value, constraint",
    [
        ({"MaximumRetryAttempts": 3}, "maximumRetryAttempts", "3",
         "Member must have value less than or equal to 2"),
        ({"MaximumRetryAttempts": -1}, "maximumRetryAttempts", "-1",
         "Member must have value greater than or equal to 0"),
        ({"MaximumEventAgeInSeconds": 59}, "maximumEventAgeInSeconds", "59",
         "Member must have value greater than or equal to 60"),
        ({"MaximumEventAgeInSeconds": 21601}, "maximumEventAgeInSeconds", "21601",
         "Member must have value less than or equal to 21600"),
    ],
)
def test_setting_out_of_range(server, members, field, value, constraint):
    raw = unvalidated_client(server)
    for call in (raw.put_function_event_invoke_config, raw.update_function_event_invoke_config):
        assert_error(
            error_of(call, FunctionName=FN, **members), "ValidationException",
            f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
            f"constraint: {constraint}", 400)


def test_request_errors(server, client):
    nothing = "You must specify at least one of error handling or destination setting."
    for call in (client.put_function_event_invoke_config,
                 client.update_function_event_invoke_config):
        assert_error(error_of(call, FunctionName=FN), "InvalidParameterValueException", nothing,
                     400)
        # Checked before the function is looked up, as AWS does.
        assert_error(error_of(call, FunctionName="doesnotexist"),
                     "InvalidParameterValueException", nothing, 400)

    raw = unvalidated_client(server)
    wrong_type = error_of(raw.put_function_event_invoke_config, FunctionName=FN,
                          MaximumRetryAttempts="two")
    assert wrong_type["Error"]["Code"] == "SerializationException"
    assert wrong_type["ResponseMetadata"]["HTTPStatusCode"] == 400
    too_many = error_of(raw.list_function_event_invoke_configs, FunctionName=FN, MaxItems=51)
    assert_error(too_many, "ValidationException",
                 "1 validation error detected: Value '51' at 'maxItems' failed to satisfy "
                 "constraint: Member must have value less than or equal to 50", 400)

    conflict = "The derived qualifier from the function name does not match the specified qualifier."
    assert_error(
        error_of(client.put_function_event_invoke_config, FunctionName=f"{FN}:1",
                 Qualifier="$LATEST", MaximumRetryAttempts=1),
        "InvalidParameterValueException", conflict, 400)
    assert_error(
        error_of(client.put_function_event_invoke_config, FunctionName=f"{FN_ARN}:{ALIAS}",
                 Qualifier=f"{ALIAS}doesnotexist", MaximumRetryAttempts=1),
        "InvalidParameterValueException", conflict, 400)


def test_not_found(client):
    missing = "The function doesn't exist."
    for kwargs in ({"FunctionName": "doesnotexist"}, {"FunctionName": f"{ARN_PREFIX}doesnotexist"},
                   {"FunctionName": FN, "Qualifier": f"{ALIAS}doesnotexist"},
                   {"FunctionName": FN, "Qualifier": "9"}):
        assert_not_found(error_of(client.put_function_event_invoke_config,
                                  MaximumRetryAttempts=1, **kwargs), missing)
        assert_not_found(error_of(client.update_function_event_invoke_config,
                                  MaximumRetryAttempts=1, **kwargs), missing)
    assert_not_found(error_of(client.list_function_event_invoke_configs,
                              FunctionName="doesnotexist"), missing)

    # Get and Delete say the configuration is missing, whatever else is.
    for call in (client.get_function_event_invoke_config,
                 client.delete_function_event_invoke_config):
        assert_not_found(error_of(call, FunctionName="doesnotexist"),
                         no_config("doesnotexist:$LATEST"))
        assert_not_found(error_of(call, FunctionName=FN, Qualifier="doesnotexist"),
                         no_config(f"{FN}:doesnotexist"))
        assert_not_found(error_of(call, FunctionName=FN, Qualifier="1"), no_config(f"{FN}:1"))


def test_deleting_a_qualifier_deletes_its_config(client):
    client.update_function_configuration(FunctionName=FN, Description="for version 2")
    client.get_waiter("function_updated_v2").wait(FunctionName=FN)
    version = client.publish_version(FunctionName=FN)["Version"]
    client.create_alias(FunctionName=FN, Name="short-lived", FunctionVersion=version)
    client.put_function_event_invoke_config(FunctionName=FN, Qualifier=version,
                                            MaximumRetryAttempts=0)
    client.put_function_event_invoke_config(FunctionName=FN, Qualifier="short-lived",
                                            MaximumRetryAttempts=0)

    client.delete_alias(FunctionName=FN, Name="short-lived")
    client.delete_function(FunctionName=FN, Qualifier=version)
    assert client.list_function_event_invoke_configs(
        FunctionName=FN)["FunctionEventInvokeConfigs"] == []

    # An alias created again under the same name starts without one.
    client.create_alias(FunctionName=FN, Name="short-lived", FunctionVersion="1")
    assert_not_found(
        error_of(client.get_function_event_invoke_config, FunctionName=FN,
                 Qualifier="short-lived"),
        no_config(f"{FN}:short-lived"))
    client.delete_alias(FunctionName=FN, Name="short-lived")


def test_deleting_the_function_deletes_its_configs(server, client, tmp_path):
    package = tmp_path / "gone.zip"
    package.write_bytes(make_zip())
    server.aws("lambda", "create-function", "--function-name", "eic-gone", "--runtime",
               "nodejs20.x", "--handler", "index.handler", "--role", ROLE,
               "--zip-file", f"fileb://{package}").check()
    server.aws("lambda", "wait", "function-active-v2", "--function-name", "eic-gone").check()
    client.put_function_event_invoke_config(FunctionName="eic-gone", MaximumRetryAttempts=1)
    client.delete_function(FunctionName="eic-gone")
    server.aws("lambda", "create-function", "--function-name", "eic-gone", "--runtime",
               "nodejs20.x", "--handler", "index.handler", "--role", ROLE,
               "--zip-file", f"fileb://{package}").check()
    assert client.list_function_event_invoke_configs(
        FunctionName="eic-gone")["FunctionEventInvokeConfigs"] == []
    client.delete_function(FunctionName="eic-gone")


def test_cli_round_trip(server):
    destination = json.dumps({"OnFailure": {"Destination": DEST_ARN}})
    put = server.aws("lambda", "put-function-event-invoke-config", "--function-name", FN,
                     "--qualifier", ALIAS, "--maximum-retry-attempts", "1",
                     "--destination-config", destination).check().json()
    assert put["FunctionArn"] == f"{FN_ARN}:{ALIAS}"
    assert put["MaximumRetryAttempts"] == 1
    assert put["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {"Destination": DEST_ARN}}
    assert put["LastModified"]

    updated = server.aws("lambda", "update-function-event-invoke-config", "--function-name",
                         f"{FN}:{ALIAS}", "--maximum-event-age-in-seconds", "600").check().json()
    assert updated["MaximumEventAgeInSeconds"] == 600
    assert updated["DestinationConfig"] == put["DestinationConfig"]

    got = server.aws("lambda", "get-function-event-invoke-config", "--function-name", FN,
                     "--qualifier", ALIAS).check().json()
    assert got == updated

    listed = server.aws("lambda", "list-function-event-invoke-configs", "--function-name",
                        FN).check().json()
    assert [c["FunctionArn"] for c in listed["FunctionEventInvokeConfigs"]] == [
        f"{FN_ARN}:{ALIAS}"]

    server.aws("lambda", "delete-function-event-invoke-config", "--function-name", FN,
               "--qualifier", ALIAS).check()
    gone = server.aws("lambda", "get-function-event-invoke-config", "--function-name", FN,
                      "--qualifier", ALIAS)
    assert gone.returncode != 0
    assert ("An error occurred (ResourceNotFoundException) when calling the "
            f"GetFunctionEventInvokeConfig operation: {no_config(f'{FN}:{ALIAS}')}") in gone.stderr
