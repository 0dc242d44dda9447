//! Route 53-style traffic routing end to end: weighted, failover, latency, geolocation, CIDR
//! and multivalue record sets answered over the wire, with EDNS Client Subnet (RFC 7871)
//! locating clients and echoed with the scope each decision holds for, health checks flipping
//! answers, and the config errors routing can produce.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use edgewise::config::{Config, ConfigError};
use edgewise::dns::DnsServer;
use hickory_proto::rr::RecordType;
use ipnet::IpNet;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::harness::{
    Reply, Rr, TestServer, a, aaaa, assert_rcode, assert_rrs, load_ok, name, q, rcode, rr, soa,
    tcp_connect, tcp_recv, tcp_send, txt, udp_exchange,
};
use crate::health_checks::{HttpEndpoint, check, check_row, wait_healthy};
use crate::mmdb::{Place, city_db};

/// How long a poll for an expected answer may take (checks probe every second).
pub const DEADLINE: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------ servers

/// A test server plus its status listener.
pub struct Routing {
    pub server: TestServer,
    pub status_addrs: Vec<SocketAddr>,
}

impl Routing {
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The first status (HTTP) address; the config must have `status_listen`.
    pub fn status(&self) -> SocketAddr {
        *self
            .status_addrs
            .first()
            .expect("the test config has status_listen")
    }

    /// A query with EDNS, and with a Client Subnet option when `subnet` is given, over UDP.
    pub async fn ask(&self, name: &str, rtype: RecordType, subnet: Option<&str>) -> Reply {
        let bytes = match subnet {
            Some(subnet) => ecs_query(name, rtype, &ecs(subnet)),
            None => q(name, rtype).edns(1232).bytes(),
        };
        self.send_udp(&bytes).await
    }

    /// Raw query bytes over UDP (retried once if a datagram is lost).
    pub async fn send_udp(&self, bytes: &[u8]) -> Reply {
        for _ in 0..2 {
            if let Some(reply) = udp_exchange(self.addr(), bytes).await {
                return Reply::new("udp", reply);
            }
        }
        panic!("no UDP reply from {}", self.addr());
    }

    /// Raw query bytes over a fresh TCP connection.
    pub async fn send_tcp(&self, bytes: &[u8]) -> Reply {
        let mut stream = tcp_connect(self.addr()).await;
        tcp_send(&mut stream, bytes).await;
        let reply = tcp_recv(&mut stream).await.expect("a TCP reply");
        Reply::new("tcp", reply)
    }
}

/// Writes `config` and `files` (binary allowed) to a temp folder, loads it, and serves it on
/// 127.0.0.1:0 with one worker; status listeners are bound as configured (use port 0).
pub async fn start_routing(config: &str, files: &[(&str, Vec<u8>)]) -> Routing {
    let dir = tempfile::tempdir().expect("temp dir");
    for (rel, bytes) in files {
        std::fs::write(dir.path().join(rel), bytes).expect("write a test file");
    }
    let path = dir.path().join("edgewise.toml");
    std::fs::write(&path, config).expect("write the config");
    let mut dns = load_ok(&path)
        .dns
        .expect("the test config has a [dns] section");
    dns.listen = vec!["127.0.0.1:0".parse().unwrap()];
    dns.workers = 1;
    let server = DnsServer::bind(&dns).expect("bind on ephemeral ports");
    let addrs = server.local_addrs().to_vec();
    let status_addrs = server.status_addrs().to_vec();
    let token = CancellationToken::new();
    let handle = tokio::spawn(server.run(token.clone()));
    Routing {
        server: TestServer {
            addrs,
            token,
            handle: Some(handle),
            dir,
        },
        status_addrs,
    }
}

// ------------------------------------------------------------------ config pieces

/// The served zone: `route.test`, SOA TTL 600 and MINIMUM 60 (negative answers: TTL 60).
pub const APEX: &str = "route.test.";

pub fn zone_soa() -> Rr {
    rr(
        APEX,
        RecordType::SOA,
        60,
        soa(
            "ns1.route.test.",
            "hostmaster.route.test.",
            [1, 3600, 900, 1_209_600, 60],
        ),
    )
}

/// A config: `top` (geo, checks, regions) before `[dns]`, `dns_extra` inside `[dns]` (keys
/// first, then `[[dns.cidr_collections]]`), and the zone's records (inline tables).
pub fn route_config(top: &str, dns_extra: &str, records: &[String]) -> String {
    let mut all = vec![
        r#"{ name = "@", type = "NS", values = ["ns1.route.test."] }"#.to_string(),
        r#"{ name = "ns1", type = "A", values = ["192.0.2.53"] }"#.to_string(),
    ];
    all.extend_from_slice(records);
    format!(
        r#"{top}
[dns]
listen = ["127.0.0.1:0"]
status_listen = ["127.0.0.1:0"]
{dns_extra}

[[dns.zones]]
name = "route.test"
ttl = 300
soa = {{ mname = "ns1.route.test.", rname = "hostmaster.route.test.", serial = 1, refresh = "1h", retry = "15m", expire = "14d", minimum = "60s", ttl = 600 }}
records = [
    {}
]
"#,
        all.join(",\n    ")
    )
}

/// One routed record set as an inline table. `rule` is the routing field, e.g. `weight = 70`.
pub fn routed(
    name: &str,
    rtype: &str,
    ttl: u32,
    set_id: &str,
    rule: &str,
    values: &[&str],
    health_check: Option<&str>,
) -> String {
    let values: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    let check = health_check.map_or(String::new(), |c| format!(", health_check = \"{c}\""));
    format!(
        r#"{{ name = "{name}", type = "{rtype}", ttl = {ttl}, set_id = "{set_id}", {rule}, values = [{}]{check} }}"#,
        values.join(", ")
    )
}

/// A plain record set as an inline table.
pub fn plain(name: &str, rtype: &str, ttl: u32, values: &[&str]) -> String {
    let values: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    format!(
        r#"{{ name = "{name}", type = "{rtype}", ttl = {ttl}, values = [{}] }}"#,
        values.join(", ")
    )
}

/// A `[[geo.networks]]` entry.
pub fn geo_network(cidr: &str, fields: &str) -> String {
    format!("[[geo.networks]]\ncidr = \"{cidr}\"\n{fields}\n\n")
}

// ------------------------------------------------------------------ EDNS Client Subnet

/// The ECS option data for `subnet` ("a.b.c.d/n" or "x::/n"): family, source prefix, scope 0,
/// and the address cut to the bytes the prefix needs (RFC 7871 §6).
pub fn ecs(subnet: &str) -> Vec<u8> {
    let net: IpNet = subnet
        .parse()
        .unwrap_or_else(|e| panic!("{subnet} is not a subnet: {e}"));
    let (family, octets): (u16, Vec<u8>) = match net.addr() {
        IpAddr::V4(v4) => (1, v4.octets().to_vec()),
        IpAddr::V6(v6) => (2, v6.octets().to_vec()),
    };
    let prefix = net.prefix_len();
    let mut out = family.to_be_bytes().to_vec();
    out.extend([prefix, 0]);
    out.extend_from_slice(&octets[..usize::from(prefix).div_ceil(8)]);
    out
}

/// What a reply should echo for `subnet`: the same option with `scope`.
pub fn ecs_echo(subnet: &str, scope: u8) -> Vec<u8> {
    let mut out = ecs(subnet);
    out[3] = scope;
    out
}

/// A query with EDNS (payload 1232) whose OPT carries an ECS option with `data` as is.
pub fn ecs_query(name: &str, rtype: RecordType, data: &[u8]) -> Vec<u8> {
    with_edns_options(q(name, rtype).edns(1232).bytes(), &[(8, data.to_vec())])
}

/// Appends EDNS options to the OPT record that ends `query` (as the harness encodes it).
pub fn with_edns_options(mut query: Vec<u8>, options: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let n = query.len();
    assert!(
        n >= 23 && query[n - 11..n - 8] == [0, 0, 41] && query[n - 2..] == [0, 0],
        "the query ends with an empty OPT record: {query:02x?}"
    );
    let mut rdata = Vec::new();
    for (code, data) in options {
        rdata.extend_from_slice(&code.to_be_bytes());
        rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
        rdata.extend_from_slice(data);
    }
    query[n - 2..].copy_from_slice(&(rdata.len() as u16).to_be_bytes());
    query.extend(rdata);
    query
}

/// The offset just past the (possibly compressed) name at `at`.
fn skip_name(b: &[u8], mut at: usize) -> usize {
    loop {
        let len = b[at];
        if len & 0xc0 == 0xc0 {
            return at + 2;
        }
        if len == 0 {
            return at + 1;
        }
        at += 1 + usize::from(len);
    }
}

/// The EDNS options of a reply's OPT record (`None`: no OPT at all).
pub fn reply_options(reply: &Reply) -> Option<Vec<(u16, Vec<u8>)>> {
    let b = &reply.bytes;
    let count = |at: usize| usize::from(u16::from_be_bytes([b[at], b[at + 1]]));
    let mut at = 12;
    for _ in 0..count(4) {
        at = skip_name(b, at) + 4;
    }
    let records = count(6) + count(8) + count(10);
    for _ in 0..records {
        let next = skip_name(b, at);
        let rtype = count(next);
        let len = count(next + 8);
        let rdata = &b[next + 10..next + 10 + len];
        if rtype == 41 {
            let mut options = Vec::new();
            let mut rest = rdata;
            while rest.len() >= 4 {
                let code = u16::from_be_bytes([rest[0], rest[1]]);
                let olen = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
                options.push((code, rest[4..4 + olen].to_vec()));
                rest = &rest[4 + olen..];
            }
            return Some(options);
        }
        at = next + 10 + len;
    }
    None
}

/// The ECS option data of a reply, if it has one.
pub fn reply_ecs(reply: &Reply) -> Option<Vec<u8>> {
    reply_options(reply)?
        .into_iter()
        .find(|(code, _)| *code == 8)
        .map(|(_, data)| data)
}

#[track_caller]
pub fn assert_ecs(reply: &Reply, subnet: &str, scope: u8) {
    assert_eq!(
        reply_ecs(reply),
        Some(ecs_echo(subnet, scope)),
        "ECS echo for {subnet} with scope {scope} over {}; whole reply:\n{reply:?}",
        reply.via
    );
}

// ------------------------------------------------------------------ reading answers

/// The A and AAAA addresses of the answer section, in order.
pub fn ipv4s(reply: &Reply) -> Vec<String> {
    reply
        .answer
        .iter()
        .filter_map(|rr| match rr.rdata.len() {
            4 if rr.rtype == 1 => {
                Some(Ipv4Addr::from(<[u8; 4]>::try_from(&rr.rdata[..]).unwrap()).to_string())
            }
            16 if rr.rtype == 28 => {
                Some(Ipv6Addr::from(<[u8; 16]>::try_from(&rr.rdata[..]).unwrap()).to_string())
            }
            _ => None,
        })
        .collect()
}

/// Asserts a positive answer holding exactly `rrs`.
#[track_caller]
pub fn assert_answer(reply: &Reply, rrs: &[Rr]) {
    assert_rcode(reply, rcode::NOERROR);
    assert!(reply.aa(), "authoritative; whole reply:\n{reply:?}");
    assert_rrs(reply, &reply.answer, rrs, "answer");
}

/// Asserts NODATA: NOERROR, AA, no answer, the zone's SOA (negative TTL) in authority.
#[track_caller]
pub fn assert_nodata(reply: &Reply) {
    assert_rcode(reply, rcode::NOERROR);
    assert!(reply.aa(), "authoritative; whole reply:\n{reply:?}");
    assert_rrs(reply, &reply.answer, &[], "answer");
    assert_rrs(reply, &reply.authority, &[zone_soa()], "authority");
}

/// An A record in the zone.
pub fn a_rr(owner: &str, ttl: u32, addr: &str) -> Rr {
    rr(owner, RecordType::A, ttl, a(addr))
}

/// Polls `attempt` every 100 ms until it succeeds, panicking with its last complaint after
/// [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(last) if tokio::time::Instant::now() >= deadline => {
                panic!("gave up after {DEADLINE:?} waiting for {what}; last seen:\n{last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Polls until the answer's addresses (order ignored) are exactly `want`; returns that reply.
pub async fn wait_for_answer(
    routing: &Routing,
    name: &str,
    rtype: RecordType,
    subnet: Option<&str>,
    want: &[&str],
) -> Reply {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    eventually(
        &format!("{name} {rtype} (subnet {subnet:?}) → {want:?}"),
        || async {
            let reply = routing.ask(name, rtype, subnet).await;
            let mut got = ipv4s(&reply);
            got.sort();
            if got == want && reply.rcode() == rcode::NOERROR {
                Ok(reply)
            } else {
                Err(format!("{reply:?}"))
            }
        },
    )
    .await
}

/// Sends `total` copies of `query` over UDP, 64 in flight, and counts the answers by their
/// addresses (joined with spaces). Every reply must be NOERROR with exactly one A record of
/// TTL `ttl`.
async fn tally(
    addr: SocketAddr,
    query: Vec<u8>,
    total: usize,
    ttl: u32,
) -> BTreeMap<String, usize> {
    const IN_FLIGHT: usize = 64;
    let mut tasks = JoinSet::new();
    for worker in 0..IN_FLIGHT {
        let share = total / IN_FLIGHT + usize::from(worker < total % IN_FLIGHT);
        let query = query.clone();
        tasks.spawn(async move {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for _ in 0..share {
                let mut bytes = None;
                for _ in 0..3 {
                    bytes = udp_exchange(addr, &query).await;
                    if bytes.is_some() {
                        break;
                    }
                }
                let reply = Reply::new("udp", bytes.expect("a UDP reply within 3 tries"));
                assert_rcode(&reply, rcode::NOERROR);
                assert_eq!(reply.answer.len(), 1, "one record per answer: {reply:?}");
                assert_eq!(reply.answer[0].ttl, ttl, "the set's TTL: {reply:?}");
                *counts.entry(ipv4s(&reply).join(" ")).or_default() += 1;
            }
            counts
        });
    }
    let mut counts = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        for (answer, n) in done.expect("a query worker") {
            *counts.entry(answer).or_default() += n;
        }
    }
    counts
}

/// Pearson's chi-square statistic of `observed` against `expected` probabilities.
fn chi_square(observed: &[usize], expected: &[f64]) -> f64 {
    let total: usize = observed.iter().sum();
    observed
        .iter()
        .zip(expected)
        .map(|(&o, &p)| {
            let e = p * total as f64;
            (o as f64 - e).powi(2) / e
        })
        .sum()
}

/// χ² with 2 degrees of freedom exceeds this with probability e^(-x/2) = 1e-6.
const CHI2_DF2_P1E6: f64 = 27.63;

// ------------------------------------------------------------------ weighted

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_answers_follow_70_20_10_and_never_return_a_zero_weight_set() {
    let records = [
        routed("w", "A", 30, "a", "weight = 70", &["192.0.2.71"], None),
        routed("w", "A", 30, "b", "weight = 20", &["192.0.2.72"], None),
        routed("w", "A", 30, "c", "weight = 10", &["192.0.2.73"], None),
        routed("w", "A", 30, "z", "weight = 0", &["192.0.2.70"], None),
    ];
    let routing = start_routing(&route_config("", "", &records), &[]).await;
    const N: usize = 20_000;
    let started = std::time::Instant::now();
    let counts = tally(
        routing.addr(),
        q("w.route.test.", RecordType::A).bytes(),
        N,
        30,
    )
    .await;
    let elapsed = started.elapsed();
    let observed: Vec<usize> = ["192.0.2.71", "192.0.2.72", "192.0.2.73"]
        .iter()
        .map(|k| counts.get(*k).copied().unwrap_or(0))
        .collect();
    assert_eq!(
        observed.iter().sum::<usize>(),
        N,
        "only the non-zero sets answer, the weight-0 set never: {counts:?}"
    );
    let chi2 = chi_square(&observed, &[0.7, 0.2, 0.1]);
    assert!(
        chi2 < CHI2_DF2_P1E6,
        "70/20/10 expected, got {counts:?} (chi² = {chi2:.2})"
    );
    assert!(
        elapsed < Duration::from_secs(20),
        "{N} queries took {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_sets_that_all_weigh_zero_are_chosen_about_equally() {
    let records = [
        routed("w", "A", 31, "a", "weight = 0", &["192.0.2.81"], None),
        routed("w", "A", 31, "b", "weight = 0", &["192.0.2.82"], None),
        routed("w", "A", 31, "c", "weight = 0", &["192.0.2.83"], None),
    ];
    let routing = start_routing(&route_config("", "", &records), &[]).await;
    const N: usize = 6_000;
    let counts = tally(
        routing.addr(),
        q("w.route.test.", RecordType::A).bytes(),
        N,
        31,
    )
    .await;
    let observed: Vec<usize> = ["192.0.2.81", "192.0.2.82", "192.0.2.83"]
        .iter()
        .map(|k| counts.get(*k).copied().unwrap_or(0))
        .collect();
    assert_eq!(observed.iter().sum::<usize>(), N, "{counts:?}");
    let chi2 = chi_square(&observed, &[1.0 / 3.0; 3]);
    assert!(
        chi2 < CHI2_DF2_P1E6,
        "equal shares expected, got {counts:?} (chi² = {chi2:.2})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_falls_back_to_zero_weight_sets_when_the_others_fail_and_to_all_when_everything_fails()
 {
    let web_a = HttpEndpoint::start(200, "a").await;
    let web_b = HttpEndpoint::start(200, "b").await;
    let web_z = HttpEndpoint::start(200, "z").await;
    let checks = [
        check("ha", "http", &web_a.url(), ""),
        check("hb", "http", &web_b.url(), ""),
        check("hz", "http", &web_z.url(), ""),
    ]
    .concat();
    let records = [
        routed("w", "A", 30, "a", "weight = 3", &["192.0.2.91"], Some("ha")),
        routed("w", "A", 30, "b", "weight = 1", &["192.0.2.92"], Some("hb")),
        routed("w", "A", 30, "z", "weight = 0", &["192.0.2.90"], Some("hz")),
    ];
    let routing = start_routing(&route_config(&checks, "", &records), &[]).await;
    let sample = |n: usize| {
        let routing = &routing;
        async move {
            let mut seen = BTreeSet::new();
            for _ in 0..n {
                let reply = routing.ask("w.route.test.", RecordType::A, None).await;
                assert_rcode(&reply, rcode::NOERROR);
                assert_eq!(reply.answer.len(), 1, "never empty: {reply:?}");
                seen.insert(ipv4s(&reply).join(" "));
            }
            seen
        }
    };
    // All healthy: the zero-weight set never answers.
    let seen = sample(200).await;
    assert_eq!(
        seen,
        BTreeSet::from(["192.0.2.91".to_string(), "192.0.2.92".to_string()]),
        "200 answers from the weight 3 and weight 1 sets"
    );

    // One non-zero set down: only the other.
    web_a.set_status(500);
    wait_healthy(&routing, "ha", false).await;
    let seen = sample(50).await;
    assert_eq!(seen, BTreeSet::from(["192.0.2.92".to_string()]));

    // Every non-zero set down: the healthy zero-weight set answers.
    web_b.set_status(500);
    wait_healthy(&routing, "hb", false).await;
    let seen = sample(50).await;
    assert_eq!(seen, BTreeSet::from(["192.0.2.90".to_string()]));

    // Everything down: answered as if all were healthy (by weight, so never the zero set).
    web_z.set_status(500);
    wait_healthy(&routing, "hz", false).await;
    assert_eq!(check_row(&routing, "ha").await["healthy"], false);
    assert_eq!(check_row(&routing, "hb").await["healthy"], false);
    let seen = sample(200).await;
    assert_eq!(
        seen,
        BTreeSet::from(["192.0.2.91".to_string(), "192.0.2.92".to_string()]),
        "all unhealthy → weights as if all were healthy"
    );
}

// ------------------------------------------------------------------ failover

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_answers_the_primary_while_healthy_the_secondary_when_it_fails_and_the_primary_when_both_fail()
 {
    let primary = HttpEndpoint::start(200, "primary").await;
    let secondary = HttpEndpoint::start(200, "secondary").await;
    let checks = [
        check("hp", "http", &primary.url(), ""),
        check("hs", "http", &secondary.url(), ""),
    ]
    .concat();
    let records = [
        routed(
            "fo",
            "A",
            20,
            "main",
            r#"failover = "primary""#,
            &["192.0.2.1"],
            Some("hp"),
        ),
        routed(
            "fo",
            "A",
            25,
            "backup",
            r#"failover = "SECONDARY""#,
            &["192.0.2.2"],
            Some("hs"),
        ),
        // the same primary check, with a secondary that has none
        routed(
            "fo2",
            "A",
            20,
            "main",
            r#"failover = "primary""#,
            &["198.51.100.1"],
            Some("hp"),
        ),
        routed(
            "fo2",
            "A",
            25,
            "backup",
            r#"failover = "secondary""#,
            &["198.51.100.2"],
            None,
        ),
    ];
    let routing = start_routing(&route_config(&checks, "", &records), &[]).await;
    let fo = "fo.route.test.";
    let fo2 = "fo2.route.test.";

    for reply in [
        routing.ask(fo, RecordType::A, None).await,
        routing.send_tcp(&q(fo, RecordType::A).bytes()).await,
    ] {
        assert_answer(&reply, &[a_rr(fo, 20, "192.0.2.1")]);
    }
    assert_answer(
        &routing.ask(fo2, RecordType::A, None).await,
        &[a_rr(fo2, 20, "198.51.100.1")],
    );

    // The primary's server answers 503: the secondary, with its own TTL.
    primary.set_status(503);
    let reply = wait_for_answer(&routing, fo, RecordType::A, None, &["192.0.2.2"]).await;
    assert_answer(&reply, &[a_rr(fo, 25, "192.0.2.2")]);
    let reply = wait_for_answer(&routing, fo2, RecordType::A, None, &["198.51.100.2"]).await;
    assert_answer(&reply, &[a_rr(fo2, 25, "198.51.100.2")]);

    // Restored: the primary again.
    primary.set_status(200);
    wait_for_answer(&routing, fo, RecordType::A, None, &["192.0.2.1"]).await;
    wait_for_answer(&routing, fo2, RecordType::A, None, &["198.51.100.1"]).await;

    // Both down: the primary (never an empty answer); the unchecked secondary still serves fo2.
    secondary.set_status(503);
    primary.set_status(503);
    wait_for_answer(&routing, fo2, RecordType::A, None, &["198.51.100.2"]).await;
    let reply = wait_for_answer(&routing, fo, RecordType::A, None, &["192.0.2.1"]).await;
    assert_answer(&reply, &[a_rr(fo, 20, "192.0.2.1")]);
    for _ in 0..20 {
        let reply = routing.ask(fo, RecordType::A, None).await;
        assert_answer(&reply, &[a_rr(fo, 20, "192.0.2.1")]);
    }

    // A primary whose server is gone entirely (connection refused) counts as down too.
    secondary.set_status(200);
    wait_for_answer(&routing, fo, RecordType::A, None, &["192.0.2.2"]).await;
    primary.set_status(200);
    wait_for_answer(&routing, fo, RecordType::A, None, &["192.0.2.1"]).await;
    drop(primary);
    wait_for_answer(&routing, fo, RecordType::A, None, &["192.0.2.2"]).await;
}

// ------------------------------------------------------------------ latency

pub const REGIONS: &str = r#"
[[regions]]
id = "seoul"
latitude = 37.56
longitude = 126.97

[[regions]]
id = "frankfurt"
latitude = 50.11
longitude = 8.68

[[regions]]
id = "virginia"
latitude = 38.9
longitude = -77.04
"#;

fn latency_records(frankfurt_check: Option<&str>) -> Vec<String> {
    vec![
        routed(
            "lat",
            "A",
            40,
            "kr",
            r#"region = "seoul""#,
            &["192.0.2.201"],
            None,
        ),
        routed(
            "lat",
            "A",
            40,
            "de",
            r#"region = "frankfurt""#,
            &["192.0.2.202"],
            frankfurt_check,
        ),
        routed(
            "lat",
            "A",
            40,
            "us",
            r#"region = "virginia""#,
            &["192.0.2.203"],
            None,
        ),
    ]
}

/// Client networks placed by `[[geo.networks]]`: Paris, Tokyo, New York, and one with a
/// country but no coordinates.
pub fn latency_networks() -> String {
    [
        geo_network(
            "192.168.1.0/24",
            "country = \"FR\"\nlatitude = 48.86\nlongitude = 2.35",
        ),
        geo_network(
            "10.0.0.0/24",
            "country = \"JP\"\nlatitude = 35.68\nlongitude = 139.69",
        ),
        geo_network(
            "172.16.0.0/24",
            "country = \"US\"\nlatitude = 40.71\nlongitude = -74.0",
        ),
        geo_network("10.9.0.0/16", "country = \"JP\""),
    ]
    .concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_answers_the_region_nearest_to_an_ecs_subnet_located_by_geo_networks() {
    let top = format!("{}{REGIONS}", latency_networks());
    let routing = start_routing(&route_config(&top, "", &latency_records(None)), &[]).await;
    let name = "lat.route.test.";
    for (subnet, want, scope) in [
        ("192.168.1.0/24", "192.0.2.202", 24), // Paris → Frankfurt
        ("10.0.0.0/24", "192.0.2.201", 24),    // Tokyo → Seoul
        ("172.16.0.0/24", "192.0.2.203", 24),  // New York → Virginia
        ("192.168.1.128/25", "192.0.2.202", 24),
    ] {
        let reply = routing.ask(name, RecordType::A, Some(subnet)).await;
        assert_answer(&reply, &[a_rr(name, 40, want)]);
        assert_ecs(&reply, subnet, scope);
    }
    // No coordinates known (a located network without them, an unknown network, or the
    // source address 127.0.0.1 without ECS): the first region in [[regions]] order.
    for subnet in [Some("10.9.1.0/24"), Some("203.0.113.0/24"), None] {
        let reply = routing.ask(name, RecordType::A, subnet).await;
        assert_answer(&reply, &[a_rr(name, 40, "192.0.2.201")]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_answers_the_region_nearest_to_a_client_located_by_a_city_database() {
    let db = city_db(&[
        (
            "198.51.100.0/24",
            Place::country("EU", "DE").at(52.52, 13.40),
        ), // Berlin
        (
            "2001:db8:5::/48",
            Place::country("AS", "KR").at(35.18, 129.08),
        ), // Busan
        ("203.0.113.0/24", Place::country("NA", "US").at(38.9, -77.0)), // Washington
        ("192.0.2.0/24", Place::country("EU", "FR")),                   // no coordinates
    ]);
    let top = format!("[geo]\ncity_db = \"city.mmdb\"\n{REGIONS}");
    let routing = start_routing(
        &route_config(&top, "", &latency_records(None)),
        &[("city.mmdb", db)],
    )
    .await;
    let name = "lat.route.test.";
    for (subnet, want, scope) in [
        ("198.51.100.0/24", "192.0.2.202", 24),
        ("2001:db8:5::/56", "192.0.2.201", 48),
        ("203.0.113.0/24", "192.0.2.203", 24),
    ] {
        let reply = routing.ask(name, RecordType::A, Some(subnet)).await;
        assert_answer(&reply, &[a_rr(name, 40, want)]);
        assert_ecs(&reply, subnet, scope);
    }
    for subnet in [Some("192.0.2.0/24"), Some("233.252.0.0/24"), None] {
        let reply = routing.ask(name, RecordType::A, subnet).await;
        assert_answer(&reply, &[a_rr(name, 40, "192.0.2.201")]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_without_a_client_location_answers_the_first_region_in_config_order() {
    let reordered = r#"
[[regions]]
id = "virginia"
latitude = 38.9
longitude = -77.04

[[regions]]
id = "frankfurt"
latitude = 50.11
longitude = 8.68

[[regions]]
id = "seoul"
latitude = 37.56
longitude = 126.97
"#;
    let top = format!("{}{reordered}", latency_networks());
    let routing = start_routing(&route_config(&top, "", &latency_records(None)), &[]).await;
    let name = "lat.route.test.";
    for subnet in [Some("10.9.1.0/24"), Some("203.0.113.0/24"), None] {
        let reply = routing.ask(name, RecordType::A, subnet).await;
        assert_answer(&reply, &[a_rr(name, 40, "192.0.2.203")]);
    }
    // located clients still get the nearest region
    let reply = routing.ask(name, RecordType::A, Some("10.0.0.0/24")).await;
    assert_answer(&reply, &[a_rr(name, 40, "192.0.2.201")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_skips_an_unhealthy_nearest_region_for_the_next_nearest() {
    let web = HttpEndpoint::start(200, "ok").await;
    let top = format!(
        "{}{REGIONS}{}",
        latency_networks(),
        check("fra", "http", &web.url(), "")
    );
    let routing = start_routing(&route_config(&top, "", &latency_records(Some("fra"))), &[]).await;
    let name = "lat.route.test.";
    let paris = Some("192.168.1.0/24");
    let reply = routing.ask(name, RecordType::A, paris).await;
    assert_answer(&reply, &[a_rr(name, 40, "192.0.2.202")]);

    web.set_status(500);
    // Paris: Virginia (about 6,200 km) is nearer than Seoul (about 9,000 km), and Seoul is
    // first in config order, so this is "next nearest", not "first".
    let reply = wait_for_answer(&routing, name, RecordType::A, paris, &["192.0.2.203"]).await;
    assert_answer(&reply, &[a_rr(name, 40, "192.0.2.203")]);
    assert_ecs(&reply, "192.168.1.0/24", 24);
    // Clients nearer elsewhere are unaffected.
    let reply = routing.ask(name, RecordType::A, Some("10.0.0.0/24")).await;
    assert_answer(&reply, &[a_rr(name, 40, "192.0.2.201")]);

    web.set_status(200);
    wait_for_answer(&routing, name, RecordType::A, paris, &["192.0.2.202"]).await;
}

// ------------------------------------------------------------------ geolocation

/// Networks of the generated geolocation database, IPv4 and IPv6.
fn geo_db() -> Vec<u8> {
    city_db(&[
        (
            "203.0.113.0/24",
            Place::subdivision("EU", "DE", "HE").at(50.1, 8.6),
        ),
        ("198.51.100.0/24", Place::subdivision("EU", "DE", "BY")),
        ("192.0.2.0/24", Place::country("EU", "FR")),
        ("198.18.0.0/24", Place::country("OC", "AU")),
        ("2001:db8:1::/48", Place::subdivision("EU", "DE", "HE")),
        ("2001:db8:2::/48", Place::country("AS", "KR")),
        ("2001:db8:3::/48", Place::subdivision("NA", "US", "CA")),
    ])
}

/// A `geo` A set (TTL 50, no health check) answering `ip` to viewers that `rule` matches;
/// the geolocation and client-subnet servers share them.
fn geo_set(set_id: &str, rule: &str, ip: &str) -> String {
    routed("geo", "A", 50, set_id, rule, &[ip], None)
}

fn geo_records(checks: [Option<&str>; 2]) -> Vec<String> {
    vec![
        routed(
            "geo",
            "A",
            50,
            "hesse",
            r#"geo = { country = "de", subdivision = "he" }"#,
            &["192.0.2.101"],
            checks[0],
        ),
        routed(
            "geo",
            "A",
            50,
            "germany",
            r#"geo = { country = "DE" }"#,
            &["192.0.2.102"],
            checks[1],
        ),
        geo_set("europe", r#"geo = { continent = "EU" }"#, "192.0.2.103"),
        geo_set("korea", r#"geo = { country = "KR" }"#, "192.0.2.104"),
        geo_set("rest", r#"geo = { country = "*" }"#, "192.0.2.109"),
        // no default
        routed(
            "nodef",
            "A",
            50,
            "germany",
            r#"geo = { country = "DE" }"#,
            &["192.0.2.112"],
            None,
        ),
        routed(
            "nodef",
            "A",
            50,
            "europe",
            r#"geo = { continent = "EU" }"#,
            &["192.0.2.113"],
            None,
        ),
    ]
}

async fn geo_server(top: &str, checks: [Option<&str>; 2]) -> Routing {
    let top = format!("[geo]\ncity_db = \"geo.mmdb\"\n{top}");
    start_routing(
        &route_config(&top, "", &geo_records(checks)),
        &[("geo.mmdb", geo_db())],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geolocation_prefers_subdivision_over_country_over_continent_over_the_default() {
    let routing = geo_server("", [None, None]).await;
    let name = "geo.route.test.";
    for (subnet, want, scope) in [
        ("203.0.113.0/24", "192.0.2.101", 24),  // DE-HE: subdivision
        ("198.51.100.0/24", "192.0.2.102", 24), // DE-BY: country
        ("192.0.2.0/24", "192.0.2.103", 24),    // FR: continent EU
        ("198.18.0.0/24", "192.0.2.109", 24),   // AU: default
        ("2001:db8:1::/48", "192.0.2.101", 48),
        ("2001:db8:2::/56", "192.0.2.104", 48),
        ("2001:db8:3::/48", "192.0.2.109", 48),
    ] {
        let reply = routing.ask(name, RecordType::A, Some(subnet)).await;
        assert_answer(&reply, &[a_rr(name, 50, want)]);
        assert_ecs(&reply, subnet, scope);
    }
    // Addresses the database has no data for, and the source address: the default.
    for subnet in [Some("233.252.0.0/24"), Some("2001:db8:4::/48"), None] {
        let reply = routing.ask(name, RecordType::A, subnet).await;
        assert_answer(&reply, &[a_rr(name, 50, "192.0.2.109")]);
    }
    // Over TCP the same.
    let reply = routing
        .send_tcp(&ecs_query(name, RecordType::A, &ecs("203.0.113.0/24")))
        .await;
    assert_answer(&reply, &[a_rr(name, 50, "192.0.2.101")]);
    assert_ecs(&reply, "203.0.113.0/24", 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geolocation_without_a_match_or_default_is_nodata_with_the_soa() {
    let routing = geo_server("", [None, None]).await;
    let name = "nodef.route.test.";
    for subnet in [
        Some("198.18.0.0/24"),
        Some("233.252.0.0/24"),
        Some("2001:db8:2::/48"),
        None,
    ] {
        let reply = routing.ask(name, RecordType::A, subnet).await;
        assert_nodata(&reply);
    }
    let reply = routing
        .ask(name, RecordType::A, Some("203.0.113.0/24"))
        .await;
    assert_answer(&reply, &[a_rr(name, 50, "192.0.2.112")]);
    let reply = routing.ask(name, RecordType::A, Some("192.0.2.0/24")).await;
    assert_answer(&reply, &[a_rr(name, 50, "192.0.2.113")]);
    // another type at a routed name is NODATA as well
    assert_nodata(
        &routing
            .ask(name, RecordType::AAAA, Some("203.0.113.0/24"))
            .await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geolocation_falls_back_from_an_unhealthy_match_to_the_next_less_specific_healthy_one() {
    let hesse = HttpEndpoint::start(200, "ok").await;
    let germany = HttpEndpoint::start(200, "ok").await;
    let checks = [
        check("h-hesse", "http", &hesse.url(), ""),
        check("h-germany", "http", &germany.url(), ""),
    ]
    .concat();
    let routing = geo_server(&checks, [Some("h-hesse"), Some("h-germany")]).await;
    let name = "geo.route.test.";
    let frankfurt = Some("203.0.113.0/24");
    wait_for_answer(&routing, name, RecordType::A, frankfurt, &["192.0.2.101"]).await;

    hesse.set_status(500);
    let reply = wait_for_answer(&routing, name, RecordType::A, frankfurt, &["192.0.2.102"]).await;
    assert_answer(&reply, &[a_rr(name, 50, "192.0.2.102")]);
    germany.set_status(500);
    wait_for_answer(&routing, name, RecordType::A, frankfurt, &["192.0.2.103"]).await;
    // clients matched less specifically are unaffected by the subdivision's health
    let reply = routing
        .ask(name, RecordType::A, Some("2001:db8:2::/48"))
        .await;
    assert_answer(&reply, &[a_rr(name, 50, "192.0.2.104")]);

    hesse.set_status(200);
    wait_for_answer(&routing, name, RecordType::A, frankfurt, &["192.0.2.101"]).await;
    germany.set_status(200);
    wait_for_answer(
        &routing,
        name,
        RecordType::A,
        Some("198.51.100.0/24"),
        &["192.0.2.102"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geo_networks_override_what_the_database_says() {
    let networks = [
        geo_network("198.51.100.0/24", "country = \"KR\"\ncontinent = \"AS\""),
        geo_network("203.0.113.192/26", "country = \"KR\""),
        geo_network("2001:db8:1:ff00::/56", "continent = \"OC\""),
        geo_network("127.0.0.0/8", "country = \"DE\"\nsubdivision = \"HE\""),
    ]
    .concat();
    let routing = geo_server(&networks, [None, None]).await;
    let name = "geo.route.test.";
    for (subnet, want, scope) in [
        ("198.51.100.0/24", "192.0.2.104", 24),  // the DB says DE-BY
        ("203.0.113.192/26", "192.0.2.104", 26), // inside the DB's DE-HE /24
        ("203.0.113.0/25", "192.0.2.101", 24),   // the rest of it still DE-HE
        ("2001:db8:1:ff00::/56", "192.0.2.109", 56),
        ("2001:db8:1::/56", "192.0.2.101", 48),
    ] {
        let reply = routing.ask(name, RecordType::A, Some(subnet)).await;
        assert_answer(&reply, &[a_rr(name, 50, want)]);
        assert_ecs(&reply, subnet, scope);
    }
    // The source address, located by [[geo.networks]] only.
    let reply = routing.ask(name, RecordType::A, None).await;
    assert_answer(&reply, &[a_rr(name, 50, "192.0.2.101")]);
}

// ------------------------------------------------------------------ CIDR

const CIDR_COLLECTION: &str = r#"
[[dns.cidr_collections]]
id = "net"
locations = { office = ["10.1.0.0/16"], lab = ["10.1.2.0/24"], branch = ["10.2.5.0/24"], v6 = ["2001:db8:abcd::/48"], v6lab = ["2001:db8:abcd:12::/64"] }
"#;

fn cidr_records() -> Vec<String> {
    let at =
        |location: &str| format!(r#"cidr = {{ collection = "net", location = "{location}" }}"#);
    vec![
        routed(
            "ip",
            "A",
            60,
            "office",
            &at("office"),
            &["192.0.2.11"],
            None,
        ),
        routed("ip", "A", 60, "lab", &at("lab"), &["192.0.2.12"], None),
        routed(
            "ip",
            "A",
            60,
            "branch",
            &at("branch"),
            &["192.0.2.13"],
            None,
        ),
        routed("ip", "A", 60, "v6", &at("v6"), &["192.0.2.14"], None),
        routed("ip", "A", 60, "v6lab", &at("v6lab"), &["192.0.2.15"], None),
        routed("ip", "A", 60, "default", &at("*"), &["192.0.2.19"], None),
        routed(
            "ipnodef",
            "A",
            60,
            "office",
            &at("office"),
            &["192.0.2.21"],
            None,
        ),
        routed("ipnodef", "A", 60, "lab", &at("lab"), &["192.0.2.22"], None),
    ]
}

async fn cidr_server() -> Routing {
    start_routing(&route_config("", CIDR_COLLECTION, &cidr_records()), &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cidr_routing_answers_the_longest_matching_block_and_the_default_otherwise() {
    let routing = cidr_server().await;
    let name = "ip.route.test.";
    // (subnet, answer, scope): the scope is the matched block's prefix; it is left open where
    // a longer block of another location sits inside the matched one (see
    // cidr_scope_is_not_shorter_than_a_block_inside_the_client_subnet).
    for (subnet, want, scope) in [
        ("10.1.2.0/24", "192.0.2.12", Some(24)), // lab /24 inside office /16
        ("10.1.2.128/25", "192.0.2.12", Some(24)), // longer than the block: still the block
        ("10.1.3.0/24", "192.0.2.11", None),     // office
        ("10.1.200.0/21", "192.0.2.11", None),
        ("10.2.5.0/24", "192.0.2.13", Some(24)),
        ("2001:db8:abcd:12::/64", "192.0.2.15", Some(64)),
        ("2001:db8:abcd:1200::/56", "192.0.2.14", None),
        ("2001:db8:abcd:99::/64", "192.0.2.14", None),
        ("10.3.0.0/24", "192.0.2.19", Some(24)), // nothing matches: the default
        ("2001:db8:ffff::/48", "192.0.2.19", Some(48)),
    ] {
        let reply = routing.ask(name, RecordType::A, Some(subnet)).await;
        assert_answer(&reply, &[a_rr(name, 60, want)]);
        match scope {
            Some(scope) => assert_ecs(&reply, subnet, scope),
            None => assert_eq!(
                reply_ecs(&reply).map(|e| [&e[..3], &e[4..]].concat()),
                Some([&ecs(subnet)[..3], &ecs(subnet)[4..]].concat()),
                "echo of {subnet}"
            ),
        }
    }
    // Without ECS the source address 127.0.0.1 decides: the default.
    let reply = routing.ask(name, RecordType::A, None).await;
    assert_answer(&reply, &[a_rr(name, 60, "192.0.2.19")]);
    assert_eq!(reply_ecs(&reply), None);
    // TCP the same
    let reply = routing
        .send_tcp(&ecs_query(name, RecordType::A, &ecs("10.1.2.0/24")))
        .await;
    assert_answer(&reply, &[a_rr(name, 60, "192.0.2.12")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cidr_routing_without_a_match_or_default_is_nodata() {
    let routing = cidr_server().await;
    let name = "ipnodef.route.test.";
    for subnet in [Some("10.3.0.0/24"), Some("2001:db8:abcd::/48"), None] {
        assert_nodata(&routing.ask(name, RecordType::A, subnet).await);
    }
    let reply = routing.ask(name, RecordType::A, Some("10.1.2.0/24")).await;
    assert_answer(&reply, &[a_rr(name, 60, "192.0.2.22")]);
    let reply = routing
        .ask(name, RecordType::A, Some("10.1.200.0/24"))
        .await;
    assert_answer(&reply, &[a_rr(name, 60, "192.0.2.21")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cidr_block_longer_than_the_client_subnet_does_not_match() {
    let routing = cidr_server().await;
    let name = "ip.route.test.";
    for (subnet, want) in [
        ("10.2.0.0/16", "192.0.2.19"), // branch is a /24: the default
        ("10.1.0.0/16", "192.0.2.11"), // lab is a /24: office, the /16
        ("10.1.2.0/23", "192.0.2.11"),
        ("2001:db8:abcd::/40", "192.0.2.19"),
        ("2001:db8:abcd:10::/60", "192.0.2.14"),
    ] {
        let reply = routing.ask(name, RecordType::A, Some(subnet)).await;
        assert_answer(&reply, &[a_rr(name, 60, want)]);
    }
    let reply = routing
        .ask("ipnodef.route.test.", RecordType::A, Some("10.0.0.0/8"))
        .await;
    assert_nodata(&reply);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cidr_routing_falls_back_to_the_default_when_the_matched_set_is_unhealthy() {
    let lab = HttpEndpoint::start(200, "ok").await;
    let default = HttpEndpoint::start(200, "ok").await;
    let checks = [
        check("h-lab", "http", &lab.url(), ""),
        check("h-default", "http", &default.url(), ""),
    ]
    .concat();
    let at =
        |location: &str| format!(r#"cidr = {{ collection = "net", location = "{location}" }}"#);
    let records = [
        routed(
            "ip",
            "A",
            60,
            "lab",
            &at("lab"),
            &["192.0.2.12"],
            Some("h-lab"),
        ),
        routed(
            "ip",
            "A",
            60,
            "office",
            &at("office"),
            &["192.0.2.11"],
            None,
        ),
        routed(
            "ip",
            "A",
            60,
            "default",
            &at("*"),
            &["192.0.2.19"],
            Some("h-default"),
        ),
    ];
    let routing = start_routing(&route_config(&checks, CIDR_COLLECTION, &records), &[]).await;
    let name = "ip.route.test.";
    let lab_client = Some("10.1.2.0/24");
    let reply = routing.ask(name, RecordType::A, lab_client).await;
    assert_answer(&reply, &[a_rr(name, 60, "192.0.2.12")]);

    lab.set_status(500);
    wait_healthy(&routing, "h-lab", false).await;
    let reply = routing.ask(name, RecordType::A, lab_client).await;
    assert_answer(&reply, &[a_rr(name, 60, "192.0.2.19")]);
    // other locations are unaffected
    let reply = routing.ask(name, RecordType::A, Some("10.1.3.0/24")).await;
    assert_answer(&reply, &[a_rr(name, 60, "192.0.2.11")]);

    // matched set and default both down: the matched set, never an empty answer
    default.set_status(500);
    wait_healthy(&routing, "h-default", false).await;
    let reply = routing.ask(name, RecordType::A, lab_client).await;
    assert_answer(&reply, &[a_rr(name, 60, "192.0.2.12")]);
    let reply = routing.ask(name, RecordType::A, Some("10.9.0.0/24")).await;
    assert_answer(&reply, &[a_rr(name, 60, "192.0.2.19")]);

    lab.set_status(200);
    wait_for_answer(&routing, name, RecordType::A, lab_client, &["192.0.2.12"]).await;
}

/// RFC 7871 §7.2.1: "A SCOPE PREFIX-LENGTH value longer than the SOURCE PREFIX-LENGTH
/// indicates that the provided prefix length was not specific enough to select the most
/// appropriate Tailored Response." A client subnet that contains a longer block than it
/// reveals cannot be answered for its whole range, so the scope must be at least that block's
/// length; otherwise resolvers cache the answer for the whole subnet, the block included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cidr_scope_is_not_shorter_than_a_block_inside_the_client_subnet() {
    let routing = cidr_server().await;
    let name = "ip.route.test.";
    let mut wrong = Vec::new();
    for (subnet, want, scope) in [
        ("10.2.0.0/16", "192.0.2.19", 24), // branch 10.2.5.0/24 is inside
        ("10.1.0.0/16", "192.0.2.11", 24), // lab 10.1.2.0/24 is inside
        ("2001:db8:abcd::/48", "192.0.2.14", 64), // v6lab /64 is inside
    ] {
        let reply = routing.ask(name, RecordType::A, Some(subnet)).await;
        assert_answer(&reply, &[a_rr(name, 60, want)]);
        let echoed = reply_ecs(&reply).and_then(|e| e.get(3).copied());
        if echoed.is_none_or(|got| got < scope) {
            wrong.push(format!(
                "{subnet}: scope {echoed:?}, expected at least {scope}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "scopes too short to cache safely: {wrong:#?}"
    );
}

// ------------------------------------------------------------------ multivalue

fn multivalue_records(check: &str) -> Vec<String> {
    let mut records = Vec::new();
    for i in 0..10 {
        let health = (i < 3).then_some(check);
        let (live, dead) = (
            format!("192.0.2.{}", 150 + i),
            format!("198.51.100.{}", 150 + i),
        );
        let (m, d) = (format!("m{i}"), format!("d{i}"));
        records.push(routed(
            "mv",
            "A",
            35,
            &m,
            "multivalue = true",
            &[&live],
            health,
        ));
        records.push(routed(
            "dead",
            "A",
            36,
            &d,
            "multivalue = true",
            &[&dead],
            Some(check),
        ));
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multivalue_returns_at_most_eight_healthy_sets_in_varying_order() {
    let web = HttpEndpoint::start(200, "ok").await;
    let routing = start_routing(
        &route_config(
            &check("mvc", "http", &web.url(), ""),
            "",
            &multivalue_records("mvc"),
        ),
        &[],
    )
    .await;
    let name = "mv.route.test.";
    let all: BTreeSet<String> = (0..10).map(|i| format!("192.0.2.{}", 150 + i)).collect();
    let mut orders = BTreeSet::new();
    let mut subsets = BTreeSet::new();
    let mut union = BTreeSet::new();
    for i in 0..30 {
        let reply = if i % 5 == 0 {
            routing.send_tcp(&q(name, RecordType::A).bytes()).await
        } else {
            routing.ask(name, RecordType::A, None).await
        };
        assert_rcode(&reply, rcode::NOERROR);
        let got = ipv4s(&reply);
        assert_eq!(got.len(), 8, "eight of ten sets: {reply:?}");
        assert!(reply.answer.iter().all(|r| r.ttl == 35 && r.owner == name));
        let set: BTreeSet<String> = got.iter().cloned().collect();
        assert_eq!(set.len(), 8, "no set twice: {reply:?}");
        assert!(set.is_subset(&all), "{reply:?}");
        union.extend(set.iter().cloned());
        subsets.insert(set.into_iter().collect::<Vec<_>>());
        orders.insert(got);
    }
    assert!(orders.len() >= 10, "random orders: {orders:?}");
    assert!(subsets.len() >= 5, "random subsets: {subsets:?}");
    assert_eq!(union, all, "every set shows up over 30 answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multivalue_drops_unhealthy_sets_and_answers_from_all_when_none_is_healthy() {
    let web = HttpEndpoint::start(200, "ok").await;
    let routing = start_routing(
        &route_config(
            &check("mvc", "http", &web.url(), ""),
            "",
            &multivalue_records("mvc"),
        ),
        &[],
    )
    .await;
    let healthy: BTreeSet<String> = (3..10).map(|i| format!("192.0.2.{}", 150 + i)).collect();
    web.set_status(500);
    eventually("only the seven unchecked sets", || async {
        let reply = routing.ask("mv.route.test.", RecordType::A, None).await;
        let got: BTreeSet<String> = ipv4s(&reply).into_iter().collect();
        (got == healthy)
            .then_some(())
            .ok_or_else(|| format!("{reply:?}"))
    })
    .await;
    let dead: BTreeSet<String> = (0..10).map(|i| format!("198.51.100.{}", 150 + i)).collect();
    let mut union = BTreeSet::new();
    for _ in 0..20 {
        let reply = routing.ask("mv.route.test.", RecordType::A, None).await;
        let got = ipv4s(&reply);
        assert_eq!(got.len(), 7, "{reply:?}");
        assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), healthy);

        let reply = routing.ask("dead.route.test.", RecordType::A, None).await;
        assert_rcode(&reply, rcode::NOERROR);
        let got = ipv4s(&reply);
        assert_eq!(got.len(), 8, "all unhealthy: still eight: {reply:?}");
        let set: BTreeSet<String> = got.into_iter().collect();
        assert_eq!(set.len(), 8);
        assert!(set.is_subset(&dead), "{reply:?}");
        assert!(reply.answer.iter().all(|r| r.ttl == 36));
        union.extend(set);
    }
    assert_eq!(union, dead, "all ten unhealthy sets take turns");
}

// ------------------------------------------------------------------ EDNS Client Subnet

async fn ecs_server(use_client_subnet: Option<bool>) -> Routing {
    let top = [
        geo_network("192.168.0.0/16", "country = \"KR\"\ncontinent = \"AS\""),
        geo_network("127.0.0.0/8", "country = \"DE\"\ncontinent = \"EU\""),
    ]
    .concat();
    let dns_extra = format!(
        "{}\n[[dns.cidr_collections]]\nid = \"net\"\nlocations = {{ lab = [\"10.1.2.0/24\"], v6 = [\"2001:db8:abcd::/48\"], local = [\"127.0.0.0/8\"] }}\n",
        use_client_subnet.map_or(String::new(), |u| format!("use_client_subnet = {u}"))
    );
    let at =
        |location: &str| format!(r#"cidr = {{ collection = "net", location = "{location}" }}"#);
    let records = vec![
        routed("ip", "A", 60, "lab", &at("lab"), &["192.0.2.12"], None),
        routed("ip", "A", 60, "v6", &at("v6"), &["192.0.2.14"], None),
        routed("ip", "A", 60, "local", &at("local"), &["192.0.2.17"], None),
        routed("ip", "A", 60, "default", &at("*"), &["192.0.2.19"], None),
        geo_set("korea", r#"geo = { country = "KR" }"#, "192.0.2.104"),
        geo_set("germany", r#"geo = { country = "DE" }"#, "192.0.2.102"),
        geo_set("rest", r#"geo = { country = "*" }"#, "192.0.2.109"),
        routed("w", "A", 30, "a", "weight = 1", &["192.0.2.71"], None),
        routed("w", "A", 30, "b", "weight = 1", &["192.0.2.72"], None),
        plain("static", "A", 300, &["192.0.2.200"]),
    ];
    start_routing(&route_config(&top, &dns_extra, &records), &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_subnet_is_echoed_with_the_scope_its_routing_decision_holds_for() {
    let routing = ecs_server(None).await;
    for (name, subnet, scope, want) in [
        // CIDR: the matched block's prefix
        ("ip.route.test.", "10.1.2.0/24", 24, "192.0.2.12"),
        ("ip.route.test.", "10.1.2.64/26", 24, "192.0.2.12"),
        ("ip.route.test.", "2001:db8:abcd:1::/64", 48, "192.0.2.14"),
        // geolocation: the located network's prefix
        ("geo.route.test.", "192.168.1.0/24", 16, "192.0.2.104"),
        ("geo.route.test.", "192.168.0.0/17", 16, "192.0.2.104"),
        // static data and weighted answers do not depend on the client: scope 0
        ("static.route.test.", "10.1.2.0/24", 0, "192.0.2.200"),
        ("static.route.test.", "2001:db8::/32", 0, "192.0.2.200"),
    ] {
        let bytes = ecs_query(name, RecordType::A, &ecs(subnet));
        for reply in [
            routing.send_udp(&bytes).await,
            routing.send_tcp(&bytes).await,
        ] {
            assert_rcode(&reply, rcode::NOERROR);
            assert_eq!(ipv4s(&reply), [want], "{name} from {subnet}: {reply:?}");
            assert_ecs(&reply, subnet, scope);
        }
    }
    for _ in 0..10 {
        let reply = routing
            .ask("w.route.test.", RecordType::A, Some("10.1.2.0/24"))
            .await;
        assert_eq!(reply.answer.len(), 1, "{reply:?}");
        assert_ecs(&reply, "10.1.2.0/24", 0);
    }
    // NXDOMAIN and NODATA echo it too, scope 0.
    let reply = routing
        .ask("nothing.route.test.", RecordType::A, Some("10.1.2.0/24"))
        .await;
    assert_rcode(&reply, rcode::NXDOMAIN);
    assert_ecs(&reply, "10.1.2.0/24", 0);
    let reply = routing
        .ask("static.route.test.", RecordType::TXT, Some("10.1.2.0/24"))
        .await;
    assert_nodata(&reply);
    assert_ecs(&reply, "10.1.2.0/24", 0);
    // The echo is the query's own bytes: an ECS option among other options.
    let bytes = with_edns_options(
        q("ip.route.test.", RecordType::A).edns(1232).bytes(),
        &[(10, vec![1, 2, 3, 4, 5, 6, 7, 8]), (8, ecs("10.1.2.0/24"))],
    );
    let reply = routing.send_udp(&bytes).await;
    assert_eq!(ipv4s(&reply), ["192.0.2.12"]);
    assert_ecs(&reply, "10.1.2.0/24", 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_without_client_subnet_gets_no_client_subnet_back_and_routes_on_its_source() {
    let routing = ecs_server(None).await;
    for name in ["ip.route.test.", "geo.route.test.", "static.route.test."] {
        let reply = routing.ask(name, RecordType::A, None).await;
        assert!(reply.opt.is_some(), "EDNS query, EDNS reply: {reply:?}");
        assert_eq!(reply_options(&reply), Some(vec![]), "no options: {reply:?}");
        let reply = routing.send_udp(&q(name, RecordType::A).bytes()).await;
        assert!(reply.opt.is_none(), "no EDNS, no OPT: {reply:?}");
    }
    // 127.0.0.1 is in the "local" block and located in DE.
    let reply = routing.ask("ip.route.test.", RecordType::A, None).await;
    assert_eq!(ipv4s(&reply), ["192.0.2.17"]);
    let reply = routing.ask("geo.route.test.", RecordType::A, None).await;
    assert_eq!(ipv4s(&reply), ["192.0.2.102"]);
    // ECS with source prefix 0 reveals nothing: the source address decides.
    let reply = routing
        .ask("ip.route.test.", RecordType::A, Some("0.0.0.0/0"))
        .await;
    assert_eq!(ipv4s(&reply), ["192.0.2.17"], "{reply:?}");
    assert_eq!(
        reply_ecs(&reply).map(|e| e[..3].to_vec()),
        Some(vec![0, 1, 0])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_client_subnet_false_routes_on_the_source_address_and_echoes_nothing() {
    let routing = ecs_server(Some(false)).await;
    for (name, subnet, want) in [
        ("ip.route.test.", "10.1.2.0/24", "192.0.2.17"),
        ("geo.route.test.", "192.168.1.0/24", "192.0.2.102"),
        ("static.route.test.", "10.1.2.0/24", "192.0.2.200"),
    ] {
        let reply = routing.ask(name, RecordType::A, Some(subnet)).await;
        assert_rcode(&reply, rcode::NOERROR);
        assert_eq!(ipv4s(&reply), [want], "{name}: {reply:?}");
        assert!(reply.opt.is_some(), "{reply:?}");
        assert_eq!(reply_ecs(&reply), None, "no ECS echo: {reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_client_subnet_options_get_formerr() {
    let routing = ecs_server(None).await;
    let cases: [(&str, Vec<u8>); 6] = [
        (
            "address longer than the prefix needs",
            vec![0, 1, 24, 0, 10, 1, 2, 0],
        ),
        ("bits set beyond the prefix", vec![0, 1, 20, 0, 10, 1, 0xff]),
        ("prefix 33 for IPv4", vec![0, 1, 33, 0, 10, 1, 2, 3, 4]),
        (
            "prefix 129 for IPv6",
            [vec![0, 2, 129, 0], vec![0x20; 17]].concat(),
        ),
        ("unknown family", vec![0, 3, 8, 0, 10]),
        (
            "address shorter than the prefix needs",
            vec![0, 1, 24, 0, 10, 1],
        ),
    ];
    for (what, data) in cases {
        let bytes = ecs_query("ip.route.test.", RecordType::A, &data);
        for reply in [
            routing.send_udp(&bytes).await,
            routing.send_tcp(&bytes).await,
        ] {
            assert_eq!(
                reply.rcode(),
                rcode::FORMERR,
                "{what}: FORMERR expected; whole reply:\n{reply:?}"
            );
            assert!(reply.answer.is_empty(), "{what}: {reply:?}");
            assert_eq!(reply.id, 0x4d2e, "{what}: the query's id");
        }
    }
    // a well-formed option on the same server is fine
    let reply = routing
        .ask("ip.route.test.", RecordType::A, Some("10.1.2.0/24"))
        .await;
    assert_eq!(ipv4s(&reply), ["192.0.2.12"]);
}

// ------------------------------------------------------------------ composition

async fn compose_server() -> Routing {
    let top = geo_network("192.168.0.0/16", "country = \"KR\"");
    let records = vec![
        routed(
            "app",
            "A",
            42,
            "one",
            "weight = 1",
            &["192.0.2.61", "192.0.2.62"],
            None,
        ),
        routed("app", "A", 42, "never", "weight = 0", &["192.0.2.60"], None),
        plain("alias", "CNAME", 300, &["app"]),
        plain("galias", "CNAME", 300, &["geo.route.test."]),
        routed(
            "geo",
            "A",
            45,
            "korea",
            r#"geo = { country = "KR" }"#,
            &["192.0.2.104"],
            None,
        ),
        routed(
            "geo",
            "A",
            45,
            "rest",
            r#"geo = { country = "*" }"#,
            &["192.0.2.109"],
            None,
        ),
        routed("*.w", "A", 43, "w1", "weight = 1", &["192.0.2.81"], None),
        routed("only", "A", 44, "a", "weight = 1", &["192.0.2.91"], None),
        routed("only", "TXT", 46, "t", "weight = 1", &[r#""hello""#], None),
        routed(
            "v6",
            "AAAA",
            47,
            "p",
            r#"failover = "primary""#,
            &["2001:db8::1"],
            None,
        ),
        routed(
            "v6",
            "AAAA",
            48,
            "s",
            r#"failover = "secondary""#,
            &["2001:db8::2"],
            None,
        ),
        routed(
            "text",
            "TXT",
            49,
            "t1",
            "weight = 1",
            &[r#""routed text""#],
            None,
        ),
        routed("text", "TXT", 49, "t0", "weight = 0", &[r#""never""#], None),
        routed(
            "rcname",
            "CNAME",
            51,
            "c",
            "weight = 1",
            &["app.route.test."],
            None,
        ),
    ];
    start_routing(&route_config(&top, "", &records), &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cname_to_a_routed_name_returns_the_cname_and_the_routed_record() {
    let routing = compose_server().await;
    let cname = |owner: &str, target: &str| rr(owner, RecordType::CNAME, 300, name(target));
    let reply = routing.ask("alias.route.test.", RecordType::A, None).await;
    assert_answer(
        &reply,
        &[
            cname("alias.route.test.", "app.route.test."),
            a_rr("app.route.test.", 42, "192.0.2.61"),
            a_rr("app.route.test.", 42, "192.0.2.62"),
        ],
    );
    let reply = routing
        .ask("galias.route.test.", RecordType::A, Some("192.168.7.0/24"))
        .await;
    assert_answer(
        &reply,
        &[
            cname("galias.route.test.", "geo.route.test."),
            a_rr("geo.route.test.", 45, "192.0.2.104"),
        ],
    );
    assert_ecs(&reply, "192.168.7.0/24", 16);
    let reply = routing.ask("galias.route.test.", RecordType::A, None).await;
    assert_answer(
        &reply,
        &[
            cname("galias.route.test.", "geo.route.test."),
            a_rr("geo.route.test.", 45, "192.0.2.109"),
        ],
    );
    // asking for the CNAME itself stops there
    let reply = routing
        .ask("alias.route.test.", RecordType::CNAME, None)
        .await;
    assert_answer(&reply, &[cname("alias.route.test.", "app.route.test.")]);
    // a routed CNAME is followed the same way
    let reply = routing.ask("rcname.route.test.", RecordType::A, None).await;
    assert_answer(
        &reply,
        &[
            rr(
                "rcname.route.test.",
                RecordType::CNAME,
                51,
                name("app.route.test."),
            ),
            a_rr("app.route.test.", 42, "192.0.2.61"),
            a_rr("app.route.test.", 42, "192.0.2.62"),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_wildcard_answers_with_the_query_name_as_owner() {
    let routing = compose_server().await;
    for qname in ["x.w.route.test.", "deep.er.w.route.test."] {
        let reply = routing.ask(qname, RecordType::A, None).await;
        assert_answer(&reply, &[a_rr(qname, 43, "192.0.2.81")]);
        assert_nodata(&routing.ask(qname, RecordType::TXT, None).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_at_a_routed_only_name_returns_one_routed_set() {
    let routing = compose_server().await;
    let owner = "only.route.test.";
    let a_set = vec![a_rr(owner, 44, "192.0.2.91")];
    let txt_set = vec![rr(owner, RecordType::TXT, 46, txt(&[b"hello"]))];
    for reply in [
        routing.ask(owner, RecordType::ANY, None).await,
        routing.send_tcp(&q(owner, RecordType::ANY).bytes()).await,
    ] {
        assert_rcode(&reply, rcode::NOERROR);
        let mut got = reply.answer.clone();
        got.sort();
        assert!(
            got == a_set || got == txt_set,
            "one whole routed RRset (RFC 8482); whole reply:\n{reply:?}"
        );
    }
    let reply = routing.ask(owner, RecordType::A, None).await;
    assert_answer(&reply, &a_set);
    let reply = routing.ask(owner, RecordType::TXT, None).await;
    assert_answer(&reply, &txt_set);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_aaaa_and_txt_sets_are_served_with_their_own_ttl() {
    let routing = compose_server().await;
    let reply = routing.ask("v6.route.test.", RecordType::AAAA, None).await;
    assert_answer(
        &reply,
        &[rr(
            "v6.route.test.",
            RecordType::AAAA,
            47,
            aaaa("2001:db8::1"),
        )],
    );
    assert_nodata(&routing.ask("v6.route.test.", RecordType::A, None).await);
    for _ in 0..10 {
        let reply = routing.ask("text.route.test.", RecordType::TXT, None).await;
        assert_answer(
            &reply,
            &[rr(
                "text.route.test.",
                RecordType::TXT,
                49,
                txt(&[b"routed text"]),
            )],
        );
    }
    let reply = routing.ask("app.route.test.", RecordType::A, None).await;
    assert_answer(
        &reply,
        &[
            a_rr("app.route.test.", 42, "192.0.2.61"),
            a_rr("app.route.test.", 42, "192.0.2.62"),
        ],
    );
    assert_nodata(&routing.ask("app.route.test.", RecordType::AAAA, None).await);
}

// ------------------------------------------------------------------ config errors

/// The errors of a config expected to be rejected, read as if from `path`.
pub fn errors_of(text: &str, path: &Path) -> Vec<ConfigError> {
    match Config::from_str(text, path) {
        Ok(_) => panic!("the config should be rejected:\n{text}"),
        Err(errors) => errors.0,
    }
}

/// Asserts exactly one error, at `key`, whose message contains `message`, with a position.
#[track_caller]
pub fn assert_one_error(top: &str, dns_extra: &str, records: &[String], key: &str, message: &str) {
    let text = route_config(top, dns_extra, records);
    let path = PathBuf::from("/nonexistent-edgewise-test/edgewise.toml");
    let errors = errors_of(&text, &path);
    let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "one error expected: {listed:#?}");
    let error = &errors[0];
    assert_eq!(error.key_path, key, "{listed:#?}");
    assert!(
        error.message.contains(message),
        "message should contain {message:?}: {listed:#?}"
    );
    assert!(
        error.line > 0 && error.col > 0,
        "with a position: {listed:#?}"
    );
    assert_eq!(error.file, path);
}

/// Index 2 is the first record after the NS and ns1 ones `route_config` adds.
pub const R: &str = "dns.zones[0].records[2]";
const R2: &str = "dns.zones[0].records[3]";

#[test]
fn routed_set_naming_an_unknown_health_check_is_rejected() {
    assert_one_error(
        "",
        "",
        &[routed(
            "w",
            "A",
            30,
            "a",
            "weight = 1",
            &["192.0.2.1"],
            Some("nope"),
        )],
        &format!("{R}.health_check"),
        "no health check has id \"nope\"",
    );
}

#[test]
fn latency_set_naming_an_unknown_region_is_rejected() {
    assert_one_error(
        &format!("{}{REGIONS}", latency_networks()),
        "",
        &[routed(
            "l",
            "A",
            30,
            "a",
            r#"region = "mars""#,
            &["192.0.2.1"],
            None,
        )],
        &format!("{R}.region"),
        "no [[regions]] entry has id \"mars\"",
    );
}

#[test]
fn cidr_set_naming_an_unknown_collection_or_location_is_rejected() {
    assert_one_error(
        "",
        CIDR_COLLECTION,
        &[routed(
            "c",
            "A",
            30,
            "a",
            r#"cidr = { collection = "nope", location = "lab" }"#,
            &["192.0.2.1"],
            None,
        )],
        &format!("{R}.cidr"),
        "no [[dns.cidr_collections]] entry has id \"nope\"",
    );
    assert_one_error(
        "",
        CIDR_COLLECTION,
        &[routed(
            "c",
            "A",
            30,
            "a",
            r#"cidr = { collection = "net", location = "moon" }"#,
            &["192.0.2.1"],
            None,
        )],
        &format!("{R}.cidr"),
        "collection \"net\" has no location \"moon\"",
    );
}

#[test]
fn routed_set_with_two_routing_fields_is_rejected() {
    assert_one_error(
        "",
        "",
        &[routed(
            "w",
            "A",
            30,
            "a",
            r#"weight = 1, failover = "primary""#,
            &["192.0.2.1"],
            None,
        )],
        R,
        "exactly one routing field, not weight and failover",
    );
}

#[test]
fn sets_of_one_name_and_type_mixing_policies_are_rejected() {
    assert_one_error(
        "",
        "",
        &[
            routed("w", "A", 30, "a", "weight = 1", &["192.0.2.1"], None),
            routed(
                "w",
                "A",
                30,
                "b",
                r#"failover = "primary""#,
                &["192.0.2.2"],
                None,
            ),
        ],
        R2,
        "mixes routing policies (weighted and failover)",
    );
}

#[test]
fn duplicate_set_id_in_a_group_is_rejected() {
    assert_one_error(
        "",
        "",
        &[
            routed("w", "A", 30, "a", "weight = 1", &["192.0.2.1"], None),
            routed("w", "A", 30, "a", "weight = 2", &["192.0.2.2"], None),
        ],
        R2,
        "set_id \"a\" is used twice for w.route.test. A",
    );
}

#[test]
fn plain_and_routed_sets_at_one_name_and_type_are_rejected() {
    assert_one_error(
        "",
        "",
        &[
            routed("w", "A", 30, "a", "weight = 1", &["192.0.2.1"], None),
            plain("w", "A", 30, &["192.0.2.2"]),
        ],
        R,
        "w.route.test. A has both plain and routed record sets",
    );
}

#[test]
fn geolocation_without_any_source_of_locations_is_rejected() {
    assert_one_error(
        "",
        "",
        &[routed(
            "g",
            "A",
            30,
            "a",
            r#"geo = { country = "*" }"#,
            &["192.0.2.1"],
            None,
        )],
        R,
        "geolocation routing needs client locations: set [geo] country_db or city_db, or add [[geo.networks]]",
    );
}

#[test]
fn latency_without_client_coordinates_is_rejected() {
    let top = format!("{}{REGIONS}", geo_network("10.0.0.0/8", "country = \"JP\""));
    assert_one_error(
        &top,
        "",
        &[routed(
            "l",
            "A",
            30,
            "a",
            r#"region = "seoul""#,
            &["192.0.2.1"],
            None,
        )],
        R,
        "latency routing needs client coordinates",
    );
}

#[test]
fn weight_256_is_rejected() {
    assert_one_error(
        "",
        "",
        &[routed(
            "w",
            "A",
            30,
            "a",
            "weight = 256",
            &["192.0.2.1"],
            None,
        )],
        &format!("{R}.weight"),
        "256 is out of range (expected 0 to 255)",
    );
    assert_one_error(
        "",
        "",
        &[routed(
            "w",
            "A",
            30,
            "a",
            "weight = -1",
            &["192.0.2.1"],
            None,
        )],
        &format!("{R}.weight"),
        "-1 is out of range (expected 0 to 255)",
    );
}

#[test]
fn failover_role_tertiary_is_rejected() {
    assert_one_error(
        "",
        "",
        &[routed(
            "f",
            "A",
            30,
            "a",
            r#"failover = "tertiary""#,
            &["192.0.2.1"],
            None,
        )],
        &format!("{R}.failover"),
        "\"tertiary\" is not a failover role (expected \"primary\" or \"secondary\")",
    );
}

#[test]
fn calculated_checks_depending_on_each_other_are_rejected() {
    let cycle = "[[health_checks]]\nid = \"a\"\ntype = \"calculated\"\nchildren = [\"b\"]\n\n[[health_checks]]\nid = \"b\"\ntype = \"calculated\"\nchildren = [\"c\"]\n\n[[health_checks]]\nid = \"c\"\ntype = \"calculated\"\nchildren = [\"a\"]\n\n";
    let text = route_config(cycle, "", &[]);
    let errors = errors_of(&text, Path::new("/nonexistent-edgewise-test/edgewise.toml"));
    let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .all(|e| e.key_path.starts_with("health_checks[")
                && e.key_path.ends_with("].children")
                && e.message.contains("depends on itself through its children")
                && e.line > 0),
        "{listed:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("calculated check \"a\"")),
        "{listed:#?}"
    );
}

#[test]
fn health_check_interval_below_one_second_is_rejected() {
    let text = route_config(
        "[[health_checks]]\nid = \"fast\"\ntype = \"tcp\"\ntarget = \"127.0.0.1:9\"\ninterval = \"500ms\"\n",
        "",
        &[],
    );
    let errors = errors_of(&text, Path::new("/nonexistent-edgewise-test/edgewise.toml"));
    let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "{listed:#?}");
    assert_eq!(
        errors[0].key_path, "health_checks[0].interval",
        "{listed:#?}"
    );
    assert_eq!(errors[0].message, "must be at least 1s", "{listed:#?}");
}

#[test]
fn missing_or_unreadable_geo_database_is_rejected_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("garbage.mmdb"), b"not a database at all").unwrap();
    for (file, key) in [
        ("missing.mmdb", "geo.city_db"),
        ("garbage.mmdb", "geo.country_db"),
    ] {
        let field = key.trim_start_matches("geo.");
        let text = route_config(&format!("[geo]\n{field} = \"{file}\"\n"), "", &[]);
        let path = dir.path().join("edgewise.toml");
        std::fs::write(&path, &text).unwrap();
        let errors = match Config::load(&path) {
            Ok(_) => panic!("{file} should be rejected"),
            Err(errors) => errors.0,
        };
        let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{listed:#?}");
        assert_eq!(errors[0].key_path, key, "{listed:#?}");
        assert!(errors[0].line > 0, "{listed:#?}");
        let expected = format!(
            "cannot open GeoIP database {}",
            dir.path().join(file).display()
        );
        assert!(
            errors[0].message.starts_with(&expected),
            "{expected:?} expected: {listed:#?}"
        );
    }
}

#[test]
fn the_generated_database_and_every_routing_policy_load_together() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("geo.mmdb"), geo_db()).unwrap();
    let top = format!(
        "[geo]\ncity_db = \"geo.mmdb\"\n{}{REGIONS}{}",
        latency_networks(),
        check("h", "tcp", "127.0.0.1:9", "")
    );
    let mut records = geo_records([Some("h"), None]);
    records.extend(latency_records(Some("h")));
    records.extend(cidr_records());
    records.extend(multivalue_records("h"));
    let text = route_config(&top, CIDR_COLLECTION, &records);
    let path = dir.path().join("edgewise.toml");
    std::fs::write(&path, &text).unwrap();
    let config = load_ok(&path);
    let dns = config.dns.expect("[dns]");
    assert_eq!(dns.regions.len(), 3);
    assert_eq!(dns.health_checks.len(), 1);
    assert_eq!(
        dns.zones[0].routed.len(),
        7,
        "groups geo, nodef, lat, ip, ipnodef, mv and dead"
    );
}
