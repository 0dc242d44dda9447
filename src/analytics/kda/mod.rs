//! Kinesis Data Analytics' SQL dialect, translated to DataFusion SQL per pump.
//!
//! A KDA application is a script of `CREATE OR REPLACE STREAM "S" (columns...)` and
//! `CREATE OR REPLACE PUMP "P" AS INSERT INTO "S" SELECT STREAM ... FROM "SRC" ...`
//! statements. Each pump becomes a [`Pump`]: the SELECT as DataFusion SQL over one source
//! table (an input, `SOURCE_SQL_STREAM_001`..., or an in-application stream an earlier
//! pump fills), the kind of window that decides when its rows are due ([`Window`]), and
//! which of the SQL's columns become the target's. The SQL keeps its output's event time
//! in `__rowtime` (a tumbling window's end, or the row's ROWTIME) and, for row-by-row and
//! sliding pumps, the source row in `__row`.
//!
//! Names as KDA has them: unquoted names are matched to columns and streams ignoring case,
//! quoted names exactly; an unquoted name a `CREATE STREAM` declares is upper-cased.

mod statement;
mod text;
pub mod window;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::sql::sqlparser::tokenizer::Location;

use crate::analytics::schema;
use crate::config::analytics::SqlType;

pub use text::ORIGIN;

/// The column of a pump's SQL holding its rows' event time.
pub const ROWTIME_OUT: &str = "__rowtime";
/// The column holding a row's place in its source (`shard << 48 | offset`, or a window's
/// end for rows of a window).
pub const ROW: &str = "__row";

/// Why a script does not translate, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {col}: {message}")]
pub struct KdaError {
    pub line: u64,
    pub col: u64,
    pub message: String,
}

impl KdaError {
    pub fn new(at: Location, message: impl Into<String>) -> KdaError {
        KdaError {
            line: at.line,
            col: at.column,
            message: message.into(),
        }
    }
}

/// A table a script may read: an input stream (as `SOURCE_SQL_STREAM_00n`) or a reference
/// table, with its columns.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub columns: Vec<(String, SqlType)>,
}

/// A `CREATE STREAM`'s in-application stream.
#[derive(Debug, Clone, PartialEq)]
pub struct InAppStream {
    pub name: String,
    pub columns: Vec<(String, SqlType)>,
}

/// When a pump's rows are due.
#[derive(Debug, Clone, PartialEq)]
pub enum Window {
    /// Row by row: each row as it comes.
    Rows,
    /// Windows of `size_ms` from the epoch, due when the watermark passes their end.
    Tumbling { size_ms: u64 },
    /// Windows of `size_ms` starting every `slide_ms` (Flink's HOP), each due when the
    /// watermark passes its end.
    Hopping { slide_ms: u64, size_ms: u64 },
    /// Each row with what precedes it: the last `range_ms` of rows, and the rows
    /// `keep_rows` selects (by `__row`) for `ROWS n PRECEDING` frames.
    Sliding {
        range_ms: Option<u64>,
        keep_rows: Option<String>,
    },
}

/// One pump, ready to run.
#[derive(Debug, Clone)]
pub struct Pump {
    pub name: String,
    /// The in-application stream it inserts into.
    pub target: String,
    /// The table its SQL reads rows from.
    pub source: String,
    pub window: Window,
    /// DataFusion SQL over `source` (and reference tables).
    pub sql: String,
    /// The target's columns and, for each, the SQL column it comes from.
    pub columns: Vec<(String, SqlType, usize)>,
    /// The source's columns the SQL reads (with `ROWTIME` and `__row`): all a windowed
    /// pump keeps of its rows between ticks.
    pub reads: Vec<String>,
}

impl Pump {
    /// The SQL's output as the target's rows: its columns cast to their declared types,
    /// then [`ROWTIME_OUT`] and [`ROW`] (when the SQL has it).
    ///
    /// # Errors
    /// A column cannot be cast (a type the SQL cannot give).
    pub fn shape(&self, rows: &RecordBatch) -> Result<RecordBatch, String> {
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (name, ty, index) in &self.columns {
            let ty = schema::arrow_type(*ty);
            let column = cast(rows.column(*index), &ty)
                .map_err(|e| format!("pump {}: column {name}: {e}", self.name))?;
            fields.push(Field::new(name, ty, true));
            columns.push(column);
        }
        for hidden in [ROWTIME_OUT, ROW] {
            if let Some(column) = rows.column_by_name(hidden) {
                fields.push(Field::new(hidden, column.data_type().clone(), true));
                columns.push(column.clone());
            }
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| format!("pump {}: {e}", self.name))
    }
}

/// A translated script.
#[derive(Debug, Clone)]
pub struct Program {
    pub streams: Vec<InAppStream>,
    /// In the script's order, which is the order they run in.
    pub pumps: Vec<Pump>,
}

/// The Arrow schema of a source table as pumps see it: its columns, then `__row`.
pub fn source_schema(columns: &[(String, SqlType)]) -> SchemaRef {
    let mut fields: Vec<Field> = columns
        .iter()
        .map(|(name, ty)| Field::new(name, schema::arrow_type(*ty), true))
        .collect();
    fields.push(Field::new(ROW, DataType::UInt64, false));
    Arc::new(Schema::new(fields))
}

/// The schema of an in-application stream read by a later pump: its columns, `ROWTIME`
/// and `__row`.
pub fn stream_schema(stream: &InAppStream) -> SchemaRef {
    let mut columns = stream.columns.clone();
    columns.push((schema::ROWTIME.to_string(), SqlType::Timestamp));
    source_schema(&columns)
}

/// Translates `script` with its `inputs` (`SOURCE_SQL_STREAM_001`...) and `references`.
///
/// # Errors
/// The first statement that does not translate or plan, and where it is.
pub async fn translate(
    script: &str,
    inputs: &[Source],
    references: &[Source],
) -> Result<Program, KdaError> {
    let ctx =
        crate::analytics::query::session().map_err(|e| KdaError::new(Location::new(1, 1), e))?;
    let mut tables: HashMap<String, Vec<(String, SqlType)>> = HashMap::new();
    for source in inputs {
        let mut columns = source.columns.clone();
        if !columns.iter().any(|(n, _)| n == schema::ROWTIME) {
            columns.push((schema::ROWTIME.to_string(), SqlType::Timestamp));
        }
        register(&ctx, &source.name, source_schema(&columns));
        tables.insert(source.name.clone(), columns);
    }
    let reference_names: Vec<String> = references.iter().map(|r| r.name.clone()).collect();
    for reference in references {
        let fields: Vec<Field> = reference
            .columns
            .iter()
            .map(|(name, ty)| Field::new(name, schema::arrow_type(*ty), true))
            .collect();
        register(&ctx, &reference.name, Arc::new(Schema::new(fields)));
        tables.insert(reference.name.clone(), reference.columns.clone());
    }
    let mut program = Program {
        streams: Vec::new(),
        pumps: Vec::new(),
    };
    let statements = text::statements(script)?;
    if statements.is_empty() {
        return Err(KdaError::new(
            Location::new(1, 1),
            "the SQL has no statements: expected CREATE OR REPLACE STREAM and PUMP",
        ));
    }
    for stmt in statements {
        match statement::parse(&stmt)? {
            statement::Parsed::Stream(stream) => {
                if program.streams.iter().any(|s| s.name == stream.name)
                    || tables.contains_key(&stream.name)
                {
                    return Err(KdaError::new(
                        stmt.at,
                        format!("a stream named {} exists already", stream.name),
                    ));
                }
                register(&ctx, &stream.name, stream_schema(&stream));
                let mut columns = stream.columns.clone();
                columns.push((schema::ROWTIME.to_string(), SqlType::Timestamp));
                tables.insert(stream.name.clone(), columns);
                program.streams.push(stream);
            }
            statement::Parsed::Pump(header) => {
                let names = Names::new(&tables);
                let wanted = if header.target_quoted {
                    header.target.clone()
                } else {
                    names.canonical_stream(&header.target)
                };
                let target = program
                    .streams
                    .iter()
                    .find(|s| s.name == wanted)
                    .ok_or_else(|| {
                        KdaError::new(
                            stmt.at,
                            format!(
                                "pump {} inserts into {}, which no CREATE STREAM before it makes",
                                header.name, header.target
                            ),
                        )
                    })?
                    .clone();
                let pump = window::pump(&ctx, &header, &target, &names, &reference_names).await?;
                program.pumps.push(pump);
            }
        }
    }
    Ok(program)
}

fn register(ctx: &datafusion::prelude::SessionContext, name: &str, schema: SchemaRef) {
    let table = MemTable::try_new(schema, vec![vec![]]).expect("an empty table of any schema");
    let name = datafusion::common::TableReference::bare(name);
    let _ = ctx.deregister_table(name.clone());
    ctx.register_table(name, Arc::new(table))
        .expect("a bare name registers");
}

/// The tables and columns a pump may name, for matching unquoted names without case.
pub struct Names {
    /// Table name → its columns.
    tables: HashMap<String, Vec<(String, SqlType)>>,
}

impl Names {
    fn new(tables: &HashMap<String, Vec<(String, SqlType)>>) -> Names {
        Names {
            tables: tables.clone(),
        }
    }

    /// The table `name` (as written, unquoted) names, or `name`.
    pub fn canonical_stream(&self, name: &str) -> String {
        unique_match(self.tables.keys().map(String::as_str), name)
    }

    /// The column `name` (as written, unquoted) names, or `name`.
    pub fn canonical_column(&self, name: &str) -> String {
        unique_match(
            self.tables
                .values()
                .flatten()
                .map(|(c, _)| c.as_str())
                .chain(KNOWN_COLUMNS),
            name,
        )
    }

    pub fn is_table(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }
}

/// Columns the translation itself makes.
const KNOWN_COLUMNS: [&str; 4] = [
    "window_start",
    "window_end",
    "ITEM_COUNT",
    "NUMBER_OF_DISTINCT_ITEMS",
];

/// `name` itself when a candidate is spelled so, else the one candidate equal to it
/// ignoring case, else `name`.
fn unique_match<'a>(candidates: impl Iterator<Item = &'a str> + Clone, name: &str) -> String {
    if candidates.clone().any(|c| c == name) {
        return name.to_string();
    }
    let found: std::collections::BTreeSet<&str> = candidates
        .filter(|c| c.eq_ignore_ascii_case(name))
        .collect();
    match found.len() {
        1 => found.into_iter().next().unwrap_or(name).to_string(),
        _ => name.to_string(),
    }
}
