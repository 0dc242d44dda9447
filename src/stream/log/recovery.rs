//! Opening a shard folder: finding its segments, trusting sealed indexes that agree with
//! their segments, rebuilding the rest by scanning, and repairing a torn last record.

use std::fs::{self, File, OpenOptions};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use tracing::{error, warn};

use super::LogError;
use super::cursor::{Cursor, ScanError};
use super::frame::MIN_FRAME_LEN;
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

impl Tail {
    /// A new, empty last segment starting at offset `base`, durable in `dir` before it is
    /// used. A file already at that name (left by a roll that failed) holds nothing
    /// committed, so it is started afresh.
    pub fn start(dir: &Path, base: u64, last_arrival: Option<u64>) -> Result<Tail, LogError> {
        let path = dir.join(segment::file_name(base));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_error("creating", &path))?;
        let reader = File::open(&path).map_err(io_error("opening", &path))?;
        let index_path = index::path_for(&path);
        let index = index::write(&index_path, &[], None, false)
            .and_then(|()| index::open_append(&index_path))
            .inspect_err(|e| warn!(file = %index_path.display(), "cannot create the index: {e}"))
            .ok();
        sync_dir(dir).map_err(io_error("syncing", dir))?;
        let segment = Segment::new(base, path, reader, 0, base, None, Vec::new());
        Ok(Tail {
            segment: Arc::new(segment),
            file,
            index,
            len: 0,
            next_offset: base,
            last_arrival,
            last_point: None,
        })
    }
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
    let bases = list(dir)?;
    let Some(&last_base) = bases.last() else {
        let tail = Tail::start(dir, 0, None)?;
        return Ok(Recovered {
            segments: vec![Arc::clone(&tail.segment)],
            latest_arrival: None,
            tail,
        });
    };
    let mut segments = Vec::with_capacity(bases.len() + 1);
    for pair in bases.windows(2) {
        segments.push(Arc::new(open_sealed(dir, pair[0], pair[1])?));
    }
    let (cut, mut tail) = open_last(dir, last_base)?;
    segments.extend(cut);
    // A segment cut empty has no arrival of its own.
    let previous_arrival = segments.iter().rev().find_map(|s| s.last_arrival());
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
        })) if seal.len == len && seal.end_offset <= next_base => {
            return Ok(Segment::new(
                base,
                path,
                file,
                len,
                seal.end_offset,
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
    let end = found.next_offset.min(next_base);
    if found.next_offset > next_base {
        error!(
            file = %path.display(),
            "the segment holds offsets up to {} but the next one starts at {next_base}: reads \
             take offsets from {next_base} on from the next segment",
            found.next_offset - 1
        );
    } else if end < next_base {
        warn!(
            file = %path.display(),
            "offsets {end}..{next_base} are not on disk: records lost before the next segment, \
             or a gap left by cutting a torn record (its index, which says so, is gone)"
        );
    }
    let seal = Seal {
        end_offset: end,
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
        end,
        found.last_arrival,
        found.points,
    ))
}

/// The last segment: scanned from its last index point that still holds its frame. A torn
/// last record is cut off, and then the writer continues in a new segment (see
/// [`cut_torn_tail`]), returned after the cut one.
fn open_last(dir: &Path, base: u64) -> Result<(Option<Arc<Segment>>, Tail), LogError> {
    let path = dir.join(segment::file_name(base));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_error("opening", &path))?;
    let len = file
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
    let reader = File::open(&path).map_err(io_error("opening", &path))?;
    if let Some((position, damage)) = &found.torn {
        warn!(
            file = %path.display(),
            position,
            bytes = len - position,
            "cutting a torn record off the end of the segment ({damage})"
        );
        let tail = cut_torn_tail(dir, &file, &path, *position..len, &found)?;
        let seal = Seal {
            end_offset: found.next_offset,
            len: *position,
            last_arrival_ms: found.last_arrival,
        };
        if let Err(e) = index::write(&index_path, &points, Some(seal), true) {
            warn!(file = %index_path.display(), "cannot write the index: {e}");
        }
        let cut = Segment::new(
            base,
            path,
            reader,
            *position,
            found.next_offset,
            found.last_arrival,
            points,
        );
        return Ok((Some(Arc::new(cut)), tail));
    }
    let index = index::write(&index_path, &points, None, false)
        .and_then(|()| index::open_append(&index_path))
        .inspect_err(|e| warn!(file = %index_path.display(), "cannot write the index: {e}"))
        .ok();
    let segment = Segment::new(
        base,
        path,
        reader,
        len,
        found.next_offset,
        found.last_arrival,
        points,
    );
    let tail = Tail {
        segment: Arc::new(segment),
        file,
        index,
        len,
        next_offset: found.next_offset,
        last_arrival: found.last_arrival,
        last_point: found.last_point,
    };
    Ok((None, tail))
}

/// Cuts the bytes `torn` (its end) off the segment `file`, whose valid records end at offset
/// `found.next_offset`, and returns the new, empty last segment the writer continues in.
///
/// The cut bytes may have held records a reader saw, and their offsets are unreadable, but
/// bounded: they were numbered on from `found.next_offset`, at least [`MIN_FRAME_LEN`] bytes
/// each. The new segment starts above that bound and is made durable *before* the cut, so
/// its file name remembers the skip through a crash at any point, a second cut, or a cut
/// that empties a whole segment.
fn cut_torn_tail(
    dir: &Path,
    file: &File,
    path: &Path,
    torn: Range<u64>,
    found: &Scan,
) -> Result<Tail, LogError> {
    let could_hold = (torn.end - torn.start).div_ceil(MIN_FRAME_LEN);
    let next_base = found.next_offset.saturating_add(could_hold);
    let tail = Tail::start(dir, next_base, found.last_arrival)?;
    file.set_len(torn.start)
        .and_then(|()| file.sync_all())
        .map_err(io_error("truncating", path))?;
    Ok(tail)
}
