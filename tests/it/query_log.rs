//! `[dns] query_log`: an in-process server writing its query log to a file, read back and
//! parsed line by line, in text and JSON; `sample = 0.0` writes nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::dns_routing::{ecs, ecs_query};
use crate::harness::{self, TestServer, q, udp_exchange};

/// The zone every test queries, and its query log (`{log}`: the inline table's keys).
fn config(log: &str) -> String {
    format!(
        r#"
[dns]
query_log = {{ {log} }}

[[dns.zones]]
name = "home.example"
records = [
  {{ name = "@", type = "NS", values = ["ns1.home.example."] }},
  {{ name = "ns1", type = "A", values = ["192.0.2.53"] }},
  {{ name = "www", type = "A", values = ["192.0.2.1", "192.0.2.2"] }},
]
"#
    )
}

/// Waits (bounded, without blocking the test's runtime) until `path` holds `count` lines,
/// and returns them.
pub async fn lines(path: &Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= count {
            assert_eq!(lines.len(), count, "{text}");
            assert!(text.ends_with('\n'), "whole lines only: {text:?}");
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} lines in {}:\n{text}",
            lines.len(),
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A hickory query over UDP and one over TCP for www, an NXDOMAIN, and an ECS query.
async fn traffic(server: &TestServer) {
    server.udp("www.home.example.", RecordType::A).await;
    server.tcp("www.home.example.", RecordType::A).await;
    server.udp("nope.home.example.", RecordType::AAAA).await;
    let with_ecs = ecs_query("www.home.example.", RecordType::A, &ecs("198.51.100.0/24"));
    udp_exchange(server.addr(), &with_ecs)
        .await
        .expect("a reply to the ECS query");
}

#[tokio::test]
async fn text_lines_carry_every_field_of_each_answered_query() {
    let server = harness::start(&config(r#"to = "logs/query.log""#), &[]).await;
    traffic(&server).await;
    // Malformed packets are never logged one by one.
    udp_exchange(server.addr(), &[0x12, 0x34, 0x01]).await;
    let lines = lines(&server.dir.path().join("logs/query.log"), 4).await;
    let fields: Vec<Vec<&str>> = lines.iter().map(|l| l.split(' ').collect()).collect();
    for line in &fields {
        assert_eq!(line.len(), 13, "{line:?}");
        let (secs, micros) = line[0].split_once('.').expect("seconds.micros");
        assert!(secs.parse::<u64>().unwrap() > 1_700_000_000 && micros.len() == 6);
        let client: std::net::SocketAddr = line[1].parse().unwrap();
        assert_eq!(client.ip().to_string(), "127.0.0.1");
        assert!(line[12].parse::<u64>().is_ok(), "latency in µs: {line:?}");
        assert!(
            line[8].parse::<u16>().unwrap() > 12,
            "response size: {line:?}"
        );
    }
    let tail = |line: &Vec<&str>| line[2..12].join(" ");
    assert_eq!(
        tail(&fields[0]),
        "udp www.home.example. A IN NOERROR 2 ".to_string() + fields[0][8] + " AA - home.example."
    );
    assert_eq!(fields[1][2], "tcp");
    assert_eq!(
        tail(&fields[2]),
        "udp nope.home.example. AAAA IN NXDOMAIN 0 ".to_string()
            + fields[2][8]
            + " AA - home.example."
    );
    assert_eq!(
        fields[3][10], "198.51.100.0/24",
        "the ECS subnet: {:?}",
        fields[3]
    );
}

#[tokio::test]
async fn json_lines_are_one_object_each() {
    let server = harness::start(
        &config(r#"to = "query.json", format = "json", sample = 1.0"#),
        &[],
    )
    .await;
    traffic(&server).await;
    let refused = q("elsewhere.test.", RecordType::A).bytes();
    udp_exchange(server.addr(), &refused)
        .await
        .expect("REFUSED");
    let lines = lines(&server.dir.path().join("query.json"), 5).await;
    let objects: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let www = &objects[0];
    assert_eq!(www["transport"], "udp");
    assert_eq!(www["qname"], "www.home.example.");
    assert_eq!(www["qtype"], "A");
    assert_eq!(www["qclass"], "IN");
    assert_eq!(www["rcode"], "NOERROR");
    assert_eq!(www["answers"], 2);
    assert_eq!(www["aa"], true);
    assert_eq!(www["tc"], false);
    assert_eq!(www["zone"], "home.example.");
    assert_eq!(www["ecs"], serde_json::Value::Null);
    assert!(www["size"].as_u64().unwrap() > 12);
    assert!(www["latency_us"].is_u64() && www["time"].as_f64().unwrap() > 1.7e9);
    assert!(www["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(objects[1]["transport"], "tcp");
    assert_eq!(objects[2]["rcode"], "NXDOMAIN");
    assert_eq!(objects[3]["ecs"], "198.51.100.0/24");
    assert_eq!(objects[4]["rcode"], "REFUSED");
    assert_eq!(objects[4]["aa"], false);
    assert_eq!(objects[4]["zone"], serde_json::Value::Null);
}

#[tokio::test]
async fn sample_zero_writes_nothing() {
    let server = harness::start(&config(r#"to = "query.log", sample = 0.0"#), &[]).await;
    for _ in 0..20 {
        server.udp("www.home.example.", RecordType::A).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = std::fs::read_to_string(server.dir.path().join("query.log")).unwrap_or_default();
    assert_eq!(text, "");
}

#[test]
fn check_names_the_key_of_every_bad_value() {
    let bad = config(r#"to = "", format = "yaml", sample = 1.5"#);
    let (_dir, path) = harness::write_files(&bad, &[]);
    let errors = edgewise::config::Config::load(&path)
        .unwrap_err()
        .to_string();
    for expected in [
        r#"dns.query_log.format: "yaml" is not a log format; expected "text" or "json""#,
        "dns.query_log.sample: 1.5 is out of range (expected 0.0 to 1.0",
        "dns.query_log.to: must not be empty",
    ] {
        assert!(errors.contains(expected), "{expected}\nin\n{errors}");
    }
    assert!(
        errors.contains("edgewise.toml:3:"),
        "file:line:col: {errors}"
    );
    let unknown = config(r#"to = "stderr", rate = 2"#);
    let (_dir, path) = harness::write_files(&unknown, &[]);
    let errors = edgewise::config::Config::load(&path)
        .unwrap_err()
        .to_string();
    assert!(errors.contains("unknown key `rate`"), "{errors}");
}

#[test]
fn off_is_no_log_and_a_relative_path_is_beside_the_config() {
    let (dir, path) = harness::write_files(&config(r#"to = "off", format = "json""#), &[]);
    let dns = harness::load_ok(&path).dns.unwrap();
    assert_eq!(dns.query_log, None);
    std::fs::write(&path, config(r#"to = "logs/q.log", sample = 1"#)).unwrap();
    let dns = harness::load_ok(&path).dns.unwrap();
    let log = dns.query_log.expect("on");
    assert_eq!(
        log.to,
        edgewise::config::logs::LogTarget::File(dir.path().join("logs/q.log"))
    );
    assert_eq!(log.sample, 1.0);
}
