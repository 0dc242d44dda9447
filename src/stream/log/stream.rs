//! A stream: its shards, its hash key split and its retention.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::hash::{hash_ranges, range_for};
use super::meta::StreamMeta;
use super::shard::Shard;
use super::{Appended, LogError, LogOptions, NewRecord, Upstream, retention};

/// The most records, and bytes, a put through an upstream reads back from the mirror for
/// their arrival times: its own (at most 500, 5 MiB) and what other processes put between
/// them. Records past that get the time of the answer.
const MAX_ARRIVALS_READ: usize = 10_000;
const MAX_ARRIVAL_BYTES: usize = 16 << 20;

pub struct Stream {
    name: Arc<str>,
    dir: PathBuf,
    /// ms since the Unix epoch; an upstream's own when this stream mirrors one.
    created_ms: AtomicU64,
    /// Changed by a reload that adds the stream to the config or takes it out.
    configured: AtomicBool,
    retention_secs: AtomicU64,
    /// The persisted meta; its lock serialises retention changes.
    meta: Mutex<StreamMeta>,
    ranges: Vec<(u128, u128)>,
    shards: Vec<Shard>,
    /// Where puts go when this stream mirrors another log; set once, before serving.
    upstream: OnceLock<Arc<dyn Upstream>>,
}

impl Stream {
    /// Recovers every shard of the stream in `dir`.
    pub(super) fn open(
        dir: PathBuf,
        meta: StreamMeta,
        options: &LogOptions,
    ) -> Result<Stream, LogError> {
        let name: Arc<str> = Arc::from(meta.name.as_str());
        let ranges = hash_ranges(meta.shards);
        let shards = (0..meta.shards)
            .zip(&ranges)
            .map(|(index, &range)| Shard::open(&name, &dir, index, range, options))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Stream {
            name,
            dir,
            created_ms: AtomicU64::new(meta.created_ms),
            configured: AtomicBool::new(meta.configured),
            retention_secs: AtomicU64::new(meta.retention_secs),
            meta: Mutex::new(meta),
            ranges,
            shards,
            upstream: OnceLock::new(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn created(&self) -> SystemTime {
        let ms = self.created_ms.load(Ordering::Acquire);
        UNIX_EPOCH
            .checked_add(Duration::from_millis(ms))
            .unwrap_or(UNIX_EPOCH)
    }

    /// Named in the config file (so not deletable through the API).
    pub fn configured(&self) -> bool {
        self.configured.load(Ordering::Acquire)
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_secs.load(Ordering::Acquire))
    }

    /// Changes the retention and persists it (whole seconds); the config's retention wins
    /// again only if the config's value changes.
    pub fn set_retention(&self, retention: Duration) -> Result<(), LogError> {
        let mut meta = self.meta.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changed = meta.clone();
        changed.retention_secs = retention.as_secs();
        changed.store(&self.dir)?;
        self.retention_secs
            .store(changed.retention_secs, Ordering::Release);
        *meta = changed;
        Ok(())
    }

    /// [`Stream::set_retention`], upstream first when this stream mirrors one: the upstream
    /// is what keeps or drops the records.
    pub async fn change_retention(&self, retention: Duration) -> Result<(), LogError> {
        if let Some(upstream) = self.upstream.get() {
            upstream.set_retention(retention).await?;
        }
        self.set_retention(retention)
    }

    /// Puts the stream under the config or the API by [`StreamMeta::configure`]'s rule and
    /// persists that; true when its retention changed.
    pub(super) fn configure(&self, retention: Option<Duration>) -> Result<bool, LogError> {
        let mut meta = self.meta.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changed = meta.clone();
        changed.configure(retention.map(|r| r.as_secs()));
        if changed == *meta {
            return Ok(false);
        }
        changed.store(&self.dir)?;
        let retention_changed = changed.retention_secs != meta.retention_secs;
        self.configured.store(changed.configured, Ordering::Release);
        self.retention_secs
            .store(changed.retention_secs, Ordering::Release);
        *meta = changed;
        Ok(retention_changed)
    }

    /// The upstream this stream's records mirror, as last recorded ([`Stream::set_mirror_of`]).
    pub fn mirror_of(&self) -> Option<Vec<String>> {
        self.meta
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .mirror_of
            .clone()
    }

    /// Records, durably, that this stream's records mirror `upstream` (one identity per
    /// shard) from now on.
    pub fn set_mirror_of(&self, upstream: Vec<String>) -> Result<(), LogError> {
        let mut meta = self.meta.lock().unwrap_or_else(PoisonError::into_inner);
        if meta.mirror_of.as_ref() == Some(&upstream) {
            return Ok(());
        }
        let mut changed = meta.clone();
        changed.mirror_of = Some(upstream);
        changed.store(&self.dir)?;
        *meta = changed;
        Ok(())
    }

    /// The settings on disk, for a stream made again in its place.
    pub(super) fn meta(&self) -> StreamMeta {
        self.meta
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The shard whose hash key range holds `hash`.
    pub fn shard_for_hash(&self, hash: u128) -> usize {
        range_for(&self.ranges, hash)
    }

    /// Appends `records` to shard `shard`, in order, returning once they are acknowledged
    /// under the fsync policy. If this future is dropped after it started, the records may
    /// still be written.
    pub async fn append(
        &self,
        shard: usize,
        records: Vec<NewRecord>,
    ) -> Result<Vec<Appended>, LogError> {
        let target = self
            .shards
            .get(shard)
            .ok_or_else(|| LogError::NoSuchShard {
                stream: self.name.to_string(),
                shard,
            })?;
        let Some(upstream) = self.upstream.get() else {
            return target.append(records).await;
        };
        let offsets = upstream.put(shard, records).await?;
        // Arrivals are the upstream's, read back from the mirror (now if it lags). The
        // offsets rise, other processes' records may sit between them: one merge walk.
        let span = match (offsets.first(), offsets.last()) {
            (Some(&first), Some(&last)) => usize::try_from(last - first + 1)
                .unwrap_or(usize::MAX)
                .min(MAX_ARRIVALS_READ),
            _ => 0,
        };
        let read = offsets
            .first()
            .and_then(|&first| target.read(first, span, MAX_ARRIVAL_BYTES).ok());
        let mut arrivals = read
            .iter()
            .flat_map(|batch| batch.records.iter().map(|r| (r.offset, r.arrival_ms)))
            .peekable();
        let now = super::writer::now_ms();
        Ok(offsets
            .into_iter()
            .map(|offset| {
                while arrivals.next_if(|(o, _)| *o < offset).is_some() {}
                let arrival = arrivals.next_if(|(o, _)| *o == offset);
                Appended {
                    seq: super::SeqNo {
                        shard: target.index(),
                        offset,
                    },
                    arrival_ms: arrival.map_or(now, |(_, a)| a),
                }
            })
            .collect())
    }

    /// Sends this stream's puts to `upstream`, of which it is a mirror from now on, and
    /// takes its creation time (`created_ms`), so that every mirror of it is the same
    /// stream to iterators. A second call changes nothing.
    pub fn set_upstream(&self, upstream: Arc<dyn Upstream>, created_ms: u64) {
        if self.upstream.set(upstream).is_ok() {
            self.created_ms.store(created_ms, Ordering::Release);
        }
    }

    /// Applies retention as of `now`; returns how many segments were removed.
    pub fn sweep_retention(&self, now: SystemTime) -> usize {
        let cutoff_ms = now
            .checked_sub(self.retention())
            .and_then(|cutoff| cutoff.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.shards
            .iter()
            .map(|shard| retention::sweep(&shard.state, cutoff_ms))
            .sum()
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Syncs every shard; the first failure is returned, after trying them all.
    pub(super) async fn sync(&self) -> Result<(), LogError> {
        let mut first_error = None;
        for shard in &self.shards {
            if let Err(e) = shard.sync().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Stops every shard's writer after the appends already handed to it.
    pub(super) fn close(&self) {
        for shard in &self.shards {
            shard.close();
        }
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("name", &self.name)
            .field("shards", &self.shards.len())
            .field("retention", &self.retention())
            .field("configured", &self.configured())
            .finish_non_exhaustive()
    }
}
