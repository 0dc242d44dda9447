//! The edgewise-cdn process: the CDN, the stream API and the real-time log writer between
//! them, started together and stopped in order (CDN first, then its last log lines, then
//! the stream log is closed).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::acme::Acme;
use crate::app::dir_lock::DirLockError;
use crate::cdn::realtime_log::{self, RealtimeLogReceiver};
use crate::cdn::reload::{Companion, CompanionChanges, Reloader, StagedCompanion};
use crate::cdn::{CdnServer, StartError};
use crate::config::Config;
use crate::stream::api::put::{self, PutEntry};
use crate::stream::log::{Log, LogError};
use crate::stream::reload::{StageError, StagedStreams, StreamControl};
use crate::stream::{StreamServer, StreamStartError};

/// How long the real-time log writer gets to drain after the CDN stops.
const LOG_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the process could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeStartError {
    #[error(transparent)]
    Cdn(#[from] StartError),
    #[error(transparent)]
    Stream(#[from] StreamStartError),
    #[error("starting the analytics runtime: {0}")]
    Analytics(std::io::Error),
}

impl EdgeStartError {
    /// True when a folder this process would write (`stream.data_dir`, a delivery folder,
    /// `cdn.cache_body_dir`) is locked by another process: an operator's mistake in what
    /// was started, not a runtime failure, so the binary exits as for a bad config.
    pub fn folder_held(&self) -> bool {
        let held = |e: &DirLockError| matches!(e, DirLockError::Held { .. });
        match self {
            EdgeStartError::Cdn(StartError::Origin(io)) => io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<DirLockError>())
                .is_some_and(held),
            EdgeStartError::Stream(StreamStartError::Log {
                source: LogError::Locked(e),
                ..
            })
            | EdgeStartError::Stream(StreamStartError::DeliveryDir(e)) => held(e),
            _ => false,
        }
    }

    /// The listen address that could not be bound, and why.
    pub fn bind_failure(&self) -> Option<(std::net::SocketAddr, &std::io::Error)> {
        match self {
            EdgeStartError::Cdn(StartError::Bind(e))
            | EdgeStartError::Stream(StreamStartError::Bind(e)) => Some((e.addr, &e.source)),
            _ => None,
        }
    }
}

/// Everything bound and ready to serve.
pub struct Edge {
    cdn: Option<CdnServer>,
    stream: Option<StreamServer>,
    realtime: Option<(RealtimeLogReceiver, String)>,
    /// Set by [`Edge::reload_from`]; SIGHUP runs it.
    reloader: Option<Arc<Reloader>>,
}

impl Edge {
    /// Opens the stream log (recovering it) and binds every listener of `[cdn]` and `[stream]`.
    ///
    /// # Errors
    /// Whatever keeps either side from starting.
    pub fn bind(config: &Config) -> Result<Edge, EdgeStartError> {
        // The stream API's HTTPS listeners serve the CDN's ACME certificates too.
        let acme = match &config.cdn {
            Some(cdn) => Acme::prepare(cdn).map_err(StartError::from)?,
            None => None,
        };
        let certs = acme.as_ref().map(|acme| acme.certs().clone());
        let mut stream = config
            .stream
            .as_ref()
            .map(|s| StreamServer::bind(s, config.cdn.as_ref(), certs))
            .transpose()?;
        if let (Some(stream), Some(analytics)) = (stream.as_mut(), &config.analytics) {
            stream
                .serve_analytics(analytics)
                .map_err(EdgeStartError::Analytics)?;
        }
        let mut cdn = match &config.cdn {
            Some(cdn_config) => Some(CdnServer::bind_with(cdn_config, acme)?),
            None => None,
        };
        // One scrape of the admin listener covers the process.
        if let (Some(cdn), Some(stream)) = (cdn.as_mut(), stream.as_ref()) {
            cdn.add_metrics(Arc::new(stream.metrics_source()));
            cdn.show_streams(stream.log().clone());
            if let Some(analytics) = stream.analytics() {
                cdn.show_analytics(analytics.clone());
            }
        }
        let realtime = cdn.as_mut().and_then(|server| {
            let stream_name = config.cdn.as_ref()?.realtime_logs.as_ref()?.stream.clone();
            Some((server.realtime_log_receiver()?, stream_name))
        });
        Ok(Edge {
            cdn,
            stream,
            realtime,
            reloader: None,
        })
    }

    /// Connects the stream log to its cluster when `[stream] backend = "nats"`, before
    /// [`Edge::run`] serves or writes anything.
    ///
    /// # Errors
    /// The cluster cannot be reached or set up.
    pub async fn connect_upstream(&self, stop: &CancellationToken) -> Result<(), EdgeStartError> {
        if let Some(stream) = &self.stream {
            stream.connect_upstream(stop).await?;
        }
        Ok(())
    }

    pub fn cdn(&self) -> Option<&CdnServer> {
        self.cdn.as_ref()
    }

    pub fn stream(&self) -> Option<&StreamServer> {
        self.stream.as_ref()
    }

    /// Lets SIGHUP and the admin API's `POST /reload` re-read `path` (the file the config came
    /// from) and apply its `[cdn]` and `[stream]` together without a restart.
    pub fn reload_from(&mut self, path: PathBuf) {
        let companion: Arc<dyn Companion> = match &self.stream {
            Some(stream) => Arc::new(StreamCompanion(stream.control())),
            None => Arc::new(NoStream),
        };
        self.reloader = Some(match &mut self.cdn {
            Some(cdn) => cdn.reload_from(path, Some(companion)),
            None => Arc::new(Reloader::new(path, None, Some(companion))),
        });
    }

    /// Serves until `shutdown`, then drains and closes everything. SIGHUP reloads the config
    /// when [`reload_from`](Self::reload_from) named the file.
    pub async fn run(mut self, shutdown: CancellationToken) {
        // Only the SIGHUP task keeps the reloader (and through it the CDN's real-time log
        // sender): held here, the log writer below would never see its queue close.
        if let Some(reloader) = self.reloader.take() {
            match signal(SignalKind::hangup()) {
                Ok(hangups) => {
                    tokio::spawn(reload_on_hangup(hangups, reloader, shutdown.clone()));
                }
                Err(e) => warn!("SIGHUP will not reload: {e}"),
            }
        }
        let log = self.stream.as_ref().map(|s| s.log().clone());
        let writer = match (self.realtime, &log) {
            (Some((receiver, name)), Some(log)) => Some(tokio::spawn(write_realtime_logs(
                receiver,
                log.clone(),
                name,
            ))),
            _ => None,
        };
        let cdn = async {
            if let Some(cdn) = self.cdn {
                cdn.run(shutdown.clone()).await;
            }
        };
        let stream = async {
            if let Some(stream) = self.stream {
                stream.run(shutdown.clone()).await;
            }
        };
        tokio::join!(cdn, stream);
        if let Some(writer) = writer
            && tokio::time::timeout(LOG_DRAIN_TIMEOUT, writer)
                .await
                .is_err()
        {
            warn!("real-time log lines still queued after {LOG_DRAIN_TIMEOUT:?}; dropped");
        }
        if let Some(log) = log
            && let Err(e) = log.close().await
        {
            warn!("closing the stream log: {e}");
        }
    }
}

/// The stream side as the CDN's reload sees it: the reloaded file's `[stream]`.
struct StreamCompanion(Arc<StreamControl>);

impl Companion for StreamCompanion {
    fn stage(&self, config: &Config) -> Result<Box<dyn StagedCompanion>, String> {
        let stream = config
            .stream
            .as_ref()
            .ok_or("[stream] was removed: stopping the stream API needs a restart")?;
        match self.0.stage(stream, config.cdn.as_ref()) {
            Ok(staged) => Ok(Box::new(staged)),
            Err(StageError::Bind(e)) => Err(config
                .bind_error(e.addr, &e.source, &["stream"])
                .map_or_else(|| e.to_string(), |site| site.to_string())),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A process without `[stream]`: a reload that adds one is refused.
struct NoStream;

impl Companion for NoStream {
    fn stage(&self, config: &Config) -> Result<Box<dyn StagedCompanion>, String> {
        match config.stream {
            Some(_) => Err("[stream] was added: starting the stream API needs a restart".into()),
            None => Ok(Box::new(NothingStaged)),
        }
    }
}

/// [`NoStream`]'s part of a reload: nothing.
struct NothingStaged;

impl StagedCompanion for NothingStaged {
    fn commit(self: Box<Self>) -> Result<CompanionChanges, String> {
        Ok(CompanionChanges {
            key: "stream",
            details: serde_json::Value::Null,
            lines: Vec::new(),
        })
    }
}

impl StagedCompanion for StagedStreams {
    fn commit(self: Box<Self>) -> Result<CompanionChanges, String> {
        let summary = StagedStreams::commit(*self)?;
        Ok(CompanionChanges {
            key: "stream",
            lines: summary.changed(),
            details: serde_json::to_value(summary).map_err(|e| e.to_string())?,
        })
    }
}

/// Reloads on every SIGHUP until shutdown; the reloader logs each outcome. A SIGHUP that
/// arrives during a reload is taken once that one has finished.
async fn reload_on_hangup(
    mut hangups: Signal,
    reloader: Arc<Reloader>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            received = hangups.recv() => {
                if received.is_none() {
                    return;
                }
                info!("SIGHUP received, reloading {}", reloader.path().display());
                let _ = reloader.reload().await;
            }
        }
    }
}

/// Appends the CDN's log lines to their stream, a PutRecords-sized batch at a time, each
/// line under a random partition key so lines spread over the shards.
async fn write_realtime_logs(receiver: RealtimeLogReceiver, log: Arc<Log>, stream: String) {
    realtime_log::run_writer(
        receiver,
        realtime_log::PUT_RECORDS_MAX,
        |lines: Vec<Bytes>| {
            let target = log.get(&stream);
            let stream = stream.clone();
            async move {
                let target = target.ok_or_else(|| format!("stream {stream} does not exist"))?;
                let entries = lines
                    .into_iter()
                    .map(|data| PutEntry {
                        partition_key: format!("{:016x}", rand::random::<u64>()),
                        explicit_hash: None,
                        data,
                    })
                    .collect();
                let failed = put::put_all(&target, entries)
                    .await
                    .into_iter()
                    .filter_map(Result::err)
                    .next();
                match failed {
                    Some(e) => Err(e.to_string()),
                    None => Ok(()),
                }
            }
        },
    )
    .await;
}
