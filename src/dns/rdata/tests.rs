use super::*;
use hickory_proto::rr::rdata::CAA;

fn origin() -> Name {
    Name::from_ascii("example.com.").expect("valid origin")
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("valid test name")
}

fn parse(rtype: RecordType, text: &str) -> RData {
    parse_rdata(rtype, text, &origin()).unwrap_or_else(|e| panic!("{rtype} {text:?}: {e}"))
}

fn error(rtype: RecordType, text: &str) -> String {
    let err = parse_rdata(rtype, text, &origin())
        .expect_err(text)
        .to_string();
    assert!(!err.contains('\n'), "multi-line message: {err}");
    err
}

fn wire(rdata: &RData) -> Vec<u8> {
    rdata.to_bytes().expect("encodable")
}

#[test]
fn record_types() {
    assert_eq!(parse_record_type("A"), Ok(RecordType::A));
    assert_eq!(parse_record_type("aaaa"), Ok(RecordType::AAAA));
    assert_eq!(parse_record_type(" Https "), Ok(RecordType::HTTPS));
    assert_eq!(parse_record_type("SPF"), Ok(RecordType::Unknown(99)));
    assert_eq!(parse_record_type("spf"), Ok(RecordType::Unknown(99)));
    assert_eq!(parse_record_type("TYPE99"), Ok(RecordType::Unknown(99)));
    assert_eq!(
        parse_record_type("TYPE65534"),
        Ok(RecordType::Unknown(65534))
    );
    assert_eq!(parse_record_type("type1"), Ok(RecordType::A));
    assert_eq!(parse_record_type("TYPE257"), Ok(RecordType::CAA));
    assert_eq!(
        parse_record_type("FOO").unwrap_err().to_string(),
        "unknown record type \"FOO\""
    );
    for bad in ["", "TYPE", "TYPE65536", "TYPE-1", "TYPE+1", "TYPEx"] {
        assert!(
            matches!(parse_record_type(bad), Err(RdataError::UnknownType(_))),
            "{bad}"
        );
    }
    for meta in [
        "ANY", "*", "AXFR", "TSIG", "TYPE0", "TYPE41", "TYPE255", "TYPE128",
    ] {
        assert!(
            matches!(parse_record_type(meta), Err(RdataError::MetaType(_))),
            "{meta}"
        );
    }
    for rtype in [
        RecordType::A,
        RecordType::SOA,
        RecordType::Unknown(99),
        RecordType::Unknown(65534),
    ] {
        assert_eq!(parse_record_type(&record_type_name(rtype)), Ok(rtype));
    }
    assert_eq!(record_type_name(RecordType::Unknown(99)), "SPF");
    assert_eq!(record_type_name(RecordType::Unknown(65534)), "TYPE65534");
    assert_eq!(record_type_name(RecordType::AAAA), "AAAA");
}

#[test]
fn a_and_aaaa() {
    assert_eq!(
        parse(RecordType::A, "192.0.2.1"),
        RData::A(Ipv4Addr::new(192, 0, 2, 1).into())
    );
    assert_eq!(
        error(RecordType::A, "300.1.1.1"),
        "\"300.1.1.1\" is not an IPv4 address"
    );
    assert_eq!(
        error(RecordType::A, "1.2.3.4 5.6.7.8"),
        "\"1.2.3.4 5.6.7.8\" is not an IPv4 address"
    );
    assert_eq!(error(RecordType::A, ""), "\"\" is not an IPv4 address");
    let v6 = parse(RecordType::AAAA, "2001:db8::1");
    assert_eq!(v6.to_string(), "2001:db8::1");
    assert_eq!(
        error(RecordType::AAAA, "xyz"),
        "\"xyz\" is not an IPv6 address"
    );
    assert_eq!(
        error(RecordType::AAAA, "192.0.2.1"),
        "\"192.0.2.1\" is not an IPv6 address"
    );
}

#[test]
fn names_complete_relative_keep_case_and_decode_escapes() {
    assert_eq!(
        parse(RecordType::CNAME, "www"),
        RData::CNAME(CNAME(name("www.example.com.")))
    );
    assert_eq!(parse(RecordType::CNAME, "@"), RData::CNAME(CNAME(origin())));
    let RData::CNAME(CNAME(target)) = parse(RecordType::CNAME, "Mail.Other.ORG.") else {
        panic!("not a CNAME");
    };
    assert!(target.eq_case(&name("Mail.Other.ORG.")));
    let labels = |rdata: RData| match rdata {
        RData::CNAME(CNAME(n)) => n.iter().map(<[u8]>::to_vec).collect::<Vec<_>>(),
        other => panic!("not a CNAME: {other:?}"),
    };
    assert_eq!(
        labels(parse(RecordType::CNAME, "a\\.b.test.")),
        vec![b"a.b".to_vec(), b"test".to_vec()]
    );
    assert_eq!(
        labels(parse(RecordType::CNAME, "a\\032b.test.")),
        vec![b"a b".to_vec(), b"test".to_vec()]
    );
    assert_eq!(
        labels(parse(RecordType::CNAME, "\\065x.")),
        vec![b"Ax".to_vec()]
    );
    assert_eq!(
        labels(parse(RecordType::CNAME, "dis_allowed.")),
        vec![b"dis_allowed".to_vec()]
    );
    assert_eq!(
        labels(parse(RecordType::CNAME, "1.0/25.2.0.192.in-addr.arpa."))[1],
        b"0/25".to_vec()
    );
    assert_eq!(
        labels(parse(RecordType::CNAME, "bücher.de."))[0],
        b"xn--bcher-kva".to_vec()
    );
    assert_eq!(
        parse(RecordType::NS, "ns1"),
        RData::NS(NS(name("ns1.example.com.")))
    );
    assert_eq!(
        parse(RecordType::PTR, "host.example.net."),
        RData::PTR(PTR(name("host.example.net.")))
    );

    let e = error(RecordType::CNAME, "http://x.com/");
    assert_eq!(
        e,
        "\"http://x.com/\" is not a valid domain name: character ':' is not allowed (write it as \\058 if it is meant)"
    );
    assert!(
        error(RecordType::CNAME, "a..b.").contains("empty label"),
        "empty label"
    );
    assert!(error(RecordType::NS, &format!("{}.", "x".repeat(64))).contains("at most 63"));
    assert!(error(RecordType::NS, &"abcdefghi.".repeat(26)).contains("at most 255"));
    assert!(error(RecordType::CNAME, "a*b.example.").contains("whole label"));
    assert!(error(RecordType::CNAME, "a\\256.").contains("larger than \\255"));
    assert!(error(RecordType::CNAME, "a\\25").contains("three digits"));
    assert_eq!(
        error(RecordType::CNAME, "a b"),
        "\"a b\" is not valid CNAME data (expected \"<domain name>\")"
    );
}

#[test]
fn dname_is_served_with_its_own_type() {
    let rdata = parse(RecordType::DNAME, "other.net.");
    assert_eq!(rdata.record_type(), RecordType::DNAME);
    assert_eq!(wire(&rdata), b"\x05other\x03net\x00");
}

#[test]
fn mx() {
    assert_eq!(
        parse(RecordType::MX, "10 mail"),
        RData::MX(MX::new(10, name("mail.example.com.")))
    );
    assert_eq!(
        parse(RecordType::MX, "0 @"),
        RData::MX(MX::new(0, origin()))
    );
    assert_eq!(parse(RecordType::MX, "0 .").to_string(), "0 .");
    assert_eq!(
        error(RecordType::MX, "10"),
        "\"10\" is not valid MX data (expected \"<preference> <exchange>\")"
    );
    assert_eq!(
        error(RecordType::MX, "10 mail extra"),
        "\"10 mail extra\" is not valid MX data (expected \"<preference> <exchange>\")"
    );
    assert_eq!(
        error(RecordType::MX, "70000 mail"),
        "invalid MX data \"70000 mail\": preference \"70000\" is not a number from 0 to 65535"
    );
    assert_eq!(
        error(RecordType::MX, "+1 mail"),
        "invalid MX data \"+1 mail\": preference \"+1\" is not a number from 0 to 65535"
    );
    assert_eq!(
        error(RecordType::MX, "10 mail@example.com"),
        "invalid MX data \"10 mail@example.com\": exchange \"mail@example.com\" is not a valid domain name: \
             character '@' is not allowed (write it as \\064 if it is meant)"
    );
}

#[test]
fn soa_with_time_units() {
    let rdata = parse(
        RecordType::SOA,
        "ns1 hostmaster ( 2024010101 1h 15M 1w 1d )",
    );
    assert_eq!(
        rdata,
        RData::SOA(SOA::new(
            name("ns1.example.com."),
            name("hostmaster.example.com."),
            2_024_010_101,
            3600,
            900,
            604_800,
            86_400,
        ))
    );
    assert_eq!(
        rdata.to_string(),
        "ns1.example.com. hostmaster.example.com. 2024010101 3600 900 604800 86400"
    );
    assert!(
        error(RecordType::SOA, "ns1 hostmaster 1 2 3 4").contains("expected \"<mname> <rname>")
    );
    assert!(
        error(RecordType::SOA, "ns1 hostmaster 1 2 3 3000000000 5")
            .contains("expire \"3000000000\" is not a time")
    );
    assert!(error(RecordType::SOA, "ns1 hostmaster 1h 2 3 4 5").contains("serial \"1h\""));
}

#[test]
fn srv() {
    assert_eq!(
        parse(RecordType::SRV, "10 60 5060 sip.example.net."),
        RData::SRV(SRV::new(10, 60, 5060, name("sip.example.net.")))
    );
    assert_eq!(parse(RecordType::SRV, "0 0 0 .").to_string(), "0 0 0 .");
    assert!(error(RecordType::SRV, "10 60 70000 sip").contains("port \"70000\""));
}

#[test]
fn txt_strings_and_escapes() {
    let strings = |rdata: RData| match rdata {
        RData::TXT(txt) => txt.txt_data.iter().map(|s| s.to_vec()).collect::<Vec<_>>(),
        other => panic!("not TXT: {other:?}"),
    };
    assert_eq!(
        strings(parse(RecordType::TXT, "\"v=spf1 -all\"")),
        vec![b"v=spf1 -all".to_vec()]
    );
    assert_eq!(
        strings(parse(RecordType::TXT, "\"a\" \"b c\" d")),
        vec![b"a".to_vec(), b"b c".to_vec(), b"d".to_vec()]
    );
    assert_eq!(
        strings(parse(
            RecordType::TXT,
            r#""say \"hi\"" "back\\slash" "\065\066C" "" "semi;colon (paren)""#
        )),
        vec![
            b"say \"hi\"".to_vec(),
            b"back\\slash".to_vec(),
            b"ABC".to_vec(),
            Vec::new(),
            b"semi;colon (paren)".to_vec()
        ]
    );
    assert_eq!(
        strings(parse(RecordType::TXT, "\"\\255\\000\"")),
        vec![vec![255, 0]]
    );
    assert_eq!(
        strings(parse(RecordType::TXT, "( \"one\"\n  \"two\" )")),
        vec![b"one".to_vec(), b"two".to_vec()]
    );
    assert_eq!(
        strings(parse(RecordType::TXT, "\"héllo\"")),
        vec!["héllo".as_bytes().to_vec()]
    );
    assert_eq!(wire(&parse(RecordType::TXT, "\"ab\" \"\"")), b"\x02ab\x00");

    assert_eq!(
        strings(parse(RecordType::TXT, &format!("\"{}\"", "x".repeat(255))))[0].len(),
        255
    );
    let long = error(RecordType::TXT, &format!("\"ok\" \"{}\"", "x".repeat(256)));
    assert!(
        long.contains("string 2 is 256 bytes long, but a string holds at most 255"),
        "{long}"
    );
    assert!(long.contains("..."), "long values are shortened: {long}");
    let huge = vec![format!("\"{}\"", "y".repeat(255)); 260].join(" ");
    let e = error(RecordType::TXT, &huge);
    assert!(e.contains("a record holds at most 65535"), "{e}");

    assert_eq!(
        error(RecordType::TXT, ""),
        "\"\" is not valid TXT data (expected \"<text> [<text> ...]\")"
    );
    assert!(error(RecordType::TXT, "\"open").contains("closing '\"'"));
    assert!(error(RecordType::TXT, "a ; comment").contains("';' starts a comment"));
    assert!(error(RecordType::TXT, "( a").contains("'(' without"));
    assert!(error(RecordType::TXT, "a )").contains("')' without"));
    assert!(error(RecordType::TXT, "\"a\\\"").contains("closing"));
}

#[test]
fn spf_is_type_99_with_txt_data() {
    let rdata = parse(RecordType::Unknown(99), "\"v=spf1 \" \"-all\"");
    let RData::Unknown {
        code,
        rdata: ref null,
    } = rdata
    else {
        panic!("not Unknown: {rdata:?}");
    };
    assert_eq!(code, RecordType::Unknown(99));
    assert_eq!(null.anything, b"\x07v=spf1 \x04-all");
    assert_eq!(rdata.record_type(), RecordType::Unknown(99));
    assert_eq!(
        parse(RecordType::Unknown(99), "\\# 5 04 2d616c6c"),
        rdata_unknown(99, b"\x04-all")
    );
    assert!(error(RecordType::Unknown(99), "\\# 2 0501").contains("not valid TXT wire format"));
    assert!(error(RecordType::Unknown(99), "\\# 0").contains("at least one string"));
}

fn rdata_unknown(code: u16, bytes: &[u8]) -> RData {
    RData::Unknown {
        code: RecordType::Unknown(code),
        rdata: NULL::with(bytes.to_vec()),
    }
}

#[test]
fn caa() {
    let RData::CAA(caa) = parse(
        RecordType::CAA,
        "0 issue \"letsencrypt.org; validationmethods=dns-01\"",
    ) else {
        panic!("not CAA");
    };
    assert_eq!((caa.flags(), caa.tag.as_str()), (0, "issue"));
    assert_eq!(caa.value, b"letsencrypt.org; validationmethods=dns-01");

    let critical = parse(RecordType::CAA, "128 tbs \"x\"");
    assert_eq!(wire(&critical), b"\x80\x03tbsx");
    let RData::CAA(ref caa) = critical else {
        panic!("not CAA")
    };
    assert!(caa.issuer_critical);
    assert_eq!(critical.to_string(), "128 tbs \"x\"");

    let RData::CAA(CAA { value, .. }) =
        parse(RecordType::CAA, "0 iodef \"mailto:security@example.com\"")
    else {
        panic!("not CAA");
    };
    assert_eq!(value, b"mailto:security@example.com");
    assert_eq!(
        wire(&parse(RecordType::CAA, "0 issue \";\"")),
        b"\x00\x05issue;"
    );
    assert!(
        error(RecordType::CAA, "0 bad-tag \"x\"")
            .contains("tag \"bad-tag\" must be 1 to 15 letters or digits")
    );
    assert!(error(RecordType::CAA, "256 issue \"x\"").contains("flags \"256\""));
    assert!(
        error(RecordType::CAA, "0 issue \"x\" extra")
            .contains("(expected \"<flags> <tag> <value>\")")
    );
}

#[test]
fn naptr() {
    let rdata = parse(
        RecordType::NAPTR,
        r#"100 10 "S" "SIP+D2U" "!^.*$!sip:info@example.com!" _sip._udp"#,
    );
    assert_eq!(
        rdata,
        RData::NAPTR(NAPTR::new(
            100,
            10,
            b"S".to_vec().into(),
            b"SIP+D2U".to_vec().into(),
            b"!^.*$!sip:info@example.com!".to_vec().into(),
            name("_sip._udp.example.com."),
        ))
    );
    let RData::NAPTR(escaped) = parse(
        RecordType::NAPTR,
        r#"1 1 "u" "E2U+sip" "!^\\+(.*)$!\\1!" ."#,
    ) else {
        panic!("not NAPTR");
    };
    assert_eq!(&*escaped.regexp, b"!^\\+(.*)$!\\1!");
    assert!(
        error(RecordType::NAPTR, r#"1 1 "a-b" "x" "" ."#)
            .contains("flags may only contain letters and digits")
    );
    assert!(error(RecordType::NAPTR, r#"1 1 "a" "x" """#).contains("expected"));
}

#[test]
fn hinfo() {
    assert_eq!(
        parse(RecordType::HINFO, "\"Generic PC\" Linux"),
        RData::HINFO(HINFO::new("Generic PC".into(), "Linux".into()))
    );
    assert!(error(RecordType::HINFO, "x86").contains("(expected \"<cpu> <os>\")"));
}

#[test]
fn ds_and_cds() {
    let rdata = parse(
        RecordType::DS,
        "60485 5 1 ( 2BB183AF5F22588179A53B0A 98631FAD1A292118 )",
    );
    assert_eq!(rdata.record_type(), RecordType::DS);
    let mut expected = vec![0xec, 0x45, 5, 1];
    expected.extend(decode_hex("2BB183AF5F22588179A53B0A98631FAD1A292118").expect("hex"));
    assert_eq!(wire(&rdata), expected);
    assert_eq!(
        parse(RecordType::CDS, "0 0 0 00").record_type(),
        RecordType::CDS
    );
    assert!(error(RecordType::DS, "60485 5 1").contains("expected \"<key tag>"));
    assert!(error(RecordType::DS, "60485 5 1 xyz1").contains("digest \"xyz1\" is not hexadecimal"));
}

#[test]
fn hickory_parsed_types() {
    let sshfp = parse(
        RecordType::SSHFP,
        "4 2 ( 123456789abcdef6 7890123456789abcdef67890 )",
    );
    assert!(matches!(sshfp, RData::SSHFP(_)));
    let mut expected = vec![4, 2];
    expected.extend(decode_hex("123456789abcdef67890123456789abcdef67890").expect("hex"));
    assert_eq!(wire(&sshfp), expected);

    let RData::TLSA(tlsa) = parse(RecordType::TLSA, "3 1 1 ABCD ef01") else {
        panic!("not TLSA")
    };
    assert_eq!(tlsa.cert_data, [0xab, 0xcd, 0xef, 0x01]);

    let RData::SVCB(svcb) = parse(RecordType::SVCB, "1 svc alpn=\"h2,h3\" port=8443") else {
        panic!("not SVCB")
    };
    assert_eq!(svcb.target_name, name("svc.example.com."));
    assert_eq!(svcb.svc_params.len(), 2);
    let RData::HTTPS(HTTPS(https)) = parse(RecordType::HTTPS, "1 . alpn=h2") else {
        panic!("not HTTPS")
    };
    assert_eq!(https.target_name, Name::root());
    let RData::HTTPS(HTTPS(alias)) = parse(RecordType::HTTPS, "0 @") else {
        panic!("not HTTPS")
    };
    assert_eq!(alias.target_name, origin());

    assert!(matches!(
        parse(RecordType::OPENPGPKEY, "YWJjZA=="),
        RData::OPENPGPKEY(_)
    ));
    assert!(matches!(
        parse(RecordType::CSYNC, "66 3 A NS AAAA"),
        RData::CSYNC(_)
    ));
    assert!(matches!(
        parse(RecordType::CERT, "1 0 0 YWJjZA=="),
        RData::CERT(_)
    ));

    assert!(
        error(RecordType::SSHFP, "1 1")
            .contains("expected \"<algorithm> <type> <fingerprint hex>\"")
    );
    assert!(
        error(RecordType::SVCB, "1 svc nonsense=1")
            .starts_with("invalid SVCB data \"1 svc nonsense=1\": ")
    );
}

#[test]
fn nothing_can_be_injected_into_the_synthesized_zone() {
    for text in [
        "1 . alpn=\"h2\n@ 0 IN A 192.0.2.1\"",
        "1 . \"\\\"\n$INCLUDE /etc/passwd\"",
        "1 . \"@\" \"$ORIGIN\" \"x\\\\\"",
        "1 . key65000=\")\"",
    ] {
        match parse_rdata(RecordType::SVCB, text, &origin()) {
            Ok(rdata) => assert_eq!(rdata.record_type(), RecordType::SVCB, "{text}"),
            Err(e) => assert!(matches!(e, RdataError::Invalid { .. }), "{text}: {e}"),
        }
    }
    assert!(
        error(RecordType::SSHFP, "1 1 abcd\n@ 0 IN A 192.0.2.1").contains("invalid SSHFP data")
    );
    assert!(error(RecordType::TLSA, "3 1 1 ab ; x").contains("comment"));
}

#[test]
fn generic_rfc3597_form() {
    assert_eq!(
        parse(RecordType::A, "\\# 4 0A000001"),
        RData::A(Ipv4Addr::new(10, 0, 0, 1).into())
    );
    let type1 = parse_record_type("TYPE1").expect("TYPE1");
    assert_eq!(
        parse(type1, "\\# 4 0a 00 00 01"),
        RData::A(Ipv4Addr::new(10, 0, 0, 1).into())
    );
    assert_eq!(
        parse(RecordType::MX, "\\# 6 000a 026d7800"),
        RData::MX(MX::new(10, name("mx.")))
    );
    assert_eq!(
        parse(RecordType::Unknown(65534), "\\# 3 010203"),
        rdata_unknown(65534, &[1, 2, 3])
    );
    let empty = parse(RecordType::Unknown(65534), "\\# 0");
    assert_eq!(wire(&empty), Vec::<u8>::new());
    assert_eq!(empty.record_type(), RecordType::Unknown(65534));
    assert_eq!(
        parse(RecordType::NULL, "\\# 2 abcd").record_type(),
        RecordType::NULL
    );

    assert!(error(RecordType::A, "\\# 3 0A000001").contains("length 3 does not match the 4 bytes"));
    assert!(error(RecordType::Unknown(65534), "\\# 2 0g0h").contains("not hexadecimal"));
    assert!(error(RecordType::Unknown(65534), "\\# 2 012").contains("not hexadecimal"));
    assert!(
        error(RecordType::Unknown(65534), "\\#").contains("(expected \"\\# <length> <hex data>\")")
    );
    assert!(error(RecordType::A, "\\# 3 0A0000").contains("not valid A wire format"));
    assert!(error(RecordType::Unknown(65534), "\\# 70000 00").contains("length \"70000\""));
}

#[test]
fn types_without_presentation_form() {
    assert_eq!(
        error(RecordType::Unknown(65534), "1 2 3"),
        "TYPE65534 data can only be written in the generic form \"\\# <length> <hex>\" (RFC 3597)"
    );
    assert!(matches!(
        parse_rdata(RecordType::DNSKEY, "257 3 8 AwEAAQ==", &origin()),
        Err(RdataError::GenericOnly(_))
    ));
    assert!(matches!(
        parse_rdata(RecordType::ANY, "\\# 0", &origin()),
        Err(RdataError::MetaType(_))
    ));
    assert!(matches!(
        parse_rdata(RecordType::OPT, "\\# 0", &origin()),
        Err(RdataError::MetaType(_))
    ));
}

#[test]
fn messages_stay_on_one_line_and_short() {
    let e = error(RecordType::MX, "10\nmail\nextra");
    assert_eq!(
        e,
        "\"10 mail extra\" is not valid MX data (expected \"<preference> <exchange>\")"
    );
    let e = error(RecordType::A, &"1".repeat(500));
    assert!(e.len() < 120, "{e}");
}
