//! The shared cache (RFC 9111): keys, storability and freshness, the byte-bounded store, and
//! request collapsing.

pub mod collapse;
pub mod freshness;
pub mod key;
pub mod store;
