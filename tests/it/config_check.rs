//! Config validation through `Config::load`: every error collected, each with file:line:col
//! and its key path; and the SOA the loader generates or takes from `soa = {...}`.

use std::path::Path;
use std::time::{Duration, Instant};

use edgewise::config::{Config, ConfigError};
use hickory_proto::rr::RecordType::{A, SOA};

use crate::background::Background;
use crate::harness::rcode::NOERROR;
use crate::harness::{assert_rcode, assert_rrs, q, rr, soa, start, write_files};

/// The 1-based line and column (in characters) where the `nth` (0-based) `needle` starts.
pub fn position(text: &str, needle: &str, nth: usize) -> (usize, usize) {
    let offset = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("{needle:?} #{nth} not in the config"))
        .0;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    (line, col)
}

/// Loads `config` (with zone files) from a temporary folder, expecting it to fail.
pub fn errors_of(
    config: &str,
    files: &[(&str, &str)],
) -> (Vec<ConfigError>, std::path::PathBuf, tempfile::TempDir) {
    let (dir, path) = write_files(config, files);
    match Config::load(&path) {
        Ok(_) => panic!("the config should be rejected:\n{config}"),
        Err(errors) => {
            assert!(!errors.0.is_empty(), "ConfigErrors is never empty");
            (errors.0, path, dir)
        }
    }
}

/// The one error whose key path is `key`; panics listing all of them otherwise.
#[track_caller]
fn error_at<'e>(errors: &'e [ConfigError], key: &str) -> &'e ConfigError {
    let found: Vec<&ConfigError> = errors.iter().filter(|e| e.key_path == key).collect();
    match found.as_slice() {
        [one] => one,
        _ => panic!(
            "expected exactly one error at {key}, got:\n{}",
            list(errors)
        ),
    }
}

fn list(errors: &[ConfigError]) -> String {
    errors.iter().map(|e| format!("  {e}\n")).collect()
}

/// Asserts `error` is at `needle` (nth occurrence) in `config`, and that its display starts
/// with `file:line:col: key: `.
#[track_caller]
fn assert_at(error: &ConfigError, path: &Path, config: &str, needle: &str, nth: usize) {
    let (line, col) = position(config, needle, nth);
    assert_eq!(error.file, path, "{error}");
    assert_eq!(
        (error.line, error.col),
        (line, col),
        "position of {needle:?}: {error}"
    );
    let prefix = format!("{}:{line}:{col}: {}: ", path.display(), error.key_path);
    assert!(
        error.to_string().starts_with(&prefix),
        "{error}\n  should start with {prefix}"
    );
}

const NS: &str = r#"
[[dns.zones.records]]
name = "@"
type = "NS"
values = ["ns1.zone.test."]
"#;

#[test]
fn every_error_is_collected_with_position_and_key_path() {
    let config = format!(
        r#"[dns]
listen = ["127.0.0.1:5353", "nonsense"]
tcp_max_connections = 0

[[dns.zones]]
name = "zone.test"
{NS}
[[dns.zones.records]]
name = "ns1"
type = "A"
values = ["192.0.2.1"]

[[dns.zones.records]]
name = "www"
type = "A"
values = ["192.0.2.2"]

[[dns.zones.records]]
name = "bad"
type = "A"
values = ["192.0.2.3", "300.1.1.1"]
"#
    );
    let (errors, path, _dir) = errors_of(&config, &[]);
    assert_eq!(
        errors.len(),
        3,
        "three mistakes, three errors:\n{}",
        list(&errors)
    );

    let listen = error_at(&errors, "dns.listen[1]");
    assert_at(listen, &path, &config, "\"nonsense\"", 0);
    assert!(listen.message.contains("nonsense"), "{listen}");

    let limit = error_at(&errors, "dns.tcp_max_connections");
    assert_at(limit, &path, &config, "0\n", 0);
    assert!(limit.message.contains("out of range"), "{limit}");

    let value = error_at(&errors, "dns.zones[0].records[3].values[1]");
    assert_at(value, &path, &config, "\"300.1.1.1\"", 0);
    assert!(
        value.message.contains("\"300.1.1.1\""),
        "names the value: {value}"
    );
    assert!(
        value.message.to_lowercase().contains("ipv4"),
        "says what was expected: {value}"
    );
}

#[test]
fn unknown_key_is_named_with_its_position() {
    let config = "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkerz = 2\n";
    let (errors, path, _dir) = errors_of(config, &[]);
    assert_eq!(errors.len(), 1, "{}", list(&errors));
    assert!(
        errors[0].message.contains("workerz"),
        "names the key: {}",
        errors[0]
    );
    assert_at(&errors[0], &path, config, "workerz", 0);
    assert_eq!(errors[0].key_path, "dns", "{}", errors[0]);

    let config = format!(
        "[dns]\n[[dns.zones]]\nname = \"zone.test\"\n{NS}\n[[dns.zones.records]]\nname = \"www\"\ntyp = \"A\"\nvalues = [\"192.0.2.1\"]\n"
    );
    let (errors, path, _dir) = errors_of(&config, &[]);
    assert!(
        errors[0].message.contains("typ"),
        "names the key: {}",
        errors[0]
    );
    assert_eq!(
        errors[0].key_path, "dns.zones[0].records[1]",
        "{}",
        errors[0]
    );
    assert_eq!(errors[0].file, path);
    assert!(errors[0].line > 0, "has a position: {}", errors[0]);
}

#[test]
fn wrong_toml_type_is_reported_with_position_and_key() {
    let config = "[dns]\nworkers = \"four\"\n";
    let (errors, path, _dir) = errors_of(config, &[]);
    assert_eq!(errors.len(), 1, "{}", list(&errors));
    let error = &errors[0];
    assert_eq!(error.file, path);
    assert_eq!(error.line, 2, "{error}");
    assert!(
        error.message.contains("string") || error.message.contains("four"),
        "says what was given: {error}"
    );
    assert!(
        error.to_string().contains("workers"),
        "names the key: {error}"
    );
}

#[test]
fn several_wrong_toml_types_are_all_reported() {
    let config = "[dns]\nworkers = \"four\"\ntcp_max_connections = \"many\"\n";
    let (errors, path, _dir) = errors_of(config, &[]);
    assert_eq!(
        errors.len(),
        2,
        "two mistakes, two errors:\n{}",
        list(&errors)
    );
    assert_at(
        error_at(&errors, "dns.workers"),
        &path,
        config,
        "\"four\"",
        0,
    );
    assert_at(
        error_at(&errors, "dns.tcp_max_connections"),
        &path,
        config,
        "\"many\"",
        0,
    );
}

#[test]
fn unknown_key_in_an_inline_record_names_the_record() {
    let config = "[dns]\n[[dns.zones]]\nname = \"zone.test\"\nrecords = [\n    { name = \"@\", type = \"NS\", values = [\"ns1.zone.test.\"] },\n    { name = \"www\", typ = \"A\", values = [\"192.0.2.1\"] },\n]\n";
    let (errors, path, _dir) = errors_of(config, &[]);
    assert_eq!(errors.len(), 1, "{}", list(&errors));
    assert!(
        errors[0].message.contains("typ"),
        "names the key: {}",
        errors[0]
    );
    assert_at(&errors[0], &path, config, "typ =", 0);
    assert_eq!(
        errors[0].key_path, "dns.zones[0].records[1]",
        "{}",
        errors[0]
    );
}

#[test]
fn record_name_outside_the_zone_is_rejected() {
    let config = format!(
        "[dns]\n[[dns.zones]]\nname = \"zone.test\"\n{NS}\n[[dns.zones.records]]\nname = \"www.elsewhere.test.\"\ntype = \"A\"\nvalues = [\"192.0.2.1\"]\n"
    );
    let (errors, path, _dir) = errors_of(&config, &[]);
    assert_eq!(errors.len(), 1, "{}", list(&errors));
    let error = error_at(&errors, "dns.zones[0].records[1].name");
    assert_at(error, &path, &config, "\"www.elsewhere.test.\"", 0);
    assert!(
        error.message.contains("www.elsewhere.test.") && error.message.contains("outside"),
        "{error}"
    );
}

#[test]
fn cname_beside_other_data_is_rejected() {
    let config = format!(
        "[dns]\n[[dns.zones]]\nname = \"zone.test\"\n{NS}\n[[dns.zones.records]]\nname = \"www\"\ntype = \"A\"\nvalues = [\"192.0.2.1\"]\n\n[[dns.zones.records]]\nname = \"www\"\ntype = \"CNAME\"\nvalues = [\"other.zone.test.\"]\n"
    );
    let (errors, _path, _dir) = errors_of(&config, &[]);
    assert_eq!(errors.len(), 1, "{}", list(&errors));
    assert!(
        errors[0].key_path.starts_with("dns.zones[0].records["),
        "points at a record: {}",
        errors[0]
    );
    assert!(
        errors[0].message.contains("CNAME") && errors[0].message.contains("www.zone.test."),
        "{}",
        errors[0]
    );
    assert!(errors[0].line > 0, "{}", errors[0]);
}

#[test]
fn two_cnames_at_one_name_are_rejected() {
    let config = format!(
        "[dns]\n[[dns.zones]]\nname = \"zone.test\"\n{NS}\n[[dns.zones.records]]\nname = \"alias\"\ntype = \"CNAME\"\nvalues = [\"a.zone.test.\", \"b.zone.test.\"]\n"
    );
    let (errors, _path, _dir) = errors_of(&config, &[]);
    assert_eq!(errors.len(), 1, "{}", list(&errors));
    assert!(
        errors[0].message.contains("CNAME") && errors[0].message.contains("alias.zone.test."),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].key_path.starts_with("dns.zones[0].records[1]"),
        "{}",
        errors[0]
    );
    // The same through two separate record sets.
    let config = format!(
        "[dns]\n[[dns.zones]]\nname = \"zone.test\"\n{NS}\n[[dns.zones.records]]\nname = \"alias\"\ntype = \"CNAME\"\nvalues = [\"a.zone.test.\"]\n[[dns.zones.records]]\nname = \"ALIAS\"\ntype = \"CNAME\"\nvalues = [\"b.zone.test.\"]\n"
    );
    let (errors, _path, _dir) = errors_of(&config, &[]);
    assert_eq!(errors.len(), 1, "{}", list(&errors));
}

#[test]
fn ttl_out_of_range_is_rejected() {
    let config = format!(
        "[dns]\n[[dns.zones]]\nname = \"zone.test\"\nttl = 4294967296\n{NS}\n[[dns.zones.records]]\nname = \"neg\"\ntype = \"A\"\nttl = -1\nvalues = [\"192.0.2.1\"]\n\n[[dns.zones.records]]\nname = \"big\"\ntype = \"A\"\nttl = 2147483648\nvalues = [\"192.0.2.2\"]\n"
    );
    let (errors, path, _dir) = errors_of(&config, &[]);
    assert_eq!(errors.len(), 3, "{}", list(&errors));
    assert_at(
        error_at(&errors, "dns.zones[0].ttl"),
        &path,
        &config,
        "4294967296",
        0,
    );
    assert_at(
        error_at(&errors, "dns.zones[0].records[1].ttl"),
        &path,
        &config,
        "-1",
        0,
    );
    assert_at(
        error_at(&errors, "dns.zones[0].records[2].ttl"),
        &path,
        &config,
        "2147483648",
        0,
    );
    for error in &errors {
        assert!(
            error.message.contains("2147483647") || error.message.contains("range"),
            "says the range: {error}"
        );
    }
}

#[tokio::test]
async fn largest_ttl_is_accepted_and_served() {
    let config = format!(
        "[dns]\n[[dns.zones]]\nname = \"zone.test\"\n{NS}\n[[dns.zones.records]]\nname = \"max\"\ntype = \"A\"\nttl = 2147483647\nvalues = [\"192.0.2.1\"]\n"
    );
    let server = start(&config, &[]).await;
    let reply = server.raw_udp(&q("max.zone.test.", A)).await;
    assert_rrs(
        &reply,
        &reply.answer,
        &[rr(
            "max.zone.test.",
            A,
            2_147_483_647,
            crate::harness::a("192.0.2.1"),
        )],
        "answer",
    );
}

#[test]
fn zone_without_ns_is_rejected_saying_so() {
    let config = "[dns]\n[[dns.zones]]\nname = \"zone.test\"\n\n[[dns.zones.records]]\nname = \"www\"\ntype = \"A\"\nvalues = [\"192.0.2.1\"]\n";
    let (errors, path, _dir) = errors_of(config, &[]);
    assert_eq!(errors.len(), 1, "{}", list(&errors));
    assert_eq!(errors[0].key_path, "dns.zones[0].name", "{}", errors[0]);
    assert_at(&errors[0], &path, config, "\"zone.test\"", 0);
    assert!(errors[0].message.contains("NS"), "{}", errors[0]);
}

#[tokio::test]
async fn soa_is_generated_when_none_is_given() {
    let config = "[dns]\n[[dns.zones]]\nname = \"zone.test\"\nrecords = [{ name = \"@\", type = \"NS\", values = [\"ns-z.zone.test.\", \"ns-a.zone.test.\"] }]\n";
    let server = start(config, &[]).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for reply in server.raw_both(&q("zone.test.", SOA)).await {
        assert_rcode(&reply, NOERROR);
        assert_eq!(reply.answer.len(), 1, "{reply:?}");
        let got = &reply.answer[0];
        let serial = u32::from_be_bytes(
            got.rdata[got.rdata.len() - 20..got.rdata.len() - 16]
                .try_into()
                .unwrap(),
        );
        assert!(serial > 0, "a serial is present: {reply:?}");
        let serial_is_recent = (i64::from(serial) - now as i64).abs() < 86_400;
        assert!(
            serial_is_recent,
            "serial {serial} should be the load time ({now}): {reply:?}"
        );
        let want = soa(
            "ns-z.zone.test.",
            "hostmaster.zone.test.",
            [serial, 3600, 900, 1_209_600, 300],
        );
        assert_rrs(
            &reply,
            &reply.answer,
            &[rr("zone.test.", SOA, 3600, want)],
            "generated SOA (mname = first NS)",
        );
    }
}

#[tokio::test]
async fn inline_soa_overrides_the_zone_files() {
    let zone = "$ORIGIN zone.test.\n$TTL 600\n@ SOA ns1 hostmaster 1 7200 600 2419200 120\n@ NS ns1\nns1 A 192.0.2.1\n";
    let config = "[dns]\n[[dns.zones]]\nname = \"zone.test\"\nfile = \"z.zone\"\nsoa = { mname = \"ns1.zone.test.\", rname = \"dns.zone.test.\", serial = 42, minimum = \"2m\", ttl = 900 }\n";
    let server = start(config, &[("z.zone", zone)]).await;
    for reply in server.raw_both(&q("zone.test.", SOA)).await {
        let want = soa(
            "ns1.zone.test.",
            "dns.zone.test.",
            [42, 3600, 900, 1_209_600, 120],
        );
        assert_rrs(
            &reply,
            &reply.answer,
            &[rr("zone.test.", SOA, 900, want)],
            "only the inline SOA",
        );
    }
}

#[test]
fn duplicate_zone_is_rejected() {
    let config = format!(
        "[dns]\n[[dns.zones]]\nname = \"zone.test\"\n{NS}\n[[dns.zones]]\nname = \"ZONE.test.\"\n{NS}"
    );
    let (errors, _path, _dir) = errors_of(&config, &[]);
    assert_eq!(errors.len(), 1, "{}", list(&errors));
    assert!(
        errors[0].key_path.starts_with("dns.zones[1]"),
        "{}",
        errors[0]
    );
    assert!(errors[0].message.contains("zone.test."), "{}", errors[0]);
    let header = position(&config, "[[dns.zones]]", 1).0;
    let name = position(&config, "\"ZONE.test.\"", 0).0;
    assert!(
        (header..=name).contains(&errors[0].line),
        "points at the second zone (lines {header}..={name}): {}",
        errors[0]
    );
}

#[test]
fn bad_listen_addresses_are_rejected() {
    let config = "[dns]\nlisten = [\"127.0.0.1\", \"localhost:53\", \"[::1]:99999\", \"127.0.0.1:53\", \"127.0.0.1:53\"]\n";
    let (errors, path, _dir) = errors_of(config, &[]);
    assert_eq!(errors.len(), 4, "{}", list(&errors));
    assert_at(
        error_at(&errors, "dns.listen[0]"),
        &path,
        config,
        "\"127.0.0.1\"",
        0,
    );
    assert_at(
        error_at(&errors, "dns.listen[1]"),
        &path,
        config,
        "\"localhost:53\"",
        0,
    );
    assert_at(
        error_at(&errors, "dns.listen[2]"),
        &path,
        config,
        "\"[::1]:99999\"",
        0,
    );
    assert_at(
        error_at(&errors, "dns.listen[4]"),
        &path,
        config,
        "\"127.0.0.1:53\"",
        1,
    );
}

#[test]
fn zone_file_errors_name_the_zone_file_and_line() {
    let zone = "$ORIGIN zone.test.\n$TTL 600\n@ NS ns1\nbad A not-an-address\nns1 A 192.0.2.1\nworse AAAA 192.0.2.1\n";
    let config = "[dns]\n[[dns.zones]]\nname = \"zone.test\"\nfile = \"zones/z.zone\"\n";
    let (errors, path, _dir) = errors_of(config, &[("zones/z.zone", zone)]);
    let zone_path = path.parent().unwrap().join("zones/z.zone");
    let shown = list(&errors);
    assert!(
        errors.iter().all(|e| e.file == zone_path),
        "errors are in the zone file:\n{shown}"
    );
    assert!(
        shown.contains(&format!("{}:4", zone_path.display())),
        "line 4 reported:\n{shown}"
    );
    assert!(
        shown.contains(&format!("{}:6", zone_path.display())),
        "line 6 reported too:\n{shown}"
    );
    assert_eq!(errors.len(), 2, "{shown}");
}

#[test]
fn missing_zone_file_is_reported_with_its_path() {
    let config = "[dns]\n[[dns.zones]]\nname = \"zone.test\"\nfile = \"zones/absent.zone\"\n";
    let (errors, path, _dir) = errors_of(config, &[]);
    let shown = list(&errors);
    assert_eq!(errors.len(), 1, "{shown}");
    assert!(
        shown.contains(
            &path
                .parent()
                .unwrap()
                .join("zones/absent.zone")
                .display()
                .to_string()
        ),
        "names the full path: {shown}"
    );
    assert_eq!(errors[0].key_path, "dns.zones[0].file", "{shown}");
}

/// Ten independent mistakes of every kind, structural and value ones mixed, each expected at
/// `(needle, nth occurrence, key path, words of the message)`.
const TEN_MISTAKES: &str = r#"[dns]
listen = ["127.0.0.1:0"]
workerz = 2

[[health_checks]]
id = "web"
type = "tcp"
target = "127.0.0.1:1"
interval = "10 parsecs"

[[dns.zones]]
name = "zone.test"
ttl = "300"

[[dns.zones.records]]
name = "@"
type = "NS"
values = ["ns.zone.test."]

[[dns.zones.records]]
name = "ns"
type = "A"
values = ["192.0.2.53"]

[[dns.zones.records]]
name = "www"
type = "CNAME"
values = ["ns.zone.test."]

[[dns.zones.records]]
name = "www"
type = "A"
values = ["192.0.2.1"]

[[dns.zones.records]]
name = "app"
type = "A"
set_id = "a"
weight = 1
health_check = "web"
values = ["192.0.2.2"]

[[dns.zones.records]]
name = "app"
type = "A"
set_id = "b"
failover = "primary"
values = ["192.0.2.3"]

[[dns.zones.records]]
name = "h"
type = "A"
set_id = "one"
weight = 1
health_check = "nope"
values = ["192.0.2.4"]

[[dns.zones]]
name = "missing.test"
file = "missing.zone"

[[dns.zones]]
name = "file.test"
file = "file.zone"

[cdn]
http_listen = ["127.0.0.1:0"]

[[cdn.distributions]]
id = "d"
hosts = ["d.test"]

[[cdn.distributions.origins]]
id = "files"
dir = "nowhere"

[[cdn.distributions.behaviors]]
path = "*"
origin = "files"
compress = "yes"
"#;

#[test]
fn ten_independent_mistakes_get_ten_messages_in_one_pass() {
    let zone = "$ORIGIN file.test.\n@ 3600 IN SOA ns hostmaster 1 3600 900 1209600 300\n@ 3600 IN NS ns.zone.test.\nwww 3600 IN A 999.1.1.1\n";
    let (errors, path, dir) = errors_of(TEN_MISTAKES, &[("file.zone", zone)]);
    let shown = list(&errors);
    assert_eq!(errors.len(), 10, "ten mistakes, ten messages:\n{shown}");
    let folder = dir.path();
    for (needle, nth, key, words) in [
        ("workerz", 0, "dns", "unknown key `workerz`".to_string()),
        (
            "\"10 parsecs\"",
            0,
            "health_checks[0].interval",
            "is not a duration".to_string(),
        ),
        (
            "\"300\"",
            0,
            "dns.zones[0].ttl",
            "expected an integer (seconds), found the string \"300\"".to_string(),
        ),
        (
            "\"ns.zone.test.\"",
            1,
            "dns.zones[0].records[2].values[0]",
            "CNAME at www.zone.test. cannot stand beside other data (A)".to_string(),
        ),
        (
            "[[dns.zones.records]]\nname = \"app\"",
            1,
            "dns.zones[0].records[5]",
            "mixes routing policies (weighted and failover)".to_string(),
        ),
        (
            "\"nope\"",
            0,
            "dns.zones[0].records[6].health_check",
            "no health check has id \"nope\"".to_string(),
        ),
        (
            "\"missing.zone\"",
            0,
            "dns.zones[1].file",
            format!("cannot read {}", folder.join("missing.zone").display()),
        ),
        (
            "\"nowhere\"",
            0,
            "cdn.distributions[0].origins[0].dir",
            "is not a readable folder".to_string(),
        ),
        (
            "\"yes\"",
            0,
            "cdn.distributions[0].behaviors[0].compress",
            "expected true or false, found the string \"yes\"".to_string(),
        ),
    ] {
        let error = error_at(&errors, key);
        assert_at(error, &path, TEN_MISTAKES, needle, nth);
        assert!(error.message.contains(&words), "{words:?}:\n{shown}");
    }
    let zone_line = error_at(&errors, "dns.zones[2].file");
    assert_eq!(
        (zone_line.file.clone(), zone_line.line),
        (folder.join("file.zone"), 4),
        "{shown}"
    );
    assert!(
        zone_line
            .message
            .contains("\"999.1.1.1\" is not an IPv4 address"),
        "{shown}"
    );
    for rust in ["i64", "u32", "invalid type", "field", "sequence"] {
        assert!(!shown.contains(rust), "speaks Rust ({rust}):\n{shown}");
    }
    // Follow-on errors are not reported: the behavior using the broken origin, the record
    // using the broken health check, the zone whose NS may be in its unreadable file.
    for follow_on in ["no origin", "\"web\"", "no NS"] {
        assert!(!shown.contains(follow_on), "{follow_on}:\n{shown}");
    }
}

// ------------------------------------------------------------------ write_back

/// A zone file without `$ORIGIN`, so it serves whichever zone names it.
const ANY_ZONE_FILE: &str =
    "@ 300 IN SOA ns1 hostmaster 1 3600 900 1209600 300\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.1\n";

/// `[dns]` with a journal folder and a key for `allow_update`, then `zones`.
fn update_config(zones: &str) -> String {
    format!(
        r#"[dns]
listen = ["127.0.0.1:0"]
data_dir = "data"

[[dns.tsig_keys]]
name = "acme"
secret = "YWNtZS1hY21lLWFjbWUtYWNtZS1hY21lLWFjbWUhIQ=="
{zones}"#
    )
}

const UPDATABLE: &str =
    r#"allow_update = [{ key = "acme", names = ["_acme-challenge"], types = ["TXT"] }]"#;

#[test]
fn write_back_is_refused_where_the_zone_file_cannot_hold_the_zone() {
    let config = update_config(&format!(
        r#"
[[dns.zones]]
name = "nofile.test"
{UPDATABLE}
write_back = true
records = [{{ name = "@", type = "NS", values = ["ns1.nofile.test."] }}]

[[dns.zones]]
name = "noupdate.test"
file = "plain.zone"
write_back = true

[[dns.zones]]
name = "inline.test"
file = "plain.zone"
{UPDATABLE}
write_back = true
records = [
  {{ name = "www", type = "A", values = ["192.0.2.10"], set_id = "a", weight = 1 }},
  {{ name = "www", type = "A", values = ["192.0.2.11"], set_id = "b", weight = 2 }},
]

[[dns.zones]]
name = "soa.test"
file = "plain.zone"
soa = {{ serial = 5 }}
{UPDATABLE}
write_back = true

[[dns.zones]]
name = "include.test"
file = "main.zone"
{UPDATABLE}
write_back = true

[[dns.zones]]
name = "ok.test"
file = "plain.zone"
{UPDATABLE}
write_back = true

[[dns.zones]]
name = "off.test"
write_back = false
records = [{{ name = "@", type = "NS", values = ["ns1.off.test."] }}]
"#
    ));
    let files = [
        ("plain.zone", ANY_ZONE_FILE),
        ("main.zone", "$INCLUDE more.zone\n"),
        ("more.zone", ANY_ZONE_FILE),
    ];
    let (errors, path, dir) = errors_of(&config, &files);
    let shown = list(&errors);
    assert_eq!(errors.len(), 5, "five zones, five errors:\n{shown}");
    let more = dir.path().join("more.zone").display().to_string();
    for (zone, words) in [
        (0, "this zone has none: set `file`".to_string()),
        (1, "this zone allows none: set allow_update".to_string()),
        (
            2,
            "move dns.zones[2].records into the file (routed sets cannot be written to a zone file"
                .to_string(),
        ),
        (3, "put dns.zones[3].soa in it".to_string()),
        (4, format!("this zone's file $INCLUDEs others ({more})")),
    ] {
        let error = error_at(&errors, &format!("dns.zones[{zone}].write_back"));
        assert_at(error, &path, &config, "true\n", zone);
        assert!(error.message.contains(&words), "{words:?}:\n{shown}");
    }
}

#[test]
fn write_back_names_the_zone_file_for_the_updates() {
    let config = update_config(&format!(
        r#"
[[dns.zones]]
name = "ok.test"
file = "zones/ok.zone"
{UPDATABLE}
write_back = true

[[dns.zones]]
name = "journal.test"
file = "zones/ok.zone"
{UPDATABLE}
"#
    ));
    let (dir, path) = write_files(&config, &[("zones/ok.zone", ANY_ZONE_FILE)]);
    let dns = crate::harness::load_ok(&path).dns.expect("a [dns] section");
    assert_eq!(
        dns.zones[0].update.write_back,
        Some(dir.path().join("zones/ok.zone"))
    );
    assert_eq!(dns.zones[1].update.write_back, None, "off by default");
}

// ------------------------------------------------------------------ warnings

/// A transferable zone with weighted, failover, multivalue and CIDR names, a transferable
/// zone without routed names, and a routed zone nobody may transfer.
const TRANSFERABLE_ROUTED: &str = r#"[dns]
listen = ["127.0.0.1:0"]

[[dns.cidr_collections]]
id = "home"
locations = { lan = ["192.168.0.0/16"] }

[[dns.zones]]
name = "routed.test"
allow_transfer = ["127.0.0.1/32"]
records = [
  { name = "@", type = "NS", values = ["ns1.routed.test."] },
  { name = "ns1", type = "A", values = ["192.0.2.1"] },
  { name = "www", type = "A", values = ["192.0.2.10"], set_id = "light", weight = 10 },
  { name = "www", type = "A", values = ["192.0.2.11"], set_id = "heavy", weight = 90 },
  { name = "app", type = "A", values = ["192.0.2.21"], set_id = "backup", failover = "secondary" },
  { name = "app", type = "A", values = ["192.0.2.20"], set_id = "main", failover = "primary" },
  { name = "mv", type = "AAAA", values = ["2001:db8::1"], set_id = "m1", multivalue = true },
  { name = "mv", type = "AAAA", values = ["2001:db8::2"], set_id = "m2", multivalue = true },
  { name = "nas", type = "A", values = ["192.168.1.5"], set_id = "inside", cidr = { collection = "home", location = "lan" } },
  { name = "nas", type = "A", values = ["192.0.2.5"], set_id = "outside", cidr = { collection = "home", location = "*" } },
]

[[dns.zones]]
name = "plain.test"
allow_transfer = ["127.0.0.1/32"]
records = [{ name = "@", type = "NS", values = ["ns1.routed.test."] }]

[[dns.zones]]
name = "private.test"
records = [
  { name = "@", type = "NS", values = ["ns1.routed.test."] },
  { name = "www", type = "A", values = ["192.0.2.10"], set_id = "a", weight = 1 },
  { name = "www", type = "A", values = ["192.0.2.11"], set_id = "b", weight = 2 },
]
"#;

/// What the warning must say of each routed name of `routed.test`.
const TRANSFERRED_SETS: [&str; 4] = [
    r#"www.routed.test. A gets set "heavy" (the heaviest weighted set)"#,
    r#"app.routed.test. A gets set "main" (the failover primary)"#,
    r#"mv.routed.test. AAAA gets sets "m1", "m2" (every multivalue set)"#,
    r#"nas.routed.test. A gets set "outside" (the CIDR default, location "*")"#,
];

#[test]
fn check_warns_that_a_transferable_zone_has_routed_sets_and_still_passes() {
    let (_dir, path) = write_files(TRANSFERABLE_ROUTED, &[]);
    let output = crate::config_binary::run(
        &["check", "--config", path.to_str().unwrap()],
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "a warning is no error: {:?}\n{stderr}",
        output.status
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("ok (3 zones)"),
        "says ok"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    let [warning] = lines.as_slice() else {
        panic!("one warning, for routed.test only:\n{stderr}");
    };
    let (line, col) = position(TRANSFERABLE_ROUTED, "\"127.0.0.1/32\"", 0);
    let at = format!(
        "warning: {}:{line}:{col}: dns.zones[0].allow_transfer: zone routed.test. may be \
         transferred, but secondaries cannot apply routing policies",
        path.display()
    );
    assert!(
        warning.starts_with(&at),
        "{warning}\n  should start with {at}"
    );
    for sets in TRANSFERRED_SETS {
        assert!(warning.contains(sets), "{sets:?}:\n{warning}");
    }
}

/// A signed zone that may be transferred, with a serial of its own: its serial does not move
/// with the daily renewal of its signatures, and secondaries would serve expired ones.
#[test]
fn check_warns_that_a_transferable_signed_zone_has_a_configured_serial() {
    let zone = |name: &str, soa: &str| {
        format!(
            "[[dns.zones]]\nname = \"{name}\"\nallow_transfer = [\"127.0.0.1/32\"]\n\
             dnssec = {{ keys_dir = \"keys\" }}\n{soa}\
             records = [{{ name = \"@\", type = \"NS\", values = [\"ns1.{name}.\"] }}]\n"
        )
    };
    let text = format!(
        "[dns]\n{}{}",
        zone(
            "fixed.test",
            "soa = { mname = \"ns1.fixed.test.\", rname = \"h.fixed.test.\", serial = 7 }\n"
        ),
        zone("generated.test", "")
    );
    let (_dir, path) = write_files(&text, &[]);
    let output = crate::config_binary::run(
        &["check", "--config", path.to_str().unwrap()],
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "a warning is no error:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let [warning] = lines.as_slice() else {
        panic!("one warning, for fixed.test only:\n{stderr}");
    };
    assert!(
        warning.contains("dns.zones[0].dnssec: zone fixed.test. is signed and may be transferred")
            && warning.contains("at least every 13 days"),
        "{warning}"
    );
}

#[tokio::test]
async fn the_server_logs_the_warning_at_start_and_at_each_reload() {
    let (dir, path) = write_files(TRANSFERABLE_ROUTED, &[]);
    let mut command = tokio::process::Command::new(crate::config_binary::BIN);
    command
        .args(["--config", path.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    let server = Background::spawn(&mut command, dir.path().join("dns.log"), "edgewise-dns");
    let log = logged_warnings(&server, 1).await;
    for sets in TRANSFERRED_SETS {
        assert!(log.contains(sets), "{sets:?}:\n{log}");
    }
    server.signal(rustix::process::Signal::HUP);
    logged_warnings(&server, 2).await;
}

/// The server's log once it holds `times` warnings about `routed.test` (10 s at most).
async fn logged_warnings(server: &Background, times: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        let found = (log.lines())
            .filter(|l| l.contains("WARN") && l.contains("zone routed.test. may be transferred"))
            .count();
        if found >= times {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "no warning #{times} within 10 s:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
