//! Reference tables (`[[analytics.references]]`): CSV files with a header line, read whole
//! at start, their column types inferred (integers, decimals, booleans, else text), that
//! applications join their streams with, as KDA's reference data sources.

use std::fs::File;
use std::io::{Read, Seek};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::csv::reader::Format;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::kda::Source;
use crate::config::analytics::{ReferenceSpec, SqlType};

/// The largest reference file read: reference data is small lookup data, kept in memory.
const MAX_BYTES: u64 = 64 << 20;

/// A loaded reference table.
#[derive(Debug, Clone)]
pub struct ReferenceTable {
    pub name: String,
    pub rows: RecordBatch,
}

impl ReferenceTable {
    /// Reads `spec`'s file.
    ///
    /// # Errors
    /// The file is missing, too large, or not CSV with a header.
    pub fn load(spec: &ReferenceSpec) -> Result<ReferenceTable, String> {
        let what = |e: &dyn std::fmt::Display| {
            format!(
                "reference table {} ({}): {e}",
                spec.name,
                spec.path.display()
            )
        };
        let mut file = File::open(&spec.path).map_err(|e| what(&e))?;
        let size = file.metadata().map_err(|e| what(&e))?.len();
        if size > MAX_BYTES {
            return Err(what(&format!("{size} bytes: at most {MAX_BYTES}")));
        }
        let format = Format::default().with_header(true);
        let (inferred, _) = format
            .infer_schema(&mut (&mut file).take(MAX_BYTES), None)
            .map_err(|e| what(&e))?;
        file.rewind().map_err(|e| what(&e))?;
        let schema = Arc::new(inferred);
        let reader = ReaderBuilder::new(schema.clone())
            .with_format(format)
            .build(file)
            .map_err(|e| what(&e))?;
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().map_err(|e| what(&e))?;
        let rows = concat_batches(&schema, &batches).map_err(|e| what(&e))?;
        Ok(ReferenceTable {
            name: spec.name.clone(),
            rows: plain_types(&rows).map_err(|e| what(&e))?,
        })
    }

    /// Its columns, for translating SQL that names them.
    pub fn source(&self) -> Source {
        let columns = self
            .rows
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let ty = match f.data_type() {
                    DataType::Int64 => SqlType::BigInt,
                    DataType::Float64 => SqlType::Double,
                    DataType::Boolean => SqlType::Boolean,
                    _ => SqlType::Varchar(None),
                };
                (f.name().clone(), ty)
            })
            .collect();
        Source {
            name: self.name.clone(),
            columns,
        }
    }

    /// Makes the table readable in `ctx` under its name.
    ///
    /// # Errors
    /// The name cannot be registered.
    pub fn register(&self, ctx: &SessionContext) -> Result<(), String> {
        let table = MemTable::try_new(self.rows.schema(), vec![vec![self.rows.clone()]])
            .map_err(|e| e.to_string())?;
        ctx.register_table(
            datafusion::common::TableReference::bare(self.name.clone()),
            Arc::new(table),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}

/// The columns as BIGINT, DOUBLE, BOOLEAN or text: dates and times inferred from a CSV stay
/// text, so a join compares what the file says.
fn plain_types(rows: &RecordBatch) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in rows.schema().fields().iter().zip(rows.columns()) {
        let ty = match field.data_type() {
            DataType::Int64 | DataType::Float64 | DataType::Boolean => field.data_type().clone(),
            _ => DataType::Utf8,
        };
        columns.push(cast(column, &ty)?);
        fields.push(Field::new(field.name(), ty, true));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}
