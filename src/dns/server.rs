//! Transport: UDP (one SO_REUSEPORT socket and thread per worker, [`udp`]) and TCP per
//! RFC 7766, with limits:
//! TCP connections go through [`crate::net::admission`] (per-client cap, oldest-idle eviction)
//! and every malformed query is counted, never logged one by one.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};

use super::dnssec::{KeyError, attach_signers};
use super::malformed::{DEFAULT_SUMMARY_INTERVAL, MalformedCounters};
use super::metrics::DnsMetrics;
use super::reload::{self, Reloader, ZoneFacts, ZoneWatch};
use super::responder::{MAX_MESSAGE, Outcome, Transport, respond};

mod udp;
use super::snapshot::Snapshot;
use super::transfer::{Transfer, notify};
use super::update::{Dynamic, DynamicError};
use crate::config::DnsConfig;
use crate::geo::{GeoDb, GeoError};
use crate::health::HealthChecks;
use crate::health::status::{self, StatusLimits};
use crate::logs::query::QueryLog;
use crate::net::admission::{Admission, Limits, Ticket};
use crate::net::listeners::{BindError, ListenerSet};

/// Kernel receive buffer asked for each UDP socket, to ride out bursts.
const UDP_RECV_BUFFER: usize = 4 << 20;
/// UDP updates waiting at once for their group to be journaled; past that they are dropped.
const UPDATES_IN_FLIGHT: usize = 1024;
/// Attempts at finding a port free for both UDP and TCP when the config asks for port 0.
const EPHEMERAL_ATTEMPTS: usize = 16;

/// Bound sockets, ready to serve.
pub struct DnsServer {
    /// Swapped whole by reloads; each query loads it once.
    snapshot: Arc<ArcSwap<Snapshot>>,
    health: Arc<HealthChecks>,
    /// The config bound, kept for [`DnsServer::reload_from`] to compare reloads against.
    config: DnsConfig,
    reloader: Option<Reloader>,
    /// Set up with the reloader when `watch_zones` is on; run with the server.
    zone_watch: Option<ZoneWatch>,
    /// Cancelled at shutdown: stops health checks and refuses reloads.
    stop: CancellationToken,
    /// UDP and TCP on each `listen` address; reloads add and remove them.
    dns: Arc<ListenerSet<DnsSockets>>,
    status: Arc<ListenerSet<TcpListener>>,
    tcp_idle_timeout: Duration,
    /// Shared by every TCP listener: the caps hold across addresses.
    tcp_admission: Admission,
    malformed: Arc<MalformedCounters>,
    /// Shared with every snapshot and the status listener.
    metrics: Arc<DnsMetrics>,
    /// Dynamic updates' journals and net changes.
    dynamic: Arc<Dynamic>,
    timers: Timers,
}

/// Fixed intervals, shortened by tests so they need not wait out production values.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    /// How often a summary of malformed queries may be logged.
    pub malformed_summary: Duration,
    /// The status listener's connection caps and lifetime.
    pub status: StatusLimits,
}

impl Default for Timers {
    fn default() -> Timers {
        Timers {
            malformed_summary: DEFAULT_SUMMARY_INTERVAL,
            status: StatusLimits::default(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Geo(#[from] GeoError),
    #[error("dynamic updates: {0}")]
    Dynamic(#[from] DynamicError),
    #[error("DNSSEC keys: {0}")]
    Keys(#[from] KeyError),
}

/// The sockets of one DNS address: UDP (one per worker, blocking) and TCP on the same port.
pub(super) struct DnsSockets {
    udp: Vec<Arc<Socket>>,
    tcp: TcpListener,
}

/// Binds one `listen` address for [`ListenerSet`], logging what it got.
pub(super) fn bind_dns(addr: SocketAddr, workers: usize) -> io::Result<(DnsSockets, SocketAddr)> {
    let (udp, tcp, bound) = bind_pair(addr, workers)?;
    Ok((DnsSockets { udp, tcp }, bound))
}

impl DnsServer {
    /// Opens the GeoIP databases, builds the snapshot and binds every listen address (UDP and
    /// TCP on the same port) and status address. Health checks start with [`DnsServer::run`].
    ///
    /// # Errors
    /// A database that cannot be opened, or an address that cannot be bound.
    pub fn bind(config: &DnsConfig) -> Result<DnsServer, StartError> {
        let mut config = config.clone();
        attach_signers(&mut config, None)?;
        let config = &config;
        let geo = Arc::new(GeoDb::open(&config.geo)?);
        let stop = CancellationToken::new();
        let health = Arc::new(HealthChecks::new(&config.health_checks, stop.clone()));
        let metrics = Arc::new(DnsMetrics::default());
        let (dynamic, served) = Dynamic::open(config)?;
        let snapshot = Snapshot::build(&served, health.table(), geo, metrics.clone());
        snapshot.prepare_transfers();
        for zone in &config.zones {
            info!("serving zone {}", ZoneFacts::of(zone));
        }
        let workers = config.workers;
        let dns = ListenerSet::bind("udp+tcp", &config.listen, |addr| bind_dns(addr, workers))?;
        let status = ListenerSet::bind(
            "http",
            &config.status_listen,
            crate::net::bound_tcp_listener,
        )?;
        let server = DnsServer {
            snapshot: Arc::new(ArcSwap::from_pointee(snapshot)),
            health,
            config: config.clone(),
            reloader: None,
            zone_watch: None,
            stop,
            dns,
            status,
            tcp_idle_timeout: config.tcp_idle_timeout,
            tcp_admission: Admission::new(Limits {
                max_connections: config.tcp_max_connections,
                max_per_client: config.tcp_max_per_client,
            }),
            malformed: Arc::default(),
            metrics,
            dynamic: Arc::new(dynamic),
            timers: Timers::default(),
        };
        Ok(server)
    }

    /// The DNS addresses bound now (ports filled in when the config said 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.dns.bound()
    }

    /// The status (HTTP) addresses bound now.
    pub fn status_addrs(&self) -> Vec<SocketAddr> {
        self.status.bound()
    }

    /// Enables reloads (`POST /reload` on the status listener, and [`reload::spawn_on_sighup`])
    /// from the config file at `path`, which the bound config was read from. With
    /// `watch_zones`, the config and zone files are watched from now on, and changes reload
    /// once the server runs.
    pub fn reload_from(&mut self, path: PathBuf) -> Reloader {
        if self.config.watch_zones {
            match ZoneWatch::start(&path, &self.config) {
                Ok(watch) => self.zone_watch = Some(watch),
                Err(e) => error!(
                    "watch_zones: cannot watch files ({e}); reload with SIGHUP or POST /reload"
                ),
            }
        }
        let reloader = Reloader::new(reload::Parts {
            path,
            snapshot: self.snapshot.clone(),
            health: self.health.clone(),
            in_force: self.config.clone(),
            stop: self.stop.clone(),
            dns: self.dns.clone(),
            status: self.status.clone(),
            metrics: self.metrics.clone(),
            dynamic: self.dynamic.clone(),
        });
        self.reloader = Some(reloader.clone());
        reloader
    }

    /// Replaces the [`Timers`] (tests use short ones).
    pub fn set_timers(&mut self, timers: Timers) {
        self.timers = timers;
    }

    /// Runs health checks and serves until `shutdown` is cancelled, then lets TCP
    /// connections finish their query.
    pub async fn run(self, shutdown: CancellationToken) {
        self.health.start();
        notify::changed_zones(None, &self.snapshot.load());
        let mut tasks = JoinSet::new();
        let (stop, token) = (self.stop.clone(), shutdown.clone());
        tasks.spawn(async move {
            token.cancelled().await;
            stop.cancel();
        });
        let malformed = self.malformed.clone();
        let (interval, token) = (self.timers.malformed_summary, shutdown.clone());
        tasks.spawn(async move { malformed.log_summaries(interval, token).await });
        if let Some(aggregate) = self.metrics.top_names().aggregate(shutdown.clone()) {
            tasks.spawn(aggregate);
        }
        if let (Some(watch), Some(reloader)) = (self.zone_watch, self.reloader.clone()) {
            tasks.spawn(watch.run(reloader, shutdown.clone()));
        }
        // One admission for all status addresses, like the DNS listeners.
        let status_admission = Admission::new(self.timers.status.admission);
        let ctx = status::StatusContext {
            health: self.health.clone(),
            reloader: self.reloader.clone(),
            malformed: self.malformed.clone(),
            metrics: self.metrics.clone(),
            snapshot: self.snapshot.clone(),
            tcp_admission: self.tcp_admission.clone(),
            lifetime: self.timers.status.lifetime,
            shutdown: shutdown.clone(),
        };
        let (listeners, token) = (self.status.clone(), shutdown.clone());
        tasks.spawn(async move {
            listeners
                .serve(token, |listener, retire| {
                    status::serve(listener, status_admission.clone(), retire, ctx.clone())
                })
                .await;
        });
        let query_log = QueryLog::start(self.config.query_log.as_ref(), &self.snapshot);
        if let Some(log) = &query_log {
            self.metrics.watch_query_log(log.stats());
        }
        let ctx = TcpContext {
            answerer: Answerer {
                snapshot: self.snapshot.clone(),
                dynamic: self.dynamic.clone(),
                updates: Arc::new(tokio::sync::Semaphore::new(UPDATES_IN_FLIGHT)),
                malformed: self.malformed.clone(),
                query_log,
            },
            idle_timeout: self.tcp_idle_timeout,
            shutdown: shutdown.clone(),
        };
        let (listeners, admission) = (self.dns.clone(), self.tcp_admission.clone());
        tasks.spawn(async move {
            listeners
                .serve(shutdown, |sockets, retire| {
                    serve_address(sockets, admission.clone(), ctx.clone(), retire)
                })
                .await;
        });
        while tasks.join_next().await.is_some() {}
    }
}

/// Answers on one address's sockets until `retire` (a reload removed the address, or
/// shutdown): UDP stops at once, TCP stops accepting and lets its connections finish.
async fn serve_address(
    sockets: DnsSockets,
    admission: Admission,
    ctx: TcpContext,
    retire: CancellationToken,
) {
    let DnsSockets {
        udp: udp_sockets,
        tcp,
    } = sockets;
    let mut tasks = JoinSet::new();
    let stop = udp::Stop::new(udp_sockets.clone(), &retire);
    for socket in udp_sockets {
        let (answerer, token) = (ctx.answerer.clone(), stop.token());
        let runtime = tokio::runtime::Handle::current();
        tasks.spawn_blocking(move || udp::serve(socket, answerer, token, runtime));
    }
    let retired = retire.clone();
    tasks.spawn(async move {
        retired.cancelled().await;
        drop(stop);
    });
    tasks.spawn(crate::net::accept::serve(
        tcp,
        admission,
        retire,
        move |stream, peer, ticket| {
            let ctx = ctx.clone();
            async move {
                if let Err(e) = serve_connection(stream, peer, ticket, &ctx).await {
                    debug!("tcp {peer}: {e}");
                }
            }
        },
    ));
    while tasks.join_next().await.is_some() {}
}

/// Binds UDP socket(s) and a TCP listener on one port, retrying when `addr` has port 0 and
/// the kernel's UDP choice is taken for TCP.
fn bind_pair(
    addr: SocketAddr,
    workers: usize,
) -> io::Result<(Vec<Arc<Socket>>, TcpListener, SocketAddr)> {
    let mut last_error = None;
    let attempts = if addr.port() == 0 {
        EPHEMERAL_ATTEMPTS
    } else {
        1
    };
    for _ in 0..attempts {
        let first = udp_socket(addr, workers > 1)?;
        let bound = first
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("bound socket has no IP address"))?;
        match crate::net::tcp_listener(bound) {
            Ok(tcp) => {
                let mut udp = vec![Arc::new(first)];
                for _ in 1..workers {
                    udp.push(Arc::new(udp_socket(bound, true)?));
                }
                return Ok((udp, tcp, bound));
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
}

fn udp_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    // A smaller buffer than asked for is fine; the kernel caps it at net.core.rmem_max.
    let _ = socket.set_recv_buffer_size(UDP_RECV_BUFFER);
    // Blocking: a thread of its own receives on it (see `udp`).
    socket.set_read_timeout(Some(udp::STOP_CHECK))?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// The request path both transports share: respond, and count what was malformed.
#[derive(Clone)]
struct Answerer {
    snapshot: Arc<ArcSwap<Snapshot>>,
    dynamic: Arc<Dynamic>,
    /// Permits for UDP updates being processed.
    updates: Arc<tokio::sync::Semaphore>,
    malformed: Arc<MalformedCounters>,
    /// `query_log`; None (off) costs one branch per query.
    query_log: Option<QueryLog>,
}

impl Answerer {
    /// Answers an UPDATE (RFC 2136) from `peer`.
    async fn update(&self, request: &[u8], peer: SocketAddr) -> Vec<u8> {
        self.dynamic
            .update(request, peer.ip(), &self.snapshot)
            .await
    }

    /// Writes the response into `out`; false when nothing is to be sent.
    fn answer(
        &self,
        query: &[u8],
        peer: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> bool {
        let logged = self.query_log.as_ref().and_then(QueryLog::sample);
        // One load per query: the whole answer comes from one snapshot, old or new.
        let snapshot = self.snapshot.load();
        let outcome = respond(&snapshot, query, peer.ip(), transport, out);
        if let Outcome::Malformed(reason) = outcome {
            self.malformed.record(reason);
        }
        if let Some(logged) = logged
            && outcome == Outcome::Answered
        {
            logged.push(query, peer, transport, out);
        }
        outcome.has_reply()
    }

    /// Response rate limiting (UDP only): false to drop `response`; a slip truncates it.
    fn rate_limit(&self, peer: SocketAddr, response: &mut Vec<u8>) -> bool {
        let snapshot = self.snapshot.load();
        (snapshot.rrl.as_ref()).is_none_or(|rrl| rrl.admit(peer.ip(), response, &snapshot.metrics))
    }
}

/// An UPDATE request (opcode 5, QR clear).
fn is_update(query: &[u8]) -> bool {
    query.len() >= 12 && query[2] & 0x80 == 0 && (query[2] >> 3) & 0x0f == 5
}

/// What every TCP connection task needs.
#[derive(Clone)]
struct TcpContext {
    answerer: Answerer,
    idle_timeout: Duration,
    shutdown: CancellationToken,
}

/// Answers length-prefixed queries in order until the client closes, goes idle, is evicted
/// to make room for another client, or we shut down (RFC 7766 §6.2: several queries per
/// connection; idle connections are closed). The connection is idle while a query is still
/// arriving, and busy (not evictable) from a complete query until its answer is written.
async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    ctx: &TcpContext,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut query = vec![0u8; MAX_MESSAGE];
    let mut response = Vec::with_capacity(4096);
    let mut framed = Vec::with_capacity(4096);
    loop {
        let read = tokio::select! {
            // A query already waiting (pipelined) is answered before anything else.
            biased;
            read = tokio::time::timeout(ctx.idle_timeout, read_query(&mut stream, &mut query)) => read,
            () = ticket.evicted() => break,
            () = ctx.shutdown.cancelled() => break,
        };
        let len = match read {
            Err(_) => break,
            Ok(Ok(Some(len))) => len,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(e)) => return Err(e),
        };
        if !ticket.start_query() {
            break;
        }
        if is_update(&query[..len]) {
            let reply = ctx.answerer.update(&query[..len], peer).await;
            write_framed(&mut stream, &mut framed, &reply, ctx.idle_timeout).await?;
            ticket.finish_query();
            continue;
        }
        if let Some(transfer) = Transfer::parse(&query[..len]) {
            let history = match transfer.ixfr_serial() {
                Some((zone, serial)) => ctx.answerer.dynamic.changes_since(zone, serial).await,
                None => None,
            };
            let snapshot = ctx.answerer.snapshot.load_full();
            let request = query[..len].to_vec();
            // Off the query threads: encoding a version not yet kept, or signing every
            // message, takes milliseconds for a large zone.
            let messages = tokio::task::spawn_blocking(move || {
                transfer.answer(&snapshot, &request, peer.ip(), history.as_deref())
            })
            .await
            .map_err(io::Error::other)?;
            for message in &messages.0 {
                write_framed(&mut stream, &mut framed, message, ctx.idle_timeout).await?;
            }
            ticket.finish_query();
            continue;
        }
        if ctx
            .answerer
            .answer(&query[..len], peer, Transport::Tcp, &mut response)
        {
            write_framed(&mut stream, &mut framed, &response, ctx.idle_timeout).await?;
        }
        ticket.finish_query();
    }
    // Closing our side with FIN, not a reset: nothing of the client's is left unread.
    stream.shutdown().await
}

/// Writes `message` with its length prefix (through `framed`, one write). A client that does
/// not read its answers must not hold a busy slot for ever: each write has `timeout`.
async fn write_framed(
    stream: &mut TcpStream,
    framed: &mut Vec<u8>,
    message: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    framed.clear();
    framed.extend_from_slice(&(message.len() as u16).to_be_bytes());
    framed.extend_from_slice(message);
    tokio::time::timeout(timeout, stream.write_all(framed))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "answer not taken in time"))?
}

/// Reads one length-prefixed query into `buf`; its length, or `None` at a clean end of
/// stream before a new query.
async fn read_query(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let mut prefix = [0u8; 2];
    match stream.read_exact(&mut prefix).await {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        result => result?,
    };
    let len = usize::from(u16::from_be_bytes(prefix));
    stream.read_exact(&mut buf[..len]).await?;
    Ok(Some(len))
}
