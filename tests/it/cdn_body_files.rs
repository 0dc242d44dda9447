//! Large cached bodies kept in files of their own (`cdn.cache_body_dir`, or memory files
//! without it) and sent with `sendfile` over plain HTTP: every byte arrives, over every
//! protocol, whole, by range and compressed; the folder never shows a file; a folder that
//! cannot hold files stops the start with its path.

use async_compression::tokio::bufread::GzipDecoder;
use edgewise::cdn::CdnServer;
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cdn_harness::*;

/// Bytes no compressor shrinks much and whose every offset is distinct enough that a
/// misplaced slice shows.
fn body(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// A site whose origin serves `/big` (300 KiB, stored for a minute) and `/text` (400 KiB of
/// hex digits, which gzip to about half: still a large body), behind a CDN with `settings`
/// in `[cdn]` and compression on.
async fn big_site(settings: &str) -> (Origin, Cdn, Vec<u8>, String) {
    let big = body(300 * 1024);
    let text: String = big[..200 * 1024]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let origin = Origin::start().await;
    origin.route(
        "/big",
        Reply::ok(big.clone())
            .header("Content-Type", "application/octet-stream")
            .cc("max-age=60"),
    );
    origin.route(
        "/text",
        Reply::ok(text.clone())
            .header("Content-Type", "text/plain")
            .cc("max-age=60"),
    );
    let cdn = Cdn::start(&config(settings, &site(&origin.url(), "compress = true"))).await;
    (origin, cdn, big, text)
}

/// The big object, its ranges and HEAD over every protocol: a miss, then hits that match
/// the origin's bytes exactly.
async fn served_whole_and_by_range(cdn: &Cdn, origin: &Origin, big: &[u8]) {
    let first = cdn.get("/big").plain().send().await;
    assert_eq!(first.status, 200);
    assert_eq!(first.x_cache(), MISS);
    assert!(first.body == big, "the miss carries the origin's bytes");
    for proto in [Proto::Plain, Proto::H1, Proto::H2, Proto::Plain] {
        let hit = cdn.get("/big").proto(proto).send().await;
        assert_eq!(hit.status, 200, "{proto:?}");
        assert_eq!(hit.x_cache(), HIT, "{proto:?}");
        assert_eq!(hit.body.len(), big.len(), "{proto:?}");
        assert!(hit.body == big, "{proto:?}: every byte in place");
    }
    let range = cdn
        .get("/big")
        .plain()
        .header("Range", "bytes=70000-200000")
        .send()
        .await;
    assert_eq!(range.status, 206);
    assert_eq!(
        range.header("content-range"),
        Some(format!("bytes 70000-200000/{}", big.len()).as_str())
    );
    assert!(range.body == big[70000..=200000], "the range's bytes");
    let tail = cdn
        .get("/big")
        .plain()
        .header("Range", "bytes=-10")
        .send()
        .await;
    assert!(tail.body == big[big.len() - 10..], "the last ten bytes");
    let head = cdn.request(Method::HEAD, "/big").plain().send().await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(big.len().to_string().as_str())
    );
    assert!(head.body.is_empty());
    assert_eq!(origin.hits("/big"), 1, "one fill served them all");
}

/// The compressed variant of `/text`, stored once and sent from its file on later hits.
async fn served_compressed(cdn: &Cdn, origin: &Origin, text: &str) {
    for want in [MISS, HIT, HIT] {
        let response = cdn
            .get("/text")
            .plain()
            .header("Accept-Encoding", "gzip")
            .send()
            .await;
        assert_eq!(response.status, 200);
        assert_eq!(response.x_cache(), want);
        assert_eq!(response.header("content-encoding"), Some("gzip"));
        let mut plain = String::new();
        GzipDecoder::new(&response.body[..])
            .read_to_string(&mut plain)
            .await
            .expect("valid gzip");
        assert!(plain == text, "the text, decompressed");
    }
    assert_eq!(origin.hits("/text"), 1);
}

/// How many descriptors of this process are (nameless) files in `folder`.
fn open_files_in(folder: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.parent() == Some(folder))
        .count()
}

/// `edgewise_cdn_mapped_bodies` from /metrics.
async fn mapped_bodies(cdn: &Cdn) -> u64 {
    let metrics = cdn
        .admin(Method::GET, "/metrics", Some(ADMIN_TOKEN), "")
        .await
        .text();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("edgewise_cdn_mapped_bodies "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no mapped-bodies gauge in:\n{metrics}"))
}

#[tokio::test]
async fn large_bodies_in_a_folder_are_served_exactly_and_leave_no_names() {
    let (origin, cdn, big, text) = big_site(r#"cache_body_dir = "bodies""#).await;
    let folder = cdn.dir.path().join("bodies");
    assert!(folder.is_dir(), "the folder is created at start");
    served_whole_and_by_range(&cdn, &origin, &big).await;
    served_compressed(&cdn, &origin, &text).await;
    assert_eq!(open_files_in(&folder), 2, "both bodies live in files there");
    assert_eq!(
        std::fs::read_dir(&folder).unwrap().count(),
        0,
        "the files have no names"
    );
}

#[tokio::test]
async fn large_bodies_in_memory_files_are_served_exactly() {
    let (origin, cdn, big, text) = big_site("").await;
    served_whole_and_by_range(&cdn, &origin, &big).await;
    served_compressed(&cdn, &origin, &text).await;
    // The gauge counts every CDN of this test binary; this one holds at least these two.
    assert!(mapped_bodies(&cdn).await >= 2, "both bodies live in files");
}

#[tokio::test]
async fn a_body_folder_that_is_a_file_stops_the_start_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bodies"), b"not a folder").unwrap();
    let path = dir.path().join("edgewise.toml");
    std::fs::write(
        &path,
        config(
            r#"cache_body_dir = "bodies""#,
            &site("http://127.0.0.1:9", ""),
        ),
    )
    .unwrap();
    let cdn = load_cdn(&path);
    let error = match CdnServer::bind(&cdn) {
        Ok(_) => panic!("a file is no folder for bodies"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("cdn.cache_body_dir") && error.contains(&*dir.path().to_string_lossy()),
        "{error}"
    );
}

#[tokio::test]
async fn viewers_that_reset_mid_body_leave_the_file_whole_and_nothing_open() {
    let (origin, cdn, big, _) = big_site(r#"cache_body_dir = "bodies""#).await;
    let folder = cdn.dir.path().join("bodies");
    assert!(cdn.get("/big").plain().send().await.body == big, "filled");
    let request = b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for _ in 0..20 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        // A small window, so the server is mid-sendfile when the reset comes.
        socket.set_recv_buffer_size(4096).unwrap();
        let mut viewer = socket.connect(cdn.http.unwrap()).await.unwrap();
        viewer.write_all(request).await.unwrap();
        let mut some = [0u8; 2048];
        let n = tokio::time::timeout(TIMEOUT, viewer.read(&mut some))
            .await
            .expect("the first bytes in time")
            .unwrap();
        assert!(n > 0);
        // Linger 0: close sends RST instead of FIN.
        socket2::SockRef::from(&viewer)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(viewer);
    }
    let after = cdn.get("/big").plain().send().await;
    assert_eq!(after.x_cache(), HIT);
    assert!(after.body == big, "the stored body is intact");
    assert_eq!(open_files_in(&folder), 1, "one file, the object's");
    assert_eq!(origin.hits("/big"), 1);
}

#[test]
fn an_empty_body_folder_is_a_config_error_at_its_key() {
    let toml = config(r#"cache_body_dir = """#, &site("http://127.0.0.1:9", ""));
    let (errors, path, _dir) = crate::config_check::errors_of(&toml, &[]);
    let [error] = errors.as_slice() else {
        panic!("one error expected: {errors:?}");
    };
    assert_eq!(error.key_path, "cdn.cache_body_dir");
    assert_eq!(error.file, path);
    assert!(error.to_string().contains("must not be empty"), "{error}");
}
