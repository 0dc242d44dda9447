//! Stream API test harness: a [`StreamServer`] in-process from TOML text (data in a temp
//! folder, listeners on 127.0.0.1:0), a restart on the same data, and small Kinesis clients:
//! JSON 1.1 and CBOR 1.1 over HTTP/1.1 (one connection per request), unsigned, which the
//! server accepts from loopback when no access keys are configured.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use edgewise::config::{CdnConfig, Config, StreamConfig};
use edgewise::stream::StreamServer;
use edgewise::stream::log::Log;
use http::{Method, Request};
use http_body_util::Full;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::cdn_harness::{Resp, TIMEOUT, exchange, within};

pub const JSON: &str = "application/x-amz-json-1.1";
pub const CBOR: &str = "application/x-amz-cbor-1.1";
/// 2^128 - 1, the largest hash key.
pub const MAX_HASH: &str = "340282366920938463463374607431768211455";
/// The boundary of two even shards: shard 0 ends here, shard 1 starts one above.
pub const HALF_END: &str = "170141183460469231731687303715884105727";
pub const HALF_START: &str = "170141183460469231731687303715884105728";

// ------------------------------------------------------------------ config

/// `[stream]` with one HTTP listener, data in `data/`, API stream management on, the extra
/// `[stream]` keys `keys`, then `tables` (`[[stream.streams]]` and the like).
pub fn config(keys: &str, tables: &str) -> String {
    format!(
        r#"[stream]
listen = ["127.0.0.1:0"]
data_dir = "data"
fsync = "interval"
fsync_interval = "20ms"
{keys}

{tables}"#
    )
}

/// `allow_create_streams = true` plus a configured stream `name` of `shards` shards.
pub fn with_stream(name: &str, shards: u32) -> String {
    config(
        "allow_create_streams = true",
        &format!("[[stream.streams]]\nname = \"{name}\"\nshards = {shards}\n"),
    )
}

/// [`config`] plus an HTTPS listener, and a `[cdn]` whose generated certificate it uses.
pub fn https_config(keys: &str, tables: &str) -> String {
    let cdn = crate::cdn_harness::config("", &crate::cdn_harness::site("http://127.0.0.1:9", ""));
    format!(
        "{}\n{cdn}",
        config(&format!("https_listen = [\"127.0.0.1:0\"]\n{keys}"), tables)
    )
}

// ------------------------------------------------------------------ the server

/// The stream API under test; cancelled when dropped.
pub struct Streams {
    pub dir: TempDir,
    pub http: SocketAddr,
    pub https: Option<SocketAddr>,
    token: CancellationToken,
    handle: Option<JoinHandle<()>>,
    log: Arc<Log>,
    roots: Option<Arc<RootCertStore>>,
}

impl Drop for Streams {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

fn load(dir: &TempDir) -> (StreamConfig, Option<CdnConfig>) {
    let path = dir.path().join("edgewise.toml");
    match Config::load(&path) {
        Ok(config) => (
            config
                .stream
                .expect("the test config has a [stream] section"),
            config.cdn,
        ),
        Err(errors) => panic!("the test config should load, but:\n{errors}"),
    }
}

impl Streams {
    /// Writes `toml` as `edgewise.toml` in a temp folder and runs the stream API from it.
    pub async fn start(toml: &str) -> Streams {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("edgewise.toml"), toml).unwrap();
        Self::run_in(dir)
    }

    fn run_in(dir: TempDir) -> Streams {
        let (stream, cdn) = load(&dir);
        let server = StreamServer::bind(&stream, cdn.as_ref())
            .unwrap_or_else(|e| panic!("stream bind: {e}"));
        let roots = cdn.filter(|_| !stream.https_listen.is_empty()).map(|cdn| {
            let mut roots = RootCertStore::empty();
            for files in &cdn.certs {
                for cert in crate::cdn_harness::read_certs(&files.cert) {
                    roots.add(cert).expect("a usable test certificate");
                }
            }
            Arc::new(roots)
        });
        let http = *server.addrs().first().expect("an HTTP listener");
        let https = server.https_addrs().first().copied();
        let log = server.log().clone();
        let token = CancellationToken::new();
        let handle = tokio::spawn(server.run(token.clone()));
        Streams {
            dir,
            http,
            https,
            token,
            handle: Some(handle),
            log,
            roots,
        }
    }

    /// Stops the server (drain, then close the log) and starts it again on the same data
    /// folder, with the config file as it is now (tests may rewrite it in between).
    pub async fn restart(mut self) -> Streams {
        self.stop().await;
        let dir = tempfile::tempdir().expect("placeholder temp dir");
        let data = std::mem::replace(&mut self.dir, dir);
        drop(self);
        Self::run_in(data)
    }

    /// Cancels the server, waits for it, and closes the log.
    pub async fn stop(&mut self) {
        self.token.cancel();
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(TIMEOUT * 2, handle)
                .await
                .expect("the stream server stops in time")
                .expect("the stream server task");
        }
        tokio::time::timeout(TIMEOUT, self.log.close())
            .await
            .expect("the log closes in time")
            .expect("the log closes cleanly");
    }

    pub fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("edgewise.toml")
    }

    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    // -------------------------------------------------------------- requests

    /// Any request to the HTTP listener; panics on transport errors or after [`TIMEOUT`].
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Resp {
        let what = format!("{} {}", request.method(), request.uri());
        let addr = self.http;
        within(async move {
            let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            exchange(tcp, false, request).await
        })
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// The same over HTTPS, verifying the server's certificate for `localhost`.
    pub async fn send_tls(&self, request: Request<Full<Bytes>>) -> Result<Resp, String> {
        let addr = self.https.expect("an HTTPS listener");
        let roots = self.roots.clone().expect("certificates for HTTPS");
        within(async move {
            let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            exchange(tls, false, request).await
        })
        .await
    }

    /// A Kinesis request with `content_type` and `X-Amz-Target: Kinesis_20131202.<op>`.
    pub async fn raw(&self, op: &str, content_type: &str, body: impl Into<Bytes>) -> Resp {
        self.send(kinesis_request(self.http, op, content_type, body.into()))
            .await
    }

    /// A JSON 1.1 call: the status and the parsed body (`Null` when the body is empty).
    pub async fn call(&self, op: &str, body: Value) -> (u16, Value) {
        let response = self.raw(op, JSON, body.to_string()).await;
        (response.status, parse_json(&response))
    }

    /// A JSON call that must succeed; its output.
    pub async fn ok(&self, op: &str, body: Value) -> Value {
        let (status, out) = self.call(op, body.clone()).await;
        assert_eq!(status, 200, "{op} {body} answered {out}");
        out
    }

    /// A JSON call that must fail with HTTP 400 and `code`; its message.
    pub async fn err(&self, op: &str, body: Value, code: &str) -> String {
        let (status, out) = self.call(op, body.clone()).await;
        assert_eq!(
            (status, out["__type"].as_str()),
            (400, Some(code)),
            "{op} {body} answered {out}"
        );
        out["message"].as_str().unwrap_or_default().to_owned()
    }

    /// A CBOR 1.1 call: the status and the decoded body (`Null` when empty).
    pub async fn call_cbor(&self, op: &str, body: ciborium::Value) -> (u16, ciborium::Value) {
        let mut bytes = Vec::new();
        ciborium::into_writer(&body, &mut bytes).unwrap();
        let response = self.raw(op, CBOR, bytes).await;
        assert_eq!(response.header("content-type"), Some(CBOR), "{op}");
        let value = if response.body.is_empty() {
            ciborium::Value::Null
        } else {
            ciborium::from_reader(response.body.as_ref())
                .unwrap_or_else(|e| panic!("{op}: a CBOR body: {e}"))
        };
        (response.status, value)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Resp {
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header("host", self.http.to_string())
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.send(request).await
    }

    /// `POST path` with `body`.
    pub async fn post(&self, path: &str, body: impl Into<Bytes>) -> Resp {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("host", self.http.to_string())
            .header("content-type", "application/x-ndjson")
            .body(Full::new(body.into()))
            .unwrap();
        self.send(request).await
    }

    /// A counter's value from `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let response = self.get("/metrics").await;
        assert_eq!(response.status, 200);
        let text = response.text();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no counter {name} in /metrics:\n{text}"))
    }

    // -------------------------------------------------------------- Kinesis helpers

    pub async fn create(&self, name: &str, shards: u32) {
        let out = self
            .ok(
                "CreateStream",
                json!({"StreamName": name, "ShardCount": shards}),
            )
            .await;
        assert_eq!(out, Value::Null, "CreateStream has no output");
    }

    /// PutRecord of `data` with `key`; (shard id, sequence number).
    pub async fn put(&self, stream: &str, key: &str, data: &[u8]) -> (String, String) {
        let out = self
            .ok(
                "PutRecord",
                json!({"StreamName": stream, "PartitionKey": key, "Data": b64(data)}),
            )
            .await;
        (
            out["ShardId"].as_str().unwrap().to_owned(),
            out["SequenceNumber"].as_str().unwrap().to_owned(),
        )
    }

    /// A shard iterator of `kind` (extra members in `extra`, an object).
    pub async fn iterator(&self, stream: &str, shard: &str, kind: &str, extra: Value) -> String {
        let mut body = json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": kind});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let out = self.ok("GetShardIterator", body).await;
        out["ShardIterator"].as_str().unwrap().to_owned()
    }

    /// GetRecords once.
    pub async fn records(&self, iterator: &str, limit: Option<u32>) -> Value {
        let mut body = json!({ "ShardIterator": iterator });
        if let Some(limit) = limit {
            body["Limit"] = json!(limit);
        }
        self.ok("GetRecords", body).await
    }

    /// Every record of a shard from TRIM_HORIZON: (sequence number, partition key, data).
    pub async fn read_all(&self, stream: &str, shard: &str) -> Vec<(String, String, Vec<u8>)> {
        let mut iterator = self
            .iterator(stream, shard, "TRIM_HORIZON", json!({}))
            .await;
        let mut out = Vec::new();
        for _ in 0..1000 {
            let page = self.records(&iterator, None).await;
            for r in page["Records"].as_array().unwrap() {
                out.push((
                    r["SequenceNumber"].as_str().unwrap().to_owned(),
                    r["PartitionKey"].as_str().unwrap().to_owned(),
                    unb64(r["Data"].as_str().unwrap()),
                ));
            }
            iterator = page["NextShardIterator"].as_str().unwrap().to_owned();
            if page["MillisBehindLatest"] == json!(0) && page["Records"] == json!([]) {
                return out;
            }
        }
        panic!("{stream}/{shard}: still behind after 1000 pages");
    }
}

/// A `POST /` Kinesis request to `addr`.
pub fn kinesis_request(
    addr: SocketAddr,
    op: &str,
    content_type: &str,
    body: Bytes,
) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri("/")
        .header("host", addr.to_string())
        .header("content-type", content_type)
        .header("x-amz-target", format!("Kinesis_20131202.{op}"))
        .body(Full::new(body))
        .unwrap()
}

/// The body as JSON; `Null` when empty; panics (showing it) when it is not JSON.
pub fn parse_json(response: &Resp) -> Value {
    if response.body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.text()))
}

pub fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

pub fn unb64(text: &str) -> Vec<u8> {
    STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("{text:?} is not base64: {e}"))
}

/// A sequence number as the integer clients compare.
pub fn seq(text: &str) -> u128 {
    text.parse()
        .unwrap_or_else(|e| panic!("sequence number {text:?}: {e}"))
}

/// Kinesis's hash of a partition key, computed here independently of the server: MD5 as a
/// big-endian 128-bit number.
pub fn md5_hash(key: &str) -> u128 {
    use md5::{Digest, Md5};
    u128::from_be_bytes(Md5::digest(key.as_bytes()).into())
}

/// A member of a CBOR map.
pub fn cbor_get<'a>(value: &'a ciborium::Value, key: &str) -> &'a ciborium::Value {
    value
        .as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some(key)))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {key:?} in {value:?}"))
}

/// A CBOR map from `(key, value)` pairs.
pub fn cbor_map(entries: Vec<(&str, ciborium::Value)>) -> ciborium::Value {
    ciborium::Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (ciborium::Value::Text(k.to_owned()), v))
            .collect(),
    )
}
