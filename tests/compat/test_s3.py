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
    (up / "a" / "b" / "large.bin").write_bytes(os.urandom(100 * 1024 * 1024))
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


# ---- One server for the tests below (module-scoped: each start costs CI time).

@pytest.fixture(scope="module")
def shared(strato_binary):
    import shutil
    import tempfile
    from pathlib import Path

    from conftest import _start, _stop

    root = Path(tempfile.mkdtemp(prefix="strato-compat-s3-"))
    server = _start(strato_binary, root)
    try:
        yield server
    finally:
        _stop(server.proc)
        shutil.rmtree(root, ignore_errors=True)


def client_of(strato, service):
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    return session.client(service, endpoint_url=strato.endpoint,
                          config=Config(retries={"max_attempts": 0}))


def code_sha(zip_bytes: bytes) -> str:
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


def test_functions_and_layers_take_their_code_from_s3_objects_and_versions(shared, tmp_path):
    s3 = s3_client(shared)
    client = shared.lambda_client()
    s3.create_bucket(Bucket="code-bucket")
    s3.put_bucket_versioning(Bucket="code-bucket", VersioningConfiguration={"Status": "Enabled"})
    v1 = make_zip({"index.js": 'exports.handler = async () => "v1";\n'})
    v2 = make_zip({"index.js": 'exports.handler = async () => "v2";\n'})
    first = s3.put_object(Bucket="code-bucket", Key="fn.zip", Body=v1)["VersionId"]
    s3.put_object(Bucket="code-bucket", Key="fn.zip", Body=v2)
    made = client.create_function(
        FunctionName="from-s3", Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
        Code={"S3Bucket": "code-bucket", "S3Key": "fn.zip", "S3ObjectVersion": first})
    assert made["CodeSha256"] == code_sha(v1)
    assert made["CodeSize"] == len(v1)
    client.get_waiter("function_active_v2").wait(FunctionName="from-s3")
    answer = client.invoke(FunctionName="from-s3", Payload=b"{}")
    assert json.loads(answer["Payload"].read()) == "v1"
    # The AWS CLI's shorthand, latest version.
    updated = json.loads(shared.aws(
        "lambda", "update-function-code", "--function-name", "from-s3",
        "--s3-bucket", "code-bucket", "--s3-key", "fn.zip").check().stdout)
    assert updated["CodeSha256"] == code_sha(v2)
    cli = json.loads(shared.aws(
        "lambda", "create-function", "--function-name", "from-s3-cli", "--runtime", "nodejs20.x",
        "--role", ROLE, "--handler", "index.handler",
        "--code", f"S3Bucket=code-bucket,S3Key=fn.zip,S3ObjectVersion={first}").check().stdout)
    assert cli["CodeSha256"] == code_sha(v1)
    layer = client.publish_layer_version(
        LayerName="from-s3", Content={"S3Bucket": "code-bucket", "S3Key": "fn.zip"})
    assert layer["Content"]["CodeSha256"] == code_sha(v2)

    def refused(code, message):
        response = error_of(client.create_function, FunctionName="nope", Runtime="nodejs20.x",
                            Role=ROLE, Handler="index.handler", Code=code)
        assert_error(response, "InvalidParameterValueException", 400, message)

    refused({"S3Bucket": "no-such-code-bucket", "S3Key": "fn.zip"},
            "Error occurred while GetObject. S3 Error Code: NoSuchBucket. "
            "S3 Error Message: The specified bucket does not exist")
    refused({"S3Bucket": "code-bucket", "S3Key": "missing.zip"},
            "Error occurred while GetObject. S3 Error Code: NoSuchKey. "
            "S3 Error Message: The specified key does not exist.")
    refused({"S3Bucket": "code-bucket", "S3Key": "fn.zip", "S3ObjectVersion": "0" * 32},
            "Error occurred while GetObject. S3 Error Code: NoSuchVersion. "
            "S3 Error Message: The specified version does not exist.")


def test_code_zips_over_50_mb_are_taken_from_s3_up_to_the_unzipped_limit(shared, tmp_path):
    import zipfile

    s3 = s3_client(shared)
    client = shared.lambda_client()
    s3.create_bucket(Bucket="big-code")
    # ~60 MB that does not compress: over the 50 MB limit of a direct upload.
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("index.js", 'const fs = require("fs");\n'
                    'exports.handler = async () => fs.statSync(__dirname + "/blob.bin").size;\n')
        zf.writestr("blob.bin", os.urandom(60 * 1024 * 1024))
    data = big.read_bytes()
    assert len(data) > 52_428_800
    s3.put_object(Bucket="big-code", Key="big.zip", Body=data)
    made = client.create_function(
        FunctionName="big-from-s3", Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
        Code={"S3Bucket": "big-code", "S3Key": "big.zip"})
    assert made["CodeSize"] == len(data)
    assert made["CodeSha256"] == code_sha(data)
    client.get_waiter("function_active_v2").wait(FunctionName="big-from-s3")
    answer = client.invoke(FunctionName="big-from-s3", Payload=b"{}")
    assert json.loads(answer["Payload"].read()) == 60 * 1024 * 1024

    # Over 250 MB unzipped (deflated zeros: small to send) is refused from S3 too.
    huge = tmp_path / "huge.zip"
    with zipfile.ZipFile(huge, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("zeros.bin", "w", force_zip64=True) as entry:
            chunk = bytes(1024 * 1024)
            for _ in range(251):
                entry.write(chunk)
    s3.upload_file(str(huge), "big-code", "huge.zip")
    response = error_of(client.update_function_code, FunctionName="big-from-s3",
                        S3Bucket="big-code", S3Key="huge.zip")
    assert_error(response, "InvalidParameterValueException", 400,
                 "Unzipped size must be smaller than 262144000 bytes")


def test_overlapping_notification_rules_are_refused(shared):
    s3 = s3_client(shared)
    sqs = sqs_client(shared)
    s3.create_bucket(Bucket="overlaps")
    sqs.create_queue(QueueName="overlap-q")
    arn = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:overlap-q"

    def put(*configs):
        return s3.put_bucket_notification_configuration(
            Bucket="overlaps", NotificationConfiguration={"QueueConfigurations": list(configs)})

    def rule(events, prefix=None):
        config = {"QueueArn": arn, "Events": events}
        if prefix is not None:
            config["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}
        return config

    assert_error(error_of(put, rule(["s3:ObjectCreated:*"]), rule(["s3:ObjectCreated:Put"])),
                 "InvalidArgument", 400,
                 "Configurations overlap. Configurations on the same bucket cannot share a common event type.")
    assert_error(error_of(put, rule(["s3:ObjectCreated:*"], "a/"), rule(["s3:ObjectCreated:Put"], "a/b")),
                 "InvalidArgument", 400,
                 "Configuration is ambiguously defined. Cannot have overlapping suffixes in two rules "
                 "if the prefixes are overlapping for the same event type.")
    put(rule(["s3:ObjectCreated:*"], "a/"), rule(["s3:ObjectCreated:*"], "b/"),
        rule(["s3:ObjectRemoved:*"]))
    # The extra members AWS puts in the error, as boto3 reads them.
    bad = error_of(s3.put_bucket_notification_configuration, Bucket="overlaps",
                   NotificationConfiguration={"QueueConfigurations": [
                       {"QueueArn": "invalid-queue", "Events": ["s3:ObjectCreated:*"]}]})
    assert bad["Error"]["ArgumentName"] == "Queue"
    assert bad["Error"]["ArgumentValue"] == "invalid-queue"


def test_errors_carry_the_members_aws_adds(shared):
    s3 = s3_client(shared)
    s3.create_bucket(Bucket="members")
    missing = error_of(s3.get_object, Bucket="no-such-members", Key="k")["Error"]
    assert missing["BucketName"] == "no-such-members"
    key = error_of(s3.get_object, Bucket="members", Key="a key")["Error"]
    assert (key["Code"], key["Key"]) == ("NoSuchKey", "a key")
    s3.put_object(Bucket="members", Key="k", Body=b"x")
    failed = error_of(s3.put_object, Bucket="members", Key="k", Body=b"y", IfMatch='"nope"')
    assert_error(failed, "PreconditionFailed", 412)
    assert failed["Error"]["Condition"] == "If-Match"
    assert error_of(s3.delete_bucket, Bucket="members")["Error"]["BucketName"] == "members"
    upload = error_of(s3.abort_multipart_upload, Bucket="members", Key="k", UploadId="fakeid")
    assert upload["Error"]["UploadId"] == "fakeid"


def test_sns_destinations_reach_a_subscribed_queue(shared):
    s3 = s3_client(shared)
    sqs = sqs_client(shared)
    sns = client_of(shared, "sns")
    topic = sns.create_topic(Name="s3-topic")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="s3-topic-q")["QueueUrl"]
    sns.subscribe(TopicArn=topic, Protocol="sqs",
                  Endpoint=f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:s3-topic-q")
    s3.create_bucket(Bucket="topical")
    configuration = {
        "TopicConfigurations": [{"Id": "t", "TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]}
    # As on AWS, a topic's default policy does not let S3 publish: the
    # configuration is refused until the topic policy allows it.
    refused = error_of(s3.put_bucket_notification_configuration, Bucket="topical",
                       NotificationConfiguration=configuration)
    assert_error(refused, "InvalidArgument", 400)
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
                       "Action": "SNS:Publish", "Resource": topic,
                       "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::topical"}}}]}))
    s3.put_bucket_notification_configuration(Bucket="topical",
                                             NotificationConfiguration=configuration)
    s3.put_object(Bucket="topical", Key="doc.txt", Body=b"doc")
    messages = []

    def received():
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages.extend(json.loads(m["Body"]) for m in got.get("Messages", []))
        return len(messages) >= 2

    wait_until(received, "the test event and the record through SNS")
    assert all(m["Type"] == "Notification" and m["TopicArn"] == topic for m in messages)
    test, record = (json.loads(m["Message"]) for m in messages)
    assert test["Event"] == "s3:TestEvent" and test["Bucket"] == "topical"
    record = record["Records"][0]
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["configurationId"] == "t"
    assert record["s3"]["object"]["key"] == "doc.txt"


def test_eventbridge_gets_object_created_and_deleted_events(shared):
    s3 = s3_client(shared)
    sqs = sqs_client(shared)
    events = client_of(shared, "events")
    queue_url = sqs.create_queue(QueueName="s3-bus")["QueueUrl"]
    events.put_rule(Name="s3-objects", EventPattern=json.dumps(
        {"source": ["aws.s3"], "detail": {"bucket": {"name": ["bridged"]}}}))
    events.put_targets(Rule="s3-objects", Targets=[
        {"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT}:s3-bus"}])
    s3.create_bucket(Bucket="bridged")
    s3.create_bucket(Bucket="not-bridged")
    s3.put_object(Bucket="bridged", Key="before", Body=b"not yet enabled")
    s3.put_bucket_notification_configuration(
        Bucket="bridged", NotificationConfiguration={"EventBridgeConfiguration": {}})
    stored = s3.get_bucket_notification_configuration(Bucket="bridged")
    assert stored["EventBridgeConfiguration"] == {}
    s3.put_object(Bucket="not-bridged", Key="k", Body=b"never")
    s3.put_object(Bucket="bridged", Key="dir/a b.txt", Body=b"hello")
    s3.delete_object(Bucket="bridged", Key="dir/a b.txt")
    got = []

    def received():
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        got.extend(json.loads(m["Body"]) for m in answer.get("Messages", []))
        return len(got) >= 2

    wait_until(received, "both S3 events on the bus")
    created, deleted = got
    assert (created["source"], created["detail-type"]) == ("aws.s3", "Object Created")
    assert created["resources"] == ["arn:aws:s3:::bridged"]
    assert created["account"] == DEFAULT_ACCOUNT and created["region"] == REGION
    detail = created["detail"]
    assert detail["bucket"] == {"name": "bridged"}
    assert detail["object"]["key"] == "dir/a b.txt"
    assert detail["object"]["size"] == 5
    assert detail["object"]["etag"] == hashlib.md5(b"hello").hexdigest()
    assert detail["reason"] == "PutObject"
    assert deleted["detail-type"] == "Object Deleted"
    assert deleted["detail"]["reason"] == "DeleteObject"
    assert deleted["detail"]["deletion-type"] == "Permanently Deleted"
    extra = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert extra.get("Messages", []) == []


def raw_request(strato, method, path, headers=None):
    request = urllib.request.Request(f"{strato.endpoint}{path}", method=method,
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_cors_is_configured_validated_and_answers_preflights(shared):
    s3 = s3_client(shared)
    s3.create_bucket(Bucket="browser")
    assert_error(error_of(s3.get_bucket_cors, Bucket="browser"), "NoSuchCORSConfiguration", 404,
                 "The CORS configuration does not exist")
    assert_error(error_of(s3.put_bucket_cors, Bucket="browser", CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["*"], "AllowedMethods": ["MYMETHOD"]}]}),
        "InvalidRequest", 400,
        "Found unsupported HTTP method in CORS config. Unsupported method is MYMETHOD")
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT"}
    status, _, body = raw_request(shared, "OPTIONS", "/browser/k", preflight)
    assert status == 403 and b"<Code>CORSResponse</Code>" in body
    rules = [{"AllowedOrigins": ["https://*.example.com"], "AllowedMethods": ["GET", "PUT"],
              "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag"],
              "MaxAgeSeconds": 300}]
    s3.put_bucket_cors(Bucket="browser", CORSConfiguration={"CORSRules": rules})
    assert s3.get_bucket_cors(Bucket="browser")["CORSRules"] == rules
    status, headers, _ = raw_request(shared, "OPTIONS", "/browser/k", {
        **preflight, "Access-Control-Request-Headers": "content-type,x-amz-date"})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert headers["Access-Control-Allow-Methods"] == "GET, PUT"
    assert headers["Access-Control-Allow-Headers"] == "content-type,x-amz-date"
    assert headers["Access-Control-Max-Age"] == "300"
    assert "Origin" in headers["Vary"]
    status, _, body = raw_request(shared, "OPTIONS", "/browser/k", {
        "Origin": "https://evil.org", "Access-Control-Request-Method": "GET"})
    assert status == 403
    assert b"<Code>AccessForbidden</Code>" in body
    assert b"CORSResponse: This CORS request is not allowed." in body
    # An actual request from an allowed origin: a presigned GET, as a browser sends it.
    s3.put_object(Bucket="browser", Key="k", Body=b"cors")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "browser", "Key": "k"})
    request = urllib.request.Request(url, headers={"Origin": "https://app.example.com"})
    with urllib.request.urlopen(request) as answer:
        assert answer.read() == b"cors"
        assert answer.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        assert answer.headers["Access-Control-Expose-Headers"] == "ETag"
    s3.delete_bucket_cors(Bucket="browser")
    assert_error(error_of(s3.get_bucket_cors, Bucket="browser"), "NoSuchCORSConfiguration", 404)


def test_multipart_objects_carry_composite_and_full_object_checksums(shared):
    s3 = s3_client(shared)
    s3.create_bucket(Bucket="sums")
    parts_data = [os.urandom(5 * 1024 * 1024), b"tail"]

    def upload(key, **checksum_type):
        created = s3.create_multipart_upload(Bucket="sums", Key=key, ChecksumAlgorithm="CRC32",
                                             **checksum_type)
        parts = []
        for number, data in enumerate(parts_data, start=1):
            answer = s3.upload_part(Bucket="sums", Key=key, UploadId=created["UploadId"],
                                    PartNumber=number, Body=data, ChecksumAlgorithm="CRC32")
            parts.append({"PartNumber": number, "ETag": answer["ETag"],
                          "ChecksumCRC32": answer["ChecksumCRC32"]})
        return created, s3.complete_multipart_upload(
            Bucket="sums", Key=key, UploadId=created["UploadId"], MultipartUpload={"Parts": parts})

    def crc32(data):
        return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()

    created, done = upload("composite")
    assert created["ChecksumType"] == "COMPOSITE"
    joined = b"".join(base64.b64decode(crc32(d)) for d in parts_data)
    assert done["ChecksumCRC32"] == f"{crc32(joined)}-2"
    assert done["ChecksumType"] == "COMPOSITE"
    created, done = upload("full", ChecksumType="FULL_OBJECT")
    assert done["ChecksumCRC32"] == crc32(b"".join(parts_data))
    assert done["ChecksumType"] == "FULL_OBJECT"
    # boto3 checks a full-object checksum against the body it reads.
    got = s3.get_object(Bucket="sums", Key="full", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == done["ChecksumCRC32"]
    assert got["Body"].read() == b"".join(parts_data)
    assert_error(error_of(s3.create_multipart_upload, Bucket="sums", Key="x",
                          ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT"),
                 "InvalidRequest", 400,
                 "The FULL_OBJECT checksum type cannot be used with the sha256 checksum algorithm.")


def test_completion_needs_and_checks_each_parts_checksum(shared):
    s3 = s3_client(shared)
    s3.create_bucket(Bucket="partsums")
    data = [os.urandom(5 * 1024 * 1024), b"tail"]
    created = s3.create_multipart_upload(Bucket="partsums", Key="k", ChecksumAlgorithm="SHA256")
    upload = created["UploadId"]
    # A part of a SHA-256 upload is refused another algorithm...
    assert_error(error_of(s3.upload_part, Bucket="partsums", Key="k", UploadId=upload,
                          PartNumber=1, Body=b"x", ChecksumAlgorithm="CRC32"),
                 "InvalidRequest", 400,
                 "Checksum Type mismatch occurred, expected checksum Type: sha256, "
                 "actual checksum Type: crc32")
    parts = []
    for number, body in enumerate(data, start=1):
        answer = s3.upload_part(Bucket="partsums", Key="k", UploadId=upload, PartNumber=number,
                                Body=body, ChecksumAlgorithm="SHA256")
        assert answer["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
        parts.append({"PartNumber": number, "ETag": answer["ETag"],
                      "ChecksumSHA256": answer["ChecksumSHA256"]})

    def complete(given, **extra):
        return s3.complete_multipart_upload(Bucket="partsums", Key="k", UploadId=upload,
                                            MultipartUpload={"Parts": given}, **extra)

    missing = [parts[0], {"PartNumber": 2, "ETag": parts[1]["ETag"]}]
    assert_error(error_of(complete, missing), "InvalidRequest", 400,
                 "The upload was created using a sha256 checksum. The complete request must "
                 "include the checksum for each part. It was missing for part 2 in the request.")
    wrong = [parts[0], {**parts[1], "ChecksumSHA256": parts[0]["ChecksumSHA256"]}]
    refused = error_of(complete, wrong)
    assert_error(refused, "InvalidPart", 400)
    assert refused["Error"]["UploadId"] == upload
    assert refused["Error"]["PartNumber"] == "2"
    assert refused["Error"]["ETag"] == parts[1]["ETag"].strip('"')
    assert_error(error_of(complete, parts, ChecksumType="FULL_OBJECT"), "InvalidRequest", 400,
                 "The upload was created using the COMPOSITE checksum mode. The complete "
                 "request must use the same checksum mode.")
    done = complete(parts)
    joined = b"".join(base64.b64decode(p["ChecksumSHA256"]) for p in parts)
    assert done["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(joined).digest()).decode() + "-2"

    # FULL_OBJECT: parts' checksums are optional; the whole object's, when stated, must match.
    full = s3.create_multipart_upload(Bucket="partsums", Key="f", ChecksumAlgorithm="CRC32",
                                      ChecksumType="FULL_OBJECT")["UploadId"]
    only = s3.upload_part(Bucket="partsums", Key="f", UploadId=full, PartNumber=1, Body=b"whole",
                          ChecksumAlgorithm="CRC32")["ETag"]
    given = [{"PartNumber": 1, "ETag": only}]
    assert_error(error_of(s3.complete_multipart_upload, Bucket="partsums", Key="f", UploadId=full,
                          MultipartUpload={"Parts": given}, ChecksumType="FULL_OBJECT",
                          ChecksumCRC32="AAAAAA=="),
                 "BadDigest", 400, "The crc32 you specified did not match the calculated checksum.")
    head = s3.head_object(Bucket="partsums", Key="k", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == done["ChecksumSHA256"]
    done = s3.complete_multipart_upload(Bucket="partsums", Key="f", UploadId=full,
                                        MultipartUpload={"Parts": given}, ChecksumType="FULL_OBJECT")
    assert done["ChecksumType"] == "FULL_OBJECT"
    got = s3.get_object(Bucket="partsums", Key="f", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == base64.b64encode(zlib.crc32(b"whole").to_bytes(4, "big")).decode()
    assert got["Body"].read() == b"whole"


def test_multipart_range_delete_marker_and_key_errors_carry_aws_members(shared):
    """Read from the raw XML: botocore keeps unknown members, but the test
    checks the body itself so the element names are the ones on the wire."""
    import xml.etree.ElementTree as ET

    s3 = s3_client(shared)
    s3.create_bucket(Bucket="members2")
    bodies = []
    s3.meta.events.register("after-call.s3",
                            lambda http_response, **_: bodies.append(http_response.content))

    def members(call, **kwargs):
        error_of(call, **kwargs)
        root = ET.fromstring(bodies[-1])
        return {child.tag: child.text for child in root if child.tag != "RequestId"}

    upload = s3.create_multipart_upload(Bucket="members2", Key="m")["UploadId"]
    e1 = s3.upload_part(Bucket="members2", Key="m", UploadId=upload, PartNumber=1,
                        Body=b"tiny")["ETag"]
    e2 = s3.upload_part(Bucket="members2", Key="m", UploadId=upload, PartNumber=2,
                        Body=b"tail")["ETag"]
    small = members(s3.complete_multipart_upload, Bucket="members2", Key="m", UploadId=upload,
                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                               {"PartNumber": 2, "ETag": e2}]})
    assert small == {"Code": "EntityTooSmall",
                     "Message": "Your proposed upload is smaller than the minimum allowed size",
                     "ProposedSize": "4", "MinSizeAllowed": "5242880", "PartNumber": "1",
                     "ETag": e1.strip('"')}
    order = members(s3.complete_multipart_upload, Bucket="members2", Key="m", UploadId=upload,
                    MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2},
                                               {"PartNumber": 1, "ETag": e1}]})
    assert (order["Code"], order["UploadId"]) == ("InvalidPartOrder", upload)
    bad_etag = '"0123456789abcdef0123456789abcdef"'
    part = members(s3.complete_multipart_upload, Bucket="members2", Key="m", UploadId=upload,
                   MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": bad_etag}]})
    assert (part["Code"], part["UploadId"], part["PartNumber"], part["ETag"]) == (
        "InvalidPart", upload, "1", bad_etag.strip('"'))
    s3.put_object(Bucket="members2", Key="r", Body=b"0123456789")
    ranged = members(s3.get_object, Bucket="members2", Key="r", Range="bytes=100-200")
    assert (ranged["Code"], ranged["RangeRequested"], ranged["ActualObjectSize"]) == (
        "InvalidRange", "bytes=100-200", "10")
    long_key = members(s3.put_object, Bucket="members2", Key="k" * 1025, Body=b"x")
    assert (long_key["Code"], long_key["Size"], long_key["MaxSizeAllowed"]) == (
        "KeyTooLongError", "1025", "1024")
    s3.put_bucket_versioning(Bucket="members2", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="members2", Key="v", Body=b"x")
    marker = s3.delete_object(Bucket="members2", Key="v")["VersionId"]
    refused = members(s3.get_object_tagging, Bucket="members2", Key="v", VersionId=marker)
    assert (refused["Code"], refused["Method"], refused["ResourceType"]) == (
        "MethodNotAllowed", "GET", "DeleteMarker")
