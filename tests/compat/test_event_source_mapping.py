"""Lambda event source mappings for SQS with boto3 and the AWS CLI: the control plane
(Create/Get/Update/Delete/ListEventSourceMappings) with AWS's errors, codes and messages, and
the pollers end to end: every message processed once, partial batch failures, poison messages
reaching the DLQ, FIFO order per group under concurrency, disabling, FilterCriteria, and a
mapping surviving a restart.

One server serves most of the module; each test makes its own queues and functions. Only
readiness is waited for (with deadlines); nothing asserts on time.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, _start, _stop, make_zip, wait_until

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
        shutil.rmtree(root, ignore_errors=True)


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


# ---- end to end ------------------------------------------------------------------------------

WORKER = """
import json
import os
import time

MODE = os.environ.get("MODE", "ok")


def handler(event, context):
    failures = []
    for record in event["Records"]:
        body = record["body"]
        print("GOT %s %s %s %s" % (record["messageId"], record["eventSource"],
                                   record["attributes"]["ApproximateReceiveCount"], body))
        if MODE == "raise" and body == "poison":
            raise RuntimeError("poison")
        if body.startswith("fail-once") and record["attributes"]["ApproximateReceiveCount"] == "1":
            failures.append({"itemIdentifier": record["messageId"]})
    if MODE == "ordered":
        # Batches of one group follow each other at least this far apart in the log.
        time.sleep(0.005)
    return {"batchItemFailures": failures}
"""


def clients(server):
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    config = Config(retries={"max_attempts": 0})
    return (
        server.lambda_client(),
        session.client("sqs", endpoint_url=server.endpoint, config=config),
        session.client("logs", endpoint_url=server.endpoint, config=config),
    )


def deploy(lam, name: str, mode: str = "ok", timeout: int = 3) -> None:
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="lambda_function.handler",
        Code={"ZipFile": make_zip({"lambda_function.py": WORKER})}, Timeout=timeout,
        Environment={"Variables": {"MODE": mode}},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name)


def make_queue(sqs, name: str, **attributes) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attributes.items()})[
        "QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    return url, arn


def map_queue(lam, arn: str, function: str, **settings) -> str:
    created = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function, **settings)
    uuid = created["UUID"]
    wanted = "Enabled" if settings.get("Enabled", True) else "Disabled"
    wait_until(lambda: lam.get_event_source_mapping(UUID=uuid)["State"] == wanted,
               f"the mapping to become {wanted}")
    return uuid


def got(logs, function: str) -> list[tuple[str, str, str, str]]:
    """(messageId, eventSource, receive count, body) of every record the function logged."""
    out = []
    kwargs = {"logGroupName": f"/aws/lambda/{function}", "filterPattern": '"GOT "'}
    while True:
        try:
            page = logs.filter_log_events(**kwargs)
        except logs.exceptions.ResourceNotFoundException:
            return []
        for event in page["events"]:
            message = event["message"]
            at = message.find("GOT ")
            if at >= 0:
                parts = message[at:].strip().split(" ", 4)
                out.append(tuple(parts[1:5]))
        if not page.get("nextToken"):
            return out
        kwargs["nextToken"] = page["nextToken"]


def queue_empty(sqs, url: str) -> bool:
    counts = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return counts["ApproximateNumberOfMessages"] == "0" and \
        counts["ApproximateNumberOfMessagesNotVisible"] == "0"


def send_all(sqs, url: str, bodies: list[str], **extra) -> dict[str, str]:
    """Sends `bodies` in batches of ten; returns messageId -> body."""
    sent = {}
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body, **extra.get(body, {})}
                   for i, body in enumerate(bodies[start:start + 10])]
        answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not answer.get("Failed"), answer
        for ok in answer["Successful"]:
            sent[ok["MessageId"]] = entries[int(ok["Id"])]["MessageBody"]
    return sent


def test_a_thousand_messages_are_each_processed_exactly_once(server):
    lam, sqs, logs = clients(server)
    # Exactly once holds while no invocation times out: a timed-out batch
    # returns to the queue after its visibility timeout (at-least-once), and
    # on a loaded machine 3 s can pass before a batch finishes.
    deploy(lam, "thousand", timeout=60)
    url, arn = make_queue(sqs, "thousand", VisibilityTimeout=360)
    sent = send_all(sqs, url, [f"m{i}" for i in range(1000)])
    map_queue(lam, arn, "thousand", BatchSize=10)
    wait_until(lambda: queue_empty(sqs, url), "the queue to drain", 180)
    seen = wait_until(lambda: (lambda g: len(g) >= 1000 and g)(got(logs, "thousand")),
                      "every record to be logged", 60)
    assert sorted(s[0] for s in seen) == sorted(sent)
    assert {s[1] for s in seen} == {"aws:sqs"}
    assert {s[2] for s in seen} == {"1"}


def test_a_partial_batch_failure_redelivers_only_the_failed_messages(server):
    lam, sqs, logs = clients(server)
    deploy(lam, "partial")
    url, arn = make_queue(sqs, "partial", VisibilityTimeout=3)
    sent = send_all(sqs, url, ["ok-0", "fail-once-1", "ok-2", "ok-3", "fail-once-4"])
    map_queue(lam, arn, "partial", BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
    wait_until(lambda: queue_empty(sqs, url), "the queue to drain", 60)
    seen = got(logs, "partial")
    deliveries = {message_id: [s[2] for s in seen if s[0] == message_id] for message_id in sent}
    for message_id, body in sent.items():
        expected = ["1", "2"] if body.startswith("fail-once") else ["1"]
        assert deliveries[message_id] == expected, body


def test_a_poison_message_reaches_the_dead_letter_queue_after_max_receive_count(server):
    lam, sqs, logs = clients(server)
    deploy(lam, "poisoned", mode="raise")
    dlq_url, dlq_arn = make_queue(sqs, "poisoned-dlq")
    url, arn = make_queue(sqs, "poisoned", VisibilityTimeout=3, RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}))
    sent = send_all(sqs, url, ["poison"])
    map_queue(lam, arn, "poisoned", BatchSize=1)
    dead = wait_until(
        lambda: sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages"),
        "the poison message in the DLQ", 60)
    assert [m["MessageId"] for m in dead] == list(sent)
    assert [s[2] for s in got(logs, "poisoned")] == ["1", "2"]


def test_fifo_order_per_group_holds_with_maximum_concurrency_above_one(server):
    lam, sqs, logs = clients(server)
    deploy(lam, "ordered", mode="ordered")
    url, arn = make_queue(sqs, "ordered.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    groups = ["g1", "g2", "g3"]
    for i in range(0, 30, 10):
        for group in groups:
            entries = [{"Id": str(n), "MessageBody": f"{group}-{i + n:02}", "MessageGroupId": group}
                       for n in range(10)]
            assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")
    map_queue(lam, arn, "ordered", BatchSize=3, ScalingConfig={"MaximumConcurrency": 5})
    wait_until(lambda: queue_empty(sqs, url), "the queue to drain", 120)
    bodies = [s[3] for s in got(logs, "ordered")]
    for group in groups:
        assert [b for b in bodies if b.startswith(group)] == [f"{group}-{n:02}" for n in range(30)]


def test_a_disabled_mapping_stops_polling_and_resumes_when_enabled(server):
    lam, sqs, logs = clients(server)
    deploy(lam, "pausable")
    url, arn = make_queue(sqs, "pausable")
    uuid = map_queue(lam, arn, "pausable")
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=False)["State"] == "Disabling"
    wait_until(lambda: lam.get_event_source_mapping(UUID=uuid)["State"] == "Disabled",
               "the mapping to be disabled")
    send_all(sqs, url, ["while-disabled"])
    # Longer than a poll of a mapping that would still be running.
    time.sleep(3)
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "1"
    assert got(logs, "pausable") == []
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=True)["State"] == "Enabling"
    wait_until(lambda: queue_empty(sqs, url), "the queue to drain once enabled", 60)
    assert [s[3] for s in got(logs, "pausable")] == ["while-disabled"]


def test_filter_criteria_drop_messages_that_match_no_filter(server):
    lam, sqs, logs = clients(server)
    deploy(lam, "filtered")
    url, arn = make_queue(sqs, "filtered")
    send_all(sqs, url, ['{"kind": "keep", "n": 1}', '{"kind": "drop"}', "keep", '{"kind": "keep"}'])
    uuid = map_queue(lam, arn, "filtered", FilterCriteria={
        "Filters": [{"Pattern": json.dumps({"body": {"kind": ["keep"]}})}]})
    wait_until(lambda: queue_empty(sqs, url), "the queue to drain", 60)
    assert sorted(s[3] for s in got(logs, "filtered")) == ['{"kind": "keep", "n": 1}',
                                                          '{"kind": "keep"}']
    mapping = lam.get_event_source_mapping(UUID=uuid)
    assert mapping["FilterCriteria"] == {
        "Filters": [{"Pattern": json.dumps({"body": {"kind": ["keep"]}})}]}


def test_create_answers_202_creating_and_get_answers_aws_shape(server):
    lam, sqs, _ = clients(server)
    deploy(lam, "shaped")
    _, arn = make_queue(sqs, "shaped")
    created = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="shaped",
                                              BatchSize=20, MaximumBatchingWindowInSeconds=1,
                                              ScalingConfig={"MaximumConcurrency": 2})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["State"] == "Creating"
    assert created["StateTransitionReason"] == "USER_INITIATED"
    uuid = created["UUID"]
    assert created["EventSourceMappingArn"] == MAPPING_ARN_PREFIX + uuid
    assert created["FunctionArn"] == f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:shaped"
    assert created["ScalingConfig"] == {"MaximumConcurrency": 2}
    wait_until(lambda: lam.get_event_source_mapping(UUID=uuid)["State"] == "Enabled", "Enabled")
    mapping = lam.get_event_source_mapping(UUID=uuid)
    assert {k for k in mapping if k != "ResponseMetadata"} == {
        "UUID", "BatchSize", "MaximumBatchingWindowInSeconds", "EventSourceArn",
        "EventSourceMappingArn", "FunctionArn", "FunctionResponseTypes", "LastModified", "State",
        "StateTransitionReason", "ScalingConfig"}
    listed = lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [uuid]
    assert lam.list_event_source_mappings(FunctionName="shaped")["EventSourceMappings"][0][
        "UUID"] == uuid
    deleted = lam.delete_event_source_mapping(UUID=uuid)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert deleted["State"] == "Deleting"
    wait_until(lambda: lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
               == [], "the mapping to be gone")


def test_queue_dependent_validation_errors(server):
    lam, sqs, _ = clients(server)
    deploy(lam, "validated", timeout=60)
    _, arn = make_queue(sqs, "validated", VisibilityTimeout=30)
    _, fifo_arn = make_queue(sqs, "validated.fifo", FifoQueue="true", VisibilityTimeout=120)
    _, long_arn = make_queue(sqs, "validated-long", VisibilityTimeout=120)

    def create(**kwargs):
        return error_of(lambda: lam.create_event_source_mapping(FunctionName="validated", **kwargs))

    assert create(EventSourceArn=arn) == {
        "code": "InvalidParameterValueException",
        "message": "Queue visibility timeout: 30 seconds is less than Function timeout: 60 seconds",
        "status": 400,
    }
    assert create(EventSourceArn=long_arn, BatchSize=11) == {
        "code": "InvalidParameterValueException",
        "message": "Maximum batch window in seconds must be greater than 0 if maximum batch size "
        "is greater than 10",
        "status": 400,
    }
    assert create(EventSourceArn=fifo_arn, BatchSize=11, MaximumBatchingWindowInSeconds=1)[
        "code"] == "InvalidParameterValueException"
    assert create(EventSourceArn=fifo_arn, MaximumBatchingWindowInSeconds=1) == {
        "code": "InvalidParameterValueException",
        "message": "Batching window is not supported for FIFO queues",
        "status": 400,
    }
    assert create(EventSourceArn=long_arn, FunctionResponseTypes=["Everything"])[
        "code"] == "ValidationException"
    uuid = map_queue(lam, long_arn, "validated")
    assert create(EventSourceArn=long_arn) == {
        "code": "ResourceConflictException",
        "message": f'An event source mapping with SQS arn (" {long_arn} ") and function '
        f'(" validated ") already exists. Please update or delete the existing mapping with '
        f"UUID {uuid}",
        "status": 409,
    }
    assert error_of(lambda: lam.update_event_source_mapping(UUID=uuid, BatchSize=50)) == {
        "code": "InvalidParameterValueException",
        "message": "Maximum batch window in seconds must be greater than 0 if maximum batch size "
        "is greater than 10",
        "status": 400,
    }


def test_a_mapping_survives_a_restart_and_polls_again(strato, strato_binary):
    lam, sqs, _ = clients(strato)
    deploy(lam, "durable")
    url, arn = make_queue(sqs, "durable")
    uuid = map_queue(lam, arn, "durable")
    root = strato.data_dir.parent
    _stop(strato.proc)
    restarted = _start(strato_binary, root)
    try:
        lam, sqs, logs = clients(restarted)
        assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Enabled"
        send_all(sqs, url.replace(strato.endpoint, restarted.endpoint), ["after-restart"])
        wait_until(lambda: [s[3] for s in got(logs, "durable")] == ["after-restart"],
                   "the message sent after the restart to be processed", 60)
    finally:
        _stop(restarted.proc)


def test_mapping_tags_are_kept_and_changed_through_the_tagging_api(server):
    lam, sqs, _ = clients(server)
    deploy(lam, "tagged")
    _, arn = make_queue(sqs, "tagged")
    created = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="tagged",
                                              Tags={"team": "jobs"})
    mapping_arn = created["EventSourceMappingArn"]
    assert lam.list_tags(Resource=mapping_arn)["Tags"] == {"team": "jobs"}
    lam.tag_resource(Resource=mapping_arn, Tags={"stage": "test"})
    lam.untag_resource(Resource=mapping_arn, TagKeys=["team"])
    assert lam.list_tags(Resource=mapping_arn)["Tags"] == {"stage": "test"}


def test_updating_onto_an_existing_pair_is_a_conflict(server):
    lam, sqs, _ = clients(server)
    deploy(lam, "pair-a")
    deploy(lam, "pair-b")
    _, arn = make_queue(sqs, "pair")
    first = map_queue(lam, arn, "pair-a")
    second = map_queue(lam, arn, "pair-b")
    assert error_of(lambda: lam.update_event_source_mapping(UUID=second, FunctionName="pair-a")) == {
        "code": "ResourceConflictException",
        "message": f'An event source mapping with SQS arn (" {arn} ") and function (" pair-a ") '
        f"already exists. Please update or delete the existing mapping with UUID {first}",
        "status": 409,
    }


def test_deleting_the_function_keeps_its_mappings(server):
    lam, sqs, _ = clients(server)
    deploy(lam, "short-lived")
    _, arn = make_queue(sqs, "short-lived")
    uuid = map_queue(lam, arn, "short-lived")
    lam.delete_function(FunctionName="short-lived")
    assert lam.get_event_source_mapping(UUID=uuid)["UUID"] == uuid
    assert [m["UUID"] for m in lam.list_event_source_mappings(EventSourceArn=arn)[
        "EventSourceMappings"]] == [uuid]
