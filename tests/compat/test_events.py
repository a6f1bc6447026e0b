"""EventBridge and EventBridge Scheduler with boto3 and the AWS CLI: scheduled
rules, pattern rules routing PutEvents to Lambda and SQS with an
InputTransformer, the resource-policy check for `events.amazonaws.com`,
TestEventPattern, AWS's validation errors, and a one-time Scheduler schedule
that fires and deletes itself.

The servers here run with `--time-scale 60`, so `rate(1 minute)` fires every
second. Only readiness is waited for (with deadlines); nothing asserts on time.
"""

from __future__ import annotations

import datetime
import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, make_zip, wait_until

SCALED = pytest.mark.strato_args("--time-scale", "60")

SINK = """
exports.handler = async (event) => {
  console.log(`RECORD ${JSON.stringify(event)}`);
  return "recorded";
};
"""


def client(strato, service: str):
    return boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION,
    ).client(service, endpoint_url=strato.endpoint, config=Config(retries={"max_attempts": 0}))


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:{name}"


def deploy(strato, name: str) -> str:
    lam = strato.lambda_client()
    lam.create_function(
        FunctionName=name, Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
        Code={"ZipFile": make_zip({"index.js": SINK})}, MemorySize=128, Timeout=10,
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    return function_arn(name)


def allow_events(strato, name: str, rule_arn: str) -> None:
    strato.lambda_client().add_permission(
        FunctionName=name, StatementId="events", Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com", SourceArn=rule_arn,
    )


def records(strato, function: str) -> list[dict]:
    logs = client(strato, "logs")
    try:
        events = logs.filter_log_events(
            logGroupName=f"/aws/lambda/{function}", filterPattern='"RECORD "')["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    out = []
    for e in events:
        at = e["message"].find("RECORD ")
        if at >= 0:
            out.append(json.loads(e["message"][at + len("RECORD "):].strip()))
    return out


@SCALED
def test_a_rate_rule_invokes_its_function_with_the_scheduled_event(strato):
    events = client(strato, "events")
    target = deploy(strato, "ticker")
    rule_arn = events.put_rule(Name="every-minute", ScheduleExpression="rate(1 minute)")["RuleArn"]
    assert rule_arn == f"arn:aws:events:{REGION}:{DEFAULT_ACCOUNT}:rule/every-minute"
    allow_events(strato, "ticker", rule_arn)
    events.put_targets(Rule="every-minute", Targets=[{"Id": "fn", "Arn": target}])
    got = wait_until(lambda: records(strato, "ticker"), "a scheduled invocation")
    event = got[0]
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time",
                          "region", "resources", "detail"}
    assert event["version"] == "0"
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["account"] == DEFAULT_ACCOUNT
    assert event["region"] == REGION
    assert event["resources"] == [rule_arn]
    assert event["detail"] == {}
    datetime.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")
    described = events.describe_rule(Name="every-minute")
    assert described["ScheduleExpression"] == "rate(1 minute)"
    assert described["State"] == "ENABLED"


def test_a_pattern_rule_routes_put_events_to_lambda_and_sqs_with_an_input_transformer(strato):
    events = client(strato, "events")
    sqs = client(strato, "sqs")
    target = deploy(strato, "orders-fn")
    queue_url = sqs.create_queue(QueueName="orders-q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["shop"], "detail-type": ["order"], "detail": {"total": [{"numeric": [">", 10]}]}}
    rule_arn = events.put_rule(Name="big-orders", EventPattern=json.dumps(pattern))["RuleArn"]
    allow_events(strato, "orders-fn", rule_arn)
    transformer = {
        "InputPathsMap": {"id": "$.detail.id", "total": "$.detail.total"},
        "InputTemplate": '{"order": <id>, "text": "order <id> costs <total>", "total": <total>}',
    }
    answer = events.put_targets(Rule="big-orders", Targets=[
        {"Id": "fn", "Arn": target, "InputTransformer": transformer},
        {"Id": "q", "Arn": queue_arn},
    ])
    assert answer["FailedEntryCount"] == 0
    listed = events.list_targets_by_rule(Rule="big-orders")["Targets"]
    assert {t["Id"] for t in listed} == {"fn", "q"}
    put = events.put_events(Entries=[
        {"Source": "shop", "DetailType": "order", "Detail": json.dumps({"id": "o-1", "total": 25})},
        {"Source": "shop", "DetailType": "order", "Detail": json.dumps({"id": "o-2", "total": 5})},
        {"Source": "shop", "DetailType": "order"},
    ])
    assert put["FailedEntryCount"] == 1
    assert "EventId" in put["Entries"][0] and "EventId" in put["Entries"][1]
    assert put["Entries"][2] == {
        "ErrorCode": "InvalidArgument",
        "ErrorMessage": "Parameter Detail is not valid. Reason: Detail is a required argument.",
    }
    got = wait_until(lambda: records(strato, "orders-fn"), "the transformed event")
    assert got == [{"order": "o-1", "text": "order o-1 costs 25", "total": 25}]

    def received():
        return sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages")

    message = wait_until(received, "the event in the queue")[0]
    body = json.loads(message["Body"])
    assert body["id"] == put["Entries"][0]["EventId"]
    assert body["detail"] == {"id": "o-1", "total": 25}
    assert body["source"] == "shop" and body["detail-type"] == "order"



def test_topic_policy_fifo_group_and_eventbridge_dead_letter_attributes(strato):
    events = client(strato, "events")
    sqs = client(strato, "sqs")
    sns = client(strato, "sns")

    def queue(name, **attributes):
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    dlq_url, dlq_arn = queue("rule-dlq")
    fanned_url, fanned_arn = queue("from-topic")
    fifo_url, fifo_arn = queue("ordered.fifo", FifoQueue="true")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=fanned_arn,
                  Attributes={"RawMessageDelivery": "true"})
    rule_arn = events.put_rule(Name="to-topic", EventPattern='{"source": ["billing"]}')["RuleArn"]
    with pytest.raises(ClientError) as refused:
        events.put_targets(Rule="to-topic", Targets=[{"Id": "fifo", "Arn": fifo_arn}])
    assert refused.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "Parameter(s) SqsParameters must be specified for target: fifo.",
    }
    events.put_targets(Rule="to-topic", Targets=[
        {"Id": "topic", "Arn": topic, "DeadLetterConfig": {"Arn": dlq_arn}},
        {"Id": "fifo", "Arn": fifo_arn, "SqsParameters": {"MessageGroupId": "invoices"}},
    ])
    first = events.put_events(Entries=[
        {"Source": "billing", "DetailType": "invoice", "Detail": '{"n": 1}'}])["Entries"][0]["EventId"]

    def received(url, **kw):
        return lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, **kw).get("Messages")

    # The topic's default policy does not admit events.amazonaws.com: the
    # event goes to the dead-letter queue with EventBridge's attributes.
    dead = wait_until(received(dlq_url, MessageAttributeNames=["All"]), "the dead letter")[0]
    assert json.loads(dead["Body"])["id"] == first
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert set(attributes) == {"RULE_ARN", "TARGET_ARN", "ERROR_CODE", "ERROR_MESSAGE", "RETRY_ATTEMPTS"}
    assert attributes["RULE_ARN"] == rule_arn
    assert attributes["TARGET_ARN"] == topic
    assert attributes["ERROR_CODE"] == "NO_PERMISSIONS"
    assert attributes["RETRY_ATTEMPTS"] == "0"
    ordered = wait_until(received(fifo_url, AttributeNames=["MessageGroupId"]), "the FIFO message")[0]
    assert ordered["Attributes"]["MessageGroupId"] == "invoices"
    assert json.loads(ordered["Body"])["id"] == first
    # Once the topic policy names EventBridge (for this rule), it publishes.
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                       "Action": "sns:Publish", "Resource": topic,
                       "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}],
    }))
    second = events.put_events(Entries=[
        {"Source": "billing", "DetailType": "invoice", "Detail": '{"n": 2}'}])["Entries"][0]["EventId"]
    published = wait_until(received(fanned_url), "the event through the topic")[0]
    assert json.loads(published["Body"])["id"] == second

def test_without_permission_the_function_is_not_invoked_until_add_permission(strato):
    events = client(strato, "events")
    target = deploy(strato, "guarded")
    rule_arn = events.put_rule(Name="guard", EventPattern=json.dumps({"source": ["app"]}))["RuleArn"]
    # No retries: a refused delivery is dropped, not kept for later.
    events.put_targets(Rule="guard", Targets=[
        {"Id": "fn", "Arn": target, "RetryPolicy": {"MaximumRetryAttempts": 0}},
    ])
    entry = {"Source": "app", "DetailType": "t", "Detail": json.dumps({"n": 1})}
    events.put_events(Entries=[entry])
    # A canary rule on the same bus shows when the first event was handled.
    sqs = client(strato, "sqs")
    queue_url = sqs.create_queue(QueueName="canary")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="canary", EventPattern=json.dumps({"source": ["canary"]}))
    events.put_targets(Rule="canary", Targets=[{"Id": "q", "Arn": queue_arn}])
    events.put_events(Entries=[{"Source": "canary", "DetailType": "t", "Detail": "{}"}])
    wait_until(lambda: sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages"),
               "the canary")
    assert records(strato, "guarded") == []
    allow_events(strato, "guarded", rule_arn)
    events.put_events(Entries=[{**entry, "Detail": json.dumps({"n": 2})}])
    got = wait_until(lambda: records(strato, "guarded"), "the permitted invocation")
    assert [r["detail"] for r in got] == [{"n": 2}]


def test_test_event_pattern_matches_as_aws_does(strato):
    events = client(strato, "events")
    event = {
        "id": "1", "account": DEFAULT_ACCOUNT, "source": "shop", "time": "2024-01-01T00:00:00Z",
        "region": REGION, "resources": [], "detail-type": "order",
        "detail": {"total": 25, "state": "paid", "ip": "10.0.0.7"},
    }
    cases = [
        ({"source": ["shop"]}, True),
        ({"source": ["other"]}, False),
        ({"detail": {"total": [{"numeric": [">", 10, "<=", 25]}]}}, True),
        ({"detail": {"state": [{"anything-but": "paid"}]}}, False),
        ({"detail": {"state": [{"prefix": "pa"}]}}, True),
        ({"detail": {"ip": [{"cidr": "10.0.0.0/24"}]}}, True),
        ({"detail": {"missing": [{"exists": False}]}}, True),
        ({"$or": [{"source": ["x"]}, {"detail-type": ["order"]}]}, True),
    ]
    for pattern, expected in cases:
        got = events.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(event))
        assert got["Result"] is expected, pattern
    with pytest.raises(ClientError) as bad:
        events.test_event_pattern(EventPattern=json.dumps({"source": ["x"]}), Event="{}")
    assert bad.value.response["Error"] == {"Code": "ValidationException",
                                           "Message": "Parameter Event is not valid."}


def test_bad_input_gets_aws_errors(strato):
    events = client(strato, "events")
    with pytest.raises(ClientError) as bad:
        events.put_rule(Name="r", EventPattern='{"detail": {"c-count": [{"numeric": 10}]}}')
    assert bad.value.response["Error"]["Code"] == "InvalidEventPatternException"
    assert bad.value.response["Error"]["Message"].startswith(
        "Event pattern is not valid. Reason: Value of numeric must be an array.")
    with pytest.raises(ClientError) as bad:
        events.put_rule(Name="r", ScheduleExpression="rate(1 minutes)")
    assert bad.value.response["Error"] == {"Code": "ValidationException",
                                           "Message": "Parameter ScheduleExpression is not valid."}
    with pytest.raises(ClientError) as bad:
        events.put_rule(Name="r", ScheduleExpression="cron(0 1 * * * *)")
    assert bad.value.response["Error"]["Message"] == "Parameter ScheduleExpression is not valid."
    big = json.dumps({"blob": "x" * (256 * 1024)})
    with pytest.raises(ClientError) as bad:
        events.put_events(Entries=[{"Source": "s", "DetailType": "t", "Detail": big}])
    assert bad.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "Total size of the entries in the request is over the limit."}
    with pytest.raises(ClientError) as bad:
        events.describe_rule(Name="nope")
    assert bad.value.response["Error"] == {
        "Code": "ResourceNotFoundException",
        "Message": "Rule nope does not exist on EventBus default."}
    with pytest.raises(ClientError) as bad:
        events.delete_event_bus(Name="default")
    assert bad.value.response["Error"]["Message"] == "Cannot delete event bus default."
    events.put_rule(Name="has-targets", EventPattern=json.dumps({"source": ["a"]}))
    events.put_targets(Rule="has-targets", Targets=[
        {"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:q"}])
    with pytest.raises(ClientError) as bad:
        events.delete_rule(Name="has-targets")
    assert bad.value.response["Error"]["Message"] == "Rule can't be deleted since it has targets."
    with pytest.raises(ClientError) as bad:
        events.put_targets(Rule="has-targets", Targets=[{
            "Id": "t", "Arn": f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:q",
            "InputTransformer": {"InputTemplate": '{"a": <notdefinedkey>}'}}])
    assert bad.value.response["Error"]["Message"] == (
        "InputTemplate for target t contains invalid placeholder notdefinedkey.")


def test_custom_buses_and_rules_with_the_cli(strato):
    created = strato.aws("events", "create-event-bus", "--name", "orders").check().json()
    bus_arn = f"arn:aws:events:{REGION}:{DEFAULT_ACCOUNT}:event-bus/orders"
    assert created["EventBusArn"] == bus_arn
    again = strato.aws("events", "create-event-bus", "--name", "orders")
    assert again.returncode != 0 and "Event bus orders already exists." in again.stderr
    names = [b["Name"] for b in strato.aws("events", "list-event-buses").check().json()["EventBuses"]]
    assert names == ["default", "orders"]
    rule = strato.aws("events", "put-rule", "--name", "r1", "--event-bus-name", "orders",
                      "--event-pattern", json.dumps({"source": ["a"]})).check().json()
    assert rule["RuleArn"] == f"arn:aws:events:{REGION}:{DEFAULT_ACCOUNT}:rule/orders/r1"
    scheduled = strato.aws("events", "put-rule", "--name", "r2", "--event-bus-name", "orders",
                           "--schedule-expression", "rate(5 minutes)")
    assert "ScheduleExpression is supported only on the default event bus." in scheduled.stderr
    strato.aws("events", "disable-rule", "--name", "r1", "--event-bus-name", "orders").check()
    rules = strato.aws("events", "list-rules", "--event-bus-name", "orders").check().json()["Rules"]
    assert [(r["Name"], r["State"], r["EventBusName"]) for r in rules] == [("r1", "DISABLED", "orders")]
    strato.aws("events", "tag-resource", "--resource-arn", rule["RuleArn"],
               "--tags", "Key=team,Value=shop").check()
    tags = strato.aws("events", "list-tags-for-resource", "--resource-arn",
                      rule["RuleArn"]).check().json()["Tags"]
    assert tags == [{"Key": "team", "Value": "shop"}]
    strato.aws("events", "delete-rule", "--name", "r1", "--event-bus-name", "orders").check()
    strato.aws("events", "delete-event-bus", "--name", "orders").check()
    missing = strato.aws("events", "describe-event-bus", "--name", "orders")
    assert "Event bus orders does not exist." in missing.stderr


def test_a_one_time_schedule_fires_and_deletes_itself(strato):
    scheduler = client(strato, "scheduler")
    target = deploy(strato, "once")
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    expression = f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})"
    arn = scheduler.create_schedule(
        Name="once", ScheduleExpression=expression, FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={"Arn": target, "RoleArn": f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/scheduler",
                "Input": json.dumps({"hello": "scheduler"})},
    )["ScheduleArn"]
    assert arn == f"arn:aws:scheduler:{REGION}:{DEFAULT_ACCOUNT}:schedule/default/once"
    got = scheduler.get_schedule(Name="once")
    assert got["ScheduleExpression"] == expression and got["State"] == "ENABLED"
    assert got["Target"]["Input"] == json.dumps({"hello": "scheduler"})
    assert wait_until(lambda: records(strato, "once"), "the schedule's invocation") == [
        {"hello": "scheduler"}]

    def deleted():
        try:
            scheduler.get_schedule(Name="once")
            return False
        except scheduler.exceptions.ResourceNotFoundException:
            return True

    wait_until(deleted, "the schedule deleting itself")
    assert scheduler.list_schedules()["Schedules"] == []


def test_scheduler_refuses_bad_expressions_and_knows_its_groups(strato):
    scheduler = client(strato, "scheduler")
    for bad in ["rate(10 seconds)", "cron(0 1 * * * *)", "at(2021-12-31)"]:
        with pytest.raises(ClientError) as refused:
            scheduler.create_schedule(
                Name="bad", ScheduleExpression=bad, FlexibleTimeWindow={"Mode": "OFF"},
                Target={"Arn": function_arn("x"), "RoleArn": ROLE})
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert refused.value.response["Error"]["Message"] == f"Invalid Schedule Expression {bad}."
        assert refused.value.response["Message"] == f"Invalid Schedule Expression {bad}."
    group_arn = scheduler.create_schedule_group(Name="team")["ScheduleGroupArn"]
    assert group_arn == f"arn:aws:scheduler:{REGION}:{DEFAULT_ACCOUNT}:schedule-group/team"
    names = [g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]]
    assert names == ["default", "team"]
    scheduler.create_schedule(
        Name="nightly", GroupName="team", ScheduleExpression="cron(0 2 * * ? *)",
        ScheduleExpressionTimezone="Europe/Paris", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": function_arn("x"), "RoleArn": ROLE})
    listed = scheduler.list_schedules(GroupName="team")["Schedules"]
    assert [(s["Name"], s["GroupName"]) for s in listed] == [("nightly", "team")]
    with pytest.raises(scheduler.exceptions.ConflictException):
        scheduler.create_schedule(
            Name="nightly", GroupName="team", ScheduleExpression="rate(1 hour)",
            FlexibleTimeWindow={"Mode": "OFF"}, Target={"Arn": function_arn("x"), "RoleArn": ROLE})
    scheduler.delete_schedule_group(Name="team")
    assert scheduler.list_schedules()["Schedules"] == []


def test_scheduler_tags_its_groups_and_wants_a_fifo_message_group(strato):
    scheduler, apigw = client(strato, "scheduler"), client(strato, "apigateway")
    group = scheduler.create_schedule_group(Name="tagged", Tags=[{"Key": "team", "Value": "a"}])["ScheduleGroupArn"]
    # `/tags/{arn}` is also API Gateway's: the signing service decides.
    scheduler.tag_resource(ResourceArn=group, Tags=[{"Key": "env", "Value": "prod"}])
    listed = scheduler.list_tags_for_resource(ResourceArn=group)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in listed) == [("env", "prod"), ("team", "a")]
    scheduler.untag_resource(ResourceArn=group, TagKeys=["team"])
    assert scheduler.list_tags_for_resource(ResourceArn=group)["Tags"] == [{"Key": "env", "Value": "prod"}]
    api = apigw.create_rest_api(name="still-apigateway")["id"]
    api_arn = f"arn:aws:apigateway:{REGION}::/restapis/{api}"
    apigw.tag_resource(resourceArn=api_arn, tags={"owner": "me"})
    assert apigw.get_tags(resourceArn=api_arn)["tags"] == {"owner": "me"}
    # Schedules take no tags: only schedule group ARNs match the pattern.
    schedule = scheduler.create_schedule(
        Name="hourly", ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": function_arn("x"), "RoleArn": ROLE})["ScheduleArn"]
    with pytest.raises(ClientError) as refused:
        scheduler.tag_resource(ResourceArn=schedule, Tags=[{"Key": "k", "Value": "v"}])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.response["Error"]["Message"].startswith(
        f"1 validation error detected: Value '{schedule}' at 'resourceArn' failed to satisfy constraint")
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.list_tags_for_resource(
            ResourceArn=f"arn:aws:scheduler:{REGION}:{DEFAULT_ACCOUNT}:schedule-group/nope")
    fifo = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:orders.fifo"
    with pytest.raises(ClientError) as refused:
        scheduler.create_schedule(
            Name="to-fifo", ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": fifo, "RoleArn": ROLE})
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.response["Error"]["Message"] == (
        "Target.SqsParameters.MessageGroupId is required for a FIFO queue target.")
    scheduler.create_schedule(
        Name="to-fifo", ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": fifo, "RoleArn": ROLE, "SqsParameters": {"MessageGroupId": "orders"}})


def test_an_async_destination_on_a_bus_emits_the_invocation_result_event(strato):
    events = client(strato, "events")
    sqs = client(strato, "sqs")
    deploy(strato, "worker")
    bus_arn = f"arn:aws:events:{REGION}:{DEFAULT_ACCOUNT}:event-bus/default"
    lam = strato.lambda_client()
    with pytest.raises(ClientError):
        lam.put_function_event_invoke_config(
            FunctionName="worker",
            DestinationConfig={"OnSuccess": {"Destination": bus_arn.replace("default", "nope")}})
    lam.put_function_event_invoke_config(
        FunctionName="worker", DestinationConfig={"OnSuccess": {"Destination": bus_arn}})
    queue_url = sqs.create_queue(QueueName="results")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="results", EventPattern=json.dumps({"source": ["lambda"]}))
    events.put_targets(Rule="results", Targets=[{"Id": "q", "Arn": queue_arn}])
    lam.invoke(FunctionName="worker", InvocationType="Event", Payload=b'{"job": 7}')
    message = wait_until(
        lambda: sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages"),
        "the invocation result event")[0]
    event = json.loads(message["Body"])
    assert event["detail-type"] == "Lambda Function Invocation Result - Success"
    assert event["resources"] == [function_arn("worker") + ":$LATEST"]
    assert event["detail"]["requestPayload"] == {"job": 7}
