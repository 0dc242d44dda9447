//! Whether a mirror kept on disk from an earlier run may stay: it must mirror the very
//! JetStream streams the cluster has now, hold nothing past their last sequences, and lack
//! nothing the cluster still has below its tip unless that went by age. Otherwise it is
//! emptied and mirrored again; either way, what came since is fetched before serving.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::stream;

use crate::stream::log::Stream;

/// Clocks of the boxes may differ this much: a record older than the max age less this,
/// gone from the cluster, went by age.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Who a shard's JetStream stream is: its creation time, which a stream made again (same
/// name, numbering from 1 again) does not share.
pub(super) fn identity(info: &stream::Info) -> String {
    info.created.unix_timestamp_nanos().to_string()
}

/// Why `stream`'s records may not stay as the mirror of `upstream` (each shard's JetStream
/// stream as it is now, identified by `identities`); `Ok` when they may.
pub(super) fn check(
    stream: &Stream,
    identities: &[String],
    upstream: &[stream::Info],
) -> Result<(), String> {
    if stream.shards().iter().all(|shard| shard.next_offset() == 0) {
        return Ok(());
    }
    match stream.mirror_of() {
        None => return Err("it does not say which JetStream streams it mirrors".into()),
        Some(of) if of != identities => {
            return Err(
                "the cluster's JetStream streams are not the ones it mirrored (made again?)".into(),
            );
        }
        Some(_) => {}
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    for (index, (shard, info)) in stream.shards().iter().zip(upstream).enumerate() {
        let state = &info.state;
        // Offsets are JetStream sequences less one.
        if shard.next_offset() > state.last_sequence {
            return Err(format!(
                "shard {index} holds {} records, the cluster only {} (it lost some)",
                shard.next_offset(),
                state.last_sequence
            ));
        }
        let cluster_first = if state.messages == 0 {
            state.last_sequence
        } else {
            state.first_sequence.saturating_sub(1)
        };
        if cluster_first <= shard.first_offset() {
            continue;
        }
        // The newest record held here that the cluster no longer has (one record: a read
        // returns at least one, whatever its size). Younger than the max age, it was removed
        // by hand (a purge), and the copy must not serve it.
        let newest_gone = shard
            .read(cluster_first - 1, 1, 1)
            .map_err(|e| format!("shard {index}: {e}"))?;
        let Some(record) = newest_gone.records.first() else {
            continue;
        };
        let youngest_expired_ms = now_ms.saturating_sub(
            u64::try_from(info.config.max_age.saturating_sub(CLOCK_SKEW).as_millis())
                .unwrap_or(u64::MAX),
        );
        if record.offset < cluster_first && record.arrival_ms > youngest_expired_ms {
            return Err(format!(
                "shard {index}: the cluster removed records before their max age (a purge?)"
            ));
        }
    }
    Ok(())
}
