//! One record on disk: a self-checking frame that a scan can recognise again after damage.
//! The layout is documented in the module above.

use bytes::Bytes;

use super::{MAX_DATA_BYTES, MAX_KEY_BYTES};

const MAGIC: [u8; 2] = [0xEB, 0x5C];
const VERSION: u8 = 1;
/// Magic, version, flags, body length, CRC.
pub(super) const HEADER_LEN: usize = 12;
/// Offset, arrival, key length, data length.
const FIXED_BODY_LEN: usize = 22;
const MAX_BODY_LEN: usize = FIXED_BODY_LEN + MAX_KEY_BYTES + MAX_DATA_BYTES;
/// The smallest frame: bounds how many records a damaged stretch of bytes can have held.
pub(super) const MIN_FRAME_LEN: u64 = (HEADER_LEN + FIXED_BODY_LEN) as u64;

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Frame {
    pub offset: u64,
    pub arrival_ms: u64,
    pub key: String,
    pub data: Bytes,
}

/// Why bytes are not a frame; the text ends up in [`super::LogError::Corrupt`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum FrameError {
    #[error("no frame starts here (bad magic)")]
    Magic,
    #[error("unknown frame version {0}")]
    Version(u8),
    #[error("unknown frame flags {0:#04x}")]
    Flags(u8),
    #[error("frame body length {0} is outside {FIXED_BODY_LEN}..={MAX_BODY_LEN}")]
    Length(u32),
    #[error("the frame runs past the end of the segment")]
    Truncated,
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { stored: u32, computed: u32 },
    #[error("key length {key} and data length {data} disagree with body length {body}")]
    Fields {
        key: usize,
        data: usize,
        body: usize,
    },
    #[error("the partition key is not UTF-8")]
    Key,
}

/// Bytes [`encode`] writes for a record.
pub(super) fn encoded_len(key_len: usize, data_len: usize) -> usize {
    HEADER_LEN + FIXED_BODY_LEN + key_len + data_len
}

/// Appends one frame to `out`. The caller has checked the key and data against
/// [`MAX_KEY_BYTES`] and [`MAX_DATA_BYTES`], so the length casts cannot truncate.
pub(super) fn encode(out: &mut Vec<u8>, offset: u64, arrival_ms: u64, key: &[u8], data: &[u8]) {
    debug_assert!(key.len() <= MAX_KEY_BYTES && data.len() <= MAX_DATA_BYTES);
    let start = out.len();
    let body_len = FIXED_BODY_LEN + key.len() + data.len();
    out.reserve(HEADER_LEN + body_len);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(0);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&arrival_ms.to_le_bytes());
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(data);
    let crc = crc32c::crc32c(&out[start + HEADER_LEN..]);
    out[start + 8..start + HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

/// Checks a header (at least [`HEADER_LEN`] bytes) and returns the body length and CRC;
/// the length is bounded before anyone allocates for it.
pub(super) fn parse_header(header: &[u8]) -> Result<(usize, u32), FrameError> {
    if header.len() < HEADER_LEN {
        return Err(FrameError::Truncated);
    }
    if header[..2] != MAGIC {
        return Err(FrameError::Magic);
    }
    if header[2] != VERSION {
        return Err(FrameError::Version(header[2]));
    }
    if header[3] != 0 {
        return Err(FrameError::Flags(header[3]));
    }
    let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let body_len = len as usize;
    if !(FIXED_BODY_LEN..=MAX_BODY_LEN).contains(&body_len) {
        return Err(FrameError::Length(len));
    }
    let crc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    Ok((body_len, crc))
}

/// Decodes a body whose header gave `crc`; `data` shares `body`'s buffer.
pub(super) fn decode_body(body: &Bytes, crc: u32) -> Result<Frame, FrameError> {
    let computed = crc32c::crc32c(body);
    if computed != crc {
        return Err(FrameError::Checksum {
            stored: crc,
            computed,
        });
    }
    if body.len() < FIXED_BODY_LEN {
        return Err(FrameError::Truncated);
    }
    let u64_at = |at: usize| {
        let mut raw = [0; 8];
        raw.copy_from_slice(&body[at..at + 8]);
        u64::from_le_bytes(raw)
    };
    let offset = u64_at(0);
    let arrival_ms = u64_at(8);
    let key_len = usize::from(u16::from_le_bytes([body[16], body[17]]));
    let data_len = u32::from_le_bytes([body[18], body[19], body[20], body[21]]) as usize;
    if FIXED_BODY_LEN + key_len + data_len != body.len() || key_len > MAX_KEY_BYTES {
        return Err(FrameError::Fields {
            key: key_len,
            data: data_len,
            body: body.len(),
        });
    }
    let key_end = FIXED_BODY_LEN + key_len;
    let key = std::str::from_utf8(&body[FIXED_BODY_LEN..key_end]).map_err(|_| FrameError::Key)?;
    Ok(Frame {
        offset,
        arrival_ms,
        key: key.to_owned(),
        data: body.slice(key_end..),
    })
}

#[cfg(test)]
pub(super) fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
    let (body_len, crc) = parse_header(bytes)?;
    let body = bytes
        .get(HEADER_LEN..HEADER_LEN + body_len)
        .ok_or(FrameError::Truncated)?;
    decode_body(&Bytes::copy_from_slice(body), crc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, 42, 1_700_000_000_000, "käse".as_bytes(), b"hello");
        out
    }

    #[test]
    fn round_trips() {
        let bytes = sample();
        assert_eq!(bytes.len(), encoded_len("käse".len(), 5));
        let frame = decode(&bytes).unwrap();
        assert_eq!(
            frame,
            Frame {
                offset: 42,
                arrival_ms: 1_700_000_000_000,
                key: "käse".into(),
                data: Bytes::from_static(b"hello"),
            }
        );
    }

    #[test]
    fn round_trips_the_largest_record() {
        let key = "k".repeat(MAX_KEY_BYTES);
        let data = vec![7u8; MAX_DATA_BYTES];
        let mut out = Vec::new();
        encode(&mut out, 1, 2, key.as_bytes(), &data);
        let frame = decode(&out).unwrap();
        assert_eq!((frame.key.len(), frame.data.len()), (key.len(), data.len()));
    }

    #[test]
    fn every_flipped_body_bit_fails_the_checksum() {
        let good = sample();
        for at in HEADER_LEN..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            assert!(
                matches!(decode(&bad), Err(FrameError::Checksum { .. })),
                "byte {at}"
            );
        }
    }

    #[test]
    fn rejects_bad_headers() {
        let good = sample();
        let mut bad = good.clone();
        bad[0] = 0;
        assert_eq!(decode(&bad), Err(FrameError::Magic));
        let mut bad = good.clone();
        bad[2] = 9;
        assert_eq!(decode(&bad), Err(FrameError::Version(9)));
        let mut bad = good.clone();
        bad[3] = 1;
        assert_eq!(decode(&bad), Err(FrameError::Flags(1)));
        let mut bad = good.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&bad), Err(FrameError::Length(u32::MAX)));
        assert_eq!(decode(&good[..good.len() - 1]), Err(FrameError::Truncated));
        assert_eq!(decode(&good[..5]), Err(FrameError::Truncated));
    }

    #[test]
    fn rejects_inconsistent_field_lengths_even_with_a_valid_checksum() {
        let mut bytes = sample();
        // Claim one more key byte (one less data byte) and fix up the checksum.
        let key_len = u16::from_le_bytes([bytes[28], bytes[29]]) + 1;
        bytes[28..30].copy_from_slice(&key_len.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[HEADER_LEN..]);
        bytes[8..12].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(decode(&bytes), Err(FrameError::Fields { .. })));
    }
}
