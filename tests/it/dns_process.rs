//! The real binary: starts on an ephemeral port, answers, and exits 0 on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType::A;

use crate::config_binary::BIN;
use crate::harness::rcode::NOERROR;
use crate::harness::{a, assert_rcode, assert_rrs, hickory_tcp, q, rr, udp_exchange, write_files};

const CONFIG: &str = r#"[dns]
listen = ["127.0.0.1:0"]
workers = 2
[[dns.zones]]
name = "zone.test"
records = [
    { name = "@", type = "NS", values = ["ns1.zone.test."] },
    { name = "www", type = "A", ttl = 60, values = ["192.0.2.10"] },
]
"#;

/// Removes ANSI escape sequences (CSI ... letter).
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Kills the child if the test fails before it exits.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn binary_serves_on_its_logged_port_and_exits_cleanly_on_sigterm() {
    let (_dir, path) = write_files(CONFIG, &[]);
    let mut child = Command::new(BIN)
        .args(["--config", path.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start edgewise-dns");
    let stderr = child.stderr.take().unwrap();
    let pid = child.id();
    let mut reaper = Reaper(Some(child));

    // Drain stderr on a thread for the whole life of the process; send each line over.
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(strip_ansi(&line)).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr: SocketAddr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines_rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!(
                "no \"listening on udp+tcp\" line within 10 s; log:\n{}",
                log.join("\n")
            )
        });
        log.push(line.clone());
        if let Some(rest) = line.split("listening on udp+tcp ").nth(1) {
            break rest
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("address in {line:?}: {e}"));
        }
    };
    assert_ne!(addr.port(), 0, "a real port: {addr}");

    let want = [rr("www.zone.test.", A, 60, a("192.0.2.10"))];
    let bytes = udp_exchange(addr, &q("www.zone.test.", A).bytes())
        .await
        .expect("UDP answer from the binary");
    let reply = crate::harness::Reply::new("udp", bytes);
    assert_rcode(&reply, NOERROR);
    assert_rrs(
        &reply,
        &reply.answer,
        &want,
        "answer from the binary over UDP",
    );
    let reply = hickory_tcp(addr, "www.zone.test.", A).await;
    assert_rrs(
        &reply,
        &reply.answer,
        &want,
        "answer from the binary over TCP",
    );

    let kill = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success(), "kill -TERM {pid}");
    let child = reaper.0.as_mut().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running 5 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    reaper.0 = None;
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(200)) {
        log.push(line);
    }
    assert!(
        status.success(),
        "exit status after SIGTERM: {status:?}; log:\n{}",
        log.join("\n")
    );
}
