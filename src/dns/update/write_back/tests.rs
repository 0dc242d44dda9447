use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use super::*;
use crate::dns::zonefile::{ZoneFileRecord, load_zone_file, parse_zone_text};

/// Every type the project reads, with the awkward cases: TXT strings with spaces, quotes,
/// semicolons, parentheses, a backslash, control and non-ASCII bytes, and an empty one;
/// names with upper case, an escaped dot and a space; a wildcard; a delegation with glue and
/// DS; RDATA long enough to be laid out over several lines.
fn zone_source() -> String {
    let long: Vec<String> = (0..6)
        .map(|i| format!("\"{}\"", char::from(b'a' + i).to_string().repeat(250)))
        .collect();
    format!(
        r#"$ORIGIN example.com.
$TTL 1h
@   IN  SOA ns1 john\.doe ( 2024060101 2h 30m 2w 1d )
    IN  NS      ns1
    IN  NS      ns2.example.net.
ns1     A       192.0.2.53
Www     A       192.0.2.80
www     AAAA    2001:db8::80
alias   CNAME   www
@       MX      10 mail
mail  5 A       192.0.2.25
txt     TXT     "v=1; (quoted) \"semicolon\" back\\slash" plain "" "caf\195\169" "tab\009end"
txt     TXT     "a second record; of the same set"
long    TXT     ( {} )
spf     SPF     "v=spf1 -all" "second string; with a semicolon"
_sip._udp SRV   10 60 5060 sip
sip     A       192.0.2.60
@       CAA     0 issue "letsencrypt.org; validationmethods=dns-01"
@       CAA     128 tbs "x \"y\""
@       CAA     0 iodef "mailto:hostmaster@example.com"
naptr   NAPTR   100 10 "S" "SIP+D2U" "!^.*$!sip:info@example.com!" _sip._udp
ptr     PTR     host.example.net.
sp\032ace TXT   "an owner with a space"
*.wild  A       192.0.2.99
child   NS      ns.child
ns.child A      192.0.2.1
child   DS      60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
host    SSHFP   1 1 123456789abcdef67890123456789abcdef67890
_443._tcp TLSA  3 1 1 abcdef0123456789
svc     SVCB    1 . alpn="h2,h3" port=8443
@       HTTPS   1 . alpn=h2
hinfo   HINFO   "x86_64" "Linux 6.1"
unknown TYPE65534 \# 3 010203
empty   TYPE65533 \# 0
"#,
        long.join(" ")
    )
}

fn origin() -> Name {
    Name::from_ascii("example.com.").expect("valid origin")
}

/// The records grouped into RRsets as the config does (one set per owner and type).
fn rrsets(records: &[ZoneFileRecord]) -> Vec<RrsetData> {
    let mut sets: Vec<RrsetData> = Vec::new();
    for record in records {
        match sets
            .iter_mut()
            .find(|s| s.name == record.name && s.rtype == record.rtype)
        {
            Some(set) => set.rdatas.push(record.rdata.clone()),
            None => sets.push(RrsetData {
                name: record.name.clone(),
                rtype: record.rtype,
                ttl: record.ttl,
                rdatas: vec![record.rdata.clone()],
            }),
        }
    }
    sets
}

/// Every record as (owner in its own case, TTL, type, RDATA), sorted, for comparing zones.
fn flattened(sets: &[RrsetData]) -> Vec<(String, u32, String, String)> {
    let mut out: Vec<_> = sets
        .iter()
        .flat_map(|set| {
            set.rdatas.iter().map(|rdata| {
                (
                    set.name.to_ascii(),
                    set.ttl,
                    record_type_name(set.rtype),
                    format!("{rdata:?}"),
                )
            })
        })
        .collect();
    out.sort();
    out
}

fn source_sets() -> Vec<RrsetData> {
    let text = zone_source();
    let records = parse_zone_text(&text, Path::new("source.zone"), &origin(), None)
        .unwrap_or_else(|errors| panic!("the test zone does not parse: {errors:#?}"));
    rrsets(&records)
}

#[test]
fn every_type_reads_back_to_the_same_records() {
    let sets = source_sets();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("example.com.zone");
    write_zone_file(&path, &origin(), &sets).expect("write the zone");
    let written = std::fs::read_to_string(&path).expect("read the zone back");
    let records = load_zone_file(&path, &origin(), None)
        .unwrap_or_else(|errors| panic!("edgewise rejects its own file: {errors:#?}\n{written}"));
    assert_eq!(
        flattened(&rrsets(&records)),
        flattened(&sets),
        "the file written:\n{written}"
    );
    assert!(
        records[0].rtype == RecordType::SOA,
        "the SOA comes first:\n{written}"
    );
    assert!(
        written.contains("\nWww\t"),
        "owners keep their case and are relative:\n{written}"
    );
    assert!(
        written.contains("\"v=1; (quoted) \\\"semicolon\\\" back\\\\slash\""),
        "TXT strings are quoted and escaped readably:\n{written}"
    );
    assert!(
        written.contains("\n\t\t\"bbbb"),
        "long RDATA spans lines:\n{written}"
    );
    assert!(
        written.contains("\tSSHFP\t1 1 123456789ABCDEF6")
            && written.contains("\tTLSA\t3 1 1 ABCDEF"),
        "SSHFP and TLSA are written readably:\n{written}"
    );
}

#[test]
fn named_checkzone_accepts_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("example.com.zone");
    write_zone_file(&path, &origin(), &source_sets()).expect("write the zone");
    let output = Command::new("named-checkzone")
        .args(["-k", "fail", "-i", "full", "example.com"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run named-checkzone ({e}): install bind9-utils (.ci/run does)")
        });
    let written = std::fs::read_to_string(&path).expect("read the zone back");
    assert!(
        output.status.success(),
        "named-checkzone rejects the file: {}{}\n{written}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("loaded serial 2024060101"),
        "named-checkzone read the SOA: {said}"
    );
}

#[test]
fn the_file_is_replaced_whole_through_a_link_keeping_its_permissions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let real = dir.path().join("real.zone");
    std::fs::write(&real, "; the user's old file\n").expect("write the old file");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let link = dir.path().join("example.com.zone");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");

    write_zone_file(&link, &origin(), &source_sets()).expect("write the zone");

    assert!(
        std::fs::symlink_metadata(&link)
            .expect("stat the link")
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
    let written = std::fs::read_to_string(&real).expect("read the file");
    assert!(written.contains("$ORIGIN example.com."), "{written}");
    let mode = std::fs::metadata(&real).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o640, "the old file's permissions are kept");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list the folder")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["example.com.zone", "real.zone"],
        "no temporary file is left"
    );
}

#[test]
fn a_missing_folder_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("missing").join("example.com.zone");
    let error = write_zone_file(&path, &origin(), &source_sets()).expect_err("no such folder");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "names the file: {error}"
    );
}
