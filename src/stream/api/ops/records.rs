//! Data-plane operations: PutRecord, PutRecords, GetShardIterator, GetRecords.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;

use super::{internal, named_stream, not_found};
use crate::stream::api::error::{ErrorCode, Incident, KinesisError};
use crate::stream::api::put::{self, PutEntry, parse_hash_key};
use crate::stream::api::service::{Api, PutOperation, now_ms};
use crate::stream::api::token::ShardIterator;
use crate::stream::api::value::{Fields, Value, Violations};
use crate::stream::log::{SeqNo, Stream};

/// Kinesis's record limit: 1 MiB of data.
const MAX_DATA: usize = 1 << 20;
const MAX_PUT_RECORDS: usize = 500;
/// A PutRecords request carries at most 5 MiB of data and partition keys.
const MAX_PUT_BYTES: usize = 5 << 20;
const MAX_GET_RECORDS: i64 = 10_000;
/// GetRecords returns at most 10 MiB.
const MAX_GET_BYTES: usize = 10 << 20;
const HASH_KEY_PATTERN: &str = "0|([1-9]\\d{0,38})";
const SEQUENCE_PATTERN: &str = "0|([1-9]\\d{0,128})";
const SHARD_ID_PATTERN: &str = "[a-zA-Z0-9_.-]+";
const ITERATOR_TYPES: [&str; 5] = [
    "AT_SEQUENCE_NUMBER",
    "AFTER_SEQUENCE_NUMBER",
    "TRIM_HORIZON",
    "LATEST",
    "AT_TIMESTAMP",
];

fn is_decimal(text: &str, max_digits: usize) -> bool {
    (text == "0" || !text.starts_with('0'))
        && (1..=max_digits).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_digit())
}

/// One record's members, checked against the model; `None` when a violation was recorded.
fn entry(fields: &Fields<'_>, v: &mut Violations) -> Result<Option<PutEntry>, KinesisError> {
    let mut data = fields.blob("Data")?;
    let key = fields.str("PartitionKey")?;
    let hash = fields.str("ExplicitHashKey")?;
    // A valid record, the common case, without building the member paths (an allocation
    // each) that only violation messages use.
    if hash.is_none()
        && let Some(key) = key
        && (1..=256).contains(&key.chars().count())
        && data.as_ref().is_some_and(|d| d.len() <= MAX_DATA)
        && let Some(data) = data.take()
    {
        return Ok(Some(PutEntry {
            partition_key: key.to_owned(),
            explicit_hash: None,
            data,
        }));
    }
    let data = v.not_null(&fields.path("Data"), data);
    let key = v.not_null(&fields.path("PartitionKey"), key);
    if let Some(data) = &data {
        v.blob_length(&fields.path("Data"), data, 0, MAX_DATA);
    }
    if let Some(key) = key {
        v.length(&fields.path("PartitionKey"), key, 1, 256);
    }
    if let Some(hash) = hash {
        v.pattern(
            &fields.path("ExplicitHashKey"),
            hash,
            HASH_KEY_PATTERN,
            is_decimal(hash, 39),
        );
    }
    let (Some(data), Some(key)) = (data, key) else {
        return Ok(None);
    };
    let explicit_hash = match hash {
        Some(text) if is_decimal(text, 39) => Some(parse_hash_key(text).ok_or_else(|| {
            KinesisError::new(
                ErrorCode::InvalidArgument,
                format!("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {text}"),
            )
        })?),
        _ => None,
    };
    Ok(Some(PutEntry {
        partition_key: key.to_owned(),
        explicit_hash,
        data,
    }))
}

pub(super) async fn put_record(api: &Api, fields: &Fields<'_>) -> Result<Value, KinesisError> {
    let mut v = Violations::new();
    let entry = entry(fields, &mut v)?;
    if let Some(ordering) = fields.str("SequenceNumberForOrdering")? {
        v.pattern(
            &fields.path("SequenceNumberForOrdering"),
            ordering,
            SEQUENCE_PATTERN,
            is_decimal(ordering, 129),
        );
    }
    v.into_result()?;
    let stream = named_stream(api, fields)?;
    let Some(entry) = entry else {
        return Err(KinesisError::new(ErrorCode::Validation, "invalid record"));
    };
    let start = Instant::now();
    let mut placed = put::put_all(&stream, vec![entry]).await;
    api.counters.put_latency(PutOperation::PutRecord, start);
    let placed = placed
        .pop()
        .ok_or_else(|| Incident::report(&"PutRecord got no outcome from the log"))?;
    match placed {
        Ok(placed) => Ok(Value::map([
            ("ShardId", Value::from(placed.shard_id)),
            (
                "SequenceNumber",
                Value::from(placed.appended.seq.to_string()),
            ),
            ("EncryptionType", Value::from("NONE")),
        ])),
        Err(incident) => {
            api.counters.records_failed.fetch_add(1, Ordering::Relaxed);
            Err(incident.into())
        }
    }
}

pub(super) async fn put_records(api: &Api, fields: &Fields<'_>) -> Result<Value, KinesisError> {
    let list = fields.list("Records")?;
    let mut v = Violations::new();
    let list = v
        .not_null(&fields.path("Records"), list)
        .unwrap_or_default();
    v.count(&fields.path("Records"), list.len(), 1, MAX_PUT_RECORDS);
    let mut entries = Vec::with_capacity(list.len());
    for record in &list {
        entries.push(entry(record, &mut v)?);
    }
    v.into_result()?;
    let stream = named_stream(api, fields)?;
    let entries: Vec<PutEntry> = entries.into_iter().flatten().collect();
    let size: usize = entries
        .iter()
        .map(|e| e.data.len() + e.partition_key.len())
        .sum();
    if size > MAX_PUT_BYTES {
        return Err(KinesisError::new(
            ErrorCode::InvalidArgument,
            format!("Records size exceeds 5 MB limit ({size} bytes of data and partition keys)."),
        ));
    }
    let start = Instant::now();
    let mut outcomes = put::put_all(&stream, entries).await;
    api.counters.put_latency(PutOperation::PutRecords, start);
    // Nothing stored because the cluster is away: the request fails whole, as a 503 the
    // SDKs retry, rather than as a 200 listing every record failed.
    if outcomes.iter().all(|o| {
        o.as_ref()
            .is_err_and(|i| i.code() == ErrorCode::ServiceUnavailable)
    }) && let Some(Err(incident)) = outcomes.pop()
    {
        api.counters
            .records_failed
            .fetch_add(outcomes.len() as u64 + 1, Ordering::Relaxed);
        return Err(incident.into());
    }
    let mut failed = 0_u64;
    let records = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(placed) => Value::map([
                (
                    "SequenceNumber",
                    Value::from(placed.appended.seq.to_string()),
                ),
                ("ShardId", Value::from(placed.shard_id)),
            ]),
            Err(incident) => {
                failed += 1;
                api.counters.records_failed.fetch_add(1, Ordering::Relaxed);
                Value::map([
                    ("ErrorCode", Value::from(incident.code().as_str())),
                    ("ErrorMessage", Value::from(incident.to_string())),
                ])
            }
        })
        .collect();
    Ok(Value::map([
        ("FailedRecordCount", Value::from(failed)),
        ("Records", Value::Array(records)),
        ("EncryptionType", Value::from("NONE")),
    ]))
}

fn shard_index(stream: &Stream, shard_id: &str) -> Result<usize, KinesisError> {
    stream
        .shards()
        .iter()
        .position(|s| s.id() == shard_id)
        .ok_or_else(|| {
            KinesisError::new(
                ErrorCode::ResourceNotFound,
                format!(
                    "Shard {shard_id} in stream {} under account {} does not exist",
                    stream.name(),
                    super::ACCOUNT
                ),
            )
        })
}

fn created_ms(stream: &Stream) -> u64 {
    stream
        .created()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(super) fn get_shard_iterator(api: &Api, fields: &Fields<'_>) -> Result<Value, KinesisError> {
    let shard_id = fields.str("ShardId")?;
    let kind = fields.str("ShardIteratorType")?;
    let sequence = fields.str("StartingSequenceNumber")?;
    let timestamp = fields.timestamp("Timestamp")?;
    let mut v = Violations::new();
    let shard_id = v.not_null(&fields.path("ShardId"), shard_id);
    let kind = v.not_null(&fields.path("ShardIteratorType"), kind);
    if let Some(id) = shard_id {
        v.length(&fields.path("ShardId"), id, 1, 128);
        v.pattern(
            &fields.path("ShardId"),
            id,
            SHARD_ID_PATTERN,
            crate::config::stream::valid_stream_name(id),
        );
    }
    if let Some(kind) = kind {
        v.one_of(&fields.path("ShardIteratorType"), kind, &ITERATOR_TYPES);
    }
    if let Some(seq) = sequence {
        v.pattern(
            &fields.path("StartingSequenceNumber"),
            seq,
            SEQUENCE_PATTERN,
            is_decimal(seq, 129),
        );
    }
    v.into_result()?;
    let (Some(shard_id), Some(kind)) = (shard_id, kind) else {
        return Err(KinesisError::new(ErrorCode::Validation, "missing members"));
    };
    let stream = named_stream(api, fields)?;
    let index = shard_index(&stream, shard_id)?;
    let shard = &stream.shards()[index];
    let invalid = |message: String| KinesisError::new(ErrorCode::InvalidArgument, message);
    let at_sequence = |seq: &str| -> Result<u64, KinesisError> {
        let parsed: SeqNo = seq.parse().map_err(|_| {
            invalid(format!(
                "StartingSequenceNumber {seq} used in GetShardIterator on shard {shard_id} in stream {} under account {} is invalid.",
                stream.name(),
                super::ACCOUNT
            ))
        })?;
        if parsed.shard != shard.index() {
            return Err(invalid(format!(
                "Invalid StartingSequenceNumber. It encodes shardId-{:012}, while it was used in a call to a shard with {shard_id}",
                parsed.shard
            )));
        }
        if parsed.offset > shard.next_offset() {
            return Err(invalid(format!(
                "StartingSequenceNumber {seq} used in GetShardIterator on shard {shard_id} in stream {} under account {} is invalid because it did not come from this stream.",
                stream.name(),
                super::ACCOUNT
            )));
        }
        Ok(parsed.offset)
    };
    let offset = match (kind, sequence, timestamp) {
        ("TRIM_HORIZON" | "LATEST" | "AT_TIMESTAMP", Some(_), _) => {
            return Err(invalid(format!(
                "Request for {kind} ShardIterator type should not contain a StartingSequenceNumber."
            )));
        }
        ("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER", None, _) => {
            return Err(invalid(format!(
                "Must specify StartingSequenceNumber for {kind} ShardIterator type."
            )));
        }
        ("TRIM_HORIZON", None, _) => shard.first_offset(),
        ("LATEST", None, _) => shard.next_offset(),
        ("AT_SEQUENCE_NUMBER", Some(seq), _) => at_sequence(seq)?,
        ("AFTER_SEQUENCE_NUMBER", Some(seq), _) => {
            at_sequence(seq)?.saturating_add(1).min(shard.next_offset())
        }
        ("AT_TIMESTAMP", None, None) => {
            return Err(invalid(
                "Must specify timestamp for AT_TIMESTAMP ShardIterator type.".to_owned(),
            ));
        }
        ("AT_TIMESTAMP", None, Some(ms)) => {
            if ms > i64::try_from(now_ms()).unwrap_or(i64::MAX) {
                return Err(invalid(format!(
                    "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: {ms}, currentTimestampInMillis: {}",
                    now_ms()
                )));
            }
            shard
                .offset_at_timestamp(u64::try_from(ms).unwrap_or(0))
                .map_err(|e| internal(&e))?
        }
        _ => return Err(invalid(format!("{kind} is not a shard iterator type"))),
    };
    let iterator = ShardIterator {
        stream: stream.name().to_owned(),
        stream_created_ms: created_ms(&stream),
        shard: shard.index(),
        offset,
        issued_ms: now_ms(),
    };
    Ok(Value::map([(
        "ShardIterator",
        Value::from(iterator.seal(&api.iterator_key.load())),
    )]))
}

pub(super) fn get_records(api: &Api, fields: &Fields<'_>) -> Result<Value, KinesisError> {
    let text = fields.str("ShardIterator")?;
    let limit = fields.int("Limit")?;
    let mut v = Violations::new();
    let text = v.not_null(&fields.path("ShardIterator"), text);
    if let Some(text) = text {
        v.length(&fields.path("ShardIterator"), text, 1, 512);
    }
    if let Some(limit) = limit {
        v.range(&fields.path("Limit"), limit, 1, MAX_GET_RECORDS);
    }
    v.into_result()?;
    let Some(text) = text else {
        return Err(KinesisError::new(
            ErrorCode::Validation,
            "missing ShardIterator",
        ));
    };
    let now = now_ms();
    let iterator = ShardIterator::open(&api.iterator_key.load(), text, now)?;
    let stream = api
        .log
        .get(&iterator.stream)
        .filter(|s| created_ms(s) == iterator.stream_created_ms)
        .ok_or_else(|| not_found(&iterator.stream))?;
    let shard = stream
        .shards()
        .get(iterator.shard as usize)
        .ok_or_else(|| not_found(&iterator.stream))?;
    let limit = limit.map_or(10_000, |l| usize::try_from(l).unwrap_or(10_000));
    let batch = shard
        .read(iterator.offset, limit, MAX_GET_BYTES)
        .map_err(|e| internal(&e))?;
    let tip = shard.next_offset();
    let behind = if batch.next >= tip {
        0
    } else {
        let last = batch.records.last().map_or(0, |r| r.arrival_ms);
        shard
            .latest_arrival_ms()
            .map_or(0, |latest| latest.saturating_sub(last).max(1))
    };
    let counters = shard.counters();
    let bytes: usize = batch.records.iter().map(|r| r.data.len()).sum();
    (counters.records_out).fetch_add(batch.records.len() as u64, Ordering::Relaxed);
    (counters.bytes_out).fetch_add(bytes as u64, Ordering::Relaxed);
    let records = batch
        .records
        .into_iter()
        .map(|r| {
            Value::map([
                ("SequenceNumber", Value::from(r.seq.to_string())),
                (
                    "ApproximateArrivalTimestamp",
                    Value::Timestamp(i64::try_from(r.arrival_ms).unwrap_or(i64::MAX)),
                ),
                ("Data", Value::Blob(Bytes::clone(&r.data))),
                ("PartitionKey", Value::from(r.partition_key)),
            ])
        })
        .collect();
    let next = ShardIterator {
        offset: batch.next,
        issued_ms: now,
        ..iterator
    };
    Ok(Value::map([
        ("Records", Value::Array(records)),
        (
            "NextShardIterator",
            Value::from(next.seal(&api.iterator_key.load())),
        ),
        ("MillisBehindLatest", Value::from(behind)),
    ]))
}
