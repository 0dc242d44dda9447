//! A zone's `dnssec = { algorithm, denial, keys_dir, zsk_lifetime }`: sign it online with
//! keys of its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::diag::{ConfigError, SourceMap};
use crate::config::units::ConfigDuration;
use crate::dns::dnssec::SignerSlot;

/// How a signed zone is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneDnssec {
    pub algorithm: DnssecAlgorithm,
    pub denial: Denial,
    /// Where the zone's keys live (BIND's `K<zone>+<alg>+<tag>.key` / `.private`).
    pub keys_dir: PathBuf,
    /// With `zsk_lifetime`: a KSK and ZSKs rolled on this schedule; without, one CSK.
    pub zsk: Option<ZskTiming>,
    /// Its keys, loaded by the server (not by `check`).
    pub signer: SignerSlot,
}

/// The ZSK schedule (RFC 7583 §3.2.1, pre-publication): a successor is published
/// `publish_interval` before the active ZSK's `lifetime` ends, signs from then on, and the
/// old key stays published for the zone's largest TTL and `propagation` more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZskTiming {
    /// How long a ZSK signs (`zsk_lifetime`).
    pub lifetime: Duration,
    /// How long a new ZSK is published before it signs: the DNSKEY TTL plus `propagation`,
    /// so every resolver holding the DNSKEY RRset has the new key when its signatures come.
    pub publish_interval: Duration,
    /// How long a change takes to reach every secondary and cache beyond the TTLs.
    pub propagation: Duration,
}

/// The propagation delay: time for secondaries to transfer a change (NOTIFY makes it
/// seconds; an hour covers a secondary that only polls every refresh, 1 h by default).
const PROPAGATION: Duration = Duration::from_secs(3600);
/// The DNSKEY RRset's TTL (`dnssec::sign` serves it).
const DNSKEY_TTL: Duration = Duration::from_secs(3600);
/// The shortest `zsk_lifetime`: a day, against a 2 h publish interval and an old key kept
/// for the zone's TTLs, leaves a roll most of its life signing with one key.
const MIN_ZSK_LIFETIME: Duration = Duration::from_secs(86_400);

impl ZskTiming {
    /// The schedule for `lifetime` with the standard intervals.
    pub fn with_lifetime(lifetime: Duration) -> ZskTiming {
        ZskTiming {
            lifetime,
            publish_interval: DNSKEY_TTL + PROPAGATION,
            propagation: PROPAGATION,
        }
    }
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
    pub zsk_lifetime: Option<Spanned<ConfigDuration>>,
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
    let zsk = match &fields.zsk_lifetime {
        Some(lifetime) if lifetime.get_ref().0 < MIN_ZSK_LIFETIME => {
            errors.push(map.error(
                lifetime.span(),
                format!("{key}.zsk_lifetime"),
                "must be at least 1d: a new ZSK is published 2h before it signs, and the old one stays published for the zone's largest TTL and 1h more",
            ));
            None
        }
        Some(lifetime) => Some(Some(ZskTiming::with_lifetime(lifetime.get_ref().0))),
        None => Some(None),
    };
    Some(ZoneDnssec {
        algorithm: algorithm?,
        denial: denial?,
        keys_dir: keys_dir?,
        zsk: zsk?,
        signer: SignerSlot::default(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::Config;

    fn load(dnssec: &str) -> Result<Config, String> {
        let text = format!(
            "[dns]\n[[dns.zones]]\nname = \"home.test\"\ndnssec = {{ keys_dir = \"keys\"{dnssec} }}\nrecords = [{{ name = \"@\", type = \"NS\", values = [\"ns1.home.test.\"] }}]\n"
        );
        Config::from_str(&text, Path::new("dnssec.toml")).map_err(|e| e.to_string())
    }

    fn zsk(config: &Config) -> Option<super::ZskTiming> {
        let dns = config.dns.as_ref().expect("[dns]");
        dns.zones[0].dnssec.as_ref().expect("signed").zsk
    }

    #[test]
    fn zsk_lifetime_is_a_duration_of_a_day_or_more_with_the_standard_intervals() {
        assert_eq!(zsk(&load("").expect("valid")), None);
        let timing = zsk(&load(", zsk_lifetime = \"90d\"").expect("valid")).expect("a schedule");
        assert_eq!(timing.lifetime, Duration::from_secs(90 * 86_400));
        assert_eq!(timing.publish_interval, Duration::from_secs(7200));
        assert_eq!(timing.propagation, Duration::from_secs(3600));
        let error = load(", zsk_lifetime = \"12h\"").expect_err("too short");
        assert!(
            error.contains("dns.zones[0].dnssec.zsk_lifetime") && error.contains("at least 1d"),
            "{error}"
        );
        let error = load(", zsk_lifetime = \"soon\"").expect_err("not a duration");
        assert!(
            error.contains("zsk_lifetime") || error.contains("soon"),
            "{error}"
        );
    }
}
