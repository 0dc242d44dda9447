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

use arc_swap::ArcSwapOption;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::api::Api;
use super::log::{FsyncPolicy, Log, LogError, LogOptions};
use super::reload::{self, StreamControl};
use crate::acme::AcmeCerts;
use crate::analytics::Analytics;
use crate::cdn::body::Body;
use crate::config::nats::Backend;
use crate::config::{AnalyticsConfig, CdnConfig, StreamConfig};
use crate::metrics::Collector;
use crate::net::http::{HttpConnections, HttpLimits, serve_connection};
use crate::net::listeners::{BindError, ListenerSet};
use crate::net::tls::{self, TlsError};

/// Headers within 10 s; requests are at most 5 MiB of records, base64-inflated, and 64 KiB
/// of headers is far more than the SDKs send.
const LIMITS: HttpLimits = HttpLimits {
    header_timeout: Duration::from_secs(10),
    max_header_size: 64 << 10,
    h2_keep_alive: None,
};
const MAX_CONNECTIONS: usize = 4096;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the stream service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StreamStartError {
    #[error(transparent)]
    Bind(#[from] BindError),
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
    #[error(transparent)]
    Nats(#[from] crate::stream::nats::NatsError),
}

/// How often a mirror's writes reach the disk (see [`StreamServer::bind`]).
const MIRROR_SYNC: Duration = Duration::from_secs(1);

/// The open log and the bound API listeners.
pub struct StreamServer {
    log: Arc<Log>,
    api: Arc<Api>,
    /// SQL over the streams, under `/analytics/`, when `[analytics]` is configured.
    analytics: Option<Arc<Analytics>>,
    /// Where records are kept; see [`StreamServer::connect_upstream`].
    backend: Backend,
    /// `[stream] data_dir`, fixed at start: analytics checkpoints go under it.
    data_dir: PathBuf,
    /// The streams, deliveries, listeners and TLS setup in force; reloads change them.
    control: Arc<StreamControl>,
}

/// The API's plain and HTTPS listeners, and the TLS setup HTTPS connections are accepted
/// with (certificates re-read on reload).
pub(super) struct StreamListeners {
    pub http: Arc<ListenerSet<TcpListener>>,
    pub https: Arc<ListenerSet<TcpListener>>,
    pub tls: ArcSwapOption<rustls::ServerConfig>,
    /// The CDN's ACME certificates, which every TLS setup of a reload serves too.
    pub acme: Option<Arc<AcmeCerts>>,
}

/// The TLS setup the API's HTTPS listeners need: the CDN's certificates (written first
/// when dev certificates are allowed), or none without HTTPS listeners.
///
/// # Errors
/// A certificate that cannot be made or loaded.
pub(super) fn server_tls(
    config: &StreamConfig,
    cdn: Option<&CdnConfig>,
    acme: Option<&Arc<AcmeCerts>>,
) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
    match cdn {
        Some(cdn) if !config.https_listen.is_empty() => {
            if cdn.generate_dev_certs {
                tls::generate_missing(cdn)?;
            }
            Ok(Some(tls::server_config(cdn, acme)?))
        }
        _ => Ok(None),
    }
}

impl StreamServer {
    /// Opens (and recovers) the log and binds every listener. `cdn` supplies the
    /// certificates for HTTPS, with the CDN's ACME certificates in `acme`.
    ///
    /// # Errors
    /// The log cannot be opened, a certificate is unusable, or an address is in use.
    pub fn bind(
        config: &StreamConfig,
        cdn: Option<&CdnConfig>,
        acme: Option<Arc<AcmeCerts>>,
    ) -> Result<StreamServer, StreamStartError> {
        let mirror = config.backend != Backend::Local;
        let log = Log::open(
            LogOptions {
                data_dir: config.data_dir.clone(),
                // The cluster keeps the records and a mirror that may have lost writes is
                // mirrored again (see `LogOptions::mirror`): syncing each write buys nothing.
                fsync: if mirror {
                    FsyncPolicy::Interval(MIRROR_SYNC)
                } else {
                    config.fsync
                },
                segment_size: config.segment_size,
                mirror,
            },
            &config.streams,
        )
        .map_err(|source| StreamStartError::Log {
            dir: config.data_dir.display().to_string(),
            source,
        })?;
        let tls = server_tls(config, cdn, acme.as_ref())?;
        let delivery_locks = reload::lock_folders(&config.deliveries, &[])?;
        let delivery_stats = log.deliveries().clone();
        let api = Arc::new(
            Api::new(log.clone(), config, delivery_stats.clone()).map_err(StreamStartError::Key)?,
        );
        let listeners = StreamListeners {
            http: ListenerSet::bind(
                "stream API http",
                &config.listen,
                crate::net::bound_tcp_listener,
            )?,
            https: ListenerSet::bind(
                "stream API https",
                &config.https_listen,
                crate::net::bound_tcp_listener,
            )?,
            tls: ArcSwapOption::new(tls),
            acme,
        };
        Ok(StreamServer {
            log: log.clone(),
            api,
            analytics: None,
            backend: config.backend.clone(),
            data_dir: config.data_dir.clone(),
            control: Arc::new(StreamControl::new(
                log,
                delivery_stats,
                config.clone(),
                delivery_locks,
                listeners,
            )),
        })
    }

    /// With `backend = "nats"`: connects to the cluster, creates each shard's JetStream
    /// stream and starts mirroring them (until `stop`); from then on puts go to the cluster.
    /// Before anything is served or written. Nothing to do for the local backend.
    ///
    /// # Errors
    /// The cluster cannot be reached, or a JetStream stream cannot be created.
    pub async fn connect_upstream(&self, stop: &CancellationToken) -> Result<(), StreamStartError> {
        let Backend::Nats(config) = &self.backend else {
            return Ok(());
        };
        let cluster = Arc::new(crate::stream::nats::Cluster::connect(config).await?);
        self.api.share_iterator_key(cluster.iterator_key().await?);
        for stream in self.log.streams() {
            cluster.attach(&self.log, stream, stop).await?;
        }
        Ok(())
    }

    /// Serves `/analytics/` on the API's listeners as `config` says.
    ///
    /// # Errors
    /// The analytics runtime cannot start.
    pub fn serve_analytics(&mut self, config: &AnalyticsConfig) -> std::io::Result<()> {
        let analytics = Analytics::new(self.log.clone(), config, self.data_dir.clone())?;
        self.analytics = Some(Arc::new(analytics));
        Ok(())
    }

    /// What applies a reloaded `[stream]`.
    pub fn control(&self) -> Arc<StreamControl> {
        self.control.clone()
    }

    /// Makes the stream side's metrics for a scrape (the CDN admin listener serves them
    /// with its own).
    pub fn metrics_source(&self) -> impl Fn() -> Box<dyn Collector> + Send + Sync + 'static {
        let api = self.api.clone();
        move || api.collector()
    }

    /// The open log, e.g. for the CDN's real-time logs.
    /// Analytics, when `[analytics]` is served.
    pub fn analytics(&self) -> Option<&Arc<Analytics>> {
        self.analytics.as_ref()
    }

    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// The plain HTTP addresses bound now (ports filled in when the config said 0).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.control.listeners().http.bound()
    }

    pub fn https_addrs(&self) -> Vec<SocketAddr> {
        self.control.listeners().https.bound()
    }

    /// Serves until `shutdown`; then drains requests and flushes deliveries. The log stays
    /// open for other writers (the CDN's real-time logs); [`Log::close`] it afterwards.
    pub async fn run(self, shutdown: CancellationToken) {
        let maintenance = self.log.spawn_maintenance(shutdown.clone());
        self.control.start(shutdown.clone());
        if let Some(analytics) = &self.analytics {
            analytics.start_applications(&shutdown);
        }
        let connections = Arc::new(HttpConnections::new("stream API", MAX_CONNECTIONS));
        let mut accepting = JoinSet::new();
        for https in [false, true] {
            let ctx = Arc::new(Accepting {
                https,
                control: self.control.clone(),
                api: self.api.clone(),
                analytics: self.analytics.clone(),
                shutdown: shutdown.clone(),
            });
            let (control, connections) = (self.control.clone(), connections.clone());
            let token = shutdown.clone();
            accepting.spawn(async move {
                let listeners = control.listeners();
                let set = if https {
                    &listeners.https
                } else {
                    &listeners.http
                };
                set.serve(token, |listener, retire| {
                    let (connections, ctx) = (connections.clone(), ctx.clone());
                    async move {
                        connections
                            .accept(listener, retire, |stream, peer| {
                                ctx.clone().connection(stream, peer)
                            })
                            .await;
                    }
                })
                .await;
            });
        }
        while accepting.join_next().await.is_some() {}
        connections.drain(DRAIN_TIMEOUT).await;
        self.control.join().await;
        let _ = maintenance.await;
    }
}

/// What every API connection of one kind (plain or HTTPS) needs.
struct Accepting {
    https: bool,
    /// Holds the TLS setup in force.
    control: Arc<StreamControl>,
    api: Arc<Api>,
    analytics: Option<Arc<Analytics>>,
    shutdown: CancellationToken,
}

impl Accepting {
    async fn connection(self: Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        let io = if self.https {
            // The TLS setup in force when the connection arrived (a reload may renew it).
            let Some(tls) = self.control.listeners().tls.load_full() else {
                return debug!("stream API connection from {peer} closed: no TLS setup");
            };
            let accept = TlsAcceptor::from(tls).accept(stream);
            match tokio::time::timeout(LIMITS.header_timeout, accept).await {
                Ok(Ok(tls)) => Either::Left(tls),
                Ok(Err(e)) => return debug!("stream API TLS handshake with {peer}: {e}"),
                Err(_) => return debug!("stream API TLS handshake with {peer} timed out"),
            }
        } else {
            Either::Right(stream)
        };
        let (api, analytics) = (self.api.clone(), self.analytics.clone());
        let service = service_fn(move |request: Request<Incoming>| {
            let (api, analytics) = (api.clone(), analytics.clone());
            async move {
                let response = if request.uri().path().starts_with("/analytics/") {
                    analytics_request(&api, analytics.as_deref(), request, peer).await
                } else {
                    api.handle(request, peer)
                        .await
                        .map(|body| body.map_err(|never| match never {}).boxed())
                };
                Ok::<_, Infallible>(response)
            }
        });
        if let Err(e) = serve_connection(TokioIo::new(io), service, LIMITS, &self.shutdown).await {
            debug!("stream API connection from {peer}: {e}");
        }
    }
}

/// An `/analytics/` request: authenticated as the API's own, then answered by analytics
/// (404 when `[analytics]` is not configured).
async fn analytics_request(
    api: &Api,
    analytics: Option<&Analytics>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let Some(analytics) = analytics else {
        return crate::analytics::api::error(
            StatusCode::NOT_FOUND,
            "analytics is off: this process has no [analytics] section",
        );
    };
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    match api.authenticate(request, peer).await {
        Ok(body) => crate::analytics::api::handle(analytics, &method, &path, body).await,
        Err(e) => crate::analytics::api::error(e.status(), &e.message),
    }
}
