//! The stream log (Kinesis Data Streams' job): a durable, sharded, append-only log on disk,
//! the Kinesis-compatible API in front of it, NDJSON ingest, Firehose-like delivery, and the
//! server that runs them inside edgewise-cdn; `reload` applies a reloaded `[stream]`.

pub mod api;
pub mod delivery;
pub mod log;
pub mod nats;
pub mod reload;
mod server;

pub use server::{StreamServer, StreamStartError};
