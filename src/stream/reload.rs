//! `[stream]` on reload: streams and deliveries follow the config file without a restart.
//!
//! Staging checks everything that can be refused and takes what can fail — the folders of
//! new deliveries, created and locked — while nothing in force changes; dropping the staged
//! reload gives those back. Committing then applies the streams through the log's own rules
//! ([`Log::reconfigure`]: new ones created, ones that left the config kept with their data
//! and managed through the API, retention changes applied), stops the deliveries that went
//! (each flushes what it has buffered first) and starts the new ones. A delivery whose
//! spec did not change keeps running untouched; a changed one is stopped and started anew.
//!
//! Listen addresses follow the config: staging binds the new ones (one that cannot be bound
//! refuses the reload), the commit retires the removed ones (their connections finish).
//! The HTTPS certificates are re-read. The data folder, fsync and segment settings, keys and
//! API stream management are fixed at start: a config that changes them is refused as
//! needing a restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::StreamStartError;
use super::delivery::{self, DeliveryStats};
use super::log::{Log, StreamChanges};
use super::server::{StreamListeners, server_tls};
use crate::app::dir_lock::DirLock;
use crate::config::nats::Backend;
use crate::config::stream::DeliverySpec;
use crate::config::{CdnConfig, StreamConfig};
use crate::net::listeners::{BindError, ListenerChanges, StagedListeners};

/// The streams and deliveries in force, and what a reload changes them to.
pub struct StreamControl {
    log: Arc<Log>,
    stats: Arc<DeliveryStats>,
    listeners: StreamListeners,
    state: Mutex<State>,
}

struct State {
    config: StreamConfig,
    /// One per delivery folder (canonical path), held while a delivery of ours writes there.
    locks: HashMap<PathBuf, DirLock>,
    /// Set once the server runs: deliveries run as its children.
    shutdown: Option<CancellationToken>,
    running: Vec<Running>,
}

/// A delivery task and the token that stops it.
struct Running {
    spec: DeliverySpec,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// A reload checked and prepared; [`StagedStreams::commit`] puts it in force.
pub struct StagedStreams {
    control: Arc<StreamControl>,
    config: StreamConfig,
    /// Locks of folders no delivery of ours held yet.
    new_locks: HashMap<PathBuf, DirLock>,
    http: StagedListeners<tokio::net::TcpListener>,
    https: StagedListeners<tokio::net::TcpListener>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// Why a reloaded `[stream]` cannot apply; nothing in force changed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{0}")]
    Refused(String),
    /// A new listen address that cannot be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
}

/// What a reload did to `[stream]`, for the reload's answer and log line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamSummary {
    pub streams: StreamChanges,
    pub deliveries: DeliveryChanges,
    /// The API's addresses bound and retired.
    pub listeners: ListenerChanges,
}

impl StreamSummary {
    /// One line per change, for the reload answer's `changed` list.
    pub fn changed(&self) -> Vec<String> {
        let (streams, deliveries) = (&self.streams, &self.deliveries);
        let mut lines: Vec<String> = Vec::new();
        for (what, names) in [
            ("added", &streams.added),
            ("removed", &streams.removed),
            ("retention changed", &streams.retention_changed),
        ] {
            lines.extend(names.iter().map(|n| format!("stream {n} {what}")));
        }
        for (what, names) in [
            ("started", &deliveries.started),
            ("stopped", &deliveries.stopped),
        ] {
            lines.extend(names.iter().map(|n| format!("delivery {n} {what}")));
        }
        lines.extend(self.listeners.lines());
        lines
    }
}

/// Deliveries, named `<stream> -> <folder>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryChanges {
    pub started: Vec<String>,
    /// Stopped after flushing what they had buffered.
    pub stopped: Vec<String>,
    /// Running on, untouched.
    pub unchanged: usize,
}

// === impl StreamControl ===

impl StreamControl {
    /// The config the log was opened with; `locks` holds its delivery folders.
    pub(super) fn new(
        log: Arc<Log>,
        stats: Arc<DeliveryStats>,
        config: StreamConfig,
        locks: HashMap<PathBuf, DirLock>,
        listeners: StreamListeners,
    ) -> StreamControl {
        StreamControl {
            log,
            stats,
            listeners,
            state: Mutex::new(State {
                config,
                locks,
                shutdown: None,
                running: Vec::new(),
            }),
        }
    }

    /// The API's listeners and TLS setup in force.
    pub(super) fn listeners(&self) -> &StreamListeners {
        &self.listeners
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the configured deliveries, each until `shutdown` or a reload removes it.
    pub(super) fn start(&self, shutdown: CancellationToken) {
        let mut state = self.state();
        let specs = state.config.deliveries.clone();
        state.shutdown = Some(shutdown.clone());
        for spec in specs {
            let running = self.spawn(spec, &shutdown);
            state.running.push(running);
        }
    }

    /// Waits for every delivery to finish (after shutdown: each flushes on the way out).
    pub(super) async fn join(&self) {
        let running = std::mem::take(&mut self.state().running);
        for delivery in running {
            let _ = delivery.task.await;
        }
    }

    fn spawn(&self, spec: DeliverySpec, shutdown: &CancellationToken) -> Running {
        let stop = shutdown.child_token();
        let task = tokio::spawn(delivery::run(
            self.log.clone(),
            spec.clone(),
            self.stats.clone(),
            stop.clone(),
        ));
        Running { spec, stop, task }
    }

    /// Checks `config` against what runs, locks the folders of its new deliveries, binds
    /// its new listen addresses and loads the HTTPS certificates from `cdn`; nothing in
    /// force changes. Blocks on file I/O.
    ///
    /// # Errors
    /// The reasons it cannot apply: settings fixed at start, a stream the log refuses, a
    /// delivery folder that cannot be made or another process holds, a certificate that
    /// cannot be loaded, an address that cannot be bound, or shutdown.
    pub fn stage(
        self: &Arc<Self>,
        config: &StreamConfig,
        cdn: Option<&CdnConfig>,
    ) -> Result<StagedStreams, StageError> {
        let held: Vec<PathBuf> = {
            let state = self.state();
            if state.shutdown.as_ref().is_some_and(|s| s.is_cancelled()) {
                return Err(StageError::Refused("the server is shutting down".into()));
            }
            let fixed = restart_only(&state.config, config);
            if !fixed.is_empty() {
                return Err(StageError::Refused(format!(
                    "these settings change only with a restart: {}",
                    fixed.join(", ")
                )));
            }
            state.locks.keys().cloned().collect()
        };
        self.log
            .check_config(&config.streams)
            .map_err(|e| StageError::Refused(format!("stream.streams: {e}")))?;
        let tls = server_tls(config, cdn, self.listeners.acme.as_ref())
            .map_err(|e| StageError::Refused(format!("stream.https_listen: {e}")))?;
        let new_locks = lock_folders(&config.deliveries, &held)
            .map_err(|e| StageError::Refused(e.to_string()))?;
        let bind = crate::net::bound_tcp_listener;
        Ok(StagedStreams {
            control: self.clone(),
            config: config.clone(),
            new_locks,
            http: self.listeners.http.stage(&config.listen, bind)?,
            https: self.listeners.https.stage(&config.https_listen, bind)?,
            tls,
        })
    }
}

// === impl StagedStreams ===

impl StagedStreams {
    /// Applies the streams, stops the deliveries that went (waiting for their last flush)
    /// and starts the new ones. Blocks: call it where blocking is allowed inside a runtime.
    ///
    /// # Errors
    /// A stream file that cannot be written; the streams handled before it keep their new
    /// state, and the deliveries are left as they were.
    pub fn commit(self) -> Result<StreamSummary, String> {
        let control = &self.control;
        let streams = control
            .log
            .reconfigure(&self.config.streams)
            .map_err(|e| format!("stream.streams: {e}"))?;
        let mut deliveries = DeliveryChanges::default();
        let gone: Vec<Running> = {
            let mut state = control.state();
            let (kept, gone) = std::mem::take(&mut state.running)
                .into_iter()
                .partition(|r| self.config.deliveries.contains(&r.spec));
            state.running = kept;
            gone
        };
        // Stopped and flushed before any new one starts: a changed delivery's successor
        // takes over the same checkpoint.
        let runtime = tokio::runtime::Handle::current();
        for delivery in gone {
            delivery.stop.cancel();
            deliveries.stopped.push(name(&delivery.spec));
            let _ = runtime.block_on(delivery.task);
        }
        {
            let mut state = control.state();
            deliveries.unchanged = state.running.len();
            if let Some(shutdown) = state.shutdown.clone() {
                for spec in &self.config.deliveries {
                    if !state.running.iter().any(|r| &r.spec == spec) {
                        deliveries.started.push(name(spec));
                        let running = control.spawn(spec.clone(), &shutdown);
                        state.running.push(running);
                    }
                }
            }
            state.locks.extend(self.new_locks);
            let in_use: Vec<PathBuf> = self
                .config
                .deliveries
                .iter()
                .map(|d| canonical(&d.dir))
                .collect();
            state.locks.retain(|folder, _| in_use.contains(folder));
            state.config = self.config;
        }
        // The TLS setup first, so a new HTTPS listener never serves without it.
        control.listeners.tls.store(self.tls);
        let mut listeners = self.http.commit();
        listeners.extend(self.https.commit());
        let summary = StreamSummary {
            streams,
            deliveries,
            listeners,
        };
        info!(
            streams_added = ?summary.streams.added,
            streams_removed = ?summary.streams.removed,
            retention_changed = ?summary.streams.retention_changed,
            deliveries_started = ?summary.deliveries.started,
            deliveries_stopped = ?summary.deliveries.stopped,
            deliveries_unchanged = summary.deliveries.unchanged,
            listeners_added = ?summary.listeners.added,
            listeners_removed = ?summary.listeners.removed,
            "stream config reloaded"
        );
        Ok(summary)
    }
}

/// How a delivery is named in the reload's answer.
fn name(spec: &DeliverySpec) -> String {
    format!("{} -> {}", spec.stream, spec.dir.display())
}

fn canonical(dir: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Creates the folder of each delivery and locks it, once per folder (two deliveries of one
/// config may share one; only other processes are kept out), skipping the folders in
/// `held`. The locks by canonical folder.
///
/// # Errors
/// A folder that cannot be made, or that another process holds.
pub(super) fn lock_folders(
    deliveries: &[DeliverySpec],
    held: &[PathBuf],
) -> Result<HashMap<PathBuf, DirLock>, StreamStartError> {
    let mut locks = HashMap::new();
    for spec in deliveries {
        std::fs::create_dir_all(&spec.dir).map_err(|source| {
            StreamStartError::CreateDeliveryDir {
                dir: spec.dir.clone(),
                source,
            }
        })?;
        let key = canonical(&spec.dir);
        if !held.contains(&key) && !locks.contains_key(&key) {
            locks.insert(key, DirLock::acquire(&spec.dir)?);
        }
    }
    Ok(locks)
}

/// The `[stream]` settings of `new` that differ from `old` but are fixed at start.
fn restart_only(old: &StreamConfig, new: &StreamConfig) -> Vec<&'static str> {
    let keys = |c: &StreamConfig| {
        c.access_keys
            .iter()
            .map(|k| (k.id.clone(), k.secret.clone()))
            .collect::<Vec<_>>()
    };
    [
        ("stream.data_dir", old.data_dir != new.data_dir),
        ("stream.fsync", old.fsync != new.fsync),
        ("stream.segment_size", old.segment_size != new.segment_size),
        ("stream.access_keys", keys(old) != keys(new)),
        (
            "stream.allow_create_streams",
            old.allow_create_streams != new.allow_create_streams,
        ),
        ("stream.backend", old.backend != new.backend),
        // Each stream of a cluster is set up (its JetStream streams, its mirror) at start.
        (
            "stream.streams (backend = \"nats\")",
            old.backend != Backend::Local && old.streams != new.streams,
        ),
    ]
    .into_iter()
    .filter_map(|(key, differs)| differs.then_some(key))
    .collect()
}
