//! CDN test harness: a programmable in-process origin that counts what it sees, the CDN on
//! ephemeral ports with its generated certificate, and a small client (HTTP/1.1 or HTTP/2
//! over TLS, HTTP/1.1 in the clear) that opens one connection per request, so every
//! assertion looks at exactly one exchange.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgewise::cdn::CdnServer;
use edgewise::cdn::realtime_log::RealtimeLogReceiver;
use edgewise::cdn::reload::Reloader;
use edgewise::config::{CdnConfig, Config};
use http::{HeaderMap, Method, Request, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::cdn_test_origin::*;

/// Bound on every network wait of a test.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The admin API token every test config carries.
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// The host the `site` distribution answers (besides localhost).
pub const SITE: &str = "site.test";

// ------------------------------------------------------------------ config

/// A whole config: listeners on port 0, the admin API, one `[[cdn.certs]]` under `certs/`,
/// extra `[cdn]` keys (`settings`) and the distributions (`body`).
pub fn config(settings: &str, body: &str) -> String {
    format!(
        r#"[cdn]
https_listen = ["127.0.0.1:0"]
http_listen = ["127.0.0.1:0"]
admin_listen = ["127.0.0.1:0"]
admin_token = "{ADMIN_TOKEN}"
{settings}

[[cdn.certs]]
cert = "certs/cert.pem"
key = "certs/key.pem"

{body}"#
    )
}

/// Distribution "site" (hosts site.test and localhost) with origin "app" at `url` and one
/// behavior `*` with extra keys `behavior`.
pub fn site(url: &str, behavior: &str) -> String {
    site_keys(url, "", behavior)
}

/// [`site`] with distribution keys `keys` too.
pub fn site_keys(url: &str, keys: &str, behavior: &str) -> String {
    format!(
        r#"[[cdn.distributions]]
id = "site"
hosts = ["{SITE}", "localhost"]
{keys}

[[cdn.distributions.origins]]
id = "app"
url = "{url}"

[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
{behavior}
"#
    )
}

/// `edgewise-cdn check` on `toml` (written to a temp folder with `files`): the exit code
/// and what it printed on stderr.
pub async fn check_config(toml: &str, files: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let path = dir.path().join("edgewise.toml");
    std::fs::write(&path, toml).unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgewise-cdn"))
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .await
        .expect("run edgewise-cdn check");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

// ------------------------------------------------------------------ the CDN

/// The CDN under test, cancelled when dropped.
pub struct Cdn {
    pub dir: TempDir,
    pub config: CdnConfig,
    pub https: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub token: CancellationToken,
    pub handle: Option<JoinHandle<()>>,
    /// The real-time log queue when the config has `[cdn.realtime_logs]`, for a test writer.
    pub realtime_log: Option<RealtimeLogReceiver>,
    /// What `POST /reload` runs, for tests that reload without the admin API.
    pub reloader: Arc<Reloader>,
    /// The configured certificates, as a client's trust roots.
    pub roots: Arc<RootCertStore>,
}

impl Drop for Cdn {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl Cdn {
    /// Distribution "site" in front of `origin`, one behavior `*` with `behavior` keys.
    pub async fn site(origin: &Origin, behavior: &str) -> Cdn {
        Cdn::start(&config("", &site(&origin.url(), behavior))).await
    }

    /// Distribution "site", answering site.test alone, in front of `origin` (as "app") with
    /// `behaviors`: the `[[cdn.distributions.behaviors]]` tables, in order.
    pub async fn behaviors(origin: &Origin, behaviors: &str) -> Cdn {
        let body = format!(
            r#"[[cdn.distributions]]
id = "site"
hosts = ["{SITE}"]
[[cdn.distributions.origins]]
id = "app"
url = "{}"
{behaviors}"#,
            origin.url()
        );
        Cdn::start(&config("", &body)).await
    }

    pub async fn start(toml: &str) -> Cdn {
        Cdn::start_with(toml, &[]).await
    }

    /// Writes `toml` as `edgewise.toml` plus `files` (relative paths) into a temp folder,
    /// binds and runs the CDN, which reloads that file on `POST /reload`.
    pub async fn start_with(toml: &str, files: &[(&str, &[u8])]) -> Cdn {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("edgewise.toml"), toml).unwrap();
        Cdn::start_in(dir, files).await
    }

    /// Writes `files` (relative paths) into `dir`, which holds `edgewise.toml` or gets it
    /// among `files`, then binds and runs the CDN as [`start_with`](Self::start_with).
    pub async fn start_in(dir: TempDir, files: &[(&str, &[u8])]) -> Cdn {
        for (rel, bytes) in files {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        let path = dir.path().join("edgewise.toml");
        let cdn = load_cdn(&path);
        let mut server = CdnServer::bind(&cdn).unwrap_or_else(|e| panic!("CDN bind: {e}"));
        let reloader = server.reload_from(path.clone(), None);
        let realtime_log = server.realtime_log_receiver();
        let mut roots = RootCertStore::empty();
        for files in &cdn.certs {
            for cert in read_certs(&files.cert) {
                roots.add(cert).expect("a usable test certificate");
            }
        }
        let https = server.https_addrs().first().copied();
        let http = server.http_addrs().first().copied();
        let admin = server.admin_addrs().first().copied();
        let token = CancellationToken::new();
        let handle = tokio::spawn(server.run(token.clone()));
        Cdn {
            dir,
            config: cdn,
            https,
            http,
            admin,
            token,
            handle: Some(handle),
            realtime_log,
            roots: Arc::new(roots),
            reloader,
        }
    }

    /// Rewrites the config file with `toml` and asks the admin API to reload it.
    pub async fn reload(&self, toml: &str) -> Resp {
        std::fs::write(self.dir.path().join("edgewise.toml"), toml).unwrap();
        self.admin(Method::POST, "/reload", Some(ADMIN_TOKEN), "")
            .await
    }

    pub fn https_port(&self) -> u16 {
        self.https.expect("an HTTPS listener").port()
    }

    pub fn http_port(&self) -> u16 {
        self.http.expect("an HTTP listener").port()
    }

    pub fn get(&self, path: &str) -> Req<'_> {
        self.request(Method::GET, path)
    }

    pub fn request(&self, method: Method, path: &str) -> Req<'_> {
        Req {
            cdn: self,
            method,
            path: path.to_string(),
            host: None,
            headers: Vec::new(),
            body: Bytes::new(),
            proto: Proto::H1,
            sni: "localhost".to_string(),
        }
    }

    /// An admin API call; `token` None sends no Authorization.
    pub async fn admin(&self, method: Method, path: &str, token: Option<&str>, body: &str) -> Resp {
        let addr = self.admin.expect("an admin listener");
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let exchange = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            exchange(tcp, false, request).await
        };
        within(exchange)
            .await
            .unwrap_or_else(|e| panic!("admin {path}: {e}"))
    }

    /// `POST /invalidations` with the right token.
    pub async fn invalidate(&self, distribution: &str, paths: &[&str]) -> Resp {
        let body = serde_json::json!({ "distribution": distribution, "paths": paths });
        self.admin(
            Method::POST,
            "/invalidations",
            Some(ADMIN_TOKEN),
            &body.to_string(),
        )
        .await
    }

    /// The leaf certificate the HTTPS listener presents for `sni` (None: connect by IP, no SNI),
    /// whatever names it has.
    pub async fn presented_cert(&self, sni: Option<&str>) -> CertificateDer<'static> {
        // The client health checks use when they do not verify: any certificate is taken.
        let config = edgewise::net::tls::client_config(false);
        let name = match sni {
            Some(name) => ServerName::try_from(name.to_string()).unwrap(),
            None => ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
        };
        let connect = async {
            let tcp = TcpStream::connect(self.https.unwrap()).await?;
            tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
        };
        let tls = tokio::time::timeout(TIMEOUT, connect)
            .await
            .expect("TLS handshake in time")
            .expect("TLS handshake");
        tls.get_ref().1.peer_certificates().unwrap()[0]
            .clone()
            .into_owned()
    }

    /// A TLS connection verified against the configured certificates, with `alpn`.
    pub async fn tls(
        &self,
        sni: &str,
        alpn: &[&[u8]],
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(self.roots.clone())
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
        let tcp = TcpStream::connect(self.https.expect("an HTTPS listener"))
            .await
            .map_err(|e| e.to_string())?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with SNI {sni}: {e}"))
    }
}

/// `curl -s -D -` (and `args`) of `https://site.test:<port><path>`, with site.test at
/// 127.0.0.1 and `ca` trusted: the header blocks and the body, as curl prints them.
pub async fn curl_site(port: u16, ca: &Path, path: &str, args: &[&str]) -> String {
    let output = tokio::process::Command::new("curl")
        .args(["--max-time", "10", "-s", "-D", "-"])
        .args(args)
        .args(["--resolve", &format!("{SITE}:{port}:127.0.0.1")])
        .args(["--cacert", ca.to_str().unwrap()])
        .arg(format!("https://{SITE}:{port}{path}"))
        .output()
        .await
        .expect("curl is installed");
    assert!(output.status.success(), "curl: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Loads a config expected to be valid, with a `[cdn]` section.
pub fn load_cdn(path: &Path) -> CdnConfig {
    match Config::load(path) {
        Ok(config) => config.cdn.expect("the test config has a [cdn] section"),
        Err(errors) => panic!("the test config should load, but:\n{errors}"),
    }
}

/// Every PEM certificate in `path`.
pub fn read_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    let pem = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    CertificateDer::pem_slice_iter(&pem)
        .map(|c| c.expect("a PEM certificate"))
        .collect()
}

// ------------------------------------------------------------------ the client

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// HTTP/1.1 over TLS (ALPN http/1.1).
    H1,
    /// HTTP/2 over TLS (ALPN h2).
    H2,
    /// HTTP/1.1 in the clear, to the HTTP listener.
    Plain,
}

/// A request to the CDN, sent on a fresh connection.
pub struct Req<'a> {
    cdn: &'a Cdn,
    method: Method,
    path: String,
    /// Host header (HTTP/1.1) or authority (HTTP/2); default `site.test:<port>`.
    host: Option<String>,
    headers: Vec<(String, String)>,
    body: Bytes,
    proto: Proto,
    sni: String,
}

impl Req<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.to_string());
        self
    }

    pub fn sni(mut self, sni: &str) -> Self {
        self.sni = sni.to_string();
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    pub fn h2(mut self) -> Self {
        self.proto = Proto::H2;
        self
    }

    pub fn plain(mut self) -> Self {
        self.proto = Proto::Plain;
        self
    }

    pub fn proto(mut self, proto: Proto) -> Self {
        self.proto = proto;
        self
    }

    /// Sends it; panics on any transport error or after [`TIMEOUT`].
    pub async fn send(self) -> Resp {
        let what = format!("{} {} ({:?})", self.method, self.path, self.proto);
        self.try_send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    pub async fn try_send(self) -> Result<Resp, String> {
        within(self.exchange()).await
    }

    async fn exchange(self) -> Result<Resp, String> {
        collect(self.respond().await?).await
    }

    /// Sends it and returns as soon as the head is in; the body is read by the caller.
    pub async fn open(self) -> Opened {
        let what = format!("{} {} ({:?})", self.method, self.path, self.proto);
        let response = within(self.respond())
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let (parts, body) = response.into_parts();
        Opened {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    }

    async fn respond(self) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        let port = match self.proto {
            Proto::Plain => self.cdn.http_port(),
            _ => self.cdn.https_port(),
        };
        let host = self.host.unwrap_or_else(|| format!("{SITE}:{port}"));
        let mut request = Request::builder().method(self.method);
        request = if self.proto == Proto::H2 {
            request.uri(format!("https://{host}{}", self.path))
        } else {
            request.uri(&self.path).header("host", &host)
        };
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(self.body))
            .map_err(|e| e.to_string())?;
        match self.proto {
            Proto::Plain => {
                let tcp = TcpStream::connect(self.cdn.http.expect("an HTTP listener"))
                    .await
                    .map_err(|e| e.to_string())?;
                send_on(tcp, false, request).await
            }
            Proto::H1 => {
                let tls = self.cdn.tls(&self.sni, &[b"http/1.1"]).await?;
                send_on(tls, false, request).await
            }
            Proto::H2 => {
                let tls = self.cdn.tls(&self.sni, &[b"h2"]).await?;
                send_on(tls, true, request).await
            }
        }
    }
}

/// A response whose body is still to be read, frame by frame.
pub struct Opened {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: hyper::body::Incoming,
}

impl Opened {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `X-Cache`, "" when absent.
    pub fn x_cache(&self) -> &str {
        self.header("x-cache").unwrap_or("")
    }

    /// The next data of the body (None at its end); Err when it broke. Within [`TIMEOUT`].
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            let frame = within(async { Ok(self.body.frame().await) }).await?;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// The rest of the body, after the chunks already read; Err when it broke.
    pub async fn rest(&mut self) -> Result<Bytes, String> {
        let mut rest = Vec::new();
        while let Some(data) = self.chunk().await? {
            rest.extend_from_slice(&data);
        }
        Ok(Bytes::from(rest))
    }
}

/// Runs `future` within [`TIMEOUT`].
pub async fn within<T>(
    future: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {TIMEOUT:?}")))
}

/// One request on `io`, HTTP/2 or HTTP/1.1, body read to the end.
pub async fn exchange<S>(io: S, h2: bool, request: Request<Full<Bytes>>) -> Result<Resp, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    collect(send_on(io, h2, request).await?).await
}

/// One request on `io`, HTTP/2 or HTTP/1.1: the response as soon as its head is in.
pub async fn send_on<S>(
    io: S,
    h2: bool,
    request: Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if h2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                .await
                .map_err(|e| format!("h2 handshake: {e}"))?;
        tokio::spawn(connection);
        sender.send_request(request).await
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("h1 handshake: {e}"))?;
        tokio::spawn(connection);
        sender.send_request(request).await
    }
    .map_err(|e| format!("request: {e}"))
}

/// Reads a response's body to the end.
async fn collect(response: hyper::Response<hyper::body::Incoming>) -> Result<Resp, String> {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("response body: {e}"))?
        .to_bytes();
    Ok(Resp {
        status: parts.status.as_u16(),
        version: parts.version,
        headers: parts.headers,
        body,
    })
}

/// A response, body read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of `name`, joined with ", ".
    pub fn all(&self, name: &str) -> String {
        let values: Vec<&str> = self
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        values.join(", ")
    }

    /// `X-Cache`, "" when absent.
    pub fn x_cache(&self) -> &str {
        self.header("x-cache").unwrap_or("")
    }

    pub fn age(&self) -> Option<u64> {
        self.header("age").and_then(|v| v.parse().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub const HIT: &str = "Hit from edgewise";
pub const MISS: &str = "Miss from edgewise";
pub const REFRESH_HIT: &str = "RefreshHit from edgewise";
pub const ERROR: &str = "Error from edgewise";

// ------------------------------------------------------------------ assertions

/// Sends `request` and asserts it is refused with 403 without `origin` seeing anything.
pub async fn assert_refused(origin: &Origin, request: Req<'_>, why: &str) -> Resp {
    let before = origin.total();
    let response = request.send().await;
    assert_eq!(
        response.status,
        403,
        "{why}: expected 403, got {} ({})",
        response.status,
        response.text()
    );
    assert_eq!(
        origin.total(),
        before,
        "{why}: a refused request must not reach the origin, but it saw {:?}",
        &origin.uris()[before..]
    );
    response
}

/// Sends `request` and asserts it is served `body` with 200.
pub async fn assert_served(request: Req<'_>, body: &str, why: &str) -> Resp {
    let response = request.send().await;
    assert_eq!(
        response.status,
        200,
        "{why}: expected 200, got {} ({})",
        response.status,
        response.text()
    );
    assert_eq!(response.text(), body, "{why}: the object's body");
    response
}

// ------------------------------------------------------------------ raw sockets and waiting

/// Writes `bytes` to `addr` and reads until the server closes (or [`TIMEOUT`]); returns what
/// came back and how long the server took to close.
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> (String, Duration) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    // The server may already have closed (connection cap): what comes back still counts.
    let _ = tcp.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(TIMEOUT, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open for {TIMEOUT:?}"),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

/// Writes a raw HTTP/1.1 request (sent byte for byte: two Host headers, absolute-form or
/// unnormalized targets) on `io` and reads the response until the server closes.
pub async fn raw_tls_exchange<S>(mut io: S, request: &[u8]) -> Resp
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    io.write_all(request).await.expect("write the request");
    let mut out = Vec::new();
    // A close without TLS close_notify is still the end of the response.
    let _ = tokio::time::timeout(TIMEOUT, io.read_to_end(&mut out))
        .await
        .expect("the server closes the connection in time");
    parse_response(&out)
}

/// Parses one HTTP/1.1 response (status, headers, a plain or chunked body).
fn parse_response(bytes: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(bytes);
    let (head, mut body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("a header line");
        headers.append(
            http::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            http::HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let mut decoded = String::new();
    if chunked {
        while let Some((size, rest)) = body.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
            if size == 0 {
                break;
            }
            decoded.push_str(&rest[..size]);
            body = &rest[size + 2..];
        }
    } else {
        decoded.push_str(body);
    }
    Resp {
        status,
        version: Version::HTTP_11,
        headers,
        body: Bytes::from(decoded),
    }
}

/// Polls `condition` every 20 ms until it holds; panics after [`TIMEOUT`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sleeps a little over `secs` seconds, so a `secs`-second TTL runs out.
pub async fn expire(secs: u64) {
    tokio::time::sleep(Duration::from_millis(secs * 1000 + 150)).await;
}
