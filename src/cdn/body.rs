//! The one body type every CDN response carries: a boxed stream of `Bytes` frames, so
//! cached bytes, origin streams, files and compressed output all fit the same response.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};

/// Why a body stopped early: an origin or file read failed mid-stream.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A response body.
pub type Body = BoxBody<Bytes, BodyError>;

/// A body of bytes already in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body (HEAD, 304, redirects).
pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// A viewer's request body that remembers whether reading it failed, so a broken upload (a
/// malformed chunk, a connection cut mid-body) is answered as the viewer's fault (400), not
/// blamed on the origin (502).
pub fn watched(body: Body) -> (Body, Arc<AtomicBool>) {
    let failed = Arc::new(AtomicBool::new(false));
    let flag = failed.clone();
    let body = body
        .map_err(move |e| {
            flag.store(true, Ordering::Relaxed);
            e
        })
        .boxed();
    (body, failed)
}
