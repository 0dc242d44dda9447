//! The streams part of the CDN admin listener's summary: the stream log this process runs,
//! its traffic counters and its deliveries. Everything is read from atomics at summary time,
//! so the write path does nothing for the console.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::stream::delivery::DeliveryProgress;
use crate::stream::log::{Log, Shard, Stream};

/// Streams listed, the first by name: the API can create any number, the page polls every 2 s.
pub const MAX_STREAMS: usize = 256;

/// `[{name, shards, retention_seconds, records_in, bytes_in, retained, latest_arrival_ms,
/// deliveries: [{dir, records, files, failures, expired, millis_behind}]}]` by name, at most
/// [`MAX_STREAMS`]; empty without a stream log. `records_in` and `bytes_in` count since the
/// log was opened (the page charts their rates); `retained` is the records between each
/// shard's trim horizon and its tip.
pub fn summary(log: Option<&Log>) -> Value {
    let Some(log) = log else {
        return json!([]);
    };
    let deliveries = log.deliveries().running();
    let streams = log.streams();
    let listed = streams.iter().take(MAX_STREAMS).map(|stream| {
        let of_stream = deliveries.iter().filter(|d| d.stream == stream.name());
        stream_summary(stream, of_stream.map(delivery_summary).collect())
    });
    Value::Array(listed.collect())
}

fn stream_summary(stream: &Stream, deliveries: Vec<Value>) -> Value {
    let shards = stream.shards();
    let sum = |of: fn(&Shard) -> u64| shards.iter().map(of).sum::<u64>();
    json!({
        "name": stream.name(),
        "shards": shards.len(),
        "retention_seconds": stream.retention().as_secs(),
        "records_in": sum(|s| s.counters().records_in.load(Ordering::Relaxed)),
        "bytes_in": sum(|s| s.counters().bytes_in.load(Ordering::Relaxed)),
        "retained": sum(|s| s.next_offset() - s.first_offset()),
        "latest_arrival_ms": shards.iter().filter_map(|s| s.latest_arrival_ms()).max(),
        "deliveries": deliveries,
    })
}

fn delivery_summary(d: &Arc<DeliveryProgress>) -> Value {
    let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
    json!({
        "dir": d.dir,
        "records": load(&d.records),
        "files": load(&d.files),
        "failures": load(&d.failures),
        "expired": load(&d.expired),
        "millis_behind": load(&d.millis_behind),
    })
}
