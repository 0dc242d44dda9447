//! One-shot SQL over the streams' retained records: every stream is a table (by its input
//! schema, or its records as text), the statement is planned and run by DataFusion on the
//! analytics runtime — not the one serving requests — and its rows stream back as JSON or
//! CSV while they are computed, cut at `max_rows` and `query_timeout`. Only queries: no
//! DDL, DML (`INSERT`, `COPY`) or `SET`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::WriterBuilder as JsonWriterBuilder;
use datafusion::arrow::json::writer::LineDelimited;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::TableReference;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::table::StreamTable;
use crate::config::AnalyticsConfig;
use crate::stream::log::Log;

/// Memory one query may hold (sorts, aggregates, joins); past it the query fails rather than
/// the process growing.
const QUERY_MEMORY: usize = 512 << 20;
/// Rows per batch DataFusion works in.
const BATCH_ROWS: usize = 8192;
/// Output chunks buffered ahead of a slow client.
const OUTPUT_CHUNKS: usize = 8;

/// How rows come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// `{"columns": [...], "rows": [{...}, ...], "row_count": n, "truncated": bool, ...}`
    Json,
    /// A header line, then one line per row.
    Csv,
}

impl OutputFormat {
    pub fn parse(name: &str) -> Option<OutputFormat> {
        match name {
            "json" => Some(OutputFormat::Json),
            "csv" => Some(OutputFormat::Csv),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Json => "application/json",
            OutputFormat::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// Why a query did not start.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL does not parse or plan (unknown table or column, a statement that is not a
    /// query...): the message is DataFusion's.
    #[error("{0}")]
    Sql(String),
    #[error("the analytics runtime has stopped")]
    Stopped,
}

/// Runs one-shot queries against a log.
pub struct Queries {
    log: Arc<Log>,
    config: Arc<AnalyticsConfig>,
    /// The analytics runtime: queries never take the serving threads.
    runtime: tokio::runtime::Handle,
}

impl Queries {
    pub fn new(
        log: Arc<Log>,
        config: Arc<AnalyticsConfig>,
        runtime: tokio::runtime::Handle,
    ) -> Queries {
        Queries {
            log,
            config,
            runtime,
        }
    }

    /// Plans `sql`; once it plans, its output as chunks of `format` while it runs.
    ///
    /// # Errors
    /// The SQL does not parse or plan.
    pub async fn start(
        &self,
        sql: String,
        format: OutputFormat,
    ) -> Result<mpsc::Receiver<Bytes>, QueryError> {
        let (planned_tx, planned_rx) = oneshot::channel();
        let (chunks_tx, chunks_rx) = mpsc::channel(OUTPUT_CHUNKS);
        let (log, config) = (self.log.clone(), self.config.clone());
        self.runtime.spawn(async move {
            let started = Instant::now();
            let rejected = Arc::new(AtomicU64::new(0));
            let stream = match plan(&log, &config, &sql, rejected.clone()).await {
                Ok(stream) => stream,
                Err(e) => {
                    let _ = planned_tx.send(Err(QueryError::Sql(e)));
                    return;
                }
            };
            if planned_tx.send(Ok(())).is_err() {
                return;
            }
            let limits = Limits {
                max_rows: config.max_rows,
                deadline: started + config.query_timeout,
            };
            let output = Output {
                chunks: chunks_tx,
                format,
                rejected,
                started,
            };
            output.run(stream, limits).await;
        });
        planned_rx.await.map_err(|_| QueryError::Stopped)??;
        Ok(chunks_rx)
    }
}

/// A session with every stream of `log` as a table, `sql` planned and started.
async fn plan(
    log: &Arc<Log>,
    config: &AnalyticsConfig,
    sql: &str,
    rejected: Arc<AtomicU64>,
) -> Result<SendableRecordBatchStream, String> {
    let ctx = session()?;
    for stream in log.streams() {
        let input = config.input(stream.name()).cloned();
        let table = StreamTable::new(stream.clone(), input, rejected.clone());
        ctx.register_table(
            TableReference::bare(stream.name().to_string()),
            Arc::new(table),
        )
        .map_err(|e| e.to_string())?;
    }
    let read_only = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let frame = ctx
        .sql_with_options(sql, read_only)
        .await
        .map_err(|e| e.to_string())?;
    frame.execute_stream().await.map_err(|e| e.to_string())
}

/// A DataFusion session as analytics uses it: identifiers are case-sensitive as written
/// (so `ROWTIME` and a stream's column names need no quotes), memory is bounded.
pub fn session() -> Result<SessionContext, String> {
    let mut config = SessionConfig::new()
        .with_batch_size(BATCH_ROWS)
        .with_target_partitions(crate::cli::available_cpus().max(1));
    config.options_mut().sql_parser.enable_ident_normalization = false;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(QUERY_MEMORY, 1.0)
        .build_arc()
        .map_err(|e| e.to_string())?;
    Ok(SessionContext::new_with_config_rt(config, runtime))
}

struct Limits {
    max_rows: u64,
    deadline: Instant,
}

/// Writes a running query's rows as they come.
struct Output {
    chunks: mpsc::Sender<Bytes>,
    format: OutputFormat,
    rejected: Arc<AtomicU64>,
    started: Instant,
}

/// How a query's output ended.
enum End {
    Done,
    /// Cut at `max_rows`.
    RowLimit,
    Failed(String),
}

impl Output {
    async fn run(self, mut stream: SendableRecordBatchStream, limits: Limits) {
        let schema = stream.schema();
        if !self.send(self.head(&schema)).await {
            return;
        }
        let mut rows: u64 = 0;
        let deadline = tokio::time::Instant::from_std(limits.deadline);
        let end = loop {
            let next = match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    break End::Failed(format!(
                        "stopped at query_timeout ({:?})",
                        limits.deadline - self.started
                    ));
                }
            };
            let batch = match next {
                None => break End::Done,
                Some(Err(e)) => break End::Failed(e.to_string()),
                Some(Ok(batch)) => batch,
            };
            let room = limits.max_rows - rows;
            let cut = (batch.num_rows() as u64) > room;
            let batch = if cut {
                batch.slice(0, room as usize)
            } else {
                batch
            };
            match self.rows(&batch, rows == 0) {
                Ok(chunk) => {
                    if !self.send(chunk).await {
                        return;
                    }
                }
                Err(e) => break End::Failed(e),
            }
            rows += batch.num_rows() as u64;
            if cut {
                break End::RowLimit;
            }
        };
        let _ = self.send(self.tail(rows, &end)).await;
    }

    /// `false` once the client is gone.
    async fn send(&self, chunk: Bytes) -> bool {
        chunk.is_empty() || self.chunks.send(chunk).await.is_ok()
    }

    fn head(&self, schema: &SchemaRef) -> Bytes {
        match self.format {
            OutputFormat::Json => {
                let columns: Vec<serde_json::Value> = schema
                    .fields()
                    .iter()
                    .map(|f| {
                        serde_json::json!({
                            "name": f.name(),
                            "type": f.data_type().to_string(),
                        })
                    })
                    .collect();
                Bytes::from(format!(
                    "{{\"columns\":{},\"rows\":[",
                    serde_json::Value::Array(columns)
                ))
            }
            OutputFormat::Csv => {
                let names: Vec<String> = schema
                    .fields()
                    .iter()
                    .map(|f| csv_field(f.name()))
                    .collect();
                Bytes::from(names.join(",") + "\n")
            }
        }
    }

    /// `batch` in the output format (`first`: no separator before it).
    fn rows(&self, batch: &RecordBatch, first: bool) -> Result<Bytes, String> {
        if batch.num_rows() == 0 {
            return Ok(Bytes::new());
        }
        let mut out = Vec::with_capacity(batch.get_array_memory_size());
        match self.format {
            OutputFormat::Json => {
                let mut lines = Vec::new();
                let mut writer = JsonWriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, LineDelimited>(&mut lines);
                writer.write(batch).map_err(|e| e.to_string())?;
                writer.finish().map_err(|e| e.to_string())?;
                drop(writer);
                // One object per line, no raw newline inside one: the lines joined by commas.
                for (i, line) in lines
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .enumerate()
                {
                    if !(first && i == 0) {
                        out.push(b',');
                    }
                    out.extend_from_slice(line);
                }
            }
            OutputFormat::Csv => {
                let mut writer = CsvWriterBuilder::new().with_header(false).build(&mut out);
                writer.write(batch).map_err(|e| e.to_string())?;
            }
        }
        Ok(Bytes::from(out))
    }

    fn tail(&self, rows: u64, end: &End) -> Bytes {
        let rejected = self.rejected.load(Ordering::Relaxed);
        match self.format {
            OutputFormat::Json => {
                let mut tail = serde_json::json!({
                    "row_count": rows,
                    "truncated": !matches!(end, End::Done),
                    "rejected_records": rejected,
                    "elapsed_ms": self.started.elapsed().as_millis() as u64,
                });
                if let End::Failed(why) = end {
                    tail["error"] = why.clone().into();
                }
                let tail = tail.to_string();
                // The tail's fields continue the object the head opened.
                Bytes::from(format!("],{}", &tail[1..]))
            }
            // CSV has nowhere to say more; a cut or failed query simply ends.
            OutputFormat::Csv => Bytes::new(),
        }
    }
}

/// `text` as one CSV field (RFC 4180): quoted when it holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
