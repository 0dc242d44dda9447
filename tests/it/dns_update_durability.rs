//! Acknowledged updates survive SIGKILL: the real binary takes 1,000 record additions in 100
//! UPDATE messages from one `nsupdate` session (each answered only after its journal entry
//! is on disk), is killed with SIGKILL the moment the last answer arrives, and serves all
//! 1,000 after a restart.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::config_binary::BIN;

const SECRET: &str = "ZHVyYWJsZS1kdXJhYmxlLWR1cmFibGUtZHVyYWJsZQ==";
const UPDATES: u32 = 1_000;
/// Records per UPDATE message (each message is one journal entry and one answer).
const PER_MESSAGE: u32 = 10;

fn config(data: &Path) -> String {
    format!(
        r#"[dns]
listen = ["127.0.0.1:0"]
workers = 1
data_dir = "{}"
[[dns.tsig_keys]]
name = "acme"
secret = "{SECRET}"
[[dns.zones]]
name = "durable.test"
soa = {{ mname = "ns1.durable.test.", rname = "hostmaster.durable.test.", serial = 10 }}
allow_update = [{{ key = "acme", names = ["_acme-challenge.*"], types = ["TXT"] }}]
allow_transfer = ["127.0.0.1"]
records = [{{ name = "@", type = "NS", values = ["ns1.durable.test."] }}]
"#,
        data.display()
    )
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary on `config_path`; the process and the address it logged.
fn start(config_path: &Path) -> (Server, SocketAddr) {
    let mut child = Command::new(BIN)
        .args(["--config", config_path.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start edgewise-dns");
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let (tx, rx) = mpsc::channel::<String>();
    // Drained for the process's whole life: a full pipe would block its logging.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no listening line; log:\n{}", log.join("\n")));
        if let Some(rest) = line.split("listening on udp+tcp ").nth(1) {
            let addr = rest.trim().parse().expect("an address");
            return (server, addr);
        }
        log.push(line);
    }
}

/// The zone as AXFR gives it, one record per line (dig's +short form).
fn transfer(addr: SocketAddr) -> String {
    let output = Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string()])
        .args([
            "+tcp",
            "+short",
            "+time=5",
            "+tries=1",
            "durable.test",
            "AXFR",
        ])
        .output()
        .expect("dig");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_thousand_acknowledged_records_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("edgewise.toml");
    std::fs::write(&config_path, config(&dir.path().join("data"))).unwrap();
    let (mut server, addr) = start(&config_path);

    let mut script = format!("server {} {}\nzone durable.test\n", addr.ip(), addr.port());
    for i in 0..UPDATES {
        script.push_str(&format!(
            "update add _acme-challenge.n{i}.durable.test. 60 TXT \"token-{i}\"\n"
        ));
        if (i + 1) % PER_MESSAGE == 0 {
            script.push_str("send\n");
        }
    }
    let mut nsupdate = Command::new("nsupdate")
        .args(["-y", &format!("hmac-sha256:acme:{SECRET}"), "-t", "10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nsupdate is installed (bind9-dnsutils)");
    std::io::Write::write_all(nsupdate.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
    drop(nsupdate.stdin.take());
    let started = Instant::now();
    let output = nsupdate.wait_with_output().unwrap();
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "every update acknowledged: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Killed at once: no clean shutdown, nothing flushed after the last answer.
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    eprintln!(
        "{} updates of {PER_MESSAGE} records in {elapsed:?} ({:.0}/s, each synced before its answer)",
        UPDATES / PER_MESSAGE,
        f64::from(UPDATES / PER_MESSAGE) / elapsed.as_secs_f64()
    );

    let (_again, addr) = start(&config_path);
    let zone = transfer(addr);
    let tokens = zone.lines().filter(|l| l.starts_with("\"token-")).count();
    assert_eq!(
        tokens, UPDATES as usize,
        "every acknowledged update is served"
    );
    let soa = zone.lines().next().unwrap_or_default();
    assert!(
        soa.contains(&format!(" {} ", 10 + UPDATES / PER_MESSAGE)),
        "serial: {soa}"
    );
}
