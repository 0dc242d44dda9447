//! Appending TSIG records: to requests (RFC 8945 §5.1), to every message of an answer
//! (§5.3, §5.3.1) and to NOTAUTH error answers (§5.3.2).

use std::sync::Arc;

use super::FUDGE;
use super::key::TsigKey;
use super::verify::TsigFailure;
use super::wire::{
    self, Fields, HEADER_LEN, Mac, TsigRcode, digest_message, digest_prior, digest_timers,
    digest_variables, plain_fields, record_len, time48, write_record,
};

/// Why a TSIG record could not be appended; the message is left as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("a {0}-byte message has no room for a DNS header")]
    NoHeader(usize),
    #[error("the message would be {0} bytes with its TSIG record, over the 65535 DNS allows")]
    TooLong(usize),
    #[error("the additional section already holds 65535 records")]
    AdditionalFull,
}

/// Signs the messages of one answer to a signed request: the first over the request's MAC
/// and the full TSIG variables, each later one (an AXFR's next messages over TCP) over the
/// previous MAC and the timers only (RFC 8945 §5.3.1). Every message is signed.
#[derive(Debug)]
pub struct ResponseSigner {
    key: Arc<TsigKey>,
    /// The request's MAC, then each message's own.
    prior: Mac,
    first: bool,
}

impl ResponseSigner {
    /// A signer for the answer to a request signed with `key` whose MAC was `request_mac`.
    pub fn new(key: Arc<TsigKey>, request_mac: Mac) -> ResponseSigner {
        ResponseSigner {
            key,
            prior: request_mac,
            first: true,
        }
    }

    /// The key answers are signed with.
    pub fn key(&self) -> &Arc<TsigKey> {
        &self.key
    }

    /// Bytes [`ResponseSigner::sign`] adds to a message: keep them free when sizing an
    /// answer to a UDP payload limit or to 65535 bytes.
    pub fn record_len(&self) -> usize {
        record_len(
            &plain_fields(&self.key, 0, FUDGE),
            self.key.algorithm().output_len(),
        )
    }

    /// Appends the TSIG record to the next message of the answer, an encoded message
    /// without one, and counts it in ARCOUNT.
    ///
    /// # Errors
    /// When the message is not a DNS message or has no room for the record.
    pub fn sign(&mut self, msg: &mut Vec<u8>, now_unix: u64) -> Result<(), SignError> {
        let fields = plain_fields(&self.key, time48(now_unix), FUDGE);
        let mac = append(
            msg,
            &self.key,
            Some(self.prior.as_bytes()),
            &fields,
            self.first,
        )?;
        self.prior = mac;
        self.first = false;
        Ok(())
    }
}

/// Signs a request (a query, NOTIFY or UPDATE) with `key`; returns its MAC, which the
/// answer's verification needs ([`super::ResponseVerifier::new`]).
///
/// # Errors
/// When the message is not a DNS message or has no room for the record.
pub fn sign_request(key: &TsigKey, msg: &mut Vec<u8>, now_unix: u64) -> Result<Mac, SignError> {
    let fields = plain_fields(key, time48(now_unix), FUDGE);
    append(msg, key, None, &fields, true)
}

impl TsigFailure {
    /// Appends the TSIG record a NOTAUTH answer to the failed request carries (RFC 8945
    /// §5.3.2): unsigned, with an empty MAC, for BADKEY and BADSIG (the key or the request's
    /// MAC cannot be trusted); signed for BADTIME (with the request's time, and ours in
    /// Other Data so the client can see the skew) and BADTRUNC.
    ///
    /// # Errors
    /// When the message is not a DNS message or has no room for the record.
    pub fn sign_error(&self, msg: &mut Vec<u8>, now_unix: u64) -> Result<(), SignError> {
        let now = time48(now_unix);
        let server_time = now.to_be_bytes();
        let mut fields = Fields {
            key_name: &self.key_name,
            ttl: 0,
            algorithm: self.algorithm.as_bytes(),
            time_signed: now,
            fudge: FUDGE,
            error: self.error.code(),
            other: &[],
        };
        match (&self.signing, self.error) {
            (Some((key, request_mac)), TsigRcode::BadTime | TsigRcode::BadTrunc) => {
                if self.error == TsigRcode::BadTime {
                    fields.time_signed = self.time_signed;
                    fields.other = &server_time[2..];
                }
                append(msg, key, Some(request_mac.as_bytes()), &fields, true).map(|_| ())
            }
            _ => {
                let original_id = check_room(msg, wire::record_len(&fields, 0))?;
                write_record(msg, &fields, &[], original_id);
                bump_arcount(msg);
                Ok(())
            }
        }
    }
}

/// Computes the MAC of `msg` (after `prior`, with all variables or the timers only) and
/// appends the record carrying it.
fn append(
    msg: &mut Vec<u8>,
    key: &TsigKey,
    prior: Option<&[u8]>,
    fields: &Fields,
    all_variables: bool,
) -> Result<Mac, SignError> {
    let original_id = check_room(msg, record_len(fields, key.algorithm().output_len()))?;
    let mut hasher = key.hasher();
    if let Some(prior) = prior {
        digest_prior(&mut hasher, prior);
    }
    digest_message(&mut hasher, msg, original_id, false);
    if all_variables {
        digest_variables(&mut hasher, fields);
    } else {
        digest_timers(&mut hasher, fields.time_signed, fields.fudge);
    }
    let mac = hasher.finish();
    write_record(msg, fields, mac.as_bytes(), original_id);
    bump_arcount(msg);
    Ok(mac)
}

/// The message's ID (what Original ID carries) once it is known `extra` bytes and one more
/// additional record fit.
fn check_room(msg: &[u8], extra: usize) -> Result<u16, SignError> {
    if msg.len() < HEADER_LEN {
        return Err(SignError::NoHeader(msg.len()));
    }
    if msg.len() + extra > usize::from(u16::MAX) {
        return Err(SignError::TooLong(msg.len() + extra));
    }
    if u16::from_be_bytes([msg[10], msg[11]]) == u16::MAX {
        return Err(SignError::AdditionalFull);
    }
    Ok(u16::from_be_bytes([msg[0], msg[1]]))
}

/// Counts the appended record; [`check_room`] made sure it fits.
fn bump_arcount(msg: &mut [u8]) {
    let arcount = u16::from_be_bytes([msg[10], msg[11]]).saturating_add(1);
    msg[10..12].copy_from_slice(&arcount.to_be_bytes());
}
