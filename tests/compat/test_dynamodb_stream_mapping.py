"""Lambda event source mappings on DynamoDB streams, with boto3: the control plane's stream
members and AWS's errors, and the pollers end to end: 1 000 writes to 10 keys reach the function
in per-key order under ParallelizationFactor, a failing record is bisected out, retried and sent
to the on-failure SQS queue with AWS's invocation record, FilterCriteria drop records, and a
disabled mapping resumes after a restart from where it stopped (no skip, no repeat).

One server (`--time-scale 60`: retry back-offs shortened) serves the module; the restart test
starts its own. Only readiness is waited for (with deadlines); nothing asserts on time.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, _start, _stop, make_zip, wait_until

SCALE = ("--time-scale", "60")

WORKER = """
import json


def handler(event, context):
    for record in event["Records"]:
        ddb = record["dynamodb"]
        image = ddb.get("NewImage", {})
        print("SEEN %s %s %s %d %s" % (
            ddb["Keys"]["pk"]["S"], image.get("n", {}).get("N", "-"), ddb["SequenceNumber"],
            len(event["Records"]), json.dumps(record, separators=(",", ":"))))
        if image.get("poison", {}).get("BOOL"):
            raise RuntimeError("poison")
    return {}
"""


@pytest.fixture(scope="module")
def server(strato_binary):
    root = Path(tempfile.mkdtemp(prefix="strato-compat-ddb-esm-"))
    running = _start(strato_binary, root, SCALE)
    try:
        yield running
    finally:
        _stop(running.proc)
        shutil.rmtree(root, ignore_errors=True)


def clients(server):
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    config = Config(retries={"max_attempts": 0})
    return (
        server.lambda_client(),
        session.client("dynamodb", endpoint_url=server.endpoint, config=config),
        session.client("sqs", endpoint_url=server.endpoint, config=config),
        session.client("logs", endpoint_url=server.endpoint, config=config),
    )


def deploy(lam, name: str) -> str:
    created = lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="lambda_function.handler",
        Code={"ZipFile": make_zip({"lambda_function.py": WORKER})},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    return created["FunctionArn"]


def make_table(ddb, name: str) -> str:
    created = ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return created["TableDescription"]["LatestStreamArn"]


def map_stream(lam, arn: str, function: str, **settings) -> str:
    settings.setdefault("StartingPosition", "TRIM_HORIZON")
    created = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function, **settings)
    wanted = "Enabled" if settings.get("Enabled", True) else "Disabled"
    wait_until(lambda: lam.get_event_source_mapping(UUID=created["UUID"])["State"] == wanted,
               f"the mapping to become {wanted}")
    return created["UUID"]


def seen(logs, function: str) -> list[dict]:
    """Every record the function logged: pk, n, sequence number, batch size, record."""
    out = []
    kwargs = {"logGroupName": f"/aws/lambda/{function}", "filterPattern": '"SEEN "'}
    while True:
        try:
            page = logs.filter_log_events(**kwargs)
        except logs.exceptions.ResourceNotFoundException:
            return []
        for event in page["events"]:
            at = event["message"].find("SEEN ")
            if at >= 0:
                pk, n, seq, size, record = event["message"][at:].strip().split(" ", 5)[1:]
                out.append({"pk": pk, "n": n, "seq": seq, "batch": int(size),
                            "record": json.loads(record)})
        if not page.get("nextToken"):
            return out
        kwargs["nextToken"] = page["nextToken"]


def put(ddb, table: str, pk: str, n: int, **extra) -> None:
    ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "n": {"N": str(n)}, **extra})


def error_of(call) -> dict:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return {"code": response["Error"]["Code"], "message": response["Error"].get("Message")}


def test_stream_members_are_validated_as_aws_does(server):
    lam, ddb, _, _ = clients(server)
    deploy(lam, "ddb-validated")
    arn = make_table(ddb, "validated")
    assert error_of(lambda: lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="ddb-validated")) == {
        "code": "InvalidParameterValueException",
        "message": "1 validation error detected: Value null at 'startingPosition' failed to "
        "satisfy constraint: Member must not be null.",
    }
    assert error_of(lambda: lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="ddb-validated", StartingPosition="AT_TIMESTAMP",
        StartingPositionTimestamp=1)) == {
        "code": "InvalidParameterValueException",
        "message": f"Unsupported starting position for arn type: {arn}",
    }
    assert error_of(lambda: lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="ddb-validated", StartingPosition="LATEST",
        ParallelizationFactor=11, MaximumRecordAgeInSeconds=604801)) == {
        "code": "ValidationException",
        "message": "2 validation errors detected: Value '11' at 'parallelizationFactor' failed to "
        "satisfy constraint: Member must have value less than or equal to 10; Value '604801' at "
        "'maximumRecordAgeInSeconds' failed to satisfy constraint: Member must have value less "
        "than or equal to 604800",
    }
    missing = arn.replace("/validated/", "/no-such-table/")
    assert error_of(lambda: lam.create_event_source_mapping(
        EventSourceArn=missing, FunctionName="ddb-validated", StartingPosition="LATEST")) == {
        "code": "InvalidParameterValueException", "message": f"Stream not found: {missing}"}
    created = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="ddb-validated", StartingPosition="LATEST")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    for member, value in {
        "BatchSize": 100, "BisectBatchOnFunctionError": False,
        "DestinationConfig": {"OnFailure": {}}, "EventSourceArn": arn,
        "FunctionResponseTypes": [], "LastProcessingResult": "No records processed",
        "MaximumBatchingWindowInSeconds": 0, "MaximumRecordAgeInSeconds": -1,
        "MaximumRetryAttempts": -1, "ParallelizationFactor": 1, "StartingPosition": "LATEST",
        "State": "Creating", "StateTransitionReason": "User action", "TumblingWindowInSeconds": 0,
    }.items():
        assert created[member] == value, member
    assert error_of(lambda: lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="ddb-validated", StartingPosition="LATEST")) == {
        "code": "ResourceConflictException",
        "message": f'The event source arn (" {arn} ") and function (" ddb-validated ") provided '
        f"mapping already exists. Please update or delete the existing mapping with UUID "
        f"{created['UUID']}",
    }


def test_a_thousand_writes_to_ten_keys_arrive_in_per_key_order(server):
    lam, ddb, _, logs = clients(server)
    function_arn = deploy(lam, "ddb-ordered")
    arn = make_table(ddb, "ordered")
    map_stream(lam, arn, "ddb-ordered", BatchSize=100, ParallelizationFactor=4)
    for i in range(100):
        ddb.batch_write_item(RequestItems={"ordered": [
            {"PutRequest": {"Item": {"pk": {"S": f"k{k}"}, "n": {"N": str(i)}}}}
            for k in range(10)]})
    wait_until(lambda: len(seen(logs, "ddb-ordered")) >= 1000, "1 000 records to arrive", 120,
               interval=1)
    records = seen(logs, "ddb-ordered")
    assert len(records) == 1000
    for k in range(10):
        ns = [int(r["n"]) for r in records if r["pk"] == f"k{k}"]
        assert ns == list(range(100)), f"k{k}"
    assert max(r["batch"] for r in records) <= 100
    first = next(r["record"] for r in records if r["pk"] == "k0" and r["n"] == "0")
    assert first["eventName"] == "INSERT"
    assert first["eventVersion"] == "1.1"
    assert first["eventSource"] == "aws:dynamodb"
    assert first["awsRegion"] == REGION
    assert first["eventSourceARN"] == arn
    assert set(first["dynamodb"]) >= {"ApproximateCreationDateTime", "Keys", "NewImage",
                                      "SequenceNumber", "SizeBytes", "StreamViewType"}
    assert first["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    described = lam.list_event_source_mappings(FunctionName=function_arn)["EventSourceMappings"]
    assert described[0]["LastProcessingResult"] == "OK"


def test_a_failing_record_is_bisected_retried_and_sent_to_the_on_failure_queue(server):
    lam, ddb, sqs, logs = clients(server)
    function_arn = deploy(lam, "ddb-bisect")
    arn = make_table(ddb, "bisect")
    url = sqs.create_queue(QueueName="ddb-bisect-failures")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    map_stream(lam, arn, "ddb-bisect", BatchSize=10, MaximumBatchingWindowInSeconds=1,
               BisectBatchOnFunctionError=True, MaximumRetryAttempts=1,
               DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    ddb.batch_write_item(RequestItems={"bisect": [
        {"PutRequest": {"Item": {"pk": {"S": f"p{i}"}, "n": {"N": str(i)},
                                 **({"poison": {"BOOL": True}} if i == 6 else {})}}}
        for i in range(10)]})
    messages = []
    wait_until(lambda: messages.extend(
        sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])) or messages,
        "the discarded record to reach the on-failure queue", 60)
    record = json.loads(messages[0]["Body"])
    # The records after the poison one run once it is discarded: wait for their lines too.
    every_key = {f"p{i}" for i in range(10)}
    wait_until(lambda: {r["pk"] for r in seen(logs, "ddb-bisect")} >= every_key,
               "every record to reach the function", 60)
    records = seen(logs, "ddb-bisect")
    poison_seq = next(r["seq"] for r in records if r["pk"] == "p6")
    assert record["requestContext"]["functionArn"] == function_arn
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responseContext"] == {
        "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["version"] == "1.0"
    info = record["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == poison_seq
    assert info["streamArn"] == arn
    assert info["shardId"].startswith("shardId-")
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    # Every other record was processed; the poison record ran alone after bisection.
    assert {r["pk"] for r in records} == every_key
    assert any(r["pk"] == "p6" and r["batch"] == 1 for r in records)


def test_filter_criteria_drop_records_no_filter_matches(server):
    lam, ddb, _, logs = clients(server)
    deploy(lam, "ddb-filtered")
    arn = make_table(ddb, "filtered")
    pattern = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["keep"]}}}}
    map_stream(lam, arn, "ddb-filtered", FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]})
    put(ddb, "filtered", "a", 1, kind={"S": "drop"})
    put(ddb, "filtered", "b", 2, kind={"S": "keep"})
    put(ddb, "filtered", "b", 3, kind={"S": "keep"})  # a MODIFY: dropped
    put(ddb, "filtered", "c", 4, kind={"S": "keep"})
    wait_until(lambda: any(r["pk"] == "c" for r in seen(logs, "ddb-filtered")),
               "the last kept record to arrive", 60)
    assert [(r["pk"], r["n"]) for r in seen(logs, "ddb-filtered")] == [("b", "2"), ("c", "4")]


@pytest.mark.strato_args(*SCALE)
def test_a_disabled_mapping_resumes_after_a_restart_where_it_stopped(strato, strato_binary):
    lam, ddb, _, logs = clients(strato)
    deploy(lam, "ddb-durable")
    arn = make_table(ddb, "durable")
    uuid = map_stream(lam, arn, "ddb-durable")
    put(ddb, "durable", "a", 1)
    wait_until(lambda: len(seen(logs, "ddb-durable")) == 1, "the first record to arrive", 60)
    lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    wait_until(lambda: lam.get_event_source_mapping(UUID=uuid)["State"] == "Disabled",
               "the mapping to be disabled")
    put(ddb, "durable", "a", 2)
    root = strato.data_dir.parent
    _stop(strato.proc)
    restarted = _start(strato_binary, root, SCALE)
    try:
        lam, ddb, _, logs = clients(restarted)
        assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Disabled"
        assert [r["n"] for r in seen(logs, "ddb-durable")] == ["1"]
        lam.update_event_source_mapping(UUID=uuid, Enabled=True)
        put(ddb, "durable", "a", 3)
        wait_until(lambda: len(seen(logs, "ddb-durable")) >= 3, "the later records to arrive", 60)
        assert [r["n"] for r in seen(logs, "ddb-durable")] == ["1", "2", "3"]
    finally:
        _stop(restarted.proc)
