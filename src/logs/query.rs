//! The DNS query log. The request path copies what a line needs into a fixed-size
//! [`QueryEntry`] (the response's header and question bytes, the client, timings); the
//! writer decodes and formats it, and looks up the zone in the snapshot then current.
//!
//! Text, one line per answered query, space-separated, `-` for an absent value:
//! `time client transport qname qtype qclass rcode answers size flags ecs zone latency_us`,
//! e.g. `1767225600.123456 127.0.0.1:53211 udp www.home.example. A IN NOERROR 2 97 AA - home.example. 41`.
//! JSON: one object per line with the same names (`flags` as `aa` and `tc` booleans).
//! Time is Unix seconds with microseconds, as the real-time log's `timestamp` (in ms).
//! Malformed queries are never logged one by one (their sources are spoofable).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use hickory_proto::rr::{DNSClass, LowerName, Name, RecordType};

use super::{DEFAULT_QUEUE, LogSink, LogStats};
use crate::config::logs::{LogConfig, LogFormat};
use crate::dns::edns::{self, ClientSubnet};
use crate::dns::responder::Transport;
use crate::dns::snapshot::Snapshot;

/// Header, the longest name (255 bytes) and the question's type and class.
const HEAD_MAX: usize = 12 + 255 + 4;

/// One answered query as the request path hands it over: fixed size, no allocation.
pub struct QueryEntry {
    at: SystemTime,
    latency: Duration,
    peer: SocketAddr,
    transport: Transport,
    subnet: Option<ClientSubnet>,
    /// The whole response's length.
    size: u16,
    head_len: u16,
    /// The response's first bytes: header and question.
    head: [u8; HEAD_MAX],
}

/// The request path's end of the query log. Cloning shares it.
#[derive(Clone)]
pub struct QueryLog {
    sink: LogSink<QueryEntry>,
}

/// A query chosen for the log, timed from its arrival.
pub struct Sampled<'a> {
    log: &'a QueryLog,
    started: Instant,
}

impl QueryLog {
    /// The log `config` asks for, its writer spawned; `None` when off. Zones are named from
    /// `snapshot` as it is when a line is written. Must be called inside a tokio runtime.
    pub fn start(
        config: Option<&LogConfig>,
        snapshot: &Arc<ArcSwap<Snapshot>>,
    ) -> Option<QueryLog> {
        config.map(|config| QueryLog::with_queue(config, snapshot.clone(), DEFAULT_QUEUE))
    }

    /// [`QueryLog::start`] with `queue` entries of room.
    pub fn with_queue(
        config: &LogConfig,
        snapshot: Arc<ArcSwap<Snapshot>>,
        queue: usize,
    ) -> QueryLog {
        let json = config.format == LogFormat::Json;
        let sink = super::start("query log", config, queue, move |entry, out| {
            let line = Line::decode(entry, &snapshot.load());
            if json {
                line.json(out);
            } else {
                line.text(out);
            }
        });
        QueryLog { sink }
    }

    /// Whether this query is logged; if so, its clock starts.
    pub fn sample(&self) -> Option<Sampled<'_>> {
        self.sink.sampled().then(|| Sampled {
            log: self,
            started: Instant::now(),
        })
    }

    /// Lines written and dropped.
    pub fn stats(&self) -> Arc<LogStats> {
        self.sink.stats().clone()
    }
}

impl Sampled<'_> {
    /// Queues the entry of `query` from `peer`, answered with `response`.
    pub fn push(self, query: &[u8], peer: SocketAddr, transport: Transport, response: &[u8]) {
        let head_len = response.len().min(HEAD_MAX);
        let mut head = [0; HEAD_MAX];
        head[..head_len].copy_from_slice(&response[..head_len]);
        self.log.sink.push(QueryEntry {
            at: SystemTime::now(),
            latency: self.started.elapsed(),
            peer,
            transport,
            subnet: edns::client_subnet(query).ok().flatten(),
            size: u16::try_from(response.len()).unwrap_or(u16::MAX),
            head_len: head_len as u16,
            head,
        });
    }
}

/// An entry decoded for formatting.
struct Line<'a> {
    entry: &'a QueryEntry,
    /// Presentation form, escaped (`\DDD`) so it holds no space, quote or control byte.
    qname: String,
    qtype: String,
    qclass: String,
    rcode: String,
    answers: u16,
    aa: bool,
    tc: bool,
    zone: Option<String>,
}

impl<'a> Line<'a> {
    fn decode(entry: &'a QueryEntry, snapshot: &Snapshot) -> Line<'a> {
        let head = &entry.head[..usize::from(entry.head_len)];
        let byte = |i: usize| head.get(i).copied().unwrap_or(0);
        let word = |i: usize| u16::from_be_bytes([byte(i), byte(i + 1)]);
        let question = question(head);
        let zone = question
            .as_ref()
            .and_then(|(name, _, _)| Name::from_labels(name.iter().map(|l| &l[..])).ok())
            .and_then(|name| snapshot.catalog.find(&LowerName::new(&name)).cloned())
            .map(|zone| zone.origin.to_string());
        let (qname, qtype, qclass) = match question {
            Some((labels, qtype, qclass)) => (presentation(&labels), qtype, qclass),
            None => ("-".into(), 0, 0),
        };
        Line {
            entry,
            qname,
            qtype: type_name(qtype),
            qclass: class_name(qclass),
            rcode: rcode_name(byte(3) & 0x0f),
            answers: word(6),
            aa: byte(2) & 0x04 != 0,
            tc: byte(2) & 0x02 != 0,
            zone,
        }
    }

    fn time(&self) -> String {
        let since = self.entry.at.duration_since(UNIX_EPOCH).unwrap_or_default();
        format!("{}.{:06}", since.as_secs(), since.subsec_micros())
    }

    fn subnet(&self) -> Option<String> {
        self.entry
            .subnet
            .map(|s| format!("{}/{}", s.addr, s.source_prefix))
    }

    fn transport(&self) -> &'static str {
        match self.entry.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }

    fn text(&self, out: &mut Vec<u8>) {
        let flags = match (self.aa, self.tc) {
            (true, true) => "AA,TC",
            (true, false) => "AA",
            (false, true) => "TC",
            (false, false) => "-",
        };
        let _ = writeln!(
            out,
            "{} {} {} {} {} {} {} {} {} {} {} {} {}",
            self.time(),
            self.entry.peer,
            self.transport(),
            self.qname,
            self.qtype,
            self.qclass,
            self.rcode,
            self.answers,
            self.entry.size,
            flags,
            self.subnet().as_deref().unwrap_or("-"),
            self.zone.as_deref().unwrap_or("-"),
            self.entry.latency.as_micros(),
        );
    }

    fn json(&self, out: &mut Vec<u8>) {
        let quoted = |value: Option<&str>| {
            value.map_or_else(
                || "null".to_string(),
                |v| serde_json::Value::from(v).to_string(),
            )
        };
        let _ = writeln!(
            out,
            r#"{{"time":{},"client":"{}","transport":"{}","qname":{},"qtype":{},"qclass":{},"rcode":{},"answers":{},"size":{},"aa":{},"tc":{},"ecs":{},"zone":{},"latency_us":{}}}"#,
            self.time(),
            self.entry.peer,
            self.transport(),
            quoted(Some(&self.qname)),
            quoted(Some(&self.qtype)),
            quoted(Some(&self.qclass)),
            quoted(Some(&self.rcode)),
            self.answers,
            self.entry.size,
            self.aa,
            self.tc,
            quoted(self.subnet().as_deref()),
            quoted(self.zone.as_deref()),
            self.entry.latency.as_micros(),
        );
    }
}

/// The question's name (labels), type and class, when the header says there is one and it
/// reads (our responses never compress the question's name).
fn question(head: &[u8]) -> Option<(Vec<&[u8]>, u16, u16)> {
    if head.get(4..6)? != [0, 1] {
        return None;
    }
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let len = usize::from(*head.get(at)?);
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        labels.push(head.get(at + 1..at + 1 + len)?);
        at += 1 + len;
    }
    let fixed = head.get(at + 1..at + 5)?;
    let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
    Some((labels, qtype, qclass))
}

/// RFC 1035 §5.1 presentation form; bytes other than letters, digits, `-`, `_` and `*` are
/// written `\DDD`, so the name never splits a text line and reads back unambiguously.
fn presentation(labels: &[&[u8]]) -> String {
    if labels.is_empty() {
        return ".".into();
    }
    let mut name = String::new();
    for label in labels {
        for &b in *label {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'*') {
                name.push(char::from(b));
            } else {
                let _ = write!(name, "\\{b:03}");
            }
        }
        name.push('.');
    }
    name
}

/// The mnemonic, or RFC 3597's `TYPEnnn`.
fn type_name(code: u16) -> String {
    match RecordType::from(code) {
        RecordType::Unknown(_) => format!("TYPE{code}"),
        known => known.to_string(),
    }
}

/// `IN`, `CH`, ..., or RFC 3597's `CLASSnnn`.
fn class_name(code: u16) -> String {
    match DNSClass::from(code) {
        DNSClass::IN => "IN".into(),
        DNSClass::CH => "CH".into(),
        DNSClass::HS => "HS".into(),
        DNSClass::NONE => "NONE".into(),
        DNSClass::ANY => "ANY".into(),
        _ => format!("CLASS{code}"),
    }
}

/// The header's 4-bit RCODE as dig names it.
fn rcode_name(code: u8) -> String {
    let name = match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => return format!("RCODE{code}"),
    };
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_so_lines_stay_whole() {
        assert_eq!(
            presentation(&[b"www", b"home", b"example"]),
            "www.home.example."
        );
        assert_eq!(presentation(&[b"a b", b"x\"y"]), "a\\032b.x\\034y.");
        assert_eq!(presentation(&[]), ".");
    }

    #[test]
    fn unknown_types_classes_and_rcodes_use_generic_names() {
        assert_eq!(type_name(1), "A");
        assert_eq!(type_name(65280), "TYPE65280");
        assert_eq!(class_name(3), "CH");
        assert_eq!(class_name(300), "CLASS300");
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(9), "RCODE9");
    }
}
