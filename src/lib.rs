//! Edgewise: a homelab-sized AWS edge.
//!
//! # Layout
//! - [`acme`]: certificates from an ACME CA (RFC 8555), renewed in the background and
//!   swapped into the HTTPS listeners
//! - [`analytics`]: SQL over the streams on DataFusion (Kinesis Data Analytics' job): input
//!   schemas, one-shot queries, continuous KDA-dialect applications
//! - [`app`]: process wiring shared by both binaries (folder locks: one process per folder)
//! - [`cli`]: logging and config loading shared by the two binaries
//! - [`console`]: the web page both control listeners serve at `/`, its assets and summaries
//! - [`config`]: the one TOML file both binaries read, validated into typed values with
//!   file:line:col errors
//! - [`cdn`]: the caching HTTPS reverse proxy (CloudFront's job): TLS, distributions,
//!   behaviors, the RFC 9111 cache, origins, compression, the admin API
//! - [`dns`]: authoritative DNS (Route 53's job): zones, the RFC 1034 answer algorithm,
//!   UDP/TCP transport
//! - [`edge`]: the edgewise-cdn process: CDN, stream API and the real-time logs between them
//! - [`geo`]: client location from `[[geo.networks]]` and MaxMind-format databases
//! - [`health`]: HTTP/HTTPS/TCP/calculated health checks, published as lock-free flags, and
//!   the status listener that shows them
//! - [`logs`]: the DNS query log and the CDN access log: bounded queues, writer tasks,
//!   reopened on SIGUSR1
//! - [`net`]: socket set-up shared by the servers; connection admission (per-client and
//!   global caps, oldest-idle eviction) and the accept loop built on it
//! - [`shutdown`]: SIGINT/SIGTERM → one cancellation token
//! - [`stream`]: the Kinesis-compatible stream log: durable sharded log on disk, its API, ingest
//!   and delivery

pub mod acme;
pub mod analytics;
pub mod app;
pub mod cdn;
pub mod cli;
pub mod config;
pub mod console;
pub mod dns;
pub mod edge;
pub mod geo;
pub mod health;
pub mod logs;
pub mod metrics;
pub mod net;
pub mod shutdown;
pub mod stream;
