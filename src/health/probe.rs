//! One probe of one endpoint: TCP connect, or an HTTP(S) GET judged by status and body.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Body;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::{HttpCheck, ProbeTimeouts, StatusMatch};

/// Route 53 looks for the search string in the first 5,120 bytes of the body only.
pub const SEARCH_WINDOW: usize = 5120;

/// Why a probe failed, for logs and the status page.
pub type ProbeError = String;

/// Connects to `host:port` within the connect timeout.
async fn connect(host: &str, port: u16, limit: Duration) -> Result<TcpStream, ProbeError> {
    match timeout(limit, TcpStream::connect((host, port))).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(format!("connect to {host}:{port}: {e}")),
        Err(_) => Err(format!(
            "connect to {host}:{port}: timed out after {limit:?}"
        )),
    }
}

/// A TCP check: healthy when the connection is accepted in time.
pub async fn tcp(host: &str, port: u16, timeouts: ProbeTimeouts) -> Result<(), ProbeError> {
    connect(host, port, timeouts.connect).await.map(drop)
}

/// An HTTP or HTTPS check: the status must match and, when set, the search string must be
/// wholly inside the first [`SEARCH_WINDOW`] bytes of the body.
pub async fn http(
    check: &HttpCheck,
    tls: Option<&Arc<rustls::ClientConfig>>,
    timeouts: ProbeTimeouts,
) -> Result<(), ProbeError> {
    let stream = connect(&check.host, check.port, timeouts.connect).await?;
    let exchange = async {
        match tls {
            None => get(stream, check).await,
            Some(config) => {
                let name = ServerName::try_from(check.host.clone())
                    .map_err(|e| format!("TLS name {}: {e}", check.host))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("TLS handshake with {}: {e}", check.host))?;
                get(tls, check).await
            }
        }
    };
    timeout(timeouts.response, exchange).await.map_err(|_| {
        format!(
            "no response from {}:{} within {:?}",
            check.host, check.port, timeouts.response
        )
    })?
}

async fn get<S>(stream: S, check: &HttpCheck) -> Result<(), ProbeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let driver = tokio::spawn(connection);
    let request = Request::get(&check.path_and_query)
        .header(hyper::header::HOST, &check.host_header)
        .header(hyper::header::USER_AGENT, "Edgewise-Health-Check")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("building the request: {e}"))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP request: {e}"))?;
        let status = response.status().as_u16();
        if !check.expect_status.matches(status) {
            return Err(format!("status {status}, expected {}", check.expect_status));
        }
        let Some(needle) = &check.search_string else {
            return Ok(());
        };
        let body = read_prefix(response.into_body(), SEARCH_WINDOW).await?;
        if contains(&body, needle.as_bytes()) {
            Ok(())
        } else {
            Err(format!(
                "{needle:?} not in the first {SEARCH_WINDOW} bytes of the body"
            ))
        }
    }
    .await;
    driver.abort();
    result
}

/// Reads at most `limit` bytes of a body, then stops.
async fn read_prefix<B>(mut body: B, limit: usize) -> Result<Vec<u8>, ProbeError>
where
    B: Body + Unpin,
    B::Error: std::fmt::Display,
{
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(|e| format!("reading the body: {e}"))?;
        if let Some(data) = frame.data_ref() {
            let data = data.chunk();
            let take = data.len().min(limit - out.len());
            out.extend_from_slice(&data[..take]);
        }
    }
    Ok(out)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

impl StatusMatch {
    /// Whether `status` counts as healthy.
    pub fn matches(&self, status: u16) -> bool {
        match self {
            StatusMatch::SuccessOrRedirect => (200..400).contains(&status),
            StatusMatch::Listed(list) => list.contains(&status),
        }
    }
}

impl std::fmt::Display for StatusMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusMatch::SuccessOrRedirect => f.write_str("2xx or 3xx"),
            StatusMatch::Listed(list) => {
                let list: Vec<String> = list.iter().map(u16::to_string).collect();
                f.write_str(&list.join(" or "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_must_sit_inside_the_window() {
        assert!(contains(b"all ok here", b"ok"));
        assert!(!contains(b"o k", b"ok"));
        assert!(contains(b"", b""));
    }

    #[test]
    fn default_status_match_is_2xx_or_3xx() {
        let default = StatusMatch::SuccessOrRedirect;
        assert!(default.matches(200) && default.matches(204) && default.matches(399));
        assert!(!default.matches(199) && !default.matches(400) && !default.matches(503));
        let listed = StatusMatch::Listed(vec![200, 418]);
        assert!(listed.matches(418) && !listed.matches(201));
    }
}
