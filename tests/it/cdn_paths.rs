//! Every spelling of a protected path, against a signed behavior in front of a folder origin
//! and an HTTP origin, over HTTP/1.1 and HTTP/2: each is refused (403 without a signature) or
//! rejected (400); none ever returns the protected object. Also: which Host a request names (two Host headers, HTTP/2
//! `:authority`, absolute-form), and a malformed chunked request body.

use percent_encoding::percent_decode_str;

use crate::cdn_harness::*;

const SECRET: &str = "TOP SECRET";
const PUBLIC: &str = "public page";
/// The folder distribution's host; the HTTP origin's distribution is [`SITE`].
const FILES: &str = "files.test";

/// What a spelling must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// It names the protected object: the signed behavior refuses it.
    Refused,
    /// It cannot be read as one path, or some origin would read it as another: rejected
    /// before routing.
    Rejected,
}

use Expect::*;

/// Raw request targets, sent byte for byte (no client normalization).
const SPELLINGS: &[(&str, Expect)] = &[
    ("/private/secret.txt", Refused),
    ("//private/secret.txt", Refused),
    ("///private//secret.txt", Refused),
    ("/%70rivate/secret.txt", Refused),
    ("/%70%72%69%76%61%74%65/secret.txt", Refused),
    ("/priv%61te/secret%2Etxt", Refused),
    ("/priv%61te/secret%2etxt", Refused),
    ("/./private/secret.txt", Refused),
    ("/%2e/private/secret.txt", Refused),
    ("/%2E/private/./secret.txt", Refused),
    ("/public/../private/secret.txt", Refused),
    ("/public/%2e%2e/private/secret.txt", Refused),
    ("/public/%2E%2e/private/secret.txt", Refused),
    ("/private/secret.txt?x=1", Refused),
    ("/private/secret.txt;x", Rejected),
    ("/%2fprivate/secret.txt", Rejected),
    ("/private%2fsecret.txt", Rejected),
    ("/private%2Fsecret.txt", Rejected),
    ("/private%5csecret.txt", Rejected),
    ("/private\\secret.txt", Rejected),
    ("/\\private\\secret.txt", Rejected),
    ("/private%00/secret.txt", Rejected),
    ("/../private/secret.txt", Rejected),
    ("/%2e%2e/private/secret.txt", Rejected),
    ("/%c0%ae/private/secret.txt", Rejected),
    ("/%c0%afprivate/secret.txt", Rejected),
    ("/private%c0%afsecret.txt", Rejected),
    ("/%e0%80%aeprivate/secret.txt", Rejected),
    ("/%2", Rejected),
    ("/%252e/private/secret.txt", Rejected),
    ("/private%252fsecret.txt", Rejected),
    ("/private;x/secret.txt", Rejected),
    ("/private./secret.txt", Rejected),
    ("/private../secret.txt", Rejected),
];

/// The HTTP origin as a typical server reads paths: decoded once, dot and empty segments
/// resolved. It answers the secret for the protected path, a public page for `/public`.
fn http_origin_reads(path: &str) -> Option<&'static str> {
    let decoded = percent_decode_str(path).decode_utf8().ok()?;
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            name => segments.push(name),
        }
    }
    match segments.join("/").as_str() {
        "private/secret.txt" => Some(SECRET),
        "public" => Some(PUBLIC),
        _ => None,
    }
}

/// Two distributions with the same behaviors (`/private/*` signed, `*` public): [`FILES`] on
/// a folder origin, [`SITE`] on an HTTP origin.
async fn setup() -> (Origin, Cdn) {
    let origin = Origin::start().await;
    origin.route_fn("*", |seen| match http_origin_reads(&seen.path) {
        Some(body) => Reply::ok(body),
        None => Reply::status(404, "no such object"),
    });
    let public_key = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/cdn/signed/testdata/key1_spki.pub.pem"
    ))
    .unwrap();
    let behaviors = r#"
[[cdn.distributions.behaviors]]
path = "/private/*"
origin = "o"
trusted_key_groups = ["signers"]

[[cdn.distributions.behaviors]]
path = "*"
origin = "o"
allowed_methods = ["GET", "HEAD", "POST"]
"#;
    let toml = config(
        r#"key_groups = [{ id = "signers", keys = [{ id = "K1", public_key = "k1.pem" }] }]"#,
        &format!(
            r#"[[cdn.distributions]]
id = "files"
hosts = ["{FILES}"]
[[cdn.distributions.origins]]
id = "o"
dir = "www"
{behaviors}
[[cdn.distributions]]
id = "app"
hosts = ["{SITE}"]
[[cdn.distributions.origins]]
id = "o"
url = "{url}"
{behaviors}"#,
            url = origin.url()
        ),
    );
    let cdn = Cdn::start_with(
        &toml,
        &[
            ("k1.pem", &public_key),
            ("www/private/secret.txt", SECRET.as_bytes()),
            ("www/public", PUBLIC.as_bytes()),
        ],
    )
    .await;
    (origin, cdn)
}

/// One request with `target` exactly as written, on its own connection.
async fn fetch(cdn: &Cdn, proto: Proto, host: &str, target: &str) -> Resp {
    match proto {
        Proto::H2 => {
            // The h2 client sends :path as given; only the authority is built.
            let request = http::Request::builder()
                .uri(format!("https://{host}:{}{target}", cdn.https_port()))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            let tls = cdn.tls("localhost", &[b"h2"]).await.unwrap();
            within(exchange(tls, true, request)).await.unwrap()
        }
        _ => {
            let request =
                format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            let tls = cdn.tls("localhost", &[b"http/1.1"]).await.unwrap();
            raw_tls_exchange(tls, request.as_bytes()).await
        }
    }
}

#[tokio::test]
async fn no_spelling_of_a_protected_path_reaches_it() {
    let (_origin, cdn) = setup().await;
    // Sanity: the objects are there and public ones are served.
    for host in [FILES, SITE] {
        for proto in [Proto::H1, Proto::H2] {
            let public = fetch(&cdn, proto, host, "/public").await;
            assert_eq!((public.status, public.text().as_str()), (200, PUBLIC));
        }
    }
    for &(target, expect) in SPELLINGS {
        for host in [FILES, SITE] {
            for proto in [Proto::H1, Proto::H2] {
                // HTTP/2 carries a backslash or a NUL escape just the same; only targets the
                // h2 client's URI parser refuses are left to HTTP/1.1.
                if proto == Proto::H2 && target.parse::<http::uri::PathAndQuery>().is_err() {
                    continue;
                }
                let response = fetch(&cdn, proto, host, target).await;
                let why = format!("{target} to {host} over {proto:?}");
                assert!(
                    !response.text().contains(SECRET),
                    "{why}: the protected object was served"
                );
                let wanted = match expect {
                    Refused => 403,
                    Rejected => 400,
                };
                assert_eq!(response.status, wanted, "{why}: {}", response.text());
            }
        }
    }
}

#[tokio::test]
async fn the_http_origin_gets_the_canonical_path() {
    let (origin, cdn) = setup().await;
    for (target, canonical) in [
        ("//public", "/public"),
        ("/%70ublic", "/public"),
        ("/x/../public", "/public"),
        ("/a%20b/caf%c3%a9", "/a%20b/caf%C3%A9"),
        ("/p%24%3d", "/p$="),
    ] {
        fetch(&cdn, Proto::H1, SITE, target).await;
        assert_eq!(origin.uris().last().unwrap(), canonical, "{target}");
    }
}

#[tokio::test]
async fn hosts_are_read_as_the_rfcs_say() {
    let (_origin, cdn) = setup().await;
    let tls = || cdn.tls("localhost", &[b"http/1.1"]);
    // Two Host headers: 400 (RFC 9112 §3.2), whichever comes first.
    for hosts in [[FILES, SITE], [SITE, FILES], [FILES, FILES]] {
        let request = format!(
            "GET /public HTTP/1.1\r\nHost: {}\r\nHost: {}\r\nConnection: close\r\n\r\n",
            hosts[0], hosts[1]
        );
        let response = raw_tls_exchange(tls().await.unwrap(), request.as_bytes()).await;
        assert_eq!(response.status, 400, "{hosts:?}: {}", response.text());
    }
    // Absolute-form: the target's host is the one used, not the Host header (RFC 9112 §3.2.2).
    let request = format!(
        "GET https://{FILES}/public HTTP/1.1\r\nHost: nobody.test\r\nConnection: close\r\n\r\n"
    );
    let response = raw_tls_exchange(tls().await.unwrap(), request.as_bytes()).await;
    assert_eq!((response.status, response.text().as_str()), (200, PUBLIC));
    let request = format!(
        "GET https://{FILES}/private/secret.txt HTTP/1.1\r\nHost: {SITE}\r\nConnection: close\r\n\r\n"
    );
    let response = raw_tls_exchange(tls().await.unwrap(), request.as_bytes()).await;
    assert_eq!(response.status, 403, "{}", response.text());
    // HTTP/2: :authority wins over a Host header (RFC 9113 §8.3.1).
    let request = http::Request::builder()
        .uri(format!("https://{FILES}:{}/public", cdn.https_port()))
        .header("host", "nobody.test")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let h2 = cdn.tls("localhost", &[b"h2"]).await.unwrap();
    let response = within(exchange(h2, true, request)).await.unwrap();
    assert_eq!((response.status, response.text().as_str()), (200, PUBLIC));
}

/// POSTs `chunks` (the raw chunked encoding) to the HTTP origin's `/public`.
async fn post_chunked(cdn: &Cdn, chunks: &str) -> Resp {
    let request = format!(
        "POST /public HTTP/1.1\r\nHost: {SITE}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunks}"
    );
    let tls = cdn.tls("localhost", &[b"http/1.1"]).await.unwrap();
    raw_tls_exchange(tls, request.as_bytes()).await
}

#[tokio::test]
async fn a_malformed_chunked_request_body_is_a_400() {
    let (origin, cdn) = setup().await;
    for chunks in [
        "zz\r\nhello\r\n0\r\n\r\n",
        "5\r\nhello\r\n-1\r\n\r\n",
        "5\r\nhelloXX0\r\n\r\n",
    ] {
        let response = post_chunked(&cdn, chunks).await;
        assert_eq!(response.status, 400, "{chunks:?}: {}", response.text());
    }
    // A well-formed one goes through.
    let response = post_chunked(&cdn, "5\r\nhello\r\n0\r\n\r\n").await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(origin.last("/public").body.as_ref(), b"hello");
}
