//! ACME DNS-01 with the clients users run (Debian packages `certbot` with
//! `python3-certbot-dns-rfc2136`, and `lego`): each obtains a wildcard certificate from Pebble
//! (Debian package `pebble`, Let's Encrypt's ACME test server), publishing its challenge TXT
//! records in an in-process edgewise-dns by RFC 2136 updates signed with TSIG, and Pebble
//! validates them by asking that same edgewise-dns. Everything runs on 127.0.0.1 ephemeral
//! ports with every file in temporary folders.
//!
//! A wildcard needs DNS-01 (no other challenge can prove it), and `*.home.test` plus
//! `home.test` put two different TXT values on the one name `_acme-challenge.home.test`:
//! certbot adds both before either is validated (lego one after the other), and each client
//! deletes each value by itself afterwards.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;
use tokio::process::Command;
use tokio::time::{Instant, sleep, timeout};

use crate::background::Background;
use crate::harness::{TestServer, q, start};

const ZONE: &str = "home.test";
const KEY: &str = "acme";
const SECRET: &str = "YWNtZS1hY21lLWFjbWUtYWNtZS1hY21lLWFjbWUhIQ==";
const FIRST_SERIAL: u32 = 100;
/// The names of the certificate, the wildcard first (lego names its files after it).
const DOMAINS: [&str; 2] = ["*.home.test", "home.test"];
/// The TXT records' name for both domains (RFC 8555 §8.4: a wildcard's is its base's).
const CHALLENGE_NAME: &str = "_acme-challenge.home.test.";
/// The longest a client may take; each takes seconds when all is well.
const CLIENT_WAIT: Duration = Duration::from_secs(45);
/// The longest Pebble may take to listen.
const PEBBLE_START: Duration = Duration::from_secs(10);

/// The zone the ACME clients update: an SOA and NS (certbot looks for the zone by asking the
/// server for the SOA of each parent of the challenge name) and a key that may change
/// `_acme-challenge` TXT records only.
fn edgewise_config() -> String {
    format!(
        r#"
[dns]
data_dir = "data"
[[dns.tsig_keys]]
name = "{KEY}"
secret = "{SECRET}"

[[dns.zones]]
name = "{ZONE}"
soa = {{ mname = "ns1.{ZONE}.", rname = "hostmaster.{ZONE}.", serial = {FIRST_SERIAL} }}
allow_update = [{{ key = "{KEY}", names = ["_acme-challenge"], types = ["TXT"] }}]
records = [
  {{ name = "@", type = "NS", values = ["ns1.{ZONE}."] }},
  {{ name = "ns1", type = "A", values = ["127.0.0.1"] }},
]
"#
    )
}

// ------------------------------------------------------------------ Pebble

/// `N` distinct free TCP ports on 127.0.0.1, released for Pebble to bind.
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("an address").port())
}

/// Writes a CA (`ca.pem`, what the clients trust) and Pebble's HTTPS certificate for
/// 127.0.0.1 signed by it (`cert.pem`, `key.pem`): a CA rather than a self-signed leaf, as
/// strict X.509 checks in the clients' TLS stacks want a trust anchor that is a CA.
fn write_tls_files(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    (ca.distinguished_name).push(rcgen::DnType::CommonName, "edgewise test CA for Pebble");
    let ca_cert = ca.self_signed(&ca_key).expect("the CA certificate");
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let key = rcgen::KeyPair::generate().expect("Pebble's key");
    let mut leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("leaf params");
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer).expect("Pebble's certificate");

    for (name, pem) in [
        ("ca.pem", ca_cert.pem()),
        ("cert.pem", cert.pem()),
        ("key.pem", key.serialize_pem()),
    ] {
        std::fs::write(dir.join(name), pem).unwrap_or_else(|e| panic!("write {name}: {e}"));
    }
}

/// Pebble's config: its ACME and management endpoints on `api` and `management`. It
/// validates http-01 and tls-alpn-01 on `http` and `tls`: free ports nobody answers, as only
/// dns-01 is used.
fn pebble_config(dir: &Path, [api, management, http, tls]: [u16; 4]) -> String {
    let dir = dir.display();
    format!(
        r#"{{"pebble": {{
  "listenAddress": "127.0.0.1:{api}",
  "managementListenAddress": "127.0.0.1:{management}",
  "certificate": "{dir}/cert.pem",
  "privateKey": "{dir}/key.pem",
  "httpPort": {http},
  "tlsPort": {tls},
  "ocspResponderURL": "",
  "externalAccountBindingRequired": false
}}}}"#
    )
}

/// A running Pebble.
struct Pebble {
    api: SocketAddr,
    process: Background,
    dir: TempDir,
}

impl Pebble {
    /// Starts Pebble resolving every challenge through the DNS server at `dns`, and waits
    /// (bounded) until it listens.
    async fn start(dns: SocketAddr) -> Pebble {
        let dir = tempfile::tempdir().expect("temp dir");
        write_tls_files(dir.path());
        let ports = free_ports();
        let config = dir.path().join("pebble.json");
        std::fs::write(&config, pebble_config(dir.path(), ports)).expect("write pebble.json");
        let mut command = Command::new("pebble");
        command
            .arg("-config")
            .arg(&config)
            .args(["-dnsserver", &dns.to_string()])
            // No artificial validation delays, no rejected nonces (retries), fresh
            // authorizations for every order; and never "always valid", which would skip
            // the DNS lookups this test is about.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            .current_dir(dir.path());
        let log = dir.path().join("pebble.log");
        let mut pebble = Pebble {
            api: SocketAddr::from(([127, 0, 0, 1], ports[0])),
            process: Background::spawn(&mut command, log, "pebble"),
            dir,
        };
        pebble.wait_until_listening().await;
        pebble
    }

    async fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + PEBBLE_START;
        while tokio::net::TcpStream::connect(self.api).await.is_err() {
            if let Some(status) = self.process.exited() {
                panic!("pebble exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "pebble did not listen on {} within {PEBBLE_START:?}:\n{}",
                self.api,
                self.log()
            );
            sleep(Duration::from_millis(50)).await;
        }
    }

    fn directory(&self) -> String {
        format!("https://{}/dir", self.api)
    }

    /// The CA the clients must trust for Pebble's HTTPS endpoint.
    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn log(&self) -> String {
        self.process.log()
    }
}

// ------------------------------------------------------------------ the clients

#[derive(Debug, Clone, Copy)]
enum Client {
    Certbot,
    Lego,
}

impl Client {
    /// The client's command line for the certificate, with its state in `dir`.
    fn command(self, pebble: &Pebble, dns: SocketAddr, dir: &Path) -> Command {
        match self {
            Client::Certbot => certbot(pebble, dns, dir),
            Client::Lego => lego(pebble, dns, dir),
        }
    }

    /// Where the client leaves the certificate and its chain.
    fn fullchain(self, dir: &Path) -> PathBuf {
        match self {
            Client::Certbot => dir.join("config/live").join(ZONE).join("fullchain.pem"),
            Client::Lego => dir.join("lego/certificates/_.home.test.crt"),
        }
    }

    fn packages(self) -> &'static str {
        match self {
            Client::Certbot => "certbot python3-certbot-dns-rfc2136",
            Client::Lego => "lego",
        }
    }
}

/// `certbot certonly --dns-rfc2136` with its credentials file, config, work and logs in `dir`.
fn certbot(pebble: &Pebble, dns: SocketAddr, dir: &Path) -> Command {
    let credentials = dir.join("rfc2136.ini");
    let text = format!(
        "dns_rfc2136_server = {}\ndns_rfc2136_port = {}\ndns_rfc2136_name = {KEY}\n\
         dns_rfc2136_secret = {SECRET}\ndns_rfc2136_algorithm = HMAC-SHA256\n",
        dns.ip(),
        dns.port()
    );
    std::fs::write(&credentials, text).expect("write rfc2136.ini");
    // certbot warns about credentials others can read.
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600))
        .expect("chmod rfc2136.ini");
    let mut command = Command::new("certbot");
    command
        .args(["certonly", "--non-interactive", "--agree-tos"])
        .arg("--register-unsafely-without-email")
        .args(["--server", &pebble.directory()])
        .arg("--config-dir")
        .arg(dir.join("config"))
        .arg("--work-dir")
        .arg(dir.join("work"))
        .arg("--logs-dir")
        .arg(dir.join("logs"))
        .args(["--dns-rfc2136", "--dns-rfc2136-propagation-seconds", "1"])
        .arg("--dns-rfc2136-credentials")
        .arg(&credentials)
        .args(["--cert-name", ZONE])
        .env("REQUESTS_CA_BUNDLE", pebble.ca());
    for domain in DOMAINS {
        command.args(["-d", domain]);
    }
    command
}

/// `lego --dns rfc2136` with its state in `dir/lego`.
///
/// lego looks for the zone by asking `--dns.resolvers` for SOA records, and then, before
/// answering the challenge, waits until every authoritative nameserver of the zone has the
/// TXT record: it takes the NS names from the zone, resolves their addresses with the
/// system's resolver and asks them on port 53. A zone on a loopback test port cannot pass
/// that (nothing of ours listens on port 53, and the system's resolver is not loopback), so
/// `--dns.disable-cp` keeps only the first check, which asks `--dns.resolvers`: edgewise-dns.
fn lego(pebble: &Pebble, dns: SocketAddr, dir: &Path) -> Command {
    let mut command = Command::new("lego");
    command
        .args(["--accept-tos", "--email", "acme@home.test"])
        .args(["--server", &pebble.directory()])
        .arg("--path")
        .arg(dir.join("lego"))
        .args(["--dns", "rfc2136", "--dns.disable-cp"])
        .args(["--dns.resolvers", &dns.to_string()])
        .env("LEGO_CA_CERTIFICATES", pebble.ca())
        .env("RFC2136_NAMESERVER", dns.to_string())
        .env("RFC2136_TSIG_KEY", KEY)
        .env("RFC2136_TSIG_SECRET", SECRET)
        .env("RFC2136_TSIG_ALGORITHM", "hmac-sha256.")
        .env("RFC2136_PROPAGATION_TIMEOUT", "10")
        .env("RFC2136_POLLING_INTERVAL", "1")
        // lego solves one domain after the other, by default a minute apart.
        .env("RFC2136_SEQUENCE_INTERVAL", "1");
    for domain in DOMAINS {
        command.args(["-d", domain]);
    }
    command.arg("run");
    command
}

/// Runs the client to the end (bounded; killed if it takes longer), its output captured.
async fn run(client: Client, mut command: Command) -> Output {
    let output = command.kill_on_drop(true).output();
    timeout(CLIENT_WAIT, output)
        .await
        .unwrap_or_else(|_| panic!("{client:?} did not finish within {CLIENT_WAIT:?}"))
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {client:?} ({e}): apt-get install {}",
                client.packages()
            )
        })
}

fn output_text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

// ------------------------------------------------------------------ checks

/// The certificate chain at `path`: it parses, the leaf is valid for the zone's apex and
/// for any single label under it (the wildcard) but not two, and an issuer follows it.
fn check_certificate(path: &Path) {
    let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("PEM certificates in {}: {e}", path.display()));
    assert!(
        chain.len() >= 2,
        "the leaf and Pebble's intermediate: {} certificates",
        chain.len()
    );
    let leaf = webpki::EndEntityCert::try_from(&chain[0]).expect("the leaf parses as X.509");
    let valid = |name: &str| {
        let name = ServerName::try_from(name.to_string()).expect("a DNS name");
        leaf.verify_is_valid_for_subject_name(&name).is_ok()
    };
    for name in ["home.test", "no-such-label-was-asked-for.home.test"] {
        assert!(valid(name), "the certificate covers {name}");
    }
    assert!(
        !valid("a.b.home.test") && !valid("other.test"),
        "the certificate covers only what was asked"
    );
}

/// The challenge TXT records edgewise-dns serves now.
async fn challenge_records(server: &TestServer) -> usize {
    let reply = server.raw_udp(&q(CHALLENGE_NAME, RecordType::TXT)).await;
    let txt = u16::from(RecordType::TXT);
    reply.answer.iter().filter(|rr| rr.rtype == txt).count()
}

/// The zone's SOA serial as edgewise-dns serves it (the serial is the 20th to 17th byte
/// from the end of SOA RDATA, whatever the names before it).
async fn serial(server: &TestServer) -> u32 {
    let reply = server.raw_udp(&q("home.test.", RecordType::SOA)).await;
    let rdata = &reply.answer.first().expect("an SOA answer").rdata;
    let at = rdata.len() - 20;
    u32::from_be_bytes(rdata[at..at + 4].try_into().expect("four bytes"))
}

// ------------------------------------------------------------------ the proof

/// Obtains the certificate with `client` and checks it, the updates and the cleanup.
async fn prove(client: Client) {
    let dns = start(&edgewise_config(), &[]).await;
    let pebble = Pebble::start(dns.addr()).await;
    let work = tempfile::tempdir().expect("temp dir");

    let began = Instant::now();
    let output = run(client, client.command(&pebble, dns.addr(), work.path())).await;
    let took = began.elapsed();
    assert!(
        output.status.success(),
        "{client:?} failed ({}):\n{}\nPebble's log:\n{}",
        output.status,
        output_text(&output),
        pebble.log()
    );
    eprintln!("{client:?} obtained {DOMAINS:?} through edgewise-dns in {took:.1?}");

    check_certificate(&client.fullchain(work.path()));
    // One TXT record added and then deleted per domain: four updates, each a new serial.
    assert_eq!(
        serial(&dns).await,
        FIRST_SERIAL + 4,
        "{client:?} added and removed one TXT record for each of {DOMAINS:?}"
    );
    assert_eq!(
        challenge_records(&dns).await,
        0,
        "{client:?} removed its TXT records"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_gets_a_wildcard_certificate_through_rfc2136_updates() {
    prove(Client::Certbot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_gets_a_wildcard_certificate_through_rfc2136_updates() {
    prove(Client::Lego).await;
}
