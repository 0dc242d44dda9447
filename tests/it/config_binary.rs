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

/// Runs the binary to completion, failing if it is still running after `limit`.
fn run(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("EDGEWISE_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run edgewise-dns");
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "edgewise-dns {args:?} still running after {limit:?}\nstderr:\n{}",
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
    assert!(!output.status.success(), "must fail: {:?}", output.status);
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
    assert!(
        !output.status.success(),
        "must exit non-zero: {:?}\n{stderr}",
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
