//! The shared cache (RFC 9111): keys, storability and freshness, the byte-bounded store, and
//! request collapsing (with bodies that followers read while they arrive), and large bodies
//! kept in files that plain-HTTP hits send with `sendfile`.

pub mod collapse;
pub mod freshness;
pub mod growing;
pub mod key;
pub mod mapped;
pub mod store;
pub mod targeted;
