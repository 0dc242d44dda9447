//! The one body type every CDN response carries: a boxed stream of `Bytes` frames, so
//! cached bytes, origin streams, files and compressed output all fit the same response.

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
