//! The stream side of edgewise-cdn: opens the log, serves the Kinesis-compatible API over
//! HTTP and HTTPS (hyper-util auto: HTTP/1.1 keep-alive as the SDKs expect, and HTTP/2),
//! runs the deliveries and the log's maintenance, and closes the log cleanly on shutdown.

use crate::app::dir_lock::DirLockError;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::api::Api;
use super::delivery::DeliveryStats;
use super::log::{Log, LogError, LogOptions};
use super::reload::{self, StreamControl};
use crate::config::{CdnConfig, StreamConfig};
use crate::net::tls::{self, TlsError};

/// A request's headers must arrive within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests are at most 5 MiB of records, base64-inflated; 8 KiB of headers is far more
/// than the SDKs send.
const MAX_HEADER_BYTES: usize = 64 << 10;
const MAX_CONNECTIONS: usize = 4096;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the stream service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StreamStartError {
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("stream log in {dir}: {source}")]
    Log { dir: String, source: LogError },
    #[error("{0}")]
    Key(String),
    #[error("delivery folder: {0}")]
    DeliveryDir(#[from] DirLockError),
    #[error("cannot create the delivery folder {}: {source}", dir.display())]
    CreateDeliveryDir { dir: PathBuf, source: io::Error },
}

/// The open log and the bound API listeners.
pub struct StreamServer {
    log: Arc<Log>,
    api: Arc<Api>,
    tls: Option<TlsAcceptor>,
    listeners: Vec<(TcpListener, bool)>,
    addrs: Vec<SocketAddr>,
    https_addrs: Vec<SocketAddr>,
    /// The streams and deliveries in force; reloads change them.
    control: Arc<StreamControl>,
}

impl StreamServer {
    /// Opens (and recovers) the log and binds every listener. `cdn` supplies the
    /// certificates for HTTPS.
    ///
    /// # Errors
    /// The log cannot be opened, a certificate is unusable, or an address is in use.
    pub fn bind(
        config: &StreamConfig,
        cdn: Option<&CdnConfig>,
    ) -> Result<StreamServer, StreamStartError> {
        let log = Log::open(
            LogOptions {
                data_dir: config.data_dir.clone(),
                fsync: config.fsync,
                segment_size: config.segment_size,
            },
            &config.streams,
        )
        .map_err(|source| StreamStartError::Log {
            dir: config.data_dir.display().to_string(),
            source,
        })?;
        let tls = match cdn {
            Some(cdn) if !config.https_listen.is_empty() => {
                if cdn.generate_dev_certs {
                    tls::generate_missing(cdn)?;
                }
                Some(TlsAcceptor::from(tls::server_config(cdn)?))
            }
            _ => None,
        };
        let delivery_locks = reload::lock_folders(&config.deliveries, &[])?;
        let delivery_stats = Arc::new(DeliveryStats::default());
        let api = Arc::new(
            Api::new(log.clone(), config, delivery_stats.clone()).map_err(StreamStartError::Key)?,
        );
        let mut listeners = Vec::new();
        let (mut addrs, mut https_addrs) = (Vec::new(), Vec::new());
        for (&addr, https) in config
            .listen
            .iter()
            .map(|a| (a, false))
            .chain(config.https_listen.iter().map(|a| (a, true)))
        {
            let listener = crate::net::tcp_listener(addr)
                .map_err(|source| StreamStartError::Bind { addr, source })?;
            let local = listener
                .local_addr()
                .map_err(|source| StreamStartError::Bind { addr, source })?;
            info!(
                "stream API listening on {} {local}",
                if https { "https" } else { "http" }
            );
            if https {
                https_addrs.push(local);
            } else {
                addrs.push(local);
            }
            listeners.push((listener, https));
        }
        Ok(StreamServer {
            log: log.clone(),
            api,
            tls,
            listeners,
            addrs,
            https_addrs,
            control: Arc::new(StreamControl::new(
                log,
                delivery_stats,
                config.clone(),
                delivery_locks,
            )),
        })
    }

    /// What applies a reloaded `[stream]`.
    pub fn control(&self) -> Arc<StreamControl> {
        self.control.clone()
    }

    /// The open log, e.g. for the CDN's real-time logs.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn https_addrs(&self) -> &[SocketAddr] {
        &self.https_addrs
    }

    /// Serves until `shutdown`; then drains requests and flushes deliveries. The log stays
    /// open for other writers (the CDN's real-time logs); [`Log::close`] it afterwards.
    pub async fn run(self, shutdown: CancellationToken) {
        let maintenance = self.log.spawn_maintenance(shutdown.clone());
        self.control.start(shutdown.clone());
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let connections = TaskTracker::new();
        let mut accepting = JoinSet::new();
        for (listener, https) in self.listeners {
            let tls = if https { self.tls.clone() } else { None };
            accepting.spawn(accept_loop(
                listener,
                tls,
                self.api.clone(),
                slots.clone(),
                connections.clone(),
                shutdown.clone(),
            ));
        }
        while accepting.join_next().await.is_some() {}
        connections.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, connections.wait())
            .await
            .is_err()
        {
            warn!("stream API connections still open after {DRAIN_TIMEOUT:?}; closing them");
        }
        self.control.join().await;
        let _ = maintenance.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    api: Arc<Api>,
    slots: Arc<Semaphore>,
    connections: TaskTracker,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!("stream API accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!("stream API connection from {peer} refused: {MAX_CONNECTIONS} open");
            continue;
        };
        let (tls, api, shutdown) = (tls.clone(), api.clone(), shutdown.clone());
        connections.spawn(async move {
            connection(stream, peer, tls, api, shutdown).await;
            drop(permit);
        });
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    api: Arc<Api>,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| {
        let api = api.clone();
        async move { Ok::<_, Infallible>(api.handle(request, peer).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let io = match tls {
        Some(acceptor) => match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await
        {
            Ok(Ok(tls)) => Either::Left(tls),
            Ok(Err(e)) => return debug!("stream API TLS handshake with {peer}: {e}"),
            Err(_) => return debug!("stream API TLS handshake with {peer} timed out"),
        },
        None => Either::Right(stream),
    };
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        debug!("stream API connection from {peer}: {e}");
    }
}
