//! The stream log (Kinesis Data Streams' job): a durable, sharded, append-only log on disk,
//! the Kinesis-compatible API in front of it, NDJSON ingest, Firehose-like delivery, and the
//! server that runs them inside edgewise-cdn.

pub mod api;
pub mod delivery;
pub mod log;
mod server;

pub use server::{StreamServer, StreamStartError};
