//! The log end to end: appends, reads, reopening, damage, retention, streams.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::*;
use crate::config::stream::StreamSpec;

const HOUR: Duration = Duration::from_secs(3600);

fn options(dir: &Path, segment_size: u64) -> LogOptions {
    LogOptions {
        data_dir: dir.to_path_buf(),
        fsync: FsyncPolicy::Always,
        segment_size,
        mirror: false,
    }
}

fn spec(name: &str, shards: u32, retention: Duration) -> StreamSpec {
    StreamSpec {
        name: name.into(),
        shards,
        retention,
    }
}

fn records(tag: &str, n: usize, size: usize) -> Vec<NewRecord> {
    (0..n)
        .map(|i| NewRecord {
            partition_key: format!("{tag}-{i}"),
            data: Bytes::from(format!("{tag}-{i}:").repeat(size / 4 + 1)[..size].to_owned()),
        })
        .collect()
}

fn shard_dir(data: &Path, stream: &str, shard: u32) -> PathBuf {
    data.join("streams")
        .join(stream)
        .join(format!("shard-{shard:06}"))
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    found.sort();
    found
}

fn read_all(shard: &Shard, from: u64) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    let mut next = from;
    loop {
        let batch = shard.read(next, 7, 1 << 20).unwrap();
        if batch.records.is_empty() {
            return out;
        }
        next = batch.next;
        out.extend(batch.records);
    }
}

/// Appends `records` to shard 0 a few at a time (a segment rolls only between appends).
async fn append_in_parts(
    stream: &Stream,
    records: &[NewRecord],
    per_append: usize,
) -> Vec<Appended> {
    let mut appended = Vec::new();
    for part in records.chunks(per_append) {
        appended.extend(stream.append(0, part.to_vec()).await.unwrap());
    }
    appended
}

/// A log with one API-created stream "s".
fn log_with_stream(dir: &Path, segment_size: u64, shards: u32) -> (Arc<Log>, Arc<Stream>) {
    let log = Log::open(options(dir, segment_size), &[]).unwrap();
    let stream = log.create("s", shards, HOUR).unwrap();
    (log, stream)
}

fn reopen(dir: &Path, segment_size: u64) -> (Arc<Log>, Arc<Stream>) {
    let log = Log::open(options(dir, segment_size), &[]).unwrap();
    let stream = log.get("s").unwrap();
    (log, stream)
}

fn assert_matches(read: &[StoredRecord], written: &[NewRecord], first_offset: u64) {
    assert_eq!(read.len(), written.len());
    for (i, (r, w)) in read.iter().zip(written).enumerate() {
        assert_eq!(r.offset, first_offset + i as u64);
        assert_eq!(r.seq.offset, r.offset);
        assert_eq!((&r.partition_key, &r.data), (&w.partition_key, &w.data));
    }
}

#[tokio::test]
async fn appends_and_reads_across_segment_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, stream) = log_with_stream(dir.path(), 1024, 2);
    let mut written = Vec::new();
    let mut seqs = Vec::new();
    let mut last_arrival = 0;
    for round in 0..5 {
        let batch = records(&format!("r{round}"), 10, 100);
        let appended = stream.append(1, batch.clone()).await.unwrap();
        seqs.extend(appended.iter().map(|a| a.seq));
        last_arrival = appended[9].arrival_ms;
        written.extend(batch);
    }
    let shard = &stream.shards()[1];
    assert!(shard.state.segments().len() > 3, "segments rolled");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert!(
        seqs.windows(2)
            .all(|w| w[0].to_string().parse::<u128>().unwrap()
                < w[1].to_string().parse::<u128>().unwrap())
    );
    assert!(seqs.iter().all(|s| s.shard == 1));
    assert_eq!(
        seqs.iter().map(|s| s.offset).collect::<Vec<_>>(),
        (0..50).collect::<Vec<_>>()
    );
    assert_eq!((shard.first_offset(), shard.next_offset()), (0, 50));
    assert_matches(&read_all(shard, 0), &written, 0);

    let part = shard.read(10, 7, 1 << 20).unwrap();
    assert_eq!(part.next, 17);
    assert_matches(&part.records, &written[10..17], 10);
    // The byte limit stops a batch, but never before its first record.
    let tiny = shard.read(20, 100, 1).unwrap();
    assert_eq!((tiny.records.len(), tiny.next), (1, 21));
    let some = shard.read(20, 100, 250).unwrap();
    assert_eq!((some.records.len(), some.next), (2, 22));
    let none = shard.read(50, 10, 1 << 20).unwrap();
    assert_eq!((none.records.len(), none.next), (0, 50));
    assert!(
        stream.shards()[0]
            .read(0, 10, 100)
            .unwrap()
            .records
            .is_empty()
    );
    assert_eq!(shard.latest_arrival_ms(), Some(last_arrival));
    assert_eq!(read_all(shard, 49)[0].arrival_ms, last_arrival);
}

#[tokio::test]
async fn stream_level_checks() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, stream) = log_with_stream(dir.path(), 1 << 20, 2);
    assert!(matches!(
        stream.append(2, records("x", 1, 1)).await,
        Err(LogError::NoSuchShard { shard: 2, .. })
    ));
    let too_big = vec![NewRecord {
        partition_key: "k".into(),
        data: Bytes::from(vec![0; MAX_DATA_BYTES + 1]),
    }];
    assert!(matches!(
        stream.append(0, too_big).await,
        Err(LogError::RecordTooLarge { .. })
    ));
    assert!(stream.append(0, Vec::new()).await.unwrap().is_empty());
    let half: u128 = 1 << 127;
    assert_eq!(stream.shard_for_hash(0), 0);
    assert_eq!(stream.shard_for_hash(half - 1), 0);
    assert_eq!(stream.shard_for_hash(half), 1);
    assert_eq!(stream.shard_for_hash(u128::MAX), 1);
    assert_eq!(stream.shards()[1].id(), "shardId-000000000001");
    assert_eq!(stream.shards()[1].hash_range(), (half, u128::MAX));
    assert_eq!(stream.shards()[0].latest_arrival_ms(), None);
}

#[tokio::test]
async fn reopening_gives_the_same_records_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let written = records("a", 40, 100);
    let latest = {
        let (_log, stream) = log_with_stream(dir.path(), 1024, 1);
        append_in_parts(&stream, &written, 4).await;
        stream.shards()[0].latest_arrival_ms()
    };
    let shard_files = shard_dir(dir.path(), "s", 0);
    let sealed = files(&shard_files, "seg").len() - 1;
    assert!(sealed > 0);
    assert_eq!(files(&shard_files, "idx").len(), sealed + 1);
    {
        let (_log, stream) = reopen(dir.path(), 1024);
        let shard = &stream.shards()[0];
        assert_eq!(shard.next_offset(), 40);
        assert_eq!(shard.latest_arrival_ms(), latest);
        assert_matches(&read_all(shard, 0), &written, 0);
        let more = stream.append(0, records("b", 3, 10)).await.unwrap();
        assert_eq!(more[0].seq.offset, 40);
        assert!(more[0].arrival_ms >= latest.unwrap());
    }
    // Without any index the segments are scanned and the indexes rebuilt.
    for idx in files(&shard_files, "idx") {
        fs::remove_file(idx).unwrap();
    }
    let (_log, stream) = reopen(dir.path(), 1024);
    let shard = &stream.shards()[0];
    assert_eq!(shard.next_offset(), 43);
    assert_matches(&read_all(shard, 0)[..40], &written, 0);
    assert_eq!(
        files(&shard_files, "idx").len(),
        files(&shard_files, "seg").len()
    );
}

/// The offset past every record `bytes` of torn frames could have held.
fn past_cut(end: u64, bytes: u64) -> u64 {
    end + bytes.div_ceil(frame::MIN_FRAME_LEN)
}

fn last_segment(data: &Path) -> PathBuf {
    files(&shard_dir(data, "s", 0), "seg").pop().unwrap()
}

fn cut_to(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

#[tokio::test]
async fn a_torn_tail_is_cut_at_open_and_its_offsets_are_never_handed_out_again() {
    let dir = tempfile::tempdir().unwrap();
    let written = records("t", 10, 50);
    {
        let (_log, stream) = log_with_stream(dir.path(), 1 << 20, 1);
        stream.append(0, written.clone()).await.unwrap();
    }
    let segment = last_segment(dir.path());
    let full_len = fs::metadata(&segment).unwrap().len();
    let frame_len = frame::encoded_len(written[9].partition_key.len(), 50) as u64;
    // A last record only partly written: record 9 may have been read before the crash.
    cut_to(&segment, full_len - 5);
    let resumed = past_cut(9, frame_len - 5);
    {
        let (_log, stream) = reopen(dir.path(), 1 << 20);
        let shard = &stream.shards()[0];
        assert_eq!(shard.next_offset(), resumed);
        assert!(resumed > 9);
        assert_matches(&read_all(shard, 0), &written[..9], 0);
        assert_eq!(fs::metadata(&segment).unwrap().len(), full_len - frame_len);
        // A read that reaches the gap moves past it, so a consumer is never stuck there.
        assert_eq!(shard.read(0, 100, 1 << 20).unwrap().next, resumed);
        assert_eq!(shard.read(9, 100, 1 << 20).unwrap().next, resumed);
        let again = stream.append(0, written[9..].to_vec()).await.unwrap();
        assert_eq!(again[0].seq.offset, resumed);
        // Reads step over the skipped offsets, from any of them.
        let all = read_all(shard, 0);
        assert_eq!(all.len(), 10);
        assert_eq!(all[9].offset, resumed);
        assert_eq!(read_all(shard, 9)[0].offset, resumed);
    }
    // Garbage after the last record of the new segment.
    let tail = last_segment(dir.path());
    assert_ne!(tail, segment);
    let tail_len = fs::metadata(&tail).unwrap().len();
    let mut garbage = fs::read(&tail).unwrap();
    garbage.extend_from_slice(&[0xEB, 0x5C, 1, 0, 9, 9, 9, 9, 1, 2, 3]);
    fs::write(&tail, &garbage).unwrap();
    let (_log, stream) = reopen(dir.path(), 1 << 20);
    let shard = &stream.shards()[0];
    assert_eq!(shard.next_offset(), past_cut(resumed + 1, 11));
    assert_eq!(fs::metadata(&tail).unwrap().len(), tail_len);
    let kept = read_all(shard, 0);
    assert_eq!(kept.len(), 10);
    assert_eq!(kept[9].partition_key, written[9].partition_key);
    let more = stream.append(0, records("u", 1, 5)).await.unwrap();
    assert_eq!(more[0].seq.offset, past_cut(resumed + 1, 11));
    assert_eq!(read_all(shard, resumed + 1).len(), 1);
    // Time seeks find records on both sides of the gaps.
    assert_eq!(shard.offset_at_timestamp(0).unwrap(), 0);
    let newest = more[0].arrival_ms;
    assert!(shard.offset_at_timestamp(newest).unwrap() <= more[0].seq.offset);
    assert_eq!(
        shard.offset_at_timestamp(newest + 1).unwrap(),
        shard.next_offset()
    );
}

#[tokio::test]
async fn repeated_cuts_and_a_wholly_torn_segment_never_reuse_an_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut highest_seen = None;
    drop(log_with_stream(dir.path(), 1 << 20, 1));
    for round in 0..4 {
        {
            let (_log, stream) = reopen(dir.path(), 1 << 20);
            let shard = &stream.shards()[0];
            assert!(
                highest_seen.is_none_or(|seen| shard.next_offset() > seen),
                "round {round}: next offset {} after {highest_seen:?}",
                shard.next_offset()
            );
            let appended = stream.append(0, records("r", 3, 20)).await.unwrap();
            highest_seen = appended.last().map(|a| a.seq.offset);
        }
        let tail = last_segment(dir.path());
        let len = fs::metadata(&tail).unwrap().len();
        if round % 2 == 1 {
            // The whole segment is garbage: it is cut empty.
            fs::write(&tail, vec![0xEB; len as usize]).unwrap();
        } else {
            cut_to(&tail, len - 3);
        }
    }
    // The gaps are kept by the segments' names: even without any index they stay skipped.
    for index in files(&shard_dir(dir.path(), "s", 0), "idx") {
        fs::remove_file(index).unwrap();
    }
    let (_log, stream) = reopen(dir.path(), 1 << 20);
    let shard = &stream.shards()[0];
    assert!(shard.next_offset() > highest_seen.unwrap());
    let kept: Vec<u64> = read_all(shard, 0).iter().map(|r| r.offset).collect();
    assert!(kept.windows(2).all(|w| w[0] < w[1]), "{kept:?}");
    // Rounds 0 and 2 kept two of their three records; rounds 1 and 3 kept none.
    assert_eq!(kept.len(), 4, "{kept:?}");
}

#[tokio::test]
async fn index_points_past_lost_bytes_are_dropped_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let written = records("p", 100, 200);
    {
        let (_log, stream) = log_with_stream(dir.path(), 1 << 20, 1);
        append_in_parts(&stream, &written, 10).await;
    }
    let segment = files(&shard_dir(dir.path(), "s", 0), "seg").remove(0);
    let len = fs::metadata(&segment).unwrap().len();
    // As after a crash that kept the file's size but not its last bytes, while the
    // (unsynced) index kept points into them.
    let lost_from = 10_000;
    let file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.write_all_at(&vec![0; (len - lost_from) as usize], lost_from)
        .unwrap();
    let mut end = 0;
    let kept = written
        .iter()
        .take_while(|r| {
            end += frame::encoded_len(r.partition_key.len(), r.data.len()) as u64;
            end <= lost_from
        })
        .count();
    let cut_at = written[..kept]
        .iter()
        .map(|r| frame::encoded_len(r.partition_key.len(), r.data.len()) as u64)
        .sum::<u64>();

    let (_log, stream) = reopen(dir.path(), 1 << 20);
    let shard = &stream.shards()[0];
    let resumed = past_cut(kept as u64, len - cut_at);
    assert_eq!(shard.next_offset(), resumed);
    assert_eq!(fs::metadata(&segment).unwrap().len(), cut_at);
    assert_matches(&read_all(shard, 0), &written[..kept], 0);
    assert!(
        shard.state.segments()[0]
            .entries()
            .iter()
            .all(|e| e.position < cut_at)
    );
    let again = stream.append(0, written[kept..].to_vec()).await.unwrap();
    assert_eq!(again[0].seq.offset, resumed);
    assert_matches(&read_all(shard, resumed), &written[kept..], resumed);
}

fn flip_byte(path: &Path, position: u64) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0];
    file.read_exact_at(&mut byte, position).unwrap();
    file.write_all_at(&[byte[0] ^ 0x40], position).unwrap();
}

#[tokio::test]
async fn damage_in_the_last_segment_is_reported_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let written = records("m", 20, 100);
    {
        let (_log, stream) = log_with_stream(dir.path(), 1 << 20, 1);
        stream.append(0, written.clone()).await.unwrap();
    }
    let segment = files(&shard_dir(dir.path(), "s", 0), "seg").remove(0);
    let len_before = fs::metadata(&segment).unwrap().len();
    let frame_len = frame::encoded_len(written[3].partition_key.len(), 100) as u64;
    flip_byte(&segment, 3 * frame_len + 60);

    let (_log, stream) = reopen(dir.path(), 1 << 20);
    let shard = &stream.shards()[0];
    assert_eq!(fs::metadata(&segment).unwrap().len(), len_before);
    assert_eq!(shard.next_offset(), 20);
    // A batch ends before the damage; a read starting at it fails, naming file and byte.
    let head = shard.read(0, 100, 1 << 20).unwrap();
    assert_eq!(head.next, 3);
    assert_matches(&head.records, &written[..3], 0);
    match shard.read(3, 100, 1 << 20) {
        Err(LogError::Corrupt {
            file,
            position,
            detail,
        }) => {
            assert_eq!((file, position), (segment.clone(), 3 * frame_len));
            assert!(detail.contains("resume at offset 4"), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_matches(&read_all(shard, 4), &written[4..], 4);
    let more = stream.append(0, records("n", 2, 10)).await.unwrap();
    assert_eq!(more[0].seq.offset, 20);
    assert_eq!(read_all(shard, 19).len(), 3);
}

#[tokio::test]
async fn damage_in_a_sealed_segment_is_found_by_reads() {
    let dir = tempfile::tempdir().unwrap();
    let written = records("q", 30, 100);
    {
        let (_log, stream) = log_with_stream(dir.path(), 1024, 1);
        append_in_parts(&stream, &written, 3).await;
    }
    let shard_files = shard_dir(dir.path(), "s", 0);
    let first = files(&shard_files, "seg").remove(0);
    let frame_len = frame::encoded_len(written[3].partition_key.len(), 100) as u64;
    flip_byte(&first, 3 * frame_len + 60);
    let (_log, stream) = reopen(dir.path(), 1024);
    let shard = &stream.shards()[0];
    assert!(matches!(
        shard.read(3, 10, 1 << 20),
        Err(LogError::Corrupt { position, .. }) if position == 3 * frame_len
    ));
    // Offsets past the damage are reached by stepping over it.
    assert_matches(&read_all(shard, 4), &written[4..], 4);
    assert_eq!(shard.offset_at_timestamp(0).unwrap(), 0);
}

#[tokio::test]
async fn retention_removes_old_sealed_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let (log, stream) = log_with_stream(dir.path(), 512, 1);
    let old = append_in_parts(&stream, &records("old", 20, 100), 2).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let new_records = records("new", 20, 100);
    let new = append_in_parts(&stream, &new_records, 2).await;
    let shard = &stream.shards()[0];
    let old_last = old.last().unwrap().arrival_ms;
    let segments_before = shard.state.segments().len();
    assert!(segments_before > 4);

    assert_eq!(stream.sweep_retention(SystemTime::now()), 0);
    let now = UNIX_EPOCH + Duration::from_millis(old_last + 1) + HOUR;
    let removed = stream.sweep_retention(now);
    assert!(removed > 0);
    let first = shard.first_offset();
    assert!(first > 0 && first <= new[0].seq.offset, "{first}");
    for segment in shard.state.segments().iter() {
        assert!(segment.last_arrival().unwrap() > old_last);
    }
    let shard_files = shard_dir(dir.path(), "s", 0);
    assert_eq!(files(&shard_files, "seg").len(), segments_before - removed);
    assert_eq!(files(&shard_files, "idx").len(), segments_before - removed);
    // Reads from before the trim horizon start at it.
    let from_zero = read_all(shard, 0);
    assert_eq!(from_zero[0].offset, first);
    assert_matches(&read_all(shard, 20), &new_records, 20);
    assert_eq!(shard.offset_at_timestamp(0).unwrap(), first);

    // Far in the future only the segment being written is left.
    stream.sweep_retention(now + 1000 * HOUR);
    assert_eq!(shard.state.segments().len(), 1);
    assert_eq!(files(&shard_files, "seg").len(), 1);
    assert_eq!(shard.next_offset(), 40);
    let base = shard.state.segments()[0].base;
    assert_eq!(shard.first_offset(), base);
    assert_eq!(read_all(shard, 0).len() as u64, 40 - base);
    drop((log, stream));
    let (_log, stream) = reopen(dir.path(), 512);
    assert_eq!(stream.shards()[0].first_offset(), base);
    assert_eq!(stream.shards()[0].next_offset(), 40);
}

#[tokio::test]
async fn seeks_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, stream) = log_with_stream(dir.path(), 8192, 1);
    let mut batches = Vec::new();
    for round in 0..4 {
        let appended = append_in_parts(&stream, &records(&format!("b{round}"), 40, 200), 5).await;
        batches.push((appended[0].seq.offset, appended[0].arrival_ms));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let shard = &stream.shards()[0];
    assert!(shard.state.segments().len() > 2);
    for &(offset, arrival) in &batches {
        assert_eq!(shard.offset_at_timestamp(arrival).unwrap(), offset);
        assert_eq!(shard.offset_at_timestamp(arrival - 1).unwrap(), offset);
    }
    assert_eq!(shard.offset_at_timestamp(0).unwrap(), 0);
    let latest = shard.latest_arrival_ms().unwrap();
    assert_eq!(shard.offset_at_timestamp(latest + 1).unwrap(), 160);
    let empty_dir = tempfile::tempdir().unwrap();
    let (_empty_log, empty) = log_with_stream(empty_dir.path(), 8192, 1);
    assert_eq!(empty.shards()[0].offset_at_timestamp(5).unwrap(), 0);
}

#[tokio::test]
async fn creates_deletes_and_reloads_streams() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(options(dir.path(), 1 << 20), &[]).unwrap();
        let a = log.create("a", 3, HOUR).unwrap();
        log.create("b.c-d_e", 1, 2 * HOUR).unwrap();
        assert!(matches!(
            log.create("a", 1, HOUR),
            Err(LogError::AlreadyExists(_))
        ));
        assert!(matches!(
            log.create("no/slash", 1, HOUR),
            Err(LogError::InvalidName(_))
        ));
        assert!(matches!(
            log.create("zero", 0, HOUR),
            Err(LogError::TooManyShards { requested: 0 })
        ));
        assert!(matches!(
            log.create("many", MAX_SHARDS + 1, HOUR),
            Err(LogError::TooManyShards { .. })
        ));
        assert_eq!(log.names(), vec!["a", "b.c-d_e"]);
        a.append(2, records("x", 2, 10)).await.unwrap();
        a.set_retention(5 * HOUR).unwrap();
        assert!(!a.configured());
    }
    let log = Log::open(options(dir.path(), 1 << 20), &[]).unwrap();
    assert_eq!(log.names(), vec!["a", "b.c-d_e"]);
    let a = log.get("a").unwrap();
    assert_eq!(a.shards().len(), 3);
    assert_eq!(a.retention(), 5 * HOUR);
    assert_eq!(a.shards()[2].next_offset(), 2);
    let age = SystemTime::now().duration_since(a.created()).unwrap();
    assert!(age < Duration::from_secs(60));

    log.delete("a").unwrap();
    assert!(log.get("a").is_none());
    assert!(matches!(log.delete("a"), Err(LogError::NotFound(_))));
    assert!(!dir.path().join("streams/a").exists());
    // A handle kept across the delete refuses appends.
    assert!(matches!(
        a.append(0, records("y", 1, 1)).await,
        Err(LogError::Closed { .. })
    ));
    drop((a, log));
    let log = Log::open(options(dir.path(), 1 << 20), &[]).unwrap();
    assert_eq!(log.names(), vec!["b.c-d_e"]);
    // The name is free again, and the new stream starts from offset 0.
    let a = log.create("a", 1, HOUR).unwrap();
    assert_eq!(a.shards()[0].next_offset(), 0);
}

#[tokio::test]
async fn every_stream_gets_its_own_creation_time_even_when_the_clock_lags() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(options(dir.path(), 1 << 20), &[]).unwrap();
    // Deleted and made again at once, a name still gets a new identity each time.
    let mut seen = Vec::new();
    for _ in 0..20 {
        seen.push(log.create("again", 1, HOUR).unwrap().created());
        log.delete("again").unwrap();
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    // A stream made an hour "ahead" (a clock that was stepped back since): later streams
    // still come after it, also across a restart.
    log.create("ahead", 1, HOUR).unwrap();
    drop(log);
    let meta_path = dir.path().join("streams/ahead/stream.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let ahead = meta["created_ms"].as_u64().unwrap() + 3_600_000;
    meta["created_ms"] = ahead.into();
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let log = Log::open(options(dir.path(), 1 << 20), &[]).unwrap();
    let next = log.create("next", 1, HOUR).unwrap();
    assert_eq!(
        next.created(),
        UNIX_EPOCH + Duration::from_millis(ahead + 1)
    );
}

#[tokio::test]
async fn half_made_and_half_deleted_streams_never_load() {
    let dir = tempfile::tempdir().unwrap();
    drop(Log::open(options(dir.path(), 1 << 20), &[]).unwrap());
    for side in ["staging/ghost", "trash/gone.1.0"] {
        fs::create_dir_all(dir.path().join(side)).unwrap();
        fs::write(dir.path().join(side).join("stream.json"), "{}").unwrap();
    }
    let log = Log::open(options(dir.path(), 1 << 20), &[]).unwrap();
    assert!(log.names().is_empty());
    assert!(!dir.path().join("staging").exists());
    assert!(!dir.path().join("trash").exists());
}

#[tokio::test]
async fn configured_streams_follow_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || options(dir.path(), 1 << 20);
    {
        let log = Log::open(opts(), &[spec("cfg", 2, 2 * HOUR)]).unwrap();
        let cfg = log.get("cfg").unwrap();
        assert!(cfg.configured());
        assert_eq!((cfg.shards().len(), cfg.retention()), (2, 2 * HOUR));
        assert!(matches!(log.delete("cfg"), Err(LogError::Configured(_))));
        cfg.set_retention(5 * HOUR).unwrap();
    }
    {
        // The config did not change: the API's retention stands.
        let log = Log::open(opts(), &[spec("cfg", 2, 2 * HOUR)]).unwrap();
        assert_eq!(log.get("cfg").unwrap().retention(), 5 * HOUR);
    }
    {
        // The config changed: it wins.
        let log = Log::open(opts(), &[spec("cfg", 2, 3 * HOUR)]).unwrap();
        assert_eq!(log.get("cfg").unwrap().retention(), 3 * HOUR);
    }
    let mismatch = Log::open(opts(), &[spec("cfg", 3, 3 * HOUR)]).unwrap_err();
    assert!(matches!(
        mismatch,
        LogError::ShardMismatch {
            on_disk: 2,
            configured: 3,
            ..
        }
    ));
    let message = mismatch.to_string();
    assert!(
        message.contains("cfg") && message.contains('2') && message.contains('3'),
        "{message}"
    );
    // Out of the config, the stream stays and becomes deletable.
    let log = Log::open(opts(), &[]).unwrap();
    assert!(!log.get("cfg").unwrap().configured());
    log.delete("cfg").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, stream) = log_with_stream(dir.path(), 64 << 20, 1);
    // A large append keeps the writer busy while the small ones queue up behind it.
    let big = {
        let stream = Arc::clone(&stream);
        tokio::spawn(async move { stream.append(0, records("big", 4, MAX_DATA_BYTES)).await })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..10 {
        let stream = Arc::clone(&stream);
        tasks.spawn(async move {
            let batches: Vec<Vec<NewRecord>> = (0..10)
                .map(|i| records(&format!("t{task}.{i}"), 2, 30))
                .collect();
            let appends = batches.iter().map(|b| stream.append(0, b.clone()));
            let results = futures_util::future::join_all(appends).await;
            batches
                .into_iter()
                .zip(results)
                .map(|(batch, result)| (batch, result.unwrap()))
                .collect::<Vec<_>>()
        });
    }
    assert_eq!(big.await.unwrap().unwrap().len(), 4);
    let shard = &stream.shards()[0];
    let mut by_offset = Vec::new();
    while let Some(done) = tasks.join_next().await {
        for (batch, appended) in done.unwrap() {
            // A batch's records stay together and in order.
            assert_eq!(appended[1].seq.offset, appended[0].seq.offset + 1);
            by_offset.extend(appended.iter().map(|a| a.seq.offset).zip(batch));
        }
    }
    assert_eq!(shard.next_offset(), 204);
    let syncs = shard.syncs();
    assert!(syncs < 101, "{syncs} syncs for 101 appends");
    let all = read_all(shard, 0);
    assert_eq!(all.len(), 204);
    assert!(all.windows(2).all(|w| w[0].offset + 1 == w[1].offset));
    for (offset, record) in by_offset {
        let stored = &all[offset as usize];
        assert_eq!(
            (&stored.partition_key, &stored.data),
            (&record.partition_key, &record.data)
        );
    }
}

#[tokio::test]
async fn a_failed_write_is_cut_back_and_later_appends_work() {
    let dir = tempfile::tempdir().unwrap();
    let first = records("ok", 3, 40);
    {
        let (_log, stream) = log_with_stream(dir.path(), 1 << 20, 1);
        stream.append(0, first.clone()).await.unwrap();
        let shard = &stream.shards()[0];
        let segment = files(&shard_dir(dir.path(), "s", 0), "seg").remove(0);
        let committed = fs::metadata(&segment).unwrap().len();

        shard.state.fail_writes.store(1, Ordering::SeqCst);
        match stream.append(0, records("lost", 5, 40)).await {
            Err(LogError::Io { context, source }) => {
                assert!(
                    context.contains(&segment.display().to_string()),
                    "{context}"
                );
                assert_eq!(source.kind(), std::io::ErrorKind::StorageFull);
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
        assert_eq!(fs::metadata(&segment).unwrap().len(), committed);
        assert_eq!(shard.next_offset(), 3);
        assert_matches(&read_all(shard, 0), &first, 0);

        let later = stream.append(0, records("later", 2, 40)).await.unwrap();
        assert_eq!(later[0].seq.offset, 3);
    }
    let (_log, stream) = reopen(dir.path(), 1 << 20);
    let all = read_all(&stream.shards()[0], 0);
    assert_eq!(all.len(), 5);
    assert!(all[3].partition_key.starts_with("later"));
}

#[tokio::test]
async fn interval_policy_syncs_on_its_timer() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        LogOptions {
            data_dir: dir.path().to_path_buf(),
            fsync: FsyncPolicy::Interval(Duration::from_millis(100)),
            segment_size: 1 << 20,
            mirror: false,
        },
        &[spec("i", 1, HOUR)],
    )
    .unwrap();
    let stream = log.get("i").unwrap();
    stream.append(0, records("x", 3, 10)).await.unwrap();
    let shard = &stream.shards()[0];
    assert_eq!(shard.syncs(), 0, "acknowledged before any sync");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(shard.syncs(), 1);
    stream.append(0, records("y", 1, 10)).await.unwrap();
    log.close().await.unwrap();
    assert!(shard.syncs() >= 2);
}

#[tokio::test]
async fn maintenance_runs_until_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _stream) = log_with_stream(dir.path(), 1 << 20, 1);
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = log.spawn_maintenance(cancel.clone());
    tokio::time::sleep(Duration::from_millis(20)).await;
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_mirror_keeps_configured_streams_across_opens_and_empties_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = LogOptions {
        mirror: true,
        ..options(dir.path(), 1 << 20)
    };
    let both = [spec("orders", 2, HOUR), spec("gone", 1, HOUR)];
    let log = Log::open(mirror.clone(), &both).unwrap();
    for name in ["orders", "gone"] {
        let stream = log.get(name).unwrap();
        stream.shards()[0]
            .mirror(5, records("m", 3, 10), vec![1, 2, 3])
            .await
            .unwrap();
        stream.set_mirror_of(vec!["a".into(), "b".into()]).unwrap();
    }
    log.close().await.unwrap();
    drop(log);

    // Reopened with "gone" out of the config: its copy goes, "orders" stays as it was.
    let log = Log::open(mirror.clone(), &both[..1]).unwrap();
    assert_eq!(log.names(), ["orders"]);
    assert!(!dir.path().join("streams/gone").exists());
    let orders = log.get("orders").unwrap();
    assert_eq!(orders.mirror_of(), Some(vec!["a".into(), "b".into()]));
    let kept = read_all(&orders.shards()[0], 0);
    assert_eq!(
        kept.iter()
            .map(|r| (r.offset, r.arrival_ms))
            .collect::<Vec<_>>(),
        [(5, 1), (6, 2), (7, 3)]
    );

    // Emptied: no records, nothing recorded as mirrored, the same settings; the map
    // serves the new one.
    let created = orders.created();
    let emptied = log.reset_mirror("orders").unwrap();
    assert!(Arc::ptr_eq(&emptied, &log.get("orders").unwrap()));
    assert_eq!(emptied.shards()[0].next_offset(), 0);
    assert!(read_all(&emptied.shards()[0], 0).is_empty());
    assert_eq!(emptied.mirror_of(), None);
    assert_eq!((emptied.created(), emptied.retention()), (created, HOUR));
    log.close().await.unwrap();
    drop(log);

    // Another shard count in the config: the copy cannot serve it and goes too.
    let log = Log::open(mirror, &[spec("orders", 3, HOUR)]).unwrap();
    assert_eq!(log.get("orders").unwrap().shards().len(), 3);
}
