//! DNSViz (Debian's `dnsviz`) probes a signed zone served by edgewise-dns on loopback, as
//! the zone's only authoritative server, and finds every status secure: answers, NODATA
//! and NXDOMAIN proofs, the DNSKEY, with the zone's key as trust anchor. A different anchor
//! makes it report the zone bogus, so the check can fail.
//!
//! The zone's NS and addresses are on loopback: DNSViz queries nothing but what the test
//! serves (`-x ZONE+:` names the zone's server and keeps it from walking up to the root).

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use crate::harness::start;

const ZONE: &str = r#"
[dns]
listen = ["127.0.0.1:0"]
[[dns.zones]]
name = "viz.test"
dnssec = { keys_dir = "keys" }
records = [
  { name = "@", type = "NS", values = ["ns1.viz.test."] },
  { name = "@", type = "MX", values = ["10 mail.viz.test."] },
  { name = "ns1", type = "A", values = ["127.0.0.1"] },
  { name = "mail", type = "A", values = ["127.0.0.25"] },
  { name = "www", type = "AAAA", values = ["::1"] },
  { name = "a.b.c", type = "TXT", values = ['"deep"'] },
  { name = "*.w", type = "TXT", values = ['"wild"'] },
]
"#;

/// Names DNSViz asks about besides the apex: a name, an empty non-terminal, a wildcard
/// expansion and a name that does not exist.
const NAMES: &[&str] = &[
    "www.viz.test",
    "b.c.viz.test",
    "x.w.viz.test",
    "nope.viz.test",
];

async fn run(command: &mut Command) -> String {
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("dnsviz finishes within a minute")
        .expect("dnsviz runs (apt-get install dnsviz)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?}:\n{text}");
    text
}

/// `dnsviz print` of a probe of the zone at `port`, trusting the DNSKEY lines in `anchor`.
async fn probe_and_print(dir: &Path, port: u16, anchor: &Path) -> String {
    let probe = dir.join("probe.json");
    let server = format!("viz.test+:ns1.viz.test=127.0.0.1:{port}");
    let mut command = Command::new("dnsviz");
    command
        .args(["probe", "-4", "-A", "-x", &server, "-o"])
        .arg(&probe)
        .arg("viz.test")
        .args(NAMES);
    run(&mut command).await;
    let mut command = Command::new("dnsviz");
    command
        .args(["print", "-t"])
        .arg(anchor)
        .arg("-r")
        .arg(&probe);
    run(&mut command).await
}

/// Every status DNSViz printed (`[.]` secure; `[-]` insecure, `[!]` error, `[?]` warning).
fn statuses(printed: &str) -> Vec<&str> {
    printed
        .match_indices('[')
        .filter_map(|(at, _)| printed[at..].find(']').map(|end| &printed[at..=at + end]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnsviz_finds_every_answer_and_proof_of_the_signed_zone_secure() {
    let server = start(ZONE, &[]).await;
    let dir = server.dir.path().to_path_buf();
    let port = server.addr().port();
    let dnskey = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+noall", "+answer"])
        .args(["viz.test", "DNSKEY"])
        .output()
        .await
        .expect("dig (bind9-dnsutils)");
    let anchor = dir.join("anchor.txt");
    std::fs::write(&anchor, &dnskey.stdout).unwrap();
    assert!(String::from_utf8_lossy(&dnskey.stdout).contains("DNSKEY"));

    let printed = probe_and_print(&dir, port, &anchor).await;
    let found = statuses(&printed);
    assert!(found.len() > 20, "too little analysed:\n{printed}");
    assert!(
        found.iter().all(|s| *s == "[.]"),
        "not all secure:\n{printed}"
    );
    for expected in ["NXDOMAIN", "NODATA", "PROOF", "DNSKEY", "RRSIG"] {
        assert!(printed.contains(expected), "no {expected}:\n{printed}");
    }

    // Trusting another key, nothing is secure.
    let other = std::fs::read_to_string(&anchor)
        .unwrap()
        .replace("DNSKEY\t257 3 13 ", "DNSKEY\t257 3 13 AAAA");
    let wrong = dir.join("wrong.txt");
    std::fs::write(&wrong, other).unwrap();
    let printed = probe_and_print(&dir, port, &wrong).await;
    assert!(
        statuses(&printed).iter().any(|s| *s != "[.]"),
        "a wrong anchor left everything secure:\n{printed}"
    );
}
