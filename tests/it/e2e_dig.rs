//! End to end as a user would: the real `edgewise-dns` binary on the shipped example config
//! (only the port changed to a free one), queried with `dig`.

use crate::files::copy_dir;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The example server, stopped with SIGTERM when dropped.
pub struct ExampleServer {
    pub child: Child,
    pub port: u16,
    pub status_port: u16,
    /// The copy of `config/` it serves.
    pub dir: tempfile::TempDir,
    /// The "serving zone" lines it logged at start.
    pub zones_logged: Vec<String>,
}

impl ExampleServer {
    pub fn start() -> ExampleServer {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().expect("temp dir");
        copy_dir(&root.join("config"), dir.path());
        let config = dir.path().join("edgewise.toml");
        let text = std::fs::read_to_string(&config).expect("example config");
        let listen = r#"listen = ["127.0.0.1:5353", "[::1]:5353"]"#;
        assert!(
            text.contains(listen),
            "the example config listens on {listen}"
        );
        let status = r#"status_listen = ["127.0.0.1:8053"]"#;
        assert!(
            text.contains(status),
            "the example config serves status on {status}"
        );
        let text = text
            .replacen(listen, r#"listen = ["127.0.0.1:0"]"#, 1)
            .replacen(status, r#"status_listen = ["127.0.0.1:0"]"#, 1);
        std::fs::write(&config, text).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgewise-dns"))
            .arg("--config")
            .arg(&config)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start edgewise-dns");
        let (port, status_port, zones_logged) =
            listening_ports(child.stderr.take().expect("stderr piped"));
        ExampleServer {
            child,
            port,
            status_port,
            dir,
            zones_logged,
        }
    }

    fn dig(&self, args: &str) -> String {
        let output = Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &self.port.to_string(),
                "+norec",
                "+time=2",
                "+tries=1",
            ])
            .args(args.split_whitespace())
            .output()
            .expect("dig is installed (apt-get install bind9-dnsutils)");
        assert!(
            output.status.success(),
            "dig {args} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("dig prints text")
    }

    /// The answer section only, one record per line with whitespace normalised.
    pub fn answer(&self, args: &str) -> Vec<String> {
        self.section(args, "answer")
    }

    /// One section (`answer`, `authority`, `additional`), records normalised as in `answer`.
    fn section(&self, args: &str, section: &str) -> Vec<String> {
        self.dig(&format!("{args} +noall +{section}"))
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty())
            .collect()
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Reads the server's log until it says where UDP and the status listener are bound; keeps
/// draining it afterwards.
/// The UDP and status ports from the start-up log, and the zones it named before them.
fn listening_ports(stderr: ChildStderr) -> (u16, u16, Vec<String>) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(zone) = line.split("serving zone ").nth(1) {
                let _ = tx.send(("zone", zone.trim().to_string()));
            }
            for kind in ["udp+tcp", "http"] {
                if let Some(addr) = line.split(&format!("listening on {kind} ")).nth(1) {
                    let _ = tx.send((kind, addr.trim().to_string()));
                }
            }
        }
    });
    let (mut udp, mut http, mut zones) = (None, None, Vec::new());
    while udp.is_none() || http.is_none() {
        let (kind, addr) = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server logs 'listening on udp+tcp/http ADDR'");
        if kind == "zone" {
            zones.push(addr);
            continue;
        }
        let port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("address has a port");
        if kind == "udp+tcp" {
            udp = Some(port)
        } else {
            http = Some(port)
        }
    }
    (udp.expect("udp port"), http.expect("http port"), zones)
}

#[test]
fn the_start_names_each_zone_with_its_serial_and_records() {
    let server = ExampleServer::start();
    assert_eq!(server.zones_logged.len(), 2, "{:?}", server.zones_logged);
    let home = &server.zones_logged[0];
    assert!(
        home.starts_with("home.example. (serial ") && home.ends_with(" records)"),
        "{home}"
    );
}

#[test]
fn dig_gets_the_example_zone_answers() {
    let server = ExampleServer::start();
    assert_eq!(
        server.answer("www.home.example A"),
        [
            "www.home.example. 60 IN A 192.168.1.10",
            "www.home.example. 60 IN A 192.168.1.11"
        ]
    );
    assert_eq!(
        server.answer("home.example MX"),
        [
            "home.example. 300 IN MX 10 mail.home.example.",
            "home.example. 300 IN MX 20 backup-mail.home.example."
        ]
    );
    assert_eq!(
        server.answer("home.example SPF"),
        [r#"home.example. 300 IN SPF "v=spf1 mx -all""#]
    );
    assert_eq!(
        server.answer("home.example CAA"),
        [r#"home.example. 300 IN CAA 0 issue "letsencrypt.org""#]
    );
    assert_eq!(
        server.answer("home.example NAPTR"),
        [r#"home.example. 300 IN NAPTR 100 10 "U" "E2U+sip" "!^.*$!sip:info@home.example!" ."#]
    );
    assert_eq!(
        server.answer("_sip._tcp.home.example SRV"),
        ["_sip._tcp.home.example. 300 IN SRV 10 60 5060 sip.home.example."]
    );
    assert_eq!(
        server.answer("tv.home.example A"),
        [
            "tv.home.example. 3600 IN CNAME printer.home.example.",
            "printer.home.example. 3600 IN A 192.168.1.70"
        ]
    );
    assert_eq!(
        server.answer("anything.dev.home.example A"),
        ["anything.dev.home.example. 60 IN A 192.168.1.80"]
    );
    assert_eq!(
        server.answer("gateway.home.example TYPE65280"),
        [r"gateway.home.example. 3600 IN TYPE65280 \# 4 C0A80101"]
    );
    assert_eq!(
        server.answer("1.1.168.192.in-addr.arpa PTR"),
        ["1.1.168.192.in-addr.arpa. 3600 IN PTR gateway.home.example."]
    );
    assert_eq!(
        server.answer("-x 192.168.1.10"),
        ["10.1.168.192.in-addr.arpa. 3600 IN PTR www.home.example."]
    );
    assert_eq!(
        server.answer("version.bind CH TXT"),
        [r#"version.bind. 0 CH TXT "edgewise""#]
    );
}

#[test]
fn dig_sees_negative_answers_referrals_and_flags() {
    let server = ExampleServer::start();
    let nx = server.dig("nope.home.example A");
    assert!(
        nx.contains("status: NXDOMAIN") && nx.contains("flags: qr aa;"),
        "{nx}"
    );
    assert_eq!(
        server.section("nope.home.example A", "authority"),
        [
            "home.example. 300 IN SOA ns1.home.example. hostmaster.home.example. 2026112501 3600 900 1209600 300"
        ]
    );
    let nodata = server.dig("www.home.example MX");
    assert!(
        nodata.contains("status: NOERROR") && nodata.contains("ANSWER: 0, AUTHORITY: 1"),
        "{nodata}"
    );
    let referral = server.dig("host.lab.home.example A");
    assert!(
        referral.contains("flags: qr;")
            && referral.contains("ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 2"),
        "{referral}"
    );
    assert_eq!(
        server.section("host.lab.home.example A", "additional"),
        ["ns.lab.home.example. 3600 IN A 192.168.2.2"]
    );
    let refused = server.dig("example.org A");
    assert!(refused.contains("status: REFUSED"), "{refused}");
    let tcp = server.answer("+tcp www.home.example AAAA");
    assert_eq!(tcp, ["www.home.example. 60 IN AAAA fd00::10"]);
    let any = server.answer("home.example ANY");
    assert_eq!(any.len(), 2, "ANY answers one RRset (RFC 8482): {any:?}");
}

#[test]
fn dig_sees_routing_and_curl_sees_health_checks() {
    let server = ExampleServer::start();
    assert_eq!(
        server.answer("shop.home.example A"),
        ["shop.home.example. 30 IN A 198.51.100.11"],
        "loopback is mapped to Europe"
    );
    let korea = server.dig("shop.home.example A +subnet=192.168.1.0/24");
    assert!(
        korea.contains("CLIENT-SUBNET: 192.168.1.0/24/16"),
        "ECS echoed with the /16 scope of the LAN network:\n{korea}"
    );
    assert!(korea.contains("198.51.100.10"), "{korea}");
    assert_eq!(
        server.answer("nas.home.example A +subnet=192.168.7.0/24"),
        ["nas.home.example. 30 IN A 192.168.1.40"]
    );
    assert_eq!(
        server.answer("nas.home.example A"),
        ["nas.home.example. 30 IN A 203.0.113.40"]
    );
    assert_eq!(
        server.answer("cdn.home.example A +subnet=192.168.0.0/16"),
        ["cdn.home.example. 30 IN A 198.51.100.1"],
        "Seoul is nearest"
    );
    assert_eq!(
        server.answer("edge.home.example A"),
        ["edge.home.example. 60 IN A 127.0.0.1"],
        "the alias to the one edge of cdn-edges"
    );
    let status = Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:{}/health-checks", server.status_port),
        ])
        .output()
        .expect("curl is installed");
    let body = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "GET /health-checks: {body}");
    for id in [
        "\"web-blue\"",
        "\"web-green\"",
        "\"both-webs\"",
        "\"edge-local\"",
    ] {
        assert!(body.contains(id), "{id} in {body}");
    }
}
