//! Streaming cache fills: a miss reaches its viewer as the origin sends it, followers that
//! join mid-body read along, a body failing midway aborts every viewer and stores nothing,
//! and compressible responses are still buffered and compressed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_compression::tokio::bufread::GzipDecoder;
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::cdn_harness::*;

/// How long the origin pauses mid-body.
const PAUSE: Duration = Duration::from_millis(600);
/// Bound on "arrived before the origin finished": well under `PAUSE`, with room for a
/// loaded machine.
const PROMPT: Duration = Duration::from_millis(350);

fn first() -> Bytes {
    Bytes::from(vec![b'a'; 3000])
}

fn second() -> Bytes {
    Bytes::from(vec![b'b'; 2000])
}

fn whole() -> Vec<u8> {
    [first(), second()].concat()
}

/// Two chunks with `PAUSE` between them, stored for a minute.
fn paced() -> Reply {
    Reply::paced(vec![
        Step::Send(first()),
        Step::Wait(PAUSE),
        Step::Send(second()),
    ])
    .header("Content-Type", "application/octet-stream")
    .cc("max-age=60")
}

/// Reads `opened` until it has `want` bytes, returning them.
async fn read_at_least(opened: &mut Opened, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        match opened.chunk().await {
            Ok(Some(data)) => got.extend_from_slice(&data),
            Ok(None) => panic!("the body ended after {} bytes", got.len()),
            Err(e) => panic!("the body broke after {} bytes: {e}", got.len()),
        }
    }
    got
}

#[tokio::test]
async fn a_miss_reaches_the_viewer_before_the_origin_finishes() {
    let origin = Origin::start().await;
    origin.route("/h1", paced());
    origin.route("/h2", paced());
    let cdn = Cdn::site(&origin, "").await;
    for (path, proto) in [("/h1", Proto::H1), ("/h2", Proto::H2)] {
        let started = Instant::now();
        let mut leader = cdn.get(path).proto(proto).open().await;
        assert_eq!((leader.status, leader.x_cache()), (200, MISS), "{path}");
        let whole_len = whole().len().to_string();
        assert_eq!(leader.header("content-length"), Some(whole_len.as_str()));
        let head = read_at_least(&mut leader, first().len()).await;
        let first_at = started.elapsed();
        assert!(
            first_at < PROMPT,
            "{path}: the first chunk took {first_at:?}, as if the edge waited for the whole body"
        );
        let rest = leader.rest().await.expect("the body completes");
        assert!(
            started.elapsed() >= PAUSE,
            "the origin's pause is in the body"
        );
        assert_eq!([head, rest.to_vec()].concat(), whole(), "{path}");
        let hit = cdn.get(path).proto(proto).send().await;
        assert_eq!(
            (hit.x_cache(), &hit.body[..]),
            (HIT, &whole()[..]),
            "{path}"
        );
        assert_eq!(hit.header("content-length"), Some(whole_len.as_str()));
        assert_eq!(origin.hits(path), 1, "{path}");
    }
}

#[tokio::test]
async fn a_follower_joining_mid_body_reads_along() {
    let origin = Origin::start().await;
    origin.route("/big", paced());
    let cdn = Cdn::site(&origin, "").await;
    let mut leader = cdn.get("/big").open().await;
    assert_eq!(leader.x_cache(), MISS);
    let leader_head = read_at_least(&mut leader, first().len()).await;
    // The fill is mid-body now: followers of every kind arrive.
    let joined = Instant::now();
    let mut follower = cdn.get("/big").h2().open().await;
    assert_eq!(
        (follower.status, follower.x_cache()),
        (200, HIT),
        "collapsed requests report Hit, as CloudFront does"
    );
    let follower_head = read_at_least(&mut follower, first().len()).await;
    let caught_up = joined.elapsed();
    assert!(
        caught_up < PROMPT,
        "the follower got the bytes so far after {caught_up:?}, as if it waited for the store"
    );
    let cdn = Arc::new(cdn);
    let (ranged, headed) = {
        let (a, b) = (cdn.clone(), cdn.clone());
        (
            tokio::spawn(async move {
                a.get("/big")
                    .header("range", "bytes=2990-3009")
                    .send()
                    .await
            }),
            tokio::spawn(async move { b.request(http::Method::HEAD, "/big").send().await }),
        )
    };
    let leader_rest = leader.rest().await.expect("the leader's body completes");
    let follower_rest = follower
        .rest()
        .await
        .expect("the follower's body completes");
    assert_eq!([leader_head, leader_rest.to_vec()].concat(), whole());
    assert_eq!([follower_head, follower_rest.to_vec()].concat(), whole());
    let ranged = ranged.await.unwrap();
    assert_eq!(ranged.status, 206);
    assert_eq!(&ranged.body[..], &whole()[2990..3010]);
    let headed = headed.await.unwrap();
    assert_eq!((headed.status, headed.body.len()), (200, 0));
    let whole_len = whole().len().to_string();
    assert_eq!(headed.header("content-length"), Some(whole_len.as_str()));
    assert_eq!(origin.hits("/big"), 1, "one origin request for all of them");
}

#[tokio::test]
async fn a_follower_wanting_another_variant_fetches_its_own() {
    let origin = Origin::start().await;
    origin.route_fn("/v", |seen| {
        let language = seen.header("accept-language").unwrap_or("none").to_string();
        Reply::paced(vec![
            Step::Send(Bytes::from(format!("{language}:"))),
            Step::Wait(PAUSE),
            Step::Send(Bytes::from_static(b"done")),
        ])
        .header("Vary", "Accept-Language")
        .cc("max-age=60")
    });
    let cdn = Cdn::site(&origin, r#"forward_headers = ["Accept-Language"]"#).await;
    let mut english = cdn.get("/v").header("accept-language", "en").open().await;
    assert_eq!(english.chunk().await.unwrap().as_deref(), Some(&b"en:"[..]));
    let french = cdn.get("/v").header("accept-language", "fr").send().await;
    assert_eq!(french.text(), "fr:done");
    let same = cdn.get("/v").header("accept-language", "en").send().await;
    assert_eq!((same.x_cache(), same.text().as_str()), (HIT, "en:done"));
    assert_eq!(english.rest().await.unwrap(), "done");
    assert_eq!(origin.hits("/v"), 2, "one fetch per variant");
}

#[tokio::test]
async fn an_origin_failing_mid_body_aborts_every_viewer_and_stores_nothing() {
    let origin = Origin::start().await;
    origin.route(
        "/fail",
        Reply::paced(vec![
            Step::Send(first()),
            Step::Wait(PAUSE),
            Step::Send(Bytes::from_static(b"never all of it")),
            Step::Abort,
        ])
        .cc("max-age=60"),
    );
    let cdn = Cdn::site(&origin, "").await;
    let mut leader = cdn.get("/fail").open().await;
    assert_eq!((leader.status, leader.x_cache()), (200, MISS));
    read_at_least(&mut leader, first().len()).await;
    let mut follower = cdn.get("/fail").h2().open().await;
    assert_eq!((follower.status, follower.x_cache()), (200, HIT));
    read_at_least(&mut follower, first().len()).await;
    let leader_end = leader.rest().await;
    assert!(
        leader_end.is_err(),
        "the leader's body must abort: {leader_end:?}"
    );
    let follower_end = follower.rest().await;
    assert!(
        follower_end.is_err(),
        "the follower's body must abort: {follower_end:?}"
    );
    origin.route("/fail", Reply::ok("whole at last").cc("max-age=60"));
    let next = cdn.get("/fail").send().await;
    assert_eq!(
        (next.x_cache(), next.text().as_str()),
        (MISS, "whole at last")
    );
    assert_eq!(origin.hits("/fail"), 2, "nothing was cached");
}

#[tokio::test]
async fn without_a_length_the_leader_streams_and_followers_wait_for_the_object() {
    let origin = Origin::start().await;
    origin.route("/chunked", paced().chunked());
    let cdn = Arc::new(Cdn::site(&origin, "").await);
    let started = Instant::now();
    let mut leader = cdn.get("/chunked").open().await;
    assert_eq!(leader.header("content-length"), None);
    read_at_least(&mut leader, first().len()).await;
    assert!(
        started.elapsed() < PROMPT,
        "streamed: {:?}",
        started.elapsed()
    );
    let follower = {
        let cdn = cdn.clone();
        tokio::spawn(async move { cdn.get("/chunked").send().await })
    };
    leader.rest().await.expect("the leader's body completes");
    let follower = follower.await.unwrap();
    assert_eq!(
        (follower.x_cache(), &follower.body[..]),
        (HIT, &whole()[..])
    );
    let whole_len = whole().len().to_string();
    assert_eq!(follower.header("content-length"), Some(whole_len.as_str()));
    assert_eq!(origin.hits("/chunked"), 1);
}

#[tokio::test]
async fn compressible_responses_are_still_buffered_and_compressed() {
    let origin = Origin::start().await;
    let text = "<p>edge caches love repetitive text</p>\n".repeat(150);
    let (head, tail) = text.split_at(2000);
    origin.route(
        "/page",
        Reply::paced(vec![
            Step::Send(Bytes::from(head.to_string())),
            Step::Wait(PAUSE),
            Step::Send(Bytes::from(tail.to_string())),
        ])
        .html()
        .cc("max-age=60"),
    );
    let cdn = Cdn::site(&origin, "compress = true").await;
    let started = Instant::now();
    let mut response = cdn
        .get("/page")
        .header("accept-encoding", "gzip")
        .open()
        .await;
    assert!(
        started.elapsed() >= PAUSE,
        "compression needs the whole body before the head"
    );
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    let length = response.header("content-length").map(str::to_string);
    let body = response.rest().await.unwrap();
    assert_eq!(length, Some(body.len().to_string()));
    let mut decoded = String::new();
    GzipDecoder::new(&body[..])
        .read_to_string(&mut decoded)
        .await
        .unwrap();
    assert_eq!(decoded, text);
    let hit = cdn
        .get("/page")
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!((hit.x_cache(), &hit.body[..]), (HIT, &body[..]));
    assert_eq!(origin.hits("/page"), 1);
}

#[tokio::test]
async fn a_stampede_on_a_slow_body_makes_one_origin_request() {
    let origin = Origin::start().await;
    origin.route("/slow", paced().delay_ms(200));
    let cdn = Arc::new(Cdn::site(&origin, "").await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40u64 {
        let cdn = cdn.clone();
        tasks.spawn(async move {
            // Some arrive before the head, some while the body is arriving.
            tokio::time::sleep(Duration::from_millis(i * 10)).await;
            let request = cdn.get("/slow");
            if i % 2 == 0 { request.h2() } else { request }.send().await
        });
    }
    let mut misses = 0;
    while let Some(response) = tasks.join_next().await {
        let response = response.expect("request task");
        assert_eq!((response.status, &response.body[..]), (200, &whole()[..]));
        misses += usize::from(response.x_cache() == MISS);
    }
    assert_eq!(misses, 1, "one leader; the others read along or hit");
    assert_eq!(origin.hits("/slow"), 1);
}
