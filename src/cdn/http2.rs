//! HTTP/2 (RFC 9113) for viewers that chose it by ALPN, served with the h2 crate directly
//! rather than through hyper's server, which cannot send interim responses: an origin's
//! 103 Early Hints (RFC 8297) reach these viewers before the final response, as over HTTP/3.
//! The settings are those hyper served with before (1 MiB stream and connection windows,
//! 200 concurrent streams, 400 KiB send buffer per stream, h2's reset-flood limits), plus the
//! configured header list size; each request runs as its own task, like hyper's. A
//! connection with no request for `idle_timeout` gets a GOAWAY; one whose peer stops
//! answering pings is closed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use h2::server::{Connection, SendResponse};
use h2::{Ping, PingPong, RecvStream, SendStream};
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body::{Body as _, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::body::{Body, BodyError};
use super::proxy::EarlyHints;

/// Flow-control windows: the protocol's 64 KiB default throttles a single download to
/// 64 KiB per round trip.
const WINDOW: u32 = 1024 * 1024;
const MAX_CONCURRENT_STREAMS: u32 = 200;
/// Response bytes buffered per stream beyond what the peer's window takes.
const MAX_SEND_BUFFER: usize = 400 * 1024;
/// Streams a client may make the server reset (malformed requests) before it is cut off.
const MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// Why a connection ended badly.
type ConnectionError = Box<dyn std::error::Error + Send + Sync>;

/// What an HTTP/2 connection may send and how long it may take.
#[derive(Debug, Clone, Copy)]
pub struct Http2Limits {
    /// The connection preface and settings must arrive within this, and pings be answered.
    pub handshake_timeout: Duration,
    pub max_header_list_size: u32,
    /// With no stream open for this long, the connection is told to go away.
    pub idle_timeout: Duration,
}

/// Serves HTTP/2 on `io` (TLS, ALPN h2) until the client is done, answering each request
/// with `answer`. At `shutdown`, a GOAWAY: no new request starts, those in flight finish.
///
/// # Errors
/// What broke the connection (a protocol error, a handshake timeout, a reset).
pub async fn serve<I, A, F>(
    io: I,
    limits: Http2Limits,
    shutdown: &CancellationToken,
    answer: A,
) -> Result<(), ConnectionError>
where
    I: AsyncRead + AsyncWrite + Unpin,
    A: Fn(Request<RequestBody>) -> F,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let handshake = h2::server::Builder::new()
        .initial_window_size(WINDOW)
        .initial_connection_window_size(WINDOW)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
        .max_header_list_size(limits.max_header_list_size)
        .handshake::<_, Bytes>(io);
    let mut connection: Connection<I, Bytes> =
        match tokio::time::timeout(limits.handshake_timeout, handshake).await {
            Ok(connection) => connection?,
            Err(_) => {
                let timeout = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no HTTP/2 preface within header_timeout",
                );
                return Err(Box::new(timeout));
            }
        };
    let pings = connection.ping_pong();
    let (interval, timeout) = (limits.idle_timeout, limits.handshake_timeout);
    let mut pings = std::pin::pin!(async move {
        match pings {
            Some(pings) => answers_pings(pings, interval, timeout).await,
            None => std::future::pending().await,
        }
    });
    let mut idle = tokio::time::interval(limits.idle_timeout);
    idle.reset();
    let mut requested = false;
    let mut going_away = false;
    loop {
        tokio::select! {
            accepted = connection.accept() => match accepted {
                Some(Ok((request, respond))) => {
                    requested = true;
                    let head = request.method() == Method::HEAD;
                    let length = content_length(request.headers());
                    let mut request = request.map(|stream| RequestBody::new(stream, length));
                    // The origin's 103s for this request come back through here.
                    let (hints, hinted) = EarlyHints::channel();
                    request.extensions_mut().insert(hints);
                    tokio::spawn(stream(answer(request), hinted, respond, head));
                }
                Some(Err(e)) => return Err(Box::new(e)),
                None => return Ok(()),
            },
            () = shutdown.cancelled(), if !going_away => {
                going_away = true;
                connection.graceful_shutdown();
            }
            _ = idle.tick(), if !going_away => {
                if !requested && !connection.has_streams() {
                    going_away = true;
                    connection.graceful_shutdown();
                }
                requested = false;
            }
            () = &mut pings => {
                debug!("HTTP/2 peer stopped answering pings");
                connection.abrupt_shutdown(h2::Reason::NO_ERROR);
                // Polled once more, the connection sends the GOAWAY and ends.
                return Ok(connection.accept().await.transpose().map(drop)?);
            }
        }
    }
}

/// Pings the peer every `interval`; returns when one is not answered within `timeout`.
async fn answers_pings(mut pings: PingPong, interval: Duration, timeout: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        match tokio::time::timeout(timeout, pings.ping(Ping::opaque())).await {
            Ok(Ok(_pong)) => {}
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// One request: the origin's 103s as they come, then the response streamed back under
/// the peer's flow control. A stream the client resets stops being answered.
async fn stream<F>(
    answer: F,
    mut hinted: mpsc::UnboundedReceiver<HeaderMap>,
    mut respond: SendResponse<Bytes>,
    head: bool,
) where
    F: Future<Output = Response<Body>>,
{
    let mut answer = std::pin::pin!(answer);
    let response = loop {
        tokio::select! {
            biased;
            Some(headers) = hinted.recv() => early_hints(&mut respond, headers),
            response = &mut answer => break response,
            _ = std::future::poll_fn(|cx| respond.poll_reset(cx)) => return,
        }
    };
    // Hints that came with the final response still go before it.
    while let Ok(headers) = hinted.try_recv() {
        early_hints(&mut respond, headers);
    }
    if let Err(e) = send_response(respond, response, head).await {
        debug!("HTTP/2 response: {e}");
    }
}

fn early_hints(respond: &mut SendResponse<Bytes>, headers: HeaderMap) {
    let mut interim = Response::new(());
    *interim.status_mut() = StatusCode::EARLY_HINTS;
    *interim.headers_mut() = without_connection_fields(headers);
    if let Err(e) = respond.send_informational(interim) {
        debug!("HTTP/2 103: {e}");
    }
}

/// Fields RFC 9113 §8.2.2 forbids in HTTP/2 (h2 refuses to send them).
fn without_connection_fields(mut headers: HeaderMap) -> HeaderMap {
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::HeaderName::from_static("keep-alive"),
        header::HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
    if headers.get(header::TE).is_some_and(|te| te != "trailers") {
        headers.remove(header::TE);
    }
    headers
}

/// Sends the head (with Date, and Content-Length when the body's size is known), then the
/// body's frames as the peer's window allows.
async fn send_response(
    mut respond: SendResponse<Bytes>,
    response: Response<Body>,
    head: bool,
) -> Result<(), BodyError> {
    let (mut parts, mut body) = response.into_parts();
    parts.headers = without_connection_fields(parts.headers);
    super::date::add_if_missing(&mut parts.headers);
    // A HEAD's empty body says nothing of the length of the representation.
    if let Some(length) = body.size_hint().exact()
        && !head
        && !matches!(
            parts.status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        )
        && !parts.headers.contains_key(header::CONTENT_LENGTH)
    {
        parts.headers.insert(header::CONTENT_LENGTH, length.into());
    }
    let empty = body.is_end_stream();
    let mut send = respond.send_response(Response::from_parts(parts, ()), empty)?;
    if empty {
        return Ok(());
    }
    loop {
        send.reserve_capacity(1);
        let frame = match std::future::poll_fn(|cx| poll_next(&mut send, &mut body, cx)).await {
            Ok(frame) => frame,
            Err(e) => {
                send.send_reset(h2::Reason::INTERNAL_ERROR);
                return Err(e);
            }
        };
        let Some(frame) = frame else {
            send.send_data(Bytes::new(), true)?;
            return Ok(());
        };
        match frame.into_data() {
            Ok(data) => {
                let last = body.is_end_stream();
                send.send_data(data, last)?;
                if last {
                    return Ok(());
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    send.send_trailers(trailers)?;
                    return Ok(());
                }
            }
        }
    }
}

/// The body's next frame once the stream has room for it in its send buffer, so a slow
/// viewer holds the origin back instead of filling memory; an error once the viewer
/// resets the stream or the body fails.
fn poll_next(
    send: &mut SendStream<Bytes>,
    body: &mut Body,
    cx: &mut Context<'_>,
) -> Poll<Result<Option<Frame<Bytes>>, BodyError>> {
    if let Poll::Ready(reset) = send.poll_reset(cx) {
        return Poll::Ready(Err(match reset {
            Ok(reason) => format!("reset by the viewer: {reason}").into(),
            Err(e) => e.into(),
        }));
    }
    ready!(poll_room(send, cx))?;
    Pin::new(body).poll_frame(cx).map(Option::transpose)
}

/// Ready once the stream has send capacity (or failed).
fn poll_room(send: &mut SendStream<Bytes>, cx: &mut Context<'_>) -> Poll<Result<(), BodyError>> {
    while send.capacity() == 0 {
        match ready!(send.poll_capacity(cx)) {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Poll::Ready(Err(e.into())),
            None => return Poll::Ready(Err("the stream closed".into())),
        }
    }
    Poll::Ready(Ok(()))
}

/// The request's Content-Length, when it has one that parses (h2 checks the DATA against it).
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A request body read from its HTTP/2 stream, its window opened again as the pipeline
/// takes the data.
pub struct RequestBody {
    stream: RecvStream,
    /// Content-Length, when the request declared one.
    length: Option<u64>,
    data_done: bool,
    done: bool,
}

impl RequestBody {
    fn new(stream: RecvStream, length: Option<u64>) -> RequestBody {
        let done = stream.is_end_stream();
        RequestBody {
            stream,
            length,
            data_done: done,
            done,
        }
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if !self.data_done {
            match ready!(self.stream.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.stream.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                None => self.data_done = true,
            }
        }
        let trailers = ready!(self.stream.poll_trailers(cx));
        self.done = true;
        match trailers {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e.into()))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(length) => SizeHint::with_exact(length),
            None => SizeHint::default(),
        }
    }
}
