//! Everything the request path reads, built once at load and never locked: the catalog and,
//! for every name in it, the encoded answers that depend on nothing but name and type.

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::op::Query;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use super::answer::{self, Answer};
use super::wire::Encoded;
use super::zone::{Catalog, Rrset};
use crate::config::DnsConfig;
use crate::config::dns::Chaos;

/// A type no zone uses, standing for "any type the node lacks" when precomputing.
const ABSENT_TYPE: RecordType = RecordType::Unknown(65534);

/// Immutable serving state.
#[derive(Debug)]
pub struct Snapshot {
    pub catalog: Catalog,
    precomputed: HashMap<LowerName, NodeAnswers>,
    chaos: ChaosAnswers,
    /// Our EDNS UDP payload size, and the cap on UDP responses.
    pub max_udp_payload: u16,
}

/// Encoded answers for one name: by query type, and for every other type when that answer
/// does not depend on the type (nodes without CNAME).
#[derive(Debug, Default)]
struct NodeAnswers {
    by_type: Vec<(RecordType, Arc<Encoded>)>,
    other: Option<Arc<Encoded>>,
}

/// CHAOS-class TXT answers, for the names operators expect (`version.bind`, `id.server`, ...).
#[derive(Debug, Default)]
struct ChaosAnswers {
    version: Option<Arc<Rrset>>,
    id: Option<Arc<Rrset>>,
}

// === impl Snapshot ===

impl Snapshot {
    pub fn build(config: &DnsConfig) -> Snapshot {
        let catalog = Catalog::build(&config.zones);
        let mut precomputed: HashMap<LowerName, NodeAnswers> = HashMap::new();
        for zone in catalog.zones() {
            for (lower, node) in &zone.nodes {
                if precomputed.contains_key(lower) {
                    continue;
                }
                let name = Name::from(lower);
                let has_cname = node.get(RecordType::CNAME).is_some();
                let mut types: Vec<RecordType> = node.rrsets.iter().map(|s| s.rtype).collect();
                types.push(RecordType::ANY);
                if node.is_cut {
                    types.push(RecordType::DS);
                }
                if has_cname {
                    types.extend([RecordType::A, RecordType::AAAA]);
                }
                let mut answers = NodeAnswers::default();
                for rtype in types {
                    if let Some(encoded) = precompute(&catalog, &name, rtype) {
                        answers.by_type.push((rtype, encoded));
                    }
                }
                if !has_cname && node.get(ABSENT_TYPE).is_none() {
                    answers.other = precompute(&catalog, &name, ABSENT_TYPE);
                }
                precomputed.insert(lower.clone(), answers);
            }
        }
        Snapshot { catalog, precomputed, chaos: ChaosAnswers::build(&config.chaos), max_udp_payload: config.max_udp_payload }
    }

    /// The precomputed answer for this name and type, if there is one.
    pub fn precomputed(&self, name: &LowerName, rtype: RecordType) -> Option<&Encoded> {
        let answers = self.precomputed.get(name)?;
        answers
            .by_type
            .iter()
            .find(|(t, _)| *t == rtype)
            .map(|(_, e)| &**e)
            .or(answers.other.as_deref())
    }

    /// Answers a CHAOS-class query (RFC 4892 names), REFUSED where nothing is configured.
    pub fn chaos(&self, qname: &Name, qtype: RecordType) -> Answer {
        let name = LowerName::new(qname).to_string();
        let rrset = match name.as_str() {
            "version.bind." | "version.server." => self.chaos.version.as_ref(),
            "id.server." | "hostname.bind." => self.chaos.id.as_ref(),
            _ => None,
        };
        let Some(rrset) = rrset else { return Answer::refused() };
        let mut answer = Answer::refused();
        answer.rcode = hickory_proto::op::ResponseCode::NoError;
        answer.authoritative = true;
        if matches!(qtype, RecordType::TXT | RecordType::ANY) {
            answer.answer.push(answer::Part { rrset: rrset.clone(), owner: Some(qname.clone()) });
        }
        answer
    }
}

/// Encodes `resolve(name, rtype)` when it can be reused for every query of that name and type.
fn precompute(catalog: &Catalog, name: &Name, rtype: RecordType) -> Option<Arc<Encoded>> {
    let answer = answer::resolve(catalog, name, rtype);
    answer.depends_only_on_name.then(|| Arc::new(Encoded::new(&Query::query(name.clone(), rtype), &answer)))
}

// === impl ChaosAnswers ===

impl ChaosAnswers {
    fn build(chaos: &Chaos) -> ChaosAnswers {
        let rrset = |text: &Option<String>| {
            text.as_ref().map(|text| {
                let mut record = Record::from_rdata(Name::root(), 0, RData::TXT(TXT::new(vec![text.clone()])));
                record.dns_class = DNSClass::CH;
                Arc::new(Rrset { name: Name::root(), rtype: RecordType::TXT, ttl: 0, records: vec![record] })
            })
        };
        ChaosAnswers { version: rrset(&chaos.version), id: rrset(&chaos.id) }
    }
}
