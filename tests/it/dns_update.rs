//! Dynamic updates (RFC 2136) from `nsupdate`, as ACME clients' DNS-01 hooks send them:
//! signed with TSIG, allowed by the zone's policy, answered only once journaled, served at
//! once, and still there after a restart.

use std::path::Path;
use std::time::Duration;

use crate::harness::{TestServer, load_ok, serve, start, write_files};

const SECRET: &str = "YWNtZS1hY21lLWFjbWUtYWNtZS1hY21lLWFjbWUhIQ==";

fn config(data_dir: &Path) -> String {
    format!(
        r#"
[dns]
data_dir = "{}"
[[dns.tsig_keys]]
name = "acme"
secret = "{SECRET}"

[[dns.zones]]
name = "home.test"
soa = {{ mname = "ns1.home.test.", rname = "hostmaster.home.test.", serial = 10 }}
allow_update = [{{ key = "acme", names = ["_acme-challenge", "_acme-challenge.*"], types = ["TXT"] }}]
allow_transfer = ["127.0.0.1"]
records = [
  {{ name = "@", type = "NS", values = ["ns1.home.test."] }},
  {{ name = "ns1", type = "A", values = ["192.0.2.1"] }},
  {{ name = "www", type = "A", values = ["192.0.2.10"] }},
]
"#,
        data_dir.display()
    )
}

/// Runs `nsupdate` (`-v`: TCP) on `script` (after the server and zone lines); its output.
async fn nsupdate(server: &TestServer, key: Option<&str>, tcp: bool, script: &str) -> String {
    let mut command = tokio::process::Command::new("nsupdate");
    if let Some(key) = key {
        command.args(["-y", key]);
    }
    if tcp {
        command.arg("-v");
    }
    let mut child = command
        .args(["-t", "5"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("nsupdate is installed (bind9-dnsutils)");
    let text = format!(
        "server 127.0.0.1 {}\nzone home.test\n{script}\nsend\n",
        server.addr().port()
    );
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, text.as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("nsupdate finishes")
        .unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    if output.status.success() {
        text
    } else {
        format!("FAILED {}: {text}", output.status)
    }
}

async fn dig(server: &TestServer, args: &str) -> String {
    let output = tokio::process::Command::new("dig")
        .arg("@127.0.0.1")
        .args(["-p", &server.addr().port().to_string()])
        .args(["+short", "+norec", "+time=2", "+tries=1"])
        .args(args.split_whitespace())
        .output()
        .await
        .expect("dig");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A server for `dns` whose files live elsewhere (the test keeps the config's folder).
fn serve_apart(dns: &edgewise::config::DnsConfig) -> TestServer {
    let bound = edgewise::dns::DnsServer::bind(dns).expect("bind on ephemeral ports");
    serve(bound, tempfile::tempdir().unwrap())
}

fn serial(soa: &str) -> u32 {
    soa.split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an SOA: {soa:?}"))
}

fn key() -> String {
    format!("hmac-sha256:acme:{SECRET}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsupdate_adds_checks_prerequisites_deletes_and_the_changes_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = start(&config(data.path()), &[]).await;
    let key = key();

    let added = nsupdate(
        &server,
        Some(&key),
        false,
        "update add _acme-challenge.home.test. 60 TXT \"token-1\"",
    )
    .await;
    assert!(!added.starts_with("FAILED"), "{added}");
    assert_eq!(
        dig(&server, "_acme-challenge.home.test TXT").await,
        "\"token-1\""
    );
    assert_eq!(serial(&dig(&server, "home.test SOA").await), 11);

    // A prerequisite that fails (the RRset exists) changes nothing: YXRRSET.
    let refused = nsupdate(
        &server,
        Some(&key),
        true,
        "prereq nxrrset _acme-challenge.home.test. TXT\nupdate add _acme-challenge.home.test. 60 TXT \"token-2\"",
    )
    .await;
    assert!(refused.contains("YXRRSET"), "{refused}");
    assert_eq!(
        dig(&server, "_acme-challenge.home.test TXT").await,
        "\"token-1\""
    );

    // Over TCP, with a prerequisite that holds, for the name of a www certificate too.
    let both = nsupdate(
        &server,
        Some(&key),
        true,
        "prereq yxrrset _acme-challenge.home.test. TXT\n\
         update delete _acme-challenge.home.test. TXT\n\
         update add _acme-challenge.www.home.test. 60 TXT \"token-www\"",
    )
    .await;
    assert!(!both.starts_with("FAILED"), "{both}");
    assert_eq!(dig(&server, "_acme-challenge.home.test TXT").await, "");
    assert_eq!(
        dig(&server, "_acme-challenge.www.home.test TXT").await,
        "\"token-www\""
    );
    assert_eq!(serial(&dig(&server, "home.test SOA").await), 12);

    // Outside the policy (a name or a type it does not list), or unsigned: REFUSED.
    for (signed, script) in [
        (true, "update add www.home.test. 60 A 192.0.2.99"),
        (
            true,
            "update add _acme-challenge.home.test. 60 CAA 0 issue \"ca.example\"",
        ),
        (false, "update add _acme-challenge.home.test. 60 TXT \"x\""),
    ] {
        let out = nsupdate(&server, signed.then_some(key.as_str()), false, script).await;
        assert!(out.contains("REFUSED"), "{script}: {out}");
    }
    assert_eq!(dig(&server, "www.home.test A").await, "192.0.2.10");
    // A wrong secret: the answer is NOTAUTH (BADSIG), nothing changes.
    let forged = nsupdate(
        &server,
        Some("hmac-sha256:acme:Zm9yZ2VkLWZvcmdlZC1mb3JnZWQtZm9yZ2VkIQ=="),
        false,
        "update add _acme-challenge.home.test. 60 TXT \"forged\"",
    )
    .await;
    assert!(forged.starts_with("FAILED"), "{forged}");
    assert_eq!(dig(&server, "_acme-challenge.home.test TXT").await, "");
    assert_eq!(serial(&dig(&server, "home.test SOA").await), 12);

    // IXFR from the first version gets the two changes, not the zone (RFC 1995 §4).
    let ixfr = dig(&server, "+tcp home.test IXFR=10").await;
    let lines: Vec<&str> = ixfr.lines().collect();
    let serials: Vec<u32> = (lines.iter())
        .filter(|l| l.starts_with("ns1.home.test. hostmaster"))
        .map(|l| serial(l))
        .collect();
    assert_eq!(serials, [12, 10, 11, 11, 12, 12], "{ixfr}");
    assert!(
        ixfr.contains("\"token-www\"") && ixfr.contains("\"token-1\""),
        "{ixfr}"
    );
    assert!(
        !ixfr.contains("192.0.2.10"),
        "incremental, not the whole zone: {ixfr}"
    );
    // From a version the journal never had: the whole zone.
    let axfr = dig(&server, "+tcp home.test IXFR=9").await;
    assert!(axfr.contains("192.0.2.10"), "{axfr}");

    // A restart on the same data_dir serves what the journal kept.
    drop(server);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = start(&config(data.path()), &[]).await;
    assert_eq!(
        dig(&again, "_acme-challenge.www.home.test TXT").await,
        "\"token-www\""
    );
    assert_eq!(dig(&again, "_acme-challenge.home.test TXT").await, "");
    assert_eq!(serial(&dig(&again, "home.test SOA").await), 12);
}

/// Forty nsupdate processes at once, half of them over TCP: every update is answered NOERROR
/// and served, updates that arrive together share a journal entry and a serial step (so
/// the serial moves by at most one per update), and a prerequisite sees the updates
/// committed before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_are_committed_in_groups_and_all_served() {
    let data = tempfile::tempdir().unwrap();
    let text = config(data.path()).replace(
        "[dns]\n",
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nstatus_listen = [\"127.0.0.1:0\"]\n",
    );
    let (dir, path) = write_files(&text, &[]);
    let dns = load_ok(&path).dns.expect("[dns]");
    let bound = edgewise::dns::DnsServer::bind(&dns).expect("bind on ephemeral ports");
    let status = bound.status_addrs()[0];
    let server = serve(bound, dir);
    let key = key();
    let clients = 40;
    let runs = (0..clients).map(|i| {
        let (server, key) = (&server, &key);
        async move {
            let script = format!("update add _acme-challenge.h{i}.home.test. 60 TXT \"token-{i}\"");
            nsupdate(server, Some(key), i % 2 == 0, &script).await
        }
    });
    for (i, output) in futures_util::future::join_all(runs)
        .await
        .into_iter()
        .enumerate()
    {
        assert!(!output.starts_with("FAILED"), "client {i}: {output}");
    }
    for i in 0..clients {
        assert_eq!(
            dig(&server, &format!("_acme-challenge.h{i}.home.test TXT")).await,
            format!("\"token-{i}\""),
            "client {i}"
        );
    }
    let after = serial(&dig(&server, "home.test SOA").await);
    assert!((11..=10 + clients).contains(&after), "serial {after}");

    // Every update is in the journal: a secondary at serial 10 gets them all by IXFR.
    let ixfr = tokio::process::Command::new("dig")
        .arg("@127.0.0.1")
        .args(["-p", &server.addr().port().to_string()])
        .args(["+tcp", "+time=5", "home.test", "IXFR=10"])
        .output()
        .await
        .expect("dig");
    let ixfr = String::from_utf8_lossy(&ixfr.stdout);
    let added = ixfr.lines().filter(|l| l.contains("\"token-")).count();
    assert_eq!(added, clients as usize, "{ixfr}");

    // Each update is counted once under its zone and rcode.
    let (code, metrics) = crate::health_checks::status_get(status, "/metrics").await;
    assert_eq!(code, 200, "{metrics}");
    let applied =
        format!("edgewise_dns_updates_total{{zone=\"home.test\",rcode=\"NOERROR\"}} {clients}");
    assert!(
        metrics.lines().any(|l| l == applied),
        "{applied} in:\n{metrics}"
    );

    // A prerequisite is checked against what was committed before it.
    let yes = nsupdate(
        &server,
        Some(&key),
        false,
        "prereq yxrrset _acme-challenge.h7.home.test. TXT\nupdate delete _acme-challenge.h7.home.test. TXT",
    )
    .await;
    assert!(!yes.starts_with("FAILED"), "{yes}");
    assert_eq!(dig(&server, "_acme-challenge.h7.home.test TXT").await, "");
}

/// `write_back = true`: after an update the zone file holds the zone as served (the new
/// record, the new serial), edgewise-dns reads it back to the same answers after a restart,
/// the journal replayed on top of it adds nothing twice, and hand edits of the written file
/// stand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_back_puts_updates_into_the_zone_file() {
    let data = tempfile::tempdir().unwrap();
    let zone_file = "$ORIGIN home.test.\n$TTL 300\n@ SOA ns1 hostmaster 10 3600 900 1209600 300\n\
                     @ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.10 ; the web server\n";
    let text = format!(
        r#"
[dns]
listen = ["127.0.0.1:0"]
data_dir = "{}"
[[dns.tsig_keys]]
name = "acme"
secret = "{SECRET}"

[[dns.zones]]
name = "home.test"
file = "home.test.zone"
write_back = true
allow_update = [{{ key = "acme", names = ["_acme-challenge", "www"], types = ["TXT", "A"] }}]
"#,
        data.path().display()
    );
    let (dir, path) = write_files(&text, &[("home.test.zone", zone_file)]);
    let file = dir.path().join("home.test.zone");
    // The config's folder outlives each server: the last one starts on a file edited by hand.
    let server = serve_apart(&load_ok(&path).dns.expect("[dns]"));
    let key = key();
    let added = nsupdate(
        &server,
        Some(&key),
        false,
        "update add _acme-challenge.home.test. 60 TXT \"token w/ space\"\nupdate delete www.home.test. A\nupdate add www.home.test. 300 A 192.0.2.11",
    )
    .await;
    assert!(!added.starts_with("FAILED"), "{added}");
    let written = std::fs::read_to_string(&file).expect("the zone file");
    assert!(
        written.contains("token w/ space") && written.contains("192.0.2.11"),
        "{written}"
    );
    assert!(!written.contains("192.0.2.10"), "{written}");
    assert!(
        written.contains(" 11 "),
        "the new serial is in the file:\n{written}"
    );

    // A server started on the written file and the journal serves each record once.
    let config = load_ok(&path);
    let dns = config.dns.expect("[dns]");
    let zone = &dns.zones[0];
    let txt = zone
        .rrsets
        .iter()
        .find(|s| s.rtype == hickory_proto::rr::RecordType::TXT)
        .expect("the TXT read back from the file");
    assert_eq!(txt.rdatas.len(), 1);
    drop(server);
    let again = serve_apart(&dns);
    assert_eq!(
        dig(&again, "_acme-challenge.home.test TXT").await,
        "\"token w/ space\""
    );
    assert_eq!(dig(&again, "www.home.test A").await, "192.0.2.11");
    assert_eq!(serial(&dig(&again, "home.test SOA").await), 11);
    drop(again);

    // The file is the user's again: edited by hand (serial left as it is), it is served as
    // edited; the journal does not bring back what the person took out.
    let edited = (written.lines())
        .filter(|line| !line.contains("token w/ space"))
        .map(|line| line.replace("192.0.2.11", "192.0.2.12") + "\n")
        .collect::<String>();
    std::fs::write(&file, edited).expect("edit the zone file");
    let dns = load_ok(&path).dns.expect("[dns]");
    let edited = serve_apart(&dns);
    assert_eq!(dig(&edited, "_acme-challenge.home.test TXT").await, "");
    assert_eq!(dig(&edited, "www.home.test A").await, "192.0.2.12");
    assert_eq!(serial(&dig(&edited, "home.test SOA").await), 11);
}

#[test]
fn a_zone_that_allows_updates_needs_data_dir_and_known_keys() {
    let text = r#"
[dns]
[[dns.zones]]
name = "z.test"
allow_update = [{ key = "nobody", names = ["x"], types = ["TXT", "SOA"] }]
records = [{ name = "@", type = "NS", values = ["ns1.z.test."] }]
"#;
    let errors = edgewise::config::Config::from_str(text, Path::new("t.toml"))
        .expect_err("invalid update policy");
    let text = format!("{errors:?}");
    assert!(text.contains("data_dir"), "{text}");
    assert!(text.contains("nobody"), "{text}");
}
