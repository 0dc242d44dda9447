//! The real `edgewise-cdn` binary serving only `[stream]`, as a process that tests SIGKILL
//! and restart on the same data folder; the client is the harness's [`Client`].

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_edgewise-cdn");
/// Starting and stopping: each is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(20);

/// The running binary; SIGKILLed if a test fails while it runs.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Server {
    /// `edgewise-cdn --config <config>`.
    pub fn start(config: &Path) -> Server {
        let mut command = Command::new(BIN);
        command.arg("--config").arg(config);
        Server::spawn(command)
    }

    /// Runs `command` (the binary, perhaps wrapped), waits for its "stream API listening"
    /// line and parses the address from it.
    pub fn spawn(mut command: Command) -> Server {
        let mut child = command
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("EDGEWISE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start edgewise-cdn");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut server = Server {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
            reader: Some(reader),
        };
        let deadline = Instant::now() + LIMIT;
        loop {
            let found = server.lines.lock().unwrap().iter().find_map(|line| {
                let rest = line.split("listening on stream API http ").nth(1)?;
                rest.trim().parse::<SocketAddr>().ok()
            });
            if let Some(addr) = found {
                server.addr = addr;
                return server;
            }
            if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                server.join_reader();
                panic!(
                    "edgewise-cdn exited ({status}) before listening:\n{}",
                    server.stderr()
                );
            }
            if Instant::now() > deadline {
                server.kill();
                panic!(
                    "edgewise-cdn not listening within {LIMIT:?}:\n{}",
                    server.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Everything logged so far (all of it once the process has exited).
    pub fn stderr(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn join_reader(&mut self) {
        // The pipe closes when the process exits; bounded in case a grandchild holds it.
        if let Some(reader) = self.reader.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }

    /// SIGKILL, and reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.join_reader();
        }
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.join_reader();
                panic!(
                    "edgewise-cdn still running {LIMIT:?} after SIGTERM:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.join_reader();
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes `text` as `edgewise.toml` in `dir`; returns its path.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("edgewise.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The segment files of a shard, oldest first.
pub fn segments(data_dir: &Path, stream: &str, shard: u32) -> Vec<PathBuf> {
    let dir = data_dir.join(format!("streams/{stream}/shard-{shard:06}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
}

/// One frame of a segment file: its byte position, length and record offset.
#[derive(Debug, Clone, Copy)]
pub struct FrameAt {
    pub position: u64,
    pub len: u64,
    pub offset: u64,
}

/// Walks the frames of an undamaged segment (12-byte header with the body length at 4..8;
/// the body starts with the offset).
pub fn frames(path: &Path) -> Vec<FrameAt> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        assert_eq!(bytes[pos..pos + 2], [0xEB, 0x5C], "frame magic at {pos}");
        let body = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let offset = u64::from_le_bytes(bytes[pos + 12..pos + 20].try_into().unwrap());
        out.push(FrameAt {
            position: pos as u64,
            len: (12 + body) as u64,
            offset,
        });
        pos += 12 + body;
    }
    assert_eq!(pos, bytes.len(), "{} ends inside a frame", path.display());
    out
}

/// Polls `done` every 50 ms until it holds, failing the test after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sighup_reloads_an_edgewise_cdn_that_serves_only_streams() {
    let dir = tempfile::tempdir().unwrap();
    let one = "[[stream.streams]]\nname = \"s\"\nshards = 1\n";
    let path = write_config(dir.path(), &crate::stream_harness::config("", one));
    let mut server = Server::start(&path);
    let two = format!("{one}[[stream.streams]]\nname = \"t\"\nshards = 1\n");
    write_config(dir.path(), &crate::stream_harness::config("", &two));
    let pid = server.pid().to_string();
    let sent = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(sent.success(), "kill -HUP {pid}");
    wait_for("the reload's log line", LIMIT, || {
        server.stderr().contains("config reloaded from")
    })
    .await;
    let body = serde_json::json!({"StreamName": "t", "PartitionKey": "k", "Data": "aGk="});
    let out = crate::stream_harness::Client::new(server.addr)
        .call("PutRecord", &body)
        .await
        .unwrap_or_else(|e| panic!("PutRecord to the stream the reload added: {e:?}"));
    assert_eq!(out["ShardId"], "shardId-000000000000");
    let status = server.terminate();
    assert!(status.success(), "{status}:\n{}", server.stderr());
}
