//! Hot reload: re-read the config file and every zone file, and swap the new snapshot in.
//!
//! A reload is all or nothing. Everything is built aside first — the config validated as
//! `check` validates it, the geo databases opened, the health table staged, the answers
//! precomputed — and only then put in force, with no await in between: the health table, the
//! query snapshot ([`ArcSwap::store`]) and the status token. Queries load the snapshot once
//! each, so one in flight finishes on the snapshot it started with and the next one sees the
//! new one; nothing on the query path waits for a reload.
//!
//! Reloads are serialized by one async mutex, which also holds the config in force. A reload
//! runs in its own task, so a caller that goes away (an HTTP client hanging up) cannot stop
//! it halfway, and it refuses to start or to commit once the server is shutting down.
//!
//! Listen addresses follow the config: new ones are bound before anything is committed (one
//! that cannot be bound refuses the reload), removed ones stop accepting once it commits
//! and close after their connections finish. Settings bound to threads and to the TCP
//! admission (workers, TCP limits, file watching) are not reloaded: a config that changes
//! them is refused, saying a restart is needed.

mod serial;
mod summary;
mod watch;

pub use summary::{ReloadSummary, ZoneChanges, ZoneFacts};
pub use watch::{QUIET as WATCH_QUIET, ZoneWatch};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::dnssec::{KeyError, Signer, attach_signers};
use super::metrics::DnsMetrics;
use super::server::{DnsSockets, bind_dns};
use super::snapshot::Snapshot;
use super::transfer::notify;
use super::transfer::unix_now;
use super::update::Dynamic;
use crate::config::{Config, ConfigError, ConfigErrors, DnsConfig, Sections};
use crate::geo::{GeoDb, GeoError};
use crate::health::HealthChecks;
use crate::net::listeners::{BindError, ListenerSet};

/// Starts reloads; cheap to clone (the status listener and the SIGHUP task share one).
#[derive(Clone)]
pub struct Reloader {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    snapshot: Arc<ArcSwap<Snapshot>>,
    health: Arc<HealthChecks>,
    status_token: ArcSwapOption<String>,
    /// The config in force; its lock serializes reloads.
    in_force: tokio::sync::Mutex<DnsConfig>,
    /// Cancelled when the server shuts down.
    stop: CancellationToken,
    dns: Arc<ListenerSet<DnsSockets>>,
    status: Arc<ListenerSet<tokio::net::TcpListener>>,
    /// Reloads are counted here, and new snapshots count into it.
    metrics: Arc<DnsMetrics>,
    /// Dynamic updates: kept on top of every reloaded config.
    dynamic: Arc<Dynamic>,
    /// Told after each reload, so the signing timer looks at the new keys' schedule.
    rescheduled: tokio::sync::Notify,
}

/// Why a reload was refused. The previous configuration keeps serving in every case.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The config or a zone file does not validate: the errors `check` prints.
    #[error("{0}")]
    Invalid(ConfigErrors),
    #[error("{} changed: a restart is needed to apply that", .0.join(", "))]
    RestartNeeded(Vec<&'static str>),
    #[error(transparent)]
    Geo(#[from] GeoError),
    #[error("DNSSEC keys: {0}")]
    Keys(#[from] KeyError),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("the reload task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// What a reload needs of the running server.
pub(super) struct Parts {
    pub path: PathBuf,
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub health: Arc<HealthChecks>,
    pub in_force: DnsConfig,
    pub stop: CancellationToken,
    pub dns: Arc<ListenerSet<DnsSockets>>,
    pub status: Arc<ListenerSet<tokio::net::TcpListener>>,
    pub metrics: Arc<DnsMetrics>,
    pub dynamic: Arc<Dynamic>,
}

// === impl Reloader ===

impl Reloader {
    pub(super) fn new(parts: Parts) -> Reloader {
        Reloader {
            inner: Arc::new(Inner {
                path: parts.path,
                snapshot: parts.snapshot,
                health: parts.health,
                status_token: ArcSwapOption::new(parts.in_force.status_token.clone().map(Arc::new)),
                in_force: tokio::sync::Mutex::new(parts.in_force),
                stop: parts.stop,
                dns: parts.dns,
                status: parts.status,
                metrics: parts.metrics,
                dynamic: parts.dynamic,
                rescheduled: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The config file reloads read.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the config file's path and the config in force, once any reload under
    /// way has finished.
    async fn with_config<T>(&self, f: impl FnOnce(&Path, &DnsConfig) -> T) -> T {
        let config = self.inner.in_force.lock().await;
        f(&self.inner.path, &config)
    }

    /// The `dns.status_token` in force.
    pub fn status_token(&self) -> Option<Arc<String>> {
        self.inner.status_token.load_full()
    }

    /// Re-reads the config and zone files and puts them in force, or changes nothing. The
    /// outcome is counted in the metrics.
    ///
    /// # Errors
    /// Why nothing changed: an invalid config, a setting that needs a restart, an unreadable
    /// geo database, or shutdown.
    pub async fn reload(&self) -> Result<ReloadSummary, ReloadError> {
        let inner = self.inner.clone();
        let outcome = tokio::spawn(async move { inner.reload().await })
            .await
            .map_err(ReloadError::Task)
            .and_then(|reloaded| reloaded);
        self.inner.metrics.reloaded(outcome.is_ok());
        outcome
    }

    /// [`Reloader::reload`], logging the outcome as SIGHUP reloads report it.
    ///
    /// # Errors
    /// As [`Reloader::reload`]; already logged.
    pub async fn reload_and_log(&self) -> Result<ReloadSummary, ReloadError> {
        let path = self.inner.path.display();
        let outcome = self.reload().await;
        match &outcome {
            Ok(summary) => info!("reloaded {path}: {summary}"),
            Err(e) => {
                error!("reload of {path} refused, the previous configuration keeps serving: {e}")
            }
        }
        outcome
    }
}

/// Reloads on every SIGHUP until `shutdown`. Must be called inside a tokio runtime.
///
/// # Errors
/// When the signal handler cannot be installed.
pub fn spawn_on_sighup(reloader: Reloader, shutdown: CancellationToken) -> std::io::Result<()> {
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                received = hangups.recv() => if received.is_none() { return },
            }
            info!("SIGHUP received, reloading {}", reloader.path().display());
            // The outcome is logged; a refused reload leaves the server as it was.
            let _ = reloader.reload_and_log().await;
        }
    });
    Ok(())
}

/// How long the timer waits before trying again after a failed run (a key folder that
/// cannot be written, say), rather than trying in a loop.
const RETRY_AFTER: u64 = 60;

/// Until `shutdown`: signs the signed zones again soon after each midnight (UTC), since a
/// day's signatures are valid for 14 days from its start (`dnssec::sign`) and none must come
/// near expiring; and runs the key schedule (`dnssec::roll`) at each of its events, so a
/// ZSK is published, starts and stops signing, and is withdrawn when its times say. Must be
/// called inside a tokio runtime.
pub fn spawn_scheduled_resign(reloader: Reloader, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let inner = reloader.inner;
        let mut not_before = 0;
        loop {
            let now = unix_now();
            let next_day = now + Signer::until_next_day(now);
            let wake = (inner.next_key_event().await)
                .map_or(next_day, |event| event.min(next_day))
                .max(not_before);
            tokio::select! {
                () = shutdown.cancelled() => return,
                // A reload brought keys of their own schedule: look again.
                () = inner.rescheduled.notified() => continue,
                () = tokio::time::sleep(Duration::from_secs(wake.saturating_sub(now))) => {}
            }
            let new_day = unix_now() >= next_day;
            match inner.resign(new_day).await {
                Ok(0) => {}
                Ok(zones) if new_day => info!("signed {zones} zones again for the new day"),
                Ok(zones) => info!("signed {zones} zones again for their key schedule"),
                Err(e) => {
                    error!("signing the zones again failed (trying again in {RETRY_AFTER} s): {e}");
                    not_before = unix_now() + RETRY_AFTER;
                }
            }
        }
    });
}

// === impl Inner ===

impl Inner {
    /// When the key schedule of a zone in force next changes something, the soonest.
    async fn next_key_event(&self) -> Option<u64> {
        let in_force = self.in_force.lock().await;
        (in_force.zones.iter())
            .filter_map(|zone| zone.dnssec.as_ref()?.signer.next_key_event())
            .min()
    }

    /// Runs the key schedule of the config in force (`attach_signers`), and builds and
    /// swaps in a snapshot with fresh signatures for the signed zones whose keys changed, or
    /// for all of them on a `new_day`; returns how many zones were signed again.
    /// Such a zone whose serial is generated gets a new one (secondaries then transfer the
    /// new signatures, and are sent a NOTIFY); a configured serial stays the user's.
    async fn resign(&self, new_day: bool) -> Result<usize, ReloadError> {
        let mut in_force = self.in_force.lock().await;
        if self.stop.is_cancelled() || in_force.zones.iter().all(|z| z.dnssec.is_none()) {
            return Ok(0);
        }
        let previous = in_force.clone();
        let mut config = in_force.clone();
        let (mut config, previous) = tokio::task::spawn_blocking(move || {
            attach_signers(&mut config, Some(&previous)).map(|()| (config, previous))
        })
        .await
        .map_err(ReloadError::Task)??;
        let now = u32::try_from(unix_now()).unwrap_or(u32::MAX);
        let mut signed = 0;
        // The same order: `config` is a copy of the config in force.
        for (zone, old) in config.zones.iter_mut().zip(&previous.zones) {
            let Some(dnssec) = &zone.dnssec else {
                continue;
            };
            let same_keys = (old.dnssec.as_ref()).is_some_and(|d| d.signer == dnssec.signer);
            if new_day || !same_keys {
                serial::advance_generated(zone, now);
                signed += 1;
            }
        }
        // Kept even when nothing is signed again: it knows the keys' next event.
        *in_force = config;
        if signed == 0 {
            return Ok(0);
        }
        let mut dynamic = self.dynamic.lock().await;
        let served = dynamic.served(&in_force);
        let old = self.snapshot.load_full();
        let snapshot = tokio::task::spawn_blocking(move || {
            let snapshot = old.rebuilt(&served);
            snapshot.prepare_transfers();
            snapshot
        })
        .await
        .map_err(ReloadError::Task)?;
        let snapshot = Arc::new(snapshot);
        let before = self.snapshot.swap(snapshot.clone());
        notify::changed_zones(Some(&before), &snapshot);
        if let Err(e) = dynamic.commit(in_force.clone()) {
            error!("dynamic updates: {e}; the zone's updates are refused until fixed");
        }
        Ok(signed)
    }

    async fn reload(&self) -> Result<ReloadSummary, ReloadError> {
        let mut in_force = self.in_force.lock().await;
        if self.stop.is_cancelled() {
            return Err(ReloadError::ShuttingDown);
        }
        let path = self.path.clone();
        let previous = in_force.clone();
        let (file, mut config, geo) = tokio::task::spawn_blocking(move || {
            let (file, mut config, geo) = read(&path)?;
            attach_signers(&mut config, Some(&previous))?;
            Ok::<_, ReloadError>((file, config, geo))
        })
        .await
        .map_err(ReloadError::Task)??;
        let changed = restart_only_changes(&in_force, &config);
        if !changed.is_empty() {
            return Err(ReloadError::RestartNeeded(changed));
        }
        serial::keep_generated(&in_force, &mut config);
        serial::advance_resigned(&in_force, &mut config, unix_now());
        let staged = self.health.stage(&config.health_checks);
        let (table, metrics) = (staged.table.clone(), self.metrics.clone());
        // Updates wait until this reload is in force, so none lands on the old snapshot.
        let mut dynamic = self.dynamic.lock().await;
        let served = dynamic.served(&config);
        let (config, mut snapshot) = tokio::task::spawn_blocking(move || {
            let snapshot = Snapshot::build(&served, table, Arc::new(geo), metrics);
            snapshot.prepare_transfers();
            (config, snapshot)
        })
        .await
        .map_err(ReloadError::Task)?;
        let workers = in_force.workers;
        let dns = (self.dns)
            .stage(&config.listen, |addr| bind_dns(addr, workers))
            .map_err(|e| bind_failure(&file, &self.path, &e))?;
        let status = (self.status)
            .stage(&config.status_listen, crate::net::bound_tcp_listener)
            .map_err(|e| bind_failure(&file, &self.path, &e))?;
        if self.stop.is_cancelled() {
            return Err(ReloadError::ShuttingDown);
        }
        let mut summary = ReloadSummary::between(&in_force, &config, staged.changes.clone());
        self.health.commit(staged);
        snapshot.keep_rrl_table(&self.snapshot.load());
        let snapshot = Arc::new(snapshot);
        let before = self.snapshot.swap(snapshot.clone());
        notify::changed_zones(Some(&before), &snapshot);
        if let Err(e) = dynamic.commit(config.clone()) {
            tracing::error!("dynamic updates: {e}; the zone's updates are refused until fixed");
        }
        self.status_token
            .store(config.status_token.clone().map(Arc::new));
        summary.listeners = dns.commit();
        summary.listeners.extend(status.commit());
        *in_force = config;
        self.rescheduled.notify_one();
        Ok(summary)
    }
}

/// A new address that cannot be bound, said at its config key as a start says it.
fn bind_failure(file: &Config, path: &Path, e: &BindError) -> ReloadError {
    ReloadError::Invalid(file.reload_bind_errors(path, e.addr, &e.source, &["dns"]))
}

/// Loads and checks `path` as `edgewise-dns check` and a start do (its own sections only:
/// a broken `[cdn]` is not this process's to refuse), and opens its geo databases. The
/// file (its `[dns]` taken out) still says where each listen address is written.
fn read(path: &Path) -> Result<(Config, DnsConfig, GeoDb), ReloadError> {
    let mut config = Config::load_sections(path, Sections::Dns).map_err(ReloadError::Invalid)?;
    config.check_paths().map_err(ReloadError::Invalid)?;
    let Some(dns) = config.dns.take() else {
        return Err(ReloadError::Invalid(ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            key_path: String::new(),
            message: "no [dns] section: nothing to serve".into(),
        }])));
    };
    let geo = GeoDb::open(&dns.geo)?;
    for warning in &dns.warnings {
        tracing::warn!("{warning}");
    }
    Ok((config, dns, geo))
}

/// The keys whose new values only a restart can apply: threads, file watching, TCP limits
/// and the query log's writer.
fn restart_only_changes(old: &DnsConfig, new: &DnsConfig) -> Vec<&'static str> {
    [
        ("dns.workers", old.workers != new.workers),
        ("dns.query_log", old.query_log != new.query_log),
        ("dns.watch_zones", old.watch_zones != new.watch_zones),
        // The journals are open where it said at start.
        ("dns.data_dir", old.data_dir != new.data_dir),
        (
            "dns.tcp_idle_timeout",
            old.tcp_idle_timeout != new.tcp_idle_timeout,
        ),
        (
            "dns.tcp_max_connections",
            old.tcp_max_connections != new.tcp_max_connections,
        ),
        (
            "dns.tcp_max_per_client",
            old.tcp_max_per_client != new.tcp_max_per_client,
        ),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}
