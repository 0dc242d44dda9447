//! A zone's `dnssec = { algorithm, denial, keys_dir }`: sign it online with keys of its own.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::config::diag::{ConfigError, SourceMap};
use crate::dns::dnssec::SignerSlot;

/// How a signed zone is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneDnssec {
    pub algorithm: DnssecAlgorithm,
    pub denial: Denial,
    /// Where the zone's keys live (BIND's `K<zone>+<alg>+<tag>.key` / `.private`).
    pub keys_dir: PathBuf,
    /// Its keys, loaded by the server (not by `check`).
    pub signer: SignerSlot,
}

/// The signing algorithms offered: the two RFC 8624 recommends for signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnssecAlgorithm {
    /// 13 (RFC 6605), Route 53's choice.
    EcdsaP256Sha256,
    /// 15 (RFC 8080).
    Ed25519,
}

/// How non-existence is proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// RFC 4034 NSEC records over the zone's names.
    Nsec,
    /// RFC 5155 NSEC3 records over their hashes, with RFC 9276's parameters (no extra
    /// iterations, no salt, no opt-out): the zone's names cannot be listed by walking it.
    Nsec3,
}

/// `dnssec = { ... }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDnssec {
    pub algorithm: Option<Spanned<String>>,
    pub denial: Option<Spanned<String>>,
    pub keys_dir: Option<Spanned<String>>,
}

impl DnssecAlgorithm {
    /// The algorithm number of DNSKEY, RRSIG and DS (IANA's registry).
    pub fn number(self) -> u8 {
        match self {
            DnssecAlgorithm::EcdsaP256Sha256 => 13,
            DnssecAlgorithm::Ed25519 => 15,
        }
    }

    /// The name the config uses.
    pub fn name(self) -> &'static str {
        match self {
            DnssecAlgorithm::EcdsaP256Sha256 => "ecdsap256sha256",
            DnssecAlgorithm::Ed25519 => "ed25519",
        }
    }
}

/// Validates zone `key`'s `dnssec`; keys go under `data_dir`'s `dns-keys` unless `keys_dir`
/// says otherwise (relative paths from the config's folder `base`).
pub(super) fn validate(
    raw: &Spanned<RawDnssec>,
    data_dir: Option<&Path>,
    base: &Path,
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<ZoneDnssec> {
    let key = format!("{key}.dnssec");
    let fields = raw.get_ref();
    let algorithm = match fields.algorithm.as_ref().map(|a| (a, a.get_ref().as_str())) {
        None | Some((_, "ecdsap256sha256")) => Some(DnssecAlgorithm::EcdsaP256Sha256),
        Some((_, "ed25519")) => Some(DnssecAlgorithm::Ed25519),
        Some((a, other)) => {
            errors.push(map.error(
                a.span(),
                format!("{key}.algorithm"),
                format!(
                    "{other:?} is not offered: use \"ecdsap256sha256\" (13) or \"ed25519\" (15)"
                ),
            ));
            None
        }
    };
    let denial = match fields.denial.as_ref().map(|d| (d, d.get_ref().as_str())) {
        None | Some((_, "nsec")) => Some(Denial::Nsec),
        Some((_, "nsec3")) => Some(Denial::Nsec3),
        Some((d, other)) => {
            errors.push(map.error(
                d.span(),
                format!("{key}.denial"),
                format!("{other:?} is not a denial method: use \"nsec\" or \"nsec3\""),
            ));
            None
        }
    };
    let keys_dir = match (&fields.keys_dir, data_dir) {
        (Some(dir), _) => Some(base.join(dir.get_ref())),
        (None, Some(data_dir)) => Some(data_dir.join("dns-keys")),
        (None, None) => {
            errors.push(map.error(
                raw.span(),
                key.clone(),
                "the zone's keys need a folder: set keys_dir, or [dns] data_dir",
            ));
            None
        }
    };
    Some(ZoneDnssec {
        algorithm: algorithm?,
        denial: denial?,
        keys_dir: keys_dir?,
        signer: SignerSlot::default(),
    })
}
