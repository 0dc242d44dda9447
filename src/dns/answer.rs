//! The RFC 1034 §4.3.2 answer algorithm over a [`Catalog`]: a pure function from
//! (query name, type) to the sections of the response.
//!
//! It decides *what* to answer; `wire` decides how it fits on the wire. Answers that depend
//! only on the zone data are precomputed from this same function at load (see `snapshot`).

use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RData, RecordType};

use super::dnssec::proof::Proof;
use super::policy::{Client, RoutedGroup, RoutingEnv};
use super::zone::{Catalog, Node, NodeData, Rrset, Zone};

/// CNAME hops followed before giving up (loops are cut earlier, by name).
const MAX_CNAME_CHAIN: usize = 16;

/// One RRset placed in a section, optionally under another owner (wildcard synthesis, RFC 4592).
#[derive(Debug, Clone)]
pub struct Part {
    pub rrset: Arc<Rrset>,
    pub owner: Option<Name>,
}

/// A negative answer's SOA comes from a zone, with the RFC 2308 TTL.
#[derive(Debug, Clone)]
pub enum AuthorityPart {
    Rrset(Part),
    NegativeSoa(Arc<Zone>),
}

/// The decided response content.
#[derive(Debug, Clone)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answer: Vec<Part>,
    pub authority: Vec<AuthorityPart>,
    pub additional: Vec<Part>,
    /// True when the content depends on nothing but the query name and type (no wildcard
    /// synthesis, no routing decision): such answers may be computed once and reused.
    pub depends_only_on_name: bool,
    /// The EDNS Client Subnet scope: the longest prefix any routing decision depended on
    /// (0 when the answer does not depend on the client).
    pub scope: u8,
    /// The zone [`resolve`] answered from (the query name's), counted in its metrics;
    /// `None` when refused.
    pub zone: Option<Arc<Zone>>,
    /// What the answer must prove to a validator, when its zones are signed
    /// ([`add_proofs`](super::dnssec::proof::add_proofs) adds it for DO queries).
    pub proofs: Vec<Proof>,
}

/// Who is asking and what routing decisions read.
#[derive(Clone, Copy)]
pub struct Routing<'a> {
    pub client: Client,
    pub env: RoutingEnv<'a>,
    /// Count the routed sets chosen: true for queries, false for precomputing.
    pub count: bool,
}

/// What a name leads to inside one zone.
enum Found<'z> {
    /// A node with data for the name (possibly the wildcard that covers it).
    Node {
        node: &'z Node,
        synthesized: bool,
    },
    /// The name is at or below a delegation: send the client to the child's servers.
    Referral(&'z Node),
    NxDomain,
}

// === impl Answer ===

impl Answer {
    fn new(rcode: ResponseCode, authoritative: bool) -> Answer {
        Answer {
            rcode,
            authoritative,
            answer: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            depends_only_on_name: true,
            scope: 0,
            zone: None,
            proofs: Vec::new(),
        }
    }

    /// Notes `proof` when `zone` is signed (nothing to prove otherwise).
    fn prove(&mut self, zone: &Arc<Zone>, proof: impl FnOnce(Arc<Zone>) -> Proof) {
        if zone.is_signed() {
            self.proofs.push(proof(zone.clone()));
        }
    }

    /// The NODATA answer of a routed group at `name` that picks no set: the zone's SOA in
    /// authority, and the proof made for it when the zone is signed.
    pub fn routed_nodata(zone: &Arc<Zone>, name: &Name, rtype: RecordType) -> Answer {
        let mut answer = Answer::new(ResponseCode::NoError, true);
        answer
            .authority
            .push(AuthorityPart::NegativeSoa(zone.clone()));
        let name = LowerName::new(name);
        answer.prove(zone, |zone| Proof::RoutedNoData { zone, name, rtype });
        answer
    }

    /// A positive answer with exactly `rrset` (and its additional addresses).
    pub fn positive(zone: &Zone, rrset: &Arc<Rrset>) -> Answer {
        let mut answer = Answer::new(ResponseCode::NoError, true);
        answer.answer.push(Part {
            rrset: rrset.clone(),
            owner: None,
        });
        add_addresses(zone, rrset, false, &mut answer.additional);
        answer
    }

    /// REFUSED: not a name we are authoritative for.
    pub fn refused() -> Answer {
        Answer::new(ResponseCode::Refused, false)
    }
}

/// Answers `qname`/`qtype` from `catalog` for the client in `routing`.
pub fn resolve(catalog: &Catalog, qname: &Name, qtype: RecordType, routing: &Routing) -> Answer {
    let lower = LowerName::new(qname);
    let Some(mut zone) = catalog.find(&lower) else {
        return Answer::refused();
    };
    // DS belongs to the parent side of a cut (RFC 4035 §3.1.4.1): if we serve the parent, it answers.
    if qtype == RecordType::DS
        && lower == LowerName::new(&zone.origin)
        && let Some(parent) = catalog.parent_of(zone)
    {
        zone = parent;
    }
    let mut answer = Answer::new(ResponseCode::NoError, true);
    answer.zone = Some(zone.clone());
    let mut name = qname.clone();
    let mut visited: Vec<LowerName> = Vec::new();
    for _ in 0..MAX_CNAME_CHAIN {
        let lower = LowerName::new(&name);
        visited.push(lower.clone());
        match lookup(zone, &lower, qtype) {
            Found::NxDomain => {
                answer.rcode = ResponseCode::NXDomain;
                answer
                    .authority
                    .push(AuthorityPart::NegativeSoa(zone.clone()));
                answer.prove(zone, |zone| Proof::NxDomain { zone, name: lower });
                return answer;
            }
            Found::Referral(cut) => {
                if answer.answer.is_empty() {
                    answer.authoritative = false;
                }
                if let Some(ns) = cut.get(RecordType::NS) {
                    answer.authority.push(AuthorityPart::Rrset(Part {
                        rrset: ns.clone(),
                        owner: None,
                    }));
                    add_addresses(zone, ns, true, &mut answer.additional);
                    let cut = LowerName::new(&ns.name);
                    answer.prove(zone, |zone| Proof::Referral { zone, cut });
                }
                return answer;
            }
            Found::Node { node, synthesized } => {
                let owner = synthesized.then(|| name.clone());
                if synthesized {
                    answer.depends_only_on_name = false;
                }
                let hit = if qtype == RecordType::ANY {
                    node.any()
                } else {
                    node.data(qtype)
                };
                if let Some(data) = hit {
                    let chosen = choose(data, routing, &mut answer);
                    if chosen.is_empty() {
                        answer
                            .authority
                            .push(AuthorityPart::NegativeSoa(zone.clone()));
                        let rtype = qtype;
                        answer.prove(zone, |zone| match synthesized {
                            true => Proof::WildcardNoData { zone, name: lower },
                            false => Proof::RoutedNoData {
                                zone,
                                name: lower,
                                rtype,
                            },
                        });
                    } else if synthesized {
                        let name = lower.clone();
                        answer.prove(zone, |zone| Proof::Wildcard { zone, name });
                    }
                    for rrset in chosen {
                        add_addresses(zone, &rrset, false, &mut answer.additional);
                        answer.answer.push(Part {
                            rrset,
                            owner: owner.clone(),
                        });
                    }
                    return answer;
                }
                let Some(cname) = node.data(RecordType::CNAME) else {
                    answer
                        .authority
                        .push(AuthorityPart::NegativeSoa(zone.clone()));
                    answer.prove(zone, |zone| match synthesized {
                        true => Proof::WildcardNoData { zone, name: lower },
                        false => Proof::NoData { zone, name: lower },
                    });
                    return answer;
                };
                let Some(cname) = choose(cname, routing, &mut answer).into_iter().next() else {
                    answer
                        .authority
                        .push(AuthorityPart::NegativeSoa(zone.clone()));
                    return answer;
                };
                if synthesized {
                    let name = lower.clone();
                    answer.prove(zone, |zone| Proof::Wildcard { zone, name });
                }
                answer.answer.push(Part {
                    rrset: cname.clone(),
                    owner,
                });
                let Some(RData::CNAME(target)) = cname.records.first().map(|r| &r.data) else {
                    return answer;
                };
                let target_lower = LowerName::new(&target.0);
                if visited.contains(&target_lower) {
                    return answer;
                }
                match catalog.find(&target_lower) {
                    Some(next) => {
                        zone = next;
                        name = target.0.clone();
                    }
                    // Out of our zones: the resolver chases it.
                    None => return answer,
                }
            }
        }
    }
    answer
}

/// The RRsets that answer: a static set, or what the group's policy picks for this client.
fn choose(data: NodeData, routing: &Routing, answer: &mut Answer) -> Vec<Arc<Rrset>> {
    match data {
        NodeData::Static(rrset) => vec![rrset.clone()],
        NodeData::Routed(group) => {
            answer.depends_only_on_name = false;
            pick(group, routing, answer)
        }
    }
}

fn pick(group: &RoutedGroup, routing: &Routing, answer: &mut Answer) -> Vec<Arc<Rrset>> {
    let decision = group.decide(&routing.client, &routing.env);
    if routing.count {
        group.count(&decision.chosen);
    }
    answer.scope = answer.scope.max(decision.scope);
    decision
        .chosen
        .as_slice()
        .iter()
        .map(|&i| group.members[i].rrset.clone())
        .collect()
}

/// Finds what `name` leads to in `zone`: walks down from the apex so the first cut wins,
/// then falls back to the wildcard at the closest encloser (RFC 4592 §3.3.1).
fn lookup<'z>(zone: &'z Zone, name: &LowerName, qtype: RecordType) -> Found<'z> {
    if let Some(node) = zone.nodes.get(name)
        && !node.occluded
        && (!node.is_cut || qtype == RecordType::DS)
    {
        return Found::Node {
            node,
            synthesized: false,
        };
    }
    let origin_labels = zone.origin.iter().count();
    let labels: Vec<LowerName> = {
        let mut chain = Vec::new();
        let mut current = name.clone();
        while current.iter().count() > origin_labels {
            chain.push(current.clone());
            current = current.base_name();
        }
        chain.reverse();
        chain
    };
    let mut closest_encloser: Option<&LowerName> = None;
    for (depth, ancestor) in labels.iter().enumerate() {
        let Some(node) = zone.nodes.get(ancestor) else {
            break;
        };
        let is_qname = depth + 1 == labels.len();
        if node.is_cut && !(is_qname && qtype == RecordType::DS) {
            return Found::Referral(node);
        }
        if is_qname {
            return Found::Node {
                node,
                synthesized: false,
            };
        }
        closest_encloser = Some(ancestor);
    }
    let encloser = match closest_encloser {
        Some(name) => Name::from(name),
        None => zone.origin.clone(),
    };
    let wildcard = encloser.prepend_label("*").map(|n| LowerName::new(&n));
    match wildcard.ok().and_then(|w| zone.nodes.get(&w)) {
        Some(node) => Found::Node {
            node,
            synthesized: true,
        },
        None => Found::NxDomain,
    }
}

/// Additional-section processing: A/AAAA of in-zone targets of NS, MX and SRV (RFC 1034 §3.6,
/// RFC 2782). `glue` also takes addresses from below cuts, as referrals need.
fn add_addresses(zone: &Zone, rrset: &Rrset, glue: bool, out: &mut Vec<Part>) {
    for record in &rrset.records {
        let target = match &record.data {
            RData::NS(ns) => &ns.0,
            RData::MX(mx) => &mx.exchange,
            RData::SRV(srv) => &srv.target,
            _ => continue,
        };
        if !zone.origin.zone_of(target) {
            continue;
        }
        let Some(node) = zone.nodes.get(&LowerName::new(target)) else {
            continue;
        };
        if node.occluded && !glue {
            continue;
        }
        for rtype in [RecordType::A, RecordType::AAAA] {
            if let Some(set) = node.get(rtype)
                && !out.iter().any(|p| Arc::ptr_eq(&p.rrset, set))
            {
                out.push(Part {
                    rrset: set.clone(),
                    owner: None,
                });
            }
        }
    }
}
