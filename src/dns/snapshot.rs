//! Everything the request path reads, built once at load and never locked: the catalog, the
//! routing inputs, for every name the encoded answers that can be prepared in advance, and
//! the counters its answers add to.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use super::answer::{self, Answer, Routing};
use super::dnssec::changes::sign_changes;
use super::dnssec::proof::add_proofs;
use super::metrics::{DnsMetrics, QueryCounters};
use super::policy::{Client, RoutedGroup, RoutingEnv};
use super::rrl::Limiter;
use super::transfer::{self, unix_now};
use super::tsig::Keyring;
use super::wire::{Encoded, SoaPatch};
use super::zone::{Catalog, Node, Rrset, Zone};
use crate::config::DnsConfig;
use crate::config::dns::{Chaos, CidrCollection, RrsetData, ZoneDnssec};
use crate::geo::{GeoDb, Region};
use crate::health::HealthTable;

/// A type no zone uses, standing for "any type the node lacks" when precomputing.
const ABSENT_TYPE: RecordType = RecordType::Unknown(65534);

/// Immutable serving state.
#[derive(Debug)]
pub struct Snapshot {
    pub catalog: Catalog,
    precomputed: HashMap<LowerName, NodeAnswers>,
    /// The same for DO queries, with RRSIGs and proofs; empty when no zone is signed.
    precomputed_signed: HashMap<LowerName, NodeAnswers>,
    chaos: ChaosAnswers,
    /// Our EDNS UDP payload size, and the cap on UDP responses.
    pub max_udp_payload: u16,
    /// Route on EDNS Client Subnet addresses (and echo the option).
    pub use_client_subnet: bool,
    /// TSIG keys by name: transfers (and updates) are verified and signed with them.
    pub keyring: Keyring,
    /// Response rate limiting of UDP answers; `None` when off.
    pub rrl: Option<Limiter>,
    /// Some zone is signed: DO queries are answered with RRSIGs and proofs.
    pub has_signed_zones: bool,
    health: Arc<HealthTable>,
    geo: Arc<GeoDb>,
    regions: Vec<Region>,
    collections: Vec<CidrCollection>,
    /// The process's counters; zones and routed sets hold their own, from its registry.
    pub metrics: Arc<DnsMetrics>,
}

/// A ready answer: fixed, or one per routed set plus NODATA, picked per query.
#[derive(Debug, Clone)]
pub enum Prepared {
    Fixed(Arc<Encoded>),
    Routed(Arc<RoutedAnswers>),
}

/// The encoded answer for each set of a group that picks one set at a time.
#[derive(Debug, Clone)]
pub struct RoutedAnswers {
    pub group: Arc<RoutedGroup>,
    pub per_member: Vec<Encoded>,
    pub nodata: Encoded,
}

/// Prepared answers for one name: by query type (`None`: resolved per query), and for every
/// other type when that answer does not depend on the type (nodes without CNAME).
#[derive(Debug, Clone)]
struct NodeAnswers {
    by_type: Vec<(RecordType, Option<Prepared>)>,
    other: Option<Arc<Encoded>>,
    /// Those of the zone that serves the name (the closest enclosing one).
    counters: Arc<QueryCounters>,
}

/// CHAOS-class TXT answers, for the names operators expect (`version.bind`, `id.server`, ...).
#[derive(Debug, Default, Clone)]
struct ChaosAnswers {
    version: Option<Arc<Rrset>>,
    id: Option<Arc<Rrset>>,
}

// === impl Snapshot ===

impl Snapshot {
    /// Builds the serving state of `config`; its zones and routed sets count into counters
    /// from `metrics`, the same ones earlier snapshots of the same names used.
    pub fn build(
        config: &DnsConfig,
        health: Arc<HealthTable>,
        geo: Arc<GeoDb>,
        metrics: Arc<DnsMetrics>,
    ) -> Snapshot {
        let catalog = Catalog::build(&config.zones, &metrics);
        let has_signed_zones = catalog.zones().any(|zone| zone.is_signed());
        let mut snapshot = Snapshot {
            has_signed_zones,
            catalog,
            precomputed: HashMap::new(),
            precomputed_signed: HashMap::new(),
            chaos: ChaosAnswers::build(&config.chaos),
            max_udp_payload: config.max_udp_payload,
            use_client_subnet: config.use_client_subnet,
            keyring: Keyring::new(&config.tsig_keys),
            rrl: config.rrl.as_ref().map(Limiter::new),
            health,
            geo,
            regions: config.regions.clone(),
            collections: config.cidr_collections.clone(),
            metrics,
        };
        snapshot.precomputed = snapshot.prepare_all(false);
        if snapshot.has_signed_zones {
            snapshot.precomputed_signed = snapshot.prepare_all(true);
        }
        snapshot
    }

    /// Encodes the whole-zone transfer answer of every zone that allows transfers
    /// ([`transfer::prepare`]): for a start and a reload, not for the snapshots of update
    /// groups (secondaries follow those by IXFR).
    pub fn prepare_transfers(&self) {
        for zone in self.catalog.zones() {
            transfer::prepare(zone);
        }
    }

    /// Takes over the rate limiter's buckets of `previous` (see [`Limiter::keep_table`]).
    pub fn keep_rrl_table(&mut self, previous: &Snapshot) {
        if let (Some(rrl), Some(old)) = (&mut self.rrl, &previous.rrl) {
            rrl.keep_table(old);
        }
    }

    /// A snapshot of `config` (a dynamic update's data) on this one's health, geo and
    /// counters, keeping its rate-limit table.
    pub fn rebuilt(&self, config: &DnsConfig) -> Snapshot {
        let mut snapshot = Snapshot::build(
            config,
            self.health.clone(),
            self.geo.clone(),
            self.metrics.clone(),
        );
        snapshot.keep_rrl_table(self);
        snapshot
    }

    /// What routing decisions read.
    pub fn env(&self) -> RoutingEnv<'_> {
        RoutingEnv {
            health: &self.health,
            geo: &self.geo,
            regions: &self.regions,
            collections: &self.collections,
        }
    }

    /// The prepared answer for this name and type (`signed`: for a DO query), if there is
    /// one, and the counters of the zone it comes from.
    pub fn prepared(
        &self,
        name: &LowerName,
        rtype: RecordType,
        signed: bool,
    ) -> Option<(Prepared, &QueryCounters)> {
        let map = if signed && self.has_signed_zones {
            &self.precomputed_signed
        } else {
            &self.precomputed
        };
        let answers = map.get(name)?;
        let prepared = match answers.by_type.iter().find(|(t, _)| *t == rtype) {
            Some((_, prepared)) => prepared.clone(),
            None => answers.other.clone().map(Prepared::Fixed),
        };
        prepared.map(|p| (p, &*answers.counters))
    }

    /// Answers a CHAOS-class query (RFC 4892 names), REFUSED where nothing is configured.
    pub fn chaos(&self, qname: &Name, qtype: RecordType) -> Answer {
        let name = LowerName::new(qname).to_string();
        let rrset = match name.as_str() {
            "version.bind." | "version.server." => self.chaos.version.as_ref(),
            "id.server." | "hostname.bind." => self.chaos.id.as_ref(),
            _ => None,
        };
        let Some(rrset) = rrset else {
            return Answer::refused();
        };
        let mut answer = Answer::refused();
        answer.rcode = ResponseCode::NoError;
        answer.authoritative = true;
        if matches!(qtype, RecordType::TXT | RecordType::ANY) {
            answer.answer.push(answer::Part {
                rrset: rrset.clone(),
                owner: Some(qname.clone()),
            });
        }
        answer
    }

    /// Prepares every name of every zone. A name served by two zones (a child apex under a
    /// parent's cut) gets the types of both nodes, so DS at the cut is prepared too.
    fn prepare_all(&self, signed: bool) -> HashMap<LowerName, NodeAnswers> {
        let mut names: HashMap<LowerName, BTreeSet<u16>> = HashMap::new();
        for zone in self.catalog.zones() {
            for (lower, node) in &zone.nodes {
                add_node_types(node, names.entry(lower.clone()).or_default());
            }
        }
        let routing = self.precompute_routing();
        names
            .into_iter()
            .map(|(lower, types)| {
                let answers = self.node_answers(&lower, types, &routing, signed);
                (lower, answers)
            })
            .collect()
    }

    /// The routing a precomputed answer is resolved with: it must not depend on it.
    fn precompute_routing(&self) -> Routing<'_> {
        Routing {
            client: Client {
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                prefix_len: 0,
            },
            env: self.env(),
            count: false,
        }
    }

    /// The answers prepared for the node `lower`, for each of `types` and for any other.
    fn node_answers(
        &self,
        lower: &LowerName,
        types: BTreeSet<u16>,
        routing: &Routing,
        signed: bool,
    ) -> NodeAnswers {
        let name = Name::from(lower);
        let zone = self.catalog.find(lower);
        let mut answers = NodeAnswers {
            by_type: Vec::new(),
            other: None,
            counters: zone.map_or_else(Arc::default, |z| z.counters.clone()),
        };
        for rtype in types.into_iter().map(RecordType::from) {
            answers
                .by_type
                .push((rtype, self.prepare(lower, &name, rtype, routing, signed)));
        }
        let typeless = zone
            .and_then(|z| z.nodes.get(lower))
            .is_some_and(|n| !n.has_cname() && n.data(ABSENT_TYPE).is_none());
        if typeless {
            answers.other = fixed(&self.catalog, &name, ABSENT_TYPE, routing, signed);
        }
        answers
    }

    /// The snapshot after dynamic updates changed only the data at `names` of the zone at
    /// `origin` (`sets`: every RRset now at those names) and its SOA to `soa`, built in time
    /// proportional to the change rather than to the zone: those nodes and their prepared
    /// answers again, every other prepared answer kept, with the new serial (and the SOA's
    /// new RRSIGs) patched into negative answers. A signed zone (`dnssec`: its signing) has
    /// only the changed RRsets, the SOA and the NSEC or NSEC3 records around the changed
    /// names signed again ([`sign_changes`]), and the answers carrying those records made
    /// again. None when the change could reach other answers (a CNAME, NS, DS or DNAME
    /// changed, a wildcard owner, a name some record points at, a name of another zone, the
    /// negative TTL, the denial record of a delegation) or the zone is not signed as it was:
    /// the caller builds the whole snapshot then.
    pub fn with_zone_changes(
        &self,
        origin: &LowerName,
        soa: &RrsetData,
        names: &[LowerName],
        sets: &[RrsetData],
        dnssec: Option<&ZoneDnssec>,
    ) -> Option<Snapshot> {
        let old = self.catalog.get(origin)?;
        if !self.leaves_structure_alone(old, names, sets) {
            return None;
        }
        let serial = match soa.rdatas.first() {
            Some(RData::SOA(soa)) => soa.serial,
            _ => return None,
        };
        let mut zone = old.with_changes(soa, names, sets);
        if zone.negative_ttl != negative_ttl(soa)? {
            return None;
        }
        let signer = dnssec.and_then(|d| d.signer.get());
        if signer.is_some() != old.is_signed() {
            return None;
        }
        let mut touched = Vec::new();
        if old.is_signed() {
            touched = sign_changes(old, &mut zone, names, dnssec?, unix_now())?;
        }
        let zone = Arc::new(zone);
        let mut snapshot = Snapshot {
            catalog: self.catalog.with_zone(zone.clone()),
            precomputed: HashMap::new(),
            precomputed_signed: HashMap::new(),
            chaos: self.chaos.clone(),
            max_udp_payload: self.max_udp_payload,
            use_client_subnet: self.use_client_subnet,
            keyring: self.keyring.clone(),
            rrl: self.rrl.clone(),
            has_signed_zones: self.has_signed_zones,
            health: self.health.clone(),
            geo: self.geo.clone(),
            regions: self.regions.clone(),
            collections: self.collections.clone(),
            metrics: self.metrics.clone(),
        };
        let mut precomputed = self.precomputed.clone();
        let mut precomputed_signed = self.precomputed_signed.clone();
        for answers in precomputed
            .values_mut()
            .chain(precomputed_signed.values_mut())
        {
            if !answers.patch_soa(origin, serial, &zone.soa.sigs) {
                return None;
            }
        }
        // The changed names, those whose denial record changed, and their ancestors: empty
        // non-terminals come and go with them, and NSEC proves them with the record before.
        let mut again: BTreeSet<LowerName> = BTreeSet::new();
        for name in (names.iter())
            .chain(&touched)
            .chain(std::iter::once(origin))
        {
            let mut current = name.clone();
            again.insert(current.clone());
            while current != *origin && !current.is_root() {
                current = current.base_name();
                again.insert(current.clone());
            }
        }
        snapshot.add_cname_sources(&zone, &mut again);
        let routing = snapshot.precompute_routing();
        for name in again {
            let mut types = BTreeSet::new();
            let mut found = false;
            for zone in snapshot.catalog.zones() {
                if let Some(node) = zone.nodes.get(&name) {
                    add_node_types(node, &mut types);
                    found = true;
                }
            }
            if found {
                if snapshot.has_signed_zones {
                    let signed = snapshot.node_answers(&name, types.clone(), &routing, true);
                    precomputed_signed.insert(name.clone(), signed);
                }
                precomputed.insert(
                    name.clone(),
                    snapshot.node_answers(&name, types, &routing, false),
                );
            } else {
                precomputed.remove(&name);
                precomputed_signed.remove(&name);
            }
        }
        snapshot.precomputed = precomputed;
        snapshot.precomputed_signed = precomputed_signed;
        Some(snapshot)
    }

    /// Adds to `again` the owners of CNAMEs (of any zone) that lead into `zone` to a name of
    /// `again` or to a name `zone` lacks, and those leading to them: their answers end with
    /// that name's, its negative answer and proofs included.
    fn add_cname_sources(&self, zone: &Zone, again: &mut BTreeSet<LowerName>) {
        let origin = LowerName::new(&zone.origin);
        let mut edges: Vec<(&LowerName, LowerName)> = Vec::new();
        for (owner, node) in self.catalog.zones().flat_map(|z| &z.nodes) {
            let statics = node.get(RecordType::CNAME).into_iter();
            let routed = (node.routed.iter())
                .filter(|g| g.rtype == RecordType::CNAME)
                .flat_map(|g| g.members.iter().map(|m| &m.rrset));
            for set in statics.chain(routed) {
                edges.extend(
                    (set.records.iter()).filter_map(|record| match &record.data {
                        RData::CNAME(cname) => Some((owner, LowerName::new(&cname.0))),
                        _ => None,
                    }),
                );
            }
        }
        edges.retain(|(_, target)| {
            (self.catalog.find(target)).is_some_and(|z| LowerName::new(&z.origin) == origin)
        });
        loop {
            let reached: Vec<LowerName> = (edges.iter())
                .filter(|(owner, target)| {
                    !again.contains(*owner)
                        && (again.contains(target) || !zone.nodes.contains_key(target))
                })
                .map(|(owner, _)| (*owner).clone())
                .collect();
            if reached.is_empty() {
                return;
            }
            again.extend(reached);
        }
    }

    /// Whether changing the data at `names` of `zone` to `sets` can change no prepared
    /// answer but those of the names themselves (and the serial of negative answers).
    fn leaves_structure_alone(&self, zone: &Zone, names: &[LowerName], sets: &[RrsetData]) -> bool {
        let structural = |rtype: RecordType| {
            matches!(
                rtype,
                RecordType::CNAME | RecordType::NS | RecordType::DS | RecordType::DNAME
            )
        };
        let origin = LowerName::new(&zone.origin);
        let own = names.iter().all(|name| {
            let in_zone = self
                .catalog
                .find(name)
                .is_some_and(|z| LowerName::new(&z.origin) == origin);
            let wildcard = name.iter().next().is_some_and(|label| label == b"*");
            let old_types = zone.nodes.get(name).into_iter().flat_map(|n| &n.rrsets);
            in_zone && !wildcard && !old_types.into_iter().any(|s| structural(s.rtype))
        });
        if !own || sets.iter().any(|set| structural(set.rtype)) {
            return false;
        }
        // A name that a CNAME, NS, MX or SRV anywhere points at is in other names' answers.
        let changed: std::collections::HashSet<&LowerName> = names.iter().collect();
        let pointed_at = self
            .catalog
            .zones()
            .flat_map(|z| z.nodes.values())
            .any(|node| {
                let statics = node.rrsets.iter();
                let routed = (node.routed.iter()).flat_map(|g| g.members.iter().map(|m| &m.rrset));
                statics.chain(routed).any(|set| {
                    set.records.iter().any(|record| {
                        target(&record.data).is_some_and(|t| changed.contains(&LowerName::new(t)))
                    })
                })
            });
        !pointed_at
    }

    fn prepare(
        &self,
        lower: &LowerName,
        name: &Name,
        rtype: RecordType,
        routing: &Routing,
        signed: bool,
    ) -> Option<Prepared> {
        if let Some(encoded) = fixed(&self.catalog, name, rtype, routing, signed) {
            return Some(Prepared::Fixed(encoded));
        }
        // A group answered directly at its own node (no cut, no CNAME, no wildcard in between).
        let zone = self.catalog.find(lower)?;
        let node = zone.nodes.get(lower)?;
        if node.is_cut || node.occluded || rtype == RecordType::ANY {
            return None;
        }
        let group = node
            .routed
            .iter()
            .find(|g| g.rtype == rtype && g.picks_one())?;
        Some(Prepared::Routed(Arc::new(routed_answers(
            zone, name, group, signed,
        ))))
    }
}

/// Encodes `resolve(name, rtype)` when it can be reused for every query of that name and type.
/// The types a node's prepared answers are keyed by: its own, ANY, DS at a cut, and A and
/// AAAA where a CNAME answers for them.
fn add_node_types(node: &Node, types: &mut BTreeSet<u16>) {
    types.extend(node.rrsets.iter().map(|s| u16::from(s.rtype)));
    types.extend(node.routed.iter().map(|g| u16::from(g.rtype)));
    types.insert(u16::from(RecordType::ANY));
    if node.is_cut {
        types.insert(u16::from(RecordType::DS));
    }
    if node.has_cname() {
        types.extend([u16::from(RecordType::A), u16::from(RecordType::AAAA)]);
    }
}

/// The name a record points at, whose data answers include (CNAME chains, additional
/// addresses of NS, MX and SRV targets).
fn target(data: &RData) -> Option<&Name> {
    match data {
        RData::CNAME(cname) => Some(&cname.0),
        RData::NS(ns) => Some(&ns.0),
        RData::MX(mx) => Some(&mx.exchange),
        RData::SRV(srv) => Some(&srv.target),
        _ => None,
    }
}

impl NodeAnswers {
    /// Puts `serial` and `sigs` (the RRSIGs of the SOA) into every prepared negative answer
    /// carrying `zone`'s SOA; false when some answer's RRSIGs do not fit.
    fn patch_soa(&mut self, zone: &LowerName, serial: u32, sigs: &[Record]) -> bool {
        let patch = |encoded: &Encoded| encoded.with_soa(zone, serial, sigs);
        for (_, prepared) in &mut self.by_type {
            let fits = match prepared {
                Some(Prepared::Fixed(encoded)) => replace(encoded, patch(encoded)),
                Some(Prepared::Routed(routed)) => match patch(&routed.nodata) {
                    SoaPatch::Patched(nodata) => {
                        let mut patched = RoutedAnswers::clone(routed);
                        patched.nodata = nodata;
                        *routed = Arc::new(patched);
                        true
                    }
                    SoaPatch::Untouched => true,
                    SoaPatch::Unfit => false,
                },
                None => true,
            };
            if !fits {
                return false;
            }
        }
        match &mut self.other {
            Some(other) => replace(other, patch(other)),
            None => true,
        }
    }
}

/// Puts the outcome of `patch` in `encoded`; false when it does not fit.
fn replace(encoded: &mut Arc<Encoded>, patch: SoaPatch) -> bool {
    match patch {
        SoaPatch::Patched(patched) => *encoded = Arc::new(patched),
        SoaPatch::Untouched => {}
        SoaPatch::Unfit => return false,
    }
    true
}

/// A zone's negative TTL with `soa` as its SOA: min(SOA TTL, SOA MINIMUM) (RFC 2308 §3).
fn negative_ttl(soa: &RrsetData) -> Option<u32> {
    match soa.rdatas.first() {
        Some(RData::SOA(rdata)) => Some(soa.ttl.min(rdata.minimum)),
        _ => None,
    }
}

fn fixed(
    catalog: &Catalog,
    name: &Name,
    rtype: RecordType,
    routing: &Routing,
    signed: bool,
) -> Option<Arc<Encoded>> {
    let mut answer = answer::resolve(catalog, name, rtype, routing);
    answer.depends_only_on_name.then(|| {
        Arc::new(encode(
            &Query::query(name.clone(), rtype),
            &mut answer,
            signed,
        ))
    })
}

fn routed_answers(
    zone: &Arc<Zone>,
    name: &Name,
    group: &Arc<RoutedGroup>,
    signed: bool,
) -> RoutedAnswers {
    let query = Query::query(name.clone(), group.rtype);
    RoutedAnswers {
        group: group.clone(),
        per_member: group
            .members
            .iter()
            .map(|m| encode(&query, &mut Answer::positive(zone, &m.rrset), signed))
            .collect(),
        nodata: encode(
            &query,
            &mut Answer::routed_nodata(zone, name, group.rtype),
            signed,
        ),
    }
}

/// `answer` encoded for a query without DO, or with DO (RRSIGs, and its proofs added).
fn encode(query: &Query, answer: &mut Answer, signed: bool) -> Encoded {
    if signed {
        add_proofs(answer);
        Encoded::signed(query, answer)
    } else {
        Encoded::new(query, answer)
    }
}

// === impl ChaosAnswers ===

impl ChaosAnswers {
    fn build(chaos: &Chaos) -> ChaosAnswers {
        let rrset = |text: &Option<String>| {
            text.as_ref().map(|text| {
                let mut record =
                    Record::from_rdata(Name::root(), 0, RData::TXT(TXT::new(vec![text.clone()])));
                record.dns_class = DNSClass::CH;
                Arc::new(Rrset {
                    name: Name::root(),
                    rtype: RecordType::TXT,
                    ttl: 0,
                    records: vec![record],
                    sigs: Vec::new(),
                })
            })
        };
        ChaosAnswers {
            version: rrset(&chaos.version),
            id: rrset(&chaos.id),
        }
    }
}

#[cfg(test)]
mod tests;
