"""Amazon DynamoDB and DynamoDB Streams through boto3 (client and resource)
and the AWS CLI."""

from __future__ import annotations

import os
import signal
import time
import zlib

import boto3
import botocore.exceptions
import pytest
from boto3.dynamodb.conditions import Attr, Key
from botocore.config import Config

from conftest import DEFAULT_ACCOUNT, REGION, _start, _stop, wait_until


def session():
    return boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)


def ddb(strato):
    return session().client("dynamodb", endpoint_url=strato.endpoint,
                            config=Config(retries={"max_attempts": 0}))


def streams(strato):
    return session().client("dynamodbstreams", endpoint_url=strato.endpoint,
                            config=Config(retries={"max_attempts": 0}))


def resource(strato):
    return session().resource("dynamodb", endpoint_url=strato.endpoint,
                              config=Config(retries={"max_attempts": 0}))


def error_of(call, *args, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(*args, **kwargs)
    return raised.value.response


def make_table(client, name="items", stream=None, ranged=True, gsi=False):
    attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    if ranged:
        attributes.append({"AttributeName": "sk", "AttributeType": "N"})
        keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
    kwargs = dict(TableName=name, KeySchema=keys, AttributeDefinitions=attributes,
                  BillingMode="PAY_PER_REQUEST")
    if gsi:
        attributes.append({"AttributeName": "colour", "AttributeType": "S"})
        kwargs["GlobalSecondaryIndexes"] = [{
            "IndexName": "by-colour",
            "KeySchema": [{"AttributeName": "colour", "KeyType": "HASH"},
                          {"AttributeName": "sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }]
    if stream:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream}
    answer = client.create_table(**kwargs)
    client.get_waiter("table_exists").wait(TableName=name,
                                           WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    return answer["TableDescription"]


def test_tables_have_the_callers_arns_and_crc32(strato):
    client = ddb(strato)
    table = make_table(client, gsi=True, stream="NEW_AND_OLD_IMAGES")
    assert table["TableArn"] == f"arn:aws:dynamodb:{REGION}:{DEFAULT_ACCOUNT}:table/items"
    assert table["LatestStreamArn"].startswith(table["TableArn"] + "/stream/")
    assert table["StreamSpecification"] == {"StreamEnabled": True,
                                            "StreamViewType": "NEW_AND_OLD_IMAGES"}
    described = client.describe_table(TableName="items")["Table"]
    assert described["TableStatus"] == "ACTIVE"
    assert described["GlobalSecondaryIndexes"][0]["IndexName"] == "by-colour"
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert client.list_tables()["TableNames"] == ["items"]

    # The x-amz-crc32 header is the CRC32 of the body, as the SDKs check.
    seen = []
    client.meta.events.register(
        "after-call.dynamodb.ListTables",
        lambda http_response, **_: seen.append(http_response))
    client.list_tables()
    assert int(seen[0].headers["x-amz-crc32"]) == zlib.crc32(seen[0].content)
    assert seen[0].headers["content-type"] == "application/x-amz-json-1.0"

    client.tag_resource(ResourceArn=table["TableArn"], Tags=[{"Key": "team", "Value": "a"}])
    tags = client.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
    assert tags == [{"Key": "team", "Value": "a"}]
    limits = client.describe_limits()
    assert limits["TableMaxWriteCapacityUnits"] > 0

    client.delete_table(TableName="items")
    client.get_waiter("table_not_exists").wait(TableName="items",
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    missing = error_of(client.describe_table, TableName="items")
    assert missing["Error"]["Code"] == "ResourceNotFoundException"
    assert missing["Error"]["Message"] == "Requested resource not found: Table: items not found"


def test_crud_with_conditions_updates_and_return_values(strato):
    client = ddb(strato)
    make_table(client)
    table = resource(strato).Table("items")
    table.put_item(Item={"pk": "a", "sk": 1, "count": 1, "tags": {"x"}, "olds": {"a", "b"},
                         "list": [1], "gone": True})
    failed = error_of(table.put_item, Item={"pk": "a", "sk": 1},
                      ConditionExpression="attribute_not_exists(pk)")
    assert failed["Error"]["Code"] == "ConditionalCheckFailedException"
    assert failed["Error"]["Message"] == "The conditional request failed"

    updated = table.update_item(
        Key={"pk": "a", "sk": 1},
        UpdateExpression="SET #c = #c + :one, fresh = if_not_exists(fresh, :v), "
                         "#l = list_append(#l, :more) REMOVE gone ADD tags :t DELETE olds :a",
        ConditionExpression="#c = :one",
        ExpressionAttributeNames={"#c": "count", "#l": "list"},
        ExpressionAttributeValues={":one": 1, ":v": "new", ":more": [2], ":t": {"y"},
                                   ":a": {"a"}},
        ReturnValues="ALL_NEW")["Attributes"]
    assert updated == {"pk": "a", "sk": 1, "count": 2, "fresh": "new", "list": [1, 2],
                       "tags": {"x", "y"}, "olds": {"b"}}
    got = table.get_item(Key={"pk": "a", "sk": 1}, ProjectionExpression="#c, fresh",
                         ExpressionAttributeNames={"#c": "count"})["Item"]
    assert got == {"count": 2, "fresh": "new"}
    old = table.delete_item(Key={"pk": "a", "sk": 1}, ReturnValues="ALL_OLD")["Attributes"]
    assert old["count"] == 2
    assert "Item" not in table.get_item(Key={"pk": "a", "sk": 1})

    # The CLI speaks the same API.
    strato.aws("dynamodb", "put-item", "--table-name", "items", "--item",
               '{"pk": {"S": "cli"}, "sk": {"N": "7"}}').check()
    got = strato.aws("dynamodb", "get-item", "--table-name", "items", "--key",
                     '{"pk": {"S": "cli"}, "sk": {"N": "7"}}').check().json()
    assert got["Item"] == {"pk": {"S": "cli"}, "sk": {"N": "7"}}


def test_bad_input_answers_validation_exceptions(strato):
    client = ddb(strato)
    make_table(client)
    wrong_key = error_of(client.get_item, TableName="items", Key={"pk": {"S": "a"}})
    assert wrong_key["Error"]["Code"] == "ValidationException"
    assert wrong_key["Error"]["Message"] == \
        "The provided key element does not match the schema"
    syntax = error_of(client.update_item, TableName="items",
                      Key={"pk": {"S": "a"}, "sk": {"N": "1"}}, UpdateExpression="SET = 1")
    assert syntax["Error"]["Code"] == "ValidationException"
    # UpdateItem wraps these in AWS's "1 validation error detected: " envelope.
    assert "Invalid UpdateExpression: Syntax error; token:" in syntax["Error"]["Message"]
    reserved = error_of(client.update_item, TableName="items",
                        Key={"pk": {"S": "a"}, "sk": {"N": "1"}},
                        UpdateExpression="SET size = :v",
                        ExpressionAttributeValues={":v": {"N": "1"}})
    assert reserved["Error"]["Message"].endswith(
        "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: size")
    too_big = error_of(client.put_item, TableName="items",
                       Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "blob": {"S": "x" * 410_000}})
    assert too_big["Error"]["Code"] == "ValidationException"
    assert too_big["Error"]["Message"] == "Item size has exceeded the maximum allowed size"
    bad_name = error_of(client.create_table, TableName="x",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    assert bad_name["Error"]["Code"] == "ValidationException"
    assert "Member must have length greater than or equal to 3" in bad_name["Error"]["Message"]


def test_query_pages_indexes_and_parallel_scan(strato):
    client = ddb(strato)
    make_table(client, gsi=True)
    table = resource(strato).Table("items")
    with table.batch_writer() as batch:
        for i in range(30):
            batch.put_item(Item={"pk": "p", "sk": i, "colour": "red" if i % 2 else "blue"})
        for i in range(5):
            batch.put_item(Item={"pk": "q", "sk": i, "colour": "red"})

    seen, start = [], None
    while True:
        kwargs = {"KeyConditionExpression": Key("pk").eq("p") & Key("sk").gte(10),
                  "Limit": 7, "ScanIndexForward": False}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = table.query(**kwargs)
        seen += [int(item["sk"]) for item in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert seen == list(range(29, 9, -1))

    filtered = table.query(KeyConditionExpression=Key("pk").eq("p"),
                           FilterExpression=Attr("colour").eq("red"))
    assert filtered["Count"] == 15 and filtered["ScannedCount"] == 30

    by_colour = table.query(IndexName="by-colour",
                            KeyConditionExpression=Key("colour").eq("red") & Key("sk").lt(3))
    assert sorted((i["pk"], int(i["sk"])) for i in by_colour["Items"]) == \
        [("p", 1), ("q", 0), ("q", 1), ("q", 2)]

    segments = [table.scan(Segment=s, TotalSegments=3)["Items"] for s in range(3)]
    everything = [(i["pk"], int(i["sk"])) for segment in segments for i in segment]
    assert len(everything) == 35 and len(set(everything)) == 35

    # Pages stop at 1 MB.
    big = "x" * 300_000
    for i in range(5):
        table.put_item(Item={"pk": "big", "sk": i, "blob": big})
    first = table.query(KeyConditionExpression=Key("pk").eq("big"))
    assert 0 < first["Count"] < 5 and "LastEvaluatedKey" in first


def test_batches_and_transactions(strato):
    client = ddb(strato)
    make_table(client)
    client.batch_write_item(RequestItems={"items": [
        {"PutRequest": {"Item": {"pk": {"S": "a"}, "sk": {"N": str(i)}}}} for i in range(3)]})
    got = client.batch_get_item(RequestItems={"items": {
        "Keys": [{"pk": {"S": "a"}, "sk": {"N": str(i)}} for i in range(4)]}})
    assert len(got["Responses"]["items"]) == 3
    assert got["UnprocessedKeys"] == {}

    client.transact_write_items(TransactItems=[
        {"Put": {"TableName": "items", "Item": {"pk": {"S": "t"}, "sk": {"N": "1"}}}},
        {"Update": {"TableName": "items", "Key": {"pk": {"S": "a"}, "sk": {"N": "0"}},
                    "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"S": "done"}}}},
    ])
    cancelled = error_of(client.transact_write_items, TransactItems=[
        {"Put": {"TableName": "items", "Item": {"pk": {"S": "t"}, "sk": {"N": "2"}}}},
        {"ConditionCheck": {"TableName": "items", "Key": {"pk": {"S": "a"}, "sk": {"N": "1"}},
                            "ConditionExpression": "attribute_exists(v)"}},
    ])
    assert cancelled["Error"]["Code"] == "TransactionCanceledException"
    assert cancelled["Error"]["Message"] == (
        "Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[None, ConditionalCheckFailed]")
    assert [r["Code"] for r in cancelled["CancellationReasons"]] == \
        ["None", "ConditionalCheckFailed"]
    assert "Item" not in client.get_item(TableName="items",
                                         Key={"pk": {"S": "t"}, "sk": {"N": "2"}})
    both = client.transact_get_items(TransactItems=[
        {"Get": {"TableName": "items", "Key": {"pk": {"S": "t"}, "sk": {"N": "1"}}}},
        {"Get": {"TableName": "items", "Key": {"pk": {"S": "a"}, "sk": {"N": "0"}}}},
    ])["Responses"]
    assert both[1]["Item"]["v"] == {"S": "done"}


def read_stream(strato, arn):
    client = streams(strato)
    shards = client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    records = []
    for shard in shards:
        iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        answer = client.get_records(ShardIterator=iterator)
        records += answer["Records"]
    return records


def test_streams_read_directly(strato):
    client = ddb(strato)
    table = make_table(client, ranged=False, stream="NEW_AND_OLD_IMAGES")
    arn = table["LatestStreamArn"]
    client.put_item(TableName="items", Item={"pk": {"S": "k"}, "v": {"N": "1"}})
    client.put_item(TableName="items", Item={"pk": {"S": "k"}, "v": {"N": "2"}})
    client.delete_item(TableName="items", Key={"pk": {"S": "k"}})

    listed = streams(strato).list_streams()["Streams"]
    assert [s["StreamArn"] for s in listed] == [arn]
    described = streams(strato).describe_stream(StreamArn=arn)["StreamDescription"]
    assert described["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert described["TableName"] == "items"
    assert described["StreamStatus"] == "ENABLED"

    records = read_stream(strato, arn)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    first, second, third = records
    assert first["eventSource"] == "aws:dynamodb"
    assert first["awsRegion"] == REGION
    assert first["eventVersion"] == "1.1"
    assert first["dynamodb"]["Keys"] == {"pk": {"S": "k"}}
    assert first["dynamodb"]["NewImage"] == {"pk": {"S": "k"}, "v": {"N": "1"}}
    assert "OldImage" not in first["dynamodb"]
    assert second["dynamodb"]["OldImage"]["v"] == {"N": "1"}
    assert second["dynamodb"]["NewImage"]["v"] == {"N": "2"}
    assert third["dynamodb"]["OldImage"]["v"] == {"N": "2"}
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence == sorted(sequence)

    # AFTER_SEQUENCE_NUMBER starts past the record it names.
    shard = described["Shards"][0]["ShardId"]
    iterator = streams(strato).get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
        SequenceNumber=first["dynamodb"]["SequenceNumber"])["ShardIterator"]
    after = streams(strato).get_records(ShardIterator=iterator)["Records"]
    assert [r["eventName"] for r in after] == ["MODIFY", "REMOVE"]

    missing = error_of(streams(strato).describe_stream,
                       StreamArn=arn.replace("table/items", "table/nope"))
    assert missing["Error"]["Code"] == "ResourceNotFoundException"


def test_keys_only_stream_and_ttl_expiry(strato):
    client = ddb(strato)
    table = make_table(client, ranged=False, stream="KEYS_ONLY")
    client.update_time_to_live(TableName="items", TimeToLiveSpecification={
        "Enabled": True, "AttributeName": "expires"})
    ttl = client.describe_time_to_live(TableName="items")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
    past = str(int(time.time()) - 60)
    client.put_item(TableName="items", Item={"pk": {"S": "old"}, "expires": {"N": past}})
    client.put_item(TableName="items", Item={"pk": {"S": "new"},
                                             "expires": {"N": str(int(time.time()) + 3600)}})

    def expired():
        return "Item" not in client.get_item(TableName="items", Key={"pk": {"S": "old"}},
                                             ConsistentRead=True)
    wait_until(expired, "the expired item to be swept")
    assert "Item" in client.get_item(TableName="items", Key={"pk": {"S": "new"}})
    records = read_stream(strato, table["LatestStreamArn"])
    removes = [r for r in records if r["eventName"] == "REMOVE"]
    assert len(removes) == 1
    assert removes[0]["dynamodb"]["Keys"] == {"pk": {"S": "old"}}
    assert "NewImage" not in removes[0]["dynamodb"]
    assert removes[0]["userIdentity"] == {"Type": "Service",
                                          "PrincipalId": "dynamodb.amazonaws.com"}


def test_accounts_do_not_share_tables(strato):
    client = ddb(strato)
    make_table(client)
    keys = strato.create_account()
    other = boto3.session.Session(
        aws_access_key_id=keys["access_key_id"], aws_secret_access_key=keys["secret_access_key"],
        region_name=REGION).client("dynamodb", endpoint_url=strato.endpoint)
    assert other.list_tables()["TableNames"] == []


@pytest.mark.parametrize("durability", ["fsync", "process-crash"])
def test_acknowledged_writes_survive_kill_9(strato_binary, tmp_path, durability):
    """Both settings of `--durability` keep every answered write through `kill -9` of the server
    (`process-crash` leaves the fsync to the OS: only a power loss could lose it)."""
    args = ("--durability", durability)
    server = _start(strato_binary, tmp_path, args)
    try:
        client = ddb(server)
        make_table(client, ranged=False)
        for i in range(20):
            client.put_item(TableName="items", Item={"pk": {"S": str(i)}})
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    again = _start(strato_binary, tmp_path, args)
    try:
        client = ddb(again)
        scanned = client.scan(TableName="items")
        assert scanned["Count"] == 20
    finally:
        _stop(again.proc)


def test_local_index_and_cli_query(strato):
    client = ddb(strato)
    client.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"},
                   {"AttributeName": "id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                              {"AttributeName": "id", "AttributeType": "S"},
                              {"AttributeName": "total", "AttributeType": "N"}],
        LocalSecondaryIndexes=[{
            "IndexName": "by-total",
            "KeySchema": [{"AttributeName": "customer", "KeyType": "HASH"},
                          {"AttributeName": "total", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }],
        BillingMode="PAY_PER_REQUEST")
    client.get_waiter("table_exists").wait(TableName="orders",
                                           WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    for order, total in [("a", 30), ("b", 10), ("c", 20)]:
        client.put_item(TableName="orders", Item={"customer": {"S": "x"}, "id": {"S": order},
                                                  "total": {"N": str(total)}})
    cheapest = client.query(TableName="orders", IndexName="by-total",
                            KeyConditionExpression="customer = :c",
                            ExpressionAttributeValues={":c": {"S": "x"}})["Items"]
    assert [i["id"]["S"] for i in cheapest] == ["b", "c", "a"]

    old = client.update_item(TableName="orders",
                             Key={"customer": {"S": "x"}, "id": {"S": "a"}},
                             UpdateExpression="SET #t = :t",
                             ExpressionAttributeNames={"#t": "total"},
                             ExpressionAttributeValues={":t": {"N": "5"}},
                             ReturnValues="UPDATED_OLD")["Attributes"]
    assert old == {"total": {"N": "30"}}

    answer = strato.aws("dynamodb", "query", "--table-name", "orders",
                        "--key-condition-expression", "customer = :c",
                        "--expression-attribute-values", '{":c": {"S": "x"}}',
                        "--no-scan-index-forward").check().json()
    assert [i["id"]["S"] for i in answer["Items"]] == ["c", "b", "a"]
