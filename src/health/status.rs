//! The status listener (`dns.status_listen`): `GET /health-checks` as JSON and `GET /metrics`
//! as Prometheus text, both from the same [`HealthTable`] figures, plus the DNS server's
//! malformed-query counters on `/metrics`.
//!
//! Connections go through the same admission as DNS over TCP (per-client cap, the longest-idle
//! connection evicted when full), get one request each and live at most
//! [`StatusLimits::lifetime`], so idle or slow sockets cannot keep scrapes out.

use std::convert::Infallible;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

use super::{CheckReport, HealthTable};
use crate::dns::malformed::MalformedCounters;
use crate::net::admission::{Admission, Limits, Ticket};

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
    pub table: Arc<HealthTable>,
    pub malformed: Arc<MalformedCounters>,
    pub lifetime: Duration,
    pub shutdown: CancellationToken,
}

/// Serves the status endpoints on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, admission: Admission, ctx: StatusContext) {
    let shutdown = ctx.shutdown.clone();
    crate::net::accept::serve(
        listener,
        admission,
        shutdown,
        move |stream, peer, ticket| {
            let ctx = ctx.clone();
            async move { serve_connection(stream, peer, ticket, &ctx).await }
        },
    )
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
            let body = route(&request, &ctx.table, &ctx.malformed);
            async move { Ok::<_, Infallible>(body) }
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

fn route<B>(
    request: &Request<B>,
    table: &HealthTable,
    malformed: &MalformedCounters,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET\n".into(),
        );
    }
    match request.uri().path() {
        "/health-checks" => text(
            StatusCode::OK,
            "application/json",
            health_json(&table.report()),
        ),
        "/metrics" => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics(&table.report(), malformed),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try /health-checks or /metrics\n".into(),
        ),
    }
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

fn unix_seconds(time: Option<SystemTime>) -> Option<f64> {
    time.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

/// `[{"id", "type", "target", "healthy", "last_result", "last_error", "latency_ms", "last_checked", "last_change", ...}]`
fn health_json(reports: &[CheckReport]) -> String {
    let rows: Vec<serde_json::Value> = reports
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
        .collect();
    let mut body = serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into());
    body.push('\n');
    body
}

/// Name, type, help text, and the value of one check (none: not known yet).
type MetricFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&CheckReport) -> Option<f64>,
);

/// Prometheus text exposition format 0.0.4.
fn metrics(reports: &[CheckReport], malformed: &MalformedCounters) -> String {
    let mut out = String::new();
    let families: [MetricFamily; 5] = [
        (
            "edgewise_health_check_healthy",
            "gauge",
            "1 when the check is healthy",
            |r| Some(f64::from(u8::from(r.status.healthy))),
        ),
        (
            "edgewise_health_check_latency_seconds",
            "gauge",
            "duration of the last probe",
            |r| r.status.last_latency.map(|d| d.as_secs_f64()),
        ),
        (
            "edgewise_health_check_last_change_timestamp_seconds",
            "gauge",
            "when the state last flipped",
            |r| unix_seconds(r.status.last_change),
        ),
        (
            "edgewise_health_check_probes_ok_total",
            "counter",
            "probes that succeeded (after inversion)",
            |r| Some(r.status.probes_ok as f64),
        ),
        (
            "edgewise_health_check_probes_failed_total",
            "counter",
            "probes that failed (after inversion)",
            |r| Some(r.status.probes_failed as f64),
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for report in reports {
            if let Some(v) = value(report) {
                let _ = writeln!(
                    out,
                    "{name}{{id=\"{}\",type=\"{}\"}} {v}",
                    escape_label(&report.id),
                    report.kind
                );
            }
        }
    }
    malformed.write_prometheus(&mut out);
    out
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
