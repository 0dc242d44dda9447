//! Requests to origins: which viewer headers go on, the forwarding headers CloudFront adds,
//! hop-by-hop removal both ways, origin-group failover, and reading bodies for the cache.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};

use super::EarlyHints;
use crate::cdn::body::{self, Body};
use crate::cdn::metrics::OriginMetrics;
use crate::cdn::origin::OriginError;
use crate::cdn::origin::dir::DirOrigin;
use crate::cdn::origin::http::HttpOriginClient;
use crate::cdn::request_path::RequestPath;
use crate::config::cdn::Behavior;

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// A ready origin: what a distribution's `origins[i]` became.
pub enum OriginHandle {
    Http(Box<HttpOriginClient>),
    Dir(DirOrigin),
    Group {
        members: Vec<usize>,
        failover_status: Vec<u16>,
    },
}

/// What the viewer's request looked like, for the headers we add.
pub struct Viewer<'a> {
    pub peer: IpAddr,
    pub https: bool,
    pub host: &'a str,
    pub http2: bool,
}

/// The `Via` value we add (RFC 9110 §7.6.3).
pub fn via(http2: bool) -> HeaderValue {
    HeaderValue::from_static(if http2 { "2 edgewise" } else { "1.1 edgewise" })
}

/// The headers a Connection header names: hop-by-hop for this message only.
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}

/// Removes hop-by-hop headers, including those the Connection header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named = connection_named(headers);
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// Which viewer headers an origin request carries.
#[derive(Clone, Copy)]
pub enum Forwarding<'a> {
    /// A request the cache may answer (GET, HEAD): only the headers the behavior keys on or
    /// forwards, as CloudFront's cache and origin request policies decide. Any other header
    /// could shape an object cached for every viewer, so none goes by default.
    Listed(&'a Behavior),
    /// A request that goes straight through and is never cached (POST, PUT, ...): the
    /// viewer's end-to-end headers, as any reverse proxy sends them.
    EndToEnd,
}

/// What the origin sees as User-Agent when the behavior does not forward the viewer's:
/// CloudFront's own value, which origins already recognise.
static EDGE_USER_AGENT: HeaderValue = HeaderValue::from_static("Amazon CloudFront");

/// The headers an origin request carries: the viewer headers `forwarding` lets through
/// (conditionals, ranges, cookies and encodings are then set by the caller), the forwarding
/// headers, and the origin's own.
pub fn origin_headers(
    viewer_headers: &HeaderMap,
    viewer: &Viewer,
    forwarding: Forwarding<'_>,
) -> HeaderMap {
    let mut headers = match forwarding {
        Forwarding::EndToEnd => viewer_headers.clone(),
        Forwarding::Listed(behavior) => {
            let mut listed = HeaderMap::new();
            // Listed or not, what the viewer's Connection names stays on its hop.
            let hop = connection_named(viewer_headers);
            for name in behavior
                .cache_key
                .headers
                .iter()
                .chain(&behavior.forward_headers)
                .filter(|name| !hop.contains(name))
            {
                for value in viewer_headers.get_all(name) {
                    listed.append(name.clone(), value.clone());
                }
            }
            if !listed.contains_key(header::USER_AGENT) {
                listed.insert(header::USER_AGENT, EDGE_USER_AGENT.clone());
            }
            listed
        }
    };
    strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    let forwarded_for = match viewer_headers
        .get(&X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
    {
        Some(chain) => format!("{chain}, {}", viewer.peer),
        None => viewer.peer.to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
    headers.insert(
        X_FORWARDED_PROTO.clone(),
        HeaderValue::from_static(if viewer.https { "https" } else { "http" }),
    );
    if let Ok(value) = HeaderValue::from_str(viewer.host) {
        headers.insert(X_FORWARDED_HOST.clone(), value);
    }
    headers.append(header::VIA, via(viewer.http2));
    headers
}

/// What an origin is asked for. The path is the canonical one the behavior was chosen by, so
/// every kind of origin reads exactly what the matcher saw.
pub struct OriginRequest<'a> {
    pub method: &'a Method,
    pub path: &'a RequestPath,
    /// The query the behavior forwards, if any.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The viewer's sink for the origin's 103 Early Hints.
    pub early_hints: Option<&'a EarlyHints>,
}

/// Sends a request to origin `index`, following origin groups: GET/HEAD/OPTIONS fail over to
/// the next member on connection errors, timeouts and the group's statuses; each request
/// starts with the primary. Each origin asked counts in its `counters`.
pub async fn send(
    origins: &[OriginHandle],
    counters: &[Option<Arc<OriginMetrics>>],
    index: usize,
    request: &OriginRequest<'_>,
    body: Body,
) -> Result<Response<Body>, OriginError> {
    match &origins[index] {
        OriginHandle::Group {
            members,
            failover_status,
        } => {
            let retryable = matches!(
                *request.method,
                Method::GET | Method::HEAD | Method::OPTIONS
            );
            let mut body = Some(body);
            let mut last = Err(OriginError::Connect(
                "the origin group has no members".into(),
            ));
            for (position, &member) in members.iter().enumerate() {
                let is_last = position + 1 == members.len() || !retryable;
                let attempt_body = if is_last {
                    body.take().unwrap_or_else(body::empty)
                } else {
                    body::empty()
                };
                let sending = send_one(&origins[member], request, attempt_body);
                let result = Box::pin(counted(counters.get(member), sending)).await;
                let fails_over = match &result {
                    Ok(response) => failover_status.contains(&response.status().as_u16()),
                    Err(_) => true,
                };
                last = result;
                if is_last || !fails_over {
                    break;
                }
            }
            last
        }
        origin => counted(counters.get(index), send_one(origin, request, body)).await,
    }
}

/// `sending`, timed and counted in `counters` when it has some.
async fn counted(
    counters: Option<&Option<Arc<OriginMetrics>>>,
    sending: impl Future<Output = Result<Response<Body>, OriginError>>,
) -> Result<Response<Body>, OriginError> {
    let Some(Some(counters)) = counters else {
        return sending.await;
    };
    let start = std::time::Instant::now();
    let result = sending.await;
    counters.observe(start.elapsed(), result.is_ok());
    result
}

async fn send_one(
    origin: &OriginHandle,
    request: &OriginRequest<'_>,
    body: Body,
) -> Result<Response<Body>, OriginError> {
    let OriginRequest {
        method,
        path,
        query,
        headers,
        early_hints,
    } = *request;
    match origin {
        OriginHandle::Http(client) => {
            let target = &client.origin;
            let uri: Uri = format!(
                "{}://{}{}{path}{}{}",
                target.base.scheme_str().unwrap_or("http"),
                target.base.authority().map_or("", |a| a.as_str()),
                target.path_prefix,
                if query.is_some() { "?" } else { "" },
                query.unwrap_or_default(),
            )
            .parse()
            .map_err(|e: http::uri::InvalidUri| OriginError::Protocol(e.to_string()))?;
            let mut request = Request::builder()
                .method(method.clone())
                .uri(uri)
                .body(body)
                .map_err(|e| OriginError::Protocol(e.to_string()))?;
            *request.headers_mut() = headers.clone();
            request
                .headers_mut()
                .insert(header::HOST, target.host.clone());
            for (name, value) in &target.headers {
                request.headers_mut().insert(name.clone(), value.clone());
            }
            if let Some(early_hints) = early_hints {
                early_hints.watch(&mut request);
            }
            let mut response = client.send(request).await?;
            strip_hop_by_hop(response.headers_mut());
            Ok(response)
        }
        OriginHandle::Dir(dir) => Ok(dir.fetch(method, path, headers).await),
        OriginHandle::Group { .. } => Err(OriginError::Protocol(
            "origin groups cannot be nested".into(),
        )),
    }
}

/// A body read into memory for the cache, or handed back as a stream when it turns out
/// larger than `limit` (then the bytes read so far lead the stream).
pub enum ReadBody {
    Whole(Bytes),
    TooLarge(Body),
}

/// Reads `body` up to `limit` bytes, each chunk within `chunk_timeout`.
pub async fn read_for_cache(
    mut body: Body,
    limit: u64,
    chunk_timeout: Duration,
) -> Result<ReadBody, OriginError> {
    let mut buffer = BytesMut::new();
    loop {
        let frame = tokio::time::timeout(chunk_timeout, body.frame())
            .await
            .map_err(|_| OriginError::Timeout)?;
        let Some(frame) = frame else {
            return Ok(ReadBody::Whole(buffer.freeze()));
        };
        let frame = frame.map_err(|e| OriginError::Body(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        if buffer.len() as u64 > limit {
            let head =
                futures_util::stream::once(std::future::ready(Ok(Frame::data(buffer.freeze()))));
            let rest = futures_util::stream::unfold(body, |mut body| async move {
                body.frame().await.map(|frame| (frame, body))
            });
            return Ok(ReadBody::TooLarge(BodyExt::boxed(StreamBody::new(
                head.chain(rest),
            ))));
        }
    }
}
