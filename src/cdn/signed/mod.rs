//! CloudFront-compatible signed URLs and signed cookies.
//!
//! A request is judged by its signing parameters (`Expires`/`Policy`, `Signature`, `Key-Pair-Id`,
//! optional `Hash-Algorithm`) when its query carries any of them, otherwise by the `CloudFront-*`
//! cookies. Signatures are RSA PKCS#1 v1.5 over SHA-1 (or SHA-256 with `Hash-Algorithm=SHA256`),
//! encoded as base64 with `+`→`-`, `=`→`_`, `/`→`~`. A canned policy is rebuilt byte for byte from
//! the request URL and `Expires`; a custom policy is verified over its decoded bytes exactly and then
//! evaluated (times, source IP, resource wildcards).

mod keys;
mod params;
mod policy;
mod sign;
mod verify;

#[cfg(test)]
mod tests;

pub use keys::{KeyGroup, parse_private_key_pem, parse_public_key_pem};
pub use params::strip_signing_params;
pub use policy::{Policy, canned_statement, decode_base64, encode_base64, resource_matches};
pub use sign::{SignPolicy, sign_cookies, sign_cookies_with, sign_url, sign_url_with};
pub use verify::Verifier;

/// Largest accepted decoded policy, in bytes.
pub const MAX_POLICY_BYTES: usize = 8 * 1024;
/// Largest accepted encoded signature, in characters.
pub const MAX_SIGNATURE_CHARS: usize = 1024;

/// Errors from key parsing and signing (never from verifying: that yields a [`Denial`]).
#[derive(Debug, thiserror::Error)]
pub enum SignedError {
    #[error("invalid public key PEM: {0}")]
    PublicKey(String),
    #[error("invalid private key PEM: {0}")]
    PrivateKey(String),
    #[error("invalid policy: {0}")]
    Policy(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Denial {
    /// No signing parameters or cookies, or a required one is absent.
    Missing,
    /// Undecodable base64, oversized values, duplicated parameters, or a policy that does not parse.
    Malformed,
    /// The signature does not verify with the key named by Key-Pair-Id.
    BadSignature,
    /// No trusted key group holds a key with that Key-Pair-Id.
    UnknownKey,
    /// The time is at or past DateLessThan.
    Expired,
    /// The time is before DateGreaterThan.
    NotYetValid,
    /// The viewer is outside the policy's AWS:SourceIp.
    WrongIp,
    /// The request URL does not match the policy's Resource.
    WrongResource,
}

impl Denial {
    /// A stable short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Denial::Missing => "missing",
            Denial::Malformed => "malformed",
            Denial::BadSignature => "bad-signature",
            Denial::UnknownKey => "unknown-key",
            Denial::Expired => "expired",
            Denial::NotYetValid => "not-yet-valid",
            Denial::WrongIp => "wrong-ip",
            Denial::WrongResource => "wrong-resource",
        }
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The digest a signature is made over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashAlgorithm {
    /// CloudFront's original (and default) algorithm.
    #[default]
    Sha1,
    /// Chosen with `Hash-Algorithm=SHA256`.
    Sha256,
}

impl HashAlgorithm {
    /// The value of the `Hash-Algorithm` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "SHA1",
            HashAlgorithm::Sha256 => "SHA256",
        }
    }

    /// Parses a `Hash-Algorithm` value (`SHA1` or `SHA256`, case-insensitive).
    pub fn parse(value: &str) -> Option<HashAlgorithm> {
        if value.eq_ignore_ascii_case("SHA1") {
            Some(HashAlgorithm::Sha1)
        } else if value.eq_ignore_ascii_case("SHA256") {
            Some(HashAlgorithm::Sha256)
        } else {
            None
        }
    }
}

/// What the verifier needs to know about one viewer request.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The Host as sent, port included.
    pub host: &'a str,
    /// The raw request path (starting with `/`).
    pub path: &'a str,
    /// The raw query, signing parameters included.
    pub query: Option<&'a str>,
    /// The request headers (for `Cookie`).
    pub headers: &'a http::HeaderMap,
    /// The viewer's address.
    pub viewer: std::net::IpAddr,
    /// The time of the request.
    pub now: std::time::SystemTime,
}

impl SignedRequest<'_> {
    /// `scheme://host/path[?query]` with the signing parameters removed from the query: the URL
    /// a canned policy names and a custom policy's Resource is matched against.
    pub fn resource_url(&self) -> String {
        let mut url = format!("{}://{}{}", self.scheme, self.host, self.path);
        if let Some(rest) = self.query.and_then(strip_signing_params) {
            url.push('?');
            url.push_str(&rest);
        }
        url
    }

    /// Seconds since the Unix epoch (0 for earlier times).
    pub fn epoch_seconds(&self) -> u64 {
        self.now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}
