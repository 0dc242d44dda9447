//! The immutable zone store: every served zone's nodes, with empty non-terminals, delegation
//! cuts and occluded (glue) names marked at load, so lookups only hash and compare.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::dnssec::sign::sign_zone;
use super::dnssec::{DenialChain, Signing};
use super::metrics::{DnsMetrics, QueryCounters};
use super::policy::{Member, RoutedGroup};
use super::transfer::unix_now;
use crate::config::dns::{RrsetData, ZoneData, ZoneTransfer};

/// Records of one owner and type, ready to put on the wire.
#[derive(Debug, Clone)]
pub struct Rrset {
    pub name: Name,
    pub rtype: RecordType,
    pub ttl: u32,
    pub records: Vec<Record>,
    /// Its RRSIG records when the zone is signed (`dnssec::sign`), sent to DO queries.
    pub sigs: Vec<Record>,
}

/// One owner name in a zone. Empty non-terminals are nodes without RRsets.
#[derive(Debug, Default, Clone)]
pub struct Node {
    /// Sorted by type code, so ANY's choice and iteration are deterministic.
    pub rrsets: Vec<Arc<Rrset>>,
    /// Routed groups (Route 53 policies), one per type, never sharing a type with `rrsets`.
    pub routed: Vec<Arc<RoutedGroup>>,
    /// NS below the apex: the zone's authority ends here (RFC 1034 §4.2.1).
    pub is_cut: bool,
    /// Below a cut: only glue lives here, never an authoritative answer.
    pub occluded: bool,
}

/// One zone: its apex SOA and nodes by lowercased name.
#[derive(Debug)]
pub struct Zone {
    pub origin: Name,
    pub soa: Arc<Rrset>,
    /// TTL for negative answers: min(SOA TTL, SOA MINIMUM) (RFC 2308 §3).
    pub negative_ttl: u32,
    pub nodes: HashMap<LowerName, Node>,
    /// Queries answered from this zone, kept across reloads.
    pub counters: Arc<QueryCounters>,
    /// Who may transfer it, whom to notify.
    pub transfer: ZoneTransfer,
    /// This version's whole-zone transfer answer, encoded once (`transfer::cache`).
    pub encoded_transfer: OnceLock<Arc<[Vec<u8>]>>,
    /// The NSEC or NSEC3 chain when the zone is signed.
    pub denial: DenialChain,
    /// A signed zone's denial record at a routed name without the routed type, by name and
    /// type: the proof of NODATA for a client its group picks no set for.
    pub routed_denials: HashMap<(LowerName, RecordType), Arc<Rrset>>,
    /// Who signed this build and how, when it is signed.
    pub signing: Option<Signing>,
}

/// Every zone served, found by the longest suffix of a query name.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    zones: HashMap<LowerName, Arc<Zone>>,
}

// === impl Node ===

/// What a node holds for one type.
#[derive(Debug, Clone, Copy)]
pub enum NodeData<'a> {
    Static(&'a Arc<Rrset>),
    Routed(&'a Arc<RoutedGroup>),
}

impl Node {
    pub fn get(&self, rtype: RecordType) -> Option<&Arc<Rrset>> {
        self.rrsets.iter().find(|set| set.rtype == rtype)
    }

    /// Static or routed data of `rtype`.
    pub fn data(&self, rtype: RecordType) -> Option<NodeData<'_>> {
        self.get(rtype).map(NodeData::Static).or_else(|| {
            self.routed
                .iter()
                .find(|g| g.rtype == rtype)
                .map(NodeData::Routed)
        })
    }

    /// What ANY gets (RFC 8482: one RRset): the lowest type, static data first.
    pub fn any(&self) -> Option<NodeData<'_>> {
        // The NSEC of a signed zone is no answer to ANY: the node's data comes first.
        let data = self.rrsets.iter().find(|set| set.rtype != RecordType::NSEC);
        data.map(NodeData::Static).or_else(|| {
            self.routed
                .iter()
                .min_by_key(|g| u16::from(g.rtype))
                .map(NodeData::Routed)
        })
    }

    /// Whether the node has a CNAME, plain or routed.
    pub fn has_cname(&self) -> bool {
        self.data(RecordType::CNAME).is_some()
    }
}

// === impl Zone ===

impl Rrset {
    fn of(set: &RrsetData) -> Arc<Rrset> {
        let records = set
            .rdatas
            .iter()
            .map(|rdata| Record::from_rdata(set.name.clone(), set.ttl, rdata.clone()))
            .collect();
        Arc::new(Rrset {
            name: set.name.clone(),
            rtype: set.rtype,
            ttl: set.ttl,
            records,
            sigs: Vec::new(),
        })
    }
}

impl Zone {
    /// Builds the node table from validated zone data, with the counters `metrics` keeps
    /// for it.
    pub fn build(data: &ZoneData, metrics: &DnsMetrics) -> Zone {
        let mut nodes: HashMap<LowerName, Node> = HashMap::new();
        let mut soa = None;
        for set in &data.rrsets {
            let rrset = Rrset::of(set);
            if set.rtype == RecordType::SOA {
                soa = Some(rrset.clone());
            }
            add_ancestors(&mut nodes, &set.name, &data.origin);
            nodes
                .entry(LowerName::new(&set.name))
                .or_default()
                .rrsets
                .push(rrset);
        }
        for group in &data.routed {
            let members = group
                .members
                .iter()
                .map(|m| Member {
                    set_id: m.set_id.clone(),
                    rrset: Arc::new(Rrset {
                        name: group.name.clone(),
                        rtype: group.rtype,
                        ttl: m.ttl,
                        records: m
                            .rdatas
                            .iter()
                            .map(|r| Record::from_rdata(group.name.clone(), m.ttl, r.clone()))
                            .collect(),
                        sigs: Vec::new(),
                    }),
                    health_check: m.health_check,
                    rule: m.rule.clone(),
                    answered: metrics.routed(
                        &data.origin,
                        &group.name,
                        m.rule.policy_name(),
                        &m.set_id,
                    ),
                })
                .collect();
            add_ancestors(&mut nodes, &group.name, &data.origin);
            let node = nodes.entry(LowerName::new(&group.name)).or_default();
            node.routed.push(Arc::new(RoutedGroup {
                rtype: group.rtype,
                members,
            }));
        }
        let apex = LowerName::new(&data.origin);
        let cuts: HashSet<LowerName> = nodes
            .iter()
            .filter(|(name, node)| **name != apex && node.get(RecordType::NS).is_some())
            .map(|(name, _)| name.clone())
            .collect();
        for (name, node) in nodes.iter_mut() {
            node.rrsets.sort_by_key(|set| u16::from(set.rtype));
            node.is_cut = cuts.contains(name);
            let mut ancestor = name.clone();
            while !cuts.is_empty() && ancestor != apex && !ancestor.is_root() {
                ancestor = ancestor.base_name();
                if cuts.contains(&ancestor) {
                    node.occluded = true;
                    break;
                }
            }
        }
        let soa = soa.expect("validated zones always carry an SOA");
        let negative_ttl = match soa.records[0].data {
            RData::SOA(ref rdata) => soa.ttl.min(rdata.minimum),
            _ => soa.ttl,
        };
        let mut zone = Zone {
            origin: data.origin.clone(),
            soa,
            negative_ttl,
            nodes,
            counters: metrics.zone(&data.origin),
            transfer: data.transfer.clone(),
            encoded_transfer: OnceLock::new(),
            denial: DenialChain::Unsigned,
            routed_denials: HashMap::new(),
            signing: None,
        };
        if let Some(dnssec) = &data.dnssec
            && let Some(signer) = dnssec.signer.get()
        {
            sign_zone(&mut zone, signer, dnssec.denial, unix_now());
        }
        zone
    }

    /// Whether the zone is signed (answers to DO queries carry RRSIGs and NSEC proofs).
    pub fn is_signed(&self) -> bool {
        !matches!(self.denial, DenialChain::Unsigned)
    }

    /// The zone with `soa` as its SOA and the static RRsets at each of `names` replaced by
    /// those of `sets` that are at that name (none: the name's data is gone). Builds only
    /// those nodes; empty non-terminals come and go with them. For changes that leave the
    /// zone's structure alone: the caller keeps NS (cuts), DNAME and wildcard owners out.
    pub fn with_changes(&self, soa: &RrsetData, names: &[LowerName], sets: &[RrsetData]) -> Zone {
        let mut nodes = self.nodes.clone();
        let apex = LowerName::new(&self.origin);
        let soa = Rrset::of(soa);
        if let Some(node) = nodes.get_mut(&apex) {
            node.rrsets.retain(|set| set.rtype != RecordType::SOA);
            node.rrsets.push(soa.clone());
            node.rrsets.sort_by_key(|set| u16::from(set.rtype));
        }
        let mut emptied = Vec::new();
        for name in names {
            let mut rrsets: Vec<Arc<Rrset>> = (sets.iter())
                .filter(|set| LowerName::new(&set.name) == *name && set.rtype != RecordType::SOA)
                .map(Rrset::of)
                .collect();
            rrsets.sort_by_key(|set| u16::from(set.rtype));
            if rrsets.is_empty() && nodes.get(name).is_none_or(|n| n.routed.is_empty()) {
                if *name != apex {
                    emptied.push(name.clone());
                }
                if let Some(node) = nodes.get_mut(name) {
                    node.rrsets.clear();
                }
                continue;
            }
            if !nodes.contains_key(name) {
                add_ancestors(&mut nodes, &Name::from(name), &self.origin);
                let occluded = is_below_cut(&nodes, name, &apex);
                nodes.insert(
                    name.clone(),
                    Node {
                        occluded,
                        ..Node::default()
                    },
                );
                mark_occluded_ancestors(&mut nodes, name, &apex);
            }
            if let Some(node) = nodes.get_mut(name) {
                if *name == apex {
                    rrsets.push(soa.clone());
                    rrsets.sort_by_key(|set| u16::from(set.rtype));
                }
                node.rrsets = rrsets;
            }
        }
        if !emptied.is_empty() {
            remove_empty_leaves(&mut nodes, &emptied, &apex);
        }
        Zone {
            origin: self.origin.clone(),
            soa,
            negative_ttl: self.negative_ttl,
            nodes,
            counters: self.counters.clone(),
            transfer: self.transfer.clone(),
            encoded_transfer: OnceLock::new(),
            denial: DenialChain::Unsigned,
            routed_denials: HashMap::new(),
            signing: None,
        }
    }

    /// The SOA record to put in the authority section of a negative answer.
    pub fn negative_soa(&self) -> Record {
        let mut record = self.soa.records[0].clone();
        record.ttl = self.negative_ttl;
        record
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        self.soa_rdata().map_or(0, |soa| soa.serial)
    }

    /// Every record a zone transfer carries, SOA excluded (its RRSIGs not), NSEC3 records
    /// last, the rest in canonical order (RFC 4034
    /// §6.1): static RRsets as they are, routed groups by
    /// [`RoutedGroup::transfer_members`](super::policy::RoutedGroup::transfer_members).
    pub fn transfer_records(&self) -> Vec<&Record> {
        // Sorted on byte keys made once per name (all in `keys`), their first 8 bytes
        // compared first: comparing names label by label took most of a large zone's
        // transfer time.
        let origin_labels = self.origin.iter().count();
        let mut keys = Vec::with_capacity(16 * self.nodes.len());
        let mut names: Vec<(u64, Range<usize>, &Node)> = (self.nodes.iter())
            .map(|(name, node)| {
                let start = keys.len();
                canonical_key(name, origin_labels, &mut keys);
                let mut head = [0; 8];
                let key = &keys[start..];
                head[..key.len().min(8)].copy_from_slice(&key[..key.len().min(8)]);
                (u64::from_be_bytes(head), start..keys.len(), node)
            })
            .collect();
        names.sort_unstable_by(|a, b| {
            (a.0.cmp(&b.0)).then_with(|| keys[a.1.clone()].cmp(&keys[b.1.clone()]))
        });
        let mut records = Vec::with_capacity(2 * names.len());
        for (_, _, node) in names {
            if node.routed.is_empty() {
                // Static RRsets alone are already one per type, sorted by type.
                records.extend(node.rrsets.iter().flat_map(transferred));
                continue;
            }
            let routed = node.routed.iter().flat_map(|group| {
                group
                    .transfer_members()
                    .into_iter()
                    .flat_map(|member| member.rrset.records.iter().chain(&member.rrset.sigs))
            });
            let mut sets: Vec<&Record> = (node.rrsets.iter())
                .flat_map(transferred)
                .chain(routed)
                .collect();
            sets.sort_by_key(|r| u16::from(r.record_type()));
            sets.dedup_by(|a, b| a.record_type() == b.record_type() && a.data == b.data);
            records.extend(sets);
        }
        if let DenialChain::Nsec3(chain) = &self.denial {
            records.extend(
                chain
                    .rrsets()
                    .iter()
                    .flat_map(|set| set.records.iter().chain(&set.sigs)),
            );
        }
        records
    }

    /// The SOA's rdata, for callers that need its fields.
    pub fn soa_rdata(&self) -> Option<&SOA> {
        match &self.soa.records[0].data {
            RData::SOA(soa) => Some(soa),
            _ => None,
        }
    }
}

/// The records of `set` a transfer carries between its SOAs: all with their RRSIGs, but
/// of the SOA only its RRSIGs (the SOA itself opens and closes the transfer).
fn transferred(set: &Arc<Rrset>) -> impl Iterator<Item = &Record> {
    let own = (set.rtype != RecordType::SOA).then_some(&set.records);
    own.into_iter().flatten().chain(&set.sigs)
}

/// Appends to `key` a byte string that sorts as `name` in canonical order (RFC 4034 §6.1)
/// among names below the same `origin_labels` labels: the labels below those, last first,
/// each ended by a 0; the label octets 0 and 1 are written 1 1 and 1 2 so that a label
/// sorts before any longer one it begins. A zero after the end sorts as the end.
pub(crate) fn canonical_key(name: &LowerName, origin_labels: usize, key: &mut Vec<u8>) {
    let below = name.iter().count().saturating_sub(origin_labels);
    for label in name.iter().take(below).rev() {
        if label.iter().all(|&byte| byte > 1) {
            key.extend_from_slice(label);
        } else {
            for &byte in label {
                match byte {
                    0 | 1 => key.extend_from_slice(&[1, byte + 1]),
                    _ => key.push(byte),
                }
            }
        }
        key.push(0);
    }
}

// === impl Catalog ===

impl Catalog {
    pub fn build(zones: &[ZoneData], metrics: &DnsMetrics) -> Catalog {
        Catalog {
            zones: zones
                .iter()
                .map(|data| {
                    let zone = Zone::build(data, metrics);
                    (LowerName::new(&data.origin), Arc::new(zone))
                })
                .collect(),
        }
    }

    /// The zone whose origin is `origin`.
    pub fn get(&self, origin: &LowerName) -> Option<&Arc<Zone>> {
        self.zones.get(origin)
    }

    /// The catalog with `zone` in place of the zone of the same origin.
    pub fn with_zone(&self, zone: Arc<Zone>) -> Catalog {
        let mut zones = self.zones.clone();
        zones.insert(LowerName::new(&zone.origin), zone);
        Catalog { zones }
    }

    /// The zone with the longest origin that contains `name`.
    pub fn find(&self, name: &LowerName) -> Option<&Arc<Zone>> {
        let mut candidate = name.clone();
        loop {
            if let Some(zone) = self.zones.get(&candidate) {
                return Some(zone);
            }
            if candidate.is_root() {
                return None;
            }
            candidate = candidate.base_name();
        }
    }

    /// The zone above `zone`'s apex, if it is served too (it answers DS at the cut).
    pub fn parent_of(&self, zone: &Zone) -> Option<&Arc<Zone>> {
        let origin = LowerName::new(&zone.origin);
        if origin.is_root() {
            return None;
        }
        self.find(&origin.base_name())
    }

    pub fn zones(&self) -> impl Iterator<Item = &Arc<Zone>> {
        self.zones.values()
    }
}

/// Whether a proper ancestor of `name` below the apex is a cut.
fn is_below_cut(nodes: &HashMap<LowerName, Node>, name: &LowerName, apex: &LowerName) -> bool {
    let mut ancestor = name.clone();
    while ancestor != *apex && !ancestor.is_root() {
        ancestor = ancestor.base_name();
        if ancestor != *apex && nodes.get(&ancestor).is_some_and(|n| n.is_cut) {
            return true;
        }
    }
    false
}

/// Marks the empty non-terminals just added above `name` occluded when they are below a cut.
fn mark_occluded_ancestors(
    nodes: &mut HashMap<LowerName, Node>,
    name: &LowerName,
    apex: &LowerName,
) {
    let mut ancestor = name.clone();
    while ancestor != *apex && !ancestor.is_root() {
        ancestor = ancestor.base_name();
        if ancestor == *apex {
            break;
        }
        let occluded = is_below_cut(nodes, &ancestor, apex);
        if let Some(node) = nodes.get_mut(&ancestor) {
            node.occluded = occluded;
        }
    }
}

/// Removes the nodes at `emptied` (no data left) and their ancestors, up to the first that
/// still holds data or has another node below it.
fn remove_empty_leaves(
    nodes: &mut HashMap<LowerName, Node>,
    emptied: &[LowerName],
    apex: &LowerName,
) {
    let mut candidates: Vec<LowerName> = Vec::new();
    for name in emptied {
        let mut current = name.clone();
        while current != *apex && !current.is_root() {
            candidates.push(current.clone());
            current = current.base_name();
        }
    }
    // Deepest first: a parent is childless only once its children are gone.
    candidates.sort_by(|a, b| b.num_labels().cmp(&a.num_labels()).then_with(|| a.cmp(b)));
    candidates.dedup();
    let mut children: HashMap<LowerName, usize> = HashMap::new();
    for name in nodes.keys().filter(|n| *n != apex && !n.is_root()) {
        *children.entry(name.base_name()).or_default() += 1;
    }
    for name in candidates {
        let empty = nodes
            .get(&name)
            .is_some_and(|n| n.rrsets.is_empty() && n.routed.is_empty());
        if empty && children.get(&name).is_none_or(|&count| count == 0) {
            nodes.remove(&name);
            if let Some(count) = children.get_mut(&name.base_name()) {
                *count -= 1;
            }
        }
    }
}

/// Every ancestor of `name` up to the apex exists, as an empty non-terminal if nothing else.
fn add_ancestors(nodes: &mut HashMap<LowerName, Node>, name: &Name, origin: &Name) {
    let mut name = name.clone();
    while name.num_labels_total() > origin.num_labels_total() {
        name = name.base_name();
        nodes.entry(LowerName::new(&name)).or_default();
    }
}

/// Label count including a leading `*` (hickory's `num_labels` leaves it out).
trait TotalLabels {
    fn num_labels_total(&self) -> usize;
}

impl TotalLabels for Name {
    fn num_labels_total(&self) -> usize {
        self.iter().count()
    }
}
