//! CDN hot reload through the admin API: requests keep flowing across many reloads and each
//! is answered wholly by one config; a broken config or an address that cannot be bound is
//! refused with its reasons while the old config keeps serving; moved listeners drain;
//! cached objects survive unless their distribution goes; certificates are re-read from
//! disk; reloads racing shutdown never hang it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::Method;

use crate::cdn_harness::*;

/// "site" with `/v/*` sent to origin `v_origin` and everything else to "app" (`shared`);
/// `extra` adds whole distributions.
fn versioned(shared: &Origin, v_origin: &Origin, extra: &str) -> String {
    config(
        "",
        &format!(
            r#"[[cdn.distributions]]
id = "site"
hosts = ["{SITE}", "localhost"]
[[cdn.distributions.origins]]
id = "app"
url = "{}"
[[cdn.distributions.origins]]
id = "v"
url = "{}"
[[cdn.distributions.behaviors]]
path = "/v/*"
origin = "v"
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
{extra}"#,
            shared.url(),
            v_origin.url()
        ),
    )
}

/// Two origins answering "A" and "B" for `/v/*` (never cached), and a shared one.
async fn origins() -> (Origin, Origin, Origin) {
    let (a, b, shared) = (
        Origin::start().await,
        Origin::start().await,
        Origin::start().await,
    );
    a.route("*", Reply::ok("A").cc("no-store"));
    b.route("*", Reply::ok("B").cc("no-store"));
    shared.route("*", Reply::ok("cached").cc("max-age=600"));
    (a, b, shared)
}

fn summary(response: &Resp) -> serde_json::Value {
    assert_eq!(response.status, 200, "{}", response.text());
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(json["reloaded"], true, "{json}");
    json["changes"].clone()
}

#[tokio::test]
async fn requests_flow_across_twenty_reloads_each_answered_by_one_config() {
    let (a, b, shared) = origins().await;
    let (config_a, config_b) = (versioned(&shared, &a, ""), versioned(&shared, &b, ""));
    let cdn = Arc::new(Cdn::start(&config_a).await);
    let stop = Arc::new(AtomicBool::new(false));
    let mut loops = tokio::task::JoinSet::new();
    for proto in [Proto::H1, Proto::H2, Proto::Plain] {
        let (cdn, stop) = (cdn.clone(), stop.clone());
        loops.spawn(async move {
            let mut answers = Vec::new();
            for _ in 0..5_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let response = cdn.get("/v/x").proto(proto).try_send().await;
                answers.push(response.map(|r| (r.status, r.text())));
            }
            answers
        });
    }
    for round in 0..20 {
        let (toml, want) = if round % 2 == 0 {
            (&config_b, "B")
        } else {
            (&config_a, "A")
        };
        let changes = summary(&cdn.reload(toml).await);
        assert_eq!(changes["changed"], serde_json::json!(["site"]), "{changes}");
        // The first request after the reload is answered by the new config.
        assert_eq!(cdn.get("/v/x").send().await.text(), want, "round {round}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen = 0;
    while let Some(answers) = loops.join_next().await {
        for answer in answers.unwrap() {
            let (status, body) = answer.expect("no request fails across reloads");
            assert_eq!(status, 200);
            assert!(body == "A" || body == "B", "a mixed answer: {body:?}");
            seen += 1;
        }
    }
    assert!(seen >= 60, "the request loops ran ({seen} requests)");
}

#[tokio::test]
async fn two_reloads_at_once_both_apply_one_after_the_other() {
    let (a, b, shared) = origins().await;
    let cdn = Cdn::start(&versioned(&shared, &a, "")).await;
    std::fs::write(
        cdn.dir.path().join("edgewise.toml"),
        versioned(&shared, &b, ""),
    )
    .unwrap();
    let (first, second) = tokio::join!(
        cdn.admin(Method::POST, "/reload", Some(ADMIN_TOKEN), ""),
        cdn.admin(Method::POST, "/reload", Some(ADMIN_TOKEN), ""),
    );
    let changed: Vec<serde_json::Value> = [&first, &second]
        .iter()
        .map(|response| summary(response)["changed"].clone())
        .collect();
    // One of them found "site" changed, the other (after it) nothing left to change.
    assert!(
        changed.contains(&serde_json::json!(["site"])) && changed.contains(&serde_json::json!([])),
        "{changed:?}"
    );
    assert_eq!(cdn.get("/v/x").send().await.text(), "B");
}

#[tokio::test]
async fn a_broken_config_is_refused_with_the_check_errors_and_changes_nothing() {
    let (a, b, shared) = origins().await;
    let cdn = Cdn::start(&versioned(&shared, &a, "")).await;
    let broken = versioned(&shared, &b, "")
        .replace(r#"path = "/v/*""#, r#"path = "/v/* bad""#)
        .replace(r#"origin = "app""#, r#"origin = "nowhere""#);
    let response = cdn.reload(&broken).await;
    assert_eq!(response.status, 400, "{}", response.text());
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(json["reloaded"], false);
    let errors: Vec<String> = json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    assert_eq!(errors.len(), 2, "both mistakes, in one answer: {errors:#?}");
    assert!(
        errors.iter().any(|e| e.contains("behaviors[0].path")),
        "{errors:#?}"
    );
    assert!(errors.iter().any(|e| e.contains("nowhere")), "{errors:#?}");
    assert!(
        errors.iter().all(|e| e.contains("edgewise.toml:")),
        "{errors:#?}"
    );
    assert_eq!(
        cdn.get("/v/x").send().await.text(),
        "A",
        "the old config serves"
    );
}

#[tokio::test]
async fn a_moved_listener_is_bound_and_the_old_one_drains_its_requests() {
    let (a, b, shared) = origins().await;
    a.route("/v/slow", Reply::ok("slow A").cc("no-store").delay_ms(800));
    let cdn = Cdn::start(&versioned(&shared, &a, "")).await;
    let old = cdn.http.expect("an HTTP listener");
    let in_flight = cdn.get("/v/slow").plain().send();
    let moved = versioned(&shared, &b, "").replace(
        r#"http_listen = ["127.0.0.1:0"]"#,
        r#"http_listen = ["127.0.0.2:0"]"#,
    );
    let (answer, response) = tokio::join!(in_flight, async {
        // The slow request is under way before the reload.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        cdn.reload(&moved).await
    });
    let changes = summary(&response);
    assert_eq!(
        changes["listeners"]["removed"],
        serde_json::json!([format!("http {old}")])
    );
    let added = changes["listeners"]["added"][0]
        .as_str()
        .and_then(|l| l.strip_prefix("http "))
        .expect("an added HTTP listener");
    let new: std::net::SocketAddr = added.parse().unwrap();
    assert_eq!(new.ip().to_string(), "127.0.0.2");
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(
        json["changed"],
        serde_json::json!([
            "distribution site changed",
            format!("listener http {new} added"),
            format!("listener http {old} removed"),
        ]),
        "one line per change, as the config contract's `changed` list"
    );
    assert_eq!(answer.status, 200, "the request in flight finishes");
    assert_eq!(answer.text(), "slow A", "on the config it started with");
    assert!(
        tokio::net::TcpStream::connect(old).await.is_err(),
        "the old address still accepts"
    );
    let request = http::Request::get("/v/x")
        .header("host", SITE)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let io = tokio::net::TcpStream::connect(new)
        .await
        .expect("connect to the new address");
    let response = exchange(io, false, request).await.expect("a response");
    assert_eq!(
        response.text(),
        "B",
        "the new address serves the new config"
    );
}

#[tokio::test]
async fn a_listener_that_cannot_be_bound_refuses_the_whole_reload() {
    let (a, b, shared) = origins().await;
    let cdn = Cdn::start(&versioned(&shared, &a, "")).await;
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap();
    let blocked = versioned(&shared, &b, "").replace(
        r#"http_listen = ["127.0.0.1:0"]"#,
        &format!(r#"http_listen = ["127.0.0.1:0", "{taken}"]"#),
    );
    let response = cdn.reload(&blocked).await;
    assert_eq!(response.status, 400, "{}", response.text());
    let text = response.text();
    assert!(
        text.contains("edgewise.toml:") && text.contains("cdn.http_listen[1]"),
        "{text}"
    );
    assert!(text.contains(&format!("cannot bind {taken}")), "{text}");
    assert_eq!(
        cdn.get("/v/x").send().await.text(),
        "A",
        "nothing of the refused config applies"
    );
}

#[tokio::test]
async fn cached_objects_survive_a_reload_unless_their_distribution_goes() {
    let (a, _b, shared) = origins().await;
    let other = format!(
        r#"[[cdn.distributions]]
id = "other"
hosts = ["other.test"]
[[cdn.distributions.origins]]
id = "app"
url = "{}"
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#,
        shared.url()
    );
    let cdn = Cdn::start(&versioned(&shared, &a, &other)).await;
    for host in [SITE, "other.test"] {
        assert_eq!(cdn.get("/page").host(host).send().await.x_cache(), MISS);
        assert_eq!(cdn.get("/page").host(host).send().await.x_cache(), HIT);
    }
    // Same config again: nothing changes, everything stays cached.
    let changes = summary(&cdn.reload(&versioned(&shared, &a, &other)).await);
    assert_eq!(changes["changed"], serde_json::json!([]), "{changes}");
    assert_eq!(
        cdn.get("/page").host("other.test").send().await.x_cache(),
        HIT
    );
    // "other" removed: "site" keeps its objects, "other" no longer answers.
    let changes = summary(&cdn.reload(&versioned(&shared, &a, "")).await);
    assert_eq!(
        changes["removed"],
        serde_json::json!(["other"]),
        "{changes}"
    );
    assert_eq!(cdn.get("/page").send().await.x_cache(), HIT);
    assert_eq!(cdn.get("/page").host("other.test").send().await.status, 421);
    // Back again: its objects were dropped with it.
    let changes = summary(&cdn.reload(&versioned(&shared, &a, &other)).await);
    assert_eq!(changes["added"], serde_json::json!(["other"]), "{changes}");
    assert_eq!(
        cdn.get("/page").host("other.test").send().await.x_cache(),
        MISS
    );
}

#[tokio::test]
async fn certificates_are_read_again_on_reload() {
    let (a, _b, shared) = origins().await;
    let toml = versioned(&shared, &a, "");
    let cdn = Cdn::start(&toml).await;
    let before = cdn.presented_cert(Some("localhost")).await;
    // A renewed certificate on disk (here: the dev certificate made anew).
    std::fs::remove_file(cdn.dir.path().join("certs/cert.pem")).unwrap();
    std::fs::remove_file(cdn.dir.path().join("certs/key.pem")).unwrap();
    summary(&cdn.reload(&toml).await);
    let after = cdn.presented_cert(Some("localhost")).await;
    assert_ne!(
        before, after,
        "new connections get the certificate now on disk"
    );
}

#[tokio::test]
async fn a_new_admin_token_applies_at_once_and_reloads_need_the_token() {
    let (a, _b, shared) = origins().await;
    let toml = versioned(&shared, &a, "");
    let cdn = Cdn::start(&toml).await;
    let response = cdn.admin(Method::POST, "/reload", None, "").await;
    assert_eq!(response.status, 401);
    let rotated = toml.replace(ADMIN_TOKEN, "rotated-admin-token");
    summary(&cdn.reload(&rotated).await);
    let body = r#"{"distribution": "site", "paths": ["/a"]}"#;
    let old = cdn
        .admin(Method::POST, "/invalidations", Some(ADMIN_TOKEN), body)
        .await;
    assert_eq!(old.status, 401);
    let new = cdn
        .admin(
            Method::POST,
            "/invalidations",
            Some("rotated-admin-token"),
            body,
        )
        .await;
    assert_eq!(new.status, 201, "{}", new.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_racing_shutdown_land_whole_or_are_refused_and_the_cdn_still_stops() {
    let (a, b, shared) = origins().await;
    let mut cdn = Cdn::start(&versioned(&shared, &a, "")).await;
    // A listener move too: one committed during shutdown must not keep a socket open.
    let moved = versioned(&shared, &b, "").replace(
        r#"http_listen = ["127.0.0.1:0"]"#,
        r#"http_listen = ["127.0.0.2:0"]"#,
    );
    std::fs::write(cdn.dir.path().join("edgewise.toml"), moved).unwrap();
    let reloads: Vec<_> = (0..4)
        .map(|_| {
            let reloader = cdn.reloader.clone();
            tokio::spawn(async move { reloader.reload().await.map(|s| s.listeners) })
        })
        .collect();
    cdn.token.cancel();
    let limit = std::time::Duration::from_secs(20);
    let handle = cdn.handle.take().expect("running");
    tokio::time::timeout(limit, handle)
        .await
        .expect("the CDN stops while reloads run")
        .expect("the server task");
    let mut added = Vec::new();
    for reload in reloads {
        let outcome = tokio::time::timeout(limit, reload)
            .await
            .expect("no reload hangs")
            .expect("the reload task");
        if let Ok(listeners) = outcome {
            added.extend(listeners.added);
        }
    }
    for listener in added {
        let addr = listener.strip_prefix("http ").expect("an HTTP listener");
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} still accepts after shutdown"
        );
    }
}

#[tokio::test]
async fn a_changed_access_log_is_refused_as_needing_a_restart() {
    let (a, b, shared) = origins().await;
    let cdn = Cdn::start(&versioned(&shared, &a, "")).await;
    let logged = versioned(&shared, &b, "").replacen(
        r#"http_listen = ["127.0.0.1:0"]"#,
        "http_listen = [\"127.0.0.1:0\"]\naccess_log = { to = \"stderr\" }",
        1,
    );
    let response = cdn.reload(&logged).await;
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(
        response.text().contains("cdn.access_log"),
        "{}",
        response.text()
    );
    assert_eq!(cdn.get("/v/x").send().await.text(), "A");
}
