//! Certificates from an ACME CA (RFC 8555): edgewise-cdn orders them from Pebble (Debian
//! package `pebble`) with each challenge, tls-alpn-01 and http-01 answered by its own
//! listeners and dns-01 published in an edgewise-dns by TSIG-signed RFC 2136 updates; Pebble
//! resolves every name through that edgewise-dns. Each certificate is then served by SNI
//! and checked by curl against Pebble's issuing root. Renewal swaps the certificate under
//! load with no failed request; a failed renewal keeps the old certificate serving; a
//! restart serves the stored one at once.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http::Method;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::time::{Instant, sleep};

use crate::browser::Browser;
use crate::cdn_harness::{ADMIN_TOKEN, Cdn, Origin, Reply};
use crate::console_cdn::{open_console, table};
use crate::files::copy_dir;
use crate::harness::{TestServer, start};
use crate::pebble::{
    ACME_KEY, ACME_SECRET, ACME_ZONE, Pebble, PebbleOptions, acme_zone_config, free_ports,
};

const ZONE: &str = ACME_ZONE;
const KEY: &str = ACME_KEY;
const SECRET: &str = ACME_SECRET;
/// How long the first certificate may take: Pebble validates in well under a second.
const ISSUE_WITHIN: Duration = Duration::from_secs(60);

/// The zone Pebble resolves through: every name of it at 127.0.0.1.
fn dns_config() -> String {
    acme_zone_config(
        1,
        r#"{ name = "@", type = "A", values = ["127.0.0.1"] },
  { name = "*", type = "A", values = ["127.0.0.1"] },"#,
    )
}

/// Everything one test runs: edgewise-dns, Pebble, an origin and edgewise-cdn.
struct Setup {
    dns: TestServer,
    pebble: Pebble,
    origin: Origin,
    https: u16,
    http: u16,
}

impl Setup {
    /// Starts edgewise-dns and Pebble validating on the ports the CDN will listen on, and an
    /// origin; Pebble's certificates last `validity` seconds when given.
    async fn start(validity: Option<u64>) -> Setup {
        Setup::start_with(validity, None).await
    }

    /// [`Setup::start`] with Pebble requiring External Account Binding with `eab`.
    async fn start_with(validity: Option<u64>, eab: Option<(&'static str, &'static str)>) -> Setup {
        let dns = start(&dns_config(), &[]).await;
        let [https, http] = free_ports();
        let pebble = Pebble::start(
            dns.addr(),
            PebbleOptions {
                http_port: http,
                tls_port: https,
                validity,
                eab,
            },
        )
        .await;
        let origin = Origin::start().await;
        origin.route("*", Reply::ok("from the origin"));
        Setup {
            dns,
            pebble,
            origin,
            https,
            http,
        }
    }

    /// A CDN config with one ACME certificate for `names` (none: every distribution host),
    /// proved by `challenge`.
    fn config(&self, challenge: &str, names: &[&str], renew_before: &str) -> String {
        let names = if names.is_empty() {
            "\"distributions\"".to_string()
        } else {
            format!("{names:?}")
        };
        let dns = if challenge == "dns-01" {
            format!(
                "dns = {{ server = \"{}\", tsig_key = \"{KEY}\", secret = \"{SECRET}\" }}",
                self.dns.addr()
            )
        } else {
            String::new()
        };
        format!(
            r#"[cdn]
https_listen = ["127.0.0.1:{https}"]
http_listen = ["127.0.0.1:{http}"]
admin_listen = ["127.0.0.1:0"]
admin_token = "{ADMIN_TOKEN}"
data_dir = "data"

[cdn.acme]
directory = "{directory}"
ca_roots = "{ca}"
email = "admin@{ZONE}"
challenge = "{challenge}"
renew_before = "{renew_before}"
{dns}

[[cdn.certs]]
acme = true
names = {names}

[[cdn.distributions]]
id = "site"
hosts = ["www.{ZONE}", "{ZONE}", "media.{ZONE}"]
[[cdn.distributions.origins]]
id = "app"
url = "{origin}"
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#,
            https = self.https,
            http = self.http,
            directory = self.pebble.directory(),
            ca = self.pebble.ca().display(),
            origin = self.origin.url(),
        )
    }

    fn https_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.https))
    }
}

/// The chain the CDN presents for `sni`, taking any certificate.
async fn presented(addr: SocketAddr, sni: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let config = edgewise::net::tls::client_config(false);
    let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let connect = async {
        let tcp = TcpStream::connect(addr).await?;
        tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
    };
    let tls = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(tls
        .get_ref()
        .1
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.clone().into_owned())
        .collect())
}

/// Whether `chain` verifies for `sni` against `roots` (Pebble's issuing root).
fn verifies(chain: &[CertificateDer<'static>], sni: &str, roots: &RootCertStore) -> bool {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return false;
    };
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots.clone()),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("a verifier");
    let name = ServerName::try_from(sni.to_string()).expect("a DNS name");
    rustls::client::danger::ServerCertVerifier::verify_server_cert(
        verifier.as_ref(),
        leaf,
        intermediates,
        &name,
        &[],
        rustls_pki_types::UnixTime::now(),
    )
    .is_ok()
}

fn roots(pem: &Path) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pem).expect("the root file") {
        roots.add(cert.expect("a PEM certificate")).expect("a root");
    }
    roots
}

/// Waits (bounded) until the CDN presents, for `sni`, a chain Pebble issued that is not
/// `other`; returns it.
async fn wait_for_issued(
    setup: &Setup,
    sni: &str,
    other: Option<&[CertificateDer<'static>]>,
    within: Duration,
) -> Vec<CertificateDer<'static>> {
    let roots = roots(&setup.pebble.issuing_root().await);
    let deadline = Instant::now() + within;
    loop {
        if let Ok(chain) = presented(setup.https_addr(), sni).await
            && verifies(&chain, sni, &roots)
            && other.is_none_or(|other| other[0] != chain[0])
        {
            return chain;
        }
        assert!(
            Instant::now() < deadline,
            "no certificate from Pebble for {sni} within {within:?}; Pebble's log:\n{}",
            setup.pebble.log()
        );
        sleep(Duration::from_millis(200)).await;
    }
}

/// `curl https://<sni>:<port>/` resolved to 127.0.0.1 and verified against Pebble's root.
async fn curl(setup: &Setup, sni: &str) -> (bool, String) {
    let root = setup.pebble.issuing_root().await;
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(&root)
        .arg("--resolve")
        .arg(format!("{sni}:{}:127.0.0.1", setup.https))
        .arg(format!("https://{sni}:{}/", setup.https))
        .output()
        .await
        .expect("curl runs (apt-get install curl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Issues a certificate for `names` with `challenge`, then checks it with curl for each
/// name in `check`.
async fn issue_with(challenge: &str, names: &[&str], check: &[&str]) -> (Setup, Cdn) {
    let setup = Setup::start(None).await;
    let cdn = Cdn::start(&setup.config(challenge, names, "30d")).await;
    for sni in check {
        wait_for_issued(&setup, sni, None, ISSUE_WITHIN).await;
        let (ok, text) = curl(&setup, sni).await;
        assert!(ok, "curl to {sni} verified against Pebble's root: {text}");
        assert_eq!(text, "from the origin");
    }
    (setup, cdn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn_01_gets_a_certificate_that_a_restart_serves_at_once() {
    let names = ["home.test", "www.home.test"];
    let (setup, cdn) = issue_with("tls-alpn-01", &names, &names).await;
    let issued = presented(setup.https_addr(), "www.home.test")
        .await
        .unwrap();
    let metrics = cdn
        .admin(Method::GET, "/metrics", Some(ADMIN_TOKEN), "")
        .await;
    let text = metrics.text();
    assert!(
        text.contains(
            r#"edgewise_cdn_acme_certificates_issued_total{names="home.test,www.home.test"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("edgewise_cdn_certificate_expiry_timestamp_seconds{"),
        "{text}"
    );
    // The console lists it: expiry years ahead (Pebble's default), one issued, none failed.
    let browser = Browser::launch().await;
    let page = open_console(&browser, cdn.admin.unwrap()).await;
    page.wait_for(
        "!document.getElementById('cdn-certs').hidden",
        Duration::from_secs(10),
    )
    .await;
    let rows = table(&page, "cdn-certs-table").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], "home.test, www.home.test");
    assert!(
        rows[0][1].starts_with("in ") && rows[0][1].ends_with(" d"),
        "{rows:?}"
    );
    assert_eq!(
        (rows[0][3].as_str(), rows[0][4].as_str()),
        ("1", "0"),
        "issued and failed orders: {rows:?}"
    );
    page.assert_no_errors();

    // The same data_dir in a new process: the stored certificate serves from the first
    // handshake, and nothing is ordered (it is far from due).
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&cdn.dir.path().join("data"), &dir.path().join("data"));
    let config = std::fs::read_to_string(cdn.dir.path().join("edgewise.toml")).unwrap();
    stop(cdn).await;
    let files: Vec<(&str, &[u8])> = vec![("edgewise.toml", config.as_bytes())];
    let cdn = Cdn::start_in(dir, &files).await;
    let served = presented(setup.https_addr(), "www.home.test")
        .await
        .unwrap();
    assert!(
        served[0] == issued[0],
        "the stored certificate is served at once (not a stand-in or a new one)"
    );
    let metrics = cdn
        .admin(Method::GET, "/metrics", Some(ADMIN_TOKEN), "")
        .await;
    assert!(
        metrics.text().contains(
            r#"edgewise_cdn_acme_certificates_issued_total{names="home.test,www.home.test"} 0"#
        ),
        "{}",
        metrics.text()
    );
}

/// Stops `cdn` and waits until its listeners are closed, so their ports can be bound again.
async fn stop(mut cdn: Cdn) {
    cdn.token.cancel();
    if let Some(handle) = cdn.handle.take() {
        tokio::time::timeout(Duration::from_secs(15), handle)
            .await
            .expect("the CDN stops")
            .expect("the CDN task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_is_bound_to_the_external_account_the_ca_requires() {
    const KID: &str = "homelab-kid";
    const MAC_KEY: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let setup = Setup::start_with(None, Some((KID, MAC_KEY))).await;
    let config = setup
        .config("tls-alpn-01", &["www.home.test"], "30d")
        .replace(
            "[[cdn.certs]]",
            &format!("eab = {{ kid = \"{KID}\", hmac_key = \"{MAC_KEY}\" }}\n\n[[cdn.certs]]"),
        );
    let _cdn = Cdn::start(&config).await;
    wait_for_issued(&setup, "www.home.test", None, ISSUE_WITHIN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_01_gets_a_certificate_for_every_distribution_host() {
    issue_with(
        "http-01",
        &[],
        &["home.test", "www.home.test", "media.home.test"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_01_gets_a_wildcard_certificate_and_removes_its_records() {
    let (setup, _cdn) = issue_with(
        "dns-01",
        &["*.home.test", "home.test"],
        &["media.home.test", "home.test"],
    )
    .await;
    // Both TXT values (the wildcard's and the apex's share the name) were deleted again.
    let reply = setup
        .dns
        .raw_udp(&crate::harness::q(
            "_acme-challenge.home.test.",
            hickory_proto::rr::RecordType::TXT,
        ))
        .await;
    assert!(reply.answer.is_empty(), "the challenge records are gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_replaces_the_certificate_under_load_with_no_failed_request() {
    // 30-second certificates renewed with 25 s left: due a third into their life (10 s).
    let setup = Setup::start(Some(30)).await;
    let cdn = Cdn::start(&setup.config("tls-alpn-01", &["www.home.test"], "25s")).await;
    let first = wait_for_issued(&setup, "www.home.test", None, ISSUE_WITHIN).await;

    // Verified HTTPS requests on fresh connections (each a new handshake), until the
    // certificate has changed and a little after.
    let root = roots(&setup.pebble.issuing_root().await);
    let (ok, failed, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let mut load = Vec::new();
    for _ in 0..4 {
        let (ok, failed, stop, root) = (ok.clone(), failed.clone(), stop.clone(), root.clone());
        let addr = setup.https_addr();
        load.push(tokio::spawn(async move {
            // Bounded: at most 3,000 requests per task.
            for _ in 0..3_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match verified_get(addr, "www.home.test", &root).await {
                    Ok(body) if body == "from the origin" => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let renewed = wait_for_issued(
        &setup,
        "www.home.test",
        Some(&first),
        Duration::from_secs(60),
    )
    .await;
    sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert_ne!(first[0], renewed[0]);
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("renewed under load: {ok} requests served, {failed} failed");
    assert!(ok > 0, "the load ran");
    assert_eq!(failed, 0, "no request failed across the renewal");
    let metrics = cdn
        .admin(Method::GET, "/metrics", Some(ADMIN_TOKEN), "")
        .await;
    assert!(
        metrics
            .text()
            .contains(r#"edgewise_cdn_acme_certificates_issued_total{names="www.home.test"} 2"#)
            || metrics.text().contains(
                r#"edgewise_cdn_acme_certificates_issued_total{names="www.home.test"} 3"#
            ),
        "{}",
        metrics.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_renewal_keeps_the_old_certificate_serving() {
    let setup = Setup::start(Some(30)).await;
    let cdn = Cdn::start(&setup.config("tls-alpn-01", &["www.home.test"], "25s")).await;
    let first = wait_for_issued(&setup, "www.home.test", None, ISSUE_WITHIN).await;
    // The CA goes away before the renewal is due (10 s into the certificate's life).
    setup.pebble.kill();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let metrics = cdn
            .admin(Method::GET, "/metrics", Some(ADMIN_TOKEN), "")
            .await;
        let failed = metrics
            .text()
            .contains(r#"edgewise_cdn_acme_orders_failed_total{names="www.home.test"} 1"#);
        if failed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failed renewal counted: {}",
            metrics.text()
        );
        sleep(Duration::from_millis(500)).await;
    }
    let served = presented(setup.https_addr(), "www.home.test")
        .await
        .unwrap();
    assert!(served[0] == first[0], "the old certificate still serves");
}

/// A GET over a new TLS connection verified against `roots`; the body.
async fn verified_get(
    addr: SocketAddr,
    sni: &str,
    roots: &RootCertStore,
) -> Result<String, String> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots.clone())
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let exchange = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let request = http::Request::get("/")
            .header("host", sni)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        crate::cdn_harness::exchange(tls, false, request).await
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "timed out".to_string())??;
    Ok(response.text())
}
