//! The set of streams: opening the data folder, reconciling it with the config, creating
//! and deleting streams, and background maintenance.

use crate::app::dir_lock::DirLock;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::meta::{self, StreamMeta, sync_dir};
use super::mirror_state;
use super::{LogError, LogOptions, MAX_SHARDS, Stream};
use crate::config::stream::{StreamSpec, valid_stream_name};
use crate::stream::delivery::DeliveryStats;

/// How often maintenance applies retention.
const RETENTION_SWEEP: Duration = Duration::from_secs(30);

/// What a reload did to the streams, for the reload's answer and log line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamChanges {
    /// Created, or made through the API earlier and now under the config.
    pub added: Vec<String>,
    /// Out of the config: kept with their data, managed through the API from now on.
    pub removed: Vec<String>,
    /// Configured streams whose retention changed.
    pub retention_changed: Vec<String>,
}

pub struct Log {
    options: LogOptions,
    /// Replaced whole on create and delete, so lookups never lock.
    streams: ArcSwap<HashMap<String, Arc<Stream>>>,
    /// Serialises create and delete, and holds the last creation time handed out (ms).
    /// Creation times are a stream's identity in iterators and delivery checkpoints, so no
    /// two streams get the same one: a stream deleted and created again within one
    /// millisecond is still another stream.
    changes: Mutex<u64>,
    /// Makes trash folder names unique.
    deletions: AtomicU64,
    /// The counters of the deliveries reading this log: kept here so whoever holds the log
    /// (the admin listener's console) sees them too.
    deliveries: Arc<DeliveryStats>,
    /// Keeps a second process out of `data_dir` for as long as the log is open.
    _lock: DirLock,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A creation time after `last`: now, or `last + 1` ms when the clock has not moved on (or
/// went back).
fn creation_ms(last: u64) -> u64 {
    now_ms().max(last.saturating_add(1))
}

fn io_error(context: &str, path: &Path) -> impl FnOnce(io::Error) -> LogError {
    let context = format!("{context} {}", path.display());
    move |e| LogError::io(context, e)
}

/// One line per stream recovered at start: how much it holds (torn tails cut on the way
/// were logged by recovery itself).
fn log_reopened(stream: &Stream) {
    let shards = stream.shards();
    let sequence_span: u64 = shards
        .iter()
        .map(|shard| shard.next_offset() - shard.first_offset())
        .sum();
    let bytes: u64 = shards
        .iter()
        .map(|shard| {
            let segments = shard.state.segments();
            segments.iter().map(|s| s.committed_len()).sum::<u64>()
        })
        .sum();
    info!(
        stream = stream.name(),
        shards = shards.len(),
        sequence_span,
        bytes,
        "reopened stream"
    );
}

impl Log {
    /// Opens `data_dir` (creating it), recovers every shard, creates configured streams that
    /// do not exist yet and loads those created earlier through the API. A configured stream
    /// whose shard count on disk differs from the config is an error naming both: remapping
    /// keys would scatter partitions.
    pub fn open(options: LogOptions, configured: &[StreamSpec]) -> Result<Arc<Log>, LogError> {
        let data_dir = &options.data_dir;
        fs::create_dir_all(data_dir).map_err(io_error("creating", data_dir))?;
        // Before anything on disk is read or changed: a second process stops here.
        let lock = DirLock::acquire(data_dir).map_err(LogError::Locked)?;
        let log = Log {
            options,
            streams: ArcSwap::from_pointee(HashMap::new()),
            changes: Mutex::new(0),
            deletions: AtomicU64::new(0),
            deliveries: Arc::default(),
            _lock: lock,
        };
        let streams_dir = log.streams_dir();
        fs::create_dir_all(&streams_dir).map_err(io_error("creating", &streams_dir))?;
        // Leftovers of a create or delete a crash interrupted.
        for side in [log.staging_dir(), log.trash_dir()] {
            match fs::remove_dir_all(&side) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("clearing", &side)(e)),
            }
        }
        if log.options.mirror {
            log.prepare_mirror(configured)?;
        }
        let mut metas = log.load_metas()?;
        let mut last_created = metas.values().map(|m| m.created_ms).max().unwrap_or(0);
        check_configured(configured, |name| metas.get(name).map(|m| m.shards))?;
        for spec in configured {
            let retention = spec.retention.as_secs();
            match metas.get_mut(&spec.name) {
                Some(meta) => {
                    let mut updated = meta.clone();
                    updated.configure(Some(retention));
                    if updated != *meta {
                        updated.store(&streams_dir.join(&spec.name))?;
                        *meta = updated;
                    }
                }
                None => {
                    last_created = creation_ms(last_created);
                    let mut meta =
                        StreamMeta::new(&spec.name, spec.shards, retention, last_created);
                    meta.configure(Some(retention));
                    log.make_stream_dir(&meta)?;
                    info!(stream = %spec.name, shards = spec.shards, "created configured stream");
                    metas.insert(spec.name.clone(), meta);
                }
            }
        }
        let mut streams = HashMap::with_capacity(metas.len());
        for (name, mut meta) in metas {
            let dir = streams_dir.join(&name);
            if meta.configured && !configured.iter().any(|s| s.name == name) {
                // Out of the config: kept, and now managed through the API.
                meta.configure(None);
                meta.store(&dir)?;
            }
            let stream = match Stream::open(dir.clone(), meta.clone(), &log.options) {
                Ok(stream) => stream,
                // A mirror is a copy: one that cannot be opened is mirrored again.
                Err(e) if log.options.mirror => {
                    warn!(stream = %name, "the mirror cannot be opened ({e}); mirroring it again from the cluster");
                    log.discard(&name, &dir);
                    meta.mirror_of = None;
                    let dir = log.make_stream_dir(&meta)?;
                    Stream::open(dir, meta, &log.options)?
                }
                Err(e) => return Err(e),
            };
            log_reopened(&stream);
            streams.insert(name, Arc::new(stream));
        }
        log.streams.store(Arc::new(streams));
        *log.changes.lock().unwrap_or_else(PoisonError::into_inner) = last_created;
        Ok(Arc::new(log))
    }

    fn streams_dir(&self) -> PathBuf {
        self.options.data_dir.join("streams")
    }

    fn staging_dir(&self) -> PathBuf {
        self.options.data_dir.join("staging")
    }

    fn trash_dir(&self) -> PathBuf {
        self.options.data_dir.join("trash")
    }

    /// Drops the whole mirror when [`mirror_state::distrust`] says it may have holes.
    /// Before a mirror's streams are loaded: drops them all when it cannot be trusted
    /// whole, prunes what stays, and records that it is being written in this boot.
    fn prepare_mirror(&self, configured: &[StreamSpec]) -> Result<(), LogError> {
        let (data_dir, streams_dir) = (&self.options.data_dir, self.streams_dir());
        if let Some(why) = mirror_state::distrust(data_dir) {
            fs::remove_dir_all(&streams_dir)
                .and_then(|()| fs::create_dir_all(&streams_dir))
                .map_err(io_error("clearing the mirror", &streams_dir))?;
            info!(dir = %streams_dir.display(), "mirror dropped ({why}); mirroring it again from the cluster");
        }
        self.prune_mirror(configured)?;
        mirror_state::mark_open(data_dir)
            .map_err(io_error("recording the mirror's state in", data_dir))
    }

    /// Before a mirror is loaded: removes the folders of streams the config no longer names
    /// or names with another shard count, and those whose meta cannot be read. The cluster
    /// holds the records; what stays is checked against it when attached.
    fn prune_mirror(&self, configured: &[StreamSpec]) -> Result<(), LogError> {
        let streams_dir = self.streams_dir();
        let entries = fs::read_dir(&streams_dir).map_err(io_error("listing", &streams_dir))?;
        for entry in entries {
            let entry = entry.map_err(io_error("listing", &streams_dir))?;
            let (path, name) = (entry.path(), entry.file_name());
            let Some(name) = name
                .to_str()
                .filter(|n| valid_stream_name(n) && path.is_dir())
            else {
                continue;
            };
            let why = match meta::load(&path, name) {
                Err(e) => e.to_string(),
                Ok(meta) => match configured.iter().find(|s| s.name == name) {
                    None => "no longer configured".to_owned(),
                    Some(spec) if spec.shards != meta.shards => {
                        format!(
                            "{} shards configured, {} mirrored",
                            spec.shards, meta.shards
                        )
                    }
                    Some(_) => continue,
                },
            };
            info!(stream = name, "mirror dropped: {why}");
            fs::remove_dir_all(&path).map_err(io_error("removing the mirror", &path))?;
        }
        Ok(())
    }

    /// Empties the mirror `name`, whose records are not (or no longer) its upstream's: its
    /// folder is replaced by an empty one with the same settings. Before anything is served.
    pub fn reset_mirror(&self, name: &str) -> Result<Arc<Stream>, LogError> {
        let _changes = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let old = self
            .get(name)
            .ok_or_else(|| LogError::NotFound(name.to_owned()))?;
        let mut meta = old.meta();
        meta.mirror_of = None;
        let trash = self.to_trash(&old)?;
        old.close();
        let dir = self.make_stream_dir(&meta)?;
        let stream = Arc::new(Stream::open(dir, meta, &self.options)?);
        let mut streams = HashMap::clone(&self.streams.load());
        streams.insert(name.to_owned(), Arc::clone(&stream));
        self.streams.store(Arc::new(streams));
        empty_trash(&trash);
        Ok(stream)
    }

    /// The meta of every stream folder, by name.
    fn load_metas(&self) -> Result<BTreeMap<String, StreamMeta>, LogError> {
        let streams_dir = self.streams_dir();
        let mut metas = BTreeMap::new();
        let entries = fs::read_dir(&streams_dir).map_err(io_error("listing", &streams_dir))?;
        for entry in entries {
            let entry = entry.map_err(io_error("listing", &streams_dir))?;
            let path = entry.path();
            let name = entry.file_name();
            match name.to_str() {
                Some(name) if valid_stream_name(name) && path.is_dir() => {
                    metas.insert(name.to_owned(), meta::load(&path, name)?);
                }
                _ => warn!(path = %path.display(), "not a stream folder, ignored"),
            }
        }
        Ok(metas)
    }

    /// Builds a stream folder in `staging/` and renames it into `streams/`, so it appears
    /// whole or not at all.
    fn make_stream_dir(&self, meta: &StreamMeta) -> Result<PathBuf, LogError> {
        let staging = self.staging_dir().join(&meta.name);
        match fs::remove_dir_all(&staging) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("clearing", &staging)(e)),
        }
        fs::create_dir_all(&staging).map_err(io_error("creating", &staging))?;
        meta.store(&staging)?;
        let streams_dir = self.streams_dir();
        let dir = streams_dir.join(&meta.name);
        fs::rename(&staging, &dir).map_err(io_error("moving a new stream into", &dir))?;
        sync_dir(&streams_dir).map_err(io_error("syncing", &streams_dir))?;
        Ok(dir)
    }

    /// The stream named `name`; never blocks.
    pub fn get(&self, name: &str) -> Option<Arc<Stream>> {
        self.streams.load().get(name).cloned()
    }

    /// The counters of the deliveries reading this log.
    pub fn deliveries(&self) -> &Arc<DeliveryStats> {
        &self.deliveries
    }

    /// Every stream, sorted by name.
    pub fn streams(&self) -> Vec<Arc<Stream>> {
        let mut streams: Vec<Arc<Stream>> = self.streams.load().values().cloned().collect();
        streams.sort_unstable_by(|a, b| a.name().cmp(b.name()));
        streams
    }

    /// Every stream name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.streams.load().keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// Creates and persists a stream (retention in whole seconds). Blocks on file I/O.
    pub fn create(
        &self,
        name: &str,
        shards: u32,
        retention: Duration,
    ) -> Result<Arc<Stream>, LogError> {
        self.create_stream(name, shards, retention, false)
    }

    /// Checks a reloaded `[[stream.streams]]` as [`Log::open`] checks the config: names,
    /// shard counts, and each existing stream's shard count (remapping keys would scatter
    /// partitions). Changes nothing.
    pub fn check_config(&self, configured: &[StreamSpec]) -> Result<(), LogError> {
        check_configured(configured, |name| {
            self.get(name)
                .map(|s| u32::try_from(s.shards().len()).unwrap_or(u32::MAX))
        })
    }

    /// Applies a reloaded `[[stream.streams]]` by the rules [`Log::open`] applies at start:
    /// streams new to the config are created (or, made earlier through the API, taken under
    /// the config); streams that left it are kept, data and all, and managed through the API
    /// from then on; a changed configured retention applies. Blocks on file I/O.
    ///
    /// # Errors
    /// What [`Log::check_config`] refuses (before anything changes), or a file that cannot
    /// be written (the streams handled before it keep their new state).
    pub fn reconfigure(&self, configured: &[StreamSpec]) -> Result<StreamChanges, LogError> {
        self.check_config(configured)?;
        let mut changes = StreamChanges::default();
        for spec in configured {
            match self.get(&spec.name) {
                Some(stream) => {
                    let adopted = !stream.configured();
                    if stream.configure(Some(spec.retention))? && !adopted {
                        changes.retention_changed.push(spec.name.clone());
                    }
                    if adopted {
                        changes.added.push(spec.name.clone());
                    }
                }
                None => {
                    self.create_stream(&spec.name, spec.shards, spec.retention, true)?;
                    changes.added.push(spec.name.clone());
                }
            }
        }
        let streams = self.streams.load_full();
        for stream in streams.values() {
            if stream.configured() && !configured.iter().any(|s| s.name == stream.name()) {
                stream.configure(None)?;
                info!(
                    stream = stream.name(),
                    "out of the config: kept, managed through the API"
                );
                changes.removed.push(stream.name().to_owned());
            }
        }
        changes.removed.sort_unstable();
        Ok(changes)
    }

    /// [`Log::create`], for the config (`configured`: not deletable through the API) or
    /// the API.
    fn create_stream(
        &self,
        name: &str,
        shards: u32,
        retention: Duration,
        configured: bool,
    ) -> Result<Arc<Stream>, LogError> {
        if !valid_stream_name(name) {
            return Err(LogError::InvalidName(name.to_owned()));
        }
        check_shards(shards)?;
        let mut last_created = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        if self.streams.load().contains_key(name) {
            return Err(LogError::AlreadyExists(name.to_owned()));
        }
        *last_created = creation_ms(*last_created);
        let mut meta = StreamMeta::new(name, shards, retention.as_secs(), *last_created);
        if configured {
            meta.configure(Some(retention.as_secs()));
        }
        let dir = self.make_stream_dir(&meta)?;
        let stream = match Stream::open(dir.clone(), meta, &self.options) {
            Ok(stream) => Arc::new(stream),
            Err(e) => {
                self.discard(name, &dir);
                return Err(e);
            }
        };
        let mut streams = HashMap::clone(&self.streams.load());
        streams.insert(name.to_owned(), Arc::clone(&stream));
        self.streams.store(Arc::new(streams));
        info!(stream = name, shards, configured, "created stream");
        Ok(stream)
    }

    /// Deletes a stream created through the API, with its files. Appends already handed to
    /// its writers finish first; later ones get [`LogError::Closed`]. Blocks on file I/O.
    pub fn delete(&self, name: &str) -> Result<(), LogError> {
        let _changes = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let stream = self
            .get(name)
            .ok_or_else(|| LogError::NotFound(name.to_owned()))?;
        if stream.configured() {
            return Err(LogError::Configured(name.to_owned()));
        }
        let trash = self.to_trash(&stream)?;
        let mut streams = HashMap::clone(&self.streams.load());
        streams.remove(name);
        self.streams.store(Arc::new(streams));
        stream.close();
        empty_trash(&trash);
        info!(stream = name, "deleted stream");
        Ok(())
    }

    /// Moves `stream`'s folder to the trash and makes that durable: the rename is the
    /// deletion, and a crash after it leaves only trash, cleared at open. Returns where it went.
    fn to_trash(&self, stream: &Stream) -> Result<PathBuf, LogError> {
        let trash = self.trash_path(stream.name());
        let streams_dir = self.streams_dir();
        fs::create_dir_all(self.trash_dir()).map_err(io_error("creating", &self.trash_dir()))?;
        fs::rename(stream.dir(), &trash).map_err(io_error("moving to the trash", stream.dir()))?;
        sync_dir(&streams_dir).map_err(io_error("syncing", &streams_dir))?;
        Ok(trash)
    }

    fn trash_path(&self, name: &str) -> PathBuf {
        let n = self.deletions.fetch_add(1, Ordering::Relaxed);
        self.trash_dir().join(format!("{name}.{}.{n}", now_ms()))
    }

    /// Moves a stream folder that failed to open out of the way.
    fn discard(&self, name: &str, dir: &Path) {
        let trash = self.trash_path(name);
        let moved = fs::create_dir_all(self.trash_dir())
            .and_then(|()| fs::rename(dir, &trash))
            .and_then(|()| fs::remove_dir_all(&trash));
        if let Err(e) = moved {
            error!(path = %dir.display(), "cannot remove a stream that failed to open: {e}");
        }
    }

    /// Applies every stream's retention as of `now`; returns how many segments went.
    pub fn sweep_retention(&self, now: SystemTime) -> usize {
        let streams = self.streams.load_full();
        streams
            .values()
            .map(|stream| {
                let removed = stream.sweep_retention(now);
                if removed > 0 {
                    debug!(
                        stream = stream.name(),
                        removed, "retention removed segments"
                    );
                }
                removed
            })
            .sum()
    }

    /// Applies retention now and every 30 s until `cancel`. (With
    /// [`FsyncPolicy::Interval`](super::FsyncPolicy::Interval) each shard's writer syncs on
    /// its own timer, so nothing else is needed here.)
    pub fn spawn_maintenance(self: &Arc<Self>, cancel: CancellationToken) -> JoinHandle<()> {
        let log = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(RETENTION_SWEEP);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = ticks.tick() => {}
                }
                let Some(log) = log.upgrade() else {
                    break;
                };
                // Removing files blocks.
                let swept =
                    tokio::task::spawn_blocking(move || log.sweep_retention(SystemTime::now()))
                        .await;
                if let Err(e) = swept {
                    error!("the retention sweep failed: {e}");
                }
            }
        })
    }

    /// Makes everything acknowledged so far durable (for a graceful shutdown); a mirror
    /// records that it was closed, so the next start may trust it whole.
    pub async fn close(&self) -> Result<(), LogError> {
        let streams = self.streams.load_full();
        let mut first_error = None;
        for stream in streams.values() {
            if let Err(e) = stream.sync().await {
                first_error.get_or_insert(e);
            }
        }
        if self.options.mirror && first_error.is_none() {
            let data_dir = &self.options.data_dir;
            mirror_state::mark_closed(data_dir)
                .map_err(io_error("recording the mirror's state in", data_dir))?;
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Removes a folder moved to the trash; one that stays is cleared at the next open.
fn empty_trash(trash: &Path) {
    if let Err(e) = fs::remove_dir_all(trash) {
        warn!(path = %trash.display(), "cannot remove a stream's old files (retried at the next open): {e}");
    }
}

/// Refuses a config list with a bad name or shard count, or naming a stream whose shard
/// count (`shards_of`, if it exists) differs.
fn check_configured(
    configured: &[StreamSpec],
    shards_of: impl Fn(&str) -> Option<u32>,
) -> Result<(), LogError> {
    for spec in configured {
        if !valid_stream_name(&spec.name) {
            return Err(LogError::InvalidName(spec.name.clone()));
        }
        check_shards(spec.shards)?;
        if let Some(on_disk) = shards_of(&spec.name)
            && on_disk != spec.shards
        {
            return Err(LogError::ShardMismatch {
                name: spec.name.clone(),
                on_disk,
                configured: spec.shards,
            });
        }
    }
    Ok(())
}

fn check_shards(shards: u32) -> Result<(), LogError> {
    if (1..=MAX_SHARDS).contains(&shards) {
        Ok(())
    } else {
        Err(LogError::TooManyShards { requested: shards })
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("data_dir", &self.options.data_dir)
            .field("streams", &self.names())
            .finish_non_exhaustive()
    }
}
