//! The answer algorithm (RFC 1034 §4.3.2, RFC 2308, RFC 4592, RFC 8482), each check made over
//! UDP and over TCP through the hickory client against the shared test zones.

use hickory_proto::rr::RecordType::{A, AAAA, CNAME, MX, SOA, TXT};

use crate::fixture::{OTHER_NEGATIVE_TTL, ZONE_NEGATIVE_TTL, main_server, other_soa, zone_soa};
use crate::harness::rcode::{NOERROR, NXDOMAIN};
use crate::harness::{Reply, Rr, a, aaaa, assert_rcode, assert_rrs, name, rr, txt};

pub fn www_a() -> Vec<Rr> {
    vec![
        rr("www.zone.test.", A, 60, a("192.0.2.10")),
        rr("www.zone.test.", A, 60, a("192.0.2.11")),
    ]
}

pub fn negative_soa() -> Rr {
    rr("zone.test.", SOA, ZONE_NEGATIVE_TTL, zone_soa())
}

/// A positive, authoritative answer: NOERROR, AA, exactly `answer`, nothing in authority.
#[track_caller]
pub fn assert_positive(reply: &Reply, answer: &[Rr]) {
    assert_rcode(reply, NOERROR);
    assert!(
        reply.aa(),
        "AA must be set on an authoritative answer:\n{reply:?}"
    );
    assert!(!reply.tc(), "TC must be clear:\n{reply:?}");
    assert_rrs(reply, &reply.answer, answer, "answer section");
    assert_rrs(
        reply,
        &reply.authority,
        &[],
        "authority section (minimal responses: no NS)",
    );
}

/// A negative answer from zone.test: AA, no answer, the SOA with the negative TTL.
#[track_caller]
pub fn assert_negative(reply: &Reply, rcode: u16) {
    assert_rcode(reply, rcode);
    assert!(
        reply.aa(),
        "AA must be set on an authoritative negative answer:\n{reply:?}"
    );
    assert_rrs(reply, &reply.answer, &[], "answer section");
    assert_rrs(
        reply,
        &reply.authority,
        &[negative_soa()],
        "authority section: SOA with TTL min(SOA TTL, MINIMUM)",
    );
    assert_rrs(reply, &reply.additional, &[], "additional section");
}

#[tokio::test]
async fn authoritative_answer_sets_aa_and_carries_no_ns_in_authority() {
    let server = main_server().await;
    for reply in server.both("www.zone.test.", A).await {
        assert_positive(&reply, &www_a());
        assert_rrs(&reply, &reply.additional, &[], "additional section");
    }
    for reply in server.both("www.zone.test.", AAAA).await {
        assert_positive(
            &reply,
            &[rr("www.zone.test.", AAAA, 60, aaaa("2001:db8::10"))],
        );
    }
}

#[tokio::test]
async fn nxdomain_carries_soa_with_negative_ttl() {
    let server = main_server().await;
    for qname in [
        "nothere.zone.test.",
        "deeper.nothere.zone.test.",
        "zz.b.zone.test.",
    ] {
        for reply in server.both(qname, A).await {
            assert_negative(&reply, NXDOMAIN);
        }
    }
}

#[tokio::test]
async fn nodata_carries_soa_with_negative_ttl() {
    let server = main_server().await;
    for (qname, qtype) in [
        ("www.zone.test.", MX),
        ("www.zone.test.", TXT),
        ("zone.test.", A),
        ("mail.zone.test.", AAAA),
    ] {
        for reply in server.both(qname, qtype).await {
            assert_negative(&reply, NOERROR);
        }
    }
}

#[tokio::test]
async fn negative_ttl_is_the_soa_ttl_when_it_is_below_minimum() {
    let server = main_server().await;
    for reply in server.both("nothere.other.test.", A).await {
        assert_rcode(&reply, NXDOMAIN);
        assert_rrs(
            &reply,
            &reply.authority,
            &[rr("other.test.", SOA, OTHER_NEGATIVE_TTL, other_soa())],
            "authority section",
        );
    }
    for reply in server.both("host.other.test.", MX).await {
        assert_rcode(&reply, NOERROR);
        assert_rrs(
            &reply,
            &reply.authority,
            &[rr("other.test.", SOA, OTHER_NEGATIVE_TTL, other_soa())],
            "authority section",
        );
    }
}

#[tokio::test]
async fn soa_query_returns_the_soa_with_its_own_ttl() {
    let server = main_server().await;
    for reply in server.both("zone.test.", SOA).await {
        assert_positive(&reply, &[rr("zone.test.", SOA, 600, zone_soa())]);
    }
}

#[tokio::test]
async fn empty_non_terminal_is_nodata_not_nxdomain() {
    let server = main_server().await;
    for reply in server.both("b.zone.test.", A).await {
        assert_negative(&reply, NOERROR);
    }
    // The ENT created by a wildcard's parent is no different.
    for reply in server.both("sub2.w.zone.test.", A).await {
        assert_negative(&reply, NOERROR);
    }
}

#[tokio::test]
async fn wildcard_synthesizes_records_owned_by_the_query_name() {
    let server = main_server().await;
    for reply in server.both("foo.w.zone.test.", A).await {
        assert_positive(&reply, &[rr("foo.w.zone.test.", A, 300, a("192.0.2.30"))]);
    }
    for reply in server.both("foo.w.zone.test.", TXT).await {
        assert_positive(&reply, &[rr("foo.w.zone.test.", TXT, 300, txt(&[b"wild"]))]);
    }
}

#[tokio::test]
async fn wildcard_matches_several_labels_below_the_closest_encloser() {
    let server = main_server().await;
    for reply in server.both("x.y.w.zone.test.", A).await {
        assert_positive(&reply, &[rr("x.y.w.zone.test.", A, 300, a("192.0.2.30"))]);
    }
}

#[tokio::test]
async fn wildcard_does_not_apply_to_an_existing_name() {
    let server = main_server().await;
    for reply in server.both("host.w.zone.test.", A).await {
        assert_positive(&reply, &[rr("host.w.zone.test.", A, 300, a("192.0.2.31"))]);
    }
    // host.w has no TXT: NODATA, not the wildcard's TXT.
    for reply in server.both("host.w.zone.test.", TXT).await {
        assert_negative(&reply, NOERROR);
    }
}

#[tokio::test]
async fn wildcard_does_not_apply_below_an_existing_name_or_empty_non_terminal() {
    let server = main_server().await;
    // sub.w exists and has no *.sub.w; ent.w is an empty non-terminal (deep.ent.w exists).
    for qname in [
        "a.sub.w.zone.test.",
        "a.ent.w.zone.test.",
        "x.deep.ent.w.zone.test.",
    ] {
        for reply in server.both(qname, A).await {
            assert_negative(&reply, NXDOMAIN);
        }
    }
}

#[tokio::test]
async fn wildcard_below_an_existing_name_applies_to_its_children() {
    let server = main_server().await;
    for reply in server.both("a.sub2.w.zone.test.", A).await {
        assert_positive(
            &reply,
            &[rr("a.sub2.w.zone.test.", A, 300, a("192.0.2.33"))],
        );
    }
}

#[tokio::test]
async fn wildcard_match_with_missing_type_is_nodata() {
    let server = main_server().await;
    for reply in server.both("foo.w.zone.test.", MX).await {
        assert_negative(&reply, NOERROR);
    }
}

#[tokio::test]
async fn wildcard_cname_is_synthesized_and_chased() {
    let server = main_server().await;
    for reply in server.both("foo.wc.zone.test.", A).await {
        let mut want = vec![rr("foo.wc.zone.test.", CNAME, 300, name("www.zone.test."))];
        want.extend(www_a());
        assert_positive(&reply, &want);
        assert_eq!(
            reply.answer[0].rtype, 5,
            "the CNAME comes first:\n{reply:?}"
        );
    }
}

#[tokio::test]
async fn cname_chain_is_chased_inside_the_zone() {
    let server = main_server().await;
    for reply in server.both("c1.zone.test.", A).await {
        let mut want = vec![
            rr("c1.zone.test.", CNAME, 300, name("c2.zone.test.")),
            rr("c2.zone.test.", CNAME, 300, name("www.zone.test.")),
        ];
        want.extend(www_a());
        assert_positive(&reply, &want);
        let order: Vec<&str> = reply.answer.iter().map(|r| r.owner.as_str()).collect();
        assert_eq!(
            &order[..2],
            ["c1.zone.test.", "c2.zone.test."],
            "chain in order:\n{reply:?}"
        );
    }
}

#[tokio::test]
async fn cname_chain_is_chased_across_served_zones() {
    let server = main_server().await;
    for reply in server.both("cross.zone.test.", A).await {
        assert_positive(
            &reply,
            &[
                rr("cross.zone.test.", CNAME, 300, name("host.other.test.")),
                rr("host.other.test.", A, 300, a("192.0.2.100")),
            ],
        );
    }
}

#[tokio::test]
async fn cname_to_out_of_zone_target_returns_only_the_cname() {
    let server = main_server().await;
    for reply in server.both("out.zone.test.", A).await {
        assert_positive(
            &reply,
            &[rr(
                "out.zone.test.",
                CNAME,
                300,
                name("target.example.net."),
            )],
        );
        assert_rrs(&reply, &reply.additional, &[], "additional section");
    }
}

#[tokio::test]
async fn cname_to_missing_in_zone_name_gives_the_cname_and_nxdomain() {
    let server = main_server().await;
    for reply in server.both("dangling.zone.test.", A).await {
        assert_rcode(&reply, NXDOMAIN);
        assert!(reply.aa(), "AA:\n{reply:?}");
        assert_rrs(
            &reply,
            &reply.answer,
            &[rr(
                "dangling.zone.test.",
                CNAME,
                300,
                name("nothere.zone.test."),
            )],
            "answer section",
        );
        assert_rrs(
            &reply,
            &reply.authority,
            &[negative_soa()],
            "authority section",
        );
    }
}

#[tokio::test]
async fn cname_to_a_name_without_the_type_is_nodata_after_the_cname() {
    let server = main_server().await;
    for reply in server.both("c1.zone.test.", MX).await {
        assert_rcode(&reply, NOERROR);
        assert!(reply.aa(), "AA:\n{reply:?}");
        let want = [
            rr("c1.zone.test.", CNAME, 300, name("c2.zone.test.")),
            rr("c2.zone.test.", CNAME, 300, name("www.zone.test.")),
        ];
        assert_rrs(&reply, &reply.answer, &want, "answer section: the chain");
        assert_rrs(
            &reply,
            &reply.authority,
            &[negative_soa()],
            "authority section: SOA for the NODATA at the end",
        );
    }
}

#[tokio::test]
async fn cname_loop_is_cut_and_still_answered() {
    let server = main_server().await;
    for reply in server.both("loop1.zone.test.", A).await {
        assert_positive(
            &reply,
            &[
                rr("loop1.zone.test.", CNAME, 300, name("loop2.zone.test.")),
                rr("loop2.zone.test.", CNAME, 300, name("loop1.zone.test.")),
            ],
        );
    }
}

#[tokio::test]
async fn cname_query_returns_only_the_cname() {
    let server = main_server().await;
    for reply in server.both("c1.zone.test.", CNAME).await {
        assert_positive(
            &reply,
            &[rr("c1.zone.test.", CNAME, 300, name("c2.zone.test."))],
        );
    }
}
