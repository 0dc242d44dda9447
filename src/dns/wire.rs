//! Putting answers on the wire: sections encoded once into a reusable tail, then cut to fit.
//!
//! A response is header + question + tail. The tail (answer, authority and additional
//! sections) is encoded after a question of the same wire length as any query it will serve,
//! so its compression pointers stay valid whatever the case of the query name. Truncation
//! follows RFC 2181 §9: whole RRsets only; TC is set when answer or authority RRsets had to
//! go, never for dropped additional data.

use std::ops::Range;

use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::{LowerName, RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::answer::{Answer, AuthorityPart, Part};
use super::edns::{self, ClientSubnet};

/// Size of a DNS header.
pub const HEADER_LEN: usize = 12;
/// Size of an OPT record without options.
pub const OPT_LEN: usize = 11;

/// An encoded answer: flags plus the sections after the question, with RRset boundaries.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    tail: Vec<u8>,
    /// State after each RRset, in order; the last one is the whole tail.
    cuts: Vec<Cut>,
    /// The answer has answer or authority RRsets, so sending none of them means TC.
    has_required: bool,
    /// Where a negative answer's SOA (and its RRSIGs) are in the tail, and whose SOA it is:
    /// a dynamic update moves only the serial (and the signatures), and
    /// [`Encoded::with_soa`] patches them instead of resolving and encoding the answer again.
    negative_soa: Option<NegativeSoa>,
}

/// Where the parts of a negative answer's SOA that an update changes are in the tail.
#[derive(Debug, Clone)]
struct NegativeSoa {
    zone: LowerName,
    serial_at: usize,
    sigs: SoaSigs,
}

/// Where the SOA's RRSIGs are.
#[derive(Debug, Clone)]
enum SoaSigs {
    /// None: the answer is for a query without DO.
    Unsigned,
    /// The RDATA of each.
    At(Vec<Range<usize>>),
    /// Not in raw form: where their RDATA starts is not known.
    Unknown,
}

/// The outcome of putting a new SOA into a prepared answer.
#[derive(Debug)]
pub enum SoaPatch {
    /// The answer carries no negative SOA of the zone: it stands.
    Untouched,
    Patched(Encoded),
    /// Its SOA's RRSIGs do not fit where the old ones were (another count or length): the
    /// answer must be made again.
    Unfit,
}

/// The tail up to the end of one RRset.
#[derive(Debug, Clone, Copy)]
struct Cut {
    end: usize,
    counts: [u16; 3],
    /// Every answer and authority RRset is before this point.
    required_done: bool,
}

/// The OPT record we send back (RFC 6891 §6.1.3).
#[derive(Debug, Clone, Copy)]
pub struct OptOut {
    /// Our own UDP payload size.
    pub payload: u16,
    /// Upper 8 bits of the 12-bit extended RCODE (1 = BADVERS).
    pub ext_rcode: u8,
    /// The DO bit, copied from the query (RFC 3225 §3).
    pub dnssec_ok: bool,
    /// The query's client subnet, echoed with this scope (RFC 7871 §7.2.1).
    pub client_subnet: Option<(ClientSubnet, u8)>,
}

impl OptOut {
    /// Wire size of this OPT record.
    fn len(&self) -> usize {
        OPT_LEN
            + self
                .client_subnet
                .map_or(0, |(subnet, _)| edns::option_len(subnet))
    }
}

/// Header fields copied from the query.
#[derive(Debug, Clone, Copy)]
pub struct QueryHeader {
    pub id: u16,
    pub opcode: u8,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
}

// === impl Encoded ===

impl Encoded {
    /// Encodes `answer` as the reply to `query`. Data past 64 KiB is cut like any truncation.
    pub fn new(query: &Query, answer: &Answer) -> Encoded {
        Encoded::encode(query, answer, false)
    }

    /// Encodes `answer` for a DO query: every RRset followed by its RRSIGs, cut with it.
    pub fn signed(query: &Query, answer: &Answer) -> Encoded {
        Encoded::encode(query, answer, true)
    }

    fn encode(query: &Query, answer: &Answer, signed: bool) -> Encoded {
        let mut buf = Vec::with_capacity(512);
        let mut cuts = Vec::new();
        let mut negative_soa = None;
        let required = answer.answer.len() + answer.authority.len();
        let (tail_start, good_end) = {
            let mut encoder = BinEncoder::new(&mut buf);
            let mut good_end = 0;
            let started = encoder
                .emit_vec(&[0; HEADER_LEN])
                .and_then(|()| query.emit(&mut encoder));
            let tail_start = encoder.offset();
            if started.is_ok() {
                good_end = tail_start;
                let mut counts = [0u16; 3];
                let sections = answer
                    .answer
                    .iter()
                    .map(|p| (0, records(p, signed), None))
                    .chain(
                        answer
                            .authority
                            .iter()
                            .map(|a| (1, authority_records(a, signed), soa_zone(a))),
                    )
                    .chain(
                        answer
                            .additional
                            .iter()
                            .map(|p| (2, records(p, signed), None)),
                    );
                for (done, (section, set, soa_of)) in sections.enumerate() {
                    // Where each record of a negative SOA part ends, to patch it later.
                    let mut ends = Vec::new();
                    let emitted = set.iter().try_for_each(|r| {
                        r.emit(&mut encoder)?;
                        if soa_of.is_some() {
                            ends.push(encoder.offset() - tail_start);
                        }
                        Ok::<(), hickory_proto::ProtoError>(())
                    });
                    if emitted.is_err() {
                        break;
                    }
                    counts[section] += set.len() as u16;
                    good_end = encoder.offset();
                    if let Some(zone) = soa_of {
                        negative_soa = NegativeSoa::of(zone, &set, &ends, signed);
                    }
                    cuts.push(Cut {
                        end: good_end - tail_start,
                        counts,
                        required_done: done + 1 >= required,
                    });
                }
            }
            (tail_start, good_end)
        };
        buf.truncate(good_end);
        let tail = buf.split_off(tail_start.min(buf.len()));
        Encoded {
            rcode: answer.rcode,
            authoritative: answer.authoritative,
            tail,
            cuts,
            has_required: required > 0,
            negative_soa,
        }
    }

    /// This answer with `serial` as the serial of its negative SOA and `sigs` as its RRSIGs
    /// (a signed answer's), when that SOA is `zone`'s.
    pub fn with_soa(&self, zone: &LowerName, serial: u32, sigs: &[Record]) -> SoaPatch {
        let Some(soa) = self.negative_soa.as_ref().filter(|soa| soa.zone == *zone) else {
            return SoaPatch::Untouched;
        };
        let mut patched = self.clone();
        patched.tail[soa.serial_at..soa.serial_at + 4].copy_from_slice(&serial.to_be_bytes());
        let ranges = match &soa.sigs {
            SoaSigs::Unsigned => return SoaPatch::Patched(patched),
            SoaSigs::At(ranges) if ranges.len() == sigs.len() => ranges,
            _ => return SoaPatch::Unfit,
        };
        for (range, sig) in ranges.iter().zip(sigs) {
            match raw_rdata(sig) {
                Some(rdata) if rdata.len() == range.len() => {
                    patched.tail[range.clone()].copy_from_slice(rdata);
                }
                _ => return SoaPatch::Unfit,
            }
        }
        SoaPatch::Patched(patched)
    }

    /// Appends header, question and as much of the tail as fits in `limit` bytes to `out`.
    /// `question` must have the wire length of the question this tail was encoded after.
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        header: QueryHeader,
        question: &Query,
        limit: usize,
        opt: Option<OptOut>,
    ) {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        write_question(out, question);
        let opt_len = opt.map_or(0, |o| o.len());
        let budget = limit.saturating_sub(out.len() - start + opt_len);
        let cut = if self.tail.len() <= budget {
            self.cuts.last().copied()
        } else {
            self.cuts.iter().rev().find(|c| c.end <= budget).copied()
        };
        let (end, counts, truncated) = match cut {
            Some(c) => (c.end, c.counts, !c.required_done),
            None => (0, [0; 3], self.has_required),
        };
        out.extend_from_slice(&self.tail[..end]);
        let mut additional = counts[2];
        if let Some(opt) = opt {
            write_opt(out, opt);
            additional += 1;
        }
        let flags = Flags {
            authoritative: self.authoritative,
            truncated,
            rcode: self.rcode,
        };
        write_header(
            &mut out[start..start + HEADER_LEN],
            header,
            flags,
            [1, counts[0], counts[1], additional],
        );
    }
}

/// The records of one part, with their RRSIGs when `signed`, under the synthesized owner
/// if there is one (a wildcard's RRSIG keeps its label count: RFC 4035 §5.3.4).
fn records(part: &Part, signed: bool) -> Vec<Record> {
    let sigs = if signed { &part.rrset.sigs[..] } else { &[] };
    let all = part.rrset.records.iter().chain(sigs);
    match &part.owner {
        None => all.cloned().collect(),
        Some(owner) => all
            .map(|r| {
                let mut r = r.clone();
                r.name = owner.clone();
                r
            })
            .collect(),
    }
}

/// Bytes of the SOA RDATA's five 32-bit fields, serial first.
const SOA_TIMERS_LEN: usize = 20;

/// The zone whose SOA a negative answer's authority part is.
fn soa_zone(part: &AuthorityPart) -> Option<LowerName> {
    match part {
        AuthorityPart::NegativeSoa(zone) => Some(LowerName::new(&zone.origin)),
        AuthorityPart::Rrset(_) => None,
    }
}

impl NegativeSoa {
    /// Where the serial and the RRSIGs' RDATA are, for `set` (the SOA and, when `signed`, its
    /// RRSIGs) emitted to end at `ends` in the tail.
    fn of(zone: LowerName, set: &[Record], ends: &[usize], signed: bool) -> Option<NegativeSoa> {
        // The SOA RDATA ends with serial, refresh, retry, expire, minimum.
        let serial_at = ends.first()? - SOA_TIMERS_LEN;
        let ranges = (set.iter().zip(ends).skip(1))
            .map(|(sig, &end)| raw_rdata(sig).map(|rdata| end - rdata.len()..end))
            .collect::<Option<Vec<_>>>();
        let sigs = match ranges {
            _ if !signed => SoaSigs::Unsigned,
            Some(ranges) => SoaSigs::At(ranges),
            None => SoaSigs::Unknown,
        };
        Some(NegativeSoa {
            zone,
            serial_at,
            sigs,
        })
    }
}

/// A record's RDATA as written, when it is kept raw (the DNSSEC types).
fn raw_rdata(record: &Record) -> Option<&[u8]> {
    match &record.data {
        RData::Unknown { rdata, .. } => Some(&rdata.anything),
        _ => None,
    }
}

fn authority_records(part: &AuthorityPart, signed: bool) -> Vec<Record> {
    match part {
        AuthorityPart::Rrset(p) => records(p, signed),
        AuthorityPart::NegativeSoa(zone) => {
            let mut records = vec![zone.negative_soa()];
            if signed {
                // At the negative TTL, like the SOA it signs (the RRSIG keeps the original).
                records.extend(zone.soa.sigs.iter().map(|sig| {
                    let mut sig = sig.clone();
                    sig.ttl = zone.negative_ttl;
                    sig
                }));
            }
            records
        }
    }
}

/// Response flags decided by the answer.
struct Flags {
    authoritative: bool,
    truncated: bool,
    rcode: ResponseCode,
}

fn write_header(out: &mut [u8], query: QueryHeader, flags: Flags, counts: [u16; 4]) {
    out[0..2].copy_from_slice(&query.id.to_be_bytes());
    out[2] = 0x80
        | (query.opcode & 0x0f) << 3
        | u8::from(flags.authoritative) << 2
        | u8::from(flags.truncated) << 1
        | u8::from(query.recursion_desired);
    out[3] = u8::from(query.checking_disabled) << 4 | (u16::from(flags.rcode) & 0x0f) as u8;
    for (i, count) in counts.iter().enumerate() {
        out[4 + 2 * i..6 + 2 * i].copy_from_slice(&count.to_be_bytes());
    }
}

/// The question as the client sent it: same labels, same case, no compression.
fn write_question(out: &mut Vec<u8>, query: &Query) {
    for label in query.name().iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out.extend_from_slice(&u16::from(query.query_type()).to_be_bytes());
    out.extend_from_slice(&u16::from(query.query_class()).to_be_bytes());
}

fn write_opt(out: &mut Vec<u8>, opt: OptOut) {
    out.push(0);
    out.extend_from_slice(&41u16.to_be_bytes());
    out.extend_from_slice(&opt.payload.to_be_bytes());
    out.push(opt.ext_rcode);
    out.push(0);
    out.push(if opt.dnssec_ok { 0x80 } else { 0 });
    out.push(0);
    out.extend_from_slice(&((opt.len() - OPT_LEN) as u16).to_be_bytes());
    if let Some((subnet, scope)) = opt.client_subnet {
        edns::write_option(out, subnet, scope);
    }
}

/// A response without a question: used when the query could not be parsed.
pub fn write_bare_error(out: &mut Vec<u8>, header: QueryHeader, rcode: ResponseCode) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    let flags = Flags {
        authoritative: false,
        truncated: false,
        rcode,
    };
    write_header(&mut out[start..], header, flags, [0; 4]);
}

/// An error response that echoes the question (NOTIMP, REFUSED, FORMERR, BADVERS).
pub fn write_error(
    out: &mut Vec<u8>,
    header: QueryHeader,
    question: &Query,
    rcode: ResponseCode,
    opt: Option<OptOut>,
) {
    let encoded = Encoded {
        rcode,
        authoritative: false,
        tail: Vec::new(),
        cuts: Vec::new(),
        has_required: false,
        negative_soa: None,
    };
    encoded.write(out, header, question, usize::MAX, opt);
}
