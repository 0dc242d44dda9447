//! CDN cache keys and serving from the cache: query normalisation, header and cookie
//! allowlists, Vary, conditional requests, HEAD, ranges, and objects too large to store.

use std::sync::Arc;

use http::Method;

use crate::cdn_harness::*;

const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

#[tokio::test]
async fn query_order_does_not_split_the_cache_but_values_do() {
    let origin = Origin::start().await;
    origin.route_fn("/q", |seen| Reply::ok(seen.uri.clone()).cc("max-age=60"));
    let cdn = Cdn::site(&origin, r#"cache_key = { query_strings = "all" }"#).await;
    let first = cdn.get("/q?a=1&b=2").send().await;
    assert_eq!(
        (first.x_cache(), first.text().as_str()),
        (MISS, "/q?a=1&b=2")
    );
    let swapped = cdn.get("/q?b=2&a=1").send().await;
    assert_eq!(
        (swapped.x_cache(), swapped.text().as_str()),
        (HIT, "/q?a=1&b=2")
    );
    assert_eq!(cdn.get("/q?a=1&b=3").send().await.x_cache(), MISS);
    assert_eq!(origin.hits("/q"), 2);
}

#[tokio::test]
async fn without_query_strings_in_the_key_every_query_shares_one_object() {
    let origin = Origin::start().await;
    origin.route("/page", Reply::ok("page").cc("max-age=60"));
    let cdn = Cdn::site(&origin, "").await;
    assert_eq!(cdn.get("/page?utm=1").send().await.x_cache(), MISS);
    assert_eq!(cdn.get("/page?utm=2").send().await.x_cache(), HIT);
    assert_eq!(cdn.get("/page").send().await.x_cache(), HIT);
    assert_eq!(origin.hits("/page"), 1);
}

#[tokio::test]
async fn headers_in_the_cache_key_split_the_cache() {
    let origin = Origin::start().await;
    origin.route_fn("/h", |seen| {
        Reply::ok(seen.header("x-device").unwrap_or("none").to_string()).cc("max-age=60")
    });
    let cdn = Cdn::site(&origin, r#"cache_key = { headers = ["X-Device"] }"#).await;
    let send = |device: &'static str| cdn.get("/h").header("x-device", device).send();
    let mobile = send("mobile").await;
    assert_eq!((mobile.x_cache(), mobile.text().as_str()), (MISS, "mobile"));
    let desktop = send("desktop").await;
    assert_eq!(
        (desktop.x_cache(), desktop.text().as_str()),
        (MISS, "desktop")
    );
    let again = send("mobile").await;
    assert_eq!((again.x_cache(), again.text().as_str()), (HIT, "mobile"));
    assert_eq!(origin.hits("/h"), 2);
}

#[tokio::test]
async fn allowlisted_cookies_split_the_cache_and_others_do_not() {
    let origin = Origin::start().await;
    origin.route_fn("/c", |seen| {
        Reply::ok(seen.header("cookie").unwrap_or("none").to_string()).cc("max-age=60")
    });
    let cdn = Cdn::site(&origin, r#"cache_key = { cookies = ["lang"] }"#).await;
    let send = |cookie: &'static str| cdn.get("/c").header("cookie", cookie).send();
    let ko = send("lang=ko; tracker=1").await;
    assert_eq!((ko.x_cache(), ko.text().as_str()), (MISS, "lang=ko"));
    assert_eq!(send("tracker=2; lang=ko").await.x_cache(), HIT);
    let en = send("lang=en; tracker=1").await;
    assert_eq!((en.x_cache(), en.text().as_str()), (MISS, "lang=en"));
    assert_eq!(origin.hits("/c"), 2);
}

fn by_language(seen: &Seen) -> Reply {
    let language = seen.header("accept-language").unwrap_or("none").to_string();
    Reply::ok(language)
        .cc("max-age=60")
        .header("Vary", "Accept-Language")
        .delay_ms(if seen.path == "/slow" { 300 } else { 0 })
}

/// The origin sees Accept-Language (forwarded, not keyed): its `Vary` then keys the variants.
const FORWARD_LANGUAGE: &str = r#"forward_headers = ["Accept-Language"]"#;

#[tokio::test]
async fn vary_accept_language_keeps_one_variant_per_language() {
    let origin = Origin::start().await;
    origin.route_fn("/v", by_language);
    let cdn = Cdn::site(&origin, FORWARD_LANGUAGE).await;
    let send = |language: &'static str| cdn.get("/v").header("accept-language", language).send();
    let ko = send("ko").await;
    assert_eq!((ko.x_cache(), ko.text().as_str()), (MISS, "ko"));
    assert_eq!(ko.header("vary"), Some("Accept-Language"));
    let en = send("en").await;
    assert_eq!((en.x_cache(), en.text().as_str()), (MISS, "en"));
    let ko_again = send("ko").await;
    assert_eq!((ko_again.x_cache(), ko_again.text().as_str()), (HIT, "ko"));
    let en_again = send("en").await;
    assert_eq!((en_again.x_cache(), en_again.text().as_str()), (HIT, "en"));
    assert_eq!(origin.hits("/v"), 2);
}

#[tokio::test]
async fn headers_the_behavior_does_not_forward_never_shape_a_cached_object() {
    let origin = Origin::start().await;
    origin.route_fn("/v", by_language);
    origin.route_fn("/echo", |seen| {
        let mut names: Vec<&str> = seen.headers.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        Reply::ok(names.join(",")).cc("max-age=60")
    });
    let cdn = Cdn::site(&origin, "").await;
    // The first viewer's language does not reach the origin, so it cannot become everyone's.
    let ko = cdn.get("/v").header("accept-language", "ko").send().await;
    assert_eq!((ko.x_cache(), ko.text().as_str()), (MISS, "none"));
    let en = cdn.get("/v").header("accept-language", "en").send().await;
    assert_eq!((en.x_cache(), en.text().as_str()), (HIT, "none"));
    assert_eq!(origin.hits("/v"), 1);
    // Only the forwarding headers reach the origin on a cacheable request: no Authorization,
    // no X-Forwarded-Host-style override, the edge's own User-Agent.
    let echo = cdn
        .get("/echo")
        .header("authorization", "Bearer viewer")
        .header("x-original-url", "/admin")
        .header("accept-language", "ko")
        .header("user-agent", "viewer-agent")
        .send()
        .await;
    assert_eq!(
        echo.text(),
        "host,user-agent,via,x-forwarded-for,x-forwarded-host,x-forwarded-proto"
    );
    assert_eq!(
        origin.last("/echo").header("user-agent"),
        Some("Amazon CloudFront")
    );
}

#[tokio::test]
async fn concurrent_requests_for_different_vary_variants_each_get_their_own() {
    let origin = Origin::start().await;
    origin.route_fn("/slow", by_language);
    let cdn = Arc::new(Cdn::site(&origin, FORWARD_LANGUAGE).await);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, language) in ["ko", "en", "ko", "en", "de", "de"].into_iter().enumerate() {
        let cdn = cdn.clone();
        tasks.spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(i as u64 * 20)).await;
            let response = cdn
                .get("/slow")
                .header("accept-language", language)
                .send()
                .await;
            (language, response.text())
        });
    }
    while let Some(result) = tasks.join_next().await {
        let (language, body) = result.unwrap();
        assert_eq!(
            body, language,
            "a viewer asking for Accept-Language {language} got the {body} variant"
        );
    }
}

#[tokio::test]
async fn conditional_requests_get_304_from_the_cache() {
    let origin = Origin::start().await;
    origin.route(
        "/doc",
        Reply::ok("document")
            .cc("max-age=60")
            .etag("\"d1\"")
            .header("Last-Modified", LAST_MODIFIED),
    );
    let cdn = Cdn::site(&origin, "").await;
    assert_eq!(cdn.get("/doc").send().await.status, 200);
    let by_etag = cdn
        .get("/doc")
        .header("if-none-match", "\"x\", \"d1\"")
        .send()
        .await;
    assert_eq!((by_etag.status, by_etag.x_cache()), (304, HIT));
    assert!(by_etag.body.is_empty());
    assert_eq!(by_etag.header("etag"), Some("\"d1\""));
    let weak = cdn
        .get("/doc")
        .header("if-none-match", "W/\"d1\"")
        .send()
        .await;
    assert_eq!(weak.status, 304);
    let by_date = cdn
        .get("/doc")
        .header("if-modified-since", LAST_MODIFIED)
        .send()
        .await;
    assert_eq!(by_date.status, 304);
    let changed = cdn
        .get("/doc")
        .header("if-none-match", "\"d0\"")
        .send()
        .await;
    assert_eq!((changed.status, changed.text().as_str()), (200, "document"));
    let older = cdn
        .get("/doc")
        .header("if-modified-since", "Tue, 20 Oct 2015 07:28:00 GMT")
        .send()
        .await;
    assert_eq!(older.status, 200);
    assert_eq!(origin.hits("/doc"), 1);
}

#[tokio::test]
async fn head_is_served_from_a_cached_get() {
    let origin = Origin::start().await;
    origin.route("/obj", Reply::ok("0123456789").cc("max-age=60"));
    let cdn = Cdn::site(&origin, "").await;
    assert_eq!(cdn.get("/obj").send().await.x_cache(), MISS);
    for proto in [Proto::H1, Proto::H2] {
        let head = cdn.request(Method::HEAD, "/obj").proto(proto).send().await;
        assert_eq!((head.status, head.x_cache()), (200, HIT), "{proto:?}");
        assert!(head.body.is_empty());
        assert_eq!(head.header("content-length"), Some("10"));
    }
    assert_eq!(origin.hits("/obj"), 1);
}

#[tokio::test]
async fn a_head_miss_fills_the_cache_for_a_later_get() {
    let origin = Origin::start().await;
    origin.route("/obj", Reply::ok("full body").cc("max-age=60"));
    let cdn = Cdn::site(&origin, "").await;
    let head = cdn.request(Method::HEAD, "/obj").send().await;
    assert_eq!((head.status, head.x_cache()), (200, MISS));
    assert!(head.body.is_empty());
    assert_eq!(origin.last("/obj").method, Method::GET);
    let get = cdn.get("/obj").send().await;
    assert_eq!((get.x_cache(), get.text().as_str()), (HIT, "full body"));
    assert_eq!(origin.hits("/obj"), 1);
}

#[tokio::test]
async fn ranges_are_served_from_the_cached_object() {
    let origin = Origin::start().await;
    origin.route(
        "/r",
        Reply::ok("0123456789abcdef")
            .cc("max-age=60")
            .etag("\"r1\""),
    );
    let cdn = Cdn::site(&origin, "").await;
    let first = cdn.get("/r").header("range", "bytes=2-5").send().await;
    assert_eq!((first.status, first.text().as_str()), (206, "2345"));
    assert_eq!(first.header("content-range"), Some("bytes 2-5/16"));
    assert_eq!(
        origin.last("/r").header("range"),
        None,
        "the cache fetches it whole"
    );
    let suffix = cdn.get("/r").header("range", "bytes=-3").h2().send().await;
    assert_eq!((suffix.status, suffix.text().as_str()), (206, "def"));
    assert_eq!(suffix.x_cache(), HIT);
    assert_eq!(suffix.header("content-length"), Some("3"));
    let beyond = cdn.get("/r").header("range", "bytes=999999-").send().await;
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.header("content-range"), Some("bytes */16"));
    let multi = cdn.get("/r").header("range", "bytes=0-1,4-5").send().await;
    assert_eq!(
        (multi.status, multi.text().as_str()),
        (200, "0123456789abcdef")
    );
    let stale_if_range = cdn
        .get("/r")
        .header("range", "bytes=0-1")
        .header("if-range", "\"other\"")
        .send()
        .await;
    assert_eq!(stale_if_range.status, 200);
    let whole = cdn.get("/r").send().await;
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(origin.hits("/r"), 1);
}

#[tokio::test]
async fn objects_larger_than_max_object_size_are_streamed_but_not_cached() {
    let origin = Origin::start().await;
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    origin.route("/declared", Reply::ok(big.clone()).cc("max-age=60"));
    origin.route(
        "/chunked",
        Reply::ok(big.clone()).cc("max-age=60").chunked(),
    );
    origin.route(
        "/small",
        Reply::ok(vec![7u8; 50_000]).cc("max-age=60").chunked(),
    );
    let body = site(&origin.url(), "");
    let cdn = Cdn::start(&config(r#"max_object_size = "64KiB""#, &body)).await;
    for path in ["/declared", "/chunked"] {
        for proto in [Proto::H1, Proto::H2] {
            let response = cdn.get(path).proto(proto).send().await;
            assert_eq!(response.status, 200, "{path}");
            assert_eq!(response.x_cache(), MISS, "{path}");
            assert!(
                response.body[..] == big[..],
                "{path}: body intact ({} bytes)",
                response.body.len()
            );
        }
        assert_eq!(origin.hits(path), 2, "{path} not cached");
    }
    cdn.get("/small").send().await;
    let small = cdn.get("/small").send().await;
    assert_eq!((small.x_cache(), small.body.len()), (HIT, 50_000));
}
