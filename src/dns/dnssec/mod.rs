//! DNSSEC (RFC 4033-4035): zones signed online by edgewise-dns itself, with keys it keeps.
//!
//! - `keys`: the zone's signing keys, generated on first start and kept in BIND's format
//! - `sign`: DNSKEY, RRSIGs and the NSEC chain made as a zone is built
//! - `nsec`: the NSEC chain, and finding the record that covers a name
//! - `nsec3`: the NSEC3 chain (RFC 5155 with RFC 9276's parameters)
//! - `proof`: the NSEC records and DS a signed answer carries in its authority section

pub mod keys;
pub mod nsec;
pub mod nsec3;
pub mod proof;
pub mod sign;

use std::sync::Arc;

use crate::config::DnsConfig;
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

/// The signer of a zone's config, once its keys are loaded ([`attach_signers`]); empty
/// until then (`check` loads no keys), and a zone without one is served unsigned.
#[derive(Debug, Clone, Default)]
pub struct SignerSlot(Option<Arc<Signer>>);

impl SignerSlot {
    pub fn get(&self) -> Option<&Signer> {
        self.0.as_deref()
    }
}

/// Two configs have the same signer when it is the same one: the reloader hands a zone's
/// signer on to the next config.
impl PartialEq for SignerSlot {
    fn eq(&self, other: &SignerSlot) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for SignerSlot {}

/// Gives every signed zone of `config` its signer, its keys loaded from its keys folder
/// (the first one made there if there is none). When `previous` (the config in force, on a
/// reload) signed the zone with the same keys, its signer is kept, and with it the
/// signatures it made; a key added or retired (`edgewise-dns key`) makes a new one.
///
/// # Errors
/// A key folder or file that cannot be read, written or understood.
pub fn attach_signers(
    config: &mut DnsConfig,
    previous: Option<&DnsConfig>,
) -> Result<(), KeyError> {
    for zone in &mut config.zones {
        let origin = zone.origin.clone();
        let Some(dnssec) = zone.dnssec.as_mut() else {
            continue;
        };
        let keys = keys::load_or_generate(&dnssec.keys_dir, &origin, dnssec.algorithm)?;
        let tags: Vec<u16> = keys.iter().map(|k| k.tag()).collect();
        let kept = previous
            .into_iter()
            .flat_map(|p| &p.zones)
            .filter(|old| old.origin == origin)
            .filter_map(|old| old.dnssec.as_ref()?.signer.0.clone())
            .find(|old| old.keys().iter().map(|k| k.tag()).eq(tags.iter().copied()));
        let signer = kept.unwrap_or_else(|| Arc::new(Signer::new(keys)));
        dnssec.signer = SignerSlot(Some(signer));
    }
    Ok(())
}
