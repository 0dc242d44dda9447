//! CSV and TSV records: one line each, columns by position, named `COL1`..`COLn` as KDA
//! names them. Only records with the most common field count shape the types; the rest
//! do not fit.

use std::collections::BTreeMap;

use super::infer::{Observed, Widening};
use super::{DiscoveredColumn, Proposal};
use crate::config::analytics::{InputFormat, MAX_COLUMNS};

/// The TSV proposal, when most samples split on tabs into the same number (above one) of
/// fields.
pub(super) fn propose_tsv(samples: &[&[u8]]) -> Option<Proposal> {
    let rows: Vec<Option<Vec<&str>>> = samples.iter().map(|record| tsv_fields(record)).collect();
    let (count, fitting) = most_common_count(&rows)?;
    (count > 1 && fitting * 2 > samples.len()).then(|| proposal(InputFormat::Tsv, &rows, count))
}

/// The CSV proposal: the fallback, so any sample that reads as one CSV line is enough.
pub(super) fn propose_csv(samples: &[&[u8]]) -> Option<Proposal> {
    let rows: Vec<Option<Vec<String>>> = samples.iter().map(|record| csv_fields(record)).collect();
    let (count, _) = most_common_count(&rows)?;
    Some(proposal(InputFormat::Csv, &rows, count))
}

/// The fields of a one-line UTF-8 record split on tabs (no quoting, as the input reads
/// them); `None` for anything else.
fn tsv_fields(record: &[u8]) -> Option<Vec<&str>> {
    let line = strip_line_end(std::str::from_utf8(record).ok()?);
    (!line.contains('\n')).then(|| line.split('\t').collect())
}

/// The fields of a record holding exactly one RFC 4180 line; `None` for anything else.
fn csv_fields(record: &[u8]) -> Option<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(record);
    let mut lines = reader.records();
    let first = lines.next()?.ok()?;
    lines
        .next()
        .is_none()
        .then(|| first.iter().map(str::to_owned).collect())
}

/// A record may end its one line with `\n` or `\r\n`.
fn strip_line_end(text: &str) -> &str {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.strip_suffix('\r').unwrap_or(text)
}

/// The field count most rows have, and how many have it; ties go to more fields, which
/// keep more of what the records hold.
fn most_common_count<S>(rows: &[Option<Vec<S>>]) -> Option<(usize, usize)> {
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for fields in rows.iter().flatten() {
        *counts.entry(fields.len()).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(count, rows)| (rows, count))
}

/// Columns for the rows with `count` fields, typed by position; blank fields are nulls, as
/// the input decoder reads them in any but a VARCHAR column.
fn proposal<S: AsRef<str>>(format: InputFormat, rows: &[Option<Vec<S>>], count: usize) -> Proposal {
    let mut types = vec![Widening::default(); count.min(MAX_COLUMNS)];
    let mut fitting = 0;
    for fields in rows.iter().flatten().filter(|fields| fields.len() == count) {
        fitting += 1;
        for (ty, field) in types.iter_mut().zip(fields) {
            let field = field.as_ref();
            if !field.trim().is_empty() {
                ty.add(Observed::field(field));
            }
        }
    }
    let columns = types
        .iter()
        .enumerate()
        .map(|(i, ty)| DiscoveredColumn {
            name: format!("COL{}", i + 1),
            ty: ty.sql_type().sql_name(),
            path: (i + 1).to_string(),
        })
        .collect();
    Proposal {
        format,
        columns,
        not_fitting: rows.len() - fitting,
    }
}
