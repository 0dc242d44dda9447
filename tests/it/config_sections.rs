//! Each binary checks, starts and reloads on its own sections: a broken `[cdn]` stops neither
//! `edgewise-dns check` nor edgewise-dns serving and reloading, but `check --all` and
//! edgewise-cdn report it; the same the other way round for a broken `[dns]`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use edgewise::config::{Config, Sections};

use crate::config_binary::{BIN as DNS_BIN, run_with_config as run};
use crate::harness::write_files;

const CDN_BIN: &str = env!("CARGO_BIN_EXE_edgewise-cdn");

const DNS_OK: &str = r#"[dns]
listen = ["127.0.0.1:0"]
workers = 1
[[dns.zones]]
name = "zone.test"
records = [
    { name = "@", type = "NS", values = ["ns1.zone.test."] },
    { name = "www", type = "A", values = ["192.0.2.10"] },
]
"#;

/// An unknown key and a bad value: one structural error, one value error.
const DNS_BROKEN: &str = r#"[dns]
listen = ["127.0.0.1:0"]
lisen = ["127.0.0.1:53"]
tcp_idle_timeout = "ten seconds"
"#;

const CDN_OK: &str = r#"[cdn]
http_listen = ["127.0.0.1:0"]
[[cdn.distributions]]
id = "site"
hosts = ["localhost"]
[[cdn.distributions.origins]]
id = "o"
url = "http://127.0.0.1:9"
[[cdn.distributions.behaviors]]
path = "*"
origin = "o"
"#;

/// An unknown key and a bad value: one structural error, one value error.
const CDN_BROKEN: &str = r#"[cdn]
http_listen = ["127.0.0.1:0"]
cache_sise = "1MiB"
header_timeout = "soon"
"#;

/// Asserts `check` passes with `passes`' scope and fails, naming each of `keys`, with the
/// others.
#[track_caller]
fn assert_checks(path: &Path, passes: (&str, &[&str]), fail: &[(&str, &[&str])], keys: &[&str]) {
    let (code, stdout, stderr) = run(passes.0, path, passes.1);
    assert_eq!(code, Some(0), "{passes:?} passes:\n{stdout}{stderr}");
    assert!(stdout.contains("ok"), "{passes:?} says ok: {stdout}");
    for (bin, args) in fail {
        let (code, _, stderr) = run(bin, path, args);
        assert_eq!(code, Some(64), "{bin} {args:?} refuses:\n{stderr}");
        for key in keys {
            assert!(
                stderr.contains(key),
                "{bin} {args:?} names {key}:\n{stderr}"
            );
        }
    }
}

/// A running binary and its log lines, killed when dropped.
struct Running(Child, mpsc::Receiver<String>);

impl Running {
    /// Whether it still runs, and the log lines written since it said it listens.
    fn state(&mut self) -> String {
        let status = self.0.try_wait().ok().flatten();
        let lines: Vec<String> = self.1.try_iter().collect();
        format!("exited: {status:?}; log:\n{}", lines.join("\n"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bin --config path` and waits for its `listening on {kind} ADDR` log line.
fn start(bin: &str, path: &Path, kind: &str) -> (Running, SocketAddr) {
    let mut child = Command::new(bin)
        .args(["--config", path.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .env_remove("EDGEWISE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin}: {e}"));
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let running = Running(child, lines_rx);
    let needle = format!("listening on {kind} ");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = running.1.recv_timeout(left) else {
            panic!(
                "{bin}: no {needle:?} line in 10 s; log:\n{}",
                log.join("\n")
            );
        };
        if let Some(rest) = line.split(&needle).nth(1) {
            let addr = rest
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{line:?}: {e}"));
            return (running, addr);
        }
        log.push(line);
    }
}

/// `dig +short` for `name` A at `addr`.
fn dig(addr: SocketAddr, name: &str) -> String {
    let output = Command::new("dig")
        .args([
            "+short",
            "+time=2",
            "+tries=1",
            "-p",
            &addr.port().to_string(),
        ])
        .arg(format!("@{}", addr.ip()))
        .args([name, "A"])
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn a_broken_cdn_section_stops_neither_dns_check_nor_dns_serving_and_reloading() {
    let text = format!("{DNS_OK}\n{CDN_BROKEN}");
    let (_dir, path) = write_files(&text, &[]);
    let keys: &[&str] = &["`cache_sise`", "cdn.header_timeout"];
    assert_checks(
        &path,
        (DNS_BIN, &["check"]),
        &[
            (DNS_BIN, &["check", "--all"]),
            (CDN_BIN, &["check"]),
            (CDN_BIN, &[]),
        ],
        keys,
    );

    let (mut running, addr) = start(DNS_BIN, &path, "udp+tcp");
    assert_eq!(
        dig(addr, "www.zone.test"),
        "192.0.2.10",
        "serves with [cdn] broken"
    );
    // A reload reads the same sections as the start: the edit applies, [cdn] still broken.
    std::fs::write(&path, text.replace("192.0.2.10", "192.0.2.20")).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &running.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(hup.success(), "kill -HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while dig(addr, "www.zone.test") != "192.0.2.20" {
        assert!(
            Instant::now() < deadline,
            "the reload applies with [cdn] broken; {}",
            running.state()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_broken_dns_section_stops_neither_cdn_check_nor_cdn_serving() {
    let text = format!("{CDN_OK}\n{DNS_BROKEN}");
    let (_dir, path) = write_files(&text, &[]);
    let keys: &[&str] = &["`lisen`", "dns.tcp_idle_timeout"];
    assert_checks(
        &path,
        (CDN_BIN, &["check"]),
        &[
            (CDN_BIN, &["check", "--all"]),
            (DNS_BIN, &["check"]),
            (DNS_BIN, &[]),
        ],
        keys,
    );

    let (_running, addr) = start(CDN_BIN, &path, "http");
    let mut conn = TcpStream::connect(addr).expect("connect to the CDN");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    assert!(
        reply.starts_with("HTTP/1.1 "),
        "answers HTTP with [dns] broken: {reply:?}"
    );
}

/// What the reloads call: each scope reads its own sections, and a name no binary knows is
/// everyone's mistake.
#[test]
fn each_scope_reports_its_own_sections_and_unknown_ones() {
    let (_dir, path) = write_files(&format!("{DNS_BROKEN}\n{CDN_BROKEN}\n[dsn]\n"), &[]);
    let errors = |sections| match Config::load_sections(&path, sections) {
        Ok(_) => panic!("{sections:?}: the unknown [dsn] is reported"),
        Err(errors) => errors.to_string(),
    };
    let dns = ["`lisen`", "dns.tcp_idle_timeout"];
    let cdn = ["`cache_sise`", "cdn.header_timeout"];
    let all = errors(Sections::All);
    for key in dns.iter().chain(&cdn).chain(&["dsn"]) {
        assert!(all.contains(key), "--all reports {key}:\n{all}");
    }
    for (sections, own, other) in [(Sections::Dns, dns, cdn), (Sections::Cdn, cdn, dns)] {
        let found = errors(sections);
        for key in own.iter().chain(&["dsn"]) {
            assert!(found.contains(key), "{sections:?} reports {key}:\n{found}");
        }
        for key in other {
            assert!(!found.contains(key), "{sections:?} skips {key}:\n{found}");
        }
    }
}
