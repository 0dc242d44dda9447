//! RFC 9213 targeted cache control through the running CDN: `CDN-Cache-Control` (and a
//! field named in `targeted_cache_control`) rules the cache over `Cache-Control` and is not
//! passed on; and RFC 9111 details the cache-tests.fyi suite checks: only `Age`'s first
//! value counts, a `no-cache` response is never served stale, `must-understand`, what a
//! successful POST's `Location` and `Content-Location` invalidate, and an origin's 103
//! Early Hints neither answering nor cached.

use crate::cdn_harness::*;

#[tokio::test]
async fn cdn_cache_control_rules_the_cache_and_stays_with_us() {
    let origin = Origin::start().await;
    origin.route(
        "/cdn-long",
        Reply::ok("long")
            .cc("no-store")
            .header("CDN-Cache-Control", "max-age=60"),
    );
    origin.route(
        "/cdn-no-store",
        Reply::ok("kept out")
            .cc("max-age=600")
            .header("CDN-Cache-Control", "no-store"),
    );
    origin.route(
        "/cdn-broken",
        Reply::ok("broken")
            .cc("no-store")
            .header("CDN-Cache-Control", "max-age=\"60\""),
    );
    let cdn = Cdn::site(&origin, "").await;
    for path in ["/cdn-long", "/cdn-no-store", "/cdn-broken"] {
        let first = cdn.get(path).send().await;
        assert_eq!((first.status, first.x_cache()), (200, MISS), "{path}");
        assert_eq!(
            first.header("cdn-cache-control"),
            None,
            "{path}: not passed on"
        );
    }
    let hit = cdn.get("/cdn-long").h2().send().await;
    assert_eq!((hit.x_cache(), hit.text().as_str()), (HIT, "long"));
    // Cache-Control is the browser's, and reaches it unchanged.
    assert_eq!(hit.header("cache-control"), Some("no-store"));
    assert_eq!(hit.header("cdn-cache-control"), None);
    assert_eq!(cdn.get("/cdn-no-store").send().await.x_cache(), MISS);
    // Not a valid Structured Field: ignored, and Cache-Control's no-store applies.
    assert_eq!(cdn.get("/cdn-broken").send().await.x_cache(), MISS);
    assert_eq!(
        (
            origin.hits("/cdn-long"),
            origin.hits("/cdn-no-store"),
            origin.hits("/cdn-broken")
        ),
        (1, 2, 2)
    );
}

#[tokio::test]
async fn a_field_of_our_own_comes_before_cdn_cache_control() {
    let origin = Origin::start().await;
    origin.route(
        "/ours",
        Reply::ok("ours")
            .header("Edgewise-Cache-Control", "max-age=60")
            .header("CDN-Cache-Control", "no-store"),
    );
    let toml = config(
        r#"targeted_cache_control = "Edgewise-Cache-Control""#,
        &site(&origin.url(), ""),
    );
    let cdn = Cdn::start(&toml).await;
    let first = cdn.get("/ours").send().await;
    assert_eq!(first.x_cache(), MISS);
    assert_eq!(first.header("edgewise-cache-control"), None);
    assert_eq!(first.header("cdn-cache-control"), None);
    assert_eq!(cdn.get("/ours").send().await.x_cache(), HIT);
    assert_eq!(origin.hits("/ours"), 1);
}

#[tokio::test]
async fn a_targeted_field_name_with_a_meaning_of_its_own_is_refused() {
    let toml = config(
        r#"targeted_cache_control = "Cache-Control""#,
        &site("http://127.0.0.1:9", ""),
    );
    let (code, stderr) = check_config(&toml, &[]).await;
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("cdn.targeted_cache_control") && stderr.contains("meaning of its own"),
        "{stderr}"
    );
}

#[tokio::test]
async fn only_the_first_age_value_counts() {
    let origin = Origin::start().await;
    origin.route(
        "/old-then-0",
        Reply::ok("old").cc("max-age=3600").header("Age", "7200, 0"),
    );
    origin.route(
        "/0-then-old",
        Reply::ok("new").cc("max-age=3600").header("Age", "0, 7200"),
    );
    let cdn = Cdn::site(&origin, "").await;
    for _ in 0..2 {
        cdn.get("/old-then-0").send().await;
        cdn.get("/0-then-old").send().await;
    }
    assert_eq!(
        (origin.hits("/old-then-0"), origin.hits("/0-then-old")),
        (2, 1)
    );
}

#[tokio::test]
async fn a_no_cache_response_is_not_served_stale_when_the_origin_is_down() {
    let origin = Origin::start().await;
    origin.route("/nc", Reply::ok("must check").cc("max-age=1, no-cache"));
    origin.route("/plain", Reply::ok("may go stale").cc("max-age=1"));
    let cdn = Cdn::site(&origin, "").await;
    cdn.get("/nc").send().await;
    cdn.get("/plain").send().await;
    origin.stop();
    expire(1).await;
    let plain = cdn.get("/plain").send().await;
    assert_eq!((plain.status, plain.text().as_str()), (200, "may go stale"));
    let checked = cdn.get("/nc").send().await;
    assert!(
        checked.status >= 500,
        "{} {}",
        checked.status,
        checked.text()
    );
    assert_ne!(checked.text(), "must check");
}

#[tokio::test]
async fn a_post_invalidates_what_its_location_and_content_location_name_on_this_host() {
    let origin = Origin::start().await;
    for path in ["/items/7", "/items/8", "/elsewhere"] {
        origin.route(path, Reply::ok(path).cc("max-age=600"));
    }
    origin.route(
        "/items",
        Reply::status(201, "created")
            .header("Location", "/items/7")
            .header("Content-Location", "items/8")
            .cc("no-store"),
    );
    let behavior =
        r#"allowed_methods = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]"#;
    let cdn = Cdn::site(&origin, behavior).await;
    for path in ["/items/7", "/items/8", "/elsewhere"] {
        cdn.get(path).send().await;
        assert_eq!(cdn.get(path).send().await.x_cache(), HIT, "{path}");
    }
    let posted = cdn
        .request(http::Method::POST, "/items")
        .body("new")
        .send()
        .await;
    assert_eq!(posted.status, 201);
    assert_eq!(cdn.get("/items/7").send().await.x_cache(), MISS);
    assert_eq!(cdn.get("/items/8").send().await.x_cache(), MISS);
    assert_eq!(cdn.get("/elsewhere").send().await.x_cache(), HIT);
}

#[tokio::test]
async fn must_understand_keeps_unknown_statuses_out_and_overrides_no_store_for_known_ones() {
    let origin = Origin::start().await;
    let cc = "max-age=600, no-store, must-understand";
    origin.route("/known", Reply::ok("known").cc(cc));
    origin.route(
        "/unknown",
        Reply::status(299, "unknown").cc("max-age=600, must-understand"),
    );
    let cdn = Cdn::site(&origin, "").await;
    for _ in 0..2 {
        cdn.get("/known").send().await;
        cdn.get("/unknown").send().await;
    }
    assert_eq!((origin.hits("/known"), origin.hits("/unknown")), (1, 2));
}

/// An HTTP/1.1 origin that answers every request with a 103 Early Hints, then `final_head`
/// and `body`; counts the requests.
pub(crate) async fn early_hints_origin(
    final_head: &'static str,
    body: &'static str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let mut read = 0;
                loop {
                    match stream.read(&mut buffer[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                    if !buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                        continue;
                    }
                    seen.fetch_add(1, Ordering::SeqCst);
                    let reply = format!(
                        "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n\
                         {final_head}\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                    read = 0;
                }
            });
        }
    });
    (url, count)
}

#[tokio::test]
async fn an_interim_103_is_not_the_answer_and_never_cached() {
    let head = "HTTP/1.1 200 OK\r\nCache-Control: max-age=600";
    let (url, requests) = early_hints_origin(head, "final body").await;
    let cdn = Cdn::start(&config("", &site(&url, ""))).await;
    let first = cdn.get("/hinted").send().await;
    assert_eq!((first.status, first.text().as_str()), (200, "final body"));
    assert_eq!(first.x_cache(), MISS);
    let second = cdn.get("/hinted").h2().send().await;
    assert_eq!((second.status, second.x_cache()), (200, HIT));
    assert_eq!(second.text(), "final body");
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origins_103_early_hints_reach_http2_viewers_before_the_response() {
    let head = "HTTP/1.1 200 OK\r\nCache-Control: max-age=600";
    let (url, requests) = early_hints_origin(head, "final body").await;
    let cdn = Cdn::start(&config("", &site(&url, ""))).await;
    // h2's own client, which reports each interim response.
    let tls = cdn.tls(SITE, &[b"h2"]).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(format!("https://{SITE}/hinted"))
        .body(())
        .unwrap();
    let (mut response, _) = client.send_request(request, true).unwrap();
    let interim = std::future::poll_fn(|cx| response.poll_informational(cx))
        .await
        .expect("an interim response before the final one")
        .unwrap();
    assert_eq!(interim.status(), 103);
    assert_eq!(interim.headers()["link"], "</style.css>; rel=preload");
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("date"), "{response:?}");
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        bytes.extend_from_slice(&chunk);
    }
    assert_eq!(bytes, b"final body");

    // curl shows both header blocks, the 103 first; then a hit with none.
    let (port, ca) = (cdn.https_port(), cdn.dir.path().join("certs/cert.pem"));
    let curl = |path| curl_site(port, &ca, path, &["--http2"]);
    let miss = curl("/curl").await;
    let blocks: Vec<&str> = miss.split("\r\n\r\n").collect();
    assert!(blocks[0].starts_with("HTTP/2 103"), "{miss}");
    assert!(
        blocks[0].contains("link: </style.css>; rel=preload"),
        "{miss}"
    );
    assert!(blocks[1].starts_with("HTTP/2 200"), "{miss}");
    assert!(blocks[1].contains(&format!("x-cache: {MISS}")), "{miss}");
    assert_eq!(blocks[2], "final body");
    let hit = curl("/curl").await;
    assert!(hit.starts_with("HTTP/2 200"), "{hit}");
    assert!(hit.contains(&format!("x-cache: {HIT}")), "{hit}");
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 2);
}
