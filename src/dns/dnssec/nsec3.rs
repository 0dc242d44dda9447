//! The NSEC3 chain (RFC 5155) with RFC 9276's parameters: SHA-1, no extra iterations, no
//! salt, no opt-out. Every name with authoritative data, every delegation and every empty
//! non-terminal gets an NSEC3 at the hash of its name, naming the next hash in order and the
//! types at the name. The records live beside the zone's names, not among them (a query for
//! a hashed owner name is answered as for any name that does not exist).

use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, RecordType};
use sha1::{Digest, Sha1};

use super::changes::{Remade, same_data};
use super::nsec::{put_type_bitmap, types_with};
use super::sign::{is_signed_at, put_canonical_name, raw_record};
use crate::dns::zone::{Node, Rrset, Zone};

/// SHA-1, the only hash algorithm RFC 5155 defines.
const SHA1: u8 = 1;
const HASH_LEN: usize = 20;

/// A zone's NSEC3 records by hashed owner, in hash order, with the names hashed.
#[derive(Debug, Default, Clone)]
pub struct Nsec3Chain {
    hashes: Vec<[u8; HASH_LEN]>,
    rrsets: Vec<Arc<Rrset>>,
    /// The name each hash is of: an update finds the names whose record changed.
    names: Vec<LowerName>,
}

impl Nsec3Chain {
    /// The chain of `zone` (its apex already holding NSEC3PARAM), unsigned.
    pub fn build(zone: &Zone) -> Nsec3Chain {
        let mut owners: Vec<([u8; HASH_LEN], &LowerName)> = (zone.nodes.iter())
            .filter(|(_, node)| !node.occluded)
            .map(|(name, _)| (hash(name), name))
            .collect();
        owners.sort_unstable_by_key(|(hash, _)| *hash);
        owners.dedup_by(|a, b| a.0 == b.0);
        let rrsets = (0..owners.len())
            .map(|i| {
                let next = owners[(i + 1) % owners.len()].0;
                nsec3_rrset(zone, &owners[i].0, &next, &zone.nodes[owners[i].1])
            })
            .collect();
        Nsec3Chain {
            hashes: owners.iter().map(|(hash, _)| *hash).collect(),
            rrsets,
            names: owners.into_iter().map(|(_, name)| name.clone()).collect(),
        }
    }

    /// The chain of `zone` after the data at `changed` changed: the hashes of the changed
    /// names and of their ancestors (empty non-terminals come and go with them) put in or
    /// taken out, and the NSEC3 RRsets (unsigned) at those names and before each of them in
    /// hash order (whose next hash may have changed) made again. Only those names are hashed;
    /// the rest of the chain is copied. None if a name of the chain has no node.
    pub fn with_changes(
        &self,
        zone: &Zone,
        changed: &[LowerName],
    ) -> Option<(Nsec3Chain, Vec<Remade>)> {
        let apex = LowerName::new(&zone.origin);
        let mut affected: Vec<([u8; HASH_LEN], LowerName)> = Vec::new();
        for name in changed {
            let mut current = name.clone();
            affected.push((hash(&current), current.clone()));
            while current != apex && !current.is_root() {
                current = current.base_name();
                affected.push((hash(&current), current.clone()));
            }
        }
        affected.sort_unstable();
        affected.dedup();
        let mut chain = self.clone();
        for (hash, name) in &affected {
            let member = zone.nodes.get(name).is_some_and(|node| !node.occluded);
            match (chain.hashes.binary_search(hash), member) {
                (Ok(at), false) => {
                    chain.hashes.remove(at);
                    chain.rrsets.remove(at);
                    chain.names.remove(at);
                }
                (Err(at), true) => {
                    chain.hashes.insert(at, *hash);
                    // A stand-in: every new position is made again below.
                    chain.rrsets.insert(at, stand_in(&chain.rrsets));
                    chain.names.insert(at, name.clone());
                }
                _ => {}
            }
        }
        let len = chain.hashes.len();
        let mut again: Vec<usize> = Vec::with_capacity(2 * affected.len());
        for (hash, _) in &affected {
            let at = chain.hashes.partition_point(|h| h < hash);
            if chain.hashes.get(at) == Some(hash) {
                again.push(at);
            }
            again.extend((at + len - 1).checked_rem(len));
        }
        again.sort_unstable();
        again.dedup();
        let remade = (again.into_iter())
            .map(|at| {
                let name = chain.names[at].clone();
                let next = chain.hashes[(at + 1) % len];
                let rrset = nsec3_rrset(zone, &chain.hashes[at], &next, zone.nodes.get(&name)?);
                let before = self.matching_hash(&chain.hashes[at]);
                Some(Remade {
                    at: Some(at),
                    differs: before.is_none_or(|old| !same_data(old, &rrset)),
                    name,
                    rrset,
                })
            })
            .collect::<Option<Vec<Remade>>>()?;
        Some((chain, remade))
    }

    /// Puts `rrset` (signed) at `at`, where [`Nsec3Chain::with_changes`] said it goes.
    pub fn put(&mut self, at: usize, rrset: Arc<Rrset>) {
        if let Some(slot) = self.rrsets.get_mut(at) {
            *slot = rrset;
        }
    }

    /// The names hashed, in hash order.
    #[cfg(test)]
    pub fn names(&self) -> &[LowerName] {
        &self.names
    }

    /// The chain with every RRset passed through `sign`.
    pub fn signed(self, mut sign: impl FnMut(&Arc<Rrset>) -> Arc<Rrset>) -> Nsec3Chain {
        let rrsets = self.rrsets.iter().map(&mut sign).collect();
        Nsec3Chain { rrsets, ..self }
    }

    pub fn is_empty(&self) -> bool {
        self.rrsets.is_empty()
    }

    pub fn rrsets(&self) -> &[Arc<Rrset>] {
        &self.rrsets
    }

    /// The NSEC3 whose owner is the hash of `name`.
    pub fn matching(&self, name: &LowerName) -> Option<&Arc<Rrset>> {
        self.matching_hash(&hash(name))
    }

    /// The NSEC3 whose owner is `hash`.
    fn matching_hash(&self, hash: &[u8; HASH_LEN]) -> Option<&Arc<Rrset>> {
        let at = self.hashes.binary_search(hash).ok()?;
        self.rrsets.get(at)
    }

    /// The NSEC3 whose span covers the hash of `name`: the last owner hash before it, or
    /// the last of all (its span wraps around to the first).
    pub fn covering(&self, name: &LowerName) -> Option<&Arc<Rrset>> {
        let wanted = hash(name);
        let before = self.hashes.partition_point(|h| *h < wanted);
        let at = before
            .checked_sub(1)
            .unwrap_or(self.hashes.len().checked_sub(1)?);
        self.rrsets.get(at)
    }
}

/// The NSEC3 RRset (unsigned) at `hash` of `zone`, for `node`, naming `next`.
fn nsec3_rrset(
    zone: &Zone,
    hash: &[u8; HASH_LEN],
    next: &[u8; HASH_LEN],
    node: &Node,
) -> Arc<Rrset> {
    let ttl = zone.negative_ttl;
    let mut rdata = vec![SHA1, 0, 0, 0, 0, HASH_LEN as u8];
    rdata.extend_from_slice(next);
    put_type_bitmap(&mut rdata, &types_at(node));
    let owner = hashed_owner(hash, &zone.origin);
    Arc::new(Rrset {
        records: vec![raw_record(owner.clone(), ttl, RecordType::NSEC3, rdata)],
        name: owner,
        rtype: RecordType::NSEC3,
        ttl,
        sigs: Vec::new(),
    })
}

/// Any RRset of the chain, to hold a new position until its record is made.
fn stand_in(rrsets: &[Arc<Rrset>]) -> Arc<Rrset> {
    rrsets
        .first()
        .cloned()
        .unwrap_or_else(|| param_rrset(&Name::root()))
}

/// The apex NSEC3PARAM RRset: the parameters a secondary or signer would hash with.
pub fn param_rrset(origin: &Name) -> Arc<Rrset> {
    // TTL 0, as BIND and Knot publish it: it is for signers, not resolvers.
    let record = raw_record(
        origin.clone(),
        0,
        RecordType::NSEC3PARAM,
        vec![SHA1, 0, 0, 0, 0],
    );
    Arc::new(Rrset {
        name: origin.clone(),
        rtype: RecordType::NSEC3PARAM,
        ttl: 0,
        records: vec![record],
        sigs: Vec::new(),
    })
}

/// The types an NSEC3 at `node` lists: its data's and RRSIG; at a delegation only NS, and DS
/// with RRSIG when it has a DS (the NS there is not signed); nothing at an empty
/// non-terminal.
fn types_at(node: &Node) -> Vec<u16> {
    let signed = node.rrsets.iter().any(|set| is_signed_at(node, set)) || !node.routed.is_empty();
    let rrsig: &[RecordType] = if signed { &[RecordType::RRSIG] } else { &[] };
    types_with(node, rrsig)
}

/// SHA-1 of the name's canonical wire form, no salt, no extra iteration (RFC 5155 §5).
fn hash(name: &LowerName) -> [u8; HASH_LEN] {
    let mut wire = Vec::with_capacity(64);
    put_canonical_name(&mut wire, &Name::from(name));
    Sha1::digest(&wire).into()
}

/// `<base32hex of the hash>.<zone>` (RFC 4648 §7, lowercase, no padding).
fn hashed_owner(hash: &[u8; HASH_LEN], origin: &Name) -> Name {
    const DIGITS: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut label = String::with_capacity(32);
    for chunk in hash.chunks(5) {
        let bits = chunk.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        for i in (0..8).rev() {
            label.push(char::from(DIGITS[(bits >> (5 * i) & 31) as usize]));
        }
    }
    Name::from_ascii(&label)
        .and_then(|label| label.append_domain(origin))
        .unwrap_or_else(|_| origin.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5155 Appendix A's hashes are salted with 12 extra iterations; with RFC 9276's
    /// parameters the hash is plain SHA-1 (the expected value from Python's hashlib and
    /// base64.b32hexencode).
    #[test]
    fn hashed_owner_is_base32hex_of_the_sha1_of_the_canonical_name() {
        let origin = Name::from_ascii("example.").unwrap();
        let hash = hash(&LowerName::new(&Name::from_ascii("EXAMPLE.").unwrap()));
        assert_eq!(
            hashed_owner(&hash, &origin).to_string(),
            format!("{}.example.", EXAMPLE_HASH)
        );
    }

    const EXAMPLE_HASH: &str = "3msev9usmd4br9s97v51r2tdvmr9iqo1";
}
