//! TSIG algorithms, keys with their HMAC state prepared once, and the keyring.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::rr::Name;
use hmac::{Hmac, Mac as _};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use super::wire::{Mac, WireName};
use crate::config::dns::TsigKeyConfig;

/// The HMAC algorithms we sign and verify with (RFC 8945 §6). MD5 and the SHA-224/384
/// variants are left out: no current client needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// For older clients only; SHA-1 is still sound inside HMAC.
    HmacSha1,
    /// The default, and what RFC 8945 says every implementation must have.
    HmacSha256,
    HmacSha512,
}

/// A shared secret with its name and algorithm, ready to compute MACs.
pub struct TsigKey {
    /// Lowercase and absolute, as `allow_transfer = ["key:NAME"]` rules compare it.
    name: Name,
    wire_name: WireName,
    algorithm: Algorithm,
    /// Keyed once: every MAC starts from a clone of it instead of re-deriving the pads.
    hasher: Hasher,
}

/// Every configured key by its (lowercase) name; built at load and reload, read lock-free.
#[derive(Default, Clone)]
pub struct Keyring {
    keys: HashMap<WireName, Arc<TsigKey>>,
}

/// An HMAC being computed with one of the [`Algorithm`]s.
#[derive(Clone)]
pub(super) enum Hasher {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

// === impl Algorithm ===

impl Algorithm {
    /// Every algorithm, in the order the config's error message lists them.
    pub const ALL: [Algorithm; 3] = [
        Algorithm::HmacSha256,
        Algorithm::HmacSha512,
        Algorithm::HmacSha1,
    ];

    /// The name in config files and in BIND/Knot/NSD key statements.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HmacSha1 => "hmac-sha1",
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }

    /// The algorithm's domain name in wire form (RFC 8945 §6), lowercase.
    pub(super) fn wire_name(self) -> &'static [u8] {
        match self {
            Algorithm::HmacSha1 => b"\x09hmac-sha1\x00",
            Algorithm::HmacSha256 => b"\x0bhmac-sha256\x00",
            Algorithm::HmacSha512 => b"\x0bhmac-sha512\x00",
        }
    }

    /// The algorithm named by a (lowercased) wire name, if we know it.
    pub(super) fn from_wire(name: &WireName) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.wire_name() == name.as_bytes())
    }

    /// Bytes of a full MAC, which is also the secret length `tsig-keygen` picks.
    pub fn output_len(self) -> usize {
        match self {
            Algorithm::HmacSha1 => 20,
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha512 => 64,
        }
    }
}

impl FromStr for Algorithm {
    type Err = String;

    fn from_str(text: &str) -> Result<Algorithm, String> {
        let wanted = text.trim_end_matches('.');
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.as_str()).collect();
                format!(
                    "{text:?} is not a TSIG algorithm (expected {})",
                    names.join(", ")
                )
            })
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl TsigKey ===

impl TsigKey {
    /// A key named `name` (case is ignored) with `secret`, the decoded bytes.
    pub fn new(name: &Name, algorithm: Algorithm, secret: &[u8]) -> TsigKey {
        let mut name = name.to_lowercase();
        name.set_fqdn(true);
        TsigKey {
            wire_name: WireName::from_name(&name),
            name,
            algorithm,
            hasher: Hasher::new(algorithm, secret),
        }
    }

    /// The key's name, lowercase and absolute.
    pub fn name(&self) -> &Name {
        &self.name
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub(super) fn wire_name(&self) -> &WireName {
        &self.wire_name
    }

    /// A fresh HMAC computation with this key.
    pub(super) fn hasher(&self) -> Hasher {
        self.hasher.clone()
    }
}

impl fmt::Debug for TsigKey {
    /// Name and algorithm only: the secret stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name.to_string())
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

// === impl Keyring ===

impl Keyring {
    /// The keys of `[[dns.tsig_keys]]` (validated: names are unique).
    pub fn new(keys: &[TsigKeyConfig]) -> Keyring {
        Keyring::from_keys(
            keys.iter()
                .map(|k| TsigKey::new(&k.name, k.algorithm, k.secret.bytes())),
        )
    }

    /// A keyring of ready keys; a later key of the same name replaces an earlier one.
    pub fn from_keys(keys: impl IntoIterator<Item = TsigKey>) -> Keyring {
        Keyring {
            keys: keys
                .into_iter()
                .map(|k| (k.wire_name, Arc::new(k)))
                .collect(),
        }
    }

    /// The key named `name`, compared without regard to case.
    pub fn get(&self, name: &Name) -> Option<&Arc<TsigKey>> {
        self.get_wire(&WireName::from_name(&name.to_lowercase()))
    }

    pub(super) fn get_wire(&self, name: &WireName) -> Option<&Arc<TsigKey>> {
        self.keys.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.keys.values()).finish()
    }
}

// === impl Hasher ===

impl Hasher {
    fn new(algorithm: Algorithm, secret: &[u8]) -> Hasher {
        const ANY_LENGTH: &str = "HMAC takes keys of any length";
        match algorithm {
            Algorithm::HmacSha1 => Hasher::Sha1(Hmac::new_from_slice(secret).expect(ANY_LENGTH)),
            Algorithm::HmacSha256 => {
                Hasher::Sha256(Hmac::new_from_slice(secret).expect(ANY_LENGTH))
            }
            Algorithm::HmacSha512 => {
                Hasher::Sha512(Hmac::new_from_slice(secret).expect(ANY_LENGTH))
            }
        }
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub(super) fn finish(self) -> Mac {
        match self {
            Hasher::Sha1(h) => Mac::new(&h.finalize().into_bytes()),
            Hasher::Sha256(h) => Mac::new(&h.finalize().into_bytes()),
            Hasher::Sha512(h) => Mac::new(&h.finalize().into_bytes()),
        }
    }

    /// Whether `tag` is the MAC or its leftmost bytes (a truncated MAC), compared in constant
    /// time. An empty tag never matches.
    pub(super) fn matches(self, tag: &[u8]) -> bool {
        match self {
            Hasher::Sha1(h) => h.verify_truncated_left(tag).is_ok(),
            Hasher::Sha256(h) => h.verify_truncated_left(tag).is_ok(),
            Hasher::Sha512(h) => h.verify_truncated_left(tag).is_ok(),
        }
    }
}
