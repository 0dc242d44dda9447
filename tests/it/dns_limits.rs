//! One client must not deny service to everyone: TCP connection caps per client and in all
//! (the longest-idle connection makes room), the same rules on the status listener, and
//! malformed-query floods counted in /metrics with a bounded number of log lines.
//!
//! Other clients are other loopback source addresses (127.0.0.2, 127.0.1.x), bound locally.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgewise::config::Config;
use edgewise::dns::{DnsServer, Timers};
use edgewise::health::status::StatusLimits;
use hickory_proto::rr::RecordType::A;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

use crate::fixture::main_config;
use crate::harness::rcode::FORMERR;
use crate::harness::{
    Reply, TestServer, assert_rcode, framed, load_ok, q, tcp_recv_within, write_files,
};

/// A wait long enough for any loopback answer, short enough to keep failures quick.
const ANSWER_WAIT: Duration = Duration::from_secs(2);

/// True when the server closed the connection (EOF or reset) within `wait`.
pub async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(wait, stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// A server with a status listener on an ephemeral port and the given timers; returns the
/// server and its status address.
async fn start_with(dns_keys: &str, timers: Timers) -> (TestServer, SocketAddr) {
    let config = main_config().replace(
        "[dns]\n",
        &format!("[dns]\nstatus_listen = [\"127.0.0.1:0\"]\n{dns_keys}"),
    );
    let (dir, path) = write_files(&config, &[]);
    let mut dns = load_ok(&path).dns.expect("the config has [dns]");
    dns.listen = vec!["127.0.0.1:0".parse().expect("an address")];
    dns.workers = 1;
    let mut server = DnsServer::bind(&dns).expect("bind on ephemeral ports");
    server.set_timers(timers);
    let addrs = server.local_addrs().to_vec();
    let status = server.status_addrs()[0];
    let token = CancellationToken::new();
    let handle = tokio::spawn(server.run(token.clone()));
    let server = TestServer {
        addrs,
        token,
        handle: Some(handle),
        dir,
    };
    (server, status)
}

/// A TCP connection to `addr` from the loopback address `source`.
pub async fn connect_from(source: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind((source, 0).into())
        .unwrap_or_else(|e| panic!("bind {source}: {e}"));
    tokio::time::timeout(ANSWER_WAIT, socket.connect(addr))
        .await
        .unwrap_or_else(|_| panic!("connect from {source} to {addr} timed out"))
        .unwrap_or_else(|e| panic!("connect from {source} to {addr}: {e}"))
}

/// Sends a query on `stream`; true when an answer comes back.
async fn answered(stream: &mut TcpStream) -> bool {
    // Writing may fail if the server has already closed the connection: not answered.
    if stream
        .write_all(&framed(&q("www.zone.test.", A).bytes()))
        .await
        .is_err()
    {
        return false;
    }
    tcp_recv_within(stream, ANSWER_WAIT).await.is_some()
}

/// `GET path` from the loopback address `source`: status code and body.
async fn get_from(source: Ipv4Addr, addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = connect_from(source, addr).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(ANSWER_WAIT, stream.read_to_end(&mut raw))
        .await
        .unwrap_or_else(|_| panic!("GET {path} from {source} timed out"))
        .expect("read the response");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, body.to_string())
}

// ------------------------------------------------------------------ DNS over TCP

#[test]
fn the_per_client_cap_defaults_well_below_the_global_limit_and_is_checked() {
    let (_dir, path) = write_files(&main_config(), &[]);
    let dns = load_ok(&path).dns.expect("the config has [dns]");
    assert_eq!(
        (dns.tcp_max_connections, dns.tcp_max_per_client),
        (1024, 32)
    );
    let config = main_config().replace("[dns]\n", "[dns]\ntcp_max_per_client = 0\n");
    let (_dir, path) = write_files(&config, &[]);
    let errors = Config::load(&path)
        .expect_err("a cap of 0 is refused")
        .to_string();
    assert!(
        errors.contains("edgewise.toml:")
            && errors.contains("dns.tcp_max_per_client: 0 is out of range"),
        "{errors}"
    );
}

#[tokio::test]
async fn a_client_past_its_connection_cap_is_closed_while_another_client_is_answered() {
    let (server, _) = start_with("tcp_max_per_client = 3\n", Timers::default()).await;
    let greedy = Ipv4Addr::new(127, 0, 0, 1);
    let mut held = Vec::new();
    for i in 0..3 {
        let mut stream = connect_from(greedy, server.addr()).await;
        assert!(answered(&mut stream).await, "connection {i} within the cap");
        held.push(stream);
    }
    for i in 0..3 {
        let mut extra = connect_from(greedy, server.addr()).await;
        assert!(
            closed_within(&mut extra, ANSWER_WAIT).await,
            "extra connection {i} past the cap must be closed"
        );
    }
    let mut other = connect_from(Ipv4Addr::new(127, 0, 0, 2), server.addr()).await;
    assert!(
        answered(&mut other).await,
        "another client is still answered"
    );
    for (i, stream) in held.iter_mut().enumerate() {
        assert!(answered(stream).await, "held connection {i} still served");
    }
}

#[tokio::test]
async fn at_the_global_limit_a_new_connection_evicts_the_longest_idle_one() {
    let (server, _) = start_with("tcp_max_connections = 2\n", Timers::default()).await;
    let client = Ipv4Addr::new(127, 0, 0, 1);
    let mut oldest = connect_from(client, server.addr()).await;
    assert!(answered(&mut oldest).await);
    let mut recent = connect_from(client, server.addr()).await;
    assert!(answered(&mut recent).await);
    // Used again, so `oldest` is now the one idle the longest.
    assert!(answered(&mut recent).await);
    let mut newcomer = connect_from(Ipv4Addr::new(127, 0, 0, 2), server.addr()).await;
    assert!(
        answered(&mut newcomer).await,
        "the newcomer is answered, not refused"
    );
    assert!(
        closed_within(&mut oldest, ANSWER_WAIT).await,
        "the longest-idle connection is closed to make room"
    );
    assert!(answered(&mut recent).await, "the more recent one stays");
    assert!(answered(&mut newcomer).await, "and so does the newcomer");
}

// ------------------------------------------------------------------ status listener

#[tokio::test]
async fn idle_sockets_do_not_keep_a_scrape_out_of_the_status_listener() {
    let (_server, status) = start_with("", Timers::default()).await;
    // 70 idle sockets from 70 addresses: more than the 64 slots, none over a per-client cap.
    let mut idle = Vec::new();
    for i in 1..=70u8 {
        idle.push(connect_from(Ipv4Addr::new(127, 0, 1, i), status).await);
    }
    let started = Instant::now();
    let (code, body) = get_from(Ipv4Addr::new(127, 0, 0, 2), status, "/metrics").await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("edgewise_dns_malformed_queries_total"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered at once, not after idle sockets timed out: {:?}",
        started.elapsed()
    );
    assert!(
        closed_within(&mut idle[0], ANSWER_WAIT).await,
        "the longest-idle socket made room"
    );
    // One client holding many sockets is capped as on DNS over TCP.
    let greedy = Ipv4Addr::new(127, 0, 0, 3);
    let limit = StatusLimits::default().admission.max_per_client;
    let mut held = Vec::new();
    for _ in 0..limit {
        held.push(connect_from(greedy, status).await);
    }
    let mut extra = connect_from(greedy, status).await;
    assert!(
        closed_within(&mut extra, ANSWER_WAIT).await,
        "a socket past the per-client cap is closed"
    );
}

#[tokio::test]
async fn idle_status_sockets_are_closed_after_their_lifetime() {
    let lifetime = Duration::from_millis(300);
    let timers = Timers {
        status: StatusLimits {
            lifetime,
            ..StatusLimits::default()
        },
        ..Timers::default()
    };
    let (_server, status) = start_with("", timers).await;
    let mut idle = connect_from(Ipv4Addr::LOCALHOST, status).await;
    let started = Instant::now();
    assert!(
        closed_within(&mut idle, Duration::from_secs(3)).await,
        "an idle status socket must be closed"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= lifetime - Duration::from_millis(50),
        "closed after {elapsed:?}, before the {lifetime:?} lifetime"
    );
    assert!(
        elapsed < Duration::from_secs(2),
        "closed only after {elapsed:?}"
    );
    // A prompt request is still answered.
    let (code, _) = get_from(Ipv4Addr::LOCALHOST, status, "/health-checks").await;
    assert_eq!(code, 200);
}

// ------------------------------------------------------------------ malformed queries

/// Log output captured from this test's thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("log buffer").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A query whose OPT record carries an option longer than the record: badly framed EDNS.
fn malformed_edns_query(id: u16) -> Vec<u8> {
    let mut bytes = q("www.zone.test.", A).edns(1232).id(id).bytes();
    let rdlength_at = bytes.len() - 2;
    // Option 10 (COOKIE) claims 8 bytes of data but only 4 follow.
    let option = [0, 10, 0, 8, 1, 2, 3, 4];
    bytes[rdlength_at..].copy_from_slice(&(option.len() as u16).to_be_bytes());
    bytes.extend_from_slice(&option);
    bytes
}

/// The count a summary line reports ("N malformed queries in the last ...").
fn summary_count(line: &str) -> Option<u64> {
    let (_, rest) = line.split_once("WARN")?;
    let rest = rest.split_once(": ").map_or(rest, |(_, r)| r).trim_start();
    let (count, tail) = rest.split_once(' ')?;
    tail.starts_with("malformed queries")
        .then(|| count.parse().ok())
        .flatten()
}

#[tokio::test]
async fn a_malformed_edns_flood_is_counted_in_metrics_and_logged_a_few_lines_at_most() {
    const FLOOD: u64 = 2_000;
    let interval = Duration::from_millis(200);
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    // The test runtime is single-threaded, so the server's tasks log through this too.
    let _guard = tracing::subscriber::set_default(subscriber);
    let timers = Timers {
        malformed_summary: interval,
        ..Timers::default()
    };
    let (server, status) = start_with("", timers).await;
    let started = Instant::now();
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("a UDP socket");
    let mut buf = vec![0u8; 4096];
    for id in 0..FLOOD as u16 {
        socket
            .send_to(&malformed_edns_query(id), server.addr())
            .await
            .expect("send");
        let (len, _) = tokio::time::timeout(ANSWER_WAIT, socket.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no reply to malformed query {id}"))
            .expect("receive");
        if id == 0 {
            let reply = Reply::new("udp", buf[..len].to_vec());
            assert_rcode(&reply, FORMERR);
        }
    }
    let (code, body) = get_from(Ipv4Addr::LOCALHOST, status, "/metrics").await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains(&format!(
            "edgewise_dns_malformed_queries_total{{reason=\"edns\"}} {FLOOD}\n"
        )),
        "every malformed query is counted:\n{body}"
    );
    // Wait (bounded) until the summaries account for the whole flood.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let logged: u64 = captured
            .lines()
            .iter()
            .filter_map(|l| summary_count(l))
            .sum();
        if logged == FLOOD {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "summaries count {logged} of {FLOOD}:\n{}",
            captured.lines().join("\n")
        );
        tokio::time::sleep(interval / 4).await;
    }
    let lines = captured.lines();
    let elapsed = started.elapsed();
    let summaries = lines.iter().filter(|l| summary_count(l).is_some()).count();
    let most = elapsed.as_millis() / interval.as_millis() + 1;
    assert!(
        summaries as u128 <= most,
        "{summaries} summary lines in {elapsed:?}: at most one per {interval:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("EDNS options")),
        "no line per packet from the DNS library:\n{}",
        lines.join("\n")
    );
    assert!(
        lines.len() < 20,
        "{} log lines for {FLOOD} malformed queries:\n{}",
        lines.len(),
        lines.join("\n")
    );
}
