//! Listeners: HTTPS (rustls, ALPN h2 + http/1.1) and plain HTTP, served by hyper-util's
//! auto builder with header timeouts, header size limits, a connection cap, and a graceful
//! drain on shutdown; plus the admin listener.

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

use super::admin;
use super::proxy::{Conn, Edge};
use super::realtime_log::{RealtimeLogReceiver, RealtimeLogger, TlsNames};
use super::reload::{Companion, Live, Reloader};
use super::zero_copy::ZeroCopy;
use crate::config::CdnConfig;
use crate::net::tls::{self, TlsError};

/// How long in-flight requests get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the CDN could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A folder origin or the cached-body folder could not be opened (the message names it).
    #[error("{0}")]
    Origin(io::Error),
}

/// Bound listeners and the edge behind them.
pub struct CdnServer {
    /// The edge and TLS setup, swapped whole on reload.
    live: Arc<Live>,
    /// Re-reads the config file on `POST /reload` (and SIGHUP, through the process).
    reloader: Option<Arc<Reloader>>,
    /// The settings fixed at start (listeners, connection cap).
    config: Arc<CdnConfig>,
    https: Vec<TcpListener>,
    http: Vec<TcpListener>,
    admin: Vec<TcpListener>,
    https_addrs: Vec<SocketAddr>,
    http_addrs: Vec<SocketAddr>,
    admin_addrs: Vec<SocketAddr>,
    /// The real-time log queue's far end, until a writer takes it.
    realtime_log: Option<RealtimeLogReceiver>,
}

impl CdnServer {
    /// Writes missing dev certificates (when allowed), loads TLS, prepares origins and binds
    /// every listener.
    ///
    /// # Errors
    /// A certificate problem, a folder origin or `cache_body_dir` that cannot be opened, or
    /// an address in use.
    pub fn bind(config: &CdnConfig) -> Result<CdnServer, StartError> {
        let config = Arc::new(config.clone());
        // 64: room for listeners, origin connections and the process's own files.
        if let Some(files) = crate::net::raise_open_file_limit()
            && files < config.max_connections as u64 + 64
        {
            warn!(
                "the open-file limit ({files}) is below cdn.max_connections ({}): connections past it will fail",
                config.max_connections
            );
        }
        if config.generate_dev_certs && !config.https_listen.is_empty() {
            tls::generate_missing(&config)?;
        }
        let tls = if config.https_listen.is_empty() {
            None
        } else {
            Some(tls::server_config(&config)?)
        };
        let bind = |addrs: &[SocketAddr],
                    kind: &str|
         -> Result<(Vec<TcpListener>, Vec<SocketAddr>), StartError> {
            let mut listeners = Vec::new();
            let mut bound = Vec::new();
            for &addr in addrs {
                let listener = crate::net::tcp_listener(addr)
                    .map_err(|source| StartError::Bind { addr, source })?;
                let local = listener
                    .local_addr()
                    .map_err(|source| StartError::Bind { addr, source })?;
                info!("listening on {kind} {local}");
                listeners.push(listener);
                bound.push(local);
            }
            Ok((listeners, bound))
        };
        let (https, https_addrs) = bind(&config.https_listen, "https")?;
        let (http, http_addrs) = bind(&config.http_listen, "http")?;
        let (admin, admin_addrs) = bind(&config.admin_listen, "admin")?;
        let (logger, realtime_log) = match &config.realtime_logs {
            Some(logs) => {
                let (logger, receiver) = RealtimeLogger::new(logs, &config.distributions);
                (Some(logger), Some(receiver))
            }
            None => (None, None),
        };
        let edge = Edge::new(
            config.clone(),
            https_addrs.first().map(SocketAddr::port),
            logger,
        )
        .map_err(StartError::Origin)?;
        for distribution in &config.distributions {
            info!(
                hosts = ?distribution.hosts,
                origins = distribution.origins.len(),
                behaviors = distribution.behaviors.len(),
                "serving distribution {}",
                distribution.id
            );
        }
        Ok(CdnServer {
            live: Arc::new(Live::new(edge, tls)),
            reloader: None,
            config,
            https,
            http,
            admin,
            https_addrs,
            http_addrs,
            admin_addrs,
            realtime_log,
        })
    }

    /// The queue of real-time log lines, when `[cdn.realtime_logs]` is set: hand it to
    /// [`run_writer`](super::realtime_log::run_writer) before [`run`](Self::run). Taken once;
    /// if nobody takes it, every record counts as dropped.
    pub fn realtime_log_receiver(&mut self) -> Option<RealtimeLogReceiver> {
        self.realtime_log.take()
    }

    /// Lets `POST /reload` (and [`reloader`](Self::reloader)) re-read `path`, the file this
    /// server's config came from, applying it to `companion` too (the process's stream side).
    pub fn reload_from(&mut self, path: PathBuf, companion: Option<Arc<dyn Companion>>) {
        self.reloader = Some(Arc::new(Reloader::new(path, self.live.clone(), companion)));
    }

    /// What reloads the config, once [`reload_from`](Self::reload_from) named the file.
    pub fn reloader(&self) -> Option<Arc<Reloader>> {
        self.reloader.clone()
    }

    pub fn https_addrs(&self) -> &[SocketAddr] {
        &self.https_addrs
    }

    pub fn http_addrs(&self) -> &[SocketAddr] {
        &self.http_addrs
    }

    pub fn admin_addrs(&self) -> &[SocketAddr] {
        &self.admin_addrs
    }

    /// Serves until `shutdown`, then gives in-flight requests up to 10 s to finish.
    pub async fn run(mut self, shutdown: CancellationToken) {
        if self.realtime_log.take().is_some() {
            warn!("real-time logs are configured but no writer drains them; records are dropped");
        }
        let slots = Arc::new(Semaphore::new(self.config.max_connections));
        let connections = TaskTracker::new();
        let mut tasks = JoinSet::new();
        let listeners = self
            .https
            .into_iter()
            .map(|l| (l, true))
            .chain(self.http.into_iter().map(|l| (l, false)));
        for (listener, https) in listeners {
            let ctx = Accept {
                live: self.live.clone(),
                config: self.config.clone(),
                https,
                slots: slots.clone(),
                connections: connections.clone(),
                shutdown: shutdown.clone(),
            };
            tasks.spawn(ctx.serve(listener));
        }
        for listener in self.admin {
            tasks.spawn(admin::serve(
                listener,
                self.live.clone(),
                self.reloader.clone(),
                shutdown.clone(),
            ));
        }
        while tasks.join_next().await.is_some() {}
        connections.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, connections.wait())
            .await
            .is_err()
        {
            warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
        }
    }
}

/// One listener's accept loop and what its connections need.
struct Accept {
    live: Arc<Live>,
    /// The settings fixed at start.
    config: Arc<CdnConfig>,
    /// An HTTPS listener: connections are accepted with the live TLS setup.
    https: bool,
    slots: Arc<Semaphore>,
    /// Every connection task, so shutdown can wait for them to drain.
    connections: TaskTracker,
    shutdown: CancellationToken,
}

impl Accept {
    async fn serve(self, listener: TcpListener) {
        let this = Arc::new(self);
        loop {
            let accepted = tokio::select! {
                () = this.shutdown.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = this.slots.clone().try_acquire_owned() else {
                debug!(
                    "connection from {peer} refused: {} connections open",
                    this.config.max_connections
                );
                continue;
            };
            let this = this.clone();
            this.connections.clone().spawn(async move {
                this.connection(stream, peer).await;
                drop(permit);
            });
        }
    }

    async fn connection(&self, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        // Timeouts and limits as configured when the connection arrived (a reload may change
        // them for the next ones).
        let settings = self.live.edge();
        let settings = settings.config();
        let tls = if self.https { self.live.tls() } else { None };
        let io = match tls {
            Some(tls) => {
                let acceptor = TlsAcceptor::from(tls);
                match tokio::time::timeout(settings.header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => Either::Left(tls),
                    Ok(Err(e)) => return debug!("TLS handshake with {peer}: {e}"),
                    Err(_) => return debug!("TLS handshake with {peer} timed out"),
                }
            }
            // Plain HTTP: mapped cache bodies go out with sendfile.
            None => Either::Right(ZeroCopy::new(stream)),
        };
        let conn = Conn {
            peer,
            https: self.https,
            tls: match &io {
                Either::Left(tls) => Some(TlsNames::of(tls.get_ref().1)),
                Either::Right(_) => None,
            },
        };
        let live = self.live.clone();
        let service = service_fn(move |request| {
            // Each request runs to its end on the edge current when it arrived.
            let edge: Arc<Edge> = live.edge();
            // The pipeline's state machine is large; boxed, hyper moves a pointer instead of
            // copying kilobytes each time it spawns or polls a request (HTTP/2 spawns a task
            // per stream). This took memcpy from 65% of the CPU time to noise.
            let answer = Box::pin(async move { edge.handle(request, conn).await });
            async move { Ok::<_, Infallible>(answer.await) }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(settings.header_timeout)
            .max_buf_size(settings.max_header_size.max(8192));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(settings.max_header_size).unwrap_or(u32::MAX))
            .keep_alive_interval(Some(settings.idle_timeout))
            .keep_alive_timeout(settings.header_timeout);
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        // On shutdown: no new requests on this connection (HTTP/2 GOAWAY, HTTP/1.1 closes after
        // the current response), but those in flight finish.
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = self.shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = result {
            debug!("connection from {peer}: {e}");
        }
    }
}
