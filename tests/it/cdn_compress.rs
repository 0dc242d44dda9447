//! CDN compression: br preferred, gzip, identity; which responses qualify; ETag weakening,
//! Vary, and the compressed variant served from the cache.

use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder};
use tokio::io::AsyncReadExt;

use crate::cdn_harness::*;

/// About 6 KB of HTML.
fn page() -> String {
    let mut html = String::from("<!doctype html><html><body>\n");
    for i in 0..120 {
        html.push_str(&format!(
            "<p>Paragraph {i}: edge caches love repetitive text.</p>\n"
        ));
    }
    html.push_str("</body></html>\n");
    html
}

async fn decode(encoding: &str, bytes: &[u8]) -> String {
    let mut out = Vec::new();
    match encoding {
        "br" => BrotliDecoder::new(bytes).read_to_end(&mut out).await,
        "gzip" => GzipDecoder::new(bytes).read_to_end(&mut out).await,
        other => panic!("unexpected Content-Encoding {other}"),
    }
    .unwrap_or_else(|e| panic!("decoding {encoding}: {e}"));
    String::from_utf8(out).expect("UTF-8 after decoding")
}

async fn compressing_cdn(origin: &Origin) -> Cdn {
    Cdn::site(origin, "compress = true").await
}

#[tokio::test]
async fn br_is_preferred_when_the_client_accepts_it() {
    let origin = Origin::start().await;
    origin.route(
        "/page",
        Reply::ok(page()).html().cc("max-age=60").etag("\"p1\""),
    );
    let cdn = compressing_cdn(&origin).await;
    let response = cdn
        .get("/page")
        .header("accept-encoding", "gzip, deflate, br")
        .send()
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-encoding"), Some("br"));
    assert_eq!(decode("br", &response.body).await, page());
    assert!(
        response.body.len() < page().len() / 2,
        "{} bytes",
        response.body.len()
    );
    assert_eq!(
        response.header("content-length"),
        Some(response.body.len().to_string().as_str())
    );
    assert_eq!(response.header("etag"), Some("W/\"p1\""));
    assert!(
        response
            .all("vary")
            .to_ascii_lowercase()
            .contains("accept-encoding"),
        "Vary: {}",
        response.all("vary")
    );
}

#[tokio::test]
async fn gzip_is_used_when_only_gzip_is_accepted() {
    let origin = Origin::start().await;
    origin.route("/page", Reply::ok(page()).html().cc("max-age=60"));
    let cdn = compressing_cdn(&origin).await;
    for accept in ["gzip", "gzip;q=1, br;q=0", "x-gzip"] {
        let response = cdn
            .get("/page")
            .header("accept-encoding", accept)
            .send()
            .await;
        assert_eq!(
            response.header("content-encoding"),
            Some("gzip"),
            "{accept}"
        );
        assert_eq!(decode("gzip", &response.body).await, page(), "{accept}");
    }
}

#[tokio::test]
async fn identity_or_no_accept_encoding_gets_the_original_bytes() {
    let origin = Origin::start().await;
    origin.route(
        "/page",
        Reply::ok(page()).html().cc("max-age=60").etag("\"p1\""),
    );
    let cdn = compressing_cdn(&origin).await;
    for accept in [Some("identity"), None] {
        let request = cdn.get("/page");
        let request = match accept {
            Some(value) => request.header("accept-encoding", value),
            None => request,
        };
        let response = request.send().await;
        assert_eq!(response.header("content-encoding"), None, "{accept:?}");
        assert_eq!(response.text(), page());
        assert_eq!(response.header("etag"), Some("\"p1\""));
    }
    // identity and no header share the "uncompressed" key.
    assert_eq!(origin.hits("/page"), 1);
}

#[tokio::test]
async fn the_compressed_variant_is_cached_per_encoding() {
    let origin = Origin::start().await;
    origin.route("/page", Reply::ok(page()).html().cc("max-age=60"));
    let cdn = compressing_cdn(&origin).await;
    let first = cdn
        .get("/page")
        .header("accept-encoding", "br, gzip")
        .send()
        .await;
    assert_eq!(first.x_cache(), MISS);
    let second = cdn
        .get("/page")
        .header("accept-encoding", "gzip, br")
        .h2()
        .send()
        .await;
    assert_eq!(second.x_cache(), HIT);
    assert_eq!(second.header("content-encoding"), Some("br"));
    assert_eq!(
        second.body, first.body,
        "the cached bytes are served as they are"
    );
    let gzip = cdn
        .get("/page")
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!(
        (gzip.x_cache(), gzip.header("content-encoding")),
        (MISS, Some("gzip"))
    );
    let plain = cdn.get("/page").send().await;
    assert_eq!(
        (plain.x_cache(), plain.header("content-encoding")),
        (MISS, None)
    );
    assert_eq!(origin.hits("/page"), 3);
    // Whatever the client sent, the origin is asked for the normalised class only.
    assert_eq!(
        origin.seen("/page")[0].header("accept-encoding"),
        Some("br,gzip")
    );
}

#[tokio::test]
async fn only_listed_types_sizes_and_statuses_are_compressed() {
    let origin = Origin::start().await;
    let big = page();
    origin.route(
        "/image",
        Reply::ok(big.clone())
            .header("Content-Type", "image/png")
            .cc("max-age=60"),
    );
    origin.route("/untyped", Reply::ok(big.clone()).cc("max-age=60"));
    origin.route(
        "/tiny",
        Reply::ok("<p>tiny</p>".repeat(80)).html().cc("max-age=60"),
    );
    origin.route(
        "/json",
        Reply::ok(big.clone())
            .header("Content-Type", "Application/JSON; charset=utf-8")
            .cc("max-age=60"),
    );
    origin.route(
        "/not-found",
        Reply::status(404, big.clone()).html().cc("max-age=60"),
    );
    origin.route("/forbidden", Reply::status(403, big.clone()).html());
    origin.route("/error", Reply::status(500, big.clone()).html());
    origin.route(
        "/no-transform",
        Reply::ok(big.clone()).html().cc("max-age=60, no-transform"),
    );
    let cdn = compressing_cdn(&origin).await;
    for (path, status, compressed) in [
        ("/image", 200, false),
        ("/untyped", 200, false),
        ("/tiny", 200, false),
        ("/json", 200, true),
        ("/not-found", 404, true),
        ("/forbidden", 403, true),
        ("/error", 500, false),
        ("/no-transform", 200, false),
    ] {
        let response = cdn.get(path).header("accept-encoding", "gzip").send().await;
        assert_eq!(response.status, status, "{path}");
        let encoding = response.header("content-encoding");
        if compressed {
            assert_eq!(encoding, Some("gzip"), "{path} should be compressed");
            assert_eq!(decode("gzip", &response.body).await, big, "{path}");
        } else {
            assert_eq!(encoding, None, "{path} should not be compressed");
            assert!(
                response.body.len() < 1_000 || response.text() == big,
                "{path}"
            );
        }
    }
}

#[tokio::test]
async fn a_response_the_origin_already_encoded_is_passed_as_it_is() {
    let origin = Origin::start().await;
    // Not real gzip: the edge must neither decode nor encode it again.
    let opaque = "pretend-gzip-bytes ".repeat(100);
    origin.route(
        "/pre",
        Reply::ok(opaque.clone())
            .html()
            .cc("max-age=60")
            .header("Content-Encoding", "gzip")
            .header("Vary", "Accept-Encoding"),
    );
    let cdn = compressing_cdn(&origin).await;
    for _ in 0..2 {
        let response = cdn
            .get("/pre")
            .header("accept-encoding", "br, gzip")
            .send()
            .await;
        assert_eq!(response.header("content-encoding"), Some("gzip"));
        assert_eq!(response.text(), opaque);
    }
    assert_eq!(origin.hits("/pre"), 1);
}

#[tokio::test]
async fn without_compress_the_edge_never_compresses() {
    let origin = Origin::start().await;
    origin.route("/page", Reply::ok(page()).html().cc("max-age=60"));
    let cdn = Cdn::site(&origin, "").await;
    let response = cdn
        .get("/page")
        .header("accept-encoding", "br, gzip")
        .send()
        .await;
    assert_eq!(response.header("content-encoding"), None);
    assert_eq!(response.text(), page());
}
