//! Stream analytics (Kinesis Data Analytics for SQL's job) on Apache DataFusion: records of
//! a stream become rows by its `[[analytics.inputs]]` schema, one-shot SQL reads a stream's
//! retained records as a table, and applications run KDA-dialect continuous queries whose
//! windows close on the inputs' watermark and whose rows go to output streams.
//!
//! Queries run on a runtime of their own ([`runtime::AnalyticsRuntime`]), so a heavy query
//! slows other queries, never the CDN or the stream API.

pub mod api;
pub mod decode;
pub mod discover;
pub mod kda;
pub mod query;
pub mod runtime;
pub mod schema;
pub mod table;

use std::sync::Arc;

use crate::config::AnalyticsConfig;
use crate::stream::log::Log;

/// The analytics side of an edgewise-cdn process.
pub struct Analytics {
    queries: query::Queries,
    log: Arc<Log>,
    config: Arc<AnalyticsConfig>,
    /// Keeps the analytics runtime running as long as this.
    _runtime: runtime::AnalyticsRuntime,
}

impl Analytics {
    /// Analytics over `log` as `config` says.
    ///
    /// # Errors
    /// The analytics runtime's threads cannot be started.
    pub fn new(log: Arc<Log>, config: &AnalyticsConfig) -> std::io::Result<Analytics> {
        let runtime = runtime::AnalyticsRuntime::start()?;
        let config = Arc::new(config.clone());
        Ok(Analytics {
            queries: query::Queries::new(log.clone(), config.clone(), runtime.handle()),
            log,
            config,
            _runtime: runtime,
        })
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
