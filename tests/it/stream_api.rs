//! The Kinesis-compatible stream API over the raw protocol: every operation, its errors in
//! AWS's shapes and words, JSON 1.1 and CBOR 1.1, NDJSON ingest, HTTPS and /metrics.
//!
//! Not covered here: the refusal of non-loopback clients when no access keys are configured
//! needs a client address outside 127.0.0.0/8, which these tests do not use (the check
//! itself is unit-tested in `src/stream/api/service.rs`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::stream_harness::*;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A server with a configured stream `s2` of 2 shards and API management on (on the local
/// backend; NATS takes its streams from the config only).
async fn two_shards(backend: Backend) -> Streams {
    Streams::start_on(backend, &with_stream("s2", 2)).await
}

const S0: &str = "shardId-000000000000";
const S1: &str = "shardId-000000000001";

/// (start, end) hash keys of each shard, from DescribeStream.
async fn hash_ranges(streams: &Streams, name: &str) -> Vec<(String, u128, u128)> {
    let out = streams
        .ok("DescribeStream", json!({ "StreamName": name }))
        .await;
    out["StreamDescription"]["Shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let range = &s["HashKeyRange"];
            (
                s["ShardId"].as_str().unwrap().to_owned(),
                seq(range["StartingHashKey"].as_str().unwrap()),
                seq(range["EndingHashKey"].as_str().unwrap()),
            )
        })
        .collect()
}

// ------------------------------------------------------------------ CreateStream / DeleteStream

#[tokio::test]
async fn stream_create_and_delete_are_refused_unless_enabled() {
    let streams = Streams::start(&config(
        "",
        "[[stream.streams]]\nname = \"fixed\"\nshards = 1\n",
    ))
    .await;
    let message = streams
        .err(
            "CreateStream",
            json!({"StreamName": "new", "ShardCount": 1}),
            "AccessDeniedException",
        )
        .await;
    assert!(message.contains("allow_create_streams"), "{message}");
    streams
        .err(
            "DeleteStream",
            json!({"StreamName": "fixed"}),
            "AccessDeniedException",
        )
        .await;
    // Nothing was created; the configured stream still works.
    streams
        .err(
            "DescribeStream",
            json!({"StreamName": "new"}),
            "ResourceNotFoundException",
        )
        .await;
    streams.put("fixed", "k", b"x").await;
}

#[tokio::test]
async fn stream_create_validates_and_refuses_duplicates() {
    let streams = two_shards(Backend::Local).await;
    let response = streams
        .raw(
            "CreateStream",
            JSON,
            json!({"StreamName": "made", "ShardCount": 3}).to_string(),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.body.is_empty(), "CreateStream has no output");
    assert_eq!(response.header("content-length"), Some("0"));
    assert_eq!(response.header("content-type"), Some(JSON));

    let message = streams
        .err(
            "CreateStream",
            json!({"StreamName": "made", "ShardCount": 1}),
            "ResourceInUseException",
        )
        .await;
    assert_eq!(
        message,
        "Stream made under account 000000000000 already exists."
    );
    streams
        .err(
            "CreateStream",
            json!({"StreamName": "s2", "ShardCount": 2}),
            "ResourceInUseException",
        )
        .await;
    for bad in ["bad name", "ümlaut", "", "a/b", &"x".repeat(129)] {
        streams
            .err(
                "CreateStream",
                json!({"StreamName": bad, "ShardCount": 1}),
                "ValidationException",
            )
            .await;
    }
    let message = streams
        .err(
            "CreateStream",
            json!({"StreamName": "zero", "ShardCount": 0}),
            "ValidationException",
        )
        .await;
    assert!(
        message.contains("Member must have value greater than or equal to 1"),
        "{message}"
    );
    let message = streams
        .err(
            "CreateStream",
            json!({"StreamName": "huge", "ShardCount": 257}),
            "LimitExceededException",
        )
        .await;
    assert!(message.contains("256"), "{message}");
    streams
        .ok(
            "CreateStream",
            json!({"StreamName": "max", "ShardCount": 256}),
        )
        .await;
    streams
        .err(
            "CreateStream",
            json!({"StreamName": "noshards"}),
            "InvalidArgumentException",
        )
        .await;
    streams
        .err(
            "CreateStream",
            json!({"ShardCount": 1}),
            "ValidationException",
        )
        .await;
    // ON_DEMAND without a count: Kinesis's four shards.
    streams
        .ok(
            "CreateStream",
            json!({"StreamName": "od", "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}),
        )
        .await;
    assert_eq!(hash_ranges(&streams, "od").await.len(), 4);
    streams
        .err(
            "CreateStream",
            json!({"StreamName": "mode", "ShardCount": 1, "StreamModeDetails": {"StreamMode": "FAST"}}),
            "ValidationException",
        )
        .await;
    for name in ["huge", "zero", "mode"] {
        streams
            .err(
                "DescribeStream",
                json!({ "StreamName": name }),
                "ResourceNotFoundException",
            )
            .await;
    }
    assert_eq!(hash_ranges(&streams, "made").await.len(), 3);
}

#[tokio::test]
async fn stream_created_streams_persist_and_deleted_ones_stay_deleted_across_restart() {
    let streams = two_shards(Backend::Local).await;
    streams.create("made", 3).await;
    streams.create("doomed", 1).await;
    let (shard, sequence) = streams.put("made", "key", b"kept").await;
    // An API change to a configured stream's retention survives a restart too (the config's
    // value did not change).
    streams
        .ok(
            "IncreaseStreamRetentionPeriod",
            json!({"StreamName": "s2", "RetentionPeriodHours": 36}),
        )
        .await;
    streams
        .ok(
            "IncreaseStreamRetentionPeriod",
            json!({"StreamName": "made", "RetentionPeriodHours": 72}),
        )
        .await;
    let created = streams
        .ok("DescribeStreamSummary", json!({"StreamName": "made"}))
        .await["StreamDescriptionSummary"]["StreamCreationTimestamp"]
        .clone();

    let streams = streams.restart().await;
    let summary = streams
        .ok("DescribeStreamSummary", json!({"StreamName": "made"}))
        .await;
    let summary = &summary["StreamDescriptionSummary"];
    assert_eq!(summary["OpenShardCount"], 3);
    assert_eq!(summary["RetentionPeriodHours"], 72);
    assert_eq!(summary["StreamCreationTimestamp"], created);
    let configured = streams
        .ok("DescribeStreamSummary", json!({"StreamName": "s2"}))
        .await;
    assert_eq!(
        configured["StreamDescriptionSummary"]["RetentionPeriodHours"],
        36
    );
    let records = streams.read_all("made", &shard).await;
    assert_eq!(records, vec![(sequence, "key".into(), b"kept".to_vec())]);

    streams
        .ok("DeleteStream", json!({"StreamName": "doomed"}))
        .await;
    let streams = streams.restart().await;
    streams
        .err(
            "DescribeStream",
            json!({"StreamName": "doomed"}),
            "ResourceNotFoundException",
        )
        .await;
    let names = streams.ok("ListStreams", json!({})).await["StreamNames"].clone();
    assert_eq!(names, json!(["made", "s2"]));
    // The name is free again.
    streams.create("doomed", 2).await;
}

#[tokio::test]
async fn stream_delete_refuses_configured_streams_and_removes_created_ones() {
    let streams = two_shards(Backend::Local).await;
    let message = streams
        .err(
            "DeleteStream",
            json!({"StreamName": "s2"}),
            "ResourceInUseException",
        )
        .await;
    assert!(message.contains("configured"), "{message}");
    streams
        .err(
            "DeleteStream",
            json!({"StreamName": "nope"}),
            "ResourceNotFoundException",
        )
        .await;
    streams.create("temp", 1).await;
    streams.put("temp", "k", b"v").await;
    let response = streams
        .raw(
            "DeleteStream",
            JSON,
            json!({"StreamName": "temp"}).to_string(),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.body.is_empty());
    for op in ["DescribeStream", "DescribeStreamSummary", "ListShards"] {
        let message = streams
            .err(
                op,
                json!({"StreamName": "temp"}),
                "ResourceNotFoundException",
            )
            .await;
        assert_eq!(message, "Stream temp under account 000000000000 not found.");
    }
    streams
        .err(
            "PutRecord",
            json!({"StreamName": "temp", "PartitionKey": "k", "Data": ""}),
            "ResourceNotFoundException",
        )
        .await;
    let listed = streams.ok("ListStreams", json!({})).await;
    assert_eq!(listed["StreamNames"], json!(["s2"]));
}

// ------------------------------------------------------------------ Describe / List

async fn stream_describe_gives_exact_hash_ranges_and_pages_shards(backend: Backend) {
    let streams = two_shards(backend).await;
    let out = streams
        .ok("DescribeStream", json!({"StreamName": "s2"}))
        .await;
    let d = &out["StreamDescription"];
    assert_eq!(d["StreamName"], "s2");
    assert_eq!(
        d["StreamARN"],
        "arn:aws:kinesis:us-east-1:000000000000:stream/s2"
    );
    assert_eq!(d["StreamStatus"], "ACTIVE");
    assert_eq!(d["HasMoreShards"], false);
    assert_eq!(d["RetentionPeriodHours"], 24);
    assert_eq!(d["StreamModeDetails"]["StreamMode"], "PROVISIONED");
    assert!(d["EnhancedMonitoring"].is_array());
    let created = d["StreamCreationTimestamp"]
        .as_f64()
        .expect("epoch seconds");
    let now = now_ms() as f64 / 1000.0;
    assert!(created <= now && created > now - 60.0, "{created} vs {now}");
    let shards = d["Shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    assert_eq!(shards[0]["ShardId"], S0);
    assert_eq!(shards[1]["ShardId"], S1);
    assert_eq!(
        shards[0]["HashKeyRange"],
        json!({"StartingHashKey": "0", "EndingHashKey": HALF_END})
    );
    assert_eq!(
        shards[1]["HashKeyRange"],
        json!({"StartingHashKey": HALF_START, "EndingHashKey": MAX_HASH})
    );
    for shard in shards {
        let start = shard["SequenceNumberRange"]["StartingSequenceNumber"]
            .as_str()
            .expect("a starting sequence number");
        assert!(seq(start) > 0);
        assert!(
            shard["SequenceNumberRange"]
                .get("EndingSequenceNumber")
                .is_none(),
            "open shards have no end"
        );
    }
    // The first record of a shard is at or after its StartingSequenceNumber.
    let (_, first) = streams.put_explicit("s2", "0").await;
    let start0 = shards[0]["SequenceNumberRange"]["StartingSequenceNumber"]
        .as_str()
        .unwrap();
    assert!(seq(&first) >= seq(start0));

    // Paging: Limit, HasMoreShards, ExclusiveStartShardId.
    let page = streams
        .ok("DescribeStream", json!({"StreamName": "s2", "Limit": 1}))
        .await;
    assert_eq!(page["StreamDescription"]["HasMoreShards"], true);
    assert_eq!(page["StreamDescription"]["Shards"][0]["ShardId"], S0);
    assert_eq!(
        page["StreamDescription"]["Shards"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let page = streams
        .ok(
            "DescribeStream",
            json!({"StreamName": "s2", "Limit": 1, "ExclusiveStartShardId": S0}),
        )
        .await;
    assert_eq!(page["StreamDescription"]["HasMoreShards"], false);
    assert_eq!(page["StreamDescription"]["Shards"][0]["ShardId"], S1);
    assert_eq!(
        page["StreamDescription"]["Shards"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let page = streams
        .ok(
            "DescribeStream",
            json!({"StreamName": "s2", "ExclusiveStartShardId": S1}),
        )
        .await;
    assert_eq!(page["StreamDescription"]["Shards"], json!([]));
    assert_eq!(page["StreamDescription"]["HasMoreShards"], false);

    for limit in [0, 10_001] {
        streams
            .err(
                "DescribeStream",
                json!({"StreamName": "s2", "Limit": limit}),
                "ValidationException",
            )
            .await;
    }
    // StreamARN instead of StreamName.
    let by_arn = streams
        .ok(
            "DescribeStream",
            json!({"StreamARN": "arn:aws:kinesis:eu-west-1:000000000000:stream/s2"}),
        )
        .await;
    assert_eq!(by_arn["StreamDescription"]["StreamName"], "s2");
    streams
        .err("DescribeStream", json!({}), "InvalidArgumentException")
        .await;
}

#[tokio::test]
async fn stream_hash_ranges_of_four_shards_tile_the_key_space() {
    let streams = two_shards(Backend::Local).await;
    streams.create("four", 4).await;
    let ranges = hash_ranges(&streams, "four").await;
    let step = u128::MAX / 4 + 1; // floor(2^128 / 4)
    for (i, (id, start, end)) in ranges.iter().enumerate() {
        assert_eq!(id, &format!("shardId-{i:012}"));
        assert_eq!(*start, i as u128 * step);
        let expected_end = if i == 3 {
            u128::MAX
        } else {
            (i as u128 + 1) * step - 1
        };
        assert_eq!(*end, expected_end);
    }
}

async fn stream_describe_summary(backend: Backend) {
    let streams = two_shards(backend).await;
    let out = streams
        .ok("DescribeStreamSummary", json!({"StreamName": "s2"}))
        .await;
    let s = &out["StreamDescriptionSummary"];
    assert_eq!(s["StreamName"], "s2");
    assert_eq!(s["StreamStatus"], "ACTIVE");
    assert_eq!(s["OpenShardCount"], 2);
    assert_eq!(s["RetentionPeriodHours"], 24);
    assert_eq!(s["ConsumerCount"], 0);
    assert!(s["StreamARN"].as_str().unwrap().ends_with(":stream/s2"));
    assert!(s["StreamCreationTimestamp"].is_number());
    assert!(s["EnhancedMonitoring"].is_array());
    streams
        .err(
            "DescribeStreamSummary",
            json!({"StreamName": "gone"}),
            "ResourceNotFoundException",
        )
        .await;
}

#[tokio::test]
async fn stream_list_streams_pages_with_next_token() {
    let streams = two_shards(Backend::Local).await;
    for name in ["a", "b", "c"] {
        streams.create(name, 1).await;
    }
    let all = streams.ok("ListStreams", json!({})).await;
    assert_eq!(all["StreamNames"], json!(["a", "b", "c", "s2"]));
    assert_eq!(all["HasMoreStreams"], false);
    assert!(all.get("NextToken").is_none());
    assert_eq!(all["StreamSummaries"].as_array().unwrap().len(), 4);
    assert_eq!(all["StreamSummaries"][0]["StreamName"], "a");
    assert_eq!(all["StreamSummaries"][0]["StreamStatus"], "ACTIVE");

    let first = streams.ok("ListStreams", json!({"Limit": 3})).await;
    assert_eq!(first["StreamNames"], json!(["a", "b", "c"]));
    assert_eq!(first["HasMoreStreams"], true);
    let token = first["NextToken"].as_str().expect("a NextToken").to_owned();
    let second = streams
        .ok("ListStreams", json!({"Limit": 3, "NextToken": token}))
        .await;
    assert_eq!(second["StreamNames"], json!(["s2"]));
    assert_eq!(second["HasMoreStreams"], false);
    assert!(second.get("NextToken").is_none());

    let after = streams
        .ok(
            "ListStreams",
            json!({"ExclusiveStartStreamName": "b", "Limit": 1}),
        )
        .await;
    assert_eq!(after["StreamNames"], json!(["c"]));
    assert_eq!(after["HasMoreStreams"], true);

    // A tampered token, a made-up one, and a token of another kind (a shard iterator).
    let mut tampered = token.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let iterator = streams.iterator("s2", S0, "LATEST", json!({})).await;
    for bad in [tampered.as_str(), "bm90LWEtdG9rZW4", iterator.as_str()] {
        let message = streams
            .err(
                "ListStreams",
                json!({ "NextToken": bad }),
                "InvalidArgumentException",
            )
            .await;
        assert!(message.contains("NextToken"), "{message}");
    }
    for limit in [0, 10_001] {
        streams
            .err(
                "ListStreams",
                json!({ "Limit": limit }),
                "ValidationException",
            )
            .await;
    }
    // An empty body is an empty request.
    let response = streams.raw("ListStreams", JSON, "").await;
    assert_eq!(response.status, 200, "{}", response.text());
}

#[tokio::test]
async fn stream_list_shards_pages_with_next_token() {
    let streams = two_shards(Backend::Local).await;
    streams.create("three", 3).await;
    let all = streams
        .ok("ListShards", json!({"StreamName": "three"}))
        .await;
    let ids: Vec<&str> = all["Shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ShardId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000002"
        ]
    );
    assert!(all.get("NextToken").is_none());
    assert!(all["Shards"][0]["HashKeyRange"]["StartingHashKey"].is_string());

    let mut seen = Vec::new();
    let mut page = streams
        .ok(
            "ListShards",
            json!({"StreamName": "three", "MaxResults": 1}),
        )
        .await;
    for _ in 0..5 {
        for shard in page["Shards"].as_array().unwrap() {
            seen.push(shard["ShardId"].as_str().unwrap().to_owned());
        }
        let Some(token) = page.get("NextToken").and_then(Value::as_str) else {
            break;
        };
        let token = token.to_owned();
        let message = streams
            .err(
                "ListShards",
                json!({"StreamName": "three", "NextToken": token}),
                "InvalidArgumentException",
            )
            .await;
        assert!(message.contains("NextToken"), "{message}");
        page = streams
            .ok("ListShards", json!({"NextToken": token, "MaxResults": 1}))
            .await;
    }
    assert_eq!(seen, ids);

    let after = streams
        .ok(
            "ListShards",
            json!({"StreamName": "three", "ExclusiveStartShardId": "shardId-000000000000"}),
        )
        .await;
    assert_eq!(after["Shards"].as_array().unwrap().len(), 2);
    let filtered = streams
        .ok(
            "ListShards",
            json!({"StreamName": "three", "ShardFilter": {"Type": "AFTER_SHARD_ID", "ShardId": "shardId-000000000001"}}),
        )
        .await;
    assert_eq!(filtered["Shards"][0]["ShardId"], "shardId-000000000002");
    assert_eq!(filtered["Shards"].as_array().unwrap().len(), 1);

    streams
        .err(
            "ListShards",
            json!({"NextToken": "garbage-token"}),
            "InvalidArgumentException",
        )
        .await;
    streams
        .err(
            "ListShards",
            json!({"StreamName": "three", "MaxResults": 0}),
            "ValidationException",
        )
        .await;
    streams
        .err(
            "ListShards",
            json!({"StreamName": "nope"}),
            "ResourceNotFoundException",
        )
        .await;
}

// ------------------------------------------------------------------ PutRecord / PutRecords

impl Streams {
    /// PutRecord to `stream` with an ExplicitHashKey; (shard id, sequence number).
    async fn put_explicit(&self, stream: &str, hash: &str) -> (String, String) {
        let out = self
            .ok(
                "PutRecord",
                json!({"StreamName": stream, "PartitionKey": "k", "ExplicitHashKey": hash, "Data": b64(hash.as_bytes())}),
            )
            .await;
        (
            out["ShardId"].as_str().unwrap().to_owned(),
            out["SequenceNumber"].as_str().unwrap().to_owned(),
        )
    }
}

#[tokio::test]
async fn stream_put_record_routes_by_md5_of_the_partition_key() {
    let streams = two_shards(Backend::Local).await;
    streams.create("four", 4).await;
    let ranges = hash_ranges(&streams, "four").await;
    let mut used = std::collections::BTreeSet::new();
    for i in 0..40 {
        let key = format!("key-{i}");
        let hash = md5_hash(&key);
        let expected = ranges
            .iter()
            .find(|(_, start, end)| (*start..=*end).contains(&hash))
            .map(|(id, _, _)| id.clone())
            .unwrap();
        let (shard, _) = streams.put("four", &key, key.as_bytes()).await;
        assert_eq!(shard, expected, "key {key:?} (hash {hash})");
        used.insert(shard);
    }
    assert_eq!(used.len(), 4, "40 keys should reach all four shards");
    // A known value: MD5("a") = 0cc175b9c0f1b6a831c399e269772661 is in the first quarter.
    assert_eq!(md5_hash("a"), 0x0cc1_75b9_c0f1_b6a8_31c3_99e2_6977_2661);
    assert_eq!(
        streams.put("four", "a", b"").await.0,
        "shardId-000000000000"
    );
    // Multi-byte keys hash their UTF-8 bytes.
    let key = "ключ-🔑";
    let hash = md5_hash(key);
    let expected = ranges
        .iter()
        .find(|(_, start, end)| (*start..=*end).contains(&hash))
        .unwrap()
        .0
        .clone();
    assert_eq!(streams.put("four", key, b"x").await.0, expected);
}

async fn stream_put_record_explicit_hash_keys(backend: Backend) {
    let streams = two_shards(backend).await;
    for (hash, shard) in [("0", S0), (HALF_END, S0), (HALF_START, S1), (MAX_HASH, S1)] {
        assert_eq!(streams.put_explicit("s2", hash).await.0, shard, "{hash}");
    }
    // The explicit hash wins over the key's own hash.
    let key_to_s1 = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| md5_hash(k) > u128::MAX / 2)
        .unwrap();
    let out = streams
        .ok(
            "PutRecord",
            json!({"StreamName": "s2", "PartitionKey": key_to_s1, "ExplicitHashKey": "5", "Data": ""}),
        )
        .await;
    assert_eq!(out["ShardId"], S0);

    let message = streams
        .err(
            "PutRecord",
            json!({"StreamName": "s2", "PartitionKey": "k", "ExplicitHashKey": "340282366920938463463374607431768211456", "Data": ""}),
            "InvalidArgumentException",
        )
        .await;
    assert!(message.contains("ExplicitHashKey"), "{message}");
    for bad in ["-1", "01", "1.5", "abc", &"9".repeat(40)] {
        let message = streams
            .err(
                "PutRecord",
                json!({"StreamName": "s2", "PartitionKey": "k", "ExplicitHashKey": bad, "Data": ""}),
                "ValidationException",
            )
            .await;
        assert!(message.contains("explicitHashKey"), "{message}");
    }
}

async fn stream_put_record_limits_and_messages(backend: Backend) {
    let streams = two_shards(backend).await;
    let big = vec![b'x'; (1 << 20) + 1];
    let message = streams
        .err(
            "PutRecord",
            json!({"StreamName": "s2", "PartitionKey": "k", "Data": b64(&big)}),
            "ValidationException",
        )
        .await;
    assert_eq!(
        message,
        "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1048577 cap=1048577]' at 'data' failed to satisfy constraint: Member must have length less than or equal to 1048576"
    );
    // Exactly 1 MiB goes in and comes back whole.
    let exact = vec![b'y'; 1 << 20];
    let (shard, sequence) = streams.put("s2", "big", &exact).await;

    let message = streams
        .err(
            "PutRecord",
            json!({"StreamName": "s2", "PartitionKey": "", "Data": ""}),
            "ValidationException",
        )
        .await;
    assert_eq!(
        message,
        "1 validation error detected: Value '' at 'partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1"
    );
    let long = "k".repeat(257);
    let message = streams
        .err(
            "PutRecord",
            json!({"StreamName": "s2", "PartitionKey": long, "Data": ""}),
            "ValidationException",
        )
        .await;
    assert!(
        message.contains("at 'partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256"),
        "{message}"
    );
    // 256 characters, multi-byte ones included, are fine.
    streams.put("s2", &"é".repeat(256), b"ok").await;
    // Two problems, one exception listing both.
    let message = streams
        .err(
            "PutRecord",
            json!({"StreamName": "s2", "Data": b64(&big)}),
            "ValidationException",
        )
        .await;
    assert!(
        message.starts_with("2 validation errors detected: "),
        "{message}"
    );
    assert!(
        message.contains(
            "Value null at 'partitionKey' failed to satisfy constraint: Member must not be null"
        ),
        "{message}"
    );
    streams
        .err(
            "PutRecord",
            json!({"StreamName": "s2", "PartitionKey": "k"}),
            "ValidationException",
        )
        .await;
    streams
        .err(
            "PutRecord",
            json!({"StreamName": "s2", "PartitionKey": "k", "Data": "***not base64***"}),
            "SerializationException",
        )
        .await;
    streams
        .err(
            "PutRecord",
            json!({"StreamName": "nope", "PartitionKey": "k", "Data": ""}),
            "ResourceNotFoundException",
        )
        .await;

    // Empty data is allowed (the model's minimum is 0) and reads back empty.
    let (empty_shard, empty_seq) = streams.put("s2", "big", b"").await;
    assert_eq!(empty_shard, shard, "same key, same shard");
    let out = streams
        .ok(
            "PutRecord",
            json!({"StreamName": "s2", "PartitionKey": "big", "Data": "", "SequenceNumberForOrdering": empty_seq}),
        )
        .await;
    assert!(seq(out["SequenceNumber"].as_str().unwrap()) > seq(&empty_seq));
    assert_eq!(out["EncryptionType"], "NONE");
    let records = streams.read_all("s2", &shard).await;
    let mine: Vec<_> = records.iter().filter(|r| r.1 == "big").collect();
    assert_eq!(mine.len(), 3);
    assert_eq!(mine[0].0, sequence);
    assert_eq!(mine[0].2, exact);
    assert_eq!(mine[1].0, empty_seq);
    assert!(mine[1].2.is_empty());
}

async fn stream_put_records_answers_in_request_order_with_failed_record_count(backend: Backend) {
    let streams = two_shards(backend).await;
    let entries: Vec<Value> = (0..20)
        .map(|i| json!({"PartitionKey": format!("p{}", i % 5), "Data": b64(format!("r{i}").as_bytes())}))
        .collect();
    let response = streams
        .raw(
            "PutRecords",
            JSON,
            json!({"StreamName": "s2", "Records": entries}).to_string(),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let text = response.text();
    assert!(
        text.contains("\"FailedRecordCount\":0"),
        "Fluent Bit looks for the compact literal: {text}"
    );
    let out = parse_json(&response);
    assert_eq!(out["FailedRecordCount"], 0);
    let results = out["Records"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    let ranges = hash_ranges(&streams, "s2").await;
    let mut last_per_shard = std::collections::HashMap::new();
    for (i, result) in results.iter().enumerate() {
        assert!(result.get("ErrorCode").is_none(), "{result}");
        let key = format!("p{}", i % 5);
        let hash = md5_hash(&key);
        let expected = &ranges
            .iter()
            .find(|(_, s, e)| (*s..=*e).contains(&hash))
            .unwrap()
            .0;
        assert_eq!(result["ShardId"], expected.as_str(), "entry {i}");
        let n = seq(result["SequenceNumber"].as_str().unwrap());
        // Per shard, records keep their request order.
        if let Some(previous) = last_per_shard.insert(expected.clone(), n) {
            assert!(n > previous, "entry {i}: {n} after {previous}");
        }
    }
    // Reading back gives each shard's records in request order, with our sequence numbers.
    for (shard, _, _) in &ranges {
        let records = streams.read_all("s2", shard).await;
        let expected: Vec<(String, String, Vec<u8>)> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r["ShardId"] == shard.as_str())
            .map(|(i, r)| {
                (
                    r["SequenceNumber"].as_str().unwrap().to_owned(),
                    format!("p{}", i % 5),
                    format!("r{i}").into_bytes(),
                )
            })
            .collect();
        assert_eq!(records, expected, "{shard}");
    }
}

async fn stream_put_records_limits(backend: Backend) {
    let streams = two_shards(backend).await;
    let message = streams
        .err(
            "PutRecords",
            json!({"StreamName": "s2", "Records": []}),
            "ValidationException",
        )
        .await;
    assert!(
        message.contains("Value '[]' at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1"),
        "{message}"
    );
    let many: Vec<Value> = (0..501)
        .map(|i| json!({"PartitionKey": format!("{i}"), "Data": ""}))
        .collect();
    let message = streams
        .err(
            "PutRecords",
            json!({"StreamName": "s2", "Records": many}),
            "ValidationException",
        )
        .await;
    assert!(
        message.contains("Member must have length less than or equal to 500"),
        "{message}"
    );
    // 500 is fine.
    let out = streams
        .ok(
            "PutRecords",
            json!({"StreamName": "s2", "Records": many[..500]}),
        )
        .await;
    assert_eq!(out["FailedRecordCount"], 0);
    assert_eq!(out["Records"].as_array().unwrap().len(), 500);

    // Over 5 MiB in total (each record within its own limit).
    let mib = b64(&vec![b'z'; 1 << 20]);
    let mut big: Vec<Value> = (0..5)
        .map(|i| json!({"PartitionKey": format!("{i}"), "Data": mib}))
        .collect();
    big.push(json!({"PartitionKey": "last", "Data": b64(&[0; 1000])}));
    let before = streams.read_all("s2", S0).await.len() + streams.read_all("s2", S1).await.len();
    let message = streams
        .err(
            "PutRecords",
            json!({"StreamName": "s2", "Records": big}),
            "InvalidArgumentException",
        )
        .await;
    assert!(message.contains("5 MB"), "{message}");
    let after = streams.read_all("s2", S0).await.len() + streams.read_all("s2", S1).await.len();
    assert_eq!(before, after, "a refused request writes nothing");

    // One bad entry refuses the whole request, naming its member path.
    let message = streams
        .err(
            "PutRecords",
            json!({"StreamName": "s2", "Records": [{"PartitionKey": "a", "Data": ""}, {"PartitionKey": "", "Data": ""}]}),
            "ValidationException",
        )
        .await;
    assert!(
        message.contains("'records.2.member.partitionKey'"),
        "{message}"
    );
    streams
        .err(
            "PutRecords",
            json!({"StreamName": "s2"}),
            "ValidationException",
        )
        .await;
    streams
        .err(
            "PutRecords",
            json!({"StreamName": "nope", "Records": [{"PartitionKey": "a", "Data": ""}]}),
            "ResourceNotFoundException",
        )
        .await;
}

async fn stream_sequence_numbers_increase_as_integers_and_are_unique(backend: Backend) {
    let streams = two_shards(backend).await;
    let mut per_shard: std::collections::HashMap<String, Vec<u128>> = Default::default();
    let mut all = std::collections::HashSet::new();
    for i in 0..30 {
        let (shard, sequence) = streams.put("s2", &format!("k{i}"), b"d").await;
        assert!(
            sequence == "0" || !sequence.starts_with('0'),
            "canonical decimal: {sequence}"
        );
        assert!(sequence.len() <= 128 && sequence.bytes().all(|b| b.is_ascii_digit()));
        let n = seq(&sequence);
        assert!(all.insert(n), "{sequence} given twice");
        per_shard.entry(shard).or_default().push(n);
    }
    assert_eq!(per_shard.len(), 2);
    for (shard, numbers) in &per_shard {
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "{shard}: {numbers:?}"
        );
    }
}

// ------------------------------------------------------------------ GetShardIterator

async fn stream_shard_iterator_types_and_positions(backend: Backend) {
    let streams = two_shards(backend).await;
    let mut seqs = Vec::new();
    for i in 0..5 {
        let (shard, sequence) = streams.put_explicit("s2", &i.to_string()).await;
        assert_eq!(shard, S0);
        seqs.push(sequence);
    }
    let first_data = |page: &Value| -> Option<String> {
        page["Records"][0]["SequenceNumber"]
            .as_str()
            .map(str::to_owned)
    };
    let trim = streams.iterator("s2", S0, "TRIM_HORIZON", json!({})).await;
    assert_eq!(
        first_data(&streams.records(&trim, None).await),
        Some(seqs[0].clone())
    );
    let at = streams
        .iterator(
            "s2",
            S0,
            "AT_SEQUENCE_NUMBER",
            json!({"StartingSequenceNumber": seqs[2]}),
        )
        .await;
    let page = streams.records(&at, None).await;
    assert_eq!(first_data(&page), Some(seqs[2].clone()));
    assert_eq!(page["Records"].as_array().unwrap().len(), 3);
    let after = streams
        .iterator(
            "s2",
            S0,
            "AFTER_SEQUENCE_NUMBER",
            json!({"StartingSequenceNumber": seqs[2]}),
        )
        .await;
    assert_eq!(
        first_data(&streams.records(&after, None).await),
        Some(seqs[3].clone())
    );
    let after_last = streams
        .iterator(
            "s2",
            S0,
            "AFTER_SEQUENCE_NUMBER",
            json!({"StartingSequenceNumber": seqs[4]}),
        )
        .await;
    let page = streams.records(&after_last, None).await;
    assert_eq!(page["Records"], json!([]));
    assert_eq!(page["MillisBehindLatest"], 0);

    // LATEST: nothing now; a record put afterwards is returned.
    let latest = streams.iterator("s2", S0, "LATEST", json!({})).await;
    let page = streams.records(&latest, None).await;
    assert_eq!(page["Records"], json!([]));
    let (_, newer) = streams.put_explicit("s2", "77").await;
    let page = streams.records(&latest, None).await;
    assert_eq!(first_data(&page), Some(newer.clone()));
    // So is it through the NextShardIterator of the empty page, and AFTER_SEQUENCE_NUMBER
    // of the last record before it.
    assert_eq!(
        first_data(&streams.records(after_last.as_str(), None).await),
        Some(newer.clone())
    );

    // AT_TIMESTAMP: the first record that arrived at or after the time.
    let all = streams
        .records(
            &streams.iterator("s2", S0, "TRIM_HORIZON", json!({})).await,
            None,
        )
        .await;
    let arrival = all["Records"][5]["ApproximateArrivalTimestamp"]
        .as_f64()
        .expect("epoch seconds");
    let earlier = all["Records"][4]["ApproximateArrivalTimestamp"]
        .as_f64()
        .unwrap();
    assert!(earlier <= arrival);
    let now = now_ms() as f64 / 1000.0;
    assert!(arrival <= now && arrival > now - 60.0, "{arrival} vs {now}");
    let old = streams
        .iterator(
            "s2",
            S0,
            "AT_TIMESTAMP",
            json!({"Timestamp": 1_000_000_000}),
        )
        .await;
    assert_eq!(
        first_data(&streams.records(&old, None).await),
        Some(seqs[0].clone())
    );
    // Later than every record: the tip, promptly.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let started = Instant::now();
    let tip = streams
        .iterator(
            "s2",
            S0,
            "AT_TIMESTAMP",
            json!({"Timestamp": (now_ms() - 5) as f64 / 1000.0}),
        )
        .await;
    let page = streams.records(&tip, None).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(page["Records"], json!([]));
    assert_eq!(page["MillisBehindLatest"], 0);
    let (_, latest_seq) = streams.put_explicit("s2", "88").await;
    let page = streams
        .records(page["NextShardIterator"].as_str().unwrap(), None)
        .await;
    assert_eq!(first_data(&page), Some(latest_seq.clone()));
    let at_time = streams
        .iterator(
            "s2",
            S0,
            "AT_TIMESTAMP",
            json!({"Timestamp": page["Records"][0]["ApproximateArrivalTimestamp"]}),
        )
        .await;
    let page = streams.records(&at_time, None).await;
    assert_eq!(
        first_data(&page),
        Some(latest_seq.clone()),
        "AT_TIMESTAMP of a record's arrival starts at that record"
    );
    let message = streams
        .err(
            "GetShardIterator",
            json!({"StreamName": "s2", "ShardId": S0, "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": (now_ms() / 1000 + 3600)}),
            "InvalidArgumentException",
        )
        .await;
    assert!(message.contains("cannot be greater than"), "{message}");
    streams
        .err(
            "GetShardIterator",
            json!({"StreamName": "s2", "ShardId": S0, "ShardIteratorType": "AT_TIMESTAMP"}),
            "InvalidArgumentException",
        )
        .await;
}

async fn stream_shard_iterator_errors(backend: Backend) {
    let streams = two_shards(backend).await;
    let (_, on_s0) = streams.put_explicit("s2", "0").await;
    let (_, on_s1) = streams.put_explicit("s2", MAX_HASH).await;
    let request = |kind: &str, shard: &str, sequence: Option<&str>| {
        let mut body = json!({"StreamName": "s2", "ShardId": shard, "ShardIteratorType": kind});
        if let Some(sequence) = sequence {
            body["StartingSequenceNumber"] = json!(sequence);
        }
        body
    };
    for kind in ["AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"] {
        let message = streams
            .err(
                "GetShardIterator",
                request(kind, S0, Some(&on_s1)),
                "InvalidArgumentException",
            )
            .await;
        assert!(message.contains("StartingSequenceNumber"), "{message}");
        streams
            .err(
                "GetShardIterator",
                request(kind, S0, None),
                "InvalidArgumentException",
            )
            .await;
    }
    for kind in ["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"] {
        let message = streams
            .err(
                "GetShardIterator",
                request(kind, S0, Some(&on_s0)),
                "InvalidArgumentException",
            )
            .await;
        assert!(
            message.contains("should not contain a StartingSequenceNumber"),
            "{message}"
        );
    }
    // A number no shard of this stream handed out yet.
    let future = (seq(&on_s0) + 1000).to_string();
    streams
        .err(
            "GetShardIterator",
            request("AT_SEQUENCE_NUMBER", S0, Some(&future)),
            "InvalidArgumentException",
        )
        .await;
    streams
        .err(
            "GetShardIterator",
            request("AT_SEQUENCE_NUMBER", S0, Some("12x")),
            "ValidationException",
        )
        .await;
    let message = streams
        .err(
            "GetShardIterator",
            request("SOMEWHERE", S0, None),
            "ValidationException",
        )
        .await;
    assert!(
        message.contains("Member must satisfy enum value set"),
        "{message}"
    );
    streams
        .err(
            "GetShardIterator",
            request("LATEST", "shardId-000000000009", None),
            "ResourceNotFoundException",
        )
        .await;
    streams
        .err(
            "GetShardIterator",
            json!({"StreamName": "nope", "ShardId": S0, "ShardIteratorType": "LATEST"}),
            "ResourceNotFoundException",
        )
        .await;
    streams
        .err(
            "GetShardIterator",
            json!({"StreamName": "s2", "ShardIteratorType": "LATEST"}),
            "ValidationException",
        )
        .await;
}

// ------------------------------------------------------------------ GetRecords

async fn stream_get_records_limit_chaining_and_reuse(backend: Backend) {
    let streams = two_shards(backend).await;
    let mut seqs = Vec::new();
    for i in 0..7 {
        seqs.push(streams.put_explicit("s2", &(i * 10).to_string()).await.1);
    }
    let start = streams.iterator("s2", S0, "TRIM_HORIZON", json!({})).await;
    let page = streams.records(&start, Some(3)).await;
    let got: Vec<&str> = page["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["SequenceNumber"].as_str().unwrap())
        .collect();
    assert_eq!(got, &seqs[..3]);
    assert!(
        page["MillisBehindLatest"].as_u64().is_some(),
        "MillisBehindLatest is a number: {page}"
    );
    let r0 = &page["Records"][0];
    assert_eq!(r0["PartitionKey"], "k");
    assert_eq!(unb64(r0["Data"].as_str().unwrap()), b"0");
    assert!(r0["ApproximateArrivalTimestamp"].is_number());
    // The same iterator again: the same records.
    let again = streams.records(&start, Some(3)).await;
    assert_eq!(again["Records"], page["Records"]);
    // Chaining covers the rest, exactly once.
    let next = page["NextShardIterator"].as_str().unwrap();
    let rest = streams.records(next, None).await;
    let got: Vec<&str> = rest["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["SequenceNumber"].as_str().unwrap())
        .collect();
    assert_eq!(got, &seqs[3..]);
    assert_eq!(rest["MillisBehindLatest"], 0, "caught up");
    let empty = streams
        .records(rest["NextShardIterator"].as_str().unwrap(), None)
        .await;
    assert_eq!(empty["Records"], json!([]));
    assert_eq!(empty["MillisBehindLatest"], 0);
    assert!(
        empty["NextShardIterator"].is_string(),
        "open shards always give one"
    );
    // Empty shard.
    let s1 = streams.iterator("s2", S1, "TRIM_HORIZON", json!({})).await;
    let page = streams.records(&s1, None).await;
    assert_eq!(page["Records"], json!([]));
    assert_eq!(page["MillisBehindLatest"], 0);

    for limit in [0, 10_001] {
        streams
            .err(
                "GetRecords",
                json!({"ShardIterator": start, "Limit": limit}),
                "ValidationException",
            )
            .await;
    }
    streams
        .err("GetRecords", json!({}), "ValidationException")
        .await;
}

#[tokio::test]
async fn stream_get_records_refuses_forged_and_stale_iterators() {
    let streams = two_shards(Backend::Local).await;
    streams.put_explicit("s2", "1").await;
    let iterator = streams.iterator("s2", S0, "TRIM_HORIZON", json!({})).await;
    assert!(iterator.len() <= 512, "{}", iterator.len());
    let mut tampered = iterator.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let mut forged = iterator.clone();
    forged.push('A');
    let list_token = streams.ok("ListStreams", json!({"Limit": 1})).await;
    let not_an_iterator = list_token["NextToken"].as_str().map(str::to_owned);
    for bad in [
        Some(tampered),
        Some(forged),
        Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned()),
        Some("not base64 at all!".to_owned()),
        not_an_iterator,
    ]
    .into_iter()
    .flatten()
    {
        let message = streams
            .err(
                "GetRecords",
                json!({ "ShardIterator": bad }),
                "InvalidArgumentException",
            )
            .await;
        assert_eq!(message, "Invalid ShardIterator.", "{bad}");
    }
    streams
        .err(
            "GetRecords",
            json!({"ShardIterator": "A".repeat(513)}),
            "ValidationException",
        )
        .await;

    // An iterator outlives neither its stream nor a new stream of the same name.
    streams.create("again", 1).await;
    streams.put("again", "k", b"old").await;
    let old = streams
        .iterator("again", S0, "TRIM_HORIZON", json!({}))
        .await;
    streams
        .ok("DeleteStream", json!({"StreamName": "again"}))
        .await;
    streams
        .err(
            "GetRecords",
            json!({ "ShardIterator": old }),
            "ResourceNotFoundException",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    streams.create("again", 1).await;
    streams.put("again", "k", b"new").await;
    streams
        .err(
            "GetRecords",
            json!({ "ShardIterator": old }),
            "ResourceNotFoundException",
        )
        .await;

    // Iterators survive a restart (the key is kept in data_dir).
    let streams = streams.restart().await;
    let page = streams.records(&iterator, None).await;
    assert_eq!(page["Records"].as_array().unwrap().len(), 1);
}

// ------------------------------------------------------------------ retention

async fn stream_retention_rules_and_messages(backend: Backend) {
    let streams = two_shards(backend).await;
    let hours = |out: Value| out["StreamDescriptionSummary"]["RetentionPeriodHours"].clone();
    let summary = || streams.ok("DescribeStreamSummary", json!({"StreamName": "s2"}));
    assert_eq!(hours(summary().await), 24);
    let response = streams
        .raw(
            "IncreaseStreamRetentionPeriod",
            JSON,
            json!({"StreamName": "s2", "RetentionPeriodHours": 48}).to_string(),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.body.is_empty());
    assert_eq!(hours(summary().await), 48);
    for (operation, hours, expected) in [
        (
            "IncreaseStreamRetentionPeriod",
            30,
            "Requested retention period (30 hours) for stream s2 can not be shorter than existing retention period (48 hours). Use DecreaseRetentionPeriod API.",
        ),
        (
            "DecreaseStreamRetentionPeriod",
            100,
            "Requested retention period (100 hours) for stream s2 can not be longer than existing retention period (48 hours). Use IncreaseRetentionPeriod API.",
        ),
        (
            "DecreaseStreamRetentionPeriod",
            23,
            "Minimum allowed retention period is 24 hours. Requested retention period (23 hours) is too short.",
        ),
        (
            "IncreaseStreamRetentionPeriod",
            8761,
            "Maximum allowed retention period is 8760 hours. Requested retention period (8761 hours) is too long.",
        ),
    ] {
        let message = streams
            .err(
                operation,
                json!({"StreamName": "s2", "RetentionPeriodHours": hours}),
                "InvalidArgumentException",
            )
            .await;
        assert_eq!(message, expected, "{operation} {hours}");
    }
    streams
        .ok(
            "DecreaseStreamRetentionPeriod",
            json!({"StreamName": "s2", "RetentionPeriodHours": 24}),
        )
        .await;
    assert_eq!(hours(summary().await), 24);
    streams
        .ok(
            "IncreaseStreamRetentionPeriod",
            json!({"StreamName": "s2", "RetentionPeriodHours": 8760}),
        )
        .await;
    assert_eq!(hours(summary().await), 8760);
    // Same value both ways is fine.
    streams
        .ok(
            "DecreaseStreamRetentionPeriod",
            json!({"StreamName": "s2", "RetentionPeriodHours": 8760}),
        )
        .await;
    streams
        .err(
            "IncreaseStreamRetentionPeriod",
            json!({"StreamName": "s2"}),
            "ValidationException",
        )
        .await;
    streams
        .err(
            "IncreaseStreamRetentionPeriod",
            json!({"StreamName": "nope", "RetentionPeriodHours": 48}),
            "ResourceNotFoundException",
        )
        .await;
}

// ------------------------------------------------------------------ protocol

async fn stream_protocol_errors(backend: Backend) {
    let streams = two_shards(backend).await;
    let response = streams.raw("MergeShards", JSON, "{}").await;
    assert_eq!(response.status, 400);
    assert_eq!(parse_json(&response)["__type"], "UnknownOperationException");
    assert_eq!(
        response.header("x-amzn-errortype"),
        Some("UnknownOperationException:")
    );
    // No X-Amz-Target, or another service's prefix.
    for target in [None, Some("DynamoDB_20120810.ListTables")] {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/")
            .header("host", streams.http.to_string())
            .header("content-type", JSON);
        if let Some(target) = target {
            request = request.header("x-amz-target", target);
        }
        let response = streams
            .send(request.body(Full::new(Bytes::from("{}"))).unwrap())
            .await;
        assert_eq!(response.status, 400, "{target:?}");
        assert_eq!(parse_json(&response)["__type"], "UnknownOperationException");
    }
    // Not JSON, not an object, wrong member types.
    for body in ["{", "not json", "[1,2]", "\"text\"", "{\"StreamName\": }"] {
        let response = streams.raw("DescribeStream", JSON, body).await;
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(
            parse_json(&response)["__type"],
            "SerializationException",
            "{body}"
        );
    }
    for (op, body) in [
        ("DescribeStream", json!({"StreamName": 5})),
        (
            "DescribeStream",
            json!({"StreamName": "s2", "Limit": "one"}),
        ),
        (
            "CreateStream",
            json!({"StreamName": "x", "ShardCount": "2"}),
        ),
        (
            "CreateStream",
            json!({"StreamName": "x", "ShardCount": 1.5}),
        ),
        (
            "PutRecord",
            json!({"StreamName": "s2", "PartitionKey": ["k"], "Data": ""}),
        ),
        (
            "PutRecord",
            json!({"StreamName": "s2", "PartitionKey": "k", "Data": 12}),
        ),
        (
            "PutRecords",
            json!({"StreamName": "s2", "Records": {"a": 1}}),
        ),
        ("PutRecords", json!({"StreamName": "s2", "Records": ["x"]})),
        ("GetRecords", json!({"ShardIterator": {"x": 1}})),
        (
            "GetShardIterator",
            json!({"StreamName": "s2", "ShardId": S0, "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": "yesterday"}),
        ),
    ] {
        let message = streams
            .err(op, body.clone(), "SerializationException")
            .await;
        assert!(!message.is_empty(), "{op} {body}");
    }
    // Nothing was created by the bad CreateStreams.
    streams
        .err(
            "DescribeStream",
            json!({"StreamName": "x"}),
            "ResourceNotFoundException",
        )
        .await;
    // Unsupported or missing Content-Type.
    for content_type in [Some("text/plain"), Some("application/xml"), None] {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/")
            .header("host", streams.http.to_string())
            .header("x-amz-target", "Kinesis_20131202.ListStreams");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = streams
            .send(request.body(Full::new(Bytes::from("{}"))).unwrap())
            .await;
        assert_eq!(response.status, 400, "{content_type:?}");
        let out = parse_json(&response);
        assert_eq!(
            out["__type"], "UnknownOperationException",
            "{content_type:?}"
        );
        let message = out["message"].as_str().unwrap();
        assert!(message.contains("application/x-amz-json-1.1"), "{out}");
        if content_type.is_none() {
            assert!(
                message.starts_with("The request has no Content-Type header"),
                "{out}"
            );
        }
    }
    // application/json works too, as for kinesalite.
    let response = streams.raw("ListStreams", "application/json", "{}").await;
    assert_eq!(response.status, 200);
    // A GET is not an operation.
    let response = streams.get("/").await;
    assert_eq!(response.status, 400);
    // A body over the limit (8 MiB) is refused without reading it all into an operation.
    let huge = vec![b' '; (8 << 20) + 1];
    let response = streams.raw("ListStreams", JSON, huge).await;
    assert_eq!(response.status, 400, "{}", response.text());
    let out = parse_json(&response);
    assert_eq!(out["__type"], "SerializationException");
    assert!(out["message"].as_str().unwrap().contains("limit"), "{out}");
    // The server is still fine.
    streams.ok("ListStreams", json!({})).await;
}

async fn stream_responses_carry_request_ids_and_content_types(backend: Backend) {
    let streams = two_shards(backend).await;
    let mut ids = std::collections::HashSet::new();
    for (op, body, status) in [
        ("ListStreams", json!({}), 200),
        ("DescribeStream", json!({"StreamName": "s2"}), 200),
        ("DescribeStream", json!({"StreamName": "none"}), 400),
        ("Nope", json!({}), 400),
    ] {
        let response = streams.raw(op, JSON, body.to_string()).await;
        assert_eq!(response.status, status, "{op}");
        let id = response
            .header("x-amzn-requestid")
            .unwrap_or_else(|| panic!("{op}: no x-amzn-RequestId"));
        assert_eq!(id.len(), 36, "{id}");
        assert!(ids.insert(id.to_owned()), "request ids are unique");
        assert_eq!(response.header("content-type"), Some(JSON), "{op}");
        assert_eq!(
            response.header("content-length"),
            Some(response.body.len().to_string().as_str())
        );
    }
    // Keep-alive: two requests on one HTTP/1.1 connection.
    let tcp = tokio::net::TcpStream::connect(streams.http).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    for _ in 0..2 {
        let request = kinesis_request(streams.http, "ListStreams", JSON, Bytes::from("{}"));
        // The connection is free again once the last response was read; hyper says so here.
        sender.ready().await.expect("the connection stays open");
        let response = tokio::time::timeout(TIMEOUT, sender.send_request(request))
            .await
            .expect("in time")
            .expect("a response on the same connection");
        assert_eq!(response.status(), 200);
        use http_body_util::BodyExt;
        response.into_body().collect().await.unwrap();
    }
}

async fn stream_cbor_round_trip(backend: Backend) {
    use ciborium::Value as C;
    let streams = two_shards(backend).await;
    let payload = vec![0u8, 1, 2, 0xff, b'\n'];
    let (status, out) = streams
        .call_cbor(
            "PutRecord",
            cbor_map(vec![
                ("StreamName", C::Text("s2".into())),
                ("PartitionKey", C::Text("cbor".into())),
                ("ExplicitHashKey", C::Text("0".into())),
                ("Data", C::Bytes(payload.clone())),
            ]),
        )
        .await;
    assert_eq!(status, 200, "{out:?}");
    let sequence = cbor_get(&out, "SequenceNumber")
        .as_text()
        .unwrap()
        .to_owned();
    assert_eq!(cbor_get(&out, "ShardId").as_text(), Some(S0));
    // Base64 text in CBOR is read too (as the Java SDK's parser does).
    let (status, _) = streams
        .call_cbor(
            "PutRecord",
            cbor_map(vec![
                ("StreamName", C::Text("s2".into())),
                ("PartitionKey", C::Text("cbor".into())),
                ("ExplicitHashKey", C::Text("0".into())),
                ("Data", C::Text(b64(b"text"))),
            ]),
        )
        .await;
    assert_eq!(status, 200);
    let (status, out) = streams
        .call_cbor(
            "GetShardIterator",
            cbor_map(vec![
                ("StreamName", C::Text("s2".into())),
                ("ShardId", C::Text(S0.into())),
                ("ShardIteratorType", C::Text("AT_TIMESTAMP".into())),
                // CBOR timestamps are epoch milliseconds.
                ("Timestamp", C::Integer((now_ms() - 60_000).into())),
            ]),
        )
        .await;
    assert_eq!(status, 200, "{out:?}");
    let iterator = cbor_get(&out, "ShardIterator").clone();
    let (status, out) = streams
        .call_cbor(
            "GetRecords",
            cbor_map(vec![
                ("ShardIterator", iterator),
                ("Limit", C::Integer(10.into())),
            ]),
        )
        .await;
    assert_eq!(status, 200, "{out:?}");
    let records = cbor_get(&out, "Records").as_array().unwrap();
    assert_eq!(records.len(), 2);
    let first = &records[0];
    assert_eq!(cbor_get(first, "Data"), &C::Bytes(payload));
    assert_eq!(cbor_get(&records[1], "Data"), &C::Bytes(b"text".to_vec()));
    assert_eq!(
        cbor_get(first, "SequenceNumber").as_text(),
        Some(sequence.as_str())
    );
    assert_eq!(cbor_get(first, "PartitionKey").as_text(), Some("cbor"));
    let arrival = cbor_get(first, "ApproximateArrivalTimestamp")
        .as_integer()
        .map(i128::from)
        .expect("integer epoch milliseconds");
    let now = i128::from(now_ms());
    assert!(
        arrival <= now && arrival > now - 60_000,
        "{arrival} vs {now}"
    );
    assert_eq!(
        cbor_get(&out, "MillisBehindLatest")
            .as_integer()
            .map(i128::from),
        Some(0)
    );
    // The same record over JSON: seconds with a fraction.
    let json_page = streams
        .records(
            &streams.iterator("s2", S0, "TRIM_HORIZON", json!({})).await,
            None,
        )
        .await;
    let seconds = json_page["Records"][0]["ApproximateArrivalTimestamp"]
        .as_f64()
        .unwrap();
    assert!(
        (seconds * 1000.0 - arrival as f64).abs() < 1.5,
        "{seconds} vs {arrival}"
    );

    // Errors come back as CBOR maps too.
    let (status, out) = streams
        .call_cbor(
            "DescribeStream",
            cbor_map(vec![("StreamName", C::Text("nope".into()))]),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        cbor_get(&out, "__type").as_text(),
        Some("ResourceNotFoundException")
    );
    // PutRecords over CBOR keeps FailedRecordCount.
    let (status, out) = streams
        .call_cbor(
            "PutRecords",
            cbor_map(vec![
                ("StreamName", C::Text("s2".into())),
                (
                    "Records",
                    C::Array(vec![cbor_map(vec![
                        ("PartitionKey", C::Text("p".into())),
                        ("Data", C::Bytes(vec![9; 3])),
                    ])]),
                ),
            ]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        cbor_get(&out, "FailedRecordCount")
            .as_integer()
            .map(i128::from),
        Some(0)
    );
    // Broken CBOR.
    let response = streams.raw("ListStreams", CBOR, vec![0xa1u8, 0x61]).await;
    assert_eq!(response.status, 400);
    let out: C = ciborium::from_reader(response.body.as_ref()).unwrap();
    assert_eq!(
        cbor_get(&out, "__type").as_text(),
        Some("SerializationException")
    );
}

// ------------------------------------------------------------------ NDJSON ingest

async fn stream_ndjson_ingest(backend: Backend) {
    let streams = two_shards(backend).await;
    let body =
        "{\"user\":\"ann\",\"n\":1}\n\n{\"user\":\"bob\",\"n\":2}\r\n{\"user\":\"ann\",\"n\":3}\n";
    let response = streams.post("/ingest/s2?partition_key=user", body).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let out = parse_json(&response);
    assert_eq!(out["count"], 3);
    assert_eq!(out["failed"], 0);
    let placed = out["records"].as_array().unwrap();
    assert_eq!(placed.len(), 3);
    // Keyed by the field: each line went to its key's shard, readable with GetRecords.
    let ranges = hash_ranges(&streams, "s2").await;
    let lines = [
        ("ann", "{\"user\":\"ann\",\"n\":1}"),
        ("bob", "{\"user\":\"bob\",\"n\":2}"),
        ("ann", "{\"user\":\"ann\",\"n\":3}"),
    ];
    for ((key, line), placed) in lines.iter().zip(placed) {
        let hash = md5_hash(key);
        let shard = &ranges
            .iter()
            .find(|(_, s, e)| (*s..=*e).contains(&hash))
            .unwrap()
            .0;
        assert_eq!(placed["shardId"], shard.as_str());
        let records = streams.read_all("s2", shard).await;
        let sequence = placed["sequenceNumber"].as_str().unwrap();
        let found = records
            .iter()
            .find(|r| r.0 == sequence)
            .unwrap_or_else(|| panic!("{sequence} not readable in {shard}"));
        assert_eq!(found.1, *key);
        assert_eq!(found.2, line.as_bytes());
    }

    // Without a key field each line gets a random key; all lines still arrive.
    let many: String = (0..40).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    let response = streams.post("/ingest/s2", many).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(parse_json(&response)["count"], 40);
    let total = streams.read_all("s2", S0).await.len() + streams.read_all("s2", S1).await.len();
    assert_eq!(total, 43);

    // A bad line: 400 naming it, and nothing written.
    let response = streams
        .post(
            "/ingest/s2",
            "{\"ok\":1}\n{\"ok\":2}\n{broken\n{\"ok\":4}\n",
        )
        .await;
    assert_eq!(response.status, 400);
    let error = parse_json(&response)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("line 3"), "{error}");
    let response = streams
        .post(
            "/ingest/s2?partition_key=user",
            "{\"user\":\"a\"}\n{\"nouser\":1}\n",
        )
        .await;
    assert_eq!(response.status, 400);
    let error = parse_json(&response)["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("line 2") && error.contains("user"),
        "{error}"
    );
    let total = streams.read_all("s2", S0).await.len() + streams.read_all("s2", S1).await.len();
    assert_eq!(total, 43, "refused bodies write nothing");

    let response = streams.post("/ingest/nope", "{}\n").await;
    assert_eq!(response.status, 404);
    assert!(parse_json(&response)["error"].is_string());
    let response = streams.post("/ingest/s2", "\n\n").await;
    assert_eq!(response.status, 400);
    let response = streams.get("/ingest/s2").await;
    assert_eq!(response.status, 405);
}

// ------------------------------------------------------------------ HTTPS and metrics

#[tokio::test]
async fn stream_https_listener_serves_the_api() {
    let streams = Streams::start(&https_config(
        "allow_create_streams = true",
        "[[stream.streams]]\nname = \"tls\"\nshards = 1\n",
    ))
    .await;
    assert!(streams.https.is_some());
    let addr = streams.https.unwrap();
    let body =
        json!({"StreamName": "tls", "Records": [{"PartitionKey": "k", "Data": b64(b"secure")}]});
    let response = streams
        .send_tls(kinesis_request(
            addr,
            "PutRecords",
            JSON,
            Bytes::from(body.to_string()),
        ))
        .await
        .expect("an HTTPS exchange verified against the generated certificate");
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.text().contains("\"FailedRecordCount\":0"));
    let response = streams
        .send_tls(kinesis_request(
            addr,
            "DescribeStream",
            JSON,
            Bytes::from(json!({"StreamName": "tls"}).to_string()),
        ))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        parse_json(&response)["StreamDescription"]["StreamName"],
        "tls"
    );
    // The record is the same over plain HTTP.
    let records = streams.read_all("tls", S0).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].2, b"secure");
}

async fn stream_metrics_counters_move(backend: Backend) {
    let streams = two_shards(backend).await;
    let requests = streams.metric("edgewise_stream_requests_total").await;
    let errors = streams.metric("edgewise_stream_errors_total").await;
    assert_eq!(streams.metric("edgewise_stream_records_in_total").await, 0);
    streams.put("s2", "a", b"12345").await;
    streams
        .ok(
            "PutRecords",
            json!({"StreamName": "s2", "Records": [{"PartitionKey": "b", "Data": b64(b"xy")}, {"PartitionKey": "c", "Data": b64(b"z")}]}),
        )
        .await;
    streams
        .err(
            "DescribeStream",
            json!({"StreamName": "none"}),
            "ResourceNotFoundException",
        )
        .await;
    assert_eq!(streams.metric("edgewise_stream_records_in_total").await, 3);
    assert_eq!(streams.metric("edgewise_stream_bytes_in_total").await, 8);
    assert_eq!(
        streams.metric("edgewise_stream_errors_total").await,
        errors + 1
    );
    assert!(streams.metric("edgewise_stream_requests_total").await >= requests + 3);
    let out_before = streams.metric("edgewise_stream_records_out_total").await;
    let n = streams.read_all("s2", S0).await.len() + streams.read_all("s2", S1).await.len();
    assert_eq!(n, 3);
    assert_eq!(
        streams.metric("edgewise_stream_records_out_total").await,
        out_before + 3
    );
    let response = streams.get("/metrics").await;
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        response
            .text()
            .contains("# TYPE edgewise_stream_requests_total counter")
    );
}

async fn stream_data_plane_accepts_stream_arn(backend: Backend) {
    let streams = two_shards(backend).await;
    let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s2";
    let out = streams
        .ok(
            "PutRecord",
            json!({"StreamARN": arn, "PartitionKey": "k", "ExplicitHashKey": "0", "Data": b64(b"by arn")}),
        )
        .await;
    assert_eq!(out["ShardId"], S0);
    let out = streams
        .ok(
            "PutRecords",
            json!({"StreamARN": arn, "Records": [{"PartitionKey": "k", "ExplicitHashKey": "1", "Data": ""}]}),
        )
        .await;
    assert_eq!(out["FailedRecordCount"], 0);
    let out = streams
        .ok(
            "GetShardIterator",
            json!({"StreamARN": arn, "ShardId": S0, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await;
    let page = streams
        .records(out["ShardIterator"].as_str().unwrap(), None)
        .await;
    assert_eq!(page["Records"].as_array().unwrap().len(), 2);
    let shards = streams.ok("ListShards", json!({ "StreamARN": arn })).await;
    assert_eq!(shards["Shards"].as_array().unwrap().len(), 2);
    for bad in [
        "arn:aws:s3:us-east-1:000000000000:stream/s2",
        "arn:aws:kinesis:us-east-1:000000000000:table/s2",
        "s2",
    ] {
        streams
            .err(
                "DescribeStreamSummary",
                json!({ "StreamARN": bad }),
                "InvalidArgumentException",
            )
            .await;
    }
    streams
        .err(
            "PutRecord",
            json!({"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/none", "PartitionKey": "k", "Data": ""}),
            "ResourceNotFoundException",
        )
        .await;
}

async fn stream_get_records_returns_at_most_10_mib(backend: Backend) {
    let streams = two_shards(backend).await;
    let mib = b64(&vec![b'm'; 1 << 20]);
    let mut seqs = Vec::new();
    for batch in [4, 4, 3] {
        let entries: Vec<Value> = (0..batch)
            .map(|_| json!({"PartitionKey": "k", "ExplicitHashKey": "0", "Data": mib}))
            .collect();
        let out = streams
            .ok(
                "PutRecords",
                json!({"StreamName": "s2", "Records": entries}),
            )
            .await;
        assert_eq!(out["FailedRecordCount"], 0);
        for r in out["Records"].as_array().unwrap() {
            seqs.push(r["SequenceNumber"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seqs.len(), 11);
    let start = streams.iterator("s2", S0, "TRIM_HORIZON", json!({})).await;
    let page = streams.records(&start, None).await;
    let records = page["Records"].as_array().unwrap();
    let bytes: usize = records
        .iter()
        .map(|r| unb64(r["Data"].as_str().unwrap()).len())
        .sum();
    assert!(
        !records.is_empty() && records.len() < 11,
        "{} records",
        records.len()
    );
    assert!(bytes <= 10 << 20, "{bytes} bytes in one GetRecords");
    assert!(
        page["MillisBehindLatest"].as_u64().is_some(),
        "{}",
        page["MillisBehindLatest"]
    );
    let rest = streams
        .records(page["NextShardIterator"].as_str().unwrap(), None)
        .await;
    let got: Vec<&str> = records
        .iter()
        .chain(rest["Records"].as_array().unwrap())
        .map(|r| r["SequenceNumber"].as_str().unwrap())
        .collect();
    assert_eq!(got, seqs);
    assert_eq!(rest["MillisBehindLatest"], 0);
}

// ------------------------------------------------------------------ internal failures

/// An internal failure's message names an incident for the server log, never a path.
fn assert_no_server_path(message: &str, data: &std::path::Path) {
    assert!(message.contains("incident"), "{message}");
    assert!(
        !message.contains('/') && !message.contains(&data.display().to_string()),
        "a server path leaks: {message}"
    );
}

#[tokio::test]
async fn stream_internal_failures_name_an_incident_not_a_server_path() {
    let streams = Streams::start(&config(
        "allow_create_streams = true\nsegment_size = \"1MiB\"",
        "[[stream.streams]]\nname = \"s\"\nshards = 1\n",
    ))
    .await;
    let data = streams.dir.path().join("data");
    // A record filling the 1 MiB segment, so the next append starts a new one...
    streams.put("s", "k", &vec![b'x'; 1 << 20]).await;
    // ...in a shard folder that is now a regular file: that fails even for root.
    let shard = data.join("streams/s/shard-000000");
    std::fs::rename(&shard, data.join("moved")).unwrap();
    std::fs::write(&shard, "").unwrap();
    let out = streams
        .ok(
            "PutRecords",
            json!({"StreamName": "s", "Records": [{"PartitionKey": "k", "Data": b64(b"y")}]}),
        )
        .await;
    assert_eq!(out["FailedRecordCount"], 1, "{out}");
    assert_eq!(out["Records"][0]["ErrorCode"], "InternalFailure");
    assert_no_server_path(out["Records"][0]["ErrorMessage"].as_str().unwrap(), &data);
    let (status, out) = streams
        .call(
            "PutRecord",
            json!({"StreamName": "s", "PartitionKey": "k", "Data": b64(b"y")}),
        )
        .await;
    assert_eq!((status, &out["__type"]), (500, &json!("InternalFailure")));
    assert_no_server_path(out["message"].as_str().unwrap(), &data);
    let response = streams.post("/ingest/s", "{\"a\":1}\n").await;
    assert_eq!(response.status, 503, "{}", response.text());
    let body = parse_json(&response);
    assert_no_server_path(body["records"][0]["error"].as_str().unwrap(), &data);
    // CreateStream builds the stream in staging/, now a file too.
    std::fs::remove_dir_all(data.join("staging")).unwrap();
    std::fs::write(data.join("staging"), "").unwrap();
    let (status, out) = streams
        .call(
            "CreateStream",
            json!({"StreamName": "new", "ShardCount": 1}),
        )
        .await;
    assert_eq!((status, &out["__type"]), (500, &json!("InternalFailure")));
    assert_no_server_path(out["message"].as_str().unwrap(), &data);
}

/// The Kinesis operations that do not create or delete streams, run once on each backend:
/// `local::<test>` and `nats::<test>` (a lone nats-server of the test's own).
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(crate::stream_harness::Backend::Local).await;
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(crate::stream_harness::Backend::Nats).await;
                }
            )*
        }
    };
}

on_both_backends!(
    stream_describe_gives_exact_hash_ranges_and_pages_shards,
    stream_describe_summary,
    stream_put_record_explicit_hash_keys,
    stream_put_record_limits_and_messages,
    stream_put_records_answers_in_request_order_with_failed_record_count,
    stream_put_records_limits,
    stream_sequence_numbers_increase_as_integers_and_are_unique,
    stream_shard_iterator_types_and_positions,
    stream_shard_iterator_errors,
    stream_get_records_limit_chaining_and_reuse,
    stream_retention_rules_and_messages,
    stream_responses_carry_request_ids_and_content_types,
    stream_cbor_round_trip,
    stream_ndjson_ingest,
    stream_metrics_counters_move,
    stream_data_plane_accepts_stream_arn,
    stream_get_records_returns_at_most_10_mib,
    stream_protocol_errors,
);
