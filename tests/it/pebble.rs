//! Pebble (Debian package `pebble`, Let's Encrypt's ACME test server) on 127.0.0.1 ephemeral
//! ports, resolving every name through a DNS server of the test's (edgewise-dns), with its
//! HTTPS endpoint certified by a CA written for the test.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::Command;
use tokio::time::{Instant, sleep};

use crate::background::Background;

/// The zone ACME tests prove names in, and the TSIG key that may update it.
pub const ACME_ZONE: &str = "home.test";
pub const ACME_KEY: &str = "acme";
pub const ACME_SECRET: &str = "YWNtZS1hY21lLWFjbWUtYWNtZS1hY21lLWFjbWUhIQ==";

/// An edgewise-dns config serving [`ACME_ZONE`] (SOA serial `serial`, NS `ns1` at
/// 127.0.0.1, and `records`: more inline record tables), where [`ACME_KEY`] may change the
/// `_acme-challenge` TXT records (of the apex and of any name below it) and nothing else.
/// ACME clients find the zone by asking for the SOA of the challenge name's parents.
pub fn acme_zone_config(serial: u32, records: &str) -> String {
    format!(
        r#"
[dns]
data_dir = "data"
[[dns.tsig_keys]]
name = "{ACME_KEY}"
secret = "{ACME_SECRET}"

[[dns.zones]]
name = "{ACME_ZONE}"
soa = {{ mname = "ns1.{ACME_ZONE}.", rname = "hostmaster.{ACME_ZONE}.", serial = {serial} }}
allow_update = [{{ key = "{ACME_KEY}", names = ["_acme-challenge", "_acme-challenge.*"], types = ["TXT"] }}]
records = [
  {{ name = "@", type = "NS", values = ["ns1.{ACME_ZONE}."] }},
  {{ name = "ns1", type = "A", values = ["127.0.0.1"] }},
  {records}
]
"#
    )
}

/// The longest Pebble may take to listen.
const PEBBLE_START: Duration = Duration::from_secs(10);

/// `N` distinct free TCP ports on 127.0.0.1, released for a server to bind.
pub fn free_ports<const N: usize>() -> [u16; N] {
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

/// Where Pebble validates http-01 and tls-alpn-01 challenges, and how long its
/// certificates last.
#[derive(Debug, Clone, Copy, Default)]
pub struct PebbleOptions {
    /// The port Pebble connects to for http-01; 0: a free port nobody answers.
    pub http_port: u16,
    /// The port Pebble connects to for tls-alpn-01; 0: a free port nobody answers.
    pub tls_port: u16,
    /// Seconds its certificates are valid; `None`: Pebble's default (years).
    pub validity: Option<u64>,
    /// External Account Binding required, with this key id and base64url MAC key.
    pub eab: Option<(&'static str, &'static str)>,
}

/// A running Pebble.
pub struct Pebble {
    api: SocketAddr,
    management: SocketAddr,
    process: Background,
    dir: TempDir,
}

impl Pebble {
    /// Starts Pebble resolving every challenge through the DNS server at `dns`, and waits
    /// (bounded) until it listens.
    pub async fn start(dns: SocketAddr, options: PebbleOptions) -> Pebble {
        let dir = tempfile::tempdir().expect("temp dir");
        write_tls_files(dir.path());
        let [api, management, spare_http, spare_tls] = free_ports();
        let pick = |port: u16, spare: u16| if port == 0 { spare } else { port };
        let validity = options.validity.map_or(String::new(), |s| {
            format!(",\n  \"certificateValidityPeriod\": {s}")
        });
        let eab = options.eab.map_or(String::new(), |(kid, key)| {
            format!(",\n  \"externalAccountMACKeys\": {{\"{kid}\": \"{key}\"}}")
        });
        let config = format!(
            r#"{{"pebble": {{
  "listenAddress": "127.0.0.1:{api}",
  "managementListenAddress": "127.0.0.1:{management}",
  "certificate": "{dir}/cert.pem",
  "privateKey": "{dir}/key.pem",
  "httpPort": {http},
  "tlsPort": {tls},
  "ocspResponderURL": "",
  "externalAccountBindingRequired": {required}{validity}{eab}
}}}}"#,
            dir = dir.path().display(),
            http = pick(options.http_port, spare_http),
            tls = pick(options.tls_port, spare_tls),
            required = options.eab.is_some(),
        );
        let path = dir.path().join("pebble.json");
        std::fs::write(&path, config).expect("write pebble.json");
        let mut command = Command::new("pebble");
        command
            .arg("-config")
            .arg(&path)
            .args(["-dnsserver", &dns.to_string()])
            // No artificial validation delays, no rejected nonces (retries), fresh
            // authorizations for every order; and never "always valid", which would skip
            // the validations the tests are about.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            .current_dir(dir.path());
        let log = dir.path().join("pebble.log");
        let mut pebble = Pebble {
            api: SocketAddr::from(([127, 0, 0, 1], api)),
            management: SocketAddr::from(([127, 0, 0, 1], management)),
            process: Background::spawn(&mut command, log, "pebble"),
            dir,
        };
        pebble.wait_until_listening().await;
        pebble
    }

    async fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + PEBBLE_START;
        for addr in [self.api, self.management] {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                if let Some(status) = self.process.exited() {
                    panic!("pebble exited ({status}):\n{}", self.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "pebble did not listen on {addr} within {PEBBLE_START:?}:\n{}",
                    self.log()
                );
                sleep(Duration::from_millis(50)).await;
            }
        }
    }

    pub fn directory(&self) -> String {
        format!("https://{}/dir", self.api)
    }

    /// The CA the clients must trust for Pebble's HTTPS endpoint.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Writes the root Pebble issues certificates under (a fresh one per run, from its
    /// management endpoint) to a file and returns its path.
    pub async fn issuing_root(&self) -> PathBuf {
        let path = self.dir.path().join("issuing-root.pem");
        let output = Command::new("curl")
            .args(["-sSf", "--max-time", "10", "--cacert"])
            .arg(self.ca())
            .arg(format!("https://{}/roots/0", self.management))
            .arg("-o")
            .arg(&path)
            .output()
            .await
            .expect("curl runs (apt-get install curl)");
        assert!(
            output.status.success(),
            "fetching Pebble's root: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        path
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Kills Pebble: the CA is gone.
    pub fn kill(&self) {
        self.process.signal(rustix::process::Signal::KILL);
    }
}
