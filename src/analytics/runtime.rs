//! The runtime analytics work runs on: its own threads (half the CPUs, at least one), so a
//! query's CPU time competes with other queries, not with requests being served.

use std::thread::JoinHandle;

use tokio::sync::oneshot;

/// A multi-threaded tokio runtime on a thread of its own, stopped when dropped (without
/// waiting for queries still running).
pub struct AnalyticsRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl AnalyticsRuntime {
    /// # Errors
    /// The runtime or its thread cannot be created.
    pub fn start() -> std::io::Result<AnalyticsRuntime> {
        let workers = (crate::cli::available_cpus() / 2).max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("analytics")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("analytics-main".to_string())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                runtime.shutdown_background();
            })?;
        Ok(AnalyticsRuntime {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> tokio::runtime::Handle {
        self.handle.clone()
    }
}

impl Drop for AnalyticsRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
