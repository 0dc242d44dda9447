//! A ZSK rolled on its schedule (pre-publication, RFC 7583 §3.2.1), walked through with a
//! lifetime of seconds: at each phase the DNSKEY RRset `dig` sees, the key tag of the A
//! RRset's RRSIG, and `delv` with the KSK alone as trust anchor ("fully validated").
//!
//! The schedule's decisions are unit-tested with explicit times (`dnssec::roll`); here the
//! phases are told apart by what is served, polled until the last one shows, so a slow
//! machine only makes the test slower. Each phase lasts at least 6 s.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use edgewise::config::dns::ZskTiming;
use edgewise::dns::DnsServer;
use tokio::process::Command;

use crate::harness::{load_ok, serve, write_files};

const BIN: &str = env!("CARGO_BIN_EXE_edgewise-dns");
/// How long the whole roll may take before the test fails (it needs about 40 s).
const DEADLINE: Duration = Duration::from_secs(180);

/// What one look at the server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    /// Tags of the 257 keys in the DNSKEY RRset.
    ksks: BTreeSet<u16>,
    /// Tags of the 256 keys in it.
    zsks: BTreeSet<u16>,
    /// Tags of the keys whose RRSIGs cover `www`'s A RRset.
    signers: BTreeSet<u16>,
}

async fn output(command: &mut Command) -> String {
    let out = command
        .output()
        .await
        .unwrap_or_else(|e| panic!("{command:?}: {e} (install bind9-dnsutils)"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn dig(port: u16, args: &[&str]) -> Command {
    let mut command = Command::new("dig");
    command
        .args(["@127.0.0.1", "-p", &port.to_string(), "+dnssec", "+tries=3"])
        .args(args);
    command
}

/// The DNSKEY RRset's key tags by kind, then the A RRset's signers.
async fn look(port: u16) -> Seen {
    let keys = output(&mut dig(
        port,
        &["+multi", "+noall", "+answer", "roll.test", "DNSKEY"],
    ))
    .await;
    let mut seen = Seen {
        ksks: BTreeSet::new(),
        zsks: BTreeSet::new(),
        signers: BTreeSet::new(),
    };
    for line in keys.lines().filter(|l| l.contains("key id = ")) {
        let tag: u16 = (line.rsplit("key id = ").next())
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or_else(|| panic!("a key id in {line:?}"));
        if line.contains("; KSK") {
            seen.ksks.insert(tag);
        } else {
            seen.zsks.insert(tag);
        }
    }
    let answer = output(&mut dig(port, &["+short", "www.roll.test", "A"])).await;
    for line in answer.lines().filter(|l| l.starts_with("A ")) {
        let tag = line.split_whitespace().nth(6).and_then(|t| t.parse().ok());
        seen.signers
            .insert(tag.unwrap_or_else(|| panic!("a key tag in {line:?}")));
    }
    seen
}

/// What `delv`, trusting `anchor` alone, says of `www`'s A RRset.
async fn delv(port: u16, anchor: &Path) -> String {
    output(
        Command::new("delv")
            .args(["@127.0.0.1", "-p", &port.to_string(), "-a"])
            .arg(anchor)
            .args(["+root=roll.test", "www.roll.test", "A"]),
    )
    .await
}

/// The `.key` files in `dir` whose DNSKEY has `flags`.
fn key_files(dir: &Path, flags: &str) -> Vec<std::path::PathBuf> {
    let needle = format!(" DNSKEY {flags} ");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("the keys folder")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "key"))
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(&needle)))
        .collect();
    files.sort();
    files
}

/// The key tag in a key file's name: `Kroll.test.+013+12345.key`.
fn tag_of(path: &Path) -> u16 {
    let stem = path.file_stem().and_then(|s| s.to_str()).expect("a name");
    stem.rsplit('+')
        .next()
        .and_then(|t| t.parse().ok())
        .expect("a tag")
}

/// A CSK zone given `zsk_lifetime` keeps its key as KSK and rolls ZSKs on the schedule:
/// first ZSK published, then signing; successor published; successor signing, the old ZSK
/// still published; the old ZSK withdrawn and its files in `retired/`. Every phase
/// validates with the KSK as the only trust anchor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zsk_rolls_on_its_schedule_and_every_phase_validates() {
    let keys = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[dns]
listen = ["127.0.0.1:0"]
[[dns.zones]]
name = "roll.test"
ttl = 1
dnssec = {{ keys_dir = "{}", zsk_lifetime = "90d" }}
records = [
  {{ name = "@", type = "NS", values = ["ns1.roll.test."] }},
  {{ name = "ns1", type = "A", values = ["192.0.2.1"] }},
  {{ name = "www", type = "A", values = ["192.0.2.80"] }},
]
"#,
        keys.path().display()
    );
    let (dir, path) = write_files(&text, &[]);
    // The zone's CSK, made before the server first runs (as `ds` does for the parent).
    let ds = std::process::Command::new(BIN)
        .args(["ds", "roll.test", "--config"])
        .arg(&path)
        .output()
        .expect("edgewise-dns ds");
    assert!(ds.status.success(), "{ds:?}");
    let csk = key_files(keys.path(), "257");
    assert_eq!(csk.len(), 1, "{csk:?}");
    let ksk = tag_of(&csk[0]);

    // Seconds instead of days: lifetime 24 s, published 6 s before signing, and the old
    // key kept for the zone's TTL (1 s) and 5 s more.
    let mut dns = load_ok(&path).dns.expect("[dns]");
    dns.workers = 1;
    let dnssec = dns.zones[0].dnssec.as_mut().expect("signed");
    dnssec.zsk = Some(ZskTiming {
        lifetime: Duration::from_secs(24),
        publish_interval: Duration::from_secs(6),
        propagation: Duration::from_secs(5),
    });
    let mut server = DnsServer::bind(&dns).expect("bind on an ephemeral port");
    let reloader = server.reload_from(path.clone());
    let server = serve(server, dir);
    edgewise::dns::reload::spawn_scheduled_resign(reloader, server.token.clone());
    let port = server.addr().port();

    let key_text = std::fs::read_to_string(&csk[0]).unwrap();
    let public: String = (key_text.lines())
        .find(|l| l.contains(" DNSKEY 257 "))
        .expect("the DNSKEY line")
        .split_whitespace()
        .skip_while(|w| *w != "DNSKEY")
        .skip(4)
        .collect();
    let anchor = keys.path().join("anchor.conf");
    std::fs::write(
        &anchor,
        format!("trust-anchors {{ roll.test. static-key 257 3 13 \"{public}\"; }};\n"),
    )
    .unwrap();

    // Distinct looks, in order, until the old ZSK is gone.
    let mut phases: Vec<Seen> = Vec::new();
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < DEADLINE,
            "the roll did not finish: {phases:#?}"
        );
        let seen = look(port).await;
        assert_eq!(
            seen.ksks,
            BTreeSet::from([ksk]),
            "the KSK is kept: {seen:?}"
        );
        assert!(
            seen.signers.len() == 1 && seen.signers.is_subset(&(&seen.ksks | &seen.zsks)),
            "one published key signs the A RRset: {seen:?}"
        );
        let said = delv(port, &anchor).await;
        assert!(
            said.contains("; fully validated") && said.contains("192.0.2.80"),
            "{seen:?}: {said}"
        );
        if phases.last() != Some(&seen) {
            phases.push(seen.clone());
        }
        let first_zsk = phases.iter().find_map(|p| p.zsks.first().copied());
        if phases.len() > 1 && seen.zsks.len() == 1 && seen.zsks.first() != first_zsk.as_ref() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let z1 = *phases[0].zsks.first().expect("a first ZSK");
    let z2 = *phases.last().unwrap().zsks.first().expect("its successor");
    // Sets: the tags are random, so their order says nothing.
    let expected = [
        (BTreeSet::from([z1]), ksk),
        (BTreeSet::from([z1]), z1),
        (BTreeSet::from([z1, z2]), z1),
        (BTreeSet::from([z1, z2]), z2),
        (BTreeSet::from([z2]), z2),
    ];
    let got: Vec<(BTreeSet<u16>, u16)> = (phases.iter())
        .map(|p| {
            let signer = p.signers.first().copied().unwrap_or_default();
            (p.zsks.clone(), signer)
        })
        .collect();
    assert_eq!(got, expected, "{phases:#?}");

    // The old ZSK's files are in retired/, with the times the schedule gave it, which
    // BIND's own tool reads.
    let retired = keys.path().join("retired");
    let old = key_files(&retired, "256");
    assert_eq!(old.iter().map(|p| tag_of(p)).collect::<Vec<_>>(), vec![z1]);
    let old_text = std::fs::read_to_string(&old[0]).unwrap();
    for time in [
        "; Created: ",
        "; Publish: ",
        "; Activate: ",
        "; Inactive: ",
        "; Delete: ",
    ] {
        assert!(old_text.contains(time), "{time} in {old_text}");
    }
    let settime = output(
        Command::new("dnssec-settime")
            .args(["-p", "all", "-K"])
            .arg(&retired)
            .arg(old[0].file_stem().expect("a name")),
    )
    .await;
    for time in ["Inactive: ", "Delete: "] {
        let line = (settime.lines())
            .find(|l| l.starts_with(time))
            .unwrap_or_else(|| panic!("{time} in {settime}"));
        assert!(!line.contains("UNSET"), "{settime}");
    }
    // The parent still needs only the KSK's DS.
    let ds = std::process::Command::new(BIN)
        .args(["ds", "roll.test", "--config"])
        .arg(&path)
        .output()
        .expect("edgewise-dns ds");
    let printed = String::from_utf8_lossy(&ds.stdout);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{printed}");
    assert!(lines[0].contains(&format!(" DS {ksk} ")), "{printed}");
}
