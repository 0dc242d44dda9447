//! `edgewise-cdn sql "SELECT ..."`: a one-shot query sent to the running process's stream
//! API (`POST /analytics/query`), signed with the first configured access key when there are
//! keys, its rows printed as they arrive. The running process owns the log, so the query
//! goes through it rather than opening the files.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::config::Config;
use crate::stream::api::sigv4;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const PATH: &str = "/analytics/query";
/// The region the signature is scoped to: any is accepted.
const REGION: &str = "us-east-1";

/// Runs `sql` on the process serving `config`, printing its output (`format`: json or csv).
///
/// # Errors
/// No listener to reach, the process is not running, or the query failed (its message).
pub fn run(config: &Config, sql: &str, format: &str) -> anyhow::Result<()> {
    let stream = config
        .stream
        .as_ref()
        .context("no [stream] section: queries go through the stream API")?;
    if config.analytics.is_none() {
        anyhow::bail!("no [analytics] section: the server answers no queries");
    }
    let addr = *stream.listen.first().context(
        "the stream API has no plain listen address ([stream] listen) for this command to use",
    )?;
    let addr = reachable(addr);
    let body = Bytes::from(serde_json::json!({ "sql": sql, "format": format }).to_string());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::HOST,
        HeaderValue::from_str(&addr.to_string()).context("the listen address as a host")?,
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(key) = stream.access_keys.first() {
        sigv4::sign(
            "POST",
            PATH,
            &mut headers,
            &body,
            key,
            REGION,
            SystemTime::now(),
        );
    }
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = http::Uri::from_static(PATH);
    *request.headers_mut() = headers;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime")?;
    runtime.block_on(send(addr, request))
}

/// An address to connect to for one that may be a wildcard (`0.0.0.0` listens everywhere,
/// loopback included).
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> anyhow::Result<()> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow::anyhow!("connecting to {addr}: no answer within {CONNECT_TIMEOUT:?}"))?
        .with_context(|| format!("connecting to {addr} (is edgewise-cdn running?)"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .with_context(|| format!("HTTP with {addr}"))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .with_context(|| format!("sending the query to {addr}"))?;
    let status = response.status();
    let mut body = response.into_body();
    if !status.is_success() {
        let bytes = body
            .collect()
            .await
            .context("reading the error")?
            .to_bytes();
        let why = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        anyhow::bail!("{status}: {why}");
    }
    let mut out = std::io::stdout().lock();
    let mut ends_line = true;
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the rows")?;
        if let Some(data) = frame.data_ref().filter(|d| !d.is_empty()) {
            out.write_all(data).context("writing to stdout")?;
            ends_line = data.ends_with(b"\n");
        }
    }
    // JSON output ends without a line break; a terminal prompt should not follow it.
    if !ends_line {
        writeln!(out).context("writing to stdout")?;
    }
    Ok(())
}
