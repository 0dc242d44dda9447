//! The incremental snapshot after dynamic updates ([`Snapshot::with_zone_changes`]) must
//! answer every query byte for byte as a snapshot built from scratch on the same data, and
//! carry the same zone for transfers.

use std::collections::BTreeSet;
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

/// Applies the ops of `group` to the zone and, when any changed it, bumps the serial: the
/// new SOA, the changed names and every RRset now at them.
fn change(
    dns: &mut DnsConfig,
    group: &[(&str, Op)],
) -> Option<(RrsetData, Vec<LowerName>, Vec<RrsetData>)> {
    let mut names: Vec<Name> = Vec::new();
    for (name, op) in group {
        let name = absolute(name).to_lowercase();
        if apply(dns, &name, op) && !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return None;
    }
    let soa = bump_serial(dns);
    let sets: Vec<RrsetData> = (dns.zones[0].rrsets.iter())
        .filter(|s| names.contains(&s.name.to_lowercase()))
        .cloned()
        .collect();
    Some((soa, names.iter().map(LowerName::new).collect(), sets))
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
            let Some((soa, lowered, sets)) = change(&mut dns, &group) else {
                continue;
            };
            let full = build(&dns);
            current = match current.with_zone_changes(&origin, &soa, &lowered, &sets, None) {
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
        let fast = snapshot.with_zone_changes(&origin, &soa, &[LowerName::new(&name)], &sets, None);
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

/// Records the signed-update oracle adds to [`ZONE`] (which has empty non-terminals `b.c`
/// and `c`, a delegation with glue, a wildcard and a failover pair): a weighted pair,
/// neighbours to add names between, and CNAMEs to an empty non-terminal and to a name that
/// does not exist (their answers carry those names' proofs).
const ORACLE_RECORDS: &str = r#"records = [
  { name = "old", type = "TXT", values = ['"old"'] },
  { name = "m", type = "TXT", values = ['"m"'] },
  { name = "p", type = "TXT", values = ['"p"'] },
  { name = "alias", type = "CNAME", values = ["b.c.inc.example."] },
  { name = "dangling", type = "CNAME", values = ["nothere.inc.example."] },
  { name = "app", type = "A", set_id = "blue", weight = 90, values = ["192.0.2.10"] },
  { name = "app", type = "A", set_id = "green", weight = 10, values = ["192.0.2.11"] },
"#;

/// One step of the oracle: the names it changes, and the change to the zone's RRsets.
type Step = (&'static [&'static str], fn(&mut Vec<RrsetData>));

fn txt_set(name: &str, ttl: u32, text: &str) -> RrsetData {
    RrsetData {
        name: absolute(name),
        rtype: RecordType::TXT,
        ttl,
        rdatas: vec![RData::TXT(TXT::new(vec![text.to_string()]))],
    }
}

/// Drops every RRset at `name`.
fn drop_name(sets: &mut Vec<RrsetData>, name: &str) {
    let name = absolute(name).to_lowercase();
    sets.retain(|s| s.name.to_lowercase() != name);
}

const STEPS: &[Step] = &[
    // A new name deep under an empty non-terminal, making another.
    (&["n1.x.b.c"], |sets| {
        sets.push(txt_set("n1.x.b.c", 60, "new"))
    }),
    // A new type at an existing name.
    (&["host"], |sets| {
        sets.push(RrsetData {
            name: absolute("host"),
            rtype: RecordType::AAAA,
            ttl: 60,
            rdatas: vec![RData::AAAA(AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x20))],
        })
    }),
    // A name's only RRset deleted: the name is gone.
    (&["old"], |sets| drop_name(sets, "old")),
    // A name between two existing ones.
    (&["n"], |sets| sets.push(txt_set("n", 60, "between"))),
    // A TTL changed.
    (&["p"], |sets| {
        drop_name(sets, "p");
        sets.push(txt_set("p", 300, "p"));
    }),
    // Static data beside a weighted pair: its NSEC and its routed denial change.
    (&["app"], |sets| sets.push(txt_set("app", 60, "app"))),
    // The deep name above the new one deleted: its empty non-terminals stay.
    (&["a.b.c"], |sets| drop_name(sets, "a.b.c")),
    // Two names at once, one going and one coming.
    (&["n1.x.b.c", "z"], |sets| {
        drop_name(sets, "n1.x.b.c");
        sets.push(txt_set("z", 60, "last"));
    }),
];

/// Every prepared answer of `map` as bytes, by name and type (`None`: any other type).
fn prepared_bytes(
    map: &std::collections::HashMap<LowerName, super::NodeAnswers>,
) -> std::collections::BTreeMap<(String, Option<u16>), Vec<Vec<u8>>> {
    let bytes = |encoded: &crate::dns::wire::Encoded, name: &LowerName| {
        let mut out = Vec::new();
        let header = crate::dns::wire::QueryHeader {
            id: 1,
            opcode: 0,
            recursion_desired: false,
            checking_disabled: false,
        };
        let question = Query::query(Name::from(name), RecordType::A);
        encoded.write(&mut out, header, &question, usize::MAX, None);
        out
    };
    let mut all = std::collections::BTreeMap::new();
    for (name, answers) in map {
        for (rtype, prepared) in &answers.by_type {
            let encoded: Vec<Vec<u8>> = match prepared {
                Some(super::Prepared::Fixed(e)) => vec![bytes(e, name)],
                Some(super::Prepared::Routed(r)) => (r.per_member.iter())
                    .chain(std::iter::once(&r.nodata))
                    .map(|e| bytes(e, name))
                    .collect(),
                None => Vec::new(),
            };
            all.insert((name.to_string(), Some(u16::from(*rtype))), encoded);
        }
        let other = answers.other.iter().map(|e| bytes(e, name)).collect();
        all.insert((name.to_string(), None), other);
    }
    all
}

/// Asserts that two maps of prepared answers hold the same, naming the answers that differ.
fn assert_same_answers(
    made: &std::collections::HashMap<LowerName, super::NodeAnswers>,
    built: &std::collections::HashMap<LowerName, super::NodeAnswers>,
    step: &str,
) {
    let (made, built) = (prepared_bytes(made), prepared_bytes(built));
    let keys: BTreeSet<_> = made.keys().chain(built.keys()).collect();
    let differ: Vec<_> = keys
        .into_iter()
        .filter(|key| made.get(key) != built.get(key))
        .collect();
    assert!(
        differ.is_empty(),
        "{step}: prepared answers differ at {differ:?}"
    );
    assert!(!made.is_empty(), "{step}: answers prepared");
}

/// The signed zone's data as text: nodes with their RRsets and RRSIGs (routed sets too),
/// the SOA, the denial chain in order, and the routed denials.
fn zone_text(snapshot: &Snapshot) -> Vec<String> {
    let zone = snapshot.catalog.zones().next().expect("one zone");
    let mut lines: Vec<String> = (zone.nodes.iter())
        .map(|(name, node)| {
            let routed: Vec<String> = (node.routed.iter())
                .flat_map(|g| g.members.iter().map(|m| format!("{:?}", m.rrset)))
                .collect();
            format!(
                "{name} cut={} occluded={} {:?} {routed:?}",
                node.is_cut, node.occluded, node.rrsets
            )
        })
        .collect();
    lines.sort();
    lines.push(format!("soa {:?}", zone.soa));
    match &zone.denial {
        crate::dns::dnssec::DenialChain::Nsec(owners) => {
            lines.extend(owners.names().map(|n| format!("nsec owner {n}")));
        }
        crate::dns::dnssec::DenialChain::Nsec3(chain) => {
            lines.extend(chain.names().iter().map(|n| format!("nsec3 at {n}")));
            lines.extend(chain.rrsets().iter().map(|s| format!("nsec3 {s:?}")));
        }
        crate::dns::dnssec::DenialChain::Unsigned => lines.push("unsigned".to_string()),
    }
    let mut routed: Vec<String> = (zone.routed_denials.iter())
        .map(|((name, rtype), set)| format!("routed denial {name} {rtype} {set:?}"))
        .collect();
    routed.sort();
    lines.extend(routed);
    lines
}

/// A signed zone changed by updates, each snapshot made from the last one's and only the
/// change signed, is the snapshot built whole from the same data: the same nodes, RRSIGs,
/// denial chain, routed denials, prepared answers byte for byte, and zone transfer.
#[test]
fn signed_updates_made_from_the_change_equal_full_builds() {
    let keys = tempfile::tempdir().expect("a folder");
    for denial in ["nsec", "nsec3"] {
        let text = ZONE.replacen("records = [\n", ORACLE_RECORDS, 1).replacen(
            "name = \"inc.example\"",
            &format!(
                "name = \"inc.example\"\ndnssec = {{ keys_dir = {:?}, denial = {denial:?} }}",
                keys.path().display()
            ),
            1,
        );
        let config = Config::from_str(&text, Path::new("signed.toml")).expect("the zone is valid");
        let mut dns = config.dns.expect("[dns]");
        crate::dns::dnssec::attach_signers(&mut dns, None).expect("keys made");
        let origin = LowerName::new(&absolute("@"));
        let mut current = build(&dns);
        for (names, change) in STEPS {
            change(&mut dns.zones[0].rrsets);
            let soa = bump_serial(&mut dns);
            let lowered: Vec<LowerName> =
                names.iter().map(|n| LowerName::new(&absolute(n))).collect();
            let sets: Vec<RrsetData> = (dns.zones[0].rrsets.iter())
                .filter(|s| lowered.contains(&LowerName::new(&s.name)))
                .cloned()
                .collect();
            let dnssec = dns.zones[0].dnssec.as_ref();
            let incremental = current
                .with_zone_changes(&origin, &soa, &lowered, &sets, dnssec)
                .unwrap_or_else(|| panic!("{denial}: {names:?} made from the change"));
            let full = build(&dns);
            let step = format!("{denial} after {names:?}");
            assert_eq!(zone_text(&incremental), zone_text(&full), "{step}");
            assert_same_answers(&incremental.precomputed, &full.precomputed, &step);
            assert_same_answers(
                &incremental.precomputed_signed,
                &full.precomputed_signed,
                &step,
            );
            assert_eq!(transfer(&incremental), transfer(&full), "{step}");
            current = incremental;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random changes to the signed test zone: whenever the snapshot is made from the
    /// change, it is the snapshot built whole, record for record and answer for answer.
    #[test]
    fn signed_incremental_snapshots_equal_full_builds(
        nsec3 in any::<bool>(),
        steps in proptest::collection::vec(
            proptest::collection::vec((prop::sample::select(NAMES), op()), 1..4),
            1..6,
        ),
    ) {
        let keys = tempfile::tempdir().expect("a folder");
        let denial = if nsec3 { "nsec3" } else { "nsec" };
        let mut dns = signed(keys.path(), denial);
        let mut current = build(&dns);
        let origin = LowerName::new(&absolute("@"));
        for group in steps {
            let Some((soa, lowered, sets)) = change(&mut dns, &group) else {
                continue;
            };
            let dnssec = dns.zones[0].dnssec.as_ref();
            let made = current.with_zone_changes(&origin, &soa, &lowered, &sets, dnssec);
            let full = build(&dns);
            current = match made {
                Some(made) => {
                    let step = format!("{denial} after {group:?}");
                    prop_assert_eq!(zone_text(&made), zone_text(&full), "{}", step);
                    assert_same_answers(&made.precomputed, &full.precomputed, &step);
                    assert_same_answers(&made.precomputed_signed, &full.precomputed_signed, &step);
                    prop_assert_eq!(transfer(&made), transfer(&full));
                    made
                }
                None => full,
            };
        }
    }
}
