//! The TSIG record on the wire (RFC 8945 §4.2): found as a message's last record, read
//! without copying, written after an encoded message, and the MAC input built from both.

use std::fmt;
use std::hash::Hash;

use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::BinDecodable;

use super::key::{Hasher, TsigKey};

/// TSIG's record type.
const TYPE_TSIG: u16 = 250;
/// TSIG records are of class ANY.
const CLASS_ANY: u16 = 255;
/// The DNS header's size; ARCOUNT is its last two bytes.
pub(super) const HEADER_LEN: usize = 12;
/// Compression pointers a name may follow: more means a loop.
const MAX_POINTERS: usize = 64;
/// Longest MAC we produce (HMAC-SHA512).
const MAX_MAC: usize = 64;

/// A domain name in uncompressed, lowercase wire form: how TSIG feeds names to the MAC
/// (RFC 8945 §4.3.3), and the keyring's lookup key. Fixed-size, so reading one allocates
/// nothing.
#[derive(Clone, Copy)]
pub struct WireName {
    bytes: [u8; 255],
    len: u8,
}

/// A MAC, up to the 64 bytes of HMAC-SHA512.
#[derive(Clone, Copy)]
pub struct Mac {
    bytes: [u8; MAX_MAC],
    len: u8,
}

/// TSIG error codes of a NOTAUTH answer (RFC 8945 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigRcode {
    /// The MAC did not verify.
    BadSig,
    /// No key of that name, or the key is of another algorithm.
    BadKey,
    /// The signing time is outside the fudge.
    BadTime,
    /// The MAC was truncated more than our policy allows.
    BadTrunc,
}

/// Why a message's TSIG record could not be read; the server answers FORMERR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("the message ends inside a record or its header")]
    Truncated,
    #[error("a name is malformed (label too long, pointer loop or forward pointer)")]
    BadName,
    #[error("the TSIG record is not the last record of the additional section")]
    NotLast,
    #[error("the TSIG record's class is not ANY")]
    BadClass,
    #[error("the TSIG record's data do not fill its RDLENGTH exactly")]
    BadLength,
    #[error("the MAC is longer than the algorithm's or shorter than RFC 8945 §5.2.2.1 allows")]
    BadMacSize,
}

/// A TSIG record as read from a message, borrowing its variable parts.
#[derive(Debug)]
pub(super) struct TsigRecord<'a> {
    /// Where the record starts: the MAC covers the message before it.
    pub start: usize,
    pub key_name: WireName,
    /// Always 0 when written; the MAC covers what was received.
    pub ttl: u32,
    pub algorithm: WireName,
    pub time_signed: u64,
    pub fudge: u16,
    pub mac: &'a [u8],
    pub original_id: u16,
    pub error: u16,
    pub other: &'a [u8],
}

/// The variable fields of a TSIG record to write (RFC 8945 §4.2).
pub(super) struct Fields<'a> {
    pub key_name: &'a WireName,
    pub ttl: u32,
    pub algorithm: &'a [u8],
    pub time_signed: u64,
    pub fudge: u16,
    pub error: u16,
    pub other: &'a [u8],
}

// === impl WireName ===

impl WireName {
    /// The lowercase wire form of an absolute `name` (as hickory's names are at most 255
    /// bytes long, it always fits).
    pub fn from_name(name: &Name) -> WireName {
        let mut out = WireName {
            bytes: [0; 255],
            len: 0,
        };
        for label in name.iter() {
            out.push_label(label);
        }
        out.push_label(&[]);
        out
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Appends a length byte and `label`, lowercased; false when the name would pass 255.
    fn push_label(&mut self, label: &[u8]) -> bool {
        let start = usize::from(self.len);
        let end = start + 1 + label.len();
        if label.len() > 63 || end > self.bytes.len() {
            return false;
        }
        self.bytes[start] = label.len() as u8;
        for (to, from) in self.bytes[start + 1..end].iter_mut().zip(label) {
            *to = from.to_ascii_lowercase();
        }
        self.len = end as u8;
        true
    }

    /// The name for logs and errors.
    pub fn to_name(&self) -> Option<Name> {
        Name::from_bytes(self.as_bytes()).ok()
    }
}

impl PartialEq for WireName {
    fn eq(&self, other: &WireName) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for WireName {}

impl Hash for WireName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
    }
}

impl fmt::Display for WireName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_name() {
            Some(name) => write!(f, "{name}"),
            None => f.write_str("<bad name>"),
        }
    }
}

impl fmt::Debug for WireName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WireName({self})")
    }
}

// === impl Mac ===

impl Mac {
    /// `bytes`, cut to 64.
    pub(super) fn new(bytes: &[u8]) -> Mac {
        let len = bytes.len().min(MAX_MAC);
        let mut mac = Mac {
            bytes: [0; MAX_MAC],
            len: len as u8,
        };
        mac.bytes[..len].copy_from_slice(&bytes[..len]);
        mac
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({})", hex::encode(self.as_bytes()))
    }
}

// === impl TsigRcode ===

impl TsigRcode {
    /// The code in the TSIG record's Error field.
    pub fn code(self) -> u16 {
        match self {
            TsigRcode::BadSig => 16,
            TsigRcode::BadKey => 17,
            TsigRcode::BadTime => 18,
            TsigRcode::BadTrunc => 22,
        }
    }

    pub fn from_code(code: u16) -> Option<TsigRcode> {
        [
            TsigRcode::BadSig,
            TsigRcode::BadKey,
            TsigRcode::BadTime,
            TsigRcode::BadTrunc,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }

    /// The RFC's mnemonic, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            TsigRcode::BadSig => "BADSIG",
            TsigRcode::BadKey => "BADKEY",
            TsigRcode::BadTime => "BADTIME",
            TsigRcode::BadTrunc => "BADTRUNC",
        }
    }
}

// === reading ===

/// The message's TSIG record, if it has one.
///
/// # Errors
/// When the message cannot be walked to its end, or its TSIG record is not the last record
/// or cannot be read: RFC 8945 §5.2 answers FORMERR.
pub(super) fn find_tsig(msg: &[u8]) -> Result<Option<TsigRecord<'_>>, Malformed> {
    let header = msg.get(..HEADER_LEN).ok_or(Malformed::Truncated)?;
    let count = |i: usize| usize::from(u16::from_be_bytes([header[i], header[i + 1]]));
    let (questions, arcount) = (count(4), count(10));
    let records = count(6) + count(8) + arcount;
    let mut pos = HEADER_LEN;
    for _ in 0..questions {
        pos = skip_name(msg, pos)?;
        pos = pos.checked_add(4).ok_or(Malformed::Truncated)?;
    }
    for index in 0..records {
        let start = pos;
        pos = skip_name(msg, pos)?;
        let fixed = msg.get(pos..pos + 10).ok_or(Malformed::Truncated)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        pos += 10;
        if pos + rdlen > msg.len() {
            return Err(Malformed::Truncated);
        }
        if rtype == TYPE_TSIG {
            if index + 1 != records || arcount == 0 {
                return Err(Malformed::NotLast);
            }
            let class = u16::from_be_bytes([fixed[2], fixed[3]]);
            if class != CLASS_ANY {
                return Err(Malformed::BadClass);
            }
            if pos + rdlen != msg.len() {
                return Err(Malformed::BadLength);
            }
            let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
            return read_tsig(msg, start, pos, ttl).map(Some);
        }
        pos += rdlen;
    }
    Ok(None)
}

/// The TSIG record starting at `start`, its RDATA at `rdata` running to the message's end.
fn read_tsig(
    msg: &[u8],
    start: usize,
    rdata: usize,
    ttl: u32,
) -> Result<TsigRecord<'_>, Malformed> {
    let (key_name, _) = read_name(msg, start)?;
    let (algorithm, mut pos) = read_name(msg, rdata)?;
    let mut take = |n: usize| -> Result<&[u8], Malformed> {
        let bytes = msg.get(pos..pos + n).ok_or(Malformed::BadLength)?;
        pos += n;
        Ok(bytes)
    };
    let time = take(6)?;
    let time_signed = time.iter().fold(0u64, |t, b| t << 8 | u64::from(*b));
    let fudge = be16(take(2)?);
    let mac_len = usize::from(be16(take(2)?));
    let mac = take(mac_len)?;
    let original_id = be16(take(2)?);
    let error = be16(take(2)?);
    let other_len = usize::from(be16(take(2)?));
    let other = take(other_len)?;
    if pos != msg.len() {
        return Err(Malformed::BadLength);
    }
    Ok(TsigRecord {
        start,
        key_name,
        ttl,
        algorithm,
        time_signed,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

fn be16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

/// Where the name at `pos` ends in the message (after its terminator or first pointer).
fn skip_name(msg: &[u8], mut pos: usize) -> Result<usize, Malformed> {
    loop {
        let len = *msg.get(pos).ok_or(Malformed::Truncated)?;
        match len {
            0 => return Ok(pos + 1),
            1..=63 => pos += 1 + usize::from(len),
            0xc0..=0xff => {
                return if pos + 2 <= msg.len() {
                    Ok(pos + 2)
                } else {
                    Err(Malformed::Truncated)
                };
            }
            _ => return Err(Malformed::BadName),
        }
    }
}

/// The name at `pos`, pointers followed and lowercased, and where it ends in place.
fn read_name(msg: &[u8], mut pos: usize) -> Result<(WireName, usize), Malformed> {
    let mut name = WireName {
        bytes: [0; 255],
        len: 0,
    };
    let mut end = None;
    let mut pointers = 0;
    loop {
        let len = *msg.get(pos).ok_or(Malformed::Truncated)?;
        match len {
            0 => {
                name.push_label(&[]);
                return Ok((name, end.unwrap_or(pos + 1)));
            }
            1..=63 => {
                let label = msg
                    .get(pos + 1..pos + 1 + usize::from(len))
                    .ok_or(Malformed::Truncated)?;
                // One byte is kept for the root label.
                if usize::from(name.len) + 1 + label.len() >= 255 || !name.push_label(label) {
                    return Err(Malformed::BadName);
                }
                pos += 1 + label.len();
            }
            0xc0..=0xff => {
                let low = *msg.get(pos + 1).ok_or(Malformed::Truncated)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                pointers += 1;
                if target >= pos || pointers > MAX_POINTERS {
                    return Err(Malformed::BadName);
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(Malformed::BadName),
        }
    }
}

// === writing ===

/// Feeds the MAC the message as it was before its TSIG record: ARCOUNT without that record,
/// and the ID the signer gave it (`original_id`, RFC 8945 §4.3.2).
pub(super) fn digest_message(hasher: &mut Hasher, body: &[u8], original_id: u16, tsig_added: bool) {
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&body[..HEADER_LEN]);
    header[..2].copy_from_slice(&original_id.to_be_bytes());
    if tsig_added {
        let arcount = u16::from_be_bytes([header[10], header[11]]).wrapping_sub(1);
        header[10..].copy_from_slice(&arcount.to_be_bytes());
    }
    hasher.update(&header);
    hasher.update(&body[HEADER_LEN..]);
}

/// Feeds the MAC the TSIG variables (RFC 8945 §4.3.3), names in canonical form.
pub(super) fn digest_variables(hasher: &mut Hasher, fields: &Fields) {
    hasher.update(fields.key_name.as_bytes());
    hasher.update(&CLASS_ANY.to_be_bytes());
    hasher.update(&fields.ttl.to_be_bytes());
    hasher.update(fields.algorithm);
    digest_timers(hasher, fields.time_signed, fields.fudge);
    hasher.update(&fields.error.to_be_bytes());
    hasher.update(&(fields.other.len() as u16).to_be_bytes());
    hasher.update(fields.other);
}

/// Feeds the MAC the timers alone: what later messages of a multi-message answer cover.
pub(super) fn digest_timers(hasher: &mut Hasher, time_signed: u64, fudge: u16) {
    hasher.update(&time_signed.to_be_bytes()[2..]);
    hasher.update(&fudge.to_be_bytes());
}

/// Feeds the MAC a prior MAC (the request's, or the previous message's) with its length.
pub(super) fn digest_prior(hasher: &mut Hasher, mac: &[u8]) {
    hasher.update(&(mac.len() as u16).to_be_bytes());
    hasher.update(mac);
}

/// Bytes the TSIG record of `fields` with a MAC of `mac_len` bytes takes.
pub(super) fn record_len(fields: &Fields, mac_len: usize) -> usize {
    fields.key_name.as_bytes().len()
        + 10
        + fields.algorithm.len()
        + 16
        + mac_len
        + fields.other.len()
}

/// Appends the TSIG record to `msg` (whose ARCOUNT the caller bumps).
pub(super) fn write_record(msg: &mut Vec<u8>, fields: &Fields, mac: &[u8], original_id: u16) {
    let rdlen = fields.algorithm.len() + 16 + mac.len() + fields.other.len();
    msg.reserve(record_len(fields, mac.len()));
    msg.extend_from_slice(fields.key_name.as_bytes());
    msg.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    msg.extend_from_slice(&CLASS_ANY.to_be_bytes());
    msg.extend_from_slice(&fields.ttl.to_be_bytes());
    msg.extend_from_slice(&(rdlen as u16).to_be_bytes());
    msg.extend_from_slice(fields.algorithm);
    msg.extend_from_slice(&fields.time_signed.to_be_bytes()[2..]);
    msg.extend_from_slice(&fields.fudge.to_be_bytes());
    msg.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    msg.extend_from_slice(mac);
    msg.extend_from_slice(&original_id.to_be_bytes());
    msg.extend_from_slice(&fields.error.to_be_bytes());
    msg.extend_from_slice(&(fields.other.len() as u16).to_be_bytes());
    msg.extend_from_slice(fields.other);
}

/// The fields of a signature with `key`, no error and no other data.
pub(super) fn plain_fields(key: &TsigKey, time_signed: u64, fudge: u16) -> Fields<'_> {
    Fields {
        key_name: key.wire_name(),
        ttl: 0,
        algorithm: key.algorithm().wire_name(),
        time_signed,
        fudge,
        error: 0,
        other: &[],
    }
}

/// The "Time Signed" of `now`, which TSIG carries in 48 bits.
pub(super) fn time48(now: u64) -> u64 {
    now & 0xffff_ffff_ffff
}
