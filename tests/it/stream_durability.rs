//! The stream log's durability through the real binary: SIGKILL during concurrent
//! PutRecords and restart (repeatedly), a torn tail, damage in the middle of a segment, and
//! a full disk.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::stream_harness::{Client, Got, seq_of, seq_parts};
use crate::stream_process::*;

pub(crate) const STREAM: &str = "crash";
pub(crate) const SHARDS: u32 = 4;
const WRITERS: usize = 4;
pub(crate) const BATCH: usize = 50;

fn crash_config() -> String {
    format!(
        r#"[stream]
listen = ["127.0.0.1:0"]
data_dir = "data"
fsync = "always"
segment_size = "1MiB"

[[stream.streams]]
name = "{STREAM}"
shards = {SHARDS}
"#
    )
}

/// The record a writer puts as its `n`th: `w<task>-<n>|` then filler that depends on both,
/// 600 to 2,600 bytes, so segments of 1 MiB roll during the test.
pub(crate) fn payload(task: usize, n: usize) -> Vec<u8> {
    let mut data = format!("w{task}-{n}|").into_bytes();
    let filler = 600 + (n * 7919 + task * 104_729) % 2000;
    data.extend((0..filler).map(|i| b'a' + ((i + n + task) % 26) as u8));
    data
}

pub(crate) fn partition_key(task: usize, n: usize) -> String {
    format!("pk-{task}-{}", n % 11)
}

/// `(task, n)` from a record's data.
fn id_of(data: &[u8]) -> (usize, usize) {
    let text = std::str::from_utf8(data).expect("UTF-8 payload");
    let (head, _) = text.split_once('|').expect("payload id");
    let (task, n) = head
        .strip_prefix('w')
        .and_then(|h| h.split_once('-'))
        .expect("payload id");
    (task.parse().unwrap(), n.parse().unwrap())
}

/// What the writers learnt: records acknowledged at a place, and records whose put got no
/// (or a failed) answer, which may or may not have been written.
#[derive(Default, Clone)]
pub(crate) struct Ledger {
    pub acked: HashMap<(usize, usize), (u32, u64)>,
    pub maybe: HashSet<(usize, usize)>,
}

/// A record to put: partition key, explicit hash key, data.
type Put = (String, Option<u128>, Vec<u8>);
/// What a PutRecords answered: each record's place or error code, or no answer at all.
type PutOutcome = Result<Vec<Result<(u32, u64), String>>, String>;

/// The `n`th batch of writer `task`: its ids and its records.
fn batch(task: usize, n: usize) -> (Vec<(usize, usize)>, Vec<Put>) {
    let ids: Vec<(usize, usize)> = (n..n + BATCH).map(|n| (task, n)).collect();
    let records = ids
        .iter()
        .map(|&(t, n)| (partition_key(t, n), None, payload(t, n)))
        .collect();
    (ids, records)
}

/// Writes what a put of `ids` answered into `ledger`: `None` when it got no answer (every
/// record may or may not be stored), else whether every record was acknowledged.
fn note(ledger: &Mutex<Ledger>, ids: Vec<(usize, usize)>, outcome: PutOutcome) -> Option<bool> {
    let mut ledger = ledger.lock().unwrap();
    let Ok(outcomes) = outcome else {
        ledger.maybe.extend(ids);
        return None;
    };
    let mut whole = true;
    for (id, outcome) in ids.into_iter().zip(outcomes) {
        match outcome {
            Ok(place) => assert!(ledger.acked.insert(id, place).is_none()),
            Err(_) => {
                whole = false;
                ledger.maybe.insert(id);
            }
        }
    }
    Some(whole)
}

/// Puts batches of [`BATCH`] records until `stop`. With `through_failures` it goes on after a
/// failed put (each of whose records may or may not be stored) and counts only the batches
/// acknowledged whole; without, it stops at the first put with no answer (the server is
/// gone) and counts every answered one.
pub(crate) async fn writer(
    addr: std::net::SocketAddr,
    task: usize,
    ledger: Arc<Mutex<Ledger>>,
    batches: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    through_failures: bool,
) {
    let mut client = Client::new(addr);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let (ids, records) = batch(task, n);
        n += BATCH;
        let outcome = client.put_records(STREAM, &records).await;
        match (note(&ledger, ids, outcome), through_failures) {
            (Some(true), _) | (Some(false), false) => {
                batches.fetch_add(1, Ordering::SeqCst);
            }
            (None, false) => return,
            (_, true) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Reads every shard and checks it against `ledger` and what earlier rounds saw (`seen`,
/// which it extends): offsets increasing (with gaps only where recovery cut a torn record),
/// every acknowledged record at its acknowledged place exactly once, nothing unknown,
/// nothing corrupted, nothing seen before gone or moved. Returns, for each shard, the offset
/// after its last record.
pub(crate) async fn verify(
    client: &mut Client,
    ledger: &Ledger,
    seen: &mut HashMap<(usize, usize), (u32, u64)>,
) -> Vec<u64> {
    let mut tips = Vec::new();
    let mut found: HashMap<(usize, usize), (u32, u64)> = HashMap::new();
    for shard in 0..SHARDS {
        let records = client.read_all(STREAM, shard).await;
        // Offsets increase; a gap is left where recovery cut a torn record.
        let mut next = 0;
        for (i, record) in records.iter().enumerate() {
            let (s, offset) = seq_parts(&record.seq);
            assert!(
                s == shard && offset >= next,
                "shard {shard}: record {i} has sequence number {} after offset {next}",
                record.seq
            );
            next = offset + 1;
            let id = id_of(&record.data);
            assert!(
                record.data == payload(id.0, id.1),
                "shard {shard} offset {offset}: record w{}-{} is corrupted",
                id.0,
                id.1
            );
            assert_eq!(record.key, partition_key(id.0, id.1));
            if let Some(earlier) = found.insert(id, (shard, offset)) {
                panic!(
                    "record w{}-{} is present twice: {earlier:?} and {:?}",
                    id.0,
                    id.1,
                    (shard, offset)
                );
            }
        }
        tips.push(next);
    }
    for (id, place) in &ledger.acked {
        assert_eq!(
            found.get(id),
            Some(place),
            "acknowledged record w{}-{} at {place:?}",
            id.0,
            id.1
        );
    }
    for (id, place) in seen.iter() {
        assert_eq!(
            found.get(id),
            Some(place),
            "record w{}-{} read back earlier at {place:?}",
            id.0,
            id.1
        );
    }
    for id in found.keys() {
        assert!(
            ledger.acked.contains_key(id) || ledger.maybe.contains(id),
            "record w{}-{} was never put",
            id.0,
            id.1
        );
    }
    seen.extend(found);
    tips
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_durability_acknowledged_puts_survive_repeated_sigkill() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &crash_config());
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut seen = HashMap::new();
    // Kill after this many acknowledged batches in each round.
    for (round, kill_after) in [24_usize, 41, 13].into_iter().enumerate() {
        let mut server = Server::start(&config);
        if round > 0 {
            // Recovery ran on the data the previous round left: check it before writing more.
            let mut client = Client::new(server.addr);
            let snapshot = ledger.lock().unwrap().clone();
            verify(&mut client, &snapshot, &mut seen).await;
        }
        let batches = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                tokio::spawn(writer(
                    server.addr,
                    round * 10 + w,
                    ledger.clone(),
                    batches.clone(),
                    stop.clone(),
                    false,
                ))
            })
            .collect();
        wait_for(
            &format!("round {round}: {kill_after} acknowledged batches"),
            LIMIT,
            || batches.load(Ordering::SeqCst) >= kill_after,
        )
        .await;
        // The writers are mid-request: each sends its next batch as soon as one is answered.
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for task in writers {
            tokio::time::timeout(LIMIT, task)
                .await
                .expect("writers stop once the server is gone")
                .unwrap();
        }
    }
    // After the last kill: recovery, every record once, and appends continue the numbering.
    let mut server = Server::start(&config);
    let mut client = Client::new(server.addr);
    let snapshot = ledger.lock().unwrap().clone();
    let tips = verify(&mut client, &snapshot, &mut seen).await;
    let (in_flight, maybe_present) = {
        let ledger = ledger.lock().unwrap();
        let present = seen.keys().filter(|id| ledger.maybe.contains(id)).count();
        (ledger.maybe.len(), present)
    };
    let acked = ledger.lock().unwrap().acked.len();
    assert!(acked >= (24 + 41 + 13) * BATCH, "{acked} acknowledged");
    let extra: Vec<_> = (0..40)
        .map(|n| (partition_key(99, n), None, payload(99, n)))
        .collect();
    let outcomes = client.put_records(STREAM, &extra).await.unwrap();
    let mut next = tips.clone();
    for (n, outcome) in outcomes.into_iter().enumerate() {
        let (shard, offset) = outcome.expect("put after the restart");
        assert!(
            offset >= next[shard as usize],
            "shard {shard}: offset {offset} is below {}, which recovery kept or cut",
            next[shard as usize]
        );
        next[shard as usize] = offset + 1;
        ledger
            .lock()
            .unwrap()
            .acked
            .insert((99, n), (shard, offset));
    }
    let snapshot = ledger.lock().unwrap().clone();
    let tips = verify(&mut client, &snapshot, &mut seen).await;
    assert_eq!(tips, next);
    let segment_count: usize = (0..SHARDS)
        .map(|s| segments(&dir.path().join("data"), STREAM, s).len())
        .sum();
    assert!(
        segment_count > SHARDS as usize,
        "segments rolled during the test ({segment_count} files)"
    );
    assert_eq!(server.terminate().code(), Some(0), "{}", server.stderr());
    eprintln!(
        "crash test: {acked} acknowledged, {in_flight} unacknowledged of which \
         {maybe_present} present, {segment_count} segments, {:?}",
        started.elapsed()
    );
}

fn two_shard_config(stream: &str, segment_size: &str) -> String {
    format!(
        r#"[stream]
listen = ["127.0.0.1:0"]
data_dir = "data"
fsync = "always"
segment_size = "{segment_size}"

[[stream.streams]]
name = "{stream}"
shards = 2
"#
    )
}

/// An explicit hash key for shard 0 or 1 of a two-shard stream.
fn hash_for(shard: u32) -> Option<u128> {
    Some(if shard == 0 { 0 } else { u128::MAX })
}

fn record_data(shard: u32, n: usize, len: usize) -> Vec<u8> {
    let mut data = format!("s{shard}-r{n}:").into_bytes();
    data.resize(len.max(data.len()), b'0' + (n % 10) as u8);
    data
}

/// Puts `count` records of `len` bytes to `shard`, starting at `from`, in batches, checking
/// they get the offsets `from..from + count`.
async fn put_numbered(
    client: &mut Client,
    stream: &str,
    shard: u32,
    from: usize,
    count: usize,
    len: usize,
) {
    for start in (from..from + count).step_by(25) {
        let end = (start + 25).min(from + count);
        let records: Vec<_> = (start..end)
            .map(|n| (format!("k{n}"), hash_for(shard), record_data(shard, n, len)))
            .collect();
        let outcomes = client.put_records(stream, &records).await.unwrap();
        for (n, outcome) in (start..end).zip(outcomes) {
            assert_eq!(
                outcome,
                Ok((shard, n as u64)),
                "record {n} of shard {shard}"
            );
        }
    }
}

fn assert_numbered(records: &[Got], shard: u32, offsets: std::ops::Range<usize>, len: usize) {
    let got: Vec<String> = records.iter().map(|r| r.seq.clone()).collect();
    let want: Vec<String> = offsets.clone().map(|n| seq_of(shard, n as u64)).collect();
    assert_eq!(got, want, "shard {shard}: sequence numbers");
    for (record, n) in records.iter().zip(offsets) {
        assert!(
            record.data == record_data(shard, n, len),
            "shard {shard} record {n}: data"
        );
        assert_eq!(record.key, format!("k{n}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_durability_a_torn_tail_is_cut_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(dir.path(), &two_shard_config("torn", "1MiB"));
    let mut server = Server::start(&config);
    let mut client = Client::new(server.addr);
    put_numbered(&mut client, "torn", 0, 0, 40, 300).await;
    put_numbered(&mut client, "torn", 1, 0, 40, 300).await;
    server.kill();

    // Shard 0: the last record loses its last 5 bytes, as if the write was cut short.
    let seg0 = segments(&data, "torn", 0).pop().unwrap();
    let last = *frames(&seg0).last().unwrap();
    assert_eq!(last.offset, 39);
    let file = std::fs::OpenOptions::new().write(true).open(&seg0).unwrap();
    file.set_len(last.position + last.len - 5).unwrap();
    drop(file);
    // Shard 1: a frame header and half a body after the last record, then zeros.
    let seg1 = segments(&data, "torn", 1).pop().unwrap();
    let mut garbage = vec![0xEB, 0x5C, 1, 0];
    garbage.extend_from_slice(&400_u32.to_le_bytes());
    garbage.extend_from_slice(&0xDEAD_BEEF_u32.to_le_bytes());
    garbage.extend((0..150).map(|i| (i * 37 % 251) as u8));
    garbage.extend([0; 64]);
    let mut bytes = std::fs::read(&seg1).unwrap();
    let good_len = bytes.len();
    bytes.extend_from_slice(&garbage);
    std::fs::write(&seg1, &bytes).unwrap();

    let mut server = Server::start(&config);
    let log = server.stderr();
    for seg in [&seg0, &seg1] {
        let name = seg.display().to_string();
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains("torn record") && l.contains(&name)),
            "a warning names {name}:\n{log}"
        );
    }
    assert_eq!(
        std::fs::metadata(&seg1).unwrap().len(),
        good_len as u64,
        "the garbage was cut off"
    );
    let mut client = Client::new(server.addr);
    assert_numbered(&client.read_all("torn", 0).await, 0, 0..39, 300);
    assert_numbered(&client.read_all("torn", 1).await, 1, 0..40, 300);
    // The cut bytes' sequence numbers are never handed out again (a consumer may have read
    // record 39 of shard 0 before the crash): new records land above all of them.
    let resumed0 = put_after_cut(&mut client, "torn", 0, 39).await;
    let resumed1 = put_after_cut(&mut client, "torn", 1, 40).await;
    assert_cut_and_continued(&client.read_all("torn", 0).await, 0, 39, resumed0);
    assert_cut_and_continued(&client.read_all("torn", 1).await, 1, 40, resumed1);

    // The repaired segments recover without complaint, and keep the skip.
    server.kill();
    let mut server = Server::start(&config);
    let log = server.stderr();
    assert!(
        !log.contains("WARN") && !log.contains("ERROR"),
        "a clean restart:\n{log}"
    );
    let mut client = Client::new(server.addr);
    assert_cut_and_continued(&client.read_all("torn", 0).await, 0, 39, resumed0);
    assert_cut_and_continued(&client.read_all("torn", 1).await, 1, 40, resumed1);
    assert_eq!(server.terminate().code(), Some(0));
}

/// Puts ten records to `shard` after recovery kept offsets `0..kept` and cut what followed
/// (which may have held offset `kept`); checks they are numbered consecutively from above
/// `kept` and returns the first one's offset.
async fn put_after_cut(client: &mut Client, stream: &str, shard: u32, kept: u64) -> u64 {
    let records: Vec<_> = (0..10)
        .map(|n| (format!("k{n}"), hash_for(shard), record_data(shard, n, 300)))
        .collect();
    let outcomes = client.put_records(stream, &records).await.unwrap();
    let first = outcomes[0].as_ref().map_or(0, |(_, offset)| *offset);
    assert!(
        first > kept,
        "shard {shard}: offset {first} after cutting what followed offset {}",
        kept - 1
    );
    for (i, outcome) in outcomes.into_iter().enumerate() {
        assert_eq!(
            outcome,
            Ok((shard, first + i as u64)),
            "record {i} of shard {shard}"
        );
    }
    first
}

/// `records` are the `kept` records from before the cut, then the ten [`put_after_cut`] put
/// from offset `resumed` on.
fn assert_cut_and_continued(records: &[Got], shard: u32, kept: usize, resumed: u64) {
    assert_eq!(records.len(), kept + 10, "shard {shard}: records");
    assert_numbered(&records[..kept], shard, 0..kept, 300);
    for (n, record) in records[kept..].iter().enumerate() {
        assert_eq!(
            record.seq,
            seq_of(shard, resumed + n as u64),
            "shard {shard}"
        );
        assert!(
            record.data == record_data(shard, n, 300),
            "shard {shard}: data"
        );
        assert_eq!(record.key, format!("k{n}"));
    }
}

/// Flips one byte in the data of the record at `offset` of `segment`.
fn flip_byte_of(segment: &Path, offset: u64) {
    let frame = frames(segment)
        .into_iter()
        .find(|f| f.offset == offset)
        .unwrap_or_else(|| panic!("no record {offset} in {}", segment.display()));
    let mut bytes = std::fs::read(segment).unwrap();
    let at = (frame.position + frame.len - 3) as usize;
    bytes[at] ^= 0x40;
    std::fs::write(segment, bytes).unwrap();
}

/// Reading from TRIM_HORIZON stops at the damage with an error whose incident the server
/// log explains, naming the file; reading from after it works.
async fn assert_damage_reported(
    server: &Server,
    stream: &str,
    shard: u32,
    segment: &Path,
    damaged: u64,
    count: usize,
    len: usize,
) {
    let mut client = Client::new(server.addr);
    let iterator = client.iterator(stream, shard, "TRIM_HORIZON", None).await;
    let (before, error) = client.read_from(iterator).await;
    assert_numbered(&before, shard, 0..damaged as usize, len);
    let error =
        error.unwrap_or_else(|| panic!("shard {shard}: the damage is not skipped silently"));
    assert_eq!(error.status, 500, "{error:?}");
    assert_eq!(error.body["__type"], json!("InternalFailure"), "{error:?}");
    // The client learns an incident id; the server log has the file under it.
    let message = error.body["message"].as_str().unwrap();
    assert!(!message.contains('/'), "no server path: {message}");
    let incident = message
        .split_once("incident ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(id, _)| id)
        .unwrap_or_else(|| panic!("an incident id: {message}"));
    // The line may reach the test's reader a moment after the answer: wait for it (bounded).
    let name = segment.display().to_string();
    let logged = |log: &str| {
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains(incident) && l.contains(&name))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut log = server.stderr();
    while !logged(&log) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        log = server.stderr();
    }
    assert!(
        logged(&log),
        "the log names {name} under incident {incident}:\n{log}"
    );
    for (kind, seq) in [
        ("AT_SEQUENCE_NUMBER", seq_of(shard, damaged + 1)),
        ("AFTER_SEQUENCE_NUMBER", seq_of(shard, damaged)),
    ] {
        let iterator = client.iterator(stream, shard, kind, Some(&seq)).await;
        let (after, error) = client.read_from(iterator).await;
        assert!(error.is_none(), "shard {shard} {kind}: {error:?}");
        assert_numbered(&after, shard, damaged as usize + 1..count, len);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_durability_damage_mid_segment_is_reported_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(dir.path(), &two_shard_config("mid", "1MiB"));
    let mut server = Server::start(&config);
    let mut client = Client::new(server.addr);
    // Shard 0: small records in one segment, which recovery scans whole.
    put_numbered(&mut client, "mid", 0, 0, 30, 60).await;
    // Shard 1: records of 8 KiB, so the first segment is sealed (and trusted by its index).
    put_numbered(&mut client, "mid", 1, 0, 200, 8 << 10).await;
    assert_eq!(server.terminate().code(), Some(0));
    let seg0 = segments(&data, "mid", 0).remove(0);
    let shard1 = segments(&data, "mid", 1);
    assert!(shard1.len() >= 2, "shard 1 rolled: {shard1:?}");
    let seg1 = shard1[0].clone();
    flip_byte_of(&seg0, 10);
    flip_byte_of(&seg1, 10);

    let mut server = Server::start(&config);
    let log = server.stderr();
    let name = seg0.display().to_string();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("damaged records") && l.contains(&name)),
        "recovery reports the damage in {name}:\n{log}"
    );
    assert!(
        !log.contains("torn record"),
        "damage followed by records is not cut:\n{log}"
    );
    let mut client = Client::new(server.addr);
    assert_damage_reported(&server, "mid", 0, &seg0, 10, 30, 60).await;
    assert_damage_reported(&server, "mid", 1, &seg1, 10, 200, 8 << 10).await;
    // Appends go on after the damage.
    put_numbered(&mut client, "mid", 0, 30, 5, 60).await;
    let iterator = client
        .iterator("mid", 0, "AT_SEQUENCE_NUMBER", Some(&seq_of(0, 11)))
        .await;
    let (after, error) = client.read_from(iterator).await;
    assert!(error.is_none(), "{error:?}");
    assert_numbered(&after, 0, 11..35, 60);
    assert_eq!(server.terminate().code(), Some(0));
}

/// Whether this machine lets us mount a tmpfs in a private mount namespace.
fn can_mount_tmpfs(probe: &Path) -> bool {
    std::fs::create_dir_all(probe).unwrap();
    let Ok(mut child) = Command::new("unshare")
        .args([
            "-rm",
            "sh",
            "-c",
            "mount -t tmpfs -o size=64k tmpfs \"$1\"",
            "sh",
        ])
        .arg(probe)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// With its data folder on a 3 MiB tmpfs (a private mount namespace, where unshare -rm
/// works): puts that do not fit fail as InternalFailure, nothing partial is ever readable,
/// the server keeps serving, and once space is freed (a created stream deleted) appends
/// continue the numbering without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_durability_a_full_disk_fails_puts_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Not skipped quietly: a machine without namespaces must opt out by name.
    if !can_mount_tmpfs(&data) {
        assert!(
            std::env::var_os("EDGEWISE_NO_NAMESPACES").is_some(),
            "cannot mount a tmpfs in a user and mount namespace (unshare -rm); \
             set EDGEWISE_NO_NAMESPACES=1 to run the suite without the full-disk test"
        );
        eprintln!("full-disk test not run: EDGEWISE_NO_NAMESPACES is set");
        return;
    }
    let config = write_config(
        dir.path(),
        r#"[stream]
listen = ["127.0.0.1:0"]
data_dir = "data"
fsync = "always"
segment_size = "1MiB"
allow_create_streams = true

[[stream.streams]]
name = "full"
shards = 1
"#,
    );
    let mut command = Command::new("unshare");
    command
        .args([
            "-rm",
            "sh",
            "-c",
            "mount -t tmpfs -o size=3m tmpfs \"$1\" && exec \"$2\" --config \"$3\"",
            "sh",
        ])
        .arg(&data)
        .arg(BIN)
        .arg(&config);
    let mut server = Server::spawn(command);
    let mut client = Client::new(server.addr);
    // A created stream takes most of the space.
    client
        .ok(
            "CreateStream",
            &json!({"StreamName": "filler", "ShardCount": 1}),
        )
        .await;
    let big = vec![b'f'; 256 << 10];
    let mut filled = 0;
    loop {
        let records: Vec<_> = (0..2)
            .map(|i| (format!("f{i}"), None, big.clone()))
            .collect();
        let outcomes = client.put_records("filler", &records).await.unwrap();
        if outcomes.iter().any(Result::is_err) {
            break;
        }
        filled += 2;
        assert!(filled < 40, "a 3 MiB disk took {filled} records of 256 KiB");
    }
    // The stream under test: records of 16 KiB until the disk refuses them.
    let len = 16 << 10;
    let mut acked = 0_usize;
    let mut failures = 0;
    for attempt in 0..200 {
        let records = vec![(format!("k{acked}"), None, record_data(0, acked, len))];
        let outcomes = client.put_records("full", &records).await.unwrap();
        match &outcomes[0] {
            Ok(place) => {
                assert_eq!(*place, (0, acked as u64), "attempt {attempt}");
                acked += 1;
            }
            Err(code) => {
                assert_eq!(code, "InternalFailure");
                failures += 1;
                if failures == 5 {
                    break;
                }
            }
        }
    }
    assert_eq!(failures, 5, "the disk filled up ({acked} records fitted)");
    eprintln!("full disk: {filled} filler records, {acked} records of 16 KiB, then failures");
    // Everything acknowledged reads back, and nothing of the failed puts.
    assert_numbered(&client.read_all("full", 0).await, 0, 0..acked, len);
    let tip = client.iterator("full", 0, "LATEST", None).await;
    let (none, error) = client.read_from(tip).await;
    assert!(none.is_empty() && error.is_none());
    // Free the space; appends resume at the next offset.
    client
        .ok("DeleteStream", &json!({"StreamName": "filler"}))
        .await;
    let deadline = Instant::now() + LIMIT;
    loop {
        let records = vec![(format!("k{acked}"), None, record_data(0, acked, len))];
        let outcomes = client.put_records("full", &records).await.unwrap();
        if let Ok(place) = &outcomes[0] {
            assert_eq!(*place, (0, acked as u64), "no gap after the failures");
            acked += 1;
            break;
        }
        assert!(
            Instant::now() < deadline,
            "puts still fail after freeing space"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    put_more(&mut client, acked, 3, len).await;
    assert_numbered(&client.read_all("full", 0).await, 0, 0..acked + 3, len);
    let log = server.stderr();
    assert!(
        log.contains("No space left on device") || log.contains("StorageFull"),
        "the failure is logged:\n{log}"
    );
    assert_eq!(server.terminate().code(), Some(0), "{}", server.stderr());
}

async fn put_more(client: &mut Client, from: usize, count: usize, len: usize) {
    let records: Vec<_> = (from..from + count)
        .map(|n| (format!("k{n}"), None, record_data(0, n, len)))
        .collect();
    let outcomes = client.put_records("full", &records).await.unwrap();
    for (n, outcome) in (from..).zip(outcomes) {
        assert_eq!(outcome, Ok((0, n as u64)));
    }
}

#[test]
fn a_second_process_on_the_same_data_dir_stops_before_touching_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &two_shard_config("shared", "1MiB"));
    let mut first = Server::start(&config);
    let before = snapshot(&dir.path().join("data"));
    let second = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .env_remove("EDGEWISE_CONFIG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(
        second.status.code(),
        Some(64),
        "the second process must not run, and exits as for a bad config: {stderr}"
    );
    assert!(
        stderr.contains("in use by another edgewise process")
            && stderr.contains(&format!("(pid {})", first.pid())),
        "{stderr}"
    );
    assert_eq!(
        snapshot(&dir.path().join("data")),
        before,
        "nothing on disk was touched"
    );
    assert!(first.terminate().success(), "the first process is unharmed");
    // Once it has gone, the folder is free; the start names the stream it reopened.
    let mut next = Server::start(&config);
    let log = next.stderr();
    assert!(
        log.lines()
            .any(|line| line.contains("reopened stream") && line.contains("stream=\"shared\"")),
        "{log}"
    );
    assert!(next.terminate().success());
}

/// Every file under `dir` with its length and modification time.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                files.push((entry.path(), meta.len(), meta.modified().unwrap()));
            }
        }
    }
    files.sort();
    files
}
