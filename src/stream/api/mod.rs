//! The Kinesis Data Streams-compatible API: the wire layer (one value model for JSON 1.1 and
//! CBOR 1.1, AWS-shaped errors, SigV4, sealed iterators and paging tokens), the operations
//! over the log, and `POST /ingest/{stream}` for NDJSON.

pub mod error;
mod ingest;
mod ops;
pub mod put;
mod service;
pub mod sigv4;
pub mod token;
pub mod value;

pub use service::Api;
