//! CDN connection limits: header size, header timeout, connection cap.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cdn_harness::*;

async fn limited_cdn(origin: &Origin, settings: &str) -> Cdn {
    origin.route("/", Reply::ok("ok").cc("max-age=60"));
    Cdn::start(&config(settings, &site(&origin.url(), ""))).await
}

#[tokio::test]
async fn request_headers_larger_than_max_header_size_get_431() {
    let origin = Origin::start().await;
    let cdn = limited_cdn(&origin, r#"max_header_size = "16KiB""#).await;
    let big = "x".repeat(20 * 1024);
    let request = format!("GET / HTTP/1.1\r\nHost: {SITE}\r\nX-Big: {big}\r\n\r\n");
    let (answer, _) = raw_exchange(cdn.http.unwrap(), request.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "expected 431, got {:?}",
        answer.lines().next()
    );
    // Headers within the limit are fine.
    let fits = cdn
        .get("/")
        .plain()
        .header("x-big", &"x".repeat(8 * 1024))
        .send()
        .await;
    assert_eq!(fits.status, 200);
    assert_eq!(origin.hits("/"), 1);
}

#[tokio::test]
async fn a_client_that_stalls_mid_request_line_is_disconnected_after_header_timeout() {
    let origin = Origin::start().await;
    let cdn = limited_cdn(&origin, r#"header_timeout = "500ms""#).await;
    let (answer, took) = raw_exchange(cdn.http.unwrap(), b"GET / HT").await;
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(2_000),
        "closed after {took:?}"
    );
    assert!(!answer.contains("200 OK"), "{answer:?}");
    assert_eq!(origin.total(), 0);
}

#[tokio::test]
async fn a_tls_client_that_never_finishes_the_handshake_is_disconnected() {
    let origin = Origin::start().await;
    let cdn = limited_cdn(&origin, r#"header_timeout = "500ms""#).await;
    let (_, took) = raw_exchange(cdn.https.unwrap(), b"\x16\x03\x01").await;
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(2_000),
        "closed after {took:?}"
    );
}

/// Sends a keep-alive GET on `tcp` and reads one response head (the body is two bytes).
async fn keep_alive_get(tcp: &mut TcpStream) -> String {
    let request = format!("GET / HTTP/1.1\r\nHost: {SITE}\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).ends_with("\r\n\r\nok") {
        let n = tokio::time::timeout(TIMEOUT, tcp.read(&mut buf))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn connections_beyond_max_connections_are_closed() {
    let origin = Origin::start().await;
    let cdn = limited_cdn(&origin, "max_connections = 2").await;
    let addr = cdn.http.unwrap();
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    assert!(keep_alive_get(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(
        keep_alive_get(&mut second)
            .await
            .starts_with("HTTP/1.1 200")
    );

    let (answer, took) = raw_exchange(
        addr,
        format!("GET / HTTP/1.1\r\nHost: {SITE}\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(
        answer, "",
        "the third connection is closed without an answer"
    );
    assert!(took < Duration::from_secs(2), "closed after {took:?}");

    // Both survivors still work, and closing one makes room again.
    assert!(keep_alive_get(&mut first).await.starts_with("HTTP/1.1 200"));
    drop(second);
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let (answer, _) = raw_exchange(
            addr,
            format!("GET / HTTP/1.1\r\nHost: {SITE}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no slot freed after closing a connection"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
