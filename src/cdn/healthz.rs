//! `GET /healthz`: whether this edge can serve viewers now, for the health checks that steer
//! them to it (edgewise-dns alias records to `[[edge_groups]]`, a load balancer). Answered
//! on the viewer listeners for a host no distribution serves — a checker asks by address —
//! so no distribution gives up a path, and on the admin listener.
//!
//! Any answer at all says the process is alive; 200 says it is ready: every ACME
//! certificate issued (files are loaded before the edge serves at all) and every
//! distribution with at least one origin reachable (a TCP connection to an HTTP origin,
//! a readable folder). Probes run at most once per [`PROBE_TTL`], shared by the checks
//! that arrive meanwhile, so checkers cannot make the edge flood its origins.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt as _;
use futures_util::future::join_all;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};
use serde::Serialize;
use tokio::sync::Mutex;

use super::body::{self, Body};
use super::proxy::Edge;
use crate::acme::AcmeCerts;
use crate::config::cdn::{Distribution, HttpOrigin, OriginTarget};

pub const PATH: &str = "/healthz";

/// How long one probe's findings answer checks.
const PROBE_TTL: Duration = Duration::from_secs(2);
/// The longest an origin probe waits to connect, whatever the origin's connect timeout.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The last probe of one edge, and the lock that makes concurrent checks share the next.
#[derive(Default)]
pub struct Probes {
    last: Mutex<Option<(Instant, Arc<Report>)>>,
}

/// What the probes found, for every distribution.
#[derive(Debug)]
pub struct Report {
    pub certificates: Vec<CertReport>,
    pub distributions: Vec<DistributionReport>,
}

#[derive(Debug, Serialize)]
pub struct CertReport {
    pub names: Vec<String>,
    /// False while a stand-in is served until the first certificate is issued.
    pub issued: bool,
}

#[derive(Debug, Serialize)]
pub struct DistributionReport {
    pub id: String,
    /// At least one origin answered the probe.
    pub reachable: bool,
    pub origins: Vec<OriginReport>,
}

#[derive(Debug, Serialize)]
pub struct OriginReport {
    pub id: String,
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether a viewer request is a health check: GET or HEAD of [`PATH`] for a host no
/// distribution serves.
pub fn wanted(edge: &Edge, method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && uri.path() == PATH
        && !edge.serves_authority(uri, headers)
}

/// The answer: 200 when ready, 503 when not, the report as the body either way. With
/// `?distribution=<id>` in `query`, only that distribution's origins count (and are listed),
/// so one check per edge and distribution can steer each distribution's name on its own.
pub async fn answer(edge: &Edge, acme: Option<&AcmeCerts>, query: Option<&str>) -> Response<Body> {
    let wanted = query.and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("distribution="))
            .map(|id| {
                percent_encoding::percent_decode_str(id)
                    .decode_utf8_lossy()
                    .into_owned()
            })
    });
    if let Some(id) = &wanted
        && !edge.has_distribution(id)
    {
        let text = serde_json::json!({ "message": format!("no distribution has id {id:?}") });
        return json(StatusCode::NOT_FOUND, text.to_string());
    }
    let report = report(edge, acme).await;
    let distributions: Vec<&DistributionReport> = report
        .distributions
        .iter()
        .filter(|d| wanted.as_ref().is_none_or(|id| d.id == *id))
        .collect();
    let ready =
        report.certificates.iter().all(|c| c.issued) && distributions.iter().all(|d| d.reachable);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let text = serde_json::json!({
        "ready": ready,
        "certificates": report.certificates,
        "distributions": distributions,
    });
    json(status, text.to_string())
}

fn json(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(body::full(Bytes::from(text)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The latest report, probing again when the last is older than [`PROBE_TTL`].
async fn report(edge: &Edge, acme: Option<&AcmeCerts>) -> Arc<Report> {
    let mut last = edge.probes().last.lock().await;
    if let Some((at, report)) = last.as_ref()
        && at.elapsed() < PROBE_TTL
    {
        return report.clone();
    }
    let certificates: Vec<CertReport> = acme
        .map(|acme| {
            acme.slots()
                .iter()
                .map(|slot| CertReport {
                    names: slot.names.clone(),
                    issued: slot.status().not_after.is_some(),
                })
                .collect()
        })
        .unwrap_or_default();
    let distributions = join_all(edge.config().distributions.iter().map(probe_distribution)).await;
    let report = Arc::new(Report {
        certificates,
        distributions,
    });
    *last = Some((Instant::now(), report.clone()));
    report
}

async fn probe_distribution(distribution: &Distribution) -> DistributionReport {
    let probes = distribution.origins.iter().filter_map(|origin| {
        let probe = match &origin.target {
            OriginTarget::Http(http) => probe_http(http).boxed(),
            OriginTarget::Dir(path) => probe_dir(path).boxed(),
            // Reachable through its members, which are origins of the list themselves.
            OriginTarget::Group { .. } => return None,
        };
        Some(async move {
            let error = probe.await.err();
            OriginReport {
                id: origin.id.clone(),
                reachable: error.is_none(),
                error,
            }
        })
    });
    let origins = join_all(probes).await;
    DistributionReport {
        id: distribution.id.clone(),
        reachable: origins.iter().any(|o| o.reachable),
        origins,
    }
}

/// Looks at a folder origin.
async fn probe_dir(path: &Path) -> Result<(), String> {
    match tokio::fs::metadata(path).await {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a folder", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Connects to an HTTP origin; nothing is sent.
async fn probe_http(origin: &HttpOrigin) -> Result<(), String> {
    let uri = &origin.base;
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let wait = origin.connect_timeout.min(PROBE_TIMEOUT);
    match tokio::time::timeout(wait, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot connect to {host}:{port}: {e}")),
        Err(_) => Err(format!("no connection to {host}:{port} within {wait:?}")),
    }
}
