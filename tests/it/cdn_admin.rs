//! CDN admin API (invalidations, metrics) and graceful shutdown.

use std::time::Duration;

use http::Method;

use crate::cdn_harness::*;
use crate::dns_limits::connect_from;

async fn cached_site() -> (Origin, Cdn) {
    let origin = Origin::start().await;
    origin.route("*", Reply::ok("cached").cc("max-age=600"));
    let cdn = Cdn::site(&origin, "").await;
    for path in ["/a", "/dir/b", "/dir/c", "/other"] {
        assert_eq!(cdn.get(path).send().await.x_cache(), MISS, "{path}");
        assert_eq!(cdn.get(path).send().await.x_cache(), HIT, "{path}");
    }
    (origin, cdn)
}

#[tokio::test]
async fn the_admin_api_refuses_a_missing_or_wrong_token() {
    let (_origin, cdn) = cached_site().await;
    let body = r#"{"distribution": "site", "paths": ["/a"]}"#;
    for token in [None, Some("wrong-token-123"), Some("test-admin-tokenX")] {
        let response = cdn.admin(Method::POST, "/invalidations", token, body).await;
        assert_eq!(response.status, 401, "{token:?}");
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
    }
    // Metrics, and only metrics, are readable from loopback without the token (the rule of
    // every listener: the DNS status listener and the stream API read alike).
    let metrics = cdn.admin(Method::GET, "/metrics", None, "").await;
    assert_eq!(metrics.status, 200);
    let metrics = cdn
        .admin(Method::GET, "/metrics", Some("wrong-token-123"), "")
        .await;
    assert_eq!(
        metrics.status, 200,
        "a wrong token does not matter from loopback"
    );
    // Nothing was invalidated.
    assert_eq!(cdn.get("/a").send().await.x_cache(), HIT);
}

#[tokio::test]
async fn a_second_authorization_header_is_refused_even_behind_the_right_one() {
    let (_origin, cdn) = cached_site().await;
    let admin = cdn.admin.unwrap();
    let body = r#"{"distribution": "site", "paths": ["/a"]}"#;
    for (first, second) in [
        (ADMIN_TOKEN, "wrong-token-123"),
        ("wrong-token-123", ADMIN_TOKEN),
        (ADMIN_TOKEN, ADMIN_TOKEN),
    ] {
        let request = format!(
            "POST /invalidations HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {first}\r\n\
             Authorization: Bearer {second}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let (answer, _) = raw_exchange(admin, request.as_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 401"),
            "{first} then {second}: {answer}"
        );
    }
    assert_eq!(
        cdn.get("/a").send().await.x_cache(),
        HIT,
        "nothing was invalidated"
    );
}

#[tokio::test]
async fn invalidation_paths_are_canonical_like_request_paths() {
    let (origin, cdn) = cached_site().await;
    // Cached as /dir/b; spelled another way, it is still that object.
    let response = cdn.invalidate("site", &["/%64ir//./b"]).await;
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(json["invalidated"], 1, "{json}");
    assert_eq!(cdn.get("/dir/b").send().await.x_cache(), MISS);
    assert_eq!(origin.hits("/dir/b"), 2);
    let bad = cdn.invalidate("site", &["/a%2fb"]).await;
    assert_eq!(bad.status, 400, "{}", bad.text());
}

#[tokio::test]
async fn idle_admin_sockets_never_keep_an_operator_out() {
    let (_origin, cdn) = cached_site().await;
    let admin = cdn.admin.unwrap();
    // More idle connections than the listener's 64 slots, from 70 clients.
    let mut idle = Vec::new();
    for i in 1..=70 {
        idle.push(connect_from(std::net::Ipv4Addr::new(127, 0, 1, i), admin).await);
    }
    // The longest-idle ones make room: the operator is answered at once.
    let started = std::time::Instant::now();
    let metrics = cdn
        .admin(Method::GET, "/metrics", Some(ADMIN_TOKEN), "")
        .await;
    assert_eq!(metrics.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn invalidating_an_exact_path_makes_the_next_request_a_miss() {
    let (origin, cdn) = cached_site().await;
    let response = cdn.invalidate("site", &["/a"]).await;
    assert_eq!(response.status, 201, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert!(
        json["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{json}"
    );
    assert_eq!(json["invalidated"], 1, "{json}");
    assert_eq!(cdn.get("/a").send().await.x_cache(), MISS);
    assert_eq!(cdn.get("/dir/b").send().await.x_cache(), HIT);
    assert_eq!(origin.hits("/a"), 2);
}

#[tokio::test]
async fn invalidating_a_trailing_star_removes_every_path_under_the_prefix() {
    let (origin, cdn) = cached_site().await;
    let response = cdn.invalidate("site", &["/dir/*"]).await;
    assert_eq!(response.status, 201, "{}", response.text());
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(json["invalidated"], 2, "{json}");
    assert_eq!(cdn.get("/dir/b").send().await.x_cache(), MISS);
    assert_eq!(cdn.get("/dir/c").send().await.x_cache(), MISS);
    assert_eq!(cdn.get("/a").send().await.x_cache(), HIT);
    assert_eq!(cdn.get("/other").send().await.x_cache(), HIT);
    assert_eq!((origin.hits("/dir/b"), origin.hits("/a")), (2, 1));
    // Two invalidations get two different ids.
    let again = cdn.invalidate("site", &["/*"]).await;
    let first: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    let second: serde_json::Value = serde_json::from_slice(&again.body).unwrap();
    assert_ne!(first["id"], second["id"]);
    assert_eq!(cdn.get("/a").send().await.x_cache(), MISS);
}

#[tokio::test]
async fn the_admin_api_rejects_bad_requests() {
    let (_origin, cdn) = cached_site().await;
    let post =
        |body: &'static str| cdn.admin(Method::POST, "/invalidations", Some(ADMIN_TOKEN), body);
    for body in [
        "not json",
        r#"{"distribution": "site"}"#,
        r#"{"distribution": "site", "paths": []}"#,
        r#"{"distribution": "site", "paths": ["no-slash"]}"#,
        r#"{"distribution": "site", "paths": ["/a*b"]}"#,
    ] {
        let response = post(body).await;
        assert_eq!(response.status, 400, "{body}: {}", response.text());
    }
    let unknown = post(r#"{"distribution": "nope", "paths": ["/a"]}"#).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    let elsewhere = cdn
        .admin(Method::GET, "/elsewhere", Some(ADMIN_TOKEN), "")
        .await;
    assert_eq!(elsewhere.status, 404);
    assert_eq!(cdn.get("/a").send().await.x_cache(), HIT);
}

#[tokio::test]
async fn metrics_count_requests_by_result_and_show_the_cache() {
    let (_origin, cdn) = cached_site().await;
    assert_eq!(cdn.get("/x").host("nobody.test").send().await.status, 421);
    let response = cdn
        .admin(Method::GET, "/metrics", Some(ADMIN_TOKEN), "")
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = response.text();
    for line in [
        "# TYPE edgewise_cdn_requests_total counter",
        "edgewise_cdn_requests_total{distribution=\"site\",status_class=\"2xx\",result=\"Hit\"} 4",
        "edgewise_cdn_requests_total{distribution=\"site\",status_class=\"2xx\",result=\"Miss\"} 4",
        "edgewise_cdn_requests_total{distribution=\"\",status_class=\"4xx\",result=\"Error\"} 1",
        "# TYPE edgewise_cdn_cache_objects gauge",
        "# TYPE edgewise_cdn_cache_bytes gauge",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    for gauge in ["edgewise_cdn_cache_objects ", "edgewise_cdn_cache_bytes "] {
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(gauge))
            .unwrap_or_else(|| panic!("no {gauge} in:\n{text}"));
        value
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{gauge}{value}"));
    }
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let origin = Origin::start().await;
    origin.route(
        "/slow",
        Reply::ok("finished").cc("max-age=60").delay_ms(1_000),
    );
    let mut cdn = Cdn::site(&origin, "").await;
    let https = cdn.https.unwrap();
    let token = cdn.token.clone();
    let handle = cdn.handle.take().unwrap();
    let in_flight = {
        let request = cdn.get("/slow");
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        // The request borrows the CDN; run it here while shutdown proceeds in a task.
        let shutdown = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            token.cancel();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let running_mid_request = !handle.is_finished();
            let _ = done_rx.await;
            tokio::time::timeout(TIMEOUT, handle)
                .await
                .expect("run() returns after the drain")
                .expect("run() does not panic");
            running_mid_request
        });
        let response = request.send().await;
        let _ = done_tx.send(());
        (response, shutdown.await.unwrap())
    };
    let (response, running_mid_request) = in_flight;
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "finished")
    );
    assert!(
        running_mid_request,
        "run() returned while a request was still in flight (no graceful drain)"
    );
    // After shutdown nothing listens any more.
    let refused = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(https)).await;
    assert!(
        matches!(refused, Ok(Err(_))),
        "the HTTPS listener is closed"
    );
}
