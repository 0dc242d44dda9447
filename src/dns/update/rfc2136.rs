//! The UPDATE message's semantics (RFC 2136 §3.2–§3.4) over a zone's plain records:
//! prerequisites, the prescan, and applying the update section in order. Pure: the caller
//! persists and serves the result.

use std::collections::BTreeMap;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::config::dns::{RrsetData, ZoneData};

/// A zone's plain RRsets by (lowercased owner, type), and the (owner, type) pairs that are
/// routed (Route 53 policies), which updates may not touch.
#[derive(Debug, Clone, PartialEq)]
pub struct Records {
    sets: BTreeMap<(Name, RecordType), RrsetData>,
    routed: Vec<(Name, RecordType)>,
}

/// An RRset's key in [`Records`]: lowercased owner and type.
pub type Key = (Name, RecordType);

/// The RRsets a batch of updates changed, as they were before its first change to each:
/// what [`diff`] compares the result with, and what [`Records::restore`] puts back.
pub type Before = BTreeMap<Key, Option<RrsetData>>;

impl Records {
    pub fn of(zone: &ZoneData) -> Records {
        Records {
            sets: zone
                .rrsets
                .iter()
                .map(|set| ((set.name.to_lowercase(), set.rtype), set.clone()))
                .collect(),
            routed: zone
                .routed
                .iter()
                .map(|g| (g.name.to_lowercase(), g.rtype))
                .collect(),
        }
    }

    /// The RRsets, for the zone's data.
    pub fn rrsets(&self) -> Vec<RrsetData> {
        self.sets.values().cloned().collect()
    }

    /// The types of the RRsets at `name`.
    pub fn types_at(&self, name: &Name) -> Vec<RecordType> {
        self.keys_at(&name.to_lowercase())
            .map(|(_, t)| *t)
            .collect()
    }

    /// Every RRset at the lowercased `names`.
    pub fn sets_at(&self, names: &[Name]) -> Vec<RrsetData> {
        (names.iter())
            .flat_map(|name| self.keys_at(name))
            .filter_map(|key| self.sets.get(key).cloned())
            .collect()
    }

    /// The SOA RRset of the zone at `origin`.
    pub fn soa(&self, origin: &Name) -> Option<&RrsetData> {
        self.sets.get(&(origin.to_lowercase(), RecordType::SOA))
    }

    /// Puts back the RRsets as `before` holds them (a batch that could not be journaled).
    pub fn restore(&mut self, before: Before) {
        for (key, set) in before {
            match set {
                Some(set) => self.sets.insert(key, set),
                None => self.sets.remove(&key),
            };
        }
    }

    /// The keys at the lowercased `name`: a range of the ordered map, not a scan.
    fn keys_at<'a>(&'a self, name: &'a Name) -> impl Iterator<Item = &'a Key> + 'a {
        let first = (name.clone(), RecordType::Unknown(0));
        self.sets
            .range(first..)
            .map(|(key, _)| key)
            .take_while(move |(n, _)| n == name)
    }

    fn name_in_use(&self, name: &Name) -> bool {
        let name = name.to_lowercase();
        self.keys_at(&name).next().is_some() || self.routed.iter().any(|(n, _)| *n == name)
    }

    fn rrset(&self, name: &Name, rtype: RecordType) -> Option<&RrsetData> {
        self.sets.get(&(name.to_lowercase(), rtype))
    }

    fn is_routed(&self, name: &Name, rtype: RecordType) -> bool {
        let name = name.to_lowercase();
        self.routed.iter().any(|(n, t)| {
            *n == name && (*t == rtype || *t == RecordType::CNAME || rtype == RecordType::CNAME)
        })
    }

    /// Notes in `before` the RRsets at `keys` as they are now, unless already noted.
    fn note(&self, before: &mut Before, keys: impl IntoIterator<Item = Key>) {
        for key in keys {
            let set = self.sets.get(&key).cloned();
            before.entry(key).or_insert(set);
        }
    }
}

/// Whether `record` carries no RDATA (class ANY/NONE prerequisites and deletions).
fn empty(record: &Record) -> bool {
    matches!(record.data, RData::Update0(_))
}

/// §3.2: every prerequisite holds, or the RCODE saying which does not.
pub fn check_prerequisites(
    records: &Records,
    origin: &Name,
    prerequisites: &[Record],
) -> Result<(), ResponseCode> {
    let mut value_dependent: BTreeMap<(Name, RecordType), Vec<&RData>> = BTreeMap::new();
    for pr in prerequisites {
        if pr.ttl != 0 {
            return Err(ResponseCode::FormErr);
        }
        if !origin.zone_of(&pr.name) {
            return Err(ResponseCode::NotZone);
        }
        let rtype = pr.record_type();
        match pr.dns_class {
            DNSClass::ANY => {
                if !empty(pr) {
                    return Err(ResponseCode::FormErr);
                }
                if rtype == RecordType::ANY {
                    if !records.name_in_use(&pr.name) {
                        return Err(ResponseCode::NXDomain);
                    }
                } else if records.rrset(&pr.name, rtype).is_none()
                    && !records.is_routed(&pr.name, rtype)
                {
                    return Err(ResponseCode::NXRRSet);
                }
            }
            DNSClass::NONE => {
                if !empty(pr) {
                    return Err(ResponseCode::FormErr);
                }
                if rtype == RecordType::ANY {
                    if records.name_in_use(&pr.name) {
                        return Err(ResponseCode::YXDomain);
                    }
                } else if records.rrset(&pr.name, rtype).is_some()
                    || records.is_routed(&pr.name, rtype)
                {
                    return Err(ResponseCode::YXRRSet);
                }
            }
            DNSClass::IN => value_dependent
                .entry((pr.name.to_lowercase(), rtype))
                .or_default()
                .push(&pr.data),
            _ => return Err(ResponseCode::FormErr),
        }
    }
    for ((name, rtype), mut wanted) in value_dependent {
        let Some(set) = records.rrset(&name, rtype) else {
            return Err(ResponseCode::NXRRSet);
        };
        wanted.sort_by_key(|r| format!("{r}"));
        wanted.dedup();
        let mut have: Vec<&RData> = set.rdatas.iter().collect();
        have.sort_by_key(|r| format!("{r}"));
        if have != wanted {
            return Err(ResponseCode::NXRRSet);
        }
    }
    Ok(())
}

/// §3.4.1: the update section is well formed and in the zone; then `allowed` (the update
/// policy) says yes to every name and type it touches.
pub fn prescan(
    origin: &Name,
    updates: &[Record],
    allowed: impl Fn(&Name, RecordType) -> bool,
) -> Result<(), ResponseCode> {
    for update in updates {
        if !origin.zone_of(&update.name) {
            return Err(ResponseCode::NotZone);
        }
        let rtype = update.record_type();
        let meta =
            matches!(
                rtype,
                RecordType::AXFR | RecordType::IXFR | RecordType::OPT | RecordType::TSIG
            ) || u16::from(rtype) >= 128 && u16::from(rtype) <= 255 && rtype != RecordType::ANY;
        match update.dns_class {
            DNSClass::IN if rtype == RecordType::ANY || meta || empty(update) => {
                return Err(ResponseCode::FormErr);
            }
            DNSClass::ANY if update.ttl != 0 || !empty(update) || meta => {
                return Err(ResponseCode::FormErr);
            }
            DNSClass::NONE if update.ttl != 0 || rtype == RecordType::ANY || meta => {
                return Err(ResponseCode::FormErr);
            }
            DNSClass::IN | DNSClass::ANY | DNSClass::NONE => {}
            _ => return Err(ResponseCode::FormErr),
        }
        // "Delete every RRset at a name" touches every type: the policy must allow ANY.
        if !allowed(&update.name, rtype) {
            return Err(ResponseCode::Refused);
        }
    }
    Ok(())
}

/// §3.4.2: applies `updates` in order, noting in `before` every RRset it may change as it
/// was first. Changes to routed names, to the SOA, and deletions of the apex's SOA/NS are
/// ignored as the RFC ignores the forbidden ones.
pub fn apply(records: &mut Records, origin: &Name, updates: &[Record], before: &mut Before) {
    let apex = origin.to_lowercase();
    for update in updates {
        let name = update.name.to_lowercase();
        let rtype = update.record_type();
        if rtype == RecordType::SOA || records.is_routed(&name, rtype) {
            continue;
        }
        match update.dns_class {
            DNSClass::IN => {
                records.note(before, [(name.clone(), rtype)]);
                add(records, &name, update);
            }
            DNSClass::ANY if rtype == RecordType::ANY => {
                let doomed: Vec<Key> = records
                    .keys_at(&name)
                    .filter(|(_, t)| {
                        name != apex || !matches!(*t, RecordType::SOA | RecordType::NS)
                    })
                    .cloned()
                    .collect();
                records.note(before, doomed.iter().cloned());
                for key in doomed {
                    records.sets.remove(&key);
                }
            }
            DNSClass::ANY if !(name == apex && rtype == RecordType::NS) => {
                let key = (name, rtype);
                records.note(before, [key.clone()]);
                records.sets.remove(&key);
            }
            DNSClass::NONE => {
                let key = (name.clone(), rtype);
                records.note(before, [key.clone()]);
                if let Some(set) = records.sets.get_mut(&key) {
                    let last_apex_ns =
                        name == apex && rtype == RecordType::NS && set.rdatas.len() == 1;
                    if !last_apex_ns {
                        set.rdatas.retain(|r| *r != update.data);
                        if set.rdatas.is_empty() {
                            records.sets.remove(&key);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Adds one record (§3.4.2.2): a CNAME only where nothing else is, nothing else where a
/// CNAME is; an RRset takes the TTL of its newest record.
fn add(records: &mut Records, name: &Name, update: &Record) {
    let rtype = update.record_type();
    let has_cname = records.rrset(name, RecordType::CNAME).is_some();
    let has_other = records.keys_at(name).any(|(_, t)| *t != RecordType::CNAME);
    if (rtype == RecordType::CNAME && has_other) || (rtype != RecordType::CNAME && has_cname) {
        return;
    }
    let set = records
        .sets
        .entry((name.clone(), rtype))
        .or_insert_with(|| RrsetData {
            name: update.name.clone(),
            rtype,
            ttl: update.ttl,
            rdatas: Vec::new(),
        });
    if rtype == RecordType::CNAME {
        set.rdatas.clear();
    }
    set.ttl = update.ttl;
    if !set.rdatas.contains(&update.data) {
        set.rdatas.push(update.data.clone());
    }
}

/// The records `after` lacks and the ones it gained at the RRsets `before` noted (a TTL
/// change is the old record removed and the new one added).
pub fn diff(before: &Before, after: &Records) -> (Vec<Record>, Vec<Record>) {
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    let missing = |from: Option<&RrsetData>, other: Option<&RrsetData>, out: &mut Vec<Record>| {
        let Some(set) = from else { return };
        for rdata in &set.rdatas {
            let kept = other.is_some_and(|o| o.ttl == set.ttl && o.rdatas.contains(rdata));
            if !kept {
                out.push(Record::from_rdata(set.name.clone(), set.ttl, rdata.clone()));
            }
        }
    };
    for (key, old) in before {
        let (old, new) = (old.as_ref(), after.sets.get(key));
        if old != new {
            missing(old, new, &mut removed);
            missing(new, old, &mut added);
        }
    }
    (removed, added)
}

/// The zone data with `removed` taken out and `added` put in (the net dynamic changes on
/// top of the zone's configured data).
pub fn patch(zone: &mut ZoneData, removed: &[Record], added: &[Record]) {
    let mut records = Records::of(zone);
    for record in removed {
        let key = (record.name.to_lowercase(), record.record_type());
        if let Some(set) = records.sets.get_mut(&key) {
            set.rdatas.retain(|r| *r != record.data);
            if set.rdatas.is_empty() {
                records.sets.remove(&key);
            }
        }
    }
    for record in added {
        add(&mut records, &record.name.to_lowercase(), record);
    }
    zone.rrsets = records.sets.into_values().collect();
}
