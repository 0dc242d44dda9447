//! `[dns] watch_zones`: reload when the config file or a zone file changes.
//!
//! The folders holding those files are watched, not the files: editors save by writing a new
//! file and renaming it over the old one, which a watch on the old file's inode never sees.
//! Events about other files in those folders are ignored, and so are reads (our own reloads
//! open every file). A change is acted on once the folders have been quiet for [`QUIET`], so
//! an editor's save (several events) or a script writing several files costs one reload.
//!
//! The reload is the SIGHUP one: the whole config and every zone file validated first, put in
//! force whole or not at all, and logged the same way. After each reload the watched folders
//! follow the config in force, so a zone added with a new file is watched from then on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Reloader;
use crate::config::DnsConfig;

/// How long the watched files must stay unchanged before a reload starts.
pub const QUIET: Duration = Duration::from_millis(500);

/// The watcher, set up before the server runs so that no change made after start-up is
/// missed; [`ZoneWatch::run`] acts on what it reports.
pub struct ZoneWatch {
    watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<notify::Result<Event>>,
    /// Absolute paths of the files whose changes start a reload.
    files: BTreeSet<PathBuf>,
    /// The folders holding `files`, each watched once.
    folders: BTreeSet<PathBuf>,
}

// === impl ZoneWatch ===

impl ZoneWatch {
    /// Watches the folders of `config_path` and of every zone file `config` read.
    ///
    /// # Errors
    /// When the operating system gives no watcher (e.g. the inotify instance limit).
    pub fn start(config_path: &Path, config: &DnsConfig) -> notify::Result<ZoneWatch> {
        let (sender, events) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event| {
            // Fails only once the receiver is gone, when the server has stopped.
            let _ = sender.send(event);
        })?;
        let mut watch = ZoneWatch {
            watcher,
            events,
            files: BTreeSet::new(),
            folders: BTreeSet::new(),
        };
        watch.follow(watched_files(config_path, config));
        Ok(watch)
    }

    /// Reloads through `reloader` after each quiet change, until `shutdown`.
    pub async fn run(mut self, reloader: Reloader, shutdown: CancellationToken) {
        loop {
            let Some(why) = self.next_change(&shutdown).await else {
                return;
            };
            if !self.settle(&shutdown).await {
                return;
            }
            info!("watch_zones: {why}, reloading");
            // The outcome is logged; a refused reload leaves the server as it was.
            let _ = reloader.reload_and_log().await;
            let files = reloader.with_config(watched_files).await;
            self.follow(files);
        }
    }

    /// Why to reload, once a change touches a watched file; `None` at shutdown.
    async fn next_change(&mut self, shutdown: &CancellationToken) -> Option<String> {
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return None,
                event = self.events.recv() => event?,
            };
            if let Some(why) = self.touched(event) {
                return Some(why);
            }
        }
    }

    /// Waits until no watched file has changed for [`QUIET`]; false at shutdown.
    async fn settle(&mut self, shutdown: &CancellationToken) -> bool {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep(QUIET) => return true,
                event = self.events.recv() => match event {
                    Some(event) => { self.touched(event); }
                    None => return false,
                },
            }
        }
    }

    /// Why `event` calls for a reload, if it does: it changed a watched file, or events were
    /// lost (the kernel's queue overflowed), which could have hidden such a change.
    fn touched(&self, event: notify::Result<Event>) -> Option<String> {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                warn!("watch_zones: {e}");
                return None;
            }
        };
        if event.need_rescan() {
            return Some("file events were lost".into());
        }
        if matches!(event.kind, EventKind::Access(_)) {
            return None;
        }
        event
            .paths
            .iter()
            .find(|p| self.files.contains(*p))
            .map(|p| format!("{} changed", p.display()))
    }

    /// Watches the folders of `files` and no others.
    fn follow(&mut self, files: BTreeSet<PathBuf>) {
        let folders: BTreeSet<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        for gone in self.folders.difference(&folders) {
            // The folder may be gone already, which ended its watch.
            let _ = self.watcher.unwatch(gone);
        }
        for new in folders.difference(&self.folders) {
            if let Err(e) = self.watcher.watch(new, RecursiveMode::NonRecursive) {
                warn!(
                    "watch_zones: cannot watch {}, changes there need SIGHUP: {e}",
                    new.display()
                );
            }
        }
        self.files = files;
        self.folders = folders;
    }
}

/// The config file and every zone file of `config`, as absolute paths (events name files by
/// the folder watched).
fn watched_files(config_path: &Path, config: &DnsConfig) -> BTreeSet<PathBuf> {
    std::iter::once(config_path)
        .chain(
            config
                .zones
                .iter()
                .flat_map(|z| z.files.iter().map(PathBuf::as_path)),
        )
        .filter_map(|path| std::path::absolute(path).ok())
        .collect()
}
