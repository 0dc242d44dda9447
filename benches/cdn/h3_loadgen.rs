//! Load generator for `benches/cdn/http3.sh`: closed-loop GETs of one URL over HTTP/3 (h3
//! on quinn) or HTTP/2 (hyper over rustls), so both protocols are driven by the same
//! client code path and measured side by side. Certificates are not verified (the bench
//! serves a throwaway self-signed one).
//!
//! Built as a bench target without the test harness (`cargo build --release --bench
//! h3_loadgen`). Usage:
//!
//! `h3_loadgen <h3|h2> <addr> <host> <path> [--conns N] [--streams M] [--duration S]`
//!
//! N connections, each with M requests in flight at a time, for S seconds (bounded, and at
//! most 10 million requests). Prints one line of `name=value` pairs: requests, secs, rps,
//! mibps (MiB/s of response bodies), p50_ms, p99_ms, errors. Exits 2 on usage errors and 1
//! when nothing was answered.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Hard cap on requests, whatever the duration.
const MAX_REQUESTS: u64 = 10_000_000;
/// A request slower than this is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

struct Options {
    proto: String,
    addr: SocketAddr,
    host: String,
    path: String,
    conns: usize,
    streams: usize,
    duration: Duration,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: h3_loadgen <h3|h2> <addr> <host> <path> [--conns N] [--streams M] [--duration S]"
    );
    ExitCode::from(2)
}

fn parse() -> Option<Options> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [proto, addr, host, path, rest @ ..] = args.as_slice() else {
        return None;
    };
    let mut options = Options {
        proto: proto.clone(),
        addr: addr.parse().ok()?,
        host: host.clone(),
        path: path.clone(),
        conns: 8,
        streams: 8,
        duration: Duration::from_secs(10),
    };
    for pair in rest.chunks(2) {
        let [name, value] = pair else { return None };
        let value: u64 = value.parse().ok().filter(|v| *v > 0)?;
        match name.as_str() {
            "--conns" => options.conns = value as usize,
            "--streams" => options.streams = value as usize,
            "--duration" => options.duration = Duration::from_secs(value),
            _ => return None,
        }
    }
    matches!(options.proto.as_str(), "h3" | "h2").then_some(options)
}

/// What every request loop adds to.
#[derive(Default)]
struct Totals {
    requests: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    /// Latencies in microseconds, kept per loop and merged at the end.
    latencies: std::sync::Mutex<Vec<u32>>,
}

fn client_tls(alpn: &[u8]) -> rustls::ClientConfig {
    let mut tls = (*edgewise::net::tls::client_config(false)).clone();
    tls.alpn_protocols = vec![alpn.to_vec()];
    tls
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(options) = parse() else {
        return usage();
    };
    let options = Arc::new(options);
    let totals = Arc::new(Totals::default());
    let deadline = Instant::now() + options.duration;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..options.conns {
        let (options, totals) = (options.clone(), totals.clone());
        tasks.spawn(async move {
            let result = match options.proto.as_str() {
                "h3" => h3_connection(&options, &totals, deadline).await,
                _ => h2_connection(&options, &totals, deadline).await,
            };
            if let Err(e) = result {
                eprintln!("connection: {e}");
                totals.errors.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let secs = started.elapsed().as_secs_f64();
    let requests = totals.requests.load(Ordering::Relaxed);
    let bytes = totals.bytes.load(Ordering::Relaxed);
    let mut latencies = totals.latencies.lock().unwrap().clone();
    latencies.sort_unstable();
    let quantile = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .map_or("-".to_string(), |us| {
                format!("{:.2}", f64::from(*us) / 1000.0)
            })
    };
    println!(
        "requests={requests} secs={secs:.2} rps={:.0} mibps={:.1} p50_ms={} p99_ms={} errors={}",
        requests as f64 / secs,
        bytes as f64 / secs / 1_048_576.0,
        quantile(0.5),
        quantile(0.99),
        totals.errors.load(Ordering::Relaxed)
    );
    if requests == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Counts one answered request; false once the run is over.
fn record(totals: &Totals, latencies: &mut Vec<u32>, began: Instant, body: usize) -> bool {
    latencies.push(began.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
    totals.bytes.fetch_add(body as u64, Ordering::Relaxed);
    totals.requests.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS
}

/// Runs `streams` closed loops until `deadline`, each making its exchanges with the
/// function `make` returns (an exchange answers the body's length, or fails); a failed or
/// slow exchange counts as an error and ends its loop.
async fn run_loops<M, E, F>(streams: usize, totals: &Arc<Totals>, deadline: Instant, make: M)
where
    M: Fn() -> E,
    E: Fn() -> F + Send + 'static,
    F: std::future::Future<Output = Result<usize, ()>> + Send,
{
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..streams {
        let (exchange, totals) = (make(), totals.clone());
        loops.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let began = Instant::now();
                match tokio::time::timeout(REQUEST_TIMEOUT, exchange()).await {
                    Ok(Ok(body)) => {
                        if !record(&totals, &mut latencies, began, body) {
                            break;
                        }
                    }
                    _ => {
                        totals.errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            totals.latencies.lock().unwrap().extend(latencies);
        });
    }
    while loops.join_next().await.is_some() {}
}

async fn h3_connection(
    options: &Options,
    totals: &Arc<Totals>,
    deadline: Instant,
) -> Result<(), String> {
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(client_tls(b"h3"))
        .map_err(|e| e.to_string())?;
    let mut endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))
        .map_err(|e| e.to_string())?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    let connection = endpoint
        .connect(options.addr, &options.host)
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(connection))
        .await
        .map_err(|e| e.to_string())?;
    let drive = tokio::spawn(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
    });
    let url = format!(
        "https://{}:{}{}",
        options.host,
        options.addr.port(),
        options.path
    );
    run_loops(options.streams, totals, deadline, || {
        let (send, url) = (send.clone(), url.clone());
        move || {
            let (mut send, url) = (send.clone(), url.clone());
            async move {
                let request = http::Request::get(url.as_str()).body(()).unwrap();
                let mut stream = send.send_request(request).await.map_err(drop)?;
                stream.finish().await.map_err(drop)?;
                stream.recv_response().await.map_err(drop)?;
                let mut body = 0;
                while let Some(chunk) = stream.recv_data().await.map_err(drop)? {
                    body += chunk.remaining();
                }
                Ok(body)
            }
        }
    })
    .await;
    drive.abort();
    endpoint.close(0u32.into(), b"");
    Ok(())
}

async fn h2_connection(
    options: &Options,
    totals: &Arc<Totals>,
    deadline: Instant,
) -> Result<(), String> {
    let tcp = tokio::net::TcpStream::connect(options.addr)
        .await
        .map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let name =
        rustls_pki_types::ServerName::try_from(options.host.clone()).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(client_tls(b"h2")))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (send, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<Bytes>>(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    let drive = tokio::spawn(connection);
    let url = format!(
        "https://{}:{}{}",
        options.host,
        options.addr.port(),
        options.path
    );
    run_loops(options.streams, totals, deadline, || {
        let (send, url) = (send.clone(), url.clone());
        move || {
            let (mut send, url) = (send.clone(), url.clone());
            async move {
                let request = http::Request::get(url.as_str())
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let response = send.send_request(request).await.map_err(drop)?;
                let mut body = response.into_body();
                let mut size = 0;
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame.map_err(drop)?.into_data() {
                        size += data.len();
                    }
                }
                Ok(size)
            }
        }
    })
    .await;
    drive.abort();
    Ok(())
}
