//! The real `edgewise-cdn` binary on a copy of the example config: `check`, then serving on
//! ephemeral ports exercised with curl, then SIGTERM.

use base64::Engine;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::files::copy_dir;

const BIN: &str = env!("CARGO_BIN_EXE_edgewise-cdn");
const LIMIT: Duration = Duration::from_secs(20);

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

/// `config/` copied into a temp folder with an empty `certs/` beside it (the example refers
/// to `../certs/`), every CDN and stream API port rewritten to 0. Returns the folder and the config path.
pub(crate) fn example_copy() -> (tempfile::TempDir, PathBuf) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo.join("config"), &dir.path().join("config"));
    std::fs::create_dir_all(dir.path().join("certs")).unwrap();
    let path = dir.path().join("config/edgewise.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    // Only listen addresses: the example's health checks probe these same ports.
    let rewritten: String = text
        .lines()
        .map(|line| {
            let mut line = line.to_string();
            let key = line.split('=').next().unwrap_or("").trim();
            if key.ends_with("listen") {
                for port in ["8443", "8080", "8081", "4567", "4568"] {
                    line = line.replace(&format!("\"127.0.0.1:{port}\""), "\"127.0.0.1:0\"");
                }
            }
            line + "\n"
        })
        .collect();
    assert_ne!(
        rewritten, text,
        "the example config has the expected CDN ports"
    );
    std::fs::write(&path, rewritten).unwrap();
    (dir, path)
}

/// Runs a command to completion within [`LIMIT`].
fn run(command: &mut Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + LIMIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{command:?} still running after {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

pub(crate) fn curl(args: &[&str]) -> String {
    let output = run(Command::new("curl").args(["--max-time", "10"]).args(args));
    assert!(output.status.success(), "curl {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The status code curl gets for `url` with one extra request header.
fn http_status(url: &str, header: &str) -> String {
    curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        header,
        url,
    ])
}

/// The value of `name` in a curl `-D -` header dump (last response), trimmed.
fn header<'a>(dump: &'a str, name: &str) -> Option<&'a str> {
    dump.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The real binary serving a config, with the ports it printed and its log lines.
pub(crate) struct Server {
    child: Reaper,
    pid: u32,
    lines: mpsc::Receiver<String>,
    pub(crate) https: u16,
    http: u16,
    admin: u16,
    api: u16,
}

impl Server {
    /// Starts edgewise-cdn on `path` and waits for its four listening lines.
    pub(crate) fn start(path: &Path) -> Server {
        let mut child = Command::new(BIN)
            .args(["--config", path.to_str().unwrap()])
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start edgewise-cdn");
        let stderr = child.stderr.take().unwrap();
        let pid = child.id();
        let child = Reaper(Some(child));
        let (lines_tx, lines) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut https, mut http, mut admin, mut api) = (None, None, None, None);
        let deadline = Instant::now() + LIMIT;
        let mut log = Vec::new();
        while https.is_none() || http.is_none() || admin.is_none() || api.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no listening lines within {LIMIT:?}:\n{}", log.join("\n"))
            });
            for (kind, slot) in [
                ("https", &mut https),
                ("http", &mut http),
                ("admin", &mut admin),
                ("stream API http", &mut api),
            ] {
                if let Some(rest) = line.split(&format!("listening on {kind} ")).nth(1) {
                    let addr: std::net::SocketAddr = rest.trim().parse().unwrap();
                    *slot = Some(addr.port());
                }
            }
            log.push(line);
        }
        Server {
            child,
            pid,
            lines,
            https: https.unwrap(),
            http: http.unwrap(),
            admin: admin.unwrap(),
            api: api.unwrap(),
        }
    }

    /// Waits (bounded) for a log line containing `needle`, returning it.
    pub(crate) fn log_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {needle:?} within {LIMIT:?}"),
            }
        }
    }

    /// `kill -HUP` and the like, by pid.
    pub(crate) fn kill(&self, signal: &str) {
        let killed = run(Command::new("kill").args([signal, &self.pid.to_string()]));
        assert!(killed.status.success(), "{killed:?}");
    }

    /// Sends `signal` and waits (bounded) for the process to exit.
    pub(crate) fn signal(mut self, signal: &str) -> std::process::ExitStatus {
        self.kill(signal);
        let mut child = self.child.0.take().unwrap();
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("edgewise-cdn still running {LIMIT:?} after {signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True while the process has not exited.
    fn running(&mut self) -> bool {
        let child = self.child.0.as_mut().unwrap();
        child.try_wait().unwrap().is_none()
    }
}

#[test]
fn check_accepts_the_example_config() {
    let (_dir, path) = example_copy();
    let output = run(Command::new(BIN).args(["--config", path.to_str().unwrap(), "check"]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains(": ok (1 distributions, 4 streams)"),
        "{stdout}"
    );
    assert!(
        !path
            .parent()
            .unwrap()
            .join("../certs/dev-cert.pem")
            .exists(),
        "check writes nothing"
    );
}

#[test]
fn check_rejects_a_broken_config_with_exit_status_64() {
    let (dir, path) = example_copy();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("origin = \"files\"", "origin = \"nowhere\""),
    )
    .unwrap();
    let output = run(Command::new(BIN).args(["--config", path.to_str().unwrap(), "check"]));
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no origin or origin group has id \"nowhere\""),
        "{stderr}"
    );
    drop(dir);
}

#[test]
fn the_binary_serves_the_example_over_https_and_http_and_exits_cleanly_on_sigterm() {
    let (dir, path) = example_copy();
    let server = Server::start(&path);
    let (https, http) = (server.https, server.http);
    assert!(
        dir.path().join("certs/dev-cert.pem").is_file(),
        "the dev cert was written"
    );

    let url = format!("https://localhost:{https}/");
    let first = curl(&["-sk", &url, "-o", "/dev/null", "-D", "-"]);
    assert!(
        first.starts_with("HTTP/2 200"),
        "curl negotiates h2 by ALPN: {first}"
    );
    assert_eq!(
        header(&first, "x-cache"),
        Some("Miss from edgewise"),
        "{first}"
    );
    let second = curl(&["-sk", &url, "-o", "/dev/null", "-D", "-"]);
    assert_eq!(
        header(&second, "x-cache"),
        Some("Hit from edgewise"),
        "{second}"
    );
    assert!(header(&second, "age").is_some(), "{second}");

    // The address the start line prints answers too (not 421).
    let printed = curl(&[
        "-sk",
        &format!("https://127.0.0.1:{https}/"),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ]);
    assert_eq!(printed, "200");
    let index = std::fs::read_to_string(dir.path().join("config/www/index.html")).unwrap();
    let h2 = curl(&[
        "-sk",
        "--http2",
        "--compressed",
        &url,
        "-w",
        "\n%{http_version} %{http_code}",
    ]);
    let (body, status) = h2.rsplit_once('\n').unwrap();
    assert_eq!(status, "2 200");
    assert_eq!(body, index, "curl decoded the compressed page");
    let encoded = curl(&[
        "-sk",
        "--http2",
        "--compressed",
        &url,
        "-o",
        "/dev/null",
        "-D",
        "-",
    ]);
    let encoding = header(&encoded, "content-encoding");
    assert!(matches!(encoding, Some("br") | Some("gzip")), "{encoded}");

    let redirect = curl(&[
        "-s",
        &format!("http://localhost:{http}/a?b=c"),
        "-o",
        "/dev/null",
        "-D",
        "-",
    ]);
    assert!(redirect.starts_with("HTTP/1.1 301"), "{redirect}");
    assert_eq!(
        header(&redirect, "location"),
        Some(format!("https://localhost:{https}/a?b=c").as_str())
    );

    // A large object: cached in a nameless file under the example's cache_body_dir.
    let large: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("config/www/images/large.jpg"), &large).unwrap();
    let large_url = format!("https://localhost:{https}/images/large.jpg");
    let saved = dir.path().join("large.jpg");
    for want in ["Miss from edgewise", "Hit from edgewise"] {
        let dump = curl(&["-sk", &large_url, "-o", saved.to_str().unwrap(), "-D", "-"]);
        assert_eq!(header(&dump, "x-cache"), Some(want), "{dump}");
        assert!(
            std::fs::read(&saved).unwrap() == large,
            "the object's bytes"
        );
    }
    assert!(
        dir.path().join("data/cdn-bodies").is_dir(),
        "cache_body_dir resolved against the config file's folder"
    );

    let secret = std::fs::read_to_string(dir.path().join("config/www/private/secret.txt")).unwrap();
    private_spellings_are_refused(https, &secret);
    stream_api_end_to_end(server.api);

    assert_eq!(
        server.signal("-TERM").code(),
        Some(0),
        "exit status after SIGTERM"
    );
}

#[test]
fn sighup_applies_an_edited_config_and_keeps_the_old_one_when_the_edit_is_broken() {
    let (_dir, path) = example_copy();
    let mut server = Server::start(&path);
    let started = server.log_line("serving distribution media");
    assert!(started.contains("behaviors=4"), "{started}");
    let admin = server.admin;
    // A token-only admin page: 404 (no such page) once the token is accepted, else 401.
    // (Metrics would not tell: loopback reads them without a token.)
    let admin_with = |token: &str| {
        http_status(
            &format!("http://127.0.0.1:{admin}/token-check"),
            &format!("Authorization: Bearer {token}"),
        )
    };
    let new_host =
        |http: u16| http_status(&format!("http://127.0.0.1:{http}/"), "Host: reloaded.test");
    assert_eq!(admin_with("change-me"), "404");
    assert_eq!(
        new_host(server.http),
        "404",
        "not a distribution's host yet"
    );

    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text
        .replace(
            "admin_token = \"change-me\"",
            "admin_token = \"rotated-token\"",
        )
        .replace(
            "hosts = [\"media.home.example\",",
            "hosts = [\"reloaded.test\", \"media.home.example\",",
        );
    assert_ne!(edited, text);
    std::fs::write(&path, &edited).unwrap();
    server.kill("-HUP");
    server.log_line("config reloaded from");
    assert!(server.running(), "SIGHUP does not stop the process");
    assert_eq!(admin_with("rotated-token"), "404", "the new admin token");
    assert_eq!(admin_with("change-me"), "401", "the old admin token");
    assert_eq!(new_host(server.http), "301", "the added host is served");

    std::fs::write(
        &path,
        edited.replace("origin = \"files\"", "origin = \"nowhere\""),
    )
    .unwrap();
    server.kill("-HUP");
    server.log_line("refused, the running config keeps serving");
    server.log_line("no origin or origin group has id \"nowhere\"");
    assert!(
        server.running(),
        "a broken config does not stop the process"
    );
    assert_eq!(
        admin_with("rotated-token"),
        "404",
        "the previous config serves"
    );
    assert_eq!(new_host(server.http), "301");
    let page = curl(&[
        "-sk",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("https://localhost:{}/", server.https),
    ]);
    assert_eq!(page, "200");
    assert_eq!(server.signal("-TERM").code(), Some(0));
}

/// The example's `/private/*` behavior needs a signature: curl `--path-as-is` spellings of the
/// protected file get 403 or 400, over HTTP/1.1 and HTTP/2, never the file.
fn private_spellings_are_refused(https: u16, secret: &str) {
    for (path, wanted) in [
        ("/private/secret.txt", "403"),
        ("//private/secret.txt", "403"),
        ("/%70rivate/secret.txt", "403"),
        ("/./private/secret.txt", "403"),
        ("/%2e/private/secret.txt", "403"),
        ("/%2fprivate/secret.txt", "400"),
        ("/private%2fsecret.txt", "400"),
    ] {
        for version in ["--http1.1", "--http2"] {
            let url = format!("https://localhost:{https}{path}");
            let answer = curl(&["-sk", "--path-as-is", version, &url, "-w", "\n%{http_code}"]);
            let (body, status) = answer.rsplit_once('\n').unwrap();
            assert_eq!(status, wanted, "{path} {version}: {body}");
            assert!(
                !body.contains(secret.trim()),
                "{path} {version} served: {body}"
            );
        }
    }
}

/// One Kinesis call with curl's SigV4 signing, as the example's access key.
fn kinesis(api: u16, operation: &str, body: &str) -> serde_json::Value {
    let text = curl(&[
        "-s",
        "--aws-sigv4",
        "aws:amz:us-east-1:kinesis",
        "--user",
        "AKIDEDGEWISE:change-me-too",
        "-H",
        "Content-Type: application/x-amz-json-1.1",
        "-H",
        &format!("X-Amz-Target: Kinesis_20131202.{operation}"),
        "--data-binary",
        body,
        &format!("http://127.0.0.1:{api}/"),
    ]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{operation}: {e}: {text}"))
}

/// The example's stream API: NDJSON ingest signed by curl, and the CDN requests above
/// arriving as real-time log records on `cdn-logs`.
fn stream_api_end_to_end(api: u16) {
    let ingest = curl(&[
        "-s",
        "--aws-sigv4",
        "aws:amz:us-east-1:kinesis",
        "--user",
        "AKIDEDGEWISE:change-me-too",
        "--data-binary",
        "{\"user\":\"ann\"}\n{\"user\":\"bob\"}\n",
        &format!("http://127.0.0.1:{api}/ingest/events?partition_key=user"),
    ]);
    assert!(ingest.contains("\"count\":2"), "{ingest}");
    let deadline = Instant::now() + LIMIT;
    loop {
        let mut lines = Vec::new();
        let shards = kinesis(api, "ListShards", r#"{"StreamName":"cdn-logs"}"#);
        for shard in shards["Shards"].as_array().expect("Shards") {
            let iterator = kinesis(
                api,
                "GetShardIterator",
                &format!(
                    r#"{{"StreamName":"cdn-logs","ShardId":{},"ShardIteratorType":"TRIM_HORIZON"}}"#,
                    shard["ShardId"]
                ),
            );
            let records = kinesis(
                api,
                "GetRecords",
                &format!(r#"{{"ShardIterator":{}}}"#, iterator["ShardIterator"]),
            );
            for record in records["Records"].as_array().expect("Records") {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(record["Data"].as_str().unwrap())
                    .unwrap();
                lines.push(String::from_utf8(data).unwrap());
            }
        }
        // Five requests above went through the CDN: two misses/hits, two compressed, one redirect.
        if lines.len() >= 5 {
            assert!(
                lines
                    .iter()
                    .all(|l| l.ends_with('\n') && l.split('\t').count() == 15),
                "{lines:?}"
            );
            assert!(lines.iter().any(|l| l.contains("\t301\t")), "{lines:?}");
            assert!(lines.iter().any(|l| l.contains("\tHit\t")), "{lines:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "real-time log records within {LIMIT:?}: {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
