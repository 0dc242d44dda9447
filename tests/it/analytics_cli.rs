//! `edgewise-cdn sql` against the real binary: the query goes to the running process's
//! stream API, signed with the configured access key, and its rows are printed.

use std::process::Command;
use std::time::SystemTime;

use bytes::Bytes;
use edgewise::config::stream::AccessKey;
use edgewise::stream::api::sigv4;
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::Full;

use crate::cdn_harness::exchange;
use crate::stream_process::{BIN, Server};

const KEY_ID: &str = "AKIDANALYTICS";
const SECRET: &str = "analytics-secret-key";

fn config(port: u16) -> String {
    format!(
        r#"[stream]
listen = ["127.0.0.1:{port}"]
data_dir = "data"
access_keys = [{{ id = "{KEY_ID}", secret = "{SECRET}" }}]
[[stream.streams]]
name = "orders"

[analytics]
[[analytics.inputs]]
stream = "orders"
format = "json"
columns = [{{ name = "item", type = "VARCHAR" }}, {{ name = "qty", type = "INTEGER" }}]
"#
    )
}

/// PutRecord of `data`, signed as an SDK would.
async fn put(server: &Server, data: &str) {
    let body = serde_json::json!({
        "StreamName": "orders",
        "PartitionKey": "k",
        "Data": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, data),
    })
    .to_string();
    let mut headers = HeaderMap::new();
    headers.insert(
        "host",
        HeaderValue::from_str(&server.addr.to_string()).unwrap(),
    );
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    headers.insert(
        "x-amz-target",
        HeaderValue::from_static("Kinesis_20131202.PutRecord"),
    );
    let key = AccessKey {
        id: KEY_ID.to_string(),
        secret: SECRET.to_string(),
    };
    sigv4::sign(
        "POST",
        "/",
        &mut headers,
        body.as_bytes(),
        &key,
        "us-east-1",
        SystemTime::now(),
    );
    let mut request = Request::post("/")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    *request.headers_mut() = headers;
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let response = exchange(tcp, false, request).await.unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
}

fn sql(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("sql")
        .args(args)
        .output()
        .expect("run edgewise-cdn sql")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_prints_the_rows_of_the_running_process() {
    let dir = tempfile::tempdir().unwrap();
    let [port] = crate::pebble::free_ports::<1>();
    let path = dir.path().join("edgewise.toml");
    std::fs::write(&path, config(port)).unwrap();
    let server = Server::start(&path);
    put(&server, r#"{"item": "apple", "qty": 3}"#).await;
    put(&server, r#"{"item": "pear", "qty": 5}"#).await;

    let output = sql(&path, &["SELECT item, qty FROM orders ORDER BY qty DESC"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout, "item,qty\npear,5\napple,3\n");

    let output = sql(
        &path,
        &["--format", "json", "SELECT sum(qty) AS total FROM orders"],
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["rows"], serde_json::json!([{"total": 8}]));

    let output = sql(&path, &["SELECT nope FROM orders"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("400") && stderr.contains("nope"),
        "{stderr}"
    );
}

#[test]
fn sql_says_when_nothing_is_running() {
    let dir = tempfile::tempdir().unwrap();
    let [port] = crate::pebble::free_ports::<1>();
    let path = dir.path().join("edgewise.toml");
    std::fs::write(&path, config(port)).unwrap();
    let output = sql(&path, &["SELECT 1"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is edgewise-cdn running?"), "{stderr}");
}
