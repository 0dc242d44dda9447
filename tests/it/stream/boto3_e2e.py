#!/usr/bin/env python3
"""End-to-end check of edgewise's Kinesis-compatible API with real boto3 (SigV4 signed).

Usage: boto3_e2e.py ENDPOINT ACCESS_KEY_ID SECRET_ACCESS_KEY [configured]

Run by tests/it/stream_boto3.rs against an in-process server whose [stream] has that key
and a configured stream "cfg" with 2 shards, on each backend. With allow_create_streams =
true (the local backend) the script creates and deletes its stream "py-stream" through the
API; with "configured" (the nats backend, whose streams come from the config only)
"py-stream" is configured with 2 shards too and the script checks that the API refuses to
create or delete it. Exits 0 when every check passed; otherwise prints what failed and exits
non-zero. Exit 3: boto3 is missing.
"""

import datetime
import hashlib
import sys
import time

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError as e:  # the Rust side turns this into a clear test failure
    print(f"boto3 is not installed for {sys.executable}: {e} (pip install boto3)", file=sys.stderr)
    sys.exit(3)

ENDPOINT, KEY_ID, SECRET = sys.argv[1:4]
MANAGED = sys.argv[4:5] != ["configured"]
STREAM = "py-stream"
CONFIG = Config(
    retries={"max_attempts": 1, "mode": "standard"},
    connect_timeout=5,
    read_timeout=20,
)


def client(key_id=KEY_ID, secret=SECRET, region="eu-central-1"):
    return boto3.client(
        "kinesis",
        endpoint_url=ENDPOINT,
        region_name=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=CONFIG,
    )


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def expect_error(code, call, *args, **kwargs):
    try:
        result = call(*args, **kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        check(got == code, f"{call.__name__}: expected {code}, got {got}: {e}")
        check(e.response["ResponseMetadata"]["HTTPStatusCode"] == 400,
              f"{call.__name__}: {code} should be HTTP 400: {e.response['ResponseMetadata']}")
        return e.response["Error"].get("Message", "")
    raise AssertionError(f"{call.__name__}: expected {code}, got success {result}")


def md5_hash(key):
    return int.from_bytes(hashlib.md5(key.encode("utf-8")).digest(), "big")


def read_shard(kinesis, shard_id, iterator_type="TRIM_HORIZON", **kwargs):
    iterator = kinesis.get_shard_iterator(
        StreamName=STREAM, ShardId=shard_id, ShardIteratorType=iterator_type, **kwargs
    )["ShardIterator"]
    records = []
    for _ in range(100):
        page = kinesis.get_records(ShardIterator=iterator, Limit=2)
        records.extend(page["Records"])
        iterator = page["NextShardIterator"]
        check(iterator, "an open shard always has a NextShardIterator")
        if page["MillisBehindLatest"] == 0 and not page["Records"]:
            return records
    raise AssertionError(f"{shard_id}: never caught up")


def main():
    kinesis = client()

    # --- create, wait, describe, list
    if MANAGED:
        created = kinesis.create_stream(StreamName=STREAM, ShardCount=2)
        check(created["ResponseMetadata"]["HTTPStatusCode"] == 200, f"create_stream: {created}")
        check(len(created["ResponseMetadata"]["RequestId"]) == 36,
              f"x-amzn-RequestId becomes RequestId: {created['ResponseMetadata']}")
    else:
        expect_error("AccessDeniedException", kinesis.create_stream, StreamName="other", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=STREAM, WaiterConfig={"Delay": 1, "MaxAttempts": 10}
    )
    if MANAGED:
        expect_error("ResourceInUseException", kinesis.create_stream, StreamName=STREAM, ShardCount=1)

    description = kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]
    check(description["StreamStatus"] == "ACTIVE", description)
    check(description["StreamARN"] == f"arn:aws:kinesis:eu-central-1:000000000000:stream/{STREAM}",
          f"the ARN carries the signing region: {description['StreamARN']}")
    check(isinstance(description["StreamCreationTimestamp"], datetime.datetime), description)
    shards = description["Shards"]
    check([s["ShardId"] for s in shards] == ["shardId-000000000000", "shardId-000000000001"], shards)
    check(shards[0]["HashKeyRange"] == {
        "StartingHashKey": "0", "EndingHashKey": "170141183460469231731687303715884105727"}, shards)
    check(shards[1]["HashKeyRange"]["StartingHashKey"] == "170141183460469231731687303715884105728", shards)
    check(description["HasMoreShards"] is False, description)
    limited = kinesis.describe_stream(StreamName=STREAM, Limit=1)["StreamDescription"]
    check(len(limited["Shards"]) == 1 and limited["HasMoreShards"] is True, limited)
    # Vector's healthcheck.
    check(kinesis.describe_stream(StreamName="cfg", Limit=1)["StreamDescription"]["StreamName"] == "cfg",
          "Vector healthcheck")

    summary = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]
    check(summary["OpenShardCount"] == 2 and summary["RetentionPeriodHours"] == 24, summary)

    listed = kinesis.list_streams()
    check(listed["StreamNames"] == ["cfg", STREAM] and listed["HasMoreStreams"] is False, listed)
    page = kinesis.list_streams(Limit=1)
    check(page["StreamNames"] == ["cfg"] and page["HasMoreStreams"] is True, page)
    page = kinesis.list_streams(Limit=1, NextToken=page["NextToken"])
    check(page["StreamNames"] == [STREAM], page)
    names = [n for p in kinesis.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 1})
             for n in p["StreamNames"]]
    check(names == ["cfg", STREAM], f"list_streams paginator: {names}")

    first = kinesis.list_shards(StreamName=STREAM, MaxResults=1)
    check(len(first["Shards"]) == 1 and "NextToken" in first, first)
    second = kinesis.list_shards(NextToken=first["NextToken"], MaxResults=1)
    check([s["ShardId"] for s in second["Shards"]] == ["shardId-000000000001"], second)
    check("NextToken" not in second, second)
    expect_error("InvalidArgumentException", kinesis.list_shards,
                 StreamName=STREAM, NextToken=first["NextToken"])

    # --- put_record / put_records
    boundary = 170141183460469231731687303715884105727
    sent = {}  # shard -> [(seq, key, data)] in put order
    for i in range(12):
        key = f"user-{i}"
        data = f"record {i}".encode() + b"\x00\xff"
        out = kinesis.put_record(StreamName=STREAM, PartitionKey=key, Data=data)
        expected = "shardId-000000000000" if md5_hash(key) <= boundary else "shardId-000000000001"
        check(out["ShardId"] == expected, f"{key}: {out['ShardId']} != {expected}")
        sent.setdefault(out["ShardId"], []).append((out["SequenceNumber"], key, data))
    out = kinesis.put_record(StreamName=STREAM, PartitionKey="x", Data=b"explicit",
                             ExplicitHashKey=str(2**128 - 1))
    check(out["ShardId"] == "shardId-000000000001", out)
    sent["shardId-000000000001"].append((out["SequenceNumber"], "x", b"explicit"))
    expect_error("InvalidArgumentException", kinesis.put_record, StreamName=STREAM,
                 PartitionKey="x", Data=b"", ExplicitHashKey=str(2**128))
    message = expect_error("ValidationException", kinesis.put_record, StreamName=STREAM,
                           PartitionKey="x", Data=b"\x00" * (1024 * 1024 + 1))
    check("Member must have length less than or equal to 1048576" in message, message)
    expect_error("ResourceNotFoundException", kinesis.put_record, StreamName="missing",
                 PartitionKey="x", Data=b"")

    entries = [{"PartitionKey": f"batch-{i}", "Data": f"b{i}".encode()} for i in range(30)]
    out = kinesis.put_records(StreamName=STREAM, Records=entries)
    check(out["FailedRecordCount"] == 0, f"FailedRecordCount is present and 0: {out}")
    check(len(out["Records"]) == 30, out)
    for entry, result in zip(entries, out["Records"]):
        check("ErrorCode" not in result, result)
        expected = ("shardId-000000000000" if md5_hash(entry["PartitionKey"]) <= boundary
                    else "shardId-000000000001")
        check(result["ShardId"] == expected, f"{entry['PartitionKey']}: {result}")
        sent.setdefault(result["ShardId"], []).append(
            (result["SequenceNumber"], entry["PartitionKey"], entry["Data"]))
    too_many = [{"PartitionKey": "k", "Data": b""}] * 501
    expect_error("ValidationException", kinesis.put_records, StreamName=STREAM, Records=too_many)

    # --- get_shard_iterator / get_records
    for shard_id, expected in sent.items():
        got = [(r["SequenceNumber"], r["PartitionKey"], r["Data"]) for r in read_shard(kinesis, shard_id)]
        check(got == expected, f"{shard_id}: read back {got}, sent {expected}")
        numbers = [int(s) for s, _, _ in got]
        check(numbers == sorted(numbers) and len(set(numbers)) == len(numbers),
              f"{shard_id}: sequence numbers increase as integers: {numbers}")
        records = read_shard(kinesis, shard_id)
        arrival = records[0]["ApproximateArrivalTimestamp"]
        check(isinstance(arrival, datetime.datetime), f"arrival is a timestamp: {arrival!r}")
        age = time.time() - arrival.timestamp()
        check(-5 < age < 120, f"arrival {arrival} is recent ({age}s)")
        # AT / AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP.
        second_seq = expected[1][0]
        at = read_shard(kinesis, shard_id, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=second_seq)
        check(at[0]["SequenceNumber"] == second_seq, at[:1])
        after = read_shard(kinesis, shard_id, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=second_seq)
        check(after[0]["SequenceNumber"] == expected[2][0], after[:1])
        since = read_shard(kinesis, shard_id, "AT_TIMESTAMP",
                           Timestamp=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5))
        check(len(since) == len(expected), f"AT_TIMESTAMP 5 minutes ago: {len(since)}")
        check(read_shard(kinesis, shard_id, "LATEST") == [], "LATEST starts after everything")

    latest = kinesis.get_shard_iterator(StreamName=STREAM, ShardId="shardId-000000000000",
                                        ShardIteratorType="LATEST")["ShardIterator"]
    out = kinesis.put_record(StreamName=STREAM, PartitionKey="late", Data=b"late", ExplicitHashKey="1")
    page = kinesis.get_records(ShardIterator=latest)
    check([r["Data"] for r in page["Records"]] == [b"late"], f"LATEST then put: {page['Records']}")
    check(page["MillisBehindLatest"] == 0, page)
    expect_error("InvalidArgumentException", kinesis.get_records, ShardIterator="Zm9yZ2Vk" * 8)
    other_shard_seq = sent["shardId-000000000001"][0][0]
    expect_error("InvalidArgumentException", kinesis.get_shard_iterator, StreamName=STREAM,
                 ShardId="shardId-000000000000", ShardIteratorType="AT_SEQUENCE_NUMBER",
                 StartingSequenceNumber=other_shard_seq)

    # --- retention
    kinesis.increase_stream_retention_period(StreamName=STREAM, RetentionPeriodHours=48)
    hours = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["RetentionPeriodHours"]
    check(hours == 48, f"after increase: {hours}")
    expect_error("InvalidArgumentException", kinesis.increase_stream_retention_period,
                 StreamName=STREAM, RetentionPeriodHours=30)
    kinesis.decrease_stream_retention_period(StreamName=STREAM, RetentionPeriodHours=36)
    hours = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["RetentionPeriodHours"]
    check(hours == 36, f"after decrease: {hours}")
    expect_error("InvalidArgumentException", kinesis.decrease_stream_retention_period,
                 StreamName=STREAM, RetentionPeriodHours=12)

    # --- auth errors
    message = expect_error("InvalidSignatureException", client(secret="wrong-secret-123").list_streams)
    check(message, "InvalidSignatureException has a message")
    expect_error("UnrecognizedClientException", client(key_id="AKIDUNKNOWN").list_streams)
    # Clock skew is not settable through boto3; it is unit-tested in src/stream/api/sigv4.rs.

    # --- delete
    if MANAGED:
        kinesis.delete_stream(StreamName=STREAM)
        expect_error("ResourceNotFoundException", kinesis.describe_stream, StreamName=STREAM)
        kinesis.get_waiter("stream_not_exists").wait(
            StreamName=STREAM, WaiterConfig={"Delay": 1, "MaxAttempts": 5}
        )
        expect_error("ResourceInUseException", kinesis.delete_stream, StreamName="cfg")
        check(kinesis.list_streams()["StreamNames"] == ["cfg"], "only the configured stream is left")
    else:
        expect_error("AccessDeniedException", kinesis.delete_stream, StreamName=STREAM)
        check(kinesis.list_streams()["StreamNames"] == ["cfg", STREAM], "both streams are left")
    print("boto3 e2e: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
