//! The query and access logs' part of a process: SIGUSR1 reopens their files (logrotate's
//! `postrotate`), and at shutdown their last lines are written before the process exits.

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::info;

/// How long the log writers get to write what is queued once the servers have stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Reopens every log file of the process on each SIGUSR1 until `shutdown`. Must be called
/// inside a tokio runtime.
///
/// # Errors
/// When the signal handler cannot be installed.
pub fn reopen_on_sigusr1(shutdown: CancellationToken) -> std::io::Result<()> {
    let mut signals = signal(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                received = signals.recv() => {
                    if received.is_none() {
                        return;
                    }
                    let count = crate::logs::reopen_all();
                    info!("SIGUSR1 received, reopening {count} log file(s)");
                }
            }
        }
    });
    Ok(())
}

/// Closes the log queues and waits (bounded) for their writers, after the servers stopped.
pub async fn finish() {
    crate::logs::finish(DRAIN_TIMEOUT).await;
}
