//! Delegations (referrals, glue, DS at the cut), additional-section processing and ANY
//! (RFC 1034 §4.3.2, RFC 4035 §3.1.4.1, RFC 8482), over UDP and TCP.

use hickory_proto::rr::RecordType::{self, A, AAAA, ANY, DS, MX, NS, SOA, SRV, TXT};

use crate::dns_answers::{assert_negative, assert_positive, www_a};
use crate::fixture::main_server;
use crate::harness::rcode::NOERROR;
use crate::harness::{
    Reply, Rr, a, aaaa, assert_rcode, assert_rrs, hex, mx, name, rr, srv, start, txt,
};

fn deleg_ns() -> Vec<Rr> {
    vec![
        rr("deleg.zone.test.", NS, 300, name("ns.deleg.zone.test.")),
        rr("deleg.zone.test.", NS, 300, name("ns.outside.example.")),
    ]
}

fn deleg_glue() -> Vec<Rr> {
    vec![
        rr("ns.deleg.zone.test.", A, 300, a("192.0.2.53")),
        rr("ns.deleg.zone.test.", AAAA, 300, aaaa("2001:db8::53")),
    ]
}

#[track_caller]
fn assert_referral(reply: &Reply) {
    assert_rcode(reply, NOERROR);
    assert!(
        !reply.aa(),
        "a referral is not authoritative (AA clear):\n{reply:?}"
    );
    assert_rrs(reply, &reply.answer, &[], "answer section of a referral");
    assert_rrs(
        reply,
        &reply.authority,
        &deleg_ns(),
        "authority section of a referral",
    );
    assert_rrs(
        reply,
        &reply.additional,
        &deleg_glue(),
        "additional section (in-bailiwick glue only)",
    );
}

#[tokio::test]
async fn names_below_a_delegation_get_a_referral_with_glue() {
    let server = main_server().await;
    for qname in [
        "x.deleg.zone.test.",
        "a.b.deleg.zone.test.",
        "ns.deleg.zone.test.",
    ] {
        for reply in server.both(qname, A).await {
            assert_referral(&reply);
        }
    }
}

#[tokio::test]
async fn the_delegation_point_itself_gets_a_referral_for_a_and_ns() {
    let server = main_server().await;
    for qtype in [A, NS, MX] {
        for reply in server.both("deleg.zone.test.", qtype).await {
            assert_referral(&reply);
        }
    }
}

#[tokio::test]
async fn ds_at_a_delegation_without_ds_is_nodata_from_the_parent() {
    let server = main_server().await;
    for reply in server.both("deleg.zone.test.", DS).await {
        assert_negative(&reply, NOERROR);
    }
}

const DS_CONFIG: &str = r#"
[dns]
[[dns.zones]]
name = "zone.test"
soa = { mname = "ns1.zone.test.", rname = "hostmaster.zone.test.", serial = 1, minimum = 60, ttl = 600 }
records = [
    { name = "@", type = "NS", values = ["ns1"] },
    { name = "ns1", type = "A", values = ["192.0.2.1"] },
    { name = "signed", type = "NS", values = ["ns.signed"] },
    { name = "ns.signed", type = "A", values = ["192.0.2.54"] },
    { name = "signed", type = "DS", ttl = 3600, values = ["12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"] },
    { name = "child", type = "NS", values = ["ns1.zone.test."] },
    { name = "child", type = "DS", values = ["54321 8 2 00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"] },
]

[[dns.zones]]
name = "child.zone.test"
records = [
    { name = "@", type = "NS", values = ["ns1.zone.test."] },
    { name = "www", type = "A", values = ["192.0.2.77"] },
]
"#;

#[tokio::test]
async fn ds_at_a_delegation_is_answered_by_the_parent() {
    let server = start(DS_CONFIG, &[]).await;
    let signed: Vec<u8> = [0x30, 0x39, 13, 2]
        .into_iter()
        .chain(hex(
            "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
        ))
        .collect();
    for reply in server.both("signed.zone.test.", DS).await {
        assert_positive(&reply, &[rr("signed.zone.test.", DS, 3600, signed.clone())]);
    }
    // The child zone is served too: its DS still comes from the parent side of the cut.
    let child: Vec<u8> = [0xd4, 0x31, 8, 2]
        .into_iter()
        .chain(hex(
            "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF",
        ))
        .collect();
    for reply in server.both("child.zone.test.", DS).await {
        assert_positive(&reply, &[rr("child.zone.test.", DS, 3600, child.clone())]);
    }
    for reply in server.both("www.child.zone.test.", A).await {
        assert_positive(
            &reply,
            &[rr("www.child.zone.test.", A, 3600, a("192.0.2.77"))],
        );
    }
}

#[tokio::test]
async fn mx_targets_in_zone_get_their_addresses_in_additional() {
    let server = main_server().await;
    for reply in server.both("zone.test.", MX).await {
        assert_positive(
            &reply,
            &[
                rr("zone.test.", MX, 300, mx(10, "mail.zone.test.")),
                rr("zone.test.", MX, 300, mx(20, "mail2.zone.test.")),
                rr("zone.test.", MX, 300, mx(30, "mx.example.net.")),
            ],
        );
        let want = [
            rr("mail.zone.test.", A, 300, a("192.0.2.25")),
            rr("mail2.zone.test.", A, 300, a("192.0.2.26")),
            rr("mail2.zone.test.", AAAA, 300, aaaa("2001:db8::26")),
        ];
        assert_rrs(
            &reply,
            &reply.additional,
            &want,
            "additional section: in-zone MX targets only",
        );
    }
}

#[tokio::test]
async fn srv_target_in_zone_gets_its_address_in_additional() {
    let server = main_server().await;
    for (owner, target, additional, what) in [
        (
            "_sip._tcp.zone.test.",
            srv(10, 60, 5060, "sip.zone.test."),
            vec![rr("sip.zone.test.", A, 300, a("192.0.2.60"))],
            "additional section",
        ),
        (
            "srvout.zone.test.",
            srv(0, 0, 443, "svc.example.net."),
            vec![],
            "additional section: out-of-zone target",
        ),
    ] {
        for reply in server.both(owner, SRV).await {
            assert_positive(&reply, &[rr(owner, SRV, 300, target.clone())]);
            assert_rrs(&reply, &reply.additional, &additional, what);
        }
    }
}

#[tokio::test]
async fn apex_ns_query_gets_server_addresses_in_additional() {
    let server = main_server().await;
    for reply in server.both("zone.test.", NS).await {
        assert_positive(
            &reply,
            &[
                rr("zone.test.", NS, 300, name("ns1.zone.test.")),
                rr("zone.test.", NS, 300, name("ns2.zone.test.")),
            ],
        );
        let want = [
            rr("ns1.zone.test.", A, 300, a("192.0.2.1")),
            rr("ns1.zone.test.", AAAA, 300, aaaa("2001:db8::1")),
            rr("ns2.zone.test.", A, 300, a("192.0.2.2")),
        ];
        assert_rrs(&reply, &reply.additional, &want, "additional section");
    }
}

#[tokio::test]
async fn any_query_returns_a_single_rrset() {
    let server = main_server().await;
    for (qname, candidates) in [
        (
            "www.zone.test.",
            vec![
                www_a(),
                vec![rr("www.zone.test.", AAAA, 60, aaaa("2001:db8::10"))],
            ],
        ),
        (
            "mail2.zone.test.",
            vec![
                vec![rr("mail2.zone.test.", A, 300, a("192.0.2.26"))],
                vec![rr("mail2.zone.test.", AAAA, 300, aaaa("2001:db8::26"))],
            ],
        ),
    ] {
        for reply in server.both(qname, ANY).await {
            assert_rcode(&reply, NOERROR);
            assert!(reply.aa(), "AA:\n{reply:?}");
            let mut got = reply.answer.clone();
            got.sort();
            let matches = candidates.iter().any(|c| {
                let mut c = c.clone();
                c.sort();
                c == got
            });
            assert!(
                matches,
                "ANY must return exactly one whole RRset of {qname} (RFC 8482), got:\n{reply:?}"
            );
        }
    }
    // The apex has NS, SOA and MX: still one RRset.
    for reply in server.both("zone.test.", ANY).await {
        let types: std::collections::BTreeSet<u16> = reply.answer.iter().map(|r| r.rtype).collect();
        assert_eq!(types.len(), 1, "one RRset type only:\n{reply:?}");
        let rtype = RecordType::from(*types.iter().next().unwrap());
        let expected_len = match rtype {
            NS => 2,
            SOA => 1,
            MX => 3,
            other => panic!("unexpected type {other} in ANY answer:\n{reply:?}"),
        };
        assert_eq!(
            reply.answer.len(),
            expected_len,
            "the whole {rtype} RRset:\n{reply:?}"
        );
    }
}

const PARENT_AND_CHILD: &str = r#"
[dns]
[[dns.zones]]
name = "zone.test"
records = [
    { name = "@", type = "NS", values = ["ns1.zone.test."] },
    { name = "ns1", type = "A", values = ["192.0.2.1"] },
    { name = "child", type = "NS", values = ["ns1.zone.test."] },
    { name = "child", type = "DS", values = ["54321 8 2 00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"] },
]

[[dns.zones]]
name = "child.zone.test"
records = [
    { name = "@", type = "NS", values = ["ns1.zone.test."] },
    { name = "@", type = "A", values = ["192.0.2.78"] },
    { name = "@", type = "TXT", values = ['"child apex"'] },
]
"#;

/// `child.zone.test` is a node in both zones (the parent's cut, the child's apex). Whichever
/// the server meets first while building its tables, A and TXT come from the child and DS from
/// the parent. Several servers are started because that order may vary from one to the next.
#[tokio::test]
async fn a_served_child_apex_answers_its_own_data_and_the_parent_answers_ds() {
    let ds: Vec<u8> = [0xd4, 0x31, 8, 2]
        .into_iter()
        .chain(hex(
            "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF",
        ))
        .collect();
    for _ in 0..8 {
        let server = start(PARENT_AND_CHILD, &[]).await;
        for reply in server.both("child.zone.test.", A).await {
            assert_positive(&reply, &[rr("child.zone.test.", A, 3600, a("192.0.2.78"))]);
        }
        for reply in server.both("child.zone.test.", TXT).await {
            assert_positive(
                &reply,
                &[rr("child.zone.test.", TXT, 3600, txt(&[b"child apex"]))],
            );
        }
        for reply in server.both("child.zone.test.", DS).await {
            assert_positive(&reply, &[rr("child.zone.test.", DS, 3600, ds.clone())]);
        }
    }
}
