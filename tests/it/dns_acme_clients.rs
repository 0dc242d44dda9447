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

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::process::Command;
use tokio::time::{Instant, timeout};

use crate::harness::{TestServer, q, start};
use crate::pebble::{ACME_KEY, ACME_SECRET, ACME_ZONE, Pebble, PebbleOptions, acme_zone_config};

const ZONE: &str = ACME_ZONE;
const KEY: &str = ACME_KEY;
const SECRET: &str = ACME_SECRET;
const FIRST_SERIAL: u32 = 100;
/// The names of the certificate, the wildcard first (lego names its files after it).
const DOMAINS: [&str; 2] = ["*.home.test", "home.test"];
/// The TXT records' name for both domains (RFC 8555 §8.4: a wildcard's is its base's).
const CHALLENGE_NAME: &str = "_acme-challenge.home.test.";
/// The longest a client may take; each takes seconds when all is well.
const CLIENT_WAIT: Duration = Duration::from_secs(45);

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
    let dns = start(&acme_zone_config(FIRST_SERIAL, ""), &[]).await;
    let pebble = Pebble::start(dns.addr(), PebbleOptions::default()).await;
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
