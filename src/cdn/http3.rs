//! HTTP/3 (RFC 9114) on the UDP side of each HTTPS listener (`[cdn] http3 = true`): QUIC by
//! quinn, HTTP/3 framing by h3, and every request through the same [`Edge::handle`] as
//! HTTP/1.1 and HTTP/2, so distributions, behaviors, the cache, signed URLs, geo rules and
//! real-time logs are the same. Certificates come from the live TLS setup at each
//! handshake (reloads and ACME renewals included). Limits mirror TCP's: a handshake and a
//! request's headers within `header_timeout`, `idle_timeout`, `http3_max_streams`
//! concurrent requests per connection, `max_connections` connections per endpoint. 0-RTT
//! only with `http3_0rtt = true`, and then only GET and HEAD are answered until the
//! handshake completes: early data can be replayed by anyone who saw it, and a replay never
//! completes a handshake (RFC 8470's 425 Too Early for the rest).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use h3::server::{RequestResolver, RequestStream};
use http::{Request, Response};
use http_body::Frame;
use http_body_util::BodyExt;
use quinn::crypto::rustls::QuicServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::body::BodyError;
use super::proxy::{Conn, EarlyHints};
use super::realtime_log::TlsNames;
use super::reload::Live;
use crate::config::CdnConfig;

/// How long open HTTP/3 connections get to finish their requests after a GOAWAY.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The only cipher suite offered over QUIC: every QUIC stack has it (it protects the
/// Initial packets), and the real-time log can then name what was negotiated.
const CIPHER: &str = "TLS_AES_128_GCM_SHA256";

type H3Connection = h3::server::Connection<h3_quinn::Connection, Bytes>;
type H3Stream<S> = RequestStream<S, Bytes>;

/// Why an HTTP/3 endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum Http3Error {
    #[error("TLS for QUIC: {0}")]
    Tls(String),
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The certificate of the TLS setup in force at each handshake.
struct LiveResolver(Arc<Live>);

impl std::fmt::Debug for LiveResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveResolver")
    }
}

impl ResolvesServerCert for LiveResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.tls()?.cert_resolver.resolve(hello)
    }
}

/// One QUIC endpoint serving HTTP/3 for the HTTPS listener on the same address.
pub struct Http3Endpoint {
    endpoint: quinn::Endpoint,
    live: Arc<Live>,
    /// Connection slots, `max_connections` of them.
    slots: Arc<Semaphore>,
}

impl Http3Endpoint {
    /// Binds UDP `addr` (the HTTPS listener's address, port included).
    ///
    /// # Errors
    /// The TLS setup for QUIC cannot be made or the address cannot be bound.
    pub fn bind(addr: SocketAddr, live: Arc<Live>) -> Result<Http3Endpoint, Http3Error> {
        let edge = live.edge();
        let settings = edge.config();
        let server = server_config(&live, settings)?;
        let socket =
            std::net::UdpSocket::bind(addr).map_err(|source| Http3Error::Bind { addr, source })?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| Http3Error::Bind { addr, source })?;
        Ok(Http3Endpoint {
            endpoint,
            slots: Arc::new(Semaphore::new(settings.max_connections)),
            live,
        })
    }

    /// Serves until `retire` (the listener was removed, or shutdown); then sends GOAWAY on
    /// every connection, waits for their requests (bounded) and closes.
    pub async fn serve(self, retire: CancellationToken) {
        let local = self.endpoint.local_addr().ok();
        info!(addr = ?local, "serving HTTP/3");
        let tracker = TaskTracker::new();
        loop {
            let incoming = tokio::select! {
                () = retire.cancelled() => break,
                incoming = self.endpoint.accept() => match incoming {
                    Some(incoming) => incoming,
                    None => break,
                },
            };
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                incoming.refuse();
                continue;
            };
            let (live, retire) = (self.live.clone(), retire.clone());
            tracker.spawn(async move {
                connection(incoming, live, retire).await;
                drop(slot);
            });
        }
        self.endpoint.set_server_config(None);
        tracker.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
            .await
            .is_err()
        {
            warn!(addr = ?local, "HTTP/3 connections still open after {DRAIN_TIMEOUT:?}; closed");
        }
        self.endpoint.close(quinn::VarInt::from_u32(0), b"");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}

/// TLS 1.3 with ALPN h3 and no early data, certificates from `live`.
fn server_config(
    live: &Arc<Live>,
    settings: &CdnConfig,
) -> Result<quinn::ServerConfig, Http3Error> {
    let fail = |e: &dyn std::fmt::Display| Http3Error::Tls(e.to_string());
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .retain(|s| s.suite() == rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| fail(&e))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(LiveResolver(live.clone())));
    tls.alpn_protocols = vec![b"h3".to_vec()];
    // QUIC allows no limit but all or nothing (RFC 9001 §4.6.1).
    tls.max_early_data_size = if settings.http3_0rtt { u32::MAX } else { 0 };
    let quic = QuicServerConfig::try_from(tls).map_err(|e| fail(&e))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(quinn::VarInt::from_u32(settings.http3_max_streams));
    transport.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(settings.idle_timeout).map_err(|e| fail(&e))?,
    ));
    server.transport_config(Arc::new(transport));
    Ok(server)
}

/// One QUIC connection: the handshake within `header_timeout`, then its requests until the
/// client is done or `retire`.
async fn connection(incoming: quinn::Incoming, live: Arc<Live>, retire: CancellationToken) {
    let edge = live.edge();
    let (settings, metrics) = (edge.config(), edge.metrics());
    let peer = incoming.remote_address();
    let header_timeout = settings.header_timeout;
    let max_header_size = settings.max_header_size as u64;
    let zero_rtt = settings.http3_0rtt;
    let handshake = async {
        let connecting = incoming.accept()?;
        if zero_rtt {
            match connecting.into_0rtt() {
                Ok((quic, confirmed)) => return Ok((quic, Early::until(confirmed))),
                Err(connecting) => return Ok((connecting.await?, Early::never())),
            }
        }
        Ok::<_, quinn::ConnectionError>((connecting.await?, Early::never()))
    };
    let (quic, early) = match tokio::time::timeout(header_timeout, handshake).await {
        Ok(Ok(quic)) => quic,
        Ok(Err(e)) => {
            metrics.handshake_failed();
            return debug!("QUIC handshake with {peer}: {e}");
        }
        Err(_) => {
            metrics.handshake_failed();
            return debug!("QUIC handshake with {peer} timed out");
        }
    };
    metrics.quic_handshake();
    let _open = metrics.open(Some(Some(b"h3")));
    let built = h3::server::builder()
        .max_field_section_size(max_header_size)
        .build(h3_quinn::Connection::new(quic))
        .await;
    let mut h3: H3Connection = match built {
        Ok(h3) => h3,
        Err(e) => return debug!("HTTP/3 with {peer}: {e}"),
    };
    let conn = Conn {
        peer,
        https: true,
        tls: Some(TlsNames {
            protocol: "TLSv1.3",
            cipher: CIPHER,
        }),
    };
    let requests = TaskTracker::new();
    let mut going_away = false;
    loop {
        let accepted = tokio::select! {
            () = retire.cancelled(), if !going_away => {
                going_away = true;
                if let Err(e) = h3.shutdown(0).await {
                    debug!("HTTP/3 GOAWAY to {peer}: {e}");
                }
                continue;
            }
            accepted = h3.accept() => accepted,
        };
        match accepted {
            Ok(Some(resolver)) => {
                let live = live.clone();
                let early = early.clone();
                requests.spawn(request(resolver, live, conn, header_timeout, early));
            }
            Ok(None) => break,
            Err(e) => {
                debug!("HTTP/3 with {peer}: {e}");
                break;
            }
        }
    }
    requests.close();
    requests.wait().await;
}

/// One request: headers within `header_timeout`, answered by the edge current when they
/// arrived, the response streamed back.
async fn request(
    resolver: RequestResolver<h3_quinn::Connection, Bytes>,
    live: Arc<Live>,
    conn: Conn,
    header_timeout: Duration,
    early: Early,
) {
    let peer = conn.peer;
    let (request, stream) =
        match tokio::time::timeout(header_timeout, resolver.resolve_request()).await {
            Ok(Ok(resolved)) => resolved,
            Ok(Err(e)) => return debug!("HTTP/3 request from {peer}: {e}"),
            Err(_) => return debug!("HTTP/3 request headers from {peer} timed out"),
        };
    let (mut send, receive) = stream.split();
    let mut request: Request<RequestBody> = request.map(|()| RequestBody::new(receive));
    let response = if early.refuses(request.method()) {
        too_early()
    } else if super::healthz::wanted(
        &live.edge(),
        request.method(),
        request.uri(),
        request.headers(),
    ) {
        super::healthz::answer(
            &live.edge(),
            live.acme().map(|a| a.as_ref()),
            request.uri().query(),
        )
        .await
    } else {
        // The origin's 103s go out as they come, before the final response.
        let (hints, mut hinted) = EarlyHints::channel();
        request.extensions_mut().insert(hints);
        let edge = live.edge();
        let mut answer = Box::pin(edge.handle(request, conn));
        let response = loop {
            tokio::select! {
                biased;
                Some(headers) = hinted.recv() => early_hints(&mut send, headers, peer).await,
                response = &mut answer => break response,
            }
        };
        // Hints that came with the final response still go before it.
        while let Ok(headers) = hinted.try_recv() {
            early_hints(&mut send, headers, peer).await;
        }
        response
    };
    if let Err(e) = respond(&mut send, response).await {
        debug!("HTTP/3 response to {peer}: {e}");
    }
}

/// Sends one 103 Early Hints interim response.
async fn early_hints(
    send: &mut H3Stream<h3_quinn::SendStream<Bytes>>,
    headers: http::HeaderMap,
    peer: SocketAddr,
) {
    let mut interim = Response::new(());
    *interim.status_mut() = http::StatusCode::EARLY_HINTS;
    *interim.headers_mut() = headers;
    if let Err(e) = send.send_response(interim).await {
        debug!("HTTP/3 103 to {peer}: {e}");
    }
}

/// Whether requests may still be arriving as 0-RTT early data: until the handshake is
/// confirmed.
#[derive(Clone)]
struct Early(Option<Arc<AtomicBool>>);

impl Early {
    fn never() -> Early {
        Early(None)
    }

    /// Early until `confirmed` resolves (the handshake completed).
    fn until(confirmed: quinn::ZeroRttAccepted) -> Early {
        let flag = Arc::new(AtomicBool::new(true));
        let done = flag.clone();
        tokio::spawn(async move {
            confirmed.await;
            done.store(false, Ordering::Release);
        });
        Early(Some(flag))
    }

    /// An unsafe method while early data is possible: it could be a replay.
    fn refuses(&self, method: &http::Method) -> bool {
        !matches!(*method, http::Method::GET | http::Method::HEAD)
            && self
                .0
                .as_ref()
                .is_some_and(|flag| flag.load(Ordering::Acquire))
    }
}

/// 425 Too Early (RFC 8470 §5.2): the client sends it again after the handshake.
fn too_early() -> Response<super::body::Body> {
    let mut response = Response::new(super::body::full(Bytes::from_static(
        b"retry after the handshake: not answered from 0-RTT early data\n",
    )));
    *response.status_mut() = http::StatusCode::TOO_EARLY;
    response
}

/// Sends the head, the body's data frames and any trailers, then ends the stream.
async fn respond(
    send: &mut H3Stream<h3_quinn::SendStream<Bytes>>,
    response: Response<super::body::Body>,
) -> Result<(), BodyError> {
    let (mut parts, mut body) = response.into_parts();
    super::date::add_if_missing(&mut parts.headers);
    send.send_response(Response::from_parts(parts, ())).await?;
    while let Some(frame) = body.frame().await {
        match frame?.into_data() {
            Ok(data) if data.is_empty() => {}
            Ok(data) => send.send_data(data).await?,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    send.send_trailers(trailers).await?;
                }
            }
        }
    }
    send.finish().await?;
    Ok(())
}

/// A request body read from its HTTP/3 stream. The stream sits behind a mutex only to be
/// `Sync` as the pipeline's bodies are; one task polls it, so the lock is never contended.
pub struct RequestBody {
    stream: Mutex<H3Stream<h3_quinn::RecvStream>>,
    done: bool,
    /// A read is in flight: the QUIC stream is inside that read until it completes.
    reading: bool,
}

impl RequestBody {
    fn new(stream: H3Stream<h3_quinn::RecvStream>) -> RequestBody {
        RequestBody {
            stream: Mutex::new(stream),
            done: false,
            reading: false,
        }
    }
}

/// A response can be complete before the request is (a 403 to a GET whose end has not
/// arrived yet): the rest is not wanted, and RFC 9114 §4.1.2 asks for H3_NO_ERROR when
/// telling the client to stop sending it, not the bare 0 QUIC would send by itself.
impl Drop for RequestBody {
    fn drop(&mut self) {
        if !self.done && !self.reading {
            let stream = self.stream.get_mut().unwrap_or_else(|e| e.into_inner());
            stream.stop_sending(h3::error::Code::H3_NO_ERROR);
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
        let polled = {
            let mut stream = self.stream.lock().unwrap_or_else(|e| e.into_inner());
            stream.poll_recv_data(cx)
        };
        let polled = match polled {
            Poll::Pending => {
                self.reading = true;
                return Poll::Pending;
            }
            Poll::Ready(polled) => {
                self.reading = false;
                polled.map(|data| data.map(|mut data| data.copy_to_bytes(data.remaining())))
            }
        };
        match polled {
            Ok(Some(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
            Ok(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Err(e) => {
                self.done = true;
                Poll::Ready(Some(Err(Box::new(e))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn only_safe_methods_are_answered_from_early_data() {
        let early = Early(Some(Arc::new(AtomicBool::new(true))));
        assert!(!early.refuses(&Method::GET));
        assert!(!early.refuses(&Method::HEAD));
        assert!(early.refuses(&Method::POST));
        assert!(early.refuses(&Method::PUT));
        early.0.as_ref().unwrap().store(false, Ordering::Release);
        assert!(!early.refuses(&Method::POST), "after the handshake");
        assert!(!Early::never().refuses(&Method::DELETE));
    }
}
