//! Checking TSIG: a server's checks of a request (RFC 8945 §5.2), in the RFC's order (key,
//! MAC, time, truncation), and a client's checks of the answer's messages (§5.3, §5.3.1).

use std::sync::Arc;

use super::FUDGE;
use super::key::{Algorithm, Keyring, TsigKey};
use super::sign::ResponseSigner;
use super::wire::{
    Fields, Mac, Malformed, TsigRcode, TsigRecord, WireName, digest_message, digest_prior,
    digest_timers, digest_variables, find_tsig,
};

/// What [`verify`] found in a request.
#[derive(Debug)]
pub enum Verification {
    /// No TSIG record: answer as for anyone.
    Unsigned,
    /// Signed with a key we have, the MAC and time checked: sign the answer.
    Signed(SignedRequest),
    /// Answer NOTAUTH with the record [`TsigFailure::sign_error`] appends.
    Failed(Box<TsigFailure>),
    /// The TSIG record is misplaced or unreadable: answer FORMERR.
    Malformed(Malformed),
}

/// A request whose TSIG record verified.
#[derive(Debug)]
pub struct SignedRequest {
    pub key: Arc<TsigKey>,
    /// The request's MAC, which the answer's first MAC covers.
    pub mac: Mac,
    /// Where the TSIG record starts: `request[..tsig_start]`, with ARCOUNT one less, is the
    /// request without it.
    pub tsig_start: usize,
}

/// A request whose TSIG record did not pass.
#[derive(Debug)]
pub struct TsigFailure {
    pub error: TsigRcode,
    /// The key name as the request gave it (lowercased): the error answer repeats it.
    pub key_name: WireName,
    /// The algorithm as the request gave it (lowercased), known to us or not.
    pub algorithm: WireName,
    /// Where the TSIG record starts in the request.
    pub tsig_start: usize,
    /// The request's Time Signed, which a BADTIME answer repeats.
    pub(super) time_signed: u64,
    /// The key and the request's MAC, when the MAC verified (BADTIME, BADTRUNC): such
    /// errors are signed.
    pub(super) signing: Option<(Arc<TsigKey>, Mac)>,
}

/// Why an answer's TSIG did not verify (client side).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("malformed TSIG record: {0}")]
    Malformed(Malformed),
    #[error("the answer is not signed")]
    Unsigned,
    #[error("the answer is signed with key {0}, not ours")]
    WrongKey(Box<WireName>),
    #[error("the server answered TSIG error {0}")]
    Rejected(u16),
    #[error("the answer's MAC does not verify")]
    BadSig,
    #[error("the answer was signed at {time_signed}, outside {fudge} s of our clock's {now}")]
    BadTime {
        time_signed: u64,
        fudge: u16,
        now: u64,
    },
}

/// Checks the TSIG record of `request`, the raw message as received, at `now_unix`.
///
/// The time window is the request's fudge, capped at [`FUDGE`]: a client cannot widen the
/// window in which its signed request can be replayed.
///
/// Truncated MACs (RFC 8945 §5.2.2.1): one longer than the algorithm's output, or shorter
/// than both 10 bytes and half the output, is malformed (FORMERR); a shorter one otherwise
/// permitted is checked and then refused with BADTRUNC, since our policy takes full-length
/// MACs only (no client we know truncates, and a shorter MAC is easier to forge).
pub fn verify(keyring: &Keyring, request: &[u8], now_unix: u64) -> Verification {
    let record = match find_tsig(request) {
        Ok(Some(record)) => record,
        Ok(None) => return Verification::Unsigned,
        Err(malformed) => return Verification::Malformed(malformed),
    };
    let fail = |error, signing| {
        Verification::Failed(Box::new(TsigFailure {
            error,
            key_name: record.key_name,
            algorithm: record.algorithm,
            tsig_start: record.start,
            time_signed: record.time_signed,
            signing,
        }))
    };
    let Some(key) = keyring
        .get_wire(&record.key_name)
        .filter(|key| Algorithm::from_wire(&record.algorithm) == Some(key.algorithm()))
    else {
        return fail(TsigRcode::BadKey, None);
    };
    let full = key.algorithm().output_len();
    let shortest = full.div_ceil(2).max(10);
    let mac_len = record.mac.len();
    if mac_len > full || (mac_len != 0 && mac_len < shortest) {
        return Verification::Malformed(Malformed::BadMacSize);
    }
    if !request_mac_matches(key, request, &record) {
        return fail(TsigRcode::BadSig, None);
    }
    let mac = Mac::new(record.mac);
    if now_unix.abs_diff(record.time_signed) > u64::from(record.fudge.min(FUDGE)) {
        return fail(TsigRcode::BadTime, Some((key.clone(), mac)));
    }
    if mac_len < full {
        return fail(TsigRcode::BadTrunc, Some((key.clone(), mac)));
    }
    Verification::Signed(SignedRequest {
        key: key.clone(),
        mac,
        tsig_start: record.start,
    })
}

/// The MAC of a request (RFC 8945 §4.3.3) against the one it carries; an empty one never
/// matches.
fn request_mac_matches(key: &TsigKey, request: &[u8], record: &TsigRecord) -> bool {
    let mut hasher = key.hasher();
    digest_message(
        &mut hasher,
        &request[..record.start],
        record.original_id,
        true,
    );
    digest_variables(&mut hasher, &record_fields(record));
    hasher.matches(record.mac)
}

fn record_fields<'a>(record: &'a TsigRecord) -> Fields<'a> {
    Fields {
        key_name: &record.key_name,
        ttl: record.ttl,
        algorithm: record.algorithm.as_bytes(),
        time_signed: record.time_signed,
        fudge: record.fudge,
        error: record.error,
        other: record.other,
    }
}

impl SignedRequest {
    /// The signer of the answer's messages.
    pub fn signer(&self) -> ResponseSigner {
        ResponseSigner::new(self.key.clone(), self.mac)
    }
}

/// Checks the messages of an answer to a request we signed, in order: the mirror of
/// [`ResponseSigner`]. Every message must be signed (RFC 8945 §5.3.1 lets a server leave
/// up to 99 unsigned between signed ones; edgewise-dns signs them all and BIND, Knot and
/// NSD send none unsigned in practice).
#[derive(Debug)]
pub struct ResponseVerifier {
    key: Arc<TsigKey>,
    prior: Mac,
    first: bool,
}

impl ResponseVerifier {
    /// A verifier for the answer to a request signed with `key` whose MAC was `request_mac`
    /// (what [`super::sign_request`] returned).
    pub fn new(key: Arc<TsigKey>, request_mac: Mac) -> ResponseVerifier {
        ResponseVerifier {
            key,
            prior: request_mac,
            first: true,
        }
    }

    /// Checks the answer's next message.
    ///
    /// # Errors
    /// Why the message is not a valid signed answer; the verifier is unchanged.
    pub fn verify(&mut self, msg: &[u8], now_unix: u64) -> Result<(), ResponseError> {
        let record = find_tsig(msg)
            .map_err(ResponseError::Malformed)?
            .ok_or(ResponseError::Unsigned)?;
        if record.key_name != *self.key.wire_name() {
            return Err(ResponseError::WrongKey(Box::new(record.key_name)));
        }
        if record.error != 0 && record.mac.is_empty() {
            return Err(ResponseError::Rejected(record.error));
        }
        if Algorithm::from_wire(&record.algorithm) != Some(self.key.algorithm())
            || record.mac.len() != self.key.algorithm().output_len()
        {
            return Err(ResponseError::BadSig);
        }
        let mut hasher = self.key.hasher();
        digest_prior(&mut hasher, self.prior.as_bytes());
        digest_message(&mut hasher, &msg[..record.start], record.original_id, true);
        if self.first {
            digest_variables(&mut hasher, &record_fields(&record));
        } else {
            digest_timers(&mut hasher, record.time_signed, record.fudge);
        }
        if !hasher.matches(record.mac) {
            return Err(ResponseError::BadSig);
        }
        if record.error != 0 {
            return Err(ResponseError::Rejected(record.error));
        }
        if now_unix.abs_diff(record.time_signed) > u64::from(record.fudge) {
            return Err(ResponseError::BadTime {
                time_signed: record.time_signed,
                fudge: record.fudge,
                now: now_unix,
            });
        }
        self.prior = Mac::new(record.mac);
        self.first = false;
        Ok(())
    }
}

/// Checks a one-message answer to a request signed with `key` whose MAC was `request_mac`.
///
/// # Errors
/// As [`ResponseVerifier::verify`].
pub fn verify_response(
    key: &Arc<TsigKey>,
    request_mac: Mac,
    msg: &[u8],
    now_unix: u64,
) -> Result<(), ResponseError> {
    ResponseVerifier::new(key.clone(), request_mac).verify(msg, now_unix)
}
