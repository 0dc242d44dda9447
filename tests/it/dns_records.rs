//! Every record type loads (from TOML `values` and from a zone file) and is served with its
//! exact RDATA, owner and TTL. Checked byte for byte over UDP (EDNS) and TCP.

use hickory_proto::rr::RecordType::{
    self, A, AAAA, CAA, CNAME, DS, HINFO, HTTPS, MX, NAPTR, NS, PTR, SOA, SRV, SSHFP, SVCB, TLSA,
    TXT,
};

use crate::harness::rcode::NOERROR;
use crate::harness::{
    Rr, TestServer, a, aaaa, assert_rcode, assert_rrs, hex, mx, name, q, rr, soa, srv, start, txt,
};

/// Asks `qname`/`qtype` over UDP and TCP and expects exactly `want` in the answer.
async fn expect(server: &TestServer, qname: &str, qtype: RecordType, want: &[Rr]) {
    for reply in server.raw_both(&q(qname, qtype).edns(1232)).await {
        assert_rcode(&reply, NOERROR);
        assert!(reply.aa() && !reply.tc(), "{reply:?}");
        assert_rrs(
            &reply,
            &reply.answer,
            want,
            &format!("answer to {qname} {qtype}"),
        );
    }
}

fn caa(flags: u8, tag: &str, value: &str) -> Vec<u8> {
    let mut out = vec![flags, tag.len() as u8];
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(value.as_bytes());
    out
}

const INLINE: &str = r#"
[dns]
[[dns.zones]]
name = "rt.test"
ttl = 900
soa = { mname = "ns1", rname = "admin.rt.test.", serial = 99, refresh = "2h", retry = "10m", expire = "7d", minimum = "90s", ttl = 1800 }
records = [
    { name = "@", type = "NS", values = ["ns1.rt.test.", "ns2"] },
    { name = "ns1", type = "A", values = ["192.0.2.1"] },
    { name = "v4", type = "A", ttl = 120, values = ["192.0.2.4", "198.51.100.4"] },
    { name = "v6", type = "aaaa", values = ["2001:db8::6", "::ffff:192.0.2.6"] },
    { name = "alias", type = "CNAME", values = ["v4"] },
    { name = "caa", type = "CAA", values = ['0 issue "letsencrypt.org"', '128 tbs "Unknown"', '0 iodef "mailto:security@rt.test"'] },
    { name = "@", type = "MX", values = ["10 mail.example.net.", "20 mx2"] },
    { name = "naptr", type = "NAPTR", values = ['100 10 "U" "E2U+sip" "!^.*$!sip:info@rt.test!" .'] },
    { name = "4.2.0.192.in-addr.arpa.rt.test.", type = "PTR", values = ["v4.rt.test."] },
    { name = "_sip._udp", type = "SRV", values = ["5 10 5060 sip.example.net."] },
    { name = "txt", type = "TXT", values = ['"hello world" "second"', '"quote \" inside" "semi;colon" "back\\slash"', '""', '"\065\066C"'] },
]
"#;

#[tokio::test]
async fn inline_records_of_every_common_type_round_trip_exactly() {
    let server = start(INLINE, &[]).await;
    let s = &server;
    expect(
        s,
        "rt.test.",
        SOA,
        &[rr(
            "rt.test.",
            SOA,
            1800,
            soa(
                "ns1.rt.test.",
                "admin.rt.test.",
                [99, 7200, 600, 604_800, 90],
            ),
        )],
    )
    .await;
    expect(
        s,
        "rt.test.",
        NS,
        &[
            rr("rt.test.", NS, 900, name("ns1.rt.test.")),
            rr("rt.test.", NS, 900, name("ns2.rt.test.")),
        ],
    )
    .await;
    expect(
        s,
        "v4.rt.test.",
        A,
        &[
            rr("v4.rt.test.", A, 120, a("192.0.2.4")),
            rr("v4.rt.test.", A, 120, a("198.51.100.4")),
        ],
    )
    .await;
    expect(
        s,
        "v6.rt.test.",
        AAAA,
        &[
            rr("v6.rt.test.", AAAA, 900, aaaa("2001:db8::6")),
            rr("v6.rt.test.", AAAA, 900, aaaa("::ffff:192.0.2.6")),
        ],
    )
    .await;
    expect(
        s,
        "alias.rt.test.",
        CNAME,
        &[rr("alias.rt.test.", CNAME, 900, name("v4.rt.test."))],
    )
    .await;
    let caas = [
        rr("caa.rt.test.", CAA, 900, caa(0, "issue", "letsencrypt.org")),
        rr("caa.rt.test.", CAA, 900, caa(128, "tbs", "Unknown")),
        rr(
            "caa.rt.test.",
            CAA,
            900,
            caa(0, "iodef", "mailto:security@rt.test"),
        ),
    ];
    expect(s, "caa.rt.test.", CAA, &caas).await;
    expect(
        s,
        "rt.test.",
        MX,
        &[
            rr("rt.test.", MX, 900, mx(10, "mail.example.net.")),
            rr("rt.test.", MX, 900, mx(20, "mx2.rt.test.")),
        ],
    )
    .await;
    let mut naptr = vec![0, 100, 0, 10, 1, b'U', 7];
    naptr.extend_from_slice(b"E2U+sip");
    let regexp = b"!^.*$!sip:info@rt.test!";
    naptr.push(regexp.len() as u8);
    naptr.extend_from_slice(regexp);
    naptr.push(0);
    expect(
        s,
        "naptr.rt.test.",
        NAPTR,
        &[rr("naptr.rt.test.", NAPTR, 900, naptr)],
    )
    .await;
    let ptr_owner = "4.2.0.192.in-addr.arpa.rt.test.";
    expect(
        s,
        ptr_owner,
        PTR,
        &[rr(ptr_owner, PTR, 900, name("v4.rt.test."))],
    )
    .await;
    expect(
        s,
        "_sip._udp.rt.test.",
        SRV,
        &[rr(
            "_sip._udp.rt.test.",
            SRV,
            900,
            srv(5, 10, 5060, "sip.example.net."),
        )],
    )
    .await;
    let txts = [
        rr("txt.rt.test.", TXT, 900, txt(&[b"hello world", b"second"])),
        rr(
            "txt.rt.test.",
            TXT,
            900,
            txt(&[b"quote \" inside", b"semi;colon", b"back\\slash"]),
        ),
        rr("txt.rt.test.", TXT, 900, txt(&[b""])),
        rr("txt.rt.test.", TXT, 900, txt(&[b"ABC"])),
    ];
    expect(s, "txt.rt.test.", TXT, &txts).await;
}

const SPF_CONFIG: &str = r#"
[dns]
[[dns.zones]]
name = "rt.test"
records = [
    { name = "@", type = "NS", values = ["ns1.rt.test."] },
    { name = "@", type = "SPF", values = ['"v=spf1 mx -all"'] },
    { name = "@", type = "TXT", values = ['"v=spf1 mx -all"'] },
]
"#;

#[tokio::test]
async fn spf_is_served_as_type_99_with_txt_data() {
    let server = start(SPF_CONFIG, &[]).await;
    let spf = RecordType::Unknown(99);
    let mut want = rr("rt.test.", TXT, 3600, txt(&[b"v=spf1 mx -all"]));
    want.rtype = 99;
    expect(&server, "rt.test.", spf, &[want]).await;
    expect(
        &server,
        "rt.test.",
        TXT,
        &[rr("rt.test.", TXT, 3600, txt(&[b"v=spf1 mx -all"]))],
    )
    .await;
}

const FILE_CONFIG: &str = r#"
[dns]
[[dns.zones]]
name = "zf.test"
file = "zones/main.zone"
records = [
    { name = "extra", type = "A", values = ["192.0.2.200"] },
]
"#;

/// RFC 1035 master-file syntax: $ORIGIN, $TTL, $INCLUDE (relative to this file), parentheses,
/// comments, blank owners, relative names, @, and TTL/class in either order.
const MAIN_ZONE: &str = r#"; zone file test: comments everywhere
$ORIGIN zf.test.
$TTL 2h
@   IN  SOA ns1 hostmaster (
        2024020301 ; serial
        7200       ; refresh
        600        ; retry
        2419200    ; expire
        120 )      ; minimum
    IN  NS  ns1
        NS  ns2.zf.test.   ; blank owner: still the apex
ns1          A     192.0.2.1   ; comment after data
ns2  600 IN  A     192.0.2.2
www  IN  300 AAAA  2001:db8::80
mail         MX    ( 10
                     @ )
$INCLUDE inc/extra.inc
after        A     192.0.2.9
$TTL 300
late         TXT   "late" "(not a paren)" "semi;colon"
"#;

const INCLUDED: &str = "; included relative to zones/\ninc A 192.0.2.99\n";

#[tokio::test]
async fn zone_file_directives_and_syntax_are_honoured() {
    let files = [
        ("zones/main.zone", MAIN_ZONE),
        ("zones/inc/extra.inc", INCLUDED),
    ];
    let server = start(FILE_CONFIG, &files).await;
    let s = &server;
    expect(
        s,
        "zf.test.",
        SOA,
        &[rr(
            "zf.test.",
            SOA,
            7200,
            soa(
                "ns1.zf.test.",
                "hostmaster.zf.test.",
                [2024020301, 7200, 600, 2_419_200, 120],
            ),
        )],
    )
    .await;
    expect(
        s,
        "zf.test.",
        NS,
        &[
            rr("zf.test.", NS, 7200, name("ns1.zf.test.")),
            rr("zf.test.", NS, 7200, name("ns2.zf.test.")),
        ],
    )
    .await;
    expect(
        s,
        "ns1.zf.test.",
        A,
        &[rr("ns1.zf.test.", A, 7200, a("192.0.2.1"))],
    )
    .await;
    expect(
        s,
        "ns2.zf.test.",
        A,
        &[rr("ns2.zf.test.", A, 600, a("192.0.2.2"))],
    )
    .await;
    expect(
        s,
        "www.zf.test.",
        AAAA,
        &[rr("www.zf.test.", AAAA, 300, aaaa("2001:db8::80"))],
    )
    .await;
    expect(
        s,
        "mail.zf.test.",
        MX,
        &[rr("mail.zf.test.", MX, 7200, mx(10, "zf.test."))],
    )
    .await;
    expect(
        s,
        "inc.zf.test.",
        A,
        &[rr("inc.zf.test.", A, 7200, a("192.0.2.99"))],
    )
    .await;
    expect(
        s,
        "after.zf.test.",
        A,
        &[rr("after.zf.test.", A, 7200, a("192.0.2.9"))],
    )
    .await;
    expect(
        s,
        "late.zf.test.",
        TXT,
        &[rr(
            "late.zf.test.",
            TXT,
            300,
            txt(&[b"late", b"(not a paren)", b"semi;colon"]),
        )],
    )
    .await;
    // Inline records are added to the file's; they take the zone default TTL (3600).
    expect(
        s,
        "extra.zf.test.",
        A,
        &[rr("extra.zf.test.", A, 3600, a("192.0.2.200"))],
    )
    .await;
}

const TYPES_ZONE: &str = r#"$ORIGIN zf.test.
$TTL 3600
@        SOA   ns1 hostmaster 1 7200 600 2419200 120
@        NS    ns1
ns1      A     192.0.2.1
sec      NS    ns1
sec      DS    12345 13 2 ( 0123456789ABCDEF0123456789ABCDEF
                            0123456789ABCDEF0123456789ABCDEF )
host     SSHFP 1 2 ( 1234567890abcdef1234567890abcdef
                     1234567890abcdef1234567890abcdef )
_443._tcp.www TLSA 3 1 1 abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcd
svc      SVCB  1 svc-target.zf.test. alpn=h2,h3 port=8443
@        HTTPS 1 . alpn=h2
hinfo    HINFO "PC-Intel" "Linux"
"#;

#[tokio::test]
async fn zone_file_dnssec_and_service_types_round_trip_exactly() {
    let server = start(FILE_CONFIG, &[("zones/main.zone", TYPES_ZONE)]).await;
    let s = &server;
    let ds: Vec<u8> = [0x30, 0x39, 13, 2]
        .into_iter()
        .chain(hex(
            "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
        ))
        .collect();
    expect(s, "sec.zf.test.", DS, &[rr("sec.zf.test.", DS, 3600, ds)]).await;
    let sshfp: Vec<u8> = [1, 2]
        .into_iter()
        .chain(hex(
            "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef",
        ))
        .collect();
    expect(
        s,
        "host.zf.test.",
        SSHFP,
        &[rr("host.zf.test.", SSHFP, 3600, sshfp)],
    )
    .await;
    let tlsa: Vec<u8> = [3, 1, 1]
        .into_iter()
        .chain(hex(
            "abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcd",
        ))
        .collect();
    expect(
        s,
        "_443._tcp.www.zf.test.",
        TLSA,
        &[rr("_443._tcp.www.zf.test.", TLSA, 3600, tlsa)],
    )
    .await;
    // SVCB: priority, uncompressed target, then keys in order: alpn (1), port (3).
    let mut svcb = vec![0, 1];
    svcb.extend(name("svc-target.zf.test."));
    svcb.extend_from_slice(&[
        0, 1, 0, 6, 2, b'h', b'2', 2, b'h', b'3', 0, 3, 0, 2, 0x20, 0xfb,
    ]);
    expect(
        s,
        "svc.zf.test.",
        SVCB,
        &[rr("svc.zf.test.", SVCB, 3600, svcb)],
    )
    .await;
    let https = vec![0, 1, 0, 0, 1, 0, 3, 2, b'h', b'2'];
    expect(s, "zf.test.", HTTPS, &[rr("zf.test.", HTTPS, 3600, https)]).await;
    expect(
        s,
        "hinfo.zf.test.",
        HINFO,
        &[rr(
            "hinfo.zf.test.",
            HINFO,
            3600,
            txt(&[b"PC-Intel", b"Linux"]),
        )],
    )
    .await;
}

const UNKNOWN_ZONE: &str = r#"$ORIGIN zf.test.
$TTL 3600
@        SOA   ns1 hostmaster 1 7200 600 2419200 120
@        NS    ns1
ns1      A     192.0.2.1
unknown  TYPE65534 \# 3 010203
empty    TYPE65533 \# 0
"#;

#[tokio::test]
async fn rfc3597_unknown_types_from_a_zone_file_are_served_verbatim() {
    let server = start(FILE_CONFIG, &[("zones/main.zone", UNKNOWN_ZONE)]).await;
    let mut want = rr("unknown.zf.test.", A, 3600, vec![1, 2, 3]);
    want.rtype = 65534;
    expect(
        &server,
        "unknown.zf.test.",
        RecordType::Unknown(65534),
        &[want],
    )
    .await;
    let mut want = rr("empty.zf.test.", A, 3600, vec![]);
    want.rtype = 65533;
    expect(
        &server,
        "empty.zf.test.",
        RecordType::Unknown(65533),
        &[want],
    )
    .await;
}
