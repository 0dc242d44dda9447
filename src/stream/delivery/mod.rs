//! Firehose-like delivery: each shard of a stream is batched into files
//! `dir/YYYY/MM/DD/HH/<stream>-<first sequence number>.ndjson[.gz]`, flushed when a batch
//! reaches `buffer_size` or has waited `buffer_interval`.
//!
//! Exactly once, across restarts and crashes: a file is written to a temporary name,
//! synced, and renamed, so it exists whole or not at all; its name follows from its first
//! record alone (the hour folder is that record's arrival hour, not the flush time). The
//! checkpoint (next offset per shard) is saved after each file. After a crash between the
//! rename and the checkpoint, the file that already exists for the checkpointed offset is
//! read back and the checkpoint moves past its last record, so nothing is written twice and
//! nothing is skipped.

mod checkpoint;
pub(crate) mod file;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::log::{Log, Shard, Stream};
use crate::config::stream::DeliverySpec;
use checkpoint::Checkpoint;
use file::Batch;

/// How often shards are polled for new records.
const POLL: Duration = Duration::from_millis(200);
/// Records read from a shard per poll.
const READ_RECORDS: usize = 10_000;

/// Every running delivery's counters, for /metrics. Touched when a delivery starts and at
/// a scrape.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    running: Mutex<Vec<Weak<DeliveryProgress>>>,
}

/// One delivery's counters (kept by the delivery while it runs).
#[derive(Debug)]
pub struct DeliveryProgress {
    pub stream: String,
    /// The folder it writes to: what tells deliveries of one stream apart.
    pub dir: String,
    pub records: AtomicU64,
    pub files: AtomicU64,
    pub failures: AtomicU64,
    /// Records that retention removed before they were delivered.
    pub expired: AtomicU64,
    /// How far behind the newest record its reading is, over its shards (Kinesis's
    /// MillisBehindLatest): 0 when it has read everything.
    pub millis_behind: AtomicU64,
}

impl DeliveryStats {
    /// The counters of a delivery of `spec`: those of a running one with the same stream
    /// and folder (a delivery restarted by a reload counts on), else new ones.
    fn register(&self, spec: &DeliverySpec) -> Arc<DeliveryProgress> {
        let dir = spec.dir.display().to_string();
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.retain(|progress| progress.strong_count() > 0);
        let same = |p: &Arc<DeliveryProgress>| p.stream == spec.stream && p.dir == dir;
        if let Some(progress) = running.iter().filter_map(Weak::upgrade).find(same) {
            return progress;
        }
        let progress = Arc::new(DeliveryProgress {
            stream: spec.stream.clone(),
            dir,
            records: AtomicU64::new(0),
            files: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            millis_behind: AtomicU64::new(0),
        });
        running.push(Arc::downgrade(&progress));
        progress
    }

    /// The running deliveries' counters, by stream and folder.
    pub fn running(&self) -> Vec<Arc<DeliveryProgress>> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let mut live: Vec<_> = running.iter().filter_map(Weak::upgrade).collect();
        live.sort_by(|a, b| (&a.stream, &a.dir).cmp(&(&b.stream, &b.dir)));
        live
    }
}

/// One delivery's progress on one shard: records `[checkpointed, read)` are buffered.
struct ShardCursor {
    shard: usize,
    checkpointed: u64,
    read: u64,
    batch: Batch,
    since: Option<Instant>,
    /// Arrival of the last record read, for MillisBehindLatest.
    last_arrival: Option<u64>,
}

impl ShardCursor {
    /// Kinesis's MillisBehindLatest for this reader: 0 when it has read everything.
    fn millis_behind(&self, shard: &Shard) -> u64 {
        if self.read >= shard.next_offset() {
            return 0;
        }
        let latest = shard.latest_arrival_ms().unwrap_or(0);
        self.last_arrival
            .map_or(1, |last| latest.saturating_sub(last).max(1))
    }
}

/// Runs `spec` until `cancel`, then flushes what is buffered.
pub async fn run(
    log: Arc<Log>,
    spec: DeliverySpec,
    stats: Arc<DeliveryStats>,
    cancel: CancellationToken,
) {
    let Some(stream) = log.get(&spec.stream) else {
        warn!(
            stream = spec.stream,
            "delivery: no such stream; not delivering"
        );
        return;
    };
    let progress = stats.register(&spec);
    let mut delivery = match Delivery::start(stream, spec, progress).await {
        Ok(d) => d,
        Err(e) => {
            warn!("delivery could not start: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(POLL) => {}
        }
        delivery.poll(false).await;
    }
    delivery.poll(true).await;
}

struct Delivery {
    stream: Arc<Stream>,
    spec: DeliverySpec,
    stats: Arc<DeliveryProgress>,
    checkpoint: Checkpoint,
    cursors: Vec<ShardCursor>,
}

impl Delivery {
    async fn start(
        stream: Arc<Stream>,
        spec: DeliverySpec,
        stats: Arc<DeliveryProgress>,
    ) -> Result<Delivery, String> {
        let mut checkpoint = Checkpoint::load(&spec.dir, &stream)
            .await
            .map_err(|e| format!("{}: {e}", spec.dir.display()))?;
        let mut cursors = Vec::new();
        for (index, shard) in stream.shards().iter().enumerate() {
            let mut next = checkpoint.next(&shard.id()).max(shard.first_offset());
            // Only with fsync = "interval" and a power loss can the log end before what was
            // delivered: deliver what comes next rather than skip it.
            if next > shard.next_offset() {
                warn!(
                    stream = stream.name(),
                    shard = shard.id(),
                    "delivery checkpoint {next} is past the log's end {}; records were lost \
                     since they were delivered (fsync = \"interval\")",
                    shard.next_offset()
                );
                next = shard.next_offset();
            }
            // A file may exist past the checkpoint if we stopped between its rename and the
            // checkpoint save: move past what it holds.
            while let Some(last) = file::delivered_through(&spec, &stream, shard, next)
                .await
                .map_err(|e| format!("{}: {e}", spec.dir.display()))?
            {
                info!(
                    stream = stream.name(),
                    shard = shard.id(),
                    "delivery resumes after an existing file (records {next} to {last})"
                );
                next = last + 1;
            }
            checkpoint.set(&shard.id(), next);
            cursors.push(ShardCursor {
                shard: index,
                checkpointed: next,
                read: next,
                batch: Batch::new(spec.compression),
                since: None,
                last_arrival: None,
            });
        }
        checkpoint
            .save()
            .await
            .map_err(|e| format!("{}: {e}", spec.dir.display()))?;
        Ok(Delivery {
            stream,
            spec,
            stats,
            checkpoint,
            cursors,
        })
    }

    /// Reads what is new on every shard and writes the batches that are due (all of them
    /// when `flush_all`).
    async fn poll(&mut self, flush_all: bool) {
        let mut behind = 0;
        for i in 0..self.cursors.len() {
            self.fill(i);
            let cursor = &self.cursors[i];
            behind = cursor
                .millis_behind(&self.stream.shards()[cursor.shard])
                .max(behind);
            let due = !cursor.batch.is_empty()
                && (flush_all
                    || cursor.batch.len_bytes() as u64 >= self.spec.buffer_size
                    || cursor
                        .since
                        .is_some_and(|t| t.elapsed() >= self.spec.buffer_interval));
            if due {
                self.flush(i).await;
            }
        }
        self.stats.millis_behind.store(behind, Ordering::Relaxed);
    }

    /// Buffers new records of one shard, up to the buffer size.
    fn fill(&mut self, i: usize) {
        let shard = &self.stream.shards()[self.cursors[i].shard];
        let cursor = &mut self.cursors[i];
        if cursor.read < shard.first_offset() {
            let lost = shard.first_offset() - cursor.read;
            warn!(
                stream = self.stream.name(),
                shard = shard.id(),
                "{lost} records expired before delivery"
            );
            self.stats.expired.fetch_add(lost, Ordering::Relaxed);
            cursor.read = shard.first_offset();
            if cursor.batch.is_empty() {
                cursor.checkpointed = cursor.read;
            }
        }
        while (cursor.batch.len_bytes() as u64) < self.spec.buffer_size
            && cursor.read < shard.next_offset()
        {
            let room = (self.spec.buffer_size as usize).saturating_sub(cursor.batch.len_bytes());
            let batch = match shard.read(cursor.read, READ_RECORDS, room.max(1)) {
                Ok(batch) => batch,
                Err(e) => {
                    warn!(
                        stream = self.stream.name(),
                        shard = shard.id(),
                        "delivery read: {e}"
                    );
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            if batch.records.is_empty() {
                break;
            }
            for record in &batch.records {
                cursor.batch.push(&shard.id(), record);
            }
            cursor.since.get_or_insert_with(Instant::now);
            cursor.last_arrival = batch.records.last().map(|r| r.arrival_ms);
            cursor.read = batch.next;
        }
    }

    async fn flush(&mut self, i: usize) {
        let shard_id = self.stream.shards()[self.cursors[i].shard].id();
        let cursor = &mut self.cursors[i];
        let count = cursor.batch.records();
        match cursor.batch.write(&self.spec, self.stream.name()).await {
            Ok(path) => {
                self.stats.files.fetch_add(1, Ordering::Relaxed);
                self.stats.records.fetch_add(count, Ordering::Relaxed);
                cursor.checkpointed = cursor.read;
                cursor.batch = Batch::new(self.spec.compression);
                cursor.since = None;
                self.checkpoint.set(&shard_id, cursor.read);
                if let Err(e) = self.checkpoint.save().await {
                    // The file exists; at start it is found and skipped, so no duplicate.
                    warn!("delivery checkpoint {}: {e}", self.spec.dir.display());
                }
                tracing::debug!("delivered {count} records to {}", path.display());
            }
            Err(e) => {
                // Kept buffered and tried again on the next poll.
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                warn!("delivery to {}: {e}", self.spec.dir.display());
            }
        }
    }
}
