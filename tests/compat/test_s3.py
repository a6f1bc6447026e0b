"""Amazon S3 through boto3, the AWS CLI (`aws s3 ...`) and curl: buckets,
objects, listings, ranges, conditions, checksums, multipart, versioning,
presigned URLs, virtual-hosted addressing, and bucket notifications to SQS
and to a function (event records version 2.1)."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request
import zlib
import base64

import boto3
import botocore.exceptions
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from conftest import DEFAULT_ACCOUNT, REGION, ROLE, make_zip, wait_until


def s3_client(strato, **config):
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    return session.client(
        "s3", endpoint_url=strato.endpoint,
        config=Config(retries={"max_attempts": 0}, s3={"addressing_style": "path"}, **config))


def sqs_client(strato):
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    return session.client("sqs", endpoint_url=strato.endpoint,
                          config=Config(retries={"max_attempts": 0}))


def error_of(call, *args, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(*args, **kwargs)
    return raised.value.response


def assert_error(response, code: str, status: int, message: str | None = None):
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status, response
    assert response["Error"]["Code"] == code, response
    if message is not None:
        assert response["Error"]["Message"] == message, response


def test_buckets_are_created_listed_in_pages_located_and_deleted(strato):
    s3 = s3_client(strato)
    for name in ("alpha-bucket", "beta-bucket", "gamma-bucket"):
        s3.create_bucket(Bucket=name)
    s3.head_bucket(Bucket="alpha-bucket")
    first = s3.list_buckets(MaxBuckets=2)
    assert [b["Name"] for b in first["Buckets"]] == ["alpha-bucket", "beta-bucket"]
    rest = s3.list_buckets(MaxBuckets=2, ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in rest["Buckets"]] == ["gamma-bucket"]
    assert "ContinuationToken" not in rest
    assert s3.get_bucket_location(Bucket="alpha-bucket")["LocationConstraint"] is None
    assert_error(error_of(s3.create_bucket, Bucket="alpha-bucket"), "BucketAlreadyOwnedByYou", 409)
    assert_error(error_of(s3.create_bucket, Bucket="Bad_Name"), "InvalidBucketName", 400,
                 "The specified bucket is not valid.")
    s3.put_object(Bucket="beta-bucket", Key="k", Body=b"x")
    assert_error(error_of(s3.delete_bucket, Bucket="beta-bucket"), "BucketNotEmpty", 409)
    s3.delete_bucket(Bucket="gamma-bucket")
    assert_error(error_of(s3.head_bucket, Bucket="gamma-bucket"), "404", 404)
    assert_error(error_of(s3.list_objects_v2, Bucket="gamma-bucket"), "NoSuchBucket", 404,
                 "The specified bucket does not exist")


def test_objects_keep_metadata_and_are_copied_and_deleted(strato):
    s3 = s3_client(strato)
    s3.create_bucket(Bucket="objects")
    put = s3.put_object(Bucket="objects", Key="dir/a.txt", Body=b"hello world",
                        ContentType="text/plain", Metadata={"Colour": "blue"})
    assert put["ETag"] == '"5eb63bbbe01eeed093cb22bb8f5acdc3"'
    got = s3.get_object(Bucket="objects", Key="dir/a.txt")
    assert got["Body"].read() == b"hello world"
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"colour": "blue"}
    head = s3.head_object(Bucket="objects", Key="dir/a.txt")
    assert head["ContentLength"] == 11
    s3.copy_object(Bucket="objects", Key="copy.txt", CopySource="objects/dir/a.txt")
    assert s3.get_object(Bucket="objects", Key="copy.txt")["Body"].read() == b"hello world"
    assert s3.head_object(Bucket="objects", Key="copy.txt")["Metadata"] == {"colour": "blue"}
    assert_error(error_of(s3.copy_object, Bucket="objects", Key="copy.txt",
                          CopySource="objects/copy.txt"), "InvalidRequest", 400)
    deleted = s3.delete_objects(Bucket="objects", Delete={"Objects": [
        {"Key": "dir/a.txt"}, {"Key": "copy.txt"}, {"Key": "never-was"}]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["copy.txt", "dir/a.txt", "never-was"]
    assert_error(error_of(s3.get_object, Bucket="objects", Key="dir/a.txt"), "NoSuchKey", 404,
                 "The specified key does not exist.")
    assert_error(error_of(s3.put_object, Bucket="objects", Key="k" * 1025, Body=b""),
                 "KeyTooLongError", 400)


def test_list_objects_v2_groups_pages_and_url_encodes(strato):
    s3 = s3_client(strato)
    s3.create_bucket(Bucket="listing")
    keys = ["a/1", "a/2", "b/x y", "c", "d"]
    for key in keys:
        s3.put_object(Bucket="listing", Key=key, Body=key.encode())
    grouped = s3.list_objects_v2(Bucket="listing", Delimiter="/")
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["a/", "b/"]
    assert [o["Key"] for o in grouped["Contents"]] == ["c", "d"]
    seen = []
    token = None
    while True:
        kwargs = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket="listing", MaxKeys=2, **kwargs)
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == keys
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="listing", Prefix="a/")["Contents"]] == \
        ["a/1", "a/2"]
    # botocore asks for url encoding itself and decodes; asked explicitly,
    # the answer stays encoded.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="listing", Prefix="b/")["Contents"]] == \
        ["b/x y"]
    raw = s3.list_objects_v2(Bucket="listing", Prefix="b/", EncodingType="url")
    assert [o["Key"] for o in raw["Contents"]] == ["b/x%20y"]
    v1 = s3.list_objects(Bucket="listing", Marker="b/x y")
    assert [o["Key"] for o in v1["Contents"]] == ["c", "d"]


def test_ranged_gets_and_conditional_requests(strato):
    s3 = s3_client(strato)
    s3.create_bucket(Bucket="cond")
    etag = s3.put_object(Bucket="cond", Key="k", Body=b"0123456789")["ETag"]
    part = s3.get_object(Bucket="cond", Key="k", Range="bytes=2-4")
    assert part["Body"].read() == b"234"
    assert part["ContentRange"] == "bytes 2-4/10"
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    tail = s3.get_object(Bucket="cond", Key="k", Range="bytes=-3")
    assert tail["Body"].read() == b"789"
    assert_error(error_of(s3.get_object, Bucket="cond", Key="k", Range="bytes=100-200"),
                 "InvalidRange", 416)
    assert_error(error_of(s3.get_object, Bucket="cond", Key="k", IfMatch='"nope"'),
                 "PreconditionFailed", 412)
    assert_error(error_of(s3.get_object, Bucket="cond", Key="k", IfNoneMatch=etag), "304", 304)
    assert s3.get_object(Bucket="cond", Key="k", IfMatch=etag)["Body"].read() == b"0123456789"
    # Conditional writes: create only if absent, replace only if unchanged.
    assert_error(error_of(s3.put_object, Bucket="cond", Key="k", Body=b"new", IfNoneMatch="*"),
                 "PreconditionFailed", 412)
    s3.put_object(Bucket="cond", Key="fresh", Body=b"1", IfNoneMatch="*")
    assert_error(error_of(s3.put_object, Bucket="cond", Key="k", Body=b"new", IfMatch='"nope"'),
                 "PreconditionFailed", 412)
    s3.put_object(Bucket="cond", Key="k", Body=b"new", IfMatch=etag)
    assert s3.get_object(Bucket="cond", Key="k")["Body"].read() == b"new"


def test_checksums_are_verified_stored_and_returned(strato):
    s3 = s3_client(strato)
    s3.create_bucket(Bucket="sums")
    body = b"hello world"
    # boto3's default integrity protection: a CRC32 trailer on aws-chunked.
    put = s3.put_object(Bucket="sums", Key="default", Body=body)
    assert put["ChecksumCRC32"] == "DUoRhQ=="
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    s3.put_object(Bucket="sums", Key="sha", Body=body, ChecksumSHA256=sha)
    got = s3.get_object(Bucket="sums", Key="sha", ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == sha
    assert got["Body"].read() == body
    wrong = base64.b64encode(zlib.crc32(b"other").to_bytes(4, "big")).decode()
    assert_error(error_of(s3.put_object, Bucket="sums", Key="bad", Body=body, ChecksumCRC32=wrong),
                 "BadDigest", 400, "The CRC32 you specified did not match the calculated checksum.")
    assert_error(error_of(s3.head_object, Bucket="sums", Key="bad"), "404", 404)
    # (CRC32C and CRC64NVME need botocore[crt], which the suite does not
    # install; the Rust unit tests cover them.)
    for algorithm in ("SHA1", "SHA256"):
        s3.put_object(Bucket="sums", Key=algorithm, Body=body, ChecksumAlgorithm=algorithm)
        head = s3.head_object(Bucket="sums", Key=algorithm, ChecksumMode="ENABLED")
        assert f"Checksum{algorithm}" in head, head


def test_multipart_uploads_complete_list_and_abort(strato):
    s3 = s3_client(strato)
    s3.create_bucket(Bucket="multi")
    part1 = os.urandom(5 * 1024 * 1024)
    part2 = b"tail"
    upload = s3.create_multipart_upload(Bucket="multi", Key="big.bin")["UploadId"]
    e1 = s3.upload_part(Bucket="multi", Key="big.bin", UploadId=upload, PartNumber=1, Body=part1)["ETag"]
    e2 = s3.upload_part(Bucket="multi", Key="big.bin", UploadId=upload, PartNumber=2, Body=part2)["ETag"]
    listed = s3.list_parts(Bucket="multi", Key="big.bin", UploadId=upload)
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [(1, len(part1)), (2, 4)]
    uploads = s3.list_multipart_uploads(Bucket="multi")["Uploads"]
    assert [u["UploadId"] for u in uploads] == [upload]
    assert_error(error_of(s3.complete_multipart_upload, Bucket="multi", Key="big.bin", UploadId=upload,
                          MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2},
                                                     {"PartNumber": 1, "ETag": e1}]}),
                 "InvalidPartOrder", 400)
    done = s3.complete_multipart_upload(
        Bucket="multi", Key="big.bin", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    digest = hashlib.md5(bytes.fromhex(e1.strip('"')) + bytes.fromhex(e2.strip('"'))).hexdigest()
    assert done["ETag"] == f'"{digest}-2"'
    assert s3.get_object(Bucket="multi", Key="big.bin")["Body"].read() == part1 + part2
    assert s3.list_multipart_uploads(Bucket="multi").get("Uploads", []) == []
    # UploadPartCopy takes a range of an existing object.
    copy = s3.create_multipart_upload(Bucket="multi", Key="copied")["UploadId"]
    c1 = s3.upload_part_copy(Bucket="multi", Key="copied", UploadId=copy, PartNumber=1,
                             CopySource="multi/big.bin",
                             CopySourceRange=f"bytes=0-{len(part1) - 1}")["CopyPartResult"]["ETag"]
    s3.complete_multipart_upload(Bucket="multi", Key="copied", UploadId=copy,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": c1}]})
    assert s3.get_object(Bucket="multi", Key="copied")["Body"].read() == part1
    aborted = s3.create_multipart_upload(Bucket="multi", Key="gone")["UploadId"]
    s3.abort_multipart_upload(Bucket="multi", Key="gone", UploadId=aborted)
    assert_error(error_of(s3.list_parts, Bucket="multi", Key="gone", UploadId=aborted),
                 "NoSuchUpload", 404)


def test_boto3_managed_transfer_uploads_and_downloads_in_parts(strato, tmp_path):
    s3 = s3_client(strato)
    s3.create_bucket(Bucket="transfer")
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(12 * 1024 * 1024))
    config = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * 1024 * 1024,
                                              multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(str(source), "transfer", "file.bin", Config=config)
    back = tmp_path / "back.bin"
    s3.download_file("transfer", "file.bin", str(back), Config=config)
    assert filecmp.cmp(source, back, shallow=False)


def test_versioning_keeps_versions_and_delete_markers(strato):
    s3 = s3_client(strato)
    s3.create_bucket(Bucket="versions")
    s3.put_bucket_versioning(Bucket="versions", VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket="versions")["Status"] == "Enabled"
    v1 = s3.put_object(Bucket="versions", Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket="versions", Key="k", Body=b"two")["VersionId"]
    assert v1 != v2
    assert s3.get_object(Bucket="versions", Key="k")["Body"].read() == b"two"
    assert s3.get_object(Bucket="versions", Key="k", VersionId=v1)["Body"].read() == b"one"
    marker = s3.delete_object(Bucket="versions", Key="k")
    assert marker["DeleteMarker"] is True
    assert_error(error_of(s3.get_object, Bucket="versions", Key="k"), "NoSuchKey", 404)
    listed = s3.list_object_versions(Bucket="versions")
    assert [v["VersionId"] for v in listed["Versions"]] == [v2, v1]
    assert [m["VersionId"] for m in listed["DeleteMarkers"]] == [marker["VersionId"]]
    assert listed["DeleteMarkers"][0]["IsLatest"] is True
    s3.delete_object(Bucket="versions", Key="k", VersionId=marker["VersionId"])
    assert s3.get_object(Bucket="versions", Key="k")["Body"].read() == b"two"


def test_tags_and_bucket_policy_are_stored(strato):
    s3 = s3_client(strato)
    s3.create_bucket(Bucket="tagged")
    s3.put_object(Bucket="tagged", Key="k", Body=b"x", Tagging="team=red&tier=1")
    tags = s3.get_object_tagging(Bucket="tagged", Key="k")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("team", "red"), ("tier", "1")]
    s3.put_object_tagging(Bucket="tagged", Key="k", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    assert s3.get_object_tagging(Bucket="tagged", Key="k")["TagSet"] == [{"Key": "a", "Value": "b"}]
    assert_error(error_of(s3.get_bucket_policy, Bucket="tagged"), "NoSuchBucketPolicy", 404)
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    s3.put_bucket_policy(Bucket="tagged", Policy=policy)
    assert json.loads(s3.get_bucket_policy(Bucket="tagged")["Policy"]) == json.loads(policy)


@pytest.mark.parametrize("signature", ["default", "s3v4"])
def test_presigned_put_by_curl_and_presigned_get(strato, tmp_path, signature):
    s3_client(strato).create_bucket(Bucket="presigned")
    # botocore presigns S3 URLs with AWS's older signature unless told.
    s3 = s3_client(strato) if signature == "default" else s3_client(strato, signature_version="s3v4")
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": "presigned", "Key": "up.txt"}, ExpiresIn=300)
    source = tmp_path / "up.txt"
    source.write_bytes(b"sent by curl")
    answer = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", "-T", str(source), put_url],
        capture_output=True, text=True, check=True).stdout
    assert answer.endswith("\n200"), answer
    get_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "presigned", "Key": "up.txt"}, ExpiresIn=300)
    with urllib.request.urlopen(get_url) as answer:
        assert answer.read() == b"sent by curl"
    tampered = get_url.replace("up.txt", "other.txt")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered)
    assert refused.value.code == 403


def test_virtual_hosted_style_names_the_bucket_in_the_host(strato):
    s3 = s3_client(strato)
    s3.create_bucket(Bucket="vhost")
    s3.put_object(Bucket="vhost", Key="dir/k.txt", Body=b"by host")
    port = strato.endpoint.rsplit(":", 1)[1]
    host = f"vhost.s3.localhost:{port}"
    request = AWSRequest(method="GET", url=f"{strato.endpoint}/dir/k.txt",
                         headers={"Host": host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(Credentials("test", "test"), "s3", REGION).add_auth(request)
    raw = urllib.request.Request(request.url, headers=dict(request.headers.items()))
    with urllib.request.urlopen(raw) as answer:
        assert answer.read() == b"by host"


def test_aws_cli_syncs_a_nested_tree_with_a_large_file_and_back(strato, tmp_path):
    up = tmp_path / "up"
    (up / "a" / "b").mkdir(parents=True)
    (up / "top.txt").write_text("top")
    (up / "a" / "mid.txt").write_text("mid")
    (up / "a" / "b" / "deep.txt").write_text("deep")
    (up / "a" / "b" / "large.bin").write_bytes(os.urandom(20 * 1024 * 1024))
    strato.aws("s3", "mb", "s3://synced").check()
    strato.aws("s3", "sync", str(up), "s3://synced/tree").check()
    listing = strato.aws("s3", "ls", "--recursive", "s3://synced/").check().stdout
    for key in ("tree/top.txt", "tree/a/mid.txt", "tree/a/b/deep.txt", "tree/a/b/large.bin"):
        assert key in listing
    down = tmp_path / "down"
    strato.aws("s3", "sync", "s3://synced/tree", str(down)).check()
    assert filecmp.dircmp(up, down).diff_files == []
    for rel in ("top.txt", "a/mid.txt", "a/b/deep.txt", "a/b/large.bin"):
        assert filecmp.cmp(up / rel, down / rel, shallow=False), rel
    strato.aws("s3", "rm", "--recursive", "s3://synced/tree").check()
    strato.aws("s3", "rb", "s3://synced").check()


def test_notifications_reach_sqs_after_a_test_event_and_honour_the_suffix(strato):
    s3 = s3_client(strato)
    sqs = sqs_client(strato)
    s3.create_bucket(Bucket="notified")
    queue_url = sqs.create_queue(QueueName="s3-events")["QueueUrl"]
    queue_arn = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:s3-events"
    missing = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:no-such-queue"
    assert_error(error_of(s3.put_bucket_notification_configuration, Bucket="notified",
                          NotificationConfiguration={"QueueConfigurations": [
                              {"QueueArn": missing, "Events": ["s3:ObjectCreated:*"]}]}),
                 "InvalidArgument", 400, "Unable to validate the following destination configurations")
    config = {"QueueConfigurations": [{
        "Id": "jpgs", "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".jpg"}]}}}]}
    s3.put_bucket_notification_configuration(Bucket="notified", NotificationConfiguration=config)
    stored = s3.get_bucket_notification_configuration(Bucket="notified")
    assert stored["QueueConfigurations"][0]["QueueArn"] == queue_arn
    s3.put_object(Bucket="notified", Key="notes.txt", Body=b"skip me")
    s3.put_object(Bucket="notified", Key="uploads/a b.jpg", Body=b"jpeg")

    bodies = []

    def received():
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        bodies.extend(json.loads(m["Body"]) for m in got.get("Messages", []))
        return len(bodies) >= 2

    wait_until(received, "the test event and one record")
    assert bodies[0]["Event"] == "s3:TestEvent"
    assert bodies[0]["Bucket"] == "notified"
    record = bodies[1]["Records"][0]
    assert record["eventVersion"] == "2.1"
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["configurationId"] == "jpgs"
    assert record["s3"]["bucket"]["arn"] == "arn:aws:s3:::notified"
    obj = record["s3"]["object"]
    assert obj["key"] == "uploads/a+b.jpg"
    assert obj["size"] == 4
    assert obj["eTag"] == hashlib.md5(b"jpeg").hexdigest()
    assert len(obj["sequencer"]) >= 16
    # Nothing more: the .txt was filtered out.
    extra = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert extra.get("Messages", []) == []


SINK = """
exports.handler = async (event) => {
  console.log(`RECORD ${JSON.stringify(event)}`);
  return "recorded";
};
"""


def test_a_function_is_invoked_with_the_2_1_record_once_its_policy_allows_s3(strato):
    from test_async_invoke import records

    s3 = s3_client(strato)
    client = strato.lambda_client()
    client.create_function(
        FunctionName="on-upload", Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
        Code={"ZipFile": make_zip({"index.js": SINK})}, MemorySize=128, Timeout=10)
    client.get_waiter("function_active_v2").wait(FunctionName="on-upload")
    s3.create_bucket(Bucket="uploads-bucket")
    function_arn = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:on-upload"
    config = {"LambdaFunctionConfigurations": [{
        "Id": "images", "LambdaFunctionArn": function_arn, "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}}}]}
    refused = error_of(s3.put_bucket_notification_configuration, Bucket="uploads-bucket",
                       NotificationConfiguration=config)
    assert_error(refused, "InvalidArgument", 400,
                 "Unable to validate the following destination configurations")
    client.add_permission(FunctionName="on-upload", StatementId="s3", Action="lambda:InvokeFunction",
                          Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::uploads-bucket",
                          SourceAccount=DEFAULT_ACCOUNT)
    s3.put_bucket_notification_configuration(Bucket="uploads-bucket", NotificationConfiguration=config)
    s3.put_object(Bucket="uploads-bucket", Key="elsewhere/b.jpg", Body=b"no")
    s3.put_object(Bucket="uploads-bucket", Key="uploads/a.jpg", Body=b"image")
    got = wait_until(lambda: records(strato, "on-upload"), "the function's record")
    assert len(got) == 1
    record = got[0]["Records"][0]
    assert record["eventVersion"] == "2.1"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["object"]["key"] == "uploads/a.jpg"
    assert record["s3"]["object"]["size"] == 5
    assert record["s3"]["bucket"]["name"] == "uploads-bucket"
