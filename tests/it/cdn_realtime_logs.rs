//! Real-time logs end to end: the CDN's queue drained by a writer that collects lines, one
//! line per response (miss, hit, origin error, redirect, geo refusal, unknown host) over
//! HTTP/1.1 and HTTP/2 on TLS and plain HTTP, and the counters on /metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use edgewise::cdn::realtime_log::run_writer;
use http::Method;

use crate::cdn_harness::*;

const FIELDS: [&str; 22] = [
    "timestamp",
    "c-ip",
    "c-country",
    "sc-status",
    "sc-bytes",
    "cs-method",
    "cs-protocol",
    "cs-protocol-version",
    "cs-host",
    "cs-uri-stem",
    "cs-uri-query",
    "cs-user-agent",
    "x-edge-location",
    "x-edge-request-id",
    "x-edge-result-type",
    "x-edge-response-result-type",
    "x-edge-detailed-result-type",
    "ssl-protocol",
    "ssl-cipher",
    "time-taken",
    "cache-behavior-path-pattern",
    "primary-distribution-id",
];

/// "site" in front of `origin` (`/secure/*` redirects plain HTTP to HTTPS), "blocked" refusing
/// Germany, where loopback viewers are.
fn toml(origin: &Origin) -> String {
    let fields = FIELDS.map(|f| format!("{f:?}")).join(", ");
    let settings = format!(r#"realtime_logs = {{ stream = "cdn-logs", fields = [{fields}] }}"#);
    let body = format!(
        r#"[[cdn.distributions]]
id = "site"
hosts = ["{SITE}", "localhost"]
custom_errors = [{{ status = 500, path = "/errors/500.html", response_status = 503 }}]

[[cdn.distributions.origins]]
id = "app"
url = "{url}"

[[cdn.distributions.behaviors]]
path = "/secure/*"
origin = "app"
viewer_protocol = "redirect-to-https"

[[cdn.distributions.behaviors]]
path = "*"
origin = "app"

[[cdn.distributions]]
id = "blocked"
hosts = ["blocked.test"]
geo_restriction = {{ mode = "deny", countries = ["DE"] }}

[[cdn.distributions.origins]]
id = "app"
url = "{url}"

[[cdn.distributions.behaviors]]
path = "*"
origin = "app"

[[geo.networks]]
cidr = "127.0.0.0/8"
country = "DE"

[stream]
listen = ["127.0.0.1:0"]
data_dir = "streams"

[[stream.streams]]
name = "cdn-logs"
"#,
        url = origin.url()
    );
    config(&settings, &body)
}

/// Starts the CDN and a writer collecting every line it is handed.
async fn start(origin: &Origin) -> (Cdn, Arc<Mutex<Vec<String>>>) {
    let mut cdn = Cdn::start(&toml(origin)).await;
    let receiver = cdn
        .realtime_log
        .take()
        .expect("real-time logs are configured");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    tokio::spawn(run_writer(receiver, 500, move |batch: Vec<Bytes>| {
        let mut lines = sink.lock().unwrap();
        for line in batch {
            lines.push(String::from_utf8(line.to_vec()).expect("UTF-8 line"));
        }
        async { Ok(()) }
    }));
    (cdn, lines)
}

/// Sends `request` and returns the one line it produced, by field name.
async fn logged(
    lines: &Mutex<Vec<String>>,
    request: Req<'_>,
    status: u16,
) -> HashMap<&'static str, String> {
    let before = lines.lock().unwrap().len();
    let response = request.send().await;
    assert_eq!(response.status, status, "{}", response.text());
    wait_until("the request's log line", || {
        lines.lock().unwrap().len() > before
    })
    .await;
    // Give a stray second line the chance to show up.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let lines = lines.lock().unwrap();
    assert_eq!(lines.len(), before + 1, "one line per request: {lines:#?}");
    let line = &lines[before];
    assert!(line.ends_with('\n'), "{line:?}");
    let values: Vec<&str> = line.trim_end_matches('\n').split('\t').collect();
    assert_eq!(values.len(), FIELDS.len(), "{line:?}");
    let record: HashMap<&'static str, String> = FIELDS
        .iter()
        .zip(values)
        .map(|(name, value)| (*name, value.to_string()))
        .collect();
    // The viewer's X-Cache and the log always tell the same story.
    assert_eq!(
        response.x_cache(),
        format!("{} from edgewise", record["x-edge-result-type"]),
        "{record:#?}"
    );
    record
}

fn check(record: &HashMap<&str, String>, expected: &[(&str, &str)]) {
    for (name, want) in expected {
        assert_eq!(record[name], *want, "{name} in {record:#?}");
    }
}

#[tokio::test]
async fn cdn_every_response_becomes_one_line_with_its_facts() {
    let origin = Origin::start().await;
    origin.route("/page", Reply::ok("the page").cc("max-age=300"));
    origin.route("/missing", Reply::status(404, "nope"));
    origin.route("/broken", Reply::status(500, "stack trace"));
    origin.route("/errors/500.html", Reply::ok("try later").cc("max-age=60"));
    let (cdn, lines) = start(&origin).await;

    let miss = logged(
        &lines,
        cdn.get("/page?x=1")
            .header("user-agent", "edgewise test/1.0 (it)"),
        200,
    )
    .await;
    check(
        &miss,
        &[
            ("c-ip", "127.0.0.1"),
            ("c-country", "DE"),
            ("sc-status", "200"),
            ("cs-method", "GET"),
            ("cs-protocol", "https"),
            ("cs-protocol-version", "HTTP/1.1"),
            ("cs-host", "site.test"),
            ("cs-uri-stem", "/page"),
            ("cs-uri-query", "x=1"),
            ("cs-user-agent", "edgewise%20test/1.0%20(it)"),
            ("x-edge-location", "edgewise"),
            ("x-edge-result-type", "Miss"),
            ("x-edge-response-result-type", "Miss"),
            ("x-edge-detailed-result-type", "Miss"),
            ("ssl-protocol", "TLSv1.3"),
            ("cache-behavior-path-pattern", "*"),
            ("primary-distribution-id", "site"),
        ],
    );
    assert!(miss["ssl-cipher"].starts_with("TLS_"), "{miss:#?}");
    assert!(miss["sc-bytes"].parse::<u64>().unwrap() > "the page".len() as u64);
    let (secs, millis) = miss["timestamp"].split_once('.').unwrap();
    assert!(secs.parse::<u64>().unwrap() > 1_600_000_000 && millis.len() == 3);
    assert!(miss["time-taken"].parse::<f64>().unwrap() < 10.0);

    let hit = logged(&lines, cdn.get("/page?x=1").h2(), 200).await;
    check(
        &hit,
        &[
            ("cs-protocol-version", "HTTP/2.0"),
            ("x-edge-result-type", "Hit"),
            ("ssl-protocol", "TLSv1.3"),
            ("cs-user-agent", "-"),
        ],
    );

    let head = logged(&lines, cdn.request(Method::HEAD, "/page?x=1"), 200).await;
    check(
        &head,
        &[("cs-method", "HEAD"), ("x-edge-result-type", "Hit")],
    );

    let missing = logged(&lines, cdn.get("/missing").plain(), 404).await;
    check(
        &missing,
        &[
            ("sc-status", "404"),
            ("cs-protocol", "http"),
            ("cs-protocol-version", "HTTP/1.1"),
            ("cs-uri-query", "-"),
            ("x-edge-result-type", "Error"),
            ("ssl-protocol", "-"),
            ("ssl-cipher", "-"),
        ],
    );

    let redirect = logged(&lines, cdn.get("/secure/a?b=c").plain(), 301).await;
    check(
        &redirect,
        &[
            ("x-edge-result-type", "Redirect"),
            ("x-edge-detailed-result-type", "Redirect"),
            ("cache-behavior-path-pattern", "/secure/*"),
            ("cs-uri-query", "b=c"),
        ],
    );

    let geo = logged(&lines, cdn.get("/any").host("blocked.test").h2(), 403).await;
    check(
        &geo,
        &[
            ("c-country", "DE"),
            ("x-edge-result-type", "Error"),
            ("x-edge-detailed-result-type", "ClientGeoBlocked"),
            ("cs-host", "blocked.test"),
            ("primary-distribution-id", "blocked"),
            ("cs-protocol-version", "HTTP/2.0"),
        ],
    );

    let unknown = logged(&lines, cdn.get("/").host("nobody.test"), 421).await;
    check(
        &unknown,
        &[
            ("c-country", "DE"),
            ("x-edge-result-type", "Error"),
            ("x-edge-detailed-result-type", "InvalidRequest"),
            ("cs-host", "nobody.test"),
            ("primary-distribution-id", "-"),
            ("cache-behavior-path-pattern", "-"),
        ],
    );

    // A custom error page: the page's own body, the configured status, an Error.
    let custom = logged(&lines, cdn.get("/broken"), 503).await;
    check(
        &custom,
        &[("sc-status", "503"), ("x-edge-result-type", "Error")],
    );

    let mut ids: Vec<String> = [
        &miss, &hit, &head, &missing, &redirect, &geo, &unknown, &custom,
    ]
    .iter()
    .map(|r| r["x-edge-request-id"].clone())
    .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8, "request ids are unique: {ids:?}");

    // The writer counts a batch once its sink call has returned.
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = cdn
            .admin(Method::GET, "/metrics", Some(ADMIN_TOKEN), "")
            .await
            .text();
        if metrics.contains("edgewise_realtime_log_records_total{result=\"written\"} 8") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for (result, count) in [("queued", 8), ("dropped", 0), ("written", 8), ("failed", 0)] {
        let line = format!("edgewise_realtime_log_records_total{{result=\"{result}\"}} {count}");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
    assert!(metrics.contains("# TYPE edgewise_realtime_log_records_total counter"));
}

#[tokio::test]
async fn cdn_without_realtime_logs_has_no_queue_and_no_log_metrics() {
    let origin = Origin::start().await;
    origin.route("/page", Reply::ok("the page"));
    let cdn = Cdn::site(&origin, "").await;
    assert!(cdn.realtime_log.is_none());
    assert_eq!(cdn.get("/page").send().await.status, 200);
    let metrics = cdn
        .admin(Method::GET, "/metrics", Some(ADMIN_TOKEN), "")
        .await
        .text();
    assert!(!metrics.contains("edgewise_realtime_log"), "{metrics}");
}
