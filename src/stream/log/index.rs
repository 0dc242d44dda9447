//! The sparse index of a segment: points (offset, byte position, arrival) for seeks, and for
//! a sealed segment a seal saying where it ends. The file is a hint: anything wrong with
//! it means a rebuild by scanning, never an error.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::frame::MIN_FRAME_LEN;

/// A point is due once a record starts this many bytes past the previous point.
pub(super) const SPACING: u64 = 4096;

const HEADER: [u8; 8] = *b"EWIX\x01\0\0\0";
const ENTRY_LEN: usize = 32;
const KIND_POINT: u32 = 0;
const KIND_SEAL: u32 = 1;
/// A seal's arrival for a segment without records.
const NO_ARRIVAL: u64 = u64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IndexEntry {
    pub offset: u64,
    pub position: u64,
    pub arrival_ms: u64,
}

/// Where a sealed segment ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seal {
    /// The offset after its last record.
    pub end_offset: u64,
    pub len: u64,
    pub last_arrival_ms: Option<u64>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct IndexFile {
    pub entries: Vec<IndexEntry>,
    pub seal: Option<Seal>,
}

/// `00000000000000000042.seg` → `00000000000000000042.idx`.
pub(super) fn path_for(segment: &Path) -> PathBuf {
    segment.with_extension("idx")
}

fn encode_entry(out: &mut Vec<u8>, a: u64, b: u64, c: u64, kind: u32) {
    let start = out.len();
    out.extend_from_slice(&a.to_le_bytes());
    out.extend_from_slice(&b.to_le_bytes());
    out.extend_from_slice(&c.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The bytes of `entries`, as appended to an open index.
pub(super) fn encode_points(entries: &[IndexEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for e in entries {
        encode_entry(&mut out, e.offset, e.position, e.arrival_ms, KIND_POINT);
    }
    out
}

/// Reads the index of the segment starting at `base` whose file is `segment_len` bytes.
/// Entries are kept up to the first that is torn, fails its CRC or breaks the order; an
/// index whose header or first point is wrong counts as missing.
pub(super) fn load(path: &Path, base: u64, segment_len: u64) -> io::Result<Option<IndexFile>> {
    // A sane index has at most one point per smallest frame, plus the seal.
    let max_len = HEADER.len() as u64 + (segment_len / MIN_FRAME_LEN + 2) * ENTRY_LEN as u64;
    let bytes = match fs::metadata(path) {
        Ok(meta) if meta.len() > max_len => return Ok(None),
        Ok(_) => fs::read(path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if bytes.get(..HEADER.len()) != Some(&HEADER[..]) {
        return Ok(None);
    }
    let mut file = IndexFile::default();
    for raw in bytes[HEADER.len()..].chunks_exact(ENTRY_LEN) {
        let u64_at = |at: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(&raw[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let kind = u32::from_le_bytes([raw[24], raw[25], raw[26], raw[27]]);
        let crc = u32::from_le_bytes([raw[28], raw[29], raw[30], raw[31]]);
        if crc32c::crc32c(&raw[..28]) != crc || file.seal.is_some() {
            break;
        }
        let (a, b, c) = (u64_at(0), u64_at(8), u64_at(16));
        let last = file.entries.last();
        match kind {
            KIND_POINT => {
                let ordered = match last {
                    None => a == base && b == 0,
                    Some(l) => a > l.offset && b > l.position && c >= l.arrival_ms,
                };
                if !ordered || b >= segment_len {
                    break;
                }
                file.entries.push(IndexEntry {
                    offset: a,
                    position: b,
                    arrival_ms: c,
                });
            }
            KIND_SEAL => {
                let after_points = last.is_none_or(|l| a > l.offset && b > l.position);
                if !after_points || a < base {
                    break;
                }
                file.seal = Some(Seal {
                    end_offset: a,
                    len: b,
                    last_arrival_ms: (c != NO_ARRIVAL).then_some(c),
                });
            }
            _ => break,
        }
    }
    if file.entries.first().is_none_or(|e| e.offset != base) && file.seal.is_none() {
        return Ok(None);
    }
    Ok(Some(file))
}

/// Replaces the index at `path` with `entries` (and `seal`), via a temp file renamed over
/// it; `durable` syncs the temp file first (the caller syncs the folder).
pub(super) fn write(
    path: &Path,
    entries: &[IndexEntry],
    seal: Option<Seal>,
    durable: bool,
) -> io::Result<()> {
    let mut bytes = HEADER.to_vec();
    bytes.extend_from_slice(&encode_points(entries));
    if let Some(s) = seal {
        let arrival = s.last_arrival_ms.unwrap_or(NO_ARRIVAL);
        encode_entry(&mut bytes, s.end_offset, s.len, arrival, KIND_SEAL);
    }
    let tmp = path.with_extension("idx.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(&bytes)?;
    if durable {
        file.sync_data()?;
    }
    fs::rename(&tmp, path)
}

/// Opens an index for appending points (the last segment's).
pub(super) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64, position: u64) -> IndexEntry {
        IndexEntry {
            offset,
            position,
            arrival_ms: 100 + offset,
        }
    }

    #[test]
    fn round_trips_points_and_seal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000010.idx");
        let entries = vec![entry(10, 0), entry(20, 5000), entry(30, 9000)];
        let seal = Seal {
            end_offset: 35,
            len: 12000,
            last_arrival_ms: Some(140),
        };
        write(&path, &entries, Some(seal), true).unwrap();
        let loaded = load(&path, 10, 12000).unwrap().unwrap();
        assert_eq!(loaded.entries, entries);
        assert_eq!(loaded.seal, Some(seal));
        // A base other than the first point's offset means this index is not this segment's.
        assert_eq!(load(&path, 11, 12000).unwrap(), None);
    }

    #[test]
    fn keeps_points_before_a_torn_or_appended_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.idx");
        write(&path, &[entry(0, 0)], None, false).unwrap();
        let mut file = open_append(&path).unwrap();
        file.write_all(&encode_points(&[entry(5, 4100)])).unwrap();
        file.write_all(&encode_points(&[entry(9, 8200)])[..20])
            .unwrap();
        let loaded = load(&path, 0, 10_000).unwrap().unwrap();
        assert_eq!(loaded.entries, vec![entry(0, 0), entry(5, 4100)]);
        // Points past the segment's end are dropped too.
        let loaded = load(&path, 0, 4000).unwrap().unwrap();
        assert_eq!(loaded.entries, vec![entry(0, 0)]);
    }

    #[test]
    fn garbage_counts_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.idx");
        assert_eq!(load(&path, 0, 100).unwrap(), None);
        fs::write(&path, b"not an index at all, just words").unwrap();
        assert_eq!(load(&path, 0, 100).unwrap(), None);
    }
}
