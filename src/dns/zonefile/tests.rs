use super::*;
use hickory_proto::rr::rdata::{A, CNAME, MX, TXT};
use hickory_proto::serialize::binary::BinEncodable;
use std::fs;
use std::net::Ipv4Addr;

const FILE: &str = "/zones/example.com.zone";

fn zone() -> Name {
    Name::from_ascii("example.com.").expect("valid zone")
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("valid test name")
}

fn parse_with(text: &str, default_ttl: Option<u32>) -> Vec<ZoneFileRecord> {
    parse_zone_text(text, Path::new(FILE), &zone(), default_ttl)
        .unwrap_or_else(|errors| panic!("unexpected errors: {errors:#?}"))
}

fn parse(text: &str) -> Vec<ZoneFileRecord> {
    parse_with(text, None)
}

fn errors(text: &str) -> Vec<(usize, String)> {
    parse_zone_text(text, Path::new(FILE), &zone(), Some(300))
        .expect_err("the text should not parse")
        .into_iter()
        .map(|e| (e.line, e.message))
        .collect()
}

fn a(octets: [u8; 4]) -> RData {
    RData::A(A(Ipv4Addr::from(octets)))
}

#[test]
fn zone_with_every_supported_type() {
    let text = r#"$ORIGIN example.com.
$TTL 1h
@   IN  SOA ns1 hostmaster ( ; the SOA spans lines
            2024060101 ; serial
            2h 30m     ; refresh, retry
            2w 1d )    ; expire, minimum
    IN  NS      ns1
    IN  NS      ns2.example.net.
ns1     A       192.0.2.53
www     AAAA    2001:db8::80
alias   CNAME   www
@       MX      10 mail
txt     TXT     "v=1; (quoted) \"semicolon\"" plain "\065"
spf     SPF     "v=spf1 -all"
_sip._udp SRV   10 60 5060 sip
@       CAA     0 issue "letsencrypt.org"
@       CAA     128 tbs "x"
naptr   NAPTR   100 10 "S" "SIP+D2U" "!^.*$!sip:info@example.com!" _sip._udp
ptr     PTR     host.example.net.
child   DS      60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
host    SSHFP   1 1 123456789abcdef67890123456789abcdef67890
_443._tcp TLSA  3 1 1 ( abcdef01
                        23456789 )
svc     SVCB    1 . alpn="h2,h3" port=8443
@       HTTPS   1 . alpn=h2
hinfo   HINFO   "x86_64" "Linux"
unknown TYPE65534 \# 3 010203
"#;
    let records = parse(text);
    let types: Vec<String> = records
        .iter()
        .map(|r| super::super::rdata::record_type_name(r.rtype))
        .collect();
    assert_eq!(
        types,
        [
            "SOA",
            "NS",
            "NS",
            "A",
            "AAAA",
            "CNAME",
            "MX",
            "TXT",
            "SPF",
            "SRV",
            "CAA",
            "CAA",
            "NAPTR",
            "PTR",
            "DS",
            "SSHFP",
            "TLSA",
            "SVCB",
            "HTTPS",
            "HINFO",
            "TYPE65534"
        ]
    );
    for record in &records {
        assert_eq!(
            record.rdata.record_type(),
            record.rtype,
            "line {}",
            record.line
        );
        assert_eq!(record.ttl, 3600);
        assert_eq!(record.file, Path::new(FILE));
    }
    let soa = &records[0];
    assert_eq!((soa.name.clone(), soa.line), (zone(), 3));
    assert_eq!(
        soa.rdata.to_string(),
        "ns1.example.com. hostmaster.example.com. 2024060101 7200 1800 1209600 86400"
    );
    assert_eq!((records[1].name.clone(), records[1].line), (zone(), 7));
    assert_eq!(
        records[5].rdata,
        RData::CNAME(CNAME(name("www.example.com.")))
    );
    assert_eq!(
        records[6].rdata,
        RData::MX(MX::new(10, name("mail.example.com.")))
    );
    assert_eq!(
        records[7].rdata,
        RData::TXT(TXT::from_bytes(vec![
            b"v=1; (quoted) \"semicolon\"",
            b"plain",
            b"A"
        ]))
    );
    assert_eq!(records[8].rtype, RecordType::Unknown(99));
    let RData::CAA(critical) = &records[11].rdata else {
        panic!("not CAA")
    };
    assert!(critical.issuer_critical);
    assert_eq!(records[16].line, 22);
    assert_eq!(records[20].rtype, RecordType::Unknown(65534));
    assert_eq!(records[20].rdata.to_bytes().expect("wire"), [1, 2, 3]);
}

#[test]
fn owner_forms() {
    let records = parse(
        "$TTL 60\n\
             @ A 192.0.2.1\n\
             www A 192.0.2.2\n\
             \tA 192.0.2.3\n\
             abs.example.com. A 192.0.2.4\n\
             $ORIGIN sub.example.com.\n\
             rel A 192.0.2.5\n\
             @ A 192.0.2.6\n\
             $ORIGIN deeper\n\
             x A 192.0.2.7\n\
             a\\.b A 192.0.2.8\n\
             a\\032b A 192.0.2.9\n\
             *.wild A 192.0.2.10\n\
             WWW.Example.COM. A 192.0.2.11\n",
    );
    let names: Vec<String> = records.iter().map(|r| r.name.to_string()).collect();
    assert_eq!(
        names[..7],
        [
            "example.com.",
            "www.example.com.",
            "www.example.com.",
            "abs.example.com.",
            "rel.sub.example.com.",
            "sub.example.com.",
            "x.deeper.sub.example.com.",
        ]
    );
    assert_eq!(records[7].name.iter().next(), Some(&b"a.b"[..]));
    assert_eq!(records[8].name.iter().next(), Some(&b"a b"[..]));
    assert!(records[9].name.is_wildcard());
    assert!(records[10].name.eq_case(&name("WWW.Example.COM.")));
    assert_eq!(records[2].rdata, a([192, 0, 2, 3]));
    assert_eq!(records[2].line, 4);
}

#[test]
fn ttl_forms_and_defaults() {
    let records = parse_with(
        "a 1h30m IN A 192.0.2.1\n\
             b IN 2D A 192.0.2.1\n\
             c 1W A 192.0.2.1\n\
             d 30m A 192.0.2.1\n\
             e 10S IN A 192.0.2.1\n\
             f A 192.0.2.1\n\
             $TTL 0\n\
             g A 192.0.2.1\n\
             h 2147483647 A 192.0.2.1\n",
        Some(42),
    );
    let ttls: Vec<u32> = records.iter().map(|r| r.ttl).collect();
    assert_eq!(
        ttls,
        [5400, 172_800, 604_800, 1800, 10, 10, 0, 2_147_483_647]
    );

    // With neither an explicit TTL, $TTL nor a previous record, the default applies.
    assert_eq!(
        parse_with("a A 192.0.2.1\nb 5 A 192.0.2.1\nc A 192.0.2.1", Some(42))
            .iter()
            .map(|r| r.ttl)
            .collect::<Vec<_>>(),
        [42, 5, 5]
    );
    let missing =
        parse_zone_text("a A 192.0.2.1\n", Path::new(FILE), &zone(), None).expect_err("no TTL");
    assert_eq!(missing[0].line, 1);
    assert!(
        missing[0].message.starts_with("no TTL"),
        "{}",
        missing[0].message
    );
}

#[test]
fn bad_ttls_and_classes() {
    assert_eq!(
        errors(
            "a 2147483648 A 192.0.2.1\nb 1x A 192.0.2.1\n$TTL 99999999999\n$TTL\nc 1 2 A 192.0.2.1"
        ),
        [
            (
                1,
                "TTL 2147483648 is larger than the maximum 2147483647 seconds".to_owned()
            ),
            (
                2,
                "invalid TTL \"1x\" (expected seconds or a duration like 1h30m)".to_owned()
            ),
            (
                3,
                "TTL 99999999999 is larger than the maximum 2147483647 seconds".to_owned()
            ),
            (4, "$TTL expects one TTL".to_owned()),
            (5, "second TTL \"2\" (a record has one TTL)".to_owned()),
        ]
    );
    assert_eq!(
        errors(
            "a CH A 192.0.2.1\nb 60 HS TXT x\nc CLASS3 A 192.0.2.1\nd IN in A 192.0.2.1\ne ANY A 192.0.2.1"
        ),
        [
            (1, "class CH is not supported, only IN".to_owned()),
            (2, "class HS is not supported, only IN".to_owned()),
            (3, "class CLASS3 is not supported, only IN".to_owned()),
            (4, "the class is given twice".to_owned()),
            (
                5,
                "record type \"ANY\" is a query or meta type and cannot be used for records"
                    .to_owned()
            ),
        ]
    );
    assert_eq!(
        parse_with("a CLASS1 A 192.0.2.1\nb in 60 a 192.0.2.1", Some(1))[1].ttl,
        60
    );
}

#[test]
fn names_outside_the_zone() {
    assert_eq!(
        errors(
            "www.other.example. A 192.0.2.1\n  TXT x\n$ORIGIN com.\nexample A 192.0.2.1\nfoo A 192.0.2.1"
        ),
        [
            (
                1,
                "name www.other.example. is outside zone example.com.".to_owned()
            ),
            (
                2,
                "name www.other.example. is outside zone example.com.".to_owned()
            ),
            (5, "name foo.com. is outside zone example.com.".to_owned()),
        ]
    );
}

#[test]
fn all_errors_are_reported_with_the_line_the_record_starts_on() {
    let text = "$TTL 300\n\
                    ok A 192.0.2.1\n\
                    bad1 A 300.1.1.1\n\
                    \n\
                    mx MX ( 10\n\
                    ; only a comment\n\
                    )\n\
                    txt TXT \"unterminated\n\
                    ok2 A 192.0.2.2\n\
                    foo BOGUS data\n\
                    $FOO bar\n\
                    caa CAA 0 bad-tag \"x\"\n";
    assert_eq!(
            errors(text),
            [
                (3, "\"300.1.1.1\" is not an IPv4 address".to_owned()),
                (5, "\"10\" is not valid MX data (expected \"<preference> <exchange>\")".to_owned()),
                (8, "a quoted string is missing its closing '\"' (strings cannot span lines)".to_owned()),
                (10, "unknown record type \"BOGUS\"".to_owned()),
                (11, "unknown directive $FOO (expected $ORIGIN, $TTL or $INCLUDE)".to_owned()),
                (12, "invalid CAA data \"0 bad-tag \"x\"\": tag \"bad-tag\" must be 1 to 15 letters or digits".to_owned()),
            ]
        );
    let err = &parse_zone_text("x A 1\n", Path::new(FILE), &zone(), Some(1)).expect_err("bad")[0];
    assert_eq!(
        err.to_string(),
        "/zones/example.com.zone:1: \"1\" is not an IPv4 address"
    );
}

#[test]
fn parentheses_comments_and_quotes() {
    let records = parse_with(
        "txt TXT ( \"a;b\" ; comment with ( and \"\n  \"c(d\" ) ; trailing\n\
             t2 TXT \"x)\" (\"y\")\n\
             ( t3 A\n 192.0.2.1 )\n",
        Some(1),
    );
    assert_eq!(
        records[0].rdata,
        RData::TXT(TXT::from_bytes(vec![b"a;b", b"c(d"]))
    );
    assert_eq!(
        records[1].rdata,
        RData::TXT(TXT::from_bytes(vec![b"x)", b"y"]))
    );
    assert_eq!(
        (records[2].line, records[2].rdata.clone()),
        (4, a([192, 0, 2, 1]))
    );
    assert_eq!(
        errors("a TXT ( x\nb A 192.0.2.1\n"),
        [(1, "'(' is never closed".to_owned())]
    );
    assert_eq!(
        errors("a A 192.0.2.1 )\nb A 192.0.2.2"),
        [(1, "')' without a matching '('".to_owned())]
    );
}

#[test]
fn crlf_and_bom() {
    let records = parse_with(
        "\u{feff}$ORIGIN example.com.\r\nwww A 192.0.2.1\r\n\tTXT \"x\"\r\n",
        Some(5),
    );
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].name, name("www.example.com."));
    assert_eq!(records[1].rdata, RData::TXT(TXT::from_bytes(vec![b"x"])));
}

#[test]
fn blank_owner_needs_a_previous_owner() {
    assert_eq!(
            errors("  A 192.0.2.1\nbad..name A 192.0.2.1\n  A 192.0.2.2\n"),
            [
                (1, "the line starts with whitespace, but no earlier record gives an owner name".to_owned()),
                (
                    2,
                    "owner \"bad..name\" is not a valid domain name: it has an empty label (a leading dot or two dots in a row)"
                        .to_owned()
                ),
            ]
        );
}

#[test]
fn include_with_origin_and_relative_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir(dir.path().join("inc")).expect("mkdir");
    fs::write(
            dir.path().join("inc/hosts.zone"),
            "$TTL 99\nhost A 192.0.2.10\n@ TXT \"apex of the include\"\n$ORIGIN elsewhere.example.com.\nz A 192.0.2.11\n",
        )
        .expect("write include");
    fs::write(
        dir.path().join("inc/bad.zone"),
        "ok A 192.0.2.1\nbroken A 1.2.3\n",
    )
    .expect("write include");
    let main = dir.path().join("example.com.zone");
    fs::write(
        &main,
        "$TTL 60\n$INCLUDE inc/hosts.zone lab\nafter A 192.0.2.20\n$INCLUDE \"inc/hosts.zone\"\n",
    )
    .expect("write zone");
    let records = load_zone_file(&main, &zone(), None).unwrap_or_else(|e| panic!("{e:#?}"));
    let summary: Vec<(String, u32, usize)> = records
        .iter()
        .map(|r| (r.name.to_string(), r.ttl, r.line))
        .collect();
    assert_eq!(
        summary,
        [
            ("host.lab.example.com.".to_owned(), 99, 2),
            ("lab.example.com.".to_owned(), 99, 3),
            ("z.elsewhere.example.com.".to_owned(), 99, 5),
            ("after.example.com.".to_owned(), 60, 3),
            ("host.example.com.".to_owned(), 99, 2),
            ("example.com.".to_owned(), 99, 3),
            ("z.elsewhere.example.com.".to_owned(), 99, 5),
        ]
    );
    assert_eq!(records[0].file, dir.path().join("inc/hosts.zone"));
    assert_eq!(records[3].file, main);

    fs::write(
        &main,
        "$TTL 60\n$INCLUDE inc/bad.zone\n$INCLUDE missing.zone\n",
    )
    .expect("write zone");
    let errors = load_zone_file(&main, &zone(), None).expect_err("errors");
    assert_eq!(errors.len(), 2);
    assert_eq!(
        (errors[0].file.clone(), errors[0].line),
        (dir.path().join("inc/bad.zone"), 2)
    );
    assert_eq!((errors[1].file.clone(), errors[1].line), (main.clone(), 3));
    assert!(
        errors[1].message.starts_with("cannot read "),
        "{}",
        errors[1].message
    );
    assert!(
        errors[1].message.contains("missing.zone"),
        "{}",
        errors[1].message
    );
}

#[test]
fn include_cycles_and_depth_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(
        dir.path().join("a.zone"),
        "a A 192.0.2.1\n$INCLUDE b.zone\n",
    )
    .expect("write");
    fs::write(
        dir.path().join("b.zone"),
        "b A 192.0.2.2\n$INCLUDE a.zone\n",
    )
    .expect("write");
    let errors = load_zone_file(&dir.path().join("a.zone"), &zone(), Some(1)).expect_err("cycle");
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (errors[0].file.clone(), errors[0].line),
        (dir.path().join("b.zone"), 2)
    );
    assert!(
        errors[0].message.starts_with("$INCLUDE cycle: "),
        "{}",
        errors[0].message
    );
    let a_zone = dir.path().join("a.zone").canonicalize().expect("path");
    assert!(
        errors[0]
            .message
            .ends_with(&format!("b.zone -> {}", a_zone.display())),
        "{}",
        errors[0].message
    );

    // f0 includes f1 ... includes fN: 16 nested includes are fine, 17 are not.
    let chain = |files: usize| {
        for n in 0..files {
            let next = if n + 1 < files {
                format!("$INCLUDE f{}.zone\n", n + 1)
            } else {
                String::new()
            };
            fs::write(
                dir.path().join(format!("f{n}.zone")),
                format!("f{n} A 192.0.2.1\n{next}"),
            )
            .expect("write");
        }
        load_zone_file(&dir.path().join("f0.zone"), &zone(), Some(1))
    };
    assert_eq!(
        chain(MAX_INCLUDE_DEPTH + 1).expect("16 levels").len(),
        MAX_INCLUDE_DEPTH + 1
    );
    let errors = chain(MAX_INCLUDE_DEPTH + 2).expect_err("17 levels");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .message
            .contains("nested more than 16 levels deep"),
        "{}",
        errors[0].message
    );
}

#[test]
fn unreadable_and_invalid_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.zone");
    let unreadable = load_zone_file(&missing, &zone(), None).expect_err("missing");
    assert_eq!(unreadable.len(), 1);
    assert_eq!(unreadable[0].line, 0);
    let message = &unreadable[0].message;
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("No such file or directory"), "{message}");
    assert_eq!(
        unreadable[0].to_string(),
        format!("{}: {message}", missing.display())
    );

    let latin1 = dir.path().join("latin1.zone");
    fs::write(&latin1, b"a A 192.0.2.1\nb TXT \"caf\xe9\"\n").expect("write");
    let not_utf8 = load_zone_file(&latin1, &zone(), Some(1)).expect_err("not utf-8");
    assert!(
        not_utf8[0].message.ends_with("is not UTF-8 text (line 2)"),
        "{}",
        not_utf8[0].message
    );

    let long = format!(
        "a A 192.0.2.1\nb TXT \"{}\"\nc A 192.0.2.1",
        "x".repeat(MAX_LINE_BYTES)
    );
    let expected = format!(
        "the line is {} bytes long, at most {MAX_LINE_BYTES} are allowed",
        MAX_LINE_BYTES + 8
    );
    assert_eq!(errors(&long), [(2, expected)]);
}

#[test]
fn directive_arguments() {
    assert_eq!(
            errors("$ORIGIN\n$ORIGIN a b\n$INCLUDE\n$ORIGIN bad..name\n"),
            [
                (1, "$ORIGIN expects one domain name".to_owned()),
                (2, "$ORIGIN expects one domain name".to_owned()),
                (3, "$INCLUDE expects a file name and an optional origin".to_owned()),
                (
                    4,
                    "\"bad..name\" is not a valid domain name: it has an empty label (a leading dot or two dots in a row)"
                        .to_owned()
                ),
            ]
        );
    assert_eq!(
        errors("a 60 IN\nb \"A\" x"),
        [
            (1, "missing record type".to_owned()),
            (
                2,
                "expected a TTL, class or record type, found \"A\"".to_owned()
            ),
        ]
    );
}

#[test]
fn an_included_file_that_is_no_zone_file_is_not_echoed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = "root:$6$secrethash:19000:0:99999:7:::\nAPI_TOKEN = \"s3cr3t\"\n";
    fs::write(dir.path().join("shadow"), secret).expect("write include");
    let main = dir.path().join("example.com.zone");
    fs::write(&main, "$TTL 60\nok A 192.0.2.1\n$INCLUDE shadow\n").expect("write zone");
    let errors = load_zone_file(&main, &zone(), None).expect_err("errors");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(
        (errors[0].file.clone(), errors[0].line),
        (dir.path().join("shadow"), 1)
    );
    assert!(
        errors[0].message.contains("not a zone file"),
        "{}",
        errors[0].message
    );
    for part in ["root", "secrethash", "API_TOKEN", "s3cr3t"] {
        assert!(!errors[0].message.contains(part), "{}", errors[0].message);
    }
}
