//! The one writer of a shard, and group commit.
//!
//! Each shard's writer is a dedicated thread rather than a tokio task: it spends its life in
//! blocking `pwrite` and `fdatasync` calls, which on its own thread never hold a runtime
//! worker; the log needs no runtime to open; and group commit falls out of the shape: while
//! the thread is in `fdatasync`, appends queue in its channel, and the next round takes all
//! of them, writes them with one call and syncs once before acknowledging each. An idle
//! writer is a parked thread.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tracing::{error, warn};

use super::frame;
use super::index::{self, IndexEntry, SPACING, Seal};
use super::recovery::Tail;
use super::segment::Segment;
use super::shard::ShardState;
use super::{Appended, FsyncPolicy, LogError, LogOptions, NewRecord, SeqNo};

/// A round stops taking queued appends past this many bytes, bounding its buffer.
const MAX_ROUND_BYTES: usize = 16 << 20;

pub(super) enum Command {
    Append {
        records: Vec<NewRecord>,
        /// Offsets and arrivals decided elsewhere (a mirror of an upstream log); `None`: on
        /// from the tip, arriving now.
        placed: Option<Placed>,
        reply: oneshot::Sender<Result<Vec<Appended>, LogError>>,
        /// Held until the records are written: the shard's bound on queued bytes.
        permit: OwnedSemaphorePermit,
    },
    Sync {
        reply: oneshot::Sender<Result<(), LogError>>,
    },
}

impl Command {
    fn size(&self) -> usize {
        match self {
            Command::Append { records, .. } => records
                .iter()
                .map(|r| frame::encoded_len(r.partition_key.len(), r.data.len()))
                .sum(),
            Command::Sync { .. } => 0,
        }
    }
}

/// Where mirrored records go: offsets from `first_offset` on (above the tip leaves a gap, as
/// records the upstream no longer holds), each arriving when the upstream says.
#[derive(Debug)]
pub(super) struct Placed {
    pub first_offset: u64,
    /// One per record, ms since the Unix epoch; never taken below the shard's last arrival.
    pub arrivals: Vec<u64>,
}

/// An append encoded but not yet acknowledged.
struct Pending {
    reply: oneshot::Sender<Result<Vec<Appended>, LogError>>,
    appended: Vec<Appended>,
    _permit: OwnedSemaphorePermit,
}

/// Appends encoded for the active segment, continuing from its committed state.
struct Batch {
    bytes: Vec<u8>,
    points: Vec<IndexEntry>,
    pending: Vec<Pending>,
    /// Record data bytes (keys not counted), for the shard's counters.
    data_bytes: u64,
    next_offset: u64,
    last_arrival: Option<u64>,
    last_point: Option<u64>,
}

pub(super) struct Writer {
    shard: u32,
    dir: PathBuf,
    state: Arc<ShardState>,
    fsync: FsyncPolicy,
    segment_size: u64,
    active: Arc<Segment>,
    file: File,
    index: Option<File>,
    /// Committed bytes of the active segment: everything past them is cut on failure.
    len: u64,
    next_offset: u64,
    last_arrival: Option<u64>,
    last_point: Option<u64>,
    /// Written since the last sync.
    dirty: bool,
    /// A failed write could not be cut off yet; retried before the next write.
    needs_truncate: bool,
    last_sync: Instant,
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `io::Error` is not `Clone`; each waiting append gets its own copy.
fn copy(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

impl Writer {
    pub fn new(
        shard: u32,
        dir: PathBuf,
        state: Arc<ShardState>,
        tail: Tail,
        options: &LogOptions,
    ) -> Writer {
        Writer {
            shard,
            dir,
            state,
            fsync: options.fsync,
            segment_size: options.segment_size,
            active: tail.segment,
            file: tail.file,
            index: tail.index,
            len: tail.len,
            next_offset: tail.next_offset,
            last_arrival: tail.last_arrival,
            last_point: tail.last_point,
            dirty: false,
            needs_truncate: false,
            last_sync: Instant::now(),
        }
    }

    /// Handles commands until every sender is gone, then syncs what is left.
    pub fn run(mut self, commands: Receiver<Command>) {
        while let Some(first) = self.next_command(&commands) {
            let mut bytes = first.size();
            let mut round = vec![first];
            while bytes < MAX_ROUND_BYTES
                && let Ok(command) = commands.try_recv()
            {
                bytes += command.size();
                round.push(command);
            }
            self.handle(round);
        }
        if self.dirty
            && let Err(e) = self.sync()
        {
            error!(file = %self.active.path.display(), "final sync failed: {e}");
        }
    }

    /// The next command; with [`FsyncPolicy::Interval`], syncs whenever written bytes have
    /// waited an interval, even while commands keep coming.
    fn next_command(&mut self, commands: &Receiver<Command>) -> Option<Command> {
        loop {
            let FsyncPolicy::Interval(every) = self.fsync else {
                return commands.recv().ok();
            };
            if !self.dirty {
                return commands.recv().ok();
            }
            let waited = self.last_sync.elapsed();
            if waited >= every {
                if let Err(e) = self.sync() {
                    error!(file = %self.active.path.display(), "periodic sync failed: {e}");
                }
                continue;
            }
            match commands.recv_timeout(every - waited) {
                Ok(command) => return Some(command),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    fn batch(&self) -> Batch {
        Batch {
            bytes: Vec::new(),
            points: Vec::new(),
            pending: Vec::new(),
            data_bytes: 0,
            next_offset: self.next_offset,
            last_arrival: self.last_arrival,
            last_point: self.last_point,
        }
    }

    /// One round: every append encoded into one buffer per segment, one write and (with
    /// `Always`) one sync, then every acknowledgement.
    fn handle(&mut self, round: Vec<Command>) {
        let mut batch = self.batch();
        let mut syncs = Vec::new();
        for command in round {
            match command {
                Command::Sync { reply } => syncs.push(reply),
                Command::Append {
                    records,
                    placed,
                    reply,
                    permit,
                } => {
                    if let Some(placed) = &placed {
                        if placed.first_offset < batch.next_offset {
                            let _ = reply.send(Err(LogError::Misplaced {
                                shard: self.shard,
                                offset: placed.first_offset,
                                tip: batch.next_offset,
                            }));
                            continue;
                        }
                        if placed.first_offset > batch.next_offset {
                            let full = std::mem::replace(&mut batch, self.batch());
                            self.commit(full);
                            let jumped = self.roll_to(placed.first_offset);
                            batch = self.batch();
                            if let Err(e) = jumped {
                                error!("{e}");
                                let _ = reply.send(Err(e));
                                continue;
                            }
                        }
                    }
                    let used = self.len + batch.bytes.len() as u64;
                    if used > 0 && used >= self.segment_size {
                        let full = std::mem::replace(&mut batch, self.batch());
                        self.commit(full);
                        let rolled = self.roll();
                        batch = self.batch();
                        if let Err(e) = rolled {
                            error!("{e}");
                            // The receiver may have stopped waiting; nothing to tell then.
                            let _ = reply.send(Err(e));
                            continue;
                        }
                    }
                    let arrivals = placed.map(|p| p.arrivals);
                    self.stage(&mut batch, &records, arrivals.as_deref(), reply, permit);
                }
            }
        }
        self.commit(batch);
        if !syncs.is_empty() {
            let synced = if self.dirty { self.sync() } else { Ok(()) };
            for reply in syncs {
                let answer = synced.as_ref().map_err(|e| {
                    LogError::io(format!("syncing {}", self.active.path.display()), copy(e))
                });
                let _ = reply.send(answer.copied());
            }
        }
    }

    /// Encodes `records` into `batch`: offsets follow on, arrivals never go backwards.
    fn stage(
        &self,
        batch: &mut Batch,
        records: &[NewRecord],
        arrivals: Option<&[u64]>,
        reply: oneshot::Sender<Result<Vec<Appended>, LogError>>,
        permit: OwnedSemaphorePermit,
    ) {
        let now = now_ms();
        let mut appended = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            let position = self.len + batch.bytes.len() as u64;
            let at = arrivals.and_then(|a| a.get(i).copied()).unwrap_or(now);
            let arrival = batch.last_arrival.map_or(at, |last| last.max(at));
            if batch.last_point.is_none_or(|p| position - p >= SPACING) {
                batch.points.push(IndexEntry {
                    offset: batch.next_offset,
                    position,
                    arrival_ms: arrival,
                });
                batch.last_point = Some(position);
            }
            frame::encode(
                &mut batch.bytes,
                batch.next_offset,
                arrival,
                record.partition_key.as_bytes(),
                &record.data,
            );
            appended.push(Appended {
                seq: SeqNo {
                    shard: self.shard,
                    offset: batch.next_offset,
                },
                arrival_ms: arrival,
            });
            batch.next_offset += 1;
            batch.last_arrival = Some(arrival);
            batch.data_bytes += record.data.len() as u64;
        }
        batch.pending.push(Pending {
            reply,
            appended,
            _permit: permit,
        });
    }

    /// Writes `batch`, syncs it under `Always`, publishes it to readers and acknowledges it;
    /// on failure every append in it gets the error and the segment is as it was.
    fn commit(&mut self, batch: Batch) {
        if batch.pending.is_empty() {
            return;
        }
        let sync = self.fsync == FsyncPolicy::Always;
        if let Err(e) = self.write(&batch.bytes, sync) {
            let context = format!(
                "appending {} bytes to {} at byte {}",
                batch.bytes.len(),
                self.active.path.display(),
                self.len
            );
            error!("{context}: {e}");
            for pending in batch.pending {
                let _ = pending
                    .reply
                    .send(Err(LogError::io(context.clone(), copy(&e))));
            }
            return;
        }
        self.len += batch.bytes.len() as u64;
        let counters = &self.state.counters;
        let records = batch.next_offset - self.next_offset;
        counters.records_in.fetch_add(records, Ordering::Relaxed);
        counters
            .bytes_in
            .fetch_add(batch.data_bytes, Ordering::Relaxed);
        counters.commit_appends.observe(batch.pending.len() as u64);
        self.next_offset = batch.next_offset;
        self.last_arrival = batch.last_arrival;
        self.last_point = batch.last_point;
        self.active
            .publish(self.len, self.next_offset, self.last_arrival, &batch.points);
        self.state.publish(self.next_offset, self.last_arrival);
        self.append_points(&batch.points);
        for pending in batch.pending {
            let _ = pending.reply.send(Ok(pending.appended));
        }
    }

    /// Writes `bytes` after the committed ones (and syncs them if asked); on failure cuts
    /// the segment back to its committed length so no reader or recovery sees them.
    fn write(&mut self, bytes: &[u8], sync: bool) -> io::Result<()> {
        if self.needs_truncate {
            self.file.set_len(self.len)?;
            self.needs_truncate = false;
        }
        let mut result = self.write_at(bytes);
        if result.is_ok() {
            self.dirty = true;
            if sync {
                result = self.sync();
            }
        }
        if result.is_err()
            && let Err(e) = self.file.set_len(self.len)
        {
            error!(
                file = %self.active.path.display(),
                "cannot cut a failed write off (retried before the next write): {e}"
            );
            self.needs_truncate = true;
        }
        result
    }

    fn write_at(&self, bytes: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        {
            let fail =
                self.state
                    .fail_writes
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if fail.is_ok() {
                self.file
                    .write_all_at(&bytes[..bytes.len() / 2], self.len)?;
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "injected write failure",
                ));
            }
        }
        self.file.write_all_at(bytes, self.len)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.last_sync = Instant::now();
        self.file.sync_data()?;
        self.state.count_sync();
        self.dirty = false;
        Ok(())
    }

    /// Appends new points to the active index; it is a hint, so a failure only stops
    /// further appends (sealing rewrites it whole).
    fn append_points(&mut self, points: &[IndexEntry]) {
        if points.is_empty() {
            return;
        }
        let failed = match &mut self.index {
            Some(file) => file.write_all(&index::encode_points(points)).err(),
            None => None,
        };
        if let Some(e) = failed {
            warn!(file = %self.active.path.display(), "cannot append to the index: {e}");
            self.index = None;
        }
    }

    /// Seals the active segment (synced, with a complete index) and starts the next one.
    fn roll(&mut self) -> Result<(), LogError> {
        self.roll_to(self.next_offset)
    }

    /// [`Self::roll`], the next segment starting at `base` (at or above the tip: offsets in
    /// between were never kept here).
    fn roll_to(&mut self, base: u64) -> Result<(), LogError> {
        let old = self.active.path.clone();
        let context = |what: &str, path: &std::path::Path| format!("{what} {}", path.display());
        if self.dirty {
            self.sync()
                .map_err(|e| LogError::io(context("syncing", &old), e))?;
        }
        let seal = Seal {
            end_offset: self.next_offset,
            len: self.len,
            last_arrival_ms: self.last_arrival,
        };
        let old_index = index::path_for(&old);
        index::write(&old_index, &self.active.entries(), Some(seal), true)
            .map_err(|e| LogError::io(context("writing", &old_index), e))?;
        let tail = Tail::start(&self.dir, base, self.last_arrival)?;
        let segment = Arc::clone(&tail.segment);
        self.state.change_segments(|current| {
            let mut next = current.to_vec();
            next.push(Arc::clone(&segment));
            Some(next)
        });
        self.active = segment;
        self.file = tail.file;
        self.index = tail.index;
        self.len = 0;
        self.last_point = None;
        self.needs_truncate = false;
        if base > self.next_offset {
            self.next_offset = base;
            self.state.publish(base, self.last_arrival);
        }
        Ok(())
    }
}
