//! Tiered caching: edges with a `parent` fill from another edgewise-cdn, which fills once
//! from the origin for all of them (its collapsing included), and say so in `X-Cache`.

use crate::cdn_harness::*;

/// An edge in front of `parent` (HTTPS, trusting its development certificate).
async fn edge_of(parent: &Cdn, origin: &Origin) -> Cdn {
    let ca = parent.dir.path().join("certs/cert.pem");
    let keys = format!(
        "parent = \"https://127.0.0.1:{}\"\nparent_ca = \"{}\"",
        parent.https_port(),
        ca.display()
    );
    Cdn::start(&config("", &site_with(&origin.url(), &keys))).await
}

/// Distribution "site" in front of `url`, with distribution keys `keys`.
fn site_with(url: &str, keys: &str) -> String {
    site_keys(url, keys, "")
}

#[tokio::test]
async fn edges_fill_from_the_parent_which_fills_once_from_the_origin() {
    let origin = Origin::start().await;
    origin.route("/a", Reply::ok("from the origin").cc("max-age=60"));
    let parent = Cdn::site(&origin, "").await;
    let (east, west) = (
        edge_of(&parent, &origin).await,
        edge_of(&parent, &origin).await,
    );

    let first = east.get("/a").send().await;
    assert_eq!(
        (first.status, first.text().as_str()),
        (200, "from the origin")
    );
    assert_eq!(first.x_cache(), MISS, "neither tier had it");
    assert_eq!(east.get("/a").send().await.x_cache(), HIT);
    let other = west.get("/a").h2().send().await;
    assert_eq!(other.x_cache(), "Hit from parent");
    assert_eq!(other.text(), "from the origin");
    assert_eq!(west.get("/a").send().await.x_cache(), HIT);
    assert_eq!(origin.hits("/a"), 1, "one origin fill for both edges");
    // The parent named the distribution's host, not its address.
    assert_eq!(parent.get("/a").send().await.x_cache(), HIT);
}

#[tokio::test]
async fn concurrent_misses_from_several_edges_make_one_origin_request() {
    let origin = Origin::start().await;
    origin.route(
        "/slow",
        Reply::ok("slow body").cc("max-age=60").delay_ms(300),
    );
    let parent = Cdn::site(&origin, "").await;
    let edges = [
        edge_of(&parent, &origin).await,
        edge_of(&parent, &origin).await,
        edge_of(&parent, &origin).await,
    ];
    let requests = edges
        .iter()
        .flat_map(|edge| (0..4).map(move |_| edge.get("/slow").send()));
    let responses = futures_util::future::join_all(requests).await;
    for response in &responses {
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "slow body")
        );
    }
    assert_eq!(origin.hits("/slow"), 1);
}

#[tokio::test]
async fn a_parent_with_an_untrusted_certificate_is_a_502_not_a_bypass() {
    let origin = Origin::start().await;
    origin.route("/a", Reply::ok("secret").cc("max-age=60"));
    let parent = Cdn::site(&origin, "").await;
    let keys = format!("parent = \"https://127.0.0.1:{}\"", parent.https_port());
    let edge = Cdn::start(&config("", &site_with(&origin.url(), &keys))).await;
    let response = edge.get("/a").send().await;
    assert_eq!(response.status, 502, "{}", response.text());
    assert_eq!(
        origin.hits("/a"),
        0,
        "the edge never goes around its parent"
    );
}

#[tokio::test]
async fn check_names_each_bad_parent_key() {
    for (keys, key, why) in [
        (
            r#"parent = "regional:8443""#,
            "parent",
            "needs a scheme and host",
        ),
        (
            r#"parent = "ftp://regional""#,
            "parent",
            "must be http:// or https://",
        ),
        (
            r#"parent = "https://regional/path""#,
            "parent",
            "no path or query",
        ),
        (r#"parent_ca = "ca.pem""#, "parent_ca", "needs parent"),
        (
            "parent = \"http://regional\"\nparent_ca = \"ca.pem\"",
            "parent_ca",
            "is for an https:// parent",
        ),
        (
            "parent = \"https://regional\"\nparent_ca = \"missing.pem\"",
            "parent_ca",
            "is not a readable file",
        ),
    ] {
        let toml = config("", &site_with("http://127.0.0.1:9", keys));
        let (code, stderr) = check_config(&toml, &[("ca.pem", "")]).await;
        assert_eq!(code, Some(64), "{keys}: {stderr}");
        let named = format!("cdn.distributions[0].{key}");
        assert!(
            stderr.contains(&named) && stderr.contains(why),
            "{keys}: {stderr}"
        );
    }
}

/// An edgewise-cdn process serving `toml` (written into `dir`), and its HTTPS port from the
/// line it logs; killed when the test ends.
struct Process {
    _child: tokio::process::Child,
    https: u16,
}

impl Process {
    async fn start(dir: &std::path::Path, toml: &str) -> Process {
        let path = dir.join("edgewise.toml");
        std::fs::write(&path, toml).unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgewise-cdn"))
            .args(["--config", path.to_str().unwrap()])
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start edgewise-cdn");
        let stderr = child.stderr.take().unwrap();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
        let https = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.split("listening on https ").nth(1) {
                    let addr: std::net::SocketAddr = rest.trim().parse().unwrap();
                    return addr.port();
                }
            }
            panic!("edgewise-cdn exited before listening");
        })
        .await
        .expect("an HTTPS listener within 20 s");
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Process {
            _child: child,
            https,
        }
    }
}

/// `X-Cache` of a GET through curl, with `ca` trusted and site.test at 127.0.0.1:`port`.
async fn curl_x_cache(port: u16, ca: &std::path::Path, path: &str) -> (String, String) {
    let text = curl_site(port, ca, path, &[]).await;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let x_cache = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("x-cache: ")
                .or_else(|| l.strip_prefix("X-Cache: "))
        })
        .unwrap_or("none")
        .to_string();
    (x_cache, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_and_curl_see_the_tiers() {
    let origin = Origin::start().await;
    origin.route("/t", Reply::ok("tiered").cc("max-age=60"));
    let (parent_dir, edge_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let parent = Process::start(parent_dir.path(), &config("", &site(&origin.url(), ""))).await;
    let parent_ca = parent_dir.path().join("certs/cert.pem");
    let keys = format!(
        "parent = \"https://127.0.0.1:{}\"\nparent_ca = \"{}\"",
        parent.https,
        parent_ca.display()
    );
    let edge = Process::start(
        edge_dir.path(),
        &config("", &site_with(&origin.url(), &keys)),
    )
    .await;
    let edge_ca = edge_dir.path().join("certs/cert.pem");
    // Warm the parent alone, then the edge fills from it.
    let warm = curl_x_cache(parent.https, &parent_ca, "/t").await;
    assert_eq!(
        warm,
        ("Miss from edgewise".to_string(), "tiered".to_string())
    );
    let first = curl_x_cache(edge.https, &edge_ca, "/t").await;
    assert_eq!(first, ("Hit from parent".to_string(), "tiered".to_string()));
    let again = curl_x_cache(edge.https, &edge_ca, "/t").await;
    assert_eq!(again.0, "Hit from edgewise");
    assert_eq!(origin.hits("/t"), 1);
}
