//! A stream as a DataFusion table for one-shot queries: one partition per shard, read from
//! the log as the query pulls it, decoded by the stream's input schema (or as text). A
//! query's bounds on `ROWTIME` become a start offset from the log's time index and a stop
//! at the first later arrival (arrivals never decrease within a shard), so a query over the
//! last minutes of a long stream reads only those minutes.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use futures_util::stream;

use super::decode::Decoder;
use super::schema::ROWTIME;
use crate::config::analytics::InputSpec;
use crate::stream::log::Stream;

/// Records read from a shard per step.
const READ_RECORDS: usize = 8192;
const READ_BYTES: usize = 8 << 20;

/// One stream, queried as a table.
pub struct StreamTable {
    stream: Arc<Stream>,
    input: Option<InputSpec>,
    schema: SchemaRef,
    /// Records of this table that did not fit its schema, over every scan.
    rejected: Arc<AtomicU64>,
}

impl fmt::Debug for StreamTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamTable")
            .field("stream", &self.stream.name())
            .finish()
    }
}

impl StreamTable {
    /// `stream` read by `input` (as text without one); records that do not fit add to
    /// `rejected`.
    pub fn new(
        stream: Arc<Stream>,
        input: Option<InputSpec>,
        rejected: Arc<AtomicU64>,
    ) -> StreamTable {
        let schema = Decoder::new(input.as_ref()).schema().clone();
        StreamTable {
            stream,
            input,
            schema,
            rejected,
        }
    }
}

#[async_trait]
impl TableProvider for StreamTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Inexact: the bounds only choose where to read; DataFusion still applies them.
        Ok(filters
            .iter()
            .map(|filter| {
                if TimeRange::default().narrowed(filter).is_some() {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let range = filters.iter().fold(TimeRange::default(), |range, filter| {
            range.narrowed(filter).unwrap_or(range)
        });
        let partitions: Vec<Arc<dyn PartitionStream>> = (0..self.stream.shards().len())
            .map(|shard| {
                Arc::new(ShardScan {
                    stream: self.stream.clone(),
                    shard,
                    input: self.input.clone(),
                    schema: self.schema.clone(),
                    range,
                    end: self.stream.shards()[shard].next_offset(),
                    rejected: self.rejected.clone(),
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        let exec = StreamingTableExec::try_new(
            self.schema.clone(),
            partitions,
            projection,
            [],
            false,
            limit,
        )?;
        Ok(Arc::new(exec))
    }
}

/// Arrival times a scan needs, in epoch milliseconds, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: u64,
    pub to: u64,
}

impl Default for TimeRange {
    fn default() -> TimeRange {
        TimeRange {
            from: 0,
            to: u64::MAX,
        }
    }
}

impl TimeRange {
    /// This range within `filter`'s bound on ROWTIME; `None` when `filter` is not a
    /// comparison of ROWTIME with a constant time.
    pub fn narrowed(self, filter: &Expr) -> Option<TimeRange> {
        match filter {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (op, time) = match (is_rowtime(left), is_rowtime(right)) {
                    (true, false) => (*op, millis(right)?),
                    (false, true) => (op.swap()?, millis(left)?),
                    _ => return None,
                };
                let (from, to) = (time.0, time.1);
                match op {
                    Operator::Eq => Some(self.within(from, to)),
                    Operator::Gt | Operator::GtEq => Some(self.within(from, u64::MAX)),
                    Operator::Lt | Operator::LtEq => Some(self.within(0, to)),
                    _ => None,
                }
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) if is_rowtime(expr) => Some(self.within(millis(low)?.0, millis(high)?.1)),
            _ => None,
        }
    }

    fn within(self, from: u64, to: u64) -> TimeRange {
        TimeRange {
            from: self.from.max(from),
            to: self.to.min(to),
        }
    }
}

/// Whether `expr` is the ROWTIME column, perhaps cast to another time unit.
fn is_rowtime(expr: &Expr) -> bool {
    match expr {
        Expr::Column(column) => column.name == ROWTIME,
        Expr::Cast(cast) => is_rowtime(&cast.expr),
        Expr::TryCast(cast) => is_rowtime(&cast.expr),
        _ => false,
    }
}

/// A constant time as the milliseconds at or before it and at or after it (a bound in
/// finer units falls between two).
fn millis(expr: &Expr) -> Option<(u64, u64)> {
    let Expr::Literal(value, _) = expr else {
        return None;
    };
    let (value, per_ms) = match value {
        ScalarValue::TimestampSecond(Some(v), _) => return Some(clamp(v.saturating_mul(1000), 0)),
        ScalarValue::TimestampMillisecond(Some(v), _) => return Some(clamp(*v, 0)),
        ScalarValue::TimestampMicrosecond(Some(v), _) => (*v, 1_000),
        ScalarValue::TimestampNanosecond(Some(v), _) => (*v, 1_000_000),
        _ => return None,
    };
    let floor = value.div_euclid(per_ms);
    Some(clamp(floor, i64::from(value.rem_euclid(per_ms) != 0)))
}

/// `ms` (and `ms + up`) as unsigned milliseconds, times before 1970 as 0.
fn clamp(ms: i64, up: i64) -> (u64, u64) {
    let low = u64::try_from(ms).unwrap_or(0);
    let high = u64::try_from(ms.saturating_add(up)).unwrap_or(0);
    (low, high)
}

/// One shard's records within a time range, up to the end it had when the query began.
struct ShardScan {
    stream: Arc<Stream>,
    shard: usize,
    input: Option<InputSpec>,
    schema: SchemaRef,
    range: TimeRange,
    /// The shard's next offset when the scan was planned: later puts are not read.
    end: u64,
    rejected: Arc<AtomicU64>,
}

impl fmt::Debug for ShardScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardScan")
            .field("stream", &self.stream.name())
            .field("shard", &self.shard)
            .field("range", &self.range)
            .finish()
    }
}

impl PartitionStream for ShardScan {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let reader = ShardReader {
            stream: self.stream.clone(),
            shard: self.shard,
            decoder: Decoder::new(self.input.as_ref()),
            range: self.range,
            next: None,
            end: self.end,
            rejected: self.rejected.clone(),
            done: false,
        };
        let batches = stream::unfold(reader, |mut reader| async move {
            let batch = reader.next_batch().transpose()?;
            Some((batch, reader))
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

/// Where a shard scan is.
struct ShardReader {
    stream: Arc<Stream>,
    shard: usize,
    decoder: Decoder,
    range: TimeRange,
    /// `None` until the start offset is looked up.
    next: Option<u64>,
    end: u64,
    rejected: Arc<AtomicU64>,
    done: bool,
}

impl ShardReader {
    /// The next non-empty batch of rows, `None` at the end of the range.
    fn next_batch(&mut self) -> DfResult<Option<RecordBatch>> {
        let shard = &self.stream.shards()[self.shard];
        let shard_id = shard.id();
        while !self.done {
            let from = match self.next {
                Some(next) => next,
                None => shard
                    .offset_at_timestamp(self.range.from)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?,
            };
            if from >= self.end {
                self.done = true;
                break;
            }
            let read = shard
                .read(from, READ_RECORDS, READ_BYTES)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            self.next = Some(read.next);
            let mut records = read.records;
            let in_range = records
                .iter()
                .position(|r| r.offset >= self.end || r.arrival_ms > self.range.to);
            if let Some(stop) = in_range {
                records.truncate(stop);
                self.done = true;
            }
            if records.is_empty() {
                self.done |= read.next <= from;
                continue;
            }
            let decoded = self.decoder.decode(&shard_id, &records);
            self.rejected
                .fetch_add(decoded.rejected.len() as u64, Ordering::Relaxed);
            if decoded.batch.num_rows() > 0 {
                return Ok(Some(decoded.batch));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::{cast, ident, lit};

    use super::*;
    use crate::analytics::schema::TIME;

    fn at_nanos(nanos: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(Some(nanos), None))
    }

    #[test]
    fn comparisons_of_rowtime_with_a_time_bound_the_scan() {
        let whole = TimeRange::default();
        let t = 1_700_000_000_123_000_000; // ms 1_700_000_000_123
        let cases = [
            (
                ident(ROWTIME).gt_eq(at_nanos(t)),
                (1_700_000_000_123, u64::MAX),
            ),
            (ident(ROWTIME).lt(at_nanos(t + 1)), (0, 1_700_000_000_124)),
            (
                at_nanos(t).lt(ident(ROWTIME)),
                (1_700_000_000_123, u64::MAX),
            ),
            (
                cast(ident(ROWTIME), TIME)
                    .eq(lit(ScalarValue::TimestampMillisecond(Some(5), None))),
                (5, 5),
            ),
            (
                ident(ROWTIME).between(
                    lit(ScalarValue::TimestampSecond(Some(10), None)),
                    lit(ScalarValue::TimestampSecond(Some(20), None)),
                ),
                (10_000, 20_000),
            ),
        ];
        for (filter, (from, to)) in cases {
            assert_eq!(
                whole.narrowed(&filter),
                Some(TimeRange { from, to }),
                "{filter}"
            );
        }
        for other in [
            ident("qty").gt(lit(1)),
            ident(ROWTIME).not_eq(at_nanos(t)),
            ident(ROWTIME).gt(ident("APPROXIMATE_ARRIVAL_TIME")),
        ] {
            assert_eq!(whole.narrowed(&other), None, "{other}");
        }
        let both = whole
            .narrowed(&ident(ROWTIME).gt_eq(at_nanos(t)))
            .and_then(|r| r.narrowed(&ident(ROWTIME).lt_eq(at_nanos(t + 5_000_000))));
        assert_eq!(
            both,
            Some(TimeRange {
                from: 1_700_000_000_123,
                to: 1_700_000_000_128
            })
        );
    }
}
