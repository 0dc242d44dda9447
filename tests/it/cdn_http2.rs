//! HTTP/2 viewers, served by the CDN's own h2 server: uploads larger than the flow-control
//! window, the GOAWAY after `idle_timeout`, and a shutdown that lets a request in flight
//! finish while the connection takes no new one. (103 Early Hints over HTTP/2 are in
//! `cdn_targeted`.)

use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use http::{Method, Request};

use crate::cdn_harness::*;

/// An HTTP/2 connection to the CDN with h2's client; the connection task's result comes
/// back through the handle.
async fn connect(
    cdn: &Cdn,
) -> (
    SendRequest<Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let tls = cdn.tls(SITE, &[b"h2"]).await.unwrap();
    let (client, connection) = h2::client::handshake(tls).await.unwrap();
    (client, tokio::spawn(connection))
}

/// Sends `request` (with `body`, if any) and reads the whole response.
async fn exchange(
    client: &mut SendRequest<Bytes>,
    request: Request<()>,
    body: Option<Bytes>,
) -> Result<(u16, Bytes), h2::Error> {
    let mut ready = client.clone().ready().await?;
    let (response, mut send) = ready.send_request(request, body.is_none())?;
    if let Some(mut body) = body {
        // As the server's window opens, in pieces no larger than it lets through.
        while !body.is_empty() {
            send.reserve_capacity(body.len());
            // None: the server answered (or reset) before taking it all.
            let Some(room) = std::future::poll_fn(|cx| send.poll_capacity(cx)).await else {
                break;
            };
            let room = room?;
            let last = body.len() <= room;
            send.send_data(body.split_to(room.min(body.len())), last)?;
        }
    }
    let response = response.await?;
    let status = response.status().as_u16();
    let mut received = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = received.data().await {
        let chunk = chunk?;
        received.flow_control().release_capacity(chunk.len())?;
        bytes.extend_from_slice(&chunk);
    }
    Ok((status, Bytes::from(bytes)))
}

fn request(method: Method, path: &str) -> Request<()> {
    Request::builder()
        .method(method)
        .uri(format!("https://{SITE}{path}"))
        .body(())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_three_times_the_window_reaches_the_origin_whole() {
    let origin = Origin::start().await;
    origin.route("/upload", Reply::ok("stored").cc("no-store"));
    let cdn = Cdn::site(&origin, r#"allowed_methods = ["GET", "HEAD", "POST"]"#).await;
    let (mut client, _connection) = connect(&cdn).await;
    let upload: Bytes = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (status, body) = exchange(
        &mut client,
        request(Method::POST, "/upload"),
        Some(upload.clone()),
    )
    .await
    .unwrap();
    assert_eq!((status, &body[..]), (200, &b"stored"[..]));
    let seen = origin.last("/upload");
    assert_eq!(seen.body.len(), upload.len());
    assert!(
        seen.body == upload,
        "the origin got the bytes sent, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_sent_away_after_idle_timeout() {
    let origin = Origin::start().await;
    origin.route("/a", Reply::ok("a").cc("max-age=60"));
    let cdn = Cdn::start(&config("idle_timeout = \"1s\"", &site(&origin.url(), ""))).await;
    let (mut client, connection) = connect(&cdn).await;
    let (status, _) = exchange(&mut client, request(Method::GET, "/a"), None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    // Idle from here: a GOAWAY within two ticks of the idle timer, and the connection ends.
    let ended = tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("the connection ends within 5 s")
        .unwrap();
    assert!(ended.is_ok(), "a graceful end: {ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_http2_connection_outlives_idle_timeout() {
    let origin = Origin::start().await;
    origin.route("/a", Reply::ok("a").cc("max-age=60"));
    let cdn = Cdn::start(&config("idle_timeout = \"1s\"", &site(&origin.url(), ""))).await;
    let (mut client, connection) = connect(&cdn).await;
    for _ in 0..10 {
        let (status, _) = exchange(&mut client, request(Method::GET, "/a"), None)
            .await
            .unwrap();
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(!connection.is_finished(), "3 s of requests, 300 ms apart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_http2_request_in_flight_and_takes_no_new_one() {
    let origin = Origin::start().await;
    origin.route(
        "/slow",
        Reply::ok("finished").cc("no-store").delay_ms(1_000),
    );
    origin.route("/late", Reply::ok("late").cc("no-store"));
    let mut cdn = Cdn::site(&origin, "").await;
    let handle = cdn.handle.take().unwrap();
    let (mut client, connection) = connect(&cdn).await;
    let slow = {
        let mut client = client.clone();
        tokio::spawn(
            async move { exchange(&mut client, request(Method::GET, "/slow"), None).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    cdn.token.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late = exchange(&mut client, request(Method::GET, "/late"), None).await;
    assert!(
        late.is_err(),
        "a stream after the GOAWAY is refused: {late:?}"
    );
    let (status, body) = slow.await.unwrap().unwrap();
    assert_eq!((status, &body[..]), (200, &b"finished"[..]));
    assert_eq!(origin.hits("/late"), 0);
    tokio::time::timeout(TIMEOUT, connection)
        .await
        .expect("the connection ends once its request is answered")
        .unwrap()
        .unwrap();
    tokio::time::timeout(TIMEOUT, handle)
        .await
        .expect("run() returns after the drain")
        .unwrap();
}
