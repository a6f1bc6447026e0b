"""Amazon SQS through boto3 (JSON protocol), the AWS CLI and signed
query-protocol requests (XML)."""

from __future__ import annotations

import hashlib
import json
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import boto3
import botocore.exceptions
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from conftest import DEFAULT_ACCOUNT, REGION, _start, wait_until

NS = {"q": "http://queue.amazonaws.com/doc/2012-11-05/"}


def sqs_client(strato, access_key: str = "test", secret_key: str = "test"):
    session = boto3.session.Session(
        aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=REGION)
    return session.client("sqs", endpoint_url=strato.endpoint,
                          config=Config(retries={"max_attempts": 0}))


def error_of(call, *args, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(*args, **kwargs)
    return raised.value.response


def assert_error(response, code: str, message: str, status: int = 400):
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status, response
    assert response["Error"]["Code"] == code, response
    assert response["Error"]["Message"] == message, response


def md5_of_attributes(attributes: dict) -> str:
    """AWS's MD5OfMessageAttributes, written from the documented encoding."""
    digest = hashlib.md5()
    for name in sorted(attributes):
        value = attributes[name]
        for part in (name.encode(), value["DataType"].encode()):
            digest.update(struct.pack(">I", len(part)) + part)
        if "StringValue" in value:
            data = value["StringValue"].encode()
            digest.update(b"\x01" + struct.pack(">I", len(data)) + data)
        else:
            data = value["BinaryValue"]
            digest.update(b"\x02" + struct.pack(">I", len(data)) + data)
    return digest.hexdigest()


def test_queue_lifecycle_and_attributes(strato):
    sqs = sqs_client(strato)
    url = sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "45"})["QueueUrl"]
    assert url == f"{strato.endpoint}/{DEFAULT_ACCOUNT}/orders"
    # Same attributes: the same queue.
    assert sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "45"})["QueueUrl"] == url
    assert_error(error_of(sqs.create_queue, QueueName="orders", Attributes={"DelaySeconds": "5"}),
                 "QueueAlreadyExists",
                 "A queue already exists with the same name and a different value for attribute DelaySeconds")
    assert sqs.get_queue_url(QueueName="orders")["QueueUrl"] == url
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "45"
    assert attrs["MaximumMessageSize"] == "1048576"
    assert attrs["MessageRetentionPeriod"] == "345600"
    assert attrs["QueueArn"] == f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:orders"
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert "FifoQueue" not in attrs
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "2"})
    only = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds"])["Attributes"]
    assert only == {"DelaySeconds": "2"}
    assert_error(error_of(sqs.set_queue_attributes, QueueUrl=url, Attributes={"VisibilityTimeout": "43201"}),
                 "InvalidAttributeValue", "Invalid value for the parameter VisibilityTimeout.")
    assert_error(error_of(sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["Nope"]),
                 "InvalidAttributeName", "Unknown Attribute Nope.")
    assert_error(error_of(sqs.create_queue, QueueName="std", Attributes={"ContentBasedDeduplication": "true"}),
                 "InvalidAttributeName", "Unknown Attribute ContentBasedDeduplication.")
    # AWS's own URL forms resolve too.
    aws_url = f"https://sqs.{REGION}.amazonaws.com/{DEFAULT_ACCOUNT}/orders"
    assert sqs.get_queue_attributes(QueueUrl=aws_url, AttributeNames=["QueueArn"])["Attributes"]
    for i in range(3):
        sqs.create_queue(QueueName=f"list-{i}")
    listed = sqs.list_queues(QueueNamePrefix="list-")["QueueUrls"]
    assert [u.rsplit("/", 1)[1] for u in listed] == ["list-0", "list-1", "list-2"]
    page = sqs.list_queues(QueueNamePrefix="list-", MaxResults=2)
    assert len(page["QueueUrls"]) == 2 and page["NextToken"]
    rest = sqs.list_queues(QueueNamePrefix="list-", MaxResults=2, NextToken=page["NextToken"])
    assert [u.rsplit("/", 1)[1] for u in rest["QueueUrls"]] == ["list-2"] and "NextToken" not in rest
    sqs.delete_queue(QueueUrl=url)
    missing = error_of(sqs.get_queue_url, QueueName="orders")
    assert_error(missing, "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
    assert missing["Error"]["QueryErrorCode"] == "QueueDoesNotExist"
    # AWS keeps a deleted queue's name for 60 seconds.
    recreate = error_of(sqs.create_queue, QueueName="orders")
    assert recreate["Error"]["Code"] == "AWS.SimpleQueueService.QueueDeletedRecently"


def test_send_receive_delete_with_md5s_and_attributes(strato):
    sqs = sqs_client(strato)
    url = sqs.create_queue(QueueName="msgs")["QueueUrl"]
    attributes = {
        "colour": {"DataType": "String", "StringValue": "blue"},
        "count": {"DataType": "Number", "StringValue": "42"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\x02"},
        "other.thing": {"DataType": "String.custom", "StringValue": "x"},
    }
    sent = sqs.send_message(QueueUrl=url, MessageBody="héllo wörld", MessageAttributes=attributes,
                            MessageSystemAttributes={"AWSTraceHeader": {
                                "DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793"}})
    assert sent["MD5OfMessageBody"] == hashlib.md5("héllo wörld".encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attributes)
    assert "MD5OfMessageSystemAttributes" in sent
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"],
                              MessageSystemAttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    assert len(got) == 1
    message = got[0]
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == "héllo wörld"
    assert message["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert message["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01\x02"
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert message["Attributes"]["SenderId"] == DEFAULT_ACCOUNT
    assert message["Attributes"]["AWSTraceHeader"].startswith("Root=1-")
    assert int(message["Attributes"]["SentTimestamp"]) <= int(message["Attributes"]["ApproximateFirstReceiveTimestamp"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    # A prefix selects attributes; the MD5 is of what is returned.
    sqs.send_message(QueueUrl=url, MessageBody="b", MessageAttributes=attributes)
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["other.*"], WaitTimeSeconds=1)["Messages"][0]
    assert list(got["MessageAttributes"]) == ["other.thing"]
    assert got["MD5OfMessageAttributes"] == md5_of_attributes({"other.thing": attributes["other.thing"]})
    assert "Attributes" not in got
    assert_error(error_of(sqs.delete_message, QueueUrl=url, ReceiptHandle="garbage"),
                 "ReceiptHandleIsInvalid", 'The input receipt handle "garbage" is not a valid receipt handle.')


def test_long_poll_returns_when_a_message_arrives(strato):
    import threading
    sqs = sqs_client(strato)
    url = sqs.create_queue(QueueName="poll")["QueueUrl"]
    wait = 20
    result = {}

    def receive():
        started = time.monotonic()
        result["messages"] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=wait).get("Messages", [])
        result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=receive)
    thread.start()
    time.sleep(1)
    sqs_client(strato).send_message(QueueUrl=url, MessageBody="now")
    thread.join(wait + 10)
    assert [m["Body"] for m in result["messages"]] == ["now"]
    assert result["elapsed"] < wait / 2, result


def test_visibility_timeout_delay_and_receive_count(strato):
    sqs = sqs_client(strato)
    url = sqs.create_queue(QueueName="vis")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    first = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1, AttributeNames=["All"])["Messages"][0]
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None
    again = wait_until(lambda: sqs.receive_message(QueueUrl=url, AttributeNames=["All"], WaitTimeSeconds=1).get("Messages"),
                       "the message to reappear")[0]
    assert again["MessageId"] == first["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    # An older receipt "deletes" without error, as on AWS, and the message stays.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "1"
    # Visibility can be changed on the newest receipt.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=0)
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "1"
    # Delay: invisible (counted as delayed) until it passes.
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=2)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    bodies = set()
    wait_until(lambda: bodies.update(m["Body"] for m in sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])) or "later" in bodies,
        "the delayed message")


def test_redrive_to_dead_letter_queue_and_move_back(strato):
    sqs = sqs_client(strato)
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    src = sqs.create_queue(QueueName="src", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [src]
    bad = json.dumps({"deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:nope", "maxReceiveCount": 2})
    err = error_of(sqs.create_queue, QueueName="src2", Attributes={"RedrivePolicy": bad})
    assert_error(err, "InvalidParameterValue",
                 f"Value {bad} for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist.")
    sqs.send_message(QueueUrl=src, MessageBody="poison")
    for _ in range(2):
        wait_until(lambda: sqs.receive_message(QueueUrl=src, VisibilityTimeout=0, WaitTimeSeconds=1).get("Messages"),
                   "a receive of the poison message")
    # The third receive moves it instead.
    assert sqs.receive_message(QueueUrl=src, WaitTimeSeconds=1).get("Messages") is None
    moved = sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=0, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in moved] == ["poison"]
    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert handle
    done = wait_until(lambda: [t for t in sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
                               if t["Status"] == "COMPLETED"], "the move task to complete")
    assert done[0]["ApproximateNumberOfMessagesMoved"] == 1
    back = sqs.receive_message(QueueUrl=src, WaitTimeSeconds=2)["Messages"]
    assert [m["Body"] for m in back] == ["poison"]
    assert_error(error_of(sqs.start_message_move_task, SourceArn=f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:src"),
                 "InvalidParameterValue", "Source queue must be configured as a Dead Letter Queue.")
    assert_error(error_of(sqs.cancel_message_move_task, TaskHandle=handle),
                 "ResourceNotFoundException", "Task does not exist.", 404)


def test_fifo_order_and_deduplication(strato):
    sqs = sqs_client(strato)
    url = sqs.create_queue(QueueName="jobs.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    first = sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="a", MessageDeduplicationId="1")
    dup = sqs.send_message(QueueUrl=url, MessageBody="a1-again", MessageGroupId="a", MessageDeduplicationId="1")
    assert dup["MessageId"] == first["MessageId"]
    assert first["SequenceNumber"]
    sqs.send_message(QueueUrl=url, MessageBody="a2", MessageGroupId="a", MessageDeduplicationId="2")
    sqs.send_message(QueueUrl=url, MessageBody="b1", MessageGroupId="b", MessageDeduplicationId="3")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    by_group = {}
    for m in got:
        by_group.setdefault(m["Attributes"]["MessageGroupId"], []).append(m["Body"])
    assert by_group["a"] == ["a1", "a2"]
    assert by_group["b"] == ["b1"]
    assert_error(error_of(sqs.send_message, QueueUrl=url, MessageBody="x", MessageDeduplicationId="9"),
                 "MissingParameter", "The request must contain the parameter MessageGroupId.")
    assert_error(error_of(sqs.send_message, QueueUrl=url, MessageBody="x", MessageGroupId="g"),
                 "InvalidParameterValue",
                 "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
    assert_error(error_of(sqs.send_message, QueueUrl=url, MessageBody="x", MessageGroupId="g",
                          MessageDeduplicationId="d", DelaySeconds=2),
                 "InvalidParameterValue",
                 "Value 2 for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.")
    assert_error(error_of(sqs.send_message, QueueUrl=url, MessageBody="x", MessageGroupId="group 123",
                          MessageDeduplicationId="d"),
                 "InvalidParameterValue",
                 "Value group 123 for parameter MessageGroupId is invalid. Reason: MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length.")
    cbd = sqs.create_queue(QueueName="cbd.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    one = sqs.send_message(QueueUrl=cbd, MessageBody="same", MessageGroupId="g")
    two = sqs.send_message(QueueUrl=cbd, MessageBody="same", MessageGroupId="g")
    assert one["MessageId"] == two["MessageId"]
    got = sqs.receive_message(QueueUrl=cbd, AttributeNames=["MessageDeduplicationId"])["Messages"]
    assert got[0]["Attributes"]["MessageDeduplicationId"] == hashlib.sha256(b"same").hexdigest()


def test_batches_fail_per_entry(strato):
    sqs = sqs_client(strato)
    url = sqs.create_queue(QueueName="batch", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    result = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "ok", "MessageBody": "fine"},
        {"Id": "big", "MessageBody": "x" * 1025},
    ])
    assert [s["Id"] for s in result["Successful"]] == ["ok"]
    assert result["Failed"] == [{
        "Id": "big", "SenderFault": True, "Code": "InvalidParameterValue",
        "Message": "One or more parameters cannot be validated. Reason: Message must be shorter than 1024 bytes."}]
    assert_error(error_of(sqs.send_message_batch, QueueUrl=url,
                          Entries=[{"Id": str(i), "MessageBody": "m"} for i in range(20)]),
                 "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                 "Maximum number of entries per request are 10. You have sent 20.")
    assert_error(error_of(sqs.send_message_batch, QueueUrl=url, Entries=[{"Id": "a b", "MessageBody": "m"}]),
                 "AWS.SimpleQueueService.InvalidBatchEntryId",
                 "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")
    assert_error(error_of(sqs.send_message_batch, QueueUrl=url,
                          Entries=[{"Id": "a", "MessageBody": "m"}, {"Id": "a", "MessageBody": "n"}]),
                 "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "Id a repeated.")
    assert_error(error_of(sqs.send_message_batch, QueueUrl=url, Entries=[]),
                 "AWS.SimpleQueueService.EmptyBatchRequest",
                 "There should be at least one SendMessageBatchRequestEntry in the request.")
    big = sqs.create_queue(QueueName="bigbatch")["QueueUrl"]
    assert_error(error_of(sqs.send_message_batch, QueueUrl=big, Entries=[
        {"Id": "a", "MessageBody": "x" * 524288}, {"Id": "b", "MessageBody": "x" * 524289}]),
        "AWS.SimpleQueueService.BatchRequestTooLong",
        "Batch requests cannot be longer than 1048576 bytes. You have sent 1048577 bytes.")
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "good", "ReceiptHandle": got[0]["ReceiptHandle"]},
        {"Id": "bad", "ReceiptHandle": "nonsense"}])
    assert [s["Id"] for s in deleted["Successful"]] == ["good"]
    assert deleted["Failed"][0]["Id"] == "bad"
    assert deleted["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"


def test_validation_errors(strato):
    sqs = sqs_client(strato)
    url = sqs.create_queue(QueueName="v", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    assert_error(error_of(sqs.send_message, QueueUrl=url, MessageBody="x" * 1025),
                 "InvalidParameterValue",
                 "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes.")
    assert_error(error_of(sqs.send_message, QueueUrl=url, MessageBody="bad \u0001 char"),
                 "InvalidMessageContents",
                 "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
    assert_error(error_of(sqs.receive_message, QueueUrl=url, MaxNumberOfMessages=11),
                 "InvalidParameterValue",
                 "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.")
    assert_error(error_of(sqs.receive_message, QueueUrl=url, WaitTimeSeconds=21),
                 "InvalidParameterValue",
                 "Value 21 for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.")
    assert_error(error_of(sqs.send_message, QueueUrl=url, MessageBody="m", MessageAttributes={
        "ErrorDetails": {"DataType": "String", "StringValue": ""}}),
        "InvalidParameterValue", "Message (user) attribute 'ErrorDetails' must contain a non-empty value of type 'String'.")
    assert_error(error_of(sqs.send_message, QueueUrl=f"{strato.endpoint}/{DEFAULT_ACCOUNT}/absent", MessageBody="m"),
                 "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")


def test_purge_tags_and_cli(strato):
    sqs = sqs_client(strato)
    url = sqs.create_queue(QueueName="p", tags={"team": "a"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    sqs.purge_queue(QueueUrl=url)
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"] == {
        "ApproximateNumberOfMessages": "0"}
    assert_error(error_of(sqs.purge_queue, QueueUrl=url), "AWS.SimpleQueueService.PurgeQueueInProgress",
                 "Only one PurgeQueue operation on p is allowed every 60 seconds.", 403)
    sqs.tag_queue(QueueUrl=url, Tags={"env": "prod"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a", "env": "prod"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "prod"}
    cli_url = strato.aws("sqs", "create-queue", "--queue-name", "cli").check().json()["QueueUrl"]
    strato.aws("sqs", "send-message", "--queue-url", cli_url, "--message-body", "from the cli").check()
    got = strato.aws("sqs", "receive-message", "--queue-url", cli_url, "--wait-time-seconds", "1").check().json()
    assert got["Messages"][0]["Body"] == "from the cli"
    missing = strato.aws("sqs", "get-queue-url", "--queue-name", "nope")
    assert missing.returncode != 0 and "NonExistentQueue" in missing.stderr


def signed_query(strato, params: dict, path: str = "/", access_key="test", secret_key="test"):
    body = urllib.parse.urlencode({**params, "Version": "2012-11-05"})
    request = AWSRequest(method="POST", url=strato.endpoint + path, data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    SigV4Auth(Credentials(access_key, secret_key), "sqs", REGION).add_auth(request)
    prepared = urllib.request.Request(strato.endpoint + path, data=body.encode(),
                                      headers=dict(request.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(prepared) as response:
            return response.status, ET.fromstring(response.read())
    except urllib.error.HTTPError as e:
        return e.code, ET.fromstring(e.read())


def test_query_protocol_speaks_xml(strato):
    status, root = signed_query(strato, {"Action": "CreateQueue", "QueueName": "xml",
                                         "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "40",
                                         "Tag.1.Key": "k", "Tag.1.Value": "v"})
    assert status == 200
    url = root.find("q:CreateQueueResult/q:QueueUrl", NS).text
    assert url.endswith(f"/{DEFAULT_ACCOUNT}/xml")
    path = f"/{DEFAULT_ACCOUNT}/xml"
    status, root = signed_query(strato, {
        "Action": "SendMessage", "MessageBody": "<hi & bye>",
        "MessageAttribute.1.Name": "a", "MessageAttribute.1.Value.DataType": "String",
        "MessageAttribute.1.Value.StringValue": "v"}, path)
    assert status == 200
    result = root.find("q:SendMessageResult", NS)
    assert result.find("q:MD5OfMessageBody", NS).text == hashlib.md5(b"<hi & bye>").hexdigest()
    assert result.find("q:MD5OfMessageAttributes", NS).text == md5_of_attributes(
        {"a": {"DataType": "String", "StringValue": "v"}})
    status, root = signed_query(strato, {"Action": "ReceiveMessage", "QueueUrl": url,
                                         "AttributeName.1": "All", "MessageAttributeName.1": "All"})
    message = root.find("q:ReceiveMessageResult/q:Message", NS)
    assert message is not None, ET.tostring(root)
    assert message.find("q:Body", NS).text == "<hi & bye>"
    names = [a.find("q:Name", NS).text for a in message.findall("q:Attribute", NS)]
    assert "ApproximateReceiveCount" in names and "SentTimestamp" in names
    attribute = message.find("q:MessageAttribute", NS)
    assert attribute.find("q:Name", NS).text == "a"
    assert attribute.find("q:Value/q:StringValue", NS).text == "v"
    status, root = signed_query(strato, {"Action": "GetQueueAttributes", "QueueUrl": url,
                                         "AttributeName.1": "VisibilityTimeout"})
    assert [(a.find("q:Name", NS).text, a.find("q:Value", NS).text)
            for a in root.findall("q:GetQueueAttributesResult/q:Attribute", NS)] == [("VisibilityTimeout", "40")]
    status, root = signed_query(strato, {"Action": "ListQueueTags", "QueueUrl": url})
    tag = root.find("q:ListQueueTagsResult/q:Tag", NS)
    assert (tag.find("q:Key", NS).text, tag.find("q:Value", NS).text) == ("k", "v")
    status, root = signed_query(strato, {"Action": "SendMessageBatch", "QueueUrl": url,
                                         "SendMessageBatchRequestEntry.1.Id": "one",
                                         "SendMessageBatchRequestEntry.1.MessageBody": "m",
                                         "SendMessageBatchRequestEntry.2.Id": "two",
                                         "SendMessageBatchRequestEntry.2.MessageBody": "\u0001"})
    assert root.find("q:SendMessageBatchResult/q:SendMessageBatchResultEntry/q:Id", NS).text == "one"
    assert root.find("q:SendMessageBatchResult/q:BatchResultErrorEntry/q:Id", NS).text == "two"
    status, root = signed_query(strato, {"Action": "GetQueueUrl", "QueueName": "absent"})
    assert status == 400
    error = root.find("q:Error", NS)
    assert error.find("q:Type", NS).text == "Sender"
    assert error.find("q:Code", NS).text == "AWS.SimpleQueueService.NonExistentQueue"
    assert error.find("q:Message", NS).text == "The specified queue does not exist for this wsdl version."


def test_accounts_are_isolated(strato):
    sqs = sqs_client(strato)
    url = sqs.create_queue(QueueName="mine")["QueueUrl"]
    other = strato.create_account()
    theirs = sqs_client(strato, other["access_key_id"], other["secret_access_key"])
    wait_until(lambda: _lists(theirs), "the second account's key to work")
    assert "QueueUrls" not in theirs.list_queues()
    # Another account's queue answers AccessDenied until its queue policy
    # grants the caller (test_iam.py shows the grant); a queue that does not
    # exist there is still NonExistentQueue.
    denied = error_of(theirs.send_message, QueueUrl=url, MessageBody="m")
    assert denied["Error"]["Code"] == "AccessDenied"
    assert denied["Error"]["Message"].endswith(
        "because no resource-based policy allows the sqs:sendmessage action")
    assert error_of(theirs.get_queue_url, QueueName="mine", QueueOwnerAWSAccountId=DEFAULT_ACCOUNT)[
        "Error"]["Code"] == "AccessDenied"
    assert_error(error_of(theirs.get_queue_url, QueueName="absent", QueueOwnerAWSAccountId=DEFAULT_ACCOUNT),
                 "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
    own = theirs.create_queue(QueueName="mine")["QueueUrl"]
    assert own != url and other["account_id"] in own


def _lists(client):
    try:
        client.list_queues()
        return True
    except botocore.exceptions.ClientError:
        return False


def test_queues_and_messages_survive_a_restart(strato, strato_binary):
    sqs = sqs_client(strato)
    url = sqs.create_queue(QueueName="durable", Attributes={"VisibilityTimeout": "7"}, tags={"a": "b"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="kept",
                     MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    root = strato.data_dir.parent
    strato.proc.terminate()
    strato.proc.wait()
    restarted = _start(strato_binary, root)
    try:
        sqs = sqs_client(restarted)
        url = sqs.get_queue_url(QueueName="durable")["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
        assert attrs == {"VisibilityTimeout": "7"}
        assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"a": "b"}
        got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
        assert got[0]["Body"] == "kept"
        assert got[0]["MessageAttributes"]["k"]["StringValue"] == "v"
    finally:
        restarted.proc.terminate()
        restarted.proc.wait()


JS_DIR = __import__("pathlib").Path(__file__).resolve().parent / "js"


def test_javascript_sdk_verifies_md5s(strato):
    """The AWS SDK for JavaScript v3 recomputes every body's MD5 on send,
    batch send and receive and fails on a mismatch."""
    import shutil
    import subprocess
    if shutil.which("node") is None or not (JS_DIR / "node_modules" / "@aws-sdk" / "client-sqs").is_dir():
        pytest.fail("the JS clients are not installed: run scripts/setup")
    proc = subprocess.run(["node", str(JS_DIR / "sqs_md5.js"), strato.endpoint],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["batchSuccessful"] == 2
    assert summary["receivedBodies"] == sorted(["plain", "ünïcödé ✓ 😀", "x" * 300000])
    expected = md5_of_attributes({
        "text": {"DataType": "String", "StringValue": "värde"},
        "number": {"DataType": "Number", "StringValue": "3.14"},
        "bytes": {"DataType": "Binary", "BinaryValue": bytes([0, 255, 7])},
    })
    assert summary["sentAttributesMd5"] == expected
    assert summary["receivedAttributesMd5"] == [expected] * 3


def test_cloudwatch_metrics_of_a_queue(strato):
    """SQS's metrics reach CloudWatch (namespace AWS/SQS, dimension
    QueueName), readable with `aws cloudwatch get-metric-statistics`."""
    import datetime
    sqs = sqs_client(strato)
    url = sqs.create_queue(QueueName="metered")["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": "x" * (10 * (i + 1))} for i in range(3)])
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    sqs.receive_message(QueueUrl=url)  # the rest are in flight: an empty receive
    now = datetime.datetime.now(datetime.timezone.utc)
    start = (now - datetime.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (now + datetime.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def statistic(metric: str, stat: str):
        out = strato.aws("cloudwatch", "get-metric-statistics", "--namespace", "AWS/SQS",
                         "--metric-name", metric, "--dimensions", "Name=QueueName,Value=metered",
                         "--start-time", start, "--end-time", end, "--period", "600",
                         "--statistics", stat).check().json()
        values = [p[stat] for p in out["Datapoints"]]
        if not values:
            return None
        # The window may span two periods.
        return {"Sum": sum, "Maximum": max, "Minimum": min}[stat](values)

    wait_until(lambda: statistic("NumberOfMessagesSent", "Sum") == 3, "NumberOfMessagesSent", 60, 1)
    assert statistic("NumberOfMessagesReceived", "Sum") == len(got)
    assert statistic("NumberOfMessagesDeleted", "Sum") == 1
    assert statistic("SentMessageSize", "Maximum") == 30
    assert statistic("SentMessageSize", "Minimum") == 10
    assert statistic("NumberOfEmptyReceives", "Sum") >= 1
    assert statistic("ApproximateNumberOfMessagesNotVisible", "Maximum") == len(got) - 1


NODE_HANDLER = """
exports.handler = async (event) => {
  if (event.fail) { throw new Error(`boom ${event.id}`); }
  return { done: event.id };
};
"""


@pytest.mark.strato_args("--time-scale", "60")
def test_queues_are_async_destinations_and_dead_letter_queues(strato):
    from conftest import ROLE, make_zip
    sqs = sqs_client(strato)
    ok_url = sqs.create_queue(QueueName="on-success")["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    client = strato.lambda_client()
    client.create_function(
        FunctionName="worker", Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
        Code={"ZipFile": make_zip({"index.js": NODE_HANDLER})}, MemorySize=128, Timeout=10,
        DeadLetterConfig={"TargetArn": f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:dead-letters"})
    client.get_waiter("function_active_v2").wait(FunctionName="worker")
    # A queue that does not exist is no destination.
    missing = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:absent"
    refused = error_of(client.put_function_event_invoke_config, FunctionName="worker",
                       DestinationConfig={"OnSuccess": {"Destination": missing}})
    assert refused["Error"]["Code"] == "InvalidParameterValueException"
    assert refused["Error"]["Message"] == f"The destination ARN {missing} is invalid."
    client.put_function_event_invoke_config(
        FunctionName="worker", MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:on-success"}})
    ok_id = client.invoke(FunctionName="worker", InvocationType="Event",
                          Payload=json.dumps({"id": "a"}).encode())["ResponseMetadata"]["RequestId"]
    record = wait_until(lambda: sqs.receive_message(QueueUrl=ok_url, WaitTimeSeconds=1).get("Messages"),
                        "the OnSuccess record in the queue", 90)[0]
    body = json.loads(record["Body"])
    assert body["requestContext"]["requestId"] == ok_id
    assert body["requestContext"]["condition"] == "Success"
    assert body["responsePayload"] == {"done": "a"}
    bad_id = client.invoke(FunctionName="worker", InvocationType="Event",
                           Payload=json.dumps({"id": "b", "fail": True}).encode())["ResponseMetadata"]["RequestId"]
    dead = wait_until(lambda: sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1,
                                                  MessageAttributeNames=["All"]).get("Messages"),
                      "the dead-lettered event", 90)[0]
    assert json.loads(dead["Body"]) == {"id": "b", "fail": True}
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["RequestID"] == bad_id
    assert attributes["ErrorCode"] == "200"
    assert attributes["ErrorMessage"].startswith("boom b")
