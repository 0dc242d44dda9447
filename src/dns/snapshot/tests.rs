//! The incremental snapshot after dynamic updates ([`Snapshot::with_zone_changes`]) must
//! answer every query byte for byte as a snapshot built from scratch on the same data, and
//! carry the same zone for transfers.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, RecordType};
use proptest::prelude::*;

use super::Snapshot;
use crate::config::Config;
use crate::config::dns::{DnsConfig, RrsetData};
use crate::dns::responder::{Transport, respond};
use crate::geo::GeoDb;
use crate::health::HealthTable;

const ZONE: &str = r#"
[dns]
[[dns.zones]]
name = "inc.example"
soa = { mname = "ns1.inc.example.", rname = "hostmaster.inc.example.", serial = 100 }
records = [
  { name = "@", type = "NS", values = ["ns1.inc.example."] },
  { name = "@", type = "MX", values = ["10 mail.inc.example."] },
  { name = "@", type = "TXT", values = ['"apex"'] },
  { name = "ns1", type = "A", values = ["192.0.2.1"] },
  { name = "mail", type = "A", values = ["192.0.2.2"] },
  { name = "www", type = "CNAME", values = ["web.inc.example."] },
  { name = "web", type = "A", values = ["192.0.2.3"] },
  { name = "_sip._tcp", type = "SRV", values = ["0 5 5060 sip.inc.example."] },
  { name = "sip", type = "AAAA", values = ["2001:db8::5"] },
  { name = "*.w", type = "TXT", values = ['"wild"'] },
  { name = "deleg", type = "NS", values = ["ns.deleg.inc.example."] },
  { name = "ns.deleg", type = "A", values = ["192.0.2.9"] },
  { name = "a.b.c", type = "TXT", values = ['"deep"'] },
  { name = "host", type = "A", values = ["192.0.2.20"] },
  { name = "ha", type = "A", set_id = "main", failover = "primary", values = ["192.0.2.30"] },
  { name = "ha", type = "A", set_id = "spare", failover = "secondary", values = ["192.0.2.31"] },
]
"#;

/// Names changes pick from: existing leaves, new names (some deep, making empty
/// non-terminals), names others point at, a wildcard, below the cut, the apex, a routed name.
const NAMES: &[&str] = &[
    "host",
    "a.b.c",
    "new1",
    "x.y.new2",
    "_acme-challenge.h1",
    "_acme-challenge.h2",
    "web",
    "mail",
    "sip",
    "*.w",
    "q.w",
    "host.deleg",
    "@",
    "ha",
    "b.c",
];

/// Names asked about after each change (besides every name of NAMES).
const ASKED: &[&str] = &[
    "www",
    "_sip._tcp",
    "ns1",
    "c",
    "y.new2",
    "h1",
    "nothing",
    "z.w",
    "deleg",
    "x.deleg",
];

const TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::TXT,
    RecordType::MX,
    RecordType::NS,
    RecordType::SOA,
    RecordType::CNAME,
    RecordType::SRV,
    RecordType::ANY,
    RecordType::DS,
    RecordType::CAA,
];

#[derive(Debug, Clone)]
enum Op {
    /// Add a record of this type (value from the number).
    Add(RecordType, u8),
    /// Delete the RRset of this type.
    Delete(RecordType),
    /// Delete every RRset at the name but SOA and NS.
    DeleteAll,
}

fn absolute(name: &str) -> Name {
    let text = if name == "@" {
        "inc.example.".to_string()
    } else {
        format!("{name}.inc.example.")
    };
    Name::from_ascii(text).expect("a test name")
}

fn rdata(rtype: RecordType, n: u8) -> RData {
    match rtype {
        RecordType::A => RData::A(A::new(198, 51, 100, n)),
        RecordType::AAAA => RData::AAAA(AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n))),
        _ => RData::TXT(TXT::new(vec![format!("value {n}")])),
    }
}

/// Applies `op` at `name` to the zone's RRsets (routed names keep their routed types out,
/// as updates do); true when anything changed.
fn apply(config: &mut DnsConfig, name: &Name, op: &Op) -> bool {
    let zone = &mut config.zones[0];
    let lower = name.to_lowercase();
    let routed = |t: RecordType| {
        zone.routed
            .iter()
            .any(|g| g.name.to_lowercase() == lower && g.rtype == t)
    };
    let before = zone.rrsets.clone();
    match op {
        Op::Add(rtype, n) if !routed(*rtype) => {
            let data = rdata(*rtype, *n);
            match zone
                .rrsets
                .iter_mut()
                .find(|s| s.name.to_lowercase() == lower && s.rtype == *rtype)
            {
                Some(set) => {
                    if !set.rdatas.contains(&data) {
                        set.rdatas.push(data);
                    }
                }
                None => zone.rrsets.push(RrsetData {
                    name: lower.clone(),
                    rtype: *rtype,
                    ttl: 60,
                    rdatas: vec![data],
                }),
            }
        }
        Op::Add(..) => {}
        Op::Delete(rtype) => zone
            .rrsets
            .retain(|s| !(s.name.to_lowercase() == lower && s.rtype == *rtype)),
        Op::DeleteAll => zone.rrsets.retain(|s| {
            s.name.to_lowercase() != lower || matches!(s.rtype, RecordType::SOA | RecordType::NS)
        }),
    }
    zone.rrsets != before
}

fn bump_serial(config: &mut DnsConfig) -> RrsetData {
    let soa = config.zones[0]
        .rrsets
        .iter_mut()
        .find(|s| s.rtype == RecordType::SOA)
        .expect("an SOA");
    for rdata in &mut soa.rdatas {
        if let RData::SOA(fields) = rdata {
            fields.serial += 1;
        }
    }
    soa.clone()
}

fn build(config: &DnsConfig) -> Snapshot {
    let health = Arc::new(HealthTable::new(&config.health_checks));
    let geo = Arc::new(GeoDb::open(&config.geo).expect("no databases"));
    Snapshot::build(config, health, geo, Arc::default())
}

fn answer(snapshot: &Snapshot, name: &Name, rtype: RecordType, edns: bool) -> Vec<u8> {
    let mut message = Message::new(0x5151, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(name.clone(), rtype));
    if edns {
        message.set_edns(Edns::new());
    }
    let query = message.to_vec().expect("a query encodes");
    let mut out = Vec::new();
    let peer: IpAddr = "192.0.2.200".parse().expect("an address");
    let _ = respond(snapshot, &query, peer, Transport::Udp, &mut out);
    out
}

fn transfer(snapshot: &Snapshot) -> Vec<String> {
    let zone = snapshot.catalog.zones().next().expect("one zone");
    let mut records: Vec<String> = zone
        .transfer_records()
        .iter()
        .map(|r| r.to_string())
        .collect();
    records.push(zone.soa.records[0].to_string());
    records
}

fn op() -> impl Strategy<Value = Op> {
    let rtype = prop::sample::select(vec![RecordType::A, RecordType::AAAA, RecordType::TXT]);
    prop_oneof![
        4 => (rtype.clone(), any::<u8>()).prop_map(|(t, n)| Op::Add(t, n)),
        2 => rtype.prop_map(Op::Delete),
        1 => Just(Op::DeleteAll),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn incremental_snapshots_answer_as_full_builds(
        steps in proptest::collection::vec(
            proptest::collection::vec((prop::sample::select(NAMES), op()), 1..4),
            1..6,
        ),
    ) {
        let config = Config::from_str(ZONE, Path::new("inc.toml")).expect("the test zone is valid");
        let mut dns = config.dns.expect("[dns]");
        let mut current = build(&dns);
        let origin = LowerName::new(&absolute("@"));
        let asked: Vec<Name> = NAMES.iter().chain(ASKED).map(|n| absolute(n)).collect();
        for group in steps {
            let mut names: Vec<Name> = Vec::new();
            for (name, op) in &group {
                let name = absolute(name).to_lowercase();
                if apply(&mut dns, &name, op) && !names.contains(&name) {
                    names.push(name);
                }
            }
            if names.is_empty() {
                continue;
            }
            let soa = bump_serial(&mut dns);
            let sets: Vec<RrsetData> = dns.zones[0]
                .rrsets
                .iter()
                .filter(|s| names.contains(&s.name.to_lowercase()))
                .cloned()
                .collect();
            let lowered: Vec<LowerName> = names.iter().map(LowerName::new).collect();
            let full = build(&dns);
            current = match current.with_zone_changes(&origin, &soa, &lowered, &sets) {
                Some(incremental) => {
                    for name in &asked {
                        for &rtype in TYPES {
                            for edns in [false, true] {
                                prop_assert_eq!(
                                    answer(&incremental, name, rtype, edns),
                                    answer(&full, name, rtype, edns),
                                    "{} {} after {:?}", name, rtype, group
                                );
                            }
                        }
                    }
                    prop_assert_eq!(transfer(&incremental), transfer(&full));
                    incremental
                }
                None => full,
            };
        }
    }
}

/// The fast path is taken for the changes it is for (new and changed leaf data), and not for
/// a name a record points at.
#[test]
fn leaf_changes_take_the_fast_path_and_pointed_at_names_do_not() {
    let config = Config::from_str(ZONE, Path::new("inc.toml")).expect("the test zone is valid");
    let mut dns = config.dns.expect("[dns]");
    let snapshot = build(&dns);
    let origin = LowerName::new(&absolute("@"));
    for (name, expected) in [
        ("_acme-challenge.h1", true),
        ("host", true),
        ("web", false),
        ("*.w", false),
    ] {
        let name = absolute(name).to_lowercase();
        assert!(apply(&mut dns, &name, &Op::Add(RecordType::TXT, 1)));
        let soa = bump_serial(&mut dns);
        let sets: Vec<RrsetData> = (dns.zones[0].rrsets.iter())
            .filter(|s| s.name.to_lowercase() == name)
            .cloned()
            .collect();
        let fast = snapshot.with_zone_changes(&origin, &soa, &[LowerName::new(&name)], &sets);
        assert_eq!(fast.is_some(), expected, "{name}");
    }
}

/// Every name the signed-zone test asks (each for [`TYPES`], CAA and NSEC), with names that
/// do not exist and names a wildcard covers.
const SIGNED_NAMES: &[&str] = &[
    "@",
    "host",
    "a.b.c",
    "b.c",
    "c",
    "www",
    "web",
    "mail",
    "sip",
    "_sip._tcp",
    "_tcp",
    "q.w",
    "*.w",
    "w",
    "deleg",
    "x.deleg",
    "ns.deleg",
    "ha",
    "nope",
    "x.nope",
    "zzz",
];

/// The test zone signed with `denial`, with its keys in `keys`.
fn signed(keys: &Path, denial: &str) -> DnsConfig {
    let text = ZONE.replacen(
        "name = \"inc.example\"",
        &format!(
            "name = \"inc.example\"\ndnssec = {{ keys_dir = {:?}, denial = {denial:?} }}",
            keys.display()
        ),
        1,
    );
    let config = Config::from_str(&text, Path::new("signed.toml")).expect("the zone is valid");
    let mut dns = config.dns.expect("[dns]");
    crate::dns::dnssec::attach_signers(&mut dns, None).expect("keys made");
    dns
}

fn answer_do(snapshot: &Snapshot, name: &Name, rtype: RecordType) -> Vec<u8> {
    let mut message = Message::new(0x5151, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true);
    message.set_edns(edns);
    let query = message.to_vec().expect("a query encodes");
    let mut out = Vec::new();
    let peer: IpAddr = "192.0.2.200".parse().expect("an address");
    let _ = respond(snapshot, &query, peer, Transport::Udp, &mut out);
    out
}

/// Signing changes nothing for queries without DO, and the answers prepared for DO
/// queries are those resolved for each query.
#[test]
fn a_signed_zone_answers_do_0_as_unsigned_and_prepared_do_1_as_resolved() {
    let keys = tempfile::tempdir().expect("a folder");
    for denial in ["nsec", "nsec3"] {
        let config = signed(keys.path(), denial);
        let plain = build(
            &Config::from_str(ZONE, Path::new("plain.toml"))
                .unwrap()
                .dns
                .unwrap(),
        );
        let signed = build(&config);
        assert!(signed.has_signed_zones && !signed.precomputed_signed.is_empty());
        let mut unprepared = build(&config);
        unprepared.precomputed_signed.clear();
        let mut with_sigs = 0;
        for name in SIGNED_NAMES {
            let name = absolute(name);
            for &rtype in TYPES.iter().chain(&[RecordType::CAA, RecordType::NSEC]) {
                // NSEC (and DNSKEY) queries have data only in a signed zone.
                for edns in [false, true]
                    .into_iter()
                    .filter(|_| rtype != RecordType::NSEC)
                {
                    assert_eq!(
                        answer(&plain, &name, rtype, edns),
                        answer(&signed, &name, rtype, edns),
                        "{denial}: {name} {rtype} without DO"
                    );
                }
                let prepared = answer_do(&signed, &name, rtype);
                let resolved = answer_do(&unprepared, &name, rtype);
                assert_eq!(prepared, resolved, "{denial}: {name} {rtype} DO");
                let message = Message::from_vec(&prepared).expect("decodes");
                let sigs = (message.answers.iter().chain(&message.authorities))
                    .filter(|r| r.record_type() == RecordType::RRSIG)
                    .count();
                with_sigs += usize::from(sigs > 0);
            }
        }
        assert!(
            with_sigs > 100,
            "{denial}: only {with_sigs} answers carry RRSIGs"
        );
    }
}
