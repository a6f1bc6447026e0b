"""CloudWatch PutMetricData and metric alarms with boto3 and the AWS CLI:
custom metrics read back, an alarm on AWS/Lambda `Errors` that goes to ALARM
after a failing invocation, TreatMissingData, SetAlarmState, history, tags,
AWS's errors, and (once SNS is in the build) an alarm action delivered
through an SNS topic to an SQS queue.

The servers run with `--time-scale 60`: a 60 s period is evaluated every
second. The data window is still real time (one-minute buckets)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, make_zip, wait_until

SCALED = pytest.mark.strato_args("--time-scale", "60")

HANDLER = """
exports.handler = async (event) => {
  if (event.fail) { throw new Error("boom"); }
  return {ok: true};
};
"""


def client(strato, service, **config):
    return boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
    ).client(service, endpoint_url=strato.endpoint,
             config=Config(retries={"max_attempts": 0}, **config))


def cloudwatch(strato, **config):
    return client(strato, "cloudwatch", **config)


def error_of(excinfo):
    err = excinfo.value.response["Error"]
    return err["Code"], err["Message"]


def state(cw, name):
    alarms = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return alarms[0]["StateValue"] if alarms else None


def deploy(strato, name):
    lam = strato.lambda_client()
    lam.create_function(
        FunctionName=name, Runtime="nodejs20.x", Handler="index.handler", Role=ROLE,
        Code={"ZipFile": make_zip({"index.js": HANDLER})},
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return lam


def errors_alarm(cw, name, function, **extra):
    args = dict(
        AlarmName=name, AlarmDescription="errors in " + function,
        Namespace="AWS/Lambda", MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": function}],
        Statistic="Sum", Period=60, EvaluationPeriods=2, DatapointsToAlarm=1,
        Threshold=0.0, ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )
    args.update(extra)
    cw.put_metric_alarm(**args)


def test_put_metric_data_is_read_back(strato):
    cw = cloudwatch(strato)
    now = datetime.now(timezone.utc)
    dims = [{"Name": "Service", "Value": "checkout"}]
    cw.put_metric_data(Namespace="Shop/Orders", MetricData=[
        {"MetricName": "Latency", "Dimensions": dims, "Value": 10.0, "Unit": "Milliseconds",
         "Timestamp": now},
        {"MetricName": "Latency", "Dimensions": dims, "Values": [20.0, 30.0], "Counts": [1, 2],
         "Timestamp": now, "StorageResolution": 60},
        {"MetricName": "Latency", "Dimensions": dims, "Timestamp": now,
         "StatisticValues": {"SampleCount": 2, "Sum": 9.0, "Minimum": 4.0, "Maximum": 5.0}},
        {"MetricName": "Orders", "Value": 1},
    ])
    start, end = now - timedelta(minutes=5), now + timedelta(minutes=5)
    stats = cw.get_metric_statistics(
        Namespace="Shop/Orders", MetricName="Latency", Dimensions=dims,
        StartTime=start, EndTime=end, Period=600,
        Statistics=["Sum", "SampleCount", "Minimum", "Maximum"])
    points = stats["Datapoints"]
    assert stats["Label"] == "Latency"
    assert sum(p["SampleCount"] for p in points) == 6.0
    assert sum(p["Sum"] for p in points) == 10.0 + 20.0 + 60.0 + 9.0
    assert min(p["Minimum"] for p in points) == 4.0
    assert max(p["Maximum"] for p in points) == 30.0

    data = cw.get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=[{
        "Id": "orders", "MetricStat": {"Metric": {"Namespace": "Shop/Orders", "MetricName": "Orders"},
                                       "Period": 600, "Stat": "Sum"}}])
    assert sum(data["MetricDataResults"][0]["Values"]) == 1.0

    listed = cw.list_metrics(Namespace="Shop/Orders")["Metrics"]
    assert sorted((m["MetricName"], len(m["Dimensions"])) for m in listed) == [
        ("Latency", 1), ("Orders", 0)]

    # Past 10 KiB botocore gzips the body (Content-Encoding: gzip).
    cw.put_metric_data(Namespace="Shop/Orders", MetricData=[
        {"MetricName": "Bulk", "Dimensions": dims, "Value": 1.0} for _ in range(600)])
    bulk = cw.get_metric_statistics(
        Namespace="Shop/Orders", MetricName="Bulk", Dimensions=dims,
        StartTime=start, EndTime=end, Period=600, Statistics=["Sum"])
    assert sum(p["Sum"] for p in bulk["Datapoints"]) == 600.0

    # The CLI publishes too.
    strato.aws("cloudwatch", "put-metric-data", "--namespace", "Shop/Orders",
               "--metric-name", "Orders", "--value", "2").check()
    data = cw.get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=[{
        "Id": "orders", "MetricStat": {"Metric": {"Namespace": "Shop/Orders", "MetricName": "Orders"},
                                       "Period": 600, "Stat": "Sum"}}])
    assert sum(data["MetricDataResults"][0]["Values"]) == 3.0


def test_put_metric_data_refuses_what_aws_refuses(strato):
    cw = cloudwatch(strato)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[{"MetricName": "X", "Value": 1}])
    assert error_of(e)[0] == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace="Mine", MetricData=[
            {"MetricName": "X", "Value": 1, "Values": [1.0]}])
    assert error_of(e) == ("InvalidParameterCombination",
                           "The parameters MetricData.member.1.Value and MetricData.member.1.Values "
                           "are mutually exclusive and you have specified both.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace="Mine", MetricData=[
            {"MetricName": "X", "Value": 1,
             "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}])
    assert error_of(e) == ("InvalidParameterCombination",
                           "The parameters MetricData.member.1.Value and MetricData.member.1.StatisticValues "
                           "are mutually exclusive and you have specified both.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace="Mine", MetricData=[
            {"MetricName": "X", "Values": [1.0, 2.0], "Counts": [1.0]}])
    assert error_of(e) == ("InvalidParameterValue",
                           "The parameters MetricData.member.1.Values and MetricData.member.1.Counts "
                           "must be of the same size.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace="Mine", MetricData=[
            {"MetricName": "X", "Value": 1,
             "Dimensions": [{"Name": f"d{i}", "Value": "v"} for i in range(31)]}])
    assert error_of(e)[0] == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace="Mine", MetricData=[{"MetricName": "X", "Value": i} for i in range(1001)])
    assert error_of(e)[0] == "InvalidParameterValue"


@SCALED
def test_an_errors_alarm_goes_to_alarm_after_a_failing_invocation(strato):
    lam = deploy(strato, "flaky")
    lam.invoke(FunctionName="flaky", Payload=b"{}")
    cw = cloudwatch(strato)
    errors_alarm(cw, "flaky-errors", "flaky")
    created = cw.describe_alarms(AlarmNames=["flaky-errors"])["MetricAlarms"][0]
    assert created["StateReason"] in ("Unchecked: Initial alarm creation",) or created["StateValue"] == "OK"
    # Errors were 0: the alarm settles in OK.
    wait_until(lambda: state(cw, "flaky-errors") == "OK", "the alarm to be OK")

    lam.invoke(FunctionName="flaky", Payload=json.dumps({"fail": True}).encode())
    wait_until(lambda: state(cw, "flaky-errors") == "ALARM", "the alarm to go to ALARM")
    alarm = cw.describe_alarms(AlarmNames=["flaky-errors"])["MetricAlarms"][0]
    assert re.fullmatch(
        r"Threshold Crossed: 1 out of the last 2 datapoints \[1\.0 \(\d\d/\d\d/\d\d \d\d:\d\d:\d\d\)\] "
        r"was greater than the threshold \(0\.0\) \(minimum 1 datapoint for OK -> ALARM transition\)\.",
        alarm["StateReason"]), alarm["StateReason"]
    data = json.loads(alarm["StateReasonData"])
    assert data["version"] == "1.0" and data["statistic"] == "Sum" and data["period"] == 60
    assert data["threshold"] == 0.0 and 1.0 in data["recentDatapoints"]
    assert alarm["StateTransitionedTimestamp"] >= alarm["AlarmConfigurationUpdatedTimestamp"]
    assert [a["AlarmName"] for a in cw.describe_alarms(StateValue="ALARM")["MetricAlarms"]] == ["flaky-errors"]
    assert cw.describe_alarms(StateValue="OK")["MetricAlarms"] == []
    for_metric = cw.describe_alarms_for_metric(
        Namespace="AWS/Lambda", MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": "flaky"}])["MetricAlarms"]
    assert [a["AlarmName"] for a in for_metric] == ["flaky-errors"]

    history = cw.describe_alarm_history(AlarmName="flaky-errors", HistoryItemType="StateUpdate")
    summaries = [h["HistorySummary"] for h in history["AlarmHistoryItems"]]
    assert summaries == ["Alarm updated from OK to ALARM", "Alarm updated from INSUFFICIENT_DATA to OK"]
    newest = json.loads(history["AlarmHistoryItems"][0]["HistoryData"])
    assert newest["oldState"]["stateValue"] == "OK"
    assert newest["newState"]["stateValue"] == "ALARM"
    assert newest["newState"]["stateReasonData"]["statistic"] == "Sum"
    config = cw.describe_alarm_history(AlarmName="flaky-errors", HistoryItemType="ConfigurationUpdate")
    assert [h["HistorySummary"] for h in config["AlarmHistoryItems"]] == ['Alarm "flaky-errors" created']


@SCALED
def test_set_alarm_state_holds_until_the_next_evaluation(strato):
    lam = deploy(strato, "healthy")
    lam.invoke(FunctionName="healthy", Payload=b"{}")
    cw = cloudwatch(strato)
    errors_alarm(cw, "healthy-errors", "healthy")
    wait_until(lambda: state(cw, "healthy-errors") == "OK", "the alarm to be OK")
    cw.set_alarm_state(AlarmName="healthy-errors", StateValue="ALARM", StateReason="testing the pager")
    alarm = cw.describe_alarms(AlarmNames=["healthy-errors"])["MetricAlarms"][0]
    assert alarm["StateReason"] in ("testing the pager",) or alarm["StateValue"] == "OK"
    # The metric says otherwise: the next evaluation brings it back.
    wait_until(lambda: state(cw, "healthy-errors") == "OK", "the alarm to be OK again")
    summaries = [h["HistorySummary"] for h in cw.describe_alarm_history(
        AlarmName="healthy-errors", HistoryItemType="StateUpdate",
        ScanBy="TimestampAscending")["AlarmHistoryItems"]]
    assert summaries == ["Alarm updated from INSUFFICIENT_DATA to OK",
                         "Alarm updated from OK to ALARM",
                         "Alarm updated from ALARM to OK"]
    manual = json.loads(cw.describe_alarm_history(
        AlarmName="healthy-errors", HistoryItemType="StateUpdate",
        ScanBy="TimestampAscending")["AlarmHistoryItems"][1]["HistoryData"])
    assert manual["newState"] == {"stateValue": "ALARM", "stateReason": "testing the pager"}

    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.set_alarm_state(AlarmName="healthy-errors", StateValue="INVALID", StateReason="x")
    assert error_of(e) == ("ValidationError",
                           "1 validation error detected: Value 'INVALID' at 'stateValue' failed to satisfy "
                           "constraint: Member must satisfy enum value set: [INSUFFICIENT_DATA, ALARM, OK]")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.set_alarm_state(AlarmName="nobody", StateValue="OK", StateReason="x")
    assert e.value.response["Error"]["Code"] == "ResourceNotFound"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@SCALED
def test_treat_missing_data(strato):
    cw = cloudwatch(strato)
    common = dict(Namespace="Quiet", MetricName="Nothing", Statistic="Average", Period=60,
                  EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold")
    # Created first, so evaluated no later than the others.
    cw.put_metric_alarm(AlarmName="quiet-missing", TreatMissingData="missing", **common)
    cw.put_metric_alarm(AlarmName="quiet-ignore", TreatMissingData="ignore", **common)
    cw.put_metric_alarm(AlarmName="quiet-breaching", TreatMissingData="breaching", **common)
    cw.put_metric_alarm(AlarmName="quiet-fine", TreatMissingData="notBreaching", **common)
    wait_until(lambda: state(cw, "quiet-breaching") == "ALARM", "breaching to alarm")
    wait_until(lambda: state(cw, "quiet-fine") == "OK", "notBreaching to be OK")
    assert state(cw, "quiet-missing") == "INSUFFICIENT_DATA"
    assert state(cw, "quiet-ignore") == "INSUFFICIENT_DATA"
    breaching = cw.describe_alarms(AlarmNames=["quiet-breaching"])["MetricAlarms"][0]
    assert breaching["StateReason"] == (
        "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint "
        "was treated as [Breaching].")
    assert breaching["TreatMissingData"] == "breaching"


def test_describe_alarms_filters_pages_tags_and_deletes(strato):
    cw = cloudwatch(strato)
    topic = f"arn:aws:sns:{REGION}:{DEFAULT_ACCOUNT}:pager"
    for i in range(5):
        cw.put_metric_alarm(
            AlarmName=f"app-{i}", Namespace="App", MetricName="Load", Statistic="Maximum",
            Period=300, EvaluationPeriods=3, DatapointsToAlarm=2, Threshold=float(i),
            ComparisonOperator="LessThanThreshold",
            AlarmActions=[topic] if i % 2 == 0 else [],
            Tags=[{"Key": "team", "Value": "core"}])
    cw.put_metric_alarm(AlarmName="other", Namespace="App", MetricName="Load", ExtendedStatistic="p99",
                        Period=60, EvaluationPeriods=1, Threshold=1.0,
                        ComparisonOperator="LessThanOrEqualToThreshold")
    first = cw.describe_alarms(AlarmNamePrefix="app-", MaxRecords=2)
    assert [a["AlarmName"] for a in first["MetricAlarms"]] == ["app-0", "app-1"]
    assert first["CompositeAlarms"] == []
    rest = cw.describe_alarms(AlarmNamePrefix="app-", MaxRecords=10, NextToken=first["NextToken"])
    assert [a["AlarmName"] for a in rest["MetricAlarms"]] == ["app-2", "app-3", "app-4"]
    assert "NextToken" not in rest
    by_action = cw.describe_alarms(ActionPrefix=topic)["MetricAlarms"]
    assert [a["AlarmName"] for a in by_action] == ["app-0", "app-2", "app-4"]
    alarm = cw.describe_alarms(AlarmNames=["app-3"])["MetricAlarms"][0]
    assert alarm["AlarmArn"] == f"arn:aws:cloudwatch:{REGION}:{DEFAULT_ACCOUNT}:alarm:app-3"
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"],
            alarm["Threshold"], alarm["ActionsEnabled"]) == ("Maximum", 300, 3, 2, 3.0, True)
    assert alarm["StateValue"] == "INSUFFICIENT_DATA"
    assert alarm["StateReason"] == "Unchecked: Initial alarm creation"
    assert alarm["OKActions"] == [] and alarm["InsufficientDataActions"] == []
    assert "TreatMissingData" not in alarm
    other = cw.describe_alarms(AlarmNames=["other"])["MetricAlarms"][0]
    assert other["ExtendedStatistic"] == "p99" and "Statistic" not in other

    cw.disable_alarm_actions(AlarmNames=["app-0"])
    assert cw.describe_alarms(AlarmNames=["app-0"])["MetricAlarms"][0]["ActionsEnabled"] is False
    cw.enable_alarm_actions(AlarmNames=["app-0"])
    assert cw.describe_alarms(AlarmNames=["app-0"])["MetricAlarms"][0]["ActionsEnabled"] is True

    arn = alarm["AlarmArn"]
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "core"}]
    cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "tier", "Value": "1"}, {"Key": "team", "Value": "edge"}])
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [
        {"Key": "team", "Value": "edge"}, {"Key": "tier", "Value": "1"}]
    cw.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "tier", "Value": "1"}]

    # An update keeps the state and the tags.
    cw.put_metric_alarm(AlarmName="app-3", Namespace="App", MetricName="Load", Statistic="Maximum",
                        Period=300, EvaluationPeriods=3, Threshold=9.0, ComparisonOperator="LessThanThreshold")
    assert cw.describe_alarms(AlarmNames=["app-3"])["MetricAlarms"][0]["Threshold"] == 9.0
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "tier", "Value": "1"}]
    updates = cw.describe_alarm_history(AlarmName="app-3", HistoryItemType="ConfigurationUpdate")
    assert [h["HistorySummary"] for h in updates["AlarmHistoryItems"]] == [
        'Alarm "app-3" updated', 'Alarm "app-3" created']

    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.delete_alarms(AlarmNames=["app-1", "missing"])
    assert e.value.response["Error"]["Code"] == "ResourceNotFound"
    cw.delete_alarms(AlarmNames=["app-1", "app-3"])
    left = [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]]
    assert left == ["app-0", "app-2", "app-4", "other"]

    # The CLI reads the same alarms.
    out = strato.aws("cloudwatch", "describe-alarms", "--alarm-names", "app-0").check().json()
    assert out["MetricAlarms"][0]["AlarmName"] == "app-0"
    strato.aws("cloudwatch", "put-metric-alarm", "--alarm-name", "cli", "--namespace", "App",
               "--metric-name", "Load", "--statistic", "Sum", "--period", "60",
               "--evaluation-periods", "1", "--threshold", "5",
               "--comparison-operator", "GreaterThanThreshold").check()
    assert cw.describe_alarms(AlarmNames=["cli"])["MetricAlarms"][0]["Threshold"] == 5.0


def test_put_metric_alarm_refuses_bad_input(strato):
    cw = cloudwatch(strato)
    good = dict(AlarmName="bad", Namespace="App", MetricName="Load", Statistic="Sum", Period=60,
                EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")

    def refused(**change):
        args = dict(good)
        args.update(change)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            cw.put_metric_alarm(**args)
        return error_of(e)

    code, message = refused(ComparisonOperator="BiggerThan")
    assert code == "ValidationError"
    assert message.startswith("1 validation error detected: Value 'BiggerThan' at 'comparisonOperator'")
    assert refused(Period=90)[0] == "InvalidParameterValue"
    assert refused(Period=61)[0] == "InvalidParameterValue"
    assert refused(ComparisonOperator="GreaterThanUpperThreshold")[0] == "InvalidParameterValue"
    assert refused(TreatMissingData="sometimes")[0] == "ValidationError"
    assert refused(DatapointsToAlarm=2)[0] == "ValidationError"
    assert refused(EvaluationPeriods=1441)[0] == "ValidationError"
    assert refused(ExtendedStatistic="p99")[0] == "InvalidParameterCombination"
    assert refused(Metrics=[{"Id": "m1", "Expression": "SUM(METRICS())"}])[0] == "InvalidParameterValue"

    # Missing members: botocore checks them itself unless told not to.
    unchecked = cloudwatch(strato, parameter_validation=False)
    args = dict(good)
    del args["Threshold"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        unchecked.put_metric_alarm(**args)
    assert error_of(e) == ("MissingParameter", "The parameter Threshold is required.")
    args = dict(good)
    del args["EvaluationPeriods"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        unchecked.put_metric_alarm(**args)
    assert error_of(e)[0] == "MissingParameter"
    assert cw.describe_alarms()["MetricAlarms"] == []


@SCALED
def test_alarm_actions_reach_an_sns_topic(strato):
    sns = client(strato, "sns")
    try:
        topic = sns.create_topic(Name="pager")["TopicArn"]
    except botocore.exceptions.ClientError as e:
        if "UnknownOperation" in e.response["Error"]["Code"]:
            pytest.skip("SNS is not in this build yet")
        raise
    sqs = client(strato, "sqs")
    url = sqs.create_queue(QueueName="pager-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    cw = cloudwatch(strato)
    cw.put_metric_alarm(AlarmName="paging", AlarmDescription="wake someone", Namespace="Quiet",
                        MetricName="Heartbeat", Statistic="Sum", Period=60, EvaluationPeriods=1,
                        Threshold=1.0, ComparisonOperator="LessThanThreshold",
                        TreatMissingData="breaching", AlarmActions=[topic])

    def received():
        return sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages")

    messages = wait_until(received, "the alarm notification")
    envelope = json.loads(messages[0]["Body"])
    assert envelope["Subject"] == 'ALARM: "paging" in US East (N. Virginia)'
    notification = json.loads(envelope["Message"])
    assert notification["AlarmName"] == "paging"
    assert notification["AlarmDescription"] == "wake someone"
    assert notification["NewStateValue"] == "ALARM"
    assert notification["OldStateValue"] == "INSUFFICIENT_DATA"
    assert notification["Trigger"]["MetricName"] == "Heartbeat"
    history = cw.describe_alarm_history(AlarmName="paging", HistoryItemType="Action")
    assert history["AlarmHistoryItems"][0]["HistorySummary"] == f"Successfully executed action {topic}"

    # A topic policy that admits neither CloudWatch nor the account refuses
    # the next notification, and the history says so in AWS's words.
    alarm_arn = cw.describe_alarms(AlarmNames=["paging"])["MetricAlarms"][0]["AlarmArn"]
    only_events = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sns:Publish", "Resource": topic}]}
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(only_events))
    cw.set_alarm_state(AlarmName="paging", StateValue="OK", StateReason="checked by hand")
    refused = (f'Failed to execute action {topic}. Received error: "Resource: {alarm_arn} '
               f'is not authorized to perform: SNS:Publish on resource: {topic}"')

    def refusal():
        items = cw.describe_alarm_history(AlarmName="paging", HistoryItemType="Action")["AlarmHistoryItems"]
        return [i for i in items if i["HistorySummary"] == refused]

    wait_until(refusal, "the refused action in the history")
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages") is None
