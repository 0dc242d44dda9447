//! The CDN's Prometheus metrics. Every counter a request touches is an atomic laid out when
//! the edge is built: a block per distribution (found by the distribution's index, never by
//! its name) and per origin, plus process-wide arrays for TLS, connections and countries.
//! Blocks are kept across reloads: the next edge takes the block of each distribution id
//! (and origin id) the current one still holds, through a registry touched only while an
//! edge is built. A scrape reads the blocks of the edge in force.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use http::StatusCode;
use rustls::{ProtocolVersion, ServerConnection};

use super::cache::mapped;
use super::proxy::Edge;
use super::proxy::respond::CacheResult;
use super::signed::Denial;
use crate::geo::Code;
use crate::metrics::{self, Collector, DescriptorEncoder, Histogram};

/// The results `edgewise_cdn_requests_total` counts, as `X-Cache` and the real-time log's
/// edge result type say them.
const RESULTS: [CacheResult; 6] = [
    CacheResult::Hit,
    CacheResult::Miss,
    CacheResult::RefreshHit,
    CacheResult::Error,
    CacheResult::Redirect,
    CacheResult::ParentHit,
];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const DENIALS: [Denial; 8] = [
    Denial::Missing,
    Denial::Malformed,
    Denial::BadSignature,
    Denial::UnknownKey,
    Denial::Expired,
    Denial::NotYetValid,
    Denial::WrongIp,
    Denial::WrongResource,
];
const TLS_VERSIONS: [&str; 2] = ["TLSv1.2", "TLSv1.3"];
const ALPNS: [&str; 4] = ["h2", "http/1.1", "h3", "none"];
/// Open viewer connections: HTTPS by the protocol ALPN chose, and plain HTTP.
const PROTOCOLS: [&str; 4] = ["h2", "http/1.1", "h3", "http"];
/// Two-letter countries, then the rest (no location, or a code of another length).
const COUNTRIES: usize = 26 * 26 + 1;
/// Origin response times, in microseconds: 1 ms to 30 s.
const ORIGIN_LATENCY: &[u64] = &[
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000,
];

/// A distribution's counters (or those of requests no distribution took).
pub struct DistributionMetrics {
    id: Arc<str>,
    /// By status class, then by result (in [`RESULTS`] order).
    requests: [[AtomicU64; RESULTS.len()]; STATUS_CLASSES.len()],
    /// Response body bytes sent to viewers.
    response_bytes: AtomicU64,
    /// Requests that waited for another request's origin fetch of the same object.
    collapsed: AtomicU64,
    /// Signed URL or cookie refusals, in [`DENIALS`] order.
    denials: [AtomicU64; DENIALS.len()],
}

/// One origin's counters.
pub struct OriginMetrics {
    distribution: Arc<str>,
    origin: Arc<str>,
    requests: AtomicU64,
    /// Requests that got no response (connection refused, timeout, broken response).
    errors: AtomicU64,
    /// Time to the response head, for requests that got one.
    latency: Histogram,
}

/// The registry of blocks by id, kept only while some edge holds them.
#[derive(Default)]
struct Blocks {
    distributions: HashMap<String, Weak<DistributionMetrics>>,
    origins: HashMap<(String, String), Weak<OriginMetrics>>,
}

/// What the CDN counts beyond one edge's distributions; shared by every edge of a process.
pub struct CdnMetrics {
    blocks: Mutex<Blocks>,
    /// Requests refused before a distribution was chosen (unknown host, headers too large).
    unrouted: Arc<DistributionMetrics>,
    /// Completed handshakes by version, then by ALPN protocol.
    handshakes: [[AtomicU64; ALPNS.len()]; TLS_VERSIONS.len()],
    handshake_failures: AtomicU64,
    /// In [`PROTOCOLS`] order.
    open: [AtomicI64; PROTOCOLS.len()],
    /// Geo restriction refusals by viewer country (see [`country_slot`]).
    geo_denials: Box<[AtomicU64]>,
}

impl DistributionMetrics {
    fn new(id: &str) -> DistributionMetrics {
        DistributionMetrics {
            id: Arc::from(id),
            requests: Default::default(),
            response_bytes: AtomicU64::new(0),
            collapsed: AtomicU64::new(0),
            denials: Default::default(),
        }
    }

    /// A response with `status`, produced as `result`.
    pub fn count(&self, status: StatusCode, result: CacheResult) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        let index = RESULTS.iter().position(|&r| r == result).unwrap_or(3);
        self.requests[class][index].fetch_add(1, Ordering::Relaxed);
    }

    /// Responses so far by result (every status class), in `X-Cache` spelling: what the
    /// console charts.
    pub fn requests_by_result(&self) -> Vec<(&'static str, u64)> {
        RESULTS
            .iter()
            .enumerate()
            .map(|(i, result)| {
                (
                    result.as_str(),
                    self.requests.iter().map(|row| load(&row[i])).sum(),
                )
            })
            .collect()
    }

    /// Responses so far by status class (`1xx`..`5xx`, every result): the console's table.
    pub fn requests_by_class(&self) -> [(&'static str, u64); STATUS_CLASSES.len()] {
        std::array::from_fn(|i| (STATUS_CLASSES[i], self.requests[i].iter().map(load).sum()))
    }

    /// Response body bytes sent to viewers so far.
    pub fn response_bytes(&self) -> u64 {
        load(&self.response_bytes)
    }

    pub fn sent(&self, bytes: u64) {
        self.response_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn collapsed(&self) {
        self.collapsed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn denied(&self, denial: Denial) {
        let index = DENIALS.iter().position(|&d| d == denial).unwrap_or(0);
        self.denials[index].fetch_add(1, Ordering::Relaxed);
    }
}

impl OriginMetrics {
    /// The distribution id and the origin id, as the metrics label them.
    pub fn ids(&self) -> (&str, &str) {
        (&self.distribution, &self.origin)
    }

    /// Requests sent so far, and those that got no response.
    pub fn requests_and_errors(&self) -> (u64, u64) {
        (load(&self.requests), load(&self.errors))
    }

    /// Time to the response head of the requests answered, in seconds.
    pub fn latency(&self) -> &Histogram {
        &self.latency
    }

    /// One request to this origin, which took `elapsed` to answer (or to fail).
    pub fn observe(&self, elapsed: Duration, answered: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if answered {
            self.latency
                .observe(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An open viewer connection, counted until dropped.
pub struct OpenConnection<'a>(&'a AtomicI64);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for CdnMetrics {
    fn default() -> CdnMetrics {
        CdnMetrics {
            blocks: Mutex::default(),
            unrouted: Arc::new(DistributionMetrics::new("")),
            handshakes: Default::default(),
            handshake_failures: AtomicU64::new(0),
            open: Default::default(),
            geo_denials: (0..COUNTRIES).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl CdnMetrics {
    /// The block of distribution `id`: the one an edge still holds, else a new one. For
    /// building an edge only.
    pub fn distribution(&self, id: &str) -> Arc<DistributionMetrics> {
        let mut blocks = self.blocks.lock().unwrap_or_else(PoisonError::into_inner);
        blocks
            .distributions
            .retain(|_, block| block.strong_count() > 0);
        reuse(&mut blocks.distributions, id.to_string(), || {
            DistributionMetrics::new(id)
        })
    }

    /// The block of origin `origin` of distribution `distribution`, as [`Self::distribution`].
    pub fn origin(&self, distribution: &str, origin: &str) -> Arc<OriginMetrics> {
        let mut blocks = self.blocks.lock().unwrap_or_else(PoisonError::into_inner);
        blocks.origins.retain(|_, block| block.strong_count() > 0);
        let key = (distribution.to_string(), origin.to_string());
        reuse(&mut blocks.origins, key, || OriginMetrics {
            distribution: Arc::from(distribution),
            origin: Arc::from(origin),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: Histogram::new(ORIGIN_LATENCY, 1e6),
        })
    }

    /// Requests no distribution took.
    pub fn unrouted(&self) -> &Arc<DistributionMetrics> {
        &self.unrouted
    }

    /// A completed TLS handshake.
    pub fn handshake(&self, connection: &ServerConnection) {
        let version = match connection.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => 1,
            _ => 0,
        };
        self.handshakes[version][alpn_slot(connection.alpn_protocol())]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A QUIC handshake (always TLS 1.3, ALPN h3).
    pub fn quic_handshake(&self) {
        self.handshakes[1][alpn_slot(Some(b"h3"))].fetch_add(1, Ordering::Relaxed);
    }

    pub fn handshake_failed(&self) {
        self.handshake_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a viewer connection as open until the guard is dropped: `alpn` for HTTPS
    /// (`Some(None)` when the client named no protocol), `None` for plain HTTP.
    pub fn open(&self, alpn: Option<Option<&[u8]>>) -> OpenConnection<'_> {
        let slot = match alpn {
            Some(Some(b"h2")) => 0,
            Some(Some(b"h3")) => 2,
            Some(_) => 1,
            None => 3,
        };
        self.open[slot].fetch_add(1, Ordering::Relaxed);
        OpenConnection(&self.open[slot])
    }

    /// A request refused by a distribution's geo restriction.
    pub fn geo_denied(&self, country: Option<Code>) {
        self.geo_denials[country_slot(country)].fetch_add(1, Ordering::Relaxed);
    }
}

/// The live block under `key`, or a new one made by `make` and remembered.
fn reuse<K: std::hash::Hash + Eq, T>(
    map: &mut HashMap<K, Weak<T>>,
    key: K,
    make: impl FnOnce() -> T,
) -> Arc<T> {
    if let Some(block) = map.get(&key).and_then(Weak::upgrade) {
        return block;
    }
    let block = Arc::new(make());
    map.insert(key, Arc::downgrade(&block));
    block
}

fn alpn_slot(alpn: Option<&[u8]>) -> usize {
    match alpn {
        Some(b"h2") => 0,
        Some(b"http/1.1") => 1,
        Some(b"h3") => 2,
        _ => 3,
    }
}

/// `AA`..`ZZ` at 0..676, anything else at 676.
fn country_slot(country: Option<Code>) -> usize {
    match country.as_ref().map(|c| c.as_str().as_bytes()) {
        Some(&[a, b]) if a.is_ascii_uppercase() && b.is_ascii_uppercase() => {
            usize::from(a - b'A') * 26 + usize::from(b - b'A')
        }
        _ => COUNTRIES - 1,
    }
}

fn country_label(slot: usize) -> String {
    if slot == COUNTRIES - 1 {
        return "unknown".to_string();
    }
    let letter = |i: usize| char::from(b'A' + u8::try_from(i).unwrap_or(0));
    [letter(slot / 26), letter(slot % 26)].iter().collect()
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// The CDN's metrics as of a scrape: the counters of the edge in force, its cache, and
/// the real-time log queue.
pub struct CdnCollector(pub Arc<Edge>);

impl fmt::Debug for CdnCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CdnCollector")
    }
}

impl Collector for CdnCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let edge = &self.0;
        let process = edge.metrics();
        let blocks: Vec<&DistributionMetrics> = std::iter::once(&**process.unrouted())
            .chain(edge.distribution_metrics().iter().map(|b| &**b))
            .collect();
        let e = &mut encoder;
        let requests = blocks.iter().flat_map(|block| {
            block
                .requests
                .iter()
                .zip(STATUS_CLASSES)
                .flat_map(move |(row, class)| {
                    row.iter()
                        .zip(RESULTS)
                        .map(move |(count, result)| (block, class, result, load(count)))
                })
        });
        metrics::counters(
            e,
            "edgewise_cdn_requests",
            "Viewer responses by distribution (\"\" when none took the request), status class and result (as X-Cache and the real-time log's edge result type).",
            requests
                .filter(|row| row.3 > 0)
                .map(|(block, class, result, n)| {
                    (
                        [
                            ("distribution", &*block.id),
                            ("status_class", class),
                            ("result", result.as_str()),
                        ],
                        n,
                    )
                }),
        )?;
        metrics::counters(
            e,
            "edgewise_cdn_response_bytes",
            "Response body bytes sent to viewers.",
            blocks
                .iter()
                .map(|b| ([("distribution", &*b.id)], load(&b.response_bytes))),
        )?;
        metrics::counters(
            e,
            "edgewise_cdn_collapsed_requests",
            "Requests that waited for another request's origin fetch of the same object.",
            blocks[1..]
                .iter()
                .map(|b| ([("distribution", &*b.id)], load(&b.collapsed))),
        )?;
        let denials = blocks[1..].iter().flat_map(|b| {
            b.denials
                .iter()
                .zip(DENIALS)
                .map(move |(count, denial)| (b, denial, load(count)))
        });
        metrics::counters(
            e,
            "edgewise_cdn_signed_url_denials",
            "Requests refused for a missing or invalid signed URL or cookie, by reason.",
            denials
                .filter(|row| row.2 > 0)
                .map(|(b, denial, n)| ([("distribution", &*b.id), ("reason", denial.as_str())], n)),
        )?;
        let countries: Vec<(String, u64)> = (process.geo_denials.iter().enumerate())
            .filter(|(_, count)| load(count) > 0)
            .map(|(slot, count)| (country_label(slot), load(count)))
            .collect();
        metrics::counters(
            e,
            "edgewise_cdn_geo_denials",
            "Requests refused by a geo restriction, by viewer country.",
            countries
                .iter()
                .map(|(country, n)| ([("country", country.as_str())], *n)),
        )?;
        let origins: Vec<&OriginMetrics> = edge
            .origin_metrics()
            .iter()
            .flatten()
            .filter_map(Option::as_deref)
            .collect();
        let origin_labels = |o: &OriginMetrics| {
            [
                ("distribution", o.distribution.clone()),
                ("origin", o.origin.clone()),
            ]
        };
        metrics::counters(
            e,
            "edgewise_cdn_origin_requests",
            "Requests sent to origins (each member of an origin group counts for itself).",
            origins
                .iter()
                .map(|o| (origin_labels(o), load(&o.requests))),
        )?;
        metrics::counters(
            e,
            "edgewise_cdn_origin_errors",
            "Origin requests that got no response: refused or failed connections, timeouts, broken responses.",
            origins.iter().map(|o| (origin_labels(o), load(&o.errors))),
        )?;
        metrics::histograms(
            e,
            "edgewise_cdn_origin_latency_seconds",
            "Time from sending an origin request to its response head.",
            origins.iter().map(|o| (origin_labels(o), &o.latency)),
        )?;
        let handshakes = process
            .handshakes
            .iter()
            .zip(TLS_VERSIONS)
            .flat_map(|(row, version)| {
                row.iter().zip(ALPNS).map(move |(count, alpn)| {
                    ([("protocol", version), ("alpn", alpn)], load(count))
                })
            });
        metrics::counters(
            e,
            "edgewise_cdn_tls_handshakes",
            "Completed TLS handshakes by protocol version and ALPN protocol.",
            handshakes,
        )?;
        metrics::counter(
            e,
            "edgewise_cdn_tls_handshake_failures",
            "TLS handshakes that failed or timed out.",
            load(&process.handshake_failures),
        )?;
        metrics::gauges(
            e,
            "edgewise_cdn_open_connections",
            "Open viewer connections: HTTPS by ALPN protocol (h2, http/1.1), HTTP/3 (h3), and plain HTTP.",
            process.open.iter().zip(PROTOCOLS).map(|(open, protocol)| {
                (
                    [("protocol", protocol)],
                    open.load(Ordering::Relaxed) as f64,
                )
            }),
        )?;
        let (objects, bytes) = edge.store.usage();
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        metrics::gauge(
            e,
            "edgewise_cdn_cache_objects",
            "Objects in the cache.",
            gauge(objects),
        )?;
        metrics::gauge(
            e,
            "edgewise_cdn_cache_bytes",
            "Bytes held by the cache.",
            gauge(bytes),
        )?;
        metrics::counter(
            e,
            "edgewise_cdn_cache_evictions",
            "Objects evicted to keep the cache within cache_size.",
            edge.store.evictions(),
        )?;
        metrics::gauge(
            e,
            "edgewise_cdn_mapped_bodies",
            "Large cached bodies held in files of their own (sent with sendfile over plain HTTP).",
            gauge(mapped::live() as u64),
        )?;
        metrics::counter(
            e,
            "edgewise_cdn_mapped_fallbacks",
            "Large bodies kept on the heap because no file could be made for them.",
            mapped::fallbacks(),
        )?;
        if let Some(counters) = edge.realtime_log_counters() {
            metrics::counters(
                e,
                "edgewise_realtime_log_records",
                "Real-time log records: queued for the writer, dropped (queue full or no writer), written to the stream, or failed to write.",
                counters.map(|(result, n)| ([("result", result)], n)),
            )?;
        }
        if let Some(log) = edge.access_log_stats() {
            metrics::counters(
                e,
                "edgewise_cdn_access_log_lines",
                "Access log lines written, and dropped because the log's queue was full.",
                [
                    ([("result", "written")], log.written()),
                    ([("result", "dropped")], log.dropped()),
                ],
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_have_a_slot_each_and_the_rest_share_one() {
        for code in ["AA", "DE", "KR", "ZZ"] {
            let slot = country_slot(Code::new(code));
            assert!(slot < COUNTRIES - 1);
            assert_eq!(country_label(slot), code);
        }
        for other in [None, Code::new("EU1"), Code::new("A"), Code::new("A1")] {
            assert_eq!(country_label(country_slot(other)), "unknown");
        }
    }

    #[test]
    fn blocks_are_reused_while_an_edge_holds_them() {
        let metrics = CdnMetrics::default();
        let held = metrics.distribution("site");
        held.collapsed();
        assert_eq!(load(&metrics.distribution("site").collapsed), 1);
        drop(held);
        assert_eq!(load(&metrics.distribution("site").collapsed), 0);
        let origin = metrics.origin("site", "app");
        assert!(Arc::ptr_eq(&origin, &metrics.origin("site", "app")));
        assert!(!Arc::ptr_eq(&origin, &metrics.origin("other", "app")));
    }
}
