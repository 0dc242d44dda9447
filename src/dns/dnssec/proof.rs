//! What a signed answer proves beyond its records (RFC 4035 §3.1.3, §3.1.4, RFC 5155
//! §7.2): the resolver notes the kind of answer it made ([`Proof`]), and for a DO query
//! [`add_proofs`] puts the NSEC or NSEC3 records (with their RRSIGs) that prove it into the
//! authority section, and the DS of a delegation, or the record that proves there is none.
//!
//! Every record comes from the zone's precomputed chain: nothing is signed per query.

use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, RecordType};

use super::DenialChain;
use super::nsec::NsecOwners;
use super::nsec3::Nsec3Chain;
use crate::dns::answer::{Answer, AuthorityPart, Part};
use crate::dns::zone::{Rrset, Zone};

/// The kind of answer a signed zone gave for a name, and so the proof it needs.
#[derive(Debug, Clone)]
pub enum Proof {
    /// No such name: the NSEC covering it, and the one covering the wildcard at its
    /// closest encloser.
    NxDomain { zone: Arc<Zone>, name: LowerName },
    /// The name exists without the type: its own NSEC (or, for an empty non-terminal, the
    /// NSEC whose next name is below it).
    NoData { zone: Arc<Zone>, name: LowerName },
    /// Data synthesized from a wildcard: the NSEC covering the name proves no closer match.
    Wildcard { zone: Arc<Zone>, name: LowerName },
    /// A wildcard matched, but without the type: the covering NSEC and the wildcard's own.
    WildcardNoData { zone: Arc<Zone>, name: LowerName },
    /// A delegation: its DS RRset, or the NSEC at the cut that proves there is none.
    Referral { zone: Arc<Zone>, cut: LowerName },
    /// A routed group picked no set for this client: the name's denial record without the
    /// type, made for this case at signing.
    RoutedNoData {
        zone: Arc<Zone>,
        name: LowerName,
        rtype: RecordType,
    },
}

/// Adds to `answer`'s authority section what its proofs need, each RRset once.
pub fn add_proofs(answer: &mut Answer) {
    let proofs = std::mem::take(&mut answer.proofs);
    for proof in &proofs {
        let sets = match &proof.zone().denial {
            DenialChain::Nsec(owners) => nsec_proof(proof, owners),
            DenialChain::Nsec3(chain) => nsec3_proof(proof, chain),
            DenialChain::Unsigned => Vec::new(),
        };
        for set in sets {
            let present = answer.authority.iter().any(|part| match part {
                AuthorityPart::Rrset(p) => Arc::ptr_eq(&p.rrset, &set),
                AuthorityPart::NegativeSoa(_) => false,
            });
            if !present {
                answer.authority.push(AuthorityPart::Rrset(Part {
                    rrset: set,
                    owner: None,
                }));
            }
        }
    }
    answer.proofs = proofs;
}

impl Proof {
    fn zone(&self) -> &Zone {
        match self {
            Proof::NxDomain { zone, .. }
            | Proof::NoData { zone, .. }
            | Proof::Wildcard { zone, .. }
            | Proof::WildcardNoData { zone, .. }
            | Proof::Referral { zone, .. }
            | Proof::RoutedNoData { zone, .. } => zone,
        }
    }
}

/// RFC 4035 §3.1.3: the NSEC records at or covering the names the answer speaks of.
fn nsec_proof(proof: &Proof, owners: &NsecOwners) -> Vec<Arc<Rrset>> {
    let covering = |zone: &Zone, name: &LowerName| own(zone, owners.covering(name)?);
    let mut sets = Vec::with_capacity(2);
    match proof {
        Proof::NxDomain { zone, name } => {
            sets.extend(covering(zone, name));
            let wildcard = wildcard_of(&closest_encloser(zone, name));
            sets.extend(wildcard.and_then(|w| covering(zone, &w)));
        }
        Proof::NoData { zone, name } => {
            // An empty non-terminal has no NSEC: the one before it, whose next name is
            // below it, proves it exists without data.
            sets.extend(own(zone, name).or_else(|| covering(zone, name)));
        }
        Proof::Wildcard { zone, name } => sets.extend(covering(zone, name)),
        Proof::WildcardNoData { zone, name } => {
            sets.extend(covering(zone, name));
            let wildcard = wildcard_of(&closest_encloser(zone, name));
            sets.extend(wildcard.and_then(|w| own(zone, &w)));
        }
        Proof::Referral { zone, cut } => sets.extend(ds(zone, cut).or_else(|| own(zone, cut))),
        Proof::RoutedNoData { zone, name, rtype } => sets.extend(routed(zone, name, *rtype)),
    }
    sets
}

/// RFC 5155 §7.2: the closest encloser proof (the NSEC3 matching the closest encloser and
/// the one covering the next closer name) and what each kind of answer adds to it.
fn nsec3_proof(proof: &Proof, chain: &Nsec3Chain) -> Vec<Arc<Rrset>> {
    let matching = |name: &LowerName| chain.matching(name).cloned();
    let covering = |name: &LowerName| chain.covering(name).cloned();
    let mut sets = Vec::with_capacity(3);
    match proof {
        Proof::NxDomain { zone, name } => {
            let encloser = closest_encloser(zone, name);
            sets.extend(matching(&encloser));
            sets.extend(covering(&next_closer(name, &encloser)));
            sets.extend(wildcard_of(&encloser).and_then(|w| covering(&w)));
        }
        Proof::NoData { name, .. } => sets.extend(matching(name)),
        Proof::Wildcard { zone, name } => {
            let encloser = closest_encloser(zone, name);
            sets.extend(covering(&next_closer(name, &encloser)));
        }
        Proof::WildcardNoData { zone, name } => {
            let encloser = closest_encloser(zone, name);
            sets.extend(matching(&encloser));
            sets.extend(covering(&next_closer(name, &encloser)));
            sets.extend(wildcard_of(&encloser).and_then(|w| matching(&w)));
        }
        Proof::Referral { zone, cut } => sets.extend(ds(zone, cut).or_else(|| matching(cut))),
        Proof::RoutedNoData { zone, name, rtype } => sets.extend(routed(zone, name, *rtype)),
    }
    sets
}

/// The NSEC at `name` itself.
fn own(zone: &Zone, name: &LowerName) -> Option<Arc<Rrset>> {
    zone.nodes.get(name)?.get(RecordType::NSEC).cloned()
}

/// The denial record made for a routed group at `name` that picks no set.
fn routed(zone: &Zone, name: &LowerName, rtype: RecordType) -> Option<Arc<Rrset>> {
    zone.routed_denials.get(&(name.clone(), rtype)).cloned()
}

/// The DS RRset at the delegation `cut`.
fn ds(zone: &Zone, cut: &LowerName) -> Option<Arc<Rrset>> {
    zone.nodes.get(cut)?.get(RecordType::DS).cloned()
}

/// The longest ancestor of `name` (not `name` itself) that exists in the zone: at worst the
/// apex.
fn closest_encloser(zone: &Zone, name: &LowerName) -> LowerName {
    let apex = LowerName::new(&zone.origin);
    let mut encloser = name.clone();
    while encloser != apex && !encloser.is_root() {
        encloser = encloser.base_name();
        if zone.nodes.contains_key(&encloser) {
            break;
        }
    }
    encloser
}

/// `name` cut to one label more than its closest encloser `encloser`.
fn next_closer(name: &LowerName, encloser: &LowerName) -> LowerName {
    let mut closer = name.clone();
    while closer.num_labels() > encloser.num_labels() + 1 {
        closer = closer.base_name();
    }
    closer
}

/// `*.` and `encloser`.
fn wildcard_of(encloser: &LowerName) -> Option<LowerName> {
    let wildcard = Name::from(encloser).prepend_label("*").ok()?;
    Some(LowerName::new(&wildcard))
}
