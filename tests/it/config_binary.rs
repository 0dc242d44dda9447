//! `edgewise-dns check --config FILE` and `edgewise-dns --config FILE` on good and bad configs.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use edgewise::config::Config;

use crate::harness::write_files;

pub const BIN: &str = env!("CARGO_BIN_EXE_edgewise-dns");

const VALID: &str = r#"[dns]
listen = ["127.0.0.1:0"]
[[dns.zones]]
name = "zone.test"
records = [
    { name = "@", type = "NS", values = ["ns1.zone.test."] },
    { name = "ns1", type = "A", values = ["192.0.2.1"] },
]
[[dns.zones]]
name = "other.test"
records = [{ name = "@", type = "NS", values = ["ns1.zone.test."] }]
"#;

/// Three independent mistakes.
const INVALID: &str = r#"[dns]
listen = ["nonsense"]
max_udp_payload = 100
[[dns.zones]]
name = "zone.test"
records = [
    { name = "@", type = "NS", values = ["ns1.zone.test."] },
    { name = "ns1", type = "A", values = ["300.1.1.1"] },
]
"#;

/// Runs edgewise-dns to completion, failing if it is still running after `limit`.
pub fn run(args: &[&str], limit: Duration) -> Output {
    run_bin(BIN, args, limit)
}

/// Runs `bin` to completion, failing if it is still running after `limit`.
fn run_bin(bin: &str, args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(bin)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("EDGEWISE_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{bin} {args:?} still running after {limit:?}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn expected_errors(path: &Path) -> Vec<String> {
    match Config::load(path) {
        Ok(_) => panic!("the invalid config loads"),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn check_accepts_a_valid_config_and_says_ok() {
    let (_dir, path) = write_files(VALID, &[]);
    let output = run(
        &["check", "--config", path.to_str().unwrap()],
        Duration::from_secs(10),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("ok"), "says ok: {stdout}");
    assert!(stdout.contains("2 zones"), "counts the zones: {stdout}");
}

#[test]
fn check_rejects_an_invalid_config_printing_every_error() {
    let (_dir, path) = write_files(INVALID, &[]);
    let expected = expected_errors(&path);
    assert_eq!(
        expected.len(),
        3,
        "the fixture has three mistakes: {expected:#?}"
    );
    let output = run(
        &["--config", path.to_str().unwrap(), "check"],
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(64),
        "a bad config: {:?}",
        output.status
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("ok"),
        "must not say ok"
    );
    for error in &expected {
        assert!(
            stderr.contains(error.as_str()),
            "stderr lacks {error:?}:\n{stderr}"
        );
    }
    assert!(
        stderr.contains(&format!("{}:2:", path.display())),
        "file:line of the listen error:\n{stderr}"
    );
}

#[test]
fn server_refuses_to_start_on_an_invalid_config() {
    let (_dir, path) = write_files(INVALID, &[]);
    let expected = expected_errors(&path);
    let output = run(
        &["--config", path.to_str().unwrap()],
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(64),
        "a refused start exits 64: {:?}\n{stderr}",
        output.status
    );
    for error in &expected {
        assert!(
            stderr.contains(error.as_str()),
            "stderr lacks {error:?}:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("listening on"),
        "must not have started:\n{stderr}"
    );
}

// ------------------------------------------------------------------ what a start would touch

const CDN_BIN: &str = env!("CARGO_BIN_EXE_edgewise-cdn");

/// A `[cdn]` with HTTPS and the certificate files `cert` and `key`, a cached-body folder and
/// a `[stream]` with `data_dir`; `dev_certs` is `generate_dev_certs`.
fn cdn_config(dev_certs: bool, cache_body_dir: &str, data_dir: &str) -> String {
    format!(
        r#"[cdn]
https_listen = ["127.0.0.1:0"]
generate_dev_certs = {dev_certs}
cache_body_dir = "{cache_body_dir}"

[[cdn.certs]]
cert = "tls/cert.pem"
key = "tls/key.pem"

[[cdn.distributions]]
id = "site"
hosts = ["localhost"]
[[cdn.distributions.origins]]
id = "o"
url = "http://127.0.0.1:9"
[[cdn.distributions.behaviors]]
path = "*"
origin = "o"

[stream]
listen = ["127.0.0.1:0"]
data_dir = "{data_dir}"
"#
    )
}

/// Every path below `dir`, sorted: to see that a check left nothing behind.
fn tree(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.push(path);
        }
    }
    found.sort();
    found
}

/// Runs `edgewise-cdn --config path` with `args`; (exit code, stdout, stderr).
fn cdn(path: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    run_with_config(CDN_BIN, path, args)
}

/// Runs `bin --config path` with `args`; (exit code, stdout, stderr).
pub fn run_with_config(bin: &str, path: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["--config", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let output = run_bin(bin, &all, Duration::from_secs(10));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts `stderr` reports `message` once, at the position of `needle` in `config` and
/// under `key`.
#[track_caller]
fn assert_reported_once(
    stderr: &str,
    path: &Path,
    config: &str,
    needle: &str,
    key: &str,
    message: &str,
) {
    let (line, col) = crate::config_check::position(config, needle, 0);
    let at = format!("{}:{line}:{col}: {key}: ", path.display());
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(message)).collect();
    assert_eq!(lines.len(), 1, "{message:?} once:\n{stderr}");
    assert!(lines[0].contains(&at), "at {at}:\n{stderr}");
}

#[test]
fn check_and_start_report_unusable_certificates_and_folders_at_their_keys() {
    // Folders below a regular file: unwritable even for root.
    let config = cdn_config(false, "blocker/cache", "blocker/data");
    let (dir, path) = write_files(&config, &[("blocker", "a file, not a folder")]);
    let before = tree(dir.path());
    for args in [&["check"][..], &[]] {
        let (code, stdout, stderr) = cdn(&path, args);
        assert_eq!(code, Some(64), "{args:?} fails:\n{stdout}\n{stderr}");
        assert!(
            !stdout.contains("ok") && !stderr.contains("listening"),
            "{stdout}{stderr}"
        );
        for (needle, key, message) in [
            (
                "\"blocker/data\"",
                "stream.data_dir",
                "blocker/data cannot be a folder to write in: ",
            ),
            (
                "\"blocker/cache\"",
                "cdn.cache_body_dir",
                "blocker/cache cannot",
            ),
            ("\"tls/cert.pem\"", "cdn.certs[0]", "cannot read"),
        ] {
            assert_reported_once(&stderr, &path, &config, needle, key, message);
        }
        assert!(stderr.contains("blocker is not a folder"), "{stderr}");
    }
    assert_eq!(tree(dir.path()), before, "check leaves nothing behind");

    // Garbage, then a key of another certificate.
    let other = rcgen::generate_simple_self_signed(vec!["other.test".to_string()]).unwrap();
    let mine = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let config = cdn_config(false, "cache", "data");
    for (cert, key, message) in [
        (
            "garbage".to_string(),
            "garbage".to_string(),
            "no PEM certificate",
        ),
        (mine.cert.pem(), "garbage".to_string(), "no PEM private key"),
        (
            mine.cert.pem(),
            other.signing_key.serialize_pem(),
            "do not form a usable certificate",
        ),
    ] {
        let (dir, path) = write_files(&config, &[("tls/cert.pem", &cert), ("tls/key.pem", &key)]);
        let (code, stdout, stderr) = cdn(&path, &["check"]);
        assert_eq!(code, Some(64), "{message}:\n{stdout}\n{stderr}");
        assert_reported_once(
            &stderr,
            &path,
            &config,
            "\"tls/cert.pem\"",
            "cdn.certs[0]",
            message,
        );
        assert!(!dir.path().join("data").exists() && !dir.path().join("cache").exists());
    }
    let (dir, path) = write_files(
        &config,
        &[
            ("tls/cert.pem", &mine.cert.pem()),
            ("tls/key.pem", &mine.signing_key.serialize_pem()),
        ],
    );
    let (code, stdout, stderr) = cdn(&path, &["check"]);
    assert_eq!(code, Some(0), "a usable pair:\n{stdout}\n{stderr}");
    assert!(!dir.path().join("data").exists(), "check creates nothing");

    // Dev certificates are written at start: where they go must be writable.
    let config = cdn_config(true, "cache", "data").replace("tls/cert.pem", "blocker/cert.pem");
    let (_dir, path) = write_files(&config, &[("blocker", "a file")]);
    let (code, _, stderr) = cdn(&path, &["check"]);
    assert_eq!(code, Some(64), "{stderr}");
    assert_reported_once(
        &stderr,
        &path,
        &config,
        "\"blocker/cert.pem\"",
        "cdn.certs[0].cert",
        "cannot be written as a development certificate",
    );
}

#[test]
fn an_include_of_a_non_zone_file_is_not_echoed() {
    let config = VALID.replacen(
        "records = [{ name = \"@\", type = \"NS\", values = [\"ns1.zone.test.\"] }]",
        "file = \"other.zone\"",
        1,
    );
    let zone = "$TTL 60\n@ SOA ns1.zone.test. host.zone.test. 1 2 3 4 5\n@ NS ns1.zone.test.\n$INCLUDE secret\n";
    let (_dir, path) = write_files(
        &config,
        &[
            ("other.zone", zone),
            ("secret", "root:$6$secrethash:19000::\nTOKEN = \"s3cr3t\"\n"),
        ],
    );
    let output = run(
        &["--config", path.to_str().unwrap(), "check"],
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("not a zone file"), "{stderr}");
    for secret in ["root", "secrethash", "TOKEN", "s3cr3t"] {
        assert!(!stderr.contains(secret), "{secret} echoed:\n{stderr}");
    }
}

#[test]
fn an_address_in_use_is_reported_once_at_its_listen_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = format!(
        r#"[dns]
listen = ["127.0.0.1:0", "{addr}"]
[[dns.zones]]
name = "zone.test"
records = [{{ name = "@", type = "NS", values = ["ns1.zone.test."] }}]

[cdn]
http_listen = ["{addr}"]
[[cdn.distributions]]
id = "site"
hosts = ["localhost"]
[[cdn.distributions.origins]]
id = "o"
url = "http://127.0.0.1:9"
[[cdn.distributions.behaviors]]
path = "*"
origin = "o"
"#
    );
    let (_dir, path) = write_files(&config, &[]);
    let message = format!("cannot bind {addr}: Address already in use");
    let needle = format!("\"{addr}\"");
    let (code, _, stderr) = cdn(&path, &[]);
    assert_eq!(code, Some(1), "a runtime failure:\n{stderr}");
    let (line, col) = crate::config_check::position(&config, &needle, 1);
    let at = format!("{}:{line}:{col}: cdn.http_listen[0]: ", path.display());
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(&message)).collect();
    assert_eq!(lines.len(), 1, "{message:?} once:\n{stderr}");
    assert!(lines[0].contains(&at), "at {at}:\n{stderr}");

    let dns = run(
        &["--config", path.to_str().unwrap()],
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&dns.stderr);
    assert_eq!(dns.status.code(), Some(1), "{stderr}");
    assert_reported_once(&stderr, &path, &config, &needle, "dns.listen[1]", &message);
    for stderr in [stderr.as_ref(), lines[0]] {
        assert_eq!(
            stderr.matches("Address already in use").count(),
            1,
            "the OS's reason once:\n{stderr}"
        );
    }
    drop(taken);
}

#[test]
fn version_names_each_binary() {
    for (bin, name) in [(BIN, "edgewise-dns"), (CDN_BIN, "edgewise-cdn")] {
        let output = run_bin(bin, &["--version"], Duration::from_secs(10));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.starts_with(&format!("{name} {}", env!("CARGO_PKG_VERSION"))),
            "{stdout}"
        );
    }
}
