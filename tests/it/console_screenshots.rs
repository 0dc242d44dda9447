//! The README's pictures of the console, made the way a user would see it: the README's first
//! command on the example config (ports moved), both consoles open in headless Chromium while
//! dig, curl and Kinesis calls give them 30 s of varied traffic, then screenshots of each
//! console in light and dark mode and at a phone's width.
//!
//! The test checks what the pictures must show (charts with history, the top names, streams
//! with records, no script errors, axes restyled for dark mode) and always writes the PNGs to
//! a temporary folder. `docs/console/refresh.sh` runs it with `EDGEWISE_SCREENSHOTS` set to
//! `docs/console/`, where the README's copies live.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::browser::{Browser, Page};
use crate::readme_first::Readme;

/// Rounds of traffic, one a second: enough history for 15 polls of each chart.
const ROUNDS: u32 = 30;
/// The most rounds run, pictures included.
const MAX_ROUNDS: u32 = 120;
const WAIT: Duration = Duration::from_secs(20);
const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

/// Queries of one round, as `dig -f` lines: a steady base, an `app` wave, some names that do
/// not exist (NXDOMAIN) and some outside every zone (REFUSED).
fn dns_batch(round: u32) -> String {
    let wave = ((f64::from(round) / 5.0).sin() * 10.0 + 12.0) as u32;
    let mut lines = Vec::new();
    let mut add = |count: u32, query: &str| {
        lines.extend((0..count).map(|_| query.to_string()));
    };
    add(20, "www.home.example A");
    add(6, "www.home.example AAAA");
    add(wave, "app.home.example A");
    add(8, "shop.home.example A");
    add(5, "shop.home.example A +subnet=192.168.1.0/24");
    add(4, "pool.home.example A");
    add(3, "home.example MX");
    add(2, "10.1.168.192.in-addr.arpa PTR");
    add(round % 4, "nope.home.example A");
    add(u32::from(round.is_multiple_of(7)), "example.org A");
    lines.join("\n") + "\n"
}

/// Paths of one round, fetched over HTTPS: the page and images (hits after the first), an API
/// whose origin is down (502), a missing file (404) and a private one (403).
fn cdn_paths(round: u32) -> Vec<String> {
    let mut paths = vec!["/".to_string(); 6];
    paths.extend((0..4).map(|i| format!("/images/photo.jpg?w={}", 100 * (1 + i % 3))));
    paths.extend((0..3).map(|_| "/images/gradient.png".to_string()));
    if round.is_multiple_of(3) {
        paths.push("/api/orders".to_string());
    }
    paths.push(format!("/missing-{}", round % 5));
    if round.is_multiple_of(4) {
        paths.push("/private/secret.txt".to_string());
    }
    paths
}

/// Runs `program` with `args`, failing the test (with the servers' log) when it fails.
fn run(readme: &Readme, program: &str, args: &[String]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is installed: {e}"));
    if !output.status.success() {
        readme.fail(&format!("{program} {args:?}: {output:?}"));
    }
}

/// One round of traffic: a `dig` batch, a `curl` run over one connection, a PutRecords.
fn traffic_round(readme: &Readme, batch_file: &Path, round: u32) {
    std::fs::write(batch_file, dns_batch(round)).unwrap();
    let dig: Vec<String> = ["@127.0.0.1", "-p", &readme.ports.dns.to_string()]
        .into_iter()
        .map(str::to_string)
        .chain(["+norec", "+time=2", "+tries=1", "+short", "-f"].map(str::to_string))
        .chain([batch_file.display().to_string()])
        .collect();
    run(readme, "dig", &dig);

    let mut curl: Vec<String> = ["-s", "--max-time", "20", "--cacert"]
        .map(str::to_string)
        .to_vec();
    curl.push(readme.path("certs/dev-cert.pem").display().to_string());
    for path in cdn_paths(round) {
        let url = format!("https://localhost:{}{path}", readme.ports.https);
        curl.extend(["-o".to_string(), "/dev/null".to_string(), url]);
    }
    run(readme, "curl", &curl);

    let records: Vec<String> = (0..5 + round % 6)
        .map(|i| {
            let event = format!(r#"{{"sensor":"hall-{}","celsius":{}}}"#, i % 3, 19 + i % 4);
            let data = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, event);
            format!(r#"{{"Data":"{data}","PartitionKey":"hall-{i}"}}"#)
        })
        .collect();
    let body = format!(
        r#"{{"StreamName":"events","Records":[{}]}}"#,
        records.join(",")
    );
    let put = readme.kinesis(false, "PutRecords", &body);
    if put["FailedRecordCount"] != 0 {
        readme.fail(&format!("PutRecords: {put}"));
    }
}

/// Where the pictures go: always a temporary folder, and `$EDGEWISE_SCREENSHOTS` if set.
fn targets(temp: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![temp.to_path_buf()];
    if let Some(dir) = std::env::var_os("EDGEWISE_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        dirs.push(dir);
    }
    dirs
}

/// Writes the page as `name.png` into each target and checks it is a PNG of some size.
async fn shoot(page: &Page, dirs: &[PathBuf], name: &str) {
    for dir in dirs {
        let path = dir.join(format!("{name}.png"));
        page.screenshot(&path).await;
        let png = std::fs::read(&path).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 20_000,
            "{}: {} bytes",
            path.display(),
            png.len()
        );
    }
}

/// How many points chart `id` has drawn.
async fn points(page: &Page, id: &str) -> u64 {
    let n = page
        .eval(&format!("Edgewise.charts['{id}'].times.length"))
        .await;
    n.as_u64().unwrap_or(0)
}

/// The colour chart `id` draws its x axis in.
async fn axis_colour(page: &Page, id: &str) -> String {
    let colour = page
        .eval(&format!(
            "(() => {{ const u = Edgewise.charts['{id}'].plot; return u.axes[0].stroke(u, 0); }})()"
        ))
        .await;
    colour.as_str().unwrap_or_default().to_string()
}

/// Light, dark and phone pictures of one console; the charts restyle with the scheme.
async fn pictures(page: &Page, dirs: &[PathBuf], console: &str, chart: &str) {
    page.viewport(DESKTOP.0, DESKTOP.1, false).await;
    page.set_dark(false).await;
    // A redraw at the final width before the pictures.
    page.eval("window.dispatchEvent(new Event('resize'))").await;
    shoot(page, dirs, &format!("{console}-light")).await;
    let light = axis_colour(page, chart).await;

    page.set_dark(true).await;
    page.wait_for(
        &format!(
            "(() => {{ const u = Edgewise.charts['{chart}'].plot; \
             return u && u.axes[0].stroke(u, 0) !== '{light}'; }})()"
        ),
        WAIT,
    )
    .await;
    shoot(page, dirs, &format!("{console}-dark")).await;

    page.set_dark(false).await;
    page.viewport(PHONE.0, PHONE.1, true).await;
    page.wait_for(
        "document.documentElement.clientWidth <= 400 \
         && document.documentElement.scrollWidth <= document.documentElement.clientWidth",
        WAIT,
    )
    .await;
    shoot(page, dirs, &format!("{console}-phone")).await;
    page.assert_no_errors();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pictures_from_the_readme_first_command_with_traffic() {
    let readme = Readme::start();
    let browser = Browser::launch().await;
    let dns = browser
        .open(&format!("http://127.0.0.1:{}/", readme.ports.status))
        .await;
    let cdn = browser
        .open(&format!("http://127.0.0.1:{}/", readme.ports.admin))
        .await;
    for page in [&dns, &cdn] {
        page.viewport(DESKTOP.0, DESKTOP.1, false).await;
        page.wait_for("document.body.dataset.kind !== undefined", WAIT)
            .await;
    }

    let temp = tempfile::tempdir().unwrap();
    let batch_file = temp.path().join("queries.txt");
    let dirs = targets(temp.path());
    let rounds = AtomicU32::new(0);
    let done = AtomicBool::new(false);
    let runtime = tokio::runtime::Handle::current();
    // Traffic keeps flowing while the pictures are taken, so their last points are not a
    // drop to zero; the thread stops at `done` or after `MAX_ROUNDS` at most.
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let traffic = scope.spawn(|| {
                for round in 0..MAX_ROUNDS {
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    let started = Instant::now();
                    traffic_round(&readme, &batch_file, round);
                    rounds.store(round + 1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_secs(1).saturating_sub(started.elapsed()));
                }
            });
            let waited = Instant::now();
            while rounds.load(Ordering::Relaxed) < ROUNDS {
                if traffic.is_finished() {
                    // Only a failed round ends it this early: its panic is the test's.
                    std::panic::resume_unwind(traffic.join().unwrap_err());
                }
                assert!(
                    waited.elapsed() < 4 * Duration::from_secs(ROUNDS.into()),
                    "traffic is too slow"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            runtime.block_on(async {
                check_history(&dns, &cdn).await;
                pictures(&dns, &dirs, "dns", "dns-chart").await;
                pictures(&cdn, &dirs, "cdn", "cdn-chart").await;
            });
            done.store(true, Ordering::Relaxed);
        });
    });
}

/// What the pictures are for: history on every chart, names ranked, records browsable.
async fn check_history(dns: &Page, cdn: &Page) {
    for chart in ["dns-chart", "dns-zones-chart"] {
        assert!(points(dns, chart).await >= 8, "{chart} has little history");
    }
    for chart in [
        "cdn-chart",
        "cdn-ratio-chart",
        "cdn-bytes-chart",
        "streams-chart",
    ] {
        assert!(points(cdn, chart).await >= 8, "{chart} has little history");
    }
    dns.wait_for(
        "[...document.getElementById('top-names').tBodies[0].rows]\
         .some((r) => r.cells[0].textContent.startsWith('www.home.example'))",
        WAIT,
    )
    .await;
    cdn.wait_for(
        "[...document.getElementById('records-stream').options].some((o) => o.value === 'events')",
        WAIT,
    )
    .await;
    // Three records: enough to show the browser without a page of them.
    cdn.type_into("#records-limit", "3").await;
    cdn.type_into("#records-stream", "events").await;
    cdn.wait_for(
        "document.querySelectorAll('#records .record').length === 3",
        WAIT,
    )
    .await;
}
