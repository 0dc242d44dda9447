//! DNS over UDP: a thread per socket (SO_REUSEPORT spreads clients over the sockets) that
//! takes every query waiting in one `recvmmsg` and sends their answers in one `sendmmsg`.
//! The request path is synchronous, so a thread of its own serves it with no scheduler
//! between the kernel and the answer. UPDATEs are handed to the runtime: they wait for the
//! journal's fsync.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use socket2::{SockAddr, Socket};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{Answerer, is_update};
use crate::dns::responder::{MAX_MESSAGE, Transport};
use crate::net::udp_batch::{Datagrams, Replies};

/// Queries taken (and answers sent) per system call at most.
const BATCH: usize = 32;
/// Room each answer buffer starts with; larger answers grow it once.
const ANSWER_CAPACITY: usize = 4096;
/// How long a receive waits before the thread looks whether it is to stop. Retiring the
/// socket wakes it at once ([`Stop`]); this bounds the wait should that wake be missed.
pub(super) const STOP_CHECK: Duration = Duration::from_millis(500);

/// Answers on `socket` (blocking, its read timeout [`STOP_CHECK`]) until `stop`
/// ([`Stop`]).
pub(super) fn serve(
    socket: Arc<Socket>,
    answerer: Answerer,
    stop: CancellationToken,
    runtime: Handle,
) {
    let mut datagrams = Datagrams::new(BATCH, MAX_MESSAGE);
    let mut replies = Replies::new(BATCH, ANSWER_CAPACITY);
    while !stop.is_cancelled() {
        let count = match datagrams.receive(&socket) {
            Ok(count) => count,
            Err(e) => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) {
                    debug!("udp receive: {e}");
                }
                continue;
            }
        };
        // Retired while waiting: what came since is for the address's next owner (or no one),
        // as if the socket had closed at once.
        if stop.is_cancelled() {
            break;
        }
        for i in 0..count {
            let (query, Some(peer)) = datagrams.get(i) else {
                continue;
            };
            if is_update(query) {
                update(&socket, &answerer, query, peer, &runtime);
                continue;
            }
            let out = replies.next_buffer();
            if answerer.answer(query, peer, Transport::Udp, out) && answerer.rate_limit(peer, out) {
                replies.keep(i);
            }
        }
        for e in replies.send(&socket, &datagrams) {
            debug!("udp send: {e}");
        }
    }
}

/// Journals and answers an UPDATE on the runtime, so queries go on meanwhile. At most
/// `UPDATES_IN_FLIGHT` at once; past that (a flood) requests are dropped, and the client
/// retries as for a lost datagram.
fn update(
    socket: &Arc<Socket>,
    answerer: &Answerer,
    request: &[u8],
    peer: SocketAddr,
    runtime: &Handle,
) {
    let Ok(permit) = answerer.updates.clone().try_acquire_owned() else {
        return;
    };
    let (socket, answerer, request) = (socket.clone(), answerer.clone(), request.to_vec());
    runtime.spawn(async move {
        let reply = answerer.update(&request, peer).await;
        drop(permit);
        // Never blocks the runtime: a full send buffer drops the reply, as the network may.
        if let Err(e) = socket.send_to_with_flags(&reply, &SockAddr::from(peer), libc::MSG_DONTWAIT)
        {
            debug!("udp send to {peer}: {e}");
        }
    });
}

/// Stops the threads serving a set of sockets when dropped: whether the address is retired
/// or the runtime drops the task holding it (a runtime waits for its blocking threads, so
/// they must end on their own). Linux wakes a blocked UDP receive on `shutdown` (though
/// that reports ENOTCONN), so they stop at once.
pub(super) struct Stop {
    sockets: Vec<Arc<Socket>>,
    token: CancellationToken,
}

impl Stop {
    /// Stops when dropped, and at once (no task in between) when `retire` is cancelled.
    pub(super) fn new(sockets: Vec<Arc<Socket>>, retire: &CancellationToken) -> Stop {
        Stop {
            sockets,
            token: retire.child_token(),
        }
    }

    /// What a serving thread watches.
    pub(super) fn token(&self) -> CancellationToken {
        self.token.clone()
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        self.token.cancel();
        for socket in &self.sockets {
            let _ = socket.shutdown(Shutdown::Read);
        }
    }
}
