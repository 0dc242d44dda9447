//! The console (`/` on the DNS status listener and the CDN admin listener) in a real browser:
//! headless Chromium loads the page from the running servers, and its JavaScript renders the
//! zones and health checks (DNS) or the distributions (CDN) from `/console/api/summary`, with
//! a uPlot chart. Chromium is required: `.ci/run` installs it.

use std::net::{SocketAddr, UdpSocket};
use std::process::Stdio;
use std::time::Duration;

use edgewise::dns::DnsServer;
use hickory_proto::rr::RecordType;
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cdn_harness::{ADMIN_TOKEN, Cdn};
use crate::cdn_test_origin::{Origin, Reply};
use crate::dns_routing::{Routing, plain, route_config};
use crate::harness::{load_ok, q, serve};
use crate::health_checks::{TcpEndpoint, check, watchers};

/// `GET path` over plain HTTP/1.1 from `from` (any local address) to `addr`: the whole
/// response as text, head and body.
pub(crate) async fn get_from(from: Option<SocketAddr>, addr: SocketAddr, path: &str) -> String {
    let exchange = async {
        let mut stream = match from {
            Some(from) => {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind(from).unwrap();
                socket.connect(addr).await.unwrap()
            }
            None => TcpStream::connect(addr).await.unwrap(),
        };
        let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8(response).expect("a text response")
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path} from {addr} timed out"))
}

pub(crate) async fn get(addr: SocketAddr, path: &str) -> String {
    get_from(None, addr, path).await
}

pub(crate) fn status_of(response: &str) -> u16 {
    response[9..12].parse().expect("a status code")
}

pub(crate) fn body_of(response: &str) -> &str {
    response.split_once("\r\n\r\n").expect("a head").1
}

/// `name: value` in the response head, case-insensitively by name.
pub(crate) fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split_once("\r\n\r\n")?.0;
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Asserts the page and its assets are served from loopback without a token, with their types.
async fn assert_assets(addr: SocketAddr) {
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/console/console.js", "text/javascript; charset=utf-8"),
        ("/console/dns.js", "text/javascript; charset=utf-8"),
        ("/console/cdn.js", "text/javascript; charset=utf-8"),
        ("/console/streams.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
        (
            "/console/vendor/uplot/uPlot.iife.min.js",
            "text/javascript; charset=utf-8",
        ),
        (
            "/console/vendor/uplot/uPlot.min.css",
            "text/css; charset=utf-8",
        ),
    ] {
        let response = get(addr, path).await;
        assert_eq!(status_of(&response), 200, "{path}: {response}");
        assert_eq!(
            header(&response, "content-type"),
            Some(content_type),
            "{path}"
        );
        assert_eq!(
            header(&response, "cache-control"),
            Some("no-cache"),
            "{path}"
        );
        assert!(
            header(&response, "content-security-policy")
                .is_some_and(|csp| csp.contains("connect-src 'self'")),
            "{path}: {response}"
        );
    }
    assert_eq!(status_of(&get(addr, "/console/nope").await), 404);
}

/// The summary JSON, fetched as the page fetches it.
pub(crate) async fn summary(addr: SocketAddr) -> serde_json::Value {
    let response = get(addr, "/console/api/summary").await;
    assert_eq!(status_of(&response), 200, "{response}");
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    serde_json::from_str(body_of(&response)).expect("JSON")
}

/// The DOM headless Chromium renders for `http://addr/` after its scripts ran (5 s of virtual
/// time: a few polls).
pub(crate) async fn rendered_dom(addr: SocketAddr) -> String {
    let profile = tempfile::tempdir().expect("a profile dir");
    let child = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(format!("http://{addr}/"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "chromium is not installed: run .ci/run, or `apt-get install chromium` (Debian), to \
             test the console in a real browser"
        ),
        Err(e) => panic!("cannot start chromium: {e}"),
    };
    // kill_on_drop: a browser that hangs is killed when the timeout drops it.
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("chromium finished within 60 s")
        .expect("chromium ran");
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && dom.contains("</html>"),
        "chromium failed ({}): {}\n{dom}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    dom
}

/// Asserts the page's JavaScript ran to the end: the title set from the summary, a chart
/// drawn, the status line updated.
pub(crate) fn assert_rendered(dom: &str, title: &str) {
    assert!(
        dom.contains(&format!("<h1 id=\"title\">{title}</h1>")),
        "{dom}"
    );
    assert!(dom.contains("<canvas"), "a uPlot canvas: {dom}");
    assert!(dom.contains("class=\"uplot"), "a uPlot chart: {dom}");
    assert!(dom.contains(">Updated "), "the status line: {dom}");
}

/// This host's address on its default route, if it has one: a peer that is not loopback.
pub(crate) fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:53").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_console_shows_zones_health_checks_and_a_chart_in_chromium() {
    let endpoint = TcpEndpoint::start().await;
    let config = route_config(
        &check("port", "tcp", &endpoint.addr.to_string(), ""),
        "workers = 1",
        &[plain("www", "A", 60, &["192.0.2.10"])]
            .into_iter()
            .chain(watchers(&["port"]))
            .collect::<Vec<_>>(),
    )
    // Every address, so a peer that is not loopback can be tried too.
    .replace(
        "status_listen = [\"127.0.0.1:0\"]",
        "status_listen = [\"0.0.0.0:0\"]",
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("edgewise.toml");
    std::fs::write(&path, config).expect("write the config");
    let dns = load_ok(&path).dns.expect("a [dns] section");
    let server = DnsServer::bind(&dns).expect("bind on ephemeral ports");
    let port = server.status_addrs()[0].port();
    let routing = Routing {
        server: serve(server, dir),
        status_addrs: vec![SocketAddr::from(([127, 0, 0, 1], port))],
    };
    let status = routing.status();
    for name in ["www.route.test.", "www.route.test.", "nope.route.test."] {
        routing.send_udp(&q(name, RecordType::A).bytes()).await;
    }

    assert_assets(status).await;
    let json = summary(status).await;
    assert_eq!(json["kind"], "dns");
    assert_eq!(json["zones"][0]["name"], "route.test.", "{json}");
    assert!(json["zones"][0]["records"].as_u64().unwrap() >= 4, "{json}");
    assert_eq!(json["health_checks"][0]["id"], "port", "{json}");
    assert_eq!(json["queries"]["NOERROR"], 2, "{json}");
    assert_eq!(json["queries"]["NXDOMAIN"], 1, "{json}");

    // No status_token: from elsewhere, the console's data is as closed as /metrics; its
    // assets (no data) load, so a browser there can be asked for the token.
    if let Some(ip) = non_loopback_ip() {
        let to = SocketAddr::new(ip, port);
        for path in ["/console/api/summary", "/metrics"] {
            let response = get_from(Some(SocketAddr::new(ip, 0)), to, path).await;
            assert_eq!(status_of(&response), 403, "{path} from {ip}: {response}");
        }
        let page = get_from(Some(SocketAddr::new(ip, 0)), to, "/").await;
        assert_eq!(status_of(&page), 200, "/ from {ip}: {page}");
    } else {
        eprintln!("no non-loopback address on this host: only loopback access is tested");
    }

    let dom = rendered_dom(status).await;
    assert_rendered(&dom, "Edgewise DNS");
    assert!(
        dom.contains("<th scope=\"row\">route.test.</th>"),
        "the zone: {dom}"
    );
    assert!(
        dom.contains("<th scope=\"row\">port</th>"),
        "the health check: {dom}"
    );
    assert!(
        dom.contains("<dt>NOERROR</dt><dd>2</dd>"),
        "the totals: {dom}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdn_console_shows_distributions_and_a_chart_in_chromium() {
    let origin = Origin::start().await;
    origin.route("/a", Reply::ok("hello").cc("max-age=300"));
    let cdn = Cdn::site(&origin, "").await;
    for _ in 0..3 {
        assert_eq!(cdn.get("/a").send().await.status, 200);
    }
    let admin = cdn.admin.expect("an admin listener");

    assert_assets(admin).await;
    let json = summary(admin).await;
    assert_eq!(json["kind"], "cdn");
    assert_eq!(json["distributions"][0]["id"], "site", "{json}");
    assert_eq!(json["distributions"][0]["behaviors"], 1, "{json}");
    assert_eq!(json["distributions"][0]["requests"], 3, "{json}");
    assert_eq!(json["requests"]["Miss"], 1, "{json}");
    assert_eq!(json["requests"]["Hit"], 2, "{json}");
    // The cache's counts settle in the background: only their presence is certain here.
    assert!(
        json["cache"]["objects"].is_u64() && json["cache"]["bytes"].is_u64(),
        "{json}"
    );
    // Reading needs no token from loopback; acting still does.
    let refused = cdn.admin(Method::POST, "/reload", None, "").await;
    assert_eq!(refused.status, 401);
    let with_token = cdn
        .admin(Method::GET, "/console/api/summary", Some(ADMIN_TOKEN), "")
        .await;
    assert_eq!(with_token.status, 200);

    let dom = rendered_dom(admin).await;
    assert_rendered(&dom, "Edgewise CDN");
    assert!(
        dom.contains("<th scope=\"row\">site</th>"),
        "the distribution: {dom}"
    );
    assert!(dom.contains("<dt>Hit</dt><dd>2</dd>"), "the totals: {dom}");
}

/// edgewise-cdn with a stream log: the CDN console lists its streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdn_console_lists_the_streams_of_the_process() {
    use edgewise::config::Config;
    use edgewise::edge::Edge;
    use tokio_util::sync::CancellationToken;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edgewise.toml");
    let tables = concat!(
        "[[stream.streams]]\nname = \"logs\"\nshards = 2\n\n",
        "[[stream.streams]]\nname = \"clicks\"\nshards = 1\n",
    );
    std::fs::write(&path, crate::stream_harness::https_config("", tables)).unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let edge = Edge::bind(&config).unwrap_or_else(|e| panic!("bind: {e}"));
    let admin = edge.cdn().unwrap().admin_addrs()[0];
    let token = CancellationToken::new();
    let running = tokio::spawn(edge.run(token.clone()));

    let json = summary(admin).await;
    let streams: Vec<(String, u64)> = json["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["shards"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        streams,
        [("clicks".into(), 1), ("logs".into(), 2)],
        "{json}"
    );
    assert!(
        json["streams"][0]["retention_seconds"].as_u64().unwrap() > 0,
        "{json}"
    );

    let dom = rendered_dom(admin).await;
    assert_rendered(&dom, "Edgewise CDN");
    assert!(
        dom.contains("<th scope=\"row\">logs</th>"),
        "the stream: {dom}"
    );
    assert!(
        dom.contains("<th scope=\"row\">clicks</th>"),
        "the stream: {dom}"
    );
    token.cancel();
    running.await.unwrap();
}
