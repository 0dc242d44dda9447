//! An application's reading of one input stream: where each shard is read to, the records
//! that arrived since, as rows, and the input's watermark — how far event time (ROWTIME,
//! the arrival in the log) has surely come.
//!
//! Arrivals never decrease within a shard, so a shard with records still unread has come
//! as far as the last one read; a shard read to its end has come as far as now, less
//! `idle_shard_timeout` for records being stamped and written as we look. The input's
//! watermark is the least of its shards'.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt64Array};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::analytics::decode::{Decoder, Rejected};
use crate::stream::log::{LogError, Stream};

/// The hidden column naming each row's record: its shard in the top 16 bits, its offset in
/// the rest (offsets stay far below 2^48).
pub use crate::analytics::kda::ROW;
const SHARD_SHIFT: u32 = 48;

/// Records read from a shard per poll.
const READ_RECORDS: usize = 8192;
const READ_BYTES: usize = 8 << 20;

/// `ROW`'s value for a record.
pub fn row_id(shard: usize, offset: u64) -> u64 {
    ((shard as u64) << SHARD_SHIFT) | (offset & ((1 << SHARD_SHIFT) - 1))
}

/// The shard and offset a `ROW` value names.
pub fn row_position(row: u64) -> (usize, u64) {
    (
        (row >> SHARD_SHIFT) as usize,
        row & ((1 << SHARD_SHIFT) - 1),
    )
}

/// One input stream as an application reads it.
pub struct InputTail {
    stream: Arc<Stream>,
    decoder: Decoder,
    /// The decoder's schema plus [`ROW`].
    schema: SchemaRef,
    /// Per shard: the next offset to read, and the last arrival read.
    shards: Vec<(u64, Option<u64>)>,
    idle_ms: u64,
}

/// What one poll read.
pub struct Polled {
    /// The new rows, shard after shard, each shard's in order.
    pub batch: RecordBatch,
    pub rejected: Vec<Rejected>,
}

impl InputTail {
    /// Reads `stream` with `decoder` from `from` (each shard's next offset; missing shards
    /// from their start).
    pub fn new(stream: Arc<Stream>, decoder: Decoder, from: &[u64], idle_ms: u64) -> InputTail {
        let mut fields: Vec<Field> = decoder
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(ROW, DataType::UInt64, false));
        let shards = (0..stream.shards().len())
            .map(|i| {
                let start = from
                    .get(i)
                    .copied()
                    .unwrap_or_else(|| stream.shards()[i].first_offset());
                (start, None)
            })
            .collect();
        InputTail {
            stream,
            decoder,
            schema: Arc::new(Schema::new(fields)),
            shards,
            idle_ms,
        }
    }

    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// The rows' schema: the input's columns and metadata, then [`ROW`].
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Each shard's next offset to read.
    pub fn positions(&self) -> Vec<u64> {
        self.shards.iter().map(|(next, _)| *next).collect()
    }

    /// Reads what arrived since the last poll (a bounded amount per shard).
    ///
    /// # Errors
    /// A shard cannot be read.
    pub fn poll(&mut self) -> Result<Polled, LogError> {
        let mut batches = Vec::new();
        let mut rejected = Vec::new();
        for (index, shard) in self.stream.shards().iter().enumerate() {
            let (next, last_arrival) = &mut self.shards[index];
            if *next >= shard.next_offset() {
                continue;
            }
            let read = shard.read(*next, READ_RECORDS, READ_BYTES)?;
            *next = read.next.max(*next);
            let Some(last) = read.records.last() else {
                continue;
            };
            *last_arrival = Some(last.arrival_ms);
            let rows: Vec<u64> = read
                .records
                .iter()
                .map(|r| row_id(index, r.offset))
                .collect();
            let decoded = self.decoder.decode(&shard.id(), &read.records);
            // Rows of records that fit, in order: the ids of the rejected ones drop out.
            let bad: HashSet<u64> = decoded.rejected.iter().map(|r| r.record.offset).collect();
            let kept: Vec<u64> = rows
                .into_iter()
                .zip(&read.records)
                .filter(|(_, record)| !bad.contains(&record.offset))
                .map(|(row, _)| row)
                .collect();
            let mut columns: Vec<ArrayRef> = decoded.batch.columns().to_vec();
            columns.push(Arc::new(UInt64Array::from(kept)));
            let batch = RecordBatch::try_new(self.schema.clone(), columns)
                .unwrap_or_else(|e| unreachable!("a decoded batch and its row ids: {e}"));
            batches.push(batch);
            rejected.extend(decoded.rejected);
        }
        let batch = concat_batches(&self.schema, &batches)
            .unwrap_or_else(|e| unreachable!("batches of one schema concatenate: {e}"));
        Ok(Polled { batch, rejected })
    }

    /// How far event time has surely come on this input, in epoch milliseconds.
    pub fn watermark(&self) -> u64 {
        let now = now_ms();
        self.stream
            .shards()
            .iter()
            .zip(&self.shards)
            .map(|(shard, (next, last_arrival))| {
                let read_all = *next >= shard.next_offset();
                let seen = last_arrival.unwrap_or(0);
                if read_all {
                    seen.max(now.saturating_sub(self.idle_ms))
                } else {
                    seen
                }
            })
            .min()
            .unwrap_or(now)
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
