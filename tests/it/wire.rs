//! Reading replies byte for byte: a small DNS wire parser (names expanded, RDATA kept
//! verbatim), builders for expected records, and assertions that print the whole reply.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::{DNSClass, RecordType};

// ------------------------------------------------------------------ replies

/// One resource record as it was on the wire. For NS, CNAME, PTR, MX and SOA (the types whose
/// names may be compressed, RFC 3597 §4) the names inside `rdata` are expanded; every other
/// type's RDATA is kept byte for byte.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rr {
    pub owner: String,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
}

/// The OPT pseudo-record of a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opt {
    pub payload: u16,
    pub ext_rcode: u8,
    pub version: u8,
    pub dnssec_ok: bool,
}

/// A parsed reply, with the transport it came over for assertion messages.
#[derive(Clone)]
pub struct Reply {
    pub via: &'static str,
    pub bytes: Vec<u8>,
    pub id: u16,
    pub flags: u16,
    pub counts: [u16; 4],
    pub question: Option<(String, u16, u16)>,
    pub answer: Vec<Rr>,
    pub authority: Vec<Rr>,
    /// Additional records without the OPT.
    pub additional: Vec<Rr>,
    pub opt: Option<Opt>,
}

impl Reply {
    pub fn new(via: &'static str, bytes: Vec<u8>) -> Reply {
        parse_reply(via, bytes.clone())
            .unwrap_or_else(|e| panic!("malformed {via} reply ({e}): {bytes:02x?}"))
    }
    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }
    pub fn aa(&self) -> bool {
        self.flags & 0x0400 != 0
    }
    pub fn tc(&self) -> bool {
        self.flags & 0x0200 != 0
    }
    /// The full (extended, RFC 6891 §6.1.3) response code.
    pub fn rcode(&self) -> u16 {
        let high = self.opt.as_ref().map_or(0, |o| u16::from(o.ext_rcode));
        high << 4 | (self.flags & 0x000f)
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} reply id={} rcode={} aa={} tc={} len={} counts={:?} q={:?}",
            self.via,
            self.id,
            self.rcode(),
            self.aa(),
            self.tc(),
            self.bytes.len(),
            self.counts,
            self.question
        )?;
        for (name, section) in [
            ("answer", &self.answer),
            ("authority", &self.authority),
            ("additional", &self.additional),
        ] {
            for rr in section {
                writeln!(f, "  {name}: {rr:?}")?;
            }
        }
        write!(f, "  opt: {:?}", self.opt)
    }
}

fn read_u16(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| format!("short at {at}"))
}

/// Reads a possibly compressed name at `at`; returns its uncompressed wire form (case kept)
/// and the offset after it.
fn read_name(b: &[u8], mut at: usize) -> Result<(Vec<u8>, usize), String> {
    let mut out = Vec::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *b.get(at).ok_or("name runs past the end")? as usize;
        if len & 0xc0 == 0xc0 {
            let target = (read_u16(b, at)? & 0x3fff) as usize;
            end.get_or_insert(at + 2);
            jumps += 1;
            if jumps > 64 {
                return Err("compression loop".into());
            }
            at = target;
            continue;
        }
        if len & 0xc0 != 0 {
            return Err("bad label type".into());
        }
        out.push(len as u8);
        if len == 0 {
            return Ok((out, end.unwrap_or(at + 1)));
        }
        out.extend_from_slice(
            b.get(at + 1..at + 1 + len)
                .ok_or("label runs past the end")?,
        );
        at += 1 + len;
    }
}

/// Presentation form of an uncompressed wire name.
pub fn name_text(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut at = 0;
    while at < wire.len() && wire[at] != 0 {
        let len = wire[at] as usize;
        for &c in &wire[at + 1..(at + 1 + len).min(wire.len())] {
            match c {
                b'.' | b'\\' | b'"' => out.push_str(&format!("\\{}", c as char)),
                0x21..=0x7e => out.push(c as char),
                _ => out.push_str(&format!("\\{c:03}")),
            }
        }
        out.push('.');
        at += 1 + len;
    }
    if out.is_empty() { ".".to_string() } else { out }
}

fn expand_rdata(b: &[u8], rtype: u16, start: usize, len: usize) -> Result<Vec<u8>, String> {
    let raw = b
        .get(start..start + len)
        .ok_or("rdata runs past the end")?
        .to_vec();
    Ok(match rtype {
        2 | 5 | 12 => read_name(b, start)?.0,
        15 => {
            let mut out = raw[..2].to_vec();
            out.extend(read_name(b, start + 2)?.0);
            out
        }
        6 => {
            let (mut out, next) = read_name(b, start)?;
            let (rname, next) = read_name(b, next)?;
            out.extend(rname);
            out.extend_from_slice(b.get(next..next + 20).ok_or("short SOA")?);
            out
        }
        _ => raw,
    })
}

fn parse_reply(via: &'static str, bytes: Vec<u8>) -> Result<Reply, String> {
    if bytes.len() < 12 {
        return Err("shorter than a header".into());
    }
    let b = &bytes;
    let counts = [
        read_u16(b, 4)?,
        read_u16(b, 6)?,
        read_u16(b, 8)?,
        read_u16(b, 10)?,
    ];
    let mut at = 12;
    let mut question = None;
    for _ in 0..counts[0] {
        let (name, next) = read_name(b, at)?;
        question = Some((name_text(&name), read_u16(b, next)?, read_u16(b, next + 2)?));
        at = next + 4;
    }
    let mut sections: [Vec<Rr>; 3] = Default::default();
    let mut opt = None;
    for (i, section) in sections.iter_mut().enumerate() {
        for _ in 0..counts[i + 1] {
            let (owner, next) = read_name(b, at)?;
            let rtype = read_u16(b, next)?;
            let class = read_u16(b, next + 2)?;
            let ttl_bytes = b.get(next + 4..next + 8).ok_or("short record")?;
            let ttl = u32::from_be_bytes(ttl_bytes.try_into().unwrap());
            let len = read_u16(b, next + 8)? as usize;
            let rdata = expand_rdata(b, rtype, next + 10, len)?;
            at = next + 10 + len;
            if rtype == 41 {
                if i != 2 || opt.is_some() {
                    return Err("OPT outside additional, or twice".into());
                }
                opt = Some(Opt {
                    payload: class,
                    ext_rcode: ttl_bytes[0],
                    version: ttl_bytes[1],
                    dnssec_ok: ttl_bytes[2] & 0x80 != 0,
                });
                continue;
            }
            section.push(Rr {
                owner: name_text(&owner),
                rtype,
                class,
                ttl,
                rdata,
            });
        }
    }
    if at != b.len() {
        return Err(format!("{} bytes after the last record", b.len() - at));
    }
    let [answer, authority, additional] = sections;
    Ok(Reply {
        via,
        id: read_u16(b, 0)?,
        flags: read_u16(b, 2)?,
        counts,
        question,
        answer,
        authority,
        additional,
        opt,
        bytes,
    })
}

// ------------------------------------------------------------------ expected records

/// An IN record with the given owner, type, TTL and RDATA (see the rdata builders below).
pub fn rr(owner: &str, rtype: RecordType, ttl: u32, rdata: Vec<u8>) -> Rr {
    Rr {
        owner: owner.to_string(),
        rtype: u16::from(rtype),
        class: 1,
        ttl,
        rdata,
    }
}

impl fmt::Debug for Rr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rtype = RecordType::from(self.rtype);
        let class = DNSClass::from(self.class);
        write!(f, "{} {} {} {} ", self.owner, self.ttl, class, rtype)?;
        let d = &self.rdata;
        match self.rtype {
            1 if d.len() == 4 => write!(f, "{}", Ipv4Addr::new(d[0], d[1], d[2], d[3])),
            28 if d.len() == 16 => write!(
                f,
                "{}",
                Ipv6Addr::from(<[u8; 16]>::try_from(&d[..]).unwrap())
            ),
            2 | 5 | 12 => write!(f, "{}", name_text(d)),
            15 if d.len() > 2 => write!(
                f,
                "{} {}",
                u16::from_be_bytes([d[0], d[1]]),
                name_text(&d[2..])
            ),
            16 | 99 => {
                let mut at = 0;
                while at < d.len() {
                    let len = d[at] as usize;
                    write!(
                        f,
                        "{:?} ",
                        String::from_utf8_lossy(&d[at + 1..(at + 1 + len).min(d.len())])
                    )?;
                    at += 1 + len;
                }
                Ok(())
            }
            _ => write!(
                f,
                "\\# {} {}",
                d.len(),
                d.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
        }
    }
}

/// Uncompressed wire form of a presentation name (must end with a dot; no escapes).
pub fn name(text: &str) -> Vec<u8> {
    assert!(text.ends_with('.'), "expected names are absolute: {text}");
    let mut out = Vec::new();
    for label in text
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

pub fn a(text: &str) -> Vec<u8> {
    text.parse::<Ipv4Addr>().unwrap().octets().to_vec()
}

pub fn aaaa(text: &str) -> Vec<u8> {
    text.parse::<Ipv6Addr>().unwrap().octets().to_vec()
}

pub fn mx(preference: u16, exchange: &str) -> Vec<u8> {
    let mut out = preference.to_be_bytes().to_vec();
    out.extend(name(exchange));
    out
}

pub fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [priority, weight, port] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend(name(target));
    out
}

/// TXT (and SPF) RDATA: each string with its length byte.
pub fn txt(strings: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in strings {
        out.push(s.len() as u8);
        out.extend_from_slice(s);
    }
    out
}

pub fn soa(mname: &str, rname: &str, timers: [u32; 5]) -> Vec<u8> {
    let mut out = name(mname);
    out.extend(name(rname));
    for t in timers {
        out.extend_from_slice(&t.to_be_bytes());
    }
    out
}

pub fn hex(text: &str) -> Vec<u8> {
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

// ------------------------------------------------------------------ assertions

/// Asserts a section holds exactly `expected` (order-insensitive).
#[track_caller]
pub fn assert_rrs(reply: &Reply, section: &[Rr], expected: &[Rr], what: &str) {
    let mut got = section.to_vec();
    let mut want = expected.to_vec();
    got.sort();
    want.sort();
    assert_eq!(
        got, want,
        "{what} over {}; whole reply:\n{reply:?}",
        reply.via
    );
}

/// Asserts the response code (as a number: 0 NOERROR, 1 FORMERR, 3 NXDOMAIN, 4 NOTIMP,
/// 5 REFUSED, 16 BADVERS).
#[track_caller]
pub fn assert_rcode(reply: &Reply, rcode: u16) {
    assert_eq!(
        reply.rcode(),
        rcode,
        "rcode over {}; whole reply:\n{reply:?}",
        reply.via
    );
}

pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    pub const NOTAUTH: u16 = 9;
    pub const BADVERS: u16 = 16;
}
