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
pub mod reference;
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
    applications: Arc<app::registry::Registry>,
    /// Runs queries and applications; held so that its threads stop when this is dropped.
    _runtime: runtime::AnalyticsRuntime,
}

impl Analytics {
    /// Analytics over `log` as `config` says, checkpoints under `data_dir`.
    ///
    /// # Errors
    /// The analytics runtime's threads cannot be started, or a reference table cannot be
    /// read.
    pub fn new(
        log: Arc<Log>,
        config: &AnalyticsConfig,
        data_dir: PathBuf,
    ) -> std::io::Result<Analytics> {
        let references = config
            .references
            .iter()
            .map(reference::ReferenceTable::load)
            .collect::<Result<Vec<_>, _>>()
            .map_err(std::io::Error::other)?;
        let runtime = runtime::AnalyticsRuntime::start()?;
        let config = Arc::new(config.clone());
        let env = Arc::new(app::AppEnv {
            log: log.clone(),
            config: config.clone(),
            data_dir,
            references: Arc::new(references),
            statuses: app::Statuses::default(),
        });
        Ok(Analytics {
            queries: query::Queries::new(log.clone(), config.clone(), runtime.handle()),
            log,
            config,
            applications: Arc::new(app::registry::Registry::new(env, runtime.handle())),
            _runtime: runtime,
        })
    }

    /// Starts the applications (the config file's and the API's) on the analytics
    /// runtime, until `shutdown`.
    pub fn start_applications(&self, shutdown: &CancellationToken) {
        self.applications.start(shutdown);
    }

    pub fn applications(&self) -> &app::registry::Registry {
        &self.applications
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
