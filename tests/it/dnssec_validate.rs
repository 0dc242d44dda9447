//! DNSSEC proven with the validators resolvers and operators run (Debian packages `unbound`,
//! `bind9-dnsutils`, `ldnsutils`, `knot-dnssecutils`): an in-process edgewise-dns signs
//! `home.test` with a key it makes, and each validator, given that key (read from the `.key`
//! file edgewise-dns wrote) as its only trust anchor, must accept every answer: positive
//! answers of each type, NXDOMAIN, NODATA, an empty non-terminal, wildcard answers and
//! wildcard NODATA, a CNAME, the DS of a delegation and the proof that another has none, and
//! routed names (every weighted set, and geolocation for several ECS subnets).
//!
//! Every validator is also shown failing, so that a pass means something: unbound with
//! another key as anchor SERVFAILs, and the zone checkers reject the transferred zone with
//! one record changed. Only 127.0.0.1 is ever queried: unbound refuses every name outside
//! the zone and sends from 127.0.0.1 only, and no query goes below a delegation.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::Command;
use tokio::time::{Instant, sleep};

use crate::background::Background;
use crate::dns_routing::{Routing, start_routing};
use crate::dns_secondaries::free_port;
use crate::mmdb::{Place, city_db};

const ZONE: &str = "home.test";
/// The longest one run of a validator, dig or a checker may take.
const TOOL_WAIT: Duration = Duration::from_secs(15);
/// TXT records at `big`, 50 characters each: their answer fits 1232 bytes unsigned, not with
/// the RRSIG.
const BIG_TXT: usize = 18;

/// The zone file: every common type at the apex, an SRV (its owner makes `_udp` an empty
/// non-terminal), `a.b.c` (so `b.c` and `c` are empty non-terminals), a wildcard `*.w` with
/// A and TXT, CNAMEs (one to a name that does not exist, one a wildcard), a delegation with
/// glue and a DS and one without DS, and `big`.
fn zone_file() -> String {
    let mut zone = r#"$ORIGIN home.test.
$TTL 3600
@ 300 IN SOA ns1.home.test. hostmaster.home.test. 2026120101 3600 900 1209600 300
@ NS ns1
@ NS ns2
@ A 192.0.2.1
@ MX 10 mail
@ TXT "v=spf1 mx -all"
@ CAA 0 issue "letsencrypt.org"
ns1 A 192.0.2.2
ns2 A 192.0.2.3
mail A 192.0.2.25
www A 192.0.2.10
www AAAA 2001:db8::10
_sip._udp SRV 10 60 5060 sip
sip A 192.0.2.60
a.b.c A 192.0.2.77
*.w A 192.0.2.80
*.w TXT "wildcard"
tv CNAME www
*.cw CNAME www
dangling CNAME nothing.home.test.
sub NS ns.sub
ns.sub A 192.0.2.53
sub DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
insecure NS ns.insecure
ns.insecure A 192.0.2.54
"#
    .to_string();
    for i in 0..BIG_TXT {
        zone.push_str(&format!("big TXT \"{i:02}{}\"\n", "x".repeat(48)));
    }
    zone
}

/// edgewise-dns's config: the zone file plus routed names, `app` (weighted 50/50, TTL 0 so
/// that resolvers ask again), `shop` (geolocation: Europe, Korea and the default) and
/// `eu-only` (Europe and no default: NODATA elsewhere, with a TXT beside it), with `dnssec`
/// when given as (algorithm, denial).
fn config(dnssec: Option<(&str, &str)>) -> String {
    let dnssec = dnssec.map_or(String::new(), |(algorithm, denial)| {
        format!("dnssec = {{ algorithm = \"{algorithm}\", denial = \"{denial}\" }}")
    });
    format!(
        r#"[geo]
city_db = "geo.mmdb"

[dns]
listen = ["127.0.0.1:0"]
data_dir = "data"

[[dns.zones]]
name = "{ZONE}"
file = "home.test.zone"
{dnssec}
allow_transfer = ["127.0.0.1"]
records = [
  {{ name = "app", type = "A", ttl = 0, set_id = "blue", weight = 50, values = ["192.0.2.20"] }},
  {{ name = "app", type = "A", ttl = 0, set_id = "green", weight = 50, values = ["192.0.2.21"] }},
  {{ name = "shop", type = "A", ttl = 60, set_id = "europe", geo = {{ continent = "EU" }}, values = ["192.0.2.31"] }},
  {{ name = "shop", type = "A", ttl = 60, set_id = "korea", geo = {{ country = "KR" }}, values = ["192.0.2.32"] }},
  {{ name = "shop", type = "A", ttl = 60, set_id = "rest", geo = {{ country = "*" }}, values = ["192.0.2.39"] }},
  {{ name = "eu-only", type = "A", ttl = 60, set_id = "europe", geo = {{ continent = "EU" }}, values = ["192.0.2.41"] }},
  {{ name = "eu-only", type = "TXT", values = ['"static beside a routed set"'] }},
]
"#
    )
}

/// The ECS subnets the geolocation database places, and the `shop` address each gets.
const SHOP_BY_SUBNET: [(&str, &str); 3] = [
    ("203.0.113.0/24", "192.0.2.31"),  // DE: Europe
    ("198.51.100.0/24", "192.0.2.32"), // KR
    ("192.0.2.0/24", "192.0.2.39"),    // not in the database: the default
];

/// An edgewise-dns serving the zone, and where its keys are.
struct Primary {
    routing: Routing,
    keys_dir: PathBuf,
}

impl Primary {
    /// Serves the zone signed with `algorithm` and `denial`.
    async fn signed(algorithm: &str, denial: &str) -> Primary {
        Primary::start(Some((algorithm, denial))).await
    }

    async fn start(dnssec: Option<(&str, &str)>) -> Primary {
        Primary::with_config(&config(dnssec)).await
    }

    /// Serves the zone signed with `algorithm` and `denial`, taking dynamic updates of TXT
    /// records signed with the key `upd` ([`UPDATE_SECRET`]).
    async fn updatable(algorithm: &str, denial: &str) -> Primary {
        let config = config(Some((algorithm, denial)))
            .replacen(
                "data_dir = \"data\"\n",
                &format!(
                    "data_dir = \"data\"\n\n[[dns.tsig_keys]]\nname = \"upd\"\nsecret = \"{UPDATE_SECRET}\"\n"
                ),
                1,
            )
            .replacen(
                "allow_transfer = [\"127.0.0.1\"]\n",
                "allow_transfer = [\"127.0.0.1\"]\nallow_update = [{ key = \"upd\", names = [\"*\"], types = [\"TXT\"] }]\n",
                1,
            );
        assert!(config.contains("allow_update"), "{config}");
        Primary::with_config(&config).await
    }

    async fn with_config(config: &str) -> Primary {
        let db = city_db(&[
            ("203.0.113.0/24", Place::country("EU", "DE")),
            ("198.51.100.0/24", Place::country("AS", "KR")),
        ]);
        let routing = start_routing(
            config,
            &[
                ("home.test.zone", zone_file().into_bytes()),
                ("geo.mmdb", db),
            ],
        )
        .await;
        let keys_dir = routing.server.dir.path().join("data").join("dns-keys");
        Primary { routing, keys_dir }
    }

    fn addr(&self) -> SocketAddr {
        self.routing.addr()
    }

    /// The zone's key as a trust anchor, from the `.key` file edgewise-dns wrote.
    fn anchor(&self, algorithm: u8) -> Anchor {
        Anchor::from_key_file(&self.keys_dir, algorithm)
    }

    /// `dig` straight at edgewise-dns (no recursion asked).
    async fn dig(&self, args: &[&str]) -> Dug {
        let mut all = vec!["+norec"];
        all.extend_from_slice(args);
        dig(self.addr(), &all).await
    }

    /// The zone by AXFR as a zone file: dig's records, the closing SOA left out.
    async fn axfr_zone_file(&self) -> String {
        let text = self
            .dig(&["+tcp", ZONE, "AXFR", "+nocmd", "+nostats", "+nocomments"])
            .await
            .text;
        let mut records: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
            .collect();
        let soas = records.iter().filter(|l| field(l, 3) == "SOA").count();
        assert!(
            soas == 2 && field(records[records.len() - 1], 3) == "SOA",
            "an AXFR opens and closes with the SOA:\n{text}"
        );
        records.pop();
        records.join("\n") + "\n"
    }
}

// ------------------------------------------------------------------ trust anchors

/// A DNSKEY to trust: the zone's, or another made for the failing case.
#[derive(Debug, Clone)]
struct Anchor {
    flags: u16,
    protocol: u8,
    algorithm: u8,
    /// The public key in base64, without spaces.
    key: String,
    /// The `.key` file it came from.
    file: PathBuf,
}

impl Anchor {
    /// Reads the one `K<zone>.+<algorithm>+<tag>.key` file in `dir` (BIND's format: comment
    /// lines, then `owner [ttl] [class] DNSKEY flags protocol algorithm base64...`).
    fn from_key_file(dir: &Path, algorithm: u8) -> Anchor {
        let marker = format!("+{algorithm:03}+");
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| {
            panic!(
                "edgewise-dns should have written the zone's keys into {}: {e}",
                dir.display()
            )
        });
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                name.starts_with(&format!("K{ZONE}."))
                    && name.contains(&marker)
                    && name.ends_with(".key")
            })
            .collect();
        let listing: Vec<_> = std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
            .unwrap_or_default();
        assert!(
            files.len() == 1,
            "one K{ZONE}.{marker}<tag>.key file in {} (BIND's format), found {listing:?}",
            dir.display()
        );
        let file = files.remove(0);
        let text = std::fs::read_to_string(&file).expect("read the .key file");
        let record = text
            .lines()
            .find(|l| !l.starts_with(';') && l.contains("DNSKEY"))
            .unwrap_or_else(|| panic!("a DNSKEY line in {}:\n{text}", file.display()));
        let fields: Vec<&str> = record.split_whitespace().collect();
        let at = fields.iter().position(|f| *f == "DNSKEY").expect("DNSKEY");
        let (owner, rdata) = (fields[0], &fields[at + 1..]);
        assert!(
            owner.trim_end_matches('.').eq_ignore_ascii_case(ZONE) && rdata.len() >= 4,
            "a DNSKEY of {ZONE} in {}: {record:?}",
            file.display()
        );
        let number = |s: &str| -> u16 {
            s.parse()
                .unwrap_or_else(|_| panic!("a number in {record:?}: {s:?}"))
        };
        Anchor {
            flags: number(rdata[0]),
            protocol: number(rdata[1]) as u8,
            algorithm: number(rdata[2]) as u8,
            key: rdata[3..].concat(),
            file,
        }
    }

    /// A key of the same algorithm that edgewise-dns never saw, made by `ldns-keygen`.
    async fn foreign(dir: &Path) -> Anchor {
        run_ok(
            Command::new("ldns-keygen")
                .args(["-a", "ECDSAP256SHA256", "-k", ZONE])
                .current_dir(dir),
            "ldnsutils",
        )
        .await;
        Anchor::from_key_file(dir, 13)
    }

    /// The DNSKEY RDATA as presentation text.
    fn rdata(&self) -> String {
        format!(
            "{} {} {} {}",
            self.flags, self.protocol, self.algorithm, self.key
        )
    }

    /// The `trust-anchors` statement delv reads.
    fn bind_conf(&self) -> String {
        format!(
            "trust-anchors {{ {ZONE}. static-key {} {} {} \"{}\"; }};\n",
            self.flags, self.protocol, self.algorithm, self.key
        )
    }
}

// ------------------------------------------------------------------ running tools

/// Runs `command` to its end (bounded); panics naming the Debian `package` that brings the
/// program when it cannot start.
async fn run(command: &mut Command, package: &str) -> Output {
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    let child = command
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(TOOL_WAIT, child)
        .await
        .unwrap_or_else(|_| panic!("{program} did not finish within {TOOL_WAIT:?}"))
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): apt-get install {package}"))
}

/// Runs `command` like [`run`], and asserts that it succeeded.
async fn run_ok(command: &mut Command, package: &str) {
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    let output = run(command, package).await;
    assert!(output.status.success(), "{program}: {}", text(&output));
}

/// Standard output then standard error.
fn text(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

/// The program at `/usr/sbin/<name>` where Debian puts daemons (an unprivileged PATH may
/// leave it out), else as found on PATH.
fn sbin(name: &str) -> PathBuf {
    let path = Path::new("/usr/sbin").join(name);
    if path.exists() {
        path
    } else {
        PathBuf::from(name)
    }
}

/// Field `n` (whitespace-separated) of a record line.
fn field(line: &str, n: usize) -> &str {
    line.split_whitespace().nth(n).unwrap_or_default()
}

// ------------------------------------------------------------------ dig and its output

/// One record as dig prints it.
#[derive(Debug, Clone)]
struct Record {
    owner: String,
    rtype: String,
    rdata: String,
}

/// One response as dig shows it.
#[derive(Debug, Default)]
struct Dug {
    status: String,
    flags: Vec<String>,
    answer: Vec<Record>,
    authority: Vec<Record>,
    /// The EDNS Client Subnet option, as dig prints it (`203.0.113.0/24/24`).
    ecs: Option<String>,
    /// The message size dig reports.
    size: Option<usize>,
    text: String,
}

impl Dug {
    fn parse(text: String) -> Dug {
        let mut dug = Dug::default();
        let mut section = "";
        for line in text.lines() {
            if let Some(rest) = line.split("status: ").nth(1) {
                dug.status = rest.split(',').next().unwrap_or_default().to_string();
            } else if let Some(rest) = line.strip_prefix(";; flags: ") {
                let flags = rest.split(';').next().unwrap_or_default();
                dug.flags = flags.split_whitespace().map(String::from).collect();
            } else if let Some(rest) = line.strip_prefix("; CLIENT-SUBNET: ") {
                dug.ecs = Some(rest.trim().to_string());
            } else if let Some(rest) = line.strip_prefix(";; MSG SIZE  rcvd: ") {
                dug.size = rest.trim().parse().ok();
            } else if let Some(name) = line.strip_suffix(" SECTION:") {
                section = name.trim_start_matches(";; ");
            } else if !line.starts_with(';') && !line.trim().is_empty() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.len() < 4 {
                    continue;
                }
                let record = Record {
                    owner: fields[0].to_lowercase(),
                    rtype: fields[3].to_string(),
                    rdata: fields[4..].join(" "),
                };
                match section {
                    "ANSWER" => dug.answer.push(record),
                    "AUTHORITY" => dug.authority.push(record),
                    _ => {}
                }
            }
        }
        dug.text = text;
        dug
    }

    fn flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The types of a section's records other than RRSIG.
    fn types(records: &[Record]) -> Vec<&str> {
        let mut types: Vec<&str> = (records.iter())
            .filter(|r| r.rtype != "RRSIG")
            .map(|r| r.rtype.as_str())
            .collect();
        types.sort_unstable();
        types.dedup();
        types
    }

    /// The RRsets of a section that lack an RRSIG, as "owner type".
    fn unsigned(records: &[Record]) -> Vec<String> {
        (records.iter())
            .filter(|r| r.rtype != "RRSIG")
            .filter(|r| {
                !records.iter().any(|s| {
                    s.rtype == "RRSIG" && s.owner == r.owner && field(&s.rdata, 0) == r.rtype
                })
            })
            .map(|r| format!("{} {}", r.owner, r.rtype))
            .collect()
    }

    /// The addresses of the answer's A records.
    fn addresses(&self) -> Vec<&str> {
        (self.answer.iter())
            .filter(|r| r.rtype == "A")
            .map(|r| r.rdata.as_str())
            .collect()
    }

    /// Any RRSIG, NSEC or NSEC3 anywhere in the response.
    fn dnssec_records(&self) -> Vec<String> {
        (self.text.lines())
            .filter(|l| !l.starts_with(';'))
            .filter(|l| matches!(field(l, 3), "RRSIG" | "NSEC" | "NSEC3"))
            .map(String::from)
            .collect()
    }
}

/// `dig` at `server` with `args` (bounded: one try of 3 s): the response parsed.
async fn dig(server: SocketAddr, args: &[&str]) -> Dug {
    let output = run(
        Command::new("dig")
            .arg(format!("@{}", server.ip()))
            .args(["-p", &server.port().to_string(), "+time=3", "+tries=1"])
            .args(args),
        "bind9-dnsutils",
    )
    .await;
    Dug::parse(String::from_utf8_lossy(&output.stdout).into_owned())
}

// ------------------------------------------------------------------ what validates

/// What a query must get.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// NOERROR with the RRset of this type in the answer (after any CNAME).
    Answer(&'static str),
    /// NOERROR, no record of the type asked (a CNAME may lead there), SOA and denial in
    /// AUTHORITY.
    NoData,
    /// NXDOMAIN, SOA and denial in AUTHORITY.
    NxDomain,
}

use Expect::{Answer, NoData, NxDomain};

/// Every kind of answer the zone gives, as (name relative to the zone, type, expected).
const QUERIES: &[(&str, &str, Expect)] = &[
    ("@", "SOA", Answer("SOA")),
    ("@", "NS", Answer("NS")),
    ("@", "A", Answer("A")),
    ("@", "MX", Answer("MX")),
    ("@", "TXT", Answer("TXT")),
    ("@", "CAA", Answer("CAA")),
    ("@", "DNSKEY", Answer("DNSKEY")),
    ("@", "CDS", Answer("CDS")),
    ("@", "CDNSKEY", Answer("CDNSKEY")),
    ("www", "A", Answer("A")),
    ("www", "AAAA", Answer("AAAA")),
    ("_sip._udp", "SRV", Answer("SRV")),
    ("a.b.c", "A", Answer("A")),
    ("x.w", "A", Answer("A")),
    ("x.w", "TXT", Answer("TXT")),
    ("deep.x.w", "A", Answer("A")),
    ("*.w", "A", Answer("A")),
    ("tv", "A", Answer("A")),
    ("x.cw", "A", Answer("A")),
    ("sub", "DS", Answer("DS")),
    ("big", "TXT", Answer("TXT")),
    ("nope", "A", NxDomain),
    ("deep.nope", "AAAA", NxDomain),
    ("nope.a.b.c", "A", NxDomain),
    ("nope.b.c", "A", NxDomain),
    ("zzz", "A", NxDomain),
    ("dangling", "A", NxDomain),
    ("www", "MX", NoData),
    ("@", "SRV", NoData),
    ("b.c", "A", NoData),
    ("c", "TXT", NoData),
    ("_udp", "A", NoData),
    ("w", "A", NoData),
    ("x.w", "MX", NoData),
    ("tv", "MX", NoData),
    ("insecure", "DS", NoData),
    ("app", "AAAA", NoData),
];

/// `name` (relative, `@` for the apex) under the zone.
fn fqdn(name: &str) -> String {
    if name == "@" {
        format!("{ZONE}.")
    } else {
        format!("{name}.{ZONE}.")
    }
}

/// What is wrong with a validating resolver's response for `rtype`, if anything: the AD
/// flag, the rcode, and the records and their RRSIGs the expectation asks for.
fn resolver_problem(dug: &Dug, rtype: &str, expect: Expect) -> Option<String> {
    let mut problems = Vec::new();
    if !dug.flag("ad") {
        problems.push("no AD flag".to_string());
    }
    let status = if expect == NxDomain {
        "NXDOMAIN"
    } else {
        "NOERROR"
    };
    if dug.status != status {
        problems.push(format!("status {} (expected {status})", dug.status));
    }
    let answer_types = Dug::types(&dug.answer);
    match expect {
        Answer(want) if !answer_types.contains(&want) => {
            problems.push(format!("no {want} in the answer"))
        }
        NoData | NxDomain if answer_types.contains(&rtype) => {
            problems.push(format!("{rtype} in the answer"))
        }
        NoData | NxDomain => {
            let authority = Dug::types(&dug.authority);
            if !authority.contains(&"SOA") || !authority.contains(&"NSEC") {
                problems.push(format!("AUTHORITY has {authority:?}, not SOA and NSEC"));
            }
        }
        Answer(_) => {}
    }
    let unsigned = [Dug::unsigned(&dug.answer), Dug::unsigned(&dug.authority)].concat();
    if !unsigned.is_empty() {
        problems.push(format!("without RRSIG: {unsigned:?}"));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

// ------------------------------------------------------------------ unbound

/// unbound as a validating resolver on a loopback port, with `anchor` as its only trust
/// anchor and a stub zone to edgewise-dns. With `ecs` it forwards the client's subnet (the
/// subnetcache module), so routed answers can be asked for several subnets; without, its
/// cache can be flushed name by name (the subnet cache cannot).
struct Unbound {
    port: u16,
    conf: PathBuf,
    process: Background,
    dir: TempDir,
}

impl Unbound {
    async fn start(anchor: &Anchor, primary: SocketAddr, ecs: bool) -> Unbound {
        let dir = tempfile::tempdir().expect("temp dir");
        let modules = if ecs {
            "module-config: \"subnetcache validator iterator\"\n  send-client-subnet: 127.0.0.1\n  client-subnet-always-forward: yes"
        } else {
            "module-config: \"validator iterator\""
        };
        let port = free_port();
        let d = dir.path().display();
        let conf = dir.path().join("unbound.conf");
        let text = format!(
            r#"server:
  interface: 127.0.0.1
  port: {port}
  do-ip6: no
  outgoing-interface: 127.0.0.1
  do-not-query-localhost: no
  chroot: ""
  username: ""
  directory: "{d}"
  pidfile: "{d}/unbound.pid"
  use-syslog: no
  logfile: "{d}/unbound.log"
  verbosity: 1
  val-log-level: 2
  do-daemonize: no
  num-threads: 1
  harden-dnssec-stripped: yes
  trust-anchor-signaling: no
  root-key-sentinel: no
  {modules}
  local-zone: "." refuse
  local-zone: "{ZONE}." transparent
  trust-anchor: "{ZONE}. DNSKEY {rdata}"
remote-control:
  control-enable: yes
  control-interface: "{d}/unbound.ctl"
  control-use-cert: no
stub-zone:
  name: "{ZONE}"
  stub-addr: 127.0.0.1@{pport}
"#,
            rdata = anchor.rdata(),
            pport = primary.port(),
        );
        std::fs::write(&conf, text).expect("write unbound.conf");
        let process = Background::spawn(
            Command::new(sbin("unbound"))
                .args(["-d", "-c"])
                .arg(&conf)
                .current_dir(dir.path()),
            dir.path().join("unbound.out"),
            "unbound",
        );
        let mut unbound = Unbound {
            port,
            conf,
            process,
            dir,
        };
        unbound.wait_ready().await;
        unbound
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Waits (bounded) until unbound answers anything.
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.process.exited() {
                panic!("unbound exited ({status}):\n{}", self.log());
            }
            if !dig(self.addr(), &[ZONE, "SOA"]).await.status.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "unbound did not answer within 10 s:\n{}",
                self.log()
            );
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its output and log file (validation failures are logged there at val-log-level 2).
    fn log(&self) -> String {
        let file = std::fs::read_to_string(self.dir.path().join("unbound.log")).unwrap_or_default();
        format!("{}{file}", self.process.log())
    }

    /// A recursive query with DO (dig sets AD in queries too).
    async fn ask(&self, name: &str, rtype: &str, extra: &[&str]) -> Dug {
        let mut args = vec!["+dnssec", name, rtype];
        args.extend_from_slice(extra);
        dig(self.addr(), &args).await
    }

    /// Drops `name` from unbound's cache (with `unbound-control`).
    async fn flush(&self, name: &str) {
        run_ok(
            Command::new(sbin("unbound-control"))
                .arg("-c")
                .arg(&self.conf)
                .args(["flush", name]),
            "unbound",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_validates_positive_negative_wildcard_and_routed_answers() {
    let primary = Primary::signed("ecdsap256sha256", "nsec").await;
    let anchor = primary.anchor(13);
    let unbound = Unbound::start(&anchor, primary.addr(), false).await;

    let mut problems = Vec::new();
    for (name, rtype, expect) in QUERIES {
        let dug = unbound.ask(&fqdn(name), rtype, &[]).await;
        if let Some(problem) = resolver_problem(&dug, rtype, *expect) {
            problems.push(format!("{name} {rtype}: {problem}\n{}", dug.text));
        }
    }

    // Weighted: every set the server picks validates (flushed from the cache after each
    // answer, so that unbound asks again).
    let mut seen = Vec::new();
    for _ in 0..40 {
        let dug = unbound.ask(&fqdn("app"), "A", &[]).await;
        if let Some(problem) = resolver_problem(&dug, "A", Answer("A")) {
            problems.push(format!("app A: {problem}\n{}", dug.text));
        }
        for address in dug.addresses() {
            if !seen.contains(&address.to_string()) {
                seen.push(address.to_string());
            }
        }
        if seen.len() == 2 {
            break;
        }
        unbound.flush(&fqdn("app")).await;
    }
    seen.sort();
    assert_eq!(
        seen,
        ["192.0.2.20", "192.0.2.21"],
        "both weighted sets of app, validated, in 40 tries; problems:\n{}",
        problems.join("\n\n")
    );

    // Geolocation: unbound forwards the client's subnet, and each located answer validates.
    let ecs = Unbound::start(&anchor, primary.addr(), true).await;
    for (subnet, want) in SHOP_BY_SUBNET {
        let option = format!("+subnet={subnet}");
        let dug = ecs.ask(&fqdn("shop"), "A", &[&option]).await;
        if let Some(problem) = resolver_problem(&dug, "A", Answer("A")) {
            problems.push(format!("shop A for {subnet}: {problem}\n{}", dug.text));
        }
        // The scope edgewise-dns gave (the located network's /24) comes back through unbound.
        let scoped = format!("{subnet}/24");
        if dug.addresses() != [want] || dug.ecs.as_ref() != Some(&scoped) {
            problems.push(format!(
                "shop A for {subnet}: not {want} with ECS {scoped}\n{}",
                dug.text
            ));
        }
    }
    let dug = ecs.ask(&fqdn("shop"), "A", &[]).await;
    if dug.addresses() != ["192.0.2.39"] || !dug.flag("ad") {
        problems.push(format!(
            "shop A from loopback: not 192.0.2.39 with AD\n{}",
            dug.text
        ));
    }

    let log = format!("{}\n(with ECS)\n{}", unbound.log(), ecs.log());
    if log.contains("validation failure") {
        problems.push("unbound logged validation failures".to_string());
    }
    assert!(
        problems.is_empty(),
        "unbound did not validate {} answers:\n{}\n\nunbound's logs:\n{log}",
        problems.len(),
        problems.join("\n\n"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_trusting_another_key_servfails_every_answer() {
    let primary = Primary::signed("ecdsap256sha256", "nsec").await;
    let keys = tempfile::tempdir().expect("temp dir");
    let foreign = Anchor::foreign(keys.path()).await;
    assert_ne!(foreign.key, primary.anchor(13).key);
    let unbound = Unbound::start(&foreign, primary.addr(), false).await;
    for (name, rtype) in [("@", "SOA"), ("www", "A"), ("nope", "A"), ("x.w", "A")] {
        let dug = unbound.ask(&fqdn(name), rtype, &[]).await;
        assert!(
            dug.status == "SERVFAIL" && dug.answer.is_empty(),
            "{name} {rtype} with a trust anchor the zone was not signed with:\n{}",
            dug.text
        );
    }
    let log = unbound.log();
    assert!(log.contains("validation failure"), "{log}");
}

// ------------------------------------------------------------------ delv

/// `delv` straight at edgewise-dns with `anchor` for the zone: its output.
async fn delv(primary: SocketAddr, anchor_file: &Path, name: &str, rtype: &str) -> String {
    let output = run(
        Command::new("delv")
            .arg(format!("@{}", primary.ip()))
            .args(["-p", &primary.port().to_string(), "-a"])
            .arg(anchor_file)
            .args([&format!("+root={ZONE}"), name, rtype]),
        "bind9-dnsutils",
    )
    .await;
    text(&output)
}

/// What is wrong with delv's verdict for an expectation, if anything. A CNAME to a name
/// without the type (or to no name) is shown as the validated CNAME ("; fully validated")
/// and the negative answer for its target.
fn delv_problem(out: &str, expect: Expect) -> Option<String> {
    let negative = out.contains("; negative response, fully validated");
    let validated = match expect {
        Answer(rtype) => {
            out.contains("; fully validated")
                && !negative
                && out.lines().any(|l| field(l, 3) == rtype)
        }
        NoData => (negative || out.contains("; fully validated")) && out.contains("NXRRSET"),
        NxDomain => (negative || out.contains("; fully validated")) && out.contains("NXDOMAIN"),
    };
    let failed = ["broken trust chain", "unsigned answer", "no valid"]
        .iter()
        .any(|bad| out.contains(bad));
    (!validated || failed).then(|| out.to_string())
}

/// delv's verdict for every query (and the routed names as loopback gets them) against
/// `primary`, whose key has algorithm `number`: the failures, each headed by `label`.
async fn delv_all(primary: &Primary, number: u8, label: &str) -> Vec<String> {
    let anchor_file = primary.keys_dir.with_file_name("anchor.conf");
    std::fs::write(&anchor_file, primary.anchor(number).bind_conf()).expect("write the anchor");
    let mut queries: Vec<(&str, &str, Expect)> = QUERIES.to_vec();
    // Loopback is in no location: `eu-only` picks no set, and its NODATA must validate.
    queries.extend([
        ("app", "A", Answer("A")),
        ("shop", "A", Answer("A")),
        ("eu-only", "A", NoData),
        ("eu-only", "TXT", Answer("TXT")),
    ]);
    let mut problems = Vec::new();
    for (name, rtype, expect) in queries {
        let out = delv(primary.addr(), &anchor_file, &fqdn(name), rtype).await;
        if let Some(problem) = delv_problem(&out, expect) {
            problems.push(format!(
                "{label}: {name} {rtype}, expected {expect:?}:\n{problem}"
            ));
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delv_fully_validates_every_record_type_and_every_denial() {
    let primary = Primary::signed("ecdsap256sha256", "nsec").await;
    let problems = delv_all(&primary, 13, "ecdsap256sha256, nsec").await;
    assert!(
        problems.is_empty(),
        "delv did not validate {} answers:\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// The other algorithm and the other denial: delv, ldns-verify-zone and kzonecheck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ed25519_and_nsec3_zones_validate_too() {
    let mut problems = Vec::new();
    for (algorithm, number, denial) in [("ed25519", 15, "nsec"), ("ecdsap256sha256", 13, "nsec3")] {
        let label = format!("{algorithm} ({number}), {denial}");
        let primary = Primary::signed(algorithm, denial).await;
        problems.extend(delv_all(&primary, number, &label).await);
        problems.extend(transferred_zone_problems(&primary, number, &label).await);
    }
    assert_no_problems(&problems);
}

/// What the zone checkers say of `primary`'s zone as transferred (its key of algorithm
/// `number` the trust anchor), each headed by `label`.
async fn transferred_zone_problems(primary: &Primary, number: u8, label: &str) -> Vec<String> {
    let zone = primary.axfr_zone_file().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let problems = check_zone(dir.path(), &zone, &primary.anchor(number)).await;
    (problems.into_iter())
        .map(|problem| format!("{label}: {problem}"))
        .collect()
}

fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} failures:\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// The secret of the TSIG key `upd` that [`Primary::updatable`] takes updates signed with.
const UPDATE_SECRET: &str = "dXBkYXRlcy10by1hLXNpZ25lZC16b25lLXRlc3Qta2V5IQ==";

/// Sends `script` (nsupdate's commands for the zone) to `primary`, signed with `upd`.
async fn update(primary: &Primary, script: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("update.txt");
    let port = primary.addr().port();
    let commands = format!("server 127.0.0.1 {port}\nzone {ZONE}\n{script}\nsend\n");
    std::fs::write(&file, commands).expect("write the update");
    let key = format!("hmac-sha256:upd:{UPDATE_SECRET}");
    run_ok(
        Command::new("nsupdate").args(["-y", &key]).arg(&file),
        "bind9-dnsutils",
    )
    .await;
}

/// Updates of a signed zone, each served by a snapshot made from the last one with only
/// the change signed (a new name below an empty non-terminal, a new type at a name, a name
/// added and then deleted, a name between two others): every answer still validates, the
/// new names' too, and the zone as transferred passes the zone checkers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_zone_validates_after_updates() {
    let mut problems = Vec::new();
    for denial in ["nsec", "nsec3"] {
        let label = format!("ecdsap256sha256 (13), {denial}, updated");
        let primary = Primary::updatable("ecdsap256sha256", denial).await;
        for script in [
            "update add n1.x.b.c.home.test. 300 TXT \"deep\"",
            "update add a.b.c.home.test. 300 TXT \"beside A\"",
            "update add gone.home.test. 300 TXT \"for now\"",
            "update delete gone.home.test. TXT",
            "update add m.home.test. 300 TXT \"between\"",
        ] {
            update(&primary, script).await;
        }
        problems.extend(delv_all(&primary, 13, &label).await);
        let anchor_file = primary.keys_dir.with_file_name("anchor.conf");
        for (name, rtype, expect) in [
            ("n1.x.b.c", "TXT", Answer("TXT")),
            ("x.b.c", "A", NoData),
            ("a.b.c", "TXT", Answer("TXT")),
            ("gone", "TXT", NxDomain),
            ("m", "TXT", Answer("TXT")),
            ("m", "A", NoData),
        ] {
            let out = delv(primary.addr(), &anchor_file, &fqdn(name), rtype).await;
            if let Some(problem) = delv_problem(&out, expect) {
                problems.push(format!(
                    "{label}: {name} {rtype}, expected {expect:?}:\n{problem}"
                ));
            }
        }
        problems.extend(transferred_zone_problems(&primary, 13, &label).await);
    }
    assert_no_problems(&problems);
}

// ------------------------------------------------------------------ zone checkers

/// Runs ldns-verify-zone (with the key as trust anchor, and no signature expiring within
/// 13 days, as the README promises) and kzonecheck on `zone` written into `dir`: what each
/// said when it did not accept it.
async fn check_zone(dir: &Path, zone: &str, anchor: &Anchor) -> Vec<String> {
    let file = dir.join("home.test.zone");
    std::fs::write(&file, zone).expect("write the zone");
    let mut problems = Vec::new();
    let ldns = run(
        Command::new("ldns-verify-zone")
            .args(["-e", "P13D", "-k"])
            .arg(&anchor.file)
            .arg(&file),
        "ldnsutils",
    )
    .await;
    if !ldns.status.success() || !text(&ldns).contains("Zone is verified and complete") {
        problems.push(format!(
            "ldns-verify-zone ({}): {}",
            ldns.status,
            text(&ldns)
        ));
    }
    let knot = run(
        Command::new("kzonecheck")
            .args(["-v", "--dnssec", "on", "-o", ZONE])
            .arg(&file),
        "knot-dnssecutils",
    )
    .await;
    if !knot.status.success() {
        problems.push(format!("kzonecheck ({}): {}", knot.status, text(&knot)));
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zone_as_transferred_passes_ldns_verify_zone_and_kzonecheck() {
    let primary = Primary::signed("ecdsap256sha256", "nsec").await;
    let anchor = primary.anchor(13);
    let zone = primary.axfr_zone_file().await;
    for rtype in ["DNSKEY", "NSEC", "RRSIG", "CDS", "CDNSKEY", "DS"] {
        assert!(
            zone.lines().any(|l| field(l, 3) == rtype),
            "the transfer has {rtype} records:\n{zone}"
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let problems = check_zone(dir.path(), &zone, &anchor).await;
    assert!(
        problems.is_empty(),
        "{}\n\nthe zone:\n{zone}",
        problems.join("\n\n")
    );

    // One address changed: both checkers must say the signature does not match.
    let www = ["www.home.test.", "3600", "IN", "A", "192.0.2.10"];
    let tampered: Vec<String> = (zone.lines())
        .map(|l| {
            if l.split_whitespace().collect::<Vec<_>>() == www {
                "www.home.test. 3600 IN A 192.0.2.11".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    let tampered = tampered.join("\n") + "\n";
    assert_ne!(tampered, zone, "the zone has www's address");
    let problems = check_zone(dir.path(), &tampered, &anchor).await;
    assert_eq!(
        problems.len(),
        2,
        "both checkers reject a record changed after signing: {problems:#?}"
    );
}

// ------------------------------------------------------------------ plain answers

/// Queries whose answers do not depend on chance: everything but the weighted name.
fn plain_queries() -> Vec<(String, &'static str)> {
    let mut queries: Vec<(String, &str)> = (QUERIES.iter())
        .filter(|(_, rtype, _)| !matches!(*rtype, "DNSKEY" | "CDS" | "CDNSKEY"))
        .map(|(name, rtype, _)| (fqdn(name), *rtype))
        .collect();
    queries.extend([
        (fqdn("shop"), "A"),
        (fqdn("host.sub"), "A"),
        (fqdn("host.insecure"), "A"),
        (fqdn("sub"), "NS"),
    ]);
    queries
}

/// The records of a response as compared: status, flags and each section sorted.
fn summary(dug: &Dug) -> String {
    let mut lines: Vec<String> = (dug.text.lines())
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.sort();
    format!("{} {:?}\n{}", dug.status, dug.flags, lines.join("\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_without_do_are_those_of_the_unsigned_zone() {
    let signed = Primary::signed("ecdsap256sha256", "nsec").await;
    let unsigned = Primary::start(None).await;
    let mut problems = Vec::new();
    for (name, rtype) in plain_queries() {
        for edns in ["+edns=0", "+noedns"] {
            let ours = signed.dig(&[edns, &name, rtype]).await;
            let before = unsigned.dig(&[edns, &name, rtype]).await;
            if ours.status.is_empty() || !ours.dnssec_records().is_empty() {
                problems.push(format!(
                    "{name} {rtype} {edns}: DNSSEC records\n{}",
                    ours.text
                ));
            } else if summary(&ours) != summary(&before) {
                problems.push(format!(
                    "{name} {rtype} {edns}: signed zone\n{}\nunsigned zone\n{}",
                    summary(&ours),
                    summary(&before)
                ));
            }
        }
    }
    // The keys are there for whoever asks, signatures only with DO.
    let dnskey = signed.dig(&[ZONE, "DNSKEY"]).await;
    assert!(
        Dug::types(&dnskey.answer) == ["DNSKEY"] && dnskey.dnssec_records().is_empty(),
        "{}",
        dnskey.text
    );
    assert!(
        problems.is_empty(),
        "{} answers without DO differ from the unsigned zone's:\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrals_carry_the_ds_or_the_nsec_proving_there_is_none() {
    let primary = Primary::signed("ecdsap256sha256", "nsec").await;
    let secure = primary.dig(&["+dnssec", &fqdn("host.sub"), "A"]).await;
    let has = |dug: &Dug, owner: &str, rtype: &str| {
        (dug.authority.iter()).any(|r| r.owner == fqdn(owner) && r.rtype == rtype)
    };
    let signs = |dug: &Dug, owner: &str, rtype: &str| {
        (dug.authority.iter())
            .any(|r| r.owner == fqdn(owner) && r.rtype == "RRSIG" && field(&r.rdata, 0) == rtype)
    };
    assert!(
        !secure.flag("aa")
            && has(&secure, "sub", "NS")
            && has(&secure, "sub", "DS")
            && signs(&secure, "sub", "DS")
            && !signs(&secure, "sub", "NS"),
        "a referral to sub: NS (unsigned: the child's) and the signed DS:\n{}",
        secure.text
    );
    let insecure = primary.dig(&["+dnssec", &fqdn("host.insecure"), "A"]).await;
    let nsec = (insecure.authority.iter())
        .find(|r| r.owner == fqdn("insecure") && r.rtype == "NSEC")
        .map(|r| r.rdata.split_whitespace().skip(1).collect::<Vec<_>>());
    assert!(
        !insecure.flag("aa")
            && has(&insecure, "insecure", "NS")
            && !has(&insecure, "insecure", "DS")
            && signs(&insecure, "insecure", "NSEC")
            && nsec
                .as_ref()
                .is_some_and(|types| types.contains(&"NS") && !types.contains(&"DS")),
        "a referral to insecure: NS, and the signed NSEC at the cut listing NS and no DS:\n{}",
        insecure.text
    );
}

// ------------------------------------------------------------------ size

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_answer_too_large_for_udp_sets_tc_and_comes_whole_over_tcp() {
    let primary = Primary::signed("ecdsap256sha256", "nsec").await;
    let big = fqdn("big");
    // Without DO the TXT records fit 1232 bytes...
    let plain = primary
        .dig(&["+bufsize=1232", "+ignore", &big, "TXT"])
        .await;
    assert!(
        !plain.flag("tc") && plain.answer.len() == BIG_TXT && plain.size.is_some_and(|s| s <= 1232),
        "the unsigned answer fits:\n{}",
        plain.text
    );
    // ...with their RRSIG they do not.
    let udp = primary
        .dig(&["+dnssec", "+bufsize=1232", "+ignore", &big, "TXT"])
        .await;
    assert!(
        udp.flag("tc") && udp.size.is_some_and(|s| s <= 1232),
        "TC over UDP with DO:\n{}",
        udp.text
    );
    let tcp = primary.dig(&["+dnssec", "+tcp", &big, "TXT"]).await;
    let txt = tcp.answer.iter().filter(|r| r.rtype == "TXT").count();
    assert!(
        !tcp.flag("tc")
            && txt == BIG_TXT
            && Dug::unsigned(&tcp.answer).is_empty()
            && tcp.size.is_some_and(|s| s > 1232),
        "the whole signed answer over TCP:\n{}",
        tcp.text
    );
}
