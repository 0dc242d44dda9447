//! The write path shared by PutRecord, PutRecords and NDJSON ingest: route each record to its
//! shard by the MD5 of its partition key (or its explicit hash key), append every shard's
//! records concurrently, and give each record its own outcome in request order.

use bytes::Bytes;
use futures_util::future::join_all;
use md5::{Digest, Md5};

use super::error::Incident;
use crate::stream::log::{Appended, NewRecord, Stream};

/// A record to put, already validated.
pub struct PutEntry {
    pub partition_key: String,
    pub explicit_hash: Option<u128>,
    pub data: Bytes,
}

/// Where a record went.
pub struct Placed {
    pub shard_id: String,
    pub appended: Appended,
}

/// Kinesis's hash of a partition key: MD5 of its UTF-8 bytes as a big-endian 128-bit number.
pub fn partition_hash(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// An `ExplicitHashKey`: a decimal in [0, 2^128 - 1] without leading zeros.
pub fn parse_hash_key(text: &str) -> Option<u128> {
    let canonical = text == "0" || (!text.starts_with('0') && !text.is_empty());
    if !canonical || text.len() > 39 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Appends `entries`, one shard's records together, and returns each record's outcome in
/// the order given. Records of one shard keep their relative order; a failed append is
/// logged once and fails each of its records with the same incident.
pub async fn put_all(stream: &Stream, entries: Vec<PutEntry>) -> Vec<Result<Placed, Incident>> {
    let shard_count = stream.shards().len();
    let mut per_shard: Vec<(Vec<usize>, Vec<NewRecord>)> =
        (0..shard_count).map(|_| (Vec::new(), Vec::new())).collect();
    for (i, entry) in entries.into_iter().enumerate() {
        // One shard owns every hash: no MD5 to compute.
        let shard = if shard_count == 1 {
            0
        } else {
            let hash = entry
                .explicit_hash
                .unwrap_or_else(|| partition_hash(&entry.partition_key));
            stream.shard_for_hash(hash)
        };
        let (positions, records) = &mut per_shard[shard];
        positions.push(i);
        records.push(NewRecord {
            partition_key: entry.partition_key,
            data: entry.data,
        });
    }
    let total: usize = per_shard.iter().map(|(p, _)| p.len()).sum();
    let appends = per_shard
        .into_iter()
        .enumerate()
        .filter(|(_, (positions, _))| !positions.is_empty())
        .map(|(shard, (positions, records))| async move {
            (shard, positions, stream.append(shard, records).await)
        });
    let mut outcomes: Vec<Option<Result<Placed, Incident>>> = (0..total).map(|_| None).collect();
    for (shard, positions, result) in join_all(appends).await {
        let shard_id = stream.shards()[shard].id();
        match result {
            Ok(appended) => {
                for (position, appended) in positions.into_iter().zip(appended) {
                    outcomes[position] = Some(Ok(Placed {
                        shard_id: shard_id.clone(),
                        appended,
                    }));
                }
            }
            Err(e) => {
                let detail = format_args!(
                    "appending {} records to {shard_id} of stream {}: {e}",
                    positions.len(),
                    stream.name()
                );
                let incident = Incident::of_log(&e, &detail);
                for position in positions {
                    outcomes[position] = Some(Err(incident.clone()));
                }
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Err(Incident::report(
                    &"the log returned fewer sequence numbers than records",
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_hash_as_kinesis_does() {
        // python3: int.from_bytes(hashlib.md5(b"a").digest(), "big")
        assert_eq!(partition_hash("a"), 0x0cc175b9c0f1b6a831c399e269772661_u128);
    }

    #[test]
    fn explicit_hash_keys_are_canonical_decimals_in_range() {
        assert_eq!(parse_hash_key("0"), Some(0));
        assert_eq!(
            parse_hash_key("340282366920938463463374607431768211455"),
            Some(u128::MAX)
        );
        for bad in [
            "",
            "01",
            "-1",
            "1.0",
            "340282366920938463463374607431768211456",
            "9999999999999999999999999999999999999999",
            " 1",
        ] {
            assert_eq!(parse_hash_key(bad), None, "{bad:?}");
        }
    }
}
