//! One request end to end: route (Kinesis operation, NDJSON ingest, metrics), read the body
//! within limits, authenticate (SigV4 against the configured keys, or loopback-only when
//! none are configured), then hand the operation its decoded fields.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
use crate::stream::delivery::DeliveryStats;
use crate::stream::log::Log;

/// 5 MiB of records, base64-inflated by a third, plus JSON framing for 500 entries.
const MAX_BODY: usize = 8 << 20;
/// A slow client may not hold a request open longer than this while sending its body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
const TARGET_PREFIX: &str = "Kinesis_20131202.";

/// The API's shared state; one per process.
pub struct Api {
    pub(super) log: Arc<Log>,
    keys: Vec<AccessKey>,
    pub(super) iterator_key: IteratorKey,
    pub(super) allow_create_streams: bool,
    delivery: Arc<DeliveryStats>,
    pub(super) counters: Counters,
}

/// Totals for /metrics.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) records_in: AtomicU64,
    pub(super) bytes_in: AtomicU64,
    pub(super) records_failed: AtomicU64,
    pub(super) records_out: AtomicU64,
}

/// Who is asking, once authenticated: the region their signature was scoped to.
pub(super) struct Caller {
    pub(super) region: String,
}

impl Api {
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
            iterator_key,
            allow_create_streams: config.allow_create_streams,
            delivery,
            counters: Counters::default(),
        })
    }

    /// Answers one request; never fails (every problem becomes an error response).
    pub async fn handle(
        &self,
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

    async fn route(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Bytes> {
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

    fn metrics(&self) -> Response<Bytes> {
        use std::fmt::Write;
        let (c, d) = (&self.counters, &self.delivery);
        let counters: [(&str, &str, &AtomicU64); 10] = [
            (
                "edgewise_stream_requests_total",
                "API requests",
                &c.requests,
            ),
            (
                "edgewise_stream_errors_total",
                "API requests answered with an error",
                &c.errors,
            ),
            (
                "edgewise_stream_records_in_total",
                "records appended",
                &c.records_in,
            ),
            (
                "edgewise_stream_bytes_in_total",
                "record data bytes appended",
                &c.bytes_in,
            ),
            (
                "edgewise_stream_records_failed_total",
                "records that could not be appended",
                &c.records_failed,
            ),
            (
                "edgewise_stream_records_out_total",
                "records returned by GetRecords",
                &c.records_out,
            ),
            (
                "edgewise_delivery_records_total",
                "records delivered to files",
                &d.records,
            ),
            (
                "edgewise_delivery_files_total",
                "delivery files written",
                &d.files,
            ),
            (
                "edgewise_delivery_failures_total",
                "delivery reads or writes that failed (retried)",
                &d.failures,
            ),
            (
                "edgewise_delivery_expired_total",
                "records removed by retention before delivery",
                &d.expired,
            ),
        ];
        let mut out = String::new();
        for (name, help, value) in counters {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                value.load(Ordering::Relaxed)
            );
        }
        let mut response = Response::new(Bytes::from(out));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        response
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
