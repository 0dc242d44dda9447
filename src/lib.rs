//! Edgewise: a homelab-sized AWS edge.
//!
//! # Layout
//! - [`config`]: the one TOML file both binaries read, validated into typed values with
//!   file:line:col errors
//! - [`dns`]: authoritative DNS (Route 53's job): zones, the RFC 1034 answer algorithm,
//!   UDP/TCP transport
//! - [`shutdown`]: SIGINT/SIGTERM → one cancellation token

pub mod config;
pub mod dns;
pub mod shutdown;
