//! Protocol behaviour: EDNS (RFC 6891), truncation (RFC 1035 §4.2.1, RFC 2181 §9), error
//! responses, CHAOS, and qname case; hand-built queries over UDP and TCP.

use std::collections::BTreeMap;

use hickory_proto::op::OpCode;
use hickory_proto::rr::DNSClass;
use hickory_proto::rr::RecordType::{self, A, AXFR, CNAME, IXFR, MX, TXT};

use crate::fixture::{filler, main_config, main_server};
use crate::harness::rcode::{BADVERS, FORMERR, NOERROR, NOTIMP, REFUSED};
use crate::harness::{
    Reply, SILENCE, a, assert_rcode, assert_rrs, framed, q, rr, start, tcp_connect, txt,
    udp_exchange_within,
};

fn txt_set(owner: &str, prefix: &str, n: usize) -> Vec<crate::harness::Rr> {
    (0..n)
        .map(|i| rr(owner, TXT, 300, txt(&[filler(prefix, i).as_bytes()])))
        .collect()
}

#[tokio::test]
async fn opt_is_in_the_reply_only_when_the_query_had_one() {
    let server = main_server().await;
    for reply in server.raw_both(&q("www.zone.test.", A)).await {
        assert_rcode(&reply, NOERROR);
        assert_eq!(
            reply.opt, None,
            "no OPT in a reply to a query without one:\n{reply:?}"
        );
        assert_eq!(reply.answer.len(), 2, "{reply:?}");
    }
    for reply in server.raw_both(&q("www.zone.test.", A).edns(1232)).await {
        assert_rcode(&reply, NOERROR);
        let opt = reply
            .opt
            .clone()
            .unwrap_or_else(|| panic!("OPT expected:\n{reply:?}"));
        assert_eq!(
            (opt.version, opt.ext_rcode, opt.dnssec_ok),
            (0, 0, false),
            "{reply:?}"
        );
        assert_eq!(reply.answer.len(), 2, "{reply:?}");
    }
    // Negative and error answers follow the same rule.
    for reply in server
        .raw_both(&q("nothere.zone.test.", A).edns(1232))
        .await
    {
        assert!(reply.opt.is_some(), "OPT on NXDOMAIN:\n{reply:?}");
    }
    for reply in server.raw_both(&q("example.com.", A).edns(1232)).await {
        assert_rcode(&reply, REFUSED);
        assert!(reply.opt.is_some(), "OPT on REFUSED:\n{reply:?}");
    }
}

#[tokio::test]
async fn edns_payload_is_honoured_and_capped_at_the_default_1232() {
    let server = main_server().await;
    // mid: 20 TXT records, about 900 bytes: fits 1232, not 600.
    let reply = server.raw_udp(&q("mid.zone.test.", TXT).edns(4096)).await;
    assert!(!reply.tc(), "fits in 1232:\n{reply:?}");
    assert_rrs(
        &reply,
        &reply.answer,
        &txt_set("mid.zone.test.", "mid", 20),
        "answer",
    );
    assert_eq!(
        reply.opt.as_ref().map(|o| o.payload),
        Some(1232),
        "we advertise our own payload size:\n{reply:?}"
    );
    let reply = server.raw_udp(&q("mid.zone.test.", TXT).edns(600)).await;
    assert!(
        reply.tc(),
        "does not fit in the 600 bytes offered:\n{reply:?}"
    );
    assert!(
        reply.bytes.len() <= 600,
        "{} bytes > 600 offered",
        reply.bytes.len()
    );
    assert_eq!(reply.answer.len(), 0, "no partial RRset:\n{reply:?}");
    // big: 40 TXT records, about 1750 bytes: the client offers 4096, we cap at 1232.
    let reply = server.raw_udp(&q("big.zone.test.", TXT).edns(4096)).await;
    assert!(reply.tc(), "capped at 1232, so truncated:\n{reply:?}");
    assert!(
        reply.bytes.len() <= 1232,
        "{} bytes > 1232 cap",
        reply.bytes.len()
    );
    assert_eq!(reply.answer.len(), 0, "no partial RRset:\n{reply:?}");
}

#[tokio::test]
async fn configured_max_udp_payload_is_advertised_and_used_as_the_cap() {
    let config = main_config().replace("[dns]\n", "[dns]\nmax_udp_payload = 4000\n");
    let server = start(&config, &[]).await;
    let reply = server.raw_udp(&q("big.zone.test.", TXT).edns(4096)).await;
    assert!(!reply.tc(), "1750 bytes fit in 4000:\n{reply:?}");
    assert!(reply.bytes.len() <= 4000);
    assert_rrs(
        &reply,
        &reply.answer,
        &txt_set("big.zone.test.", "big", 40),
        "answer",
    );
    assert_eq!(
        reply.opt.as_ref().map(|o| o.payload),
        Some(4000),
        "{reply:?}"
    );
    let reply = server.raw_udp(&q("big.zone.test.", TXT).edns(1500)).await;
    assert!(
        reply.tc() && reply.bytes.len() <= 1500 && reply.answer.is_empty(),
        "the client's 1500 is honoured:\n{reply:?}"
    );
}

#[tokio::test]
async fn edns_version_1_gets_badvers_with_an_opt() {
    let server = main_server().await;
    for reply in server
        .raw_both(&q("www.zone.test.", A).edns(1232).edns_version(1).id(777))
        .await
    {
        assert_eq!(reply.id, 777);
        assert_rcode(&reply, BADVERS);
        let opt = reply
            .opt
            .clone()
            .unwrap_or_else(|| panic!("BADVERS needs an OPT:\n{reply:?}"));
        assert_eq!(
            (opt.ext_rcode, opt.version),
            (1, 0),
            "extended rcode 1 (16 >> 4), our version 0:\n{reply:?}"
        );
        assert!(reply.answer.is_empty(), "{reply:?}");
    }
}

#[tokio::test]
async fn do_bit_is_echoed() {
    let server = main_server().await;
    for reply in server
        .raw_both(&q("www.zone.test.", A).edns(1232).dnssec_ok())
        .await
    {
        assert_eq!(
            reply.opt.as_ref().map(|o| o.dnssec_ok),
            Some(true),
            "DO echoed:\n{reply:?}"
        );
    }
    for reply in server.raw_both(&q("www.zone.test.", A).edns(1232)).await {
        assert_eq!(
            reply.opt.as_ref().map(|o| o.dnssec_ok),
            Some(false),
            "DO clear when not asked:\n{reply:?}"
        );
    }
}

#[tokio::test]
async fn udp_without_edns_truncates_to_512_bytes_dropping_whole_rrsets() {
    let server = main_server().await;
    for qname in ["big.zone.test.", "mid.zone.test."] {
        let reply = server.raw_udp(&q(qname, TXT)).await;
        assert!(reply.tc(), "TC must be set:\n{reply:?}");
        assert!(
            reply.bytes.len() <= 512,
            "{} bytes > 512",
            reply.bytes.len()
        );
        assert_eq!(
            reply.question.as_ref().map(|q| q.0.as_str()),
            Some(qname),
            "question kept"
        );
        // Either the whole RRset or none of it (RFC 2181 §9); the whole one cannot fit.
        assert_eq!(
            reply.answer.len(),
            0,
            "no partial RRset in a truncated reply:\n{reply:?}"
        );
    }
}

#[tokio::test]
async fn udp_with_edns_1232_stays_within_1232_bytes() {
    let server = main_server().await;
    let reply = server.raw_udp(&q("big.zone.test.", TXT).edns(1232)).await;
    assert!(reply.tc() && reply.bytes.len() <= 1232, "{reply:?}");
    assert!(
        reply.answer.is_empty() || reply.answer.len() == 40,
        "no partial RRset:\n{reply:?}"
    );
    let reply = server.raw_udp(&q("mid.zone.test.", TXT).edns(1232)).await;
    assert!(!reply.tc() && reply.bytes.len() <= 1232, "{reply:?}");
    assert_rrs(
        &reply,
        &reply.answer,
        &txt_set("mid.zone.test.", "mid", 20),
        "answer",
    );
}

#[tokio::test]
async fn tcp_returns_the_full_answer_without_tc() {
    let server = main_server().await;
    for query in [q("big.zone.test.", TXT), q("big.zone.test.", TXT).edns(512)] {
        let reply = server.raw_tcp(&query).await;
        assert!(!reply.tc(), "TC over TCP:\n{reply:?}");
        assert_rrs(
            &reply,
            &reply.answer,
            &txt_set("big.zone.test.", "big", 40),
            "answer over TCP",
        );
    }
    let reply = server.tcp("big.zone.test.", TXT).await;
    assert!(!reply.tc());
    assert_rrs(
        &reply,
        &reply.answer,
        &txt_set("big.zone.test.", "big", 40),
        "answer over TCP (hickory)",
    );
}

#[tokio::test]
async fn additional_records_that_do_not_fit_are_dropped_without_tc() {
    let server = main_server().await;
    let all_mx: Vec<_> = (1..=8)
        .map(|i| {
            rr(
                "addl.zone.test.",
                MX,
                300,
                crate::harness::mx(i, &format!("m{i}.addl.zone.test.")),
            )
        })
        .collect();
    let reply = server.raw_udp(&q("addl.zone.test.", MX)).await;
    assert!(
        !reply.tc(),
        "dropping additional data is not truncation:\n{reply:?}"
    );
    assert!(
        reply.bytes.len() <= 512,
        "{} bytes > 512",
        reply.bytes.len()
    );
    assert_rrs(&reply, &reply.answer, &all_mx, "answer");
    assert!(
        !reply.additional.is_empty() && reply.additional.len() < 64,
        "some, not all, additional records:\n{reply:?}"
    );
    let mut sets: BTreeMap<(String, u16), usize> = BTreeMap::new();
    for r in &reply.additional {
        *sets.entry((r.owner.clone(), r.rtype)).or_default() += 1;
    }
    assert!(
        sets.values().all(|&n| n == 4),
        "additional RRsets are whole (4 records each): {sets:?}"
    );
    let reply = server.raw_tcp(&q("addl.zone.test.", MX)).await;
    assert!(!reply.tc());
    assert_eq!(
        reply.additional.len(),
        64,
        "every address over TCP:\n{reply:?}"
    );
}

#[tokio::test]
async fn names_outside_every_zone_are_refused() {
    let server = main_server().await;
    for qname in ["example.com.", "test.", ".", "zone.test.example."] {
        for reply in server.both(qname, A).await {
            assert_rcode(&reply, REFUSED);
            assert!(!reply.aa(), "AA clear on REFUSED:\n{reply:?}");
            assert!(
                reply.answer.is_empty()
                    && reply.authority.is_empty()
                    && reply.additional.is_empty(),
                "{reply:?}"
            );
        }
    }
}

#[tokio::test]
async fn status_and_notify_get_notimp_and_update_is_refused() {
    let server = main_server().await;
    for (opcode, code) in [(OpCode::Status, 2), (OpCode::Notify, 4)] {
        for reply in server
            .raw_both(&q("zone.test.", RecordType::SOA).opcode(opcode).id(4242))
            .await
        {
            assert_eq!(reply.id, 4242, "same id:\n{reply:?}");
            assert!(reply.is_response(), "QR set:\n{reply:?}");
            assert_eq!(reply.opcode(), code, "opcode echoed:\n{reply:?}");
            assert_rcode(&reply, NOTIMP);
        }
    }
    // UPDATE is understood, and refused: no zone here allows updates (and it is unsigned).
    for reply in server
        .raw_both(
            &q("zone.test.", RecordType::SOA)
                .opcode(OpCode::Update)
                .id(4242),
        )
        .await
    {
        assert_eq!((reply.id, reply.opcode()), (4242, 5), "{reply:?}");
        assert_rcode(&reply, REFUSED);
    }
}

#[tokio::test]
async fn zone_transfers_are_refused_by_default() {
    let server = main_server().await;
    for qtype in [AXFR, IXFR] {
        for reply in server.raw_both(&q("zone.test.", qtype)).await {
            assert_rcode(&reply, REFUSED);
            assert!(reply.answer.is_empty(), "{reply:?}");
        }
    }
}

/// Sends raw bytes over UDP and over TCP; returns the replies (None where there was none).
async fn raw_bytes_both(server: &crate::harness::TestServer, bytes: &[u8]) -> [Option<Reply>; 2] {
    let udp = udp_exchange_within(server.addr(), bytes, SILENCE)
        .await
        .map(|b| Reply::new("udp", b));
    let mut stream = tcp_connect(server.addr()).await;
    tokio::io::AsyncWriteExt::write_all(&mut stream, &framed(bytes))
        .await
        .unwrap();
    let tcp = crate::harness::tcp_recv_within(&mut stream, SILENCE)
        .await
        .map(|b| Reply::new("tcp", b));
    [udp, tcp]
}

#[tokio::test]
async fn truncated_question_gets_formerr_with_the_same_id() {
    let server = main_server().await;
    let whole = q("www.zone.test.", A).id(0xbeef).bytes();
    for cut in [3, 6] {
        for reply in raw_bytes_both(&server, &whole[..whole.len() - cut]).await {
            let reply = reply.expect("a FORMERR reply");
            assert_eq!(reply.id, 0xbeef, "{reply:?}");
            assert!(reply.is_response(), "{reply:?}");
            assert_rcode(&reply, FORMERR);
        }
    }
}

#[tokio::test]
async fn garbage_after_a_valid_header_gets_formerr_with_the_same_id() {
    let server = main_server().await;
    let mut bytes = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    bytes.extend_from_slice(b"\xff\xfe\x00garbage that is no question");
    for reply in raw_bytes_both(&server, &bytes).await {
        let reply = reply.expect("a FORMERR reply");
        assert_eq!(reply.id, 0x1234, "{reply:?}");
        assert_rcode(&reply, FORMERR);
    }
}

#[tokio::test]
async fn queries_without_exactly_one_question_get_formerr() {
    let server = main_server().await;
    let none = vec![0xab, 0xcd, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
    let one = q("www.zone.test.", A).id(0xabce).bytes();
    let mut two = one.clone();
    two[5] = 2;
    two.extend_from_slice(&one[12..]);
    for (bytes, id) in [(none, 0xabcd), (two, 0xabce)] {
        for reply in raw_bytes_both(&server, &bytes).await {
            let reply = reply.expect("a FORMERR reply");
            assert_eq!(reply.id, id, "{reply:?}");
            assert_rcode(&reply, FORMERR);
            assert!(reply.answer.is_empty(), "{reply:?}");
        }
    }
}

#[tokio::test]
async fn a_query_with_two_opt_records_gets_formerr() {
    let server = main_server().await;
    let mut bytes = q("www.zone.test.", A).edns(1232).id(0x0707).bytes();
    let opt = bytes[bytes.len() - 11..].to_vec();
    bytes.extend_from_slice(&opt);
    bytes[11] = 2;
    for reply in raw_bytes_both(&server, &bytes).await {
        let reply = reply.expect("a FORMERR reply (RFC 6891 §6.1.1)");
        assert_eq!(reply.id, 0x0707, "{reply:?}");
        assert_rcode(&reply, FORMERR);
    }
}

#[tokio::test]
async fn header_copies_rd_and_cd_and_never_sets_ra_or_ad() {
    let server = main_server().await;
    for (rd, cd) in [(true, true), (false, false)] {
        let mut bytes = q("www.zone.test.", A).bytes();
        bytes[2] = (bytes[2] & !0x01) | u8::from(rd);
        bytes[3] = (bytes[3] & !0x10) | (u8::from(cd) << 4);
        for reply in raw_bytes_both(&server, &bytes).await {
            let reply = reply.expect("a reply");
            assert_rcode(&reply, NOERROR);
            assert_eq!(reply.flags & 0x0100 != 0, rd, "RD copied:\n{reply:?}");
            assert_eq!(reply.flags & 0x0010 != 0, cd, "CD copied:\n{reply:?}");
            assert_eq!(
                reply.flags & 0x0080,
                0,
                "RA clear on an authoritative-only server:\n{reply:?}"
            );
            assert_eq!(reply.flags & 0x0020, 0, "AD clear:\n{reply:?}");
            assert_eq!(reply.flags & 0x0040, 0, "Z clear:\n{reply:?}");
        }
    }
}

#[tokio::test]
async fn packets_shorter_than_a_header_get_no_reply() {
    let server = main_server().await;
    let bytes = &q("www.zone.test.", A).bytes()[..11];
    assert!(
        udp_exchange_within(server.addr(), bytes, SILENCE)
            .await
            .is_none(),
        "no reply to 11 bytes"
    );
    // The server is alive: silence was a decision, not a crash.
    assert_rcode(&server.raw_udp(&q("www.zone.test.", A)).await, NOERROR);
}

#[tokio::test]
async fn packets_with_qr_set_get_no_reply() {
    let server = main_server().await;
    let mut bytes = q("www.zone.test.", A).bytes();
    bytes[2] |= 0x80;
    for reply in raw_bytes_both(&server, &bytes).await {
        assert!(reply.is_none(), "no reply to a response: {reply:?}");
    }
    assert_rcode(&server.raw_udp(&q("www.zone.test.", A)).await, NOERROR);
}

#[tokio::test]
async fn query_name_case_is_echoed_as_sent() {
    let server = main_server().await;
    for (qname, qtype) in [
        ("WwW.ZoNe.TeSt.", A),
        ("FoO.w.ZONE.test.", A),
        ("C1.Zone.Test.", CNAME),
    ] {
        for reply in server.raw_both(&q(qname, qtype)).await {
            assert_rcode(&reply, NOERROR);
            assert_eq!(
                reply.question.as_ref().map(|q| q.0.as_str()),
                Some(qname),
                "question as sent:\n{reply:?}"
            );
            assert!(!reply.answer.is_empty(), "{reply:?}");
            assert_eq!(
                reply.answer[0].owner, qname,
                "answer owner as sent:\n{reply:?}"
            );
        }
    }
}

/// Classes other than IN and CH are refused, QCLASS ANY included (as NSD and Knot do): an
/// authoritative server of class IN data has no answer "in any class" to give.
#[tokio::test]
async fn queries_of_class_any_none_or_hs_are_refused() {
    let server = main_server().await;
    for class in [DNSClass::ANY, DNSClass::NONE, DNSClass::HS] {
        for reply in server.raw_both(&q("www.zone.test.", A).class(class)).await {
            assert_rcode(&reply, REFUSED);
            assert!(
                reply.answer.is_empty() && !reply.aa(),
                "{class:?}:\n{reply:?}"
            );
        }
    }
}

/// Names in a negative answer's SOA follow the query's spelling too: they compress against
/// the question, as NSD and Knot write them (the zone's own case would show otherwise).
#[tokio::test]
async fn negative_answer_names_echo_the_query_case() {
    let server = main_server().await;
    let wire = |name: &str| -> Vec<u8> {
        let mut out = Vec::new();
        for label in name.trim_end_matches('.').split('.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    };
    for reply in server.raw_both(&q("NoPe.ZoNe.TeSt.", A)).await {
        assert_rcode(&reply, crate::harness::rcode::NXDOMAIN);
        let soa = &reply.authority[0];
        assert_eq!(soa.owner, "ZoNe.TeSt.", "SOA owner as asked:\n{reply:?}");
        let mname = wire("ns1.ZoNe.TeSt.");
        assert!(
            soa.rdata.windows(mname.len()).any(|w| w == mname),
            "SOA MNAME in the query's spelling:\n{reply:?}"
        );
    }
}

#[tokio::test]
async fn chaos_version_bind_is_refused_by_default() {
    let server = main_server().await;
    for qname in ["version.bind.", "id.server."] {
        for reply in server.raw_both(&q(qname, TXT).class(DNSClass::CH)).await {
            assert_rcode(&reply, REFUSED);
            assert!(reply.answer.is_empty(), "{reply:?}");
        }
    }
}

fn chaos_txt(owner: &str, text: &str) -> crate::harness::Rr {
    let mut record = rr(owner, TXT, 0, txt(&[text.as_bytes()]));
    record.class = 3;
    record
}

#[tokio::test]
async fn chaos_version_bind_is_answered_when_configured() {
    let config = main_config().replace(
        "[dns]\n",
        "[dns]\nchaos = { version = \"edgewise-test 1.2\" }\n",
    );
    let server = start(&config, &[]).await;
    for qname in ["version.bind.", "VERSION.server."] {
        for reply in server.raw_both(&q(qname, TXT).class(DNSClass::CH)).await {
            assert_rcode(&reply, NOERROR);
            assert_rrs(
                &reply,
                &reply.answer,
                &[chaos_txt(qname, "edgewise-test 1.2")],
                "CHAOS answer",
            );
        }
    }
    // id is not configured: still refused.
    for reply in server
        .raw_both(&q("id.server.", TXT).class(DNSClass::CH))
        .await
    {
        assert_rcode(&reply, REFUSED);
    }
}

#[tokio::test]
async fn chaos_id_server_is_answered_when_configured() {
    let config = main_config().replace("[dns]\n", "[dns]\nchaos = { id = \"ns-test-1\" }\n");
    let server = start(&config, &[]).await;
    for qname in ["id.server.", "hostname.bind."] {
        for reply in server.raw_both(&q(qname, TXT).class(DNSClass::CH)).await {
            assert_rcode(&reply, NOERROR);
            assert_rrs(
                &reply,
                &reply.answer,
                &[chaos_txt(qname, "ns-test-1")],
                "CHAOS answer",
            );
        }
    }
    for reply in server
        .raw_both(&q("version.bind.", TXT).class(DNSClass::CH))
        .await
    {
        assert_rcode(&reply, REFUSED);
    }
    // IN-class data is unaffected.
    let reply = server.raw_udp(&q("www.zone.test.", A)).await;
    let want = [
        rr("www.zone.test.", A, 60, a("192.0.2.10")),
        rr("www.zone.test.", A, 60, a("192.0.2.11")),
    ];
    assert_rrs(&reply, &reply.answer, &want, "IN answer");
}
