//! `POST /ingest/{stream}`: NDJSON for curl users. Each non-empty line must be a JSON value
//! and becomes one record (the line's bytes, without its newline). `?partition_key=<field>`
//! names a top-level field whose value is the partition key; without it each record gets a
//! random key, spreading records over the shards. The whole body is checked before anything
//! is written, so a bad line writes nothing.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

use super::put::{self, PutEntry};
use super::service::{Api, PutOperation};

/// Kinesis's record limit.
const MAX_LINE: usize = 1 << 20;
/// Lines per request: the body limit (8 MiB) bounds bytes, this bounds the response.
const MAX_LINES: usize = 10_000;

/// Appends every line of `body` to `stream`.
pub(super) async fn handle(api: &Api, name: &str, query: &str, body: &Bytes) -> Response<Bytes> {
    let Some(stream) = api.log.get(name) else {
        return error_response(StatusCode::NOT_FOUND, &format!("no stream named {name:?}"));
    };
    let key_field = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "partition_key")
        .map(|(_, v)| v.to_owned());
    let mut entries = Vec::new();
    let mut start = 0;
    for (number, line) in body.split(|&b| b == b'\n').enumerate() {
        let end = start + line.len();
        let range = start..end;
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let number = number + 1;
        if line.len() > MAX_LINE {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("line {number} is longer than {MAX_LINE} bytes"),
            );
        }
        let value: serde_json::Value = match serde_json::from_slice(line) {
            Ok(value) => value,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("line {number} is not JSON: {e}"),
                );
            }
        };
        let partition_key = match &key_field {
            None => random_key(),
            Some(field) => match value.get(field) {
                Some(serde_json::Value::String(s)) if (1..=256).contains(&s.chars().count()) => {
                    s.clone()
                }
                Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    v.to_string()
                }
                _ => {
                    return error_response(
                        StatusCode::BAD_REQUEST,
                        &format!(
                            "line {number} has no field {field:?} holding a string of 1 to 256 characters or a number"
                        ),
                    );
                }
            },
        };
        if entries.len() == MAX_LINES {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("more than {MAX_LINES} lines in one request"),
            );
        }
        let trimmed = range.start..range.start + line.len();
        entries.push(PutEntry {
            partition_key,
            explicit_hash: None,
            data: body.slice(trimmed),
        });
    }
    if entries.is_empty() {
        return error_response(StatusCode::BAD_REQUEST, "the body holds no NDJSON lines");
    }
    let start = std::time::Instant::now();
    let outcomes = put::put_all(&stream, entries).await;
    api.counters.put_latency(PutOperation::Ingest, start);
    let mut failed = 0;
    let records: Vec<serde_json::Value> = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(placed) => {
                json!({"shardId": placed.shard_id, "sequenceNumber": placed.appended.seq.to_string()})
            }
            Err(incident) => {
                failed += 1;
                api.counters.records_failed.fetch_add(1, Ordering::Relaxed);
                json!({"error": incident.to_string()})
            }
        })
        .collect();
    let status = if failed == 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        status,
        &json!({"count": records.len() - failed, "failed": failed, "records": records}),
    )
}

/// `{"error": "..."}` with `status`.
pub(super) fn error_response(status: StatusCode, message: &str) -> Response<Bytes> {
    json_response(status, &json!({ "error": message }))
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Bytes> {
    let mut text = value.to_string();
    text.push('\n');
    let mut response = Response::new(Bytes::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// 16 random hex digits: spreads keyless lines evenly over the shards.
fn random_key() -> String {
    format!("{:016x}", rand::random::<u64>())
}
