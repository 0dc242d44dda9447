//! Stream analytics (Kinesis Data Analytics for SQL's job) on Apache DataFusion: records of
//! a stream become rows by its `[[analytics.inputs]]` schema, one-shot SQL reads a stream's
//! retained records as a table, and applications run KDA-dialect continuous queries whose
//! windows close on the inputs' watermark and whose rows go to output streams.
//!
//! Queries run on a runtime of their own ([`runtime::AnalyticsRuntime`]), so a heavy query
//! slows other queries, never the CDN or the stream API.

pub mod api;
pub mod app;
pub mod decode;
pub mod discover;
pub mod kda;
pub mod query;
pub mod runtime;
pub mod schema;
pub mod table;

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::AnalyticsConfig;
use crate::stream::log::Log;

/// The analytics side of an edgewise-cdn process.
pub struct Analytics {
    queries: query::Queries,
    log: Arc<Log>,
    config: Arc<AnalyticsConfig>,
    /// Where applications keep their checkpoints (`<dir>/analytics/`).
    data_dir: PathBuf,
    statuses: app::Statuses,
    /// Runs queries and applications; stopped when this is dropped.
    runtime: runtime::AnalyticsRuntime,
}

impl Analytics {
    /// Analytics over `log` as `config` says, checkpoints under `data_dir`.
    ///
    /// # Errors
    /// The analytics runtime's threads cannot be started.
    pub fn new(
        log: Arc<Log>,
        config: &AnalyticsConfig,
        data_dir: PathBuf,
    ) -> std::io::Result<Analytics> {
        let runtime = runtime::AnalyticsRuntime::start()?;
        let config = Arc::new(config.clone());
        Ok(Analytics {
            queries: query::Queries::new(log.clone(), config.clone(), runtime.handle()),
            log,
            config,
            data_dir,
            statuses: app::Statuses::default(),
            runtime,
        })
    }

    /// Starts every configured application on the analytics runtime, until `shutdown`.
    pub fn start_applications(&self, shutdown: &CancellationToken) {
        for spec in &self.config.applications {
            let supervised = app::supervise(
                spec.clone(),
                self.log.clone(),
                self.config.clone(),
                self.data_dir.clone(),
                self.statuses.clone(),
                shutdown.clone(),
            );
            self.runtime.handle().spawn(supervised);
        }
    }

    /// Each application's name and what it is doing ("running", "failed: ...").
    pub fn statuses(&self) -> Vec<(String, String)> {
        self.statuses
            .lock()
            .map(|s| s.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    pub fn queries(&self) -> &query::Queries {
        &self.queries
    }

    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    pub fn config(&self) -> &AnalyticsConfig {
        &self.config
    }
}
