//! What can go wrong in the log, each saying what and where.

use crate::app::dir_lock::DirLockError;
use std::io;
use std::path::PathBuf;

use super::MAX_SHARDS;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("stream {0:?} does not exist")]
    NotFound(String),
    #[error("stream {0:?} already exists")]
    AlreadyExists(String),
    #[error("stream {0:?} is in the config file; remove it there to delete it")]
    Configured(String),
    #[error("{0:?} is not a stream name (1-128 of letters, digits, _ . -)")]
    InvalidName(String),
    #[error("{requested} shards is out of range (1 to {MAX_SHARDS})")]
    TooManyShards { requested: u32 },
    #[error(
        "stream {name:?} has {on_disk} shards on disk but {configured} in the config; \
         resharding would move partition keys to other shards, so it is refused"
    )]
    ShardMismatch {
        name: String,
        on_disk: u32,
        configured: u32,
    },
    #[error("stream {stream:?} has no shard {shard}")]
    NoSuchShard { stream: String, shard: usize },
    #[error(
        "record too large: {key_len} bytes of partition key (at most {}) and {data_len} of data \
         (at most {})",
        super::MAX_KEY_BYTES,
        super::MAX_DATA_BYTES
    )]
    RecordTooLarge { key_len: usize, data_len: usize },
    #[error("shard {shard} of stream {stream:?} is closed (the stream was deleted)")]
    Closed { stream: String, shard: u32 },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{} is corrupt at byte {position}: {detail}", file.display())]
    Corrupt {
        file: PathBuf,
        position: u64,
        detail: String,
    },
    #[error("{} is not a valid stream meta file: {detail}", file.display())]
    BadMeta { file: PathBuf, detail: String },
    #[error(transparent)]
    Locked(#[from] DirLockError),
    #[error("shard {shard}: a mirrored record at offset {offset} is below the tip {tip}")]
    Misplaced { shard: u32, offset: u64, tip: u64 },
    /// The upstream log (a NATS JetStream cluster) did not take the records: nothing of them
    /// was acknowledged.
    #[error("the stream cluster is unavailable: {0}")]
    Unavailable(String),
}

impl LogError {
    pub(super) fn io(context: impl Into<String>, source: io::Error) -> LogError {
        LogError::Io {
            context: context.into(),
            source,
        }
    }
}
