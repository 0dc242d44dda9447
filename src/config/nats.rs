//! `[stream] backend` and `nats = { ... }`: the stream log kept by a NATS JetStream cluster.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::diag::{ConfigError, SourceMap};
use super::raw::{RawNats, RawNatsTls, RawStream};

/// Kinesis's three copies: a put survives losing any one server.
const DEFAULT_REPLICAS: usize = 3;

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
    pub auth: NatsAuth,
    /// `None`: plain TCP unless a `tls://` URL or the server asks for TLS.
    pub tls: Option<NatsTls>,
}

/// How edgewise-cdn proves who it is to the servers: one way at most.
#[derive(Clone, PartialEq, Eq)]
pub enum NatsAuth {
    None,
    UserPassword {
        user: String,
        password: String,
    },
    /// A `.creds` file (a user JWT and its NKey seed), as `nsc` writes for operator mode.
    Creds(PathBuf),
    /// A file holding a user NKey seed (`SU...`), for servers listing the user's public key.
    Nkey(PathBuf),
}

/// `tls = { ca, cert, key }`: TLS is required, the servers' certificates are checked
/// against `ca` (the system's roots without it), and `cert`/`key` are presented when set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsTls {
    pub ca: Option<PathBuf>,
    /// The client certificate chain and its key, for servers with `verify: true`.
    pub client: Option<(PathBuf, PathBuf)>,
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("servers", &self.servers)
            .field("replicas", &self.replicas)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Names the way of authenticating and the files, never the password.
impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::UserPassword { user, .. } => f
                .debug_struct("UserPassword")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            NatsAuth::Creds(path) => f.debug_tuple("Creds").field(path).finish(),
            NatsAuth::Nkey(path) => f.debug_tuple("Nkey").field(path).finish(),
        }
    }
}

pub(super) fn validate(
    raw: &RawStream,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Backend {
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
            nats_config(nats, map, base, errors).map_or(Backend::Local, Backend::Nats)
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
    base: &Path,
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
        None => DEFAULT_REPLICAS,
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
    let auth = auth(nats, map, base, errors);
    let tls = raw
        .tls
        .as_ref()
        .map(|tls| tls_options(tls, map, base, errors));
    (errors.len() == before).then(|| NatsConfig {
        servers: raw.servers.iter().map(|s| s.get_ref().clone()).collect(),
        replicas,
        auth,
        tls,
    })
}

/// `user` + `password`, `creds` or `nkey`: one of them, or none for an open cluster.
fn auth(
    nats: &Spanned<RawNats>,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> NatsAuth {
    let raw = nats.get_ref();
    let ways = [
        raw.user.is_some() || raw.password.is_some(),
        raw.creds.is_some(),
        raw.nkey.is_some(),
    ];
    if ways.iter().filter(|w| **w).count() > 1 {
        errors.push(map.error(
            nats.span(),
            "stream.nats",
            "takes one way to authenticate: user and password, creds, or nkey",
        ));
        return NatsAuth::None;
    }
    match (&raw.user, &raw.password, &raw.creds, &raw.nkey) {
        (Some(user), Some(password), _, _) => NatsAuth::UserPassword {
            user: user.get_ref().clone(),
            password: password.get_ref().clone(),
        },
        (Some(_), None, _, _) | (None, Some(_), _, _) => {
            errors.push(map.error(nats.span(), "stream.nats", "user and password go together"));
            NatsAuth::None
        }
        (_, _, Some(creds), _) => {
            NatsAuth::Creds(readable_file(creds, "stream.nats.creds", map, base, errors))
        }
        (_, _, _, Some(nkey)) => {
            NatsAuth::Nkey(readable_file(nkey, "stream.nats.nkey", map, base, errors))
        }
        (None, None, None, None) => NatsAuth::None,
    }
}

fn tls_options(
    tls: &Spanned<RawNatsTls>,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> NatsTls {
    let raw = tls.get_ref();
    let file = |value: &Spanned<String>, key: &str, errors: &mut Vec<ConfigError>| {
        readable_file(value, &format!("stream.nats.tls.{key}"), map, base, errors)
    };
    let ca = raw.ca.as_ref().map(|ca| file(ca, "ca", errors));
    let client = match (&raw.cert, &raw.key) {
        (Some(cert), Some(key)) => Some((file(cert, "cert", errors), file(key, "key", errors))),
        (None, None) => None,
        _ => {
            errors.push(map.error(tls.span(), "stream.nats.tls", "cert and key go together"));
            None
        }
    };
    NatsTls { ca, client }
}

/// `value` resolved against the config file's folder; an error unless it names a file.
fn readable_file(
    value: &Spanned<String>,
    key: &str,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> PathBuf {
    let path = base.join(value.get_ref());
    if !path.is_file() {
        errors.push(map.error(
            value.span(),
            key,
            format!("{} is not a readable file", path.display()),
        ));
    }
    path
}
