//! Transport: UDP (one SO_REUSEPORT socket per worker) and TCP per RFC 7766, with limits.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::responder::{MAX_MESSAGE, Transport, respond};
use super::snapshot::Snapshot;
use crate::config::DnsConfig;
use crate::geo::{GeoDb, GeoError};
use crate::health::{self, HealthCheckConfig, HealthTable};

/// Kernel receive buffer asked for each UDP socket, to ride out bursts.
const UDP_RECV_BUFFER: usize = 4 << 20;
/// Attempts at finding a port free for both UDP and TCP when the config asks for port 0.
const EPHEMERAL_ATTEMPTS: usize = 16;

/// Bound sockets, ready to serve.
pub struct DnsServer {
    snapshot: Arc<Snapshot>,
    health: Arc<HealthTable>,
    health_checks: Arc<[HealthCheckConfig]>,
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
    status: Vec<TcpListener>,
    addrs: Vec<SocketAddr>,
    status_addrs: Vec<SocketAddr>,
    tcp_idle_timeout: Duration,
    tcp_slots: Arc<Semaphore>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Geo(#[from] GeoError),
}

impl DnsServer {
    /// Opens the GeoIP databases, builds the snapshot and binds every listen address (UDP and
    /// TCP on the same port) and status address. Health checks start with [`DnsServer::run`].
    ///
    /// # Errors
    /// A database that cannot be opened, or an address that cannot be bound.
    pub fn bind(config: &DnsConfig) -> Result<DnsServer, StartError> {
        let geo = Arc::new(GeoDb::open(&config.geo)?);
        let health = Arc::new(HealthTable::new(&config.health_checks));
        let snapshot = Arc::new(Snapshot::build(config, health.clone(), geo));
        let mut server = DnsServer {
            snapshot,
            health,
            health_checks: config.health_checks.clone().into(),
            udp: Vec::new(),
            tcp: Vec::new(),
            status: Vec::new(),
            addrs: Vec::new(),
            status_addrs: Vec::new(),
            tcp_idle_timeout: config.tcp_idle_timeout,
            tcp_slots: Arc::new(Semaphore::new(config.tcp_max_connections)),
        };
        for &addr in &config.listen {
            let (udp, tcp, bound) = bind_pair(addr, config.workers)
                .map_err(|source| StartError::Bind { addr, source })?;
            info!("listening on udp {bound}");
            info!("listening on tcp {bound}");
            server.udp.extend(udp);
            server.tcp.push(tcp);
            server.addrs.push(bound);
        }
        for &addr in &config.status_listen {
            let listener = crate::net::tcp_listener(addr)
                .map_err(|source| StartError::Bind { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| StartError::Bind { addr, source })?;
            info!("listening on http {bound}");
            server.status.push(listener);
            server.status_addrs.push(bound);
        }
        Ok(server)
    }

    /// The DNS addresses actually bound (ports filled in when the config said 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The status (HTTP) addresses actually bound.
    pub fn status_addrs(&self) -> &[SocketAddr] {
        &self.status_addrs
    }

    /// Runs health checks and serves until `shutdown` is cancelled, then lets TCP
    /// connections finish their query.
    pub async fn run(self, shutdown: CancellationToken) {
        health::spawn_checks(
            self.health.clone(),
            self.health_checks.clone(),
            shutdown.clone(),
        );
        let mut tasks = JoinSet::new();
        for listener in self.status {
            tasks.spawn(health::status::serve(
                listener,
                self.health.clone(),
                shutdown.clone(),
            ));
        }
        for socket in self.udp {
            let snapshot = self.snapshot.clone();
            let token = shutdown.clone();
            tasks.spawn(async move {
                tokio::select! {
                    () = token.cancelled() => {}
                    () = serve_udp(socket, snapshot) => {}
                }
            });
        }
        for listener in self.tcp {
            let ctx = TcpContext {
                snapshot: self.snapshot.clone(),
                idle_timeout: self.tcp_idle_timeout,
                slots: self.tcp_slots.clone(),
                shutdown: shutdown.clone(),
            };
            tasks.spawn(serve_tcp(listener, ctx));
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// Binds UDP socket(s) and a TCP listener on one port, retrying when `addr` has port 0 and
/// the kernel's UDP choice is taken for TCP.
fn bind_pair(
    addr: SocketAddr,
    workers: usize,
) -> io::Result<(Vec<UdpSocket>, TcpListener, SocketAddr)> {
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
                let mut udp = vec![UdpSocket::from_std(first.into())?];
                for _ in 1..workers {
                    udp.push(UdpSocket::from_std(udp_socket(bound, true)?.into())?);
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
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

async fn serve_udp(socket: UdpSocket, snapshot: Arc<Snapshot>) {
    let mut query = vec![0u8; MAX_MESSAGE];
    let mut response = Vec::with_capacity(4096);
    loop {
        let (len, peer) = match socket.recv_from(&mut query).await {
            Ok(received) => received,
            Err(e) => {
                debug!("udp receive: {e}");
                continue;
            }
        };
        if respond(
            &snapshot,
            &query[..len],
            peer.ip(),
            Transport::Udp,
            &mut response,
        ) && let Err(e) = socket.send_to(&response, peer).await
        {
            debug!("udp send to {peer}: {e}");
        }
    }
}

/// What every TCP connection task needs.
#[derive(Clone)]
struct TcpContext {
    snapshot: Arc<Snapshot>,
    idle_timeout: Duration,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
}

async fn serve_tcp(listener: TcpListener, ctx: TcpContext) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = ctx.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!("tcp accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = ctx.slots.clone().try_acquire_owned() else {
            debug!("tcp connection from {peer} refused: connection limit reached");
            continue;
        };
        let ctx = ctx.clone();
        connections.spawn(async move {
            if let Err(e) = serve_connection(stream, peer, &ctx).await {
                debug!("tcp {peer}: {e}");
            }
            drop(permit);
        });
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}

/// Answers length-prefixed queries in order until the client closes, goes idle, or we shut
/// down (RFC 7766 §6.2: several queries per connection; idle connections are closed).
async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: &TcpContext,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut query = vec![0u8; MAX_MESSAGE];
    let mut response = Vec::with_capacity(4096);
    let mut framed = Vec::with_capacity(4096);
    loop {
        let mut prefix = [0u8; 2];
        let read = tokio::select! {
            () = ctx.shutdown.cancelled() => return Ok(()),
            read = tokio::time::timeout(ctx.idle_timeout, stream.read_exact(&mut prefix)) => read,
        };
        match read {
            Err(_) => return Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(result) => result?,
        };
        let len = usize::from(u16::from_be_bytes(prefix));
        tokio::time::timeout(ctx.idle_timeout, stream.read_exact(&mut query[..len]))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "query body not received in time")
            })??;
        if !respond(
            &ctx.snapshot,
            &query[..len],
            peer.ip(),
            Transport::Tcp,
            &mut response,
        ) {
            continue;
        }
        framed.clear();
        framed.extend_from_slice(&(response.len() as u16).to_be_bytes());
        framed.extend_from_slice(&response);
        stream.write_all(&framed).await?;
    }
}
