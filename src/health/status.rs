//! The status listener (`dns.status_listen`): `GET /health-checks` as JSON and `GET /metrics`
//! as Prometheus text, both from the same health table figures, plus the DNS server's
//! counters on `/metrics` ([`crate::dns::metrics`]); and `POST /reload`, which answers what the reload
//! changed or why it was refused. Reloading takes `dns.status_token` as a bearer token when
//! one is set, and is open to loopback peers only when none is.
//!
//! Connections go through the same admission as DNS over TCP (per-client cap, the longest-idle
//! connection evicted when full), get one request each and live at most
//! [`StatusLimits::lifetime`], so idle or slow sockets cannot keep scrapes out.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{CheckReport, HealthChecks, HealthCollector};
use crate::console;
use crate::dns::malformed::MalformedCounters;
use crate::dns::metrics::{DnsCollector, DnsMetrics};
use crate::dns::reload::{ReloadError, Reloader};
use crate::dns::snapshot::Snapshot;
use crate::metrics::{self, Collector};
use crate::net::admission::{Admission, Limits, Ticket};
use crate::net::bearer;

/// Caps and timing of status connections.
#[derive(Debug, Clone, Copy)]
pub struct StatusLimits {
    /// 64 connections in all, 8 per client: a scraper needs one at a time.
    pub admission: Limits,
    /// A connection must have sent its request and taken the answer within this.
    pub lifetime: Duration,
}

impl Default for StatusLimits {
    fn default() -> StatusLimits {
        StatusLimits {
            admission: Limits {
                max_connections: 64,
                max_per_client: 8,
            },
            lifetime: Duration::from_secs(5),
        }
    }
}

/// What every status connection needs.
#[derive(Clone)]
pub struct StatusContext {
    pub health: Arc<HealthChecks>,
    /// `None`: the server was not given a config file to reload from.
    pub reloader: Option<Reloader>,
    pub malformed: Arc<MalformedCounters>,
    pub metrics: Arc<DnsMetrics>,
    /// The snapshot in force, for the console's zones.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// The DNS server's TCP admission, for its connection counts.
    pub tcp_admission: Admission,
    pub lifetime: Duration,
    pub shutdown: CancellationToken,
}

/// Serves the status endpoints on `listener` until `retire` (a reload removed it, or
/// shutdown).
pub async fn serve(
    listener: TcpListener,
    admission: Admission,
    retire: CancellationToken,
    ctx: StatusContext,
) {
    crate::net::accept::serve(listener, admission, retire, move |stream, peer, ticket| {
        let ctx = ctx.clone();
        async move { serve_connection(stream, peer, ticket, &ctx).await }
    })
    .await;
}

/// One request, no keep-alive; idle (evictable) until the request has arrived.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    ctx: &StatusContext,
) {
    let ticket = Arc::new(ticket);
    let service = {
        let (ticket, ctx) = (ticket.clone(), ctx.clone());
        service_fn(move |request| {
            // False only if evicted a moment ago; the select below then closes the connection.
            let _ = ticket.start_query();
            let ctx = ctx.clone();
            async move { Ok::<_, Infallible>(route(&request, peer, &ctx).await) }
        })
    };
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        served = tokio::time::timeout(ctx.lifetime, connection) => match served {
            Ok(Ok(())) => {}
            Ok(Err(e)) => debug!("status connection from {peer}: {e}"),
            Err(_) => debug!("status connection from {peer}: closed after {:?}", ctx.lifetime),
        },
        // Evicted to make room, or shutting down: dropping the connection closes it.
        () = ticket.evicted() => {}
        () = ctx.shutdown.cancelled() => {}
    }
}

async fn route<B>(
    request: &Request<B>,
    peer: SocketAddr,
    ctx: &StatusContext,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if path == "/reload" {
        if request.method() != Method::POST {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "only POST\n".into(),
            );
        }
        return reload(request, peer, ctx.reloader.as_ref()).await;
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET\n".into(),
        );
    }
    // The rule of every listener: the console's assets (no data) are served to anyone; the
    // rest is readable from loopback, else with the listener's token.
    let token = ctx.reloader.as_ref().and_then(Reloader::status_token);
    if !console::is_asset(path)
        && !peer.ip().to_canonical().is_loopback()
        && !token.is_some_and(|token| bearer::matches(request.headers(), &token))
    {
        return text(
            StatusCode::FORBIDDEN,
            "text/plain; charset=utf-8",
            "served to loopback peers, or with Authorization: Bearer <dns.status_token>\n".into(),
        );
    }
    match path {
        "/health-checks" => text(
            StatusCode::OK,
            "application/json",
            health_json(&ctx.health.table().report()),
        ),
        "/metrics" => text(StatusCode::OK, metrics::CONTENT_TYPE, scrape(ctx)),
        path if console::is_console_path(path) => console::answer(path, || {
            let checks = ctx.health.table().report();
            console::dns_summary(&ctx.snapshot.load(), &checks, &ctx.metrics)
        })
        .map(Full::new),
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try / (the console), /health-checks, /metrics or POST /reload\n".into(),
        ),
    }
}

/// `POST /reload`: `{"reloaded": true, "zones": ..., "health_checks": ...}`, or
/// `{"reloaded": false, "errors": [...]}` with the lines `check` prints (the CDN admin API's
/// shape).
async fn reload<B>(
    request: &Request<B>,
    peer: SocketAddr,
    reloader: Option<&Reloader>,
) -> Response<Full<Bytes>> {
    let Some(reloader) = reloader else {
        return refused(
            StatusCode::NOT_FOUND,
            ["reload is not enabled on this server"],
        );
    };
    match reloader.status_token() {
        Some(token) if !bearer::matches(request.headers(), &token) => {
            let mut response = refused(
                StatusCode::UNAUTHORIZED,
                ["POST /reload needs Authorization: Bearer <dns.status_token>"],
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
        None if !peer.ip().to_canonical().is_loopback() => {
            return refused(
                StatusCode::FORBIDDEN,
                ["POST /reload is open to loopback peers only, unless dns.status_token is set"],
            );
        }
        _ => {}
    }
    match reloader.reload_and_log().await {
        Ok(summary) => {
            let body = json!({
                "reloaded": true,
                "changed": summary.changed(),
                "zones": summary.zones,
                "health_checks": summary.health_checks,
                "listeners": summary.listeners,
            });
            text(StatusCode::OK, "application/json", pretty(&body))
        }
        Err(e) => {
            let status = match &e {
                ReloadError::Invalid(_) | ReloadError::Geo(_) | ReloadError::RestartNeeded(_) => {
                    StatusCode::BAD_REQUEST
                }
                ReloadError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
                ReloadError::Task(_) | ReloadError::Keys(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let errors: Vec<String> = match e {
                ReloadError::Invalid(errors) => errors.0.iter().map(ToString::to_string).collect(),
                e => vec![e.to_string()],
            };
            refused(status, errors)
        }
    }
}

/// A refused reload's answer: `{"reloaded": false, "errors": [...]}`.
fn refused<S: Into<String>>(
    status: StatusCode,
    errors: impl IntoIterator<Item = S>,
) -> Response<Full<Bytes>> {
    let errors: Vec<String> = errors.into_iter().map(Into::into).collect();
    let body = json!({ "reloaded": false, "errors": errors });
    text(status, "application/json", pretty(&body))
}

fn pretty(value: &serde_json::Value) -> String {
    let mut body = serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".into());
    body.push('\n');
    body
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

pub(crate) fn unix_seconds(time: Option<SystemTime>) -> Option<f64> {
    time.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

/// `[{"id", "type", "target", "healthy", "last_result", "last_error", "latency_ms", "last_checked", "last_change", ...}]`
fn health_json(reports: &[CheckReport]) -> String {
    pretty(&serde_json::Value::Array(health_rows(reports)))
}

/// One JSON object per check, for `/health-checks` and the console.
pub(crate) fn health_rows(reports: &[CheckReport]) -> Vec<serde_json::Value> {
    reports
        .iter()
        .map(|r| {
            let s = &r.status;
            json!({
                "id": r.id,
                "type": r.kind,
                "target": r.target,
                "healthy": s.healthy,
                "last_result": s.last_result.as_ref().map(|o| if o.is_ok() { "success" } else { "failure" }),
                "last_error": s.last_result.as_ref().and_then(|o| o.as_ref().err()),
                "latency_ms": s.last_latency.map(|d| d.as_secs_f64() * 1000.0),
                "last_checked": unix_seconds(s.last_checked),
                "last_change": unix_seconds(s.last_change),
                "consecutive_successes": s.consecutive_successes,
                "consecutive_failures": s.consecutive_failures,
                "probes_ok": s.probes_ok,
                "probes_failed": s.probes_failed,
            })
        })
        .collect()
}

/// Everything `/metrics` shows, in the Prometheus text format.
fn scrape(ctx: &StatusContext) -> String {
    let dns = DnsCollector {
        metrics: ctx.metrics.clone(),
        malformed: ctx.malformed.clone(),
        tcp: ctx.tcp_admission.clone(),
    };
    let collectors: [Box<dyn Collector>; 2] =
        [Box::new(dns), Box::new(HealthCollector(ctx.health.table()))];
    metrics::render(collectors)
}
