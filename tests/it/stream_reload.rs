//! edgewise-cdn's reload applies `[stream]` with `[cdn]`: a stream added to the config takes
//! PutRecord at once, one removed keeps its data (and is managed through the API), retention
//! changes apply; a new delivery writes files, a removed one flushes and stops, an unchanged
//! one runs on; settings fixed at start are refused, and then nothing changes, the CDN
//! included.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use edgewise::config::Config;
use edgewise::edge::Edge;
use edgewise::stream::log::Log;
use http::{Method, Request};
use http_body_util::Full;
use serde_json::{Value, json};
use std::sync::Arc;
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::cdn_harness::{ADMIN_TOKEN, exchange, within};
use crate::dns_routing::eventually;
use crate::stream_delivery::delivery_files;
use crate::stream_harness::{Client, b64};

const HOUR: Duration = Duration::from_secs(3600);

/// The whole process config: a CDN with its admin API, and `[stream]` with `tables`.
fn config(distributions: &str, tables: &str) -> String {
    let cdn = crate::cdn_harness::config(
        "",
        &format!(
            "{}{distributions}",
            crate::cdn_harness::site("http://127.0.0.1:9", "")
        ),
    );
    format!("{}\n{cdn}", crate::stream_harness::config("", tables))
}

/// `[[stream.streams]]` of one shard, with `retention`.
fn stream(name: &str, retention: &str) -> String {
    format!("[[stream.streams]]\nname = \"{name}\"\nshards = 1\nretention = \"{retention}\"\n")
}

/// `[[stream.deliveries]]` of `stream` into `dir`, flushed every `interval`.
fn delivery(stream: &str, dir: &str, interval: &str) -> String {
    format!(
        "[[stream.deliveries]]\nstream = \"{stream}\"\ndir = \"{dir}\"\nbuffer_interval = \"{interval}\"\n"
    )
}

/// edgewise-cdn in-process: CDN and stream API from one file, reloaded by `POST /reload`.
struct Process {
    dir: TempDir,
    admin: SocketAddr,
    api: SocketAddr,
    log: Arc<Log>,
    token: CancellationToken,
}

impl Drop for Process {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl Process {
    async fn start(toml: &str) -> Process {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("edgewise.toml");
        std::fs::write(&path, toml).expect("write the config");
        let config = Config::load(&path).unwrap_or_else(|e| panic!("the config loads:\n{e}"));
        let mut edge = Edge::bind(&config).unwrap_or_else(|e| panic!("bind: {e}"));
        edge.reload_from(path);
        let cdn = edge.cdn().expect("a CDN");
        let admin = *cdn.admin_addrs().first().expect("an admin listener");
        let stream = edge.stream().expect("a stream API");
        let api = *stream.addrs().first().expect("a stream listener");
        let log = stream.log().clone();
        let token = CancellationToken::new();
        tokio::spawn(edge.run(token.clone()));
        Process {
            dir,
            admin,
            api,
            log,
            token,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Rewrites the config and reloads it: the status and the JSON answer.
    async fn reload(&self, toml: &str) -> (u16, Value) {
        std::fs::write(self.path("edgewise.toml"), toml).expect("rewrite the config");
        let request = Request::builder()
            .method(Method::POST)
            .uri("/reload")
            .header("host", self.admin.to_string())
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .body(Full::new(Bytes::new()))
            .expect("a request");
        let admin = self.admin;
        let response = within(async move {
            let tcp = TcpStream::connect(admin).await.map_err(|e| e.to_string())?;
            exchange(tcp, false, request).await
        })
        .await
        .unwrap_or_else(|e| panic!("POST /reload: {e}"));
        let body = serde_json::from_slice(&response.body)
            .unwrap_or_else(|e| panic!("a JSON answer ({e}): {}", response.text()));
        (response.status, body)
    }

    /// The changes of a reload that must succeed.
    async fn reload_ok(&self, toml: &str) -> Value {
        let (status, body) = self.reload(toml).await;
        assert_eq!(status, 200, "{body:#}");
        body["changes"].clone()
    }

    /// PutRecord: `Ok(sequence number)` or the error's `__type`.
    async fn put(&self, stream: &str, data: &str) -> Result<String, String> {
        let body = json!({"StreamName": stream, "PartitionKey": "k", "Data": b64(data.as_bytes())});
        match Client::new(self.api).call("PutRecord", &body).await {
            Ok(out) => Ok(out["SequenceNumber"]
                .as_str()
                .unwrap_or_default()
                .to_owned()),
            Err(Ok(error)) => Err(error.body["__type"].as_str().unwrap_or_default().to_owned()),
            Err(Err(e)) => panic!("PutRecord to {stream}: {e}"),
        }
    }

    /// Records delivered into folder `rel` so far (one NDJSON line each).
    fn delivered(&self, rel: &str) -> usize {
        delivery_files(&self.path(rel))
            .iter()
            .map(|file| {
                let text = std::fs::read_to_string(self.path(rel).join(file))
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                text.lines().count()
            })
            .sum()
    }

    async fn wait_delivered(&self, rel: &str, want: usize) {
        eventually(&format!("{want} records delivered into {rel}"), || async {
            match self.delivered(rel) {
                got if got == want => Ok(()),
                got => Err(format!("{got} records")),
            }
        })
        .await;
    }
}

fn names(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("a list: {value}"))
        .iter()
        .map(|v| v.as_str().expect("a name").to_owned())
        .collect()
}

/// `stream -> <folder>` as the reload's answer names a delivery.
fn delivery_name(process: &Process, stream: &str, rel: &str) -> String {
    format!("{stream} -> {}", process.path(rel).display())
}

fn stream_dir(process: &Process, name: &str) -> PathBuf {
    process.path("data/streams").join(name)
}

fn exists(path: &Path) -> bool {
    path.try_exists().expect("a readable path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_added_on_reload_takes_puts_and_a_removed_one_keeps_its_data() {
    let process = Process::start(&config("", &stream("old", "24h"))).await;
    process.put("old", "kept").await.expect("old takes puts");
    assert_eq!(
        process.put("new", "x").await,
        Err("ResourceNotFoundException".into())
    );

    let changes = process.reload_ok(&config("", &stream("new", "24h"))).await;
    assert_eq!(
        names(&changes["stream"]["streams"]["added"]),
        ["new"],
        "{changes:#}"
    );
    assert_eq!(
        names(&changes["stream"]["streams"]["removed"]),
        ["old"],
        "{changes:#}"
    );
    process.put("new", "fresh").await.expect("new takes puts");

    // Out of the config, "old" stays: data on disk, still served, now the API's to manage.
    assert!(exists(&stream_dir(&process, "old")));
    let old = process.log.get("old").expect("old is still open");
    assert!(!old.configured());
    assert_eq!(
        old.shards()[0].next_offset(),
        1,
        "its record is still there"
    );
    assert!(process.put("old", "more").await.is_ok());

    let changes = process.reload_ok(&config("", &stream("new", "48h"))).await;
    assert_eq!(
        names(&changes["stream"]["streams"]["retention_changed"]),
        ["new"],
        "{changes:#}"
    );
    assert_eq!(process.log.get("new").expect("new").retention(), 48 * HOUR);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_delivery_writes_files_a_removed_one_flushes_and_stops_an_unchanged_one_runs_on() {
    let streams = stream("s", "24h");
    // "slow" would hold its records for 300 s; "kept" flushes at once.
    let before = format!(
        "{streams}{}{}",
        delivery("s", "out/slow", "300s"),
        delivery("s", "out/kept", "1ms")
    );
    let process = Process::start(&config("", &before)).await;
    for n in 0..3 {
        process.put("s", &format!("r{n}")).await.expect("put");
    }
    process.wait_delivered("out/kept", 3).await;
    assert_eq!(process.delivered("out/slow"), 0, "still buffered");

    let after = format!(
        "{streams}{}{}",
        delivery("s", "out/kept", "1ms"),
        delivery("s", "out/new", "1ms")
    );
    let changes = process.reload_ok(&config("", &after)).await;
    let deliveries = &changes["stream"]["deliveries"];
    assert_eq!(
        names(&deliveries["stopped"]),
        [delivery_name(&process, "s", "out/slow")],
        "{changes:#}"
    );
    assert_eq!(
        names(&deliveries["started"]),
        [delivery_name(&process, "s", "out/new")],
        "{changes:#}"
    );
    assert_eq!(deliveries["unchanged"], 1, "{changes:#}");
    // The reload answered once the removed delivery had flushed its buffer.
    assert_eq!(process.delivered("out/slow"), 3);
    process.wait_delivered("out/new", 3).await;

    for n in 3..5 {
        process.put("s", &format!("r{n}")).await.expect("put");
    }
    process.wait_delivered("out/new", 5).await;
    process.wait_delivered("out/kept", 5).await;
    assert_eq!(
        process.delivered("out/slow"),
        3,
        "the removed delivery stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_fixed_at_start_are_refused_and_nothing_changes_the_cdn_included() {
    let process = Process::start(&config("", &stream("s", "24h"))).await;
    let more = r#"
[[cdn.distributions]]
id = "more"
hosts = ["more.test"]
[[cdn.distributions.origins]]
id = "app"
url = "http://127.0.0.1:9"
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#;
    let with_new_stream = format!("{}{}", stream("s", "24h"), stream("t", "24h"));
    let refused =
        config(more, &with_new_stream).replace("fsync = \"interval\"", "fsync = \"always\"");
    let (status, body) = process.reload(&refused).await;
    assert_eq!(status, 400, "{body:#}");
    let message = body["errors"][0].as_str().expect("a reason");
    assert!(
        message.contains("stream.fsync") && message.contains("restart"),
        "{message}"
    );
    assert!(process.log.get("t").is_none(), "no stream was created");

    let mismatch = config(
        more,
        &stream("s", "24h").replace("shards = 1", "shards = 2"),
    );
    let (status, body) = process.reload(&mismatch).await;
    assert_eq!(status, 400, "{body:#}");
    let message = body["errors"][0].as_str().expect("a reason");
    assert!(
        message.contains("stream \"s\" has 1 shards on disk but 2 in the config"),
        "{message}"
    );

    // Neither refused reload applied its CDN part: "more" is new to this one.
    let changes = process.reload_ok(&config(more, &with_new_stream)).await;
    assert_eq!(names(&changes["added"]), ["more"], "{changes:#}");
    assert_eq!(
        names(&changes["stream"]["streams"]["added"]),
        ["t"],
        "{changes:#}"
    );
    process.put("t", "x").await.expect("t takes puts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_api_moves_to_a_new_address_and_a_taken_one_refuses_the_reload() {
    let process = Process::start(&config("", &stream("s", "24h"))).await;
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let taken = held.local_addr().expect("its address");
    let blocked = config("", &format!("{}{}", stream("s", "24h"), stream("t", "24h"))).replacen(
        r#"listen = ["127.0.0.1:0"]"#,
        &format!(r#"listen = ["127.0.0.1:0", "{taken}"]"#),
        1,
    );
    let (status, body) = process.reload(&blocked).await;
    assert_eq!(status, 400, "{body:#}");
    let message = body["errors"][0].as_str().expect("a reason");
    assert!(
        message.contains("stream.listen[1]") && message.contains(&format!("cannot bind {taken}")),
        "{message}"
    );
    assert!(process.log.get("t").is_none(), "nothing of it applied");

    let moved = config("", &stream("s", "24h")).replacen(
        r#"listen = ["127.0.0.1:0"]"#,
        r#"listen = ["127.0.0.2:0"]"#,
        1,
    );
    let (status, body) = process.reload(&moved).await;
    assert_eq!(status, 200, "{body:#}");
    let removed = json!(format!("listener stream API http {} removed", process.api));
    assert!(
        body["changed"]
            .as_array()
            .is_some_and(|l| l.contains(&removed)),
        "{body:#}"
    );
    let changes = &body["changes"];
    let listeners = &changes["stream"]["listeners"];
    assert_eq!(
        listeners["removed"],
        json!([format!("stream API http {}", process.api)]),
        "{changes:#}"
    );
    let new: SocketAddr = listeners["added"][0]
        .as_str()
        .and_then(|l| l.strip_prefix("stream API http "))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("an added listener: {changes:#}"));
    assert!(
        TcpStream::connect(process.api).await.is_err(),
        "the old address still accepts"
    );
    let body = json!({"StreamName": "s", "PartitionKey": "k", "Data": b64(b"moved")});
    let out = Client::new(new)
        .call("PutRecord", &body)
        .await
        .unwrap_or_else(|e| panic!("PutRecord at the new address: {e:?}"));
    assert_eq!(out["ShardId"], "shardId-000000000000");
}
