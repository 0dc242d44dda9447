//! Records to Arrow rows, by an input's schema. JSON goes through arrow-json's tape decoder
//! a batch at a time (member paths become nested struct fields); CSV (csv-core), TSV and
//! real-time log lines are split and parsed field by field. A record that does not fit —
//! not JSON, a value that is not of its column's type — is rejected with the reason and
//! never silently dropped; the rest of its batch is kept.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder, RecordBatch,
    StringBuilder, StructArray, TimestampMillisecondArray, TimestampMillisecondBuilder, make_array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::compute::kernels::cast_utils::{
    Parser, parse_decimal, string_to_timestamp_nanos,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Fields, Schema, SchemaRef,
};
use datafusion::arrow::json::reader::{Decoder as JsonDecoder, ReaderBuilder};
use serde_json::Value;

use super::schema::{self, arrow_type};
use crate::config::analytics::{
    ColumnSource, ColumnSpec, InputFormat, InputSpec, PathStep, SqlType,
};
use crate::stream::log::StoredRecord;

/// A record that does not fit its input's schema, and why.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub shard_id: String,
    pub record: StoredRecord,
    pub reason: String,
}

/// One batch of records as rows, and the records that did not fit.
pub struct Decoded {
    pub batch: RecordBatch,
    pub rejected: Vec<Rejected>,
}

/// Records decoded in one pass at most; longer slices are decoded in pieces.
pub const MAX_RECORDS: usize = 1 << 16;

/// Decodes one input's records; built once, reused for every batch.
pub struct Decoder {
    schema: SchemaRef,
    columns: Vec<ColumnSpec>,
    kind: Kind,
}

enum Kind {
    /// JSON with member-only paths that nest without conflict: arrow-json.
    Json(Box<FastJson>),
    /// JSON with array indexes or a path that is both a value and an object: serde_json.
    SlowJson,
    Text(TextFormat),
    /// A stream with no input schema: the record as (lossy UTF-8) text.
    Raw,
}

#[derive(Clone, Copy)]
struct TextFormat {
    separator: u8,
    /// RFC 4180 quoting (CSV); TSV and real-time log lines have none.
    quoted: bool,
    /// The real-time log writes `-` for "no value".
    dash_is_null: bool,
}

impl Decoder {
    /// A decoder for `input`, or for a stream's raw records when it has none.
    pub fn new(input: Option<&InputSpec>) -> Decoder {
        let Some(input) = input else {
            return Decoder {
                schema: schema::raw_schema(),
                columns: Vec::new(),
                kind: Kind::Raw,
            };
        };
        let text = |separator, quoted, dash_is_null| {
            Kind::Text(TextFormat {
                separator,
                quoted,
                dash_is_null,
            })
        };
        let kind = match input.format {
            InputFormat::Json => match FastJson::new(&input.columns) {
                Some(fast) => Kind::Json(Box::new(fast)),
                None => Kind::SlowJson,
            },
            InputFormat::Csv => text(b',', true, false),
            InputFormat::Tsv => text(b'\t', false, false),
            InputFormat::CloudfrontRealtime => text(b'\t', false, true),
        };
        Decoder {
            schema: schema::input_schema(input),
            columns: input.columns.clone(),
            kind,
        }
    }

    /// The rows' schema: the columns, then the metadata every row has.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// `records` of shard `shard_id` as rows, in order, without those that do not fit.
    pub fn decode(&mut self, shard_id: &str, records: &[StoredRecord]) -> Decoded {
        if records.len() <= MAX_RECORDS {
            return self.decode_piece(shard_id, records);
        }
        let pieces: Vec<Decoded> = records
            .chunks(MAX_RECORDS)
            .map(|piece| self.decode_piece(shard_id, piece))
            .collect();
        let batches: Vec<&RecordBatch> = pieces.iter().map(|p| &p.batch).collect();
        Decoded {
            batch: concat_batches(&self.schema, batches)
                .unwrap_or_else(|e| unreachable!("batches of one schema concatenate: {e}")),
            rejected: pieces.into_iter().flat_map(|p| p.rejected).collect(),
        }
    }

    fn decode_piece(&mut self, shard_id: &str, records: &[StoredRecord]) -> Decoded {
        let (columns, fits) = match &mut self.kind {
            Kind::Json(fast) => fast.decode(records),
            Kind::SlowJson => by_value(&self.columns, records),
            Kind::Text(format) => by_field(*format, &self.columns, records),
            Kind::Raw => {
                let mut text = StringBuilder::new();
                for record in records {
                    text.append_value(String::from_utf8_lossy(&record.data));
                }
                let column: ArrayRef = Arc::new(text.finish());
                (vec![column], vec![Ok(()); records.len()])
            }
        };
        let mut rejected = Vec::new();
        let mut kept = Vec::with_capacity(records.len());
        for (record, fit) in records.iter().zip(fits) {
            match fit {
                Ok(()) => kept.push(record),
                Err(reason) => rejected.push(Rejected {
                    shard_id: shard_id.to_string(),
                    record: record.clone(),
                    reason,
                }),
            }
        }
        let mut arrays = columns;
        arrays.extend(metadata(shard_id, &kept));
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)
            .unwrap_or_else(|e| unreachable!("decoded columns match the schema: {e}"));
        Decoded { batch, rejected }
    }
}

/// The metadata columns of `records`.
fn metadata(shard_id: &str, records: &[&StoredRecord]) -> [ArrayRef; 5] {
    let arrivals: Vec<i64> = records
        .iter()
        .map(|r| i64::try_from(r.arrival_ms).unwrap_or(i64::MAX))
        .collect();
    let time: ArrayRef = Arc::new(TimestampMillisecondArray::from(arrivals));
    let mut keys = StringBuilder::with_capacity(records.len(), records.len() * 16);
    let mut sequences = StringBuilder::with_capacity(records.len(), records.len() * 56);
    let mut shards = StringBuilder::with_capacity(records.len(), records.len() * shard_id.len());
    for record in records {
        keys.append_value(&record.partition_key);
        sequences.append_value(record.seq.to_string());
        shards.append_value(shard_id);
    }
    [
        time.clone(),
        time,
        Arc::new(keys.finish()),
        Arc::new(sequences.finish()),
        Arc::new(shards.finish()),
    ]
}

// ------------------------------------------------------------------ JSON, fast

/// arrow-json decoding into a nested schema built from the columns' member paths.
struct FastJson {
    /// The nested schema arrow-json decodes into.
    nested: SchemaRef,
    decoder: JsonDecoder,
    /// Each column's path of field names into `nested`.
    paths: Vec<Vec<String>>,
}

/// A tree of JSON members: a leaf holds a value of a column's type.
#[derive(Default)]
struct Node {
    leaf: Option<DataType>,
    children: Vec<(String, Node)>,
}

impl Node {
    /// Adds a leaf at `path`; `false` if the path is a value and an object at once (or
    /// one value with two types).
    fn insert(&mut self, path: &[String], ty: DataType) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return match &self.leaf {
                Some(existing) => *existing == ty && self.children.is_empty(),
                None => {
                    self.leaf = Some(ty);
                    self.children.is_empty()
                }
            };
        };
        if self.leaf.is_some() {
            return false;
        }
        let index = match self.children.iter().position(|(name, _)| name == first) {
            Some(index) => index,
            None => {
                self.children.push((first.clone(), Node::default()));
                self.children.len() - 1
            }
        };
        self.children[index].1.insert(rest, ty)
    }

    fn fields(&self) -> Fields {
        self.children
            .iter()
            .map(|(name, child)| {
                let ty = match &child.leaf {
                    Some(ty) => ty.clone(),
                    None => DataType::Struct(child.fields()),
                };
                Field::new(name, ty, true)
            })
            .collect()
    }
}

impl FastJson {
    /// `None` when a path has an array index or conflicts with another.
    fn new(columns: &[ColumnSpec]) -> Option<FastJson> {
        let mut root = Node::default();
        let mut paths = Vec::with_capacity(columns.len());
        for column in columns {
            let ColumnSource::Json(steps) = &column.source else {
                return None;
            };
            let members: Option<Vec<String>> = steps
                .iter()
                .map(|step| match step {
                    PathStep::Member(name) => Some(name.clone()),
                    PathStep::Index(_) => None,
                })
                .collect();
            let members = members?;
            if !root.insert(&members, arrow_type(column.ty)) {
                return None;
            }
            paths.push(members);
        }
        let nested = Arc::new(Schema::new(root.fields()));
        let decoder = json_decoder(&nested)?;
        Some(FastJson {
            nested,
            decoder,
            paths,
        })
    }

    /// The batch in one pass; record by record when some record does not fit.
    fn decode(&mut self, records: &[StoredRecord]) -> (Vec<ArrayRef>, Vec<Result<(), String>>) {
        match self.decode_all(records) {
            Some(batch) => (self.columns(&batch), vec![Ok(()); records.len()]),
            None => self.decode_each(records),
        }
    }

    /// `None` when any record is not exactly one JSON object of the schema.
    fn decode_all(&mut self, records: &[StoredRecord]) -> Option<RecordBatch> {
        for (i, record) in records.iter().enumerate() {
            let ok = self.decoder.decode(&record.data).is_ok()
                && !self.decoder.has_partial_record()
                && self.decoder.len() == i + 1;
            if !ok {
                self.reset();
                return None;
            }
        }
        match self.decoder.flush() {
            Ok(Some(batch)) => Some(batch),
            Ok(None) => Some(RecordBatch::new_empty(self.nested.clone())),
            Err(_) => {
                self.reset();
                None
            }
        }
    }

    fn decode_each(
        &mut self,
        records: &[StoredRecord],
    ) -> (Vec<ArrayRef>, Vec<Result<(), String>>) {
        let mut batches = Vec::new();
        let fits: Vec<Result<(), String>> = records
            .iter()
            .map(|record| match self.decode_one(&record.data) {
                Ok(batch) => {
                    batches.push(batch);
                    Ok(())
                }
                Err(reason) => Err(reason),
            })
            .collect();
        let batch = concat_batches(&self.nested, &batches)
            .unwrap_or_else(|e| unreachable!("one-row batches of one schema concatenate: {e}"));
        (self.columns(&batch), fits)
    }

    fn decode_one(&mut self, data: &Bytes) -> Result<RecordBatch, String> {
        let outcome = match self.decoder.decode(data) {
            Err(e) => Err(format!("not JSON: {e}")),
            Ok(_) if self.decoder.has_partial_record() => {
                Err("not JSON: the record ends inside a value".to_string())
            }
            Ok(_) if self.decoder.len() != 1 => Err(format!(
                "expected one JSON object, found {}",
                self.decoder.len()
            )),
            Ok(_) => match self.decoder.flush() {
                Ok(Some(batch)) => Ok(batch),
                Ok(None) => Err("expected one JSON object, found none".to_string()),
                Err(e) => Err(e.to_string()),
            },
        };
        if outcome.is_err() {
            self.reset();
        }
        outcome
    }

    /// A fresh decoder: after an error the tape decoder's state is not to be trusted.
    fn reset(&mut self) {
        if let Some(decoder) = json_decoder(&self.nested) {
            self.decoder = decoder;
        }
    }

    /// Each column's array, pulled out of the nested batch (a null parent object makes the
    /// value null).
    fn columns(&self, batch: &RecordBatch) -> Vec<ArrayRef> {
        self.paths
            .iter()
            .map(|path| {
                let mut array = batch
                    .column_by_name(&path[0])
                    .unwrap_or_else(|| unreachable!("the nested schema has every path"))
                    .clone();
                for name in &path[1..] {
                    let parent = array
                        .as_any()
                        .downcast_ref::<StructArray>()
                        .unwrap_or_else(|| unreachable!("a path's inner steps are structs"));
                    let child = parent
                        .column_by_name(name)
                        .unwrap_or_else(|| unreachable!("the nested schema has every path"));
                    array = with_parent_nulls(child, parent.nulls());
                }
                array
            })
            .collect()
    }
}

fn json_decoder(nested: &SchemaRef) -> Option<JsonDecoder> {
    ReaderBuilder::new(nested.clone())
        .with_coerce_primitive(true)
        .with_batch_size(MAX_RECORDS)
        .build_decoder()
        .ok()
}

/// `child` with the nulls of its parent added.
fn with_parent_nulls(child: &ArrayRef, parent: Option<&NullBuffer>) -> ArrayRef {
    if parent.is_none() {
        return child.clone();
    }
    let nulls = NullBuffer::union(child.nulls(), parent);
    let data = child.to_data().into_builder().nulls(nulls);
    // Same length and type, more nulls: always valid.
    make_array(
        data.build()
            .unwrap_or_else(|e| unreachable!("adding nulls keeps the data valid: {e}")),
    )
}

// ------------------------------------------------------------------ values, one by one

/// A value parsed for a column, before it is appended (so a record that fails half-way
/// appends nothing).
enum Parsed<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Decimal(i128),
    Text(std::borrow::Cow<'a, str>),
    Millis(i64),
    Days(i32),
}

/// Builders for each column's array.
enum Column {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Text(StringBuilder),
    Time(TimestampMillisecondBuilder),
    Date(Date32Builder),
}

impl Column {
    fn new(ty: SqlType, capacity: usize) -> Column {
        match ty {
            SqlType::Boolean => Column::Bool(BooleanBuilder::with_capacity(capacity)),
            SqlType::TinyInt => Column::I8(Int8Builder::with_capacity(capacity)),
            SqlType::SmallInt => Column::I16(Int16Builder::with_capacity(capacity)),
            SqlType::Integer => Column::I32(Int32Builder::with_capacity(capacity)),
            SqlType::BigInt => Column::I64(Int64Builder::with_capacity(capacity)),
            SqlType::Real => Column::F32(Float32Builder::with_capacity(capacity)),
            SqlType::Double => Column::F64(Float64Builder::with_capacity(capacity)),
            SqlType::Decimal(p, s) => {
                Column::Decimal(Decimal128Builder::with_capacity(capacity), p, s)
            }
            SqlType::Varchar(_) => {
                Column::Text(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            SqlType::Timestamp => {
                Column::Time(TimestampMillisecondBuilder::with_capacity(capacity))
            }
            SqlType::Date => Column::Date(Date32Builder::with_capacity(capacity)),
        }
    }

    /// Appends `value`, which [`parse_text`] or [`parse_json`] made for this column's type.
    fn push(&mut self, value: Parsed<'_>) {
        match (self, value) {
            (Column::Bool(b), Parsed::Bool(v)) => b.append_value(v),
            (Column::I8(b), Parsed::Int(v)) => b.append_value(v as i8),
            (Column::I16(b), Parsed::Int(v)) => b.append_value(v as i16),
            (Column::I32(b), Parsed::Int(v)) => b.append_value(v as i32),
            (Column::I64(b), Parsed::Int(v)) => b.append_value(v),
            (Column::F32(b), Parsed::Float(v)) => b.append_value(v as f32),
            (Column::F64(b), Parsed::Float(v)) => b.append_value(v),
            (Column::Decimal(b, ..), Parsed::Decimal(v)) => b.append_value(v),
            (Column::Text(b), Parsed::Text(v)) => b.append_value(v),
            (Column::Time(b), Parsed::Millis(v)) => b.append_value(v),
            (Column::Date(b), Parsed::Days(v)) => b.append_value(v),
            (column, _) => column.push_null(),
        }
    }

    fn push_null(&mut self) {
        match self {
            Column::Bool(b) => b.append_null(),
            Column::I8(b) => b.append_null(),
            Column::I16(b) => b.append_null(),
            Column::I32(b) => b.append_null(),
            Column::I64(b) => b.append_null(),
            Column::F32(b) => b.append_null(),
            Column::F64(b) => b.append_null(),
            Column::Decimal(b, ..) => b.append_null(),
            Column::Text(b) => b.append_null(),
            Column::Time(b) => b.append_null(),
            Column::Date(b) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Column::Bool(mut b) => Arc::new(b.finish()),
            Column::I8(mut b) => Arc::new(b.finish()),
            Column::I16(mut b) => Arc::new(b.finish()),
            Column::I32(mut b) => Arc::new(b.finish()),
            Column::I64(mut b) => Arc::new(b.finish()),
            Column::F32(mut b) => Arc::new(b.finish()),
            Column::F64(mut b) => Arc::new(b.finish()),
            Column::Decimal(mut b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(p, s)
                    .unwrap_or_else(|e| unreachable!("the config checked DECIMAL({p},{s}): {e}")),
            ),
            Column::Text(mut b) => Arc::new(b.finish()),
            Column::Time(mut b) => Arc::new(b.finish()),
            Column::Date(mut b) => Arc::new(b.finish()),
        }
    }
}

/// Parses `text` as a value of `ty`; `Err` says why it is not one.
fn parse_text(ty: SqlType, text: &str) -> Result<Parsed<'_>, String> {
    let trimmed = text.trim();
    let not = |what: &str| format!("{text:?} is not {what}");
    Ok(match ty {
        SqlType::Varchar(_) => Parsed::Text(text.into()),
        _ if trimmed.is_empty() => Parsed::Null,
        SqlType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "yes" => Parsed::Bool(true),
            "false" | "f" | "0" | "no" => Parsed::Bool(false),
            _ => return Err(not("a BOOLEAN")),
        },
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Integer | SqlType::BigInt => {
            let value: i64 = trimmed.parse().map_err(|_| not(&ty.sql_name()))?;
            Parsed::Int(in_range(ty, value).ok_or_else(|| not(&ty.sql_name()))?)
        }
        SqlType::Real | SqlType::Double => {
            Parsed::Float(trimmed.parse().map_err(|_| not(&ty.sql_name()))?)
        }
        SqlType::Decimal(p, s) => Parsed::Decimal(
            parse_decimal::<Decimal128Type>(trimmed, p, s).map_err(|_| not(&ty.sql_name()))?,
        ),
        SqlType::Timestamp => {
            Parsed::Millis(timestamp_millis(trimmed).ok_or_else(|| {
                not("a TIMESTAMP (epoch seconds, RFC 3339 or YYYY-MM-DD HH:MM:SS)")
            })?)
        }
        SqlType::Date => {
            Parsed::Days(Date32Type::parse(trimmed).ok_or_else(|| not("a DATE (YYYY-MM-DD)"))?)
        }
    })
}

/// `value` within the range of the integer type `ty`.
fn in_range(ty: SqlType, value: i64) -> Option<i64> {
    let fits = match ty {
        SqlType::TinyInt => i8::try_from(value).is_ok(),
        SqlType::SmallInt => i16::try_from(value).is_ok(),
        SqlType::Integer => i32::try_from(value).is_ok(),
        _ => true,
    };
    fits.then_some(value)
}

/// Epoch seconds (with a fraction, as the real-time log writes them), or a date and time.
fn timestamp_millis(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds
            .is_finite()
            .then(|| (seconds * 1000.0).round() as i64);
    }
    string_to_timestamp_nanos(text)
        .ok()
        .map(|nanos| nanos.div_euclid(1_000_000))
}

/// `value` as a value of `ty`, as arrow-json reads it: numbers in numeric columns (or text
/// holding one), any scalar in a VARCHAR one, epoch milliseconds or text in a TIMESTAMP one.
fn parse_json(ty: SqlType, value: &Value) -> Result<Parsed<'_>, String> {
    match value {
        Value::Null => Ok(Parsed::Null),
        Value::String(text) => parse_text(ty, text),
        Value::Bool(b) => match ty {
            SqlType::Boolean => Ok(Parsed::Bool(*b)),
            SqlType::Varchar(_) => Ok(Parsed::Text(b.to_string().into())),
            _ => Err(format!("{b} is not {}", ty.sql_name())),
        },
        Value::Number(n) => match ty {
            SqlType::Timestamp => n
                .as_i64()
                .map(Parsed::Millis)
                .ok_or_else(|| format!("{n} is not epoch milliseconds")),
            SqlType::Varchar(_) => Ok(Parsed::Text(n.to_string().into())),
            SqlType::Real | SqlType::Double => n
                .as_f64()
                .map(Parsed::Float)
                .ok_or_else(|| format!("{n} is not {}", ty.sql_name())),
            _ => match parse_text(ty, &n.to_string())? {
                Parsed::Text(_) => unreachable!("numeric types do not parse to text"),
                parsed => Ok(owned(parsed)),
            },
        },
        Value::Array(_) | Value::Object(_) => Err(format!(
            "an {} is not {}",
            if value.is_array() { "array" } else { "object" },
            ty.sql_name()
        )),
    }
}

/// A parsed value that borrows nothing.
fn owned(parsed: Parsed<'_>) -> Parsed<'static> {
    match parsed {
        Parsed::Null => Parsed::Null,
        Parsed::Bool(v) => Parsed::Bool(v),
        Parsed::Int(v) => Parsed::Int(v),
        Parsed::Float(v) => Parsed::Float(v),
        Parsed::Decimal(v) => Parsed::Decimal(v),
        Parsed::Text(v) => Parsed::Text(v.into_owned().into()),
        Parsed::Millis(v) => Parsed::Millis(v),
        Parsed::Days(v) => Parsed::Days(v),
    }
}

/// JSON through serde_json, a record at a time.
fn by_value(
    columns: &[ColumnSpec],
    records: &[StoredRecord],
) -> (Vec<ArrayRef>, Vec<Result<(), String>>) {
    let mut builders: Vec<Column> = columns
        .iter()
        .map(|c| Column::new(c.ty, records.len()))
        .collect();
    let fits = records
        .iter()
        .map(|record| {
            let value: Value =
                serde_json::from_slice(&record.data).map_err(|e| format!("not JSON: {e}"))?;
            if !value.is_object() {
                return Err("not a JSON object".to_string());
            }
            let parsed: Vec<Parsed<'_>> = columns
                .iter()
                .map(|column| match lookup(&value, &column.source) {
                    Some(found) => parse_json(column.ty, found)
                        .map_err(|why| format!("column {}: {why}", column.name)),
                    None => Ok(Parsed::Null),
                })
                .collect::<Result<_, _>>()?;
            for (builder, value) in builders.iter_mut().zip(parsed) {
                builder.push(value);
            }
            Ok(())
        })
        .collect();
    (builders.into_iter().map(Column::finish).collect(), fits)
}

/// The value at a JSON path, if the record has it.
fn lookup<'a>(value: &'a Value, source: &ColumnSource) -> Option<&'a Value> {
    let ColumnSource::Json(steps) = source else {
        return None;
    };
    steps.iter().try_fold(value, |at, step| match step {
        PathStep::Member(name) => at.get(name),
        PathStep::Index(index) => at.get(index),
    })
}

// ------------------------------------------------------------------ text lines

/// CSV, TSV and real-time log lines, a field at a time.
fn by_field(
    format: TextFormat,
    columns: &[ColumnSpec],
    records: &[StoredRecord],
) -> (Vec<ArrayRef>, Vec<Result<(), String>>) {
    let mut builders: Vec<Column> = columns
        .iter()
        .map(|c| Column::new(c.ty, records.len()))
        .collect();
    let positions: Vec<usize> = columns
        .iter()
        .map(|c| match c.source {
            ColumnSource::Position(position) => position,
            ColumnSource::Json(_) => usize::MAX,
        })
        .collect();
    let mut splitter = Splitter::new(format);
    let fits = records
        .iter()
        .map(|record| {
            let line =
                std::str::from_utf8(&record.data).map_err(|e| format!("not UTF-8 text: {e}"))?;
            let line = line.strip_suffix('\n').unwrap_or(line);
            let line = line.strip_suffix('\r').unwrap_or(line);
            let fields = splitter.split(line)?;
            let parsed: Vec<Parsed<'_>> = columns
                .iter()
                .zip(&positions)
                .map(|(column, &position)| match fields.get(position) {
                    None => Ok(Parsed::Null),
                    Some(&"-") if format.dash_is_null => Ok(Parsed::Null),
                    Some(field) => parse_text(column.ty, field)
                        .map_err(|why| format!("column {}: {why}", column.name)),
                })
                .collect::<Result<_, _>>()?;
            for (builder, value) in builders.iter_mut().zip(parsed) {
                builder.push(value);
            }
            Ok(())
        })
        .collect();
    (builders.into_iter().map(Column::finish).collect(), fits)
}

/// Splits lines into fields, unquoting CSV.
struct Splitter {
    format: TextFormat,
    csv: csv_core::Reader,
    /// The last quoted line's fields, unquoted, one after the other.
    unquoted: String,
    /// Where each of those fields ends in `unquoted`; grown as lines need.
    ends: Vec<usize>,
    fields: usize,
}

impl Splitter {
    fn new(format: TextFormat) -> Splitter {
        Splitter {
            format,
            csv: csv_core::ReaderBuilder::new()
                .delimiter(format.separator)
                .build(),
            unquoted: String::new(),
            ends: vec![0; 64],
            fields: 0,
        }
    }

    fn split<'a>(&'a mut self, line: &'a str) -> Result<Vec<&'a str>, String> {
        if !self.format.quoted || !line.contains('"') {
            return Ok(line.split(self.format.separator as char).collect());
        }
        self.unquote(line)?;
        let mut start = 0;
        Ok(self.ends[..self.fields]
            .iter()
            .map(|&end| {
                let field = &self.unquoted[start..end];
                start = end;
                field
            })
            .collect())
    }

    /// Unquotes `line` into `unquoted`, the fields' ends into `ends`.
    fn unquote(&mut self, line: &str) -> Result<(), String> {
        use csv_core::ReadRecordResult as Read;
        // Quotes come in pairs (an inner one is doubled); csv-core forgives a missing last one.
        if line.bytes().filter(|&b| b == b'"').count() % 2 == 1 {
            return Err("a CSV line that does not close its quotes".to_string());
        }
        let mut output = vec![0u8; line.len()];
        loop {
            self.csv.reset();
            let (mut result, _, mut written, mut fields) =
                self.csv
                    .read_record(line.as_bytes(), &mut output, &mut self.ends);
            if matches!(result, Read::InputEmpty) {
                // The line is all there is: an empty input ends the record.
                let (last, _, more, more_fields) =
                    self.csv
                        .read_record(&[], &mut output[written..], &mut self.ends[fields..]);
                (result, written, fields) = (last, written + more, fields + more_fields);
            }
            match result {
                Read::OutputEndsFull if self.ends.len() < 1 << 16 => {
                    let grown = self.ends.len() * 2;
                    self.ends.resize(grown, 0);
                }
                Read::OutputEndsFull => return Err("more than 65536 fields".to_string()),
                Read::Record | Read::End => {
                    output.truncate(written);
                    self.unquoted =
                        String::from_utf8(output).map_err(|e| format!("not UTF-8 text: {e}"))?;
                    self.fields = fields;
                    return Ok(());
                }
                Read::InputEmpty | Read::OutputFull => {
                    return Err("a CSV line that does not close its quotes".to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, Int32Array, StringArray};
    use datafusion::arrow::datatypes::{Int64Type, TimestampMillisecondType};

    use super::*;
    use crate::config::analytics::parse_json_path;
    use crate::stream::log::SeqNo;

    fn record(offset: u64, data: &str) -> StoredRecord {
        StoredRecord {
            offset,
            seq: SeqNo { shard: 0, offset },
            arrival_ms: 1_700_000_000_000 + offset,
            partition_key: format!("key-{offset}"),
            data: Bytes::from(data.to_string()),
        }
    }

    fn records(lines: &[&str]) -> Vec<StoredRecord> {
        lines
            .iter()
            .enumerate()
            .map(|(i, line)| record(i as u64, line))
            .collect()
    }

    fn column(name: &str, ty: &str, source: ColumnSource) -> ColumnSpec {
        ColumnSpec {
            name: name.to_string(),
            ty: SqlType::parse(ty).unwrap(),
            source,
        }
    }

    fn json(name: &str, ty: &str, path: &str) -> ColumnSpec {
        column(name, ty, ColumnSource::Json(parse_json_path(path).unwrap()))
    }

    fn input(format: InputFormat, columns: Vec<ColumnSpec>) -> InputSpec {
        InputSpec {
            stream: "s".to_string(),
            format,
            columns,
        }
    }

    fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
        let array = batch.column_by_name(name).unwrap();
        let array = array.as_any().downcast_ref::<StringArray>().unwrap();
        array.iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn json_members_and_nested_paths_become_columns_with_the_metadata() {
        let spec = input(
            InputFormat::Json,
            vec![
                json("status", "INTEGER", "$.status"),
                json("city", "VARCHAR(16)", "$.geo.city"),
                json("bytes", "BIGINT", "$.bytes"),
            ],
        );
        let mut decoder = Decoder::new(Some(&spec));
        let decoded = decoder.decode(
            "shardId-000000000001",
            &records(&[
                r#"{"status": 200, "geo": {"city": "Seoul"}, "bytes": 5}"#,
                r#"{"status": "404", "geo": null, "extra": [1, 2]}"#,
                "{\"status\": 500, \"bytes\": 12345678901}\n",
            ]),
        );
        assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
        let batch = decoded.batch;
        assert_eq!(batch.num_rows(), 3);
        let status: &Int32Array = batch.column(0).as_primitive();
        assert_eq!(
            status.iter().collect::<Vec<_>>(),
            [Some(200), Some(404), Some(500)]
        );
        assert_eq!(strings(&batch, "city"), [Some("Seoul".into()), None, None]);
        let bytes = batch.column(2).as_primitive::<Int64Type>();
        assert_eq!(
            bytes.iter().collect::<Vec<_>>(),
            [Some(5), None, Some(12345678901)]
        );
        let rowtime = batch
            .column_by_name("ROWTIME")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        assert_eq!(rowtime.value(2), 1_700_000_000_002);
        assert_eq!(
            strings(&batch, "shard_id")[0].as_deref(),
            Some("shardId-000000000001")
        );
        assert_eq!(
            strings(&batch, "partition_key")[1].as_deref(),
            Some("key-1")
        );
        assert_eq!(
            strings(&batch, "sequence_number")[0].as_deref(),
            Some("18446744073709551616")
        );
    }

    #[test]
    fn records_that_do_not_fit_are_rejected_with_the_reason_and_the_rest_kept() {
        let spec = input(
            InputFormat::Json,
            vec![
                json("status", "INTEGER", "$.status"),
                json("path", "VARCHAR", "$.path"),
            ],
        );
        let mut decoder = Decoder::new(Some(&spec));
        let decoded = decoder.decode(
            "shardId-000000000000",
            &records(&[
                r#"{"status": 200, "path": "/a"}"#,
                r#"{"status": "two hundred"}"#,
                "not json",
                r#"{"status": 1}{"status": 2}"#,
                r#"[1, 2]"#,
                r#"{"status": 99999999999}"#,
                "",
                r#"{"status": 304, "path": "/b"}"#,
            ]),
        );
        let reasons: Vec<(u64, &str)> = decoded
            .rejected
            .iter()
            .map(|r| (r.record.offset, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons
                .iter()
                .map(|(offset, _)| *offset)
                .collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6],
            "{reasons:?}"
        );
        assert!(reasons.iter().all(|(_, why)| !why.is_empty()));
        assert_eq!(
            strings(&decoded.batch, "path"),
            [Some("/a".into()), Some("/b".into())]
        );
        assert_eq!(
            strings(&decoded.batch, "partition_key"),
            [Some("key-0".into()), Some("key-7".into())]
        );
        // The decoder is whole again for the next batch.
        let next = decoder.decode("shardId-000000000000", &records(&[r#"{"status": 1}"#]));
        assert_eq!((next.batch.num_rows(), next.rejected.len()), (1, 0));
    }

    #[test]
    fn array_indexes_read_through_serde_json_with_the_same_rules() {
        let spec = input(
            InputFormat::Json,
            vec![
                json("first", "VARCHAR", "$.tags[0]"),
                json("when", "TIMESTAMP", "$.at"),
                json("price", "DECIMAL(10,2)", "$.price"),
            ],
        );
        let mut decoder = Decoder::new(Some(&spec));
        let decoded = decoder.decode(
            "shardId-000000000000",
            &records(&[
                r#"{"tags": ["x", "y"], "at": "2026-12-05T08:00:00Z", "price": 12.5}"#,
                r#"{"tags": [], "at": 1700000000123, "price": "3"}"#,
                r#"{"tags": "x", "at": "yesterday"}"#,
            ]),
        );
        assert_eq!(decoded.rejected.len(), 1);
        assert!(
            decoded.rejected[0].reason.contains("column when"),
            "{:?}",
            decoded.rejected
        );
        assert_eq!(strings(&decoded.batch, "first"), [Some("x".into()), None]);
        let when = decoded
            .batch
            .column(1)
            .as_primitive::<TimestampMillisecondType>();
        assert_eq!(when.value(0), 1_796_457_600_000);
        assert_eq!(when.value(1), 1_700_000_000_123);
        let price = decoded.batch.column(2).as_primitive::<Decimal128Type>();
        assert_eq!((price.value(0), price.value(1)), (1250, 300));
    }

    #[test]
    fn csv_unquotes_and_tsv_splits_by_position() {
        let columns = vec![
            column("name", "VARCHAR", ColumnSource::Position(0)),
            column("n", "INTEGER", ColumnSource::Position(2)),
        ];
        let mut csv = Decoder::new(Some(&input(InputFormat::Csv, columns.clone())));
        let decoded = csv.decode(
            "shardId-000000000000",
            &records(&[
                "\"a, b\",x,1\n",
                "plain,y,\"2\"",
                "c,z,three",
                "\"open,q,1",
                "short",
            ]),
        );
        assert_eq!(
            strings(&decoded.batch, "name"),
            [
                Some("a, b".into()),
                Some("plain".into()),
                Some("short".into())
            ]
        );
        let n: &Int32Array = decoded.batch.column(1).as_primitive();
        assert_eq!(n.iter().collect::<Vec<_>>(), [Some(1), Some(2), None]);
        assert_eq!(decoded.rejected.len(), 2);
        let mut tsv = Decoder::new(Some(&input(InputFormat::Tsv, columns)));
        let decoded = tsv.decode(
            "shardId-000000000000",
            &records(&["a\tb\t7\n", "\"q\"\t\t"]),
        );
        assert!(decoded.rejected.is_empty());
        assert_eq!(
            strings(&decoded.batch, "name"),
            [Some("a".into()), Some("\"q\"".into())]
        );
    }

    #[test]
    fn real_time_log_lines_read_dashes_as_null_and_epoch_seconds_as_time() {
        let spec = input(
            InputFormat::CloudfrontRealtime,
            vec![
                column("timestamp", "TIMESTAMP", ColumnSource::Position(0)),
                column("sc_status", "INTEGER", ColumnSource::Position(1)),
                column("cs_uri_stem", "VARCHAR", ColumnSource::Position(2)),
            ],
        );
        let mut decoder = Decoder::new(Some(&spec));
        let decoded = decoder.decode(
            "shardId-000000000000",
            &records(&[
                "1733385600.123\t200\t/index.html\n",
                "1733385601.000\t-\t-\n",
            ]),
        );
        assert!(decoded.rejected.is_empty());
        let time = decoded
            .batch
            .column(0)
            .as_primitive::<TimestampMillisecondType>();
        assert_eq!(
            (time.value(0), time.value(1)),
            (1_733_385_600_123, 1_733_385_601_000)
        );
        assert!(decoded.batch.column(1).is_null(1));
        assert_eq!(
            strings(&decoded.batch, "cs_uri_stem"),
            [Some("/index.html".into()), None]
        );
    }

    #[test]
    fn a_stream_without_an_input_is_its_records_as_text() {
        let mut decoder = Decoder::new(None);
        let decoded = decoder.decode("shardId-000000000000", &records(&["hello", "wörld"]));
        assert_eq!(
            strings(&decoded.batch, "data"),
            [Some("hello".into()), Some("wörld".into())]
        );
    }
}
