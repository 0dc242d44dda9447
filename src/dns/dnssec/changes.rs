//! Signing a dynamic update's change on the last build of a signed zone, in time
//! proportional to the change: the changed names' RRsets and the SOA signed, the NSEC or
//! NSEC3 records around the changed names made again (and signed where they differ), the
//! routed denials at those names made again; every other RRset, signature and chain entry
//! kept from the last build.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::rr::{LowerName, RecordType};
use tracing::info;

use super::sign::{Cached, DAY, is_signed_at, routed_denials_at, sign_targets};
use super::{DenialChain, nsec};
use crate::config::dns::ZoneDnssec;
use crate::dns::zone::{Rrset, Zone};

/// A denial record (NSEC or NSEC3) an update made again, unsigned.
pub struct Remade {
    /// Its position in the NSEC3 chain; NSEC records are at their names.
    pub at: Option<usize>,
    pub name: LowerName,
    pub rrset: Arc<Rrset>,
    /// It differs from the record there before.
    pub differs: bool,
}

/// Signs `zone`, the last build `old` with the data at `changed` replaced
/// ([`Zone::with_changes`]), as of `now` with the signer of `dnssec`. Returns the names whose
/// NSEC or NSEC3 record changed, and for NSEC the next name of each (the empty non-terminals
/// an NSEC proves lie before it): prepared answers that carry those records are made again
/// from them. None when the update is not signed like `old` (another signer, another denial,
/// another day's validity) or when a changed record reaches answers beyond those names (the
/// NSEC or NSEC3 of a delegation, in every referral below it): the caller builds the zone whole
/// then.
pub fn sign_changes(
    old: &Zone,
    zone: &mut Zone,
    changed: &[LowerName],
    dnssec: &ZoneDnssec,
    now: u64,
) -> Option<Vec<LowerName>> {
    let start = Instant::now();
    let signing = old.signing.as_ref()?;
    let signer = dnssec.signer.get()?;
    let apex = LowerName::new(&zone.origin);
    let alike = Arc::ptr_eq(&signing.signer, signer)
        && signing.denial == dnssec.denial
        && signing.day == now / DAY;
    if !alike || changed.contains(&apex) {
        return None;
    }
    let (mut chain, remade) = remade_denials(old, zone, changed)?;
    let at_cut = |name: &LowerName| zone.nodes.get(name).is_some_and(|n| n.is_cut);
    if remade.iter().any(|r| r.differs && at_cut(&r.name)) {
        return None;
    }
    // The names whose routed denials follow their (new) NSEC or NSEC3: the changed ones and
    // those whose record differs.
    let redo: HashSet<LowerName> = (changed.iter())
        .chain(remade.iter().filter(|r| r.differs).map(|r| &r.name))
        .cloned()
        .collect();
    // A record made again as it was, at a name not changed, stays where it is.
    let remade: Vec<Remade> = (remade.into_iter())
        .filter(|r| redo.contains(&r.name))
        .collect();
    let mut targets = changed_rrsets(zone, changed);
    targets.extend(remade.iter().map(|r| r.rrset.clone()));
    let mut routed = Vec::new();
    for r in &remade {
        if let Some(node) = zone.nodes.get(&r.name).filter(|n| !n.occluded) {
            routed.extend(routed_denials_at(&r.name, node, &r.rrset));
        }
    }
    targets.extend(routed.iter().map(|(_, set)| set.clone()));
    let signed = sign_targets(signer, &zone.origin, &targets, now, Cached::Merge);
    let swap = |set: &Arc<Rrset>| signed.swap(set);
    for name in changed.iter().chain(std::iter::once(&apex)) {
        if let Some(node) = zone.nodes.get_mut(name).filter(|n| !n.occluded) {
            node.rrsets = node.rrsets.iter().map(swap).collect();
        }
    }
    if let Some(soa) = zone.nodes.get(&apex).and_then(|n| n.get(RecordType::SOA)) {
        zone.soa = soa.clone();
    }
    for r in &remade {
        match (&mut chain, r.at) {
            (DenialChain::Nsec3(nsec3), Some(at)) => nsec3.put(at, swap(&r.rrset)),
            _ => {
                if let Some(node) = zone.nodes.get_mut(&r.name) {
                    node.rrsets.retain(|set| set.rtype != RecordType::NSEC);
                    node.rrsets.push(swap(&r.rrset));
                    node.rrsets.sort_by_key(|set| u16::from(set.rtype));
                }
            }
        }
    }
    zone.routed_denials = old.routed_denials.clone();
    zone.routed_denials
        .retain(|(name, _), _| !redo.contains(name));
    (zone.routed_denials).extend(routed.iter().map(|(key, set)| (key.clone(), swap(set))));
    let touched = touched_names(&chain, &remade);
    zone.denial = chain;
    zone.signing = Some(signing.clone());
    let computed = signed.computed;
    info!(
        "zone {}: {} RRsets signed after an update in {:.1} ms ({computed} signatures computed), the rest kept from the last build",
        zone.origin,
        targets.len(),
        start.elapsed().as_secs_f64() * 1e3
    );
    Some(touched)
}

/// The chain of `zone` after the change, and its records made again (unsigned), each noted
/// when it differs from `old`'s.
fn remade_denials(
    old: &Zone,
    zone: &Zone,
    changed: &[LowerName],
) -> Option<(DenialChain, Vec<Remade>)> {
    match &old.denial {
        DenialChain::Nsec(owners) => {
            let (owners, rrsets) = nsec::update_chain(owners, zone, changed);
            let remade = (rrsets.into_iter())
                .map(|(name, rrset)| {
                    let before = old.nodes.get(&name).and_then(|n| n.get(RecordType::NSEC));
                    Remade {
                        at: None,
                        differs: before.is_none_or(|b| !same_data(b, &rrset)),
                        name,
                        rrset,
                    }
                })
                .collect();
            Some((DenialChain::Nsec(owners), remade))
        }
        DenialChain::Nsec3(chain) => {
            let (chain, remade) = chain.with_changes(zone, changed)?;
            Some((DenialChain::Nsec3(chain), remade))
        }
        DenialChain::Unsigned => None,
    }
}

/// Whether two RRsets hold the same records at the same TTL (signatures aside).
pub(super) fn same_data(a: &Rrset, b: &Rrset) -> bool {
    a.ttl == b.ttl && a.records == b.records
}

/// The RRsets to sign at the changed names (not glue, not a delegation's NS) and the SOA.
fn changed_rrsets(zone: &Zone, changed: &[LowerName]) -> Vec<Arc<Rrset>> {
    let mut targets = Vec::new();
    for name in changed {
        if let Some(node) = zone.nodes.get(name).filter(|n| !n.occluded) {
            targets.extend(
                (node.rrsets.iter())
                    .filter(|set| is_signed_at(node, set))
                    .cloned(),
            );
        }
    }
    let apex = zone.nodes.get(&LowerName::new(&zone.origin));
    targets.extend(apex.and_then(|n| n.get(RecordType::SOA)).cloned());
    targets
}

/// The names whose prepared answers carry a record of `remade` that differs: its own name,
/// and for NSEC the next name, the empty non-terminals above which the record proves.
fn touched_names(chain: &DenialChain, remade: &[Remade]) -> Vec<LowerName> {
    let mut touched = Vec::new();
    for r in remade.iter().filter(|r| r.differs) {
        touched.push(r.name.clone());
        if let DenialChain::Nsec(owners) = chain {
            touched.extend(owners.after(&r.name).cloned());
        }
    }
    touched
}
