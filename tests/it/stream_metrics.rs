//! The stream API's `GET /metrics` through real Kinesis calls: records and bytes in and out
//! per stream and shard, the put latency histograms, fsyncs and group-commit batch sizes.

use futures_util::future::join_all;
use serde_json::json;

use crate::stream_harness::*;

const S0: &str = "shardId-000000000000";
const S1: &str = "shardId-000000000001";

/// Stream "s2" of two shards, every append synced before it is acknowledged.
async fn synced() -> Streams {
    let toml = with_stream("s2", 2).replace(
        "fsync = \"interval\"\nfsync_interval = \"20ms\"",
        "fsync = \"always\"",
    );
    assert!(toml.contains("fsync = \"always\""));
    Streams::start(&toml).await
}

fn series(name: &str, shard: &str) -> String {
    format!("{name}{{stream=\"s2\",shard=\"{shard}\"}}")
}

#[tokio::test]
async fn records_bytes_latency_and_fsyncs_per_shard() {
    let streams = synced().await;
    // ExplicitHashKey 0 is in shard 0, the largest hash in shard 1.
    streams
        .ok(
            "PutRecords",
            json!({"StreamName": "s2", "Records": [
                {"PartitionKey": "a", "ExplicitHashKey": "0", "Data": b64(b"ab")},
                {"PartitionKey": "b", "ExplicitHashKey": "0", "Data": b64(b"cde")},
                {"PartitionKey": "c", "ExplicitHashKey": MAX_HASH, "Data": b64(b"f")},
            ]}),
        )
        .await;
    streams
        .ok(
            "PutRecord",
            json!({"StreamName": "s2", "PartitionKey": "d", "ExplicitHashKey": "0", "Data": b64(b"hello")}),
        )
        .await;
    let metric = |name: &str, shard: &str| {
        let series = series(name, shard);
        let streams = &streams;
        async move { streams.metric(&series).await }
    };
    assert_eq!(metric("edgewise_stream_records_in_total", S0).await, 3);
    assert_eq!(metric("edgewise_stream_bytes_in_total", S0).await, 10);
    assert_eq!(metric("edgewise_stream_records_in_total", S1).await, 1);
    assert_eq!(metric("edgewise_stream_bytes_in_total", S1).await, 1);
    assert_eq!(streams.metric("edgewise_stream_records_in_total").await, 4);
    for operation in ["PutRecords", "PutRecord"] {
        let count =
            format!("edgewise_stream_put_latency_seconds_count{{operation=\"{operation}\"}}");
        assert_eq!(streams.metric(&count).await, 1, "{count}");
    }
    // Two appends one after the other on shard 0: two writes, each synced.
    assert_eq!(metric("edgewise_stream_fsyncs_total", S0).await, 2);
    assert_eq!(metric("edgewise_stream_fsyncs_total", S1).await, 1);
    assert_eq!(
        metric("edgewise_stream_group_commit_appends_count", S0).await,
        2
    );
    assert_eq!(
        metric("edgewise_stream_group_commit_appends_sum", S0).await,
        2
    );

    assert_eq!(metric("edgewise_stream_records_out_total", S0).await, 0);
    assert_eq!(streams.read_all("s2", S0).await.len(), 3);
    assert_eq!(metric("edgewise_stream_records_out_total", S0).await, 3);
    assert_eq!(metric("edgewise_stream_bytes_out_total", S0).await, 10);
    assert_eq!(metric("edgewise_stream_records_out_total", S1).await, 0);
}

#[tokio::test]
async fn concurrent_puts_share_fsyncs_and_the_histogram_says_how_many() {
    let streams = synced().await;
    let puts = (0..40).map(|i| {
        streams.ok(
            "PutRecord",
            json!({"StreamName": "s2", "PartitionKey": format!("k{i}"), "ExplicitHashKey": "0", "Data": b64(b"x")}),
        )
    });
    join_all(puts).await;
    let commits = streams
        .metric(&series("edgewise_stream_group_commit_appends_count", S0))
        .await;
    assert_eq!(
        streams
            .metric(&series("edgewise_stream_group_commit_appends_sum", S0))
            .await,
        40
    );
    assert!((1..=40).contains(&commits), "{commits} writes");
    assert_eq!(
        streams
            .metric(&series("edgewise_stream_fsyncs_total", S0))
            .await,
        commits,
        "one fdatasync per write"
    );
    assert_eq!(
        streams
            .metric("edgewise_stream_put_latency_seconds_count{operation=\"PutRecord\"}")
            .await,
        40
    );
    let text = streams.get("/metrics").await.text();
    for family in [
        "# TYPE edgewise_stream_put_latency_seconds histogram",
        "# TYPE edgewise_stream_group_commit_appends histogram",
        "# TYPE edgewise_delivery_millis_behind_latest gauge",
        "# TYPE edgewise_delivery_files_total counter",
    ] {
        assert!(text.lines().any(|l| l == family), "{family} in:\n{text}");
    }
}

/// edgewise-cdn with both sides: the CDN admin listener's one scrape has the stream metrics.
#[tokio::test]
async fn the_admin_listener_serves_the_stream_metrics_too() {
    use edgewise::config::Config;
    use edgewise::edge::Edge;
    use http::Request;
    use http_body_util::Full;
    use tokio_util::sync::CancellationToken;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edgewise.toml");
    let toml = https_config("", "[[stream.streams]]\nname = \"logs\"\nshards = 1\n");
    std::fs::write(&path, toml).unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let edge = Edge::bind(&config).unwrap_or_else(|e| panic!("bind: {e}"));
    let admin = edge.cdn().unwrap().admin_addrs()[0];
    let token = CancellationToken::new();
    let running = tokio::spawn(edge.run(token.clone()));
    let request = Request::get("/metrics")
        .header("host", "localhost")
        .body(Full::default())
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(admin).await.unwrap();
    let response = within(exchange(tcp, false, request)).await.unwrap();
    assert_eq!(response.status, 200);
    let text = response.text();
    for line in [
        "# TYPE edgewise_cdn_requests_total counter",
        "# TYPE edgewise_stream_requests_total counter",
        "edgewise_stream_records_in_total{stream=\"logs\",shard=\"shardId-000000000000\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    token.cancel();
    running.await.unwrap();
}
