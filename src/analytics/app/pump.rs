//! One pump of an application, run a tick at a time on the rows its source gained:
//! row-by-row pumps run their SQL on the new rows; tumbling pumps keep the rows of open
//! windows and run their SQL on those of every window the watermark has passed; sliding
//! pumps keep each partition's preceding range and run their SQL on it with the new rows,
//! keeping the output of the new rows only.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, BooleanArray, RecordBatch, Scalar, TimestampMillisecondArray, UInt64Array,
};
use datafusion::arrow::compute::kernels::cmp::{gt_eq, lt};
use datafusion::arrow::compute::{
    SortColumn, concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimestampMillisecondType, UInt64Type,
};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::emit::ROWTIME_OUT;
use super::tail::{ROW, row_id};
use crate::analytics::kda::{Pump, Window};
use crate::analytics::reference::ReferenceTable;
use crate::analytics::schema::{self, ROWTIME};
use crate::config::analytics::{InputSpec, SqlType};

/// The columns a pump sees of an input: the input's own, then the metadata every row has.
pub fn source_columns(input: &InputSpec) -> Vec<(String, SqlType)> {
    input
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty))
        .chain([
            (schema::ROWTIME.to_string(), SqlType::Timestamp),
            (
                schema::APPROXIMATE_ARRIVAL_TIME.to_string(),
                SqlType::Timestamp,
            ),
            (schema::PARTITION_KEY.to_string(), SqlType::Varchar(None)),
            (schema::SEQUENCE_NUMBER.to_string(), SqlType::Varchar(None)),
            (schema::SHARD_ID.to_string(), SqlType::Varchar(None)),
        ])
        .collect()
}

/// What a tick of a pump produced.
pub struct PumpOutput {
    /// The SQL's rows: the target's columns, [`ROWTIME_OUT`], and [`ROW`] for row-by-row
    /// and sliding pumps.
    pub rows: RecordBatch,
    /// The same rows as the target in-application stream's rows, for pumps reading it:
    /// its columns, `ROWTIME` and [`ROW`].
    pub as_source: RecordBatch,
}

/// A pump and the rows it keeps between ticks.
pub struct PumpRunner {
    pump: Pump,
    ctx: SessionContext,
    /// Tumbling: rows of windows not closed yet. Sliding: the range preceding the newest
    /// row.
    kept: Vec<RecordBatch>,
    /// Tumbling: windows ending at or before this are done (their rows are dropped).
    /// Sliding: the ROWTIME of the oldest row kept (from a checkpoint, until the first
    /// tick), where a restart must read from to have each new row's preceding rows.
    closed: Option<u64>,
}

impl PumpRunner {
    /// `pump`, with its windows up to `closed` done already (from a checkpoint), joining
    /// with `references`.
    ///
    /// # Errors
    /// A DataFusion session cannot be made.
    pub fn new(
        pump: Pump,
        closed: Option<u64>,
        references: &[ReferenceTable],
    ) -> Result<PumpRunner, String> {
        let ctx = crate::analytics::query::session()?;
        for reference in references {
            reference.register(&ctx)?;
        }
        Ok(PumpRunner {
            pump,
            ctx,
            kept: Vec::new(),
            closed,
        })
    }

    /// `batch` with only the columns the pump's SQL reads: what windows keep is no more.
    fn read_columns(&self, batch: &RecordBatch) -> Result<RecordBatch, String> {
        let schema = batch.schema();
        let indices: Vec<usize> = self
            .pump
            .reads
            .iter()
            .filter_map(|name| schema.index_of(name).ok())
            .collect();
        batch.project(&indices).map_err(|e| e.to_string())
    }

    /// The memory the rows kept between ticks take: open windows' rows (tumbling), the
    /// preceding range (sliding).
    pub fn kept_bytes(&self) -> usize {
        self.kept
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum()
    }

    pub fn pump(&self) -> &Pump {
        &self.pump
    }

    /// What a checkpoint records for this pump: the end of its last closed window
    /// (tumbling and hopping pumps), its oldest kept row (sliding pumps).
    pub fn open_since(&self) -> Option<u64> {
        match self.pump.window {
            Window::Rows => None,
            _ => self.closed,
        }
    }

    /// The earliest ROWTIME this pump needs read again after a restart: the rows of its
    /// open windows (a hopping window reaches back its size less one slide).
    pub fn replay_since(&self) -> Option<u64> {
        match self.pump.window {
            Window::Hopping { slide_ms, size_ms } => self
                .closed
                .map(|closed| (closed + slide_ms).saturating_sub(size_ms)),
            _ => self.open_since(),
        }
    }

    /// Runs a tick on `new` (the source's rows this tick) with the inputs' `watermark`.
    ///
    /// # Errors
    /// The SQL fails on these rows.
    pub async fn advance(
        &mut self,
        new: &[RecordBatch],
        watermark: u64,
    ) -> Result<Option<PumpOutput>, String> {
        let new: Vec<RecordBatch> = new
            .iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| self.read_columns(b))
            .collect::<Result<_, _>>()?;
        match self.pump.window.clone() {
            Window::Rows => {
                if new.is_empty() {
                    return Ok(None);
                }
                let rows = self.run(&new).await?;
                self.output(rows)
            }
            Window::Tumbling { size_ms } => self.windows(new, watermark, size_ms, size_ms).await,
            Window::Hopping { slide_ms, size_ms } => {
                self.windows(new, watermark, slide_ms, size_ms).await
            }
            Window::Sliding {
                range_ms,
                keep_rows,
            } => self.slide(new, range_ms, keep_rows).await,
        }
    }

    /// Windows of `size` every `step` (tumbling: step = size): rows are kept while a window
    /// not yet closed holds them; when the watermark passes window ends, the SQL runs on the
    /// kept rows before the last such end and the rows of the windows ending after the last
    /// closed one, up to it, are the output.
    async fn windows(
        &mut self,
        new: Vec<RecordBatch>,
        watermark: u64,
        step: u64,
        size: u64,
    ) -> Result<Option<PumpOutput>, String> {
        let step = step.max(1);
        // The oldest row a window still open after `closed` holds.
        let needed_from = |closed: u64| (closed + step).saturating_sub(size);
        for batch in new {
            // Rows only of windows emitted before a restart are read again; they are done.
            let batch = match self.closed {
                Some(closed) => rows_from(&batch, needed_from(closed))?,
                None => batch,
            };
            if batch.num_rows() > 0 {
                self.kept.push(batch);
            }
        }
        let boundary = watermark / step * step;
        let closed_before = self.closed;
        if closed_before.is_some_and(|closed| boundary <= closed) {
            return Ok(None);
        }
        let mut due = Vec::new();
        let mut kept = Vec::new();
        for batch in self.kept.drain(..) {
            let before = rows_before(&batch, boundary)?;
            if before.num_rows() > 0 {
                due.push(before);
            }
            let still = rows_from(&batch, needed_from(boundary))?;
            if still.num_rows() > 0 {
                kept.push(still);
            }
        }
        self.kept = kept;
        self.closed = Some(boundary);
        if due.is_empty() {
            return Ok(None);
        }
        let rows = self.run(&due).await?;
        let rows = windows_ending_in(&rows, closed_before, boundary)?;
        if rows.num_rows() == 0 {
            return Ok(None);
        }
        self.output(rows)
    }

    async fn slide(
        &mut self,
        new: Vec<RecordBatch>,
        range_ms: Option<u64>,
        keep_rows: Option<String>,
    ) -> Result<Option<PumpOutput>, String> {
        if new.is_empty() {
            return Ok(None);
        }
        let fresh: HashSet<u64> = new.iter().flat_map(|b| row_ids(b).into_iter()).collect();
        let mut all = std::mem::take(&mut self.kept);
        all.extend(new);
        let out = self.run(&all).await?;
        let mask: BooleanArray = row_ids(&out)
            .iter()
            .map(|row| Some(fresh.contains(row)))
            .collect();
        let out = filter_record_batch(&out, &mask).map_err(|e| e.to_string())?;
        // Keep what the next rows' windows can reach: the range before the newest row, and
        // the rows the ROWS frames still reach in their partitions.
        let newest = all.iter().filter_map(max_rowtime).max().unwrap_or(0);
        let reached: Option<HashSet<u64>> = match &keep_rows {
            Some(sql) => Some(self.rows_reached(&all, sql).await?),
            None => None,
        };
        let since = range_ms.map(|range| newest.saturating_sub(range));
        let mut kept = Vec::new();
        for batch in all {
            let times = rowtimes(&batch)?;
            let mask: BooleanArray = row_ids(&batch)
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    let in_range = since.is_some_and(|since| {
                        u64::try_from(times.value(i)).is_ok_and(|t| t >= since)
                    });
                    Some(in_range || reached.as_ref().is_some_and(|r| r.contains(row)))
                })
                .collect();
            let batch = filter_record_batch(&batch, &mask).map_err(|e| e.to_string())?;
            if batch.num_rows() > 0 {
                kept.push(batch);
            }
        }
        self.closed = kept.iter().filter_map(min_rowtime).min();
        self.kept = kept;
        self.output(out)
    }

    /// Runs the pump's SQL on `batches` as its source table; its rows as the target's.
    async fn run(&self, batches: &[RecordBatch]) -> Result<RecordBatch, String> {
        let rows = self.query(batches, &self.pump.sql).await?;
        self.pump.shape(&rows)
    }

    /// The `__row`s of `batches` that `sql` (a sliding pump's keep query) selects.
    async fn rows_reached(
        &self,
        batches: &[RecordBatch],
        sql: &str,
    ) -> Result<HashSet<u64>, String> {
        let rows = self.query(batches, sql).await?;
        Ok(row_ids(&rows).into_iter().collect())
    }

    /// Runs `sql` with `batches` as the source table.
    async fn query(&self, batches: &[RecordBatch], sql: &str) -> Result<RecordBatch, String> {
        let schema = batches[0].schema();
        let table =
            MemTable::try_new(schema.clone(), vec![batches.to_vec()]).map_err(|e| e.to_string())?;
        let name = datafusion::common::TableReference::bare(self.pump.source.clone());
        let _ = self.ctx.deregister_table(name.clone());
        self.ctx
            .register_table(name, Arc::new(table))
            .map_err(|e| e.to_string())?;
        let frame = self.ctx.sql(sql).await.map_err(|e| e.to_string())?;
        let out_schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.map_err(|e| e.to_string())?;
        concat_batches(&out_schema, &batches).map_err(|e| e.to_string())
    }

    /// The SQL's rows, in a fixed order, and the same rows as an in-application stream's.
    fn output(&self, rows: RecordBatch) -> Result<Option<PumpOutput>, String> {
        let rows = in_fixed_order(&rows)?;
        let as_source = as_source(&rows)?;
        Ok(Some(PumpOutput { rows, as_source }))
    }
}

/// `rows` ordered by their place (window end, then source row) and then by every column,
/// so that the same rows come in the same order every time they are computed (emission
/// counts rows within a place by this order).
fn in_fixed_order(rows: &RecordBatch) -> Result<RecordBatch, String> {
    let schema = rows.schema();
    let mut keys: Vec<usize> = [ROWTIME_OUT, ROW]
        .iter()
        .filter_map(|name| schema.index_of(name).ok())
        .collect();
    let rest: Vec<usize> = (0..rows.num_columns())
        .filter(|i| !keys.contains(i))
        .collect();
    keys.extend(rest);
    let columns: Vec<SortColumn> = keys
        .into_iter()
        .map(|i| SortColumn {
            values: rows.column(i).clone(),
            options: None,
        })
        .collect();
    let order = lexsort_to_indices(&columns, None).map_err(|e| e.to_string())?;
    take_record_batch(rows, &order).map_err(|e| e.to_string())
}

/// A pump's output as rows of its target stream: its columns, `ROWTIME` (from
/// [`ROWTIME_OUT`]) and [`ROW`] (a window's rows get the window's end, which increases as
/// offsets do).
fn as_source(rows: &RecordBatch) -> Result<RecordBatch, String> {
    let schema = rows.schema();
    let rowtime = rows
        .column_by_name(ROWTIME_OUT)
        .ok_or_else(|| format!("the output has no {ROWTIME_OUT}"))?
        .clone();
    let row: ArrayRef = match rows.column_by_name(ROW) {
        Some(row) => row.clone(),
        None => {
            let ends = rowtime.as_primitive::<TimestampMillisecondType>();
            Arc::new(UInt64Array::from_iter_values(
                ends.values()
                    .iter()
                    .map(|&end| row_id(0, u64::try_from(end).unwrap_or(0))),
            ))
        }
    };
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (i, field) in schema.fields().iter().enumerate() {
        if field.name() == ROWTIME_OUT || field.name() == ROW {
            continue;
        }
        fields.push(field.as_ref().clone());
        columns.push(rows.column(i).clone());
    }
    fields.push(Field::new(ROWTIME, schema::TIME, false));
    columns.push(rowtime);
    fields.push(Field::new(ROW, DataType::UInt64, false));
    columns.push(row);
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}

fn rowtimes(batch: &RecordBatch) -> Result<&TimestampMillisecondArray, String> {
    batch
        .column_by_name(ROWTIME)
        .map(|c| c.as_primitive::<TimestampMillisecondType>())
        .ok_or_else(|| format!("a source without {ROWTIME}"))
}

fn at(ms: u64) -> Scalar<TimestampMillisecondArray> {
    Scalar::new(TimestampMillisecondArray::from(vec![
        i64::try_from(ms).unwrap_or(i64::MAX),
    ]))
}

/// The output rows of windows ending after `after` (if any) and at or before `until`.
fn windows_ending_in(
    rows: &RecordBatch,
    after: Option<u64>,
    until: u64,
) -> Result<RecordBatch, String> {
    let ends = rows
        .column_by_name(ROWTIME_OUT)
        .ok_or_else(|| format!("the output has no {ROWTIME_OUT}"))?
        .as_primitive::<TimestampMillisecondType>();
    let mask: BooleanArray = ends
        .iter()
        .map(|end| {
            let end = end.and_then(|e| u64::try_from(e).ok());
            Some(end.is_some_and(|e| e <= until && after.is_none_or(|a| e > a)))
        })
        .collect();
    filter_record_batch(rows, &mask).map_err(|e| e.to_string())
}

/// The rows of `batch` with ROWTIME at or after `ms`.
fn rows_from(batch: &RecordBatch, ms: u64) -> Result<RecordBatch, String> {
    let mask = gt_eq(rowtimes(batch)?, &at(ms)).map_err(|e| e.to_string())?;
    filter_record_batch(batch, &mask).map_err(|e| e.to_string())
}

/// The rows of `batch` with ROWTIME before `ms`.
fn rows_before(batch: &RecordBatch, ms: u64) -> Result<RecordBatch, String> {
    let mask = lt(rowtimes(batch)?, &at(ms)).map_err(|e| e.to_string())?;
    filter_record_batch(batch, &mask).map_err(|e| e.to_string())
}

fn max_rowtime(batch: &RecordBatch) -> Option<u64> {
    let times = rowtimes(batch).ok()?;
    times
        .values()
        .iter()
        .max()
        .and_then(|&ms| u64::try_from(ms).ok())
}

fn min_rowtime(batch: &RecordBatch) -> Option<u64> {
    let times = rowtimes(batch).ok()?;
    times
        .values()
        .iter()
        .min()
        .and_then(|&ms| u64::try_from(ms).ok())
}

fn row_ids(batch: &RecordBatch) -> Vec<u64> {
    batch
        .column_by_name(ROW)
        .map(|c| c.as_primitive::<UInt64Type>().values().to_vec())
        .unwrap_or_default()
}
