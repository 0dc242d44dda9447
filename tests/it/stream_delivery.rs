//! Firehose-like delivery through the real binary: every record in exactly one file across
//! a SIGKILL and restarts, files named by their first record, plain and gzip, a checkpoint,
//! and a graceful stop that flushes what is buffered.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::stream_harness::{Client, seq_of, seq_parts, shard_id, unb64};
use crate::stream_process::*;

/// (stream, delivery folder, gzip)
const DELIVERIES: [(&str, &str, bool); 2] = [
    ("plain", "out/plain", false),
    ("zipped", "out/zipped", true),
];

fn config(buffer_size: &str, buffer_interval: &str) -> String {
    let mut text = String::from(
        r#"[stream]
listen = ["127.0.0.1:0"]
data_dir = "data"
fsync = "always"
"#,
    );
    for (stream, dir, gzip) in DELIVERIES {
        text.push_str(&format!(
            r#"
[[stream.streams]]
name = "{stream}"
shards = 2

[[stream.deliveries]]
stream = "{stream}"
dir = "{dir}"
buffer_size = "{buffer_size}"
buffer_interval = "{buffer_interval}"
compression = "{}"
"#,
            if gzip { "gzip" } else { "none" }
        ));
    }
    text
}

/// Record `n` of `stream`: UTF-8 text, except every 17th, which is not UTF-8 (delivered as
/// `dataBase64`).
fn data(stream: &str, n: usize) -> Vec<u8> {
    if n % 17 == 5 {
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend_from_slice(format!("{stream}#{n}").as_bytes());
        bytes
    } else {
        let mut text = format!("{stream}#{n} ");
        text.push_str(&"é".repeat(n % 40));
        text.into_bytes()
    }
}

/// `n` from a record's data.
fn number(data: &[u8]) -> usize {
    let text = String::from_utf8_lossy(data);
    let after = text.split('#').nth(1).expect("record number");
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

/// What was acknowledged: per stream, record number → (shard, offset).
type Acked = HashMap<&'static str, BTreeMap<usize, (u32, u64)>>;

async fn put(client: &mut Client, acked: &mut Acked, range: std::ops::Range<usize>) {
    for (stream, _, _) in DELIVERIES {
        for start in range.clone().step_by(50) {
            let numbers: Vec<usize> = (start..(start + 50).min(range.end)).collect();
            let records: Vec<_> = numbers
                .iter()
                .map(|&n| (format!("key-{n}"), None, data(stream, n)))
                .collect();
            let outcomes = client.put_records(stream, &records).await.unwrap();
            for (n, outcome) in numbers.into_iter().zip(outcomes) {
                let place = outcome.unwrap_or_else(|e| panic!("{stream} record {n}: {e}"));
                acked.entry(stream).or_default().insert(n, place);
            }
        }
    }
}

/// One delivered record.
#[derive(Debug)]
struct Line {
    shard: u32,
    offset: u64,
    key: String,
    arrival_ms: u64,
    data: Vec<u8>,
}

/// Every delivery file under `dir` (temporary and checkpoint files, which start with a
/// dot, are not), with its path relative to `dir`.
pub fn delivery_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if !path.file_name().unwrap().to_str().unwrap().starts_with('.') {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Year, month, day and hour (UTC) of Unix milliseconds.
fn utc_hour(ms: u64) -> (i64, u32, u32, u32) {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let hour = ((secs % 86_400) / 3600) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day, hour)
}

/// Reads and checks one delivery file: its name and folder follow from its first record,
/// its lines are one shard's consecutive records, its compression is the delivery's.
async fn read_file(dir: &Path, path: &Path, stream: &str, gzip: bool) -> Vec<Line> {
    let raw = std::fs::read(path).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let text = if gzip {
        assert!(raw.starts_with(&[0x1F, 0x8B]), "{name} is gzip");
        let mut out = Vec::new();
        async_compression::tokio::bufread::GzipDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        out
    } else {
        raw
    };
    let extension = if gzip { ".ndjson.gz" } else { ".ndjson" };
    let first_seq = name
        .strip_prefix(&format!("{stream}-"))
        .and_then(|rest| rest.strip_suffix(extension))
        .unwrap_or_else(|| panic!("{name} is not <stream>-<seq>{extension}"));
    let text = String::from_utf8(text).expect("UTF-8 NDJSON");
    assert!(text.ends_with('\n'), "{name} ends with a newline");
    let mut lines = Vec::new();
    for line in text.lines() {
        let object: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let fields: Vec<&str> = object
            .as_object()
            .expect("one object per line")
            .keys()
            .map(String::as_str)
            .collect();
        let seq = object["sequenceNumber"].as_str().expect("sequenceNumber");
        let (shard, offset) = seq_parts(seq);
        assert_eq!(object["shardId"].as_str(), Some(shard_id(shard).as_str()));
        let data = match (object["data"].as_str(), object["dataBase64"].as_str()) {
            (Some(text), None) => text.as_bytes().to_vec(),
            (None, Some(encoded)) => {
                let bytes = unb64(encoded);
                assert!(std::str::from_utf8(&bytes).is_err(), "UTF-8 goes in data");
                bytes
            }
            _ => panic!("data or dataBase64 in {line}"),
        };
        assert_eq!(fields.len(), 5, "{line}");
        lines.push(Line {
            shard,
            offset,
            key: object["partitionKey"]
                .as_str()
                .expect("partitionKey")
                .to_owned(),
            arrival_ms: object["approximateArrivalTimestamp"]
                .as_u64()
                .expect("approximateArrivalTimestamp"),
            data,
        });
    }
    let first = lines.first().unwrap_or_else(|| panic!("{name} is empty"));
    assert_eq!(
        first_seq,
        seq_of(first.shard, first.offset),
        "{name} is named by its first record"
    );
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            (line.shard, line.offset),
            (first.shard, first.offset + i as u64),
            "{name}: one shard's consecutive records"
        );
    }
    let (y, m, d, h) = utc_hour(first.arrival_ms);
    let folder = format!("{y:04}/{m:02}/{d:02}/{h:02}");
    assert_eq!(
        path.parent().unwrap().strip_prefix(dir).unwrap(),
        Path::new(&folder),
        "{name}: the hour folder of its first record's arrival"
    );
    lines
}

/// Every record delivered for `stream`, failing on one delivered twice: number → line.
async fn delivered(root: &Path, stream: &str, dir: &str, gzip: bool) -> BTreeMap<usize, Line> {
    let dir = root.join(dir);
    let mut out = BTreeMap::new();
    for path in delivery_files(&dir) {
        for line in read_file(&dir, &path, stream, gzip).await {
            let n = number(&line.data);
            if let Some(earlier) = out.insert(n, line) {
                panic!(
                    "{stream} record {n} delivered twice: at offset {} and again in {}",
                    earlier.offset,
                    path.display()
                );
            }
        }
    }
    out
}

/// Waits (bounded) until every acknowledged record is delivered, then checks each exactly
/// once with its sequence number, key and data.
async fn assert_all_delivered(root: &Path, acked: &Acked, limit: Duration) {
    let deadline = Instant::now() + limit;
    for (stream, dir, gzip) in DELIVERIES {
        let want = &acked[stream];
        let got = loop {
            let got = delivered(root, stream, dir, gzip).await;
            if got.len() >= want.len() || Instant::now() > deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let missing: Vec<_> = want.keys().filter(|n| !got.contains_key(n)).collect();
        assert!(
            missing.is_empty(),
            "{stream}: not delivered within {limit:?}: {missing:?}"
        );
        assert_eq!(got.len(), want.len(), "{stream}: only what was put");
        for (n, line) in &got {
            assert_eq!(
                want.get(n),
                Some(&(line.shard, line.offset)),
                "{stream} {n}"
            );
            assert!(line.data == data(stream, *n), "{stream} record {n}: data");
            assert_eq!(line.key, format!("key-{n}"));
        }
    }
}

/// The checkpoint of each delivery names every shard's tip.
fn assert_checkpoints(root: &Path, acked: &Acked) {
    for (stream, dir, _) in DELIVERIES {
        let path = root.join(dir).join(".edgewise-checkpoint.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let saved: Value = serde_json::from_str(&text).unwrap();
        for shard in 0..2 {
            let tip = acked[stream]
                .values()
                .filter(|(s, _)| *s == shard)
                .map(|(_, offset)| offset + 1)
                .max()
                .unwrap_or(0);
            assert_eq!(
                saved["next"][shard_id(shard)].as_u64(),
                Some(tip),
                "{stream} checkpoint: {text}"
            );
        }
    }
}

/// Records 0..400 put through the binary on `path`, SIGKILLed while records 150..300 are being
/// batched and written, then stopped gracefully: each record in exactly one file.
async fn deliver_across_a_sigkill(root: &Path, path: &Path, acked: &mut Acked) {
    let mut server = Server::start(path);
    let mut client = Client::new(server.addr);
    put(&mut client, acked, 0..150).await;
    assert_all_delivered(root, acked, Duration::from_secs(15)).await;
    // More records, killed while they are being batched and written.
    put(&mut client, acked, 150..300).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    server.kill();

    let mut server = Server::start(path);
    let mut client = Client::new(server.addr);
    put(&mut client, acked, 300..400).await;
    assert_all_delivered(root, acked, Duration::from_secs(15)).await;
    assert_eq!(server.terminate().code(), Some(0), "{}", server.stderr());
    assert_checkpoints(root, acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_delivery_delivers_each_record_exactly_once_across_sigkill_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let path = write_config(root, &config("4KiB", "1s"));
    let mut acked = Acked::new();

    deliver_across_a_sigkill(root, &path, &mut acked).await;
    let files: usize = DELIVERIES
        .iter()
        .map(|(_, d, _)| delivery_files(&root.join(d)).len())
        .sum();
    assert!(files > 4, "small buffers make many files ({files})");

    // A graceful stop flushes what is buffered: with these buffers nothing else would.
    write_config(root, &config("1MiB", "900s"));
    let mut server = Server::start(&path);
    let mut client = Client::new(server.addr);
    put(&mut client, &mut acked, 400..450).await;
    // Past a few delivery polls: the records are read into the buffers, and stay there.
    tokio::time::sleep(Duration::from_millis(700)).await;
    for (stream, d, gzip) in DELIVERIES {
        let got = delivered(root, stream, d, gzip).await;
        assert_eq!(got.len(), 400, "{stream}: buffered, not yet delivered");
    }
    assert_eq!(server.terminate().code(), Some(0), "{}", server.stderr());
    assert_all_delivered(root, &acked, Duration::ZERO).await;
    assert_checkpoints(root, &acked);

    // A crash between a file's rename and the checkpoint's save leaves the checkpoint
    // behind the files; roll it back by several files (and lose one entirely): the files
    // are found by inspection and nothing is delivered twice.
    let checkpoint = root.join("out/plain/.edgewise-checkpoint.json");
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    let starts = file_starts(root, "plain", "out/plain", false).await;
    assert!(starts[&1].len() >= 2, "{starts:?}");
    saved["next"][shard_id(0)] = 0.into();
    saved["next"][shard_id(1)] = starts[&1][1].into();
    std::fs::write(&checkpoint, saved.to_string()).unwrap();
    std::fs::remove_file(root.join("out/zipped/.edgewise-checkpoint.json")).unwrap();
    let mut server = Server::start(&path);
    let mut client = Client::new(server.addr);
    put(&mut client, &mut acked, 450..480).await;
    assert_eq!(server.terminate().code(), Some(0), "{}", server.stderr());
    assert_all_delivered(root, &acked, Duration::ZERO).await;
    assert_checkpoints(root, &acked);
    let log = server.stderr();
    assert!(
        log.contains("delivery resumes after an existing file"),
        "{log}"
    );
}

/// The first offset of each delivered file, per shard, in order.
async fn file_starts(root: &Path, stream: &str, dir: &str, gzip: bool) -> BTreeMap<u32, Vec<u64>> {
    let dir = root.join(dir);
    let mut starts: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for path in delivery_files(&dir) {
        let lines = read_file(&dir, &path, stream, gzip).await;
        starts
            .entry(lines[0].shard)
            .or_default()
            .push(lines[0].offset);
    }
    for offsets in starts.values_mut() {
        offsets.sort_unstable();
    }
    starts
}

/// Deliveries on `backend = "nats"`: they read this process's mirror of the cluster, which a
/// restart drops and mirrors again; the checkpoint carries over and nothing repeats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_delivery_on_nats_delivers_each_record_exactly_once_across_sigkill() {
    let nats = crate::nats::Nats::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let backend = format!(
        "[stream]\nbackend = \"nats\"\nnats = {{ servers = [{}], replicas = 1 }}\n",
        nats.servers()
    );
    let path = write_config(
        root,
        &config("4KiB", "1s").replacen("[stream]\n", &backend, 1),
    );
    let mut acked = Acked::new();

    deliver_across_a_sigkill(root, &path, &mut acked).await;
}
