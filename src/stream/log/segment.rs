//! One segment file as readers see it — committed length, end offset, newest arrival and
//! index points, all published by the writer — and reads by offset and by time within it.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use super::cursor::{Cursor, ScanError};
use super::frame::Frame;
use super::index::IndexEntry;
use super::{LogError, SeqNo, StoredRecord};

/// Stands for "no records yet" in [`Segment::last_arrival`].
const NO_ARRIVAL: u64 = u64::MAX;
/// Read-ahead for reads: a few index spacings.
const READ_CHUNK: usize = 64 << 10;

/// `00000000000000000042.seg`: the first offset, zero-padded so names sort by offset.
pub(super) fn file_name(base: u64) -> String {
    format!("{base:020}.seg")
}

/// The first offset of a segment file name, if it is one.
pub(super) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(super) struct Segment {
    /// Offset of its first record.
    pub base: u64,
    pub path: PathBuf,
    /// Read-only handle for positional reads; the writer has its own.
    file: File,
    /// Bytes holding committed records; readers never look past it.
    len: AtomicU64,
    /// The offset after its last committed record. The next segment may start above it: a
    /// gap recovery left after cutting a torn tail, whose offsets are never handed out.
    end: AtomicU64,
    last_arrival: AtomicU64,
    index: RwLock<Vec<IndexEntry>>,
}

/// The records a read has gathered so far and its limits.
pub(super) struct Collect {
    shard: u32,
    pub records: Vec<StoredRecord>,
    /// The offset to read from next.
    pub next: u64,
    bytes: usize,
    max_records: usize,
    max_bytes: usize,
    /// A record was left for the next read: it would have passed `max_bytes`.
    stopped: bool,
}

impl Collect {
    pub fn new(shard: u32, from: u64, max_records: usize, max_bytes: usize) -> Collect {
        Collect {
            shard,
            records: Vec::new(),
            next: from,
            bytes: 0,
            max_records,
            max_bytes,
            stopped: false,
        }
    }

    pub fn full(&self) -> bool {
        self.stopped || self.records.len() >= self.max_records || self.bytes >= self.max_bytes
    }

    /// Takes `frame` unless it would pass the byte limit; the first record is always taken.
    fn take(&mut self, frame: Frame) -> bool {
        let size = frame.key.len() + frame.data.len();
        if !self.records.is_empty() && self.bytes + size > self.max_bytes {
            self.stopped = true;
            return false;
        }
        self.bytes += size;
        self.next = frame.offset + 1;
        self.records.push(StoredRecord {
            offset: frame.offset,
            seq: SeqNo {
                shard: self.shard,
                offset: frame.offset,
            },
            arrival_ms: frame.arrival_ms,
            partition_key: frame.key,
            data: frame.data,
        });
        true
    }
}

/// Where a scan starts: a record boundary with a known offset.
#[derive(Clone, Copy)]
struct Start {
    offset: u64,
    position: u64,
}

impl Segment {
    pub fn new(
        base: u64,
        path: PathBuf,
        file: File,
        len: u64,
        end: u64,
        last_arrival: Option<u64>,
        entries: Vec<IndexEntry>,
    ) -> Segment {
        Segment {
            base,
            path,
            file,
            len: AtomicU64::new(len),
            end: AtomicU64::new(end),
            last_arrival: AtomicU64::new(last_arrival.unwrap_or(NO_ARRIVAL)),
            index: RwLock::new(entries),
        }
    }

    pub fn committed_len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    /// The offset after its last committed record.
    pub fn end(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    pub fn last_arrival(&self) -> Option<u64> {
        let ms = self.last_arrival.load(Ordering::Acquire);
        (ms != NO_ARRIVAL).then_some(ms)
    }

    /// A copy of the index points, for writing the index file.
    pub fn entries(&self) -> Vec<IndexEntry> {
        self.index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes the records in the first `len` bytes (offsets below `end`) visible; called by
    /// the writer only, before it moves the shard's tip.
    pub fn publish(&self, len: u64, end: u64, last_arrival: Option<u64>, points: &[IndexEntry]) {
        if !points.is_empty() {
            self.index
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(points);
        }
        self.last_arrival
            .store(last_arrival.unwrap_or(NO_ARRIVAL), Ordering::Release);
        self.end.store(end, Ordering::Release);
        self.len.store(len, Ordering::Release);
    }

    fn start_with(&self, pick: impl FnOnce(&[IndexEntry]) -> Option<IndexEntry>) -> Start {
        let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
        pick(&index).map_or(
            Start {
                offset: self.base,
                position: 0,
            },
            |e| Start {
                offset: e.offset,
                position: e.position,
            },
        )
    }

    /// The last point at or before `offset`.
    fn seek(&self, offset: u64) -> Start {
        self.start_with(|index| {
            let after = index.partition_point(|e| e.offset <= offset);
            index.get(after.checked_sub(1)?).copied()
        })
    }

    /// The last point that arrived before `ms`, so the answer lies after it.
    fn seek_time(&self, ms: u64) -> Start {
        self.start_with(|index| {
            let after = index.partition_point(|e| e.arrival_ms < ms);
            index.get(after.checked_sub(1)?).copied()
        })
    }

    fn corrupt(&self, position: u64, detail: String) -> LogError {
        LogError::Corrupt {
            file: self.path.clone(),
            position,
            detail,
        }
    }

    fn io_error(&self, e: io::Error) -> LogError {
        LogError::io(format!("reading {}", self.path.display()), e)
    }

    /// Adds records from `out.next` up to offset `limit` (exclusive) to `out`. Damage before
    /// `out.next` is stepped over when a valid frame after it leads there; damage reached
    /// is [`LogError::Corrupt`], saying where reading can resume.
    pub fn read_into(&self, limit: u64, out: &mut Collect) -> Result<(), LogError> {
        let from = out.next;
        let start = self.seek(from);
        let mut cursor = Cursor::new(&self.file, self.committed_len(), READ_CHUNK);
        let (mut pos, mut expected) = (start.position, start.offset);
        while expected < limit && !out.full() {
            let damage = match cursor.frame_at(pos) {
                Ok(Some(found)) if found.frame.offset == expected => {
                    pos += found.len;
                    expected += 1;
                    if found.frame.offset >= from && !out.take(found.frame) {
                        return Ok(());
                    }
                    continue;
                }
                Ok(Some(found)) => format!(
                    "found offset {} where {expected} was due",
                    found.frame.offset
                ),
                Ok(None) => format!("the segment ends at offset {expected}, short of {limit}"),
                Err(ScanError::Frame(e)) => e.to_string(),
                Err(ScanError::Io(e)) => return Err(self.io_error(e)),
            };
            match cursor.resync(pos, expected).map_err(|e| self.io_error(e))? {
                Some((at, found)) if expected < from && found.frame.offset <= from => {
                    pos = at;
                    expected = found.frame.offset;
                }
                resumed => {
                    let resume = resumed.map_or(limit, |(_, found)| found.frame.offset);
                    return Err(self.corrupt(
                        pos,
                        format!(
                            "{damage}; record {expected} cannot be read, reading can resume at \
                             offset {resume}"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The first offset below `limit` that arrived at or after `ms`, else `limit`. Damaged
    /// records are stepped over: their arrival is unknown.
    pub fn find_time(&self, ms: u64, limit: u64) -> Result<u64, LogError> {
        let start = self.seek_time(ms);
        let mut cursor = Cursor::new(&self.file, self.committed_len(), READ_CHUNK);
        let (mut pos, mut expected) = (start.position, start.offset);
        while expected < limit {
            let damage = match cursor.frame_at(pos) {
                Ok(Some(found)) if found.frame.offset == expected => {
                    if found.frame.arrival_ms >= ms {
                        return Ok(expected);
                    }
                    pos += found.len;
                    expected += 1;
                    continue;
                }
                Ok(Some(found)) => format!(
                    "found offset {} where {expected} was due",
                    found.frame.offset
                ),
                Ok(None) => return Ok(limit),
                Err(ScanError::Frame(e)) => e.to_string(),
                Err(ScanError::Io(e)) => return Err(self.io_error(e)),
            };
            match cursor.resync(pos, expected).map_err(|e| self.io_error(e))? {
                Some((at, found)) => {
                    pos = at;
                    expected = found.frame.offset;
                }
                None => return Err(self.corrupt(pos, damage)),
            }
        }
        Ok(limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_offset() {
        assert_eq!(file_name(42), "00000000000000000042.seg");
        assert_eq!(parse_name("00000000000000000042.seg"), Some(42));
        assert_eq!(parse_name(&file_name(u64::MAX)), Some(u64::MAX));
        for bad in [
            "42.seg",
            "0000000000000000004x.seg",
            "00000000000000000042.idx",
            "99999999999999999999.seg",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }
}
