//! The writer task of one log: batches from the queue, formatted into one buffer, written
//! with one call and flushed, so a line is in the file (or on stderr) once its batch is
//! counted as written. The file is opened for appending (with its folder when missing) and
//! reopened on request; while it cannot be opened, lines are dropped and counted, and
//! opening is tried again with the next batch.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::warn;

use super::{BATCH_MAX, Control, LogStats};
use crate::config::logs::LogTarget;

/// A failing file is reported at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// One log's writer, before it runs.
pub(super) struct Task {
    /// `query log` or `access log`, for the warnings.
    pub name: &'static str,
    pub target: LogTarget,
    pub stats: Arc<LogStats>,
    pub control: Arc<Control>,
}

/// Where the lines go now.
enum Output {
    Stderr(tokio::io::Stderr),
    /// `None` while the file cannot be opened.
    File(Option<tokio::fs::File>),
}

impl Task {
    /// Writes every entry of `entries` as `format` makes it, until the queue is closed (every
    /// sink gone, or [`super::finish`]) and empty.
    pub(super) async fn run<T, F>(self, mut entries: mpsc::Receiver<T>, mut format: F)
    where
        F: FnMut(&T, &mut Vec<u8>),
    {
        let mut output = self.open().await;
        let mut batch = Vec::with_capacity(BATCH_MAX);
        let mut buffer = Vec::with_capacity(64 << 10);
        let mut last_warning: Option<Instant> = None;
        let mut closing = false;
        loop {
            tokio::select! {
                // A reopen asked for before these lines arrived applies to them.
                biased;
                () = self.control.reopen.notified() => output = self.open().await,
                () = self.control.close.cancelled(), if !closing => {
                    closing = true;
                    entries.close();
                }
                received = entries.recv_many(&mut batch, BATCH_MAX) => {
                    if received == 0 {
                        break;
                    }
                    buffer.clear();
                    for entry in batch.drain(..) {
                        format(&entry, &mut buffer);
                    }
                    if let Output::File(None) = output {
                        output = self.open().await;
                    }
                    let counter = match output.write(&buffer).await {
                        Ok(()) => &self.stats.written,
                        Err(e) => {
                            if last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                                warn!("{}: {received} line(s) not written: {e}", self.name);
                                last_warning = Some(Instant::now());
                            }
                            &self.stats.dropped
                        }
                    };
                    counter.fetch_add(received as u64, Ordering::Relaxed);
                }
            }
        }
    }

    async fn open(&self) -> Output {
        match &self.target {
            LogTarget::Stderr => Output::Stderr(tokio::io::stderr()),
            LogTarget::File(path) => match open_append(path).await {
                Ok(file) => Output::File(Some(file)),
                Err(e) => {
                    warn!("{}: cannot open {}: {e}", self.name, path.display());
                    Output::File(None)
                }
            },
        }
    }
}

async fn open_append(path: &Path) -> std::io::Result<tokio::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await?;
    }
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
}

impl Output {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Output::Stderr(stderr) => {
                stderr.write_all(bytes).await?;
                stderr.flush().await
            }
            Output::File(Some(file)) => {
                file.write_all(bytes).await?;
                file.flush().await
            }
            Output::File(None) => Err(std::io::Error::other("the log file is not open")),
        }
    }
}
