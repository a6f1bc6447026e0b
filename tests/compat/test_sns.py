"""Amazon SNS through boto3 and the AWS CLI (query protocol, XML): topics,
subscriptions, fan-out to SQS (raw and enveloped), Lambda and a local HTTP
endpoint that confirms its subscription and verifies every signature with
openssl; filter policies; FIFO ordering; AWS's errors."""

from __future__ import annotations

import base64
import http.server
import json
import signal
import subprocess
import tempfile
import threading
import urllib.request
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, _start, _stop, make_zip, wait_until


def client(strato, service: str):
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    return session.client(service, endpoint_url=strato.endpoint,
                          config=Config(retries={"max_attempts": 0}))


def error_of(call, *args, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(*args, **kwargs)
    return raised.value.response


def assert_error(response, code: str, message: str, status: int = 400):
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status, response
    assert response["Error"]["Code"] == code, response
    assert response["Error"]["Message"] == message, response


def queue(sqs, name: str, **attributes) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def drain(sqs, url: str, expected: int) -> list[dict]:
    """Receives until `expected` messages came (deleting them)."""
    got: list[dict] = []

    def more():
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                     MessageAttributeNames=["All"]).get("Messages", []):
            got.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return len(got) >= expected

    wait_until(more, f"{expected} messages in {url}")
    return got


def assert_empty(sqs, url: str):
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []


def canonical(message: dict) -> bytes:
    if message["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{k}\n{message[k]}\n" for k in keys if message.get(k) is not None).encode()


def verify_signature(message: dict, cert_key: str = "SigningCertURL") -> None:
    """Checks the signature as AWS's documentation tells subscribers to:
    the certificate from SigningCertURL, the canonical string, SHA1withRSA
    (version 1) or SHA256withRSA (version 2); with the openssl CLI."""
    pem = urllib.request.urlopen(message[cert_key], timeout=5).read()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "cert.pem").write_bytes(pem)
        (d / "data").write_bytes(canonical(message))
        (d / "sig").write_bytes(base64.b64decode(message["Signature"]))
        pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", str(d / "cert.pem")],
                             capture_output=True, check=True).stdout
        (d / "pub.pem").write_bytes(pub)
        digest = {"1": "-sha1", "2": "-sha256"}[message["SignatureVersion"]]
        result = subprocess.run(
            ["openssl", "dgst", digest, "-verify", str(d / "pub.pem"), "-signature", str(d / "sig"),
             str(d / "data")], capture_output=True, text=True)
        assert result.returncode == 0, (result.stdout, result.stderr, canonical(message))


def test_topic_lifecycle_attributes_and_tags(strato):
    sns = client(strato, "sns")
    arn = sns.create_topic(Name="orders", Tags=[{"Key": "team", "Value": "a"}])["TopicArn"]
    assert arn == f"arn:aws:sns:{REGION}:{DEFAULT_ACCOUNT}:orders"
    assert sns.create_topic(Name="orders")["TopicArn"] == arn
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes["TopicArn"] == arn
    assert attributes["Owner"] == DEFAULT_ACCOUNT
    assert attributes["SubscriptionsConfirmed"] == "0"
    assert json.loads(attributes["Policy"])["Statement"][0]["Resource"] == arn
    assert "FifoTopic" not in attributes
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Orders")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "Orders"
    assert {"TopicArn": arn} in sns.list_topics()["Topics"]
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "dev"}])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "a"}]
    sns.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]
    assert_error(error_of(sns.create_topic, Name="orders", Tags=[{"Key": "x", "Value": "y"}]),
                 "InvalidParameter", "Invalid parameter: Tags Reason: Topic already exists with different tags")
    sns.delete_topic(TopicArn=arn)
    sns.delete_topic(TopicArn=arn)  # idempotent
    assert_error(error_of(sns.get_topic_attributes, TopicArn=arn), "NotFound", "Topic does not exist", 404)
    assert sns.list_topics()["Topics"] == []


def test_bad_input_answers_aws_errors(strato):
    sns = client(strato, "sns")
    assert_error(error_of(sns.create_topic, Name="bad name"), "InvalidParameter",
                 "Invalid parameter: Topic Name")
    assert_error(error_of(sns.create_topic, Name="plain", Attributes={"InvalidKey": "1"}),
                 "InvalidParameter", "Invalid parameter: Attributes Reason: Invalid attribute name: InvalidKey")
    assert_error(error_of(sns.get_topic_attributes, TopicArn="nope"), "InvalidParameter",
                 "Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not 1")
    arn = sns.create_topic(Name="t")["TopicArn"]
    assert_error(error_of(sns.publish, TopicArn=arn, Message=""), "InvalidParameter",
                 "Invalid parameter: Empty message")
    assert_error(error_of(sns.publish, TopicArn=arn, Message="x" * (256 * 1024 + 1)),
                 "InvalidParameter", "Invalid parameter: Message too long")
    assert_error(error_of(sns.publish, TopicArn=arn, Message="{}", MessageStructure="json"),
                 "InvalidParameter", "Invalid parameter: Message Structure - No default entry in JSON message body")
    assert_error(error_of(sns.publish, TopicArn=arn, Message="nope", MessageStructure="json"),
                 "InvalidParameter", "Invalid parameter: Message Structure - JSON message body failed to parse")
    assert_error(error_of(sns.publish, TopicArn=arn, Message="m", MessageDeduplicationId="d"),
                 "InvalidParameter",
                 "Invalid parameter: MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that is not valid for this topic type")
    assert_error(error_of(sns.publish, TopicArn=arn, Message="m",
                          MessageAttributes={"attr1": {"DataType": "Binary", "StringValue": "x"}}),
                 "ParameterValueInvalid", "The message attribute 'attr1' with type 'Binary' must use field 'Binary'.")
    assert_error(error_of(sns.publish, TopicArn=arn, Message="m",
                          MessageAttributes={"attr1": {"DataType": "Blob", "StringValue": "x"}}),
                 "ParameterValueInvalid",
                 "The message attribute 'attr1' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.")
    assert_error(error_of(sns.subscribe, TopicArn=arn, Protocol="test-protocol", Endpoint="x"),
                 "InvalidParameter", "Invalid parameter: Amazon SNS does not support this protocol string: test-protocol")
    assert_error(error_of(sns.subscribe, TopicArn=arn, Protocol="sqs", Endpoint="arn:aws:sqs:q",
                          ), "InvalidParameter", "Invalid parameter: SQS endpoint ARN")
    assert_error(error_of(sns.subscribe, TopicArn=arn, Protocol="sqs",
                          Endpoint=f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:q",
                          Attributes={"FilterPolicy": '{"key":[]}'}), "InvalidParameter",
                 # AWS's message without its parser's location, as the reference normalizes it.
                 "Invalid parameter: Attributes Reason: FilterPolicy: Empty arrays are not allowed")
    assert_error(error_of(sns.subscribe, TopicArn=arn, Protocol="sqs",
                          Endpoint=f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:q",
                          Attributes={"RawMessageDelivery": "wrongvalue"}), "InvalidParameter",
                 "Invalid parameter: Attributes Reason: RawMessageDelivery: Invalid value [wrongvalue]. Must be true or false.")
    assert_error(error_of(sns.unsubscribe, SubscriptionArn=f"{arn}:0b9f7a9e-0000-0000-0000-000000000000"),
                 "NotFound", "Subscription does not exist", 404)
    entries = [{"Id": "a", "Message": "1"}, {"Id": "a", "Message": "2"}]
    assert_error(error_of(sns.publish_batch, TopicArn=arn, PublishBatchRequestEntries=entries),
                 "BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same Id.")
    entries = [{"Id": str(i), "Message": "m"} for i in range(11)]
    assert_error(error_of(sns.publish_batch, TopicArn=arn, PublishBatchRequestEntries=entries),
                 "TooManyEntriesInBatchRequest", "The batch request contains more entries than permissible.")
    # The CLI reads the same XML errors.
    result = strato.aws("sns", "get-topic-attributes", "--topic-arn",
                        f"arn:aws:sns:{REGION}:{DEFAULT_ACCOUNT}:missing")
    assert result.returncode != 0 and "NotFound" in result.stderr and "Topic does not exist" in result.stderr


def test_fan_out_to_sqs_raw_and_enveloped(strato):
    sns, sqs = client(strato, "sns"), client(strato, "sqs")
    topic = sns.create_topic(Name="fan")["TopicArn"]
    enveloped_url, enveloped_arn = queue(sqs, "enveloped")
    raw_url, raw_arn = queue(sqs, "raw")
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=enveloped_arn)["SubscriptionArn"]
    assert sub.startswith(topic + ":")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=raw_arn,
                  Attributes={"RawMessageDelivery": "true"})
    attributes = {"color": {"DataType": "String", "StringValue": "red"},
                  "size": {"DataType": "Number", "StringValue": "3"},
                  "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
    message_id = sns.publish(TopicArn=topic, Message="hello", Subject="greeting",
                             MessageAttributes=attributes)["MessageId"]

    [enveloped] = drain(sqs, enveloped_url, 1)
    body = json.loads(enveloped["Body"])
    assert list(body) == ["Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp",
                          "SignatureVersion", "Signature", "SigningCertURL", "UnsubscribeURL",
                          "MessageAttributes"]
    assert body["Type"] == "Notification" and body["MessageId"] == message_id
    assert body["Message"] == "hello" and body["Subject"] == "greeting" and body["TopicArn"] == topic
    assert body["MessageAttributes"] == {"color": {"Type": "String", "Value": "red"},
                                         "size": {"Type": "Number", "Value": "3"},
                                         "blob": {"Type": "Binary", "Value": "AAE="}}
    assert sub in body["UnsubscribeURL"]
    verify_signature(body)

    [raw] = drain(sqs, raw_url, 1)
    assert raw["Body"] == "hello"
    assert raw["MessageAttributes"]["color"] == {"StringValue": "red", "DataType": "String"}
    assert raw["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01"

    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sorted(s["Endpoint"] for s in subs) == sorted([enveloped_arn, raw_arn])
    got = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert got["RawMessageDelivery"] == "false" and got["Protocol"] == "sqs" and got["PendingConfirmation"] == "false"

    # MessageStructure json: each protocol its own message.
    sns.publish(TopicArn=topic, MessageStructure="json",
                Message=json.dumps({"default": "dflt", "sqs": "for queues"}))
    assert drain(sqs, raw_url, 1)[0]["Body"] == "for queues"
    drain(sqs, enveloped_url, 1)

    # Batches fan out too; after unsubscribing nothing more arrives.
    result = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
        {"Id": "one", "Message": "b1"}, {"Id": "two", "Message": "b2"}])
    assert [s["Id"] for s in result["Successful"]] == ["one", "two"] and result["Failed"] == []
    assert sorted(m["Body"] for m in drain(sqs, raw_url, 2)) == ["b1", "b2"]
    sns.unsubscribe(SubscriptionArn=sub)
    drain(sqs, enveloped_url, 2)
    sns.publish(TopicArn=topic, Message="after")
    assert_empty(sqs, enveloped_url)


def test_filter_policies_drop_what_they_should(strato):
    sns, sqs = client(strato, "sns"), client(strato, "sqs")
    topic = sns.create_topic(Name="filtered")["TopicArn"]
    attr_url, attr_arn = queue(sqs, "by-attributes")
    body_url, body_arn = queue(sqs, "by-body")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=attr_arn, Attributes={
        "RawMessageDelivery": "true",
        "FilterPolicy": json.dumps({"store": ["example_corp"], "price": [{"numeric": [">", 100]}]})})
    body_sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=body_arn, Attributes={
        "RawMessageDelivery": "true", "FilterPolicyScope": "MessageBody",
        "FilterPolicy": json.dumps({"order": {"kind": [{"prefix": "big"}]}})})["SubscriptionArn"]

    def publish(message, **attrs):
        sns.publish(TopicArn=topic, Message=message, MessageAttributes={
            k: {"DataType": "Number" if isinstance(v, int) else "String", "StringValue": str(v)}
            for k, v in attrs.items()})

    publish(json.dumps({"order": {"kind": "small"}}), store="example_corp", price=50)
    publish(json.dumps({"order": {"kind": "bigger"}}), store="other", price=500)
    publish("not json", store="example_corp", price=101)
    assert [m["Body"] for m in drain(sqs, attr_url, 1)] == ["not json"]
    assert [json.loads(m["Body"]) for m in drain(sqs, body_url, 1)] == [{"order": {"kind": "bigger"}}]
    assert_empty(sqs, attr_url)
    assert_empty(sqs, body_url)
    attributes = sns.get_subscription_attributes(SubscriptionArn=body_sub)["Attributes"]
    assert attributes["FilterPolicyScope"] == "MessageBody"
    assert_error(error_of(sns.set_subscription_attributes, SubscriptionArn=body_sub,
                          AttributeName="FilterPolicyScope", AttributeValue="RandomValue"),
                 "InvalidParameter",
                 "Invalid parameter: FilterPolicyScope: Invalid value [RandomValue]. Please use either MessageBody or MessageAttributes")
    # Removing the policy lets everything through.
    sns.set_subscription_attributes(SubscriptionArn=body_sub, AttributeName="FilterPolicy",
                                    AttributeValue="")
    publish("anything")
    assert [m["Body"] for m in drain(sqs, body_url, 1)] == ["anything"]


def test_fifo_topic_to_fifo_queue_keeps_order_and_deduplicates(strato):
    sns, sqs = client(strato, "sns"), client(strato, "sqs")
    standard = sns.create_topic(Name="plain")["TopicArn"]
    fifo_url, fifo_arn = queue(sqs, "ordered.fifo", FifoQueue="true")
    assert_error(error_of(sns.subscribe, TopicArn=standard, Protocol="sqs", Endpoint=fifo_arn),
                 "InvalidParameter",
                 "Invalid parameter: Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to standard SNS topics")
    topic = sns.create_topic(Name="ordered.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["FifoTopic"] == "true" and attributes["ContentBasedDeduplication"] == "false"
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=fifo_arn,
                  Attributes={"RawMessageDelivery": "true"})
    assert_error(error_of(sns.publish, TopicArn=topic, Message="m"), "InvalidParameter",
                 "Invalid parameter: The MessageGroupId parameter is required for FIFO topics")
    assert_error(error_of(sns.publish, TopicArn=topic, Message="m", MessageGroupId="g"),
                 "InvalidParameter",
                 "Invalid parameter: The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
    sequences = []
    for i in range(5):
        answer = sns.publish(TopicArn=topic, Message=f"m{i}", MessageGroupId="g",
                             MessageDeduplicationId=f"d{i}")
        sequences.append(int(answer["SequenceNumber"]))
    assert sequences == sorted(sequences)
    again = sns.publish(TopicArn=topic, Message="m0", MessageGroupId="g", MessageDeduplicationId="d0")
    bodies = []

    def more():
        for m in sqs.receive_message(QueueUrl=fifo_url, MaxNumberOfMessages=10,
                                     WaitTimeSeconds=1).get("Messages", []):
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=fifo_url, ReceiptHandle=m["ReceiptHandle"])
        return len(bodies) >= 5

    wait_until(more, "five FIFO messages")
    assert bodies == ["m0", "m1", "m2", "m3", "m4"]
    assert int(again["SequenceNumber"]) == sequences[0]
    assert_empty(sqs, fifo_url)


class Endpoint:
    """A local HTTP endpoint that records what SNS POSTs, with its headers."""

    def __init__(self):
        self.received: list[tuple[dict, dict]] = []
        self.failing = False
        # Notifications still to answer 500 before the endpoint heals.
        self.failures_left = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length).decode()
                outer.received.append((dict(self.headers), body))
                fail = outer.failing or outer.failures_left > 0
                if outer.failures_left > 0 and self.headers.get("x-amz-sns-message-type") == "Notification":
                    outer.failures_left -= 1
                self.send_response(500 if fail else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, kind: str, count: int = 1) -> list[tuple[dict, dict]]:
        def of_kind():
            return [(h, b) for h, b in self.received if h.get("x-amz-sns-message-type") == kind]

        wait_until(lambda: len(of_kind()) >= count, f"{count} {kind} POSTs")
        return of_kind()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    e = Endpoint()
    yield e
    e.close()


def test_http_endpoint_confirms_its_subscription_and_verifies_signatures(strato, endpoint):
    sns = client(strato, "sns")
    topic = sns.create_topic(Name="web")["TopicArn"]
    answer = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=endpoint.url)
    assert answer["SubscriptionArn"] == "pending confirmation"
    [(headers, body)] = endpoint.wait("SubscriptionConfirmation")
    confirmation = json.loads(body)
    assert headers["x-amz-sns-topic-arn"] == topic
    assert confirmation["Type"] == "SubscriptionConfirmation" and confirmation["TopicArn"] == topic
    verify_signature(confirmation)
    [pending] = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert pending["SubscriptionArn"] == "PendingConfirmation"
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsPending"] == "1"
    # Nothing is delivered before the confirmation.
    sns.publish(TopicArn=topic, Message="too early")
    # The endpoint confirms by visiting SubscribeURL, as AWS asks it to.
    with urllib.request.urlopen(confirmation["SubscribeURL"], timeout=5) as response:
        assert b"<SubscriptionArn>" in response.read()
    [confirmed] = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    sub = confirmed["SubscriptionArn"]
    assert sub.startswith(topic + ":")

    sns.publish(TopicArn=topic, Message="hello web", Subject="s1")
    [(headers, body)] = endpoint.wait("Notification")
    notification = json.loads(body)
    assert notification["Message"] == "hello web" and notification["Subject"] == "s1"
    assert headers["x-amz-sns-subscription-arn"] == sub
    assert headers["x-amz-sns-message-id"] == notification["MessageId"]
    assert notification["SignatureVersion"] == "1"
    verify_signature(notification)

    sns.set_topic_attributes(TopicArn=topic, AttributeName="SignatureVersion", AttributeValue="2")
    sns.publish(TopicArn=topic, Message="signed with sha256")
    second = json.loads(endpoint.wait("Notification", 2)[1][1])
    assert second["SignatureVersion"] == "2"
    verify_signature(second)

    # Raw delivery posts the bare message.
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery",
                                    AttributeValue="true")
    sns.publish(TopicArn=topic, Message="raw body")
    headers, body = endpoint.wait("Notification", 3)[2]
    assert body == "raw body" and headers["x-amz-sns-rawdelivery"] == "true"
    assert all(json.loads(b)["Message"] != "too early"
               for _, b in endpoint.received[:-1] if b.startswith("{") and '"Notification"' in b)

    # Unsubscribing tells the endpoint, signed like the confirmation.
    sns.unsubscribe(SubscriptionArn=sub)
    [(headers, body)] = endpoint.wait("UnsubscribeConfirmation")
    goodbye = json.loads(body)
    assert goodbye["Type"] == "UnsubscribeConfirmation" and goodbye["TopicArn"] == topic
    assert goodbye["Message"].startswith(f"You have chosen to deactivate subscription {sub}.")
    verify_signature(goodbye)


def test_an_accepted_http_delivery_survives_kill_9_and_is_retried(strato, strato_binary, endpoint):
    sns = client(strato, "sns")
    topic = sns.create_topic(Name="durable")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=endpoint.url)
    [(_, body)] = endpoint.wait("SubscriptionConfirmation")
    sns.confirm_subscription(TopicArn=topic, Token=json.loads(body)["Token"])
    endpoint.failing = True
    sns.publish(TopicArn=topic, Message="must arrive")
    endpoint.wait("Notification")  # the first attempt, answered 500
    strato.proc.send_signal(signal.SIGKILL)
    strato.proc.wait()
    endpoint.failing = False
    restarted = _start(strato_binary, strato.data_dir.parent)
    try:
        delivered = endpoint.wait("Notification", 2)
        assert json.loads(delivered[1][1])["Message"] == "must arrive"
    finally:
        _stop(restarted.proc)


@pytest.mark.strato_args("--time-scale", "20")
def test_http_retries_follow_the_delivery_policy_then_dead_letter(strato, endpoint):
    sns, sqs = client(strato, "sns"), client(strato, "sqs")
    topic = sns.create_topic(Name="retried")["TopicArn"]
    assert_error(error_of(sns.set_topic_attributes, TopicArn=topic, AttributeName="DeliveryPolicy",
                          AttributeValue=json.dumps({"http": {"defaultHealthyRetryPolicy": {
                              "minDelayTarget": 1, "maxDelayTarget": 1, "numRetries": 101}}})),
                 "InvalidParameter",
                 "Invalid parameter: DeliveryPolicy: http.defaultHealthyRetryPolicy.numRetries "
                 "must be less than or equal to 100")
    dlq_url, dlq_arn = queue(sqs, "retried-dlq")
    policy = {"healthyRetryPolicy": {"minDelayTarget": 1, "maxDelayTarget": 2, "numRetries": 3,
                                     "numNoDelayRetries": 1, "backoffFunction": "linear"},
              "requestPolicy": {"headerContentType": "application/json"}}
    sub = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=endpoint.url,
                        ReturnSubscriptionArn=True,
                        Attributes={"DeliveryPolicy": json.dumps(policy),
                                    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})})["SubscriptionArn"]
    [(_, body)] = endpoint.wait("SubscriptionConfirmation")
    sns.confirm_subscription(TopicArn=topic, Token=json.loads(body)["Token"])
    effective = json.loads(sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["EffectiveDeliveryPolicy"])
    assert effective["healthyRetryPolicy"] == {
        "minDelayTarget": 1, "maxDelayTarget": 2, "numRetries": 3, "numMaxDelayRetries": 0,
        "numNoDelayRetries": 1, "numMinDelayRetries": 0, "backoffFunction": "linear"}

    # Fails twice, then accepts: the third attempt delivers, nothing is dead-lettered.
    endpoint.failures_left = 2
    sent = sns.publish(TopicArn=topic, Message="third time lucky")["MessageId"]
    attempts = endpoint.wait("Notification", 3)
    assert [json.loads(b)["MessageId"] for _, b in attempts] == [sent] * 3
    assert all(h["content-type"] == "application/json" for h, _ in attempts)

    # Never accepts: the first attempt and three retries, then the DLQ.
    endpoint.failing = True
    lost = sns.publish(TopicArn=topic, Message="never lands")["MessageId"]
    [dead] = drain(sqs, dlq_url, 1)
    assert json.loads(dead["Body"])["MessageId"] == lost
    tried = [b for _, b in endpoint.wait("Notification", 7) if json.loads(b)["MessageId"] == lost]
    assert len(tried) == 4
    assert sum(1 for _, b in endpoint.received
               if b.startswith("{") and json.loads(b).get("MessageId") == sent) == 3


NODE_RECORDER = """
exports.handler = async (event) => {
  console.log(`RECORD ${JSON.stringify(event)}`);
  return "ok";
};
"""


def test_lambda_subscription_receives_the_sns_event(strato):
    sns, lam, logs = client(strato, "sns"), client(strato, "lambda"), client(strato, "logs")
    lam.create_function(FunctionName="recorder", Runtime="nodejs20.x", Role=ROLE,
                        Handler="index.handler", Code={"ZipFile": make_zip({"index.js": NODE_RECORDER})})
    lam.get_waiter("function_active_v2").wait(FunctionName="recorder")
    topic = sns.create_topic(Name="to-lambda")["TopicArn"]
    function_arn = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:recorder"
    lam.add_permission(FunctionName="recorder", StatementId="sns", Action="lambda:InvokeFunction",
                       Principal="sns.amazonaws.com", SourceArn=topic)
    sub = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function_arn)["SubscriptionArn"]
    message_id = sns.publish(TopicArn=topic, Message="to the function", MessageAttributes={
        "k": {"DataType": "String", "StringValue": "v"}})["MessageId"]

    events = []

    def recorded():
        try:
            found = logs.filter_log_events(logGroupName="/aws/lambda/recorder",
                                           filterPattern='"RECORD"')["events"]
        except logs.exceptions.ResourceNotFoundException:
            return False
        events[:] = [json.loads(e["message"][e["message"].find("RECORD ") + 7:]) for e in found]
        return bool(events)

    wait_until(recorded, "the function's SNS event")
    [record] = events[0]["Records"]
    assert list(record) == ["EventSource", "EventVersion", "EventSubscriptionArn", "Sns"]
    assert record["EventSource"] == "aws:sns" and record["EventVersion"] == "1.0"
    assert record["EventSubscriptionArn"] == sub
    event = record["Sns"]
    assert list(event) == ["Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp",
                           "SignatureVersion", "Signature", "SigningCertUrl", "UnsubscribeUrl",
                           "MessageAttributes"]
    assert event["MessageId"] == message_id and event["Subject"] is None
    assert event["Message"] == "to the function"
    assert event["MessageAttributes"] == {"k": {"Type": "String", "Value": "v"}}
    verify_signature(event, cert_key="SigningCertUrl")


FAILING = """
exports.handler = async (event) => { throw new Error(`boom ${event.id}`); };
"""


def test_a_topic_is_an_async_invoke_destination(strato):
    """OnFailure → SNS topic → SQS queue: the invocation record arrives as the message."""
    sns, sqs, lam = client(strato, "sns"), client(strato, "sqs"), client(strato, "lambda")
    topic = sns.create_topic(Name="failures")["TopicArn"]
    url, arn = queue(sqs, "failure-records")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    lam.create_function(FunctionName="failing", Runtime="nodejs20.x", Role=ROLE,
                        Handler="index.handler", Code={"ZipFile": make_zip({"index.js": FAILING})})
    lam.get_waiter("function_active_v2").wait(FunctionName="failing")
    lam.put_function_event_invoke_config(FunctionName="failing", MaximumRetryAttempts=0,
                                         DestinationConfig={"OnFailure": {"Destination": topic}})
    lam.invoke(FunctionName="failing", InvocationType="Event", Payload=json.dumps({"id": "x1"}))
    [message] = drain(sqs, url, 1)
    record = json.loads(message["Body"])
    assert record["requestPayload"] == {"id": "x1"}
    assert record["requestContext"]["condition"] == "RetriesExhausted"


def test_the_cli_speaks_sns(strato):
    arn = strato.aws("sns", "create-topic", "--name", "cli-topic").check().json()["TopicArn"]
    assert arn.endswith(":cli-topic")
    listed = strato.aws("sns", "list-topics").check().json()["Topics"]
    assert {"TopicArn": arn} in listed
    published = strato.aws("sns", "publish", "--topic-arn", arn, "--message", "hi",
                           "--message-attributes",
                           '{"a": {"DataType": "String", "StringValue": "b"}}').check().json()
    assert len(published["MessageId"]) == 36
