//! Load generator for `benches/stream/run.sh`: the same closed-loop write and read loads
//! against edgewise's Kinesis-compatible API and against Redis Streams.
//!
//! Built as a bench target without the test harness (`cargo build --release --benches`,
//! then `target/release/deps/stream_loadgen-*`), or run with
//! `cargo bench --bench stream_loadgen -- <mode> [options]`.
//!
//! Modes (every one bounded by `--duration` and by `--max-requests`):
//! - `kinesis-put`: `--conns` keep-alive HTTP/1.1 connections, each sending PutRecords of
//!   `--batch` records of `--size` bytes, one request at a time.
//! - `redis-put`: `--conns` connections, each pipelining `--batch` `XADD key * d <payload>`
//!   per round trip: B records per round trip on both sides.
//! - `kinesis-get`: one connection; ListShards, then for each shard GetShardIterator
//!   TRIM_HORIZON and GetRecords (`--batch` is the Limit) until the shard's end; then again
//!   from the start, until the duration is over.
//! - `redis-get`: one connection; `XRANGE key <after> + COUNT <batch>` paging from the start
//!   to the end, then again from the start.
//!
//! Prints one line of `name=value` pairs: records, bytes (record data), secs, rps, mbps
//! (MB/s of record data, 10^6 bytes), requests, p50_ms/p99_ms (per request: one batch),
//! errors, and for the reads `pass_records` (records in the first full pass, "-" if none
//! finished). Exits 2 on usage errors and 1 when the target could not be reached at all.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TARGET_PREFIX: &str = "Kinesis_20131202.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// A request that takes longer than this counts as an error and ends its connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Latency samples kept per connection (one per request); the rest are not recorded.
const MAX_SAMPLES: usize = 4_000_000;

struct Args {
    mode: String,
    addr: String,
    target: String,
    conns: usize,
    batch: usize,
    size: usize,
    duration: Duration,
    max_requests: u64,
}

fn usage() -> &'static str {
    "usage: stream_loadgen <kinesis-put|redis-put|kinesis-get|redis-get> --addr HOST:PORT \
     --target STREAM_OR_KEY [--conns N] [--batch B] [--size BYTES] [--duration SECS] \
     [--max-requests N]"
}

fn parse_args() -> Result<Args, String> {
    let mut argv = std::env::args().skip(1).filter(|a| a != "--bench");
    let mode = argv.next().ok_or("missing mode")?;
    if !matches!(
        mode.as_str(),
        "kinesis-put" | "redis-put" | "kinesis-get" | "redis-get"
    ) {
        return Err(format!("unknown mode {mode:?}"));
    }
    let mut args = Args {
        mode,
        addr: String::new(),
        target: String::new(),
        conns: 8,
        batch: 100,
        size: 100,
        duration: Duration::from_secs(10),
        max_requests: 10_000_000,
    };
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or(format!("{flag} needs a value"))?;
        let number = || -> Result<u64, String> {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--addr" => args.addr = value.clone(),
            "--target" => args.target = value.clone(),
            "--conns" => args.conns = usize::try_from(number()?).unwrap_or(usize::MAX),
            "--batch" => args.batch = usize::try_from(number()?).unwrap_or(usize::MAX),
            "--size" => args.size = usize::try_from(number()?).unwrap_or(usize::MAX),
            "--duration" => args.duration = Duration::from_secs_f64(number()? as f64),
            "--max-requests" => args.max_requests = number()?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if args.addr.is_empty() || args.target.is_empty() {
        return Err("--addr and --target are required".into());
    }
    if !(1..=1024).contains(&args.conns)
        || !(1..=10_000).contains(&args.batch)
        || !(1..=1 << 20).contains(&args.size)
        || args.duration.is_zero()
        || args.max_requests == 0
    {
        return Err(
            "out of range: conns 1..=1024, batch 1..=10000, size 1..=1048576, \
                    duration and max-requests > 0"
                .into(),
        );
    }
    Ok(args)
}

/// What one connection (or the whole read) did.
#[derive(Default)]
struct Tally {
    records: u64,
    bytes: u64,
    requests: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    /// Reads: records of the first complete pass over everything.
    pass_records: Option<u64>,
    /// Why the connection stopped early, if it did.
    failure: Option<String>,
}

impl Tally {
    fn sample(&mut self, started: Instant) {
        if self.latencies_us.len() < MAX_SAMPLES {
            let us = started.elapsed().as_micros();
            self.latencies_us
                .push(u32::try_from(us).unwrap_or(u32::MAX));
        }
    }

    fn merge(&mut self, other: Tally) {
        self.records += other.records;
        self.bytes += other.bytes;
        self.requests += other.requests;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
        self.pass_records = self.pass_records.or(other.pass_records);
        self.failure = self.failure.take().or(other.failure);
    }
}

fn percentile(sorted: &[u32], p: f64) -> String {
    if sorted.is_empty() {
        return "-".into();
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    format!("{:.2}", f64::from(sorted[rank - 1]) / 1000.0)
}

/// Random bytes: nothing on either side compresses them.
fn payloads(count: usize, size: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..count)
        .map(|_| {
            (0..size)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------- Kinesis (edgewise)

async fn connect_http(addr: &str) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// One Kinesis call: the status and the whole body.
async fn call(
    sender: &mut SendRequest<Full<Bytes>>,
    addr: &str,
    operation: &str,
    body: Bytes,
) -> Result<(u16, Bytes), String> {
    let request = Request::post("/")
        .header("host", addr)
        .header("content-type", CONTENT_TYPE)
        .header("x-amz-target", format!("{TARGET_PREFIX}{operation}"))
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let exchange = async {
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("{operation}: no answer within {REQUEST_TIMEOUT:?}"))?
}

fn put_records_body(stream: &str, conn: usize, batch: usize, size: usize) -> Bytes {
    let records: Vec<serde_json::Value> = payloads(batch, size, conn as u64 + 1)
        .iter()
        .enumerate()
        .map(|(i, data)| {
            serde_json::json!({
                "Data": STANDARD.encode(data),
                "PartitionKey": format!("pk-{conn}-{i}"),
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"StreamName": stream, "Records": records}))
        .expect("JSON into memory")
        .into()
}

async fn kinesis_put(args: &Args, conn: usize, deadline: Instant, max_requests: u64) -> Tally {
    let mut tally = Tally::default();
    let body = put_records_body(&args.target, conn, args.batch, args.size);
    let mut sender = match connect_http(&args.addr).await {
        Ok(sender) => sender,
        Err(e) => {
            tally.failure = Some(e);
            return tally;
        }
    };
    while Instant::now() < deadline && tally.requests < max_requests {
        let started = Instant::now();
        match call(&mut sender, &args.addr, "PutRecords", body.clone()).await {
            Ok((200, answer)) => {
                tally.requests += 1;
                tally.sample(started);
                if memchr(&answer, b"\"FailedRecordCount\":0,") {
                    tally.records += args.batch as u64;
                    tally.bytes += (args.batch * args.size) as u64;
                } else {
                    tally.errors += 1;
                }
            }
            Ok((status, answer)) => {
                tally.requests += 1;
                tally.errors += 1;
                if tally.failure.is_none() {
                    let text = String::from_utf8_lossy(&answer[..answer.len().min(200)]);
                    tally.failure = Some(format!("HTTP {status}: {text}"));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => {
                tally.errors += 1;
                tally.failure = Some(e);
                break;
            }
        }
    }
    tally
}

fn memchr(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct ListShardsOutput {
    Shards: Vec<ShardOutput>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct ShardOutput {
    ShardId: String,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct IteratorOutput {
    ShardIterator: String,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct GetRecordsOutput<'a> {
    #[serde(borrow)]
    Records: Vec<RecordOutput<'a>>,
    NextShardIterator: Option<String>,
    MillisBehindLatest: Option<u64>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct RecordOutput<'a> {
    /// Base64; its decoded length is counted, without decoding.
    #[serde(borrow)]
    Data: &'a str,
}

fn base64_len(text: &str) -> u64 {
    let pad = text.bytes().rev().take_while(|&b| b == b'=').count();
    (text.len() / 4 * 3).saturating_sub(pad) as u64
}

async fn kinesis_json<T: for<'de> Deserialize<'de>>(
    sender: &mut SendRequest<Full<Bytes>>,
    addr: &str,
    operation: &str,
    body: serde_json::Value,
) -> Result<T, String> {
    let (status, answer) = call(sender, addr, operation, body.to_string().into()).await?;
    if status != 200 {
        return Err(format!(
            "{operation}: HTTP {status}: {}",
            String::from_utf8_lossy(&answer[..answer.len().min(200)])
        ));
    }
    serde_json::from_slice(&answer).map_err(|e| format!("{operation}: {e}"))
}

async fn kinesis_get(args: &Args, deadline: Instant) -> Result<Tally, String> {
    let mut tally = Tally::default();
    let mut sender = connect_http(&args.addr).await?;
    let shards: ListShardsOutput = kinesis_json(
        &mut sender,
        &args.addr,
        "ListShards",
        serde_json::json!({"StreamName": args.target}),
    )
    .await?;
    let mut pass = 0_u64;
    'passes: while Instant::now() < deadline && tally.requests < args.max_requests {
        for shard in &shards.Shards {
            let iterator: IteratorOutput = kinesis_json(
                &mut sender,
                &args.addr,
                "GetShardIterator",
                serde_json::json!({
                    "StreamName": args.target,
                    "ShardId": shard.ShardId,
                    "ShardIteratorType": "TRIM_HORIZON",
                }),
            )
            .await?;
            let mut next = Some(iterator.ShardIterator);
            while let Some(it) = next.take() {
                if Instant::now() >= deadline || tally.requests >= args.max_requests {
                    break 'passes;
                }
                let body = serde_json::json!({"ShardIterator": it, "Limit": args.batch});
                let started = Instant::now();
                let (status, answer) = call(
                    &mut sender,
                    &args.addr,
                    "GetRecords",
                    body.to_string().into(),
                )
                .await?;
                tally.requests += 1;
                if status != 200 {
                    tally.errors += 1;
                    return Err(format!(
                        "GetRecords: HTTP {status}: {}",
                        String::from_utf8_lossy(&answer[..answer.len().min(200)])
                    ));
                }
                let out: GetRecordsOutput<'_> =
                    serde_json::from_slice(&answer).map_err(|e| format!("GetRecords: {e}"))?;
                tally.sample(started);
                let n = out.Records.len() as u64;
                tally.records += n;
                pass += n;
                tally.bytes += out.Records.iter().map(|r| base64_len(r.Data)).sum::<u64>();
                // The shard's end: nothing more now (an open shard always has a next iterator).
                let at_end = n == 0 || out.MillisBehindLatest == Some(0) && n < args.batch as u64;
                if !at_end {
                    next = out.NextShardIterator;
                }
            }
        }
        tally.pass_records.get_or_insert(pass);
        pass = 0;
    }
    Ok(tally)
}

// ---------------------------------------------------------------- Redis

/// RESP, incrementally: one token (a header line, or a bulk string's body) at a time, so a
/// large reply is never parsed twice.
struct Resp {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

enum Token<'a> {
    /// `*n`: an array of n elements (-1: null).
    Array(i64),
    /// A bulk string's bytes (`None`: null bulk).
    Bulk(Option<&'a [u8]>),
    /// `+...`, `:...`.
    Simple,
    /// `-...`
    Error(String),
}

/// A token found in the buffer; bulk strings as (start, length).
enum Parsed {
    Array(i64),
    Bulk(Option<(usize, usize)>),
    Simple,
    Error(String),
}

impl Resp {
    async fn connect(addr: &str) -> Result<Resp, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        Ok(Resp {
            stream,
            buf: Vec::with_capacity(1 << 20),
            start: 0,
        })
    }

    async fn fill(&mut self) -> Result<(), String> {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + (256 << 10), 0);
        let n = tokio::time::timeout(REQUEST_TIMEOUT, self.stream.read(&mut self.buf[len..]))
            .await
            .map_err(|_| "Redis: no answer in time".to_owned())?
            .map_err(|e| format!("Redis read: {e}"));
        self.buf.truncate(len + *n.as_ref().unwrap_or(&0));
        match n? {
            0 => Err("Redis closed the connection".into()),
            _ => Ok(()),
        }
    }

    /// The next token; reads more when it is not all there yet.
    async fn token(&mut self) -> Result<Token<'_>, String> {
        loop {
            if let Some(parsed) = self.parse()? {
                return Ok(match parsed {
                    Parsed::Array(n) => Token::Array(n),
                    Parsed::Bulk(None) => Token::Bulk(None),
                    Parsed::Bulk(Some((at, n))) => Token::Bulk(Some(&self.buf[at..at + n])),
                    Parsed::Simple => Token::Simple,
                    Parsed::Error(text) => Token::Error(text),
                });
            }
            self.fill().await?;
        }
    }

    /// Consumes one complete token from the buffer, if one is there.
    fn parse(&mut self) -> Result<Option<Parsed>, String> {
        let avail = &self.buf[self.start..];
        let Some(eol) = avail.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = &avail[1..eol];
        let number = || -> Result<i64, String> {
            std::str::from_utf8(line)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| "Redis: bad length".to_owned())
        };
        let (parsed, used) = match avail.first() {
            Some(b'*') => (Parsed::Array(number()?), eol + 2),
            Some(b'$') => match usize::try_from(number()?) {
                Err(_) => (Parsed::Bulk(None), eol + 2),
                Ok(n) if avail.len() >= eol + 2 + n + 2 => (
                    Parsed::Bulk(Some((self.start + eol + 2, n))),
                    eol + 2 + n + 2,
                ),
                Ok(_) => return Ok(None),
            },
            Some(b'+' | b':') => (Parsed::Simple, eol + 2),
            Some(b'-') => (
                Parsed::Error(String::from_utf8_lossy(line).into_owned()),
                eol + 2,
            ),
            _ => return Err("Redis: unexpected reply".into()),
        };
        self.start += used;
        Ok(Some(parsed))
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| format!("Redis write: {e}"))
    }
}

fn command(out: &mut Vec<u8>, parts: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
    for part in parts {
        out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
}

async fn redis_put(args: &Args, conn: usize, deadline: Instant, max_requests: u64) -> Tally {
    let mut tally = Tally::default();
    let mut pipeline = Vec::new();
    for data in payloads(args.batch, args.size, conn as u64 + 1) {
        command(
            &mut pipeline,
            &[b"XADD", args.target.as_bytes(), b"*", b"d", &data],
        );
    }
    let mut redis = match Resp::connect(&args.addr).await {
        Ok(redis) => redis,
        Err(e) => {
            tally.failure = Some(e);
            return tally;
        }
    };
    'run: while Instant::now() < deadline && tally.requests < max_requests {
        let started = Instant::now();
        if let Err(e) = redis.send(&pipeline).await {
            tally.failure = Some(e);
            tally.errors += 1;
            break;
        }
        let mut failed = 0;
        for _ in 0..args.batch {
            match redis.token().await {
                Ok(Token::Bulk(Some(_))) => {}
                Ok(Token::Error(e)) => {
                    failed += 1;
                    tally.failure.get_or_insert(e);
                }
                Ok(_) => failed += 1,
                Err(e) => {
                    tally.failure = Some(e);
                    tally.errors += 1;
                    break 'run;
                }
            }
        }
        tally.requests += 1;
        tally.sample(started);
        if failed == 0 {
            tally.records += args.batch as u64;
            tally.bytes += (args.batch * args.size) as u64;
        } else {
            tally.errors += 1;
        }
    }
    tally
}

async fn redis_get(args: &Args, deadline: Instant) -> Result<Tally, String> {
    let mut tally = Tally::default();
    let mut redis = Resp::connect(&args.addr).await?;
    let count = args.batch.to_string();
    let mut pass = 0_u64;
    let mut after: Option<Vec<u8>> = None;
    let mut request = Vec::new();
    while Instant::now() < deadline && tally.requests < args.max_requests {
        // Exclusive start after the last id seen (Redis >= 6.2), "-" for a new pass.
        let start = match &after {
            Some(id) => [b"(".as_slice(), id].concat(),
            None => b"-".to_vec(),
        };
        request.clear();
        command(
            &mut request,
            &[
                b"XRANGE",
                args.target.as_bytes(),
                &start,
                b"+",
                b"COUNT",
                count.as_bytes(),
            ],
        );
        let started = Instant::now();
        redis.send(&request).await?;
        let entries = match redis.token().await? {
            Token::Array(n) => n.max(0) as u64,
            Token::Error(e) => return Err(format!("XRANGE: {e}")),
            _ => return Err("XRANGE: not an array".into()),
        };
        // Each entry: [id, [field, value, ...]].
        let mut last = None;
        for _ in 0..entries {
            if !matches!(redis.token().await?, Token::Array(2)) {
                return Err("XRANGE: unexpected entry".into());
            }
            if let Token::Bulk(Some(id)) = redis.token().await? {
                last = Some(id.to_vec());
            }
            let Token::Array(fields) = redis.token().await? else {
                return Err("XRANGE: unexpected fields".into());
            };
            for i in 0..fields.max(0) {
                if let Token::Bulk(Some(value)) = redis.token().await?
                    && i % 2 == 1
                {
                    tally.bytes += value.len() as u64;
                }
            }
        }
        tally.requests += 1;
        tally.sample(started);
        tally.records += entries;
        pass += entries;
        if entries < args.batch as u64 {
            tally.pass_records.get_or_insert(pass);
            pass = 0;
            after = None;
        } else {
            after = last;
        }
    }
    Ok(tally)
}

// ---------------------------------------------------------------- main

async fn run(args: Args) -> Result<Tally, String> {
    let deadline = Instant::now() + args.duration;
    match args.mode.as_str() {
        "kinesis-get" => kinesis_get(&args, deadline).await,
        "redis-get" => redis_get(&args, deadline).await,
        _ => {
            let args = std::sync::Arc::new(args);
            let per_conn = args.max_requests.div_ceil(args.conns as u64);
            let tasks: Vec<_> = (0..args.conns)
                .map(|conn| {
                    let args = args.clone();
                    tokio::spawn(async move {
                        if args.mode == "kinesis-put" {
                            kinesis_put(&args, conn, deadline, per_conn).await
                        } else {
                            redis_put(&args, conn, deadline, per_conn).await
                        }
                    })
                })
                .collect();
            let mut total = Tally::default();
            for task in tasks {
                total.merge(task.await.map_err(|e| e.to_string())?);
            }
            if total.requests == 0 {
                return Err(total
                    .failure
                    .unwrap_or_else(|| "no request completed".into()));
            }
            Ok(total)
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("stream_loadgen: {e}\n{}", usage());
            return ExitCode::from(2);
        }
    };
    // One thread: the script pins the generator to one core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let result = runtime.block_on(run(args));
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok(mut tally) => {
            tally.latencies_us.sort_unstable();
            let pass = tally
                .pass_records
                .map_or_else(|| "-".to_owned(), |n| n.to_string());
            println!(
                "records={} bytes={} secs={secs:.3} rps={:.0} mbps={:.2} requests={} \
                 p50_ms={} p99_ms={} errors={} pass_records={pass}",
                tally.records,
                tally.bytes,
                tally.records as f64 / secs,
                tally.bytes as f64 / secs / 1e6,
                tally.requests,
                percentile(&tally.latencies_us, 0.50),
                percentile(&tally.latencies_us, 0.99),
                tally.errors,
            );
            if let Some(why) = tally.failure {
                eprintln!("stream_loadgen: first error: {why}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stream_loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
