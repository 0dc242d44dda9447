//! Control-plane operations: streams and shards, and retention.

use std::time::{Duration, UNIX_EPOCH};

use super::{ACCOUNT, arn, internal, named_stream, not_found, stream_name};
use crate::config::stream::{MAX_SHARDS, valid_stream_name};
use crate::stream::api::error::{ErrorCode, KinesisError};
use crate::stream::api::service::{Api, Caller, now_ms};
use crate::stream::api::token::NextToken;
use crate::stream::api::value::{Fields, Value, Violations};
use crate::stream::log::{LogError, SeqNo, Shard, Stream};

/// Kinesis's on-demand streams start with four shards.
const ON_DEMAND_SHARDS: u32 = 4;
const DEFAULT_RETENTION_HOURS: u64 = 24;
const MAX_RETENTION_HOURS: i64 = 8760;
const STREAM_NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";

fn check_name(v: &mut Violations, path: &str, name: &str) {
    v.length(path, name, 1, 128);
    v.pattern(
        path,
        name,
        STREAM_NAME_PATTERN,
        valid_stream_name(name) || name.is_empty(),
    );
}

fn management_allowed(api: &Api, operation: &str) -> Result<(), KinesisError> {
    if api.allow_create_streams {
        Ok(())
    } else {
        Err(KinesisError::new(
            ErrorCode::AccessDenied,
            format!("{operation} is disabled: set [stream].allow_create_streams = true"),
        ))
    }
}

pub(super) fn create(api: &Api, fields: &Fields<'_>) -> Result<(), KinesisError> {
    let name = fields.required_str("StreamName")?;
    let shard_count = fields.int("ShardCount")?;
    let mode = match fields.object("StreamModeDetails")? {
        Some(details) => Some(details.required_str("StreamMode")?),
        None => None,
    };
    let mut v = Violations::new();
    check_name(&mut v, &fields.path("StreamName"), name);
    if let Some(n) = shard_count {
        v.range(&fields.path("ShardCount"), n, 1, i64::from(u32::MAX));
    }
    if let Some(mode) = mode {
        v.one_of(
            "streamModeDetails.streamMode",
            mode,
            &["PROVISIONED", "ON_DEMAND"],
        );
    }
    v.into_result()?;
    management_allowed(api, "CreateStream")?;
    let shards = match (mode, shard_count) {
        (Some("ON_DEMAND"), None) => ON_DEMAND_SHARDS,
        (_, Some(n)) => u32::try_from(n).unwrap_or(u32::MAX),
        (_, None) => {
            return Err(KinesisError::new(
                ErrorCode::InvalidArgument,
                "ShardCount is required for a PROVISIONED stream.",
            ));
        }
    };
    if shards > MAX_SHARDS {
        return Err(KinesisError::new(
            ErrorCode::LimitExceeded,
            format!("This request would exceed the shard limit of {MAX_SHARDS} shards per stream."),
        ));
    }
    match api.log.create(
        name,
        shards,
        Duration::from_secs(DEFAULT_RETENTION_HOURS * 3600),
    ) {
        Ok(_) => Ok(()),
        Err(LogError::AlreadyExists(_)) => Err(KinesisError::new(
            ErrorCode::ResourceInUse,
            format!("Stream {name} under account {ACCOUNT} already exists."),
        )),
        Err(e) => Err(internal(&e)),
    }
}

pub(super) fn delete(api: &Api, fields: &Fields<'_>) -> Result<(), KinesisError> {
    let name = stream_name(fields)?;
    fields.bool("EnforceConsumerDeletion")?;
    management_allowed(api, "DeleteStream")?;
    match api.log.delete(&name) {
        Ok(()) => Ok(()),
        Err(LogError::NotFound(_)) => Err(not_found(&name)),
        Err(LogError::Configured(_)) => Err(KinesisError::new(
            ErrorCode::ResourceInUse,
            format!(
                "Stream {name} is configured in the config file and cannot be deleted through the API."
            ),
        )),
        Err(e) => Err(internal(&e)),
    }
}

fn created_value(stream: &Stream) -> Value {
    Value::Timestamp(
        stream
            .created()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
    )
}

/// Whole hours, rounded up: the config may give retentions below an hour.
fn retention_hours(stream: &Stream) -> u64 {
    stream.retention().as_secs().div_ceil(3600).max(1)
}

fn shard_value(shard: &Shard) -> Value {
    let (start, end) = shard.hash_range();
    let first = SeqNo {
        shard: shard.index(),
        offset: 0,
    };
    Value::map([
        ("ShardId", Value::from(shard.id())),
        (
            "HashKeyRange",
            Value::map([
                ("StartingHashKey", Value::from(start.to_string())),
                ("EndingHashKey", Value::from(end.to_string())),
            ]),
        ),
        (
            "SequenceNumberRange",
            Value::map([("StartingSequenceNumber", Value::from(first.to_string()))]),
        ),
    ])
}

fn mode_value() -> Value {
    Value::map([("StreamMode", Value::from("PROVISIONED"))])
}

fn monitoring_value() -> Value {
    Value::Array(vec![Value::map([(
        "ShardLevelMetrics",
        Value::Array(Vec::new()),
    )])])
}

/// Shards after `exclusive_start` (a shard id), at most `limit`.
fn shards_after<'s>(
    stream: &'s Stream,
    exclusive_start: Option<&str>,
    limit: usize,
) -> (Vec<&'s Shard>, bool) {
    let after: Vec<&Shard> = stream
        .shards()
        .iter()
        .filter(|s| exclusive_start.is_none_or(|start| s.id().as_str() > start))
        .collect();
    let more = after.len() > limit;
    (after.into_iter().take(limit).collect(), more)
}

pub(super) fn describe(
    api: &Api,
    caller: &Caller,
    fields: &Fields<'_>,
) -> Result<Value, KinesisError> {
    let limit = fields.int("Limit")?;
    let start = fields.str("ExclusiveStartShardId")?;
    let mut v = Violations::new();
    if let Some(limit) = limit {
        v.range(&fields.path("Limit"), limit, 1, 10_000);
    }
    v.into_result()?;
    let stream = named_stream(api, fields)?;
    let limit = limit.map_or(100, |l| usize::try_from(l).unwrap_or(100));
    let (shards, more) = shards_after(&stream, start, limit);
    Ok(Value::map([(
        "StreamDescription",
        Value::map([
            ("StreamName", Value::from(stream.name())),
            ("StreamARN", Value::from(arn(&caller.region, stream.name()))),
            ("StreamStatus", Value::from("ACTIVE")),
            ("StreamModeDetails", mode_value()),
            (
                "Shards",
                Value::Array(shards.into_iter().map(shard_value).collect()),
            ),
            ("HasMoreShards", Value::from(more)),
            (
                "RetentionPeriodHours",
                Value::from(retention_hours(&stream)),
            ),
            ("StreamCreationTimestamp", created_value(&stream)),
            ("EnhancedMonitoring", monitoring_value()),
            ("EncryptionType", Value::from("NONE")),
        ]),
    )]))
}

pub(super) fn describe_summary(
    api: &Api,
    caller: &Caller,
    fields: &Fields<'_>,
) -> Result<Value, KinesisError> {
    let stream = named_stream(api, fields)?;
    Ok(Value::map([(
        "StreamDescriptionSummary",
        Value::map([
            ("StreamName", Value::from(stream.name())),
            ("StreamARN", Value::from(arn(&caller.region, stream.name()))),
            ("StreamStatus", Value::from("ACTIVE")),
            ("StreamModeDetails", mode_value()),
            (
                "RetentionPeriodHours",
                Value::from(retention_hours(&stream)),
            ),
            ("StreamCreationTimestamp", created_value(&stream)),
            ("EnhancedMonitoring", monitoring_value()),
            ("EncryptionType", Value::from("NONE")),
            ("OpenShardCount", Value::from(stream.shards().len() as u64)),
            ("ConsumerCount", Value::from(0_u64)),
        ]),
    )]))
}

pub(super) fn list_streams(
    api: &Api,
    caller: &Caller,
    fields: &Fields<'_>,
) -> Result<Value, KinesisError> {
    let limit = fields.int("Limit")?;
    let start = fields.str("ExclusiveStartStreamName")?;
    let token = fields.str("NextToken")?;
    let mut v = Violations::new();
    if let Some(limit) = limit {
        v.range(&fields.path("Limit"), limit, 1, 10_000);
    }
    v.into_result()?;
    let after = match token {
        Some(token) => Some(NextToken::open(&api.iterator_key.load(), token, now_ms())?.cursor),
        None => start.map(str::to_owned),
    };
    let limit = limit.map_or(100, |l| usize::try_from(l).unwrap_or(100));
    let names: Vec<String> = api
        .log
        .names()
        .into_iter()
        .filter(|n| after.as_deref().is_none_or(|a| n.as_str() > a))
        .collect();
    let more = names.len() > limit;
    let page: Vec<String> = names.into_iter().take(limit).collect();
    let summaries = page
        .iter()
        .filter_map(|name| api.log.get(name))
        .map(|stream| {
            Value::map([
                ("StreamName", Value::from(stream.name())),
                ("StreamARN", Value::from(arn(&caller.region, stream.name()))),
                ("StreamStatus", Value::from("ACTIVE")),
                ("StreamModeDetails", mode_value()),
                ("StreamCreationTimestamp", created_value(&stream)),
            ])
        })
        .collect();
    let mut out = vec![
        (
            "StreamNames".into(),
            Value::Array(page.iter().map(|n| Value::from(n.as_str())).collect()),
        ),
        ("HasMoreStreams".into(), Value::from(more)),
    ];
    if more && let Some(last) = page.last() {
        let token = NextToken {
            cursor: last.clone(),
            issued_ms: now_ms(),
        };
        out.push((
            "NextToken".into(),
            Value::from(token.seal(&api.iterator_key.load())),
        ));
    }
    out.push(("StreamSummaries".into(), Value::Array(summaries)));
    Ok(Value::Map(out))
}

pub(super) fn list_shards(api: &Api, fields: &Fields<'_>) -> Result<Value, KinesisError> {
    let token = fields.str("NextToken")?;
    let max = fields.int("MaxResults")?;
    let start = fields.str("ExclusiveStartShardId")?;
    let filter = match fields.object("ShardFilter")? {
        Some(f) => Some((f.required_str("Type")?, f.str("ShardId")?)),
        None => None,
    };
    fields.timestamp("StreamCreationTimestamp")?;
    let mut v = Violations::new();
    if let Some(max) = max {
        v.range(&fields.path("MaxResults"), max, 1, 10_000);
    }
    if let Some((kind, _)) = filter {
        v.one_of(
            "shardFilter.type",
            kind,
            &[
                "AFTER_SHARD_ID",
                "AT_TRIM_HORIZON",
                "FROM_TRIM_HORIZON",
                "AT_LATEST",
                "AT_TIMESTAMP",
                "FROM_TIMESTAMP",
            ],
        );
    }
    v.into_result()?;
    let named = fields.str("StreamName")?.is_some() || fields.str("StreamARN")?.is_some();
    let (stream, after) = match token {
        Some(_) if named => {
            return Err(KinesisError::new(
                ErrorCode::InvalidArgument,
                "NextToken and StreamName cannot be provided together.",
            ));
        }
        Some(token) => {
            let cursor = NextToken::open(&api.iterator_key.load(), token, now_ms())?.cursor;
            let (name, last) = cursor.split_once('\n').ok_or_else(|| {
                KinesisError::new(ErrorCode::InvalidArgument, "Invalid NextToken.")
            })?;
            let stream = api.log.get(name).ok_or_else(|| not_found(name))?;
            (stream, Some(last.to_owned()))
        }
        None => {
            let stream = named_stream(api, fields)?;
            let after = match filter {
                Some(("AFTER_SHARD_ID", Some(id))) => Some(id.to_owned()),
                Some(("AFTER_SHARD_ID", None)) => {
                    return Err(KinesisError::new(
                        ErrorCode::InvalidArgument,
                        "ShardId is required for the AFTER_SHARD_ID filter.",
                    ));
                }
                _ => start.map(str::to_owned),
            };
            (stream, after)
        }
    };
    let limit = max.map_or(1000, |m| usize::try_from(m).unwrap_or(1000));
    let (shards, more) = shards_after(&stream, after.as_deref(), limit);
    let mut out = vec![(
        "Shards".into(),
        Value::Array(shards.iter().map(|s| shard_value(s)).collect()),
    )];
    if more && let Some(last) = shards.last() {
        let token = NextToken {
            cursor: format!("{}\n{}", stream.name(), last.id()),
            issued_ms: now_ms(),
        };
        out.push((
            "NextToken".into(),
            Value::from(token.seal(&api.iterator_key.load())),
        ));
    }
    Ok(Value::Map(out))
}

pub(super) async fn retention(
    api: &Api,
    fields: &Fields<'_>,
    increase: bool,
) -> Result<(), KinesisError> {
    let hours = fields.int("RetentionPeriodHours")?;
    let mut v = Violations::new();
    let hours = v.not_null(&fields.path("RetentionPeriodHours"), hours);
    v.into_result()?;
    let hours = hours.unwrap_or_default();
    let stream = named_stream(api, fields)?;
    let name = stream.name();
    let current = retention_hours(&stream) as i64;
    let invalid = |message: String| Err(KinesisError::new(ErrorCode::InvalidArgument, message));
    if hours < 24 {
        return invalid(format!(
            "Minimum allowed retention period is 24 hours. Requested retention period ({hours} hours) is too short."
        ));
    }
    if hours > MAX_RETENTION_HOURS {
        return invalid(format!(
            "Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested retention period ({hours} hours) is too long."
        ));
    }
    if increase && hours < current {
        return invalid(format!(
            "Requested retention period ({hours} hours) for stream {name} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
        ));
    }
    if !increase && hours > current {
        return invalid(format!(
            "Requested retention period ({hours} hours) for stream {name} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
        ));
    }
    stream
        .change_retention(Duration::from_secs(hours as u64 * 3600))
        .await
        .map_err(|e| internal(&e))
}
