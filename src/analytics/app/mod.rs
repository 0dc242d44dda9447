//! Continuous queries ("applications", KDA's unit): an application's inputs are read as they
//! grow, its pumps run in order each tick — row by row as rows come, tumbling windows once
//! the inputs' watermark passes their end, sliding windows over each new row's preceding
//! range — and the rows of the in-application streams named in `outputs` are put on their
//! streams as JSON. Records that do not fit an input go to the `<app>_errors` stream with
//! the reason.
//!
//! Restart-safe: after each emission the checkpoint records where the inputs were read to
//! and the last window each pump closed; a restart reads again from there (and from the
//! start of the oldest open window), and what the output streams show was emitted already
//! is not emitted again.

pub mod checkpoint;
pub mod emit;
pub mod pump;
pub mod registry;
pub mod tail;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use self::checkpoint::Checkpoint;
use self::emit::Emitted;
use self::pump::PumpRunner;
use self::tail::InputTail;
use super::decode::{Decoder, Rejected};
use super::kda::{self, Program};
use super::reference::ReferenceTable;
use crate::config::AnalyticsConfig;
use crate::config::analytics::ApplicationSpec;
use crate::stream::api::put::{PutEntry, put_all};
use crate::stream::log::{Log, Stream};

/// How often an application looks for new records and closed windows.
const TICK: Duration = Duration::from_millis(100);
/// Retention of a created `<app>_errors` stream.
const ERRORS_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Records per put, as PutRecords allows.
const PUT_MAX: usize = 500;
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_LAST: Duration = Duration::from_secs(60);

/// The name of the stream an application's misfit records go to.
pub fn errors_stream(app: &str) -> String {
    format!("{app}_errors")
}

/// Why an application cannot run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("application {app}: {message}")]
    Sql { app: String, message: String },
    #[error("application {app}: {message}")]
    Setup { app: String, message: String },
}

/// One running application.
pub struct Application {
    spec: ApplicationSpec,
    inputs: Vec<InputTail>,
    pumps: Vec<PumpRunner>,
    /// In-application stream → the stream its rows go to.
    outputs: HashMap<String, Arc<Stream>>,
    errors: Arc<Stream>,
    checkpoint_path: PathBuf,
    checkpoint: Checkpoint,
    /// Per pump, what the output streams showed emitted at start.
    emitted: HashMap<String, Emitted>,
}

/// What every application of a process shares.
pub struct AppEnv {
    pub log: Arc<Log>,
    pub config: Arc<AnalyticsConfig>,
    /// `<dir>/analytics/` holds the checkpoints.
    pub data_dir: PathBuf,
    pub references: Arc<Vec<ReferenceTable>>,
    pub statuses: Statuses,
}

/// An application's SQL translated against its inputs and reference tables, and the
/// streams its in-application streams go to.
pub struct Checked {
    pub program: Program,
    /// In-application stream → the stream its rows go to.
    pub outputs: HashMap<String, Arc<Stream>>,
}

/// Checks `spec` as it would run: inputs with a schema, SQL that translates, outputs that
/// the SQL creates and that exist (and are not inputs).
///
/// # Errors
/// The first thing that does not hold, and why.
pub async fn check(spec: &ApplicationSpec, env: &AppEnv) -> Result<Checked, AppError> {
    let setup = |message: String| AppError::Setup {
        app: spec.name.clone(),
        message,
    };
    let mut sources = Vec::new();
    for (i, name) in spec.inputs.iter().enumerate() {
        let input = env
            .config
            .input(name)
            .ok_or_else(|| setup(format!("input {name} has no [[analytics.inputs]] entry")))?;
        if env.log.get(name).is_none() {
            return Err(setup(format!("input stream {name} does not exist")));
        }
        sources.push(kda::Source {
            name: source_name(i),
            columns: pump::source_columns(input),
        });
    }
    let references: Vec<kda::Source> = env.references.iter().map(ReferenceTable::source).collect();
    let program: Program = kda::translate(&spec.sql, &sources, &references)
        .await
        .map_err(|e| AppError::Sql {
            app: spec.name.clone(),
            message: e.to_string(),
        })?;
    let mut outputs = HashMap::new();
    for output in &spec.outputs {
        let sql_stream = program
            .streams
            .iter()
            .find(|s| s.name == output.sql_stream)
            .or_else(|| {
                program
                    .streams
                    .iter()
                    .find(|s| s.name.eq_ignore_ascii_case(&output.sql_stream))
            })
            .ok_or_else(|| {
                setup(format!(
                    "output {:?} is not a stream the SQL creates",
                    output.sql_stream
                ))
            })?;
        if spec.inputs.contains(&output.stream) {
            return Err(setup(format!(
                "output stream {} is an input: an application may not write to its own input",
                output.stream
            )));
        }
        let stream = env
            .log
            .get(&output.stream)
            .ok_or_else(|| setup(format!("output stream {} does not exist", output.stream)))?;
        outputs.insert(sql_stream.name.clone(), stream);
    }
    Ok(Checked { program, outputs })
}

impl Application {
    /// Checks `spec` ([`check`]) and prepares to run it from its checkpoint.
    ///
    /// # Errors
    /// The check fails, or the checkpoint is unreadable.
    pub async fn prepare(spec: &ApplicationSpec, env: &AppEnv) -> Result<Application, AppError> {
        let setup = |message: String| AppError::Setup {
            app: spec.name.clone(),
            message,
        };
        let Checked { program, outputs } = check(spec, env).await?;
        let log = &env.log;
        let config = &env.config;
        let checkpoint_path = checkpoint::path(&env.data_dir, &spec.name);
        let checkpoint = Checkpoint::load(&checkpoint_path).map_err(setup)?;
        let errors_name = errors_stream(&spec.name);
        let errors = match log.get(&errors_name) {
            Some(stream) => stream,
            None => log
                .create(&errors_name, 1, ERRORS_RETENTION)
                .map_err(|e| setup(format!("creating {errors_name}: {e}")))?,
        };
        let mut emitted: HashMap<String, Emitted> = HashMap::new();
        for stream in outputs.values() {
            for (pump, found) in emit::emitted(stream, &spec.name) {
                emitted.entry(pump).or_default().merge(found);
            }
        }
        let pumps: Vec<PumpRunner> = program
            .pumps
            .iter()
            .map(|p| {
                // Only the checkpoint says a window is done: the output may hold part of
                // one, cut by a crash, which is computed again and finished.
                let closed = checkpoint.windows.get(&p.name).copied();
                PumpRunner::new(p.clone(), closed, &env.references).map_err(&setup)
            })
            .collect::<Result<_, _>>()?;
        // Read again from where the checkpoint says, and from the start of every window
        // still open there.
        let replay_from = pumps.iter().filter_map(PumpRunner::replay_since).min();
        let mut inputs = Vec::new();
        for name in &spec.inputs {
            let decoder = Decoder::new(config.input(name));
            let stream = log
                .get(name)
                .ok_or_else(|| setup(format!("input stream {name} does not exist")))?;
            let mut from = checkpoint.inputs.get(name).cloned().unwrap_or_default();
            if let Some(since) = replay_from {
                for (i, shard) in stream.shards().iter().enumerate() {
                    let open = shard
                        .offset_at_timestamp(since)
                        .map_err(|e| setup(format!("{name}: {e}")))?;
                    match from.get_mut(i) {
                        Some(at) => *at = (*at).min(open),
                        None => from.push(open),
                    }
                }
            }
            let idle = u64::try_from(config.idle_shard_timeout.as_millis()).unwrap_or(u64::MAX);
            inputs.push(InputTail::new(stream, decoder, &from, idle));
        }
        Ok(Application {
            spec: spec.clone(),
            inputs,
            pumps,
            outputs,
            errors,
            checkpoint_path,
            checkpoint,
            emitted,
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Runs a tick at a time until `shutdown` (`Ok`) or a tick fails (its error: the
    /// application is prepared again from its checkpoint, so nothing half-done stays).
    async fn run(mut self, shutdown: &CancellationToken) -> Result<(), String> {
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = ticks.tick() => {}
            }
            self.tick().await?;
        }
    }

    /// Reads what arrived, runs the pumps, emits, checkpoints.
    async fn tick(&mut self) -> Result<(), String> {
        let mut new: HashMap<String, Vec<RecordBatch>> = HashMap::new();
        let mut watermark = u64::MAX;
        let mut rejected = Vec::new();
        for (i, input) in self.inputs.iter_mut().enumerate() {
            let polled = input
                .poll()
                .map_err(|e| format!("reading {}: {e}", input.stream().name()))?;
            rejected.extend(polled.rejected);
            watermark = watermark.min(input.watermark());
            new.entry(source_name(i)).or_default().push(polled.batch);
        }
        errors_out(&self.spec.name, &self.errors, &rejected).await?;
        for pump in &mut self.pumps {
            let source = new.get(&pump.pump().source).cloned().unwrap_or_default();
            let out = pump
                .advance(&source, watermark)
                .await
                .map_err(|e| format!("pump {}: {e}", pump.pump().name))?;
            let Some(out) = out else {
                continue;
            };
            if let Some(stream) = self.outputs.get(&pump.pump().target) {
                let entries = emit::records(
                    &self.spec.name,
                    &pump.pump().name,
                    &out.rows,
                    self.emitted.get(&pump.pump().name),
                )?;
                put(stream, entries).await?;
            }
            new.entry(pump.pump().target.clone())
                .or_default()
                .push(out.as_source);
        }
        for (i, input) in self.inputs.iter().enumerate() {
            self.checkpoint
                .inputs
                .insert(self.spec.inputs[i].clone(), input.positions());
        }
        for pump in &self.pumps {
            if let Some(since) = pump.open_since() {
                self.checkpoint
                    .windows
                    .insert(pump.pump().name.clone(), since);
            }
        }
        self.checkpoint.store(&self.checkpoint_path)
    }
}

/// Puts `rejected` records of `app` on its `errors` stream with why they did not fit.
async fn errors_out(app: &str, errors: &Stream, rejected: &[Rejected]) -> Result<(), String> {
    if rejected.is_empty() {
        return Ok(());
    }
    let entries: Vec<PutEntry> = rejected
        .iter()
        .map(|r| {
            let record = serde_json::json!({
                "application": app,
                "reason": r.reason,
                "shard_id": r.shard_id,
                "sequence_number": r.record.seq.to_string(),
                "partition_key": r.record.partition_key,
                "data": base64::engine::general_purpose::STANDARD.encode(&r.record.data),
            });
            PutEntry {
                partition_key: r.record.partition_key.clone(),
                explicit_hash: None,
                data: Bytes::from(record.to_string()),
            }
        })
        .collect();
    put(errors, entries).await
}

/// What an application is doing, for the API and the console.
pub type Statuses = Arc<Mutex<BTreeMap<String, String>>>;

/// Runs the application `spec` until `shutdown`: prepared from its checkpoint, run, and
/// prepared again after a failure (waiting 1 s, doubling to 1 min while it keeps failing).
pub async fn supervise(spec: ApplicationSpec, env: Arc<AppEnv>, shutdown: CancellationToken) {
    let mut backoff = RETRY_FIRST;
    let set = |status: String| {
        if let Ok(mut statuses) = env.statuses.lock() {
            statuses.insert(spec.name.clone(), status);
        }
    };
    while !shutdown.is_cancelled() {
        let failure = match Application::prepare(&spec, &env).await {
            Ok(app) => {
                info!("analytics application {} running", spec.name);
                set("running".to_string());
                backoff = RETRY_FIRST;
                match app.run(&shutdown).await {
                    Ok(()) => return,
                    Err(e) => e,
                }
            }
            Err(e) => e.to_string(),
        };
        warn!(
            "analytics application {}: {failure}; again in {backoff:?}",
            spec.name
        );
        set(format!("failed: {failure}"));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(RETRY_LAST);
    }
}

/// KDA's name for an application's `i`th input (from 0): `SOURCE_SQL_STREAM_001`...
pub fn source_name(i: usize) -> String {
    format!("SOURCE_SQL_STREAM_{:03}", i + 1)
}

/// Puts `entries` on `stream`, PutRecords-sized; any failed record fails the whole (the
/// tick is retried, and what went out is skipped by its partition key after a restart).
async fn put(stream: &Stream, entries: Vec<PutEntry>) -> Result<(), String> {
    let mut entries = entries.into_iter().peekable();
    while entries.peek().is_some() {
        let chunk: Vec<PutEntry> = entries.by_ref().take(PUT_MAX).collect();
        for outcome in put_all(stream, chunk).await {
            if let Err(incident) = outcome {
                return Err(format!("putting on {}: {incident:?}", stream.name()));
            }
        }
    }
    Ok(())
}
