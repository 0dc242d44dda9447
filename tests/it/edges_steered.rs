//! Route 53 in front of CloudFront, on loopback: three real edgewise-cdn edges on
//! 127.0.0.11-13 (one port), one real edgewise-dns answering `www` with an alias to their
//! `[[edge_groups]]` entry by latency, clients in three regions (told apart by EDNS Client
//! Subnet) resolving with `dig` and fetching with `curl` through the edge they were given.
//! One edge is killed: its clients are moved to the next nearest edge once its `/healthz`
//! check fails, and every request after the move succeeds; the other regions never notice.

use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::background::Background;
use crate::cdn_test_origin::{Origin, Reply};

/// The edges, one per region, and the client subnets nearest each (Tokyo, Paris, New York).
const EDGES: [(&str, &str, &str); 3] = [
    ("127.0.0.11", "seoul", "10.1.0.0/24"),
    ("127.0.0.12", "frankfurt", "10.2.0.0/24"),
    ("127.0.0.13", "virginia", "10.3.0.0/24"),
];

/// Probes every second, unhealthy after two failures: a dead edge is out within ~3 s.
const FAILURE_THRESHOLD: u32 = 2;

/// A port free for TCP on every edge address, and one free for UDP and TCP on 127.0.0.1.
fn free_ports() -> (u16, u16) {
    let edge_port = (0..100)
        .find_map(|_| {
            let first = TcpListener::bind((EDGES[0].0, 0)).ok()?;
            let port = first.local_addr().ok()?.port();
            let others: Option<Vec<TcpListener>> = EDGES[1..]
                .iter()
                .map(|(address, _, _)| TcpListener::bind((*address, port)).ok())
                .collect();
            others.map(|_| port)
        })
        .expect("a port free on 127.0.0.11-13");
    let dns_port = (0..100)
        .find_map(|_| {
            let tcp = TcpListener::bind("127.0.0.1:0").ok()?;
            let port = tcp.local_addr().ok()?.port();
            UdpSocket::bind(("127.0.0.1", port)).ok().map(|_| port)
        })
        .expect("a port free for UDP and TCP");
    (edge_port, dns_port)
}

fn edge_config(address: &str, port: u16, origin: &str) -> String {
    format!(
        r#"[cdn]
http_listen = ["{address}:{port}"]

[[cdn.distributions]]
id = "site"
hosts = ["www.edge.test"]
viewer_protocol = "allow-all"

[[cdn.distributions.origins]]
id = "app"
url = "{origin}"

[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#
    )
}

fn dns_config(dns_port: u16, edge_port: u16) -> String {
    let mut text = format!("[dns]\nlisten = [\"127.0.0.1:{dns_port}\"]\n\n");
    for (address, region, _) in EDGES {
        text += &format!(
            "[[health_checks]]\nid = \"edge-{region}\"\ntype = \"http\"\ntarget = \"http://{address}:{edge_port}/healthz\"\ninterval = \"1s\"\ntimeout = \"1s\"\nfailure_threshold = {FAILURE_THRESHOLD}\n\n"
        );
    }
    text += crate::dns_routing::REGIONS;
    text += r#"
[[geo.networks]]
cidr = "10.1.0.0/16"
country = "JP"
latitude = 35.68
longitude = 139.69

[[geo.networks]]
cidr = "10.2.0.0/16"
country = "FR"
latitude = 48.86
longitude = 2.35

[[geo.networks]]
cidr = "10.3.0.0/16"
country = "US"
latitude = 40.71
longitude = -74.0

[[edge_groups]]
id = "cdn-edges"
members = [
"#;
    for (address, region, _) in EDGES {
        text += &format!(
            "  {{ address = \"{address}\", region = \"{region}\", health_check = \"edge-{region}\" }},\n"
        );
    }
    text += r#"]

[[dns.zones]]
name = "edge.test"
records = [
  { name = "@", type = "NS", values = ["ns1.edge.test."] },
  { name = "ns1", type = "A", values = ["127.0.0.1"] },
  { name = "www", type = "A", alias = { edges = "cdn-edges", policy = "latency" } },
]
"#;
    text
}

/// `dig` for www's address as a client in `subnet` sees it; "" when there is no answer.
async fn resolve(dns_port: u16, subnet: &str) -> String {
    let output = Command::new("dig")
        .args(["@127.0.0.1", "-p", &dns_port.to_string()])
        .args(["+short", "+time=1", "+tries=2"])
        .arg(format!("+subnet={subnet}"))
        .args(["www.edge.test", "A"])
        .output()
        .await
        .expect("dig is installed (apt-get install bind9-dnsutils)");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// `curl` through the edge at `address`: the status and body, or why it failed.
async fn fetch(address: &str, port: u16) -> Result<String, String> {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-w", "\n%{http_code}"])
        .args(["--resolve", &format!("www.edge.test:{port}:{address}")])
        .arg(format!("http://www.edge.test:{port}/page"))
        .output()
        .await
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    match text.rsplit_once('\n') {
        Some((body, "200")) => Ok(body.to_string()),
        _ => Err(format!(
            "{text} {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

/// A client in `subnet`: resolves, then fetches through the edge it was given.
async fn visit(dns_port: u16, edge_port: u16, subnet: &str) -> (String, Result<String, String>) {
    let edge = resolve(dns_port, subnet).await;
    let fetched = fetch(&edge, edge_port).await;
    (edge, fetched)
}

fn spawn(binary: &str, config: &Path, log: &Path) -> Background {
    Background::spawn(
        Command::new(binary)
            .args(["--config", config.to_str().unwrap()])
            .env("NO_COLOR", "1"),
        log.to_path_buf(),
        "edgewise (cargo build)",
    )
}

/// Polls until every region's clients are sent to their own edge.
async fn wait_for_steering(dns_port: u16, dns: &Background) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut seen = Vec::new();
        for (address, _, subnet) in EDGES {
            seen.push((subnet, address, resolve(dns_port, subnet).await));
        }
        if seen.iter().all(|(_, want, got)| want == got) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "clients not steered to their edges: {seen:?}\n{}",
            dns.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_region_is_served_by_its_edge_and_a_dead_edges_clients_move_with_no_failure() {
    let origin = Origin::start().await;
    origin.route("*", Reply::ok("the page"));
    let dir = tempfile::tempdir().expect("temp dir");
    let (edge_port, dns_port) = free_ports();
    let mut edges = Vec::new();
    for (address, region, _) in EDGES {
        let config = dir.path().join(format!("edge-{region}.toml"));
        std::fs::write(&config, edge_config(address, edge_port, &origin.url())).unwrap();
        let log = dir.path().join(format!("edge-{region}.log"));
        edges.push(Some(spawn(
            env!("CARGO_BIN_EXE_edgewise-cdn"),
            &config,
            &log,
        )));
    }
    let config = dir.path().join("dns.toml");
    std::fs::write(&config, dns_config(dns_port, edge_port)).unwrap();
    let dns = spawn(
        env!("CARGO_BIN_EXE_edgewise-dns"),
        &config,
        &dir.path().join("dns.log"),
    );
    wait_for_steering(dns_port, &dns).await;

    // Every region's clients are served through their own edge.
    for (address, _, subnet) in EDGES {
        let (edge, fetched) = visit(dns_port, edge_port, subnet).await;
        assert_eq!(edge, address);
        assert_eq!(fetched.as_deref(), Ok("the page"), "through {edge}");
    }

    // Seoul's edge dies.
    let killed = Instant::now();
    drop(edges[0].take());
    let tokyo = EDGES[0].2;
    let moved = loop {
        let (edge, _) = visit(dns_port, edge_port, tokyo).await;
        if edge == EDGES[1].0 {
            break killed.elapsed();
        }
        assert_eq!(
            edge, EDGES[0].0,
            "Tokyo is sent to Seoul or, once it is out, Frankfurt"
        );
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "Tokyo's clients still sent to the dead edge after 15 s:\n{}",
            dns.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Two failed probes a second apart, each within its 1 s timeout, and the probe period.
    assert!(
        moved < Duration::from_secs(u64::from(FAILURE_THRESHOLD) + 4),
        "moved after {moved:?}"
    );

    // After the move, not one request fails, in any region.
    let mut failures = Vec::new();
    for round in 0..10 {
        for (address, _, subnet) in EDGES {
            let (edge, fetched) = visit(dns_port, edge_port, subnet).await;
            let want = if subnet == tokyo { EDGES[1].0 } else { address };
            if edge != want || fetched.as_deref() != Ok("the page") {
                failures.push(format!(
                    "round {round}, {subnet}: via {edge:?}: {fetched:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(edges[1].as_mut().unwrap().exited().is_none());
}
