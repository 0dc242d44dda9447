//! Interop with the secondaries users run (Debian packages `nsd`, `knot`, `bind9`): each is
//! started unprivileged on a loopback port with everything it writes in a temporary folder,
//! transfers a zone from an in-process edgewise-dns with TSIG, is NOTIFYed after a reload that
//! changes the zone (whole zone again) and after a dynamic update (an incremental IXFR from
//! the journal), and must each time answer every query of the zone as edgewise-dns does,
//! asked of both with `dig +norec`.
//!
//! The zone's SOA refresh is an hour, so only the NOTIFY can explain a secondary catching up
//! within the test's wait.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use edgewise::dns::DnsServer;
use edgewise::dns::reload::Reloader;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::time::{Instant, sleep};

use crate::background::Background;
use crate::harness::{TestServer, load_ok, serve, write_files};

const ZONE: &str = "home.example";
const KEY: &str = "xfr";
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";
const FIRST_SERIAL: u32 = 2026112501;
/// The longest a secondary may take to start and transfer, or to catch up after a NOTIFY.
const TRANSFER_WAIT: Duration = Duration::from_secs(20);

/// The zone as a file: many record types, a wildcard, a CNAME in and out of the zone, a
/// delegation with glue, a record of an unknown type. `printer` is the record the second
/// version changes.
fn zone_file(serial: u32, printer: &str) -> String {
    format!(
        r#"$ORIGIN home.example.
$TTL 3600
@   300 IN SOA ns1.home.example. hostmaster.home.example. {serial} 3600 900 1209600 300
@ NS ns1
@ NS ns2
@ MX 10 mail
@ MX 20 backup-mail
@ TXT "v=spf1 mx -all"
@ CAA 0 issue "letsencrypt.org"
@ CAA 128 iodef "mailto:security@home.example"
@ NAPTR 10 100 "S" "SIP+D2U" "" _sip._udp
ns1 A 192.168.1.2
ns1 AAAA fd00::2
ns2 A 192.168.1.3
mail 300 A 192.168.1.25
backup-mail 300 A 192.168.1.26
sip A 192.168.1.60
sip AAAA fd00::60
_sip._udp SRV 10 60 5060 sip
_sip._tcp SRV 10 20 5060 sip
printer A {printer}
tv CNAME printer
files CNAME nas.example.net.
notes TXT "two" "strings; with spaces"
*.dev 60 A 192.168.1.80
api.dev 60 A 192.168.1.81
lab NS ns.lab
ns.lab A 192.168.2.2
gateway A 192.168.1.1
gateway TYPE65280 \# 4 c0a80101
"#
    )
}

/// edgewise-dns's config: the zone above plus two routed names (a weighted pair, and a CIDR
/// pair that answers loopback clients otherwise than the default the secondary gets),
/// transfers for the key only, ACME-style updates with another key, NOTIFY signed with the
/// transfer key to the secondary's port.
fn config(notify_port: u16) -> String {
    format!(
        r#"
[dns]
listen = ["127.0.0.1:0"]
workers = 1
data_dir = "data"

[[dns.cidr_collections]]
id = "net"
locations = {{ here = ["127.0.0.0/8"] }}

[[dns.tsig_keys]]
name = "{KEY}"
secret = "{SECRET}"
[[dns.tsig_keys]]
name = "acme"
secret = "{SECRET}"

[[dns.zones]]
name = "{ZONE}"
file = "home.example.zone"
allow_transfer = ["key:{KEY}"]
notify = ["127.0.0.1:{notify_port} key:{KEY}"]
allow_update = [{{ key = "acme", names = ["_acme-challenge"], types = ["TXT"] }}]
records = [
  {{ name = "app", type = "A", ttl = 60, set_id = "blue", weight = 90, values = ["192.168.1.10"] }},
  {{ name = "app", type = "A", ttl = 60, set_id = "green", weight = 10, values = ["192.168.1.11"] }},
  {{ name = "nas", type = "A", set_id = "inside", cidr = {{ collection = "net", location = "here" }}, values = ["192.168.1.40"] }},
  {{ name = "nas", type = "A", set_id = "outside", cidr = {{ collection = "net", location = "*" }}, values = ["203.0.113.40"] }},
]
"#
    )
}

/// Names whose answers come from routing: a secondary serves their transfer set instead.
const ROUTED: [(&str, &str); 2] = [("app.home.example.", "A"), ("nas.home.example.", "A")];

/// Queries beyond the names and types the zone has: NXDOMAIN, NODATA, the wildcard, the
/// CNAMEs, below and at the delegation, an empty non-terminal.
const EXTRA_QUERIES: [(&str, &str); 16] = [
    ("nope.home.example.", "A"),
    ("deep.nope.home.example.", "AAAA"),
    ("mail.home.example.", "AAAA"),
    ("home.example.", "SRV"),
    ("dev.home.example.", "A"),
    ("foo.dev.home.example.", "A"),
    ("a.b.dev.home.example.", "A"),
    ("foo.dev.home.example.", "AAAA"),
    ("api.dev.home.example.", "TXT"),
    ("tv.home.example.", "A"),
    ("tv.home.example.", "AAAA"),
    ("files.home.example.", "A"),
    ("host.lab.home.example.", "A"),
    ("deep.host.lab.home.example.", "MX"),
    ("lab.home.example.", "DS"),
    ("app.home.example.", "AAAA"),
];

// ------------------------------------------------------------------ edgewise-dns

/// The in-process primary and the reloader that re-reads its config and zone file.
struct Primary {
    server: TestServer,
    reloader: Reloader,
    zone_path: PathBuf,
}

impl Primary {
    async fn start(notify_port: u16) -> Primary {
        let (dir, path) = write_files(
            &config(notify_port),
            &[(
                "home.example.zone",
                &zone_file(FIRST_SERIAL, "192.168.1.70"),
            )],
        );
        let dns = load_ok(&path).dns.expect("a [dns] section");
        let mut server = DnsServer::bind(&dns).expect("bind on an ephemeral port");
        let reloader = server.reload_from(path.clone());
        Primary {
            server: serve(server, dir),
            reloader,
            zone_path: path.with_file_name("home.example.zone"),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Adds a TXT record with `nsupdate`, as an ACME client's DNS-01 hook does.
    async fn update(&self, token: &str) {
        let mut child = Command::new("nsupdate")
            .args(["-y", &format!("hmac-sha256:acme:{SECRET}"), "-t", "5"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nsupdate is installed (bind9-dnsutils)");
        let script = format!(
            "server 127.0.0.1 {}\nzone {ZONE}\nupdate add _acme-challenge.{ZONE}. 60 TXT \"{token}\"\nsend\n",
            self.addr().port()
        );
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(script.as_bytes()).await.expect("write");
        drop(stdin);
        let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
            .await
            .expect("nsupdate finishes")
            .expect("nsupdate runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Rewrites the zone file and reloads, as an operator would with SIGHUP.
    async fn reload_with(&self, zone: &str) {
        std::fs::write(&self.zone_path, zone).expect("rewrite the zone file");
        let summary = self.reloader.reload().await.expect("the reload succeeds");
        assert!(format!("{summary:?}").contains(ZONE), "{summary:?}");
    }
}

// ------------------------------------------------------------------ the secondaries

#[derive(Debug, Clone, Copy, PartialEq)]
enum Daemon {
    Nsd,
    Knot,
    Bind,
}

/// How a secondary's additional section may differ from edgewise-dns's.
#[derive(Clone, Copy, PartialEq)]
enum Additional {
    /// The same records (Knot adds what edgewise-dns adds).
    Same,
    /// `minimal-responses`: glue in referrals as edgewise-dns has it, otherwise no more than
    /// edgewise-dns adds (NSD and BIND leave out the addresses of MX and SRV targets).
    Minimal,
}

impl Daemon {
    fn additional(self) -> Additional {
        match self {
            Daemon::Knot => Additional::Same,
            Daemon::Nsd | Daemon::Bind => Additional::Minimal,
        }
    }

    /// The config file's name and text for a secondary in `dir` on `port`, transferring
    /// from `primary` with the key and accepting only its NOTIFY signed with the key.
    fn config(self, dir: &Path, port: u16, primary: SocketAddr) -> (&'static str, String) {
        let dir = dir.display();
        let (ip, pport) = (primary.ip(), primary.port());
        match self {
            Daemon::Nsd => (
                "nsd.conf",
                format!(
                    r#"server:
  ip-address: 127.0.0.1@{port}
  port: {port}
  do-ip6: no
  zonesdir: "{dir}"
  database: ""
  zonelistfile: "zone.list"
  xfrdfile: "xfrd.state"
  xfrdir: "{dir}"
  pidfile: "nsd.pid"
  username: ""
  chroot: ""
  server-count: 1
  verbosity: 2
  minimal-responses: yes
remote-control:
  control-enable: no
key:
  name: "{KEY}"
  algorithm: hmac-sha256
  secret: "{SECRET}"
zone:
  name: "{ZONE}"
  zonefile: "{ZONE}.zone"
  allow-notify: {ip} {KEY}
  request-xfr: {ip}@{pport} {KEY}
"#
                ),
            ),
            Daemon::Knot => (
                "knot.conf",
                format!(
                    r#"server:
  rundir: "{dir}"
  listen: 127.0.0.1@{port}
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
control:
  listen: "{dir}/knot.sock"
database:
  storage: "{dir}"
log:
  - target: stderr
    any: info
key:
  - id: {KEY}
    algorithm: hmac-sha256
    secret: {SECRET}
remote:
  - id: primary
    address: {ip}@{pport}
    key: {KEY}
acl:
  - id: primary_notify
    address: {ip}
    key: {KEY}
    action: notify
zone:
  - domain: {ZONE}
    storage: "{dir}"
    master: primary
    acl: primary_notify
    zonefile-load: none
    zonefile-sync: -1
    journal-content: changes
"#
                ),
            ),
            Daemon::Bind => (
                "named.conf",
                format!(
                    r#"options {{
  directory "{dir}";
  pid-file "{dir}/named.pid";
  session-keyfile "{dir}/session.key";
  managed-keys-directory "{dir}";
  bindkeys-file "{dir}/bind.keys";
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  minimal-responses yes;
  notify no;
}};
controls {{ }};
key "{KEY}" {{
  algorithm hmac-sha256;
  secret "{SECRET}";
}};
zone "{ZONE}" {{
  type secondary;
  file "{ZONE}.db";
  primaries {{ {ip} port {pport} key {KEY}; }};
  allow-notify {{ key {KEY}; }};
}};
"#
                ),
            ),
        }
    }

    /// The daemon in the foreground, reading `conf`.
    fn command(self, conf: &Path) -> Command {
        let (program, args): (&str, &[&str]) = match self {
            Daemon::Nsd => ("nsd", &["-d", "-c"]),
            Daemon::Knot => ("knotd", &["-c"]),
            Daemon::Bind => ("named", &["-g", "-c"]),
        };
        // Debian installs them in /usr/sbin, which an unprivileged PATH may leave out.
        let sbin = Path::new("/usr/sbin").join(program);
        let mut command = Command::new(if sbin.exists() {
            sbin.as_path()
        } else {
            Path::new(program)
        });
        command.args(args).arg(conf);
        command
    }

    fn package(self) -> &'static str {
        match self {
            Daemon::Nsd => "nsd",
            Daemon::Knot => "knot",
            Daemon::Bind => "bind9",
        }
    }
}

/// A running secondary.
struct Secondary {
    daemon: Daemon,
    port: u16,
    process: Background,
    _dir: TempDir,
}

impl Secondary {
    async fn start(daemon: Daemon, port: u16, primary: SocketAddr) -> Secondary {
        let dir = tempfile::tempdir().expect("temp dir");
        let (name, text) = daemon.config(dir.path(), port, primary);
        let conf = dir.path().join(name);
        std::fs::write(&conf, text).expect("write the secondary's config");
        if daemon == Daemon::Bind {
            // No trust anchors: the secondary validates nothing, and reads nothing from /etc.
            std::fs::write(dir.path().join("bind.keys"), "").expect("write bind.keys");
        }
        let process = Background::spawn(
            daemon.command(&conf).current_dir(dir.path()),
            dir.path().join("daemon.log"),
            daemon.package(),
        );
        Secondary {
            daemon,
            port,
            process,
            _dir: dir,
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The end of the daemon's log (BIND starts with a long banner).
    fn log(&self) -> String {
        let text = self.process.log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits (bounded) until the secondary answers the zone's SOA with `serial`.
    async fn wait_for_serial(&mut self, serial: u32) {
        let deadline = Instant::now() + TRANSFER_WAIT;
        loop {
            if let Some(status) = self.process.exited() {
                panic!(
                    "{:?} exited ({status}) before serving serial {serial}:\n{}",
                    self.daemon,
                    self.log()
                );
            }
            let reply = dig(self.addr(), &["+short", ZONE, "SOA"]).await;
            if reply.split_whitespace().nth(2) == Some(&serial.to_string()) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{:?} did not serve serial {serial} within {TRANSFER_WAIT:?} (last SOA answer: {reply:?}); its log:\n{}",
                    self.daemon,
                    self.log()
                );
            }
            sleep(Duration::from_millis(200)).await;
        }
    }

    /// The sizes in bytes of the first `count` transfers the daemon logged (each logs one
    /// line per transfer ending in "N bytes": NSD's "received update ... of N bytes", Knot's
    /// "finished, ..., N bytes", BIND's "Transfer completed: ..., N bytes"), waiting (bounded)
    /// for the last line, which may come just after the zone is served.
    async fn transfer_sizes(&self, count: usize) -> Vec<u64> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = self.process.log();
            let sizes: Vec<u64> = text
                .lines()
                .filter_map(|line| {
                    let (before, _) = line.split_once(" bytes")?;
                    before.rsplit(' ').next()?.parse().ok()
                })
                .collect();
            if sizes.len() >= count {
                return sizes;
            }
            assert!(
                Instant::now() < deadline,
                "{:?} logged {} transfers, not {count}:\n{}",
                self.daemon,
                sizes.len(),
                self.log()
            );
            sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 (released for the daemon to bind).
pub(crate) fn free_port() -> u16 {
    for _ in 0..100 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind TCP");
        let port = tcp.local_addr().expect("address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP in 100 tries");
}

// ------------------------------------------------------------------ dig and its output

/// `dig` at `server` with `args` (non-recursive, bounded): its standard output.
/// Over TCP: dig's UDP socket takes any datagram sent to its port, and the NOTIFYs other
/// tests' primaries retry towards ports their secondaries have let go can land there (dig
/// then prints ";; Warning: query response not set" instead of an answer).
async fn dig(server: SocketAddr, args: &[&str]) -> String {
    let output = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(["+norec", "+time=2", "+tries=2", "+tcp"])
        .args(args)
        .output()
        .await
        .expect("dig is installed (apt-get install bind9-dnsutils)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A record as dig prints it, fields separated by one space.
fn record_line(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One response as dig shows it: the parts compared, each section sorted.
#[derive(Debug, Default, Clone, PartialEq)]
struct Response {
    status: String,
    flags: BTreeSet<String>,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
}

/// The responses of one dig run with several queries, keyed by question (name lowercased,
/// type as dig prints it).
fn parse_responses(text: &str) -> BTreeMap<(String, String), Response> {
    let mut responses = BTreeMap::new();
    for chunk in text.split(";; Got answer:").skip(1) {
        let mut response = Response::default();
        let mut question = None;
        let mut section = "";
        for line in chunk.lines() {
            if let Some(rest) = line.split("status: ").nth(1) {
                response.status = rest.split(',').next().unwrap_or_default().to_string();
            } else if let Some(rest) = line.strip_prefix(";; flags: ") {
                let flags = rest.split(';').next().unwrap_or_default();
                response.flags = flags.split_whitespace().map(String::from).collect();
            } else if let Some(name) = line.strip_suffix(" SECTION:") {
                section = name.trim_start_matches(";; ");
            } else if section == "QUESTION" && line.starts_with(';') && !line.starts_with(";;") {
                let fields: Vec<&str> = line[1..].split_whitespace().collect();
                if let [name, _class, rtype] = fields[..] {
                    question = Some((name.to_lowercase(), rtype.to_string()));
                }
            } else if !line.starts_with(';') && !line.trim().is_empty() {
                let record = record_line(line);
                match section {
                    "ANSWER" => response.answer.push(record),
                    "AUTHORITY" => response.authority.push(record),
                    "ADDITIONAL" => response.additional.push(record),
                    _ => {}
                }
            }
        }
        for part in [
            &mut response.answer,
            &mut response.authority,
            &mut response.additional,
        ] {
            part.sort();
        }
        if let Some(question) = question {
            responses.insert(question, response);
        }
    }
    responses
}

/// Asks `server` every query in one dig run; every query must have an answer.
async fn ask_all(
    server: SocketAddr,
    queries: &BTreeSet<(String, String)>,
) -> BTreeMap<(String, String), Response> {
    let mut args = vec!["+noall", "+comments", "+question", "+answer", "+authority"];
    args.push("+additional");
    for (name, rtype) in queries {
        args.push(name);
        args.push(rtype);
    }
    let text = dig(server, &args).await;
    let responses = parse_responses(&text);
    let missing: Vec<_> = queries
        .iter()
        .filter(|q| !responses.contains_key(*q))
        .collect();
    assert!(
        missing.is_empty(),
        "{server} did not answer {missing:?}:\n{text}"
    );
    responses
}

/// The zone as edgewise-dns transfers it (signed AXFR with dig): the records of each name
/// and type, as dig prints them, sorted.
async fn transfer_set(primary: SocketAddr) -> BTreeMap<(String, String), Vec<String>> {
    let key = format!("hmac-sha256:{KEY}:{SECRET}");
    let text = dig(primary, &["-y", &key, "+tcp", ZONE, "AXFR"]).await;
    assert!(text.contains(";; XFR size"), "the AXFR failed:\n{text}");
    let mut set: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with(';') || fields.len() < 5 || fields[3] == "TSIG" {
            continue;
        }
        let records = set
            .entry((fields[0].to_lowercase(), fields[3].to_string()))
            .or_default();
        let record = record_line(line);
        if !records.contains(&record) {
            records.push(record);
        }
    }
    for records in set.values_mut() {
        records.sort();
    }
    set
}

/// What is wrong with the secondary's `theirs` against edgewise-dns's `ours` for one query,
/// if anything.
fn mismatch(ours: &Response, theirs: &Response, additional: Additional) -> Option<String> {
    let same_additional = match additional {
        Additional::Same => ours.additional == theirs.additional,
        // A referral (no AA) must carry the same glue; an answer may carry less.
        Additional::Minimal if !ours.flags.contains("aa") => ours.additional == theirs.additional,
        Additional::Minimal => theirs
            .additional
            .iter()
            .all(|r| ours.additional.contains(r)),
    };
    let same = ours.status == theirs.status
        && ours.flags == theirs.flags
        && ours.answer == theirs.answer
        && ours.authority == theirs.authority
        && same_additional;
    (!same).then(|| format!("edgewise-dns: {ours:#?}\nsecondary: {theirs:#?}"))
}

/// Asks edgewise-dns and the secondary every query of the zone and compares the answers;
/// routed names are compared with their transfer set instead.
async fn compare(primary: SocketAddr, secondary: &Secondary) -> usize {
    let transferred = transfer_set(primary).await;
    let mut queries: BTreeSet<(String, String)> = transferred.keys().cloned().collect();
    queries.extend(
        EXTRA_QUERIES
            .iter()
            .map(|(name, rtype)| (name.to_string(), rtype.to_string())),
    );
    let ours = ask_all(primary, &queries).await;
    let theirs = ask_all(secondary.addr(), &queries).await;
    let mut problems = Vec::new();
    for query in &queries {
        let (ours, theirs) = (&ours[query], &theirs[query]);
        let routed = ROUTED
            .iter()
            .any(|(name, rtype)| query.0 == *name && query.1 == *rtype);
        let problem = if routed {
            let expected = transferred.get(query).cloned().unwrap_or_default();
            let answered = theirs.status == "NOERROR" && theirs.flags.contains("aa");
            (!answered || theirs.answer != expected)
                .then(|| format!("the transfer set {expected:#?}\nsecondary: {theirs:#?}"))
        } else {
            mismatch(ours, theirs, secondary.daemon.additional())
        };
        if let Some(problem) = problem {
            problems.push(format!("{} {}:\n{problem}", query.0, query.1));
        }
    }
    assert!(
        problems.is_empty(),
        "{:?} answers {} of {} queries otherwise than edgewise-dns:\n{}",
        secondary.daemon,
        problems.len(),
        queries.len(),
        problems.join("\n\n")
    );
    queries.len()
}

// ------------------------------------------------------------------ the proof

/// Transfer, compare, change the zone, NOTIFY, catch up, compare again.
async fn prove(daemon: Daemon) {
    let port = free_port();
    let primary = Primary::start(port).await;
    let mut secondary = Secondary::start(daemon, port, primary.addr()).await;

    secondary.wait_for_serial(FIRST_SERIAL).await;
    let asked = compare(primary.addr(), &secondary).await;
    assert!(asked > 40, "{asked} queries");
    // The routed name differs by design: edgewise-dns routes the loopback client, the
    // secondary has the default set.
    let nas = ["+short", "nas.home.example", "A"];
    assert_eq!(dig(primary.addr(), &nas).await.trim(), "192.168.1.40");
    assert_eq!(dig(secondary.addr(), &nas).await.trim(), "203.0.113.40");

    let next = FIRST_SERIAL + 1;
    primary.reload_with(&zone_file(next, "192.168.1.71")).await;
    secondary.wait_for_serial(next).await;
    let printer = dig(secondary.addr(), &["+short", "printer.home.example", "A"]).await;
    assert_eq!(printer.trim(), "192.168.1.71", "the changed record");
    compare(primary.addr(), &secondary).await;

    // A dynamic update: the journal has the change, so an IXFR gets it alone.
    primary.update("token-1").await;
    secondary.wait_for_serial(next + 1).await;
    let token = ["+short", "_acme-challenge.home.example", "TXT"];
    assert_eq!(dig(secondary.addr(), &token).await.trim(), "\"token-1\"");
    compare(primary.addr(), &secondary).await;
    let sizes = secondary.transfer_sizes(3).await;
    assert!(
        sizes[2] * 2 < sizes[0],
        "the update came as an incremental IXFR, not the whole zone again: {sizes:?} bytes\n{}",
        secondary.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsd_transfers_with_tsig_catches_up_on_notify_and_answers_as_edgewise_does() {
    prove(Daemon::Nsd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knot_transfers_with_tsig_catches_up_on_notify_and_answers_as_edgewise_does() {
    prove(Daemon::Knot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_transfers_with_tsig_catches_up_on_notify_and_answers_as_edgewise_does() {
    prove(Daemon::Bind).await;
}
