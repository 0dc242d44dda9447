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
use crate::net::listeners::{BindError, ListenerChanges, ListenerSet, StagedListeners};
use crate::net::tls::{self, TlsError};

/// How long in-flight requests get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the CDN could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
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
    /// The settings fixed at start (connection cap).
    config: Arc<CdnConfig>,
    /// Reloads add and remove addresses.
    listeners: Arc<CdnListeners>,
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
        let listeners = Arc::new(CdnListeners::bind(&config)?);
        let (logger, realtime_log) = match &config.realtime_logs {
            Some(logs) => {
                let (logger, receiver) = RealtimeLogger::new(logs, &config.distributions);
                (Some(logger), Some(receiver))
            }
            None => (None, None),
        };
        let edge = Edge::new(config.clone(), listeners.https_port(), logger)
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
            listeners,
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
        self.reloader = Some(Arc::new(Reloader::new(
            path,
            self.live.clone(),
            self.listeners.clone(),
            companion,
        )));
    }

    /// What reloads the config, once [`reload_from`](Self::reload_from) named the file.
    pub fn reloader(&self) -> Option<Arc<Reloader>> {
        self.reloader.clone()
    }

    /// The HTTPS addresses bound now (ports filled in when the config said 0).
    pub fn https_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.https.bound()
    }

    pub fn http_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.http.bound()
    }

    pub fn admin_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.admin.bound()
    }

    /// Serves until `shutdown`, then gives in-flight requests up to 10 s to finish.
    pub async fn run(mut self, shutdown: CancellationToken) {
        if self.realtime_log.take().is_some() {
            warn!("real-time logs are configured but no writer drains them; records are dropped");
        }
        let slots = Arc::new(Semaphore::new(self.config.max_connections));
        let connections = TaskTracker::new();
        let mut tasks = JoinSet::new();
        for https in [true, false] {
            let ctx = Arc::new(Accept {
                live: self.live.clone(),
                config: self.config.clone(),
                https,
                slots: slots.clone(),
                connections: connections.clone(),
                shutdown: shutdown.clone(),
            });
            let (listeners, token) = (self.listeners.clone(), shutdown.clone());
            tasks.spawn(async move {
                let set = if https {
                    &listeners.https
                } else {
                    &listeners.http
                };
                set.serve(token, |listener, retire| {
                    ctx.clone().serve(listener, retire)
                })
                .await;
            });
        }
        let admission = admin::admission();
        let (listeners, live, reloader) = (
            self.listeners.clone(),
            self.live.clone(),
            self.reloader.clone(),
        );
        let token = shutdown.clone();
        tasks.spawn(async move {
            listeners
                .admin
                .serve(token.clone(), |listener, retire| {
                    admin::serve(
                        listener,
                        admission.clone(),
                        live.clone(),
                        reloader.clone(),
                        retire,
                        token.clone(),
                    )
                })
                .await;
        });
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
    /// Accepts until `retire` (a reload removed the address, or shutdown); the connections
    /// run on, tracked, until they finish or shutdown drains them.
    async fn serve(self: Arc<Self>, listener: TcpListener, retire: CancellationToken) {
        let this = self;
        loop {
            let accepted = tokio::select! {
                () = retire.cancelled() => return,
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

/// The CDN's three kinds of listener, which reloads change together.
pub struct CdnListeners {
    https: Arc<ListenerSet<TcpListener>>,
    http: Arc<ListenerSet<TcpListener>>,
    admin: Arc<ListenerSet<TcpListener>>,
}

/// A reload's new CDN addresses, bound and not yet serving.
pub struct StagedCdnListeners {
    https: StagedListeners<TcpListener>,
    http: StagedListeners<TcpListener>,
    admin: StagedListeners<TcpListener>,
}

impl CdnListeners {
    fn bind(config: &CdnConfig) -> Result<CdnListeners, BindError> {
        let bind = |kind, addrs: &[SocketAddr]| {
            ListenerSet::bind(kind, addrs, crate::net::bound_tcp_listener)
        };
        Ok(CdnListeners {
            https: bind("https", &config.https_listen)?,
            http: bind("http", &config.http_listen)?,
            admin: bind("admin", &config.admin_listen)?,
        })
    }

    /// The port HTTP requests are redirected to for HTTPS: the first HTTPS listener's.
    fn https_port(&self) -> Option<u16> {
        self.https.bound().first().map(SocketAddr::port)
    }

    /// Binds the addresses of `config` not listened on yet; nothing in force changes.
    ///
    /// # Errors
    /// An address that cannot be bound: the reload fails as a whole.
    pub fn stage(&self, config: &CdnConfig) -> Result<StagedCdnListeners, BindError> {
        let stage = |set: &Arc<ListenerSet<TcpListener>>, addrs: &[SocketAddr]| {
            set.stage(addrs, crate::net::bound_tcp_listener)
        };
        Ok(StagedCdnListeners {
            https: stage(&self.https, &config.https_listen)?,
            http: stage(&self.http, &config.http_listen)?,
            admin: stage(&self.admin, &config.admin_listen)?,
        })
    }
}

impl StagedCdnListeners {
    /// The port HTTPS redirects will name once this is committed.
    pub fn https_port(&self) -> Option<u16> {
        self.https.first_bound().map(|addr| addr.port())
    }

    /// Serves the new addresses and retires the removed ones.
    pub fn commit(self) -> ListenerChanges {
        let mut changes = self.https.commit();
        changes.extend(self.http.commit());
        changes.extend(self.admin.commit());
        changes
    }
}
