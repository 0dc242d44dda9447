//! CDN origins: what origin requests carry (forwarding headers, Host, custom headers, the
//! cookie and query allowlists), hop-by-hop removal both ways, origin-group failover and
//! folder origins.

use http::Method;

use crate::cdn_harness::*;

#[tokio::test]
async fn origin_requests_carry_the_forwarding_headers_and_the_origin_headers() {
    let origin = Origin::start().await;
    origin.route("/fwd", Reply::ok("ok").cc("no-store"));
    let body = format!(
        r#"[[cdn.distributions]]
id = "site"
hosts = ["{SITE}"]
[[cdn.distributions.origins]]
id = "app"
url = "{}"
headers = {{ "X-Origin-Secret" = "s3cret", "X-Env" = "test" }}
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#,
        origin.url()
    );
    let cdn = Cdn::start(&config("", &body)).await;

    cdn.get("/fwd")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-origin-secret", "forged")
        .header("user-agent", "edgewise-tests")
        .send()
        .await;
    let seen = origin.last("/fwd");
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("x-forwarded-host"), Some("site.test"));
    assert_eq!(seen.header("via"), Some("1.1 edgewise"));
    assert_eq!(seen.header("x-origin-secret"), Some("s3cret"));
    assert_eq!(seen.headers.get_all("x-origin-secret").iter().count(), 1);
    assert_eq!(seen.header("x-env"), Some("test"));
    assert_eq!(seen.header("host"), Some(origin.addr.to_string().as_str()));
    // Not forwarded by the behavior: the edge's own User-Agent, as CloudFront sends.
    assert_eq!(seen.header("user-agent"), Some("Amazon CloudFront"));

    cdn.get("/fwd").plain().send().await;
    let seen = origin.last("/fwd");
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));

    cdn.get("/fwd").h2().send().await;
    assert_eq!(origin.last("/fwd").header("via"), Some("2 edgewise"));
}

#[tokio::test]
async fn the_configured_origin_host_replaces_the_viewer_host() {
    let origin = Origin::start().await;
    origin.route("/h", Reply::ok("ok").cc("no-store"));
    let body = format!(
        r#"[[cdn.distributions]]
id = "site"
hosts = ["{SITE}"]
[[cdn.distributions.origins]]
id = "app"
url = "{}/base"
host = "app.internal"
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#,
        origin.url()
    );
    let cdn = Cdn::start(&config("", &body)).await;
    origin.route("/base/h", Reply::ok("prefixed").cc("no-store"));
    let response = cdn.get("/h").send().await;
    assert_eq!(response.text(), "prefixed");
    let seen = origin.last("/base/h");
    assert_eq!(seen.header("host"), Some("app.internal"));
    assert_eq!(seen.header("x-forwarded-host"), Some("site.test"));
}

#[tokio::test]
async fn hop_by_hop_headers_are_not_forwarded_in_either_direction() {
    let origin = Origin::start().await;
    origin.route(
        "/hop",
        Reply::ok("hop")
            .cc("no-store")
            .header("Connection", "X-Origin-Hop")
            .header("X-Origin-Hop", "1")
            .header("Keep-Alive", "timeout=5")
            .header("Proxy-Authenticate", "Basic")
            .header("X-End-To-End", "kept"),
    );
    // Both are forwarded by the behavior, but the viewer's Connection makes one hop-by-hop.
    let cdn = Cdn::site(
        &origin,
        r#"forward_headers = ["X-Viewer-E2E", "X-Viewer-Hop"]"#,
    )
    .await;
    let response = cdn
        .get("/hop")
        .header("connection", "X-Viewer-Hop")
        .header("x-viewer-hop", "1")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("upgrade", "websocket")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("x-viewer-e2e", "kept")
        .send()
        .await;
    assert_eq!(response.status, 200);
    let seen = origin.last("/hop");
    for name in [
        "connection",
        "x-viewer-hop",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-authorization",
    ] {
        assert_eq!(seen.header(name), None, "{name} reached the origin");
    }
    assert_eq!(seen.header("x-viewer-e2e"), Some("kept"));
    for name in [
        "connection",
        "x-origin-hop",
        "keep-alive",
        "proxy-authenticate",
    ] {
        assert_eq!(response.header(name), None, "{name} reached the viewer");
    }
    assert_eq!(response.header("x-end-to-end"), Some("kept"));
}

#[tokio::test]
async fn only_allowlisted_cookies_reach_the_origin() {
    let origin = Origin::start().await;
    origin.route("/c", Reply::ok("c").cc("no-store"));
    origin.route("/api/c", Reply::ok("c").cc("no-store"));
    let cdn = Cdn::behaviors(
        &origin,
        r#"[[cdn.distributions.behaviors]]
path = "/api/*"
origin = "app"
allowed_methods = ["GET", "HEAD", "POST"]
cache_key = { cookies = ["session", "lang"] }
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#,
    )
    .await;
    let cookies = "tracker=xyz; session=abc; lang=ko; other=1";
    cdn.get("/api/c").header("cookie", cookies).send().await;
    assert_eq!(
        origin.last("/api/c").header("cookie"),
        Some("lang=ko; session=abc")
    );
    cdn.request(Method::POST, "/api/c")
        .header("cookie", cookies)
        .send()
        .await;
    assert_eq!(
        origin.last("/api/c").header("cookie"),
        Some("lang=ko; session=abc")
    );
    cdn.get("/c").header("cookie", cookies).send().await;
    assert_eq!(origin.last("/c").header("cookie"), None);
}

#[tokio::test]
async fn query_strings_reach_the_origin_as_the_cache_key_selects_them() {
    let origin = Origin::start().await;
    origin.route("*", Reply::ok("q").cc("no-store"));
    let cdn = Cdn::behaviors(
        &origin,
        r#"[[cdn.distributions.behaviors]]
path = "/list/*"
origin = "app"
cache_key = { query_strings = ["w", "h"] }
[[cdn.distributions.behaviors]]
path = "/all/*"
origin = "app"
cache_key = { query_strings = "all" }
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#,
    )
    .await;
    cdn.get("/none/x?w=1&utm=mail").send().await;
    assert_eq!(origin.last("/none/x").uri, "/none/x");
    cdn.get("/list/x?w=1&utm=mail&h=2").send().await;
    assert_eq!(origin.last("/list/x").uri, "/list/x?h=2&w=1");
    cdn.get("/list/y?utm=mail").send().await;
    assert_eq!(origin.last("/list/y").uri, "/list/y");
    cdn.get("/all/x?b=2&a=1&c").send().await;
    assert_eq!(origin.last("/all/x").uri, "/all/x?a=1&b=2&c");
}

// ------------------------------------------------------------------ origin groups

/// `/api/*` (all methods) and `*` on group "ha" = [primary, backup].
async fn group_cdn(primary: &str, backup: &Origin) -> Cdn {
    let body = format!(
        r#"[[cdn.distributions]]
id = "site"
hosts = ["{SITE}"]
[[cdn.distributions.origins]]
id = "primary"
url = "{primary}"
connect_timeout = "1s"
[[cdn.distributions.origins]]
id = "backup"
url = "{}"
[[cdn.distributions.origin_groups]]
id = "ha"
members = ["primary", "backup"]
[[cdn.distributions.behaviors]]
path = "/api/*"
origin = "ha"
allowed_methods = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
[[cdn.distributions.behaviors]]
path = "*"
origin = "ha"
"#,
        backup.url()
    );
    Cdn::start(&config("", &body)).await
}

#[tokio::test]
async fn a_group_fails_over_to_the_backup_when_the_primary_is_down() {
    let backup = Origin::start().await;
    backup.route("/page", Reply::ok("from backup").cc("no-store"));
    let dead = dead_addr().await;
    let cdn = group_cdn(&format!("http://{dead}"), &backup).await;
    let response = cdn.get("/page").send().await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "from backup");
    assert_eq!(backup.hits("/page"), 1);
}

#[tokio::test]
async fn a_group_fails_over_on_503_and_every_request_tries_the_primary_first() {
    let (primary, backup) = (Origin::start().await, Origin::start().await);
    primary.route("/page", Reply::status(503, "primary down").cc("no-store"));
    backup.route("/page", Reply::ok("from backup").cc("no-store"));
    let cdn = group_cdn(&primary.url(), &backup).await;
    for round in 1..=2 {
        let response = cdn.get("/page").send().await;
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "from backup");
        assert_eq!(
            (primary.hits("/page"), backup.hits("/page")),
            (round, round)
        );
    }
    primary.route("/page", Reply::ok("primary is back").cc("no-store"));
    let response = cdn.get("/page").send().await;
    assert_eq!(response.text(), "primary is back");
    assert_eq!((primary.hits("/page"), backup.hits("/page")), (3, 2));
}

#[tokio::test]
async fn a_post_does_not_fail_over() {
    let (primary, backup) = (Origin::start().await, Origin::start().await);
    primary.route(
        "/api/order",
        Reply::status(503, "primary down").cc("no-store"),
    );
    backup.route("/api/order", Reply::ok("backup").cc("no-store"));
    let cdn = group_cdn(&primary.url(), &backup).await;
    let response = cdn
        .request(Method::POST, "/api/order")
        .body("order")
        .send()
        .await;
    assert_eq!(response.status, 503);
    assert_eq!(response.text(), "primary down");
    assert_eq!(&primary.last("/api/order").body[..], b"order");
    assert_eq!(backup.total(), 0);
}

#[tokio::test]
async fn an_unreachable_origin_without_a_group_gives_502() {
    let dead = dead_addr().await;
    let body = site(&format!("http://{dead}"), "");
    let cdn = Cdn::start(&config("", &body)).await;
    let response = cdn.get("/page").send().await;
    assert_eq!(response.status, 502);
    assert_eq!(response.x_cache(), ERROR);
    // The body names the origin, its address and the real cause.
    let text = response.text();
    assert!(text.contains(&format!("app (http://{dead}/)")), "{text}");
    assert!(text.contains("Connection refused"), "{text}");
}

// ------------------------------------------------------------------ folder origins

const HELLO: &str = "Hello from a folder origin.\n";

async fn folder_cdn() -> Cdn {
    let toml = config(
        "",
        &format!(
            r#"[[cdn.distributions]]
id = "files"
hosts = ["{SITE}"]
[[cdn.distributions.origins]]
id = "www"
dir = "www"
[[cdn.distributions.behaviors]]
path = "*"
origin = "www"
"#
        ),
    );
    Cdn::start_with(
        &toml,
        &[
            ("www/hello.txt", HELLO.as_bytes()),
            ("www/sub/index.html", b"<p>index</p>"),
            ("secret.txt", b"outside the root"),
        ],
    )
    .await
}

#[tokio::test]
async fn a_folder_origin_serves_files_through_the_cdn() {
    let cdn = folder_cdn().await;
    let first = cdn.get("/hello.txt").send().await;
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), HELLO);
    assert_eq!(
        first.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(first.x_cache(), MISS);
    assert!(first.header("etag").is_some());
    assert_eq!(cdn.get("/hello.txt").send().await.x_cache(), HIT);
    let index = cdn.get("/sub/").send().await;
    assert_eq!((index.status, index.text().as_str()), (200, "<p>index</p>"));
    assert_eq!(cdn.get("/missing.txt").send().await.status, 404);
}

#[tokio::test]
async fn a_folder_origin_refuses_path_traversal() {
    let cdn = folder_cdn().await;
    for path in [
        "/%2e%2e/secret.txt",
        "/%2E%2E/edgewise.toml",
        "/sub/..%2f..%2fsecret.txt",
        "/../secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
    ] {
        let response = cdn.get(path).send().await;
        assert_eq!(response.status, 400, "{path}");
        assert!(!response.text().contains("outside the root"), "{path}");
    }
}

#[tokio::test]
async fn a_folder_origin_serves_ranges_through_the_cdn() {
    let cdn = folder_cdn().await;
    let part = cdn
        .get("/hello.txt")
        .header("range", "bytes=0-4")
        .send()
        .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.text(), "Hello");
    let len = HELLO.len();
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 0-4/{len}").as_str())
    );
    let tail = cdn
        .get("/hello.txt")
        .header("range", "bytes=-8")
        .send()
        .await;
    assert_eq!((tail.status, tail.text().as_str()), (206, "origin.\n"));
    assert_eq!(tail.x_cache(), HIT);
}
