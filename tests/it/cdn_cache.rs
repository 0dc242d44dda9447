//! CDN cache freshness: hits and misses, Age, the TTL table, what is never stored,
//! revalidation, stale-while-revalidate, stale-if-error, error caching and collapsing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cdn_harness::*;

const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

#[tokio::test]
async fn a_miss_then_hits_with_an_age_that_grows() {
    let origin = Origin::start().await;
    origin.route("/a", Reply::ok("body a").cc("max-age=60"));
    let cdn = Cdn::site(&origin, "").await;
    let first = cdn.get("/a").send().await;
    assert_eq!((first.status, first.x_cache()), (200, MISS));
    assert_eq!(first.age(), Some(0));
    assert_eq!(first.text(), "body a");
    let second = cdn.get("/a").send().await;
    assert_eq!((second.status, second.x_cache()), (200, HIT));
    assert_eq!(second.text(), "body a");
    assert_eq!(second.header("cache-control"), Some("max-age=60"));
    expire(1).await;
    let later = cdn.get("/a").h2().send().await;
    assert_eq!(later.x_cache(), HIT);
    assert_eq!(later.age(), Some(1));
    assert_eq!(origin.hits("/a"), 1);
}

#[tokio::test]
async fn an_origin_age_counts_against_max_age() {
    let origin = Origin::start().await;
    origin.route(
        "/aged",
        Reply::ok("aged").cc("max-age=60").header("Age", "50"),
    );
    origin.route(
        "/old",
        Reply::ok("old").cc("max-age=60").header("Age", "60"),
    );
    let cdn = Cdn::site(&origin, "").await;
    assert_eq!(cdn.get("/aged").send().await.age(), Some(50));
    assert_eq!(cdn.get("/aged").send().await.x_cache(), HIT);
    // Already as old as its lifetime: not reusable, every request goes to the origin.
    cdn.get("/old").send().await;
    cdn.get("/old").send().await;
    assert_eq!((origin.hits("/aged"), origin.hits("/old")), (1, 2));
}

#[tokio::test]
async fn origin_lifetimes_are_clamped_by_min_and_max_ttl_and_default_ttl_fills_in() {
    let origin = Origin::start().await;
    origin.route("/clamped/x", Reply::ok("clamped").cc("max-age=3600"));
    origin.route("/default/x", Reply::ok("default"));
    origin.route("/floor/x", Reply::ok("floor").cc("max-age=0"));
    origin.route("/zero/x", Reply::ok("zero").cc("max-age=0"));
    let cdn = Cdn::behaviors(
        &origin,
        r#"[[cdn.distributions.behaviors]]
path = "/clamped/*"
origin = "app"
default_ttl = "1s"
max_ttl = "1s"
[[cdn.distributions.behaviors]]
path = "/default/*"
origin = "app"
default_ttl = "1s"
[[cdn.distributions.behaviors]]
path = "/floor/*"
origin = "app"
min_ttl = "1h"
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#,
    )
    .await;
    for path in ["/clamped/x", "/default/x", "/floor/x", "/zero/x"] {
        assert_eq!(cdn.get(path).send().await.x_cache(), MISS, "{path}");
    }
    assert_eq!(cdn.get("/clamped/x").send().await.x_cache(), HIT);
    assert_eq!(cdn.get("/default/x").send().await.x_cache(), HIT);
    assert_eq!(cdn.get("/floor/x").send().await.x_cache(), HIT);
    assert_eq!(cdn.get("/zero/x").send().await.x_cache(), MISS);
    expire(1).await;
    assert_eq!(cdn.get("/clamped/x").send().await.x_cache(), MISS);
    assert_eq!(cdn.get("/default/x").send().await.x_cache(), MISS);
    assert_eq!(cdn.get("/floor/x").send().await.x_cache(), HIT);
    assert_eq!(
        [
            origin.hits("/clamped/x"),
            origin.hits("/default/x"),
            origin.hits("/floor/x"),
            origin.hits("/zero/x")
        ],
        [2, 2, 1, 2]
    );
}

#[tokio::test]
async fn no_store_private_and_set_cookie_responses_are_never_stored() {
    let origin = Origin::start().await;
    origin.route("/no-store", Reply::ok("a").cc("no-store"));
    origin.route("/private", Reply::ok("b").cc("private, max-age=60"));
    origin.route(
        "/cookie",
        Reply::ok("c")
            .cc("max-age=60")
            .header("Set-Cookie", "id=1; Path=/"),
    );
    let cdn = Cdn::site(&origin, "").await;
    for path in ["/no-store", "/private", "/cookie"] {
        for _ in 0..2 {
            let response = cdn.get(path).send().await;
            assert_eq!((response.status, response.x_cache()), (200, MISS), "{path}");
        }
        assert_eq!(
            origin.hits(path),
            2,
            "{path} should reach the origin every time"
        );
    }
    assert_eq!(
        cdn.get("/cookie").send().await.header("set-cookie"),
        Some("id=1; Path=/")
    );
}

#[tokio::test]
async fn no_cache_is_revalidated_with_the_origin_on_every_request() {
    let origin = Origin::start().await;
    origin.route(
        "/nc",
        Reply::ok("validated body").cc("no-cache").etag("\"v1\""),
    );
    let cdn = Cdn::site(&origin, "").await;
    assert_eq!(cdn.get("/nc").send().await.x_cache(), MISS);
    for round in 2..=3 {
        let response = cdn.get("/nc").send().await;
        assert_eq!(response.status, 200);
        assert_eq!(response.x_cache(), REFRESH_HIT);
        assert_eq!(response.text(), "validated body");
        assert_eq!(origin.hits("/nc"), round);
        assert_eq!(origin.last("/nc").header("if-none-match"), Some("\"v1\""));
    }
    assert_eq!(origin.statuses("/nc"), [200, 304, 304]);
}

#[tokio::test]
async fn a_stale_object_is_revalidated_and_a_304_refreshes_it() {
    let origin = Origin::start().await;
    origin.route(
        "/stale",
        Reply::ok("original body")
            .cc("max-age=1")
            .etag("\"e1\"")
            .header("Last-Modified", LAST_MODIFIED),
    );
    let cdn = Cdn::site(&origin, "").await;
    assert_eq!(cdn.get("/stale").send().await.x_cache(), MISS);
    expire(1).await;
    let refreshed = cdn.get("/stale").send().await;
    assert_eq!(refreshed.status, 200);
    assert_eq!(refreshed.x_cache(), REFRESH_HIT);
    assert_eq!(refreshed.text(), "original body");
    assert_eq!(refreshed.age(), Some(0));
    let seen = origin.last("/stale");
    assert_eq!(seen.header("if-none-match"), Some("\"e1\""));
    assert_eq!(seen.header("if-modified-since"), Some(LAST_MODIFIED));
    assert_eq!(origin.statuses("/stale"), [200, 304]);
    // Fresh again for another second.
    assert_eq!(cdn.get("/stale").send().await.x_cache(), HIT);
    assert_eq!(origin.hits("/stale"), 2);
}

#[tokio::test]
async fn a_stale_object_replaced_by_the_origin_is_a_miss_with_the_new_body() {
    let origin = Origin::start().await;
    origin.route("/v", Reply::ok("version 1").cc("max-age=1").etag("\"v1\""));
    let cdn = Cdn::site(&origin, "").await;
    assert_eq!(cdn.get("/v").send().await.text(), "version 1");
    origin.route("/v", Reply::ok("version 2").cc("max-age=60").etag("\"v2\""));
    expire(1).await;
    let response = cdn.get("/v").send().await;
    assert_eq!(
        (response.x_cache(), response.text().as_str()),
        (MISS, "version 2")
    );
    assert_eq!(origin.statuses("/v"), [200, 200]);
    assert_eq!(cdn.get("/v").send().await.text(), "version 2");
}

#[tokio::test]
async fn stale_while_revalidate_serves_stale_at_once_and_refreshes_in_the_background() {
    let origin = Origin::start().await;
    origin.route(
        "/swr",
        Reply::ok("old").cc("max-age=1, stale-while-revalidate=60"),
    );
    let cdn = Cdn::site(&origin, "").await;
    assert_eq!(cdn.get("/swr").send().await.text(), "old");
    origin.route(
        "/swr",
        Reply::ok("new")
            .cc("max-age=60, stale-while-revalidate=60")
            .delay_ms(500),
    );
    expire(1).await;
    let started = Instant::now();
    let stale = cdn.get("/swr").send().await;
    let took = started.elapsed();
    assert_eq!((stale.status, stale.text().as_str()), (200, "old"));
    assert_eq!(stale.x_cache(), HIT);
    assert!(
        took < Duration::from_millis(400),
        "the stale answer waited for the origin ({took:?})"
    );
    wait_until("the background refresh", || origin.hits("/swr") == 2).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let fresh = cdn.get("/swr").send().await;
    assert_eq!((fresh.text().as_str(), fresh.x_cache()), ("new", HIT));
    assert_eq!(origin.hits("/swr"), 2);
}

#[tokio::test]
async fn a_stale_object_is_served_when_the_origin_is_down() {
    let origin = Origin::start().await;
    origin.route("/sie", Reply::ok("survivor").cc("max-age=1"));
    let cdn = Cdn::site(&origin, "").await;
    assert_eq!(cdn.get("/sie").send().await.x_cache(), MISS);
    origin.stop();
    expire(1).await;
    let response = cdn.get("/sie").send().await;
    assert_eq!(response.status, 200, "stale-if-error: {}", response.text());
    assert_eq!(response.text(), "survivor");
    assert_eq!(response.x_cache(), HIT);
}

#[tokio::test]
async fn a_stale_object_is_served_when_the_origin_answers_5xx_but_not_under_must_revalidate() {
    let origin = Origin::start().await;
    origin.route("/lenient", Reply::ok("lenient").cc("max-age=1"));
    origin.route(
        "/strict",
        Reply::ok("strict").cc("max-age=1, must-revalidate"),
    );
    let cdn = Cdn::site(&origin, "").await;
    cdn.get("/lenient").send().await;
    cdn.get("/strict").send().await;
    origin.route("/lenient", Reply::status(503, "busy").cc("no-store"));
    origin.route("/strict", Reply::status(503, "busy").cc("no-store"));
    expire(1).await;
    let lenient = cdn.get("/lenient").send().await;
    assert_eq!((lenient.status, lenient.text().as_str()), (200, "lenient"));
    let strict = cdn.get("/strict").send().await;
    assert_eq!((strict.status, strict.text().as_str()), (503, "busy"));
}

#[tokio::test]
async fn error_responses_are_cached_for_the_error_ttl() {
    let origin = Origin::start().await;
    origin.route("/missing", Reply::status(404, "not here"));
    origin.route("/broken", Reply::status(500, "broken"));
    let body = site(&origin.url(), "");
    let cdn = Cdn::start(&config(r#"error_ttl = "1s""#, &body)).await;
    // An error status says `Error` in X-Cache whether cached or not, as CloudFront does (and
    // as the real-time log's result type says); the origin's hit count shows the caching.
    for path in ["/missing", "/broken"] {
        assert_eq!(cdn.get(path).send().await.x_cache(), ERROR, "{path}");
        let again = cdn.get(path).send().await;
        assert_eq!(again.x_cache(), ERROR, "{path}");
        assert_eq!(origin.hits(path), 1, "{path} cached");
    }
    assert_eq!(cdn.get("/missing").send().await.text(), "not here");
    expire(1).await;
    for path in ["/missing", "/broken"] {
        cdn.get(path).send().await;
        assert_eq!(origin.hits(path), 2, "{path}: cached past error_ttl = 1s");
    }
}

#[tokio::test]
async fn custom_error_pages_replace_error_bodies_with_the_configured_status() {
    let origin = Origin::start().await;
    origin.route(
        "/errors/404.html",
        Reply::ok("<h1>custom 404</h1>").html().cc("max-age=60"),
    );
    origin.route(
        "/errors/500.html",
        Reply::ok("<h1>try later</h1>").html().cc("max-age=60"),
    );
    origin.route("/broken", Reply::status(500, "stack trace"));
    let body = format!(
        r#"[[cdn.distributions]]
id = "site"
hosts = ["{SITE}"]
custom_errors = [
    {{ status = 404, path = "/errors/404.html" }},
    {{ status = 500, path = "/errors/500.html", response_status = 503, ttl = "1s" }},
]
[[cdn.distributions.origins]]
id = "app"
url = "{}"
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#,
        origin.url()
    );
    let cdn = Cdn::start(&config("", &body)).await;
    for _ in 0..2 {
        let missing = cdn.get("/nowhere").send().await;
        assert_eq!(missing.status, 404);
        assert_eq!(missing.text(), "<h1>custom 404</h1>");
        assert_eq!(
            missing.header("content-type"),
            Some("text/html; charset=utf-8")
        );
    }
    let broken = cdn.get("/broken").send().await;
    assert_eq!(broken.status, 503);
    assert_eq!(broken.text(), "<h1>try later</h1>");
    assert_eq!(cdn.get("/errors/404.html").send().await.status, 200);
    assert_eq!(origin.hits("/errors/404.html"), 1);
    assert_eq!(origin.hits("/broken"), 1);
}

#[tokio::test]
async fn concurrent_misses_for_one_key_make_one_origin_request() {
    let origin = Origin::start().await;
    origin.route("/hot", Reply::ok("hot body").cc("max-age=60").delay_ms(300));
    let cdn = Arc::new(Cdn::site(&origin, "").await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let cdn = cdn.clone();
        tasks.spawn(async move {
            let request = cdn.get("/hot");
            let request = if i % 2 == 0 { request.h2() } else { request };
            request.send().await
        });
    }
    let mut results = Vec::new();
    while let Some(response) = tasks.join_next().await {
        results.push(response.expect("request task"));
    }
    assert_eq!(results.len(), 50);
    for response in &results {
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "hot body")
        );
    }
    let misses = results.iter().filter(|r| r.x_cache() == MISS).count();
    assert_eq!(misses, 1, "one leader, the others served its object");
    assert_eq!(origin.hits("/hot"), 1);
}

#[tokio::test]
async fn concurrent_requests_for_an_uncacheable_key_each_reach_the_origin() {
    let origin = Origin::start().await;
    origin.route("/private", Reply::ok("mine").cc("private").delay_ms(200));
    let cdn = Arc::new(Cdn::site(&origin, "").await);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let cdn = cdn.clone();
        tasks.spawn(async move { cdn.get("/private").send().await });
    }
    while let Some(response) = tasks.join_next().await {
        let response = response.unwrap();
        assert_eq!((response.status, response.text().as_str()), (200, "mine"));
    }
    assert_eq!(origin.hits("/private"), 5);
}
