use std::fs;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use tempfile::TempDir;

use super::*;

/// 2023-11-14T22:13:20Z plus some nanoseconds, so second truncation is exercised.
fn mtime() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789)
}
const MTIME_HTTP: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

/// tmp/root/{hello.txt, digits.txt, docs/index.html, empty/, style.css, data.json,
/// pic.png, blob} and tmp/secret.txt outside the root.
fn fixture() -> (TempDir, DirOrigin) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("docs")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    for (name, text) in [
        ("hello.txt", "hello world"),
        ("digits.txt", "0123456789"),
        ("docs/index.html", "<h1>docs</h1>"),
        ("style.css", "p{}"),
        ("data.json", "{}"),
        ("pic.png", "png"),
        ("blob", "raw"),
    ] {
        let path = root.join(name);
        fs::write(&path, text).unwrap();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime())
            .unwrap();
    }
    fs::write(tmp.path().join("secret.txt"), "TOP SECRET").unwrap();
    let origin = DirOrigin::new(&root).unwrap();
    (tmp, origin)
}

async fn send(
    o: &DirOrigin,
    method: Method,
    path: &str,
    hs: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    for (name, value) in hs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    // As the edge does: a path that has no canonical form is a 400 before any origin.
    let resp = match RequestPath::parse(path) {
        Ok(path) => o.fetch(&method, &path, &headers).await,
        Err(_) => error(StatusCode::BAD_REQUEST),
    };
    let (parts, body) = resp.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

async fn get(o: &DirOrigin, path: &str, hs: &[(&str, &str)]) -> (StatusCode, HeaderMap, Bytes) {
    send(o, Method::GET, path, hs).await
}

fn hdr<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).map_or("", |v| v.to_str().unwrap())
}

#[tokio::test]
async fn new_requires_an_existing_directory() {
    let (tmp, _) = fixture();
    assert!(DirOrigin::new(&tmp.path().join("missing")).is_err());
    let err = DirOrigin::new(&tmp.path().join("secret.txt")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotADirectory);
}

#[tokio::test]
async fn serves_a_file_with_headers() {
    let (_tmp, o) = fixture();
    let (status, h, body) = get(&o, "/hello.txt", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"hello world");
    assert_eq!(hdr(&h, "content-type"), "text/plain; charset=utf-8");
    assert_eq!(hdr(&h, "content-length"), "11");
    assert_eq!(hdr(&h, "accept-ranges"), "bytes");
    assert_eq!(hdr(&h, "last-modified"), MTIME_HTTP);
    let nanos = mtime().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    assert_eq!(hdr(&h, "etag"), format!("\"b-{nanos:x}\""));
}

#[tokio::test]
async fn percent_encoded_names_are_decoded() {
    let (tmp, o) = fixture();
    fs::write(tmp.path().join("root/a b.txt"), "spaced").unwrap();
    let (status, _, body) = get(&o, "/a%20b.txt", &[]).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"spaced"[..]));
    // `.` and empty segments are ignored; an encoded slash is no separator but a refusal.
    assert_eq!(
        get(&o, "/./docs//./index.html", &[]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&o, "/docs%2Findex.html", &[]).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn traversal_is_refused() {
    let (_tmp, o) = fixture();
    for path in [
        "/../etc/passwd",
        "/../secret.txt",
        "/%2e%2e/x",
        "/%2e%2e/secret.txt",
        "/a/%2E%2E/%2e%2e/x",
        "/..%2fx",
        "/..%2Fsecret.txt",
        "/a/..%5c..%5cx",
        "/..%5csecret.txt",
        "/.%2e/secret.txt",
        "/%2fetc/passwd",
        "/hello%00.txt",
        "/%ff",
        "relative.txt",
    ] {
        let (status, _, body) = get(&o, path, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(&body[..], b"400 Bad Request\n", "{path}");
    }
    // Absolute-looking paths stay under the root.
    for path in ["//etc/passwd", "///secret.txt"] {
        let (status, _, body) = get(&o, path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(&body[..], b"404 Not Found\n", "{path}");
    }
}

#[tokio::test]
async fn errors_reveal_nothing() {
    let (tmp, o) = fixture();
    let (status, h, body) = get(&o, "/nope/missing.txt", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(hdr(&h, "content-type"), "text/plain; charset=utf-8");
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(!text.contains(tmp.path().to_str().unwrap()) && !text.contains("os error"));
    // A file used as a directory is simply missing.
    assert_eq!(get(&o, "/hello.txt/x", &[]).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&o, "/hello.txt/", &[]).await.0, StatusCode::NOT_FOUND);
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_out_of_the_root_are_refused() {
    use std::os::unix::fs::symlink;
    let (tmp, o) = fixture();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("index.html"), "outside index").unwrap();
    fs::write(outside.join("f.txt"), "outside file").unwrap();
    symlink(tmp.path().join("secret.txt"), root.join("abs.txt")).unwrap();
    symlink("../secret.txt", root.join("rel.txt")).unwrap();
    symlink(&outside, root.join("outdir")).unwrap();
    fs::create_dir(root.join("sneaky")).unwrap();
    symlink(outside.join("index.html"), root.join("sneaky/index.html")).unwrap();
    // A sibling whose name starts with the root's name is still outside.
    fs::create_dir(tmp.path().join("root2")).unwrap();
    fs::write(tmp.path().join("root2/x.txt"), "sibling").unwrap();
    symlink(tmp.path().join("root2/x.txt"), root.join("prefix.txt")).unwrap();
    for path in [
        "/abs.txt",
        "/rel.txt",
        "/outdir",
        "/outdir/",
        "/outdir/f.txt",
        "/sneaky/",
        "/prefix.txt",
    ] {
        let (status, _, body) = get(&o, path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(&body[..], b"404 Not Found\n", "{path}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_inside_the_root_work() {
    use std::os::unix::fs::symlink;
    let (tmp, o) = fixture();
    let root = tmp.path().join("root");
    symlink("hello.txt", root.join("link.txt")).unwrap();
    symlink(root.join("docs"), root.join("linkdir")).unwrap();
    symlink("../hello.txt", root.join("docs/up.txt")).unwrap();
    assert_eq!(&get(&o, "/link.txt", &[]).await.2[..], b"hello world");
    assert_eq!(&get(&o, "/linkdir/", &[]).await.2[..], b"<h1>docs</h1>");
    assert_eq!(&get(&o, "/docs/up.txt", &[]).await.2[..], b"hello world");
    // The root itself may be reached through a symlink.
    symlink(&root, tmp.path().join("alias")).unwrap();
    let aliased = DirOrigin::new(&tmp.path().join("alias")).unwrap();
    assert_eq!(
        &get(&aliased, "/hello.txt", &[]).await.2[..],
        b"hello world"
    );
    // Content type comes from the file actually served.
    let (_, h, _) = get(&o, "/link.txt", &[]).await;
    assert_eq!(hdr(&h, "content-type"), "text/plain; charset=utf-8");
}

#[cfg(unix)]
#[tokio::test]
async fn special_files_are_not_served() {
    let (tmp, o) = fixture();
    let fifo = tmp.path().join("root/pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        assert_eq!(get(&o, "/pipe", &[]).await.0, StatusCode::NOT_FOUND);
    }
}

#[cfg(unix)]
#[tokio::test]
async fn permission_denied_is_403() {
    use std::os::unix::fs::PermissionsExt;
    let (tmp, o) = fixture();
    let locked = tmp.path().join("root/locked.txt");
    fs::write(&locked, "no").unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(&locked).is_ok() {
        return; // running as root: permissions are not enforced
    }
    let (status, _, body) = get(&o, "/locked.txt", &[]).await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::FORBIDDEN, &b"403 Forbidden\n"[..])
    );
}

#[tokio::test]
async fn directories_serve_index_html_only() {
    let (tmp, o) = fixture();
    for path in ["/docs", "/docs/", "/docs/index.html"] {
        let (status, h, body) = get(&o, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(&body[..], b"<h1>docs</h1>");
        assert_eq!(hdr(&h, "content-type"), "text/html; charset=utf-8");
    }
    assert_eq!(get(&o, "/empty", &[]).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&o, "/empty/", &[]).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&o, "/", &[]).await.0, StatusCode::NOT_FOUND);
    fs::create_dir(tmp.path().join("root/empty/index.html")).unwrap();
    assert_eq!(get(&o, "/empty/", &[]).await.0, StatusCode::NOT_FOUND);
    fs::write(tmp.path().join("root/index.html"), "home").unwrap();
    assert_eq!(&get(&o, "/", &[]).await.2[..], b"home");
}

#[tokio::test]
async fn content_types_follow_the_extension() {
    let (_tmp, o) = fixture();
    for (path, expected) in [
        ("/style.css", "text/css; charset=utf-8"),
        ("/data.json", "application/json"),
        ("/pic.png", "image/png"),
        ("/blob", "application/octet-stream"),
        ("/docs/index.html", "text/html; charset=utf-8"),
    ] {
        let (_, h, _) = get(&o, path, &[]).await;
        assert_eq!(hdr(&h, "content-type"), expected, "{path}");
    }
}

#[tokio::test]
async fn etag_is_stable_and_tracks_changes() {
    let (tmp, o) = fixture();
    let first = get(&o, "/hello.txt", &[]).await.1;
    let second = get(&o, "/hello.txt", &[]).await.1;
    assert_eq!(first.get("etag"), second.get("etag"));
    let path = tmp.path().join("root/hello.txt");
    fs::write(&path, "hello there world").unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime())
        .unwrap();
    assert_ne!(
        get(&o, "/hello.txt", &[]).await.1.get("etag"),
        first.get("etag")
    );
    fs::write(&path, "hello world").unwrap();
    let later = mtime() + Duration::from_nanos(1);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert_ne!(
        get(&o, "/hello.txt", &[]).await.1.get("etag"),
        first.get("etag")
    );
}

#[tokio::test]
async fn if_none_match_answers_304() {
    let (_tmp, o) = fixture();
    let etag = hdr(&get(&o, "/hello.txt", &[]).await.1, "etag").to_owned();
    let weak = format!("W/{etag}");
    let listed = format!("\"nope\", W/\"x,y\" ,{etag}");
    for inm in [etag.as_str(), weak.as_str(), listed.as_str(), "*"] {
        for method in [Method::GET, Method::HEAD] {
            let (status, h, body) = send(&o, method, "/hello.txt", &[("if-none-match", inm)]).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{inm}");
            assert!(body.is_empty());
            assert_eq!(hdr(&h, "etag"), etag);
            assert_eq!(hdr(&h, "last-modified"), MTIME_HTTP);
        }
    }
    for inm in ["\"nope\"", "garbage", "\"b-0\""] {
        assert_eq!(
            get(&o, "/hello.txt", &[("if-none-match", inm)]).await.0,
            StatusCode::OK,
            "{inm}"
        );
    }
    // Several header lines form one list.
    let hs = [
        ("if-none-match", "\"nope\""),
        ("if-none-match", etag.as_str()),
    ];
    assert_eq!(get(&o, "/hello.txt", &hs).await.0, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn if_modified_since_answers_304() {
    let (_tmp, o) = fixture();
    let (status, h, body) = get(&o, "/hello.txt", &[("if-modified-since", MTIME_HTTP)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(hdr(&h, "last-modified"), MTIME_HTTP);
    assert!(h.contains_key("etag"));
    let later = "Wed, 15 Nov 2023 00:00:00 GMT";
    assert_eq!(
        get(&o, "/hello.txt", &[("if-modified-since", later)])
            .await
            .0,
        StatusCode::NOT_MODIFIED
    );
    let earlier = "Tue, 14 Nov 2023 22:13:19 GMT";
    assert_eq!(
        get(&o, "/hello.txt", &[("if-modified-since", earlier)])
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        get(&o, "/hello.txt", &[("if-modified-since", "yesterday")])
            .await
            .0,
        StatusCode::OK
    );
    // If-None-Match present (and not matching) overrides If-Modified-Since.
    let hs = [
        ("if-none-match", "\"other\""),
        ("if-modified-since", MTIME_HTTP),
    ];
    assert_eq!(get(&o, "/hello.txt", &hs).await.0, StatusCode::OK);
}

#[tokio::test]
async fn single_ranges_answer_206() {
    let (_tmp, o) = fixture();
    for (range, bytes, content_range) in [
        ("bytes=2-5", "2345", "bytes 2-5/10"),
        ("bytes=7-", "789", "bytes 7-9/10"),
        ("bytes=-3", "789", "bytes 7-9/10"),
        ("bytes=5-100", "56789", "bytes 5-9/10"),
        ("bytes=-20", "0123456789", "bytes 0-9/10"),
        ("bytes=0-0", "0", "bytes 0-0/10"),
        ("Bytes=9-99999999999999999999999", "9", "bytes 9-9/10"),
        ("bytes= 1-2 ,", "12", "bytes 1-2/10"),
    ] {
        let (status, h, body) = get(&o, "/digits.txt", &[("range", range)]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(&body[..], bytes.as_bytes(), "{range}");
        assert_eq!(hdr(&h, "content-range"), content_range, "{range}");
        assert_eq!(
            hdr(&h, "content-length"),
            bytes.len().to_string(),
            "{range}"
        );
        assert_eq!(hdr(&h, "content-type"), "text/plain; charset=utf-8");
        assert!(h.contains_key("etag") && h.contains_key("last-modified"));
    }
}

#[tokio::test]
async fn large_ranges_stream_from_the_middle() {
    let (tmp, o) = fixture();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(tmp.path().join("root/big.bin"), &data).unwrap();
    let (status, _, body) = get(&o, "/big.bin", &[("range", "bytes=100000-249999")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&body[..], &data[100_000..250_000]);
    let (status, h, body) = get(&o, "/big.bin", &[]).await;
    assert_eq!(
        (status, hdr(&h, "content-length")),
        (StatusCode::OK, "300000")
    );
    assert_eq!(&body[..], &data[..]);
}

#[tokio::test]
async fn unsatisfiable_ranges_answer_416() {
    let (tmp, o) = fixture();
    for range in [
        "bytes=10-",
        "bytes=10-20",
        "bytes=-0",
        "bytes=99999999999999999999999-",
    ] {
        let (status, h, _) = get(&o, "/digits.txt", &[("range", range)]).await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(hdr(&h, "content-range"), "bytes */10", "{range}");
    }
    fs::write(tmp.path().join("root/zero.txt"), "").unwrap();
    let (status, h, _) = get(&o, "/zero.txt", &[("range", "bytes=0-")]).await;
    assert_eq!(
        (status, hdr(&h, "content-range")),
        (StatusCode::RANGE_NOT_SATISFIABLE, "bytes */0")
    );
    let (status, _, body) = get(&o, "/zero.txt", &[("range", "bytes=-5")]).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 0));
}

#[tokio::test]
async fn multiple_or_invalid_ranges_are_ignored() {
    let (_tmp, o) = fixture();
    for range in [
        "bytes=0-1,3-4",
        "bytes=5-2",
        "bytes=abc",
        "items=0-1",
        "bytes=1",
        "bytes=-",
        "bytes=--1",
        "bytes 0-1",
    ] {
        let (status, h, body) = get(&o, "/digits.txt", &[("range", range)]).await;
        assert_eq!(status, StatusCode::OK, "{range}");
        assert_eq!(&body[..], b"0123456789", "{range}");
        assert!(!h.contains_key("content-range"));
    }
    let hs = [("range", "bytes=0-1"), ("range", "bytes=3-4")];
    assert_eq!(get(&o, "/digits.txt", &hs).await.0, StatusCode::OK);
}

#[tokio::test]
async fn if_range_gates_the_range() {
    let (_tmp, o) = fixture();
    let etag = hdr(&get(&o, "/digits.txt", &[]).await.1, "etag").to_owned();
    let weak = format!("W/{etag}");
    for (if_range, expected) in [
        (etag.as_str(), StatusCode::PARTIAL_CONTENT),
        (MTIME_HTTP, StatusCode::PARTIAL_CONTENT),
        ("\"other\"", StatusCode::OK),
        (weak.as_str(), StatusCode::OK),
        ("Tue, 14 Nov 2023 22:13:21 GMT", StatusCode::OK),
        ("not a date", StatusCode::OK),
    ] {
        let hs = [("range", "bytes=0-3"), ("if-range", if_range)];
        let (status, _, body) = get(&o, "/digits.txt", &hs).await;
        assert_eq!(status, expected, "{if_range}");
        let want: &[u8] = if expected == StatusCode::OK {
            b"0123456789"
        } else {
            b"0123"
        };
        assert_eq!(&body[..], want, "{if_range}");
    }
    // A mismatched If-Range also bypasses 416.
    let hs = [("range", "bytes=50-"), ("if-range", "\"other\"")];
    assert_eq!(get(&o, "/digits.txt", &hs).await.0, StatusCode::OK);
}

#[tokio::test]
async fn head_sends_headers_only() {
    let (_tmp, o) = fixture();
    let (status, h, body) = send(&o, Method::HEAD, "/digits.txt", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(hdr(&h, "content-length"), "10");
    assert_eq!(hdr(&h, "content-type"), "text/plain; charset=utf-8");
    assert!(h.contains_key("etag") && h.contains_key("last-modified"));
    // Range is defined for GET only.
    let (status, h, body) = send(&o, Method::HEAD, "/digits.txt", &[("range", "bytes=0-1")]).await;
    assert_eq!(
        (status, hdr(&h, "content-length"), body.len()),
        (StatusCode::OK, "10", 0)
    );
    assert_eq!(
        send(&o, Method::HEAD, "/missing", &[]).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn other_methods_get_405() {
    let (_tmp, o) = fixture();
    for method in [
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::PATCH,
    ] {
        let (status, h, body) = send(&o, method.clone(), "/hello.txt", &[]).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(hdr(&h, "allow"), "GET, HEAD");
        assert_eq!(&body[..], b"405 Method Not Allowed\n");
    }
    // Checked before the path.
    assert_eq!(
        send(&o, Method::POST, "/missing/x", &[]).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[test]
fn etag_lists_parse() {
    let ours = "\"a-1\"";
    assert!(etag_list_matches("\"a-1\"", ours));
    assert!(etag_list_matches(" W/\"a-1\"", ours));
    assert!(etag_list_matches("\"x\",\t\"a-1\"", ours));
    assert!(etag_list_matches(" * ", ours));
    assert!(!etag_list_matches("\"a-1", ours));
    assert!(!etag_list_matches("a-1", ours));
    assert!(!etag_list_matches("\"a-10\"", ours));
    assert!(!etag_list_matches("", ours));
    assert!(!etag_list_matches("bad, \"a-1\"", ours));
}

#[test]
fn io_errors_map_to_statuses() {
    use io::ErrorKind as K;
    for (kind, status) in [
        (K::NotFound, StatusCode::NOT_FOUND),
        (K::NotADirectory, StatusCode::NOT_FOUND),
        (K::PermissionDenied, StatusCode::FORBIDDEN),
        (K::Other, StatusCode::INTERNAL_SERVER_ERROR),
    ] {
        assert_eq!(io_status(io::Error::from(kind)), status, "{kind:?}");
    }
}

mod agreement {
    //! The behavior a path picks and the file a folder reads for it always agree: a pattern
    //! matches the canonical path exactly when it matches the file's own name below the root.

    use proptest::prelude::*;

    use super::*;
    use crate::cdn::pattern::PathPattern;

    /// Pieces that make paths interesting: separators, dot segments and their escapes,
    /// escaped separators and NUL, double escapes, parameters, non-ASCII and overlong UTF-8.
    const PIECES: &[&str] = &[
        "/",
        "//",
        ".",
        "..",
        "%2e",
        "%2E",
        "%2e%2e",
        "private",
        "%70rivate",
        "priv%61te",
        "secret.txt",
        "images",
        "a.jpg",
        "%2f",
        "%5c",
        "\\",
        "%00",
        "%25",
        "%252e",
        ";x",
        "%3b",
        "$",
        "%24",
        "+x",
        "%2Bx",
        "é",
        "%C3%A9",
        "%c0%ae",
        " ",
        "%20",
        "?",
        "%3F",
    ];

    /// Patterns without `?` (one character of the file name may be a three-byte escape).
    const PATTERNS: &[&str] = &[
        "/private/*",
        "/images/*.jpg",
        "*/secret.txt",
        "/$/*",
        "*+x/*",
        "*",
    ];

    proptest! {
        #[test]
        fn matcher_and_folder_agree(pieces in proptest::collection::vec(0..PIECES.len(), 0..8)) {
            let raw: String = std::iter::once("/")
                .chain(pieces.iter().map(|&i| PIECES[i]))
                .collect();
            let Ok(path) = RequestPath::parse(&raw) else {
                return Ok(());
            };
            let Ok(file) = relative_file(&path) else {
                return Ok(());
            };
            let mut read = format!("/{}", file.to_str().unwrap());
            if path.ends_with_slash() && read != "/" {
                read.push('/');
            }
            for pattern in PATTERNS {
                let pattern = PathPattern::new(pattern).unwrap();
                prop_assert_eq!(
                    pattern.matches(path.as_str()),
                    pattern.matches(&read),
                    "{} (canonical {}) reads {}", raw, path, read
                );
            }
        }
    }
}
