//! Authoritative DNS: zones loaded into an immutable snapshot, answered per RFC 1034 §4.3.2,
//! served over UDP and TCP.
//!
//! - `rdata`, `zonefile`: presentation-format parsing (config values and master files)
//! - `zone`: the zone store (nodes, cuts, empty non-terminals)
//! - `dnssec`: online signing of zones (keys, RRSIGs, NSEC chains)
//! - `answer`: the answer algorithm (pure)
//! - `policy`: Route 53 routing policies over health and client location
//! - `edns`: EDNS Client Subnet (RFC 7871)
//! - `malformed`: counters and the rate-limited log line for malformed queries
//! - `metrics`: query, routing, reload and TCP counters for `/metrics`
//! - `top_names`: the most queried names lately, sampled off the answer path
//! - `rrl`: response rate limiting of UDP answers
//! - `tsig`: TSIG (RFC 8945) request verification and answer signing
//! - `journal`: the durable journal of dynamic updates (restart state and IXFR history)
//! - `transfer`: AXFR and IXFR out, over TCP, to the zone's allowed secondaries
//! - `update`: RFC 2136 dynamic updates, journaled and served at once
//! - `wire`: encoding, truncation, OPT
//! - `snapshot`: precomputed answers and the state the request path reads
//! - `responder`: bytes in, bytes out
//! - `server`: sockets and connection handling
//! - `reload`: SIGHUP and `POST /reload`: a new snapshot swapped in whole, or nothing

pub mod answer;
pub mod dnssec;
pub mod edns;
pub mod journal;
pub mod malformed;
pub mod metrics;
pub mod policy;
pub mod rdata;
pub mod reload;
pub mod responder;
pub mod rrl;
mod server;
pub mod snapshot;
pub mod top_names;
pub mod transfer;
pub mod tsig;
pub mod update;
pub mod wire;
pub mod zone;
pub mod zonefile;

pub use server::{DnsServer, StartError, Timers};
