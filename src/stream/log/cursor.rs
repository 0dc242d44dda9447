//! Walking the frames of a segment with positional reads through a window buffer, and
//! finding the next valid frame after damage.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use bytes::Bytes;

use super::frame::{self, Frame, FrameError, HEADER_LEN, MIN_FRAME_LEN};

/// Why [`Cursor::frame_at`] found no frame.
#[derive(Debug)]
pub(super) enum ScanError {
    Io(io::Error),
    Frame(FrameError),
}

/// A frame and the bytes it takes.
pub(super) struct Found {
    pub frame: Frame,
    pub len: u64,
}

/// Reads frames below `end` (the committed length); nothing past it is ever looked at.
pub(super) struct Cursor<'a> {
    file: &'a File,
    end: u64,
    chunk: usize,
    window: Bytes,
    window_start: u64,
}

impl<'a> Cursor<'a> {
    /// `chunk` is how much to read at once; frames larger than it get a window of their own.
    pub fn new(file: &'a File, end: u64, chunk: usize) -> Cursor<'a> {
        Cursor {
            file,
            end,
            chunk,
            window: Bytes::new(),
            window_start: 0,
        }
    }

    /// Makes `[pos, pos + n)` available in the window; false if it reaches past `end`.
    fn fill(&mut self, pos: u64, n: usize) -> io::Result<bool> {
        let want_end = pos.saturating_add(n as u64);
        if want_end > self.end {
            return Ok(false);
        }
        let window_end = self.window_start + self.window.len() as u64;
        if pos >= self.window_start && want_end <= window_end {
            return Ok(true);
        }
        // Bounded by `end - pos`, so never more than the file's committed bytes.
        let len = n.max(self.chunk).min((self.end - pos) as usize);
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, pos)?;
        self.window = Bytes::from(buf);
        self.window_start = pos;
        Ok(true)
    }

    fn slice(&self, pos: u64, n: usize) -> Bytes {
        let at = (pos - self.window_start) as usize;
        self.window.slice(at..at + n)
    }

    /// The frame at `pos`, or `None` exactly at the end.
    pub fn frame_at(&mut self, pos: u64) -> Result<Option<Found>, ScanError> {
        if pos >= self.end {
            return Ok(None);
        }
        if !self.fill(pos, HEADER_LEN).map_err(ScanError::Io)? {
            return Err(ScanError::Frame(FrameError::Truncated));
        }
        let (body_len, crc) =
            frame::parse_header(&self.slice(pos, HEADER_LEN)).map_err(ScanError::Frame)?;
        let len = HEADER_LEN + body_len;
        if !self.fill(pos, len).map_err(ScanError::Io)? {
            return Err(ScanError::Frame(FrameError::Truncated));
        }
        let body = self.slice(pos + HEADER_LEN as u64, body_len);
        let frame = frame::decode_body(&body, crc).map_err(ScanError::Frame)?;
        Ok(Some(Found {
            frame,
            len: len as u64,
        }))
    }

    /// The first valid frame after damage at `damaged`, where offset `expected` was due.
    /// A candidate must carry an offset the damaged bytes could have led up to: at least
    /// `expected`, and no more records past it than those bytes could have held.
    pub fn resync(&mut self, damaged: u64, expected: u64) -> io::Result<Option<(u64, Found)>> {
        let mut pos = damaged + 1;
        while self.fill(pos, HEADER_LEN)? {
            if frame::parse_header(&self.slice(pos, HEADER_LEN)).is_ok() {
                match self.frame_at(pos) {
                    Ok(Some(found)) => {
                        let lost = found.frame.offset.checked_sub(expected);
                        if lost.is_some_and(|lost| lost <= (pos - damaged) / MIN_FRAME_LEN) {
                            return Ok(Some((pos, found)));
                        }
                    }
                    Err(ScanError::Io(e)) => return Err(e),
                    Ok(None) | Err(ScanError::Frame(_)) => {}
                }
            }
            pos += 1;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn segment(frames: &[(u64, &str)]) -> (tempfile::NamedTempFile, Vec<u64>) {
        let mut bytes = Vec::new();
        let mut positions = Vec::new();
        for (offset, data) in frames {
            positions.push(bytes.len() as u64);
            frame::encode(&mut bytes, *offset, 7, b"k", data.as_bytes());
        }
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&bytes).unwrap();
        (file, positions)
    }

    #[test]
    fn walks_frames_across_small_windows() {
        let (file, _) = segment(&[(0, "a"), (1, "bb"), (2, "ccc")]);
        let end = file.as_file().metadata().unwrap().len();
        let mut cursor = Cursor::new(file.as_file(), end, 16);
        let mut pos = 0;
        let mut seen = Vec::new();
        while let Some(found) = cursor.frame_at(pos).unwrap() {
            seen.push(found.frame.offset);
            pos += found.len;
        }
        assert_eq!(seen, vec![0, 1, 2]);
        assert_eq!(pos, end);
    }

    #[test]
    fn resyncs_past_garbage() {
        let (file, positions) = segment(&[(0, "aaaa"), (1, "bbbb"), (2, "cccc")]);
        let end = file.as_file().metadata().unwrap().len();
        // Damage the second frame's body.
        file.as_file()
            .write_all_at(b"\xff", positions[1] + 20)
            .unwrap();
        let mut cursor = Cursor::new(file.as_file(), end, 4096);
        assert!(matches!(
            cursor.frame_at(positions[1]),
            Err(ScanError::Frame(FrameError::Checksum { .. }))
        ));
        let (pos, found) = cursor.resync(positions[1], 1).unwrap().unwrap();
        assert_eq!((pos, found.frame.offset), (positions[2], 2));
        // An offset the damaged bytes could not have led to is no resync point.
        assert!(cursor.resync(positions[1], 3).unwrap().is_none());
    }
}
