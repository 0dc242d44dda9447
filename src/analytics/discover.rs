//! Schema discovery, as KDA's "discover schema": from sample records, the input format
//! and the columns that read them, ready to paste as an `[[analytics.inputs]]` block.
//!
//! - **Format**: JSON when most records are JSON objects; else TSV when most split on tabs
//!   into the same number (above one) of fields; else CSV (RFC 4180 quoting), one line per
//!   record.
//! - **JSON columns**: every scalar reached through nested objects, at its path (`$.a.b`).
//!   An array gives only its first element (`$.a[0]`, and `$.a[0].b` for objects in it):
//!   enough for the usual list of like things, without one column per element. Names are
//!   the path's steps joined with `_`, made SQL identifiers (see `json::identifier`).
//!   A path that holds an object or an array in any record is not itself a column.
//! - **CSV/TSV columns**: `COL1`..`COLn` at positions `1`..`n`, typed by position; blank
//!   fields are nulls. CSV and TSV fields are numbers or booleans (`true`/`false`) when
//!   they look it, except integers with a leading zero (ZIP codes, ids), which stay text.
//! - **Types** widen over all records: BOOLEAN; INTEGER < BIGINT < DOUBLE; text is TIMESTAMP
//!   when every value is one (RFC 3339, or `YYYY-MM-DD HH:MM:SS[.fff]`), DATE when every
//!   value is `YYYY-MM-DD`, else VARCHAR(n), n the longest value rounded up to a power of
//!   two (8 to 65535). Any other mix is VARCHAR; nulls and missing members say nothing; a
//!   column that was always null is VARCHAR(8). JSON strings are never numbers or booleans.
//!   Every type proposed is one the input decoder reads those values as.
//!
//! Work is bounded: the first [`MAX_RECORDS`] records, at most
//! [`MAX_COLUMNS`](crate::config::analytics::MAX_COLUMNS) columns, and
//! records over [`MAX_RECORD_BYTES`] are skipped and counted as not fitting.

mod delimited;
mod infer;
mod json;
#[cfg(test)]
mod tests;

use bytes::Bytes;

use crate::config::analytics::InputFormat;

/// Records read at most, as `analytics.discover_records` allows.
pub const MAX_RECORDS: usize = 10_000;
/// Larger records are skipped: a sample that size says little more about a schema and
/// costs a lot to walk.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// The proposed input: what `POST /analytics/discover` answers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Discovered {
    /// [`InputFormat::name`]: `json`, `tsv` or `csv`.
    pub format: &'static str,
    /// In record order (JSON: as first seen; CSV/TSV: by position).
    pub columns: Vec<DiscoveredColumn>,
    /// Records looked at: the first [`MAX_RECORDS`] of those given.
    pub records_read: usize,
    /// Of those, records the proposed schema does not read: too large, not a JSON object,
    /// or not the usual field count.
    pub not_fitting: usize,
}

/// One proposed column, as `columns = [{ name, type, path }]` writes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DiscoveredColumn {
    pub name: String,
    /// [`SqlType::sql_name`](crate::config::analytics::SqlType::sql_name).
    #[serde(rename = "type")]
    pub ty: String,
    /// A JSON path (`$.a.b[0]`), or a CSV/TSV field number from 1.
    pub path: String,
}

/// Why no schema could be proposed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiscoverError {
    #[error("no records to discover a schema from: put some on the stream first")]
    NoRecords,
    #[error(
        "all {records} records are over {MAX_RECORD_BYTES} bytes, too large to sample; \
         discovery needs smaller records"
    )]
    AllTooLarge { records: usize },
    #[error(
        "none of the {records} records reads as a JSON object, tab-separated line or \
         comma-separated line (they are binary, or not UTF-8)"
    )]
    NothingParseable { records: usize },
    #[error(
        "the {records} records are JSON objects with no members to make columns of \
         (empty, or only empty arrays and objects)"
    )]
    NoColumns { records: usize },
}

/// One format's reading of the samples.
struct Proposal {
    format: InputFormat,
    columns: Vec<DiscoveredColumn>,
    /// Samples this reading does not fit.
    not_fitting: usize,
}

/// Proposes a format and columns for `records` (see the module doc for the rules).
///
/// # Errors
/// When there are no records, none small enough, none in any format, or JSON objects
/// with nothing in them.
pub fn discover(records: &[Bytes]) -> Result<Discovered, DiscoverError> {
    if records.is_empty() {
        return Err(DiscoverError::NoRecords);
    }
    let read = &records[..records.len().min(MAX_RECORDS)];
    let samples: Vec<&[u8]> = read
        .iter()
        .filter(|record| record.len() <= MAX_RECORD_BYTES)
        .map(|record| &record[..])
        .collect();
    let records_read = read.len();
    if samples.is_empty() {
        return Err(DiscoverError::AllTooLarge {
            records: records_read,
        });
    }
    let proposal = json::propose(&samples)
        .or_else(|| delimited::propose_tsv(&samples))
        .or_else(|| delimited::propose_csv(&samples))
        .ok_or(DiscoverError::NothingParseable {
            records: records_read,
        })?;
    if proposal.columns.is_empty() {
        return Err(DiscoverError::NoColumns {
            records: records_read,
        });
    }
    Ok(Discovered {
        format: proposal.format.name(),
        columns: proposal.columns,
        records_read,
        not_fitting: proposal.not_fitting + (records_read - samples.len()),
    })
}

impl Discovered {
    /// The `[[analytics.inputs]]` block for `stream` that the config loader accepts as is.
    pub fn to_toml(&self, stream: &str) -> String {
        let mut text = format!(
            "[[analytics.inputs]]\nstream = {}\nformat = {}\ncolumns = [\n",
            toml_string(stream),
            toml_string(self.format)
        );
        for column in &self.columns {
            text.push_str(&format!(
                "    {{ name = {}, type = {}, path = {} }},\n",
                toml_string(&column.name),
                toml_string(&column.ty),
                toml_string(&column.path)
            ));
        }
        text.push_str("]\n");
        text
    }
}

/// `text` as a TOML string, quoted and escaped (JSON paths may hold any key).
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}
