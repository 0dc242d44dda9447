//! A log that numbers a stream's records before this one holds them (a NATS JetStream
//! cluster): puts go there, and this log is kept as its mirror.

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{LogError, NewRecord};

pub trait Upstream: Send + Sync {
    /// Appends `records` to shard `shard` upstream, in order: their offsets, once the
    /// upstream has acknowledged them (and, as far as it can wait, this log mirrors them).
    fn put(
        &self,
        shard: usize,
        records: Vec<NewRecord>,
    ) -> BoxFuture<'_, Result<Vec<u64>, LogError>>;

    /// Keeps the stream's records upstream for `retention` from now on.
    fn set_retention(&self, retention: Duration) -> BoxFuture<'_, Result<(), LogError>>;
}
