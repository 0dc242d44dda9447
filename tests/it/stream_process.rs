//! The real `edgewise-cdn` binary serving only `[stream]`, as a process that tests SIGKILL
//! and restart on the same data folder, and a small Kinesis JSON client over HTTP/1.1.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

pub const BIN: &str = env!("CARGO_BIN_EXE_edgewise-cdn");
/// Starting, stopping, one request: each is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(20);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
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

/// The running binary; SIGKILLed if a test fails while it runs.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Server {
    /// `edgewise-cdn --config <config>`.
    pub fn start(config: &Path) -> Server {
        let mut command = Command::new(BIN);
        command.arg("--config").arg(config);
        Server::spawn(command)
    }

    /// Runs `command` (the binary, perhaps wrapped), waits for its "stream API listening"
    /// line and parses the address from it.
    pub fn spawn(mut command: Command) -> Server {
        let mut child = command
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("EDGEWISE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start edgewise-cdn");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut server = Server {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
            reader: Some(reader),
        };
        let deadline = Instant::now() + LIMIT;
        loop {
            let found = server.lines.lock().unwrap().iter().find_map(|line| {
                let rest = line.split("stream API listening on http ").nth(1)?;
                rest.trim().parse::<SocketAddr>().ok()
            });
            if let Some(addr) = found {
                server.addr = addr;
                return server;
            }
            if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                server.join_reader();
                panic!(
                    "edgewise-cdn exited ({status}) before listening:\n{}",
                    server.stderr()
                );
            }
            if Instant::now() > deadline {
                server.kill();
                panic!(
                    "edgewise-cdn not listening within {LIMIT:?}:\n{}",
                    server.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Everything logged so far (all of it once the process has exited).
    pub fn stderr(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn join_reader(&mut self) {
        // The pipe closes when the process exits; bounded in case a grandchild holds it.
        if let Some(reader) = self.reader.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }

    /// SIGKILL, and reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.join_reader();
        }
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.join_reader();
                panic!(
                    "edgewise-cdn still running {LIMIT:?} after SIGTERM:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.join_reader();
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes `text` as `edgewise.toml` in `dir`; returns its path.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("edgewise.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The segment files of a shard, oldest first.
pub fn segments(data_dir: &Path, stream: &str, shard: u32) -> Vec<PathBuf> {
    let dir = data_dir.join(format!("streams/{stream}/shard-{shard:06}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
}

/// One frame of a segment file: its byte position, length and record offset.
#[derive(Debug, Clone, Copy)]
pub struct FrameAt {
    pub position: u64,
    pub len: u64,
    pub offset: u64,
}

/// Walks the frames of an undamaged segment (12-byte header with the body length at 4..8;
/// the body starts with the offset).
pub fn frames(path: &Path) -> Vec<FrameAt> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        assert_eq!(bytes[pos..pos + 2], [0xEB, 0x5C], "frame magic at {pos}");
        let body = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let offset = u64::from_le_bytes(bytes[pos + 12..pos + 20].try_into().unwrap());
        out.push(FrameAt {
            position: pos as u64,
            len: (12 + body) as u64,
            offset,
        });
        pos += 12 + body;
    }
    assert_eq!(pos, bytes.len(), "{} ends inside a frame", path.display());
    out
}

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

/// A Kinesis JSON client on one keep-alive HTTP/1.1 connection, reconnecting as needed.
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
        let exchange = async {
            let sender = self.connect().await?;
            sender
                .ready()
                .await
                .map_err(|e| format!("not ready: {e}"))?;
            let request = Request::post("/")
                .header("host", "127.0.0.1")
                .header("content-type", "application/x-amz-json-1.1")
                .header("x-amz-target", format!("Kinesis_20131202.{operation}"))
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap();
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("{operation}: {e}"))?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("{operation} body: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, bytes))
        };
        let outcome = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("{operation}: no answer within {CALL_TIMEOUT:?}")));
        let (status, bytes) = match outcome {
            Ok(answer) => answer,
            Err(e) => {
                self.sender = None;
                return Err(Err(e));
            }
        };
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                Err(format!(
                    "{operation}: {status} with a body that is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                ))
            })?
        };
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
        let deadline = Instant::now() + LIMIT;
        loop {
            assert!(Instant::now() < deadline, "reading took over {LIMIT:?}");
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

/// Polls `done` every 50 ms until it holds, failing the test after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
