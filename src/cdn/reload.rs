//! Hot reload of the CDN. A reloaded `[cdn]` becomes a whole new edge (distributions,
//! origins, behaviors, key groups, geo) and TLS setup (certificates re-read from disk),
//! built completely before anything is swapped: a reload either applies entirely or not at
//! all. Requests hold the edge they started with until they finish; connections hold the
//! TLS setup they were accepted with; the next ones get the new ones. The cache, in-flight
//! fills and the real-time log queue carry over, so nothing cached or logged is lost.
//!
//! Listen addresses follow the config ([`CdnListeners`]): new ones are bound while staging,
//! so one that cannot be bound refuses the reload; removed ones stop accepting at the
//! commit and their connections finish.
//!
//! A [`Companion`] (edgewise-cdn's stream side) is reloaded with the CDN by the same
//! request or signal: both are staged before either is committed, so a refusal from one
//! leaves both as they were.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::Serialize;
use tracing::info;

use super::proxy::Edge;
use super::server::CdnListeners;
use crate::acme::AcmeCerts;
use crate::config::{CdnConfig, Config, ConfigErrors, Sections};
use crate::net::listeners::ListenerChanges;
use crate::net::tls::{self, TlsError};

/// What requests and connections read: swapped whole on reload.
pub struct Live {
    edge: ArcSwap<Edge>,
    tls: ArcSwapOption<rustls::ServerConfig>,
    /// The ACME certificates, fixed at start: every TLS setup a reload builds serves them.
    acme: Option<Arc<AcmeCerts>>,
}

/// Why a reload was refused; the running configuration is untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file does not validate: exactly what `check` prints.
    #[error("{0}")]
    Config(ConfigErrors),
    #[error("the config file has no [cdn] section: stopping the CDN needs a restart")]
    NoCdn,
    /// Settings bound to sockets or memory at start.
    #[error("these settings change only with a restart: {}", .0.join(", "))]
    NeedsRestart(Vec<&'static str>),
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A folder origin or GeoIP database that cannot be opened (the message names it).
    #[error("{0}")]
    Origin(std::io::Error),
    /// What the [`Companion`] refused, or could not apply.
    #[error("{0}")]
    Companion(String),
}

/// Another part of the process a reload applies along with `[cdn]`. A trait, so the CDN
/// needs nothing of what it reloads.
pub trait Companion: Send + Sync {
    /// Checks the reloaded `config` against what runs and prepares it, changing nothing in
    /// force; or says why it cannot apply. Runs on the blocking pool.
    fn stage(&self, config: &Config) -> Result<Box<dyn StagedCompanion>, String>;
}

/// A companion's reload, staged; dropped uncommitted, it changes nothing.
pub trait StagedCompanion: Send {
    /// Puts it in force; what changed. Runs on the blocking pool, inside the runtime.
    fn commit(self: Box<Self>) -> Result<CompanionChanges, String>;
}

/// What a companion's reload changed.
pub struct CompanionChanges {
    /// The answer's key for the details (edgewise-cdn: `stream`).
    pub key: &'static str,
    pub details: serde_json::Value,
    /// One line per change, for the answer's `changed` list.
    pub lines: Vec<String>,
}

/// What a reload changed, for the log and the `POST /reload` answer.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Distribution ids new in this config.
    pub added: Vec<String>,
    /// Distribution ids no longer configured; their cached objects were dropped.
    pub removed: Vec<String>,
    /// Distribution ids whose hosts, origins, behaviors or restrictions changed.
    pub changed: Vec<String>,
    pub distributions: usize,
    pub behaviors: usize,
    pub certificates: usize,
    pub key_groups: usize,
    /// The CDN's addresses bound and retired (`https`, `http`, `admin`).
    pub listeners: ListenerChanges,
    /// What the companion's reload changed, under its key (edgewise-cdn: `stream`).
    #[serde(flatten)]
    pub companions: BTreeMap<&'static str, serde_json::Value>,
    /// The companion's changes as lines, for [`Summary::changed`].
    #[serde(skip)]
    pub companion_lines: Vec<String>,
}

impl Summary {
    /// Every change as one line each, the `changed` list of the reload's answer.
    pub fn changed(&self) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for (what, ids) in [
            ("added", &self.added),
            ("removed", &self.removed),
            ("changed", &self.changed),
        ] {
            lines.extend(ids.iter().map(|id| format!("distribution {id} {what}")));
        }
        lines.extend(self.listeners.lines());
        lines.extend(self.companion_lines.iter().cloned());
        lines
    }
}

/// A new edge and TLS setup, built and ready to swap in.
pub struct Staged<'a> {
    live: &'a Live,
    edge: Edge,
    tls: Option<Arc<rustls::ServerConfig>>,
    summary: Summary,
}

impl Live {
    pub fn new(
        edge: Edge,
        tls: Option<Arc<rustls::ServerConfig>>,
        acme: Option<Arc<AcmeCerts>>,
    ) -> Live {
        Live {
            edge: ArcSwap::from_pointee(edge),
            tls: ArcSwapOption::new(tls),
            acme,
        }
    }

    /// The ACME certificates and open challenges, when `[cdn.acme]` has any.
    pub fn acme(&self) -> Option<&Arc<AcmeCerts>> {
        self.acme.as_ref()
    }

    /// The edge new requests go to.
    pub fn edge(&self) -> Arc<Edge> {
        self.edge.load_full()
    }

    /// The TLS setup new connections are accepted with.
    pub fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.load_full()
    }

    /// Builds everything `config` needs, changing nothing in force; HTTP requests will be
    /// redirected to `https_port` for HTTPS.
    ///
    /// # Errors
    /// A setting that needs a restart, a certificate or origin that cannot be loaded.
    pub fn stage(
        &self,
        config: &CdnConfig,
        https_port: Option<u16>,
    ) -> Result<Staged<'_>, ReloadError> {
        let current = self.edge();
        let old = current.config();
        let fixed = restart_only(old, config);
        if !fixed.is_empty() {
            return Err(ReloadError::NeedsRestart(fixed));
        }
        if config.generate_dev_certs && !config.https_listen.is_empty() {
            tls::generate_missing(config)?;
        }
        let tls = if config.https_listen.is_empty() {
            None
        } else {
            Some(tls::server_config(config, self.acme.as_ref())?)
        };
        let config = Arc::new(config.clone());
        let edge = current
            .reconfigured(config.clone(), https_port)
            .map_err(ReloadError::Origin)?;
        Ok(Staged {
            live: self,
            edge,
            tls,
            summary: summarize(old, &config),
        })
    }
}

impl Staged<'_> {
    /// Swaps the new edge and TLS setup in; what changed.
    pub fn commit(self) -> Summary {
        self.live.tls.store(self.tls);
        self.live.edge.store(Arc::new(self.edge));
        self.summary
    }
}

/// Re-reads a config file into a [`Live`] and its listeners (when the process runs a CDN)
/// and the [`Companion`], one reload at a time.
pub struct Reloader {
    path: PathBuf,
    cdn: Option<CdnParts>,
    companion: Option<Arc<dyn Companion>>,
    /// Two reloads at once would race to swap; the second waits for the first.
    running: tokio::sync::Mutex<()>,
}

/// What a reload changes of a running CDN.
#[derive(Clone)]
pub struct CdnParts {
    pub live: Arc<Live>,
    pub listeners: Arc<CdnListeners>,
}

impl Reloader {
    /// Reloads `cdn` (none: the process runs no CDN, and a config that adds one needs a
    /// restart) from `path`, and `companion` with it.
    pub fn new(
        path: PathBuf,
        cdn: Option<CdnParts>,
        companion: Option<Arc<dyn Companion>>,
    ) -> Reloader {
        Reloader {
            path,
            cdn,
            companion,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// The config file reloads read.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Reads and validates the file's `[cdn]`, `[stream]` and `[geo]` as a start does (a
    /// broken `[dns]` is not this process's to refuse), stages its `[cdn]` and the
    /// companion's part, then commits both; logs the outcome.
    ///
    /// # Errors
    /// The file's check errors, or why the new `[cdn]` or the companion's part cannot be
    /// applied.
    pub async fn reload(&self) -> Result<Summary, ReloadError> {
        let _one_at_a_time = self.running.lock().await;
        let path = self.path.clone();
        let (parts, companion) = (self.cdn.clone(), self.companion.clone());
        let result = tokio::task::spawn_blocking(move || {
            let config =
                Config::load_sections(&path, Sections::Cdn).map_err(ReloadError::Config)?;
            let cdn = match (parts.as_ref(), config.cdn.as_ref()) {
                (Some(parts), Some(cdn)) => {
                    let addresses = parts.listeners.stage(cdn).map_err(|e| {
                        let errors = config.reload_bind_errors(&path, e.addr, &e.source, &["cdn"]);
                        ReloadError::Config(errors)
                    })?;
                    let staged = parts.live.stage(cdn, addresses.https_port())?;
                    Some((staged, addresses))
                }
                (Some(_), None) => return Err(ReloadError::NoCdn),
                (None, Some(_)) => return Err(ReloadError::NeedsRestart(vec!["[cdn] (added)"])),
                (None, None) => None,
            };
            let companion = companion
                .map(|c| c.stage(&config))
                .transpose()
                .map_err(ReloadError::Companion)?;
            // The companion first: it can still fail (disk I/O), the CDN's swap cannot.
            let part = companion
                .map(StagedCompanion::commit)
                .transpose()
                .map_err(ReloadError::Companion)?;
            let mut summary = match cdn {
                Some((staged, addresses)) => {
                    let mut summary = staged.commit();
                    summary.listeners = addresses.commit();
                    summary
                }
                None => Summary::default(),
            };
            if let Some(part) = part {
                summary.companions.insert(part.key, part.details);
                summary.companion_lines = part.lines;
            }
            Ok(summary)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        match &result {
            Ok(summary) => info!(
                added = ?summary.added,
                removed = ?summary.removed,
                changed = ?summary.changed,
                distributions = summary.distributions,
                behaviors = summary.behaviors,
                certificates = summary.certificates,
                listeners_added = ?summary.listeners.added,
                listeners_removed = ?summary.listeners.removed,
                "config reloaded from {}",
                self.path.display()
            ),
            Err(e) => tracing::error!(
                "reload of {} refused, the running config keeps serving: {e}",
                self.path.display()
            ),
        }
        result
    }
}

/// The settings of `new` that differ from `old` but are fixed at start (the connection
/// cap, memory sized once, the log queues' writers).
fn restart_only(old: &CdnConfig, new: &CdnConfig) -> Vec<&'static str> {
    let log_target = |c: &CdnConfig| {
        c.realtime_logs
            .as_ref()
            .map(|l| (l.stream.clone(), l.queue))
    };
    [
        (
            "cdn.max_connections",
            old.max_connections != new.max_connections,
        ),
        ("cdn.cache_size", old.cache_size != new.cache_size),
        (
            "cdn.cache_body_dir",
            old.cache_body_dir != new.cache_body_dir,
        ),
        (
            "cdn.realtime_logs (stream, queue, on/off)",
            log_target(old) != log_target(new),
        ),
        ("cdn.access_log", old.access_log != new.access_log),
        (
            "cdn.http3, cdn.http3_max_streams, cdn.http3_0rtt",
            old.http3 != new.http3
                || old.http3_max_streams != new.http3_max_streams
                || old.http3_0rtt != new.http3_0rtt,
        ),
        (
            "cdn.acme, cdn.data_dir and the ACME [[cdn.certs]]",
            old.acme != new.acme
                || old.acme_certs != new.acme_certs
                || (!new.acme_certs.is_empty() && old.data_dir != new.data_dir),
        ),
    ]
    .into_iter()
    .filter_map(|(key, differs)| differs.then_some(key))
    .collect()
}

fn summarize(old: &CdnConfig, new: &CdnConfig) -> Summary {
    let before = |id: &str| old.distributions.iter().find(|d| d.id == id);
    let mut summary = Summary {
        distributions: new.distributions.len(),
        behaviors: new.distributions.iter().map(|d| d.behaviors.len()).sum(),
        certificates: new.certs.len() + new.acme_certs.len(),
        key_groups: new.key_groups.len(),
        ..Summary::default()
    };
    for distribution in &new.distributions {
        match before(&distribution.id) {
            None => summary.added.push(distribution.id.clone()),
            // The validated config has no equality of its own; its full debug form is an
            // exact, if verbose, fingerprint (reloads are rare).
            Some(old) if format!("{old:?}") != format!("{distribution:?}") => {
                summary.changed.push(distribution.id.clone());
            }
            Some(_) => {}
        }
    }
    summary.removed = old
        .distributions
        .iter()
        .filter(|d| !new.distributions.iter().any(|n| n.id == d.id))
        .map(|d| d.id.clone())
        .collect();
    summary
}
