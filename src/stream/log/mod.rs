//! The durable, sharded, append-only log behind the Kinesis-compatible API.
//!
//! A [`Log`] holds named [`Stream`]s; a stream holds a fixed set of [`Shard`]s, each an
//! ordered sequence of records numbered 0, 1, 2, ... forever (its *offsets*; retention never
//! renumbers). A record's [`SeqNo`] is `((shard + 1) << 64) | offset` as a decimal string.
//!
//! # On disk
//! ```text
//! data_dir/
//!   streams/<name>/stream.json             meta: shards, retention, created, configured
//!   streams/<name>/shard-000000/
//!     00000000000000000000.seg             records, named by the first offset (20 digits)
//!     00000000000000000000.idx             its sparse index (a hint: rebuilt when wrong)
//!   staging/<name>/                        a stream being created (renamed into streams/)
//!   trash/<name>-<n>/                      a stream being deleted (renamed out of streams/)
//! ```
//! `stream.json` is replaced atomically (temp file, fsync, rename, fsync of the folder).
//! Creating a stream builds it in `staging/` and renames it into `streams/`; deleting renames
//! it into `trash/` first; both side folders are emptied at open, so a crash never leaves a
//! half-made or half-deleted stream that loads.
//!
//! ## Segment files (`.seg`)
//! A shard appends to its last segment and starts a new one before an append once the last
//! has reached `segment_size` (an append never spans segments, so it is written, or fails,
//! whole); creating a segment fsyncs the folder. Records are frames, little-endian:
//! ```text
//! 0   2  magic EB 5C          a scan can find frames again after damage
//! 2   1  version (1)
//! 3   1  flags (0)
//! 4   4  body length          22 + key length + data length, at most 22 + 1 KiB + 1 MiB
//! 8   4  CRC32C of the body
//! 12  8  offset               absolute, so a resync after damage knows where it is
//! 20  8  arrival, ms since the Unix epoch (never decreasing within a shard)
//! 28  2  partition key length
//! 30  4  data length
//! 34  .. partition key (UTF-8), then data
//! ```
//! Offsets within a segment are contiguous; a break is damage. The next segment starts at
//! the offset after its last record, or above it where recovery cut a torn record (below);
//! the sealed index records that end, so such a gap is known, not damage.
//!
//! ## Index files (`.idx`)
//! An 8-byte header (`EWIX`, version 1) then 32-byte entries: offset, byte position, arrival
//! (u64 each), kind (u32: 0 = point, 1 = seal), CRC32C of the previous 28 bytes. A point is
//! written for a segment's first record and then for the first record at least 4 KiB past
//! the previous point, so a seek reads at most ~4 KiB before its record; points are held in
//! memory for seeks by offset and by arrival time. The last segment's index is appended to
//! as records commit, unsynced; a sealed segment's index is rewritten whole, synced, and
//! ends with a seal entry (end offset, byte length, last arrival) so opening trusts it
//! without a scan. A missing or inconsistent index is rebuilt by scanning the segment.
//!
//! # Recovery
//! Opening a shard scans its last segment from the last index point that still holds the
//! frame it names. A damaged frame with no valid frame after it is a torn write and is cut
//! off (`warn!`); damage followed by valid frames is never cut: it is logged (`error!`),
//! an index point is placed on the next valid frame, and reads that reach the damage get
//! [`LogError::Corrupt`] naming the file and byte position, while later records stay
//! readable.
//!
//! ## A sequence number is never handed out twice
//! A cut record may have been read (under `fsync = "interval"` appends are acknowledged
//! before they are durable), and a consumer checkpointed on its sequence number would skip
//! a new record that reused it. So the writer never continues after a cut: recovery first
//! starts a new, empty last segment (file created, folder synced) at an offset above every
//! record the cut bytes could have held — they were numbered on from the last valid record,
//! each at least 34 bytes, so `end + ceil(cut bytes / 34)` — and only then cuts and seals
//! the damaged one with its true end. The skip is written down by the new segment's *name*
//! before anything is cut, so a crash at any point, a second cut, or a cut that empties a
//! whole segment can only move the next offset further up; no other file has to agree.
//! Reads and time seeks step over the gap. What never reached the disk leaves nothing to
//! remember it by: under `fsync = "interval"` the records of the last interval can be lost
//! whole, and their numbers reused; `fsync = "always"` acknowledges nothing before it is
//! durable.
//!
//! # Writing
//! Each shard has one writer thread that takes every append waiting for it, writes them with
//! one call and, under [`FsyncPolicy::Always`], makes them durable with one `fdatasync`
//! before acknowledging any (group commit). Readers see only acknowledged records.

mod cursor;
mod error;
mod frame;
mod hash;
mod index;
mod meta;
mod mirror_state;
mod record;
mod recovery;
mod registry;
mod retention;
mod segment;
mod seqno;
mod shard;
mod stream;
mod upstream;
mod writer;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use crate::config::stream::{FsyncPolicy, MAX_SHARDS};
pub use error::LogError;
pub use hash::hash_ranges;
pub use record::{Appended, NewRecord, ReadBatch, StoredRecord};
pub use registry::{Log, StreamChanges};
pub use seqno::{ParseSeqNoError, SeqNo};
pub use shard::{Shard, ShardCounters};
pub use stream::Stream;
pub use upstream::Upstream;

/// The largest record data Kinesis accepts.
pub const MAX_DATA_BYTES: usize = 1 << 20;
/// Kinesis allows 256 characters of partition key; four bytes each is the UTF-8 worst case.
pub const MAX_KEY_BYTES: usize = 1024;

/// Where and how the log keeps its files.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub data_dir: PathBuf,
    pub fsync: FsyncPolicy,
    /// A shard starts a new segment file once its last one passes this many bytes.
    pub segment_size: u64,
    /// The log mirrors an upstream one (a NATS JetStream cluster): what is on disk is a
    /// copy. At open it is dropped whole unless it can be trusted (`mirror_state`), and so
    /// are folders of streams the config no longer names; the rest is kept only while it
    /// matches its upstream (checked when attached) and resumes from its recovered tip.
    pub mirror: bool,
}
