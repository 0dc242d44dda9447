//! `GET /metrics` on the DNS status listener: queries sent over UDP and TCP (answered,
//! NXDOMAIN, REFUSED, truncated, with EDNS and Client Subnet, routed) show up as exactly the
//! counts they caused, kept across a reload; reloads, TCP connections and health checks are
//! counted too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use edgewise::dns::DnsServer;
use hickory_proto::rr::RecordType;
use tokio::io::AsyncReadExt;

use crate::dns_routing::{Routing, eventually, plain, route_config};
use crate::harness::{assert_rcode, load_ok, q, serve, tcp_connect};
use crate::health_checks::{TcpEndpoint, check, status_get, watchers};

/// Every sample of a scrape: `name{labels}` (as written) to value.
fn samples(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("no value in {line:?}"));
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}"));
            (series.to_string(), value)
        })
        .collect()
}

async fn scrape(status: SocketAddr) -> BTreeMap<String, f64> {
    let (code, body) = status_get(status, "/metrics").await;
    assert_eq!(code, 200, "{body}");
    samples(&body)
}

/// The samples of family `name`.
fn family(samples: &BTreeMap<String, f64>, name: &str) -> BTreeMap<String, f64> {
    let prefix = format!("{name}{{");
    samples
        .iter()
        .filter(|(series, _)| series.starts_with(&prefix) || *series == name)
        .map(|(series, value)| (series.clone(), *value))
        .collect()
}

/// Waits until the DNS server has `open` TCP connections.
async fn wait_open(status: SocketAddr, open: f64) {
    eventually(&format!("{open} open TCP connections"), || async {
        let got = scrape(status).await;
        let now = got["edgewise_dns_tcp_connections_open"];
        if now == open {
            Ok(())
        } else {
            Err(format!("{now} open"))
        }
    })
    .await;
}

fn queries(zone: &str, qtype: &str, rcode: &str, transport: &str) -> String {
    format!(
        "edgewise_dns_queries_total{{zone=\"{zone}\",qtype=\"{qtype}\",rcode=\"{rcode}\",transport=\"{transport}\"}}"
    )
}

/// Six long TXT strings: more than 512 bytes, so a UDP answer without EDNS is truncated.
fn big_txt() -> Vec<String> {
    ('a'..='f')
        .map(|c| format!("\"{}\"", c.to_string().repeat(100)))
        .collect()
}

fn config(check_target: &str, www: &str) -> String {
    let txt: Vec<String> = big_txt();
    let txt: Vec<&str> = txt.iter().map(String::as_str).collect();
    route_config(
        &check("port", "tcp", check_target, ""),
        "workers = 1\ntcp_max_per_client = 2",
        &[plain("www", "A", 60, &[www]), plain("big", "TXT", 60, &txt)]
            .into_iter()
            .chain(watchers(&["port"]))
            .collect::<Vec<_>>(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_exactly_the_queries_sent_and_keep_them_across_reloads() {
    let endpoint = TcpEndpoint::start().await;
    let target = endpoint.addr.to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("edgewise.toml");
    std::fs::write(&path, config(&target, "192.0.2.10")).expect("write the config");
    let dns = load_ok(&path).dns.expect("a [dns] section");
    let mut server = DnsServer::bind(&dns).expect("bind on ephemeral ports");
    let reloader = server.reload_from(path.clone());
    let status_addrs = server.status_addrs().to_vec();
    let routing = Routing {
        server: serve(server, dir),
        status_addrs,
    };
    let status = routing.status();

    // Plain queries: no OPT record.
    let www = q("www.route.test.", RecordType::A).bytes();
    routing.send_udp(&www).await;
    routing.send_tcp(&www).await;
    routing.send_tcp(&www).await;
    let nxdomain = routing
        .send_udp(&q("nope.route.test.", RecordType::A).bytes())
        .await;
    assert_rcode(&nxdomain, 3);
    let refused = routing
        .send_udp(&q("www.elsewhere.test.", RecordType::A).bytes())
        .await;
    assert_rcode(&refused, 5);
    let truncated = routing
        .send_udp(&q("big.route.test.", RecordType::TXT).bytes())
        .await;
    assert!(
        truncated.flags & 0x0200 != 0,
        "TC=1 over UDP: {truncated:?}"
    );
    routing
        .send_udp(&q("www.route.test.", RecordType::Unknown(4000)).bytes())
        .await;
    // With EDNS, one with a Client Subnet option; the routed name, three times.
    routing.ask("port.route.test.", RecordType::A, None).await;
    routing
        .ask("port.route.test.", RecordType::A, Some("198.51.100.0/24"))
        .await;
    routing
        .send_tcp(&q("port.route.test.", RecordType::A).bytes())
        .await;

    let got = scrape(status).await;
    let zone = "route.test";
    let want: BTreeMap<String, f64> = [
        (queries(zone, "A", "NOERROR", "udp"), 3.0),
        (queries(zone, "A", "NOERROR", "tcp"), 3.0),
        (queries(zone, "A", "NXDOMAIN", "udp"), 1.0),
        (queries("", "A", "REFUSED", "udp"), 1.0),
        (queries(zone, "TXT", "NOERROR", "udp"), 1.0),
        (queries(zone, "OTHER", "NOERROR", "udp"), 1.0),
    ]
    .into_iter()
    .collect();
    assert_eq!(family(&got, "edgewise_dns_queries_total"), want);
    let routed_p = "edgewise_dns_routed_answers_total{zone=\"route.test\",name=\"port.route.test\",policy=\"failover\",set_id=\"p\"}";
    let routed_s = routed_p.replace("set_id=\"p\"", "set_id=\"s\"");
    assert_eq!(got[routed_p], 3.0, "the healthy primary, every time");
    assert_eq!(got[&routed_s], 0.0);
    assert_eq!(got["edgewise_dns_truncated_total"], 1.0);
    assert_eq!(got["edgewise_dns_edns_queries_total"], 2.0);
    assert_eq!(got["edgewise_dns_ecs_queries_total"], 1.0);
    assert_eq!(
        got["edgewise_dns_response_bytes_count{transport=\"udp\"}"],
        7.0
    );
    assert_eq!(
        got["edgewise_dns_response_bytes_count{transport=\"tcp\"}"],
        3.0
    );
    assert_eq!(
        got["edgewise_dns_response_bytes_bucket{transport=\"udp\",le=\"512\"}"], 7.0,
        "UDP without EDNS stays within 512 bytes"
    );
    assert_eq!(got["edgewise_dns_reloads_total{result=\"ok\"}"], 0.0);
    assert_eq!(got["edgewise_dns_last_reload_successful"], 1.0);
    assert_eq!(
        got["edgewise_dns_malformed_queries_total{reason=\"edns\"}"],
        0.0
    );

    // A reload keeps the counts; a refused one is counted as such.
    std::fs::write(&path, config(&target, "192.0.2.11")).expect("rewrite the config");
    reloader.reload().await.expect("the new config is valid");
    routing.send_udp(&www).await;
    std::fs::write(&path, "[dns]\nlisten = [").expect("break the config");
    reloader
        .reload()
        .await
        .expect_err("a broken config is refused");
    let got = scrape(status).await;
    assert_eq!(got[&queries(zone, "A", "NOERROR", "udp")], 4.0);
    assert_eq!(got[routed_p], 3.0);
    assert_eq!(got["edgewise_dns_reloads_total{result=\"ok\"}"], 1.0);
    assert_eq!(got["edgewise_dns_reloads_total{result=\"refused\"}"], 1.0);
    assert_eq!(got["edgewise_dns_last_reload_successful"], 0.0);
    let reloaded_at = got["edgewise_dns_last_reload_timestamp_seconds"];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        reloaded_at <= now && reloaded_at > now - 60.0,
        "{reloaded_at}"
    );

    // TCP: two connections held, a third from the same client refused (the cap is 2).
    wait_open(status, 0.0).await;
    let _held = [
        tcp_connect(routing.addr()).await,
        tcp_connect(routing.addr()).await,
    ];
    wait_open(status, 2.0).await;
    let mut refused = tcp_connect(routing.addr()).await;
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), refused.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "closed at once: {closed:?}"
    );
    let got = scrape(status).await;
    assert_eq!(
        got["edgewise_dns_tcp_connections_refused_total{reason=\"client_limit\"}"],
        1.0
    );
    assert_eq!(
        got["edgewise_dns_tcp_connections_refused_total{reason=\"full\"}"],
        0.0
    );
    assert_eq!(got["edgewise_dns_tcp_connections_accepted_total"], 5.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_each_probes_time_and_duration() {
    let endpoint = TcpEndpoint::start().await;
    let routing =
        crate::dns_routing::start_routing(&config(&endpoint.addr.to_string(), "192.0.2.10"), &[])
            .await;
    let labels = "{id=\"port\",type=\"tcp\"}";
    let got = eventually("a first probe", || async {
        let got = scrape(routing.status()).await;
        let probed = format!("edgewise_health_check_last_probe_timestamp_seconds{labels}");
        if got.contains_key(&probed) {
            Ok(got)
        } else {
            Err(format!("no {probed} in {got:#?}"))
        }
    })
    .await;
    assert_eq!(got[&format!("edgewise_health_check_healthy{labels}")], 1.0);
    let probes = got[&format!("edgewise_health_check_probe_duration_seconds_count{labels}")];
    assert!(probes >= 1.0, "{probes}");
    assert_eq!(
        got["edgewise_health_check_probe_duration_seconds_bucket{id=\"port\",type=\"tcp\",le=\"+Inf\"}"],
        probes
    );
    assert_eq!(
        got[&format!("edgewise_health_check_probes_ok_total{labels}")]
            + got[&format!("edgewise_health_check_probes_failed_total{labels}")],
        probes
    );
}

#[tokio::test]
async fn query_log_lines_written_show_on_metrics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("edgewise.toml");
    let text = route_config(
        "",
        "workers = 1\nquery_log = { to = \"query.log\" }",
        &[plain("www", "A", 60, &["192.0.2.10"])],
    );
    std::fs::write(&path, text).expect("write the config");
    let dns = load_ok(&path).dns.expect("a [dns] section");
    let server = DnsServer::bind(&dns).expect("bind on ephemeral ports");
    let status_addrs = server.status_addrs().to_vec();
    let routing = Routing {
        server: serve(server, dir),
        status_addrs,
    };
    let status = routing.status();
    for _ in 0..3 {
        routing
            .send_udp(&q("www.route.test.", RecordType::A).bytes())
            .await;
    }
    eventually("3 query log lines written", || async {
        let lines = family(&scrape(status).await, "edgewise_dns_query_log_lines_total");
        let written = "edgewise_dns_query_log_lines_total{result=\"written\"}";
        let dropped = "edgewise_dns_query_log_lines_total{result=\"dropped\"}";
        match (lines.get(written), lines.get(dropped)) {
            (Some(&3.0), Some(&0.0)) => Ok(()),
            _ => Err(format!("{lines:?}")),
        }
    })
    .await;
}
