//! The streams part of the CDN admin listener's summary: the stream log this process runs.

use serde_json::{Value, json};

use crate::stream::log::Log;

/// `[{name, shards, retention_seconds}]` by name; empty without a stream log.
pub fn summary(log: Option<&Log>) -> Value {
    let mut streams: Vec<Value> = (log.map(Log::streams).unwrap_or_default().iter())
        .map(|stream| {
            json!({
                "name": stream.name(),
                "shards": stream.shards().len(),
                "retention_seconds": stream.retention().as_secs(),
            })
        })
        .collect();
    streams.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Value::Array(streams)
}
