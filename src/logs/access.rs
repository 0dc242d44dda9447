//! The CDN access log: a line per sampled response with every field of the real-time log,
//! built from the same record ([`crate::cdn::realtime_log`] formats it when the response
//! ends, as it does its own lines); this side samples, queues and writes.
//!
//! Text is the real-time log's line: the fields tab-separated in CloudFront's order, `-` for
//! an absent value, viewer-supplied text percent-encoded. JSON is one object per line keyed
//! by the CloudFront field names, numbers as numbers and absent values as `null`.

use std::sync::Arc;

use bytes::BytesMut;

use super::{DEFAULT_QUEUE, LogSink, LogStats};
use crate::config::logs::{LogConfig, LogFormat};
use crate::config::realtime_logs::{LOG_FIELDS, LogField};

/// The request path's end of the access log. Cloning shares it.
#[derive(Clone)]
pub struct AccessLog {
    sink: LogSink<BytesMut>,
    format: LogFormat,
}

impl AccessLog {
    /// The log `config` asks for, its writer spawned. Must be called inside a tokio runtime.
    pub fn start(config: &LogConfig) -> AccessLog {
        AccessLog::with_queue(config, DEFAULT_QUEUE)
    }

    /// [`AccessLog::start`] with `queue` lines of room.
    pub fn with_queue(config: &LogConfig, queue: usize) -> AccessLog {
        let sink = super::start("access log", config, queue, |line: &BytesMut, out| {
            out.extend_from_slice(line);
        });
        AccessLog {
            sink,
            format: config.format,
        }
    }

    /// Whether this request is logged.
    pub fn sampled(&self) -> bool {
        self.sink.sampled()
    }

    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// Every field the real-time log knows, in CloudFront's order.
    pub fn fields() -> [LogField; LOG_FIELDS.len()] {
        LOG_FIELDS.map(|(field, _)| field)
    }

    /// Queues a formatted line ("\n" included) without waiting.
    pub fn push(&self, line: BytesMut) {
        self.sink.push(line);
    }

    /// Lines written and dropped.
    pub fn stats(&self) -> Arc<LogStats> {
        self.sink.stats().clone()
    }
}
