//! The admin listener: `POST /invalidations` (CloudFront-style paths: exact or a trailing
//! `*`), `POST /reload` and `GET /metrics`, behind a bearer token compared in constant time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::body::{self, Body};
use super::metrics::CdnCollector;
use super::proxy::Edge;
use super::reload::{Live, ReloadError, Reloader};
use super::request_path::RequestPath;
use crate::analytics::Analytics;
use crate::console::{self, RecentRecords};
use crate::metrics::{self, Collector};
use crate::net::accept;
use crate::net::admission::{Admission, Limits, Ticket};
use crate::net::bearer;
use crate::stream::log::Log;

/// How long one admin connection may take, request and answer (a reload included).
const LIFETIME: Duration = Duration::from_secs(30);
/// As the DNS status listener: a few operators and scrapers, never one client's to fill.
const LIMITS: Limits = Limits {
    max_connections: 64,
    max_per_client: 8,
};
/// An invalidation request is a short JSON document.
const MAX_BODY: usize = 64 << 10;
/// CloudFront accepts up to 3,000 paths per invalidation.
const MAX_PATHS: usize = 3000;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Makes the collector of another part of the process for a scrape of `GET /metrics`.
pub type MetricsSource = Arc<dyn Fn() -> Box<dyn Collector> + Send + Sync>;

/// What the admin listener shows of the process's other parts: their metrics, and the stream
/// log's streams on the console.
#[derive(Clone)]
pub struct ProcessParts {
    pub metrics: Arc<[MetricsSource]>,
    pub streams: Option<Arc<Log>>,
    pub analytics: Option<Arc<Analytics>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidationRequest {
    distribution: String,
    paths: Vec<String>,
}

/// The admission every admin listener shares: 64 connections in all, 8 per client, the
/// longest-idle evicted.
pub fn admission() -> Admission {
    Admission::new(LIMITS)
}

/// Serves the admin API on `listener` until `retire` (a reload removed it, or shutdown).
/// The token and everything else come from the live config, so a reload applies to the
/// admin API too; `POST /reload` needs a `reloader` (a server started from a config file);
/// `GET /metrics` adds the collectors of `process`'s other parts, and the console shows its
/// streams. Connections go through the shared `admission` and carry one request each.
pub async fn serve(
    listener: TcpListener,
    admission: Admission,
    live: Arc<Live>,
    reloader: Option<Arc<Reloader>>,
    process: ProcessParts,
    retire: CancellationToken,
    shutdown: CancellationToken,
) {
    let recent = Arc::new(RecentRecords::default());
    accept::serve(listener, admission, retire, move |stream, peer, ticket| {
        let parts = Parts {
            live: live.clone(),
            reloader: reloader.clone(),
            process: process.clone(),
            recent: recent.clone(),
        };
        let shutdown = shutdown.clone();
        async move { connection(stream, peer, ticket, parts, shutdown).await }
    })
    .await;
}

/// What an admin request may use.
#[derive(Clone)]
struct Parts {
    live: Arc<Live>,
    reloader: Option<Arc<Reloader>>,
    process: ProcessParts,
    /// The console's count of the latest real-time log records, shared by its open pages.
    recent: Arc<RecentRecords>,
}

/// One request, no keep-alive; idle (evictable) until the request has arrived.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    parts: Parts,
    shutdown: CancellationToken,
) {
    let ticket = Arc::new(ticket);
    let service = {
        let ticket = ticket.clone();
        service_fn(move |request| {
            // False only if evicted a moment ago; the select below then closes the connection.
            let _ = ticket.start_query();
            let parts = parts.clone();
            async move { Ok::<_, Infallible>(route(request, peer, parts).await) }
        })
    };
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        served = tokio::time::timeout(LIFETIME, connection) => match served {
            Ok(Ok(())) => {}
            Ok(Err(e)) => debug!("admin connection from {peer}: {e}"),
            Err(_) => debug!("admin connection from {peer}: closed after {LIFETIME:?}"),
        },
        // Evicted to make room, or shutting down: dropping the connection closes it (a reload
        // it started still completes whole: it runs in a task of its own).
        () = ticket.evicted() => {}
        () = shutdown.cancelled() => {}
    }
}

async fn route(request: Request<Incoming>, peer: SocketAddr, parts: Parts) -> Response<Body> {
    let edge = &parts.live.edge();
    // The rule of every listener: the console's assets (no data) are served to anyone;
    // metrics and the console's data are readable from loopback without a token; everything
    // else, and reading from elsewhere, need the admin token.
    let path = request.uri().path();
    let get = request.method() == Method::GET;
    let loopback = peer.ip().to_canonical().is_loopback();
    let open = (get
        && (console::is_asset(path)
            || path == super::healthz::PATH
            || ((path == "/metrics" || console::is_console_path(path)) && loopback)))
        || (loopback && console::analytics::is_open_write(&request));
    if !open && !authorized(request.headers(), edge.config().admin_token.as_deref()) {
        let mut response = json(
            StatusCode::UNAUTHORIZED,
            r#"{"message":"missing or wrong bearer token"}"#.to_string(),
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    match (request.method(), request.uri().path()) {
        (&Method::POST, "/invalidations") => invalidate(request, edge).await,
        (&Method::POST, "/reload") => reload(parts.reloader).await,
        (&Method::GET, "/metrics") => metrics(edge, &parts.process.metrics),
        (&Method::GET, super::healthz::PATH) => {
            let query = request.uri().query();
            super::healthz::answer(edge, parts.live.acme().map(|a| a.as_ref()), query).await
        }
        (_, path) if path.starts_with(console::analytics::PREFIX) => {
            console::analytics::answer(parts.process.analytics.as_deref(), request).await
        }
        (&Method::GET, console::RECORDS_PATH) => {
            console::records(parts.process.streams.as_deref(), request.uri().query()).map(body::full)
        }
        (&Method::GET, path) if console::is_console_path(path) => {
            if path == console::SUMMARY_PATH {
                edge.store.settle().await;
            }
            let streams = parts.process.streams.as_deref();
            let acme = parts.live.acme().map(|a| a.as_ref());
            let analytics = parts.process.analytics.is_some();
            let summary = || {
                let mut summary = console::cdn_summary(edge, streams, &parts.recent, acme);
                // Whether the SQL editor has anything to talk to.
                summary["analytics"] = analytics.into();
                summary
            };
            console::answer(path, summary).map(body::full)
        }
        _ => json(
            StatusCode::NOT_FOUND,
            r#"{"message":"try GET / (the console), POST /invalidations, POST /reload, GET /metrics, GET /healthz"}"#
                .to_string(),
        ),
    }
}

/// Re-reads the config file: 200 with what changed, or the reasons it was refused (the
/// running config keeps serving).
async fn reload(reloader: Option<Arc<Reloader>>) -> Response<Body> {
    let Some(reloader) = reloader else {
        return error(
            StatusCode::CONFLICT,
            "this server was not started from a config file",
        );
    };
    // A task of its own: a client that hangs up (or an evicted connection) cannot stop a
    // reload halfway, nor let a second one start before this one has finished.
    let reloaded = tokio::spawn(async move { reloader.reload().await })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    match reloaded {
        Ok(summary) => json(
            StatusCode::OK,
            serde_json::json!({ "reloaded": true, "changed": summary.changed(), "changes": summary })
                .to_string(),
        ),
        Err(e) => {
            let errors: Vec<String> = match &e {
                ReloadError::Config(errors) => errors.0.iter().map(ToString::to_string).collect(),
                other => vec![other.to_string()],
            };
            json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "reloaded": false, "errors": errors }).to_string(),
            )
        }
    }
}

/// The admin token, in exactly one `Authorization: Bearer` header; never without a token.
fn authorized(headers: &HeaderMap, token: Option<&str>) -> bool {
    token.is_some_and(|token| bearer::matches(headers, token))
}

async fn invalidate(request: Request<Incoming>, edge: &Edge) -> Response<Body> {
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is larger than 64 KiB",
            );
        }
    };
    let parsed: InvalidationRequest = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"distribution\": ID, \"paths\": [...]}}: {e}"),
            );
        }
    };
    if !edge.has_distribution(&parsed.distribution) {
        return error(
            StatusCode::NOT_FOUND,
            &format!("no distribution has id {:?}", parsed.distribution),
        );
    }
    if parsed.paths.is_empty() || parsed.paths.len() > MAX_PATHS {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("give 1 to {MAX_PATHS} paths"),
        );
    }
    if let Some(bad) = parsed
        .paths
        .iter()
        .find(|p| !p.starts_with('/') || p[..p.len().saturating_sub(1)].contains('*'))
    {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("{bad:?}: paths start with / and may only end in *"),
        );
    }
    // Cached objects are keyed by canonical path, so the paths to drop are spelled the same way.
    let mut canonical = Vec::with_capacity(parsed.paths.len());
    for path in &parsed.paths {
        match RequestPath::parse(path) {
            Ok(path) => canonical.push(path),
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("{path:?}: {e}")),
        }
    }
    let invalidated: u64 = canonical
        .iter()
        .map(|path| edge.store.invalidate(&parsed.distribution, path.as_str()))
        .sum();
    let id = format!("I{:013}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    info!(
        distribution = parsed.distribution,
        paths = parsed.paths.len(),
        invalidated,
        "invalidation {id}"
    );
    json(
        StatusCode::CREATED,
        serde_json::json!({ "id": id, "invalidated": invalidated }).to_string(),
    )
}

/// The CDN's metrics, with the real-time log's and those of the process's other parts
/// (`others`: the stream API's), so one scrape covers the process.
fn metrics(edge: &Arc<Edge>, others: &[MetricsSource]) -> Response<Body> {
    let cdn = Box::new(CdnCollector(edge.clone())) as Box<dyn Collector>;
    let text = metrics::render(std::iter::once(cdn).chain(others.iter().map(|source| source())));
    let mut response = Response::new(body::full(Bytes::from(text)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    response
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(
        status,
        serde_json::json!({ "message": message }).to_string(),
    )
}

fn json(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(body::full(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_configured_token_nothing_is_authorized() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(!authorized(&headers, None));
        assert!(!authorized(&HeaderMap::new(), None));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t0ken-123"),
        );
        assert!(authorized(&headers, Some("t0ken-123")));
    }
}
