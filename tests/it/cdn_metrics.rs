//! The admin listener's `GET /metrics` through real requests: exact request counts by
//! distribution, status class and result; bytes sent; origin requests, failures and
//! latency per origin; signed-URL and geo refusals by reason and country; collapsed
//! requests; TLS handshakes and open connections by protocol; counts kept across a reload.

use std::process::{Command, Stdio};
use std::time::Duration;

use http::Method;

use crate::cdn_harness::*;
use crate::cdn_test_origin::dead_addr;

/// An RSA public key in PEM, for a key group nobody signs with here.
fn public_key() -> Vec<u8> {
    let private = Command::new("openssl")
        .args(["genrsa", "2048"])
        .stderr(Stdio::null())
        .output()
        .expect("openssl genrsa");
    let mut child = Command::new("openssl")
        .args(["rsa", "-pubout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl rsa");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &private.stdout).unwrap();
    child.wait_with_output().unwrap().stdout
}

/// Distribution "site": `/private/*` signed, `/down/*` on an origin nobody listens on,
/// the rest on `origin`; viewers in France (by X-Forwarded-For from loopback) refused.
fn metrics_config(origin: &Origin, down: &str) -> String {
    config(
        r#"key_groups = [{ id = "signers", keys = [{ id = "K1", public_key = "k1.pem" }] }]
trusted_proxies = ["127.0.0.1/32"]"#,
        &format!(
            r#"[[cdn.distributions]]
id = "site"
hosts = ["{SITE}", "localhost"]
geo_restriction = {{ mode = "deny", countries = ["FR"] }}

[[cdn.distributions.origins]]
id = "app"
url = "{url}"

[[cdn.distributions.origins]]
id = "down"
url = "http://{down}"

[[cdn.distributions.behaviors]]
path = "/private/*"
origin = "app"
trusted_key_groups = ["signers"]

[[cdn.distributions.behaviors]]
path = "/down/*"
origin = "down"

[[cdn.distributions.behaviors]]
path = "*"
origin = "app"

[[geo.networks]]
cidr = "198.51.100.0/24"
country = "FR"
continent = "EU"
"#,
            url = origin.url()
        ),
    )
}

async fn scrape(cdn: &Cdn) -> String {
    let response = cdn
        .admin(Method::GET, "/metrics", Some(ADMIN_TOKEN), "")
        .await;
    assert_eq!(response.status, 200);
    response.text()
}

/// The value of the series written exactly as `series` (name and labels), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Polls /metrics until `series` reads `expected` (connections close a moment after the
/// client sees its response).
async fn wait_for(cdn: &Cdn, series: &str, expected: f64) {
    for _ in 0..250 {
        if value(&scrape(cdn).await, series) == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{series} never read {expected}:\n{}", scrape(cdn).await);
}

fn requests(distribution: &str, class: &str, result: &str) -> String {
    format!(
        "edgewise_cdn_requests_total{{distribution=\"{distribution}\",status_class=\"{class}\",result=\"{result}\"}}"
    )
}

#[tokio::test]
async fn metrics_count_every_outcome_exactly() {
    let origin = Origin::start().await;
    origin.route("/a", Reply::ok("hello").cc("max-age=300"));
    origin.route("/missing", Reply::status(404, "no such page"));
    origin.route(
        "/slow",
        Reply::ok("slow body").cc("max-age=300").delay_ms(400),
    );
    let down = dead_addr().await;
    let cdn = Cdn::start_with(
        &metrics_config(&origin, &down.to_string()),
        &[("k1.pem", &public_key())],
    )
    .await;

    let mut body_bytes = 0;
    let mut sent = |response: &Resp| body_bytes += response.body.len();
    let miss = cdn.get("/a").send().await;
    assert_eq!(miss.x_cache(), MISS);
    sent(&miss);
    for proto in [Proto::H1, Proto::H2] {
        let hit = cdn.get("/a").proto(proto).send().await;
        assert_eq!(hit.x_cache(), HIT);
        sent(&hit);
    }
    let missing = cdn.get("/missing").send().await;
    assert_eq!(missing.status, 404);
    sent(&missing);
    let failed = cdn.get("/down/x").send().await;
    assert_eq!(failed.status, 502);
    sent(&failed);
    let unsigned = cdn.get("/private/a").send().await;
    assert_eq!(unsigned.status, 403);
    sent(&unsigned);
    let blocked = cdn
        .get("/a")
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await;
    assert_eq!(blocked.status, 403);
    sent(&blocked);
    // A second request for an object being fetched waits for the first one's fetch.
    let (leader, follower) = tokio::join!(cdn.get("/slow").send(), async {
        tokio::time::timeout(TIMEOUT, async {
            while origin.hits("/slow") == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the origin sees the first /slow");
        cdn.get("/slow").send().await
    });
    sent(&leader);
    sent(&follower);
    assert_eq!(origin.hits("/slow"), 1);
    assert_eq!(cdn.get("/x").host("nobody.test").send().await.status, 421);

    let text = scrape(&cdn).await;
    for (series, expected) in [
        (requests("site", "2xx", "Miss"), 2.0),
        (requests("site", "2xx", "Hit"), 3.0),
        (requests("site", "4xx", "Error"), 3.0),
        (requests("site", "5xx", "Error"), 1.0),
        (requests("", "4xx", "Error"), 1.0),
        (requests("site", "2xx", "RefreshHit"), 0.0),
        (
            "edgewise_cdn_response_bytes_total{distribution=\"site\"}".into(),
            body_bytes as f64,
        ),
        (
            "edgewise_cdn_collapsed_requests_total{distribution=\"site\"}".into(),
            1.0,
        ),
        (
            "edgewise_cdn_signed_url_denials_total{distribution=\"site\",reason=\"missing\"}"
                .into(),
            1.0,
        ),
        ("edgewise_cdn_geo_denials_total{country=\"FR\"}".into(), 1.0),
        (
            "edgewise_cdn_origin_requests_total{distribution=\"site\",origin=\"app\"}".into(),
            3.0,
        ),
        (
            "edgewise_cdn_origin_errors_total{distribution=\"site\",origin=\"app\"}".into(),
            0.0,
        ),
        (
            "edgewise_cdn_origin_latency_seconds_count{distribution=\"site\",origin=\"app\"}"
                .into(),
            3.0,
        ),
        (
            "edgewise_cdn_origin_requests_total{distribution=\"site\",origin=\"down\"}".into(),
            1.0,
        ),
        (
            "edgewise_cdn_origin_errors_total{distribution=\"site\",origin=\"down\"}".into(),
            1.0,
        ),
        (
            "edgewise_cdn_tls_handshakes_total{protocol=\"TLSv1.3\",alpn=\"h2\"}".into(),
            1.0,
        ),
        (
            "edgewise_cdn_tls_handshakes_total{protocol=\"TLSv1.3\",alpn=\"http/1.1\"}".into(),
            9.0,
        ),
        ("edgewise_cdn_cache_evictions_total".into(), 0.0),
    ] {
        assert_eq!(value(&text, &series), expected, "{series} in:\n{text}");
    }
    // The slow object took at least 400 ms; the latency histogram saw it.
    assert_eq!(
        value(
            &text,
            "edgewise_cdn_origin_latency_seconds_bucket{distribution=\"site\",origin=\"app\",le=\"0.25\"}"
        ),
        2.0,
        "{text}"
    );
    for family in [
        "# TYPE edgewise_cdn_cache_objects gauge",
        "# TYPE edgewise_cdn_open_connections gauge",
        "# TYPE edgewise_cdn_tls_handshake_failures_total counter",
        "# TYPE edgewise_cdn_origin_latency_seconds histogram",
    ] {
        assert!(text.lines().any(|l| l == family), "{family} in:\n{text}");
    }
}

#[tokio::test]
async fn open_connections_are_counted_by_protocol_while_open() {
    let origin = Origin::start().await;
    origin.route("/a", Reply::ok("hello"));
    let cdn = Cdn::site(&origin, "").await;
    let h2 = "edgewise_cdn_open_connections{protocol=\"h2\"}";
    let h1 = "edgewise_cdn_open_connections{protocol=\"http/1.1\"}";
    let connection = cdn.tls("localhost", &[b"h2"]).await.unwrap();
    wait_for(&cdn, h2, 1.0).await;
    assert_eq!(value(&scrape(&cdn).await, h1), 0.0);
    drop(connection);
    wait_for(&cdn, h2, 0.0).await;
    let plain = tokio::net::TcpStream::connect(cdn.http.unwrap())
        .await
        .unwrap();
    wait_for(
        &cdn,
        "edgewise_cdn_open_connections{protocol=\"http\"}",
        1.0,
    )
    .await;
    drop(plain);
    wait_for(
        &cdn,
        "edgewise_cdn_open_connections{protocol=\"http\"}",
        0.0,
    )
    .await;
}

#[tokio::test]
async fn counts_survive_a_reload_and_follow_the_distributions() {
    let origin = Origin::start().await;
    origin.route("/a", Reply::ok("hello").cc("max-age=300"));
    let cdn = Cdn::site(&origin, "").await;
    assert_eq!(cdn.get("/a").send().await.x_cache(), MISS);
    let other = site(&origin.url(), "")
        .replace("id = \"site\"", "id = \"other\"")
        .replace(&format!("[\"{SITE}\", \"localhost\"]"), "[\"other.test\"]");
    let body = format!("{}\n{other}", site(&origin.url(), ""));
    assert_eq!(cdn.reload(&config("", &body)).await.status, 200);
    assert_eq!(cdn.get("/a").send().await.x_cache(), HIT);
    let text = scrape(&cdn).await;
    assert_eq!(
        value(&text, &requests("site", "2xx", "Miss")),
        1.0,
        "{text}"
    );
    assert_eq!(value(&text, &requests("site", "2xx", "Hit")), 1.0, "{text}");
    let bytes = "edgewise_cdn_response_bytes_total{distribution=\"other\"}";
    assert!(text.lines().any(|l| l == format!("{bytes} 0")), "{text}");
    // Taken out of the config, a distribution leaves the scrape.
    assert_eq!(
        cdn.reload(&config("", &site(&origin.url(), "")))
            .await
            .status,
        200
    );
    let text = scrape(&cdn).await;
    assert!(!text.contains("distribution=\"other\""), "{text}");
    assert_eq!(value(&text, &requests("site", "2xx", "Hit")), 1.0, "{text}");
}
