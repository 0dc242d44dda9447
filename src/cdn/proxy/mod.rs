//! The request pipeline: Host → distribution, path → behavior, viewer protocol and method
//! checks, then the cache (hit, stale-while-revalidate, revalidation, collapsed miss) or a
//! straight pass to the origin for unsafe methods.

mod early_hints;
mod fill;
pub mod forward;
pub use early_hints::EarlyHints;
mod gate;
mod invalidate;
pub mod respond;
mod route;
mod tier;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::time::Instant;

use self::forward::{OriginHandle, Viewer};
use self::respond::CacheResult;
use self::route::Route;
use crate::cdn::body::{self, Body, BodyError};
use crate::cdn::cache::collapse::{self, InFlight, Outcome, Role};
use crate::cdn::cache::key::{self, CacheKey};
use crate::cdn::cache::mapped::BodyFiles;
use crate::cdn::cache::store::{CachedObject, Entry, Store};
use crate::cdn::metrics::{CdnMetrics, DistributionMetrics, OriginMetrics};
use crate::cdn::origin::dir::DirOrigin;
use crate::cdn::origin::http::HttpOriginClient;
use crate::cdn::realtime_log::{RealtimeLogger, Seen, TlsNames, Verdict};
use crate::cdn::request_path::RequestPath;
use crate::cdn::signed::{self, KeyGroup, Verifier};
use crate::config::CdnConfig;
use crate::config::cdn::{Behavior, Distribution, OriginTarget};
use crate::geo::GeoDb;

/// Objects never stay in memory longer than this, whatever their TTL (moka's bound).
const MAX_LIFETIME: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);

/// The connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    pub peer: SocketAddr,
    pub https: bool,
    /// Protocol and cipher of an HTTPS connection, for real-time logs.
    pub tls: Option<TlsNames>,
}

/// Everything requests read: config, origins, the cache. Built once, shared by `Arc`.
pub struct Edge {
    config: Arc<CdnConfig>,
    hosts: HashMap<String, usize>,
    /// Each distribution's id, shared by its cache keys.
    distribution_ids: Vec<Arc<str>>,
    origins: Vec<Vec<OriginHandle>>,
    pub store: Store,
    inflight: Arc<InFlight>,
    https_port: Option<u16>,
    /// The process's counters, shared by every edge it builds.
    metrics: Arc<CdnMetrics>,
    /// Each distribution's counters, by index.
    distribution_metrics: Vec<Arc<DistributionMetrics>>,
    /// Each origin's counters, by distribution and origin index (`None`: an origin group,
    /// whose members count for themselves).
    origin_metrics: Vec<Vec<Option<Arc<OriginMetrics>>>>,
    /// Where viewers are: geo restriction and CloudFront-Viewer-Country.
    geo: GeoDb,
    /// Signature checkers of signed behaviors, by distribution and behavior.
    verifiers: Vec<Vec<Option<Arc<Verifier>>>>,
    /// `[cdn.realtime_logs]`: None costs nothing per request.
    realtime_log: Option<RealtimeLogger>,
    /// What `/healthz` last found.
    probes: crate::cdn::healthz::Probes,
}

/// What every edge of a process shares: the cache, the fills in flight, the counters.
struct Shared {
    store: Store,
    inflight: Arc<InFlight>,
    metrics: Arc<CdnMetrics>,
}

/// One viewer request as the pipeline sees it: its behavior, and the facts it carries.
struct Ask<'a> {
    behavior: &'a Behavior,
    request: Arc<ViewerRequest>,
}

/// What a request carries besides its behavior; shared so background work can keep it.
struct ViewerRequest {
    distribution: usize,
    behavior_index: usize,
    method: Method,
    /// The canonical path: what behaviors matched, and what keys and origins use.
    path: RequestPath,
    query: Option<String>,
    headers: HeaderMap,
    viewer_peer: std::net::IpAddr,
    https: bool,
    host: String,
    http2: bool,
    /// Where the origin's 103 responses go, when the viewer's protocol can send them.
    early_hints: Option<EarlyHints>,
}

impl std::ops::Deref for Ask<'_> {
    type Target = ViewerRequest;
    fn deref(&self) -> &ViewerRequest {
        &self.request
    }
}

impl Edge {
    /// Prepares origins (connection pools, folders) for every distribution; `realtime_log`
    /// gets a record per sampled response.
    ///
    /// # Errors
    /// A folder origin, or the folder for large cached bodies, that cannot be opened.
    pub fn new(
        config: Arc<CdnConfig>,
        https_port: Option<u16>,
        realtime_log: Option<RealtimeLogger>,
    ) -> std::io::Result<Edge> {
        let bodies = match &config.cache_body_dir {
            Some(dir) => BodyFiles::in_dir(dir)?,
            None => BodyFiles::in_memory(),
        };
        let store = Store::new(config.cache_size, MAX_LIFETIME, bodies);
        let inflight = Arc::new(InFlight::default());
        let shared = Shared {
            store,
            inflight,
            metrics: Arc::default(),
        };
        Edge::assemble(config, https_port, realtime_log, shared)
    }

    /// The edge for a reloaded `config` (its first HTTPS listener on `https_port`), sharing
    /// this one's cache, in-flight fills, real-time log queue and counters, so a reload loses
    /// no cached object, log line or count. Objects of distributions the new config no longer has
    /// are dropped.
    ///
    /// # Errors
    /// A folder origin that cannot be opened, or a GeoIP database that cannot be read.
    pub fn reconfigured(
        &self,
        config: Arc<CdnConfig>,
        https_port: Option<u16>,
    ) -> std::io::Result<Edge> {
        let realtime_log = (self.realtime_log.as_ref())
            .map(|log| log.reconfigured(config.realtime_logs.as_ref(), &config.distributions));
        let edge = Edge::assemble(
            config,
            https_port,
            realtime_log,
            Shared {
                store: self.store.clone(),
                inflight: self.inflight.clone(),
                metrics: self.metrics.clone(),
            },
        )?;
        for gone in self
            .distribution_ids
            .iter()
            .filter(|id| !edge.distribution_ids.contains(id))
        {
            edge.store.invalidate(gone, "/*");
        }
        Ok(edge)
    }

    fn assemble(
        config: Arc<CdnConfig>,
        https_port: Option<u16>,
        realtime_log: Option<RealtimeLogger>,
        shared: Shared,
    ) -> std::io::Result<Edge> {
        let Shared {
            store,
            inflight,
            metrics,
        } = shared;
        let tls = crate::net::tls::client_config(true);
        let mut hosts = HashMap::new();
        let mut origins = Vec::new();
        for (index, distribution) in config.distributions.iter().enumerate() {
            for host in &distribution.hosts {
                hosts.insert(host.clone(), index);
            }
            let handles = match &distribution.parent {
                Some(parent) => tier::parent_handles(distribution, parent).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("distribution {} parent: {e}", distribution.id),
                    )
                })?,
                None => own_handles(distribution, &tls)?,
            };
            origins.push(handles);
        }
        let geo = GeoDb::open(&config.geo).map_err(|e| std::io::Error::other(e.to_string()))?;
        let groups: Vec<KeyGroup> = config
            .key_groups
            .iter()
            .map(|group| {
                let keys = group
                    .keys
                    .iter()
                    .filter_map(|(id, pem)| {
                        signed::parse_public_key_pem(pem)
                            .ok()
                            .map(|key| (id.clone(), key))
                    })
                    .collect();
                KeyGroup {
                    id: group.id.clone(),
                    keys,
                }
            })
            .collect();
        let verifiers = config
            .distributions
            .iter()
            .map(|d| {
                d.behaviors
                    .iter()
                    .map(|b| {
                        (!b.trusted_key_groups.is_empty()).then(|| {
                            Arc::new(Verifier::new(
                                b.trusted_key_groups
                                    .iter()
                                    .map(|&g| groups[g].clone())
                                    .collect(),
                            ))
                        })
                    })
                    .collect()
            })
            .collect();
        let distribution_metrics = (config.distributions.iter())
            .map(|d| metrics.distribution(&d.id))
            .collect();
        let origin_metrics = (config.distributions.iter())
            .map(|d| {
                (d.origins.iter())
                    .map(|o| {
                        let group = matches!(o.target, OriginTarget::Group { .. });
                        (!group).then(|| metrics.origin(&d.id, &o.id))
                    })
                    .collect()
            })
            .collect();
        Ok(Edge {
            geo,
            verifiers,
            store,
            distribution_ids: config
                .distributions
                .iter()
                .map(|d| Arc::from(d.id.as_str()))
                .collect(),
            config,
            hosts,
            origins,
            inflight,
            https_port,
            metrics,
            distribution_metrics,
            origin_metrics,
            realtime_log,
            probes: Default::default(),
        })
    }

    /// Real-time log records by outcome, when real-time logs are on.
    pub fn realtime_log_counters(&self) -> Option<[(&'static str, u64); 4]> {
        // The logger also runs for an access log alone; then there is no real-time log.
        self.config.realtime_logs.as_ref()?;
        self.realtime_log.as_ref().map(RealtimeLogger::counters)
    }

    /// The access log's lines written and dropped, when `access_log` is on.
    pub fn access_log_stats(&self) -> Option<Arc<crate::logs::LogStats>> {
        self.realtime_log
            .as_ref()
            .and_then(RealtimeLogger::access_log_stats)
    }

    /// The process's counters (TLS, connections, geo denials, unrouted requests).
    pub fn metrics(&self) -> &Arc<CdnMetrics> {
        &self.metrics
    }

    /// Each distribution's counters, in config order.
    pub fn distribution_metrics(&self) -> &[Arc<DistributionMetrics>] {
        &self.distribution_metrics
    }

    /// Each origin's counters, by distribution then origin (`None` for origin groups).
    pub fn origin_metrics(&self) -> &[Vec<Option<Arc<OriginMetrics>>>] {
        &self.origin_metrics
    }

    /// The configuration this edge was built from.
    pub fn config(&self) -> &CdnConfig {
        &self.config
    }

    /// The last `/healthz` probe of this edge.
    pub fn probes(&self) -> &crate::cdn::healthz::Probes {
        &self.probes
    }

    /// Whether a distribution serves the request's host.
    pub fn serves_authority(&self, uri: &http::Uri, headers: &http::HeaderMap) -> bool {
        route::host_named(uri, headers).is_some_and(|host| self.hosts.contains_key(&host))
    }

    /// Whether a distribution has this id, for the admin API.
    pub fn has_distribution(&self, id: &str) -> bool {
        self.distribution_ids.iter().any(|d| &**d == id)
    }

    /// Answers one viewer request. Every response the pipeline makes passes here, so this
    /// is where a sampled request's record is taken.
    pub async fn handle<B>(self: &Arc<Self>, request: Request<B>, conn: Conn) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BodyError>,
    {
        let facts = self.realtime_log.as_ref().and_then(|log| {
            log.capture(&request, conn.peer, conn.tls, &self.config.trusted_proxies)
        });
        let mut seen = Seen::default();
        let mut response = self.answer(request, conn, &mut seen).await;
        // RFC 9213's targeted fields are for us: stored with the response (a revalidation
        // may need them), never passed on.
        for name in &self.config.targeted_cache_control {
            response.headers_mut().remove(name);
        }
        let status = response.status();
        let result = respond::settle(response.headers_mut(), status, seen.verdict);
        let response = self.count(response, result, seen.route);
        match (&self.realtime_log, facts) {
            (Some(log), Some(facts)) => {
                let country = match seen.country {
                    Some(country) => country,
                    None if log.wants_country() => self
                        .geo
                        .locate(facts.viewer().ip())
                        .and_then(|located| located.location.country),
                    None => None,
                };
                log.attach(response, facts, &seen, country)
            }
            _ => response,
        }
    }

    /// Counts a response, and its body bytes: at once when its length is known (every
    /// response from the cache), else as they go out (streamed from the origin).
    fn count(
        &self,
        response: Response<Body>,
        result: CacheResult,
        route: Option<(usize, usize)>,
    ) -> Response<Body> {
        let counters = match route {
            Some((distribution, _)) => &self.distribution_metrics[distribution],
            None => self.metrics.unrouted(),
        };
        counters.count(response.status(), result);
        if let Some(length) = response.body().size_hint().exact() {
            counters.sent(length);
            return response;
        }
        let counters = counters.clone();
        response.map(|body| {
            body.map_frame(move |frame| {
                if let Some(data) = frame.data_ref() {
                    counters.sent(data.len() as u64);
                }
                frame
            })
            .boxed()
        })
    }

    async fn answer<B>(
        self: &Arc<Self>,
        request: Request<B>,
        conn: Conn,
        seen: &mut Seen,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BodyError>,
    {
        // HTTP/2 and HTTP/3 alike carry no connection-specific fields.
        let http2 = matches!(request.version(), Version::HTTP_2 | Version::HTTP_3);
        // hyper bounds its read buffer, not the header block, so the limit is checked here too.
        let header_bytes: usize = request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if header_bytes > self.config.max_header_size {
            seen.verdict = Some(Verdict::HeadersTooLarge);
            return respond::text(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request headers are too large",
                http2,
            );
        }
        let head = route::Head {
            uri: request.uri(),
            headers: request.headers(),
            method: request.method(),
            https: conn.https,
        };
        let routed = match route::route(&self.hosts, &self.config.distributions, &head) {
            Route::Serve(routed) => routed,
            Route::Redirect { host, route } => {
                seen.verdict = Some(Verdict::Redirect);
                seen.route = Some(route);
                let pq = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
                return respond::redirect_to_https(&host, self.https_port, pq, http2);
            }
            Route::Refuse {
                status,
                message,
                verdict,
                route,
            } => {
                seen.verdict = Some(verdict);
                seen.route = route;
                return respond::text(status, &message, http2);
            }
        };
        let route::Routed {
            distribution,
            behavior: behavior_index,
            host,
            authority,
            path,
        } = routed;
        seen.route = Some((distribution, behavior_index));
        let dist = &self.config.distributions[distribution];
        let behavior = &dist.behaviors[behavior_index];
        let (mut parts, body) = request.into_parts();
        let gate = gate::GateInput {
            authority: &authority,
            distribution: dist,
            uses_viewer_headers: behavior
                .cache_key
                .headers
                .iter()
                .chain(&behavior.forward_headers)
                .any(crate::cdn::viewer::is_viewer_header),
            verifier: self.verifiers[distribution][behavior_index].as_ref(),
            peer: conn.peer,
            https: conn.https,
            path: path.as_str(),
            query: parts.uri.query(),
        };
        let admitted = self.admit(&gate, &mut parts.headers, seen);
        let query = match &admitted {
            Ok(admitted) => admitted.query.clone(),
            Err(_) => None,
        };
        let ask = Ask {
            behavior,
            request: Arc::new(ViewerRequest {
                distribution,
                behavior_index,
                method: parts.method.clone(),
                path,
                query,
                headers: parts.headers,
                viewer_peer: conn.peer.ip(),
                https: conn.https,
                host,
                http2,
                early_hints: parts.extensions.remove::<EarlyHints>(),
            }),
        };
        if let Err(refusal) = admitted {
            match &refusal {
                gate::Refusal::Geo => self.metrics.geo_denied(seen.country.flatten()),
                gate::Refusal::Signature(denial) => {
                    self.distribution_metrics[distribution].denied(*denial);
                }
            }
            seen.verdict = Some(refusal.verdict());
            let refused = respond::text(StatusCode::FORBIDDEN, &refusal.message(), http2);
            return Box::pin(self.custom_error(dist, &ask, refused)).await;
        }
        let response = if matches!(ask.method, Method::GET | Method::HEAD) {
            self.cached(&ask).await
        } else {
            Box::pin(self.pass(&ask, body.map_err(Into::into).boxed())).await
        };
        if response.status().as_u16() < 400 {
            return response;
        }
        Box::pin(self.custom_error(dist, &ask, response)).await
    }

    /// GET and HEAD: the cache in front of the origin.
    async fn cached(self: &Arc<Self>, ask: &Ask<'_>) -> Response<Body> {
        let primary = key::primary(
            &self.distribution_ids[ask.distribution],
            ask.behavior,
            ask.path.as_str(),
            ask.query.as_deref(),
            &ask.headers,
        );
        let now = Instant::now();
        if let Some((object_key, object)) = self.lookup(&primary, &ask.headers).await {
            if object.is_fresh(now) {
                return respond::from_object(
                    &object,
                    &ask.method,
                    &ask.headers,
                    CacheResult::Hit,
                    now,
                    ask.http2,
                );
            }
            let swr = object.freshness.stale_while_revalidate;
            if !object.freshness.must_revalidate && !swr.is_zero() && object.staleness(now) <= swr {
                self.refresh_in_background(ask, object_key, object.clone());
                return respond::from_object(
                    &object,
                    &ask.method,
                    &ask.headers,
                    CacheResult::Hit,
                    now,
                    ask.http2,
                );
            }
            return Box::pin(self.collapsed(ask, &primary, object_key, Some(object))).await;
        }
        // Misses are boxed so that the hit path's future stays small (see server.rs).
        Box::pin(self.collapsed(ask, &primary, primary.clone(), None)).await
    }

    /// One origin fetch per key at a time: the first asker fills (or revalidates `stale`).
    /// The others read the body along while it arrives when their request is a plain GET
    /// selecting the same variant (X-Cache: Hit, as CloudFront reports collapsed requests);
    /// else they wait for the object to be stored and look again, so each gets the variant
    /// its own headers select.
    async fn collapsed(
        self: &Arc<Self>,
        ask: &Ask<'_>,
        primary: &CacheKey,
        key: CacheKey,
        stale: Option<Arc<CachedObject>>,
    ) -> Response<Body> {
        match self.inflight.join(&key) {
            Role::Leader(leader) => self
                .fill(ask, key, stale, Some(leader))
                .await
                .into_viewer(ask),
            Role::Follower(receiver) => {
                self.distribution_metrics[ask.distribution].collapsed();
                let whole = reads_whole_body(ask);
                let outcome = collapse::wait(receiver, |streaming| {
                    whole && streaming.selects(&key, &ask.headers)
                })
                .await;
                match outcome {
                    Outcome::Streaming(streaming) => {
                        return respond::from_stream(
                            &streaming,
                            CacheResult::Hit,
                            Instant::now(),
                            ask.http2,
                        );
                    }
                    Outcome::Stored => {
                        let now = Instant::now();
                        if let Some((_, object)) = self.lookup(primary, &ask.headers).await
                            && object.is_fresh(now)
                        {
                            return respond::from_object(
                                &object,
                                &ask.method,
                                &ask.headers,
                                CacheResult::Hit,
                                now,
                                ask.http2,
                            );
                        }
                    }
                    Outcome::NotShared => {}
                }
                self.fill(ask, key, stale, None).await.into_viewer(ask)
            }
        }
    }

    /// The stored object for a request: the primary entry, or its variant under Vary.
    async fn lookup(
        &self,
        primary: &CacheKey,
        headers: &HeaderMap,
    ) -> Option<(CacheKey, Arc<CachedObject>)> {
        match self.store.get(primary).await? {
            Entry::Object(object) => Some((primary.clone(), object)),
            Entry::Vary(names) => {
                let secondary = key::secondary(primary, &names, headers);
                match self.store.get(&secondary).await? {
                    Entry::Object(object) => Some((secondary, object)),
                    Entry::Vary(_) => None,
                }
            }
        }
    }

    /// stale-while-revalidate: answer now, refresh once in the background.
    fn refresh_in_background(
        self: &Arc<Self>,
        ask: &Ask<'_>,
        key: CacheKey,
        stale: Arc<CachedObject>,
    ) {
        let Role::Leader(leader) = self.inflight.join(&key) else {
            return;
        };
        let edge = self.clone();
        let request = ask.request.clone();
        tokio::spawn(async move {
            let behavior =
                &edge.config.distributions[request.distribution].behaviors[request.behavior_index];
            let ask = Ask { behavior, request };
            let _ = edge.fill(&ask, key, Some(stale), Some(leader)).await;
        });
    }

    /// Unsafe methods go straight to the origin; a success invalidates the cached path and
    /// those its `Location` and `Content-Location` name on the same host (RFC 9111 §4.4).
    async fn pass(&self, ask: &Ask<'_>, body: Body) -> Response<Body> {
        let (body, viewer_body_failed) = body::watched(body);
        let mut headers = forward::origin_headers(
            &ask.headers,
            &self.viewer(ask),
            forward::Forwarding::EndToEnd,
        );
        gate::drop_unlisted_viewer_headers(&mut headers, ask.behavior);
        set_cookies(&mut headers, ask);
        let query = key::origin_query(ask.behavior, ask.query.as_deref());
        let request = forward::OriginRequest {
            method: &ask.method,
            path: &ask.path,
            query: query.as_deref(),
            headers: &headers,
            early_hints: ask.early_hints.as_ref(),
        };
        match forward::send(
            &self.origins[ask.distribution],
            &self.origin_metrics[ask.distribution],
            ask.behavior.origin,
            &request,
            body,
        )
        .await
        {
            Ok(mut response) => {
                if response.status().is_success() || response.status().is_redirection() {
                    let distribution = &self.distribution_ids[ask.distribution];
                    self.store.invalidate(distribution, ask.path.as_str());
                    for path in invalidate::related_paths(response.headers(), &ask.host, &ask.path)
                    {
                        self.store.invalidate(distribution, path.as_str());
                    }
                }
                respond::finish(response.headers_mut(), CacheResult::Miss, ask.http2);
                response
            }
            Err(_) if viewer_body_failed.load(Ordering::Relaxed) => respond::text(
                StatusCode::BAD_REQUEST,
                "the request body is malformed or was cut short",
                ask.http2,
            ),
            Err(e) => respond::origin_failed(&e, &ask.path, ask.http2),
        }
    }

    /// A custom error page in place of an error status, when the distribution has one.
    async fn custom_error(
        self: &Arc<Self>,
        dist: &Distribution,
        ask: &Ask<'_>,
        response: Response<Body>,
    ) -> Response<Body> {
        let status = response.status().as_u16();
        let Some(custom) = dist.custom_errors.iter().find(|c| c.status == status) else {
            return response;
        };
        let Ok(path) = RequestPath::parse(&custom.path) else {
            return response;
        };
        let Some(behavior_index) = dist
            .behaviors
            .iter()
            .position(|b| b.pattern.matches(path.as_str()))
        else {
            return response;
        };
        let page_ask = Ask {
            behavior: &dist.behaviors[behavior_index],
            request: Arc::new(ViewerRequest {
                distribution: ask.distribution,
                behavior_index,
                method: Method::GET,
                path,
                query: None,
                headers: HeaderMap::new(),
                viewer_peer: ask.viewer_peer,
                https: ask.https,
                host: ask.host.clone(),
                http2: ask.http2,
                // The error page is not what the hints were about.
                early_hints: None,
            }),
        };
        let page = Box::pin(self.cached(&page_ask)).await;
        if page.status() != StatusCode::OK {
            return response;
        }
        let (mut parts, page_body) = page.into_parts();
        parts.status = StatusCode::from_u16(custom.response_status).unwrap_or(response.status());
        let body = if ask.method == Method::HEAD {
            body::empty()
        } else {
            page_body
        };
        Response::from_parts(parts, body)
    }

    fn viewer<'a>(&self, ask: &'a Ask<'_>) -> Viewer<'a> {
        Viewer {
            peer: ask.viewer_peer,
            https: ask.https,
            host: &ask.host,
            http2: ask.http2,
        }
    }
}

/// A plain GET: the whole body, unconditionally, so a response can be streamed to it
/// before it is stored. HEAD, ranges and conditional requests are answered from the object.
fn reads_whole_body(ask: &Ask<'_>) -> bool {
    ask.method == Method::GET
        && !ask.headers.contains_key(header::RANGE)
        && !ask.headers.contains_key(header::IF_NONE_MATCH)
        && !ask.headers.contains_key(header::IF_MODIFIED_SINCE)
}

/// Only the behavior's cookies reach the origin (CloudFront's cookie policy).
fn set_cookies(headers: &mut HeaderMap, ask: &Ask<'_>) {
    headers.remove(header::COOKIE);
    if let Some(cookies) = key::selected_cookies(&ask.behavior.cache_key.cookies, &ask.headers)
        && let Ok(value) = http::HeaderValue::from_str(&cookies)
    {
        headers.insert(header::COOKIE, value);
    }
}

/// A distribution's handles on its own origins (no parent tier).
fn own_handles(
    distribution: &crate::config::cdn::Distribution,
    tls: &Arc<rustls::ClientConfig>,
) -> std::io::Result<Vec<OriginHandle>> {
    let mut handles = Vec::new();
    for origin in &distribution.origins {
        handles.push(match &origin.target {
            OriginTarget::Http(http) => OriginHandle::Http(Box::new(HttpOriginClient::new(
                &origin.id,
                http.clone(),
                tls.clone(),
                None,
            ))),
            OriginTarget::Dir(dir) => OriginHandle::Dir(DirOrigin::new(dir).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("origin {} folder {}: {e}", origin.id, dir.display()),
                )
            })?),
            OriginTarget::Group {
                members,
                failover_status,
            } => OriginHandle::Group {
                members: members.clone(),
                failover_status: failover_status.clone(),
            },
        });
    }
    Ok(handles)
}
