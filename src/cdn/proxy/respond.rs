//! Viewer responses: from cached objects (conditional requests, ranges, HEAD), and the
//! synthetic ones (errors, redirects), each with `Age`, `Via` and `X-Cache`.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use tokio::time::Instant;

use super::forward::via;
use crate::cdn::body::{self, Body};
use crate::cdn::cache::collapse::Streaming;
use crate::cdn::cache::store::CachedObject;
use crate::cdn::origin::OriginError;
use crate::cdn::range::{self, RangeOutcome};
use crate::cdn::realtime_log::Verdict;
use crate::cdn::request_path::RequestPath;

pub static X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// How a response was produced, as CloudFront's `X-Cache` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    /// Served from the cache without asking the origin.
    Hit,
    /// Fetched from the origin.
    Miss,
    /// Not in this cache, but in the parent tier's (or an upstream edgewise-cdn's): fetched
    /// without reaching the origin.
    ParentHit,
    /// Stale in the cache, confirmed by the origin with 304.
    RefreshHit,
    /// An error status, from the origin or made by the edge (refusal, failure).
    Error,
    /// HTTP to HTTPS, made by the edge.
    Redirect,
}

impl CacheResult {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheResult::Hit => "Hit",
            CacheResult::Miss => "Miss",
            CacheResult::ParentHit => "ParentHit",
            CacheResult::RefreshHit => "RefreshHit",
            CacheResult::Error => "Error",
            CacheResult::Redirect => "Redirect",
        }
    }

    pub fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            CacheResult::Hit => "Hit from edgewise",
            CacheResult::Miss => "Miss from edgewise",
            CacheResult::ParentHit => "Hit from parent",
            CacheResult::RefreshHit => "RefreshHit from edgewise",
            CacheResult::Error => "Error from edgewise",
            CacheResult::Redirect => "Redirect from edgewise",
        })
    }
}

/// How a response we made was produced, from its `X-Cache` (Error when there is none).
pub fn result_of(headers: &HeaderMap) -> CacheResult {
    match headers.get(&X_CACHE).map(HeaderValue::as_bytes) {
        Some(b"Hit from edgewise") => CacheResult::Hit,
        Some(b"Miss from edgewise") => CacheResult::Miss,
        Some(b"Hit from parent") => CacheResult::ParentHit,
        Some(b"RefreshHit from edgewise") => CacheResult::RefreshHit,
        Some(b"Redirect from edgewise") => CacheResult::Redirect,
        _ => CacheResult::Error,
    }
}

/// Headers a 304 carries from the stored response (RFC 9110 §15.4.5).
const NOT_MODIFIED_HEADERS: [HeaderName; 6] = [
    header::CACHE_CONTROL,
    header::CONTENT_LOCATION,
    header::DATE,
    header::ETAG,
    header::EXPIRES,
    header::VARY,
];

/// The viewer's answer from a stored object.
pub fn from_object(
    object: &CachedObject,
    method: &Method,
    request: &HeaderMap,
    result: CacheResult,
    now: Instant,
    http2: bool,
) -> Response<Body> {
    let mut response = if not_modified(object, request) {
        let mut headers = HeaderMap::new();
        for name in NOT_MODIFIED_HEADERS.iter().chain([&header::LAST_MODIFIED]) {
            for value in object.headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        let mut response = Response::new(body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        *response.headers_mut() = headers;
        response
    } else {
        ranged(object, method, request)
    };
    let age = object.age(now).as_secs();
    let headers = response.headers_mut();
    headers.insert(header::AGE, HeaderValue::from(age));
    finish(headers, result, http2);
    response
}

/// The viewer's answer from a response still arriving: the head the stored object will
/// have, and the body as it grows (a plain GET: no ranges, conditions or HEAD).
pub fn from_stream(
    streaming: &Streaming,
    result: CacheResult,
    now: Instant,
    http2: bool,
) -> Response<Body> {
    let mut headers = streaming.headers.clone();
    if streaming.status == StatusCode::OK {
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    headers.insert(header::AGE, HeaderValue::from(streaming.age(now).as_secs()));
    finish(&mut headers, result, http2);
    let mut response = Response::new(streaming.body.reader());
    *response.status_mut() = streaming.status;
    *response.headers_mut() = headers;
    response
}

/// The viewer's answer when the origin failed (502, or 504 on a timeout); the failure is
/// logged with the origin it names, as nginx logs every upstream failure.
pub fn origin_failed(error: &OriginError, path: &RequestPath, http2: bool) -> Response<Body> {
    tracing::warn!(%path, "origin request failed: {error}");
    text(error.status(), &error.to_string(), http2)
}

/// The final `X-Cache` of a response, as CloudFront reports it and the real-time log's
/// edge result type says it: a redirect is `Redirect`, a refusal or any error status
/// (from the origin or a custom error page) is `Error`, otherwise how the cache produced it.
pub fn settle(
    headers: &mut HeaderMap,
    status: StatusCode,
    verdict: Option<Verdict>,
) -> CacheResult {
    let result = match verdict {
        Some(Verdict::Redirect) => CacheResult::Redirect,
        Some(_) => CacheResult::Error,
        None if status.as_u16() >= 400 => CacheResult::Error,
        None => result_of(headers),
    };
    headers.insert(X_CACHE.clone(), result.header());
    result
}

/// Adds `Via`, `X-Cache` and (when the response has none) `Age: 0` to any response we send.
/// A miss that an upstream edgewise-cdn answered from its cache (its `X-Cache` says so) is
/// a [`CacheResult::ParentHit`].
pub fn finish(headers: &mut HeaderMap, result: CacheResult, http2: bool) {
    let upstream = result_of(headers);
    let result = match (result, upstream) {
        (
            CacheResult::Miss,
            CacheResult::Hit | CacheResult::RefreshHit | CacheResult::ParentHit,
        ) => CacheResult::ParentHit,
        _ => result,
    };
    headers.append(header::VIA, via(http2));
    headers.insert(X_CACHE.clone(), result.header());
    if !headers.contains_key(header::AGE) {
        headers.insert(header::AGE, HeaderValue::from_static("0"));
    }
}

/// The full object, a 206 slice of it, or 416; HEAD gets the headers alone.
fn ranged(object: &CachedObject, method: &Method, request: &HeaderMap) -> Response<Body> {
    let len = object.body.len() as u64;
    let outcome = if object.status == StatusCode::OK {
        range::evaluate(
            request.get(header::RANGE),
            request.get(header::IF_RANGE),
            object.headers.get(header::ETAG),
            object.headers.get(header::LAST_MODIFIED),
            len,
        )
    } else {
        RangeOutcome::Full
    };
    let (status, bytes, content_range) = match outcome {
        RangeOutcome::Full => (object.status, object.body.clone(), None),
        RangeOutcome::Partial { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            object.body.slice(start as usize..=end as usize),
            Some(range::content_range(start, end, len)),
        ),
        RangeOutcome::Unsatisfiable => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            bytes::Bytes::new(),
            Some(range::unsatisfied_range(len)),
        ),
    };
    let mut headers = object.headers.clone();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    if let Some(value) = content_range {
        headers.insert(header::CONTENT_RANGE, value);
    }
    if object.status == StatusCode::OK {
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    let body = if *method == Method::HEAD {
        body::empty()
    } else {
        body::full(bytes)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// RFC 9110 §13.2.2: If-None-Match first (weak comparison), else If-Modified-Since.
fn not_modified(object: &CachedObject, request: &HeaderMap) -> bool {
    if !matches!(object.status, StatusCode::OK) {
        return false;
    }
    if let Some(condition) = request.get(header::IF_NONE_MATCH) {
        let Some(etag) = object
            .headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_string();
        return condition
            .to_str()
            .map(|list| {
                list.split(',')
                    .any(|candidate| candidate.trim() == "*" || opaque(candidate) == opaque(etag))
            })
            .unwrap_or(false);
    }
    let since = request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let modified = object
        .headers
        .get(header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    matches!((since, modified), (Some(since), Some(modified)) if modified <= since)
}

/// A short plain-text response made by the edge.
pub fn text(status: StatusCode, message: &str, http2: bool) -> Response<Body> {
    let mut response = Response::new(body::full(format!("{message}\n")));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    finish(headers, CacheResult::Error, http2);
    response
}

/// `301` to the same host, path and query over HTTPS.
pub fn redirect_to_https(
    host: &str,
    https_port: Option<u16>,
    path_and_query: &str,
    http2: bool,
) -> Response<Body> {
    let port = https_port
        .filter(|p| *p != 443)
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let location = format!("https://{host}{port}{path_and_query}");
    let mut response = text(
        StatusCode::MOVED_PERMANENTLY,
        &format!("moved to {location}"),
        http2,
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
