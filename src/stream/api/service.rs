//! One request end to end: route (Kinesis operation, NDJSON ingest, metrics), read the body
//! within limits, authenticate (SigV4 against the configured keys, or loopback-only when
//! none are configured), then hand the operation its decoded fields.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::error::{ErrorCode, KinesisError};
use super::sigv4::{self, SignedRequest};
use super::token::IteratorKey;
use super::value::{self, Fields, Format};
use super::{ingest, ops};
use crate::config::StreamConfig;
use crate::config::stream::AccessKey;
use crate::metrics::{self, Collector, DescriptorEncoder, Histogram};
use crate::stream::delivery::{DeliveryProgress, DeliveryStats};
use crate::stream::log::{Log, Shard, ShardCounters};

/// 5 MiB of records, base64-inflated by a third, plus JSON framing for 500 entries.
const MAX_BODY: usize = 8 << 20;
/// A slow client may not hold a request open longer than this while sending its body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
const TARGET_PREFIX: &str = "Kinesis_20131202.";

/// The API's shared state; one per process.
pub struct Api {
    pub(super) log: Arc<Log>,
    keys: Vec<AccessKey>,
    /// This process's (from `data_dir`), or the one shared through a stream cluster.
    pub(super) iterator_key: ArcSwap<IteratorKey>,
    pub(super) allow_create_streams: bool,
    delivery: Arc<DeliveryStats>,
    pub(super) counters: Counters,
}

/// Put latency bounds, in microseconds: 100 µs to 10 s.
const PUT_LATENCY: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 10_000_000,
];

/// The ways records are put, each with its latency histogram.
#[derive(Debug, Clone, Copy)]
pub(super) enum PutOperation {
    PutRecord,
    PutRecords,
    /// NDJSON lines to `/ingest/<stream>`.
    Ingest,
}

impl PutOperation {
    const ALL: [PutOperation; 3] = [
        PutOperation::PutRecord,
        PutOperation::PutRecords,
        PutOperation::Ingest,
    ];

    fn as_str(self) -> &'static str {
        match self {
            PutOperation::PutRecord => "PutRecord",
            PutOperation::PutRecords => "PutRecords",
            PutOperation::Ingest => "ingest",
        }
    }
}

/// The API's own counters for /metrics (records in and out are counted by each shard).
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) records_failed: AtomicU64,
    /// From the request's validation to every record's outcome, by [`PutOperation`].
    put_latency: [Histogram; PutOperation::ALL.len()],
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            records_failed: AtomicU64::new(0),
            put_latency: PutOperation::ALL.map(|_| Histogram::new(PUT_LATENCY, 1e6)),
        }
    }
}

impl Counters {
    /// A put of `operation` that started at `start` has every record's outcome.
    pub(super) fn put_latency(&self, operation: PutOperation, start: Instant) {
        let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.put_latency[operation as usize].observe(micros);
    }
}

/// Who is asking, once authenticated: the region their signature was scoped to.
pub(super) struct Caller {
    pub(super) region: String,
}

impl Api {
    /// Seals and opens iterators and NextTokens with `key` from now on: the one every
    /// process in front of a stream cluster shares. Before serving.
    pub fn share_iterator_key(&self, key: [u8; 32]) {
        self.iterator_key
            .store(Arc::new(IteratorKey::from_bytes(key)));
    }

    /// # Errors
    /// The iterator key file in `data_dir` cannot be read or created.
    pub fn new(
        log: Arc<Log>,
        config: &StreamConfig,
        delivery: Arc<DeliveryStats>,
    ) -> Result<Api, String> {
        let key_path = config.data_dir.join("iterator.key");
        let iterator_key = IteratorKey::load_or_create(&key_path).map_err(|e| e.to_string())?;
        Ok(Api {
            log,
            keys: config.access_keys.clone(),
            iterator_key: ArcSwap::from_pointee(iterator_key),
            allow_create_streams: config.allow_create_streams,
            delivery,
            counters: Counters::default(),
        })
    }

    /// Answers one request; never fails (every problem becomes an error response).
    pub async fn handle(
        self: &Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let response = self.route(request, peer).await;
        if !response.status().is_success() {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        response.map(Full::new)
    }

    async fn route(
        self: &Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Bytes> {
        let path = request.uri().path().to_owned();
        if request.method() == Method::GET && path == "/metrics" {
            return if is_loopback(peer.ip()) {
                self.metrics()
            } else {
                plain(
                    StatusCode::FORBIDDEN,
                    "metrics are served to loopback clients only\n",
                )
            };
        }
        if let Some(stream) = path.strip_prefix("/ingest/") {
            let stream = stream.to_owned();
            let query = request.uri().query().unwrap_or("").to_owned();
            if request.method() != Method::POST {
                return ingest::error_response(StatusCode::METHOD_NOT_ALLOWED, "use POST");
            }
            return match self.read_authenticated(request, peer).await {
                Ok((_, body)) => ingest::handle(self, &stream, &query, &body).await,
                Err(e) => ingest::error_response(e.status(), &e.message),
            };
        }
        let format = match Format::from_content_type(
            request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        ) {
            Ok(format) => format,
            Err(e) => return e.into_response(Format::Json),
        };
        if request.method() != Method::POST {
            return KinesisError::new(
                ErrorCode::UnknownOperation,
                "Kinesis operations are POST requests",
            )
            .into_response(format);
        }
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.strip_prefix(TARGET_PREFIX))
            .map(str::to_owned);
        let (caller, body) = match self.read_authenticated(request, peer).await {
            Ok(read) => read,
            Err(e) => return e.into_response(format),
        };
        let Some(operation) = operation else {
            return KinesisError::new(
                ErrorCode::UnknownOperation,
                "no X-Amz-Target header naming Kinesis_20131202.<Operation>",
            )
            .into_response(format);
        };
        let decoded = match value::decode(format, &body) {
            Ok(decoded) => decoded,
            Err(e) => return e.into_response(format),
        };
        let result = match Fields::root(format, &decoded) {
            Ok(fields) => ops::dispatch(self, &caller, &operation, &fields).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(output) => super::error::success(format, output.as_ref()),
            Err(e) => e.into_response(format),
        }
    }

    /// Reads and authenticates a request another part of the process answers (analytics):
    /// its body, or why it is refused.
    ///
    /// # Errors
    /// The body could not be read, or the caller is not allowed.
    pub async fn authenticate(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Bytes, KinesisError> {
        self.read_authenticated(request, peer)
            .await
            .map(|(_, body)| body)
    }

    /// Reads the body (bounded in size and time), then checks who sent it.
    async fn read_authenticated(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<(Caller, Bytes), KinesisError> {
        let (mut parts, body) = request.into_parts();
        let collected = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect())
            .await
            .map_err(|_| {
                KinesisError::new(
                    ErrorCode::Serialization,
                    "the request body did not arrive in time",
                )
            })?
            .map_err(|e| {
                KinesisError::new(
                    ErrorCode::Serialization,
                    format!("the request body could not be read (limit {MAX_BODY} bytes): {e}"),
                )
            })?;
        let body = collected.to_bytes();
        if self.keys.is_empty() {
            if !is_loopback(peer.ip()) {
                return Err(KinesisError::new(
                    ErrorCode::AccessDenied,
                    "no access keys are configured ([stream].access_keys), so only loopback clients are served",
                ));
            }
            return Ok((
                Caller {
                    region: "us-east-1".to_owned(),
                },
                body,
            ));
        }
        // HTTP/2 carries the host in the authority, which SigV4 signs as `host`.
        if !parts.headers.contains_key(header::HOST)
            && let Some(authority) = parts.uri.authority()
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            parts.headers.insert(header::HOST, host);
        }
        let signer = sigv4::verify(
            &SignedRequest {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                headers: &parts.headers,
                body: &body,
            },
            &self.keys,
            SystemTime::now(),
        )?;
        Ok((
            Caller {
                region: signer.region,
            },
            body,
        ))
    }

    fn metrics(self: &Arc<Self>) -> Response<Bytes> {
        let text = metrics::render([self.collector()]);
        let mut response = Response::new(Bytes::from(text));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        );
        response
    }

    /// The stream side's metrics as of a scrape: the API's, every shard's, every delivery's.
    pub fn collector(self: &Arc<Self>) -> Box<dyn Collector> {
        Box::new(StreamCollector(self.clone()))
    }
}

struct StreamCollector(Arc<Api>);

impl std::fmt::Debug for StreamCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamCollector")
    }
}

type ShardCounter = fn(&ShardCounters) -> &AtomicU64;
type DeliveryCounter = fn(&DeliveryProgress) -> &AtomicU64;

impl Collector for StreamCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let (e, api) = (&mut encoder, &self.0);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let c = &api.counters;
        metrics::counter(
            e,
            "edgewise_stream_requests",
            "API requests.",
            load(&c.requests),
        )?;
        metrics::counter(
            e,
            "edgewise_stream_errors",
            "API requests answered with an error.",
            load(&c.errors),
        )?;
        metrics::counter(
            e,
            "edgewise_stream_records_failed",
            "Records that could not be appended.",
            load(&c.records_failed),
        )?;
        metrics::histograms(
            e,
            "edgewise_stream_put_latency_seconds",
            "Time to append a put's records (PutRecord, PutRecords, NDJSON ingest), once validated.",
            PutOperation::ALL
                .iter()
                .zip(&c.put_latency)
                .map(|(op, histogram)| ([("operation", op.as_str())], histogram)),
        )?;
        let streams = api.log.streams();
        let ids: Vec<(String, &Shard, &str)> = streams
            .iter()
            .flat_map(|s| {
                s.shards()
                    .iter()
                    .map(move |shard| (shard.id(), shard, s.name()))
            })
            .collect();
        let shards: Vec<([(&str, &str); 2], &Shard)> = ids
            .iter()
            .map(|(id, shard, stream)| ([("stream", *stream), ("shard", id.as_str())], *shard))
            .collect();
        let per_shard: [(&str, &str, ShardCounter); 4] = [
            (
                "edgewise_stream_records_in",
                "Records appended (API puts and real-time log lines), by stream and shard.",
                |c| &c.records_in,
            ),
            (
                "edgewise_stream_bytes_in",
                "Record data bytes appended (partition keys not counted).",
                |c| &c.bytes_in,
            ),
            (
                "edgewise_stream_records_out",
                "Records returned by GetRecords.",
                |c| &c.records_out,
            ),
            (
                "edgewise_stream_bytes_out",
                "Record data bytes returned by GetRecords.",
                |c| &c.bytes_out,
            ),
        ];
        for (name, help, pick) in per_shard {
            let rows = shards
                .iter()
                .map(|(labels, shard)| (*labels, load(pick(shard.counters()))));
            metrics::counters(e, name, help, rows)?;
        }
        metrics::counters(
            e,
            "edgewise_stream_fsyncs",
            "fdatasync calls on segment files.",
            shards
                .iter()
                .map(|(labels, shard)| (*labels, shard.syncs())),
        )?;
        metrics::histograms(
            e,
            "edgewise_stream_group_commit_appends",
            "Appends acknowledged by one write (and, with fsync = \"always\", one fdatasync).",
            (shards.iter()).map(|(labels, shard)| (*labels, &shard.counters().commit_appends)),
        )?;
        let deliveries = api.delivery.running();
        let labels = |d: &DeliveryProgress| -> [(&'static str, String); 2] {
            [("stream", d.stream.clone()), ("dir", d.dir.clone())]
        };
        let per_delivery: [(&str, &str, DeliveryCounter); 4] = [
            (
                "edgewise_delivery_records",
                "Records delivered to files, by delivery (stream and folder).",
                |d| &d.records,
            ),
            ("edgewise_delivery_files", "Delivery files written.", |d| {
                &d.files
            }),
            (
                "edgewise_delivery_failures",
                "Delivery reads or writes that failed (retried).",
                |d| &d.failures,
            ),
            (
                "edgewise_delivery_expired",
                "Records removed by retention before delivery.",
                |d| &d.expired,
            ),
        ];
        for (name, help, pick) in per_delivery {
            let rows = deliveries.iter().map(|d| (labels(d), load(pick(d))));
            metrics::counters(e, name, help, rows)?;
        }
        metrics::gauges(
            e,
            "edgewise_delivery_millis_behind_latest",
            "How far behind the newest record a delivery's reading is, over its shards (Kinesis's MillisBehindLatest; 0 when caught up).",
            (deliveries.iter()).map(|d| (labels(d), load(&d.millis_behind) as f64)),
        )
    }
}

/// Loopback, including IPv4-mapped IPv6 loopback.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(text.as_bytes()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// Milliseconds since the Unix epoch.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without access keys only these peers are served; the integration tests cannot connect
    /// from outside 127.0.0.0/8, so the rule is checked here.
    #[test]
    fn loopback_peers() {
        for ip in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "10.0.0.1",
            "192.168.1.2",
            "0.0.0.0",
            "::",
            "::ffff:10.0.0.1",
            "fe80::1",
        ] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }
}
