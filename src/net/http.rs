//! The HTTP serving the CDN's viewer listeners and the stream API share: an accept loop with
//! a connection cap and a pause after failed accepts (out of file descriptors, say), each
//! connection served by hyper-util's auto builder (HTTP/1.1 and HTTP/2) with header limits
//! and timeouts, a graceful end at shutdown, and a bounded drain of what is still open.

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

/// Pause after a failed accept, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

type BoxError = Box<dyn StdError + Send + Sync>;

/// The connections of one server, over all its listeners: capped, and tracked so shutdown
/// can wait for them.
pub struct HttpConnections {
    /// Who the log lines are about ("stream API", ...).
    what: &'static str,
    max: usize,
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
}

/// What one connection may send and how long it may take.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// A request's headers (and a TLS handshake) must arrive within this.
    pub header_timeout: Duration,
    pub max_header_size: usize,
    /// HTTP/2 pings this often, closing a connection whose peer stops answering them.
    pub h2_keep_alive: Option<Duration>,
}

impl HttpConnections {
    /// At most `max` connections open at once, over every listener this accepts on.
    pub fn new(what: &'static str, max: usize) -> HttpConnections {
        HttpConnections {
            what,
            max,
            slots: Arc::new(Semaphore::new(max)),
            tracker: TaskTracker::new(),
        }
    }

    /// Accepts on `listener` until `retire` (a reload removed the address, or shutdown),
    /// running `handle` for each connection as a tracked task; past the cap, connections
    /// are closed at once. The listener closes on return; its connections run on.
    pub async fn accept<H, F>(&self, listener: TcpListener, retire: CancellationToken, handle: H)
    where
        H: Fn(TcpStream, SocketAddr) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        loop {
            let accepted = tokio::select! {
                () = retire.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!("{} accept: {e}", self.what);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                debug!(
                    "{} connection from {peer} refused: {} open",
                    self.what, self.max
                );
                continue;
            };
            let _ = stream.set_nodelay(true);
            let connection = handle(stream, peer);
            self.tracker.spawn(async move {
                connection.await;
                drop(permit);
            });
        }
    }

    /// Once every accept loop has returned: waits up to `timeout` for the open connections
    /// (told to finish by the shutdown token [`serve_connection`] watches).
    pub async fn drain(&self, timeout: Duration) {
        self.tracker.close();
        if tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_err()
        {
            warn!(
                "{} connections still open after {timeout:?}; closing them",
                self.what
            );
        }
    }
}

/// Serves HTTP/1.1 or HTTP/2 (as the client speaks) on `io` with `service` until the client
/// is done. At `shutdown` no new request starts on it (HTTP/2 GOAWAY; HTTP/1.1 closes after
/// the response under way), while those in flight finish.
///
/// # Errors
/// What broke the connection (a protocol error, a timeout, a reset).
pub async fn serve_connection<I, S, B>(
    io: I,
    service: S,
    limits: HttpLimits,
    shutdown: &CancellationToken,
) -> Result<(), BoxError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_size.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_size).unwrap_or(u32::MAX))
        .keep_alive_interval(limits.h2_keep_alive)
        .keep_alive_timeout(limits.header_timeout);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    }
}
