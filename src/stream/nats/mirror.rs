//! Each shard's mirror: an ordered consumer of its JetStream stream from the local tip on,
//! appending what arrives into the local log at JetStream's numbers and times. Restarted
//! with backoff when the cluster goes away; it picks up where the local log ends.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::publish::decode;
use crate::stream::log::{LogError, NewRecord, Stream};

/// How often a process reads the cluster's max age of each stream, so a retention changed
/// through another process reaches this one's DescribeStream and mirror trimming.
const RETENTION_CHECK: Duration = Duration::from_secs(5);

/// Messages taken into one local append at most.
const BATCH: usize = 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long the consumer may stay quiet before the upstream is asked whether it is behind.
const STALL_CHECK: Duration = Duration::from_millis(500);

pub(super) fn spawn(
    js: jetstream::Context,
    name: String,
    stream: Arc<Stream>,
    shard: usize,
    tip: watch::Sender<u64>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let before = stream.shards()[shard].next_offset();
            tokio::select! {
                () = stop.cancelled() => return,
                ended = follow(&js, &name, &stream, shard, &tip) => {
                    if let Err(e) = ended {
                        warn!(stream = %stream.name(), shard, "mirroring {name}: {e}; retrying in {backoff:?}");
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            // Progress since the last failure starts the backoff over.
            backoff = if stream.shards()[shard].next_offset() > before {
                Duration::from_millis(100)
            } else {
                (backoff * 2).min(MAX_BACKOFF)
            };
        }
    });
}

/// Keeps `stream`'s retention at the max age of `name` (its first shard's JetStream stream)
/// as the cluster has it. An unreachable cluster is the mirrors' to report.
pub(super) fn follow_retention(
    js: jetstream::Context,
    name: String,
    stream: Arc<Stream>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(RETENTION_CHECK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            let Ok(upstream) = js.get_stream(&name).await else {
                continue;
            };
            let max_age = upstream.cached_info().config.max_age;
            match adopt_retention(&stream, max_age) {
                Ok(false) => {}
                Ok(true) => {
                    info!(stream = %stream.name(), "retention {max_age:?}, as the cluster keeps it now")
                }
                Err(e) => {
                    warn!(stream = %stream.name(), "keeping the cluster's retention {max_age:?}: {e}")
                }
            }
        }
    });
}

/// Makes the cluster's `max_age` `stream`'s retention; true when that changed it.
pub(super) fn adopt_retention(stream: &Stream, max_age: Duration) -> Result<bool, LogError> {
    // Zero is JetStream's "for ever", which edgewise never sets; someone else did.
    if max_age.is_zero() || max_age == stream.retention() {
        return Ok(false);
    }
    stream.set_retention(max_age).map(|()| true)
}

/// Appends everything from the local tip on, as it comes, until the consumer fails.
async fn follow(
    js: &jetstream::Context,
    name: &str,
    stream: &Stream,
    shard: usize,
    tip: &watch::Sender<u64>,
) -> Result<(), String> {
    let local = &stream.shards()[shard];
    let start_sequence = local.next_offset() + 1;
    let mut upstream = js.get_stream(name).await.map_err(|e| e.to_string())?;
    let consumer = upstream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence },
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| e.to_string())?
        .ready_chunks(BATCH);
    loop {
        let chunk = match tokio::time::timeout(STALL_CHECK, messages.next()).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Err("the consumer ended".into()),
            // Quiet: fine if there is nothing new. A consumer on a server that went away
            // can stay quiet with records waiting; then it is made again.
            Err(_) => {
                let info = upstream.info().await.map_err(|e| e.to_string())?;
                let (last, tip) = (info.state.last_sequence, local.next_offset());
                // No records at all (all past their max age): the last sequence stays.
                if info.state.messages > 0 && last > tip {
                    return Err(format!(
                        "stalled at offset {tip} with {} records upstream",
                        last - tip
                    ));
                }
                continue;
            }
        };
        let mut run = Run::default();
        for message in chunk {
            let message = message.map_err(|e| e.to_string())?;
            let info = message.info().map_err(|e| e.to_string())?;
            let offset = info.stream_sequence.saturating_sub(1);
            let arrival =
                u64::try_from(info.published.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
            // A message that is not a record leaves its number unused, as a gap.
            let record = decode(&message.payload);
            if record.is_none() {
                warn!(stream = %stream.name(), shard, offset, "a message on {name} is not an edgewise record; skipped");
            }
            if run
                .first
                .is_some_and(|first| first + run.records.len() as u64 != offset)
                || record.is_none()
            {
                run.flush(local).await?;
            }
            if let Some(record) = record {
                run.first.get_or_insert(offset);
                run.records.push(record);
                run.arrivals.push(arrival);
            }
        }
        run.flush(local).await?;
        tip.send_replace(local.next_offset());
    }
}

/// Consecutive records for one local append.
#[derive(Default)]
struct Run {
    first: Option<u64>,
    records: Vec<NewRecord>,
    arrivals: Vec<u64>,
}

impl Run {
    async fn flush(&mut self, local: &crate::stream::log::Shard) -> Result<(), String> {
        let Some(first) = self.first.take() else {
            return Ok(());
        };
        let records = std::mem::take(&mut self.records);
        let arrivals = std::mem::take(&mut self.arrivals);
        local
            .mirror(first, records, arrivals)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
