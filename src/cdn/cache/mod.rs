//! The shared cache (RFC 9111): keys, storability and freshness, the byte-bounded store, and
//! request collapsing (with bodies that followers read while they arrive).

pub mod collapse;
pub mod freshness;
pub mod growing;
pub mod key;
pub mod store;
