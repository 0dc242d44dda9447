//! The CDN (CloudFront's job): distributions chosen by Host, behaviors by path, an RFC 9111
//! cache in front of HTTP and folder origins, over HTTPS (HTTP/1.1, HTTP/2 and HTTP/3) and
//! HTTP.

mod admin;
pub mod body;
pub mod cache;
pub mod compress;
mod date;
pub mod healthz;
pub mod http2;
pub mod http3;
pub mod metrics;
pub mod origin;
pub mod pattern;
pub mod proxy;
pub mod range;
pub mod realtime_log;
pub mod reload;
pub mod request_path;
mod server;
pub mod signed;
pub mod viewer;
pub mod zero_copy;

pub use server::{CdnServer, StartError};
