//! The test origin for the CDN tests: an HTTP/1.1 server on 127.0.0.1:0 answering from a
//! programmable route table (status, headers, body, delay, chunked, or a body sent in timed
//! steps that may abort), answering conditional requests with 304, and recording every
//! request it sees.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the origin answers for a path.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub delay: Duration,
    /// Sent without Content-Length, in 1,000-byte chunks.
    pub chunked: bool,
    /// When not empty, the body is sent this way instead (Content-Length: the data's total,
    /// one more when it aborts, none when `chunked`).
    pub steps: Vec<Step>,
}

/// One step of a body sent over time.
#[derive(Clone, Debug)]
pub enum Step {
    Send(Bytes),
    Wait(Duration),
    /// Fail the body: the connection is closed mid-response.
    Abort,
}

impl Reply {
    pub fn ok(body: impl Into<Bytes>) -> Reply {
        Reply::status(200, body)
    }

    pub fn status(status: u16, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
            chunked: false,
            steps: Vec::new(),
        }
    }

    /// Status 200 with a body sent in `steps`; `body` holds the data of all of them.
    pub fn paced(steps: Vec<Step>) -> Reply {
        let mut body = Vec::new();
        for step in &steps {
            if let Step::Send(data) = step {
                body.extend_from_slice(data);
            }
        }
        let mut reply = Reply::ok(body);
        reply.steps = steps;
        reply
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// `Cache-Control`.
    pub fn cc(self, value: &str) -> Reply {
        self.header("Cache-Control", value)
    }

    pub fn etag(self, tag: &str) -> Reply {
        self.header("ETag", tag)
    }

    pub fn html(self) -> Reply {
        self.header("Content-Type", "text/html; charset=utf-8")
    }

    pub fn delay_ms(mut self, ms: u64) -> Reply {
        self.delay = Duration::from_millis(ms);
        self
    }

    pub fn chunked(mut self) -> Reply {
        self.chunked = true;
        self
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request as the origin saw it, and the status it answered.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    /// Path and query as received.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub status: u16,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

#[derive(Default)]
struct OriginState {
    routes: Mutex<HashMap<String, Handler>>,
    seen: Mutex<Vec<Seen>>,
}

/// An HTTP/1.1 origin on 127.0.0.1:0 answering from a route table, recording every request.
/// Unknown paths get `404 no route` with `Cache-Control: no-store`.
pub struct Origin {
    pub addr: SocketAddr,
    state: Arc<OriginState>,
    stop: CancellationToken,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Origin {
    pub async fn start() -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("origin bind");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(OriginState::default());
        let stop = CancellationToken::new();
        let (st, token) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    () = token.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => continue,
                    },
                };
                let (st, token) = (st.clone(), token.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(answer(&st, request).await) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        () = token.cancelled() => {}
                    }
                });
            }
        });
        Origin { addr, state, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers `path` (without query; "*" for any path without its own route) with `reply`.
    pub fn route(&self, path: &str, reply: Reply) -> &Origin {
        self.route_fn(path, move |_| reply.clone())
    }

    /// Answers `path` with whatever `handler` makes of the request.
    pub fn route_fn(
        &self,
        path: &str,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> &Origin {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), Arc::new(handler));
        self
    }

    /// Requests seen for `path` (query ignored).
    pub fn hits(&self, path: &str) -> usize {
        self.seen(path).len()
    }

    pub fn total(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }

    /// Path and query of every request seen, in order.
    pub fn uris(&self) -> Vec<String> {
        let seen = self.state.seen.lock().unwrap();
        seen.iter().map(|s| s.uri.clone()).collect()
    }

    pub fn seen(&self, path: &str) -> Vec<Seen> {
        let seen = self.state.seen.lock().unwrap();
        seen.iter().filter(|s| s.path == path).cloned().collect()
    }

    /// The last request for `path`; panics when there was none.
    pub fn last(&self, path: &str) -> Seen {
        self.seen(path)
            .pop()
            .unwrap_or_else(|| panic!("the origin saw no request for {path}"))
    }

    /// Statuses the origin answered for `path`, in order.
    pub fn statuses(&self, path: &str) -> Vec<u16> {
        self.seen(path).iter().map(|s| s.status).collect()
    }

    /// Closes the listener and every open connection: the origin is down.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

async fn answer(state: &OriginState, request: Request<Incoming>) -> hyper::Response<TestBody> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let mut seen = Seen {
        method: parts.method,
        path: parts.uri.path().to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map_or("/".into(), |pq| pq.to_string()),
        headers: parts.headers,
        body,
        status: 0,
    };
    let handler = {
        let routes = state.routes.lock().unwrap();
        routes.get(&seen.path).or_else(|| routes.get("*")).cloned()
    };
    let reply = match handler {
        Some(handler) => handler(&seen),
        None => Reply::status(404, "no route").cc("no-store"),
    };
    let not_modified = is_not_modified(&reply, &seen.headers);
    seen.status = if not_modified { 304 } else { reply.status };
    state.seen.lock().unwrap().push(seen);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let paced = !not_modified && !reply.steps.is_empty();
    let mut response = hyper::Response::new(if not_modified {
        full(Bytes::new())
    } else if paced {
        let frames = stream::unfold(reply.steps.clone().into_iter(), |mut steps| async move {
            loop {
                match steps.next()? {
                    Step::Send(data) => return Some((Ok(Frame::data(data)), steps)),
                    Step::Wait(pause) => tokio::time::sleep(pause).await,
                    Step::Abort => return Some((Err("the test origin aborts".into()), steps)),
                }
            }
        });
        StreamBody::new(frames).boxed()
    } else if reply.chunked {
        let chunks: Vec<Result<Frame<Bytes>, BoxError>> = reply
            .body
            .chunks(1000)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        StreamBody::new(stream::iter(chunks)).boxed()
    } else {
        full(reply.body.clone())
    });
    if paced && !reply.chunked {
        // An aborting body promises more than it sends, so the abort is mid-body.
        let aborts = reply.steps.iter().any(|s| matches!(s, Step::Abort));
        response.headers_mut().insert(
            http::header::CONTENT_LENGTH,
            HeaderValue::from(reply.body.len() + usize::from(aborts)),
        );
    }
    *response.status_mut() = StatusCode::from_u16(if not_modified { 304 } else { reply.status })
        .expect("a valid status");
    for (name, value) in &reply.headers {
        if not_modified && name.to_ascii_lowercase().starts_with("content-") {
            continue;
        }
        response.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    response
}

/// RFC 9110 §13.1.2/§13.1.3: If-None-Match against the reply's ETag, else If-Modified-Since.
fn is_not_modified(reply: &Reply, request: &HeaderMap) -> bool {
    if reply.status != 200 {
        return false;
    }
    let text = |name| {
        request
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(list) = text("if-none-match") {
        let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
        return reply.get("etag").is_some_and(|etag| {
            list.split(',')
                .any(|c| c.trim() == "*" || opaque(c) == opaque(etag))
        });
    }
    let date = |v: &str| httpdate::parse_http_date(v).ok();
    match (
        text("if-modified-since").and_then(date),
        reply.get("last-modified").and_then(date),
    ) {
        (Some(since), Some(modified)) => modified <= since,
        _ => false,
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestBody = BoxBody<Bytes, BoxError>;

fn full(bytes: Bytes) -> TestBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// A loopback address nothing listens on (bound, then released).
pub async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}
