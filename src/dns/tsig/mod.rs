//! TSIG (RFC 8945): requests verified and answers signed with shared HMAC keys.
//!
//! Everything works on the exact wire bytes: a MAC covers the message as it was received or
//! sent, so re-encoding a parsed message (which may compress or order differently) would
//! break it. The request path calls [`verify`] on the raw request and, for a signed one,
//! signs each answer message with the [`ResponseSigner`] it gets; a failed check is answered
//! NOTAUTH with the TSIG [`TsigFailure::sign_error`] appends. Clients (NOTIFY, tests) use
//! [`sign_request`] and [`ResponseVerifier`].
//!
//! - `key`: algorithms, keys and the keyring looked up by key name
//! - `wire`: finding, reading and writing the TSIG record of a message
//! - `verify`: the server's checks of a request (RFC 8945 §5.2) and the client's of answers
//! - `sign`: request, answer and error signing (§5.1, §5.3)
//! - `keygen`: fresh keys in the config forms of edgewise, BIND, Knot and NSD

mod key;
mod keygen;
mod sign;
mod verify;
mod wire;

#[cfg(test)]
mod tests;

pub use key::{Algorithm, Keyring, TsigKey};
pub use keygen::{GeneratedKey, generate_key};
pub use sign::{ResponseSigner, SignError, sign_request};
pub use verify::{
    ResponseError, ResponseVerifier, SignedRequest, TsigFailure, Verification, verify,
    verify_response,
};
pub use wire::{Mac, Malformed, TsigRcode, WireName};

/// Seconds of clock difference we allow and announce (RFC 8945 §10 recommends 300).
pub const FUDGE: u16 = 300;
