"""CloudWatch metrics (GetMetricData / GetMetricStatistics / ListMetrics over
botocore's smithy-rpc-v2-cbor), `/metrics` for Prometheus, and metering with
`strato cost`, checked against what the invocations' REPORT lines said."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import boto3
import botocore.exceptions
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from prometheus_client.parser import text_string_to_metric_families

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, make_zip, wait_until

HANDLER = """
exports.handler = async (event) => {
  if (event.fail) { throw new Error("boom"); }
  return {ok: true};
};
"""


def cloudwatch(strato):
    return boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
    ).client("cloudwatch", endpoint_url=strato.endpoint, config=Config(retries={"max_attempts": 0}))


def deploy(strato, name, memory=128):
    client = strato.lambda_client()
    client.create_function(
        FunctionName=name, Runtime="nodejs20.x", Handler="index.handler", Role=ROLE,
        MemorySize=memory, Code={"ZipFile": make_zip({"index.js": HANDLER})},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return client


def invoke(client, name, event=None, **extra):
    """Invokes; returns (duration ms, billed ms) from the REPORT line."""
    answer = client.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(),
                           LogType="Tail", **extra)
    tail = base64.b64decode(answer["LogResult"]).decode()
    report = re.search(r"Duration: ([\d.]+) ms\tBilled Duration: (\d+) ms", tail)
    return float(report.group(1)), int(report.group(2))


def window():
    now = datetime.now(timezone.utc)
    return now - timedelta(minutes=30), now + timedelta(minutes=5)


def stat_query(qid, metric, stat, dims):
    return {"Id": qid, "MetricStat": {"Metric": {
        "Namespace": "AWS/Lambda", "MetricName": metric,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]},
        "Period": 3600, "Stat": stat}}


def totals(result):
    return {r["Id"]: sum(r["Values"]) for r in result["MetricDataResults"]}


def test_get_metric_data_counts_what_the_invocations_did(strato):
    client = deploy(strato, "measured")
    reports = [invoke(client, "measured") for _ in range(4)]
    reports += [invoke(client, "measured", {"fail": True}) for _ in range(2)]
    durations = [d for d, _ in reports]

    start, end = window()
    dims = {"FunctionName": "measured"}
    result = cloudwatch(strato).get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=[
        stat_query("invocations", "Invocations", "Sum", dims),
        stat_query("errors", "Errors", "Sum", dims),
        stat_query("samples", "Duration", "SampleCount", dims),
        stat_query("longest", "Duration", "Maximum", dims),
        stat_query("shortest", "Duration", "Minimum", dims),
        stat_query("median", "Duration", "p50", dims),
        stat_query("concurrency", "ConcurrentExecutions", "Maximum", dims),
    ])
    assert all(r["StatusCode"] == "Complete" for r in result["MetricDataResults"])
    got = totals(result)
    assert got["invocations"] == 6
    assert got["errors"] == 2
    assert got["samples"] == 6
    # REPORT prints durations rounded to 0.01 ms.
    assert abs(got["longest"] - max(durations)) <= 0.005 + 1e-9
    assert abs(got["shortest"] - min(durations)) <= 0.005 + 1e-9
    assert min(durations) - 0.005 <= got["median"] <= max(durations) + 0.005
    assert got["concurrency"] == 1
    timestamps = result["MetricDataResults"][0]["Timestamps"]
    assert len(timestamps) == 1 and timestamps[0] <= datetime.now(timezone.utc)


def test_throttles_and_aliases_have_their_own_series(strato):
    client = deploy(strato, "aliased")
    client.publish_version(FunctionName="aliased")
    client.create_alias(FunctionName="aliased", Name="live", FunctionVersion="1")
    invoke(client, "aliased", Qualifier="live")
    invoke(client, "aliased", Qualifier="live")
    invoke(client, "aliased")
    client.put_function_concurrency(FunctionName="aliased", ReservedConcurrentExecutions=0)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.invoke(FunctionName="aliased", Payload=b"{}")
    assert excinfo.value.response["Error"]["Code"] == "TooManyRequestsException"

    start, end = window()
    alias = {"FunctionName": "aliased", "Resource": "aliased:live"}
    result = cloudwatch(strato).get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=[
        stat_query("all", "Invocations", "Sum", {"FunctionName": "aliased"}),
        stat_query("alias", "Invocations", "Sum", alias),
        stat_query("version", "Invocations", "Sum", dict(alias, ExecutedVersion="1")),
        stat_query("throttles", "Throttles", "Sum", {"FunctionName": "aliased"}),
    ])
    assert totals(result) == {"all": 3, "alias": 2, "version": 2, "throttles": 1}

    listed = cloudwatch(strato).list_metrics(Namespace="AWS/Lambda", MetricName="Invocations",
                                             Dimensions=[{"Name": "Resource", "Value": "aliased:live"}])
    shapes = sorted(sorted(d["Name"] for d in m["Dimensions"]) for m in listed["Metrics"])
    assert shapes == [["ExecutedVersion", "FunctionName", "Resource"], ["FunctionName", "Resource"]]


def test_get_metric_statistics_with_the_cli(strato):
    client = deploy(strato, "stats")
    durations = [invoke(client, "stats")[0] for _ in range(3)]
    start, end = window()
    out = strato.aws("cloudwatch", "get-metric-statistics", "--namespace", "AWS/Lambda",
                     "--metric-name", "Duration", "--dimensions", "Name=FunctionName,Value=stats",
                     "--start-time", start.isoformat(), "--end-time", end.isoformat(),
                     "--period", "3600", "--statistics", "SampleCount", "Average", "Maximum",
                     "--extended-statistics", "p99").check().json()
    assert out["Label"] == "Duration"
    [point] = out["Datapoints"]
    assert point["SampleCount"] == 3
    assert point["Unit"] == "Milliseconds"
    assert abs(point["Average"] - sum(durations) / 3) <= 0.005 + 1e-9
    assert abs(point["ExtendedStatistics"]["p99"] - max(durations)) <= 0.005 + 1e-9

    bad = strato.aws("cloudwatch", "get-metric-statistics", "--namespace", "AWS/Lambda",
                     "--metric-name", "Duration", "--start-time", start.isoformat(),
                     "--end-time", end.isoformat(), "--period", "90", "--statistics", "Sum")
    assert bad.returncode != 0 and "InvalidParameterValue" in bad.stderr


def test_prometheus_endpoint_parses(strato):
    client = deploy(strato, "scraped")
    for event in ({}, {}, {"fail": True}):
        invoke(client, "scraped", event)
    # The counters are updated off the invocation path: poll the scrape.
    def scrape():
        with urllib.request.urlopen(f"{strato.endpoint}/metrics") as resp:
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            families = {f.name: f for f in text_string_to_metric_families(resp.read().decode())}
        samples = {s.name: s for f in families.values() for s in f.samples
                   if s.labels.get("function") == "scraped" and "le" not in s.labels}
        if samples.get("strato_lambda_invocations_total", None) is None:
            return None
        if samples["strato_lambda_invocations_total"].value != 3:
            return None
        return families, samples
    families, samples = wait_until(scrape, "the scrape to count 3 invocations")
    assert families["strato_lambda_invocations"].type == "counter"
    assert families["strato_lambda_duration_milliseconds"].type == "histogram"
    assert samples["strato_lambda_errors_total"].value == 1
    assert samples["strato_lambda_duration_milliseconds_count"].value == 3
    assert samples["strato_lambda_invocations_total"].labels == {
        "account": DEFAULT_ACCOUNT, "region": REGION, "function": "scraped", "version": "$LATEST"}


def signed_get(strato, path):
    request = AWSRequest(method="GET", url=f"{strato.endpoint}{path}")
    SigV4Auth(Credentials("test", "test"), "lambda", REGION).add_auth(request)
    prepared = urllib.request.Request(request.url, headers=dict(request.headers), method="GET")
    with urllib.request.urlopen(prepared) as resp:
        return json.loads(resp.read())


def test_cost_matches_a_hand_computation_across_the_free_tier(strato):
    memory = {"small": 128, "medium": 512, "large": 1024}
    calls = {"small": 3, "medium": 2, "large": 1}
    billed = {}
    for name, size in memory.items():
        client = deploy(strato, name, size)
        billed[name] = sum(invoke(client, name)[1] for _ in range(calls[name]))
    gb_seconds = {n: billed[n] / 1000 * memory[n] / 1024 for n in memory}
    total_gbs = sum(gb_seconds.values())
    month = time.strftime("%Y-%m", time.gmtime())

    def cost_report(*extra):
        proc = subprocess.run(
            [str(strato.binary), "cost", "--data-dir", str(strato.data_dir), "--month", month, *extra],
            capture_output=True, text=True, env=strato.env, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    # Metering reaches the disk within a second of each invocation.
    wait_until(lambda: json.loads(cost_report("--format", "json"))["Requests"] == 6,
               "metering of 6 requests")

    # Prices chosen for readable arithmetic: 1 USD per request, 1000 USD per
    # GB-second; a free tier of 4 requests and half the GB-seconds used.
    prices = {"usd_per_million_requests": 1_000_000, "usd_per_gb_second": 1000,
              "free_requests_per_month": 4, "free_gb_seconds_per_month": total_gbs / 2}
    (strato.data_dir / "prices.json").write_text(json.dumps(prices))
    report = json.loads(cost_report("--format", "json"))
    assert report["AccountId"] == DEFAULT_ACCOUNT and report["Month"] == month
    rows = {f["FunctionName"]: f for f in report["Functions"]}
    for name in memory:
        assert rows[name]["Requests"] == calls[name]
        assert rows[name]["MemorySize"] == memory[name]
        assert rows[name]["BilledDurationMs"] == billed[name]
        assert rows[name]["GbSeconds"] == pytest.approx(gb_seconds[name], rel=1e-12)
        assert rows[name]["CostUsd"] == pytest.approx(calls[name] + 1000 * gb_seconds[name], rel=1e-12)
    assert report["FreeTierRequestsUsed"] == 4
    assert report["BillableRequests"] == 2
    assert report["FreeTierGbSecondsUsed"] == pytest.approx(total_gbs / 2, rel=1e-12)
    assert report["TotalCostUsd"] == pytest.approx(2 + 1000 * total_gbs / 2, rel=1e-9)

    # Exactly at the free tier's boundary nothing is owed; one request over, one request's price.
    prices.update(free_requests_per_month=6, free_gb_seconds_per_month=total_gbs * (1 + 1e-12))
    (strato.data_dir / "prices.json").write_text(json.dumps(prices))
    assert json.loads(cost_report("--format", "json"))["TotalCostUsd"] == 0
    prices.update(free_requests_per_month=5)
    (strato.data_dir / "prices.json").write_text(json.dumps(prices))
    assert json.loads(cost_report("--format", "json"))["TotalCostUsd"] == pytest.approx(1.0)

    csv_lines = cost_report("--format", "csv").splitlines()
    assert csv_lines[0].startswith("account_id,month,function_name,")
    assert len(csv_lines) == 1 + 3 + 1
    assert "Free tier used: 5 requests" in cost_report("--format", "table")

    # The same report over HTTP for the signing account, priced by the server's
    # table (AWS's defaults: the free tier covers all of it).
    served = signed_get(strato, f"/strato/cost?month={month}")
    assert served["Requests"] == 6
    assert served["GbSeconds"] == pytest.approx(total_gbs, rel=1e-12)
    assert served["TotalCostUsd"] == 0
    assert served["Prices"]["usd_per_gb_second"] == 0.0000166667


def test_cloudwatch_speaks_aws_json_1_0_too(strato):
    """The other protocol CloudWatch's model lists (`json`): same operations, JSON bodies."""
    client = deploy(strato, "jsonwire")
    invoke(client, "jsonwire")
    now = time.time()
    body = json.dumps({
        "StartTime": now - 1800, "EndTime": now + 300,
        "MetricDataQueries": [stat_query("n", "Invocations", "Sum", {"FunctionName": "jsonwire"})],
    })
    request = AWSRequest(method="POST", url=f"{strato.endpoint}/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "GraniteServiceVersion20100801.GetMetricData",
    })
    SigV4Auth(Credentials("test", "test"), "monitoring", REGION).add_auth(request)
    prepared = urllib.request.Request(request.url, data=body.encode(), headers=dict(request.headers),
                                      method="POST")
    with urllib.request.urlopen(prepared) as resp:
        assert resp.headers["Content-Type"] == "application/x-amz-json-1.0"
        answer = json.loads(resp.read())
    [result] = answer["MetricDataResults"]
    assert result["Id"] == "n" and sum(result["Values"]) == 1
    assert all(isinstance(t, (int, float)) for t in result["Timestamps"])


def test_cloudwatch_speaks_the_query_protocol_too(strato):
    """Older CloudWatch clients send `Action=` forms and read XML."""
    import urllib.parse
    import xml.etree.ElementTree as ET

    client = deploy(strato, "querywire")
    durations = [invoke(client, "querywire")[0] for _ in range(2)]
    start, end = window()
    form = urllib.parse.urlencode({
        "Action": "GetMetricStatistics", "Version": "2010-08-01",
        "Namespace": "AWS/Lambda", "MetricName": "Duration",
        "Dimensions.member.1.Name": "FunctionName", "Dimensions.member.1.Value": "querywire",
        "StartTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "EndTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Period": "3600", "Statistics.member.1": "SampleCount", "ExtendedStatistics.member.1": "p100",
    })

    def post(body):
        request = AWSRequest(method="POST", url=f"{strato.endpoint}/", data=body, headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        SigV4Auth(Credentials("test", "test"), "monitoring", REGION).add_auth(request)
        prepared = urllib.request.Request(request.url, data=body.encode(),
                                          headers=dict(request.headers), method="POST")
        try:
            with urllib.request.urlopen(prepared) as resp:
                return resp.status, ET.fromstring(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, ET.fromstring(e.read())

    ns = {"cw": "http://monitoring.amazonaws.com/doc/2010-08-01/"}
    status, root = post(form)
    assert status == 200
    assert root.tag == "{http://monitoring.amazonaws.com/doc/2010-08-01/}GetMetricStatisticsResponse"
    [point] = root.findall("cw:GetMetricStatisticsResult/cw:Datapoints/cw:member", ns)
    assert float(point.find("cw:SampleCount", ns).text) == 2
    entry = point.find("cw:ExtendedStatistics/cw:entry", ns)
    assert entry.find("cw:key", ns).text == "p100"
    assert abs(float(entry.find("cw:value", ns).text) - max(durations)) <= 0.005 + 1e-9
    assert root.find("cw:ResponseMetadata/cw:RequestId", ns).text

    status, root = post(form.replace("Period=3600", "Period=90"))
    assert status == 400
    assert root.find("cw:Error/cw:Code", ns).text == "InvalidParameterValue"
    assert root.find("cw:Error/cw:Type", ns).text == "Sender"


def test_http_api_requests_are_counted_in_aws_apigateway(strato):
    deploy(strato, "behindapi")
    arn = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:behindapi"
    api_id = strato.aws("apigatewayv2", "create-api", "--name", "counted", "--protocol-type", "HTTP",
                        "--target", arn).check().json()["ApiId"]

    def call():
        try:
            with urllib.request.urlopen(f"{strato.endpoint}/_strato/execute-api/{api_id}/x") as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    # Without the permission the gateway answers 500; with it, 200.
    assert call() == 500
    strato.lambda_client().add_permission(
        FunctionName="behindapi", StatementId="apigw", Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{REGION}:{DEFAULT_ACCOUNT}:{api_id}/*")
    assert [call(), call()] == [200, 200]

    start, end = window()

    def query(qid, metric, stat, dims):
        return {"Id": qid, "MetricStat": {"Metric": {
            "Namespace": "AWS/ApiGateway", "MetricName": metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]},
            "Period": 3600, "Stat": stat}}

    api = {"ApiId": api_id}
    route = {"ApiId": api_id, "Stage": "$default", "Route": "$default"}
    result = cloudwatch(strato).get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=[
        query("count", "Count", "Sum", api),
        query("errors5", "5XXError", "Sum", api),
        query("errors4", "4XXError", "Sum", api),
        query("latency", "Latency", "SampleCount", {"ApiId": api_id, "Stage": "$default"}),
        query("integration", "IntegrationLatency", "SampleCount", route),
        query("routed", "Count", "Sum", route),
    ])
    got = totals(result)
    assert got["count"] == 3 and got["routed"] == 3
    assert got["errors5"] == 1 and got["errors4"] == 0
    assert got["latency"] == 3
    assert got["integration"] >= 2


def test_provisioned_concurrency_utilization(strato):
    client = deploy(strato, "provisioned")
    client.publish_version(FunctionName="provisioned")
    client.create_alias(FunctionName="provisioned", Name="warm", FunctionVersion="1")
    client.put_provisioned_concurrency_config(FunctionName="provisioned", Qualifier="warm",
                                              ProvisionedConcurrentExecutions=2)
    wait_until(lambda: client.get_provisioned_concurrency_config(
        FunctionName="provisioned", Qualifier="warm")["Status"] == "READY",
        "provisioned concurrency READY", deadline_seconds=90)
    for _ in range(3):
        invoke(client, "provisioned", Qualifier="warm")
    invoke(client, "provisioned")  # $LATEST: not provisioned

    start, end = window()
    warm = {"FunctionName": "provisioned", "Resource": "provisioned:warm"}
    result = cloudwatch(strato).get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=[
        stat_query("served", "ProvisionedConcurrencyInvocations", "Sum", warm),
        stat_query("utilization", "ProvisionedConcurrencyUtilization", "Maximum", warm),
        stat_query("executions", "ProvisionedConcurrentExecutions", "Maximum", warm),
    ])
    # One at a time: one of the two provisioned executions in use.
    assert totals(result) == {"served": 3, "utilization": 0.5, "executions": 1}
