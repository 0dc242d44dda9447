//! Producing signed URLs and cookies, as CloudFront's signers do.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use super::policy::{Policy, canned_statement, encode_base64};
use super::{HashAlgorithm, SignedError};

/// What a signature grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignPolicy {
    /// Exactly the signed URL (or, for cookies, the given resource) until `expires`.
    Canned { expires: u64 },
    /// A custom policy document, signed byte for byte as given.
    Custom { json: String },
}

/// Characters of a Key-Pair-Id left unencoded in a query.
const KEY_ID_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Adapts the project's `rand` (rand_core 0.10) to the rand_core 0.6 that rsa 0.9 takes, so the
/// RSA private operation is blinded.
struct BlindingRng(rand::rngs::ThreadRng);

impl rsa::rand_core::RngCore for BlindingRng {
    fn next_u32(&mut self) -> u32 {
        rand::Rng::next_u32(&mut self.0)
    }
    fn next_u64(&mut self) -> u64 {
        rand::Rng::next_u64(&mut self.0)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::Rng::fill_bytes(&mut self.0, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        rand::Rng::fill_bytes(&mut self.0, dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for BlindingRng {}

/// RSA PKCS#1 v1.5 over `message` with `algorithm`, in CloudFront's base64 variant.
pub(super) fn signature(
    key: &RsaPrivateKey,
    algorithm: HashAlgorithm,
    message: &[u8],
) -> Result<String, SignedError> {
    let mut rng = BlindingRng(rand::rng());
    let signed = match algorithm {
        HashAlgorithm::Sha1 => key.sign_with_rng(
            &mut rng,
            Pkcs1v15Sign::new::<Sha1>(),
            &Sha1::digest(message),
        ),
        HashAlgorithm::Sha256 => key.sign_with_rng(
            &mut rng,
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(message),
        ),
    };
    signed
        .map(|s| encode_base64(&s))
        .map_err(|e| SignedError::Sign(e.to_string()))
}

/// The signed bytes and the policy value (`Expires` number or encoded `Policy`) for `resource`.
fn prepare(resource: &str, policy: &SignPolicy) -> Result<(Vec<u8>, String), SignedError> {
    match policy {
        SignPolicy::Canned { expires } => Ok((
            canned_statement(resource, *expires).into_bytes(),
            expires.to_string(),
        )),
        SignPolicy::Custom { json } => {
            Policy::parse(json.as_bytes()).map_err(SignedError::Policy)?;
            if json.len() > super::MAX_POLICY_BYTES {
                return Err(SignedError::Policy(format!(
                    "longer than {} bytes",
                    super::MAX_POLICY_BYTES
                )));
            }
            Ok((json.as_bytes().to_vec(), encode_base64(json.as_bytes())))
        }
    }
}

/// The URL with its signing parameters appended (SHA-1, as CloudFront's signers do).
pub fn sign_url(
    url: &str,
    key_pair_id: &str,
    key: &RsaPrivateKey,
    policy: &SignPolicy,
) -> Result<String, SignedError> {
    sign_url_with(url, key_pair_id, key, policy, HashAlgorithm::Sha1)
}

/// [`sign_url`] with a choice of digest; SHA-256 adds `Hash-Algorithm=SHA256`.
pub fn sign_url_with(
    url: &str,
    key_pair_id: &str,
    key: &RsaPrivateKey,
    policy: &SignPolicy,
    algorithm: HashAlgorithm,
) -> Result<String, SignedError> {
    // A trailing `?` or `&` would be dropped by the verifier's rebuilt URL; drop it here too.
    let base = url.trim_end_matches(['?', '&']);
    let (message, value) = prepare(base, policy)?;
    let signature = signature(key, algorithm, &message)?;
    let mut out = String::with_capacity(base.len() + value.len() + signature.len() + 64);
    out.push_str(base);
    out.push(if base.contains('?') { '&' } else { '?' });
    out.push_str(match policy {
        SignPolicy::Canned { .. } => "Expires=",
        SignPolicy::Custom { .. } => "Policy=",
    });
    out.push_str(&value);
    out.push_str("&Signature=");
    out.push_str(&signature);
    out.push_str("&Key-Pair-Id=");
    out.extend(utf8_percent_encode(key_pair_id, KEY_ID_SET));
    if algorithm == HashAlgorithm::Sha256 {
        out.push_str("&Hash-Algorithm=SHA256");
    }
    Ok(out)
}

/// The cookies for a policy (SHA-1): `CloudFront-Expires` (canned, over `resource`) or
/// `CloudFront-Policy` (custom), then `CloudFront-Signature` and `CloudFront-Key-Pair-Id`.
pub fn sign_cookies(
    resource: &str,
    key_pair_id: &str,
    key: &RsaPrivateKey,
    policy: &SignPolicy,
) -> Result<Vec<(&'static str, String)>, SignedError> {
    sign_cookies_with(resource, key_pair_id, key, policy, HashAlgorithm::Sha1)
}

/// [`sign_cookies`] with a choice of digest; SHA-256 adds `CloudFront-Hash-Algorithm=SHA256`.
pub fn sign_cookies_with(
    resource: &str,
    key_pair_id: &str,
    key: &RsaPrivateKey,
    policy: &SignPolicy,
    algorithm: HashAlgorithm,
) -> Result<Vec<(&'static str, String)>, SignedError> {
    // The edge rebuilds a canned statement from each request's own URL, so a canned cookie
    // over a wildcard could never verify: say so instead of printing useless cookies.
    if matches!(policy, SignPolicy::Canned { .. }) && resource.contains('*') {
        return Err(SignedError::Policy(format!(
            "a canned policy covers exactly one URL, so {resource:?} with `*` could never \
             verify; use a custom policy (--policy) whose Resource has the wildcard"
        )));
    }
    let (message, value) = prepare(resource, policy)?;
    let signature = signature(key, algorithm, &message)?;
    let name = match policy {
        SignPolicy::Canned { .. } => "CloudFront-Expires",
        SignPolicy::Custom { .. } => "CloudFront-Policy",
    };
    let mut cookies = vec![
        (name, value),
        ("CloudFront-Signature", signature),
        ("CloudFront-Key-Pair-Id", key_pair_id.to_string()),
    ];
    if algorithm == HashAlgorithm::Sha256 {
        cookies.push(("CloudFront-Hash-Algorithm", algorithm.as_str().to_string()));
    }
    Ok(cookies)
}
