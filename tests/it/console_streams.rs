//! The console's streams section on a real edgewise-cdn with a stream log: the streams table
//! and its charts, a delivery with its lag and files, the record browser in headless
//! Chromium (JSON pretty-printed, text as text, binary as hex, a phone's width), and
//! `/console/api/records` itself (bounds, unknown names).

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use edgewise::config::Config;
use edgewise::edge::Edge;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::browser::Browser;
use crate::console::{body_of, get, get_from, non_loopback_ip, status_of, summary};
use crate::stream_harness::{Client, https_config};

const SHARD0: &str = "shardId-000000000000";
const WAIT: Duration = Duration::from_secs(20);

/// A running edgewise-cdn with streams `logs` (2 shards) and `clicks` (1 shard, delivered to
/// `out/clicks` every 200 ms); stopped when dropped.
struct Running {
    _dir: TempDir,
    admin: SocketAddr,
    api: SocketAddr,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Running {
    async fn start() -> Running {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edgewise.toml");
        let tables = concat!(
            "[[stream.streams]]\nname = \"logs\"\nshards = 2\n\n",
            "[[stream.streams]]\nname = \"clicks\"\nshards = 1\n\n",
            "[[stream.deliveries]]\nstream = \"clicks\"\ndir = \"out/clicks\"\n",
            "buffer_size = \"1MiB\"\nbuffer_interval = \"200ms\"\n",
        );
        // Every address, so a peer that is not loopback can be tried too.
        let config = https_config("", tables).replace(
            "admin_listen = [\"127.0.0.1:0\"]",
            "admin_listen = [\"0.0.0.0:0\"]",
        );
        std::fs::write(&path, config).unwrap();
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let edge = Edge::bind(&config).unwrap_or_else(|e| panic!("bind: {e}"));
        let port = edge.cdn().unwrap().admin_addrs()[0].port();
        let admin = SocketAddr::from(([127, 0, 0, 1], port));
        let api = edge.stream().unwrap().addrs()[0];
        let stop = CancellationToken::new();
        let task = Some(tokio::spawn(edge.run(stop.clone())));
        Running {
            _dir: dir,
            admin,
            api,
            stop,
            task,
        }
    }

    /// PutRecords of `records` (partition key, data) to `stream`; all must be acknowledged.
    async fn put(&self, stream: &str, records: &[(&str, &[u8])]) {
        let entries: Vec<Value> = records
            .iter()
            .map(|(key, data)| json!({"PartitionKey": key, "Data": STANDARD.encode(data)}))
            .collect();
        let out = Client::new(self.api)
            .call(
                "PutRecords",
                &json!({"StreamName": stream, "Records": entries}),
            )
            .await
            .unwrap_or_else(|e| panic!("PutRecords: {e:?}"));
        assert_eq!(out["FailedRecordCount"], 0, "{out}");
    }

    /// `GET /console/api/records?query` from loopback: status and JSON body.
    async fn records(&self, query: &str) -> (u16, Value) {
        let response = get(self.admin, &format!("/console/api/records?{query}")).await;
        let body = serde_json::from_str(body_of(&response))
            .unwrap_or_else(|e| panic!("not JSON ({e}): {response}"));
        (status_of(&response), body)
    }

    async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Record data as the browser test puts it: a JSON object, UTF-8 text, bytes that are not
/// UTF-8.
const JSON_RECORD: &[u8] = br#"{"user":"ann","clicks":[1,2,3],"page":"/a"}"#;
const TEXT_RECORD: &str = "hello, wörld";
const BINARY_RECORD: &[u8] = &[0x00, 0x01, 0x02, 0xff, 0xfe, b'A', b'B'];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streams_section_charts_lists_deliveries_and_browses_records_in_chromium() {
    let running = Running::start().await;
    let browser = Browser::launch().await;
    let page = browser.open(&format!("http://{}/", running.admin)).await;

    // Both configured streams listed, with their shards; the first summary drawn.
    page.wait_for(
        r##"(() => {
            const rows = [...document.querySelectorAll("#stream-list tbody tr")];
            const cells = rows.map((r) => [...r.cells].slice(0, 2).map((c) => c.textContent));
            return JSON.stringify(cells) === JSON.stringify([["clicks", "1"], ["logs", "2"]]);
        })()"##,
        WAIT,
    )
    .await;
    assert_eq!(
        page.eval("document.getElementById('streams').hidden").await,
        false
    );

    // Records put now show as a rate at the next summaries.
    let keys: Vec<String> = (0..40).map(|n| format!("key-{n}")).collect();
    let lines: Vec<(&str, &[u8])> = keys
        .iter()
        .map(|k| (k.as_str(), b"a log line".as_slice()))
        .collect();
    running.put("logs", &lines).await;
    let text = TEXT_RECORD.as_bytes();
    running
        .put(
            "clicks",
            &[("k1", JSON_RECORD), ("k2", text), ("k3", BINARY_RECORD)],
        )
        .await;
    page.wait_for(
        "Edgewise.charts['streams-chart'].latest('logs') > 0 \
         && Edgewise.charts['streams-bytes-chart'].latest('logs') > 0",
        WAIT,
    )
    .await;
    page.wait_for(
        r##"document.querySelector("#stream-list tbody tr:nth-child(2)").cells[5].textContent === "40""##,
        WAIT,
    )
    .await;

    // The delivery of clicks: its folder, lag and the file it wrote.
    page.wait_for(
        r##"(() => {
            const row = document.querySelector("#delivery-list tbody tr");
            return !!row && row.cells[0].textContent === "clicks"
                && row.cells[1].textContent.endsWith("clicks")
                && row.cells[2].textContent === "caught up"
                && Number(row.cells[3].textContent) >= 1
                && row.cells[4].textContent === "3";
        })()"##,
        WAIT,
    )
    .await;

    // The record browser: clicks, its one shard, refreshed by keyboard-reachable controls.
    page.type_into("#records-stream", "clicks").await;
    assert_eq!(
        page.eval("document.getElementById('records-shard').value")
            .await,
        SHARD0
    );
    page.click("#records-refresh").await;
    page.wait_for(
        "document.querySelectorAll('#records li.record').length === 3",
        WAIT,
    )
    .await;
    let shown = page
        .eval(
            r##"[...document.querySelectorAll("#records pre.record-data")]
                .map((p) => [p.dataset.format, p.textContent])"##,
        )
        .await;
    // Newest first.
    assert_eq!(shown[0][0], "hex", "{shown}");
    assert!(
        shown[0][1]
            .as_str()
            .unwrap()
            .starts_with("0000  00 01 02 ff fe 41 42"),
        "{shown}"
    );
    assert_eq!(shown[1], json!(["text", TEXT_RECORD]), "{shown}");
    // JSON.stringify's two-space indentation, members in their order.
    let pretty = "{\n  \"user\": \"ann\",\n  \"clicks\": [\n    1,\n    2,\n    3\n  ],\n  \"page\": \"/a\"\n}";
    assert_eq!(shown[2], json!(["json", pretty]), "{shown}");
    let meta = page
        .eval("document.querySelector('#records li.record:last-child .record-meta').textContent")
        .await;
    let meta = meta.as_str().unwrap();
    assert!(meta.contains("Partition keyk1"), "{meta}");
    assert!(
        meta.contains(&format!("Size{} B", JSON_RECORD.len())),
        "{meta}"
    );
    let status = page
        .eval("document.getElementById('records-status').textContent")
        .await;
    assert!(
        status
            .as_str()
            .unwrap()
            .starts_with("The latest 3 records of clicks"),
        "{status}"
    );

    // "Latest 2" shows the two newest.
    page.type_into("#records-limit", "2").await;
    page.click("#records-refresh").await;
    page.wait_for(
        "document.querySelectorAll('#records li.record').length === 2",
        WAIT,
    )
    .await;

    // A long JSON record on a phone: the page does not scroll sideways, the record does.
    let long = json!({"path": "/".repeat(300), "note": "x".repeat(500)}).to_string();
    running.put("clicks", &[("k4", long.as_bytes())]).await;
    page.viewport(390, 800, true).await;
    page.set_dark(true).await;
    page.click("#records-refresh").await;
    page.wait_for(
        "document.querySelector('#records pre.record-data').textContent.includes('xxxx')",
        WAIT,
    )
    .await;
    let fits = page
        .eval(
            "document.documentElement.scrollWidth <= window.innerWidth \
             && document.querySelector('#records pre.record-data').scrollWidth \
                > document.querySelector('#records pre.record-data').clientWidth",
        )
        .await;
    assert_eq!(fits, true, "the page must fit a 390 px phone");
    page.assert_no_errors();

    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_records_endpoint_is_bounded_and_names_what_it_cannot_find() {
    let running = Running::start().await;
    let big = vec![b'z'; 100 << 10];
    running
        .put(
            "clicks",
            &[
                ("a", b"first"),
                ("b", b"second"),
                ("c", &big),
                ("d", b"last"),
            ],
        )
        .await;

    // The latest two, oldest first, with their sequence numbers and sizes.
    let (status, body) = running
        .records(&format!("stream=clicks&shard={SHARD0}&limit=2"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["first_offset"].as_u64(), body["next_offset"].as_u64()),
        (Some(0), Some(4))
    );
    let records = body["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{body}");
    assert_eq!(records[0]["partition_key"], "c");
    assert_eq!(records[0]["size"], 100 << 10);
    // Only the first 4 KiB of the big record's data is sent.
    let data = STANDARD
        .decode(records[0]["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, vec![b'z'; 4096]);
    assert_eq!(records[1]["partition_key"], "d");
    assert_eq!(
        STANDARD
            .decode(records[1]["data"].as_str().unwrap())
            .unwrap(),
        b"last"
    );
    assert_eq!(records[1]["offset"], 3);
    assert_eq!(
        records[1]["sequence_number"],
        ((1u128 << 64) | 3).to_string()
    );
    assert!(records[1]["arrival_ms"].as_u64().unwrap() > 1_600_000_000_000);

    // Limits are clamped to 1..=100; without one, 20.
    let (_, body) = running
        .records(&format!("stream=clicks&shard={SHARD0}&limit=100000"))
        .await;
    assert_eq!(
        (
            body["limit"].as_u64(),
            body["records"].as_array().unwrap().len()
        ),
        (Some(100), 4)
    );
    let (_, body) = running
        .records(&format!("stream=clicks&shard={SHARD0}&limit=0"))
        .await;
    assert_eq!(body["records"].as_array().unwrap().len(), 1);
    assert_eq!(body["records"][0]["partition_key"], "d");
    let (_, body) = running
        .records(&format!("stream=clicks&shard={SHARD0}"))
        .await;
    assert_eq!(body["limit"], 20);
    // An empty shard answers an empty list.
    let (status, body) = running
        .records("stream=logs&shard=shardId-000000000001")
        .await;
    assert_eq!(
        (status, body["records"].clone()),
        (200, json!([])),
        "{body}"
    );

    // Unknown names are 404 and say what is missing; a malformed query is 400.
    let (status, body) = running
        .records(&format!("stream=nope&shard={SHARD0}"))
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body["message"].as_str().unwrap().contains("nope"), "{body}");
    let (status, body) = running
        .records("stream=logs&shard=shardId-000000000002")
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("shardId-000000000001"),
        "names the shards there are: {body}"
    );
    for bad in [
        "stream=logs",
        "stream=logs&shard=shardId-000000000000&limit=ten",
    ] {
        let (status, body) = running.records(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["message"].is_string(), "{bad}: {body}");
    }

    // The summary carries what the table and charts show.
    let json = summary(running.admin).await;
    let clicks = &json["streams"][0];
    assert_eq!(clicks["name"], "clicks", "{json}");
    assert_eq!(clicks["records_in"], 4, "{json}");
    assert_eq!(clicks["bytes_in"], 5 + 6 + (100 << 10) + 4, "{json}");
    assert_eq!(clicks["retained"], 4, "{json}");
    assert_eq!(
        clicks["deliveries"][0]["dir"]
            .as_str()
            .map(|d| d.ends_with("clicks")),
        Some(true)
    );
    assert!(clicks["deliveries"][0]["millis_behind"].is_u64(), "{json}");
    assert_eq!(json["streams"][1]["deliveries"], json!([]), "{json}");

    // From elsewhere, the records need the admin token, as the summary does.
    if let Some(ip) = non_loopback_ip() {
        let to = SocketAddr::new(ip, running.admin.port());
        let path = format!("/console/api/records?stream=clicks&shard={SHARD0}");
        let response = get_from(Some(SocketAddr::new(ip, 0)), to, &path).await;
        assert_eq!(status_of(&response), 401, "from {ip}: {response}");
    } else {
        eprintln!("no non-loopback address on this host: only loopback access is tested");
    }
    running.stop().await;
}
