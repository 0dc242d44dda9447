//! The accept loop of the listeners that admit per client (DNS over TCP, the DNS status
//! listener and the CDN admin listener): every connection goes through [`Admission`], runs
//! as its own task, and is waited for when the loop ends.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::admission::{Admission, Ticket};

/// Pause after a failed accept (usually out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts on `listener` until `stop` (shutdown, or a reload that removed the address),
/// running `handle` for each admitted connection; refused connections are closed at once.
/// The listener closes as soon as `stop` comes; the call returns when every connection task
/// has finished, so handlers must watch for shutdown themselves.
pub async fn serve<H, F>(
    listener: TcpListener,
    admission: Admission,
    stop: CancellationToken,
    handle: H,
) where
    H: Fn(TcpStream, SocketAddr, Ticket) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!("accept on {:?}: {e}", listener.local_addr().ok());
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        match admission.admit(peer.ip()) {
            Ok(ticket) => {
                connections.spawn(handle(stream, peer, ticket));
            }
            Err(refusal) => debug!("connection from {peer} closed: {refusal}"),
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}
