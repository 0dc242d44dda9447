//! Signing a zone as it is built: DNSKEY, CDS and CDNSKEY at the apex, the NSEC or NSEC3 chain, and an RRSIG (RFC 4034
//! §3) over every authoritative RRset, routed sets each on their own, made once per build so
//! a signed answer is a copy like an unsigned one.
//!
//! Signatures of one day share their validity (inception an hour before the day began,
//! expiration 14 days after), so an RRset unchanged since an earlier build that day is
//! signed with the same data, and its signature is taken from the signer's cache instead of
//! computed again; an RRset whose records are those of the last build is taken whole from
//! it, not even encoded again: a rebuild after an update signs what the update changed (and an
//! update that leaves the zone's structure alone is signed on the last build, `changes`). A daily
//! re-sign (`reload::spawn_scheduled_resign`) keeps every signature at least 13 of its 14 days from expiring;
//! the same timer runs the key schedule (`roll`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use sha2::{Digest, Sha256};
use tracing::info;

use super::changes::same_data;
use super::keys::SigningKey;
use super::nsec3::{self, Nsec3Chain};
use super::roll::{KeyFacts, KeyUse, uses};
use super::{DenialChain, Signing, nsec};
use crate::config::dns::Denial;
use crate::dns::policy::{Member, RoutedGroup};
use crate::dns::zone::{Node, Rrset, Zone};

/// The DNSKEY RRset's TTL (Route 53 and Knot use an hour), and CDS's and CDNSKEY's.
const DNSKEY_TTL: u32 = 3600;
pub(super) const DAY: u64 = 86_400;
/// How long a signature is valid, from the start of the day it was made on.
const VALIDITY: u64 = 14 * DAY;
/// Inception this long before the day began: clocks of validators may lag.
const INCEPTION_SKEW: u64 = 3600;

/// A signed zone's published keys, what each does, and the signatures made with them, kept
/// across the builds of the zone (start, reloads, updates) so unchanged RRsets are not
/// signed again. A key that starts or stops signing makes a new signer (`attach_signers`),
/// so no signature is reused from a key no longer active.
#[derive(Debug)]
pub struct Signer {
    keys: Vec<SigningKey>,
    /// What `keys[i]` does.
    uses: Vec<KeyUse>,
    cache: Mutex<SignatureCache>,
}

/// Signatures by the SHA-256 of the data they sign, and the day they were last used on.
#[derive(Debug, Default)]
struct SignatureCache {
    day: u64,
    signatures: HashMap<[u8; 32], Vec<u8>>,
    /// The signed RRsets of the last build, by owner and type: an RRset whose records are
    /// the same is taken whole, without encoding and hashing it again.
    signed: HashMap<(LowerName, RecordType), Vec<Arc<Rrset>>>,
}

/// When a build's signatures are valid.
#[derive(Debug, Clone, Copy)]
struct Validity {
    inception: u32,
    expiration: u32,
}

impl Signer {
    /// The signer of `keys` as they are at `now` (Unix seconds): the published ones, each
    /// signing what its times and kind say (`roll::uses`).
    pub fn new(keys: Vec<SigningKey>, now: u64) -> Signer {
        let facts: Vec<KeyFacts> = keys.iter().map(KeyFacts::of).collect();
        let (keys, uses) = (keys.into_iter())
            .zip(uses(&facts, now))
            .filter(|(_, key_use)| key_use.published)
            .unzip();
        Signer {
            keys,
            uses,
            cache: Mutex::default(),
        }
    }

    /// The published keys: the DNSKEY RRset.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// Each published key's tag and flags and what it does: signers of the same state sign
    /// alike, so a reload keeps the one in force (and its signatures).
    pub fn state(&self) -> Vec<(u16, u16, KeyUse)> {
        (self.keys.iter().zip(&self.uses))
            .map(|(key, key_use)| (key.tag(), key.flags(), *key_use))
            .collect()
    }

    /// The keys that sign `set` of the zone at `origin`: the KSKs for the apex's DNSKEY, CDS
    /// and CDNSKEY, the zone's signing keys for the rest.
    fn signers_of(&self, set: &Rrset, origin: &Name) -> Vec<&SigningKey> {
        let of_keys = set.name == *origin
            && matches!(
                set.rtype,
                RecordType::DNSKEY | RecordType::CDS | RecordType::CDNSKEY
            );
        (self.keys.iter().zip(&self.uses))
            .filter(|(_, u)| if of_keys { u.signs_keys } else { u.signs_zone })
            .map(|(key, _)| key)
            .collect()
    }

    /// Seconds from `now` (Unix seconds) to a minute into the next day, when the zones are
    /// signed again with that day's validity.
    pub fn until_next_day(now: u64) -> u64 {
        (now / DAY + 1) * DAY + 60 - now
    }
}

impl Validity {
    fn of_day(now: u64) -> Validity {
        let day = now / DAY * DAY;
        Validity {
            inception: serial_time(day - INCEPTION_SKEW),
            expiration: serial_time(day + VALIDITY),
        }
    }
}

/// RRSIG times are 32-bit serial numbers of seconds (RFC 4034 §3.1.5): the low 32 bits.
fn serial_time(seconds: u64) -> u32 {
    seconds as u32
}

/// Signs `zone` in place with `signer` as of `now` (Unix seconds): DNSKEY at the apex,
/// the NSEC or NSEC3 chain (`denial`), an RRSIG for every authoritative RRset
/// (not the NS of a delegation, not glue) and for every routed set.
pub fn sign_zone(zone: &mut Zone, signer: &Arc<Signer>, denial: Denial, now: u64) {
    let start = Instant::now();
    let apex = LowerName::new(&zone.origin);
    let mut apex_sets = key_rrsets(&zone.origin, signer.keys());
    if denial == Denial::Nsec3 {
        apex_sets.push(nsec3::param_rrset(&zone.origin));
    }
    if let Some(node) = zone.nodes.get_mut(&apex) {
        node.rrsets
            .retain(|set| !apex_sets.iter().any(|k| k.rtype == set.rtype));
        node.rrsets.extend(apex_sets);
        node.rrsets.sort_by_key(|set| u16::from(set.rtype));
    }
    let (nsec, nsec3) = match denial {
        Denial::Nsec => (Some(nsec::build_chain(zone)), None),
        Denial::Nsec3 => (None, Some(Nsec3Chain::build(zone))),
    };
    if let Some(chain) = &nsec {
        for (name, node) in zone.nodes.iter_mut() {
            if let Some(set) = chain.rrset_at(name).filter(|_| !node.occluded) {
                node.rrsets.push(set);
                node.rrsets.sort_by_key(|set| u16::from(set.rtype));
            }
        }
    }
    let mut targets: Vec<Arc<Rrset>> = Vec::new();
    for node in zone.nodes.values().filter(|node| !node.occluded) {
        targets.extend(
            node.rrsets
                .iter()
                .filter(|set| is_signed_at(node, set))
                .cloned(),
        );
        let routed = node.routed.iter().flat_map(|group| &group.members);
        targets.extend(routed.map(|member| member.rrset.clone()));
    }
    let routed_denials = routed_denials(zone, nsec3.as_ref());
    targets.extend(routed_denials.iter().map(|(_, set)| set.clone()));
    if let Some(chain) = &nsec3 {
        targets.extend(chain.rrsets().iter().cloned());
    }
    let signed = sign_targets(signer, &zone.origin, &targets, now, Cached::Replace);
    let computed = signed.computed;
    let swap = |set: &Arc<Rrset>| signed.swap(set);
    for node in zone.nodes.values_mut().filter(|node| !node.occluded) {
        node.rrsets = node.rrsets.iter().map(swap).collect();
        node.routed = node
            .routed
            .iter()
            .map(|group| signed_group(group, swap))
            .collect();
    }
    zone.routed_denials = (routed_denials.iter())
        .map(|(key, set)| (key.clone(), swap(set)))
        .collect();
    zone.denial = match (nsec, nsec3) {
        (Some(chain), _) => DenialChain::Nsec(chain.into_owners()),
        (None, Some(chain)) => DenialChain::Nsec3(chain.signed(swap)),
        (None, None) => DenialChain::Unsigned,
    };
    if let Some(soa) = zone.nodes.get(&apex).and_then(|n| n.get(RecordType::SOA)) {
        zone.soa = soa.clone();
    }
    zone.signing = Some(Signing {
        signer: signer.clone(),
        denial,
        day: now / DAY,
    });
    info!(
        "zone {}: {} RRsets signed in {:.1} ms ({computed} signatures computed, the rest unchanged since an earlier build today)",
        zone.origin,
        targets.len(),
        start.elapsed().as_secs_f64() * 1e3
    );
}

/// What [`sign_targets`] does with the signer's RRsets of the last build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cached {
    /// The targets are the zone's every RRset: they become the last build's.
    Replace,
    /// The targets are an update's: they take the place of those of their owners and types
    /// (so they hold each owner and type whole: a routed name's NSEC with its routed denials).
    Merge,
}

/// Signed RRsets by the address of the unsigned one, and how many signatures were computed.
pub(super) struct Signed {
    by_target: HashMap<*const Rrset, Arc<Rrset>>,
    pub(super) computed: usize,
}

impl Signed {
    /// `set` with its RRSIGs when it was signed; as it is otherwise.
    pub(super) fn swap(&self, set: &Arc<Rrset>) -> Arc<Rrset> {
        (self.by_target.get(&Arc::as_ptr(set)).cloned()).unwrap_or_else(|| set.clone())
    }
}

/// `targets` with their RRSIGs by `signer` as of `now`: an RRset whose records are those of
/// the last build is taken whole from it, the rest signed (signatures of data signed earlier
/// that day taken from the cache).
pub(super) fn sign_targets(
    signer: &Signer,
    origin: &Name,
    targets: &[Arc<Rrset>],
    now: u64,
    cached: Cached,
) -> Signed {
    let mut cache = signer.cache.lock().unwrap_or_else(PoisonError::into_inner);
    if cache.day != now / DAY {
        // Yesterday's signatures carry yesterday's validity: none can be reused.
        cache.day = now / DAY;
        cache.signatures.clear();
        cache.signed.clear();
    }
    let mut signed: HashMap<*const Rrset, Arc<Rrset>> = HashMap::with_capacity(targets.len());
    let mut fresh: Vec<Arc<Rrset>> = Vec::new();
    for target in targets {
        let key = (LowerName::new(&target.name), target.rtype);
        let kept =
            (cache.signed.get(&key).into_iter().flatten()).find(|old| same_data(old, target));
        match kept {
            Some(old) => {
                signed.insert(Arc::as_ptr(target), old.clone());
            }
            None => fresh.push(target.clone()),
        }
    }
    let validity = Validity::of_day(now);
    let (made, computed) = sign_all(&fresh, signer, origin, validity, &mut cache.signatures);
    signed.extend(made);
    let mut by_owner: HashMap<(LowerName, RecordType), Vec<Arc<Rrset>>> =
        HashMap::with_capacity(signed.len());
    for set in signed.values() {
        let key = (LowerName::new(&set.name), set.rtype);
        by_owner.entry(key).or_default().push(set.clone());
    }
    match cached {
        Cached::Replace => cache.signed = by_owner,
        Cached::Merge => cache.signed.extend(by_owner),
    }
    Signed {
        by_target: signed,
        computed,
    }
}

/// For each routed type at a name, the name's NSEC or NSEC3 with that type taken out of its
/// bit maps (unsigned): the proof for a client that the group picks no set for (geolocation
/// or CIDR rules without a default), whose NODATA the regular record, listing the type,
/// would contradict.
fn routed_denials(
    zone: &Zone,
    nsec3: Option<&Nsec3Chain>,
) -> Vec<((LowerName, RecordType), Arc<Rrset>)> {
    let mut denials = Vec::new();
    for (name, node) in zone
        .nodes
        .iter()
        .filter(|(_, n)| !n.occluded && !n.routed.is_empty())
    {
        let regular = match nsec3 {
            Some(chain) => chain.matching(name).cloned(),
            None => node.get(RecordType::NSEC).cloned(),
        };
        if let Some(regular) = regular {
            denials.extend(routed_denials_at(name, node, &regular));
        }
    }
    denials
}

/// The routed denials (unsigned) at `name`, one per routed group of its `node`, made of
/// `regular`, its NSEC or NSEC3.
pub(super) fn routed_denials_at(
    name: &LowerName,
    node: &Node,
    regular: &Rrset,
) -> Vec<((LowerName, RecordType), Arc<Rrset>)> {
    let Some(RData::Unknown { rdata, .. }) = regular.records.first().map(|r| &r.data) else {
        return Vec::new();
    };
    let rdata = &rdata.anything;
    let bitmap_at = match regular.rtype {
        // Algorithm, flags, iterations, salt length and salt, hash length and hash.
        RecordType::NSEC3 => {
            let salt = usize::from(rdata.get(4).copied().unwrap_or(0));
            6 + salt + usize::from(rdata.get(5 + salt).copied().unwrap_or(0))
        }
        _ => nsec::nsec_bitmap_at(rdata),
    };
    (node.routed.iter())
        .map(|group| {
            let without = nsec::without_type(rdata, bitmap_at, group.rtype);
            let set = Rrset {
                records: vec![raw_record(
                    regular.name.clone(),
                    regular.ttl,
                    regular.rtype,
                    without,
                )],
                sigs: Vec::new(),
                ..Rrset::clone(regular)
            };
            ((name.clone(), group.rtype), Arc::new(set))
        })
        .collect()
}

/// Whether `set` at `node` gets an RRSIG: not a delegation's NS, nor anything else at a
/// cut but its DS and NSEC (RFC 4035 §2.2).
pub(super) fn is_signed_at(node: &Node, set: &Rrset) -> bool {
    !node.is_cut || matches!(set.rtype, RecordType::DS | RecordType::NSEC)
}

/// Every RRset of `targets` with its RRSIGs by the keys of `signer` that sign it, by the
/// address of the unsigned one, and how many signatures were computed: those not in
/// `cache` are made on every core.
fn sign_all(
    targets: &[Arc<Rrset>],
    signer: &Signer,
    origin: &Name,
    validity: Validity,
    cache: &mut HashMap<[u8; 32], Vec<u8>>,
) -> (HashMap<*const Rrset, Arc<Rrset>>, usize) {
    let signers: Vec<Vec<&SigningKey>> = (targets.iter())
        .map(|target| signer.signers_of(target, origin))
        .collect();
    // The RRSIG RDATA without its signature, and the digest of what it signs.
    let mut heads: Vec<(Vec<u8>, [u8; 32])> = Vec::with_capacity(targets.len() * 2);
    let mut missing: Vec<([u8; 32], Vec<u8>, &SigningKey)> = Vec::new();
    let mut listed: HashSet<[u8; 32]> = HashSet::new();
    for (target, keys) in targets.iter().zip(&signers) {
        for &key in keys {
            let head = rrsig_head(target, key, origin, validity);
            let data = signed_data(&head, target);
            let digest: [u8; 32] = Sha256::digest(&data).into();
            if !cache.contains_key(&digest) && listed.insert(digest) {
                missing.push((digest, data, key));
            }
            heads.push((head, digest));
        }
    }
    let computed = missing.len();
    cache.extend(sign_in_parallel(&missing));
    let mut signed = HashMap::with_capacity(targets.len());
    let mut heads = heads.into_iter();
    for (target, keys) in targets.iter().zip(&signers) {
        let sigs = (keys.iter())
            .filter_map(|_| heads.next())
            .map(|(mut rdata, digest)| {
                rdata.extend_from_slice(cache.get(&digest).map_or(&[][..], Vec::as_slice));
                raw_record(target.name.clone(), target.ttl, RecordType::RRSIG, rdata)
            })
            .collect();
        let with_sigs = Arc::new(Rrset {
            sigs,
            ..Rrset::clone(target)
        });
        signed.insert(Arc::as_ptr(target), with_sigs);
    }
    (signed, computed)
}

/// Signs each `(digest, data, key)` of `work`, spread over the machine's cores.
fn sign_in_parallel(work: &[([u8; 32], Vec<u8>, &SigningKey)]) -> Vec<([u8; 32], Vec<u8>)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = work.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (work.chunks(chunk))
            .map(|part| {
                scope.spawn(move || {
                    (part.iter())
                        .map(|(digest, data, key)| (*digest, key.sign(data)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        (parts.into_iter())
            .flat_map(|part| {
                part.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

fn signed_group(group: &RoutedGroup, sign: impl Fn(&Arc<Rrset>) -> Arc<Rrset>) -> Arc<RoutedGroup> {
    let members = (group.members.iter())
        .map(|m| Member {
            set_id: m.set_id.clone(),
            rrset: sign(&m.rrset),
            health_check: m.health_check,
            rule: m.rule.clone(),
            answered: m.answered.clone(),
        })
        .collect();
    Arc::new(RoutedGroup {
        rtype: group.rtype,
        members,
    })
}

/// The apex RRsets made of `keys`, unsigned: DNSKEY, and CDS and CDNSKEY (RFC 7344) for
/// the keys the parent's DS should name (the 257 keys, not ZSKs), so a parent that scans
/// for them can follow.
fn key_rrsets(origin: &Name, keys: &[SigningKey]) -> Vec<Arc<Rrset>> {
    let set = |rtype: RecordType, rdata: &dyn Fn(&SigningKey) -> Vec<u8>, sep_only: bool| {
        let records = (keys.iter())
            .filter(|key| !sep_only || key.is_ksk())
            .map(|key| raw_record(origin.clone(), DNSKEY_TTL, rtype, rdata(key)))
            .collect();
        Arc::new(Rrset {
            name: origin.clone(),
            rtype,
            ttl: DNSKEY_TTL,
            records,
            sigs: Vec::new(),
        })
    };
    vec![
        set(RecordType::DNSKEY, &|key| key.dnskey_rdata(), false),
        set(RecordType::CDS, &|key| key.ds_rdata(origin), true),
        set(RecordType::CDNSKEY, &|key| key.dnskey_rdata(), true),
    ]
}

/// A record whose RDATA is given in wire form (the DNSSEC types hickory is built without).
pub(super) fn raw_record(name: Name, ttl: u32, rtype: RecordType, rdata: Vec<u8>) -> Record {
    let data = RData::Unknown {
        code: rtype,
        rdata: NULL::with(rdata),
    };
    Record::from_rdata(name, ttl, data)
}

/// The RRSIG RDATA of `rrset` by `key` up to its signature (RFC 4034 §3.1).
fn rrsig_head(rrset: &Rrset, key: &SigningKey, origin: &Name, validity: Validity) -> Vec<u8> {
    let mut rdata = Vec::with_capacity(160);
    rdata.extend_from_slice(&u16::from(rrset.rtype).to_be_bytes());
    rdata.push(key.algorithm().number());
    rdata.push(rrsig_labels(&rrset.name));
    rdata.extend_from_slice(&rrset.ttl.to_be_bytes());
    rdata.extend_from_slice(&validity.expiration.to_be_bytes());
    rdata.extend_from_slice(&validity.inception.to_be_bytes());
    rdata.extend_from_slice(&key.tag().to_be_bytes());
    put_canonical_name(&mut rdata, origin);
    rdata
}

/// RRSIG's Labels field: the owner's labels, a leading `*` not counted (RFC 4034 §3.1.3).
fn rrsig_labels(owner: &Name) -> u8 {
    let labels = owner.iter().count();
    let wildcard = owner.iter().next().is_some_and(|l| l == b"*");
    (labels - usize::from(wildcard)) as u8
}

/// What an RRSIG signs (RFC 4034 §3.1.8.1): its RDATA without the signature, then every
/// record of the RRset in canonical form (§6.2), in canonical order (§6.3), duplicates once.
fn signed_data(rrsig_head: &[u8], rrset: &Rrset) -> Vec<u8> {
    let mut owner = Vec::with_capacity(64);
    put_canonical_name(&mut owner, &rrset.name);
    let mut rdatas: Vec<Vec<u8>> = rrset.records.iter().map(canonical_rdata).collect();
    rdatas.sort();
    rdatas.dedup();
    let mut data = Vec::with_capacity(rrsig_head.len() + rdatas.len() * (owner.len() + 40));
    data.extend_from_slice(rrsig_head);
    for rdata in rdatas {
        data.extend_from_slice(&owner);
        data.extend_from_slice(&u16::from(rrset.rtype).to_be_bytes());
        data.extend_from_slice(&1u16.to_be_bytes());
        data.extend_from_slice(&rrset.ttl.to_be_bytes());
        data.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        data.extend_from_slice(&rdata);
    }
    data
}

/// A name in canonical form: uncompressed, lowercase (RFC 4034 §6.2).
pub(super) fn put_canonical_name(out: &mut Vec<u8>, name: &Name) {
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
}

/// A record's RDATA in canonical form: hickory's encoder in canonical mode writes the names
/// of the RFC 4034 §6.2 types lowercase and uncompressed.
fn canonical_rdata(record: &Record) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_canonical_form(true);
    // RDATA that the zone loaded always encodes; an error leaves what was written, and the
    // signature then fails to verify rather than the server to start.
    let _ = record.data.emit(&mut encoder);
    buf
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::rdata::TXT;

    use super::*;
    use crate::config::dns::DnssecAlgorithm;
    use crate::dns::dnssec::keys::{KeyTimes, ZSK_FLAGS, add, load_or_generate};
    use crate::dns::transfer::unix_now;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).expect("a test name")
    }

    fn txt(owner: &str, texts: &[&str]) -> Rrset {
        let owner = name(owner);
        let records = (texts.iter())
            .map(|t| {
                Record::from_rdata(owner.clone(), 60, RData::TXT(TXT::new(vec![t.to_string()])))
            })
            .collect();
        Rrset {
            name: owner,
            rtype: RecordType::TXT,
            ttl: 60,
            records,
            sigs: Vec::new(),
        }
    }

    #[test]
    fn labels_leave_out_the_root_and_a_leading_wildcard() {
        assert_eq!(rrsig_labels(&name("www.Home.Test.")), 3);
        assert_eq!(rrsig_labels(&name("*.w.home.test.")), 3);
        assert_eq!(rrsig_labels(&name("home.test.")), 2);
    }

    #[test]
    fn signed_data_is_canonical_whatever_the_order_and_case_of_the_records() {
        let head = [1, 2, 3];
        let a = signed_data(&head, &txt("WWW.home.test.", &["b", "a", "b"]));
        let b = signed_data(&head, &txt("www.home.test.", &["a", "b"]));
        assert_eq!(a, b);
        assert!(a.starts_with(&head));
        // Owner lowercase, type, class, TTL, then the RDATA: "a" sorts first.
        let owner = b"\x03www\x04home\x04test\x00";
        assert_eq!(&a[3..3 + owner.len()], owner);
        assert_eq!(
            &a[3 + owner.len()..3 + owner.len() + 10],
            &[0, 16, 0, 1, 0, 0, 0, 60, 0, 2]
        );
        assert_eq!(&a[3 + owner.len() + 10..3 + owner.len() + 12], b"\x01a");
    }

    /// The RRSIGs `sign_all` gives `set` (their RDATA).
    fn rrsigs(
        set: &Rrset,
        signer: &Signer,
        origin: &Name,
        now: u64,
        cache: &mut HashMap<[u8; 32], Vec<u8>>,
    ) -> Vec<Vec<u8>> {
        let set = Arc::new(set.clone());
        let (signed, _) = sign_all(
            std::slice::from_ref(&set),
            signer,
            origin,
            Validity::of_day(now),
            cache,
        );
        (signed[&Arc::as_ptr(&set)].sigs.iter())
            .map(|sig| match &sig.data {
                RData::Unknown { rdata, .. } => rdata.anything.clone(),
                _ => panic!("an RRSIG in wire form"),
            })
            .collect()
    }

    /// The key tag an RRSIG's RDATA names.
    fn signed_by(rrsig: &[u8]) -> u16 {
        u16::from_be_bytes([rrsig[16], rrsig[17]])
    }

    #[test]
    fn an_unchanged_rrset_keeps_its_signature_within_a_day_and_not_across_days() {
        let dir = tempfile::tempdir().expect("a folder");
        let origin = name("home.test.");
        let keys =
            load_or_generate(dir.path(), &origin, DnssecAlgorithm::EcdsaP256Sha256).expect("a key");
        let signer = Signer::new(keys, unix_now());
        let set = txt("www.home.test.", &["a"]);
        let mut cache = HashMap::new();
        let day = 20_000 * DAY;
        let first = rrsigs(&set, &signer, &origin, day + 10, &mut cache);
        // ECDSA signatures are randomized: equal bytes mean the first one was reused.
        let again = rrsigs(&set, &signer, &origin, day + 5000, &mut cache);
        assert_eq!(first, again);
        let tomorrow = rrsigs(&set, &signer, &origin, day + DAY, &mut cache);
        assert_ne!(first, tomorrow);
        let changed = txt("www.home.test.", &["b"]);
        let other = rrsigs(&changed, &signer, &origin, day, &mut cache);
        assert_ne!(first, other);
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn the_ksk_signs_the_keys_rrsets_and_the_active_zsk_the_rest() {
        let dir = tempfile::tempdir().expect("a folder");
        let origin = name("home.test.");
        let algorithm = DnssecAlgorithm::Ed25519;
        let ksk = load_or_generate(dir.path(), &origin, algorithm).expect("a key");
        // Tomorrow: the KSK, made now, is in use by then.
        let day = (unix_now() / DAY + 1) * DAY;
        let times = |publish, activate| KeyTimes {
            publish: Some(publish),
            activate: Some(activate),
            ..KeyTimes::default()
        };
        let zsk = add(
            dir.path(),
            &origin,
            algorithm,
            ZSK_FLAGS,
            times(day, day + 10),
            &ksk,
        )
        .expect("a ZSK");
        let (ksk_tag, zsk_tag) = (ksk[0].tag(), zsk.tag());
        let keys = load_or_generate(dir.path(), &origin, algorithm).expect("the keys");
        let data = txt("www.home.test.", &["a"]);
        let mut cache = HashMap::new();
        let tags = |signer: &Signer, set: &Rrset, cache: &mut HashMap<[u8; 32], Vec<u8>>| {
            (rrsigs(set, signer, &origin, day, cache).iter())
                .map(|sig| signed_by(sig))
                .collect::<Vec<u16>>()
        };
        // Published, not yet active: in the DNSKEY RRset, the KSK signing everything.
        let waiting = Signer::new(
            load_or_generate(dir.path(), &origin, algorithm).expect("keys"),
            day,
        );
        assert_eq!(waiting.keys().len(), 2);
        assert_eq!(tags(&waiting, &data, &mut cache), vec![ksk_tag]);
        let signer = Signer::new(keys, day + 10);
        let apex = key_rrsets(&origin, signer.keys());
        assert_eq!(apex[0].records.len(), 2, "both keys in DNSKEY");
        assert_eq!(apex[1].records.len(), 1, "CDS names the KSK alone");
        for set in &apex {
            assert_eq!(
                tags(&signer, set, &mut cache),
                vec![ksk_tag],
                "{:?}",
                set.rtype
            );
        }
        assert_eq!(tags(&signer, &data, &mut cache), vec![zsk_tag]);
        assert_ne!(waiting.state(), signer.state());
    }

    #[test]
    fn validity_runs_from_an_hour_before_the_day_to_fourteen_days_after() {
        let day = 20_000 * DAY;
        let validity = Validity::of_day(day + 12 * 3600);
        assert_eq!(u64::from(validity.inception), day - 3600);
        assert_eq!(
            u64::from(validity.expiration),
            (day + 14 * DAY) & 0xffff_ffff
        );
        assert_eq!(Signer::until_next_day(day + 12 * 3600), 12 * 3600 + 60);
        assert_eq!(Signer::until_next_day(day), DAY + 60);
    }
}
