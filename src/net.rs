//! Socket set-up shared by every server.

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
