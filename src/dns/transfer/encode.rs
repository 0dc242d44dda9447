//! Transfer messages on the wire: records packed into messages of about 16 KiB, names
//! compressed within each message (RFC 5936 §2.2: any number of records per message).
//!
//! Written here rather than with hickory's encoder, which keeps at most 64 compression
//! candidates per message (a guard for small answers): past the first few dozen names of a
//! transfer every owner went out in full, a third more bytes. Here every suffix of every
//! name is a candidate (a hash lookup per label), as in NSD and Knot. Names inside RDATA are
//! compressed only for the RFC 1035 types RFC 3597 §4 allows (NS, CNAME, PTR, MX, SOA).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::iter::Peekable;

use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::dns::journal::Changeset;
use crate::dns::wire::HEADER_LEN;
use crate::dns::zone::Zone;

/// A message is closed once it holds this many bytes (BIND and Knot use 16 to 64 KiB).
const SOFT_LIMIT: usize = 16 * 1024;
/// Compression pointers have 14 bits of offset.
const POINTER_LIMIT: usize = 0x3fff;
/// Room kept below the 64 KiB message limit (a TSIG record fits in it).
const MAX_MESSAGE: usize = 65_535 - 512;

/// The messages of one answer, each a complete DNS message without the TCP length prefix.
#[derive(Debug)]
pub struct Messages(pub Vec<Vec<u8>>);

impl Messages {
    /// One message with `rcode` and the question.
    pub fn error(id: u16, question: &Query, rcode: ResponseCode) -> Messages {
        let mut none = std::iter::empty().peekable();
        Messages(vec![message(id, Some(question), rcode, &mut none).0])
    }

    /// The zone's SOA alone: the secondary is up to date (RFC 1995 §2).
    pub fn soa_only(id: u16, question: &Query, zone: &Zone) -> Messages {
        let mut soa = std::iter::once(&zone.soa.records[0]).peekable();
        Messages(vec![
            message(id, Some(question), ResponseCode::NoError, &mut soa).0,
        ])
    }

    /// The whole zone: SOA, every record, SOA; the question in the first message only.
    pub fn zone(id: u16, question: &Query, zone: &Zone) -> Messages {
        let soa = &zone.soa.records[0];
        let records = std::iter::once(soa)
            .chain(zone.transfer_records())
            .chain(std::iter::once(soa));
        pack(id, question, records)
    }

    /// An incremental answer (RFC 1995 §4): the current SOA, then for each change the SOA
    /// of its old version, the records it removed, the SOA of its new version and the
    /// records it added, then the current SOA again.
    pub fn incremental(id: u16, question: &Query, zone: &Zone, changes: &[Changeset]) -> Messages {
        let current = &zone.soa.records[0];
        let version = |serial: u32| {
            let mut soa = current.clone();
            if let RData::SOA(rdata) = &mut soa.data {
                rdata.serial = serial;
            }
            soa
        };
        let mut records = vec![current.clone()];
        for change in changes {
            records.push(version(change.from_serial));
            records.extend(change.removed.iter().cloned());
            records.push(version(change.to_serial));
            records.extend(change.added.iter().cloned());
        }
        records.push(current.clone());
        pack(id, question, records.iter())
    }
}

/// `records` in as many messages as they need, the question in the first only.
fn pack<'a>(id: u16, question: &Query, records: impl Iterator<Item = &'a Record>) -> Messages {
    let mut records = records.peekable();
    let (first, mut failed) = message(id, Some(question), ResponseCode::NoError, &mut records);
    let mut messages = vec![first];
    // A failed message is SERVFAIL, which ends the transfer for the secondary: stop.
    while !failed && records.peek().is_some() {
        let (next, next_failed) = message(id, None, ResponseCode::NoError, &mut records);
        messages.push(next);
        failed = next_failed;
    }
    Messages(messages)
}

/// One message: header, the question if given, and records from `records` until the
/// message reaches [`SOFT_LIMIT`]; and whether it failed (a record that does not fit in
/// 64 KiB makes it SERVFAIL).
fn message<'a>(
    id: u16,
    question: Option<&Query>,
    rcode: ResponseCode,
    records: &mut Peekable<impl Iterator<Item = &'a Record>>,
) -> (Vec<u8>, bool) {
    let mut packer = Packer::new();
    let mut answers = 0u16;
    let mut failed = false;
    if let Some(question) = question {
        packer.name(question.name());
        packer.u16(u16::from(question.query_type()));
        packer.u16(u16::from(question.query_class()));
    }
    while packer.buf.len() < SOFT_LIMIT
        && let Some(record) = records.next()
    {
        packer.record(record);
        if packer.buf.len() > MAX_MESSAGE {
            failed = true;
            break;
        }
        answers += 1;
    }
    let mut buf = packer.buf;
    if failed {
        buf.truncate(HEADER_LEN);
        answers = 0;
    }
    let rcode = if failed {
        ResponseCode::ServFail
    } else {
        rcode
    };
    buf[0..2].copy_from_slice(&id.to_be_bytes());
    // QR, opcode QUERY, AA; no RD/RA/TC.
    buf[2] = 0x84;
    buf[3] = (u16::from(rcode) & 0x0f) as u8;
    buf[5] = u8::from(question.is_some() && !failed);
    buf[6..8].copy_from_slice(&answers.to_be_bytes());
    (buf, failed)
}

/// A message being written, with where every name suffix written so far starts.
struct Packer {
    buf: Vec<u8>,
    /// Hash of a lowercased suffix → where it starts (a hit is checked against the message).
    suffixes: HashMap<u64, u16, BuildHasherDefault<Prehashed>>,
    /// Scratch space for one name: its wire form as written in the zone and lowercased,
    /// where each label starts in them, and the hash of the suffix from each label.
    wire: Vec<u8>,
    lower: Vec<u8>,
    starts: Vec<usize>,
    hashes: Vec<u64>,
    /// The last name written (lowercased) and where it starts: owners repeat record after
    /// record, and then need no hashing.
    last: Vec<u8>,
    last_at: Option<u16>,
}

impl Packer {
    fn new() -> Packer {
        let mut buf = Vec::with_capacity(SOFT_LIMIT + 1024);
        buf.resize(HEADER_LEN, 0);
        Packer {
            buf,
            suffixes: HashMap::with_capacity_and_hasher(2048, BuildHasherDefault::default()),
            wire: Vec::with_capacity(256),
            lower: Vec::with_capacity(256),
            starts: Vec::with_capacity(128),
            hashes: Vec::with_capacity(128),
            last: Vec::with_capacity(256),
            last_at: None,
        }
    }

    fn u16(&mut self, value: u16) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    fn u32(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    /// Writes `name`, ending in a pointer to the longest suffix already in the message.
    fn name(&mut self, name: &Name) {
        self.split(name);
        if self.lower == self.last
            && let Some(at) = self.last_at
        {
            self.u16(0xc000 | at);
            return;
        }
        self.hash_suffixes();
        let here = self.buf.len();
        self.last_at = u16::try_from(here)
            .ok()
            .filter(|&at| usize::from(at) <= POINTER_LIMIT);
        std::mem::swap(&mut self.last, &mut self.lower);
        let lower = &self.last;
        let labels = self.starts.len();
        for i in 0..labels {
            let (start, hash) = (self.starts[i], self.hashes[i]);
            if let Some(&offset) = self.suffixes.get(&hash)
                && same_name(&self.buf, offset, &lower[start..])
            {
                if i == 0 {
                    self.last_at = Some(offset);
                }
                self.buf.extend_from_slice(&(0xc000 | offset).to_be_bytes());
                return;
            }
            let here = self.buf.len();
            if here <= POINTER_LIMIT {
                self.suffixes.insert(hash, here as u16);
            }
            // The label as written in the zone: its case kept.
            let end = self
                .starts
                .get(i + 1)
                .copied()
                .unwrap_or(self.wire.len() - 1);
            self.buf.extend_from_slice(&self.wire[start..end]);
        }
        self.buf.push(0);
    }

    /// Writes `name` whole, for the names in RDATA that must not be compressed.
    fn whole_name(&mut self, name: &Name) {
        for label in name.iter() {
            self.buf.push(label.len() as u8);
            self.buf.extend_from_slice(label);
        }
        self.buf.push(0);
    }

    /// Fills `wire`, `lower` and `starts` for `name`.
    fn split(&mut self, name: &Name) {
        self.wire.clear();
        self.starts.clear();
        for label in name.iter() {
            self.starts.push(self.wire.len());
            self.wire.push(label.len() as u8);
            self.wire.extend_from_slice(label);
        }
        self.wire.push(0);
        self.lower.clear();
        self.lower.extend_from_slice(&self.wire);
        self.lower.make_ascii_lowercase();
    }

    /// Fills `hashes` from `lower`: from the last label back, each suffix's from the one
    /// after it, so that a name costs one pass.
    fn hash_suffixes(&mut self) {
        self.hashes.clear();
        self.hashes.resize(self.starts.len(), 0);
        let mut hash = FNV_OFFSET;
        let mut end = self.lower.len() - 1;
        for i in (0..self.starts.len()).rev() {
            for &byte in &self.lower[self.starts[i]..end] {
                hash = (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
            }
            self.hashes[i] = finish(hash);
            end = self.starts[i];
        }
    }

    fn record(&mut self, record: &Record) {
        self.name(&record.name);
        self.u16(u16::from(record.record_type()));
        self.u16(u16::from(record.dns_class));
        self.u32(record.ttl);
        let length_at = self.buf.len();
        self.u16(0);
        match &record.data {
            RData::A(a) => self.buf.extend_from_slice(&a.0.octets()),
            RData::AAAA(aaaa) => self.buf.extend_from_slice(&aaaa.0.octets()),
            RData::NS(target) => self.name(&target.0),
            RData::CNAME(target) => self.name(&target.0),
            RData::PTR(target) => self.name(&target.0),
            RData::MX(mx) => {
                self.u16(mx.preference);
                self.name(&mx.exchange);
            }
            RData::SOA(soa) => {
                self.name(&soa.mname);
                self.name(&soa.rname);
                self.u32(soa.serial);
                self.u32(soa.refresh as u32);
                self.u32(soa.retry as u32);
                self.u32(soa.expire as u32);
                self.u32(soa.minimum);
            }
            RData::SRV(srv) => {
                self.u16(srv.priority);
                self.u16(srv.weight);
                self.u16(srv.port);
                self.whole_name(&srv.target);
            }
            RData::TXT(txt) if txt.txt_data.iter().all(|s| s.len() <= 255) => {
                for string in &txt.txt_data {
                    self.buf.push(string.len() as u8);
                    self.buf.extend_from_slice(string);
                }
            }
            other => self.generic(other, length_at + 2),
        }
        let length = self.buf.len() - length_at - 2;
        let length = u16::try_from(length).unwrap_or(u16::MAX);
        self.buf[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
    }

    /// Any other RDATA through hickory's encoder, at `at`, names uncompressed (canonical
    /// form writes them whole).
    fn generic(&mut self, rdata: &RData, at: usize) {
        let mut encoder = BinEncoder::new(&mut self.buf);
        encoder.set_offset(at);
        encoder.set_canonical_form(true);
        if rdata.emit(&mut encoder).is_err() {
            // Marked by length: the caller sees a message past the limit and fails.
            self.buf.resize(MAX_MESSAGE + 1, 0);
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Spreads a hash over all 64 bits (MurmurHash3's finaliser): the table takes its bucket
/// from the low bits and its tag from the high ones.
fn finish(mut hash: u64) -> u64 {
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// Whether the name at `offset` in `buf` (pointers followed) is `lower`, a lowercased
/// wire-form name, ignoring case.
fn same_name(buf: &[u8], mut offset: u16, lower: &[u8]) -> bool {
    let mut at = usize::from(offset);
    let mut pos = 0;
    // A name has at most 127 labels; pointers here only ever point back.
    for _ in 0..256 {
        let Some(&len) = buf.get(at) else {
            return false;
        };
        if len & 0xc0 == 0xc0 {
            let Some(&low) = buf.get(at + 1) else {
                return false;
            };
            offset = u16::from_be_bytes([len & 0x3f, low]);
            at = usize::from(offset);
            continue;
        }
        let end = at + 1 + usize::from(len);
        let Some(label) = buf.get(at..end) else {
            return false;
        };
        let Some(want) = lower.get(pos..pos + label.len()) else {
            return false;
        };
        if !label
            .iter()
            .zip(want)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
        {
            return false;
        }
        if len == 0 {
            return pos + 1 == lower.len();
        }
        pos += label.len();
        at = end;
    }
    false
}

/// The keys of [`Packer::suffixes`] are hashes already: passed on as they are.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::Message;
    use hickory_proto::rr::RecordType;

    use super::*;
    use crate::dns::rdata;

    fn record(name: &str, rtype: RecordType, value: &str) -> Record {
        let origin = Name::from_ascii("Zone.Test.").unwrap();
        let name = Name::from_ascii(name).unwrap();
        let data = rdata::parse_rdata(rtype, value, &origin).unwrap();
        Record::from_rdata(name, 300, data)
    }

    /// Every type round-trips through hickory's decoder, with the names' case kept and the
    /// message smaller than the names written whole.
    #[test]
    fn packed_records_decode_to_themselves() {
        let records = vec![
            record(
                "Zone.Test.",
                RecordType::SOA,
                "ns1 hostmaster 7 3600 900 1209600 300",
            ),
            record("Zone.Test.", RecordType::NS, "ns1.Zone.Test."),
            record("Zone.Test.", RecordType::MX, "10 mail.zone.test."),
            record(
                "www.Zone.Test.",
                RecordType::CNAME,
                "web.elsewhere.example.",
            ),
            record(
                "_sip._tcp.Zone.Test.",
                RecordType::SRV,
                "10 60 5060 sip.zone.test.",
            ),
            record("Zone.Test.", RecordType::TXT, "\"v=spf1 -all\" \"second\""),
            record("Zone.Test.", RecordType::CAA, "0 issue \"letsencrypt.org\""),
            record(
                "Zone.Test.",
                RecordType::NAPTR,
                "100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp.zone.test.",
            ),
            record("1.2.0.192.in-addr.arpa.", RecordType::PTR, "www.zone.test."),
            record("v6.Zone.Test.", RecordType::AAAA, "2001:db8::1"),
        ];
        let mut iter = records.iter().peekable();
        let (bytes, failed) = message(7, None, ResponseCode::NoError, &mut iter);
        assert!(!failed);
        let decoded = Message::from_vec(&bytes).expect("decodes");
        assert_eq!(decoded.answers, records);
        assert!(
            decoded
                .answers
                .iter()
                .any(|r| r.name.to_string() == "Zone.Test.")
        );
        let whole: usize = records
            .iter()
            .map(|r| r.to_bytes().map_or(0, |b| b.len()))
            .sum();
        assert!(
            bytes.len() < HEADER_LEN + whole,
            "{} vs {whole}",
            bytes.len()
        );
    }
}
