//! DNSSEC (RFC 4033-4035): zones signed online by edgewise-dns itself, with keys it keeps.
//!
//! - `keys`: the zone's signing keys, generated on first start and kept in BIND's format
//! - `roll`: the ZSK schedule, and what each key does at a time
//! - `sign`: DNSKEY, RRSIGs and the NSEC chain made as a zone is built
//! - `nsec`: the NSEC chain, and finding the record that covers a name
//! - `nsec3`: the NSEC3 chain (RFC 5155 with RFC 9276's parameters)
//! - `proof`: the NSEC records and DS a signed answer carries in its authority section
//! - `changes`: signing what a dynamic update changed, on the last build of the zone

pub mod changes;
pub mod keys;
pub mod nsec;
pub mod nsec3;
pub mod proof;
pub mod roll;
pub mod sign;

use std::sync::Arc;

use crate::config::DnsConfig;
use crate::config::dns::{Denial, ZoneData};
use crate::dns::transfer::unix_now;
pub use keys::KeyError;
pub use sign::Signer;

/// How a zone proves that names and types do not exist.
#[derive(Debug, Default, Clone)]
pub enum DenialChain {
    /// Not signed.
    #[default]
    Unsigned,
    /// NSEC records at the names (in the nodes), and their owners in order.
    Nsec(nsec::NsecOwners),
    /// NSEC3 records beside the names, by hash.
    Nsec3(nsec3::Nsec3Chain),
}

/// How a zone's build was signed: an update signed alike (same signer, same denial, same
/// day's validity) re-signs only what it changed, on that build.
#[derive(Debug, Clone)]
pub struct Signing {
    pub signer: Arc<Signer>,
    pub denial: Denial,
    /// The day (Unix days) whose validity its signatures carry.
    pub day: u64,
}

/// The signer of a zone's config, once its keys are loaded ([`attach_signers`]); empty
/// until then (`check` loads no keys), and a zone without one is served unsigned.
#[derive(Debug, Clone, Default)]
pub struct SignerSlot {
    signer: Option<Arc<Signer>>,
    /// When the zone's keys next change (Unix seconds): the key schedule's timer wakes then.
    next_key_event: Option<u64>,
}

impl SignerSlot {
    pub fn get(&self) -> Option<&Arc<Signer>> {
        self.signer.as_ref()
    }

    /// When the zone's key schedule next changes something (a key published, signing,
    /// stopping, withdrawn, or a successor due), as of the last [`attach_signers`].
    pub fn next_key_event(&self) -> Option<u64> {
        self.next_key_event
    }
}

/// Two configs have the same signer when it is the same one: the reloader hands a zone's
/// signer on to the next config.
impl PartialEq for SignerSlot {
    fn eq(&self, other: &SignerSlot) -> bool {
        match (&self.signer, &other.signer) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for SignerSlot {}

/// Gives every signed zone of `config` its signer, its keys loaded from its keys folder
/// (the first one made there if there is none) after the key schedule has done what is due
/// now (`roll::maintain`). When `previous` (the config in force, on a reload or a timed
/// run) signed the zone with the same keys doing the same, its signer is kept, and with it
/// the signatures it made; a key added, retired, starting or stopping to sign makes a new
/// one.
///
/// # Errors
/// A key folder or file that cannot be read, written or understood.
pub fn attach_signers(
    config: &mut DnsConfig,
    previous: Option<&DnsConfig>,
) -> Result<(), KeyError> {
    let now = unix_now();
    for zone in &mut config.zones {
        let origin = zone.origin.clone();
        let largest_ttl = largest_ttl(zone);
        let Some(dnssec) = zone.dnssec.as_mut() else {
            continue;
        };
        let timing = dnssec.zsk.as_ref();
        let keys = roll::maintain(
            &dnssec.keys_dir,
            &origin,
            dnssec.algorithm,
            timing,
            largest_ttl,
            now,
        )?;
        // Read again: a key just made is in use from its own time, which may be later.
        let now = unix_now();
        let facts: Vec<roll::KeyFacts> = keys.iter().map(roll::KeyFacts::of).collect();
        let next_key_event = roll::next_event(&facts, timing, now);
        let fresh = Signer::new(keys, now);
        let kept = previous
            .into_iter()
            .flat_map(|p| &p.zones)
            .filter(|old| old.origin == origin)
            .filter_map(|old| old.dnssec.as_ref()?.signer.signer.clone())
            .find(|old| old.state() == fresh.state());
        dnssec.signer = SignerSlot {
            signer: Some(kept.unwrap_or_else(|| Arc::new(fresh))),
            next_key_event,
        };
    }
    Ok(())
}

/// The zone's largest TTL (seconds): how long a resolver may keep a signature made by a
/// ZSK that has stopped signing.
fn largest_ttl(zone: &ZoneData) -> u64 {
    let plain = zone.rrsets.iter().map(|set| set.ttl);
    let routed = (zone.routed.iter()).flat_map(|group| group.members.iter().map(|m| m.ttl));
    plain.chain(routed).max().map_or(0, u64::from)
}
