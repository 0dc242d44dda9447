//! Output rows onto streams as JSON records, as KDA's JSON output did: one record per row,
//! its columns and `ROWTIME`. Each record's partition key names the application, the pump
//! and where the row came from — a window's end, or its input record — so that after a
//! restart the output streams themselves say what was emitted already, and nothing is
//! emitted twice.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Field, Schema, TimestampMillisecondType, UInt64Type};
use datafusion::arrow::json::WriterBuilder;
use datafusion::arrow::json::writer::LineDelimited;

use super::tail::{ROW, row_position};
use crate::stream::api::put::PutEntry;
use crate::stream::log::Stream;

/// The output row's ROWTIME, in a pump's output batch.
pub use crate::analytics::kda::ROWTIME_OUT;
/// Records read back from each shard of an output stream at start.
const SCAN_RECORDS: u64 = 20_000;

/// Where an emitted row came from: its window or input record, and its place among the
/// rows from there (rows are emitted in a fixed order, so a put cut short by a crash can
/// be finished without repeating any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The `index`th row of the window ending at this epoch millisecond.
    Window(u64, u32),
    /// The `index`th row from an input record: its shard and offset.
    Record(usize, u64, u32),
}

/// The partition key of a row of `pump` of `app` from `mark`.
pub fn partition_key(app: &str, pump: &str, mark: Mark) -> String {
    match mark {
        Mark::Window(end, index) => format!("{app}:{pump}:w{end}.{index}"),
        Mark::Record(shard, offset, index) => format!("{app}:{pump}:r{shard}.{offset}.{index}"),
    }
}

/// The pump and mark a partition key of `app` names.
pub fn parse_key<'a>(app: &str, key: &'a str) -> Option<(&'a str, Mark)> {
    let rest = key.strip_prefix(app)?.strip_prefix(':')?;
    let (pump, mark) = rest.rsplit_once(':')?;
    let mark = if let Some(window) = mark.strip_prefix('w') {
        let (end, index) = window.split_once('.')?;
        Mark::Window(end.parse().ok()?, index.parse().ok()?)
    } else {
        let mut parts = mark.strip_prefix('r')?.splitn(3, '.');
        Mark::Record(
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
        )
    };
    Some((pump, mark))
}

/// The last place a pump emitted from and which of its rows went out; every place before
/// it was emitted whole (places are emitted in order).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Last {
    pub at: u64,
    pub rows: HashSet<u32>,
}

impl Last {
    fn add(slot: &mut Option<Last>, at: u64, index: u32) {
        match slot {
            Some(last) if last.at == at => {
                last.rows.insert(index);
            }
            Some(last) if last.at > at => {}
            _ => {
                *slot = Some(Last {
                    at,
                    rows: HashSet::from([index]),
                });
            }
        }
    }

    fn covers(slot: Option<&Last>, at: u64, index: u32) -> bool {
        slot.is_some_and(|last| at < last.at || (at == last.at && last.rows.contains(&index)))
    }
}

/// What a pump has emitted, as far as the output streams show.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Emitted {
    /// The last window emitted (by its end).
    pub window: Option<Last>,
    /// Per input shard, the last record whose rows were emitted.
    pub records: HashMap<usize, Last>,
}

impl Emitted {
    fn add(&mut self, mark: Mark) {
        match mark {
            Mark::Window(end, index) => Last::add(&mut self.window, end, index),
            Mark::Record(shard, offset, index) => {
                let mut slot = self.records.remove(&shard);
                Last::add(&mut slot, offset, index);
                self.records.extend(slot.map(|last| (shard, last)));
            }
        }
    }

    /// Adds what `other` saw (another output stream of the same pump).
    pub fn merge(&mut self, other: Emitted) {
        if let Some(last) = other.window {
            for index in last.rows {
                self.add(Mark::Window(last.at, index));
            }
        }
        for (shard, last) in other.records {
            for index in last.rows {
                self.add(Mark::Record(shard, last.at, index));
            }
        }
    }

    /// Whether a row from `mark` went out already.
    pub fn covers(&self, mark: Mark) -> bool {
        match mark {
            Mark::Window(end, index) => Last::covers(self.window.as_ref(), end, index),
            Mark::Record(shard, offset, index) => {
                Last::covers(self.records.get(&shard), offset, index)
            }
        }
    }
}

/// What `app`'s pumps emitted onto `stream`, from its last records.
pub fn emitted(stream: &Stream, app: &str) -> HashMap<String, Emitted> {
    let mut found: HashMap<String, Emitted> = HashMap::new();
    for shard in stream.shards() {
        let mut next = shard
            .next_offset()
            .saturating_sub(SCAN_RECORDS)
            .max(shard.first_offset());
        while next < shard.next_offset() {
            let Ok(read) = shard.read(next, 8192, 8 << 20) else {
                break;
            };
            for record in &read.records {
                if let Some((pump, mark)) = parse_key(app, &record.partition_key) {
                    found.entry(pump.to_string()).or_default().add(mark);
                }
            }
            if read.next <= next {
                break;
            }
            next = read.next;
        }
    }
    found
}

/// The records for the rows of `batch` (a pump's output: its columns, then
/// [`ROWTIME_OUT`], then for row-by-row pumps [`ROW`]), skipping those `emitted` covers.
///
/// # Errors
/// The batch cannot be written as JSON.
pub fn records(
    app: &str,
    pump: &str,
    batch: &RecordBatch,
    emitted: Option<&Emitted>,
) -> Result<Vec<PutEntry>, String> {
    let schema = batch.schema();
    let rowtime_at = schema
        .index_of(ROWTIME_OUT)
        .map_err(|_| format!("pump {pump}: its output has no {ROWTIME_OUT}"))?;
    let rowtimes = batch
        .column(rowtime_at)
        .as_primitive::<TimestampMillisecondType>();
    let rows = schema
        .index_of(ROW)
        .ok()
        .map(|at| batch.column(at).as_primitive::<UInt64Type>().clone());
    // Rows come ordered by their place (see `pump`), so the index counts within a place.
    let mut marks: Vec<Mark> = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let place = match &rows {
            Some(rows) => {
                let (shard, offset) = row_position(rows.value(i));
                Mark::Record(shard, offset, 0)
            }
            None => Mark::Window(u64::try_from(rowtimes.value(i)).unwrap_or(0), 0),
        };
        let index = match (marks.last(), place) {
            (Some(&Mark::Window(end, n)), Mark::Window(at, _)) if end == at => n + 1,
            (Some(&Mark::Record(s, o, n)), Mark::Record(shard, offset, _))
                if (s, o) == (shard, offset) =>
            {
                n + 1
            }
            _ => 0,
        };
        marks.push(match place {
            Mark::Window(end, _) => Mark::Window(end, index),
            Mark::Record(shard, offset, _) => Mark::Record(shard, offset, index),
        });
    }
    // The columns as the output shows them: the pump's own, then ROWTIME.
    let mut fields: Vec<Field> = Vec::new();
    let mut columns = Vec::new();
    for (i, field) in schema.fields().iter().enumerate() {
        if field.name() == ROW {
            continue;
        }
        let name = if i == rowtime_at {
            "ROWTIME"
        } else {
            field.name().as_str()
        };
        fields.push(Field::new(
            name,
            field.data_type().clone(),
            field.is_nullable(),
        ));
        columns.push(batch.column(i).clone());
    }
    let shown = RecordBatch::try_new(Schema::new(fields).into(), columns)
        .map_err(|e| format!("pump {pump}: {e}"))?;
    let mut lines = Vec::new();
    {
        let mut writer = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, LineDelimited>(&mut lines);
        writer
            .write(&shown)
            .map_err(|e| format!("pump {pump}: {e}"))?;
        writer.finish().map_err(|e| format!("pump {pump}: {e}"))?;
    }
    let lines = lines.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    Ok(lines
        .zip(marks)
        .filter(|(_, mark)| !emitted.is_some_and(|e| e.covers(*mark)))
        .map(|(line, mark)| PutEntry {
            partition_key: partition_key(app, pump, mark),
            explicit_hash: None,
            data: Bytes::copy_from_slice(line),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_say_what_was_emitted() {
        for mark in [Mark::Window(60_000, 2), Mark::Record(3, 17, 0)] {
            let key = partition_key("status-per-minute", "P:1", mark);
            assert_eq!(parse_key("status-per-minute", &key), Some(("P:1", mark)));
            assert_eq!(parse_key("status", &key), None);
        }
        let mut emitted = Emitted::default();
        emitted.add(Mark::Window(120_000, 0));
        emitted.add(Mark::Window(120_000, 1));
        emitted.add(Mark::Window(60_000, 0));
        emitted.add(Mark::Record(1, 5, 0));
        assert!(
            emitted.covers(Mark::Window(60_000, 7)),
            "earlier windows went out whole"
        );
        assert!(emitted.covers(Mark::Window(120_000, 1)));
        assert!(
            !emitted.covers(Mark::Window(120_000, 2)),
            "the rest of a cut window"
        );
        assert!(!emitted.covers(Mark::Window(180_000, 0)));
        assert!(emitted.covers(Mark::Record(1, 4, 3)));
        assert!(!emitted.covers(Mark::Record(1, 6, 0)));
        assert!(!emitted.covers(Mark::Record(0, 0, 0)));
    }
}
