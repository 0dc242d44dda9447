//! The README's first command, as a user runs it:
//!
//! ```sh
//! bash -c 'trap "kill 0" EXIT; target/release/edgewise-dns & target/release/edgewise-cdn & wait -n'
//! ```
//!
//! the same shell shape on the test's builds of both binaries, in a temporary folder that
//! holds a copy of `config/` with every fixed port of the example moved to a free loopback
//! port (health-check targets too), so a user's running servers and other tests never
//! collide with it. The binaries find `config/edgewise.toml` as they do from the repository
//! root; everything they write (`certs/`, `data/`) lands beside it in the temporary folder.
//!
//! Both servers answer real clients (dig, HTTPS verified against the certificate the CDN
//! wrote, signed Kinesis calls with curl), both take a SIGHUP after the zone file and the
//! CDN section were edited and keep running with the edits in force, and SIGTERM to the
//! process group stops both.

use std::fs::OpenOptions;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use rustix::process::{Pid, Signal};
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use serde_json::Value;

use crate::cdn_harness::{Resp, exchange, read_certs};
use crate::files::copy_dir;

const DNS_BIN: &str = env!("CARGO_BIN_EXE_edgewise-dns");
const CDN_BIN: &str = env!("CARGO_BIN_EXE_edgewise-cdn");
/// Bound on every wait: start, a reload showing, the health checks' first probes, the stop.
const LIMIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);
/// Starts retried with fresh ports when another process took one in between.
const ATTEMPTS: usize = 3;

/// The example's fixed ports, each moved to a free one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ports {
    pub(crate) dns: u16,
    pub(crate) status: u16,
    pub(crate) https: u16,
    http: u16,
    pub(crate) admin: u16,
    api: u16,
    api_tls: u16,
    /// `[::1]` can be bound here: the DNS listens there too, as the example does.
    v6: bool,
}

impl Ports {
    /// The example's port and its replacement, for every port the example listens on.
    fn moves(&self) -> [(u16, u16); 7] {
        [
            (5353, self.dns),
            (8053, self.status),
            (8443, self.https),
            (8080, self.http),
            (8081, self.admin),
            (4567, self.api),
            (4568, self.api_tls),
        ]
    }
}

/// Seven distinct ports free on 127.0.0.1 (TCP; the DNS one for UDP too, and on `[::1]`
/// when that exists), held together while picked so none repeats.
fn free_ports() -> Ports {
    let v6 = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).is_ok();
    let mut held = Vec::new();
    let mut pick = |dns: bool| loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free loopback port");
        let port = listener.local_addr().unwrap().port();
        held.push(listener);
        let usable = !dns
            || (UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
                && (!v6
                    || (UdpSocket::bind((Ipv6Addr::LOCALHOST, port)).is_ok()
                        && TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_ok())));
        if usable {
            return port;
        }
    };
    Ports {
        dns: pick(true),
        status: pick(false),
        https: pick(false),
        http: pick(false),
        admin: pick(false),
        api: pick(false),
        api_tls: pick(false),
        v6,
    }
}

/// The part of a config line that is not a comment (the example has no `#` in values).
fn code(line: &str) -> &str {
    line.split('#').next().unwrap_or("")
}

/// `text` with every `:<from>` not followed by a digit (`127.0.0.1:8443/` too) as `:<to>`.
fn move_port(text: &str, from: u16, to: u16) -> String {
    let from = format!(":{from}");
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(&from) {
        let after = &rest[at + from.len()..];
        out.push_str(&rest[..at]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(&from);
        } else {
            out.push_str(&format!(":{to}"));
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The example config with `ports` in place of its fixed ones. Panics when the example
/// names a loopback port this test does not know, so a new one cannot slip through.
fn rewrite(example: &str, ports: &Ports) -> String {
    let mut text = example.to_string();
    for (from, to) in ports.moves() {
        let moved = move_port(&text, from, to);
        assert_ne!(moved, text, "the example config names port {from}");
        text = moved;
    }
    if !ports.v6 {
        let v6 = format!(", \"[::1]:{}\"", ports.dns);
        assert!(text.contains(&v6), "the DNS listens on {v6}");
        text = text.replace(&v6, "");
    }
    // What may still be named: our ports, and the example's two origins (nothing listens
    // there; only /api would connect to them, and this test does not ask for it).
    let allowed: Vec<u16> = ports.moves().iter().map(|&(_, to)| to).collect();
    for line in text.lines() {
        for host in ["127.0.0.1:", "[::1]:", "localhost:"] {
            for rest in code(line).split(host).skip(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let port: u16 = digits.parse().unwrap_or_else(|_| panic!("a port: {line}"));
                assert!(
                    allowed.contains(&port) || [9000, 9001].contains(&port),
                    "the example config names a port this test does not move: {line}"
                );
            }
        }
    }
    text
}

// ------------------------------------------------------------------ the process group

/// What this test knows of a process: its state letter from /proc, None once it is gone.
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Gone, or a zombie waiting for its new parent (once the shells exit, the servers are
/// re-parented away from this test, which cannot wait for them).
fn exited(pid: i32) -> bool {
    matches!(state(pid), None | Some('Z'))
}

/// The processes of group `pgid` with their names (`/proc/<pid>/comm`).
fn group_members(pgid: i32) -> Vec<(i32, String)> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().map_while(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After "pid (comm) ": state, ppid, pgrp.
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .map_or(Vec::new(), |(_, rest)| rest.split(' ').collect());
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            members.push((pid, comm.trim().to_string()));
        }
    }
    members
}

fn signal(pid: i32, signal: Signal) {
    rustix::process::kill_process(Pid::from_raw(pid).unwrap(), signal)
        .unwrap_or_else(|e| panic!("kill -{signal:?} {pid}: {e}"));
}

/// A temp folder holding a copy of `config/` with its ports moved to free ones.
fn example_copy() -> (tempfile::TempDir, Ports) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&repo.join("config"), &dir.path().join("config"));
    let config = dir.path().join("config/edgewise.toml");
    let ports = free_ports();
    let example = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, rewrite(&example, &ports)).unwrap();
    (dir, ports)
}

/// Runs the README's command in `dir` (which holds `config/`), in a process group of its
/// own, both servers' output appended to `log`.
fn launch(dir: &Path, log: &Path) -> Child {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let command = format!("trap \"kill 0\" EXIT; {DNS_BIN} & {CDN_BIN} & wait -n");
    Command::new("bash")
        .args(["-c", &command])
        .current_dir(dir)
        // As from a terminal the user set nothing in: the default config path, info logs.
        .env_remove("EDGEWISE_CONFIG")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("run bash")
}

/// SIGKILLs the process group when dropped (a no-op once it has ended by itself).
struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = Pid::from_raw(self.0) {
            let _ = rustix::process::kill_process_group(group, Signal::KILL);
        }
    }
}

/// The README's command running in its own process group (so its `kill 0` reaches only
/// the shells and the servers, never this test); the group is SIGKILLed if the test fails.
pub(crate) struct Readme {
    bash: Child,
    /// The servers, found in the group by name once they run.
    dns: i32,
    cdn: i32,
    pub(crate) ports: Ports,
    log: PathBuf,
    stopped: bool,
    /// Dropped after the processes: it holds their config and data.
    dir: tempfile::TempDir,
}

impl Drop for Readme {
    fn drop(&mut self) {
        if !self.stopped {
            let group = Pid::from_raw(self.bash.id() as i32).unwrap();
            let _ = rustix::process::kill_process_group(group, Signal::KILL);
            let _ = self.bash.wait();
        }
    }
}

enum Start {
    Running(Readme),
    /// A port was taken between picking and binding: worth another try.
    PortTaken(String),
}

impl Readme {
    /// Copies the example, moves its ports, runs the command and waits (bounded) until
    /// both servers accept on every address.
    pub(crate) fn start() -> Readme {
        let mut taken = Vec::new();
        for _ in 0..ATTEMPTS {
            match Readme::try_start() {
                Start::Running(readme) => return readme,
                Start::PortTaken(log) => taken.push(log),
            }
        }
        panic!(
            "a port was taken {ATTEMPTS} times; the logs:\n{}",
            taken.join("\n---\n")
        );
    }

    fn try_start() -> Start {
        let (dir, ports) = example_copy();

        let log = dir.path().join("readme-first.log");
        let bash = launch(dir.path(), &log);
        let mut readme = Readme {
            bash,
            dns: 0,
            cdn: 0,
            ports,
            log,
            stopped: false,
            dir,
        };
        // Ready when every listener accepts (what the servers log about it is theirs to
        // word); the clients below then make sure it is them answering.
        let mut listeners: Vec<SocketAddr> = [
            ports.dns,
            ports.status,
            ports.https,
            ports.http,
            ports.admin,
            ports.api,
            ports.api_tls,
        ]
        .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .to_vec();
        if ports.v6 {
            listeners.push(SocketAddr::from((Ipv6Addr::LOCALHOST, ports.dns)));
        }
        let accepts = |addr: &SocketAddr| TcpStream::connect_timeout(addr, POLL * 20).is_ok();
        let deadline = Instant::now() + LIMIT;
        loop {
            let text = readme.log_text();
            if text.contains("in use") {
                return Start::PortTaken(text);
            }
            if listeners.iter().all(accepts) {
                break;
            }
            if let Some(status) = readme.bash.try_wait().unwrap() {
                readme.fail(&format!(
                    "the command ended ({status}) before both servers listened"
                ));
            }
            if Instant::now() > deadline {
                let waiting: Vec<_> = listeners.iter().filter(|&a| !accepts(a)).collect();
                readme.fail(&format!("{waiting:?} not accepting within {LIMIT:?}"));
            }
            std::thread::sleep(POLL);
        }
        // The servers: children of the shell, in the command's process group.
        let group = readme.bash.id() as i32;
        let members = group_members(group);
        let find = |name: &str| {
            let found: Vec<i32> = (members.iter())
                .filter(|(_, comm)| comm == name)
                .map(|&(pid, _)| pid)
                .collect();
            match found[..] {
                [pid] => Some(pid),
                _ => None,
            }
        };
        match (find("edgewise-dns"), find("edgewise-cdn")) {
            (Some(dns), Some(cdn)) => (readme.dns, readme.cdn) = (dns, cdn),
            _ => readme.fail(&format!("one of each server in group {group}: {members:?}")),
        }
        Start::Running(readme)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test with `why` and both servers' log (the group is killed by `Drop`).
    pub(crate) fn fail(&self, why: &str) -> ! {
        panic!("{why}\n--- the servers' log:\n{}", self.log_text());
    }

    /// Waits (bounded) for a log line holding every one of `needles`; returns it.
    fn log_line(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let text = self.log_text();
            if let Some(line) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_string();
            }
            if Instant::now() > deadline {
                self.fail(&format!("no log line with {needles:?} within {LIMIT:?}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Both servers and the shells still run.
    fn assert_running(&mut self, after: &str) {
        for (name, pid) in [("edgewise-dns", self.dns), ("edgewise-cdn", self.cdn)] {
            if exited(pid) {
                self.fail(&format!("{name} ({pid}) exited after {after}"));
            }
        }
        if let Some(status) = self.bash.try_wait().unwrap() {
            self.fail(&format!("the command ended ({status}) after {after}"));
        }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    // -------------------------------------------------------------- clients

    /// `dig @127.0.0.1 -p <dns> <args> +short`, one line per record (dig gives up in 2 s).
    fn dig(&self, args: &str) -> Vec<String> {
        self.dig_at("127.0.0.1", args)
    }

    fn dig_at(&self, server: &str, args: &str) -> Vec<String> {
        let output = Command::new("dig")
            .arg(format!("@{server}"))
            .args(["-p", &self.ports.dns.to_string()])
            .args(["+norec", "+time=2", "+tries=1", "+short"])
            .args(args.split_whitespace())
            .output()
            .expect("dig is installed (apt-get install bind9-dnsutils)");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() || stdout.contains(";;") {
            self.fail(&format!(
                "dig @{server} {args}: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let mut lines: Vec<String> = stdout.lines().map(str::to_string).collect();
        lines.sort();
        lines
    }

    /// `GET /` over HTTPS with `host`, the certificate verified for "localhost" against the
    /// development certificate the CDN wrote into the temporary `certs/`.
    fn https_get(&self, host: &str) -> Resp {
        let mut roots = RootCertStore::empty();
        for cert in read_certs(&self.path("certs/dev-cert.pem")) {
            roots.add(cert).expect("a usable certificate");
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.ports.https));
        let request = Request::builder()
            .uri("/")
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let answer = runtime.block_on(async {
            let exchange = async {
                let tcp = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("connect {addr}: {e}"))?;
                let name = ServerName::try_from("localhost").unwrap();
                let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS handshake: {e}"))?;
                exchange(stream, false, request).await
            };
            tokio::time::timeout(Duration::from_secs(10), exchange)
                .await
                .unwrap_or_else(|_| Err("no answer within 10 s".to_string()))
        });
        answer.unwrap_or_else(|e| self.fail(&format!("GET / (Host {host}): {e}")))
    }

    /// `GET /` in the clear: the status and where it redirects to.
    fn http_redirect(&self) -> String {
        let url = format!("http://localhost:{}/", self.ports.http);
        let output = Command::new("curl")
            .args(["-s", "--max-time", "10", "-o", "/dev/null"])
            .args(["-w", "%{http_code} %{redirect_url}", &url])
            .output()
            .expect("curl is installed");
        if !output.status.success() {
            self.fail(&format!("curl {url}: {output:?}"));
        }
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A Kinesis call signed with the example's access key by curl, over HTTP or HTTPS.
    pub(crate) fn kinesis(&self, tls: bool, operation: &str, body: &str) -> Value {
        let url = if tls {
            format!("https://localhost:{}/", self.ports.api_tls)
        } else {
            format!("http://127.0.0.1:{}/", self.ports.api)
        };
        let cacert = self.path("certs/dev-cert.pem");
        let output = Command::new("curl")
            .args(["-s", "--max-time", "10", "--cacert"])
            .arg(&cacert)
            .args(["--aws-sigv4", "aws:amz:us-east-1:kinesis"])
            .args(["--user", "AKIDEDGEWISE:change-me-too"])
            .args(["-H", "Content-Type: application/x-amz-json-1.1"])
            .args(["-H", &format!("X-Amz-Target: Kinesis_20131202.{operation}")])
            .args(["--data-binary", body, &url])
            .output()
            .expect("curl is installed");
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            self.fail(&format!("curl {url} {operation}: {output:?}"));
        }
        serde_json::from_str(&text)
            .unwrap_or_else(|e| self.fail(&format!("{operation} at {url}: {e}: {text}")))
    }

    /// Waits (bounded) until the example's analytics applications, `names`, all run.
    fn applications_run(&self, names: &[&str]) {
        let url = format!("http://127.0.0.1:{}/analytics/applications", self.ports.api);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let output = Command::new("curl")
                .args(["-s", "--max-time", "10"])
                .args(["--aws-sigv4", "aws:amz:us-east-1:kinesis"])
                .args(["--user", "AKIDEDGEWISE:change-me-too", &url])
                .output()
                .expect("curl is installed");
            let text = String::from_utf8_lossy(&output.stdout);
            let listed: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| self.fail(&format!("{url}: {e}: {text}")));
            let apps = listed["applications"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let found: Vec<&str> = apps.iter().filter_map(|a| a["name"].as_str()).collect();
            let running = apps.iter().all(|a| a["status"] == "running");
            if found == names && running {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("the example's applications should run: {listed}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn stream_names(&self, tls: bool) -> Vec<String> {
        let listed = self.kinesis(tls, "ListStreams", "{}");
        let names = listed["StreamNames"].as_array();
        let mut names: Vec<String> = names
            .unwrap_or_else(|| self.fail(&format!("ListStreams: {listed}")))
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    /// The DNS server's health checks (`GET /health-checks` on its status port).
    fn health_checks(&self) -> Vec<Value> {
        let url = format!("http://127.0.0.1:{}/health-checks", self.ports.status);
        let output = Command::new("curl")
            .args(["-sf", "--max-time", "5", &url])
            .output()
            .expect("curl is installed");
        let text = String::from_utf8_lossy(&output.stdout);
        let rows: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| self.fail(&format!("GET {url}: {e}: {text}")));
        rows.as_array().cloned().unwrap_or_default()
    }
}

/// Replaces each `from` (which `path` must hold exactly once) with its `to`.
fn edit(path: &Path, edits: &[(&str, &str)]) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut edited = text.clone();
    for (from, to) in edits {
        assert_eq!(
            edited.matches(from).count(),
            1,
            "{} has {from:?} once",
            path.display()
        );
        edited = edited.replace(from, to);
    }
    std::fs::write(path, edited).unwrap();
}

#[test]
fn sighup_reloads_both_servers_started_by_the_readme_first_command() {
    let started = Instant::now();
    let mut readme = Readme::start();
    let ports = readme.ports;

    // 1. Both serve: DNS to dig, the CDN over HTTPS with the certificate it just wrote into
    // the temporary folder, the stream API over HTTP and HTTPS with signed calls.
    assert_eq!(
        readme.dig("www.home.example A"),
        ["192.168.1.10", "192.168.1.11"]
    );
    assert_eq!(readme.dig("printer.home.example A"), ["192.168.1.70"]);
    if ports.v6 {
        assert_eq!(
            readme.dig_at("::1", "printer.home.example A"),
            ["192.168.1.70"]
        );
    }
    let index = std::fs::read_to_string(readme.path("config/www/index.html")).unwrap();
    let page = readme.https_get("localhost");
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.text(), index);
    let unknown = readme.https_get("reloaded.test");
    assert_ne!(unknown.status, 200, "not a distribution's host yet");
    let redirect = format!("301 https://localhost:{}/", ports.https);
    assert_eq!(readme.http_redirect(), redirect, "redirect-to-https");
    let applications = [
        "error-rate-alert",
        "p95-per-distribution",
        "requests-per-minute",
        "top-paths",
    ];
    readme.applications_run(&applications);
    // The configured streams, and each application's stream for records that do not fit.
    let mut streams: Vec<String> = ["cdn-alerts", "cdn-logs", "cdn-stats", "events"]
        .into_iter()
        .map(String::from)
        .chain(applications.iter().map(|a| format!("{a}_errors")))
        .collect();
    streams.sort();
    assert_eq!(readme.stream_names(false), streams);
    assert_eq!(readme.stream_names(true), streams);
    for written in ["certs/dev-key.pem", "data/streams", "data/cdn-bodies"] {
        assert!(
            readme.path(written).exists(),
            "{written} is written in the temporary folder"
        );
    }

    // 2. Edit the zone file (an address, and the serial) and the CDN section (a host for
    // the distribution), then SIGHUP each server. The zone file holds the SOA, so its serial
    // is the one to bump.
    edit(
        &readme.path("config/zones/home.example.zone"),
        &[
            (
                "printer           A  192.168.1.70",
                "printer           A  192.168.1.71",
            ),
            ("2026112501 ; serial", "2026112502 ; serial"),
        ],
    );
    edit(
        &readme.path("config/edgewise.toml"),
        &[(
            "hosts = [\"media.home.example\",",
            "hosts = [\"reloaded.test\", \"media.home.example\",",
        )],
    );
    signal(readme.dns, Signal::HUP);
    signal(readme.cdn, Signal::HUP);

    // 3. Both say they reloaded, still run, and serve the edits.
    // edgewise-dns: "reloaded <path>: zones: changed <zone> (serial ..)"; edgewise-cdn:
    // "[CDN] config reloaded from <path> .. changed=[<distributions>]".
    readme.log_line(&[
        "reloaded config/edgewise.toml: zones:",
        "changed home.example. (serial 2026112502,",
    ]);
    readme.log_line(&["reloaded from config/edgewise.toml", "changed=[\"media\"]"]);
    readme.assert_running("SIGHUP");
    assert_eq!(readme.dig("printer.home.example A"), ["192.168.1.71"]);
    let soa = readme.dig("home.example SOA");
    assert!(
        soa.len() == 1 && soa[0].contains(" 2026112502 "),
        "the bumped serial: {soa:?}"
    );
    assert_eq!(
        readme.dig("www.home.example A"),
        ["192.168.1.10", "192.168.1.11"]
    );
    let added = readme.https_get("reloaded.test");
    assert_eq!(added.status, 200, "the added host: {}", added.text());
    assert_eq!(added.text(), index);
    assert_eq!(readme.https_get("localhost").status, 200);
    assert_eq!(readme.http_redirect(), redirect);
    assert_eq!(readme.stream_names(false), streams);

    // The DNS server's checks probe this CDN: their targets moved with its ports, and
    // web-blue (every 10 s, the first within one interval) finds the CDN's page. web-green
    // probes on the default 30 s interval: too long to wait for here.
    let (blue, green) = (
        format!("https://127.0.0.1:{}/", ports.https),
        format!("127.0.0.1:{}", ports.http),
    );
    let deadline = Instant::now() + LIMIT;
    loop {
        let rows = readme.health_checks();
        let row = |id: &str| rows.iter().find(|r| r["id"] == id).cloned();
        let (Some(web_blue), Some(web_green)) = (row("web-blue"), row("web-green")) else {
            readme.fail(&format!("web-blue and web-green in {rows:?}"));
        };
        assert_eq!(web_blue["target"], blue.as_str(), "{rows:?}");
        assert_eq!(web_green["target"], green.as_str(), "{rows:?}");
        if web_blue["last_result"] == "success" {
            break;
        }
        if Instant::now() > deadline {
            readme.fail(&format!("web-blue passing within {LIMIT:?}: {rows:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    readme.assert_running("the health checks");

    // 4. SIGTERM to the process group (as Ctrl-C's SIGINT reaches the terminal's group)
    // stops the shells and both servers, which say so and let go of their ports.
    let group = Pid::from_raw(readme.bash.id() as i32).unwrap();
    rustix::process::kill_process_group(group, Signal::TERM).expect("kill -TERM the group");
    let deadline = Instant::now() + LIMIT;
    while readme.bash.try_wait().unwrap().is_none() || !exited(readme.dns) || !exited(readme.cdn) {
        if Instant::now() > deadline {
            readme.fail(&format!("still running {LIMIT:?} after SIGTERM"));
        }
        std::thread::sleep(POLL);
    }
    readme.stopped = true;
    let log = readme.log_text();
    assert!(
        log.matches("SIGTERM received, shutting down").count() >= 2,
        "both servers shut down on SIGTERM:\n{log}"
    );
    assert!(
        !log.contains("panicked") && !log.contains(" ERROR "),
        "no errors in the servers' log:\n{log}"
    );
    assert!(
        !log.contains("still queued"),
        "the CDN's real-time log lines were all written before it stopped:\n{log}"
    );
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, ports.https)).is_err(),
        "the CDN's HTTPS port is closed"
    );
    eprintln!("readme_first: {:?}", started.elapsed());
}

#[test]
fn a_server_that_cannot_start_stops_the_other_one_too() {
    let (dir, ports) = example_copy();
    // As avahi holds 5353 on many desktops.
    let _held = UdpSocket::bind((Ipv4Addr::LOCALHOST, ports.dns)).expect("hold the DNS port");
    let log = dir.path().join("readme-first.log");
    let mut bash = launch(dir.path(), &log);
    let group = bash.id() as i32;
    let _guard = GroupGuard(group);
    let deadline = Instant::now() + LIMIT;
    while bash.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the command still runs {LIMIT:?} after edgewise-dns failed:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(POLL);
    }
    while !group_members(group).is_empty() {
        assert!(
            Instant::now() < deadline,
            "still running after the command ended: {:?}",
            group_members(group)
        );
        std::thread::sleep(POLL);
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let reason = format!("dns.listen[0]: cannot bind 127.0.0.1:{}", ports.dns);
    assert!(text.contains(&reason), "{text}");
}
