"""Lambda event source mappings for SQS (Create/Get/Update/Delete/ListEventSourceMappings)
with boto3 and the AWS CLI: the control plane's answers and AWS's errors, codes and
messages as AWS sends them.

One server serves the whole module; the tests share one function.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, _start, _stop, make_zip

FN = "esm-worker"
MISSING_QUEUE_ARN = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:no-such-queue"
MISSING_UUID = "a1b2c3d4-0000-4000-8000-000000000000"
MAPPING_ARN_PREFIX = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:event-source-mapping:"


@pytest.fixture(scope="module")
def server(strato_binary):
    root = Path(tempfile.mkdtemp(prefix="strato-compat-esm-"))
    running = _start(strato_binary, root)
    try:
        package = root / "fn.zip"
        package.write_bytes(make_zip())
        running.aws(
            "lambda", "create-function", "--function-name", FN, "--runtime", "nodejs20.x",
            "--handler", "index.handler", "--role", ROLE, "--zip-file", f"fileb://{package}",
        ).check()
        running.aws("lambda", "wait", "function-active-v2", "--function-name", FN).check()
        yield running
    finally:
        _stop(running.proc)


@pytest.fixture
def client(server):
    return server.lambda_client()


def error_of(call) -> dict:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return {
        "code": response["Error"]["Code"],
        "message": response["Error"].get("Message"),
        "status": response["ResponseMetadata"]["HTTPStatusCode"],
    }


def test_an_unknown_mapping_is_not_found_on_every_operation(client):
    expected = {
        "code": "ResourceNotFoundException",
        "message": f"Event source mapping not found: {MAPPING_ARN_PREFIX}{MISSING_UUID}",
        "status": 404,
    }
    assert error_of(lambda: client.get_event_source_mapping(UUID=MISSING_UUID)) == expected
    assert error_of(lambda: client.delete_event_source_mapping(UUID=MISSING_UUID)) == expected
    assert error_of(
        lambda: client.update_event_source_mapping(UUID=MISSING_UUID, Enabled=False)
    ) == expected


def test_listing_without_mappings_is_empty(client, server):
    assert client.list_event_source_mappings()["EventSourceMappings"] == []
    listed = server.aws("lambda", "list-event-source-mappings", "--function-name", FN).check()
    assert listed.json()["EventSourceMappings"] == []


def test_a_missing_function_is_refused(client):
    assert error_of(
        lambda: client.create_event_source_mapping(
            EventSourceArn=MISSING_QUEUE_ARN, FunctionName="no-such-function"
        )
    ) == {"code": "ResourceNotFoundException", "message": "Function does not exist", "status": 404}


def test_a_missing_queue_is_refused_as_sqs_words_it(client):
    assert error_of(
        lambda: client.create_event_source_mapping(EventSourceArn=MISSING_QUEUE_ARN, FunctionName=FN)
    ) == {
        "code": "InvalidParameterValueException",
        "message": "Error occurred while ReceiveMessage. SQS Error Code: "
        "AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified queue does not exist.",
        "status": 400,
    }


def test_an_unknown_kind_of_source_is_unrecognized(client):
    assert error_of(
        lambda: client.create_event_source_mapping(
            EventSourceArn="arn:aws:s3:::a-bucket", FunctionName=FN
        )
    ) == {"code": "InvalidParameterValueException", "message": "Unrecognized event source.", "status": 400}


def test_out_of_range_members_are_one_validation_error(client):
    assert error_of(
        lambda: client.create_event_source_mapping(
            EventSourceArn=MISSING_QUEUE_ARN,
            FunctionName=FN,
            BatchSize=10001,
            MaximumBatchingWindowInSeconds=301,
            ScalingConfig={"MaximumConcurrency": 1001},
        )
    ) == {
        "code": "ValidationException",
        "message": "3 validation errors detected: "
        "Value '10001' at 'batchSize' failed to satisfy constraint: Member must have value less than or equal to 10000; "
        "Value '301' at 'maximumBatchingWindowInSeconds' failed to satisfy constraint: Member must have value less than or equal to 300; "
        "Value '1001' at 'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member must have value less than or equal to 1000",
        "status": 400,
    }


def test_an_invalid_filter_pattern_is_refused(client):
    assert error_of(
        lambda: client.create_event_source_mapping(
            EventSourceArn=MISSING_QUEUE_ARN,
            FunctionName=FN,
            FilterCriteria={"Filters": [{"Pattern": '{"body": {"kind": "not-a-list"}}'}]},
        )
    ) == {"code": "InvalidParameterValueException", "message": "Invalid filter pattern definition.", "status": 400}
