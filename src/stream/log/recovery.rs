//! Opening a shard folder: finding its segments, trusting sealed indexes that agree with
//! their segments, rebuilding the rest by scanning, and repairing a torn last record.

use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use tracing::{error, warn};

use super::LogError;
use super::cursor::{Cursor, ScanError};
use super::index::{self, IndexEntry, IndexFile, SPACING, Seal};
use super::meta::sync_dir;
use super::segment::{self, Segment};

/// Read-ahead while scanning a whole segment.
const SCAN_CHUNK: usize = 1 << 20;

/// A recovered shard: its segments and where its writer picks up.
pub(super) struct Recovered {
    pub segments: Vec<Arc<Segment>>,
    pub latest_arrival: Option<u64>,
    pub tail: Tail,
}

/// The last segment as the writer continues it.
pub(super) struct Tail {
    pub segment: Arc<Segment>,
    /// Read-write handle.
    pub file: File,
    /// Append handle of its index; `None` if it could not be written (it is only a hint).
    pub index: Option<File>,
    pub len: u64,
    pub next_offset: u64,
    pub last_arrival: Option<u64>,
    /// Position of its last index point.
    pub last_point: Option<u64>,
}

fn io_error(context: &str, path: &Path) -> impl FnOnce(std::io::Error) -> LogError {
    let context = format!("{context} {}", path.display());
    move |e| LogError::io(context, e)
}

/// Recovers the shard in `dir`, creating it (with an empty first segment) if new.
pub(super) fn recover(dir: &Path) -> Result<Recovered, LogError> {
    if !dir.is_dir() {
        fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent).map_err(io_error("syncing", parent))?;
        }
    }
    let mut bases = list(dir)?;
    if bases.is_empty() {
        let path = dir.join(segment::file_name(0));
        File::create_new(&path).map_err(io_error("creating", &path))?;
        sync_dir(dir).map_err(io_error("syncing", dir))?;
        bases.push(0);
    }
    let mut segments = Vec::with_capacity(bases.len());
    for pair in bases.windows(2) {
        segments.push(Arc::new(open_sealed(dir, pair[0], pair[1])?));
    }
    let last_base = bases[bases.len() - 1];
    let mut tail = open_last(dir, last_base)?;
    let previous_arrival = segments.last().and_then(|s| s.last_arrival());
    tail.last_arrival = tail.last_arrival.or(previous_arrival);
    segments.push(Arc::clone(&tail.segment));
    Ok(Recovered {
        segments,
        latest_arrival: tail.last_arrival,
        tail,
    })
}

/// The first offsets of the segments in `dir`, sorted; removes temp files and indexes whose
/// segment is gone (retention removes the segment first).
fn list(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut bases = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("listing", dir))? {
        let entry = entry.map_err(io_error("listing", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if let Some(base) = segment::parse_name(name) {
            bases.push(base);
        } else if name.ends_with(".tmp") {
            remove_stale(&entry.path());
        } else if let Some(stem) = name.strip_suffix(".idx") {
            indexes.push((segment::parse_name(&format!("{stem}.seg")), entry.path()));
        }
    }
    bases.sort_unstable();
    for (base, path) in indexes {
        if base.is_none_or(|base| bases.binary_search(&base).is_err()) {
            remove_stale(&path);
        }
    }
    Ok(bases)
}

fn remove_stale(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        warn!(file = %path.display(), "cannot remove a stale file: {e}");
    }
}

/// What a scan of a segment found.
struct Scan {
    /// Index points for the records scanned.
    points: Vec<IndexEntry>,
    next_offset: u64,
    last_arrival: Option<u64>,
    last_point: Option<u64>,
    /// Where damage starts that no valid frame follows, and what it is.
    torn: Option<(u64, String)>,
}

/// Scans `file` (`len` bytes, first offset `base`) from `start` (a verified index point) or
/// from the beginning. Damage followed by a valid frame is logged and stepped over, with an
/// index point on that frame so reads after it never touch the damage.
fn scan(
    file: &File,
    path: &Path,
    len: u64,
    base: u64,
    start: Option<IndexEntry>,
) -> Result<Scan, LogError> {
    let mut cursor = Cursor::new(file, len, SCAN_CHUNK);
    let (mut pos, mut expected) = start.map_or((0, base), |e| (e.position, e.offset));
    let mut found = Scan {
        points: Vec::new(),
        next_offset: expected,
        last_arrival: None,
        last_point: start.map(|e| e.position),
        torn: None,
    };
    loop {
        let damage = match cursor.frame_at(pos) {
            Ok(Some(record)) if record.frame.offset == expected => {
                if found.last_point.is_none_or(|p| pos - p >= SPACING) {
                    found.points.push(IndexEntry {
                        offset: expected,
                        position: pos,
                        arrival_ms: record.frame.arrival_ms,
                    });
                    found.last_point = Some(pos);
                }
                found.last_arrival = Some(record.frame.arrival_ms);
                pos += record.len;
                expected += 1;
                found.next_offset = expected;
                continue;
            }
            Ok(None) => break,
            Ok(Some(record)) => format!(
                "found offset {} where {expected} was due",
                record.frame.offset
            ),
            Err(ScanError::Frame(e)) => e.to_string(),
            Err(ScanError::Io(e)) => return Err(io_error("reading", path)(e)),
        };
        let resumed = cursor
            .resync(pos, expected)
            .map_err(io_error("reading", path))?;
        let Some((at, record)) = resumed else {
            found.torn = Some((pos, damage));
            break;
        };
        error!(
            file = %path.display(),
            position = pos,
            bytes = at - pos,
            "damaged records in the middle of a segment ({damage}); reads of offsets \
             {expected}..{} will fail, later records stay readable",
            record.frame.offset
        );
        found.points.push(IndexEntry {
            offset: record.frame.offset,
            position: at,
            arrival_ms: record.frame.arrival_ms,
        });
        found.last_point = Some(at);
        pos = at;
        expected = record.frame.offset;
    }
    Ok(found)
}

/// A sealed segment: from its index when the seal agrees with the file and with the next
/// segment, else by a scan that also rewrites the index.
fn open_sealed(dir: &Path, base: u64, next_base: u64) -> Result<Segment, LogError> {
    let path = dir.join(segment::file_name(base));
    let file = File::open(&path).map_err(io_error("opening", &path))?;
    let len = file
        .metadata()
        .map_err(io_error("reading the size of", &path))?
        .len();
    let index_path = index::path_for(&path);
    match index::load(&index_path, base, len) {
        Ok(Some(IndexFile {
            entries,
            seal: Some(seal),
        })) if seal.len == len && seal.end_offset == next_base => {
            return Ok(Segment::new(
                base,
                path,
                file,
                len,
                seal.last_arrival_ms,
                entries,
            ));
        }
        Ok(_) => {}
        Err(e) => warn!(file = %index_path.display(), "cannot read the index, rebuilding it: {e}"),
    }
    let found = scan(&file, &path, len, base, None)?;
    if let Some((position, damage)) = &found.torn {
        error!(
            file = %path.display(),
            position,
            bytes = len - position,
            "the end of a sealed segment is unreadable ({damage})"
        );
    }
    if found.next_offset != next_base {
        error!(
            file = %path.display(),
            "the segment ends at offset {} but the next one starts at {next_base}: offsets are \
             not contiguous, reads across the gap will fail",
            found.next_offset
        );
    }
    let seal = Seal {
        end_offset: found.next_offset,
        len,
        last_arrival_ms: found.last_arrival,
    };
    if let Err(e) = index::write(&index_path, &found.points, Some(seal), false) {
        warn!(file = %index_path.display(), "cannot write the rebuilt index: {e}");
    }
    Ok(Segment::new(
        base,
        path,
        file,
        len,
        found.last_arrival,
        found.points,
    ))
}

/// The last segment: scanned from its last index point that still holds its frame, with a
/// torn last record cut off.
fn open_last(dir: &Path, base: u64) -> Result<Tail, LogError> {
    let path = dir.join(segment::file_name(base));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_error("opening", &path))?;
    let mut len = file
        .metadata()
        .map_err(io_error("reading the size of", &path))?
        .len();
    let index_path = index::path_for(&path);
    let mut points = match index::load(&index_path, base, len) {
        Ok(loaded) => loaded.map(|f| f.entries).unwrap_or_default(),
        Err(e) => {
            warn!(file = %index_path.display(), "cannot read the index, rebuilding it: {e}");
            Vec::new()
        }
    };
    // The index is written unsynced: its newest points may name bytes that never reached
    // the disk.
    let mut cursor = Cursor::new(&file, len, SCAN_CHUNK);
    while let Some(last) = points.last() {
        match cursor.frame_at(last.position) {
            Ok(Some(record)) if record.frame.offset == last.offset => break,
            Err(ScanError::Io(e)) => return Err(io_error("reading", &path)(e)),
            _ => {
                points.pop();
            }
        }
    }
    let found = scan(&file, &path, len, base, points.last().copied())?;
    points.extend_from_slice(&found.points);
    if let Some((position, damage)) = &found.torn {
        warn!(
            file = %path.display(),
            position,
            bytes = len - position,
            "cutting a torn record off the end of the segment ({damage})"
        );
        file.set_len(*position)
            .and_then(|()| file.sync_all())
            .map_err(io_error("truncating", &path))?;
        len = *position;
    }
    let index = index::write(&index_path, &points, None, false)
        .and_then(|()| index::open_append(&index_path))
        .inspect_err(|e| warn!(file = %index_path.display(), "cannot write the index: {e}"))
        .ok();
    let reader = File::open(&path).map_err(io_error("opening", &path))?;
    let segment = Arc::new(Segment::new(
        base,
        path,
        reader,
        len,
        found.last_arrival,
        points,
    ));
    Ok(Tail {
        segment,
        file,
        index,
        len,
        next_offset: found.next_offset,
        last_arrival: found.last_arrival,
        last_point: found.last_point,
    })
}
