//! Health checks end to end: in-process HTTP, HTTPS and TCP endpoints whose answers the tests
//! change, a DNS server probing them every second, and what the status listener and the DNS
//! answers show. Every wait is a poll with a deadline, never a fixed sleep.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::RecordType;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::dns_routing::{
    Routing, eventually, route_config, routed, start_routing, wait_for_answer,
};

/// A self-signed certificate for `localhost` and 127.0.0.1 (P-256, valid until 2126), made once
/// with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500`.
/// It exists only for these tests; health checks do not verify certificates by default.
const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBmjCCAUGgAwIBAgIUIM0YPxSZGooIk21RLHgi5ONeVEUwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNTEwMTIxMVoYDzIxMjYxMTAx
MTAxMjExWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAS4LF1HKDcHVIr5cXDu/iav0Wy+RFVLXITssMG/NXz+B9YFx4kOFFDg
+ayI4KqRo0QUWEuWvkXVW/gSTrzOyBmEo28wbTAdBgNVHQ4EFgQU1vfFcGbQrL8n
jEqKfaIiMUoO3v8wHwYDVR0jBBgwFoAU1vfFcGbQrL8njEqKfaIiMUoO3v8wDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDRwAwRAIgGlwY4SuKxLH6434rTi1RVk3rZ/e5feHOuhN39Svjgc8CIFUk
E0UFmechodjT6hUXf5m4FsRBlSlt4CK/keqli5Wh
-----END CERTIFICATE-----
";
const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNX+8OXogBoRJYXYn
f7LVOw0/xErMLkyyNqWbT+FYAnShRANCAAS4LF1HKDcHVIr5cXDu/iav0Wy+RFVL
XITssMG/NXz+B9YFx4kOFFDg+ayI4KqRo0QUWEuWvkXVW/gSTrzOyBmE
-----END PRIVATE KEY-----
";

// ------------------------------------------------------------------ test endpoints

/// What an HTTP endpoint answers; changed by the test while checks run.
struct Behaviour {
    status: AtomicU16,
    body: Mutex<String>,
    /// This many coming requests get 500 whatever `status` says.
    fail_next: AtomicU32,
    /// Read requests but never answer them.
    hang: AtomicBool,
    requests: AtomicU64,
}

/// A tiny HTTP/1.1 server on 127.0.0.1 (optionally behind TLS) that answers every request with
/// the current status and body, then closes. Stopped (connection refused) when dropped.
pub struct HttpEndpoint {
    pub addr: SocketAddr,
    tls: bool,
    behaviour: Arc<Behaviour>,
    task: JoinHandle<()>,
}

impl HttpEndpoint {
    pub async fn start(status: u16, body: &str) -> HttpEndpoint {
        HttpEndpoint::spawn(status, body, None).await
    }

    /// The same server behind TLS with the self-signed test certificate.
    pub async fn start_tls(status: u16, body: &str) -> HttpEndpoint {
        let cert = CertificateDer::from_pem_slice(TEST_CERT.as_bytes()).expect("test cert");
        let key = PrivateKeyDer::from_pem_slice(TEST_KEY.as_bytes()).expect("test key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("the test certificate and key match");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        HttpEndpoint::spawn(status, body, Some(acceptor)).await
    }

    async fn spawn(
        status: u16,
        body: &str,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> HttpEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("bound address");
        let behaviour = Arc::new(Behaviour {
            status: AtomicU16::new(status),
            body: Mutex::new(body.to_string()),
            fail_next: AtomicU32::new(0),
            hang: AtomicBool::new(false),
            requests: AtomicU64::new(0),
        });
        let is_tls = tls.is_some();
        let shared = behaviour.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let behaviour = shared.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => answer_one(stream, &behaviour).await,
                        Some(acceptor) => {
                            if let Ok(Ok(stream)) = tokio::time::timeout(
                                Duration::from_secs(3),
                                acceptor.accept(stream),
                            )
                            .await
                            {
                                answer_one(stream, &behaviour).await;
                            }
                        }
                    }
                });
            }
        });
        HttpEndpoint {
            addr,
            tls: is_tls,
            behaviour,
            task,
        }
    }

    /// `http(s)://127.0.0.1:PORT/healthz`
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/healthz", self.addr)
    }

    pub fn set_status(&self, status: u16) {
        self.behaviour.status.store(status, Ordering::SeqCst);
    }

    pub fn set_body(&self, body: &str) {
        *self.behaviour.body.lock().unwrap() = body.to_string();
    }

    /// The next `n` requests get 500, then the configured status again.
    pub fn fail_next(&self, n: u32) {
        self.behaviour.fail_next.store(n, Ordering::SeqCst);
    }

    /// Whether requests are read and then left unanswered.
    pub fn set_hang(&self, hang: bool) {
        self.behaviour.hang.store(hang, Ordering::SeqCst);
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.behaviour.requests.load(Ordering::SeqCst)
    }
}

impl Drop for HttpEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head, answers it, closes.
async fn answer_one<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, behaviour: &Behaviour) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(3), read_head).await,
        Ok(true)
    ) {
        return;
    }
    behaviour.requests.fetch_add(1, Ordering::SeqCst);
    if behaviour.hang.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(30)).await;
        return;
    }
    let forced_failure = behaviour
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if forced_failure {
        500
    } else {
        behaviour.status.load(Ordering::SeqCst)
    };
    let body = behaviour.body.lock().unwrap().clone();
    let response = format!(
        "HTTP/1.1 {status} Test\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A TCP listener on 127.0.0.1 that accepts and drops connections; refused once stopped.
pub struct TcpEndpoint {
    pub addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl TcpEndpoint {
    pub async fn start() -> TcpEndpoint {
        TcpEndpoint::start_at("127.0.0.1:0".parse().unwrap()).await
    }

    pub async fn start_at(addr: SocketAddr) -> TcpEndpoint {
        let listener = TcpListener::bind(addr)
            .await
            .expect("bind the TCP endpoint");
        let addr = listener.local_addr().expect("bound address");
        let task = tokio::spawn(async move {
            loop {
                if let Ok((stream, _)) = listener.accept().await {
                    drop(stream);
                }
            }
        });
        TcpEndpoint {
            addr,
            task: Some(task),
        }
    }

    /// Closes the listener and waits until connecting is refused.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        eventually("the TCP endpoint refuses connections", || async {
            match TcpStream::connect(self.addr).await {
                Ok(_) => Err("still accepting".to_string()),
                Err(_) => Ok(()),
            }
        })
        .await;
    }
}

impl Drop for TcpEndpoint {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

// ------------------------------------------------------------------ status listener

/// `GET path` on the status listener: status code and body.
pub async fn status_get(addr: SocketAddr, path: &str) -> (u16, String) {
    status_request(addr, "GET", path, &[]).await
}

/// `method path` on the status listener with extra header lines (no body): status code and
/// body.
pub async fn status_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
) -> (u16, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect to status");
        let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
        let length = if method == "POST" {
            "Content-Length: 0\r\n"
        } else {
            ""
        };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{length}{extra}\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .expect("read the response");
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path} from {addr} timed out"));
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "expected a Content-Length body: {head}"
    );
    (status, body.to_string())
}

/// `GET /health-checks`, parsed.
pub async fn health_checks(routing: &Routing) -> Vec<Value> {
    let (status, body) = status_get(routing.status(), "/health-checks").await;
    assert_eq!(status, 200, "GET /health-checks: {body}");
    match serde_json::from_str(&body) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("/health-checks is not a JSON array: {other:?}\n{body}"),
    }
}

/// The `/health-checks` row of check `id`.
pub async fn check_row(routing: &Routing, id: &str) -> Value {
    health_checks(routing)
        .await
        .into_iter()
        .find(|row| row["id"] == id)
        .unwrap_or_else(|| panic!("no /health-checks row for {id}"))
}

/// Polls until check `id` reports `healthy`.
pub async fn wait_healthy(routing: &Routing, id: &str, healthy: bool) -> Value {
    eventually(&format!("check {id} healthy={healthy}"), || async {
        let row = check_row(routing, id).await;
        if row["healthy"] == healthy {
            Ok(row)
        } else {
            Err(format!("{row:#}"))
        }
    })
    .await
}

// ------------------------------------------------------------------ config pieces

/// A `[[health_checks]]` table probing every second that flips on the first result.
pub fn check(id: &str, kind: &str, target: &str, extra: &str) -> String {
    format!(
        "[[health_checks]]\nid = \"{id}\"\ntype = \"{kind}\"\ntarget = \"{target}\"\ninterval = \"1s\"\nfailure_threshold = 1\n{extra}\n"
    )
}

/// One failover pair per check id: `<id>.route.test` answers 192.0.2.1 while the check is
/// healthy and 192.0.2.2 (no check) otherwise, so DNS shows each check's state.
pub fn watchers(ids: &[&str]) -> Vec<String> {
    ids.iter()
        .flat_map(|id| {
            [
                routed(
                    id,
                    "A",
                    30,
                    "p",
                    r#"failover = "primary""#,
                    &["192.0.2.1"],
                    Some(id),
                ),
                routed(
                    id,
                    "A",
                    30,
                    "s",
                    r#"failover = "secondary""#,
                    &["192.0.2.2"],
                    None,
                ),
            ]
        })
        .collect()
}

/// A server whose checks are `checks` (TOML), each watched by a failover pair.
async fn watched(checks: &str, ids: &[&str]) -> Routing {
    start_routing(&route_config(checks, "", &watchers(ids)), &[]).await
}

/// Waits until the watcher of `id` answers as healthy (primary) or not (secondary).
async fn wait_dns(routing: &Routing, id: &str, healthy: bool) {
    let want = if healthy { "192.0.2.1" } else { "192.0.2.2" };
    wait_for_answer(
        routing,
        &format!("{id}.route.test."),
        RecordType::A,
        None,
        &[want],
    )
    .await;
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

// ------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_check_with_expect_status_is_healthy_only_for_the_listed_statuses() {
    let web = HttpEndpoint::start(200, "fine").await;
    let routing = watched(
        &check("teapot", "http", &web.url(), "expect_status = [418, 204]"),
        &["teapot"],
    )
    .await;
    // 200 is not listed: the check starts healthy and goes down on the first probe.
    let row = wait_healthy(&routing, "teapot", false).await;
    assert_eq!(
        row["last_error"], "status 200, expected 418 or 204",
        "{row:#}"
    );
    wait_dns(&routing, "teapot", false).await;
    web.set_status(418);
    wait_healthy(&routing, "teapot", true).await;
    wait_dns(&routing, "teapot", true).await;
    web.set_status(204);
    let before = web.requests();
    eventually("two more probes", || async {
        (web.requests() >= before + 2)
            .then_some(())
            .ok_or_else(|| "waiting".to_string())
    })
    .await;
    assert_eq!(check_row(&routing, "teapot").await["healthy"], true);
    web.set_status(503);
    wait_healthy(&routing, "teapot", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_check_without_expect_status_accepts_2xx_and_3xx_only() {
    let web = HttpEndpoint::start(302, "moved").await;
    let routing = watched(&check("web", "http", &web.url(), ""), &["web"]).await;
    let before = web.requests();
    eventually("two probes", || async {
        (web.requests() >= before + 2)
            .then_some(())
            .ok_or_else(|| "waiting".to_string())
    })
    .await;
    let row = check_row(&routing, "web").await;
    assert_eq!(row["healthy"], true, "302 is healthy: {row:#}");
    assert_eq!(row["last_result"], "success", "{row:#}");
    web.set_status(404);
    let row = wait_healthy(&routing, "web", false).await;
    assert_eq!(
        row["last_error"], "status 404, expected 2xx or 3xx",
        "{row:#}"
    );
    wait_dns(&routing, "web", false).await;
    web.set_status(200);
    wait_dns(&routing, "web", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_check_search_string_must_lie_wholly_within_the_first_5120_bytes() {
    let web = HttpEndpoint::start(200, "status: down").await;
    let routing = watched(
        &check("search", "http", &web.url(), r#"search_string = "READY""#),
        &["search"],
    )
    .await;
    let row = wait_healthy(&routing, "search", false).await;
    assert_eq!(
        row["last_error"], "\"READY\" not in the first 5120 bytes of the body",
        "{row:#}"
    );
    wait_dns(&routing, "search", false).await;

    web.set_body("status: READY");
    wait_healthy(&routing, "search", true).await;
    wait_dns(&routing, "search", true).await;

    // At byte 6000: beyond the window.
    web.set_body(&format!("{}READY", "x".repeat(6000)));
    wait_healthy(&routing, "search", false).await;

    // Ending exactly at byte 5120 is inside; starting one byte later crosses the edge.
    web.set_body(&format!("{}READY", "x".repeat(5120 - 5)));
    wait_healthy(&routing, "search", true).await;
    web.set_body(&format!("{}READY", "x".repeat(5120 - 4)));
    wait_healthy(&routing, "search", false).await;

    // Case matters.
    web.set_body("status: ready");
    web.set_status(200);
    let before = web.requests();
    eventually("two probes of the lower-case body", || async {
        (web.requests() >= before + 2)
            .then_some(())
            .ok_or_else(|| "waiting".to_string())
    })
    .await;
    assert_eq!(check_row(&routing, "search").await["healthy"], false);

    // The status still has to match when the string is there.
    web.set_body("READY");
    wait_healthy(&routing, "search", true).await;
    web.set_status(500);
    wait_healthy(&routing, "search", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_check_fails_when_the_endpoint_does_not_answer_within_the_timeout() {
    let web = HttpEndpoint::start(200, "ok").await;
    let routing = watched(
        &check("slow", "http", &web.url(), r#"timeout = "1s""#),
        &["slow"],
    )
    .await;
    eventually("a successful probe", || async {
        let row = check_row(&routing, "slow").await;
        (row["last_result"] == "success")
            .then_some(())
            .ok_or_else(|| format!("{row:#}"))
    })
    .await;
    web.set_hang(true);
    let row = wait_healthy(&routing, "slow", false).await;
    let error = row["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("within 1s") || error.contains("timed out after 1s"),
        "a timeout error: {row:#}"
    );
    wait_dns(&routing, "slow", false).await;
    web.set_hang(false);
    wait_healthy(&routing, "slow", true).await;
    wait_dns(&routing, "slow", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inverted_check_is_healthy_while_the_endpoint_fails_and_unhealthy_while_it_works() {
    let web = HttpEndpoint::start(503, "down").await;
    let routing = watched(&check("inv", "http", &web.url(), "invert = true"), &["inv"]).await;
    // Inverted checks start unhealthy, before any probe.
    let row = check_row(&routing, "inv").await;
    if row["last_checked"].is_null() {
        assert_eq!(
            row["healthy"], false,
            "inverted checks start unhealthy: {row:#}"
        );
    }
    let row = wait_healthy(&routing, "inv", true).await;
    assert_eq!(row["last_result"], "success", "{row:#}");
    wait_dns(&routing, "inv", true).await;

    web.set_status(200);
    let row = wait_healthy(&routing, "inv", false).await;
    assert_eq!(row["last_result"], "failure", "{row:#}");
    assert_eq!(
        row["last_error"], "endpoint is up (inverted check)",
        "{row:#}"
    );
    wait_dns(&routing, "inv", false).await;

    // A refused connection is a failure too, so inverted it is healthy.
    drop(web);
    wait_healthy(&routing, "inv", true).await;
    wait_dns(&routing, "inv", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_check_accepts_a_self_signed_certificate_unless_verify_tls_is_set() {
    let web = HttpEndpoint::start_tls(200, "secure READY").await;
    let plain = HttpEndpoint::start(200, "x").await;
    let checks = [
        check("tls", "https", &web.url(), r#"search_string = "READY""#),
        check("strict", "https", &web.url(), "verify_tls = true"),
        // an HTTPS check of a plain-HTTP endpoint fails its handshake
        check(
            "plain",
            "https",
            &plain.url().replace("http:", "https:"),
            "",
        ),
    ]
    .concat();
    let routing = watched(&checks, &["tls", "strict", "plain"]).await;
    let strict = wait_healthy(&routing, "strict", false).await;
    let error = strict["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("TLS handshake with 127.0.0.1"),
        "a self-signed certificate fails verification: {strict:#}"
    );
    wait_healthy(&routing, "plain", false).await;
    eventually("the lenient HTTPS check has probed", || async {
        let row = check_row(&routing, "tls").await;
        (row["last_result"] == "success")
            .then_some(())
            .ok_or_else(|| format!("{row:#}"))
    })
    .await;
    assert!(web.requests() >= 1, "the HTTPS endpoint was asked");
    wait_dns(&routing, "tls", true).await;
    wait_dns(&routing, "strict", false).await;

    web.set_status(500);
    wait_healthy(&routing, "tls", false).await;
    wait_dns(&routing, "tls", false).await;
    web.set_status(200);
    web.set_body("nothing here");
    let row = wait_healthy(&routing, "tls", false).await;
    assert_eq!(row["type"], "https");
    web.set_body("READY");
    wait_healthy(&routing, "tls", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_check_follows_the_listener_going_away_and_coming_back() {
    let mut endpoint = TcpEndpoint::start().await;
    let addr = endpoint.addr;
    let routing = watched(&check("port", "tcp", &addr.to_string(), ""), &["port"]).await;
    eventually("a successful TCP probe", || async {
        let row = check_row(&routing, "port").await;
        (row["last_result"] == "success")
            .then_some(())
            .ok_or_else(|| format!("{row:#}"))
    })
    .await;
    wait_dns(&routing, "port", true).await;

    endpoint.stop().await;
    let row = wait_healthy(&routing, "port", false).await;
    let error = row["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(&format!("connect to 127.0.0.1:{}", addr.port())),
        "{row:#}"
    );
    wait_dns(&routing, "port", false).await;

    let _again = TcpEndpoint::start_at(addr).await;
    wait_healthy(&routing, "port", true).await;
    wait_dns(&routing, "port", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calculated_check_is_healthy_while_at_least_healthy_threshold_children_are() {
    let webs = [
        HttpEndpoint::start(200, "a").await,
        HttpEndpoint::start(200, "b").await,
        HttpEndpoint::start(200, "c").await,
    ];
    let checks = [
        check("c1", "http", &webs[0].url(), ""),
        check("c2", "http", &webs[1].url(), ""),
        check("c3", "http", &webs[2].url(), ""),
        "[[health_checks]]\nid = \"two-of-three\"\ntype = \"calculated\"\nchildren = [\"c1\", \"c2\", \"c3\"]\nhealthy_threshold = 2\n\n".to_string(),
        // calculated of calculated, inverted: healthy exactly when two-of-three is not
        "[[health_checks]]\nid = \"not-two\"\ntype = \"calculated\"\nchildren = [\"two-of-three\"]\ninvert = true\n\n".to_string(),
    ]
    .concat();
    let routing = watched(&checks, &["two-of-three", "not-two"]).await;
    let row = check_row(&routing, "two-of-three").await;
    assert_eq!(row["type"], "calculated");
    assert_eq!(row["target"], "2 of 3 children");
    assert_eq!(row["healthy"], true);
    assert_eq!(check_row(&routing, "not-two").await["healthy"], false);
    wait_dns(&routing, "two-of-three", true).await;
    wait_dns(&routing, "not-two", false).await;

    webs[0].set_status(500);
    wait_healthy(&routing, "c1", false).await;
    // two children left: still healthy
    assert_eq!(check_row(&routing, "two-of-three").await["healthy"], true);
    wait_dns(&routing, "two-of-three", true).await;

    webs[1].set_status(500);
    wait_healthy(&routing, "two-of-three", false).await;
    wait_healthy(&routing, "not-two", true).await;
    wait_dns(&routing, "two-of-three", false).await;
    wait_dns(&routing, "not-two", true).await;

    webs[0].set_status(200);
    wait_healthy(&routing, "two-of-three", true).await;
    wait_healthy(&routing, "not-two", false).await;
    wait_dns(&routing, "two-of-three", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failure_does_not_flip_a_check_whose_failure_threshold_is_2() {
    let web = HttpEndpoint::start(200, "ok").await;
    let toml = "[[health_checks]]\nid = \"steady\"\ntype = \"http\"\ntarget = \"URL\"\ninterval = \"1s\"\nfailure_threshold = 2\n\n"
        .replace("URL", &web.url());
    let routing = watched(&toml, &["steady"]).await;
    eventually("a first successful probe", || async {
        let row = check_row(&routing, "steady").await;
        (row["probes_ok"].as_u64() >= Some(1))
            .then_some(())
            .ok_or_else(|| format!("{row:#}"))
    })
    .await;

    // Exactly one failed probe, then successes again.
    web.fail_next(1);
    let row = eventually("the single failure and two successes after it", || async {
        let row = check_row(&routing, "steady").await;
        let done = row["probes_failed"] == 1 && row["consecutive_successes"].as_u64() >= Some(2);
        done.then(|| row.clone()).ok_or_else(|| format!("{row:#}"))
    })
    .await;
    assert_eq!(row["healthy"], true, "one failure must not flip: {row:#}");
    assert!(row["last_change"].is_null(), "never flipped: {row:#}");
    wait_dns(&routing, "steady", true).await;

    // Two failures in a row flip it; success_threshold defaults to 2 as well, so two
    // successes bring it back.
    web.fail_next(2);
    let row = wait_healthy(&routing, "steady", false).await;
    assert_eq!(row["consecutive_failures"], 2, "{row:#}");
    let row = wait_healthy(&routing, "steady", true).await;
    assert_eq!(row["consecutive_successes"], 2, "{row:#}");
    assert_eq!(row["probes_failed"], 3, "{row:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_json_shows_identity_state_and_timings_of_every_check() {
    let web = HttpEndpoint::start(200, "ok").await;
    let tcp = TcpEndpoint::start().await;
    let checks = [
        check("web", "http", &web.url(), ""),
        check("port", "tcp", &tcp.addr.to_string(), ""),
        "[[health_checks]]\nid = \"either\"\ntype = \"calculated\"\nchildren = [\"web\", \"port\"]\n\n"
            .to_string(),
    ]
    .concat();
    let started = now_unix();
    let routing = watched(&checks, &["web"]).await;

    // Before anything has run: the configured checks, healthy, no results yet.
    let rows = health_checks(&routing).await;
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["web", "port", "either"], "config order: {rows:#?}");

    let web_row = eventually("both endpoint checks have probed", || async {
        let rows = health_checks(&routing).await;
        let probed = rows[..2].iter().all(|r| !r["last_checked"].is_null());
        probed
            .then(|| rows[0].clone())
            .ok_or_else(|| format!("{rows:#?}"))
    })
    .await;
    for field in [
        "id",
        "type",
        "target",
        "healthy",
        "last_result",
        "last_error",
        "latency_ms",
        "last_checked",
        "last_change",
    ] {
        assert!(web_row.get(field).is_some(), "{field} missing: {web_row:#}");
    }
    assert_eq!(web_row["type"], "http");
    assert_eq!(web_row["target"], web.url());
    assert_eq!(web_row["healthy"], true);
    assert_eq!(web_row["last_result"], "success");
    assert!(web_row["last_error"].is_null(), "{web_row:#}");
    let latency = web_row["latency_ms"]
        .as_f64()
        .expect("latency_ms is a number");
    assert!((0.0..2000.0).contains(&latency), "{web_row:#}");
    let checked = web_row["last_checked"]
        .as_f64()
        .expect("last_checked is a number");
    assert!(
        checked >= started - 1.0 && checked <= now_unix() + 1.0,
        "last_checked is Unix seconds of the probe: {web_row:#}"
    );
    assert!(web_row["last_change"].is_null(), "{web_row:#}");

    let port_row = check_row(&routing, "port").await;
    assert_eq!(port_row["type"], "tcp");
    assert_eq!(port_row["target"], tcp.addr.to_string());
    let either = check_row(&routing, "either").await;
    assert_eq!(either["type"], "calculated");
    assert_eq!(either["target"], "1 of 2 children");
    assert_eq!(either["healthy"], true);

    web.set_status(500);
    let flipped = wait_healthy(&routing, "web", false).await;
    assert_eq!(flipped["last_result"], "failure");
    assert_eq!(flipped["last_error"], "status 500, expected 2xx or 3xx");
    let change = flipped["last_change"]
        .as_f64()
        .expect("last_change after a flip");
    assert!(
        change >= checked && change <= now_unix() + 1.0,
        "{flipped:#}"
    );
    assert_eq!(check_row(&routing, "either").await["healthy"], true);

    let (status, body) = status_get(routing.status(), "/nothing-here").await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_each_checks_health_as_1_or_0() {
    let web = HttpEndpoint::start(200, "ok").await;
    let tcp = TcpEndpoint::start().await;
    let checks = [
        check("web", "http", &web.url(), ""),
        check("port", "tcp", &tcp.addr.to_string(), ""),
    ]
    .concat();
    let routing = watched(&checks, &["web"]).await;
    let metrics = || async {
        let (status, body) = status_get(routing.status(), "/metrics").await;
        assert_eq!(status, 200, "{body}");
        body
    };
    let body = metrics().await;
    assert!(
        body.contains("# TYPE edgewise_health_check_healthy gauge\n"),
        "{body}"
    );
    let up_web = "edgewise_health_check_healthy{id=\"web\",type=\"http\"} 1.0\n";
    let up_port = "edgewise_health_check_healthy{id=\"port\",type=\"tcp\"} 1.0\n";
    assert!(body.contains(up_web) && body.contains(up_port), "{body}");

    web.set_status(500);
    wait_healthy(&routing, "web", false).await;
    let body = metrics().await;
    assert!(
        body.contains("edgewise_health_check_healthy{id=\"web\",type=\"http\"} 0.0\n"),
        "{body}"
    );
    assert!(body.contains(up_port), "{body}");
    assert!(
        body.lines().any(|l| l
            .starts_with("edgewise_health_check_probes_failed_total{id=\"web\",type=\"http\"} ")
            && !l.ends_with(" 0")),
        "{body}"
    );
}
