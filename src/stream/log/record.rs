//! The records going in and coming out.

use bytes::Bytes;

use super::SeqNo;

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub partition_key: String,
    pub data: Bytes,
}

/// Where an appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub seq: SeqNo,
    pub arrival_ms: u64,
}

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: u64,
    pub seq: SeqNo,
    pub arrival_ms: u64,
    pub partition_key: String,
    pub data: Bytes,
}

/// Records read from a shard and the offset to read from next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadBatch {
    pub records: Vec<StoredRecord>,
    pub next: u64,
}
