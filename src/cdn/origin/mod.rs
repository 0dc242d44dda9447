//! Origins: HTTP(S) servers, local folders, and failover groups of them.

pub mod dir;
pub mod http;

/// Why no response came from an origin; decides 502 (bad gateway) against 504 (timeout).
#[derive(Debug, Clone, thiserror::Error)]
pub enum OriginError {
    #[error("cannot connect to the origin: {0}")]
    Connect(String),
    #[error("the origin did not answer in time")]
    Timeout,
    #[error("the origin's answer was not valid HTTP: {0}")]
    Protocol(String),
    #[error("reading the origin's body: {0}")]
    Body(String),
}

impl OriginError {
    /// The status the viewer gets.
    pub fn status(&self) -> ::http::StatusCode {
        match self {
            OriginError::Timeout => ::http::StatusCode::GATEWAY_TIMEOUT,
            _ => ::http::StatusCode::BAD_GATEWAY,
        }
    }
}
