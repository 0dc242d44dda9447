//! The Arrow schema of an input's rows: its configured columns, then the columns every row
//! has (`ROWTIME`, `APPROXIMATE_ARRIVAL_TIME`, `partition_key`, `sequence_number`,
//! `shard_id`), as KDA gave every in-application row.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::config::analytics::{ColumnSpec, InputSpec, SqlType};

pub const ROWTIME: &str = "ROWTIME";
pub const APPROXIMATE_ARRIVAL_TIME: &str = "APPROXIMATE_ARRIVAL_TIME";
pub const PARTITION_KEY: &str = "partition_key";
pub const SEQUENCE_NUMBER: &str = "sequence_number";
pub const SHARD_ID: &str = "shard_id";
/// The one column of a stream that has no input schema: its records as text.
pub const DATA: &str = "data";

/// Event time: the arrival in the log, to the millisecond (no time zone: UTC).
pub const TIME: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

/// The Arrow type a column of `ty` holds.
pub fn arrow_type(ty: SqlType) -> DataType {
    match ty {
        SqlType::Boolean => DataType::Boolean,
        SqlType::TinyInt => DataType::Int8,
        SqlType::SmallInt => DataType::Int16,
        SqlType::Integer => DataType::Int32,
        SqlType::BigInt => DataType::Int64,
        SqlType::Real => DataType::Float32,
        SqlType::Double => DataType::Float64,
        SqlType::Decimal(precision, scale) => DataType::Decimal128(precision, scale),
        SqlType::Varchar(_) => DataType::Utf8,
        SqlType::Timestamp => TIME,
        SqlType::Date => DataType::Date32,
    }
}

/// The metadata fields every row ends with.
pub fn metadata_fields() -> [Field; 5] {
    [
        Field::new(ROWTIME, TIME, false),
        Field::new(APPROXIMATE_ARRIVAL_TIME, TIME, false),
        Field::new(PARTITION_KEY, DataType::Utf8, false),
        Field::new(SEQUENCE_NUMBER, DataType::Utf8, false),
        Field::new(SHARD_ID, DataType::Utf8, false),
    ]
}

/// The row schema of `input`: its columns (nullable: a record may lack any), then metadata.
pub fn input_schema(input: &InputSpec) -> SchemaRef {
    schema_of(&input.columns)
}

/// The row schema of `columns` followed by the metadata fields.
pub fn schema_of(columns: &[ColumnSpec]) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(&c.name, arrow_type(c.ty), true))
        .chain(metadata_fields())
        .collect();
    Arc::new(Schema::new(fields))
}

/// The row schema of a stream without an input: each record's bytes as text.
pub fn raw_schema() -> SchemaRef {
    let fields: Vec<Field> = std::iter::once(Field::new(DATA, DataType::Utf8, false))
        .chain(metadata_fields())
        .collect();
    Arc::new(Schema::new(fields))
}
