//! Puts: records published to their shard's subject, acknowledged by JetStream, then waited
//! for in this process's mirror.

use std::time::Duration;

use async_nats::jetstream;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::future::BoxFuture;
use tokio::sync::watch;

use super::{names, unavailable};
use crate::stream::log::{LogError, NewRecord, Upstream};

/// The longest a put waits for the mirror once the cluster has acknowledged it; past that it
/// is answered anyway (the records are safe in the cluster) and shows up in reads shortly.
const MIRROR_WAIT: Duration = Duration::from_secs(5);

/// One Kinesis stream's puts.
pub struct Publisher {
    js: jetstream::Context,
    /// Each shard's JetStream stream and subject.
    streams: Vec<String>,
    subjects: Vec<String>,
    /// Each shard's mirror: the offset after the last record it holds.
    mirrored: Vec<watch::Receiver<u64>>,
}

impl Publisher {
    pub(super) fn new(
        js: jetstream::Context,
        stream: &str,
        mirrored: Vec<watch::Receiver<u64>>,
    ) -> Publisher {
        let shards = 0..mirrored.len();
        Publisher {
            js,
            streams: shards
                .clone()
                .map(|s| names::stream_name(stream, s))
                .collect(),
            subjects: shards.map(|s| names::subject(stream, s)).collect(),
            mirrored,
        }
    }

    async fn publish(&self, shard: usize, records: Vec<NewRecord>) -> Result<Vec<u64>, LogError> {
        let subject = self
            .subjects
            .get(shard)
            .ok_or_else(|| LogError::Unavailable(format!("no shard {shard}")))?;
        // All sent before any ack is awaited: one round trip for the batch, in order.
        let mut acks = Vec::with_capacity(records.len());
        for record in records {
            let ack = self
                .js
                .publish(subject.clone(), encode(&record))
                .await
                .map_err(|e| unavailable("publishing", e))?;
            acks.push(ack);
        }
        let mut offsets = Vec::with_capacity(acks.len());
        for ack in acks {
            let ack = ack
                .await
                .map_err(|e| unavailable("waiting for JetStream's ack", e))?;
            offsets.push(ack.sequence.saturating_sub(1));
        }
        if let Some(&last) = offsets.last() {
            let mut mirrored = self.mirrored[shard].clone();
            let _ = tokio::time::timeout(MIRROR_WAIT, mirrored.wait_for(|tip| *tip > last)).await;
        }
        Ok(offsets)
    }
}

impl Publisher {
    /// Sets every shard's max age, keeping the rest of its config as the cluster has it.
    async fn keep_for(&self, retention: Duration) -> Result<(), LogError> {
        for name in &self.streams {
            let stream = self
                .js
                .get_stream(name)
                .await
                .map_err(|e| unavailable(&format!("reading {name}'s config"), e))?;
            let mut config = stream.cached_info().config.clone();
            config.max_age = retention;
            self.js
                .update_stream(config)
                .await
                .map_err(|e| unavailable(&format!("setting {name}'s max age"), e))?;
        }
        Ok(())
    }
}

impl Upstream for Publisher {
    fn put(
        &self,
        shard: usize,
        records: Vec<NewRecord>,
    ) -> BoxFuture<'_, Result<Vec<u64>, LogError>> {
        Box::pin(self.publish(shard, records))
    }

    fn set_retention(&self, retention: Duration) -> BoxFuture<'_, Result<(), LogError>> {
        Box::pin(self.keep_for(retention))
    }
}

/// A message: the partition key's length (2 bytes, big-endian), the key, the data.
pub(super) fn encode(record: &NewRecord) -> Bytes {
    let key = record.partition_key.as_bytes();
    let mut out = BytesMut::with_capacity(2 + key.len() + record.data.len());
    out.put_u16(u16::try_from(key.len()).unwrap_or(u16::MAX));
    out.put_slice(key);
    out.put_slice(&record.data);
    out.freeze()
}

/// The record of a message; `None` when it is not one of ours.
pub(super) fn decode(payload: &Bytes) -> Option<NewRecord> {
    let len = usize::from(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]));
    let key = payload.get(2..2 + len)?;
    Some(NewRecord {
        partition_key: String::from_utf8(key.to_vec()).ok()?,
        data: payload.slice(2 + len..),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_comes_back_whole_and_garbage_is_refused() {
        let record = NewRecord {
            partition_key: "k-é".into(),
            data: Bytes::from_static(b"\x00data"),
        };
        assert_eq!(decode(&encode(&record)), Some(record));
        assert_eq!(decode(&Bytes::from_static(b"\x00\x09ab")), None);
        assert_eq!(decode(&Bytes::from_static(b"")), None);
    }
}
