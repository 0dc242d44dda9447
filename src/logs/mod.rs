//! The DNS query log and the CDN access log (`[dns] query_log`, `[cdn] access_log`).
//!
//! The request path only decides whether a line is sampled and pushes an entry into a
//! bounded queue with `try_send`: a full queue drops the entry and counts it, so logging
//! never blocks or slows an answer. One writer task per log drains the queue in batches,
//! formats them (DNS entries are formatted here; CDN lines arrive formatted, built from
//! the real-time log's record) and writes each batch with one call.
//!
//! SIGUSR1 reaches the process, not a server, so every writer registers in one process-wide
//! list: [`reopen_all`] makes each reopen its file (for logrotate), and [`finish`] closes
//! every queue at shutdown and waits for the last lines to be written.
//!
//! - `query`: the DNS entry (fixed size) and its text and JSON lines
//! - `access`: the CDN's access log, fed by the real-time log's records
//! - `writer`: the writer task and where lines go (stderr or a file)

pub mod access;
pub mod query;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::logs::LogConfig;

/// Entries buffered between the request path and a writer; beyond this they are dropped.
pub const DEFAULT_QUEUE: usize = 65_536;
/// Entries a writer formats and writes with one call.
const BATCH_MAX: usize = 1024;

/// What became of a log's lines; shared with whoever renders metrics.
#[derive(Debug, Default)]
pub struct LogStats {
    written: AtomicU64,
    dropped: AtomicU64,
}

impl LogStats {
    /// Lines written to the log's file or stderr.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Lines lost: the queue was full or closed, or their write failed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The request path's end of a log: the sampling decision and the queue. Cloning shares it.
pub(crate) struct LogSink<T> {
    queue: mpsc::Sender<T>,
    stats: Arc<LogStats>,
    sample: Sample,
}

impl<T> Clone for LogSink<T> {
    fn clone(&self) -> Self {
        LogSink {
            queue: self.queue.clone(),
            stats: self.stats.clone(),
            sample: self.sample,
        }
    }
}

/// `sample` as a decision that costs at most one random number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sample {
    All,
    None,
    /// Logged when a uniform random `u64` is below this.
    Below(u64),
}

impl Sample {
    fn of(share: f64) -> Sample {
        if share >= 1.0 {
            Sample::All
        } else if share <= 0.0 {
            Sample::None
        } else {
            // The float-to-int cast saturates; 2^64 itself is excluded above.
            Sample::Below((share * 18_446_744_073_709_551_616.0) as u64)
        }
    }

    fn take(self) -> bool {
        match self {
            Sample::All => true,
            Sample::None => false,
            // rand's thread-local generator: a few nanoseconds, no lock.
            Sample::Below(limit) => rand::random::<u64>() < limit,
        }
    }
}

impl<T: Send + 'static> LogSink<T> {
    /// A sink for `config` and its queue's far end, for [`spawn_writer`].
    fn new(config: &LogConfig, queue: usize) -> (LogSink<T>, mpsc::Receiver<T>) {
        let (queue, receiver) = mpsc::channel(queue.max(1));
        let sink = LogSink {
            queue,
            stats: Arc::default(),
            sample: Sample::of(config.sample),
        };
        (sink, receiver)
    }

    /// Whether this query or request is logged.
    pub(crate) fn sampled(&self) -> bool {
        self.sample.take()
    }

    /// Queues `entry` without waiting; a full or closed queue counts it as dropped.
    pub(crate) fn push(&self, entry: T) {
        if self.queue.try_send(entry).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn stats(&self) -> &Arc<LogStats> {
        &self.stats
    }
}

/// A log's sink, with its writer spawned (and registered) for `config`: `format` appends an
/// entry's line, "\n" included. Must be called inside a tokio runtime.
pub(crate) fn start<T, F>(
    name: &'static str,
    config: &LogConfig,
    queue: usize,
    format: F,
) -> LogSink<T>
where
    T: Send + 'static,
    F: FnMut(&T, &mut Vec<u8>) + Send + 'static,
{
    let (sink, receiver) = LogSink::new(config, queue);
    let control = Arc::new(Control::default());
    let task = writer::Task {
        name,
        target: config.to.clone(),
        stats: sink.stats.clone(),
        control: control.clone(),
    };
    let handle = tokio::spawn(task.run(receiver, format));
    let mut writers = WRITERS.lock().unwrap_or_else(PoisonError::into_inner);
    writers.retain(|(_, handle)| !handle.is_finished());
    writers.push((control, handle));
    sink
}

/// What the process tells a writer.
#[derive(Default)]
struct Control {
    /// Close the file and open the path again (SIGUSR1).
    reopen: Notify,
    /// Take no more entries; write what is queued and end.
    close: CancellationToken,
}

/// Every writer spawned in this process and not yet known to have ended.
static WRITERS: Mutex<Vec<(Arc<Control>, JoinHandle<()>)>> = Mutex::new(Vec::new());

/// Makes every log writer of the process reopen its file (SIGUSR1, after logrotate moved
/// it); returns how many were told.
pub fn reopen_all() -> usize {
    let mut writers = WRITERS.lock().unwrap_or_else(PoisonError::into_inner);
    writers.retain(|(_, handle)| !handle.is_finished());
    for (control, _) in writers.iter() {
        control.reopen.notify_one();
    }
    writers.len()
}

/// Closes every log queue (later entries count as dropped) and waits up to `timeout` for
/// the writers to write what was queued.
pub async fn finish(timeout: Duration) {
    let writers = std::mem::take(&mut *WRITERS.lock().unwrap_or_else(PoisonError::into_inner));
    let handles: Vec<_> = writers
        .into_iter()
        .map(|(control, handle)| {
            control.close.cancel();
            handle
        })
        .collect();
    let all = async {
        for handle in handles {
            let _ = handle.await;
        }
    };
    if tokio::time::timeout(timeout, all).await.is_err() {
        tracing::warn!("log lines still queued after {timeout:?}; dropped");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;

    use super::*;
    use crate::config::logs::{LogFormat, LogTarget};

    #[test]
    fn sampling_takes_all_none_or_about_the_share() {
        assert_eq!(Sample::of(1.0), Sample::All);
        assert_eq!(Sample::of(0.0), Sample::None);
        assert!((0..1000).all(|_| Sample::All.take()));
        assert!((0..1000).all(|_| !Sample::None.take()));
        let taken = (0..100_000).filter(|_| Sample::of(0.1).take()).count();
        assert!((8_500..11_500).contains(&taken), "{taken} of 100000 at 0.1");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_drops_and_counts_and_never_waits_for_a_stalled_writer() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            to: LogTarget::File(dir.path().join("stalled.log")),
            format: LogFormat::Text,
            sample: 1.0,
        };
        // The writer blocks inside its first batch until the test lets it go.
        let (release, stalled) = std_mpsc::channel::<()>();
        let (entered, first_batch) = std_mpsc::channel::<()>();
        let mut first = true;
        let sink = start(
            "test log",
            &config,
            4,
            move |line: &u32, out: &mut Vec<u8>| {
                if std::mem::take(&mut first) {
                    entered.send(()).unwrap();
                    stalled.recv().unwrap();
                }
                out.extend_from_slice(format!("{line}\n").as_bytes());
            },
        );
        sink.push(0);
        first_batch.recv().unwrap();
        for line in 1..=100 {
            sink.push(line);
        }
        assert_eq!(
            sink.stats().dropped(),
            96,
            "4 queued behind the stalled batch"
        );
        assert_eq!(sink.stats().written(), 0);
        let stats = sink.stats().clone();
        release.send(()).unwrap();
        drop(sink);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while stats.written() < 5 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let text = std::fs::read_to_string(dir.path().join("stalled.log")).unwrap();
        assert_eq!(text, "0\n1\n2\n3\n4\n");
        assert_eq!((stats.written(), stats.dropped()), (5, 96));
    }
}
