//! Listeners: HTTPS (rustls, ALPN h2 + http/1.1) and plain HTTP, served by the shared
//! [`crate::net::http`] loop (header timeouts and size limits, a connection cap, a graceful
//! drain on shutdown), plus the admin listener; reloads change their addresses.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::admin;
use super::body::{self, Body};
use super::http2::{self, Http2Limits};
use super::http3::Http3Endpoint;
use super::proxy::{Conn, Edge};
use super::realtime_log::{RealtimeLogReceiver, RealtimeLogger, TlsNames};
use super::reload::{CdnParts, Companion, Live, Reloader};
use super::zero_copy::ZeroCopy;
use crate::acme::{
    ALPN_CHALLENGE, Acme, AcmeCerts, AcmeCollector, HTTP_CHALLENGE_PREFIX, StoreError,
};
use crate::analytics::Analytics;
use crate::config::CdnConfig;
use crate::net::http::{HttpConnections, HttpLimits, serve_connection};
use crate::net::listeners::{BindError, ListenerChanges, ListenerSet, StagedListeners};
use crate::net::tls::{self, TlsError};
use crate::stream::log::Log;

/// How long in-flight requests get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the CDN could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("ACME certificates: {0}")]
    Acme(#[from] StoreError),
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
    /// Other parts of the process whose metrics the admin `GET /metrics` adds.
    other_metrics: Vec<admin::MetricsSource>,
    /// The process's stream log, for the console.
    streams: Option<Arc<Log>>,
    /// SQL over the streams for the console's SQL editor.
    analytics: Option<Arc<Analytics>>,
    /// Orders and renews the ACME certificates once the listeners serve.
    acme: Option<Acme>,
}

impl CdnServer {
    /// Writes missing dev certificates (when allowed), loads TLS, prepares origins and binds
    /// every listener.
    ///
    /// # Errors
    /// A certificate problem, a folder origin or `cache_body_dir` that cannot be opened, or
    /// an address in use.
    pub fn bind(config: &CdnConfig) -> Result<CdnServer, StartError> {
        CdnServer::bind_with(config, Acme::prepare(config)?)
    }

    /// [`bind`](Self::bind) with the ACME certificates prepared already (the process shares
    /// them with the stream API's listeners).
    ///
    /// # Errors
    /// As [`bind`](Self::bind).
    pub fn bind_with(config: &CdnConfig, acme: Option<Acme>) -> Result<CdnServer, StartError> {
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
        let acme_certs = acme.as_ref().map(|a| a.certs().clone());
        let tls = if config.https_listen.is_empty() {
            None
        } else {
            Some(tls::server_config(&config, acme_certs.as_ref())?)
        };
        let listeners = Arc::new(CdnListeners::bind(&config)?);
        let (logger, realtime_log) = RealtimeLogger::for_cdn(&config);
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
        let mut other_metrics: Vec<admin::MetricsSource> = Vec::new();
        if let Some(certs) = &acme_certs {
            let certs = certs.clone();
            other_metrics.push(Arc::new(move || Box::new(AcmeCollector(certs.clone()))));
        }
        Ok(CdnServer {
            live: Arc::new(Live::new(edge, tls, acme_certs)),
            reloader: None,
            config,
            listeners,
            realtime_log,
            other_metrics,
            streams: None,
            analytics: None,
            acme,
        })
    }

    /// Adds `source`'s metrics to the admin listener's `GET /metrics`, so one scrape covers
    /// the whole process.
    pub fn add_metrics(&mut self, source: admin::MetricsSource) {
        self.other_metrics.push(source);
    }

    /// Serves `analytics` to the admin listener's console (its SQL editor).
    pub fn show_analytics(&mut self, analytics: Arc<Analytics>) {
        self.analytics = Some(analytics);
    }

    /// Shows the streams of `log` on the admin listener's console.
    pub fn show_streams(&mut self, log: Arc<Log>) {
        self.streams = Some(log);
    }

    /// The queue of real-time log lines, when `[cdn.realtime_logs]` is set: hand it to
    /// [`run_writer`](super::realtime_log::run_writer) before [`run`](Self::run). Taken once;
    /// if nobody takes it, every record counts as dropped.
    pub fn realtime_log_receiver(&mut self) -> Option<RealtimeLogReceiver> {
        self.realtime_log.take()
    }

    /// Lets `POST /reload` (and [`reloader`](Self::reloader)) re-read `path`, the file this
    /// server's config came from, applying it to `companion` too (the process's stream side).
    pub fn reload_from(
        &mut self,
        path: PathBuf,
        companion: Option<Arc<dyn Companion>>,
    ) -> Arc<Reloader> {
        let parts = CdnParts {
            live: self.live.clone(),
            listeners: self.listeners.clone(),
        };
        let reloader = Arc::new(Reloader::new(path, Some(parts), companion));
        self.reloader = Some(reloader.clone());
        reloader
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
        let connections = Arc::new(HttpConnections::new("CDN", self.config.max_connections));
        let mut tasks = JoinSet::new();
        // The listeners are bound: the CA can connect back for tls-alpn-01 and http-01.
        if let Some(acme) = self.acme.take() {
            tasks.spawn(acme.run(shutdown.clone()));
        }
        for https in [true, false] {
            let viewer = Arc::new(Viewer {
                live: self.live.clone(),
                https,
                shutdown: shutdown.clone(),
            });
            let (listeners, connections) = (self.listeners.clone(), connections.clone());
            let token = shutdown.clone();
            tasks.spawn(async move {
                let set = if https {
                    &listeners.https
                } else {
                    &listeners.http
                };
                set.serve(token, |listener, retire| {
                    let (connections, viewer) = (connections.clone(), viewer.clone());
                    async move {
                        // HTTP/3 on the same address, for as long as the HTTPS listener.
                        let quic = viewer.http3(&listener, &retire);
                        connections
                            .accept(listener, retire, |stream, peer| {
                                viewer.clone().connection(stream, peer)
                            })
                            .await;
                        if let Some(quic) = quic {
                            let _ = quic.await;
                        }
                    }
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
        let process = admin::ProcessParts {
            metrics: self.other_metrics.into(),
            streams: self.streams,
            analytics: self.analytics,
        };
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
                        process.clone(),
                        retire,
                        token.clone(),
                    )
                })
                .await;
        });
        while tasks.join_next().await.is_some() {}
        connections.drain(DRAIN_TIMEOUT).await;
    }
}

/// What a viewer connection of one kind (HTTPS or plain) needs.
struct Viewer {
    live: Arc<Live>,
    /// HTTPS: connections are accepted with the live TLS setup.
    https: bool,
    shutdown: CancellationToken,
}

impl Viewer {
    /// Starts HTTP/3 on the UDP side of HTTPS `listener` when `http3` is on, until `retire`.
    fn http3(
        &self,
        listener: &TcpListener,
        retire: &CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if !self.https || !self.live.edge().config().http3 {
            return None;
        }
        let addr = listener.local_addr().ok()?;
        match Http3Endpoint::bind(addr, self.live.clone()) {
            Ok(endpoint) => Some(tokio::spawn(endpoint.serve(retire.clone()))),
            Err(e) => {
                warn!("HTTP/3 is off for {addr}: {e}");
                None
            }
        }
    }

    async fn connection(self: Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        // Timeouts and limits as configured when the connection arrived (a reload may change
        // them for the next ones).
        let edge = self.live.edge();
        let (settings, metrics) = (edge.config(), edge.metrics());
        let limits = HttpLimits {
            header_timeout: settings.header_timeout,
            max_header_size: settings.max_header_size,
            h2_keep_alive: Some(settings.idle_timeout),
        };
        let tls = if self.https { self.live.tls() } else { None };
        // Alt-Svc names the port this connection came in on, whose UDP side speaks HTTP/3.
        let alt_svc = (self.https && settings.http3)
            .then(|| stream.local_addr().ok())
            .flatten()
            .and_then(|local| {
                http::HeaderValue::try_from(format!("h3=\":{}\"; ma=86400", local.port())).ok()
            });
        let io = match tls {
            Some(tls) => {
                let acceptor = TlsAcceptor::from(tls);
                match tokio::time::timeout(settings.header_timeout, acceptor.accept(stream)).await {
                    // A CA's tls-alpn-01 validation: the handshake was the answer (RFC 8737 §3).
                    Ok(Ok(tls)) if tls.get_ref().1.alpn_protocol() == Some(ALPN_CHALLENGE) => {
                        return debug!("answered a tls-alpn-01 validation from {peer}");
                    }
                    Ok(Ok(tls)) => {
                        metrics.handshake(tls.get_ref().1);
                        Either::Left(tls)
                    }
                    Ok(Err(e)) => {
                        metrics.handshake_failed();
                        return debug!("TLS handshake with {peer}: {e}");
                    }
                    Err(_) => {
                        metrics.handshake_failed();
                        return debug!("TLS handshake with {peer} timed out");
                    }
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
        let _open = metrics.open(match &io {
            Either::Left(tls) => Some(tls.get_ref().1.alpn_protocol()),
            Either::Right(_) => None,
        });
        let live = self.live.clone();
        if let Either::Left(tls) = &io
            && tls.get_ref().1.alpn_protocol() == Some(b"h2")
        {
            let limits = Http2Limits {
                handshake_timeout: settings.header_timeout,
                max_header_list_size: u32::try_from(settings.max_header_size).unwrap_or(u32::MAX),
                idle_timeout: settings.idle_timeout,
            };
            // Boxed, as for hyper below: the task spawned per stream moves a pointer.
            let answer = |request| Box::pin(answer(&live, request, conn, alt_svc.clone()));
            if let Err(e) = http2::serve(io, limits, &self.shutdown, answer).await {
                debug!("HTTP/2 connection from {peer}: {e}");
            }
            return;
        }
        let service = service_fn(move |request: Request<Incoming>| {
            // The pipeline's state machine is large; boxed, a pointer moves instead of
            // kilobytes being copied each time a request's task is spawned or polled. This
            // took memcpy from 65% of the CPU time to noise.
            let answer = Box::pin(answer(&live, request, conn, alt_svc.clone()));
            async move { Ok::<_, Infallible>(answer.await) }
        });
        if let Err(e) = serve_connection(TokioIo::new(io), service, limits, &self.shutdown).await {
            debug!("connection from {peer}: {e}");
        }
    }
}

/// Answers one viewer request: a CA's http-01 validation while one is open, otherwise the
/// edge current when the request arrived, which it runs on to its end; Alt-Svc added when
/// this port speaks HTTP/3.
fn answer<B>(
    live: &Live,
    request: Request<B>,
    conn: Conn,
    alt_svc: Option<http::HeaderValue>,
) -> impl Future<Output = Response<Body>> + Send + use<B>
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<super::body::BodyError>,
{
    let challenge = live
        .acme()
        .and_then(|acme| http_challenge(acme, request.uri().path()));
    let edge: Arc<Edge> = live.edge();
    let acme = live.acme().cloned();
    async move {
        if let Some(response) = challenge {
            return response;
        }
        let mut response =
            if super::healthz::wanted(&edge, request.method(), request.uri(), request.headers()) {
                super::healthz::answer(&edge, acme.as_deref(), request.uri().query()).await
            } else {
                edge.handle(request, conn).await
            };
        if let Some(alt_svc) = alt_svc {
            response
                .headers_mut()
                .insert(http::header::ALT_SVC, alt_svc);
        }
        response
    }
}

/// The answer to a CA's http-01 validation of `path` (RFC 8555 §8.3), while that challenge
/// is open: before any distribution, as the CA asks on plain HTTP for any host.
fn http_challenge(acme: &AcmeCerts, path: &str) -> Option<Response<Body>> {
    let token = path.strip_prefix(HTTP_CHALLENGE_PREFIX)?;
    let key_authorization = acme.http_challenge(token)?;
    let mut response = Response::new(body::full(Bytes::from(key_authorization)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/octet-stream"),
    );
    Some(response)
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
