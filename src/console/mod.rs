//! The console: one web page, served at `/` by the DNS status listener and the CDN admin
//! listener from assets compiled into the binaries, that polls `/console/api/summary` (what
//! the process serves and its counters) and charts the counters' rates with uPlot (vendored
//! under `assets/vendor/uplot`, with its licence). Both listeners apply their own access
//! rule first (the one `/metrics` follows); this module only answers.

pub mod analytics;
mod cdn;
mod dns;
mod records;
mod streams;

pub use cdn::{RecentRecords, summary as cdn_summary};
pub use dns::summary as dns_summary;
pub use records::{RECORDS_PATH, answer as records};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

/// What the page may load: its own assets and its own JSON, nothing from elsewhere (uPlot
/// sizes its elements through inline styles).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// The page and its assets: path, content type, body. They hold no data (that is in the
/// summary), so they are served to anyone the listener serves at all.
const ASSETS: [(&str, &str, &[u8]); 9] = [
    ("/", HTML, include_bytes!("assets/index.html")),
    (
        "/console/console.js",
        JS,
        include_bytes!("assets/console.js"),
    ),
    ("/console/dns.js", JS, include_bytes!("assets/dns.js")),
    ("/console/cdn.js", JS, include_bytes!("assets/cdn.js")),
    (
        "/console/streams.js",
        JS,
        include_bytes!("assets/streams.js"),
    ),
    ("/console/sql.js", JS, include_bytes!("assets/sql.js")),
    (
        "/console/console.css",
        CSS,
        include_bytes!("assets/console.css"),
    ),
    (
        "/console/vendor/uplot/uPlot.iife.min.js",
        JS,
        include_bytes!("assets/vendor/uplot/uPlot.iife.min.js"),
    ),
    (
        "/console/vendor/uplot/uPlot.min.css",
        CSS,
        include_bytes!("assets/vendor/uplot/uPlot.min.css"),
    ),
];
const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The summary the page polls.
pub const SUMMARY_PATH: &str = "/console/api/summary";

/// Whether `path` is the console's (`/` or under `/console/`).
pub fn is_console_path(path: &str) -> bool {
    path == "/" || path.starts_with("/console/")
}

/// Whether `path` is one of the page's assets, which hold no data: served without a token
/// from anywhere, so a browser on another host can load the page and then be asked for the
/// token the data needs.
pub fn is_asset(path: &str) -> bool {
    ASSETS.iter().any(|(at, _, _)| *at == path)
}

/// Answers a GET of console path `path`; `summary` makes the JSON of [`SUMMARY_PATH`].
pub fn answer(path: &str, summary: impl FnOnce() -> serde_json::Value) -> Response<Bytes> {
    if path == SUMMARY_PATH {
        let mut body = serde_json::to_vec(&summary()).unwrap_or_else(|_| b"{}".to_vec());
        body.push(b'\n');
        return respond(StatusCode::OK, "application/json", "no-store", body.into());
    }
    match ASSETS.iter().find(|(at, _, _)| *at == path) {
        // Revalidated every time: the assets change with the binary, and are small.
        Some((_, content_type, body)) => respond(
            StatusCode::OK,
            content_type,
            "no-cache",
            Bytes::from_static(body),
        ),
        None => respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "no-store",
            Bytes::from_static(b"not found: the console is at /\n"),
        ),
    }
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    cache: &'static str,
    body: Bytes,
) -> Response<Bytes> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, cache),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Unix seconds now, for the summary's `time`.
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_served_with_its_type_and_unknown_paths_are_not() {
        for (path, content_type, body) in ASSETS {
            let response = answer(path, || unreachable!());
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], content_type);
            assert_eq!(response.body().as_ref(), body);
            assert!(is_console_path(path) && is_asset(path));
        }
        let json = answer(SUMMARY_PATH, || serde_json::json!({"kind": "dns"}));
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(json.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(answer("/console/nope", || unreachable!()).status(), 404);
        assert!(!is_console_path("/metrics"));
        assert!(is_console_path(SUMMARY_PATH) && !is_asset(SUMMARY_PATH));
    }
}
