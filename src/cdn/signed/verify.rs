//! The verifier: trusted keys plus a bounded cache of signatures already verified.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{Arc, Mutex};

use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use super::params::{Material, from_cookies, from_query};
use super::policy::{Policy, canned_statement, decode_base64};
use super::{
    Denial, HashAlgorithm, KeyGroup, MAX_POLICY_BYTES, MAX_SIGNATURE_CHARS, SignedRequest,
};

/// How many verified signatures are remembered (over two generations).
const CACHE_ENTRIES: usize = 10_000;

/// Longest encoded Policy that can decode to at most [`MAX_POLICY_BYTES`].
const MAX_POLICY_CHARS: usize = MAX_POLICY_BYTES.div_ceil(3) * 4;

/// A keyed 128-bit hash of the signing material as received (before any decoding), so a
/// repeated signed URL costs two SipHash passes instead of base64, SHA and RSA work.
type CacheKey = u128;

/// What a verified signature allows: a custom policy (parsed once), or `None` for a canned
/// policy, which is rebuilt from Expires.
type Verified = Option<Arc<Policy>>;

/// Two generations of verified signatures: lookups check both and promote, inserts go to the
/// young one, and when it is full the old one is dropped. Bounded at [`CACHE_ENTRIES`].
#[derive(Debug, Default)]
struct VerifiedCache {
    young: HashMap<CacheKey, Verified>,
    old: HashMap<CacheKey, Verified>,
}

impl VerifiedCache {
    fn get(&mut self, key: &CacheKey) -> Option<Verified> {
        if let Some(found) = self.young.get(key) {
            return Some(found.clone());
        }
        let found = self.old.remove(key)?;
        self.insert(*key, found.clone());
        Some(found)
    }

    fn insert(&mut self, key: CacheKey, verified: Verified) {
        if self.young.len() >= CACHE_ENTRIES / 2 {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, verified);
    }

    fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

/// Checks signed URLs and cookies against trusted key groups.
pub struct Verifier {
    /// Key id → the public keys of that id across all trusted groups.
    keys: HashMap<String, Vec<RsaPublicKey>>,
    cache: Mutex<VerifiedCache>,
    /// Random SipHash keys of the cache: nobody outside can aim for a collision.
    hash_keys: (RandomState, RandomState),
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("Verifier")
            .field("key_ids", &ids)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier trusting every key of every group.
    pub fn new(groups: Vec<KeyGroup>) -> Verifier {
        let mut keys: HashMap<String, Vec<RsaPublicKey>> = HashMap::new();
        for (id, key) in groups.into_iter().flat_map(|g| g.keys) {
            let slot = keys.entry(id).or_default();
            if !slot.contains(&key) {
                slot.push(key);
            }
        }
        Verifier {
            keys,
            cache: Mutex::new(VerifiedCache::default()),
            hash_keys: (RandomState::new(), RandomState::new()),
        }
    }

    /// Whether a key with this id is trusted.
    pub fn knows_key(&self, key_pair_id: &str) -> bool {
        self.keys.contains_key(key_pair_id)
    }

    /// How many verified signatures are cached.
    pub fn cached_signatures(&self) -> usize {
        self.lock_cache().len()
    }

    /// Judges a request: by its signing query parameters when it has any (cookies ignored), else
    /// by its `CloudFront-*` cookies.
    pub fn check(&self, request: &SignedRequest) -> Result<(), Denial> {
        let material = request
            .query
            .and_then(from_query)
            .or_else(|| from_cookies(request.headers))
            .ok_or(Denial::Missing)??;
        self.judge(material, request)
    }

    fn judge(&self, material: Material, request: &SignedRequest) -> Result<(), Denial> {
        let Material {
            expires,
            policy,
            signature,
            key_pair_id,
            hash_algorithm,
        } = material;
        let (signature, key_pair_id) = match (signature, key_pair_id) {
            (Some(s), Some(k)) => (s, k),
            _ => return Err(Denial::Missing),
        };
        let algorithm = match hash_algorithm {
            None => HashAlgorithm::Sha1,
            Some(name) => HashAlgorithm::parse(&name).ok_or(Denial::Malformed)?,
        };
        if signature.len() > MAX_SIGNATURE_CHARS {
            return Err(Denial::Malformed);
        }
        let url = request.resource_url();
        let cache_key = self.cache_key(&[
            key_pair_id.as_bytes(),
            algorithm.as_str().as_bytes(),
            signature.as_bytes(),
            expires.as_deref().unwrap_or_default().as_bytes(),
            policy.as_deref().unwrap_or_default().as_bytes(),
            if expires.is_some() {
                url.as_bytes()
            } else {
                b""
            },
        ]);
        if let Some(verified) = self.lock_cache().get(&cache_key) {
            let policy = match verified {
                Some(policy) => policy,
                None => Arc::new(Policy::until(
                    expires
                        .as_deref()
                        .and_then(parse_epoch)
                        .ok_or(Denial::Malformed)?,
                )),
            };
            return policy.evaluate(&url, request.viewer, request.epoch_seconds());
        }
        let signature = decode_base64(&signature)
            .filter(|s| !s.is_empty())
            .ok_or(Denial::Malformed)?;
        let (message, canned) = match (expires, policy) {
            (Some(_), Some(_)) => return Err(Denial::Malformed),
            (None, None) => return Err(Denial::Missing),
            (Some(expires), None) => {
                let expires = parse_epoch(&expires).ok_or(Denial::Malformed)?;
                (
                    canned_statement(&url, expires).into_bytes(),
                    Some(Policy::until(expires)),
                )
            }
            (None, Some(policy)) => {
                if policy.len() > MAX_POLICY_CHARS {
                    return Err(Denial::Malformed);
                }
                let bytes = decode_base64(&policy)
                    .filter(|b| !b.is_empty() && b.len() <= MAX_POLICY_BYTES)
                    .ok_or(Denial::Malformed)?;
                (bytes, None)
            }
        };
        let keys = self.keys.get(&key_pair_id).ok_or(Denial::UnknownKey)?;
        verify(keys, algorithm, &signature, &message)?;
        // A canned policy's resource is bound by the signature over the rebuilt statement.
        let (policy, verified) = match canned {
            Some(policy) => (Arc::new(policy), None),
            None => {
                let policy = Arc::new(Policy::parse(&message).map_err(|_| Denial::Malformed)?);
                (policy.clone(), Some(policy))
            }
        };
        self.lock_cache().insert(cache_key, verified);
        policy.evaluate(&url, request.viewer, request.epoch_seconds())
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, VerifiedCache> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cache key: two independently keyed SipHash passes over the length-prefixed parts.
    fn cache_key(&self, parts: &[&[u8]]) -> CacheKey {
        let hash = |state: &RandomState| {
            let mut hasher = state.build_hasher();
            for part in parts {
                hasher.write_usize(part.len());
                hasher.write(part);
            }
            hasher.finish()
        };
        (u128::from(hash(&self.hash_keys.0)) << 64) | u128::from(hash(&self.hash_keys.1))
    }
}

/// RSA PKCS#1 v1.5 verification against any key of the id.
fn verify(
    keys: &[RsaPublicKey],
    algorithm: HashAlgorithm,
    signature: &[u8],
    message: &[u8],
) -> Result<(), Denial> {
    let (scheme, digest) = match algorithm {
        HashAlgorithm::Sha1 => (Pkcs1v15Sign::new::<Sha1>(), Sha1::digest(message).to_vec()),
        HashAlgorithm::Sha256 => (
            Pkcs1v15Sign::new::<Sha256>(),
            Sha256::digest(message).to_vec(),
        ),
    };
    if keys
        .iter()
        .any(|key| key.verify(scheme.clone(), &digest, signature).is_ok())
    {
        Ok(())
    } else {
        Err(Denial::BadSignature)
    }
}

/// An epoch second in plain decimal (no sign, no spaces).
fn parse_epoch(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
