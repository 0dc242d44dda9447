//! `[stream] backend` and `nats = { ... }`: the stream log kept by a NATS JetStream cluster.

use toml::Spanned;

use super::diag::{ConfigError, SourceMap};
use super::raw::{RawNats, RawStream};

/// Where the stream log's records are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Segment files under `data_dir`, on this box.
    Local,
    /// A JetStream cluster; `data_dir` holds this process's mirror of it.
    Nats(NatsConfig),
}

/// How to reach the cluster and how many copies it keeps.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// `nats://host:port` URLs of cluster members; the client fails over among them.
    pub servers: Vec<String>,
    /// Copies of each record (JetStream's R1..R5); a put is acknowledged once a quorum has it.
    pub replicas: usize,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("servers", &self.servers)
            .field("replicas", &self.replicas)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

pub(super) fn validate(raw: &RawStream, map: &SourceMap, errors: &mut Vec<ConfigError>) -> Backend {
    let backend = raw.backend.as_ref().map(|b| b.get_ref().as_str());
    match (backend, &raw.nats) {
        (None | Some("local"), None) => Backend::Local,
        (None | Some("local"), Some(nats)) => {
            errors.push(map.error(
                nats.span(),
                "stream.nats",
                "nats is read with backend = \"nats\" only",
            ));
            Backend::Local
        }
        (Some("nats"), Some(nats)) => {
            nats_config(nats, map, errors).map_or(Backend::Local, Backend::Nats)
        }
        (Some("nats"), None) => {
            let span = raw.backend.as_ref().map_or(0..0, Spanned::span);
            errors.push(map.error(
                span,
                "stream.nats",
                "backend = \"nats\" needs nats = { servers = [\"nats://...\"] }",
            ));
            Backend::Local
        }
        (Some(other), _) => {
            let span = raw.backend.as_ref().map_or(0..0, Spanned::span);
            errors.push(map.error(
                span,
                "stream.backend",
                format!("{other:?} is not a backend (expected \"local\" or \"nats\")"),
            ));
            Backend::Local
        }
    }
}

fn nats_config(
    nats: &Spanned<RawNats>,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<NatsConfig> {
    let raw = nats.get_ref();
    let before = errors.len();
    if raw.servers.is_empty() {
        errors.push(map.error(
            nats.span(),
            "stream.nats.servers",
            "needs at least one server, e.g. [\"nats://127.0.0.1:4222\"]",
        ));
    }
    for (i, server) in raw.servers.iter().enumerate() {
        let url = server.get_ref();
        let scheme_ok = ["nats://", "tls://"].iter().any(|s| url.starts_with(s));
        if !scheme_ok || url.parse::<http::Uri>().is_err() {
            errors.push(map.error(
                server.span(),
                format!("stream.nats.servers[{i}]"),
                format!("{url:?} is not a NATS URL (nats://host:port)"),
            ));
        }
    }
    let replicas = match &raw.replicas {
        None => 1,
        Some(r) => match usize::try_from(*r.get_ref()) {
            Ok(n @ 1..=5) => n,
            _ => {
                errors.push(map.error(
                    r.span(),
                    "stream.nats.replicas",
                    format!(
                        "{} is out of range (JetStream keeps 1 to 5 replicas)",
                        r.get_ref()
                    ),
                ));
                1
            }
        },
    };
    if raw.user.is_some() != raw.password.is_some() {
        errors.push(map.error(nats.span(), "stream.nats", "user and password go together"));
    }
    (errors.len() == before).then(|| NatsConfig {
        servers: raw.servers.iter().map(|s| s.get_ref().clone()).collect(),
        replicas,
        user: raw.user.as_ref().map(|u| u.get_ref().clone()),
        password: raw.password.as_ref().map(|p| p.get_ref().clone()),
    })
}
