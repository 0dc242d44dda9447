//! Filling the cache: one GET to the origin (conditional when refreshing a stale object),
//! the storability decision, streaming or buffering, compression, Vary, and stale-if-error.
//!
//! A storable response the edge will not compress streams: a task reads the origin's body
//! into a [`Growing`] buffer and stores the object when it is complete, while the viewer
//! (and, when the length is declared, collapsed followers) read the buffer as it grows.
//! Compressible responses need the whole body first and are read, compressed and stored
//! before the viewer gets a byte.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::forward::{self, OriginHandle, ReadBody};
use super::respond::{self, CacheResult};
use super::{Ask, Edge, set_cookies};
use crate::cdn::body::{self, Body};
use crate::cdn::cache::collapse::{Leader, Outcome, Streaming};
use crate::cdn::cache::freshness::{self, Freshness, RequestFacts, Storability};
use crate::cdn::cache::growing::Growing;
use crate::cdn::cache::key::{self, CacheKey};
use crate::cdn::cache::store::{CachedObject, Entry, Store};
use crate::cdn::compress::{self, Encoding};
use crate::cdn::origin::OriginError;
use crate::config::cdn::{Behavior, Selection};

/// Folder origins have no read timeout of their own; a stuck disk still must not hold a
/// request forever.
const DIR_CHUNK_TIMEOUT: Duration = Duration::from_secs(30);

/// What a fill produced.
pub(super) enum Filled {
    /// An object to serve: new (Miss), revalidated (RefreshHit), or stale because the origin
    /// failed and stale-if-error allows it (Hit).
    Stored(Arc<CachedObject>, CacheResult),
    /// Storable, arriving: the viewer reads the body as it grows (Miss); the object is
    /// stored when it is complete.
    Streaming(Arc<Streaming>),
    /// Not storable: the origin's response, passed through.
    Passed(Response<Body>),
    Failed(OriginError),
}

impl Filled {
    /// The viewer's response.
    pub(super) fn into_viewer(self, ask: &Ask<'_>) -> Response<Body> {
        match self {
            Filled::Stored(object, result) => respond::from_object(
                &object,
                &ask.method,
                &ask.headers,
                result,
                Instant::now(),
                ask.http2,
            ),
            Filled::Streaming(streaming) => {
                respond::from_stream(&streaming, CacheResult::Miss, Instant::now(), ask.http2)
            }
            Filled::Passed(response) => {
                let (mut parts, body) = response.into_parts();
                respond::finish(&mut parts.headers, CacheResult::Miss, ask.http2);
                let body = if ask.method == Method::HEAD {
                    body::empty()
                } else {
                    body
                };
                Response::from_parts(parts, body)
            }
            Filled::Failed(e) => respond::origin_failed(&e, &ask.path, ask.http2),
        }
    }
}

impl Edge {
    /// Fetches `ask` from its origin and stores it under `key` when it may be stored.
    /// `stale` makes the request conditional; `leader` is told the outcome.
    pub(super) async fn fill(
        &self,
        ask: &Ask<'_>,
        key: CacheKey,
        stale: Option<Arc<CachedObject>>,
        leader: Option<Leader>,
    ) -> Filled {
        let behavior = ask.behavior;
        let mut headers = forward::origin_headers(
            &ask.headers,
            &self.viewer(ask),
            forward::Forwarding::Listed(behavior),
        );
        for name in [
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_MATCH,
            header::IF_UNMODIFIED_SINCE,
            header::IF_RANGE,
            header::RANGE,
        ] {
            headers.remove(name);
        }
        set_cookies(&mut headers, ask);
        if !behavior
            .cache_key
            .headers
            .contains(&header::ACCEPT_ENCODING)
        {
            headers.remove(header::ACCEPT_ENCODING);
        }
        let encoding_class = compress::cache_key_value(ask.headers.get(header::ACCEPT_ENCODING));
        if behavior.compress && !encoding_class.is_empty() {
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static(encoding_class),
            );
        }
        if let Some(stale) = &stale {
            for (from, to) in [
                (header::ETAG, header::IF_NONE_MATCH),
                (header::LAST_MODIFIED, header::IF_MODIFIED_SINCE),
            ] {
                if let Some(value) = stale.headers.get(&from) {
                    headers.insert(to, value.clone());
                }
            }
        }
        let origins = &self.origins[ask.distribution];
        let query = key::origin_query(behavior, ask.query.as_deref());
        let request = forward::OriginRequest {
            method: &Method::GET,
            path: &ask.path,
            query: query.as_deref(),
            headers: &headers,
            early_hints: ask.early_hints.as_ref(),
        };
        let counters = &self.origin_metrics[ask.distribution];
        let sent = forward::send(origins, counters, behavior.origin, &request, body::empty()).await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                return match stale {
                    Some(stale) if may_serve_stale(&stale, Instant::now()) => {
                        Filled::Stored(stale, CacheResult::Hit)
                    }
                    _ => Filled::Failed(e),
                };
            }
        };
        if let Some(stale) = &stale {
            if response.status() == StatusCode::NOT_MODIFIED {
                return self
                    .refreshed(ask, key, stale, response.headers(), leader)
                    .await;
            }
            if response.status().is_server_error() && may_serve_stale(stale, Instant::now()) {
                return Filled::Stored(stale.clone(), CacheResult::Hit);
            }
        }
        let (mut parts, body) = response.into_parts();
        let facts = RequestFacts {
            method: Method::GET,
            has_authorization: ask.headers.contains_key(header::AUTHORIZATION),
        };
        let error_ttl = self.error_ttl(ask.distribution, parts.status.as_u16());
        let freshness = match freshness::decide(
            &facts,
            parts.status.as_u16(),
            &parts.headers,
            SystemTime::now(),
            &behavior.ttl,
            error_ttl,
            &self.config.targeted_cache_control,
        ) {
            Storability::Store(freshness) => freshness,
            Storability::Pass(_) => {
                if stale.is_some() {
                    self.store.remove(&key).await;
                }
                return Filled::Passed(Response::from_parts(parts, body));
            }
        };
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.config.max_object_size) {
            return Filled::Passed(Response::from_parts(parts, body));
        }
        let initial_age = parts
            .headers
            .get(header::AGE)
            .and_then(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()))
            .map_or(Duration::ZERO, Duration::from_secs);
        let chunk_timeout = chunk_timeout(origins, behavior.origin);
        if !(behavior.compress && compress::may_compress(parts.status.as_u16(), &parts.headers)) {
            let fill = StreamFill {
                status: parts.status,
                headers: parts.headers,
                freshness,
                initial_age,
                declared,
                chunk_timeout,
            };
            return self
                .stream(ask, key, stale.is_some(), leader, fill, body)
                .await;
        }
        let bytes =
            match forward::read_for_cache(body, self.config.max_object_size, chunk_timeout).await {
                Ok(ReadBody::Whole(bytes)) => bytes,
                Ok(ReadBody::TooLarge(body)) => {
                    return Filled::Passed(Response::from_parts(parts, body));
                }
                Err(e) => return Filled::Failed(e),
            };
        parts.headers.remove(header::AGE);
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        let bytes = if behavior.compress {
            compress_body(&mut parts.headers, parts.status, bytes, encoding_class).await
        } else {
            bytes
        };
        let bytes = self.store.bodies().adopt(bytes);
        let vary = vary_names(&parts.headers, behavior);
        let object = Arc::new(CachedObject {
            status: parts.status,
            headers: parts.headers,
            body: bytes,
            stored_at: Instant::now(),
            stored_wall: SystemTime::now(),
            initial_age,
            freshness,
        });
        let object_key = match (&stale, vary.is_empty()) {
            (None, false) => {
                self.store
                    .insert(key.clone(), Entry::Vary(vary.clone().into()))
                    .await;
                key::secondary(&key, &vary, &ask.headers)
            }
            _ => key,
        };
        self.store
            .insert(object_key, Entry::Object(object.clone()))
            .await;
        if let Some(leader) = leader {
            leader.finish(Outcome::Stored);
        }
        Filled::Stored(object, CacheResult::Miss)
    }

    /// Fills while the body arrives. A task reads the origin into a growing buffer and
    /// stores the object when it is complete (even if the viewer has gone); a plain GET
    /// gets the head now and the body as it grows. HEAD, ranges and conditional requests
    /// need the object, so they wait for it.
    ///
    /// Followers read along only when the origin declared the length (already checked
    /// against `max_object_size`): then the buffer is the object. Without a length, they
    /// wait for `Stored` as with buffered fills; if the body outgrows `max_object_size`
    /// the buffer stops growing, the viewer continues straight from the origin, nothing is
    /// stored, and the followers fetch themselves.
    async fn stream(
        &self,
        ask: &Ask<'_>,
        key: CacheKey,
        revalidating: bool,
        leader: Option<Leader>,
        mut fill: StreamFill,
        body: Body,
    ) -> Filled {
        fill.headers.remove(header::AGE);
        let vary = vary_names(&fill.headers, ask.behavior);
        // As when buffered: a revalidated object keeps its key, a new one with Vary goes
        // under a secondary key behind a Vary entry.
        let (object_key, vary_entry) = if revalidating || vary.is_empty() {
            (key, None)
        } else {
            let secondary = key::secondary(&key, &vary, &ask.headers);
            (secondary, Some((key, vary.clone())))
        };
        let streaming = Arc::new(Streaming {
            status: fill.status,
            headers: std::mem::take(&mut fill.headers),
            initial_age: fill.initial_age,
            received_at: Instant::now(),
            vary: if vary_entry.is_some() {
                vary
            } else {
                Vec::new()
            },
            object_key,
            body: Growing::new(fill.declared),
        });
        if let Some(leader) = &leader
            && fill.declared.is_some()
        {
            leader.publish(streaming.clone());
        }
        let completion = Completion {
            store: self.store.clone(),
            streaming: streaming.clone(),
            limit: self.config.max_object_size,
            fill,
            vary_entry,
            leader,
        };
        let filling = tokio::spawn(completion.run(body));
        if super::reads_whole_body(ask) {
            return Filled::Streaming(streaming);
        }
        match filling.await {
            Ok(Ok(object)) => Filled::Stored(object, CacheResult::Miss),
            Ok(Err(Incomplete::TooLarge)) => {
                let mut response = Response::new(streaming.body.reader());
                *response.status_mut() = streaming.status;
                *response.headers_mut() = streaming.headers.clone();
                response.headers_mut().insert(
                    header::AGE,
                    HeaderValue::from(streaming.initial_age.as_secs()),
                );
                Filled::Passed(response)
            }
            Ok(Err(Incomplete::Failed(e))) => Filled::Failed(e),
            Err(e) => Filled::Failed(OriginError::Body(e.to_string())),
        }
    }

    /// A 304 for a stale object: its headers updated from the 304 (RFC 9111 §4.3.4), its
    /// freshness computed anew, stored again.
    async fn refreshed(
        &self,
        ask: &Ask<'_>,
        key: CacheKey,
        stale: &CachedObject,
        update: &HeaderMap,
        leader: Option<Leader>,
    ) -> Filled {
        let mut headers = stale.headers.clone();
        for name in update.keys() {
            if matches!(
                *name,
                header::CONTENT_LENGTH | header::CONTENT_ENCODING | header::AGE
            ) {
                continue;
            }
            headers.remove(name);
            for value in update.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        let facts = RequestFacts {
            method: Method::GET,
            has_authorization: ask.headers.contains_key(header::AUTHORIZATION),
        };
        let error_ttl = self.error_ttl(ask.distribution, stale.status.as_u16());
        let decided = freshness::decide(
            &facts,
            stale.status.as_u16(),
            &headers,
            SystemTime::now(),
            &ask.behavior.ttl,
            error_ttl,
            &self.config.targeted_cache_control,
        );
        let storable = matches!(decided, Storability::Store(_));
        let freshness = match decided {
            Storability::Store(freshness) => freshness,
            Storability::Pass(_) => stale.freshness.clone(),
        };
        let object = Arc::new(CachedObject {
            status: stale.status,
            headers,
            body: stale.body.clone(),
            stored_at: Instant::now(),
            stored_wall: SystemTime::now(),
            initial_age: Duration::ZERO,
            freshness,
        });
        if storable {
            self.store.insert(key, Entry::Object(object.clone())).await;
            if let Some(leader) = leader {
                leader.finish(Outcome::Stored);
            }
        } else {
            // The origin now says it may not be stored: serve this once, keep nothing.
            self.store.remove(&key).await;
        }
        Filled::Stored(object, CacheResult::RefreshHit)
    }

    /// How long an error status is cached: the custom error's TTL, else the CDN's.
    fn error_ttl(&self, distribution: usize, status: u16) -> Duration {
        self.config.distributions[distribution]
            .custom_errors
            .iter()
            .find(|c| c.status == status)
            .and_then(|c| c.ttl)
            .unwrap_or(self.config.error_ttl)
    }
}

/// A storable response about to stream: its head, and what storing it takes.
struct StreamFill {
    status: StatusCode,
    headers: HeaderMap,
    freshness: Freshness,
    initial_age: Duration,
    /// The origin's Content-Length.
    declared: Option<u64>,
    chunk_timeout: Duration,
}

/// The rest of a streaming fill, run by its own task.
struct Completion {
    store: Store,
    streaming: Arc<Streaming>,
    limit: u64,
    fill: StreamFill,
    /// The primary key and the names for its Vary entry, when the object has a variant.
    vary_entry: Option<(CacheKey, Vec<HeaderName>)>,
    leader: Option<Leader>,
}

/// Why a streaming fill stored nothing.
enum Incomplete {
    /// Past `max_object_size` (no length declared): handed to the one viewer reading it.
    TooLarge,
    Failed(OriginError),
}

impl Completion {
    /// Reads the origin's body into the buffer, each chunk within the chunk timeout, then
    /// stores the object and tells the followers. On failure the buffer ends with the error
    /// and the leader is dropped (followers still waiting fetch themselves).
    async fn run(self, mut body: Body) -> Result<Arc<CachedObject>, Incomplete> {
        let growing = &self.streaming.body;
        let fail = |e: OriginError| {
            growing.fail(e.to_string());
            Incomplete::Failed(e)
        };
        let mut received: u64 = 0;
        loop {
            let frame = match tokio::time::timeout(self.fill.chunk_timeout, body.frame()).await {
                Err(_) => return Err(fail(OriginError::Timeout)),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(fail(OriginError::Body(e.to_string()))),
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            received += data.len() as u64;
            if self.fill.declared.is_some_and(|len| received > len) {
                return Err(fail(OriginError::Body(
                    "the body is longer than its Content-Length".into(),
                )));
            }
            growing.push(data);
            if received > self.limit {
                // Only without a declared length: nobody reads along but the viewer.
                growing.hand_off(body);
                return Err(Incomplete::TooLarge);
            }
        }
        if self.fill.declared.is_some_and(|len| received != len) {
            return Err(fail(OriginError::Body(
                "the body is shorter than its Content-Length".into(),
            )));
        }
        let bytes = growing.complete(self.store.bodies());
        let mut headers = self.streaming.headers.clone();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        let object = Arc::new(CachedObject {
            status: self.streaming.status,
            headers,
            body: bytes,
            stored_at: Instant::now(),
            stored_wall: SystemTime::now(),
            initial_age: self.fill.initial_age,
            freshness: self.fill.freshness,
        });
        if let Some((primary, vary)) = self.vary_entry {
            self.store.insert(primary, Entry::Vary(vary.into())).await;
        }
        self.store
            .insert(
                self.streaming.object_key.clone(),
                Entry::Object(object.clone()),
            )
            .await;
        if let Some(leader) = self.leader {
            leader.finish(Outcome::Stored);
        }
        Ok(object)
    }
}

/// stale-if-error: CloudFront serves a stale object when the origin fails unless the origin
/// said `stale-if-error=0` (or a shorter window than the staleness), or must-revalidate.
fn may_serve_stale(object: &CachedObject, now: Instant) -> bool {
    // Only a real object is worth more than a fresh error; a stale error is not.
    !object.status.is_client_error()
        && !object.status.is_server_error()
        && !object.freshness.must_revalidate
        // `no-cache`: never used without a successful validation (RFC 9111 §5.2.2.4).
        && !object.freshness.revalidate_always
        && object
            .freshness
            .stale_if_error
            .is_none_or(|window| object.staleness(now) <= window)
}

/// How long to wait for each body chunk from this origin.
fn chunk_timeout(origins: &[OriginHandle], index: usize) -> Duration {
    match &origins[index] {
        OriginHandle::Http(client) => client.origin.read_timeout,
        OriginHandle::Group { members, .. } => members
            .first()
            .map_or(DIR_CHUNK_TIMEOUT, |&m| chunk_timeout(origins, m)),
        OriginHandle::Dir(_) => DIR_CHUNK_TIMEOUT,
    }
}

/// Compresses under CloudFront's rules for the request's encoding class; the stored object is
/// the compressed variant, so hits never compress again.
async fn compress_body(
    headers: &mut HeaderMap,
    status: StatusCode,
    bytes: bytes::Bytes,
    class: &str,
) -> bytes::Bytes {
    if !compress::compressible(status.as_u16(), headers) {
        return bytes;
    }
    let encoding = if class.contains("br") {
        Encoding::Br
    } else if class.contains("gzip") {
        Encoding::Gzip
    } else {
        add_vary_accept_encoding(headers);
        return bytes;
    };
    let Ok(compressed) = compress::compress(&bytes, encoding).await else {
        return bytes;
    };
    headers.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(encoding.as_str()),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(compressed.len()));
    if let Some(etag) = headers.get(header::ETAG).cloned() {
        match compress::weaken_etag(&etag) {
            Some(weak) => headers.insert(header::ETAG, weak),
            None => headers.remove(header::ETAG),
        };
    }
    add_vary_accept_encoding(headers);
    compressed
}

fn add_vary_accept_encoding(headers: &mut HeaderMap) {
    let present = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|n| n.trim().eq_ignore_ascii_case("accept-encoding"))
        });
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// The request headers a response varies by, among those the origin could see: a header the
/// behavior does not forward never reached the origin, so no variant can depend on it.
/// Accept-Encoding is left out where the key already holds its normalised class
/// (compressing behaviors).
fn vary_names(headers: &HeaderMap, behavior: &Behavior) -> Vec<HeaderName> {
    let forwarded = |name: &HeaderName| {
        behavior.cache_key.headers.contains(name)
            || behavior.forward_headers.contains(name)
            || (*name == header::COOKIE && behavior.cache_key.cookies != Selection::None)
    };
    let mut names: Vec<HeaderName> = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .filter(|n| !(behavior.compress && *n == header::ACCEPT_ENCODING))
        .filter(forwarded)
        .collect();
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    names
}
