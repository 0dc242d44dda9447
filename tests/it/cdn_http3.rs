//! HTTP/3 (`[cdn] http3 = true`) with a real HTTP/3 client (h3 over quinn, trusting the
//! CDN's certificate): the same pipeline as HTTP/1.1 and HTTP/2 — cache hits, ranges,
//! compression, signed URLs, geo restriction, real-time log fields — Alt-Svc on the TCP
//! protocols naming the QUIC port, and the limits (concurrent streams, idle timeout, no
//! 0-RTT).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_compression::tokio::bufread::BrotliDecoder;
use bytes::{Buf, Bytes, BytesMut};
use edgewise::cdn::realtime_log::run_writer;
use http::{HeaderMap, Request, StatusCode};
use tokio::io::AsyncReadExt as _;

use crate::cdn_harness::*;
use crate::cdn_signed;

/// An HTTP/3 client connection to the CDN, its driver running in the background.
struct H3 {
    /// `site.test:<port>`: the authority a browser sends.
    authority: String,
    endpoint: quinn::Endpoint,
    quic: quinn::Connection,
    send: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    driver: tokio::task::JoinHandle<()>,
}

/// What came back: the head and the whole body.
struct H3Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl H3Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn client_config(cdn: &Cdn) -> quinn::ClientConfig {
    client_config_with(cdn, false)
}

/// A client trusting the CDN's certificate, sending early data when `early` and a session
/// ticket allows it.
fn client_config_with(cdn: &Cdn, early: bool) -> quinn::ClientConfig {
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(cdn.roots.clone())
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    tls.enable_early_data = early;
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("QUIC TLS");
    quinn::ClientConfig::new(Arc::new(quic))
}

impl H3 {
    /// Connects to the CDN's QUIC side (the HTTPS listener's address) for `SITE`.
    async fn connect(cdn: &Cdn) -> H3 {
        H3::try_connect(cdn).await.expect("an HTTP/3 connection")
    }

    async fn try_connect(cdn: &Cdn) -> Result<H3, String> {
        H3::try_connect_to(cdn, cdn.https.expect("an HTTPS listener")).await
    }

    /// Connects to `addr`, one of the CDN's HTTPS addresses.
    async fn connect_to(cdn: &Cdn, addr: SocketAddr) -> H3 {
        H3::try_connect_to(cdn, addr)
            .await
            .expect("an HTTP/3 connection")
    }

    async fn try_connect_to(cdn: &Cdn, addr: SocketAddr) -> Result<H3, String> {
        let mut endpoint =
            quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).expect("a client");
        endpoint.set_default_client_config(client_config(cdn));
        let connecting = endpoint.connect(addr, SITE).map_err(|e| e.to_string())?;
        let quic = tokio::time::timeout(TIMEOUT, connecting)
            .await
            .map_err(|_| "the QUIC handshake timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(quic.clone()))
            .await
            .map_err(|e| e.to_string())?;
        let driver = tokio::spawn(async move {
            let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
        });
        Ok(H3 {
            authority: format!("{SITE}:{}", addr.port()),
            endpoint,
            quic,
            send,
            driver,
        })
    }

    /// GET `path` on `SITE` with `headers`.
    async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> H3Response {
        self.try_get(path, headers)
            .await
            .expect("an HTTP/3 exchange")
    }

    async fn try_get(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<H3Response, String> {
        let mut request = Request::get(format!("https://{}{path}", self.authority));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let exchange = async {
            let mut stream = self
                .send
                .send_request(request.body(()).unwrap())
                .await
                .map_err(|e| e.to_string())?;
            // The server may answer before the request's end arrives and stop reading it
            // with H3_NO_ERROR (RFC 9114 §4.1.2); its response still stands.
            match stream.finish().await {
                Err(h3::error::StreamError::RemoteTerminate { code, .. })
                    if code == h3::error::Code::H3_NO_ERROR => {}
                finished => finished.map_err(|e| e.to_string())?,
            }
            let head = stream.recv_response().await.map_err(|e| e.to_string())?;
            let mut body = BytesMut::new();
            while let Some(mut chunk) = stream.recv_data().await.map_err(|e| e.to_string())? {
                body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
            }
            Ok(H3Response {
                status: head.status(),
                headers: head.headers().clone(),
                body: body.freeze(),
            })
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| "the HTTP/3 exchange timed out".to_string())?
    }
}

impl Drop for H3 {
    fn drop(&mut self) {
        self.driver.abort();
        self.endpoint.close(0u32.into(), b"");
    }
}

const HTTP3: &str = "http3 = true";

async fn site(origin: &Origin, settings: &str, behavior: &str) -> Cdn {
    Cdn::start(&config(
        settings,
        &crate::cdn_harness::site(&origin.url(), behavior),
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_then_a_hit_over_http3_share_the_cache_with_http2() {
    let origin = Origin::start().await;
    origin.route("/page", Reply::ok("the page").cc("max-age=300"));
    let cdn = site(&origin, HTTP3, "").await;
    let mut h3 = H3::connect(&cdn).await;
    let first = h3.get("/page", &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "the page");
    assert_eq!(first.header("x-cache"), Some("Miss from edgewise"));
    assert_eq!(first.header("alt-svc"), None, "no Alt-Svc on HTTP/3 itself");
    let second = h3.get("/page", &[]).await;
    assert_eq!(second.header("x-cache"), Some("Hit from edgewise"));
    // The one cache: HTTP/2 hits what HTTP/3 filled.
    let h2 = cdn.get("/page").h2().send().await;
    assert_eq!(h2.x_cache(), "Hit from edgewise");
    assert_eq!(origin.hits("/page"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alt_svc_on_http1_and_http2_names_the_quic_port_only_when_http3_is_on() {
    let origin = Origin::start().await;
    origin.route("*", Reply::ok("x"));
    let cdn = site(&origin, HTTP3, "").await;
    let expected = format!("h3=\":{}\"; ma=86400", cdn.https_port());
    for request in [cdn.get("/"), cdn.get("/").h2()] {
        let response = request.send().await;
        assert_eq!(response.header("alt-svc"), Some(expected.as_str()));
    }
    let plain = cdn.get("/").plain().send().await;
    assert_eq!(plain.header("alt-svc"), None, "not on plain HTTP");

    let off = site(&origin, "", "").await;
    assert_eq!(off.get("/").send().await.header("alt-svc"), None);
    assert!(
        H3::try_connect(&off).await.is_err(),
        "no QUIC without http3 = true"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_and_compression_work_over_http3() {
    let origin = Origin::start().await;
    let text = "edgewise ".repeat(2_000);
    origin.route(
        "/text",
        Reply::ok(text.clone())
            .cc("max-age=300")
            .header("content-type", "text/plain"),
    );
    let cdn = site(&origin, HTTP3, "compress = true").await;
    let mut h3 = H3::connect(&cdn).await;
    let range = h3.get("/text", &[("range", "bytes=0-7")]).await;
    assert_eq!(range.status, 206);
    assert_eq!(range.text(), "edgewise");
    let full = h3.get("/text", &[("accept-encoding", "br")]).await;
    assert_eq!(full.header("content-encoding"), Some("br"));
    assert!(
        full.body.len() < text.len() / 10,
        "{} bytes",
        full.body.len()
    );
    let mut decoded = Vec::new();
    BrotliDecoder::new(&full.body[..])
        .read_to_end(&mut decoded)
        .await
        .expect("brotli");
    assert_eq!(decoded, text.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_urls_are_checked_over_http3() {
    let (_origin, cdn) = cdn_signed::setup(HTTP3).await;
    let mut h3 = H3::connect(&cdn).await;
    let unsigned = h3.get("/private/a.txt", &[]).await;
    assert_eq!(unsigned.status, 403);
    let signed = cdn_signed::canned(
        &cdn_signed::url(&cdn, "/private/a.txt"),
        cdn_signed::K1,
        &cdn_signed::keys().k1,
        cdn_signed::now() + 300,
    );
    let allowed = h3.get(&cdn_signed::target(&cdn, &signed), &[]).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.text(), cdn_signed::SECRET_A);
}

/// A refusal needs none of the request body: the CDN answers at once and tells the client
/// to stop sending with H3_NO_ERROR (RFC 9114 §4.1.2), not QUIC's bare 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_is_answered_before_its_body_and_stopped_with_h3_no_error() {
    let (_origin, cdn) = cdn_signed::setup(HTTP3).await;
    let mut h3 = H3::connect(&cdn).await;
    let request = Request::post(format!("https://{}/private/a.txt", h3.authority))
        .body(())
        .unwrap();
    let mut stream = h3.send.send_request(request).await.unwrap();
    stream
        .send_data(Bytes::from_static(b"the start of a body"))
        .await
        .unwrap();
    let head = tokio::time::timeout(TIMEOUT, stream.recv_response())
        .await
        .expect("the refusal comes before the request's end")
        .unwrap();
    assert_eq!(head.status(), 403);
    let stopped = tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Err(e) = stream.send_data(Bytes::from_static(b"more")).await {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the CDN stops the request stream");
    assert!(
        matches!(stopped, h3::error::StreamError::RemoteTerminate { code, .. } if code == h3::error::Code::H3_NO_ERROR),
        "{stopped}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geo_restriction_refuses_http3_viewers_too() {
    let origin = Origin::start().await;
    origin.route("*", Reply::ok("the page"));
    let body = format!(
        "{}\n[[geo.networks]]\ncidr = \"127.0.0.0/8\"\ncountry = \"DE\"\n",
        crate::cdn_harness::site_keys(
            &origin.url(),
            r#"geo_restriction = { mode = "deny", countries = ["DE"] }"#,
            ""
        )
    );
    let cdn = Cdn::start(&config(HTTP3, &body)).await;
    let mut h3 = H3::connect(&cdn).await;
    let refused = h3.get("/page", &[]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(origin.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_time_log_says_http3() {
    let origin = Origin::start().await;
    origin.route("*", Reply::ok("x"));
    let fields = r#"["cs-protocol-version", "ssl-protocol", "ssl-cipher", "sc-status"]"#;
    let settings =
        format!("{HTTP3}\nrealtime_logs = {{ stream = \"cdn-logs\", fields = {fields} }}");
    let toml = format!(
        "{}\n[stream]\nlisten = [\"127.0.0.1:0\"]\ndata_dir = \"streams\"\n[[stream.streams]]\nname = \"cdn-logs\"\n",
        config(&settings, &crate::cdn_harness::site(&origin.url(), ""))
    );
    let mut cdn = Cdn::start(&toml).await;
    let receiver = cdn.realtime_log.take().expect("the real-time log queue");
    let (sender, mut lines) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(run_writer(receiver, 500, move |batch: Vec<Bytes>| {
        for line in batch {
            let _ = sender.send(String::from_utf8_lossy(&line).into_owned());
        }
        async { Ok(()) }
    }));
    let mut h3 = H3::connect(&cdn).await;
    assert_eq!(h3.get("/x", &[]).await.status, 200);
    let line = tokio::time::timeout(TIMEOUT, lines.recv())
        .await
        .expect("a record in time")
        .expect("a record");
    assert_eq!(
        line.trim_end(),
        "HTTP/3.0\tTLSv1.3\tTLS_AES_128_GCM_SHA256\t200"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_gets_at_most_http3_max_streams_requests_at_once() {
    let origin = Origin::start().await;
    origin.route("*", Reply::ok("slow").delay_ms(500));
    let cdn = site(&origin, &format!("{HTTP3}\nhttp3_max_streams = 2"), "").await;
    let h3 = H3::connect(&cdn).await;
    // Three requests at once on one connection (different objects, so no fill collapses
    // them): the third waits for a stream credit, so the origin never sees more than two
    // together.
    let mut tasks = Vec::new();
    for n in 0..3 {
        let mut send = h3.send.clone();
        let url = format!("https://{}/slow{n}", h3.authority);
        tasks.push(tokio::spawn(async move {
            let request = Request::get(url).body(()).unwrap();
            let mut stream = send.send_request(request).await.unwrap();
            stream.finish().await.unwrap();
            stream.recv_response().await.unwrap().status()
        }));
    }
    let started = std::time::Instant::now();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the third request waited for one of the first two: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_after_idle_timeout() {
    let origin = Origin::start().await;
    origin.route("*", Reply::ok("x"));
    let cdn = site(&origin, &format!("{HTTP3}\nidle_timeout = \"1s\""), "").await;
    let h3 = H3::connect(&cdn).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), h3.quic.closed())
        .await
        .expect("closed within 5 s");
    assert!(
        matches!(closed, quinn::ConnectionError::TimedOut),
        "{closed:?}"
    );
}

/// A client endpoint willing to send early data, after a first connection to the CDN made a
/// request on it (so it holds whatever session ticket the server gives).
async fn resumed_client(cdn: &Cdn) -> (quinn::Endpoint, SocketAddr) {
    let mut endpoint =
        quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).expect("a client");
    endpoint.set_default_client_config(client_config_with(cdn, true));
    let addr = cdn.https.unwrap();
    let first = endpoint.connect(addr, SITE).unwrap().await.unwrap();
    assert_eq!(get_x(first, addr).await, 200);
    // Tickets arrive after the handshake.
    tokio::time::sleep(Duration::from_millis(100)).await;
    (endpoint, addr)
}

/// GET /x over HTTP/3 on `quic` (to the CDN at `addr`); the status.
async fn get_x(quic: quinn::Connection, addr: SocketAddr) -> StatusCode {
    let (mut driver, mut send) = h3::client::new(h3_quinn::Connection::new(quic))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
    });
    let request = Request::get(format!("https://{SITE}:{}/x", addr.port()))
        .body(())
        .unwrap();
    let mut stream = send.send_request(request).await.unwrap();
    stream.finish().await.unwrap();
    stream.recv_response().await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_rtt_is_refused() {
    let origin = Origin::start().await;
    origin.route("*", Reply::ok("x"));
    let cdn = site(&origin, HTTP3, "").await;
    let (endpoint, addr) = resumed_client(&cdn).await;
    // The ticket allows no early data: the client cannot even try.
    let connecting = endpoint.connect(addr, SITE).unwrap();
    match connecting.into_0rtt() {
        Ok((_, accepted)) => assert!(!accepted.await, "0-RTT data was accepted"),
        Err(connecting) => {
            tokio::time::timeout(TIMEOUT, connecting)
                .await
                .expect("handshake in time")
                .expect("handshake");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_starts_and_stops_quic_with_its_https_address() {
    let origin = Origin::start().await;
    origin.route("*", Reply::ok("x"));
    let body = crate::cdn_harness::site(&origin.url(), "");
    let cdn = site(&origin, HTTP3, "").await;
    let [extra] = crate::pebble::free_ports();
    let with_extra = config(HTTP3, &body).replace(
        "https_listen = [\"127.0.0.1:0\"]",
        &format!("https_listen = [\"127.0.0.1:0\", \"127.0.0.1:{extra}\"]"),
    );
    let reloaded = cdn.reload(&with_extra).await;
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    let mut on_extra = H3::connect_to(&cdn, SocketAddr::from(([127, 0, 0, 1], extra))).await;
    assert_eq!(on_extra.get("/x", &[]).await.status, 200);
    drop(on_extra);

    let reloaded = cdn.reload(&config(HTTP3, &body)).await;
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    let mut gone = false;
    for _ in 0..50 {
        let addr = SocketAddr::from(([127, 0, 0, 1], extra));
        if H3::try_connect_to(&cdn, addr).await.is_err() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(gone, "QUIC on the removed address stopped");
    assert_eq!(H3::connect(&cdn).await.get("/x", &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_http3_0rtt_a_resumed_client_sends_its_get_in_early_data() {
    let origin = Origin::start().await;
    origin.route("*", Reply::ok("x"));
    let cdn = site(&origin, &format!("{HTTP3}\nhttp3_0rtt = true"), "").await;
    let (endpoint, addr) = resumed_client(&cdn).await;
    let (quic, accepted) = endpoint
        .connect(addr, SITE)
        .unwrap()
        .into_0rtt()
        .unwrap_or_else(|_| panic!("a ticket for 0-RTT"));
    assert_eq!(get_x(quic, addr).await, 200);
    assert!(accepted.await, "the server accepted the early data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origins_103_early_hints_reach_the_http3_viewer_before_the_response() {
    let head = "HTTP/1.1 200 OK\r\nCache-Control: max-age=600";
    let (url, requests) = crate::cdn_targeted::early_hints_origin(head, "final body").await;
    let cdn = site_at(&url, HTTP3).await;
    let h3 = H3::connect(&cdn).await;
    let mut send = h3.send.clone();
    let request = Request::get(format!("https://{}/hinted", h3.authority))
        .body(())
        .unwrap();
    let mut stream = send.send_request(request).await.unwrap();
    stream.finish().await.unwrap();
    let interim = stream.recv_response().await.unwrap();
    assert_eq!(interim.status(), 103);
    assert_eq!(
        interim.headers().get("link").unwrap(),
        "</style.css>; rel=preload"
    );
    let last = stream.recv_response().await.unwrap();
    assert_eq!(last.status(), 200);
    let mut body = BytesMut::new();
    while let Some(mut chunk) = stream.recv_data().await.unwrap() {
        body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
    }
    assert_eq!(&body[..], b"final body");
    // The hit has no hints to give (the origin is not asked), and the 103 was not cached.
    let mut h3 = h3;
    let hit = h3.get("/hinted", &[]).await;
    assert_eq!(
        (hit.status.as_u16(), hit.text().as_str()),
        (200, "final body")
    );
    assert_eq!(hit.header("x-cache"), Some("Hit from edgewise"));
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
}

async fn site_at(url: &str, settings: &str) -> Cdn {
    Cdn::start(&config(settings, &crate::cdn_harness::site(url, ""))).await
}

/// `tests/it/clients/h3_get.py` (aioquic) GETting `paths` on one connection: one JSON
/// object per path.
async fn aioquic_get(cdn: &Cdn, paths: &[&str]) -> Vec<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/clients/h3_get.py");
    let ca = cdn.dir.path().join("certs/cert.pem");
    let run = tokio::process::Command::new("python3")
        .arg(script)
        .arg(cdn.https.unwrap().to_string())
        .arg(SITE)
        .arg(&ca)
        .args(paths)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the aioquic client finished in time")
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "aioquic client failed (pip install aioquic): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aioquic_gets_a_miss_a_hit_and_early_hints_over_http3() {
    let head = "HTTP/1.1 200 OK\r\nCache-Control: max-age=600";
    let (url, requests) = crate::cdn_targeted::early_hints_origin(head, "final body").await;
    let cdn = site_at(&url, HTTP3).await;
    let answers = aioquic_get(&cdn, &["/hinted", "/hinted"]).await;
    assert_eq!(answers.len(), 2, "{answers:?}");
    let miss = &answers[0]["heads"];
    assert_eq!(miss[0]["status"], 103, "{answers:?}");
    assert_eq!(miss[0]["headers"]["link"], "</style.css>; rel=preload");
    assert_eq!(miss[1]["status"], 200);
    assert_eq!(miss[1]["headers"]["x-cache"], "Miss from edgewise");
    assert_eq!(answers[0]["body"], "final body");
    let hit = &answers[1]["heads"];
    assert_eq!(hit.as_array().unwrap().len(), 1, "no hints on a hit");
    assert_eq!(hit[0]["headers"]["x-cache"], "Hit from edgewise");
    assert_eq!(answers[1]["body"], "final body");
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
}
