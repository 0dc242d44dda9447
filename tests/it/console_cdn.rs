//! The CDN console in headless Chromium (the CDP driver of `browser.rs`), against a real CDN
//! and origin: the charts of requests, hit ratio and bytes out move with traffic, the status
//! classes count an origin's 404, the origins' latency and the cache fill show, the top
//! objects and viewers' countries come from the real-time log records of the process's own
//! stream log, and an invalidation made from the page (the token asked for first) removes
//! the object.

use std::time::Duration;

use edgewise::config::Config;
use edgewise::edge::Edge;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::browser::{Browser, Page};
use crate::cdn_harness::{ADMIN_TOKEN, Cdn, config, raw_exchange, site};
use crate::cdn_test_origin::{Origin, Reply};

const WAIT: Duration = Duration::from_secs(20);

/// The text of every cell of table `id`'s body, row by row.
pub async fn table(page: &Page, id: &str) -> Vec<Vec<String>> {
    let rows = page
        .eval(&format!(
            "[...document.getElementById('{id}').tBodies[0].rows]\
             .map((r) => [...r.cells].map((c) => c.textContent))"
        ))
        .await;
    serde_json::from_value(rows).expect("rows of cells")
}

/// JavaScript: the values chart `chart` has drawn for series `name` (none before it has).
fn series(chart: &str, name: &str) -> String {
    format!(
        "((c) => {{ const i = c.names.indexOf('{name}'); return i < 0 ? [] : c.values[i]; }})\
         (Edgewise.charts['{chart}'])"
    )
}

/// Opens the console at `admin` and waits for its first summary: a counter sent after this
/// shows as a rate.
pub async fn open_console(browser: &Browser, admin: std::net::SocketAddr) -> Page {
    let page = browser.open(&format!("http://{admin}/")).await;
    page.wait_for("Edgewise.charts['cdn-chart'].last !== null", WAIT)
        .await;
    page
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdn_console_charts_status_classes_origins_and_cache_fill_move_with_traffic() {
    let origin = Origin::start().await;
    origin.route("/a", Reply::ok("hello").cc("max-age=300"));
    origin.route("/missing", Reply::status(404, "nope"));
    let cdn = Cdn::site(&origin, "").await;
    let browser = Browser::launch().await;
    let page = open_console(&browser, cdn.admin.expect("an admin listener")).await;
    // Before any real-time log: the tables say how to get one, rather than nothing.
    let objects = table(&page, "cdn-objects").await;
    assert!(
        objects[0][0].contains("Real-time logs are off") && objects[0][0].contains("cs-uri-stem"),
        "{objects:?}"
    );

    let x_cache: Vec<String> = {
        let mut seen = Vec::new();
        for path in ["/a", "/a", "/a", "/missing"] {
            seen.push(cdn.get(path).send().await.x_cache().to_string());
        }
        seen
    };
    assert_eq!(
        x_cache[..3],
        [
            "Miss from edgewise",
            "Hit from edgewise",
            "Hit from edgewise"
        ]
    );
    page.wait_for(
        &format!("{}.some((v) => v > 0)", series("cdn-chart", "Hit")),
        WAIT,
    )
    .await;
    page.wait_for(
        &format!(
            "{}.some((v) => v > 0)",
            series("cdn-ratio-chart", "Hit ratio")
        ),
        WAIT,
    )
    .await;
    let ratios: Vec<Option<f64>> =
        serde_json::from_value(page.eval(&series("cdn-ratio-chart", "Hit ratio")).await).unwrap();
    assert!(
        ratios.iter().flatten().all(|r| (0.0..=100.0).contains(r)),
        "a hit ratio is a share: {ratios:?}"
    );
    page.wait_for(
        &format!("{}.some((v) => v > 0)", series("cdn-bytes-chart", "site")),
        WAIT,
    )
    .await;

    // Three 2xx (a miss, two hits) and the origin's 404.
    page.wait_for(
        "document.querySelector('#cdn-status tbody tr').cells[3].textContent === '1'",
        WAIT,
    )
    .await;
    assert_eq!(
        table(&page, "cdn-status").await,
        [["site", "3", "0", "1", "0"]]
    );
    let distributions = table(&page, "distributions").await;
    assert_eq!(
        distributions[0][..4],
        ["site", "site.test, localhost", "1", "4"]
    );
    assert!(
        distributions[0][4].ends_with('B'),
        "bytes out: {distributions:?}"
    );

    // The origin was asked twice (the miss and the 404); both were answered.
    let origins = table(&page, "cdn-origins").await;
    assert_eq!(origins.len(), 1, "{origins:?}");
    assert_eq!(origins[0][..4], ["site", "app", "2", "0"], "{origins:?}");
    for quantile in &origins[0][5..] {
        assert!(quantile.ends_with(" ms"), "{origins:?}");
    }

    // The default cache_size, 256 MiB, is what the meter fills up to; what was just cached
    // counts without waiting for more traffic.
    page.wait_for(
        "document.getElementById('cache-fill').textContent.includes(' of 256.0 MiB') \
         && document.getElementById('cache-meter').value > 0",
        WAIT,
    )
    .await;
    let max: Value = page
        .eval("document.getElementById('cache-meter').max")
        .await;
    assert_eq!(max.as_f64(), Some(268_435_456.0));

    // A phone: tables scroll in their own boxes, the page itself does not.
    page.viewport(390, 844, true).await;
    page.wait_for(
        "document.documentElement.scrollWidth <= innerWidth",
        Duration::from_secs(5),
    )
    .await;
    page.assert_no_errors();
}

/// edgewise-cdn with its real-time log going to a stream of its own stream log, loopback
/// viewers located in Germany: the console counts the latest records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdn_console_top_objects_and_countries_come_from_the_real_time_log() {
    let origin = Origin::start().await;
    origin.route("/a", Reply::ok("hello").cc("max-age=300"));
    origin.route("/b", Reply::ok("world").cc("max-age=300"));
    let body = format!(
        r#"{site}
[[geo.networks]]
cidr = "127.0.0.0/8"
country = "DE"

[stream]
listen = ["127.0.0.1:0"]
data_dir = "streams"

[[stream.streams]]
name = "cdn-logs"
shards = 2
"#,
        site = site(&origin.url(), "")
    );
    let toml = config(r#"realtime_logs = { stream = "cdn-logs" }"#, &body);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edgewise.toml");
    std::fs::write(&path, toml).unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let edge = Edge::bind(&config).unwrap_or_else(|e| panic!("bind: {e}"));
    let cdn = edge.cdn().expect("a CDN");
    let (admin, http) = (cdn.admin_addrs()[0], cdn.http_addrs()[0]);
    let token = CancellationToken::new();
    let running = tokio::spawn(edge.run(token.clone()));

    for path in ["/a", "/a", "/a", "/b"] {
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
        let (response, _) = raw_exchange(http, request.as_bytes()).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    let browser = Browser::launch().await;
    let page = browser.open(&format!("http://{admin}/")).await;
    page.wait_for(
        "document.querySelector('#cdn-objects tbody').textContent.includes('/b')",
        WAIT,
    )
    .await;
    assert_eq!(
        table(&page, "cdn-objects").await,
        [["/a", "site", "3"], ["/b", "site", "1"]]
    );
    assert_eq!(
        table(&page, "cdn-countries").await,
        [["DE", "4", "100.0 %"]]
    );
    let note: Value = page
        .eval("document.getElementById('cdn-recent-note').textContent")
        .await;
    assert!(
        note.as_str()
            .unwrap()
            .contains("latest 4 records of stream cdn-logs"),
        "{note}"
    );
    page.assert_no_errors();
    drop(page);
    token.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_made_from_the_console_removes_the_object() {
    let origin = Origin::start().await;
    origin.route("/a", Reply::ok("hello").cc("max-age=300"));
    let cdn = Cdn::site(&origin, "").await;
    assert_eq!(cdn.get("/a").send().await.x_cache(), "Miss from edgewise");
    assert_eq!(cdn.get("/a").send().await.x_cache(), "Hit from edgewise");

    let browser = Browser::launch().await;
    let page = open_console(&browser, cdn.admin.expect("an admin listener")).await;
    page.wait_for(
        "document.getElementById('invalidate-distribution').value === 'site'",
        WAIT,
    )
    .await;
    let result = "document.getElementById('invalidate-result').textContent";

    // A typo is explained before anything is sent.
    page.type_into("#invalidate-paths", "a*b").await;
    page.click("#invalidate-submit").await;
    page.wait_for(&format!("{result}.includes('starts with /')"), WAIT)
        .await;

    // Without a token the page asks for it first: the token form, not a refused request.
    let token_form = "document.getElementById('token-form').checkVisibility()";
    assert_eq!(page.eval(token_form).await, false, "no token form yet");
    page.type_into("#invalidate-paths", "/a\n").await;
    page.click("#invalidate-submit").await;
    page.wait_for(&format!("{token_form} && {result}.includes('token')"), WAIT)
        .await;
    page.assert_no_errors();
    let focused: Value = page.eval("document.activeElement.id").await;
    assert_eq!(focused, "token", "the token field takes the focus");
    assert_eq!(origin.hits("/a"), 1);

    // Given the token, the invalidation goes ahead.
    page.type_into("#token", ADMIN_TOKEN).await;
    page.click("#token-form button[type=submit]").await;
    page.wait_for(&format!("{result}.includes('created')"), WAIT)
        .await;
    let text: Value = page.eval(result).await;
    assert!(
        text.as_str()
            .unwrap()
            .contains("1 cached object removed from site"),
        "{text}"
    );
    let kept: Value = page.eval("sessionStorage.getItem('edgewise-token')").await;
    assert_eq!(kept, ADMIN_TOKEN, "the token is kept for the tab");

    let after = cdn.get("/a").send().await;
    assert_eq!(after.x_cache(), "Miss from edgewise");
    assert_eq!(after.text(), "hello");
    assert_eq!(origin.hits("/a"), 2, "the origin saw a second request");

    // The token is not asked again: a second invalidation goes straight through.
    page.click("#invalidate-submit").await;
    page.wait_for(
        &format!("{result} !== {text} && {result}.includes('1 cached object removed')"),
        WAIT,
    )
    .await;
    assert_eq!(cdn.get("/a").send().await.x_cache(), "Miss from edgewise");
    page.assert_no_errors();
}
