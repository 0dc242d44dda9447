//! NATS JetStream servers for the tests: Debian's `nats-server`, one or a cluster of three on
//! loopback ports, each with its store in a temp folder; a node can be SIGKILLed and started
//! again on the same store.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::background::Background;
use crate::pebble::free_ports;

/// The longest a node may take to say it is healthy (JetStream ready, a meta leader known).
const READY: Duration = Duration::from_secs(30);

pub struct Nats {
    dir: tempfile::TempDir,
    /// Client, cluster route and monitoring ports of each node.
    ports: Vec<[u16; 3]>,
    nodes: Vec<Option<Background>>,
    /// Appended to every node's config (TLS, users, operator mode).
    extra: String,
}

impl Nats {
    /// `size` nodes (1: a lone server; more: one cluster), each healthy before this returns.
    pub async fn start(size: usize) -> Nats {
        Nats::start_with(size, tempfile::tempdir().expect("temp dir"), "").await
    }

    /// As [`Nats::start`], the nodes' files in `dir` and `extra` added to their config.
    pub async fn start_with(size: usize, dir: tempfile::TempDir, extra: &str) -> Nats {
        let ports = (0..size).map(|_| free_ports::<3>()).collect();
        let mut nats = Nats {
            dir,
            ports,
            nodes: (0..size).map(|_| None).collect(),
            extra: extra.to_owned(),
        };
        for node in 0..size {
            nats.spawn(node);
        }
        for node in 0..size {
            nats.wait_healthy(node).await;
        }
        nats
    }

    /// The servers as `[stream] nats.servers` takes them, TOML array items.
    pub fn servers(&self) -> String {
        let quoted: Vec<String> = self.urls().iter().map(|u| format!("\"{u}\"")).collect();
        quoted.join(", ")
    }

    /// Each node's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|[client, _, _]| format!("nats://127.0.0.1:{client}"))
            .collect()
    }

    /// SIGKILLs node `node` (its store stays).
    pub fn kill(&mut self, node: usize) {
        self.nodes[node] = None;
    }

    /// Starts node `node` again on its store and waits until it is healthy.
    pub async fn restart(&mut self, node: usize) {
        self.spawn(node);
        self.wait_healthy(node).await;
    }

    fn spawn(&mut self, node: usize) {
        let config = self.dir.path().join(format!("n{node}.conf"));
        std::fs::write(&config, self.config(node)).expect("write the nats config");
        let log = self.dir.path().join(format!("n{node}.log"));
        let mut command = Command::new("nats-server");
        command.arg("-c").arg(&config);
        self.nodes[node] = Some(Background::spawn(&mut command, log, "nats-server"));
    }

    fn config(&self, node: usize) -> String {
        let [client, route, monitor] = self.ports[node];
        let store: PathBuf = self.dir.path().join(format!("store{node}"));
        let mut text = format!(
            "server_name: n{node}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\n\
             max_payload: 2MB\njetstream {{ store_dir: \"{}\" }}\n",
            store.display()
        );
        if self.ports.len() > 1 {
            let routes: Vec<String> = self
                .ports
                .iter()
                .map(|[_, route, _]| format!("nats-route://127.0.0.1:{route}"))
                .collect();
            text += &format!(
                "cluster {{ name: edgewise, listen: 127.0.0.1:{route}, routes: [{}] }}\n",
                routes.join(", ")
            );
        }
        text + &self.extra
    }

    /// Polls the node's `/healthz` until it answers ok.
    async fn wait_healthy(&mut self, node: usize) {
        let url = format!("http://127.0.0.1:{}/healthz", self.ports[node][2]);
        let deadline = Instant::now() + READY;
        loop {
            let out = Command::new("curl")
                .args(["-s", "--max-time", "2", &url])
                .output()
                .await
                .expect("curl is installed");
            if String::from_utf8_lossy(&out.stdout).contains("\"ok\"") {
                return;
            }
            let running = self.nodes[node].as_mut().expect("started");
            if let Some(status) = running.exited() {
                panic!("nats-server n{node} exited ({status}):\n{}", running.log());
            }
            assert!(
                Instant::now() < deadline,
                "nats-server n{node} not healthy within {READY:?}:\n{}",
                running.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
