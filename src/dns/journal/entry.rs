//! The bytes of a journal file: its header, entry frames and their payloads. The layout is
//! described in the parent module's doc; this file is its only reader and writer.

use hickory_proto::ProtoError;
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding,
};

use super::{Changeset, Delta};

/// First bytes of every journal file.
const FILE_MAGIC: &[u8; 4] = b"EWDJ";
/// Format version, bumped on any incompatible change.
const VERSION: u8 = 1;
/// First bytes of every entry, so a scan past damage can find entries again.
const ENTRY_MAGIC: [u8; 2] = [0xD5, 0x4A];
/// Bytes before an entry's payload: magic, kind, flags, length, commit, CRC.
pub(super) const ENTRY_HEADER_LEN: usize = 20;
/// The largest payload an entry may have. A longer length field is damage, so a corrupt
/// length never becomes a large allocation.
pub const MAX_ENTRY_BYTES: usize = 16 << 20;

const KIND_BASE: u8 = 1;
const KIND_CHANGE: u8 = 2;

/// One decoded entry.
#[derive(Debug)]
pub(super) enum Entry {
    /// The net dynamic changes at compaction time and the zone's serial then.
    Base { serial: u32, delta: Delta },
    /// One update's changes.
    Change(Changeset),
}

/// A whole, checksummed entry found in the file; its payload is not decoded yet.
pub(super) struct Frame<'a> {
    pub kind: u8,
    pub commit: u64,
    pub payload: &'a [u8],
    /// Offset just past the entry.
    pub end: usize,
}

/// Why the bytes at an offset are not a valid entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    #[error("no entry marker")]
    Magic,
    #[error("length {0} over the {MAX_ENTRY_BYTES}-byte limit")]
    TooLong(u32),
    #[error("the entry is cut short")]
    Incomplete,
    #[error("checksum mismatch")]
    Checksum,
    #[error("unreadable payload: {0}")]
    Payload(String),
    #[error("commit number goes backwards")]
    CommitOrder,
    #[error("a base entry after the first entry")]
    MisplacedBase,
}

/// The file header for `zone`: magic, version, the zone's name (lowercase wire form), CRC.
pub(super) fn header(zone: &Name) -> Vec<u8> {
    let mut name = Vec::with_capacity(64);
    for label in zone.to_lowercase().iter() {
        name.push(label.len() as u8);
        name.extend_from_slice(label);
    }
    name.push(0);
    let mut out = Vec::with_capacity(10 + name.len());
    out.extend_from_slice(FILE_MAGIC);
    out.push(VERSION);
    out.push(name.len() as u8);
    out.extend_from_slice(&name);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads the file header: the zone it names and where the first entry starts.
pub(super) fn read_header(buf: &[u8]) -> Result<(Name, usize), String> {
    if buf.len() < 6 || &buf[..4] != FILE_MAGIC {
        return Err("not a journal file (magic)".into());
    }
    if buf[4] != VERSION {
        return Err(format!(
            "format version {} (this build reads {VERSION})",
            buf[4]
        ));
    }
    let end = 6 + usize::from(buf[5]);
    let Some(crc) = buf.get(end..end + 4) else {
        return Err("cut short".into());
    };
    if crc32c::crc32c(&buf[..end]).to_le_bytes() != crc {
        return Err("checksum mismatch".into());
    }
    let mut decoder = BinDecoder::new(&buf[6..end]);
    let zone = Name::read(&mut decoder).map_err(|e| format!("zone name: {e}"))?;
    if !decoder.is_empty() {
        return Err("zone name: trailing bytes".into());
    }
    Ok((zone, end + 4))
}

/// Appends one change entry to `out`.
pub(super) fn put_change(
    out: &mut Vec<u8>,
    commit: u64,
    change: &Changeset,
) -> Result<(), EncodeError> {
    put_entry(out, KIND_CHANGE, commit, |out| {
        out.extend_from_slice(&change.from_serial.to_le_bytes());
        out.extend_from_slice(&change.to_serial.to_le_bytes());
        put_records(out, &change.removed)?;
        put_records(out, &change.added)
    })
}

/// Appends one base entry to `out`.
pub(super) fn put_base(
    out: &mut Vec<u8>,
    commit: u64,
    serial: u32,
    delta: &Delta,
) -> Result<(), EncodeError> {
    put_entry(out, KIND_BASE, commit, |out| {
        out.extend_from_slice(&serial.to_le_bytes());
        put_records(out, &delta.removed_records())?;
        put_records(out, &delta.added_records())
    })
}

/// Why an entry could not be written.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("cannot encode a record: {0}")]
    Encode(#[from] ProtoError),
    #[error("an entry of {0} bytes is over the {MAX_ENTRY_BYTES}-byte limit")]
    TooLarge(usize),
}

fn put_entry(
    out: &mut Vec<u8>,
    kind: u8,
    commit: u64,
    payload: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&ENTRY_MAGIC);
    out.extend_from_slice(&[kind, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&commit.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let written = payload(out).and_then(|()| {
        let len = out.len() - start - ENTRY_HEADER_LEN;
        if len > MAX_ENTRY_BYTES {
            return Err(EncodeError::TooLarge(len));
        }
        Ok(len)
    });
    let len = match written {
        Ok(len) => len,
        Err(e) => {
            out.truncate(start);
            return Err(e);
        }
    };
    out[start + 4..start + 8].copy_from_slice(&(len as u32).to_le_bytes());
    let crc = crc32c::crc32c(&out[start..start + 16]);
    let crc = crc32c::crc32c_append(crc, &out[start + ENTRY_HEADER_LEN..]);
    out[start + 16..start + 20].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Each record on its own, names uncompressed and in their own case, so a record decodes
/// without the rest of the entry.
fn put_records(out: &mut Vec<u8>, records: &[Record]) -> Result<(), EncodeError> {
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    let mut scratch = Vec::with_capacity(512);
    for record in records {
        scratch.clear();
        let mut encoder = BinEncoder::new(&mut scratch);
        encoder.set_name_encoding(NameEncoding::Uncompressed);
        record.emit(&mut encoder)?;
        // The encoder caps its output at u16::MAX bytes.
        out.extend_from_slice(&(scratch.len() as u16).to_le_bytes());
        out.extend_from_slice(&scratch);
    }
    Ok(())
}

/// The entry at `pos`, if it is whole and its checksum holds.
pub(super) fn read_frame(buf: &[u8], pos: usize) -> Result<Frame<'_>, Damage> {
    let Some(head) = buf.get(pos..pos + ENTRY_HEADER_LEN) else {
        return Err(match buf.get(pos..pos + 2) {
            Some(magic) if magic != ENTRY_MAGIC => Damage::Magic,
            _ => Damage::Incomplete,
        });
    };
    if head[..2] != ENTRY_MAGIC {
        return Err(Damage::Magic);
    }
    let len = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
    if len as usize > MAX_ENTRY_BYTES {
        return Err(Damage::TooLong(len));
    }
    let start = pos + ENTRY_HEADER_LEN;
    let end = start + len as usize;
    let Some(payload) = buf.get(start..end) else {
        return Err(Damage::Incomplete);
    };
    let crc = crc32c::crc32c_append(crc32c::crc32c(&head[..16]), payload);
    if crc.to_le_bytes() != head[16..20] {
        return Err(Damage::Checksum);
    }
    Ok(Frame {
        kind: head[2],
        commit: u64::from_le_bytes(head[8..16].try_into().expect("8 bytes")),
        payload,
        end,
    })
}

/// Decodes a checksummed payload. A failure here is not a torn write (the checksum held):
/// it is a bug or a file from another version.
pub(super) fn decode(kind: u8, payload: &[u8], zone: &Name) -> Result<Entry, Damage> {
    let mut reader = Reader(payload);
    let entry = match kind {
        KIND_BASE => {
            let serial = reader.u32()?;
            let removed = reader.records()?;
            let added = reader.records()?;
            Entry::Base {
                serial,
                delta: Delta::from_parts(&removed, &added),
            }
        }
        KIND_CHANGE => Entry::Change(Changeset {
            zone: zone.clone(),
            from_serial: reader.u32()?,
            to_serial: reader.u32()?,
            removed: reader.records()?,
            added: reader.records()?,
        }),
        other => return Err(Damage::Payload(format!("unknown entry kind {other}"))),
    };
    if !reader.0.is_empty() {
        return Err(Damage::Payload("trailing bytes".into()));
    }
    Ok(entry)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Damage> {
        if self.0.len() < n {
            return Err(Damage::Payload("cut short".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, Damage> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn records(&mut self) -> Result<Vec<Record>, Damage> {
        let count = self.u32()? as usize;
        // Each record takes at least its 2-byte length and 11 bytes of wire form.
        if count > self.0.len() / 13 {
            return Err(Damage::Payload(format!("{count} records cannot fit")));
        }
        let mut records = Vec::with_capacity(count);
        for _ in 0..count {
            let len = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes"));
            let wire = self.take(usize::from(len))?;
            let mut decoder = BinDecoder::new(wire);
            let record =
                Record::read(&mut decoder).map_err(|e| Damage::Payload(format!("record: {e}")))?;
            if !decoder.is_empty() {
                return Err(Damage::Payload("record: trailing bytes".into()));
            }
            records.push(record);
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::journal::tests::{change, txt};

    #[test]
    fn a_change_round_trips_with_its_names_case() {
        let zone = Name::from_ascii("Example.TEST.").unwrap();
        let mut c = change(
            7,
            8,
            &[txt("A.example.test.", "old", 60)],
            &[txt("b.Example.test.", "new", 300)],
        );
        c.zone = zone.clone();
        let mut out = Vec::new();
        put_change(&mut out, 3, &c).unwrap();
        let frame = read_frame(&out, 0).unwrap();
        assert_eq!((frame.commit, frame.end), (3, out.len()));
        let Entry::Change(back) = decode(frame.kind, frame.payload, &zone).unwrap() else {
            panic!("a change entry");
        };
        assert_eq!(back, c);
        assert_eq!(back.added[0].ttl, 300);
        assert_eq!(back.added[0].name.to_string(), "b.Example.test.");
    }

    #[test]
    fn the_header_names_the_zone_and_checks_itself() {
        let zone = Name::from_ascii("Example.test.").unwrap();
        let mut h = header(&zone);
        let (read, len) = read_header(&h).unwrap();
        assert_eq!(
            (read.to_string(), len),
            ("example.test.".to_string(), h.len())
        );
        h[7] ^= 1;
        assert_eq!(read_header(&h).unwrap_err(), "checksum mismatch");
        assert!(read_header(b"EWDJ").is_err());
    }

    #[test]
    fn every_flipped_bit_fails_the_checksum_or_the_frame() {
        let mut out = Vec::new();
        put_change(
            &mut out,
            1,
            &change(1, 2, &[], &[txt("a.example.test.", "x", 5)]),
        )
        .unwrap();
        for bit in 0..out.len() * 8 {
            let mut bad = out.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(read_frame(&bad, 0).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn a_long_length_is_damage_not_an_allocation() {
        let mut out = Vec::new();
        put_change(&mut out, 1, &change(1, 2, &[], &[])).unwrap();
        out[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(read_frame(&out, 0).err(), Some(Damage::TooLong(u32::MAX)));
    }

    proptest::proptest! {
        /// Any payload under a valid checksum decodes or fails; it never panics.
        #[test]
        fn any_payload_decodes_or_fails(kind in 0u8..4, payload in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = decode(kind, &payload, &Name::root());
        }
    }
}
