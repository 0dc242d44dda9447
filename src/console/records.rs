//! The console's record browser: `GET /console/api/records?stream=S&shard=ID&limit=N`, the
//! latest records of one shard. Bounded so a page never pulls megabytes: at most
//! [`MAX_LIMIT`] records, each with at most [`DATA_SHOWN`] bytes of its data (base64; the
//! page decodes it), read [`READ_BYTES`] at a time. Reading counts as no GetRecords.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use crate::stream::log::{Log, Shard, StoredRecord};

/// Where the page asks for records.
pub const RECORDS_PATH: &str = "/console/api/records";
/// Records shown when the query names no limit.
const DEFAULT_LIMIT: u64 = 20;
/// The most records one answer holds; larger limits are clamped.
pub const MAX_LIMIT: u64 = 100;
/// Data bytes of a record sent to the page (its size is sent whole).
pub const DATA_SHOWN: usize = 4096;
/// Keys and data read from the shard per read: a read holds whole records (up to 1 MiB of
/// data each) before they are cut down to [`DATA_SHOWN`].
const READ_BYTES: usize = 4 << 20;

/// What the query asks for.
struct Query {
    stream: String,
    shard: String,
    limit: u64,
}

/// Answers a GET of [`RECORDS_PATH`] with `query` (the URI's query string) from `log`, the
/// process's stream log if it runs one: 200 with the records, oldest first; 400 for a
/// malformed query; 404 for an unknown stream or shard; 500 when the shard cannot be read.
pub fn answer(log: Option<&Log>, query: Option<&str>) -> Response<Bytes> {
    let (status, body) = match parse(query.unwrap_or("")).and_then(|q| latest(log, &q)) {
        Ok(found) => (StatusCode::OK, found),
        Err((status, message)) => (status, json!({ "message": message })),
    };
    let mut body = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    super::respond(status, "application/json", "no-store", body.into())
}

type Failure = (StatusCode, String);

fn parse(query: &str) -> Result<Query, Failure> {
    let bad = |message: String| (StatusCode::BAD_REQUEST, message);
    let (mut stream, mut shard, mut limit) = (None, None, DEFAULT_LIMIT);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| bad(format!("{name}: not UTF-8")))?
            .into_owned();
        match name {
            "stream" => stream = Some(value),
            "shard" => shard = Some(value),
            "limit" => {
                let n: u64 = value
                    .parse()
                    .map_err(|_| bad(format!("limit {value:?} is not a whole number")))?;
                limit = n.clamp(1, MAX_LIMIT);
            }
            _ => {}
        }
    }
    Ok(Query {
        stream: stream.ok_or_else(|| bad("name a stream: ?stream=NAME".into()))?,
        shard: shard.ok_or_else(|| bad("name a shard: &shard=shardId-000000000000".into()))?,
        limit,
    })
}

/// The latest `query.limit` records of the shard, as the page shows them.
fn latest(log: Option<&Log>, query: &Query) -> Result<Value, Failure> {
    let not_found = |message: String| (StatusCode::NOT_FOUND, message);
    let stream = log
        .and_then(|log| log.get(&query.stream))
        .ok_or_else(|| not_found(format!("no stream {:?} in this process", query.stream)))?;
    let shard = (stream.shards().iter())
        .find(|s| s.id() == query.shard)
        .ok_or_else(|| {
            not_found(format!(
                "stream {:?} has no shard {:?} (it has shardId-000000000000 to {})",
                query.stream,
                query.shard,
                stream.shards().last().map_or_else(String::new, Shard::id)
            ))
        })?;
    let (records, error) = read_latest(shard, query.limit);
    let mut found = json!({
        "stream": stream.name(),
        "shard": shard.id(),
        "first_offset": shard.first_offset(),
        "next_offset": shard.next_offset(),
        "limit": query.limit,
        "data_shown": DATA_SHOWN,
        "records": records,
    });
    if let Some(error) = error {
        found["error"] = Value::from(error);
    }
    Ok(found)
}

/// Up to `limit` records from `max(trim horizon, tip - limit)` to the tip, each cut down as
/// sent; the error that ended the read early, if one did (what was read before it is kept).
/// Fewer than `limit` when retention or a recovery gap leaves fewer offsets in that range.
fn read_latest(shard: &Shard, limit: u64) -> (Vec<Value>, Option<String>) {
    let tip = shard.next_offset();
    let mut from = shard.first_offset().max(tip.saturating_sub(limit));
    let mut records = Vec::new();
    while from < tip && (records.len() as u64) < limit {
        let want = usize::try_from(limit).unwrap_or(usize::MAX) - records.len();
        match shard.read(from, want, READ_BYTES) {
            Ok(batch) if batch.records.is_empty() => break,
            Ok(batch) => {
                records.extend(batch.records.iter().map(shown));
                from = batch.next;
            }
            Err(e) => {
                return (
                    records,
                    Some(format!("reading {} from offset {from}: {e}", shard.id())),
                );
            }
        }
    }
    (records, None)
}

/// A record as sent to the page: its data's first [`DATA_SHOWN`] bytes, and its whole size.
fn shown(record: &StoredRecord) -> Value {
    let data = &record.data[..record.data.len().min(DATA_SHOWN)];
    json!({
        "sequence_number": record.seq.to_string(),
        "offset": record.offset,
        "arrival_ms": record.arrival_ms,
        "partition_key": record.partition_key,
        "size": record.data.len(),
        "data": STANDARD.encode(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_checked_and_the_limit_clamped() {
        let q = parse("stream=logs&shard=shardId-000000000001&limit=500").unwrap();
        assert_eq!(
            (q.stream.as_str(), q.shard.as_str(), q.limit),
            ("logs", "shardId-000000000001", MAX_LIMIT)
        );
        assert_eq!(parse("stream=a&shard=b&limit=0").unwrap().limit, 1);
        assert_eq!(parse("stream=a%2Eb&shard=b").unwrap().stream, "a.b");
        assert_eq!(parse("shard=b&stream=a").unwrap().limit, DEFAULT_LIMIT);
        for bad in [
            "",
            "stream=a",
            "shard=b",
            "stream=a&shard=b&limit=x",
            "stream=%FF&shard=b",
        ] {
            assert_eq!(
                parse(bad).err().unwrap().0,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
    }

    #[test]
    fn without_a_stream_log_every_stream_is_unknown() {
        let response = answer(None, Some("stream=logs&shard=shardId-000000000000"));
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert!(body["message"].as_str().unwrap().contains("logs"), "{body}");
    }
}
