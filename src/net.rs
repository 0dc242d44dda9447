//! Socket set-up shared by every server, listener sets that reloads change, the HTTP serve
//! loop of the CDN and the stream API, the per-client admission and accept loop of DNS
//! over TCP and the control listeners, bearer-token checks for control endpoints, and
//! batched UDP receives and sends.

pub mod accept;
pub mod admission;
pub mod bearer;
pub mod http;
pub mod listeners;
pub mod tls;
pub mod udp_batch;

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// A non-blocking TCP listener on `addr`: IPv6 sockets are IPv6-only (so `[::]` and
/// `0.0.0.0` can be listed side by side), and addresses are reusable right after a restart.
///
/// # Errors
/// The OS refused to create or bind the socket.
pub fn tcp_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// [`tcp_listener`] and the address it got (the port filled in when `addr` said 0), as
/// [`listeners::ListenerSet`] binds.
///
/// # Errors
/// The OS refused to create or bind the socket.
pub fn bound_tcp_listener(addr: SocketAddr) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = tcp_listener(addr)?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Raises the soft limit on open files to the hard limit (often 1,024 against 524,288):
/// every connection and every large cached body holds a descriptor. Returns the soft limit
/// now in force, when it is known.
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            limit.current = limit.maximum;
            if let Err(e) = setrlimit(Resource::Nofile, limit) {
                tracing::debug!("cannot raise the open-file limit: {e}");
                return getrlimit(Resource::Nofile).current;
            }
        }
        limit.current
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}
