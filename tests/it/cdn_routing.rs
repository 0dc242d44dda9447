//! CDN routing: viewer protocol on the HTTP listener, Host → distribution, path → behavior
//! (first match wins), allowed methods and what unsafe methods do to the cache.

use http::Method;

use crate::cdn_harness::*;

/// Distribution "site" with `viewer_protocol` and behaviors `/open/*` (allow-all) and `*`.
async fn protocol_cdn(origin: &Origin, viewer_protocol: &str) -> Cdn {
    let body = format!(
        r#"[[cdn.distributions]]
id = "site"
hosts = ["{SITE}"]
viewer_protocol = "{viewer_protocol}"
[[cdn.distributions.origins]]
id = "app"
url = "{}"
[[cdn.distributions.behaviors]]
path = "/open/*"
origin = "app"
viewer_protocol = "allow-all"
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#,
        origin.url()
    );
    Cdn::start(&config("", &body)).await
}

#[tokio::test]
async fn allow_all_serves_over_plain_http() {
    let origin = Origin::start().await;
    origin.route("/page", Reply::ok("plain page").cc("max-age=60"));
    let cdn = protocol_cdn(&origin, "allow-all").await;
    let response = cdn.get("/page").plain().send().await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "plain page");
    assert_eq!(
        origin.last("/page").header("x-forwarded-proto"),
        Some("http")
    );
}

#[tokio::test]
async fn redirect_to_https_answers_301_to_the_same_host_path_and_query() {
    let origin = Origin::start().await;
    origin.route("/a/b", Reply::ok("secure").cc("max-age=60"));
    let cdn = protocol_cdn(&origin, "redirect-to-https").await;
    let response = cdn
        .get("/a/b?x=1&y=two")
        .plain()
        .host("Site.Test:8080")
        .send()
        .await;
    assert_eq!(response.status, 301);
    assert_eq!(
        response.header("location"),
        Some(format!("https://site.test:{}/a/b?x=1&y=two", cdn.https_port()).as_str())
    );
    assert_eq!(origin.total(), 0);
    // Over HTTPS the same request is served.
    let secure = cdn.get("/a/b?x=1&y=two").send().await;
    assert_eq!(secure.status, 200);
    assert_eq!(secure.text(), "secure");
}

#[tokio::test]
async fn https_only_refuses_plain_http_with_403() {
    let origin = Origin::start().await;
    origin.route("/page", Reply::ok("secret").cc("max-age=60"));
    let cdn = protocol_cdn(&origin, "https-only").await;
    let response = cdn.get("/page").plain().send().await;
    assert_eq!(response.status, 403);
    assert_eq!(response.x_cache(), ERROR);
    assert_eq!(origin.total(), 0);
}

#[tokio::test]
async fn a_behavior_viewer_protocol_overrides_the_distribution() {
    let origin = Origin::start().await;
    origin.route("/open/x", Reply::ok("open").cc("max-age=60"));
    origin.route("/closed", Reply::ok("closed").cc("max-age=60"));
    let cdn = protocol_cdn(&origin, "https-only").await;
    let open = cdn.get("/open/x").plain().send().await;
    assert_eq!(open.status, 200);
    assert_eq!(open.text(), "open");
    assert_eq!(cdn.get("/closed").plain().send().await.status, 403);
    assert_eq!(origin.hits("/closed"), 0);
}

/// Two distributions on two origins: "one" (one.test, localhost) and "two" (Two.Test).
async fn two_distributions(one: &Origin, two: &Origin) -> Cdn {
    let dist = |id: &str, hosts: &str, url: String| {
        format!(
            r#"[[cdn.distributions]]
id = "{id}"
hosts = [{hosts}]
[[cdn.distributions.origins]]
id = "app"
url = "{url}"
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#
        )
    };
    let body = dist("one", r#""one.test", "localhost""#, one.url())
        + &dist("two", r#""Two.Test""#, two.url());
    Cdn::start(&config("", &body)).await
}

#[tokio::test]
async fn the_host_header_selects_the_distribution_ignoring_port_and_case() {
    let (one, two) = (Origin::start().await, Origin::start().await);
    one.route("/", Reply::ok("one").cc("max-age=60"));
    two.route("/", Reply::ok("two").cc("max-age=60"));
    let cdn = two_distributions(&one, &two).await;
    assert_eq!(cdn.get("/").host("one.test").send().await.text(), "one");
    assert_eq!(
        cdn.get("/").host("TWO.test:1234").send().await.text(),
        "two"
    );
    assert_eq!(cdn.get("/").host("two.test.").send().await.text(), "two");
    assert_eq!(
        cdn.get("/").host("two.test").h2().send().await.text(),
        "two"
    );
    assert_eq!(
        cdn.get("/").host("ONE.TEST:9").plain().send().await.text(),
        "one"
    );
    assert_eq!((one.hits("/"), two.hits("/")), (1, 1));
    // Distributions have separate caches: the same path is cached once per distribution.
    assert_eq!(cdn.get("/").host("two.test").send().await.x_cache(), HIT);
}

#[tokio::test]
async fn an_unknown_host_gets_421_over_tls_and_404_over_http() {
    let (one, two) = (Origin::start().await, Origin::start().await);
    let cdn = two_distributions(&one, &two).await;
    let tls = cdn.get("/").host("unknown.test").send().await;
    assert_eq!(tls.status, 421);
    assert_eq!(tls.text(), "no distribution serves host \"unknown.test\"\n");
    let tls2 = cdn.get("/").host("unknown.test").h2().send().await;
    assert_eq!(tls2.status, 421);
    let plain = cdn.get("/").host("unknown.test:80").plain().send().await;
    assert_eq!(plain.status, 404);
    assert_eq!(
        plain.text(),
        "no distribution serves host \"unknown.test\"\n"
    );
    assert_eq!(one.total() + two.total(), 0);
}

/// Behaviors in order: `/img/*.png` → a, `/img/*` → b, `/v?/x` → a, `*` → b.
async fn behaviors_cdn(a: &Origin, b: &Origin) -> Cdn {
    let body = format!(
        r#"[[cdn.distributions]]
id = "site"
hosts = ["{SITE}"]
[[cdn.distributions.origins]]
id = "a"
url = "{}"
[[cdn.distributions.origins]]
id = "b"
url = "{}"
[[cdn.distributions.behaviors]]
path = "/img/*.png"
origin = "a"
[[cdn.distributions.behaviors]]
path = "/img/*"
origin = "b"
[[cdn.distributions.behaviors]]
path = "/v?/x"
origin = "a"
[[cdn.distributions.behaviors]]
path = "*"
origin = "b"
"#,
        a.url(),
        b.url()
    );
    Cdn::start(&config("", &body)).await
}

#[tokio::test]
async fn the_first_matching_behavior_wins_with_case_sensitive_globs() {
    let (a, b) = (Origin::start().await, Origin::start().await);
    a.route("*", Reply::ok("a").cc("no-store"));
    b.route("*", Reply::ok("b").cc("no-store"));
    let cdn = behaviors_cdn(&a, &b).await;
    for (path, want) in [
        ("/img/cat.png", "a"),
        ("/img/2024/deep/cat.png", "a"),
        ("/img/cat.PNG", "b"),
        ("/IMG/cat.png", "b"),
        ("/img/cat.jpg", "b"),
        ("/v1/x", "a"),
        ("/v10/x", "b"),
        ("/v/x", "b"),
        ("/other", "b"),
    ] {
        let response = cdn.get(path).send().await;
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.text(), want, "{path} should go to origin {want}");
    }
    assert_eq!((a.total(), b.total()), (3, 6));
}

/// `/api/*` accepts every method; `*` only GET and HEAD.
async fn methods_cdn(origin: &Origin) -> Cdn {
    Cdn::behaviors(
        origin,
        r#"[[cdn.distributions.behaviors]]
path = "/api/*"
origin = "app"
allowed_methods = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#,
    )
    .await
}

#[tokio::test]
async fn a_method_the_behavior_does_not_allow_gets_403_without_reaching_the_origin() {
    let origin = Origin::start().await;
    origin.route("/page", Reply::ok("page").cc("max-age=60"));
    let cdn = methods_cdn(&origin).await;
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
        let response = cdn.request(method.clone(), "/page").body("x").send().await;
        assert_eq!(response.status, 403, "{method}");
        assert_eq!(response.x_cache(), ERROR);
    }
    assert_eq!(origin.total(), 0);
}

#[tokio::test]
async fn post_reaches_the_origin_with_its_body_and_is_never_cached() {
    let origin = Origin::start().await;
    origin.route_fn("/api/echo", |seen| {
        Reply::ok(format!(
            "{} got {}",
            seen.method,
            String::from_utf8_lossy(&seen.body)
        ))
        .cc("max-age=60")
    });
    let cdn = methods_cdn(&origin).await;
    for round in 1..=2 {
        let response = cdn
            .request(Method::POST, "/api/echo")
            .header("content-type", "text/plain")
            .body(format!("payload {round}"))
            .send()
            .await;
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), format!("POST got payload {round}"));
        assert_eq!(response.x_cache(), MISS);
    }
    let h2 = cdn
        .request(Method::PUT, "/api/echo")
        .body("over h2")
        .h2()
        .send()
        .await;
    assert_eq!(h2.text(), "PUT got over h2");
    assert_eq!(origin.hits("/api/echo"), 3);
    let seen = origin.last("/api/echo");
    assert_eq!(seen.method, Method::PUT);
    assert_eq!(&seen.body[..], b"over h2");
    // A GET after the POSTs is a miss of its own: the POST answers were not stored.
    assert_eq!(cdn.get("/api/echo").send().await.text(), "GET got ");
    assert_eq!(origin.hits("/api/echo"), 4);
}

#[tokio::test]
async fn a_successful_post_invalidates_the_cached_get_of_its_path() {
    let origin = Origin::start().await;
    origin.route_fn("/api/item", |seen| match seen.method {
        Method::POST => Reply::status(201, "created").cc("no-store"),
        _ => Reply::ok("item").cc("max-age=600"),
    });
    let cdn = methods_cdn(&origin).await;
    assert_eq!(cdn.get("/api/item").send().await.x_cache(), MISS);
    assert_eq!(cdn.get("/api/item").send().await.x_cache(), HIT);
    let post = cdn
        .request(Method::POST, "/api/item")
        .body("new")
        .send()
        .await;
    assert_eq!(post.status, 201);
    let after = cdn.get("/api/item").send().await;
    assert_eq!(
        after.x_cache(),
        MISS,
        "the POST should have invalidated the GET"
    );
    assert_eq!(after.text(), "item");
    let gets = origin.seen("/api/item");
    let methods: Vec<&str> = gets.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(methods, ["GET", "POST", "GET"]);
}
