//! Test harness: in-process servers on ephemeral ports, a hickory client for ordinary queries,
//! raw UDP/TCP exchanges for everything that needs control over the bytes, and a small wire
//! parser so assertions can look at exact owners, TTLs and RDATA bytes.

#![allow(dead_code)]

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use edgewise::config::Config;
use edgewise::dns::DnsServer;
use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{Edns, Message, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long any single receive may take before the test fails.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(3);
/// How long to wait when the pass condition is "no reply".
pub const SILENCE: Duration = Duration::from_millis(300);

// ------------------------------------------------------------------ files and config

/// Writes `edgewise.toml` (and any other files, paths relative to the folder) into a fresh
/// temporary folder. Returns the folder and the config path.
pub fn write_files(config: &str, files: &[(&str, &str)]) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (rel, text) in files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    let path = dir.path().join("edgewise.toml");
    std::fs::write(&path, config).unwrap();
    (dir, path)
}

/// Loads a config expected to be valid, panicking with every error otherwise.
pub fn load_ok(path: &Path) -> Config {
    match Config::load(path) {
        Ok(config) => config,
        Err(errors) => panic!("the test config should load, but:\n{errors}"),
    }
}

// ------------------------------------------------------------------ servers

/// A server running in this test's runtime; cancelled when dropped.
pub struct TestServer {
    pub addrs: Vec<SocketAddr>,
    pub token: CancellationToken,
    pub handle: Option<JoinHandle<()>>,
    pub dir: TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Starts a server on 127.0.0.1:0 for `config` (plus zone files beside it).
pub async fn start(config: &str, files: &[(&str, &str)]) -> TestServer {
    start_on(config, files, &["127.0.0.1:0"]).await
}

/// Starts a server listening on `listen` (ports 0) for `config`.
pub async fn start_on(config: &str, files: &[(&str, &str)], listen: &[&str]) -> TestServer {
    let (dir, path) = write_files(config, files);
    let mut dns = load_ok(&path)
        .dns
        .expect("the test config has a [dns] section");
    dns.listen = listen.iter().map(|a| a.parse().unwrap()).collect();
    dns.workers = 1;
    let server = DnsServer::bind(&dns).expect("bind on an ephemeral port");
    let addrs = server.local_addrs().to_vec();
    assert!(
        addrs.iter().all(|a| a.port() != 0),
        "bound addresses have ports: {addrs:?}"
    );
    let token = CancellationToken::new();
    let handle = tokio::spawn(server.run(token.clone()));
    TestServer {
        addrs,
        token,
        handle: Some(handle),
        dir,
    }
}

impl TestServer {
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// hickory client over UDP (EDNS on, as hickory sends it).
    pub async fn udp(&self, name: &str, rtype: RecordType) -> Reply {
        hickory_udp(self.addr(), name, rtype).await
    }

    /// hickory client over TCP.
    pub async fn tcp(&self, name: &str, rtype: RecordType) -> Reply {
        hickory_tcp(self.addr(), name, rtype).await
    }

    /// The same query through the hickory client over UDP and over TCP.
    pub async fn both(&self, name: &str, rtype: RecordType) -> [Reply; 2] {
        [self.udp(name, rtype).await, self.tcp(name, rtype).await]
    }

    /// A hand-built query over UDP; panics when no reply comes.
    pub async fn raw_udp(&self, q: &Q) -> Reply {
        let bytes = udp_exchange(self.addr(), &q.bytes())
            .await
            .unwrap_or_else(|| panic!("no UDP reply to {q}"));
        Reply::new("udp", bytes)
    }

    /// A hand-built query over a fresh TCP connection; panics when no reply comes.
    pub async fn raw_tcp(&self, q: &Q) -> Reply {
        let mut stream = tcp_connect(self.addr()).await;
        tcp_send(&mut stream, &q.bytes()).await;
        let bytes = tcp_recv(&mut stream)
            .await
            .unwrap_or_else(|| panic!("no TCP reply to {q}"));
        Reply::new("tcp", bytes)
    }

    /// A hand-built query over UDP and over TCP.
    pub async fn raw_both(&self, q: &Q) -> [Reply; 2] {
        [self.raw_udp(q).await, self.raw_tcp(q).await]
    }
}

// ------------------------------------------------------------------ hickory client

pub async fn hickory_udp(addr: SocketAddr, name: &str, rtype: RecordType) -> Reply {
    let stream = UdpClientStream::builder(addr, TokioRuntimeProvider::default())
        .with_timeout(Some(RECV_TIMEOUT))
        .build();
    let (mut client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let bg = tokio::spawn(bg);
    let response = client
        .query(Name::from_ascii(name).unwrap(), DNSClass::IN, rtype)
        .await;
    bg.abort();
    let response = response.unwrap_or_else(|e| panic!("UDP query {name} {rtype}: {e}"));
    Reply::new("udp", response.into_buffer())
}

pub async fn hickory_tcp(addr: SocketAddr, name: &str, rtype: RecordType) -> Reply {
    let (connect, sender) =
        TcpClientStream::new(addr, None, Some(RECV_TIMEOUT), TokioRuntimeProvider::new());
    let stream = connect
        .await
        .unwrap_or_else(|e| panic!("TCP connect to {addr}: {e}"));
    let (mut client, bg) =
        Client::<TokioRuntimeProvider>::with_timeout(stream, sender, RECV_TIMEOUT);
    let bg = tokio::spawn(bg);
    let response = client
        .query(Name::from_ascii(name).unwrap(), DNSClass::IN, rtype)
        .await;
    bg.abort();
    let response = response.unwrap_or_else(|e| panic!("TCP query {name} {rtype}: {e}"));
    Reply::new("tcp", response.into_buffer())
}

// ------------------------------------------------------------------ raw queries

/// A query under the test's control.
#[derive(Clone, Debug)]
pub struct Q {
    pub id: u16,
    pub name: String,
    pub rtype: RecordType,
    pub class: DNSClass,
    pub opcode: OpCode,
    pub edns: Option<Edns>,
}

/// A plain query (no EDNS, class IN, opcode QUERY).
pub fn q(name: &str, rtype: RecordType) -> Q {
    Q {
        id: 0x4d2e,
        name: name.to_string(),
        rtype,
        class: DNSClass::IN,
        opcode: OpCode::Query,
        edns: None,
    }
}

impl Q {
    pub fn id(mut self, id: u16) -> Q {
        self.id = id;
        self
    }
    pub fn class(mut self, class: DNSClass) -> Q {
        self.class = class;
        self
    }
    pub fn opcode(mut self, opcode: OpCode) -> Q {
        self.opcode = opcode;
        self
    }
    /// Adds OPT with this UDP payload size (version 0, DO clear).
    pub fn edns(mut self, payload: u16) -> Q {
        let mut edns = Edns::new();
        edns.set_max_payload(payload).set_version(0);
        self.edns = Some(edns);
        self
    }
    pub fn edns_version(mut self, version: u8) -> Q {
        self.edns.get_or_insert_with(Edns::new).set_version(version);
        self
    }
    pub fn dnssec_ok(mut self) -> Q {
        self.edns.get_or_insert_with(Edns::new).set_dnssec_ok(true);
        self
    }
    pub fn bytes(&self) -> Vec<u8> {
        let mut message = Message::query();
        message.metadata.id = self.id;
        message.metadata.op_code = self.opcode;
        let mut query = Query::query(Name::from_ascii(&self.name).unwrap(), self.rtype);
        query.set_query_class(self.class);
        message.add_query(query);
        if let Some(edns) = &self.edns {
            message.set_edns(edns.clone());
        }
        message.to_vec().expect("encode query")
    }
}

impl fmt::Display for Q {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} (id {}, {:?}, edns {})",
            self.name,
            self.class,
            self.rtype,
            self.id,
            self.opcode,
            self.edns.is_some()
        )
    }
}

/// Sends one datagram from a fresh socket and waits `RECV_TIMEOUT` for the reply.
pub async fn udp_exchange(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    udp_exchange_within(addr, bytes, RECV_TIMEOUT).await
}

pub async fn udp_exchange_within(
    addr: SocketAddr,
    bytes: &[u8],
    wait: Duration,
) -> Option<Vec<u8>> {
    let local: SocketAddr = if addr.is_ipv6() {
        (Ipv6Addr::LOCALHOST, 0).into()
    } else {
        (Ipv4Addr::LOCALHOST, 0).into()
    };
    let socket = UdpSocket::bind(local).await.unwrap();
    socket.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(wait, socket.recv_from(&mut buf)).await {
        Ok(Ok((len, _))) => Some(buf[..len].to_vec()),
        Ok(Err(e)) => panic!("UDP receive from {addr}: {e}"),
        Err(_) => None,
    }
}

pub async fn tcp_connect(addr: SocketAddr) -> TcpStream {
    tokio::time::timeout(RECV_TIMEOUT, TcpStream::connect(addr))
        .await
        .unwrap_or_else(|_| panic!("TCP connect to {addr} timed out"))
        .unwrap_or_else(|e| panic!("TCP connect to {addr}: {e}"))
}

/// Writes one length-prefixed message.
pub async fn tcp_send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(&framed(bytes)).await.expect("TCP write");
}

pub fn framed(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// Reads one length-prefixed message; `None` on EOF, reset or timeout.
pub async fn tcp_recv(stream: &mut TcpStream) -> Option<Vec<u8>> {
    tcp_recv_within(stream, RECV_TIMEOUT).await
}

pub async fn tcp_recv_within(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let read = async {
        let mut prefix = [0u8; 2];
        stream.read_exact(&mut prefix).await.ok()?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        stream.read_exact(&mut body).await.ok()?;
        Some(body)
    };
    tokio::time::timeout(wait, read).await.ok().flatten()
}

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
            "{} reply id={} rcode={} aa={} tc={} len={} q={:?}",
            self.via,
            self.id,
            self.rcode(),
            self.aa(),
            self.tc(),
            self.bytes.len(),
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
    pub const BADVERS: u16 = 16;
}
