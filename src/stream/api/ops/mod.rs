//! The operations: each reads its typed fields, validates them as the Kinesis model does,
//! and builds its output once as a [`Value`] for either wire format.

mod records;
mod streams;

use std::sync::Arc;

use super::error::{ErrorCode, Incident, KinesisError};
use super::service::{Api, Caller};
use super::value::{Fields, Value};
use crate::stream::log::{LogError, Stream};

/// The account id in ARNs and messages; edgewise has one account.
pub(super) const ACCOUNT: &str = "000000000000";

/// Runs `operation`; `Ok(None)` is a success without output.
pub(super) async fn dispatch(
    api: &Api,
    caller: &Caller,
    operation: &str,
    fields: &Fields<'_>,
) -> Result<Option<Value>, KinesisError> {
    match operation {
        "CreateStream" => streams::create(api, fields).map(|()| None),
        "DeleteStream" => streams::delete(api, fields).map(|()| None),
        "DescribeStream" => streams::describe(api, caller, fields).map(Some),
        "DescribeStreamSummary" => streams::describe_summary(api, caller, fields).map(Some),
        "ListStreams" => streams::list_streams(api, caller, fields).map(Some),
        "ListShards" => streams::list_shards(api, fields).map(Some),
        "IncreaseStreamRetentionPeriod" => {
            streams::retention(api, fields, true).await.map(|()| None)
        }
        "DecreaseStreamRetentionPeriod" => {
            streams::retention(api, fields, false).await.map(|()| None)
        }
        "PutRecord" => records::put_record(api, fields).await.map(Some),
        "PutRecords" => records::put_records(api, fields).await.map(Some),
        "GetShardIterator" => records::get_shard_iterator(api, fields).map(Some),
        "GetRecords" => records::get_records(api, fields).map(Some),
        other => Err(KinesisError::new(
            ErrorCode::UnknownOperation,
            format!("{other} is not an operation edgewise supports"),
        )),
    }
}

/// The stream a data-plane request names, by `StreamName` or `StreamARN`.
pub(super) fn named_stream(api: &Api, fields: &Fields<'_>) -> Result<Arc<Stream>, KinesisError> {
    let name = stream_name(fields)?;
    api.log.get(&name).ok_or_else(|| not_found(&name))
}

/// `StreamName`, or the name inside `StreamARN` (`arn:aws:kinesis:<region>:<account>:stream/<name>`).
pub(super) fn stream_name(fields: &Fields<'_>) -> Result<String, KinesisError> {
    if let Some(name) = fields.str("StreamName")? {
        return Ok(name.to_owned());
    }
    if let Some(arn) = fields.str("StreamARN")? {
        let mut parts = arn.splitn(6, ':');
        let ok = parts.next() == Some("arn")
            && parts.next().is_some()
            && parts.next() == Some("kinesis");
        let name = parts.nth(2).and_then(|r| r.strip_prefix("stream/"));
        return match name {
            Some(name) if ok && !name.is_empty() => Ok(name.to_owned()),
            _ => Err(KinesisError::new(
                ErrorCode::InvalidArgument,
                format!("{arn} is not a Kinesis stream ARN"),
            )),
        };
    }
    Err(KinesisError::new(
        ErrorCode::InvalidArgument,
        "Either StreamName or StreamARN should be provided.",
    ))
}

pub(super) fn not_found(name: &str) -> KinesisError {
    KinesisError::new(
        ErrorCode::ResourceNotFound,
        format!("Stream {name} under account {ACCOUNT} not found."),
    )
}

pub(super) fn arn(region: &str, name: &str) -> String {
    format!("arn:aws:kinesis:{region}:{ACCOUNT}:stream/{name}")
}

/// A log failure as the client sees it: a retryable server error, never the client's fault,
/// whose detail stays in the server log.
pub(super) fn internal(e: &LogError) -> KinesisError {
    Incident::of_log(e, e).into()
}
