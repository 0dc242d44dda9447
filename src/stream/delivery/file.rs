//! Delivery files: one JSON object per record and line, optionally gzip-compressed,
//! written whole or not at all.
//!
//! A line: `{"sequenceNumber":"…","shardId":"…","partitionKey":"…",
//! "approximateArrivalTimestamp":<epoch ms>,"data":"<UTF-8 text>"}`, with `"dataBase64"`
//! instead of `"data"` when the record is not UTF-8.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::config::stream::{DeliveryCompression, DeliverySpec};
use crate::stream::log::{SeqNo, Shard, StoredRecord, Stream};

#[derive(Serialize)]
struct Line<'a> {
    #[serde(rename = "sequenceNumber")]
    sequence_number: String,
    #[serde(rename = "shardId")]
    shard_id: &'a str,
    #[serde(rename = "partitionKey")]
    partition_key: &'a str,
    #[serde(rename = "approximateArrivalTimestamp")]
    arrival_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
    #[serde(rename = "dataBase64", skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
}

#[derive(Deserialize)]
struct LineSequence {
    #[serde(rename = "sequenceNumber")]
    sequence_number: String,
}

/// Records of one shard waiting to be written.
pub(super) struct Batch {
    compression: DeliveryCompression,
    text: Vec<u8>,
    first: Option<(SeqNo, u64)>,
    records: u64,
}

impl Batch {
    pub(super) fn new(compression: DeliveryCompression) -> Batch {
        Batch {
            compression,
            text: Vec::new(),
            first: None,
            records: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.records == 0
    }

    pub(super) fn len_bytes(&self) -> usize {
        self.text.len()
    }

    pub(super) fn records(&self) -> u64 {
        self.records
    }

    pub(super) fn push(&mut self, shard_id: &str, record: &StoredRecord) {
        let text = std::str::from_utf8(&record.data).ok();
        let line = Line {
            sequence_number: record.seq.to_string(),
            shard_id,
            partition_key: &record.partition_key,
            arrival_ms: record.arrival_ms,
            data: text,
            data_base64: text
                .is_none()
                .then(|| base64::engine::general_purpose::STANDARD.encode(&record.data)),
        };
        // Serializing plain strings and integers cannot fail.
        if serde_json::to_writer(&mut self.text, &line).is_ok() {
            self.text.push(b'\n');
            self.first.get_or_insert((record.seq, record.arrival_ms));
            self.records += 1;
        }
    }

    /// Writes the batch to its file; the batch is kept, so a failure can be retried.
    pub(super) async fn write(&self, spec: &DeliverySpec, stream: &str) -> io::Result<PathBuf> {
        let (first, arrival_ms) = self
            .first
            .ok_or_else(|| io::Error::other("empty delivery batch"))?;
        let path = file_path(spec, stream, first, arrival_ms, self.compression);
        let bytes = match self.compression {
            DeliveryCompression::None => self.text.clone(),
            DeliveryCompression::Gzip => gzip(&self.text).await?,
        };
        let target = path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&target, &bytes))
            .await
            .map_err(io::Error::other)??;
        Ok(path)
    }
}

/// If the file that would start at offset `next` of `shard` exists, the offset of its last
/// record.
pub(super) async fn delivered_through(
    spec: &DeliverySpec,
    stream: &Stream,
    shard: &Shard,
    next: u64,
) -> io::Result<Option<u64>> {
    let Some(record) = shard
        .read(next, 1, 1)
        .map_err(io::Error::other)?
        .records
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    for compression in [DeliveryCompression::None, DeliveryCompression::Gzip] {
        let path = file_path(
            spec,
            stream.name(),
            record.seq,
            record.arrival_ms,
            compression,
        );
        let raw = match tokio::fs::read(&path).await {
            Ok(raw) => raw,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let text = match compression {
            DeliveryCompression::None => raw,
            DeliveryCompression::Gzip => {
                let mut out = Vec::new();
                async_compression::tokio::bufread::GzipDecoder::new(&raw[..])
                    .read_to_end(&mut out)
                    .await?;
                out
            }
        };
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a delivery file", path.display()),
            )
        };
        let last = text
            .split(|&b| b == b'\n')
            .rfind(|line| !line.is_empty())
            .ok_or_else(bad)?;
        let line: LineSequence = serde_json::from_slice(last).map_err(|_| bad())?;
        let seq: SeqNo = line.sequence_number.parse().map_err(|_| bad())?;
        if seq.shard != shard.index() || seq.offset < next {
            return Err(bad());
        }
        return Ok(Some(seq.offset));
    }
    Ok(None)
}

/// `dir/YYYY/MM/DD/HH/<stream>-<first seq>.ndjson[.gz]`, the hour being the first record's
/// arrival (UTC), so the name depends on the batch's first record alone.
fn file_path(
    spec: &DeliverySpec,
    stream: &str,
    first: SeqNo,
    arrival_ms: u64,
    compression: DeliveryCompression,
) -> PathBuf {
    let (year, month, day, hour) = utc_hour(arrival_ms / 1000);
    let extension = match compression {
        DeliveryCompression::None => "ndjson",
        DeliveryCompression::Gzip => "ndjson.gz",
    };
    spec.dir
        .join(format!("{year:04}"))
        .join(format!("{month:02}"))
        .join(format!("{day:02}"))
        .join(format!("{hour:02}"))
        .join(format!("{stream}-{first}.{extension}"))
}

/// Year, month, day and hour of a Unix time, in the proleptic Gregorian calendar (UTC).
fn utc_hour(secs: u64) -> (i64, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let hour = ((secs % 86_400) / 3600) as u32;
    // Days since 0000-03-01, so leap days fall at the end of each 4/100/400-year cycle.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day, hour)
}

/// A delivery file's gzip form (what Firehose writes with GZIP compression).
async fn gzip(text: &[u8]) -> io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::with_capacity(text.len() / 4 + 64);
    async_compression::tokio::bufread::GzipEncoder::new(text)
        .read_to_end(&mut out)
        .await?;
    Ok(out)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it into place and
/// syncs the folder, so `path` holds the old content or the new one, never a part.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other(format!("{} has no folder", path.display())))?;
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp"));
    let mut file = File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, path)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::utc_hour;

    #[test]
    fn utc_hours_match_the_calendar() {
        assert_eq!(utc_hour(0), (1970, 1, 1, 0));
        // 2000-02-29T23:59:59Z (a leap day of a 400-year leap year)
        assert_eq!(utc_hour(951_868_799), (2000, 2, 29, 23));
        // 2026-11-25T12:34:56Z
        assert_eq!(utc_hour(1_795_610_096), (2026, 11, 25, 12));
        // 2100-03-01T00:00:00Z (2100 is not a leap year)
        assert_eq!(utc_hour(4_107_542_400), (2100, 3, 1, 0));
    }
}
