//! A shard: its segments as readers see them, its writer thread, and reads by offset and by
//! time. Reads take no lock across I/O: they load the segment list and the committed tip
//! (atomics and an `ArcSwap`) and then read files positionally.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::{self, JoinHandle};

use arc_swap::ArcSwap;
use tokio::sync::{Semaphore, oneshot};
use tracing::error;

use super::frame;
use super::recovery;
use super::segment::{Collect, Segment};
use super::writer::{Command, Placed, Writer};
use super::{Appended, LogError, LogOptions, MAX_DATA_BYTES, MAX_KEY_BYTES, NewRecord, ReadBatch};
use crate::metrics::Histogram;

/// Bytes of appends a shard lets wait for its writer before appenders wait instead: bounds
/// memory when the disk is slower than the clients.
const APPEND_BUDGET: usize = 32 << 20;
/// Stands for "no records yet" in `latest_arrival`.
const NO_ARRIVAL: u64 = u64::MAX;

/// Bounds of the group-commit histogram: appends acknowledged by one write (and sync).
const COMMIT_APPENDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// A shard's traffic since the log was opened, for `/metrics`.
#[derive(Debug)]
pub struct ShardCounters {
    /// Records acknowledged, and their data bytes (partition keys not counted).
    pub records_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Records handed to GetRecords callers, and their data bytes.
    pub records_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Appends (each a PutRecord, one shard's part of a PutRecords, ...) per write: group
    /// commit at work when above 1.
    pub commit_appends: Histogram,
}

/// What readers and the writer share.
pub(super) struct ShardState {
    /// Oldest first; the last is the one being appended to.
    segments: ArcSwap<Vec<Arc<Segment>>>,
    /// Serialises changes to `segments` (the writer adds, retention removes).
    roster: Mutex<()>,
    /// The offset the next acknowledged record gets; everything below is readable.
    tip: AtomicU64,
    latest_arrival: AtomicU64,
    /// fdatasync calls on segment files, to observe group commit.
    syncs: AtomicU64,
    pub(super) counters: ShardCounters,
    /// Writes the writer should fail (after writing half), to exercise the failure path.
    #[cfg(test)]
    pub fail_writes: std::sync::atomic::AtomicU32,
}

impl ShardState {
    fn new(segments: Vec<Arc<Segment>>, tip: u64, latest_arrival: Option<u64>) -> ShardState {
        ShardState {
            segments: ArcSwap::from_pointee(segments),
            roster: Mutex::new(()),
            tip: AtomicU64::new(tip),
            latest_arrival: AtomicU64::new(latest_arrival.unwrap_or(NO_ARRIVAL)),
            syncs: AtomicU64::new(0),
            counters: ShardCounters {
                records_in: AtomicU64::new(0),
                bytes_in: AtomicU64::new(0),
                records_out: AtomicU64::new(0),
                bytes_out: AtomicU64::new(0),
                commit_appends: Histogram::new(COMMIT_APPENDS, 1.0),
            },
            #[cfg(test)]
            fail_writes: std::sync::atomic::AtomicU32::new(0),
        }
    }

    pub fn segments(&self) -> Arc<Vec<Arc<Segment>>> {
        self.segments.load_full()
    }

    pub fn tip(&self) -> u64 {
        self.tip.load(Ordering::Acquire)
    }

    /// Replaces the segment list with `change(current)`, if it returns one.
    pub fn change_segments(
        &self,
        change: impl FnOnce(&[Arc<Segment>]) -> Option<Vec<Arc<Segment>>>,
    ) {
        let _roster = self.roster.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(segments) = change(&self.segments.load()) {
            self.segments.store(Arc::new(segments));
        }
    }

    /// Makes records below `tip` readable; the segment holding them is published first.
    pub fn publish(&self, tip: u64, latest_arrival: Option<u64>) {
        self.latest_arrival
            .store(latest_arrival.unwrap_or(NO_ARRIVAL), Ordering::Release);
        self.tip.store(tip, Ordering::Release);
    }

    pub fn count_sync(&self) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct Shard {
    stream: Arc<str>,
    index: u32,
    hash_range: (u128, u128),
    pub(super) state: Arc<ShardState>,
    /// `None` once closed; the writer ends when the last sender is gone.
    sender: Mutex<Option<mpsc::Sender<Command>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    budget: Arc<Semaphore>,
}

impl Shard {
    /// Recovers the shard in `stream_dir` and starts its writer.
    pub(super) fn open(
        stream: &Arc<str>,
        stream_dir: &Path,
        index: u32,
        hash_range: (u128, u128),
        options: &LogOptions,
    ) -> Result<Shard, LogError> {
        let dir = stream_dir.join(format!("shard-{index:06}"));
        let recovered = recovery::recover(&dir)?;
        let tail = recovered.tail;
        let state = Arc::new(ShardState::new(
            recovered.segments,
            tail.next_offset,
            recovered.latest_arrival,
        ));
        let writer = Writer::new(index, dir, Arc::clone(&state), tail, options);
        let (sender, receiver) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(format!("log-{stream}-{index}"))
            .spawn(move || writer.run(receiver))
            .map_err(|e| LogError::io(format!("starting the writer of shard {index}"), e))?;
        Ok(Shard {
            stream: Arc::clone(stream),
            index,
            hash_range,
            state,
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(thread)),
            budget: Arc::new(Semaphore::new(APPEND_BUDGET)),
        })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    /// Kinesis's form: `shardId-000000000000`.
    pub fn id(&self) -> String {
        format!("shardId-{:012}", self.index)
    }

    /// Inclusive.
    pub fn hash_range(&self) -> (u128, u128) {
        self.hash_range
    }

    /// The trim horizon: the oldest retained record.
    pub fn first_offset(&self) -> u64 {
        let tip = self.state.tip();
        self.state
            .segments()
            .first()
            .map_or(tip, |s| s.base.min(tip))
    }

    /// The tip: the offset the next acknowledged record will get.
    pub fn next_offset(&self) -> u64 {
        self.state.tip()
    }

    pub fn latest_arrival_ms(&self) -> Option<u64> {
        let ms = self.state.latest_arrival.load(Ordering::Acquire);
        (ms != NO_ARRIVAL).then_some(ms)
    }

    /// fdatasync calls on this shard's segment files since open.
    pub fn syncs(&self) -> u64 {
        self.state.syncs.load(Ordering::Relaxed)
    }

    /// Traffic counters.
    pub fn counters(&self) -> &ShardCounters {
        &self.state.counters
    }

    /// Acknowledged records from `from` (clamped up to the trim horizon), at most
    /// `max_records` and `max_bytes` of keys and data — but at least one record when any is
    /// available. Damage ends a batch early; a read that starts at damage is
    /// [`LogError::Corrupt`].
    pub fn read(
        &self,
        from: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<ReadBatch, LogError> {
        // The tip first: every segment holding records below it is in the list loaded after.
        let tip = self.state.tip();
        let segments = self.state.segments();
        let first = segments.first().map_or(tip, |s| s.base);
        let mut out = Collect::new(self.index, from.max(first), max_records, max_bytes);
        let mut i = segments
            .partition_point(|s| s.base <= out.next)
            .saturating_sub(1);
        while out.next < tip && !out.full() {
            let Some(segment) = segments.get(i) else {
                break;
            };
            // Offsets between a segment's end and the next one's base were never kept.
            let limit = segment.end().min(tip);
            if out.next < limit
                && let Err(e) = segment.read_into(limit, &mut out)
            {
                if out.records.is_empty() {
                    return Err(e);
                }
                break;
            }
            if !out.full() {
                // The segment is read to its end, and no offset lies between it and the next.
                let next_base = segments.get(i + 1).map_or(tip, |next| next.base.min(tip));
                out.next = out.next.max(next_base);
            }
            i += 1;
        }
        Ok(ReadBatch {
            next: out.next,
            records: out.records,
        })
    }

    /// The first offset that arrived at or after `ms`: the tip if none did, the trim horizon
    /// if `ms` is older than everything retained.
    pub fn offset_at_timestamp(&self, ms: u64) -> Result<u64, LogError> {
        let tip = self.state.tip();
        let segments = self.state.segments();
        // Arrivals never decrease, so the answer is in the first segment holding a record
        // that arrived at or after `ms`. Not a binary search: a segment that recovery cut
        // empty has no arrival to order it by.
        let found = segments
            .iter()
            .find(|s| s.last_arrival().is_some_and(|last| last >= ms));
        let Some(segment) = found else {
            return Ok(tip);
        };
        segment.find_time(ms, segment.end().min(tip))
    }

    /// Hands records to the writer and waits for its acknowledgement.
    pub(super) async fn append(&self, records: Vec<NewRecord>) -> Result<Vec<Appended>, LogError> {
        self.write(records, None).await
    }

    /// Appends records an upstream log numbered and timed: from `first_offset` (a gap above
    /// the tip is allowed, below is [`LogError::Misplaced`]), each arriving at its `arrivals`
    /// entry (clamped so arrivals never decrease).
    pub async fn mirror(
        &self,
        first_offset: u64,
        records: Vec<NewRecord>,
        arrivals: Vec<u64>,
    ) -> Result<Vec<Appended>, LogError> {
        let placed = Placed {
            first_offset,
            arrivals,
        };
        self.write(records, Some(placed)).await
    }

    async fn write(
        &self,
        records: Vec<NewRecord>,
        placed: Option<Placed>,
    ) -> Result<Vec<Appended>, LogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut size = 0;
        for r in &records {
            let (key_len, data_len) = (r.partition_key.len(), r.data.len());
            if key_len > MAX_KEY_BYTES || data_len > MAX_DATA_BYTES {
                return Err(LogError::RecordTooLarge { key_len, data_len });
            }
            size += frame::encoded_len(key_len, data_len);
        }
        // Within the budget, so the cast cannot truncate.
        let permits = size.min(APPEND_BUDGET) as u32;
        let permit = Arc::clone(&self.budget)
            .acquire_many_owned(permits)
            .await
            .map_err(|_| self.closed())?;
        let (reply, answer) = oneshot::channel();
        self.send(Command::Append {
            records,
            placed,
            reply,
            permit,
        })?;
        answer.await.map_err(|_| self.closed())?
    }

    /// Syncs everything written so far.
    pub(super) async fn sync(&self) -> Result<(), LogError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Sync { reply })?;
        answer.await.map_err(|_| self.closed())?
    }

    fn send(&self, command: Command) -> Result<(), LogError> {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        sender
            .as_ref()
            .ok_or_else(|| self.closed())?
            .send(command)
            .map_err(|_| self.closed())
    }

    fn closed(&self) -> LogError {
        LogError::Closed {
            stream: self.stream.to_string(),
            shard: self.index,
        }
    }

    /// Stops the writer once it has handled every command already sent, and waits for it.
    pub(super) fn close(&self) {
        drop(
            self.sender
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        self.budget.close();
        let thread = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            error!(stream = %self.stream, shard = self.index, "the shard writer panicked");
        }
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("stream", &self.stream)
            .field("index", &self.index)
            .field("next_offset", &self.next_offset())
            .finish_non_exhaustive()
    }
}
