//! Test harness: in-process servers on ephemeral ports, a hickory client for ordinary queries,
//! raw UDP/TCP exchanges for everything that needs control over the bytes, and a small wire
//! parser so assertions can look at exact owners, TTLs and RDATA bytes.

#![allow(dead_code)]

pub use crate::wire::*;

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
    let server = serve(server, dir);
    assert!(
        server.addrs.iter().all(|a| a.port() != 0),
        "bound addresses have ports: {:?}",
        server.addrs
    );
    server
}

/// Runs a bound server in this test's runtime; `dir` (its files) lives as long as it does.
pub fn serve(server: DnsServer, dir: TempDir) -> TestServer {
    let addrs = server.local_addrs().to_vec();
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
