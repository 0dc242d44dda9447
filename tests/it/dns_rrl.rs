//! Response rate limiting: a UDP flood for one name from one /24 gets about the configured
//! rate answered, half the rest as truncated slips and nothing for the others, counted in
//! /metrics; other names and prefixes, exempt clients and TCP are not limited, and nothing
//! is limited without `rrl`.
//!
//! Bounds on the answers allow for the credit that comes back while the flood lasts (rate ×
//! its duration, measured), so a slow machine widens them instead of failing the test.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use edgewise::dns::DnsServer;
use hickory_proto::rr::RecordType::A;
use tokio::net::UdpSocket;

use crate::fixture::main_config;
use crate::harness::{
    SILENCE, TestServer, load_ok, q, serve, tcp_connect, tcp_recv, tcp_send, write_files,
};
use crate::health_checks::status_get;

const RATE: usize = 10;
const FLOOD: usize = 200;

/// A server for `main_config()` with these extra `[dns]` lines; the server and its status
/// address.
async fn start(dns_keys: &str) -> (TestServer, SocketAddr) {
    let config = main_config().replace(
        "[dns]\n",
        &format!("[dns]\nstatus_listen = [\"127.0.0.1:0\"]\n{dns_keys}\n"),
    );
    let (dir, path) = write_files(&config, &[]);
    let mut dns = load_ok(&path).dns.expect("the config has [dns]");
    dns.listen = vec!["127.0.0.1:0".parse().expect("an address")];
    dns.workers = 1;
    let server = DnsServer::bind(&dns).expect("bind on ephemeral ports");
    let status = server.status_addrs()[0];
    (serve(server, dir), status)
}

const LIMITED: &str = "rrl = { responses_per_second = 10, slip = 2 }";

/// What came back from a flood.
#[derive(Debug)]
struct Flood {
    /// Full answers (TC clear).
    answered: usize,
    /// Truncated, record-less responses.
    slipped: usize,
    /// From the first query sent to the last response received.
    span: Duration,
}

impl Flood {
    /// The most answers a bucket full at the start can give over the flood: a second's worth,
    /// plus what comes back while it lasts, plus one tick's rounding.
    fn max_answered(&self) -> usize {
        RATE + (RATE as f64 * self.span.as_secs_f64()).ceil() as usize + 1
    }
}

/// Sends `count` queries for `name` from `source` as fast as the socket takes them, reading
/// responses as they come and until none has come for a while.
async fn flood(server: SocketAddr, source: Ipv4Addr, name: &str, count: usize) -> Flood {
    let socket = UdpSocket::bind((source, 0))
        .await
        .unwrap_or_else(|e| panic!("bind {source}: {e}"));
    let mut seen = vec![false; count];
    let (mut answered, mut slipped) = (0, 0);
    let mut buf = vec![0u8; 4096];
    let mut take = |bytes: &[u8]| {
        let id = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
        assert!(id < count && !seen[id], "one response per query (id {id})");
        seen[id] = true;
        let (tc, answers) = (
            bytes[2] & 0x02 != 0,
            u16::from_be_bytes([bytes[6], bytes[7]]),
        );
        match (tc, answers) {
            (false, n) if n > 0 => answered += 1,
            (true, 0) => {
                assert_eq!(
                    bytes.len(),
                    12 + name.len() + 1 + 4,
                    "a slip is header and question"
                );
                slipped += 1;
            }
            other => panic!("unexpected response (tc, answers) = {other:?}"),
        }
    };
    let start = Instant::now();
    let mut last = start;
    for id in 0..count {
        let query = q(name, A).id(id as u16).bytes();
        socket.send_to(&query, server).await.expect("send");
        // Drain as we go: the client's receive buffer is not the thing under test.
        while let Ok((len, _)) = socket.try_recv_from(&mut buf) {
            take(&buf[..len]);
            last = Instant::now();
        }
    }
    while let Ok(Ok((len, _))) = tokio::time::timeout(SILENCE, socket.recv_from(&mut buf)).await {
        take(&buf[..len]);
        last = Instant::now();
    }
    Flood {
        answered,
        slipped,
        span: last - start,
    }
}

/// `edgewise_dns_rrl_responses_total{action}` as scraped.
async fn limited_count(status: SocketAddr, action: &str) -> u64 {
    let (code, body) = status_get(status, "/metrics").await;
    assert_eq!(code, 200, "{body}");
    let series = format!("edgewise_dns_rrl_responses_total{{action=\"{action}\"}} ");
    body.lines()
        .find_map(|line| line.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in\n{body}"))
        .parse()
        .expect("a count")
}

#[tokio::test]
async fn a_flood_gets_the_rate_answered_and_half_the_rest_slipped_then_counted() {
    let (server, status) = start(LIMITED).await;
    let got = flood(server.addr(), Ipv4Addr::LOCALHOST, "www.zone.test.", FLOOD).await;
    assert!(
        (RATE..=got.max_answered()).contains(&got.answered),
        "{got:?}: expected {RATE} to {} answered",
        got.max_answered()
    );
    // One bucket counts the limited responses: every second one slips.
    let limited = FLOOD - got.answered;
    assert_eq!(got.slipped, limited / 2, "{got:?}");
    assert_eq!(limited_count(status, "slipped").await, got.slipped as u64);
    assert_eq!(
        limited_count(status, "dropped").await,
        (limited - got.slipped) as u64
    );
}

#[tokio::test]
async fn other_names_and_other_prefixes_keep_their_own_rate() {
    let (server, _status) = start(LIMITED).await;
    let flooded = flood(server.addr(), Ipv4Addr::LOCALHOST, "www.zone.test.", FLOOD).await;
    assert!(flooded.answered <= flooded.max_answered(), "{flooded:?}");
    let other_name = flood(server.addr(), Ipv4Addr::LOCALHOST, "ns1.zone.test.", 5).await;
    assert_eq!(
        (other_name.answered, other_name.slipped),
        (5, 0),
        "another name"
    );
    let other_prefix = flood(
        server.addr(),
        Ipv4Addr::new(127, 0, 1, 1),
        "www.zone.test.",
        5,
    )
    .await;
    assert_eq!(
        (other_prefix.answered, other_prefix.slipped),
        (5, 0),
        "another /24"
    );
}

#[tokio::test]
async fn exempt_clients_are_never_limited() {
    let (server, status) =
        start("rrl = { responses_per_second = 10, slip = 2, exempt = [\"127.0.0.0/8\"] }").await;
    let got = flood(server.addr(), Ipv4Addr::LOCALHOST, "www.zone.test.", FLOOD).await;
    assert_eq!((got.answered, got.slipped), (FLOOD, 0));
    assert_eq!(limited_count(status, "dropped").await, 0);
}

#[tokio::test]
async fn tcp_is_never_limited_even_when_udp_is() {
    let (server, _status) = start(LIMITED).await;
    let udp = flood(server.addr(), Ipv4Addr::LOCALHOST, "www.zone.test.", FLOOD).await;
    assert!(udp.answered < FLOOD, "{udp:?}");
    let mut stream = tcp_connect(server.addr()).await;
    for id in 0..50 {
        tcp_send(&mut stream, &q("www.zone.test.", A).id(id).bytes()).await;
    }
    for id in 0..50u16 {
        let reply = tcp_recv(&mut stream).await.expect("a TCP answer");
        assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), id);
        assert_eq!(reply[2] & 0x02, 0, "not truncated");
        assert!(
            u16::from_be_bytes([reply[6], reply[7]]) > 0,
            "with the answer"
        );
    }
}

#[tokio::test]
async fn nothing_is_limited_without_rrl() {
    let (server, status) = start("").await;
    let got = flood(server.addr(), Ipv4Addr::LOCALHOST, "www.zone.test.", FLOOD).await;
    assert_eq!((got.answered, got.slipped), (FLOOD, 0));
    assert_eq!(limited_count(status, "dropped").await, 0);
    assert_eq!(limited_count(status, "slipped").await, 0);
}
