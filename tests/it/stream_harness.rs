//! Stream API test harness: a [`StreamServer`] in-process from TOML text (data in a temp
//! folder, listeners on 127.0.0.1:0), a restart on the same data, and small Kinesis clients,
//! unsigned, which the server accepts from loopback when no access keys are configured:
//! [`Client`] for JSON 1.1 (also the one for the real binary), raw requests for CBOR 1.1 and
//! anything else.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use edgewise::config::{AnalyticsConfig, CdnConfig, Config, StreamConfig};
use edgewise::stream::StreamServer;
use edgewise::stream::log::Log;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::cdn_harness::{Resp, TIMEOUT, exchange, within};
use crate::nats::Nats;

/// Reading a whole shard back is bounded by this.
const READ_LIMIT: Duration = Duration::from_secs(20);

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
    /// The JetStream server under a `Backend::Nats` server; stops after it.
    nats: Option<Nats>,
}

/// Where the records of a [`Streams`] live: the Kinesis suite runs on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    /// A lone nats-server of its own (R1), the config rewritten for `backend = "nats"`.
    Nats,
}

impl Drop for Streams {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

fn load(dir: &TempDir) -> (StreamConfig, Option<CdnConfig>, Option<AnalyticsConfig>) {
    let path = dir.path().join("edgewise.toml");
    match Config::load(&path) {
        Ok(config) => (
            config
                .stream
                .expect("the test config has a [stream] section"),
            config.cdn,
            config.analytics,
        ),
        Err(errors) => panic!("the test config should load, but:\n{errors}"),
    }
}

impl Streams {
    /// Writes `toml` as `edgewise.toml` in a temp folder and runs the stream API from it.
    pub async fn start(toml: &str) -> Streams {
        Self::start_on(Backend::Local, toml).await
    }

    /// [`Streams::start`] on `backend`. For NATS the streams must come from `toml`:
    /// `allow_create_streams` is dropped, as that backend refuses it.
    pub async fn start_on(backend: Backend, toml: &str) -> Streams {
        let dir = tempfile::tempdir().expect("temp dir");
        let (toml, nats) = match backend {
            Backend::Local => (toml.to_owned(), None),
            Backend::Nats => {
                let nats = Nats::start(1).await;
                let keys = format!(
                    "[stream]\nbackend = \"nats\"\nnats = {{ servers = [{}], replicas = 1 }}\n",
                    nats.servers()
                );
                let toml = toml.replace("allow_create_streams = true", "").replacen(
                    "[stream]\n",
                    &keys,
                    1,
                );
                (toml, Some(nats))
            }
        };
        std::fs::write(dir.path().join("edgewise.toml"), toml).unwrap();
        Self::run_in(dir, nats).await
    }

    async fn run_in(dir: TempDir, nats: Option<Nats>) -> Streams {
        let (stream, cdn, analytics) = load(&dir);
        let mut server = StreamServer::bind(&stream, cdn.as_ref(), None)
            .unwrap_or_else(|e| panic!("stream bind: {e}"));
        let token = CancellationToken::new();
        server
            .connect_upstream(&token)
            .await
            .unwrap_or_else(|e| panic!("connecting the stream to NATS: {e}"));
        if let Some(analytics) = &analytics {
            server
                .serve_analytics(analytics)
                .expect("the analytics runtime starts");
        }
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
        let handle = tokio::spawn(server.run(token.clone()));
        Streams {
            dir,
            http,
            https,
            token,
            handle: Some(handle),
            log,
            roots,
            nats,
        }
    }

    /// Stops the server (drain, then close the log) and starts it again on the same data
    /// folder, with the config file as it is now (tests may rewrite it in between).
    pub async fn restart(mut self) -> Streams {
        self.stop().await;
        // Analytics applications let go of the log in the background once stopped; the data
        // folder's lock goes with its last reference.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.log) > 1 {
            assert!(
                Instant::now() < deadline,
                "the log is still held 10 s after the stream server stopped"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let dir = tempfile::tempdir().expect("placeholder temp dir");
        let data = std::mem::replace(&mut self.dir, dir);
        let nats = self.nats.take();
        drop(self);
        Self::run_in(data, nats).await
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

    /// A JSON 1.1 call on a connection of its own: the status and the parsed body (`Null`
    /// when the body is empty).
    pub async fn call(&self, op: &str, body: Value) -> (u16, Value) {
        match Client::new(self.http).call(op, &body).await {
            Ok(out) => (200, out),
            Err(Ok(error)) => (error.status, error.body),
            Err(Err(e)) => panic!("{op} {body}: {e}"),
        }
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
    /// Counter `name` from /metrics, summed over its label sets (`name{labels}` selects
    /// one: `metric("x_total{stream=\"s\",shard=\"...\"}")`).
    pub async fn metric(&self, name: &str) -> u64 {
        let response = self.get("/metrics").await;
        assert_eq!(response.status, 200);
        let text = response.text();
        let values: Vec<u64> = text
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(name)?;
                let value = match rest.strip_prefix(' ') {
                    Some(value) => value,
                    None if !name.ends_with('}') => rest.strip_prefix('{')?.split_once("} ")?.1,
                    None => return None,
                };
                // Histogram sums are written as floats ("2.0").
                let value: f64 = value.trim().parse().ok()?;
                Some(value as u64)
            })
            .collect();
        assert!(!values.is_empty(), "no counter {name} in /metrics:\n{text}");
        values.iter().sum()
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
        let iterator = self
            .iterator(stream, shard, "TRIM_HORIZON", json!({}))
            .await;
        let (records, error) = Client::new(self.http).read_from(iterator).await;
        assert!(error.is_none(), "reading {stream}/{shard}: {error:?}");
        records
            .into_iter()
            .map(|r| (r.seq, r.key, r.data))
            .collect()
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
    json_body(&response.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.text()))
}

/// A JSON 1.1 body; `Null` when empty, as for operations without output.
fn json_body(bytes: &[u8]) -> serde_json::Result<Value> {
    if bytes.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(bytes)
    }
}

pub fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

pub fn unb64(text: &str) -> Vec<u8> {
    STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("{text:?} is not base64: {e}"))
}

/// `((shard + 1) << 64) | offset`, as the log numbers records.
pub fn seq_parts(seq: &str) -> (u32, u64) {
    let value: u128 = seq
        .parse()
        .unwrap_or_else(|_| panic!("{seq:?} is not a sequence number"));
    let shard = u32::try_from((value >> 64) - 1).expect("shard");
    (shard, value as u64)
}

pub fn seq_of(shard: u32, offset: u64) -> String {
    (((u128::from(shard) + 1) << 64) | u128::from(offset)).to_string()
}

pub fn shard_id(shard: u32) -> String {
    format!("shardId-{shard:012}")
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

// ------------------------------------------------------------------ the Kinesis JSON client

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    pub seq: String,
    pub key: String,
    pub data: Vec<u8>,
}

/// A failed call: HTTP status and the error body.
#[derive(Debug)]
pub struct CallError {
    pub status: u16,
    pub body: Value,
}

/// The Kinesis JSON client: one keep-alive HTTP/1.1 connection, reconnecting as needed, and
/// errors as values, so tests can go on through a server that is killed under them.
pub struct Client {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client { addr, sender: None }
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let tcp = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().unwrap())
    }

    /// One operation; `Err(Ok(..))` is an error answer, `Err(Err(..))` no answer at all.
    pub async fn call(
        &mut self,
        operation: &str,
        body: &Value,
    ) -> Result<Value, Result<CallError, String>> {
        let request = kinesis_request(self.addr, operation, JSON, body.to_string().into());
        let exchange = async {
            let sender = self.connect().await?;
            sender
                .ready()
                .await
                .map_err(|e| format!("not ready: {e}"))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("request: {e}"))?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, bytes))
        };
        let (status, bytes) = match within(exchange).await {
            Ok(answer) => answer,
            Err(e) => {
                self.sender = None;
                return Err(Err(format!("{operation}: {e}")));
            }
        };
        let value = json_body(&bytes).map_err(|e| {
            Err(format!(
                "{operation}: {status} with a body that is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            ))
        })?;
        if status == 200 {
            Ok(value)
        } else {
            Err(Ok(CallError {
                status,
                body: value,
            }))
        }
    }

    /// `call`, failing the test on any error.
    pub async fn ok(&mut self, operation: &str, body: &Value) -> Value {
        self.call(operation, body)
            .await
            .unwrap_or_else(|e| panic!("{operation} {body}: {e:?}"))
    }

    /// PutRecords of `(partition key, explicit hash key, data)`: each record's
    /// `Ok((shard, offset))` or `Err(error code)`, in order.
    pub async fn put_records(
        &mut self,
        stream: &str,
        records: &[(String, Option<u128>, Vec<u8>)],
    ) -> Result<Vec<Result<(u32, u64), String>>, String> {
        let entries: Vec<Value> = records
            .iter()
            .map(|(key, hash, data)| {
                let mut entry = json!({"PartitionKey": key, "Data": b64(data)});
                if let Some(hash) = hash {
                    entry["ExplicitHashKey"] = json!(hash.to_string());
                }
                entry
            })
            .collect();
        let body = json!({"StreamName": stream, "Records": entries});
        let answer = self
            .call("PutRecords", &body)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let results = answer["Records"]
            .as_array()
            .ok_or_else(|| format!("PutRecords answer without Records: {answer}"))?;
        assert_eq!(results.len(), records.len(), "{answer}");
        let mut failed = 0;
        let outcomes: Vec<_> = results
            .iter()
            .map(|r| match r["SequenceNumber"].as_str() {
                Some(seq) => {
                    let (shard, offset) = seq_parts(seq);
                    assert_eq!(r["ShardId"], json!(shard_id(shard)), "{r}");
                    Ok((shard, offset))
                }
                None => {
                    failed += 1;
                    Err(r["ErrorCode"].as_str().unwrap_or("?").to_owned())
                }
            })
            .collect();
        assert_eq!(answer["FailedRecordCount"], json!(failed), "{answer}");
        Ok(outcomes)
    }

    /// A shard iterator: `kind` TRIM_HORIZON/LATEST, or AT_/AFTER_SEQUENCE_NUMBER with `seq`.
    pub async fn iterator(
        &mut self,
        stream: &str,
        shard: u32,
        kind: &str,
        seq: Option<&str>,
    ) -> String {
        let mut body =
            json!({"StreamName": stream, "ShardId": shard_id(shard), "ShardIteratorType": kind});
        if let Some(seq) = seq {
            body["StartingSequenceNumber"] = json!(seq);
        }
        let answer = self.ok("GetShardIterator", &body).await;
        answer["ShardIterator"].as_str().unwrap().to_owned()
    }

    /// GetRecords from `iterator` until MillisBehindLatest is 0 and a page comes back
    /// empty: every record, or the first error with the records read before it.
    pub async fn read_from(&mut self, iterator: String) -> (Vec<Got>, Option<CallError>) {
        let mut iterator = iterator;
        let mut out = Vec::new();
        let deadline = Instant::now() + READ_LIMIT;
        loop {
            assert!(
                Instant::now() < deadline,
                "reading took over {READ_LIMIT:?}"
            );
            let answer = match self
                .call("GetRecords", &json!({"ShardIterator": iterator}))
                .await
            {
                Ok(answer) => answer,
                Err(Ok(error)) => return (out, Some(error)),
                Err(Err(e)) => panic!("GetRecords: {e}"),
            };
            let records = answer["Records"].as_array().expect("Records");
            for r in records {
                out.push(Got {
                    seq: r["SequenceNumber"].as_str().unwrap().to_owned(),
                    key: r["PartitionKey"].as_str().unwrap().to_owned(),
                    data: unb64(r["Data"].as_str().unwrap()),
                });
            }
            let behind = answer["MillisBehindLatest"]
                .as_u64()
                .expect("MillisBehindLatest");
            if records.is_empty() && behind == 0 {
                return (out, None);
            }
            iterator = answer["NextShardIterator"]
                .as_str()
                .expect("NextShardIterator")
                .to_owned();
        }
    }

    /// Every record of a shard from TRIM_HORIZON; fails the test on an error.
    pub async fn read_all(&mut self, stream: &str, shard: u32) -> Vec<Got> {
        let iterator = self.iterator(stream, shard, "TRIM_HORIZON", None).await;
        let (records, error) = self.read_from(iterator).await;
        if let Some(error) = error {
            panic!(
                "reading {stream} shard {shard} after {} records: {error:?}",
                records.len()
            );
        }
        records
    }
}
