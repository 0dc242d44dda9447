//! The NSEC chain (RFC 4034 §4, RFC 4035 §2.3): one NSEC at every name of the zone with
//! authoritative data or a delegation, naming the next such name in canonical order and the
//! types at its own; the last names the apex. Built with the zone, so a negative answer
//! picks its proofs instead of computing them.
//!
//! Empty non-terminals get no NSEC: a name before one whose next name lies below it proves
//! that it exists. Glue (below a cut) is not in the chain.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, RecordType};

use super::sign::{put_canonical_name, raw_record};
use crate::dns::zone::{Node, Rrset, Zone, canonical_key};

/// The chain as built: its NSEC RRsets (unsigned) by owner, and the owners in order.
pub struct Chain {
    rrsets: HashMap<LowerName, Arc<Rrset>>,
    owners: NsecOwners,
}

/// The owners of a zone's NSEC records in canonical order, to find the one whose NSEC
/// covers a name that does not exist. Empty for an unsigned zone.
#[derive(Debug, Default, Clone)]
pub struct NsecOwners {
    /// Every owner's canonical sort key ([`canonical_key`]), one after the other.
    keys: Vec<u8>,
    owners: Vec<(Range<usize>, LowerName)>,
    origin_labels: usize,
}

impl Chain {
    /// The NSEC RRset at `name`, if it has one.
    pub fn rrset_at(&self, name: &LowerName) -> Option<Arc<Rrset>> {
        self.rrsets.get(name).cloned()
    }

    pub fn into_owners(self) -> NsecOwners {
        self.owners
    }
}

impl NsecOwners {
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// The owners in canonical order.
    #[cfg(test)]
    pub fn names(&self) -> impl Iterator<Item = &LowerName> {
        self.owners.iter().map(|(_, owner)| owner)
    }

    /// `name`'s canonical sort key.
    fn key_of(&self, name: &LowerName) -> Vec<u8> {
        let mut key = Vec::with_capacity(64);
        canonical_key(name, self.origin_labels, &mut key);
        key
    }

    /// How many owners sort before `key`.
    fn position(&self, key: &[u8]) -> usize {
        self.owners
            .partition_point(|(range, _)| self.keys[range.clone()] < *key)
    }

    /// The owner before `name` in canonical order, the last one for the first: the owner
    /// whose NSEC names the owner at `name`, or would if there were one.
    pub fn before(&self, name: &LowerName) -> Option<&LowerName> {
        let at = self.position(&self.key_of(name));
        let before = at.checked_sub(1).or(self.owners.len().checked_sub(1))?;
        self.owners.get(before).map(|(_, owner)| owner)
    }

    /// The owner after `name` in canonical order, the first one (the apex) for the last:
    /// the next name of `name`'s NSEC.
    pub fn after(&self, name: &LowerName) -> Option<&LowerName> {
        let key = self.key_of(name);
        let after = (self.owners).partition_point(|(range, _)| self.keys[range.clone()] <= key[..]);
        let at = if after < self.owners.len() { after } else { 0 };
        self.owners.get(at).map(|(_, owner)| owner)
    }

    /// The owners after the data at `changed` changed in `zone`: each changed name an owner
    /// when its node has one now, the others copied over in order.
    fn with_owners(&self, zone: &Zone, changed: &[LowerName]) -> NsecOwners {
        let mut changes: Vec<(Vec<u8>, &LowerName, bool)> = (changed.iter())
            .map(|name| {
                let owner = zone.nodes.get(name).is_some_and(is_owner);
                (self.key_of(name), name, owner)
            })
            .collect();
        changes.sort();
        let mut keys = Vec::with_capacity(self.keys.len() + 32 * changes.len());
        let mut owners = Vec::with_capacity(self.owners.len() + changes.len());
        let mut push = |key: &[u8], owner: &LowerName| {
            let start = keys.len();
            keys.extend_from_slice(key);
            owners.push((start..keys.len(), owner.clone()));
        };
        let mut pending = changes.iter().peekable();
        for (range, owner) in &self.owners {
            let key = &self.keys[range.clone()];
            while let Some((changed_key, name, owns)) = pending.peek() {
                if changed_key[..] > *key {
                    break;
                }
                if *owns {
                    push(changed_key, name);
                }
                pending.next();
            }
            let replaced = changes.binary_search_by(|(k, _, _)| k[..].cmp(key)).is_ok();
            if !replaced {
                push(key, owner);
            }
        }
        for (key, name, owns) in pending {
            if *owns {
                push(key, name);
            }
        }
        NsecOwners {
            keys,
            owners,
            origin_labels: self.origin_labels,
        }
    }

    /// The owner whose NSEC covers or matches `name` (in the zone): the last owner at or
    /// before it in canonical order.
    pub fn covering(&self, name: &LowerName) -> Option<&LowerName> {
        let mut key = Vec::with_capacity(64);
        canonical_key(name, self.origin_labels, &mut key);
        let after = self
            .owners
            .partition_point(|(range, _)| self.keys[range.clone()] <= key[..]);
        // The apex sorts first: any name of the zone has an owner at or before it.
        self.owners
            .get(after.checked_sub(1)?)
            .map(|(_, owner)| owner)
    }
}

/// The NSEC chain of `zone` (its DNSKEY already at the apex).
pub fn build_chain(zone: &Zone) -> Chain {
    let origin_labels = zone.origin.iter().count();
    let mut keys = Vec::with_capacity(16 * zone.nodes.len());
    let mut owners: Vec<(Range<usize>, LowerName)> = (zone.nodes.iter())
        .filter(|(_, node)| is_owner(node))
        .map(|(name, _)| {
            let start = keys.len();
            canonical_key(name, origin_labels, &mut keys);
            (start..keys.len(), name.clone())
        })
        .collect();
    owners.sort_unstable_by(|a, b| keys[a.0.clone()].cmp(&keys[b.0.clone()]));
    let mut rrsets = HashMap::with_capacity(owners.len());
    for (i, (_, owner)) in owners.iter().enumerate() {
        let next = &owners[(i + 1) % owners.len()].1;
        rrsets.insert(owner.clone(), nsec_rrset(zone, owner, next));
    }
    Chain {
        rrsets,
        owners: NsecOwners {
            keys,
            owners,
            origin_labels,
        },
    }
}

/// Whether a node has an NSEC: authoritative data or a delegation, not glue, not an empty
/// non-terminal.
fn is_owner(node: &Node) -> bool {
    !node.occluded && (!node.rrsets.is_empty() || !node.routed.is_empty())
}

/// The NSEC RRset (unsigned) at `owner` of `zone`, naming `next`.
fn nsec_rrset(zone: &Zone, owner: &LowerName, next: &LowerName) -> Arc<Rrset> {
    let ttl = zone.negative_ttl;
    let mut rdata = Vec::with_capacity(64);
    put_canonical_name(&mut rdata, &Name::from(next));
    put_type_bitmap(&mut rdata, &types_at(&zone.nodes[owner]));
    let name = zone_spelling(zone, owner);
    let record = raw_record(name.clone(), ttl, RecordType::NSEC, rdata);
    Arc::new(Rrset {
        name,
        rtype: RecordType::NSEC,
        ttl,
        records: vec![record],
        sigs: Vec::new(),
    })
}

/// The chain of `zone` after the data at `changed` changed, from `owners`, the chain before:
/// its owners, and the NSEC RRsets (unsigned) of the changed names that have one and of the
/// owners before each changed name (whose next name may have changed), by owner. Only those
/// are made again; the keys of the other owners are copied.
pub fn update_chain(
    owners: &NsecOwners,
    zone: &Zone,
    changed: &[LowerName],
) -> (NsecOwners, Vec<(LowerName, Arc<Rrset>)>) {
    let owners = owners.with_owners(zone, changed);
    let mut again: Vec<LowerName> = Vec::with_capacity(2 * changed.len());
    for name in changed {
        if zone.nodes.get(name).is_some_and(is_owner) {
            again.push(name.clone());
        }
        again.extend(owners.before(name).cloned());
    }
    again.sort();
    again.dedup();
    let rrsets = (again.into_iter())
        .filter_map(|owner| {
            let next = owners.after(&owner)?;
            let rrset = nsec_rrset(zone, &owner, next);
            Some((owner, rrset))
        })
        .collect();
    (owners, rrsets)
}

/// The owner name as the zone writes it (the case of its data), for the NSEC's owner.
fn zone_spelling(zone: &Zone, owner: &LowerName) -> Name {
    let node = &zone.nodes[owner];
    (node.rrsets.first().map(|set| set.name.clone()))
        .or_else(|| {
            node.routed
                .first()
                .and_then(|g| g.members.first())
                .map(|m| m.rrset.name.clone())
        })
        .unwrap_or_else(|| Name::from(owner))
}

/// The types an NSEC at `node` lists: its own and RRSIG and NSEC, as the NSEC itself is
/// signed.
fn types_at(node: &Node) -> Vec<u16> {
    types_with(node, &[RecordType::NSEC, RecordType::RRSIG])
}

/// The types of `node`'s data, or at a delegation only NS and DS (the rest there is glue),
/// with `extra`: sorted, each once, as a type bit map lists them.
pub(super) fn types_with(node: &Node, extra: &[RecordType]) -> Vec<u16> {
    let mut types: Vec<u16> = (node.rrsets.iter().map(|s| s.rtype))
        .chain(node.routed.iter().map(|g| g.rtype))
        .filter(|&t| !node.is_cut || matches!(t, RecordType::NS | RecordType::DS))
        .chain(extra.iter().copied())
        .map(u16::from)
        .collect();
    types.sort_unstable();
    types.dedup();
    types
}

/// The type bit maps field (RFC 4034 §4.1.2): per window of 256 types that has any, its
/// number, the length of its bitmap and the bitmap, trailing zero bytes left out.
pub(super) fn put_type_bitmap(out: &mut Vec<u8>, types: &[u16]) {
    let mut i = 0;
    while i < types.len() {
        let window = (types[i] >> 8) as u8;
        let mut bitmap = [0u8; 32];
        let mut len = 0;
        while i < types.len() && (types[i] >> 8) as u8 == window {
            let low = (types[i] & 0xff) as usize;
            bitmap[low / 8] |= 0x80 >> (low % 8);
            len = low / 8 + 1;
            i += 1;
        }
        out.push(window);
        out.push(len as u8);
        out.extend_from_slice(&bitmap[..len]);
    }
}

/// `rdata` (of an NSEC or NSEC3 whose type bit maps start at `bitmap_at`) with `rtype` left
/// out of its bit maps.
pub(super) fn without_type(rdata: &[u8], bitmap_at: usize, rtype: RecordType) -> Vec<u8> {
    let mut types = Vec::new();
    let mut at = bitmap_at;
    while at + 2 <= rdata.len() {
        let (window, len) = (u16::from(rdata[at]), usize::from(rdata[at + 1]));
        let bitmap = rdata.get(at + 2..at + 2 + len).unwrap_or_default();
        for (i, &byte) in bitmap.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    types.push(window << 8 | (i * 8 + bit) as u16);
                }
            }
        }
        at += 2 + len;
    }
    types.retain(|&t| t != u16::from(rtype));
    let mut out = rdata[..bitmap_at.min(rdata.len())].to_vec();
    put_type_bitmap(&mut out, &types);
    out
}

/// Where the type bit maps of an NSEC's RDATA start: after its next owner name.
pub(super) fn nsec_bitmap_at(rdata: &[u8]) -> usize {
    let mut at = 0;
    while let Some(&len) = rdata.get(at) {
        at += 1 + usize::from(len);
        if len == 0 {
            break;
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_bitmap_is_written_by_windows_as_rfc_4034_shows() {
        // RFC 4034 §4.3: A MX RRSIG NSEC TYPE1234.
        let mut out = Vec::new();
        put_type_bitmap(&mut out, &[1, 15, 46, 47, 1234]);
        let mut expected = vec![0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03];
        expected.extend_from_slice(&[0x04, 0x1b]);
        expected.extend_from_slice(&[0; 26]);
        expected.push(0x20);
        assert_eq!(out, expected);
    }

    #[test]
    fn a_type_is_taken_out_of_the_bit_maps_after_the_next_name() {
        let mut rdata = b"\x03www\x04home\x04test\x00".to_vec();
        let at = nsec_bitmap_at(&rdata);
        assert_eq!(at, rdata.len());
        put_type_bitmap(&mut rdata, &[1, 15, 46, 47, 1234]);
        let mut expected = rdata[..at].to_vec();
        put_type_bitmap(&mut expected, &[15, 46, 47, 1234]);
        assert_eq!(without_type(&rdata, at, RecordType::A), expected);
        let mut only_low = rdata[..at].to_vec();
        put_type_bitmap(&mut only_low, &[1, 15, 46, 47]);
        assert_eq!(
            without_type(&rdata, at, RecordType::Unknown(1234)),
            only_low
        );
    }
}
